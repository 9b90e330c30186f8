// Printing of tree blocks and their items, as `btrfs inspect-internal
// dump-tree` of btrfs-progs 6.2 prints them (text), or as JSON.
//
// Text output is byte-identical to btrfs-progs 6.2 for well-formed blocks.
// Items whose bytes contradict their own size (an item smaller than its
// structure, a name running past the item end, too many stripes, an inline
// ref crossing the item end) are never read past their end: the printer
// prints what fits and then a short bracketed note such as
// "\t\t[item too small: 12 bytes, need 160]".
//
// JSON output (PrintFormat::json) writes one JSON object per tree block on a
// single line (JSON Lines), so a whole dump is a stream of such lines:
//
//   {"bytenr":N, "level":L, "nritems":N, "free_space":N, "generation":N,
//    "owner":N, "owner_name":"FS_TREE", "flags":N, "flags_names":["WRITTEN"],
//    "backref_rev":N, "fsid":"UUID", "chunk_tree_uuid":"UUID",
//    "csum":"HEX"                                (only with csum_headers)
//    "items":[ ITEM, ... ]                       (leaves)
//    "ptrs":[ {"key":KEY, "blockptr":N, "generation":N}, ... ] (nodes) }
//
//   KEY  = {"objectid":N, "type":"INODE_ITEM", "type_id":N, "offset":N}
//   ITEM = {"slot":N, "key":KEY, "itemoff":N, "itemsize":N, "kind":"KIND", ...}
//
// Numbers are unsigned decimal JSON numbers (full 64-bit range), except a
// leaf's free_space, which is computed as progs does and can be negative in a
// damaged leaf. Names are
// JSON strings: valid UTF-8 passes through, any other byte b is written as
// \u00XX; with hide_names a name (also a subvolume name in a root ref, which
// the text form shows as progs does) is the string "HIDDEN". Timestamps are
// {"sec":N, "nsec":N}; UUIDs are "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
// "kind" and the item's typed fields, by key type:
//   inode_item:  generation transid size nbytes block_group mode nlink uid gid
//                rdev sequence flags flags_names atime ctime mtime otime
//   inode_ref:   refs:[{index, name}]      inode_extref: refs:[{index, parent, name}]
//   dir_item (DIR_ITEM, DIR_INDEX, XATTR_ITEM): entries:[{location:KEY, type,
//                type_name, transid, name, data}]
//   dir_log:     end                       orphan: (no fields)
//   root_item:   generation root_dirid bytenr byte_limit bytes_used last_snapshot
//                flags refs drop_progress:KEY drop_level level generation_v2
//                [uuid parent_uuid received_uuid ctransid otransid stransid
//                 rtransid ctime otime stime rtime]   (when generation_v2 matches)
//   root_ref (ROOT_REF, ROOT_BACKREF): dirid sequence name
//   extent_item (EXTENT_ITEM, METADATA_ITEM): refs generation flags flags_names
//                [tree_block_key:KEY] level? inline_refs:[{type, root|parent,
//                objectid, offset, count}]
//   tree_block_ref, shared_block_ref: (no fields)
//   extent_data_ref: root objectid offset count    shared_data_ref: count
//   extent_csum: start end length [csums:["HEX",...] with csum_items]
//   file_extent: generation ram_bytes compression encryption other_encoding
//                extent_type; inline: inline_size; else disk_bytenr
//                disk_num_bytes offset num_bytes
//   block_group: used chunk_objectid flags flags_names
//   free_space_info: extent_count flags    free_space_extent/bitmap: (no fields)
//   free_space_header: location:KEY generation entries bitmaps
//   chunk: length owner stripe_len type type_names io_align io_width
//          sector_size num_stripes sub_stripes stripes:[{devid, offset, dev_uuid}]
//   dev_item: devid total_bytes bytes_used io_align io_width sector_size type
//             generation start_offset dev_group seek_speed bandwidth uuid fsid
//   dev_extent: chunk_tree chunk_objectid chunk_offset length chunk_tree_uuid
//   qgroup_status: version generation flags rescan [enable_gen]
//   qgroup_info: generation rfer rfer_cmpr excl excl_cmpr
//   qgroup_limit: flags max_rfer max_excl rsv_rfer rsv_excl
//   qgroup_relation: (no fields)           uuid: subvol_ids:[N,...]
//   string: data                           dev_stats: values:[N,...]
//   balance: flags data:{...} meta:{...} sys:{...}
//   dev_replace: src_devid cursor_left cursor_right cont_reading_from_srcdev_mode
//                replace_state time_started time_stopped num_write_errors
//                num_uncorrectable_read_errors
//   verity_desc: size encryption           verity_merkle: (no fields)
//   raid_stripe: strides:[{devid, physical}]
//   unknown: (no fields)
// An item too small for its structure has "error":"..." instead of (or after)
// its fields.
#pragma once

