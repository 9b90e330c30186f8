// The space and qgroup part of btk check: the free space tree (or the v1
// space cache), qgroup accounting, and the per-subvolume extent listing.
//
// The checker's tree walk feeds it through three hooks, so no tree is read
// twice:
//   edge()   every pointer the walk follows (parent 0: a tree's root block);
//   block()  every block that was read, verified and is descended into;
//   finish() after the walk: the cross-checks, reported as findings.
//
// What is kept: the free space tree's ranges (coalesced), the allocated
// ranges of the extent tree (coalesced: adjacent extents are one range), the
// block groups, the tree's edges (a few words per tree block), and, when
// qgroups are verified or extents listed, one record per file extent item
// of a unique leaf. All of it grows with the metadata, not with the data.
//
// Qgroups are computed from the tree structure, not from the extent tree's
// backrefs alone: a keyed backref names one root, yet the block is also
// reached from every snapshot that shares one of its ancestors (implicit
// sharing). So "roots of a block" is the set of subvolume trees from whose
// root block the walk reached it, memoized per block through its parents.
#pragma once

#include "check.h"
#include "fs.h"
#include "tree_block.h"

#include <cstdint>
#include <functional>
#include <memory>

namespace btk {

class CheckExtras {
public:
    using Report = std::function<void(Finding)>;
    CheckExtras(const CheckOptions& opts, Report report);
    ~CheckExtras();
    CheckExtras(const CheckExtras&) = delete;
    CheckExtras& operator=(const CheckExtras&) = delete;

    // Called once the filesystem is open, before the walk.
    void start(Filesystem& fs);
    void edge(uint64_t tree, uint64_t child, uint64_t parent);
    void block(uint64_t tree, const TreeBlock& b);
    // The cross-checks; fills the summary's qgroup and extent listings.
    void finish(CheckSummary& sum);

    struct Impl;

private:
    std::unique_ptr<Impl> d_;
};

}  // namespace btk
