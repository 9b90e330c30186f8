// Files inside a btrfs filesystem: subvolumes, inodes, directories, path
// lookup, file extents and their data, xattrs and symlinks.
#pragma once

#include "fs.h"
#include "tree.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace btk {

struct Inode {
    uint64_t subvol = 0;
    uint64_t ino = 0;
    format::inode_item item{};

    uint32_t mode() const noexcept { return item.mode; }
    uint64_t size() const noexcept { return item.size; }
    uint32_t nlink() const noexcept { return item.nlink; }
    uint64_t flags() const noexcept { return item.flags; }
    bool is_dir() const noexcept;
    bool is_reg() const noexcept;
    bool is_symlink() const noexcept;
};

struct DirEntry {
    std::string name;
    format::disk_key location_disk{};
    Key location;      // (ino, INODE_ITEM, 0) or (subvol id, ROOT_ITEM, -1)
    uint8_t type = 0;  // format::FT_*
    uint64_t index = 0;
    bool is_subvol() const noexcept { return location.type == format::ROOT_ITEM_KEY; }
};

// One file extent item, decoded. For inline extents `inline_data` holds the
// raw (possibly compressed) bytes.
struct FileExtent {
    uint64_t file_offset = 0;  // key offset
    uint8_t type = 0;          // FILE_EXTENT_INLINE / REG / PREALLOC
    uint8_t compression = 0;
    uint64_t ram_bytes = 0;
    uint64_t disk_bytenr = 0;
    uint64_t disk_num_bytes = 0;
    uint64_t offset = 0;       // into the decompressed extent
    uint64_t num_bytes = 0;    // bytes of file covered (inline: ram_bytes)
    std::span<const uint8_t> inline_data;
    bool is_hole() const noexcept {
        return type != format::FILE_EXTENT_INLINE && disk_bytenr == 0;
    }
};

// A resolved path: the subvolume tree and inode it names.
struct Location {
    uint64_t subvol = 0;
    uint64_t ino = 0;
    bool placeholder = false;  // an empty directory standing for an unlinked subvolume
};

// Read access to files. Holds a reference to the Filesystem; not thread-safe.
class FileSystemView {
public:
    explicit FileSystemView(Filesystem& fs) : fs_(fs) {}
    Filesystem& fs() noexcept { return fs_; }

    // Salvage mode (restore on damaged images): unreadable tree blocks are
    // skipped instead of failing a listing; the errors collect until taken.
    // A directory whose index lost a block is completed from its DIR_ITEMs.
    void set_salvage(bool on) noexcept { salvage_ = on; }
    std::vector<std::string> take_damage() { return std::exchange(damage_, {}); }

    // Root of a subvolume tree (5 is the top level).
    Result<RootRef> subvol_root(uint64_t subvol);
    // Root directory inode of a subvolume (from its root item; normally 256).
    Result<uint64_t> subvol_root_dir(uint64_t subvol);
    // The default subvolume (the "default" entry in the root tree directory).
    Result<uint64_t> default_subvol();
    // Subvolume id of a path like "/a/b" or a number given as text.
    Result<uint64_t> resolve_subvol_arg(std::string_view arg);

    Result<Inode> inode(uint64_t subvol, uint64_t ino);
    // Directory entries in DIR_INDEX order (the order readdir returns).
    Result<std::vector<DirEntry>> list_dir(uint64_t subvol, uint64_t dir_ino);
    // A directory entry naming a subvolume is live only where the root tree has
    // the matching ROOT_REF (parent subvolume, child) with this directory and
    // name; elsewhere (inside a snapshot of the parent) the kernel shows an
    // empty directory in its place.
    bool subvol_entry_live(uint64_t parent_subvol, uint64_t dir_ino, const DirEntry& e);
    // Looks up one name in a directory through its DIR_ITEM hash.
    Result<DirEntry> lookup(uint64_t subvol, uint64_t dir_ino, std::string_view name);
    // Resolves an absolute path inside subvolume `subvol`, entering nested
    // subvolumes; a trailing symlink is not followed.
    Result<Location> resolve_path(uint64_t subvol, std::string_view path);

    // Visits the file extent items of an inode in file order.
    Status for_each_extent(uint64_t subvol, uint64_t ino,
                           const std::function<bool(const FileExtent&)>& fn);
    // Reads the bytes of one extent that cover [pos, pos+out.size()) of the file
    // (the range must lie inside the extent); holes and prealloc read as zero.
    Status read_extent_range(const FileExtent& e, uint64_t pos, std::span<uint8_t> out);
    // Reads file content [offset, offset+out.size()); holes read as zero.
    Status read(const Inode& inode, uint64_t offset, std::span<uint8_t> out);

    Result<std::string> read_symlink(uint64_t subvol, uint64_t ino);
    Result<std::vector<std::pair<std::string, std::string>>> xattrs(uint64_t subvol, uint64_t ino);

    // Reads data at a logical address, verifying every sector that has a
    // checksum in the csum tree and falling back to the other copies when a
    // sector does not match. Sectors without a checksum are returned as read.
    Status read_data(uint64_t logical, std::span<uint8_t> out);
    struct DataStats {
        uint64_t verified_sectors = 0, csum_mismatches = 0, mirror_fallbacks = 0;
    };
    const DataStats& data_stats() const noexcept { return data_stats_; }

private:
    Result<std::vector<uint8_t>> read_disk_extent(uint64_t bytenr, uint64_t len);
    // Checksums of the sectors in [start, start + n * sectorsize): `have[i]` is
    // false where the csum tree has none.
    Status lookup_csums(uint64_t start, uint64_t n, std::vector<uint8_t>& csums, std::vector<bool>& have);
    std::vector<std::string>* damage_sink() noexcept { return salvage_ ? &damage_ : nullptr; }
    bool salvage_ = false;
    std::vector<std::string> damage_;
    std::optional<RootRef> csum_root_;
    bool csum_root_missing_ = false;
    DataStats data_stats_;
    Filesystem& fs_;
    std::map<uint64_t, RootRef> roots_;
    // Cache of the last decompressed extent (sequential reads hit it).
    uint64_t cached_bytenr_ = 0;
    std::vector<uint8_t> cached_plain_;
};

// Directory entry type from an inode mode.
uint8_t mode_to_ft(uint32_t mode) noexcept;

}  // namespace btk
