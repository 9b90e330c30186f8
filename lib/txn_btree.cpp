// Copy-on-write B-tree operations of a Transaction: search with intent to
// modify, insert, delete, resize, split and merge of leaves and nodes.
//
// Searches that modify copy every block on the path first (cow_block), so
// splits and merges only ever edit blocks of this transaction. A split or a
// merge changes the path; the search then simply starts again from the root,
// which costs little because every block it meets is already this
// transaction's copy (and copies are never copied again).
#include "txn.h"

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace {

// A block for reading: this transaction's copy or a committed block.
struct RoBlock {
    const EditBlock* e = nullptr;
    const TreeBlock* t = nullptr;
    uint32_t nritems() const { return e ? e->nritems() : t->nritems(); }
    uint8_t level() const { return e ? e->level() : t->level(); }
    Key key(uint32_t i) const { return e ? e->key(i) : t->key(i); }
    uint64_t blockptr(uint32_t i) const { return e ? e->blockptr(i) : t->blockptr(i); }
    uint64_t ptr_generation(uint32_t i) const { return e ? e->ptr_generation(i) : t->ptr_generation(i); }
    std::span<const uint8_t> item_data(uint32_t i) const { return e ? e->item_data(i) : t->item_data(i); }
    uint32_t lower_bound(const Key& k) const { return e ? e->lower_bound(k) : t->lower_bound(k); }
};

RoBlock ro_of(const PathStep& s) { return s.block ? RoBlock{s.block, nullptr} : RoBlock{nullptr, s.tb}; }

// Child slot of a node for `key`: the last pointer whose key is <= key
// (slot 0 when key is below all of them).
template <typename B>
uint32_t node_slot(const B& b, const Key& key) {
    uint32_t s = b.lower_bound(key);
    if ((s == b.nritems() || b.key(s) != key) && s > 0) --s;
    return s;
}

constexpr uint32_t ITEM_HDR = sizeof(format::item);

}  // namespace

// Read-only descent through this transaction's copies and committed blocks.
static Result<Path> ro_search(Transaction& t, uint64_t tree, const Key& key,
                              const std::function<Result<std::pair<EditBlock*, BlockRef>>(uint64_t, const BlockExpect&)>& get) {
    Path p;
    p.tree = tree;
    BTK_ASSIGN(Transaction::TreeRoot * r, t.tree_root(tree));
    BlockExpect ex;
    ex.level = r->level;
    uint64_t bytenr = r->bytenr;
    for (uint32_t depth = 0; depth < MAX_LEVEL + 1; ++depth) {
        BTK_ASSIGN(auto got, get(bytenr, ex));
        PathStep st;
        st.block = got.first;
        if (got.second) {
            st.tb = got.second.get();
            p.keep.push_back(got.second);
        }
        RoBlock b = ro_of(st);
        if (b.level() != uint8_t(ex.level))
            return corruption("tree {} block {}: level {} where {} was expected", tree, bytenr, b.level(), ex.level);
        if (b.level() == 0) {
            st.slot = b.lower_bound(key);
            p.exact = st.slot < b.nritems() && b.key(st.slot) == key;
            p.steps.push_back(st);
            return p;
        }
        if (b.nritems() == 0) return corruption("tree {} node {} is empty", tree, bytenr);
        st.slot = node_slot(b, key);
        p.steps.push_back(st);
        ex.generation = b.ptr_generation(st.slot);
        ex.first_key = b.key(st.slot);
        ex.level = b.level() - 1;
        bytenr = b.blockptr(st.slot);
    }
    return corruption("tree {} is deeper than {} levels", tree, MAX_LEVEL);
}

class BtreeOps {
public:
    static Result<std::pair<EditBlock*, BlockRef>> get_ro(Transaction& t, uint64_t bytenr, const BlockExpect& ex) {
        if (auto it = t.dirty_.find(bytenr); it != t.dirty_.end())
            return std::pair<EditBlock*, BlockRef>{it->second.get(), nullptr};
        BTK_ASSIGN(BlockRef b, t.fs_.read_block(bytenr, ex));
        return std::pair<EditBlock*, BlockRef>{nullptr, std::move(b)};
    }

