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

}  // namespace btk
