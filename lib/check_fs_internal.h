// Pieces of the fs tree checker (check_fs.h) shared between its source files
// and the unit tests: item parsers and validators that need no filesystem,
// the per-tree item stream and the csum checker.
#pragma once

#include "check_findings.h"
#include "fs.h"
#include "run_queue.h"
#include "tree_block.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace btk::fsck {

using Report = std::function<void(Finding)>;

std::string key_text(const Key& k);

// --- threads ---------------------------------------------------------------

// A bounded queue between one producer and worker threads: put() waits while
// it is full, get() waits for an item and returns nothing once the queue is
// closed and empty.
template <typename T>
class WorkQueue {
public:
    explicit WorkQueue(size_t capacity) : cap_(capacity) {}
    void put(T v) {
        std::unique_lock<std::mutex> l(mu_);
        space_.wait(l, [&] { return closed_ || q_.size() < cap_; });
        if (closed_) return;
        q_.push_back(std::move(v));
        queued_.store(q_.size(), std::memory_order_relaxed);
        l.unlock();
        work_.notify_one();
    }
    // Nothing queued right now (a hint: the consumer may be idle).
    bool idle_hint() const noexcept { return queued_.load(std::memory_order_relaxed) == 0; }
    // Items queued right now (a hint).
    size_t queued_hint() const noexcept { return queued_.load(std::memory_order_relaxed); }
    std::optional<T> get() {
        std::unique_lock<std::mutex> l(mu_);
        work_.wait(l, [&] { return closed_ || !q_.empty(); });
        if (q_.empty()) return std::nullopt;
        T v = std::move(q_.front());
        q_.pop_front();
        queued_.store(q_.size(), std::memory_order_relaxed);
        l.unlock();
        space_.notify_one();
        return v;
    }
    // Workers finish what is queued, then get() returns nothing.
    void close() {
        {
            std::lock_guard<std::mutex> l(mu_);
            closed_ = true;
        }
        work_.notify_all();
        space_.notify_all();
    }

private:
    size_t cap_;
    std::mutex mu_;
    std::condition_variable work_, space_;
    std::deque<T> q_;
    std::atomic<size_t> queued_{0};
    bool closed_ = false;
};

// --- names -----------------------------------------------------------------

// What is wrong with a directory entry or inode ref name (nullptr: nothing).
const char* name_problem(std::string_view name) noexcept;
// A 64-bit fingerprint used to match the same name across item kinds: the
// name hash of DIR_ITEM keys in the high half, another hash in the low half.
uint64_t name_fp(std::string_view name) noexcept;
// The name as printed in findings: quoted, non-printable bytes escaped.
std::string name_text(std::string_view name);

// One entry of a DIR_ITEM, DIR_INDEX or XATTR_ITEM.
struct DirEntry {
    Key location;
    uint8_t type = 0;
    std::string_view name, data;
};
// Calls f(const DirEntry&) for each entry of a dir-item-format item, in
// order; false when an entry overruns the item (f saw the complete ones).
template <typename F>
bool for_each_dir_entry(std::span<const uint8_t> item, F&& f) {
    size_t p = 0;
    while (p < item.size()) {
        const auto* di = view_at<format::dir_item>(item, p);
        if (!di) return false;
        const size_t nl = di->name_len, dl = di->data_len;
        const size_t body = p + sizeof(format::dir_item);
        if (item.size() - body < nl + dl) return false;
        DirEntry e;
        e.location = Key::from_disk(di->location);
        e.type = di->type;
        e.name = std::string_view(reinterpret_cast<const char*>(item.data() + body), nl);
        e.data = std::string_view(reinterpret_cast<const char*>(item.data() + body + nl), dl);
        f(e);
        p = body + nl + dl;
    }
    return true;
}
// Splits a dir-item-format item into entries; false when an entry overruns
// the item (`entries` then holds the complete ones).
bool parse_dir_entries(std::span<const uint8_t> item, std::vector<DirEntry>& entries);

// One name of an INODE_REF or INODE_EXTREF.
struct RefEntry {
    uint64_t parent = 0, index = 0;
    std::string_view name;
};
bool parse_inode_refs(std::span<const uint8_t> item, uint64_t parent, std::vector<RefEntry>& out);
bool parse_inode_extrefs(std::span<const uint8_t> item, std::vector<RefEntry>& out);

// --- file extents ----------------------------------------------------------

