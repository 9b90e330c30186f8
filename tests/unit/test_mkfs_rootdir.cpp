// mkfs --rootdir as a module: option parsing, the scan of a directory (inode
// numbers, links, subvolumes, flags, errors) and populate() into an in-memory
// data space and item sink, read back: file contents through the extents
// (inline, compressed, holes), checksums against the data, extent items
// against the file extents, key order, run boundaries, reproducibility.
#include <doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "compress.h"
#include "csum.h"
#include "mkfs_rootdir.h"
#include "write_tree.h"

using namespace btk;
using namespace btk::format;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/btk-test-rootdir-XXXXXX";
        REQUIRE(mkdtemp(t) != nullptr);
        path = t;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)!system(cmd.c_str());
    }
};

void write_file(const std::string& p, const std::vector<uint8_t>& data, off_t at = 0) {
    int fd = open(p.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    if (!data.empty()) REQUIRE(pwrite(fd, data.data(), data.size(), at) == ssize_t(data.size()));
    close(fd);
}
std::vector<uint8_t> text(size_t n, int seed = 0) {
    std::string s;
    for (int i = 0; s.size() < n; ++i) s += "line " + std::to_string(i * 7 + seed) + " of some compressible text\n";
    return std::vector<uint8_t>(s.begin(), s.begin() + ptrdiff_t(n));
}
std::vector<uint8_t> random_bytes(size_t n, unsigned seed) {
    std::mt19937 r(seed);
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = uint8_t(r());
    return v;
}
std::vector<uint8_t> slurp(const std::string& p) {
    std::vector<uint8_t> v;
    int fd = open(p.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) v.insert(v.end(), buf, buf + n);
    close(fd);
    return v;
}

// Data space over a vector, made of runs (like chunks split by superblocks).
class MemSpace : public DataSpace {
public:
    MemSpace(uint64_t base, std::vector<uint64_t> run_lengths) : base_(base) {
        uint64_t at = base;
        for (uint64_t l : run_lengths) {
            runs_.push_back({at, l});
            at += l + 65536;  // a gap between runs
        }
        disk.assign(at - base, 0);
    }
    Result<DataRange> reserve(uint64_t want, uint64_t min_len) override {
        while (cur_ < runs_.size()) {
            auto& [start, len] = runs_[cur_];
            if (len - used_ >= min_len) {
                DataRange r{start + used_, std::min(want, len - used_), uint32_t(cur_)};
                used_ += r.length;
                return r;
            }
            ++cur_;
            used_ = 0;
        }
        return Error{Errc::invalid_argument, "data space full"};
    }
    Status write(uint64_t logical, std::span<const std::span<const uint8_t>> pieces) override {
        ++writes;
        for (auto p : pieces) {
            REQUIRE(logical >= base_);
            REQUIRE(logical - base_ + p.size() <= disk.size());
            std::memcpy(disk.data() + (logical - base_), p.data(), p.size());
            logical += p.size();
        }
        return {};
    }
    std::span<const uint8_t> at(uint64_t logical, uint64_t len) const {
        return std::span<const uint8_t>(disk).subspan(logical - base_, len);
    }
    std::vector<uint8_t> disk;
    int writes = 0;
    std::vector<std::pair<uint64_t, uint64_t>> runs_;

private:
    uint64_t base_;
    size_t cur_ = 0;
    uint64_t used_ = 0;
};

struct MemSink : ItemSink {
    std::map<uint64_t, std::vector<std::pair<Key, std::vector<uint8_t>>>> trees;
    Status add(uint64_t tree, const Key& k, std::span<const uint8_t> d) override {
        trees[tree].push_back({k, std::vector<uint8_t>(d.begin(), d.end())});
        return {};
    }
    const std::vector<uint8_t>* find(uint64_t tree, Key k) const {
        auto it = trees.find(tree);
        if (it == trees.end()) return nullptr;
        for (const auto& [key, d] : it->second)
            if (key == k) return &d;
        return nullptr;
    }
    std::vector<std::pair<Key, const std::vector<uint8_t>*>> range(uint64_t tree, uint64_t obj, uint8_t type) const {
        std::vector<std::pair<Key, const std::vector<uint8_t>*>> out;
        auto it = trees.find(tree);
        if (it == trees.end()) return out;
        for (const auto& [key, d] : it->second)
            if (key.objectid == obj && key.type == type) out.push_back({key, &d});
        return out;
    }
};

RootdirOptions base_opts(const std::string& dir) {
    RootdirOptions o;
    o.dir = dir;
    o.now_sec = 1700000000;
    o.make_uuid = [](uint64_t id, uint8_t out[16]) { std::memset(out, int(id & 0xff), 16); };
    return o;
}

const inode_item& inode_of(const MemSink& s, uint64_t tree, uint64_t ino) {
    const auto* d = s.find(tree, {ino, INODE_ITEM_KEY, 0});
    REQUIRE(d != nullptr);
    REQUIRE(d->size() == sizeof(inode_item));
    return *reinterpret_cast<const inode_item*>(d->data());
}

// Reads a file back through its EXTENT_DATA items.
std::vector<uint8_t> read_back(const MemSink& s, const MemSpace& sp, uint64_t tree, uint64_t ino, uint32_t ss) {
    const auto& ii = inode_of(s, tree, ino);
    std::vector<uint8_t> out(ii.size + ss, 0);
    uint64_t covered = 0;
    for (const auto& [k, d] : s.range(tree, ino, EXTENT_DATA_KEY)) {
        const auto* fe = reinterpret_cast<const file_extent_item*>(d->data());
        if (fe->type == FILE_EXTENT_INLINE) {
            CHECK(k.offset == 0);
            std::span<const uint8_t> payload(d->data() + FILE_EXTENT_INLINE_DATA_START,
                                             d->size() - FILE_EXTENT_INLINE_DATA_START);
            std::vector<uint8_t> plain(fe->ram_bytes);
            auto r = decompress(fe->compression, payload, plain, ss);
            REQUIRE(r.ok());
            std::memcpy(out.data(), plain.data(), plain.size());
            covered = fe->ram_bytes;
            continue;
        }
        REQUIRE(d->size() == sizeof(file_extent_item));
        if (fe->disk_bytenr == 0) {  // hole
            covered = k.offset + fe->num_bytes;
            continue;
        }
        REQUIRE(k.offset + fe->num_bytes <= out.size() + ss);
        auto disk = sp.at(fe->disk_bytenr, fe->disk_num_bytes);
        std::vector<uint8_t> plain(fe->ram_bytes);
        auto r = decompress(fe->compression, disk, plain, ss);
        REQUIRE(r.ok());
        std::memcpy(out.data() + k.offset, plain.data() + fe->offset.get(),
                    std::min<uint64_t>(fe->num_bytes, out.size() - k.offset));
        covered = k.offset + fe->num_bytes;
    }
    (void)covered;
    out.resize(ii.size);
    return out;
}

void check_sorted(const MemSink& s) {
    for (const auto& [tree, items] : s.trees)
        for (size_t i = 1; i < items.size(); ++i) {
            INFO("tree " << tree << " item " << i);
            CHECK(items[i - 1].first < items[i].first);
        }
}

// Every csum item matches the data; every sector of a checksummed extent has one.
void check_csums(const MemSink& s, const MemSpace& sp, uint16_t type, uint32_t ss) {
    const uint32_t cs = csum_size(type);
    auto it = s.trees.find(CSUM_TREE_OBJECTID);
    if (it == s.trees.end()) return;
    for (const auto& [k, d] : it->second) {
        CHECK(k.objectid == EXTENT_CSUM_OBJECTID);
        REQUIRE(d.size() % cs == 0);
        for (size_t i = 0; i < d.size() / cs; ++i) {
            uint8_t c[32];
            csum_compute(type, sp.at(k.offset + i * ss, ss), c);
            CHECK(std::memcmp(c, d.data() + i * cs, cs) == 0);
        }
    }
}

// Each regular extent has an extent item whose data ref names it.
void check_extent_refs(const MemSink& s, uint64_t tree) {
    std::map<uint64_t, std::pair<uint64_t, uint64_t>> refs;  // bytenr -> (ino, file offset)
    for (const auto& [k, d] : s.trees.at(tree)) {
        if (k.type != EXTENT_DATA_KEY) continue;
        const auto* fe = reinterpret_cast<const file_extent_item*>(d.data());
        if (fe->type == FILE_EXTENT_INLINE || fe->disk_bytenr == 0) continue;
        refs[fe->disk_bytenr] = {k.objectid, k.offset};
        const auto* ei = s.find(EXTENT_TREE_OBJECTID, {fe->disk_bytenr, EXTENT_ITEM_KEY, fe->disk_num_bytes});
        REQUIRE(ei != nullptr);
        REQUIRE(ei->size() == sizeof(extent_item) + 1 + sizeof(extent_data_ref));
        const auto* e = reinterpret_cast<const extent_item*>(ei->data());
        CHECK(e->refs == 1);
        CHECK(e->flags == EXTENT_FLAG_DATA);
        CHECK((*ei)[sizeof(extent_item)] == EXTENT_DATA_REF_KEY);
        const auto* r = reinterpret_cast<const extent_data_ref*>(ei->data() + sizeof(extent_item) + 1);
        CHECK(r->root == tree);
        CHECK(r->objectid == k.objectid);
        CHECK(r->offset == k.offset);
        CHECK(r->count == 1);
    }
}

uint64_t ino_of(const RootdirModel& m, const std::string& path) {
    for (uint32_t i = 0; i < m.inodes.size(); ++i)
        if (m.path(i) == path) return m.inodes[i].ino;
    FAIL("no such path in the model: " << path);
    return 0;
}

struct Tree {
    TempDir d;
    std::string root;
    Tree() {
        root = d.path + "/src";
        REQUIRE(mkdir(root.c_str(), 0755) == 0);
        write_file(root + "/a", text(100));
        write_file(root + "/empty", {});
        REQUIRE(mkfifo((root + "/fifo").c_str(), 0600) == 0);
        REQUIRE(symlink("a", (root + "/lnk").c_str()) == 0);
        // Holes at the start, middle and end.
        write_file(root + "/sparse", random_bytes(8192, 1), 1 << 20);
        write_file(root + "/sparse", random_bytes(4096, 2), 3 << 20);
        REQUIRE(truncate((root + "/sparse").c_str(), 5 << 20) == 0);
        write_file(root + "/holes-only", {});
        REQUIRE(truncate((root + "/holes-only").c_str(), 300000) == 0);
        REQUIRE(mkdir((root + "/sub").c_str(), 0700) == 0);
        write_file(root + "/sub/big-text", text(700000, 3));
        write_file(root + "/sub/random", random_bytes(300000, 4));
        write_file(root + "/sub/sector", text(4096, 5));
        write_file(root + "/sub/small", text(3000, 6));
        REQUIRE(link((root + "/a").c_str(), (root + "/sub/h").c_str()) == 0);
        REQUIRE(mkdir((root + "/sv").c_str(), 0755) == 0);
        write_file(root + "/sv/d", text(5000, 7));
        REQUIRE(setxattr(root.c_str(), "user.top", "t", 1, 0) == 0);
        REQUIRE(setxattr((root + "/a").c_str(), "user.x", "123", 3, 0) == 0);
    }
};

struct Run {
    RootdirModel m;
    MemSpace space{1 << 30, {64 << 20}};
    MemSink sink;
    RootdirResult res;
};

Run run(const RootdirOptions& o, std::vector<uint64_t> runs = {64 << 20}) {
    Run r{};
    auto m = rootdir_scan(o);
    REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
    r.m = std::move(*m);
    r.space = MemSpace(1 << 30, std::move(runs));
    auto res = rootdir_populate(r.m, r.space, r.sink);
    REQUIRE_MESSAGE(res.ok(), (res.ok() ? "" : res.error().message));
    r.res = std::move(*res);
    return r;
}

}  // namespace

