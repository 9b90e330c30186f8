#include "txn.h"

#include "csum.h"
#include "super.h"
#include "write_block.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace btk {

using namespace format;

namespace {

// Feature bits this engine writes correctly.
constexpr uint64_t WRITABLE_INCOMPAT =
    FEATURE_INCOMPAT_MIXED_BACKREF | FEATURE_INCOMPAT_DEFAULT_SUBVOL | FEATURE_INCOMPAT_MIXED_GROUPS |
    FEATURE_INCOMPAT_COMPRESS_LZO | FEATURE_INCOMPAT_COMPRESS_ZSTD | FEATURE_INCOMPAT_BIG_METADATA |
    FEATURE_INCOMPAT_EXTENDED_IREF | FEATURE_INCOMPAT_SKINNY_METADATA | FEATURE_INCOMPAT_NO_HOLES |
    FEATURE_INCOMPAT_METADATA_UUID | FEATURE_INCOMPAT_RAID1C34;
constexpr uint64_t WRITABLE_COMPAT_RO = FEATURE_COMPAT_RO_FREE_SPACE_TREE |
                                        FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID |
                                        FEATURE_COMPAT_RO_BLOCK_GROUP_TREE;

// Trees whose blocks snapshots can share (reference-counted roots).
bool shareable_tree(uint64_t id) {
    return id == FS_TREE_OBJECTID || (id >= FIRST_FREE_OBJECTID && id <= LAST_FREE_OBJECTID) ||
           id == DATA_RELOC_TREE_OBJECTID;
}

}  // namespace

Transaction::Transaction(Filesystem& fs) : fs_(fs), refs_() {}

Transaction::~Transaction() {
    if (spill_fd_ >= 0) ::close(spill_fd_);
}

Result<std::unique_ptr<Transaction>> Transaction::begin(Filesystem& fs, const TxnOptions& opts) {
    const super_block& sb = fs.super();
    if (uint64_t bad = sb.incompat_flags & ~WRITABLE_INCOMPAT)
        return make_error(Errc::unsupported, "cannot write: incompat feature bits {:#x} are not supported for writing",
                          bad);
    if (uint64_t bad = sb.compat_ro_flags & ~WRITABLE_COMPAT_RO)
        return make_error(Errc::unsupported, "cannot write: compat_ro feature bits {:#x} are not supported for writing",
                          bad);
    if ((sb.compat_ro_flags & FEATURE_COMPAT_RO_FREE_SPACE_TREE) &&
        !(sb.compat_ro_flags & FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID))
        return make_error(Errc::unsupported, "cannot write: the free space tree is marked invalid");
    if (sb.flags & (SUPER_FLAG_SEEDING | SUPER_FLAG_METADUMP | SUPER_FLAG_METADUMP_V2 |
                    SUPER_FLAG_CHANGING_FSID | SUPER_FLAG_CHANGING_FSID_V2 | SUPER_FLAG_CHANGING_BG_TREE |
                    SUPER_FLAG_CHANGING_DATA_CSUM | SUPER_FLAG_CHANGING_META_CSUM))
        return make_error(Errc::unsupported, "cannot write: superblock flags {:#x} (seed, metadump or a conversion in progress)",
                          uint64_t(sb.flags));
    if (sb.log_root != 0 && !opts.zero_log)
        return make_error(Errc::unsupported,
                          "cannot write: the filesystem has a log tree (mount it once to replay it, or drop it with --zero-log)");
    for (const auto& [l, c] : fs.chunk_map().chunks())
        if (c.profile() & (BLOCK_GROUP_RAID5 | BLOCK_GROUP_RAID6))
            return make_error(Errc::unsupported, "cannot write: RAID5/6 block groups are not supported for writing");
    if (!csum_type_known(sb.csum_type))
        return make_error(Errc::unsupported, "cannot write: unknown checksum type {}", uint16_t(sb.csum_type));

    std::unique_ptr<Transaction> t(new Transaction(fs));
    t->opts_ = opts;
    t->sb_ = sb;
    t->gen_ = uint64_t(sb.generation) + 1;
    t->ns_ = sb.nodesize;
    t->ss_ = sb.sectorsize;
    if (opts.zero_log) {
        t->sb_.log_root = 0;
        t->sb_.log_root_level = 0;
    }
    t->space_ = std::make_unique<SpaceManager>(*t);
    BTK_TRY(t->space_->load());
    return t;
}

