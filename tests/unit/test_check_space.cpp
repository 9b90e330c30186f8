// btk check, space and qgroup part: the progress meter, a btk mkfs image
// (free space tree written by btk) checking clean, the fuzz input format, and
// every input in tests/fuzz/regressions/ replayed through the fuzz targets
// (each one crashed or tripped a sanitizer once).
#include <doctest.h>

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "check.h"
#include "mkfs.h"
#include "progress.h"
#include "../fuzz/fuzz_image.h"

int btk_fuzz_check_one(const uint8_t* data, size_t size);
int btk_fuzz_tree_block_one(const uint8_t* data, size_t size);

using namespace btk;

namespace {

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') out.push_back(dir + "/" + e->d_name);
        closedir(d);
    }
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

TEST_CASE("progress meter: at most 5 lines a second, rate and ETA") {
    ProgressMeter m(5.0);
    auto l0 = m.update(100.0, "[2/4] reading", 0, 0, 1000);
    REQUIRE(l0);
    CHECK(*l0 == "[2/4] reading: 0 blocks, 0.0 KiB");
    CHECK_FALSE(m.update(100.1, "[2/4] reading", 10, 10 << 20, 400 << 20));
    CHECK(m.update(100.15, "[3/4] next", 10, 10 << 20, 400 << 20, true));  // a forced line (new stage)
    CHECK_FALSE(m.update(100.3, "x", 10, 10 << 20, 400 << 20));
    auto l1 = m.update(101.0, "[2/4] reading", 6400, 100 << 20, 400 << 20);
    REQUIRE(l1);
    CHECK(*l1 == "[2/4] reading: 6400 blocks, 100.0 MiB, 6400 blocks/s, 100.0 MiB/s, ETA 0:03");
    CHECK(ProgressMeter::time_text(3725) == "1:02:05");
    CHECK(ProgressMeter::size_text(3ull << 30) == "3.0 GiB");
}

TEST_CASE("check: a btk mkfs image is clean, free space tree included") {
    char dir[] = "/tmp/btk-test-check-space-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const std::string img = std::string(dir) + "/img";
    MkfsOptions o;
    o.devices = {img};
    o.byte_count = 256ull << 20;
    o.quiet = true;
    o.time = 0;
    auto r = mkfs_run(o);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    std::vector<std::string> found;
    CheckOptions co;
    co.qgroup_report = true;
    co.subvol_extents = 5;
    co.threads = 2;
    auto s = check_filesystem({img}, co, [&](const Finding& f) { found.push_back(f.text_line()); });
    REQUIRE(s.ok());
    CHECK_MESSAGE(found.empty(), (found.empty() ? "" : found[0]));
    CHECK(s->qgroup_note == "quotas are not enabled");
    // The fs tree's root leaf is its only extent.
    REQUIRE(s->subvol_extents.size() == 1);
    CHECK(s->subvol_extents[0].roots == std::vector<uint64_t>{5});
    CHECK(s->subvol_extents[0].length == r->nodesize);
    // The same, read without worker threads.
    co.threads = 0;
    found.clear();
    REQUIRE(check_filesystem({img}, co, [&](const Finding& f) { found.push_back(f.text_line()); }).ok());
    CHECK(found.empty());
    (void)!system(("rm -rf '" + std::string(dir) + "'").c_str());
}

TEST_CASE("fuzz image format: pages round trip, checksums fixed") {
    fuzz::Pages p;
    p[16].fill(0);
    p[3].fill(7);
    auto& sb = p[16];
    std::memcpy(sb.data() + offsetof(format::super_block, magic), "_BHRfS_M", 8);
    const std::string enc = fuzz::encode(p);
    CHECK(enc.size() == 2 * fuzz::kRecord);
    fuzz::Pages q = fuzz::decode(reinterpret_cast<const uint8_t*>(enc.data()), enc.size() + 3);  // a partial record is ignored
    REQUIRE(q.size() == 2);
    CHECK(q[3] == p[3]);
    fuzz::fix_checksums(q);
    uint8_t cs[32];
    csum_compute(format::CSUM_TYPE_CRC32, {q[16].data() + format::CSUM_SIZE, format::SUPER_INFO_SIZE - format::CSUM_SIZE}, cs);
    CHECK(std::memcmp(cs, q[16].data(), 4) == 0);
    fuzz::MemImage img(q);
    REQUIRE(img.ok());
    CHECK(std::ifstream(img.path(), std::ios::binary).good());
}

TEST_CASE("fuzz regressions: every saved input runs cleanly") {
    const std::string top = BTK_SOURCE_DIR;
    size_t n = 0;
    for (const auto& f : files_in(top + "/tests/fuzz/regressions/check")) {
        const std::string d = slurp(f);
        CAPTURE(f);
        btk_fuzz_check_one(reinterpret_cast<const uint8_t*>(d.data()), d.size());
        ++n;
    }
    for (const auto& f : files_in(top + "/tests/fuzz/regressions/tree-block")) {
        const std::string d = slurp(f);
        CAPTURE(f);
        btk_fuzz_tree_block_one(reinterpret_cast<const uint8_t*>(d.data()), d.size());
        ++n;
    }
    MESSAGE(n << " fuzz regression inputs replayed");
}
