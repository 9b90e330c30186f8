#include <doctest.h>

#include "compress.h"
#include "csum.h"
#include "endian.h"
#include "format.h"

#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_getFrameHeader
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef BTK_SOURCE_DIR
#define BTK_SOURCE_DIR "."
#endif

using namespace btk;
using Bytes = std::vector<uint8_t>;

namespace {

constexpr uint8_t kAlgs[] = {format::COMPRESS_ZLIB, format::COMPRESS_LZO, format::COMPRESS_ZSTD};

Bytes read_fixture(const std::string& name) {
    std::ifstream f(std::string(BTK_SOURCE_DIR) + "/fixtures/compress/" + name, std::ios::binary);
    REQUIRE_MESSAGE(f.good(), "cannot open fixture " << name << " (BTK_SOURCE_DIR=" BTK_SOURCE_DIR ")");
    return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string sha256_hex(std::span<const uint8_t> d) {
    uint8_t out[32];
    csum_compute(format::CSUM_TYPE_SHA256, d, out);
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (uint8_t b : out) {
        s += digits[b >> 4];
        s += digits[b & 15];
    }
    return s;
}

// Text-like data that compresses reasonably but not trivially.
Bytes compressible(size_t n, uint32_t seed = 1) {
    static const char* words[] = {"extent ", "tree ", "leaf ", "node ", "chunk ", "inode ",
                                  "csum ",   "root ", "key ",  "item ", "super ", "\n"};
    std::mt19937 rng(seed);
    Bytes b;
    b.reserve(n + 16);
    while (b.size() < n) {
        const char* w = words[rng() % 12];
        b.insert(b.end(), w, w + std::strlen(w));
    }
    b.resize(n);
    return b;
}

Bytes random_bytes(size_t n, uint32_t seed = 7) {
    std::mt19937 rng(seed);
    Bytes b(n);
    for (auto& x : b) x = uint8_t(rng());
    return b;
}

Result<size_t> dec(uint8_t alg, std::span<const uint8_t> in, Bytes& out, uint32_t ss = 4096) {
    return decompress(alg, in, out, ss);
}

// A decoder fed damaged input must either fail or produce exactly `orig`
// (for example when only a trailing checksum was lost); it must never crash.
void check_error_or_exact(uint8_t alg, std::span<const uint8_t> in, const Bytes& orig) {
    Bytes out(orig.size(), 0xCC);
    auto r = dec(alg, in, out);
    if (r.ok()) {
        CHECK(*r == orig.size());
        CHECK(out == orig);
    } else {
        CHECK(r.error().code == Errc::corruption);
    }
}

void put32(Bytes& b, size_t off, uint32_t v) {
    if (b.size() < off + 4) b.resize(off + 4);
    store_le32(b.data() + off, v);
}

}  // namespace

TEST_CASE("compress: names") {
    CHECK(compress_name(format::COMPRESS_NONE) == "none");
    CHECK(compress_name(format::COMPRESS_ZLIB) == "zlib");
    CHECK(compress_name(format::COMPRESS_LZO) == "lzo");
    CHECK(compress_name(format::COMPRESS_ZSTD) == "zstd");
    CHECK(compress_name(4) == "unknown");
}

TEST_CASE("compress: kernel-written extents decode") {
    for (const char* alg : {"zlib", "lzo", "zstd"}) {
        for (const char* kind : {"kernel", "kernel-inline"}) {
            const std::string base = std::string(alg) + "-" + kind;
            CAPTURE(base);
            const uint8_t type = std::string(alg) == "zlib"  ? format::COMPRESS_ZLIB
                                 : std::string(alg) == "lzo" ? format::COMPRESS_LZO
                                                             : format::COMPRESS_ZSTD;
            Bytes in = read_fixture(base + ".bin");
            Bytes meta = read_fixture(base + ".sha256");
            std::istringstream ss(std::string(meta.begin(), meta.end()));
            std::string want_sha;
            size_t ram = 0;
            ss >> want_sha >> ram;
            REQUIRE(want_sha.size() == 64);
            REQUIRE(ram > 0);

            Bytes out(ram);
            auto r = dec(type, in, out);
            REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
            CHECK(*r == ram);
            CHECK(sha256_hex(out) == want_sha);

            // A larger buffer: the stream ends early and the rest is zeroed.
            Bytes big(ram + 5000, 0xEE);
            r = dec(type, in, big);
            REQUIRE(r.ok());
            CHECK(*r == ram);
            CHECK(std::equal(out.begin(), out.end(), big.begin()));
            CHECK(std::all_of(big.begin() + ram, big.end(), [](uint8_t b) { return b == 0; }));

            // A smaller buffer: decoding stops when it is full.
            Bytes small(ram / 3 + 1);
            r = dec(type, in, small);
            REQUIRE(r.ok());
            CHECK(*r == small.size());
            CHECK(std::equal(small.begin(), small.end(), out.begin()));

            // Truncation and bit flips never crash.
            for (size_t cut = 0; cut < in.size(); cut += 1 + in.size() / 61)
                check_error_or_exact(type, std::span(in).first(cut), out);
            std::mt19937 rng(99);
            for (int i = 0; i < 40; ++i) {
                Bytes bad = in;
                bad[rng() % std::min<size_t>(bad.size(), 4096)] ^= uint8_t(1u << (rng() % 8));
                Bytes o(ram);
                (void)dec(type, bad, o);
            }
        }
    }
}

TEST_CASE("compress: round trips") {
    const size_t sizes[] = {0, 1, 4095, 4096, 4097, 65536 + 123, 128 * 1024};
    for (uint8_t alg : kAlgs) {
        for (size_t n : sizes) {
            for (bool random : {false, true}) {
                CAPTURE(int(alg));
                CAPTURE(n);
                CAPTURE(random);
                Bytes data = random ? random_bytes(n) : compressible(n);
                auto c = compress_always(alg, data, 4096, 0);
                REQUIRE(c.ok());
                Bytes out(n, 0xCC);
                auto r = dec(alg, *c, out);
                REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
                CHECK(*r == n);
                CHECK(out == data);

                // Padding after the payload (as on disk) is ignored.
                Bytes padded = *c;
                padded.resize((padded.size() + 4095) / 4096 * 4096 + 4096, 0);
                r = dec(alg, padded, out);
                REQUIRE(r.ok());
                CHECK(out == data);

                auto c2 = compress(alg, data, 4096, 0);
                if (n == 0 || random || n == 1) {
                    REQUIRE_FALSE(c2.ok());
                    CHECK(c2.error().code == Errc::not_found);
                } else {
                    REQUIRE(c2.ok());
                    CHECK(c2->size() < n);
                }
            }
        }
    }
}

TEST_CASE("compress: levels") {
    Bytes data = compressible(100000, 3);
    for (uint8_t alg : {format::COMPRESS_ZLIB, format::COMPRESS_ZSTD}) {
        for (int level : {-5, 0, 1, 3, 9, 15, 100}) {
            auto c = compress(alg, data, 4096, level);
            REQUIRE(c.ok());
            Bytes out(data.size());
            auto r = dec(alg, *c, out);
            REQUIRE(r.ok());
            CHECK(out == data);
        }
    }
}

TEST_CASE("compress: zstd frames use a kernel-sized window") {
    Bytes data = compressible(128 * 1024);
    auto c = compress(format::COMPRESS_ZSTD, data, 4096, 15);
    REQUIRE(c.ok());
    ZSTD_frameHeader fh;
    REQUIRE(ZSTD_getFrameHeader(&fh, c->data(), c->size()) == 0);
    CHECK(fh.windowSize <= (1u << 17));
}

TEST_CASE("compress: lzo framing") {
    for (uint32_t ss : {4096u, 16384u, 65536u}) {
        CAPTURE(ss);
        for (bool random : {false, true}) {
            Bytes data = random ? random_bytes(128 * 1024, ss) : compressible(128 * 1024, ss);
            auto c = compress_always(format::COMPRESS_LZO, data, ss, 0);
            REQUIRE(c.ok());
            const Bytes& b = *c;
            REQUIRE(b.size() >= 4);
            CHECK(load_le32(b.data()) == b.size());
            // Walk the segments: headers never straddle a sector; one segment
            // per sector of input.
            size_t pos = 4, segs = 0;
            while (pos < b.size()) {
                size_t left = ss - pos % ss;
                if (left < 4) {
                    for (size_t i = 0; i < left; ++i) CHECK(b[pos + i] == 0);
                    pos += left;
                    continue;
                }
                REQUIRE(pos + 4 <= b.size());
                size_t len = load_le32(b.data() + pos);
                CHECK(len > 0);
                CHECK(len <= lzo1x_worst_size(ss));
                pos += 4 + len;
                ++segs;
            }
            CHECK(pos == b.size());
            CHECK(segs == data.size() / ss);
            Bytes out(data.size());
            auto r = dec(format::COMPRESS_LZO, b, out, ss);
            REQUIRE(r.ok());
            CHECK(out == data);
        }
    }
}

TEST_CASE("compress: lzo segment headers and the sector tail") {
    // Build payloads by hand where the first segment ends with `tail` bytes
    // left in the 4 KiB sector. With tail < 4 those bytes are skipped (here
    // filled with junk, which must never be read) and the next header starts
    // at the next sector; with tail >= 4 the header is read in place.
    const Bytes second = compressible(4096, 6);
    auto c2 = compress_always(format::COMPRESS_LZO, second, 4096, 0);
    REQUIRE(c2.ok());
    const Bytes seg2(c2->begin() + 8, c2->end());

    std::set<size_t> seen;
    for (size_t n = 3700; n <= 4096 && seen.size() < 6; ++n) {
        Bytes first = random_bytes(n, uint32_t(n));
        auto c1 = compress_always(format::COMPRESS_LZO, first, 4096, 0);
        REQUIRE(c1.ok());
        // Header + segment header + data, without the compressor's padding.
        const size_t end = 8 + load_le32(c1->data() + 4);
        if (end > 4096) break;
        const size_t tail = 4096 - end;
        if (tail > 5 || !seen.insert(tail).second) continue;
        CAPTURE(tail);
        Bytes p(c1->begin(), c1->begin() + end);
        if (tail < 4) p.insert(p.end(), tail, 0xAB);
        put32(p, p.size(), uint32_t(seg2.size()));
        p.insert(p.end(), seg2.begin(), seg2.end());
        put32(p, 0, uint32_t(p.size()));
        Bytes out(n + 4096, 0xCC);
        auto r = dec(format::COMPRESS_LZO, p, out);
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
        CHECK(*r == n + 4096);
        CHECK(std::equal(first.begin(), first.end(), out.begin()));
        CHECK(std::equal(second.begin(), second.end(), out.begin() + n));
    }
    CHECK(seen.size() >= 3);
    CHECK((seen.count(1) + seen.count(2) + seen.count(3)) >= 1);
}

TEST_CASE("compress: hostile lzo payloads") {
    Bytes data = compressible(3 * 4096);
    auto c = compress_always(format::COMPRESS_LZO, data, 4096, 0);
    REQUIRE(c.ok());
    const Bytes good = *c;
    Bytes out(data.size());

    auto expect_corrupt = [&](Bytes in) {
        auto r = dec(format::COMPRESS_LZO, in, out);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::corruption);
    };

