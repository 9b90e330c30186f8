#include "mkfs.h"

#include "csum.h"
#include "format.h"
#include "mkfs_layout.h"
#include "mkfs_rootdir.h"
#include "super.h"

#include <fmt/ranges.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <sstream>

namespace btk {

using namespace format;

namespace {

constexpr uint64_t GEN = MKFS_GEN;

Error bad(std::string msg) { return Error{Errc::invalid_argument, std::move(msg)}; }

// ---------------------------------------------------------------------------
// Features

enum class FeatureKind { incompat, compat_ro, quota };
struct Feature {
    const char* name;
    FeatureKind kind;
    uint64_t bits;
    bool def;
    bool runtime;       // listed under "Runtime features" (mkfs.btrfs -R)
    const char* desc;
    const char* versions;  // kernel versions, as mkfs.btrfs lists them
};
const Feature FEATURES[] = {
    {"mixed-bg", FeatureKind::incompat, FEATURE_INCOMPAT_MIXED_GROUPS, false, false,
     "mixed data and metadata block groups", "compat=2.6.37, safe=2.6.37"},
    {"extref", FeatureKind::incompat, FEATURE_INCOMPAT_EXTENDED_IREF, true, false,
     "increased hardlink limit per file to 65536", "compat=3.7, safe=3.12, default=3.12"},
    {"raid56", FeatureKind::incompat, FEATURE_INCOMPAT_RAID56, false, false, "raid56 extended format",
     "compat=3.9"},
    {"skinny-metadata", FeatureKind::incompat, FEATURE_INCOMPAT_SKINNY_METADATA, true, false,
     "reduced-size metadata extent refs", "compat=3.10, safe=3.18, default=3.18"},
    {"no-holes", FeatureKind::incompat, FEATURE_INCOMPAT_NO_HOLES, true, false,
     "no explicit hole extents for files", "compat=3.14, safe=4.0, default=5.15"},
    {"raid1c34", FeatureKind::incompat, FEATURE_INCOMPAT_RAID1C34, false, false, "RAID1 with 3 or 4 copies",
     "compat=5.5"},
    {"block-group-tree", FeatureKind::compat_ro, FEATURE_COMPAT_RO_BLOCK_GROUP_TREE, false, false,
     "block group tree to reduce mount time", "compat=6.1"},
    {"squota", FeatureKind::incompat, FEATURE_INCOMPAT_SIMPLE_QUOTA, false, false,
     "squota support (simple accounting qgroups)", "compat=6.7"},
    {"quota", FeatureKind::quota, 0, false, true, "quota support (qgroups)", "compat=3.4"},
    {"free-space-tree", FeatureKind::compat_ro,
     FEATURE_COMPAT_RO_FREE_SPACE_TREE | FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID, true, true,
     "free space tree (space_cache=v2)", "compat=4.5, safe=4.9, default=5.15"},
};

const Feature* find_feature(std::string_view n) {
    if (n == "fst") n = "free-space-tree";
    if (n == "mixed") n = "mixed-bg";
    if (n == "bgt") n = "block-group-tree";
    for (const auto& f : FEATURES)
        if (n == f.name) return &f;
    return nullptr;
}

bool feature_on(const Feature& f, uint64_t incompat, uint64_t compat_ro, bool quota) {
    switch (f.kind) {
        case FeatureKind::incompat: return incompat & f.bits;
        case FeatureKind::compat_ro: return compat_ro & f.bits;
        case FeatureKind::quota: return quota;
    }
    return false;
}

void random_bytes(uint8_t* out, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t r = getrandom(out + done, n - done, 0);
        if (r > 0) done += size_t(r);
    }
}
void make_uuid_v4(uint8_t u[16]) {
    u[6] = uint8_t((u[6] & 0x0f) | 0x40);
    u[8] = uint8_t((u[8] & 0x3f) | 0x80);
}
void random_uuid(uint8_t u[16]) {
    random_bytes(u, 16);
    make_uuid_v4(u);
}
// A uuid derived from another (reproducible output with -U).
void derived_uuid(const uint8_t from[16], std::string_view what, uint8_t u[16]) {
    std::vector<uint8_t> in(16 + what.size());
    std::memcpy(in.data(), from, 16);
    std::memcpy(in.data() + 16, what.data(), what.size());
    uint8_t h[32];
    csum_compute(CSUM_TYPE_SHA256, in, h);
    std::memcpy(u, h, 16);
    make_uuid_v4(u);
}

std::string human(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = double(b);
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{}B", b) : fmt::format("{:.2f}{}", v, units[u]);
}

}  // namespace

