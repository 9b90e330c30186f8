// The item stream of one subvolume tree: inode items, names (inode refs and
// directory entries), file extents; name links matched at the end of the tree.
#include "check_fs_internal.h"

#include "csum.h"
#include "file.h"
#include "tree.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace btk::fsck {

using namespace format;
using K = FindingKind;

namespace {

constexpr uint64_t NO_INDEX = ~0ULL;

// Inode flags the kernel knows (the low 32 bits and the read-only high ones).
constexpr uint64_t KNOWN_INODE_FLAGS = 0xfffULL | INODE_ROOT_ITEM_INIT | INODE_RO_VERITY;

}  // namespace

Finding FsTreeStream::mk(K k, uint64_t ino) const {
    Finding f;
    f.kind = k;
    f.tree = info_.root;
    f.num("root", info_.root);
    if (ino) f.num("ino", ino);
    return f;
}

void FsTreeStream::add(Finding f, uint64_t excusable_ino, bool whole, uint64_t ino2, NameOf name) {
    pending_.push_back({excusable_ino, ino2, whole, name, std::move(f)});
}

void FsTreeStream::item_invalid(const TreeBlock& leaf, uint32_t slot, std::string problem) {
    add(item_invalid_finding(info_.root, leaf, slot, std::move(problem)));
}

void FsTreeStream::begin(const FsTreeInfo& info) {
    info_ = info;
    active_ = true;
    started_ = false;
    have_last_ = false;
    out_of_order_ = false;
    inode_cache_reported_ = false;
    root_dir_seen_ = false;
    cur_ = Inode{};
    waiting_.clear();
    late_entries_.clear();
    early_refs_.clear();
    orphans_.clear();
    unlinked_.clear();
    pending_.clear();
    cur_log_ = TreeLog{};
    logging_ = info.keep_log && log_bytes_ < LOG_BUDGET;
}

void FsTreeStream::drop_log() {
    logging_ = false;
    log_bytes_ -= cur_log_.size() * sizeof(LinkRec);
    cur_log_ = TreeLog{};
}

void FsTreeStream::log(const LinkRec& r) {
    if (!logging_) return;
    if (log_bytes_ + sizeof r > LOG_BUDGET) return drop_log();
    log_bytes_ += sizeof r;
    cur_log_.push_back(r);
}

void FsTreeStream::log(uint64_t child, uint64_t parent, uint64_t fp, uint64_t index, uint8_t type, LinkRec::Kind kind,
                       uint8_t flags) {
    if (!logging_) return;
    if ((index != NO_INDEX && index >= UINT32_MAX) || child > UINT32_MAX || parent > UINT32_MAX) return drop_log();
    log(LinkRec{uint32_t(child), uint32_t(parent), fp, index == NO_INDEX ? UINT32_MAX : uint32_t(index), type, kind,
                flags});
}

void FsTreeStream::leaf(const TreeBlock& leaf) { items(leaf, 0, leaf.nritems()); }

void FsTreeStream::items(const TreeBlock& leaf, uint32_t from, uint32_t to) {
    if (!active_) return;
    for (uint32_t s = from; s < to && s < leaf.nritems(); ++s) {
        const Key k = leaf.key(s);
        // The walk hands leaves over in key order; a block that breaks it was
        // reported by the walk, and its items would only confuse the stream.
        if (have_last_ && !(last_key_ < k)) {
            out_of_order_ = true;
            continue;
        }
        have_last_ = true;
        last_key_ = k;
        if (!started_ || k.objectid != cur_.ino) {
            finish_inode();
            start_inode(k.objectid);
        }
        item(leaf, s, k);
    }
}

void FsTreeStream::start_inode(uint64_t ino) {
    started_ = true;
    // Keep the capacity of the per-directory vectors.
    auto items = std::move(cur_.dir_items);
    auto index = std::move(cur_.dir_index);
    auto refs = std::move(cur_.refs);
    items.clear();
    index.clear();
    refs.clear();
    cur_ = Inode{};
    cur_.ino = ino;
    cur_.dir_items = std::move(items);
    cur_.dir_index = std::move(index);
    cur_.refs = std::move(refs);
    cur_.skip = ino < FIRST_FREE_OBJECTID || ino > LAST_FREE_OBJECTID;
}

