#pragma once

#include <cstdint>
#include <string_view>

namespace trident::http {

/// The status codes Trident answers with (RFC 9110 §15).
enum class Status : std::uint16_t {
    continue_ = 100,  ///< interim: the client may send the content (RFC 9110 §15.2.1)
    ok = 200,
    partial_content = 206,
    moved_permanently = 301,
    not_modified = 304,
    bad_request = 400,
    forbidden = 403,
    not_found = 404,
    method_not_allowed = 405,
    request_timeout = 408,
    precondition_failed = 412,
    content_too_large = 413,
    uri_too_long = 414,
    range_not_satisfiable = 416,
    expectation_failed = 417,
    internal_server_error = 500,
    not_implemented = 501,
    service_unavailable = 503,
    http_version_not_supported = 505,
};

/// The reason phrase for a status, e.g. "Not Found".
std::string_view reason_phrase(Status status) noexcept;

constexpr int code(Status status) noexcept {
    return static_cast<int>(status);
}

}  // namespace trident::http
