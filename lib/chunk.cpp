#include "chunk.h"

#include "tree_block.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace btk {

using namespace format;

int Chunk::nparity() const noexcept {
    if (type & BLOCK_GROUP_RAID5) return 1;
    if (type & BLOCK_GROUP_RAID6) return 2;
    return 0;
}

int Chunk::data_stripes() const noexcept {
    switch (profile()) {
        case BLOCK_GROUP_RAID0: return num_stripes;
        case BLOCK_GROUP_RAID10: return num_stripes / (sub_stripes ? sub_stripes : 1);
        case BLOCK_GROUP_RAID5:
        case BLOCK_GROUP_RAID6: return num_stripes - nparity();
        default: return 1;
    }
}

int Chunk::num_copies() const noexcept {
    switch (profile()) {
        case BLOCK_GROUP_RAID1:
        case BLOCK_GROUP_DUP:
        case BLOCK_GROUP_RAID1C3:
        case BLOCK_GROUP_RAID1C4: return num_stripes;
        case BLOCK_GROUP_RAID10: return sub_stripes;
        case BLOCK_GROUP_RAID5: return 2;  // data, or rebuilt from parity
        case BLOCK_GROUP_RAID6: return 2;  // (rebuild from Q not implemented)
        default: return 1;
    }
}

const char* profile_name(uint64_t p) noexcept {
    switch (p & BLOCK_GROUP_PROFILE_MASK) {
        case 0: return "single";
        case BLOCK_GROUP_RAID0: return "RAID0";
        case BLOCK_GROUP_RAID1: return "RAID1";
        case BLOCK_GROUP_DUP: return "DUP";
        case BLOCK_GROUP_RAID10: return "RAID10";
        case BLOCK_GROUP_RAID5: return "RAID5";
        case BLOCK_GROUP_RAID6: return "RAID6";
        case BLOCK_GROUP_RAID1C3: return "RAID1C3";
        case BLOCK_GROUP_RAID1C4: return "RAID1C4";
    }
    return "mixed-profile";
}

Result<Chunk> parse_chunk(uint64_t logical, std::span<const uint8_t> item) {
    const auto* c = view_at<chunk>(item);
    if (!c) return corruption("chunk {}: item size {} smaller than a chunk", logical, item.size());
    Chunk ch;
    ch.logical = logical;
    ch.length = c->length;
    ch.owner = c->owner;
    ch.stripe_len = c->stripe_len;
    ch.type = c->type;
    ch.io_align = c->io_align;
    ch.io_width = c->io_width;
    ch.sector_size = c->sector_size;
    ch.num_stripes = c->num_stripes;
    ch.sub_stripes = c->sub_stripes;
    if (ch.num_stripes == 0) return corruption("chunk {}: num_stripes is 0", logical);
    if (item.size() < chunk_item_size(ch.num_stripes))
        return corruption("chunk {}: item size {} too small for {} stripes", logical, item.size(),
                          ch.num_stripes);
    if (ch.length == 0) return corruption("chunk {}: length is 0", logical);
    if (logical + ch.length < logical) return corruption("chunk {}: length {} overflows", logical, ch.length);
    if (ch.stripe_len == 0 || !std::has_single_bit(ch.stripe_len) || ch.stripe_len > (1ULL << 30))
        return corruption("chunk {}: invalid stripe_len {}", logical, ch.stripe_len);
    if (!(ch.type & BLOCK_GROUP_TYPE_MASK)) return corruption("chunk {}: no type bits in {:#x}", logical, ch.type);
    if (std::popcount(ch.type & BLOCK_GROUP_PROFILE_MASK) > 1)
        return corruption("chunk {}: several profile bits in {:#x}", logical, ch.type);
    const uint16_t n = ch.num_stripes;
    bool ok = true;
    switch (ch.profile()) {
        case 0: ok = n == 1; break;
        case BLOCK_GROUP_DUP: ok = n == 2; break;
        case BLOCK_GROUP_RAID1: ok = n == 2; break;
        case BLOCK_GROUP_RAID1C3: ok = n == 3; break;
        case BLOCK_GROUP_RAID1C4: ok = n == 4; break;
        case BLOCK_GROUP_RAID0: ok = n >= 1; break;
        case BLOCK_GROUP_RAID10: ok = ch.sub_stripes >= 1 && n >= ch.sub_stripes && n % ch.sub_stripes == 0; break;
        case BLOCK_GROUP_RAID5: ok = n >= 2; break;
        case BLOCK_GROUP_RAID6: ok = n >= 3; break;
    }
    if (!ok)
        return corruption("chunk {}: {} stripes (sub_stripes {}) invalid for profile {}", logical, n,
                          ch.sub_stripes, profile_name(ch.type));
    const auto* s = &c->stripe;
    ch.stripes.resize(n);
    for (uint16_t i = 0; i < n; ++i) {
        ch.stripes[i].devid = s[i].devid;
        ch.stripes[i].offset = s[i].offset;
        std::memcpy(ch.stripes[i].dev_uuid, s[i].dev_uuid, UUID_SIZE);
    }
    return ch;
}

Status ChunkMap::add(uint64_t logical, std::span<const uint8_t> item) {
    BTK_ASSIGN(Chunk ch, parse_chunk(logical, item));
    // Reject overlaps with neighbours (an exact duplicate replaces the entry).
    auto it = chunks_.lower_bound(logical);
    if (it != chunks_.end() && it->first != logical && it->first < logical + ch.length)
        return corruption("chunk {} (length {}) overlaps chunk {}", logical, ch.length, it->first);
    if (it != chunks_.begin()) {
        auto prev = std::prev(it);
        if (prev->first + prev->second.length > logical)
            return corruption("chunk {} overlaps chunk {} (length {})", logical, prev->first,
                              prev->second.length);
    }
    chunks_[logical] = std::move(ch);
    return {};
}