#include "format.h"
#include "key.h"
#include "out.h"
#include "tree_block.h"

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace btk {

enum class PrintFormat { text, json };

// What the printers need to know about the filesystem and the options.
struct PrintContext {
    uint32_t nodesize = 16384;
    uint32_t sectorsize = 4096;
    uint16_t csum_type = format::CSUM_TYPE_CRC32;
    uint32_t csum_size = 4;  // bytes of one checksum; 0 when the type is unknown
    uint64_t incompat_flags = 0;
    uint64_t compat_ro_flags = 0;
    bool hide_names = false;    // --hide-names
    bool csum_headers = false;  // --csum-headers: checksum on the header line
    bool csum_items = false;    // --csum-items: every checksum of EXTENT_CSUM items
    PrintFormat format = PrintFormat::text;

    // Sizes, checksum type and features taken from a superblock.
    static PrintContext from_super(const format::super_block& sb);
};

// ---------------------------------------------------------------------------
// Whole blocks

// Prints one tree block (a leaf with all its items, or a node with all its
// pointers), without its children. `start` is the logical address the block
// was read from (progs prints it for nodes); 0 means the header's bytenr.
void print_tree_block(Out& out, const PrintContext& ctx, const TreeBlock& block,
                      uint64_t start = 0);

// Text form only: the block header lines ("leaf ..."/"node ...", flags line,
// fs uuid, chunk uuid).
void print_block_header(Out& out, const PrintContext& ctx, const TreeBlock& block,
                        uint64_t start = 0);

// ---------------------------------------------------------------------------
// Pieces, text form (btrfs-progs compatible)

// "key (OBJECTID TYPE OFFSET)".
void print_key(Out& out, const Key& key);
// An object id as progs names it for a key of type `type` ("FS_TREE",
// "DEV_ITEMS", "0/5", "0x..." ...); type 0 gives tree names ("owner" fields).
void print_objectid(Out& out, uint64_t objectid, uint8_t type);
// A key type name ("INODE_ITEM", "UNKNOWN.231", "UNTYPED").
void print_key_type(Out& out, uint64_t objectid, uint8_t type);
// The lines progs prints under "item N key (...) itemoff X itemsize Y".
void print_item_body(Out& out, const PrintContext& ctx, const Key& key,
                     std::span<const uint8_t> data);
// The lines of one chunk item (also used for the superblock's sys_chunk_array).
void print_chunk_item(Out& out, std::span<const uint8_t> data);
// "FS_TREE", "EXTENT_TREE", "256" ...: the name progs prints for a tree id.
void print_tree_name(Out& out, uint64_t objectid);

// Lower-case canonical UUID text (36 characters) into `buf`.
void format_uuid(const uint8_t uuid[16], char buf[36]);

// ---------------------------------------------------------------------------
// Pieces, JSON form

// One item object (ITEM in the schema above) for `slot` of a leaf.
void print_item_json(Out& out, const PrintContext& ctx, const TreeBlock& leaf, uint32_t slot);
// The item's typed fields, each written as `,"name":value` (so the caller
// writes the object's braces and first field).
void print_item_fields_json(Out& out, const PrintContext& ctx, const Key& key,
                            std::span<const uint8_t> data);
// A JSON string literal of `bytes` (see the schema for non-UTF-8 bytes).
void print_json_string(Out& out, std::string_view bytes);

// Unchecked writers behind the printers above, for the hot paths: each
// writes at most the stated number of bytes at p and returns the new end.
namespace print_detail {
constexpr size_t kObjectidTextMax = 48;
constexpr size_t kKeyTypeTextMax = 32;
constexpr size_t kKeyTextMax = 5 + kObjectidTextMax + 1 + kKeyTypeTextMax + 48;
char* objectid_text(char* p, uint64_t objectid, uint8_t type);
char* key_type_text(char* p, uint64_t objectid, uint8_t type);
char* key_text(char* p, const Key& key);
}  // namespace print_detail

}  // namespace btk