    // Moves a read-only path to the next leaf; false at the end of the tree.
    static Result<bool> next_leaf(Transaction& t, Path& p) {
        size_t lvl = p.steps.size() - 1;
        while (lvl > 0) {
            --lvl;
            RoBlock b = ro_of(p.steps[lvl]);
            if (p.steps[lvl].slot + 1 < b.nritems()) {
                ++p.steps[lvl].slot;
                // Descend leftmost from here.
                p.steps.resize(lvl + 1);
                for (;;) {
                    RoBlock cur = ro_of(p.steps.back());
                    const uint32_t s = p.steps.back().slot;
                    BlockExpect ex;
                    ex.generation = cur.ptr_generation(s);
                    ex.first_key = cur.key(s);
                    ex.level = cur.level() - 1;
                    BTK_ASSIGN(auto got, get_ro(t, cur.blockptr(s), ex));
                    PathStep st;
                    st.block = got.first;
                    if (got.second) {
                        st.tb = got.second.get();
                        p.keep.push_back(got.second);
                    }
                    RoBlock nb = ro_of(st);
                    if (nb.level() != uint8_t(ex.level))
                        return corruption("tree {}: block {} has level {}, expected {}", p.tree,
                                          cur.blockptr(s), nb.level(), ex.level);
                    st.slot = 0;
                    p.steps.push_back(st);
                    if (nb.level() == 0) return true;
                    if (nb.nritems() == 0) return corruption("tree {}: empty node {}", p.tree, cur.blockptr(s));
                }
            }
        }
        return false;
    }

    static Result<EditBlock*> grow_root(Transaction& t, Path& p) {
        EditBlock* old = p.steps.front().block;
        BTK_ASSIGN(Transaction::TreeRoot * r, t.tree_root(p.tree));
        BTK_ASSIGN(EditBlock * nr, t.alloc_block(p.tree, uint8_t(old->level() + 1), old->nritems() ? old->key(0) : Key{}));
        nr->node_insert(0, old->nritems() ? old->key(0) : Key{}, old->bytenr(), t.gen_);
        r->bytenr = nr->bytenr();
        r->level = nr->level();
        r->dirty = true;
        p.steps.insert(p.steps.begin(), PathStep{nr, nullptr, 0});
        return nr;
    }

    // Splits the node at steps[idx] in two; the caller restarts its search.
    static Status split_node(Transaction& t, Path& p, size_t idx) {
        if (idx == 0) {
            BTK_TRY(grow_root(t, p));
            idx = 1;
        }
        EditBlock* n = p.steps[idx].block;
        EditBlock* parent = p.steps[idx - 1].block;
        const uint32_t ps = p.steps[idx - 1].slot;
        const uint32_t mid = n->nritems() / 2;
        BTK_ASSIGN(EditBlock * right, t.alloc_block(p.tree, n->level(), n->key(mid)));
        n->node_move_tail_to(mid, *right);
        parent->node_insert(ps + 1, right->key(0), right->bytenr(), t.gen_);
        return {};
    }

