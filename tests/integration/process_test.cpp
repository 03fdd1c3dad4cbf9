// The process model from outside: stop signals, child replacement and retirement, the pid
// file, the children's CPU scheduling policy, how a worker child's threads share accepting,
// the command line, refused modules, and a taken address.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "harness.hpp"

namespace trident::test {
namespace {

using Clock = std::chrono::steady_clock;

/// A temporary site, and a config for it, for tests that start trident themselves.
class WithSite {
protected:
    WithSite() : site_(make_site(dir_.path())) {}

    ServerConfig config_for(const std::string& mpm) const {
        ServerConfig config;
        config.mpm = mpm;
        config.document_root = site_.root;
        return config;
    }

    TempDir dir_;
    Site site_;
};

/// Polls until the master has exited by itself, for `timeout` at most; its wait status.
std::optional<int> wait_reaped(TridentServer& server, Millis timeout) {
    std::optional<int> status;
    eventually(
        [&] {
            status = server.try_reap();
            return status.has_value();
        },
        timeout);
    return status;
}

/// Polls until none of `processes` runs any more; returns the survivors.
std::vector<ProcInfo> wait_gone(const std::vector<ProcInfo>& processes, Millis timeout) {
    std::vector<ProcInfo> alive;
    eventually(
        [&] {
            alive.clear();
            for (const ProcInfo& process : processes) {
                if (still_running(process)) {
                    alive.push_back(process);
                }
            }
            return alive.empty();
        },
        timeout, Millis(20));
    return alive;
}

std::string pids(const std::vector<ProcInfo>& processes) {
    std::string text;
    for (const ProcInfo& process : processes) {
        text += (text.empty() ? "" : " ") + std::to_string(process.pid);
    }
    return text.empty() ? "none" : text;
}

bool serves(const TridentServer& server, const Site& site, std::string* error) {
    const auto response =
        exchange(server.port(), make_request("GET", "/hello.txt", "Connection: close\r\n"), error,
                 false, server.config().host);
    if (response && (response->status != 200 || response->body != site.text)) {
        *error = "unexpected response:\n" + response->head_text();
        return false;
    }
    return response.has_value();
}

// --- under every MPM ------------------------------------------------------------------------

class ProcessTest : public ::testing::TestWithParam<std::string>, protected WithSite {
protected:
    void TearDown() override {
        if (HasFailure() && server_) {
            std::cerr << "---- trident output (" << GetParam() << " MPM) ----\n"
                      << server_->output() << "---- end of trident output ----\n";
        }
    }

    /// Starts trident under this test's MPM; the test fails if it does not come up.
    TridentServer& start(ServerConfig config) {
        server_ = std::make_unique<TridentServer>(dir_.path(), std::move(config));
        EXPECT_TRUE(server_->start()) << "MPM " << GetParam();
        return *server_;
    }

    /// Stops with `sig`, with a keep-alive connection open, and checks that everything went.
    void check_clean_stop(int sig) {
        ServerConfig config = config_for(GetParam());
        config.start_servers = 2;
        TridentServer& server = start(config);
        ASSERT_TRUE(server.running());
        const auto children = server.wait_for_children(2);
        ASSERT_GE(children.size(), 2u) << "start_servers 2, children: " << pids(children);
        ASSERT_TRUE(fs::exists(server.pid_file()));
        EXPECT_EQ(read_file(server.pid_file()).substr(0, read_file(server.pid_file()).find('\n')),
                  std::to_string(server.pid()));

        RawClient idle;  // a connection a child is holding when the signal comes
        ASSERT_TRUE(idle.connect(server.port())) << idle.error();
        ASSERT_TRUE(idle.send(make_request("GET", "/hello.txt"))) << idle.error();
        ASSERT_TRUE(idle.read_response()) << idle.error();
        const auto everyone = children_of(server.pid());
        server.track(everyone);

        const auto signalled = Clock::now();
        const auto status = server.stop(sig);
        const auto took = std::chrono::duration_cast<Millis>(Clock::now() - signalled);
        ASSERT_TRUE(status) << strsignal(sig) << ": master did not exit within "
                            << kStopTimeout.count() << " ms";
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
            << strsignal(sig) << ": " << describe_exit(*status);
        std::cout << "[ " << GetParam() << " ] " << strsignal(sig) << ": master exited in "
                  << took.count() << " ms\n";
        EXPECT_FALSE(fs::exists(server.pid_file())) << "pid file left behind";
        const auto left = wait_gone(everyone, Millis(2000));
        EXPECT_TRUE(left.empty()) << "children left behind after the master exited: " << pids(left)
                                  << " (children were " << pids(everyone) << ")";
    }

