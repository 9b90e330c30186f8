// Item parsers and validators of the fs tree checker that need no
// filesystem (unit-tested on their own).
#include "check_fs_internal.h"

#include "csum.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace btk::fsck {

using namespace format;

std::string key_text(const Key& k) { return fmt::format("({} {} {})", k.objectid, k.type, k.offset); }

const char* name_problem(std::string_view name) noexcept {
    if (name.empty()) return "the name is empty";
    if (name.size() > NAME_LEN) return "the name is longer than 255 bytes";
    // One pass over the (short) name for both bytes; '/' is reported first.
    bool slash = false, nul = false;
    for (const char c : name) {
        slash |= c == '/';
        nul |= c == '\0';
    }
    if (slash) return "the name contains '/'";
    if (nul) return "the name contains a NUL byte";
    return nullptr;
}

uint64_t name_fp(std::string_view name) noexcept {
    // The low half: a multiply-xorshift hash, word by word (a crc with
    // another seed would be an affine function of the high half).
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ name.size();
    auto mix = [&](uint64_t w) {
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    };
    size_t i = 0;
    for (; i + 8 <= name.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, name.data() + i, 8);
        mix(w);
    }
    if (i < name.size()) {
        uint64_t w = 0;
        std::memcpy(&w, name.data() + i, name.size() - i);
        mix(w);
    }
    h = (h ^ (h >> 32)) * 0xc4ceb9fe1a85ec53ULL;
    return (uint64_t(uint32_t(name_hash(name))) << 32) | uint32_t(h >> 32);
}

std::string name_text(std::string_view name) { return json_escape(name); }

bool parse_dir_entries(std::span<const uint8_t> item, std::vector<DirEntry>& entries) {
    entries.clear();
    return for_each_dir_entry(item, [&](const DirEntry& e) { entries.push_back(e); });
}

bool parse_inode_refs(std::span<const uint8_t> item, uint64_t parent, std::vector<RefEntry>& out) {
    out.clear();
    size_t p = 0;
    while (p < item.size()) {
        const auto* r = view_at<inode_ref>(item, p);
        if (!r) return false;
        const size_t body = p + sizeof(inode_ref), nl = r->name_len;
        if (item.size() - body < nl) return false;
        out.push_back({parent, r->index, std::string_view(reinterpret_cast<const char*>(item.data() + body), nl)});
        p = body + nl;
    }
    return true;
}

bool parse_inode_extrefs(std::span<const uint8_t> item, std::vector<RefEntry>& out) {
    out.clear();
    size_t p = 0;
    while (p < item.size()) {
        const auto* r = view_at<inode_extref>(item, p);
        if (!r) return false;
        const size_t body = p + sizeof(inode_extref), nl = r->name_len;
        if (item.size() - body < nl) return false;
        out.push_back({r->parent_objectid, r->index,
                       std::string_view(reinterpret_cast<const char*>(item.data() + body), nl)});
        p = body + nl;
    }
    return true;
}

