// The fs tree checker's pieces that need no filesystem: name and item
// parsers, file extent validation, range coverage, and the item stream of a
// subvolume tree fed with leaves built here.
#include <doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "check_fs_internal.h"
#include "csum.h"
#include "file.h"

using namespace btk;
using namespace btk::fsck;
using namespace btk::format;

namespace {

struct Item {
    Key key;
    std::vector<uint8_t> data;
};

template <typename T>
std::vector<uint8_t> bytes_of(const T& v) {
    std::vector<uint8_t> b(sizeof(T));
    std::memcpy(b.data(), &v, sizeof(T));
    return b;
}

void append(std::vector<uint8_t>& b, std::string_view s) {
    const size_t o = b.size();
    b.resize(o + s.size());
    if (!s.empty()) std::memcpy(b.data() + o, s.data(), s.size());
}

// A leaf of 16 KiB holding `items` (sorted by the caller).
BlockRef make_leaf(const std::vector<Item>& items, uint64_t owner = 5) {
    const uint32_t ns = 16384;
    auto buf = std::make_unique<uint8_t[]>(ns);
    std::memset(buf.get(), 0, ns);
    auto* h = reinterpret_cast<format::header*>(buf.get());
    h->bytenr = 1 << 20;
    h->owner = owner;
    h->nritems = uint32_t(items.size());
    h->level = 0;
    uint32_t end = ns - sizeof(format::header);
    for (size_t i = 0; i < items.size(); ++i) {
        end -= uint32_t(items[i].data.size());
        auto* it = reinterpret_cast<format::item*>(buf.get() + sizeof(format::header)) + i;
        items[i].key.to_disk(it->key);
        it->offset = end;
        it->size = uint32_t(items[i].data.size());
        if (!items[i].data.empty())  // memcpy from an empty vector's null data is undefined
            std::memcpy(buf.get() + sizeof(format::header) + end, items[i].data.data(), items[i].data.size());
    }
    auto r = TreeBlock::parse(std::move(buf), ns);
    REQUIRE(r.ok());
    return std::move(r).value();
}

std::vector<uint8_t> inode(uint32_t mode, uint32_t nlink, uint64_t size, uint64_t nbytes = 0, uint64_t flags = 0) {
    format::inode_item ii{};
    ii.mode = mode;
    ii.nlink = nlink;
    ii.size = size;
    ii.nbytes = nbytes;
    ii.flags = flags;
    ii.generation = 1;
    ii.transid = 1;
    return bytes_of(ii);
}

std::vector<uint8_t> dir_entry(uint64_t child, uint8_t type, std::string_view name) {
    format::dir_item d{};
    Key{child, INODE_ITEM_KEY, 0}.to_disk(d.location);
    d.name_len = uint16_t(name.size());
    d.type = type;
    auto b = bytes_of(d);
    append(b, name);
    return b;
}

std::vector<uint8_t> ref(uint64_t index, std::string_view name) {
    format::inode_ref r{};
    r.index = index;
    r.name_len = uint16_t(name.size());
    auto b = bytes_of(r);
    append(b, name);
    return b;
}

std::vector<uint8_t> reg_extent(uint64_t disk, uint64_t len) {
    format::file_extent_item fe{};
    fe.type = FILE_EXTENT_REG;
    fe.ram_bytes = len;
    fe.disk_bytenr = disk;
    fe.disk_num_bytes = len;
    fe.num_bytes = len;
    return bytes_of(fe);
}

// A small consistent tree: / (256) holding file "a" (257, one 4 KiB extent).
std::vector<Item> small_tree() {
    return {
        {{256, INODE_ITEM_KEY, 0}, inode(040755, 1, 2)},
        {{256, INODE_REF_KEY, 256}, ref(0, "..")},
        {{256, DIR_ITEM_KEY, name_hash("a")}, dir_entry(257, FT_REG_FILE, "a")},
        {{256, DIR_INDEX_KEY, 2}, dir_entry(257, FT_REG_FILE, "a")},
        {{257, INODE_ITEM_KEY, 0}, inode(0100644, 1, 4096, 4096)},
        {{257, INODE_REF_KEY, 256}, ref(2, "a")},
        {{257, EXTENT_DATA_KEY, 0}, reg_extent(1 << 24, 4096)},
    };
}

std::vector<std::string> run_stream(const std::vector<Item>& items, bool no_holes = true) {
    std::vector<std::string> ids;
    FsTreeStream s(nullptr, [&](Finding f) { ids.push_back(f.def().id); }, nullptr, nullptr);
    FsTreeInfo info;
    info.root = 5;
    info.super_gen = 10;
    info.no_holes = no_holes;
    s.begin(info);
    s.leaf(*make_leaf(items));
    s.end(true);
    s.flush();
    return ids;
}

bool has(const std::vector<std::string>& v, const char* id) {
    for (const auto& x : v)
        if (x == id) return true;
    return false;
}

}  // namespace

