// Compression of btrfs file extents (see compress.h for the framing).
#include "compress.h"

#include "endian.h"
#include "format.h"

#include <lzo/lzo1x.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

namespace btk {

namespace {

constexpr int kZlibDefaultLevel = 3;
constexpr int kZlibMaxLevel = 9;
constexpr int kZstdDefaultLevel = 3;
constexpr int kZstdMaxLevel = 15;
// The kernel sizes its zstd workspaces for a 128 KiB window.
constexpr int kZstdCompressWindowLog = 17;
// Decoding accepts somewhat larger windows than the kernel, but stays bounded
// so a hostile frame header cannot make us allocate a huge window.
constexpr int kZstdDecompressWindowLogMax = 20;
constexpr size_t kLzoLen = 4;  // size of the total-length and segment headers

bool valid_sectorsize(uint32_t s) { return s >= 512 && s <= 65536 && (s & (s - 1)) == 0; }

Status lzo_ready() {
    static const int rc = lzo_init();
    if (rc != LZO_E_OK) return make_error(Errc::unsupported, "lzo: lzo_init failed ({})", rc);
    return {};
}

// ---------------------------------------------------------------------------
// Decompression

Result<size_t> zlib_decompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
    if (out.empty()) return size_t(0);
    z_stream zs{};
    if (inflateInit(&zs) != Z_OK) return make_error(Errc::io, "zlib: cannot initialise inflate");
    struct Guard {
        z_stream* z;
        ~Guard() { inflateEnd(z); }
    } guard{&zs};

    size_t in_pos = 0, out_pos = 0;
    for (;;) {
        size_t in_chunk = std::min<size_t>(in.size() - in_pos, UINT_MAX);
        size_t out_chunk = std::min<size_t>(out.size() - out_pos, UINT_MAX);
        zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
        zs.avail_in = static_cast<uInt>(in_chunk);
        zs.next_out = out.data() + out_pos;
        zs.avail_out = static_cast<uInt>(out_chunk);
        int rc = inflate(&zs, Z_NO_FLUSH);
        size_t used = in_chunk - zs.avail_in;
        size_t made = out_chunk - zs.avail_out;
        in_pos += used;
        out_pos += made;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return corruption("zlib: {} at input offset {}", zs.msg ? zs.msg : "bad stream", in_pos);
        if (out_pos == out.size()) break;  // the extent is complete
        if (used == 0 && made == 0)
            return corruption("zlib: stream truncated after {} input bytes ({} of {} bytes produced)",
                              in_pos, out_pos, out.size());
    }
    return out_pos;
}

Result<size_t> zstd_decompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
    if (out.empty()) return size_t(0);
    std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    if (!dctx) return make_error(Errc::io, "zstd: cannot create a decompression context");
    size_t rc = ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, kZstdDecompressWindowLogMax);
    if (ZSTD_isError(rc)) return make_error(Errc::io, "zstd: {}", ZSTD_getErrorName(rc));

    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    while (ob.pos < ob.size) {
        size_t in_before = ib.pos, out_before = ob.pos;
        rc = ZSTD_decompressStream(dctx.get(), &ob, &ib);
        if (ZSTD_isError(rc))
            return corruption("zstd: {} at input offset {}", ZSTD_getErrorName(rc), ib.pos);
        if (rc == 0) break;  // frame complete; anything after it is padding
        if (ib.pos == in_before && ob.pos == out_before)
            return corruption("zstd: frame truncated after {} input bytes ({} of {} bytes produced)",
                              ib.pos, ob.pos, out.size());
    }
    return ob.pos;
}