struct FileExtentInfo {
    uint8_t type = 0, compression = 0;
    uint64_t ram_bytes = 0, disk_bytenr = 0, disk_num_bytes = 0, offset = 0, num_bytes = 0;
    uint64_t end = 0;     // file offset past the extent (inline: rounded up to the sector)
    uint64_t nbytes = 0;  // what the extent adds to the inode's nbytes
    bool hole = false;
};
// Parses an EXTENT_DATA item at file offset `key_offset` and appends what is
// wrong with it to `problems`. Returns false when the item cannot be used at
// all (too small or unknown type).
bool parse_file_extent(uint64_t key_offset, std::span<const uint8_t> item, uint32_t sectorsize,
                       FileExtentInfo& fe, std::vector<std::string>& problems);

// --- inode items -----------------------------------------------------------

const char* ftype_name(uint8_t ft) noexcept;

// --- findings ----------------------------------------------------------------

// A finding about the item `key` in leaf `bytenr` of `tree`.
Finding item_finding(FindingKind kind, uint64_t tree, uint64_t bytenr, const Key& key);
// item_invalid for slot `slot` of `leaf`.
Finding item_invalid_finding(uint64_t tree, const TreeBlock& leaf, uint32_t slot, std::string problem);

// --- ranges ----------------------------------------------------------------

struct Range {
    uint64_t start, end;
};
// Appends [start, end) to sorted, disjoint `v`, merging with the last range
// when they touch (callers add in address order).
void add_range(std::vector<Range>& v, uint64_t start, uint64_t end);
// Bytes of [start, end) covered by sorted, disjoint `cover`.
uint64_t covered_bytes(const std::vector<Range>& cover, uint64_t start, uint64_t end);

// --- per-tree state shared with the cross-tree checks -----------------------

// A directory entry that names a subvolume (location type ROOT_ITEM).
struct SubvolLink {
    uint64_t parent_root, dir, child_root, index, fp;
    bool has_item, has_index;
};

class CsumCheck;

struct FsTreeInfo {
    uint64_t root = 0;
    RootRef ref;
    uint64_t root_dirid = 256;
    uint64_t super_gen = 0;
    uint32_t sectorsize = 4096;
    bool no_holes = false;
    bool need_csums = true;  // datasum extents must have checksums
    bool csums_ready = false;  // the csum tree was read whole before this tree
    bool keep_log = false;     // keep the link log for later trees (snapshots of this one)
};

// Streams the items of one subvolume tree in key order. Items of one inode
// are contiguous, so the inode being read is the only per-inode state. Name
// links are matched as they stream: a directory's entries wait in a heap
// ordered by child inode until the child's inode refs arrive (children
// usually follow their directory); the few links going the other way are
// kept in two vectors matched at the end of the tree.
//
// Snapshots share most of their blocks. Each tree keeps a log of its name
// links (inode refs, directory entries, subvolume links, unlinked inodes) in
// inode order; when a later tree meets a subtree a clean earlier tree
// streamed, the inodes wholly inside it (same items, already checked) are
// taken from that log: only the links leaving the subtree are matched again.
class FsTreeStream {
public:
    // One record of a tree's link log; `owner` is the inode it belongs to.
    // 32 bytes: the index in 32 bits (a tree with a larger one keeps no log).
    struct LinkRec {
        enum Kind : uint8_t { REF, ENTRY, SUBVOL, UNLINKED };
        uint32_t child, parent;     // inode numbers (subvolume ids for SUBVOL children)
        uint64_t fp;
        uint32_t idx;               // UINT32_MAX: none (NO_INDEX)
        uint8_t type, kind, flags;  // flags (SUBVOL): 1 has DIR_ITEM, 2 has DIR_INDEX
        uint64_t owner() const noexcept { return kind == ENTRY || kind == SUBVOL ? parent : child; }
        uint64_t index() const noexcept { return idx == UINT32_MAX ? ~0ULL : idx; }
    };
    // 24 bytes: a tree whose inode numbers or indexes need more than 32 bits
    // keeps no log (it is still checked whole, only not reused).
    static_assert(sizeof(LinkRec) == 24);
    // The log of a tree whose stream was complete and found nothing.
    // In chunks: it grows to millions of records, and a vector would copy
    // them (into freshly faulted pages) at every doubling.
    struct TreeLog {
        static constexpr size_t CHUNK = 8192;
        std::vector<std::unique_ptr<LinkRec[]>> chunks;
        size_t n = 0;
        size_t size() const noexcept { return n; }
        const LinkRec& operator[](size_t i) const noexcept { return chunks[i / CHUNK][i % CHUNK]; }
        void push_back(const LinkRec& r) {
            if (n % CHUNK == 0) chunks.push_back(std::make_unique_for_overwrite<LinkRec[]>(CHUNK));
            chunks[n / CHUNK][n % CHUNK] = r;
            ++n;
        }
        // First record whose owner is >= ino (records are in owner order).
        size_t lower_bound(uint64_t ino, size_t from = 0) const noexcept {
            size_t lo = from, hi = n;
            while (lo < hi) {
                const size_t mid = lo + (hi - lo) / 2;
                if ((*this)[mid].owner() < ino)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            return lo;
        }
    };