TEST_CASE("check fs: names") {
    CHECK(name_problem("ok.txt") == nullptr);
    CHECK(name_problem("") != nullptr);
    CHECK(name_problem("a/b") != nullptr);
    CHECK(name_problem(std::string_view("a\0b", 3)) != nullptr);
    CHECK(name_problem(std::string(256, 'x')) != nullptr);
    CHECK(name_problem(std::string(255, 'x')) == nullptr);
    CHECK((name_fp("hello") >> 32) == name_hash("hello"));
    CHECK(name_fp("hello") != name_fp("hellp"));
    CHECK(name_text("a\"b") == "\"a\\\"b\"");
}

TEST_CASE("check fs: dir entries and inode refs parse, overruns are caught") {
    auto two = dir_entry(257, FT_REG_FILE, "a");
    auto b = dir_entry(258, FT_DIR, "bb");
    append(two, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    std::vector<fsck::DirEntry> es;
    REQUIRE(parse_dir_entries(two, es));
    REQUIRE(es.size() == 2);
    CHECK(es[1].name == "bb");
    CHECK(es[1].location.objectid == 258);
    CHECK(es[1].type == FT_DIR);
    two.pop_back();
    CHECK_FALSE(parse_dir_entries(two, es));
    CHECK(es.size() == 1);

    std::vector<RefEntry> rs;
    auto r = ref(7, "name");
    REQUIRE(parse_inode_refs(r, 300, rs));
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].parent == 300);
    CHECK(rs[0].index == 7);
    CHECK(rs[0].name == "name");
    r.resize(r.size() - 1);
    CHECK_FALSE(parse_inode_refs(r, 300, rs));

    format::inode_extref x{};
    x.parent_objectid = 256;
    x.index = 9;
    x.name_len = 3;
    auto xb = bytes_of(x);
    append(xb, "xyz");
    REQUIRE(parse_inode_extrefs(xb, rs));
    CHECK(rs.at(0).parent == 256);
    CHECK(rs.at(0).name == "xyz");
}

