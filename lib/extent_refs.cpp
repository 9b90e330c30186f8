// Running delayed references into the extent tree.
//
// An extent item is EXTENT_ITEM (bytenr, len) or, for tree blocks with
// skinny metadata, METADATA_ITEM (bytenr, level): an extent_item (refs,
// generation, flags), a tree_block_info for non-skinny tree blocks, then
// inline references sorted by type and, within a type, by descending offset
// (descending hash for extent data refs), the order the kernel searches them
// in. References that do not fit inline become keyed items next to it.
#include "txn.h"

#include "csum.h"

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace {

// Hash of an extent data ref: the key offset of its keyed item and its
// position among inline refs.
uint64_t data_ref_hash(uint64_t root, uint64_t ino, uint64_t offset) {
    uint8_t b[8];
    store_le64(b, root);
    const uint32_t high = crc32c(~0u, b, 8);
    store_le64(b, ino);
    uint32_t low = crc32c(~0u, b, 8);
    store_le64(b, offset);
    low = crc32c(low, b, 8);
    return (uint64_t(high) << 31) ^ uint64_t(low);
}

struct InlineRef {
    RefId id;
    uint64_t count = 1;
    uint64_t raw_owner = 0;  // EXTENT_OWNER_REF: kept as is
};

uint32_t inline_size(uint8_t type) {
    switch (type) {
    case EXTENT_DATA_REF_KEY: return 1 + sizeof(extent_data_ref);
    case SHARED_DATA_REF_KEY: return 1 + 8 + sizeof(shared_data_ref);
    default: return 1 + 8;
    }
}

// Sort key: type ascending, then descending offset / hash.
std::pair<uint8_t, uint64_t> order_key(const InlineRef& r) {
    const uint64_t v = r.id.type == EXTENT_DATA_REF_KEY ? data_ref_hash(r.id.root_or_parent, r.id.ino, r.id.offset)
                       : r.id.type == EXTENT_OWNER_REF_KEY ? r.raw_owner
                                                          : r.id.root_or_parent;
    return {r.id.type, ~v};
}

struct ParsedExtent {
    Key key;
    uint64_t refs = 0, generation = 0, flags = 0;
    bool has_tbi = false;
    tree_block_info tbi{};
    std::vector<InlineRef> inl;
};

Result<ParsedExtent> parse_extent(const Key& key, std::span<const uint8_t> d) {
    ParsedExtent p;
    p.key = key;
    const auto* ei = view_at<extent_item>(d);
    if (!ei) return corruption("extent item ({} {} {}) is too small", key.objectid, key.type, key.offset);
    p.refs = ei->refs;
    p.generation = ei->generation;
    p.flags = ei->flags;
    size_t off = sizeof(extent_item);
    if ((p.flags & EXTENT_FLAG_TREE_BLOCK) && key.type == EXTENT_ITEM_KEY) {
        const auto* tbi = view_at<tree_block_info>(d, off);
        if (!tbi) return corruption("extent item {}: no room for tree block info", key.objectid);
        p.tbi = *tbi;
        p.has_tbi = true;
        off += sizeof(tree_block_info);
    }
    while (off < d.size()) {
        const uint8_t type = d[off];
        InlineRef r;
        r.id.type = type;
        const uint32_t sz = type == EXTENT_OWNER_REF_KEY ? 9 : inline_size(type);
        if (off + sz > d.size())
            return corruption("extent item {}: inline ref of type {} at {} overruns the item", key.objectid, type, off);
        switch (type) {
        case TREE_BLOCK_REF_KEY:
        case SHARED_BLOCK_REF_KEY:
            r.id.root_or_parent = load_le64(&d[off + 1]);
            break;
        case SHARED_DATA_REF_KEY:
            r.id.root_or_parent = load_le64(&d[off + 1]);
            r.count = load_le32(&d[off + 9]);
            break;
        case EXTENT_DATA_REF_KEY: {
            const auto* dr = view_at<extent_data_ref>(d, off + 1);
            r.id.root_or_parent = dr->root;
            r.id.ino = dr->objectid;
            r.id.offset = dr->offset;
            r.count = dr->count;
            break;
        }
        case EXTENT_OWNER_REF_KEY:
            r.raw_owner = load_le64(&d[off + 1]);
            break;
        default:
            return corruption("extent item {}: unknown inline ref type {}", key.objectid, type);
        }
        p.inl.push_back(r);
        off += sz;
    }
    return p;
}

std::vector<uint8_t> encode_extent(const ParsedExtent& p) {
    std::vector<uint8_t> out(sizeof(extent_item) + (p.has_tbi ? sizeof(tree_block_info) : 0));
    auto* ei = reinterpret_cast<extent_item*>(out.data());
    ei->refs = p.refs;
    ei->generation = p.generation;
    ei->flags = p.flags;
    if (p.has_tbi) std::memcpy(out.data() + sizeof(extent_item), &p.tbi, sizeof(tree_block_info));
    for (const auto& r : p.inl) {
        const size_t at = out.size();
        const uint32_t sz = r.id.type == EXTENT_OWNER_REF_KEY ? 9 : inline_size(r.id.type);
        out.resize(at + sz, 0);
        out[at] = r.id.type;
        switch (r.id.type) {
        case TREE_BLOCK_REF_KEY:
        case SHARED_BLOCK_REF_KEY: store_le64(&out[at + 1], r.id.root_or_parent); break;
        case SHARED_DATA_REF_KEY:
            store_le64(&out[at + 1], r.id.root_or_parent);
            store_le32(&out[at + 9], uint32_t(r.count));
            break;
        case EXTENT_DATA_REF_KEY: {
            auto* dr = reinterpret_cast<extent_data_ref*>(&out[at + 1]);
            dr->root = r.id.root_or_parent;
            dr->objectid = r.id.ino;
            dr->offset = r.id.offset;
            dr->count = uint32_t(r.count);
            break;
        }
        case EXTENT_OWNER_REF_KEY: store_le64(&out[at + 1], r.raw_owner); break;
        }
    }
    return out;
}

}  // namespace