void FsTreeStream::item(const TreeBlock& leaf, uint32_t slot, const Key& k) {
    if (k.objectid == ORPHAN_OBJECTID && k.type == ORPHAN_ITEM_KEY) {
        orphans_.push_back(k.offset);
        return;
    }
    if (k.objectid == FREE_INO_OBJECTID || k.objectid == FREE_SPACE_OBJECTID) {
        // The free inode number cache of kernels before 5.11: one report per
        // tree (it is a pair of items in every subvolume that had it).
        if (!inode_cache_reported_) {
            Finding f = mk(K::inode_cache_item);
            f.key = k;
            f.str("key", key_text(k));
            add(std::move(f));
        }
        inode_cache_reported_ = true;
        return;
    }
    auto unknown = [&] {
        Finding f = mk(K::fs_item_unknown);
        f.bytenr = leaf.bytenr();
        f.key = k;
        f.num("bytenr", leaf.bytenr()).num("slot", slot).str("key", key_text(k));
        add(std::move(f));
    };
    if (cur_.skip) return unknown();
    ++cur_.items;
    switch (k.type) {
        case INODE_ITEM_KEY: return inode_item(leaf, slot, k);
        case INODE_REF_KEY:
        case INODE_EXTREF_KEY: return inode_refs(leaf, slot, k);
        case XATTR_ITEM_KEY:
        case DIR_ITEM_KEY:
        case DIR_INDEX_KEY: return dir_item(leaf, slot, k);
        case EXTENT_DATA_KEY: return file_extent(leaf, slot, k);
        case VERITY_DESC_ITEM_KEY:
        case VERITY_MERKLE_ITEM_KEY: return;
        default: return unknown();
    }
}

void FsTreeStream::inode_item(const TreeBlock& leaf, uint32_t slot, const Key& k) {
    const auto* ii = view_at<format::inode_item>(leaf.item_data(slot));
    if (!ii || k.offset != 0) {
        return item_invalid(leaf, slot, ii ? "inode item with a non-zero key offset"
                                           : fmt::format("inode item of {} bytes", leaf.item_size(slot)));
    }
    cur_.has_item = true;
    cur_.mode = ii->mode;
    cur_.nlink = ii->nlink;
    cur_.size = ii->size;
    cur_.nbytes = ii->nbytes;
    cur_.flags = ii->flags;
    if (cur_.ino == info_.root_dirid) root_dir_seen_ = true;
    auto bad = [&](std::string p) { add(mk(K::inode_invalid, cur_.ino).str("problem", std::move(p))); };
    const uint8_t ft = mode_to_ft(cur_.mode);
    if (!ft) bad(fmt::format("invalid mode {:o}", uint32_t(cur_.mode)));
    if (cur_.flags & ~KNOWN_INODE_FLAGS)
        bad(fmt::format("flags {:#x} have unknown bits {:#x}", cur_.flags, cur_.flags & ~KNOWN_INODE_FLAGS));
    if (ft == FT_SYMLINK && (cur_.flags & (INODE_IMMUTABLE | INODE_APPEND)))
        bad(fmt::format("a symlink with the IMMUTABLE or APPEND flag (flags {:#x})", cur_.flags));
    if (ii->generation > info_.super_gen)
        bad(fmt::format("generation {} is above the super generation {}", ii->generation.get(), info_.super_gen));
    if (ii->transid > info_.super_gen)
        bad(fmt::format("transid {} is above the super generation {}", ii->transid.get(), info_.super_gen));
    if (cur_.ino == info_.root_dirid && ft && ft != FT_DIR)
        bad(fmt::format("the root directory is a {}", ftype_name(ft)));
}

