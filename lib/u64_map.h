// A hash map from 64-bit keys to small values: open addressing, linear
// probing, one flat array (no node per entry, unlike std::unordered_map).
// For the per-block tables of a metadata walk, where keys are addresses
// (multiples of the sector size: the hash multiplies them to spread).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace btk {

template <typename V>
class U64Map {
public:
    // Inserts k -> v unless k is present; returns k's value and whether it
    // was inserted.
    std::pair<V*, bool> insert(uint64_t k, V v) {
        if (k == 0) {
            if (has_zero_) return {&zero_, false};
            has_zero_ = true;
            zero_ = v;
            ++size_;
            return {&zero_, true};
        }
        if ((size_ + 1) * 2 > slots_.size()) grow();
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.key == k) return {&s.val, false};
            if (s.key == 0) {
                s.key = k;
                s.val = v;
                ++size_;
                return {&s.val, true};
            }
        }
    }
    const V* find(uint64_t k) const {
        if (k == 0) return has_zero_ ? &zero_ : nullptr;
        if (slots_.empty()) return nullptr;
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.key == k) return &s.val;
            if (s.key == 0) return nullptr;
        }
    }
    V* find(uint64_t k) { return const_cast<V*>(std::as_const(*this).find(k)); }
    bool contains(uint64_t k) const { return find(k) != nullptr; }
    size_t size() const noexcept { return size_; }
    // Room for n keys without growing.
    void reserve(size_t n) {
        // One new table, not one per doubling (each would be fresh memory).
        if (n * 2 > slots_.size()) rehash(std::bit_ceil(std::max<size_t>(n * 2, 16)));
    }

private:
    struct Slot {
        uint64_t key = 0;  // 0: empty (key 0 lives in zero_)
        V val{};
    };
    size_t home(uint64_t k) const noexcept { return size_t((k * 0x9e3779b97f4a7c15ULL) >> shift_); }
    void grow() { rehash(slots_.empty() ? 16 : slots_.size() * 2); }
    void rehash(size_t n) {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(n, Slot{});
        mask_ = n - 1;
        shift_ = 64 - unsigned(__builtin_ctzll(n));
        for (const Slot& s : old) {
            if (s.key == 0) continue;
            size_t i = home(s.key);
            while (slots_[i].key != 0) i = (i + 1) & mask_;
            slots_[i] = s;
        }
    }

    std::vector<Slot> slots_;
    size_t mask_ = 0, size_ = 0;
    unsigned shift_ = 64;
    bool has_zero_ = false;
    V zero_{};
};

}  // namespace btk
