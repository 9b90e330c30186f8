// btk::dump_tree: `btrfs inspect-internal dump-tree` of btrfs-progs 6.2.
//
// Text output follows progs 6.2 byte for byte: the version banner, "root
// tree" and "chunk tree" (and "log root tree") printed in full, then every
// ROOT_ITEM of the root tree (and of the log root tree) as "<label> tree key
// (...) " followed by that tree, then the totals. Trees are printed
// breadth-first by default (each level left to right), --dfs prints each
// node followed by its subtrees. Diagnostics go to `err` as "ERROR: ..." or
// "WARNING: ..." lines, as progs writes them to stderr.
//
// JSON output (--format json) is a stream of one-line objects: the tree
// blocks as print_tree.h documents them, and between them
//   {"tree":{"name":"fs","objectid":5,"key":KEY}}   (a tree starts; no objectid
//                                                     or key for the root, chunk,
//                                                     log root and block group trees)
//   {"root":{"name":"fs","objectid":5,"key":KEY,"bytenr":N,"level":N}}  (-r)
//   {"backup_root":{"slot":N,"tree_root":N,"tree_root_gen":N,...}}      (-R)
//   {"summary":{"total_bytes":N,"bytes_used":N,"uuid":"UUID"}}
#include "fs.h"
#include "inspect.h"
#include "print_tree.h"
#include "tree.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <strings.h>
#include <thread>
#include <unordered_set>

