// Lower bound in a sorted array, searched outwards from a hint: a run of
// lookups whose keys mostly ascend costs a few comparisons each instead of
// log2(n) cache misses.
#pragma once

#include <algorithm>
#include <cstddef>

namespace btk {

// The first index i in v[0, n) with !less(v[i], k), or n. `hint` may be
// anything; the closer to the answer, the fewer comparisons (about
// 2 log2 of the distance).
template <typename T, typename Less>
size_t gallop_lower_bound(const T* v, size_t n, const T& k, size_t hint, Less less) {
    if (n == 0) return 0;
    const size_t h = std::min(hint, n - 1);
    // The answer lies in [lo, hi] throughout.
    size_t lo = 0, hi = n;
    if (less(v[h], k)) {
        lo = h + 1;
        for (size_t step = 1; h + step < n; step *= 2) {
            if (!less(v[h + step], k)) {
                hi = h + step;
                break;
            }
            lo = h + step + 1;
        }
    } else {
        hi = h;
        for (size_t step = 1; hi > 0; step *= 2) {
            const size_t p = h > step ? h - step : 0;
            if (less(v[p], k)) {
                lo = p + 1;
                break;
            }
            hi = p;
        }
    }
    return size_t(std::lower_bound(v + lo, v + hi, k, less) - v);
}

}  // namespace btk
