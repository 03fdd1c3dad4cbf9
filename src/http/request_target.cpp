#include "http/request_target.hpp"

#include "http/syntax.hpp"

namespace trident::http {

namespace {

constexpr bool is_alpha(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}
constexpr bool is_one_of(char c, std::string_view set) noexcept {
    return set.find(c) != std::string_view::npos;
}

// RFC 3986 §2.3 unreserved and §2.2 sub-delims: the bytes of a reg-name besides pct-encoded.
constexpr bool is_reg_name_char(char c) noexcept {
    return has_class(c, kRegName);
}

bool is_port(std::string_view text) noexcept {
    for (const char c : text) {
        if (!is_digit(c)) {
            return false;
        }
    }
    return true;  // RFC 3986 §3.2.3: port = *DIGIT, so an empty port is allowed
}

// RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4address is a
// subset of it.
bool is_reg_name(std::string_view text) noexcept {
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%') {
            if (i + 2 >= text.size() || hex_digit_value(text[i + 1]) < 0 ||
                hex_digit_value(text[i + 2]) < 0) {
                return false;
            }
            i += 2;
        } else if (!is_reg_name_char(text[i])) {
            return false;
        }
    }
    return true;
}

// RFC 3986 §3.2.2: IP-literal = "[" ( IPv6address / IPvFuture ) "]", given without brackets.
// IPv6address is checked for its alphabet only; a wrong address fails later, as any unknown
// host would, and cannot carry a path or whitespace.
bool is_ip_literal(std::string_view text) noexcept {
    if (text.empty()) {
        return false;
    }
    if (text.front() == 'v' || text.front() == 'V') {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        std::size_t i = 1;
        while (i < text.size() && hex_digit_value(text[i]) >= 0) {
            ++i;
        }
        if (i == 1 || i + 1 >= text.size() || text[i] != '.') {
            return false;
        }
        for (++i; i < text.size(); ++i) {
            if (!is_reg_name_char(text[i]) && text[i] != ':') {
                return false;
            }
        }
        return true;
    }
    for (const char c : text) {
        if (hex_digit_value(c) < 0 && c != ':' && c != '.') {
            return false;
        }
    }
    return true;
}

/// Splits uri-host [ ":" port ]; false when malformed. `host` is set to the uri-host part.
bool split_host_port(std::string_view text, std::string_view& host, bool& has_port) noexcept {
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || !is_ip_literal(text.substr(1, close - 1))) {
            return false;
        }
        host = text.substr(0, close + 1);
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') {
            return false;
        }
        has_port = !rest.empty();
        port = has_port ? rest.substr(1) : rest;
    } else {
        const std::size_t colon = text.find(':');
        host = text.substr(0, colon);
        has_port = colon != std::string_view::npos;
        port = has_port ? text.substr(colon + 1) : std::string_view{};
        if (!is_reg_name(host)) {
            return false;
        }
    }
    return is_port(port);
}

// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":".
std::size_t scheme_length(std::string_view target) noexcept {
    if (target.empty() || !is_alpha(target.front())) {
        return 0;
    }
    std::size_t i = 1;
    while (i < target.size() &&
           (is_alpha(target[i]) || is_digit(target[i]) || is_one_of(target[i], "+-."))) {
        ++i;
    }
    return i < target.size() && target[i] == ':' ? i : 0;
}

void split_path_query(std::string_view path_and_query, Request& request) noexcept {
    // One pass finds the query and whether the path is plain (Request::plain_path); most
    // bytes are none of the marks and cost one table look.
    bool plain = !path_and_query.empty() && path_and_query.front() == '/';
    std::size_t q = 0;
    for (; q < path_and_query.size(); ++q) {
        const char c = path_and_query[q];
        if (!has_class(c, kPathMark)) {
            continue;
        }
        if (c == '?') {
            break;
        }
        if (c != '/') {
            plain = false;  // '%' or '\\'
        } else if (q + 1 < path_and_query.size() &&
                   (path_and_query[q + 1] == '/' || path_and_query[q + 1] == '.')) {
            plain = false;  // an empty segment (not the last) or one that begins with '.'
        }
    }
    request.target_path = path_and_query.substr(0, q);
    request.plain_path = plain;
    q = q == path_and_query.size() ? std::string_view::npos : q;
    // RFC 3986 §3.4: the query starts after the first '?'.
    request.query = q == std::string_view::npos ? std::string_view{} : path_and_query.substr(q + 1);
}

std::string_view parse_absolute_form(Request& request) noexcept {
    const std::string_view target = request.target;
    const std::size_t scheme = scheme_length(target);
    const std::string_view name = target.substr(0, scheme);
    // RFC 9112 §3.2.2: a server need only accept absolute-form for its own schemes.
    if (!iequals(name, "http") && !iequals(name, "https")) {
        return "unsupported request target";
    }
    // RFC 9110 §4.2.1-§4.2.2: "//" authority, then path-abempty [ "?" query ].
    const std::string_view rest = target.substr(scheme + 1);
    if (!rest.starts_with("//")) {
        return "absolute-form without authority";
    }
    const std::string_view after = rest.substr(2);
    const std::size_t end = after.find_first_of("/?");
    const std::string_view authority = after.substr(0, end);
    // RFC 9110 §4.2.4: userinfo in an http(s) URI is an error; §4.2.1: so is an empty host.
    std::string_view host;
    bool has_port = false;
    if (authority.find('@') != std::string_view::npos ||
        !split_host_port(authority, host, has_port) || host.empty()) {
        return "invalid authority in request target";
    }
    request.target_form = TargetForm::absolute;
    request.authority = authority;
    if (end == std::string_view::npos) {
        request.target_path = "/";  // RFC 9112 §3.2.2 with §3.3: an empty path is "/"
        request.query = {};
        return {};
    }
    split_path_query(after.substr(end), request);
    if (request.target_path.empty()) {
        request.target_path = "/";
    }
    return {};
}

}  // namespace

bool is_valid_host(std::string_view text) noexcept {
    std::string_view host;
    bool has_port = false;
    return split_host_port(text, host, has_port);
}

std::string_view parse_request_target(Request& request) noexcept {
    const std::string_view target = request.target;
    // RFC 9112 §3.2: no form of request-target has a fragment.
    if (target.find('#') != std::string_view::npos) {
        return "fragment in request target";
    }
    if (request.method == Method::connect) {
        // RFC 9112 §3.2.3: CONNECT takes authority-form, uri-host ":" port, and only it.
        std::string_view host;
        bool has_port = false;
        if (!split_host_port(target, host, has_port) || host.empty() || !has_port ||
            target.back() == ':') {
            return "CONNECT needs an authority-form target";
        }
        request.target_form = TargetForm::authority;
        request.authority = target;
        return {};
    }
    if (target == "*") {
        // RFC 9112 §3.2.4: asterisk-form only for a server-wide OPTIONS.
        if (request.method != Method::options) {
            return "asterisk-form is only for OPTIONS";
        }
        request.target_form = TargetForm::asterisk;
        return {};
    }
    if (target.front() == '/') {
        // RFC 9112 §3.2.1: origin-form = absolute-path [ "?" query ].
        request.target_form = TargetForm::origin;
        split_path_query(target, request);
        return {};
    }
    if (scheme_length(target) > 0) {
        return parse_absolute_form(request);
    }
    return "invalid request target";
}

}  // namespace trident::http
