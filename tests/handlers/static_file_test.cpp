#include "handlers/static_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "response_reader.hpp"

namespace trident {
namespace {

using http::Method;
using http::Response;
using http::Status;

constexpr std::string_view kHello = "Hello, world!\n";
constexpr std::time_t kHelloMtime = 1000000000;  // Sun, 09 Sep 2001 01:46:40 GMT
constexpr long kHelloMtimeNs = 123456789;
constexpr std::string_view kHelloLastModified = "Sun, 09 Sep 2001 01:46:40 GMT";

using test::has_header;
using test::header;

/// The bytes of the response's open-file body; a failure when it is not one.
std::string file_body(const Response& response) {
    const auto* file = std::get_if<http::FileBody>(&response.body);
    if (file == nullptr || !file->fd.valid()) {
        ADD_FAILURE() << "body is not an open file";
        return {};
    }
    return test::file_body_bytes(*file);
}

std::size_t open_fd_count() {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/self/fd")) {
        ++count;
    }
    return count;
}

class StaticFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        char name[] = "/tmp/trident-docroot-XXXXXX";
        ASSERT_NE(::mkdtemp(name), nullptr);
        root_ = name;
        write("hello.txt", kHello);
        const struct timespec times[2] = {{kHelloMtime, kHelloMtimeNs},
                                          {kHelloMtime, kHelloMtimeNs}};
        ASSERT_EQ(::utimensat(AT_FDCWD, (root_ / "hello.txt").c_str(), times, 0), 0);
        write("empty.txt", "");
        write(".htaccess", "Require all denied\n");
        write("sub/.htpasswd", "user:hash\n");
        write("sub/page.html", "<p>page</p>");
        write("dir/index.html", "<p>index</p>");
        write("noindex/other.txt", "other");
        write("skipdir/index.htm", "<p>htm</p>");
        std::filesystem::create_directories(root_ / "skipdir/index.html");
        std::filesystem::create_directories(root_ / "caf\xC3\xA9 dir");
        write("secret.txt", "secret");
        ::chmod((root_ / "secret.txt").c_str(), 0);
        ASSERT_EQ(::mkfifo((root_ / "pipe").c_str(), 0644), 0);
        handler_ = std::make_unique<StaticFileHandler>(
            root_.string() + "/", std::vector<std::string>{"index.html", "index.htm"}, mime_);
    }

    void TearDown() override {
        handler_.reset();
        std::error_code ignored;
        std::filesystem::remove_all(root_, ignored);
    }

    void write(const std::string& relative, std::string_view text) {
        const std::filesystem::path path = root_ / relative;
        std::filesystem::create_directories(path.parent_path());
        std::ofstream out(path, std::ios::binary);
        out << text;
    }

    Response get(std::string path, std::initializer_list<http::Field> fields = {},
                 Method method = Method::get, std::string_view query = {}) {
        http::Request request;
        request.method = method;
        request.method_text = http::method_name(method);
        request.path = std::move(path);
        request.target = request.path;
        request.query = query;
        request.fields.assign(fields.begin(), fields.end());
        Response response;
        response.add_header("X-Stale", "must be replaced");
        handler_->handle(request, response);
        return response;
    }

    /// The strong ETag hello.txt must carry: size and mtime in microseconds, in hex.
    static std::string hello_etag() {
        char text[64];
        std::snprintf(text, sizeof text, "\"%zx-%llx\"", kHello.size(),
                      static_cast<unsigned long long>(kHelloMtime) * 1000000ULL +
                          static_cast<unsigned long long>(kHelloMtimeNs / 1000));
        return text;
    }

    std::filesystem::path root_;
    MimeTypes mime_;
    std::unique_ptr<StaticFileHandler> handler_;
};

TEST_F(StaticFileTest, ServesFileWithValidators) {
    const Response response = get("/hello.txt");
    EXPECT_EQ(response.status, Status::ok);
    EXPECT_EQ(header(response, "Content-Type"), "text/plain");
    EXPECT_EQ(header(response, "ETag"), hello_etag());
    EXPECT_EQ(hello_etag(), "\"e-38d7ea4c86240\"");
    EXPECT_EQ(header(response, "Last-Modified"), kHelloLastModified);
    EXPECT_EQ(header(response, "Accept-Ranges"), "bytes");
    EXPECT_FALSE(has_header(response, "X-Stale"));
    EXPECT_FALSE(has_header(response, "Content-Range"));
    const auto* file = std::get_if<http::FileBody>(&response.body);
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->offset, 0u);
    EXPECT_EQ(file->length, kHello.size());
    EXPECT_EQ(response.body_length(), kHello.size());
    EXPECT_EQ(file_body(response), kHello);
    EXPECT_TRUE(::fcntl(file->fd.get(), F_GETFD) & FD_CLOEXEC);
}

