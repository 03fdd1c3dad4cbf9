#include "handlers/byte_range.hpp"

#include <algorithm>
#include <optional>

#include "http/syntax.hpp"
#include "trident/http/request.hpp"

namespace trident {

namespace {

using http::parse_digits;
using http::trim_ows;

/// One range-spec evaluated on its own (RFC 9110 §14.1.1).
struct SpecResult {
    enum class Kind : std::uint8_t { invalid, satisfiable, unsatisfiable, whole };
    Kind kind = Kind::invalid;
    ByteSpan span;
};

SpecResult evaluate_spec(std::string_view spec, std::uint64_t size) noexcept {
    using Kind = SpecResult::Kind;
    const std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) {
        return {};
    }
    const std::string_view first_text = spec.substr(0, dash);
    const std::string_view last_text = spec.substr(dash + 1);

    if (first_text.empty()) {
        // suffix-range = "-" suffix-length. §14.1.1: a zero suffix-length is valid but never
        // satisfiable (Apache ignores the field instead; the RFC's 416 is kept here).
        const std::optional<std::uint64_t> suffix = parse_digits(last_text);
        if (!suffix) {
            return {};
        }
        if (*suffix == 0 || size == 0) {
            return {Kind::unsatisfiable, {}};
        }
        const std::uint64_t length = std::min(*suffix, size);
        return {Kind::satisfiable, {size - length, size - 1}};
    }

    // int-range = first-pos "-" [ last-pos ].
    const std::optional<std::uint64_t> first = parse_digits(first_text);
    if (!first) {
        return {};
    }
    std::uint64_t last = size == 0 ? 0 : size - 1;
    if (!last_text.empty()) {
        const std::optional<std::uint64_t> parsed = parse_digits(last_text);
        if (!parsed || *parsed < *first) {
            return {};  // §14.1.1: last-pos < first-pos makes the range-spec invalid
        }
        last = std::min(last, *parsed);
    }
    if (*first >= size) {
        return {Kind::unsatisfiable, {}};
    }
    // Apache: an open "0-" is the whole representation, whatever else the field lists.
    const Kind kind = *first == 0 && last_text.empty() ? Kind::whole : Kind::satisfiable;
    return {kind, {*first, last}};
}

/// Whether `next` overlaps `set` or touches it end to end.
bool touches(const ByteSpan& set, const ByteSpan& next) noexcept {
    return next.first <= set.last + 1 && next.last + 1 >= set.first;
}

}  // namespace

std::uint64_t ByteRanges::total_length() const noexcept {
    std::uint64_t total = 0;
    for (const ByteSpan& span : spans) {
        total += span.length();
    }
    return total;
}

ByteRanges parse_byte_ranges(std::string_view value, std::uint64_t size,
                             const RangeLimits& limits) {
    using Kind = ByteRanges::Kind;
    const ByteRanges ignore{};

    // RFC 9110 §14.2: ranges-specifier = range-unit "=" range-set; the unit is
    // case-insensitive, and an unknown unit means the field is ignored.
    value = trim_ows(value);
    constexpr std::string_view kUnit = "bytes=";
    if (value.size() < kUnit.size() || !http::iequals(value.substr(0, kUnit.size()), kUnit)) {
        return ignore;
    }
    // The field's length is bounded by limits.request_field_size, and so is this walk.
    std::string_view rest = value.substr(kUnit.size());

    ByteRanges result;
    result.kind = Kind::satisfiable;
    std::optional<ByteSpan> pending;  // the set the next spec may merge into
    bool saw_unsatisfiable = false;
    std::size_t overlaps = 0;
    std::size_t reversals = 0;
    while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        const std::string_view element = trim_ows(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (element.empty()) {
            continue;  // RFC 9110 §5.6.1.2: empty list elements are not counted
        }
        const SpecResult spec = evaluate_spec(element, size);
        switch (spec.kind) {
            case SpecResult::Kind::invalid:
                return ignore;  // §14.2: an invalid ranges-specifier may be ignored as a whole
            case SpecResult::Kind::unsatisfiable:
                saw_unsatisfiable = true;
                continue;
            case SpecResult::Kind::whole:
                result.spans.clear();
                pending = spec.span;
                rest = {};
                continue;
            case SpecResult::Kind::satisfiable:
                break;
        }
        // §14.2 allows coalescing overlapping ranges; Apache merges each spec into the set
        // before it, counting the merges, so ascending lists merge and others are bounded.
        if (!pending) {
            pending = spec.span;
        } else if (touches(*pending, spec.span)) {
            ++overlaps;
            if (spec.span.first < pending->first) {
                ++reversals;
            }
            pending = ByteSpan{std::min(pending->first, spec.span.first),
                               std::max(pending->last, spec.span.last)};
        } else {
            result.spans.push_back(*pending);
            pending = spec.span;
        }
    }
    if (pending) {
        result.spans.push_back(*pending);
    }
    if (result.spans.empty()) {
        // §14.1.2, §15.5.17: every range-spec unsatisfiable → 416; no range-spec at all → 200.
        return saw_unsatisfiable ? ByteRanges{Kind::unsatisfiable, {}} : ignore;
    }
    // The Apache killer (CVE-2011-3192): many overlapping or out-of-order ranges must never
    // cost more than the whole representation, so past a limit the whole is sent with 200.
    if (overlaps > limits.max_overlaps || reversals > limits.max_reversals ||
        result.spans.size() > limits.max_ranges || result.total_length() > size) {
        return ignore;
    }
    return result;
}

}  // namespace trident
