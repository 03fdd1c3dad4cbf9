// Request framing through the connection (RFC 9112 §6-§7, RFC 9110 §10.1.1): chunked bodies
// consumed exactly, the smuggling corpus refused and closed, Expect: 100-continue answered
// with an interim response, and the method and target rules answered with the right status.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "connection_fixture.hpp"
#include "http/connection.hpp"

namespace trident::http {
namespace {

const std::string kNext = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";

bool has(const std::string& head, std::string_view text) {
    return head.find(text) != std::string::npos;
}

TEST_F(ConnectionTest, ChunkedBodyIsConsumedExactlyAtEverySplit) {
    // The body holds bytes that look like a request; only the one after it may be answered.
    const std::string input =
        "POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1d;name=value;q=\"a b\"\r\nGET /index.html HTTP/1.1\r\nX: \r\n"
        "3\r\nabc\r\n0\r\nX-Trailer: yes\r\n\r\n" +
        kNext;
    for (std::size_t chunk = 0; chunk <= input.size(); ++chunk) {
        Connection conn(*router_, config_);
        auto t = drive(conn, input, chunk);
        ASSERT_EQ(t.heads.size(), 2u) << "chunk " << chunk;
        EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 405 ")) << chunk;  // POST on a file
        EXPECT_TRUE(has(t.heads[0], "Connection: keep-alive")) << chunk;
        EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 ")) << chunk;
        EXPECT_EQ(t.bodies[1], "0123456789") << chunk;
        EXPECT_EQ(conn.requests_served(), 2u);
    }
}

TEST_F(ConnectionTest, ContentLengthBodyIsConsumedExactlyAtEverySplit) {
    const std::string input =
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n0\r\n\r\nGE" + kNext;
    for (std::size_t chunk = 0; chunk <= input.size(); ++chunk) {
        Connection conn(*router_, config_);
        auto t = drive(conn, input, chunk);
        ASSERT_EQ(t.heads.size(), 2u) << "chunk " << chunk;
        EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 200 ")) << chunk;
        EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 ")) << chunk;
    }
}

struct Refusal {
    const char* what;
    std::string request;  ///< followed by kNext, which must not be answered
    const char* status;
};

TEST_F(ConnectionTest, SmugglingCorpusIsRefusedAndClosed) {
    const std::string post = "POST /a.txt HTTP/1.1\r\nHost: x\r\n";
    const std::string te = post + "Transfer-Encoding: chunked\r\n\r\n";
    const std::vector<Refusal> cases = {
        {"CL and TE", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "400"},
        {"TE and CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
         "400"},
        {"TE obs-fold", post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "400"},
        {"TE chunked, identity", post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
         "400"},
        {"TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "400"},
        {"TE chunked twice",
         post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
                "\r\n\r\n0\r\n\r\n",
         "400"},
        {"TE in HTTP/1.0", "POST /a.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "400"},
        {"TE space before colon", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "400"},
        {"double CL", post + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", "400"},
        {"CL list", post + "Content-Length: 1, 1\r\n\r\nx", "400"},
        {"CL sign", post + "Content-Length: +1\r\n\r\nx", "400"},
        {"chunk size 0x10", te + "0x10\r\n0123456789abcdef\r\n0\r\n\r\n", "400"},
        {"chunk size ' 10'", te + " 10\r\n0123456789abcdef\r\n0\r\n\r\n", "400"},
        {"chunk size '10 '", te + "10 \r\n0123456789abcdef\r\n0\r\n\r\n", "400"},
        {"chunk size -1", te + "-1\r\nx\r\n0\r\n\r\n", "400"},
        {"chunk size overflow", te + "1000000000000000000\r\nx\r\n0\r\n\r\n", "400"},
        {"chunk size huge", te + "ffffffffffffffff\r\nx\r\n0\r\n\r\n", "413"},
        {"bare ; extension", te + "1;\r\nx\r\n0\r\n\r\n", "400"},
        {"bare LF after size", te + "1\nx\r\n0\r\n\r\n", "400"},
        {"data longer than its size", te + "1\r\nxy\r\n0\r\n\r\n", "400"},
        {"no final CRLF", te + "1\r\nx\r\n0\r\n", "400"},  // kNext is then a bad trailer
        {"trailer obs-fold", te + "0\r\nA: 1\r\n 2\r\n\r\n", "400"},
        {"leading empty lines", std::string(120, '\r') + "\n", "400"},
        {"60 leading CRLFs",
         std::string() +
             [] {
                 std::string s;
                 for (int i = 0; i < 60; ++i) {
                     s += "\r\n";
                 }
                 return s;
             }() +
             "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
         "400"},
        {"over-long method", std::string(100, 'M') + " / HTTP/1.1\r\nHost: x\r\n\r\n", "501"},
        {"fragment", "GET /a.txt#x HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"asterisk with GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"Host with a path", "GET / HTTP/1.1\r\nHost: x/y\r\n\r\n", "400"},
        {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", "400"},
        {"HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", "505"},
    };
    config_.limits.request_body = 1 << 20;
    for (const Refusal& c : cases) {
        for (std::size_t chunk : {0u, 1u, 7u}) {
            Connection conn(*router_, config_);
            auto t = drive(conn, c.request + kNext, chunk, false);
            ASSERT_EQ(t.heads.size(), 1u) << c.what << " chunk " << chunk;
            EXPECT_TRUE(t.heads[0].starts_with(std::string("HTTP/1.1 ") + c.status + " "))
                << c.what << ": " << t.heads[0];
            EXPECT_TRUE(has(t.heads[0], "Connection: close")) << c.what;
            EXPECT_TRUE(t.closed) << c.what;
        }
    }
}

TEST_F(ConnectionTest, WellFramedErrorsKeepTheConnection) {
    const std::string te = "POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ";
    const std::vector<Refusal> cases = {
        // RFC 9112 §6.1: a coding we cannot decode → 501; the final chunked still frames it.
        {"gzip, chunked", te + "gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "501"},
        {"unknown method", "BREW /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", "501"},
        {"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", "405"},
        {"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", "405"},
        {"overlong UTF-8", "GET /%C0%AF HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"UTF-16 surrogate", "GET /%ED%A0%80 HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"past U+10FFFF", "GET /%F4%90%80%80 HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"truncated UTF-8", "GET /%E2%82 HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"stray continuation", "GET /a%80b HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"encoded control", "GET /a%01 HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"malformed escape", "GET /a%2 HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"valid UTF-8, missing file", "GET /caf%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n", "404"},
        {"unmet expectation", "GET /a.txt HTTP/1.1\r\nHost: x\r\nExpect: x\r\n\r\n", "417"},
        {"unmet expectation, body read",
         "POST /a.txt HTTP/1.1\r\nHost: x\r\nExpect: fast\r\nContent-Length: 3\r\n\r\nabc", "417"},
    };
    for (const Refusal& c : cases) {
        for (std::size_t chunk : {0u, 1u, 5u}) {
            Connection conn(*router_, config_);
            auto t = drive(conn, c.request + kNext, chunk, false);
            ASSERT_EQ(t.heads.size(), 2u) << c.what << " chunk " << chunk;
            EXPECT_TRUE(t.heads[0].starts_with(std::string("HTTP/1.1 ") + c.status + " "))
                << c.what << ": " << t.heads[0];
            EXPECT_TRUE(has(t.heads[0], "Connection: keep-alive")) << c.what;
            if (t.heads[0].starts_with("HTTP/1.1 405 ")) {
                // RFC 9110 §15.5.6: every 405 carries Allow.
                EXPECT_TRUE(has(t.heads[0], "\r\nAllow: GET, HEAD, OPTIONS\r\n")) << c.what;
            }
            EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 ")) << c.what;
            EXPECT_EQ(t.bodies[1], "0123456789") << c.what;
        }
    }
}

TEST_F(ConnectionTest, ChunkedBodyCountsAgainstTheBodyLimit) {
    config_.limits.request_body = 10;
    const std::string te = "POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    Connection at_limit(*router_, config_);
    auto t = drive(at_limit, te + "4\r\nabcd\r\n6\r\nefghij\r\n0\r\n\r\n" + kNext, 0, false);
    ASSERT_EQ(t.heads.size(), 2u);
    EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 405 "));

    Connection over(*router_, config_);
    t = drive(over, te + "4\r\nabcd\r\n7\r\nefghijk\r\n0\r\n\r\n" + kNext, 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 413 ")) << t.heads[0];
    EXPECT_TRUE(t.closed);
}

TEST_F(ConnectionTest, OptionsAnswersWithAllowAndNoContent) {
    Connection conn(*router_, config_);
    auto t = drive(conn,
                   "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
                   "OPTIONS /a.txt HTTP/1.1\r\nHost: x\r\n\r\n" +
                       kNext,
                   0, false);
    ASSERT_EQ(t.heads.size(), 3u);
    for (int i = 0; i < 2; ++i) {
        EXPECT_TRUE(t.heads[i].starts_with("HTTP/1.1 200 OK\r\n")) << t.heads[i];
        EXPECT_TRUE(has(t.heads[i], "\r\nAllow: GET, HEAD, OPTIONS\r\n")) << t.heads[i];
        EXPECT_TRUE(has(t.heads[i], "\r\nContent-Length: 0\r\n")) << t.heads[i];
        EXPECT_EQ(t.bodies[i], "");
    }
    EXPECT_TRUE(t.heads[2].starts_with("HTTP/1.1 200 "));
}

TEST_F(ConnectionTest, AbsoluteFormIsServedByItsPath) {
    Connection conn(*router_, config_);
    auto t = drive(conn, "GET http://elsewhere:8080/a.txt?q HTTP/1.1\r\nHost: x\r\n\r\n", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 200 ")) << t.heads[0];
    EXPECT_EQ(t.bodies[0], "0123456789");
}

// --- Expect: 100-continue (RFC 9110 §10.1.1) -----------------------------------------------

/// Hands `bytes` to the connection.
void feed(Connection& conn, std::string_view bytes) {
    auto space = conn.input_space(bytes.size());
    std::copy(bytes.begin(), bytes.end(), space.data());
    conn.commit_input(bytes.size());
}

TEST_F(ConnectionTest, ContinueGoesOutBeforeTheBodyIsRead) {
    for (const std::string& framing :
         {std::string("Content-Length: 5\r\n"), std::string("Transfer-Encoding: chunked\r\n")}) {
        const bool chunked = framing.starts_with("Transfer");
        Connection conn(*router_, config_);
        feed(conn, "GET /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n" + framing + "\r\n");
        // The interim response, alone, before any byte of the body.
        ASSERT_EQ(conn.next(kDate), Action::write);
        EXPECT_TRUE(conn.output().interim);
        EXPECT_EQ(conn.output().head, "HTTP/1.1 100 Continue\r\n\r\n");
        EXPECT_EQ(conn.output().body, "");
        conn.output_sent();
        EXPECT_EQ(conn.requests_served(), 0u);  // an interim response is not a response
        ASSERT_EQ(conn.next(kDate), Action::read);
        EXPECT_EQ(conn.waiting_for(), Wait::body);

        feed(conn, chunked ? "5\r\nhel" : "hel");
        ASSERT_EQ(conn.next(kDate), Action::read);
        feed(conn, chunked ? "lo\r\n0\r\n\r\n" : "lo");
        // Then the final response, and the connection goes on.
        ASSERT_EQ(conn.next(kDate), Action::write);
        EXPECT_FALSE(conn.output().interim);
        EXPECT_TRUE(conn.output().head.starts_with("HTTP/1.1 200 ")) << conn.output().head;
        EXPECT_TRUE(has(conn.output().head, "Connection: keep-alive"));
        ASSERT_NE(conn.current_request(), nullptr);
        EXPECT_EQ(conn.current_request()->target, "/a.txt");
        conn.output_sent();
        EXPECT_EQ(conn.requests_served(), 1u);

        auto t = drive(conn, kNext, 0, false);
        ASSERT_EQ(t.heads.size(), 1u) << framing;
        EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 200 "));
    }
}

TEST_F(ConnectionTest, RejectedRequestGetsItsFinalStatusInsteadOfContinue) {
    config_.limits.request_body = 100;
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"POST /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
         "405"},
        {"GET /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 500\r\n\r\n",
         "413"},
        {"GET /nope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
         "404"},
        {"GET /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x\r\nContent-Length: 5\r\n\r\n",
         "417"},
    };
    for (const auto& [request, status] : cases) {
        Connection conn(*router_, config_);
        auto t = drive(conn, request, 0, false);
        ASSERT_EQ(t.heads.size(), 1u) << request;
        EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 " + status + " ")) << t.heads[0];
        EXPECT_TRUE(has(t.heads[0], "Connection: close")) << request;
        EXPECT_TRUE(t.closed) << request;
    }
}

TEST_F(ConnectionTest, ContinueIsSkippedWhenNotAwaited) {
    const std::vector<std::string> cases = {
        // RFC 9110 §10.1.1: no content, or an HTTP/1.0 request (whose 100-continue is ignored).
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n"
        "Content-Length: 2\r\n\r\nab",
    };
    for (const std::string& request : cases) {
        Connection conn(*router_, config_);
        auto t = drive(conn, request + kNext, 0, false);
        ASSERT_EQ(t.heads.size(), 2u) << request;
        EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 200 ")) << t.heads[0];
        EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 ")) << t.heads[1];
    }
}

TEST_F(ConnectionTest, RequestHeadSurvivesTheBufferMovingUnderABody) {
    // A long trailer line makes the buffer grow while the body is read: the request line the
    // driver reports must not point into the old bytes.
    config_.limits.request_field_size = 20000;
    Connection conn(*router_, config_);
    feed(conn,
         "POST /a.txt?k=v HTTP/1.1\r\nHost: x\r\nUser-Agent: probe/1\r\n"
         "Transfer-Encoding: chunked\r\n\r\n1\r\n");
    ASSERT_EQ(conn.next(kDate), Action::read);
    feed(conn, "z\r\n0\r\nX-Long: " + std::string(6000, 'v'));
    ASSERT_EQ(conn.next(kDate), Action::read);
    feed(conn, std::string(4000, 'w'));  // forces a larger buffer
    ASSERT_EQ(conn.next(kDate), Action::read);
    feed(conn, "\r\n\r\n");
    ASSERT_EQ(conn.next(kDate), Action::write);
    ASSERT_NE(conn.current_request(), nullptr);
    EXPECT_EQ(conn.current_request()->method_text, "POST");
    EXPECT_EQ(conn.current_request()->target, "/a.txt?k=v");
    EXPECT_EQ(conn.current_request()->query, "k=v");
    // The fields too: the access log's %{User-Agent}i is read after the body.
    EXPECT_EQ(conn.current_request()->field("User-Agent"), "probe/1");
    EXPECT_EQ(conn.current_request()->host, "x");
}

}  // namespace
}  // namespace trident::http
