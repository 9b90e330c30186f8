// libFuzzer target: `btk check` on a whole image (see fuzz_image.h for the
// input format). A structure-aware mutator keeps the page records intact:
// it mutates a window inside one page, moves a page to another index, or
// copies a page over another, so that most runs reach the checker with
// valid checksums and one damaged structure.
#include "check.h"
#include "fuzz_image.h"

#include <random>

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);


// Runs the checker on one input; also used by the regression unit test.
int btk_fuzz_check_one(const uint8_t* data, size_t size) {
    using namespace btk;
    fuzz::Pages pages = fuzz::decode(data, size);
    if (pages.empty()) return 0;
    fuzz::fix_checksums(pages);
    fuzz::MemImage img(pages);
    if (!img.ok()) return 0;
    CheckOptions o;
    o.cache_bytes = 8 << 20;
    o.qgroup_report = true;  // and the extent listing: both run their code even without quotas
    o.subvol_extents = 5;
    o.threads = 1;  // one reader thread: both the worker and the walk's own reads run
    uint64_t n = 0;
    auto r = check_filesystem({img.path()}, o, [&](const Finding& f) {
        n += f.message().size();  // render every finding, as the CLI does
        n += f.json().size();
    });
    (void)r;
    return int(n & 0);
}

#ifndef BTK_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return btk_fuzz_check_one(data, size); }

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
    using btk::fuzz::kPage;
    using btk::fuzz::kRecord;
    std::minstd_rand rng(seed);
    size_t n = size / kRecord;
    if (n == 0) {
        if (max_size < kRecord) return LLVMFuzzerMutate(data, size, max_size);
        std::memset(data, 0, kRecord);
        data[0] = uint8_t(btk::format::SUPER_INFO_OFFSET / kPage);
        return kRecord;
    }
    size = n * kRecord;
    const int rounds = 1 + int(rng() % 3);
    for (int k = 0; k < rounds; ++k) {
        uint8_t* rec = data + (rng() % n) * kRecord;
        const unsigned what = rng() % 32;
        if (what == 0) {
            // Move the page: the same block at another address.
            uint32_t idx = uint32_t(rec[0]) | uint32_t(rec[1]) << 8 | uint32_t(rec[2]) << 16 | uint32_t(rec[3]) << 24;
            idx += uint32_t(int(rng() % 9) - 4);
            for (int i = 0; i < 4; ++i) rec[i] = uint8_t(idx >> (8 * i));
        } else if (what == 1 && n > 1) {
            // Copy another page's contents over this one.
            const uint8_t* src = data + (rng() % n) * kRecord;
            if (src != rec) std::memmove(rec + 4, src + 4, kPage);
        } else if (what == 2 && size + kRecord <= max_size && n < 400) {
            // Duplicate a record at the next page index.
            std::memcpy(data + size, rec, kRecord);
            data[size] = uint8_t(data[size] + 1);
            size += kRecord;
            ++n;
        } else {
            // Mutate a small window: the usual libFuzzer mutations, in place.
            const size_t off = rng() % kPage;
            const size_t len = std::min<size_t>(kPage - off, 1 + rng() % 64);
            const size_t got = LLVMFuzzerMutate(rec + 4 + off, len, len);
            (void)got;
        }
    }
    return size;
}

extern "C" size_t LLVMFuzzerCustomCrossOver(const uint8_t* d1, size_t s1, const uint8_t* d2, size_t s2, uint8_t* out,
                                            size_t max_out, unsigned int seed) {
    using btk::fuzz::kRecord;
    std::minstd_rand rng(seed);
    const size_t n1 = s1 / kRecord, n2 = s2 / kRecord;
    if (n1 == 0 || n1 * kRecord > max_out) return 0;
    std::memcpy(out, d1, n1 * kRecord);
    if (n2 == 0) return n1 * kRecord;
    // Replace a few records by records of the second input (index and page):
    // the size stays, so inputs do not grow with every crossover.
    const int k = 1 + int(rng() % 4);
    for (int i = 0; i < k; ++i)
        std::memcpy(out + (rng() % n1) * kRecord, d2 + (rng() % n2) * kRecord, kRecord);
    const size_t size = n1 * kRecord;
    return size;
}
#endif