    FsTreeStream(Filesystem* fs, Report report, CsumCheck* csums, std::vector<SubvolLink>* subvol_links)
        : fs_(fs), report_(std::move(report)), csums_(csums), subvol_links_(subvol_links) {}
    void begin(const FsTreeInfo& info);
    void leaf(const TreeBlock& leaf);
    // Slots [from, to) of a leaf.
    void items(const TreeBlock& leaf, uint32_t from, uint32_t to);
    // Instead of the items of the inodes strictly between `head` and `tail`
    // (all inside one subtree that `log`'s tree streamed): their links from
    // the log. `before_tail` is the key before the tail inode's first item.
    void replay(const TreeLog& log, uint64_t head, uint64_t tail, const Key& before_tail);
    const TreeLog* log_of(uint64_t tree) const {
        auto it = logs_.find(tree);
        return it == logs_.end() ? nullptr : &it->second;
    }
    uint64_t reused_inodes() const noexcept { return reused_; }
    // The trees whose link log is kept for later trees, in id order.
    std::vector<uint64_t> logged_trees() const;
    // Bytes all logs may take; a tree whose log would exceed it keeps none.
    static constexpr size_t LOG_BUDGET = 160ull << 20;
    // `complete`: every leaf of the tree was streamed. When not, checks that
    // need the whole tree are skipped.
    void end(bool complete);
    // Reports the findings of every tree ended so far, names looked up in
    // their trees (not on the worker thread: it uses the block cache).
    void flush();
    bool active() const noexcept { return active_; }
    uint64_t root() const noexcept { return info_.root; }
    // Trees whose every leaf was streamed.
    const std::vector<uint64_t>& complete_trees() const noexcept { return complete_trees_; }

private:
    // A DIR_ITEM or DIR_INDEX entry of the directory being read.
    struct Named {
        uint64_t fp, child, index;
        uint8_t type, loc_type;
        uint32_t matches;
    };
    // One name link: from a directory entry (dir entries paired) or an inode ref.
    struct Link {
        uint64_t child, parent, fp, index;
        uint8_t type;
        friend bool operator<(const Link& a, const Link& b) {
            return std::tie(a.child, a.parent, a.fp, a.index) < std::tie(b.child, b.parent, b.fp, b.index);
        }
    };
    // Names are looked up in the tree only for findings that get reported.
    struct NameOf {
        uint8_t kind;  // 0: none, 1: dir entry (a=dir), 2: inode ref (a=parent)
        uint64_t a, child, fp, index;
    };
    struct Pending {
        uint64_t ino, ino2;  // not reported when either is an orphan (0: none)
        bool whole;          // needs the whole tree
        NameOf name;
        Finding f;
    };
    void start_inode(uint64_t ino);
    void finish_inode();
    void item(const TreeBlock& leaf, uint32_t slot, const Key& k);
    void inode_item(const TreeBlock& leaf, uint32_t slot, const Key& k);
    void inode_refs(const TreeBlock& leaf, uint32_t slot, const Key& k);
    void dir_item(const TreeBlock& leaf, uint32_t slot, const Key& k);
    void file_extent(const TreeBlock& leaf, uint32_t slot, const Key& k);
    void pair_dir_entries();
    void add_entry_link(const Link& l);
    void match_heap(uint64_t upto);
    void match_group(const Link* e, size_t ne, const Link* r, size_t nr);
    // Matches the dir entries naming `ino` left in the heap with its refs to
    // earlier directories (sorted).
    void match_refs(uint64_t ino, const std::vector<Link>& refs);
    void log(uint64_t child, uint64_t parent, uint64_t fp, uint64_t index, uint8_t type, LinkRec::Kind kind,
             uint8_t flags = 0);
    void log(const LinkRec& r);
    void drop_log();
    std::string entry_name(const RootRef& root, uint64_t dir, uint64_t child, uint64_t fp, uint64_t index);
    std::string ref_name(const RootRef& root, uint64_t child, uint64_t parent, uint64_t fp);
    Finding mk(FindingKind k, uint64_t ino = 0) const;
    void add(Finding f, uint64_t excusable_ino = 0, bool whole = false, uint64_t ino2 = 0, NameOf name = {});
    void item_invalid(const TreeBlock& leaf, uint32_t slot, std::string problem);

