#include "fs.h"

#include "csum.h"
#include "tree.h"

#include <cstring>

namespace btk {

using namespace format;

std::string tree_name_for_errors(uint64_t id) {
    switch (id) {
        case ROOT_TREE_OBJECTID: return "root";
        case EXTENT_TREE_OBJECTID: return "extent";
        case CHUNK_TREE_OBJECTID: return "chunk";
        case DEV_TREE_OBJECTID: return "dev";
        case FS_TREE_OBJECTID: return "fs";
        case CSUM_TREE_OBJECTID: return "csum";
        case QUOTA_TREE_OBJECTID: return "quota";
        case UUID_TREE_OBJECTID: return "uuid";
        case FREE_SPACE_TREE_OBJECTID: return "free space";
        case BLOCK_GROUP_TREE_OBJECTID: return "block group";
        case RAID_STRIPE_TREE_OBJECTID: return "raid stripe";
        case TREE_LOG_OBJECTID: return "log";
        case TREE_RELOC_OBJECTID: return "reloc";
        case DATA_RELOC_TREE_OBJECTID: return "data reloc";
    }
    return std::to_string(id);
}

Filesystem::~Filesystem() = default;

Result<std::unique_ptr<Filesystem>> Filesystem::open(const std::vector<std::string>& paths,
                                                     const OpenOptions& opts) {
    if (paths.empty()) return make_error(Errc::invalid_argument, "no device or image given");
    std::unique_ptr<Filesystem> fs(new Filesystem());
    fs->cache_budget_ = opts.cache_bytes;
    fs->tree_root_override_ = opts.tree_root;

    // The first device decides the filesystem; the others must match its fsid.
    BTK_ASSIGN(auto first, Device::open(paths[0], opts.writable));
    BTK_ASSIGN(SuperCopy sc, select_super(*first, opts.super_mirror));
    fs->sb_ = sc.sb;
    fs->super_mirror_ = sc.mirror;
    fs->csum_size_ = btk::csum_size(fs->sb_.csum_type);
    const uint64_t first_devid = fs->sb_.dev_item.devid;
    fs->devices_[first_devid] = std::move(first);
    for (size_t i = 1; i < paths.size(); ++i) {
        BTK_ASSIGN(auto dev, Device::open(paths[i], opts.writable));
        BTK_ASSIGN(SuperCopy other, select_super(*dev, -1));
        if (std::memcmp(other.sb.fsid, fs->sb_.fsid, FSID_SIZE) != 0)
            return make_error(Errc::invalid_argument, "{} belongs to another filesystem (fsid differs from {})",
                              paths[i], paths[0]);
        const uint64_t devid = other.sb.dev_item.devid;
        if (fs->devices_.count(devid))
            return make_error(Errc::invalid_argument, "{}: devid {} given twice", paths[i], devid);
        fs->devices_[devid] = std::move(dev);
    }
    if (fs->devices_.size() < fs->sb_.num_devices)
        fs->warnings_.push_back(fmt::format("{} of {} devices present", fs->devices_.size(),
                                            fs->sb_.num_devices.get()));

    if (auto s = fs->chunks_.add_sys_chunk_array(fs->sb_); !s) {
        // The entries before a damaged one are kept: with them the chunk
        // tree may still be readable (check reports the array's damage).
        if (!opts.tolerate_chunk_errors || fs->chunks_.chunks().empty()) return std::move(s).error();
        fs->warnings_.push_back(s.error().message);
    }
    if (auto s = fs->load_chunk_tree(opts.tolerate_chunk_errors); !s) return std::move(s).error();
    return fs;
}

Status Filesystem::load_chunk_tree(bool tolerate) {
    TreeCursor c(*this, chunk_root());
    auto ok = c.seek(Key{FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, 0});
    std::string problem;
    while (ok && *ok) {
        const Key k = c.key();
        if (k.type == CHUNK_ITEM_KEY) {
            if (auto s = chunks_.add(k.offset, c.data()); !s) {
                problem = s.error().message;
                if (!tolerate) return make_error(Errc::corruption, "chunk tree: {}", problem);
                warnings_.push_back("chunk tree: " + problem);
            }
        }
        ok = c.next();
    }
    if (!ok) {
        if (!tolerate) return std::move(ok).error().context("reading chunk tree");
        warnings_.push_back("reading chunk tree: " + ok.error().message);
    }
    return {};
}

Device* Filesystem::device(uint64_t devid) const noexcept {
    auto it = devices_.find(devid);
    return it == devices_.end() ? nullptr : it->second.get();
}

RootRef Filesystem::tree_root() const noexcept {
    RootRef r{ROOT_TREE_OBJECTID, sb_.root, sb_.root_level, sb_.generation};
    if (tree_root_override_) {
        r.bytenr = *tree_root_override_;
        r.generation = 0;
    }
    return r;
}
RootRef Filesystem::chunk_root() const noexcept {
    return {CHUNK_TREE_OBJECTID, sb_.chunk_root, sb_.chunk_root_level, sb_.chunk_root_generation};
}
RootRef Filesystem::log_root() const noexcept {
    return {TREE_LOG_OBJECTID, sb_.log_root, sb_.log_root_level, 0};
}
RootRef Filesystem::block_group_root() const noexcept {
    return {BLOCK_GROUP_TREE_OBJECTID, sb_.block_group_root, sb_.block_group_root_level,
            sb_.block_group_root_generation};
}

Status Filesystem::read_logical(uint64_t logical, std::span<uint8_t> out, int mirror) const {
    const Chunk* c = chunks_.find(logical);
    if (c && (c->type & BLOCK_GROUP_RAID56_MASK) && mirror == 1) return rebuild_raid56(logical, out);
    BTK_ASSIGN(auto ranges, chunks_.map(logical, out.size(), mirror));
    size_t done = 0;
    for (const auto& r : ranges) {
        Device* d = device(r.devid);
        if (!d) return make_error(Errc::io, "logical {}: device {} is missing", logical, r.devid);
        BTK_TRY(d->read(r.physical, out.subspan(done, r.length)));
        done += r.length;
    }
    return {};
}

Status Filesystem::rebuild_raid56(uint64_t logical, std::span<uint8_t> out) const {
    // Rebuild each stripe-unit piece as P xor (the other data stripes).
    size_t done = 0;
    while (done < out.size()) {
        const Chunk* c = chunks_.find(logical + done);
        if (!c) return corruption("logical address {} is not covered by any chunk", logical + done);
        const uint64_t sl = c->stripe_len;
        const uint64_t off = logical + done - c->logical;
        const uint64_t stripe_nr = off / sl, in_stripe = off % sl;
        const uint64_t ndata = uint64_t(c->data_stripes());
        const uint64_t row = stripe_nr / ndata, want = stripe_nr % ndata;
        const uint64_t n = std::min<uint64_t>(out.size() - done, sl - in_stripe);
        std::span<uint8_t> piece = out.subspan(done, n);
        // A range can cover pieces whose rebuild needs the missing device while
        // their own data stripe is present: those are read directly.
        const uint64_t want_idx = (want + row) % c->num_stripes;
        Device* want_dev = device(c->stripes[want_idx].devid);
        bool can_rebuild = true;
        for (uint64_t d = 0; d <= ndata; ++d)
            if (d != want && !device(c->stripes[(d + row) % c->num_stripes].devid)) can_rebuild = false;
        if (!can_rebuild) {
            if (!want_dev)
                return make_error(Errc::io, "logical {}: cannot rebuild, device {} and another device of the stripe are missing",
                                  logical + done, c->stripes[want_idx].devid);
            BTK_TRY(want_dev->read(c->stripes[want_idx].offset + row * sl + in_stripe, piece));
            done += n;
            continue;
        }
        std::vector<uint8_t> acc(n, 0), tmp(n);
        for (uint64_t d = 0; d <= ndata; ++d) {  // d == ndata is the P stripe
            if (d == want) continue;
            const uint64_t idx = (d + row) % c->num_stripes;
            BTK_TRY(device(c->stripes[idx].devid)->read(c->stripes[idx].offset + row * sl + in_stripe, tmp));
            for (uint64_t i = 0; i < n; ++i) acc[i] ^= tmp[i];
        }
        std::memcpy(piece.data(), acc.data(), n);
        done += n;
    }
    return {};
}

std::string Filesystem::verify_block(std::span<const uint8_t> raw, uint64_t bytenr) const {
    if (raw.size() < sizeof(header)) return "block too small";
    const auto* h = reinterpret_cast<const header*>(raw.data());
    uint8_t c[32];
    csum_compute(sb_.csum_type, raw.subspan(CSUM_SIZE), c);
    if (std::memcmp(c, h->csum, csum_size_) != 0) {
        std::string wanted, found;
        for (uint32_t i = 0; i < csum_size_; ++i) {
            wanted += fmt::format("{:02x}", h->csum[i]);
            found += fmt::format("{:02x}", c[i]);
        }
        return fmt::format("checksum mismatch (stored 0x{}, computed 0x{})", wanted, found);
    }
    if (h->bytenr != bytenr) return fmt::format("header bytenr {} does not match", h->bytenr.get());
    if (std::memcmp(h->fsid, metadata_fsid(), FSID_SIZE) != 0) return "fsid does not match the superblock";
    return {};
}

Result<BlockRef> Filesystem::read_block_raw(uint64_t bytenr, int mirror) {
    const uint32_t ns = nodesize();
    auto buf = std::make_unique_for_overwrite<uint8_t[]>(ns);
    BTK_TRY(read_logical(bytenr, {buf.get(), ns}, mirror));
    return TreeBlock::parse(std::move(buf), ns);
}

static std::string check_expect(const TreeBlock& b, const BlockExpect& e) {
    if (e.level >= 0 && b.level() != e.level) return fmt::format("level {} where {} was expected", b.level(), e.level);
    if (e.generation && b.generation() != e.generation)
        return fmt::format("generation {} where the parent pointer says {}", b.generation(), e.generation);
    if (e.owner && b.owner() != e.owner) return fmt::format("owner {} where {} was expected", b.owner(), e.owner);
    if (e.first_key && b.nritems() > 0 && b.key(0) != *e.first_key) {
        const Key k = b.key(0), x = *e.first_key;
        return fmt::format("first key ({} {} {}) differs from parent key ({} {} {})", k.objectid, k.type,
                           k.offset, x.objectid, x.type, x.offset);
    }
    if (uint32_t i = first_unordered_key(b)) return fmt::format("keys out of order at slot {}", i);
    return {};
}

uint32_t first_unordered_key(const TreeBlock& b) noexcept {
    // Compared straight from the item or pointer table (the key is the first
    // member of both; parse() checked that the table fits).
    const uint8_t* table = b.raw().data() + sizeof(header);
    const size_t stride = b.is_leaf() ? sizeof(item) : sizeof(key_ptr);
    Key prev = b.nritems() ? Key::from_disk(*reinterpret_cast<const disk_key*>(table)) : Key{};
    for (uint32_t i = 1; i < b.nritems(); ++i) {
        const Key k = Key::from_disk(*reinterpret_cast<const disk_key*>(table + i * stride));
        if (!(prev < k)) return i;
        prev = k;
    }
    return 0;
}

Result<BlockRef> Filesystem::read_block(uint64_t bytenr, const BlockExpect& expect) {
    if (bytenr == 0 || bytenr % sectorsize() != 0)
        return corruption("tree block {}: not aligned to sectorsize {}", bytenr, sectorsize());
    if (BlockRef b = cache_get(bytenr)) {
        std::string p = check_expect(*b, expect);
        if (p.empty()) return b;
        return corruption("tree block {}: {}", bytenr, p);
    }
    const int copies = num_copies(bytenr);
    std::string first_problem;
    const uint32_t ns = nodesize();
    for (int m = 0; m < copies; ++m) {
        auto buf = std::make_unique_for_overwrite<uint8_t[]>(ns);
        if (auto s = read_logical(bytenr, {buf.get(), ns}, m); !s) {
            if (first_problem.empty()) first_problem = s.error().message;
            continue;
        }
        std::string p = verify_block({buf.get(), ns}, bytenr);
        if (!p.empty()) {
            if (first_problem.empty()) first_problem = p;
            continue;
        }
        auto parsed = TreeBlock::parse(std::move(buf), ns);
        if (!parsed) {
            if (first_problem.empty()) first_problem = parsed.error().message;
            continue;
        }
        p = check_expect(**parsed, expect);
        if (!p.empty()) {
            if (first_problem.empty()) first_problem = p;
            continue;
        }
        cache_put(bytenr, *parsed);
        return std::move(parsed).value();
    }
    return corruption("tree block {}: {}", bytenr, first_problem);
}

BlockRef Filesystem::cache_get(uint64_t bytenr) {
    auto it = cache_.find(bytenr);
    if (it == cache_.end()) {
        ++stats_.misses;
        return nullptr;
    }
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
}

void Filesystem::cache_put(uint64_t bytenr, const BlockRef& b) {
    if (cache_budget_ == 0) return;
    lru_.emplace_front(bytenr, b);
    cache_[bytenr] = lru_.begin();
    cache_used_ += b->size();
    while (cache_used_ > cache_budget_ && !lru_.empty()) {
        cache_used_ -= lru_.back().second->size();
        cache_.erase(lru_.back().first);
        lru_.pop_back();
    }
}

void Filesystem::drop_cache() {
    lru_.clear();
    cache_.clear();
    cache_used_ = 0;
}

Result<std::pair<RootRef, std::vector<uint8_t>>> Filesystem::find_root_item(uint64_t objectid) {
    TreeCursor c(*this, tree_root());
    BTK_ASSIGN(bool found, c.seek_le(Key{objectid, ROOT_ITEM_KEY, ~0ULL}));
    if (!found || c.key().objectid != objectid || c.key().type != ROOT_ITEM_KEY)
        return make_error(Errc::not_found, "tree {} has no root item", tree_name_for_errors(objectid));
    auto d = c.data();
    const auto* ri = view_at<root_item>(d);
    if (d.size() < ROOT_ITEM_V1_SIZE)
        return corruption("root item of tree {} too small ({} bytes)", objectid, d.size());
    // A v1 root item is shorter than root_item; read the common prefix.
    root_item tmp{};
    std::memcpy(&tmp, d.data(), std::min(d.size(), sizeof(root_item)));
    (void)ri;
    RootRef r{objectid, tmp.bytenr, tmp.level, tmp.generation};
    if (r.level >= MAX_LEVEL) return corruption("root item of tree {}: level {} too high", objectid, r.level);
    return std::make_pair(r, std::vector<uint8_t>(d.begin(), d.end()));
}

Result<RootRef> Filesystem::find_root(uint64_t objectid) {
    switch (objectid) {
        case ROOT_TREE_OBJECTID: return tree_root();
        case CHUNK_TREE_OBJECTID: return chunk_root();
        case BLOCK_GROUP_TREE_OBJECTID:
            if (compat_ro() & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE) return block_group_root();
            break;
    }
    BTK_ASSIGN(auto p, find_root_item(objectid));
    return p.first;
}

void Filesystem::after_commit(const format::super_block& sb) {
    sb_ = sb;
    drop_cache();
}

}  // namespace btk
