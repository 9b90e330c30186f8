// Chunk mapping math: hand-made chunk items for every profile, mapped through
// ChunkMap::map, and hostile chunk items rejected by parse_chunk.
//
// The RAID5/6 layout follows the kernel: in full stripe (row) r the data
// stripe d lives on stripe index (d + r) % num_stripes, P right after the
// last data stripe, then Q; each row sits at stripe offset + r * stripe_len.
#include <doctest.h>

#include <cstring>
#include <vector>

#include "chunk.h"

using namespace btk;
using namespace btk::format;

namespace {

constexpr uint64_t K64 = 64 * 1024;
constexpr uint64_t MiB = 1024 * 1024;
constexpr uint64_t GiB = 1024 * MiB;

struct StripeSpec {
    uint64_t devid, offset;
};

std::vector<uint8_t> chunk_item(uint64_t length, uint64_t type, const std::vector<StripeSpec>& stripes,
                                uint16_t sub_stripes = 1, uint64_t stripe_len = K64,
                                int num_stripes_field = -1) {
    std::vector<uint8_t> buf(chunk_item_size(uint32_t(stripes.empty() ? 1 : stripes.size())), 0);
    auto* c = reinterpret_cast<chunk*>(buf.data());
    c->length = length;
    c->owner = EXTENT_TREE_OBJECTID;
    c->stripe_len = stripe_len;
    c->type = type;
    c->io_align = uint32_t(K64);
    c->io_width = uint32_t(K64);
    c->sector_size = 4096;
    c->num_stripes = uint16_t(num_stripes_field >= 0 ? num_stripes_field : int(stripes.size()));
    c->sub_stripes = sub_stripes;
    auto* s = &c->stripe;
    for (size_t i = 0; i < stripes.size(); ++i) {
        s[i].devid = stripes[i].devid;
        s[i].offset = stripes[i].offset;
        std::memset(s[i].dev_uuid, int(stripes[i].devid), UUID_SIZE);
    }
    return buf;
}

ChunkMap one_chunk(uint64_t logical, const std::vector<uint8_t>& item) {
    ChunkMap m;
    auto s = m.add(logical, item);
    REQUIRE(s.ok());
    return m;
}

// Maps `len` bytes at chunk offset `off` and requires a single piece.
PhysicalRange map1(const ChunkMap& m, uint64_t logical, uint64_t len, int mirror = 0) {
    auto r = m.map(logical, len, mirror);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].length == len);
    return (*r)[0];
}

bool same(const PhysicalRange& r, uint64_t devid, uint64_t physical, uint64_t length) {
    return r.devid == devid && r.physical == physical && r.length == length;
}

}  // namespace

TEST_CASE("single: one stripe, no splitting inside the chunk") {
    const uint64_t L = 1 * GiB;
    auto m = one_chunk(L, chunk_item(256 * MiB, BLOCK_GROUP_DATA, {{1, 22 * MiB}}));
    CHECK(m.num_copies(L) == 1);
    auto r = m.map(L + 100, 300 * 1024);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 1);
    CHECK(same((*r)[0], 1, 22 * MiB + 100, 300 * 1024));
    CHECK(!m.map(L, 4096, 1).ok());   // no second copy
    CHECK(!m.map(L, 4096, -1).ok());
    CHECK(!m.map(L - 4096, 4096).ok());              // before the chunk
    CHECK(!m.map(L + 256 * MiB, 4096).ok());         // after it
    CHECK(!m.map(L + 256 * MiB - 4096, 8192).ok());  // running off its end
    CHECK(m.find(L + 256 * MiB - 1) != nullptr);
    CHECK(m.find(L + 256 * MiB) == nullptr);
}

