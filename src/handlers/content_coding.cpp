#include "handlers/content_coding.hpp"

#include <optional>

#include "http/syntax.hpp"
#include "trident/http/request.hpp"

namespace trident {

namespace {

using http::iequals;
using http::trim_ows;

/// A qvalue in thousandths (RFC 9110 §12.4.2: "0" to "1", up to three decimals); nullopt
/// when malformed, so that a broken weight never turns a refusal into an acceptance.
std::optional<int> parse_qvalue(std::string_view text) noexcept {
    if (text.empty() || text.size() > 5 || (text[0] != '0' && text[0] != '1')) {
        return std::nullopt;
    }
    int value = (text[0] - '0') * 1000;
    if (text.size() > 1) {
        if (text[1] != '.') {
            return std::nullopt;
        }
        int scale = 100;
        for (char c : text.substr(2)) {
            if (c < '0' || c > '9') {
                return std::nullopt;
            }
            value += (c - '0') * scale;
            scale /= 10;
        }
    }
    return value <= 1000 ? std::optional<int>(value) : std::nullopt;
}

/// The weights the field gives each coding we can serve; -1: not mentioned.
struct Weights {
    int br = -1;
    int gzip = -1;
    int identity = -1;
    int star = -1;
};

/// codings = content-coding / "identity" / "*", each with an optional ";q=" weight.
Weights parse_accept_encoding(std::string_view value) noexcept {
    Weights weights;
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        std::string_view element = value.substr(0, comma);
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        const std::size_t semicolon = element.find(';');
        const std::string_view coding = trim_ows(element.substr(0, semicolon));
        if (coding.empty()) {
            continue;  // §5.6.1.2: empty list elements
        }
        int weight = 1000;
        if (semicolon != std::string_view::npos) {
            std::string_view parameter = trim_ows(element.substr(semicolon + 1));
            if (parameter.size() < 2 || (parameter[0] | 0x20) != 'q' || parameter[1] != '=') {
                continue;  // a malformed weight: the element is dropped, never guessed
            }
            const std::optional<int> q = parse_qvalue(trim_ows(parameter.substr(2)));
            if (!q) {
                continue;
            }
            weight = *q;
        }
        if (iequals(coding, "br")) {
            weights.br = weight;
        } else if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
            weights.gzip = weight;  // §8.4.1.3: x-gzip is an alias of gzip
        } else if (iequals(coding, "identity")) {
            weights.identity = weight;
        } else if (coding == "*") {
            weights.star = weight;
        }
    }
    return weights;
}

}  // namespace

std::string_view content_coding_name(ContentCoding coding) noexcept {
    switch (coding) {
        case ContentCoding::br:
            return "br";
        case ContentCoding::gzip:
            return "gzip";
        case ContentCoding::identity:
            break;
    }
    return {};
}

std::string_view content_coding_suffix(ContentCoding coding) noexcept {
    switch (coding) {
        case ContentCoding::br:
            return ".br";
        case ContentCoding::gzip:
            return ".gz";
        case ContentCoding::identity:
            break;
    }
    return {};
}

ContentCoding choose_content_coding(std::string_view accept_encoding, bool present, bool has_br,
                                    bool has_gzip) noexcept {
    // §12.5.3: no Accept-Encoding means any coding is acceptable, but nothing says the
    // client can decode one; an encoded body is sent only to a client that asked.
    if (!present || (!has_br && !has_gzip)) {
        return ContentCoding::identity;
    }
    const Weights weights = parse_accept_encoding(accept_encoding);
    // "*" stands for every coding not named in the field.
    const int br = has_br ? (weights.br >= 0 ? weights.br : weights.star) : -1;
    const int gzip = has_gzip ? (weights.gzip >= 0 ? weights.gzip : weights.star) : -1;
    ContentCoding best = ContentCoding::identity;
    int best_weight = 0;  // q=0 means "not acceptable" (§12.4.2)
    if (br > best_weight) {
        best = ContentCoding::br;
        best_weight = br;
    }
    if (gzip > best_weight) {
        best = ContentCoding::gzip;
        best_weight = gzip;
    }
    // identity is acceptable unless refused, but has no weight of its own unless named: a
    // coding the client asked for is preferred, except over an identity it ranks higher.
    if (weights.identity > best_weight) {
        return ContentCoding::identity;
    }
    return best;
}

}  // namespace trident
