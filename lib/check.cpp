#include "check.h"
#include "check_prefetch.h"
#include "gallop.h"
#include "u64_map.h"
#include "check_space.h"

#include "check_fs.h"
#include "chunk.h"
#include "csum.h"
#include "device.h"
#include "fs.h"
#include "super.h"
#include "tree_block.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_set>

namespace btk {

using namespace format;
using K = FindingKind;

namespace {

std::string uuid_str(const uint8_t* u) {
    std::string s;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += fmt::format("{:02x}", u[i]);
    }
    return s;
}

std::string key_str(const Key& k) { return fmt::format("({} {} {})", k.objectid, k.type, k.offset); }

std::string tree_label(uint64_t id) { return tree_name_for_errors(id); }

bool is_fs_tree(uint64_t id) {
    return id == FS_TREE_OBJECTID || (id >= FIRST_FREE_OBJECTID && id <= LAST_FREE_OBJECTID) ||
           id == TREE_RELOC_OBJECTID || id == DATA_RELOC_TREE_OBJECTID;
}

struct DevInfo {
    uint64_t total_bytes = 0;
    uint64_t bytes_used = 0;
    uint64_t extents_sum = 0;
    uint64_t prev_end = 0;
};

struct StripeSlot {
    uint64_t logical;
    uint32_t stripe;
    uint64_t length;
    bool matched = false;
};

struct BgItem {
    uint64_t start, length, used, flags;
};

struct RootInfo {
    Key key;
    RootRef ref;
    std::optional<Key> drop_key;
};

struct Edge {
    uint64_t child, parent, ref_root;
};

struct BlockRec {
    uint64_t bytenr;
    uint64_t tree;
    uint8_t level;
    bool read_ok;
    bool tracked;
};

struct MetaItem {
    uint64_t bytenr, refs, flags;
    int level;  // -1 unknown
    Key key;
};

enum : uint8_t { REF_TREE = 0, REF_SHARED = 1 };
struct MetaRef {
    uint64_t bytenr;
    uint8_t type;
    uint64_t value;
    friend bool operator<(const MetaRef& a, const MetaRef& b) {
        return std::tie(a.bytenr, a.type, a.value) < std::tie(b.bytenr, b.type, b.value);
    }
    friend bool operator==(const MetaRef& a, const MetaRef& b) {
        return a.bytenr == b.bytenr && a.type == b.type && a.value == b.value;
    }
};

// A data backref, from the extent tree (count as stored) or implied by file
// extent items (count = number of items): REF_TREE (a=root, b=inode,
// c=file offset - extent offset) or REF_SHARED (a=parent leaf).
// 40 bytes: one per ref item of the extent tree (counts are 32 bits on disk;
// sums of duplicate items saturate).
struct DataRef {
    static constexpr uint32_t SEEN_MAX = (1u << 31) - 1;
    uint64_t bytenr;
    uint64_t a, b, c;
    uint32_t count;
    uint32_t seen : 31;  // the extent tree's refs: file extent items found that imply it (saturating)
    uint32_t type : 1;
    auto tie() const { return std::tuple<uint64_t, uint32_t, uint64_t, uint64_t, uint64_t>(bytenr, type, a, b, c); }
};
static_assert(sizeof(DataRef) == 40);

uint32_t sat32(uint64_t v) { return uint32_t(std::min<uint64_t>(v, UINT32_MAX)); }

DataRef data_ref(uint64_t bytenr, uint8_t type, uint64_t a, uint64_t b, uint64_t c, uint64_t count) {
    return {bytenr, a, b, c, sat32(count), 0, uint32_t(type & 1)};
}

// A file extent item seen before the extent tree was read; matched with
// its data ref once the leaf's extent flags are known.
struct DataUse {
    uint64_t bytenr, leaf, owner, ino, offset;
};

struct WalkCtx {
    uint64_t tree;
    bool track;                 // record backref expectations for the extent check
    bool handle_items;          // feed leaves to the item handlers
    std::optional<Key> drop_key;
};

class Checker {
public:
    Checker(const CheckOptions& o, const FindingSink& f, const StageSink& s)
        : opts_(o), sink_(f), stage_(s), extras_(o, [this](Finding x) { report(std::move(x)); }) {}
    Result<CheckSummary> run(const std::vector<std::string>& paths);

private:
    // damages: a block of f.tree is unusable (the checks that need the
    // whole tree skip it).
    void report(Finding f, bool damages = true) {
        if (f.severity() == Severity::error)
            ++sum_.errors;
        else
            ++sum_.warnings;
        if (fsc_ && damages) fsc_->block_problem(f);
        if (sink_) sink_(f);
    }
    static Finding mk(K k, uint64_t tree = 0, uint64_t bytenr = 0) {
        Finding f;
        f.kind = k;
        f.tree = tree;
        f.bytenr = bytenr;
        if (tree) f.str("tree", tree_label(tree));
        if (bytenr) f.num("bytenr", bytenr);
        return f;
    }
    void stage(int n, const char* what) {
        if (stage_) stage_(n, 4, what);
    }

    Result<int> check_supers(const std::vector<std::string>& paths);
    void walk_tree(const WalkCtx& ctx, const RootRef& root);
    void visit(const WalkCtx& ctx, uint64_t bytenr, uint64_t parent, uint64_t ref_root, int level,
               uint64_t gen, const std::optional<Key>& first_key);
    // The block, from its first copy that verifies; *rest_unread: the
    // other copies are still to be verified (by verify_rest() or the fs
    // tree worker).
    BlockRef read_verified(const WalkCtx& ctx, uint64_t bytenr, bool* rest_unread, bool* first_good);
    static Finding copy_finding(uint64_t tree, uint64_t bytenr, const CopyRead& c);
    void verify_rest(uint64_t tree, uint64_t bytenr, uint64_t seq);
    // Bad copies of blocks whose first copy is good, in walk order (who
    // verified them, the walk or the fs tree worker, depends on timing).
    void report_later_copies();
    void handle_leaf(const WalkCtx& ctx, const TreeBlock& leaf);
    void chunk_item(const TreeBlock& leaf, uint32_t slot);
    void dev_item(const TreeBlock& leaf, uint32_t slot);
    void dev_extent(const TreeBlock& leaf, uint32_t slot);
    void root_item(const WalkCtx& ctx, const TreeBlock& leaf, uint32_t slot);
    void extent_leaf_item(const TreeBlock& leaf, uint32_t slot);
    void bg_item(const TreeBlock& leaf, uint32_t slot, uint64_t tree);
    void finish_data_extent();
    // Sizes the per-block and per-reference tables from what the extent tree
    // listed (saves their regrowth copies; a hint only).
    void reserve_from_extent_tree();
    // The same for the extent tree's own tables, from the superblock.
    void reserve_for_extent_tree();
    // Sorts meta_ by bytenr (the extent tree lists it so already) and marks it.
    void sort_meta();
    void file_extents(const TreeBlock& leaf);
    void check_refs();  // check_extent_refs and check_data_refs
    // Sorts drefs_ by tie() and merges equal refs (again if it grew since).
    void sort_drefs();
    bool leaf_full_backref(uint64_t leaf) const;
    // A file extent item of `leaf`: the ref it implies is counted in drefs_
    // (or kept in unmatched_).
    void use_data(bool full_backref, uint64_t bytenr, uint64_t leaf, uint64_t owner, uint64_t ino, uint64_t offset);
    size_t find_dref(const DataRef& k);
    // Matches the file extent items seen before the extent tree was read.
    void seal_data_uses();
    void check_data_refs();
    void build_stripe_map();
    void check_chunks_devices();
    void check_extent_refs();
    const Chunk* chunk_at(uint64_t logical) const;
    void item_problem(uint64_t tree, const TreeBlock& leaf, uint32_t slot, std::string problem) {
        Finding f = mk(K::item_invalid, tree, leaf.bytenr());
        f.key = leaf.key(slot);
        f.num("slot", slot).str("key", key_str(leaf.key(slot))).str("problem", std::move(problem));
        report(std::move(f));
    }

