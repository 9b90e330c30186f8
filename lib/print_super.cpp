// `btk inspect dump-super`: prints superblock copies as text identical to
// `btrfs inspect-internal dump-super` of btrfs-progs 6.2, or as JSON.
//
// JSON output (--format json)
// ===========================
// The whole output is one JSON array with one object per superblock copy
// printed, in the order the copies are read (devices in command-line order;
// with --all, mirrors 0, 1, 2 of a device). A copy that is absent because
// the device is too small is left out (text prints nothing for it either);
// a copy with a bad magic is left out unless --force is given (an error is
// reported on stderr and dumping stops, as in text mode). The array is
// always closed, so the output is valid JSON even after an error.
//
// Each object has these members, in this order. All integers are JSON
// numbers (u64 values are written in full; some parsers lose precision
// above 2^53). UUIDs are lowercase "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
// A flag set is an object {"value": N, "names": [...], "unknown": N}: the
// names of the set bits btk knows, in bit order, and the remaining bits.
//
//   "device"            string  path as given
//   "sb_bytenr"         number  byte offset the copy was read from
//   "csum_type"         number
//   "csum_type_name"    string  "crc32c" | "xxhash64" | "sha256" | "blake2",
//                               null for an unknown type
//   "csum_size"         number  4, 8 or 32 (32 for an unknown type)
//   "csum"              string  stored checksum, csum_size bytes as hex
//   "csum_match"        bool    stored checksum is right; null if unknown type
//   "bytenr"            number  the superblock's own bytenr field
//   "flags"             flags   names: WRITTEN RELOC ERROR SEEDING METADUMP
//                               METADUMP_V2 CHANGING_FSID CHANGING_FSID_V2
//                               CHANGING_BG_TREE CHANGING_DATA_CSUM
//                               CHANGING_META_CSUM
//   "magic"             string  the 8 magic bytes, non-printable ones as "."
//   "magic_match"       bool
//   "fsid"              uuid
//   "metadata_uuid"     uuid    the metadata_uuid field with the
//                               METADATA_UUID incompat flag, else fsid
//   "label"             string  bytes up to the first NUL (at most 256);
//                               bytes that are not UTF-8 appear as \u00XX
//   "generation", "root", "sys_array_size", "chunk_root_generation",
//   "root_level", "chunk_root", "chunk_root_level", "log_root",
//   "log_root_transid", "log_root_level", "total_bytes", "bytes_used",
//   "sectorsize", "nodesize", "leafsize", "stripesize", "root_dir",
//   "num_devices"       number
//   "compat_flags"      flags   (no names)
//   "compat_ro_flags"   flags   names: FREE_SPACE_TREE FREE_SPACE_TREE_VALID
//                               VERITY BLOCK_GROUP_TREE
//   "incompat_flags"    flags   names: MIXED_BACKREF DEFAULT_SUBVOL
//                               MIXED_GROUPS COMPRESS_LZO COMPRESS_ZSTD
//                               BIG_METADATA EXTENDED_IREF RAID56
//                               SKINNY_METADATA NO_HOLES METADATA_UUID
//                               RAID1C34 ZONED EXTENT_TREE_V2
//                               RAID_STRIPE_TREE SIMPLE_QUOTA REMAP_TREE
//   "cache_generation", "uuid_tree_generation", "nr_global_roots",
//   "block_group_root", "block_group_root_generation",
//   "block_group_root_level"   number
//   "dev_item"          object  {"uuid": uuid, "fsid": uuid,
//                               "fsid_match": bool (against metadata_uuid),
//                               "type", "total_bytes", "bytes_used",
//                               "io_align", "io_width", "sector_size",
//                               "devid", "dev_group", "seek_speed",
//                               "bandwidth", "generation", "start_offset":
//                               number}
// Only with --full:
//   "sys_chunk_array"   array   one object per item, in array order:
//                               {"key": {"objectid", "type", "offset"},
//                                "chunk": chunk object, or null when the
//                                item could not be read as a chunk}
//                               chunk: {"length", "owner", "stripe_len",
//                                "type": flags (names DATA SYSTEM METADATA
//                                RAID0 RAID1 DUP RAID10 RAID5 RAID6 RAID1C3
//                                RAID1C4), "io_align", "io_width",
//                                "sector_size", "num_stripes", "sub_stripes",
//                                "stripes": [{"devid", "offset",
//                                "dev_uuid": uuid}]}
//   "sys_chunk_array_error"  string or null: why reading the array stopped
//                               early (same text as the text-mode error)
//   "backup_roots"      array   one object per non-empty slot (a slot is
//                               empty when tree_root and its generation are
//                               both 0): {"slot": 0..3,
//                                "tree_root", "chunk_root", "extent_root",
//                                "fs_root", "dev_root", "csum_root":
//                                  {"bytenr", "generation", "level"},
//                                "total_bytes", "bytes_used", "num_devices"}
//                               With EXTENT_TREE_V2, "extent_root" holds the
//                               block group root (text: backup_block_group_root).
#include "print_super.h"

#include "csum.h"
#include "inspect.h"
#include "out.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace btk {