void FsTreeStream::inode_refs(const TreeBlock& leaf, uint32_t slot, const Key& k) {
    const bool ext = k.type == INODE_EXTREF_KEY;
    auto& refs = scratch_refs_;
    const bool ok = ext ? parse_inode_extrefs(leaf.item_data(slot), refs)
                        : parse_inode_refs(leaf.item_data(slot), k.offset, refs);
    if (!ok) item_invalid(leaf, slot, fmt::format("{} entry overruns the item", ext ? "inode extref" : "inode ref"));
    const uint8_t ft = cur_.has_item ? mode_to_ft(cur_.mode) : 0;
    const char* what = ext ? "INODE_EXTREF" : "INODE_REF";
    for (const RefEntry& r : refs) {
        ++cur_.names;
        // The root directory's ".." names itself; it is no link.
        if (!ext && r.parent == cur_.ino && cur_.ino == info_.root_dirid && r.name == "..") continue;
        if (const char* p = name_problem(r.name))
            add(mk(K::dir_name_invalid, cur_.ino).str("item", what).str("name", name_text(r.name)).str("problem", p));
        if (ext && extref_hash(r.parent, r.name) != k.offset)
            add(mk(K::dir_name_hash, cur_.ino)
                    .str("item", what)
                    .num("found", k.offset)
                    .str("name", name_text(r.name))
                    .num("expected", extref_hash(r.parent, r.name)));
        const Link l{cur_.ino, r.parent, name_fp(r.name), r.index, ft};
        (r.parent < cur_.ino ? cur_.refs : early_refs_).push_back(l);
        log(l.child, l.parent, l.fp, l.index, l.type, LinkRec::REF);
    }
}

void FsTreeStream::dir_item(const TreeBlock& leaf, uint32_t slot, const Key& k) {
    const char* what = k.type == DIR_ITEM_KEY ? "DIR_ITEM" : k.type == DIR_INDEX_KEY ? "DIR_INDEX" : "XATTR_ITEM";
    const auto data = leaf.item_data(slot);
    // The item's problems come before its entries' (a first pass only
    // counts them).
    size_t n = 0;
    if (!for_each_dir_entry(data, [&](const DirEntry&) { ++n; }))
        item_invalid(leaf, slot, fmt::format("{} entry overruns the item", what));
    if (k.type == DIR_INDEX_KEY && n > 1) item_invalid(leaf, slot, fmt::format("a DIR_INDEX item holds {} entries", n));
    auto& out = k.type == DIR_ITEM_KEY ? cur_.dir_items : cur_.dir_index;
    (void)for_each_dir_entry(data, [&](const DirEntry& e) {
        auto named = [&](K kind) { return mk(kind, cur_.ino).str("item", what).str("name", name_text(e.name)); };
        const uint64_t fp = name_fp(e.name);
        if (k.type != DIR_INDEX_KEY && (fp >> 32) != k.offset)
            add(named(K::dir_name_hash).num("found", k.offset).num("expected", fp >> 32));
        if (k.type == XATTR_ITEM_KEY) {
            if (e.name.empty()) add(named(K::dir_name_invalid).str("problem", "the name is empty"));
            return;
        }
        cur_.dir_bytes += e.name.size();
        if (const char* p = name_problem(e.name)) add(named(K::dir_name_invalid).str("problem", p));
        const bool loc_ok = (e.location.type == INODE_ITEM_KEY && e.location.objectid >= FIRST_FREE_OBJECTID &&
                             e.location.objectid <= LAST_FREE_OBJECTID) ||
                            e.location.type == ROOT_ITEM_KEY;
        if (!loc_ok || e.type < FT_REG_FILE || e.type > FT_SYMLINK ||
            (e.location.type == ROOT_ITEM_KEY && e.type != FT_DIR)) {
            add(named(K::dir_name_invalid)
                    .str("problem", fmt::format("entry points to {} with type {}", key_text(e.location), e.type)));
            return;
        }
        out.push_back({fp, e.location.objectid, k.type == DIR_INDEX_KEY ? k.offset : NO_INDEX, e.type, e.location.type, 0});
    });
}

