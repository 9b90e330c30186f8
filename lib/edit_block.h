// A tree block held in memory for modification by a transaction.
//
// EditBlock owns nodesize bytes and edits them in place: leaf items (insert,
// delete, resize, move to a sibling) and node pointers. Item data stay packed
// at the end of the block in reverse slot order, the layout the kernel keeps,
// so free space is always one gap between the item table and the data.
// check_layout() verifies that a block read from disk has that layout before
// anything edits it; the editing functions assume it and their preconditions
// (slot ranges, room) are the caller's job, checked by the B-tree code.
#pragma once

#include "format.h"
#include "key.h"
#include "result.h"

#include <cstdint>
#include <span>
#include <vector>

namespace btk {

class EditBlock {
public:
    explicit EditBlock(std::vector<uint8_t> bytes) : buf_(std::move(bytes)) {}

    std::span<uint8_t> bytes() noexcept { return buf_; }
    std::span<const uint8_t> bytes() const noexcept { return buf_; }
    std::vector<uint8_t>& vec() noexcept { return buf_; }
    uint32_t size() const noexcept { return uint32_t(buf_.size()); }

    format::header& hdr() noexcept { return *reinterpret_cast<format::header*>(buf_.data()); }
    const format::header& hdr() const noexcept {
        return *reinterpret_cast<const format::header*>(buf_.data());
    }
    uint64_t bytenr() const noexcept { return hdr().bytenr; }
    uint64_t generation() const noexcept { return hdr().generation; }
    uint64_t owner() const noexcept { return hdr().owner; }
    uint8_t level() const noexcept { return hdr().level; }
    bool is_leaf() const noexcept { return level() == 0; }
    uint32_t nritems() const noexcept { return hdr().nritems; }

    // Leaf/node layout sane (item table and data inside the block, data
    // packed in reverse order, pointer count within capacity).
    Status check_layout() const;

    Key key(uint32_t slot) const noexcept;
    void set_key(uint32_t slot, const Key& k) noexcept;

    // --- leaves
    uint32_t item_offset(uint32_t slot) const noexcept { return item(slot).offset; }
    uint32_t item_size(uint32_t slot) const noexcept { return item(slot).size; }
    std::span<uint8_t> item_data(uint32_t slot) noexcept;
    std::span<const uint8_t> item_data(uint32_t slot) const noexcept;
    // Bytes used by items (table entries and data).
    uint32_t leaf_used() const noexcept;
    uint32_t leaf_free() const noexcept;
    // Inserts an item of `size` bytes (zeroed) at `slot`; needs
    // leaf_free() >= size + sizeof(item).
    void leaf_insert(uint32_t slot, const Key& k, uint32_t size);
    // Removes `count` items starting at `slot`.
    void leaf_delete(uint32_t slot, uint32_t count);
    // Grows or shrinks item `slot`'s data at its end (new bytes are zero).
    void leaf_resize(uint32_t slot, uint32_t new_size);
    // Moves items [slot, nritems) of this leaf to the front of `right`
    // (whose existing items follow them).
    void leaf_move_tail_to(uint32_t slot, EditBlock& right);
    // Moves items [0, count) of this leaf to the end of `left`.
    void leaf_move_head_to(uint32_t count, EditBlock& left);
    // Bytes items [a, b) use (table + data).
    uint32_t leaf_range_bytes(uint32_t a, uint32_t b) const noexcept;

    // --- nodes
    uint64_t blockptr(uint32_t slot) const noexcept { return ptr(slot).blockptr; }
    uint64_t ptr_generation(uint32_t slot) const noexcept { return ptr(slot).generation; }
    void set_ptr(uint32_t slot, const Key& k, uint64_t bytenr, uint64_t gen) noexcept;
    void set_blockptr(uint32_t slot, uint64_t bytenr, uint64_t gen) noexcept;
    uint32_t node_capacity() const noexcept { return format::nodeptrs_per_block(size()); }
    void node_insert(uint32_t slot, const Key& k, uint64_t bytenr, uint64_t gen);
    void node_delete(uint32_t slot, uint32_t count = 1);
    void node_move_tail_to(uint32_t slot, EditBlock& right);
    void node_move_head_to(uint32_t count, EditBlock& left);

    // First slot whose key is >= k (nritems when none).
    uint32_t lower_bound(const Key& k) const noexcept;

private:
    format::item& item(uint32_t slot) noexcept {
        return reinterpret_cast<format::item*>(buf_.data() + sizeof(format::header))[slot];
    }
    const format::item& item(uint32_t slot) const noexcept {
        return reinterpret_cast<const format::item*>(buf_.data() + sizeof(format::header))[slot];
    }
    format::key_ptr& ptr(uint32_t slot) noexcept {
        return reinterpret_cast<format::key_ptr*>(buf_.data() + sizeof(format::header))[slot];
    }
    const format::key_ptr& ptr(uint32_t slot) const noexcept {
        return reinterpret_cast<const format::key_ptr*>(buf_.data() + sizeof(format::header))[slot];
    }
    uint8_t* data_base() noexcept { return buf_.data() + sizeof(format::header); }
    // Offset (from data_base) of the lowest item data byte.
    uint32_t data_start() const noexcept;
    void set_nritems(uint32_t n) noexcept { hdr().nritems = n; }

    std::vector<uint8_t> buf_;
};

}  // namespace btk