namespace {

using format::super_block;

// ---------------------------------------------------------------------------
// Flag tables

struct FlagName {
    uint64_t bit;
    std::string_view name;
};

// What progs 6.2 prints, in its order, and the bits it treats as known.
constexpr FlagName kProgsSuperFlags[] = {
    {format::SUPER_FLAG_WRITTEN, "WRITTEN"},
    {format::HEADER_FLAG_RELOC, "RELOC"},
    {format::SUPER_FLAG_CHANGING_FSID, "CHANGING_FSID"},
    {format::SUPER_FLAG_SEEDING, "SEEDING"},
    {format::SUPER_FLAG_METADUMP, "METADUMP"},
    {format::SUPER_FLAG_METADUMP_V2, "METADUMP_V2"},
};
constexpr uint64_t kProgsSuperKnown =
    format::SUPER_FLAG_WRITTEN | format::HEADER_FLAG_RELOC | format::SUPER_FLAG_CHANGING_FSID |
    format::SUPER_FLAG_SEEDING | format::SUPER_FLAG_METADUMP | format::SUPER_FLAG_METADUMP_V2;

constexpr FlagName kProgsCompatRoFlags[] = {
    {format::FEATURE_COMPAT_RO_FREE_SPACE_TREE, "FREE_SPACE_TREE"},
    {format::FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID, "FREE_SPACE_TREE_VALID"},
    {format::FEATURE_COMPAT_RO_BLOCK_GROUP_TREE, "BLOCK_GROUP_TREE"},
};
// VERITY counts as known but has no name in progs 6.2.
constexpr uint64_t kProgsCompatRoKnown =
    format::FEATURE_COMPAT_RO_FREE_SPACE_TREE | format::FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID |
    format::FEATURE_COMPAT_RO_VERITY | format::FEATURE_COMPAT_RO_BLOCK_GROUP_TREE;

constexpr FlagName kProgsIncompatFlags[] = {
    {format::FEATURE_INCOMPAT_MIXED_BACKREF, "MIXED_BACKREF"},
    {format::FEATURE_INCOMPAT_DEFAULT_SUBVOL, "DEFAULT_SUBVOL"},
    {format::FEATURE_INCOMPAT_MIXED_GROUPS, "MIXED_GROUPS"},
    {format::FEATURE_INCOMPAT_COMPRESS_LZO, "COMPRESS_LZO"},
    {format::FEATURE_INCOMPAT_COMPRESS_ZSTD, "COMPRESS_ZSTD"},
    {format::FEATURE_INCOMPAT_BIG_METADATA, "BIG_METADATA"},
    {format::FEATURE_INCOMPAT_EXTENDED_IREF, "EXTENDED_IREF"},
    {format::FEATURE_INCOMPAT_RAID56, "RAID56"},
    {format::FEATURE_INCOMPAT_SKINNY_METADATA, "SKINNY_METADATA"},
    {format::FEATURE_INCOMPAT_NO_HOLES, "NO_HOLES"},
    {format::FEATURE_INCOMPAT_METADATA_UUID, "METADATA_UUID"},
    {format::FEATURE_INCOMPAT_RAID1C34, "RAID1C34"},
    {format::FEATURE_INCOMPAT_ZONED, "ZONED"},
    {format::FEATURE_INCOMPAT_EXTENT_TREE_V2, "EXTENT_TREE_V2"},
};
// EXTENT_TREE_V2 has a name but is not "known"; see flags_block().
constexpr uint64_t kProgsIncompatKnown = (format::FEATURE_INCOMPAT_ZONED << 1) - 1;

// btk's own (fuller) lists, used for JSON.
constexpr FlagName kSuperFlagNames[] = {
    {format::SUPER_FLAG_WRITTEN, "WRITTEN"},
    {format::HEADER_FLAG_RELOC, "RELOC"},
    {format::SUPER_FLAG_ERROR, "ERROR"},
    {format::SUPER_FLAG_SEEDING, "SEEDING"},
    {format::SUPER_FLAG_METADUMP, "METADUMP"},
    {format::SUPER_FLAG_METADUMP_V2, "METADUMP_V2"},
    {format::SUPER_FLAG_CHANGING_FSID, "CHANGING_FSID"},
    {format::SUPER_FLAG_CHANGING_FSID_V2, "CHANGING_FSID_V2"},
    {format::SUPER_FLAG_CHANGING_BG_TREE, "CHANGING_BG_TREE"},
    {format::SUPER_FLAG_CHANGING_DATA_CSUM, "CHANGING_DATA_CSUM"},
    {format::SUPER_FLAG_CHANGING_META_CSUM, "CHANGING_META_CSUM"},
};
constexpr FlagName kCompatRoFlagNames[] = {
    {format::FEATURE_COMPAT_RO_FREE_SPACE_TREE, "FREE_SPACE_TREE"},
    {format::FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID, "FREE_SPACE_TREE_VALID"},
    {format::FEATURE_COMPAT_RO_VERITY, "VERITY"},
    {format::FEATURE_COMPAT_RO_BLOCK_GROUP_TREE, "BLOCK_GROUP_TREE"},
};
constexpr FlagName kIncompatFlagNames[] = {
    {format::FEATURE_INCOMPAT_MIXED_BACKREF, "MIXED_BACKREF"},
    {format::FEATURE_INCOMPAT_DEFAULT_SUBVOL, "DEFAULT_SUBVOL"},
    {format::FEATURE_INCOMPAT_MIXED_GROUPS, "MIXED_GROUPS"},
    {format::FEATURE_INCOMPAT_COMPRESS_LZO, "COMPRESS_LZO"},
    {format::FEATURE_INCOMPAT_COMPRESS_ZSTD, "COMPRESS_ZSTD"},
    {format::FEATURE_INCOMPAT_BIG_METADATA, "BIG_METADATA"},
    {format::FEATURE_INCOMPAT_EXTENDED_IREF, "EXTENDED_IREF"},
    {format::FEATURE_INCOMPAT_RAID56, "RAID56"},
    {format::FEATURE_INCOMPAT_SKINNY_METADATA, "SKINNY_METADATA"},
    {format::FEATURE_INCOMPAT_NO_HOLES, "NO_HOLES"},
    {format::FEATURE_INCOMPAT_METADATA_UUID, "METADATA_UUID"},
    {format::FEATURE_INCOMPAT_RAID1C34, "RAID1C34"},
    {format::FEATURE_INCOMPAT_ZONED, "ZONED"},
    {format::FEATURE_INCOMPAT_EXTENT_TREE_V2, "EXTENT_TREE_V2"},
    {format::FEATURE_INCOMPAT_RAID_STRIPE_TREE, "RAID_STRIPE_TREE"},
    {format::FEATURE_INCOMPAT_SIMPLE_QUOTA, "SIMPLE_QUOTA"},
    {format::FEATURE_INCOMPAT_REMAP_TREE, "REMAP_TREE"},
};
constexpr FlagName kChunkTypeNames[] = {
    {format::BLOCK_GROUP_DATA, "DATA"},
    {format::BLOCK_GROUP_SYSTEM, "SYSTEM"},
    {format::BLOCK_GROUP_METADATA, "METADATA"},
    {format::BLOCK_GROUP_RAID0, "RAID0"},
    {format::BLOCK_GROUP_RAID1, "RAID1"},
    {format::BLOCK_GROUP_DUP, "DUP"},
    {format::BLOCK_GROUP_RAID10, "RAID10"},
    {format::BLOCK_GROUP_RAID5, "RAID5"},
    {format::BLOCK_GROUP_RAID6, "RAID6"},
    {format::BLOCK_GROUP_RAID1C3, "RAID1C3"},
    {format::BLOCK_GROUP_RAID1C4, "RAID1C4"},
};

// The block under a flags line. Progs lists the names of the set bits, then
// the bits outside `known` as one hex number. A named bit that is not known
// (EXTENT_TREE_V2) is only listed when some name came before it.
std::string flags_block(uint64_t flags, std::span<const FlagName> table, uint64_t known) {
    std::string s;
    if (flags == 0) return s;
    s = "\t\t\t( ";
    bool first = true;
    for (const auto& e : table) {
        if (!(flags & e.bit)) continue;
        if (first) {
            if (!(known & e.bit)) continue;
            s += e.name;
            s += ' ';
            first = false;
        } else {
            s += "|\n\t\t\t  ";
            s += e.name;
            s += ' ';
        }
    }
    const uint64_t unknown = flags & ~known;
    if (unknown) {
        s += first ? "" : "|\n\t\t\t  ";
        s += fmt::format("unknown flag: 0x{:x} ", unknown);
    }
    s += ")\n";
    return s;
}

std::vector<std::string_view> names_of(uint64_t flags, std::span<const FlagName> table) {
    std::vector<std::string_view> v;
    for (const auto& e : table)
        if (flags & e.bit) v.push_back(e.name);
    return v;
}

uint64_t unnamed_of(uint64_t flags, std::span<const FlagName> table) {
    for (const auto& e : table) flags &= ~e.bit;
    return flags;
}

// ---------------------------------------------------------------------------
// Small formatters

std::string uuid_text(const uint8_t* u) {
    return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
                       "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                       u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                       u[12], u[13], u[14], u[15]);
}

// isprint() of the C locale, which progs runs in.
constexpr bool printable(uint8_t c) { return c >= 0x20 && c < 0x7f; }

std::string magic_text(const super_block& sb) {
    std::string s(8, '.');
    for (int i = 0; i < 8; ++i) {
        uint8_t c = sb.magic.bytes[i];
        if (printable(c)) s[i] = char(c);
    }
    return s;
}

std::string_view label_bytes(const super_block& sb) {
    size_t n = 0;
    while (n < format::LABEL_SIZE && sb.label[n] != '\0') ++n;
    return {sb.label, n};
}

const uint8_t* effective_metadata_uuid(const super_block& sb) {
    return (sb.incompat_flags.get() & format::FEATURE_INCOMPAT_METADATA_UUID) ? sb.metadata_uuid
                                                                              : sb.fsid;
}

// Names of tree object ids as progs prints them in keys.
const char* objectid_name(uint64_t id) {
    switch (id) {
    case format::ROOT_TREE_OBJECTID: return "ROOT_TREE";
    case format::EXTENT_TREE_OBJECTID: return "EXTENT_TREE";
    case format::CHUNK_TREE_OBJECTID: return "CHUNK_TREE";
    case format::DEV_TREE_OBJECTID: return "DEV_TREE";
    case format::FS_TREE_OBJECTID: return "FS_TREE";
    case format::ROOT_TREE_DIR_OBJECTID: return "ROOT_TREE_DIR";
    case format::CSUM_TREE_OBJECTID: return "CSUM_TREE";
    case format::QUOTA_TREE_OBJECTID: return "QUOTA_TREE";
    case format::UUID_TREE_OBJECTID: return "UUID_TREE";
    case format::FREE_SPACE_TREE_OBJECTID: return "FREE_SPACE_TREE";
    case format::BLOCK_GROUP_TREE_OBJECTID: return "BLOCK_GROUP_TREE";
    case format::BALANCE_OBJECTID: return "BALANCE";
    case format::ORPHAN_OBJECTID: return "ORPHAN";
    case format::TREE_LOG_OBJECTID: return "TREE_LOG";
    case format::TREE_LOG_FIXUP_OBJECTID: return "LOG_FIXUP";
    case format::TREE_RELOC_OBJECTID: return "TREE_RELOC";
    case format::DATA_RELOC_TREE_OBJECTID: return "DATA_RELOC_TREE";
    case format::EXTENT_CSUM_OBJECTID: return "EXTENT_CSUM";
    case format::FREE_SPACE_OBJECTID: return "FREE_SPACE";
    case format::FREE_INO_OBJECTID: return "FREE_INO";
    case format::MULTIPLE_OBJECTIDS: return "MULTIPLE";
    default: return nullptr;
    }
}

const char* key_type_name(uint8_t type) {
    switch (type) {
    case format::INODE_ITEM_KEY: return "INODE_ITEM";
    case format::INODE_REF_KEY: return "INODE_REF";
    case format::INODE_EXTREF_KEY: return "INODE_EXTREF";
    case format::XATTR_ITEM_KEY: return "XATTR_ITEM";
    case format::VERITY_DESC_ITEM_KEY: return "VERITY_DESC_ITEM";
    case format::VERITY_MERKLE_ITEM_KEY: return "VERITY_MERKLE_ITEM";
    case format::ORPHAN_ITEM_KEY: return "ORPHAN_ITEM";
    case format::DIR_LOG_ITEM_KEY: return "DIR_LOG_ITEM";
    case format::DIR_LOG_INDEX_KEY: return "DIR_LOG_INDEX";
    case format::DIR_ITEM_KEY: return "DIR_ITEM";
    case format::DIR_INDEX_KEY: return "DIR_INDEX";
    case format::EXTENT_DATA_KEY: return "EXTENT_DATA";
    case format::CSUM_ITEM_KEY: return "CSUM_ITEM";
    case format::EXTENT_CSUM_KEY: return "EXTENT_CSUM";
    case format::ROOT_ITEM_KEY: return "ROOT_ITEM";
    case format::ROOT_BACKREF_KEY: return "ROOT_BACKREF";
    case format::ROOT_REF_KEY: return "ROOT_REF";
    case format::EXTENT_ITEM_KEY: return "EXTENT_ITEM";
    case format::METADATA_ITEM_KEY: return "METADATA_ITEM";
    case format::TREE_BLOCK_REF_KEY: return "TREE_BLOCK_REF";
    case format::EXTENT_DATA_REF_KEY: return "EXTENT_DATA_REF";
    case format::EXTENT_REF_V0_KEY: return "EXTENT_REF_V0";
    case format::SHARED_BLOCK_REF_KEY: return "SHARED_BLOCK_REF";
    case format::SHARED_DATA_REF_KEY: return "SHARED_DATA_REF";
    case format::BLOCK_GROUP_ITEM_KEY: return "BLOCK_GROUP_ITEM";
    case format::FREE_SPACE_INFO_KEY: return "FREE_SPACE_INFO";
    case format::FREE_SPACE_EXTENT_KEY: return "FREE_SPACE_EXTENT";
    case format::FREE_SPACE_BITMAP_KEY: return "FREE_SPACE_BITMAP";
    case format::DEV_EXTENT_KEY: return "DEV_EXTENT";
    case format::DEV_ITEM_KEY: return "DEV_ITEM";
    case format::CHUNK_ITEM_KEY: return "CHUNK_ITEM";
    case format::QGROUP_STATUS_KEY: return "QGROUP_STATUS";
    case format::QGROUP_INFO_KEY: return "QGROUP_INFO";
    case format::QGROUP_LIMIT_KEY: return "QGROUP_LIMIT";
    case format::QGROUP_RELATION_KEY: return "QGROUP_RELATION";
    case format::TEMPORARY_ITEM_KEY: return "TEMPORARY_ITEM";
    case format::PERSISTENT_ITEM_KEY: return "PERSISTENT_ITEM";
    case format::DEV_REPLACE_KEY: return "DEV_REPLACE";
    case format::UUID_KEY_SUBVOL: return "UUID_KEY_SUBVOL";
    case format::UUID_KEY_RECEIVED_SUBVOL: return "UUID_KEY_RECEIVED_SUBVOL";
    case format::STRING_ITEM_KEY: return "STRING_ITEM";
    default: return nullptr;
    }
}

std::string qgroup_text(uint64_t id) {
    return fmt::format("{}/{}", id >> format::QGROUP_LEVEL_SHIFT,
                       id & ((uint64_t(1) << format::QGROUP_LEVEL_SHIFT) - 1));
}

// An object id in a key of the given type.
std::string objectid_text(uint64_t id, uint8_t type) {
    switch (type) {
    case format::DEV_EXTENT_KEY: return fmt::format("{}", id);
    case format::QGROUP_RELATION_KEY: return qgroup_text(id);
    case format::UUID_KEY_SUBVOL:
    case format::UUID_KEY_RECEIVED_SUBVOL: return fmt::format("0x{:016x}", id);
    case format::PERSISTENT_ITEM_KEY:
        return id == format::DEV_STATS_OBJECTID ? std::string("DEV_STATS") : fmt::format("{}", id);
    default: break;
    }
    if (id == format::ROOT_TREE_OBJECTID && type == format::DEV_ITEM_KEY) return "DEV_ITEMS";
    if (id == format::FIRST_CHUNK_TREE_OBJECTID && type == format::CHUNK_ITEM_KEY)
        return "FIRST_CHUNK_TREE";
    if (id == uint64_t(-1)) return "-1";
    if (const char* n = objectid_name(id)) return n;
    return fmt::format("{}", id);
}

std::string key_text(uint64_t objectid, uint8_t type, uint64_t offset) {
    std::string s = "key (";
    s += objectid_text(objectid, type);
    s += ' ';
    if (type == 0 && objectid == format::FREE_SPACE_OBJECTID)
        s += "UNTYPED";
    else if (const char* n = key_type_name(type))
        s += n;
    else
        s += fmt::format("UNKNOWN.{}", type);
    s += ' ';
    switch (type) {
    case format::QGROUP_INFO_KEY:
    case format::QGROUP_LIMIT_KEY:
    case format::QGROUP_RELATION_KEY: s += qgroup_text(offset); break;
    case format::UUID_KEY_SUBVOL:
    case format::UUID_KEY_RECEIVED_SUBVOL: s += fmt::format("0x{:016x}", offset); break;
    case format::ROOT_ITEM_KEY:
        if (objectid == format::TREE_RELOC_OBJECTID)
            s += objectid_text(offset, type);
        else
            s += fmt::format("{}", offset);
        break;
    default:
        if (offset == uint64_t(-1))
            s += "-1";
        else
            s += fmt::format("{}", offset);
        break;
    }
    s += ')';
    return s;
}

// Chunk type as progs 6.2 prints it, quirks included: "|" is only put
// between type names after DATA; the profile always gets a leading "|", and
// a chunk without a profile bit is "single".
std::string chunk_type_text(uint64_t flags) {
    std::string s;
    bool empty = true;
    if (flags & format::BLOCK_GROUP_DATA) {
        s = "DATA";
        empty = false;
    }
    if (flags & format::BLOCK_GROUP_METADATA) {
        if (!empty) s += '|';
        s += "METADATA";
    }
    if (flags & format::BLOCK_GROUP_SYSTEM) {
        if (!empty) s += '|';
        s += "SYSTEM";
    }
    const char* profile = "single";
    if (flags & format::BLOCK_GROUP_RAID10)
        profile = "RAID10";
    else if (flags & format::BLOCK_GROUP_RAID1)
        profile = "RAID1";
    else if (flags & format::BLOCK_GROUP_RAID1C3)
        profile = "RAID1C3";
    else if (flags & format::BLOCK_GROUP_RAID1C4)
        profile = "RAID1C4";
    else if (flags & format::BLOCK_GROUP_DUP)
        profile = "DUP";
    else if (flags & format::BLOCK_GROUP_RAID0)
        profile = "RAID0";
    else if (flags & format::BLOCK_GROUP_RAID5)
        profile = "RAID5";
    else if (flags & format::BLOCK_GROUP_RAID6)
        profile = "RAID6";
    s += '|';
    s += profile;
    return s;
}

// ---------------------------------------------------------------------------
// sys_chunk_array walk, shared by text and JSON.

struct SysItem {
    uint64_t objectid;
    uint8_t type;
    uint64_t offset;
    bool has_chunk = false;
    uint32_t chunk_off = 0;  // offset of the chunk in sys_chunk_array
    uint16_t num_stripes = 0;
};

struct SysArray {
    std::vector<SysItem> items;
    std::string error;  // empty when the whole array was read
};

SysArray walk_sys_array(const super_block& sb) {
    SysArray r;
    const uint32_t size = sb.sys_chunk_array_size.get();
    if (size > format::SYSTEM_CHUNK_ARRAY_SIZE) {
        r.error = fmt::format("sys_array_size {} shouldn't exceed {} bytes", size,
                              format::SYSTEM_CHUNK_ARRAY_SIZE);
        return r;
    }
    const uint8_t* a = sb.sys_chunk_array;
    uint32_t cur = 0;
    auto too_short = [&](uint64_t len) {
        r.error = fmt::format("sys_array too short to read {} bytes at offset {}", len, cur);
    };
    while (cur < size) {
        uint64_t len = sizeof(format::disk_key);
        if (cur + len > size) {
            too_short(len);
            break;
        }
        const auto* k = reinterpret_cast<const format::disk_key*>(a + cur);
        r.items.push_back(SysItem{k->objectid.get(), k->type, k->offset.get()});
        cur += uint32_t(len);
        if (k->type != format::CHUNK_ITEM_KEY) {
            r.error = fmt::format("unexpected item type {} in sys_array at offset {}",
                                  unsigned(k->type), cur);
            break;
        }
        len = format::chunk_item_size(1);
        if (cur + len > size) {
            too_short(len);
            break;
        }
        const auto* c = reinterpret_cast<const format::chunk*>(a + cur);
        const uint16_t ns = c->num_stripes.get();
        if (ns == 0) {
            r.error = fmt::format("invalid number of stripes {} in sys_array at offset {}", ns, cur);
            break;
        }
        len = format::chunk_item_size(ns);
        if (cur + len > size) {
            too_short(len);
            break;
        }
        r.items.back().has_chunk = true;
        r.items.back().chunk_off = cur;
        r.items.back().num_stripes = ns;
        cur += uint32_t(len);
    }
    return r;
}

const format::chunk& chunk_at(const super_block& sb, const SysItem& it) {
    return *reinterpret_cast<const format::chunk*>(sb.sys_chunk_array + it.chunk_off);
}
const format::stripe& stripe_at(const super_block& sb, const SysItem& it, uint32_t i) {
    return *reinterpret_cast<const format::stripe*>(sb.sys_chunk_array + it.chunk_off +
                                                    offsetof(format::chunk, stripe) +
                                                    i * sizeof(format::stripe));
}

bool backup_empty(const format::root_backup& b) {
    return b.tree_root.get() == 0 && b.tree_root_gen.get() == 0;
}

bool extent_tree_v2(const super_block& sb) {
    return sb.incompat_flags.get() & format::FEATURE_INCOMPAT_EXTENT_TREE_V2;
}

// ---------------------------------------------------------------------------
// Text

void print_sys_array_text(Out& out, const super_block& sb, std::FILE* err) {
    const SysArray arr = walk_sys_array(sb);
    int n = 0;
    for (const auto& it : arr.items) {
        out.print("\titem {} {}\n", n++, key_text(it.objectid, it.type, it.offset));
        if (!it.has_chunk) continue;
        const auto& c = chunk_at(sb, it);
        out.print("\t\tlength {} owner {} stripe_len {} type {}\n", c.length.get(), c.owner.get(),
                  c.stripe_len.get(), chunk_type_text(c.type.get()));
        out.print("\t\tio_align {} io_width {} sector_size {}\n", c.io_align.get(),
                  c.io_width.get(), c.sector_size.get());
        out.print("\t\tnum_stripes {} sub_stripes {}\n", it.num_stripes, c.sub_stripes.get());
        for (uint32_t i = 0; i < it.num_stripes; ++i) {
            const auto& s = stripe_at(sb, it, i);
            out.print("\t\t\tstripe {} devid {} offset {}\n", i, s.devid.get(), s.offset.get());
            out.print("\t\t\tdev_uuid {}\n", uuid_text(s.dev_uuid));
        }
    }
    if (!arr.error.empty() && err) {
        out.flush();
        std::fprintf(err, "ERROR: %s\n", arr.error.c_str());
    }
}

void print_backup_roots_text(Out& out, const super_block& sb) {
    const char* extent_name = extent_tree_v2(sb) ? "backup_block_group_root" : "backup_extent_root";
    for (int i = 0; i < format::NUM_BACKUP_ROOTS; ++i) {
        const auto& b = sb.super_roots[i];
        if (backup_empty(b)) continue;
        out.print("\tbackup {}:\n", i);
        out.print("\t\tbackup_tree_root:\t{}\tgen: {}\tlevel: {}\n", b.tree_root.get(),
                  b.tree_root_gen.get(), b.tree_root_level);
        out.print("\t\tbackup_chunk_root:\t{}\tgen: {}\tlevel: {}\n", b.chunk_root.get(),
                  b.chunk_root_gen.get(), b.chunk_root_level);
        out.print("\t\t{}:\t{}\tgen: {}\tlevel: {}\n", extent_name, b.extent_root.get(),
                  b.extent_root_gen.get(), b.extent_root_level);
        out.print("\t\tbackup_fs_root:\t\t{}\tgen: {}\tlevel: {}\n", b.fs_root.get(),
                  b.fs_root_gen.get(), b.fs_root_level);
        out.print("\t\tbackup_dev_root:\t{}\tgen: {}\tlevel: {}\n", b.dev_root.get(),
                  b.dev_root_gen.get(), b.dev_root_level);
        // progs 6.2 prints this one without the "backup_" prefix.
        out.print("\t\tcsum_root:\t{}\tgen: {}\tlevel: {}\n", b.csum_root.get(),
                  b.csum_root_gen.get(), b.csum_root_level);
        out.print("\t\tbackup_total_bytes:\t{}\n", b.total_bytes.get());
        out.print("\t\tbackup_bytes_used:\t{}\n", b.bytes_used.get());
        out.print("\t\tbackup_num_devices:\t{}\n", b.num_devices.get());
        out.put('\n');
    }
}

std::string csum_hex(const super_block& sb) {
    const uint32_t n = super_csum_print_size(sb.csum_type.get());
    std::string s;
    s.reserve(2 * n);
    for (uint32_t i = 0; i < n; ++i) s += fmt::format("{:02x}", sb.csum[i]);
    return s;
}

// ---------------------------------------------------------------------------
// JSON

void json_quote_to(std::string& d, std::string_view s) {
    auto hex = [&](unsigned c) { d += fmt::format("\\u{:04x}", c); };
    d += '"';
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const uint8_t c = p[i];
        if (c < 0x80) {
            switch (c) {
            case '"': d += "\\\""; break;
            case '\\': d += "\\\\"; break;
            case '\n': d += "\\n"; break;
            case '\t': d += "\\t"; break;
            case '\r': d += "\\r"; break;
            case '\b': d += "\\b"; break;
            case '\f': d += "\\f"; break;
            default:
                if (c < 0x20 || c == 0x7f)
                    hex(c);
                else
                    d += char(c);
            }
            ++i;
            continue;
        }
        // A well-formed UTF-8 sequence is copied; anything else is escaped
        // byte by byte.
        size_t len = 0;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        }
        bool ok = len != 0 && n - i >= len;
        for (size_t j = 1; ok && j < len; ++j) {
            const uint8_t cc = p[i + j];
            const uint8_t l = j == 1 ? lo : 0x80, h = j == 1 ? hi : 0xbf;
            if (cc < l || cc > h) ok = false;
        }
        if (ok) {
            d.append(s.data() + i, len);
            i += len;
        } else {
            hex(c);
            ++i;
        }
    }
    d += '"';
}

