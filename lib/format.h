// btrfs on-disk format: constants and structure declarations.
//
// Every structure is made of little-endian field types (le_types.h), has
// alignment 1 and no padding, and its size and field offsets are checked by
// static_assert against the format (linux/btrfs_tree.h and the btrfs
// documentation). Names follow the format's own names, so grep finds them.
#pragma once

#include "le_types.h"

#include <cstddef>
#include <cstdint>

namespace btk::format {

// ---------------------------------------------------------------------------
// Sizes and magic numbers
inline constexpr uint64_t SUPER_MAGIC = 0x4D5F53665248425FULL;  // "_BHRfS_M"
inline constexpr uint32_t SUPER_INFO_OFFSET = 65536;
inline constexpr uint32_t SUPER_INFO_SIZE = 4096;
inline constexpr int SUPER_MIRROR_MAX = 3;
inline constexpr int SUPER_MIRROR_SHIFT = 12;
inline constexpr uint32_t CSUM_SIZE = 32;
inline constexpr uint32_t FSID_SIZE = 16;
inline constexpr uint32_t UUID_SIZE = 16;
inline constexpr uint32_t LABEL_SIZE = 256;
inline constexpr uint32_t SYSTEM_CHUNK_ARRAY_SIZE = 2048;
inline constexpr int NUM_BACKUP_ROOTS = 4;
inline constexpr uint32_t MAX_LEVEL = 8;
inline constexpr uint32_t NAME_LEN = 255;
inline constexpr uint32_t MAX_METADATA_BLOCKSIZE = 65536;
inline constexpr uint64_t STRIPE_LEN = 65536;
inline constexpr uint32_t MAX_COMPRESSED = 128 * 1024;
inline constexpr uint32_t MAX_UNCOMPRESSED = 128 * 1024;
inline constexpr uint32_t MAX_XATTR_SIZE_NONE = 0;  // computed from nodesize

// Byte offset of superblock copy `mirror` (0, 1, 2): 64 KiB, 64 MiB, 256 GiB.
constexpr uint64_t super_offset(int mirror) {
    return mirror == 0 ? SUPER_INFO_OFFSET : (16ULL * 1024) << (SUPER_MIRROR_SHIFT * mirror);
}
static_assert(super_offset(1) == 64ULL << 20 && super_offset(2) == 256ULL << 30);

// ---------------------------------------------------------------------------
// Tree object ids
inline constexpr uint64_t ROOT_TREE_OBJECTID = 1;
inline constexpr uint64_t EXTENT_TREE_OBJECTID = 2;
inline constexpr uint64_t CHUNK_TREE_OBJECTID = 3;
inline constexpr uint64_t DEV_TREE_OBJECTID = 4;
inline constexpr uint64_t FS_TREE_OBJECTID = 5;
inline constexpr uint64_t ROOT_TREE_DIR_OBJECTID = 6;
inline constexpr uint64_t CSUM_TREE_OBJECTID = 7;
inline constexpr uint64_t QUOTA_TREE_OBJECTID = 8;
inline constexpr uint64_t UUID_TREE_OBJECTID = 9;
inline constexpr uint64_t FREE_SPACE_TREE_OBJECTID = 10;
inline constexpr uint64_t BLOCK_GROUP_TREE_OBJECTID = 11;
inline constexpr uint64_t RAID_STRIPE_TREE_OBJECTID = 12;
inline constexpr uint64_t REMAP_TREE_OBJECTID = 13;
inline constexpr uint64_t DEV_STATS_OBJECTID = 0;
inline constexpr uint64_t BALANCE_OBJECTID = uint64_t(-4);
inline constexpr uint64_t ORPHAN_OBJECTID = uint64_t(-5);
inline constexpr uint64_t TREE_LOG_OBJECTID = uint64_t(-6);
inline constexpr uint64_t TREE_LOG_FIXUP_OBJECTID = uint64_t(-7);
inline constexpr uint64_t TREE_RELOC_OBJECTID = uint64_t(-8);
inline constexpr uint64_t DATA_RELOC_TREE_OBJECTID = uint64_t(-9);
inline constexpr uint64_t EXTENT_CSUM_OBJECTID = uint64_t(-10);
inline constexpr uint64_t FREE_SPACE_OBJECTID = uint64_t(-11);
inline constexpr uint64_t FREE_INO_OBJECTID = uint64_t(-12);
inline constexpr uint64_t MULTIPLE_OBJECTIDS = uint64_t(-255);
inline constexpr uint64_t FIRST_FREE_OBJECTID = 256;
inline constexpr uint64_t LAST_FREE_OBJECTID = uint64_t(-256);
inline constexpr uint64_t FIRST_CHUNK_TREE_OBJECTID = 256;
inline constexpr uint64_t DEV_ITEMS_OBJECTID = 1;
inline constexpr uint64_t BTREE_INODE_OBJECTID = 1;
inline constexpr uint64_t EMPTY_SUBVOL_DIR_OBJECTID = 2;
inline constexpr uint64_t DEV_REPLACE_DEVID = 0;

// ---------------------------------------------------------------------------
// Key types
inline constexpr uint8_t INODE_ITEM_KEY = 1;
inline constexpr uint8_t INODE_REF_KEY = 12;
inline constexpr uint8_t INODE_EXTREF_KEY = 13;
inline constexpr uint8_t XATTR_ITEM_KEY = 24;
inline constexpr uint8_t VERITY_DESC_ITEM_KEY = 36;
inline constexpr uint8_t VERITY_MERKLE_ITEM_KEY = 37;
inline constexpr uint8_t ORPHAN_ITEM_KEY = 48;
inline constexpr uint8_t DIR_LOG_ITEM_KEY = 60;
inline constexpr uint8_t DIR_LOG_INDEX_KEY = 72;
inline constexpr uint8_t DIR_ITEM_KEY = 84;
inline constexpr uint8_t DIR_INDEX_KEY = 96;
inline constexpr uint8_t EXTENT_DATA_KEY = 108;
inline constexpr uint8_t CSUM_ITEM_KEY = 120;  // obsolete
inline constexpr uint8_t EXTENT_CSUM_KEY = 128;
inline constexpr uint8_t ROOT_ITEM_KEY = 132;
inline constexpr uint8_t ROOT_BACKREF_KEY = 144;
inline constexpr uint8_t ROOT_REF_KEY = 156;
inline constexpr uint8_t EXTENT_ITEM_KEY = 168;
inline constexpr uint8_t METADATA_ITEM_KEY = 169;
inline constexpr uint8_t EXTENT_OWNER_REF_KEY = 172;
inline constexpr uint8_t TREE_BLOCK_REF_KEY = 176;
inline constexpr uint8_t EXTENT_DATA_REF_KEY = 178;
inline constexpr uint8_t EXTENT_REF_V0_KEY = 180;
inline constexpr uint8_t SHARED_BLOCK_REF_KEY = 182;
inline constexpr uint8_t SHARED_DATA_REF_KEY = 184;
inline constexpr uint8_t BLOCK_GROUP_ITEM_KEY = 192;
inline constexpr uint8_t FREE_SPACE_INFO_KEY = 198;
inline constexpr uint8_t FREE_SPACE_EXTENT_KEY = 199;
inline constexpr uint8_t FREE_SPACE_BITMAP_KEY = 200;
inline constexpr uint8_t DEV_EXTENT_KEY = 204;
inline constexpr uint8_t DEV_ITEM_KEY = 216;
inline constexpr uint8_t CHUNK_ITEM_KEY = 228;
inline constexpr uint8_t RAID_STRIPE_KEY = 230;
inline constexpr uint8_t IDENTITY_REMAP_KEY = 234;
inline constexpr uint8_t REMAP_KEY = 235;
inline constexpr uint8_t REMAP_BACKREF_KEY = 236;
inline constexpr uint8_t QGROUP_STATUS_KEY = 240;
inline constexpr uint8_t QGROUP_INFO_KEY = 242;
inline constexpr uint8_t QGROUP_LIMIT_KEY = 244;
inline constexpr uint8_t QGROUP_RELATION_KEY = 246;
inline constexpr uint8_t BALANCE_ITEM_KEY = 248;    // a.k.a. TEMPORARY_ITEM_KEY
inline constexpr uint8_t TEMPORARY_ITEM_KEY = 248;
inline constexpr uint8_t DEV_STATS_KEY = 249;       // a.k.a. PERSISTENT_ITEM_KEY
inline constexpr uint8_t PERSISTENT_ITEM_KEY = 249;
inline constexpr uint8_t DEV_REPLACE_KEY = 250;
inline constexpr uint8_t UUID_KEY_SUBVOL = 251;
inline constexpr uint8_t UUID_KEY_RECEIVED_SUBVOL = 252;
inline constexpr uint8_t STRING_ITEM_KEY = 253;

// ---------------------------------------------------------------------------
// Checksum types
inline constexpr uint16_t CSUM_TYPE_CRC32 = 0;
inline constexpr uint16_t CSUM_TYPE_XXHASH = 1;
inline constexpr uint16_t CSUM_TYPE_SHA256 = 2;
inline constexpr uint16_t CSUM_TYPE_BLAKE2 = 3;

// Directory entry types
inline constexpr uint8_t FT_UNKNOWN = 0;
inline constexpr uint8_t FT_REG_FILE = 1;
inline constexpr uint8_t FT_DIR = 2;
inline constexpr uint8_t FT_CHRDEV = 3;
inline constexpr uint8_t FT_BLKDEV = 4;
inline constexpr uint8_t FT_FIFO = 5;
inline constexpr uint8_t FT_SOCK = 6;
inline constexpr uint8_t FT_SYMLINK = 7;
inline constexpr uint8_t FT_XATTR = 8;
inline constexpr uint8_t FT_MAX = 9;
inline constexpr uint8_t FT_ENCRYPTED = 0x80;  // flag bit in dir_item.type

// ---------------------------------------------------------------------------
// Feature flags
inline constexpr uint64_t FEATURE_COMPAT_RO_FREE_SPACE_TREE = 1ULL << 0;
inline constexpr uint64_t FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID = 1ULL << 1;
inline constexpr uint64_t FEATURE_COMPAT_RO_VERITY = 1ULL << 2;
inline constexpr uint64_t FEATURE_COMPAT_RO_BLOCK_GROUP_TREE = 1ULL << 3;

inline constexpr uint64_t FEATURE_INCOMPAT_MIXED_BACKREF = 1ULL << 0;
inline constexpr uint64_t FEATURE_INCOMPAT_DEFAULT_SUBVOL = 1ULL << 1;
inline constexpr uint64_t FEATURE_INCOMPAT_MIXED_GROUPS = 1ULL << 2;
inline constexpr uint64_t FEATURE_INCOMPAT_COMPRESS_LZO = 1ULL << 3;
inline constexpr uint64_t FEATURE_INCOMPAT_COMPRESS_ZSTD = 1ULL << 4;
inline constexpr uint64_t FEATURE_INCOMPAT_BIG_METADATA = 1ULL << 5;
inline constexpr uint64_t FEATURE_INCOMPAT_EXTENDED_IREF = 1ULL << 6;
inline constexpr uint64_t FEATURE_INCOMPAT_RAID56 = 1ULL << 7;
inline constexpr uint64_t FEATURE_INCOMPAT_SKINNY_METADATA = 1ULL << 8;
inline constexpr uint64_t FEATURE_INCOMPAT_NO_HOLES = 1ULL << 9;
inline constexpr uint64_t FEATURE_INCOMPAT_METADATA_UUID = 1ULL << 10;
inline constexpr uint64_t FEATURE_INCOMPAT_RAID1C34 = 1ULL << 11;
inline constexpr uint64_t FEATURE_INCOMPAT_ZONED = 1ULL << 12;
inline constexpr uint64_t FEATURE_INCOMPAT_EXTENT_TREE_V2 = 1ULL << 13;
inline constexpr uint64_t FEATURE_INCOMPAT_RAID_STRIPE_TREE = 1ULL << 14;
inline constexpr uint64_t FEATURE_INCOMPAT_SIMPLE_QUOTA = 1ULL << 16;
inline constexpr uint64_t FEATURE_INCOMPAT_REMAP_TREE = 1ULL << 17;

// Superblock flags
inline constexpr uint64_t SUPER_FLAG_WRITTEN = 1ULL << 0;  // header flag reused
inline constexpr uint64_t SUPER_FLAG_ERROR = 1ULL << 2;
inline constexpr uint64_t SUPER_FLAG_SEEDING = 1ULL << 32;
inline constexpr uint64_t SUPER_FLAG_METADUMP = 1ULL << 33;
inline constexpr uint64_t SUPER_FLAG_METADUMP_V2 = 1ULL << 34;
inline constexpr uint64_t SUPER_FLAG_CHANGING_FSID = 1ULL << 35;
inline constexpr uint64_t SUPER_FLAG_CHANGING_FSID_V2 = 1ULL << 36;
inline constexpr uint64_t SUPER_FLAG_CHANGING_BG_TREE = 1ULL << 38;
inline constexpr uint64_t SUPER_FLAG_CHANGING_DATA_CSUM = 1ULL << 39;
inline constexpr uint64_t SUPER_FLAG_CHANGING_META_CSUM = 1ULL << 40;

// Tree block header flags; the top byte holds the backref revision.
inline constexpr uint64_t HEADER_FLAG_WRITTEN = 1ULL << 0;
inline constexpr uint64_t HEADER_FLAG_RELOC = 1ULL << 1;
inline constexpr int BACKREF_REV_SHIFT = 56;
inline constexpr uint64_t HEADER_FLAG_MASK = 0xffULL << BACKREF_REV_SHIFT;
inline constexpr uint64_t OLD_BACKREF_REV = 0;
inline constexpr uint64_t MIXED_BACKREF_REV = 1;

// Extent item flags
inline constexpr uint64_t EXTENT_FLAG_DATA = 1ULL << 0;
inline constexpr uint64_t EXTENT_FLAG_TREE_BLOCK = 1ULL << 1;
inline constexpr uint64_t BLOCK_FLAG_FULL_BACKREF = 1ULL << 8;
inline constexpr uint64_t EXTENT_FLAG_SUPER = 1ULL << 48;

// Block group / chunk type flags
inline constexpr uint64_t BLOCK_GROUP_DATA = 1ULL << 0;
inline constexpr uint64_t BLOCK_GROUP_SYSTEM = 1ULL << 1;
inline constexpr uint64_t BLOCK_GROUP_METADATA = 1ULL << 2;
inline constexpr uint64_t BLOCK_GROUP_RAID0 = 1ULL << 3;
inline constexpr uint64_t BLOCK_GROUP_RAID1 = 1ULL << 4;
inline constexpr uint64_t BLOCK_GROUP_DUP = 1ULL << 5;
inline constexpr uint64_t BLOCK_GROUP_RAID10 = 1ULL << 6;
inline constexpr uint64_t BLOCK_GROUP_RAID5 = 1ULL << 7;
inline constexpr uint64_t BLOCK_GROUP_RAID6 = 1ULL << 8;
inline constexpr uint64_t BLOCK_GROUP_RAID1C3 = 1ULL << 9;
inline constexpr uint64_t BLOCK_GROUP_RAID1C4 = 1ULL << 10;
inline constexpr uint64_t BLOCK_GROUP_REMAPPED = 1ULL << 11;
inline constexpr uint64_t AVAIL_ALLOC_BIT_SINGLE = 1ULL << 48;
inline constexpr uint64_t SPACE_INFO_GLOBAL_RSV = 1ULL << 49;
inline constexpr uint64_t BLOCK_GROUP_TYPE_MASK =
    BLOCK_GROUP_DATA | BLOCK_GROUP_SYSTEM | BLOCK_GROUP_METADATA;
inline constexpr uint64_t BLOCK_GROUP_PROFILE_MASK =
    BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID1 | BLOCK_GROUP_DUP | BLOCK_GROUP_RAID10 |
    BLOCK_GROUP_RAID5 | BLOCK_GROUP_RAID6 | BLOCK_GROUP_RAID1C3 | BLOCK_GROUP_RAID1C4;
inline constexpr uint64_t BLOCK_GROUP_RAID56_MASK = BLOCK_GROUP_RAID5 | BLOCK_GROUP_RAID6;

// Free space tree
inline constexpr uint32_t FREE_SPACE_USING_BITMAPS = 1U << 0;
// v1 free space cache entry types
inline constexpr uint8_t FREE_SPACE_EXTENT = 1;
inline constexpr uint8_t FREE_SPACE_BITMAP = 2;

// File extent types and compression
inline constexpr uint8_t FILE_EXTENT_INLINE = 0;
inline constexpr uint8_t FILE_EXTENT_REG = 1;
inline constexpr uint8_t FILE_EXTENT_PREALLOC = 2;
inline constexpr uint8_t COMPRESS_NONE = 0;
inline constexpr uint8_t COMPRESS_ZLIB = 1;
inline constexpr uint8_t COMPRESS_LZO = 2;
inline constexpr uint8_t COMPRESS_ZSTD = 3;

// Inode flags
inline constexpr uint64_t INODE_NODATASUM = 1ULL << 0;
inline constexpr uint64_t INODE_NODATACOW = 1ULL << 1;
inline constexpr uint64_t INODE_READONLY = 1ULL << 2;
inline constexpr uint64_t INODE_NOCOMPRESS = 1ULL << 3;
inline constexpr uint64_t INODE_PREALLOC = 1ULL << 4;
inline constexpr uint64_t INODE_SYNC = 1ULL << 5;
inline constexpr uint64_t INODE_IMMUTABLE = 1ULL << 6;
inline constexpr uint64_t INODE_APPEND = 1ULL << 7;
inline constexpr uint64_t INODE_NODUMP = 1ULL << 8;
inline constexpr uint64_t INODE_NOATIME = 1ULL << 9;
inline constexpr uint64_t INODE_DIRSYNC = 1ULL << 10;
inline constexpr uint64_t INODE_COMPRESS = 1ULL << 11;
inline constexpr uint64_t INODE_ROOT_ITEM_INIT = 1ULL << 31;
// Upper 32 bits of inode flags hold the read-only compat flags.
inline constexpr uint64_t INODE_RO_VERITY = 1ULL << 32;

// Root item flags
inline constexpr uint64_t ROOT_SUBVOL_RDONLY = 1ULL << 0;
inline constexpr uint64_t ROOT_SUBVOL_DEAD = 1ULL << 48;

// Qgroups
inline constexpr int QGROUP_LEVEL_SHIFT = 48;
inline constexpr uint64_t QGROUP_STATUS_FLAG_ON = 1ULL << 0;
inline constexpr uint64_t QGROUP_STATUS_FLAG_RESCAN = 1ULL << 1;
inline constexpr uint64_t QGROUP_STATUS_FLAG_INCONSISTENT = 1ULL << 2;
inline constexpr uint64_t QGROUP_STATUS_FLAG_SIMPLE_MODE = 1ULL << 3;
inline constexpr uint64_t QGROUP_STATUS_VERSION = 1;
inline constexpr uint64_t QGROUP_LIMIT_MAX_RFER = 1ULL << 0;
inline constexpr uint64_t QGROUP_LIMIT_MAX_EXCL = 1ULL << 1;
inline constexpr uint64_t QGROUP_LIMIT_RSV_RFER = 1ULL << 2;
inline constexpr uint64_t QGROUP_LIMIT_RSV_EXCL = 1ULL << 3;
inline constexpr uint64_t QGROUP_LIMIT_RFER_CMPR = 1ULL << 4;
inline constexpr uint64_t QGROUP_LIMIT_EXCL_CMPR = 1ULL << 5;

// Balance
inline constexpr uint64_t BALANCE_DATA = 1ULL << 0;
inline constexpr uint64_t BALANCE_SYSTEM = 1ULL << 1;
inline constexpr uint64_t BALANCE_METADATA = 1ULL << 2;

// Device stats
inline constexpr int DEV_STAT_WRITE_ERRS = 0;
inline constexpr int DEV_STAT_READ_ERRS = 1;
inline constexpr int DEV_STAT_FLUSH_ERRS = 2;
inline constexpr int DEV_STAT_CORRUPTION_ERRS = 3;
inline constexpr int DEV_STAT_GENERATION_ERRS = 4;
inline constexpr int DEV_STAT_VALUES_MAX = 5;

// Device replace
inline constexpr uint64_t DEV_REPLACE_ITEM_STATE_NEVER_STARTED = 0;
inline constexpr uint64_t DEV_REPLACE_ITEM_STATE_STARTED = 1;
inline constexpr uint64_t DEV_REPLACE_ITEM_STATE_SUSPENDED = 2;
inline constexpr uint64_t DEV_REPLACE_ITEM_STATE_FINISHED = 3;
inline constexpr uint64_t DEV_REPLACE_ITEM_STATE_CANCELED = 4;

// ---------------------------------------------------------------------------
// Structures

struct disk_key {
    le64 objectid;
    uint8_t type;
    le64 offset;
};
static_assert(sizeof(disk_key) == 17);
static_assert(offsetof(disk_key, type) == 8 && offsetof(disk_key, offset) == 9);

struct header {
    uint8_t csum[CSUM_SIZE];
    uint8_t fsid[FSID_SIZE];
    le64 bytenr;
    le64 flags;
    uint8_t chunk_tree_uuid[UUID_SIZE];
    le64 generation;
    le64 owner;
    le32 nritems;
    uint8_t level;
};
static_assert(sizeof(header) == 101);
static_assert(offsetof(header, fsid) == 32 && offsetof(header, bytenr) == 48);
static_assert(offsetof(header, flags) == 56 && offsetof(header, chunk_tree_uuid) == 64);
static_assert(offsetof(header, generation) == 80 && offsetof(header, owner) == 88);
static_assert(offsetof(header, nritems) == 96 && offsetof(header, level) == 100);

// Leaf item header; data offset is relative to the end of the block header.
struct item {
    disk_key key;
    le32 offset;
    le32 size;
};
static_assert(sizeof(item) == 25);

// Node pointer.
struct key_ptr {
    disk_key key;
    le64 blockptr;
    le64 generation;
};
static_assert(sizeof(key_ptr) == 33);

struct dev_item {
    le64 devid;
    le64 total_bytes;
    le64 bytes_used;
    le32 io_align;
    le32 io_width;
    le32 sector_size;
    le64 type;
    le64 generation;
    le64 start_offset;
    le32 dev_group;
    uint8_t seek_speed;
    uint8_t bandwidth;
    uint8_t uuid[UUID_SIZE];
    uint8_t fsid[FSID_SIZE];
};
static_assert(sizeof(dev_item) == 98);
static_assert(offsetof(dev_item, dev_group) == 60 && offsetof(dev_item, uuid) == 66);

struct stripe {
    le64 devid;
    le64 offset;
    uint8_t dev_uuid[UUID_SIZE];
};
static_assert(sizeof(stripe) == 32);

// A chunk item is followed by num_stripes - 1 further stripes.
struct chunk {
    le64 length;
    le64 owner;
    le64 stripe_len;
    le64 type;
    le32 io_align;
    le32 io_width;
    le32 sector_size;
    le16 num_stripes;
    le16 sub_stripes;
    struct stripe stripe;
};
static_assert(sizeof(chunk) == 80 && offsetof(chunk, stripe) == 48);
constexpr size_t chunk_item_size(uint32_t num_stripes) {
    return sizeof(chunk) + sizeof(stripe) * (num_stripes ? num_stripes - 1 : 0);
}

struct root_backup {
    le64 tree_root;
    le64 tree_root_gen;
    le64 chunk_root;
    le64 chunk_root_gen;
    le64 extent_root;
    le64 extent_root_gen;
    le64 fs_root;
    le64 fs_root_gen;
    le64 dev_root;
    le64 dev_root_gen;
    le64 csum_root;
    le64 csum_root_gen;
    le64 total_bytes;
    le64 bytes_used;
    le64 num_devices;
    le64 unused_64[4];
    uint8_t tree_root_level;
    uint8_t chunk_root_level;
    uint8_t extent_root_level;
    uint8_t fs_root_level;
    uint8_t dev_root_level;
    uint8_t csum_root_level;
    uint8_t unused_8[10];
};
static_assert(sizeof(root_backup) == 168);
static_assert(offsetof(root_backup, tree_root_level) == 152);

struct super_block {
    uint8_t csum[CSUM_SIZE];
    uint8_t fsid[FSID_SIZE];
    le64 bytenr;
    le64 flags;
    le64 magic;
    le64 generation;
    le64 root;
    le64 chunk_root;
    le64 log_root;
    le64 log_root_transid;  // unused since 5.x; kept for printing
    le64 total_bytes;
    le64 bytes_used;
    le64 root_dir_objectid;
    le64 num_devices;
    le32 sectorsize;
    le32 nodesize;
    le32 leafsize;  // unused, equals nodesize
    le32 stripesize;
    le32 sys_chunk_array_size;
    le64 chunk_root_generation;
    le64 compat_flags;
    le64 compat_ro_flags;
    le64 incompat_flags;
    le16 csum_type;
    uint8_t root_level;
    uint8_t chunk_root_level;
    uint8_t log_root_level;
    struct dev_item dev_item;
    char label[LABEL_SIZE];
    le64 cache_generation;
    le64 uuid_tree_generation;
    uint8_t metadata_uuid[FSID_SIZE];
    le64 nr_global_roots;
    le64 block_group_root;
    le64 block_group_root_generation;
    uint8_t block_group_root_level;
    uint8_t reserved8[7];
    le64 remap_root;
    le64 remap_root_generation;
    uint8_t remap_root_level;
    uint8_t reserved8b[7];
    le64 reserved[21];
    uint8_t sys_chunk_array[SYSTEM_CHUNK_ARRAY_SIZE];
    root_backup super_roots[NUM_BACKUP_ROOTS];
    uint8_t padding[565];
};
static_assert(sizeof(super_block) == 4096);
static_assert(offsetof(super_block, magic) == 64 && offsetof(super_block, generation) == 72);
static_assert(offsetof(super_block, sectorsize) == 144);
static_assert(offsetof(super_block, sys_chunk_array_size) == 160);
static_assert(offsetof(super_block, compat_flags) == 172);
static_assert(offsetof(super_block, csum_type) == 196);
static_assert(offsetof(super_block, dev_item) == 201);
static_assert(offsetof(super_block, label) == 299);
static_assert(offsetof(super_block, cache_generation) == 555);
static_assert(offsetof(super_block, metadata_uuid) == 571);
static_assert(offsetof(super_block, nr_global_roots) == 587);
static_assert(offsetof(super_block, block_group_root) == 595);
static_assert(offsetof(super_block, sys_chunk_array) == 811);
static_assert(offsetof(super_block, super_roots) == 2859);

struct free_space_entry {
    le64 offset;
    le64 bytes;
    uint8_t type;
};
static_assert(sizeof(free_space_entry) == 17);

struct free_space_header {
    disk_key location;
    le64 generation;
    le64 num_entries;
    le64 num_bitmaps;
};
static_assert(sizeof(free_space_header) == 41);

struct extent_item {
    le64 refs;
    le64 generation;
    le64 flags;
};
static_assert(sizeof(extent_item) == 24);

struct extent_item_v0 {
    le32 refs;
};
static_assert(sizeof(extent_item_v0) == 4);

struct tree_block_info {
    disk_key key;
    uint8_t level;
};
static_assert(sizeof(tree_block_info) == 18);

struct extent_data_ref {
    le64 root;
    le64 objectid;
    le64 offset;
    le32 count;
};
static_assert(sizeof(extent_data_ref) == 28);

struct shared_data_ref {
    le32 count;
};
static_assert(sizeof(shared_data_ref) == 4);

// Inline ref: type, then offset (or the start of an extent_data_ref, whose
// first field sits where offset is).
struct extent_inline_ref {
    uint8_t type;
    le64 offset;
};
static_assert(sizeof(extent_inline_ref) == 9);

struct extent_owner_ref {
    le64 root_id;
};
static_assert(sizeof(extent_owner_ref) == 8);

struct extent_ref_v0 {
    le64 root;
    le64 generation;
    le64 objectid;
    le32 count;
};
static_assert(sizeof(extent_ref_v0) == 28);

struct dev_extent {
    le64 chunk_tree;
    le64 chunk_objectid;
    le64 chunk_offset;
    le64 length;
    uint8_t chunk_tree_uuid[UUID_SIZE];
};
static_assert(sizeof(dev_extent) == 48);

struct inode_ref {
    le64 index;
    le16 name_len;
};
static_assert(sizeof(inode_ref) == 10);

struct inode_extref {
    le64 parent_objectid;
    le64 index;
    le16 name_len;
};
static_assert(sizeof(inode_extref) == 18);

struct timespec {
    le64 sec;
    le32 nsec;
};
static_assert(sizeof(timespec) == 12);

struct inode_item {
    le64 generation;
    le64 transid;
    le64 size;
    le64 nbytes;
    le64 block_group;
    le32 nlink;
    le32 uid;
    le32 gid;
    le32 mode;
    le64 rdev;
    le64 flags;
    le64 sequence;
    le64 reserved[4];
    struct timespec atime;
    struct timespec ctime;
    struct timespec mtime;
    struct timespec otime;
};
static_assert(sizeof(inode_item) == 160);
static_assert(offsetof(inode_item, mode) == 52 && offsetof(inode_item, atime) == 112);

struct dir_log_item {
    le64 end;
};
static_assert(sizeof(dir_log_item) == 8);

struct dir_item {
    disk_key location;
    le64 transid;
    le16 data_len;
    le16 name_len;
    uint8_t type;
};
static_assert(sizeof(dir_item) == 30);

struct root_item {
    struct inode_item inode;
    le64 generation;
    le64 root_dirid;
    le64 bytenr;
    le64 byte_limit;
    le64 bytes_used;
    le64 last_snapshot;
    le64 flags;
    le32 refs;
    disk_key drop_progress;
    uint8_t drop_level;
    uint8_t level;
    // Fields below exist only when the item is large enough (generation_v2).
    le64 generation_v2;
    uint8_t uuid[UUID_SIZE];
    uint8_t parent_uuid[UUID_SIZE];
    uint8_t received_uuid[UUID_SIZE];
    le64 ctransid;
    le64 otransid;
    le64 stransid;
    le64 rtransid;
    struct timespec ctime;
    struct timespec otime;
    struct timespec stime;
    struct timespec rtime;
    le64 reserved[8];
};
static_assert(sizeof(root_item) == 439);
static_assert(offsetof(root_item, generation_v2) == 239);
// Size of a root item written before generation_v2 existed.
inline constexpr size_t ROOT_ITEM_V1_SIZE = offsetof(root_item, generation_v2);

struct root_ref {
    le64 dirid;
    le64 sequence;
    le16 name_len;
};
static_assert(sizeof(root_ref) == 18);

struct disk_balance_args {
    le64 profiles;
    le64 usage;  // or usage_min (le32) / usage_max (le32)
    le64 devid;
    le64 pstart;
    le64 pend;
    le64 vstart;
    le64 vend;
    le64 target;
    le64 flags;
    le64 limit;  // or limit_min (le32) / limit_max (le32)
    le32 stripes_min;
    le32 stripes_max;
    le64 unused[6];
};
static_assert(sizeof(disk_balance_args) == 136);

struct balance_item {
    le64 flags;
    disk_balance_args data;
    disk_balance_args meta;
    disk_balance_args sys;
    le64 unused[4];
};
static_assert(sizeof(balance_item) == 448);

struct file_extent_item {
    le64 generation;
    le64 ram_bytes;
    uint8_t compression;
    uint8_t encryption;
    le16 other_encoding;
    uint8_t type;
    // Inline extents: data starts here.
    le64 disk_bytenr;
    le64 disk_num_bytes;
    le64 offset;
    le64 num_bytes;
};
static_assert(sizeof(file_extent_item) == 53);
inline constexpr size_t FILE_EXTENT_INLINE_DATA_START = offsetof(file_extent_item, disk_bytenr);
static_assert(FILE_EXTENT_INLINE_DATA_START == 21);

struct dev_stats_item {
    le64 values[DEV_STAT_VALUES_MAX];
};
static_assert(sizeof(dev_stats_item) == 40);

struct dev_replace_item {
    le64 src_devid;
    le64 cursor_left;
    le64 cursor_right;
    le64 cont_reading_from_srcdev_mode;
    le64 replace_state;
    le64 time_started;
    le64 time_stopped;
    le64 num_write_errors;
    le64 num_uncorrectable_read_errors;
};
static_assert(sizeof(dev_replace_item) == 72);

struct block_group_item {
    le64 used;
    le64 chunk_objectid;
    le64 flags;
};
static_assert(sizeof(block_group_item) == 24);

// Block group item with the remap tree (larger item).
struct block_group_item_v2 {
    le64 used;
    le64 chunk_objectid;
    le64 flags;
    le64 remap_bytes;
    le32 identity_remap_count;
};
static_assert(sizeof(block_group_item_v2) == 36);

struct free_space_info {
    le32 extent_count;
    le32 flags;
};
static_assert(sizeof(free_space_info) == 8);

struct qgroup_status_item {
    le64 version;
    le64 generation;
    le64 flags;
    le64 rescan;
    le64 enable_gen;  // present only with simple quotas
};
static_assert(sizeof(qgroup_status_item) == 40);
inline constexpr size_t QGROUP_STATUS_V1_SIZE = offsetof(qgroup_status_item, enable_gen);

struct qgroup_info_item {
    le64 generation;
    le64 rfer;
    le64 rfer_cmpr;
    le64 excl;
    le64 excl_cmpr;
};
static_assert(sizeof(qgroup_info_item) == 40);

struct qgroup_limit_item {
    le64 flags;
    le64 max_rfer;
    le64 max_excl;
    le64 rsv_rfer;
    le64 rsv_excl;
};
static_assert(sizeof(qgroup_limit_item) == 40);

struct verity_descriptor_item {
    le64 size;
    le64 reserved[2];
    uint8_t encryption;
};
static_assert(sizeof(verity_descriptor_item) == 25);

// Raid stripe tree: key (logical, RAID_STRIPE_KEY, length); item is an array.
struct raid_stride {
    le64 devid;
    le64 physical;
};
static_assert(sizeof(raid_stride) == 16);

struct remap {
    le64 address;
};
static_assert(sizeof(remap) == 8);

// Items of a v1 free space cache inode's data pages use free_space_entry.

// Size of the data area in a tree block (after the header).
constexpr uint32_t leaf_data_size(uint32_t nodesize) { return nodesize - sizeof(header); }
// Maximum number of pointers in a node.
constexpr uint32_t nodeptrs_per_block(uint32_t nodesize) {
    return leaf_data_size(nodesize) / sizeof(key_ptr);
}
// Largest inline file extent data for a given nodesize and sectorsize.
constexpr uint32_t max_inline_data_size(uint32_t nodesize) {
    return leaf_data_size(nodesize) - sizeof(item) - FILE_EXTENT_INLINE_DATA_START;
}

}  // namespace btk::format
