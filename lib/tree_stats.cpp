// tree-stats: size, layout and seek statistics of the root, extent, csum and
// fs trees, printed in the format of `btrfs inspect-internal tree-stats`.
//
// What is counted (per tree): every node and leaf (total size, count per
// level); for each node, its child pointers in slot order, starting from the
// node's own address: a "seek" whenever a child does not start right after
// the previous one (forward or backward, with its distance from the end of
// the previous block), and a "cluster" for each run of adjacent children
// longer than one block that a seek ends; the spread between the lowest and
// highest child address; and, for the fs tree only, the bytes of inline file
// data. Leaves are read only when their items are needed (fs tree).
#include "inspect_resolve.h"

#include "fs.h"
#include "out.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>

namespace btk {

using namespace format;

namespace {

// Human-readable size as progs prints it: the value divided by 1024 until it
// is below 1024 (integer steps, then the last step as a fraction), two
// decimals and a binary unit.
std::string pretty_size(uint64_t size) {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int divs = 0;
    uint64_t before_last = size;
    while (size >= 1024) {
        before_last = size;
        size /= 1024;
        ++divs;
    }
    const double value = divs == 0 ? double(before_last) : double(before_last) / 1024.0;
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.2f%s", value, units[divs]);
    return buf;
}

struct Stats {
    uint64_t nodes = 0;
    uint64_t bytes = 0;
    uint64_t inline_bytes = 0;
    uint64_t seeks = 0, forward = 0, backward = 0;
    uint64_t seek_total = 0, seek_max = 0;
    uint64_t clusters = 0, cluster_total = 0;
    uint64_t cluster_min = ~0ULL, cluster_max = 0;
    uint64_t lowest = 0, highest = 0;
    uint64_t per_level[MAX_LEVEL] = {};
    std::map<uint64_t, uint64_t> seek_hist;  // distance -> count
};

class Walker {
public:
    Walker(Filesystem& fs, Stats& st, bool find_inline, std::FILE* err)
        : fs_(fs), st_(st), inline_(find_inline), err_(err) {}

    void leaf(const TreeBlock* b) {
        st_.bytes += fs_.nodesize();
        ++st_.nodes;
        ++st_.per_level[0];
        if (!inline_ || !b) return;
        for (uint32_t s = 0; s < b->nritems(); ++s) {
            if (b->key(s).type != EXTENT_DATA_KEY) continue;
            const auto d = b->item_data(s);
            if (d.size() < FILE_EXTENT_INLINE_DATA_START) continue;
            if (d[offsetof(file_extent_item, type)] == FILE_EXTENT_INLINE)
                st_.inline_bytes += d.size() - FILE_EXTENT_INLINE_DATA_START;
        }
    }

    void node(const TreeBlock& b, int level) {
        const uint32_t ns = fs_.nodesize();
        st_.bytes += ns;
        ++st_.nodes;
        ++st_.per_level[level];
        uint64_t last = b.bytenr();
        uint64_t cluster = ns;
        for (uint32_t i = 0; i < b.nritems(); ++i) {
            const uint64_t child = b.blockptr(i);
            BlockRef cb;
            if (level - 1 > 0 || inline_) {
                if (!visited_.insert(child).second) {
                    fmt::print(err_, "ERROR: tree block {} is referenced twice, skipped\n", child);
                    ++errors_;
                    continue;
                }
                BlockExpect e;
                e.level = level - 1;
                e.generation = b.ptr_generation(i);
                auto r = fs_.read_block(child, e);
                if (!r) {
                    fmt::print(err_, "ERROR: failed to read blocknr {}: {}\n", child, r.error().message);
                    ++errors_;
                    continue;
                }
                cb = std::move(*r);
            }
            if (level - 1 > 0)
                node(*cb, level - 1);
            else
                leaf(cb.get());
            if (last + ns != child) {
                const uint64_t dist = child > last + ns ? child - (last + ns) : (last + ns) - child;
                ++st_.seeks;
                st_.seek_total += dist;
                st_.seek_max = std::max(st_.seek_max, dist);
                ++st_.seek_hist[dist];
                if (last < child)
                    ++st_.forward;
                else
                    ++st_.backward;
                if (cluster != ns) {
                    st_.cluster_total += cluster;
                    ++st_.clusters;
                    st_.cluster_min = std::min(st_.cluster_min, cluster);
                    st_.cluster_max = std::max(st_.cluster_max, cluster);
                }
                cluster = ns;
            } else {
                cluster += ns;
            }
            last = child;
            st_.lowest = std::min(st_.lowest, child);
            st_.highest = std::max(st_.highest, child);
        }
    }

