// Host syntax (RFC 3986 §3.2.2-§3.2.3) as the Host field and absolute-form targets use it.

#include "http/request_target.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "handlers/request_path.hpp"
#include "http/decoded_path.hpp"

namespace trident::http {
namespace {

TEST(RequestTargetTest, HostAcceptsEveryUriHostForm) {
    for (const char* host : {
             "",  // empty reg-name: RFC 9112 §3.2
             "example.com",
             "EXAMPLE.com:8080",
             "a-b_c~d.example:",
             "127.0.0.1",
             "127.0.0.1:65535",
             "[::1]",
             "[::1]:8080",
             "[2001:db8::1.2.3.4]",
             "[v7.a:b!]",
             "%41%42.example",
             "sub!$&'()*+,;=delims",
         }) {
        EXPECT_TRUE(is_valid_host(host)) << host;
    }
}

TEST(RequestTargetTest, HostRefusesWhatCouldCarryAPathOrAnotherHost) {
    for (const char* host : {
             "a/b",   "a\\b", "u@a",    "a b",     "a:b",  "a:1:2", "a:8080x",
             "[::1",  "::1",  "[::1]x", "[::1]:x", "[zz]", "[]",    "[v.x]",
             "[v1.]", "a%2",  "a%zz",   "a?b",     "a#b",
         }) {
        EXPECT_FALSE(is_valid_host(host)) << host;
    }
}

// The core skips decoding, normalising and the hidden-file check for a path the parser
// found plain. Over every short path of separators, dots, escapes and backslashes, a plain
// one must be exactly what those checks would pass unchanged.
TEST(RequestTargetTest, APlainPathIsOneTheChecksWouldPassUnchanged) {
    constexpr std::string_view kAlphabet = "/a.%2e\\h";
    std::size_t plain = 0;
    std::string target;
    for (std::size_t length = 1; length <= 6; ++length) {
        std::size_t combinations = 1;
        for (std::size_t i = 1; i < length; ++i) {
            combinations *= kAlphabet.size();
        }
        for (std::size_t n = 0; n < combinations; ++n) {
            target = "/";
            for (std::size_t i = 1, rest = n; i < length; ++i, rest /= kAlphabet.size()) {
                target += kAlphabet[rest % kAlphabet.size()];
            }
            target += "?q=/../%zz";  // the query is not the path
            Request request;
            request.method = Method::get;
            request.target = target;
            ASSERT_TRUE(parse_request_target(request).empty()) << target;
            if (!request.plain_path) {
                continue;
            }
            ++plain;
            const std::string path(request.target_path);
            EXPECT_TRUE(check_decoded_path(path).empty()) << path;
            const PathResult normal = normalize_request_path(path);
            const auto* normal_path = std::get_if<std::string>(&normal);
            ASSERT_NE(normal_path, nullptr) << path;
            EXPECT_EQ(*normal_path, path);
            EXPECT_EQ(path.find("/."), std::string::npos) << path;  // so no "/.ht" either
        }
    }
    EXPECT_GT(plain, 100u);
}

}  // namespace
}  // namespace trident::http