TEST_CASE("rootdir: option parsers") {
    auto s = parse_rootdir_subvol("ro:./a//b/");
    REQUIRE(s.ok());
    CHECK(s->path == "a/b");
    CHECK(s->readonly);
    CHECK(!s->is_default);
    s = parse_rootdir_subvol("default-ro:x");
    REQUIRE(s.ok());
    CHECK((s->readonly && s->is_default));
    CHECK(parse_rootdir_subvol("plain")->path == "plain");
    CHECK(!parse_rootdir_subvol("bogus:x").ok());
    CHECK(!parse_rootdir_subvol("rw:.").ok());
    CHECK(!parse_rootdir_subvol("rw:../x").ok());

    auto f = parse_rootdir_inode_flags("nodatacow,nodatasum:d/e");
    REQUIRE(f.ok());
    CHECK((f->nodatacow && f->nodatasum && f->path == "d/e"));
    CHECK(!parse_rootdir_inode_flags("nodatacow").ok());
    CHECK(!parse_rootdir_inode_flags("immutable:x").ok());

    uint8_t t = 0;
    int level = 0;
    CHECK(parse_rootdir_compress("zstd:7", t, level).ok());
    CHECK((t == COMPRESS_ZSTD && level == 7));
    CHECK(parse_rootdir_compress("lzo", t, level).ok());
    CHECK((t == COMPRESS_LZO && level == 0));
    CHECK(!parse_rootdir_compress("zlib:10", t, level).ok());
    CHECK(!parse_rootdir_compress("lzo:1", t, level).ok());
    CHECK(!parse_rootdir_compress("gzip", t, level).ok());

    auto ow = parse_rootdir_owner("1000:2000");
    REQUIRE(ow.ok());
    CHECK((ow->first == 1000 && ow->second == 2000));
    CHECK(!parse_rootdir_owner("1000").ok());
    CHECK(!parse_rootdir_owner("a:b").ok());
}

