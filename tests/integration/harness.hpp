#pragma once

// The integration harness: a temporary site, the real trident binary started on a free
// loopback port, a raw-socket HTTP client with bounded reads, and curl. Every wait here is
// bounded in time and every loop in count; only 127.0.0.1 and ::1 are ever used.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef TRIDENT_BINARY
#error "TRIDENT_BINARY must name the trident executable under test"
#endif
#ifndef TRIDENT_TEST_MODULE_DIR
#error "TRIDENT_TEST_MODULE_DIR must name the folder of the fixture modules"
#endif

namespace trident::test {

namespace fs = std::filesystem;
using Millis = std::chrono::milliseconds;

/// The MPMs every HTTP and process test runs under. Adding one is a one-word change.
inline const std::vector<std::string> kMpms = {"prefork", "worker", "event"};

/// Polls `done` every `interval` until it holds or `timeout` has passed; its last answer.
/// For a wait on something the server does in its own time, use this rather than a deadline
/// loop of one's own.
template <typename Predicate>
bool eventually(Predicate done, Millis timeout = Millis(10000), Millis interval = Millis(50)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return done();
        }
        std::this_thread::sleep_for(interval);
    }
    return true;
}

/// Names a parametrised test after its MPM, so the output says which one ran.
std::string mpm_test_name(const ::testing::TestParamInfo<std::string>& info);

/// Bound on any single read from, or wait on, the server.
inline constexpr Millis kIoTimeout{5000};
/// Bound on a server start (port accepting) and on a server stop (process reaped).
inline constexpr Millis kStartTimeout{10000};
inline constexpr Millis kStopTimeout{10000};

// --- files ----------------------------------------------------------------------------------

/// A folder under /tmp made with mkdtemp, removed with everything in it on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

std::string read_file(const fs::path& path);
void write_file(const fs::path& path, std::string_view bytes);

/// The test site: <base>/root is the document root; secrets sit beside it, outside.
struct Site {
    fs::path root;
    std::string index_html;  ///< /index.html
    std::string text;        ///< /hello.txt
    std::string big;         ///< /big.bin, 1 MiB of seeded pseudo-random bytes
    std::string sub_index;   ///< /sub/index.html
    std::string secret;      ///< <base>/secret.txt and <base>/root2/secret.txt, never served
};

Site make_site(const fs::path& base);

// --- the server -----------------------------------------------------------------------------

/// What goes into the temporary trident.yaml. Keys follow DESIGN §5.
struct ServerConfig {
    std::string mpm = "prefork";
    std::string host = "127.0.0.1";  ///< "::1" listens on "[::1]:PORT"
    std::uint16_t port = 0;          ///< 0: pick a free one, and pick again if it gets taken
    fs::path document_root;
    std::optional<fs::path> module_dir;  ///< unset: the folder of TRIDENT_BINARY
    bool write_module_dir = true;        ///< false: leave module lookup to the binary
    std::uint32_t start_servers = 2;
    std::uint32_t max_connections_per_child = 0;
    std::string mpm_extra;  ///< more keys inside the MPM's section, e.g. "min_spare_servers: 1"
    std::string keep_alive = "{enabled: true, timeout: 5s, max_requests: 100}";
    std::string limits =
        "{request_line: 8190, request_fields: 100, request_field_size: 8190, "
        "request_body: 64KiB}";
    /// The access_log value, e.g. "{path: a.log, format: common}".
    std::string access_log = "off";
    /// The error_log value; stderr, where output() reads it, unless a test says otherwise.
    std::string error_log = "{path: stderr, level: info}";
    std::string extra_yaml;  ///< appended verbatim
    /// More environment for the server process, "NAME=value" each (e.g. LD_PRELOAD).
    std::vector<std::string> environment;
    /// The server's RLIMIT_FSIZE in bytes (as `ulimit -f` or systemd's LimitFSIZE=
    /// sets it); unset: the test's own.
    std::optional<std::uint64_t> file_size_limit;
};

/// The text of trident.yaml for `config` listening on `port`.
std::string render_config(const ServerConfig& config, std::uint16_t port, const fs::path& pid_file);

/// A loopback port nobody listens on right now ("127.0.0.1" or "::1"); 0 if none.
std::uint16_t free_port(const std::string& host = "127.0.0.1");

/// Whether a socket can be bound to [::1] on this machine.
bool ipv6_loopback_available();

/// The socket listening on 127.0.0.1:`port` as /proc/net/tcp shows it.
struct ListeningSocket {
    unsigned long inode = 0;
    std::size_t queued = 0;  ///< connections in its accept queue, not yet accepted
};
std::optional<ListeningSocket> listening_socket(std::uint16_t port);

/// Waits (up to 5 s) until nothing waits in the accept queue of 127.0.0.1:`port`: a
/// connection made before has been taken by a child. False if it never empties.
bool wait_accepted(std::uint16_t port);

