#include "harness.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace trident::test {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kStartAttempts = 3;
constexpr Millis kPollStep{20};

}  // namespace

std::string mpm_test_name(const ::testing::TestParamInfo<std::string>& info) {
    return info.param;
}

// --- files ----------------------------------------------------------------------------------

TempDir::TempDir() {
    char pattern[] = "/tmp/trident-it-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) {
        throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    }
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_file(const fs::path& path, std::string_view bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        throw std::runtime_error("cannot write " + path.string());
    }
}

Site make_site(const fs::path& base) {
    Site site;
    site.root = base / "root";
    site.index_html = "<!doctype html>\n<title>Trident test root</title>\n<p>root index</p>\n";
    site.text = "Hello from the Trident integration tests.\n";
    site.sub_index = "<!doctype html>\n<title>sub</title>\n<p>sub index</p>\n";
    site.secret = "TRIDENT-SECRET-6b1f0c93-must-never-be-served";

    std::mt19937 random(20240611u);  // fixed seed: the same bytes on every run
    site.big.resize(1u << 20);
    for (char& byte : site.big) {
        byte = static_cast<char>(random() & 0xffu);
    }

    write_file(site.root / "index.html", site.index_html);
    write_file(site.root / "hello.txt", site.text);
    write_file(site.root / "big.bin", site.big);
    write_file(site.root / "sub" / "index.html", site.sub_index);
    // Outside the root: beside it, and in a sibling whose name shares the root's prefix
    // (catches a containment check done as a plain string prefix test).
    write_file(base / "secret.txt", site.secret);
    write_file(base / "root2" / "secret.txt", site.secret);
    return site;
}

// --- config and ports -----------------------------------------------------------------------

std::string render_config(const ServerConfig& config, std::uint16_t port,
                          const fs::path& pid_file) {
    const std::string address = config.host.find(':') != std::string::npos
                                    ? "[" + config.host + "]:" + std::to_string(port)
                                    : config.host + ":" + std::to_string(port);
    std::ostringstream yaml;
    yaml << "# written by the Trident integration tests\n"
         << "mpm: " << config.mpm << "\n"
         << "listen: [\"" << address << "\"]\n"
         << "document_root: \"" << config.document_root.string() << "\"\n"
         << "pid_file: \"" << pid_file.string() << "\"\n";
    if (::geteuid() == 0 && config.extra_yaml.find("user:") == std::string::npos) {
        yaml << "user: root\n";  // started as root, the master wants the children's user said
    }
    if (config.write_module_dir) {
        const fs::path module_dir =
            config.module_dir.value_or(fs::path(TRIDENT_BINARY).parent_path());
        yaml << "module_dir: \"" << module_dir.string() << "\"\n";
    }
    yaml << "keep_alive: " << config.keep_alive << "\n"
         << "limits: " << config.limits << "\n"
         << config.mpm << ": {start_servers: " << config.start_servers
         << ", max_connections_per_child: " << config.max_connections_per_child
         << (config.mpm_extra.empty() ? "" : ", " + config.mpm_extra) << "}\n"
         << "access_log: " << config.access_log << "\n"
         << "error_log: " << config.error_log << "\n"
         << config.extra_yaml;
    return yaml.str();
}

namespace {

/// Fills `storage` with host:port; false if `host` is not numeric.
bool make_address(const std::string& host, std::uint16_t port, sockaddr_storage& storage,
                  socklen_t& length) {
    storage = {};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        length = sizeof *v4;
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        length = sizeof *v6;
        return true;
    }
    return false;
}

/// Binds host:port (0 picks one) and returns the socket, or -1.
int bind_socket(const std::string& host, std::uint16_t port) {
    sockaddr_storage storage;
    socklen_t length = 0;
    if (!make_address(host, port, storage, length)) {
        return -1;
    }
    const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// True when a TCP connect to host:port succeeds right now.
bool port_accepts(const std::string& host, std::uint16_t port) {
    sockaddr_storage storage;
    socklen_t length = 0;
    if (!make_address(host, port, storage, length)) {
        return false;
    }
    const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&storage), length) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

std::optional<ListeningSocket> listening_socket(std::uint16_t port) {
    std::ifstream in("/proc/net/tcp");
    char local[16];
    std::snprintf(local, sizeof local, "0100007F:%04X", port);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, address, remote, state, queues, timer, retransmits, uid, timeout;
        ListeningSocket socket;
        fields >> slot >> address >> remote >> state >> queues >> timer >> retransmits >> uid >>
            timeout >> socket.inode;
        if (address == local && state == "0A") {  // 0A: TCP_LISTEN
            // "tx_queue:rx_queue" in hex; a listening socket's rx_queue is its accept queue.
            const std::size_t colon = queues.find(':');
            socket.queued = colon == std::string::npos
                                ? 0
                                : std::size_t(std::stoul(queues.substr(colon + 1), nullptr, 16));
            return socket;
        }
    }
    return std::nullopt;
}

