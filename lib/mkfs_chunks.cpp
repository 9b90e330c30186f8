// mkfs chunk planning: profiles, stripe sizes and device choice as
// mkfs.btrfs 6.2 makes them, superblock exclusion, and the writer that puts
// tree blocks and data on every stripe (with RAID5/6 parity).
#include "mkfs_layout.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace {

constexpr uint64_t MiB = 1ULL << 20, GiB = 1ULL << 30;

const ProfileInfo PROFILES[] = {
    {"single", 0, 1},
    {"dup", BLOCK_GROUP_DUP, 1},
    {"raid0", BLOCK_GROUP_RAID0, 1},
    {"raid1", BLOCK_GROUP_RAID1, 2},
    {"raid10", BLOCK_GROUP_RAID10, 2},
    {"raid1c3", BLOCK_GROUP_RAID1C3, 3},
    {"raid1c4", BLOCK_GROUP_RAID1C4, 4},
    {"raid5", BLOCK_GROUP_RAID5, 2},
    {"raid6", BLOCK_GROUP_RAID6, 3},
};

uint64_t round_down(uint64_t v, uint64_t a) { return v / a * a; }

// Stripes a chunk of this profile gets on `ndev` devices.
uint16_t num_stripes(uint64_t prof, size_t ndev) {
    switch (prof) {
        case BLOCK_GROUP_DUP:
        case BLOCK_GROUP_RAID1: return 2;
        case BLOCK_GROUP_RAID1C3: return 3;
        case BLOCK_GROUP_RAID1C4: return 4;
        case BLOCK_GROUP_RAID0:
        case BLOCK_GROUP_RAID5:
        case BLOCK_GROUP_RAID6: return uint16_t(ndev);
        case BLOCK_GROUP_RAID10: return uint16_t(ndev & ~size_t(1));
        default: return 1;
    }
}

// Stripes holding distinct data in one row.
uint64_t data_stripes(uint64_t prof, uint16_t n) {
    switch (prof) {
        case BLOCK_GROUP_RAID0: return n;
        case BLOCK_GROUP_RAID10: return n / 2u;
        case BLOCK_GROUP_RAID5: return n - 1u;
        case BLOCK_GROUP_RAID6: return n - 2u;
        default: return 1;
    }
}

const char* type_name(uint64_t type) {
    if ((type & BLOCK_GROUP_DATA) && (type & BLOCK_GROUP_METADATA)) return "data+metadata";
    if (type & BLOCK_GROUP_DATA) return "data";
    if (type & BLOCK_GROUP_METADATA) return "metadata";
    return "system";
}

// Per-device stripe size of a new chunk. mkfs.btrfs 6.2 keeps its first 4 MiB
// system and 8 MiB metadata/data chunks when the profile is single; other
// profiles get chunks capped per type (system 8 MiB stripes, at most 16 MiB;
// metadata 256 MiB, 1 GiB from 50 GiB; data 1 GiB, at most 10 GiB) and at
// 10% of the filesystem, split over all stripes when over the cap, and no
// smaller than 32 MiB (metadata) or 64 MiB (data).
uint64_t stripe_size_for(const MkfsLayout& x, uint64_t type, uint64_t prof, uint16_t nstripes) {
    const bool sys = type & BLOCK_GROUP_SYSTEM;
    const bool meta = type & BLOCK_GROUP_METADATA;
    if (prof == 0) return sys ? 4 * MiB : 8 * MiB;
    uint64_t calc, max_chunk, min_stripe = 0;
    if (sys) {
        calc = 8 * MiB;
        max_chunk = 16 * MiB;
    } else if (meta) {
        calc = x.total_bytes >= 50 * GiB ? 1 * GiB : 256 * MiB;
        max_chunk = std::min(calc, x.total_bytes / 10);
        min_stripe = 32 * MiB;
    } else {
        calc = 1 * GiB;
        max_chunk = std::min(10 * GiB, x.total_bytes / 10);
        min_stripe = 64 * MiB;
    }
    if (calc * data_stripes(prof, nstripes) > max_chunk) calc = round_down(max_chunk / nstripes, STRIPE_LEN);
    return std::max(calc, min_stripe);
}

