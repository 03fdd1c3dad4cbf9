// HTTP/1.1 protocol behaviour over raw sockets: limits, malformed requests, bodies,
// keep-alive, pipelining, and IPv6. Every test runs under every MPM in kMpms.

#include <cctype>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace trident::test {
namespace {

using ProtocolTest = ServerTest;

std::string lowercase(std::string text) {
    for (char& c : text) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return text;
}

/// Sends `request` alone on a fresh connection; expects `status` and then the server's close.
void expect_status_then_close(std::uint16_t port, const std::string& request, int status,
                              const std::string& what) {
    SCOPED_TRACE(what);
    RawClient client;
    ASSERT_TRUE(client.connect(port)) << client.error();
    ASSERT_TRUE(client.send(request)) << client.error();
    const auto response = client.read_response();
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, status) << response->head_text();
    if (!response->closed_after) {
        EXPECT_TRUE(client.wait_closed())
            << "connection not closed after " << status << ": " << client.error();
    }
}

TEST_P(ProtocolTest, RequestLineOverTheLimitIs414AndCloses) {
    const std::string request =
        "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    expect_status_then_close(port(), request, 414, "request line of 9000+ bytes, limit 8190");
}

TEST_P(ProtocolTest, RequestLineUnderTheLimitIsServed) {
    const auto response = get("/index.html?" + std::string(7000, 'q'));
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 200) << response->head_text();
    EXPECT_EQ(response->body, site_.index_html);
}

TEST_P(ProtocolTest, FieldLineOverTheLimitIs400AndCloses) {
    const std::string request =
        make_request("GET", "/", "X-Long: " + std::string(9000, 'b') + "\r\n");
    expect_status_then_close(port(), request, 400, "field line of 9000+ bytes, limit 8190");

    const auto fits = get("/", "X-Long: " + std::string(4000, 'b') + "\r\n");
    ASSERT_TRUE(fits) << last_error_;
    EXPECT_EQ(fits->status, 200) << fits->head_text();
}

TEST_P(ProtocolTest, MoreFieldsThanTheLimitIs400) {
    // Host plus 99 more is exactly the limit of 100; one more is over it.
    std::string fields;
    for (int i = 1; i <= 99; ++i) {
        fields += "X-Field-" + std::to_string(i) + ": v\r\n";
    }
    const auto at_limit = get("/", fields);
    ASSERT_TRUE(at_limit) << last_error_;
    EXPECT_EQ(at_limit->status, 200) << "100 fields, limit 100\n" << at_limit->head_text();

    expect_status_then_close(port(), make_request("GET", "/", fields + "X-Field-100: v\r\n"), 400,
                             "101 fields, limit 100");
}

TEST_P(ProtocolTest, Http11WithoutHostIs400) {
    expect_status_then_close(port(), "GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host");
}

TEST_P(ProtocolTest, Http10WithoutHostIsServed) {
    const auto response = fetch("GET /hello.txt HTTP/1.0\r\n\r\n");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 200) << response->head_text();
    EXPECT_EQ(response->body, site_.text);
}

TEST_P(ProtocolTest, UnsupportedMajorVersionIs505AndCloses) {
    expect_status_then_close(port(), "GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505,
                             "HTTP/2.0 request line");
}

TEST_P(ProtocolTest, MalformedRequestsAre400AndClose) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"method only", "GET\r\n\r\n"},
        {"extra token after version", "GET / HTTP/1.1 extra\r\nHost: localhost\r\n\r\n"},
        {"not an HTTP version", "GET / HTTX/1.1\r\nHost: localhost\r\n\r\n"},
        {"bad character in method", "G@T / HTTP/1.1\r\nHost: localhost\r\n\r\n"},
        {"field without colon", "GET / HTTP/1.1\r\nHost: localhost\r\nNoColon\r\n\r\n"},
        {"space before colon (RFC 9112 §5.1)", "GET / HTTP/1.1\r\nHost : localhost\r\n\r\n"},
        {"control byte in field name", "GET / HTTP/1.1\r\nHost: localhost\r\nX-\x01: y\r\n\r\n"},
        {"two Host fields (RFC 9110 §7.2)",
         "GET / HTTP/1.1\r\nHost: localhost\r\nHost: other\r\n\r\n"},
        {"non-numeric Content-Length",
         "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n"},
        {"conflicting Content-Length (RFC 9112 §6.3)",
         "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"},
        {"binary junk", std::string("\x16\x03\x01\x02\x00\r\n\r\n", 9)},
    };
    for (const auto& [what, request] : cases) {
        expect_status_then_close(port(), request, 400, what);
    }
}