Result<RootRef> Transaction::root_of(uint64_t tree) {
    BTK_ASSIGN(TreeRoot * r, tree_root(tree));
    return RootRef{tree, r->bytenr, r->level, 0};
}

Result<bool> Transaction::has_tree(uint64_t tree) {
    auto r = tree_root(tree);
    if (r) return true;
    if (r.error().code == Errc::not_found) return false;
    return std::move(r).error();
}

Result<Transaction::TreeRoot*> Transaction::tree_root(uint64_t tree) {
    if (auto it = roots_.find(tree); it != roots_.end()) return &it->second;
    TreeRoot r;
    if (tree == ROOT_TREE_OBJECTID) {
        r.bytenr = sb_.root;
        r.level = sb_.root_level;
    } else if (tree == CHUNK_TREE_OBJECTID) {
        r.bytenr = sb_.chunk_root;
        r.level = sb_.chunk_root_level;
    } else if (tree == BLOCK_GROUP_TREE_OBJECTID && sb_.block_group_root != 0) {
        r.bytenr = sb_.block_group_root;
        r.level = sb_.block_group_root_level;
    } else {
        // The newest ROOT_ITEM of this tree in the root tree.
        BTK_ASSIGN(std::optional<Key> k, last_key_le(ROOT_TREE_OBJECTID, Key{tree, ROOT_ITEM_KEY, ~0ULL}));
        if (!k || k->objectid != tree || k->type != ROOT_ITEM_KEY)
            return make_error(Errc::not_found, "tree {} has no root item", tree);
        BTK_ASSIGN(auto data, lookup(ROOT_TREE_OBJECTID, *k));
        if (!data || data->size() < offsetof(root_item, generation_v2))
            return corruption("root item of tree {} is too small", tree);
        const auto* ri = reinterpret_cast<const root_item*>(data->data());
        if (ri->refs == 0)
            return make_error(Errc::unsupported, "tree {} is being deleted (root refs 0)", tree);
        if (data->size() >= offsetof(root_item, drop_progress) + sizeof(disk_key) &&
            Key::from_disk(ri->drop_progress) != Key{})
            return make_error(Errc::unsupported, "tree {} is partly dropped", tree);
        r.bytenr = ri->bytenr;
        r.level = ri->level;
        r.item_key = *k;
        r.last_snapshot = ri->last_snapshot;
    }
    if (r.level >= MAX_LEVEL) return corruption("tree {} root level {} is too high", tree, r.level);
    return &roots_.emplace(tree, r).first->second;
}

Result<EditBlock*> Transaction::alloc_block(uint64_t tree, uint8_t level, const Key&) {
    const uint64_t type = tree == CHUNK_TREE_OBJECTID ? BLOCK_GROUP_SYSTEM : BLOCK_GROUP_METADATA;
    BTK_ASSIGN(uint64_t bytenr, space_->alloc(type, ns_));
    auto blk = std::make_unique<EditBlock>(std::vector<uint8_t>(ns_, 0));
    header& h = blk->hdr();
    h.bytenr = bytenr;
    h.generation = gen_;
    h.owner = tree;
    h.level = level;
    h.nritems = 0;
    h.flags = MIXED_BACKREF_REV << BACKREF_REV_SHIFT;
    std::memcpy(h.fsid, fs_.metadata_fsid(), FSID_SIZE);
    EditBlock* p = blk.get();
    dirty_[bytenr] = std::move(blk);
    refs_.add_new(bytenr, ns_, false, level, RefId::tree(tree));
    if (auto r = roots_.find(tree); r != roots_.end()) r->second.bytes_delta += ns_;
    ++stats_.allocated_blocks;
    return p;
}

Status Transaction::free_block(uint64_t tree, uint64_t bytenr, uint8_t level, uint64_t, bool) {
    refs_.add(bytenr, ns_, false, level, RefId::tree(tree), -1);
    dirty_.erase(bytenr);
    if (auto r = roots_.find(tree); r != roots_.end()) r->second.bytes_delta -= ns_;
    ++stats_.freed_blocks;
    return {};
}