// ---------------------------------------------------------------------------

Result<uint64_t> parse_size_arg(const std::string& s) {
    if (s.empty() || !isdigit(static_cast<unsigned char>(s[0])))
        return bad(fmt::format("invalid size '{}'", s));
    size_t pos = 0;
    unsigned long long v = 0;
    try {
        v = std::stoull(s, &pos, 10);
    } catch (...) {
        return bad(fmt::format("invalid size '{}'", s));
    }
    std::string suf = s.substr(pos);
    int shift = 0;
    if (!suf.empty()) {
        const char c = char(tolower(static_cast<unsigned char>(suf[0])));
        const std::string_view units = "kmgtpe";
        auto i = units.find(c);
        if (i == std::string_view::npos) return bad(fmt::format("invalid size '{}'", s));
        shift = 10 * int(i + 1);
        std::string rest = suf.substr(1);
        if (!(rest.empty() || rest == "b" || rest == "B" || rest == "iB" || rest == "ib"))
            return bad(fmt::format("invalid size '{}'", s));
    }
    if (shift && v > (~0ULL >> shift)) return bad(fmt::format("size '{}' too large", s));
    return uint64_t(v) << shift;
}

bool parse_uuid(const std::string& s, uint8_t out[16]) {
    if (s.size() != 36) return false;
    int n = 0;
    for (size_t i = 0; i < 36; ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
            continue;
        }
        if (!isxdigit(static_cast<unsigned char>(s[i])) || !isxdigit(static_cast<unsigned char>(s[i + 1])))
            return false;
        out[n++] = uint8_t(std::stoi(s.substr(i, 2), nullptr, 16));
        ++i;
    }
    return n == 16;
}

std::string format_uuid(const uint8_t u[16]) {
    std::string s;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += fmt::format("{:02x}", u[i]);
    }
    return s;
}


