// Writing tree blocks and superblocks, independent of an opened Filesystem.
//
// BlockWriter finishes tree blocks (header fields common to the filesystem,
// checksum), maps each to every physical copy through the chunk map (DUP and
// RAID1 blocks are written to all stripes) and writes queued blocks in large
// sequential pwrite calls where they are contiguous on a device.
//
// write_supers writes every superblock copy that fits on each device, after
// an fsync of everything written before, and fsyncs again.
#pragma once

#include "chunk.h"
#include "device.h"
#include "format.h"
#include "result.h"

#include <cstdint>
#include <map>
#include <span>
#include <vector>

namespace btk {

struct WriteContext {
    uint32_t nodesize = 16384;
    uint32_t sectorsize = 4096;
    uint16_t csum_type = format::CSUM_TYPE_CRC32;
    uint8_t fsid[format::FSID_SIZE] = {};  // the fsid tree blocks carry (metadata_uuid if set)
    uint8_t chunk_tree_uuid[format::UUID_SIZE] = {};
    uint64_t generation = 1;
    const ChunkMap* chunks = nullptr;
    std::map<uint64_t, Device*> devices;  // by devid
};

class BlockWriter {
public:
    explicit BlockWriter(const WriteContext& ctx) : ctx_(ctx) {}

    // Fills fsid, flags (WRITTEN, mixed backref revision), chunk tree uuid and
    // generation into a block whose bytenr, owner, nritems and level are set,
    // then computes its checksum.
    void finish(std::span<uint8_t> block) const;

    // Devices to write to at flush (by devid); may be set after queueing.
    void set_devices(std::map<uint64_t, Device*> devs) { ctx_.devices = std::move(devs); }

    // Finishes a block (nodesize bytes) and queues it for every copy.
    Status add(std::vector<uint8_t>&& block);

    // Writes everything queued, coalescing contiguous pieces per device, in
    // ascending physical order; clears the queue.
    Status flush();

    // Largest single write (bytes); crash tests use one block per write.
    void set_max_batch(size_t bytes) noexcept { max_batch_ = bytes; }

    size_t queued_blocks() const noexcept { return blocks_; }
    uint64_t bytes_written() const noexcept { return written_; }
    uint64_t write_calls() const noexcept { return calls_; }

private:
    struct Piece {
        size_t buf;        // index into bufs_
        size_t off, len;   // range of the buffer
    };
    WriteContext ctx_;
    std::vector<std::vector<uint8_t>> bufs_;
    std::map<std::pair<uint64_t, uint64_t>, Piece> pieces_;  // (devid, physical)
    size_t blocks_ = 0;
    size_t max_batch_ = 8u << 20;
    uint64_t written_ = 0, calls_ = 0;
};

// Writes superblock `sb` to every device: for each, dev_item describes that
// device (taken from `dev_items` by devid), each copy that fits gets its
// bytenr and checksum. Syncs every device before and after.
Status write_supers(const format::super_block& sb,
                    const std::map<uint64_t, format::dev_item>& dev_items,
                    const std::map<uint64_t, Device*>& devices);

}  // namespace btk
