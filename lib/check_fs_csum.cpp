// The csum tree: item layout, coverage of data extents and of the file
// extents that need checksums, and (--check-data-csum) the data itself,
// verified on worker threads with large reads, other copies tried on a
// mismatch.
#include "check_fs_internal.h"

#include "csum.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace btk::fsck {

using namespace format;
using K = FindingKind;

namespace {
constexpr uint32_t JOB_SECTORS = 1024;  // 4 MiB reads with 4 KiB sectors
}

CsumCheck::CsumCheck(Filesystem* fs, Report report, bool verify_data, unsigned threads)
    : fs_(fs), report_(std::move(report)), ss_(fs->sectorsize()), csum_size_(fs->csum_size()), verify_(verify_data) {
    if (verify_) {
        const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
        nthreads_ = threads ? threads : std::min(hw, 4u);
    }
}

CsumCheck::~CsumCheck() { stop_workers(); }

void CsumCheck::stop_workers() {
    if (queue_) queue_->close();
    for (auto& t : threads_) t.join();
    threads_.clear();
}

void CsumCheck::csum_leaf(const TreeBlock& leaf) {
    for (uint32_t s = 0; s < leaf.nritems(); ++s) {
        const Key k = leaf.key(s);
        auto d = leaf.item_data(s);
        auto bad = [&](std::string p) {
            report_(item_finding(K::csum_item_invalid, CSUM_TREE_OBJECTID, leaf.bytenr(), k)
                        .num("bytenr", leaf.bytenr())
                        .str("key", key_text(k))
                        .str("problem", std::move(p)));
        };
        if (k.objectid != EXTENT_CSUM_OBJECTID || k.type != EXTENT_CSUM_KEY) {
            bad("not a checksum item");
            continue;
        }
        if (k.offset % ss_) {
            bad(fmt::format("offset {} is not aligned to the sector size {}", k.offset, ss_));
            continue;
        }
        if (d.empty() || d.size() % csum_size_) {
            bad(fmt::format("item size {} is not a multiple of the checksum size {}", d.size(), csum_size_));
            continue;
        }
        const uint64_t n = d.size() / csum_size_;
        if (k.offset > ~0ULL - n * ss_) {
            bad("the checksummed range wraps around");
            continue;
        }
        const uint64_t end = k.offset + n * ss_;
        if (any_item_ && k.offset < prev_end_)
            bad(fmt::format("its range [{}, {}) overlaps the previous item, which ends at {}", k.offset, end, prev_end_));
        any_item_ = true;
        prev_end_ = std::max(prev_end_, end);
        add_range(cover_, k.offset, end);
        if (!verify_) continue;
        for (uint64_t i = 0; i < n; i += JOB_SECTORS) {
            const uint32_t cnt = uint32_t(std::min<uint64_t>(JOB_SECTORS, n - i));
            Job j{k.offset + i * ss_, cnt, {}};
            j.csums.assign(d.begin() + i * csum_size_, d.begin() + (i + cnt) * csum_size_);
            submit(std::move(j));
        }
    }
}

void CsumCheck::extent_leaf(const TreeBlock& leaf) {
    for (uint32_t s = 0; s < leaf.nritems(); ++s) {
        const Key k = leaf.key(s);
        if (k.type != EXTENT_ITEM_KEY) continue;
        const auto* ei = view_at<extent_item>(leaf.item_data(s));
        if (!ei || !(ei->flags & EXTENT_FLAG_DATA) || k.objectid > ~0ULL - k.offset) continue;
        add_range(extents_, k.objectid, k.objectid + k.offset);
    }
}

namespace {
Finding csum_missing_finding(uint64_t start, uint64_t len, uint64_t root, uint64_t ino, uint64_t offset,
                             uint64_t got) {
    Finding f;
    f.kind = K::csum_missing;
    f.tree = root;
    f.bytenr = start;
    f.num("root", root)
        .num("ino", ino)
        .num("offset", offset)
        .num("start", start)
        .num("end", start + len)
        .num("missing", len - got);
    return f;
}
}  // namespace

