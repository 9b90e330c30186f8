#include "result.h"

namespace btk {

const char* errc_name(Errc c) noexcept {
    switch (c) {
        case Errc::corruption: return "corruption";
        case Errc::io: return "I/O error";
        case Errc::unsupported: return "unsupported";
        case Errc::invalid_argument: return "invalid argument";
        case Errc::not_found: return "not found";
    }
    return "error";
}

}  // namespace btk
