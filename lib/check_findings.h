// The findings `btk check` can report: one table with a stable id, a
// severity and a message template per finding, and the Finding record the
// checker hands to its caller.
//
// A finding carries its location (tree, bytenr, key) and named fields
// (numbers or strings) so that a later repair can act on it without parsing
// text; the message is rendered from the template by substituting {name}
// with the field of that name.
#pragma once

#include "key.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace btk {

enum class Severity { error, warning };

// Stable identifiers; the id string (FindingDef::id) is what users and
// scripts see. Append only; never renumber the strings.
enum class FindingKind {
    // superblocks and devices
    super_primary_bad,
    super_copy_magic,
    super_copy_csum,
    super_copy_bytenr,
    super_copy_invalid,
    super_copy_fsid,
    super_copy_stale,
    super_copy_newer,
    super_total_bytes_unaligned,
    super_total_bytes_small,
    super_total_bytes_large,
    super_bytes_used,
    super_num_devices,
    super_dev_item,
    dev_missing,
    dev_total_bytes_unaligned,
    dev_too_small,
    dev_bytes_used,
    // chunks, device extents, block groups
    chunk_invalid,
    sys_array_invalid,
    sys_chunk_not_in_tree,
    sys_chunk_not_in_array,
    sys_chunk_differs,
    chunk_stripe_no_dev_extent,
    dev_extent_mismatch,
    dev_extent_orphan,
    dev_extent_overlap,
    dev_extent_beyond_device,
    dev_extent_no_device,
    block_group_missing,
    block_group_orphan,
    block_group_mismatch,
    block_group_used,
    // tree blocks
    block_unaligned,
    block_unmapped,
    block_read_error,
    block_csum,
    block_bytenr,
    block_fsid,
    block_invalid,
    block_level,
    block_generation,
    block_generation_future,
    block_owner,
    block_key_order,
    block_first_key,
    block_empty,
    block_crossing_stripe,
    root_item_invalid,
    item_invalid,
    // extent tree
    extent_item_invalid,
    extent_overlap,
    extent_outside_block_group,
    extent_generation_future,
    extent_missing,
    extent_orphan,
    extent_ref_missing,
    extent_ref_extra,
    extent_refs_count,
    extent_level,
    extent_flags,
    extent_backref_orphan,
    // data extent backrefs vs file extent items
    data_ref_missing,
    data_ref_extra,
    data_ref_count,
    data_extent_missing,
    block_chunk_type,
    extent_chunk_type,
    extent_unaligned,
    // fs trees (check-fs)
    fs_item_unknown,
    inode_cache_item,
    inode_missing,
    root_dir_missing,
    inode_invalid,
    inode_nlink,
    inode_nbytes,
    inode_no_orphan,
    dir_isize,
    dir_name_invalid,
    dir_name_hash,
    dir_item_missing,
    dir_index_missing,
    inode_ref_missing,
    dir_entry_mismatch,
    dir_entry_duplicate,
    file_extent_invalid,
    file_extent_overlap,
    file_extent_gap,
    file_extent_compressed_nodatasum,
    root_ref_missing,
    root_ref_mismatch,
    root_ref_dir_entry,
    root_orphan_missing,
    uuid_item_invalid,
    uuid_missing,
    csum_item_invalid,
    csum_no_extent,
    csum_missing,
    data_csum_mismatch,
    data_csum_mirror,
    log_tree_present,
    // space and qgroups (check-space)
    fst_feature_bits,
    fst_missing,
    fst_item_invalid,
    fst_item_outside,
    fst_info_missing,
    fst_info_orphan,
    fst_info_stale,
    fst_extent_count,
    fst_overlap,
    fst_free_allocated,
    fst_free_missing,
    space_cache_generation,
    space_cache_invalid,
    space_cache_wrong,
    qgroup_status_missing,
    qgroup_inconsistent,
    qgroup_item_invalid,
    qgroup_missing,
    qgroup_mismatch,
    count_  // number of kinds
};

struct FindingDef {
    FindingKind kind;
    const char* id;       // stable name, e.g. "block_generation"
    Severity severity;
    const char* message;  // template; {name} is replaced by field `name`
};

// The definition of a kind (the table lives in check_findings.cpp).
const FindingDef& finding_def(FindingKind k) noexcept;
// Every definition, in FindingKind order.
const std::vector<FindingDef>& finding_table();

struct FindingField {
    std::string name;
    std::string text;     // the value as printed
    bool numeric = false; // JSON: printed as a number
};

struct Finding {
    FindingKind kind{};
    uint64_t tree = 0;             // tree objectid the finding is in (0: none)
    uint64_t bytenr = 0;           // tree block or logical address (0: none)
    std::optional<Key> key;        // item key, when the finding is about an item
    std::vector<FindingField> fields;

    const FindingDef& def() const noexcept { return finding_def(kind); }
    Severity severity() const noexcept { return def().severity; }

    Finding& num(std::string name, uint64_t v);
    Finding& str(std::string name, std::string v);
    // The field of that name, or nullptr.
    const FindingField* field(std::string_view name) const noexcept;

    // The message template with its fields substituted.
    std::string message() const;
    // "ERROR: message" / "WARNING: message".
    std::string text_line() const;
    // One JSON object (one line, no trailing newline).
    std::string json() const;
};

std::string json_escape(std::string_view s);

}  // namespace btk