    // Splits the leaf at the end of the path so that an item of ins_len bytes
    // (data + header) with `key` fits; the caller restarts its search.
    static Status split_leaf(Transaction& t, Path& p, const Key& key, uint32_t ins_len) {
        if (p.steps.size() == 1) BTK_TRY(grow_root(t, p));
        EditBlock* l = p.steps.back().block;
        const uint32_t s = p.steps.back().slot, n = l->nritems();
        EditBlock* parent = p.steps[p.steps.size() - 2].block;
        const uint32_t ps = p.steps[p.steps.size() - 2].slot;
        const uint32_t lds = leaf_data_size(t.ns_);
        // Choose where to cut: appends start a new leaf, otherwise the most
        // even cut that leaves room for the new item on its side.
        int64_t mid = -1;
        if (s == n) {
            mid = n;
        } else {
            uint32_t best = UINT32_MAX;
            for (uint32_t m = 0; m <= n; ++m) {
                const uint32_t left = l->leaf_range_bytes(0, m) + (s <= m ? ins_len : 0);
                const uint32_t right = l->leaf_range_bytes(m, n) + (s > m ? ins_len : 0);
                if (left > lds || right > lds) continue;
                if (std::max(left, right) < best) {
                    best = std::max(left, right);
                    mid = m;
                }
            }
        }
        if (mid >= 0) {
            const Key rkey = uint32_t(mid) < n ? l->key(uint32_t(mid)) : key;
            BTK_ASSIGN(EditBlock * right, t.alloc_block(p.tree, 0, rkey));
            l->leaf_move_tail_to(uint32_t(mid), *right);
            parent->node_insert(ps + 1, rkey, right->bytenr(), t.gen_);
            return {};
        }
        // The new item fits in neither half: it gets a leaf of its own
        // between them.
        BTK_ASSIGN(EditBlock * right, t.alloc_block(p.tree, 0, l->key(s)));
        l->leaf_move_tail_to(s, *right);
        parent->node_insert(ps + 1, right->key(0), right->bytenr(), t.gen_);
        BTK_ASSIGN(EditBlock * middle, t.alloc_block(p.tree, 0, key));
        parent->node_insert(ps + 1, key, middle->bytenr(), t.gen_);
        return {};
    }

    static void fixup_keys(Path& p, size_t from_level_idx, const Key& k) {
        // steps[from_level_idx] changed its first key to k: update parents
        // while the changed block is their first child.
        for (size_t i = from_level_idx; i > 0; --i) {
            PathStep& up = p.steps[i - 1];
            up.block->set_key(up.slot, k);
            if (up.slot != 0) break;
        }
    }

    static Result<EditBlock*> cow_child(Transaction& t, uint64_t tree, EditBlock* parent, uint32_t slot) {
        BlockExpect ex;
        ex.generation = parent->ptr_generation(slot);
        ex.first_key = parent->key(slot);
        ex.level = parent->level() - 1;
        return t.cow_block(tree, parent->blockptr(slot), ex, parent, slot);
    }

    // Removes pointer `slot` of the node at steps[idx] (its child is gone),
    // then repairs the tree above: empty nodes disappear, a first key change
    // propagates, an underfull node merges with a sibling.
    static Status remove_ptr(Transaction& t, Path& p, size_t idx, uint32_t slot) {
        EditBlock* n = p.steps[idx].block;
        n->node_delete(slot);
        if (n->nritems() == 0) {
            if (idx == 0) return corruption("tree {}: root node lost its last pointer", p.tree);
            BTK_TRY(t.free_block(p.tree, n->bytenr(), n->level(), 0, false));
            return remove_ptr(t, p, idx - 1, p.steps[idx - 1].slot);
        }
        if (slot == 0 && idx > 0) fixup_keys(p, idx, n->key(0));
        if (idx > 0 && n->nritems() < n->node_capacity() / 4) BTK_TRY(merge_node(t, p, idx));
        return {};
    }

    static Status merge_node(Transaction& t, Path& p, size_t idx) {
        EditBlock* n = p.steps[idx].block;
        EditBlock* parent = p.steps[idx - 1].block;
        const uint32_t ps = p.steps[idx - 1].slot;
        const uint32_t cap = n->node_capacity();
        if (ps > 0) {
            BTK_ASSIGN(EditBlock * left, cow_child(t, p.tree, parent, ps - 1));
            if (left->nritems() + n->nritems() <= cap * 3 / 4) {
                n->node_move_head_to(n->nritems(), *left);
                BTK_TRY(t.free_block(p.tree, n->bytenr(), n->level(), 0, false));
                return remove_ptr(t, p, idx - 1, ps);
            }
        }
        if (ps + 1 < parent->nritems()) {
            BTK_ASSIGN(EditBlock * right, cow_child(t, p.tree, parent, ps + 1));
            if (right->nritems() + n->nritems() <= cap * 3 / 4) {
                right->node_move_head_to(right->nritems(), *n);
                BTK_TRY(t.free_block(p.tree, right->bytenr(), right->level(), 0, false));
                return remove_ptr(t, p, idx - 1, ps + 1);
            }
        }
        return {};
    }

