// Request framing over real sockets under every MPM (RFC 9112 §6-§7, RFC 9110 §10.1.1): a
// request-smuggling corpus, each case answered with its status and, where the framing is
// uncertain, the connection closed before the request queued behind it; chunked bodies
// consumed exactly; and Expect: 100-continue answered on the wire before the body is sent.

#include <string>
#include <vector>

#include "harness.hpp"

namespace trident::test {
namespace {

using FramingTest = ServerTest;

struct SmugglingCase {
    std::string what;
    std::string request;  ///< sent with a valid request right behind it
    int status;
};

std::vector<SmugglingCase> smuggling_corpus() {
    const std::string post = "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\n";
    const std::string te = post + "Transfer-Encoding: chunked\r\n\r\n";
    // The body each case would carry if it were believed: a request of its own.
    const std::string hidden = make_request("GET", "/index.html");
    const std::string hidden_chunk = "1d\r\n" + hidden.substr(0, 29) + "\r\n";
    return {
        {"Content-Length with Transfer-Encoding",
         post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, 400},
        {"Transfer-Encoding with Content-Length",
         post + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + hidden, 400},
        {"Transfer-Encoding: chunked with obs-fold",
         post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
        {"Transfer-Encoding: chunked, identity",
         post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
        {"Transfer-Encoding: xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
        {"Transfer-Encoding in HTTP/1.0",
         "POST /hello.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"two Content-Length fields, same value",
         post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
        {"two Content-Length fields, different values",
         post + "Content-Length: 3\r\nContent-Length: 40\r\n\r\nabc", 400},
        {"chunk size 0x10", te + "0x10\r\n0123456789abcdef\r\n0\r\n\r\n", 400},
        {"chunk size ' 10'", te + " 10\r\n0123456789abcdef\r\n0\r\n\r\n", 400},
        {"chunk size '10 '", te + "10 \r\n0123456789abcdef\r\n0\r\n\r\n", 400},
        {"chunk size -1", te + "-1\r\n" + hidden_chunk + "0\r\n\r\n", 400},
        {"chunk size that overflows 64 bits", te + "10000000000000000\r\n" + hidden, 400},
        {"chunk size past the body limit", te + "ffffffffffffffff\r\n" + hidden, 413},
        {"bare ';' chunk extension", te + "1d;\r\n" + hidden.substr(0, 29) + "\r\n0\r\n\r\n", 400},
        {"chunk data longer than its size", te + "1\r\nxy\r\n0\r\n\r\n", 400},
        {"bare LF in the chunk framing", te + "1\nx\r\n0\r\n\r\n", 400},
        {"bare LF in the head", "GET / HTTP/1.1\nHost: localhost\r\n\r\n", 400},
        {"space before the colon", "GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", 400},
    };
}

TEST_P(FramingTest, SmugglingCorpusIsRefusedAndTheQueuedRequestIsNotAnswered) {
    const std::string queued = make_request("GET", "/hello.txt");
    for (const SmugglingCase& c : smuggling_corpus()) {
        SCOPED_TRACE(c.what + " under " + GetParam());
        RawClient client;
        ASSERT_TRUE(client.connect(port())) << client.error();
        ASSERT_TRUE(client.send(c.request + queued)) << client.error();
        const auto response = client.read_response();
        ASSERT_TRUE(response) << client.error();
        EXPECT_EQ(response->status, c.status) << response->head_text();
        EXPECT_EQ(response->header("Connection").value_or(""), "close") << response->head_text();
        if (!response->closed_after) {
            EXPECT_TRUE(client.wait_closed())
                << "answered past a request whose end is unknown: " << client.error();
        }
    }
}

TEST_P(FramingTest, ChunkedBodyIsConsumedExactly) {
    // The chunk data is a complete request; it must be skipped as data, not run.
    const std::string hidden = make_request("GET", "/index.html");
    char size[16];
    std::snprintf(size, sizeof size, "%zx", hidden.size());
    const std::string first = make_request("GET", "/hello.txt", "Transfer-Encoding: chunked\r\n") +
                              size + ";ext=\"a b\"\r\n" + hidden + "\r\n0\r\nX-Trailer: t\r\n\r\n";
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    // In two writes, split inside the chunk data, then the next request.
    const std::size_t split = first.size() - 20;
    ASSERT_TRUE(client.send(first.substr(0, split))) << client.error();
    ASSERT_TRUE(client.send(first.substr(split) + make_request("GET", "/sub/"))) << client.error();
    const auto responses = client.read_responses(2);
    ASSERT_EQ(responses.size(), 2u) << client.error();
    EXPECT_EQ(responses[0].status, 200) << responses[0].head_text();
    EXPECT_EQ(responses[0].body, site_.text);
    EXPECT_EQ(responses[1].status, 200) << responses[1].head_text();
    EXPECT_EQ(responses[1].body, site_.sub_index) << "the chunk data was taken for a request";
}

TEST_P(FramingTest, WellFramedErrorKeepsTheConnection) {
    // 501 for a coding we cannot decode, but the final chunked frames the body.
    const std::string request =
        make_request("POST", "/hello.txt", "Transfer-Encoding: gzip, chunked\r\n") +
        "3\r\nabc\r\n0\r\n\r\n";
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(
        client.send(request + make_request("TRACE", "/") + make_request("GET", "/hello.txt")))
        << client.error();
    const auto responses = client.read_responses(3);
    ASSERT_EQ(responses.size(), 3u) << client.error();
    EXPECT_EQ(responses[0].status, 501) << responses[0].head_text();
    EXPECT_EQ(responses[1].status, 405) << responses[1].head_text();
    EXPECT_EQ(responses[1].header("Allow").value_or(""), "GET, HEAD, OPTIONS");
    EXPECT_EQ(responses[2].status, 200) << responses[2].head_text();
    EXPECT_EQ(responses[2].body, site_.text);
}

TEST_P(FramingTest, ContinueIsOnTheWireBeforeTheBodyIsSent) {
    for (const std::string framing : {"Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n"}) {
        SCOPED_TRACE(framing + " under " + GetParam());
        const bool chunked = framing.starts_with("Transfer");
        RawClient client;
        ASSERT_TRUE(client.connect(port())) << client.error();
        ASSERT_TRUE(
            client.send(make_request("GET", "/hello.txt", "Expect: 100-continue\r\n" + framing)))
            << client.error();
        // Nothing of the body has been sent: the server must speak first.
        const auto interim = client.read_response();
        ASSERT_TRUE(interim) << "no 100 Continue before the body: " << client.error();
        EXPECT_EQ(interim->status, 100) << interim->head_text();
        EXPECT_EQ(interim->body, "");

        ASSERT_TRUE(client.send(chunked ? "5\r\nhello\r\n0\r\n\r\n" : "hello")) << client.error();
        const auto final_response = client.read_response();
        ASSERT_TRUE(final_response) << client.error();
        EXPECT_EQ(final_response->status, 200) << final_response->head_text();
        EXPECT_EQ(final_response->body, site_.text);
        EXPECT_NE(final_response->header("Connection").value_or(""), "close");

        // The connection goes on.
        ASSERT_TRUE(client.send(make_request("GET", "/hello.txt"))) << client.error();
        const auto next = client.read_response();
        ASSERT_TRUE(next) << client.error();
        EXPECT_EQ(next->status, 200) << next->head_text();
    }
}

TEST_P(FramingTest, RejectedExpectationGetsTheFinalStatusAtOnce) {
    const std::vector<std::pair<std::string, int>> cases = {
        {make_request("POST", "/hello.txt", "Expect: 100-continue\r\nContent-Length: 5\r\n"), 405},
        {make_request("GET", "/hello.txt", "Expect: 100-continue\r\nContent-Length: 100000\r\n"),
         413},
        {make_request("GET", "/hello.txt", "Expect: 100-continue, x\r\nContent-Length: 5\r\n"),
         417},
    };
    for (const auto& [request, status] : cases) {
        SCOPED_TRACE(request);
        RawClient client;
        ASSERT_TRUE(client.connect(port())) << client.error();
        ASSERT_TRUE(client.send(request)) << client.error();
        const auto response = client.read_response();
        ASSERT_TRUE(response) << client.error();
        EXPECT_EQ(response->status, status) << response->head_text();
        if (!response->closed_after) {
            EXPECT_TRUE(client.wait_closed()) << client.error();
        }
    }
}

TEST_P(FramingTest, MethodsAndTargetForms) {
    const auto options = fetch("OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_TRUE(options) << last_error_;
    EXPECT_EQ(options->status, 200) << options->head_text();
    EXPECT_EQ(options->header("Allow").value_or(""), "GET, HEAD, OPTIONS");
    EXPECT_EQ(options->header("Content-Length").value_or(""), "0");

    const auto connect = fetch("CONNECT localhost:443 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_TRUE(connect) << last_error_;
    EXPECT_EQ(connect->status, 405) << connect->head_text();
    EXPECT_TRUE(connect->header("Allow")) << connect->head_text();

    const auto absolute =
        fetch("GET http://elsewhere/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_TRUE(absolute) << last_error_;
    EXPECT_EQ(absolute->status, 200) << absolute->head_text();
    EXPECT_EQ(absolute->body, site_.text);

    const auto overlong = get("/%C0%AF");
    ASSERT_TRUE(overlong) << last_error_;
    EXPECT_EQ(overlong->status, 400) << overlong->head_text();

    std::string blank_lines;
    for (int i = 0; i < 10; ++i) {
        blank_lines += "\r\n";
    }
    const auto ten = fetch(blank_lines + make_request("GET", "/hello.txt"));
    ASSERT_TRUE(ten) << last_error_;
    EXPECT_EQ(ten->status, 200) << "ten leading empty lines are ignored\n" << ten->head_text();
    const auto sixty = fetch(blank_lines + blank_lines + blank_lines + blank_lines + blank_lines +
                             blank_lines + make_request("GET", "/hello.txt"));
    ASSERT_TRUE(sixty) << last_error_;
    EXPECT_EQ(sixty->status, 400) << "sixty leading empty lines\n" << sixty->head_text();
}

INSTANTIATE_TEST_SUITE_P(Mpm, FramingTest, ::testing::ValuesIn(kMpms), mpm_test_name);

}  // namespace
}  // namespace trident::test
