#pragma once

// What the path of a request-target says once percent-decoded: Trident maps paths to file
// names, which it takes as UTF-8 (RFC 3986 §2.5). Checked by the connection before routing,
// beside the normalisation in handlers/request_path.cpp.

#include <string_view>

namespace trident::http {

/// Checks `raw_path` (before any '?') as it decodes: every '%' starts a two-digit hex escape,
/// and the decoded bytes are well-formed UTF-8 (RFC 3629 §3: no overlong form, no UTF-16
/// surrogate, nothing past U+10FFFF) with no control byte. Returns an empty view when the
/// path is acceptable, else the reason for a 400. Allocates nothing.
std::string_view check_decoded_path(std::string_view raw_path) noexcept;

}  // namespace trident::http
