// Fast buffered text output for dumps: formats into a memory buffer with fmt
// and writes it out in large chunks.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace btk {

class Out {
public:
    // Writes to `f` (not owned); with f == nullptr, text is only collected.
    explicit Out(std::FILE* f = stdout) : file_(f) {}
    ~Out() { flush(); }
    Out(const Out&) = delete;
    Out& operator=(const Out&) = delete;

    template <typename... Args>
    void print(fmt::format_string<Args...> f, Args&&... args) {
        fmt::format_to(std::back_inserter(buf_), f, std::forward<Args>(args)...);
        maybe_flush();
    }
    void write(std::string_view s) {
        buf_.append(s.data(), s.data() + s.size());
        maybe_flush();
    }
    void put(char c) {
        buf_.push_back(c);
    }
    fmt::memory_buffer& buffer() { return buf_; }

    // Text collected so far (only meaningful when constructed with nullptr).
    std::string str() const { return std::string(buf_.data(), buf_.size()); }

    void flush() {
        if (file_ && buf_.size()) {
            std::fwrite(buf_.data(), 1, buf_.size(), file_);
            buf_.clear();
        }
    }

private:
    void maybe_flush() {
        if (file_ && buf_.size() >= (1u << 20)) flush();
    }
    std::FILE* file_;
    fmt::memory_buffer buf_;
};

}  // namespace btk
