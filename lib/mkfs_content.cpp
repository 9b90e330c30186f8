// mkfs --rootdir as a content step of mkfs_run: sizes the chunks from the
// scan, writes the data and the subvolume trees before the layout is solved,
// and hands mkfs the rest of the items; --shrink trims the chunks and the
// image afterwards.
#include "mkfs_layout.h"
#include "mkfs_rootdir.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace btk {

using namespace format;

struct RootdirStep {
    RootdirModel model;
    RootdirResult result;
    bool shrink = false;
};

namespace {

constexpr uint64_t MiB = 1ULL << 20, GiB = 1ULL << 30;

Error bad(std::string msg) { return Error{Errc::invalid_argument, std::move(msg)}; }

// Stripes of a chunk holding distinct data in a row.
uint64_t data_stripes(const ChunkPlan& c) {
    const uint64_t n = c.stripes.size();
    switch (c.type & BLOCK_GROUP_PROFILE_MASK) {
        case BLOCK_GROUP_RAID0: return n;
        case BLOCK_GROUP_RAID10: return n / 2;
        case BLOCK_GROUP_RAID5: return n - 1;
        case BLOCK_GROUP_RAID6: return n - 2;
        default: return 1;
    }
}

bool is_data(const ChunkPlan& c) { return (c.type & BLOCK_GROUP_DATA) && !(c.type & BLOCK_GROUP_METADATA); }

Status plan(RootdirStep& s, MkfsLayout& x) {
    const RootdirModel& m = s.model;
    // Data: the scan's bound, plus what splitting at chunk ends and superblock
    // stripes may waste (a compressed extent does not split), in chunks of at
    // most 1 GiB.
    const uint64_t slack = (m.max_extent ? std::min<uint64_t>(m.max_extent, MAX_UNCOMPRESSED) : 0) * 8 + 1 * MiB;
    const uint64_t data = m.data_bound + slack;
    for (uint64_t want = std::min(data, 1 * GiB);; want = std::min(data, want + 1 * GiB)) {
        BTK_TRY(reserve_data(x, want));
        if (want == data) break;
    }
    // Metadata: the items the content adds, in 90% full blocks, and room for
    // mkfs's own trees.
    const uint64_t meta = rootdir_meta_blocks(m, 90) * x.ns + 2 * MiB;
    return reserve_metadata(x, meta);
}

Status write(RootdirStep& s, MkfsLayout& x, MkfsWriter& writer) {
    const RootdirModel& m = s.model;
    BTK_ASSIGN(ChunkMap cmap, chunk_map(x));
    std::vector<std::pair<uint64_t, uint64_t>> runs;
    bool raid56 = false;
    for (const auto& c : x.chunks) {
        raid56 |= (c.type & BLOCK_GROUP_RAID56_MASK) != 0;
        if (!is_data(c)) continue;
        auto r = rootdir_runs(c.logical, c.length, c.excluded, x.ss);
        runs.insert(runs.end(), r.begin(), r.end());
    }
    std::map<uint64_t, Device*> devs;
    for (const auto& d : x.devices) devs[d.devid] = d.dev.get();
    ChunkDataSpace space(std::move(runs), cmap, devs,
                         [&](uint64_t logical, std::span<const uint8_t> d) { return writer.write_data(logical, d); });

    // Subvolume trees go to the metadata chunks from their start, and to disk
    // as they fill (RAID5/6 rows are only written whole, at the end).
    std::vector<const ChunkPlan*> meta;
    for (const auto& c : x.chunks)
        if (c.type & BLOCK_GROUP_METADATA) meta.push_back(&c);
    if (meta.empty()) return make_error(Errc::invalid_argument, "internal error: no metadata chunk");
    MkfsBlockAlloc alloc{meta, x.ns, meta[0]->logical};
    // Finished blocks gather in a page-aligned run and go out with O_DIRECT
    // through the same mapping as the data (RAID5/6: through the writer).
    ChunkDataSpace meta_out({}, cmap, devs);
    struct Run {
        uint8_t* buf = nullptr;
        uint64_t start = 0, len = 0;
        ~Run() { std::free(buf); }
    } run;
    const uint64_t run_cap = 4 * MiB;
    run.buf = static_cast<uint8_t*>(std::aligned_alloc(4096, run_cap));
    if (!run.buf) return make_error(Errc::io, "out of memory");
    auto flush_run = [&]() -> Status {
        if (!run.len) return {};
        std::span<const uint8_t> piece(run.buf, run.len);
        Status st = meta_out.write(run.start, std::span(&piece, 1));
        run.len = 0;
        return st;
    };
    StreamingTreeSink sink([&](uint64_t tree) { return build_opts(x, tree); },
                           [&](uint64_t, uint8_t) { return alloc.next(); },
                           [&](std::vector<uint8_t>&& b) -> Status {
                               if (raid56) return writer.add_tree_block(std::move(b));
                               writer.finish_block(b);
                               const uint64_t at = reinterpret_cast<const header*>(b.data())->bytenr;
                               if (run.len && (at != run.start + run.len || run.len + b.size() > run_cap))
                                   BTK_TRY(flush_run());
                               if (!run.len) run.start = at;
                               std::memcpy(run.buf + run.len, b.data(), b.size());
                               run.len += b.size();
                               return {};
                           });
    BTK_ASSIGN(s.result, rootdir_populate(m, space, sink));
    BTK_ASSIGN(auto built, sink.finish());
    BTK_TRY(flush_run());
    for (auto& [id, bt] : built) {
        TreeState& t = x.trees[id];
        t = TreeState{};
        t.prebuilt = true;
        uint8_t top = 0;
        for (const auto& b : bt.blocks) {
            t.addrs.push_back(b.bytenr);
            t.levels.push_back(b.level);
            x.first_keys[b.bytenr] = b.first_key;
            top = std::max(top, b.level);
        }
        t.plan.per_level.assign(size_t(top) + 1, 0);
        for (const auto& b : bt.blocks) ++t.plan.per_level[b.level];
        t.plan.total = uint32_t(bt.blocks.size());
        t.plan.root_level = bt.level;
    }
    x.meta_cursor = alloc.cursor;
    for (auto& [tree, items] : sink.kept) {
        auto& dst = x.extra_items[tree];
        dst.insert(dst.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
    }
    x.data_extents = s.result.allocated;
    for (size_t i = 1; i < m.subvols.size(); ++i) {
        auto& cr = x.content_roots[m.subvols[i].id];
        cr.readonly = m.subvols[i].readonly;
        std::memcpy(cr.uuid, m.subvols[i].uuid, 16);
    }
    x.default_subvol = s.result.default_subvol;
    if (x.default_subvol) x.incompat |= FEATURE_INCOMPAT_DEFAULT_SUBVOL;
    if (s.result.uses_compression && m.opts.compress == COMPRESS_LZO) x.incompat |= FEATURE_INCOMPAT_COMPRESS_LZO;
    if (s.result.uses_compression && m.opts.compress == COMPRESS_ZSTD) x.incompat |= FEATURE_INCOMPAT_COMPRESS_ZSTD;
    return {};
}

}  // namespace

Result<std::shared_ptr<RootdirStep>> rootdir_step_scan(const RootdirOptions& opts, const MkfsLayout& x,
                                                       bool shrink) {
    if (x.mixed) return bad("--rootdir with mixed block groups is not supported");
    if (x.quota) return bad("--rootdir with quota is not supported");
    auto s = std::make_shared<RootdirStep>();
    s->shrink = shrink;
    BTK_ASSIGN(s->model, rootdir_scan(opts));
    return s;
}

MkfsContentHook rootdir_step_hook(std::shared_ptr<RootdirStep> s) {
    MkfsContentHook h;
    h.write_first = true;
    h.plan = [s](MkfsLayout& x) {
        if (s->shrink) {
            if (x.devices.size() != 1) return Status(bad("--shrink works on one device"));
            if (x.devices[0].is_blk) return Status(bad("--shrink needs an image file, not a block device"));
        }
        return plan(*s, x);
    };
    h.write = [s](MkfsLayout& x, MkfsWriter& w) { return write(*s, x, w); };
    return h;
}

Status rootdir_step_shrink(RootdirStep& s, MkfsLayout& x) {
    if (!s.shrink) return {};
    // Each chunk ends after what it holds (whole rows of stripes).
    for (auto& c : x.chunks) {
        if (c.type & BLOCK_GROUP_SYSTEM) continue;
        uint64_t end = c.logical;
        for (auto [st, l] : x.data_extents)
            if (st >= c.logical && st < c.logical + c.length) end = std::max(end, st + l);
        for (const auto& [id, t] : x.trees)
            for (uint64_t a : t.addrs)
                if (a >= c.logical && a < c.logical + c.length) end = std::max(end, a + x.ns);
        // Metadata keeps a little room: the trees may still change a block.
        if (c.type & BLOCK_GROUP_METADATA) end += 4 * x.ns;
        const uint64_t row = STRIPE_LEN * data_stripes(c);
        const uint64_t len = std::min(c.length, std::max<uint64_t>(row, (end - c.logical + row - 1) / row * row));
        c.length = len;
        c.stripe_size = len / data_stripes(c);
    }
    x.total_bytes = 0;
    for (auto& d : x.devices) {
        uint64_t end = MKFS_RESERVED;
        for (const auto& c : x.chunks)
            for (const auto& st : c.stripes)
                if (st.devid == d.devid) end = std::max(end, st.physical + c.stripe_size);
        d.size = end;
        d.alloc_end = end;
        x.total_bytes += end;
    }
    compute_excluded(x);
    return solve_layout(x).ok() ? Status{} : Status(bad("the layout does not fit after --shrink"));
}

Status rootdir_step_finish(RootdirStep& s, MkfsLayout& x) {
    if (!s.shrink) return {};
    for (const auto& d : x.devices) {
        if (d.is_blk) continue;
        if (truncate(d.path.c_str(), off_t(d.size)) != 0)
            return make_error(Errc::io, "cannot shrink {} to {} bytes: {}", d.path, d.size, std::strerror(errno));
    }
    return {};
}

}  // namespace btk
