// mkfs internals shared by the mkfs_*.cpp steps, and the interface a content
// step (--rootdir) plugs into.
//
// mkfs_run is a sequence of steps over one MkfsLayout:
//   validate options      (mkfs.cpp)          -> sizes, features, profiles
//   probe devices         (mkfs_devices.cpp)  -> MkfsDevice per target
//   plan chunks           (mkfs_chunks.cpp)   -> system, metadata, data chunks
//   content hook          (MkfsContentHook::plan: reserve data, add items)
//   solve layout          (mkfs_trees.cpp)    -> tree block addresses, items
//   write                 (mkfs.cpp)          -> discard, content data, blocks, supers
#pragma once

#include "chunk.h"
#include "device.h"
#include "format.h"
#include "key.h"
#include "result.h"
#include "write_block.h"
#include "write_tree.h"

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace btk {

struct MkfsDevice {
    uint64_t devid = 0;
    std::string path;
    uint8_t uuid[16]{};
    bool exists = false;        // else created at write time
    bool is_blk = false;
    struct stat st {};
    uint64_t old_size = 0;      // size before mkfs (0 when created)
    uint64_t size = 0;          // bytes given to the filesystem (sectorsize multiple)
    uint64_t alloc_end = 0;     // physical end of the stripes planned on it
    std::unique_ptr<Device> dev;  // open for writing in the write step
    int excl_fd = -1;             // O_EXCL hold on a block device
};

struct ChunkStripePlan {
    uint64_t devid = 0;
    uint64_t physical = 0;
};

struct ChunkPlan {
    uint64_t type = 0;          // block group type | profile bits
    uint64_t logical = 0;
    uint64_t length = 0;        // logical length
    uint64_t stripe_size = 0;   // bytes per stripe (dev extent length)
    uint16_t sub_stripes = 1;
    std::vector<ChunkStripePlan> stripes;
    std::vector<std::pair<uint64_t, uint64_t>> excluded;  // logical [start, end) over superblocks
    uint64_t used = 0;          // bytes allocated (tree blocks + content data)
};

struct TreeState {
    TreePlan plan;                  // current guess of the block counts
    std::vector<uint64_t> addrs;    // build order
    std::vector<uint8_t> levels;    // per address
    std::vector<TreeItem> items;
    // Built and written by a content step (addrs, levels, plan fixed; no items).
    bool prebuilt = false;
};

struct MkfsLayout {
    uint32_t ns = 0, ss = 0;
    uint16_t csum_type = 0;
    uint64_t incompat = 0, compat_ro = 0;
    bool quota = false, squota = false;
    uint64_t mprof = 0, dprof = 0;   // profile bits of metadata (and system), data
    bool mixed = false;
    uint64_t total_bytes = 0;        // sum of the device sizes
    uint8_t fsid[16]{}, chunk_uuid[16]{}, fs_uuid[16]{};
    std::string label;
    int64_t now_sec = 0;
    uint32_t now_nsec = 0;
    std::vector<MkfsDevice> devices;  // devid = index + 1
    std::vector<ChunkPlan> chunks;    // in logical order
    std::map<uint64_t, TreeState> trees;
    std::map<uint64_t, Key> first_keys;  // by block address, once known

    // --- what a content step adds
    // Items merged into a tree (an item with the key of one of mkfs's own, e.g.
    // the top directory's inode, replaces it); a tree id >= FIRST_FREE_OBJECTID
    // becomes a new subvolume tree with a root item (its items all come from here).
    std::map<uint64_t, std::vector<TreeItem>> extra_items;
    // Logical data ranges in use (counted in block groups, not free space).
    std::vector<std::pair<uint64_t, uint64_t>> data_extents;  // (start, length)
    // What the root items of new subvolumes say besides mkfs's defaults.
    struct ContentRoot {
        bool readonly = false;
        uint8_t uuid[16] = {};
    };
    std::map<uint64_t, ContentRoot> content_roots;
    uint64_t default_subvol = 0;      // target of the "default" entry; 0: the top level
    uint64_t meta_cursor = 0;         // metadata before this address is taken by prebuilt trees
    std::optional<std::pair<uint32_t, uint32_t>> root_owner;  // uid, gid of the top directory

    bool has(uint64_t tree) const { return trees.count(tree) != 0; }
    MkfsDevice& device(uint64_t devid) { return devices.at(devid - 1); }
    const MkfsDevice& device(uint64_t devid) const { return devices.at(devid - 1); }
    const ChunkPlan* chunk_at(uint64_t logical) const;
};

// --- chunk planning (mkfs_chunks.cpp)

struct ProfileInfo {
    const char* name;        // as -m/-d take it
    uint64_t bits;
    int min_devices;
};
// nullptr for an unknown name (case-insensitive).
const ProfileInfo* find_profile(std::string_view name);
const ProfileInfo* profile_info(uint64_t bits);
// Plans the system, metadata and data chunks (mkfs.btrfs 6.2 sizes), or one
// error line naming the device that is too small.
Status plan_chunks(MkfsLayout& x);
// Adds a data chunk (the data profile) of at least `bytes` logical bytes if
// the existing data chunks cannot hold that much more; returns nothing, the
// caller allocates from data chunks itself. For content steps.
Status reserve_data(MkfsLayout& x, uint64_t bytes);
// The same for metadata: metadata chunks hold at least `bytes` in all.
Status reserve_metadata(MkfsLayout& x, uint64_t bytes);
// The chunk item bytes for a planned chunk.
std::vector<uint8_t> chunk_item_bytes(const MkfsLayout& x, const ChunkPlan& c);
// Logical ranges of every chunk whose stripes cover a superblock copy.
void compute_excluded(MkfsLayout& x);
// A ChunkMap of the plan (for writers and mapping).
Result<ChunkMap> chunk_map(const MkfsLayout& x);

// Writes tree blocks and data through the planned chunks: mirrored and
// striped profiles directly, RAID5/6 as full stripes with P (and Q) parity
// computed here. Unwritten parts of a RAID5/6 row are zeroes.
class MkfsWriter {
public:
    MkfsWriter(const MkfsLayout& x, const ChunkMap& map, const WriteContext& wc);
    // A tree block (nodesize bytes, header bytenr/owner/nritems/level set).
    Status add_tree_block(std::vector<uint8_t>&& block);
    // Content data at a logical address inside a data chunk (any profile).
    Status write_data(uint64_t logical, std::span<const uint8_t> data);
    // Writes everything queued to the open devices.
    Status flush();
    // Fills the common header fields and the checksum of a tree block that
    // the caller writes itself (through write_data's mapping or its own).
    void finish_block(std::span<uint8_t> block) const { block_writer_.finish(block); }
    uint64_t bytes_written() const noexcept { return block_writer_.bytes_written() + extra_written_; }
    uint64_t write_calls() const noexcept { return block_writer_.write_calls() + extra_calls_; }

private:
    Status put_raid56(const Chunk& c, uint64_t logical, std::span<const uint8_t> data);
    Status write_at(uint64_t devid, uint64_t physical, std::span<const uint8_t> data);
    const MkfsLayout& x_;
    const ChunkMap& map_;
    BlockWriter block_writer_;
    // RAID5/6 rows: (chunk logical, row) -> data stripes of the row, concatenated.
    std::map<std::pair<uint64_t, uint64_t>, std::vector<uint8_t>> rows_;
    uint64_t extra_written_ = 0, extra_calls_ = 0;
};

// --- trees (mkfs_trees.cpp)

// Hands out consecutive nodesize blocks from `chunks` in order, from `cursor`
// on, skipping superblock stripes and moving to the next chunk when one is full.
struct MkfsBlockAlloc {
    std::vector<const ChunkPlan*> chunks;
    uint32_t ns = 0;
    uint64_t cursor = 0;
    size_t idx = 0;
    Result<uint64_t> next();
};

// Creates the trees the features call for (empty plans).
void init_trees(MkfsLayout& x);
// Iterates addresses -> items -> block counts until the counts are stable;
// returns the number of iterations.
Result<int> solve_layout(MkfsLayout& x);
TreeBuildOptions build_opts(const MkfsLayout& x, uint64_t id);
format::dev_item make_dev_item(const MkfsLayout& x, uint64_t devid);

// --- devices (mkfs_devices.cpp)

// Stats each target, refuses duplicates, mounted or busy devices and (without
// force) existing signatures; sets sizes (per-device -b). Holds block devices
// with O_EXCL until the layout is destroyed.
Status probe_devices(MkfsLayout& x, const std::vector<std::string>& paths,
                     std::optional<uint64_t> byte_count, bool force);
// Creates/extends image files, opens every device for writing, discards (unless
// nodiscard) and clears old signatures outside the new filesystem.
Status open_devices_for_write(MkfsLayout& x, bool nodiscard);
void release_devices(MkfsLayout& x);

// The content step (--rootdir). `plan` runs after chunk planning and before
// the layout is solved: it may call reserve_data, fill extra_items and
// data_extents. `write` runs once the devices are open, before tree blocks
// are written, and writes the content data through the writer.
// With `write_first`, `write` runs before the layout is solved instead (the
// devices are opened first): it may then also write subvolume trees of its
// own (TreeState::prebuilt, from meta_cursor on) and set extra_items,
// data_extents and content_roots from what it wrote.
struct MkfsContentHook {
    std::function<Status(MkfsLayout&)> plan;
    std::function<Status(MkfsLayout&, MkfsWriter&)> write;
    bool write_first = false;
};

// --- --rootdir (mkfs_content.cpp): scan first (errors before anything is
// touched), then a content hook that sizes the chunks and writes data and
// subvolume trees before the layout; --shrink after the layout and at the end.
struct RootdirStep;
struct RootdirOptions;
Result<std::shared_ptr<RootdirStep>> rootdir_step_scan(const RootdirOptions& opts, const MkfsLayout& x, bool shrink);
MkfsContentHook rootdir_step_hook(std::shared_ptr<RootdirStep> s);
// Shrinks the chunks to what they hold and the devices to their last stripe,
// then solves the layout again.
Status rootdir_step_shrink(RootdirStep& s, MkfsLayout& x);
// Truncates image files to the shrunk size (after everything is written).
Status rootdir_step_finish(RootdirStep& s, MkfsLayout& x);

inline constexpr uint64_t MKFS_RESERVED = 1ULL << 20;  // start of each device left alone
inline constexpr uint64_t MKFS_GEN = 1;                // generation of everything mkfs writes

}  // namespace btk
