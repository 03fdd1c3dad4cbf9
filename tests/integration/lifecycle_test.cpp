// The master's lifecycle from outside: graceful restarts (SIGUSR1) and restarts (SIGHUP)
// under load, an MPM switch on reload, a broken config on reload, listen changes, crashed
// children and crash loops, the systemd notification protocol, `-k` commands and stale pid
// files, and who the children run as.

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "trident/scoreboard.hpp"

namespace trident::test {
namespace {

using Clock = std::chrono::steady_clock;

// --- helpers -------------------------------------------------------------------------------

std::set<pid_t> pid_set(const std::vector<ProcInfo>& processes) {
    std::set<pid_t> out;
    for (const ProcInfo& process : processes) {
        out.insert(process.pid);
    }
    return out;
}

std::size_t count_of(const std::string& text, const std::string& word) {
    std::size_t count = 0;
    for (std::size_t at = text.find(word); at != std::string::npos;
         at = text.find(word, at + word.size())) {
        ++count;
    }
    return count;
}

/// The generation the scoreboard file says runs, and the generations of its live slots.
struct BoardView {
    std::uint32_t generation = 0;
    std::set<std::uint32_t> live_generations;
    std::set<pid_t> live_pids;
    /// Generations with a live process the master has not yet told to stop.
    std::set<std::uint32_t> not_quiescing;
};

std::optional<BoardView> read_board(const fs::path& file) {
    auto board = Scoreboard::attach(file);
    if (!board) {
        return std::nullopt;
    }
    BoardView view;
    view.generation = board->generation();
    for (std::uint32_t slot = 0; slot < board->server_limit(); ++slot) {
        const ProcessSlot& process = board->process(slot);
        if (process.pid() != 0) {
            view.live_generations.insert(process.generation());
            view.live_pids.insert(process.pid());
            if (!process.quiescing()) {
                view.not_quiescing.insert(process.generation());
            }
        }
    }
    return view;
}

bool serves(std::uint16_t port, const Site& site, std::string* error) {
    const auto response =
        exchange(port, make_request("GET", "/hello.txt", "Connection: close\r\n"), error);
    if (response && (response->status != 200 || response->body != site.text)) {
        *error = "unexpected response:\n" + response->head_text();
        return false;
    }
    return response.has_value();
}

/// A test that starts trident itself, with a scoreboard file to look into.
class LifecycleBase {
protected:
    LifecycleBase() : site_(make_site(dir_.path())) {}

    ServerConfig config_for(const std::string& mpm) const {
        ServerConfig config;
        config.mpm = mpm;
        config.document_root = site_.root;
        config.extra_yaml = "scoreboard_file: \"" + board_file().string() + "\"\n";
        return config;
    }
    fs::path board_file() const { return dir_.path() / "trident.scoreboard"; }

    /// Rewrites the running server's config file as `config` would render it.
    void rewrite_config(const ServerConfig& config) {
        write_file(server_->config_file(),
                   render_config(config, server_->port(), server_->pid_file()));
    }

    ::testing::AssertionResult start(const ServerConfig& config) {
        server_ = std::make_unique<TridentServer>(dir_.path(), config);
        return server_->start();
    }

    /// Waits until the scoreboard says `generation` runs and holds no older process.
    ::testing::AssertionResult wait_generation_alone(std::uint32_t generation,
                                                     Millis timeout = Millis(15000)) {
        std::optional<BoardView> view;
        const bool reached = eventually(
            [&] {
                view = read_board(board_file());
                return view && view->generation == generation &&
                       view->live_generations == std::set<std::uint32_t>{generation};
            },
            timeout);
        if (reached) {
            return ::testing::AssertionSuccess();
        }
        std::string live;
        for (std::uint32_t g : view ? view->live_generations : std::set<std::uint32_t>{}) {
            live += " " + std::to_string(g);
        }
        return ::testing::AssertionFailure()
               << "scoreboard: generation " << (view ? view->generation : 0)
               << ", live processes of generations" << (live.empty() ? " none" : live)
               << "; wanted generation " << generation << " alone";
    }

    void dump_output_on_failure(const std::string& what) {
        if (::testing::Test::HasFailure() && server_) {
            std::cerr << "---- trident output (" << what << ") ----\n"
                      << server_->output() << "---- end of trident output ----\n";
        }
    }