// Pretty JSON writer: two spaces per level, one member per line; small
// arrays of strings stay on one line.
class Json {
public:
    Json(std::string& d, int indent) : d_(d), base_(indent) {}

    void begin_object(std::string_view key = {}) { open(key, '{'); }
    void end_object() { close('}'); }
    void begin_array(std::string_view key = {}) { open(key, '['); }
    void end_array() { close(']'); }

    void num(std::string_view key, uint64_t v) { member(key) += fmt::format("{}", v); }
    void boolean(std::string_view key, bool v) { member(key) += v ? "true" : "false"; }
    void null(std::string_view key) { member(key) += "null"; }
    void str(std::string_view key, std::string_view v) { json_quote_to(member(key), v); }
    void flags(std::string_view key, uint64_t value, const std::vector<std::string_view>& names,
               uint64_t unknown) {
        begin_object(key);
        num("value", value);
        std::string& d = member("names");
        d += '[';
        for (size_t i = 0; i < names.size(); ++i) {
            if (i) d += ", ";
            json_quote_to(d, names[i]);
        }
        d += ']';
        num("unknown", unknown);
        end_object();
    }

private:
    std::string& member(std::string_view key) {
        if (!first_.empty()) {
            if (!first_.back()) d_ += ',';
            first_.back() = false;
            d_ += '\n';
        }
        d_.append(size_t(base_ + 2 * int(first_.size())), ' ');
        if (!key.empty()) {
            json_quote_to(d_, key);
            d_ += ": ";
        }
        return d_;
    }
    void open(std::string_view key, char c) {
        member(key) += c;
        first_.push_back(true);
    }
    void close(char c) {
        const bool empty = first_.back();
        first_.pop_back();
        if (!empty) {
            d_ += '\n';
            d_.append(size_t(base_ + 2 * int(first_.size())), ' ');
        }
        d_ += c;
    }