namespace btk {

using namespace format;

namespace {

constexpr std::string_view kBanner = "btrfs-progs v6.2\n";
constexpr size_t kRootItemBytenrOffset = offsetof(root_item, bytenr);

// The label progs prints before " tree key (...)" for a tree id.
std::string_view tree_label(uint64_t objectid) {
    switch (objectid) {
    case ROOT_TREE_OBJECTID: return "root";
    case EXTENT_TREE_OBJECTID: return "extent";
    case CHUNK_TREE_OBJECTID: return "chunk";
    case DEV_TREE_OBJECTID: return "device";
    case FS_TREE_OBJECTID: return "fs";
    case ROOT_TREE_DIR_OBJECTID: return "directory";
    case CSUM_TREE_OBJECTID: return "checksum";
    case ORPHAN_OBJECTID: return "orphan";
    case TREE_LOG_OBJECTID: return "log";
    case TREE_LOG_FIXUP_OBJECTID: return "log fixup";
    case TREE_RELOC_OBJECTID: return "reloc";
    case DATA_RELOC_TREE_OBJECTID: return "data reloc";
    case EXTENT_CSUM_OBJECTID: return "extent checksum";
    case QUOTA_TREE_OBJECTID: return "quota";
    case UUID_TREE_OBJECTID: return "uuid";
    case FREE_SPACE_TREE_OBJECTID: return "free space";
    case MULTIPLE_OBJECTIDS: return "multiple";
    }
    return "file";
}

// Tree names accepted by -t, as progs 6.2 matches them: case-insensitive, an
// optional "BTRFS_" prefix, a name from this table (first prefix match), then
// optional "_TREE" and "_OBJECTID" suffixes.
struct TreeName {
    std::string_view name;
    uint64_t id;
};
constexpr TreeName kTreeNames[] = {
    {"ROOT", ROOT_TREE_OBJECTID},
    {"EXTENT", EXTENT_TREE_OBJECTID},
    {"CHUNK", CHUNK_TREE_OBJECTID},
    {"DEVICE", DEV_TREE_OBJECTID},
    {"DEV", DEV_TREE_OBJECTID},
    {"FS", FS_TREE_OBJECTID},
    {"CSUM", CSUM_TREE_OBJECTID},
    {"CHECKSUM", CSUM_TREE_OBJECTID},
    {"QUOTA", QUOTA_TREE_OBJECTID},
    {"UUID", UUID_TREE_OBJECTID},
    {"FREE_SPACE", FREE_SPACE_TREE_OBJECTID},
    {"TREE_LOG_FIXUP", TREE_LOG_FIXUP_OBJECTID},
    {"TREE_LOG", TREE_LOG_OBJECTID},
    {"TREE_RELOC", TREE_RELOC_OBJECTID},
    {"DATA_RELOC", DATA_RELOC_TREE_OBJECTID},
    {"BLOCK_GROUP_TREE", BLOCK_GROUP_TREE_OBJECTID},
};

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

// Returns the tree id of `arg` (0 when unrecognized) and in `rest` what
// follows the recognized name.
uint64_t parse_tree_id(std::string_view arg, std::string_view& rest) {
    const bool numeric =
        !arg.empty() && std::all_of(arg.begin(), arg.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) {
        uint64_t v = 0;
        for (char c : arg) {
            if (v > (~0ULL - uint64_t(c - '0')) / 10) return 0;  // out of range
            v = v * 10 + uint64_t(c - '0');
        }
        rest = {};
        return v;
    }
    std::string_view s = arg;
    if (starts_with_nocase(s, "BTRFS_")) s.remove_prefix(6);
    for (const auto& tn : kTreeNames) {
        if (!starts_with_nocase(s, tn.name)) continue;
        s.remove_prefix(tn.name.size());
        if (starts_with_nocase(s, "_TREE")) s.remove_prefix(5);
        if (starts_with_nocase(s, "_OBJECTID")) s.remove_prefix(9);
        rest = s;
        return tn.id;
    }
    return 0;
}

// Where the dump goes: text written by the traversal (text()) and tree
// blocks (block()), kept in that order. With worker threads, blocks are
// formatted in batches on the workers while the caller goes on reading, and
// each batch's text is written, in order, by whichever worker finishes the
// batch that is next; all Filesystem calls stay on the calling thread. Without
// workers, blocks are formatted straight into text().
class Sink {
public:
    Sink(std::FILE* file, unsigned workers) : file_(file), text_(workers ? nullptr : file) {
        max_in_flight_ = 2 * workers;
        for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
        if (workers) cur_ = new_batch();
    }
    ~Sink() {
        flush();
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        work_cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    Sink(const Sink&) = delete;
    Sink& operator=(const Sink&) = delete;

    // Text in order with the blocks.
    Out& text() { return text_; }

    void block(const PrintContext& ctx, const BlockRef& b) {
        if (threads_.empty()) {
            print_tree_block(text_, ctx, *b);
            return;
        }
        cur_->entries.push_back({text_.size(), ctx, b});
        cur_->block_bytes += b->size();
        if (cur_->block_bytes >= kBatchBlockBytes) submit();
    }

    // Everything given so far is written to the file and flushed (before a
    // diagnostic goes to stderr).
    void flush() {
        if (threads_.empty()) {
            text_.flush();
        } else {
            if (!cur_->entries.empty() || text_.size()) submit();
            std::unique_lock lk(m_);
            space_cv_.wait(lk, [&] { return order_.empty(); });
        }
        if (file_) std::fflush(file_);
    }

private:
    // Blocks per batch, in bytes: a batch's text is about 0.2 to 2 times
    // this, so a few batches in flight stay within a few MiB.
    static constexpr size_t kBatchBlockBytes = 256u << 10;

    struct Entry {
        size_t text_end;  // text_ bytes that come before the block
        PrintContext ctx;
        BlockRef block;
    };
    struct Batch {
        Out text{nullptr};  // the caller's text around the blocks
        std::vector<Entry> entries;
        size_t block_bytes = 0;
        Out result{nullptr};
        bool done = false;
    };

    std::unique_ptr<Batch> new_batch() {
        std::lock_guard lk(m_);
        if (free_.empty()) return std::make_unique<Batch>();
        auto b = std::move(free_.back());
        free_.pop_back();
        return b;
    }

    void submit() {
        cur_->text.swap_text(text_);
        text_.clear();
        Batch* b = cur_.release();
        {
            std::unique_lock lk(m_);
            space_cv_.wait(lk, [&] { return order_.size() < max_in_flight_; });
            order_.push_back(std::unique_ptr<Batch>(b));
            todo_.push_back(b);
        }
        work_cv_.notify_one();
        cur_ = new_batch();
    }

    static void format(Batch& b) {
        Out& r = b.result;
        const char* text = b.text.data();
        size_t at = 0;
        for (const Entry& e : b.entries) {
            r.append(text + at, e.text_end - at);
            at = e.text_end;
            print_tree_block(r, e.ctx, *e.block);
        }
        r.append(text + at, b.text.size() - at);
        b.entries.clear();
        b.block_bytes = 0;
        b.text.clear();
    }

    void work() {
        std::unique_lock lk(m_);
        for (;;) {
            work_cv_.wait(lk, [&] { return stop_ || !todo_.empty(); });
            if (todo_.empty()) return;
            Batch* b = todo_.front();
            todo_.pop_front();
            lk.unlock();
            format(*b);
            lk.lock();
            b->done = true;
            if (writing_) continue;  // the thread writing will take it
            // Write every finished batch that is next in order.
            writing_ = true;
            // A batch leaves order_ only once written, so flush() returns
            // after the text is out.
            while (!order_.empty() && order_.front()->done) {
                Batch* w = order_.front().get();  // stays put: only the writer pops
                lk.unlock();
                if (w->result.size()) std::fwrite(w->result.data(), 1, w->result.size(), file_);
                w->result.clear();
                w->done = false;
                lk.lock();
                free_.push_back(std::move(order_.front()));
                order_.pop_front();
                space_cv_.notify_all();
            }
            writing_ = false;
        }
    }

    std::FILE* file_;
    Out text_;
    size_t max_in_flight_ = 0;
    std::unique_ptr<Batch> cur_;  // being filled by the caller

    std::mutex m_;
    std::condition_variable work_cv_, space_cv_;
    std::deque<std::unique_ptr<Batch>> order_;  // submitted, not yet written
    std::deque<Batch*> todo_;                   // submitted, not yet taken by a worker
    std::vector<std::unique_ptr<Batch>> free_;
    bool writing_ = false, stop_ = false;
    std::vector<std::thread> threads_;
};

// Formatting threads: one per core (a few at most), none on one core.
// BTK_DUMP_THREADS=N overrides (0: no threads, everything on the reading
// thread).
unsigned dump_workers() {
    if (const char* e = std::getenv("BTK_DUMP_THREADS"); e && *e)
        return unsigned(std::min(8L, std::max(0L, std::strtol(e, nullptr, 10))));
    const unsigned n = std::thread::hardware_concurrency();
    return n <= 1 ? 0 : std::min(n, 4u);
}

// Tells the kernel which tree blocks will be read next (their first copy, as
// read_block reads it first), so that a dump from a cold page cache keeps many
// reads in flight instead of waiting for each block in turn (progs drops the
// image's page cache when it exits). Contiguous blocks go in one hint. The
// block addresses are mapped on the reading thread (the chunk map is all it
// reads of the Filesystem); the hints themselves, which allocate page cache
// and start the reads, are given on a thread of their own.
class Prefetcher {
public:
    // Without `threaded`, hints are given on the calling thread.
    Prefetcher(Filesystem& fs, bool threaded) : fs_(fs), nodesize_(fs.nodesize()) {
        if (threaded) thread_ = std::thread([this] { work(); });
    }
    ~Prefetcher() {
        if (!thread_.joinable()) return;
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    Prefetcher(const Prefetcher&) = delete;
    Prefetcher& operator=(const Prefetcher&) = delete;

    void add(uint64_t bytenr) {
        auto ranges = fs_.chunk_map().map(bytenr, nodesize_, 0);
        if (!ranges) return;
        for (const PhysicalRange& r : *ranges) {
            if (cur_.length && r.devid == devid_ && r.physical == cur_.offset + cur_.length &&
                cur_.length < kMaxHint) {
                cur_.length += r.length;
                continue;
            }
            end_range();
            const Device* d = fs_.device(r.devid);
            devid_ = r.devid;
            cur_ = {d ? d->fd() : -1, r.physical, r.length};
        }
    }
    // Gives the hints added so far.
    void flush() {
        end_range();
        if (pending_.empty()) return;
        if (!thread_.joinable()) {
            for (const Range& r : pending_) hint(r);
            pending_.clear();
            return;
        }
        {
            std::lock_guard lk(m_);
            if (queue_.size() < kMaxQueued) queue_.insert(queue_.end(), pending_.begin(), pending_.end());
        }
        pending_.clear();
        cv_.notify_one();
    }

private:
    static constexpr uint64_t kMaxHint = 8u << 20;
    static constexpr size_t kMaxQueued = 1u << 16;

    struct Range {
        int fd;
        uint64_t offset, length;
    };

    void end_range() {
        if (cur_.length && cur_.fd >= 0) pending_.push_back(cur_);
        cur_.length = 0;
    }
    static void hint(const Range& r) {
        ::posix_fadvise(r.fd, off_t(r.offset), off_t(r.length), POSIX_FADV_WILLNEED);
    }
    void work() {
        std::vector<Range> batch;
        std::unique_lock lk(m_);
        for (;;) {
            cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
            if (stop_) return;
            batch.swap(queue_);
            lk.unlock();
            for (const Range& r : batch) hint(r);
            batch.clear();
            lk.lock();
        }
    }

    Filesystem& fs_;
    uint32_t nodesize_;
    uint64_t devid_ = 0;
    Range cur_{-1, 0, 0};
    std::vector<Range> pending_;

    std::mutex m_;
    std::condition_variable cv_;
    std::vector<Range> queue_;
    bool stop_ = false;
    std::thread thread_;
};

class Dumper {
public:
    Dumper(Filesystem& fs, Sink& sink, std::FILE* err, const PrintContext& ctx, Traversal traversal,
           bool threaded)
        : fs_(fs), sink_(sink), out_(sink.text()), err_(err), ctx_(ctx),
          dfs_(traversal == Traversal::dfs), prefetch_(fs, threaded) {}

