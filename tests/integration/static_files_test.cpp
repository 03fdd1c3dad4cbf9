// Static files over real sockets: GET/HEAD, directories, errors, validators, ranges (one
// and several), precompressed siblings, directory listings, the symlink policy, path
// traversal, and the same through curl. Every test runs under every MPM in kMpms.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <optional>
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
        EXPECT_EQ(response->header("Allow"), "GET, HEAD, OPTIONS") << method << "\n"
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

// --- several ranges -------------------------------------------------------------------------

struct Part {
    std::string content_type;
    std::string content_range;
    std::string bytes;
};

/// Splits a multipart/byteranges body (RFC 9110 §14.6) into its parts; empty on any
/// deviation from the shape the server must send.
std::vector<Part> split_multipart(const std::string& body, const std::string& boundary) {
    std::vector<Part> parts;
    const std::string delimiter = "--" + boundary;
    std::size_t at = 0;
    if (body.compare(0, delimiter.size(), delimiter) != 0) {
        return {};
    }
    while (true) {
        at += delimiter.size();
        if (body.compare(at, 4, "--\r\n") == 0 && at + 4 == body.size()) {
            return parts;  // the close delimiter ends the body exactly
        }
        if (body.compare(at, 2, "\r\n") != 0) {
            return {};
        }
        const std::size_t head_end = body.find("\r\n\r\n", at);
        if (head_end == std::string::npos) {
            return {};
        }
        Part part;
        std::size_t line = at + 2;
        while (line < head_end + 2) {
            const std::size_t eol = body.find("\r\n", line);
            const std::string field = body.substr(line, eol - line);
            if (field.starts_with("Content-Type: ")) {
                part.content_type = field.substr(14);
            } else if (field.starts_with("Content-Range: ")) {
                part.content_range = field.substr(15);
            }
            line = eol + 2;
        }
        const std::size_t data = head_end + 4;
        const std::size_t next = body.find("\r\n" + delimiter, data);
        if (next == std::string::npos) {
            return {};
        }
        part.bytes = body.substr(data, next - data);
        parts.push_back(std::move(part));
        at = next + 2;
    }
}

TEST_P(StaticFilesTest, SeveralRangesAreMultipartByteForByte) {
    const std::string size = std::to_string(site_.big.size());
    const auto response = get("/big.bin", "Range: bytes=0-99, 500000-565535,-77\r\n");
    ASSERT_TRUE(response) << last_error_;
    ASSERT_EQ(response->status, 206) << response->head_text();
    const std::string type = response->header("Content-Type").value_or("");
    const std::string prefix = "multipart/byteranges; boundary=";
    ASSERT_TRUE(type.starts_with(prefix)) << response->head_text();
    EXPECT_EQ(response->header("Content-Length"), std::to_string(response->body.size()));
    EXPECT_FALSE(response->header("Content-Range")) << response->head_text();

    const std::vector<Part> parts = split_multipart(response->body, type.substr(prefix.size()));
    ASSERT_EQ(parts.size(), 3u) << "malformed multipart body of " << response->body.size()
                                << " bytes";
    EXPECT_EQ(parts[0].content_range, "bytes 0-99/" + size);
    EXPECT_EQ(parts[1].content_range, "bytes 500000-565535/" + size);
    EXPECT_EQ(parts[2].content_range, "bytes " + std::to_string(site_.big.size() - 77) + "-" +
                                          std::to_string(site_.big.size() - 1) + "/" + size);
    EXPECT_TRUE(parts[0].bytes == site_.big.substr(0, 100));
    EXPECT_TRUE(parts[1].bytes == site_.big.substr(500000, 65536));
    EXPECT_TRUE(parts[2].bytes == site_.big.substr(site_.big.size() - 77));
    for (const Part& part : parts) {
        EXPECT_EQ(part.content_type, "application/octet-stream");
    }
}