TEST_CASE("check fs: file extent validation") {
    FileExtentInfo fe;
    std::vector<std::string> p;
    auto reg = reg_extent(1 << 24, 8192);
    CHECK(parse_file_extent(0, reg, 4096, fe, p));
    CHECK(p.empty());
    CHECK(fe.end == 8192);
    CHECK(fe.nbytes == 8192);

    auto* f = reinterpret_cast<file_extent_item*>(reg.data());
    f->offset = 4096;  // 4096 + 8192 > the 8192-byte disk extent
    p.clear();
    CHECK(parse_file_extent(0, reg, 4096, fe, p));
    CHECK(p.size() == 1);

    f->offset = 0;
    f->compression = 9;
    p.clear();
    parse_file_extent(0, reg, 4096, fe, p);
    CHECK(p.size() == 1);

    f->compression = 0;
    f->disk_bytenr = 0;  // a hole: adds nothing to nbytes
    p.clear();
    CHECK(parse_file_extent(4096, reg, 4096, fe, p));
    CHECK(p.empty());
    CHECK(fe.hole);
    CHECK(fe.nbytes == 0);
    CHECK(fe.end == 4096 + 8192);

    // Inline: at offset 0 only, at most a sector, data length = ram_bytes.
    std::vector<uint8_t> in(FILE_EXTENT_INLINE_DATA_START + 100, 0);
    in[offsetof(file_extent_item, type)] = FILE_EXTENT_INLINE;
    in[offsetof(file_extent_item, ram_bytes)] = 100;
    p.clear();
    CHECK(parse_file_extent(0, in, 4096, fe, p));
    CHECK(p.empty());
    CHECK(fe.end == 4096);
    CHECK(fe.nbytes == 100);
    p.clear();
    parse_file_extent(4096, in, 4096, fe, p);
    CHECK(p.size() == 1);
    in[offsetof(file_extent_item, ram_bytes)] = 99;
    p.clear();
    parse_file_extent(0, in, 4096, fe, p);
    CHECK(p.size() == 1);

    p.clear();
    CHECK_FALSE(parse_file_extent(0, std::vector<uint8_t>(10), 4096, fe, p));
    CHECK(p.size() == 1);
    CHECK(mode_to_ft(0100644) == FT_REG_FILE);
    CHECK(mode_to_ft(0120777) == FT_SYMLINK);
    CHECK(mode_to_ft(0170000) == 0);
}

TEST_CASE("check fs: range coverage") {
    std::vector<Range> v;
    add_range(v, 0, 4096);
    add_range(v, 4096, 8192);  // touching: merged
    add_range(v, 16384, 20480);
    REQUIRE(v.size() == 2);
    CHECK(v[0].end == 8192);
    CHECK(covered_bytes(v, 0, 8192) == 8192);
    CHECK(covered_bytes(v, 4096, 20480) == 8192);
    CHECK(covered_bytes(v, 8192, 16384) == 0);
    CHECK(covered_bytes(v, 0, 4096) == 4096);
    CHECK(covered_bytes(v, 18000, 30000) == 20480 - 18000);
}

TEST_CASE("check fs: the item stream of a subvolume tree") {
    CHECK(run_stream(small_tree()).empty());

    auto t = small_tree();
    t.erase(t.begin() + 3);  // the DIR_INDEX
    auto ids = run_stream(t);
    CHECK(has(ids, "dir_index_missing"));
    CHECK(has(ids, "dir_isize"));

    t = small_tree();
    t.erase(t.begin() + 5);  // the inode ref
    ids = run_stream(t);
    CHECK(has(ids, "inode_ref_missing"));
    CHECK(has(ids, "inode_nlink"));

    t = small_tree();
    t[4].data = inode(0100644, 1, 4096, 8192);
    CHECK(run_stream(t) == std::vector<std::string>{"inode_nbytes"});

    t = small_tree();
    t[2].key.offset += 1;  // the DIR_ITEM's hash
    CHECK(run_stream(t) == std::vector<std::string>{"dir_name_hash"});

    // Without no-holes the extents must reach the end of the file.
    t = small_tree();
    t[4].data = inode(0100644, 1, 10000, 4096);
    CHECK(run_stream(t, false) == std::vector<std::string>{"file_extent_gap"});
    CHECK(run_stream(t, true).empty());

    // An inode with no links and an orphan item is being deleted: fine;
    // without the orphan item it is not.
    t = small_tree();
    t.push_back({{258, INODE_ITEM_KEY, 0}, inode(0100644, 0, 0)});
    CHECK(run_stream(t) == std::vector<std::string>{"inode_no_orphan"});
    t.push_back({{ORPHAN_OBJECTID, ORPHAN_ITEM_KEY, 258}, {}});
    CHECK(run_stream(t).empty());

    // The root directory must be there.
    t = small_tree();
    t.erase(t.begin());
    CHECK(run_stream(t) == std::vector<std::string>{"root_dir_missing"});

    t = small_tree();
    t.push_back({{FREE_INO_OBJECTID, INODE_ITEM_KEY, 0}, inode(0100600, 1, 0)});
    CHECK(run_stream(t) == std::vector<std::string>{"inode_cache_item"});
}

