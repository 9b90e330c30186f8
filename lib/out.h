// Fast buffered text output for dumps: text is appended to a plain char
// buffer through a cursor (one capacity check per append, no per-call
// formatting machinery) and written out in large chunks.
#pragma once

#include <fmt/format.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>

namespace btk {

class Out {
public:
    // Writes to `f` (not owned); with f == nullptr, text is only collected.
    explicit Out(std::FILE* f = stdout) : file_(f) {}
    ~Out() {
        flush();
        std::free(begin_);
    }
    Out(const Out&) = delete;
    Out& operator=(const Out&) = delete;

    template <typename... Args>
    void print(fmt::format_string<Args...> f, Args&&... args) {
        fmt::memory_buffer tmp;
        fmt::format_to(std::back_inserter(tmp), f, std::forward<Args>(args)...);
        append(tmp.data(), tmp.size());
        maybe_flush();
    }
    void write(std::string_view s) {
        append(s.data(), s.size());
        maybe_flush();
    }
    [[gnu::always_inline]] void put(char c) {
        if (cur_ == end_) [[unlikely]]
            grow(1);
        *cur_++ = c;
    }

    // --- appends without flushing (the printers' fast path) ---------------
    [[gnu::always_inline]] void append(const char* s, size_t n) {
        if (size_t(end_ - cur_) < n) [[unlikely]]
            grow(n);
        if (n) std::memcpy(cur_, s, n);
        cur_ += n;
    }
    template <size_t N>
    void lit(const char (&s)[N]) {
        append(s, N - 1);
    }
    // Decimal digits of v.
    [[gnu::always_inline]] void u64(uint64_t v) {
        if (size_t(end_ - cur_) < 20) [[unlikely]]
            grow(20);
        cur_ = write_u64(cur_, v);
    }
    // Lower-case hexadecimal digits of v, without prefix.
    void hex(uint64_t v) {
        if (size_t(end_ - cur_) < 16) [[unlikely]]
            grow(16);
        static constexpr char digits[] = "0123456789abcdef";
        const int n = v ? (std::bit_width(v) + 3) / 4 : 1;
        char* p = cur_ + n;
        do {
            *--p = digits[v & 15];
            v >>= 4;
        } while (v);
        cur_ += n;
    }
    // Room for at least n more bytes; returns the cursor. Write at most n
    // bytes there, then call advance() with the new cursor.
    char* reserve(size_t n) {
        if (size_t(end_ - cur_) < n) [[unlikely]]
            grow(n);
        return cur_;
    }
    void advance(char* p) { cur_ = p; }

    // Flushes when the buffer holds at least the flush threshold.
    void maybe_flush() {
        if (file_ && size_t(cur_ - begin_) >= kFlushBytes) flush();
    }

    size_t size() const { return size_t(cur_ - begin_); }
    const char* data() const { return begin_; }
    std::string_view view() const { return {begin_, size()}; }
    void clear() { cur_ = begin_; }
    // Exchanges the collected text (not the destination) with `o`.
    void swap_text(Out& o) noexcept {
        std::swap(begin_, o.begin_);
        std::swap(cur_, o.cur_);
        std::swap(end_, o.end_);
    }
    // Text collected so far (only meaningful when constructed with nullptr).
    std::string str() const { return std::string(view()); }

    void flush() {
        if (file_ && cur_ != begin_) {
            std::fwrite(begin_, 1, size(), file_);
            cur_ = begin_;
        }
    }

    // Writes the decimal digits of v at p; returns the end. p must have 20
    // bytes of room.
    [[gnu::always_inline]] static char* write_u64(char* p, uint64_t v) {
        static constexpr char pairs[] =
            "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
            "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
            "8081828384858687888990919293949596979899";
        static constexpr uint64_t pow10[] = {
            1ULL,          10ULL,          100ULL,          1000ULL,          10000ULL,
            100000ULL,     1000000ULL,     10000000ULL,     100000000ULL,     1000000000ULL,
            10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
            100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
            100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL};
        if (v < 10) {
            *p = char('0' + v);
            return p + 1;
        }
        if (v < 100) {
            std::memcpy(p, pairs + 2 * v, 2);
            return p + 2;
        }
        // Digit count from the bit width: floor(log10) estimate, corrected.
        const int t = (int(std::bit_width(v)) * 1233) >> 12;
        char* e = p + (t + 1 - (v < pow10[t]));
        char* q = e;
        // Four digits per step keeps the chain of dependent divisions short.
        while (v >= 10000) {
            const uint64_t d = v / 10000;
            const unsigned r = unsigned(v - d * 10000);
            v = d;
            q -= 4;
            std::memcpy(q, pairs + 2 * (r / 100), 2);
            std::memcpy(q + 2, pairs + 2 * (r % 100), 2);
        }
        if (v >= 100) {
            const unsigned r = unsigned(v % 100);
            v /= 100;
            q -= 2;
            std::memcpy(q, pairs + 2 * r, 2);
        }
        if (v >= 10) {
            q -= 2;
            std::memcpy(q, pairs + 2 * v, 2);
        } else {
            *--q = char('0' + v);
        }
        return e;
    }

    static constexpr size_t kFlushBytes = 1u << 20;

private:
    [[gnu::noinline]] void grow(size_t n) {
        const size_t used = size();
        size_t cap = size_t(end_ - begin_);
        size_t want = cap ? cap * 2 : 64 * 1024;
        while (want - used < n) want *= 2;
        char* nb = static_cast<char*>(std::realloc(begin_, want));
        if (!nb) throw std::bad_alloc();
        begin_ = nb;
        cur_ = nb + used;
        end_ = nb + want;
    }

    std::FILE* file_;
    char* begin_ = nullptr;
    char* cur_ = nullptr;
    char* end_ = nullptr;
};

// Unchecked writer over room reserved with Out::reserve(): the cursor is a
// plain local, so it stays in a register across appends. Use it as a local
// (never by reference across calls) and hand the cursor back with
// Out::advance(). Helpers take and return the raw char*.
struct Cursor {
    char* p;

    template <size_t N>
    [[gnu::always_inline]] Cursor& s(const char (&literal)[N]) {
        std::memcpy(p, literal, N - 1);
        p += N - 1;
        return *this;
    }
    [[gnu::always_inline]] Cursor& s(std::string_view v) {
        if (!v.empty()) std::memcpy(p, v.data(), v.size());
        p += v.size();
        return *this;
    }
    [[gnu::always_inline]] Cursor& c(char ch) {
        *p++ = ch;
        return *this;
    }
    [[gnu::always_inline]] Cursor& u(uint64_t v) {
        p = Out::write_u64(p, v);
        return *this;
    }
    [[gnu::always_inline]] Cursor& i(int64_t v) {
        if (v < 0) {
            *p++ = '-';
            p = Out::write_u64(p, uint64_t(0) - uint64_t(v));
        } else {
            p = Out::write_u64(p, uint64_t(v));
        }
        return *this;
    }
    Cursor& hex(uint64_t v) {
        static constexpr char digits[] = "0123456789abcdef";
        const int n = v ? (int(std::bit_width(v)) + 3) / 4 : 1;
        char* q = p + n;
        do {
            *--q = digits[v & 15];
            v >>= 4;
        } while (v);
        p += n;
        return *this;
    }
};

}  // namespace btk
