// Little-endian integer types for on-disk structures.
//
// Each type is a byte array with alignment 1, so a struct made of them has no
// padding and can be overlaid on any byte buffer; the value converts on access.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace btk {

template <typename T>
struct LittleEndian {
    static_assert(std::is_unsigned_v<T>);
    uint8_t bytes[sizeof(T)];

    // One load or store on little-endian hosts (the compiler does not
    // always merge the byte loop, and every item access goes through here).
    constexpr T get() const noexcept {
        if (!std::is_constant_evaluated() && std::endian::native == std::endian::little) {
            T v;
            std::memcpy(&v, bytes, sizeof(T));
            return v;
        }
        T v = 0;
        for (size_t i = 0; i < sizeof(T); ++i) v |= T(bytes[i]) << (8 * i);
        return v;
    }
    constexpr void set(T v) noexcept {
        if (!std::is_constant_evaluated() && std::endian::native == std::endian::little) {
            std::memcpy(bytes, &v, sizeof(T));
            return;
        }
        for (size_t i = 0; i < sizeof(T); ++i) bytes[i] = uint8_t(v >> (8 * i));
    }
    constexpr operator T() const noexcept { return get(); }
    constexpr LittleEndian& operator=(T v) noexcept {
        set(v);
        return *this;
    }
};

using le16 = LittleEndian<uint16_t>;
using le32 = LittleEndian<uint32_t>;
using le64 = LittleEndian<uint64_t>;
static_assert(sizeof(le16) == 2 && alignof(le16) == 1);
static_assert(sizeof(le32) == 4 && alignof(le32) == 1);
static_assert(sizeof(le64) == 8 && alignof(le64) == 1);

inline uint16_t load_le16(const void* p) noexcept {
    uint16_t v;
    std::memcpy(&v, p, 2);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap16(v);
    return v;
}
inline uint32_t load_le32(const void* p) noexcept {
    uint32_t v;
    std::memcpy(&v, p, 4);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    return v;
}
inline uint64_t load_le64(const void* p) noexcept {
    uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
}
inline void store_le32(void* p, uint32_t v) noexcept {
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    std::memcpy(p, &v, 4);
}
inline void store_le64(void* p, uint64_t v) noexcept {
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    std::memcpy(p, &v, 8);
}

}  // namespace btk
