#pragma once

// The Range request field for a single byte range (RFC 9110 §14.1-§14.2).

#include <cstdint>
#include <string_view>

namespace trident {

struct ByteRange {
    enum class Kind : std::uint8_t {
        ignore,         ///< absent, malformed, not bytes, or several ranges: answer 200
        satisfiable,    ///< answer 206 with [first, last]
        unsatisfiable,  ///< answer 416 with "Content-Range: bytes */size"
    };
    Kind kind = Kind::ignore;
    std::uint64_t first = 0;
    std::uint64_t last = 0;  ///< inclusive
};

/// Evaluates a Range field value against a representation of `size` bytes.
ByteRange parse_byte_range(std::string_view value, std::uint64_t size) noexcept;

}  // namespace trident
