// A min-queue for values that mostly arrive as a few interleaved ascending
// runs. The fs tree checker queues a directory's entries by child inode:
// one directory's entries come in child order, but a subdirectory's run
// starts while its parent's is still waiting. Each run is a FIFO and the
// smallest head wins (a few compares); only values that extend no run and
// find no free run slot go to a binary heap.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <vector>

namespace btk {

template <typename T, typename Less = std::less<T>>
class RunQueue {
public:
    bool empty() const noexcept { return size_ == 0; }
    size_t size() const noexcept { return size_; }
    // The smallest value (not empty()). Of equal values, the one pushed
    // first to the heap, then to the older run.
    const T& top() const noexcept {
        const size_t b = best();
        return b == kHeap ? heap_.front() : runs_[b].v[runs_[b].head];
    }
    void push(const T& x) {
        ++size_;
        // Extend the newest run that x does not break.
        for (size_t i = live_; i-- > 0;) {
            if (!less_(x, runs_[i].v.back())) {
                runs_[i].v.push_back(x);
                return;
            }
        }
        if (live_ < kMaxRuns) {
            if (runs_.size() == live_) runs_.emplace_back();
            Run& r = runs_[live_++];
            r.v.clear();
            r.head = 0;
            r.v.push_back(x);
            return;
        }
        heap_.push_back(x);
        std::push_heap(heap_.begin(), heap_.end(), greater());
    }
    T pop() {
        --size_;
        const size_t b = best();
        if (b == kHeap) {
            std::pop_heap(heap_.begin(), heap_.end(), greater());
            T x = std::move(heap_.back());
            heap_.pop_back();
            return x;
        }
        Run& r = runs_[b];
        T x = std::move(r.v[r.head++]);
        if (r.head == r.v.size()) {
            // Retire the run; its vector keeps its capacity for the next one.
            r.v.clear();
            r.head = 0;
            std::rotate(runs_.begin() + ptrdiff_t(b), runs_.begin() + ptrdiff_t(b) + 1,
                        runs_.begin() + ptrdiff_t(live_));
            --live_;
        } else if (r.head >= 4096 && r.head * 2 >= r.v.size()) {
            // Drop the consumed front now and then.
            r.v.erase(r.v.begin(), r.v.begin() + ptrdiff_t(r.head));
            r.head = 0;
        }
        return x;
    }
    void clear() noexcept {
        runs_.clear();
        live_ = 0;
        heap_ = {};
        size_ = 0;
    }

private:
    static constexpr size_t kMaxRuns = 8;
    static constexpr size_t kHeap = ~size_t(0);
    struct Run {
        std::vector<T> v;  // ascending; [head, end) still queued
        size_t head = 0;
    };
    auto greater() const {
        return [this](const T& a, const T& b) { return less_(b, a); };
    }
    // Where the smallest value is: a live run's index, or kHeap.
    size_t best() const noexcept {
        size_t b = kHeap;
        const T* m = heap_.empty() ? nullptr : &heap_.front();
        for (size_t i = 0; i < live_; ++i) {
            const T& h = runs_[i].v[runs_[i].head];
            if (!m || less_(h, *m)) {
                m = &h;
                b = i;
            }
        }
        return b;
    }

    std::vector<Run> runs_;  // [0, live_) hold values, oldest first
    size_t live_ = 0;
    std::vector<T> heap_;  // min-heap
    size_t size_ = 0;
    [[no_unique_address]] Less less_{};
};

}  // namespace btk
