// Error taxonomy and result type at the library boundary.
//
// The library never throws across its API and never aborts on bad data: a
// function that can fail returns Result<T>, which holds either a value or an
// Error with a code and a message that carries context (bytenr, tree, slot).
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace btk {

enum class Errc {
    corruption,        // the image contradicts the format
    io,                // the operating system failed a read or write
    unsupported,       // valid, but a feature btk does not handle
    invalid_argument,  // the caller asked for something impossible
    not_found,         // a lookup found nothing (not an error in itself)
};

const char* errc_name(Errc c) noexcept;

struct Error {
    Errc code = Errc::corruption;
    std::string message;

    // Prepends context: "reading chunk tree: " + message.
    Error& context(std::string_view what) {
        message = fmt::format("{}: {}", what, message);
        return *this;
    }
};

template <typename... Args>
Error make_error(Errc code, fmt::format_string<Args...> f, Args&&... args) {
    return Error{code, fmt::format(f, std::forward<Args>(args)...)};
}
template <typename... Args>
Error corruption(fmt::format_string<Args...> f, Args&&... args) {
    return Error{Errc::corruption, fmt::format(f, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
    Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return std::get<0>(v_); }
    const T& operator*() const& { return std::get<0>(v_); }

    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : err_(std::move(e)), failed_(true) {}
    bool ok() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return ok(); }
    const Error& error() const& { return err_; }
    Error&& error() && { return std::move(err_); }

private:
    Error err_;
    bool failed_ = false;
};

using Status = Result<void>;

}  // namespace btk

// Propagate an error: BTK_TRY(expr) returns the error of a failed Result.
#define BTK_TRY(expr)                                        \
    do {                                                     \
        auto&& btk_try_r_ = (expr);                          \
        if (!btk_try_r_.ok()) return std::move(btk_try_r_).error(); \
    } while (0)

// Declare a variable from a Result, or return its error.
#define BTK_ASSIGN(decl, expr) BTK_ASSIGN_IMPL_(decl, expr, BTK_CONCAT_(btk_r_, __LINE__))
#define BTK_CONCAT_(a, b) BTK_CONCAT2_(a, b)
#define BTK_CONCAT2_(a, b) a##b
#define BTK_ASSIGN_IMPL_(decl, expr, tmp)                 \
    auto tmp = (expr);                                    \
    if (!tmp.ok()) return std::move(tmp).error();         \
    decl = std::move(tmp).value()