TEST_P(StaticFilesTest, MultipartThenAnotherRequestOnOneConnection) {
    // The exact Content-Length keeps the connection in step: the next response follows.
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(make_request("GET", "/hello.txt", "Range: bytes=0-4,10-14\r\n") +
                            make_request("GET", "/hello.txt")))
        << client.error();
    const auto multipart = client.read_response();
    ASSERT_TRUE(multipart) << client.error();
    EXPECT_EQ(multipart->status, 206) << multipart->head_text();
    EXPECT_TRUE(multipart->body.ends_with("--\r\n"));
    const auto next = client.read_response();
    ASSERT_TRUE(next) << client.error();
    EXPECT_EQ(next->status, 200) << next->head_text();
    EXPECT_EQ(next->body, site_.text);
}

TEST_P(StaticFilesTest, OverlappingRangesCoalesce) {
    const auto response = get("/big.bin", "Range: bytes=0-99,50-149,150-199\r\n");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 206) << response->head_text();
    EXPECT_EQ(response->header("Content-Range"), "bytes 0-199/" + std::to_string(site_.big.size()));
    EXPECT_TRUE(response->body == site_.big.substr(0, 200));
}

TEST_P(StaticFilesTest, ApacheKillerNeverCostsMoreThanTheFile) {
    // CVE-2011-3192's shape, sized to fit the field limit: overlapping specs past
    // MaxRangeOverlaps answer 200 with the file once.
    std::string killer = "Range: bytes=5-5";
    for (int i = 6; i < 900; ++i) {
        killer += ",5-" + std::to_string(i);
    }
    const auto response = get("/big.bin", killer + "\r\n");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 200) << response->head_text();
    EXPECT_EQ(response->body.size(), site_.big.size());
    // With the leading "0-" Apache sends the whole file as one part; so does Trident.
    const auto open = get("/big.bin", "Range: bytes=0-," + killer.substr(13) + "\r\n");
    ASSERT_TRUE(open) << last_error_;
    EXPECT_EQ(open->status, 206) << open->head_text();
    EXPECT_EQ(open->body.size(), site_.big.size());
}

TEST_P(StaticFilesTest, UnsatisfiableRangesAre416WithTheLength) {
    const std::string size = std::to_string(site_.big.size());
    const auto response = get("/big.bin", "Range: bytes=" + size + "-," + size + "-9999999\r\n");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 416) << response->head_text();
    EXPECT_EQ(response->header("Content-Range"), "bytes */" + size);
}

TEST_P(StaticFilesTest, HeadWithRangesHasTheHeadersOfAPlainGet) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(make_request("HEAD", "/big.bin", "Range: bytes=0-1,5-6\r\n") +
                            make_request("GET", "/big.bin")))
        << client.error();
    const auto head = client.read_response(true);
    ASSERT_TRUE(head) << client.error();
    const auto get_response = client.read_response();
    ASSERT_TRUE(get_response) << client.error();
    EXPECT_EQ(head->status, 200) << head->head_text();
    EXPECT_EQ(head->header("Content-Length"), get_response->header("Content-Length"));
    EXPECT_EQ(head->header("Content-Type"), get_response->header("Content-Type"));
    EXPECT_EQ(head->header("ETag"), get_response->header("ETag"));
}

TEST_P(StaticFilesTest, CurlSeveralRanges) {
    const auto curl =
        run_curl({"--range", "0-9,100-109"},
                 "http://127.0.0.1:" + std::to_string(port()) + "/big.bin", dir_->path());
    EXPECT_EQ(curl.http_code, 206) << curl.command.err;
    EXPECT_NE(curl.body.find(site_.big.substr(100, 10)), std::string::npos);
    EXPECT_NE(curl.body.find("Content-Range: bytes 0-9/"), std::string::npos);
}

// --- precompressed siblings -----------------------------------------------------------------

/// A valid brotli stream (RFC 7932) holding `data` in one uncompressed meta-block: no
/// encoder is needed to test that a client decodes what the server picked.
std::string brotli_stored(std::string_view data) {
    std::string out;
    std::uint32_t bits = 0;
    int count = 0;
    auto put = [&](std::uint32_t value, int width) {
        bits |= value << count;
        count += width;
        while (count >= 8) {
            out += static_cast<char>(bits & 0xffu);
            bits >>= 8;
            count -= 8;
        }
    };
    put(0, 1);                                             // WBITS = 16
    put(0, 1);                                             // ISLAST = 0
    put(0, 2);                                             // MNIBBLES = 4
    put(static_cast<std::uint32_t>(data.size() - 1), 16);  // MLEN - 1
    put(1, 1);                                             // ISUNCOMPRESSED
    put(0, 8 - count);                                     // to the byte boundary
    out.append(data);
    put(3, 2);  // ISLAST, ISLASTEMPTY
    put(0, 8 - count);
    return out;
}

