// Spare maintenance from outside: the pool grows and shrinks as the scoreboard says, under
// every MPM, read through the scoreboard file as a monitoring tool would.

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "trident/scoreboard.hpp"

namespace trident::test {
namespace {

using Clock = std::chrono::steady_clock;

class SpareMaintenanceTest : public ::testing::TestWithParam<std::string> {
protected:
    SpareMaintenanceTest() : site_(make_site(dir_.path())) {}

    void TearDown() override {
        if (HasFailure() && server_) {
            std::cerr << "---- trident output (" << GetParam() << " MPM) ----\n"
                      << server_->output() << "---- end of trident output ----\n";
        }
    }

    bool prefork() const { return GetParam() == "prefork"; }

    /// Starts with `start` children and spare limits in workers (threads_per_child 2 for
    /// the threaded MPMs).
    void start(std::uint32_t start, std::uint32_t min_spare, std::uint32_t max_spare) {
        ServerConfig config;
        config.mpm = GetParam();
        config.document_root = site_.root;
        config.start_servers = start;
        config.mpm_extra =
            prefork() ? "min_spare_servers: " + std::to_string(min_spare) +
                            ", max_spare_servers: " + std::to_string(max_spare)
                      : "threads_per_child: 2, min_spare_threads: " + std::to_string(min_spare) +
                            ", max_spare_threads: " + std::to_string(max_spare);
        scoreboard_file_ = dir_.path() / "scoreboard";
        config.extra_yaml = "scoreboard_file: \"" + scoreboard_file_.string() + "\"\n";
        server_ = std::make_unique<TridentServer>(dir_.path(), config);
        ASSERT_TRUE(server_->start());
    }

    /// Polls the scoreboard until `done(tally)` holds or `timeout` passes; the last tally.
    template <typename Done>
    ScoreboardTally wait_for(Done done, Millis timeout) {
        auto board = Scoreboard::attach(scoreboard_file_);  // there once start() returned
        EXPECT_TRUE(board) << board.error().message;
        ScoreboardTally tally;
        if (!board) {
            return tally;
        }
        eventually(
            [&] {
                tally = board->tally();
                return done(tally);
            },
            timeout, Millis(100));
        return tally;
    }

