#include "mkfs.h"

#include "chunk.h"
#include "csum.h"
#include "device.h"
#include "format.h"
#include "key.h"
#include "super.h"
#include "write_block.h"
#include "write_tree.h"

#include <blkid/blkid.h>
#include <fmt/ranges.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

namespace btk {

using namespace format;

namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr uint64_t RESERVED = 1 * MiB;  // start of the device left alone
constexpr uint64_t GEN = 1;             // generation of everything mkfs writes

Error bad(std::string msg) { return Error{Errc::invalid_argument, std::move(msg)}; }

template <typename T>
std::vector<uint8_t> bytes_of(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    return std::vector<uint8_t>(p, p + sizeof(T));
}

// ---------------------------------------------------------------------------
// Features

struct Feature {
    const char* name;
    bool incompat;  // else compat_ro
    uint64_t bits;
    bool def;
    const char* desc;
};
const Feature FEATURES[] = {
    {"mixed-bg", true, FEATURE_INCOMPAT_MIXED_GROUPS, false, "mixed data and metadata block groups"},
    {"extref", true, FEATURE_INCOMPAT_EXTENDED_IREF, true, "increased hardlink limit per file to 65536"},
    {"skinny-metadata", true, FEATURE_INCOMPAT_SKINNY_METADATA, true, "reduced-size metadata extent refs"},
    {"no-holes", true, FEATURE_INCOMPAT_NO_HOLES, true, "no explicit hole extents for files"},
    {"free-space-tree", false, FEATURE_COMPAT_RO_FREE_SPACE_TREE | FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID,
     true, "free space tree (space_cache=v2)"},
};

const Feature* find_feature(std::string_view n) {
    if (n == "fst") n = "free-space-tree";
    if (n == "mixed") n = "mixed-bg";
    for (const auto& f : FEATURES)
        if (n == f.name) return &f;
    return nullptr;
}

// ---------------------------------------------------------------------------
// Layout

struct ChunkPlan {
    uint64_t type = 0;  // block group type | profile
    uint64_t logical = 0;
    uint64_t length = 0;                // logical length == stripe size (single, DUP)
    std::vector<uint64_t> physical;     // one per stripe, devid 1
    std::vector<std::pair<uint64_t, uint64_t>> excluded;  // logical ranges over superblocks
    uint64_t used = 0;
};

uint64_t round_down(uint64_t v, uint64_t a) { return v / a * a; }

// Logical ranges of a chunk whose physical copies hold a superblock mirror
// (each the 64 KiB stripe holding it, as the kernel excludes it).
void compute_excluded(ChunkPlan& c, uint64_t dev_bytes) {
    for (int m = 0; m < SUPER_MIRROR_MAX; ++m) {
        const uint64_t off = super_offset(m);
        if (off + SUPER_INFO_SIZE > dev_bytes) break;
        for (uint64_t p : c.physical) {
            if (off + SUPER_INFO_SIZE <= p || off >= p + c.length) continue;
            const uint64_t l = c.logical + round_down(off - std::min(off, p), STRIPE_LEN);
            c.excluded.push_back({l, l + STRIPE_LEN});
        }
    }
    std::sort(c.excluded.begin(), c.excluded.end());
}

// Hands out consecutive nodesize blocks from a chunk, skipping superblocks.
struct ChunkAlloc {
    const ChunkPlan* c;
    uint32_t ns;
    uint64_t cursor;
    Result<uint64_t> next() {
        for (;;) {
            bool moved = false;
            for (auto [s, e] : c->excluded)
                if (cursor < e && cursor + ns > s) {
                    cursor = e;
                    moved = true;
                }
            if (!moved) break;
        }
        if (cursor + ns > c->logical + c->length)
            return make_error(Errc::invalid_argument, "metadata chunk at {} too small for the initial trees",
                              c->logical);
        uint64_t r = cursor;
        cursor += ns;
        return r;
    }
};

// Tree ids, in the order their blocks are placed.
constexpr uint64_t META_TREES[] = {ROOT_TREE_OBJECTID, EXTENT_TREE_OBJECTID, DEV_TREE_OBJECTID,
                                   FS_TREE_OBJECTID,   CSUM_TREE_OBJECTID,   UUID_TREE_OBJECTID,
                                   FREE_SPACE_TREE_OBJECTID, DATA_RELOC_TREE_OBJECTID};

struct TreeState {
    TreePlan plan;                  // current guess of the block counts
    std::vector<uint64_t> addrs;    // build order
    std::vector<uint8_t> levels;    // per address
    std::vector<TreeItem> items;
};

struct Ctx {
    uint32_t ns = 0, ss = 0;
    uint16_t csum_type = 0;
    uint64_t incompat = 0, compat_ro = 0;
    uint64_t total_bytes = 0;
    uint8_t fsid[16]{}, dev_uuid[16]{}, chunk_uuid[16]{}, fs_uuid[16]{};
    std::string label;
    int64_t now_sec = 0;
    uint32_t now_nsec = 0;
    std::vector<ChunkPlan> chunks;  // sys first
    size_t meta_chunk = 1;          // index of the chunk holding the non-chunk trees
    std::map<uint64_t, TreeState> trees;
    std::map<uint64_t, Key> first_keys;  // by block address, once known
    bool has(uint64_t tree) const { return trees.count(tree) != 0; }
};

std::vector<uint8_t> chunk_item_bytes(const Ctx& x, const ChunkPlan& c) {
    std::vector<uint8_t> b(chunk_item_size(uint32_t(c.physical.size())), 0);
    auto* ci = reinterpret_cast<chunk*>(b.data());
    ci->length = c.length;
    ci->owner = EXTENT_TREE_OBJECTID;
    ci->stripe_len = STRIPE_LEN;
    ci->type = c.type;
    ci->io_align = uint32_t(STRIPE_LEN);
    ci->io_width = uint32_t(STRIPE_LEN);
    ci->sector_size = x.ss;
    ci->num_stripes = uint16_t(c.physical.size());
    ci->sub_stripes = 1;
    auto* st = &ci->stripe;
    for (size_t i = 0; i < c.physical.size(); ++i) {
        st[i].devid = 1;
        st[i].offset = c.physical[i];
        std::memcpy(st[i].dev_uuid, x.dev_uuid, 16);
    }
    return b;
}

dev_item make_dev_item(const Ctx& x) {
    dev_item d{};
    d.devid = 1;
    d.total_bytes = x.total_bytes;
    uint64_t used = 0;
    for (const auto& c : x.chunks) used += c.length * c.physical.size();
    d.bytes_used = used;
    d.io_align = x.ss;
    d.io_width = x.ss;
    d.sector_size = x.ss;
    std::memcpy(d.uuid, x.dev_uuid, 16);
    std::memcpy(d.fsid, x.fsid, 16);
    return d;
}

inode_item dir_inode(const Ctx& x, uint64_t nbytes) {
    inode_item i{};
    i.generation = GEN;
    i.transid = GEN;
    i.nbytes = nbytes;
    i.nlink = 1;
    i.mode = 040755;
    for (timespec* t : {&i.atime, &i.ctime, &i.mtime, &i.otime}) {
        t->sec = uint64_t(x.now_sec);
        t->nsec = x.now_nsec;
    }
    return i;
}

std::vector<uint8_t> inode_ref_bytes(uint64_t index, std::string_view name) {
    std::vector<uint8_t> b(sizeof(inode_ref) + name.size(), 0);
    auto* r = reinterpret_cast<inode_ref*>(b.data());
    r->index = index;
    r->name_len = uint16_t(name.size());
    std::memcpy(b.data() + sizeof(inode_ref), name.data(), name.size());
    return b;
}

root_item make_root_item(const Ctx& x, uint64_t tree) {
    const TreeState& t = x.trees.at(tree);
    root_item r{};
    r.inode.generation = 1;
    r.inode.size = 3;
    r.inode.nlink = 1;
    r.inode.nbytes = x.ns;
    r.inode.mode = 040755;
    r.generation = GEN;
    r.root_dirid = (tree == FS_TREE_OBJECTID || tree == DATA_RELOC_TREE_OBJECTID) ? FIRST_FREE_OBJECTID : 0;
    r.bytenr = t.addrs.back();
    r.bytes_used = uint64_t(x.ns) * t.addrs.size();
    r.refs = 1;
    r.level = t.plan.root_level;
    r.generation_v2 = GEN;
    if (tree == FS_TREE_OBJECTID) {
        std::memcpy(r.uuid, x.fs_uuid, 16);
        r.ctime.sec = uint64_t(x.now_sec);
        r.ctime.nsec = x.now_nsec;
        r.otime = r.ctime;
    }
    return r;
}

// Assigns addresses for the current plans.
Status assign_addresses(Ctx& x) {
    ChunkAlloc sys{&x.chunks[0], x.ns, x.chunks[0].logical};
    ChunkAlloc meta{&x.chunks[x.meta_chunk], x.ns, x.chunks[x.meta_chunk].logical};
    for (auto& [id, t] : x.trees) {
        t.addrs.clear();
        t.levels.clear();
    }
    auto fill = [&](uint64_t id, ChunkAlloc& a) -> Status {
        TreeState& t = x.trees.at(id);
        for (size_t l = 0; l < t.plan.per_level.size(); ++l)
            for (uint32_t i = 0; i < t.plan.per_level[l]; ++i) {
                BTK_ASSIGN(uint64_t b, a.next());
                t.addrs.push_back(b);
                t.levels.push_back(uint8_t(l));
            }
        return {};
    };
    BTK_TRY(fill(CHUNK_TREE_OBJECTID, sys));
    for (uint64_t id : META_TREES)
        if (x.has(id)) BTK_TRY(fill(id, meta));
    for (auto& c : x.chunks) c.used = 0;
    for (auto& [id, t] : x.trees)
        for (uint64_t a : t.addrs)
            for (auto& c : x.chunks)
                if (a >= c.logical && a < c.logical + c.length) c.used += x.ns;
    return {};
}

// Fills every tree's items from the current addresses.
void make_items(Ctx& x) {
    for (auto& [id, t] : x.trees) t.items.clear();
    auto add = [&](uint64_t tree, Key k, std::vector<uint8_t> d) {
        x.trees.at(tree).items.push_back({k, std::move(d)});
    };

    // Chunk tree: the device, then the chunks.
    add(CHUNK_TREE_OBJECTID, {DEV_ITEMS_OBJECTID, DEV_ITEM_KEY, 1}, bytes_of(make_dev_item(x)));
    for (const auto& c : x.chunks)
        add(CHUNK_TREE_OBJECTID, {FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, c.logical}, chunk_item_bytes(x, c));

    // Dev tree: one extent per stripe, in physical order.
    std::map<uint64_t, const ChunkPlan*> by_phys;
    for (const auto& c : x.chunks)
        for (uint64_t p : c.physical) by_phys[p] = &c;
    for (auto [p, c] : by_phys) {
        dev_extent de{};
        de.chunk_tree = CHUNK_TREE_OBJECTID;
        de.chunk_objectid = FIRST_CHUNK_TREE_OBJECTID;
        de.chunk_offset = c->logical;
        de.length = c->length;
        std::memcpy(de.chunk_tree_uuid, x.chunk_uuid, 16);
        add(DEV_TREE_OBJECTID, {1, DEV_EXTENT_KEY, p}, bytes_of(de));
    }

    // Extent tree: block groups and one metadata item per tree block.
    std::map<Key, std::vector<uint8_t>> ext;
    for (const auto& c : x.chunks) {
        block_group_item bg{};
        bg.used = c.used;
        bg.chunk_objectid = FIRST_CHUNK_TREE_OBJECTID;
        bg.flags = c.type;
        ext[{c.logical, BLOCK_GROUP_ITEM_KEY, c.length}] = bytes_of(bg);
    }
    const bool skinny = x.incompat & FEATURE_INCOMPAT_SKINNY_METADATA;
    for (const auto& [id, t] : x.trees)
        for (size_t i = 0; i < t.addrs.size(); ++i) {
            extent_item ei{};
            ei.refs = 1;
            ei.generation = GEN;
            ei.flags = EXTENT_FLAG_TREE_BLOCK;
            auto b = bytes_of(ei);
            Key k{t.addrs[i], METADATA_ITEM_KEY, t.levels[i]};
            if (!skinny) {
                tree_block_info tbi{};
                if (auto fk = x.first_keys.find(t.addrs[i]); fk != x.first_keys.end())
                    fk->second.to_disk(tbi.key);
                tbi.level = t.levels[i];
                auto tb = bytes_of(tbi);
                b.insert(b.end(), tb.begin(), tb.end());
                k = {t.addrs[i], EXTENT_ITEM_KEY, x.ns};
            }
            extent_inline_ref ir{};
            ir.type = TREE_BLOCK_REF_KEY;
            ir.offset = id;
            auto rb = bytes_of(ir);
            b.insert(b.end(), rb.begin(), rb.end());
            ext[k] = std::move(b);
        }
    for (auto& [k, d] : ext) add(EXTENT_TREE_OBJECTID, k, std::move(d));

    // Free space tree: what is left of each block group.
    if (x.has(FREE_SPACE_TREE_OBJECTID)) {
        std::vector<uint64_t> all;
        for (const auto& [id, t] : x.trees) all.insert(all.end(), t.addrs.begin(), t.addrs.end());
        std::sort(all.begin(), all.end());
        for (const auto& c : x.chunks) {
            std::vector<std::pair<uint64_t, uint64_t>> free;
            uint64_t cur = c.logical;
            const uint64_t end = c.logical + c.length;
            for (uint64_t a : all) {
                if (a < c.logical || a >= end) continue;
                if (a > cur) free.push_back({cur, a - cur});
                cur = a + x.ns;
            }
            if (cur < end) free.push_back({cur, end - cur});
            free_space_info fi{};
            fi.extent_count = uint32_t(free.size());
            fi.flags = 0;
            add(FREE_SPACE_TREE_OBJECTID, {c.logical, FREE_SPACE_INFO_KEY, c.length}, bytes_of(fi));
            for (auto [s, l] : free) add(FREE_SPACE_TREE_OBJECTID, {s, FREE_SPACE_EXTENT_KEY, l}, {});
        }
    }

    // Subvolume root directories.
    for (uint64_t id : {FS_TREE_OBJECTID, DATA_RELOC_TREE_OBJECTID}) {
        add(id, {FIRST_FREE_OBJECTID, INODE_ITEM_KEY, 0}, bytes_of(dir_inode(x, id == FS_TREE_OBJECTID ? x.ns : 0)));
        add(id, {FIRST_FREE_OBJECTID, INODE_REF_KEY, FIRST_FREE_OBJECTID}, inode_ref_bytes(0, ".."));
    }

    // UUID tree: the top subvolume.
    {
        std::vector<uint8_t> d(8);
        store_le64(d.data(), FS_TREE_OBJECTID);
        add(UUID_TREE_OBJECTID, {load_le64(x.fs_uuid), UUID_KEY_SUBVOL, load_le64(x.fs_uuid + 8)}, d);
    }

    // Root tree.
    std::map<Key, std::vector<uint8_t>> root;
    for (uint64_t id : {EXTENT_TREE_OBJECTID, DEV_TREE_OBJECTID, FS_TREE_OBJECTID, CSUM_TREE_OBJECTID,
                        UUID_TREE_OBJECTID, FREE_SPACE_TREE_OBJECTID, DATA_RELOC_TREE_OBJECTID})
        if (x.has(id)) root[{id, ROOT_ITEM_KEY, 0}] = bytes_of(make_root_item(x, id));
    root[{FS_TREE_OBJECTID, INODE_REF_KEY, ROOT_TREE_DIR_OBJECTID}] = inode_ref_bytes(0, "default");
    root[{ROOT_TREE_DIR_OBJECTID, INODE_ITEM_KEY, 0}] = bytes_of(dir_inode(x, x.ns));
    root[{ROOT_TREE_DIR_OBJECTID, INODE_REF_KEY, ROOT_TREE_DIR_OBJECTID}] = inode_ref_bytes(0, "..");
    {
        dir_item di{};
        Key{FS_TREE_OBJECTID, ROOT_ITEM_KEY, ~0ULL}.to_disk(di.location);
        di.transid = 0;
        di.data_len = 0;
        di.name_len = 7;
        di.type = FT_DIR;
        std::vector<uint8_t> b(sizeof(di) + 7);
        std::memcpy(b.data(), &di, sizeof(di));
        std::memcpy(b.data() + sizeof(di), "default", 7);
        root[{ROOT_TREE_DIR_OBJECTID, DIR_ITEM_KEY, name_hash("default")}] = std::move(b);
    }
    for (auto& [k, d] : root) add(ROOT_TREE_OBJECTID, k, std::move(d));
}

TreeBuildOptions build_opts(const Ctx& x, uint64_t id) {
    TreeBuildOptions o;
    o.nodesize = x.ns;
    o.owner = id;
    o.generation = GEN;
    o.fill_percent = 90;
    return o;
}

// Iterates addresses -> items -> block counts until the counts are stable.
Result<int> solve_layout(Ctx& x) {
    for (int iter = 1; iter <= 32; ++iter) {
        BTK_TRY(assign_addresses(x));
        make_items(x);
        bool stable = true;
        for (auto& [id, t] : x.trees) {
            BTK_ASSIGN(TreePlan p, plan_tree(build_opts(x, id), t.items));
            if (p.per_level != t.plan.per_level) {
                stable = false;
                t.plan = p;
            }
        }
        if (stable) return iter;
    }
    return make_error(Errc::invalid_argument, "the initial layout did not converge");
}

// ---------------------------------------------------------------------------
// Checks on the target

std::string read_first_line(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

// Block devices (major:minor) mounted, and mount sources.
struct Mounts {
    std::vector<std::pair<std::string, std::string>> entries;  // (maj:min, source)
};
Mounts read_mounts() {
    Mounts m;
    std::ifstream f("/proc/self/mountinfo");
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream is(line);
        std::string id, parent, majmin, tok;
        is >> id >> parent >> majmin;
        while (is >> tok && tok != "-") {
        }
        std::string fstype, source;
        is >> fstype >> source;
        m.entries.push_back({majmin, source});
    }
    return m;
}

bool rdev_mounted(const Mounts& m, dev_t rdev, std::string* where) {
    const std::string mm = fmt::format("{}:{}", major(rdev), minor(rdev));
    for (const auto& [majmin, source] : m.entries) {
        struct stat st;
        if (majmin == mm || (source.starts_with("/") && stat(source.c_str(), &st) == 0 &&
                             S_ISBLK(st.st_mode) && st.st_rdev == rdev)) {
            *where = source;
            return true;
        }
    }
    return false;
}

Status check_not_mounted(const std::string& path, const struct stat& st) {
    Mounts m = read_mounts();
    std::string where;
    if (S_ISBLK(st.st_mode)) {
        if (rdev_mounted(m, st.st_rdev, &where)) return bad(fmt::format("{} is mounted", path));
        return {};
    }
    // An image file: is a mounted loop device backed by it?
    for (int i = 0; i < 1024; ++i) {
        const std::string sys = fmt::format("/sys/block/loop{}", i);
        if (access(sys.c_str(), F_OK) != 0) continue;
        std::string back = read_first_line(sys + "/loop/backing_file");
        if (back.empty()) continue;
        struct stat bs;
        if (stat(back.c_str(), &bs) != 0 || bs.st_dev != st.st_dev || bs.st_ino != st.st_ino) continue;
        unsigned maj = 0, min = 0;
        if (sscanf(read_first_line(sys + "/dev").c_str(), "%u:%u", &maj, &min) != 2) continue;
        if (rdev_mounted(m, makedev(maj, min), &where))
            return bad(fmt::format("{} is mounted through /dev/loop{}", path, i));
    }
    return {};
}

Status check_no_signature(const std::string& path) {
    blkid_probe pr = blkid_new_probe_from_filename(path.c_str());
    if (!pr) return make_error(Errc::io, "cannot probe {} for existing filesystems: {}", path, std::strerror(errno));
    blkid_probe_enable_superblocks(pr, 1);
    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
    blkid_probe_enable_partitions(pr, 1);
    blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
    int rc = blkid_do_fullprobe(pr);
    std::string what;
    if (rc == 0) {
        const char* v = nullptr;
        if (blkid_probe_lookup_value(pr, "TYPE", &v, nullptr) == 0 && v)
            what = fmt::format("an existing filesystem ({})", v);
        else if (blkid_probe_lookup_value(pr, "PTTYPE", &v, nullptr) == 0 && v)
            what = fmt::format("a partition table ({})", v);
        else
            what = "an existing signature";
    } else if (rc == -2) {
        what = "several conflicting signatures";
    }
    blkid_free_probe(pr);
    if (rc == -1) return make_error(Errc::io, "cannot probe {} for existing filesystems", path);
    if (!what.empty()) return bad(fmt::format("{} appears to contain {}; use -f to overwrite", path, what));
    return {};
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

Status zero_range(Device& d, uint64_t off, uint64_t len) {
    if (len == 0) return {};
    if (!d.is_block_device() &&
        fallocate(d.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(off), off_t(len)) == 0)
        return {};
    std::vector<uint8_t> z(std::min<uint64_t>(len, 1 * MiB), 0);
    for (uint64_t done = 0; done < len;) {
        const uint64_t n = std::min<uint64_t>(z.size(), len - done);
        BTK_TRY(d.write(off + done, {z.data(), size_t(n)}));
        done += n;
    }
    return {};
}

std::string profile_lc(uint64_t type) {
    if (type & BLOCK_GROUP_DUP) return "DUP";
    return "single";
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

Result<MkfsResult> mkfs_run(const MkfsOptions& o) {
    Ctx x;
    // --- options
    if (o.devices.empty()) return bad("no device given");
    if (o.devices.size() > 1) return bad("more than one device is not supported yet");
    const std::string& path = o.devices[0];

    x.ss = o.sectorsize ? o.sectorsize : 4096;
    if (!std::has_single_bit(x.ss) || x.ss < 4096 || x.ss > 65536)
        return bad(fmt::format("invalid sectorsize {}: must be a power of two from 4096 to 65536", x.ss));
    const uint32_t page = uint32_t(sysconf(_SC_PAGESIZE));
    x.ns = o.nodesize ? o.nodesize : std::max<uint32_t>(16384, page);
    if (o.mixed && !o.nodesize) x.ns = x.ss;
    if (!std::has_single_bit(x.ns) || x.ns < x.ss || x.ns > MAX_METADATA_BLOCKSIZE)
        return bad(fmt::format("invalid nodesize {}: must be a power of two from sectorsize ({}) to 65536",
                               x.ns, x.ss));
    if (o.mixed && x.ns != x.ss)
        return bad(fmt::format("with mixed block groups nodesize ({}) must equal sectorsize ({})", x.ns, x.ss));

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

    // Features.
    x.incompat = FEATURE_INCOMPAT_MIXED_BACKREF;
    for (const auto& f : FEATURES)
        if (f.def) (f.incompat ? x.incompat : x.compat_ro) |= f.bits;
    if (o.mixed) x.incompat |= FEATURE_INCOMPAT_MIXED_GROUPS;
    for (const auto& list : o.features) {
        std::stringstream ss(list);
        std::string tok;
        while (std::getline(ss, tok, ',')) {
            if (tok.empty()) continue;
            bool neg = tok[0] == '^';
            std::string name = neg ? tok.substr(1) : tok;
            const Feature* f = find_feature(name);
            if (!f) return bad(fmt::format("unknown feature '{}' (see -O list-all)", name));
            uint64_t& dst = f->incompat ? x.incompat : x.compat_ro;
            if (neg) dst &= ~f->bits;
            else dst |= f->bits;
        }
    }
    const bool mixed = x.incompat & FEATURE_INCOMPAT_MIXED_GROUPS;
    if (mixed && x.ns != x.ss)
        return bad(fmt::format("with mixed block groups nodesize ({}) must equal sectorsize ({})", x.ns, x.ss));

    // Profiles.
    auto parse_profile = [](const std::string& s, uint64_t& out) -> Status {
        std::string l;
        for (char c : s) l += char(tolower(static_cast<unsigned char>(c)));
        if (l == "single") out = 0;
        else if (l == "dup") out = BLOCK_GROUP_DUP;
        else if (l == "raid0" || l == "raid1" || l == "raid10" || l == "raid5" || l == "raid6" ||
                 l == "raid1c3" || l == "raid1c4")
            return bad(fmt::format("profile '{}' needs more than one device", s));
        else return bad(fmt::format("unknown profile '{}' (single, dup)", s));
        return {};
    };
    uint64_t mprof = mixed ? 0 : BLOCK_GROUP_DUP, dprof = 0;
    if (!o.metadata_profile.empty()) BTK_TRY(parse_profile(o.metadata_profile, mprof));
    if (!o.data_profile.empty()) BTK_TRY(parse_profile(o.data_profile, dprof));
    if (mixed) {
        if (!o.metadata_profile.empty() && !o.data_profile.empty() && mprof != dprof)
            return bad("with mixed block groups data and metadata profiles must be the same");
        if (o.metadata_profile.empty()) mprof = dprof;
        if (mprof != 0) return bad("mixed block groups support only the single profile for now");
    }

    if (o.label.size() >= LABEL_SIZE) return bad(fmt::format("label is longer than {} bytes", LABEL_SIZE - 1));
    x.label = o.label;
    if (x.label.find('\0') != std::string::npos) return bad("label contains a NUL byte");

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
    if (!o.device_uuid.empty()) {
        if (!parse_uuid(o.device_uuid, x.dev_uuid))
            return bad(fmt::format("invalid device uuid '{}'", o.device_uuid));
    } else {
        random_uuid(x.dev_uuid);
    }

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

    // --- the target
    struct stat st {};
    bool exists = stat(path.c_str(), &st) == 0;
    if (!exists && errno != ENOENT) return make_error(Errc::io, "cannot stat {}: {}", path, std::strerror(errno));
    if (!exists && !o.byte_count)
        return bad(fmt::format("{} does not exist (use -b SIZE to create an image file)", path));
    if (exists && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return bad(fmt::format("{} is not a regular file or block device", path));
    uint64_t dev_size = 0;
    if (exists) {
        if (S_ISBLK(st.st_mode)) {
            int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return make_error(Errc::io, "cannot open {}: {}", path, std::strerror(errno));
            int r = ioctl(fd, BLKGETSIZE64, &dev_size);
            close(fd);
            if (r != 0) return make_error(Errc::io, "cannot get the size of {}", path);
        } else {
            dev_size = uint64_t(st.st_size);
        }
    }
    uint64_t size = dev_size;
    if (o.byte_count) {
        if (exists && S_ISBLK(st.st_mode) && *o.byte_count > dev_size)
            return bad(fmt::format("-b {} is larger than {} ({} bytes)", *o.byte_count, path, dev_size));
        size = *o.byte_count;
    }
    x.total_bytes = round_down(size, x.ss);

    // Hold the block device exclusively (as mount does) until the end, so
    // that it cannot be mounted while it is written.
    struct FdHolder {
        int fd = -1;
        ~FdHolder() {
            if (fd >= 0) close(fd);
        }
    } excl;
    if (exists) {
        BTK_TRY(check_not_mounted(path, st));
        if (S_ISBLK(st.st_mode)) {
            excl.fd = open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
            if (excl.fd < 0)
                return make_error(errno == EBUSY ? Errc::invalid_argument : Errc::io,
                                  "cannot open {} exclusively: {}", path,
                                  errno == EBUSY ? "it is in use (mounted or held by another program)"
                                                 : std::strerror(errno));
        }
        if (!o.force && dev_size > 0) BTK_TRY(check_no_signature(path));
    }

    // --- chunk layout
    auto add_chunk = [&](uint64_t type, uint64_t stripe, int copies, uint64_t& phys, uint64_t& logical) {
        ChunkPlan c;
        c.type = type;
        c.logical = logical;
        c.length = stripe;
        for (int i = 0; i < copies; ++i) {
            c.physical.push_back(phys);
            phys += stripe;
        }
        logical += stripe;
        x.chunks.push_back(c);
    };
    const uint64_t five = round_down(x.total_bytes / 20, STRIPE_LEN);
    uint64_t phys = RESERVED, logical = RESERVED;
    const int mcopies = mprof == BLOCK_GROUP_DUP ? 2 : 1;
    const int dcopies = dprof == BLOCK_GROUP_DUP ? 2 : 1;
    if (mixed) {
        add_chunk(BLOCK_GROUP_SYSTEM | mprof, 4 * MiB, 1, phys, logical);
        add_chunk(BLOCK_GROUP_METADATA | BLOCK_GROUP_DATA | mprof, 8 * MiB, 1, phys, logical);
    } else {
        uint64_t sys = mcopies == 2 ? 8 * MiB : 4 * MiB;
        uint64_t meta = 8 * MiB;
        if (mcopies == 2)
            meta = std::clamp<uint64_t>(five, 32 * MiB, x.total_bytes >= 50 * GiB ? 1 * GiB : 256 * MiB);
        uint64_t data = dcopies == 2 ? std::clamp<uint64_t>(five, 64 * MiB, 1 * GiB) : 8 * MiB;
        add_chunk(BLOCK_GROUP_SYSTEM | mprof, sys, mcopies, phys, logical);
        add_chunk(BLOCK_GROUP_METADATA | mprof, meta, mcopies, phys, logical);
        add_chunk(BLOCK_GROUP_DATA | dprof, data, dcopies, phys, logical);
    }
    if (phys > x.total_bytes)
        return bad(fmt::format("{} is too small: {} bytes, this layout needs at least {} bytes", path,
                               x.total_bytes, phys));
    for (auto& c : x.chunks) compute_excluded(c, x.total_bytes);

    // --- trees
    x.trees[CHUNK_TREE_OBJECTID];
    for (uint64_t id : META_TREES)
        if (id != FREE_SPACE_TREE_OBJECTID || (x.compat_ro & FEATURE_COMPAT_RO_FREE_SPACE_TREE))
            x.trees[id];
    for (auto& [id, t] : x.trees) t.plan = TreePlan{{1}, 1, 0};
    BTK_ASSIGN(int iterations, solve_layout(x));
    // Extent items without skinny metadata carry each block's first key:
    // learn them from a dry build, then refill (sizes do not change).
    if (!(x.incompat & FEATURE_INCOMPAT_SKINNY_METADATA)) {
        for (auto& [id, t] : x.trees) {
            size_t next = 0;
            auto alloc = [&](uint8_t) -> Result<uint64_t> {
                if (next >= t.addrs.size()) return make_error(Errc::corruption, "internal error: layout");
                return t.addrs[next++];
            };
            BTK_ASSIGN(BuiltTree bt, build_tree(build_opts(x, id), t.items, alloc,
                                                [](std::vector<uint8_t>&&) { return Status{}; }));
            for (const auto& b : bt.blocks) x.first_keys[b.bytenr] = b.first_key;
        }
        make_items(x);
    }

    ChunkMap cmap;
    for (const auto& c : x.chunks) BTK_TRY(cmap.add(c.logical, chunk_item_bytes(x, c)));
    WriteContext wc;
    wc.nodesize = x.ns;
    wc.sectorsize = x.ss;
    wc.csum_type = x.csum_type;
    std::memcpy(wc.fsid, x.fsid, 16);
    std::memcpy(wc.chunk_tree_uuid, x.chunk_uuid, 16);
    wc.generation = GEN;
    wc.chunks = &cmap;
    BlockWriter writer(wc);

    std::map<uint64_t, std::pair<uint64_t, uint8_t>> roots;  // tree -> (bytenr, level)
    uint32_t nblocks = 0;
    for (auto& [id, t] : x.trees) {
        size_t next = 0;
        auto alloc = [&](uint8_t level) -> Result<uint64_t> {
            if (next >= t.addrs.size() || t.levels[next] != level)
                return make_error(Errc::corruption, "internal error: tree {} block {} not planned", id, next);
            return t.addrs[next++];
        };
        auto sink = [&](std::vector<uint8_t>&& b) { return writer.add(std::move(b)); };
        BTK_ASSIGN(BuiltTree bt, build_tree(build_opts(x, id), t.items, alloc, sink));
        if (next != t.addrs.size() || bt.root != t.addrs.back())
            return make_error(Errc::corruption, "internal error: tree {} built differently than planned", id);
        roots[id] = {bt.root, bt.level};
        nblocks += uint32_t(bt.blocks.size());
    }

    // --- superblock
    super_block sb{};
    std::memcpy(sb.fsid, x.fsid, 16);
    sb.flags = SUPER_FLAG_WRITTEN;
    sb.magic = SUPER_MAGIC;
    sb.generation = GEN;
    sb.root = roots[ROOT_TREE_OBJECTID].first;
    sb.root_level = roots[ROOT_TREE_OBJECTID].second;
    sb.chunk_root = roots[CHUNK_TREE_OBJECTID].first;
    sb.chunk_root_level = roots[CHUNK_TREE_OBJECTID].second;
    sb.chunk_root_generation = GEN;
    sb.total_bytes = x.total_bytes;
    uint64_t used = 0;
    for (const auto& c : x.chunks) used += c.used;
    sb.bytes_used = used;
    sb.root_dir_objectid = ROOT_TREE_DIR_OBJECTID;
    sb.num_devices = 1;
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
    {
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
    }
    {
        // Backup slot for generation g is (g - 1) % 4, as the kernel rotates them.
        root_backup& b = sb.super_roots[(GEN - 1) % NUM_BACKUP_ROOTS];
        auto set = [&](uint64_t id, le64& root, le64& gen, uint8_t& level) {
            root = roots[id].first;
            gen = GEN;
            level = roots[id].second;
        };
        set(ROOT_TREE_OBJECTID, b.tree_root, b.tree_root_gen, b.tree_root_level);
        set(CHUNK_TREE_OBJECTID, b.chunk_root, b.chunk_root_gen, b.chunk_root_level);
        set(EXTENT_TREE_OBJECTID, b.extent_root, b.extent_root_gen, b.extent_root_level);
        set(FS_TREE_OBJECTID, b.fs_root, b.fs_root_gen, b.fs_root_level);
        set(DEV_TREE_OBJECTID, b.dev_root, b.dev_root_gen, b.dev_root_level);
        set(CSUM_TREE_OBJECTID, b.csum_root, b.csum_root_gen, b.csum_root_level);
        b.total_bytes = x.total_bytes;
        b.bytes_used = used;
        b.num_devices = 1;
    }
    std::map<uint64_t, dev_item> dev_items{{1, make_dev_item(x)}};
    sb.dev_item = dev_items[1];
    super_update_csum(sb);
    BTK_TRY(check_super_sanity(sb));

    // --- write: create/open, discard, clear old signatures, blocks, supers.
    if (!exists) {
        int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) return make_error(Errc::io, "cannot create {}: {}", path, std::strerror(errno));
        int r = ftruncate(fd, off_t(size));
        int e = errno;
        close(fd);
        if (r != 0) {
            unlink(path.c_str());
            return make_error(Errc::io, "cannot size {} to {} bytes: {}", path, size, std::strerror(e));
        }
    } else if (!S_ISBLK(st.st_mode) && size > dev_size) {
        if (truncate(path.c_str(), off_t(size)) != 0)
            return make_error(Errc::io, "cannot extend {} to {} bytes: {}", path, size, std::strerror(errno));
    }
    BTK_ASSIGN(auto dev, Device::open(path, true));
    if (dev->is_block_device() && !o.nodiscard) {
        uint64_t range[2] = {0, x.total_bytes};
        (void)ioctl(dev->fd(), BLKDISCARD, &range);  // best effort; not all devices support it
    }
    // Old signatures: the reserved start, the end of the device, superblock
    // copies that the new filesystem does not cover.
    BTK_TRY(zero_range(*dev, 0, RESERVED));
    const uint64_t tail = std::min<uint64_t>(dev->size(), 1 * MiB);
    const uint64_t tail_start = std::max(round_down(dev->size() - tail, x.ss), phys);
    if (tail_start < dev->size()) BTK_TRY(zero_range(*dev, tail_start, dev->size() - tail_start));
    for (int m = 1; m < SUPER_MIRROR_MAX; ++m) {
        const uint64_t off = super_offset(m);
        if (off + SUPER_INFO_SIZE <= dev->size() && off + SUPER_INFO_SIZE >= x.total_bytes)
            BTK_TRY(zero_range(*dev, off, SUPER_INFO_SIZE));
    }
    writer.set_devices({{1, dev.get()}});
    BTK_TRY(writer.flush());
    BTK_TRY(write_supers(sb, dev_items, {{1, dev.get()}}));

    MkfsResult r;
    r.fsid = format_uuid(x.fsid);
    r.total_bytes = x.total_bytes;
    r.bytes_used = used;
    r.nodesize = x.ns;
    r.sectorsize = x.ss;
    r.csum_type = x.csum_type;
    r.incompat = x.incompat;
    r.compat_ro = x.compat_ro;
    for (const auto& c : x.chunks) r.chunks.push_back({c.logical, c.length, c.type, c.used, c.physical});
    r.tree_blocks = nblocks;
    r.layout_iterations = iterations;
    r.write_calls = writer.write_calls();
    r.bytes_written = writer.bytes_written();
    return r;
}

int mkfs(const MkfsOptions& o, FILE* out, FILE* err) {
    for (const auto& l : o.features)
        if (l == "list-all" || l == "list") {
            fmt::print(out, "Filesystem features available:\n");
            for (const auto& f : FEATURES)
                fmt::print(out, "{:<20}- {}{}\n", f.name, f.desc, f.def ? " (default)" : "");
            return 0;
        }
    auto r = mkfs_run(o);
    if (!r) {
        fmt::print(err, "btk mkfs: {}\n", r.error().message);
        return 1;
    }
    if (o.quiet) return 0;
    fmt::print(out, "Label:              {}\n", o.label.empty() ? "(null)" : o.label);
    fmt::print(out, "UUID:               {}\n", r->fsid);
    fmt::print(out, "Node size:          {}\n", r->nodesize);
    fmt::print(out, "Sector size:        {}\n", r->sectorsize);
    fmt::print(out, "Filesystem size:    {}\n", human(r->total_bytes));
    fmt::print(out, "Block group profiles:\n");
    for (const auto& c : r->chunks) {
        std::string t = (c.type & BLOCK_GROUP_DATA) && (c.type & BLOCK_GROUP_METADATA) ? "Data+Metadata:"
                        : (c.type & BLOCK_GROUP_DATA)                                 ? "Data:"
                        : (c.type & BLOCK_GROUP_METADATA)                             ? "Metadata:"
                                                                                      : "System:";
        fmt::print(out, "  {:<16}{:<10}{:>12}\n", t, profile_lc(c.type), human(c.length));
    }
    std::vector<std::string> feats;
    for (const auto& f : FEATURES)
        if ((f.incompat ? r->incompat : r->compat_ro) & f.bits) feats.push_back(f.name);
    fmt::print(out, "Features:           {}\n", fmt::join(feats, ", "));
    fmt::print(out, "Checksum:           {}\n", csum_name(r->csum_type));
    fmt::print(out, "Number of devices:  1\n");
    fmt::print(out, "Devices:\n   ID        SIZE  PATH\n    1  {:>10}  {}\n", human(r->total_bytes), o.devices[0]);
    return 0;
}

}  // namespace btk