    // After items were removed from the leaf at the end of the path.
    static Status rebalance_leaf(Transaction& t, Path& p, bool first_removed) {
        EditBlock* l = p.steps.back().block;
        const size_t li = p.steps.size() - 1;
        if (li == 0) return {};  // a root leaf may be empty or small
        if (l->nritems() == 0) {
            BTK_TRY(t.free_block(p.tree, l->bytenr(), 0, 0, false));
            BTK_TRY(remove_ptr(t, p, li - 1, p.steps[li - 1].slot));
            return collapse_root(t, p.tree);
        }
        if (first_removed) fixup_keys(p, li, l->key(0));
        const uint32_t lds = leaf_data_size(t.ns_);
        if (l->leaf_used() >= lds / 4) return {};
        EditBlock* parent = p.steps[li - 1].block;
        const uint32_t ps = p.steps[li - 1].slot;
        if (ps > 0) {
            BTK_ASSIGN(EditBlock * left, cow_child(t, p.tree, parent, ps - 1));
            if (left->leaf_used() + l->leaf_used() <= lds) {
                l->leaf_move_head_to(l->nritems(), *left);
                BTK_TRY(t.free_block(p.tree, l->bytenr(), 0, 0, false));
                BTK_TRY(remove_ptr(t, p, li - 1, ps));
                return collapse_root(t, p.tree);
            }
        }
        if (ps + 1 < parent->nritems()) {
            BTK_ASSIGN(EditBlock * right, cow_child(t, p.tree, parent, ps + 1));
            if (right->leaf_used() + l->leaf_used() <= lds) {
                right->leaf_move_head_to(right->nritems(), *l);
                BTK_TRY(t.free_block(p.tree, right->bytenr(), 0, 0, false));
                BTK_TRY(remove_ptr(t, p, li - 1, ps + 1));
                return collapse_root(t, p.tree);
            }
        }
        return {};
    }

    // A root node with a single child hands the root over to that child.
    static Status collapse_root(Transaction& t, uint64_t tree) {
        for (;;) {
            BTK_ASSIGN(Transaction::TreeRoot * r, t.tree_root(tree));
            if (r->level == 0) return {};
            auto it = t.dirty_.find(r->bytenr);
            if (it == t.dirty_.end()) return {};
            EditBlock* root = it->second.get();
            if (root->nritems() != 1) return {};
            BTK_ASSIGN(EditBlock * child, cow_child(t, tree, root, 0));
            const uint64_t old = root->bytenr();
            const uint8_t old_level = root->level();
            r->bytenr = child->bytenr();
            r->level = child->level();
            r->dirty = true;
            BTK_TRY(t.free_block(tree, old, old_level, 0, false));
        }
    }
};