TEST_CASE("DUP, RAID1, RAID1C3, RAID1C4: copy n is stripe n at the same offset") {
    const uint64_t L = 30 * MiB;
    struct Case {
        uint64_t profile;
        std::vector<StripeSpec> stripes;
    };
    const Case cases[] = {
        {BLOCK_GROUP_DUP, {{1, 38 * MiB}, {1, 70 * MiB}}},
        {BLOCK_GROUP_RAID1, {{1, 10 * MiB}, {2, 20 * MiB}}},
        {BLOCK_GROUP_RAID1C3, {{3, 1 * MiB}, {1, 2 * MiB}, {2, 3 * MiB}}},
        {BLOCK_GROUP_RAID1C4, {{4, 5 * MiB}, {3, 6 * MiB}, {2, 7 * MiB}, {1, 8 * MiB}}},
    };
    for (const auto& c : cases) {
        CAPTURE(profile_name(c.profile));
        auto m = one_chunk(L, chunk_item(32 * MiB, BLOCK_GROUP_METADATA | c.profile, c.stripes));
        const int n = int(c.stripes.size());
        CHECK(m.num_copies(L + 5) == n);
        for (int k = 0; k < n; ++k) {
            // 200 KiB crosses several 64 KiB stripe units but mirrors are not split.
            auto r = map1(m, L + 16384, 200 * 1024, k);
            CHECK(same(r, c.stripes[k].devid, c.stripes[k].offset + 16384, 200 * 1024));
        }
        CHECK(!m.map(L, 4096, n).ok());
        auto all = m.map_all_copies(L + 4096, 4096);
        REQUIRE(all.ok());
        REQUIRE(int(all->size()) == n);
        for (int k = 0; k < n; ++k) CHECK(same((*all)[k], c.stripes[k].devid, c.stripes[k].offset + 4096, 4096));
    }
}

TEST_CASE("RAID0: stripe units rotate over the devices and ranges split at unit boundaries") {
    const uint64_t L = 100 * MiB;
    const std::vector<StripeSpec> st = {{1, 1 * MiB}, {2, 2 * MiB}, {3, 3 * MiB}};
    auto m = one_chunk(L, chunk_item(3 * 8 * MiB, BLOCK_GROUP_DATA | BLOCK_GROUP_RAID0, st));
    CHECK(m.num_copies(L) == 1);
    CHECK(same(map1(m, L, 4096), 1, 1 * MiB, 4096));
    CHECK(same(map1(m, L + K64, 4096), 2, 2 * MiB, 4096));
    CHECK(same(map1(m, L + 2 * K64 + 8192, 4096), 3, 3 * MiB + 8192, 4096));
    CHECK(same(map1(m, L + 3 * K64, 4096), 1, 1 * MiB + K64, 4096));
    CHECK(same(map1(m, L + 7 * K64 + 100, 500), 2, 2 * MiB + 2 * K64 + 100, 500));
    // 200 KiB from 60 KiB: 4 KiB + 64 + 64 + 64 + 4.
    auto r = m.map(L + 60 * 1024, 200 * 1024);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 5);
    CHECK(same((*r)[0], 1, 1 * MiB + 60 * 1024, 4096));
    CHECK(same((*r)[1], 2, 2 * MiB, K64));
    CHECK(same((*r)[2], 3, 3 * MiB, K64));
    CHECK(same((*r)[3], 1, 1 * MiB + K64, K64));
    CHECK(same((*r)[4], 2, 2 * MiB + K64, 4096));
}

