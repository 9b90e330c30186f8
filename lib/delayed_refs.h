// Delayed reference updates.
//
// Every change to an extent's references (allocation, add ref, drop ref,
// free) is queued here instead of touching the extent tree. Changes to the
// same reference of the same extent are merged as they arrive: an add and a
// drop cancel, so a block allocated and freed within one transaction never
// reaches the extent tree at all. At commit the transaction runs the queue in
// extent order (extent_refs.cpp), which changes the extent tree and may queue
// more changes (for the extent tree's own blocks); it runs until empty.
#pragma once

#include "format.h"
#include "key.h"

#include <cstdint>
#include <map>
#include <tuple>
#include <utility>

namespace btk {

// Which reference: the key type of its backref and the fields that identify it.
//   TREE_BLOCK_REF_KEY    root
//   SHARED_BLOCK_REF_KEY  parent (bytenr of the tree block pointing here)
//   EXTENT_DATA_REF_KEY   root, ino, offset (file offset - extent offset)
//   SHARED_DATA_REF_KEY   parent (bytenr of the leaf holding the file extent item)
struct RefId {
    uint8_t type = 0;
    uint64_t root_or_parent = 0;
    uint64_t ino = 0;
    uint64_t offset = 0;
    friend auto operator<=>(const RefId&, const RefId&) = default;

    static RefId tree(uint64_t root) { return {format::TREE_BLOCK_REF_KEY, root, 0, 0}; }
    static RefId shared_tree(uint64_t parent) { return {format::SHARED_BLOCK_REF_KEY, parent, 0, 0}; }
    static RefId data(uint64_t root, uint64_t ino, uint64_t off) {
        return {format::EXTENT_DATA_REF_KEY, root, ino, off};
    }
    static RefId shared_data(uint64_t parent) { return {format::SHARED_DATA_REF_KEY, parent, 0, 0}; }
};

struct RefHead {
    uint64_t bytenr = 0;
    uint64_t num_bytes = 0;
    bool is_data = false;
    uint8_t level = 0;          // tree blocks
    bool new_extent = false;    // allocated in this transaction: no extent item yet
    uint64_t add_flags = 0;     // flags to set (FULL_BACKREF)
    std::map<RefId, int64_t> deltas;
    int64_t total() const {
        int64_t t = 0;
        for (const auto& [r, d] : deltas) t += d;
        return t;
    }
};

class DelayedRefs {
public:
    // Queues `delta` (+n / -n) for one reference of an extent.
    void add(uint64_t bytenr, uint64_t num_bytes, bool is_data, uint8_t level, const RefId& ref,
             int64_t delta);
    // Records a newly allocated extent with its first reference.
    void add_new(uint64_t bytenr, uint64_t num_bytes, bool is_data, uint8_t level, const RefId& ref);
    void set_flags(uint64_t bytenr, uint64_t num_bytes, bool is_data, uint8_t level, uint64_t flags);

    bool empty() const noexcept { return heads_.empty(); }
    size_t size() const noexcept { return heads_.size(); }
    const RefHead* find(uint64_t bytenr) const noexcept;
    // Hands the queued heads to the caller (the queue is empty afterwards).
    std::map<uint64_t, RefHead> take() { return std::exchange(heads_, {}); }

    uint64_t merged() const noexcept { return merged_; }

private:
    RefHead& head(uint64_t bytenr, uint64_t num_bytes, bool is_data, uint8_t level);
    std::map<uint64_t, RefHead> heads_;
    uint64_t merged_ = 0;  // ref changes that cancelled on arrival
};

}  // namespace btk
