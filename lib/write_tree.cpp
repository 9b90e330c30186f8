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
    BuiltTree out;
    const uint32_t ns = opts.nodesize;

    // Leaves.
    struct Child {
        Key key;
        uint64_t bytenr;
    };
    std::vector<Child> children;
    for (size_t l = 0; l < starts.size(); ++l) {
        const size_t begin = starts[l];
        const size_t end = l + 1 < starts.size() ? starts[l + 1] : items.size();
        BTK_ASSIGN(uint64_t bytenr, alloc(0));
        std::vector<uint8_t> b(ns, 0);
        uint8_t* data = b.data() + sizeof(header);
        uint32_t data_end = leaf_data_size(ns);
        for (size_t i = begin; i < end; ++i) {
            const auto& it = items[i];
            const uint32_t sz = uint32_t(it.data.size());
            data_end -= sz;
            auto* ih = reinterpret_cast<item*>(data + (i - begin) * sizeof(item));
            it.key.to_disk(ih->key);
            ih->offset = data_end;
            ih->size = sz;
            if (sz) std::memcpy(data + data_end, it.data.data(), sz);
        }
        fill_header(b, bytenr, opts.owner, uint32_t(end - begin), 0);
        Key first = begin < end ? items[begin].key : Key{};
        out.blocks.push_back({bytenr, 0, first, opts.owner});
        children.push_back({first, bytenr});
        BTK_TRY(sink(std::move(b)));
    }

    // Node levels.
    uint8_t level = 0;
    const size_t cap = node_capacity(opts);
    while (children.size() > 1) {
        ++level;
        std::vector<Child> parents;
        auto gstarts = split_even(children.size(), cap);
        for (size_t g = 0; g < gstarts.size(); ++g) {
            const size_t begin = gstarts[g];
            const size_t end = g + 1 < gstarts.size() ? gstarts[g + 1] : children.size();
            BTK_ASSIGN(uint64_t bytenr, alloc(level));
            std::vector<uint8_t> b(ns, 0);
            auto* ptrs = reinterpret_cast<key_ptr*>(b.data() + sizeof(header));
            for (size_t i = begin; i < end; ++i) {
                children[i].key.to_disk(ptrs[i - begin].key);
                ptrs[i - begin].blockptr = children[i].bytenr;
                ptrs[i - begin].generation = opts.generation;
            }
            fill_header(b, bytenr, opts.owner, uint32_t(end - begin), level);
            out.blocks.push_back({bytenr, level, children[begin].key, opts.owner});
            parents.push_back({children[begin].key, bytenr});
            BTK_TRY(sink(std::move(b)));
        }
        children = std::move(parents);
    }
    out.root = children[0].bytenr;
    out.level = level;
    return out;
}

}  // namespace btk
