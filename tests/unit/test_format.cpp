#include <doctest.h>

#include "format.h"
#include "key.h"

using namespace btk;

TEST_CASE("little-endian fields convert on access") {
    le64 v;
    v = 0x0102030405060708ULL;
    CHECK(v.bytes[0] == 0x08);
    CHECK(v.bytes[7] == 0x01);
    CHECK(uint64_t(v) == 0x0102030405060708ULL);
    le16 s;
    s = 0xbeef;
    CHECK(s.bytes[0] == 0xef);
}

TEST_CASE("keys order by objectid, type, offset") {
    CHECK(Key{1, 2, 3} < Key{1, 2, 4});
    CHECK(Key{1, 2, 9} < Key{1, 3, 0});
    CHECK(Key{1, 255, 9} < Key{2, 0, 0});
    CHECK(Key::max() > Key{~0ULL, 0xff, 0});
}

TEST_CASE("superblock mirror offsets") {
    CHECK(format::super_offset(0) == 65536);
    CHECK(format::super_offset(1) == 64ULL * 1024 * 1024);
    CHECK(format::super_offset(2) == 256ULL * 1024 * 1024 * 1024);
}