    expect_corrupt({});
    expect_corrupt({4, 0, 0});
    // Total length past the end of the payload, huge, or smaller than itself.
    {
        Bytes b = good;
        put32(b, 0, uint32_t(b.size() + 1));
        expect_corrupt(b);
        put32(b, 0, 0xFFFFFFFFu);
        expect_corrupt(b);
        put32(b, 0, 3);
        expect_corrupt(b);
        put32(b, 0, 0);
        expect_corrupt(b);
    }
    // Segment length 0, past the total, past the worst case.
    {
        Bytes b = good;
        put32(b, 4, 0);
        expect_corrupt(b);
        put32(b, 4, uint32_t(b.size()));
        expect_corrupt(b);
        put32(b, 4, 0xFFFFFFF0u);
        expect_corrupt(b);
        Bytes big(4 + 4 + lzo1x_worst_size(4096) + 1, 0);
        put32(big, 0, uint32_t(big.size()));
        put32(big, 4, uint32_t(lzo1x_worst_size(4096) + 1));
        expect_corrupt(big);
    }
    // Total length cuts a segment header in half.
    {
        Bytes b = good;
        put32(b, 0, 6);
        expect_corrupt(b);
    }
    // Garbage segment data.
    {
        Bytes b(4 + 4 + 100, 0xFF);
        put32(b, 0, uint32_t(b.size()));
        put32(b, 4, 100);
        expect_corrupt(b);
    }
    // A segment decoding to more than a sector overruns.
    {
        Bytes two = compressible(8192);
        auto c8 = compress_always(format::COMPRESS_LZO, two, 8192, 0);
        REQUIRE(c8.ok());
        Bytes o(8192);
        auto r = dec(format::COMPRESS_LZO, *c8, o, 4096);
        CHECK_FALSE(r.ok());
    }
    // A total length that ends the payload early is not an error: the rest is
    // zero-filled.
    {
        Bytes b(4, 0);
        put32(b, 0, 4);
        Bytes o(100, 0xCC);
        auto r = dec(format::COMPRESS_LZO, b, o);
        REQUIRE(r.ok());
        CHECK(*r == 0);
        CHECK(std::all_of(o.begin(), o.end(), [](uint8_t x) { return x == 0; }));
    }
    // Bad sector sizes.
    for (uint32_t ss : {0u, 1u, 3000u, 4097u, 131072u}) {
        auto r = dec(format::COMPRESS_LZO, good, out, ss);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::invalid_argument);
    }
}

