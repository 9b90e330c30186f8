// Checksums used by btrfs: crc32c, xxhash64, sha256, blake2b-256.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace btk {

// Size in bytes of a checksum of the given type (0 when the type is unknown).
uint32_t csum_size(uint16_t csum_type) noexcept;
// Name as btrfs-progs prints it: "crc32c", "xxhash64", "sha256", "blake2b".
std::string_view csum_name(uint16_t csum_type) noexcept;
bool csum_type_known(uint16_t csum_type) noexcept;

// Computes the checksum of `data` into out[0..csum_size) and zero-fills
// out[csum_size..32). Unknown types produce all zeroes.
void csum_compute(uint16_t csum_type, std::span<const uint8_t> data, uint8_t out[32]) noexcept;

// Raw crc32c (Castagnoli) with the given seed; btrfs uses seed ~0 and then
// inverts the result (csum_compute does that).
uint32_t crc32c(uint32_t seed, const void* data, size_t len) noexcept;

// The btrfs name hash for DIR_ITEM keys: crc32c(~1, name) (no final inversion).
uint64_t name_hash(std::string_view name) noexcept;
// The hash used for INODE_EXTREF keys: crc32c(parent_objectid, name).
uint64_t extref_hash(uint64_t parent_objectid, std::string_view name) noexcept;

}  // namespace btk