    void expect_policies(ServerConfig config, int master, int children);

    std::unique_ptr<TridentServer> server_;
};

TEST_P(ProcessTest, SigtermStopsEverythingAndExitsZero) {
    check_clean_stop(SIGTERM);
}

TEST_P(ProcessTest, SigintStopsEverythingAndExitsZero) {
    check_clean_stop(SIGINT);
}

TEST_P(ProcessTest, SigwinchFinishesTheRequestInHandThenStops) {
    ServerConfig config = config_for(GetParam());
    config.start_servers = 2;
    TridentServer& server = start(config);
    ASSERT_TRUE(server.running());
    ASSERT_GE(server.wait_for_children(2).size(), 2u);

    RawClient idle;  // served once, then idle in keep-alive when the stop comes
    ASSERT_TRUE(idle.connect(server.port())) << idle.error();
    ASSERT_TRUE(idle.send(make_request("GET", "/hello.txt"))) << idle.error();
    ASSERT_TRUE(idle.read_response()) << idle.error();

    RawClient busy;  // half a request in flight when the signal comes
    ASSERT_TRUE(busy.connect(server.port())) << busy.error();
    ASSERT_TRUE(busy.send("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n")) << busy.error();
    std::this_thread::sleep_for(Millis(200));  // let a child pick it up
    server.track(children_of(server.pid()));

    ASSERT_EQ(::kill(server.pid(), SIGWINCH), 0);

    std::this_thread::sleep_for(Millis(300));
    ASSERT_TRUE(busy.send("\r\n")) << busy.error();
    const auto response = busy.read_response();
    ASSERT_TRUE(response) << "the request in flight was not answered: " << busy.error();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, site_.text);
    EXPECT_EQ(response->header("Connection").value_or(""), "close");
    EXPECT_TRUE(busy.wait_closed(Millis(3000)));

    // The idle connection was not cut by the stop (its client could have been sending right
    // then): its next request is answered, with Connection: close, and then it ends.
    ASSERT_TRUE(idle.send(make_request("GET", "/hello.txt"))) << idle.error();
    const auto next = idle.read_response();
    ASSERT_TRUE(next) << "the idle connection's next request was lost: " << idle.error();
    EXPECT_EQ(next->status, 200);
    EXPECT_EQ(next->header("Connection").value_or(""), "close");
    EXPECT_TRUE(idle.wait_closed(Millis(3000)));

    const std::optional<int> status = wait_reaped(server, Millis(5000));
    ASSERT_TRUE(status) << "master still running 5 s after the last request ended";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_exit(*status);
    EXPECT_FALSE(fs::exists(server.pid_file())) << "pid file left behind";
    std::cout << "[ " << GetParam() << " ] SIGWINCH: in-flight request answered, then exit 0\n";
}

TEST_P(ProcessTest, SigtermCutsAGracefulStopShort) {
    TridentServer& server = start(config_for(GetParam()));
    ASSERT_TRUE(server.running());
    ASSERT_GE(server.wait_for_children(2).size(), 2u);
    RawClient busy;  // holds the graceful stop open: its head never completes
    ASSERT_TRUE(busy.connect(server.port())) << busy.error();
    ASSERT_TRUE(busy.send("GET /hello.txt HTTP/1.1\r\nHost: loc")) << busy.error();
    std::this_thread::sleep_for(Millis(200));
    server.track(children_of(server.pid()));

    ASSERT_EQ(::kill(server.pid(), SIGWINCH), 0);
    std::this_thread::sleep_for(Millis(300));
    ASSERT_FALSE(server.try_reap()) << "graceful stop ended with a request still in flight";
    // The head timeout is 20 s; a master that ignored SIGTERM now would wait it out.
    const auto status = server.stop(SIGTERM, Millis(10000));
    ASSERT_TRUE(status) << "SIGTERM during a graceful stop was ignored";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_exit(*status);
    EXPECT_FALSE(fs::exists(server.pid_file()));
}

TEST_P(ProcessTest, AGracefulStopRefusesNewClientsAtOnce) {
    // Apache's graceful-stop: the ports close when the stop begins. Left listening until
    // the last child exits, they queued clients nobody accepted, reset at the end.
    TridentServer& server = start(config_for(GetParam()));
    ASSERT_TRUE(server.running());
    ASSERT_GE(server.wait_for_children(2).size(), 2u);
    RawClient busy;  // holds the stop open: its head is completed only at the end
    ASSERT_TRUE(busy.connect(server.port())) << busy.error();
    ASSERT_TRUE(busy.send("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n")) << busy.error();
    // Taken by a child before the stop: one still queued would be reset with the socket.
    ASSERT_TRUE(wait_accepted(server.port()));
    server.track(children_of(server.pid()));

    ASSERT_EQ(::kill(server.pid(), SIGWINCH), 0);
    // Refused; a client whose handshake met the very moment of the shutdown may be reset
    // instead, and the next one tries again.
    std::string refusal;
    EXPECT_TRUE(eventually(
        [&] {
            RawClient late;
            if (late.connect(server.port())) {
                return false;
            }
            refusal = late.error();
            return refusal.find("refused") != std::string::npos;
        },
        Millis(3000)))
        << "the port still takes clients while the stop waits for a request in flight: " << refusal;
    ASSERT_FALSE(server.try_reap()) << "the stop did not wait for the request in flight";

    // The connection taken before the stop is still served to its end (once every child
    // has seen the stop: then with Connection: close, and no keep-alive grace to wait out).
    std::this_thread::sleep_for(Millis(300));
    ASSERT_TRUE(busy.send("\r\n")) << busy.error();
    const auto response = busy.read_response();
    ASSERT_TRUE(response) << "the request in flight was lost: " << busy.error();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->header("Connection").value_or(""), "close");
    busy.close();
    const std::optional<int> status = wait_reaped(server, Millis(5000));
    ASSERT_TRUE(status) << "master still running 5 s after the last request ended";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_exit(*status);
    EXPECT_EQ(server.output().find("accept:"), std::string::npos)
        << "closing the ports made the children log accept errors:\n"
        << server.output();
}

