#pragma once

// The Range request field (RFC 9110 §14.1-§14.2): one or several byte ranges, coalesced
// and bounded as Apache httpd 2.4's byterange filter does.

#include <cstdint>
#include <string_view>
#include <vector>

namespace trident {

/// One range of bytes, both ends inclusive.
struct ByteSpan {
    std::uint64_t first = 0;
    std::uint64_t last = 0;

    std::uint64_t length() const noexcept { return last - first + 1; }
    friend bool operator==(const ByteSpan&, const ByteSpan&) = default;
};

/// Apache 2.4's MaxRanges, MaxRangeOverlaps and MaxRangeReversals defaults: past any of
/// them the field is ignored and the whole representation is sent (CVE-2011-3192).
struct RangeLimits {
    std::size_t max_ranges = 200;    ///< parts left after merging
    std::size_t max_overlaps = 20;   ///< specs merged into the one before them
    std::size_t max_reversals = 20;  ///< merged specs that start before the one before them
};

struct ByteRanges {
    enum class Kind : std::uint8_t {
        ignore,         ///< absent, malformed, not bytes, or over a limit: answer 200
        satisfiable,    ///< answer 206 with `spans` (one: a single part; more: multipart)
        unsatisfiable,  ///< answer 416 with "Content-Range: bytes */size"
    };
    Kind kind = Kind::ignore;
    std::vector<ByteSpan> spans;  ///< in the order asked, overlapping or adjacent ones merged

    std::uint64_t total_length() const noexcept;
};

/// Evaluates a Range field value against a representation of `size` bytes.
ByteRanges parse_byte_ranges(std::string_view value, std::uint64_t size,
                             const RangeLimits& limits = {});

}  // namespace trident