// Finds the keyed item of a reference; returns its key and current count.
Result<std::optional<std::pair<Key, uint64_t>>> Transaction::find_keyed_ref(uint64_t bytenr, const RefId& id) {
    using R = std::optional<std::pair<Key, uint64_t>>;
    if (id.type == EXTENT_DATA_REF_KEY) {
        // Hash collisions take the next offsets.
        const uint64_t h = data_ref_hash(id.root_or_parent, id.ino, id.offset);
        R found;
        BTK_TRY(for_each(EXTENT_TREE_OBJECTID, Key{bytenr, EXTENT_DATA_REF_KEY, h},
                         Key{bytenr, EXTENT_DATA_REF_KEY, ~0ULL}, [&](const ItemRef& it) {
                             const auto* dr = view_at<extent_data_ref>(it.data);
                             if (dr && dr->root == id.root_or_parent && dr->objectid == id.ino &&
                                 dr->offset == id.offset) {
                                 found = std::pair{it.key, uint64_t(dr->count)};
                                 return false;
                             }
                             return true;
                         }));
        return found;
    }
    const Key k{bytenr, id.type, id.root_or_parent};
    BTK_ASSIGN(auto d, lookup(EXTENT_TREE_OBJECTID, k));
    if (!d) return R{};
    uint64_t count = 1;
    if (id.type == SHARED_DATA_REF_KEY) {
        const auto* sr = view_at<shared_data_ref>(*d);
        if (!sr) return corruption("shared data ref ({} {} {}) is too small", k.objectid, k.type, k.offset);
        count = sr->count;
    }
    return R{std::pair{k, count}};
}

