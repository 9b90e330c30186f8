// Keeping the free space tree exact for a changed block group.
//
// The wanted entries are derived from the group's free ranges: a
// FREE_SPACE_INFO item (extent count, flags) and either one
// FREE_SPACE_EXTENT item per free range or FREE_SPACE_BITMAP items covering
// the whole group, one bit per sector. Like the kernel, a group switches to
// bitmaps when its extent items would take more room than the bitmaps, and
// back to extents only well below that (so it does not flip back and
// forth). Only the entries that differ from what the tree holds are changed.
#include "space.h"

#include "txn.h"

#include <cstring>

namespace btk {

using namespace format;

namespace {

constexpr uint32_t BITMAP_BYTES = 256;  // data bytes of one bitmap item
constexpr uint32_t BITMAP_BITS = BITMAP_BYTES * 8;

struct Thresholds {
    uint64_t high, low;
};

Thresholds thresholds(uint64_t length, uint32_t sectorsize) {
    const uint64_t range = uint64_t(sectorsize) * BITMAP_BITS;
    const uint64_t nbitmaps = (length + range - 1) / range;
    const uint64_t high = nbitmaps * (sizeof(format::item) + BITMAP_BYTES) / sizeof(format::item);
    return {high, high > 100 ? high - 100 : 0};
}

}  // namespace

Status SpaceManager::write_free_space(BlockGroup& bg) {
    const uint32_t ss = t_.sectorsize();
    const uint64_t tree = FREE_SPACE_TREE_OBJECTID;
    // What the tree holds now.
    std::map<Key, std::vector<uint8_t>> have;
    BTK_TRY(t_.for_each(tree, Key{bg.start, 0, 0}, Key{bg.end() - 1, 0xff, ~0ULL}, [&](const ItemRef& it) {
        have.emplace(it.key, std::vector<uint8_t>(it.data.begin(), it.data.end()));
        return true;
    }));
    bool was_bitmaps = false;
    if (auto it = have.find(Key{bg.start, FREE_SPACE_INFO_KEY, bg.length}); it != have.end()) {
        const auto* fi = view_at<free_space_info>(it->second);
        if (fi) was_bitmaps = fi->flags & FREE_SPACE_USING_BITMAPS;
    }
    const uint64_t count = bg.free.size();
    const Thresholds th = thresholds(bg.length, ss);
    const bool bitmaps = was_bitmaps ? count >= th.low : count > th.high;

    std::map<Key, std::vector<uint8_t>> want;
    free_space_info fi{};
    fi.extent_count = uint32_t(count);
    fi.flags = bitmaps ? FREE_SPACE_USING_BITMAPS : 0;
    want[Key{bg.start, FREE_SPACE_INFO_KEY, bg.length}] =
        std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(&fi), reinterpret_cast<const uint8_t*>(&fi) + sizeof(fi));
    if (!bitmaps) {
        for (auto [s, l] : bg.free) want[Key{s, FREE_SPACE_EXTENT_KEY, l}] = {};
    } else {
        const uint64_t range = uint64_t(ss) * BITMAP_BITS;
        auto fr = bg.free.begin();
        for (uint64_t s = bg.start; s < bg.end(); s += range) {
            const uint64_t l = std::min(range, bg.end() - s);
            std::vector<uint8_t> bits((l / ss + 7) / 8, 0);
            while (fr != bg.free.end() && fr->first + fr->second <= s) ++fr;
            for (auto it = fr; it != bg.free.end() && it->first < s + l; ++it) {
                const uint64_t a = std::max(it->first, s), b = std::min(it->first + it->second, s + l);
                for (uint64_t x = (a - s) / ss; x < (b - s) / ss; ++x) bits[x / 8] |= uint8_t(1u << (x % 8));
            }
            want[Key{s, FREE_SPACE_BITMAP_KEY, l}] = std::move(bits);
        }
    }
    for (const auto& [k, d] : have) {
        auto w = want.find(k);
        if (w == want.end()) {
            BTK_TRY(t_.delete_item(tree, k));
        } else if (w->second != d) {
            if (w->second.size() == d.size()) {
                BTK_ASSIGN(std::span<uint8_t> cur, t_.item_for_update(tree, k));
                std::memcpy(cur.data(), w->second.data(), w->second.size());
            } else {
                BTK_TRY(t_.delete_item(tree, k));
                BTK_TRY(t_.insert_item(tree, k, w->second));
            }
        }
    }
    for (const auto& [k, d] : want)
        if (!have.count(k)) BTK_TRY(t_.insert_item(tree, k, d));
    return {};
}

}  // namespace btk
