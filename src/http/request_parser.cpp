#include "http/request_parser.hpp"

#include <cstring>
#include <optional>

#include "http/field_line.hpp"
#include "http/request_target.hpp"
#include "http/syntax.hpp"

namespace trident::http {

namespace {

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

// No method Trident implements, nor any registered one, is longer; a longer token is an
// unknown method (501), refused before the rest of the line is buffered.
constexpr std::size_t kMaxMethodLength = 32;

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

// RFC 9112 §6.1: Transfer-Encoding = #transfer-coding;
// transfer-coding = token *( OWS ";" OWS transfer-parameter );
// transfer-parameter = token BWS "=" BWS ( token / quoted-string ).
// Adds this line's codings to `codings`; false when the value is malformed or lists none.
bool parse_transfer_encoding(std::string_view value, TransferCodings& codings) noexcept {
    std::size_t i = 0;
    const auto skip_ows = [&] {
        while (i < value.size() && is_ows(value[i])) {
            ++i;
        }
    };
    bool any = false;
    while (i < value.size()) {
        if (value[i] == ',' || is_ows(value[i])) {
            ++i;  // RFC 9110 §5.6.1: empty list elements are allowed
            continue;
        }
        const std::size_t name_length = token_length(value.substr(i));
        if (name_length == 0) {
            return false;
        }
        const std::string_view name = value.substr(i, name_length);
        i += name_length;
        bool parameters = false;
        for (skip_ows(); i < value.size() && value[i] == ';'; skip_ows()) {
            ++i;
            skip_ows();
            const std::size_t key = token_length(value.substr(i));
            i += key;
            skip_ows();
            if (key == 0 || i == value.size() || value[i] != '=') {
                return false;
            }
            ++i;
            skip_ows();
            const std::string_view rest = value.substr(i);
            const std::size_t length = !rest.empty() && rest.front() == '"'
                                           ? quoted_string_length(rest)
                                           : token_length(rest);
            if (length == 0) {
                return false;
            }
            i += length;
            parameters = true;
        }
        if (i < value.size() && value[i] != ',') {
            return false;
        }
        any = true;
        const bool chunked = iequals(name, "chunked");
        if (chunked) {
            if (parameters) {
                return false;  // RFC 9112 §7.1: chunked takes no parameters
            }
            codings.chunked_twice = codings.chunked_twice || codings.chunked;
            codings.chunked = true;
        } else {
            codings.other = true;
        }
        codings.chunked_last = chunked;
    }
    return any;
}

// RFC 9110 §10.1.1: Expect = #expectation; only "100-continue" (case-insensitive, no
// value) is known. Anything else is recorded as unsupported (→ 417).
void parse_expect(std::string_view value, Request& request) noexcept {
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        const std::string_view item = trim_ows(value.substr(0, comma));
        if (iequals(item, "100-continue")) {
            request.expect_continue = true;
        } else if (!item.empty()) {
            request.expect_unsupported = true;
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
    empty_lines_ = 0;
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
            if (!request_line_limits(input.substr(line_start_, content_end - line_start_))) {
                return ParseState::error;
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

bool RequestParser::request_line_limits(std::string_view line) noexcept {
    // An over-long method is an unknown one: 501, as Apache answers, not 414.
    if (token_length(line.substr(0, kMaxMethodLength + 1)) > kMaxMethodLength) {
        fail(Status::not_implemented, "method too long");
        return false;
    }
    // RFC 9112 §3: a request line longer than we accept → 414.
    if (line.size() > limits_.request_line) {
        fail(Status::uri_too_long, "request line too long");
        return false;
    }
    return true;
}

bool RequestParser::request_line(std::string_view input, std::size_t cr,
                                 Request& request) noexcept {
    const std::string_view line = input.substr(line_start_, cr - line_start_);
    if (line.empty()) {
        // RFC 9112 §2.2: ignore empty lines before the request line, a bounded number of them.
        if (++empty_lines_ > kMaxLeadingEmptyLines) {
            fail(Status::bad_request, "too many empty lines before the request line");
            return false;
        }
        return true;
    }
    request.clear();

    // RFC 9112 §3: method SP request-target SP HTTP-version, one SP each.
    std::size_t pos = token_length(line);
    // RFC 9110 §9.1: method = token (1+ tchar).
    if (pos == 0 || pos == line.size() || line[pos] != ' ') {
        fail(Status::bad_request, "invalid method");
        return false;
    }
    request.method_text = line.substr(0, pos);
    request.method = method_from(request.method_text);

    // RFC 9112 §3.2: the target has no whitespace; RFC 3986 allows only visible ASCII, so a
    // control byte or a raw non-ASCII byte → 400.
    const std::size_t target_start = ++pos;
    while (pos < line.size() && line[pos] >= 0x21 && line[pos] <= 0x7E) {
        ++pos;
    }
    if (pos == target_start || pos == line.size() || line[pos] != ' ') {
        fail(Status::bad_request, "invalid request target");
        return false;
    }
    request.target = line.substr(target_start, pos - target_start);

    if (!http_version(line.substr(pos + 1), request)) {
        return false;
    }
    // RFC 9112 §3.2: the target's form must suit the method.
    if (const std::string_view reason = parse_request_target(request); !reason.empty()) {
        fail(Status::bad_request, reason);
        return false;
    }
    phase_ = Phase::fields;
    return true;
}

bool RequestParser::http_version(std::string_view version, Request& request) noexcept {
    // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive, nothing after.
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) ||
        version[6] != '.' || !is_digit(version[7])) {
        fail(Status::bad_request, "malformed HTTP version");
        return false;
    }
    const auto major = static_cast<std::uint8_t>(version[5] - '0');
    const auto minor = static_cast<std::uint8_t>(version[7] - '0');
    // RFC 9110 §15.6.6: a major version above ours → 505. HTTP/0.x has no version in its
    // request line, so one that claims it is malformed → 400 (as Apache).
    if (major >= 2) {
        fail(Status::http_version_not_supported, "unsupported HTTP version");
        return false;
    }
    if (major == 0) {
        fail(Status::bad_request, "malformed HTTP version");
        return false;
    }
    // RFC 9110 §6.2: a higher minor version is answered as the highest we support, 1.1.
    request.version = Version{1, std::uint8_t(minor >= 1 ? 1 : 0)};
    return true;
}

bool RequestParser::field_line(std::string_view input, std::size_t cr, Request& request) noexcept {
    const std::string_view line = input.substr(line_start_, cr - line_start_);
    if (line.empty()) {
        return end_of_head(request);
    }
    // RFC 9110 §5.4: a server may refuse a head with more fields than it wishes to process.
    if (field_count_ >= limits_.request_fields) {
        fail(Status::bad_request, "too many header fields");
        return false;
    }
    Field field;
    if (const std::string_view reason = parse_field_line(line, field); !reason.empty()) {
        fail(Status::bad_request, reason);
        return false;
    }
    ++field_count_;
    return record_semantics(request.fields.emplace_back(field), request);
}

bool RequestParser::end_of_head(Request& request) noexcept {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host → 400, whatever its target's form.
    if (request.version.minor >= 1 && !host_seen_) {
        fail(Status::bad_request, "missing Host");
        return false;
    }
    // RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host.
    if (request.target_form == TargetForm::absolute) {
        request.host = request.authority;
    }
    phase_ = Phase::complete;
    return true;
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
                // RFC 9110 §7.2: Host = uri-host [ ":" port ].
                if (!is_valid_host(field.value)) {
                    fail(Status::bad_request, "invalid Host");
                    return false;
                }
                host_seen_ = true;
                request.host = field.value;
            }
            break;
        case 6:
            if (iequals(field.name, "expect")) {
                parse_expect(field.value, request);
            }
            break;
        case 10:
            if (iequals(field.name, "connection")) {
                parse_connection(field.value, request);
            }
            break;
        case 14:
            if (iequals(field.name, "content-length")) {
                return record_content_length(field.value, request);
            }
            break;
        case 17:
            if (iequals(field.name, "transfer-encoding")) {
                // RFC 9112 §6.1: the codings are recorded here; the framing decision that
                // combines them with Content-Length and the version is the connection's.
                request.has_transfer_encoding = true;
                request.transfer_codings.present = true;
                if (!parse_transfer_encoding(field.value, request.transfer_codings)) {
                    fail(Status::bad_request, "invalid Transfer-Encoding");
                    return false;
                }
            }
            break;
        default:
            break;
    }
    return true;
}

bool RequestParser::record_content_length(std::string_view value, Request& request) noexcept {
    // RFC 9110 §8.6 lets a recipient accept several identical values; Apache with
    // HttpProtocolOptions Strict does not, and neither do we: any second line → 400.
    if (request.content_length) {
        fail(Status::bad_request, "duplicate Content-Length");
        return false;
    }
    // RFC 9110 §8.6: Content-Length = 1*DIGIT; a list, a sign, whitespace inside or a value
    // we cannot represent is invalid, and RFC 9112 §6.3 ¶5 makes that unrecoverable → 400.
    const std::optional<std::uint64_t> length = parse_digits(value);
    if (!length) {
        fail(Status::bad_request, "invalid Content-Length");
        return false;
    }
    request.content_length = length;
    return true;
}

}  // namespace trident::http
