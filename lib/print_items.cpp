// Text printers for keys and leaf items, in the format of btrfs-progs 6.2
// dump-tree. Every structure is viewed through view_at() against the item's
// own bytes, so nothing is read past an item's end whatever the image says.
#include "print_tree.h"

#include "csum.h"

#include <algorithm>
#include <cstring>
#include <ctime>

namespace btk {

using namespace format;

namespace {

// Appending to the Out buffer directly: the printers run once per item of a
// whole-filesystem dump, so they avoid format-string parsing where it is easy.
class Text {
public:
    explicit Text(Out& out) : o_(out) {}
    template <size_t N>
    Text& s(const char (&literal)[N]) {
        o_.append(literal, N - 1);
        return *this;
    }
    Text& s(std::string_view v) {
        o_.append(v.data(), v.size());
        return *this;
    }
    Text& c(char ch) {
        o_.put(ch);
        return *this;
    }
    Text& u(uint64_t v) {
        o_.u64(v);
        return *this;
    }
    Text& i(int64_t v) {
        if (v < 0) {
            o_.put('-');
            o_.u64(uint64_t(0) - uint64_t(v));
        } else {
            o_.u64(uint64_t(v));
        }
        return *this;
    }
    Text& hex(uint64_t v) {
        o_.hex(v);
        return *this;
    }
    Text& bytes_hex(const uint8_t* p, size_t n) {
        static constexpr char digits[] = "0123456789abcdef";
        char* w = o_.reserve(2 * n);
        for (size_t k = 0; k < n; ++k) {
            *w++ = digits[p[k] >> 4];
            *w++ = digits[p[k] & 15];
        }
        o_.advance(w);
        return *this;
    }
    Text& uuid(const uint8_t* p) {
        char* w = o_.reserve(36);
        format_uuid(p, w);
        o_.advance(w + 36);
        return *this;
    }

private:
    Out& o_;
};

// Octal digits of v at p (at most 22 bytes).
char* oct_text(char* p, uint64_t v) {
    char buf[24];
    char* e = buf + sizeof(buf);
    char* q = e;
    do {
        *--q = char('0' + (v & 7));
        v >>= 3;
    } while (v);
    std::memcpy(p, q, size_t(e - q));
    return p + (e - q);
}

// The bytes of a name as progs' "%.*s" prints them: at most `max` bytes,
// stopping at the first NUL, clipped to what the item holds.
std::string_view printable_name(std::span<const uint8_t> data, size_t off, size_t len,
                                size_t max = NAME_LEN) {
    if (off >= data.size()) return {};
    len = std::min({len, max, data.size() - off});
    const char* p = reinterpret_cast<const char*>(data.data() + off);
    return {p, strnlen(p, len)};
}

void too_small(Out& out, size_t have, size_t need) {
    Text(out).s("\t\t[item too small: ").u(have).s(" bytes, need ").u(need).s("]\n");
}

// Checks that a structure of type T fits; prints the note when it does not.
template <typename T>
const T* need(Out& out, std::span<const uint8_t> data, size_t off = 0) {
    const T* p = view_at<T>(data, off);
    if (!p) too_small(out, data.size(), off + sizeof(T));
    return p;
}

// "%Y-%m-%d %H:%M:%S" of local time, cached: a dump repeats the same few
// seconds over and over, and localtime_r takes a lock per call.
std::string_view local_time_text(uint64_t sec) {
    struct Entry {
        uint64_t sec;
        uint8_t len;
        bool valid;
        char text[46];
    };
    static thread_local Entry cache[256];
    Entry& e = cache[(sec ^ (sec >> 8)) & 255];
    if (!e.valid || e.sec != sec) {
        struct tm tm {};
        const time_t t = static_cast<time_t>(sec);
        localtime_r(&t, &tm);
        e.len = static_cast<uint8_t>(strftime(e.text, sizeof(e.text), "%Y-%m-%d %H:%M:%S", &tm));
        e.sec = sec;
        e.valid = true;
    }
    return {e.text, e.len};
}

// At most 16 (prefix) + 20 + 1 + 10 + 2 + 45 + 2 bytes.
constexpr size_t kTimespecTextMax = 96;
template <size_t N>
[[gnu::always_inline]] inline char* timespec_text(char* p, const char (&prefix)[N],
                                                  const format::timespec& ts) {
    static_assert(N <= 17);
    const uint64_t sec = ts.sec;
    return Cursor{p}.s(prefix).u(sec).c('.').u(ts.nsec.get()).s(" (").s(local_time_text(sec))
        .s(")\n").p;
}

void print_disk_key(Out& out, const disk_key& k) { print_key(out, Key::from_disk(k)); }

// --- flag strings ------------------------------------------------------------

// At most 104 bytes.
char* inode_flags_text(char* p, uint64_t flags) {
    Cursor t{p};
    static constexpr struct {
        uint64_t bit;
        std::string_view name;
    } names[] = {
        {INODE_NODATASUM, "NODATASUM"}, {INODE_NODATACOW, "NODATACOW"},
        {INODE_READONLY, "READONLY"},   {INODE_NOCOMPRESS, "NOCOMPRESS"},
        {INODE_PREALLOC, "PREALLOC"},   {INODE_SYNC, "SYNC"},
        {INODE_IMMUTABLE, "IMMUTABLE"}, {INODE_APPEND, "APPEND"},
        {INODE_NODUMP, "NODUMP"},       {INODE_NOATIME, "NOATIME"},
        {INODE_DIRSYNC, "DIRSYNC"},     {INODE_COMPRESS, "COMPRESS"},
    };
    bool empty = true;
    for (const auto& n : names) {
        if (!(flags & n.bit)) continue;
        if (!empty) t.c('|');
        t.s(n.name);
        empty = false;
    }
    if (empty) t.s("none");
    return t.p;
}

// The profile name progs 6.2 picks when several profile bits are set: the
// first match in this order.
std::string_view raid_name(uint64_t flags) {
    if (flags & BLOCK_GROUP_RAID10) return "RAID10";
    if (flags & BLOCK_GROUP_RAID1) return "RAID1";
    if (flags & BLOCK_GROUP_RAID1C3) return "RAID1C3";
    if (flags & BLOCK_GROUP_RAID1C4) return "RAID1C4";
    if (flags & BLOCK_GROUP_DUP) return "DUP";
    if (flags & BLOCK_GROUP_RAID0) return "RAID0";
    if (flags & BLOCK_GROUP_RAID5) return "RAID5";
    if (flags & BLOCK_GROUP_RAID6) return "RAID6";
    return "single";  // progs 6.2's table spells this one in lower case
}

// Block group / chunk type string. Progs only puts a '|' before METADATA and
// SYSTEM when DATA was set, so "METADATA|SYSTEM" comes out as "METADATASYSTEM";
// the profile always follows a '|', even with no type bit ("|DUP").
void bg_flags_text(Text& t, uint64_t flags) {
    const bool data = flags & BLOCK_GROUP_DATA;
    if (data) t.s("DATA");
    if (flags & BLOCK_GROUP_METADATA) {
        if (data) t.c('|');
        t.s("METADATA");
    }
    if (flags & BLOCK_GROUP_SYSTEM) {
        if (data) t.c('|');
        t.s("SYSTEM");
    }
    t.c('|').s(raid_name(flags));
}

void extent_flags_text(Text& t, uint64_t flags) {
    bool empty = true;
    if (flags & EXTENT_FLAG_DATA) {
        t.s("DATA");
        empty = false;
    }
    if (flags & EXTENT_FLAG_TREE_BLOCK) {
        if (!empty) t.c('|');
        t.s("TREE_BLOCK");
    }
    if (flags & BLOCK_FLAG_FULL_BACKREF) t.s("|FULL_BACKREF");
}

std::string_view compression_name(uint8_t c, char (&buf)[16]) {
    switch (c) {
    case COMPRESS_NONE: return "none";
    case COMPRESS_ZLIB: return "zlib";
    case COMPRESS_LZO: return "lzo";
    case COMPRESS_ZSTD: return "zstd";
    }
    auto r = fmt::format_to_n(buf, sizeof(buf), "UNKNOWN.{}", c);
    return {buf, r.size};
}

std::string_view file_extent_type_name(uint8_t type) {
    switch (type) {
    case FILE_EXTENT_INLINE: return "inline";
    case FILE_EXTENT_PREALLOC: return "prealloc";
    case FILE_EXTENT_REG: return "regular";
    }
    return "unknown";
}

// --- items ---------------------------------------------------------------------

void print_inode_item(Out& out, std::span<const uint8_t> data) {
    const auto* ii = need<inode_item>(out, data);
    if (!ii) return;
    // Three lines of at most 130 bytes, the flags (104), four timestamps.
    Cursor t{out.reserve(3 * 130 + 104 + 4 * kTimespecTextMax)};
    t.s("\t\tgeneration ").u(ii->generation).s(" transid ").u(ii->transid).s(" size ")
        .u(ii->size).s(" nbytes ").u(ii->nbytes).s("\n\t\tblock group ").u(ii->block_group)
        .s(" mode ");
    t.p = oct_text(t.p, ii->mode.get());
    t.s(" links ").u(ii->nlink.get()).s(" uid ").u(ii->uid.get()).s(" gid ").u(ii->gid.get())
        .s(" rdev ").u(ii->rdev).s("\n\t\tsequence ").u(ii->sequence).s(" flags 0x")
        .hex(ii->flags).c('(');
    t.p = inode_flags_text(t.p, ii->flags);
    t.s(")\n");
    t.p = timespec_text(t.p, "\t\tatime ", ii->atime);
    t.p = timespec_text(t.p, "\t\tctime ", ii->ctime);
    t.p = timespec_text(t.p, "\t\tmtime ", ii->mtime);
    t.p = timespec_text(t.p, "\t\totime ", ii->otime);
    out.advance(t.p);
}

// At most 7 + NAME_LEN bytes (names come from printable_name()).
[[gnu::always_inline]] inline char* name_or_hidden_text(char* p, const PrintContext& ctx,
                                                        std::string_view name) {
    Cursor t{p};
    if (ctx.hide_names)
        t.s("name: HIDDEN\n");
    else
        t.s("name: ").s(name).c('\n');
    return t.p;
}

// Each ref (or note) is at most this many bytes.
constexpr size_t kRefTextMax = 128 + 7 + NAME_LEN + 64;

void print_inode_ref(Out& out, const PrintContext& ctx, std::span<const uint8_t> data) {
    size_t cur = 0;
    while (cur < data.size()) {
        Cursor t{out.reserve(kRefTextMax)};
        const auto* ref = view_at<inode_ref>(data, cur);
        if (!ref) {
            t.s("\t\t[inode ref truncated at offset ").u(cur).s("]\n");
            out.advance(t.p);
            return;
        }
        const uint32_t name_len = ref->name_len;
        t.s("\t\tindex ").u(ref->index).s(" namelen ").u(name_len).c(' ');
        t.p = name_or_hidden_text(t.p, ctx, printable_name(data, cur + sizeof(*ref), name_len));
        cur += sizeof(*ref) + name_len;
        if (cur > data.size()) t.s("\t\t[name runs past the item end]\n");
        out.advance(t.p);
    }
}

void print_inode_extref(Out& out, const PrintContext& ctx, std::span<const uint8_t> data) {
    size_t cur = 0;
    while (cur < data.size()) {
        Cursor t{out.reserve(kRefTextMax)};
        const auto* ref = view_at<inode_extref>(data, cur);
        if (!ref) {
            t.s("\t\t[inode extref truncated at offset ").u(cur).s("]\n");
            out.advance(t.p);
            return;
        }
        const uint32_t name_len = ref->name_len;
        t.s("\t\tindex ").u(ref->index).s(" parent ").u(ref->parent_objectid).s(" namelen ")
            .u(name_len).c(' ');
        t.p = name_or_hidden_text(t.p, ctx, printable_name(data, cur + sizeof(*ref), name_len));
        cur += sizeof(*ref) + name_len;
        if (cur > data.size()) t.s("\t\t[name runs past the item end]\n");
        out.advance(t.p);
    }
}

// At most 12 bytes.
[[gnu::always_inline]] inline void print_dir_type(Cursor& t, uint8_t type) {
    static constexpr std::string_view names[] = {"",     "FILE", "DIR",     "CHRDEV", "BLKDEV",
                                                 "FIFO", "SOCK", "SYMLINK", "XATTR"};
    if (type >= 1 && type < std::size(names))
        t.s(names[type]);
    else
        t.s("DIR_ITEM.").u(type);
}

void print_dir_item(Out& out, const PrintContext& ctx, std::span<const uint8_t> data) {
    size_t cur = 0;
    while (cur < data.size()) {
        // A key, three short lines, a name and data of at most NAME_LEN each.
        Cursor t{out.reserve(print_detail::kKeyTextMax + 256 + 2 * NAME_LEN)};
        const auto* di = view_at<dir_item>(data, cur);
        if (!di) {
            t.s("\t\t[dir item truncated at offset ").u(cur).s("]\n");
            out.advance(t.p);
            return;
        }
        t.s("\t\tlocation ");
        t.p = print_detail::key_text(t.p, Key::from_disk(di->location));
        t.s(" type ");
        print_dir_type(t, di->type);
        const uint32_t name_len = di->name_len, data_len = di->data_len;
        t.s("\n\t\ttransid ").u(di->transid).s(" data_len ").u(data_len).s(" name_len ")
            .u(name_len).c('\n');
        const size_t name_off = cur + sizeof(*di);
        if (ctx.hide_names)
            t.s("\t\tname: HIDDEN\n");
        else
            t.s("\t\tname: ").s(printable_name(data, name_off, name_len)).c('\n');
        if (data_len) {
            if (ctx.hide_names)
                t.s("\t\tdata HIDDEN\n");
            else
                t.s("\t\tdata ").s(printable_name(data, name_off + name_len, data_len)).c('\n');
        }
        cur = name_off + name_len + data_len;
        if (cur > data.size()) t.s("\t\t[name or data runs past the item end]\n");
        out.advance(t.p);
    }
}

void print_root_item(Out& out, std::span<const uint8_t> data) {
    // Old root items end before generation_v2; progs reads what there is
    // into a zeroed structure, and so do we.
    root_item ri;
    std::memset(&ri, 0, sizeof(ri));
    std::memcpy(&ri, data.data(), std::min(data.size(), sizeof(ri)));
    const uint64_t flags = ri.flags;
    {
        Text t(out);
        t.s("\t\tgeneration ").u(ri.generation).s(" root_dirid ").u(ri.root_dirid).s(" bytenr ")
            .u(ri.bytenr).s(" byte_limit ").u(ri.byte_limit).s(" bytes_used ").u(ri.bytes_used)
            .s("\n\t\tlast_snapshot ").u(ri.last_snapshot).s(" flags 0x").hex(flags).c('(')
            .s(flags & ROOT_SUBVOL_RDONLY ? "RDONLY" : "none").s(") refs ").u(ri.refs.get())
            .s("\n\t\tdrop_progress ");
        print_disk_key(out, ri.drop_progress);
        t.s(" drop_level ").u(ri.drop_level).s("\n\t\tlevel ").u(ri.level).s(" generation_v2 ")
            .u(ri.generation_v2).c('\n');
        if (ri.generation.get() != ri.generation_v2.get()) return;
        t.s("\t\tuuid ").uuid(ri.uuid).s("\n\t\tparent_uuid ").uuid(ri.parent_uuid)
            .s("\n\t\treceived_uuid ").uuid(ri.received_uuid).s("\n\t\tctransid ").u(ri.ctransid)
            .s(" otransid ").u(ri.otransid).s(" stransid ").u(ri.stransid).s(" rtransid ")
            .u(ri.rtransid).c('\n');
    }
    Cursor t{out.reserve(4 * kTimespecTextMax)};
    t.p = timespec_text(t.p, "\t\tctime ", ri.ctime);
    t.p = timespec_text(t.p, "\t\totime ", ri.otime);
    t.p = timespec_text(t.p, "\t\tstime ", ri.stime);
    t.p = timespec_text(t.p, "\t\trtime ", ri.rtime);
    out.advance(t.p);
}

void print_root_ref(Out& out, std::span<const uint8_t> data, std::string_view tag) {
    const auto* ref = need<root_ref>(out, data);
    if (!ref) return;
    const uint32_t name_len = ref->name_len;
    Text t(out);
    // Progs prints root ref names even with --hide-names.
    t.s("\t\troot ").s(tag).s(" key dirid ").u(ref->dirid).s(" sequence ").u(ref->sequence)
        .s(" name ").s(printable_name(data, sizeof(*ref), name_len, name_len)).c('\n');
    if (sizeof(*ref) + name_len > data.size()) t.s("\t\t[name runs past the item end]\n");
}

void print_extent_item(Out& out, const Key& key, std::span<const uint8_t> data) {
    const bool metadata = key.type == METADATA_ITEM_KEY;
    const auto* ei = view_at<extent_item>(data);
    if (!ei) return;  // progs prints nothing for (v0) items this small
    const uint64_t flags = ei->flags;
    {
        Text t(out);
        t.s("\t\trefs ").u(ei->refs).s(" gen ").u(ei->generation).s(" flags ");
        extent_flags_text(t, flags);
        t.c('\n');
    }
    size_t ptr = sizeof(*ei);
    if ((flags & EXTENT_FLAG_TREE_BLOCK) && !metadata) {
        const auto* info = need<tree_block_info>(out, data, ptr);
        if (!info) return;
        Text t(out);
        t.s("\t\ttree block ");
        print_disk_key(out, info->key);
        t.s(" level ").u(info->level).c('\n');
        ptr += sizeof(*info);
    } else if (metadata) {
        Text(out).s("\t\ttree block skinny level ").i(static_cast<int>(key.offset)).c('\n');
    }
    while (ptr < data.size()) {
        // One line of at most two numbers, an object id and two more numbers.
        Cursor t{out.reserve(256)};
        const uint8_t type = data[ptr];
        size_t len;
        switch (type) {
        case TREE_BLOCK_REF_KEY:
        case SHARED_BLOCK_REF_KEY: len = sizeof(extent_inline_ref); break;
        case EXTENT_DATA_REF_KEY: len = 1 + sizeof(extent_data_ref); break;
        case SHARED_DATA_REF_KEY: len = sizeof(extent_inline_ref) + sizeof(shared_data_ref); break;
        default: return;  // progs stops silently at an unknown ref type
        }
        if (data.size() - ptr < len) {
            t.s("\t\t[inline ref type ").u(type).s(" at offset ").u(ptr)
                .s(" runs past the item end]\n");
            out.advance(t.p);
            return;
        }
        const auto* iref = view_at<extent_inline_ref>(data, ptr);
        switch (type) {
        case TREE_BLOCK_REF_KEY:
            t.s("\t\ttree block backref root ");
            t.p = print_detail::objectid_text(t.p, iref->offset, 0);
            t.c('\n');
            break;
        case SHARED_BLOCK_REF_KEY:
            t.s("\t\tshared block backref parent ").u(iref->offset).c('\n');
            break;
        case EXTENT_DATA_REF_KEY: {
            const auto* dref = view_at<extent_data_ref>(data, ptr + 1);
            t.s("\t\textent data backref root ");
            t.p = print_detail::objectid_text(t.p, dref->root, 0);
            t.s(" objectid ").u(dref->objectid).s(" offset ").u(dref->offset).s(" count ")
                .u(dref->count.get()).c('\n');
            break;
        }
        case SHARED_DATA_REF_KEY: {
            const auto* sref = view_at<shared_data_ref>(data, ptr + sizeof(extent_inline_ref));
            t.s("\t\tshared data backref parent ").u(iref->offset).s(" count ")
                .u(sref->count.get()).c('\n');
            break;
        }
        }
        out.advance(t.p);
        ptr += len;
    }
}

void print_extent_data_ref(Out& out, std::span<const uint8_t> data) {
    const auto* dref = need<extent_data_ref>(out, data);
    if (!dref) return;
    Text t(out);
    t.s("\t\textent data backref root ");
    print_objectid(out, dref->root, 0);
    t.s(" objectid ").u(dref->objectid).s(" offset ").u(dref->offset).s(" count ")
        .u(dref->count.get()).c('\n');
}

void print_shared_data_ref(Out& out, std::span<const uint8_t> data) {
    const auto* sref = need<shared_data_ref>(out, data);
    if (!sref) return;
    Text(out).s("\t\tshared data backref count ").u(sref->count.get()).c('\n');
}

void print_extent_csum(Out& out, const PrintContext& ctx, uint64_t start,
                       std::span<const uint8_t> data) {
    Text t(out);
    const uint32_t csum_size = ctx.csum_size;
    if (csum_size == 0) {
        t.s("\t\trange start ").u(start).c('\n');
        return;
    }
    const uint32_t count = static_cast<uint32_t>(data.size() / csum_size);
    const uint32_t length = count * ctx.sectorsize;  // u32, as progs computes it
    t.s("\t\trange start ").u(start).s(" end ").u(start + length).s(" length ").u(length)
        .c('\n');
    if (!ctx.csum_items || count == 0) return;
    // One line holds 4 crc32c, 2 xxhash or 1 sha256/blake2 checksum.
    const uint32_t per_line = std::max<uint32_t>(1, CSUM_SIZE / csum_size / 2);
    uint64_t offset = start;
    uint32_t on_line = 0;
    t.s("\t\t");
    for (uint32_t k = 0; k < count; ++k) {
        if (on_line == per_line) {
            t.s("\n\t\t");
            on_line = 0;
        } else if (on_line) {
            t.c(' ');
        }
        t.c('[').u(offset).s("] 0x").bytes_hex(data.data() + size_t(k) * csum_size, csum_size);
        offset += ctx.sectorsize;
        ++on_line;
    }
    t.c('\n');
}

void print_file_extent(Out& out, std::span<const uint8_t> data) {
    const auto* fi = view_at<file_extent_item>(data);
    if (data.size() < FILE_EXTENT_INLINE_DATA_START) {
        too_small(out, data.size(), FILE_EXTENT_INLINE_DATA_START);
        return;
    }
    // The first fields are inside the item even when `fi` (the full
    // structure) does not fit.
    const uint8_t* p = data.data();
    const uint64_t generation = load_le64(p);
    const uint64_t ram_bytes = load_le64(p + 8);
    const uint8_t compression = p[16];
    const uint8_t type = p[20];
    char cbuf[16];
    const std::string_view cname = compression_name(compression, cbuf);
    // At most two short lines and three of under 100 bytes.
    Cursor t{out.reserve(512)};
    t.s("\t\tgeneration ").u(generation).s(" type ").u(type).s(" (")
        .s(file_extent_type_name(type)).s(")\n");
    if (type == FILE_EXTENT_INLINE) {
        t.s("\t\tinline extent data size ").u(data.size() - FILE_EXTENT_INLINE_DATA_START)
            .s(" ram_bytes ").u(ram_bytes).s(" compression ").u(compression).s(" (").s(cname)
            .s(")\n");
        out.advance(t.p);
        return;
    }
    out.advance(t.p);
    if (!fi) {
        too_small(out, data.size(), sizeof(file_extent_item));
        return;
    }
    t.p = out.reserve(512);
    if (type == FILE_EXTENT_PREALLOC) {
        t.s("\t\tprealloc data disk byte ").u(fi->disk_bytenr).s(" nr ").u(fi->disk_num_bytes)
            .s("\n\t\tprealloc data offset ").u(fi->offset).s(" nr ").u(fi->num_bytes).c('\n');
    } else {
        t.s("\t\textent data disk byte ").u(fi->disk_bytenr).s(" nr ").u(fi->disk_num_bytes)
            .s("\n\t\textent data offset ").u(fi->offset).s(" nr ").u(fi->num_bytes).s(" ram ")
            .u(ram_bytes).s("\n\t\textent compression ").u(compression).s(" (").s(cname).s(")\n");
    }
    out.advance(t.p);
}

void print_block_group_item(Out& out, std::span<const uint8_t> data) {
    const auto* bg = need<block_group_item>(out, data);
    if (!bg) return;
    Text t(out);
    t.s("\t\tblock group used ").u(bg->used).s(" chunk_objectid ").u(bg->chunk_objectid)
        .s(" flags ");
    bg_flags_text(t, bg->flags);
    t.c('\n');
}

void print_free_space_info(Out& out, std::span<const uint8_t> data) {
    const auto* fsi = need<free_space_info>(out, data);
    if (!fsi) return;
    Text(out).s("\t\tfree space info extent count ").u(fsi->extent_count.get()).s(" flags ")
        .u(fsi->flags.get()).c('\n');
}

void print_free_space_header(Out& out, std::span<const uint8_t> data) {
    const auto* h = need<free_space_header>(out, data);
    if (!h) return;
    Text t(out);
    t.s("\t\tlocation ");
    print_disk_key(out, h->location);
    t.s("\n\t\tcache generation ").u(h->generation).s(" entries ").u(h->num_entries)
        .s(" bitmaps ").u(h->num_bitmaps).c('\n');
}

void print_dev_item(Out& out, std::span<const uint8_t> data) {
    const auto* d = need<dev_item>(out, data);
    if (!d) return;
    Text t(out);
    t.s("\t\tdevid ").u(d->devid).s(" total_bytes ").u(d->total_bytes).s(" bytes_used ")
        .u(d->bytes_used).s("\n\t\tio_align ").u(d->io_align.get()).s(" io_width ")
        .u(d->io_width.get()).s(" sector_size ").u(d->sector_size.get()).s(" type ").u(d->type)
        .s("\n\t\tgeneration ").u(d->generation).s(" start_offset ").u(d->start_offset)
        .s(" dev_group ").u(d->dev_group.get()).s("\n\t\tseek_speed ").u(d->seek_speed)
        .s(" bandwidth ").u(d->bandwidth).s("\n\t\tuuid ").uuid(d->uuid).s("\n\t\tfsid ")
        .uuid(d->fsid).c('\n');
}

void print_dev_extent(Out& out, std::span<const uint8_t> data) {
    const auto* de = need<dev_extent>(out, data);
    if (!de) return;
    Text(out).s("\t\tdev extent chunk_tree ").u(de->chunk_tree).s("\n\t\tchunk_objectid ")
        .u(de->chunk_objectid).s(" chunk_offset ").u(de->chunk_offset).s(" length ")
        .u(de->length).s("\n\t\tchunk_tree_uuid ").uuid(de->chunk_tree_uuid).c('\n');
}

void print_qgroup_status(Out& out, std::span<const uint8_t> data) {
    if (data.size() < QGROUP_STATUS_V1_SIZE) {
        too_small(out, data.size(), QGROUP_STATUS_V1_SIZE);
        return;
    }
    const uint8_t* p = data.data();
    const uint64_t flags = load_le64(p + 16);
    Text t(out);
    t.s("\t\tversion ").u(load_le64(p)).s(" generation ").u(load_le64(p + 8)).s(" flags ")
        .s(flags & QGROUP_STATUS_FLAG_ON ? "ON" : "OFF");
    if (flags & QGROUP_STATUS_FLAG_RESCAN) t.s("|SCANNING");
    if (flags & QGROUP_STATUS_FLAG_INCONSISTENT) t.s("|INCONSISTENT");
    t.s(" scan ").u(load_le64(p + 24)).c('\n');
}

void print_qgroup_info(Out& out, std::span<const uint8_t> data) {
    const auto* q = need<qgroup_info_item>(out, data);
    if (!q) return;
    Text(out).s("\t\tgeneration ").u(q->generation).s("\n\t\treferenced ").u(q->rfer)
        .s(" referenced_compressed ").u(q->rfer_cmpr).s("\n\t\texclusive ").u(q->excl)
        .s(" exclusive_compressed ").u(q->excl_cmpr).c('\n');
}

void print_qgroup_limit(Out& out, std::span<const uint8_t> data) {
    const auto* q = need<qgroup_limit_item>(out, data);
    if (!q) return;
    Text(out).s("\t\tflags ").hex(q->flags).s("\n\t\tmax_referenced ")
        .i(static_cast<int64_t>(q->max_rfer.get())).s(" max_exclusive ")
        .i(static_cast<int64_t>(q->max_excl.get())).s("\n\t\trsv_referenced ")
        .i(static_cast<int64_t>(q->rsv_rfer.get())).s(" rsv_exclusive ")
        .i(static_cast<int64_t>(q->rsv_excl.get())).c('\n');
}

void print_uuid_item(Out& out, std::span<const uint8_t> data) {
    Text t(out);
    if (data.size() % sizeof(uint64_t)) {
        t.s("btrfs: uuid item with illegal size ").u(data.size()).s("!\n");
        return;
    }
    for (size_t off = 0; off < data.size(); off += 8)
        t.s("\t\tsubvol_id ").u(load_le64(data.data() + off)).c('\n');
}

void print_dev_stats(Out& out, std::span<const uint8_t> data) {
    Text t(out);
    t.s("\t\tdevice stats\n");
    const auto* st = need<dev_stats_item>(out, data);
    if (!st) return;
    t.s("\t\twrite_errs ").u(st->values[DEV_STAT_WRITE_ERRS]).s(" read_errs ")
        .u(st->values[DEV_STAT_READ_ERRS]).s(" flush_errs ").u(st->values[DEV_STAT_FLUSH_ERRS])
        .s(" corruption_errs ").u(st->values[DEV_STAT_CORRUPTION_ERRS]).s(" generation ")
        .u(st->values[DEV_STAT_GENERATION_ERRS]).c('\n');
    const size_t known = sizeof(dev_stats_item);
    if (data.size() <= known) return;
    // No newline after the byte count: progs prints it this way.
    t.s("\t\tunknown stats item bytes ").u(data.size() - known);
    for (size_t k = DEV_STAT_VALUES_MAX; k * 8 < data.size(); ++k) {
        uint8_t v[8] = {};
        std::memcpy(v, data.data() + k * 8, std::min<size_t>(8, data.size() - k * 8));
        t.s("\t\tunknown item ").u(k).s(" offset ").u(k * 8).s(" value ").u(load_le64(v))
            .c('\n');
    }
}

void print_persistent_item(Out& out, const Key& key, std::span<const uint8_t> data) {
    Text t(out);
    t.s("\t\tpersistent item objectid ");
    print_objectid(out, key.objectid, PERSISTENT_ITEM_KEY);
    t.s(" offset ").u(key.offset).c('\n');
    if (key.objectid == DEV_STATS_OBJECTID)
        print_dev_stats(out, data);
    else
        t.s("\t\tunknown persistent item objectid ").u(key.objectid).c('\n');
}

void print_balance_args(Text& t, const disk_balance_args& a) {
    const uint64_t usage = a.usage, limit = a.limit;
    t.s("\t\tprofiles ").u(a.profiles).s(" devid ").u(a.devid).s(" target ").u(a.target)
        .s(" flags ").u(a.flags).s("\n\t\tusage_min ").u(uint32_t(usage)).s(" usage_max ")
        .u(uint32_t(usage >> 32)).s(" pstart ").u(a.pstart).s(" pend ").u(a.pend)
        .s("\n\t\tvstart ").u(a.vstart).s(" vend ").u(a.vend).s(" limit_min ")
        .u(uint32_t(limit)).s(" limit_max ").u(uint32_t(limit >> 32)).s("\n\t\tstripes_min ")
        .u(a.stripes_min.get()).s(" stripes_max ").u(a.stripes_max.get()).c('\n');
}

// 6.2 keeps the checksum-conversion tree pointer under this temporary id.
constexpr uint64_t CSUM_TREE_TMP_OBJECTID = 13;

void print_temporary_item(Out& out, const Key& key, std::span<const uint8_t> data) {
    Text t(out);
    t.s("\t\ttemporary item objectid ");
    print_objectid(out, key.objectid, TEMPORARY_ITEM_KEY);
    t.s(" offset ").u(key.offset).c('\n');
    if (key.objectid == BALANCE_OBJECTID) {
        const auto* bi = need<balance_item>(out, data);
        if (!bi) return;
        t.s("\t\tbalance status flags ").u(bi->flags).s("\n\t\tDATA\n");
        print_balance_args(t, bi->data);
        t.s("\t\tMETADATA\n");
        print_balance_args(t, bi->meta);
        t.s("\t\tSYSTEM\n");
        print_balance_args(t, bi->sys);
    } else if (key.objectid == CSUM_TREE_TMP_OBJECTID) {
        t.s("\t\tcsum tree tmp root ").u(key.offset).c('\n');
    } else {
        t.s("\t\tunknown temporary item objectid ").u(key.objectid).c('\n');
    }
}

void print_string_item(Out& out, std::span<const uint8_t> data) {
    Text(out).s("\t\titem data ").s(printable_name(data, 0, data.size(), data.size())).c('\n');
}

}  // namespace

// ---------------------------------------------------------------------------

void format_uuid(const uint8_t u[16], char buf[36]) {
    static constexpr char digits[] = "0123456789abcdef";
    char* p = buf;
    for (int k = 0; k < 16; ++k) {
        if (k == 4 || k == 6 || k == 8 || k == 10) *p++ = '-';
        *p++ = digits[u[k] >> 4];
        *p++ = digits[u[k] & 15];
    }
}

namespace print_detail {

namespace {

// "%016llx".
char* hex16_text(char* p, uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    for (int k = 15; k >= 0; --k) {
        p[k] = digits[v & 15];
        v >>= 4;
    }
    return p + 16;
}

std::string_view objectid_name(uint64_t objectid, uint8_t type) {
    switch (objectid) {
    case ROOT_TREE_OBJECTID: return type == DEV_ITEM_KEY ? "DEV_ITEMS" : "ROOT_TREE";
    case EXTENT_TREE_OBJECTID: return "EXTENT_TREE";
    case CHUNK_TREE_OBJECTID: return "CHUNK_TREE";
    case DEV_TREE_OBJECTID: return "DEV_TREE";
    case FS_TREE_OBJECTID: return "FS_TREE";
    case ROOT_TREE_DIR_OBJECTID: return "ROOT_TREE_DIR";
    case CSUM_TREE_OBJECTID: return "CSUM_TREE";
    case BALANCE_OBJECTID: return "BALANCE";
    case ORPHAN_OBJECTID: return "ORPHAN";
    case TREE_LOG_OBJECTID: return "TREE_LOG";
    case TREE_LOG_FIXUP_OBJECTID: return "LOG_FIXUP";
    case TREE_RELOC_OBJECTID: return "TREE_RELOC";
    case DATA_RELOC_TREE_OBJECTID: return "DATA_RELOC_TREE";
    case EXTENT_CSUM_OBJECTID: return "EXTENT_CSUM";
    case FREE_SPACE_OBJECTID: return "FREE_SPACE";
    case FREE_INO_OBJECTID: return "FREE_INO";
    case QUOTA_TREE_OBJECTID: return "QUOTA_TREE";
    case UUID_TREE_OBJECTID: return "UUID_TREE";
    case FREE_SPACE_TREE_OBJECTID: return "FREE_SPACE_TREE";
    case MULTIPLE_OBJECTIDS: return "MULTIPLE";
    case BLOCK_GROUP_TREE_OBJECTID: return "BLOCK_GROUP_TREE";
    case uint64_t(-1): return "-1";
    case FIRST_CHUNK_TREE_OBJECTID:
        if (type == CHUNK_ITEM_KEY) return "FIRST_CHUNK_TREE";
        break;
    }
    return {};
}

// Key type names in fixed slots, so that one is copied with a fixed-size copy.
struct KeyTypeNames {
    struct Name {
        char text[24];
        uint8_t len;
    };
    Name slots[256];