    std::string& d_;
    int base_;
    std::vector<bool> first_;
};

void json_sys_array(Json& j, const super_block& sb) {
    const SysArray arr = walk_sys_array(sb);
    j.begin_array("sys_chunk_array");
    for (const auto& it : arr.items) {
        j.begin_object();
        j.begin_object("key");
        j.num("objectid", it.objectid);
        j.num("type", it.type);
        j.num("offset", it.offset);
        j.end_object();
        if (!it.has_chunk) {
            j.null("chunk");
            j.end_object();
            continue;
        }
        const auto& c = chunk_at(sb, it);
        j.begin_object("chunk");
        j.num("length", c.length.get());
        j.num("owner", c.owner.get());
        j.num("stripe_len", c.stripe_len.get());
        j.flags("type", c.type.get(), names_of(c.type.get(), kChunkTypeNames),
                unnamed_of(c.type.get(), kChunkTypeNames));
        j.num("io_align", c.io_align.get());
        j.num("io_width", c.io_width.get());
        j.num("sector_size", c.sector_size.get());
        j.num("num_stripes", it.num_stripes);
        j.num("sub_stripes", c.sub_stripes.get());
        j.begin_array("stripes");
        for (uint32_t i = 0; i < it.num_stripes; ++i) {
            const auto& s = stripe_at(sb, it, i);
            j.begin_object();
            j.num("devid", s.devid.get());
            j.num("offset", s.offset.get());
            j.str("dev_uuid", uuid_text(s.dev_uuid));
            j.end_object();
        }
        j.end_array();
        j.end_object();
        j.end_object();
    }
    j.end_array();
    if (arr.error.empty())
        j.null("sys_chunk_array_error");
    else
        j.str("sys_chunk_array_error", arr.error);
}

