#pragma once

// The request-target's four forms (RFC 9112 §3.2) and the authority syntax shared with Host
// (RFC 3986 §3.2). Pure functions over views: nothing is copied or decoded here.

#include <string_view>

#include "trident/http/request.hpp"

namespace trident::http {

/// Whether `text` is uri-host [ ":" port ] (RFC 3986 §3.2.2-§3.2.3), the value Host carries
/// (RFC 9110 §7.2). An empty text is an empty reg-name, which RFC 9112 §3.2 allows in Host.
bool is_valid_host(std::string_view text) noexcept;

/// Classifies `request.target` and checks its form against `request.method`: sets
/// target_form, target_path, query and authority. Returns an empty view on success, else
/// the reason to log with a 400.
std::string_view parse_request_target(Request& request) noexcept;

}  // namespace trident::http