TEST_CASE("rootdir: scan numbers inodes as cp -a creates them, links counted inside") {
    Tree t;
    auto o = base_opts(t.root);
    o.subvols.push_back({"sv", true, true});
    o.inode_flags.push_back({"sub", true, false});
    auto m = rootdir_scan(o);
    REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
    CHECK(m->inodes[0].ino == FIRST_FREE_OBJECTID);
    // Name order: a empty fifo holes-only lnk sparse sub(big-text h random sector small) sv(d)
    CHECK(ino_of(*m, "a") == 257);
    CHECK(ino_of(*m, "empty") == 258);
    CHECK(ino_of(*m, "holes-only") == 260);
    CHECK(ino_of(*m, "sub") == 263);
    CHECK(ino_of(*m, "sub/big-text") == 264);
    CHECK(ino_of(*m, "sub/random") == 265);  // sub/h is a link to a
    REQUIRE(m->subvols.size() == 2);
    CHECK(m->subvols[1].id == 256);
    CHECK(m->subvols[1].readonly);
    CHECK(m->default_subvol() == 1);
    CHECK(ino_of(*m, "sv") == 256);
    CHECK(ino_of(*m, "sv/d") == 257);
    for (const auto& in : m->inodes) {
        if (in.ino == 257 && in.subvol == 0) CHECK(in.nlink == 2);
        if (S_ISDIR(in.mode) && in.ino == 263) CHECK((in.flags & INODE_NODATACOW));
    }
    // Children of a nodatacow directory inherit it; files also get nodatasum.
    for (uint32_t i = 0; i < m->inodes.size(); ++i)
        if (m->path(i).starts_with("sub/") && S_ISREG(m->inodes[i].mode) && m->path(i) != "sub/h")
            CHECK(m->inodes[i].flags == (INODE_NODATACOW | INODE_NODATASUM));
    CHECK(m->data_bound >= 700000 + 300000);
    CHECK(m->data_bound < 2 << 20);  // holes do not count
    CHECK(m->meta_bytes > 0);
}

