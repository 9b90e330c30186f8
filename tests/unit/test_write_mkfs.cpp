// BlockWriter (every copy, batching) and mkfs images re-opened with the
// reader: trees, block group accounting, free space tree, reproducibility,
// and bad input leaving the target untouched.
#include <doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "csum.h"
#include "fs.h"
#include "mkfs.h"
#include "tree.h"
#include "write_block.h"

using namespace btk;
using namespace btk::format;

namespace {

constexpr uint64_t MiB = 1 << 20;

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/btk-test-mkfs-XXXXXX";
        REQUIRE(mkdtemp(t) != nullptr);
        path = t;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)!system(cmd.c_str());
    }
};

std::vector<uint8_t> slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

MkfsOptions base_opts(const std::string& img) {
    MkfsOptions o;
    o.devices = {img};
    o.byte_count = 256 * MiB;
    o.fsid = "11111111-2222-4333-8444-555555555555";
    o.device_uuid = "66666666-7777-4888-9999-aaaaaaaaaaaa";
    o.time = 1700000000;
    o.quiet = true;
    return o;
}

std::vector<std::pair<Key, std::vector<uint8_t>>> tree_items(Filesystem& fs, uint64_t tree) {
    std::vector<std::pair<Key, std::vector<uint8_t>>> out;
    RootRef root;
    if (tree == CHUNK_TREE_OBJECTID) {
        root = fs.chunk_root();
    } else if (tree == ROOT_TREE_OBJECTID) {
        root = fs.tree_root();
    } else {
        auto r = fs.find_root(tree);
        REQUIRE(r.ok());
        root = *r;
    }
    TreeCursor c(fs, root);
    auto ok = c.first();
    REQUIRE(ok.ok());
    while (c.valid()) {
        out.push_back({c.key(), std::vector<uint8_t>(c.data().begin(), c.data().end())});
        auto n = c.next();
        REQUIRE(n.ok());
    }
    return out;
}

}  // namespace