namespace {

// --- step: validate the options (sizes, checksum, features, profiles, ids)
Status validate_options(const MkfsOptions& o, MkfsLayout& x) {
    if (o.devices.empty()) return bad("no device given");
    const size_t ndev = o.devices.size();
    x.ss = o.sectorsize ? o.sectorsize : 4096;
    if (!std::has_single_bit(x.ss) || x.ss < 4096 || x.ss > 65536)
        return bad(fmt::format("invalid sectorsize {}: must be a power of two from 4096 to 65536", x.ss));
    const uint32_t page = uint32_t(sysconf(_SC_PAGESIZE));
    x.ns = o.nodesize ? o.nodesize : std::max<uint32_t>(16384, page);
    if (!std::has_single_bit(x.ns) || x.ns < x.ss || x.ns > MAX_METADATA_BLOCKSIZE)
        return bad(fmt::format("invalid nodesize {}: must be a power of two from sectorsize ({}) to 65536",
                               x.ns, x.ss));

    static const std::pair<const char*, uint16_t> csums[] = {
        {"crc32c", CSUM_TYPE_CRC32}, {"xxhash", CSUM_TYPE_XXHASH}, {"xxhash64", CSUM_TYPE_XXHASH},
        {"sha256", CSUM_TYPE_SHA256}, {"blake2", CSUM_TYPE_BLAKE2}, {"blake2b", CSUM_TYPE_BLAKE2}};
    bool csum_found = false;
    for (auto [n, t] : csums)
        if (o.csum == n) {
            x.csum_type = t;
            csum_found = true;
        }
    if (!csum_found) return bad(fmt::format("unknown checksum type '{}' (crc32c, xxhash, sha256, blake2)", o.csum));

    // Features: defaults, then -O/-R in order.
    x.incompat = FEATURE_INCOMPAT_MIXED_BACKREF;
    for (const auto& f : FEATURES)
        if (f.def) (f.kind == FeatureKind::incompat ? x.incompat : x.compat_ro) |= f.bits;
    if (o.mixed) x.incompat |= FEATURE_INCOMPAT_MIXED_GROUPS;
    for (const auto& list : o.features) {
        std::stringstream ss(list);
        std::string tok;
        while (std::getline(ss, tok, ',')) {
            if (tok.empty()) continue;
            const bool neg = tok[0] == '^';
            std::string name = neg ? tok.substr(1) : tok;
            const Feature* f = find_feature(name);
            if (!f) return bad(fmt::format("unknown feature '{}' (see -O list-all)", name));
            if (f->kind == FeatureKind::quota) {
                x.quota = !neg;
                continue;
            }
            uint64_t& dst = f->kind == FeatureKind::incompat ? x.incompat : x.compat_ro;
            if (neg) dst &= ~f->bits;
            else dst |= f->bits;
        }
    }
    x.squota = x.incompat & FEATURE_INCOMPAT_SIMPLE_QUOTA;
    x.quota = x.quota || x.squota;
    x.mixed = x.incompat & FEATURE_INCOMPAT_MIXED_GROUPS;
    if (x.mixed && o.nodesize == 0) x.ns = x.ss;
    if (x.mixed && x.ns != x.ss)
        return bad(fmt::format("with mixed block groups nodesize ({}) must equal sectorsize ({})", x.ns, x.ss));
    if ((x.compat_ro & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE) && !(x.compat_ro & FEATURE_COMPAT_RO_FREE_SPACE_TREE))
        return bad("block-group-tree needs free-space-tree");

    // Profiles: metadata dup on one device, raid1 on more (single when mixed);
    // data single.
    auto profile = [&](const std::string& s, const char* what, uint64_t& out) -> Status {
        if (s.empty()) return {};
        const ProfileInfo* p = find_profile(s);
        if (!p)
            return bad(fmt::format("unknown {} profile '{}' (single, dup, raid0, raid1, raid10, raid1c3, raid1c4, "
                                   "raid5, raid6)", what, s));
        out = p->bits;
        return {};
    };
    x.mprof = x.mixed ? 0 : ndev == 1 ? BLOCK_GROUP_DUP : BLOCK_GROUP_RAID1;
    x.dprof = 0;
    BTK_TRY(profile(o.metadata_profile, "metadata", x.mprof));
    BTK_TRY(profile(o.data_profile, "data", x.dprof));
    if (x.mixed) {
        if (!o.metadata_profile.empty() && !o.data_profile.empty() && x.mprof != x.dprof)
            return bad("with mixed block groups data and metadata profiles must be the same");
        if (o.metadata_profile.empty()) x.mprof = x.dprof;
        x.dprof = x.mprof;
    }
    for (auto [prof, what] : {std::pair{x.mprof, "metadata"}, std::pair{x.dprof, "data"}}) {
        const ProfileInfo* p = profile_info(prof);
        if (ndev < size_t(p->min_devices))
            return bad(fmt::format("the {} profile {} needs at least {} devices, {} given", what, p->name,
                                   p->min_devices, ndev));
        if (prof & (BLOCK_GROUP_RAID1C3 | BLOCK_GROUP_RAID1C4)) x.incompat |= FEATURE_INCOMPAT_RAID1C34;
        if (prof & BLOCK_GROUP_RAID56_MASK) x.incompat |= FEATURE_INCOMPAT_RAID56;
    }

    if (o.label.size() >= LABEL_SIZE) return bad(fmt::format("label is longer than {} bytes", LABEL_SIZE - 1));
    if (o.label.find('\0') != std::string::npos) return bad("label contains a NUL byte");
    x.label = o.label;

    // Ids: with -U every other uuid but --device-uuid is derived from it.
    const bool fixed_fsid = !o.fsid.empty();
    if (fixed_fsid) {
        if (!parse_uuid(o.fsid, x.fsid)) return bad(fmt::format("invalid fsid '{}'", o.fsid));
        if (std::all_of(x.fsid, x.fsid + 16, [](uint8_t b) { return b == 0; }))
            return bad("the fsid must not be all zeroes");
        derived_uuid(x.fsid, "btk chunk tree uuid", x.chunk_uuid);
        derived_uuid(x.fsid, "btk fs tree uuid", x.fs_uuid);
    } else {
        random_uuid(x.fsid);
        random_uuid(x.chunk_uuid);
        random_uuid(x.fs_uuid);
    }
    uint8_t dev_uuid[16];
    if (!o.device_uuid.empty() && !parse_uuid(o.device_uuid, dev_uuid))
        return bad(fmt::format("invalid device uuid '{}'", o.device_uuid));

    if (o.time) {
        x.now_sec = *o.time;
    } else if (const char* e = getenv("SOURCE_DATE_EPOCH"); e && *e) {
        char* end = nullptr;
        errno = 0;
        long long v = strtoll(e, &end, 10);
        if (errno || *end || v < 0) return bad(fmt::format("invalid SOURCE_DATE_EPOCH '{}'", e));
        x.now_sec = v;
    } else {
        struct ::timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x.now_sec = ts.tv_sec;
        x.now_nsec = uint32_t(ts.tv_nsec);
    }
    return {};
}

void assign_device_uuids(const MkfsOptions& o, MkfsLayout& x) {
    for (auto& d : x.devices) {
        if (d.devid == 1 && !o.device_uuid.empty()) parse_uuid(o.device_uuid, d.uuid);
        else if (d.devid > 1 && !o.fsid.empty())
            derived_uuid(x.fsid, fmt::format("btk device uuid {}", d.devid), d.uuid);
        else random_uuid(d.uuid);
    }
}

// --- step: the superblock (per-device dev_item is filled by write_supers)
Result<super_block> make_super(const MkfsLayout& x, const std::map<uint64_t, std::pair<uint64_t, uint8_t>>& roots,
                               uint64_t used) {
    auto root = [&](uint64_t id) { return roots.count(id) ? roots.at(id) : std::pair<uint64_t, uint8_t>{0, 0}; };
    super_block sb{};
    std::memcpy(sb.fsid, x.fsid, 16);
    sb.flags = SUPER_FLAG_WRITTEN;
    sb.magic = SUPER_MAGIC;
    sb.generation = GEN;
    sb.root = root(ROOT_TREE_OBJECTID).first;
    sb.root_level = root(ROOT_TREE_OBJECTID).second;
    sb.chunk_root = root(CHUNK_TREE_OBJECTID).first;
    sb.chunk_root_level = root(CHUNK_TREE_OBJECTID).second;
    sb.chunk_root_generation = GEN;
    sb.total_bytes = x.total_bytes;
    sb.bytes_used = used;
    sb.root_dir_objectid = ROOT_TREE_DIR_OBJECTID;
    sb.num_devices = x.devices.size();
    sb.sectorsize = x.ss;
    sb.nodesize = x.ns;
    sb.leafsize = x.ns;
    sb.stripesize = x.ss;
    sb.compat_flags = 0;
    sb.compat_ro_flags = x.compat_ro;
    sb.incompat_flags = x.incompat;
    sb.csum_type = x.csum_type;
    std::memcpy(sb.label, x.label.data(), x.label.size());
    sb.cache_generation = (x.compat_ro & FEATURE_COMPAT_RO_FREE_SPACE_TREE) ? 0 : ~0ULL;
    sb.uuid_tree_generation = GEN;
    if (x.has(BLOCK_GROUP_TREE_OBJECTID)) {
        sb.block_group_root = root(BLOCK_GROUP_TREE_OBJECTID).first;
        sb.block_group_root_generation = GEN;
        sb.block_group_root_level = root(BLOCK_GROUP_TREE_OBJECTID).second;
    }
    uint32_t off = 0;
    for (const auto& c : x.chunks) {
        if (!(c.type & BLOCK_GROUP_SYSTEM)) continue;
        auto item = chunk_item_bytes(x, c);
        disk_key k{};
        Key{FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, c.logical}.to_disk(k);
        if (off + sizeof(k) + item.size() > SYSTEM_CHUNK_ARRAY_SIZE)
            return make_error(Errc::invalid_argument, "system chunk array overflow");
        std::memcpy(sb.sys_chunk_array + off, &k, sizeof(k));
        std::memcpy(sb.sys_chunk_array + off + sizeof(k), item.data(), item.size());
        off += uint32_t(sizeof(k) + item.size());
    }
    sb.sys_chunk_array_size = off;
    // Backup slot for generation g is (g - 1) % 4, as the kernel rotates them.
    root_backup& b = sb.super_roots[(GEN - 1) % NUM_BACKUP_ROOTS];
    auto set = [&](uint64_t id, le64& r, le64& gen, uint8_t& level) {
        r = root(id).first;
        gen = GEN;
        level = root(id).second;
    };
    set(ROOT_TREE_OBJECTID, b.tree_root, b.tree_root_gen, b.tree_root_level);
    set(CHUNK_TREE_OBJECTID, b.chunk_root, b.chunk_root_gen, b.chunk_root_level);
    set(EXTENT_TREE_OBJECTID, b.extent_root, b.extent_root_gen, b.extent_root_level);
    set(FS_TREE_OBJECTID, b.fs_root, b.fs_root_gen, b.fs_root_level);
    set(DEV_TREE_OBJECTID, b.dev_root, b.dev_root_gen, b.dev_root_level);
    set(CSUM_TREE_OBJECTID, b.csum_root, b.csum_root_gen, b.csum_root_level);
    b.total_bytes = x.total_bytes;
    b.bytes_used = used;
    b.num_devices = x.devices.size();
    sb.dev_item = make_dev_item(x, 1);
    super_update_csum(sb);
    BTK_TRY(check_super_sanity(sb));
    return sb;
}

struct DeviceRelease {
    MkfsLayout& x;
    ~DeviceRelease() { release_devices(x); }
};

// --- step: --rootdir and its options: the scan, before any device is touched
Result<std::shared_ptr<RootdirStep>> scan_rootdir(const MkfsOptions& o, MkfsLayout& x) {
    if (!o.root_owner.empty()) {
        BTK_ASSIGN(x.root_owner, parse_rootdir_owner(o.root_owner));
    }
    if (o.rootdir.empty()) {
        if (!o.compress.empty() || !o.subvols.empty() || !o.inode_flags.empty() || o.shrink)
            return bad("--compress, --subvol, --inode-flags and --shrink need --rootdir");
        return std::shared_ptr<RootdirStep>{};
    }
    RootdirOptions r;
    r.dir = o.rootdir;
    r.sectorsize = x.ss;
    r.nodesize = x.ns;
    r.csum_type = x.csum_type;
    if (!o.compress.empty()) BTK_TRY(parse_rootdir_compress(o.compress, r.compress, r.compress_level));
    r.no_holes = x.incompat & FEATURE_INCOMPAT_NO_HOLES;
    r.extref = x.incompat & FEATURE_INCOMPAT_EXTENDED_IREF;
    for (const auto& a : o.subvols) {
        BTK_ASSIGN(auto sv, parse_rootdir_subvol(a));
        r.subvols.push_back(std::move(sv));
    }
    for (const auto& a : o.inode_flags) {
        BTK_ASSIGN(auto f, parse_rootdir_inode_flags(a));
        r.inode_flags.push_back(std::move(f));
    }
    r.root_owner = x.root_owner;
    r.now_sec = x.now_sec;
    r.now_nsec = x.now_nsec;
    r.generation = GEN;
    // Subvolume uuids: derived from -U like the others (reproducible).
    const bool fixed = !o.fsid.empty();
    uint8_t fsid[16];
    std::memcpy(fsid, x.fsid, 16);
    r.make_uuid = [fixed, fsid](uint64_t id, uint8_t out[16]) {
        if (fixed) derived_uuid(fsid, fmt::format("btk subvolume uuid {}", id), out);
        else random_uuid(out);
    };
    return rootdir_step_scan(r, x, o.shrink);
}

}  // namespace

