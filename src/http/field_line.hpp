#pragma once

// One field line of a request head or of a chunked trailer section (RFC 9112 §5), checked
// with the same rules in both places.

#include <string_view>

#include "trident/http/request.hpp"

namespace trident::http {

/// Splits `line` (without its CRLF) into a name and a value trimmed of OWS. Returns an empty
/// view on success, else the reason to log with a 400: obs-fold, a name that is not a token or
/// has whitespace before the colon, or a value with a control byte.
std::string_view parse_field_line(std::string_view line, Field& field) noexcept;

}  // namespace trident::http