class PrecompressedTest : public ServerTest {
protected:
    void SetUp() override {
        ServerTest::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        br_ = brotli_stored(site_.text);
        write_file(site_.root / "hello.txt.br", br_);
        const auto gzip = run_command(
            {"gzip", "-k", "-n", "-f", (site_.root / "hello.txt").string()}, dir_->path());
        ASSERT_TRUE(gzip.ok()) << gzip.err;
        gz_ = read_file(site_.root / "hello.txt.gz");
        ASSERT_FALSE(gz_.empty());
    }

    std::string br_;
    std::string gz_;
};

TEST_P(PrecompressedTest, RawClientGetsTheSiblingBytes) {
    const auto br = get("/hello.txt", "Accept-Encoding: gzip, deflate, br\r\n");
    ASSERT_TRUE(br) << last_error_;
    EXPECT_EQ(br->status, 200) << br->head_text();
    EXPECT_EQ(br->header("Content-Encoding"), "br") << br->head_text();
    EXPECT_EQ(br->header("Vary"), "Accept-Encoding") << br->head_text();
    EXPECT_TRUE(br->header("Content-Type").value_or("").starts_with("text/plain"));
    EXPECT_EQ(br->header("Content-Length"), std::to_string(br_.size()));
    EXPECT_TRUE(br->body == br_);

    const auto gz = get("/hello.txt", "Accept-Encoding: br;q=0, gzip\r\n");
    ASSERT_TRUE(gz) << last_error_;
    EXPECT_EQ(gz->header("Content-Encoding"), "gzip") << gz->head_text();
    EXPECT_TRUE(gz->body == gz_);
    EXPECT_NE(gz->header("ETag"), br->header("ETag"));

    const auto identity = get("/hello.txt");
    ASSERT_TRUE(identity) << last_error_;
    EXPECT_FALSE(identity->header("Content-Encoding")) << identity->head_text();
    EXPECT_EQ(identity->header("Vary"), "Accept-Encoding") << identity->head_text();
    EXPECT_EQ(identity->body, site_.text);
    EXPECT_NE(identity->header("ETag"), gz->header("ETag"));
}

TEST_P(PrecompressedTest, HeadAndRangesFollowTheEncodedRepresentation) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(
        make_request("HEAD", "/hello.txt", "Accept-Encoding: gzip\r\n") +
        make_request("GET", "/hello.txt", "Accept-Encoding: gzip\r\nRange: bytes=0-9\r\n")))
        << client.error();
    const auto head = client.read_response(true);
    ASSERT_TRUE(head) << client.error();
    EXPECT_EQ(head->header("Content-Encoding"), "gzip") << head->head_text();
    EXPECT_EQ(head->header("Content-Length"), std::to_string(gz_.size()));
    const auto range = client.read_response();
    ASSERT_TRUE(range) << client.error();
    EXPECT_EQ(range->status, 206) << range->head_text();
    EXPECT_EQ(range->header("Content-Range"), "bytes 0-9/" + std::to_string(gz_.size()));
    EXPECT_TRUE(range->body == gz_.substr(0, 10));
}

TEST_P(PrecompressedTest, CurlCompressedDecodesWhatWasPicked) {
    const std::string url = "http://127.0.0.1:" + std::to_string(port()) + "/hello.txt";
    const fs::path headers = dir_->path() / "curl-headers.txt";
    // curl offers br and gzip: br is sent and decoded.
    auto curl = run_curl({"--compressed", "-D", headers.string()}, url, dir_->path());
    EXPECT_EQ(curl.http_code, 200) << curl.command.err;
    EXPECT_EQ(curl.body, site_.text);
    EXPECT_NE(read_file(headers).find("Content-Encoding: br"), std::string::npos)
        << read_file(headers);
    // Offered gzip only: the gzip sibling, decoded by curl.
    curl = run_curl({"--compressed", "-H", "Accept-Encoding: gzip", "-D", headers.string()}, url,
                    dir_->path());
    EXPECT_EQ(curl.http_code, 200) << curl.command.err;
    EXPECT_EQ(curl.body, site_.text);
    EXPECT_NE(read_file(headers).find("Content-Encoding: gzip"), std::string::npos)
        << read_file(headers);
}