Status Transaction::change_child_refs(const uint8_t* raw, uint64_t tree, bool full_backref, int delta) {
    // `raw` is a block whose layout was checked (a parsed TreeBlock or an
    // EditBlock after check_layout).
    const auto* h = reinterpret_cast<const header*>(raw);
    EditBlock view(std::vector<uint8_t>(raw, raw + ns_));
    const uint64_t self = h->bytenr;
    const uint32_t n = view.nritems();
    if (view.level() > 0) {
        for (uint32_t i = 0; i < n; ++i) {
            const RefId ref = full_backref ? RefId::shared_tree(self) : RefId::tree(tree);
            refs_.add(view.blockptr(i), ns_, false, uint8_t(view.level() - 1), ref, delta);
        }
        return {};
    }
    for (uint32_t i = 0; i < n; ++i) {
        const Key k = view.key(i);
        if (k.type != EXTENT_DATA_KEY) continue;
        auto d = view.item_data(i);
        const auto* fe = view_at<file_extent_item>(d);
        if (d.size() < FILE_EXTENT_INLINE_DATA_START) continue;
        if (d[offsetof(file_extent_item, type)] == FILE_EXTENT_INLINE) continue;
        if (!fe) return corruption("tree {} leaf {} slot {}: file extent item too small", tree, self, i);
        const uint64_t disk = fe->disk_bytenr;
        if (disk == 0) continue;
        const RefId ref = full_backref ? RefId::shared_data(self)
                                       : RefId::data(tree, k.objectid, k.offset - uint64_t(fe->offset));
        refs_.add(disk, fe->disk_num_bytes, true, 0, ref, delta);
    }
    return {};
}

Status Transaction::update_ref_for_cow(uint64_t tree, const TreeRoot& root, const uint8_t* old_raw,
                                       EditBlock& cow, bool* old_full_backref) {
    const auto* oh = reinterpret_cast<const header*>(old_raw);
    const uint64_t old = oh->bytenr;
    const uint64_t owner = oh->owner;
    *old_full_backref = false;
    const bool may_share = shareable_tree(tree) && old != root.bytenr &&
                           (uint64_t(oh->generation) <= root.last_snapshot || (oh->flags & HEADER_FLAG_RELOC));
    uint64_t refs = 1, flags = 0;
    if (may_share) {
        // References as they will be after the queued changes.
        const bool skinny = sb_.incompat_flags & FEATURE_INCOMPAT_SKINNY_METADATA;
        std::optional<std::vector<uint8_t>> item;
        if (skinny) {
            BTK_ASSIGN(item, lookup(EXTENT_TREE_OBJECTID, Key{old, METADATA_ITEM_KEY, oh->level}));
        }
        if (!item) {
            BTK_ASSIGN(item, lookup(EXTENT_TREE_OBJECTID, Key{old, EXTENT_ITEM_KEY, ns_}));
        }
        if (!item || item->size() < sizeof(extent_item))
            return corruption("tree {}: no extent item for shared block {}", tree, old);
        const auto* ei = reinterpret_cast<const extent_item*>(item->data());
        int64_t r = int64_t(uint64_t(ei->refs));
        flags = ei->flags;
        if (const RefHead* h = refs_.find(old)) {
            r += h->total();
            flags |= h->add_flags;
        }
        if (r <= 0) return corruption("tree {}: shared block {} has no references left", tree, old);
        refs = uint64_t(r);
    } else if (owner != tree && ((uint64_t(oh->flags) >> BACKREF_REV_SHIFT) >= MIXED_BACKREF_REV)) {
        flags = BLOCK_FLAG_FULL_BACKREF;
    }
    if (refs > 1) {
        if (owner == tree && !(flags & BLOCK_FLAG_FULL_BACKREF)) {
            // We own it and others share it: its children get shared refs
            // from the old copy, which becomes a full-backref block.
            BTK_TRY(change_child_refs(old_raw, tree, true, +1));
            refs_.set_flags(old, ns_, false, oh->level, BLOCK_FLAG_FULL_BACKREF);
        } else {
            // Someone else's block: our copy needs its own references.
            BTK_TRY(change_child_refs(cow.bytes().data(), tree, false, +1));
        }
    } else if (flags & BLOCK_FLAG_FULL_BACKREF) {
        // Last reference to a full-backref block: move the children's shared
        // refs over to normal refs of the copy.
        BTK_TRY(change_child_refs(cow.bytes().data(), tree, false, +1));
        BTK_TRY(change_child_refs(old_raw, tree, true, -1));
        *old_full_backref = true;
    }
    return {};
}

