// mkfs on several devices, re-opened with the reader: chunk geometry as
// mkfs.btrfs 6.2 makes it (sizes taken from its output for the same
// devices), device items and extents, RAID5/6 parity of the rows written,
// and the quota tree.
#include <doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "fs.h"
#include "mkfs.h"
#include "mkfs_layout.h"
#include "tree.h"

using namespace btk;
using namespace btk::format;

namespace {

constexpr uint64_t MiB = 1 << 20;

struct Dir {
    std::string path;
    Dir() {
        char t[] = "/tmp/btk-test-mkfs-layout-XXXXXX";
        REQUIRE(mkdtemp(t) != nullptr);
        path = t;
    }
    ~Dir() { (void)!system(("rm -rf '" + path + "'").c_str()); }
};

struct Made {
    std::vector<std::string> imgs;
    std::unique_ptr<Filesystem> fs;
};

Made make(const Dir& d, int ndev, uint64_t size, const char* mprof, const char* dprof,
          std::vector<std::string> features = {}) {
    Made m;
    MkfsOptions o;
    for (int i = 0; i < ndev; ++i) {
        m.imgs.push_back(d.path + "/d" + std::to_string(i) + ".img");
        unlink(m.imgs.back().c_str());
    }
    o.devices = m.imgs;
    o.byte_count = size;
    o.metadata_profile = mprof;
    o.data_profile = dprof;
    o.features = std::move(features);
    o.quiet = true;
    auto r = mkfs_run(o);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    auto fs = Filesystem::open(m.imgs);
    REQUIRE_MESSAGE(fs.ok(), fs.error().message);
    m.fs = std::move(*fs);
    return m;
}

const Chunk& chunk_of(const Filesystem& fs, uint64_t type) {
    for (const auto& [l, c] : fs.chunk_map().chunks())
        if ((c.type & BLOCK_GROUP_TYPE_MASK) == type) return c;
    FAIL("no chunk of type " << type);
    throw 0;
}

uint8_t gf_mul2(uint8_t v) { return uint8_t((v << 1) ^ ((v & 0x80) ? 0x1d : 0)); }

}  // namespace

TEST_CASE("mkfs layout: stripe counts and sizes match mkfs.btrfs 6.2 on 4 x 1 GiB") {
    Dir d;
    struct Want {
        const char *m, *dp;
        uint64_t sys_len, meta_len, data_len;
        uint16_t data_stripes_n, sub;
    };
    // Lengths as mkfs.btrfs 6.2 prints them for four 1 GiB images.
    const Want wants[] = {
        {"raid1", "raid0", 8 * MiB, 256 * MiB, 429391872, 4, 1},
        {"raid10", "raid10", 16 * MiB, 128 * MiB, 214695936, 4, 2},
        {"raid1c3", "raid5", 8 * MiB, 256 * MiB, 322043904, 4, 1},
        {"raid1c4", "raid6", 8 * MiB, 256 * MiB, 214695936, 4, 1},
    };
    for (const auto& w : wants) {
        CAPTURE(w.m);
        CAPTURE(w.dp);
        auto m = make(d, 4, 1024 * MiB, w.m, w.dp);
        auto& fs = *m.fs;
        CHECK(fs.super().num_devices == 4);
        CHECK(fs.super().total_bytes == 4096 * MiB);
        CHECK(chunk_of(fs, BLOCK_GROUP_SYSTEM).length == w.sys_len);
        CHECK(chunk_of(fs, BLOCK_GROUP_METADATA).length == w.meta_len);
        const Chunk& data = chunk_of(fs, BLOCK_GROUP_DATA);
        CHECK(data.length == w.data_len);
        CHECK(data.num_stripes == w.data_stripes_n);
        CHECK(data.sub_stripes == w.sub);
        CHECK(data.stripe_len == STRIPE_LEN);
        CHECK(data.io_align == STRIPE_LEN);
        // Stripes on distinct devices, each device once.
        std::map<uint64_t, int> per_dev;
        for (const auto& s : data.stripes) ++per_dev[s.devid];
        CHECK(per_dev.size() == 4);
    }
}

