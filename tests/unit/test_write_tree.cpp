// TreeBuilder: leaf packing, node levels, block count prediction, and the
// edge cases (empty tree, one item, an item exactly filling a leaf, items
// too large or out of order).
#include <doctest.h>

#include <cstring>
#include <map>
#include <vector>

#include "tree_block.h"
#include "write_tree.h"

using namespace btk;
using namespace btk::format;

namespace {

std::vector<TreeItem> make_items(size_t n, size_t size, uint64_t first_objectid = 256) {
    std::vector<TreeItem> v;
    for (size_t i = 0; i < n; ++i) {
        TreeItem it;
        it.key = Key{first_objectid + i / 3, uint8_t(1 + i % 3), i};
        it.data.resize(size);
        for (size_t j = 0; j < size; ++j) it.data[j] = uint8_t(i * 7 + j);
        v.push_back(std::move(it));
    }
    return v;
}

struct Built {
    BuiltTree tree;
    std::map<uint64_t, std::vector<uint8_t>> blocks;
    std::vector<uint8_t> alloc_levels;
};

Result<Built> build(const TreeBuildOptions& o, const std::vector<TreeItem>& items, uint64_t base = 1 << 20) {
    Built b;
    uint64_t next = base;
    auto alloc = [&](uint8_t level) -> Result<uint64_t> {
        b.alloc_levels.push_back(level);
        uint64_t r = next;
        next += o.nodesize;
        return r;
    };
    auto sink = [&](std::vector<uint8_t>&& blk) -> Status {
        uint64_t bytenr = reinterpret_cast<const header*>(blk.data())->bytenr;
        if (b.blocks.count(bytenr)) return make_error(Errc::invalid_argument, "block {} twice", bytenr);
        b.blocks[bytenr] = std::move(blk);
        return {};
    };
    BTK_ASSIGN(b.tree, build_tree(o, items, alloc, sink));
    return b;
}

BlockRef parse(const std::vector<uint8_t>& raw) {
    auto p = std::make_unique<uint8_t[]>(raw.size());
    std::memcpy(p.get(), raw.data(), raw.size());
    auto r = TreeBlock::parse(std::move(p), uint32_t(raw.size()));
    REQUIRE(r.ok());
    return *r;
}

// Walks the tree from the root, checking levels, node pointers (first key,
// generation) and owner; returns the leaf items in order.
void walk(const Built& b, const TreeBuildOptions& o, uint64_t bytenr, int level, const Key* expect_first,
          std::vector<TreeItem>& out) {
    REQUIRE(b.blocks.count(bytenr));
    auto blk = parse(b.blocks.at(bytenr));
    CHECK(blk->bytenr() == bytenr);
    CHECK(blk->owner() == o.owner);
    CHECK(int(blk->level()) == level);
    if (expect_first && blk->nritems() > 0) CHECK(blk->key(0) == *expect_first);
    if (level == 0) {
        uint32_t used = 0;
        for (uint32_t i = 0; i < blk->nritems(); ++i) {
            auto d = blk->item_data(i);
            out.push_back({blk->key(i), std::vector<uint8_t>(d.begin(), d.end())});
            used += uint32_t(sizeof(item) + d.size());
        }
        // Data packed from the end of the block downwards, no gaps.
        if (blk->nritems() > 0)
            CHECK(blk->item_offset(blk->nritems() - 1) + used == leaf_data_size(o.nodesize) +
                                                                     blk->nritems() * sizeof(item));
        if (blk->nritems() > 1) CHECK(used <= leaf_data_size(o.nodesize) * o.fill_percent / 100);
        return;
    }
    REQUIRE(blk->nritems() >= 1);
    CHECK(blk->nritems() <= nodeptrs_per_block(o.nodesize));
    for (uint32_t i = 0; i < blk->nritems(); ++i) {
        CHECK(blk->ptr_generation(i) == o.generation);
        Key k = blk->key(i);
        walk(b, o, blk->blockptr(i), level - 1, &k, out);
    }
}

void check_tree(const TreeBuildOptions& o, const std::vector<TreeItem>& items) {
    auto plan = plan_tree(o, items);
    REQUIRE(plan.ok());
    auto b = build(o, items);
    REQUIRE(b.ok());
    CHECK(b->blocks.size() == plan->total);
    CHECK(b->tree.blocks.size() == plan->total);
    CHECK(b->tree.level == plan->root_level);
    CHECK(b->tree.root == b->tree.blocks.back().bytenr);
    // Allocation order: all leaves, then each level; matches the plan.
    size_t idx = 0;
    for (size_t l = 0; l < plan->per_level.size(); ++l)
        for (uint32_t i = 0; i < plan->per_level[l]; ++i) {
            REQUIRE(idx < b->alloc_levels.size());
            CHECK(b->alloc_levels[idx] == l);
            CHECK(b->tree.blocks[idx].level == l);
            ++idx;
        }
    std::vector<TreeItem> got;
    walk(*b, o, b->tree.root, b->tree.level, nullptr, got);
    REQUIRE(got.size() == items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        CHECK(got[i].key == items[i].key);
        CHECK(got[i].data == items[i].data);
    }
}

}  // namespace