void json_root(Json& j, std::string_view key, uint64_t bytenr, uint64_t gen, uint8_t level) {
    j.begin_object(key);
    j.num("bytenr", bytenr);
    j.num("generation", gen);
    j.num("level", level);
    j.end_object();
}

void json_backup_roots(Json& j, const super_block& sb) {
    j.begin_array("backup_roots");
    for (int i = 0; i < format::NUM_BACKUP_ROOTS; ++i) {
        const auto& b = sb.super_roots[i];
        if (backup_empty(b)) continue;
        j.begin_object();
        j.num("slot", uint64_t(i));
        json_root(j, "tree_root", b.tree_root.get(), b.tree_root_gen.get(), b.tree_root_level);
        json_root(j, "chunk_root", b.chunk_root.get(), b.chunk_root_gen.get(), b.chunk_root_level);
        json_root(j, "extent_root", b.extent_root.get(), b.extent_root_gen.get(),
                  b.extent_root_level);
        json_root(j, "fs_root", b.fs_root.get(), b.fs_root_gen.get(), b.fs_root_level);
        json_root(j, "dev_root", b.dev_root.get(), b.dev_root_gen.get(), b.dev_root_level);
        json_root(j, "csum_root", b.csum_root.get(), b.csum_root_gen.get(), b.csum_root_level);
        j.num("total_bytes", b.total_bytes.get());
        j.num("bytes_used", b.bytes_used.get());
        j.num("num_devices", b.num_devices.get());
        j.end_object();
    }
    j.end_array();
}