class PrecompressedOffTest : public PrecompressedTest {
protected:
    void configure(ServerConfig& config) override {
        config.extra_yaml = "static: {precompressed: false}\n";
    }
};

TEST_P(PrecompressedOffTest, SiblingsAreIgnored) {
    const auto response = get("/hello.txt", "Accept-Encoding: br, gzip\r\n");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_FALSE(response->header("Content-Encoding")) << response->head_text();
    EXPECT_FALSE(response->header("Vary")) << response->head_text();
    EXPECT_EQ(response->body, site_.text);
}

// --- listings, symlinks and traversal -------------------------------------------------------

/// A directory without index, and symbolic links into and out of the root.
void add_links_and_listing(const Site& site, const fs::path& base) {
    write_file(site.root / "list" / "b file.txt", "bb");
    write_file(site.root / "list" / "a<b>&.txt", "a");
    write_file(site.root / "list" / ".hidden", "h");
    write_file(site.root / "list" / "inner" / "x.txt", "x");
    fs::create_symlink(base / "secret.txt", site.root / "out-link.txt");
    fs::create_symlink(base / "root2", site.root / "out-dir");
    fs::create_symlink("hello.txt", site.root / "in-link.txt");
    fs::create_symlink(base / "secret.txt", site.root / "list" / "out-link.txt");
}

TEST_P(StaticFilesTest, ListingIsOffByDefaultAndSymlinksAreFollowed) {
    add_links_and_listing(site_, dir_->path());
    const auto listing = get("/list/");
    ASSERT_TRUE(listing) << last_error_;
    EXPECT_EQ(listing->status, 403) << listing->head_text();
    EXPECT_EQ(listing->body.find("b file"), std::string::npos);
    // FollowSymLinks, Apache's default: a link is served wherever it points.
    const auto link = get("/out-link.txt");
    ASSERT_TRUE(link) << last_error_;
    EXPECT_EQ(link->status, 200) << link->head_text();
}

class ConfinedListingTest : public ServerTest {
protected:
    void configure(ServerConfig& config) override {
        config.extra_yaml = "static: {autoindex: true, follow_symlinks: false}\n";
    }
    void SetUp() override {
        ServerTest::SetUp();
        if (!HasFatalFailure()) {
            add_links_and_listing(site_, dir_->path());
        }
    }
};

TEST_P(ConfinedListingTest, ListsADirectoryWithoutIndex) {
    const auto response = get("/list/");
    ASSERT_TRUE(response) << last_error_;
    ASSERT_EQ(response->status, 200) << response->head_text();
    EXPECT_TRUE(response->header("Content-Type").value_or("").starts_with("text/html"));
    const std::string& html = response->body;
    EXPECT_NE(html.find("<a href=\"a%3Cb%3E%26.txt\">a&lt;b&gt;&amp;.txt</a>"), std::string::npos)
        << html;
    EXPECT_NE(html.find("<a href=\"b%20file.txt\">b file.txt</a>"), std::string::npos) << html;
    EXPECT_NE(html.find("<a href=\"inner/\">inner/</a>"), std::string::npos) << html;
    EXPECT_LT(html.find("a&lt;b"), html.find(">b file.txt<"));
    EXPECT_LT(html.find(">b file.txt<"), html.find(">inner/<"));
    EXPECT_EQ(html.find(".hidden"), std::string::npos) << html;
    EXPECT_EQ(html.find("out-link"), std::string::npos) << "a link out of the root is listed";
    // A directory with an index still serves it.
    const auto sub = get("/sub/");
    ASSERT_TRUE(sub) << last_error_;
    EXPECT_EQ(sub->body, site_.sub_index);
}

TEST_P(ConfinedListingTest, CurlFollowsTheListingLinks) {
    const std::string base = "http://127.0.0.1:" + std::to_string(port());
    const auto listing = run_curl({}, base + "/list/", dir_->path());
    EXPECT_EQ(listing.http_code, 200) << listing.command.err;
    const auto file = run_curl({}, base + "/list/b%20file.txt", dir_->path());
    EXPECT_EQ(file.http_code, 200) << file.command.err;
    EXPECT_EQ(file.body, "bb");
}