// The first request reads the file and keeps it in the file cache; later ones answer from
// the entry (its fields rendered once, its bytes lent to the response, or for a file too
// large to hold sent from the file). Both must say the same, whatever the request asks.
class StaticFileCacheTest : public StaticFileTest {
protected:
    void expect_cache_answers_as_file(const std::string& path, const std::string& etag,
                                      const std::string& last_modified, bool bytes_held) {
        const std::vector<std::vector<http::Field>> asks = {
            {},
            {{"If-None-Match", etag}},
            {{"If-None-Match", "\"other\""}},
            {{"If-Modified-Since", last_modified}},
            {{"If-Match", "\"other\""}},
            {{"Accept-Encoding", "gzip"}},
        };
        for (Method method : {Method::get, Method::head}) {
            for (const std::vector<http::Field>& fields : asks) {
                const std::string what =
                    std::string(http::method_name(method)) +
                    (fields.empty() ? "" : " with " + std::string(fields[0].name));
                handler_ = std::make_unique<StaticFileHandler>(
                    root_.string() + "/", std::vector<std::string>{"index.html"}, mime_);
                const auto ask = [&] {
                    http::Request request;
                    request.method = method;
                    request.method_text = http::method_name(method);
                    request.path = path;
                    request.target = request.path;
                    request.fields = fields;
                    Response response;
                    handler_->handle(request, response);
                    return response;
                };
                const Response from_file = ask();
                const Response from_cache = ask();
                if (from_file.status == Status::ok) {
                    EXPECT_TRUE(std::holds_alternative<http::FileBody>(from_file.body)) << what;
                    if (bytes_held) {
                        EXPECT_TRUE(std::holds_alternative<http::BorrowedBytes>(from_cache.body))
                            << what;
                    } else {
                        EXPECT_TRUE(std::holds_alternative<http::FileBody>(from_cache.body))
                            << what;
                    }
                }
                if (fields.empty() || fields[0].name == "Accept-Encoding") {
                    // Answered from the fields the entry rendered, not built again.
                    EXPECT_FALSE(from_cache.serialized_fields.empty()) << what;
                }
                EXPECT_EQ(from_cache.status, from_file.status) << what;
                EXPECT_EQ(test::all_fields(from_cache), test::all_fields(from_file)) << what;
                EXPECT_EQ(from_cache.body_length(), from_file.body_length()) << what;
                EXPECT_EQ(test::body_of(from_cache), test::body_of(from_file)) << what;
            }
        }
    }
};

TEST_F(StaticFileCacheTest, ACacheHitAnswersAsTheFileDid) {
    // The cache keeps only files and folders unchanged for two seconds (file_cache.hpp).
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    expect_cache_answers_as_file("/hello.txt", hello_etag(), std::string(kHelloLastModified), true);
}

TEST_F(StaticFileCacheTest, ALargeFileAnswersFromItsEntryWithItsBytesFromDisk) {
    std::string large(100 * 1024, 'x');  // over the cache's 64 KiB for bytes it holds
    large.replace(0, 6, "first ");
    write("large.bin", large);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    const Response first = get("/large.bin");
    ASSERT_EQ(first.status, Status::ok);
    EXPECT_EQ(file_body(first), large);
    expect_cache_answers_as_file("/large.bin", header(first, "ETag"),
                                 header(first, "Last-Modified"), false);

    // Edited in place, same size: the descriptor's stat no longer matches the entry, so
    // the next answer is the new file's, bytes and validators alike.
    large.replace(0, 6, "later ");
    write("large.bin", large);
    const Response edited = get("/large.bin");
    ASSERT_EQ(edited.status, Status::ok);
    EXPECT_EQ(file_body(edited), large);
    EXPECT_NE(header(edited, "ETag"), header(first, "ETag"));
    std::filesystem::remove(root_ / "large.bin");
    EXPECT_EQ(get("/large.bin").status, Status::not_found);
}

TEST_F(StaticFileTest, HeadAnswersExactlyAsGet) {
    const Response get_response = get("/hello.txt");
    const Response head_response = get("/hello.txt", {}, Method::head);
    EXPECT_EQ(head_response.status, Status::ok);
    EXPECT_EQ(test::all_fields(head_response), test::all_fields(get_response));
    EXPECT_EQ(head_response.body_length(), kHello.size());
}