TEST_CASE("rootdir: scan errors") {
    Tree t;
    auto o = base_opts(t.d.path + "/missing");
    auto m = rootdir_scan(o);
    REQUIRE(!m.ok());
    CHECK(m.error().code == Errc::invalid_argument);
    o.dir = t.root + "/a";
    m = rootdir_scan(o);
    REQUIRE(!m.ok());
    CHECK(m.error().message.find("not a directory") != std::string::npos);
    o = base_opts(t.root);
    o.subvols.push_back({"nope", false, false});
    m = rootdir_scan(o);
    REQUIRE(!m.ok());
    CHECK(m.error().message.find("nope") != std::string::npos);
    o = base_opts(t.root);
    o.subvols.push_back({"a", false, false});
    CHECK(!rootdir_scan(o).ok());
    o = base_opts(t.root);
    o.inode_flags.push_back({"sub/none", true, false});
    CHECK(!rootdir_scan(o).ok());
    o = base_opts(t.root);
    o.subvols.push_back({"sv", false, true});
    o.subvols.push_back({"sub", false, true});
    CHECK(!rootdir_scan(o).ok());
}

TEST_CASE("rootdir: populate plain, read back") {
    Tree t;
    auto o = base_opts(t.root);
    o.subvols.push_back({"sv", false, false});
    o.threads = 3;
    Run r = run(o);
    check_sorted(r.sink);
    check_csums(r.sink, r.space, o.csum_type, o.sectorsize);
    check_extent_refs(r.sink, FS_TREE_OBJECTID);
    check_extent_refs(r.sink, 256);
    for (const char* f : {"a", "sparse", "sub/big-text", "sub/random", "sub/sector", "sub/small", "holes-only"}) {
        INFO(f);
        CHECK(read_back(r.sink, r.space, FS_TREE_OBJECTID, ino_of(r.m, f), o.sectorsize) ==
              slurp(t.root + "/" + f));
    }
    CHECK(read_back(r.sink, r.space, 256, 257, o.sectorsize) == slurp(t.root + "/sv/d"));

    // Inline: a (100 bytes), lnk; sub/small (3000) and sub/sector are regular.
    const auto& a = inode_of(r.sink, FS_TREE_OBJECTID, 257);
    CHECK(a.nlink == 2);
    CHECK(a.nbytes == 100);
    CHECK(a.size == 100);
    CHECK(a.otime.sec == 1700000000);
    CHECK(r.sink.range(FS_TREE_OBJECTID, 257, INODE_REF_KEY).size() == 2);
    CHECK(r.sink.range(FS_TREE_OBJECTID, 257, XATTR_ITEM_KEY).size() == 1);
    CHECK(r.sink.range(FS_TREE_OBJECTID, 256, XATTR_ITEM_KEY).size() == 1);
    // The sparse file: nbytes counts data only; no hole items with no-holes.
    const auto& sp = inode_of(r.sink, FS_TREE_OBJECTID, ino_of(r.m, "sparse"));
    CHECK(sp.nbytes == 12288);
    CHECK(r.sink.range(FS_TREE_OBJECTID, ino_of(r.m, "sparse"), EXTENT_DATA_KEY).size() == 2);
    CHECK(r.sink.range(FS_TREE_OBJECTID, ino_of(r.m, "holes-only"), EXTENT_DATA_KEY).empty());
    // Directory size and indexes.
    const auto& top = inode_of(r.sink, FS_TREE_OBJECTID, 256);
    CHECK(top.size == 2 * (1 + 5 + 4 + 10 + 3 + 6 + 3 + 2));
    auto idx = r.sink.range(FS_TREE_OBJECTID, 256, DIR_INDEX_KEY);
    REQUIRE(idx.size() == 8);
    CHECK(idx.front().first.offset == 2);
    CHECK(idx.back().first.offset == 9);
    // The subvolume: entry points at its root, refs in the root tree, uuid item.
    auto sv_entry = idx.back().second;
    const auto* di = reinterpret_cast<const dir_item*>(sv_entry->data());
    CHECK(Key::from_disk(di->location) == Key{256, ROOT_ITEM_KEY, 0});
    CHECK(r.sink.find(ROOT_TREE_OBJECTID, {FS_TREE_OBJECTID, ROOT_REF_KEY, 256}) != nullptr);
    CHECK(r.sink.find(ROOT_TREE_OBJECTID, {256, ROOT_BACKREF_KEY, FS_TREE_OBJECTID}) != nullptr);
    CHECK(r.sink.trees.at(UUID_TREE_OBJECTID).size() == 1);
    REQUIRE(r.sink.find(256, {256, INODE_REF_KEY, 256}) != nullptr);
    CHECK(r.sink.find(256, {256, INODE_REF_KEY, 256})->size() == sizeof(inode_ref) + 2);
    CHECK(r.sink.find(FS_TREE_OBJECTID, {256, INODE_REF_KEY, 256})->size() == sizeof(inode_ref) + 2);
    CHECK(r.sink.find(FS_TREE_OBJECTID, {257, INODE_REF_KEY, 256})->size() == sizeof(inode_ref) + 1);
    CHECK(r.res.compressed_extents == 0);
    CHECK(r.res.data_bytes <= r.m.data_bound);
    // The big writes: the data went in a few large batches.
    CHECK(r.space.writes <= 4);
}

