#include "http/request_parser.hpp"

#include <array>
#include <cstring>
#include <optional>

#include "http/syntax.hpp"

namespace trident::http {

namespace {

using ByteClass = std::array<bool, 256>;

constexpr bool is_alpha(unsigned c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_digit(unsigned c) noexcept {
    return c >= '0' && c <= '9';
}
constexpr bool is_one_of(unsigned c, std::string_view set) noexcept {
    return c != 0 && set.find(char(c)) != std::string_view::npos;
}

constexpr ByteClass make_class(bool (*member)(unsigned)) noexcept {
    ByteClass table{};
    for (unsigned c = 0; c < 256; ++c) {
        table[c] = member(c);
    }
    return table;
}

// RFC 9110 §5.6.2: tchar.
constexpr ByteClass kTchar = make_class(
    [](unsigned c) { return is_alpha(c) || is_digit(c) || is_one_of(c, "!#$%&'*+-.^_`|~"); });

// RFC 9110 §5.5: field-vchar / SP / HTAB; obs-text (0x80-0xFF) is allowed, CTLs and DEL are not.
constexpr ByteClass kFieldValue = make_class(
    [](unsigned c) { return (c >= 0x21 && c <= 0x7E) || c >= 0x80 || c == ' ' || c == '\t'; });

// RFC 3986 §3.2.2/§3.2.3: the bytes of uri-host [":" port] (reg-name, IP-literal, IPv4, port).
// No '/', '\\', '@' or controls, so a Host can never smuggle a path into virtual-host lookup.
constexpr ByteClass kHostChar = make_class(
    [](unsigned c) { return is_alpha(c) || is_digit(c) || is_one_of(c, "-._~%!$&'()*+,;=:[]"); });

bool in_class(const ByteClass& table, char c) noexcept {
    return table[static_cast<unsigned char>(c)];
}

// RFC 9110 §9.1: the method token is case-sensitive.
Method method_from(std::string_view token) noexcept {
    switch (token.size()) {
        case 3:
            if (token == "GET") {
                return Method::get;
            }
            if (token == "PUT") {
                return Method::put;
            }
            break;
        case 4:
            if (token == "HEAD") {
                return Method::head;
            }
            if (token == "POST") {
                return Method::post;
            }
            break;
        case 5:
            if (token == "PATCH") {
                return Method::patch;
            }
            if (token == "TRACE") {
                return Method::trace;
            }
            break;
        case 6:
            if (token == "DELETE") {
                return Method::delete_;
            }
            break;
        case 7:
            if (token == "CONNECT") {
                return Method::connect;
            }
            if (token == "OPTIONS") {
                return Method::options;
            }
            break;
        default:
            break;
    }
    return Method::other;
}

// RFC 9110 §8.6: Content-Length = 1*DIGIT. Anything else, including a list, is invalid here.
bool parse_content_length(std::string_view value, std::uint64_t& out) noexcept {
    // A value we cannot represent is as unrecoverable as a malformed one (RFC 9110 §8.6).
    const std::optional<std::uint64_t> parsed = parse_digits(value);
    if (!parsed) {
        return false;
    }
    out = *parsed;
    return true;
}

// RFC 9110 §7.6.1: Connection = #connection-option; list elements may be empty (§5.6.1).
void parse_connection(std::string_view value, Request& request) noexcept {
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        const std::string_view item = trim_ows(value.substr(0, comma));
        if (iequals(item, "close")) {
            request.connection_close = true;
        } else if (iequals(item, "keep-alive")) {
            request.connection_keep_alive = true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
}

}  // namespace

void RequestParser::reset() noexcept {
    scanned_ = 0;
    line_start_ = 0;
    head_length_ = 0;
    field_count_ = 0;
    phase_ = Phase::request_line;
    host_seen_ = false;
    error_ = {};
}

ParseState RequestParser::fail(Status status, std::string_view reason) noexcept {
    phase_ = Phase::error;
    error_ = {status, reason};
    return ParseState::error;
}

ParseState RequestParser::parse(std::string_view input, Request& request) noexcept {
    if (phase_ == Phase::complete) {
        return ParseState::complete;
    }
    if (phase_ == Phase::error) {
        return ParseState::error;
    }
    if (input.size() < scanned_) {
        reset();  // not the same buffer the scan began in: start over rather than read past it
    }
    for (;;) {
        const void* lf = scanned_ < input.size()
                             ? std::memchr(input.data() + scanned_, '\n', input.size() - scanned_)
                             : nullptr;
        const std::size_t line_end =
            lf != nullptr ? std::size_t(static_cast<const char*>(lf) - input.data()) : input.size();
        // A CR right before the LF (or at the end of what is buffered) may be the line ending.
        const bool cr_before = line_end > line_start_ && input[line_end - 1] == '\r';
        const std::size_t content_end = cr_before ? line_end - 1 : line_end;
        scanned_ = lf != nullptr ? line_end + 1 : input.size();

        // Limits first, so the outcome is the same however the bytes were split.
        if (phase_ == Phase::request_line) {
            // RFC 9112 §3: a request line longer than we accept → 414. Leading empty lines
            // (RFC 9112 §2.2) count toward it, so they cannot be sent without bound.
            if (content_end > limits_.request_line) {
                return fail(Status::uri_too_long, "request line too long");
            }
        } else if (content_end - line_start_ > limits_.request_field_size) {
            // RFC 9110 §5.4: a server may reject a field line larger than it wishes to process.
            return fail(Status::bad_request, "field line too long");
        }
        if (lf == nullptr) {
            return ParseState::need_more;
        }
        // RFC 9112 §2.2: lines end with CRLF; a bare LF is rejected, not tolerated, and a
        // bare CR elsewhere fails the byte checks of the line it is in.
        if (!cr_before) {
            return fail(Status::bad_request, "line not terminated by CRLF");
        }
        const bool ok = phase_ == Phase::request_line ? request_line(input, content_end, request)
                                                      : field_line(input, content_end, request);
        if (!ok) {
            return ParseState::error;
        }
        if (phase_ == Phase::complete) {
            head_length_ = scanned_;
            return ParseState::complete;
        }
        line_start_ = scanned_;
    }
}

bool RequestParser::request_line(std::string_view input, std::size_t cr,
                                 Request& request) noexcept {
    const std::string_view line = input.substr(line_start_, cr - line_start_);
    if (line.empty()) {
        return true;  // RFC 9112 §2.2: ignore empty lines before the request line
    }
    request.clear();

    // RFC 9112 §3: method SP request-target SP HTTP-version, one SP each.
    std::size_t pos = 0;
    while (pos < line.size() && in_class(kTchar, line[pos])) {
        ++pos;
    }
    // RFC 9110 §9.1: method = token (1+ tchar).
    if (pos == 0 || pos == line.size() || line[pos] != ' ') {
        fail(Status::bad_request, "invalid method");
        return false;
    }
    request.method_text = line.substr(0, pos);
    request.method = method_from(request.method_text);

    // RFC 9112 §3.2: the target has no whitespace; RFC 3986 allows only visible ASCII.
    const std::size_t target_start = ++pos;
    while (pos < line.size() && line[pos] >= 0x21 && line[pos] <= 0x7E) {
        ++pos;
    }
    if (pos == target_start || pos == line.size() || line[pos] != ' ') {
        fail(Status::bad_request, "invalid request target");
        return false;
    }
    request.target = line.substr(target_start, pos - target_start);
    // RFC 3986 §3.4: the query starts after the first '?'.
    if (const std::size_t q = request.target.find('?'); q != std::string_view::npos) {
        request.query = request.target.substr(q + 1);
    }

    // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive, nothing after.
    const std::string_view version = line.substr(pos + 1);
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" ||
        !is_digit(static_cast<unsigned char>(version[5])) || version[6] != '.' ||
        !is_digit(static_cast<unsigned char>(version[7]))) {
        fail(Status::bad_request, "malformed HTTP version");
        return false;
    }
    const auto major = static_cast<std::uint8_t>(version[5] - '0');
    const auto minor = static_cast<std::uint8_t>(version[7] - '0');
    // RFC 9110 §6.2 and §15.6.6: we speak only major version 1 → 505 for any other.
    if (major != 1) {
        fail(Status::http_version_not_supported, "unsupported HTTP version");
        return false;
    }
    // RFC 9110 §6.2: a higher minor version is answered as the highest we support, 1.1.
    request.version = Version{1, std::uint8_t(minor >= 1 ? 1 : 0)};
    phase_ = Phase::fields;
    return true;
}

bool RequestParser::field_line(std::string_view input, std::size_t cr, Request& request) noexcept {
    const std::string_view line = input.substr(line_start_, cr - line_start_);
    if (line.empty()) {
        // RFC 9112 §3.2: an HTTP/1.1 request without Host → 400.
        if (request.version.minor >= 1 && !host_seen_) {
            fail(Status::bad_request, "missing Host");
            return false;
        }
        phase_ = Phase::complete;
        return true;
    }
    // RFC 9110 §5.4: a server may refuse a head with more fields than it wishes to process.
    if (field_count_ >= limits_.request_fields) {
        fail(Status::bad_request, "too many header fields");
        return false;
    }
    // RFC 9112 §5.2 (and §2.2 for the first line): obs-fold is rejected.
    if (is_ows(line.front())) {
        fail(Status::bad_request, "obsolete line folding");
        return false;
    }
    // RFC 9112 §5.1: field-name ":" with no whitespace before the colon (→ 400).
    std::size_t pos = 0;
    while (pos < line.size() && in_class(kTchar, line[pos])) {
        ++pos;
    }
    if (pos == 0 || pos == line.size() || line[pos] != ':') {
        fail(Status::bad_request, "invalid field name");
        return false;
    }
    const std::string_view name = line.substr(0, pos);

    // RFC 9112 §5.1: OWS field-value OWS. RFC 9110 §5.5: CTLs (NUL, CR, LF, ...) and DEL → 400.
    std::size_t begin = pos + 1;
    while (begin < line.size() && is_ows(line[begin])) {
        ++begin;
    }
    std::size_t end = begin;
    for (std::size_t i = begin; i < line.size(); ++i) {
        if (!in_class(kFieldValue, line[i])) {
            fail(Status::bad_request, "invalid field value");
            return false;
        }
        if (!is_ows(line[i])) {
            end = i + 1;
        }
    }
    ++field_count_;
    const Field& field = request.fields.emplace_back(Field{name, line.substr(begin, end - begin)});
    return record_semantics(field, request);
}

bool RequestParser::record_semantics(const Field& field, Request& request) noexcept {
    // Dispatch on length first: most fields are none of these.
    switch (field.name.size()) {
        case 4:
            if (iequals(field.name, "host")) {
                // RFC 9112 §3.2: more than one Host line, or an invalid value → 400.
                if (host_seen_) {
                    fail(Status::bad_request, "duplicate Host");
                    return false;
                }
                for (const char c : field.value) {
                    if (!in_class(kHostChar, c)) {
                        fail(Status::bad_request, "invalid Host");
                        return false;
                    }
                }
                host_seen_ = true;
                request.host = field.value;
            }
            break;
        case 10:
            if (iequals(field.name, "connection")) {
                parse_connection(field.value, request);
            }
            break;
        case 14:
            if (iequals(field.name, "content-length")) {
                std::uint64_t length = 0;
                // RFC 9112 §6.3: an invalid Content-Length is unrecoverable → 400.
                if (!parse_content_length(field.value, length)) {
                    fail(Status::bad_request, "invalid Content-Length");
                    return false;
                }
                // RFC 9110 §8.6: repeated identical values may be accepted; differing → 400.
                if (request.content_length && *request.content_length != length) {
                    fail(Status::bad_request, "conflicting Content-Length");
                    return false;
                }
                request.content_length = length;
            }
            break;
        case 17:
            if (iequals(field.name, "transfer-encoding")) {
                // RFC 9112 §6.1: framing with Transfer-Encoding is the caller's decision.
                request.has_transfer_encoding = true;
            }
            break;
        default:
            break;
    }
    return true;
}

}  // namespace trident::http
