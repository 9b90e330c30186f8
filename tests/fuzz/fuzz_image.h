// The input format of the whole-image fuzz target, shared by the fuzzer, the
// seed maker and the regression unit test.
//
// A btrfs image is mostly zeros, and the part btk check reads (superblocks,
// tree blocks) is a few hundred pages, so an input is a list of page records:
//   [u32 LE page index][4096 bytes]...
// The image is all zeros except those pages (a later record for the same
// index wins); its size is the highest page rounded up to 1 MiB. Indices are
// taken modulo kMaxPages (2 GiB).
//
// Random mutations nearly always break a checksum, and a checker that stops
// at the checksum never sees the mutated field. So before the image is used,
// every superblock copy and every page that starts a tree block of this
// filesystem (its header fsid matches) gets its checksum recomputed.
#pragma once

#include "csum.h"
#include "format.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace btk::fuzz {

constexpr size_t kPage = 4096;
constexpr size_t kRecord = 4 + kPage;
constexpr uint32_t kMaxPages = 1u << 19;

using Pages = std::map<uint32_t, std::array<uint8_t, kPage>>;

inline Pages decode(const uint8_t* data, size_t size) {
    Pages pages;
    for (size_t p = 0; p + kRecord <= size; p += kRecord) {
        uint32_t idx = uint32_t(data[p]) | uint32_t(data[p + 1]) << 8 | uint32_t(data[p + 2]) << 16 |
                       uint32_t(data[p + 3]) << 24;
        idx %= kMaxPages;
        std::memcpy(pages[idx].data(), data + p + 4, kPage);
    }
    return pages;
}

inline std::string encode(const Pages& pages) {
    std::string out;
    for (const auto& [idx, page] : pages) {
        for (int i = 0; i < 4; ++i) out += char(idx >> (8 * i));
        out.append(reinterpret_cast<const char*>(page.data()), kPage);
    }
    return out;
}

// Recomputes the checksums of superblock copies and tree blocks (see above).
inline void fix_checksums(Pages& pages) {
    using namespace format;
    auto sb_page = pages.find(uint32_t(SUPER_INFO_OFFSET / kPage));
    if (sb_page == pages.end()) return;
    super_block sb;
    std::memcpy(&sb, sb_page->second.data(), sizeof(sb));
    const uint16_t ct = sb.csum_type;
    uint32_t ns = sb.nodesize;
    if (ns < kPage || ns > 65536 || (ns & (ns - 1))) ns = 16384;
    const uint8_t* fsid = (uint64_t(sb.incompat_flags) & FEATURE_INCOMPAT_METADATA_UUID) ? sb.metadata_uuid : sb.fsid;
    std::array<uint8_t, FSID_SIZE> want;
    std::memcpy(want.data(), fsid, FSID_SIZE);
    uint8_t cs[32];
    std::vector<uint8_t> block(ns);
    for (auto& [idx, page] : pages) {
        const uint64_t off = uint64_t(idx) * kPage;
        if (off % ns == 0 && std::memcmp(page.data() + offsetof(header, fsid), want.data(), FSID_SIZE) == 0 &&
            off != SUPER_INFO_OFFSET) {
            for (uint32_t i = 0; i < ns / kPage; ++i) {
                auto it = pages.find(idx + i);
                if (it == pages.end())
                    std::memset(block.data() + i * kPage, 0, kPage);
                else
                    std::memcpy(block.data() + i * kPage, it->second.data(), kPage);
            }
            csum_compute(ct, {block.data() + CSUM_SIZE, ns - CSUM_SIZE}, cs);
            std::memcpy(page.data(), cs, CSUM_SIZE);
        }
    }
    for (int m = 0; m < SUPER_MIRROR_MAX; ++m) {
        auto it = pages.find(uint32_t(super_offset(m) / kPage));
        if (it == pages.end()) continue;
        uint8_t* p = it->second.data();
        const uint16_t t = uint16_t(p[offsetof(super_block, csum_type)] | p[offsetof(super_block, csum_type) + 1] << 8);
        csum_compute(t, {p + CSUM_SIZE, SUPER_INFO_SIZE - CSUM_SIZE}, cs);
        std::memcpy(p, cs, CSUM_SIZE);
    }
}

// An in-memory file holding the image; path() names it for Device::open.
class MemImage {
public:
    explicit MemImage(const Pages& pages) {
        fd_ = memfd_create("btk-fuzz", 0);
        if (fd_ < 0) return;
        uint64_t end = 0;
        for (const auto& [idx, page] : pages) {
            if (::pwrite(fd_, page.data(), kPage, off_t(idx) * off_t(kPage)) != ssize_t(kPage)) {
                ::close(fd_);
                fd_ = -1;
                return;
            }
            end = std::max<uint64_t>(end, (uint64_t(idx) + 1) * kPage);
        }
        const uint64_t mib = 1 << 20;
        end = std::max<uint64_t>(mib, (end + mib - 1) / mib * mib);
        if (::ftruncate(fd_, off_t(end)) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~MemImage() {
        if (fd_ >= 0) ::close(fd_);
    }
    MemImage(const MemImage&) = delete;
    MemImage& operator=(const MemImage&) = delete;
    bool ok() const { return fd_ >= 0; }
    std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

private:
    int fd_ = -1;
};

}  // namespace btk::fuzz
