#include "check_prefetch.h"

#include "csum.h"

#include <algorithm>
#include <cstring>

namespace btk {

using namespace format;

namespace {

// Finished results waiting for the walk, at most (16 MiB at 16 KiB nodes).
constexpr size_t kMaxFinished = 1024;

}  // namespace

BlockPrefetcher::BlockPrefetcher(const Filesystem& fs, unsigned threads) : fs_(fs) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

BlockPrefetcher::~BlockPrefetcher() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_work_.notify_all();
    for (auto& t : workers_) t.join();
}

void BlockPrefetcher::want(std::span<const uint64_t> bytenrs) {
    if (workers_.empty() || bytenrs.empty()) return;
    {
        std::lock_guard lk(mu_);
        // Front of the queue, first child first: depth-first order.
        for (size_t i = bytenrs.size(); i-- > 0;) {
            if (!slots_.try_emplace(bytenrs[i]).second) continue;
            queue_.push_front(bytenrs[i]);
        }
    }
    cv_work_.notify_all();
}

BlockRead BlockPrefetcher::get(uint64_t bytenr) {
    if (!workers_.empty()) {
        std::unique_lock lk(mu_);
        auto it = slots_.find(bytenr);
        if (it != slots_.end()) {
            if (it->second.state == State::queued) {
                // Not started: read it here rather than wait behind the queue
                // (the worker that pops it finds no slot and skips it).
                slots_.erase(it);
            } else {
                cv_done_.wait(lk, [&] { return slots_.at(bytenr).state == State::done; });
                it = slots_.find(bytenr);
                BlockRead r = std::move(it->second.result);
                slots_.erase(it);
                --finished_;
                lk.unlock();
                cv_work_.notify_all();
                return r;
            }
        }
    }
    return read_now(bytenr);
}

void BlockPrefetcher::work() {
    std::unique_lock lk(mu_);
    for (;;) {
        cv_work_.wait(lk, [&] { return stop_ || (!queue_.empty() && finished_ < kMaxFinished); });
        if (stop_) return;
        const uint64_t bytenr = queue_.front();
        queue_.pop_front();
        auto it = slots_.find(bytenr);
        if (it == slots_.end() || it->second.state != State::queued) continue;
        it->second.state = State::running;
        lk.unlock();
        BlockRead r = read_now(bytenr);
        lk.lock();
        Slot& s = slots_.at(bytenr);
        s.result = std::move(r);
        s.state = State::done;
        ++finished_;
        cv_done_.notify_all();
    }
}

BlockRead BlockPrefetcher::read_now(uint64_t bytenr) const {
    BlockRead out;
    const uint32_t ns = fs_.nodesize();
    const Chunk* c = fs_.chunk_map().find(bytenr);
    const bool raid56 = c && (c->type & BLOCK_GROUP_RAID56_MASK);
    // RAID5/6: one copy, and copy 1 (the rebuild from parity) only when it fails.
    const int copies = raid56 ? 1 : std::max(1, fs_.num_copies(bytenr));
    for (int m = 0; m < copies || (raid56 && !out.good && m < 2); ++m) {
        // Copies on a missing device are not read (dev_missing says so once).
        auto ranges = fs_.chunk_map().map(bytenr, ns, m);
        if (ranges) {
            bool missing = false;
            for (const auto& r : *ranges)
                if (!fs_.device(r.devid)) missing = true;
            if (missing && !(raid56 && m == 1)) continue;
        }
        auto buf = std::make_unique_for_overwrite<uint8_t[]>(ns);
        CopyRead cr;
        cr.mirror = m;
        if (auto s = fs_.read_logical(bytenr, {buf.get(), ns}, m); !s) {
            cr.kind = CopyRead::read_error;
            cr.error = s.error().message;
        } else {
            const auto* h = reinterpret_cast<const header*>(buf.get());
            uint8_t cs[32];
            csum_compute(fs_.csum_type(), {buf.get() + CSUM_SIZE, ns - CSUM_SIZE}, cs);
            if (std::memcmp(cs, h->csum, fs_.csum_size()) != 0) {
                cr.kind = CopyRead::csum;
            } else if (h->bytenr != bytenr) {
                cr.kind = CopyRead::bytenr;
                cr.found_bytenr = h->bytenr;
            } else if (std::memcmp(h->fsid, fs_.metadata_fsid(), FSID_SIZE) != 0) {
                cr.kind = CopyRead::fsid;
            }
        }
        if (cr.kind == CopyRead::ok && !out.good) out.good = std::move(buf);
        out.copies.push_back(std::move(cr));
    }
    return out;
}

}  // namespace btk