TEST_F(StaticFileTest, MissingFilesAre404) {
    EXPECT_EQ(get("/missing.txt").status, Status::not_found);
    EXPECT_EQ(get("/nodir/missing.txt").status, Status::not_found);
    EXPECT_EQ(get("/hello.txt/child").status, Status::not_found);            // ENOTDIR
    EXPECT_EQ(get("/" + std::string(5000, 'a')).status, Status::not_found);  // ENAMETOOLONG
}

TEST_F(StaticFileTest, HtFilesAreForbidden) {
    EXPECT_EQ(get("/.htaccess").status, Status::forbidden);
    EXPECT_EQ(get("/sub/.htpasswd").status, Status::forbidden);
    EXPECT_EQ(get("/.htnothing").status, Status::forbidden);  // refused before the lookup
    EXPECT_EQ(get("/.HTaccess").status, Status::forbidden);
    EXPECT_EQ(get("/sub/page.html").status, Status::ok);
}

TEST_F(StaticFileTest, UnreadableFileIs403) {
    if (::geteuid() != 0) {
        EXPECT_EQ(get("/secret.txt").status, Status::forbidden);
        EXPECT_EQ(get("/hello.txt").status, Status::ok);
        return;
    }
    // Root reads a mode-000 file, so the direct assert is skipped; a child that drops to
    // "nobody" observes the EACCES instead.
    EXPECT_EQ(get("/secret.txt").status, Status::ok) << "root reads a mode-000 file";
    ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
            ::_exit(2);
        }
        const bool ok = get("/secret.txt").status == Status::forbidden &&
                        get("/hello.txt").status == Status::ok;
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 2) {
        GTEST_SKIP() << "cannot drop privileges to observe the denial";
    }
    EXPECT_EQ(WEXITSTATUS(status), 0) << "as nobody: secret.txt must be 403, hello.txt 200";
}

TEST_F(StaticFileTest, SpecialFilesAre403) {
    const Response response = get("/pipe");  // O_NONBLOCK: a FIFO must not block the open
    EXPECT_EQ(response.status, Status::forbidden);
    EXPECT_FALSE(std::holds_alternative<http::FileBody>(response.body));
}

TEST_F(StaticFileTest, UnsafePathsAreRefusedEvenIfTheRouterWasBypassed) {
    EXPECT_EQ(get("/../etc/passwd").status, Status::bad_request);
    EXPECT_EQ(get("/dir/..").status, Status::bad_request);
    EXPECT_EQ(get("").status, Status::bad_request);
    EXPECT_EQ(get(std::string("/hello.txt\0.png", 15)).status, Status::bad_request);
}

TEST_F(StaticFileTest, DirectoryWithoutSlashRedirects) {
    Response response = get("/dir");
    EXPECT_EQ(response.status, Status::moved_permanently);
    EXPECT_EQ(header(response, "Location"), "/dir/");

    response = get("/caf\xC3\xA9 dir", {}, Method::get, "a=1&b=%20");
    EXPECT_EQ(response.status, Status::moved_permanently);
    EXPECT_EQ(header(response, "Location"), "/caf%C3%A9%20dir/?a=1&b=%20");

    response = get("/dir", {}, Method::head);
    EXPECT_EQ(response.status, Status::moved_permanently);
}

TEST_F(StaticFileTest, DirectoryServesFirstIndexFile) {
    Response response = get("/dir/");
    EXPECT_EQ(response.status, Status::ok);
    EXPECT_EQ(header(response, "Content-Type"), "text/html");
    EXPECT_EQ(file_body(response), "<p>index</p>");

    // "index.html" is a directory there, so the next name, "index.htm", is the index.
    response = get("/skipdir/");
    EXPECT_EQ(response.status, Status::ok);
    EXPECT_EQ(file_body(response), "<p>htm</p>");
}

TEST_F(StaticFileTest, DirectoryWithoutIndexIs403) {
    const Response response = get("/noindex/");
    EXPECT_EQ(response.status, Status::forbidden);
    const auto* body = std::get_if<std::string>(&response.body);
    ASSERT_NE(body, nullptr);
    EXPECT_NE(body->find("listing"), std::string::npos);
}

TEST_F(StaticFileTest, RootDirectoryWithoutIndexIs403) {
    EXPECT_EQ(get("/").status, Status::forbidden);
    write("index.html", "<p>root</p>");
    const Response response = get("/");
    EXPECT_EQ(response.status, Status::ok);
    EXPECT_EQ(file_body(response), "<p>root</p>");
}