// Allocates one chunk of `type` and `prof` with the given stripe size (0: the
// default), on the devices with the most free space (ties: lower devid).
Status add_chunk(MkfsLayout& x, uint64_t type, uint64_t prof, uint64_t stripe_size = 0) {
    const uint16_t n = num_stripes(prof, x.devices.size());
    const size_t ndevs = prof == BLOCK_GROUP_DUP ? 1 : n;
    if (n == 0 || ndevs > x.devices.size())
        return make_error(Errc::invalid_argument, "profile {} needs more devices", profile_info(prof)->name);
    if (!stripe_size) stripe_size = stripe_size_for(x, type, prof, n);
    std::vector<MkfsDevice*> devs;
    for (auto& d : x.devices) devs.push_back(&d);
    std::stable_sort(devs.begin(), devs.end(), [](const MkfsDevice* a, const MkfsDevice* b) {
        return a->size - std::min(a->size, a->alloc_end) > b->size - std::min(b->size, b->alloc_end);
    });
    devs.resize(ndevs);
    const uint64_t per_dev = stripe_size * (n / ndevs);
    for (MkfsDevice* d : devs)
        if (d->alloc_end + per_dev > d->size)
            return make_error(Errc::invalid_argument,
                              "{} is too small: {} bytes, the {} {} chunk needs {} bytes on it ({} bytes in all)",
                              d->path, d->size, profile_info(prof)->name, type_name(type), per_dev,
                              d->alloc_end + per_dev);
    ChunkPlan c;
    c.type = type | prof;
    c.logical = x.chunks.empty() ? MKFS_RESERVED : x.chunks.back().logical + x.chunks.back().length;
    c.stripe_size = stripe_size;
    c.sub_stripes = prof == BLOCK_GROUP_RAID10 ? 2 : 1;
    c.length = stripe_size * data_stripes(prof, n);
    for (uint16_t i = 0; i < n; ++i) {
        MkfsDevice* d = devs[i % ndevs];
        c.stripes.push_back({d->devid, d->alloc_end});
        d->alloc_end += stripe_size;
    }
    x.chunks.push_back(std::move(c));
    return {};
}

}  // namespace

const ChunkPlan* MkfsLayout::chunk_at(uint64_t logical) const {
    for (const auto& c : chunks)
        if (logical >= c.logical && logical - c.logical < c.length) return &c;
    return nullptr;
}

const ProfileInfo* find_profile(std::string_view name) {
    std::string l;
    for (char c : name) l += char(tolower(static_cast<unsigned char>(c)));
    for (const auto& p : PROFILES)
        if (l == p.name) return &p;
    return nullptr;
}

const ProfileInfo* profile_info(uint64_t bits) {
    for (const auto& p : PROFILES)
        if (p.bits == (bits & BLOCK_GROUP_PROFILE_MASK)) return &p;
    return &PROFILES[0];
}

Status plan_chunks(MkfsLayout& x) {
    x.chunks.clear();
    for (auto& d : x.devices) d.alloc_end = MKFS_RESERVED;
    if (x.mixed) {
        BTK_TRY(add_chunk(x, BLOCK_GROUP_SYSTEM, x.mprof));
        BTK_TRY(add_chunk(x, BLOCK_GROUP_METADATA | BLOCK_GROUP_DATA, x.mprof));
    } else {
        BTK_TRY(add_chunk(x, BLOCK_GROUP_SYSTEM, x.mprof));
        BTK_TRY(add_chunk(x, BLOCK_GROUP_METADATA, x.mprof));
        BTK_TRY(add_chunk(x, BLOCK_GROUP_DATA, x.dprof));
    }
    compute_excluded(x);
    return {};
}

namespace {

// Adds a chunk of `type` when the chunks of that type cannot hold `bytes`
// more than `used`.
Status reserve_space(MkfsLayout& x, uint64_t type, uint64_t prof, uint64_t used, uint64_t bytes) {
    uint64_t capacity = 0;
    for (const auto& c : x.chunks)
        if (c.type & type) capacity += c.length;
    if (capacity >= used + bytes) return {};
    const uint16_t n = num_stripes(prof, x.devices.size());
    const uint64_t ds = data_stripes(prof, n);
    const uint64_t need = used + bytes - capacity;
    const uint64_t stripe = std::max(stripe_size_for(x, type, prof, n),
                                     (need + ds * STRIPE_LEN - 1) / (ds * STRIPE_LEN) * STRIPE_LEN);
    BTK_TRY(add_chunk(x, type, prof, stripe));
    compute_excluded(x);
    return {};
}

}  // namespace