    bool json() const { return ctx_.format == PrintFormat::json; }

    template <typename... Args>
    void error(fmt::format_string<Args...> f, Args&&... args) {
        sink_.flush();
        fmt::print(err_, "ERROR: {}\n", fmt::format(f, std::forward<Args>(args)...));
    }
    template <typename... Args>
    void warning(fmt::format_string<Args...> f, Args&&... args) {
        sink_.flush();
        fmt::print(err_, "WARNING: {}\n", fmt::format(f, std::forward<Args>(args)...));
    }

    void text(std::string_view s) {
        if (!json()) out_.write(s);
    }

    Result<BlockRef> read(uint64_t bytenr) { return fs_.read_block(bytenr); }

    // btrfs_print_tree: the block, then (with follow) every block below it.
    void print_tree(const BlockRef& b, bool follow) {
        sink_.block(ctx_, b);
        if (b->is_leaf() || !follow) return;
        seen_.clear();
        seen_.insert(b->bytenr());
        if (dfs_)
            print_children_dfs(*b);
        else
            print_children_bfs(*b);
    }

    // -e: only the leaves below `b`, depth first, without header checksums.
    void print_leaves(const BlockRef& b, const PrintContext& plain) {
        if (b->is_leaf()) {
            sink_.block(plain, b);
            return;
        }
        hint_children(*b);
        for (uint32_t i = 0; i < b->nritems(); ++i) {
            auto next = read(b->blockptr(i));
            if (!next) {
                error("{}", next.error().message);
                continue;
            }
            const BlockRef& n = *next;
            if (n->level() != b->level() - 1) {
                warning("eb corrupted: item {} eb level {} next level {}, skipping the rest", i,
                        n->level(), b->level());
                return;
            }
            if (!seen_.insert(n->bytenr()).second) {
                warning("tree block {} is referenced twice, skipping it", n->bytenr());
                continue;
            }
            print_leaves(n, plain);
        }
    }

