#pragma once

// Turns the path of a request-target into a safe path below the document root:
// percent-decoding, then dot-segment removal (RFC 3986 §5.2.4). The result never climbs
// above "/".

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "trident/http/status.hpp"

namespace trident {

/// Either the normalised path (starts with '/', no "." or ".." segments, no "//"), or the
/// status to answer: 400 for malformed escapes, NUL, backslash, control bytes or an attempt
/// to climb above the root; 404 for an encoded slash ("%2F", as Apache's
/// AllowEncodedSlashes Off).
using PathResult = std::variant<std::string, http::Status>;

/// `raw_path` is the request-target's path, before any '?'. It must start with '/'.
PathResult normalize_request_path(std::string_view raw_path);

/// The same into `path`, whose memory is reused: nullopt when `path` holds the result.
std::optional<http::Status> normalize_request_path(std::string_view raw_path, std::string& path);

}  // namespace trident