void FsTreeStream::file_extent(const TreeBlock& leaf, uint32_t slot, const Key& k) {
    FileExtentInfo fe;
    std::vector<std::string> problems;
    const bool usable = parse_file_extent(k.offset, leaf.item_data(slot), info_.sectorsize, fe, problems);
    for (auto& p : problems) add(mk(K::file_extent_invalid, cur_.ino).num("offset", k.offset).str("problem", p));
    if (!usable) return;
    const uint8_t ft = cur_.has_item ? mode_to_ft(cur_.mode) : 0;
    if (cur_.any_extent && k.offset < cur_.ext_end) {
        add(mk(K::file_extent_overlap, cur_.ino).num("offset", k.offset).num("prev_end", cur_.ext_end));
    } else if (!info_.no_holes && ft == FT_REG_FILE && k.offset > cur_.ext_end) {
        add(mk(K::file_extent_gap, cur_.ino).num("start", cur_.ext_end).num("end", k.offset), cur_.ino, false);
    }
    cur_.any_extent = true;
    cur_.ext_end = std::max(cur_.ext_end, fe.end);
    cur_.ext_bytes += fe.nbytes;
    if (fe.type == FILE_EXTENT_INLINE || fe.hole || !cur_.has_item) return;
    const bool nodatasum = cur_.flags & INODE_NODATASUM;
    if (fe.compression != COMPRESS_NONE && nodatasum)
        add(mk(K::file_extent_compressed_nodatasum, cur_.ino).num("offset", k.offset));
    // Compressed extents always carry checksums, whatever the inode says.
    if (fe.type == FILE_EXTENT_REG && info_.need_csums && (!nodatasum || fe.compression != COMPRESS_NONE) && csums_) {
        if (fe.compression != COMPRESS_NONE)
            csums_->need(fe.disk_bytenr, fe.disk_num_bytes, info_.root, cur_.ino, k.offset, info_.csums_ready);
        else
            csums_->need(fe.disk_bytenr + fe.offset, fe.num_bytes, info_.root, cur_.ino, k.offset, info_.csums_ready);
    }
}

void FsTreeStream::finish_inode() {
    if (!started_ || cur_.skip) return;
    const uint64_t ino = cur_.ino;
    if (!cur_.has_item) {
        if (ino == info_.root_dirid)
            add(mk(K::root_dir_missing, ino));
        else
            add(mk(K::inode_missing, ino).num("items", cur_.items));
    }
    // Entries for children before this inode never got their inode ref;
    // entries for this inode meet its refs.
    std::sort(cur_.refs.begin(), cur_.refs.end());
    match_refs(ino, cur_.refs);
    pair_dir_entries();
    if (!cur_.has_item) return;
    const uint8_t ft = mode_to_ft(cur_.mode);
    if (cur_.nlink != cur_.names)
        add(mk(K::inode_nlink, ino).num("found", cur_.nlink).num("expected", cur_.names), ino, true);
    if (ft == FT_DIR && cur_.size != cur_.dir_bytes)
        add(mk(K::dir_isize, ino).num("found", cur_.size).num("expected", cur_.dir_bytes), ino, true);
    if ((ft == FT_REG_FILE || ft == FT_SYMLINK) && cur_.nbytes != cur_.ext_bytes)
        add(mk(K::inode_nbytes, ino).num("found", cur_.nbytes).num("expected", cur_.ext_bytes), ino, true);
    if (ft == FT_REG_FILE && !info_.no_holes) {
        const uint64_t ss = info_.sectorsize;
        const uint64_t want = cur_.size > ~0ULL - ss ? cur_.size : (cur_.size + ss - 1) / ss * ss;
        if (cur_.ext_end < want)
            add(mk(K::file_extent_gap, ino).num("start", cur_.ext_end).num("end", want), ino, true);
    }
    if (cur_.nlink == 0) {
        unlinked_.push_back(ino);
        log(ino, 0, 0, 0, 0, LinkRec::UNLINKED);
    }
}

void FsTreeStream::match_refs(uint64_t ino, const std::vector<Link>& refs) {
    match_heap(ino);
    group_.clear();
    while (!waiting_.empty() && waiting_.top().child == ino) group_.push_back(waiting_.pop());
    for (size_t i = 0, j = 0; i < group_.size() || j < refs.size();) {
        const Link& x = i < group_.size() && (j >= refs.size() || !(refs[j] < group_[i])) ? group_[i] : refs[j];
        size_t i2 = i, j2 = j;
        while (i2 < group_.size() && group_[i2].parent == x.parent && group_[i2].fp == x.fp) ++i2;
        while (j2 < refs.size() && refs[j2].parent == x.parent && refs[j2].fp == x.fp) ++j2;
        match_group(group_.data() + i, i2 - i, refs.data() + j, j2 - j);
        i = i2;
        j = j2;
    }
}

