// btk check: the v1 space cache (filesystems without a free space tree).
//
// A block group's cache is a file in the root tree: a header item
// (FREE_SPACE_OBJECTID, 0, block group start) names the inode; the inode's
// data holds, in 4 KiB pages, a crc32c per page, the generation, the free
// space entries packed into pages (an entry never crosses a page), and then
// one page per bitmap entry. The kernel uses a cache only when the
// superblock's cache_generation equals its generation and the cache's
// generations agree; otherwise it silently rebuilds it. So nothing here is an
// error: a stale or wrong cache is a warning, as btrfs check reports it.
#include "check_space_impl.h"

#include "csum.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;
using K = FindingKind;

namespace {

constexpr uint32_t kCachePage = 4096;
constexpr uint64_t kMaxCachePages = 1 << 16;  // 256 MiB of cache: far beyond any real one

}  // namespace

void CheckExtras::Impl::root_leaf(const TreeBlock& b) {
    const bool v1 = !(fs->compat_ro() & FEATURE_COMPAT_RO_FREE_SPACE_TREE);
    for (uint32_t s = 0; s < b.nritems(); ++s) {
        const Key k = b.key(s);
        auto d = b.item_data(s);
        if (k.type == ROOT_ITEM_KEY) {
            if (k.objectid == QUOTA_TREE_OBJECTID) quota_root = true;
            if (k.objectid == FREE_SPACE_TREE_OBJECTID) fst_root = true;
            const bool subvol = k.objectid == FS_TREE_OBJECTID ||
                                (k.objectid >= FIRST_FREE_OBJECTID && k.objectid <= LAST_FREE_OBJECTID);
            if (subvol && d.size() >= offsetof(root_item, drop_progress)) {
                const auto* ri = reinterpret_cast<const root_item*>(d.data());
                subvols.push_back({k.objectid, ri->bytenr, ri->refs});
            }
        } else if (v1 && k.objectid == FREE_SPACE_OBJECTID && k.type == 0) {
            if (const auto* h = view_at<free_space_header>(d))
                cache_headers.push_back({k.offset, h->location.objectid, h->generation, h->num_entries, h->num_bitmaps});
        } else if (v1 && k.objectid >= FIRST_FREE_OBJECTID && k.objectid <= LAST_FREE_OBJECTID) {
            if (k.type == INODE_ITEM_KEY) {
                if (const auto* ii = view_at<inode_item>(d)) {
                    CacheInode& ci = cache_inodes[k.objectid];
                    ci.generation = ii->generation;
                    ci.size = ii->size;
                    ci.flags = ii->flags;
                }
            } else if (k.type == EXTENT_DATA_KEY) {
                const auto* fe = view_at<file_extent_item>(d);
                if (fe && fe->type != FILE_EXTENT_INLINE)
                    cache_inodes[k.objectid].exts.push_back(
                        {k.offset, fe->disk_bytenr, fe->disk_num_bytes, fe->offset, fe->num_bytes, fe->type, fe->compression});
            }
        }
    }
}

void CheckExtras::Impl::cache_problem(uint64_t bg_start, std::string problem) {
    Finding f = mk(K::space_cache_invalid);
    f.tree = ROOT_TREE_OBJECTID;
    f.bytenr = bg_start;
    f.num("logical", bg_start).str("problem", std::move(problem));
    report(std::move(f));
}

void CheckExtras::Impl::check_space_cache() {
    if (cache_headers.empty()) return;
    const super_block& sb = fs->super();
    const uint64_t cg = sb.cache_generation;
    if (cg != sb.generation) {
        // 0 and -1 mean "no v1 cache" (cleared, or never written).
        if (cg != 0 && cg != ~0ULL) {
            Finding f = mk(K::space_cache_generation);
            f.num("found", cg).num("expected", sb.generation);
            report(std::move(f));
        }
        return;
    }
    if (!complete(ROOT_TREE_OBJECTID) || !complete(EXTENT_TREE_OBJECTID)) return;
    for (const CacheHeader& h : cache_headers) {
        auto bit = std::lower_bound(bgs.begin(), bgs.end(), h.bg_start, [](const Bg& g, uint64_t v) { return g.start < v; });
        auto bad = [&](std::string problem) { cache_problem(h.bg_start, std::move(problem)); };
        if (bit == bgs.end() || bit->start != h.bg_start) {
            bad("there is no such block group");
            continue;
        }
        auto iit = cache_inodes.find(h.ino);
        if (iit == cache_inodes.end()) {
            bad(fmt::format("its inode {} is missing", h.ino));
            continue;
        }
        // Generations that disagree: the kernel ignores this cache.
        if (iit->second.generation != h.generation || h.entries == 0) continue;
        check_cache_of(*bit, h, iit->second);
    }
}