    TempDir dir_;
    Site site_;
    fs::path scoreboard_file_;
    std::unique_ptr<TridentServer> server_;
};

TEST_P(SpareMaintenanceTest, GrowsToMinSpare) {
    // prefork: one child, at least three idle wanted. Threaded: one child of two threads,
    // at least six idle threads wanted (three children).
    const std::uint32_t min_spare = prefork() ? 3 : 6;
    start(1, min_spare, prefork() ? 5 : 12);
    const auto tally =
        wait_for([&](const ScoreboardTally& t) { return t.idle >= min_spare; }, Millis(10000));
    EXPECT_GE(tally.idle, min_spare) << tally.processes << " processes";
    std::cout << "[ " << GetParam() << " ] grew to " << tally.processes << " processes, "
              << tally.idle << " idle workers\n";
    std::string error;
    EXPECT_TRUE(exchange(server_->port(), make_request("GET", "/hello.txt"), &error)) << error;
}

TEST_P(SpareMaintenanceTest, ShrinksToMaxSpare) {
    // Five children, all idle, with few idle ones wanted: one is retired per second.
    const std::uint32_t max_spare = prefork() ? 2 : 5;  // threaded: clamped to min + 2 + 1
    start(5, 1, max_spare);
    // The port answers once the master has bound it, before the first fork: see the five
    // children first, or "at most two" would hold trivially.
    const auto started =
        wait_for([](const ScoreboardTally& t) { return t.processes >= 5; }, Millis(10000));
    ASSERT_GE(started.processes, 5u) << "the five children never appeared";
    const auto tally =
        wait_for([&](const ScoreboardTally& t) { return t.processes <= 2u; }, Millis(15000));
    EXPECT_LE(tally.idle, max_spare) << tally.processes << " processes";
    EXPECT_GE(tally.processes, 1u);
    std::cout << "[ " << GetParam() << " ] shrank to " << tally.processes << " processes, "
              << tally.idle << " idle workers\n";
    std::string error;
    EXPECT_TRUE(exchange(server_->port(), make_request("GET", "/hello.txt"), &error)) << error;
}

using ThreadedSpareTest = SpareMaintenanceTest;

TEST_P(ThreadedSpareTest, AConnectionLimitBelowTheThreadsLeavesAnIdlePoolAlone) {
    // max_connections_per_child: 1 with 4 threads a child: until a child has accepted its
    // one connection every thread of it is idle, as in Apache. Counted as finishing ('G')
    // instead, 2 children read as 2 idle workers of the 4 wanted, and maintenance forked
    // more, each as short of idle ones, up to server_limit.
    ServerConfig config;
    config.mpm = GetParam();
    config.document_root = site_.root;
    config.start_servers = 2;
    config.max_connections_per_child = 1;
    config.mpm_extra = "threads_per_child: 4, min_spare_threads: 4, max_spare_threads: 8";
    scoreboard_file_ = dir_.path() / "scoreboard";
    config.extra_yaml = "scoreboard_file: \"" + scoreboard_file_.string() + "\"\n";
    server_ = std::make_unique<TridentServer>(dir_.path(), config);
    ASSERT_TRUE(server_->start());
    const auto started = wait_for(
        [](const ScoreboardTally& t) { return t.processes == 2 && t.idle == 8; }, Millis(10000));
    EXPECT_EQ(started.idle, 8u) << started.graceful << " finishing, " << started.processes
                                << " processes";
    std::this_thread::sleep_for(Millis(2500));  // two maintenance ticks
    const auto later = wait_for([](const ScoreboardTally&) { return true; }, Millis(0));
    EXPECT_EQ(later.processes, 2u) << "maintenance forked children for an idle server";
    EXPECT_EQ(later.graceful, 0u);
    std::string error;
    EXPECT_TRUE(exchange(server_->port(), make_request("GET", "/hello.txt"), &error)) << error;
}

INSTANTIATE_TEST_SUITE_P(Mpm, SpareMaintenanceTest, ::testing::ValuesIn(kMpms), mpm_test_name);
INSTANTIATE_TEST_SUITE_P(Mpm, ThreadedSpareTest, ::testing::Values("worker", "event"),
                         mpm_test_name);

}  // namespace
}  // namespace trident::test

namespace trident::test {
namespace {

/// 200 keep-alive clients arriving at once, against each MPM's default process settings:
/// none may wait past wrk's 2 s timeout while the pool grows (Apache's prefork times
/// requests out here; the burst rule starts enough children in one tick).
TEST_P(SpareMaintenanceTest, BurstOf200ConnectionsIsServedWithoutTimeouts) {
    if (!fs::exists("/usr/bin/wrk")) {
        GTEST_SKIP() << "wrk is not installed (make deps installs it)";
    }
#if defined(__SANITIZE_ADDRESS__)
    // What this measures is how fast the master forks while its children keep the machine
    // busy: AddressSanitizer's master forks about nine times slower (2.8 ms a child against
    // 0.3 ms, idle), so prefork's 195 children arrive after wrk's 2 s. The Release run of
    // this suite keeps the promise.
    GTEST_SKIP() << "a timing promise of the uninstrumented build";
#endif
    ServerConfig config;
    config.mpm = GetParam();
    config.document_root = site_.root;
    config.start_servers = prefork() ? 5 : 3;  // Apache's defaults, as the shipped config
    server_ = std::make_unique<TridentServer>(dir_.path(), config);
    ASSERT_TRUE(server_->start());
    const std::string url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/hello.txt";
    const CommandResult wrk =
        run_command({"/usr/bin/wrk", "-t2", "-c200", "-d3s", "--timeout", "2s", url}, dir_.path(),
                    Millis(20000));
    ASSERT_TRUE(wrk.ok()) << wrk.err << wrk.out;
    EXPECT_EQ(wrk.out.find("Socket errors"), std::string::npos) << wrk.out;
    EXPECT_EQ(wrk.out.find("Non-2xx"), std::string::npos) << wrk.out;
    EXPECT_NE(wrk.out.find("Requests/sec"), std::string::npos) << wrk.out;
    const auto rate = wrk.out.find("Requests/sec");
    std::cout << "[ " << GetParam() << " ] 200-connection burst: "
              << wrk.out.substr(rate, wrk.out.find('\n', rate) - rate) << ", no errors\n";
}

}  // namespace
}  // namespace trident::test