    CheckOptions opts_;
    FindingSink sink_;
    StageSink stage_;
    CheckExtras extras_;  // free space, qgroups (check_space.h)
    CheckSummary sum_;
    std::unique_ptr<Filesystem> fs_;
    std::unique_ptr<FsChecker> fsc_;  // subvolume trees, csums, data (check_fs.cpp)
    std::unique_ptr<BlockPrefetcher> prefetch_;  // reads and verifies blocks ahead of the walk
    std::map<uint64_t, super_block> dev_supers_;  // devid -> the superblock copy in use
    uint64_t super_gen_ = 0;
    std::optional<uint64_t> backup_bytes_used_;  // with --backup: the backup root set's bytes_used
    uint32_t ns_ = 0, ss_ = 0;

    std::map<uint64_t, DevInfo> devs_;
    std::map<uint64_t, Chunk> chunks_;
    std::map<uint64_t, std::vector<uint8_t>> sys_raw_;  // raw chunk items of SYSTEM chunks in the tree
    std::multimap<std::pair<uint64_t, uint64_t>, StripeSlot> stripes_;  // (devid, physical), in chunk order
    bool stripes_built_ = false;
    std::map<uint64_t, BgItem> bgs_;
    std::map<uint64_t, uint64_t> chunk_used_;
    std::vector<RootInfo> roots_, log_roots_;
    bool bgt_root_seen_ = false;
    std::unordered_set<uint64_t> roots_read_;  // trees whose root block was read

