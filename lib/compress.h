// Compression of btrfs file extents: zlib, lzo (btrfs framing) and zstd.
//
// The same framing is used for regular and inline extents:
//   zlib  a zlib stream (RFC 1950); bytes after the stream end are ignored.
//   zstd  one zstd frame; bytes after the frame are ignored.
//   lzo   le32 total length (including these 4 bytes), then segments of
//         le32 length + LZO1X data decompressing to at most one sector. A
//         segment header never straddles a sector boundary: when fewer than 4
//         bytes are left in the current sector, they are zero padding.
#pragma once

#include "result.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace btk {

// Name of a compression type as btrfs prints it ("none", "zlib", "lzo",
// "zstd"), "unknown" otherwise.
std::string_view compress_name(uint8_t compression) noexcept;

// Decompresses one extent's payload `in` into `out` (sized to the extent's
// ram_bytes). Returns how many bytes the stream produced; when that is less
// than out.size(), the rest of `out` is zero-filled (as the kernel does). An
// empty `out` returns 0 without looking at `in`. COMPRESS_NONE copies
// min(in.size(), out.size()) bytes.
// Decoding stops once `out` is full. Errors: Errc::corruption for a damaged
// stream, Errc::unsupported for an unknown type, Errc::invalid_argument for a
// sectorsize that is not a power of two in [512, 65536] (used by lzo only).
Result<size_t> decompress(uint8_t compression, std::span<const uint8_t> in,
                          std::span<uint8_t> out, uint32_t sectorsize);

// Compresses `in` (at most format::MAX_UNCOMPRESSED bytes for an extent the
// kernel accepts; larger input is refused with Errc::invalid_argument) into
// the framing above. `level` <= 0 selects the default (zlib 3, zstd 3; lzo has
// no levels); zlib levels are clamped to 1..9 and zstd levels to 1..15. zstd
// frames use a window of at most 128 KiB, as the kernel requires.
//
// When the result is not strictly smaller than the input, returns
// Errc::not_found: the caller should store the data uncompressed. (Empty
// input always gives Errc::not_found.) Checking that compression saves a
// whole sector is left to the caller. For an inline lzo extent the kernel
// requires the item to hold exactly the returned bytes (segment length ==
// inline size - 8), so store it without padding.
Result<std::vector<uint8_t>> compress(uint8_t type, std::span<const uint8_t> in,
                                      uint32_t sectorsize, int level);

// Like compress(), but always returns the compressed payload, whatever its
// size (never Errc::not_found). Useful for tests and for forced compression.
Result<std::vector<uint8_t>> compress_always(uint8_t type, std::span<const uint8_t> in,
                                             uint32_t sectorsize, int level);

// Upper bound of the compressed size of one lzo segment for `len` input bytes.
constexpr size_t lzo1x_worst_size(size_t len) { return len + len / 16 + 64 + 3; }

}  // namespace btk
