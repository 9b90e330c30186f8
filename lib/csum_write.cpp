// Data checksums in the csum tree: EXTENT_CSUM items keyed by the logical
// address of their first sector, each holding the checksums of consecutive
// sectors. New checksums extend the item that ends where they start, up to
// the largest item the kernel makes; deleting a range trims, splits or
// removes the items it touches.
#include "txn.h"

#include "csum.h"

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace {

uint32_t max_csums_per_item(uint32_t nodesize, uint32_t csum_bytes) {
    return (leaf_data_size(nodesize) - 2 * uint32_t(sizeof(format::item))) / csum_bytes - 1;
}

Key csum_key(uint64_t logical) { return Key{EXTENT_CSUM_OBJECTID, EXTENT_CSUM_KEY, logical}; }

}  // namespace

Status Transaction::add_data_csums(uint64_t logical, std::span<const uint8_t> data) {
    const uint32_t cs = csum_size(sb_.csum_type);
    if (data.size() % ss_ || logical % ss_)
        return make_error(Errc::invalid_argument, "checksummed data at {} is not sector aligned", logical);
    std::vector<uint8_t> sums(data.size() / ss_ * cs);
    for (size_t i = 0; i < data.size() / ss_; ++i) {
        uint8_t out[32];
        csum_compute(sb_.csum_type, data.subspan(i * ss_, ss_), out);
        std::memcpy(&sums[i * cs], out, cs);
    }
    const uint32_t max = max_csums_per_item(ns_, cs);
    uint64_t pos = logical;
    size_t done = 0;
    const size_t total = sums.size() / cs;
    while (done < total) {
        // Extend the item ending right here, if there is one with room.
        BTK_ASSIGN(std::optional<Key> prev, last_key_le(CSUM_TREE_OBJECTID, csum_key(pos)));
        if (prev && prev->objectid == EXTENT_CSUM_OBJECTID && prev->type == EXTENT_CSUM_KEY) {
            uint64_t have = 0;
            BTK_TRY(for_each(CSUM_TREE_OBJECTID, *prev, *prev, [&](const ItemRef& it) {
                have = it.data.size() / cs;
                return false;
            }));
            if (prev->offset + have * ss_ > pos)
                return corruption("csum item at {} already covers {}", prev->offset, pos);
            if (prev->offset + have * ss_ == pos && have < max) {
                const size_t n = std::min<size_t>(total - done, max - have);
                BTK_ASSIGN(std::span<uint8_t> d,
                           resize_item(CSUM_TREE_OBJECTID, *prev, uint32_t((have + n) * cs)));
                std::memcpy(d.data() + have * cs, &sums[done * cs], n * cs);
                done += n;
                pos += n * ss_;
                continue;
            }
        }
        const size_t n = std::min<size_t>(total - done, max);
        BTK_TRY(insert_item(CSUM_TREE_OBJECTID, csum_key(pos), std::span<const uint8_t>(&sums[done * cs], n * cs)));
        done += n;
        pos += n * ss_;
    }
    return {};
}

Status Transaction::delete_csums(uint64_t logical, uint64_t len) {
    const uint32_t cs = csum_size(sb_.csum_type);
    const uint64_t end = logical + len;
    struct Hit {
        Key key;
        std::vector<uint8_t> data;
    };
    std::vector<Hit> hits;
    BTK_ASSIGN(std::optional<Key> first, last_key_le(CSUM_TREE_OBJECTID, csum_key(logical)));
    Key from = csum_key(logical);
    if (first && first->objectid == EXTENT_CSUM_OBJECTID && first->type == EXTENT_CSUM_KEY) from = *first;
    BTK_TRY(for_each(CSUM_TREE_OBJECTID, from, csum_key(end - 1), [&](const ItemRef& it) {
        if (it.key.objectid != EXTENT_CSUM_OBJECTID || it.key.type != EXTENT_CSUM_KEY) return true;
        const uint64_t iend = it.key.offset + it.data.size() / cs * ss_;
        if (iend > logical && it.key.offset < end)
            hits.push_back({it.key, std::vector<uint8_t>(it.data.begin(), it.data.end())});
        return true;
    }));
    for (const auto& h : hits) {
        const uint64_t s = h.key.offset, e = s + h.data.size() / cs * ss_;
        if (s < logical) {
            // Keep the head.
            BTK_TRY(resize_item(CSUM_TREE_OBJECTID, h.key, uint32_t((logical - s) / ss_ * cs)));
        } else {
            BTK_TRY(delete_item(CSUM_TREE_OBJECTID, h.key));
        }
        if (e > end) {
            // Keep the tail as an item of its own.
            const size_t skip = (end - s) / ss_ * cs;
            BTK_TRY(insert_item(CSUM_TREE_OBJECTID, csum_key(end),
                                std::span<const uint8_t>(h.data.data() + skip, h.data.size() - skip)));
        }
    }
    return {};
}

}  // namespace btk
