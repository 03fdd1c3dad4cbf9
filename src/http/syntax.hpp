#pragma once

// Common syntax rules of HTTP field values (RFC 9110 §5.6), shared by the parser and the
// handlers that read fields.

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace trident::http {

/// OWS = *( SP / HTAB ) (RFC 9110 §5.6.3).
constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

constexpr std::string_view trim_ows(std::string_view text) noexcept {
    while (!text.empty() && is_ows(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_ows(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

/// 1*DIGIT as an unsigned number: nullopt when empty, when anything but a digit appears
/// (no sign, no space), or when the value does not fit in 64 bits.
constexpr std::optional<std::uint64_t> parse_digits(std::string_view text) noexcept {
    if (text.empty()) {
        return std::nullopt;
    }
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (kMax - digit) / 10) {
            return std::nullopt;
        }
        value = value * 10 + digit;
    }
    return value;
}

}  // namespace trident::http