    TempDir dir_;
    Site site_;
    std::unique_ptr<TridentServer> server_;
};

// --- under every MPM -----------------------------------------------------------------------

class LifecycleTest : public ::testing::TestWithParam<std::string>, protected LifecycleBase {
protected:
    void TearDown() override { dump_output_on_failure(GetParam() + " MPM"); }
};

TEST_P(LifecycleTest, TenGracefulRestartsUnderLoadLoseNoRequest) {
    ASSERT_TRUE(start(config_for(GetParam())));
    const auto first = server_->wait_for_children(2);
    ASSERT_GE(first.size(), 2u);

    Load load(server_->port(), "/hello.txt", site_.text, 4);
    for (std::size_t restart = 1; restart <= 10; ++restart) {
        std::this_thread::sleep_for(Millis(1000));
        ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
        // Two signals of one kind pending at once are one (POSIX): on a machine slow enough
        // to keep the master off the CPU for a second, the next one must wait for this one.
        ASSERT_TRUE(eventually([&] {
            return count_of(server_->output(), "graceful restart requested") == restart;
        })) << "restart "
            << restart << " never began";
    }
    std::this_thread::sleep_for(Millis(1000));  // load runs on over the last restart
    const LoadResult result = load.finish();

    std::cout << "[ " << GetParam() << " ] 10 graceful restarts under load: " << result.describe()
              << "\n";
    EXPECT_EQ(result.failed, 0u) << result.describe();
    // Nor did a restart close a connection between requests: the old generation answers
    // each one's next request with Connection: close.
    EXPECT_EQ(result.retried, 0u) << result.describe();
    EXPECT_GT(result.ok, 100u) << "the load hardly ran: " << result.describe();
    EXPECT_TRUE(wait_generation_alone(11));
    EXPECT_EQ(count_of(server_->output(), "graceful restart requested"), 10u);
    // Every child of generation 1 is gone, and no process outside the scoreboard is left.
    for (const ProcInfo& child : first) {
        EXPECT_FALSE(still_running(child)) << "generation 1 child " << child.pid << " leaked";
    }
    std::set<pid_t> on_board;
    std::set<pid_t> children;
    EXPECT_TRUE(eventually([&] {
        const auto view = read_board(board_file());
        on_board = view ? view->live_pids : std::set<pid_t>{};
        children = pid_set(children_of(server_->pid()));
        return on_board == children;
    })) << "children "
        << children.size() << ", scoreboard processes " << on_board.size();
    std::string error;
    EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
}

TEST_P(LifecycleTest, AGracefulRestartAnswersTheNextRequestOfAnIdleConnection) {
    // A graceful restart does not cut an idle keep-alive connection of the old generation:
    // its client may be sending the next request at that very moment, and would lose it.
    // That request is answered, with Connection: close. A connection that sends nothing
    // ends within a few seconds (the drain's grace for idle connections, 5 s at most), not
    // at its long keep-alive timeout, and the old generation with it.
    ServerConfig config = config_for(GetParam());
    config.keep_alive = "{enabled: true, timeout: 60s, max_requests: 100}";
    ASSERT_TRUE(start(config));
    ASSERT_FALSE(server_->wait_for_children(1).empty());
    const std::string request = make_request("GET", "/hello.txt");
    RawClient speaks;  // sends its next request after the restart
    RawClient silent;  // sends nothing more
    for (RawClient* client : {&speaks, &silent}) {
        ASSERT_TRUE(client->connect(server_->port())) << client->error();
        ASSERT_TRUE(client->send(request)) << client->error();
        const auto first = client->read_response();
        ASSERT_TRUE(first) << client->error();
        ASSERT_EQ(first->header("Connection"), std::optional<std::string>("keep-alive"));
    }
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    // The master marks each old child quiescing as it signals it.
    ASSERT_TRUE(eventually([&] {
        const auto view = read_board(board_file());
        return view && view->generation == 2 && !view->not_quiescing.contains(1);
    })) << "the old generation was never told to stop";
    // Time for every old child to see the stop: they used to close idle connections
    // within a second of it. The grace they give now is 5 s (4 s at least in a blocking
    // wait, which counts it from its last look before the stop).
    std::this_thread::sleep_for(Millis(1500));

    ASSERT_TRUE(speaks.send(request)) << speaks.error();
    const auto second = speaks.read_response();
    ASSERT_TRUE(second) << "the idle connection's next request was lost: " << speaks.error();
    EXPECT_EQ(second->status, 200);
    EXPECT_EQ(second->body, site_.text);
    EXPECT_EQ(second->header("Connection"), std::optional<std::string>("close"));
    EXPECT_TRUE(speaks.wait_closed()) << speaks.error();

    EXPECT_TRUE(silent.wait_closed(Millis(15000)))
        << "an idle connection kept the old generation for its whole keep-alive timeout";
    EXPECT_TRUE(wait_generation_alone(2));
    std::string error;
    EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
}

TEST_P(LifecycleTest, AnErrorLogARestartCannotOpenIsSaidOnStderr) {
    // The file is what failed (its folder removed): the master's stderr is the terminal or
    // the journal. The restart goes on, its error log where it was.
    const fs::path logs = dir_.path() / "logs";
    fs::create_directories(logs);
    ServerConfig config = config_for(GetParam());
    config.error_log = "{path: \"" + (logs / "error.log").string() + "\", level: info}";
    ASSERT_TRUE(start(config));
    ASSERT_GE(server_->wait_for_children(1).size(), 1u);
    fs::remove_all(logs);
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    const std::string said = "trident: cannot open error log " + (logs / "error.log").string() +
                             ": No such file or directory; the error log goes on where it went";
    EXPECT_TRUE(eventually([&] { return server_->output().find(said) != std::string::npos; }))
        << server_->output();
    EXPECT_TRUE(wait_generation_alone(2));

    // A restart that fails says why there too.
    write_file(server_->config_file(), read_file(server_->config_file()) + "listen: [\n");
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    EXPECT_TRUE(eventually([&] {
        return server_->output().find(
                   "trident: restart failed, generation 2 keeps serving with "
                   "the old configuration: ") != std::string::npos;
    })) << server_->output();
    std::string error;
    EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
}

TEST_P(LifecycleTest, BrokenConfigOnReloadKeepsServing) {
    ServerConfig config = config_for(GetParam());
    ASSERT_TRUE(start(config));
    ASSERT_GE(server_->wait_for_children(2).size(), 2u);
    std::this_thread::sleep_for(Millis(1500));  // let spare maintenance settle the pool
    const auto before = pid_set(children_of(server_->pid()));

    // A YAML error, then a valid file that fails validation (unknown MPM module).
    write_file(server_->config_file(), read_file(server_->config_file()) + "listen: [\n");
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    EXPECT_TRUE(eventually([&] { return count_of(server_->output(), "restart failed") == 1; }));
    ServerConfig unknown = config;
    unknown.mpm = "nonesuch";
    rewrite_config(unknown);
    ASSERT_EQ(::kill(server_->pid(), SIGHUP), 0);
    EXPECT_TRUE(eventually([&] { return count_of(server_->output(), "restart failed") == 2; }));

    const std::string output = server_->output();
    EXPECT_NE(output.find("YAML syntax error"), std::string::npos) << output;
    EXPECT_NE(output.find("nonesuch"), std::string::npos) << output;
    EXPECT_EQ(pid_set(children_of(server_->pid())), before) << "children changed";
    const auto view = read_board(board_file());
    ASSERT_TRUE(view);
    EXPECT_EQ(view->generation, 1u);
    std::string error;
    EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
}

TEST_P(LifecycleTest, SighupReplacesEveryChildAndKeepsTheSocket) {
    ASSERT_TRUE(start(config_for(GetParam())));
    const auto before = server_->wait_for_children(2);
    ASSERT_GE(before.size(), 2u);
    const auto master = read_proc(server_->pid());
    ASSERT_TRUE(master);
    ASSERT_EQ(::kill(server_->pid(), SIGHUP), 0);
    EXPECT_TRUE(wait_generation_alone(2));
    for (const ProcInfo& child : before) {
        EXPECT_FALSE(still_running(child)) << "old child " << child.pid << " survived SIGHUP";
    }
    std::string error;
    EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
    EXPECT_TRUE(still_running(*master)) << "the master itself must not restart";
}

TEST_P(LifecycleTest, KilledChildrenUnderLoadAreReplacedAndLogged) {
    ServerConfig config = config_for(GetParam());
    config.start_servers = 3;
    ASSERT_TRUE(start(config));
    const auto before = server_->wait_for_children(3);
    ASSERT_GE(before.size(), 3u);

    constexpr int kClients = 4;
    Load load(server_->port(), "/hello.txt", site_.text, kClients);
    std::this_thread::sleep_for(Millis(500));
    ASSERT_EQ(::kill(before[0].pid, SIGKILL), 0);
    std::this_thread::sleep_for(Millis(1500));  // a replacement, then more load on it
    ASSERT_EQ(::kill(before[1].pid, SIGKILL), 0);
    std::this_thread::sleep_for(Millis(1500));
    const LoadResult result = load.finish();
    std::cout << "[ " << GetParam() << " ] two children killed under load: " << result.describe()
              << "\n";
    // Only the killed children's connections may fail: at most every client's connection
    // in hand, twice.
    EXPECT_LE(result.failed, std::uint64_t(2 * kClients)) << result.describe();
    EXPECT_GT(result.ok, 50u) << result.describe();

    const std::string output = server_->output();
    for (int i = 0; i < 2; ++i) {
        const std::string pid = "child pid " + std::to_string(before[i].pid);
        const auto at = output.find(pid);
        ASSERT_NE(at, std::string::npos) << "death of " << pid << " not logged:\n" << output;
        const std::string line = output.substr(at, output.find('\n', at) - at);
        EXPECT_NE(line.find("generation 1"), std::string::npos) << line;
        EXPECT_NE(line.find("signal 9"), std::string::npos) << line;
    }
    EXPECT_TRUE(eventually([&] { return children_of(server_->pid()).size() >= 3; }));
    std::string error;
    EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
}

TEST_P(LifecycleTest, CrashLoopBacksOffThenRecovers) {
    const fs::path crash_file = dir_.path() / "crash-children";
    ::setenv("TRIDENT_TEST_CRASH_CHILD_FILE", crash_file.c_str(), 1);
    const bool started = start(config_for(GetParam()));
    ::unsetenv("TRIDENT_TEST_CRASH_CHILD_FILE");
    ASSERT_TRUE(started);
    const auto before = server_->wait_for_children(2);
    ASSERT_GE(before.size(), 2u);

    // From now on every new child dies of SIGSEGV as it starts; kill the healthy ones.
    write_file(crash_file, "");
    for (const ProcInfo& child : before) {
        ::kill(child.pid, SIGKILL);
    }
    EXPECT_TRUE(eventually([&] {
        return server_->output().find("keep dying at start-up") != std::string::npos;
    })) << "no crash loop noticed";
    const auto noticed = std::chrono::steady_clock::now();
    // Probes go on: at least one more child is tried (and dies) after the loop is noticed.
    // Bounded generously, as a loaded machine may run the one-second ticks late.
    EXPECT_TRUE(
        eventually([&] { return count_of(server_->output(), "signal 11") >= 3; }, Millis(15000)))
        << "no probe after the crash loop was noticed";
    std::this_thread::sleep_until(
        std::max(std::chrono::steady_clock::now(), noticed + Millis(4000)));
    const std::string looping = server_->output();
    const std::size_t crashes = count_of(looping, "signal 11");
    std::cout << "[ " << GetParam() << " ] children that died at start-up: " << crashes << "\n";
    // A hot loop forks hundreds a second; the backoff allows a probe per 1, 2, 4 ... s.
    EXPECT_LE(crashes, 12u) << looping;
    EXPECT_EQ(count_of(looping, "keep dying at start-up"), 1u) << "logged more than once";

    fs::remove(crash_file);
    EXPECT_TRUE(eventually(
        [&] { return server_->output().find("start normally again") != std::string::npos; },
        Millis(25000)))
        << "the backoff never ended";
    std::string error;
    EXPECT_TRUE(eventually([&] { return serves(server_->port(), site_, &error); })) << error;
    EXPECT_TRUE(server_->running());
}

INSTANTIATE_TEST_SUITE_P(Mpm, LifecycleTest, ::testing::ValuesIn(kMpms), mpm_test_name);

// --- the MPMs that accept through ListenerSet --------------------------------------------------

class ListenerSetFaultTest : public LifecycleTest {};

// A child that cannot watch the listening sockets (the kernel's watch limit is reached) says
// why and exits with a failure, and the master backs off as in a crash loop instead of
// forking replacements as fast as they die.
TEST_P(ListenerSetFaultTest, ChildrenThatCannotWatchTheSocketsSayWhyAndTheMasterBacksOff) {
    ServerConfig config = config_for(GetParam());
    config.environment = epoll_fault("accept:1+");
    ASSERT_TRUE(start(config));
    EXPECT_TRUE(eventually([&] {
        return server_->output().find("keep dying at start-up") != std::string::npos;
    })) << "no crash loop noticed";
    EXPECT_NE(server_->output().find("cannot wait for connections: No space left on device"),
              std::string::npos);
    std::this_thread::sleep_for(Millis(3000));
    const std::size_t failures = count_of(server_->output(), "exited with status 1");
    std::cout << "[ " << GetParam() << " ] children that exited at start-up: " << failures << "\n";
    // A hot loop forks hundreds a second; the backoff allows a probe per 1, 2, 4 ... s.
    EXPECT_LE(failures, 12u) << server_->output();
    const auto status = server_->stop(SIGTERM);
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

INSTANTIATE_TEST_SUITE_P(Mpm, ListenerSetFaultTest, ::testing::Values("prefork", "worker"),
                         mpm_test_name);

// --- once -----------------------------------------------------------------------------------

class ReloadTest : public ::testing::Test, protected LifecycleBase {
protected:
    void TearDown() override { dump_output_on_failure("reload"); }
};

TEST_F(ReloadTest, MpmSwitchesUnderLoadLoseNoRequest) {
    ASSERT_TRUE(start(config_for("event")));
    ASSERT_GE(server_->wait_for_children(2).size(), 2u);
    Load load(server_->port(), "/hello.txt", site_.text, 4);
    std::uint32_t generation = 1;
    for (const std::string mpm : {"prefork", "worker", "event"}) {
        std::this_thread::sleep_for(Millis(1000));
        rewrite_config(config_for(mpm));
        ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
        ++generation;
        const std::string serving =
            "generation " + std::to_string(generation) + " (" + mpm + " MPM) serving";
        EXPECT_TRUE(eventually([&] {
            return server_->output().find(serving) != std::string::npos;
        })) << "never saw \""
            << serving << "\"";
        // The status page names the MPM that serves now, not the one the server started with.
        const std::string status_url =
            "http://127.0.0.1:" + std::to_string(server_->port()) + "/server-status?auto";
        std::string said;
        EXPECT_TRUE(eventually([&] {
            said = run_curl({}, status_url, dir_.path()).body;
            return said.find("ServerMPM: " + mpm + "\n") != std::string::npos;
        })) << "generation "
            << generation << ":\n"
            << said;
    }
    std::this_thread::sleep_for(Millis(1000));
    const LoadResult result = load.finish();
    std::cout << "[ reload ] event -> prefork -> worker -> event under load: " << result.describe()
              << "\n";
    EXPECT_EQ(result.failed, 0u) << result.describe();
    EXPECT_EQ(result.retried, 0u) << result.describe();
    EXPECT_GT(result.ok, 50u) << result.describe();
    EXPECT_TRUE(wait_generation_alone(4));
    const std::string output = server_->output();
    for (const std::string finished :
         {"generation 1 (event MPM) has finished", "generation 2 (prefork MPM) has finished",
          "generation 3 (worker MPM) has finished"}) {
        EXPECT_NE(output.find(finished), std::string::npos) << "missing: " << finished;
    }
}

TEST_F(ReloadTest, CpuSchedulingChangesWithTheNextGeneration) {
    if (::sched_getscheduler(0) != SCHED_OTHER) {
        GTEST_SKIP() << "the tests do not run under SCHED_OTHER";
    }
    ASSERT_TRUE(start(config_for("event")));
    ASSERT_GE(server_->wait_for_children(2).size(), 2u);
    std::string seen;
    EXPECT_TRUE(eventually([&] {
        return children_scheduled(server_->pid(), SCHED_BATCH, 2, seen);
    })) << "thread:policy"
        << seen;
    ServerConfig config = config_for("event");
    config.extra_yaml += "cpu_scheduling: inherit\n";
    rewrite_config(config);
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    ASSERT_TRUE(wait_generation_alone(2));
    EXPECT_TRUE(eventually([&] {
        return children_scheduled(server_->pid(), SCHED_OTHER, 2, seen);
    })) << "thread:policy"
        << seen;
    std::string error;
    EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
}

/// The inode of the socket listening on 127.0.0.1:`port` (/proc/net/tcp), or 0: the same
/// inode before and after a reload means the very same socket, never closed and re-bound.
unsigned long listening_inode(std::uint16_t port) {
    const auto socket = listening_socket(port);
    return socket ? socket->inode : 0;
}

TEST_F(ReloadTest, ListenChangesBindNewAndCloseRemovedSockets) {
    ASSERT_TRUE(start(config_for("prefork")));
    ASSERT_GE(server_->wait_for_children(2).size(), 2u);
    const std::uint16_t first = server_->port();
    const std::uint16_t second = free_port();
    ASSERT_NE(second, 0);
    auto listen_on = [&](const std::string& ports) {
        std::string text = read_file(server_->config_file());
        const auto at = text.find("listen:");
        text.replace(at, text.find('\n', at) - at, "listen: [" + ports + "]");
        write_file(server_->config_file(), text);
    };
    const std::string a = "\"127.0.0.1:" + std::to_string(first) + "\"";
    const std::string b = "\"127.0.0.1:" + std::to_string(second) + "\"";

    const unsigned long first_socket = listening_inode(first);
    ASSERT_NE(first_socket, 0u) << "no listening socket on port " << first;
    RawClient held;  // opened before the reload, its request sent after it
    ASSERT_TRUE(held.connect(first)) << held.error();

    listen_on(a + ", " + b);
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    std::string error;
    EXPECT_TRUE(eventually([&] { return serves(second, site_, &error); }))
        << "added socket: " << error;
    EXPECT_TRUE(serves(first, site_, &error)) << "kept socket: " << error;
    // Accepted by a generation 1 child before the reload: still answered, with a close.
    ASSERT_TRUE(held.send(make_request("GET", "/hello.txt")));
    const auto response = held.read_response();
    ASSERT_TRUE(response) << held.error();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, site_.text);
    ASSERT_TRUE(wait_generation_alone(2));
    EXPECT_EQ(listening_inode(first), first_socket) << "the kept socket was re-bound";

    RawClient busy;  // keeps a generation 2 child alive: half a request when the reload comes
    ASSERT_TRUE(busy.connect(first)) << busy.error();
    ASSERT_TRUE(busy.send("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n")) << busy.error();
    // Taken by a child before the socket closes: one still queued would be reset with it.
    ASSERT_TRUE(wait_accepted(first));
    listen_on(b);
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    // The removed port refuses at once, though the old child holding `busy` has a copy.
    EXPECT_TRUE(eventually(
        [&] {
            RawClient probe;
            return !probe.connect(first);
        },
        Millis(3000)))
        << "port " << first << " still accepts after it was removed";
    ASSERT_TRUE(busy.send("\r\n")) << busy.error();
    const auto last = busy.read_response();
    ASSERT_TRUE(last) << "the request in flight on the removed port was lost: " << busy.error();
    EXPECT_EQ(last->status, 200);
    ASSERT_TRUE(wait_generation_alone(3));
    EXPECT_TRUE(serves(second, site_, &error)) << error;
    EXPECT_NE(server_->output().find("no longer listening on 127.0.0.1:" + std::to_string(first)),
              std::string::npos);
}

// --- systemd notifications -----------------------------------------------------------------

/// A unix datagram socket standing in for systemd's notification socket.
class NotifySocket {
public:
    explicit NotifySocket(const fs::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
        bound_ =
            fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    }
    ~NotifySocket() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    bool bound() const { return bound_; }