TEST_CASE("BlockWriter writes every DUP copy and batches contiguous blocks") {
    TempDir d;
    const std::string img = d.path + "/w.img";
    {
        int fd = open(img.c_str(), O_CREAT | O_RDWR, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(ftruncate(fd, 64 * MiB) == 0);
        close(fd);
    }
    auto dev = Device::open(img, true);
    REQUIRE(dev.ok());
    // One DUP chunk: logical 1 MiB, stripes at 1 MiB and 9 MiB.
    std::vector<uint8_t> ci(chunk_item_size(2), 0);
    auto* c = reinterpret_cast<chunk*>(ci.data());
    c->length = 8 * MiB;
    c->owner = EXTENT_TREE_OBJECTID;
    c->stripe_len = 65536;
    c->type = BLOCK_GROUP_METADATA | BLOCK_GROUP_DUP;
    c->io_align = 65536;
    c->io_width = 65536;
    c->sector_size = 4096;
    c->num_stripes = 2;
    c->sub_stripes = 1;
    auto* st = &c->stripe;
    st[0].devid = 1;
    st[0].offset = 1 * MiB;
    st[1].devid = 1;
    st[1].offset = 9 * MiB;
    ChunkMap map;
    REQUIRE(map.add(1 * MiB, ci).ok());

    WriteContext ctx;
    ctx.nodesize = 4096;
    ctx.csum_type = CSUM_TYPE_SHA256;
    std::memset(ctx.fsid, 0x5a, 16);
    std::memset(ctx.chunk_tree_uuid, 0xc3, 16);
    ctx.generation = 42;
    ctx.chunks = &map;
    BlockWriter w(ctx);
    for (int i = 0; i < 10; ++i) {
        std::vector<uint8_t> b(4096, 0);
        auto* h = reinterpret_cast<header*>(b.data());
        h->bytenr = 1 * MiB + uint64_t(i) * 4096;
        h->owner = 2;
        b[200] = uint8_t(i);
        REQUIRE(w.add(std::move(b)).ok());
    }
    // Same block twice is refused; a block outside any chunk too.
    {
        std::vector<uint8_t> b(4096, 0);
        reinterpret_cast<header*>(b.data())->bytenr = 1 * MiB;
        CHECK(!w.add(std::move(b)).ok());
        std::vector<uint8_t> b2(4096, 0);
        reinterpret_cast<header*>(b2.data())->bytenr = 100 * MiB;
        CHECK(!w.add(std::move(b2)).ok());
        CHECK(!w.add(std::vector<uint8_t>(100, 0)).ok());
    }
    w.set_devices({{1, dev->get()}});
    REQUIRE(w.flush().ok());
    CHECK(w.write_calls() == 2);  // one run per copy
    CHECK(w.bytes_written() == 2 * 10 * 4096);

    auto raw = slurp(img);
    for (uint64_t base : {1 * MiB, 9 * MiB})
        for (int i = 0; i < 10; ++i) {
            const uint8_t* p = raw.data() + base + uint64_t(i) * 4096;
            auto* h = reinterpret_cast<const header*>(p);
            CHECK(h->bytenr == 1 * MiB + uint64_t(i) * 4096);
            CHECK(h->generation == 42);
            CHECK(h->flags == (HEADER_FLAG_WRITTEN | (MIXED_BACKREF_REV << BACKREF_REV_SHIFT)));
            CHECK(h->fsid[3] == 0x5a);
            CHECK(h->chunk_tree_uuid[0] == 0xc3);
            CHECK(p[200] == i);
            uint8_t sum[32];
            csum_compute(CSUM_TYPE_SHA256, {p + 32, 4096 - 32}, sum);
            CHECK(std::memcmp(sum, h->csum, 32) == 0);
        }
}

TEST_CASE("mkfs: the image opens with the reader and its accounting adds up") {
    TempDir d;
    for (uint32_t ns : {4096u, 16384u, 65536u})
        for (const char* csum : {"crc32c", "blake2"})
            for (const char* mprof : {"dup", "single"}) {
                CAPTURE(ns);
                CAPTURE(csum);
                CAPTURE(mprof);
                const std::string img = d.path + "/m.img";
                unlink(img.c_str());
                auto o = base_opts(img);
                o.nodesize = ns;
                o.csum = csum;
                o.metadata_profile = mprof;
                o.label = "lbl";
                auto r = mkfs_run(o);
                REQUIRE_MESSAGE(r.ok(), r.error().message);
                CHECK(r->write_calls <= 6);

                auto fs = Filesystem::open({img});
                REQUIRE_MESSAGE(fs.ok(), fs.error().message);
                auto& f = **fs;
                CHECK(f.nodesize() == ns);
                CHECK(std::string(f.super().label) == "lbl");
                CHECK(f.super().generation == 1);
                CHECK(f.chunk_map().chunks().size() == 3);
                const int copies = std::string(mprof) == "dup" ? 2 : 1;
                CHECK(f.num_copies(f.super().root) == copies);

                // Every tree block has a metadata item; block group used adds up.
                auto ext = tree_items(f, EXTENT_TREE_OBJECTID);
                std::map<uint64_t, uint64_t> bg_used;
                uint64_t meta_items = 0, used_sum = 0;
                for (auto& [k, v] : ext) {
                    if (k.type == BLOCK_GROUP_ITEM_KEY) {
                        bg_used[k.objectid] = reinterpret_cast<const block_group_item*>(v.data())->used;
                        used_sum += bg_used[k.objectid];
                    }
                    if (k.type == METADATA_ITEM_KEY) {
                        ++meta_items;
                        REQUIRE(v.size() == 33);
                        auto blk = f.read_block(k.objectid);
                        REQUIRE_MESSAGE(blk.ok(), blk.error().message);
                        CHECK((*blk)->level() == k.offset);
                        CHECK(v[24] == TREE_BLOCK_REF_KEY);
                        CHECK(load_le64(v.data() + 25) == (*blk)->owner());
                    }
                }
                CHECK(bg_used.size() == 3);
                CHECK(meta_items == r->tree_blocks);
                CHECK(used_sum == uint64_t(r->tree_blocks) * ns);
                CHECK(f.super().bytes_used == used_sum);

                // Free space tree: per block group, extents + used == length.
                auto fst = tree_items(f, FREE_SPACE_TREE_OBJECTID);
                std::map<uint64_t, uint64_t> free_sum;
                uint64_t cur_bg = 0;
                for (auto& [k, v] : fst) {
                    if (k.type == FREE_SPACE_INFO_KEY) {
                        cur_bg = k.objectid;
                        free_sum[cur_bg] = 0;
                        CHECK(bg_used.count(cur_bg));
                    } else {
                        CHECK(k.type == FREE_SPACE_EXTENT_KEY);
                        free_sum[cur_bg] += k.offset;
                    }
                }
                for (const auto& [start, ch] : f.chunk_map().chunks())
                    CHECK(free_sum[start] + bg_used[start] == ch.length);

                // Root directory of the top subvolume.
                auto fsi = tree_items(f, FS_TREE_OBJECTID);
                REQUIRE(fsi.size() == 2);
                CHECK(fsi[0].first == Key{256, INODE_ITEM_KEY, 0});
                auto* ii = reinterpret_cast<const inode_item*>(fsi[0].second.data());
                CHECK(ii->mode == 040755);
                CHECK(ii->mtime.sec == 1700000000);
                CHECK(tree_items(f, DEV_TREE_OBJECTID).size() == size_t(2 * copies + 1));
                CHECK(tree_items(f, CHUNK_TREE_OBJECTID).size() == 4);
                CHECK(tree_items(f, CSUM_TREE_OBJECTID).empty());
                CHECK(tree_items(f, UUID_TREE_OBJECTID).size() == 1);
                CHECK(tree_items(f, DATA_RELOC_TREE_OBJECTID).size() == 2);
            }
}

TEST_CASE("mkfs: same uuids and time give identical bytes") {
    TempDir d;
    const std::string a = d.path + "/a.img", b = d.path + "/b.img";
    auto oa = base_opts(a), ob = base_opts(b);
    oa.csum = ob.csum = "xxhash";
    REQUIRE(mkfs_run(oa).ok());
    REQUIRE(mkfs_run(ob).ok());
    CHECK(slurp(a) == slurp(b));
}

TEST_CASE("mkfs: bad input is refused and the image is untouched") {
    TempDir d;
    const std::string img = d.path + "/x.img";
    REQUIRE(mkfs_run(base_opts(img)).ok());
    auto before = slurp(img);
    auto expect_fail = [&](MkfsOptions o, const char* what) {
        CAPTURE(what);
        auto r = mkfs_run(o);
        REQUIRE(!r.ok());
        CHECK(r.error().message.find('\n') == std::string::npos);
        CHECK(slurp(img) == before);
    };
    auto o = base_opts(img);
    expect_fail(o, "existing filesystem without -f");
    o.force = true;
    auto bad = o;
    bad.features = {"no-such-feature"};
    expect_fail(bad, "unknown feature");
    bad = o;
    bad.nodesize = 12288;
    expect_fail(bad, "nodesize not a power of two");
    bad = o;
    bad.nodesize = 2048;
    expect_fail(bad, "nodesize below sectorsize");
    bad = o;
    bad.byte_count = 40 * MiB;
    expect_fail(bad, "too small");
    bad = o;
    bad.csum = "md5";
    expect_fail(bad, "unknown csum");
    bad = o;
    bad.metadata_profile = "raid1";
    expect_fail(bad, "raid1 on one device");
    bad = o;
    bad.fsid = "not-a-uuid";
    expect_fail(bad, "bad uuid");
    bad = o;
    bad.label = std::string(256, 'x');
    expect_fail(bad, "label too long");
    // With -f it is overwritten.
    o.fsid = "99999999-2222-4333-8444-555555555555";
    REQUIRE(mkfs_run(o).ok());
    CHECK(slurp(img) != before);
}

TEST_CASE("mkfs: features, mixed block groups, size parsing") {
    TempDir d;
    const std::string img = d.path + "/f.img";
    auto o = base_opts(img);
    o.features = {"^free-space-tree,^no-holes", "^skinny-metadata"};
    auto r = mkfs_run(o);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(!(r->compat_ro & FEATURE_COMPAT_RO_FREE_SPACE_TREE));
    CHECK(!(r->incompat & FEATURE_INCOMPAT_NO_HOLES));
    CHECK(!(r->incompat & FEATURE_INCOMPAT_SKINNY_METADATA));
    {
        auto fs = Filesystem::open({img});
        REQUIRE(fs.ok());
        CHECK(!(*fs)->find_root(FREE_SPACE_TREE_OBJECTID).ok());
        for (auto& [k, v] : tree_items(**fs, EXTENT_TREE_OBJECTID))
            if (k.type == EXTENT_ITEM_KEY) {
                CHECK(k.offset == 16384);
                CHECK(v.size() == 24 + 18 + 9);
            }
    }
    unlink(img.c_str());
    o = base_opts(img);
    o.mixed = true;
    r = mkfs_run(o);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(r->nodesize == 4096);
    CHECK(r->chunks.size() == 2);
    CHECK((r->incompat & FEATURE_INCOMPAT_MIXED_GROUPS));
    CHECK(Filesystem::open({img}).ok());

    CHECK(*parse_size_arg("16k") == 16384);
    CHECK(*parse_size_arg("1G") == (1ULL << 30));
    CHECK(*parse_size_arg("1GiB") == (1ULL << 30));
    CHECK(*parse_size_arg("4096") == 4096);
    CHECK(!parse_size_arg("").ok());
    CHECK(!parse_size_arg("k").ok());
    CHECK(!parse_size_arg("12q").ok());
    CHECK(!parse_size_arg("99999999999999999999").ok());
    uint8_t u[16];
    CHECK(parse_uuid("11111111-2222-4333-8444-555555555555", u));
    CHECK(format_uuid(u) == "11111111-2222-4333-8444-555555555555");
    CHECK(!parse_uuid("11111111-2222-4333-8444-55555555555g", u));
}