bool wait_accepted(std::uint16_t port) {
    return eventually(
        [&] {
            const auto socket = listening_socket(port);
            return socket && socket->queued == 0;
        },
        Millis(5000), Millis(10));
}

std::uint16_t free_port(const std::string& host) {
    const int fd = bind_socket(host, 0);
    if (fd < 0) {
        return 0;
    }
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    std::uint16_t port = 0;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) == 0) {
        port = storage.ss_family == AF_INET6
                   ? ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port)
                   : ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    }
    ::close(fd);
    return port;
}

namespace {

/// The environment that preloads `library` into the server.
std::vector<std::string> preloading(const char* library) {
    const char* asan = std::getenv("ASAN_OPTIONS");
    return {
        std::string("LD_PRELOAD=") + library,
        // A sanitizer build wants its runtime first among the loaded libraries.
        "ASAN_OPTIONS=" + std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0"};
}

}  // namespace

std::vector<std::string> epoll_fault(const std::string& fault) {
    std::vector<std::string> environment = preloading(TRIDENT_EPOLL_FAULT);
    environment.push_back("TRIDENT_TEST_EPOLL_FAULT=" + fault);
    return environment;
}

std::vector<std::string> batch_refusal() {
    return preloading(TRIDENT_SCHED_REFUSAL);
}

bool ipv6_loopback_available() {
    const int fd = bind_socket("::1", 0);
    if (fd < 0) {
        return false;
    }
    ::close(fd);
    return true;
}

// --- processes ------------------------------------------------------------------------------

namespace {

std::optional<ProcInfo> read_stat(const std::string& path, pid_t pid) {
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line)) {
        return std::nullopt;
    }
    // "pid (comm) state ppid ..." where comm may hold spaces and parentheses.
    const auto paren = line.rfind(')');
    if (paren == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(line.substr(paren + 1));
    std::vector<std::string> tokens;
    for (std::string token; tokens.size() < 20 && fields >> token;) {
        tokens.push_back(token);
    }
    if (tokens.size() < 20) {
        return std::nullopt;
    }
    ProcInfo info;
    info.pid = pid;
    info.state = tokens[0].empty() ? '?' : tokens[0][0];
    info.ppid = static_cast<pid_t>(std::stol(tokens[1]));
    info.cpu_ticks = std::stoull(tokens[11]) + std::stoull(tokens[12]);  // fields 14, 15
    info.start_time = std::stoull(tokens[19]);                           // field 22 of proc(5)
    return info;
}

}  // namespace

std::optional<ProcInfo> read_proc(pid_t pid) {
    return read_stat("/proc/" + std::to_string(pid) + "/stat", pid);
}

namespace {

/// The thread ids of `pid` (/proc/PID/task), or nothing when the process is gone.
std::optional<std::vector<pid_t>> thread_ids(pid_t pid) {
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    DIR* dir = ::opendir(tasks.c_str());
    if (dir == nullptr) {
        return std::nullopt;
    }
    std::vector<pid_t> ids;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') {
            ids.push_back(pid_t(std::atoi(entry->d_name)));
        }
    }
    ::closedir(dir);
    return ids;
}

}  // namespace

std::vector<std::pair<pid_t, int>> thread_policies(pid_t pid) {
    std::vector<std::pair<pid_t, int>> out;
    for (pid_t tid : thread_ids(pid).value_or(std::vector<pid_t>{})) {
        const int policy = ::sched_getscheduler(tid);
        if (policy >= 0) {  // else the thread has just ended
            out.emplace_back(tid, policy);
        }
    }
    return out;
}

bool children_scheduled(pid_t master, int policy, std::size_t min_threads, std::string& seen) {
    seen.clear();
    bool all = true;
    for (const ProcInfo& child : children_of(master)) {
        const auto threads = thread_policies(child.pid);
        all = all && threads.size() >= min_threads;
        for (const auto& [tid, got] : threads) {
            seen += " " + std::to_string(tid) + ":" + std::to_string(got);
            all = all && got == policy;
        }
    }
    return all && !seen.empty();
}