Result<EditBlock*> Transaction::cow_block(uint64_t tree, uint64_t bytenr, const BlockExpect& expect,
                                          EditBlock* parent, uint32_t pslot) {
    if (auto it = dirty_.find(bytenr); it != dirty_.end()) {
        if (it->second->owner() != tree)
            return corruption("block {} belongs to tree {}, reached from tree {}", bytenr, it->second->owner(), tree);
        return it->second.get();
    }
    BTK_ASSIGN(BlockRef old, fs_.read_block(bytenr, expect));
    if (old->generation() >= gen_)
        return corruption("tree {} block {} has generation {}, not older than this transaction ({})", tree, bytenr,
                          old->generation(), gen_);
    BTK_ASSIGN(TreeRoot * root, tree_root(tree));
    const TreeRoot root_before = *root;
    BTK_ASSIGN(EditBlock * nb, alloc_block(tree, old->level(), old->nritems() ? old->key(0) : Key{}));
    const uint64_t nbytenr = nb->bytenr();
    std::memcpy(nb->bytes().data(), old->raw().data(), ns_);
    header& h = nb->hdr();
    h.bytenr = nbytenr;
    h.generation = gen_;
    h.owner = tree;
    h.flags = MIXED_BACKREF_REV << BACKREF_REV_SHIFT;
    if (Status s = nb->check_layout(); !s) {
        Error e = std::move(s).error();
        e.context(fmt::format("tree {} block {}", tree, bytenr));
        return e;
    }
    bool full = false;
    BTK_TRY(update_ref_for_cow(tree, root_before, old->raw().data(), *nb, &full));
    // Drop this tree's reference to the old block (freed at commit when it
    // was the last one).
    refs_.add(bytenr, ns_, false, old->level(), RefId::tree(tree), -1);
    root->bytes_delta -= ns_;
    if (parent) {
        parent->set_blockptr(pslot, nbytenr, gen_);
    } else {
        root->bytenr = nbytenr;
        root->level = old->level();
    }
    root->dirty = true;
    const uint32_t c = ++cow_count_[bytenr];
    stats_.max_cow_per_block = std::max<uint64_t>(stats_.max_cow_per_block, c);
    ++stats_.cowed;
    return nb;
}

Result<std::pair<uint64_t, uint64_t>> Transaction::alloc_data(uint64_t len) {
    if (len == 0 || len % ss_) return make_error(Errc::invalid_argument, "data allocation of {} bytes", len);
    return space_->alloc_data(len, ss_);
}

namespace {
constexpr uint64_t STAGE_MEMORY = 256ull << 20;  // staged data kept in memory
constexpr size_t WRITE_RUN = 8u << 20;           // bytes per data write
}  // namespace

