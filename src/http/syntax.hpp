#pragma once

// Common syntax rules of HTTP (RFC 9110 §5.5, §5.6), shared by the parser, the chunked
// decoder and the handlers that read fields.

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace trident::http {

/// Classes of bytes, looked up in one table: these tests run for every byte of a head.
enum CharClass : std::uint8_t {
    kTchar = 1,       ///< RFC 9110 §5.6.2 tchar
    kRegName = 2,     ///< RFC 3986 §2.3 unreserved and §2.2 sub-delims: a reg-name's bytes
    kFieldValue = 4,  ///< RFC 9110 §5.5 field-vchar, SP, HTAB, obs-text
    kOws = 8,         ///< RFC 9110 §5.6.3 SP, HTAB
    /// In a request-target's path: what ends it or may make it other than plain ('?', '%',
    /// '\\', '/'): Request::plain_path.
    kPathMark = 16,
};

inline constexpr std::array<std::uint8_t, 256> kCharClasses = [] {
    std::array<std::uint8_t, 256> table{};
    const auto mark = [&](std::string_view bytes, std::uint8_t cls) {
        for (const char c : bytes) {
            table[static_cast<unsigned char>(c)] |= cls;
        }
    };
    constexpr std::string_view kAlnum =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    mark(kAlnum, kTchar | kRegName);
    mark("!#$%&'*+-.^_`|~", kTchar);
    mark("-._~!$&'()*+,;=", kRegName);
    mark(" \t", kFieldValue | kOws);
    mark("?%\\/", kPathMark);
    for (int byte = 0x21; byte < 0x100; ++byte) {
        if (byte != 0x7F) {
            table[std::size_t(byte)] |= kFieldValue;  // VCHAR and obs-text; not DEL
        }
    }
    return table;
}();

constexpr bool has_class(char c, CharClass cls) noexcept {
    return (kCharClasses[static_cast<unsigned char>(c)] & cls) != 0;
}

/// tchar (RFC 9110 §5.6.2): the bytes of a token.
constexpr bool is_tchar(char c) noexcept {
    return has_class(c, kTchar);
}

/// field-vchar / SP / HTAB (RFC 9110 §5.5): obs-text is allowed; NUL, CR, LF, the other
/// controls and DEL are not (as Apache's HttpProtocolOptions Strict).
constexpr bool is_field_value_byte(char c) noexcept {
    return has_class(c, kFieldValue);
}

/// The length of the token at the start of `text` (0: none there).
constexpr std::size_t token_length(std::string_view text) noexcept {
    std::size_t n = 0;
    while (n < text.size() && is_tchar(text[n])) {
        ++n;
    }
    return n;
}

/// The length of the quoted-string at the start of `text`, quotes included (RFC 9110 §5.6.4);
/// 0 when there is none or it is malformed (unterminated, a control byte inside).
constexpr std::size_t quoted_string_length(std::string_view text) noexcept {
    if (text.empty() || text.front() != '"') {
        return 0;
    }
    for (std::size_t i = 1; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '"') {
            return i + 1;
        }
        if (c == '\\') {
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            if (++i == text.size() || !is_field_value_byte(text[i])) {
                return 0;
            }
        } else if (!is_field_value_byte(c)) {
            return 0;
        }
    }
    return 0;
}

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

/// The value of one hexadecimal digit, or -1.
constexpr int hex_digit_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace trident::http
