// Static files over real sockets: GET/HEAD, directories, errors, validators, ranges, path
// traversal, and the same through curl. Every test runs under every MPM in kMpms.

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "harness.hpp"

namespace trident::test {
namespace {

using StaticFilesTest = ServerTest;

TEST_P(StaticFilesTest, RootServesIndexHtmlWithStandardHeaders) {
    const auto response = get("/");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->version, "HTTP/1.1");
    EXPECT_EQ(response->status, 200) << response->head_text();
    EXPECT_EQ(response->body, site_.index_html);
    EXPECT_EQ(response->header("Content-Length"), std::to_string(site_.index_html.size()));
    EXPECT_TRUE(response->header("Content-Type").value_or("").starts_with("text/html"))
        << response->head_text();
    EXPECT_TRUE(response->header("Date")) << response->head_text();
    EXPECT_TRUE(response->header("Server").value_or("").starts_with("Trident/"))
        << response->head_text();
    EXPECT_TRUE(response->header("Connection")) << response->head_text();
    EXPECT_TRUE(response->header("ETag")) << response->head_text();
    EXPECT_TRUE(response->header("Last-Modified")) << response->head_text();
    EXPECT_EQ(response->header_count("Content-Length"), 1u) << response->head_text();
}

TEST_P(StaticFilesTest, ServesFilesByteForByte) {
    const auto text = get("/hello.txt");
    ASSERT_TRUE(text) << last_error_;
    EXPECT_EQ(text->status, 200) << text->head_text();
    EXPECT_EQ(text->body, site_.text);
    EXPECT_TRUE(text->header("Content-Type").value_or("").starts_with("text/plain"))
        << text->head_text();

    const auto big = get("/big.bin");
    ASSERT_TRUE(big) << last_error_;
    EXPECT_EQ(big->status, 200) << big->head_text();
    EXPECT_EQ(big->header("Content-Length"), std::to_string(site_.big.size()));
    EXPECT_TRUE(big->body == site_.big)
        << "1 MiB file differs; got " << big->body.size() << " bytes";
}

TEST_P(StaticFilesTest, HeadHasTheHeadersOfGetAndNoBody) {
    // A HEAD then a GET on one connection: a body after the HEAD would corrupt the second.
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(make_request("HEAD", "/big.bin") + make_request("GET", "/hello.txt")))
        << client.error();
    const auto head = client.read_response(true);
    ASSERT_TRUE(head) << client.error();
    EXPECT_EQ(head->status, 200) << head->head_text();
    EXPECT_EQ(head->header("Content-Length"), std::to_string(site_.big.size()));
    const auto next = client.read_response();
    ASSERT_TRUE(next) << client.error();
    EXPECT_EQ(next->status, 200) << next->head_text();
    EXPECT_EQ(next->body, site_.text);
}

TEST_P(StaticFilesTest, DirectoryWithSlashServesItsIndex) {
    const auto response = get("/sub/");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 200) << response->head_text();
    EXPECT_EQ(response->body, site_.sub_index);
}

TEST_P(StaticFilesTest, DirectoryWithoutSlashRedirects) {
    const auto response = get("/sub");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 301) << response->head_text();
    EXPECT_TRUE(response->header("Location").value_or("").ends_with("/sub/"))
        << response->head_text();
}

TEST_P(StaticFilesTest, MissingFileIs404) {
    for (const char* target : {"/nope.html", "/sub/nope", "/hello.txt/extra"}) {
        const auto response = get(target);
        ASSERT_TRUE(response) << target << ": " << last_error_;
        EXPECT_EQ(response->status, 404) << target << "\n" << response->head_text();
    }
}

TEST_P(StaticFilesTest, OtherMethodsOnAFileAre405WithAllow) {
    for (const char* method : {"POST", "PUT", "DELETE"}) {
        const auto response = fetch(make_request(method, "/index.html", "Content-Length: 0\r\n"));
        ASSERT_TRUE(response) << method << ": " << last_error_;
        EXPECT_EQ(response->status, 405) << method << "\n" << response->head_text();
        EXPECT_EQ(response->header("Allow"), "GET, HEAD") << method << "\n"
                                                          << response->head_text();
    }
}

TEST_P(StaticFilesTest, IfNoneMatchWithTheETagIs304) {
    const auto first = get("/hello.txt");
    ASSERT_TRUE(first) << last_error_;
    const auto etag = first->header("ETag");
    ASSERT_TRUE(etag) << first->head_text();

    const auto again = get("/hello.txt", "If-None-Match: " + *etag + "\r\n");
    ASSERT_TRUE(again) << last_error_;
    EXPECT_EQ(again->status, 304) << again->head_text();
    EXPECT_EQ(again->header("ETag"), etag) << again->head_text();

    const auto other = get("/hello.txt", "If-None-Match: \"not-the-tag\"\r\n");
    ASSERT_TRUE(other) << last_error_;
    EXPECT_EQ(other->status, 200) << other->head_text();
    EXPECT_EQ(other->body, site_.text);
}

