#include "tree.h"

namespace btk {

Result<BlockRef> TreeCursor::read_root() {
    BlockExpect e;
    e.level = root_.level;
    e.generation = root_.generation;
    auto r = fs_.read_block(root_.bytenr, e);
    if (!r) return std::move(r).error().context(fmt::format("root of tree {}", tree_name_for_errors(root_.objectid)));
    return r;
}

Result<BlockRef> TreeCursor::read_child(const TreeBlock& node, uint32_t slot) {
    BlockExpect e;
    e.level = node.level() - 1;
    e.generation = node.ptr_generation(slot);
    e.first_key = node.key(slot);
    auto r = fs_.read_block(node.blockptr(slot), e);
    if (!r)
        return std::move(r).error().context(fmt::format("tree {} node {} slot {}", tree_name_for_errors(root_.objectid),
                                                        node.bytenr(), slot));
    return r;
}

Result<bool> TreeCursor::descend_edge(bool rightmost) {
    while (!path_.back().block->is_leaf()) {
        const TreeBlock& node = *path_.back().block;
        if (node.nritems() == 0) return corruption("tree block {}: empty node", node.bytenr());
        auto child = read_child(node, path_.back().slot);
        if (!child) {
            if (!skipped_ || rightmost) return std::move(child).error();
            skipped_->push_back(child.error().message);
            if (path_.back().slot + 1 < node.nritems()) {
                ++path_.back().slot;
                continue;
            }
            return false;  // this node is exhausted
        }
        const uint32_t s = rightmost ? ((*child)->nritems() ? (*child)->nritems() - 1 : 0) : 0;
        path_.push_back({std::move(child).value(), s});
    }
    return path_.back().block->nritems() > 0;
}

Result<bool> TreeCursor::advance_from_nodes() {
    while (true) {
        while (!path_.empty() && path_.back().slot + 1 >= path_.back().block->nritems()) path_.pop_back();
        if (path_.empty()) {
            valid_ = false;
            return false;
        }
        ++path_.back().slot;
        BTK_ASSIGN(bool nonempty, descend_edge(false));
        if (nonempty) {
            valid_ = true;
            return true;
        }
        if (path_.back().block->is_leaf()) path_.pop_back();
    }
}

Result<bool> TreeCursor::seek(const Key& k) {
    valid_ = false;
    path_.clear();
    BTK_ASSIGN(BlockRef b, read_root());
    while (!b->is_leaf()) {
        if (b->nritems() == 0) return corruption("tree block {}: empty node", b->bytenr());
        uint32_t s = b->lower_bound(k);
        if (s == b->nritems() || b->key(s) > k) s = s ? s - 1 : 0;
        path_.push_back({b, s});
        auto child = read_child(*b, s);
        if (!child) {
            if (!skipped_) return std::move(child).error();
            // Salvage: the first readable item after the lost subtree.
            skipped_->push_back(child.error().message);
            return advance_from_nodes();
        }
        b = std::move(child).value();
    }
    const uint32_t s = b->lower_bound(k);
    path_.push_back({b, s});
    if (s < b->nritems()) {
        valid_ = true;
        return true;
    }
    // Past the end of this leaf: the answer is the first item of the next one.
    path_.back().slot = b->nritems() ? b->nritems() - 1 : 0;
    valid_ = true;
    if (b->nritems() == 0) {
        // Empty leaf (only legal as an empty root): behave as past the end.
        valid_ = path_.size() > 1;
        if (!valid_) return false;
    }
    return next();
}

Result<bool> TreeCursor::next() {
    if (!valid_) return false;
    if (path_.back().slot + 1 < path_.back().block->nritems()) {
        ++path_.back().slot;
        return true;
    }
    // Climb until a node has a further pointer, then take its leftmost leaf.
    path_.pop_back();
    return advance_from_nodes();
}

Result<bool> TreeCursor::prev() {
    if (!valid_) return false;
    if (path_.back().slot > 0 && path_.back().block->nritems() > 0) {
        --path_.back().slot;
        return true;
    }
    while (true) {
        path_.pop_back();
        while (!path_.empty() && path_.back().slot == 0) path_.pop_back();
        if (path_.empty()) {
            valid_ = false;
            return false;
        }
        --path_.back().slot;
        BTK_ASSIGN(bool nonempty, descend_edge(true));
        if (nonempty) return true;
    }
}

Result<bool> TreeCursor::last() {
    valid_ = false;
    path_.clear();
    BTK_ASSIGN(BlockRef b, read_root());
    const uint32_t s = b->nritems() ? b->nritems() - 1 : 0;
    path_.push_back({b, s});
    if (b->nritems() == 0) return false;
    BTK_ASSIGN(bool nonempty, descend_edge(true));
    valid_ = true;
    if (nonempty) return true;
    return prev();
}

Result<bool> TreeCursor::seek_le(const Key& k) {
    BTK_ASSIGN(bool found, seek(k));
    if (found) {
        if (key() == k) return true;
        return prev();
    }
    return last();
}

Status for_each_item(Filesystem& fs, const RootRef& root, const Key& min, const Key& max,
                     const ItemVisitor& fn, std::vector<std::string>* skipped) {
    TreeCursor c(fs, root);
    c.skip_unreadable(skipped);
    BTK_ASSIGN(bool ok, c.seek(min));
    while (ok) {
        const Key k = c.key();
        if (k > max) break;
        if (!fn(k, c.data())) break;
        BTK_ASSIGN(ok, c.next());
    }
    return {};
}

Result<std::vector<uint8_t>> lookup_item(Filesystem& fs, const RootRef& root, const Key& key) {
    TreeCursor c(fs, root);
    BTK_ASSIGN(bool ok, c.seek(key));
    if (!ok || c.key() != key)
        return make_error(Errc::not_found, "item ({} {} {}) not found in tree {}", key.objectid, key.type,
                          key.offset, tree_name_for_errors(root.objectid));
    auto d = c.data();
    return std::vector<uint8_t>(d.begin(), d.end());
}

}  // namespace btk