TEST_P(ProcessTest, AnIdleClientDoesNotOutlastTheGracefulShutdownBound) {
    // timeouts.graceful_shutdown kills what is left at its bound. An idle keep-alive
    // client, given a grace for its next request, must not be what is left: the grace is
    // at most half the bound, so a stop with only an idle client ends on its own.
    ServerConfig config = config_for(GetParam());
    config.extra_yaml = "timeouts: {graceful_shutdown: 2s}\n";
    TridentServer& server = start(config);
    ASSERT_TRUE(server.running());
    ASSERT_GE(server.wait_for_children(2).size(), 2u);
    RawClient idle;
    ASSERT_TRUE(idle.connect(server.port())) << idle.error();
    ASSERT_TRUE(idle.send(make_request("GET", "/hello.txt"))) << idle.error();
    ASSERT_TRUE(idle.read_response()) << idle.error();
    server.track(children_of(server.pid()));

    ASSERT_EQ(::kill(server.pid(), SIGWINCH), 0);
    const std::optional<int> status = wait_reaped(server, Millis(10000));
    ASSERT_TRUE(status) << "master still running 10 s after a graceful stop";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_exit(*status);
    EXPECT_EQ(server.output().find("SIGKILL"), std::string::npos)
        << "the idle client held a child past the bound:\n"
        << server.output();
    EXPECT_TRUE(idle.wait_closed(Millis(3000)));
}

TEST_P(ProcessTest, ZeroStartServersIsClampedToOneChildWithAWarning) {
    ServerConfig config = config_for(GetParam());
    config.start_servers = 0;
    TridentServer& server = start(config);
    ASSERT_TRUE(server.running());
    EXPECT_GE(server.wait_for_children(1).size(), 1u) << "no child to serve requests";
    std::string error;
    EXPECT_TRUE(serves(server, site_, &error)) << error;
    EXPECT_NE(server.output().find("start_servers of 0"), std::string::npos)
        << "the clamp was not logged:\n"
        << server.output();
}

TEST_P(ProcessTest, KilledChildIsReplaced) {
    TridentServer& server = start(config_for(GetParam()));
    ASSERT_TRUE(server.running());
    const auto before = server.wait_for_children(2);
    ASSERT_GE(before.size(), 2u) << "children: " << pids(before);
    const ProcInfo victim = before.front();
    ASSERT_EQ(::kill(victim.pid, SIGKILL), 0);

    std::vector<ProcInfo> now;
    const bool replaced = eventually([&] {
        now = children_of(server.pid());
        server.track(now);
        std::size_t fresh = 0;
        for (const ProcInfo& child : now) {
            const bool known = std::any_of(before.begin(), before.end(), [&](const ProcInfo& b) {
                return b.pid == child.pid && b.start_time == child.start_time;
            });
            fresh += known ? 0 : 1;
        }
        return fresh > 0 && now.size() >= before.size() && !still_running(victim);
    });
    EXPECT_TRUE(replaced) << "killed child " << victim.pid << "; children before: " << pids(before)
                          << ", after 10 s: " << pids(now);
    for (int i = 0; i < 5; ++i) {
        std::string error;
        EXPECT_TRUE(serves(server, site_, &error)) << "request " << i + 1 << ": " << error;
    }
}