    /// Collects datagrams until one contains `word` or `timeout` passes; true if seen.
    bool wait_for(const std::string& word, Millis timeout = Millis(10000)) {
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            for (const std::string& message : messages_) {
                if (message.find(word) != std::string::npos) {
                    return true;
                }
            }
            const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
            if (left.count() <= 0) {
                return false;
            }
            pollfd pfd{fd_, POLLIN, 0};
            if (::poll(&pfd, 1, int(left.count())) > 0) {
                char buffer[4096];
                const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
                if (n > 0) {
                    messages_.emplace_back(buffer, std::size_t(n));
                }
            }
        }
    }
    const std::vector<std::string>& messages() const { return messages_; }
    std::string all() const {
        std::string text;
        for (const std::string& message : messages_) {
            text += "[" + message + "]\n";
        }
        return text;
    }

private:
    fs::path path_;
    int fd_ = -1;
    bool bound_ = false;
    std::vector<std::string> messages_;
};

TEST_F(ReloadTest, NotifiesSystemdOfReadyReloadingStatusAndStopping) {
    NotifySocket notify(dir_.path() / "notify.sock");
    ASSERT_TRUE(notify.bound());
    ::setenv("NOTIFY_SOCKET", (dir_.path() / "notify.sock").c_str(), 1);
    const bool started = start(config_for("event"));
    ::unsetenv("NOTIFY_SOCKET");
    ASSERT_TRUE(started);

    EXPECT_TRUE(notify.wait_for("READY=1")) << notify.all();
    EXPECT_NE(notify.messages().front().find("STATUS=Total requests: "), std::string::npos)
        << notify.all();
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    EXPECT_TRUE(notify.wait_for("RELOADING=1")) << notify.all();
    const auto reloading = std::find_if(
        notify.messages().begin(), notify.messages().end(),
        [](const std::string& m) { return m.find("RELOADING=1") != std::string::npos; });
    ASSERT_NE(reloading, notify.messages().end());
    EXPECT_NE(reloading->find("MONOTONIC_USEC="), std::string::npos) << *reloading;
    EXPECT_TRUE(notify.wait_for("Generation: 2")) << notify.all();
    const auto ready_again =
        std::count_if(notify.messages().begin(), notify.messages().end(),
                      [](const std::string& m) { return m.find("READY=1") != std::string::npos; });
    EXPECT_EQ(ready_again, 2) << notify.all();

    std::string error;
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
    }
    // The periodic STATUS line alone (no READY) counts the requests.
    EXPECT_TRUE(notify.wait_for("Total requests: 3;")) << notify.all();
    const auto status = server_->stop(SIGTERM);
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    EXPECT_TRUE(notify.wait_for("STOPPING=1", Millis(2000))) << notify.all();
}