Status reserve_data(MkfsLayout& x, uint64_t bytes) {
    uint64_t used = 0;
    for (auto [s, l] : x.data_extents) used += l;
    const uint64_t type = x.mixed ? BLOCK_GROUP_DATA | BLOCK_GROUP_METADATA : BLOCK_GROUP_DATA;
    return reserve_space(x, type, x.mixed ? x.mprof : x.dprof, used, bytes);
}

Status reserve_metadata(MkfsLayout& x, uint64_t bytes) {
    if (x.mixed) return reserve_data(x, bytes);
    return reserve_space(x, BLOCK_GROUP_METADATA, x.mprof, 0, bytes);
}

std::vector<uint8_t> chunk_item_bytes(const MkfsLayout& x, const ChunkPlan& c) {
    std::vector<uint8_t> b(chunk_item_size(uint32_t(c.stripes.size())), 0);
    auto* ci = reinterpret_cast<chunk*>(b.data());
    ci->length = c.length;
    ci->owner = EXTENT_TREE_OBJECTID;
    ci->stripe_len = STRIPE_LEN;
    ci->type = c.type;
    ci->io_align = uint32_t(STRIPE_LEN);
    ci->io_width = uint32_t(STRIPE_LEN);
    ci->sector_size = x.ss;
    ci->num_stripes = uint16_t(c.stripes.size());
    ci->sub_stripes = c.sub_stripes;
    auto* st = &ci->stripe;
    for (size_t i = 0; i < c.stripes.size(); ++i) {
        st[i].devid = c.stripes[i].devid;
        st[i].offset = c.stripes[i].physical;
        std::memcpy(st[i].dev_uuid, x.device(c.stripes[i].devid).uuid, 16);
    }
    return b;
}

// The kernel keeps the 64 KiB stripe holding each superblock copy out of the
// allocator: for striped profiles that is the stripe's logical place, for
// RAID5/6 the whole row (all its data stripes).
void compute_excluded(MkfsLayout& x) {
    for (auto& c : x.chunks) {
        c.excluded.clear();
        const uint64_t prof = c.type & BLOCK_GROUP_PROFILE_MASK;
        const uint16_t n = uint16_t(c.stripes.size());
        const uint64_t ds = data_stripes(prof, n);
        for (size_t i = 0; i < c.stripes.size(); ++i) {
            const auto& s = c.stripes[i];
            for (int m = 0; m < SUPER_MIRROR_MAX; ++m) {
                const uint64_t off = super_offset(m);
                if (off + SUPER_INFO_SIZE > x.device(s.devid).size) break;
                if (off + SUPER_INFO_SIZE <= s.physical || off >= s.physical + c.stripe_size) continue;
                const uint64_t row = (off - std::min(off, s.physical)) / STRIPE_LEN;
                uint64_t start = 0, len = STRIPE_LEN;
                switch (prof) {
                    case BLOCK_GROUP_RAID0: start = (row * n + i) * STRIPE_LEN; break;
                    case BLOCK_GROUP_RAID10: start = (row * (n / 2u) + i / 2) * STRIPE_LEN; break;
                    case BLOCK_GROUP_RAID5:
                    case BLOCK_GROUP_RAID6:
                        start = row * ds * STRIPE_LEN;
                        len = ds * STRIPE_LEN;
                        break;
                    default: start = row * STRIPE_LEN;
                }
                if (start >= c.length) continue;
                c.excluded.push_back({c.logical + start, c.logical + std::min(c.length, start + len)});
            }
        }
        std::sort(c.excluded.begin(), c.excluded.end());
        c.excluded.erase(std::unique(c.excluded.begin(), c.excluded.end()), c.excluded.end());
    }
}

Result<ChunkMap> chunk_map(const MkfsLayout& x) {
    ChunkMap m;
    for (const auto& c : x.chunks) BTK_TRY(m.add(c.logical, chunk_item_bytes(x, c)));
    return m;
}

// ---------------------------------------------------------------------------
// Writer

MkfsWriter::MkfsWriter(const MkfsLayout& x, const ChunkMap& map, const WriteContext& wc)
    : x_(x), map_(map), block_writer_(wc) {}

Status MkfsWriter::add_tree_block(std::vector<uint8_t>&& block) {
    const uint64_t bytenr = reinterpret_cast<const header*>(block.data())->bytenr;
    const Chunk* c = map_.find(bytenr);
    if (c && (c->type & BLOCK_GROUP_RAID56_MASK)) {
        if (block.size() != x_.ns)
            return make_error(Errc::invalid_argument, "block of {} bytes, nodesize is {}", block.size(), x_.ns);
        block_writer_.finish(block);
        return put_raid56(*c, bytenr, block);
    }
    return block_writer_.add(std::move(block));
}

