// btk check: the findings table (stable, unique ids in kind order), message
// rendering and JSON output, and check_filesystem's "could not run" errors.
#include <doctest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "check.h"
#include "gallop.h"
#include "run_queue.h"
#include "u64_map.h"
#include "fs.h"
#include "mkfs.h"
#include "super.h"

using namespace btk;

TEST_CASE("check findings table: ids unique, in kind order, templates balanced") {
    const auto& t = finding_table();
    REQUIRE(t.size() == size_t(FindingKind::count_));
    std::set<std::string> ids;
    for (size_t i = 0; i < t.size(); ++i) {
        CHECK(size_t(t[i].kind) == i);
        CHECK(ids.insert(t[i].id).second);
        std::string m = t[i].message;
        int depth = 0;
        for (char c : m) {
            if (c == '{') ++depth;
            if (c == '}') --depth;
            CHECK((depth == 0 || depth == 1));
        }
        CHECK(depth == 0);
        for (char c : std::string(t[i].id)) CHECK(((c >= 'a' && c <= 'z') || c == '_'));
    }
    CHECK(finding_def(FindingKind::block_crossing_stripe).severity == Severity::warning);
    CHECK(finding_def(FindingKind::block_generation).severity == Severity::error);
}

TEST_CASE("check finding: message, text line and JSON") {
    Finding f;
    f.kind = FindingKind::block_generation;
    f.tree = 5;
    f.bytenr = 30605312;
    f.str("tree", "fs").num("bytenr", 30605312).num("found", 5).num("expected", 7);
    CHECK(f.message() == "tree fs: tree block 30605312 has generation 5, its parent pointer says 7");
    CHECK(f.text_line() == "ERROR: tree fs: tree block 30605312 has generation 5, its parent pointer says 7");
    CHECK(f.json() ==
          "{\"id\":\"block_generation\",\"severity\":\"error\",\"message\":\"tree fs: tree block 30605312 has "
          "generation 5, its parent pointer says 7\",\"tree\":5,\"bytenr\":30605312,\"fields\":{\"tree\":\"fs\","
          "\"bytenr\":30605312,\"found\":5,\"expected\":7}}");
    Finding g;
    g.kind = FindingKind::block_crossing_stripe;
    g.key = Key{1, 2, 3};
    g.str("tree", "a\"b\n");
    CHECK(g.text_line().rfind("WARNING: tree a\"b\n: bad metadata [?, ?)", 0) == 0);
    CHECK(g.json().find("\"key\":[1,2,3]") != std::string::npos);
    CHECK(g.json().find("\"tree\":\"a\\\"b\\n\"") != std::string::npos);
    CHECK(json_escape(std::string("\x01\x7f", 2)) == "\"\\u0001\\u007f\"");
}

TEST_CASE("check_filesystem: errors when it cannot run") {
    int n = 0;
    auto sink = [&](const Finding&) { ++n; };
    CHECK_FALSE(check_filesystem({}, {}, sink).ok());
    CHECK_FALSE(check_filesystem({"/nonexistent/btk-check-image"}, {}, sink).ok());
    char path[] = "/tmp/btk-check-unit.XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, 1 << 20) == 0);
    close(fd);
    auto r = check_filesystem({path}, {}, sink);
    CHECK_FALSE(r.ok());
    CHECK(r.error().message.find("no valid btrfs superblock") != std::string::npos);
    unlink(path);
    CHECK(n == 0);
}

TEST_CASE("check_filesystem: a damaged sys_chunk_array tail is a finding, not a failure to run") {
    char dir[] = "/tmp/btk-check-unit-sys.XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const std::string img = std::string(dir) + "/s.img";
    MkfsOptions o;
    o.devices = {img};
    o.byte_count = 128ull << 20;
    o.fsid = "11111111-2222-4333-8444-555555555555";
    o.time = 1700000000;
    o.quiet = true;
    REQUIRE(mkfs_run(o).ok());
    // Every copy: the array's size grows by one zeroed key (type 0).
    FILE* f = std::fopen(img.c_str(), "r+b");
    REQUIRE(f != nullptr);
    for (int m = 0; m < 2; ++m) {
        format::super_block sb{};
        REQUIRE(std::fseek(f, long(format::super_offset(m)), SEEK_SET) == 0);
        REQUIRE(std::fread(&sb, sizeof sb, 1, f) == 1);
        sb.sys_chunk_array_size = sb.sys_chunk_array_size + uint32_t(sizeof(format::disk_key));
        super_update_csum(sb);
        REQUIRE(std::fseek(f, long(format::super_offset(m)), SEEK_SET) == 0);
        REQUIRE(std::fwrite(&sb, sizeof sb, 1, f) == 1);
    }
    std::fclose(f);

    CHECK_FALSE(Filesystem::open({img}).ok());
    OpenOptions oo;
    oo.tolerate_chunk_errors = true;
    auto fs = Filesystem::open({img}, oo);
    REQUIRE_MESSAGE(fs.ok(), fs.error().message);
    CHECK((*fs)->open_warnings().size() == 1);

    std::vector<std::string> ids;
    auto r = check_filesystem({img}, {}, [&](const Finding& x) { ids.push_back(x.def().id); });
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(ids == std::vector<std::string>{"sys_array_invalid"});
    unlink(img.c_str());
    rmdir(dir);
}

