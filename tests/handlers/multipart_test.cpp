#include "handlers/multipart.hpp"

#include <gtest/gtest.h>

#include <string>

namespace trident {
namespace {

/// The body as the driver would send it, with the file's bytes taken from `file`.
std::string render(const MultipartBody& body, std::string_view file) {
    std::string out;
    for (const http::BodyPiece& piece : body.pieces) {
        out += piece.bytes;
        out += file.substr(piece.file_offset, piece.file_length);
    }
    return out;
}

TEST(MultipartTest, BuildsTheRfcShape) {
    const std::string file = "0123456789abcdefghij";
    const MultipartBody body =
        make_multipart_byteranges({{0, 2}, {10, 12}}, file.size(), "text/plain", "XYZ");
    EXPECT_EQ(body.content_type, "multipart/byteranges; boundary=XYZ");
    const std::string expected =
        "--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/20\r\n\r\n012"
        "\r\n--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-12/20\r\n\r\nabc"
        "\r\n--XYZ--\r\n";
    EXPECT_EQ(render(body, file), expected);
    EXPECT_EQ(body.length, expected.size());
    ASSERT_EQ(body.pieces.size(), 3u);
    EXPECT_EQ(body.pieces[0].file_offset, 0u);
    EXPECT_EQ(body.pieces[1].file_offset, 10u);
    EXPECT_EQ(body.pieces[2].file_length, 0u);
}

TEST(MultipartTest, LengthCountsEveryByte) {
    const std::string file(5000, 'x');
    const MultipartBody body =
        make_multipart_byteranges({{0, 0}, {100, 1099}, {4000, 4999}}, file.size(),
                                  "application/octet-stream", make_multipart_boundary());
    EXPECT_EQ(render(body, file).size(), body.length);
}

TEST(MultipartTest, BoundariesAreFreshAndShortEnough) {
    const std::string a = make_multipart_boundary();
    const std::string b = make_multipart_boundary();
    EXPECT_NE(a, b);
    EXPECT_LE(a.size(), 70u);  // RFC 2046 §5.1.1
    for (char c : a) {
        EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-') << a;
    }
}

}  // namespace
}  // namespace trident
