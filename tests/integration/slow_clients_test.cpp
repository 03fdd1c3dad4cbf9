// Slow clients: the request timeouts with a minimum data rate (as mod_reqtimeout's
// RequestReadTimeout), and a slowloris attack against the event MPM's default settings.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

extern char** environ;

namespace trident::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;

/// Sends a request head in `pieces` field lines of `piece_size` bytes, one every `gap`, then
/// the blank line; stops early when the server closes. Returns whether all of it went out.
bool trickle_head(RawClient& client, int pieces, std::size_t piece_size, Millis gap) {
    if (!client.send("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n")) {
        return false;
    }
    for (int i = 0; i < pieces; ++i) {
        std::this_thread::sleep_for(gap);
        std::string line = "X" + std::to_string(i) + ": a";  // at most 7 bytes before CRLF
        line.append(piece_size > line.size() + 2 ? piece_size - line.size() - 2 : 0, 'a');
        line += "\r\n";
        if (!client.send(line)) {
            return false;
        }
    }
    return client.send("\r\n");
}

class RequestTimeoutTest : public ServerTest {
protected:
    void configure(ServerConfig& config) override {
        // A short header timeout that a client sending 1500 B/s keeps extending, up to 3 s.
        config.extra_yaml =
            "timeouts: {request_header: 1500ms, request_header_max: 3s, min_data_rate: 500}\n";
    }
};

TEST_P(RequestTimeoutTest, ClientAboveTheMinimumRateOutlastsTheStartingTimeout) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    // 2 s of trickling, 300 bytes every 200 ms: each piece buys 600 ms, so the deadline
    // stays ahead of the client although the head takes longer than the 1.5 s timeout.
    ASSERT_TRUE(trickle_head(client, 10, 300, Millis(200))) << client.error();
    const auto response = client.read_response();
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, 200) << response->head_text();
}

TEST_P(RequestTimeoutTest, FastTricklingStopsAtTheHardMaximumWith408) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    // Fast enough to extend forever were there no maximum; 40 pieces would take 8 s.
    trickle_head(client, 40, 300, Millis(200));
    const auto response = client.read_response(false, Millis(8000));
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, 408) << response->head_text();
    EXPECT_TRUE(client.wait_closed());
}

TEST_P(RequestTimeoutTest, ClientBelowTheMinimumRateGets408) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    // 10 bytes every 300 ms is 33 B/s: the 1.5 s timeout barely moves.
    trickle_head(client, 20, 10, Millis(300));
    const auto response = client.read_response(false, Millis(8000));
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, 408) << response->head_text();
}

INSTANTIATE_TEST_SUITE_P(Mpm, RequestTimeoutTest, ::testing::ValuesIn(kMpms), mpm_test_name);

/// Writes that give up after 1 s without progress, and an access log with each response's
/// bytes (%b body, %O all), how it ended (%X) and how long it took (%D, microseconds).
class SendTimeoutTest : public ServerTest {
protected:
    void configure(ServerConfig& config) override {
        log_ = dir_->path() / "access.log";
        config.access_log = "{path: " + log_.string() + ", format: '%>s %b %O %X %D'}";
        config.extra_yaml = "timeouts: {send: 1s}\n";
    }

    fs::path log_;
};

TEST_P(SendTimeoutTest, AClientThatStopsReadingIsDroppedAfterOneSendTimeout) {
    const std::string large = write_large_file(site_);
    StalledReader stalled(port(), "/large.bin");
    ASSERT_TRUE(stalled.connected());

    // The line goes out when the server gives up on the client. A sendfile() that blocked
    // took each trickle of room the client's kernel made as progress, and held on for
    // several times timeouts.send.
    std::string line;
    ASSERT_TRUE(eventually(
        [&] {
            line = fs::exists(log_) ? read_file(log_) : "";
            return line.ends_with("\n");
        },
        Millis(15000)))
        << "no access log line: " << server_->output();
    std::istringstream fields(line);
    std::string status, connection;
    std::uint64_t body = 0, sent = 0, micros = 0;
    ASSERT_TRUE(fields >> status >> body >> sent >> connection >> micros) << line;
    EXPECT_EQ(status, "200") << line;
    EXPECT_EQ(connection, "X") << line;  // aborted
    // What reached the socket, not "-": part of the body, after the head.
    EXPECT_GT(body, 0u) << line;
    EXPECT_LT(body, large.size()) << line;
    EXPECT_GT(sent, body) << line;
    // One step of 1 s without progress, and the server's deadline checks; far from the
    // several seconds of the blocking sendfile().
    EXPECT_GE(micros, 900'000u) << line;
    EXPECT_LT(micros, 3'000'000u) << "MPM " << GetParam() << ": " << line;
}

INSTANTIATE_TEST_SUITE_P(Mpm, SendTimeoutTest, ::testing::ValuesIn(kMpms), mpm_test_name);

/// CPU seconds the master's children have used so far (utime + stime).
double children_cpu_seconds(pid_t master) {
    unsigned long long ticks = 0;
    for (const ProcInfo& child : children_of(master)) {
        ticks += child.cpu_ticks;
    }
    return double(ticks) / double(::sysconf(_SC_CLK_TCK));
}

class IdleAfterAFileTest : public ServerTest {};

TEST_P(IdleAfterAFileTest, AKeptAliveConnectionWaitsWithoutSpinning) {
    // A file body goes out with the socket made non-blocking under prefork and worker; it
    // must block again, or the wait for the next request spins on EAGAIN until the
    // keep-alive timeout.
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    ASSERT_TRUE(client.send(make_request("GET", "/big.bin"))) << client.error();
    const auto responses = client.read_responses(1);
    ASSERT_EQ(responses.size(), 1u) << client.error();
    EXPECT_EQ(responses[0].body, site_.big);
    const double before = children_cpu_seconds(server_->pid());
    std::this_thread::sleep_for(Millis(1500));
    const double idle = children_cpu_seconds(server_->pid()) - before;
    EXPECT_LT(idle, 0.5) << "MPM " << GetParam() << " used " << idle
                         << " s of CPU while its one connection waited";
    // And the connection is still served.
    ASSERT_TRUE(client.send(make_request("GET", "/hello.txt"))) << client.error();
    const auto next = client.read_responses(1);
    ASSERT_EQ(next.size(), 1u) << client.error();
    EXPECT_EQ(next[0].body, site_.text);
}

INSTANTIATE_TEST_SUITE_P(Mpm, IdleAfterAFileTest, ::testing::ValuesIn(kMpms), mpm_test_name);

// --- slowloris ------------------------------------------------------------------------------

constexpr int kSlowConnections = 1000;

/// Established TCP connections whose local end is `port` (IPv4 loopback), from /proc.
int established_to(std::uint16_t port) {
    std::ifstream table("/proc/net/tcp");
    std::string line;
    std::getline(table, line);  // header
    char wanted[8];
    std::snprintf(wanted, sizeof wanted, ":%04X", unsigned(port));
    int count = 0;
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state;
        fields >> slot >> local >> remote >> state;
        if (state == "01" && local.ends_with(wanted)) {
            ++count;
        }
    }
    return count;
}