Result<size_t> lzo_decompress(std::span<const uint8_t> in, std::span<uint8_t> out,
                              uint32_t sectorsize) {
    if (!valid_sectorsize(sectorsize))
        return make_error(Errc::invalid_argument, "lzo: invalid sectorsize {}", sectorsize);
    if (out.empty()) return size_t(0);
    BTK_TRY(lzo_ready());
    if (in.size() < kLzoLen)
        return corruption("lzo: payload of {} bytes is too short for its header", in.size());
    const size_t total = load_le32(in.data());
    if (total < kLzoLen || total > in.size())
        return corruption("lzo: total length {} does not fit the {} byte payload", total, in.size());

    const size_t max_seg = lzo1x_worst_size(sectorsize);
    std::vector<uint8_t> bounce;
    size_t pos = kLzoLen, produced = 0;
    while (produced < out.size() && pos < total) {
        size_t sector_left = sectorsize - pos % sectorsize;
        if (sector_left < kLzoLen) {  // zero padding up to the next sector
            pos += sector_left;
            continue;
        }
        if (total - pos < kLzoLen)
            return corruption("lzo: truncated segment header at offset {} (total {})", pos, total);
        const size_t seg_len = load_le32(in.data() + pos);
        pos += kLzoLen;
        if (seg_len == 0 || seg_len > max_seg || seg_len > total - pos)
            return corruption("lzo: bad segment length {} at offset {} (total {}, limit {})",
                              seg_len, pos - kLzoLen, total, max_seg);

        // Decode in place when a whole sector fits, else through a bounce buffer.
        const size_t room = out.size() - produced;
        uint8_t* dst = out.data() + produced;
        if (room < sectorsize) {
            bounce.resize(sectorsize);
            dst = bounce.data();
        }
        lzo_uint dlen = sectorsize;
        int rc = lzo1x_decompress_safe(const_cast<uint8_t*>(in.data() + pos), seg_len, dst, &dlen,
                                       nullptr);
        if (rc != LZO_E_OK)
            return corruption("lzo: segment at offset {} of {} bytes does not decode (error {})",
                              pos - kLzoLen, seg_len, rc);
        size_t n = std::min<size_t>(dlen, room);
        if (dst == bounce.data()) std::memcpy(out.data() + produced, bounce.data(), n);
        produced += n;
        pos += seg_len;
    }
    return produced;
}

// ---------------------------------------------------------------------------
// Compression

Result<std::vector<uint8_t>> zlib_compress(std::span<const uint8_t> in, int level) {
    if (level <= 0) level = kZlibDefaultLevel;
    level = std::min(level, kZlibMaxLevel);
    z_stream zs{};
    if (deflateInit(&zs, level) != Z_OK)
        return make_error(Errc::io, "zlib: cannot initialise deflate");
    struct Guard {
        z_stream* z;
        ~Guard() { deflateEnd(z); }
    } guard{&zs};
    std::vector<uint8_t> buf(deflateBound(&zs, static_cast<uLong>(in.size())));
    zs.next_in = const_cast<Bytef*>(in.data());
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = buf.data();
    zs.avail_out = static_cast<uInt>(buf.size());
    int rc = deflate(&zs, Z_FINISH);
    if (rc != Z_STREAM_END)
        return make_error(Errc::io, "zlib: deflate failed ({})", rc);
    buf.resize(zs.total_out);
    return buf;
}

Result<std::vector<uint8_t>> zstd_compress(std::span<const uint8_t> in, int level) {
    if (level <= 0) level = kZstdDefaultLevel;
    level = std::min(level, kZstdMaxLevel);
    std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
    if (!cctx) return make_error(Errc::io, "zstd: cannot create a compression context");
    size_t rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(rc))
        rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_windowLog, kZstdCompressWindowLog);
    if (ZSTD_isError(rc)) return make_error(Errc::io, "zstd: {}", ZSTD_getErrorName(rc));
    std::vector<uint8_t> buf(ZSTD_compressBound(in.size()));
    rc = ZSTD_compress2(cctx.get(), buf.data(), buf.size(), in.data(), in.size());
    if (ZSTD_isError(rc)) return make_error(Errc::io, "zstd: {}", ZSTD_getErrorName(rc));
    buf.resize(rc);
    return buf;
}

