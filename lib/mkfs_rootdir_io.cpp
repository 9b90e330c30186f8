// mkfs --rootdir: where the content goes in a real filesystem: data chunks
// (ChunkDataSpace) and subvolume trees built on the fly (StreamingTreeSink).
#include "mkfs_rootdir.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace btk {

using namespace format;

std::vector<std::pair<uint64_t, uint64_t>> rootdir_runs(uint64_t start, uint64_t length,
                                                        const std::vector<std::pair<uint64_t, uint64_t>>& excluded,
                                                        uint64_t min) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    auto ex = excluded;
    std::sort(ex.begin(), ex.end());
    uint64_t cur = start;
    const uint64_t end = start + length;
    auto emit = [&](uint64_t s, uint64_t e) {
        if (e > s && e - s >= min) out.push_back({s, e - s});
    };
    for (auto [s, e] : ex) {
        if (e <= cur || s >= end) continue;
        emit(cur, std::max(cur, s));
        cur = std::max(cur, e);
    }
    emit(cur, end);
    return out;
}

ChunkDataSpace::ChunkDataSpace(std::vector<std::pair<uint64_t, uint64_t>> runs, const ChunkMap& map,
                               std::map<uint64_t, Device*> devices,
                               std::function<Status(uint64_t, std::span<const uint8_t>)> parity_write)
    : runs_(std::move(runs)), map_(map), devices_(std::move(devices)), parity_write_(std::move(parity_write)) {
    // A second descriptor with O_DIRECT: file data goes straight to the
    // device instead of through the page cache (the copy costs more than the
    // rest of the work together); refused on filesystems without it.
    for (const auto& [devid, d] : devices_) {
        int fd = open(d->path().c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
        direct_[devid] = fd;
    }
}

ChunkDataSpace::~ChunkDataSpace() {
    for (auto& [devid, fd] : direct_)
        if (fd >= 0) close(fd);
}

Result<DataRange> ChunkDataSpace::reserve(uint64_t want, uint64_t min_len) {
    while (cur_ < runs_.size()) {
        const auto [start, len] = runs_[cur_];
        if (len - used_ >= min_len && len > used_) {
            DataRange r{start + used_, std::min(want, len - used_), uint32_t(cur_)};
            used_ += r.length;
            return r;
        }
        ++cur_;
        used_ = 0;
    }
    return make_error(Errc::invalid_argument, "the data does not fit in the data chunks");
}

Status ChunkDataSpace::write_fd(uint64_t devid, uint64_t physical, std::span<const std::span<const uint8_t>> pieces,
                                uint64_t len) {
    auto dit = devices_.find(devid);
    if (dit == devices_.end()) return make_error(Errc::invalid_argument, "data write to missing device {}", devid);
    std::vector<iovec> iov;
    iov.reserve(pieces.size());
    for (auto p : pieces) iov.push_back({const_cast<uint8_t*>(p.data()), p.size()});
    int& dfd = direct_[devid];
    size_t i = 0, skip = 0;  // first iovec not fully written, bytes of it done
    uint64_t done = 0;
    while (done < len) {
        iovec* v = iov.data() + i;
        const int n = int(std::min<size_t>(iov.size() - i, IOV_MAX));
        v[0].iov_base = static_cast<uint8_t*>(v[0].iov_base) + skip;
        v[0].iov_len -= skip;
        const int fd = dfd >= 0 ? dfd : dit->second->fd();
        ssize_t w = pwritev(fd, v, n, off_t(physical + done));
        v[0].iov_base = static_cast<uint8_t*>(v[0].iov_base) - skip;
        v[0].iov_len += skip;
        if (w < 0) {
            if (errno == EINTR) continue;
            if (dfd >= 0 && errno == EINVAL) {  // alignment the device does not take: buffered from now on
                close(dfd);
                dfd = -1;
                continue;
            }
            return make_error(Errc::io, "data write of {} bytes at {} on {} failed: {}", len - done, physical + done,
                              dit->second->path(), std::strerror(errno));
        }
        ++calls_;
        written_ += uint64_t(w);
        done += uint64_t(w);
        size_t adv = size_t(w);
        while (adv > 0 && i < iov.size()) {
            const size_t rest = iov[i].iov_len - skip;
            if (adv >= rest) {
                adv -= rest;
                ++i;
                skip = 0;
            } else {
                skip += adv;
                adv = 0;
            }
        }
    }
    return {};
}

Status ChunkDataSpace::write(uint64_t logical, std::span<const std::span<const uint8_t>> pieces) {
    uint64_t len = 0;
    for (auto p : pieces) len += p.size();
    const Chunk* c = map_.find(logical);
    if (!c) return make_error(Errc::invalid_argument, "data at {} is outside every chunk", logical);
    if (c->type & BLOCK_GROUP_RAID56_MASK) {
        if (!parity_write_) return make_error(Errc::unsupported, "data in RAID5/6 chunks is not supported here");
        for (auto p : pieces) {
            BTK_TRY(parity_write_(logical, p));
            logical += p.size();
        }
        return {};
    }
    BTK_ASSIGN(auto ranges, map_.map_all_copies(logical, len));
    // map_all_copies lists each copy's pieces in logical order: walk them,
    // cutting the buffers at the same places, and merge what is contiguous on
    // one device.
    uint64_t pos = 0;  // logical offset into this write of the current range
    size_t pi = 0, poff = 0;
    std::vector<std::span<const uint8_t>> batch;
    uint64_t bdev = 0, bstart = 0, blen = 0;
    auto emit = [&]() -> Status {
        if (batch.empty()) return {};
        Status s = write_fd(bdev, bstart, batch, blen);
        batch.clear();
        blen = 0;
        return s;
    };
    for (const auto& r : ranges) {
        if (pos >= len) {  // the next copy starts over
            pos = 0;
            pi = 0;
            poff = 0;
        }
        if (!batch.empty() && (r.devid != bdev || r.physical != bstart + blen)) BTK_TRY(emit());
        if (batch.empty()) {
            bdev = r.devid;
            bstart = r.physical;
        }
        uint64_t need = r.length;
        while (need > 0) {
            if (pi >= pieces.size()) return make_error(Errc::invalid_argument, "data mapping longer than the data");
            const size_t take = size_t(std::min<uint64_t>(need, pieces[pi].size() - poff));
            batch.push_back(pieces[pi].subspan(poff, take));
            blen += take;
            need -= take;
            poff += take;
            if (poff == pieces[pi].size()) {
                ++pi;
                poff = 0;
            }
        }
        pos += r.length;
    }
    return emit();
}

StreamingTreeSink::StreamingTreeSink(std::function<TreeBuildOptions(uint64_t)> opts,
                                     std::function<Result<uint64_t>(uint64_t, uint8_t)> alloc, BlockSink sink)
    : opts_(std::move(opts)), alloc_(std::move(alloc)), sink_(std::move(sink)) {}

Status StreamingTreeSink::add(uint64_t tree, const Key& key, std::span<const uint8_t> data) {
    if (tree != FS_TREE_OBJECTID && (tree < FIRST_FREE_OBJECTID || tree > LAST_FREE_OBJECTID)) {
        kept[tree].push_back({key, std::vector<uint8_t>(data.begin(), data.end())});
        return {};
    }
    auto it = builders_.find(tree);
    if (it == builders_.end()) {
        auto alloc = [this, tree](uint8_t level) { return alloc_(tree, level); };
        it = builders_.emplace(tree, std::make_unique<TreeStreamBuilder>(opts_(tree), alloc, sink_)).first;
    }
    return it->second->add(key, data);
}

Result<std::map<uint64_t, BuiltTree>> StreamingTreeSink::finish() {
    std::map<uint64_t, BuiltTree> out;
    for (auto& [tree, b] : builders_) {
        BTK_ASSIGN(BuiltTree t, b->finish());
        out[tree] = std::move(t);
    }
    builders_.clear();
    return out;
}

}  // namespace btk