void CsumCheck::need(uint64_t start, uint64_t len, uint64_t root, uint64_t ino, uint64_t file_offset, bool ready) {
    if (len == 0 || start > ~0ULL - len) return;
    if (ready) {
        const uint64_t got = covered_bytes(cover_, start, start + len);
        if (got != len) missing_.push_back(csum_missing_finding(start, len, root, ino, file_offset, got));
        return;
    }
    needs_.push_back({start, len, root, ino, file_offset});
    // Snapshots repeat the same extents: fold duplicates now and then.
    if (needs_.size() >= std::max<size_t>(1 << 18, 2 * needs_compacted_)) compact_needs();
}

void CsumCheck::compact_needs() {
    std::sort(needs_.begin(), needs_.end(), [](const Need& a, const Need& b) {
        return std::tie(a.start, a.len, a.root, a.ino, a.offset) < std::tie(b.start, b.len, b.root, b.ino, b.offset);
    });
    needs_.erase(std::unique(needs_.begin(), needs_.end(),
                             [](const Need& a, const Need& b) { return a.start == b.start && a.len == b.len; }),
                 needs_.end());
    needs_compacted_ = needs_.size();
}

void CsumCheck::submit(Job job) {
    if (!queue_) {
        queue_ = std::make_unique<WorkQueue<Job>>(2 * nthreads_ + 2);
        for (unsigned i = 0; i < nthreads_; ++i) threads_.emplace_back([this] { worker(); });
    }
    queue_->put(std::move(job));
}

void CsumCheck::worker() {
    std::vector<Bad> local;
    while (auto job = queue_->get()) {
        local.clear();
        verify(*job, local);
        if (!local.empty()) {
            std::lock_guard<std::mutex> l(mu_);
            bad_.insert(bad_.end(), local.begin(), local.end());
        }
    }
}

void CsumCheck::verify(const Job& job, std::vector<Bad>& out) {
    const uint64_t len = uint64_t(job.sectors) * ss_;
    const Chunk* c = fs_->chunk_map().find(job.start);
    const bool raid56 = c && (c->type & BLOCK_GROUP_RAID56_MASK);
    const int copies = raid56 ? 2 : std::max(1, fs_->num_copies(job.start));
    // Copies on a missing device are not tried (dev_missing says so once);
    // RAID5/6's second copy is the rebuild from parity.
    std::vector<int> order;
    for (int m = 0; m < copies; ++m) {
        bool ok = true;
        if (!(raid56 && m == 1)) {
            auto ranges = fs_->chunk_map().map(job.start, len, m);
            if (!ranges) ok = false;
            else
                for (const auto& r : *ranges)
                    if (!fs_->device(r.devid)) ok = false;
        }
        if (ok) order.push_back(m);
    }
    auto one = [&](uint64_t at, const uint8_t* want, int m, std::vector<uint8_t>& buf) -> const char* {
        buf.resize(ss_);
        if (!fs_->read_logical(at, {buf.data(), ss_}, m)) return "read error";
        uint8_t cs[32];
        csum_compute(fs_->csum_type(), {buf.data(), ss_}, cs);
        return std::memcmp(cs, want, csum_size_) == 0 ? nullptr : "checksum mismatch";
    };
    std::vector<uint8_t> buf(len), sector;
    const int first = order.empty() ? -1 : order[0];
    const bool bulk = first >= 0 && fs_->read_logical(job.start, {buf.data(), size_t(len)}, first).ok();
    auto push = [&](Bad b) {
        if (!out.empty()) {
            Bad& p = out.back();
            if (p.end == b.start && p.all_copies == b.all_copies && p.mirror == b.mirror && p.good == b.good &&
                p.problem == b.problem) {
                p.end = b.end;
                return;
            }
        }
        out.push_back(std::move(b));
    };
    for (uint32_t i = 0; i < job.sectors; ++i) {
        const uint64_t at = job.start + uint64_t(i) * ss_;
        const uint8_t* want = job.csums.data() + size_t(i) * csum_size_;
        const char* p0 = nullptr;
        if (first < 0) {
            p0 = "device missing";
        } else if (bulk) {
            uint8_t cs[32];
            csum_compute(fs_->csum_type(), {buf.data() + size_t(i) * ss_, ss_}, cs);
            if (std::memcmp(cs, want, csum_size_) != 0) p0 = "checksum mismatch";
        } else {
            p0 = one(at, want, first, sector);
        }
        if (!p0) continue;
        std::vector<std::pair<int, const char*>> bad_copies{{first, p0}};
        int good = -1;
        for (size_t oi = 1; oi < order.size() && good < 0; ++oi) {
            const char* p = one(at, want, order[oi], sector);
            if (!p)
                good = order[oi];
            else
                bad_copies.push_back({order[oi], p});
        }
        if (good >= 0) {
            for (auto& [m, p] : bad_copies) push(Bad{at, at + ss_, false, m, good, copies, p});
        } else {
            push(Bad{at, at + ss_, true, -1, -1, int(order.size()), p0});
        }
    }
    verified_ += len;
}