Status Transaction::write_data(uint64_t logical, std::span<const uint8_t> data) {
    const Chunk* c = fs_.chunk_map().find(logical);
    if (!c) return corruption("data address {} is not in any chunk", logical);
    if (logical + data.size() > c->logical + c->length)
        return make_error(Errc::invalid_argument, "data write at {} crosses the end of its chunk", logical);
    StagedData sd;
    sd.logical = logical;
    sd.len = data.size();
    if (staged_mem_ + data.size() <= STAGE_MEMORY) {
        sd.mem.assign(data.begin(), data.end());
        staged_mem_ += data.size();
    } else {
        if (spill_fd_ < 0) {
            const char* dir = std::getenv("TMPDIR");
            spill_fd_ = ::open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
            if (spill_fd_ < 0)
                return make_error(Errc::io, "cannot create a temporary file for staged data: {}", std::strerror(errno));
        }
        size_t done = 0;
        while (done < data.size()) {
            ssize_t n = ::pwrite(spill_fd_, data.data() + done, data.size() - done, off_t(spill_size_ + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return make_error(Errc::io, "cannot stage data in a temporary file: {}", std::strerror(errno));
            done += size_t(n);
        }
        sd.spilled = true;
        sd.spill_off = spill_size_;
        spill_size_ += data.size();
    }
    staged_total_ += data.size();
    staged_.push_back(std::move(sd));
    return {};
}

namespace {
// Reads [off, off+len) of a staged host file into buf (zero-padded to
// buf.size()), refusing a file that changed since it was staged.
Status read_host_ref(const HostFileRef& r, int& fd, const HostFileRef*& open_ref, uint64_t off, uint64_t len,
                     std::vector<uint8_t>& buf) {
    if (open_ref != &r) {
        if (fd >= 0) ::close(fd);
        fd = ::open(r.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        open_ref = &r;
        if (fd < 0) return make_error(Errc::io, "cannot reopen '{}' to copy its data: {}", r.path, std::strerror(errno));
        struct stat st;
        if (fstat(fd, &st) != 0 || uint64_t(st.st_dev) != r.dev || uint64_t(st.st_ino) != r.ino ||
            uint64_t(st.st_size) != r.size ||
            int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec != r.mtime_ns ||
            int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec != r.ctime_ns)
            return make_error(Errc::io, "'{}' changed while it was being copied", r.path);
    }
    std::fill(buf.begin(), buf.end(), 0);
    size_t got = 0;
    while (got < len) {
        ssize_t n = ::pread(fd, buf.data() + got, len - got, off_t(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return make_error(Errc::io, "'{}' changed while it was being copied (short read)", r.path);
        got += size_t(n);
    }
    return {};
}
}  // namespace

Status Transaction::write_data_ref(uint64_t logical, std::shared_ptr<const HostFileRef> src, uint64_t src_off,
                                   uint64_t len, uint64_t disk_len) {
    const Chunk* c = fs_.chunk_map().find(logical);
    if (!c) return corruption("data address {} is not in any chunk", logical);
    if (logical + disk_len > c->logical + c->length || len > disk_len)
        return make_error(Errc::invalid_argument, "data write at {} crosses the end of its chunk", logical);
    StagedData sd;
    sd.logical = logical;
    sd.len = disk_len;
    sd.ref = std::move(src);
    sd.ref_off = src_off;
    sd.ref_len = len;
    staged_total_ += disk_len;
    staged_.push_back(std::move(sd));
    return {};
}


Status Transaction::write_staged_data() {
    int ref_fd = -1;
    const HostFileRef* open_ref = nullptr;
    struct Closer {
        int& fd;
        ~Closer() {
            if (fd >= 0) ::close(fd);
        }
    } closer{ref_fd};
    std::sort(staged_.begin(), staged_.end(),
              [](const StagedData& a, const StagedData& b) { return a.logical < b.logical; });
    // Contiguous staged extents are gathered into runs of up to WRITE_RUN
    // bytes, each written once per copy.
    std::vector<uint8_t> run, tmp;
    uint64_t run_start = 0;
    auto flush = [&]() -> Status {
        if (run.empty()) return {};
        const Chunk* c = fs_.chunk_map().find(run_start);
        if (!c) return corruption("staged data at {} is not in any chunk", run_start);
        for (int m = 0; m < c->num_copies(); ++m) {
            BTK_ASSIGN(auto ranges, fs_.chunk_map().map(run_start, run.size(), m));
            size_t at = 0;
            for (const auto& r : ranges) {
                Device* d = fs_.device(r.devid);
                if (!d) return make_error(Errc::io, "device {} is missing", r.devid);
                if (at + r.length > run.size()) return corruption("data mapping of {} is longer than the data", run_start);
                BTK_TRY(d->write(r.physical, std::span<const uint8_t>(run).subspan(at, r.length)));
                at += r.length;
            }
        }
        run.clear();
        return {};
    };
    for (const auto& sd : staged_) {
        const Chunk* c = fs_.chunk_map().find(sd.logical);
        for (uint64_t off = 0; off < sd.len; off += WRITE_RUN) {
            const size_t n = size_t(std::min<uint64_t>(WRITE_RUN, sd.len - off));
            const uint64_t at = sd.logical + off;
            const Chunk* rc = run.empty() ? nullptr : fs_.chunk_map().find(run_start);
            if (!run.empty() && (run_start + run.size() != at || run.size() + n > WRITE_RUN || rc != c))
                BTK_TRY(flush());
            if (run.empty()) run_start = at;
            const size_t base = run.size();
            run.resize(base + n);
            std::span<uint8_t> dst(run.data() + base, n);
            if (sd.ref) {
                tmp.resize(n);
                const uint64_t have = off < sd.ref_len ? std::min<uint64_t>(n, sd.ref_len - off) : 0;
                BTK_TRY(read_host_ref(*sd.ref, ref_fd, open_ref, sd.ref_off + off, have, tmp));
                std::memcpy(dst.data(), tmp.data(), n);
            } else if (!sd.spilled) {
                std::memcpy(dst.data(), sd.mem.data() + off, n);
            } else {
                size_t got = 0;
                while (got < n) {
                    ssize_t r = ::pread(spill_fd_, dst.data() + got, n - got, off_t(sd.spill_off + off + got));
                    if (r < 0 && errno == EINTR) continue;
                    if (r <= 0) return make_error(Errc::io, "cannot read staged data back: {}", std::strerror(errno));
                    got += size_t(r);
                }
            }
        }
    }
    BTK_TRY(flush());
    staged_.clear();
    return {};
}

Status Transaction::read_data(uint64_t logical, std::span<uint8_t> out) {
    BTK_TRY(fs_.read_logical(logical, out));
    // Staged extents overlapping the range replace what the image holds.
    int fd = -1;
    const HostFileRef* open_ref = nullptr;
    std::vector<uint8_t> tmp;
    Status st;
    for (const auto& sd : staged_) {
        const uint64_t a = std::max(logical, sd.logical), b = std::min(logical + out.size(), sd.logical + sd.len);
        if (a >= b) continue;
        const uint64_t off = a - sd.logical, n = b - a;
        std::span<uint8_t> dst = out.subspan(a - logical, n);
        if (sd.ref) {
            tmp.assign(n, 0);
            const uint64_t have = off < sd.ref_len ? std::min<uint64_t>(n, sd.ref_len - off) : 0;
            st = read_host_ref(*sd.ref, fd, open_ref, sd.ref_off + off, have, tmp);
            if (!st) break;
            std::memcpy(dst.data(), tmp.data(), n);
        } else if (!sd.spilled) {
            std::memcpy(dst.data(), sd.mem.data() + off, n);
        } else if (::pread(spill_fd_, dst.data(), n, off_t(sd.spill_off + off)) != ssize_t(n)) {
            st = make_error(Errc::io, "cannot read staged data back");
            break;
        }
    }
    if (fd >= 0) ::close(fd);
    return st;
}

void Transaction::abort() {
    dirty_.clear();
    staged_.clear();
    done_ = true;
}

Status Transaction::update_root_items() {
    for (auto& [id, r] : roots_) {
        if (!r.dirty || id == ROOT_TREE_OBJECTID || id == CHUNK_TREE_OBJECTID || id == BLOCK_GROUP_TREE_OBJECTID)
            continue;
        BTK_ASSIGN(std::span<uint8_t> d, item_for_update(ROOT_TREE_OBJECTID, r.item_key));
        if (d.size() < offsetof(root_item, generation_v2) + 8)
            return corruption("root item of tree {} is too small to update", id);
        auto* ri = reinterpret_cast<root_item*>(d.data());
        // item_for_update may have moved the tree root map: re-read r after.
        TreeRoot& cur = roots_.at(id);
        ri->bytenr = cur.bytenr;
        ri->level = cur.level;
        ri->generation = gen_;
        ri->generation_v2 = gen_;
        const int64_t used = int64_t(uint64_t(ri->bytes_used)) + cur.bytes_delta;
        ri->bytes_used = uint64_t(std::max<int64_t>(used, 0));
        cur.bytes_delta = 0;
        cur.dirty = false;
    }
    return {};
}

}  // namespace btk