    std::vector<Edge> edges_;
    std::vector<BlockRec> blocks_;
    uint64_t read_seq_ = 0;  // blocks read so far (walk order)
    std::vector<FsChecker::CopyResult> later_copies_;  // bad copies after a good first one
    struct Seen {
        uint64_t tree;   // the tree whose walk read it first if it handled items, else 0
        bool first_ok;   // its first copy verified (and its keys are in order)
    };
    U64Map<Seen> visited_;
    std::vector<MetaItem> meta_;
    std::vector<MetaRef> mrefs_;
    uint64_t extent_prev_end_ = 0;
    std::vector<DataRef> drefs_;      // sorted and merged once the extent tree was read
    size_t drefs_sorted_ = SIZE_MAX;  // drefs_.size() when last sorted
    size_t dref_hint_ = 0;            // where the last search in drefs_ ended
    std::vector<DataUse> duses_;      // file extent items waiting for the extent tree
    bool meta_sorted_ = false;        // meta_ is whole and sorted (after the extent tree)
    std::vector<DataRef> unmatched_;  // implied data refs the extent tree lacks
    std::vector<uint64_t> data_items_;
    struct {
        bool active = false;
        uint64_t bytenr = 0, refs = 0, counted = 0;
    } data_;
};

// ---------------------------------------------------------------------------
// superblocks

Result<int> Checker::check_supers(const std::vector<std::string>& paths) {
    int chosen = opts_.super_mirror;
    for (size_t di = 0; di < paths.size(); ++di) {
        BTK_ASSIGN(auto dev, Device::open(paths[di]));
        std::vector<SuperCopy> copies;
        for (int m = 0; m < SUPER_MIRROR_MAX; ++m) {
            BTK_ASSIGN(SuperCopy c, read_super_copy(*dev, m));
            copies.push_back(std::move(c));
        }
        int use = -1;
        if (di == 0 && chosen >= 0) {
            if (!copies[chosen].valid)
                return corruption("{}: superblock copy {}: {}", paths[di], chosen,
                                  copies[chosen].problem.empty() ? "absent" : copies[chosen].problem);
            use = chosen;
        } else if (copies[0].valid) {
            use = 0;
        } else {
            for (int m = 1; m < SUPER_MIRROR_MAX; ++m)
                if (copies[m].valid && (use < 0 || copies[m].sb.generation > copies[use].sb.generation)) use = m;
            if (use < 0) return corruption("{}: no valid btrfs superblock found (primary: {})", paths[di], copies[0].problem);
            report(mk(K::super_primary_bad)
                       .num("devid", copies[use].sb.dev_item.devid)
                       .str("problem", copies[0].problem)
                       .num("mirror", use));
        }
        if (di == 0) chosen = use;
        const super_block& ref = copies[use].sb;
        const uint64_t devid = ref.dev_item.devid;
        dev_supers_[devid] = ref;
        for (int m = 0; m < SUPER_MIRROR_MAX; ++m) {
            const SuperCopy& c = copies[m];
            if (m == use || !c.present) continue;
            if (m == 0 && !c.valid && !(di == 0 && opts_.super_mirror > 0)) continue;  // reported as super_primary_bad
            auto f = [&](K k) {
                Finding x = mk(k);
                x.bytenr = c.bytenr;
                x.num("devid", devid).num("mirror", m).num("offset", c.bytenr);
                return x;
            };
            if (!c.magic_ok) {
                report(f(K::super_copy_magic));
            } else if (!c.csum_ok && csum_type_known(c.sb.csum_type)) {
                report(f(K::super_copy_csum));
            } else if (c.sb.bytenr != c.bytenr) {
                report(f(K::super_copy_bytenr).num("found", c.sb.bytenr));
            } else if (!c.valid) {
                report(f(K::super_copy_invalid).str("problem", c.problem));
            } else if (std::memcmp(c.sb.fsid, ref.fsid, FSID_SIZE) != 0) {
                report(f(K::super_copy_fsid).str("found", uuid_str(c.sb.fsid)).str("expected", uuid_str(ref.fsid)));
            } else if (c.sb.generation < ref.generation) {
                report(f(K::super_copy_stale).num("found", c.sb.generation).num("expected", ref.generation));
            } else if (c.sb.generation > ref.generation) {
                report(f(K::super_copy_newer).num("found", c.sb.generation).num("expected", ref.generation));
            }
        }
    }
    return chosen;
}

// ---------------------------------------------------------------------------
// tree walk

const Chunk* Checker::chunk_at(uint64_t logical) const {
    auto it = chunks_.upper_bound(logical);
    if (it == chunks_.begin()) return nullptr;
    --it;
    if (logical - it->first >= it->second.length) return nullptr;
    return &it->second;
}

void Checker::walk_tree(const WalkCtx& ctx, const RootRef& root) {
    const uint64_t before = sum_.tree_blocks;
    const bool seen = visited_.contains(root.bytenr);
    if (fsc_) fsc_->begin_tree(ctx.tree, root);
    visit(ctx, root.bytenr, 0, ctx.tree, root.level, root.generation, std::nullopt);
    if (fsc_) fsc_->end_tree(ctx.tree);
    if (seen || sum_.tree_blocks > before) roots_read_.insert(ctx.tree);
}

Finding Checker::copy_finding(uint64_t tree, uint64_t bytenr, const CopyRead& c) {
    switch (c.kind) {
        case CopyRead::read_error:
            return mk(K::block_read_error, tree, bytenr).num("mirror", c.mirror).str("problem", c.error);
        case CopyRead::csum: return mk(K::block_csum, tree, bytenr).num("mirror", c.mirror);
        case CopyRead::bytenr: return mk(K::block_bytenr, tree, bytenr).num("mirror", c.mirror).num("found", c.found_bytenr);
        case CopyRead::fsid:
        case CopyRead::ok: break;
    }
    return mk(K::block_fsid, tree, bytenr).num("mirror", c.mirror);
}

BlockRef Checker::read_verified(const WalkCtx& ctx, uint64_t bytenr, bool* rest_unread, bool* first_good_out) {
    BlockRead r = prefetch_->get(bytenr);
    *rest_unread = r.rest_unread;
    const uint64_t seq = ++read_seq_;
    const bool first_good = !r.copies.empty() && r.copies[0].mirror == 0 && r.copies[0].kind == CopyRead::ok;
    *first_good_out = first_good;
    for (const CopyRead& c : r.copies) {
        if (c.kind == CopyRead::ok) continue;
        // A bad copy besides a good first one is reported after the walk,
        // in walk order. A bad copy damages the tree only when no copy is good.
        if (first_good)
            later_copies_.push_back({seq, ctx.tree, bytenr, c});
        else
            report(copy_finding(ctx.tree, bytenr, c), !r.good);
    }
    std::unique_ptr<uint8_t[]> good = std::move(r.good);
    if (!good) return nullptr;
    auto parsed = TreeBlock::parse(std::move(good), ns_);
    if (!parsed) {
        // Parse errors name the block already; the finding's text does too.
        std::string problem = parsed.error().message;
        const std::string prefix = fmt::format("tree block {}: ", bytenr);
        if (problem.starts_with(prefix)) problem.erase(0, prefix.size());
        report(mk(K::block_invalid, ctx.tree, bytenr).str("problem", std::move(problem)));
        return nullptr;
    }
    return std::move(parsed).value();
}

void Checker::verify_rest(uint64_t tree, uint64_t bytenr, uint64_t seq) {
    auto copies = verify_copies(*fs_, bytenr, 1, 1);
    for (CopyRead& c : copies.front())
        if (c.kind != CopyRead::ok) later_copies_.push_back({seq, tree, bytenr, std::move(c)});
}

void Checker::report_later_copies() {
    std::vector<FsChecker::CopyResult> all = fsc_ ? fsc_->stop_worker() : std::vector<FsChecker::CopyResult>{};
    all.insert(all.end(), std::make_move_iterator(later_copies_.begin()), std::make_move_iterator(later_copies_.end()));
    later_copies_.clear();
    std::sort(all.begin(), all.end(), [](const FsChecker::CopyResult& a, const FsChecker::CopyResult& b) {
        return std::tie(a.seq, a.copy.mirror) < std::tie(b.seq, b.copy.mirror);
    });
    for (const auto& x : all) report(copy_finding(x.tree, x.bytenr, x.copy), false);
}

void Checker::visit(const WalkCtx& ctx, uint64_t bytenr, uint64_t parent, uint64_t ref_root, int level,
                    uint64_t gen, const std::optional<Key>& first_key) {
    if (ctx.track) edges_.push_back({bytenr, parent, ref_root});
    if (ctx.track) extras_.edge(ctx.tree, bytenr, parent);
    if (auto [first, added] = visited_.insert(bytenr, {ctx.handle_items ? ctx.tree : 0, false}); !added) {
        if (fsc_ && ctx.handle_items) fsc_->shared_block(ctx.tree, bytenr, level, gen, first_key, first->tree);
        return;
    }
    BlockRec rec{bytenr, ctx.tree, uint8_t(level), false, ctx.track};
    if (bytenr == 0 || bytenr % ss_ != 0) {
        report(mk(K::block_unaligned, ctx.tree, bytenr).num("sectorsize", ss_));
        blocks_.push_back(rec);
        return;
    }
    const Chunk* c = fs_->chunk_map().find(bytenr);
    if (!c || bytenr + ns_ > c->logical + c->length) {
        report(mk(K::block_unmapped, ctx.tree, bytenr));
        blocks_.push_back(rec);
        return;
    }
    const uint64_t want_type = ctx.tree == CHUNK_TREE_OBJECTID ? BLOCK_GROUP_SYSTEM : BLOCK_GROUP_METADATA;
    if (!(c->type & want_type))
        report(mk(K::block_chunk_type, ctx.tree, bytenr).num("logical", c->logical).str("flags", fmt::format("{:#x}", c->type)));
    if (bytenr / STRIPE_LEN != (bytenr + ns_ - 1) / STRIPE_LEN)
        report(mk(K::block_crossing_stripe, ctx.tree, bytenr).num("end", bytenr + ns_));
    bool rest_unread = false, first_good = false;
    BlockRef b = read_verified(ctx, bytenr, &rest_unread, &first_good);
    if (!b) {
        blocks_.push_back(rec);
        return;
    }
    // The other copies, unless the fs tree worker takes them with the leaf.
    const uint64_t seq = read_seq_;
    struct Rest {
        Checker* c;
        uint64_t tree, bytenr, seq;
        bool pending;
        ~Rest() {
            if (pending) c->verify_rest(tree, bytenr, seq);
        }
    } rest{this, ctx.tree, bytenr, seq, rest_unread};
    ++sum_.tree_blocks;
    rec.read_ok = true;
    const header& h = b->header();
    bool descend = true;
    if (b->level() != level) {
        report(mk(K::block_level, ctx.tree, bytenr).num("found", b->level()).num("expected", level));
        descend = false;
    }
    rec.level = b->level();
    blocks_.push_back(rec);
    if (gen && b->generation() != gen)
        report(mk(K::block_generation, ctx.tree, bytenr).num("found", b->generation()).num("expected", gen));
    if (b->generation() > super_gen_)
        report(mk(K::block_generation_future, ctx.tree, bytenr).num("found", b->generation()).num("expected", super_gen_));
    const uint64_t owner = h.owner;
    if (ctx.tree != TREE_LOG_OBJECTID) {
        const bool owner_ok = is_fs_tree(ctx.tree) ? is_fs_tree(owner) : owner == ctx.tree;
        if (!owner_ok) report(mk(K::block_owner, ctx.tree, bytenr).num("found", owner));
    }
    if (b->nritems() == 0 && (!b->is_leaf() || parent != 0)) {
        report(mk(K::block_empty, ctx.tree, bytenr).num("level", b->level()));
        descend = false;
    }
    if (const uint32_t i = first_unordered_key(*b)) {
        report(mk(K::block_key_order, ctx.tree, bytenr).num("slot", i));
        descend = false;
    } else if (first_good) {
        visited_.find(bytenr)->first_ok = true;
    }
    if (first_key && b->nritems() > 0 && b->key(0) != *first_key)
        report(mk(K::block_first_key, ctx.tree, bytenr).str("found", key_str(b->key(0))).str("expected", key_str(*first_key)));
    if (!descend) return;
    if (ctx.track) extras_.block(ctx.tree, *b);
    if (b->is_leaf()) {
        if (ctx.handle_items) handle_leaf(ctx, *b);
        if (ctx.handle_items && fsc_ && fsc_->leaf(ctx.tree, b, rest.pending ? seq : 0)) rest.pending = false;
        if (rest.pending && fsc_) {
            fsc_->verify_later(ctx.tree, bytenr, seq);
            rest.pending = false;
        }
        return;
    }
    if (prefetch_) {
        std::vector<uint64_t> kids;
        kids.reserve(b->nritems());
        for (uint32_t i = 0; i < b->nritems(); ++i) {
            if (ctx.drop_key && i + 1 < b->nritems() && b->key(i + 1) <= *ctx.drop_key) continue;
            const uint64_t c = b->blockptr(i);
            if (c && c % ss_ == 0 && fs_->chunk_map().find(c) && !visited_.contains(c)) kids.push_back(c);
        }
        // Leaves: their other copies may go to the fs tree worker (with the
        // leaf when it streams the tree; BlockPrefetcher asks worker_has_room()).
        prefetch_->want(kids, fsc_ && b->level() == 1);
    }
    for (uint32_t i = 0; i < b->nritems(); ++i) {
        // A snapshot being deleted: subtrees left of drop_progress are gone.
        if (ctx.drop_key && i + 1 < b->nritems() && b->key(i + 1) <= *ctx.drop_key) continue;
        visit(ctx, b->blockptr(i), bytenr, owner, b->level() - 1, b->ptr_generation(i), b->key(i));
    }
}

// ---------------------------------------------------------------------------
// item handlers

void Checker::handle_leaf(const WalkCtx& ctx, const TreeBlock& leaf) {
    if (ctx.track && (is_fs_tree(ctx.tree) || ctx.tree == ROOT_TREE_OBJECTID)) file_extents(leaf);
    // Only these trees' items are checked here (subvolume trees' on the
    // fs tree worker).
    switch (ctx.tree) {
        case CHUNK_TREE_OBJECTID:
        case DEV_TREE_OBJECTID:
        case ROOT_TREE_OBJECTID:
        case TREE_LOG_OBJECTID:
        case EXTENT_TREE_OBJECTID:
        case BLOCK_GROUP_TREE_OBJECTID: break;
        default: return;
    }
    for (uint32_t s = 0; s < leaf.nritems(); ++s) {
        const Key k = leaf.key(s);
        switch (ctx.tree) {
            case CHUNK_TREE_OBJECTID:
                if (k.type == CHUNK_ITEM_KEY) chunk_item(leaf, s);
                else if (k.type == DEV_ITEM_KEY) dev_item(leaf, s);
                break;
            case DEV_TREE_OBJECTID:
                if (k.type == DEV_EXTENT_KEY) dev_extent(leaf, s);
                break;
            case ROOT_TREE_OBJECTID:
            case TREE_LOG_OBJECTID:
                if (k.type == ROOT_ITEM_KEY) root_item(ctx, leaf, s);
                break;
            case EXTENT_TREE_OBJECTID:
                extent_leaf_item(leaf, s);
                break;
            case BLOCK_GROUP_TREE_OBJECTID:
                if (k.type == BLOCK_GROUP_ITEM_KEY) bg_item(leaf, s, ctx.tree);
                break;
        }
    }
}

void Checker::chunk_item(const TreeBlock& leaf, uint32_t slot) {
    const Key k = leaf.key(slot);
    auto d = leaf.item_data(slot);
    auto ch = parse_chunk(k.offset, d);
    if (!ch) {
        Finding f = mk(K::chunk_invalid, CHUNK_TREE_OBJECTID, leaf.bytenr());
        f.key = k;
        // parse_chunk's messages start with "chunk LOGICAL: ", as the template does.
        std::string problem = ch.error().message;
        const std::string prefix = fmt::format("chunk {}: ", k.offset);
        if (problem.starts_with(prefix)) problem.erase(0, prefix.size());
        f.num("logical", k.offset).str("problem", std::move(problem));
        report(std::move(f));
        return;
    }
    if (ch->type & BLOCK_GROUP_SYSTEM)
        sys_raw_[k.offset].assign(d.begin(), d.begin() + chunk_item_size(ch->num_stripes));
    chunks_[k.offset] = std::move(ch).value();
}

void Checker::dev_item(const TreeBlock& leaf, uint32_t slot) {
    const auto* di = view_at<format::dev_item>(leaf.item_data(slot));
    if (!di) return item_problem(CHUNK_TREE_OBJECTID, leaf, slot, "dev item too small");
    DevInfo& d = devs_[leaf.key(slot).offset];
    d.total_bytes = di->total_bytes;
    d.bytes_used = di->bytes_used;
}

void Checker::build_stripe_map() {
    stripes_built_ = true;
    for (const auto& [logical, c] : chunks_) {
        const int ds = std::max(1, c.data_stripes());
        const uint64_t len = c.length / uint64_t(ds);
        for (uint32_t i = 0; i < c.stripes.size(); ++i)
            stripes_.insert({{c.stripes[i].devid, c.stripes[i].offset}, StripeSlot{logical, i, len}});
    }
}

void Checker::dev_extent(const TreeBlock& leaf, uint32_t slot) {
    if (!stripes_built_) build_stripe_map();
    const Key k = leaf.key(slot);
    const auto* de = view_at<format::dev_extent>(leaf.item_data(slot));
    if (!de) return item_problem(DEV_TREE_OBJECTID, leaf, slot, "dev extent too small");
    const uint64_t devid = k.objectid, phys = k.offset, len = de->length, coff = de->chunk_offset;
    auto loc = [&](K kind) {
        Finding f = mk(kind, DEV_TREE_OBJECTID, leaf.bytenr());
        f.key = k;
        f.num("devid", devid).num("physical", phys);
        return f;
    };
    if (devid == DEV_REPLACE_DEVID) return;  // a replace target's extents mirror the source's
    auto dit = devs_.find(devid);
    if (dit == devs_.end()) {
        report(loc(K::dev_extent_no_device));
    } else {
        DevInfo& d = dit->second;
        if (phys < d.prev_end)
            report(loc(K::dev_extent_overlap).num("length", len).num("prev_end", d.prev_end));
        if (phys + len < phys || phys + len > d.total_bytes)
            report(loc(K::dev_extent_beyond_device).num("length", len).num("total_bytes", d.total_bytes));
        d.prev_end = std::max(d.prev_end, phys + len);
        d.extents_sum += len;
    }
    // Two stripes may claim one place (damage): the dev extent belongs to
    // the one of its chunk, else to the first unmatched; the others are
    // reported as stripes without a dev extent.
    const auto [lo, hi] = stripes_.equal_range({devid, phys});
    if (lo == hi) {
        report(loc(K::dev_extent_orphan).num("length", len).num("chunk_offset", coff));
        return;
    }
    auto it = hi;
    for (auto j = lo; j != hi; ++j) {
        if (j->second.matched) continue;
        if (j->second.logical == coff) {
            it = j;
            break;
        }
        if (it == hi) it = j;
    }
    if (it == hi) it = lo;  // all matched already (a repeated dev extent key)
    it->second.matched = true;
    if (coff != it->second.logical || len != it->second.length)
        report(loc(K::dev_extent_mismatch)
                   .num("chunk_offset", coff)
                   .num("found", len)
                   .num("logical", it->second.logical)
                   .num("expected", it->second.length));
}

void Checker::root_item(const WalkCtx& ctx, const TreeBlock& leaf, uint32_t slot) {
    const Key k = leaf.key(slot);
    auto d = leaf.item_data(slot);
    auto bad = [&](std::string p) {
        Finding f = mk(K::root_item_invalid, ctx.tree, leaf.bytenr());
        f.key = k;
        f.str("key", key_str(k)).str("problem", std::move(p));
        report(std::move(f));
    };
    if (d.size() < ROOT_ITEM_V1_SIZE) return bad(fmt::format("item size {} too small", d.size()));
    format::root_item ri{};
    std::memcpy(&ri, d.data(), std::min(d.size(), sizeof(format::root_item)));
    if (ri.level >= MAX_LEVEL) return bad(fmt::format("level {} too high", ri.level));
    RootInfo r;
    r.key = k;
    r.ref = RootRef{k.objectid, ri.bytenr, ri.level, ri.generation};
    if (ri.drop_progress.objectid.get() != 0) r.drop_key = Key::from_disk(ri.drop_progress);
    if (ctx.tree == ROOT_TREE_OBJECTID) {
        if (k.objectid == BLOCK_GROUP_TREE_OBJECTID) bgt_root_seen_ = true;
        roots_.push_back(r);
    } else {
        log_roots_.push_back(r);
    }
}

void Checker::bg_item(const TreeBlock& leaf, uint32_t slot, uint64_t tree) {
    const Key k = leaf.key(slot);
    const auto* bi = view_at<block_group_item>(leaf.item_data(slot));
    if (!bi) return item_problem(tree, leaf, slot, "block group item too small");
    bgs_[k.objectid] = BgItem{k.objectid, k.offset, bi->used, bi->flags};
}

void Checker::reserve_for_extent_tree() {
    // Address space only: the pages are touched as the tables fill, but
    // they never grow by copying. The superblock's used bytes bound the
    // counts (any, on a damaged filesystem: the caps keep it sane).
    const uint64_t used = fs_->super().bytes_used;
    const size_t extents = size_t(std::min<uint64_t>(used / std::max<uint32_t>(ss_, 512), 1u << 22));
    const size_t blocks = size_t(std::min<uint64_t>(used / std::max<uint32_t>(ns_, 4096), 1u << 21));
    drefs_.reserve(extents);
    data_items_.reserve(extents);
    meta_.reserve(blocks);
    mrefs_.reserve(blocks + blocks / 4);
}

void Checker::sort_meta() {
    auto by_bytenr = [](const MetaItem& a, const MetaItem& b) { return a.bytenr < b.bytenr; };
    if (!std::is_sorted(meta_.begin(), meta_.end(), by_bytenr)) std::sort(meta_.begin(), meta_.end(), by_bytenr);
    meta_sorted_ = true;
}

void Checker::reserve_from_extent_tree() {
    const size_t blocks = meta_.size() + 64;
    visited_.reserve(visited_.size() + blocks);
    blocks_.reserve(blocks_.size() + blocks);
    edges_.reserve(edges_.size() + mrefs_.size() + 64);
}

void Checker::finish_data_extent() {
    if (!data_.active) return;
    data_.active = false;
    if (data_.counted != data_.refs) {
        Finding f = mk(K::extent_refs_count, EXTENT_TREE_OBJECTID, 0);
        f.bytenr = data_.bytenr;
        f.num("extent", data_.bytenr).num("found", data_.refs).num("expected", data_.counted);
        report(std::move(f));
    }
}

void Checker::extent_leaf_item(const TreeBlock& leaf, uint32_t slot) {
    const Key k = leaf.key(slot);
    auto d = leaf.item_data(slot);
    auto bad = [&](K kind, uint64_t extent) {
        Finding f = mk(kind, EXTENT_TREE_OBJECTID, 0);
        f.bytenr = extent;
        f.key = k;
        f.num("extent", extent).str("key", key_str(k));
        return f;
    };
    if (data_.active && k.objectid != data_.bytenr) finish_data_extent();
    switch (k.type) {
        case EXTENT_ITEM_KEY:
        case METADATA_ITEM_KEY: {
            const uint64_t bytenr = k.objectid;
            const auto* ei = view_at<extent_item>(d);
            if (!ei) {
                report(bad(K::extent_item_invalid, bytenr).str("problem", fmt::format("item size {} too small", d.size())));
                return;
            }
            const uint64_t flags = ei->flags, refs = ei->refs, gen = ei->generation;
            const bool is_meta = k.type == METADATA_ITEM_KEY;
            const bool tree = flags & EXTENT_FLAG_TREE_BLOCK;
            const uint64_t len = is_meta ? ns_ : k.offset;
            if (bool(flags & EXTENT_FLAG_DATA) == tree || (is_meta && !tree)) {
                report(bad(K::extent_flags, bytenr)
                           .str("found", fmt::format("{:#x}", flags))
                           .str("problem", is_meta && !tree ? "a metadata item without the TREE_BLOCK flag"
                                                            : "exactly one of DATA and TREE_BLOCK must be set"));
            }
            if (gen > super_gen_)
                report(bad(K::extent_generation_future, bytenr).num("found", gen).num("expected", super_gen_));
            if (len == 0 || bytenr < extent_prev_end_) {
                if (len != 0)
                    report(bad(K::extent_overlap, bytenr).num("length", len).num("prev_end", extent_prev_end_));
            }
            extent_prev_end_ = std::max(extent_prev_end_, bytenr + len);
            if (bytenr % ss_ || len % ss_)
                report(bad(K::extent_unaligned, bytenr).num("length", len).num("sectorsize", ss_));
            const Chunk* c = chunk_at(bytenr);
            if (!c || bytenr + len > c->logical + c->length || bytenr + len < bytenr) {
                report(bad(K::extent_outside_block_group, bytenr).num("length", len));
            } else {
                chunk_used_[c->logical] += len;
                const uint64_t want = tree ? (BLOCK_GROUP_METADATA | BLOCK_GROUP_SYSTEM) : BLOCK_GROUP_DATA;
                if (!(c->type & want))
                    report(bad(K::extent_chunk_type, bytenr)
                               .str("kind", tree ? "tree block" : "data")
                               .num("logical", c->logical)
                               .str("flags", fmt::format("{:#x}", c->type)));
            }
            sum_.bytes_used += len;
            size_t p = sizeof(extent_item);
            int level = is_meta ? int(k.offset) : -1;
            if (tree && !is_meta) {
                if (k.offset != ns_)
                    report(bad(K::extent_item_invalid, bytenr)
                               .str("problem", fmt::format("tree block extent of length {}, nodesize is {}", k.offset, ns_)));
                const auto* tbi = view_at<tree_block_info>(d, p);
                if (!tbi) {
                    report(bad(K::extent_item_invalid, bytenr).str("problem", "no room for tree_block_info"));
                    return;
                }
                level = tbi->level;
                p += sizeof(tree_block_info);
            }
            uint64_t counted = 0;
            const size_t first_ref = mrefs_.size();
            while (p < d.size()) {
                const uint8_t t = d[p];
                const auto* ir = view_at<extent_inline_ref>(d, p);
                size_t need = 0;
                switch (t) {
                    case TREE_BLOCK_REF_KEY:
                    case SHARED_BLOCK_REF_KEY:
                    case EXTENT_OWNER_REF_KEY: need = sizeof(extent_inline_ref); break;
                    case EXTENT_DATA_REF_KEY: need = 1 + sizeof(extent_data_ref); break;
                    case SHARED_DATA_REF_KEY: need = sizeof(extent_inline_ref) + sizeof(shared_data_ref); break;
                    default: break;
                }
                if (need == 0 || !ir || d.size() - p < need) {
                    report(bad(K::extent_item_invalid, bytenr)
                               .str("problem", need == 0 ? fmt::format("unknown inline ref type {} at offset {}", t, p)
                                                         : fmt::format("inline ref at offset {} overruns the item", p)));
                    break;
                }
                if (t == TREE_BLOCK_REF_KEY || t == SHARED_BLOCK_REF_KEY) {
                    if (!tree) {
                        report(bad(K::extent_item_invalid, bytenr).str("problem", "tree block ref in a data extent"));
                    } else {
                        mrefs_.push_back({bytenr, uint8_t(t == TREE_BLOCK_REF_KEY ? REF_TREE : REF_SHARED), ir->offset});
                    }
                    counted += 1;
                } else if (t == EXTENT_DATA_REF_KEY) {
                    const auto* dr = view_at<extent_data_ref>(d, p + 1);
                    counted += dr->count;
                    drefs_.push_back(data_ref(bytenr, REF_TREE, dr->root, dr->objectid, dr->offset, dr->count));
                } else if (t == SHARED_DATA_REF_KEY) {
                    const auto* sr = view_at<shared_data_ref>(d, p + sizeof(extent_inline_ref));
                    counted += sr->count;
                    drefs_.push_back(data_ref(bytenr, REF_SHARED, ir->offset, 0, 0, sr->count));
                }
                p += need;
            }
            (void)first_ref;
            if (tree) {
                meta_.push_back({bytenr, refs, flags, level, k});
                meta_sorted_ = false;
            } else {
                data_items_.push_back(bytenr);
                data_.active = true;
                data_.bytenr = bytenr;
                data_.refs = refs;
                data_.counted = counted;
            }
            break;
        }
        case TREE_BLOCK_REF_KEY:
        case SHARED_BLOCK_REF_KEY:
            if (meta_.empty() || meta_.back().bytenr != k.objectid) {
                report(bad(K::extent_backref_orphan, k.objectid));
                return;
            }
            mrefs_.push_back({k.objectid, uint8_t(k.type == TREE_BLOCK_REF_KEY ? REF_TREE : REF_SHARED), k.offset});
            break;
        case EXTENT_DATA_REF_KEY:
        case SHARED_DATA_REF_KEY: {
            uint64_t count = 0;
            DataRef r = data_ref(k.objectid, REF_SHARED, k.offset, 0, 0, 0);
            if (k.type == EXTENT_DATA_REF_KEY) {
                const auto* dr = view_at<extent_data_ref>(d);
                if (!dr) return item_problem(EXTENT_TREE_OBJECTID, leaf, slot, "extent data ref too small");
                count = dr->count;
                r = data_ref(k.objectid, REF_TREE, dr->root, dr->objectid, dr->offset, 0);
            } else {
                const auto* sr = view_at<shared_data_ref>(d);
                if (!sr) return item_problem(EXTENT_TREE_OBJECTID, leaf, slot, "shared data ref too small");
                count = sr->count;
            }
            if (!data_.active || data_.bytenr != k.objectid) {
                report(bad(K::extent_backref_orphan, k.objectid));
                return;
            }
            data_.counted += count;
            r.count = sat32(count);
            drefs_.push_back(r);
            break;
        }
        case BLOCK_GROUP_ITEM_KEY:
            if (!(fs_->compat_ro() & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE)) bg_item(leaf, slot, EXTENT_TREE_OBJECTID);
            break;
    }
}

// ---------------------------------------------------------------------------
// cross-checks after the walk

void Checker::check_chunks_devices() {
    const super_block& sb = fs_->super();
    // sys_chunk_array vs the chunk tree.
    std::map<uint64_t, std::vector<uint8_t>> array;
    {
        const uint32_t n = std::min<uint32_t>(sb.sys_chunk_array_size, SYSTEM_CHUNK_ARRAY_SIZE);
        std::span<const uint8_t> a(sb.sys_chunk_array, n);
        size_t p = 0;
        while (p < a.size()) {
            const auto* dk = view_at<disk_key>(a, p);
            const auto* ck = view_at<chunk>(a, p + sizeof(disk_key));
            if (!dk || !ck || dk->type != CHUNK_ITEM_KEY) {
                report(mk(K::sys_array_invalid)
                           .str("problem", dk && dk->type != CHUNK_ITEM_KEY
                                               ? fmt::format("entry at offset {} has key type {}, not CHUNK_ITEM", p, dk->type)
                                               : fmt::format("truncated entry at offset {}", p)));
                break;
            }
            const size_t sz = chunk_item_size(ck->num_stripes);
            if (ck->num_stripes == 0 || a.size() - p - sizeof(disk_key) < sz) {
                report(mk(K::sys_array_invalid).str("problem", fmt::format("chunk at offset {} overruns the array", p)));
                break;
            }
            auto raw = a.subspan(p + sizeof(disk_key), sz);
            array[dk->offset].assign(raw.begin(), raw.end());
            p += sizeof(disk_key) + sz;
        }
    }
    for (const auto& [logical, raw] : array) {
        auto it = sys_raw_.find(logical);
        if (it == sys_raw_.end()) {
            report(mk(K::sys_chunk_not_in_tree).num("logical", logical));
        } else if (it->second != raw) {
            report(mk(K::sys_chunk_differs).num("logical", logical));
        }
    }
    for (const auto& [logical, raw] : sys_raw_)
        if (!array.count(logical)) report(mk(K::sys_chunk_not_in_array).num("logical", logical));

    // Chunk stripes without a dev extent (unless the dev tree is unreadable:
    // its blocks' findings say why).
    if (!stripes_built_) build_stripe_map();
    const bool dev_tree = roots_read_.count(DEV_TREE_OBJECTID);
    for (const auto& [loc, s] : stripes_)
        if (!s.matched && dev_tree)
            report(mk(K::chunk_stripe_no_dev_extent)
                       .num("logical", s.logical)
                       .num("stripe", s.stripe)
                       .num("devid", loc.first)
                       .num("physical", loc.second));

    // Devices.
    uint64_t total = 0;
    for (const auto& [devid, d] : devs_) {
        total += d.total_bytes;
        if (d.total_bytes % ss_)
            report(mk(K::dev_total_bytes_unaligned).num("devid", devid).num("found", d.total_bytes).num("sectorsize", ss_));
        if (dev_tree && d.bytes_used != d.extents_sum)
            report(mk(K::dev_bytes_used).num("devid", devid).num("found", d.bytes_used).num("expected", d.extents_sum));
        Device* dev = fs_->device(devid);
        if (!dev) {
            report(mk(K::dev_missing).num("devid", devid));
            continue;
        }
        if (dev->size() < d.total_bytes)
            report(mk(K::dev_too_small).num("devid", devid).num("found", dev->size()).num("expected", d.total_bytes));
        auto sit = dev_supers_.find(devid);
        if (sit != dev_supers_.end()) {
            const format::dev_item& sdi = sit->second.dev_item;
            if (sdi.total_bytes != d.total_bytes)
                report(mk(K::super_dev_item).num("devid", devid).str("field", "total_bytes").num("found", sdi.total_bytes).num("expected", d.total_bytes));
            if (sdi.bytes_used != d.bytes_used)
                report(mk(K::super_dev_item).num("devid", devid).str("field", "bytes_used").num("found", sdi.bytes_used).num("expected", d.bytes_used));
        }
    }
    if (sb.num_devices != devs_.size())
        report(mk(K::super_num_devices).num("found", sb.num_devices).num("expected", devs_.size()));
    if (sb.total_bytes % ss_)
        report(mk(K::super_total_bytes_unaligned).num("found", sb.total_bytes).num("sectorsize", ss_));
    if (sb.total_bytes < total)
        report(mk(K::super_total_bytes_small).num("found", sb.total_bytes).num("expected", total));
    // Larger: the kernel mounts it (btrfs rescue fix-device-size repairs it);
    // btrfs check warns. (An unaligned value is an error already.)
    else if (sb.total_bytes > total && sb.total_bytes % ss_ == 0)
        report(mk(K::super_total_bytes_large).num("found", sb.total_bytes).num("expected", total));

    // Block groups vs chunks, and their used bytes.
    const bool bg_tree = roots_read_.count((fs_->compat_ro() & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE)
                                               ? BLOCK_GROUP_TREE_OBJECTID
                                               : EXTENT_TREE_OBJECTID);
    if (!bg_tree || !roots_read_.count(EXTENT_TREE_OBJECTID)) return;
    uint64_t bg_used_total = 0;
    for (const auto& [start, bg] : bgs_) {
        bg_used_total += bg.used;
        auto cit = chunks_.find(start);
        if (cit == chunks_.end()) {
            report(mk(K::block_group_orphan).num("logical", start).num("length", bg.length));
            continue;
        }
        const Chunk& c = cit->second;
        const uint64_t mask = BLOCK_GROUP_TYPE_MASK | BLOCK_GROUP_PROFILE_MASK;
        if (bg.length != c.length)
            report(mk(K::block_group_mismatch).num("logical", start).str("field", "length").num("found", bg.length).num("expected", c.length));
        if ((bg.flags & mask) != (c.type & mask))
            report(mk(K::block_group_mismatch)
                       .num("logical", start)
                       .str("field", "flags")
                       .str("found", fmt::format("{:#x}", bg.flags))
                       .str("expected", fmt::format("{:#x}", c.type)));
        auto uit = chunk_used_.find(start);
        const uint64_t used = uit == chunk_used_.end() ? 0 : uit->second;
        if (bg.used != used)
            report(mk(K::block_group_used).num("logical", start).num("found", bg.used).num("expected", used));
    }
    for (const auto& [logical, c] : chunks_)
        if (!bgs_.count(logical))
            report(mk(K::block_group_missing).num("logical", logical).num("length", c.length).str("flags", fmt::format("{:#x}", c.type)));
    const uint64_t sb_used = backup_bytes_used_ ? *backup_bytes_used_ : uint64_t(sb.bytes_used);
    if (sb_used != bg_used_total)
        report(mk(K::super_bytes_used).num("found", sb_used).num("expected", bg_used_total));
}

void Checker::check_extent_refs() {
    std::sort(edges_.begin(), edges_.end(), [](const Edge& a, const Edge& b) {
        return std::tie(a.child, a.parent, a.ref_root) < std::tie(b.child, b.parent, b.ref_root);
    });
    std::sort(blocks_.begin(), blocks_.end(), [](const BlockRec& a, const BlockRec& b) { return a.bytenr < b.bytenr; });
    std::sort(mrefs_.begin(), mrefs_.end());
    auto find_meta = [&](uint64_t bytenr) -> const MetaItem* {
        auto it = std::lower_bound(meta_.begin(), meta_.end(), bytenr,
                                   [](const MetaItem& m, uint64_t b) { return m.bytenr < b; });
        return it != meta_.end() && it->bytenr == bytenr ? &*it : nullptr;
    };
    auto ref_text = [](const MetaRef& r) {
        return std::make_pair(std::string(r.type == REF_TREE ? "root" : "parent"),
                              std::to_string(r.value));
    };
    size_t bi = 0, mi = 0, ei = 0, ri = 0;
    std::vector<MetaRef> expect, found;
    std::vector<MetaRef> alts;
    while (bi < blocks_.size() || mi < meta_.size()) {
        const uint64_t b = bi < blocks_.size() ? blocks_[bi].bytenr : ~0ULL;
        const uint64_t m = mi < meta_.size() ? meta_[mi].bytenr : ~0ULL;
        const uint64_t x = std::min(b, m);
        while (ei < edges_.size() && edges_[ei].child < x) ++ei;
        while (ri < mrefs_.size() && mrefs_[ri].bytenr < x) ++ri;
        if (b < m) {
            const BlockRec& r = blocks_[bi++];
            if (r.tracked && r.read_ok) {
                Finding f = mk(K::extent_missing, r.tree, 0);
                f.bytenr = x;
                f.num("extent", x).num("level", r.level);
                report(std::move(f));
            }
            continue;
        }
        const MetaItem& mt = meta_[mi++];
        found.clear();
        while (ri < mrefs_.size() && mrefs_[ri].bytenr == x) found.push_back(mrefs_[ri++]);
        auto extent_finding = [&](K k) {
            Finding f = mk(k, EXTENT_TREE_OBJECTID, 0);
            f.bytenr = x;
            f.key = mt.key;
            f.num("extent", x);
            return f;
        };
        if (mt.refs != found.size())
            report(extent_finding(K::extent_refs_count).num("found", mt.refs).num("expected", found.size()));
        if (b != m) {
            report(extent_finding(K::extent_orphan));
            continue;
        }
        const BlockRec& br = blocks_[bi++];
        if (!br.tracked) continue;
        if (br.read_ok && mt.level >= 0 && mt.level != br.level)
            report(extent_finding(K::extent_level).num("found", mt.level).num("expected", br.level));
        expect.clear();
        alts.clear();
        for (; ei < edges_.size() && edges_[ei].child == x; ++ei) {
            const Edge& e = edges_[ei];
            MetaRef pref{x, REF_TREE, e.ref_root}, alt{x, REF_SHARED, e.parent ? e.parent : x};
            if (e.parent) {
                const MetaItem* pm = find_meta(e.parent);
                if (pm && (pm->flags & BLOCK_FLAG_FULL_BACKREF)) std::swap(pref, alt);
                if (pm) alt = pref;  // the parent's flags decide: no alternative
            }
            expect.push_back(pref);
            alts.push_back(alt);
        }
        std::vector<bool> used(found.size(), false);
        auto take = [&](const MetaRef& r) {
            for (size_t i = 0; i < found.size(); ++i)
                if (!used[i] && found[i] == r) {
                    used[i] = true;
                    return true;
                }
            return false;
        };
        for (size_t i = 0; i < expect.size(); ++i) {
            bool dup = false;
            for (size_t j = 0; j < i; ++j)
                if (expect[j] == expect[i]) dup = true;
            if (dup) continue;
            if (take(expect[i]) || take(alts[i])) continue;
            auto [t, v] = ref_text(expect[i]);
            report(extent_finding(K::extent_ref_missing).str("ref_type", t).str("ref", v).num("ref_value", expect[i].value));
        }
        for (size_t i = 0; i < found.size(); ++i) {
            if (used[i]) continue;
            auto [t, v] = ref_text(found[i]);
            report(extent_finding(K::extent_ref_extra).str("ref_type", t).str("ref", v).num("ref_value", found[i].value));
        }
    }
    // Keyed backrefs whose extent item is a data extent were already checked;
    // tree refs are attached to the item before them while streaming.
}

void Checker::file_extents(const TreeBlock& leaf) {
    if (meta_sorted_ && drefs_.size() != drefs_sorted_) sort_drefs();
    const bool now = meta_sorted_;
    bool full = false, looked = false;
    for (uint32_t s = 0; s < leaf.nritems(); ++s) {
        const Key k = leaf.key(s);
        if (k.type != EXTENT_DATA_KEY) continue;
        auto d = leaf.item_data(s);
        if (d.size() < FILE_EXTENT_INLINE_DATA_START + 1) continue;  // fs tree checks report it
        const uint8_t type = d[offsetof(file_extent_item, type)];
        if (type == FILE_EXTENT_INLINE) continue;
        const auto* fe = view_at<file_extent_item>(d);
        if (!fe) continue;
        if (fe->disk_bytenr == 0) continue;  // a hole
        const uint64_t offset = k.offset - fe->offset.get();
        if (!now) {
            duses_.push_back({fe->disk_bytenr, leaf.bytenr(), leaf.owner(), k.objectid, offset});
            continue;
        }
        if (!looked) {
            full = leaf_full_backref(leaf.bytenr());
            looked = true;
        }
        use_data(full, fe->disk_bytenr, leaf.bytenr(), leaf.owner(), k.objectid, offset);
    }
}

namespace {

// Sorts v[from, to) by bytenr: (bytenr, index) pairs sorted, the records
// moved once (cheaper than sorting the records themselves).
void sort_by_bytenr(std::vector<DataRef>& v, size_t from, size_t to) {
    auto by_bytenr = [](const DataRef& x, const DataRef& y) { return x.bytenr < y.bytenr; };
    const auto first = v.begin() + ptrdiff_t(from), last = v.begin() + ptrdiff_t(to);
    if (std::is_sorted(first, last, by_bytenr)) return;
    std::vector<std::pair<uint64_t, size_t>> keys(to - from);
    for (size_t i = from; i < to; ++i) keys[i - from] = {v[i].bytenr, i};
    std::sort(keys.begin(), keys.end());
    std::vector<DataRef> sorted;
    sorted.reserve(to - from);
    for (const auto& k : keys) sorted.push_back(v[k.second]);
    std::copy(sorted.begin(), sorted.end(), first);
}

// v sorted by bytenr: orders the refs of each extent and merges equal ones.
void merge_equal_refs(std::vector<DataRef>& v) {
    for (size_t i = 0; i < v.size();) {
        size_t j = i + 1;
        while (j < v.size() && v[j].bytenr == v[i].bytenr) ++j;
        if (j - i > 1)
            std::sort(v.begin() + ptrdiff_t(i), v.begin() + ptrdiff_t(j),
                      [](const DataRef& x, const DataRef& y) { return x.tie() < y.tie(); });
        i = j;
    }
    size_t o = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        if (o > 0 && v[o - 1].tie() == v[i].tie()) {
            v[o - 1].count = sat32(uint64_t(v[o - 1].count) + v[i].count);
            v[o - 1].seen = uint32_t(std::min<uint64_t>(uint64_t(v[o - 1].seen) + v[i].seen, DataRef::SEEN_MAX));
        } else {
            v[o++] = v[i];
        }
    }
    v.resize(o);
}

}  // namespace

