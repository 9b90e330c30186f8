// Internal state of CheckExtras (check_space.h), shared by check_space.cpp
// (hooks, free space tree, v1 cache) and check_qgroup.cpp (qgroups, extent
// listing). Not part of the library's interface.
#pragma once

#include "check_space.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace btk {

// The key of leaf slot s, read in place (the leaf's item table was checked
// by TreeBlock::parse).
inline const format::disk_key& leaf_key(const TreeBlock& b, uint32_t s) noexcept {
    return reinterpret_cast<const format::item*>(b.raw().data() + sizeof(format::header))[s].key;
}

struct Range {
    uint64_t start, end;  // [start, end)
};

// Appends [start, end) to sorted ranges, merging with the last one when they
// touch or overlap.
inline void add_range(std::vector<Range>& v, uint64_t start, uint64_t end) {
    if (!v.empty() && start <= v.back().end && start >= v.back().start) {
        if (end > v.back().end) v.back().end = end;
        return;
    }
    v.push_back({start, end});
}

// Sorts and merges ranges that touch or overlap.
void normalize_ranges(std::vector<Range>& v);

struct CheckExtras::Impl {
    CheckOptions opts;
    Report report;
    Filesystem* fs = nullptr;
    uint32_t ns = 0, ss = 0;

    // --- walk bookkeeping: which trees were read completely ---------------
    struct Edge {
        uint64_t child, parent, tree;
    };
    std::vector<Edge> edges;
    std::vector<uint64_t> received;  // blocks passed to block()
    std::vector<uint64_t> incomplete;  // trees with an unread block (sorted after the walk)
    bool complete(uint64_t tree) const;
    void compute_incomplete();

    // --- block groups and allocations --------------------------------------
    struct Bg {
        uint64_t start, length, flags, used;
    };
    std::vector<Bg> bgs;
    std::vector<Range> alloc;  // extent and metadata items, coalesced
    void extent_leaf(const TreeBlock& b, bool bg_items);
    void bg_leaf(const TreeBlock& b);
    void bg_item(const TreeBlock& b, uint32_t slot);

    // --- free space tree ---------------------------------------------------
    struct FstInfo {
        uint64_t start, length;
        uint32_t extent_count, flags;
        uint64_t counted = 0;         // free extents found in its items
        size_t first = 0, last = 0;   // its ranges in fst_free [first, last)
        Key key;
    };
    bool fst_root = false;  // the root tree has a free space tree
    std::vector<FstInfo> infos;
    std::vector<Range> fst_free;
    uint64_t fst_prev_end = 0;         // end of the last free item inside the current info
    bool fst_run_open = false;         // the last bitmap ended with a set bit at fst_prev_end
    void fst_leaf(const TreeBlock& b);
    void fst_item(const TreeBlock& b, uint32_t slot);
    void fst_close_info();
    void check_fst();
    void compare_free(const Bg& bg, const std::vector<Range>& have, size_t hb, size_t he, bool cache);
    std::vector<Range> supers;  // super_stripes(), once computed
    bool supers_done = false;
    const std::vector<Range>& super_stripes();

    // --- v1 space cache (root tree) ----------------------------------------
    struct CacheHeader {
        uint64_t bg_start, ino, generation, entries, bitmaps;
    };
    struct CacheInode {
        uint64_t generation = 0, size = 0, flags = 0;
        struct Ext {
            uint64_t file_off, disk_bytenr, disk_len, offset, len;
            uint8_t type, compression;
        };
        std::vector<Ext> exts;
    };
    std::vector<CacheHeader> cache_headers;
    std::map<uint64_t, CacheInode> cache_inodes;
    void root_leaf(const TreeBlock& b);
    void check_space_cache();
    void cache_problem(uint64_t bg_start, std::string problem);
    void check_cache_of(const Bg& bg, const CacheHeader& h, const CacheInode& ino);

    // --- qgroups -------------------------------------------------------------
    bool quota_root = false;  // the root tree has a quota tree
    bool want_qgroups() const { return quota_root || opts.qgroup_report || opts.subvol_extents; }
    struct SubvolRoot {
        uint64_t id, bytenr, refs;
    };
    std::vector<SubvolRoot> subvols;  // from the root tree's ROOT_ITEMs
    struct FileUse {
        uint64_t disk_bytenr, disk_len, leaf;
    };
    std::vector<FileUse> uses;  // file extent items of fs tree leaves
    struct QInfo {
        uint64_t id, rfer, excl;
    };
    std::vector<QInfo> qinfos;
    std::vector<std::pair<uint64_t, uint64_t>> relations;  // (member, parent)
    std::optional<uint64_t> qstatus_flags;
    uint64_t qstatus_rescan = 0, qstatus_generation = 0;
    void fs_leaf(const TreeBlock& b);
    void quota_leaf(const TreeBlock& b);
    void check_qgroups(CheckSummary& sum);

    // --- progress ---------------------------------------------------------
    uint64_t pblocks = 0;
    void tick(const char* phase);

    Finding mk(FindingKind k) const {
        Finding f;
        f.kind = k;
        return f;
    }
};

std::string key_text(const Key& k);
std::string qgroup_text(uint64_t qgroupid);

}  // namespace btk
