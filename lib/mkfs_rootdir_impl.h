// Internals of mkfs --rootdir shared by its source files.
#pragma once

#include "mkfs_rootdir.h"
#include "write_tree.h"

#include <algorithm>
#include <span>
#include <string>
#include <vector>

namespace btk::rootdir {

inline Error bad(std::string msg) { return Error{Errc::invalid_argument, std::move(msg)}; }

// Largest uncompressed data extent the kernel makes.
inline constexpr uint64_t MAX_EXTENT = 128ULL << 20;

// Inline data limit: the max_inline default, capped by what fits in a leaf.
inline uint64_t max_inline(const RootdirOptions& o) {
    return std::min<uint64_t>(o.max_inline, format::max_inline_data_size(o.nodesize));
}

void random_uuid(uint8_t u[16]);

// One EXTENT_DATA item of an inode.
struct FileExtent {
    uint64_t file_off = 0;
    uint64_t disk_bytenr = 0, disk_num_bytes = 0;  // 0, 0 for a hole
    uint64_t num_bytes = 0, ram_bytes = 0;
    uint8_t type = format::FILE_EXTENT_REG;
    uint8_t compression = format::COMPRESS_NONE;
    std::vector<uint8_t> inline_data;  // type FILE_EXTENT_INLINE
};

// Turns the model and the data placement into items for the sink: per inode
// (all its items in key order), per data extent (extent tree) and checksums
// (merged into full csum items), then the subvolume items of the root and
// uuid trees.
class ItemEncoder {
public:
    ItemEncoder(const RootdirModel& m, ItemSink& sink);

    // Emits every item of inode `idx` into its subvolume's tree.
    Status inode(uint32_t idx, uint64_t nbytes, uint64_t extra_flags, std::span<const FileExtent> extents);
    // The extent tree item of one data extent referenced once.
    Status data_extent(uint64_t logical, uint64_t disk_bytes, uint64_t root, uint64_t ino, uint64_t file_off);
    // Checksums of consecutive sectors starting at `logical`; must come in
    // increasing address order.
    Status csums(uint64_t logical, std::span<const uint8_t> sums);
    // Flushes the last csum item and emits ROOT_REF/ROOT_BACKREF and uuid items.
    Status finish();

    uint64_t csum_items() const noexcept { return csum_items_; }

private:
    Status put(uint64_t tree, const Key& k);
    Status flush_csums();
    template <typename T>
    void append_pod(const T& v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        buf_.insert(buf_.end(), p, p + sizeof(T));
    }
    void append(std::string_view s) { buf_.insert(buf_.end(), s.begin(), s.end()); }
    void append_dir_item(const Key& location, uint8_t type, std::string_view name, std::string_view data);

    const RootdirModel& m_;
    ItemSink& sink_;
    std::vector<uint8_t> buf_;
    uint32_t csum_size_ = 0, max_csums_ = 0;
    uint64_t csum_start_ = 0;
    std::vector<uint8_t> csum_buf_;
    uint64_t csum_items_ = 0;
};

}  // namespace btk::rootdir
