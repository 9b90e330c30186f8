// New chunks when a block group type runs out of space.
//
// The profile is the one the filesystem already uses for that type; the
// size follows the kernel's defaults (data 1 GiB, metadata 256 MiB, or
// 1 GiB above 50 GiB of space, system 32 MiB, never more than a tenth of
// the filesystem) and shrinks to what the devices still have. The chunk is
// usable at once; its chunk item, device extents, device usage and, for
// system chunks, the superblock's system chunk array are written at commit
// (write_pending_chunks), like its block group item and free space entries.
#include "space.h"

#include "space_detail.h"
#include "txn.h"

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace {

constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

struct ProfileShape {
    uint32_t min_devs, dev_stripes, sub_stripes, ncopies;
    bool all_devs;  // stripe over every device with room
};

ProfileShape shape_of(uint64_t prof) {
    if (prof & BLOCK_GROUP_DUP) return {1, 2, 1, 2, false};
    if (prof & BLOCK_GROUP_RAID1) return {2, 1, 1, 2, false};
    if (prof & BLOCK_GROUP_RAID1C3) return {3, 1, 1, 3, false};
    if (prof & BLOCK_GROUP_RAID1C4) return {4, 1, 1, 4, false};
    if (prof & BLOCK_GROUP_RAID0) return {1, 1, 1, 1, true};
    if (prof & BLOCK_GROUP_RAID10) return {2, 1, 2, 2, true};
    return {1, 1, 1, 1, false};
}

}  // namespace

Status SpaceManager::load_dev_extents() {
    if (dev_loaded_) return {};
    BTK_TRY(t_.for_each(DEV_TREE_OBJECTID, Key{1, DEV_EXTENT_KEY, 0}, Key{~0ULL, DEV_EXTENT_KEY, ~0ULL},
                        [&](const ItemRef& it) {
                            if (it.key.type != DEV_EXTENT_KEY) return true;
                            const auto* de = view_at<dev_extent>(it.data);
                            if (de) dev_extents_[it.key.objectid][it.key.offset] = de->length;
                            return true;
                        }));
    dev_loaded_ = true;
    return {};
}

Result<BlockGroup*> SpaceManager::new_chunk(uint64_t type) {
    BTK_TRY(load_dev_extents());
    Filesystem& fs = t_.fs();
    // Same type and profile as the existing groups of this type.
    uint64_t flags = 0;
    for (const auto& [s, bg] : groups_)
        if (bg.flags & type) {
            flags = bg.flags;
            if ((bg.flags & BLOCK_GROUP_TYPE_MASK) == type) break;
        }
    if (!flags) return make_error(Errc::unsupported, "no block group of type {:#x} to take a profile from", type);
    const uint64_t prof = flags & BLOCK_GROUP_PROFILE_MASK;
    if (prof & (BLOCK_GROUP_RAID5 | BLOCK_GROUP_RAID6))
        return make_error(Errc::unsupported, "allocating RAID5/6 chunks is not supported");
    const ProfileShape sh = shape_of(prof);

    // Free holes per device, from the dev items' sizes and the dev extents.
    struct Hole {
        uint64_t devid, start, len;
    };
    std::vector<Hole> holes;
    std::map<uint64_t, std::vector<uint8_t>> dev_uuid;
    uint64_t total = 0;
    for (const auto& [devid, d] : fs.devices()) {
        BTK_ASSIGN(auto di, t_.lookup(CHUNK_TREE_OBJECTID, Key{DEV_ITEMS_OBJECTID, DEV_ITEM_KEY, devid}));
        if (!di || di->size() < sizeof(dev_item)) return corruption("device {} has no device item", devid);
        const auto* item = reinterpret_cast<const dev_item*>(di->data());
        dev_uuid[devid].assign(item->uuid, item->uuid + UUID_SIZE);
        const uint64_t size = std::min<uint64_t>(item->total_bytes, d->size());
        total += size;
        uint64_t cur = MiB;  // the first MiB is never allocated
        auto& ext = dev_extents_[devid];
        for (auto [s, l] : ext) {
            if (s > cur) holes.push_back({devid, cur, s - cur});
            cur = std::max(cur, s + l);
        }
        if (size > cur) holes.push_back({devid, cur, size - cur});
    }
    uint64_t want = (type & BLOCK_GROUP_DATA) ? GiB : (type & BLOCK_GROUP_SYSTEM) ? 32 * MiB
                                                      : (total > 50 * GiB ? GiB : 256 * MiB);
    want = std::min(want, std::max<uint64_t>(total / 10 / STRIPE_LEN * STRIPE_LEN, 16 * MiB));

    // Pick stripes: the largest hole of each device (DUP: two on one device).
    std::map<uint64_t, Hole> best;
    for (const auto& h : holes)
        if (!best.count(h.devid) || best[h.devid].len < h.len) best[h.devid] = h;
    std::vector<Hole> cand;
    for (auto& [d, h] : best) cand.push_back(h);
    std::sort(cand.begin(), cand.end(), [](const Hole& a, const Hole& b) { return a.len > b.len; });
    size_t ndevs = sh.all_devs ? cand.size() : std::min<size_t>(cand.size(), sh.ncopies / sh.dev_stripes);
    if (prof & BLOCK_GROUP_RAID10) ndevs -= ndevs % 2;
    if (ndevs < sh.min_devs || ndevs == 0)
        return make_error(Errc::io, "no space left on device (no room for a new {} chunk on {} device{})",
                          (type & BLOCK_GROUP_DATA) ? "data" : (type & BLOCK_GROUP_SYSTEM) ? "system" : "metadata",
                          sh.min_devs, sh.min_devs == 1 ? "" : "s");
    const uint64_t nstripes = ndevs * sh.dev_stripes;
    const uint64_t ndata = (prof & (BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10)) ? nstripes / sh.sub_stripes : 1;
    uint64_t stripe = want / ndata;
    for (size_t i = 0; i < ndevs; ++i) stripe = std::min(stripe, cand[i].len / sh.dev_stripes);
    stripe = stripe / STRIPE_LEN * STRIPE_LEN;
    if (stripe < MiB) return make_error(Errc::io, "no space left on device");
    const uint64_t length = stripe * ndata;

    uint64_t logical = 0;
    if (!fs.chunk_map().chunks().empty()) {
        const auto& last = fs.chunk_map().chunks().rbegin()->second;
        logical = last.logical + last.length;
    }
    std::vector<uint8_t> item(chunk_item_size(uint32_t(nstripes)), 0);
    auto* ci = reinterpret_cast<chunk*>(item.data());
    ci->length = length;
    ci->owner = EXTENT_TREE_OBJECTID;
    ci->stripe_len = STRIPE_LEN;
    ci->type = flags;
    ci->io_align = uint32_t(STRIPE_LEN);
    ci->io_width = uint32_t(STRIPE_LEN);
    ci->sector_size = t_.sectorsize();
    ci->num_stripes = uint16_t(nstripes);
    ci->sub_stripes = uint16_t(sh.sub_stripes);
    auto* st = &ci->stripe;
    size_t k = 0;
    for (size_t i = 0; i < ndevs; ++i)
        for (uint32_t j = 0; j < sh.dev_stripes; ++j, ++k) {
            st[k].devid = cand[i].devid;
            st[k].offset = cand[i].start + j * stripe;
            std::memcpy(st[k].dev_uuid, dev_uuid[cand[i].devid].data(), UUID_SIZE);
            dev_extents_[cand[i].devid][cand[i].start + j * stripe] = stripe;
        }
    BTK_TRY(fs.add_chunk(logical, item));
    const Chunk* c = fs.chunk_map().find(logical);
    std::map<uint64_t, uint64_t> dev_sizes;
    for (const auto& [id, d] : fs.devices()) dev_sizes[id] = d->size();
    BlockGroup bg;
    bg.start = logical;
    bg.length = length;
    bg.flags = flags;
    bg.is_new = true;
    bg.dirty = true;
    bg.loaded = true;
    bg.cursor = logical;
    bg.excluded = space_detail::super_stripes(*c, dev_sizes);
    bg.free[logical] = length;
    for (auto [s, l] : bg.excluded) space_detail::range_remove(bg.free, s, l);
    avail_[logical] = bg.free;
    pending_chunks_.push_back({logical, std::move(item)});
    ++stats_.chunks_allocated;
    return &groups_.emplace(logical, std::move(bg)).first->second;
}

