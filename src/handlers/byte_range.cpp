#include "handlers/byte_range.hpp"

#include <limits>
#include <optional>

#include "http/syntax.hpp"
#include "trident/http/request.hpp"

namespace trident {

namespace {

using http::parse_digits;
using http::trim_ows;

}  // namespace

ByteRange parse_byte_range(std::string_view value, std::uint64_t size) noexcept {
    using Kind = ByteRange::Kind;
    const ByteRange ignore{};
    const ByteRange unsatisfiable{Kind::unsatisfiable, 0, 0};

    // RFC 9110 §14.2: ranges-specifier = range-unit "=" range-set; the unit is
    // case-insensitive, and an unknown unit means the field is ignored.
    value = trim_ows(value);
    constexpr std::string_view kUnit = "bytes=";
    if (value.size() < kUnit.size() || !http::iequals(value.substr(0, kUnit.size()), kUnit)) {
        return ignore;
    }
    const std::string_view spec = trim_ows(value.substr(kUnit.size()));
    if (spec.find(',') != std::string_view::npos) {
        return ignore;  // several ranges need multipart/byteranges, which is not served
    }
    const std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) {
        return ignore;
    }
    const std::string_view first_text = spec.substr(0, dash);
    const std::string_view last_text = spec.substr(dash + 1);

    if (first_text.empty()) {
        // suffix-range = "-" suffix-length (RFC 9110 §14.1.1).
        const std::optional<std::uint64_t> suffix = parse_digits(last_text);
        if (!suffix) {
            return ignore;
        }
        if (*suffix == 0 || size == 0) {
            return unsatisfiable;
        }
        const std::uint64_t length = *suffix < size ? *suffix : size;
        return {Kind::satisfiable, size - length, size - 1};
    }

    // int-range = first-pos "-" [ last-pos ].
    const std::optional<std::uint64_t> first = parse_digits(first_text);
    if (!first) {
        return ignore;
    }
    std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
    if (!last_text.empty()) {
        const std::optional<std::uint64_t> parsed = parse_digits(last_text);
        if (!parsed || *parsed < *first) {
            return ignore;  // §14.1.1: last-pos < first-pos makes the range-spec invalid
        }
        last = *parsed;
    }
    if (*first >= size) {
        return unsatisfiable;
    }
    if (last >= size) {
        last = size - 1;
    }
    return {Kind::satisfiable, *first, last};
}

}  // namespace trident