// ---------------------------------------------------------------------------
// Reading

enum class ReadResult { ok, absent, error };

// Reads the 4096 bytes at `off`. Like progs, a read that returns nothing at
// all (the device ends before `off`) means the copy is absent; a partial
// read is an error.
ReadResult read_copy(int fd, uint64_t off, super_block& sb, std::string& why) {
    auto* buf = reinterpret_cast<uint8_t*>(&sb);
    std::memset(buf, 0, sizeof(sb));
    if (off > uint64_t(INT64_MAX) - sizeof(sb)) {
        why = std::strerror(EINVAL);
        return ReadResult::error;
    }
    size_t got = 0;
    while (got < sizeof(sb)) {
        const ssize_t n = ::pread(fd, buf + got, sizeof(sb) - got, off_t(off + got));
        if (n < 0) {
            if (errno == EINTR) continue;
            why = std::strerror(errno);
            return ReadResult::error;
        }
        if (n == 0) break;
        got += size_t(n);
    }
    if (got == 0) return ReadResult::absent;
    if (got < sizeof(sb)) {
        why = fmt::format("short read ({} of {} bytes)", got, sizeof(sb));
        return ReadResult::error;
    }
    return ReadResult::ok;
}

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace

// ---------------------------------------------------------------------------
// Public helpers

std::string super_flags_string(uint64_t flags) {
    return flags_block(flags, kProgsSuperFlags, kProgsSuperKnown);
}
std::string compat_ro_flags_string(uint64_t flags) {
    return flags_block(flags, kProgsCompatRoFlags, kProgsCompatRoKnown);
}
std::string incompat_flags_string(uint64_t flags) {
    return flags_block(flags, kProgsIncompatFlags, kProgsIncompatKnown);
}

std::vector<std::string_view> super_flag_names(uint64_t flags) {
    return names_of(flags, kSuperFlagNames);
}
std::vector<std::string_view> compat_ro_flag_names(uint64_t flags) {
    return names_of(flags, kCompatRoFlagNames);
}
std::vector<std::string_view> incompat_flag_names(uint64_t flags) {
    return names_of(flags, kIncompatFlagNames);
}
uint64_t super_flags_unnamed(uint64_t flags) { return unnamed_of(flags, kSuperFlagNames); }
uint64_t compat_ro_flags_unnamed(uint64_t flags) { return unnamed_of(flags, kCompatRoFlagNames); }
uint64_t incompat_flags_unnamed(uint64_t flags) { return unnamed_of(flags, kIncompatFlagNames); }

