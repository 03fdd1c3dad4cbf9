// The connection state machine, driven without sockets: bytes in, responses out.

#include "http/connection.hpp"

#include <gtest/gtest.h>

#include <string>

#include "connection_fixture.hpp"

namespace trident::http {
namespace {

TEST_F(ConnectionTest, ServesAFileWithCoreHeaders) {
    Connection conn(*router_, config_);
    auto t = drive(conn, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 200 OK\r\n"));
    EXPECT_NE(t.heads[0].find("\r\nDate: " + std::string(kDate) + "\r\n"), std::string::npos);
    EXPECT_NE(t.heads[0].find("\r\nServer: Trident/"), std::string::npos);
    EXPECT_NE(t.heads[0].find("\r\nContent-Length: 10\r\n"), std::string::npos);
    EXPECT_NE(t.heads[0].find("\r\nConnection: keep-alive\r\n"), std::string::npos);
    EXPECT_TRUE(t.heads[0].ends_with("\r\n\r\n"));
    EXPECT_EQ(t.bodies[0], "0123456789");
    EXPECT_TRUE(t.closed);  // after the peer's EOF
}

TEST_F(ConnectionTest, PipelinedRequestsAnswerInOrderAtEveryChunkSize) {
    const std::string input =
        "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        "HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n";
    for (std::size_t chunk = 0; chunk <= input.size(); chunk += (chunk < 8 ? 1 : 7)) {
        Connection conn(*router_, config_);
        auto t = drive(conn, input, chunk);
        ASSERT_EQ(t.heads.size(), 3u) << "chunk " << chunk;
        EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 200 ")) << chunk;
        EXPECT_EQ(t.bodies[0], "0123456789");
        EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 ")) << chunk;
        EXPECT_NE(t.heads[1].find("Content-Length: 10\r\n"), std::string::npos);
        EXPECT_EQ(t.bodies[1], "");  // HEAD: GET's fields, no content
        EXPECT_TRUE(t.heads[2].starts_with("HTTP/1.1 404 ")) << chunk;
        EXPECT_EQ(conn.requests_served(), 3u);
    }
}

TEST_F(ConnectionTest, Http10ClosesUnlessAskedToKeepAlive) {
    Connection plain(*router_, config_);
    auto t = drive(plain, "GET /a.txt HTTP/1.0\r\n\r\nGET /a.txt HTTP/1.0\r\n\r\n", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_NE(t.heads[0].find("Connection: close\r\n"), std::string::npos);
    EXPECT_TRUE(t.closed);

    Connection kept(*router_, config_);
    t = drive(kept, "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_NE(t.heads[0].find("Connection: keep-alive\r\n"), std::string::npos);
    EXPECT_FALSE(t.closed);
}

TEST_F(ConnectionTest, ConnectionCloseAndMaxRequestsEndTheConnection) {
    Connection closing(*router_, config_);
    auto t = drive(closing,
                   "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                   0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_TRUE(t.closed);

    config_.keep_alive.max_requests = 2;
    Connection limited(*router_, config_);
    std::string three;
    for (int i = 0; i < 3; ++i) {
        three += "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    }
    t = drive(limited, three, 0, false);
    ASSERT_EQ(t.heads.size(), 2u);
    EXPECT_NE(t.heads[0].find("Connection: keep-alive"), std::string::npos);
    EXPECT_NE(t.heads[1].find("Connection: close"), std::string::npos);
    EXPECT_TRUE(t.closed);

    config_.keep_alive.enabled = false;
    Connection disabled(*router_, config_);
    t = drive(disabled, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_NE(t.heads[0].find("Connection: close"), std::string::npos);
}

TEST_F(ConnectionTest, AGracefulStopLetsAnIdleConnectionSendItsNextRequest) {
    // The stop comes while the connection waits for its next request: it keeps waiting
    // (its client may be sending right now), and that request is answered with close.
    Connection conn(*router_, config_);
    auto t = drive(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_NE(t.heads[0].find("Connection: keep-alive"), std::string::npos);
    conn.close_after_response();
    EXPECT_EQ(conn.next(kDate), Action::read);
    EXPECT_EQ(conn.waiting_for(), Wait::keep_alive);
    t = drive(conn, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_NE(t.heads[0].find("Connection: close"), std::string::npos);
    EXPECT_EQ(t.bodies[0], "0123456789");
    EXPECT_TRUE(t.closed);

    // A client that sends nothing more is ended by the keep-alive timeout, with no answer.
    Connection silent(*router_, config_);
    t = drive(silent, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, false);
    silent.close_after_response();
    EXPECT_EQ(silent.next(kDate), Action::read);
    EXPECT_EQ(silent.on_timeout(kDate), Action::close);
}

TEST_F(ConnectionTest, BodyIsDiscardedBeforeTheNextRequest) {
    const std::string input =
        "POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world"
        "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    for (std::size_t chunk : {0u, 1u, 5u}) {
        Connection conn(*router_, config_);
        auto t = drive(conn, input, chunk);
        ASSERT_EQ(t.heads.size(), 2u) << chunk;
        EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 405 ")) << chunk;
        EXPECT_NE(t.heads[0].find("Allow: GET, HEAD, OPTIONS\r\n"), std::string::npos);
        EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 ")) << chunk;
    }
}

TEST_F(ConnectionTest, ErrorsAnswerAndCloseWhenFramingIsUncertain) {
    struct Case {
        std::string request;
        std::string status;
        bool closes;  // whether what follows can no longer be trusted
    } cases[] = {
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", "413", true},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
         "400", true},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "400", true},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "400", true},
        {"GET / HTTP/1.1\r\n\r\n", "400", true},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505", true},
        {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", "414", true},
        // A well-framed request the server cannot serve: the connection goes on.
        {"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", "501", false},
        {"GET * HTTP/1.1\r\nHost: x\r\n\r\n", "400", true},
    };
    config_.limits.request_body = 1 << 20;
    for (const Case& c : cases) {
        Connection conn(*router_, config_);
        auto t = drive(conn, c.request + "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, false);
        ASSERT_GE(t.heads.size(), 1u) << c.request;
        EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 " + c.status + " ")) << t.heads[0];
        EXPECT_NE(t.bodies[0].find("<html>"), std::string::npos);  // a small HTML page
        if (c.closes) {
            EXPECT_EQ(t.heads.size(), 1u) << c.request;
            EXPECT_NE(t.heads[0].find("Connection: close"), std::string::npos) << c.request;
            EXPECT_TRUE(t.closed) << c.request;
        } else {
            ASSERT_EQ(t.heads.size(), 2u) << c.request;
            EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 ")) << t.heads[1];
        }
    }
}

TEST_F(ConnectionTest, TimeoutAnswers408OnlyMidRequest) {
    Connection idle(*router_, config_);
    ASSERT_EQ(idle.next(kDate), Action::read);
    EXPECT_EQ(idle.waiting_for(), Wait::first_request);
    EXPECT_EQ(idle.on_timeout(kDate), Action::close);

    Connection partial(*router_, config_);
    auto t = drive(partial, "GET / HTTP/1.1\r\nHo", 0, false);
    EXPECT_TRUE(t.heads.empty());
    EXPECT_EQ(partial.waiting_for(), Wait::head);
    ASSERT_EQ(partial.on_timeout(kDate), Action::write);
    EXPECT_TRUE(partial.output().head.starts_with("HTTP/1.1 408 "));
    partial.output_sent();
    EXPECT_EQ(partial.next(kDate), Action::close);
}

TEST_F(ConnectionTest, WaitsReportThePhase) {
    Connection conn(*router_, config_);
    auto t = drive(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab", 0, false);
    EXPECT_TRUE(t.heads.empty());
    EXPECT_EQ(conn.waiting_for(), Wait::body);
    t = drive(conn, "cde", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_EQ(conn.waiting_for(), Wait::keep_alive);
}

TEST_F(ConnectionTest, ReleasingIdleMemoryKeepsEveryByteARequestStillNeeds) {
    Connection conn(*router_, config_);
    auto t = drive(conn, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    conn.release_idle_memory();  // between requests: everything goes
    EXPECT_TRUE(conn.output().head.empty());
    EXPECT_GE(conn.input_space().size(), 4096u);  // the next read gets a fresh buffer

    // Part of a head, then part of a body: released at either point, nothing is lost.
    t = drive(conn, "GET /a.txt HTTP/1.1\r\nHo", 0, false);
    EXPECT_TRUE(t.heads.empty());
    conn.release_idle_memory();
    t = drive(conn, "st: x\r\n\r\nPOST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
              0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_EQ(t.bodies[0], "0123456789");
    EXPECT_EQ(conn.waiting_for(), Wait::body);
    conn.release_idle_memory();
    t = drive(conn, "cdeGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(t.heads.size(), 2u);
    EXPECT_FALSE(t.heads[0].starts_with("HTTP/1.1 400 ")) << t.heads[0];
    EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 ")) << t.heads[1];
    EXPECT_EQ(t.bodies[1], "0123456789");
    EXPECT_EQ(conn.requests_served(), 4u);
}

TEST_F(ConnectionTest, GrowsTheBufferForALargeHeadAndReparses) {
    // A head much larger than the initial buffer, delivered in small pieces, forces the
    // buffer to move; the parse must restart cleanly each time.
    std::string input = "GET /a.txt HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 60; ++i) {
        input += "X-Filler-" + std::to_string(i) + ": " + std::string(400, 'v') + "\r\n";
    }
    input += "\r\n";
    Connection conn(*router_, config_);
    auto t = drive(conn, input, 1000);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 200 "));
    EXPECT_EQ(t.bodies[0], "0123456789");
}

}  // namespace
}  // namespace trident::http

namespace trident::http {
namespace {

TEST_F(ConnectionTest, HeadGetsNoContentEvenOnAnError) {
    config_.limits.request_body = 10;
    Connection conn(*router_, config_);
    auto t =
        drive(conn, "HEAD /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 0, false);
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 413 ")) << t.heads[0];
    EXPECT_NE(t.heads[0].find("Content-Length: "), std::string::npos);  // what GET would get
    EXPECT_EQ(t.bodies[0], "");                                         // RFC 9110 §9.3.2
}

TEST_F(ConnectionTest, ExpectContinueIsAnsweredWithoutWaitingForTheBody) {
    Connection conn(*router_, config_);
    auto t = drive(conn,
                   "POST /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   "Content-Length: 500\r\n\r\n",
                   0, false);
    // Answered with the head alone: the client is waiting before it sends the body.
    ASSERT_EQ(t.heads.size(), 1u);
    EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 405 ")) << t.heads[0];
    EXPECT_NE(t.heads[0].find("Connection: close"), std::string::npos);
    EXPECT_TRUE(t.closed);
}

TEST_F(ConnectionTest, ExpectContinueWithTheBodyAlreadySentIsServedNormally) {
    Connection conn(*router_, config_);
    auto t = drive(conn,
                   "POST /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   "Content-Length: 3\r\n\r\nabc"
                   "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
                   0, false);
    ASSERT_EQ(t.heads.size(), 2u);
    EXPECT_TRUE(t.heads[0].starts_with("HTTP/1.1 405 "));
    EXPECT_TRUE(t.heads[1].starts_with("HTTP/1.1 200 "));
}

}  // namespace
}  // namespace trident::http