TEST_F(StaticFileTest, IfNoneMatchGives304) {
    const std::string etag = hello_etag();
    const std::string weak = "W/" + etag;
    const std::string list = "\"nope\", " + weak + " ,\"other\"";
    for (const std::string& value : {etag, weak, list, std::string("*")}) {
        const Response response = get("/hello.txt", {{"If-None-Match", value}});
        EXPECT_EQ(response.status, Status::not_modified) << value;
        EXPECT_EQ(header(response, "ETag"), etag);
        EXPECT_EQ(header(response, "Last-Modified"), kHelloLastModified);
        EXPECT_FALSE(has_header(response, "Content-Type"));
        EXPECT_TRUE(std::holds_alternative<std::monostate>(response.body)) << value;
    }
    // A second field line is part of the same list.
    EXPECT_EQ(get("/hello.txt", {{"If-None-Match", "\"a\""}, {"If-None-Match", etag}}).status,
              Status::not_modified);
    EXPECT_EQ(get("/hello.txt", {{"If-None-Match", etag}}, Method::head).status,
              Status::not_modified);
}

TEST_F(StaticFileTest, IfNoneMatchMismatchServesAndOverridesIfModifiedSince) {
    EXPECT_EQ(get("/hello.txt", {{"If-None-Match", "\"e-1\""}}).status, Status::ok);
    EXPECT_EQ(get("/hello.txt", {{"If-None-Match", "garbage"}}).status, Status::ok);
    // RFC 9110 §13.2.2: If-Modified-Since is not evaluated when If-None-Match is present.
    const Response response = get(
        "/hello.txt", {{"If-None-Match", "\"e-1\""}, {"If-Modified-Since", kHelloLastModified}});
    EXPECT_EQ(response.status, Status::ok);
    EXPECT_EQ(file_body(response), kHello);
}

TEST_F(StaticFileTest, IfModifiedSinceGives304WhenNotNewer) {
    EXPECT_EQ(get("/hello.txt", {{"If-Modified-Since", kHelloLastModified}}).status,
              Status::not_modified);
    EXPECT_EQ(get("/hello.txt", {{"If-Modified-Since", "Sun, 09 Sep 2001 01:46:41 GMT"}}).status,
              Status::not_modified);
    EXPECT_EQ(get("/hello.txt", {{"If-Modified-Since", "Sun, 09 Sep 2001 01:46:39 GMT"}}).status,
              Status::ok);
    EXPECT_EQ(get("/hello.txt", {{"If-Modified-Since", "not a date"}}).status, Status::ok);
}

TEST_F(StaticFileTest, IfMatchAndIfUnmodifiedSinceGive412) {
    const std::string etag = hello_etag();
    EXPECT_EQ(get("/hello.txt", {{"If-Match", "\"e-1\""}}).status, Status::precondition_failed);
    EXPECT_EQ(get("/hello.txt", {{"If-Match", "W/" + etag}}).status,
              Status::precondition_failed);  // strong comparison
    EXPECT_EQ(get("/hello.txt", {{"If-Match", "\"x\", " + etag}}).status, Status::ok);
    EXPECT_EQ(get("/hello.txt", {{"If-Match", "*"}}).status, Status::ok);
    EXPECT_EQ(get("/hello.txt", {{"If-Unmodified-Since", "Sun, 09 Sep 2001 01:46:39 GMT"}}).status,
              Status::precondition_failed);
    EXPECT_EQ(get("/hello.txt", {{"If-Unmodified-Since", kHelloLastModified}}).status, Status::ok);
    // If-Match takes precedence: If-Unmodified-Since is not evaluated.
    EXPECT_EQ(get("/hello.txt",
                  {{"If-Match", etag}, {"If-Unmodified-Since", "Sun, 09 Sep 2001 01:46:39 GMT"}})
                  .status,
              Status::ok);
    // Step 1 fails before step 3 could answer 304.
    EXPECT_EQ(get("/hello.txt", {{"If-Match", "\"e-1\""}, {"If-None-Match", etag}}).status,
              Status::precondition_failed);
}

TEST_F(StaticFileTest, SingleRangeGives206) {
    Response response = get("/hello.txt", {{"Range", "bytes=0-4"}});
    EXPECT_EQ(response.status, Status::partial_content);
    EXPECT_EQ(header(response, "Content-Range"), "bytes 0-4/14");
    EXPECT_EQ(header(response, "ETag"), hello_etag());
    EXPECT_EQ(header(response, "Content-Type"), "text/plain");
    EXPECT_EQ(response.body_length(), 5u);
    EXPECT_EQ(file_body(response), "Hello");

    response = get("/hello.txt", {{"Range", "bytes=-6"}});
    EXPECT_EQ(response.status, Status::partial_content);
    EXPECT_EQ(header(response, "Content-Range"), "bytes 8-13/14");
    EXPECT_EQ(file_body(response), "orld!\n");

    response = get("/hello.txt", {{"Range", "bytes=7-"}});
    EXPECT_EQ(header(response, "Content-Range"), "bytes 7-13/14");
    EXPECT_EQ(file_body(response), "world!\n");
}

