// Bulk construction of a B-tree from items given in key order.
//
// The builder packs leaves (item table growing up from the header, item data
// growing down from the end of the block), then node levels of key pointers,
// bottom-up. Block addresses come from a caller-supplied allocator, called
// once per block in build order (all leaves left to right, then each node
// level left to right, the root last), so a caller that knows the block count
// in advance (plan_tree) can hand out addresses it reserved.
//
// The builder fills the header fields it knows (bytenr, owner, nritems,
// level); BlockWriter (write_block.h) fills fsid, flags, chunk tree uuid,
// generation and the checksum before the block goes to disk.
#pragma once

#include "format.h"
#include "key.h"
#include "result.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace btk {

struct TreeItem {
    Key key;
    std::vector<uint8_t> data;
};

struct TreeBuildOptions {
    uint32_t nodesize = 16384;
    uint64_t owner = 0;          // tree id written into every header
    uint64_t generation = 1;     // generation stored in node key pointers
    // Fill leaves and nodes up to this percentage of their capacity (1..100);
    // an item that does not fit under the limit but fits in an empty leaf
    // still gets a leaf of its own.
    uint32_t fill_percent = 90;
};

// Block counts of a tree, computed without building it.
struct TreePlan {
    std::vector<uint32_t> per_level;  // per_level[0] = leaves, ..., back() = 1 (the root)
    uint32_t total = 0;
    uint8_t root_level = 0;
};

struct BuiltBlock {
    uint64_t bytenr = 0;
    uint8_t level = 0;
    Key first_key;     // key of item/pointer 0 (zero key for an empty leaf)
    uint64_t owner = 0;
};

struct BuiltTree {
    uint64_t root = 0;
    uint8_t level = 0;
    std::vector<BuiltBlock> blocks;  // in allocation order; the root is last
};

// Returns the address for the next block of the given level.
using BlockAllocator = std::function<Result<uint64_t>(uint8_t level)>;
// Receives each finished block (nodesize bytes, header partly filled).
using BlockSink = std::function<Status(std::vector<uint8_t>&& block)>;

// Validates the items (strictly increasing keys, each item fits in a leaf)
// and computes how many blocks build_tree will produce for them.
Result<TreePlan> plan_tree(const TreeBuildOptions& opts, std::span<const TreeItem> items);

// Builds the tree. An empty item list gives one empty leaf.
Result<BuiltTree> build_tree(const TreeBuildOptions& opts, std::span<const TreeItem> items,
                             const BlockAllocator& alloc, const BlockSink& sink);

// The same tree as build_tree, from items handed over one at a time in key
// order: each leaf goes to the sink as soon as the next item does not fit,
// so only one leaf (and a key pointer per leaf) is held; the node levels are
// built by finish(). Blocks are allocated in the same order as build_tree's.
class TreeStreamBuilder {
public:
    TreeStreamBuilder(const TreeBuildOptions& opts, BlockAllocator alloc, BlockSink sink);
    Status add(const Key& key, std::span<const uint8_t> data);
    // Finishes the last leaf and the node levels; the builder is spent.
    Result<BuiltTree> finish();
    uint64_t items() const noexcept { return items_; }

private:
    Status flush_leaf();
    TreeBuildOptions opts_;
    BlockAllocator alloc_;
    BlockSink sink_;
    Status bad_options_;
    std::vector<uint8_t> leaf_;
    uint32_t nritems_ = 0, data_end_ = 0, used_ = 0;
    Key first_, last_;
    uint64_t items_ = 0;
    struct Child {
        Key key;
        uint64_t bytenr;
    };
    std::vector<Child> children_;
    BuiltTree out_;
};

// Largest item data size that fits in a leaf of this nodesize.
constexpr uint32_t max_item_data_size(uint32_t nodesize) {
    return format::leaf_data_size(nodesize) - sizeof(format::item);
}

}  // namespace btk
