// Transactions: copy-on-write changes to an unmounted filesystem.
//
// A Transaction collects every change in memory and writes nothing to the
// image's metadata before commit() (file data goes straight to space that
// no committed tree references, so it is safe to write early). abort() or
// destroying an uncommitted transaction leaves the image exactly as it was.
//
// Trees are changed copy-on-write: search(..., cow=true) copies every block
// on the path that was not written by this transaction (update_ref_for_cow
// semantics for shared blocks of snapshotted subvolumes) and later changes
// edit those copies in place, so a block is copied at most once per
// transaction; cow_counts() lets tests prove it.
//
// Reference changes go to a delayed-ref queue (delayed_refs.h), merged per
// extent and run at commit into the extent tree. Commit then updates block
// groups, the free space tree and root items until nothing changes any more,
// writes every dirty block in large sequential runs, syncs, and writes the
// superblocks last (with the backup roots rotated).
//
// Seams for later work: qgroup accounting hooks on the first/last reference
// of a root to an extent (DelayedRefs::Observer), compression of staged data
// at commit time (write_data's caller decides the extent layout), and a
// garbage-collection style split of big deletes (callers may commit every N
// operations; nothing here assumes one giant transaction).
#pragma once

#include "delayed_refs.h"
#include "edit_block.h"
#include "fs.h"
#include "key.h"
#include "result.h"
#include "space.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace btk {

// A host file whose data a transaction reads at commit instead of holding
// it in memory; the commit fails if the file changed in the meantime.
struct HostFileRef {
    std::string path;
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
};

struct TxnOptions {
    // Zero a present log tree instead of refusing to write (what
    // `btrfs rescue zero-log` does; the log's changes are lost).
    bool zero_log = false;
};

// One step of a path from a tree's root (front) to a leaf (back).
struct PathStep {
    EditBlock* block = nullptr;  // a block of this transaction (cow search)
    const TreeBlock* tb = nullptr;  // a committed block (read-only search)
    uint32_t slot = 0;
};

struct Path {
    uint64_t tree = 0;
    std::vector<PathStep> steps;  // steps[0] = root
    std::vector<BlockRef> keep;   // keeps read-only blocks alive
    bool exact = false;           // the leaf slot holds the searched key
    EditBlock& leaf() { return *steps.back().block; }
    uint32_t slot() const { return steps.back().slot; }
};

// Read-only view of one item.
struct ItemRef {
    Key key;
    std::span<const uint8_t> data;
};

struct TxnStats {
    uint64_t cowed = 0;           // blocks copied
    uint64_t max_cow_per_block = 0;
    uint64_t allocated_blocks = 0, freed_blocks = 0;
    uint64_t dirty_blocks = 0;
    uint64_t commit_passes = 0;
    uint64_t blocks_written = 0, write_calls = 0;
};

class Transaction {
public:
    // Starts a transaction on a filesystem opened writable. Refuses features
    // btk cannot write, a log tree (unless zero_log), RAID5/6 and seeds.
    static Result<std::unique_ptr<Transaction>> begin(Filesystem& fs, const TxnOptions& opts = {});
    ~Transaction();

    Filesystem& fs() noexcept { return fs_; }
    uint64_t generation() const noexcept { return gen_; }
    uint32_t nodesize() const noexcept { return ns_; }
    uint32_t sectorsize() const noexcept { return ss_; }

    // --- trees
    // Whether a tree exists (its root item, or the root/chunk tree).
    Result<bool> has_tree(uint64_t tree);
    // Searches `tree` for `key`. With cow, every block on the path is this
    // transaction's own copy; ins_len > 0 makes room for an item of that many
    // bytes (data + item header) at the returned slot, ins_len < 0 lets a
    // deletion rebalance. The leaf slot is where `key` is or would go.
    Result<Path> search(uint64_t tree, const Key& key, int ins_len, bool cow);
    // Inserts an item; Errc::invalid_argument if the key exists. Returns the
    // item's data (valid until the next change to the tree).
    Result<std::span<uint8_t>> insert_item(uint64_t tree, const Key& key, uint32_t size);
    Status insert_item(uint64_t tree, const Key& key, std::span<const uint8_t> data);
    // The item's data, ready to be modified; Errc::not_found when absent.
    Result<std::span<uint8_t>> item_for_update(uint64_t tree, const Key& key);
    // Changes an item's size (truncates or zero-extends at the end).
    Result<std::span<uint8_t>> resize_item(uint64_t tree, const Key& key, uint32_t new_size);
    Status delete_item(uint64_t tree, const Key& key);
    // Deletes every item with min <= key <= max; returns how many.
    Result<uint64_t> delete_range(uint64_t tree, const Key& min, const Key& max);
    // A copy of the item with this key, or nullopt.
    Result<std::optional<std::vector<uint8_t>>> lookup(uint64_t tree, const Key& key);
    // Visits items with min <= key <= max in order (read-only; the visitor
    // must not change the tree). Return false from fn to stop.
    Status for_each(uint64_t tree, const Key& min, const Key& max,
                    const std::function<bool(const ItemRef&)>& fn);
    // The last item with key <= k, if any.
    Result<std::optional<Key>> last_key_le(uint64_t tree, const Key& k);