    static constexpr void set(Name& n, std::string_view v) {
        for (size_t k = 0; k < v.size(); ++k) n.text[k] = v[k];
        n.len = uint8_t(v.size());
    }
    constexpr KeyTypeNames() : slots{} {
        set(slots[INODE_ITEM_KEY], "INODE_ITEM");
        set(slots[INODE_REF_KEY], "INODE_REF");
        set(slots[INODE_EXTREF_KEY], "INODE_EXTREF");
        set(slots[DIR_ITEM_KEY], "DIR_ITEM");
        set(slots[DIR_INDEX_KEY], "DIR_INDEX");
        set(slots[DIR_LOG_ITEM_KEY], "DIR_LOG_ITEM");
        set(slots[DIR_LOG_INDEX_KEY], "DIR_LOG_INDEX");
        set(slots[XATTR_ITEM_KEY], "XATTR_ITEM");
        set(slots[VERITY_DESC_ITEM_KEY], "VERITY_DESC_ITEM");
        set(slots[VERITY_MERKLE_ITEM_KEY], "VERITY_MERKLE_ITEM");
        set(slots[ORPHAN_ITEM_KEY], "ORPHAN_ITEM");
        set(slots[ROOT_ITEM_KEY], "ROOT_ITEM");
        set(slots[ROOT_REF_KEY], "ROOT_REF");
        set(slots[ROOT_BACKREF_KEY], "ROOT_BACKREF");
        set(slots[EXTENT_ITEM_KEY], "EXTENT_ITEM");
        set(slots[METADATA_ITEM_KEY], "METADATA_ITEM");
        set(slots[TREE_BLOCK_REF_KEY], "TREE_BLOCK_REF");
        set(slots[SHARED_BLOCK_REF_KEY], "SHARED_BLOCK_REF");
        set(slots[EXTENT_DATA_REF_KEY], "EXTENT_DATA_REF");
        set(slots[SHARED_DATA_REF_KEY], "SHARED_DATA_REF");
        set(slots[EXTENT_REF_V0_KEY], "EXTENT_REF_V0");
        set(slots[CSUM_ITEM_KEY], "CSUM_ITEM");
        set(slots[EXTENT_CSUM_KEY], "EXTENT_CSUM");
        set(slots[EXTENT_DATA_KEY], "EXTENT_DATA");
        set(slots[BLOCK_GROUP_ITEM_KEY], "BLOCK_GROUP_ITEM");
        set(slots[FREE_SPACE_INFO_KEY], "FREE_SPACE_INFO");
        set(slots[FREE_SPACE_EXTENT_KEY], "FREE_SPACE_EXTENT");
        set(slots[FREE_SPACE_BITMAP_KEY], "FREE_SPACE_BITMAP");
        set(slots[CHUNK_ITEM_KEY], "CHUNK_ITEM");
        set(slots[DEV_ITEM_KEY], "DEV_ITEM");
        set(slots[DEV_EXTENT_KEY], "DEV_EXTENT");
        set(slots[TEMPORARY_ITEM_KEY], "TEMPORARY_ITEM");
        set(slots[DEV_REPLACE_KEY], "DEV_REPLACE");
        set(slots[STRING_ITEM_KEY], "STRING_ITEM");
        set(slots[QGROUP_STATUS_KEY], "QGROUP_STATUS");
        set(slots[QGROUP_RELATION_KEY], "QGROUP_RELATION");
        set(slots[QGROUP_INFO_KEY], "QGROUP_INFO");
        set(slots[QGROUP_LIMIT_KEY], "QGROUP_LIMIT");
        set(slots[PERSISTENT_ITEM_KEY], "PERSISTENT_ITEM");
        set(slots[UUID_KEY_SUBVOL], "UUID_KEY_SUBVOL");
        set(slots[UUID_KEY_RECEIVED_SUBVOL], "UUID_KEY_RECEIVED_SUBVOL");
    }
};
constexpr KeyTypeNames kKeyTypeNames;

}  // namespace

char* objectid_text(char* p, uint64_t objectid, uint8_t type) {
    Cursor t{p};
    switch (type) {
    case PERSISTENT_ITEM_KEY:
        if (objectid == DEV_STATS_OBJECTID)
            t.s("DEV_STATS");
        else
            t.u(objectid);
        return t.p;
    case DEV_EXTENT_KEY: return t.u(objectid).p;
    case QGROUP_RELATION_KEY:
        return t.u(objectid >> QGROUP_LEVEL_SHIFT).c('/')
            .u(objectid & ((1ULL << QGROUP_LEVEL_SHIFT) - 1)).p;
    case UUID_KEY_SUBVOL:
    case UUID_KEY_RECEIVED_SUBVOL: return hex16_text(t.s("0x").p, objectid);
    }
    // Plain numbers are by far the most common: skip the name lookup for
    // ids no name covers.
    if (objectid > FIRST_CHUNK_TREE_OBJECTID && objectid < MULTIPLE_OBJECTIDS) return t.u(objectid).p;
    const std::string_view name = objectid_name(objectid, type);
    if (name.empty()) return t.u(objectid).p;
    return t.s(name).p;
}

char* key_type_text(char* p, uint64_t objectid, uint8_t type) {
    Cursor t{p};
    if (type == 0 && objectid == FREE_SPACE_OBJECTID) return t.s("UNTYPED").p;
    const auto& name = kKeyTypeNames.slots[type];
    if (name.len == 0) return t.s("UNKNOWN.").u(type).p;
    std::memcpy(t.p, name.text, sizeof(name.text));  // room for 24 bytes is reserved
    return t.p + name.len;
}

char* key_text(char* p, const Key& key) {
    Cursor t{p};
    t.s("key (");
    // Plain numbers first: no name and no special form for these types.
    if (key.objectid > FIRST_CHUNK_TREE_OBJECTID && key.objectid < MULTIPLE_OBJECTIDS &&
        key.type != QGROUP_RELATION_KEY && key.type != UUID_KEY_SUBVOL &&
        key.type != UUID_KEY_RECEIVED_SUBVOL)
        t.u(key.objectid);
    else
        t.p = objectid_text(t.p, key.objectid, key.type);
    t.c(' ');
    t.p = key_type_text(t.p, key.objectid, key.type);
    switch (key.type) {
    case QGROUP_RELATION_KEY:
    case QGROUP_INFO_KEY:
    case QGROUP_LIMIT_KEY:
        // The level is a 16-bit value in progs' format ("%u/%llu").
        t.c(' ').u(key.offset >> QGROUP_LEVEL_SHIFT).c('/')
            .u(key.offset & ((1ULL << QGROUP_LEVEL_SHIFT) - 1)).c(')');
        break;
    case UUID_KEY_SUBVOL:
    case UUID_KEY_RECEIVED_SUBVOL:
        t.p = hex16_text(t.s(" 0x").p, key.offset);
        t.c(')');
        break;
    case ROOT_ITEM_KEY:
        // A reloc tree's root item offset is the id of the tree it relocates.
        t.c(' ');
        if (key.objectid == TREE_RELOC_OBJECTID)
            t.p = objectid_text(t.p, key.offset, key.type);
        else
            t.u(key.offset);
        t.c(')');
        break;
    default:
        if (key.offset == uint64_t(-1))
            t.s(" -1)");
        else
            t.c(' ').u(key.offset).c(')');
    }
    return t.p;
}

}  // namespace print_detail

void print_objectid(Out& out, uint64_t objectid, uint8_t type) {
    out.advance(print_detail::objectid_text(out.reserve(print_detail::kObjectidTextMax), objectid, type));
}

void print_tree_name(Out& out, uint64_t objectid) { print_objectid(out, objectid, 0); }

void print_key_type(Out& out, uint64_t objectid, uint8_t type) {
    out.advance(print_detail::key_type_text(out.reserve(print_detail::kKeyTypeTextMax), objectid, type));
}

void print_key(Out& out, const Key& key) {
    out.advance(print_detail::key_text(out.reserve(print_detail::kKeyTextMax), key));
}

void print_chunk_item(Out& out, std::span<const uint8_t> data) {
    const auto* c = need<chunk>(out, data);
    if (!c) return;
    Text t(out);
    const uint16_t num_stripes = c->num_stripes;
    if (num_stripes < 1) {
        t.s("invalid num_stripes: ").u(num_stripes).c('\n');
        return;
    }
    if (chunk_item_size(num_stripes) > data.size()) {
        t.s("\t\tchunk item invalid\n");
        return;
    }
    t.s("\t\tlength ").u(c->length).s(" owner ").u(c->owner).s(" stripe_len ")
        .u(c->stripe_len).s(" type ");
    bg_flags_text(t, c->type);
    t.s("\n\t\tio_align ").u(c->io_align.get()).s(" io_width ").u(c->io_width.get())
        .s(" sector_size ").u(c->sector_size.get()).s("\n\t\tnum_stripes ").u(num_stripes)
        .s(" sub_stripes ").u(c->sub_stripes.get()).c('\n');
    for (uint32_t k = 0; k < num_stripes; ++k) {
        const auto* st = view_at<stripe>(data, offsetof(chunk, stripe) + size_t(k) * sizeof(stripe));
        t.s("\t\t\tstripe ").u(k).s(" devid ").u(st->devid).s(" offset ").u(st->offset)
            .s("\n\t\t\tdev_uuid ").uuid(st->dev_uuid).c('\n');
    }
}

void print_item_body(Out& out, const PrintContext& ctx, const Key& key,
                     std::span<const uint8_t> data) {
    if (key.type == 0 && key.objectid == FREE_SPACE_OBJECTID) print_free_space_header(out, data);

    switch (key.type) {
    case INODE_ITEM_KEY: print_inode_item(out, data); break;
    case INODE_REF_KEY: print_inode_ref(out, ctx, data); break;
    case INODE_EXTREF_KEY: print_inode_extref(out, ctx, data); break;
    case DIR_ITEM_KEY:
    case DIR_INDEX_KEY:
    case XATTR_ITEM_KEY: print_dir_item(out, ctx, data); break;
    case DIR_LOG_INDEX_KEY:
    case DIR_LOG_ITEM_KEY:
        if (const auto* dl = need<dir_log_item>(out, data))
            Text(out).s("\t\tdir log end ").u(dl->end).c('\n');
        break;
    case ORPHAN_ITEM_KEY: Text(out).s("\t\torphan item\n"); break;
    case ROOT_ITEM_KEY: print_root_item(out, data); break;
    case ROOT_REF_KEY: print_root_ref(out, data, "ref"); break;
    case ROOT_BACKREF_KEY: print_root_ref(out, data, "backref"); break;
    case EXTENT_ITEM_KEY:
    case METADATA_ITEM_KEY: print_extent_item(out, key, data); break;
    case TREE_BLOCK_REF_KEY: Text(out).s("\t\ttree block backref\n"); break;
    case SHARED_BLOCK_REF_KEY: Text(out).s("\t\tshared block backref\n"); break;
    case EXTENT_DATA_REF_KEY: print_extent_data_ref(out, data); break;
    case SHARED_DATA_REF_KEY: print_shared_data_ref(out, data); break;
    case EXTENT_REF_V0_KEY: Text(out).s("\t\textent ref v0 (deprecated)\n"); break;
    case CSUM_ITEM_KEY: Text(out).s("\t\tcsum item\n"); break;
    case EXTENT_CSUM_KEY: print_extent_csum(out, ctx, key.offset, data); break;
    case EXTENT_DATA_KEY: print_file_extent(out, data); break;
    case BLOCK_GROUP_ITEM_KEY: print_block_group_item(out, data); break;
    case FREE_SPACE_INFO_KEY: print_free_space_info(out, data); break;
    case FREE_SPACE_EXTENT_KEY: Text(out).s("\t\tfree space extent\n"); break;
    case FREE_SPACE_BITMAP_KEY: Text(out).s("\t\tfree space bitmap\n"); break;
    case CHUNK_ITEM_KEY: print_chunk_item(out, data); break;
    case DEV_ITEM_KEY: print_dev_item(out, data); break;
    case DEV_EXTENT_KEY: print_dev_extent(out, data); break;
    case QGROUP_STATUS_KEY: print_qgroup_status(out, data); break;
    case QGROUP_RELATION_KEY: break;
    case QGROUP_INFO_KEY: print_qgroup_info(out, data); break;
    case QGROUP_LIMIT_KEY: print_qgroup_limit(out, data); break;
    case UUID_KEY_SUBVOL:
    case UUID_KEY_RECEIVED_SUBVOL: print_uuid_item(out, data); break;
    case STRING_ITEM_KEY: print_string_item(out, data); break;
    case PERSISTENT_ITEM_KEY: print_persistent_item(out, key, data); break;
    case TEMPORARY_ITEM_KEY: print_temporary_item(out, key, data); break;
    default: break;  // progs 6.2 prints nothing more for other types
    }
}

PrintContext PrintContext::from_super(const super_block& sb) {
    PrintContext ctx;
    ctx.nodesize = sb.nodesize;
    ctx.sectorsize = sb.sectorsize;
    ctx.csum_type = sb.csum_type;
    ctx.csum_size = btk::csum_size(ctx.csum_type);
    ctx.incompat_flags = sb.incompat_flags;
    ctx.compat_ro_flags = sb.compat_ro_flags;
    return ctx;
}

}  // namespace btk