TEST_CASE("rootdir: compression, NOCOMPRESS for incompressible data, explicit holes") {
    Tree t;
    auto o = base_opts(t.root);
    o.compress = COMPRESS_ZSTD;
    o.no_holes = false;
    o.threads = 2;
    Run r = run(o);
    check_sorted(r.sink);
    check_csums(r.sink, r.space, o.csum_type, o.sectorsize);
    check_extent_refs(r.sink, FS_TREE_OBJECTID);
    for (const char* f : {"a", "sparse", "sub/big-text", "sub/random", "sub/sector", "sub/small", "holes-only"}) {
        INFO(f);
        CHECK(read_back(r.sink, r.space, FS_TREE_OBJECTID, ino_of(r.m, f), o.sectorsize) ==
              slurp(t.root + "/" + f));
    }
    CHECK(r.res.compressed_extents >= 6);  // 700000 bytes of text: 128 KiB extents
    const auto& rnd = inode_of(r.sink, FS_TREE_OBJECTID, ino_of(r.m, "sub/random"));
    CHECK((rnd.flags & INODE_NOCOMPRESS));
    const auto& txt = inode_of(r.sink, FS_TREE_OBJECTID, ino_of(r.m, "sub/big-text"));
    CHECK(!(txt.flags & INODE_NOCOMPRESS));
    CHECK(txt.nbytes == (700000 + 4095) / 4096 * 4096);
    // A 4096-byte text file compresses into an inline extent.
    auto sec = r.sink.range(FS_TREE_OBJECTID, ino_of(r.m, "sub/sector"), EXTENT_DATA_KEY);
    REQUIRE(sec.size() == 1);
    const auto* fe = reinterpret_cast<const file_extent_item*>(sec[0].second->data());
    CHECK(fe->type == FILE_EXTENT_INLINE);
    CHECK(fe->compression == COMPRESS_ZSTD);
    CHECK(fe->ram_bytes == 4096);
    // Holes: every byte of the sparse file up to its sector-rounded size is
    // covered, contiguously.
    uint64_t end = 0;
    int holes = 0;
    for (const auto& [k, d] : r.sink.range(FS_TREE_OBJECTID, ino_of(r.m, "sparse"), EXTENT_DATA_KEY)) {
        const auto* e = reinterpret_cast<const file_extent_item*>(d->data());
        CHECK(k.offset == end);
        end = k.offset + e->num_bytes;
        holes += e->disk_bytenr == 0;
    }
    CHECK(end == 5 << 20);
    CHECK(holes == 3);
    auto ho = r.sink.range(FS_TREE_OBJECTID, ino_of(r.m, "holes-only"), EXTENT_DATA_KEY);
    REQUIRE(ho.size() == 1);
    CHECK(reinterpret_cast<const file_extent_item*>(ho[0].second->data())->num_bytes == 303104);
}

