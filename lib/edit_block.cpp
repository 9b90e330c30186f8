#include "edit_block.h"

#include <cstring>

namespace btk {

using namespace format;

Status EditBlock::check_layout() const {
    if (buf_.size() < sizeof(header) + sizeof(key_ptr))
        return corruption("block of {} bytes is too small", buf_.size());
    const uint32_t n = nritems();
    const uint32_t lds = leaf_data_size(size());
    if (!is_leaf()) {
        if (n > node_capacity())
            return corruption("node {} has {} pointers, capacity {}", bytenr(), n, node_capacity());
        return {};
    }
    if (uint64_t(n) * sizeof(format::item) > lds)
        return corruption("leaf {} has {} items, more than fit", bytenr(), n);
    uint32_t end = lds;
    for (uint32_t i = 0; i < n; ++i) {
        const uint32_t off = item(i).offset, sz = item(i).size;
        if (uint64_t(off) + sz != end || off < (i + 1) * sizeof(format::item))
            return corruption("leaf {} slot {}: item data at {}+{} is not packed below {}", bytenr(), i,
                              off, sz, end);
        end = off;
    }
    if (uint64_t(n) * sizeof(format::item) > end)
        return corruption("leaf {}: item table overlaps item data", bytenr());
    return {};
}

Key EditBlock::key(uint32_t slot) const noexcept {
    return is_leaf() ? Key::from_disk(item(slot).key) : Key::from_disk(ptr(slot).key);
}

void EditBlock::set_key(uint32_t slot, const Key& k) noexcept {
    if (is_leaf())
        k.to_disk(item(slot).key);
    else
        k.to_disk(ptr(slot).key);
}

std::span<uint8_t> EditBlock::item_data(uint32_t slot) noexcept {
    return {data_base() + item(slot).offset.get(), item(slot).size.get()};
}

std::span<const uint8_t> EditBlock::item_data(uint32_t slot) const noexcept {
    return {buf_.data() + sizeof(header) + item(slot).offset.get(), item(slot).size.get()};
}

uint32_t EditBlock::data_start() const noexcept {
    const uint32_t n = nritems();
    return n ? uint32_t(item(n - 1).offset) : leaf_data_size(size());
}

uint32_t EditBlock::leaf_used() const noexcept {
    return nritems() * uint32_t(sizeof(format::item)) + (leaf_data_size(size()) - data_start());
}

uint32_t EditBlock::leaf_free() const noexcept { return leaf_data_size(size()) - leaf_used(); }

uint32_t EditBlock::leaf_range_bytes(uint32_t a, uint32_t b) const noexcept {
    if (a >= b) return 0;
    const uint32_t top = a == 0 ? leaf_data_size(size()) : uint32_t(item(a - 1).offset);
    return (b - a) * uint32_t(sizeof(format::item)) + (top - uint32_t(item(b - 1).offset));
}

void EditBlock::leaf_insert(uint32_t slot, const Key& k, uint32_t sz) {
    const uint32_t n = nritems();
    const uint32_t ds = data_start();
    const uint32_t end = slot == 0 ? leaf_data_size(size()) : uint32_t(item(slot - 1).offset);
    uint8_t* base = data_base();
    // Data of items slot.. moves down to open a gap of sz bytes below `end`.
    std::memmove(base + ds - sz, base + ds, end - ds);
    for (uint32_t i = slot; i < n; ++i) item(i).offset = item(i).offset - sz;
    auto* items = reinterpret_cast<format::item*>(base);
    std::memmove(items + slot + 1, items + slot, (n - slot) * sizeof(format::item));
    k.to_disk(items[slot].key);
    items[slot].offset = end - sz;
    items[slot].size = sz;
    std::memset(base + end - sz, 0, sz);
    set_nritems(n + 1);
}

void EditBlock::leaf_delete(uint32_t slot, uint32_t count) {
    if (count == 0) return;
    const uint32_t n = nritems();
    const uint32_t ds = data_start();
    const uint32_t end = slot == 0 ? leaf_data_size(size()) : uint32_t(item(slot - 1).offset);
    const uint32_t low = item(slot + count - 1).offset;
    const uint32_t gap = end - low;
    uint8_t* base = data_base();
    std::memmove(base + ds + gap, base + ds, low - ds);
    for (uint32_t i = slot + count; i < n; ++i) item(i).offset = item(i).offset + gap;
    auto* items = reinterpret_cast<format::item*>(base);
    std::memmove(items + slot, items + slot + count, (n - slot - count) * sizeof(format::item));
    std::memset(items + n - count, 0, count * sizeof(format::item));
    set_nritems(n - count);
}

void EditBlock::leaf_resize(uint32_t slot, uint32_t new_size) {
    const uint32_t n = nritems();
    const uint32_t old = item(slot).size, off = item(slot).offset;
    if (new_size == old) return;
    const uint32_t ds = data_start();
    uint8_t* base = data_base();
    if (new_size > old) {
        const uint32_t d = new_size - old;
        std::memmove(base + ds - d, base + ds, off + old - ds);
        std::memset(base + off + old - d, 0, d);
        for (uint32_t i = slot; i < n; ++i) item(i).offset = item(i).offset - d;
    } else {
        const uint32_t d = old - new_size;
        std::memmove(base + ds + d, base + ds, off + new_size - ds);
        for (uint32_t i = slot; i < n; ++i) item(i).offset = item(i).offset + d;
    }
    item(slot).size = new_size;
}

namespace {

struct Staged {
    Key key;
    std::vector<uint8_t> data;
};

void stage_items(const EditBlock& b, uint32_t from, uint32_t to, std::vector<Staged>& out) {
    for (uint32_t i = from; i < to; ++i) {
        auto d = b.item_data(i);
        out.push_back({b.key(i), std::vector<uint8_t>(d.begin(), d.end())});
    }
}

// Rewrites a leaf's items from `items` (which must fit).
void rebuild_leaf(EditBlock& b, const std::vector<Staged>& items) {
    const uint32_t old = b.nritems();
    b.leaf_delete(0, old);
    for (uint32_t i = 0; i < items.size(); ++i) {
        b.leaf_insert(i, items[i].key, uint32_t(items[i].data.size()));
        if (!items[i].data.empty())
            std::memcpy(b.item_data(i).data(), items[i].data.data(), items[i].data.size());
    }
}

}  // namespace

void EditBlock::leaf_move_tail_to(uint32_t slot, EditBlock& right) {
    std::vector<Staged> moved;
    stage_items(*this, slot, nritems(), moved);
    stage_items(right, 0, right.nritems(), moved);
    rebuild_leaf(right, moved);
    leaf_delete(slot, nritems() - slot);
}

void EditBlock::leaf_move_head_to(uint32_t count, EditBlock& left) {
    std::vector<Staged> moved;
    stage_items(left, 0, left.nritems(), moved);
    stage_items(*this, 0, count, moved);
    rebuild_leaf(left, moved);
    leaf_delete(0, count);
}

void EditBlock::set_ptr(uint32_t slot, const Key& k, uint64_t bytenr, uint64_t gen) noexcept {
    k.to_disk(ptr(slot).key);
    ptr(slot).blockptr = bytenr;
    ptr(slot).generation = gen;
}

void EditBlock::set_blockptr(uint32_t slot, uint64_t bytenr, uint64_t gen) noexcept {
    ptr(slot).blockptr = bytenr;
    ptr(slot).generation = gen;
}

void EditBlock::node_insert(uint32_t slot, const Key& k, uint64_t bytenr, uint64_t gen) {
    const uint32_t n = nritems();
    auto* p = reinterpret_cast<key_ptr*>(data_base());
    std::memmove(p + slot + 1, p + slot, (n - slot) * sizeof(key_ptr));
    set_nritems(n + 1);
    set_ptr(slot, k, bytenr, gen);
}

void EditBlock::node_delete(uint32_t slot, uint32_t count) {
    const uint32_t n = nritems();
    auto* p = reinterpret_cast<key_ptr*>(data_base());
    std::memmove(p + slot, p + slot + count, (n - slot - count) * sizeof(key_ptr));
    std::memset(p + n - count, 0, count * sizeof(key_ptr));
    set_nritems(n - count);
}

void EditBlock::node_move_tail_to(uint32_t slot, EditBlock& right) {
    const uint32_t n = nritems(), rn = right.nritems(), moved = n - slot;
    auto* rp = reinterpret_cast<key_ptr*>(right.data_base());
    std::memmove(rp + moved, rp, rn * sizeof(key_ptr));
    std::memcpy(rp, reinterpret_cast<key_ptr*>(data_base()) + slot, moved * sizeof(key_ptr));
    right.set_nritems(rn + moved);
    std::memset(reinterpret_cast<key_ptr*>(data_base()) + slot, 0, moved * sizeof(key_ptr));
    set_nritems(slot);
}

void EditBlock::node_move_head_to(uint32_t count, EditBlock& left) {
    const uint32_t ln = left.nritems();
    std::memcpy(reinterpret_cast<key_ptr*>(left.data_base()) + ln, data_base(), count * sizeof(key_ptr));
    left.set_nritems(ln + count);
    node_delete(0, count);
}

uint32_t EditBlock::lower_bound(const Key& k) const noexcept {
    uint32_t lo = 0, hi = nritems();
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (key(mid) < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

}  // namespace btk
