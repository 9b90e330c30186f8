#include "write_tree.h"

#include <bit>
#include <cstring>

namespace btk {

using namespace format;

namespace {

Status check_options(const TreeBuildOptions& o) {
    if (!std::has_single_bit(o.nodesize) || o.nodesize < 1024 || o.nodesize > MAX_METADATA_BLOCKSIZE)
        return make_error(Errc::invalid_argument, "tree builder: invalid nodesize {}", o.nodesize);
    if (o.fill_percent < 1 || o.fill_percent > 100)
        return make_error(Errc::invalid_argument, "tree builder: fill percentage {} not in 1..100",
                          o.fill_percent);
    return {};
}

// Start index of each leaf; leaves.size() == number of leaves (>= 1).
Result<std::vector<size_t>> pack_leaves(const TreeBuildOptions& o, std::span<const TreeItem> items) {
    const uint64_t cap = leaf_data_size(o.nodesize);
    const uint64_t limit = std::max<uint64_t>(sizeof(item), cap * o.fill_percent / 100);
    std::vector<size_t> starts{0};
    uint64_t used = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        const uint64_t need = sizeof(item) + items[i].data.size();
        if (need > cap)
            return make_error(Errc::invalid_argument,
                              "item {} ({} {} {}) of {} bytes does not fit in a {} byte leaf", i,
                              items[i].key.objectid, items[i].key.type, items[i].key.offset,
                              items[i].data.size(), o.nodesize);
        if (i > 0 && !(items[i - 1].key < items[i].key))
            return make_error(Errc::invalid_argument,
                              "items out of order at {}: ({} {} {}) after ({} {} {})", i,
                              items[i].key.objectid, items[i].key.type, items[i].key.offset,
                              items[i - 1].key.objectid, items[i - 1].key.type,
                              items[i - 1].key.offset);
        if (used > 0 && used + need > limit) {
            starts.push_back(i);
            used = 0;
        }
        used += need;
    }
    return starts;
}

uint32_t node_capacity(const TreeBuildOptions& o) {
    const uint32_t full = nodeptrs_per_block(o.nodesize);
    return std::max<uint32_t>(2, std::min(full, full * o.fill_percent / 100));
}

// Splits n children into ceil(n/cap) groups of nearly equal size.
std::vector<size_t> split_even(size_t n, size_t cap) {
    const size_t groups = (n + cap - 1) / cap;
    std::vector<size_t> starts;
    for (size_t g = 0; g < groups; ++g) starts.push_back(g * n / groups);
    return starts;
}

TreePlan plan_from_leaves(const TreeBuildOptions& o, size_t leaves) {
    TreePlan p;
    size_t n = leaves;
    p.per_level.push_back(uint32_t(n));
    const size_t cap = node_capacity(o);
    while (n > 1) {
        n = (n + cap - 1) / cap;
        p.per_level.push_back(uint32_t(n));
    }
    for (uint32_t c : p.per_level) p.total += c;
    p.root_level = uint8_t(p.per_level.size() - 1);
    return p;
}

void fill_header(std::vector<uint8_t>& b, uint64_t bytenr, uint64_t owner, uint32_t nritems,
                 uint8_t level) {
    auto* h = reinterpret_cast<header*>(b.data());
    h->bytenr = bytenr;
    h->owner = owner;
    h->nritems = nritems;
    h->level = level;
}

}  // namespace

Result<TreePlan> plan_tree(const TreeBuildOptions& opts, std::span<const TreeItem> items) {
    BTK_TRY(check_options(opts));
    BTK_ASSIGN(auto starts, pack_leaves(opts, items));
    TreePlan p = plan_from_leaves(opts, starts.size());
    if (p.root_level >= MAX_LEVEL)
        return make_error(Errc::invalid_argument, "tree would need {} levels", p.root_level + 1);
    return p;
}

Result<BuiltTree> build_tree(const TreeBuildOptions& opts, std::span<const TreeItem> items,
                             const BlockAllocator& alloc, const BlockSink& sink) {
    BTK_TRY(check_options(opts));
    BTK_ASSIGN(auto starts, pack_leaves(opts, items));
    if (plan_from_leaves(opts, starts.size()).root_level >= MAX_LEVEL)
        return make_error(Errc::invalid_argument, "tree would need too many levels");
    TreeStreamBuilder b(opts, alloc, sink);
    for (const auto& it : items) BTK_TRY(b.add(it.key, it.data));
    return b.finish();
}

