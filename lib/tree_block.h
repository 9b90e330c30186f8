// A tree block held in memory, with bounds-checked access to its items.
//
// TreeBlock::parse checks everything needed to make the accessors safe
// (item table and item data inside the block, pointer count inside a node);
// after that, key(), item_data() and the node accessors never read outside
// the block. Semantic checks (checksum, bytenr, fsid, key order, generation)
// are done by the reader (fs.h), which reports them with context.
#pragma once

#include "format.h"
#include "key.h"
#include "result.h"

#include <cstdint>
#include <memory>
#include <span>

namespace btk {

class TreeBlock {
public:
    // Takes ownership of `size` bytes. Fails with Errc::corruption when the
    // header's item count or item offsets do not fit inside the block.
    static Result<std::shared_ptr<const TreeBlock>> parse(std::unique_ptr<uint8_t[]> data,
                                                          uint32_t size);

    std::span<const uint8_t> raw() const noexcept { return {data_.get(), size_}; }
    uint32_t size() const noexcept { return size_; }
    const format::header& header() const noexcept {
        return *reinterpret_cast<const format::header*>(data_.get());
    }
    uint64_t bytenr() const noexcept { return header().bytenr; }
    uint64_t generation() const noexcept { return header().generation; }
    uint64_t owner() const noexcept { return header().owner; }
    uint64_t flags() const noexcept { return header().flags; }
    uint8_t level() const noexcept { return header().level; }
    bool is_leaf() const noexcept { return header().level == 0; }
    uint32_t nritems() const noexcept { return nritems_; }

    // Key of item or pointer `slot` (slot < nritems()).
    // (Inline: the checkers call these for every item.)
    Key key(uint32_t slot) const noexcept { return Key::from_disk(disk_key(slot)); }
    const format::disk_key& disk_key(uint32_t slot) const noexcept {
        const uint8_t* base = data_.get() + sizeof(format::header);
        if (is_leaf()) return reinterpret_cast<const format::item*>(base)[slot].key;
        return reinterpret_cast<const format::key_ptr*>(base)[slot].key;
    }

    // Leaf only.
    const format::item& item(uint32_t slot) const noexcept {
        return reinterpret_cast<const format::item*>(data_.get() + sizeof(format::header))[slot];
    }
    uint32_t item_offset(uint32_t slot) const noexcept { return item(slot).offset; }
    uint32_t item_size(uint32_t slot) const noexcept { return item(slot).size; }
    std::span<const uint8_t> item_data(uint32_t slot) const noexcept {
        const auto& it = item(slot);
        return {data_.get() + sizeof(format::header) + it.offset.get(), it.size.get()};
    }
    // Bytes free in a leaf between the item table and the lowest item data.
    uint32_t leaf_free_space() const noexcept;

    // Node only.
    const format::key_ptr& ptr(uint32_t slot) const noexcept {
        return reinterpret_cast<const format::key_ptr*>(data_.get() + sizeof(format::header))[slot];
    }
    uint64_t blockptr(uint32_t slot) const noexcept { return ptr(slot).blockptr; }
    uint64_t ptr_generation(uint32_t slot) const noexcept { return ptr(slot).generation; }

    // First slot whose key is >= k (nritems() when none): binary search.
    uint32_t lower_bound(const Key& k) const noexcept;

    // For parse() only (public for make_shared: one allocation per block).
    struct ParseToken {
        explicit ParseToken() = default;
    };
    TreeBlock(ParseToken, std::unique_ptr<uint8_t[]> d, uint32_t s, uint32_t n)
        : data_(std::move(d)), size_(s), nritems_(n) {}

private:
    std::unique_ptr<uint8_t[]> data_;
    uint32_t size_;
    uint32_t nritems_;
};

using BlockRef = std::shared_ptr<const TreeBlock>;

// Reads a structure of type T at `off` inside `data`, or nullptr when it does
// not fit. T must be one of the alignment-1 format structures.
template <typename T>
const T* view_at(std::span<const uint8_t> data, size_t off = 0) noexcept {
    static_assert(alignof(T) == 1);
    if (off > data.size() || data.size() - off < sizeof(T)) return nullptr;
    return reinterpret_cast<const T*>(data.data() + off);
}

}  // namespace btk