TEST_CASE("RAID10: 4 stripes, sub_stripes 2: mirrored pairs, striped across pairs") {
    const uint64_t L = 200 * MiB;
    const std::vector<StripeSpec> st = {{1, 10 * MiB}, {2, 20 * MiB}, {3, 30 * MiB}, {4, 40 * MiB}};
    auto m = one_chunk(L, chunk_item(2 * 16 * MiB, BLOCK_GROUP_DATA | BLOCK_GROUP_RAID10, st, 2));
    CHECK(m.num_copies(L) == 2);
    // Unit 0 on the pair (stripes 0, 1), unit 1 on (2, 3), unit 2 back on (0, 1) one row down.
    CHECK(same(map1(m, L + 4096, 4096, 0), 1, 10 * MiB + 4096, 4096));
    CHECK(same(map1(m, L + 4096, 4096, 1), 2, 20 * MiB + 4096, 4096));
    CHECK(same(map1(m, L + K64, 4096, 0), 3, 30 * MiB, 4096));
    CHECK(same(map1(m, L + K64, 4096, 1), 4, 40 * MiB, 4096));
    CHECK(same(map1(m, L + 2 * K64, 4096, 0), 1, 10 * MiB + K64, 4096));
    CHECK(same(map1(m, L + 5 * K64 + 12288, 4096, 1), 4, 40 * MiB + 2 * K64 + 12288, 4096));
    CHECK(!m.map(L, 4096, 2).ok());
    auto r = m.map(L + K64 - 4096, 3 * K64, 1);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 4);
    CHECK(same((*r)[0], 2, 20 * MiB + K64 - 4096, 4096));
    CHECK(same((*r)[1], 4, 40 * MiB, K64));
    CHECK(same((*r)[2], 2, 20 * MiB + K64, K64));
    CHECK(same((*r)[3], 4, 40 * MiB + K64, K64 - 4096));
}

TEST_CASE("RAID5 on 3 devices: parity rotates by one stripe per full stripe") {
    const uint64_t L = 300 * MiB;
    const std::vector<StripeSpec> st = {{1, 10 * MiB}, {2, 20 * MiB}, {3, 30 * MiB}};
    auto m = one_chunk(L, chunk_item(2 * 16 * MiB, BLOCK_GROUP_DATA | BLOCK_GROUP_RAID5, st));
    const Chunk* c = m.find(L);
    REQUIRE(c);
    CHECK(c->nparity() == 1);
    CHECK(c->data_stripes() == 2);
    CHECK(m.num_copies(L) == 2);  // data, or rebuilt from parity
    // Full stripe 0: data on stripes 0, 1 (parity on 2).
    CHECK(same(map1(m, L, 4096), 1, 10 * MiB, 4096));
    CHECK(same(map1(m, L + K64, 4096), 2, 20 * MiB, 4096));
    // Full stripe 1: data on stripes 1, 2 (parity on 0), one row down.
    CHECK(same(map1(m, L + 2 * K64, 4096), 2, 20 * MiB + K64, 4096));
    CHECK(same(map1(m, L + 3 * K64 + 512, 4096), 3, 30 * MiB + K64 + 512, 4096));
    // Full stripe 2: data on stripes 2, 0 (parity on 1).
    CHECK(same(map1(m, L + 4 * K64, 4096), 3, 30 * MiB + 2 * K64, 4096));
    CHECK(same(map1(m, L + 5 * K64, 4096), 1, 10 * MiB + 2 * K64, 4096));
    // Full stripe 3 is laid out like full stripe 0.
    CHECK(same(map1(m, L + 6 * K64, 4096), 1, 10 * MiB + 3 * K64, 4096));
    // Copy 1 maps to the data stripes too (the reader rebuilds from parity).
    CHECK(same(map1(m, L + 2 * K64, 4096, 1), 2, 20 * MiB + K64, 4096));
    // A range over a full-stripe boundary splits onto the rotated stripes.
    auto r = m.map(L + K64 + 8192, K64);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK(same((*r)[0], 2, 20 * MiB + 8192, K64 - 8192));
    CHECK(same((*r)[1], 2, 20 * MiB + K64, 8192));
    CHECK(!m.map_all_copies(L, 4096).ok());  // no writes to RAID5/6
}

