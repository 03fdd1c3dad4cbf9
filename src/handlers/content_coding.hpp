#pragma once

// Which precompressed sibling of a file to serve, from the request's Accept-Encoding
// (RFC 9110 §12.5.3): "file.br" for br, "file.gz" for gzip, or the file itself.

#include <cstdint>
#include <string_view>

namespace trident {

enum class ContentCoding : std::uint8_t { identity, br, gzip };

/// The token for Content-Encoding ("br", "gzip"); empty for identity.
std::string_view content_coding_name(ContentCoding coding) noexcept;

/// The file-name suffix of a coding's sibling (".br", ".gz"); empty for identity.
std::string_view content_coding_suffix(ContentCoding coding) noexcept;

/// The coding to answer with, given the Accept-Encoding field value (`present` false when
/// the request has none) and which siblings exist. Highest qvalue wins; on a tie br, then
/// gzip, then identity; q=0 refuses a coding.
ContentCoding choose_content_coding(std::string_view accept_encoding, bool present, bool has_br,
                                    bool has_gzip) noexcept;

}  // namespace trident
