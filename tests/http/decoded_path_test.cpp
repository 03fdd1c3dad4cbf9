// The decoded-path check: percent-escapes well formed, UTF-8 well formed at its boundaries
// (RFC 3629 §4), no control bytes.

#include "http/decoded_path.hpp"

#include <gtest/gtest.h>

#include <string>

namespace trident::http {
namespace {

TEST(DecodedPathTest, AcceptsWellFormedUtf8AtEveryBoundary) {
    for (const char* path : {
             "/", "/plain/ascii.txt", "/a%20b", "/%7E",  // ASCII, escaped or not
             "/%C2%80",                                  // U+0080, the first two-byte form
             "/%DF%BF",                                  // U+07FF
             "/%E0%A0%80",                               // U+0800, the first three-byte form
             "/%ED%9F%BF",                               // U+D7FF, just below the surrogates
             "/%EE%80%80",                               // U+E000, just above them
             "/%EF%BF%BF",                               // U+FFFF
             "/%F0%90%80%80",                            // U+10000, the first four-byte form
             "/%F4%8F%BF%BF",                            // U+10FFFF, the last code point
             "/caf%C3%A9/%e2%82%ac",                     // lower-case hex digits too
         }) {
        EXPECT_EQ(check_decoded_path(path), "") << path;
    }
}

TEST(DecodedPathTest, RefusesWhatIsNotUtf8) {
    for (const char* path : {
             "/%C0%AF",        // overlong '/'
             "/%C1%BF",        // overlong two-byte form
             "/%E0%9F%BF",     // overlong three-byte form
             "/%F0%8F%BF%BF",  // overlong four-byte form
             "/%ED%A0%80",     // U+D800, a surrogate
             "/%ED%BF%BF",     // U+DFFF
             "/%F4%90%80%80",  // U+110000, past the last code point
             "/%F5%80%80%80",  // a lead byte that never appears
             "/%FF",           // nor does this one
             "/%80",           // a continuation byte with no lead
             "/%C3",           // truncated at the end
             "/%E2%82/x",      // truncated by a slash
             "/%C3%A9%A9",     // one continuation byte too many
         }) {
        EXPECT_EQ(check_decoded_path(path), "invalid UTF-8 in decoded path") << path;
    }
}

TEST(DecodedPathTest, RefusesMalformedEscapesAndControlBytes) {
    for (const char* path : {"/%", "/%4", "/a%2", "/%zz", "/%4g"}) {
        EXPECT_EQ(check_decoded_path(path), "malformed percent-encoding in path") << path;
    }
    for (const char* path : {"/%00", "/%0A", "/%0d", "/%1F", "/%7F", "/a%09b"}) {
        EXPECT_EQ(check_decoded_path(path), "control byte in decoded path") << path;
    }
}

}  // namespace
}  // namespace trident::http
