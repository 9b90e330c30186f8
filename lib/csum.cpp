// Checksums used by btrfs, backed by ISA-L (crc32c), libxxhash, OpenSSL
// libcrypto (sha256) and libb2 (blake2b).
#include "csum.h"

#include "le_types.h"
#include "format.h"

#include <blake2.h>
#include <isa-l/crc.h>
#include <openssl/evp.h>
#include <xxhash.h>

#include <cstring>

namespace btk {

namespace {

constexpr uint32_t kSha256Size = 32;
constexpr uint32_t kBlake2Size = 32;

// The SHA-256 implementation is fetched once; fetching per call is costly
// with OpenSSL 3.
const EVP_MD* sha256_md() noexcept {
    static const EVP_MD* md = [] {
        const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        return m ? m : EVP_sha256();
    }();
    return md;
}

}  // namespace

uint32_t csum_size(uint16_t csum_type) noexcept {
    switch (csum_type) {
    case format::CSUM_TYPE_CRC32: return 4;
    case format::CSUM_TYPE_XXHASH: return 8;
    case format::CSUM_TYPE_SHA256: return kSha256Size;
    case format::CSUM_TYPE_BLAKE2: return kBlake2Size;
    default: return 0;
    }
}

std::string_view csum_name(uint16_t csum_type) noexcept {
    switch (csum_type) {
    case format::CSUM_TYPE_CRC32: return "crc32c";
    case format::CSUM_TYPE_XXHASH: return "xxhash64";
    case format::CSUM_TYPE_SHA256: return "sha256";
    case format::CSUM_TYPE_BLAKE2: return "blake2b";
    default: return "unknown";
    }
}

bool csum_type_known(uint16_t csum_type) noexcept { return csum_size(csum_type) != 0; }

#if defined(__x86_64__)
namespace {

// Names and other short inputs: the SSE 4.2 instruction inline beats the
// call into ISA-L and its setup.
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(uint32_t crc, const unsigned char* p, size_t len) noexcept {
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    uint32_t c32 = uint32_t(c);
    for (; len > 0; ++p, --len) c32 = __builtin_ia32_crc32qi(c32, *p);
    return c32;
}

const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");

}  // namespace
#endif

// ISA-L's crc32_iscsi works on the raw register: no inversion on entry or
// exit, so crc32_iscsi(buf, len, seed) equals the kernel's crc32c(seed, ...).
// Its length is an int, so feed large buffers in pieces.
uint32_t crc32c(uint32_t seed, const void* data, size_t len) noexcept {
    auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
#if defined(__x86_64__)
    if (len <= 256 && kHaveSse42) return crc32c_sse42(seed, p, len);
#endif
    uint32_t crc = seed;
    constexpr size_t kChunk = size_t(1) << 30;
    while (len > 0) {
        size_t n = len < kChunk ? len : kChunk;
        crc = crc32_iscsi(p, static_cast<int>(n), crc);
        p += n;
        len -= n;
    }
    return crc;
}

void csum_compute(uint16_t csum_type, std::span<const uint8_t> data, uint8_t out[32]) noexcept {
    std::memset(out, 0, format::CSUM_SIZE);
    switch (csum_type) {
    case format::CSUM_TYPE_CRC32:
        store_le32(out, ~crc32c(~uint32_t(0), data.data(), data.size()));
        break;
    case format::CSUM_TYPE_XXHASH:
        store_le64(out, XXH64(data.data(), data.size(), 0));
        break;
    case format::CSUM_TYPE_SHA256: {
        unsigned int n = 0;
        if (EVP_Digest(data.data(), data.size(), out, &n, sha256_md(), nullptr) != 1 ||
            n != kSha256Size)
            std::memset(out, 0, format::CSUM_SIZE);
        break;
    }
    case format::CSUM_TYPE_BLAKE2:
        if (blake2b(out, data.data(), nullptr, kBlake2Size, data.size(), 0) != 0)
            std::memset(out, 0, format::CSUM_SIZE);
        break;
    default:
        break;
    }
}

uint64_t name_hash(std::string_view name) noexcept {
    return crc32c(~uint32_t(1), name.data(), name.size());
}

uint64_t extref_hash(uint64_t parent_objectid, std::string_view name) noexcept {
    return crc32c(static_cast<uint32_t>(parent_objectid), name.data(), name.size());
}

}  // namespace btk