Result<Path> Transaction::search(uint64_t tree, const Key& key, int ins_len, bool cow) {
    if (!cow) return ro_search(*this, tree, key, [this](uint64_t b, const BlockExpect& ex) {
        return BtreeOps::get_ro(*this, b, ex);
    });
    if (done_) return make_error(Errc::invalid_argument, "transaction already finished");
    if (ins_len > 0 && uint32_t(ins_len) > format::leaf_data_size(ns_))
        return make_error(Errc::invalid_argument, "item of {} bytes does not fit in a {} byte leaf", ins_len, ns_);
    for (uint32_t attempt = 0; attempt < 4 * (MAX_LEVEL + 2); ++attempt) {
        Path p;
        p.tree = tree;
        BTK_ASSIGN(TreeRoot * r, tree_root(tree));
        BlockExpect ex;
        ex.level = r->level;
        BTK_ASSIGN(EditBlock * b, cow_block(tree, r->bytenr, ex, nullptr, 0));
        bool restart = false;
        while (!restart) {
            if (b->is_leaf()) {
                const uint32_t s = b->lower_bound(key);
                p.exact = s < b->nritems() && b->key(s) == key;
                p.steps.push_back({b, nullptr, s});
                if (ins_len > 0 && !p.exact && b->leaf_free() < uint32_t(ins_len)) {
                    BTK_TRY(BtreeOps::split_leaf(*this, p, key, uint32_t(ins_len)));
                    restart = true;
                    break;
                }
                return p;
            }
            if (b->nritems() == 0) return corruption("tree {} node {} is empty", tree, b->bytenr());
            const uint32_t s = node_slot(*b, key);
            p.steps.push_back({b, nullptr, s});
            if (ins_len > 0 && b->nritems() + 3 >= b->node_capacity()) {
                BTK_TRY(BtreeOps::split_node(*this, p, p.steps.size() - 1));
                restart = true;
                break;
            }
            BTK_ASSIGN(b, BtreeOps::cow_child(*this, tree, b, s));
        }
    }
    return corruption("tree {}: search for ({} {} {}) did not settle", tree, key.objectid, key.type, key.offset);
}

Result<std::span<uint8_t>> Transaction::insert_item(uint64_t tree, const Key& key, uint32_t size) {
    BTK_ASSIGN(Path p, search(tree, key, int(size + ITEM_HDR), true));
    if (p.exact)
        return make_error(Errc::invalid_argument, "tree {}: item ({} {} {}) already exists", tree, key.objectid,
                          key.type, key.offset);
    EditBlock& l = p.leaf();
    const uint32_t s = p.slot();
    l.leaf_insert(s, key, size);
    if (s == 0) BtreeOps::fixup_keys(p, p.steps.size() - 1, key);
    return l.item_data(s);
}

Status Transaction::insert_item(uint64_t tree, const Key& key, std::span<const uint8_t> data) {
    BTK_ASSIGN(std::span<uint8_t> d, insert_item(tree, key, uint32_t(data.size())));
    if (!data.empty()) std::memcpy(d.data(), data.data(), data.size());
    return {};
}

Result<std::span<uint8_t>> Transaction::item_for_update(uint64_t tree, const Key& key) {
    BTK_ASSIGN(Path p, search(tree, key, 0, true));
    if (!p.exact)
        return make_error(Errc::not_found, "tree {}: no item ({} {} {})", tree, key.objectid, key.type, key.offset);
    return p.leaf().item_data(p.slot());
}

Result<std::span<uint8_t>> Transaction::resize_item(uint64_t tree, const Key& key, uint32_t new_size) {
    BTK_ASSIGN(Path p, search(tree, key, 0, true));
    if (!p.exact)
        return make_error(Errc::not_found, "tree {}: no item ({} {} {})", tree, key.objectid, key.type, key.offset);
    EditBlock& l = p.leaf();
    const uint32_t old = l.item_size(p.slot());
    if (new_size <= old || new_size - old <= l.leaf_free()) {
        l.leaf_resize(p.slot(), new_size);
        return l.item_data(p.slot());
    }
    // No room here: take the item out and insert it again with its new size.
    auto d = l.item_data(p.slot());
    std::vector<uint8_t> copy(d.begin(), d.end());
    BTK_TRY(delete_item(tree, key));
    BTK_ASSIGN(std::span<uint8_t> nd, insert_item(tree, key, new_size));
    std::memcpy(nd.data(), copy.data(), copy.size());
    return nd;
}

Status Transaction::delete_item(uint64_t tree, const Key& key) {
    BTK_ASSIGN(Path p, search(tree, key, -1, true));
    if (!p.exact)
        return make_error(Errc::not_found, "tree {}: no item ({} {} {})", tree, key.objectid, key.type, key.offset);
    const uint32_t s = p.slot();
    p.leaf().leaf_delete(s, 1);
    return BtreeOps::rebalance_leaf(*this, p, s == 0);
}