/// slowhttptest in slowloris mode, stopped by its own pid.
class Slowloris {
public:
    Slowloris(std::uint16_t port, const fs::path& scratch) {
        const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
        const std::string connections = std::to_string(kSlowConnections);
        // 1000 connections opened at 500/s, a 24-byte header line on each every 5 s, for
        // at most 40 s (the test stops it sooner).
        std::vector<std::string> args = {"slowhttptest", "-H", "-c", connections, "-r",
                                         "500",          "-i", "5",  "-x",        "24",
                                         "-l",           "40", "-u", url};
        std::vector<char*> argv;
        for (std::string& arg : args) {
            argv.push_back(arg.data());
        }
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        const std::string log = (scratch / "slowhttptest.log").string();
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        if (posix_spawnp(&pid_, "slowhttptest", &actions, nullptr, argv.data(), environ) != 0) {
            pid_ = -1;
        }
        posix_spawn_file_actions_destroy(&actions);
    }
    ~Slowloris() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Slowloris(const Slowloris&) = delete;
    Slowloris& operator=(const Slowloris&) = delete;
    bool running() const { return pid_ > 0; }

private:
    pid_t pid_ = -1;
};

class SlowlorisTest : public ::testing::Test {
protected:
    SlowlorisTest() : site_(make_site(dir_.path())) {}
    void TearDown() override {
        if (HasFailure() && server_) {
            std::cerr << "---- trident output ----\n" << server_->output() << "---- end ----\n";
        }
    }
    TempDir dir_;
    Site site_;
    std::unique_ptr<TridentServer> server_;
};

TEST_F(SlowlorisTest, EventMpmDefaultsAnswerANormalRequestDuringTheAttack) {
    if (run_command({"sh", "-c", "command -v slowhttptest"}, dir_.path()).exit_code() != 0) {
        GTEST_SKIP() << "slowhttptest is not installed (make deps installs it)";
    }
    // 1000 client sockets plus the server's: more descriptors than a default soft limit.
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < 4096 && limit.rlim_max > limit.rlim_cur) {
        limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 8192);
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }

    ServerConfig config;
    config.mpm = "event";
    config.document_root = site_.root;
    config.start_servers = 3;  // the event MPM's defaults, as `make run` uses them
    config.keep_alive = "{enabled: true, timeout: 5s, max_requests: 100}";
    server_ = std::make_unique<TridentServer>(dir_.path(), config);
    ASSERT_TRUE(server_->start());

    Slowloris attack(server_->port(), dir_.path());
    ASSERT_TRUE(attack.running());
    // Wait (bounded) until the attack holds most of its connections open on the server.
    const auto give_up = Clock::now() + std::chrono::seconds(15);
    int held = 0;
    while (Clock::now() < give_up && (held = established_to(server_->port())) < 900) {
        std::this_thread::sleep_for(Millis(200));
    }
    ASSERT_GE(held, 900) << "the attack never got its connections open";
    std::this_thread::sleep_for(std::chrono::seconds(1));  // let the pool settle

    // Five normal requests on fresh connections while the attack holds its sockets.
    Millis slowest{0};
    for (int i = 0; i < 5; ++i) {
        const auto start = Clock::now();
        std::string error;
        const auto response = exchange(server_->port(), make_request("GET", "/hello.txt"), &error);
        const auto took = duration_cast<Millis>(Clock::now() - start);
        ASSERT_TRUE(response) << "request " << i << " during the attack: " << error;
        EXPECT_EQ(response->status, 200);
        EXPECT_EQ(response->body, site_.text);
        slowest = std::max(slowest, took);
    }
    held = established_to(server_->port());
    EXPECT_GE(held, 900) << "the attack's connections were not held during the requests";
    // A figure for the record, not an assertion: the machines running tests are noisy.
    std::cout << "slowloris: " << held << " slow connections held; slowest of 5 normal "
              << "requests took " << slowest.count() << " ms\n";
}

}  // namespace
}  // namespace trident::test
