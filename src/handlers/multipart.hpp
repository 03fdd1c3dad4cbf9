#pragma once

// multipart/byteranges (RFC 9110 §14.6): the body of a 206 answering several ranges, as
// pieces that interleave small part heads with ranges of the file, so that no byte of the
// file is read into memory.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/byte_range.hpp"
#include "trident/http/response.hpp"

namespace trident {

struct MultipartBody {
    std::string content_type;  ///< "multipart/byteranges; boundary=..."
    std::vector<http::BodyPiece> pieces;
    std::uint64_t length = 0;  ///< the exact Content-Length: every piece's bytes and range
};

/// A fresh boundary: random, so that it is unlikely to occur in the parts (RFC 2046 §5.1.1
/// allows up to 70 characters; this is 40).
std::string make_multipart_boundary();

/// The body for `spans` of a representation of `size` bytes whose media type is
/// `part_type`.
MultipartBody make_multipart_byteranges(const std::vector<ByteSpan>& spans, std::uint64_t size,
                                        std::string_view part_type, std::string_view boundary);

}  // namespace trident