void Checker::sort_drefs() {
    if (drefs_.size() == drefs_sorted_) return;
    sort_by_bytenr(drefs_, 0, drefs_.size());
    merge_equal_refs(drefs_);
    drefs_sorted_ = drefs_.size();
    dref_hint_ = 0;
}

bool Checker::leaf_full_backref(uint64_t leaf) const {
    auto it = std::lower_bound(meta_.begin(), meta_.end(), leaf, [](const MetaItem& m, uint64_t b) { return m.bytenr < b; });
    return it != meta_.end() && it->bytenr == leaf && (it->flags & BLOCK_FLAG_FULL_BACKREF);
}

size_t Checker::find_dref(const DataRef& k) {
    // File extent items come mostly in the order of their extents: each
    // search starts where the last one ended.
    auto less = [](const DataRef& x, const DataRef& y) { return x.tie() < y.tie(); };
    dref_hint_ = gallop_lower_bound(drefs_.data(), drefs_.size(), k, dref_hint_, less);
    if (dref_hint_ == drefs_.size() || drefs_[dref_hint_].tie() != k.tie()) return SIZE_MAX;
    return dref_hint_;
}

void Checker::use_data(bool full_backref, uint64_t bytenr, uint64_t leaf, uint64_t owner, uint64_t ino, uint64_t offset) {
    const DataRef k = full_backref ? data_ref(bytenr, REF_SHARED, leaf, 0, 0, 1) : data_ref(bytenr, REF_TREE, owner, ino, offset, 1);
    const size_t i = find_dref(k);
    if (i == SIZE_MAX)
        unmatched_.push_back(k);
    else if (drefs_[i].seen != DataRef::SEEN_MAX)
        drefs_[i].seen = drefs_[i].seen + 1;
}