TEST_CASE("RAID5 on 4 devices and RAID6 on 4 devices") {
    const uint64_t L = 500 * MiB;
    const std::vector<StripeSpec> st = {{1, 1 * MiB}, {2, 2 * MiB}, {3, 3 * MiB}, {4, 4 * MiB}};
    SUBCASE("RAID5: 3 data stripes per row") {
        auto m = one_chunk(L, chunk_item(3 * 8 * MiB, BLOCK_GROUP_METADATA | BLOCK_GROUP_RAID5, st));
        CHECK(m.find(L)->data_stripes() == 3);
        // Row 0: 0 1 2 (P 3); row 1: 1 2 3 (P 0); row 2: 2 3 0 (P 1).
        const int expect[3][3] = {{0, 1, 2}, {1, 2, 3}, {2, 3, 0}};
        for (int row = 0; row < 3; ++row)
            for (int d = 0; d < 3; ++d) {
                const int s = expect[row][d];
                CHECK(same(map1(m, L + uint64_t(row * 3 + d) * K64 + 4096, 4096), st[s].devid,
                           st[s].offset + uint64_t(row) * K64 + 4096, 4096));
            }
    }
    SUBCASE("RAID6: 2 data stripes per row, P and Q after them") {
        auto m = one_chunk(L, chunk_item(2 * 8 * MiB, BLOCK_GROUP_DATA | BLOCK_GROUP_RAID6, st));
        const Chunk* c = m.find(L);
        CHECK(c->nparity() == 2);
        CHECK(c->data_stripes() == 2);
        CHECK(m.num_copies(L) == 2);
        // Row 0: data 0 1 (P 2, Q 3); row 1: 1 2 (P 3, Q 0); row 2: 2 3; row 3: 3 0; row 4 = row 0.
        const int expect[5][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 0}, {0, 1}};
        for (int row = 0; row < 5; ++row)
            for (int d = 0; d < 2; ++d) {
                const int s = expect[row][d];
                CHECK(same(map1(m, L + uint64_t(row * 2 + d) * K64, K64), st[s].devid,
                           st[s].offset + uint64_t(row) * K64, K64));
            }
    }
}

TEST_CASE("a range crossing from one chunk into the next maps to both") {
    ChunkMap m;
    REQUIRE(m.add(1 * GiB, chunk_item(8 * MiB, BLOCK_GROUP_DATA, {{1, 50 * MiB}})).ok());
    REQUIRE(m.add(1 * GiB + 8 * MiB, chunk_item(8 * MiB, BLOCK_GROUP_DATA, {{2, 70 * MiB}})).ok());
    auto r = m.map(1 * GiB + 8 * MiB - 4096, 12288);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK(same((*r)[0], 1, 58 * MiB - 4096, 4096));
    CHECK(same((*r)[1], 2, 70 * MiB, 8192));
    // A gap after the second chunk is an error, not a short result.
    CHECK(!m.map(1 * GiB + 16 * MiB - 4096, 8192).ok());
}

TEST_CASE("ChunkMap::add rejects overlapping chunks, accepts a duplicate") {
    ChunkMap m;
    auto item = chunk_item(8 * MiB, BLOCK_GROUP_DATA, {{1, 50 * MiB}});
    REQUIRE(m.add(1 * GiB, item).ok());
    CHECK(m.add(1 * GiB, item).ok());
    CHECK(m.chunks().size() == 1);
    CHECK(!m.add(1 * GiB + 4 * MiB, item).ok());  // starts inside
    CHECK(!m.add(1 * GiB - 4 * MiB, item).ok());  // runs into it
    CHECK(m.add(1 * GiB + 8 * MiB, item).ok());   // adjacent is fine
    CHECK(m.chunks().size() == 2);
}