bool wait_until_stopped(pid_t pid, std::chrono::milliseconds timeout) {
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    bool gone = false;
    const bool stopped = eventually(
        [&] {
            const auto threads = thread_ids(pid);
            if (!threads) {
                gone = true;
                return true;
            }
            std::size_t stopped_threads = 0;
            for (pid_t tid : *threads) {
                const auto info = read_stat(tasks + "/" + std::to_string(tid) + "/stat", pid);
                stopped_threads += info && info->state == 'T' ? 1 : 0;
            }
            return !threads->empty() && stopped_threads == threads->size();
        },
        timeout, Millis(2));
    return stopped && !gone;
}

std::vector<ProcInfo> children_of(pid_t parent) {
    std::vector<ProcInfo> children;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) {
        return children;
    }
    while (const dirent* entry = ::readdir(proc)) {
        char* end = nullptr;
        const long pid = std::strtol(entry->d_name, &end, 10);
        if (pid <= 0 || *end != '\0') {
            continue;
        }
        const auto info = read_proc(static_cast<pid_t>(pid));
        if (info && info->ppid == parent && info->state != 'Z' && info->state != 'X') {
            children.push_back(*info);
        }
    }
    ::closedir(proc);
    std::sort(children.begin(), children.end(),
              [](const ProcInfo& a, const ProcInfo& b) { return a.pid < b.pid; });
    return children;
}

bool still_running(const ProcInfo& info) {
    const auto now = read_proc(info.pid);
    return now && now->start_time == info.start_time && now->state != 'Z' && now->state != 'X';
}

std::string describe_exit(int wait_status) {
    if (WIFEXITED(wait_status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
    }
    if (WIFSIGNALED(wait_status)) {
        return "killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
               ::strsignal(WTERMSIG(wait_status)) + ")";
    }
    return "wait status " + std::to_string(wait_status);
}

// --- the server -----------------------------------------------------------------------------

TridentServer::TridentServer(fs::path workdir, ServerConfig config)
    : workdir_(std::move(workdir)),
      config_(std::move(config)),
      config_file_(workdir_ / "trident.yaml"),
      pid_file_(workdir_ / "trident.pid"),
      output_file_(workdir_ / "trident.stderr") {}

TridentServer::~TridentServer() {
    if (running()) {
        track(children_of(pid_));
        stop(SIGTERM);
    }
    for (const ProcInfo& process : tracked_) {
        if (still_running(process)) {
            std::cerr << "[ harness  ] process " << process.pid
                      << " outlived its master; sending SIGKILL\n";
            ::kill(process.pid, SIGKILL);
        }
    }
}

void TridentServer::track(const std::vector<ProcInfo>& processes) {
    tracked_.insert(tracked_.end(), processes.begin(), processes.end());
}

std::string TridentServer::output() const {
    return read_file(output_file_);
}

bool TridentServer::spawn(std::string& error) {
    write_file(config_file_, render_config(config_, port_, pid_file_));
    // Everything the child needs is prepared before fork: only async-signal-safe calls after.
    const std::string binary = TRIDENT_BINARY;
    const std::string flag = "-f";
    const std::string config_path = config_file_.string();
    const std::string output_path = output_file_.string();
    char* argv[] = {const_cast<char*>(binary.c_str()), const_cast<char*>(flag.c_str()),
                    const_cast<char*>(config_path.c_str()), nullptr};
    // The test's environment, with config_.environment's entries in place of any of the
    // same name (getenv would find the first).
    std::vector<char*> envp;
    const auto overridden = [&](std::string_view entry) {
        const std::string_view name = entry.substr(0, entry.find('=') + 1);
        return std::any_of(config_.environment.begin(), config_.environment.end(),
                           [&](const std::string& extra) { return extra.starts_with(name); });
    };
    for (char** entry = environ; *entry != nullptr; ++entry) {
        if (!overridden(*entry)) {
            envp.push_back(*entry);
        }
    }
    for (const std::string& entry : config_.environment) {
        envp.push_back(const_cast<char*>(entry.c_str()));
    }
    envp.push_back(nullptr);
    const bool limit_file_size = config_.file_size_limit.has_value();
    const rlim_t file_size_limit = rlim_t(config_.file_size_limit.value_or(0));
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        error = std::string("fork: ") + std::strerror(errno);
        return false;
    }
    if (pid == 0) {
        // If the test process dies, the server is told to stop rather than left behind.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
            ::_exit(126);
        }
        const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int in = ::open("/dev/null", O_RDONLY);
        if (out < 0 || in < 0) {
            ::_exit(126);
        }
        ::dup2(in, STDIN_FILENO);
        ::dup2(out, STDOUT_FILENO);
        ::dup2(out, STDERR_FILENO);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (limit_file_size) {
            rlimit limit{};
            ::getrlimit(RLIMIT_FSIZE, &limit);
            limit.rlim_cur = file_size_limit;
            if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
                ::_exit(126);
            }
        }
        ::execve(argv[0], argv, envp.data());
        ::_exit(127);
    }
    pid_ = pid;
    return true;
}

