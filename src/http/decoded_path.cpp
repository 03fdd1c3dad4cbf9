#include "http/decoded_path.hpp"

#include <cstdint>

#include "http/syntax.hpp"

namespace trident::http {

namespace {

/// An incremental UTF-8 validator (RFC 3629 §4's table), fed one decoded byte at a time.
class Utf8Validator {
public:
    /// False as soon as the bytes so far cannot start a well-formed sequence.
    bool feed(std::uint8_t byte) noexcept {
        if (pending_ == 0) {
            return start(byte);
        }
        if (byte < lower_ || byte > upper_) {
            return false;
        }
        // Only the second byte has the narrowed range; later ones take any continuation byte.
        lower_ = 0x80;
        upper_ = 0xBF;
        --pending_;
        return true;
    }
    /// True when no sequence is left unfinished.
    bool complete() const noexcept { return pending_ == 0; }

private:
    bool start(std::uint8_t byte) noexcept {
        lower_ = 0x80;
        upper_ = 0xBF;
        if (byte < 0x80) {
            return true;
        }
        if (byte >= 0xC2 && byte <= 0xDF) {  // C0, C1 would be overlong two-byte forms
            pending_ = 1;
        } else if (byte == 0xE0) {
            pending_ = 2;
            lower_ = 0xA0;  // overlong three-byte form below
        } else if (byte == 0xED) {
            pending_ = 2;
            upper_ = 0x9F;  // UTF-16 surrogates D800-DFFF above
        } else if (byte >= 0xE1 && byte <= 0xEF) {
            pending_ = 2;
        } else if (byte == 0xF0) {
            pending_ = 3;
            lower_ = 0x90;  // overlong four-byte form below
        } else if (byte >= 0xF1 && byte <= 0xF3) {
            pending_ = 3;
        } else if (byte == 0xF4) {
            pending_ = 3;
            upper_ = 0x8F;  // past U+10FFFF above
        } else {
            return false;  // a stray continuation byte, or F5-FF
        }
        return true;
    }

    int pending_ = 0;
    std::uint8_t lower_ = 0x80;
    std::uint8_t upper_ = 0xBF;
};

}  // namespace

std::string_view check_decoded_path(std::string_view raw_path) noexcept {
    Utf8Validator utf8;
    for (std::size_t i = 0; i < raw_path.size(); ++i) {
        auto byte = static_cast<std::uint8_t>(raw_path[i]);
        if (byte == '%') {
            // RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG.
            if (raw_path.size() - i < 3) {
                return "malformed percent-encoding in path";
            }
            const int high = hex_digit_value(raw_path[i + 1]);
            const int low = hex_digit_value(raw_path[i + 2]);
            if (high < 0 || low < 0) {
                return "malformed percent-encoding in path";
            }
            byte = static_cast<std::uint8_t>(high * 16 + low);
            i += 2;
        }
        if (byte < 0x20 || byte == 0x7F) {
            return "control byte in decoded path";
        }
        if (!utf8.feed(byte)) {
            return "invalid UTF-8 in decoded path";
        }
    }
    if (!utf8.complete()) {
        return "invalid UTF-8 in decoded path";
    }
    return {};
}

}  // namespace trident::http