Status ChunkMap::add_sys_chunk_array(const super_block& sb) {
    const uint32_t size = sb.sys_chunk_array_size;
    if (size > SYSTEM_CHUNK_ARRAY_SIZE) return corruption("sys_chunk_array_size {} too large", size);
    std::span<const uint8_t> arr(sb.sys_chunk_array, size);
    size_t off = 0;
    int n = 0;
    while (off < size) {
        const auto* k = view_at<disk_key>(arr, off);
        if (!k) return corruption("sys_chunk_array: truncated key at offset {}", off);
        off += sizeof(disk_key);
        if (k->type != CHUNK_ITEM_KEY)
            return corruption("sys_chunk_array: item {} has key type {}, expected CHUNK_ITEM", n, k->type);
        const auto* c = view_at<chunk>(arr, off);
        if (!c) return corruption("sys_chunk_array: truncated chunk {} at offset {}", n, off);
        const uint16_t ns = c->num_stripes;
        if (ns == 0) return corruption("sys_chunk_array: chunk {} has 0 stripes", n);
        const size_t isz = chunk_item_size(ns);
        if (off + isz > size) return corruption("sys_chunk_array: chunk {} with {} stripes overruns the array", n, ns);
        if (auto s = add(k->offset, arr.subspan(off, isz)); !s)
            return std::move(s).error().context("sys_chunk_array");
        if (!(chunks_[k->offset.get()].type & BLOCK_GROUP_SYSTEM))
            return corruption("sys_chunk_array: chunk {} is not a SYSTEM chunk", k->offset.get());
        off += isz;
        ++n;
    }
    if (n == 0) return corruption("sys_chunk_array is empty");
    return {};
}

const Chunk* ChunkMap::find(uint64_t logical) const noexcept {
    auto it = chunks_.upper_bound(logical);
    if (it == chunks_.begin()) return nullptr;
    --it;
    if (logical - it->first >= it->second.length) return nullptr;
    return &it->second;
}

int ChunkMap::num_copies(uint64_t logical) const noexcept {
    const Chunk* c = find(logical);
    return c ? c->num_copies() : 1;
}

namespace {

// Locates byte `off` (offset into the chunk) for the given copy. Returns the
// stripe index and physical address, and how many bytes stay in that stripe.
struct Placement {
    int stripe;
    uint64_t physical;
    uint64_t remaining;
};

Placement place(const Chunk& c, uint64_t off, int mirror) {
    const uint64_t sl = c.stripe_len;
    const uint64_t stripe_nr = off / sl;
    const uint64_t in_stripe = off % sl;
    const uint64_t remaining = sl - in_stripe;
    switch (c.profile()) {
        case BLOCK_GROUP_RAID0: {
            const uint64_t idx = stripe_nr % c.num_stripes;
            const uint64_t row = stripe_nr / c.num_stripes;
            return {int(idx), c.stripes[idx].offset + row * sl + in_stripe, remaining};
        }
        case BLOCK_GROUP_RAID10: {
            const uint64_t factor = c.num_stripes / c.sub_stripes;
            const uint64_t idx = (stripe_nr % factor) * c.sub_stripes + uint64_t(mirror);
            const uint64_t row = stripe_nr / factor;
            return {int(idx), c.stripes[idx].offset + row * sl + in_stripe, remaining};
        }
        case BLOCK_GROUP_RAID5:
        case BLOCK_GROUP_RAID6: {
            const uint64_t ndata = uint64_t(c.data_stripes());
            const uint64_t row = stripe_nr / ndata;
            const uint64_t idx = (stripe_nr % ndata + row) % c.num_stripes;
            return {int(idx), c.stripes[idx].offset + row * sl + in_stripe, remaining};
        }
        case BLOCK_GROUP_RAID1:
        case BLOCK_GROUP_DUP:
        case BLOCK_GROUP_RAID1C3:
        case BLOCK_GROUP_RAID1C4:
            return {mirror, c.stripes[mirror].offset + off, c.length - off};
        default:
            return {0, c.stripes[0].offset + off, c.length - off};
    }
}

}  // namespace

Result<std::vector<PhysicalRange>> ChunkMap::map(uint64_t logical, uint64_t len, int mirror) const {
    std::vector<PhysicalRange> out;
    while (len > 0) {
        const Chunk* c = find(logical);
        if (!c) return corruption("logical address {} is not covered by any chunk", logical);
        int m = mirror;
        const bool raid56 = c->type & BLOCK_GROUP_RAID56_MASK;
        if (raid56) m = 0;  // parity rebuild is done by the reader
        if (m < 0 || m >= c->num_copies())
            return make_error(Errc::invalid_argument, "logical {}: copy {} does not exist ({} copies)",
                              logical, mirror, c->num_copies());
        const uint64_t off = logical - c->logical;
        Placement p = place(*c, off, m);
        uint64_t n = std::min({len, p.remaining, c->length - off});
        out.push_back({c->stripes[p.stripe].devid, p.physical, n});
        logical += n;
        len -= n;
    }
    return out;
}

Result<std::vector<PhysicalRange>> ChunkMap::map_all_copies(uint64_t logical, uint64_t len) const {
    const Chunk* c = find(logical);
    if (!c) return corruption("logical address {} is not covered by any chunk", logical);
    if (c->type & BLOCK_GROUP_RAID56_MASK)
        return make_error(Errc::unsupported, "writing to RAID5/6 chunks is not supported");
    std::vector<PhysicalRange> out;
    for (int m = 0; m < c->num_copies(); ++m) {
        BTK_ASSIGN(auto r, map(logical, len, m));
        out.insert(out.end(), r.begin(), r.end());
    }
    return out;
}

}  // namespace btk