Status Transaction::set_keyed_ref(uint64_t bytenr, const RefId& id, std::optional<Key> existing, uint64_t count) {
    if (count == 0) return delete_item(EXTENT_TREE_OBJECTID, *existing);
    if (id.type == TREE_BLOCK_REF_KEY || id.type == SHARED_BLOCK_REF_KEY) {
        if (existing) return {};
        return insert_item(EXTENT_TREE_OBJECTID, Key{bytenr, id.type, id.root_or_parent}, std::span<const uint8_t>{});
    }
    if (id.type == SHARED_DATA_REF_KEY) {
        shared_data_ref sr{};
        sr.count = uint32_t(count);
        const Key k = existing ? *existing : Key{bytenr, id.type, id.root_or_parent};
        if (existing) {
            BTK_ASSIGN(std::span<uint8_t> d, item_for_update(EXTENT_TREE_OBJECTID, k));
            std::memcpy(d.data(), &sr, sizeof(sr));
            return {};
        }
        return insert_item(EXTENT_TREE_OBJECTID, k, {reinterpret_cast<const uint8_t*>(&sr), sizeof(sr)});
    }
    extent_data_ref dr{};
    dr.root = id.root_or_parent;
    dr.objectid = id.ino;
    dr.offset = id.offset;
    dr.count = uint32_t(count);
    if (existing) {
        BTK_ASSIGN(std::span<uint8_t> d, item_for_update(EXTENT_TREE_OBJECTID, *existing));
        if (d.size() < sizeof(dr)) return corruption("extent data ref item at {} is too small", bytenr);
        std::memcpy(d.data(), &dr, sizeof(dr));
        return {};
    }
    // The first free offset from the hash on.
    uint64_t off = data_ref_hash(id.root_or_parent, id.ino, id.offset);
    for (;;) {
        BTK_ASSIGN(auto d, lookup(EXTENT_TREE_OBJECTID, Key{bytenr, EXTENT_DATA_REF_KEY, off}));
        if (!d) break;
        ++off;
    }
    return insert_item(EXTENT_TREE_OBJECTID, Key{bytenr, EXTENT_DATA_REF_KEY, off},
                       {reinterpret_cast<const uint8_t*>(&dr), sizeof(dr)});
}

