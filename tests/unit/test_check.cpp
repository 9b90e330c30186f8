// btk check: the findings table (stable, unique ids in kind order), message
// rendering and JSON output, and check_filesystem's "could not run" errors.
#include <doctest.h>

#include <cstdio>
#include <set>
#include <string>
#include <unistd.h>

#include "check.h"

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