Result<MkfsResult> mkfs_run(const MkfsOptions& o) {
    MkfsLayout x;
    DeviceRelease release{x};
    BTK_TRY(validate_options(o, x));
    BTK_ASSIGN(std::shared_ptr<RootdirStep> rootdir, scan_rootdir(o, x));
    BTK_TRY(probe_devices(x, o.devices, o.byte_count, o.force));
    assign_device_uuids(o, x);
    x.total_bytes = 0;
    for (const auto& d : x.devices) x.total_bytes += d.size;

    BTK_TRY(plan_chunks(x));
    init_trees(x);
    MkfsContentHook rootdir_hook;
    const MkfsContentHook* content = o.content;
    if (rootdir) {
        rootdir_hook = rootdir_step_hook(rootdir);
        content = &rootdir_hook;
    }
    if (content && content->plan) BTK_TRY(content->plan(x));

    BTK_ASSIGN(ChunkMap cmap, chunk_map(x));
    WriteContext wc;
    wc.nodesize = x.ns;
    wc.sectorsize = x.ss;
    wc.csum_type = x.csum_type;
    std::memcpy(wc.fsid, x.fsid, 16);
    std::memcpy(wc.chunk_tree_uuid, x.chunk_uuid, 16);
    wc.generation = GEN;
    wc.chunks = &cmap;
    MkfsWriter writer(x, cmap, wc);
    // A content step that writes before the layout (its trees and data are
    // placed as it goes) needs the devices open first.
    const bool early = content && content->write_first;
    if (early) {
        BTK_TRY(open_devices_for_write(x, o.nodiscard));
        if (content->write) BTK_TRY(content->write(x, writer));
    }
    BTK_ASSIGN(int iterations, solve_layout(x));
    if (rootdir) BTK_TRY(rootdir_step_shrink(*rootdir, x));

    // Build every block in memory.
    std::map<uint64_t, std::pair<uint64_t, uint8_t>> roots;  // tree -> (bytenr, level)
    uint32_t nblocks = 0;
    for (auto& [id, t] : x.trees) {
        if (t.prebuilt) {  // written by the content step
            roots[id] = {t.addrs.back(), t.plan.root_level};
            nblocks += uint32_t(t.addrs.size());
            continue;
        }
        size_t next = 0;
        auto alloc = [&](uint8_t level) -> Result<uint64_t> {
            if (next >= t.addrs.size() || t.levels[next] != level)
                return make_error(Errc::corruption, "internal error: tree {} block {} not planned", id, next);
            return t.addrs[next++];
        };
        auto sink = [&](std::vector<uint8_t>&& b) { return writer.add_tree_block(std::move(b)); };
        BTK_ASSIGN(BuiltTree bt, build_tree(build_opts(x, id), t.items, alloc, sink));
        if (next != t.addrs.size() || bt.root != t.addrs.back())
            return make_error(Errc::corruption, "internal error: tree {} built differently than planned", id);
        roots[id] = {bt.root, bt.level};
        nblocks += uint32_t(bt.blocks.size());
    }
    uint64_t used = 0;
    for (const auto& c : x.chunks) used += c.used;
    BTK_ASSIGN(super_block sb, make_super(x, roots, used));

    // --- write: create/open, discard, clear old signatures, content, blocks, supers.
    if (!early) {
        BTK_TRY(open_devices_for_write(x, o.nodiscard));
        if (content && content->write) BTK_TRY(content->write(x, writer));
    }
    BTK_TRY(writer.flush());
    std::map<uint64_t, dev_item> dev_items;
    std::map<uint64_t, Device*> devs;
    for (const auto& d : x.devices) {
        dev_items[d.devid] = make_dev_item(x, d.devid);
        devs[d.devid] = d.dev.get();
    }
    BTK_TRY(write_supers(sb, dev_items, devs));
    if (rootdir) BTK_TRY(rootdir_step_finish(*rootdir, x));

    MkfsResult r;
    r.fsid = format_uuid(x.fsid);
    r.total_bytes = x.total_bytes;
    r.bytes_used = used;
    r.nodesize = x.ns;
    r.sectorsize = x.ss;
    r.csum_type = x.csum_type;
    r.incompat = x.incompat;
    r.compat_ro = x.compat_ro;
    r.quota = x.quota;
    for (const auto& c : x.chunks) {
        MkfsChunkInfo ci{c.logical, c.length, c.type, c.used, {}, {}};
        for (const auto& s : c.stripes) {
            ci.physical.push_back(s.physical);
            ci.devids.push_back(s.devid);
        }
        r.chunks.push_back(std::move(ci));
    }
    for (const auto& d : x.devices) r.devices.push_back({d.path, d.size});
    r.tree_blocks = nblocks;
    r.layout_iterations = iterations;
    r.write_calls = writer.write_calls();
    r.bytes_written = writer.bytes_written();
    return r;
}