Status Transaction::run_head(RefHead& h) {
    const bool skinny = sb_.incompat_flags & FEATURE_INCOMPAT_SKINNY_METADATA;
    const uint32_t max_item = leaf_data_size(ns_) / 16 - sizeof(format::item);
    ParsedExtent p;
    bool exists = false;
    if (h.new_extent) {
        if (h.deltas.empty()) {
            // Allocated and freed in this transaction: never committed.
            if (h.is_data) BTK_TRY(delete_csums(h.bytenr, h.num_bytes));
            return space_->release(h.bytenr, h.num_bytes, false);
        }
        p.generation = gen_;
        p.flags = h.is_data ? EXTENT_FLAG_DATA : EXTENT_FLAG_TREE_BLOCK;
        if (h.is_data) {
            p.key = Key{h.bytenr, EXTENT_ITEM_KEY, h.num_bytes};
        } else if (skinny) {
            p.key = Key{h.bytenr, METADATA_ITEM_KEY, h.level};
        } else {
            p.key = Key{h.bytenr, EXTENT_ITEM_KEY, ns_};
            p.has_tbi = true;
            p.tbi.level = h.level;
            if (auto it = dirty_.find(h.bytenr); it != dirty_.end() && it->second->nritems())
                it->second->key(0).to_disk(p.tbi.key);
        }
    } else {
        std::optional<std::vector<uint8_t>> d;
        Key k{h.bytenr, EXTENT_ITEM_KEY, h.num_bytes};
        if (!h.is_data && skinny) {
            k = Key{h.bytenr, METADATA_ITEM_KEY, h.level};
            BTK_ASSIGN(d, lookup(EXTENT_TREE_OBJECTID, k));
            if (!d) k = Key{h.bytenr, EXTENT_ITEM_KEY, h.num_bytes};
        }
        if (!d) {
            BTK_ASSIGN(d, lookup(EXTENT_TREE_OBJECTID, k));
        }
        if (!d)
            return corruption("no extent item for {} ({} bytes) while {} its references", h.bytenr, h.num_bytes,
                              h.total() < 0 ? "dropping" : "changing");
        BTK_ASSIGN(p, parse_extent(k, *d));
        exists = true;
    }
    p.flags |= h.add_flags;

    int64_t refs = int64_t(p.refs);
    uint32_t size = uint32_t(encode_extent(p).size());
    for (const auto& [id, delta] : h.deltas) {
        refs += delta;
        auto it = std::find_if(p.inl.begin(), p.inl.end(), [&](const InlineRef& r) { return r.id == id; });
        if (it != p.inl.end()) {
            const int64_t c = int64_t(it->count) + delta;
            const bool single = id.type == TREE_BLOCK_REF_KEY || id.type == SHARED_BLOCK_REF_KEY;
            if (c < 0 || (single && c > 1))
                return corruption("extent {}: reference (type {} {}) count would become {}", h.bytenr, id.type,
                                  id.root_or_parent, c);
            if (c == 0) {
                size -= inline_size(id.type);
                p.inl.erase(it);
            } else {
                it->count = uint64_t(c);
            }
            continue;
        }
        BTK_ASSIGN(auto keyed, find_keyed_ref(h.bytenr, id));
        if (keyed) {
            const int64_t c = int64_t(keyed->second) + delta;
            if (c < 0 || ((id.type == TREE_BLOCK_REF_KEY || id.type == SHARED_BLOCK_REF_KEY) && c > 1))
                return corruption("extent {}: keyed reference (type {}) count would become {}", h.bytenr, id.type, c);
            BTK_TRY(set_keyed_ref(h.bytenr, id, keyed->first, uint64_t(c)));
            continue;
        }
        if (delta < 0)
            return corruption("extent {}: dropping reference (type {} {} {} {}) that does not exist", h.bytenr,
                              id.type, id.root_or_parent, id.ino, id.offset);
        if ((id.type == TREE_BLOCK_REF_KEY || id.type == SHARED_BLOCK_REF_KEY) && delta > 1)
            return corruption("extent {}: tree block reference added {} times", h.bytenr, delta);
        if (size + inline_size(id.type) < max_item || !exists) {
            InlineRef r;
            r.id = id;
            r.count = uint64_t(delta);
            p.inl.push_back(r);
            size += inline_size(id.type);
        } else {
            BTK_TRY(set_keyed_ref(h.bytenr, id, std::nullopt, uint64_t(delta)));
        }
    }
    if (refs < 0) return corruption("extent {}: reference count would become {}", h.bytenr, refs);
    if (refs == 0) {
        if (exists) {
            BTK_TRY(space_->ensure_loaded(h.bytenr));
            BTK_TRY(delete_item(EXTENT_TREE_OBJECTID, p.key));
            if (h.is_data) BTK_TRY(delete_csums(h.bytenr, h.num_bytes));
            return space_->release(h.bytenr, h.num_bytes, true);
        }
        return space_->release(h.bytenr, h.num_bytes, false);
    }
    p.refs = uint64_t(refs);
    std::stable_sort(p.inl.begin(), p.inl.end(),
                     [](const InlineRef& a, const InlineRef& b) { return order_key(a) < order_key(b); });
    std::vector<uint8_t> bytes = encode_extent(p);
    if (!exists) return insert_item(EXTENT_TREE_OBJECTID, p.key, bytes);
    BTK_ASSIGN(std::span<uint8_t> d, resize_item(EXTENT_TREE_OBJECTID, p.key, uint32_t(bytes.size())));
    std::memcpy(d.data(), bytes.data(), bytes.size());
    return {};
}

Status Transaction::run_delayed_refs() {
    for (int round = 0; !refs_.empty(); ++round) {
        if (round > 10000) return corruption("delayed references did not settle");
        auto heads = refs_.take();
        for (auto& [b, h] : heads) BTK_TRY(run_head(h));
    }
    return {};
}

}  // namespace btk
