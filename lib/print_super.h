// Superblock printing: the text of `btrfs inspect-internal dump-super`
// (btrfs-progs 6.2, byte for byte) and a JSON rendering of the same fields.
//
// btk::dump_super (inspect.h) is built from these pieces; the flag helpers
// are also meant for other dumpers that show superblock flags.
#pragma once

#include "format.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace btk {

class Out;

// --- Flag names --------------------------------------------------------------
//
// *_flags_string() returns the indented block dump-super prints under a flags
// line, exactly as btrfs-progs 6.2 does ("" when flags == 0):
//
//     \t\t\t( NAME1 |\n\t\t\t  NAME2 |\n\t\t\t  unknown flag: 0x... )\n
//
// including its quirks (names and "unknown" masks of progs 6.2).
std::string super_flags_string(uint64_t flags);
std::string compat_ro_flags_string(uint64_t flags);
std::string incompat_flags_string(uint64_t flags);

// Names of the bits set in `flags` that btk knows (a superset of what progs
// 6.2 prints), in bit order; bits without a name are left out (see
// *_flags_unnamed). Used for JSON output.
std::vector<std::string_view> super_flag_names(uint64_t flags);
std::vector<std::string_view> compat_ro_flag_names(uint64_t flags);
std::vector<std::string_view> incompat_flag_names(uint64_t flags);
// The bits of `flags` that have no name in the lists above.
uint64_t super_flags_unnamed(uint64_t flags);
uint64_t compat_ro_flags_unnamed(uint64_t flags);
uint64_t incompat_flags_unnamed(uint64_t flags);

// Checksum type name as dump-super prints it ("crc32c", "xxhash64", "sha256",
// "blake2"), or nullptr for a type progs 6.2 does not know.
const char* super_csum_type_name(uint16_t csum_type) noexcept;
// Bytes of the checksum dump-super shows: the type's size, 32 when unknown.
uint32_t super_csum_print_size(uint16_t csum_type) noexcept;
// Whether the stored checksum matches the block (false for unknown types).
bool super_csum_matches(const format::super_block& sb) noexcept;

// --- Whole superblock --------------------------------------------------------

// Prints the body of one superblock as dump-super does, from "csum_type"
// to "dev_item.generation"; with `full`, also the sys_chunk_array items and
// the backup roots. No header and no trailing blank line. Problems in the
// sys_chunk_array are reported on `err` ("ERROR: ..." lines, as progs does),
// which may be nullptr to drop them. Safe on any byte content.
void print_super_text(Out& out, const format::super_block& sb, bool full,
                      std::FILE* err = stderr);

// Prints one superblock as a JSON object (schema: top of print_super.cpp).
// `indent` is the number of spaces the object's own braces are indented by.
void print_super_json(Out& out, const format::super_block& sb, bool full,
                      std::string_view device, uint64_t sb_bytenr, int indent = 0);

}  // namespace btk
