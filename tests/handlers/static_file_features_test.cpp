// StaticFileHandler beyond plain GET: multipart ranges, precompressed siblings, directory
// listings and the symlink policy. static_file_test.cpp covers the rest.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "handlers/static_file.hpp"
#include "response_reader.hpp"

namespace trident {
namespace {

namespace fs = std::filesystem;
using http::Method;
using http::Response;
using http::Status;
using test::body_of;
using test::header;
using test::header_count;

std::string boundary_of(const Response& response) {
    const std::string type = header(response, "Content-Type");
    const std::string prefix = "multipart/byteranges; boundary=";
    EXPECT_TRUE(type.starts_with(prefix)) << type;
    return type.starts_with(prefix) ? type.substr(prefix.size()) : std::string();
}

class StaticFileFeaturesTest : public ::testing::Test {
protected:
    void SetUp() override {
        char name[] = "/tmp/trident-features-XXXXXX";
        ASSERT_NE(::mkdtemp(name), nullptr);
        base_ = name;
        root_ = base_ / "root";
        fs::create_directories(root_);
        for (int i = 0; i < 100; ++i) {
            digits_ += static_cast<char>('0' + i % 10);
        }
        write("digits.txt", digits_);
        write("page.html", "<p>identity</p>");
        write("page.html.br", "BROTLI-BYTES");
        write("page.html.gz", "GZIP-BYTES-LONGER");
        write("style.css", "body{}");
        write("style.css.gz", "GZ-CSS");
        write("plain.txt", "no siblings");
        write("docs/index.html", "<p>docs</p>");
        write("docs/index.html.gz", "GZ-INDEX");
        write("list/b file.txt", "bb");
        write("list/a<&>.txt", "a");
        write("list/.hidden", "h");
        write("list/zeta/inner.txt", "z");
        write("list/%41?#.txt", "q");
        write("empty/.keep", "");
        write(base_ / "outside.txt", "OUTSIDE-SECRET");
        fs::create_directories(base_ / "outside-dir");
        write(base_ / "outside-dir/file.txt", "OUTSIDE-DIR-SECRET");
        fs::create_symlink(base_ / "outside.txt", root_ / "out-link.txt");
        fs::create_symlink(base_ / "outside-dir", root_ / "out-dir");
        fs::create_symlink("digits.txt", root_ / "in-link.txt");
        fs::create_symlink(base_ / "outside.txt", root_ / "list/out-link.txt");
        fs::create_symlink("zeta", root_ / "list/zeta-link");
    }

    void TearDown() override {
        handler_.reset();
        std::error_code ignored;
        fs::remove_all(base_, ignored);
    }

    void write(const fs::path& relative, std::string_view text) {
        const fs::path path = relative.is_absolute() ? relative : root_ / relative;
        fs::create_directories(path.parent_path());
        std::ofstream out(path, std::ios::binary);
        out << text;
    }

    void use(StaticConfig options) {
        handler_ = std::make_unique<StaticFileHandler>(
            root_, std::vector<std::string>{"index.html"}, mime_, options);
    }

    Response get(std::string path, std::initializer_list<http::Field> fields = {},
                 Method method = Method::get) {
        if (!handler_) {
            use({});
        }
        http::Request request;
        request.method = method;
        request.method_text = http::method_name(method);
        request.path = std::move(path);
        request.target = request.path;
        request.fields.assign(fields.begin(), fields.end());
        Response response;
        handler_->handle(request, response);
        return response;
    }

