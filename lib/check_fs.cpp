// FsChecker: dispatches leaves to the subvolume tree stream and the csum
// checker, collects the root tree's subvolume records and the uuid tree, and
// runs the cross-tree checks at the end.
#include "check_fs.h"

#include "check_fs_internal.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>
#include <thread>

namespace btk {

using namespace format;
using namespace fsck;
using K = FindingKind;

namespace {

bool is_subvol_tree(uint64_t id) {
    return id == FS_TREE_OBJECTID || (id >= FIRST_FREE_OBJECTID && id <= LAST_FREE_OBJECTID) ||
           id == DATA_RELOC_TREE_OBJECTID;
}
bool is_user_subvol(uint64_t id) { return id >= FIRST_FREE_OBJECTID && id <= LAST_FREE_OBJECTID; }

bool is_zero_uuid(const uint8_t* u) {
    for (int i = 0; i < 16; ++i)
        if (u[i]) return false;
    return true;
}

struct RootRec {
    uint64_t id = 0, offset = 0, flags = 0, root_dirid = 0;
    uint64_t generation = 0, otransid = 0;  // otransid: with the uuids
    uint32_t refs = 0;
    bool dropping = false, has_uuid = false;
    uint8_t uuid[16]{}, received[16]{}, parent[16]{};
};

struct RefRec {
    uint64_t parent, child, dirid, seq;
    std::string name;
    bool back;
};

struct UuidRec {
    Key key;
    uint8_t uuid[16];
    uint64_t subvol;
};

// Blocks the walk could not use: the items in them are missing from the stream.
bool loses_items(K k) {
    switch (k) {
        case K::block_unaligned:
        case K::block_unmapped:
        case K::block_read_error:
        case K::block_csum:
        case K::block_bytenr:
        case K::block_fsid:
        case K::block_invalid:
        case K::block_level:
        case K::block_empty:
        case K::block_key_order: return true;
        default: return false;
    }
}

}  // namespace

// Work for the subvolume tree thread, in walk order.
// A shared subtree's top block and the leaves at its two edges, read on the
// main thread (it waits for the subvolume tree thread on snapshots anyway):
// what replaying the subtree from a link log needs.
struct SharedEdges {
    BlockRef top;                      // null: unreadable
    std::vector<BlockRef> left, right;  // from the outside in
    bool ok = false;                   // both edges found (else the subtree is walked)
};

struct StreamMsg {
    enum Type { BEGIN, LEAF, SHARED, END, VERIFY } type;
    FsTreeInfo info;  // BEGIN
    BlockRef leaf;    // LEAF
    uint64_t bytenr = 0, generation = 0;  // SHARED
    int level = 0;
    std::optional<Key> first_key;
    bool complete = false;  // END
    uint64_t first_tree = 0;  // SHARED: the streamed tree that read the block first (0: none)
    std::shared_ptr<const SharedEdges> edges;  // SHARED, when first_tree may keep a log
    // LEAF, VERIFY (bytenr): the walk verified only the first copy; the
    // worker verifies the others (the walk's sequence number of the block,
    // for ordering; 0: no).
    uint64_t verify_seq = 0;
    uint64_t tree = 0;  // with verify_seq: the tree walked
};

struct FsChecker::Impl {
    Impl(Filesystem& f, const FsCheckConfig& c, Report r)
        : fs(f),
          cfg(c),
          report(std::move(r)),
          csum(&f, report, c.check_data_csum, c.data_threads),
          stream(&f, report, &csum, &subvol_links) {}
    ~Impl() { stop_worker(); }

    Filesystem& fs;
    FsCheckConfig cfg;
    Report report;
    CsumCheck csum;
    std::vector<SubvolLink> subvol_links;
    FsTreeStream stream;
    std::vector<RootRec> roots;
    std::vector<RefRec> refs;
    std::vector<uint64_t> root_orphans;
    std::vector<UuidRec> uuids[2];  // SUBVOL, RECEIVED_SUBVOL
    std::set<uint64_t> damaged, walked, checked;
    bool log_reported = false;
    uint64_t stream_tree = 0;  // the subvolume tree being walked (main thread)
    std::set<uint64_t> streamed;  // subvolume trees streamed so far (main thread)

