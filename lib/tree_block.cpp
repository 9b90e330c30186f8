#include "tree_block.h"

namespace btk {


Result<BlockRef> TreeBlock::parse(std::unique_ptr<uint8_t[]> data, uint32_t size) {
    if (!data || size < sizeof(format::header) + 1) return corruption("tree block too small ({} bytes)", size);
    const auto& h = *reinterpret_cast<const format::header*>(data.get());
    const uint64_t bytenr = h.bytenr;
    const uint32_t n = h.nritems;
    const uint32_t data_size = size - sizeof(format::header);
    if (h.level >= format::MAX_LEVEL)
        return corruption("tree block {}: level {} too high", bytenr, h.level);
    if (h.level > 0) {
        if (uint64_t(n) * sizeof(format::key_ptr) > data_size)
            return corruption("tree block {}: node nritems {} exceeds capacity {}", bytenr, n,
                              data_size / sizeof(format::key_ptr));
    } else {
        if (uint64_t(n) * sizeof(format::item) > data_size)
            return corruption("tree block {}: leaf nritems {} too large", bytenr, n);
        const auto* items = reinterpret_cast<const format::item*>(data.get() + sizeof(format::header));
        const uint64_t table_end = uint64_t(n) * sizeof(format::item);
        for (uint32_t i = 0; i < n; ++i) {
            const uint64_t off = items[i].offset, sz = items[i].size;
            if (off + sz > data_size || off < table_end)
                return corruption("tree block {}: slot {} item data [{}, {}) outside leaf data area",
                                  bytenr, i, off, off + sz);
        }
    }
    return std::make_shared<const TreeBlock>(ParseToken{}, std::move(data), size, n);
}

uint32_t TreeBlock::leaf_free_space() const noexcept {
    const uint32_t data_size = size_ - sizeof(format::header);
    uint32_t lowest = data_size;
    for (uint32_t i = 0; i < nritems_; ++i) {
        const uint32_t off = item(i).offset;
        if (off < lowest) lowest = off;
    }
    const uint32_t table = nritems_ * sizeof(format::item);
    return lowest > table ? lowest - table : 0;
}

uint32_t TreeBlock::lower_bound(const Key& k) const noexcept { return key_lower_bound(*this, k); }

}  // namespace btk
