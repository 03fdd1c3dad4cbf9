#pragma once

// Where a request's body ends (RFC 9112 §6.3), decided once its head parsed: no body, a
// Content-Length, or the chunked coding; or an error, with whether the connection can go on.

#include <cstdint>
#include <string_view>

#include "trident/http/request.hpp"
#include "trident/http/status.hpp"

namespace trident::http {

enum class BodyFraming : std::uint8_t { none, length, chunked };

struct Framing {
    BodyFraming body = BodyFraming::none;
    std::uint64_t length = 0;  ///< for BodyFraming::length
    /// ok, or the status to answer. With `close`, the body's end is unknown: answer without
    /// reading it, then close. Without, the body is framed: read it, answer, go on.
    Status status = Status::ok;
    std::string_view reason;
    bool close = false;
};

/// RFC 9112 §6.1-§6.3 for a request, with `body_limit` as limits.request_body.
Framing decide_framing(const Request& request, std::uint64_t body_limit) noexcept;

}  // namespace trident::http