void FsTreeStream::replay(const TreeLog& lg, uint64_t head, uint64_t tail, const Key& before_tail) {
    if (!active_) return;
    finish_inode();
    started_ = false;
    auto inner = [&](uint64_t ino) { return ino > head && ino < tail; };
    size_t it = lg.lower_bound(head + 1);
    const size_t hi = lg.lower_bound(tail, it);
    while (it != hi) {
        const uint64_t x = lg[it].owner();
        ++reused_;
        replay_refs_.clear();
        for (; it != hi && lg[it].owner() == x; ++it) {
            const LinkRec& r = lg[it];
            log(r);
            const Link l{r.child, r.parent, r.fp, r.index(), r.type};
            switch (r.kind) {
                case LinkRec::REF:
                    // Links between two inner inodes matched in the earlier tree.
                    if (inner(r.parent)) break;
                    (r.parent < x ? replay_refs_ : early_refs_).push_back(l);
                    break;
                case LinkRec::ENTRY:
                    if (!inner(r.child)) add_entry_link(l);
                    break;
                case LinkRec::SUBVOL:
                    if (subvol_links_)
                        subvol_links_->push_back({info_.root, r.parent, r.child, r.index(), r.fp, bool(r.flags & 1),
                                                  bool(r.flags & 2)});
                    break;
                case LinkRec::UNLINKED: unlinked_.push_back(x); break;
            }
        }
        std::sort(replay_refs_.begin(), replay_refs_.end());
        match_refs(x, replay_refs_);
    }
    if (inner(info_.root_dirid)) root_dir_seen_ = true;
    have_last_ = true;
    last_key_ = before_tail;
}

void FsTreeStream::add_entry_link(const Link& l) {
    if (l.child > l.parent) {
        waiting_.push(l);
    } else {
        late_entries_.push_back(l);
    }
}

void FsTreeStream::match_heap(uint64_t upto) {
    while (!waiting_.empty() && waiting_.top().child < upto) {
        const Link l = waiting_.pop();
        match_group(&l, 1, nullptr, 0);
    }
}

void FsTreeStream::match_group(const Link* e, size_t ne, const Link* r, size_t nr) {
    // e: dir entries of one (child, parent, name), r: inode refs of the same,
    // both in index order.
    const size_t both = std::min(ne, nr);
    for (size_t k = 0; k < both; ++k) {
        const Link& x = e[k];
        const NameOf name{1, x.parent, x.child, x.fp, x.index};
        auto f = [&] { return mk(K::dir_entry_mismatch).num("dir", x.parent).num("ino", x.child); };
        if (x.index != NO_INDEX && x.index != r[k].index)
            add(f().str("problem", fmt::format("DIR_INDEX {}, but the inode ref says index {}", x.index, r[k].index)),
                x.child, true, x.parent, name);
        if (r[k].type && x.type != r[k].type)
            add(f().str("problem", fmt::format("the entry says {}, the inode is a {}", ftype_name(x.type),
                                               ftype_name(r[k].type))),
                x.child, true, x.parent, name);
    }
    for (size_t k = both; k < ne; ++k) {
        const Link& x = e[k];
        add(mk(K::inode_ref_missing).num("dir", x.parent).num("ino", x.child).num("index", x.index == NO_INDEX ? 0 : x.index),
            x.child, true, x.parent, NameOf{1, x.parent, x.child, x.fp, x.index});
    }
    for (size_t k = both; k < nr; ++k) {
        const Link& x = r[k];
        const NameOf name{2, x.parent, x.child, x.fp, x.index};
        add(mk(K::dir_item_missing).num("dir", x.parent).num("ino", x.child).num("index", x.index), x.child, true,
            x.parent, name);
        add(mk(K::dir_index_missing).num("dir", x.parent).num("ino", x.child), x.child, true, x.parent, name);
    }
}

