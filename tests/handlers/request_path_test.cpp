#include "handlers/request_path.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace trident {
namespace {

using http::Status;

struct PathCase {
    std::string_view raw;
    std::string_view expected;  ///< the normalised path, when accepted
};

struct RefusedCase {
    std::string_view raw;
    Status status;
};

std::string describe(const PathResult& result) {
    if (const auto* path = std::get_if<std::string>(&result)) {
        return "path \"" + *path + "\"";
    }
    return "status " + std::to_string(http::code(std::get<Status>(result)));
}

TEST(RequestPathTest, NormalisesAcceptedPaths) {
    const PathCase cases[] = {
        {"/", "/"},
        {"/index.html", "/index.html"},
        {"/a/b/c", "/a/b/c"},
        {"//a///b", "/a/b"},
        {"/a/./b/", "/a/b/"},
        {"/a/b/../c", "/a/c"},
        {"/a/b/..", "/a/"},
        {"/a/.", "/a/"},
        {"/.", "/"},
        {"/a/..", "/"},
        {"/dir/", "/dir/"},
        {"/dir", "/dir"},
        {"/dir//", "/dir/"},
        {"/a/%2e/b", "/a/b"},
        {"/a/%2E%2E/b", "/b"},
        {"/a%20b", "/a b"},
        {"/%7Euser/", "/~user/"},
        {"/caf%C3%A9.txt", "/caf\xC3\xA9.txt"},
        {"/caf\xC3\xA9.txt", "/caf\xC3\xA9.txt"},
        {"/%252e%252e/", "/%2e%2e/"},  // decoded once: a literal "%2e%2e" name
        {"/...", "/..."},
        {"/..a/.b", "/..a/.b"},
        {"/a/b/c/../../d", "/a/d"},
    };
    for (const PathCase& c : cases) {
        const PathResult result = normalize_request_path(c.raw);
        const auto* path = std::get_if<std::string>(&result);
        ASSERT_NE(path, nullptr) << c.raw << " gave " << describe(result);
        EXPECT_EQ(*path, c.expected) << c.raw;
    }
}

TEST(RequestPathTest, RefusesMalformedAndTraversingPaths) {
    const RefusedCase cases[] = {
        {"", Status::bad_request},
        {"a/b", Status::bad_request},
        {"*", Status::bad_request},
        {"/..", Status::bad_request},
        {"/../etc/passwd", Status::bad_request},
        {"/%2e%2e/%2e%2e/etc/passwd", Status::bad_request},
        {"/%2E%2e/etc/passwd", Status::bad_request},
        {"/a/%2e%2e/%2e%2e/x", Status::bad_request},
        {"/a/../../x", Status::bad_request},
        {"/./../x", Status::bad_request},
        {"/a/b/../../../", Status::bad_request},
        {"/a%00", Status::bad_request},
        {"/a%00.html", Status::bad_request},
        {std::string_view("/a\0b", 4), Status::bad_request},
        {"/a\\b", Status::bad_request},
        {"/a%5Cb", Status::bad_request},
        {"/a%5c..%5c..%5cwin.ini", Status::bad_request},
        {"/a%0Ab", Status::bad_request},
        {"/a%0d%0aSet-Cookie:x", Status::bad_request},
        {"/a\tb", Status::bad_request},
        {"/a\x7F", Status::bad_request},
        {"/a%7f", Status::bad_request},
        {"/a%1f", Status::bad_request},
        {"/a%", Status::bad_request},
        {"/a%2", Status::bad_request},
        {"/a%zz", Status::bad_request},
        {"/a%g0", Status::bad_request},
        {"/a%2fb", Status::not_found},
        {"/a%2Fb", Status::not_found},
        {"/..%2f..%2fetc/passwd", Status::not_found},
        {"/a%2fb/%zz", Status::bad_request},  // malformed outranks the encoded slash
    };
    for (const RefusedCase& c : cases) {
        const PathResult result = normalize_request_path(c.raw);
        const auto* status = std::get_if<Status>(&result);
        ASSERT_NE(status, nullptr) << c.raw << " gave " << describe(result);
        EXPECT_EQ(*status, c.status) << c.raw;
    }
}

TEST(RequestPathTest, ResultNeverContainsDotSegmentsOrDoubleSlashes) {
    const std::string_view inputs[] = {"/a/./b/../c//d/.", "/x/%2e/y/%2e%2e/z/", "///a//..//b"};
    for (std::string_view raw : inputs) {
        const PathResult result = normalize_request_path(raw);
        const auto* path = std::get_if<std::string>(&result);
        ASSERT_NE(path, nullptr) << raw;
        EXPECT_EQ(path->front(), '/');
        EXPECT_EQ(path->find("//"), std::string::npos) << *path;
        EXPECT_EQ(path->find("/./"), std::string::npos) << *path;
        EXPECT_EQ(path->find("/../"), std::string::npos) << *path;
    }
}

// Every short path over an alphabet of separators, dots and escapes comes out normal, and
// normalising a normal path changes nothing.
TEST(RequestPathTest, EveryShortPathComesOutNormal) {
    constexpr std::string_view kAlphabet = "/a.%2e";
    std::string raw;
    std::size_t accepted = 0;
    for (std::size_t length = 1; length <= 7; ++length) {
        std::size_t combinations = 1;
        for (std::size_t i = 1; i < length; ++i) {
            combinations *= kAlphabet.size();
        }
        for (std::size_t n = 0; n < combinations; ++n) {
            raw = "/";
            for (std::size_t i = 1, rest = n; i < length; ++i, rest /= kAlphabet.size()) {
                raw += kAlphabet[rest % kAlphabet.size()];
            }
            const PathResult result = normalize_request_path(raw);
            const auto* path = std::get_if<std::string>(&result);
            if (path == nullptr) {
                continue;
            }
            ++accepted;
            ASSERT_FALSE(path->empty()) << raw;
            EXPECT_EQ(path->front(), '/') << raw;
            EXPECT_EQ(path->find("//"), std::string::npos) << raw << " gave " << *path;
            EXPECT_EQ(path->find("/./"), std::string::npos) << raw << " gave " << *path;
            EXPECT_EQ(path->find("/../"), std::string::npos) << raw << " gave " << *path;
            EXPECT_FALSE(path->ends_with("/.") || path->ends_with("/..")) << raw;
            // Normalising is idempotent: a normal path is its own result.
            const PathResult again = normalize_request_path(*path);
            const auto* same = std::get_if<std::string>(&again);
            ASSERT_NE(same, nullptr) << *path;
            EXPECT_EQ(*same, *path) << raw;
        }
    }
    EXPECT_GT(accepted, 1000u);
}

}  // namespace
}  // namespace trident
