#pragma once

// Conditional requests (RFC 9110 §13): the preconditions of a GET or HEAD evaluated against
// a representation's validators, in §13.2.2's order, and If-Range (§13.1.5).

#include <cstdint>
#include <ctime>
#include <string_view>

#include "trident/http/request.hpp"

namespace trident {

/// The outcome of RFC 9110 §13.2.2's evaluation order, steps 1-4.
enum class Precondition : std::uint8_t {
    proceed,       ///< answer as if there were no precondition
    not_modified,  ///< 304 (If-None-Match / If-Modified-Since on GET or HEAD)
    failed,        ///< 412
};

/// `etag` is the representation's strong entity-tag with its quotes; `mtime` its
/// Last-Modified time.
Precondition evaluate_preconditions(const http::Request& request, std::string_view etag,
                                    std::time_t mtime) noexcept;

/// Whether a Range may be honoured given the request's If-Range value (empty: no If-Range).
/// An entity-tag must match strongly; a date must be exactly the Last-Modified and strong,
/// that is `mtime` lies in a second already over at `now` (RFC 9110 §8.8.2.2). Anything
/// else means "send the whole representation" (§13.1.5).
bool if_range_allows(std::string_view value, std::string_view etag, std::time_t mtime,
                     std::time_t now) noexcept;

}  // namespace trident
