// Host syntax (RFC 3986 §3.2.2-§3.2.3) as the Host field and absolute-form targets use it.

#include "http/request_target.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace trident::http
