// Copying files out of an image (btk restore) and the small file tools
// (btk file ls / cat), as library functions.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace btk {

struct RestoreOptions {
    std::vector<std::string> devices;
    std::string target;                     // directory to restore into
    std::optional<std::string> subvol;      // id or path; default: the default subvolume
    std::optional<std::string> path_regex;  // POSIX extended regex on "/path" (like btrfs restore)
    bool dry_run = false;
    bool snapshots = false;   // restore nested subvolumes and snapshots at their paths
    bool xattr = false;
    bool metadata = false;    // owners, modes, times
    bool symlinks = false;
    bool overwrite = false;   // replace existing files instead of skipping them
    bool verbose = false;
    int super_mirror = -1;
};

struct RestoreStats {
    uint64_t files = 0, dirs = 0, symlinks = 0, special = 0, hardlinks = 0, subvols = 0;
    uint64_t bytes = 0;
    uint64_t errors = 0;        // items that could not be read or written
    uint64_t unsafe_names = 0;  // names containing '/', or "." / ".."
    uint64_t skipped = 0;       // existing files kept, subvolumes not asked for
};

// Exit status: 0 everything restored, 1 some items failed (counted in the
// summary), 2 nothing could be restored (cannot open the image or target).
int restore(const RestoreOptions& opts, std::FILE* out, std::FILE* err, RestoreStats* stats = nullptr);

struct FileLsOptions {
    std::vector<std::string> devices;
    std::string path = "/";
    std::optional<std::string> subvol;
    bool long_format = false;
    bool recursive = false;
};
int file_ls(const FileLsOptions& opts, std::FILE* out, std::FILE* err);

struct FileCatOptions {
    std::vector<std::string> devices;
    std::string path;
    std::optional<std::string> subvol;
};
int file_cat(const FileCatOptions& opts, std::FILE* out, std::FILE* err);

}  // namespace btk
