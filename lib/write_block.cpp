#include "write_block.h"

#include "csum.h"
#include "super.h"

#include <cstring>

namespace btk {

using namespace format;

void BlockWriter::finish(std::span<uint8_t> block) const {
    auto* h = reinterpret_cast<header*>(block.data());
    std::memcpy(h->fsid, ctx_.fsid, FSID_SIZE);
    h->flags = HEADER_FLAG_WRITTEN | (MIXED_BACKREF_REV << BACKREF_REV_SHIFT);
    std::memcpy(h->chunk_tree_uuid, ctx_.chunk_tree_uuid, UUID_SIZE);
    h->generation = ctx_.generation;
    csum_compute(ctx_.csum_type, block.subspan(CSUM_SIZE), h->csum);
}

Status BlockWriter::add(std::vector<uint8_t>&& block) {
    if (block.size() != ctx_.nodesize)
        return make_error(Errc::invalid_argument, "block of {} bytes, nodesize is {}", block.size(),
                          ctx_.nodesize);
    if (!ctx_.chunks) return make_error(Errc::invalid_argument, "block writer has no chunk map");
    const uint64_t bytenr = reinterpret_cast<const header*>(block.data())->bytenr;
    finish(block);
    BTK_ASSIGN(auto ranges, ctx_.chunks->map_all_copies(bytenr, ctx_.nodesize));
    // A tree block must not straddle a stripe: every copy is one piece.
    for (const auto& r : ranges)
        if (r.length != ctx_.nodesize)
            return make_error(Errc::invalid_argument, "tree block {} crosses a stripe boundary", bytenr);
    const size_t idx = bufs_.size();
    bufs_.push_back(std::move(block));
    for (const auto& r : ranges) {
        auto [it, fresh] = pieces_.emplace(std::pair{r.devid, r.physical}, Piece{idx, 0, ctx_.nodesize});
        if (!fresh)
            return make_error(Errc::invalid_argument, "tree block {} written twice (devid {} offset {})",
                              bytenr, r.devid, r.physical);
    }
    ++blocks_;
    return {};
}

Status BlockWriter::flush() {
    std::vector<uint8_t> batch;
    uint64_t batch_dev = 0, batch_start = 0;
    auto emit = [&]() -> Status {
        if (batch.empty()) return {};
        Device* d = ctx_.devices.at(batch_dev);
        BTK_TRY(d->write(batch_start, batch));
        written_ += batch.size();
        ++calls_;
        batch.clear();
        return {};
    };
    uint64_t prev_end = 0;
    for (const auto& [loc, p] : pieces_) {
        const auto [devid, phys] = loc;
        if (!batch.empty() && devid == batch_dev && phys < prev_end)
            return make_error(Errc::invalid_argument, "overlapping writes at devid {} offset {}", devid, phys);
        if (batch.empty() || devid != batch_dev || phys != prev_end || batch.size() + p.len > max_batch_) {
            BTK_TRY(emit());
            batch_dev = devid;
            batch_start = phys;
        }
        if (!ctx_.devices.count(devid))
            return make_error(Errc::invalid_argument, "write to missing device {}", devid);
        const auto& b = bufs_[p.buf];
        batch.insert(batch.end(), b.begin() + ptrdiff_t(p.off), b.begin() + ptrdiff_t(p.off + p.len));
        prev_end = phys + p.len;
    }
    BTK_TRY(emit());
    pieces_.clear();
    bufs_.clear();
    blocks_ = 0;
    return {};
}

Status write_supers(const super_block& sb_in, const std::map<uint64_t, dev_item>& dev_items,
                    const std::map<uint64_t, Device*>& devices) {
    for (const auto& [devid, d] : devices) BTK_TRY(d->sync());
    for (const auto& [devid, d] : devices) {
        auto di = dev_items.find(devid);
        if (di == dev_items.end())
            return make_error(Errc::invalid_argument, "no dev_item for device {}", devid);
        int written = 0;
        for (int m = 0; m < SUPER_MIRROR_MAX; ++m) {
            const uint64_t off = super_offset(m);
            // Copies that do not fit inside the device's part of the filesystem
            // are not written (the kernel stops at the same place).
            if (m > 0 && off + SUPER_INFO_SIZE >= di->second.total_bytes.get()) break;
            if (off + SUPER_INFO_SIZE > d->size()) break;
            super_block sb = sb_in;
            sb.dev_item = di->second;
            sb.bytenr = off;
            super_update_csum(sb);
            BTK_TRY(d->write(off, {reinterpret_cast<const uint8_t*>(&sb), sizeof(sb)}));
            ++written;
        }
        if (!written)
            return make_error(Errc::invalid_argument, "{} is too small for a superblock", d->path());
    }
    for (const auto& [devid, d] : devices) BTK_TRY(d->sync());
    return {};
}

}  // namespace btk