    // The worker thread streaming subvolume trees. Messages go in batches
    // (fewer wake-ups); the bounded queue makes the walk wait rather than
    // hold many leaves: 4 batches of at most 64 blocks. (8 held 4 MiB more
    // at 16 KiB nodes for no gain: with the worker behind, the walk waits
    // either way.)
    std::thread worker;
    WorkQueue<std::vector<StreamMsg>> queue{4};
    std::vector<StreamMsg> batch;
    size_t batch_blocks = 0;        // blocks the batch holds
    std::set<uint64_t> log_trees;   // trees streamed with keep_log (main thread)
    bool shared_failed = false;  // worker only

    void put(StreamMsg m);
    void work();
    // The copies the walk left to this thread, in runs of consecutive blocks.
    void verify_copies_of(const std::vector<StreamMsg>& msgs);
    std::vector<CopyResult> copy_results;  // worker only, until it stops
    uint64_t copy_blocks = 0;              // blocks it verified copies of (worker only, until it stops)
    void stop_worker();

    const RootRec* root_rec(uint64_t id) const {
        for (const RootRec& r : roots)
            if (r.id == id) return &r;
        return nullptr;
    }
    void root_tree_leaf(const TreeBlock& leaf);
    void uuid_leaf(const TreeBlock& leaf);
    // trusted: the walk verified this block's first copy (checksum, key
    // order), which is not checked again.
    BlockRef read_again(uint64_t bytenr, int level, uint64_t gen, const std::optional<Key>& first_key,
                        bool trusted = false);
    std::function<bool(uint64_t)> first_copy_verified;  // main thread
    void walk_shared(uint64_t bytenr, int level, uint64_t gen, const std::optional<Key>& first_key,
                     const FsTreeStream::TreeLog* log, const SharedEdges* edges);
    // Fills e.left and e.right from e.top; false when a block is unusable or
    // an edge is too long. on_walk: called by the walk (main thread).
    bool find_edges(SharedEdges& e, bool on_walk);
    bool replay_shared(const SharedEdges& e, const FsTreeStream::TreeLog& log);
    void root_checks();
    void uuid_checks();
};

void FsChecker::Impl::root_tree_leaf(const TreeBlock& leaf) {
    const uint64_t super_gen = fs.super().generation;
    for (uint32_t s = 0; s < leaf.nritems(); ++s) {
        const Key k = leaf.key(s);
        auto d = leaf.item_data(s);
        if (k.type == ROOT_ITEM_KEY) {
            if (d.size() < ROOT_ITEM_V1_SIZE) continue;  // the walk reports it
            format::root_item ri{};
            std::memcpy(&ri, d.data(), std::min(d.size(), sizeof ri));
            RootRec r;
            r.id = k.objectid;
            r.offset = k.offset;
            r.flags = ri.flags;
            r.root_dirid = ri.root_dirid;
            r.refs = ri.refs;
            r.dropping = ri.drop_progress.objectid.get() != 0 || ri.drop_level != 0;
            r.generation = ri.generation;
            // The uuids are valid only when generation_v2 matches generation.
            if (d.size() >= sizeof ri && ri.generation_v2 == ri.generation) {
                r.has_uuid = true;
                std::memcpy(r.uuid, ri.uuid, 16);
                std::memcpy(r.received, ri.received_uuid, 16);
                std::memcpy(r.parent, ri.parent_uuid, 16);
                r.otransid = ri.otransid;
            }
            auto bad = [&](std::string p) {
                report(item_finding(K::root_item_invalid, ROOT_TREE_OBJECTID, leaf.bytenr(), k)
                           .str("key", key_text(k))
                           .str("problem", std::move(p)));
            };
            if (ri.generation > super_gen)
                bad(fmt::format("generation {} is above the super generation {}", ri.generation.get(), super_gen));
            if (is_subvol_tree(k.objectid) && ri.root_dirid != FIRST_FREE_OBJECTID)
                bad(fmt::format("root_dirid {}, a subvolume's is {}", ri.root_dirid.get(), FIRST_FREE_OBJECTID));
            if (ri.flags & ~(ROOT_SUBVOL_RDONLY | ROOT_SUBVOL_DEAD))
                bad(fmt::format("flags {:#x} have unknown bits", ri.flags.get()));
            roots.push_back(r);
        } else if (k.type == ROOT_REF_KEY || k.type == ROOT_BACKREF_KEY) {
            const auto* rr = view_at<root_ref>(d);
            if (!rr || d.size() - sizeof(root_ref) < rr->name_len) {
                report(item_invalid_finding(ROOT_TREE_OBJECTID, leaf, s, "root ref overruns the item"));
                continue;
            }
            const bool back = k.type == ROOT_BACKREF_KEY;
            refs.push_back({back ? k.offset : k.objectid, back ? k.objectid : k.offset, rr->dirid, rr->sequence,
                            std::string(reinterpret_cast<const char*>(d.data() + sizeof(root_ref)), rr->name_len),
                            back});
        } else if (k.type == ORPHAN_ITEM_KEY && k.objectid == ORPHAN_OBJECTID) {
            root_orphans.push_back(k.offset);
        }
    }
}

void FsChecker::Impl::uuid_leaf(const TreeBlock& leaf) {
    for (uint32_t s = 0; s < leaf.nritems(); ++s) {
        const Key k = leaf.key(s);
        if (k.type != UUID_KEY_SUBVOL && k.type != UUID_KEY_RECEIVED_SUBVOL) continue;
        auto d = leaf.item_data(s);
        UuidRec u;
        u.key = k;
        for (int i = 0; i < 8; ++i) {
            u.uuid[i] = uint8_t(k.objectid >> (8 * i));
            u.uuid[8 + i] = uint8_t(k.offset >> (8 * i));
        }
        for (size_t p = 0; p + 8 <= d.size(); p += 8) {
            u.subvol = load_le64(d.data() + p);
            uuids[k.type == UUID_KEY_SUBVOL ? 0 : 1].push_back(u);
        }
    }
}

BlockRef FsChecker::Impl::read_again(uint64_t bytenr, int level, uint64_t gen, const std::optional<Key>& first_key,
                                     bool trusted) {
    // Read past the block cache: the walk already verified these blocks, and
    // caching every leaf of a snapshot would only evict the useful ones.
    const int copies = std::max(1, fs.num_copies(bytenr));
    for (int m = 0; m < copies; ++m) {
        auto b = fs.read_block_raw(bytenr, m);
        if (!b) continue;
        const BlockRef& blk = *b;
        const bool checked = trusted && m == 0;  // the same bytes as the walk verified
        if ((!checked && !fs.verify_block(blk->raw(), bytenr).empty()) || blk->level() != level ||
            (gen && blk->generation() != gen) || (first_key && blk->nritems() && blk->key(0) != *first_key))
            continue;
        // Keys in order, or a node repeating a pointer could make the walk
        // read a subtree again and again.
        if (!checked && first_unordered_key(*blk)) continue;
        return blk;
    }
    return nullptr;
}

void FsChecker::Impl::walk_shared(uint64_t bytenr, int level, uint64_t gen, const std::optional<Key>& first_key,
                                  const FsTreeStream::TreeLog* log, const SharedEdges* edges) {
    const BlockRef blk = edges ? edges->top : read_again(bytenr, level, gen, first_key);
    if (!blk) {
        shared_failed = true;
        return;
    }
    // The subtree's inner inodes from the log of the tree that read it first
    // (its descendants were in that tree too).
    if (log) {
        SharedEdges own;
        if (!edges) {
            own.top = blk;
            own.ok = find_edges(own, false);
            edges = &own;
        }
        if (edges->ok && replay_shared(*edges, *log)) return;
    }
    if (blk->is_leaf()) return stream.leaf(*blk);
    for (uint32_t i = 0; i < blk->nritems(); ++i)
        walk_shared(blk->blockptr(i), level - 1, blk->ptr_generation(i), blk->key(i), log, nullptr);
}

bool FsChecker::Impl::find_edges(SharedEdges& e, bool on_walk) {
    // The first and the last inode may have items outside the subtree: theirs
    // are streamed, from the leaves at either edge holding them (at most
    // EDGE_LEAVES per side, else the whole subtree is streamed).
    constexpr size_t EDGE_LEAVES = 32;
    // Leaves from one edge until one holds an item of another inode than
    // `ino` (*ino = 0: that of the first item met).
    std::function<int(const BlockRef&, bool, uint64_t&, std::vector<BlockRef>&)> edge =
        [&](const BlockRef& b, bool from_right, uint64_t& ino, std::vector<BlockRef>& out) -> int {
        // 1: done, 0: go on, -1: give up
        const uint32_t n = b->nritems();
        if (n == 0) return -1;
        if (b->is_leaf()) {
            if (out.size() >= EDGE_LEAVES) return -1;
            out.push_back(b);
            const Key near = b->key(from_right ? n - 1 : 0), far = b->key(from_right ? 0 : n - 1);
            if (!ino) ino = near.objectid;
            return far.objectid != ino ? 1 : 0;
        }
        for (uint32_t k = 0; k < n; ++k) {
            const uint32_t i = from_right ? n - 1 - k : k;
            const uint64_t ptr = b->blockptr(i);
            const bool trusted = on_walk && first_copy_verified && first_copy_verified(ptr);
            const BlockRef c = read_again(ptr, b->level() - 1, b->ptr_generation(i), b->key(i), trusted);
            if (!c) return -1;
            if (const int r = edge(c, from_right, ino, out)) return r;
        }
        return 0;
    };
    uint64_t head = 0, tail = 0;
    return edge(e.top, false, head, e.left) == 1 && edge(e.top, true, tail, e.right) == 1;
}

bool FsChecker::Impl::replay_shared(const SharedEdges& e, const FsTreeStream::TreeLog& log) {
    const TreeBlock& hl = *e.left.back();   // where the first inode ends
    const TreeBlock& tl = *e.right.back();  // where the last one starts
    const uint64_t head = e.left.front()->key(0).objectid;
    const uint64_t tail = e.right.front()->key(e.right.front()->nritems() - 1).objectid;
    if (head >= tail || head < FIRST_FREE_OBJECTID || tail > LAST_FREE_OBJECTID) return false;
    uint32_t head_end = 0;
    while (head_end < hl.nritems() && hl.key(head_end).objectid == head) ++head_end;
    uint32_t tail_start = tl.nritems();
    while (tail_start > 0 && tl.key(tail_start - 1).objectid == tail) --tail_start;
    if (tail_start == 0) return false;
    for (size_t i = 0; i + 1 < e.left.size(); ++i) stream.leaf(*e.left[i]);
    stream.items(hl, 0, head_end);
    stream.replay(log, head, tail, tl.key(tail_start - 1));
    stream.items(tl, tail_start, tl.nritems());
    for (size_t i = e.right.size() - 1; i-- > 0;) stream.leaf(*e.right[i]);
    return true;
}

void FsChecker::Impl::root_checks() {
    if (damaged.count(ROOT_TREE_OBJECTID)) return;
    std::sort(root_orphans.begin(), root_orphans.end());
    for (const RootRec& r : roots) {
        if (!is_user_subvol(r.id) || r.refs != 0) continue;
        if (!std::binary_search(root_orphans.begin(), root_orphans.end(), r.id)) {
            Finding f;
            f.kind = K::root_orphan_missing;
            f.tree = ROOT_TREE_OBJECTID;
            f.num("root", r.id);
            report(std::move(f));
        }
    }
    std::sort(refs.begin(), refs.end(), [](const RefRec& a, const RefRec& b) {
        return std::tie(a.child, a.parent, a.back) < std::tie(b.child, b.parent, b.back);
    });
    std::sort(subvol_links.begin(), subvol_links.end(), [](const SubvolLink& a, const SubvolLink& b) {
        return std::tie(a.parent_root, a.dir, a.child_root, a.fp) < std::tie(b.parent_root, b.dir, b.child_root, b.fp);
    });
    auto missing = [&](uint64_t child, uint64_t parent, std::string problem) {
        Finding f;
        f.kind = K::root_ref_missing;
        f.tree = ROOT_TREE_OBJECTID;
        f.num("child", child).num("parent", parent).str("problem", std::move(problem));
        report(std::move(f));
    };
    for (size_t i = 0; i < refs.size();) {
        size_t j = i;
        const RefRec *ref = nullptr, *back = nullptr;
        for (; j < refs.size() && refs[j].child == refs[i].child && refs[j].parent == refs[i].parent; ++j)
            (refs[j].back ? back : ref) = &refs[j];
        const uint64_t child = refs[i].child, parent = refs[i].parent;
        i = j;
        if (ref && !back) missing(child, parent, fmt::format("ROOT_REF in root {} has no ROOT_BACKREF", parent));
        if (back && !ref) missing(child, parent, fmt::format("ROOT_BACKREF to root {} has no ROOT_REF", parent));
        if (ref && back) {
            auto differ = [&](const char* field, std::string a, std::string b) {
                Finding f;
                f.kind = K::root_ref_mismatch;
                f.tree = ROOT_TREE_OBJECTID;
                f.num("child", child).num("parent", parent).str("field", field).str("found", a).str("expected", b);
                report(std::move(f));
            };
            if (ref->dirid != back->dirid) differ("dirid", std::to_string(ref->dirid), std::to_string(back->dirid));
            if (ref->seq != back->seq) differ("sequence", std::to_string(ref->seq), std::to_string(back->seq));
            if (ref->name != back->name) differ("name", name_text(ref->name), name_text(back->name));
        }
        if (!ref) continue;
        if (!root_rec(child)) {
            missing(child, parent, fmt::format("ROOT_REF in root {}, but the subvolume has no root item", parent));
            continue;
        }
        // The parent directory must name the subvolume (when that tree was
        // read whole).
        if (!checked.count(parent)) continue;
        const uint64_t fp = name_fp(ref->name);
        bool has_item = false, has_index = false, index_ok = false;
        SubvolLink key{parent, ref->dirid, child, 0, fp, false, false};
        auto it = std::lower_bound(subvol_links.begin(), subvol_links.end(), key, [](const SubvolLink& a, const SubvolLink& b) {
            return std::tie(a.parent_root, a.dir, a.child_root, a.fp) < std::tie(b.parent_root, b.dir, b.child_root, b.fp);
        });
        for (; it != subvol_links.end() && it->parent_root == parent && it->dir == ref->dirid && it->child_root == child &&
               it->fp == fp;
             ++it) {
            has_item |= it->has_item;
            has_index |= it->has_index;
            index_ok |= it->has_index && it->index == ref->seq;
        }
        std::string what = !has_item && !has_index ? "DIR_ITEM or DIR_INDEX"
                           : !has_item             ? "DIR_ITEM"
                           : !index_ok             ? fmt::format("DIR_INDEX {}", ref->seq)
                                                   : "";
        if (!what.empty()) {
            Finding f;
            f.kind = K::root_ref_dir_entry;
            f.tree = parent;
            f.num("child", child).num("parent", parent).num("dir", ref->dirid).str("name", name_text(ref->name)).str("missing", what);
            report(std::move(f));
        }
    }
    for (const RootRec& r : roots) {
        if (!is_user_subvol(r.id) || r.refs == 0) continue;
        bool linked = false;
        for (const RefRec& x : refs)
            if (x.child == r.id && x.back) linked = true;
        if (!linked) missing(r.id, 0, fmt::format("refs {}, but no ROOT_BACKREF links it into a directory", r.refs));
    }
}

void FsChecker::Impl::uuid_checks() {
    const super_block& sb = fs.super();
    // A uuid tree whose generation lags is rebuilt by the kernel at mount.
    if (!walked.count(UUID_TREE_OBJECTID) || damaged.count(UUID_TREE_OBJECTID) || damaged.count(ROOT_TREE_OBJECTID) ||
        sb.uuid_tree_generation != sb.generation)
        return;
    const char* kinds[2] = {"uuid", "received uuid"};
    for (int t = 0; t < 2; ++t) {
        for (const UuidRec& u : uuids[t]) {
            bool exists = false, match = false;
            for (const RootRec& r : roots) {
                if (r.id != u.subvol) continue;
                exists = true;
                if (r.has_uuid && std::memcmp(t == 0 ? r.uuid : r.received, u.uuid, 16) == 0) match = true;
            }
            if (match) continue;
            Finding f;
            f.kind = K::uuid_item_invalid;
            f.tree = UUID_TREE_OBJECTID;
            f.key = u.key;
            f.str("kind", kinds[t]).num("subvol", u.subvol);
            f.str("problem", exists ? fmt::format("the subvolume's {} differs", kinds[t]) : "no such subvolume");
            report(std::move(f));
        }
    }
    for (const RootRec& r : roots) {
        if (!(r.id == FS_TREE_OBJECTID || is_user_subvol(r.id)) || r.refs == 0 || !r.has_uuid) continue;
        for (int t = 0; t < 2; ++t) {
            const uint8_t* want = t == 0 ? r.uuid : r.received;
            if (is_zero_uuid(want)) continue;
            bool found = false;
            for (const UuidRec& u : uuids[t])
                if (u.subvol == r.id && std::memcmp(u.uuid, want, 16) == 0) found = true;
            if (found) continue;
            Finding f;
            f.kind = K::uuid_missing;
            f.tree = UUID_TREE_OBJECTID;
            f.num("root", r.id).str("kind", kinds[t]);
            report(std::move(f));
        }
    }
}

void FsChecker::Impl::put(StreamMsg m) {
    if (!worker.joinable())
        worker = std::thread([this] {
            pthread_setname_np(pthread_self(), "btk-fsck");
            work();
        });
    const bool end = m.type == StreamMsg::END;
    batch_blocks += m.leaf || m.type == StreamMsg::VERIFY ? 1
                    : m.edges                            ? 1 + m.edges->left.size() + m.edges->right.size()
                                                         : 0;
    batch.push_back(std::move(m));
    // Batches of 64 blocks or messages (fewer wake-ups), but no waiting for a
    // full batch while the worker has nothing to do.
    if (end || batch.size() >= 64 || batch_blocks >= 64 || (batch.size() >= 8 && queue.idle_hint())) {
        queue.put(std::move(batch));
        batch = {};
        batch_blocks = 0;
    }
}

void FsChecker::Impl::work() {
    // Leaves arrive from another core: fetch a few leaves ahead into this
    // core's cache while the current one is streamed.
    constexpr size_t kAhead = 4;
    while (auto msgs = queue.get()) {
        verify_copies_of(*msgs);
        for (size_t mi = 0; mi < msgs->size(); ++mi) {
            StreamMsg& m = (*msgs)[mi];
            if (mi + kAhead < msgs->size() && (*msgs)[mi + kAhead].leaf) {
                const auto raw = (*msgs)[mi + kAhead].leaf->raw();
                for (size_t o = 0; o < raw.size(); o += 64) __builtin_prefetch(raw.data() + o);
            }
            switch (m.type) {
                case StreamMsg::BEGIN:
                    shared_failed = false;
                    stream.begin(m.info);
                    break;
                case StreamMsg::LEAF: stream.leaf(*m.leaf); break;
                case StreamMsg::SHARED:
                    walk_shared(m.bytenr, m.level, m.generation, m.first_key,
                                m.first_tree && m.first_tree != stream.root() ? stream.log_of(m.first_tree) : nullptr,
                                m.edges.get());
                    break;
                case StreamMsg::END: stream.end(m.complete && !shared_failed); break;
                case StreamMsg::VERIFY: break;  // done above
            }
            m.leaf.reset();  // free the blocks now, not with the batch
            m.edges.reset();
        }
    }
}

void FsChecker::Impl::verify_copies_of(const std::vector<StreamMsg>& msgs) {
    struct Job {
        uint64_t bytenr, seq, tree;
    };
    std::vector<Job> jobs;
    for (const StreamMsg& m : msgs)
        if (m.type == StreamMsg::LEAF && m.verify_seq)
            jobs.push_back({m.leaf->bytenr(), m.verify_seq, m.tree});
        else if (m.type == StreamMsg::VERIFY)
            jobs.push_back({m.bytenr, m.verify_seq, m.tree});
    if (jobs.empty()) return;
    copy_blocks += jobs.size();
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.bytenr < b.bytenr; });
    const uint64_t ns = fs.nodesize();
    for (size_t i = 0; i < jobs.size();) {
        size_t j = i + 1;
        while (j < jobs.size() && j - i < kMaxReadRun && jobs[j].bytenr == jobs[i].bytenr + (j - i) * ns) ++j;
        auto copies = verify_copies(fs, jobs[i].bytenr, j - i, 1);
        for (size_t k = i; k < j; ++k)
            for (CopyRead& c : copies[k - i])
                if (c.kind != CopyRead::ok) copy_results.push_back({jobs[k].seq, jobs[k].tree, jobs[k].bytenr, std::move(c)});
        i = j;
    }
}

