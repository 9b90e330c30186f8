// mkfs trees: the items of every initial tree, computed from the planned
// chunks and the current block addresses, iterated to a fixed point.
#include "mkfs_layout.h"

#include "csum.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    return std::vector<uint8_t>(p, p + sizeof(T));
}

// Tree ids, in the order their blocks are placed after the chunk tree.
constexpr uint64_t META_TREES[] = {ROOT_TREE_OBJECTID,       EXTENT_TREE_OBJECTID,     DEV_TREE_OBJECTID,
                                   FS_TREE_OBJECTID,         CSUM_TREE_OBJECTID,       QUOTA_TREE_OBJECTID,
                                   UUID_TREE_OBJECTID,       FREE_SPACE_TREE_OBJECTID, BLOCK_GROUP_TREE_OBJECTID,
                                   DATA_RELOC_TREE_OBJECTID};

// A content step's subvolume trees have ids in [FIRST_FREE, LAST_FREE].
bool is_new_subvol(uint64_t id) { return id >= FIRST_FREE_OBJECTID && id <= LAST_FREE_OBJECTID; }
bool is_subvol(uint64_t id) { return id == FS_TREE_OBJECTID || is_new_subvol(id); }

inode_item dir_inode(const MkfsLayout& x, uint64_t nbytes, bool top = false) {
    inode_item i{};
    if (top && x.root_owner) {
        i.uid = x.root_owner->first;
        i.gid = x.root_owner->second;
    }
    i.generation = MKFS_GEN;
    i.transid = MKFS_GEN;
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

root_item make_root_item(const MkfsLayout& x, uint64_t tree) {
    const TreeState& t = x.trees.at(tree);
    root_item r{};
    r.inode.generation = 1;
    r.inode.size = 3;
    r.inode.nlink = 1;
    r.inode.nbytes = x.ns;
    r.inode.mode = 040755;
    r.generation = MKFS_GEN;
    r.root_dirid = (is_subvol(tree) || tree == DATA_RELOC_TREE_OBJECTID) ? FIRST_FREE_OBJECTID : 0;
    r.bytenr = t.addrs.back();
    r.bytes_used = uint64_t(x.ns) * t.addrs.size();
    r.refs = 1;
    r.level = t.plan.root_level;
    r.generation_v2 = MKFS_GEN;
    if (is_subvol(tree)) {
        if (tree == FS_TREE_OBJECTID) std::memcpy(r.uuid, x.fs_uuid, 16);
        r.ctime.sec = uint64_t(x.now_sec);
        r.ctime.nsec = x.now_nsec;
        r.otime = r.ctime;
    }
    if (auto it = x.content_roots.find(tree); it != x.content_roots.end()) {
        std::memcpy(r.uuid, it->second.uuid, 16);
        r.flags = it->second.readonly ? ROOT_SUBVOL_RDONLY : 0;
        r.ctransid = MKFS_GEN;
        r.otransid = MKFS_GEN;
        // Without ROOT_ITEM_INIT the kernel takes the item for a pre-3.x one
        // and clears its flags (the ro flag with them).
        r.inode.flags = INODE_ROOT_ITEM_INIT;
    }
    return r;
}

// Assigns addresses for the current plans: the chunk tree in the system
// chunk, every other tree in the first metadata chunk.
Status assign_addresses(MkfsLayout& x) {
    const ChunkPlan* sys_c = nullptr;
    std::vector<const ChunkPlan*> meta_c;
    for (const auto& c : x.chunks) {
        if (!sys_c && (c.type & BLOCK_GROUP_SYSTEM)) sys_c = &c;
        if (c.type & BLOCK_GROUP_METADATA) meta_c.push_back(&c);
    }
    if (!sys_c || meta_c.empty())
        return make_error(Errc::invalid_argument, "internal error: no system or metadata chunk");
    MkfsBlockAlloc sys{{sys_c}, x.ns, sys_c->logical};
    // Trees a content step wrote keep their blocks; the others follow them.
    MkfsBlockAlloc meta{meta_c, x.ns, std::max(x.meta_cursor, meta_c[0]->logical)};
    for (auto& [id, t] : x.trees) {
        if (t.prebuilt) continue;
        t.addrs.clear();
        t.levels.clear();
    }
    auto fill = [&](uint64_t id, MkfsBlockAlloc& a) -> Status {
        TreeState& t = x.trees.at(id);
        if (t.prebuilt) return {};
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
    for (auto& [id, t] : x.trees)
        if (is_new_subvol(id)) BTK_TRY(fill(id, meta));
    for (auto& c : x.chunks) c.used = 0;
    auto count = [&](uint64_t a, uint64_t len) {
        for (auto& c : x.chunks)
            if (a >= c.logical && a < c.logical + c.length) c.used += len;
    };
    for (auto& [id, t] : x.trees)
        for (uint64_t a : t.addrs) count(a, x.ns);
    for (auto [s, l] : x.data_extents) count(s, l);
    return {};
}

std::vector<uint8_t> tree_block_extent(const MkfsLayout& x, uint64_t tree, uint64_t addr, uint8_t level, Key& k) {
    extent_item ei{};
    ei.refs = 1;
    ei.generation = MKFS_GEN;
    ei.flags = EXTENT_FLAG_TREE_BLOCK;
    auto b = bytes_of(ei);
    k = {addr, METADATA_ITEM_KEY, level};
    if (!(x.incompat & FEATURE_INCOMPAT_SKINNY_METADATA)) {
        tree_block_info tbi{};
        if (auto fk = x.first_keys.find(addr); fk != x.first_keys.end()) fk->second.to_disk(tbi.key);
        tbi.level = level;
        auto tb = bytes_of(tbi);
        b.insert(b.end(), tb.begin(), tb.end());
        k = {addr, EXTENT_ITEM_KEY, x.ns};
    }
    extent_inline_ref ir{};
    ir.type = TREE_BLOCK_REF_KEY;
    ir.offset = tree;
    auto rb = bytes_of(ir);
    b.insert(b.end(), rb.begin(), rb.end());
    return b;
}

void add_free_space(MkfsLayout& x, std::map<Key, std::vector<uint8_t>>& out) {
    std::vector<std::pair<uint64_t, uint64_t>> used;  // (start, end)
    for (const auto& [id, t] : x.trees)
        for (uint64_t a : t.addrs) used.push_back({a, a + x.ns});
    for (auto [s, l] : x.data_extents) used.push_back({s, s + l});
    std::sort(used.begin(), used.end());
    for (const auto& c : x.chunks) {
        std::vector<std::pair<uint64_t, uint64_t>> free;
        uint64_t cur = c.logical;
        const uint64_t end = c.logical + c.length;
        for (auto [s, e] : used) {
            if (e <= c.logical || s >= end) continue;
            if (s > cur) free.push_back({cur, s - cur});
            cur = std::max(cur, e);
        }
        if (cur < end) free.push_back({cur, end - cur});
        free_space_info fi{};
        fi.extent_count = uint32_t(free.size());
        fi.flags = 0;
        out[{c.logical, FREE_SPACE_INFO_KEY, c.length}] = bytes_of(fi);
        for (auto [s, l] : free) out[{s, FREE_SPACE_EXTENT_KEY, l}] = {};
    }
}

// The quota tree: status, and the top subvolume's qgroup 0/5. With qgroups
// its referenced and exclusive bytes are the top subvolume's tree blocks;
// simple quotas count only what is allocated from enable_gen on, after mkfs.
void add_quota(const MkfsLayout& x, std::map<Key, std::vector<uint8_t>>& out) {
    qgroup_status_item st{};
    st.version = QGROUP_STATUS_VERSION;
    st.generation = MKFS_GEN;
    st.flags = QGROUP_STATUS_FLAG_ON | (x.squota ? QGROUP_STATUS_FLAG_SIMPLE_MODE : 0);
    st.rescan = 0;
    st.enable_gen = MKFS_GEN + 1;
    auto sb = bytes_of(st);
    if (!x.squota) sb.resize(QGROUP_STATUS_V1_SIZE);
    out[{0, QGROUP_STATUS_KEY, 0}] = std::move(sb);
    qgroup_info_item info{};
    info.generation = MKFS_GEN;
    const uint64_t fs_bytes = x.squota ? 0 : uint64_t(x.ns) * x.trees.at(FS_TREE_OBJECTID).addrs.size();
    info.rfer = info.rfer_cmpr = info.excl = info.excl_cmpr = fs_bytes;
    out[{0, QGROUP_INFO_KEY, FS_TREE_OBJECTID}] = bytes_of(info);
    out[{0, QGROUP_LIMIT_KEY, FS_TREE_OBJECTID}] = bytes_of(qgroup_limit_item{});
}

// Fills every tree's items from the current addresses.
Status make_items(MkfsLayout& x) {
    std::map<uint64_t, std::map<Key, std::vector<uint8_t>>> items;  // tree -> sorted items

    // Chunk tree: the devices, then the chunks.
    auto& chunk_t = items[CHUNK_TREE_OBJECTID];
    for (const auto& d : x.devices) chunk_t[{DEV_ITEMS_OBJECTID, DEV_ITEM_KEY, d.devid}] = bytes_of(make_dev_item(x, d.devid));
    for (const auto& c : x.chunks) chunk_t[{FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, c.logical}] = chunk_item_bytes(x, c);

    // Dev tree: one extent per stripe.
    for (const auto& c : x.chunks)
        for (const auto& s : c.stripes) {
            dev_extent de{};
            de.chunk_tree = CHUNK_TREE_OBJECTID;
            de.chunk_objectid = FIRST_CHUNK_TREE_OBJECTID;
            de.chunk_offset = c.logical;
            de.length = c.stripe_size;
            std::memcpy(de.chunk_tree_uuid, x.chunk_uuid, 16);
            items[DEV_TREE_OBJECTID][{s.devid, DEV_EXTENT_KEY, s.physical}] = bytes_of(de);
        }

    // Block groups (extent tree, or their own tree) and one metadata extent
    // item per tree block.
    const uint64_t bg_tree = x.has(BLOCK_GROUP_TREE_OBJECTID) ? BLOCK_GROUP_TREE_OBJECTID : EXTENT_TREE_OBJECTID;
    for (const auto& c : x.chunks) {
        block_group_item bg{};
        bg.used = c.used;
        bg.chunk_objectid = FIRST_CHUNK_TREE_OBJECTID;
        bg.flags = c.type;
        items[bg_tree][{c.logical, BLOCK_GROUP_ITEM_KEY, c.length}] = bytes_of(bg);
    }
    for (const auto& [id, t] : x.trees)
        for (size_t i = 0; i < t.addrs.size(); ++i) {
            Key k;
            auto b = tree_block_extent(x, id, t.addrs[i], t.levels[i], k);
            items[EXTENT_TREE_OBJECTID][k] = std::move(b);
        }

    if (x.has(FREE_SPACE_TREE_OBJECTID)) add_free_space(x, items[FREE_SPACE_TREE_OBJECTID]);
    if (x.has(QUOTA_TREE_OBJECTID)) add_quota(x, items[QUOTA_TREE_OBJECTID]);

    // Subvolume root directories.
    for (const auto& [id, t] : x.trees) {
        if ((id != FS_TREE_OBJECTID && id != DATA_RELOC_TREE_OBJECTID) || t.prebuilt) continue;
        items[id][{FIRST_FREE_OBJECTID, INODE_ITEM_KEY, 0}] =
            bytes_of(dir_inode(x, id == FS_TREE_OBJECTID ? x.ns : 0, id == FS_TREE_OBJECTID));
        items[id][{FIRST_FREE_OBJECTID, INODE_REF_KEY, FIRST_FREE_OBJECTID}] = inode_ref_bytes(0, "..");
    }

    // UUID tree: the top subvolume.
    {
        std::vector<uint8_t> d(8);
        store_le64(d.data(), FS_TREE_OBJECTID);
        items[UUID_TREE_OBJECTID][{load_le64(x.fs_uuid), UUID_KEY_SUBVOL, load_le64(x.fs_uuid + 8)}] = d;
    }

    // Root tree: a root item for every tree but itself and the chunk tree.
    auto& root = items[ROOT_TREE_OBJECTID];
    for (const auto& [id, t] : x.trees)
        if (id != ROOT_TREE_OBJECTID && id != CHUNK_TREE_OBJECTID)
            root[{id, ROOT_ITEM_KEY, 0}] = bytes_of(make_root_item(x, id));
    root[{FS_TREE_OBJECTID, INODE_REF_KEY, ROOT_TREE_DIR_OBJECTID}] = inode_ref_bytes(0, "default");
    root[{ROOT_TREE_DIR_OBJECTID, INODE_ITEM_KEY, 0}] = bytes_of(dir_inode(x, x.ns));
    root[{ROOT_TREE_DIR_OBJECTID, INODE_REF_KEY, ROOT_TREE_DIR_OBJECTID}] = inode_ref_bytes(0, "..");
    {
        dir_item di{};
        // The default subvolume: the top level, or one a content step made
        // (pointed at as `subvolume set-default` does).
        if (x.default_subvol) Key{x.default_subvol, ROOT_ITEM_KEY, 0}.to_disk(di.location);
        else Key{FS_TREE_OBJECTID, ROOT_ITEM_KEY, ~0ULL}.to_disk(di.location);
        di.transid = 0;
        di.data_len = 0;
        di.name_len = 7;
        di.type = FT_DIR;
        std::vector<uint8_t> b(sizeof(di) + 7);
        std::memcpy(b.data(), &di, sizeof(di));
        std::memcpy(b.data() + sizeof(di), "default", 7);
        root[{ROOT_TREE_DIR_OBJECTID, DIR_ITEM_KEY, name_hash("default")}] = std::move(b);
    }

    // A content step's items.
    for (const auto& [id, list] : x.extra_items)
        for (const auto& it : list) items[id][it.key] = it.data;

    for (auto& [id, t] : x.trees) {
        t.items.clear();
        if (t.prebuilt) continue;
        auto it = items.find(id);
        if (it == items.end()) continue;
        for (auto& [k, d] : it->second) t.items.push_back({k, std::move(d)});
    }
    return {};
}

}  // namespace

Result<uint64_t> MkfsBlockAlloc::next() {
    for (;;) {
        if (idx >= chunks.size())
            return make_error(Errc::invalid_argument, "metadata chunks too small for the initial trees");
        const ChunkPlan* c = chunks[idx];
        if (cursor < c->logical) cursor = c->logical;
        bool moved = false;
        for (auto [s, e] : c->excluded)
            if (cursor < e && cursor + ns > s) {
                cursor = e;
                moved = true;
            }
        if (moved) continue;
        if (cursor + ns > c->logical + c->length) {
            ++idx;
            continue;
        }
        const uint64_t r = cursor;
        cursor += ns;
        return r;
    }
}

dev_item make_dev_item(const MkfsLayout& x, uint64_t devid) {
    const MkfsDevice& dev = x.device(devid);
    dev_item d{};
    d.devid = devid;
    d.total_bytes = dev.size;
    uint64_t used = 0;
    for (const auto& c : x.chunks)
        for (const auto& s : c.stripes)
            if (s.devid == devid) used += c.stripe_size;
    d.bytes_used = used;
    d.io_align = x.ss;
    d.io_width = x.ss;
    d.sector_size = x.ss;
    std::memcpy(d.uuid, dev.uuid, 16);
    std::memcpy(d.fsid, x.fsid, 16);
    return d;
}

void init_trees(MkfsLayout& x) {
    x.trees.clear();
    x.trees[CHUNK_TREE_OBJECTID];
    for (uint64_t id : META_TREES) {
        if (id == FREE_SPACE_TREE_OBJECTID && !(x.compat_ro & FEATURE_COMPAT_RO_FREE_SPACE_TREE)) continue;
        if (id == BLOCK_GROUP_TREE_OBJECTID && !(x.compat_ro & FEATURE_COMPAT_RO_BLOCK_GROUP_TREE)) continue;
        if (id == QUOTA_TREE_OBJECTID && !x.quota) continue;
        x.trees[id];
    }
    for (auto& [id, t] : x.trees) t.plan = TreePlan{{1}, 1, 0};
}

TreeBuildOptions build_opts(const MkfsLayout& x, uint64_t id) {
    TreeBuildOptions o;
    o.nodesize = x.ns;
    o.owner = id;
    o.generation = MKFS_GEN;
    o.fill_percent = 90;
    return o;
}

Result<int> solve_layout(MkfsLayout& x) {
    // A content step's new subvolume trees.
    for (const auto& [id, list] : x.extra_items)
        if (is_new_subvol(id) && !x.has(id)) x.trees[id].plan = TreePlan{{1}, 1, 0};
    for (int iter = 1; iter <= 32; ++iter) {
        BTK_TRY(assign_addresses(x));
        BTK_TRY(make_items(x));
        bool stable = true;
        for (auto& [id, t] : x.trees) {
            if (t.prebuilt) continue;
            BTK_ASSIGN(TreePlan p, plan_tree(build_opts(x, id), t.items));
            if (p.per_level != t.plan.per_level) {
                stable = false;
                t.plan = p;
            }
        }
        if (!stable) continue;
        // Extent items without skinny metadata carry each block's first key:
        // learn them from a dry build, then refill (sizes do not change).
        if (!(x.incompat & FEATURE_INCOMPAT_SKINNY_METADATA)) {
            for (auto& [id, t] : x.trees) {
                if (t.prebuilt) continue;  // its first keys come with it
                size_t next = 0;
                auto alloc = [&](uint8_t) -> Result<uint64_t> {
                    if (next >= t.addrs.size()) return make_error(Errc::corruption, "internal error: layout");
                    return t.addrs[next++];
                };
                BTK_ASSIGN(BuiltTree bt, build_tree(build_opts(x, id), t.items, alloc,
                                                    [](std::vector<uint8_t>&&) { return Status{}; }));
                for (const auto& b : bt.blocks) x.first_keys[b.bytenr] = b.first_key;
            }
            BTK_TRY(make_items(x));
        }
        return iter;
    }
    return make_error(Errc::invalid_argument, "the initial layout did not converge");
}

}  // namespace btk