TEST_CASE("write_tree: empty tree is one empty leaf") {
    TreeBuildOptions o;
    o.nodesize = 4096;
    o.owner = 7;
    auto plan = plan_tree(o, {});
    REQUIRE(plan.ok());
    CHECK(plan->total == 1);
    CHECK(plan->root_level == 0);
    auto b = build(o, {});
    REQUIRE(b.ok());
    REQUIRE(b->blocks.size() == 1);
    auto blk = parse(b->blocks.begin()->second);
    CHECK(blk->nritems() == 0);
    CHECK(blk->level() == 0);
    CHECK(blk->owner() == 7);
    CHECK(blk->leaf_free_space() == leaf_data_size(4096));
}

TEST_CASE("write_tree: one item sits at the end of the leaf") {
    TreeBuildOptions o;
    o.nodesize = 16384;
    auto items = make_items(1, 33);
    check_tree(o, items);
    auto b = build(o, items);
    REQUIRE(b.ok());
    auto blk = parse(b->blocks.begin()->second);
    CHECK(blk->item_offset(0) == leaf_data_size(16384) - 33);
    CHECK(blk->item_size(0) == 33);
}

TEST_CASE("write_tree: an item exactly filling a leaf gets a leaf of its own") {
    TreeBuildOptions o;
    o.nodesize = 4096;
    std::vector<TreeItem> items = make_items(3, 10);
    items[1].data.assign(max_item_data_size(4096), 0xab);
    auto plan = plan_tree(o, items);
    REQUIRE(plan.ok());
    CHECK(plan->per_level[0] == 3);
    CHECK(plan->total == 4);  // three leaves and a root node
    check_tree(o, items);
    auto b = build(o, items);
    REQUIRE(b.ok());
    auto mid = parse(b->blocks.at(b->tree.blocks[1].bytenr));
    CHECK(mid->nritems() == 1);
    CHECK(mid->leaf_free_space() == 0);
}

TEST_CASE("write_tree: an item too large for a leaf is an error") {
    TreeBuildOptions o;
    o.nodesize = 4096;
    auto items = make_items(2, 10);
    items[1].data.assign(max_item_data_size(4096) + 1, 0);
    auto plan = plan_tree(o, items);
    REQUIRE(!plan.ok());
    CHECK(plan.error().code == Errc::invalid_argument);
    CHECK(plan.error().message.find("does not fit") != std::string::npos);
    CHECK(!build(o, items).ok());
}

TEST_CASE("write_tree: keys out of order or duplicated are an error") {
    TreeBuildOptions o;
    auto items = make_items(5, 10);
    std::swap(items[2], items[3]);
    CHECK(!plan_tree(o, items).ok());
    CHECK(!build(o, items).ok());
    items = make_items(5, 10);
    items[3].key = items[2].key;
    CHECK(!plan_tree(o, items).ok());
}

TEST_CASE("write_tree: bad options are rejected") {
    TreeBuildOptions o;
    o.nodesize = 5000;
    CHECK(!plan_tree(o, {}).ok());
    o.nodesize = 4096;
    o.fill_percent = 0;
    CHECK(!plan_tree(o, {}).ok());
    o.fill_percent = 101;
    CHECK(!plan_tree(o, {}).ok());
}

TEST_CASE("write_tree: leaves fill to the limit, nodes form levels") {
    TreeBuildOptions o;
    o.nodesize = 4096;
    o.owner = 5;
    o.generation = 9;
    SUBCASE("two leaves under one node") {
        auto items = make_items(40, 100);  // 125 bytes each: 28 per 90% leaf
        auto plan = plan_tree(o, items);
        REQUIRE(plan.ok());
        CHECK(plan->per_level == std::vector<uint32_t>{2, 1});
        check_tree(o, items);
    }
    SUBCASE("three levels") {
        auto items = make_items(5000, 100);
        auto plan = plan_tree(o, items);
        REQUIRE(plan.ok());
        CHECK(plan->per_level.size() == 3);
        CHECK(plan->root_level == 2);
        CHECK(plan->per_level[0] == (5000 + 27) / 28);
        check_tree(o, items);
    }
    SUBCASE("fill 100% packs leaves fully") {
        o.fill_percent = 100;
        auto items = make_items(64, 100);  // 3995 / 125 = 31 per leaf
        auto plan = plan_tree(o, items);
        REQUIRE(plan.ok());
        CHECK(plan->per_level[0] == 3);
        check_tree(o, items);
    }
    SUBCASE("empty items and 64K nodes") {
        o.nodesize = 65536;
        auto items = make_items(20000, 0);
        check_tree(o, items);
    }
}

TEST_CASE("write_tree: allocator and sink failures propagate") {
    TreeBuildOptions o;
    o.nodesize = 4096;
    auto items = make_items(100, 100);
    int calls = 0;
    auto alloc = [&](uint8_t) -> Result<uint64_t> {
        if (++calls == 3) return make_error(Errc::invalid_argument, "no space");
        return uint64_t(calls) * 4096;
    };
    auto sink = [](std::vector<uint8_t>&&) -> Status { return {}; };
    auto r = build_tree(o, items, alloc, sink);
    REQUIRE(!r.ok());
    CHECK(r.error().message == "no space");
    auto bad_sink = [](std::vector<uint8_t>&&) -> Status { return make_error(Errc::io, "disk full"); };
    calls = 0;
    auto r2 = build_tree(o, items, [&](uint8_t) -> Result<uint64_t> { return uint64_t(++calls) * 4096; }, bad_sink);
    REQUIRE(!r2.ok());
    CHECK(r2.error().code == Errc::io);
}