namespace {

/// Whether the pid file holds `pid`, as the master writes it.
bool names_this_master(const fs::path& pid_file, pid_t pid) {
    std::ifstream in(pid_file);
    std::string text;
    std::getline(in, text);
    return text == std::to_string(pid);
}

}  // namespace

std::optional<int> TridentServer::wait_ready(bool& ready) {
    ready = false;
    const auto deadline = Clock::now() + kStartTimeout;
    while (Clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return status;
        }
        // The port answers once bound; the pid file comes when the master is set up
        // (module loaded, scoreboard created), which is what tests mean by "started". It
        // must name this master: a stale file from an earlier one may still be there.
        if (port_accepts(config_.host, port_) && names_this_master(pid_file_, pid_)) {
            ready = true;
            return std::nullopt;
        }
        std::this_thread::sleep_for(kPollStep);
    }
    return std::nullopt;
}

::testing::AssertionResult TridentServer::start() {
    const bool pick_port = config_.port == 0;
    std::string history;
    for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
        port_ = pick_port ? free_port(config_.host) : config_.port;
        if (port_ == 0) {
            return ::testing::AssertionFailure() << "no free port on " << config_.host;
        }
        std::string error;
        if (!spawn(error)) {
            return ::testing::AssertionFailure() << error;
        }
        bool ready = false;
        const auto exit_status = wait_ready(ready);
        if (ready) {
            return ::testing::AssertionSuccess();
        }
        const std::string text = output();
        if (!exit_status) {
            stop(SIGKILL);
            return ::testing::AssertionFailure()
                   << "trident did not accept on " << config_.host << ":" << port_ << " within "
                   << kStartTimeout.count() << " ms; its output:\n"
                   << text;
        }
        if (pick_port && text.find("Address already in use") != std::string::npos) {
            history += "attempt " + std::to_string(attempt) + ": port " + std::to_string(port_) +
                       " taken meanwhile\n";
            continue;
        }
        return ::testing::AssertionFailure()
               << "trident " << describe_exit(*exit_status) << " during start; its output:\n"
               << text;
    }
    return ::testing::AssertionFailure() << "could not start trident:\n" << history;
}

std::optional<int> TridentServer::run_to_exit(Millis timeout) {
    const bool pick_port = config_.port == 0;
    for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
        port_ = pick_port ? free_port(config_.host) : config_.port;
        std::string error;
        if (!spawn(error)) {
            ADD_FAILURE() << error;
            return std::nullopt;
        }
        const auto deadline = Clock::now() + timeout;
        std::optional<int> status;
        while (!status && Clock::now() < deadline) {
            int raw = 0;
            if (::waitpid(pid_, &raw, WNOHANG) == pid_) {
                pid_ = -1;
                status = raw;
            } else {
                std::this_thread::sleep_for(kPollStep);
            }
        }
        if (!status) {
            track(children_of(pid_));
            stop(SIGKILL);
            return std::nullopt;
        }
        const bool port_taken = output().find("Address already in use") != std::string::npos;
        if (pick_port && port_taken && attempt < kStartAttempts) {
            continue;
        }
        return status;
    }
    return std::nullopt;
}

std::optional<int> TridentServer::stop(int sig, Millis timeout) {
    if (!running()) {
        return std::nullopt;
    }
    ::kill(pid_, sig);
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        int status = 0;
        const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
        if (reaped == pid_) {
            pid_ = -1;
            return status;
        }
        if (reaped < 0 && errno == ECHILD) {
            pid_ = -1;
            return std::nullopt;
        }
        std::this_thread::sleep_for(Millis(10));
    }
    std::cerr << "[ harness  ] trident pid " << pid_ << " ignored signal " << sig << " for "
              << timeout.count() << " ms; sending SIGKILL\n";
    ::kill(pid_, SIGKILL);
    for (int i = 0; i < 500; ++i) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) != 0) {
            break;
        }
        std::this_thread::sleep_for(Millis(10));
    }
    pid_ = -1;
    return std::nullopt;
}

std::optional<int> TridentServer::try_reap() {
    int status = 0;
    if (running() && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
    }
    return std::nullopt;
}