TEST_CASE("gallop_lower_bound: the same answer as std::lower_bound from any hint") {
    // Sorted values with runs of duplicates; keys below, between, on and
    // above them; hints everywhere including past the end.
    uint64_t seed = 12345;
    auto next = [&] {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        return seed >> 33;
    };
    auto less = [](uint64_t a, uint64_t b) { return a < b; };
    for (size_t n : {size_t(0), size_t(1), size_t(2), size_t(7), size_t(64), size_t(1000)}) {
        std::vector<uint64_t> v(n);
        uint64_t x = 10;
        for (auto& e : v) {
            x += next() % 3 == 0 ? 0 : 2 + next() % 5;
            e = x;
        }
        for (int t = 0; t < 2000; ++t) {
            const uint64_t k = next() % (x + 20);
            const size_t hint = size_t(next() % (n + 3));
            const size_t want = size_t(std::lower_bound(v.begin(), v.end(), k) - v.begin());
            CHECK(gallop_lower_bound(v.data(), n, k, hint, less) == want);
        }
    }
}

TEST_CASE("U64Map: the same contents as std::map, key 0 and clustered keys included") {
    // Keys: 0, multiples of 16 KiB (block addresses) and random ones, each
    // inserted up to three times; the first value stays.
    uint64_t seed = 777;
    auto next = [&] {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        return seed;
    };
    U64Map<uint64_t> m;
    std::map<uint64_t, uint64_t> ref;
    m.reserve(10);
    for (int i = 0; i < 30000; ++i) {
        const uint64_t r = next();
        const uint64_t k = r % 7 == 0 ? 0 : r % 3 == 0 ? r : (r >> 40) % 20000 * 16384;
        const uint64_t v = next();
        const auto [p, added] = m.insert(k, v);
        const auto [it, ref_added] = ref.emplace(k, v);
        CHECK(added == ref_added);
        CHECK(*p == it->second);
    }
    CHECK(m.size() == ref.size());
    for (const auto& [k, v] : ref) {
        REQUIRE(m.find(k));
        CHECK(*m.find(k) == v);
    }
    for (int i = 0; i < 1000; ++i) {
        const uint64_t k = next() | 1;  // odd: never inserted as a block address
        CHECK(m.contains(k) == (ref.count(k) > 0));
    }
    U64Map<uint8_t> empty;
    CHECK(!empty.contains(0));
    CHECK(!empty.contains(16384));
    CHECK(empty.size() == 0);
}

TEST_CASE("RunQueue: pops in the order of a sorted multiset, over runs, nesting and the heap") {
    // Pushes: ascending runs nested like directories (a run starts while an
    // older one still waits), more runs at once than the queue keeps, and
    // random values; pops interleaved, sometimes until empty.
    uint64_t seed = 4242;
    auto next = [&] {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        return seed >> 33;
    };
    RunQueue<uint64_t> q;
    std::multiset<uint64_t> ref;
    auto pop_some = [&](size_t n) {
        for (size_t i = 0; i < n && !ref.empty(); ++i) {
            REQUIRE(!q.empty());
            CHECK(q.top() == *ref.begin());
            CHECK(q.pop() == *ref.begin());
            ref.erase(ref.begin());
        }
        CHECK(q.size() == ref.size());
    };
    for (int round = 0; round < 300; ++round) {
        const int nruns = 1 + int(next() % 12);
        std::vector<uint64_t> at(static_cast<size_t>(nruns), 0);
        for (auto& a : at) a = next() % 100000;
        for (int i = 0; i < 400; ++i) {
            const size_t r = size_t(next() % size_t(nruns));
            const uint64_t x = next() % 10 == 0 ? next() % 100000 : (at[r] += next() % 4);
            q.push(x);
            ref.insert(x);
            if (next() % 8 == 0) pop_some(next() % 6);
        }
        pop_some(next() % 2 ? ref.size() : next() % 500);
    }
    // A long run: its consumed front is dropped on the way.
    for (uint64_t i = 0; i < 20000; ++i) {
        q.push(i);
        ref.insert(i);
        if (i % 3 == 0) pop_some(2);
    }
    pop_some(ref.size());
    CHECK(q.empty());
    q.push(5);
    q.clear();
    CHECK(q.empty());
    q.push(3);
    CHECK(q.pop() == 3);
}
