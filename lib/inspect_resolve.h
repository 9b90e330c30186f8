// Offline resolvers and statistics of `btk inspect`: inode-resolve,
// logical-resolve, subvolid-resolve, list-subvolumes and tree-stats.
//
// They read an unmounted image directly; btrfs-progs' counterparts need a
// mounted filesystem (ioctls). Each function writes its report to `out`, one
// error line per problem to `err`, and returns 0 on success, 1 when the thing
// asked for is not there or the image is damaged where it had to read, and 2
// when the image cannot be opened.
//
// Paths: progs prints paths under the mount point ("/mnt/dir/file"); these
// print them starting with "/" relative to the top of the subvolume they are
// resolved in ("/dir/file"), i.e. progs' output with the mount point removed.
#pragma once

#include "inspect.h"  // OutputFormat

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace btk {

// inode-resolve [-v] [--subvol ID|PATH] INODE IMAGE
// Prints every path of the inode: each name of each INODE_REF, then of each
// INODE_EXTREF, walked up to the subvolume's root directory, in the order the
// kernel's INO_PATHS returns them. The root directory itself prints "/..".
struct InodeResolveOptions {
    std::vector<std::string> devices;
    uint64_t inode = 0;
    std::optional<std::string> subvol;  // subvolume id or path; default: the default subvolume
    bool verbose = false;               // -v: a summary line on `err`
};
int inode_resolve(const InodeResolveOptions& opts, std::FILE* out, std::FILE* err);

// logical-resolve [-P] [-o] [-v] [--subvol ID|PATH] LOGICAL IMAGE
// Finds the data extent that contains LOGICAL and every file extent item, in
// every subvolume, that points at it and (unless -o) whose referenced range
// covers LOGICAL. Default: the paths of those inodes, prefixed by the
// subvolume's path from the top level ("/sub/vol/dir/file"). -P: lines
// "inode INO offset OFF root ROOT" as progs -P prints them (OFF is the file
// offset of LOGICAL, or of the file extent with -o or for compressed extents).
// --subvol: only references from that subvolume, paths relative to its top.
// An address inside an extent that no file references any more prints nothing
// and succeeds (as progs does); an address outside any data extent fails.
struct LogicalResolveOptions {
    std::vector<std::string> devices;
    uint64_t logical = 0;
    bool inodes_only = false;    // -P
    bool ignore_offset = false;  // -o
    std::optional<std::string> subvol;
    bool verbose = false;        // -v: summary lines on `err`
};
int logical_resolve(const LogicalResolveOptions& opts, std::FILE* out, std::FILE* err);

// subvolid-resolve SUBVOLID IMAGE
// The subvolume's path relative to the top level ("dir/sub/nested"; the top
// level itself prints an empty line), as progs prints it.
struct SubvolidResolveOptions {
    std::vector<std::string> devices;
    uint64_t subvolid = 0;
};
int subvolid_resolve(const SubvolidResolveOptions& opts, std::FILE* out, std::FILE* err);

// list-subvolumes [-pcguqRsrdt] [-G [+|-]GEN] [-C [+|-]GEN] [--sort KEYS] [--format json] IMAGE
// Output of `btrfs subvolume list [options] MNT` (btrfs-progs 6.2) with MNT the
// top-level subvolume: "ID 256 gen 10 top level 5 path a/b". otime is printed
// in the process's local time zone (TZ), as progs does.
struct ListSubvolumesOptions {
    std::vector<std::string> devices;
    bool print_parent = false;         // -p: "parent ID"
    bool print_ogen = false;           // -c: "cgen"
    bool print_gen = false;            // -g: (gen is always printed)
    bool print_uuid = false;           // -u
    bool print_parent_uuid = false;    // -q
    bool print_received_uuid = false;  // -R
    bool snapshots_only = false;       // -s: also prints cgen and otime
    bool readonly_only = false;        // -r
    bool deleted_only = false;         // -d: deleted, not yet cleaned subvolumes
    bool table = false;                // -t
    std::optional<std::string> gen_filter;   // -G: "N", "+N" (>=) or "-N" (<=)
    std::optional<std::string> ogen_filter;  // -C: same, on the creation generation
    std::optional<std::string> sort;         // --sort: e.g. "gen,-rootid" (rootid, gen, ogen, path)
    OutputFormat format = OutputFormat::text;
};
int list_subvolumes(const ListSubvolumesOptions& opts, std::FILE* out, std::FILE* err);

// tree-stats [-b] IMAGE
// Per tree (root, extent, csum, fs): size, inline data, seeks, clusters, disk
// spread, read time, levels and nodes per level, in the format of
// `btrfs inspect-internal tree-stats` 6.2. Read times are our own.
struct TreeStatsOptions {
    std::vector<std::string> devices;
    bool raw_bytes = false;  // -b
};
int tree_stats(const TreeStatsOptions& opts, std::FILE* out, std::FILE* err);

}  // namespace btk