/// Whether process `pid` has a file whose name contains `name` mapped.
bool maps_library(pid_t pid, std::string_view name) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find(name) != std::string::npos) {
            return true;
        }
    }
    return false;
}

TEST_F(ReloadTest, LoadsLibsystemdOnlyForSystemd) {
    ::unsetenv("NOTIFY_SOCKET");
    ASSERT_TRUE(start(config_for("event")));
    std::string error;
    ASSERT_TRUE(serves(server_->port(), site_, &error)) << error;
    EXPECT_FALSE(maps_library(server_->pid(), "libsystemd.so"));
    server_->stop(SIGTERM);

    NotifySocket notify(dir_.path() / "notify.sock");
    ASSERT_TRUE(notify.bound());
    ::setenv("NOTIFY_SOCKET", (dir_.path() / "notify.sock").c_str(), 1);
    const bool started = start(config_for("event"));
    ::unsetenv("NOTIFY_SOCKET");
    ASSERT_TRUE(started);
    EXPECT_TRUE(notify.wait_for("READY=1")) << notify.all();
    EXPECT_TRUE(maps_library(server_->pid(), "libsystemd.so"));
}

// --- the -k commands and the pid file -------------------------------------------------------

class ControlTest : public ::testing::Test, protected LifecycleBase {
protected:
    void TearDown() override { dump_output_on_failure("-k"); }