void FsChecker::Impl::stop_worker() {
    // Every tree's messages end with END, which sends its batch.
    queue.close();
    if (worker.joinable()) worker.join();
}

FsChecker::FsChecker(Filesystem& fs, const FsCheckConfig& cfg, Report report)
    : p_(std::make_unique<Impl>(fs, cfg, std::move(report))) {}

FsChecker::~FsChecker() = default;

void FsChecker::begin_tree(uint64_t tree, const RootRef& root) {
    if (tree == TREE_LOG_OBJECTID && !p_->log_reported) {
        p_->log_reported = true;
        Finding f;
        f.kind = K::log_tree_present;
        f.tree = TREE_LOG_OBJECTID;
        f.bytenr = root.bytenr;
        f.num("bytenr", root.bytenr);
        p_->report(std::move(f));
    }
    if (!is_subvol_tree(tree) || p_->stream_tree) return;
    const RootRec* r = p_->root_rec(tree);
    // Deleted subvolumes (refs 0, maybe half dropped) are garbage waiting
    // for the cleaner: only their tree blocks are checked.
    if (!r || r->refs == 0 || r->dropping) return;
    StreamMsg m{StreamMsg::BEGIN, {}, nullptr, 0, 0, 0, std::nullopt, false, 0, nullptr, 0, 0};
    FsTreeInfo& info = m.info;
    info.root = tree;
    info.ref = root;
    info.root_dirid = r->root_dirid;
    info.super_gen = p_->fs.super().generation;
    info.sectorsize = p_->fs.sectorsize();
    info.no_holes = p_->fs.has_incompat(FEATURE_INCOMPAT_NO_HOLES);
    // The data relocation tree holds relocation's temporary copies.
    info.need_csums = tree != DATA_RELOC_TREE_OBJECTID;
    info.keep_log = false;
    // Later trees that may share blocks this one reads first: its snapshots,
    // and other snapshots of its source (their blocks that the source still
    // holds are the source's, streamed before both: only when the source
    // changed after the later snapshot was taken can they share others).
    const RootRec* source = nullptr;
    if (r->has_uuid && !is_zero_uuid(r->parent))
        for (const RootRec& x : p_->roots)
            if (x.has_uuid && std::memcmp(x.uuid, r->parent, 16) == 0) source = &x;
    for (const RootRec& o : p_->roots) {
        if (o.id <= tree || o.refs == 0 || o.dropping || !o.has_uuid || !r->has_uuid || is_zero_uuid(o.parent)) continue;
        if (std::memcmp(o.parent, r->uuid, 16) == 0) info.keep_log = p_->cfg.reuse_shared;
        if (std::memcmp(o.parent, r->parent, 16) == 0) {
            const bool source_first = source && source->id < tree && source->refs && !source->dropping;
            if (!source_first || source->generation > o.otransid) info.keep_log = p_->cfg.reuse_shared;
        }
    }
    // Trees after the csum tree check their extents' checksums as they go.
    info.csums_ready = p_->walked.count(CSUM_TREE_OBJECTID) && !p_->damaged.count(CSUM_TREE_OBJECTID);
    if (info.keep_log) p_->log_trees.insert(tree);
    p_->stream_tree = tree;
    p_->streamed.insert(tree);
    p_->put(std::move(m));
}