void FsTreeStream::pair_dir_entries() {
    auto& items = cur_.dir_items;
    auto& index = cur_.dir_index;
    if (items.empty() && index.empty()) return;
    const uint64_t dir = cur_.ino;
    // DIR_ITEM keys are name hashes: the items come sorted by the high half
    // of fp, and nearly always by all of it.
    auto by_fp = [](const Named& a, const Named& b) { return a.fp < b.fp; };
    if (!std::is_sorted(items.begin(), items.end(), by_fp)) std::sort(items.begin(), items.end(), by_fp);
    // The first item of each fp, by fp: an open-addressing table of item
    // positions (+1; 0 is empty), at most half full. (A binary search per
    // DIR_INDEX entry mispredicted a branch at every step.)
    const size_t cap = std::max<size_t>(16, std::bit_ceil(items.size() * 2));
    const size_t mask = cap - 1;
    fp_slots_.assign(cap, 0);
    const unsigned shift = 64 - unsigned(std::countr_zero(cap));
    auto home = [&](uint64_t fp) { return size_t((fp ^ (fp >> 29)) * 0x9e3779b97f4a7c15ULL >> shift); };
    for (size_t i = 0; i < items.size(); ++i) {
        if (i && items[i].fp == items[i - 1].fp) continue;
        size_t h = home(items[i].fp);
        while (fp_slots_[h]) h = (h + 1) & mask;
        fp_slots_[h] = uint32_t(i + 1);
    }
    auto find = [&](uint64_t fp) -> Named* {
        for (size_t h = home(fp);; h = (h + 1) & mask) {
            const uint32_t s = fp_slots_[h];
            if (!s) return nullptr;
            if (items[s - 1].fp == fp) return &items[s - 1];
        }
    };
    auto entry = [&](K kind, const Named& n) { return mk(kind).num("dir", dir).num("ino", n.child); };
    auto emit = [&](const Named& n, uint64_t idx, bool has_item, bool has_index) {
        if (n.loc_type == ROOT_ITEM_KEY) {
            if (subvol_links_) subvol_links_->push_back({info_.root, dir, n.child, idx, n.fp, has_item, has_index});
            log(n.child, dir, n.fp, idx, n.type, LinkRec::SUBVOL, uint8_t((has_item ? 1 : 0) | (has_index ? 2 : 0)));
        } else {
            add_entry_link({n.child, dir, n.fp, idx, n.type});
            log(n.child, dir, n.fp, idx, n.type, LinkRec::ENTRY);
        }
    };
    for (const Named& x : index) {
        Named* it = find(x.fp);
        const NameOf name{1, dir, x.child, x.fp, x.index};
        if (!it) {
            add(entry(K::dir_item_missing, x).num("index", x.index), dir, true, 0, name);
            emit(x, x.index, false, true);
            continue;
        }
        ++it->matches;
        if (x.child != it->child || x.loc_type != it->loc_type)
            add(entry(K::dir_entry_mismatch, x)
                    .str("problem", fmt::format("DIR_INDEX {} points to {}, DIR_ITEM to {}", x.index,
                                                key_text({x.child, x.loc_type, 0}), key_text({it->child, it->loc_type, 0}))),
                dir, true, 0, name);
        else if (x.type != it->type)
            add(entry(K::dir_entry_mismatch, x)
                    .str("problem", fmt::format("type {} in DIR_INDEX {}, {} in DIR_ITEM", x.type, x.index, it->type)),
                dir, true, 0, name);
        emit(x, x.index, true, true);
    }
    for (size_t i = 0; i < items.size();) {
        size_t j = i + 1;
        while (j < items.size() && items[j].fp == items[i].fp) ++j;
        const Named& x = items[i];
        const NameOf name{1, dir, x.child, x.fp, NO_INDEX};
        // The same name twice: two DIR_ITEM entries, or two DIR_INDEX entries
        // pairing with one DIR_ITEM.
        if (j - i > 1 || x.matches > 1)
            add(entry(K::dir_entry_duplicate, x).num("count", std::max<uint64_t>(j - i, x.matches)), dir, true, 0, name);
        if (x.matches == 0) {
            add(entry(K::dir_index_missing, x), dir, true, 0, name);
            emit(x, NO_INDEX, true, false);
        }
        i = j;
    }
}

std::string FsTreeStream::entry_name(const RootRef& root, uint64_t dir, uint64_t child, uint64_t fp, uint64_t index) {
    if (!fs_) return "?";
    std::string found = "?";
    const Key lo = index == NO_INDEX ? Key{dir, DIR_ITEM_KEY, fp >> 32} : Key{dir, DIR_INDEX_KEY, index};
    std::vector<DirEntry> es;
    (void)for_each_item(*fs_, root, lo, lo, [&](const Key&, std::span<const uint8_t> d) {
        parse_dir_entries(d, es);
        for (const DirEntry& e : es)
            if (e.location.objectid == child && name_fp(e.name) == fp) found = name_text(e.name);
        return false;
    });
    return found;
}