    std::unordered_set<uint64_t>& seen() { return seen_; }

private:
    struct Ptr {
        uint64_t bytenr;
        uint64_t parent;
        uint32_t slot;
    };

    // Blocks hinted ahead of the reads.
    static constexpr size_t kPrefetchBlocks = 512;

    void hint_children(const TreeBlock& node) {
        for (uint32_t i = 0; i < node.nritems(); ++i) prefetch_.add(node.blockptr(i));
        prefetch_.flush();
    }

    static void add_children(const TreeBlock& node, std::vector<Ptr>& to) {
        for (uint32_t i = 0; i < node.nritems(); ++i) to.push_back({node.blockptr(i), node.bytenr(), i});
    }

    // Level by level, each level left to right. Like progs, a block that
    // cannot be read or has the wrong level ends the whole traversal.
    void print_children_bfs(const TreeBlock& root) {
        std::vector<Ptr> level, next;
        add_children(root, level);
        int expect = root.level() - 1;
        while (!level.empty() && expect >= 0) {
            next.clear();
            size_t hinted = 0;
            for (size_t i = 0; i < level.size(); ++i) {
                const Ptr& p = level[i];
                if (i + kPrefetchBlocks / 2 >= hinted && hinted < level.size()) {
                    const size_t end = std::min(level.size(), i + kPrefetchBlocks);
                    for (size_t j = hinted; j < end; ++j) prefetch_.add(level[j].bytenr);
                    prefetch_.flush();
                    hinted = end;
                }
                auto r = read(p.bytenr);
                if (!r) {
                    error("{}", r.error().message);
                    return;
                }
                const BlockRef& b = *r;
                if (b->level() != expect) {
                    error("child eb corrupted: parent bytenr={} item={} parent level={} child bytenr={} "
                          "child level={}",
                          p.parent, p.slot, expect + 1, p.bytenr, b->level());
                    return;
                }
                if (!seen_.insert(p.bytenr).second) {
                    warning("tree block {} is referenced twice, skipping it", p.bytenr);
                    continue;
                }
                sink_.block(ctx_, b);
                if (!b->is_leaf()) add_children(*b, next);
            }
            level.swap(next);
            --expect;
        }
    }