void Checker::seal_data_uses() {
    if (!meta_sorted_ || duses_.empty()) return;
    sort_drefs();
    // Uses come leaf by leaf: one lookup of the leaf's flags per leaf.
    uint64_t last_leaf = 0;
    bool full_backref = false, first = true;
    for (const DataUse& u : duses_) {
        if (first || u.leaf != last_leaf) {
            first = false;
            last_leaf = u.leaf;
            full_backref = leaf_full_backref(u.leaf);
        }
        use_data(full_backref, u.bytenr, u.leaf, u.owner, u.ino, u.offset);
    }
    duses_ = {};
}

void Checker::check_refs() {
    sort_meta();
    sort_drefs();
    seal_data_uses();
    sort_by_bytenr(unmatched_, 0, unmatched_.size());
    merge_equal_refs(unmatched_);
    check_extent_refs();
    std::sort(data_items_.begin(), data_items_.end());
    check_data_refs();
}

void Checker::check_data_refs() {
    auto ref_text = [](const DataRef& r) {
        return r.type == REF_TREE ? fmt::format("root {} inode {} offset {}", r.a, r.b, r.c)
                                  : fmt::format("parent {}", r.a);
    };
    auto finding = [&](K k, const DataRef& r) {
        Finding f = mk(k, EXTENT_TREE_OBJECTID, 0);
        f.bytenr = r.bytenr;
        f.num("extent", r.bytenr).str("ref", ref_text(r)).str("ref_type", r.type == REF_TREE ? "root" : "parent");
        if (r.type == REF_TREE)
            f.num("ref_root", r.a).num("ref_inode", r.b).num("ref_offset", r.c);
        else
            f.num("ref_parent", r.a);
        return f;
    };
    // The extent tree's refs (with the file extent items that matched them)
    // and the implied refs none matched, in one order (no two equal).
    const std::vector<DataRef>& want = unmatched_;
    size_t i = 0, j = 0;
    uint64_t last_missing = ~0ULL;
    while (i < want.size() || j < drefs_.size()) {
        if (j >= drefs_.size() || (i < want.size() && want[i].tie() < drefs_[j].tie())) {
            const DataRef& w = want[i++];
            if (!std::binary_search(data_items_.begin(), data_items_.end(), w.bytenr)) {
                if (w.bytenr != last_missing) report(finding(K::data_extent_missing, w));
                last_missing = w.bytenr;
            } else {
                report(finding(K::data_ref_missing, w).num("expected", w.count));
            }
            continue;
        }
        const DataRef& d = drefs_[j++];
        if (!d.seen)
            report(finding(K::data_ref_extra, d).num("found", d.count));
        else if (d.seen != d.count)
            report(finding(K::data_ref_count, d).num("found", d.count).num("expected", d.seen));
    }
}