    CommandResult k(const std::string& command) {
        return run_command({TRIDENT_BINARY, "-f", server_->config_file().string(), "-k", command},
                           dir_.path());
    }
};

TEST_F(ControlTest, CommandsSignalTheMasterThroughThePidFile) {
    ASSERT_TRUE(start(config_for("prefork")));
    ASSERT_GE(server_->wait_for_children(2).size(), 2u);

    const auto again = k("start");
    EXPECT_EQ(again.exit_code(), 1) << again.out << again.err;
    EXPECT_NE(again.err.find("already running (pid " + std::to_string(server_->pid())),
              std::string::npos)
        << again.err;
    // With the error log in a file, the refusal reaches the terminal too.
    std::string text = read_file(server_->config_file());
    const std::string to_stderr = "error_log: {path: stderr";
    ASSERT_NE(text.find(to_stderr), std::string::npos) << text;
    text.replace(text.find(to_stderr), to_stderr.size(),
                 "error_log: {path: \"" + (dir_.path() / "second.log").string() + "\"");
    const fs::path second = dir_.path() / "second.yaml";
    write_file(second, text);
    const auto logged =
        run_command({TRIDENT_BINARY, "-f", second.string(), "-k", "start"}, dir_.path());
    EXPECT_EQ(logged.exit_code(), 1) << logged.out << logged.err;
    EXPECT_NE(logged.err.find("trident: already running (pid "), std::string::npos) << logged.err;

    const auto graceful = k("graceful");
    EXPECT_EQ(graceful.exit_code(), 0) << graceful.out << graceful.err;
    EXPECT_TRUE(wait_generation_alone(2));
    const auto restart = k("restart");
    EXPECT_EQ(restart.exit_code(), 0) << restart.out << restart.err;
    EXPECT_TRUE(wait_generation_alone(3));

    // A broken config is tested first and never signalled in.
    const std::string good = read_file(server_->config_file());
    write_file(server_->config_file(), good + "keep_alive: {enabled: maybe}\n");
    for (const std::string command : {"graceful", "restart"}) {
        const auto refused = k(command);
        EXPECT_EQ(refused.exit_code(), 1) << command << ": " << refused.out << refused.err;
        EXPECT_NE(refused.err.find("not signalling"), std::string::npos) << refused.err;
    }
    std::this_thread::sleep_for(Millis(300));
    EXPECT_EQ(read_board(board_file()).value_or(BoardView{}).generation, 3u);
    write_file(server_->config_file(), good);

    const auto stop = k("graceful-stop");
    EXPECT_EQ(stop.exit_code(), 0) << stop.out << stop.err;
    std::optional<int> status;
    EXPECT_TRUE(eventually([&] { return (status = server_->try_reap()).has_value(); }));
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    EXPECT_NE(server_->output().find("caught SIGWINCH"), std::string::npos);

    const auto gone = k("stop");
    EXPECT_EQ(gone.exit_code(), 1);
    EXPECT_NE(gone.err.find("not running"), std::string::npos) << gone.err;
}