    // Root of a tree as it stands in this transaction.
    Result<RootRef> root_of(uint64_t tree);

    // --- space and data
    SpaceManager& space() noexcept { return *space_; }
    DelayedRefs& refs() noexcept { return refs_; }
    // Allocates a data extent of exactly `len` bytes (sector aligned) if one
    // free run holds it, else the largest run available (min one sector);
    // returns (bytenr, length).
    Result<std::pair<uint64_t, uint64_t>> alloc_data(uint64_t len);
    // Stages file data for [logical, logical + data.size()); it is written
    // to every copy at commit, before the metadata (nothing reaches the
    // image before commit, so abort leaves it byte for byte as it was).
    // Staged data beyond a memory budget spills to an unlinked temp file.
    Status write_data(uint64_t logical, std::span<const uint8_t> data);
    // Same, for `len` bytes of a host file from `src_off`, zero-padded to
    // `disk_len` bytes; read from the file at commit.
    Status write_data_ref(uint64_t logical, std::shared_ptr<const HostFileRef> src, uint64_t src_off, uint64_t len,
                          uint64_t disk_len);
    uint64_t staged_bytes() const noexcept { return staged_total_; }
    // Reads data as this transaction would leave it: staged data first,
    // else what the image holds (first good copy).
    Status read_data(uint64_t logical, std::span<uint8_t> out);
    // Inserts checksums for the data just written at `logical`.
    Status add_data_csums(uint64_t logical, std::span<const uint8_t> data);
    // Deletes the checksums of [logical, logical + len).
    Status delete_csums(uint64_t logical, uint64_t len);

    // --- finishing
    Status commit();
    void abort();
    bool committed() const noexcept { return done_; }

    const TxnStats& stats() const noexcept { return stats_; }
    // Times each pre-existing block was copied, by its old bytenr.
    const std::unordered_map<uint64_t, uint32_t>& cow_counts() const noexcept { return cow_count_; }

    // Internal, used by the B-tree and delayed-ref code.
    struct TreeRoot {
        uint64_t bytenr = 0;
        uint8_t level = 0;
        Key item_key;              // its ROOT_ITEM key in the root tree (not for trees 1 and 3)
        uint64_t last_snapshot = 0;
        bool dirty = false;
        int64_t bytes_delta = 0;
    };
    Result<TreeRoot*> tree_root(uint64_t tree);
    Result<EditBlock*> alloc_block(uint64_t tree, uint8_t level, const Key& first_key);
    Status free_block(uint64_t tree, uint64_t bytenr, uint8_t level, uint64_t parent, bool full_backref_flag);

private:
    friend class BtreeOps;
    friend class SpaceManager;
    Transaction(Filesystem& fs);

    Result<EditBlock*> cow_block(uint64_t tree, uint64_t bytenr, const BlockExpect& expect,
                                 EditBlock* parent, uint32_t pslot);
    Result<const uint8_t*> read_for_path(uint64_t bytenr, const BlockExpect& expect, Path& p);
    Status update_ref_for_cow(uint64_t tree, const TreeRoot& root, const uint8_t* old_block,
                              EditBlock& cow, bool* full_backref_old);
    Status change_child_refs(const uint8_t* block, uint64_t tree, bool full_backref, int delta);
    Status run_commit_passes();
    Status run_delayed_refs();
    Status run_head(RefHead& h);
    Result<std::optional<std::pair<Key, uint64_t>>> find_keyed_ref(uint64_t bytenr, const RefId& id);
    Status set_keyed_ref(uint64_t bytenr, const RefId& id, std::optional<Key> existing, uint64_t count);
    Status update_root_items();
    Status write_super();
    Status write_staged_data();
    Status mark_qgroups_inconsistent();

    Filesystem& fs_;
    TxnOptions opts_;
    uint64_t gen_ = 0;
    uint32_t ns_ = 0, ss_ = 0;
    format::super_block sb_{};
    std::map<uint64_t, TreeRoot> roots_;
    std::unordered_map<uint64_t, std::unique_ptr<EditBlock>> dirty_;
    std::unordered_map<uint64_t, uint32_t> cow_count_;
    std::unique_ptr<SpaceManager> space_;
    DelayedRefs refs_;
    TxnStats stats_;
    bool done_ = false;
    bool qgroups_marked_ = false;

    struct StagedData {
        uint64_t logical = 0, len = 0;
        bool spilled = false;
        uint64_t spill_off = 0;
        std::vector<uint8_t> mem;
        std::shared_ptr<const HostFileRef> ref;  // data read from here at commit
        uint64_t ref_off = 0, ref_len = 0;
    };
    std::vector<StagedData> staged_;
    uint64_t staged_mem_ = 0, staged_total_ = 0;
    int spill_fd_ = -1;
    uint64_t spill_size_ = 0;
};


}  // namespace btk