TEST_F(StaticFileTest, IgnoredRangeServesWholeFile) {
    for (std::string_view value : {"bytes=5-2", "lines=1-2", "bytes=x", "bytes=0-1,x"}) {
        const Response response = get("/hello.txt", {{"Range", value}});
        EXPECT_EQ(response.status, Status::ok) << value;
        EXPECT_FALSE(has_header(response, "Content-Range")) << value;
        EXPECT_EQ(file_body(response), kHello) << value;
    }
}

TEST_F(StaticFileTest, UnsatisfiableRangeGives416) {
    Response response = get("/hello.txt", {{"Range", "bytes=14-"}});
    EXPECT_EQ(response.status, Status::range_not_satisfiable);
    EXPECT_EQ(header(response, "Content-Range"), "bytes */14");
    EXPECT_TRUE(std::holds_alternative<std::string>(response.body));

    response = get("/empty.txt", {{"Range", "bytes=0-"}});
    EXPECT_EQ(response.status, Status::range_not_satisfiable);
    EXPECT_EQ(header(response, "Content-Range"), "bytes */0");
}

TEST_F(StaticFileTest, IfRangeDecidesBetween206And200) {
    const std::string etag = hello_etag();
    EXPECT_EQ(get("/hello.txt", {{"Range", "bytes=0-4"}, {"If-Range", etag}}).status,
              Status::partial_content);
    EXPECT_EQ(get("/hello.txt", {{"Range", "bytes=0-4"}, {"If-Range", kHelloLastModified}}).status,
              Status::partial_content);

    for (const std::string& value :
         {std::string("\"e-1\""), "W/" + etag, std::string("Sun, 09 Sep 2001 01:46:41 GMT"),
          std::string("garbage")}) {
        const Response response = get("/hello.txt", {{"Range", "bytes=0-4"}, {"If-Range", value}});
        EXPECT_EQ(response.status, Status::ok) << value;
        EXPECT_EQ(file_body(response), kHello) << value;
    }
    // A failed If-Range also turns an unsatisfiable range into a full 200.
    EXPECT_EQ(get("/hello.txt", {{"Range", "bytes=99-"}, {"If-Range", "\"e-1\""}}).status,
              Status::ok);
}

TEST_F(StaticFileTest, RangeOnHeadIsIgnored) {
    const Response response = get("/hello.txt", {{"Range", "bytes=0-4"}}, Method::head);
    EXPECT_EQ(response.status, Status::ok);
    EXPECT_FALSE(has_header(response, "Content-Range"));
    EXPECT_EQ(response.body_length(), kHello.size());
    EXPECT_EQ(get("/hello.txt", {{"Range", "bytes=99-"}}, Method::head).status, Status::ok);
}

TEST_F(StaticFileTest, OtherMethodsGet405WithAllow) {
    for (Method method : {Method::post, Method::put, Method::delete_, Method::options,
                          Method::patch, Method::trace, Method::other}) {
        const Response response = get("/hello.txt", {}, method);
        EXPECT_EQ(response.status, Status::method_not_allowed) << http::method_name(method);
        EXPECT_EQ(header(response, "Allow"), "GET, HEAD, OPTIONS");
        EXPECT_FALSE(std::holds_alternative<http::FileBody>(response.body));
    }
}

TEST_F(StaticFileTest, NoDescriptorLeaksOnAnyPath) {
    const std::string etag = hello_etag();
    const std::size_t before = open_fd_count();
    for (int i = 0; i < 200; ++i) {
        get("/hello.txt");
        get("/hello.txt", {}, Method::head);
        get("/hello.txt", {{"Range", "bytes=1-3"}});
        get("/hello.txt", {{"Range", "bytes=100-"}});
        get("/hello.txt", {{"If-None-Match", etag}});
        get("/hello.txt", {{"If-Match", "\"e-1\""}});
        get("/dir/");
        get("/skipdir/");
        get("/noindex/");
        get("/dir");
        get("/pipe");
        get("/missing.txt");
        get("/hello.txt", {}, Method::post);
    }
    EXPECT_EQ(open_fd_count(), before);
}

}  // namespace
}  // namespace trident
