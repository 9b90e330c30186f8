#include "check_prefetch.h"

#include "csum.h"

#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace btk {

using namespace format;

namespace {

// Finished results waiting for the walk, at most (16 MiB at 16 KiB nodes).
constexpr size_t kMaxFinished = 1024;

}  // namespace

unsigned default_readers() {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    return unsigned(std::clamp(cores - 2, 0, 8));
}

BlockPrefetcher::BlockPrefetcher(const Filesystem& fs, unsigned threads) : fs_(fs) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "btk-read");
        work();
    });
}

BlockPrefetcher::~BlockPrefetcher() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_work_.notify_all();
    for (auto& t : workers_) t.join();
}

void BlockPrefetcher::want(std::span<const uint64_t> bytenrs, bool first_copy_only) {
    if (bytenrs.empty()) return;
    bool wake = false;
    {
        std::lock_guard lk(mu_);
        // Front of the queue, first child first: depth-first order.
        for (size_t i = bytenrs.size(); i-- > 0;) {
            auto [it, added] = slots_.try_emplace(bytenrs[i]);
            if (!added) continue;
            it->second.first_only = first_copy_only;
            if (!workers_.empty()) queue_.push_front(bytenrs[i]);
        }
        wake = idle_ > 0;
    }
    if (wake) cv_work_.notify_all();
}

size_t BlockPrefetcher::take_run(uint64_t start) {
    // Queued blocks at the addresses right after `start`, at most kMaxReadRun in all.
    const uint64_t ns = fs_.nodesize();
    size_t n = 1;
    Slot& first = slots_.at(start);
    first.state = State::running;
    while (n < kMaxReadRun) {
        auto next = slots_.find(start + n * ns);
        if (next == slots_.end() || next->second.state != State::queued || next->second.first_only != first.first_only)
            break;
        next->second.state = State::running;
        ++n;
    }
    return n;
}

void BlockPrefetcher::finish_run(uint64_t start, std::vector<BlockRead>& r, size_t skip) {
    const uint64_t ns = fs_.nodesize();
    for (size_t i = 0; i < r.size(); ++i) {
        if (i == skip) continue;
        Slot& s = slots_.at(start + i * ns);
        s.result = std::move(r[i]);
        s.state = State::done;
        ++finished_;
    }
}

BlockRead BlockPrefetcher::get(uint64_t bytenr) {
    std::unique_lock lk(mu_);
    auto it = slots_.find(bytenr);
    if (it == slots_.end()) {
        lk.unlock();
        return read_now(bytenr);
    }
    if (it->second.state == State::queued) {
        // Not started: read it (and the queued blocks after it) here rather
        // than wait behind the queue; workers skip what is no longer queued.
        const size_t n = take_run(bytenr);
        const bool first_only = it->second.first_only && gate_ && gate_();
        lk.unlock();
        std::vector<BlockRead> r = read_run(bytenr, n, first_only);
        BlockRead mine = std::move(r[0]);
        lk.lock();
        finish_run(bytenr, r, 0);
        slots_.erase(bytenr);
        return mine;
    }
    if (it->second.state != State::done) {
        ++main_waiting_;
        cv_done_.wait(lk, [&] { return slots_.at(bytenr).state == State::done; });
        --main_waiting_;
        it = slots_.find(bytenr);
    }
    BlockRead r = std::move(it->second.result);
    slots_.erase(it);
    const bool wake = finished_-- == kMaxFinished && idle_ > 0;
    lk.unlock();
    if (wake) cv_work_.notify_all();
    return r;
}

void BlockPrefetcher::work() {
    std::unique_lock lk(mu_);
    for (;;) {
        ++idle_;
        cv_work_.wait(lk, [&] { return stop_ || (!queue_.empty() && finished_ < kMaxFinished); });
        --idle_;
        if (stop_) return;
        const uint64_t start = queue_.front();
        queue_.pop_front();
        auto it = slots_.find(start);
        if (it == slots_.end() || it->second.state != State::queued) continue;
        const size_t n = take_run(start);
        const bool first_only = it->second.first_only && gate_ && gate_();
        lk.unlock();
        std::vector<BlockRead> r = read_run(start, n, first_only);
        lk.lock();
        finish_run(start, r, SIZE_MAX);
        if (main_waiting_) cv_done_.notify_all();
    }
}

namespace {

// Checksum, bytenr and fsid of one copy; sets cr.kind.
void verify_copy(const Filesystem& fs, const uint8_t* buf, uint64_t bytenr, CopyRead& cr) {
    const uint32_t ns = fs.nodesize();
    const auto* h = reinterpret_cast<const header*>(buf);
    uint8_t cs[32];
    csum_compute(fs.csum_type(), {buf + CSUM_SIZE, ns - CSUM_SIZE}, cs);
    if (std::memcmp(cs, h->csum, fs.csum_size()) != 0) {
        cr.kind = CopyRead::csum;
    } else if (h->bytenr != bytenr) {
        cr.kind = CopyRead::bytenr;
        cr.found_bytenr = h->bytenr;
    } else if (std::memcmp(h->fsid, fs.metadata_fsid(), FSID_SIZE) != 0) {
        cr.kind = CopyRead::fsid;
    }
}

}  // namespace

