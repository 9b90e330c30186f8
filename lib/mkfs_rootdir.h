// mkfs --rootdir: the content of a new filesystem, copied from a directory.
//
// Two steps, so that mkfs can size its chunks before anything is written:
//
//   rootdir_scan()      walks the directory once (lstat, xattrs, symlink
//                       targets, the data ranges of sparse files) into a
//                       compact RootdirModel: inodes numbered as the kernel
//                       would number them if `cp -a` created them in name
//                       order, names, hard-link groups (links counted inside
//                       the tree), the subvolume split and inode flags, plus an
//                       upper bound of the data bytes and an estimate of the
//                       metadata item bytes.
//   rootdir_populate()  reads, compresses and checksums file data on a worker
//                       pool (results consumed in a fixed order, so the output
//                       is reproducible), takes logical ranges from a
//                       DataSpace, which writes the data, and hands every item
//                       the content needs to an ItemSink.
//
// Items reach the sink in strictly increasing key order per tree for the
// subvolume trees, the extent tree (data extent items) and the csum tree. The
// root tree (ROOT_REF/ROOT_BACKREF) and uuid tree items come at the end; root
// items of the new subvolumes depend on where their tree blocks go, so the
// caller makes them (from RootdirModel::subvols: id, ro flag, uuid).
#pragma once

#include "chunk.h"
#include "device.h"
#include "format.h"
#include "key.h"
#include "result.h"
#include "write_tree.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace btk {

// --subvol [TYPE:]SUBDIR, TYPE one of rw (default), ro, default, default-ro.
struct RootdirSubvolSpec {
    std::string path;  // relative to the root directory
    bool readonly = false;
    bool is_default = false;
};

// --inode-flags FLAG[,FLAG...]:PATH, FLAG one of nodatacow, nodatasum.
struct RootdirInodeFlagSpec {
    std::string path;
    bool nodatacow = false;  // implies nodatasum
    bool nodatasum = false;
};

struct RootdirOptions {
    std::string dir;
    uint32_t sectorsize = 4096;
    uint32_t nodesize = 16384;
    uint16_t csum_type = format::CSUM_TYPE_CRC32;
    uint8_t compress = format::COMPRESS_NONE;  // COMPRESS_ZLIB/LZO/ZSTD
    int compress_level = 0;                    // <= 0: the codec's default
    bool no_holes = true;                      // else explicit hole extents
    bool extref = true;                        // INODE_EXTREF when a ref item is full
    std::vector<RootdirSubvolSpec> subvols;
    std::vector<RootdirInodeFlagSpec> inode_flags;
    std::optional<std::pair<uint32_t, uint32_t>> root_owner;  // uid, gid of the top directory
    int64_t now_sec = 0;                       // otime of every inode, subvolume times
    uint32_t now_nsec = 0;
    uint64_t generation = 1;
    uint32_t max_inline = 2048;                // the kernel's max_inline default
    unsigned threads = 0;                      // workers; 0: one per CPU
    uint64_t window_bytes = 16ULL << 20;       // file data in flight at most (approximately)
    // Uuid of a new subvolume (random unless the caller wants reproducible
    // output); unset: random.
    std::function<void(uint64_t subvol_id, uint8_t out[16])> make_uuid;
};

// Parsers for the command line forms (one-line errors, Errc::invalid_argument).
Result<RootdirSubvolSpec> parse_rootdir_subvol(const std::string& arg);
Result<RootdirInodeFlagSpec> parse_rootdir_inode_flags(const std::string& arg);
// "zlib", "lzo", "zstd", "zstd:LEVEL", "zlib:LEVEL" (zlib 1..9, zstd 1..15), "no"/"none".
Status parse_rootdir_compress(const std::string& arg, uint8_t& type, int& level);
// "UID:GID" (decimal).
Result<std::pair<uint32_t, uint32_t>> parse_rootdir_owner(const std::string& arg);

struct RootdirModel {
    // Inode flags kept during the scan besides the btrfs ones.
    static constexpr uint32_t F_SPARSE = 1;     // data ranges from SEEK_DATA/SEEK_HOLE
    static constexpr uint32_t F_SUBVOL_ROOT = 2;
    static constexpr uint32_t F_NODATA = 4;     // a regular file made of holes only