const char* super_csum_type_name(uint16_t csum_type) noexcept {
    switch (csum_type) {
    case format::CSUM_TYPE_CRC32: return "crc32c";
    case format::CSUM_TYPE_XXHASH: return "xxhash64";
    case format::CSUM_TYPE_SHA256: return "sha256";
    case format::CSUM_TYPE_BLAKE2: return "blake2";
    default: return nullptr;
    }
}

uint32_t super_csum_print_size(uint16_t csum_type) noexcept {
    switch (csum_type) {
    case format::CSUM_TYPE_CRC32: return 4;
    case format::CSUM_TYPE_XXHASH: return 8;
    case format::CSUM_TYPE_SHA256:
    case format::CSUM_TYPE_BLAKE2: return 32;
    default: return format::CSUM_SIZE;
    }
}

bool super_csum_matches(const format::super_block& sb) noexcept {
    const uint16_t type = sb.csum_type.get();
    if (!super_csum_type_name(type)) return false;
    const auto* raw = reinterpret_cast<const uint8_t*>(&sb);
    uint8_t sum[format::CSUM_SIZE];
    csum_compute(type,
                 std::span<const uint8_t>(raw + format::CSUM_SIZE, sizeof(sb) - format::CSUM_SIZE),
                 sum);
    return std::memcmp(sum, sb.csum, super_csum_print_size(type)) == 0;
}

void print_super_text(Out& out, const format::super_block& sb, bool full, std::FILE* err) {
    const uint16_t ctype = sb.csum_type.get();
    const char* cname = super_csum_type_name(ctype);
    out.print("csum_type\t\t{} ({})\n", ctype, cname ? cname : "INVALID");
    out.print("csum_size\t\t{}\n", super_csum_print_size(ctype));
    const char* verdict = !cname                    ? "UNKNOWN CSUM TYPE OR SIZE"
                          : super_csum_matches(sb) ? "match"
                                                   : "DON'T MATCH";
    out.print("csum\t\t\t0x{} [{}]\n", csum_hex(sb), verdict);
    out.print("bytenr\t\t\t{}\n", sb.bytenr.get());
    out.print("flags\t\t\t0x{:x}\n", sb.flags.get());
    out.write(super_flags_string(sb.flags.get()));
    out.print("magic\t\t\t{} [{}]\n", magic_text(sb),
              sb.magic.get() == format::SUPER_MAGIC ? "match" : "DON'T MATCH");
    out.print("fsid\t\t\t{}\n", uuid_text(sb.fsid));
    const uint8_t* meta = effective_metadata_uuid(sb);
    out.print("metadata_uuid\t\t{}\n", uuid_text(meta));
    out.write("label\t\t\t");
    for (char ch : label_bytes(sb)) out.put(printable(uint8_t(ch)) ? ch : '.');
    out.put('\n');
    out.print("generation\t\t{}\n", sb.generation.get());
    out.print("root\t\t\t{}\n", sb.root.get());
    out.print("sys_array_size\t\t{}\n", sb.sys_chunk_array_size.get());
    out.print("chunk_root_generation\t{}\n", sb.chunk_root_generation.get());
    out.print("root_level\t\t{}\n", sb.root_level);
    out.print("chunk_root\t\t{}\n", sb.chunk_root.get());
    out.print("chunk_root_level\t{}\n", sb.chunk_root_level);
    out.print("log_root\t\t{}\n", sb.log_root.get());
    out.print("log_root_transid (deprecated)\t{}\n", sb.log_root_transid.get());
    out.print("log_root_level\t\t{}\n", sb.log_root_level);
    out.print("total_bytes\t\t{}\n", sb.total_bytes.get());
    out.print("bytes_used\t\t{}\n", sb.bytes_used.get());
    out.print("sectorsize\t\t{}\n", sb.sectorsize.get());
    out.print("nodesize\t\t{}\n", sb.nodesize.get());
    out.print("leafsize (deprecated)\t{}\n", sb.leafsize.get());
    out.print("stripesize\t\t{}\n", sb.stripesize.get());
    out.print("root_dir\t\t{}\n", sb.root_dir_objectid.get());
    out.print("num_devices\t\t{}\n", sb.num_devices.get());
    out.print("compat_flags\t\t0x{:x}\n", sb.compat_flags.get());
    out.print("compat_ro_flags\t\t0x{:x}\n", sb.compat_ro_flags.get());
    out.write(compat_ro_flags_string(sb.compat_ro_flags.get()));
    out.print("incompat_flags\t\t0x{:x}\n", sb.incompat_flags.get());
    out.write(incompat_flags_string(sb.incompat_flags.get()));
    out.print("cache_generation\t{}\n", sb.cache_generation.get());
    out.print("uuid_tree_generation\t{}\n", sb.uuid_tree_generation.get());
    const auto& dev = sb.dev_item;
    out.print("dev_item.uuid\t\t{}\n", uuid_text(dev.uuid));
    out.print("dev_item.fsid\t\t{} [{}]\n", uuid_text(dev.fsid),
              std::memcmp(dev.fsid, meta, format::FSID_SIZE) == 0 ? "match" : "DON'T MATCH");
    out.print("dev_item.type\t\t{}\n", dev.type.get());
    out.print("dev_item.total_bytes\t{}\n", dev.total_bytes.get());
    out.print("dev_item.bytes_used\t{}\n", dev.bytes_used.get());
    out.print("dev_item.io_align\t{}\n", dev.io_align.get());
    out.print("dev_item.io_width\t{}\n", dev.io_width.get());
    out.print("dev_item.sector_size\t{}\n", dev.sector_size.get());
    out.print("dev_item.devid\t\t{}\n", dev.devid.get());
    out.print("dev_item.dev_group\t{}\n", dev.dev_group.get());
    out.print("dev_item.seek_speed\t{}\n", dev.seek_speed);
    out.print("dev_item.bandwidth\t{}\n", dev.bandwidth);
    out.print("dev_item.generation\t{}\n", dev.generation.get());
    if (full) {
        out.print("sys_chunk_array[{}]:\n", format::SYSTEM_CHUNK_ARRAY_SIZE);
        print_sys_array_text(out, sb, err);
        out.print("backup_roots[{}]:\n", format::NUM_BACKUP_ROOTS);
        print_backup_roots_text(out, sb);
    }
}

