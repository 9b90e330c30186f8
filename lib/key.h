// In-memory (host order) btrfs key and its ordering.
#pragma once

#include "format.h"

#include <compare>
#include <cstdint>

namespace btk {

struct Key {
    uint64_t objectid = 0;
    uint8_t type = 0;
    uint64_t offset = 0;

    friend constexpr auto operator<=>(const Key&, const Key&) = default;

    static Key from_disk(const format::disk_key& k) noexcept {
        return Key{k.objectid.get(), k.type, k.offset.get()};
    }
    void to_disk(format::disk_key& k) const noexcept {
        k.objectid = objectid;
        k.type = type;
        k.offset = offset;
    }
    static constexpr Key min() { return Key{0, 0, 0}; }
    static constexpr Key max() { return Key{~0ULL, 0xff, ~0ULL}; }
};

// First slot of a block (anything with nritems() and key(slot)) whose key is
// >= k; nritems() when none. Binary search.
template <typename Block>
uint32_t key_lower_bound(const Block& b, const Key& k) noexcept {
    uint32_t lo = 0, hi = b.nritems();
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (b.key(mid) < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

}  // namespace btk