void CheckExtras::Impl::check_cache_of(const Bg& bg, const CacheHeader& h, const CacheInode& ino) {
    auto bad = [&](std::string problem) { cache_problem(bg.start, std::move(problem)); };
    const uint64_t pages = (ino.size + kCachePage - 1) / kCachePage;
    if (pages == 0 || pages > kMaxCachePages || pages * 4 + 8 > kCachePage) return bad(fmt::format("inode size {}", ino.size));
    // The file's bytes, from its extents (holes read as zeros).
    std::vector<uint8_t> data(pages * kCachePage, 0);
    for (const CacheInode::Ext& e : ino.exts) {
        if (e.disk_bytenr == 0 || e.compression || e.file_off >= data.size()) continue;
        const uint64_t n = std::min<uint64_t>(e.len, data.size() - e.file_off);
        if (e.type == FILE_EXTENT_PREALLOC) continue;  // reads as zeros
        if (e.offset > e.disk_len || n > e.disk_len - e.offset) return bad("an extent of its inode is out of range");
        if (auto st = fs->read_logical(e.disk_bytenr + e.offset, {data.data() + e.file_off, size_t(n)}); !st)
            return bad(fmt::format("cannot read it: {}", st.error().message));
    }
    const uint8_t* base = data.data();
    auto crc_ok = [&](uint64_t page) {
        const uint64_t skip = page == 0 ? pages * 4 : 0;
        uint8_t cs[32];
        csum_compute(CSUM_TYPE_CRC32, {base + page * kCachePage + skip, kCachePage - skip}, cs);
        return std::memcmp(cs, base + page * 4, 4) == 0;
    };
    uint64_t gen = 0;
    std::memcpy(&gen, base + pages * 4, 8);
    if (le64toh(gen) != h.generation) return bad(fmt::format("generation {} in its data, {} in its header", le64toh(gen), h.generation));
    std::vector<bool> checked(pages, false);
    auto page_ok = [&](uint64_t p) {
        if (checked[p]) return true;
        checked[p] = true;
        if (crc_ok(p)) return true;
        bad(fmt::format("page {} has a bad checksum", p));
        return false;
    };
    std::vector<Range> free;
    std::vector<std::pair<uint64_t, uint64_t>> bitmaps;  // (offset, bytes) in entry order
    uint64_t page = 0, pos = pages * 4 + 8;
    if (!page_ok(0)) return;
    for (uint64_t i = 0; i < h.entries; ++i) {
        if (kCachePage - pos < sizeof(free_space_entry)) {
            ++page;
            pos = 0;
            if (page >= pages) return bad(fmt::format("{} entries do not fit in {} pages", h.entries, pages));
            if (!page_ok(page)) return;
        }
        free_space_entry e;
        std::memcpy(&e, base + page * kCachePage + pos, sizeof(e));
        pos += sizeof(e);
        const uint64_t off = e.offset, len = e.bytes;
        if (len == 0 || off < bg.start || off + len < off || (e.type == FREE_SPACE_EXTENT && off + len > bg.start + bg.length))
            return bad(fmt::format("entry {} ({}, {}) is outside the block group", i, off, len));
        if (e.type == FREE_SPACE_EXTENT)
            free.push_back({off, off + len});
        else if (e.type == FREE_SPACE_BITMAP)
            bitmaps.push_back({off, len});
        else
            return bad(fmt::format("entry {} has type {}", i, e.type));
    }
    if (bitmaps.size() != h.bitmaps)
        return bad(fmt::format("{} bitmap entries, its header says {}", bitmaps.size(), h.bitmaps));
    for (const auto& [off, len] : bitmaps) {
        ++page;
        if (page >= pages) return bad("its bitmaps do not fit in its pages");
        if (!page_ok(page)) return;
        const uint8_t* bm = base + page * kCachePage;
        const uint64_t bits = std::min<uint64_t>(uint64_t(kCachePage) * 8, len / ss);
        for (uint64_t b = 0; b < bits; ++b)
            if ((bm[b / 8] >> (b % 8)) & 1) {
                const uint64_t at = off + b * ss;
                if (at >= bg.start + bg.length) return bad(fmt::format("bitmap at {} runs past the block group", off));
                add_range(free, at, at + ss);
            }
    }
    compare_free(bg, free, 0, free.size(), true);
}

}  // namespace btk
