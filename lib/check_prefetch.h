// Tree block reads for btk check: every copy of a block is read and verified
// (checksum, bytenr, fsid), on worker threads ahead of the walk.
//
// The walk is depth first. When it is about to descend into a node it hands
// the node's children to want(), in order; they go to the front of the work
// queue, so the workers read what the walk needs next. get() returns a
// finished result, or takes a queued block and reads it on the calling
// thread (the walk never waits behind the queue), or waits for the one
// worker reading it. A read takes a run of wanted blocks at consecutive
// addresses at once (one system call per copy instead of one per block).
// Finished but unclaimed results are bounded: workers pause when too many
// wait. Reads bypass the filesystem's block cache. The second and later
// copies are read into a per-thread scratch buffer and only verified; for
// blocks wanted with first_copy_only they are left to the caller when the
// first copy verifies (and the gate says someone else has time for them).
// (Verifying them in place through a read-only mapping of the device was
// tried twice: page faults, unmapping and TLB shootdowns cost more than the
// copy, even with MADV_POPULATE_READ and batched unmapping.)
#pragma once

#include "fs.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace btk {

// What reading one copy of a block gave.
struct CopyRead {
    enum Kind : uint8_t { ok, read_error, csum, bytenr, fsid } kind = ok;
    int mirror = 0;
    uint64_t found_bytenr = 0;  // for `bytenr`
    std::string error;          // for `read_error`
};

struct BlockRead {
    std::vector<CopyRead> copies;      // every copy read (copies on missing devices are not)
    std::unique_ptr<uint8_t[]> good;   // the first copy that verified, or null
    // Only the first copy was read (it verified; asked for with want(...,
    // true)): the others are still to be verified, by verify_copies().
    bool rest_unread = false;
};

// Blocks read with one system call at most.
constexpr size_t kMaxReadRun = 32;

// Reads and verifies copies from_mirror and up of `count` blocks at
// consecutive addresses (one read per copy when the run allows). Thread-safe.
std::vector<std::vector<CopyRead>> verify_copies(const Filesystem& fs, uint64_t start, size_t count, int from_mirror);

// Reader threads for a machine: one per core besides the two that the walk
// and the subvolume tree thread keep busy, at most 8. A reader on a busy
// core only adds hand-over costs: on 2 cores, `btk check` took 10% longer
// with one reader than with none (bench/bench-check.sh). (The 1-minute load
// average is no guide: it still counts the processes of the minute before.)
unsigned default_readers();

class BlockPrefetcher {
public:
    // threads == 0: no workers; get() reads on the caller's thread (still a
    // run of wanted blocks at once).
    BlockPrefetcher(const Filesystem& fs, unsigned threads);
    ~BlockPrefetcher();
    BlockPrefetcher(const BlockPrefetcher&) = delete;
    BlockPrefetcher& operator=(const BlockPrefetcher&) = delete;

    // Blocks the walk will get() soon, in the order it will. first_copy_only:
    // when a block's first copy verifies, the others are left unread
    // (BlockRead::rest_unread) for someone else to verify.
    void want(std::span<const uint64_t> bytenrs, bool first_copy_only = false);
    BlockRead get(uint64_t bytenr);
    // Asked when a block wanted with first_copy_only is read: false reads
    // every copy after all (nobody else has time to verify them). Set before
    // any want(); called on reading threads.
    void set_first_copy_gate(std::function<bool()> gate) { gate_ = std::move(gate); }
    // Reads every copy of a block now (what the workers run).
    BlockRead read_now(uint64_t bytenr) const;
    // The same for `count` blocks at consecutive addresses: one vectored read
    // per copy when they lie in one chunk without striping, else one by one.
    std::vector<BlockRead> read_run(uint64_t start, size_t count, bool first_copy_only = false) const;

private:
    enum class State : uint8_t { queued, running, done };
    struct Slot {
        State state = State::queued;
        bool first_only = false;
        BlockRead result;
    };
    void work();
    // Under mu_: marks `start` and the queued blocks right after it running;
    // returns how many.
    size_t take_run(uint64_t start);
    // Under mu_: stores the results of a run (all but index `skip`).
    void finish_run(uint64_t start, std::vector<BlockRead>& r, size_t skip);

    const Filesystem& fs_;
    std::function<bool()> gate_;
    std::mutex mu_;
    std::condition_variable cv_work_, cv_done_;
    std::deque<uint64_t> queue_;
    std::unordered_map<uint64_t, Slot> slots_;
    size_t finished_ = 0;  // slots in state done
    unsigned idle_ = 0;          // workers waiting for work
    unsigned main_waiting_ = 0;  // get() waiting for a worker
    bool stop_ = false;
    std::vector<std::thread> workers_;
};

}  // namespace btk
