#include "super.h"

#include "csum.h"

#include <bit>
#include <cstring>

namespace btk {

using namespace format;

bool super_csum_ok(const super_block& sb) {
    uint8_t c[32];
    const auto* p = reinterpret_cast<const uint8_t*>(&sb);
    csum_compute(sb.csum_type, {p + CSUM_SIZE, SUPER_INFO_SIZE - CSUM_SIZE}, c);
    return std::memcmp(c, sb.csum, csum_size(sb.csum_type)) == 0;
}

void super_update_csum(super_block& sb) {
    auto* p = reinterpret_cast<uint8_t*>(&sb);
    csum_compute(sb.csum_type, {p + CSUM_SIZE, SUPER_INFO_SIZE - CSUM_SIZE}, sb.csum);
}

const uint8_t* super_metadata_fsid(const super_block& sb) {
    return (sb.incompat_flags.get() & FEATURE_INCOMPAT_METADATA_UUID) ? sb.metadata_uuid : sb.fsid;
}

Status check_super_sanity(const super_block& sb) {
    const uint32_t ss = sb.sectorsize, ns = sb.nodesize;
    if (!std::has_single_bit(ss) || ss < 4096 || ss > 65536)
        return corruption("invalid sectorsize {}", ss);
    if (!std::has_single_bit(ns) || ns < ss || ns > MAX_METADATA_BLOCKSIZE)
        return corruption("invalid nodesize {} (sectorsize {})", ns, ss);
    if (!csum_type_known(sb.csum_type)) return make_error(Errc::unsupported, "unknown checksum type {}", sb.csum_type.get());
    if (sb.sys_chunk_array_size > SYSTEM_CHUNK_ARRAY_SIZE)
        return corruption("sys_chunk_array_size {} exceeds {}", sb.sys_chunk_array_size.get(),
                          SYSTEM_CHUNK_ARRAY_SIZE);
    if (sb.root_level >= MAX_LEVEL) return corruption("root level {} too high", sb.root_level);
    if (sb.chunk_root_level >= MAX_LEVEL) return corruption("chunk root level {} too high", sb.chunk_root_level);
    if (sb.root.get() % ss || sb.chunk_root.get() % ss)
        return corruption("root {} or chunk root {} not aligned to sectorsize {}", sb.root.get(),
                          sb.chunk_root.get(), ss);
    if (sb.num_devices == 0) return corruption("num_devices is 0");
    if (sb.total_bytes == 0) return corruption("total_bytes is 0");
    return {};
}

Result<SuperCopy> read_super_copy(const Device& dev, int mirror) {
    SuperCopy c;
    c.mirror = mirror;
    c.bytenr = super_offset(mirror);
    if (dev.size() < c.bytenr + SUPER_INFO_SIZE) {
        c.problem = "beyond the end of the device";
        return c;
    }
    c.present = true;
    BTK_TRY(dev.read(c.bytenr, {reinterpret_cast<uint8_t*>(&c.sb), SUPER_INFO_SIZE}));
    c.magic_ok = c.sb.magic == SUPER_MAGIC;
    if (!c.magic_ok) {
        c.problem = "bad magic";
        return c;
    }
    if (!csum_type_known(c.sb.csum_type)) {
        c.problem = fmt::format("unknown checksum type {}", c.sb.csum_type.get());
        return c;
    }
    c.csum_ok = super_csum_ok(c.sb);
    if (!c.csum_ok) {
        c.problem = "checksum mismatch";
        return c;
    }
    if (c.sb.bytenr != c.bytenr) {
        c.problem = fmt::format("bytenr {} does not match its location {}", c.sb.bytenr.get(), c.bytenr);
        return c;
    }
    if (auto s = check_super_sanity(c.sb); !s) {
        c.problem = s.error().message;
        return c;
    }
    c.valid = true;
    return c;
}

Result<SuperCopy> select_super(const Device& dev, int mirror) {
    if (mirror >= SUPER_MIRROR_MAX)
        return make_error(Errc::invalid_argument, "superblock mirror {} out of range (0..{})", mirror,
                          SUPER_MIRROR_MAX - 1);
    if (mirror >= 0) {
        BTK_ASSIGN(SuperCopy c, read_super_copy(dev, mirror));
        if (!c.valid)
            return corruption("{}: superblock copy {} at {}: {}", dev.path(), mirror, c.bytenr, c.problem);
        return c;
    }
    std::optional<SuperCopy> best;
    std::string first_problem;
    for (int i = 0; i < SUPER_MIRROR_MAX; ++i) {
        BTK_ASSIGN(SuperCopy c, read_super_copy(dev, i));
        if (!c.valid) {
            if (i == 0) first_problem = c.problem;
            continue;
        }
        // Mirrors must describe the same filesystem as the first valid copy.
        if (best && std::memcmp(best->sb.fsid, c.sb.fsid, FSID_SIZE) != 0) continue;
        if (!best || c.sb.generation > best->sb.generation) best = c;
    }
    if (!best)
        return corruption("{}: no valid btrfs superblock found (primary: {})", dev.path(),
                          first_problem.empty() ? "invalid" : first_problem);
    return *best;
}

}  // namespace btk