    Filesystem* fs_;
    Report report_;
    CsumCheck* csums_;
    std::vector<SubvolLink>* subvol_links_;
    FsTreeInfo info_;
    bool active_ = false;
    bool started_ = false;
    Key last_key_{};
    bool have_last_ = false;
    bool out_of_order_ = false;
    bool inode_cache_reported_ = false;
    bool root_dir_seen_ = false;

    struct Inode {
        uint64_t ino = 0;
        bool skip = false, has_item = false;
        uint32_t mode = 0, nlink = 0;
        uint64_t size = 0, nbytes = 0, flags = 0;
        uint64_t names = 0;      // names in INODE_REF and INODE_EXTREF items
        uint64_t dir_bytes = 0;  // name bytes of DIR_ITEM and DIR_INDEX entries
        uint64_t items = 0;
        uint64_t ext_end = 0, ext_bytes = 0;
        bool any_extent = false;
        std::vector<Named> dir_items, dir_index;
        std::vector<Link> refs;  // inode refs to directories before this inode
    } cur_;
    // Entries whose child comes later, smallest first. A directory's entries
    // mostly arrive in child order (DIR_INDEX order is creation order), in
    // runs interleaved with its subdirectories' runs.
    RunQueue<Link> waiting_;
    std::vector<Link> late_entries_, early_refs_;  // the other way round
    std::vector<Link> group_;
    std::vector<uint32_t> fp_slots_;  // pair_dir_entries' table of DIR_ITEM entries by fp
    std::vector<uint64_t> orphans_;
    std::vector<uint64_t> unlinked_;  // nlink 0
    std::vector<Pending> pending_;
    std::vector<std::pair<RootRef, std::vector<Pending>>> done_;
    std::vector<uint64_t> complete_trees_;
    std::vector<RefEntry> scratch_refs_;
    std::vector<Link> replay_refs_;
    std::unordered_map<uint64_t, TreeLog> logs_;  // clean trees streamed so far
    TreeLog cur_log_;
    bool logging_ = false;
    size_t log_bytes_ = 0;  // in logs_ and cur_log_
    uint64_t reused_ = 0;
};

// --- csum tree and data ----------------------------------------------------

class CsumCheck {
public:
    CsumCheck(Filesystem* fs, Report report, bool verify_data, unsigned threads);
    ~CsumCheck();
    void csum_leaf(const TreeBlock& leaf);
    void extent_leaf(const TreeBlock& leaf);
    // A file extent whose data must have checksums: checked at once when
    // the csum tree has been read (`ready`; from the subvolume tree thread
    // only), else kept for finish().
    void need(uint64_t start, uint64_t len, uint64_t root, uint64_t ino, uint64_t file_offset, bool ready);
    // `csum_complete`/`extent_complete`: those trees were read whole.
    void finish(bool csum_complete, bool extent_complete);
    uint64_t verified_bytes() const noexcept { return verified_.load(); }

private:
    struct Need {
        uint64_t start, len, root, ino, offset;
    };
    struct Job {
        uint64_t start;
        uint32_t sectors;
        std::vector<uint8_t> csums;
    };
    struct Bad {
        uint64_t start, end;
        bool all_copies;
        int mirror, good, copies;
        std::string problem;
    };
    void compact_needs();
    void submit(Job job);
    void worker();
    void stop_workers();
    void verify(const Job& job, std::vector<Bad>& out);

    Filesystem* fs_;
    Report report_;
    uint32_t ss_, csum_size_;
    uint64_t prev_end_ = 0;
    bool any_item_ = false;
    std::vector<Range> cover_;
    std::vector<Range> extents_;
    std::vector<Need> needs_;
    size_t needs_compacted_ = 0;
    std::vector<Finding> missing_;  // found by need() at once

    bool verify_ = false;
    unsigned nthreads_ = 0;
    std::vector<std::thread> threads_;
    std::unique_ptr<WorkQueue<Job>> queue_;
    std::mutex mu_;  // guards bad_
    std::vector<Bad> bad_;
    std::atomic<uint64_t> verified_{0};
};

}  // namespace btk::fsck
