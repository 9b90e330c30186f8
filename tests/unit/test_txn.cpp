// The write engine: EditBlock leaf/node edits, delayed-ref merging, and
// transactions on a btk mkfs image checked against an in-memory model
// (inserts with splits, deletes with merges, copy-once, abort, reopen).
#include <doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "edit_block.h"
#include "delayed_refs.h"
#include "fs.h"
#include "mkfs.h"
#include "tree.h"
#include "txn.h"

using namespace btk;
using namespace btk::format;

namespace {

EditBlock empty_leaf(uint32_t ns) {
    EditBlock b(std::vector<uint8_t>(ns, 0));
    b.hdr().level = 0;
    return b;
}

std::vector<uint8_t> pattern(uint32_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    for (uint32_t i = 0; i < n; ++i) v[i] = uint8_t(seed * 31 + i);
    return v;
}

std::string file_bytes(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

struct Image {
    std::string path;
    explicit Image(uint32_t nodesize) {
        char t[] = "/tmp/btk-test-txn-XXXXXX";
        int fd = mkstemp(t);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = t;
        MkfsOptions o;
        o.devices = {path};
        o.byte_count = 256ull << 20;
        o.nodesize = nodesize;
        o.force = true;
        o.quiet = true;
        o.nodiscard = true;
        auto r = mkfs_run(o);
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    }
    ~Image() { ::unlink(path.c_str()); }
};

// Items of tree 5 with objectid >= 1000 (the test's own keys).
std::map<Key, std::vector<uint8_t>> read_back(const std::string& path) {
    std::map<Key, std::vector<uint8_t>> out;
    auto fs = Filesystem::open({path});
    REQUIRE(fs.ok());
    auto root = (*fs)->find_root(FS_TREE_OBJECTID);
    REQUIRE(root.ok());
    Status s = for_each_item(**fs, *root, Key{1000, 0, 0}, Key::max(), [&](const Key& k, std::span<const uint8_t> d) {
        out[k] = std::vector<uint8_t>(d.begin(), d.end());
        return true;
    });
    REQUIRE(s.ok());
    return out;
}

}  // namespace

TEST_CASE("EditBlock keeps leaf items packed through inserts, resizes and deletes") {
    const uint32_t ns = 4096;
    EditBlock b = empty_leaf(ns);
    std::map<Key, std::vector<uint8_t>> model;
    std::mt19937 rng(7);
    for (int round = 0; round < 2000; ++round) {
        const int op = int(rng() % 3);
        if (op == 0 || model.empty()) {
            Key k{rng() % 500, uint8_t(rng() % 4), rng() % 3};
            if (model.count(k)) continue;
            const uint32_t sz = rng() % 120;
            if (b.leaf_free() < sz + sizeof(format::item)) continue;
            const uint32_t slot = b.lower_bound(k);
            b.leaf_insert(slot, k, sz);
            auto data = pattern(sz, uint32_t(round));
            if (sz) std::memcpy(b.item_data(slot).data(), data.data(), sz);  // empty: null data
            model[k] = data;
        } else if (op == 1) {
            auto it = std::next(model.begin(), long(rng() % model.size()));
            const uint32_t slot = b.lower_bound(it->first);
            const uint32_t sz = rng() % 160;
            if (sz > it->second.size() && sz - it->second.size() > b.leaf_free()) continue;
            b.leaf_resize(slot, sz);
            it->second.resize(sz, 0);
        } else {
            auto it = std::next(model.begin(), long(rng() % model.size()));
            b.leaf_delete(b.lower_bound(it->first), 1);
            model.erase(it);
        }
        REQUIRE(b.check_layout().ok());
    }
    REQUIRE(b.nritems() == model.size());
    uint32_t i = 0;
    for (const auto& [k, d] : model) {
        CHECK(b.key(i) == k);
        auto got = b.item_data(i);
        CHECK(std::vector<uint8_t>(got.begin(), got.end()) == d);
        ++i;
    }
    // Moving the tail to a sibling and back keeps every item.
    EditBlock right = empty_leaf(ns);
    const uint32_t n = b.nritems();
    b.leaf_move_tail_to(n / 2, right);
    CHECK(b.nritems() + right.nritems() == n);
    right.leaf_move_head_to(right.nritems(), b);
    CHECK(b.nritems() == n);
    CHECK(b.check_layout().ok());
}

TEST_CASE("EditBlock rejects a leaf whose item data is not packed") {
    EditBlock b = empty_leaf(4096);
    b.leaf_insert(0, Key{1, 1, 1}, 10);
    b.leaf_insert(1, Key{2, 1, 1}, 10);
    reinterpret_cast<format::item*>(b.bytes().data() + sizeof(header))[1].offset = 5;
    CHECK_FALSE(b.check_layout().ok());
}

TEST_CASE("delayed refs merge: an add and a drop of the same ref cancel") {
    DelayedRefs r;
    r.add(4096, 4096, false, 0, RefId::tree(5), +1);
    r.add(4096, 4096, false, 0, RefId::tree(5), -1);
    REQUIRE(r.find(4096) != nullptr);
    CHECK(r.find(4096)->deltas.empty());
    CHECK(r.merged() == 1);
    r.add_new(8192, 4096, true, 0, RefId::data(5, 257, 0));
    r.add(8192, 4096, true, 0, RefId::data(5, 257, 0), -1);
    CHECK(r.find(8192)->new_extent);
    CHECK(r.find(8192)->total() == 0);
    r.add(8192, 4096, true, 0, RefId::data(5, 258, 0), 2);
    CHECK(r.find(8192)->total() == 2);
    auto heads = r.take();
    CHECK(heads.size() == 2);
    CHECK(r.empty());
}

TEST_CASE("transactions: inserts and deletes against a model, copy once, abort, reopen") {
    for (uint32_t ns : {4096u, 16384u}) {
        CAPTURE(ns);
        Image img(ns);
        std::map<Key, std::vector<uint8_t>> model;
        std::mt19937 rng(ns);
        for (int txn = 0; txn < 4; ++txn) {
            OpenOptions oo;
            oo.writable = true;
            auto fs = Filesystem::open({img.path}, oo);
            REQUIRE(fs.ok());
            auto t = Transaction::begin(**fs);
            REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error().message));
            const int n = txn < 2 ? 3000 : 1500;
            for (int i = 0; i < n; ++i) {
                const bool del = txn >= 2 && !model.empty() && rng() % 2;
                if (del) {
                    auto it = std::next(model.begin(), long(rng() % model.size()));
                    REQUIRE((*t)->delete_item(FS_TREE_OBJECTID, it->first).ok());
                    model.erase(it);
                } else {
                    Key k{1000 + rng() % 100000, XATTR_ITEM_KEY, rng() % 1000};
                    if (model.count(k)) continue;
                    auto d = pattern(uint32_t(rng() % 300), uint32_t(i));
                    REQUIRE((*t)->insert_item(FS_TREE_OBJECTID, k, d).ok());
                    model[k] = d;
                }
            }
            CHECK((*t)->stats().max_cow_per_block <= 1);
            for (const auto& [b, c] : (*t)->cow_counts()) CHECK(c == 1);
            auto s = (*t)->commit();
            REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
            CHECK(read_back(img.path) == model);
        }
        // Abort: nothing reaches the image.
        const std::string before = file_bytes(img.path);
        {
            OpenOptions oo;
            oo.writable = true;
            auto fs = Filesystem::open({img.path}, oo);
            REQUIRE(fs.ok());
            auto t = Transaction::begin(**fs);
            REQUIRE(t.ok());
            for (int i = 0; i < 500; ++i)
                REQUIRE((*t)->insert_item(FS_TREE_OBJECTID, Key{900000 + uint64_t(i), XATTR_ITEM_KEY, 0}, pattern(100, 1)).ok());
            auto ext = (*t)->alloc_data(1 << 20);
            REQUIRE(ext.ok());
            REQUIRE((*t)->write_data(ext->first, pattern(1 << 20, 3)).ok());
            (*t)->abort();
        }
        CHECK(file_bytes(img.path) == before);
        // Deleting everything collapses the tree back to a small one.
        {
            OpenOptions oo;
            oo.writable = true;
            auto fs = Filesystem::open({img.path}, oo);
            REQUIRE(fs.ok());
            auto t = Transaction::begin(**fs);
            REQUIRE(t.ok());
            auto n = (*t)->delete_range(FS_TREE_OBJECTID, Key{1000, 0, 0}, Key::max());
            REQUIRE(n.ok());
            CHECK(*n == model.size());
            REQUIRE((*t)->commit().ok());
            auto root = (*fs)->find_root(FS_TREE_OBJECTID);
            REQUIRE(root.ok());
            CHECK(root->level == 0);
        }
        CHECK(read_back(img.path).empty());
    }
}