void CsumCheck::finish(bool csum_complete, bool extent_complete) {
    stop_workers();

    if (csum_complete && extent_complete) {
        // Checksums outside every data extent.
        size_t e = 0;
        for (const Range& r : cover_) {
            uint64_t at = r.start;
            while (e < extents_.size() && extents_[e].end <= at) ++e;
            for (size_t x = e; x < extents_.size() && at < r.end; ++x) {
                if (extents_[x].start >= r.end) break;
                if (extents_[x].start > at) {
                    Finding f;
                    f.kind = K::csum_no_extent;
                    f.tree = CSUM_TREE_OBJECTID;
                    f.bytenr = at;
                    f.num("start", at).num("end", extents_[x].start);
                    report_(std::move(f));
                }
                at = std::max(at, extents_[x].end);
            }
            if (at < r.end) {
                Finding f;
                f.kind = K::csum_no_extent;
                f.tree = CSUM_TREE_OBJECTID;
                f.bytenr = at;
                f.num("start", at).num("end", r.end);
                report_(std::move(f));
            }
        }
    }
    if (csum_complete) {
        compact_needs();
        for (const Need& n : needs_) {
            const uint64_t got = covered_bytes(cover_, n.start, n.start + n.len);
            if (got != n.len) report_(csum_missing_finding(n.start, n.len, n.root, n.ino, n.offset, got));
        }
    }
    for (Finding& f : missing_) report_(std::move(f));
    missing_.clear();
    needs_.clear();
    needs_.shrink_to_fit();

    std::sort(bad_.begin(), bad_.end(), [](const Bad& a, const Bad& b) {
        return std::tie(a.all_copies, a.mirror, a.good, a.problem, a.start) <
               std::tie(b.all_copies, b.mirror, b.good, b.problem, b.start);
    });
    // Runs split only by the job size are one run.
    std::vector<Bad> runs;
    for (Bad& b : bad_) {
        if (!runs.empty()) {
            Bad& p = runs.back();
            if (p.end == b.start && p.all_copies == b.all_copies && p.mirror == b.mirror && p.good == b.good &&
                p.problem == b.problem && p.copies == b.copies) {
                p.end = b.end;
                continue;
            }
        }
        runs.push_back(std::move(b));
    }
    std::sort(runs.begin(), runs.end(),
              [](const Bad& a, const Bad& b) { return std::tie(a.start, a.mirror) < std::tie(b.start, b.mirror); });
    for (const Bad& b : runs) {
        Finding f;
        f.kind = b.all_copies ? K::data_csum_mismatch : K::data_csum_mirror;
        f.bytenr = b.start;
        f.num("start", b.start).num("end", b.end).str("problem", b.problem);
        if (b.all_copies)
            f.num("copies", uint64_t(b.copies));
        else
            f.num("mirror", uint64_t(b.mirror)).num("good", uint64_t(b.good));
        report_(std::move(f));
    }
    bad_.clear();
}

}  // namespace btk::fsck
