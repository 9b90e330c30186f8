#include "space.h"

#include "space_detail.h"
#include "txn.h"

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace space_detail {

// Adds [s, s+l) to a map of disjoint ranges, merging neighbours.
void range_add(std::map<uint64_t, uint64_t>& m, uint64_t s, uint64_t l) {
    if (l == 0) return;
    uint64_t e = s + l;
    auto it = m.lower_bound(s);
    if (it != m.begin()) {
        auto p = std::prev(it);
        if (p->first + p->second >= s) {
            s = p->first;
            e = std::max(e, p->first + p->second);
            it = m.erase(p);
        }
    }
    while (it != m.end() && it->first <= e) {
        e = std::max(e, it->first + it->second);
        it = m.erase(it);
    }
    m[s] = e - s;
}

// Removes [s, s+l) from a map of disjoint ranges (parts not present are ignored).
void range_remove(std::map<uint64_t, uint64_t>& m, uint64_t s, uint64_t l) {
    const uint64_t e = s + l;
    auto it = m.lower_bound(s);
    if (it != m.begin() && std::prev(it)->first + std::prev(it)->second > s) --it;
    while (it != m.end() && it->first < e) {
        const uint64_t rs = it->first, re = rs + it->second;
        it = m.erase(it);
        if (rs < s) m[rs] = s - rs;
        if (re > e) it = m.emplace(e, re - e).first, ++it;
    }
}

bool range_contains(const std::map<uint64_t, uint64_t>& m, uint64_t s, uint64_t l) {
    auto it = m.upper_bound(s);
    if (it == m.begin()) return false;
    --it;
    return it->first <= s && it->first + it->second >= s + l;
}

std::vector<std::pair<uint64_t, uint64_t>> super_stripes(const Chunk& c, const std::map<uint64_t, uint64_t>& dev_sizes) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    const uint64_t prof = c.profile();
    uint64_t ndata = 1, sub = 1;
    if (prof & BLOCK_GROUP_RAID0) ndata = c.num_stripes;
    if (prof & BLOCK_GROUP_RAID10) {
        sub = std::max<uint64_t>(c.sub_stripes, 1);
        ndata = c.num_stripes / sub;
    }
    if (ndata == 0) return out;
    const uint64_t stripe_size = (prof & (BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10)) ? c.length / ndata : c.length;
    for (size_t i = 0; i < c.stripes.size(); ++i) {
        const auto& st = c.stripes[i];
        auto ds = dev_sizes.find(st.devid);
        for (int m = 0; m < SUPER_MIRROR_MAX; ++m) {
            const uint64_t off = super_offset(m);
            if (ds != dev_sizes.end() && off + SUPER_INFO_SIZE > ds->second) break;
            if (off + SUPER_INFO_SIZE <= st.offset || off >= st.offset + stripe_size) continue;
            const uint64_t rel = off - std::min(off, st.offset);
            uint64_t lrel = rel;
            if (prof & (BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10))
                lrel = (rel / STRIPE_LEN * ndata + i / sub) * STRIPE_LEN + rel % STRIPE_LEN;
            const uint64_t l = c.logical + lrel / STRIPE_LEN * STRIPE_LEN;
            out.push_back({l, std::min(STRIPE_LEN, c.logical + c.length - l)});
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace space_detail

using namespace space_detail;

namespace {
uint64_t type_of(uint64_t flags) { return flags & BLOCK_GROUP_TYPE_MASK; }
}  // namespace

Status SpaceManager::load() {
    Filesystem& fs = t_.fs();
    bg_tree_ = fs.compat_ro() & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE;
    fst_ = fs.compat_ro() & FEATURE_COMPAT_RO_FREE_SPACE_TREE;
    const uint64_t tree = bg_tree_ ? BLOCK_GROUP_TREE_OBJECTID : EXTENT_TREE_OBJECTID;
    std::map<uint64_t, uint64_t> dev_sizes;
    for (const auto& [id, d] : fs.devices()) dev_sizes[id] = d->size();
    for (const auto& [logical, c] : fs.chunk_map().chunks()) {
        BTK_ASSIGN(auto d, t_.lookup(tree, Key{logical, BLOCK_GROUP_ITEM_KEY, c.length}));
        if (!d) return corruption("chunk {} has no block group item", logical);
        const auto* bgi = view_at<block_group_item>(*d);
        if (!bgi) return corruption("block group item {} is too small", logical);
        BlockGroup bg;
        bg.start = logical;
        bg.length = c.length;
        bg.flags = bgi->flags;
        bg.used = bgi->used;
        bg.chunk_objectid = bgi->chunk_objectid;
        bg.excluded = super_stripes(c, dev_sizes);
        bg.cursor = logical;
        if (type_of(bg.flags) != type_of(c.type))
            return corruption("block group {} flags {:#x} do not match its chunk ({:#x})", logical, bg.flags, c.type);
        groups_.emplace(logical, std::move(bg));
    }
    return {};
}

Status SpaceManager::load_group(BlockGroup& bg) {
    if (bg.loaded) return {};
    const uint32_t ns = t_.nodesize();
    std::map<uint64_t, uint64_t> used;
    uint64_t sum = 0;
    BTK_TRY(t_.for_each(EXTENT_TREE_OBJECTID, Key{bg.start, 0, 0}, Key{bg.end() - 1, 0xff, ~0ULL},
                        [&](const ItemRef& it) {
                            if (it.key.type == EXTENT_ITEM_KEY) {
                                range_add(used, it.key.objectid, it.key.offset);
                                sum += it.key.offset;
                            } else if (it.key.type == METADATA_ITEM_KEY) {
                                range_add(used, it.key.objectid, ns);
                                sum += ns;
                            }
                            return true;
                        }));
    bg.free.clear();
    range_add(bg.free, bg.start, bg.length);
    for (auto [s, l] : bg.excluded) range_remove(bg.free, s, l);
    for (auto [s, l] : used) {
        if (s < bg.start || s + l > bg.end())
            return corruption("extent {}+{} crosses the end of block group {}", s, l, bg.start);
        range_remove(bg.free, s, l);
    }
    avail_[bg.start] = bg.free;
    bg.loaded = true;
    (void)sum;
    return {};
}

Status SpaceManager::ensure_loaded(uint64_t bytenr) {
    BlockGroup* bg = group_of(bytenr);
    if (!bg) return corruption("extent {} is not inside any block group", bytenr);
    return load_group(*bg);
}

BlockGroup* SpaceManager::group_of(uint64_t bytenr) {
    auto it = groups_.upper_bound(bytenr);
    if (it == groups_.begin()) return nullptr;
    --it;
    return bytenr < it->second.end() ? &it->second : nullptr;
}

uint64_t SpaceManager::bytes_used() const noexcept {
    uint64_t u = 0;
    for (const auto& [s, bg] : groups_) u += bg.used;
    return u;
}

void SpaceManager::take(BlockGroup& bg, uint64_t start, uint64_t len) {
    range_remove(bg.free, start, len);
    range_remove(avail_[bg.start], start, len);
    bg.used += len;
    bg.dirty = true;
    bg.cursor = start + len;
}

namespace {
// First allocatable aligned run of `len` bytes at or after `from` in `avail`.
std::optional<uint64_t> find_fit(const std::map<uint64_t, uint64_t>& avail, uint64_t from, uint64_t len,
                                        uint64_t align, uint64_t base) {
    auto it = avail.upper_bound(from);
    if (it != avail.begin()) --it;
    for (; it != avail.end(); ++it) {
        uint64_t s = std::max(it->first, from);
        s = base + (s - base + align - 1) / align * align;
        if (s + len <= it->first + it->second) return s;
    }
    return std::nullopt;
}
}  // namespace

Result<uint64_t> SpaceManager::alloc(uint64_t type, uint64_t len) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        for (auto& [start, bg] : groups_) {
            if (!(bg.flags & type)) continue;
            if (bg.length - std::min(bg.length, bg.used) < len) continue;
            BTK_TRY(load_group(bg));
            const auto& av = avail_[bg.start];
            auto s = find_fit(av, bg.cursor, len, len, bg.start);
            if (!s) s = find_fit(av, bg.start, len, len, bg.start);
            if (!s) continue;
            take(bg, *s, len);
            return *s;
        }
        if (attempt == 0) {
            auto nc = new_chunk(type);
            if (!nc) return std::move(nc).error();
        }
    }
    return make_error(Errc::io, "no space left for a {} byte {} block", len,
                      type == BLOCK_GROUP_SYSTEM ? "system" : "metadata");
}

Result<std::pair<uint64_t, uint64_t>> SpaceManager::alloc_data(uint64_t len, uint64_t min_len) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        // Whole request in one run if any group has one; else the largest run.
        BlockGroup* best_bg = nullptr;
        uint64_t best_s = 0, best_l = 0;
        for (auto& [start, bg] : groups_) {
            if (!(bg.flags & BLOCK_GROUP_DATA)) continue;
            if (bg.length - std::min(bg.length, bg.used) < min_len) continue;
            BTK_TRY(load_group(bg));
            const auto& av = avail_[bg.start];
            if (auto s = find_fit(av, bg.cursor, len, min_len, bg.start)) {
                take(bg, *s, len);
                return std::pair{*s, len};
            }
            if (auto s = find_fit(av, bg.start, len, min_len, bg.start)) {
                take(bg, *s, len);
                return std::pair{*s, len};
            }
            for (auto [s, l] : av) {
                const uint64_t al = (s + min_len - 1) / min_len * min_len;
                const uint64_t usable = s + l > al ? (s + l - al) / min_len * min_len : 0;
                if (usable > best_l) {
                    best_l = usable;
                    best_s = al;
                    best_bg = &bg;
                }
            }
        }
        if (best_bg && best_l >= min_len) {
            take(*best_bg, best_s, best_l);
            return std::pair{best_s, best_l};
        }
        if (attempt == 0) {
            auto nc = new_chunk(BLOCK_GROUP_DATA);
            if (!nc) return std::move(nc).error();
        }
    }
    return make_error(Errc::io, "no space left for {} bytes of data", len);
}