TEST_CASE("check fs: links from a directory to an older inode are matched at the end of the tree") {
    // / (256) holds dir "d" (300), which holds "a" (257): the child's inode
    // ref streams before its directory's entries.
    std::vector<Item> t = {
        {{256, INODE_ITEM_KEY, 0}, inode(040755, 1, 2)},
        {{256, INODE_REF_KEY, 256}, ref(0, "..")},
        {{256, DIR_ITEM_KEY, name_hash("d")}, dir_entry(300, FT_DIR, "d")},
        {{256, DIR_INDEX_KEY, 2}, dir_entry(300, FT_DIR, "d")},
        {{257, INODE_ITEM_KEY, 0}, inode(0100644, 1, 0)},
        {{257, INODE_REF_KEY, 300}, ref(5, "a")},
        {{300, INODE_ITEM_KEY, 0}, inode(040755, 1, 2)},
        {{300, INODE_REF_KEY, 256}, ref(2, "d")},
        {{300, DIR_ITEM_KEY, name_hash("a")}, dir_entry(257, FT_REG_FILE, "a")},
        {{300, DIR_INDEX_KEY, 5}, dir_entry(257, FT_REG_FILE, "a")},
    };
    CHECK(run_stream(t).empty());
    auto u = t;
    u.erase(u.begin() + 5);  // 257's inode ref
    auto ids = run_stream(u);
    CHECK(has(ids, "inode_ref_missing"));
    CHECK(has(ids, "inode_nlink"));
    u = t;
    u[5].data = ref(6, "a");  // the ref names another index
    CHECK(run_stream(u) == std::vector<std::string>{"dir_entry_mismatch"});
    u = t;
    u.erase(u.begin() + 8, u.begin() + 10);  // both entries of "a"
    u[6].data = inode(040755, 1, 0);
    ids = run_stream(u);
    CHECK(has(ids, "dir_item_missing"));
    CHECK(has(ids, "dir_index_missing"));
}

TEST_CASE("check fs: a tree's link log is kept when clean, and not with an index or inode above 32 bits") {
    auto logged = [](const std::vector<Item>& items) {
        FsTreeStream s(nullptr, [](Finding) {}, nullptr, nullptr);
        FsTreeInfo info;
        info.root = 256;
        info.super_gen = 10;
        info.no_holes = true;
        info.keep_log = true;
        s.begin(info);
        s.leaf(*make_leaf(items));
        s.end(true);
        return s.logged_trees();
    };
    CHECK(logged(small_tree()) == std::vector<uint64_t>{256});
    // The same tree with the file's index at 2^32 (valid, but the log's
    // records hold 32 bits): found clean, but no log is kept.
    const uint64_t big = 1ULL << 32;
    std::vector<Item> t = small_tree();
    t[3].key.offset = big;
    t[5].data = ref(big, "a");
    CHECK(run_stream(t).empty());
    CHECK(logged(t).empty());
    // The file's inode number above 32 bits: the same.
    const uint64_t ino = big + 257;
    t = small_tree();
    t[2].data = dir_entry(ino, FT_REG_FILE, "a");
    t[3].data = dir_entry(ino, FT_REG_FILE, "a");
    for (size_t i = 4; i < t.size(); ++i) t[i].key.objectid = ino;
    CHECK(run_stream(t).empty());
    CHECK(logged(t).empty());
    t[2].data = dir_entry(UINT32_MAX, FT_REG_FILE, "a");
    t[3].data = dir_entry(UINT32_MAX, FT_REG_FILE, "a");
    for (size_t i = 4; i < t.size(); ++i) t[i].key.objectid = UINT32_MAX;
    CHECK(run_stream(t).empty());
    CHECK(logged(t) == std::vector<uint64_t>{256});
}