TEST_P(ProtocolTest, ErrorClosesEvenWithARequestQueuedBehindIt) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nNoColon\r\n\r\n" + make_request("GET", "/")))
        << client.error();
    const auto response = client.read_response();
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, 400) << response->head_text();
    EXPECT_TRUE(client.wait_closed())
        << "answered past a request it could not frame: " << client.error();
}

TEST_P(ProtocolTest, ContentLengthBodyIsReadAndDiscarded) {
    // The body looks like a request; it must be consumed as a body, not run as a request.
    const std::string smuggled = make_request("GET", "/index.html");
    const std::string first = make_request(
        "GET", "/hello.txt", "Content-Length: " + std::to_string(smuggled.size()) + "\r\n");
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(first + smuggled + make_request("GET", "/sub/"))) << client.error();
    const auto responses = client.read_responses(2);
    ASSERT_EQ(responses.size(), 2u) << client.error();
    EXPECT_EQ(responses[0].status, 200) << responses[0].head_text();
    EXPECT_EQ(responses[0].body, site_.text);
    EXPECT_EQ(responses[1].status, 200) << responses[1].head_text();
    EXPECT_EQ(responses[1].body, site_.sub_index) << "the body was taken for a request";
}

TEST_P(ProtocolTest, BodyOverTheLimitIs413) {
    // limits.request_body is 64KiB in the harness config; only the head is sent.
    const auto response = fetch(make_request("GET", "/hello.txt", "Content-Length: 100000\r\n"));
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 413) << response->head_text();
}

TEST_P(ProtocolTest, Http11KeepsTheConnectionOpenByDefault) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(client.send(make_request("GET", "/hello.txt"))) << client.error();
        const auto response = client.read_response();
        ASSERT_TRUE(response) << "request " << i + 1 << " on one connection: " << client.error();
        EXPECT_EQ(response->status, 200) << response->head_text();
        EXPECT_EQ(response->body, site_.text);
        EXPECT_NE(lowercase(response->header("Connection").value_or("")), "close")
            << response->head_text();
    }
}

TEST_P(ProtocolTest, Http11ConnectionCloseCloses) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(make_request("GET", "/hello.txt", "Connection: close\r\n")));
    const auto response = client.read_response();
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, 200) << response->head_text();
    EXPECT_EQ(lowercase(response->header("Connection").value_or("")), "close")
        << response->head_text();
    EXPECT_TRUE(client.wait_closed()) << client.error();
}

TEST_P(ProtocolTest, Http10ClosesUnlessAskedToKeepAlive) {
    RawClient plain;
    ASSERT_TRUE(plain.connect(port())) << plain.error();
    ASSERT_TRUE(plain.send("GET /hello.txt HTTP/1.0\r\n\r\n")) << plain.error();
    const auto closing = plain.read_response();
    ASSERT_TRUE(closing) << plain.error();
    EXPECT_EQ(closing->status, 200) << closing->head_text();
    EXPECT_EQ(closing->body, site_.text);
    if (!closing->closed_after) {
        EXPECT_TRUE(plain.wait_closed()) << "HTTP/1.0 without keep-alive: " << plain.error();
    }

    RawClient kept;
    ASSERT_TRUE(kept.connect(port())) << kept.error();
    const std::string request = "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    ASSERT_TRUE(kept.send(request)) << kept.error();
    const auto first = kept.read_response();
    ASSERT_TRUE(first) << kept.error();
    EXPECT_EQ(first->status, 200) << first->head_text();
    EXPECT_EQ(lowercase(first->header("Connection").value_or("")), "keep-alive")
        << first->head_text();
    ASSERT_TRUE(kept.send(request)) << kept.error();
    const auto second = kept.read_response();
    ASSERT_TRUE(second) << "second HTTP/1.0 keep-alive request: " << kept.error();
    EXPECT_EQ(second->body, site_.text);
}

