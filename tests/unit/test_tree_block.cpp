#include <doctest.h>

#include <cstring>

#include "tree_block.h"

using namespace btk;

static std::unique_ptr<uint8_t[]> blank(uint32_t size) {
    auto p = std::make_unique<uint8_t[]>(size);
    std::memset(p.get(), 0, size);
    return p;
}

TEST_CASE("leaf with items inside bounds parses") {
    const uint32_t ns = 4096;
    auto d = blank(ns);
    auto* h = reinterpret_cast<format::header*>(d.get());
    h->nritems = 2;
    h->level = 0;
    auto* items = reinterpret_cast<format::item*>(d.get() + sizeof(format::header));
    const uint32_t data_size = ns - sizeof(format::header);
    items[0].key.objectid = 5;
    items[0].offset = data_size - 10;
    items[0].size = 10;
    items[1].key.objectid = 6;
    items[1].offset = data_size - 30;
    items[1].size = 20;
    auto r = TreeBlock::parse(std::move(d), ns);
    REQUIRE(r.ok());
    const auto& b = **r;
    CHECK(b.nritems() == 2);
    CHECK(b.key(1).objectid == 6);
    CHECK(b.item_data(0).size() == 10);
    CHECK(b.lower_bound(Key{6, 0, 0}) == 1);
    CHECK(b.lower_bound(Key{7, 0, 0}) == 2);
    CHECK(b.leaf_free_space() == data_size - 30 - 2 * sizeof(format::item));
}

TEST_CASE("hostile leaves are rejected, never read out of bounds") {
    const uint32_t ns = 4096;
    SUBCASE("item past the end") {
        auto d = blank(ns);
        auto* h = reinterpret_cast<format::header*>(d.get());
        h->nritems = 1;
        auto* items = reinterpret_cast<format::item*>(d.get() + sizeof(format::header));
        items[0].offset = ns;
        items[0].size = 100;
        CHECK(!TreeBlock::parse(std::move(d), ns).ok());
    }
    SUBCASE("offset + size overflow 32 bits") {
        auto d = blank(ns);
        auto* h = reinterpret_cast<format::header*>(d.get());
        h->nritems = 1;
        auto* items = reinterpret_cast<format::item*>(d.get() + sizeof(format::header));
        items[0].offset = 0xfffffff0u;
        items[0].size = 0x20;
        CHECK(!TreeBlock::parse(std::move(d), ns).ok());
    }
    SUBCASE("nritems larger than the block") {
        auto d = blank(ns);
        reinterpret_cast<format::header*>(d.get())->nritems = 1000000;
        CHECK(!TreeBlock::parse(std::move(d), ns).ok());
    }
    SUBCASE("node with too many pointers") {
        auto d = blank(ns);
        auto* h = reinterpret_cast<format::header*>(d.get());
        h->level = 1;
        h->nritems = 200;
        CHECK(!TreeBlock::parse(std::move(d), ns).ok());
    }
}