    uint64_t errors() const { return errors_; }

private:
    Filesystem& fs_;
    Stats& st_;
    bool inline_;
    std::FILE* err_;
    std::set<uint64_t> visited_;
    uint64_t errors_ = 0;
};

// Distances in ascending order; runs of small buckets (at most two ticks of
// 5% each) are merged into one range line, larger buckets get a line of their
// own. A small bucket met while the current run is already large closes the
// run and is not shown (as progs does).
void print_histogram(Out& o, const Stats& st) {
    if (st.seeks < 20) return;
    int digits = 1;
    for (uint64_t m = st.seek_max; m /= 10;) ++digits;
    const uint64_t tick = st.seeks / 20;
    o.write("\tSeek histogram\n");
    uint64_t gstart = 0, gend = 0, gcount = 0;
    auto bar = [&](uint64_t a, uint64_t b, uint64_t count, uint64_t ticks, bool pipe_if_empty) {
        o.print("\t\t{:>{}} - {:>{}}: {:>{}} ", a, digits, b, digits, count, digits);
        if (ticks)
            o.write(std::string(ticks, '#'));
        else if (pipe_if_empty)
            o.put('|');
        o.put('\n');
    };
    for (const auto& [dist, count] : st.seek_hist) {
        const uint64_t ticks = count / tick;
        const uint64_t gticks = gcount ? gcount / tick : 0;
        if (ticks <= 2 && gticks <= 2) {
            if (gcount == 0) gstart = dist;
            gend = dist;
            gcount += count;
            continue;
        }
        if (gcount) {
            bar(gstart, gend, gcount, gcount / tick, true);
            gcount = 0;
        }
        if (ticks <= 2) continue;
        bar(dist, dist, count, ticks, false);
    }
    if (gcount) bar(gstart, gend, gcount, gcount / tick, true);
}

// Prints one tree's statistics. Returns 0, 1 when some blocks could not be
// read, 2 when its root could not.
int one_tree(Filesystem& fs, const RootRef& rr, bool find_inline, bool raw, Out& o, std::FILE* err) {
    BlockExpect e;
    e.generation = rr.generation;
    e.level = rr.level;
    auto rb = fs.read_block(rr.bytenr, e);
    if (!rb) {
        o.flush();
        fmt::print(err, "ERROR: failed to read root {}: {}\n", rr.objectid, rb.error().message);
        return 2;
    }
    const TreeBlock& root = **rb;
    const int level = root.level();
    if (level >= int(MAX_LEVEL)) {
        o.flush();
        fmt::print(err, "ERROR: root {} has level {}\n", rr.objectid, level);
        return 2;
    }
    Stats st;
    st.lowest = st.highest = root.bytenr();
    st.cluster_max = fs.nodesize();
    Walker w(fs, st, find_inline, err);
    int64_t secs = 0, usecs = 0;
    if (level == 0) {
        w.leaf(&root);
    } else {
        const auto t0 = std::chrono::steady_clock::now();
        w.node(root, level);
        const auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        secs = us / 1000000;
        usecs = us % 1000000;
    }
    if (st.cluster_min == ~0ULL) {
        st.cluster_min = 0;
        st.clusters = 1;
    }
    auto sz = [&](uint64_t v) { return raw ? fmt::format("{}", v) : pretty_size(v); };
    o.print("\tTotal size: {}\n", sz(st.bytes));
    o.print("\t\tInline data: {}\n", sz(st.inline_bytes));
    o.print("\tTotal seeks: {}\n", st.seeks);
    o.print("\t\tForward seeks: {}\n", st.forward);
    o.print("\t\tBackward seeks: {}\n", st.backward);
    o.print("\t\tAvg seek len: {}\n", sz(st.seeks ? st.seek_total / st.seeks : 0));
    print_histogram(o, st);
    o.print("\tTotal clusters: {}\n", st.clusters);
    o.print("\t\tAvg cluster size: {}\n", sz(st.cluster_total / st.clusters));
    o.print("\t\tMin cluster size: {}\n", sz(st.cluster_min));
    o.print("\t\tMax cluster size: {}\n", sz(st.cluster_max));
    o.print("\tTotal disk spread: {}\n", sz(st.highest - st.lowest));
    o.print("\tTotal read time: {} s {} us\n", secs, usecs);
    o.print("\tLevels: {}\n", level + 1);
    o.print("\tTotal nodes: {}\n", st.nodes);
    for (int i = 0; i <= level; ++i) {
        o.print("\t\tOn level {}: {:>8}", i, st.per_level[i]);
        if (i > 0) o.print("  (avg fanout {})", st.per_level[i] ? st.per_level[i - 1] / st.per_level[i] : 0);
        o.put('\n');
    }
    return w.errors() ? 1 : 0;
}

}  // namespace

int tree_stats(const TreeStatsOptions& opts, std::FILE* out, std::FILE* err) {
    if (opts.devices.empty()) {
        fmt::print(err, "ERROR: no image or device given\n");
        return 2;
    }
    OpenOptions oo;
    oo.cache_bytes = 64ull << 20;
    auto opened = Filesystem::open(opts.devices, oo);
    if (!opened) {
        fmt::print(err, "ERROR: cannot open {}: {}\n", opts.devices[0], opened.error().message);
        return 2;
    }
    Filesystem& fs = **opened;
    Out o(out);
    struct TreeSpec {
        const char* name;
        uint64_t id;
        bool find_inline;
    };
    static const TreeSpec trees[] = {{"root", ROOT_TREE_OBJECTID, false},
                                     {"extent", EXTENT_TREE_OBJECTID, false},
                                     {"csum", CSUM_TREE_OBJECTID, false},
                                     {"fs", FS_TREE_OBJECTID, true}};
    int rc = 0;
    for (const auto& t : trees) {
        o.print("Calculating size of {} tree\n", t.name);
        RootRef rr;
        if (t.id == ROOT_TREE_OBJECTID) {
            rr = fs.tree_root();
        } else {
            auto r = fs.find_root(t.id);
            if (!r) {
                o.flush();
                fmt::print(err, "ERROR: failed to read root {}: {}\n", t.id, r.error().message);
                return 1;
            }
            rr = *r;
        }
        const int r = one_tree(fs, rr, t.find_inline, opts.raw_bytes, o, err);
        if (r) rc = 1;
        if (r == 2) break;  // a root that cannot be read ends the report, as in progs
    }
    o.flush();
    return rc;
}

}  // namespace btk