Result<std::vector<uint8_t>> lzo_compress(std::span<const uint8_t> in, uint32_t sectorsize) {
    if (!valid_sectorsize(sectorsize))
        return make_error(Errc::invalid_argument, "lzo: invalid sectorsize {}", sectorsize);
    BTK_TRY(lzo_ready());
    std::vector<uint8_t> wrkmem(LZO1X_1_MEM_COMPRESS);
    std::vector<uint8_t> seg(lzo1x_worst_size(sectorsize));
    std::vector<uint8_t> outbuf;
    const size_t sectors = (in.size() + sectorsize - 1) / sectorsize;
    outbuf.reserve(kLzoLen + sectors * (kLzoLen + 1 + seg.size()));
    outbuf.resize(kLzoLen);

    for (size_t off = 0; off < in.size(); off += sectorsize) {
        const size_t n = std::min<size_t>(sectorsize, in.size() - off);
        lzo_uint clen = seg.size();
        int rc = lzo1x_1_compress(const_cast<uint8_t*>(in.data() + off), n, seg.data(), &clen,
                                  wrkmem.data());
        if (rc != LZO_E_OK || clen == 0 || clen > seg.size())
            return make_error(Errc::io, "lzo: compression failed ({})", rc);
        // The header is placed at a position with at least 4 bytes left in the
        // sector (guaranteed by the padding below).
        uint8_t hdr[kLzoLen];
        store_le32(hdr, static_cast<uint32_t>(clen));
        outbuf.insert(outbuf.end(), hdr, hdr + kLzoLen);
        outbuf.insert(outbuf.end(), seg.data(), seg.data() + clen);
        // Pad with zeroes when the next header would straddle a sector.
        size_t sector_left = sectorsize - outbuf.size() % sectorsize;
        if (sector_left < kLzoLen) outbuf.insert(outbuf.end(), sector_left, 0);
    }
    if (outbuf.size() > UINT32_MAX) return make_error(Errc::invalid_argument, "lzo: input too large");
    store_le32(outbuf.data(), static_cast<uint32_t>(outbuf.size()));
    return outbuf;
}

}  // namespace

std::string_view compress_name(uint8_t compression) noexcept {
    switch (compression) {
    case format::COMPRESS_NONE: return "none";
    case format::COMPRESS_ZLIB: return "zlib";
    case format::COMPRESS_LZO: return "lzo";
    case format::COMPRESS_ZSTD: return "zstd";
    default: return "unknown";
    }
}

Result<size_t> decompress(uint8_t compression, std::span<const uint8_t> in,
                          std::span<uint8_t> out, uint32_t sectorsize) {
    Result<size_t> r = size_t(0);
    switch (compression) {
    case format::COMPRESS_NONE: {
        size_t n = std::min(in.size(), out.size());
        if (n) std::memcpy(out.data(), in.data(), n);
        r = n;
        break;
    }
    case format::COMPRESS_ZLIB: r = zlib_decompress(in, out); break;
    case format::COMPRESS_LZO: r = lzo_decompress(in, out, sectorsize); break;
    case format::COMPRESS_ZSTD: r = zstd_decompress(in, out); break;
    default:
        return make_error(Errc::unsupported, "unknown compression type {}", compression);
    }
    if (r.ok() && *r < out.size()) std::memset(out.data() + *r, 0, out.size() - *r);
    return r;
}

Result<std::vector<uint8_t>> compress_always(uint8_t type, std::span<const uint8_t> in,
                                             uint32_t sectorsize, int level) {
    if (in.size() > format::MAX_UNCOMPRESSED)
        return make_error(Errc::invalid_argument, "cannot compress {} bytes in one extent (max {})",
                          in.size(), format::MAX_UNCOMPRESSED);
    switch (type) {
    case format::COMPRESS_ZLIB: return zlib_compress(in, level);
    case format::COMPRESS_LZO: return lzo_compress(in, sectorsize);
    case format::COMPRESS_ZSTD: return zstd_compress(in, level);
    case format::COMPRESS_NONE:
        return make_error(Errc::invalid_argument, "compression type none cannot compress");
    default: return make_error(Errc::unsupported, "unknown compression type {}", type);
    }
}

Result<std::vector<uint8_t>> compress(uint8_t type, std::span<const uint8_t> in,
                                      uint32_t sectorsize, int level) {
    BTK_ASSIGN(std::vector<uint8_t> buf, compress_always(type, in, sectorsize, level));
    if (buf.size() >= in.size())
        return make_error(Errc::not_found, "{} output of {} bytes is not smaller than {} input bytes",
                          compress_name(type), buf.size(), in.size());
    return buf;
}

}  // namespace btk
