// Searching and iterating B-trees read through a Filesystem.
#pragma once

#include "fs.h"

#include <functional>
#include <string>
#include <span>
#include <vector>

namespace btk {

// A position in a tree: the path of blocks from the root down to a leaf slot.
// Every child is read with the expectations its parent pointer gives (level,
// generation, first key), so a cursor never loops on a corrupted tree.
class TreeCursor {
public:
    TreeCursor(Filesystem& fs, const RootRef& root) : fs_(fs), root_(root) {}

    // Salvage mode: a child block that cannot be read is skipped (its error is
    // appended to `skipped`) and iteration goes on with the next pointer.
    // Applies to seek() and next(); prev() and last() still fail.
    void skip_unreadable(std::vector<std::string>* skipped) noexcept { skipped_ = skipped; }

    Result<bool> seek(const Key& k);     // first item with key >= k
    Result<bool> seek_le(const Key& k);  // last item with key <= k
    Result<bool> first() { return seek(Key::min()); }
    Result<bool> last();
    Result<bool> next();
    Result<bool> prev();

    bool valid() const noexcept { return valid_; }
    Key key() const noexcept { return leaf().key(slot()); }
    std::span<const uint8_t> data() const noexcept { return leaf().item_data(slot()); }
    const TreeBlock& leaf() const noexcept { return *path_.back().block; }
    const BlockRef& leaf_ref() const noexcept { return path_.back().block; }
    uint32_t slot() const noexcept { return path_.back().slot; }

private:
    struct Step {
        BlockRef block;
        uint32_t slot;
    };
    Result<BlockRef> read_root();
    Result<BlockRef> read_child(const TreeBlock& node, uint32_t slot);
    // Descends from path_.back() (a node) to the leftmost/rightmost leaf.
    // In salvage mode a failed leftmost descent leaves path_ ending at an
    // exhausted node and returns false.
    Result<bool> descend_edge(bool rightmost);
    // Moves to the first item after the subtree under path_.back()'s current
    // slot (path_.back() is a node).
    Result<bool> advance_from_nodes();

    Filesystem& fs_;
    RootRef root_;
    std::vector<Step> path_;
    bool valid_ = false;
    std::vector<std::string>* skipped_ = nullptr;
};

using ItemVisitor = std::function<bool(const Key& key, std::span<const uint8_t> data)>;

// Calls `fn` for each item with min <= key <= max in key order; `fn` returns
// false to stop early.
// With `skipped`, unreadable subtrees are skipped and their errors appended.
Status for_each_item(Filesystem& fs, const RootRef& root, const Key& min, const Key& max,
                     const ItemVisitor& fn, std::vector<std::string>* skipped = nullptr);

// Looks up the item with exactly this key; Errc::not_found when absent.
Result<std::vector<uint8_t>> lookup_item(Filesystem& fs, const RootRef& root, const Key& key);

}  // namespace btk