TEST_P(ProtocolTest, PipelinedRequestsAreAnsweredInOrder) {
    const std::vector<std::pair<std::string, int>> requests = {{"/hello.txt", 200},
                                                               {"/index.html", 200},
                                                               {"/missing", 404},
                                                               {"/sub/", 200},
                                                               {"/hello.txt", 200}};
    std::string batch;
    for (const auto& [target, status] : requests) {
        batch += make_request("GET", target);
    }
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(batch)) << client.error();
    const auto responses = client.read_responses(requests.size());
    ASSERT_EQ(responses.size(), requests.size()) << client.error();
    const std::vector<std::string> bodies = {site_.text, site_.index_html, "", site_.sub_index,
                                             site_.text};
    for (std::size_t i = 0; i < requests.size(); ++i) {
        EXPECT_EQ(responses[i].status, requests[i].second) << "response " << i + 1;
        if (requests[i].second == 200) {
            EXPECT_EQ(responses[i].body, bodies[i]) << "response " << i + 1;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Mpm, ProtocolTest, ::testing::ValuesIn(kMpms), mpm_test_name);

// --- keep-alive limits ----------------------------------------------------------------------

class KeepAliveLimitTest : public ServerTest {
protected:
    void configure(ServerConfig& config) override {
        config.keep_alive = "{enabled: true, timeout: 1s, max_requests: 2}";
    }
};

TEST_P(KeepAliveLimitTest, IdleConnectionClosesAfterTheTimeout) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(make_request("GET", "/hello.txt"))) << client.error();
    const auto response = client.read_response();
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, 200) << response->head_text();
    const auto idle_since = std::chrono::steady_clock::now();
    EXPECT_TRUE(client.wait_closed(Millis(4000))) << "keep_alive.timeout 1s: " << client.error();
    const auto idle = std::chrono::steady_clock::now() - idle_since;
    EXPECT_GE(idle, Millis(500)) << "closed well before the keep-alive timeout";
}

TEST_P(KeepAliveLimitTest, MaxRequestsEndsTheConnection) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(make_request("GET", "/hello.txt"))) << client.error();
    const auto first = client.read_response();
    ASSERT_TRUE(first) << client.error();
    EXPECT_NE(lowercase(first->header("Connection").value_or("")), "close") << first->head_text();
    ASSERT_TRUE(client.send(make_request("GET", "/hello.txt"))) << client.error();
    const auto second = client.read_response();
    ASSERT_TRUE(second) << client.error();
    EXPECT_EQ(second->status, 200) << second->head_text();
    EXPECT_EQ(lowercase(second->header("Connection").value_or("")), "close")
        << "keep_alive.max_requests 2\n"
        << second->head_text();
    EXPECT_TRUE(client.wait_closed()) << client.error();
}

// The server closes after the second response (max_requests 2), but this client never said
// it would stop sending: requests it pipelined behind may still be on their way. Closed
// outright, the server's socket would answer them with a reset, which can destroy responses
// the client has not read yet; RFC 9112 §9.6 has the server close in stages instead: shut
// its side, then read and discard what still comes. Bytes sent after the close must
// therefore be taken quietly, not reset.
TEST_P(KeepAliveLimitTest, AClientThatKeepsSendingAfterTheLimitIsNotReset) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    const std::string request = make_request("GET", "/hello.txt");
    ASSERT_TRUE(client.send(request + request)) << client.error();
    const auto responses = client.read_responses(2);
    ASSERT_EQ(responses.size(), 2u) << client.error();
    EXPECT_EQ(lowercase(responses[1].header("Connection").value_or("")), "close");
    // A reset would come back to the first of these; the second would then fail.
    ASSERT_TRUE(client.send(request)) << client.error();
    std::this_thread::sleep_for(Millis(200));
    EXPECT_TRUE(client.send(request)) << "reset after the server's close: " << client.error();
    EXPECT_TRUE(client.wait_closed()) << client.error();
}

INSTANTIATE_TEST_SUITE_P(Mpm, KeepAliveLimitTest, ::testing::ValuesIn(kMpms), mpm_test_name);

// --- IPv6 -----------------------------------------------------------------------------------

class Ipv6Test : public ServerTest {
protected:
    void SetUp() override {
        if (!ipv6_loopback_available()) {
            GTEST_SKIP() << "cannot bind [::1] on this machine";
        }
        ServerTest::SetUp();
    }
    void configure(ServerConfig& config) override { config.host = "::1"; }
};

TEST_P(Ipv6Test, ServesOverIpv6Loopback) {
    const auto response = get("/");
    ASSERT_TRUE(response) << last_error_;
    EXPECT_EQ(response->status, 200) << response->head_text();
    EXPECT_EQ(response->body, site_.index_html);

    const auto curl =
        run_curl({"-g"}, "http://[::1]:" + std::to_string(port()) + "/hello.txt", dir_->path());
    EXPECT_EQ(curl.http_code, 200) << curl.command.err;
    EXPECT_EQ(curl.body, site_.text);
}

INSTANTIATE_TEST_SUITE_P(Mpm, Ipv6Test, ::testing::ValuesIn(kMpms), mpm_test_name);

}  // namespace
}  // namespace trident::test