void FsChecker::end_tree(uint64_t tree) {
    p_->walked.insert(tree);
    if (p_->stream_tree != tree) return;
    p_->stream_tree = 0;
    p_->put({StreamMsg::END, {}, nullptr, 0, 0, 0, std::nullopt, !p_->damaged.count(tree), 0, nullptr, 0, 0});
}

bool FsChecker::leaf(uint64_t tree, const BlockRef& leaf, uint64_t verify_seq) {
    switch (tree) {
        case ROOT_TREE_OBJECTID: p_->root_tree_leaf(*leaf); return false;
        case EXTENT_TREE_OBJECTID: p_->csum.extent_leaf(*leaf); return false;
        case CSUM_TREE_OBJECTID:
            // Once read, the coverage is used by the subvolume tree thread:
            // a second csum tree root (damage) must not change it.
            if (!p_->walked.count(CSUM_TREE_OBJECTID)) p_->csum.csum_leaf(*leaf);
            return false;
        case UUID_TREE_OBJECTID: p_->uuid_leaf(*leaf); return false;
        default:
            if (p_->stream_tree != tree) return false;
            p_->put({StreamMsg::LEAF, {}, leaf, 0, 0, 0, std::nullopt, false, 0, nullptr, verify_seq, tree});
            return true;
    }
}

