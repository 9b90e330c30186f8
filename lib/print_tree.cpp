// Whole tree blocks: progs-compatible text (header lines, then items or key
// pointers) and the JSON form documented in print_tree.h.
#include "print_tree.h"

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace {

template <size_t N>
inline void put(Out& out, const char (&literal)[N]) {
    out.append(literal, N - 1);
}
inline void put(Out& out, std::string_view s) { out.append(s.data(), s.size()); }
inline void put_u(Out& out, uint64_t v) { out.u64(v); }
inline void put_i(Out& out, int64_t v) {
    if (v < 0) {
        out.put('-');
        out.u64(uint64_t(0) - uint64_t(v));
    } else {
        out.u64(uint64_t(v));
    }
}
void put_uuid(Out& out, const uint8_t* u) {
    char buf[36];
    format_uuid(u, buf);
    put(out, {buf, 36});
}
void put_hex_bytes(Out& out, const uint8_t* p, size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    char* w = out.reserve(2 * n);
    for (size_t k = 0; k < n; ++k) {
        *w++ = digits[p[k] >> 4];
        *w++ = digits[p[k] & 15];
    }
    out.advance(w);
}

// Free space of a leaf computed the way progs does: from the data end of
// item 0 and the data start of the last item, against the filesystem's
// nodesize. It can be negative for a damaged leaf, and progs prints it signed.
int64_t progs_leaf_free_space(const PrintContext& ctx, const TreeBlock& b) {
    const uint32_t data_size = ctx.nodesize > sizeof(header) ? ctx.nodesize - sizeof(header) : 0;
    const uint32_t nr = b.nritems();
    if (nr == 0) return static_cast<int32_t>(data_size);
    const uint32_t end0 = b.item_offset(0) + b.item_size(0);
    const uint32_t used = end0 - b.item_offset(nr - 1) + nr * uint32_t(sizeof(item));
    return static_cast<int32_t>(data_size - used);
}

uint32_t node_capacity(const PrintContext& ctx) {
    return ctx.nodesize > sizeof(header) ? nodeptrs_per_block(ctx.nodesize) : 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// Text

void print_block_header(Out& out, const PrintContext& ctx, const TreeBlock& block,
                        uint64_t start) {
    const header& h = block.header();
    const uint32_t nr = block.nritems();
    const bool node = h.level != 0;
    // Four lines: numbers, names, flags, a checksum and two UUIDs.
    Cursor t{out.reserve(512)};
    if (node) {
        t.s("node ").u(start ? start : h.bytenr.get()).s(" level ").u(h.level).s(" items ").u(nr)
            .s(" free space ").u(uint32_t(node_capacity(ctx) - nr));
    } else {
        t.s("leaf ").u(h.bytenr).s(" items ").u(nr).s(" free space ")
            .i(progs_leaf_free_space(ctx, block));
    }
    t.s(" generation ").u(h.generation).s(" owner ");
    t.p = print_detail::objectid_text(t.p, h.owner, 0);

    const uint64_t raw_flags = h.flags;
    const uint64_t flags = raw_flags & ~HEADER_FLAG_MASK;
    t.s(node ? "\nnode " : "\nleaf ").u(h.bytenr).s(" flags 0x").hex(flags).c('(');
    if (flags & HEADER_FLAG_WRITTEN) t.s("WRITTEN");
    if (flags & HEADER_FLAG_RELOC) t.s(flags & HEADER_FLAG_WRITTEN ? "|RELOC" : "RELOC");
    t.s(") backref revision ").u(raw_flags >> BACKREF_REV_SHIFT);
    if (ctx.csum_headers) {
        static constexpr char digits[] = "0123456789abcdef";
        t.s(" csum 0x");
        const uint32_t n = std::min<uint32_t>(ctx.csum_size, CSUM_SIZE);
        for (uint32_t k = 0; k < n; ++k) t.c(digits[h.csum[k] >> 4]).c(digits[h.csum[k] & 15]);
    }
    t.s("\nfs uuid ");
    format_uuid(h.fsid, t.p);
    t.p += 36;
    t.s("\nchunk uuid ");
    format_uuid(h.chunk_tree_uuid, t.p);
    t.p += 36;
    t.c('\n');
    out.advance(t.p);
}

namespace {

// "\titem N key (...) itemoff N itemsize N\n" is at most this long.
constexpr size_t kItemLineMax = 64 + print_detail::kKeyTextMax;

void print_block_text(Out& out, const PrintContext& ctx, const TreeBlock& block, uint64_t start) {
    print_block_header(out, ctx, block, start);
    const uint32_t nr = block.nritems();
    if (block.is_leaf()) {
        for (uint32_t slot = 0; slot < nr; ++slot) {
            const item& it = block.item(slot);
            const Key key = Key::from_disk(it.key);
            const uint32_t off = it.offset, size = it.size;
            Cursor t{out.reserve(kItemLineMax)};
            t.s("\titem ").u(slot).c(' ');
            t.p = print_detail::key_text(t.p, key);
            t.s(" itemoff ").u(off).s(" itemsize ").u(size).c('\n');
            out.advance(t.p);
            print_item_body(out, ctx, key, block.item_data(slot));
        }
    } else {
        for (uint32_t slot = 0; slot < nr; ++slot) {
            const key_ptr& kp = block.ptr(slot);
            Cursor t{out.reserve(kItemLineMax)};
            t.c('\t');
            t.p = print_detail::key_text(t.p, Key::from_disk(kp.key));
            t.s(" block ").u(kp.blockptr).s(" gen ").u(kp.generation).c('\n');
            out.advance(t.p);
        }
    }
}

}  // namespace

// ---------------------------------------------------------------------------
// JSON

void print_json_string(Out& out, std::string_view s) {
    static constexpr char digits[] = "0123456789abcdef";
    auto escape_byte = [&](uint8_t c) {
        const char e[6] = {'\\', 'u', '0', '0', digits[c >> 4], digits[c & 15]};
        out.append(e, 6);
    };
    out.put('"');
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    size_t k = 0;
    while (k < n) {
        const uint8_t c = p[k];
        if (c < 0x80) {
            if (c == '"' || c == '\\') {
                out.put('\\');
                out.put(char(c));
            } else if (c == '\n') {
                out.lit("\\n");
            } else if (c == '\t') {
                out.lit("\\t");
            } else if (c < 0x20 || c == 0x7f) {
                escape_byte(c);
            } else {
                out.put(char(c));
            }
            ++k;
            continue;
        }
        // Length of a well-formed UTF-8 sequence starting here, or 0.
        size_t len = 0;
        if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4;
        bool ok = len && k + len <= n;
        for (size_t j = 1; ok && j < len; ++j) ok = (p[k + j] & 0xc0) == 0x80;
        if (ok && len == 3) {
            const uint8_t c1 = p[k + 1];
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        } else if (ok && len == 4) {
            const uint8_t c1 = p[k + 1];
            ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok) {
            out.append(s.data() + k, len);
            k += len;
        } else {
            escape_byte(c);
            ++k;
        }
    }
    out.put('"');
}

namespace {

// Writes `,"name":value` members of an object already opened by the caller.
class Json {
public:
    explicit Json(Out& out) : out_(out) {}
    Json& name(std::string_view n) {
        put(out_, ",\"");
        put(out_, n);
        put(out_, "\":");
        return *this;
    }
    Json& num(std::string_view n, uint64_t v) {
        name(n);
        put_u(out_, v);
        return *this;
    }
    Json& str(std::string_view n, std::string_view v) {
        name(n);
        print_json_string(out_, v);
        return *this;
    }
    Json& uuid(std::string_view n, const uint8_t* u) {
        name(n);
        out_.put('"');
        put_uuid(out_, u);
        out_.put('"');
        return *this;
    }
    Json& ts(std::string_view n, const format::timespec& t) {
        name(n);
        put(out_, "{\"sec\":");
        put_u(out_, t.sec);
        put(out_, ",\"nsec\":");
        put_u(out_, t.nsec.get());
        out_.put('}');
        return *this;
    }
    Json& key(std::string_view n, const Key& k) {
        name(n);
        key_object(out_, k);
        return *this;
    }
    Json& error(std::string_view msg) { return str("error", msg); }
    Json& too_small(size_t have, size_t need) {
        return error(fmt::format("item too small: {} bytes, need {}", have, need));
    }
    Json& flags(std::string_view n, uint64_t v,
                std::initializer_list<std::pair<uint64_t, std::string_view>> names) {
        name(n);
        out_.put('[');
        bool first = true;
        for (const auto& [bit, nm] : names) {
            if (!(v & bit)) continue;
            if (!first) out_.put(',');
            first = false;
            print_json_string(out_, nm);
        }
        out_.put(']');
        return *this;
    }
    Json& name_or_hidden(std::string_view n, const PrintContext& ctx, std::string_view v) {
        return str(n, ctx.hide_names ? std::string_view("HIDDEN") : v);
    }
    Out& out() { return out_; }

    static void key_object(Out& out, const Key& k) {
        put(out, "{\"objectid\":");
        put_u(out, k.objectid);
        put(out, ",\"type\":\"");
        print_key_type(out, k.objectid, k.type);
        put(out, "\",\"type_id\":");
        put_u(out, k.type);
        put(out, ",\"offset\":");
        put_u(out, k.offset);
        out.put('}');
    }

private:
    Out& out_;
};

// A name inside an item: clipped to the item, whole (no NUL or 255 cut: JSON
// can carry every byte).
std::string_view item_bytes(std::span<const uint8_t> data, size_t off, size_t len) {
    if (off >= data.size()) return {};
    len = std::min(len, data.size() - off);
    return {reinterpret_cast<const char*>(data.data() + off), len};
}

const std::initializer_list<std::pair<uint64_t, std::string_view>> kInodeFlags = {
    {INODE_NODATASUM, "NODATASUM"}, {INODE_NODATACOW, "NODATACOW"},
    {INODE_READONLY, "READONLY"},   {INODE_NOCOMPRESS, "NOCOMPRESS"},
    {INODE_PREALLOC, "PREALLOC"},   {INODE_SYNC, "SYNC"},
    {INODE_IMMUTABLE, "IMMUTABLE"}, {INODE_APPEND, "APPEND"},
    {INODE_NODUMP, "NODUMP"},       {INODE_NOATIME, "NOATIME"},
    {INODE_DIRSYNC, "DIRSYNC"},     {INODE_COMPRESS, "COMPRESS"},
    {INODE_ROOT_ITEM_INIT, "ROOT_ITEM_INIT"},
};
const std::initializer_list<std::pair<uint64_t, std::string_view>> kBgFlags = {
    {BLOCK_GROUP_DATA, "DATA"},       {BLOCK_GROUP_SYSTEM, "SYSTEM"},
    {BLOCK_GROUP_METADATA, "METADATA"}, {BLOCK_GROUP_RAID0, "RAID0"},
    {BLOCK_GROUP_RAID1, "RAID1"},     {BLOCK_GROUP_DUP, "DUP"},
    {BLOCK_GROUP_RAID10, "RAID10"},   {BLOCK_GROUP_RAID5, "RAID5"},
    {BLOCK_GROUP_RAID6, "RAID6"},     {BLOCK_GROUP_RAID1C3, "RAID1C3"},
    {BLOCK_GROUP_RAID1C4, "RAID1C4"},
};

void json_inode_item(Json& j, std::span<const uint8_t> data) {
    const auto* ii = view_at<inode_item>(data);
    if (!ii) {
        j.too_small(data.size(), sizeof(inode_item));
        return;
    }
    j.num("generation", ii->generation).num("transid", ii->transid).num("size", ii->size)
        .num("nbytes", ii->nbytes).num("block_group", ii->block_group).num("mode", ii->mode)
        .num("nlink", ii->nlink).num("uid", ii->uid).num("gid", ii->gid).num("rdev", ii->rdev)
        .num("sequence", ii->sequence).num("flags", ii->flags)
        .flags("flags_names", ii->flags, kInodeFlags).ts("atime", ii->atime)
        .ts("ctime", ii->ctime).ts("mtime", ii->mtime).ts("otime", ii->otime);
}

template <typename Ref>
void json_refs(Json& j, const PrintContext& ctx, std::span<const uint8_t> data) {
    Out& out = j.out();
    j.name("refs");
    out.put('[');
    size_t cur = 0;
    bool first = true;
    std::string_view err;
    while (cur < data.size()) {
        const auto* ref = view_at<Ref>(data, cur);
        if (!ref) {
            err = "ref header runs past the item end";
            break;
        }
        if (!first) out.put(',');
        first = false;
        put(out, "{\"index\":");
        put_u(out, ref->index);
        if constexpr (std::is_same_v<Ref, inode_extref>) {
            put(out, ",\"parent\":");
            put_u(out, ref->parent_objectid);
        }
        Json inner(out);
        const uint32_t name_len = ref->name_len;
        inner.name_or_hidden("name", ctx, item_bytes(data, cur + sizeof(Ref), name_len));
        out.put('}');
        cur += sizeof(Ref) + name_len;
        if (cur > data.size()) err = "name runs past the item end";
    }
    out.put(']');
    if (!err.empty()) j.error(err);
}

void json_dir_item(Json& j, const PrintContext& ctx, std::span<const uint8_t> data) {
    Out& out = j.out();
    j.name("entries");
    out.put('[');
    size_t cur = 0;
    bool first = true;
    std::string_view err;
    while (cur < data.size()) {
        const auto* di = view_at<dir_item>(data, cur);
        if (!di) {
            err = "dir item header runs past the item end";
            break;
        }
        if (!first) out.put(',');
        first = false;
        const uint32_t name_len = di->name_len, data_len = di->data_len;
        put(out, "{\"location\":");
        Json::key_object(out, Key::from_disk(di->location));
        Json e(out);
        e.num("type", di->type);
        static constexpr std::string_view types[] = {"UNKNOWN", "FILE", "DIR",     "CHRDEV",
                                                     "BLKDEV",  "FIFO", "SOCK",    "SYMLINK",
                                                     "XATTR"};
        e.str("type_name", di->type < std::size(types) ? types[di->type] : "UNKNOWN");
        e.num("transid", di->transid);
        const size_t name_off = cur + sizeof(dir_item);
        e.name_or_hidden("name", ctx, item_bytes(data, name_off, name_len));
        e.name_or_hidden("data", ctx, item_bytes(data, name_off + name_len, data_len));
        out.put('}');
        cur = name_off + name_len + data_len;
        if (cur > data.size()) err = "name or data runs past the item end";
    }
    out.put(']');
    if (!err.empty()) j.error(err);
}

void json_root_item(Json& j, std::span<const uint8_t> data) {
    root_item ri;
    std::memset(&ri, 0, sizeof(ri));
    std::memcpy(&ri, data.data(), std::min(data.size(), sizeof(ri)));
    j.num("generation", ri.generation).num("root_dirid", ri.root_dirid).num("bytenr", ri.bytenr)
        .num("byte_limit", ri.byte_limit).num("bytes_used", ri.bytes_used)
        .num("last_snapshot", ri.last_snapshot).num("flags", ri.flags).num("refs", ri.refs)
        .key("drop_progress", Key::from_disk(ri.drop_progress)).num("drop_level", ri.drop_level)
        .num("level", ri.level).num("generation_v2", ri.generation_v2);
    if (ri.generation.get() != ri.generation_v2.get()) return;
    j.uuid("uuid", ri.uuid).uuid("parent_uuid", ri.parent_uuid)
        .uuid("received_uuid", ri.received_uuid).num("ctransid", ri.ctransid)
        .num("otransid", ri.otransid).num("stransid", ri.stransid).num("rtransid", ri.rtransid)
        .ts("ctime", ri.ctime).ts("otime", ri.otime).ts("stime", ri.stime).ts("rtime", ri.rtime);
}

void json_extent_item(Json& j, const Key& key, std::span<const uint8_t> data) {
    const auto* ei = view_at<extent_item>(data);
    if (!ei) {
        j.too_small(data.size(), sizeof(extent_item));
        return;
    }
    const uint64_t flags = ei->flags;
    j.num("refs", ei->refs).num("generation", ei->generation).num("flags", flags)
        .flags("flags_names", flags,
               {{EXTENT_FLAG_DATA, "DATA"},
                {EXTENT_FLAG_TREE_BLOCK, "TREE_BLOCK"},
                {BLOCK_FLAG_FULL_BACKREF, "FULL_BACKREF"}});
    size_t ptr = sizeof(extent_item);
    if (key.type == METADATA_ITEM_KEY) {
        j.num("level", key.offset);
    } else if (flags & EXTENT_FLAG_TREE_BLOCK) {
        const auto* info = view_at<tree_block_info>(data, ptr);
        if (!info) {
            j.too_small(data.size(), ptr + sizeof(tree_block_info));
            return;
        }
        j.key("tree_block_key", Key::from_disk(info->key)).num("level", info->level);
        ptr += sizeof(tree_block_info);
    }
    Out& out = j.out();
    j.name("inline_refs");
    out.put('[');
    std::string err;
    bool first = true;
    while (ptr < data.size()) {
        const uint8_t type = data[ptr];
        size_t len = 0;
        switch (type) {
        case TREE_BLOCK_REF_KEY:
        case SHARED_BLOCK_REF_KEY: len = sizeof(extent_inline_ref); break;
        case EXTENT_DATA_REF_KEY: len = 1 + sizeof(extent_data_ref); break;
        case SHARED_DATA_REF_KEY: len = sizeof(extent_inline_ref) + sizeof(shared_data_ref); break;
        case EXTENT_OWNER_REF_KEY: len = 1 + sizeof(extent_owner_ref); break;
        }
        if (!len) {
            err = fmt::format("unknown inline ref type {} at offset {}", type, ptr);
            break;
        }
        if (data.size() - ptr < len) {
            err = fmt::format("inline ref type {} at offset {} runs past the item end", type, ptr);
            break;
        }
        if (!first) out.put(',');
        first = false;
        put(out, "{\"type\":\"");
        print_key_type(out, 0, type);
        out.put('"');
        Json r(out);
        const uint64_t off = load_le64(data.data() + ptr + 1);
        switch (type) {
        case TREE_BLOCK_REF_KEY: r.num("root", off); break;
        case SHARED_BLOCK_REF_KEY: r.num("parent", off); break;
        case EXTENT_OWNER_REF_KEY: r.num("root", off); break;
        case EXTENT_DATA_REF_KEY: {
            const auto* d = view_at<extent_data_ref>(data, ptr + 1);
            r.num("root", d->root).num("objectid", d->objectid).num("offset", d->offset)
                .num("count", d->count);
            break;
        }
        case SHARED_DATA_REF_KEY:
            r.num("parent", off).num("count", load_le32(data.data() + ptr + 9));
            break;
        }
        out.put('}');
        ptr += len;
    }
    out.put(']');
    if (!err.empty()) j.error(err);
}

void json_file_extent(Json& j, std::span<const uint8_t> data) {
    if (data.size() < FILE_EXTENT_INLINE_DATA_START) {
        j.too_small(data.size(), FILE_EXTENT_INLINE_DATA_START);
        return;
    }
    const uint8_t* p = data.data();
    const uint8_t type = p[20];
    j.num("generation", load_le64(p)).num("ram_bytes", load_le64(p + 8)).num("compression", p[16])
        .num("encryption", p[17]).num("other_encoding", load_le16(p + 18)).num("extent_type", type);
    if (type == FILE_EXTENT_INLINE) {
        j.num("inline_size", data.size() - FILE_EXTENT_INLINE_DATA_START);
        return;
    }
    const auto* fi = view_at<file_extent_item>(data);
    if (!fi) {
        j.too_small(data.size(), sizeof(file_extent_item));
        return;
    }
    j.num("disk_bytenr", fi->disk_bytenr).num("disk_num_bytes", fi->disk_num_bytes)
        .num("offset", fi->offset).num("num_bytes", fi->num_bytes);
}

void json_chunk(Json& j, std::span<const uint8_t> data) {
    const auto* c = view_at<chunk>(data);
    if (!c) {
        j.too_small(data.size(), sizeof(chunk));
        return;
    }
    const uint16_t n = c->num_stripes;
    j.num("length", c->length).num("owner", c->owner).num("stripe_len", c->stripe_len)
        .num("type", c->type).flags("type_names", c->type, kBgFlags).num("io_align", c->io_align)
        .num("io_width", c->io_width).num("sector_size", c->sector_size).num("num_stripes", n)
        .num("sub_stripes", c->sub_stripes);
    Out& out = j.out();
    j.name("stripes");
    out.put('[');
    for (uint32_t k = 0; k < n; ++k) {
        const auto* st = view_at<stripe>(data, offsetof(chunk, stripe) + size_t(k) * sizeof(stripe));
        if (!st) break;
        if (k) out.put(',');
        put(out, "{\"devid\":");
        put_u(out, st->devid);
        Json s(out);
        s.num("offset", st->offset).uuid("dev_uuid", st->dev_uuid);
        out.put('}');
    }
    out.put(']');
    if (n == 0)
        j.error("chunk has no stripes");
    else if (chunk_item_size(n) > data.size())
        j.error(fmt::format("{} stripes do not fit in {} bytes", n, data.size()));
}

void json_balance_args(Json& j, std::string_view n, const disk_balance_args& a) {
    Out& out = j.out();
    j.name(n);
    put(out, "{\"profiles\":");
    put_u(out, a.profiles);
    Json s(out);
    s.num("usage", a.usage).num("devid", a.devid).num("pstart", a.pstart).num("pend", a.pend)
        .num("vstart", a.vstart).num("vend", a.vend).num("target", a.target)
        .num("flags", a.flags).num("limit", a.limit).num("stripes_min", a.stripes_min)
        .num("stripes_max", a.stripes_max);
    out.put('}');
}

template <typename T>
const T* json_need(Json& j, std::span<const uint8_t> data) {
    const T* p = view_at<T>(data);
    if (!p) j.too_small(data.size(), sizeof(T));
    return p;
}

}  // namespace

void print_item_fields_json(Out& out, const PrintContext& ctx, const Key& key,
                            std::span<const uint8_t> data) {
    Json j(out);
    auto kind = [&](std::string_view k) { j.str("kind", k); };
    if (key.type == 0 && key.objectid == FREE_SPACE_OBJECTID) {
        kind("free_space_header");
        if (const auto* h = json_need<free_space_header>(j, data))
            j.key("location", Key::from_disk(h->location)).num("generation", h->generation)
                .num("entries", h->num_entries).num("bitmaps", h->num_bitmaps);
        return;
    }
    switch (key.type) {
    case INODE_ITEM_KEY:
        kind("inode_item");
        json_inode_item(j, data);
        break;
    case INODE_REF_KEY:
        kind("inode_ref");
        json_refs<inode_ref>(j, ctx, data);
        break;
    case INODE_EXTREF_KEY:
        kind("inode_extref");
        json_refs<inode_extref>(j, ctx, data);
        break;
    case DIR_ITEM_KEY:
    case DIR_INDEX_KEY:
    case XATTR_ITEM_KEY:
        kind("dir_item");
        json_dir_item(j, ctx, data);
        break;
    case DIR_LOG_ITEM_KEY:
    case DIR_LOG_INDEX_KEY:
        kind("dir_log");
        if (const auto* d = json_need<dir_log_item>(j, data)) j.num("end", d->end);
        break;
    case ORPHAN_ITEM_KEY: kind("orphan"); break;
    case ROOT_ITEM_KEY:
        kind("root_item");
        json_root_item(j, data);
        break;
    case ROOT_REF_KEY:
    case ROOT_BACKREF_KEY:
        kind("root_ref");
        if (const auto* r = json_need<root_ref>(j, data)) {
            j.num("dirid", r->dirid).num("sequence", r->sequence)
                .name_or_hidden("name", ctx, item_bytes(data, sizeof(root_ref), r->name_len));
            if (sizeof(root_ref) + r->name_len > data.size())
                j.error("name runs past the item end");
        }
        break;
    case EXTENT_ITEM_KEY:
    case METADATA_ITEM_KEY:
        kind("extent_item");
        json_extent_item(j, key, data);
        break;
    case TREE_BLOCK_REF_KEY: kind("tree_block_ref"); break;
    case SHARED_BLOCK_REF_KEY: kind("shared_block_ref"); break;
    case EXTENT_DATA_REF_KEY:
        kind("extent_data_ref");
        if (const auto* d = json_need<extent_data_ref>(j, data))
            j.num("root", d->root).num("objectid", d->objectid).num("offset", d->offset)
                .num("count", d->count);
        break;
    case SHARED_DATA_REF_KEY:
        kind("shared_data_ref");
        if (const auto* s = json_need<shared_data_ref>(j, data)) j.num("count", s->count);
        break;
    case EXTENT_CSUM_KEY: {
        kind("extent_csum");
        const uint32_t cs = ctx.csum_size;
        const uint64_t count = cs ? data.size() / cs : 0;
        const uint64_t length = count * ctx.sectorsize;
        j.num("start", key.offset).num("end", key.offset + length).num("length", length);
        if (ctx.csum_items && cs) {
            j.name("csums");
            out.put('[');
            for (uint64_t k = 0; k < count; ++k) {
                if (k) out.put(',');
                out.put('"');
                put_hex_bytes(out, data.data() + k * cs, cs);
                out.put('"');
            }
            out.put(']');
        }
        break;
    }
    case EXTENT_DATA_KEY:
        kind("file_extent");
        json_file_extent(j, data);
        break;
    case BLOCK_GROUP_ITEM_KEY:
        kind("block_group");
        if (const auto* bg = json_need<block_group_item>(j, data))
            j.num("used", bg->used).num("chunk_objectid", bg->chunk_objectid)
                .num("flags", bg->flags).flags("flags_names", bg->flags, kBgFlags);
        break;
    case FREE_SPACE_INFO_KEY:
        kind("free_space_info");
        if (const auto* f = json_need<free_space_info>(j, data))
            j.num("extent_count", f->extent_count).num("flags", f->flags);
        break;
    case FREE_SPACE_EXTENT_KEY: kind("free_space_extent"); break;
    case FREE_SPACE_BITMAP_KEY: kind("free_space_bitmap"); break;
    case CHUNK_ITEM_KEY:
        kind("chunk");
        json_chunk(j, data);
        break;
    case DEV_ITEM_KEY:
        kind("dev_item");
        if (const auto* d = json_need<dev_item>(j, data))
            j.num("devid", d->devid).num("total_bytes", d->total_bytes)
                .num("bytes_used", d->bytes_used).num("io_align", d->io_align)
                .num("io_width", d->io_width).num("sector_size", d->sector_size)
                .num("type", d->type).num("generation", d->generation)
                .num("start_offset", d->start_offset).num("dev_group", d->dev_group)
                .num("seek_speed", d->seek_speed).num("bandwidth", d->bandwidth)
                .uuid("uuid", d->uuid).uuid("fsid", d->fsid);
        break;
    case DEV_EXTENT_KEY:
        kind("dev_extent");
        if (const auto* d = json_need<dev_extent>(j, data))
            j.num("chunk_tree", d->chunk_tree).num("chunk_objectid", d->chunk_objectid)
                .num("chunk_offset", d->chunk_offset).num("length", d->length)
                .uuid("chunk_tree_uuid", d->chunk_tree_uuid);
        break;
    case QGROUP_STATUS_KEY:
        kind("qgroup_status");
        if (data.size() < QGROUP_STATUS_V1_SIZE) {
            j.too_small(data.size(), QGROUP_STATUS_V1_SIZE);
        } else {
            const uint8_t* p = data.data();
            j.num("version", load_le64(p)).num("generation", load_le64(p + 8))
                .num("flags", load_le64(p + 16)).num("rescan", load_le64(p + 24));
            if (data.size() >= sizeof(qgroup_status_item)) j.num("enable_gen", load_le64(p + 32));
        }
        break;
    case QGROUP_INFO_KEY:
        kind("qgroup_info");
        if (const auto* q = json_need<qgroup_info_item>(j, data))
            j.num("generation", q->generation).num("rfer", q->rfer).num("rfer_cmpr", q->rfer_cmpr)
                .num("excl", q->excl).num("excl_cmpr", q->excl_cmpr);
        break;
    case QGROUP_LIMIT_KEY:
        kind("qgroup_limit");
        if (const auto* q = json_need<qgroup_limit_item>(j, data))
            j.num("flags", q->flags).num("max_rfer", q->max_rfer).num("max_excl", q->max_excl)
                .num("rsv_rfer", q->rsv_rfer).num("rsv_excl", q->rsv_excl);
        break;
    case QGROUP_RELATION_KEY: kind("qgroup_relation"); break;
    case UUID_KEY_SUBVOL:
    case UUID_KEY_RECEIVED_SUBVOL:
        kind("uuid");
        j.name("subvol_ids");
        out.put('[');
        for (size_t off = 0; off + 8 <= data.size(); off += 8) {
            if (off) out.put(',');
            put_u(out, load_le64(data.data() + off));
        }
        out.put(']');
        if (data.size() % 8) j.error("size is not a multiple of 8");
        break;
    case STRING_ITEM_KEY:
        kind("string");
        j.str("data", item_bytes(data, 0, data.size()));
        break;
    case PERSISTENT_ITEM_KEY:
        if (key.objectid == DEV_STATS_OBJECTID) {
            kind("dev_stats");
            j.name("values");
            out.put('[');
            for (size_t off = 0; off + 8 <= data.size(); off += 8) {
                if (off) out.put(',');
                put_u(out, load_le64(data.data() + off));
            }
            out.put(']');
        } else {
            kind("unknown");
        }
        break;
    case TEMPORARY_ITEM_KEY:
        if (key.objectid == BALANCE_OBJECTID) {
            kind("balance");
            if (const auto* b = json_need<balance_item>(j, data)) {
                j.num("flags", b->flags);
                json_balance_args(j, "data", b->data);
                json_balance_args(j, "meta", b->meta);
                json_balance_args(j, "sys", b->sys);
            }
        } else {
            kind("unknown");
        }
        break;
    case DEV_REPLACE_KEY:
        kind("dev_replace");
        if (const auto* r = json_need<dev_replace_item>(j, data))
            j.num("src_devid", r->src_devid).num("cursor_left", r->cursor_left)
                .num("cursor_right", r->cursor_right)
                .num("cont_reading_from_srcdev_mode", r->cont_reading_from_srcdev_mode)
                .num("replace_state", r->replace_state).num("time_started", r->time_started)
                .num("time_stopped", r->time_stopped).num("num_write_errors", r->num_write_errors)
                .num("num_uncorrectable_read_errors", r->num_uncorrectable_read_errors);
        break;
    case VERITY_DESC_ITEM_KEY:
        kind("verity_desc");
        if (key.offset == 0) {
            if (const auto* v = json_need<verity_descriptor_item>(j, data))
                j.num("size", v->size).num("encryption", v->encryption);
        }
        break;
    case VERITY_MERKLE_ITEM_KEY: kind("verity_merkle"); break;
    case RAID_STRIPE_KEY:
        kind("raid_stripe");
        j.name("strides");
        out.put('[');
        for (size_t off = 0; off + sizeof(raid_stride) <= data.size(); off += sizeof(raid_stride)) {
            const auto* s = view_at<raid_stride>(data, off);
            if (off) out.put(',');
            put(out, "{\"devid\":");
            put_u(out, s->devid);
            put(out, ",\"physical\":");
            put_u(out, s->physical);
            out.put('}');
        }
        out.put(']');
        break;
    default: kind("unknown"); break;
    }
}

void print_item_json(Out& out, const PrintContext& ctx, const TreeBlock& leaf, uint32_t slot) {
    const Key key = leaf.key(slot);
    put(out, "{\"slot\":");
    put_u(out, slot);
    put(out, ",\"key\":");
    Json::key_object(out, key);
    put(out, ",\"itemoff\":");
    put_u(out, leaf.item_offset(slot));
    put(out, ",\"itemsize\":");
    put_u(out, leaf.item_size(slot));
    print_item_fields_json(out, ctx, key, leaf.item_data(slot));
    out.put('}');
}

namespace {

void print_block_json(Out& out, const PrintContext& ctx, const TreeBlock& block, uint64_t start) {
    const header& h = block.header();
    const uint32_t nr = block.nritems();
    put(out, "{\"bytenr\":");
    put_u(out, start ? start : h.bytenr.get());
    Json j(out);
    j.num("level", h.level).num("nritems", nr);
    if (block.is_leaf()) {
        j.name("free_space");
        put_i(out, progs_leaf_free_space(ctx, block));
    } else {
        j.num("free_space", uint32_t(node_capacity(ctx) - nr));
    }
    j.num("generation", h.generation).num("owner", h.owner).name("owner_name");
    out.put('"');
    print_tree_name(out, h.owner);
    out.put('"');
    const uint64_t flags = h.flags;
    j.num("flags", flags & ~HEADER_FLAG_MASK)
        .flags("flags_names", flags, {{HEADER_FLAG_WRITTEN, "WRITTEN"}, {HEADER_FLAG_RELOC, "RELOC"}})
        .num("backref_rev", flags >> BACKREF_REV_SHIFT)
        .uuid("fsid", h.fsid)
        .uuid("chunk_tree_uuid", h.chunk_tree_uuid);
    if (ctx.csum_headers) {
        j.name("csum");
        out.put('"');
        put_hex_bytes(out, h.csum, std::min<uint32_t>(ctx.csum_size, CSUM_SIZE));
        out.put('"');
    }
    if (block.is_leaf()) {
        j.name("items");
        out.put('[');
        for (uint32_t slot = 0; slot < nr; ++slot) {
            if (slot) out.put(',');
            print_item_json(out, ctx, block, slot);
        }
    } else {
        j.name("ptrs");
        out.put('[');
        for (uint32_t slot = 0; slot < nr; ++slot) {
            if (slot) out.put(',');
            put(out, "{\"key\":");
            Json::key_object(out, block.key(slot));
            put(out, ",\"blockptr\":");
            put_u(out, block.blockptr(slot));
            put(out, ",\"generation\":");
            put_u(out, block.ptr_generation(slot));
            out.put('}');
        }
    }
    put(out, "]}\n");
}

}  // namespace

void print_tree_block(Out& out, const PrintContext& ctx, const TreeBlock& block, uint64_t start) {
    if (ctx.format == PrintFormat::json)
        print_block_json(out, ctx, block, start);
    else
        print_block_text(out, ctx, block, start);
    out.write({});  // lets Out flush once its buffer is large
}

}  // namespace btk
