// A progress line for long reads (btk check -p): phase, amount done, rate and
// an ETA, produced at most `max_per_second` times a second. The caller
// decides where the line goes (a terminal only) and passes the time, so the
// meter is testable without a clock.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>

namespace btk {

class ProgressMeter {
public:
    explicit ProgressMeter(double max_per_second = 5.0) : min_interval_(1.0 / max_per_second) {}

    // `now` in seconds from any fixed origin. Returns the line to show, or
    // nothing when the previous line is too recent (unless `force`).
    std::optional<std::string> update(double now, const std::string& phase, uint64_t blocks, uint64_t bytes,
                                      uint64_t total_bytes, bool force = false) {
        if (!started_) {
            started_ = true;
            start_ = now;
        }
        if (!force && shown_ && now - last_ < min_interval_) return std::nullopt;
        shown_ = true;
        last_ = now;
        const double t = now - start_;
        std::string line = fmt::format("{}: {} blocks, {}", phase, blocks, size_text(bytes));
        if (t >= 0.2) {
            line += fmt::format(", {:.0f} blocks/s, {}/s", double(blocks) / t, size_text(uint64_t(double(bytes) / t)));
            if (total_bytes > bytes && bytes > 0) {
                const double eta = t * double(total_bytes - bytes) / double(bytes);
                line += fmt::format(", ETA {}", time_text(eta));
            }
        }
        return line;
    }

    static std::string size_text(uint64_t b) {
        if (b >= (1ull << 30)) return fmt::format("{:.1f} GiB", double(b) / double(1ull << 30));
        if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", double(b) / double(1ull << 20));
        return fmt::format("{:.1f} KiB", double(b) / 1024.0);
    }
    static std::string time_text(double s) {
        const uint64_t n = uint64_t(s + 0.5);
        if (n >= 3600) return fmt::format("{}:{:02}:{:02}", n / 3600, n / 60 % 60, n % 60);
        return fmt::format("{}:{:02}", n / 60, n % 60);
    }

private:
    double min_interval_;
    bool started_ = false, shown_ = false;
    double start_ = 0, last_ = 0;
};

}  // namespace btk