    struct Inode {
        uint64_t size = 0;
        uint64_t rdev = 0;          // on-disk encoding: major << 20 | minor
        uint64_t flags = 0;         // btrfs inode flags (NODATACOW, NODATASUM)
        uint64_t ino = 0;           // objectid in its subvolume tree
        uint64_t dir_isize = 0;     // directories: sum of name lengths * 2
        uint64_t data_bound = 0;    // bytes of data extents at most (sector multiples)
        int64_t atime = 0, mtime = 0, ctime = 0;
        uint32_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
        uint32_t mode = 0, uid = 0, gid = 0;
        uint32_t nlink = 0;         // names inside its subvolume
        uint32_t subvol = 0;        // index into subvols
        uint32_t first_name = ~0u;  // the name it was found under (~0u: a subvolume's top)
        uint32_t entries_begin = 0, entries_end = 0;  // directories: its names
        uint32_t str_off = 0, str_len = 0;   // symlink target in `strings`
        uint32_t xattr_off = 0, xattr_len = 0;  // xattrs in `strings` (see xattrs())
        uint32_t scan_flags = 0;
    };
    struct Name {
        uint32_t parent = 0;        // directory inode (index into inodes)
        uint32_t child = 0;         // inode named (index into inodes)
        uint32_t next_link = ~0u;   // next name of the same inode in its subvolume
        uint32_t off = 0;           // name bytes in `strings`
        uint16_t len = 0;
        bool subvol_entry = false;  // child is the top directory of another subvolume
        uint64_t index = 0;         // DIR_INDEX in the parent
    };
    struct Subvol {
        uint64_t id = 0;            // tree id: FS_TREE_OBJECTID for the top level
        uint32_t root_inode = 0;    // its top directory (index into inodes)
        uint32_t parent = 0;        // parent subvolume (index), for id != FS_TREE
        uint32_t entry = ~0u;       // its name in the parent (index into names)
        bool readonly = false, is_default = false;
        uint8_t uuid[16] = {};
        uint64_t next_ino = format::FIRST_FREE_OBJECTID + 1;  // next free objectid (scan)
    };

    RootdirOptions opts;
    std::vector<Inode> inodes;      // in creation order: objectids increase in each subvolume
    std::vector<Name> names;        // grouped by parent directory, in index order
    std::vector<Subvol> subvols;    // [0] is the top level
    std::string strings;

    uint64_t data_bound = 0;        // upper bound of the data bytes to allocate
    uint64_t meta_bytes = 0;        // estimate of the item bytes (headers + data), all trees
    uint64_t max_extent = 0;        // largest single data extent (bytes on disk)
    uint64_t regular_files = 0, inline_candidates = 0;

    std::string_view str(uint32_t off, uint32_t len) const { return {strings.data() + off, len}; }
    std::string_view name(const Name& n) const { return str(n.off, n.len); }
    // Path of an inode relative to the root directory ("" for the top).
    std::string path(uint32_t inode) const;
    // Decoded xattrs of an inode: (name, value) pairs in the order read.
    std::vector<std::pair<std::string_view, std::string_view>> xattrs(const Inode& in) const;
    // Index of the subvolume marked default, or -1.
    int default_subvol() const;
};

// Walks opts.dir. Errors (missing or non-directory root, a --subvol or
// --inode-flags path that does not name something suitable inside it, an
// xattr or symlink too large for the node size, too many links without
// extref) are one line, Errc::invalid_argument; nothing is written anywhere.
Result<RootdirModel> rootdir_scan(const RootdirOptions& opts);

// A contiguous piece of data space.
struct DataRange {
    uint64_t logical = 0;
    uint64_t length = 0;
    uint32_t run = 0;  // ranges of different runs are never merged into one extent
};

// Where file data goes: the caller's data chunks.
class DataSpace {
public:
    virtual ~DataSpace() = default;
    // The next free range: at least `min_len` and at most `want` bytes, at
    // the lowest address above everything handed out before, never crossing
    // a chunk end or a superblock copy (both end a run). Space skipped
    // because it is shorter than `min_len` stays free. Errc::invalid_argument
    // when the space is exhausted.
    virtual Result<DataRange> reserve(uint64_t want, uint64_t min_len) = 0;
    // Writes `pieces` back to back at `logical` (inside reserved ranges of one
    // run), to every copy. Called from one thread at a time, in increasing
    // address order.
    virtual Status write(uint64_t logical, std::span<const std::span<const uint8_t>> pieces) = 0;
};

// Takes the items of the content.
class ItemSink {
public:
    virtual ~ItemSink() = default;
    virtual Status add(uint64_t tree, const Key& key, std::span<const uint8_t> data) = 0;
};