TEST_F(ControlTest, StalePidFilesAreRecognised) {
    ASSERT_TRUE(start(config_for("prefork")));  // for its config file; stopped at once
    const auto stopped = server_->stop(SIGTERM);
    ASSERT_TRUE(stopped && WIFEXITED(*stopped));

    // A dead pid: a child of ours, already reaped.
    const pid_t dead = ::fork();
    if (dead == 0) {
        ::_exit(0);
    }
    ASSERT_GT(dead, 0);
    ::waitpid(dead, nullptr, 0);
    write_file(server_->pid_file(), std::to_string(dead) + "\n");
    auto result = k("stop");
    EXPECT_EQ(result.exit_code(), 1);
    EXPECT_NE(result.err.find("not running"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("stale"), std::string::npos) << result.err;

    // A live process that is not trident: this test. It must not be signalled.
    write_file(server_->pid_file(), std::to_string(::getpid()) + "\n");
    for (const std::string command : {"stop", "graceful", "graceful-stop"}) {
        result = k(command);
        EXPECT_EQ(result.exit_code(), 1) << command;
        EXPECT_NE(result.err.find("not a trident master"), std::string::npos) << result.err;
    }

    // start takes the stale file over with a notice.
    ASSERT_TRUE(server_->start());
    EXPECT_NE(server_->output().find("is stale"), std::string::npos) << server_->output();
    EXPECT_EQ(read_file(server_->pid_file()), std::to_string(server_->pid()) + "\n");
}

// --- who the children run as -----------------------------------------------------------------

/// The "Uid:" or "Gid:" line of /proc/PID/status: real, effective, saved, filesystem.
std::string id_line(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with(key + ":")) {
            return line;
        }
    }
    return "";
}

