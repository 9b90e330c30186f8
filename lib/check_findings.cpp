#include "check_findings.h"

#include <fmt/format.h>

namespace btk {

namespace {

using K = FindingKind;
constexpr Severity E = Severity::error;
constexpr Severity W = Severity::warning;

const std::vector<FindingDef> kTable = {
    {K::super_primary_bad, "super_primary_bad", E,
     "device {devid}: primary superblock is invalid ({problem}), using copy {mirror}"},
    {K::super_copy_magic, "super_copy_magic", W,
     "device {devid}: superblock copy {mirror} at {offset} has no btrfs magic"},
    {K::super_copy_csum, "super_copy_csum", E,
     "device {devid}: superblock copy {mirror} at {offset} has a bad checksum"},
    {K::super_copy_bytenr, "super_copy_bytenr", E,
     "device {devid}: superblock copy {mirror} at {offset} says bytenr {found}"},
    {K::super_copy_invalid, "super_copy_invalid", E,
     "device {devid}: superblock copy {mirror} at {offset} is invalid: {problem}"},
    {K::super_copy_fsid, "super_copy_fsid", E,
     "device {devid}: superblock copy {mirror} at {offset} has fsid {found}, expected {expected}"},
    {K::super_copy_stale, "super_copy_stale", W,
     "device {devid}: superblock copy {mirror} at {offset} has generation {found}, older than {expected}"},
    {K::super_copy_newer, "super_copy_newer", E,
     "device {devid}: superblock copy {mirror} at {offset} has generation {found}, newer than the copy in use ({expected})"},
    {K::super_total_bytes_unaligned, "super_total_bytes_unaligned", E,
     "super total_bytes {found} is not aligned to sectorsize {sectorsize}"},
    {K::super_total_bytes_small, "super_total_bytes_small", E,
     "super total_bytes {found} smaller than the devices' total_bytes {expected}"},
    {K::super_total_bytes_large, "super_total_bytes_large", W,
     "super total_bytes {found} larger than the devices' total_bytes {expected}"},
    {K::super_bytes_used, "super_bytes_used", E,
     "super bytes_used {found} differs from the block groups' used total {expected}"},
    {K::super_num_devices, "super_num_devices", E,
     "super num_devices {found} differs from the chunk tree's device item count {expected}"},
    {K::super_dev_item, "super_dev_item", E,
     "device {devid}: superblock dev_item {field} {found} differs from the chunk tree's {expected}"},
    {K::dev_missing, "dev_missing", E, "device {devid} is missing"},
    {K::dev_total_bytes_unaligned, "dev_total_bytes_unaligned", E,
     "device {devid}: total_bytes {found} is not aligned to sectorsize {sectorsize}"},
    {K::dev_too_small, "dev_too_small", E,
     "device {devid}: total_bytes {expected} is larger than the device or image ({found} bytes)"},
    {K::dev_bytes_used, "dev_bytes_used", E,
     "device {devid}: bytes_used {found} differs from its dev extents' total {expected}"},

    {K::chunk_invalid, "chunk_invalid", E, "chunk {logical}: {problem}"},
    {K::sys_array_invalid, "sys_array_invalid", E, "superblock sys_chunk_array: {problem}"},
    {K::sys_chunk_not_in_tree, "sys_chunk_not_in_tree", E,
     "system chunk {logical} in sys_chunk_array is not in the chunk tree"},
    {K::sys_chunk_not_in_array, "sys_chunk_not_in_array", E,
     "system chunk {logical} is not in the superblock's sys_chunk_array"},
    {K::sys_chunk_differs, "sys_chunk_differs", E,
     "system chunk {logical} differs between sys_chunk_array and the chunk tree"},
    {K::chunk_stripe_no_dev_extent, "chunk_stripe_no_dev_extent", E,
     "chunk {logical} stripe {stripe} (devid {devid} physical {physical}) has no dev extent"},
    {K::dev_extent_mismatch, "dev_extent_mismatch", E,
     "dev extent devid {devid} physical {physical}: chunk_offset {chunk_offset} length {found}, "
     "chunk {logical} expects length {expected}"},
    {K::dev_extent_orphan, "dev_extent_orphan", E,
     "dev extent devid {devid} physical {physical} length {length} (chunk_offset {chunk_offset}) "
     "belongs to no chunk stripe"},
    {K::dev_extent_overlap, "dev_extent_overlap", E,
     "dev extent devid {devid} physical {physical} length {length} overlaps the previous one ending at {prev_end}"},
    {K::dev_extent_beyond_device, "dev_extent_beyond_device", E,
     "dev extent devid {devid} physical {physical} length {length} ends beyond total_bytes {total_bytes}"},
    {K::dev_extent_no_device, "dev_extent_no_device", E,
     "dev extent devid {devid} physical {physical}: no device item for devid {devid}"},
    {K::block_group_missing, "block_group_missing", E,
     "chunk {logical} length {length} type {flags} has no block group item"},
    {K::block_group_orphan, "block_group_orphan", E,
     "block group {logical} length {length} has no chunk"},
    {K::block_group_mismatch, "block_group_mismatch", E,
     "block group {logical}: {field} {found} differs from its chunk's {expected}"},
    {K::block_group_used, "block_group_used", E,
     "block group {logical} used {found} differs from the extents inside it ({expected})"},

    {K::block_unaligned, "block_unaligned", E,
     "tree {tree}: tree block {bytenr} is not aligned to sectorsize {sectorsize}"},
    {K::block_unmapped, "block_unmapped", E,
     "tree {tree}: tree block {bytenr} is not inside any chunk"},
    {K::block_read_error, "block_read_error", E,
     "tree {tree}: tree block {bytenr} copy {mirror}: {problem}"},
    {K::block_csum, "block_csum", E,
     "tree {tree}: tree block {bytenr} copy {mirror}: checksum mismatch"},
    {K::block_bytenr, "block_bytenr", E,
     "tree {tree}: tree block {bytenr} copy {mirror}: header bytenr is {found}"},
    {K::block_fsid, "block_fsid", E,
     "tree {tree}: tree block {bytenr} copy {mirror}: fsid does not match the filesystem"},
    {K::block_invalid, "block_invalid", E, "tree {tree}: tree block {bytenr}: {problem}"},
    {K::block_level, "block_level", E,
     "tree {tree}: tree block {bytenr} has level {found}, expected {expected}"},
    {K::block_generation, "block_generation", E,
     "tree {tree}: tree block {bytenr} has generation {found}, its parent pointer says {expected}"},
    {K::block_generation_future, "block_generation_future", E,
     "tree {tree}: tree block {bytenr} has generation {found}, above the super generation {expected}"},
    {K::block_owner, "block_owner", E,
     "tree {tree}: tree block {bytenr} has owner {found}"},
    {K::block_key_order, "block_key_order", E,
     "tree {tree}: tree block {bytenr}: key at slot {slot} is not above the previous key"},
    {K::block_first_key, "block_first_key", E,
     "tree {tree}: tree block {bytenr}: first key {found} differs from the parent's key {expected}"},
    {K::block_empty, "block_empty", E,
     "tree {tree}: tree block {bytenr} (level {level}) has no items"},
    {K::block_crossing_stripe, "block_crossing_stripe", W,
     "tree {tree}: bad metadata [{bytenr}, {end}) crossing stripe boundary"},
    {K::root_item_invalid, "root_item_invalid", E, "root item {key}: {problem}"},
    {K::item_invalid, "item_invalid", E, "tree {tree}: leaf {bytenr} slot {slot} key {key}: {problem}"},

    {K::extent_item_invalid, "extent_item_invalid", E, "extent {extent}: item {key}: {problem}"},
    {K::extent_overlap, "extent_overlap", E,
     "extent {extent} length {length} overlaps the previous extent ending at {prev_end}"},
    {K::extent_outside_block_group, "extent_outside_block_group", E,
     "extent {extent} length {length} is not inside one chunk"},
    {K::extent_generation_future, "extent_generation_future", E,
     "extent {extent}: generation {found} above the super generation {expected}"},
    {K::extent_missing, "extent_missing", E,
     "tree block {extent} (tree {tree}, level {level}) has no extent item"},
    {K::extent_orphan, "extent_orphan", E,
     "extent item for tree block {extent} but no tree points to it"},
    {K::extent_ref_missing, "extent_ref_missing", E,
     "tree block {extent}: no backref for {ref_type} {ref}"},
    {K::extent_ref_extra, "extent_ref_extra", E,
     "tree block {extent}: backref {ref_type} {ref} matches no pointer to the block"},
    {K::extent_refs_count, "extent_refs_count", E,
     "extent {extent}: refs {found}, but {expected} references found"},
    {K::extent_level, "extent_level", E,
     "extent {extent}: item says level {found}, the tree block has level {expected}"},
    {K::extent_flags, "extent_flags", E, "extent {extent}: flags {found}: {problem}"},
    {K::extent_backref_orphan, "extent_backref_orphan", E,
     "backref {key} has no extent item"},

    {K::data_ref_missing, "data_ref_missing", E,
     "data extent {extent}: no backref for {ref} ({expected} file extents point at it)"},
    {K::data_ref_extra, "data_ref_extra", E,
     "data extent {extent}: backref {ref} (count {found}) matches no file extent"},
    {K::data_ref_count, "data_ref_count", E,
     "data extent {extent}: backref {ref} has count {found}, {expected} file extents point at it"},
    {K::data_extent_missing, "data_extent_missing", E,
     "file extent of {ref} points to data extent {extent}, which has no extent item"},
    {K::block_chunk_type, "block_chunk_type", W,
     "tree {tree}: tree block {bytenr} is in chunk {logical} of type {flags}"},
    {K::extent_chunk_type, "extent_chunk_type", W,
     "extent {extent} ({kind}) is in chunk {logical} of type {flags}"},
    {K::extent_unaligned, "extent_unaligned", E,
     "extent {extent} length {length} is not aligned to sectorsize {sectorsize}"},

    // fs trees (check-fs)
    {K::fs_item_unknown, "fs_item_unknown", E,
     "root {root}: leaf {bytenr} slot {slot}: item {key} does not belong in a subvolume tree"},
    {K::inode_cache_item, "inode_cache_item", E,
     "root {root}: deprecated inode cache item {key} (the inode_cache feature was removed)"},
    {K::inode_missing, "inode_missing", E, "root {root} inode {ino}: {items} items but no inode item"},
    {K::root_dir_missing, "root_dir_missing", E, "root {root}: root directory {ino} has no inode item"},
    {K::inode_invalid, "inode_invalid", E, "root {root} inode {ino}: {problem}"},
    {K::inode_nlink, "inode_nlink", E, "root {root} inode {ino}: nlink {found}, but inode refs name it {expected} times"},
    {K::inode_nbytes, "inode_nbytes", E, "root {root} inode {ino}: nbytes {found}, its file extents hold {expected}"},
    {K::inode_no_orphan, "inode_no_orphan", E, "root {root} inode {ino}: nlink is 0 but there is no orphan item for it"},
    {K::dir_isize, "dir_isize", E, "root {root} dir {ino}: size {found}, its entries' names add up to {expected}"},
    {K::dir_name_invalid, "dir_name_invalid", E, "root {root} inode {ino}: {item} name {name}: {problem}"},
    {K::dir_name_hash, "dir_name_hash", E,
     "root {root} inode {ino}: {item} key offset {found}, but its name {name} hashes to {expected}"},
    {K::dir_item_missing, "dir_item_missing", E,
     "root {root} dir {dir}: name {name} (index {index}) of inode {ino} has no DIR_ITEM"},
    {K::dir_index_missing, "dir_index_missing", E,
     "root {root} dir {dir}: name {name} of inode {ino} has no DIR_INDEX"},
    {K::inode_ref_missing, "inode_ref_missing", E,
     "root {root} dir {dir}: entry {name} (index {index}) points to inode {ino}, which has no inode ref back"},
    {K::dir_entry_mismatch, "dir_entry_mismatch", E, "root {root} dir {dir}: entry {name} of inode {ino}: {problem}"},
    {K::dir_entry_duplicate, "dir_entry_duplicate", E, "root {root} dir {dir}: name {name} is there {count} times"},
    {K::file_extent_invalid, "file_extent_invalid", E, "root {root} inode {ino} file extent at {offset}: {problem}"},
    {K::file_extent_overlap, "file_extent_overlap", E,
     "root {root} inode {ino}: file extent at {offset} overlaps the previous one, which ends at {prev_end}"},
    {K::file_extent_gap, "file_extent_gap", E,
     "root {root} inode {ino}: no file extent for [{start}, {end}) and the no-holes feature is off"},
    {K::file_extent_compressed_nodatasum, "file_extent_compressed_nodatasum", E,
     "root {root} inode {ino} file extent at {offset}: compressed, but the inode has NODATASUM"},
    {K::root_ref_missing, "root_ref_missing", E, "subvolume {child}: {problem}"},
    {K::root_ref_mismatch, "root_ref_mismatch", E,
     "subvolume {child} in root {parent}: ROOT_REF and ROOT_BACKREF differ in {field} ({found} / {expected})"},
    {K::root_ref_dir_entry, "root_ref_dir_entry", E,
     "subvolume {child} is linked as {name} in dir {dir} of root {parent}, which has no {missing} for it"},
    {K::root_orphan_missing, "root_orphan_missing", E,
     "subvolume {root} has refs 0 but no orphan item, so it is never deleted"},
    {K::uuid_item_invalid, "uuid_item_invalid", E, "uuid tree: {kind} entry for subvolume {subvol}: {problem}"},
    {K::uuid_missing, "uuid_missing", E, "subvolume {root}: its {kind} is not in the uuid tree"},
    {K::csum_item_invalid, "csum_item_invalid", E, "csum tree: leaf {bytenr} item {key}: {problem}"},
    {K::csum_no_extent, "csum_no_extent", E, "csum tree: checksums for [{start}, {end}) but no data extent there"},
    {K::csum_missing, "csum_missing", E,
     "root {root} inode {ino} file offset {offset}: data [{start}, {end}) lacks checksums for {missing} bytes"},
    {K::data_csum_mismatch, "data_csum_mismatch", E, "data [{start}, {end}): {problem} on every copy ({copies} tried)"},
    {K::data_csum_mirror, "data_csum_mirror", W, "data [{start}, {end}) copy {mirror}: {problem}, copy {good} is good"},
    {K::log_tree_present, "log_tree_present", W,
     "a log tree is present (log root {bytenr}): mount the filesystem to replay it"},
    // space and qgroups (check-space)
    {K::fst_feature_bits, "fst_feature_bits", W, "free space tree feature flags {found}: {problem}"},
    {K::fst_missing, "fst_missing", E, "the FREE_SPACE_TREE feature is set, but there is no free space tree"},
    {K::fst_item_invalid, "fst_item_invalid", E, "free space tree item {key}: {problem}"},
    {K::fst_item_outside, "fst_item_outside", E,
     "free space tree item {key} is outside the block group of its free space info ({logical} length {length})"},
    {K::fst_info_missing, "fst_info_missing", E,
     "block group {logical} length {length} has no free space info item"},
    {K::fst_info_orphan, "fst_info_orphan", E,
     "free space info {logical} length {length} belongs to no block group"},
    {K::fst_info_stale, "fst_info_stale", W,
     "free space info {logical} length {length} belongs to no block group (left by mkfs.btrfs before 6.16.1)"},
    {K::fst_extent_count, "fst_extent_count", E,
     "free space info {logical}: extent_count {found}, but {expected} free extents found"},
    {K::fst_overlap, "fst_overlap", E,
     "free space {start} length {length} overlaps the free space before it, ending at {prev_end}"},
    {K::fst_free_allocated, "fst_free_allocated", E,
     "block group {logical}: the free space tree has {count} free range(s) that are allocated, "
     "{bytes} bytes, the first [{start}, {end})"},
    {K::fst_free_missing, "fst_free_missing", E,
     "block group {logical}: {count} free range(s) are missing from the free space tree, "
     "{bytes} bytes, the first [{start}, {end})"},
    {K::space_cache_generation, "space_cache_generation", W,
     "free space cache generation {found} differs from the super generation {expected}: "
     "the kernel will rebuild the cache"},
    {K::space_cache_invalid, "space_cache_invalid", W,
     "free space cache of block group {logical}: {problem}"},
    {K::space_cache_wrong, "space_cache_wrong", W,
     "free space cache of block group {logical}: {count} range(s), {bytes} bytes, {problem}, the first [{start}, {end})"},
    {K::qgroup_status_missing, "qgroup_status_missing", E, "the quota tree has no status item"},
    {K::qgroup_inconsistent, "qgroup_inconsistent", W, "qgroup counts not verified: {problem}"},
    {K::qgroup_item_invalid, "qgroup_item_invalid", E, "quota tree item {key}: {problem}"},
    {K::qgroup_missing, "qgroup_missing", E, "subvolume {subvol} has no qgroup info item"},
    {K::qgroup_mismatch, "qgroup_mismatch", E,
     "qgroup {qgroup}: {field} {found} on disk, {expected} computed"},
};

}  // namespace

const std::vector<FindingDef>& finding_table() { return kTable; }

const FindingDef& finding_def(FindingKind k) noexcept { return kTable[size_t(k)]; }

Finding& Finding::num(std::string name, uint64_t v) {
    fields.push_back({std::move(name), std::to_string(v), true});
    return *this;
}

Finding& Finding::str(std::string name, std::string v) {
    fields.push_back({std::move(name), std::move(v), false});
    return *this;
}

const FindingField* Finding::field(std::string_view name) const noexcept {
    for (const auto& f : fields)
        if (f.name == name) return &f;
    return nullptr;
}

std::string Finding::message() const {
    std::string out;
    std::string_view t = def().message;
    size_t i = 0;
    while (i < t.size()) {
        if (t[i] == '{') {
            size_t j = t.find('}', i);
            if (j != std::string_view::npos) {
                std::string_view name = t.substr(i + 1, j - i - 1);
                if (const FindingField* f = field(name)) {
                    out += f->text;
                } else {
                    out += '?';
                }
                i = j + 1;
                continue;
            }
        }
        out += t[i++];
    }
    return out;
}

std::string Finding::text_line() const {
    return fmt::format("{}: {}", severity() == Severity::error ? "ERROR" : "WARNING", message());
}

std::string json_escape(std::string_view s) {
    std::string o;
    o.reserve(s.size() + 2);
    o += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\t': o += "\\t"; break;
            default:
                if (c < 0x20 || c >= 0x7f)
                    o += fmt::format("\\u{:04x}", c);
                else
                    o += char(c);
        }
    }
    o += '"';
    return o;
}

std::string Finding::json() const {
    std::string o = fmt::format("{{\"id\":{},\"severity\":\"{}\",\"message\":{}", json_escape(def().id),
                                severity() == Severity::error ? "error" : "warning", json_escape(message()));
    if (tree) o += fmt::format(",\"tree\":{}", tree);
    if (bytenr) o += fmt::format(",\"bytenr\":{}", bytenr);
    if (key) o += fmt::format(",\"key\":[{},{},{}]", key->objectid, key->type, key->offset);
    o += ",\"fields\":{";
    bool first = true;
    for (const auto& f : fields) {
        if (!first) o += ',';
        first = false;
        o += json_escape(f.name);
        o += ':';
        o += f.numeric ? f.text : json_escape(f.text);
    }
    o += "}}";
    return o;
}

}  // namespace btk
