// btk mkfs: create a btrfs filesystem on one or more devices or image files.
//
// The layout follows what mkfs.btrfs 6.2 makes for the same devices
// (profiles, chunk sizes, trees, features), computed as a fixed point: item counts give
// block counts, block counts give addresses, addresses give the extent and
// free space tree items, until the block counts stop changing. Nothing is
// written until every check has passed and every block is built in memory.
#pragma once

#include "result.h"

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace btk {

struct MkfsContentHook;  // mkfs_layout.h

struct MkfsOptions {
    std::vector<std::string> devices;     // devid = position + 1
    std::optional<uint64_t> byte_count;   // -b: size used on each device; creates missing image files
    uint32_t nodesize = 0;                // 0: max(16 KiB, page size)
    uint32_t sectorsize = 0;              // 0: 4 KiB
    std::string metadata_profile;         // "": dup on one device, raid1 on more; or single, dup,
    std::string data_profile;             // raid0, raid1, raid10, raid1c3, raid1c4, raid5, raid6
    bool mixed = false;                   // -M: mixed data and metadata block groups
    std::string csum = "crc32c";          // crc32c, xxhash, sha256, blake2
    std::string label;
    std::string fsid;                     // -U; also makes the chunk tree and subvolume uuids
                                          // derived from it (reproducible output)
    std::string device_uuid;              // --device-uuid
    std::vector<std::string> features;    // -O/-R items: "name", "^name", comma lists, "list-all"
    bool force = false;                   // -f: overwrite an existing filesystem/partition table
    bool nodiscard = false;               // -K
    bool quiet = false;                   // -q
    bool verbose = false;                 // -v: also print the chunk layout
    const MkfsContentHook* content = nullptr;  // a content step (mkfs_layout.h)
    // --rootdir DIR: the content of a directory (mkfs_rootdir.h), with
    std::string rootdir;
    std::string compress;                  // --compress zlib|lzo|zstd[:LEVEL]
    std::vector<std::string> subvols;      // --subvol [rw|ro|default|default-ro:]SUBDIR
    std::vector<std::string> inode_flags;  // --inode-flags nodatacow,nodatasum:PATH
    bool shrink = false;                   // --shrink: chunks and image no larger than needed
    std::string root_owner;                // --root-owner UID:GID of the top directory
    std::optional<int64_t> time;          // creation time; default SOURCE_DATE_EPOCH, else now
};

// What mkfs made (for tests and the summary).
struct MkfsChunkInfo {
    uint64_t logical = 0, length = 0, type = 0, used = 0;
    std::vector<uint64_t> physical, devids;  // per stripe
};
struct MkfsResult {
    std::string fsid;
    uint64_t total_bytes = 0, bytes_used = 0;
    uint32_t nodesize = 0, sectorsize = 0;
    uint16_t csum_type = 0;
    uint64_t incompat = 0, compat_ro = 0;
    bool quota = false;
    std::vector<MkfsChunkInfo> chunks;
    std::vector<std::pair<std::string, uint64_t>> devices;  // path, size, by devid
    uint32_t tree_blocks = 0;
    int layout_iterations = 0;
    uint64_t write_calls = 0, bytes_written = 0;
};

// Creates the filesystem; errors are one line, Errc::invalid_argument for bad
// input (nothing written).
Result<MkfsResult> mkfs_run(const MkfsOptions& opts);

// CLI entry: prints a summary to `out` (unless quiet) and one error line to
// `err`. Returns 0, or 1 on failure.
int mkfs(const MkfsOptions& opts, FILE* out, FILE* err);

// "16k", "1G", "4096" -> bytes (binary suffixes k/m/g/t/p/e, case-insensitive).
Result<uint64_t> parse_size_arg(const std::string& s);

// Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
bool parse_uuid(const std::string& s, uint8_t out[16]);
std::string format_uuid(const uint8_t u[16]);

}  // namespace btk
