// Space accounting for a transaction: block groups, their free space and
// used bytes, allocation, new chunks, and the free space tree.
//
// A block group's free space is loaded on first use from the extent tree
// (the authority: every EXTENT_ITEM / METADATA_ITEM in its range is used,
// superblock mirror stripes are never free). Space freed in the transaction
// is "pinned": it is free in the state being committed (the free space tree
// says so) but not handed out again before the commit is on disk, because
// the committed trees may still point at it. Blocks allocated and freed in
// the same transaction were never committed and go back to the free pool.
#pragma once

#include "chunk.h"
#include "key.h"
#include "result.h"

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace btk {

class Transaction;

struct BlockGroup {
    uint64_t start = 0, length = 0, flags = 0;
    uint64_t used = 0;
    uint64_t chunk_objectid = 256;
    bool loaded = false;
    bool dirty = false;      // used or free space changed: item and FST to update
    bool is_new = false;     // created in this transaction: item to insert
    std::map<uint64_t, uint64_t> free;    // start -> length, free in the new state
    std::vector<std::pair<uint64_t, uint64_t>> excluded;  // superblock stripes
    uint64_t cursor = 0;                  // next-fit allocation hint
    uint64_t end() const noexcept { return start + length; }
};

struct SpaceStats {
    uint64_t chunks_allocated = 0;
};

class SpaceManager {
public:
    explicit SpaceManager(Transaction& t) : t_(t) {}

    // Reads the block group items (extent tree or block group tree) and the
    // device extents.
    Status load();

    // Allocates `len` bytes for a tree block (type METADATA or SYSTEM) or
    // data; exact length. A new chunk is allocated when nothing fits.
    Result<uint64_t> alloc(uint64_t type, uint64_t len);
    // Allocates up to `len` bytes of data (at least `min_len`), preferring one
    // contiguous run; returns (start, length).
    Result<std::pair<uint64_t, uint64_t>> alloc_data(uint64_t len, uint64_t min_len);
    // Loads the free space of the group holding `bytenr` (before its extent
    // items change).
    Status ensure_loaded(uint64_t bytenr);
    // Returns space: pinned when it may be referenced by the committed state.
    Status release(uint64_t start, uint64_t len, bool pin);

    // Type bits (DATA/METADATA/SYSTEM) of the block group holding `bytenr`.
    BlockGroup* group_of(uint64_t bytenr);
    std::map<uint64_t, BlockGroup>& groups() noexcept { return groups_; }
    uint64_t bytes_used() const noexcept;

    // Writes changed block group items, free space tree entries and device
    // items; returns true if anything was written (the commit loop runs
    // again until a pass changes nothing).
    Result<bool> write_dirty();
    // After the superblocks are on disk: pinned space becomes allocatable.
    void unpin_all();

    const SpaceStats& stats() const noexcept { return stats_; }

private:
    Status load_group(BlockGroup& bg);
    void take(BlockGroup& bg, uint64_t start, uint64_t len);
    Result<BlockGroup*> new_chunk(uint64_t type);
    Status write_group_item(BlockGroup& bg);
    Status write_free_space(BlockGroup& bg);

    Transaction& t_;
    std::map<uint64_t, BlockGroup> groups_;
    // Per group: allocatable now (free minus what this transaction freed).
    std::map<uint64_t, std::map<uint64_t, uint64_t>> avail_;
    bool bg_tree_ = false;  // block group items live in the block group tree
    bool fst_ = false;
    SpaceStats stats_;
    // Device space: devid -> (physical start -> length) of allocated dev extents.
    std::map<uint64_t, std::map<uint64_t, uint64_t>> dev_extents_;
    std::map<uint64_t, uint64_t> dev_bytes_used_delta_;
    bool dev_loaded_ = false;
    // Chunks created in this transaction whose chunk item, device extents
    // and device usage still have to be written (at commit).
    struct PendingChunk {
        uint64_t logical;
        std::vector<uint8_t> item;
    };
    std::vector<PendingChunk> pending_chunks_;
    Status load_dev_extents();
    Status write_pending_chunks();
};

}  // namespace btk
