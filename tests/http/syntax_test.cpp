#include "http/syntax.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace trident::http {
namespace {

bool is_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool one_of(unsigned char c, std::string_view set) {
    return c != 0 && set.find(char(c)) != std::string_view::npos;
}

// The byte classes come from one table built at compile time; every byte of it is checked
// here against the grammar as the RFCs write it.
TEST(SyntaxTest, ByteClassesFollowTheGrammarForEveryByte) {
    for (int value = 0; value < 256; ++value) {
        const auto c = static_cast<unsigned char>(value);
        const char byte = static_cast<char>(c);
        // RFC 9110 §5.6.2: tchar.
        EXPECT_EQ(is_tchar(byte), is_alnum(c) || one_of(c, "!#$%&'*+-.^_`|~")) << value;
        // RFC 3986 §2.2, §2.3: unreserved / sub-delims.
        EXPECT_EQ(has_class(byte, kRegName), is_alnum(c) || one_of(c, "-._~!$&'()*+,;=")) << value;
        // RFC 9110 §5.5: field-vchar (VCHAR / obs-text), SP, HTAB; no other control, no DEL.
        EXPECT_EQ(is_field_value_byte(byte), (c >= 0x21 && c != 0x7F) || c == ' ' || c == '\t')
            << value;
        EXPECT_EQ(has_class(byte, kOws), c == ' ' || c == '\t') << value;
        EXPECT_EQ(has_class(byte, kPathMark), one_of(c, "?%\\/")) << value;
    }
}

}  // namespace
}  // namespace trident::http