void FsChecker::verify_later(uint64_t tree, uint64_t bytenr, uint64_t seq) {
    p_->put({StreamMsg::VERIFY, {}, nullptr, bytenr, 0, 0, std::nullopt, false, 0, nullptr, seq, tree});
}

void FsChecker::shared_block(uint64_t tree, uint64_t bytenr, int level, uint64_t generation,
                             const std::optional<Key>& first_key, uint64_t first_tree) {
    if (p_->stream_tree != tree) return;
    const uint64_t first = p_->streamed.count(first_tree) ? first_tree : 0;
    StreamMsg m{StreamMsg::SHARED, {}, nullptr, bytenr, generation, level, first_key, false, first, nullptr, 0, 0};
    // The subtree will be replayed from the first tree's log if it keeps
    // one: read its edges here.
    if (first && first != tree && p_->log_trees.count(first)) {
        auto e = std::make_shared<SharedEdges>();
        const bool trusted = p_->first_copy_verified && p_->first_copy_verified(bytenr);
        e->top = p_->read_again(bytenr, level, generation, first_key, trusted);
        if (e->top) e->ok = p_->find_edges(*e, true);
        m.edges = std::move(e);
    }
    p_->put(std::move(m));
}

void FsChecker::block_problem(const Finding& f) {
    if (f.tree && loses_items(f.kind)) p_->damaged.insert(f.tree);
}