class PrivilegeTest : public ::testing::Test, protected LifecycleBase {
protected:
    void TearDown() override { dump_output_on_failure("privileges"); }

    /// Lets a user other than root read the site and the config (mkdtemp makes 0700).
    void open_up_dir() { ::chmod(dir_.path().c_str(), 0755); }

    /// `trident -t` on a config with `user_lines`, run as nobody when this test is root.
    CommandResult test_as_unprivileged(const std::string& user_lines) {
        ServerConfig config = config_for("prefork");
        config.extra_yaml = "# user: as given below\n" + user_lines;
        const fs::path file = dir_.path() / "unprivileged.yaml";
        write_file(file, render_config(config, 8080, dir_.path() / "u.pid"));
        std::vector<std::string> argv = {TRIDENT_BINARY, "-t", "-f", file.string()};
        if (::geteuid() == 0) {
            argv.insert(argv.begin(),
                        {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"});
        }
        return run_command(argv, dir_.path());
    }
};

TEST_F(PrivilegeTest, RootWithoutAUserIsRefusedWithAClearMessage) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root (id -u is " << ::geteuid() << ")";
    }
    ServerConfig config = config_for("prefork");
    config.extra_yaml = "# user: deliberately not set\n";
    server_ = std::make_unique<TridentServer>(dir_.path(), config);
    const auto status = server_->run_to_exit();
    ASSERT_TRUE(status) << "trident kept running as root without a user";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << describe_exit(*status);
    const std::string output = server_->output();
    EXPECT_NE(output.find("started as root but the config names no `user`"), std::string::npos)
        << output;
    EXPECT_NE(output.find("user: root"), std::string::npos) << output;
}