    fs::path base_;
    fs::path root_;
    std::string digits_;
    MimeTypes mime_;
    std::unique_ptr<StaticFileHandler> handler_;
};

// --- several ranges ---------------------------------------------------------------------------

TEST_F(StaticFileFeaturesTest, SeveralRangesGiveMultipartByteranges) {
    const Response response = get("/digits.txt", {{"Range", "bytes=0-4, 10-14,-3"}});
    ASSERT_EQ(response.status, Status::partial_content);
    const std::string boundary = boundary_of(response);
    EXPECT_FALSE(boundary.empty());
    EXPECT_EQ(header_count(response, "Content-Range"), 0u);
    const std::string expected =
        "--" + boundary + "\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/100\r\n\r\n" +
        digits_.substr(0, 5) + "\r\n--" + boundary +
        "\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-14/100\r\n\r\n" +
        digits_.substr(10, 5) + "\r\n--" + boundary +
        "\r\nContent-Type: text/plain\r\nContent-Range: bytes 97-99/100\r\n\r\n" +
        digits_.substr(97, 3) + "\r\n--" + boundary + "--\r\n";
    EXPECT_EQ(body_of(response), expected);
    EXPECT_EQ(response.body_length(), expected.size());
    EXPECT_FALSE(header(response, "ETag").empty());
}

TEST_F(StaticFileFeaturesTest, MergedRangesBecomeOnePart) {
    const Response response = get("/digits.txt", {{"Range", "bytes=0-9,5-19,20-29"}});
    ASSERT_EQ(response.status, Status::partial_content);
    EXPECT_EQ(header(response, "Content-Range"), "bytes 0-29/100");
    EXPECT_EQ(header(response, "Content-Type"), "text/plain");
    EXPECT_EQ(body_of(response), digits_.substr(0, 30));
}

TEST_F(StaticFileFeaturesTest, ApacheKillerGetsTheWholeFileOnce) {
    std::string killer = "bytes=0-";
    for (int i = 0; i < 1300; ++i) {
        killer += ",5-" + std::to_string(i);
    }
    // As Apache 2.4: the open "0-" stands for the whole file, sent once.
    const Response response = get("/digits.txt", {{"Range", killer}});
    EXPECT_EQ(response.status, Status::partial_content);
    EXPECT_EQ(header(response, "Content-Range"), "bytes 0-99/100");
    EXPECT_EQ(body_of(response), digits_);
    // From "5-5" on, the specs overlap past MaxRangeOverlaps: 200 with the file, once.
    const Response whole = get("/digits.txt", {{"Range", "bytes=" + killer.substr(29)}});
    EXPECT_EQ(whole.status, Status::ok);
    EXPECT_EQ(whole.body_length(), digits_.size());

    std::string overlapping = "bytes=1-2";
    for (int i = 0; i < 30; ++i) {
        overlapping += ",0-" + std::to_string(90 + i % 10);
    }
    EXPECT_EQ(get("/digits.txt", {{"Range", overlapping}}).status, Status::ok);
}

TEST_F(StaticFileFeaturesTest, HeadWithSeveralRangesAnswersAsGetWithoutRange) {
    const Response head = get("/digits.txt", {{"Range", "bytes=0-1,5-6"}}, Method::head);
    const Response plain = get("/digits.txt");
    EXPECT_EQ(head.status, Status::ok);
    EXPECT_EQ(test::all_fields(head), test::all_fields(plain));
    EXPECT_EQ(head.body_length(), digits_.size());
}

TEST_F(StaticFileFeaturesTest, AllRangesUnsatisfiableIs416) {
    const Response response = get("/digits.txt", {{"Range", "bytes=100-,200-300"}});
    EXPECT_EQ(response.status, Status::range_not_satisfiable);
    EXPECT_EQ(header(response, "Content-Range"), "bytes */100");
}

TEST_F(StaticFileFeaturesTest, IfRangeDateIsHonouredOnlyOnceItsSecondIsOver) {
    // RFC 9110 §8.8.2.2, §13.1.5: a Last-Modified whose second is not over yet cannot tell
    // two versions within it apart. A modification time ahead of the clock stands for that
    // case without depending on when the test runs.
    const std::time_t ahead = std::time(nullptr) + 86400;
    const struct timespec future[2] = {{ahead, 0}, {ahead, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (root_ / "digits.txt").c_str(), future, 0), 0);
    const std::string fresh = header(get("/digits.txt"), "Last-Modified");
    const Response weak = get("/digits.txt", {{"Range", "bytes=0-4"}, {"If-Range", fresh}});
    EXPECT_EQ(weak.status, Status::ok);
    EXPECT_EQ(body_of(weak), digits_);

    const struct timespec past[2] = {{1000000000, 0}, {1000000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (root_ / "digits.txt").c_str(), past, 0), 0);
    const std::string settled = header(get("/digits.txt"), "Last-Modified");
    const Response strong = get("/digits.txt", {{"Range", "bytes=0-4"}, {"If-Range", settled}});
    EXPECT_EQ(strong.status, Status::partial_content);
    EXPECT_EQ(body_of(strong), "01234");
}

// --- precompressed siblings -------------------------------------------------------------------

TEST_F(StaticFileFeaturesTest, BrIsPreferredWhenBothAreAccepted) {
    const Response response = get("/page.html", {{"Accept-Encoding", "gzip, deflate, br"}});
    ASSERT_EQ(response.status, Status::ok);
    EXPECT_EQ(header(response, "Content-Encoding"), "br");
    EXPECT_EQ(header(response, "Content-Type"), "text/html");
    EXPECT_EQ(header(response, "Vary"), "Accept-Encoding");
    EXPECT_EQ(body_of(response), "BROTLI-BYTES");
    EXPECT_EQ(response.body_length(), 12u);
    EXPECT_TRUE(header(response, "ETag").ends_with("-br\"")) << header(response, "ETag");
}

TEST_F(StaticFileFeaturesTest, GzipWhenBrIsRefusedOrRankedLower) {
    for (std::string_view accept : {"gzip", "br;q=0, gzip", "br;q=0.1, gzip;q=0.9"}) {
        const Response response = get("/page.html", {{"Accept-Encoding", accept}});
        EXPECT_EQ(header(response, "Content-Encoding"), "gzip") << accept;
        EXPECT_EQ(body_of(response), "GZIP-BYTES-LONGER") << accept;
        EXPECT_TRUE(header(response, "ETag").ends_with("-gzip\"")) << accept;
    }
}

TEST_F(StaticFileFeaturesTest, SeveralAcceptEncodingLinesAreOneList) {
    const Response response =
        get("/page.html", {{"Accept-Encoding", "br;q=0"}, {"Accept-Encoding", "gzip"}});
    EXPECT_EQ(header(response, "Content-Encoding"), "gzip");
    EXPECT_EQ(body_of(response), "GZIP-BYTES-LONGER");
}

TEST_F(StaticFileFeaturesTest, IdentityStillVariesWhenASiblingExists) {
    for (std::string_view accept : {"", "identity", "br;q=0, gzip;q=0", "deflate"}) {
        const Response response =
            accept.empty() ? get("/page.html") : get("/page.html", {{"Accept-Encoding", accept}});
        EXPECT_EQ(header(response, "Content-Encoding"), "") << accept;
        EXPECT_EQ(header(response, "Vary"), "Accept-Encoding") << accept;
        EXPECT_EQ(body_of(response), "<p>identity</p>") << accept;
    }
    // A file without siblings says nothing about Accept-Encoding.
    const Response plain = get("/plain.txt", {{"Accept-Encoding", "br, gzip"}});
    EXPECT_EQ(header_count(plain, "Vary"), 0u);
    EXPECT_EQ(header_count(plain, "Content-Encoding"), 0u);
}

TEST_F(StaticFileFeaturesTest, ADanglingSiblingIsNoneUntilItResolves) {
    // The link's target appears in a subfolder, so the root folder itself does not change:
    // only not having cached the answer lets the next request find the sibling.
    write("late.txt", "identity");
    fs::create_directories(root_ / "sub");
    fs::create_symlink("sub/late-gz", root_ / "late.txt.gz");
    // The cache keeps only files whose times are 2 s old (and their folder's): let them age,
    // so that a wrongly settled answer would be kept.
    const auto aged = [&](const fs::path& path) {
        struct stat info {};
        return ::stat(path.c_str(), &info) == 0 &&
               std::time(nullptr) - std::max(info.st_ctim.tv_sec, info.st_mtim.tv_sec) >= 3;
    };
    for (int i = 0; i < 50 && !(aged(root_ / "late.txt") && aged(root_)); ++i) {
        ::usleep(100'000);
    }
    ASSERT_TRUE(aged(root_ / "late.txt") && aged(root_));
    const Response dangling = get("/late.txt", {{"Accept-Encoding", "gzip"}});
    ASSERT_EQ(dangling.status, Status::ok);
    EXPECT_EQ(header_count(dangling, "Content-Encoding"), 0u);
    EXPECT_EQ(header_count(dangling, "Vary"), 0u);
    EXPECT_EQ(body_of(dangling), "identity");

    write("sub/late-gz", "GZ-LATE");
    const Response resolved = get("/late.txt", {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(header(resolved, "Content-Encoding"), "gzip");
    EXPECT_EQ(header(resolved, "Vary"), "Accept-Encoding");
    EXPECT_EQ(body_of(resolved), "GZ-LATE");
}

TEST_F(StaticFileFeaturesTest, EachRepresentationHasItsOwnETag) {
    const std::string identity = header(get("/page.html"), "ETag");
    const std::string br = header(get("/page.html", {{"Accept-Encoding", "br"}}), "ETag");
    const std::string gzip = header(get("/page.html", {{"Accept-Encoding", "gzip"}}), "ETag");
    EXPECT_NE(identity, br);
    EXPECT_NE(identity, gzip);
    EXPECT_NE(br, gzip);
    // A validator of one representation does not validate another (RFC 9110 §8.8.3).
    EXPECT_EQ(get("/page.html", {{"Accept-Encoding", "br"}, {"If-None-Match", br}}).status,
              Status::not_modified);
    EXPECT_EQ(get("/page.html", {{"If-None-Match", br}}).status, Status::ok);
    const Response not_modified =
        get("/page.html", {{"Accept-Encoding", "gzip"}, {"If-None-Match", gzip}});
    EXPECT_EQ(not_modified.status, Status::not_modified);
    EXPECT_EQ(header(not_modified, "Vary"), "Accept-Encoding");  // RFC 9110 §15.4.5
}

TEST_F(StaticFileFeaturesTest, RangesApplyToTheEncodedRepresentation) {
    const Response response =
        get("/page.html", {{"Accept-Encoding", "gzip"}, {"Range", "bytes=0-3"}});
    ASSERT_EQ(response.status, Status::partial_content);
    EXPECT_EQ(header(response, "Content-Range"), "bytes 0-3/17");
    EXPECT_EQ(header(response, "Content-Encoding"), "gzip");
    EXPECT_EQ(body_of(response), "GZIP");
}

TEST_F(StaticFileFeaturesTest, IndexFilesHaveSiblingsToo) {
    const Response response = get("/docs/", {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(header(response, "Content-Encoding"), "gzip");
    EXPECT_EQ(body_of(response), "GZ-INDEX");
    EXPECT_EQ(header(response, "Content-Type"), "text/html");
}

TEST_F(StaticFileFeaturesTest, HeadChoosesTheSameRepresentation) {
    const Response head = get("/style.css", {{"Accept-Encoding", "gzip"}}, Method::head);
    const Response full = get("/style.css", {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(test::all_fields(head), test::all_fields(full));
    EXPECT_EQ(head.body_length(), 6u);
}

TEST_F(StaticFileFeaturesTest, PrecompressedCanBeTurnedOff) {
    StaticConfig options;
    options.precompressed = false;
    use(options);
    const Response response = get("/page.html", {{"Accept-Encoding", "br, gzip"}});
    EXPECT_EQ(header_count(response, "Content-Encoding"), 0u);
    EXPECT_EQ(header_count(response, "Vary"), 0u);
    EXPECT_EQ(body_of(response), "<p>identity</p>");
}

// --- directory listings -----------------------------------------------------------------------

TEST_F(StaticFileFeaturesTest, ListingIsOffByDefault) {
    EXPECT_EQ(get("/list/").status, Status::forbidden);
}

TEST_F(StaticFileFeaturesTest, ListingShowsEntriesEscapedSortedWithoutDotfiles) {
    StaticConfig options;
    options.autoindex = true;
    use(options);
    const Response response = get("/list/");
    ASSERT_EQ(response.status, Status::ok);
    EXPECT_EQ(header(response, "Content-Type"), "text/html; charset=utf-8");
    const std::string html = body_of(response);
    EXPECT_NE(html.find("<title>Index of /list/</title>"), std::string::npos) << html;
    EXPECT_NE(html.find("<a href=\"%2541%3F%23.txt\">%41?#.txt</a>"), std::string::npos) << html;
    EXPECT_NE(html.find("<a href=\"a%3C%26%3E.txt\">a&lt;&amp;&gt;.txt</a>"), std::string::npos)
        << html;
    EXPECT_NE(html.find("<a href=\"b%20file.txt\">b file.txt</a>"), std::string::npos) << html;
    EXPECT_NE(html.find("<a href=\"zeta/\">zeta/</a>"), std::string::npos) << html;
    EXPECT_NE(html.find("<a href=\"../\">Parent Directory</a>"), std::string::npos) << html;
    EXPECT_EQ(html.find(".hidden"), std::string::npos) << html;
    EXPECT_EQ(html.find("a<&>"), std::string::npos) << "a raw name reached the page";
    // Sorted bytewise, each with its size.
    const std::size_t percent = html.find("%41?#.txt</a>");
    const std::size_t a = html.find("a&lt;");
    const std::size_t b = html.find(">b file.txt<");
    const std::size_t zeta = html.find(">zeta/<");
    EXPECT_LT(percent, a);
    EXPECT_LT(a, b);
    EXPECT_LT(b, zeta);
    EXPECT_NE(html.find("b file.txt</a></td><td>"), std::string::npos);
    EXPECT_NE(html.find("</td><td>2</td></tr>"), std::string::npos) << html;
    // HEAD: the same headers and length.
    const Response head = get("/list/", {}, Method::head);
    EXPECT_EQ(test::all_fields(head), test::all_fields(response));
    EXPECT_EQ(head.body_length(), response.body_length());
}

TEST_F(StaticFileFeaturesTest, IndexFileWinsOverTheListing) {
    StaticConfig options;
    options.autoindex = true;
    use(options);
    EXPECT_EQ(body_of(get("/docs/")), "<p>docs</p>");
    const std::string root = body_of(get("/"));
    EXPECT_EQ(root.find("Parent Directory"), std::string::npos);  // nothing above "/"
    EXPECT_NE(root.find("digits.txt"), std::string::npos);
}

// --- symbolic links ---------------------------------------------------------------------------

TEST_F(StaticFileFeaturesTest, SymlinksAreFollowedByDefault) {
    EXPECT_EQ(body_of(get("/out-link.txt")), "OUTSIDE-SECRET");
    EXPECT_EQ(body_of(get("/out-dir/file.txt")), "OUTSIDE-DIR-SECRET");
}

TEST_F(StaticFileFeaturesTest, LinksOutOfTheRootAre403WhenNotFollowed) {
    StaticConfig options;
    options.follow_symlinks = false;
    use(options);
    for (const char* path : {"/out-link.txt", "/out-dir/file.txt", "/out-dir/", "/out-dir"}) {
        const Response response = get(path);
        EXPECT_EQ(response.status, Status::forbidden) << path;
        EXPECT_EQ(body_of(response).find("OUTSIDE"), std::string::npos) << path;
    }
    // A link that stays inside the root is served.
    EXPECT_EQ(body_of(get("/in-link.txt")), digits_);
    EXPECT_EQ(get("/digits.txt").status, Status::ok);
}

TEST_F(StaticFileFeaturesTest, ListingHidesLinksOutOfTheRootWhenNotFollowed) {
    StaticConfig options;
    options.autoindex = true;
    options.follow_symlinks = false;
    use(options);
    const std::string html = body_of(get("/list/"));
    EXPECT_EQ(html.find("out-link.txt"), std::string::npos) << html;
    EXPECT_NE(html.find("zeta-link/"), std::string::npos) << html;

    options.follow_symlinks = true;
    use(options);
    EXPECT_NE(body_of(get("/list/")).find("out-link.txt"), std::string::npos);
}

TEST_F(StaticFileFeaturesTest, SiblingLinkingOutIsNotServedWhenNotFollowed) {
    fs::create_symlink(base_ / "outside.txt", root_ / "plain.txt.gz");
    StaticConfig options;
    options.follow_symlinks = false;
    use(options);
    const Response response = get("/plain.txt", {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(response.status, Status::ok);
    EXPECT_EQ(body_of(response), "no siblings");
    EXPECT_EQ(header_count(response, "Content-Encoding"), 0u);
}

}  // namespace
}  // namespace trident