TEST_CASE("mkfs layout: RAID6 metadata rows carry P and Q parity") {
    Dir d;
    auto m = make(d, 4, 300 * MiB, "raid6", "raid5");
    auto& fs = *m.fs;
    CHECK((fs.super().incompat_flags & FEATURE_INCOMPAT_RAID56) != 0);
    const Chunk& c = chunk_of(fs, BLOCK_GROUP_METADATA);
    REQUIRE(c.num_stripes == 4);
    // Row 0 holds the first tree blocks: data stripes 0,1 on stripe index 0,1,
    // P on 2, Q on 3 (rotation starts at 0).
    std::vector<std::vector<uint8_t>> s(4, std::vector<uint8_t>(STRIPE_LEN));
    std::vector<std::unique_ptr<Device>> devs;
    for (int i = 0; i < 4; ++i) {
        const auto& st = c.stripes[size_t(i)];
        auto dev = Device::open(m.imgs[st.devid - 1]);
        REQUIRE(dev.ok());
        REQUIRE((*dev)->read(st.offset, s[size_t(i)]).ok());
    }
    bool nonzero = false;
    for (size_t k = 0; k < STRIPE_LEN; ++k) {
        nonzero |= s[0][k] != 0;
        CHECK_MESSAGE((s[0][k] ^ s[1][k]) == s[2][k], "P at " << k);
        CHECK_MESSAGE(uint8_t(gf_mul2(s[1][k]) ^ s[0][k]) == s[3][k], "Q at " << k);
        if ((s[0][k] ^ s[1][k]) != s[2][k]) break;
    }
    CHECK(nonzero);
    // The root tree reads back through the RAID6 mapping.
    std::vector<uint8_t> blk(fs.nodesize());
    CHECK(fs.read_logical(fs.super().root, blk).ok());
}

TEST_CASE("mkfs layout: quota tree counts the top subvolume's blocks") {
    Dir d;
    auto m = make(d, 2, 300 * MiB, "", "", {"quota,block-group-tree"});
    auto& fs = *m.fs;
    CHECK((fs.super().compat_ro_flags & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE) != 0);
    CHECK(fs.super().block_group_root != 0);
    CHECK((chunk_of(fs, BLOCK_GROUP_METADATA).type & BLOCK_GROUP_RAID1) != 0);
    auto q = fs.find_root(QUOTA_TREE_OBJECTID);
    REQUIRE(q.ok());
    TreeCursor cur(fs, *q);
    REQUIRE(cur.first().ok());
    int n = 0;
    while (cur.valid()) {
        if (cur.key().type == QGROUP_INFO_KEY) {
            CHECK(cur.key().offset == FS_TREE_OBJECTID);
            const auto* info = reinterpret_cast<const qgroup_info_item*>(cur.data().data());
            CHECK(info->rfer == fs.nodesize());
            CHECK(info->excl == fs.nodesize());
        }
        if (cur.key().type == QGROUP_STATUS_KEY) {
            const auto* st = reinterpret_cast<const qgroup_status_item*>(cur.data().data());
            CHECK(st->flags == QGROUP_STATUS_FLAG_ON);
            CHECK(cur.data().size() == QGROUP_STATUS_V1_SIZE);
        }
        ++n;
        REQUIRE(cur.next().ok());
    }
    CHECK(n == 3);
}

TEST_CASE("mkfs layout: a content hook reserves data space and writes data on any profile") {
    Dir d;
    for (const char* dp : {"raid10", "raid5", "raid1", "raid6"}) {
        CAPTURE(dp);
        std::vector<std::string> imgs;
        for (int i = 0; i < 4; ++i) imgs.push_back(d.path + "/h" + std::to_string(i) + ".img");
        for (auto& p : imgs) unlink(p.c_str());
        std::vector<uint8_t> payload(300 * 1024);
        for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i * 7 + i / 4096);
        uint64_t at = 0;
        MkfsContentHook hook;
        hook.plan = [&](MkfsLayout& x) -> Status {
            BTK_TRY(reserve_data(x, 200 * MiB));
            uint64_t cap = 0;
            for (const auto& c : x.chunks)
                if (c.type & BLOCK_GROUP_DATA) {
                    cap += c.length;
                    if (!at) at = c.logical;
                }
            CHECK(cap >= 200 * MiB);
            x.data_extents.push_back({at + 64 * 1024 - 4096, payload.size()});
            return {};
        };
        hook.write = [&](MkfsLayout&, MkfsWriter& w) { return w.write_data(at + 64 * 1024 - 4096, payload); };
        MkfsOptions o;
        o.devices = imgs;
        o.byte_count = 1024 * MiB;
        o.data_profile = dp;
        o.quiet = true;
        o.content = &hook;
        auto r = mkfs_run(o);
        REQUIRE_MESSAGE(r.ok(), r.error().message);
        auto fs = Filesystem::open(imgs);
        REQUIRE_MESSAGE(fs.ok(), fs.error().message);
        std::vector<uint8_t> back(payload.size());
        for (int mirror = 0; mirror < (*fs)->num_copies(at); ++mirror) {
            CAPTURE(mirror);
            REQUIRE((*fs)->read_logical(at + 64 * 1024 - 4096, back, mirror).ok());
            CHECK(back == payload);
        }
        uint64_t data_used = 0;
        for (const auto& c : r->chunks)
            if (c.type & BLOCK_GROUP_DATA) data_used += c.used;
        CHECK(data_used == payload.size());
    }
}
