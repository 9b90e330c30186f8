#include <doctest.h>

#include "csum.h"
#include "format.h"

#include <array>
#include <cstring>
#include <string>
#include <vector>

using namespace btk;

namespace {

std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string hex(const uint8_t* p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) {
        s += digits[p[i] >> 4];
        s += digits[p[i] & 15];
    }
    return s;
}

std::string csum_hex(uint16_t type, std::string_view data) {
    uint8_t out[32];
    std::memset(out, 0xAA, sizeof out);
    csum_compute(type, bytes(data), out);
    // Everything past the checksum size must be zeroed.
    for (uint32_t i = csum_size(type); i < 32; ++i) CHECK(out[i] == 0);
    return hex(out, csum_size(type));
}

}  // namespace

TEST_CASE("csum: sizes, names, known types") {
    CHECK(csum_size(format::CSUM_TYPE_CRC32) == 4);
    CHECK(csum_size(format::CSUM_TYPE_XXHASH) == 8);
    CHECK(csum_size(format::CSUM_TYPE_SHA256) == 32);
    CHECK(csum_size(format::CSUM_TYPE_BLAKE2) == 32);
    CHECK(csum_size(4) == 0);
    CHECK(csum_size(0xFFFF) == 0);
    CHECK(csum_name(format::CSUM_TYPE_CRC32) == "crc32c");
    CHECK(csum_name(format::CSUM_TYPE_XXHASH) == "xxhash64");
    CHECK(csum_name(format::CSUM_TYPE_SHA256) == "sha256");
    CHECK(csum_name(format::CSUM_TYPE_BLAKE2) == "blake2b");
    CHECK(csum_name(17) == "unknown");
    for (uint16_t t = 0; t < 4; ++t) CHECK(csum_type_known(t));
    CHECK_FALSE(csum_type_known(4));
}

TEST_CASE("csum: raw crc32c") {
    const std::string_view v = "123456789";
    // Standard CRC-32C check value (init ~0, final inversion).
    CHECK((crc32c(~0u, v.data(), v.size()) ^ ~0u) == 0xE3069283u);
    CHECK(crc32c(0x12345678u, nullptr, 0) == 0x12345678u);
    // RFC 3720 B.4: 32 bytes of zeroes and of 0xFF.
    std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF);
    CHECK((crc32c(~0u, zeros.data(), zeros.size()) ^ ~0u) == 0x8A9136AAu);
    CHECK((crc32c(~0u, ones.data(), ones.size()) ^ ~0u) == 0x62A8AB43u);
    // Incremental computation chains through the seed.
    std::string big(100000, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 131 + (i >> 7));
    uint32_t whole = crc32c(~0u, big.data(), big.size());
    uint32_t part = crc32c(~0u, big.data(), 12345);
    part = crc32c(part, big.data() + 12345, big.size() - 12345);
    CHECK(whole == part);
}

TEST_CASE("csum: crc32c short inputs (inline path) agree with a bitwise reference") {
    // Reflected Castagnoli polynomial, raw register in and out.
    auto ref = [](uint32_t crc, const uint8_t* p, size_t n) {
        for (size_t i = 0; i < n; ++i) {
            crc ^= p[i];
            for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
        }
        return crc;
    };
    std::vector<uint8_t> buf(600);
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(i * 37 + (i >> 3));
    for (size_t off = 0; off < 9; ++off)
        for (size_t n = 0; n + off <= buf.size() && n <= 520; n += (n < 40 ? 1 : 13)) {
            CAPTURE(off);
            CAPTURE(n);
            CHECK(crc32c(0xfffffffeu, buf.data() + off, n) == ref(0xfffffffeu, buf.data() + off, n));
        }
}

TEST_CASE("csum: crc32c as btrfs stores it") {
    // ~crc32c(~0) little-endian in the first four bytes.
    CHECK(csum_hex(format::CSUM_TYPE_CRC32, "123456789") == "839206e3");
    CHECK(csum_hex(format::CSUM_TYPE_CRC32, "") == "00000000");
}

TEST_CASE("csum: xxhash64 seed 0, little-endian") {
    CHECK(csum_hex(format::CSUM_TYPE_XXHASH, "") == "99e9d85137db46ef");  // 0xEF46DB3751D8E999
    CHECK(csum_hex(format::CSUM_TYPE_XXHASH, "abc") == "990977adf52cbc44");  // 0x44BC2CF5AD770999
}

TEST_CASE("csum: sha256") {
    CHECK(csum_hex(format::CSUM_TYPE_SHA256, "abc") ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(csum_hex(format::CSUM_TYPE_SHA256, "") ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("csum: blake2b-256") {
    CHECK(csum_hex(format::CSUM_TYPE_BLAKE2, "abc") ==
          "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    CHECK(csum_hex(format::CSUM_TYPE_BLAKE2, "") ==
          "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

TEST_CASE("csum: unknown type gives zeroes") {
    uint8_t out[32];
    std::memset(out, 0x55, sizeof out);
    csum_compute(9, bytes("abc"), out);
    for (uint8_t b : out) CHECK(b == 0);
}

// Key offsets observed in images written by Linux 6.18 (dump-tree output).
TEST_CASE("csum: name_hash matches kernel DIR_ITEM keys") {
    CHECK(name_hash("foo") == 2507850652u);
    CHECK(name_hash("a") == 3427024844u);
    CHECK(name_hash("d") == 4189400016u);
    CHECK(name_hash("hello.txt") == 1096805209u);
    CHECK(name_hash("with space") == 1456940469u);
    CHECK(name_hash("zstd-small") == 677224418u);
    CHECK(name_hash("L062_" + std::string(200, '0')) == 286007661u);
}

TEST_CASE("csum: extref_hash matches kernel INODE_EXTREF keys") {
    // Hard links named L<nnn>_<200 zeroes> in directory inode 263.
    CHECK(extref_hash(263, "L086_" + std::string(200, '0')) == 17684969u);
    CHECK(extref_hash(263, "L091_" + std::string(200, '0')) == 139131235u);
    CHECK(extref_hash(263, "L077_" + std::string(200, '0')) == 554496133u);
    // Only the low 32 bits of the parent seed the crc.
    CHECK(extref_hash(263 + (1ULL << 32), "x") == extref_hash(263, "x"));
}
