// File operations on an unmounted filesystem, through a Transaction.
//
// Paths are absolute inside the filesystem's default view (the top-level
// subvolume); a path may cross into subvolumes. Inode numbers, directory
// index numbers, link counts, sizes, nbytes and times follow the kernel's
// rules, so btrfs check and the kernel see nothing unusual. Errors read like
// coreutils' (No such file or directory, File exists, Not a directory,
// Directory not empty, File name too long) and leave the transaction in a
// state that may still be aborted (callers abort on any error).
#pragma once

#include "result.h"
#include "txn.h"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace btk {

struct InodeAttrs {
    uint32_t mode = 0100644;
    uint32_t uid = 0, gid = 0;
    uint64_t rdev = 0;
    std::optional<int64_t> mtime_sec;  // default: now
    uint32_t mtime_nsec = 0;
};

// Where a name lives: a subvolume tree and an inode in it.
struct InodeLoc {
    uint64_t tree = 0;
    uint64_t ino = 0;
};

class FsWriter {
public:
    explicit FsWriter(Transaction& t);

    Result<InodeLoc> resolve(std::string_view path, bool follow_last = false);
    // Whether `path` exists and is a directory.
    Result<bool> is_dir(std::string_view path);
    Status mkdir(std::string_view path, uint32_t mode = 0755, bool parents = false);
    // Creates (or replaces the contents of) a regular file with `data`. With
    // `source`, `data` is that host file's content (mapped): large extents
    // are then read from it again at commit instead of being held in memory.
    // `segments` (sorted [start, end) byte ranges) makes the file sparse:
    // only those ranges get extents, the rest are holes.
    Status write_file(std::string_view path, std::span<const uint8_t> data, const InodeAttrs& attrs,
                      std::shared_ptr<const HostFileRef> source = nullptr,
                      const std::vector<std::pair<uint64_t, uint64_t>>* segments = nullptr);
    Status symlink(std::string_view target, std::string_view path);
    // `rdev` is a host dev_t (makedev(major, minor)).
    Status mknod(std::string_view path, uint32_t mode, uint64_t rdev);
    Status link(std::string_view existing, std::string_view newpath);
    // Removes a file, symlink, special file or empty directory; with
    // recursive, a whole directory tree.
    Status remove(std::string_view path, bool recursive);
    Status rename(std::string_view from, std::string_view to);
    Status setxattr(std::string_view path, std::string_view name, std::span<const uint8_t> value);
    Status rmxattr(std::string_view path, std::string_view name);
    Status chmod(std::string_view path, uint32_t mode);
    Status chown(std::string_view path, uint32_t uid, uint32_t gid);
    Status touch(std::string_view path);
    Status truncate(std::string_view path, uint64_t size);
    Status fallocate(std::string_view path, uint64_t offset, uint64_t length);
    // "+C", "-C", "+c", "-c": nodatacow, compress.
    Status chattr(std::string_view path, std::string_view change);

    int64_t now_sec() const noexcept { return now_sec_; }

private:
    struct Parent {
        InodeLoc dir;
        std::string name;
    };
    Result<Parent> parent_of(std::string_view path);
    Result<std::optional<std::pair<InodeLoc, uint8_t>>> lookup_name(const InodeLoc& dir, std::string_view name);
    Result<format::inode_item> read_inode(const InodeLoc& loc);
    Status write_inode(const InodeLoc& loc, const format::inode_item& ii);
    Result<uint64_t> new_ino(uint64_t tree);
    Result<uint64_t> new_dir_index(const InodeLoc& dir);
    format::inode_item fresh_inode(uint32_t mode);
    Result<InodeLoc> create(std::string_view path, uint32_t mode, uint64_t rdev, bool must_not_exist = true);
    Status add_link(const InodeLoc& dir, std::string_view name, const InodeLoc& child, uint8_t ftype);
    Status del_link(const InodeLoc& dir, std::string_view name, const InodeLoc& child);
    Status drop_inode(const InodeLoc& loc);
    Status drop_extents_from(const InodeLoc& loc, uint64_t from, format::inode_item& ii);
    Status write_extents(const InodeLoc& loc, uint64_t file_off, std::span<const uint8_t> data,
                         format::inode_item& ii, const std::shared_ptr<const HostFileRef>& source = nullptr,
                         bool no_inline = false);
    void stamp(format::inode_item& ii, bool change_mtime);
    // An explicit hole extent for [from, to) (filesystems without no-holes).
    Status insert_hole(const InodeLoc& loc, uint64_t from, uint64_t to);
    Status read_extent_bytes(const format::file_extent_item& fe, uint64_t off, std::span<uint8_t> out);

    Transaction& t_;
    int64_t now_sec_ = 0;
    uint32_t now_nsec_ = 0;
    std::map<uint64_t, uint64_t> next_ino_;            // per tree
    std::map<std::pair<uint64_t, uint64_t>, uint64_t> next_index_;  // per directory
    std::map<std::string, InodeLoc> dir_cache_;                     // resolved directories
};

}  // namespace btk