TEST_CASE("compress: hostile zlib and zstd payloads") {
    Bytes data = compressible(128 * 1024, 11);
    for (uint8_t alg : {format::COMPRESS_ZLIB, format::COMPRESS_ZSTD}) {
        CAPTURE(int(alg));
        auto c = compress_always(alg, data, 4096, 0);
        REQUIRE(c.ok());
        Bytes out(data.size());
        auto r = dec(alg, Bytes{}, out);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::corruption);
        for (size_t cut = 0; cut < c->size(); cut += 1 + c->size() / 97)
            check_error_or_exact(alg, std::span(*c).first(cut), data);
        // Bit flips.
        std::mt19937 rng(1234);
        for (int i = 0; i < 200; ++i) {
            Bytes bad = *c;
            bad[rng() % bad.size()] ^= uint8_t(1u << (rng() % 8));
            Bytes o(data.size());
            (void)dec(alg, bad, o);
        }
        // Not a stream at all.
        Bytes junk = random_bytes(5000, 77);
        r = dec(alg, junk, out);
        CHECK_FALSE(r.ok());
    }
}

TEST_CASE("compress: zstd frame without content size, and oversized window") {
    Bytes data = compressible(50000, 4);
    auto stream_compress = [&](int window_log) {
        ZSTD_CCtx* cctx = ZSTD_createCCtx();
        REQUIRE(cctx);
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, window_log);
        Bytes buf(ZSTD_compressBound(data.size()) + 64);
        ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
        ZSTD_inBuffer ib{data.data(), data.size(), 0};
        size_t rc = ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_continue);
        REQUIRE_FALSE(ZSTD_isError(rc));
        do {
            rc = ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_end);
            REQUIRE_FALSE(ZSTD_isError(rc));
        } while (rc != 0);
        ZSTD_freeCCtx(cctx);
        buf.resize(ob.pos);
        return buf;
    };
    Bytes f = stream_compress(17);
    CHECK(ZSTD_getFrameContentSize(f.data(), f.size()) == ZSTD_CONTENTSIZE_UNKNOWN);
    Bytes out(data.size());
    auto r = dec(format::COMPRESS_ZSTD, f, out);
    REQUIRE(r.ok());
    CHECK(out == data);

    Bytes huge = stream_compress(26);
    ZSTD_frameHeader fh;
    REQUIRE(ZSTD_getFrameHeader(&fh, huge.data(), huge.size()) == 0);
    if (fh.windowSize > (1u << 20)) {
        r = dec(format::COMPRESS_ZSTD, huge, out);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::corruption);
    }
}