TEST_P(ConfinedListingTest, LinksOutOfTheRootAre403) {
    for (const char* target : {"/out-link.txt", "/out-dir/secret.txt", "/list/out-link.txt"}) {
        SCOPED_TRACE(target);
        const auto response = get(target);
        ASSERT_TRUE(response) << last_error_;
        EXPECT_EQ(response->status, 403) << response->head_text();
        EXPECT_EQ(response->body.find(site_.secret), std::string::npos);
    }
    const auto inside = get("/in-link.txt");
    ASSERT_TRUE(inside) << last_error_;
    EXPECT_EQ(inside->status, 200) << inside->head_text();
    EXPECT_EQ(inside->body, site_.text);
}

/// Encoded, double-encoded and overlong dots, backslashes, NUL, "//" and "/./": none may
/// read a byte outside the root, whatever the status.
const std::vector<std::string>& traversal_corpus() {
    static const std::vector<std::string> corpus = {
        "/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2E%2e/%2e%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/%25252e%25252e/secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%ae%c0%ae%c0%afsecret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        "/..%c0%afsecret.txt",
        "/..\\secret.txt",
        "/sub\\..\\..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/..%5csecret.txt",
        "/../secret.txt%00",
        "/%00../secret.txt",
        "/hello.txt%00/../../secret.txt",
        "//../secret.txt",
        "/sub//..//..//secret.txt",
        "///secret.txt",
        "/./../secret.txt",
        "/sub/./.././../secret.txt",
        "/sub/.%2e/.%2e/secret.txt",
        "/../root2/secret.txt",
        "/%2e%2e/root2/secret.txt",
        "/out-dir/secret.txt",
        "/out-dir/../../secret.txt",
        "/in-link.txt/../../secret.txt",
    };
    return corpus;
}

void expect_corpus_confined(
    const Site& site,
    const std::function<std::optional<HttpResponse>(const std::string&)>& fetch_target) {
    for (const std::string& target : traversal_corpus()) {
        SCOPED_TRACE("target " + target);
        const auto response = fetch_target(target);
        ASSERT_TRUE(response);
        EXPECT_TRUE(response->status == 400 || response->status == 403 || response->status == 404)
            << response->head_text();
        EXPECT_EQ(response->body.find(site.secret), std::string::npos)
            << "served a file outside the document root";
        EXPECT_EQ(response->head_text().find(site.secret), std::string::npos);
    }
}

TEST_P(ConfinedListingTest, TraversalCorpusStaysInsideTheRoot) {
    expect_corpus_confined(
        site_, [this](const std::string& target) { return get(target, "Connection: close\r\n"); });
}

TEST_P(StaticFilesTest, TraversalCorpusStaysInsideTheRootFollowingLinks) {
    add_links_and_listing(site_, dir_->path());
    // "/out-dir/secret.txt" is a link the owner placed, served as FollowSymLinks says;
    // every other target must stay refused.
    for (const std::string& target : traversal_corpus()) {
        if (target == "/out-dir/secret.txt") {
            continue;
        }
        SCOPED_TRACE("target " + target);
        const auto response = get(target, "Connection: close\r\n");
        ASSERT_TRUE(response) << last_error_;
        EXPECT_TRUE(response->status == 400 || response->status == 404) << response->head_text();
        EXPECT_EQ(response->body.find(site_.secret), std::string::npos)
            << "served a file outside the document root";
    }
}

INSTANTIATE_TEST_SUITE_P(Mpm, PrecompressedTest, ::testing::ValuesIn(kMpms), mpm_test_name);
INSTANTIATE_TEST_SUITE_P(Mpm, PrecompressedOffTest, ::testing::ValuesIn(kMpms), mpm_test_name);
INSTANTIATE_TEST_SUITE_P(Mpm, ConfinedListingTest, ::testing::ValuesIn(kMpms), mpm_test_name);
INSTANTIATE_TEST_SUITE_P(Mpm, StaticFilesTest, ::testing::ValuesIn(kMpms), mpm_test_name);

}  // namespace
}  // namespace trident::test