namespace {

void list_features(FILE* out) {
    for (bool runtime : {false, true}) {
        fmt::print(out, "{} features available:\n", runtime ? "Runtime" : "Filesystem");
        for (const auto& f : FEATURES)
            if (f.runtime == runtime) fmt::print(out, "{:<20}- {} ({})\n", f.name, f.desc, f.versions);
    }
}

void print_summary(const MkfsOptions& o, const MkfsResult& r, FILE* out) {
    fmt::print(out, "Label:              {}\n", o.label.empty() ? "(null)" : o.label);
    fmt::print(out, "UUID:               {}\n", r.fsid);
    fmt::print(out, "Node size:          {}\n", r.nodesize);
    fmt::print(out, "Sector size:        {}\n", r.sectorsize);
    fmt::print(out, "Filesystem size:    {}\n", human(r.total_bytes));
    fmt::print(out, "Block group profiles:\n");
    // Data, metadata, system (as mkfs.btrfs), summed over chunks of a kind.
    for (uint64_t kind : {BLOCK_GROUP_DATA, BLOCK_GROUP_DATA | BLOCK_GROUP_METADATA, BLOCK_GROUP_METADATA,
                          BLOCK_GROUP_SYSTEM}) {
        uint64_t total = 0, prof = 0;
        for (const auto& c : r.chunks)
            if ((c.type & BLOCK_GROUP_TYPE_MASK) == kind) {
                total += c.length;
                prof = c.type & BLOCK_GROUP_PROFILE_MASK;
            }
        if (!total) continue;
        const char* t = kind == BLOCK_GROUP_DATA                          ? "Data:"
                        : kind == (BLOCK_GROUP_DATA | BLOCK_GROUP_METADATA) ? "Data+Metadata:"
                        : kind == BLOCK_GROUP_METADATA                      ? "Metadata:"
                                                                            : "System:";
        fmt::print(out, "  {:<16}{:<10}{:>12}\n", t, profile_name(prof), human(total));
    }
    std::vector<std::string> feats;
    for (const auto& f : FEATURES)
        if (feature_on(f, r.incompat, r.compat_ro, r.quota)) feats.push_back(f.name);
    fmt::print(out, "Features:           {}\n", fmt::join(feats, ", "));
    fmt::print(out, "Checksum:           {}\n", csum_name(r.csum_type));
    fmt::print(out, "Number of devices:  {}\n", r.devices.size());
    fmt::print(out, "Devices:\n   ID        SIZE  PATH\n");
    for (size_t i = 0; i < r.devices.size(); ++i)
        fmt::print(out, "  {:>3}  {:>10}  {}\n", i + 1, human(r.devices[i].second), r.devices[i].first);
    if (!o.verbose) return;
    fmt::print(out, "Chunks:\n  {:>14}  {:>12}  {:<24} {}\n", "LOGICAL", "LENGTH", "TYPE", "STRIPES (devid:physical)");
    for (const auto& c : r.chunks) {
        std::vector<std::string> st;
        for (size_t i = 0; i < c.physical.size(); ++i) st.push_back(fmt::format("{}:{}", c.devids[i], c.physical[i]));
        const char* kind = (c.type & BLOCK_GROUP_DATA) && (c.type & BLOCK_GROUP_METADATA) ? "DATA+METADATA"
                           : (c.type & BLOCK_GROUP_DATA)                                 ? "DATA"
                           : (c.type & BLOCK_GROUP_METADATA)                             ? "METADATA"
                                                                                         : "SYSTEM";
        fmt::print(out, "  {:>14}  {:>12}  {:<24} {}\n", c.logical, c.length,
                   fmt::format("{}|{}", kind, profile_name(c.type)), fmt::join(st, " "));
    }
    fmt::print(out, "Used:               {} bytes in {} tree blocks ({} layout iterations)\n", r.bytes_used,
               r.tree_blocks, r.layout_iterations);
}

}  // namespace

int mkfs(const MkfsOptions& o, FILE* out, FILE* err) {
    for (const auto& l : o.features)
        if (l == "list-all" || l == "list") {
            list_features(out);
            return 0;
        }
    auto r = mkfs_run(o);
    if (!r) {
        fmt::print(err, "btk mkfs: {}\n", r.error().message);
        return 1;
    }
    if (!o.quiet) print_summary(o, *r, out);
    return 0;
}

}  // namespace btk