/// Whether `pid` has a SIGCHLD pending for the whole process (the master blocks it and
/// takes it with sigtimedwait()).
bool sigchld_pending(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.starts_with("ShdPnd:")) {
            const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
            return ((mask >> (SIGCHLD - 1)) & 1u) != 0;
        }
    }
    return false;
}

/// Whether `pid` stops (SIGSTOP) within the usual wait.
bool comes_to_a_stop(pid_t pid) {
    return eventually([&] {
        const auto info = read_proc(pid);
        return info && info->state == 'T';
    });
}

/// The master's line about the end of child `pid`, waited for until it says `how`; empty
/// if none came.
std::string child_end_line(const TridentServer& server, pid_t pid, const std::string& how) {
    const std::string said = "child pid " + std::to_string(pid) + " (slot ";
    std::string line;
    eventually([&] {
        const std::string output = server.output();
        const auto at = output.find(said);
        line = at == std::string::npos ? "" : output.substr(at, output.find('\n', at) - at);
        return line.find(how) != std::string::npos;
    });
    return line.find(how) != std::string::npos ? line : std::string();
}

TEST_P(ProcessTest, AChildThatCrashesJustBeforeARestartIsLogged) {
    TridentServer& server = start(config_for(GetParam()));
    ASSERT_TRUE(server.running());
    const auto children = server.wait_for_children(1);
    ASSERT_FALSE(children.empty());
    const ProcInfo victim = children.front();
    // The master, stopped, finds the child's SIGCHLD and the SIGUSR1 pending together when
    // it goes on; it takes the lower-numbered SIGUSR1 first. SIGKILL stands in for a crash
    // (a sanitizer build turns SIGSEGV into an abort, and it may leave a core file): it is
    // also what a stop sends, so the child's end is logged only if it is reaped as one of
    // the running generation's, before the restart.
    ASSERT_EQ(::kill(server.pid(), SIGSTOP), 0);
    const bool stopped = comes_to_a_stop(server.pid());
    ASSERT_EQ(::kill(victim.pid, SIGKILL), 0);
    // Not only the child's main thread: its SIGCHLD comes once its last thread has gone.
    const bool dead = eventually([&] { return sigchld_pending(server.pid()); });
    ASSERT_EQ(::kill(server.pid(), SIGUSR1), 0);
    ASSERT_EQ(::kill(server.pid(), SIGCONT), 0);
    ASSERT_TRUE(stopped) << "the master did not stop";
    ASSERT_TRUE(dead) << "no SIGCHLD reached the master for child " << victim.pid;
    const std::string line = child_end_line(server, victim.pid, "killed by signal 9");
    EXPECT_FALSE(line.empty()) << "the end of child " << victim.pid << " was not logged:\n"
                               << server.output();
    EXPECT_EQ(line.find("stopping)"), std::string::npos) << line;
    std::string error;
    EXPECT_TRUE(serves(server, site_, &error)) << error;
}

TEST_P(ProcessTest, AChildThatCrashesWhileItsGenerationFinishesIsLogged) {
    TridentServer& server = start(config_for(GetParam()));
    ASSERT_TRUE(server.running());
    const auto children = server.wait_for_children(1);
    ASSERT_FALSE(children.empty());
    const ProcInfo victim = children.front();
    // Stopped, the child cannot finish when the restart tells it to; continued, it meets
    // the SIGUSR2 that stands in for a crash (terminate, no core, untouched by sanitizers).
    ASSERT_EQ(::kill(victim.pid, SIGSTOP), 0);
    const bool stopped = comes_to_a_stop(victim.pid);
    ASSERT_EQ(::kill(server.pid(), SIGUSR1), 0);
    const bool restarted = eventually([&] {
        return server.output().find("; generation 1 (" + std::string(GetParam()) +
                                    " MPM) finishing") != std::string::npos;
    });
    ASSERT_EQ(::kill(victim.pid, SIGUSR2), 0);
    ASSERT_EQ(::kill(victim.pid, SIGCONT), 0);
    ASSERT_TRUE(stopped) << "child " << victim.pid << " did not stop";
    ASSERT_TRUE(restarted) << server.output();
    EXPECT_FALSE(
        child_end_line(server, victim.pid, ", generation 1, stopping) killed by signal 12").empty())
        << "the crash of child " << victim.pid << " was not logged:\n"
        << server.output();
}