namespace trident::test {
namespace {

/// 200 clients each send one request and then stay idle in keep-alive, so every prefork
/// child (and worker thread) they reach is held. Growing by Apache's doubling rate alone
/// would leave most of them waiting for keep-alive timeouts; the burst rule starts enough
/// children at once. The bound is wrk's 2 s timeout with slack for a loaded machine.
TEST_P(SpareMaintenanceTest, BurstOfIdleKeepAliveClientsIsAnsweredPromptly) {
    ServerConfig config;
    config.mpm = GetParam();
    config.document_root = site_.root;
    config.start_servers = prefork() ? 5 : 3;
    server_ = std::make_unique<TridentServer>(dir_.path(), config);
    ASSERT_TRUE(server_->start());

    std::vector<std::unique_ptr<RawClient>> clients;
    const std::string request = make_request("GET", "/hello.txt");
    for (int i = 0; i < 200; ++i) {
        auto client = std::make_unique<RawClient>();
        ASSERT_TRUE(client->connect(server_->port())) << client->error();
        ASSERT_TRUE(client->send(request)) << client->error();
        clients.push_back(std::move(client));
    }
    const auto deadline = Clock::now() + Millis(4000);
    std::size_t answered = 0;
    for (auto& client : clients) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
        const auto response = client->read_response(false, std::max(left, Millis(1)));
        answered += response && response->status == 200;
    }
    EXPECT_EQ(answered, 200u) << "clients still waiting after 4 s";
    std::cout << "[ " << GetParam() << " ] " << answered
              << " of 200 idle keep-alive clients answered within 4 s\n";
}

}  // namespace
}  // namespace trident::test

namespace trident::test {
namespace {

/// Children retire every 20 connections while ab keeps 20 connections busy: the master
/// replaces them as they go, and not one request fails.
TEST_P(SpareMaintenanceTest, RecyclingUnderLoadLosesNoRequest) {
    if (!fs::exists("/usr/bin/ab")) {
        GTEST_SKIP() << "ab is not installed (make deps installs apache2-utils)";
    }
    ServerConfig config;
    config.mpm = GetParam();
    config.document_root = site_.root;
    config.start_servers = 3;
    config.max_connections_per_child = 20;
    server_ = std::make_unique<TridentServer>(dir_.path(), config);
    ASSERT_TRUE(server_->start());
    const std::string url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/hello.txt";
    const CommandResult ab =
        run_command({"/usr/bin/ab", "-q", "-n", "3000", "-c", "20", "-s", "10", url}, dir_.path(),
                    Millis(60000));
    ASSERT_TRUE(ab.ok()) << ab.err << ab.out;
    EXPECT_NE(ab.out.find("Complete requests:      3000"), std::string::npos) << ab.out;
    EXPECT_NE(ab.out.find("Failed requests:        0"), std::string::npos) << ab.out;
    EXPECT_EQ(ab.out.find("Non-2xx"), std::string::npos) << ab.out;
    std::cout << "[ " << GetParam() << " ] 3000 requests over children recycled every 20 "
              << "connections: none failed\n";
}

}  // namespace
}  // namespace trident::test