/// The server's environment (ServerConfig::environment) for tests/fixtures/epoll_fault.cpp:
/// fail the registrations `fault` names, as a full fs.epoll.max_user_watches would.
std::vector<std::string> epoll_fault(const std::string& fault);

/// The server's environment for tests/fixtures/sched_refusal.cpp: SCHED_BATCH is refused,
/// as a seccomp filter or a security module may refuse it.
std::vector<std::string> batch_refusal();

/// One process as seen in /proc/<pid>/stat.
struct ProcInfo {
    pid_t pid = 0;
    pid_t ppid = 0;
    char state = '?';
    unsigned long long start_time = 0;  ///< tells a pid apart from a later reuse of it
    unsigned long long cpu_ticks = 0;   ///< user and system time so far, in clock ticks
};

std::optional<ProcInfo> read_proc(pid_t pid);
/// The scheduling policy (sched_getscheduler) of every live thread of `pid`, by thread id.
std::vector<std::pair<pid_t, int>> thread_policies(pid_t pid);
/// Whether the master's children have at least `min_threads` threads each, all under
/// `policy`, and there is at least one; `seen` lists them as " tid:policy" for messages.
bool children_scheduled(pid_t master, int policy, std::size_t min_threads, std::string& seen);
/// Waits until every thread of `pid` is stopped (SIGSTOP is taken by one thread, which then
/// stops the others: until then another may still accept a connection or answer it). False
/// on timeout or when the process is gone.
bool wait_until_stopped(pid_t pid, std::chrono::milliseconds timeout);
/// Live (non-zombie) processes whose parent is `parent`, sorted by pid.
std::vector<ProcInfo> children_of(pid_t parent);
/// True while the very process `info` describes exists and is not a zombie.
bool still_running(const ProcInfo& info);
std::string describe_exit(int wait_status);

/// The real trident binary, run with a temporary config in its own folder. Stopped by its
/// own pid on destruction (SIGTERM, then SIGKILL), never by name.
class TridentServer {
public:
    TridentServer(fs::path workdir, ServerConfig config);
    ~TridentServer();
    TridentServer(const TridentServer&) = delete;
    TridentServer& operator=(const TridentServer&) = delete;

    /// Starts the server and waits until its port accepts. Retries on "Address already in
    /// use" with a new port (up to 3 times) when the port was picked here.
    ::testing::AssertionResult start();

    /// Starts the server expecting it to exit by itself; returns its wait status, or
    /// nothing if it was still running after `timeout` (it is then killed).
    std::optional<int> run_to_exit(Millis timeout = kStartTimeout);

    /// Sends `sig` to the master and reaps it within `timeout`; the wait status, or nothing
    /// if it had to be killed.
    std::optional<int> stop(int sig = SIGTERM, Millis timeout = kStopTimeout);

    /// Reaps the master if it has exited by itself; its wait status then.
    std::optional<int> try_reap();

    bool running() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    std::uint16_t port() const { return port_; }
    const ServerConfig& config() const { return config_; }
    const fs::path& config_file() const { return config_file_; }
    const fs::path& pid_file() const { return pid_file_; }
    /// Everything the server wrote to stderr (and stdout) so far.
    std::string output() const;

    /// Waits until the master has at least `count` live children; returns them.
    std::vector<ProcInfo> wait_for_children(std::size_t count, Millis timeout = kStartTimeout);
    /// Remembers processes to SIGKILL on destruction if they outlive the master.
    void track(const std::vector<ProcInfo>& processes);

private:
    bool spawn(std::string& error);
    /// Polls until the port accepts or the process exits; the exit status if it did.
    std::optional<int> wait_ready(bool& ready);

    fs::path workdir_;
    ServerConfig config_;
    std::uint16_t port_ = 0;
    fs::path config_file_;
    fs::path pid_file_;
    fs::path output_file_;
    pid_t pid_ = -1;
    std::vector<ProcInfo> tracked_;
};

// --- clients --------------------------------------------------------------------------------

struct HttpResponse {
    std::string version;  ///< "HTTP/1.1"
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool closed_after = false;  ///< the body was delimited by the server closing

    /// The first field named `name` (case-insensitive).
    std::optional<std::string> header(std::string_view name) const;
    std::size_t header_count(std::string_view name) const;
    /// The status line and fields, for failure messages.
    std::string head_text() const;
};

/// A plain TCP client with poll-bounded reads.
class RawClient {
public:
    RawClient() = default;
    ~RawClient();
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool connect(std::uint16_t port, const std::string& host = "127.0.0.1");
    bool send(std::string_view bytes);
    /// Reads one response; `head_only` for a response to HEAD (never a body).
    std::optional<HttpResponse> read_response(bool head_only = false, Millis timeout = kIoTimeout);
    /// Reads `count` pipelined responses in order; stops at the first failure.
    std::vector<HttpResponse> read_responses(std::size_t count, Millis timeout = kIoTimeout);
    /// True when the server closes (read returns 0, or a reset) within `timeout` and sends
    /// nothing more before that.
    bool wait_closed(Millis timeout = kIoTimeout);
    /// Sends the end of the stream (shutdown SHUT_WR); reads go on.
    bool shutdown_write();
    void close();