TEST_CASE("compress: random garbage never crashes") {
    std::mt19937 rng(2024);
    for (int i = 0; i < 300; ++i) {
        Bytes in = random_bytes(rng() % 600, rng());
        // Make lzo headers plausible half of the time so segments get parsed.
        if (in.size() >= 8 && (i & 1)) {
            put32(in, 0, uint32_t(in.size()));
            put32(in, 4, uint32_t(rng() % (in.size() - 7)));
        }
        for (uint8_t alg : kAlgs) {
            Bytes out(rng() % 9000);
            (void)dec(alg, in, out);
        }
    }
}

TEST_CASE("compress: unsupported and none") {
    Bytes in = {1, 2, 3};
    Bytes out(5, 0xCC);
    auto r = dec(4, in, out);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::unsupported);
    r = dec(format::COMPRESS_NONE, in, out);
    REQUIRE(r.ok());
    CHECK(*r == 3);
    CHECK(out == Bytes{1, 2, 3, 0, 0});

    auto c = compress(4, in, 4096, 0);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == Errc::unsupported);
    c = compress(format::COMPRESS_NONE, in, 4096, 0);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == Errc::invalid_argument);
    Bytes big(format::MAX_UNCOMPRESSED + 1);
    c = compress(format::COMPRESS_ZSTD, big, 4096, 0);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == Errc::invalid_argument);
    // Empty output buffer: nothing to do.
    Bytes empty;
    for (uint8_t alg : kAlgs) {
        auto e = dec(alg, in, empty);
        REQUIRE(e.ok());
        CHECK(*e == 0);
    }
}
