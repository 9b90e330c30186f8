// btk check, part two: the contents of subvolume trees, the root tree's
// subvolume links, the uuid tree, the csum tree and (optionally) the data.
//
// The main checker (check.cpp) walks every tree once and hands each leaf to
// FsChecker::leaf in key order; FsChecker keeps per tree only the state of
// the inode being streamed plus compact records for cross-inode checks (one
// per name link), and per filesystem compact records for the cross-tree
// checks done in finish(). Blocks shared between snapshots are read again
// through shared_block(): every subvolume is checked as a whole tree.
//
// The subvolume trees' items are checked on a worker thread while the walk
// goes on. Of a subtree a snapshot shares with a tree that keeps a link log,
// the walk reads the edges and the worker replays the rest from the log;
// other shared blocks the worker reads again itself. Data checksums
// (--check-data-csum) are verified on more workers fed from the csum tree
// items. Their findings are reported by finish(), in a fixed order.
#pragma once

#include "check_findings.h"
#include "check_prefetch.h"
#include "fs.h"
#include "tree_block.h"

#include <functional>
#include <memory>
#include <optional>

namespace btk {

struct FsCheckConfig {
    bool check_data_csum = false;
    unsigned data_threads = 0;  // 0: one per core, at most 4
    // Inodes wholly inside a subtree shared with an earlier clean tree are
    // taken from its link log (false: their items are read again; tests).
    bool reuse_shared = true;
};

class FsChecker {
public:
    using Report = std::function<void(Finding)>;
    FsChecker(Filesystem& fs, const FsCheckConfig& cfg, Report report);
    ~FsChecker();
    FsChecker(const FsChecker&) = delete;
    FsChecker& operator=(const FsChecker&) = delete;

    // Before and after tree `tree` (rooted at `root`) is walked.
    void begin_tree(uint64_t tree, const RootRef& root);
    void end_tree(uint64_t tree);
    // A leaf of `tree`, in key order (subvolume trees' leaves are handed to
    // a worker thread, hence the reference count). verify_seq != 0: only the
    // first copy was verified; if the leaf goes to the worker (returns true),
    // the worker verifies the others and keeps their problems, with this
    // number, for stop_worker().
    bool leaf(uint64_t tree, const BlockRef& leaf, uint64_t verify_seq = 0);
    // The worker verifies the copies after the first of a block whose first
    // copy the walk verified (a leaf that leaf() did not take), and keeps
    // their problems, with the walk's sequence number `seq`, for stop_worker().
    void verify_later(uint64_t tree, uint64_t bytenr, uint64_t seq);
    // Whether the walk verified a block's first copy (checksum, bytenr, fsid
    // and key order): such blocks it reads again for snapshots are not
    // verified again. Called on the main thread.
    void set_first_copy_verified(std::function<bool(uint64_t)> f);
    // The worker keeps up with the walk (it could take more). Thread-safe.
    bool worker_has_room() const noexcept;
    // A copy the worker found bad.
    struct CopyResult {
        uint64_t seq, tree, bytenr;
        CopyRead copy;
    };
    // After the walk: waits for the worker; the bad copies it found.
    std::vector<CopyResult> stop_worker();
    // The walk of `tree` met a block it had already read for tree
    // `first_tree` (0: for a walk that handed no items over).
    void shared_block(uint64_t tree, uint64_t bytenr, int level, uint64_t generation,
                      const std::optional<Key>& first_key, uint64_t first_tree);
    // Sees every finding: when the walk could not use a block of a tree, the
    // checks of that tree that need every item are skipped (they would only
    // echo the block's problem).
    void block_problem(const Finding& f);
    // After the walk: cross-tree checks, then the data verification results.
    void finish();

    uint64_t data_bytes_verified() const noexcept;
    uint64_t reused_inodes() const noexcept;
    std::vector<uint64_t> logged_trees() const;
    uint64_t worker_copy_blocks() const noexcept;  // blocks whose other copies the worker verified

private:
    struct Impl;
    std::unique_ptr<Impl> p_;
};

}  // namespace btk