TEST_P(ProcessTest, ChildRetiresAfterMaxConnectionsPerChild) {
    ServerConfig config = config_for(GetParam());
    config.start_servers = 1;
    config.max_connections_per_child = 3;
    TridentServer& server = start(config);
    ASSERT_TRUE(server.running());
    ASSERT_FALSE(server.wait_for_children(1).empty());

    // However the connections spread over children, one that served 3 must exit. Up to 30
    // sequential connections; stop once a retirement has been seen after at least 10.
    std::vector<ProcInfo> seen;
    auto retired = [&] {
        for (const ProcInfo& child : children_of(server.pid())) {
            if (std::none_of(seen.begin(), seen.end(), [&](const ProcInfo& s) {
                    return s.pid == child.pid && s.start_time == child.start_time;
                })) {
                seen.push_back(child);
            }
        }
        server.track(seen);
        return std::any_of(seen.begin(), seen.end(),
                           [](const ProcInfo& s) { return !still_running(s); });
    };
    int served = 0;
    for (int i = 0; i < 30 && !(i >= 10 && retired()); ++i) {
        retired();
        std::string error;
        EXPECT_TRUE(serves(server, site_, &error)) << "connection " << i + 1 << ": " << error;
        ++served;
    }
    bool done = retired();
    for (int i = 0; i < 100 && !done; ++i) {
        std::this_thread::sleep_for(Millis(50));
        done = retired();
    }
    EXPECT_TRUE(done) << "no child exited after " << served
                      << " connections with max_connections_per_child 3; children seen: "
                      << pids(seen);
    std::string error;
    EXPECT_TRUE(serves(server, site_, &error)) << "after the retirement: " << error;
    const auto status = server.stop(SIGTERM);
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_P(ProcessTest, FindsItsModulesWithoutModuleDir) {
    ServerConfig config = config_for(GetParam());
    config.write_module_dir = false;
    TridentServer& server = start(config);
    ASSERT_TRUE(server.running());
    std::string error;
    EXPECT_TRUE(serves(server, site_, &error)) << error;
}

/// Starts `config` and checks the policy of every thread: `master` for the master's,
/// `children` for those of each child. Looked at until it holds: spare maintenance may fork
/// a child at any time, which has not set its policy or started its threads yet.
void ProcessTest::expect_policies(ServerConfig config, int master, int children) {
    config.start_servers = 2;
    TridentServer& server = start(config);
    ASSERT_TRUE(server.running());
    const auto started = server.wait_for_children(2);
    ASSERT_GE(started.size(), 2u) << "children: " << pids(started);
    for (const auto& [tid, policy] : thread_policies(server.pid())) {
        EXPECT_EQ(policy, master) << "master thread " << tid;
    }
    // prefork's child is one thread; a worker or event child has its pool besides.
    const std::size_t min_threads = GetParam() == "prefork" ? 1 : 2;
    std::string seen;
    EXPECT_TRUE(eventually([&] {
        return children_scheduled(server.pid(), children, min_threads, seen);
    })) << "wanted children under "
        << children << "; thread:policy" << seen;
    std::string error;
    EXPECT_TRUE(serves(server, site_, &error)) << error;
    // Nothing refused: the master's probe and every child took what they asked for.
    EXPECT_EQ(server.output().find("batch is refused"), std::string::npos) << server.output();
    EXPECT_EQ(server.output().find("keeps its CPU scheduling policy"), std::string::npos)
        << server.output();
}

TEST_P(ProcessTest, ChildrenRunUnderBatchSchedulingByDefault) {
    if (::sched_getscheduler(0) != SCHED_OTHER) {
        GTEST_SKIP() << "the tests do not run under SCHED_OTHER";
    }
    expect_policies(config_for(GetParam()), SCHED_OTHER, SCHED_BATCH);
}

TEST_P(ProcessTest, InheritKeepsTheStartingPolicy) {
    if (::sched_getscheduler(0) != SCHED_OTHER) {
        GTEST_SKIP() << "the tests do not run under SCHED_OTHER";
    }
    ServerConfig config = config_for(GetParam());
    config.extra_yaml = "cpu_scheduling: inherit\n";
    expect_policies(config, SCHED_OTHER, SCHED_OTHER);
}

TEST_P(ProcessTest, ARefusedBatchIsSaidOnceAndTheChildrenServeOn) {
    ServerConfig config = config_for(GetParam());
    config.start_servers = 2;
    config.environment = batch_refusal();
    TridentServer& server = start(config);
    ASSERT_TRUE(server.running());
    ASSERT_GE(server.wait_for_children(2).size(), 2u);
    std::string error;
    EXPECT_TRUE(serves(server, site_, &error)) << error;
    const std::string output = server.output();
    const std::string refused =
        "cpu_scheduling: batch is refused (sched_setscheduler(SCHED_BATCH): Operation not "
        "permitted); the children keep their policy";
    EXPECT_NE(output.find(refused), std::string::npos) << output;
    EXPECT_EQ(output.find(refused), output.rfind(refused)) << "said more than once:\n" << output;
    // The master's probe kept the children from trying: none of them reports a refusal.
    EXPECT_EQ(output.find("keeps its CPU scheduling policy"), std::string::npos) << output;
    for (const ProcInfo& child : children_of(server.pid())) {
        EXPECT_EQ(::sched_getscheduler(child.pid), ::sched_getscheduler(0)) << child.pid;
    }
}

INSTANTIATE_TEST_SUITE_P(Mpm, ProcessTest, ::testing::ValuesIn(kMpms), mpm_test_name);

// --- the worker MPM -------------------------------------------------------------------------

class WorkerMpmTest : public ::testing::Test, protected WithSite {};

// A worker child's idle threads take turns on the listening sockets, two at a time. When
// the threads on them are taken by connections that stay open, the turn passes on to the
// others, so one child of six threads holds six idle keep-alive connections at once. (The
// test guards that hand-on; the stop path is tested on ListeningTurns itself.)
TEST_F(WorkerMpmTest, EveryThreadOfAChildTakesAConnectionWhileTheOthersHoldTheirs) {
    constexpr int kThreads = 6;
    ServerConfig config = config_for("worker");
    config.start_servers = 1;
    // One child and no more: max_request_workers is that child's threads.
    config.mpm_extra = "threads_per_child: 6, max_request_workers: 6, min_spare_threads: 1";
    config.keep_alive = "{enabled: true, timeout: 60s, max_requests: 100}";
    TridentServer server(dir_.path(), config);
    ASSERT_TRUE(server.start()) << server.output();
    ASSERT_EQ(server.wait_for_children(1).size(), 1u);

    std::vector<std::unique_ptr<RawClient>> held;
    for (int i = 0; i < kThreads; ++i) {
        RawClient& client = *held.emplace_back(std::make_unique<RawClient>());
        ASSERT_TRUE(client.connect(server.port())) << client.error();
        ASSERT_TRUE(client.send(make_request("GET", "/hello.txt"))) << client.error();
        const auto response = client.read_response();
        ASSERT_TRUE(response) << "connection " << i + 1 << " of " << kThreads
                              << ", the others held open: " << client.error() << "\n"
                              << server.output();
        EXPECT_EQ(response->status, 200);
    }
    // Each is still being served by its own thread: a second request on every one is answered.
    for (int i = 0; i < kThreads; ++i) {
        RawClient& client = *held[i];
        ASSERT_TRUE(client.send(make_request("GET", "/hello.txt"))) << client.error();
        const auto response = client.read_response();
        ASSERT_TRUE(response) << "second request on connection " << i + 1 << ": " << client.error();
        EXPECT_EQ(response->body, site_.text);
    }
    EXPECT_EQ(children_of(server.pid()).size(), 1u);
    const auto status = server.stop(SIGTERM);
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

// --- the command line -----------------------------------------------------------------------

class CommandLineTest : public ::testing::Test, protected WithSite {
protected:
    /// Writes `text` as a config file and runs `trident -t -f` on it.
    CommandResult test_config(const std::string& name, const std::string& text) {
        const fs::path file = dir_.path() / name;
        write_file(file, text);
        return run_command({TRIDENT_BINARY, "-t", "-f", file.string()}, dir_.path());
    }
};

TEST_F(CommandLineTest, APidFileTheDiskCutsShortIsAnErrorThatSaysWhy) {
    // A file size limit of 3 bytes cuts the pid and its newline short, as a full disk would.
    // The server's stderr goes through a pipe, which the limit does not touch.
    const fs::path pid_file = dir_.path() / "t.pid";
    const std::uint16_t port = free_port();
    ASSERT_NE(port, 0);
    const fs::path config = dir_.path() / "pid.yaml";
    write_file(config, render_config(config_for("prefork"), port, pid_file));
    const auto result = run_command(
        {"bash", "-c", "set -o pipefail; prlimit --fsize=3 -- \"$0\" -f \"$1\" 2>&1 | cat",
         TRIDENT_BINARY, config.string()},
        dir_.path());
    EXPECT_EQ(result.exit_code(), 1) << result.out << result.err;
    const std::string said = "cannot write pid file " + pid_file.string() + ": File too large";
    EXPECT_NE(result.out.find(said), std::string::npos) << result.out << result.err;
    EXPECT_FALSE(fs::exists(pid_file));
    EXPECT_FALSE(fs::exists(pid_file.string() + ".tmp"));
}

TEST_F(CommandLineTest, VersionFlags) {
    const auto version = run_command({TRIDENT_BINARY, "-v"}, dir_.path());
    EXPECT_TRUE(version.ok()) << describe_exit(version.wait_status) << version.err;
    EXPECT_NE(version.out.find("Trident/"), std::string::npos) << version.out;

    const auto build = run_command({TRIDENT_BINARY, "-V"}, dir_.path());
    EXPECT_TRUE(build.ok()) << describe_exit(build.wait_status) << build.err;
    EXPECT_NE(build.out.find("Trident/"), std::string::npos) << build.out;
    for (const std::string& mpm : kMpms) {
        EXPECT_NE(build.out.find(mpm), std::string::npos) << "MPM " << mpm << " not listed:\n"
                                                          << build.out;
    }
}

TEST_F(CommandLineTest, TestFlagAcceptsAGoodConfig) {
    const auto result =
        test_config("good.yaml", render_config(config_for("prefork"), 8080, dir_.path() / "t.pid"));
    EXPECT_EQ(result.exit_code(), 0) << result.err;
    EXPECT_NE((result.out + result.err).find("Syntax OK"), std::string::npos)
        << result.out << result.err;
}

TEST_F(CommandLineTest, TestFlagPrintsTheClampsAStartWouldLog) {
    // As `apache2 -t`: a value the start would raise or lower is reported before Syntax OK,
    // so a check before a start or a reload (ExecStartPre, -k graceful) shows it too.
    ServerConfig config = config_for("event");
    config.start_servers = 0;
    config.mpm_extra = "server_limit: 0";
    const auto result =
        test_config("clamped.yaml", render_config(config, 8080, dir_.path() / "t.pid"));
    EXPECT_EQ(result.exit_code(), 0) << result.err;
    EXPECT_NE(result.out.find("Syntax OK"), std::string::npos) << result.out;
    EXPECT_NE(result.err.find("trident: warning: server_limit of 0 not allowed, increasing to 1"),
              std::string::npos)
        << result.err;
    EXPECT_NE(result.err.find("trident: warning: start_servers of 0 not allowed, increasing to 1"),
              std::string::npos)
        << result.err;
}

TEST_F(CommandLineTest, TestFlagRejectsBrokenConfigsWithFileLineColumn) {
    const std::string root = site_.root.string();
    // {file name, text, line of the error}
    const std::vector<std::tuple<std::string, std::string, int>> cases = {
        {"misspelt.yaml",
         "mpm: prefork\nlisten: [\"127.0.0.1:8080\"]\ndocument_rot: \"" + root + "\"\n", 3},
        {"syntax.yaml", "mpm: prefork\nlisten: [\"127.0.0.1:8080\"\ndocument_root: x\n", 0},
        {"type.yaml",
         "mpm: prefork\nlisten: [\"127.0.0.1:8080\"]\ndocument_root: \"" + root +
             "\"\nkeep_alive: {enabled: maybe}\n",
         4},
        {"range.yaml",
         "mpm: prefork\nlisten: [\"127.0.0.1:8080\"]\ndocument_root: \"" + root +
             "\"\nprefork: {start_servers: -1}\n",
         4},
        {"size.yaml",
         "mpm: prefork\nlisten: [\"127.0.0.1:8080\"]\ndocument_root: \"" + root +
             "\"\nlimits: {request_body: 12 parsecs}\n",
         4},
    };
    for (const auto& [name, text, line] : cases) {
        SCOPED_TRACE(name);
        const auto result = test_config(name, text);
        EXPECT_EQ(result.exit_code(), 1) << describe_exit(result.wait_status) << "\n"
                                         << result.out << result.err;
        EXPECT_EQ(result.out.find("Syntax OK"), std::string::npos) << result.out;
        const std::string file = (dir_.path() / name).string();
        const std::string prefix = line > 0 ? file + ":" + std::to_string(line) + ":" : file + ":";
        EXPECT_TRUE(result.err.starts_with(prefix))
            << "want \"" << prefix << "COL: ...\", got: " << result.err;
        EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    }
    const auto misspelt = test_config("misspelt.yaml", std::get<1>(cases[0]));
    EXPECT_NE(misspelt.err.find("document_root"), std::string::npos)
        << "no suggestion of the nearest key: " << misspelt.err;
}

// --- refused starts -------------------------------------------------------------------------

/// Runs trident to its exit; expects status 1 and returns its output.
std::string expect_refused(TridentServer& server) {
    const auto status = server.run_to_exit();
    EXPECT_TRUE(status) << "trident kept running; output:\n" << server.output();
    if (status) {
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1)
            << describe_exit(*status) << "; output:\n"
            << server.output();
    }
    EXPECT_FALSE(fs::exists(server.pid_file())) << "pid file left by a refused start";
    return server.output();
}

/// The line of `text` holding every one of `words`, or "".
std::string line_with(const std::string& text, const std::vector<std::string>& words) {
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string line = text.substr(start, end - start);
        if (std::all_of(words.begin(), words.end(),
                        [&](const std::string& w) { return line.find(w) != std::string::npos; })) {
            return line;
        }
        start = end + 1;
    }
    return "";
}

