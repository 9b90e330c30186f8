// btk check: the hooks of CheckExtras and the free space tree check (see
// check_space.h). The v1 space cache is in check_space_cache.cpp, qgroups in
// check_qgroup.cpp.
#include "check_space_impl.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;
using K = FindingKind;

std::string key_text(const Key& k) { return fmt::format("({} {} {})", k.objectid, k.type, k.offset); }

void normalize_ranges(std::vector<Range>& v) {
    std::sort(v.begin(), v.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
    size_t o = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        if (o > 0 && v[i].start <= v[o - 1].end)
            v[o - 1].end = std::max(v[o - 1].end, v[i].end);
        else
            v[o++] = v[i];
    }
    v.resize(o);
}

namespace {

bool is_subvol_tree(uint64_t id) {
    return id == FS_TREE_OBJECTID || (id >= FIRST_FREE_OBJECTID && id <= LAST_FREE_OBJECTID);
}

// a − b for sorted, merged range lists.
std::vector<Range> subtract(const std::vector<Range>& a, const std::vector<Range>& b) {
    std::vector<Range> out;
    size_t j = 0;
    for (Range r : a) {
        while (j < b.size() && b[j].end <= r.start) ++j;
        size_t k = j;
        while (r.start < r.end && k < b.size() && b[k].start < r.end) {
            if (b[k].start > r.start) out.push_back({r.start, b[k].start});
            r.start = std::max(r.start, b[k].end);
            ++k;
        }
        if (r.start < r.end) out.push_back(r);
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// hooks

CheckExtras::CheckExtras(const CheckOptions& opts, Report report) : d_(std::make_unique<Impl>()) {
    d_->opts = opts;
    d_->report = std::move(report);
}

CheckExtras::~CheckExtras() = default;

void CheckExtras::start(Filesystem& fs) {
    d_->fs = &fs;
    d_->ns = fs.nodesize();
    d_->ss = fs.sectorsize();
}

void CheckExtras::edge(uint64_t tree, uint64_t child, uint64_t parent) { d_->edges.push_back({child, parent, tree}); }

void CheckExtras::block(uint64_t tree, const TreeBlock& b) {
    Impl& d = *d_;
    d.received.push_back(b.bytenr());
    if (d.opts.progress && (++d.pblocks & 255) == 0) d.tick("reading tree blocks");
    if (!b.is_leaf()) return;
    switch (tree) {
        case ROOT_TREE_OBJECTID: d.root_leaf(b); break;
        case EXTENT_TREE_OBJECTID:
            d.extent_leaf(b, !(d.fs->compat_ro() & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE));
            break;
        case BLOCK_GROUP_TREE_OBJECTID: d.bg_leaf(b); break;
        case FREE_SPACE_TREE_OBJECTID: d.fst_leaf(b); break;
        case QUOTA_TREE_OBJECTID: d.quota_leaf(b); break;
        default:
            if (is_subvol_tree(tree) && d.want_qgroups()) d.fs_leaf(b);
    }
}

void CheckExtras::finish(CheckSummary& sum) {
    Impl& d = *d_;
    if (!d.fs) return;
    if (d.opts.progress) d.tick("cross-checks");
    d.compute_incomplete();
    normalize_ranges(d.alloc);
    std::sort(d.bgs.begin(), d.bgs.end(), [](const Impl::Bg& a, const Impl::Bg& b) { return a.start < b.start; });
    if (d.fs->compat_ro() & (FEATURE_COMPAT_RO_FREE_SPACE_TREE | FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID))
        d.check_fst();
    else
        d.check_space_cache();
    d.check_qgroups(sum);
}

void CheckExtras::Impl::tick(const char* phase) {
    // The total: metadata in use per the block groups once they are read,
    // before that the size of the metadata chunks.
    uint64_t total = 0;
    for (const Bg& g : bgs)
        if (g.flags & (BLOCK_GROUP_METADATA | BLOCK_GROUP_SYSTEM)) total += g.used;
    if (total == 0)
        for (const auto& [logical, c] : fs->chunk_map().chunks())
            if (c.type & (BLOCK_GROUP_METADATA | BLOCK_GROUP_SYSTEM)) total += c.length;
    CheckProgress p;
    p.phase = phase;
    p.blocks = pblocks;
    p.bytes = pblocks * ns;
    p.total_bytes = std::max(total, p.bytes);
    opts.progress(p);
}

void CheckExtras::Impl::compute_incomplete() {
    std::sort(received.begin(), received.end());
    for (const Edge& e : edges)
        if (!std::binary_search(received.begin(), received.end(), e.child)) incomplete.push_back(e.tree);
    std::sort(incomplete.begin(), incomplete.end());
    incomplete.erase(std::unique(incomplete.begin(), incomplete.end()), incomplete.end());
}

bool CheckExtras::Impl::complete(uint64_t tree) const {
    return !std::binary_search(incomplete.begin(), incomplete.end(), tree);
}

// ---------------------------------------------------------------------------
// leaves of the extent and block group trees

void CheckExtras::Impl::extent_leaf(const TreeBlock& b, bool bg_items) {
    for (uint32_t s = 0; s < b.nritems(); ++s) {
        const disk_key& k = leaf_key(b, s);
        const uint64_t start = k.objectid;
        uint64_t len = 0;
        if (k.type == EXTENT_ITEM_KEY)
            len = k.offset;
        else if (k.type == METADATA_ITEM_KEY)
            len = ns;
        else if (k.type == BLOCK_GROUP_ITEM_KEY && bg_items)
            bg_item(b, s);
        if (len == 0 || start + len < start) continue;  // the extent checks report these
        add_range(alloc, start, start + len);
    }
}

void CheckExtras::Impl::bg_item(const TreeBlock& b, uint32_t s) {
    const Key k = b.key(s);
    const auto* bi = view_at<block_group_item>(b.item_data(s));
    if (!bi || k.offset == 0 || k.objectid + k.offset < k.objectid) return;  // reported by the checker
    bgs.push_back({k.objectid, k.offset, bi->flags, bi->used});
}

void CheckExtras::Impl::bg_leaf(const TreeBlock& b) {
    for (uint32_t s = 0; s < b.nritems(); ++s)
        if (leaf_key(b, s).type == BLOCK_GROUP_ITEM_KEY) bg_item(b, s);
}

// ---------------------------------------------------------------------------
// free space tree, streamed: an info item, then the extents or bitmaps of its
// block group, in key order.

void CheckExtras::Impl::fst_leaf(const TreeBlock& b) {
    for (uint32_t s = 0; s < b.nritems(); ++s) fst_item(b, s);
}

void CheckExtras::Impl::fst_close_info() {
    if (infos.empty() || infos.back().last != SIZE_MAX) return;
    FstInfo& in = infos.back();
    in.last = fst_free.size();
    if (in.counted != in.extent_count) {
        Finding f = mk(K::fst_extent_count);
        f.tree = FREE_SPACE_TREE_OBJECTID;
        f.bytenr = in.start;
        f.key = in.key;
        f.num("logical", in.start).num("found", in.extent_count).num("expected", in.counted);
        report(std::move(f));
    }
}

void CheckExtras::Impl::fst_item(const TreeBlock& b, uint32_t slot) {
    const Key k = b.key(slot);
    auto d = b.item_data(slot);
    auto finding = [&](K kind) {
        Finding f = mk(kind);
        f.tree = FREE_SPACE_TREE_OBJECTID;
        f.bytenr = b.bytenr();
        f.key = k;
        f.str("key", key_text(k));
        return f;
    };
    auto bad = [&](std::string problem) { report(finding(K::fst_item_invalid).str("problem", std::move(problem))); };
    const uint64_t end = k.objectid + k.offset;
    if (k.type == FREE_SPACE_INFO_KEY) {
        fst_close_info();
        const auto* fi = view_at<free_space_info>(d);
        if (!fi || d.size() != sizeof(free_space_info))
            return bad(fmt::format("item size {}, a free space info has {}", d.size(), sizeof(free_space_info)));
        if (k.offset == 0 || end < k.objectid) return bad("empty or overflowing range");
        infos.push_back({k.objectid, k.offset, fi->extent_count, fi->flags, 0, fst_free.size(), SIZE_MAX, k});
        fst_prev_end = k.objectid;
        fst_run_open = false;
        return;
    }
    if (k.type != FREE_SPACE_EXTENT_KEY && k.type != FREE_SPACE_BITMAP_KEY) return bad("unexpected key type");
    if (infos.empty() || infos.back().last != SIZE_MAX) return bad("no free space info item before it");
    FstInfo& in = infos.back();
    if (k.offset == 0 || end < k.objectid) return bad("empty or overflowing range");
    if (k.objectid < in.start || end > in.start + in.length) {
        report(finding(K::fst_item_outside).num("logical", in.start).num("length", in.length));
        return;
    }
    if (k.objectid % ss || k.offset % ss) return bad(fmt::format("not aligned to sectorsize {}", ss));
    const bool bitmap = k.type == FREE_SPACE_BITMAP_KEY;
    if (bitmap != bool(in.flags & FREE_SPACE_USING_BITMAPS))
        bad(bitmap ? "a bitmap, but its free space info says extents" : "an extent, but its free space info says bitmaps");
    if (k.objectid < fst_prev_end) {
        Finding f = finding(K::fst_overlap);
        f.num("start", k.objectid).num("length", k.offset).num("prev_end", fst_prev_end);
        report(std::move(f));
    }
    // Ranges are merged only within one info, so that each info's ranges stay its own.
    auto add = [&](uint64_t s, uint64_t e) {
        if (fst_free.size() > in.first && s <= fst_free.back().end && s >= fst_free.back().start)
            fst_free.back().end = std::max(fst_free.back().end, e);
        else
            fst_free.push_back({s, e});
    };
    if (!bitmap) {
        in.counted += 1;
        add(k.objectid, end);
        fst_prev_end = std::max(fst_prev_end, end);
        fst_run_open = false;
        return;
    }
    const uint64_t bits = k.offset / ss;
    if (d.size() != (bits + 7) / 8) return bad(fmt::format("bitmap of {} bytes for {} sectors", d.size(), bits));
    // A run of set bits continuing from the previous bitmap is the same free extent.
    bool open = fst_run_open && k.objectid == fst_prev_end;
    uint64_t run_start = k.objectid;
    for (uint64_t i = 0; i < bits; ++i) {
        const bool set = (d[i / 8] >> (i % 8)) & 1;
        const uint64_t at = k.objectid + i * ss;
        if (set && !open) {
            in.counted += 1;
            run_start = at;
            open = true;
        } else if (!set && open) {
            add(run_start, at);
            open = false;
        }
        // Whole bytes without a change of state.
        if (i % 8 == 0 && i + 8 <= bits && d[i / 8] == (set ? 0xff : 0)) i += 7;
    }
    if (open) add(run_start, end);
    fst_prev_end = end;
    fst_run_open = open;
}

// Logical ranges holding superblock copies: never allocated, and either
// listed as free or not (the kernel adds whole block groups to the tree and
// leaves the superblock stripes out only when it loads it).
const std::vector<Range>& CheckExtras::Impl::super_stripes() {
    if (supers_done) return supers;
    supers_done = true;
    std::vector<Range>& out = supers;
    for (const auto& [logical, c] : fs->chunk_map().chunks()) {
        const uint64_t ds = uint64_t(std::max(1, c.data_stripes()));
        const uint64_t per_dev = c.length / ds;
        const uint64_t n = c.stripes.size();
        for (uint64_t i = 0; i < n; ++i) {
            for (int m = 0; m < SUPER_MIRROR_MAX; ++m) {
                const uint64_t phys = super_offset(m);
                const uint64_t so = c.stripes[i].offset;
                if (phys < so || phys - so >= per_dev) continue;
                const uint64_t off = phys - so, row = off / STRIPE_LEN, in = off % STRIPE_LEN;
                uint64_t start = 0, len = STRIPE_LEN;
                if (c.type & BLOCK_GROUP_RAID0) {
                    start = (row * n + i) * STRIPE_LEN + in;
                } else if (c.type & BLOCK_GROUP_RAID10) {
                    const uint64_t sub = std::max<uint64_t>(1, c.sub_stripes);
                    start = (row * (n / sub) + i / sub) * STRIPE_LEN + in;
                } else if (c.type & BLOCK_GROUP_RAID56_MASK) {
                    start = row * STRIPE_LEN * ds;  // the whole full stripe: parity rotates
                    len = STRIPE_LEN * ds;
                } else {
                    start = off;
                }
                if (start >= c.length) continue;
                out.push_back({logical + start, logical + std::min(c.length, start + len)});
            }
        }
    }
    normalize_ranges(out);
    return out;
}

void CheckExtras::Impl::compare_free(const Bg& bg, const std::vector<Range>& have_all, size_t hb, size_t he,
                                     bool cache) {
    const uint64_t bg_end = bg.start + bg.length;
    std::vector<Range> want;
    uint64_t at = bg.start;
    auto it = std::lower_bound(alloc.begin(), alloc.end(), bg.start,
                               [](const Range& r, uint64_t v) { return r.end <= v; });
    for (; it != alloc.end() && it->start < bg_end; ++it) {
        if (it->start > at) want.push_back({at, it->start});
        at = std::max(at, it->end);
    }
    if (at < bg_end) want.push_back({at, bg_end});
    std::vector<Range> have(have_all.begin() + hb, have_all.begin() + he);
    normalize_ranges(have);
    want = subtract(want, super_stripes());
    have = subtract(have, super_stripes());
    // One finding per direction: the count, the bytes and the first range.
    auto one = [&](const std::vector<Range>& v, bool is_extra) {
        if (v.empty()) return;
        uint64_t bytes = 0;
        for (const Range& r : v) bytes += r.end - r.start;
        Finding f = mk(cache ? K::space_cache_wrong : is_extra ? K::fst_free_allocated : K::fst_free_missing);
        f.tree = cache ? ROOT_TREE_OBJECTID : FREE_SPACE_TREE_OBJECTID;
        f.bytenr = bg.start;
        f.num("logical", bg.start).num("count", v.size()).num("bytes", bytes);
        f.num("start", v.front().start).num("end", v.front().end);
        if (cache) f.str("problem", is_extra ? "free in the cache but allocated" : "free but not in the cache");
        report(std::move(f));
    };
    one(subtract(have, want), true);
    one(subtract(want, have), false);
}

void CheckExtras::Impl::check_fst() {
    const uint64_t ro = fs->compat_ro();
    const bool has = ro & FEATURE_COMPAT_RO_FREE_SPACE_TREE, valid = ro & FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID;
    if (has != valid) {
        Finding f = mk(K::fst_feature_bits);
        f.str("found", fmt::format("{:#x}", ro & (FEATURE_COMPAT_RO_FREE_SPACE_TREE | FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID)));
        f.str("problem", has ? "FREE_SPACE_TREE without FREE_SPACE_TREE_VALID, the kernel rebuilds the tree at the next "
                               "read-write mount"
                             : "FREE_SPACE_TREE_VALID without FREE_SPACE_TREE");
        report(std::move(f));
    }
    if (!has || !valid) return;  // nothing trustworthy to compare
    if (!fst_root) {
        if (complete(ROOT_TREE_OBJECTID)) report(mk(K::fst_missing));
        return;
    }
    fst_close_info();
    if (!complete(FREE_SPACE_TREE_OBJECTID)) return;
    const uint64_t bg_tree = (ro & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE) ? BLOCK_GROUP_TREE_OBJECTID : EXTENT_TREE_OBJECTID;
    if (!complete(bg_tree) || !complete(EXTENT_TREE_OBJECTID)) return;

    std::vector<size_t> order(infos.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return infos[a].start < infos[b].start; });
    std::vector<bool> matched(infos.size(), false);
    for (const Bg& bg : bgs) {
        auto it = std::lower_bound(order.begin(), order.end(), bg.start,
                                   [&](size_t i, uint64_t v) { return infos[i].start < v; });
        if (it == order.end() || infos[*it].start != bg.start) {
            Finding f = mk(K::fst_info_missing);
            f.tree = FREE_SPACE_TREE_OBJECTID;
            f.bytenr = bg.start;
            f.num("logical", bg.start).num("length", bg.length);
            report(std::move(f));
            continue;
        }
        FstInfo& in = infos[*it];
        matched[*it] = true;
        if (in.length != bg.length) {
            Finding f = mk(K::fst_item_invalid);
            f.tree = FREE_SPACE_TREE_OBJECTID;
            f.bytenr = bg.start;
            f.key = in.key;
            f.str("key", key_text(in.key)).str("problem", fmt::format("its block group's length is {}", bg.length));
            report(std::move(f));
            continue;
        }
        compare_free(bg, fst_free, in.first, in.last, false);
    }
    // An info without a block group: mkfs.btrfs before 6.16.1 leaves the
    // infos of its temporary chunks behind, in address space that no chunk
    // uses any more, below the last chunk; nearly every filesystem has them.
    // The kernel never reads them (newer kernels delete them at mount), so
    // they are a warning. Anything else (inside a chunk or block group, past
    // the last chunk, unaligned) is damage.
    uint64_t top = 0;
    for (const auto& [logical, c] : fs->chunk_map().chunks()) top = std::max(top, logical + c.length);
    for (const Bg& bg : bgs) top = std::max(top, bg.start + bg.length);
    for (size_t i = 0; i < infos.size(); ++i) {
        if (matched[i]) continue;
        const FstInfo& in = infos[i];
        const uint64_t end = in.start + in.length;
        bool overlaps = false;
        for (const auto& [logical, c] : fs->chunk_map().chunks())
            if (in.start < logical + c.length && logical < end) overlaps = true;
        for (const Bg& bg : bgs)
            if (in.start < bg.start + bg.length && bg.start < end) overlaps = true;
        const bool stale = !overlaps && end <= top && in.start % ss == 0 && in.length % ss == 0;
        Finding f = mk(stale ? K::fst_info_stale : K::fst_info_orphan);
        f.tree = FREE_SPACE_TREE_OBJECTID;
        f.bytenr = in.start;
        f.key = in.key;
        f.num("logical", in.start).num("length", in.length);
        report(std::move(f));
    }
}

}  // namespace btk