void print_super_json(Out& out, const format::super_block& sb, bool full,
                      std::string_view device, uint64_t sb_bytenr, int indent) {
    std::string d;
    Json j(d, indent);
    j.begin_object();
    j.str("device", device);
    j.num("sb_bytenr", sb_bytenr);
    const uint16_t ctype = sb.csum_type.get();
    const char* cname = super_csum_type_name(ctype);
    j.num("csum_type", ctype);
    if (cname)
        j.str("csum_type_name", cname);
    else
        j.null("csum_type_name");
    j.num("csum_size", super_csum_print_size(ctype));
    j.str("csum", csum_hex(sb));
    if (cname)
        j.boolean("csum_match", super_csum_matches(sb));
    else
        j.null("csum_match");
    j.num("bytenr", sb.bytenr.get());
    const uint64_t fl = sb.flags.get();
    j.flags("flags", fl, super_flag_names(fl), super_flags_unnamed(fl));
    j.str("magic", magic_text(sb));
    j.boolean("magic_match", sb.magic.get() == format::SUPER_MAGIC);
    j.str("fsid", uuid_text(sb.fsid));
    const uint8_t* meta = effective_metadata_uuid(sb);
    j.str("metadata_uuid", uuid_text(meta));
    j.str("label", label_bytes(sb));
    j.num("generation", sb.generation.get());
    j.num("root", sb.root.get());
    j.num("sys_array_size", sb.sys_chunk_array_size.get());
    j.num("chunk_root_generation", sb.chunk_root_generation.get());
    j.num("root_level", sb.root_level);
    j.num("chunk_root", sb.chunk_root.get());
    j.num("chunk_root_level", sb.chunk_root_level);
    j.num("log_root", sb.log_root.get());
    j.num("log_root_transid", sb.log_root_transid.get());
    j.num("log_root_level", sb.log_root_level);
    j.num("total_bytes", sb.total_bytes.get());
    j.num("bytes_used", sb.bytes_used.get());
    j.num("sectorsize", sb.sectorsize.get());
    j.num("nodesize", sb.nodesize.get());
    j.num("leafsize", sb.leafsize.get());
    j.num("stripesize", sb.stripesize.get());
    j.num("root_dir", sb.root_dir_objectid.get());
    j.num("num_devices", sb.num_devices.get());
    const uint64_t compat = sb.compat_flags.get();
    j.flags("compat_flags", compat, {}, compat);
    const uint64_t ro = sb.compat_ro_flags.get();
    j.flags("compat_ro_flags", ro, compat_ro_flag_names(ro), compat_ro_flags_unnamed(ro));
    const uint64_t inc = sb.incompat_flags.get();
    j.flags("incompat_flags", inc, incompat_flag_names(inc), incompat_flags_unnamed(inc));
    j.num("cache_generation", sb.cache_generation.get());
    j.num("uuid_tree_generation", sb.uuid_tree_generation.get());
    j.num("nr_global_roots", sb.nr_global_roots.get());
    j.num("block_group_root", sb.block_group_root.get());
    j.num("block_group_root_generation", sb.block_group_root_generation.get());
    j.num("block_group_root_level", sb.block_group_root_level);
    const auto& dev = sb.dev_item;
    j.begin_object("dev_item");
    j.str("uuid", uuid_text(dev.uuid));
    j.str("fsid", uuid_text(dev.fsid));
    j.boolean("fsid_match", std::memcmp(dev.fsid, meta, format::FSID_SIZE) == 0);
    j.num("type", dev.type.get());
    j.num("total_bytes", dev.total_bytes.get());
    j.num("bytes_used", dev.bytes_used.get());
    j.num("io_align", dev.io_align.get());
    j.num("io_width", dev.io_width.get());
    j.num("sector_size", dev.sector_size.get());
    j.num("devid", dev.devid.get());
    j.num("dev_group", dev.dev_group.get());
    j.num("seek_speed", dev.seek_speed);
    j.num("bandwidth", dev.bandwidth);
    j.num("generation", dev.generation.get());
    j.num("start_offset", dev.start_offset.get());
    j.end_object();
    if (full) {
        json_sys_array(j, sb);
        json_backup_roots(j, sb);
    }
    j.end_object();
    out.write(d);
}

// ---------------------------------------------------------------------------
// The command

int dump_super(const DumpSuperOptions& opts, std::FILE* out_file, std::FILE* err) {
    Out out(out_file);
    const bool json = opts.format == OutputFormat::json;
    auto error = [&](const std::string& msg) {
        out.flush();
        if (out_file) std::fflush(out_file);
        if (err) std::fprintf(err, "ERROR: %s\n", msg.c_str());
    };

    if (opts.devices.empty()) {
        error("no device given");
        return 1;
    }
    // Which copies: --all wins; else --bytenr; else -s N (N >= 3 is taken
    // as a byte offset, as progs does with a warning).
    std::vector<uint64_t> offsets;
    if (opts.all) {
        for (int m = 0; m < format::SUPER_MIRROR_MAX; ++m) offsets.push_back(format::super_offset(m));
    } else if (opts.bytenr) {
        offsets.push_back(*opts.bytenr);
    } else if (opts.mirror >= 0 && opts.mirror < format::SUPER_MIRROR_MAX) {
        offsets.push_back(format::super_offset(opts.mirror));
    } else if (opts.mirror >= format::SUPER_MIRROR_MAX) {
        if (err)
            std::fprintf(err, "WARNING: deprecated use of -s <bytenr> with %d, assuming --bytenr\n",
                         opts.mirror);
        offsets.push_back(uint64_t(opts.mirror));
    } else {
        error(fmt::format("invalid superblock mirror {}", opts.mirror));
        return 1;
    }

    int rc = 0;
    bool first_json = true;
    if (json) out.write("[");
    auto sb = std::make_unique<super_block>();
    for (const auto& path : opts.devices) {
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0) {
            error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
            rc = 1;
            break;
        }
        for (uint64_t off : offsets) {
            std::string why;
            const ReadResult r = read_copy(fd.get(), off, *sb, why);
            if (r == ReadResult::error) {
                error(fmt::format("failed to read the superblock on {} at {}: {}", path, off, why));
                rc = 1;
                break;
            }
            if (r == ReadResult::ok) {
                const bool magic_ok = sb->magic.get() == format::SUPER_MAGIC;
                if (!json) {
                    out.print("superblock: bytenr={}, device={}\n", off, path);
                    out.write("---------------------------------------------------------\n");
                }
                if (!magic_ok && !opts.force) {
                    error(fmt::format(
                        "bad magic on superblock on {} at {} (use --force to dump it anyway)",
                        path, off));
                    rc = 1;
                    break;
                }
                if (json) {
                    out.write(first_json ? "\n" : ",\n");
                    first_json = false;
                    print_super_json(out, *sb, opts.full, path, off, 2);
                } else {
                    print_super_text(out, *sb, opts.full, err);
                }
            }
            // progs ends every copy it handled, absent ones included, with
            // an empty line.
            if (!json) out.put('\n');
        }
        if (rc) break;
    }
    if (json) out.write(first_json ? "]\n" : "\n]\n");
    out.flush();
    return rc;
}

}  // namespace btk