struct BadModule {
    std::string fixture;  ///< folder under TRIDENT_TEST_MODULE_DIR
    std::string word;     ///< what the refusal must say
};

void PrintTo(const BadModule& module, std::ostream* out) {
    *out << module.fixture;
}

class BadModuleTest : public ::testing::TestWithParam<BadModule>, protected WithSite {};

TEST_P(BadModuleTest, IsRefusedAtStartWithAClearError) {
    const fs::path module_dir = fs::path(TRIDENT_TEST_MODULE_DIR) / GetParam().fixture;
    const fs::path module = module_dir / "mpm_prefork.so";
    ASSERT_TRUE(fs::exists(module)) << "fixture module not built: " << module;
    ServerConfig config = config_for("prefork");
    config.module_dir = module_dir;
    TridentServer server(dir_.path(), config);
    const std::string output = expect_refused(server);
    EXPECT_NE(line_with(output, {module.string(), GetParam().word}), "")
        << "no line naming " << module << " and saying \"" << GetParam().word << "\":\n"
        << output;
}

INSTANTIATE_TEST_SUITE_P(Fixture, BadModuleTest,
                         ::testing::Values(BadModule{"bad_abi", "ABI"},
                                           BadModule{"foreign_build", "build"},
                                           BadModule{"no_symbol", "trident_mpm_module"}),
                         [](const ::testing::TestParamInfo<BadModule>& info) {
                             return info.param.fixture;
                         });