TreeStreamBuilder::TreeStreamBuilder(const TreeBuildOptions& opts, BlockAllocator alloc, BlockSink sink)
    : opts_(opts), alloc_(std::move(alloc)), sink_(std::move(sink)), bad_options_(check_options(opts)) {}

Status TreeStreamBuilder::flush_leaf() {
    BTK_ASSIGN(uint64_t bytenr, alloc_(0));
    fill_header(leaf_, bytenr, opts_.owner, nritems_, 0);
    const Key first = nritems_ ? first_ : Key{};
    out_.blocks.push_back({bytenr, 0, first, opts_.owner});
    children_.push_back({first, bytenr});
    BTK_TRY(sink_(std::move(leaf_)));
    leaf_.clear();
    nritems_ = 0;
    used_ = 0;
    return {};
}

// Packing follows pack_leaves: a leaf takes items while they fit under the
// fill limit; an item that alone exceeds it gets a leaf of its own.
Status TreeStreamBuilder::add(const Key& key, std::span<const uint8_t> data) {
    BTK_TRY(bad_options_);
    const uint32_t ns = opts_.nodesize;
    const uint64_t cap = leaf_data_size(ns);
    const uint64_t limit = std::max<uint64_t>(sizeof(item), cap * opts_.fill_percent / 100);
    const uint64_t need = sizeof(item) + data.size();
    if (need > cap)
        return make_error(Errc::invalid_argument, "item {} ({} {} {}) of {} bytes does not fit in a {} byte leaf",
                          items_, key.objectid, key.type, key.offset, data.size(), ns);
    if (items_ > 0 && !(last_ < key))
        return make_error(Errc::invalid_argument, "items out of order at {}: ({} {} {}) after ({} {} {})", items_,
                          key.objectid, key.type, key.offset, last_.objectid, last_.type, last_.offset);
    if (used_ > 0 && used_ + need > limit) BTK_TRY(flush_leaf());
    if (leaf_.empty()) {
        leaf_.assign(ns, 0);
        data_end_ = leaf_data_size(ns);
        first_ = key;
    }
    uint8_t* base = leaf_.data() + sizeof(header);
    data_end_ -= uint32_t(data.size());
    auto* ih = reinterpret_cast<item*>(base + nritems_ * sizeof(item));
    key.to_disk(ih->key);
    ih->offset = data_end_;
    ih->size = uint32_t(data.size());
    if (!data.empty()) std::memcpy(base + data_end_, data.data(), data.size());
    ++nritems_;
    used_ += uint32_t(need);
    last_ = key;
    ++items_;
    return {};
}

Result<BuiltTree> TreeStreamBuilder::finish() {
    BTK_TRY(bad_options_);
    if (!leaf_.empty() || children_.empty()) {
        if (leaf_.empty()) leaf_.assign(opts_.nodesize, 0);
        BTK_TRY(flush_leaf());
    }
    if (plan_from_leaves(opts_, children_.size()).root_level >= MAX_LEVEL)
        return make_error(Errc::invalid_argument, "tree would need too many levels");
    const uint32_t ns = opts_.nodesize;
    uint8_t level = 0;
    const size_t cap = node_capacity(opts_);
    std::vector<Child> children = std::move(children_);
    while (children.size() > 1) {
        ++level;
        std::vector<Child> parents;
        auto gstarts = split_even(children.size(), cap);
        for (size_t g = 0; g < gstarts.size(); ++g) {
            const size_t begin = gstarts[g];
            const size_t end = g + 1 < gstarts.size() ? gstarts[g + 1] : children.size();
            BTK_ASSIGN(uint64_t bytenr, alloc_(level));
            std::vector<uint8_t> b(ns, 0);
            auto* ptrs = reinterpret_cast<key_ptr*>(b.data() + sizeof(header));
            for (size_t i = begin; i < end; ++i) {
                children[i].key.to_disk(ptrs[i - begin].key);
                ptrs[i - begin].blockptr = children[i].bytenr;
                ptrs[i - begin].generation = opts_.generation;
            }
            fill_header(b, bytenr, opts_.owner, uint32_t(end - begin), level);
            out_.blocks.push_back({bytenr, level, children[begin].key, opts_.owner});
            parents.push_back({children[begin].key, bytenr});
            BTK_TRY(sink_(std::move(b)));
        }
        children = std::move(parents);
    }
    out_.root = children[0].bytenr;
    out_.level = level;
    return std::move(out_);
}

}  // namespace btk