TEST_CASE("rootdir: extents stop at run ends; output does not depend on thread count") {
    Tree t;
    auto o = base_opts(t.root);
    o.threads = 1;
    o.window_bytes = 256 << 10;  // forces the producer to wait for the consumer
    // readlink sets a fresh symlink's atime once (relatime): settle it first.
    REQUIRE(rootdir_scan(o).ok());
    Run a = run(o, {200 << 10, 300 << 10, 64 << 20});
    o.threads = 4;
    o.window_bytes = 64 << 20;
    Run b = run(o, {200 << 10, 300 << 10, 64 << 20});
    for (auto& [tree, items] : a.sink.trees) {
        auto& bi = b.sink.trees[tree];
        REQUIRE(items.size() == bi.size());
        for (size_t i = 0; i < items.size(); ++i) {
            INFO("tree " << tree << " key " << items[i].first.objectid << " " << int(items[i].first.type) << " "
                         << items[i].first.offset);
            CHECK(items[i] == bi[i]);
        }
    }
    CHECK(a.space.disk == b.space.disk);
    check_extent_refs(a.sink, FS_TREE_OBJECTID);
    check_csums(a.sink, a.space, o.csum_type, o.sectorsize);
    CHECK(read_back(a.sink, a.space, FS_TREE_OBJECTID, ino_of(a.m, "sub/big-text"), o.sectorsize) ==
          slurp(t.root + "/sub/big-text"));
    for (const auto& [k, d] : a.sink.trees.at(EXTENT_TREE_OBJECTID)) {
        bool inside = false;
        for (auto [s, l] : a.space.runs_) inside |= k.objectid >= s && k.objectid + k.offset <= s + l;
        CHECK(inside);
    }
}