    // Each child followed by its subtree; unreadable or misplaced children
    // are reported and skipped.
    void print_children_dfs(const TreeBlock& node) {
        hint_children(node);
        for (uint32_t i = 0; i < node.nritems(); ++i) {
            const uint64_t bytenr = node.blockptr(i);
            auto r = read(bytenr);
            if (!r) {
                error("{}", r.error().message);
                sink_.flush();
                fmt::print(err_, "failed to read {} in tree {}\n", bytenr, node.owner());
                continue;
            }
            const BlockRef& b = *r;
            if (b->level() != node.level() - 1) {
                warning("eb corrupted: parent bytenr {} slot {} level {} child bytenr {} level has {} "
                        "expect {}, skipping the slot",
                        node.bytenr(), i, node.level(), b->bytenr(), b->level(), node.level() - 1);
                continue;
            }
            if (!seen_.insert(bytenr).second) {
                warning("tree block {} is referenced twice, skipping it", bytenr);
                continue;
            }
            sink_.block(ctx_, b);
            if (!b->is_leaf()) print_children_dfs(*b);
        }
    }

    Filesystem& fs_;
    Sink& sink_;
    Out& out_;
    std::FILE* err_;
    const PrintContext& ctx_;
    bool dfs_;
    std::unordered_set<uint64_t> seen_;  // blocks printed in the current tree
    Prefetcher prefetch_;
};

void json_key(Out& out, const Key& k) {
    out.print("{{\"objectid\":{},\"type\":\"", k.objectid);
    print_key_type(out, k.objectid, k.type);
    out.print("\",\"type_id\":{},\"offset\":{}}}", k.type, k.offset);
}

std::string uuid_text(const uint8_t* u) {
    char buf[36];
    format_uuid(u, buf);
    return std::string(buf, 36);
}

int dump_blocks(Filesystem& fs, Dumper& d, const DumpTreeOptions& opts,
                const std::vector<uint64_t>& blocks) {
    int rc = 0;
    for (uint64_t bytenr : blocks) {
        if (bytenr % fs.sectorsize()) {
            d.error("tree block bytenr {} is not aligned to sectorsize {}", bytenr, fs.sectorsize());
            rc = 1;
            continue;
        }
        auto r = d.read(bytenr);
        if (!r) {
            d.error("{}", r.error().message);
            d.error("failed to read tree block {}", bytenr);
            rc = 1;
            continue;
        }
        d.print_tree(*r, opts.follow);
    }
    return rc;
}

// "root tree", "chunk tree", ... and the tree, printed in full.
void dump_named_tree(Out& out, Dumper& d, std::string_view name, const BlockRef& b) {
    if (d.json())
        out.print("{{\"tree\":{{\"name\":\"{}\"}}}}\n", name);
    else
        out.print("{} tree\n", name);
    d.print_tree(b, true);
}

}  // namespace

int dump_tree(const DumpTreeOptions& opts, std::FILE* out_file, std::FILE* err) {
    if (opts.devices.empty()) {
        fmt::print(err, "ERROR: no device or image given\n");
        return 1;
    }
    // -t: progs keeps the last one given.
    uint64_t tree_id = 0;
    for (const std::string& t : opts.trees) {
        std::string_view rest;
        tree_id = parse_tree_id(t, rest);
        if (!tree_id) {
            fmt::print(err, "ERROR: unrecognized tree id: {}\n", t);
            return 1;
        }
        if (!rest.empty()) {
            fmt::print(err, "ERROR: unexpected tree id suffix of '{}': {}\n", t, rest);
            return 1;
        }
    }
    std::vector<uint64_t> blocks;
    for (uint64_t b : opts.blocks) {
        if (std::find(blocks.begin(), blocks.end(), b) != blocks.end()) {
            fmt::print(err, "WARNING: tree block bytenr {} is duplicated\n", b);
            continue;
        }
        blocks.push_back(b);
    }
    std::sort(blocks.begin(), blocks.end());

    const bool extent_only = opts.extents, device_only = opts.device, uuid_only = opts.uuid;
    const bool roots_only = opts.roots || opts.backups, root_backups = opts.backups;

    // Like progs, use the primary superblock unless told otherwise, and check
    // every device's superblock before printing anything: progs scans the
    // devices before its banner and stops there when one is not btrfs.
    const int mirror = opts.super_mirror >= 0 ? opts.super_mirror : 0;
    for (const std::string& path : opts.devices) {
        auto dev = Device::open(path);
        auto sc = dev ? select_super(**dev, mirror) : Result<SuperCopy>(dev.error());
        if (!sc) {
            fmt::print(err, "ERROR: {}\n", sc.error().message);
            return 1;
        }
    }

    const unsigned workers = dump_workers();
    Sink sink(out_file, workers);
    Out& out = sink.text();
    const bool json = opts.format == OutputFormat::json;
    if (!json) out.write(kBanner);

    OpenOptions oo;
    oo.super_mirror = mirror;
    oo.tree_root = opts.tree_root;
    oo.tolerate_chunk_errors = true;
    oo.cache_bytes = 1ull << 20;  // each block is printed once; a small cache keeps memory warm
    auto opened = Filesystem::open(opts.devices, oo);
    if (!opened) {
        sink.flush();
        fmt::print(err, "ERROR: {}\nERROR: unable to open {}\n", opened.error().message, opts.devices[0]);
        return 1;
    }
    Filesystem& fs = **opened;
    for (const auto& w : fs.open_warnings()) {
        sink.flush();
        fmt::print(err, "WARNING: {}\n", w);
    }
    // Progs reports each device a chunk needs but that was not given, on
    // stdout, while it reads the chunks.
    if (!json) {
        std::vector<uint64_t> missing;
        for (const auto& [logical, c] : fs.chunk_map().chunks()) {
            for (const auto& s : c.stripes) {
                if (fs.device(s.devid) ||
                    std::find(missing.begin(), missing.end(), s.devid) != missing.end())
                    continue;
                missing.push_back(s.devid);
                out.print("warning, device {} is missing\n", s.devid);
            }
        }
    }

    PrintContext ctx = PrintContext::from_super(fs.super());
    ctx.hide_names = opts.hide_names;
    ctx.csum_headers = opts.csum_headers;
    ctx.csum_items = opts.csum_items;
    ctx.format = json ? PrintFormat::json : PrintFormat::text;
    Dumper d(fs, sink, err, ctx, opts.traversal, workers > 0);

    if (!blocks.empty()) return dump_blocks(fs, d, opts, blocks);

    const super_block& sb = fs.super();
    auto tree_root = d.read(fs.tree_root().bytenr);
    if (!tree_root) {
        d.error("{}", tree_root.error().message);
        d.error("unable to open {}", opts.devices[0]);
        return 1;
    }
    // Progs cannot open a filesystem whose device tree or FS tree root is
    // unreadable, and prints nothing more then.
    for (uint64_t id : {DEV_TREE_OBJECTID, FS_TREE_OBJECTID}) {
        auto ref = fs.find_root(id);
        auto blk = ref ? d.read(ref->bytenr) : Result<BlockRef>(ref.error());
        if (!blk) {
            d.error("{}", blk.error().message);
            d.error("unable to open {}", opts.devices[0]);
            return 1;
        }
    }
    BlockRef chunk_root;
    if (auto r = d.read(fs.chunk_root().bytenr))
        chunk_root = *r;
    else
        d.error("{}", r.error().message);
    BlockRef log_root;
    if (sb.log_root.get()) {
        if (auto r = d.read(sb.log_root))
            log_root = *r;
        else
            d.error("{}", r.error().message);
    }

    if (!(extent_only || uuid_only || tree_id)) {
        if (roots_only) {
            auto line = [&](std::string_view name, const BlockRef& b) {
                if (!b) return;
                if (json)
                    out.print("{{\"root\":{{\"name\":\"{}\",\"bytenr\":{},\"level\":{}}}}}\n", name,
                              b->bytenr(), b->level());
                else
                    out.print("{} tree: {} level {}\n", name, b->bytenr(), b->level());
            };
            line("root", *tree_root);
            line("chunk", chunk_root);
            line("log root", log_root);
        } else {
            dump_named_tree(out, d, "root", *tree_root);
            if (chunk_root) dump_named_tree(out, d, "chunk", chunk_root);
            if (log_root) dump_named_tree(out, d, "log root", log_root);
        }
    }

    // Trees that are not found through ROOT_ITEMs.
    if (tree_id == ROOT_TREE_OBJECTID) {
        dump_named_tree(out, d, "root", *tree_root);
        return 0;
    }
    if (tree_id == CHUNK_TREE_OBJECTID) {
        if (!chunk_root) {
            d.error("cannot print chunk tree, invalid pointer");
            return 1;
        }
        dump_named_tree(out, d, "chunk", chunk_root);
        return 0;
    }
    if (tree_id == TREE_LOG_OBJECTID) {
        if (!log_root) {
            d.error("cannot print log root tree, invalid pointer");
            return 1;
        }
        dump_named_tree(out, d, "log root", log_root);
        return 0;
    }
    if (tree_id == BLOCK_GROUP_TREE_OBJECTID) {
        BlockRef bg;
        if (fs.compat_ro() & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE) {
            if (auto r = d.read(fs.block_group_root().bytenr))
                bg = *r;
            else
                d.error("{}", r.error().message);
        }
        if (!bg) {
            d.error("cannot print block group tree, invalid pointer");
            return 1;
        }
        dump_named_tree(out, d, "block group", bg);
        return 0;
    }

    PrintContext plain = ctx;  // -e prints leaves without the checksum options
    plain.csum_headers = plain.csum_items = false;

    // Every ROOT_ITEM of the root tree, then of the log root tree.
    auto scan = [&](const RootRef& scan_root) {
        TreeCursor c(fs, scan_root);
        auto ok = c.seek(Key{0, ROOT_ITEM_KEY, 0});
        for (; ok && *ok; ok = c.next()) {
            const Key key = c.key();
            if (key.type != ROOT_ITEM_KEY) continue;
            const auto data = c.data();
            if (data.size() < kRootItemBytenrOffset + 8) {
                d.warning("root item ({} ROOT_ITEM {}) too small ({} bytes)", key.objectid, key.offset,
                          data.size());
                continue;
            }
            auto r = d.read(load_le64(data.data() + kRootItemBytenrOffset));
            if (!r) {
                d.error("{}", r.error().message);
                continue;
            }
            const BlockRef& b = *r;
            if (tree_id && key.objectid != tree_id) continue;

            bool skip = extent_only || device_only || uuid_only;
            switch (key.objectid) {
            case EXTENT_TREE_OBJECTID:
                if (!device_only && !uuid_only) skip = false;
                break;
            case DEV_TREE_OBJECTID:
                if (!uuid_only) skip = false;
                break;
            case ROOT_TREE_DIR_OBJECTID: skip = false; break;
            case UUID_TREE_OBJECTID:
                if (!extent_only && !device_only) skip = false;
                break;
            }
            if (skip) continue;
            const std::string_view label = tree_label(key.objectid);
            if (json) {
                out.print("{{\"{}\":{{\"name\":\"{}\",\"objectid\":{},\"key\":", roots_only ? "root" : "tree",
                          label, key.objectid);
                json_key(out, key);
                if (roots_only) out.print(",\"bytenr\":{},\"level\":{}", b->bytenr(), b->level());
                out.write("}}\n");
            } else {
                out.write(label);
                out.write(" tree ");
                print_key(out, key);
            }
            if (extent_only) {
                d.text("\n");
                d.seen().clear();
                d.print_leaves(b, plain);
            } else if (roots_only) {
                if (!json) out.print(" {} level {}\n", b->bytenr(), b->level());
            } else {
                d.text(" \n");
                d.print_tree(b, true);
            }
        }
        if (!ok) d.error("{}", ok.error().message);
    };
    scan(fs.tree_root());
    if (log_root) scan(RootRef{TREE_LOG_OBJECTID, log_root->bytenr(), log_root->level(), 0});

    if (extent_only || device_only || uuid_only) return 0;

    if (root_backups) {
        const bool v2 = sb.incompat_flags.get() & FEATURE_INCOMPAT_EXTENT_TREE_V2;
        for (int i = 0; i < NUM_BACKUP_ROOTS; ++i) {
            const root_backup& b = sb.super_roots[i];
            if (json) {
                out.print("{{\"backup_root\":{{\"slot\":{},\"tree_root\":{},\"tree_root_gen\":{},"
                          "\"{}\":{},\"{}_gen\":{},\"chunk_root\":{},\"chunk_root_gen\":{},"
                          "\"dev_root\":{},\"dev_root_gen\":{},\"csum_root\":{},\"csum_root_gen\":{},"
                          "\"fs_root\":{},\"fs_root_gen\":{},\"bytes_used\":{},\"total_bytes\":{},"
                          "\"num_devices\":{}}}}}\n",
                          i, b.tree_root.get(), b.tree_root_gen.get(),
                          v2 ? "block_group_root" : "extent_root", b.extent_root.get(),
                          v2 ? "block_group_root" : "extent_root", b.extent_root_gen.get(),
                          b.chunk_root.get(), b.chunk_root_gen.get(), b.dev_root.get(),
                          b.dev_root_gen.get(), b.csum_root.get(), b.csum_root_gen.get(),
                          b.fs_root.get(), b.fs_root_gen.get(), b.bytes_used.get(),
                          b.total_bytes.get(), b.num_devices.get());
                continue;
            }
            out.print("btrfs root backup slot {}\n\ttree root gen {} block {}\n", i,
                      b.tree_root_gen.get(), b.tree_root.get());
            out.print("\t\t{} gen {} block {}\n", v2 ? "block group root" : "extent root",
                      b.extent_root_gen.get(), b.extent_root.get());
            out.print("\t\tchunk root gen {} block {}\n\t\tdevice root gen {} block {}\n",
                      b.chunk_root_gen.get(), b.chunk_root.get(), b.dev_root_gen.get(), b.dev_root.get());
            out.print("\t\tcsum root gen {} block {}\n\t\tfs root gen {} block {}\n",
                      b.csum_root_gen.get(), b.csum_root.get(), b.fs_root_gen.get(), b.fs_root.get());
            out.print("\t\t{} used {} total {} devices\n", b.bytes_used.get(), b.total_bytes.get(),
                      b.num_devices.get());
        }
    }
    if (json)
        out.print("{{\"summary\":{{\"total_bytes\":{},\"bytes_used\":{},\"uuid\":\"{}\"}}}}\n",
                  sb.total_bytes.get(), sb.bytes_used.get(), uuid_text(sb.fsid));
    else
        out.print("total bytes {}\nbytes used {}\nuuid {}\n", sb.total_bytes.get(), sb.bytes_used.get(),
                  uuid_text(sb.fsid));
    return 0;
}

}  // namespace btk