struct RootdirResult {
    uint64_t data_bytes = 0;         // allocated for data extents
    uint64_t data_extents = 0, compressed_extents = 0, inline_extents = 0;
    uint64_t csum_items = 0, nocompress_inodes = 0;
    uint64_t bytes_read = 0;
    std::vector<std::pair<uint64_t, uint64_t>> allocated;  // (logical, length) of data, merged within runs
    uint64_t default_subvol = 0;     // tree id of the --subvol default, 0: none
    bool uses_compression = false;   // a compressed extent exists
};

// Reads the data and emits the items (see the file comment). Source files
// that cannot be read fail the whole run with their path.
Result<RootdirResult> rootdir_populate(const RootdirModel& model, DataSpace& space, ItemSink& sink);

// A DataSpace over data chunks: hands out `runs` (free logical ranges, in
// allocation order; chunk ends and superblock stripes split them) front to
// back and writes through the chunk map to every copy, coalescing what is
// contiguous on a device into one pwritev. Devices are written with O_DIRECT
// where they allow it (buffers are page aligned, lengths sector multiples),
// else through their buffered descriptor. RAID5/6 chunks go to `parity_write`
// (which computes parity), or fail if it is unset.
class ChunkDataSpace : public DataSpace {
public:
    ChunkDataSpace(std::vector<std::pair<uint64_t, uint64_t>> runs, const ChunkMap& map,
                   std::map<uint64_t, Device*> devices,
                   std::function<Status(uint64_t logical, std::span<const uint8_t>)> parity_write = {});
    ~ChunkDataSpace() override;
    ChunkDataSpace(const ChunkDataSpace&) = delete;
    ChunkDataSpace& operator=(const ChunkDataSpace&) = delete;

    Result<DataRange> reserve(uint64_t want, uint64_t min_len) override;
    Status write(uint64_t logical, std::span<const std::span<const uint8_t>> pieces) override;
    uint64_t write_calls() const noexcept { return calls_; }
    uint64_t bytes_written() const noexcept { return written_; }

private:
    Status write_fd(uint64_t devid, uint64_t physical, std::span<const std::span<const uint8_t>> pieces,
                    uint64_t len);
    std::vector<std::pair<uint64_t, uint64_t>> runs_;
    size_t cur_ = 0;
    uint64_t used_ = 0;
    const ChunkMap& map_;
    std::map<uint64_t, Device*> devices_;
    std::map<uint64_t, int> direct_;  // devid -> O_DIRECT descriptor (-1: none)
    std::function<Status(uint64_t, std::span<const uint8_t>)> parity_write_;
    uint64_t calls_ = 0, written_ = 0;
};

// Free logical ranges of [start, start+length) without the `excluded` ranges
// (superblock stripes), shorter pieces than `min` dropped.
std::vector<std::pair<uint64_t, uint64_t>> rootdir_runs(uint64_t start, uint64_t length,
                                                        const std::vector<std::pair<uint64_t, uint64_t>>& excluded,
                                                        uint64_t min);

// An ItemSink for mkfs: subvolume trees (FS_TREE and ids from 256) are built
// as their items arrive (TreeStreamBuilder: blocks from `alloc`, to `sink`),
// the items of other trees are kept for the caller.
class StreamingTreeSink : public ItemSink {
public:
    StreamingTreeSink(std::function<TreeBuildOptions(uint64_t tree)> opts,
                      std::function<Result<uint64_t>(uint64_t tree, uint8_t level)> alloc, BlockSink sink);
    Status add(uint64_t tree, const Key& key, std::span<const uint8_t> data) override;
    // Finishes the subvolume trees: tree id -> what was built.
    Result<std::map<uint64_t, BuiltTree>> finish();
    std::map<uint64_t, std::vector<TreeItem>> kept;

private:
    std::function<TreeBuildOptions(uint64_t)> opts_;
    std::function<Result<uint64_t>(uint64_t, uint8_t)> alloc_;
    BlockSink sink_;
    std::map<uint64_t, std::unique_ptr<TreeStreamBuilder>> builders_;
};

// Metadata blocks the content items need at most, for `nodesize` blocks
// filled to `fill_percent` (the estimate behind sizing a metadata chunk).
uint64_t rootdir_meta_blocks(const RootdirModel& model, uint32_t fill_percent);

}  // namespace btk