Status SpaceManager::write_pending_chunks() {
    auto pending = std::exchange(pending_chunks_, {});
    for (const auto& pc : pending) {
        BTK_TRY(t_.insert_item(CHUNK_TREE_OBJECTID, Key{FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, pc.logical}, pc.item));
        const auto* ci = reinterpret_cast<const chunk*>(pc.item.data());
        const uint64_t stripe_len_dev = [&] {
            const uint64_t prof = ci->type & BLOCK_GROUP_PROFILE_MASK;
            if (prof & (BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10))
                return uint64_t(ci->length) / (ci->num_stripes / std::max<uint16_t>(ci->sub_stripes, 1));
            return uint64_t(ci->length);
        }();
        BTK_ASSIGN(BlockRef cr, t_.fs().read_block(t_.sb_.chunk_root));
        for (uint16_t i = 0; i < ci->num_stripes; ++i) {
            const stripe& s = (&ci->stripe)[i];
            dev_extent de{};
            de.chunk_tree = CHUNK_TREE_OBJECTID;
            de.chunk_objectid = FIRST_CHUNK_TREE_OBJECTID;
            de.chunk_offset = pc.logical;
            de.length = stripe_len_dev;
            std::memcpy(de.chunk_tree_uuid, cr->header().chunk_tree_uuid, UUID_SIZE);
            BTK_TRY(t_.insert_item(DEV_TREE_OBJECTID, Key{s.devid, DEV_EXTENT_KEY, s.offset},
                                   {reinterpret_cast<const uint8_t*>(&de), sizeof(de)}));
            BTK_ASSIGN(std::span<uint8_t> di, t_.item_for_update(CHUNK_TREE_OBJECTID, Key{DEV_ITEMS_OBJECTID, DEV_ITEM_KEY, s.devid}));
            auto* d = reinterpret_cast<dev_item*>(di.data());
            d->bytes_used = d->bytes_used + stripe_len_dev;
        }
        if (ci->type & BLOCK_GROUP_SYSTEM) {
            super_block& sb = t_.sb_;
            disk_key k{};
            Key{FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, pc.logical}.to_disk(k);
            const uint32_t at = sb.sys_chunk_array_size;
            if (at + sizeof(k) + pc.item.size() > SYSTEM_CHUNK_ARRAY_SIZE)
                return make_error(Errc::io, "no room in the system chunk array for another system chunk");
            std::memcpy(sb.sys_chunk_array + at, &k, sizeof(k));
            std::memcpy(sb.sys_chunk_array + at + sizeof(k), pc.item.data(), pc.item.size());
            sb.sys_chunk_array_size = uint32_t(at + sizeof(k) + pc.item.size());
        }
    }
    return {};
}

}  // namespace btk