using RefusedStartTest = CommandLineTest;

TEST_F(RefusedStartTest, MissingModuleListsWhatWasFound) {
    const fs::path empty = dir_.path() / "no-modules";
    fs::create_directories(empty);
    ServerConfig config = config_for("prefork");
    config.module_dir = empty;
    {
        TridentServer server(dir_.path(), config);
        const std::string output = expect_refused(server);
        EXPECT_NE(line_with(output, {"prefork", empty.string()}), "") << output;
    }
    // With decoys present, the message names what is there.
    const fs::path decoys = dir_.path() / "decoy-modules";
    write_file(decoys / "mpm_alpha.so", "");
    write_file(decoys / "mpm_beta.so", "");
    config.module_dir = decoys;
    TridentServer server(dir_.path(), config);
    const std::string output = expect_refused(server);
    EXPECT_NE(line_with(output, {"prefork", "alpha", "beta"}), "") << output;
}

TEST_F(RefusedStartTest, AddressInUse) {
    // Our own listening socket holds the port (no SO_REUSEPORT, so no sharing).
    const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(holder, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&address), length), 0);
    ASSERT_EQ(::listen(holder, 4), 0);
    ASSERT_EQ(::getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length), 0);
    const std::uint16_t port = ntohs(address.sin_port);

    ServerConfig config = config_for("prefork");
    config.port = port;
    TridentServer server(dir_.path(), config);
    const std::string output = expect_refused(server);
    ::close(holder);
    EXPECT_NE(line_with(output, {"127.0.0.1:" + std::to_string(port), "Address already in use"}),
              "")
        << output;
}

}  // namespace
}  // namespace trident::test