TEST_F(PrivilegeTest, ChildrenRunAsTheConfiguredUserAndCannotRegainRoot) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root (id -u is " << ::geteuid() << ")";
    }
    open_up_dir();
    ServerConfig config = config_for("worker");
    config.extra_yaml += "user: nobody\ngroup: nogroup\n";
    ASSERT_TRUE(start(config));
    const auto children = server_->wait_for_children(2);
    ASSERT_GE(children.size(), 2u);
    const std::string nobody = "65534\t65534\t65534\t65534";
    for (const ProcInfo& child : children) {
        EXPECT_NE(id_line(child.pid, "Uid").find(nobody), std::string::npos)
            << id_line(child.pid, "Uid");
        EXPECT_NE(id_line(child.pid, "Gid").find(nobody), std::string::npos)
            << id_line(child.pid, "Gid");
    }
    EXPECT_NE(id_line(server_->pid(), "Uid").find("0\t0\t0\t0"), std::string::npos)
        << "the master keeps root for binding and reloads";
    std::string error;
    EXPECT_TRUE(serves(server_->port(), site_, &error)) << error;
    // A graceful restart's children drop too, and the master can still signal the old ones.
    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    EXPECT_TRUE(wait_generation_alone(2));
    for (const ProcInfo& child : children_of(server_->pid())) {
        EXPECT_NE(id_line(child.pid, "Uid").find(nobody), std::string::npos);
    }
    const auto status = server_->stop(SIGTERM);
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(PrivilegeTest, UnprivilegedStartKeepsItsOwnUserOnly) {
    if (::geteuid() == 0 && std::system("command -v setpriv >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "running as root without setpriv to become another user";
    }
    open_up_dir();
    const auto plain = test_as_unprivileged("");
    EXPECT_EQ(plain.exit_code(), 0) << plain.out << plain.err;
    const auto switching = test_as_unprivileged("user: root\n");
    EXPECT_EQ(switching.exit_code(), 1) << switching.out << switching.err;
    EXPECT_NE(switching.err.find("only root can switch users"), std::string::npos) << switching.err;
    const auto unknown = test_as_unprivileged("user: no-such-user-here\n");
    EXPECT_EQ(unknown.exit_code(), 1);
    EXPECT_NE(unknown.err.find("unknown user 'no-such-user-here'"), std::string::npos)
        << unknown.err;
}

// --- installing ---------------------------------------------------------------------------

TEST(InstallTest, InstalledTreeFindsItsModulesConfigAndAVerifiedUnit) {
    TempDir dir;
    const fs::path prefix = dir.path() / "prefix";
    const fs::path build = fs::path(TRIDENT_BINARY).parent_path();
    const auto install =
        run_command({"cmake", "--install", build.string(), "--prefix", prefix.string()}, dir.path(),
                    Millis(60000));
    ASSERT_TRUE(install.ok()) << install.out << install.err;

    const fs::path binary = prefix / "sbin" / "trident";
    const auto version = run_command({binary.string(), "-V"}, dir.path());
    ASSERT_TRUE(version.ok()) << version.err;
    EXPECT_NE(version.out.find("Module dir:     " + (prefix / "lib/trident").string()),
              std::string::npos)
        << version.out;
    EXPECT_NE(version.out.find("MPMs found:     event, prefork, worker"), std::string::npos)
        << version.out;
    const fs::path config = prefix / "etc/trident/trident.yaml";
    EXPECT_NE(version.out.find("Default config: " + config.string()), std::string::npos)
        << version.out;

    const std::string yaml = read_file(config);
    EXPECT_NE(yaml.find("document_root: " + (prefix / "share/trident/docroot").string()),
              std::string::npos);
    EXPECT_NE(yaml.find("\nuser: www-data"), std::string::npos);
    if (::geteuid() == 0 && std::system("getent passwd www-data >/dev/null 2>&1") == 0) {
        const auto test = run_command({binary.string(), "-t"}, dir.path());
        EXPECT_TRUE(test.ok()) << test.out << test.err;
    }

    const fs::path unit = prefix / "lib/systemd/system/trident.service";
    const std::string text = read_file(unit);
    EXPECT_NE(text.find("ExecStart=" + binary.string() + " -f " + config.string()),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("ExecReload=" + binary.string() + " -k graceful"), std::string::npos);
    if (std::system("command -v systemd-analyze >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "systemd-analyze is not installed (make deps installs systemd)";
    }
    const auto verify = run_command({"systemd-analyze", "verify", unit.string()}, dir.path());
    EXPECT_TRUE(verify.ok()) << "systemd-analyze verify " << unit << ":\n"
                             << verify.out << verify.err;
}

}  // namespace
}  // namespace trident::test
