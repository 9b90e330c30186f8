// btk check: offline verification of a whole filesystem.
//
// The checker reads every superblock copy, the chunk tree, and every tree
// reachable from the root tree once (depth first, one block per level in
// memory), checking each block as it is read and streaming the items of the
// chunk, device, extent and block group trees into cross-checks. Per tree
// block it keeps a few words (bytenr, parent, owner) so the extent tree's
// backrefs can be compared with the pointers actually found, and per file
// extent item and data backref one small record (address, root, inode,
// offset), sorted by address afterwards: memory grows with the metadata, not
// with the number of files or their size. Nothing is kept per inode.
//
// Findings go to a callback as they are made; the caller decides how to print
// them. See check_findings.h for the table of findings.
#pragma once

#include "check_findings.h"
#include "result.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace btk {

// Where the check is, for a progress display.
struct CheckProgress {
    const char* phase = "";
    uint64_t blocks = 0;       // tree blocks read so far
    uint64_t bytes = 0;        // their bytes
    uint64_t total_bytes = 0;  // estimated metadata bytes in all (0: not known yet)
};

struct CheckOptions {
    int super_mirror = -1;               // -1: the primary copy (falls back to a valid mirror)
    bool backup_root = false;            // use the newest usable backup root
    std::optional<uint64_t> tree_root;   // use this root tree block
    size_t cache_bytes = 64ull << 20;
    bool check_data_csum = false;        // read and verify every checksummed data block
    bool reuse_shared = true;            // inodes inside snapshot-shared subtrees from the earlier tree's links
    int threads = -1;                    // tree block readers besides the walk: -1 cores minus 2 (at most 8), 0 none
    // Who verifies the other copies of leaves (of trees taller than a leaf)
    // whose first copy is good: the subvolume tree thread when at most one
    // batch waits for it (auto), always the walk, or always that thread (the
    // last two for tests).
    enum class CopyVerifier : uint8_t { automatic, walk, worker } copy_verifier = CopyVerifier::automatic;
    bool qgroup_report = false;          // list every qgroup's counts (verified anyway when quotas are on)
    std::optional<uint64_t> subvol_extents;  // list the extents of this subvolume with their sharing
    // Called every few hundred tree blocks and at each phase change.
    std::function<void(const CheckProgress&)> progress;
};

// One qgroup: what the check computed and what the quota tree says.
struct QgroupCount {
    uint64_t qgroupid = 0;  // level << 48 | id
    uint64_t rfer = 0, excl = 0;
    bool on_disk = false;   // the quota tree has an info item for it
    uint64_t disk_rfer = 0, disk_excl = 0;
};

// One extent (a tree block or a data extent) and the subvolumes reaching it.
struct SubvolExtent {
    uint64_t bytenr = 0, length = 0;
    std::vector<uint64_t> roots;
};

struct CheckSummary {
    uint64_t errors = 0;
    uint64_t warnings = 0;
    uint64_t tree_blocks = 0;   // distinct tree blocks read
    uint64_t bytes_used = 0;    // sum of extent sizes in the extent tree
    std::string fsid;           // text UUID of the filesystem
    uint64_t data_bytes_verified = 0;  // with check_data_csum
    uint64_t reused_inodes = 0;  // inodes with links, taken from an earlier tree's log (CheckOptions::reuse_shared)
    std::vector<uint64_t> logged_trees;  // trees whose link log was kept for later trees
    uint64_t worker_copy_blocks = 0;     // blocks whose other copies the subvolume tree thread verified
    // Qgroups (with quotas on or CheckOptions::qgroup_report); the note says
    // why they were not verified ("" when they were).
    bool qgroups_computed = false;
    std::string qgroup_note;
    std::vector<QgroupCount> qgroups;
    std::vector<SubvolExtent> subvol_extents;  // CheckOptions::subvol_extents
};

using FindingSink = std::function<void(const Finding&)>;
// Called when a stage starts: (number, total, description).
using StageSink = std::function<void(int, int, const char*)>;

// Checks the filesystem on `paths` (all its devices). Returns an error only
// when the check could not run at all (no device, no usable superblock,
// unsupported format); every problem in the filesystem is a finding.
Result<CheckSummary> check_filesystem(const std::vector<std::string>& paths, const CheckOptions& opts,
                                      const FindingSink& on_finding, const StageSink& on_stage = {});

}  // namespace btk