bool parse_file_extent(uint64_t key_offset, std::span<const uint8_t> item, uint32_t ss, FileExtentInfo& fe,
                       std::vector<std::string>& problems) {
    fe = {};
    if (item.size() < FILE_EXTENT_INLINE_DATA_START) {
        problems.push_back(fmt::format("item size {} is too small", item.size()));
        return false;
    }
    auto u64 = [&](size_t off) { return load_le64(item.data() + off); };
    fe.ram_bytes = u64(offsetof(file_extent_item, ram_bytes));
    fe.compression = item[offsetof(file_extent_item, compression)];
    fe.type = item[offsetof(file_extent_item, type)];
    const uint8_t encryption = item[offsetof(file_extent_item, encryption)];
    const uint16_t other = load_le16(item.data() + offsetof(file_extent_item, other_encoding));
    if (fe.compression > COMPRESS_ZSTD) problems.push_back(fmt::format("unknown compression type {}", fe.compression));
    if (encryption != 0) problems.push_back(fmt::format("unknown encryption type {}", encryption));
    if (other != 0) problems.push_back(fmt::format("unknown other_encoding {}", other));
    // The sector size is a power of two on any filesystem that opened (a
    // mask, not a division per field); any other value still works.
    const bool pow2 = std::has_single_bit(ss);
    auto rem = [&](uint64_t v) { return pow2 ? v & (ss - 1) : v % ss; };
    auto round_up = [&](uint64_t v) { return rem(v) ? v + (ss - rem(v)) : v; };
    if (fe.type == FILE_EXTENT_INLINE) {
        const uint64_t len = item.size() - FILE_EXTENT_INLINE_DATA_START;
        if (key_offset != 0) problems.push_back("an inline extent must be at file offset 0");
        if (fe.compression == COMPRESS_NONE && len != fe.ram_bytes)
            problems.push_back(fmt::format("inline data is {} bytes, ram_bytes says {}", len, fe.ram_bytes));
        if (fe.ram_bytes > ss)
            problems.push_back(fmt::format("inline extent of {} bytes, more than the sector size {}", fe.ram_bytes, ss));
        fe.num_bytes = fe.ram_bytes;
        fe.nbytes = fe.ram_bytes;
        const uint64_t r = round_up(std::min<uint64_t>(fe.ram_bytes, uint64_t(1) << 32));
        fe.end = key_offset > ~0ULL - r ? ~0ULL : key_offset + r;
        return true;
    }
    if (fe.type != FILE_EXTENT_REG && fe.type != FILE_EXTENT_PREALLOC) {
        problems.push_back(fmt::format("unknown extent type {}", fe.type));
        return false;
    }
    if (item.size() < sizeof(file_extent_item)) {
        problems.push_back(fmt::format("item size {} is too small for a regular extent", item.size()));
        return false;
    }
    fe.disk_bytenr = u64(offsetof(file_extent_item, disk_bytenr));
    fe.disk_num_bytes = u64(offsetof(file_extent_item, disk_num_bytes));
    fe.offset = u64(offsetof(file_extent_item, offset));
    fe.num_bytes = u64(offsetof(file_extent_item, num_bytes));
    const struct {
        const char* name;
        uint64_t v;
    } aligned[] = {{"file offset", key_offset},
                   {"num_bytes", fe.num_bytes},
                   {"disk_bytenr", fe.disk_bytenr},
                   {"disk_num_bytes", fe.disk_num_bytes},
                   {"extent offset", fe.offset}};
    for (const auto& a : aligned)
        if (rem(a.v)) problems.push_back(fmt::format("{} {} is not aligned to the sector size {}", a.name, a.v, ss));
    fe.hole = fe.disk_bytenr == 0;
    if (fe.hole) {
        if (fe.type == FILE_EXTENT_PREALLOC) problems.push_back("a preallocated extent without disk space");
    } else {
        if (fe.type == FILE_EXTENT_PREALLOC && fe.compression != COMPRESS_NONE)
            problems.push_back("a preallocated extent cannot be compressed");
        const uint64_t limit = fe.compression == COMPRESS_NONE ? fe.disk_num_bytes : fe.ram_bytes;
        if (fe.offset > limit || fe.num_bytes > limit - fe.offset)
            problems.push_back(fmt::format("extent offset {} + num_bytes {} is beyond the {} of {} bytes", fe.offset,
                                           fe.num_bytes,
                                           fe.compression == COMPRESS_NONE ? "disk extent" : "uncompressed extent",
                                           limit));
        if (fe.compression == COMPRESS_NONE && fe.ram_bytes != fe.disk_num_bytes)
            problems.push_back(fmt::format("ram_bytes {} differs from disk_num_bytes {} in an uncompressed extent",
                                           fe.ram_bytes, fe.disk_num_bytes));
        fe.nbytes = fe.num_bytes;
    }
    if (key_offset > ~0ULL - fe.num_bytes) {
        problems.push_back("the extent ends beyond the largest file offset");
        fe.end = ~0ULL;
    } else {
        fe.end = key_offset + fe.num_bytes;
    }
    return true;
}

Finding item_finding(FindingKind kind, uint64_t tree, uint64_t bytenr, const Key& key) {
    Finding f;
    f.kind = kind;
    f.tree = tree;
    f.bytenr = bytenr;
    f.key = key;
    return f;
}

Finding item_invalid_finding(uint64_t tree, const TreeBlock& leaf, uint32_t slot, std::string problem) {
    Finding f = item_finding(FindingKind::item_invalid, tree, leaf.bytenr(), leaf.key(slot));
    f.str("tree", tree_name_for_errors(tree))
        .num("bytenr", leaf.bytenr())
        .num("slot", slot)
        .str("key", key_text(leaf.key(slot)))
        .str("problem", std::move(problem));
    return f;
}

const char* ftype_name(uint8_t ft) noexcept {
    switch (ft) {
        case FT_REG_FILE: return "file";
        case FT_DIR: return "directory";
        case FT_CHRDEV: return "char device";
        case FT_BLKDEV: return "block device";
        case FT_FIFO: return "fifo";
        case FT_SOCK: return "socket";
        case FT_SYMLINK: return "symlink";
        case FT_XATTR: return "xattr";
        default: return "unknown type";
    }
}

void add_range(std::vector<Range>& v, uint64_t start, uint64_t end) {
    if (end <= start) return;
    if (!v.empty() && start <= v.back().end && start >= v.back().start) {
        v.back().end = std::max(v.back().end, end);
        return;
    }
    v.push_back({start, end});
}

uint64_t covered_bytes(const std::vector<Range>& cover, uint64_t start, uint64_t end) {
    // The first range ending after start.
    auto it = std::partition_point(cover.begin(), cover.end(), [&](const Range& r) { return r.end <= start; });
    uint64_t got = 0;
    for (size_t i = size_t(it - cover.begin()); i < cover.size() && cover[i].start < end; ++i) {
        const uint64_t s = std::max(start, cover[i].start), e = std::min(end, cover[i].end);
        if (e > s) got += e - s;
    }
    return got;
}

}  // namespace btk::fsck