    const std::string& error() const { return error_; }
    /// Bytes received but not yet parsed.
    const std::string& pending() const { return buffer_; }

private:
    enum class Fill { data, closed, timeout, failed };
    Fill fill(std::chrono::steady_clock::time_point deadline);
    bool read_until(std::size_t size, std::chrono::steady_clock::time_point deadline);

    int fd_ = -1;
    std::string buffer_;
    std::string error_;
};

/// "METHOD target HTTP/1.1" with Host and any extra field lines (each ending in CRLF).
std::string make_request(std::string_view method, std::string_view target,
                         std::string_view extra_fields = "");

/// A client that asks for a large file and then reads nothing, with a small receive
/// window, so the server's socket fills up mid-response.
class StalledReader {
public:
    /// Connects and sends GET `target`; with an empty target, sends nothing yet.
    StalledReader(std::uint16_t port, std::string_view target);
    ~StalledReader();
    StalledReader(const StalledReader&) = delete;
    StalledReader& operator=(const StalledReader&) = delete;

    bool send(std::string_view bytes);
    bool connected() const { return connected_; }
    /// Reads everything until `total` bytes, the end of the stream or `timeout`; returns
    /// what came.
    std::string read_all(std::size_t total, Millis timeout);

private:
    int fd_ = -1;
    bool connected_ = false;
};

/// Writes <root>/large.bin: 4 MiB, far more than the socket buffers on both ends hold, in
/// a pattern that shows any byte out of place. Returns its content.
std::string write_large_file(const Site& site);

/// Connects, sends `request`, reads one response. On failure `error` says why.
std::optional<HttpResponse> exchange(std::uint16_t port, std::string_view request,
                                     std::string* error, bool head_only = false,
                                     const std::string& host = "127.0.0.1");

/// A finished command: exit status and what it printed.
struct CommandResult {
    int wait_status = -1;  ///< -1: timed out and killed
    std::string out;
    std::string err;
    bool ok() const;  ///< exited with status 0
    int exit_code() const;
};

/// Runs argv[0] (looked up on PATH) with stdin from /dev/null, bounded by `timeout`.
CommandResult run_command(const std::vector<std::string>& argv, const fs::path& scratch,
                          Millis timeout = Millis(15000));

/// curl -sS --max-time ... -o <file> -w '%{http_code}' <args> <url>; `body` gets the file.
struct CurlResult {
    CommandResult command;
    int http_code = 0;
    std::string body;
};
CurlResult run_curl(const std::vector<std::string>& args, const std::string& url,
                    const fs::path& scratch);

// --- fixtures -------------------------------------------------------------------------------

/// Base of the HTTP tests, parametrised by MPM name: a fresh site and a running server.
class ServerTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override;
    void TearDown() override;
    /// Adjusts the config before the server starts; the MPM is already set.
    virtual void configure(ServerConfig& /*config*/) {}

    std::uint16_t port() const { return server_->port(); }
    /// One request on a fresh connection.
    std::optional<HttpResponse> fetch(std::string_view request, bool head_only = false);
    /// "GET target" on a fresh connection.
    std::optional<HttpResponse> get(std::string_view target, std::string_view extra = "");

    std::unique_ptr<TempDir> dir_;
    Site site_;
    std::unique_ptr<TridentServer> server_;
    std::string last_error_;  ///< why the last fetch() failed
};

// --- a bounded load (lifecycle tests) --------------------------------------------------------

/// What a load run saw.
struct LoadResult {
    std::uint64_t ok = 0;             ///< 200 with the right body
    std::uint64_t retried = 0;        ///< reused connection closed before any byte of a response
    std::uint64_t failed = 0;         ///< anything else: refused, reset mid-response, wrong answer
    std::vector<std::string> errors;  ///< the first few failures, for the message

    std::string describe() const;
};

/// Client threads that alternate new connections and keep-alive runs of five requests
/// against `target` until finished, each bounded in requests and in time, with a short
/// pause between connections. A request sent on a reused connection that the server closes
/// before answering any byte is retried on a new connection, as RFC 9112 §9.3.1 lets a
/// client do for idempotent requests: that is the race every HTTP server has when it closes
/// an idle keep-alive connection, not a lost request. Every other miss is a failure.
class Load {
public:
    static constexpr std::uint64_t kMaxRequestsPerClient = 100000;
    static constexpr Millis kPause{5};
    static constexpr std::chrono::seconds kMaxDuration{90};

    Load(std::uint16_t port, std::string target, std::string expected_body, int clients);
    ~Load();
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;

    /// Stops the clients and returns what they saw.
    LoadResult finish();

private:
    void client(std::uint16_t port, int index);
    void record(bool ok, bool retried, const std::string& error);

    std::string target_;
    std::string expected_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    LoadResult result_;
    std::vector<std::thread> threads_;
};

}  // namespace trident::test