Result<CheckSummary> Checker::run(const std::vector<std::string>& paths) {
    if (paths.empty()) return make_error(Errc::invalid_argument, "no device or image given");
    stage(1, "checking superblocks");
    BTK_ASSIGN(int mirror, check_supers(paths));
    OpenOptions oo;
    oo.super_mirror = mirror;
    oo.tree_root = opts_.tree_root;
    oo.cache_bytes = opts_.cache_bytes;
    oo.tolerate_chunk_errors = true;
    BTK_ASSIGN(fs_, Filesystem::open(paths, oo));
    if (opts_.backup_root && !opts_.tree_root) {
        // The newest backup whose root tree block reads and verifies.
        const super_block& sb = fs_->super();
        std::vector<int> order;
        for (int i = 0; i < NUM_BACKUP_ROOTS; ++i)
            if (sb.super_roots[i].tree_root != 0) order.push_back(i);
        if (order.empty()) return make_error(Errc::not_found, "the superblock has no backup roots");
        std::sort(order.begin(), order.end(), [&](int a, int b) {
            return sb.super_roots[a].tree_root_gen > sb.super_roots[b].tree_root_gen;
        });
        int best = -1;
        for (int i : order) {
            const root_backup& rb = sb.super_roots[i];
            if (fs_->read_block(rb.tree_root, BlockExpect{rb.tree_root_gen, rb.tree_root_level, std::nullopt,
                                                          ROOT_TREE_OBJECTID})) {
                best = i;
                break;
            }
        }
        if (best < 0) return make_error(Errc::corruption, "no backup root tree block is readable");
        oo.tree_root = sb.super_roots[best].tree_root;
        backup_bytes_used_ = sb.super_roots[best].bytes_used;
        BTK_ASSIGN(fs_, Filesystem::open(paths, oo));
    }
    const super_block& sb = fs_->super();
    if (fs_->has_incompat(FEATURE_INCOMPAT_EXTENT_TREE_V2))
        return make_error(Errc::unsupported, "extent tree v2 filesystems are not supported");
    super_gen_ = sb.generation;
    extras_.start(*fs_);
    prefetch_ = std::make_unique<BlockPrefetcher>(*fs_, opts_.threads >= 0 ? unsigned(opts_.threads) : default_readers());
    ns_ = fs_->nodesize();
    ss_ = fs_->sectorsize();
    sum_.fsid = uuid_str(sb.fsid);
    FsCheckConfig fcfg;
    fcfg.check_data_csum = opts_.check_data_csum;
    fcfg.reuse_shared = opts_.reuse_shared;
    fsc_ = std::make_unique<FsChecker>(*fs_, fcfg, [this](Finding f) { report(std::move(f)); });
    fsc_->set_first_copy_verified([this](uint64_t b) {
        const Seen* s = visited_.find(b);
        return s && s->first_ok;
    });
    switch (opts_.copy_verifier) {
        case CheckOptions::CopyVerifier::automatic:
            prefetch_->set_first_copy_gate([this] { return fsc_->worker_has_room(); });
            break;
        case CheckOptions::CopyVerifier::worker: prefetch_->set_first_copy_gate([] { return true; }); break;
        case CheckOptions::CopyVerifier::walk: break;
    }

    stage(2, "checking tree blocks");
    reserve_for_extent_tree();
    const bool overridden = opts_.tree_root.has_value() || oo.tree_root.has_value();
    walk_tree({CHUNK_TREE_OBJECTID, true, true, std::nullopt}, fs_->chunk_root());
    RootRef tr = fs_->tree_root();
    if (overridden) tr.generation = 0;
    walk_tree({ROOT_TREE_OBJECTID, true, true, std::nullopt}, tr);
    std::vector<RootInfo> roots = roots_;
    for (const RootInfo& r : roots) {
        if (r.ref.bytenr == 0) continue;
        walk_tree({r.key.objectid, true, true, r.drop_key}, r.ref);
        if (r.key.objectid == EXTENT_TREE_OBJECTID) {
            finish_data_extent();
            sort_meta();
            sort_drefs();
            reserve_from_extent_tree();
        }
        seal_data_uses();
    }
    if ((fs_->compat_ro() & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE) && !bgt_root_seen_ && sb.block_group_root != 0)
        walk_tree({BLOCK_GROUP_TREE_OBJECTID, true, true, std::nullopt}, fs_->block_group_root());
    if (sb.log_root != 0) {
        RootRef lr = fs_->log_root();
        walk_tree({TREE_LOG_OBJECTID, false, true, std::nullopt}, lr);
        std::vector<RootInfo> logs = log_roots_;
        for (const RootInfo& r : logs)
            if (r.ref.bytenr) walk_tree({TREE_LOG_OBJECTID, false, false, std::nullopt}, r.ref);
    }

    stage(3, "checking chunks, devices and block groups");
    check_chunks_devices();
    stage(4, "checking extent backrefs");
    if (roots_read_.count(EXTENT_TREE_OBJECTID)) {
        check_refs();
    }
    report_later_copies();
    fsc_->finish();
    sum_.data_bytes_verified = fsc_->data_bytes_verified();
    sum_.reused_inodes = fsc_->reused_inodes();
    sum_.logged_trees = fsc_->logged_trees();
    sum_.worker_copy_blocks = fsc_->worker_copy_blocks();
    extras_.finish(sum_);
    return sum_;
}

}  // namespace

Result<CheckSummary> check_filesystem(const std::vector<std::string>& paths, const CheckOptions& opts,
                                      const FindingSink& on_finding, const StageSink& on_stage) {
    Checker c(opts, on_finding, on_stage);
    return c.run(paths);
}

}  // namespace btk
