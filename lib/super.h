// Superblock reading, validation and selection among the mirrors.
#pragma once

#include "device.h"
#include "format.h"
#include "result.h"

#include <array>
#include <optional>

namespace btk {

// What was found at one superblock mirror location.
struct SuperCopy {
    int mirror = 0;
    uint64_t bytenr = 0;
    bool present = false;   // the device is large enough to hold it
    bool magic_ok = false;
    bool csum_ok = false;
    bool valid = false;     // magic, checksum, bytenr and sanity checks all pass
    std::string problem;    // why it is not valid
    format::super_block sb{};
};

// Reads the superblock copy `mirror` (0..2) of a device; never fails for a
// bad copy (see SuperCopy::valid), only for I/O errors.
Result<SuperCopy> read_super_copy(const Device& dev, int mirror);

// Checks the fields the rest of the library relies on: sizes that are powers
// of two within range, known checksum type, sys_chunk_array_size, root levels.
Status check_super_sanity(const format::super_block& sb);

// Verifies the superblock checksum.
bool super_csum_ok(const format::super_block& sb);
void super_update_csum(format::super_block& sb);

// Chooses the superblock: with mirror >= 0 that copy (which must be valid),
// otherwise the valid copy with the highest generation.
Result<SuperCopy> select_super(const Device& dev, int mirror = -1);

// The fsid tree blocks carry: metadata_uuid when that feature is set.
const uint8_t* super_metadata_fsid(const format::super_block& sb);

}  // namespace btk