TEST_CASE("hostile chunk items are rejected by parse_chunk") {
    const uint64_t L = 1 * GiB;
    const std::vector<StripeSpec> two = {{1, MiB}, {2, MiB}};
    const std::vector<StripeSpec> three = {{1, MiB}, {2, MiB}, {3, MiB}};
    const std::vector<StripeSpec> four = {{1, MiB}, {2, MiB}, {3, MiB}, {4, MiB}};
    const uint64_t D = BLOCK_GROUP_DATA;

    // Sanity: the well-formed versions parse.
    REQUIRE(parse_chunk(L, chunk_item(MiB, D, {{1, MiB}})).ok());
    REQUIRE(parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID10, four, 2)).ok());

    SUBCASE("num_stripes 0") { CHECK(!parse_chunk(L, chunk_item(MiB, D, {{1, MiB}}, 1, K64, 0)).ok()); }
    SUBCASE("stripe_len 0, not a power of 2, absurd") {
        CHECK(!parse_chunk(L, chunk_item(MiB, D, {{1, MiB}}, 1, 0)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D, {{1, MiB}}, 1, 3 * K64)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D, {{1, MiB}}, 1, K64 + 1)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D, {{1, MiB}}, 1, 1ULL << 40)).ok());
    }
    SUBCASE("item too small") {
        auto item = chunk_item(MiB, D, {{1, MiB}});
        CHECK(!parse_chunk(L, std::span(item).first(40)).ok());
        CHECK(!parse_chunk(L, std::span(item).first(sizeof(chunk) - 1)).ok());
        CHECK(!parse_chunk(L, std::span<const uint8_t>()).ok());
        // num_stripes says 3 but the item only holds 2.
        auto short_item = chunk_item(MiB, D | BLOCK_GROUP_RAID1C3, two, 1, K64, 3);
        CHECK(!parse_chunk(L, short_item).ok());
    }
    SUBCASE("length 0 or overflowing the address space") {
        CHECK(!parse_chunk(L, chunk_item(0, D, {{1, MiB}})).ok());
        CHECK(!parse_chunk(~0ULL - 4095, chunk_item(8192, D, {{1, MiB}})).ok());
        CHECK(!parse_chunk(L, chunk_item(~0ULL - 100, D, {{1, MiB}})).ok());
    }
    SUBCASE("no type bits, several profile bits") {
        CHECK(!parse_chunk(L, chunk_item(MiB, 0, {{1, MiB}})).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID1 | BLOCK_GROUP_DUP, two)).ok());
    }
    SUBCASE("num_stripes inconsistent with the profile") {
        CHECK(!parse_chunk(L, chunk_item(MiB, D, two)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_DUP, {{1, MiB}})).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_DUP, three)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID1, {{1, MiB}})).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID1, three)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID1C3, two)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID1C4, three)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID10, three, 2)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID10, four, 0)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID10, two, 3)).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID5, {{1, MiB}})).ok());
        CHECK(!parse_chunk(L, chunk_item(MiB, D | BLOCK_GROUP_RAID6, two)).ok());
    }
    SUBCASE("sys_chunk_array with a non-SYSTEM chunk or an overrun") {
        super_block sb{};
        auto item = chunk_item(MiB, D, {{1, MiB}});
        disk_key k{};
        k.objectid = FIRST_CHUNK_TREE_OBJECTID;
        k.type = CHUNK_ITEM_KEY;
        k.offset = L;
        std::memcpy(sb.sys_chunk_array, &k, sizeof k);
        std::memcpy(sb.sys_chunk_array + sizeof k, item.data(), item.size());
        sb.sys_chunk_array_size = uint32_t(sizeof k + item.size());
        ChunkMap m;
        CHECK(!m.add_sys_chunk_array(sb).ok());  // DATA chunk in the system array
        auto sys = chunk_item(MiB, BLOCK_GROUP_SYSTEM | BLOCK_GROUP_DUP, two);
        std::memcpy(sb.sys_chunk_array + sizeof k, sys.data(), sys.size());
        sb.sys_chunk_array_size = uint32_t(sizeof k + sys.size());
        ChunkMap ok;
        CHECK(ok.add_sys_chunk_array(sb).ok());
        sb.sys_chunk_array_size = uint32_t(sizeof k + sys.size() - 1);
        ChunkMap cut;
        CHECK(!cut.add_sys_chunk_array(sb).ok());
    }
}