TEST_CASE("rootdir: data larger than the space fails cleanly") {
    Tree t;
    auto o = base_opts(t.root);
    auto m = rootdir_scan(o);
    REQUIRE(m.ok());
    MemSpace space(1 << 30, {256 << 10});
    MemSink sink;
    auto res = rootdir_populate(*m, space, sink);
    REQUIRE(!res.ok());
    CHECK(res.error().message.find("full") != std::string::npos);
}

TEST_CASE("TreeStreamBuilder builds what build_tree builds") {
    for (uint32_t ns : {4096u, 16384u}) {
        std::vector<TreeItem> items;
        std::mt19937 r(ns);
        for (uint64_t i = 0; i < 3000; ++i) {
            // Some items big enough to get a leaf of their own.
            size_t len = i % 500 == 7 ? ns - 200 : r() % 300;
            items.push_back({Key{256 + i / 3, uint8_t(1 + i % 3), i}, std::vector<uint8_t>(len, uint8_t(i))});
        }
        TreeBuildOptions o;
        o.nodesize = ns;
        o.owner = 5;
        auto run_build = [&](bool stream) {
            uint64_t next = 1 << 20;
            std::vector<std::vector<uint8_t>> blocks;
            auto alloc = [&](uint8_t) -> Result<uint64_t> { return (next += ns); };
            auto sink = [&](std::vector<uint8_t>&& b) -> Status {
                blocks.push_back(std::move(b));
                return {};
            };
            if (!stream) {
                auto t = build_tree(o, items, alloc, sink);
                REQUIRE(t.ok());
                return std::pair{blocks, t->root};
            }
            TreeStreamBuilder b(o, alloc, sink);
            for (const auto& it : items) REQUIRE(b.add(it.key, it.data).ok());
            auto t = b.finish();
            REQUIRE(t.ok());
            return std::pair{blocks, t->root};
        };
        auto a = run_build(false), b = run_build(true);
        CHECK(a.first.size() > 10);
        CHECK(a == b);
        auto plan = plan_tree(o, items);
        REQUIRE(plan.ok());
        CHECK(plan->total == a.first.size());
    }
    // Out of order and oversized items are refused.
    TreeBuildOptions o;
    TreeStreamBuilder b(o, [](uint8_t) -> Result<uint64_t> { return uint64_t(1 << 20); },
                        [](std::vector<uint8_t>&&) -> Status { return {}; });
    std::vector<uint8_t> d(10);
    CHECK(b.add({300, 1, 0}, d).ok());
    CHECK(!b.add({299, 1, 0}, d).ok());
    CHECK(!b.add({400, 1, 0}, std::vector<uint8_t>(20000)).ok());
}