TEST_P(StaticFilesTest, IfModifiedSinceLastModifiedIs304) {
    const auto first = get("/hello.txt");
    ASSERT_TRUE(first) << last_error_;
    const auto last_modified = first->header("Last-Modified");
    ASSERT_TRUE(last_modified) << first->head_text();

    const auto again = get("/hello.txt", "If-Modified-Since: " + *last_modified + "\r\n");
    ASSERT_TRUE(again) << last_error_;
    EXPECT_EQ(again->status, 304) << again->head_text();

    const auto older = get("/hello.txt", "If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT\r\n");
    ASSERT_TRUE(older) << last_error_;
    EXPECT_EQ(older->status, 200) << older->head_text();
}

TEST_P(StaticFilesTest, RangeGivesPartialContent) {
    const auto response = get("/big.bin", "Range: bytes=0-9\r\n");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 206) << response->head_text();
    EXPECT_EQ(response->header("Content-Range"), "bytes 0-9/" + std::to_string(site_.big.size()));
    EXPECT_EQ(response->header("Content-Length"), "10");
    EXPECT_EQ(response->body, site_.big.substr(0, 10));

    const auto tail = get("/big.bin", "Range: bytes=-5\r\n");
    ASSERT_TRUE(tail) << last_error_;
    EXPECT_EQ(tail->status, 206) << tail->head_text();
    EXPECT_EQ(tail->body, site_.big.substr(site_.big.size() - 5));
}

TEST_P(StaticFilesTest, RangeBeyondTheEndIs416) {
    const std::string size = std::to_string(site_.big.size());
    const auto response = get("/big.bin", "Range: bytes=" + size + "-\r\n");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 416) << response->head_text();
}

// Each target tries to leave the document root. The answer must be 400 or 404, and no
// response may ever carry the secret planted beside the root.
TEST_P(StaticFilesTest, TraversalNeverLeavesTheDocumentRoot) {
    const std::vector<std::string> targets = {
        "/../secret.txt",       "/../../secret.txt",        "/sub/../../secret.txt",
        "/./../secret.txt",     "//../secret.txt",          "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",   "/.%2e/secret.txt",         "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",     "/%2e%2e%2fsecret.txt",     "/sub%2f..%2f..%2fsecret.txt",
        "/%2f..%2fsecret.txt",  "/..\\secret.txt",          "/sub\\..\\..\\secret.txt",
        "/..%5csecret.txt",     "/../secret.txt%00",        "/../secret.txt%00.html",
        "/%00/../secret.txt",   "/%252e%252e/secret.txt",   "/%252e%252e%252fsecret.txt",
        "/../root2/secret.txt", "/%2e%2e/root2/secret.txt", "/..%2froot2%2fsecret.txt",
    };
    for (const std::string& target : targets) {
        SCOPED_TRACE("target " + target);
        const auto response = get(target, "Connection: close\r\n");
        ASSERT_TRUE(response) << last_error_;
        EXPECT_TRUE(response->status == 400 || response->status == 404) << response->head_text();
        EXPECT_EQ(response->body.find(site_.secret), std::string::npos)
            << "served a file outside the document root";
        EXPECT_EQ(response->head_text().find(site_.secret), std::string::npos);
    }
}

TEST_P(StaticFilesTest, CurlGetsTheRoot) {
    const auto curl =
        run_curl({}, "http://127.0.0.1:" + std::to_string(port()) + "/", dir_->path());
    EXPECT_EQ(curl.http_code, 200) << curl.command.err;
    EXPECT_EQ(curl.body, site_.index_html);
}

TEST_P(StaticFilesTest, CurlGetsTheBigFileIntact) {
    const auto curl =
        run_curl({}, "http://127.0.0.1:" + std::to_string(port()) + "/big.bin", dir_->path());
    EXPECT_EQ(curl.http_code, 200) << curl.command.err;
    EXPECT_EQ(curl.body.size(), site_.big.size());
    EXPECT_TRUE(curl.body == site_.big) << "1 MiB file differs after curl";
}

TEST_P(StaticFilesTest, CurlRange) {
    const auto curl =
        run_curl({"--range", "100-199"}, "http://127.0.0.1:" + std::to_string(port()) + "/big.bin",
                 dir_->path());
    EXPECT_EQ(curl.http_code, 206) << curl.command.err;
    EXPECT_TRUE(curl.body == site_.big.substr(100, 100)) << "got " << curl.body.size() << " bytes";
}

TEST_P(StaticFilesTest, CurlHead) {
    const auto curl =
        run_curl({"-I"}, "http://127.0.0.1:" + std::to_string(port()) + "/big.bin", dir_->path());
    EXPECT_EQ(curl.http_code, 200) << curl.command.err;
    // With -I the "body" file holds the response head; field names are case-insensitive.
    std::string head = curl.body;
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    EXPECT_NE(head.find("content-length: " + std::to_string(site_.big.size())), std::string::npos)
        << curl.body;
}

TEST_P(StaticFilesTest, CurlHttp10) {
    const auto curl = run_curl(
        {"--http1.0"}, "http://127.0.0.1:" + std::to_string(port()) + "/hello.txt", dir_->path());
    EXPECT_EQ(curl.http_code, 200) << curl.command.err;
    EXPECT_EQ(curl.body, site_.text);
}

INSTANTIATE_TEST_SUITE_P(Mpm, StaticFilesTest, ::testing::ValuesIn(kMpms), mpm_test_name);

}  // namespace
}  // namespace trident::test