Status MkfsWriter::write_at(uint64_t devid, uint64_t physical, std::span<const uint8_t> data) {
    if (devid == 0 || devid > x_.devices.size() || !x_.device(devid).dev)
        return make_error(Errc::invalid_argument, "write to device {} that is not open", devid);
    BTK_TRY(x_.device(devid).dev->write(physical, data));
    extra_written_ += data.size();
    ++extra_calls_;
    return {};
}

Status MkfsWriter::write_data(uint64_t logical, std::span<const uint8_t> data) {
    while (!data.empty()) {
        const Chunk* c = map_.find(logical);
        if (!c) return make_error(Errc::invalid_argument, "data at {} is outside every chunk", logical);
        const size_t n = size_t(std::min<uint64_t>(data.size(), c->logical + c->length - logical));
        if (c->type & BLOCK_GROUP_RAID56_MASK) {
            BTK_TRY(put_raid56(*c, logical, data.first(n)));
        } else {
            BTK_ASSIGN(auto ranges, map_.map_all_copies(logical, n));
            // Copies come one after the other, each covering the range in order.
            size_t pos = 0;
            for (const auto& r : ranges) {
                if (pos >= n) pos = 0;
                BTK_TRY(write_at(r.devid, r.physical, data.subspan(pos, size_t(r.length))));
                pos += size_t(r.length);
            }
        }
        logical += n;
        data = data.subspan(n);
    }
    return {};
}

Status MkfsWriter::put_raid56(const Chunk& c, uint64_t logical, std::span<const uint8_t> data) {
    const uint64_t ds = uint64_t(c.data_stripes());
    while (!data.empty()) {
        const uint64_t off = logical - c.logical;
        const uint64_t nr = off / STRIPE_LEN, in = off % STRIPE_LEN;
        const size_t n = size_t(std::min<uint64_t>(data.size(), STRIPE_LEN - in));
        auto& row = rows_[{c.logical, nr / ds}];
        if (row.empty()) row.assign(size_t(ds * STRIPE_LEN), 0);
        std::memcpy(row.data() + (nr % ds) * STRIPE_LEN + in, data.data(), n);
        logical += n;
        data = data.subspan(n);
    }
    return {};
}

Status MkfsWriter::flush() {
    std::map<uint64_t, Device*> devs;
    for (const auto& d : x_.devices)
        if (d.dev) devs[d.devid] = d.dev.get();
    block_writer_.set_devices(devs);
    BTK_TRY(block_writer_.flush());
    std::vector<uint8_t> p(STRIPE_LEN), q(STRIPE_LEN);
    for (const auto& [key, row] : rows_) {
        const Chunk* c = map_.find(key.first);
        if (!c) return make_error(Errc::invalid_argument, "internal error: no chunk at {}", key.first);
        const uint64_t r = key.second, n = c->num_stripes, ds = uint64_t(c->data_stripes());
        std::fill(p.begin(), p.end(), 0);
        std::fill(q.begin(), q.end(), 0);
        // Q = sum of g^j * D_j over GF(2^8) (polynomial 0x11d, g = 2), by
        // Horner's rule from the last data stripe down.
        for (uint64_t j = ds; j-- > 0;) {
            const uint8_t* d = row.data() + j * STRIPE_LEN;
            for (size_t k = 0; k < STRIPE_LEN; ++k) {
                p[k] ^= d[k];
                const uint8_t qk = q[k];
                q[k] = uint8_t((qk << 1) ^ ((qk & 0x80) ? 0x1d : 0)) ^ d[k];
            }
        }
        auto put = [&](uint64_t idx, std::span<const uint8_t> b) {
            const auto& s = c->stripes[size_t(idx % n)];
            return write_at(s.devid, s.offset + r * STRIPE_LEN, b);
        };
        for (uint64_t j = 0; j < ds; ++j)
            BTK_TRY(put(j + r, std::span(row).subspan(size_t(j * STRIPE_LEN), STRIPE_LEN)));
        BTK_TRY(put(ds + r, p));
        if (c->nparity() == 2) BTK_TRY(put(ds + 1 + r, q));
    }
    rows_.clear();
    return {};
}

}  // namespace btk