TEST_CASE("ChunkDataSpace: runs around superblock stripes, every DUP copy written") {
    auto runs = rootdir_runs(1 << 20, 8 << 20, {{4 << 20, (4 << 20) + 65536}, {100 << 20, 101 << 20}}, 4096);
    REQUIRE(runs.size() == 2);
    CHECK(runs[0] == std::pair<uint64_t, uint64_t>{1 << 20, 3 << 20});
    CHECK(runs[1] == std::pair<uint64_t, uint64_t>{(4 << 20) + 65536, (5 << 20) - 65536});

    TempDir d;
    const std::string img = d.path + "/d.img";
    {
        int fd = open(img.c_str(), O_CREAT | O_RDWR, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(ftruncate(fd, 64 << 20) == 0);
        close(fd);
    }
    auto dev = Device::open(img, true);
    REQUIRE(dev.ok());
    // A DUP data chunk: logical 16 MiB, 8 MiB long, stripes at 20 and 40 MiB.
    std::vector<uint8_t> ci(chunk_item_size(2), 0);
    auto* c = reinterpret_cast<chunk*>(ci.data());
    c->length = 8 << 20;
    c->owner = EXTENT_TREE_OBJECTID;
    c->stripe_len = 65536;
    c->type = BLOCK_GROUP_DATA | BLOCK_GROUP_DUP;
    c->io_align = 65536;
    c->io_width = 65536;
    c->sector_size = 4096;
    c->num_stripes = 2;
    c->sub_stripes = 1;
    (&c->stripe)[0].devid = 1;
    (&c->stripe)[0].offset = 20 << 20;
    (&c->stripe)[1].devid = 1;
    (&c->stripe)[1].offset = 40 << 20;
    ChunkMap map;
    REQUIRE(map.add(16 << 20, ci).ok());
    ChunkDataSpace space({{16 << 20, 8 << 20}}, map, {{1, dev->get()}});
    auto r = space.reserve(1 << 20, 4096);
    REQUIRE(r.ok());
    CHECK(r->logical == 16 << 20);
    // Two page-aligned buffers written as one run.
    void* a = std::aligned_alloc(4096, 1 << 20);
    REQUIRE(a != nullptr);
    std::memset(a, 0xab, 1 << 20);
    std::vector<uint8_t> head(4096, 0);
    std::span<const uint8_t> bufs[2] = {{static_cast<uint8_t*>(a), (1 << 20) - 8192},
                                        {static_cast<uint8_t*>(a) + (1 << 20) - 8192, 8192}};
    REQUIRE(space.write(16 << 20, bufs).ok());
    std::free(a);
    auto disk = slurp(img);
    for (uint64_t at : {uint64_t(20) << 20, uint64_t(40) << 20}) {
        CHECK(disk[at] == 0xab);
        CHECK(disk[at + (1 << 20) - 1] == 0xab);
        CHECK(disk[at + (1 << 20)] == 0);
    }
    CHECK(space.write_calls() == 2);
    auto big = space.reserve(100 << 20, 4096);
    REQUIRE(big.ok());
    CHECK(big->length == (7 << 20));
    CHECK(!space.reserve(4096, 4096).ok());
}