std::string FsTreeStream::ref_name(const RootRef& root, uint64_t child, uint64_t parent, uint64_t fp) {
    if (!fs_) return "?";
    std::string found = "?";
    std::vector<RefEntry> rs;
    auto scan = [&](const Key& lo, const Key& hi, bool ext) {
        (void)for_each_item(*fs_, root, lo, hi, [&](const Key&, std::span<const uint8_t> d) {
            ext ? parse_inode_extrefs(d, rs) : parse_inode_refs(d, parent, rs);
            for (const RefEntry& r : rs)
                if (r.parent == parent && name_fp(r.name) == fp) found = name_text(r.name);
            return found == "?";
        });
    };
    scan({child, INODE_REF_KEY, parent}, {child, INODE_REF_KEY, parent}, false);
    if (found == "?") scan({child, INODE_EXTREF_KEY, 0}, {child, INODE_EXTREF_KEY, ~0ULL}, true);
    return found;
}

void FsTreeStream::end(bool complete) {
    if (!active_) return;
    finish_inode();
    active_ = false;
    complete = complete && !out_of_order_;
    std::sort(orphans_.begin(), orphans_.end());
    auto orphan = [&](uint64_t ino) { return ino && std::binary_search(orphans_.begin(), orphans_.end(), ino); };
    if (complete) {
        match_heap(~0ULL);
        std::sort(late_entries_.begin(), late_entries_.end());
        std::sort(early_refs_.begin(), early_refs_.end());
        auto& e = late_entries_;
        auto& r = early_refs_;
        auto same = [](const Link& a, const Link& b) { return a.child == b.child && a.parent == b.parent && a.fp == b.fp; };
        for (size_t i = 0, j = 0; i < e.size() || j < r.size();) {
            const Link& x = i < e.size() && (j >= r.size() || !(r[j] < e[i])) ? e[i] : r[j];
            size_t i2 = i, j2 = j;
            while (i2 < e.size() && same(e[i2], x)) ++i2;
            while (j2 < r.size() && same(r[j2], x)) ++j2;
            match_group(e.data() + i, i2 - i, r.data() + j, j2 - j);
            i = i2;
            j = j2;
        }
        if (!root_dir_seen_ && info_.root_dirid) {
            // Its other items would have said so already.
            bool any = false;
            for (const Pending& p : pending_)
                if (p.f.kind == K::root_dir_missing) any = true;
            if (!any) add(mk(K::root_dir_missing, info_.root_dirid));
        }
        for (uint64_t ino : unlinked_)
            if (!orphan(ino)) add(mk(K::inode_no_orphan, ino));
    }
    // A later tree may take inodes from this tree's log only when this tree
    // was read whole and found nothing.
    if (logging_ && complete && pending_.empty()) {
        logs_[info_.root] = std::move(cur_log_);
        cur_log_ = TreeLog{};
        logging_ = false;
    } else {
        drop_log();
    }
    std::vector<Pending> keep;
    for (Pending& p : pending_) {
        if (p.whole && !complete) continue;
        // An orphan inode is being deleted: its names, size and extents are
        // whatever the deletion left so far.
        if (orphan(p.ino) || orphan(p.ino2)) continue;
        keep.push_back(std::move(p));
    }
    if (!keep.empty()) done_.emplace_back(info_.ref, std::move(keep));
    if (complete) complete_trees_.push_back(info_.root);
    pending_.clear();
    pending_.shrink_to_fit();
    waiting_.clear();
    late_entries_ = {};
    early_refs_ = {};
}

std::vector<uint64_t> FsTreeStream::logged_trees() const {
    std::vector<uint64_t> v;
    for (const auto& [tree, lg] : logs_) v.push_back(tree);
    std::sort(v.begin(), v.end());
    return v;
}

void FsTreeStream::flush() {
    for (auto& [root, list] : done_) {
        for (Pending& p : list) {
            if (p.name.kind == 1) p.f.str("name", entry_name(root, p.name.a, p.name.child, p.name.fp, p.name.index));
            if (p.name.kind == 2) p.f.str("name", ref_name(root, p.name.child, p.name.a, p.name.fp));
            report_(std::move(p.f));
        }
    }
    done_.clear();
}

}  // namespace btk::fsck