void FsChecker::set_first_copy_verified(std::function<bool(uint64_t)> f) { p_->first_copy_verified = std::move(f); }

// At most one batch waiting: the worker is keeping up with the walk. (Bench
// image, 2 cores: with none waiting it took too few to matter, with more
// than two it took so many that the walk waited for it.)
bool FsChecker::worker_has_room() const noexcept { return p_->queue.queued_hint() <= 1; }

std::vector<FsChecker::CopyResult> FsChecker::stop_worker() {
    p_->stop_worker();
    return std::move(p_->copy_results);
}

void FsChecker::finish() {
    p_->stop_worker();
    for (uint64_t t : p_->stream.complete_trees()) p_->checked.insert(t);
    p_->stream.flush();
    p_->root_checks();
    p_->uuid_checks();
    const bool csum_ok = p_->walked.count(CSUM_TREE_OBJECTID) && !p_->damaged.count(CSUM_TREE_OBJECTID);
    const bool extent_ok = p_->walked.count(EXTENT_TREE_OBJECTID) && !p_->damaged.count(EXTENT_TREE_OBJECTID);
    p_->csum.finish(csum_ok, extent_ok);
}

uint64_t FsChecker::data_bytes_verified() const noexcept { return p_->csum.verified_bytes(); }
uint64_t FsChecker::reused_inodes() const noexcept { return p_->stream.reused_inodes(); }
std::vector<uint64_t> FsChecker::logged_trees() const { return p_->stream.logged_trees(); }
uint64_t FsChecker::worker_copy_blocks() const noexcept { return p_->copy_blocks; }

}  // namespace btk
