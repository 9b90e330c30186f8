// Logical to physical address mapping through chunks.
#pragma once

#include "format.h"
#include "result.h"

#include <cstdint>
#include <map>
#include <span>
#include <vector>

namespace btk {

struct ChunkStripe {
    uint64_t devid;
    uint64_t offset;  // physical start on the device
    uint8_t dev_uuid[format::UUID_SIZE];
};

struct Chunk {
    uint64_t logical = 0;
    uint64_t length = 0;
    uint64_t owner = 0;
    uint64_t stripe_len = 0;
    uint64_t type = 0;
    uint32_t io_align = 0, io_width = 0, sector_size = 0;
    uint16_t num_stripes = 0;
    uint16_t sub_stripes = 0;
    std::vector<ChunkStripe> stripes;

    uint64_t profile() const noexcept { return type & format::BLOCK_GROUP_PROFILE_MASK; }
    // Number of parity stripes (RAID5: 1, RAID6: 2, otherwise 0).
    int nparity() const noexcept;
    // Number of stripes holding distinct data in one full stripe.
    int data_stripes() const noexcept;
    // Number of independent copies a read can choose from.
    int num_copies() const noexcept;
};

// One physical piece of a logical range: `length` bytes at `physical` on `devid`.
struct PhysicalRange {
    uint64_t devid;
    uint64_t physical;
    uint64_t length;
};

// Name of a profile as btrfs prints it in flags strings (e.g. "DUP", "RAID1C3").
const char* profile_name(uint64_t profile_bits) noexcept;

class ChunkMap {
public:
    // Parses a chunk item (validating it against the item size) and adds it;
    // an identical chunk at the same logical address is accepted once.
    Status add(uint64_t logical, std::span<const uint8_t> item);
    // Parses the superblock's sys_chunk_array.
    Status add_sys_chunk_array(const format::super_block& sb);

    // The chunk containing `logical`, or nullptr.
    const Chunk* find(uint64_t logical) const noexcept;
    const std::map<uint64_t, Chunk>& chunks() const noexcept { return chunks_; }

    // Maps [logical, logical+len) for reading copy `mirror` (0-based; see
    // Chunk::num_copies). The result covers the range in order, split at
    // stripe boundaries. For RAID5/6 only data stripes are returned (copy 0).
    Result<std::vector<PhysicalRange>> map(uint64_t logical, uint64_t len, int mirror = 0) const;
    // Every physical location holding `logical` (all mirrors), for writers.
    Result<std::vector<PhysicalRange>> map_all_copies(uint64_t logical, uint64_t len) const;

    int num_copies(uint64_t logical) const noexcept;

private:
    std::map<uint64_t, Chunk> chunks_;
};

// Parses a chunk item into a Chunk, validating sizes and profile rules.
Result<Chunk> parse_chunk(uint64_t logical, std::span<const uint8_t> item);

}  // namespace btk