namespace {

// A run of blocks in one chunk without striping, each copy in one piece on
// a present device: where copy m of the run starts, else nullopt.
std::optional<std::pair<const Device*, uint64_t>> run_copy(const Filesystem& fs, uint64_t start, uint64_t len, int m) {
    auto ranges = fs.chunk_map().map(start, len, m);
    if (!ranges || ranges->size() != 1) return std::nullopt;
    const PhysicalRange& r = ranges->front();
    const Device* dev = fs.device(r.devid);
    if (!dev || r.physical + len > dev->size()) return std::nullopt;
    return std::pair{dev, r.physical};
}

bool plain_run(const Filesystem& fs, uint64_t start, uint64_t len) {
    const Chunk* c = fs.chunk_map().find(start);
    return c && !(c->type & (BLOCK_GROUP_RAID56_MASK | BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10)) &&
           start + len <= c->logical + c->length;
}

// This thread's buffer for copies that are only verified.
uint8_t* scratch(size_t len) {
    thread_local std::vector<uint8_t> buf;
    if (buf.size() < len) buf.resize(len);
    return buf.data();
}

}  // namespace

std::vector<std::vector<CopyRead>> verify_copies(const Filesystem& fs, uint64_t start, size_t count, int from_mirror) {
    const uint32_t ns = fs.nodesize();
    const uint64_t len = uint64_t(count) * ns;
    std::vector<std::vector<CopyRead>> out(count);
    const int copies = std::max(1, fs.num_copies(start));
    const bool plain = plain_run(fs, start, len);
    for (int m = from_mirror; m < copies; ++m) {
        auto where = plain ? run_copy(fs, start, len, m) : std::nullopt;
        uint8_t* buf = scratch(len);
        if (where && ::pread(where->first->fd(), buf, len, off_t(where->second)) == ssize_t(len)) {
            for (size_t i = 0; i < count; ++i) {
                CopyRead cr;
                cr.mirror = m;
                verify_copy(fs, buf + i * ns, start + i * ns, cr);
                out[i].push_back(std::move(cr));
            }
            continue;
        }
        // One by one: each read names its own problem.
        for (size_t i = 0; i < count; ++i) {
            const uint64_t bytenr = start + i * ns;
            auto ranges = fs.chunk_map().map(bytenr, ns, m);
            bool missing = false;
            if (ranges)
                for (const auto& r : *ranges)
                    if (!fs.device(r.devid)) missing = true;
            if (missing) continue;  // dev_missing says so once
            CopyRead cr;
            cr.mirror = m;
            uint8_t* one = scratch(len);
            if (auto st = fs.read_logical(bytenr, {one, ns}, m); !st) {
                cr.kind = CopyRead::read_error;
                cr.error = st.error().message;
            } else {
                verify_copy(fs, one, bytenr, cr);
            }
            out[i].push_back(std::move(cr));
        }
    }
    return out;
}

std::vector<BlockRead> BlockPrefetcher::read_run(uint64_t start, size_t count, bool first_copy_only) const {
    const uint32_t ns = fs_.nodesize();
    std::vector<BlockRead> out(count);
    auto one_by_one = [&] {
        for (size_t i = 0; i < count; ++i) out[i] = read_now(start + i * ns);
        return std::move(out);
    };
    const uint64_t len = uint64_t(count) * ns;
    if (!plain_run(fs_, start, len)) return one_by_one();
    const int copies = std::max(1, fs_.num_copies(start));
    for (BlockRead& b : out) b.copies.reserve(size_t(copies));
    std::vector<std::unique_ptr<uint8_t[]>> bufs(count);
    std::vector<iovec> iov(count);
    for (int m = 0; m < copies; ++m) {
        if (first_copy_only && m == 1) {
            // The blocks whose first copy failed need the others now.
            for (size_t i = 0; i < count; ++i) {
                if (out[i].good)
                    out[i].rest_unread = true;
                else
                    out[i] = read_now(start + i * ns);
            }
            break;
        }
        auto ranges = fs_.chunk_map().map(start, len, m);
        if (!ranges || ranges->size() != 1) return one_by_one();
        const PhysicalRange& r = ranges->front();
        const Device* dev = fs_.device(r.devid);
        if (!dev) continue;  // a missing device: not read (dev_missing says so once)
        if (r.physical + len > dev->size()) return one_by_one();
        // The other copies are only verified (and copied when the first was
        // bad): read into this thread's scratch buffer, not fresh memory.
        if (m > 0) {
            uint8_t* buf = scratch(len);
            if (::pread(dev->fd(), buf, len, off_t(r.physical)) != ssize_t(len)) return one_by_one();
            for (size_t i = 0; i < count; ++i) {
                const uint8_t* p = buf + i * ns;
                CopyRead cr;
                cr.mirror = m;
                verify_copy(fs_, p, start + i * ns, cr);
                if (cr.kind == CopyRead::ok && !out[i].good) {
                    out[i].good = std::make_unique_for_overwrite<uint8_t[]>(ns);
                    std::memcpy(out[i].good.get(), p, ns);
                }
                out[i].copies.push_back(std::move(cr));
            }
            continue;
        }
        for (size_t i = 0; i < count; ++i) {
            if (!bufs[i]) bufs[i] = std::make_unique_for_overwrite<uint8_t[]>(ns);
            iov[i] = {bufs[i].get(), ns};
        }
        if (::preadv(dev->fd(), iov.data(), int(count), off_t(r.physical)) != ssize_t(len))
            return one_by_one();  // let the single reads name the problem
        for (size_t i = 0; i < count; ++i) {
            CopyRead cr;
            cr.mirror = m;
            verify_copy(fs_, bufs[i].get(), start + i * ns, cr);
            if (cr.kind == CopyRead::ok && !out[i].good) out[i].good = std::move(bufs[i]);
            out[i].copies.push_back(std::move(cr));
        }
    }
    return out;
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
            verify_copy(fs_, buf.get(), bytenr, cr);
        }
        if (cr.kind == CopyRead::ok && !out.good) out.good = std::move(buf);
        out.copies.push_back(std::move(cr));
    }
    return out;
}

}  // namespace btk
