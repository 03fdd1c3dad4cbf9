// What only the event MPM promises: a connection waiting for its client holds no thread.

#include <chrono>
#include <iostream>
#include <memory>
#include <vector>

#include "harness.hpp"

namespace trident::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kIdleConnections = 1000;

class EventMpmTest : public ::testing::Test {
protected:
    EventMpmTest() : site_(make_site(dir_.path())) {}

    void TearDown() override {
        if (HasFailure() && server_) {
            std::cerr << "---- trident output (event MPM) ----\n"
                      << server_->output() << "---- end of trident output ----\n";
        }
    }

    /// One child with four worker threads. Apache's accept rule caps a child at
    /// threads_per_child + idle workers × async_request_worker_factor connections, so the
    /// factor is raised to admit a thousand.
    TridentServer& start_small_child() {
        ServerConfig config;
        config.mpm = "event";
        config.document_root = site_.root;
        config.start_servers = 1;
        config.mpm_extra = "threads_per_child: 4, async_request_worker_factor: 300";
        config.keep_alive = "{enabled: true, timeout: 60s, max_requests: 0}";
        server_ = std::make_unique<TridentServer>(dir_.path(), config);
        EXPECT_TRUE(server_->start());
        return *server_;
    }

    TempDir dir_;
    Site site_;
    std::unique_ptr<TridentServer> server_;
};

TEST_F(EventMpmTest, ThousandIdleKeepAliveConnectionsHoldNoThread) {
    TridentServer& server = start_small_child();
    ASSERT_TRUE(server.running());
    const auto children = server.wait_for_children(1);
    ASSERT_EQ(children.size(), 1u);

    std::vector<std::unique_ptr<RawClient>> idle;
    const std::string request = make_request("GET", "/hello.txt");
    for (std::size_t i = 0; i < kIdleConnections; ++i) {
        auto client = std::make_unique<RawClient>();
        ASSERT_TRUE(client->connect(server.port()))
            << "connection " << i << ": " << client->error();
        ASSERT_TRUE(client->send(request)) << client->error();
        const auto response = client->read_response();
        ASSERT_TRUE(response) << "connection " << i << ": " << client->error();
        ASSERT_EQ(response->status, 200) << "connection " << i;
        idle.push_back(std::move(client));
    }

    // All four workers would be taken four times over if idle connections held threads.
    const auto asked = Clock::now();
    RawClient fresh;
    ASSERT_TRUE(fresh.connect(server.port())) << fresh.error();
    ASSERT_TRUE(fresh.send(request)) << fresh.error();
    const auto answer = fresh.read_response(false, Millis(2000));
    const auto took = std::chrono::duration_cast<Millis>(Clock::now() - asked);
    ASSERT_TRUE(answer) << "a fresh request went unanswered with " << kIdleConnections
                        << " idle keep-alive connections open: " << fresh.error();
    EXPECT_EQ(answer->status, 200);
    EXPECT_EQ(answer->body, site_.text);
    std::cout << "[ event ] fresh request answered in " << took.count() << " ms with "
              << kIdleConnections << " idle keep-alive connections on 1 child x 4 threads\n";

    // The idle connections are still good.
    std::size_t reused = 0;
    for (auto& client : idle) {
        if (client->send(request)) {
            const auto again = client->read_response();
            reused += again && again->status == 200 && again->body == site_.text;
        }
    }
    EXPECT_EQ(reused, kIdleConnections);
}

TEST_F(EventMpmTest, SlowHeadHoldsNoWorker) {
    TridentServer& server = start_small_child();
    ASSERT_TRUE(server.running());
    // Eight clients (twice the workers) each send half a head and stall.
    std::vector<std::unique_ptr<RawClient>> slow;
    for (int i = 0; i < 8; ++i) {
        auto client = std::make_unique<RawClient>();
        ASSERT_TRUE(client->connect(server.port())) << client->error();
        ASSERT_TRUE(client->send("GET /hello.txt HTTP/1.1\r\nHost: loc")) << client->error();
        slow.push_back(std::move(client));
    }
    std::string error;
    const auto response = exchange(server.port(), make_request("GET", "/hello.txt"), &error);
    ASSERT_TRUE(response) << "a request went unanswered behind stalled heads: " << error;
    EXPECT_EQ(response->status, 200);
    // And each stalled client is still served once it finishes its head.
    for (auto& client : slow) {
        ASSERT_TRUE(client->send("alhost\r\n\r\n")) << client->error();
        const auto late = client->read_response();
        ASSERT_TRUE(late) << client->error();
        EXPECT_EQ(late->status, 200);
    }
}

}  // namespace
}  // namespace trident::test
