// Commit: settle every derived structure, write the new blocks, then the
// superblocks.
//
// Running delayed refs changes the extent tree, which allocates blocks,
// which changes block group usage and free space, whose items change the
// extent and free space trees, which queues more refs... Each pass only
// edits blocks this transaction already copied unless a leaf has to split,
// so the passes settle quickly; the loop stops when a pass changes nothing.
#include "txn.h"

#include "super.h"
#include "write_block.h"

#include <cstring>

namespace btk {

using namespace format;

// qgroup accounting is not done offline yet (the seam: the first and last
// reference of a root to an extent, seen when delayed refs run). Until it is,
// a commit that changed any subvolume marks the qgroups inconsistent, as the
// kernel does when it cannot account, so `btrfs quota rescan` fixes the
// numbers and nothing reports a silent mismatch.
Status Transaction::mark_qgroups_inconsistent() {
    bool changed = false;
    for (const auto& [id, r] : roots_)
        changed |= r.dirty && (id == FS_TREE_OBJECTID || (id >= FIRST_FREE_OBJECTID && id <= LAST_FREE_OBJECTID));
    if (!changed || qgroups_marked_) return {};
    BTK_ASSIGN(bool quota, has_tree(QUOTA_TREE_OBJECTID));
    if (!quota) return {};
    const Key k{0, QGROUP_STATUS_KEY, 0};
    BTK_ASSIGN(auto cur, lookup(QUOTA_TREE_OBJECTID, k));
    if (!cur || cur->size() < offsetof(qgroup_status_item, rescan)) return {};
    const auto* st = reinterpret_cast<const qgroup_status_item*>(cur->data());
    if (st->flags & QGROUP_STATUS_FLAG_SIMPLE_MODE) return {};
    qgroups_marked_ = true;
    if (st->flags & QGROUP_STATUS_FLAG_INCONSISTENT) return {};
    BTK_ASSIGN(std::span<uint8_t> d, item_for_update(QUOTA_TREE_OBJECTID, k));
    auto* w = reinterpret_cast<qgroup_status_item*>(d.data());
    w->flags = w->flags | QGROUP_STATUS_FLAG_INCONSISTENT;
    w->generation = gen_;
    return {};
}

Status Transaction::run_commit_passes() {
    BTK_TRY(mark_qgroups_inconsistent());
    for (int pass = 1; pass <= 64; ++pass) {
        ++stats_.commit_passes;
        BTK_TRY(run_delayed_refs());
        BTK_TRY(update_root_items());
        if (!refs_.empty()) continue;
        BTK_ASSIGN(bool wrote, space_->write_dirty());
        bool roots_dirty = false;
        for (const auto& [id, r] : roots_)
            if (r.dirty && id != ROOT_TREE_OBJECTID && id != CHUNK_TREE_OBJECTID && id != BLOCK_GROUP_TREE_OBJECTID)
                roots_dirty = true;
        if (!wrote && refs_.empty() && !roots_dirty) return {};
    }
    return corruption("commit did not settle after 64 passes");
}

Status Transaction::write_super() {
    super_block sb = sb_;
    sb.generation = gen_;
    const TreeRoot& root = roots_.count(ROOT_TREE_OBJECTID) ? roots_.at(ROOT_TREE_OBJECTID) : TreeRoot{};
    if (roots_.count(ROOT_TREE_OBJECTID)) {
        sb.root = root.bytenr;
        sb.root_level = root.level;
    }
    if (auto it = roots_.find(CHUNK_TREE_OBJECTID); it != roots_.end() && it->second.dirty) {
        sb.chunk_root = it->second.bytenr;
        sb.chunk_root_level = it->second.level;
        sb.chunk_root_generation = gen_;
    }
    if (auto it = roots_.find(BLOCK_GROUP_TREE_OBJECTID); it != roots_.end() && it->second.dirty) {
        sb.block_group_root = it->second.bytenr;
        sb.block_group_root_level = it->second.level;
        sb.block_group_root_generation = gen_;
    }
    if (roots_.count(UUID_TREE_OBJECTID) && roots_.at(UUID_TREE_OBJECTID).dirty) sb.uuid_tree_generation = gen_;
    sb.bytes_used = space_->bytes_used();
    // A v1 space cache is left as it was: its generation now differs from
    // the superblock's, which makes the kernel (and btrfs check) ignore and
    // rebuild it.

    // Backup roots: the slot after the one holding the previous generation.
    int prev = -1;
    for (int i = 0; i < NUM_BACKUP_ROOTS; ++i)
        if (sb.super_roots[i].tree_root_gen == sb_.generation) prev = i;
    root_backup& b = sb.super_roots[(prev + 1) % NUM_BACKUP_ROOTS];
    std::memset(&b, 0, sizeof(b));
    auto rootinfo = [&](uint64_t id, le64& bytenr, le64& gen, uint8_t& level) -> Status {
        auto r = root_of(id);
        if (!r) {
            if (r.error().code == Errc::not_found) return {};
            return std::move(r).error();
        }
        bytenr = r->bytenr;
        level = r->level;
        // Generation of that root block.
        if (auto it = dirty_.find(r->bytenr); it != dirty_.end()) {
            gen = gen_;
        } else {
            BTK_ASSIGN(BlockRef blk, fs_.read_block(r->bytenr));
            gen = blk->generation();
        }
        return {};
    };
    BTK_TRY(rootinfo(ROOT_TREE_OBJECTID, b.tree_root, b.tree_root_gen, b.tree_root_level));
    BTK_TRY(rootinfo(CHUNK_TREE_OBJECTID, b.chunk_root, b.chunk_root_gen, b.chunk_root_level));
    BTK_TRY(rootinfo(EXTENT_TREE_OBJECTID, b.extent_root, b.extent_root_gen, b.extent_root_level));
    BTK_TRY(rootinfo(FS_TREE_OBJECTID, b.fs_root, b.fs_root_gen, b.fs_root_level));
    BTK_TRY(rootinfo(DEV_TREE_OBJECTID, b.dev_root, b.dev_root_gen, b.dev_root_level));
    BTK_TRY(rootinfo(CSUM_TREE_OBJECTID, b.csum_root, b.csum_root_gen, b.csum_root_level));
    b.total_bytes = sb.total_bytes;
    b.bytes_used = sb.bytes_used;
    b.num_devices = sb.num_devices;

    std::map<uint64_t, dev_item> items;
    std::map<uint64_t, Device*> devs;
    for (const auto& [id, d] : fs_.devices()) {
        devs[id] = d.get();
        BTK_ASSIGN(auto di, lookup(CHUNK_TREE_OBJECTID, Key{DEV_ITEMS_OBJECTID, DEV_ITEM_KEY, id}));
        if (!di || di->size() < sizeof(dev_item)) return corruption("no device item for device {}", id);
        dev_item item;
        std::memcpy(&item, di->data(), sizeof(item));
        items[id] = item;
    }
    BTK_TRY(write_supers(sb, items, devs));
    sb_ = sb;
    return {};
}

Status Transaction::commit() {
    if (done_) return make_error(Errc::invalid_argument, "transaction already finished");
    auto fail = [&](Error e) -> Status {
        done_ = true;
        dirty_.clear();
        return e.context("commit");
    };
    // Settle everything first, while the tree code may still change blocks.
    if (Status s = run_commit_passes(); !s) return fail(std::move(s).error());
    done_ = true;

    WriteContext ctx;
    ctx.nodesize = ns_;
    ctx.sectorsize = ss_;
    ctx.csum_type = sb_.csum_type;
    std::memcpy(ctx.fsid, fs_.metadata_fsid(), FSID_SIZE);
    ctx.generation = gen_;
    ctx.chunks = &fs_.chunk_map();
    for (const auto& [id, d] : fs_.devices()) ctx.devices[id] = d.get();
    // Every block of this transaction carries the chunk tree uuid of the
    // filesystem; take it from the chunk root.
    {
        BTK_ASSIGN(BlockRef cr, fs_.read_block(sb_.chunk_root));
        std::memcpy(ctx.chunk_tree_uuid, cr->header().chunk_tree_uuid, UUID_SIZE);
    }
    // File data first, then the tree blocks that point at it.
    if (Status s = write_staged_data(); !s) return fail(std::move(s).error());
    BlockWriter w(ctx);
    if (write_budget() >= 0) w.set_max_batch(ns_);
    stats_.dirty_blocks = dirty_.size();
    for (auto& [b, blk] : dirty_)
        if (Status s = w.add(std::move(blk->vec())); !s) return fail(std::move(s).error());
    dirty_.clear();
    stats_.blocks_written = w.queued_blocks();
    if (Status s = w.flush(); !s) return fail(std::move(s).error());
    stats_.write_calls = w.write_calls();
    if (Status s = write_super(); !s) return fail(std::move(s).error());
    space_->unpin_all();
    fs_.after_commit(sb_);
    return {};
}

}  // namespace btk