Status SpaceManager::release(uint64_t start, uint64_t len, bool pin) {
    BlockGroup* bg = group_of(start);
    if (!bg || start + len > bg->end())
        return corruption("freed extent {}+{} is not inside one block group", start, len);
    BTK_TRY(load_group(*bg));
    if (range_contains(bg->free, start, len))
        return corruption("extent {}+{} freed twice", start, len);
    range_add(bg->free, start, len);
    if (!pin) range_add(avail_[bg->start], start, len);
    bg->used -= std::min(bg->used, len);
    bg->dirty = true;
    return {};
}

void SpaceManager::unpin_all() {
    for (auto& [s, bg] : groups_)
        if (bg.loaded) avail_[s] = bg.free;
}

Status SpaceManager::write_group_item(BlockGroup& bg) {
    const uint64_t tree = bg_tree_ ? BLOCK_GROUP_TREE_OBJECTID : EXTENT_TREE_OBJECTID;
    const Key k{bg.start, BLOCK_GROUP_ITEM_KEY, bg.length};
    block_group_item item{};
    item.used = bg.used;
    item.chunk_objectid = bg.chunk_objectid;
    item.flags = bg.flags;
    if (bg.is_new) {
        bg.is_new = false;
        return t_.insert_item(tree, k, {reinterpret_cast<const uint8_t*>(&item), sizeof(item)});
    }
    BTK_ASSIGN(std::span<uint8_t> d, t_.item_for_update(tree, k));
    if (d.size() < sizeof(item)) return corruption("block group item {} is too small", bg.start);
    if (std::memcmp(d.data(), &item, sizeof(item)) != 0) std::memcpy(d.data(), &item, sizeof(item));
    return {};
}

Result<bool> SpaceManager::write_dirty() {
    bool wrote = !pending_chunks_.empty();
    BTK_TRY(write_pending_chunks());
    for (auto& [s, bg] : groups_) {
        if (!bg.dirty) continue;
        bg.dirty = false;
        wrote = true;
        BTK_TRY(write_group_item(bg));
        if (fst_) BTK_TRY(write_free_space(bg));
    }
    return wrote;
}

}  // namespace btk
