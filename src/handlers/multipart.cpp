#include "handlers/multipart.hpp"

#include <stdlib.h>  // arc4random_buf (glibc 2.36)

#include <array>
#include <charconv>

namespace trident {

namespace {

void append_number(std::string& out, std::uint64_t value) {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
}

}  // namespace

std::string make_multipart_boundary() {
    // 128 bits from the kernel (glibc's arc4random_buf is a getrandom call), once a
    // multipart response. No generator state per thread: a thread_local engine sat in the
    // static TLS block that every thread of every child zeroes at start (2.5 KiB each).
    std::array<std::uint64_t, 2> words{};
    ::arc4random_buf(words.data(), sizeof words);
    constexpr char kHex[] = "0123456789abcdef";
    std::string boundary = "trident-";
    for (std::uint64_t bits : words) {
        for (int i = 0; i < 16; ++i) {
            boundary += kHex[bits & 0xF];
            bits >>= 4;
        }
    }
    return boundary;
}

MultipartBody make_multipart_byteranges(const std::vector<ByteSpan>& spans, std::uint64_t size,
                                        std::string_view part_type, std::string_view boundary) {
    MultipartBody body;
    body.content_type = "multipart/byteranges; boundary=";
    body.content_type += boundary;
    body.pieces.reserve(spans.size() + 1);
    for (std::size_t i = 0; i < spans.size(); ++i) {
        // Each part: delimiter, its own Content-Type and Content-Range, a blank line, the
        // bytes. The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        http::BodyPiece piece;
        std::string& head = piece.bytes;
        head.reserve(96 + boundary.size() + part_type.size());
        if (i > 0) {
            head += "\r\n";
        }
        head += "--";
        head += boundary;
        head += "\r\nContent-Type: ";
        head += part_type;
        head += "\r\nContent-Range: bytes ";
        append_number(head, spans[i].first);
        head += '-';
        append_number(head, spans[i].last);
        head += '/';
        append_number(head, size);
        head += "\r\n\r\n";
        piece.file_offset = spans[i].first;
        piece.file_length = spans[i].length();
        body.length += head.size() + piece.file_length;
        body.pieces.push_back(std::move(piece));
    }
    http::BodyPiece close;
    close.bytes = "\r\n--";
    close.bytes += boundary;
    close.bytes += "--\r\n";
    body.length += close.bytes.size();
    body.pieces.push_back(std::move(close));
    return body;
}

}  // namespace trident
