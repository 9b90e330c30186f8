// An opened btrfs filesystem: devices, the chosen superblock, the chunk map,
// and validated tree block reads through a block cache.
#pragma once

#include "chunk.h"
#include "device.h"
#include "format.h"
#include "key.h"
#include "result.h"
#include "super.h"
#include "tree_block.h"

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace btk {

struct OpenOptions {
    int super_mirror = -1;                  // -1: newest valid copy; else that copy
    std::optional<uint64_t> tree_root;      // use this root tree block instead
    bool writable = false;
    size_t cache_bytes = 256ull << 20;      // block cache budget
    // Open even when the chunk tree cannot be read fully (restore on damage):
    // the sys_chunk_array mappings are kept and the error is recorded. A
    // damaged sys_chunk_array entry is tolerated too when an entry before it
    // parsed.
    bool tolerate_chunk_errors = false;
};

// Where a tree starts.
struct RootRef {
    uint64_t objectid = 0;
    uint64_t bytenr = 0;
    uint8_t level = 0;
    uint64_t generation = 0;  // 0: do not check
};

// What the parent pointer says about a block; checks skipped when unset.
struct BlockExpect {
    uint64_t generation = 0;
    int level = -1;
    std::optional<Key> first_key;
    uint64_t owner = 0;  // 0: any owner
};

class Filesystem {
public:
    // Opens one device/image or all devices of a multi-device filesystem.
    static Result<std::unique_ptr<Filesystem>> open(const std::vector<std::string>& paths,
                                                    const OpenOptions& opts = {});
    ~Filesystem();

    const format::super_block& super() const noexcept { return sb_; }
    int super_mirror() const noexcept { return super_mirror_; }
    uint32_t nodesize() const noexcept { return sb_.nodesize; }
    uint32_t sectorsize() const noexcept { return sb_.sectorsize; }
    uint16_t csum_type() const noexcept { return sb_.csum_type; }
    uint32_t csum_size() const noexcept { return csum_size_; }
    uint64_t incompat() const noexcept { return sb_.incompat_flags; }
    uint64_t compat_ro() const noexcept { return sb_.compat_ro_flags; }
    bool has_incompat(uint64_t bit) const noexcept { return incompat() & bit; }
    const uint8_t* metadata_fsid() const noexcept { return super_metadata_fsid(sb_); }

    const ChunkMap& chunk_map() const noexcept { return chunks_; }
    Device* device(uint64_t devid) const noexcept;
    const std::map<uint64_t, std::unique_ptr<Device>>& devices() const noexcept { return devices_; }
    // Problems found while opening that did not stop it (tolerated errors).
    const std::vector<std::string>& open_warnings() const noexcept { return warnings_; }

    RootRef tree_root() const noexcept;
    RootRef chunk_root() const noexcept;
    RootRef log_root() const noexcept;
    RootRef block_group_root() const noexcept;

    // Reads and validates the tree block at `bytenr`, trying every copy until
    // one verifies. Errors name the bytenr and what failed.
    Result<BlockRef> read_block(uint64_t bytenr, const BlockExpect& expect = {});
    // Reads one copy without semantic checks except bounds (for dumping
    // damaged blocks); `mirror` 0-based.
    Result<BlockRef> read_block_raw(uint64_t bytenr, int mirror = 0);
    // Validates a block's checksum, bytenr and fsid; empty string when fine.
    std::string verify_block(std::span<const uint8_t> raw, uint64_t bytenr) const;

    // Reads logical bytes (data or metadata) from copy `mirror`; RAID5/6
    // copy 1 rebuilds from parity.
    Status read_logical(uint64_t logical, std::span<uint8_t> out, int mirror = 0) const;
    int num_copies(uint64_t logical) const noexcept { return chunks_.num_copies(logical); }

    // Finds the newest ROOT_ITEM of tree `objectid` in the root tree.
    Result<RootRef> find_root(uint64_t objectid);
    // Same, returning the root item bytes as well.
    Result<std::pair<RootRef, std::vector<uint8_t>>> find_root_item(uint64_t objectid);

    void drop_cache();
    // Makes a chunk created by a transaction addressable (before it commits;
    // a filesystem whose transaction aborted must be reopened).
    Status add_chunk(uint64_t logical, std::span<const uint8_t> item) { return chunks_.add(logical, item); }
    // After a transaction committed: the new superblock becomes current and
    // cached blocks are dropped (their space may be reused).
    void after_commit(const format::super_block& sb);
    struct CacheStats {
        uint64_t hits = 0, misses = 0;
    };
    const CacheStats& cache_stats() const noexcept { return stats_; }

private:
    Filesystem() = default;
    Status load_chunk_tree(bool tolerate);
    Status rebuild_raid56(uint64_t logical, std::span<uint8_t> out) const;
    BlockRef cache_get(uint64_t bytenr);
    void cache_put(uint64_t bytenr, const BlockRef& b);

    format::super_block sb_{};
    int super_mirror_ = 0;
    uint32_t csum_size_ = 4;
    std::optional<uint64_t> tree_root_override_;
    std::map<uint64_t, std::unique_ptr<Device>> devices_;
    ChunkMap chunks_;
    std::vector<std::string> warnings_;

    // LRU block cache.
    size_t cache_budget_ = 0, cache_used_ = 0;
    std::list<std::pair<uint64_t, BlockRef>> lru_;
    std::unordered_map<uint64_t, std::list<std::pair<uint64_t, BlockRef>>::iterator> cache_;
    CacheStats stats_;
};

// The first slot whose key is not above the key before it, or 0 when the
// block's keys are in order. Reads the item or pointer table directly.
uint32_t first_unordered_key(const TreeBlock& b) noexcept;

// Human-readable name of a tree id as btrfs-progs prints it in "owner" fields
// is in print_tree.h; this one is for error messages.
std::string tree_name_for_errors(uint64_t objectid);

}  // namespace btk
