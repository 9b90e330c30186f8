#include "delayed_refs.h"

namespace btk {

RefHead& DelayedRefs::head(uint64_t bytenr, uint64_t num_bytes, bool is_data, uint8_t level) {
    auto [it, fresh] = heads_.try_emplace(bytenr);
    RefHead& h = it->second;
    if (fresh) {
        h.bytenr = bytenr;
        h.num_bytes = num_bytes;
        h.is_data = is_data;
        h.level = level;
    }
    return h;
}

void DelayedRefs::add(uint64_t bytenr, uint64_t num_bytes, bool is_data, uint8_t level, const RefId& ref,
                      int64_t delta) {
    if (delta == 0) return;
    RefHead& h = head(bytenr, num_bytes, is_data, level);
    auto [it, fresh] = h.deltas.try_emplace(ref, 0);
    it->second += delta;
    if (it->second == 0) {
        h.deltas.erase(it);
        ++merged_;
    }
}

void DelayedRefs::add_new(uint64_t bytenr, uint64_t num_bytes, bool is_data, uint8_t level,
                          const RefId& ref) {
    RefHead& h = head(bytenr, num_bytes, is_data, level);
    h.new_extent = true;
    add(bytenr, num_bytes, is_data, level, ref, 1);
}

void DelayedRefs::set_flags(uint64_t bytenr, uint64_t num_bytes, bool is_data, uint8_t level,
                            uint64_t flags) {
    head(bytenr, num_bytes, is_data, level).add_flags |= flags;
}

const RefHead* DelayedRefs::find(uint64_t bytenr) const noexcept {
    auto it = heads_.find(bytenr);
    return it == heads_.end() ? nullptr : &it->second;
}

}  // namespace btk