Result<uint64_t> Transaction::delete_range(uint64_t tree, const Key& min, const Key& max) {
    uint64_t deleted = 0;
    for (;;) {
        std::vector<Key> keys;
        BTK_TRY(for_each(tree, min, max, [&](const ItemRef& it) {
            keys.push_back(it.key);
            return keys.size() < 4096;
        }));
        if (keys.empty()) return deleted;
        size_t i = 0;
        while (i < keys.size()) {
            BTK_ASSIGN(Path p, search(tree, keys[i], -1, true));
            if (!p.exact) return corruption("tree {}: item vanished during a range delete", tree);
            EditBlock& l = p.leaf();
            const uint32_t s = p.slot();
            uint32_t cnt = 0;
            while (s + cnt < l.nritems() && i + cnt < keys.size() && l.key(s + cnt) == keys[i + cnt]) ++cnt;
            l.leaf_delete(s, cnt);
            BTK_TRY(BtreeOps::rebalance_leaf(*this, p, s == 0));
            i += cnt;
            deleted += cnt;
        }
    }
}

Result<std::optional<std::vector<uint8_t>>> Transaction::lookup(uint64_t tree, const Key& key) {
    BTK_ASSIGN(Path p, search(tree, key, 0, false));
    if (!p.exact) return std::optional<std::vector<uint8_t>>{};
    auto d = ro_of(p.steps.back()).item_data(p.slot());
    return std::optional<std::vector<uint8_t>>{std::vector<uint8_t>(d.begin(), d.end())};
}

Status Transaction::for_each(uint64_t tree, const Key& min, const Key& max,
                             const std::function<bool(const ItemRef&)>& fn) {
    BTK_ASSIGN(Path p, search(tree, min, 0, false));
    for (;;) {
        RoBlock leaf = ro_of(p.steps.back());
        for (uint32_t s = p.steps.back().slot; s < leaf.nritems(); ++s) {
            const Key k = leaf.key(s);
            if (max < k) return {};
            if (!fn(ItemRef{k, leaf.item_data(s)})) return {};
        }
        BTK_ASSIGN(bool more, BtreeOps::next_leaf(*this, p));
        if (!more) return {};
    }
}

Result<std::optional<Key>> Transaction::last_key_le(uint64_t tree, const Key& k) {
    BTK_ASSIGN(Path p, search(tree, k, 0, false));
    RoBlock leaf = ro_of(p.steps.back());
    uint32_t s = p.slot();
    if (p.exact) return std::optional<Key>{k};
    if (s > 0) return std::optional<Key>{leaf.key(s - 1)};
    // The previous item is in an earlier leaf: walk up to a left sibling.
    size_t lvl = p.steps.size() - 1;
    while (lvl > 0) {
        --lvl;
        if (p.steps[lvl].slot > 0) {
            --p.steps[lvl].slot;
            p.steps.resize(lvl + 1);
            for (;;) {
                RoBlock cur = ro_of(p.steps.back());
                const uint32_t cs = p.steps.back().slot;
                BlockExpect ex;
                ex.generation = cur.ptr_generation(cs);
                ex.first_key = cur.key(cs);
                ex.level = cur.level() - 1;
                BTK_ASSIGN(auto got, BtreeOps::get_ro(*this, cur.blockptr(cs), ex));
                PathStep st;
                st.block = got.first;
                if (got.second) {
                    st.tb = got.second.get();
                    p.keep.push_back(got.second);
                }
                RoBlock nb = ro_of(st);
                if (nb.nritems() == 0) return std::optional<Key>{};
                st.slot = nb.nritems() - 1;
                p.steps.push_back(st);
                if (nb.level() == 0) return std::optional<Key>{nb.key(st.slot)};
            }
        }
    }
    return std::optional<Key>{};
}

}  // namespace btk
