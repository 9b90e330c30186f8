// Makes a whole-image fuzz seed (fuzz_image.h format) from a single-device
// image: the superblock pages and the non-zero pages of its metadata and
// system chunks (data pages are left out: btk check does not read them).
// With a third argument, also writes every tree block found in those pages
// to that directory (seeds for fuzz-tree-block).
//   fuzz-seed IMAGE OUT [BLOCK_DIR]
#include "fs.h"
#include "fuzz_image.h"

#include <cstdio>
#include <fstream>

int main(int argc, char** argv) {
    using namespace btk;
    if (argc < 3) {
        std::fprintf(stderr, "usage: fuzz-seed IMAGE OUT [BLOCK_DIR]\n");
        return 2;
    }
    const size_t max_pages = 1024;
    auto fs = Filesystem::open({argv[1]});
    if (!fs) {
        std::fprintf(stderr, "fuzz-seed: %s: %s\n", argv[1], fs.error().message.c_str());
        return 1;
    }
    if ((*fs)->devices().size() != 1) {
        std::fprintf(stderr, "fuzz-seed: %s: only single-device images\n", argv[1]);
        return 1;
    }
    const Device& dev = *(*fs)->devices().begin()->second;
    fuzz::Pages pages;
    std::array<uint8_t, fuzz::kPage> buf;
    auto take = [&](uint64_t off) -> bool {
        if (off / fuzz::kPage >= fuzz::kMaxPages || off + fuzz::kPage > dev.size()) return true;
        if (!dev.read(off, buf)) return true;
        for (uint8_t b : buf)
            if (b) {
                pages[uint32_t(off / fuzz::kPage)] = buf;
                return pages.size() <= max_pages;
            }
        return true;
    };
    for (int m = 0; m < format::SUPER_MIRROR_MAX; ++m) take(format::super_offset(m));
    for (const auto& [logical, c] : (*fs)->chunk_map().chunks()) {
        if (!(c.type & (format::BLOCK_GROUP_METADATA | format::BLOCK_GROUP_SYSTEM))) continue;
        const uint64_t len = c.length / uint64_t(std::max(1, c.data_stripes()));
        for (const auto& s : c.stripes)
            for (uint64_t o = 0; o < len; o += fuzz::kPage)
                if (!take(s.offset + o)) {
                    std::fprintf(stderr, "fuzz-seed: %s: more than %zu pages\n", argv[1], max_pages);
                    return 1;
                }
    }
    std::ofstream(argv[2], std::ios::binary) << fuzz::encode(pages);
    if (argc > 3) {
        const uint32_t ns = (*fs)->nodesize();
        const uint8_t* fsid = (*fs)->metadata_fsid();
        std::vector<char> block(ns);
        int n = 0;
        for (const auto& [idx, page] : pages) {
            const uint64_t off = uint64_t(idx) * fuzz::kPage;
            if (off % ns || off == format::SUPER_INFO_OFFSET ||
                std::memcmp(page.data() + offsetof(format::header, fsid), fsid, format::FSID_SIZE) != 0)
                continue;
            for (uint32_t i = 0; i < ns / fuzz::kPage; ++i) {
                auto it = pages.find(idx + i);
                if (it == pages.end())
                    std::memset(block.data() + i * fuzz::kPage, 0, fuzz::kPage);
                else
                    std::memcpy(block.data() + i * fuzz::kPage, it->second.data(), fuzz::kPage);
            }
            std::ofstream(std::string(argv[3]) + "/" + std::to_string(off), std::ios::binary).write(block.data(), ns);
            if (++n >= 200) break;
        }
    }
    std::printf("%s: %zu pages\n", argv[2], pages.size());
    return 0;
}