std::vector<ProcInfo> TridentServer::wait_for_children(std::size_t count, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    std::vector<ProcInfo> children = children_of(pid_);
    while (children.size() < count && Clock::now() < deadline && running()) {
        std::this_thread::sleep_for(kPollStep);
        children = children_of(pid_);
    }
    track(children);
    return children;
}

// --- fixtures -------------------------------------------------------------------------------

void ServerTest::SetUp() {
    dir_ = std::make_unique<TempDir>();
    site_ = make_site(dir_->path());
    ServerConfig config;
    config.mpm = GetParam();
    config.document_root = site_.root;
    configure(config);
    server_ = std::make_unique<TridentServer>(dir_->path(), config);
    ASSERT_TRUE(server_->start()) << "MPM " << GetParam();
}

void ServerTest::TearDown() {
    if (!server_) {
        return;
    }
    const bool was_running = server_->running();
    const auto died = was_running ? server_->try_reap() : std::nullopt;
    EXPECT_FALSE(died) << "the master (" << GetParam()
                       << " MPM) died during the test: " << describe_exit(died.value_or(0));
    if (!died && was_running) {
        server_->track(children_of(server_->pid()));
        const auto status = server_->stop(SIGTERM);
        EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
            << "stopping trident (" << GetParam()
            << " MPM): " << (status ? describe_exit(*status) : "did not exit on SIGTERM");
    }
    if (HasFailure()) {
        std::cerr << "---- trident output (" << GetParam() << " MPM, config "
                  << server_->config_file() << ") ----\n"
                  << server_->output() << "---- end of trident output ----\n";
    }
    server_.reset();
    dir_.reset();
}

std::optional<HttpResponse> ServerTest::fetch(std::string_view request, bool head_only) {
    last_error_.clear();
    return exchange(port(), request, &last_error_, head_only, server_->config().host);
}

std::optional<HttpResponse> ServerTest::get(std::string_view target, std::string_view extra) {
    return fetch(make_request("GET", target, extra));
}

// --- a bounded load -------------------------------------------------------------------------

std::string LoadResult::describe() const {
    std::string text = std::to_string(ok) + " ok, " + std::to_string(retried) +
                       " retried on a new connection, " + std::to_string(failed) + " failed";
    for (const std::string& error : errors) {
        text += "\n  " + error;
    }
    return text;
}

Load::Load(std::uint16_t port, std::string target, std::string expected_body, int clients)
    : target_(std::move(target)), expected_(std::move(expected_body)) {
    for (int i = 0; i < clients; ++i) {
        threads_.emplace_back([this, port, i] { client(port, i); });
    }
}

Load::~Load() {
    finish();
}

LoadResult Load::finish() {
    stop_ = true;
    for (std::thread& thread : threads_) {
        if (thread.joinable()) {
            thread.join();
        }
    }
    std::lock_guard lock(mutex_);
    return result_;
}

void Load::record(bool ok, bool retried, const std::string& error) {
    std::lock_guard lock(mutex_);
    if (ok) {
        ++result_.ok;
    } else if (retried) {
        ++result_.retried;
    } else {
        ++result_.failed;
        if (result_.errors.size() < 5) {
            result_.errors.push_back(error);
        }
    }
}

void Load::client(std::uint16_t port, int index) {
    const auto deadline = Clock::now() + kMaxDuration;
    std::uint64_t sent = 0;
    for (int round = 0; !stop_ && sent < kMaxRequestsPerClient && Clock::now() < deadline;
         ++round) {
        std::this_thread::sleep_for(kPause);
        RawClient connection;
        if (!connection.connect(port)) {
            record(false, false, "connect: " + connection.error());
            continue;
        }
        const int run = (round + index) % 2 == 0 ? 1 : 5;
        for (int k = 0; k < run && !stop_; ++k) {
            ++sent;
            const bool last = k + 1 == run;
            if (!connection.send(
                    make_request("GET", target_, last ? "Connection: close\r\n" : ""))) {
                record(false, k > 0, "send: " + connection.error());
                break;
            }
            const auto response = connection.read_response();
            if (!response) {
                const bool nothing = connection.pending().empty();
                record(false, k > 0 && nothing,
                       "request " + std::to_string(k + 1) + " of a run of " + std::to_string(run) +
                           ": " + connection.error());
                break;
            }
            if (response->status != 200 || response->body != expected_) {
                record(false, false, "unexpected response:\n" + response->head_text());
                break;
            }
            record(true, false, "");
            if (response->header("Connection").value_or("") == "close") {
                break;  // the server said so: a graceful stop at a request boundary
            }
        }
    }
}

}  // namespace trident::test
