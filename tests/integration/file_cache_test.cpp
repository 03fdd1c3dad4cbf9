// The static handler's file cache, end to end: with `file_cache_valid: 0` an edit, a
// replacement or a new precompressed sibling is seen by the very next request; with a
// validity period, a cached body is used that long without a look at the disk.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "harness.hpp"

namespace trident::test {
namespace {

/// The strict setting: every use of an entry stats the file.
class FileCacheTest : public ServerTest {
protected:
    void configure(ServerConfig& config) override {
        config.extra_yaml = "static: {file_cache_valid: 0}\n";
    }
    void changes_are_seen(const std::string& padding);
};

/// Serves "cached.html", each version of it `padding` followed by a short text, through an
/// edit in place, a replacement, a new sibling and a removal: every change shows in the
/// next response.
void FileCacheTest::changes_are_seen(const std::string& padding) {
    const fs::path file = site_.root / "cached.html";
    const std::string a = padding + "<p>version A</p>";
    write_file(file, a);
    // The cache keeps only files (and folders) that have not changed for two seconds.
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));

    std::string etag;
    for (int i = 0; i < 3; ++i) {  // the first fills the cache, the others hit it
        const auto response = get("/cached.html");
        ASSERT_TRUE(response) << last_error_;
        EXPECT_EQ(response->body, a);
        EXPECT_FALSE(response->header("Vary"));
        etag = response->header("ETag").value_or("");
    }

    const std::string b = padding + "<p>version B</p>";
    write_file(file, b);  // same size, edited in place
    auto response = get("/cached.html");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->body, b);
    EXPECT_NE(response->header("ETag").value_or(""), etag);

    const std::string c = padding + "<p>version C, longer</p>";
    const fs::path next = site_.root / "next.tmp";
    write_file(next, c);
    fs::rename(next, file);  // replaced, as deploy tools do
    response = get("/cached.html");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->body, c);

    // A sibling appears: gzip-accepting clients get it, and everyone gets Vary (the cache
    // drops the entry the gzip request found out of date).
    write_file(site_.root / "cached.html.gz", "not really gzip");
    response = get("/cached.html", "Accept-Encoding: gzip\r\n");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->header("Content-Encoding").value_or(""), "gzip");
    response = get("/cached.html");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->body, c);
    EXPECT_EQ(response->header("Vary").value_or(""), "Accept-Encoding");

    fs::remove(file);
    response = get("/cached.html");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 404);
}

TEST_P(FileCacheTest, ChangesAreSeenByTheNextRequest) {
    changes_are_seen("");
}

// Over 64 KiB the cache keeps the entry without the bytes, and opens the file at each use.
TEST_P(FileCacheTest, ChangesToALargeFileAreSeenByTheNextRequest) {
    changes_are_seen(std::string(100 * 1024, 'x'));
}

TEST_P(FileCacheTest, ADirectoryIndexFollowsTheFolder) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));  // let the site settle
    for (int i = 0; i < 2; ++i) {
        const auto response = get("/sub/");
        ASSERT_TRUE(response) << last_error_;
        EXPECT_EQ(response->body, site_.sub_index);
    }
    write_file(site_.root / "sub" / "index.html", "<p>new index</p>");
    const auto response = get("/sub/");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->body, "<p>new index</p>");
    fs::remove(site_.root / "sub" / "index.html");
    const auto gone = get("/sub/");
    ASSERT_TRUE(gone) << last_error_;
    EXPECT_EQ(gone->status, 403);  // no index, listings off
}

INSTANTIATE_TEST_SUITE_P(Mpm, FileCacheTest, ::testing::ValuesIn(kMpms), mpm_test_name);

class FileCacheValidityTest : public ServerTest {
protected:
    void configure(ServerConfig& config) override {
        config.extra_yaml = "static: {file_cache_valid: 1h}\n";
    }
};

TEST_P(FileCacheValidityTest, ACachedBodyIsUsedForItsValidityWithoutAStat) {
    const fs::path file = site_.root / "cached.html";
    write_file(file, "<p>version A</p>");
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));  // let it settle
    // One connection, so one process and its cache answer every request.
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    const auto fetch_on_it = [&] {
        EXPECT_TRUE(client.send(make_request("GET", "/cached.html"))) << client.error();
        return client.read_response();
    };
    for (int i = 0; i < 2; ++i) {  // the first fills the cache, the second hits it
        const auto response = fetch_on_it();
        ASSERT_TRUE(response) << client.error();
        EXPECT_EQ(response->body, "<p>version A</p>");
    }
    write_file(file, "<p>version B</p>");  // same size, edited in place
    auto response = fetch_on_it();
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->body, "<p>version A</p>") << "the entry was checked within its hour";

    // A fresh connection may reach another process, whose cache never held the file: it
    // reads the disk. Either way the answer is one whole version, never a mix.
    response = get("/cached.html");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_TRUE(response->body == "<p>version A</p>" || response->body == "<p>version B</p>")
        << response->body;
}

INSTANTIATE_TEST_SUITE_P(Mpm, FileCacheValidityTest, ::testing::ValuesIn(kMpms), mpm_test_name);

}  // namespace
}  // namespace trident::test
