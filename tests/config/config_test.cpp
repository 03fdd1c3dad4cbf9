#include "trident/config.hpp"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/yaml_reader.hpp"

namespace trident {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// Each test writes its config files into a fresh directory holding a document root "www".
class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/trident-config-test-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        fs::create_directory(dir_ / "www");
    }

    void TearDown() override {
        // A test may have taken permissions away; give them back so removal succeeds.
        std::error_code ignored;
        for (const auto& entry : fs::recursive_directory_iterator(dir_, ignored)) {
            fs::permissions(entry.path(), fs::perms::owner_all, fs::perm_options::add, ignored);
        }
        fs::remove_all(dir_, ignored);
    }

    fs::path write(const std::string& text, const std::string& name = "trident.yaml") {
        const fs::path file = dir_ / name;
        std::ofstream(file, std::ios::binary) << text;
        return file;
    }

    /// Loads "document_root: www" followed by `rest` (so `rest` starts on line 2).
    Result<Config> load(const std::string& rest) { return load_config(write(kRoot + rest)); }

    /// The error of loading `text` exactly, with the leading "FILE:" taken off.
    std::string error_of(const std::string& text) {
        const fs::path file = write(text);
        auto result = load_config(file);
        if (result.ok()) {
            ADD_FAILURE() << "expected an error for:\n" << text;
            return "";
        }
        const std::string& message = result.error().message;
        const std::string prefix = file.string() + ":";
        EXPECT_EQ(message.compare(0, prefix.size(), prefix), 0) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        return message.substr(std::min(prefix.size(), message.size()));
    }

    static inline const std::string kRoot = "document_root: www\n";
    fs::path dir_;
};

fs::path repo_root() {
    return fs::path(TRIDENT_TEST_DATA_DIR "/../..").lexically_normal();
}

// --- what loads -----------------------------------------------------------------------------

TEST_F(ConfigTest, AbsentKeysTakeTheirDefaults) {
    auto config = load("");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->file, dir_ / "trident.yaml");
    EXPECT_EQ(config->document_root, fs::canonical(dir_ / "www"));
    EXPECT_EQ(config->mpm, "event");
    ASSERT_EQ(config->listen.size(), 1u);
    EXPECT_EQ(config->listen[0].host, "127.0.0.1");
    EXPECT_EQ(config->listen[0].port, 8080);
    EXPECT_EQ(config->directory_index, std::vector<std::string>{"index.html"});
    EXPECT_TRUE(config->pid_file.empty());
    EXPECT_TRUE(config->module_dir.empty());
    EXPECT_TRUE(config->user.empty());
    EXPECT_EQ(config->server_tokens, "full");
    EXPECT_EQ(config->cpu_scheduling, "batch");
    EXPECT_TRUE(config->keep_alive.enabled);
    EXPECT_EQ(config->keep_alive.timeout, 5s);
    EXPECT_EQ(config->keep_alive.max_requests, 100u);
    EXPECT_EQ(config->timeouts.request_header, 20s);
    EXPECT_EQ(config->timeouts.request_header_max, 40s);  // mod_reqtimeout's header=20-40
    EXPECT_EQ(config->timeouts.request_body_max, 0s);
    EXPECT_EQ(config->timeouts.min_data_rate, 500u);
    EXPECT_EQ(config->timeouts.send, 60s);
    EXPECT_EQ(config->timeouts.graceful_shutdown, 0s);
    EXPECT_EQ(config->limits.request_line, 8190u);
    EXPECT_EQ(config->limits.request_body, 1ull << 30);
    EXPECT_EQ(config->prefork.max_request_workers, 256u);
    EXPECT_EQ(config->worker.threads_per_child, 25u);
    EXPECT_EQ(config->event.async_request_worker_factor, 2u);
    EXPECT_TRUE(config->access_log.enabled);
    EXPECT_EQ(config->access_log.path, "stderr");
    EXPECT_EQ(config->error_log.level, "info");
    EXPECT_EQ(config->status.path, "/server-status");
    EXPECT_EQ(config->status.allow, (std::vector<std::string>{"127.0.0.0/8", "::1"}));
}

TEST_F(ConfigTest, ShippedConfigLoads) {
    const fs::path file = repo_root() / "conf" / "trident.yaml";
    auto config = load_config(file);
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->file, file);
    EXPECT_EQ(config->mpm, "event");  // make run serves with the event MPM
    EXPECT_EQ(config->document_root, fs::canonical(repo_root() / "docs" / "docroot"));
    ASSERT_EQ(config->listen.size(), 1u);
    EXPECT_EQ(config->listen[0].text, "127.0.0.1:8080");
    EXPECT_TRUE(config->pid_file.empty());
    EXPECT_EQ(config->access_log.path, "stderr");
    EXPECT_EQ(config->access_log.format, "combined");
    EXPECT_EQ(config->error_log.path, "stderr");
    EXPECT_EQ(config->error_log.level, "info");
    // Every other value in the shipped file is the built-in default.
    const Config defaults;
    EXPECT_EQ(config->limits.request_body, defaults.limits.request_body);
    EXPECT_EQ(config->event.max_request_workers, defaults.event.max_request_workers);
    EXPECT_EQ(config->prefork.max_spare_servers, defaults.prefork.max_spare_servers);
    EXPECT_EQ(config->keep_alive.timeout, defaults.keep_alive.timeout);
    EXPECT_EQ(config->status.allow, defaults.status.allow);
}

TEST_F(ConfigTest, EveryKeyIsRead) {
    auto config = load(R"(mpm: worker
listen: ["10.0.0.1:81", "[::1]:8443", 9000]
directory_index: [index.htm, default.html]
pid_file: run/trident.pid
module_dir: /opt/trident/modules
user: www-data
group: "1001"
server_tokens: prod
cpu_scheduling: inherit
keep_alive: {enabled: no, timeout: 250ms, max_requests: 0}
timeouts: {request_header: 1m, request_body: 30, send: 1h, graceful_shutdown: 10s}
limits: {request_line: 16, request_fields: 10000, request_field_size: 1048576, request_body: 10MB}
prefork: {start_servers: 1, min_spare_servers: 2, max_spare_servers: 3, server_limit: 200000,
          max_request_workers: 4, max_connections_per_child: 5}
worker: {start_servers: 6, min_spare_threads: 7, max_spare_threads: 8, threads_per_child: 9,
         server_limit: 10, thread_limit: 11, max_request_workers: 12,
         max_connections_per_child: 13}
event: {start_servers: 14, min_spare_threads: 15, max_spare_threads: 16, threads_per_child: 17,
        server_limit: 18, thread_limit: 20000, max_request_workers: 20,
        max_connections_per_child: 18446744073709551615, async_request_worker_factor: 3}
access_log: {path: logs/access.log, format: "%h %r"}
error_log: {path: stdout, level: trace8}
status: {path: /status, allow: ["10.0.0.0/8", "fe80::/10", 192.168.1.1]}
)");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->mpm, "worker");
    ASSERT_EQ(config->listen.size(), 3u);
    EXPECT_EQ(config->listen[0].host, "10.0.0.1");
    EXPECT_EQ(config->listen[0].port, 81);
    EXPECT_EQ(config->listen[1].host, "::1");
    EXPECT_EQ(config->listen[1].port, 8443);
    EXPECT_EQ(config->listen[1].text, "[::1]:8443");
    EXPECT_EQ(config->listen[2].host, "");
    EXPECT_EQ(config->listen[2].port, 9000);
    EXPECT_EQ(config->directory_index, (std::vector<std::string>{"index.htm", "default.html"}));
    EXPECT_EQ(config->pid_file, dir_ / "run" / "trident.pid");
    EXPECT_EQ(config->module_dir, "/opt/trident/modules");
    EXPECT_EQ(config->user, "www-data");
    EXPECT_EQ(config->group, "1001");
    EXPECT_EQ(config->server_tokens, "prod");
    EXPECT_EQ(config->cpu_scheduling, "inherit");
    EXPECT_FALSE(config->keep_alive.enabled);
    EXPECT_EQ(config->keep_alive.timeout, 250ms);
    EXPECT_EQ(config->keep_alive.max_requests, 0u);
    EXPECT_EQ(config->timeouts.request_header, 1min);
    EXPECT_EQ(config->timeouts.request_body, 30s);
    EXPECT_EQ(config->timeouts.send, 1h);
    EXPECT_EQ(config->timeouts.graceful_shutdown, 10s);
    EXPECT_EQ(config->limits.request_line, 16u);
    EXPECT_EQ(config->limits.request_fields, 10000u);
    EXPECT_EQ(config->limits.request_field_size, 1048576u);
    EXPECT_EQ(config->limits.request_body, 10000000u);
    EXPECT_EQ(config->prefork.start_servers, 1u);
    EXPECT_EQ(config->prefork.min_spare_servers, 2u);
    EXPECT_EQ(config->prefork.max_spare_servers, 3u);
    EXPECT_EQ(config->prefork.server_limit, 200000u);
    EXPECT_EQ(config->prefork.max_request_workers, 4u);
    EXPECT_EQ(config->prefork.max_connections_per_child, 5u);
    EXPECT_EQ(config->worker.start_servers, 6u);
    EXPECT_EQ(config->worker.min_spare_threads, 7u);
    EXPECT_EQ(config->worker.max_spare_threads, 8u);
    EXPECT_EQ(config->worker.threads_per_child, 9u);
    EXPECT_EQ(config->worker.server_limit, 10u);
    EXPECT_EQ(config->worker.thread_limit, 11u);
    EXPECT_EQ(config->worker.max_request_workers, 12u);
    EXPECT_EQ(config->worker.max_connections_per_child, 13u);
    EXPECT_EQ(config->event.start_servers, 14u);
    EXPECT_EQ(config->event.threads_per_child, 17u);
    EXPECT_EQ(config->event.thread_limit, 20000u);
    EXPECT_EQ(config->event.max_connections_per_child, 18446744073709551615ull);
    EXPECT_EQ(config->event.async_request_worker_factor, 3u);
    EXPECT_TRUE(config->access_log.enabled);
    EXPECT_EQ(config->access_log.path, (dir_ / "logs" / "access.log").string());
    EXPECT_EQ(config->access_log.format, "%h %r");
    EXPECT_EQ(config->error_log.path, "stdout");
    EXPECT_EQ(config->error_log.level, "trace8");
    EXPECT_EQ(config->status.path, "/status");
    EXPECT_EQ(config->status.allow,
              (std::vector<std::string>{"10.0.0.0/8", "fe80::/10", "192.168.1.1"}));
}

TEST_F(ConfigTest, ListenTakesASingleScalar) {
    auto port = load("listen: 8081\n");
    ASSERT_TRUE(port.ok()) << port.error().message;
    ASSERT_EQ(port->listen.size(), 1u);
    EXPECT_EQ(port->listen[0].host, "");
    EXPECT_EQ(port->listen[0].port, 8081);

    auto address = load("listen: 0.0.0.0:65535\n");
    ASSERT_TRUE(address.ok()) << address.error().message;
    EXPECT_EQ(address->listen[0].host, "0.0.0.0");
    EXPECT_EQ(address->listen[0].port, 65535);
}

TEST_F(ConfigTest, BooleansTakeYamlSpellings) {
    for (const char* off : {"false", "no", "off", "Off", "NO"}) {
        auto config = load(std::string("keep_alive: {enabled: ") + off + "}\n");
        ASSERT_TRUE(config.ok()) << off << ": " << config.error().message;
        EXPECT_FALSE(config->keep_alive.enabled) << off;
    }
    for (const char* on : {"true", "yes", "on", "True"}) {
        auto config = load(std::string("keep_alive: {enabled: ") + on + "}\n");
        ASSERT_TRUE(config.ok()) << on << ": " << config.error().message;
        EXPECT_TRUE(config->keep_alive.enabled) << on;
    }
}

TEST_F(ConfigTest, AccessLogCanBeTurnedOff) {
    for (const char* off : {"off", "false", "no"}) {
        auto config = load(std::string("access_log: ") + off + "\n");
        ASSERT_TRUE(config.ok()) << off << ": " << config.error().message;
        EXPECT_FALSE(config->access_log.enabled) << off;
    }
    auto on = load("access_log: on\n");
    ASSERT_TRUE(on.ok()) << on.error().message;
    EXPECT_TRUE(on->access_log.enabled);
    EXPECT_EQ(on->access_log.path, "stderr");
}

TEST_F(ConfigTest, EmptyValuesMeanDefaultsOrUnset) {
    auto config = load("keep_alive:\npid_file:\nuser: ~\n");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->keep_alive.timeout, 5s);
    EXPECT_TRUE(config->pid_file.empty());
    EXPECT_TRUE(config->user.empty());
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigFolder) {
    fs::create_directories(dir_ / "sites" / "a");
    fs::create_directories(dir_ / "etc");
    const fs::path file = write(R"(document_root: ../sites/./a
pid_file: ../run/trident.pid
module_dir: mods
access_log: {path: /var/log/access.log}
error_log: {path: ../logs/error.log}
)",
                                "etc/trident.yaml");
    // Loaded through a relative path: config.file still comes out absolute.
    const fs::path relative = fs::relative(file, fs::current_path());
    ASSERT_TRUE(relative.is_relative());
    auto config = load_config(relative);
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->file, file);
    EXPECT_EQ(config->document_root, fs::canonical(dir_ / "sites" / "a"));
    EXPECT_EQ(config->pid_file, dir_ / "run" / "trident.pid");
    EXPECT_EQ(config->module_dir, dir_ / "etc" / "mods");
    EXPECT_EQ(config->access_log.path, "/var/log/access.log");
    EXPECT_EQ(config->error_log.path, (dir_ / "logs" / "error.log").string());
}

TEST_F(ConfigTest, DocumentRootIsStoredCanonical) {
    fs::create_directory_symlink(dir_ / "www", dir_ / "link");
    auto config = load_config(write("document_root: link\n"));
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->document_root, fs::canonical(dir_ / "www"));
    EXPECT_NE(config->document_root, dir_ / "link");
}

// --- what is refused ------------------------------------------------------------------------

struct ErrorCase {
    std::string yaml;     // after "document_root: www\n", so it starts on line 2
    std::string message;  // exactly, after "FILE:"
};

TEST_F(ConfigTest, EachErrorIsOnePreciseLine) {
    const std::vector<ErrorCase> cases = {
        // Unknown keys, with and without a near miss.
        {"keep_alive: {timout: 5s}\n",
         "2:14: unknown key 'timout' in keep_alive; did you mean 'timeout'?"},
        {"keep_alive:\n  enabled: true\n  max_request: 5\n",
         "4:3: unknown key 'max_request' in keep_alive; did you mean 'max_requests'?"},
        {"mmp: prefork\n", "2:1: unknown key 'mmp' at the top level; did you mean 'mpm'?"},
        {"Listen: 80\n", "2:1: unknown key 'Listen' at the top level; did you mean 'listen'?"},
        {"keep_alive: {zzz: 1}\n",
         "2:14: unknown key 'zzz' in keep_alive; known keys: enabled, timeout, max_requests"},
        {"worker: {async_request_worker_factor: 2}\n",
         "2:10: unknown key 'async_request_worker_factor' in worker; known keys: start_servers, "
         "min_spare_threads, max_spare_threads, threads_per_child, server_limit, thread_limit, "
         "max_request_workers, max_connections_per_child"},
        // Duplicates.
        {"mpm: prefork\nmpm: worker\n",
         "3:1: duplicate key 'mpm' at the top level (first given at line 2)"},
        {"limits:\n  request_line: 100\n  request_line: 200\n",
         "4:3: duplicate key 'request_line' in limits (first given at line 3)"},
        // Choices.
        {"mpm: evnt\n",
         "2:6: mpm: expected one of prefork, worker, event, got 'evnt'; did you mean 'event'?"},
        {"mpm: apache\n", "2:6: mpm: expected one of prefork, worker, event, got 'apache'"},
        {"server_tokens: minimal\n",
         "2:16: server_tokens: expected one of full, prod, got "
         "'minimal'"},
        {"cpu_scheduling: fifo\n",
         "2:17: cpu_scheduling: expected one of batch, inherit, got 'fifo'"},
        {"error_log: {level: warning}\n",
         "2:20: error_log.level: expected one of emerg, alert, crit, error, warn, notice, info, "
         "debug, trace1, trace2, trace3, trace4, trace5, trace6, trace7, trace8, got 'warning'; "
         "did you mean 'warn'?"},
        // Types.
        {"keep_alive: yes\n", "2:13: keep_alive: expected a map, got 'yes'"},
        {"keep_alive: {enabled: maybe}\n",
         "2:23: keep_alive.enabled: expected a boolean (true/false, yes/no, on/off), got 'maybe'"},
        {"keep_alive: {max_requests: abc}\n",
         "2:28: keep_alive.max_requests: expected a non-negative integer, got 'abc'"},
        {"keep_alive: {max_requests: -1}\n",
         "2:28: keep_alive.max_requests: expected a non-negative integer, got '-1'"},
        {"keep_alive: {max_requests: 1.5}\n",
         "2:28: keep_alive.max_requests: expected a non-negative integer, got '1.5'"},
        {"keep_alive: {max_requests: 4294967296}\n",
         "2:28: keep_alive.max_requests: 4294967296 is out of range (0..4294967295)"},
        {"user: [a, b]\n", "2:7: user: expected a non-empty string, got a sequence"},
        {"user: ''\n", "2:7: user: expected a non-empty string, got ''"},
        {"access_log: {format: }\n",
         "2:14: access_log.format: expected a non-empty string, got nothing"},
        {"access_log: maybe\n",
         "2:13: access_log: expected off or a map with path and format, got 'maybe'"},
        {"access_log: {path: stderr, level: info}\n",
         "2:28: unknown key 'level' in access_log; known keys: path, format"},
        {"directory_index: {a: b}\n",
         "2:18: directory_index: expected a sequence or a single value, got a map"},
        {"directory_index: [../secret.html]\n",
         "2:19: directory_index: '../secret.html' is not a plain file name"},
        {"timeouts:\n  send: [1, 2]\n",
         "3:9: timeouts.send: expected a duration such as 5s or 250ms, got a sequence"},
        // Durations and sizes.
        {"keep_alive: {timeout: 5x}\n",
         "2:23: keep_alive.timeout: expected a duration such as 5s or 250ms (units ms, s, m, h), "
         "got '5x'"},
        {"timeouts: {send: 0s}\n", "2:18: timeouts.send: must be greater than 0"},
        {"timeouts: {request_header: 30s, request_header_max: 10s}\n",
         "2:53: timeouts.request_header_max: must be 0 (no maximum) or at least the starting "
         "timeout"},
        {"timeouts: {request_body_max: 5s}\n",
         "2:30: timeouts.request_body_max: must be 0 (no maximum) or at least the starting "
         "timeout"},
        {"timeouts: {request_header: 99999999999999999999h}\n",
         "2:28: timeouts.request_header: duration '99999999999999999999h' is too large: at "
         "most 2147483647s (about 68 years)"},
        {"limits: {request_body: 1.5G}\n",
         "2:24: limits.request_body: expected a size such as 8190, 64KiB or 1GiB, got '1.5G'"},
        {"limits: {request_body: 17179869184GiB}\n",
         "2:24: limits.request_body: size '17179869184GiB' is too large"},
        // Ranges.
        {"limits: {request_line: 15}\n",
         "2:24: limits.request_line: 15 is out of range (16..1048576)"},
        {"limits: {request_fields: 0}\n",
         "2:26: limits.request_fields: 0 is out of range (1..10000)"},
        {"limits: {request_field_size: 1048577}\n",
         "2:30: limits.request_field_size: 1048577 is out of range (16..1048576)"},
        {"prefork: {server_limit: 200001}\n",
         "2:25: prefork.server_limit: 200001 is out of range (0..200000)"},
        {"worker: {server_limit: 20001}\n",
         "2:24: worker.server_limit: 20001 is out of range (0..20000)"},
        {"event: {thread_limit: 20001}\n",
         "2:23: event.thread_limit: 20001 is out of range (0..20000)"},
        // listen.
        {"listen: []\n", "2:9: listen: expected at least one address"},
        {"listen: 0\n", "2:9: listen: '0': port '0' is not a number in 1..65535"},
        {"listen: 65536\n", "2:9: listen: '65536': port '65536' is not a number in 1..65535"},
        {"listen: [\"127.0.0.1:80\", \"1.2.3:80\"]\n",
         "2:26: listen: '1.2.3:80': host '1.2.3' is not a numeric IPv4 address"},
        {"listen: localhost:80\n",
         "2:9: listen: 'localhost:80': host 'localhost' is not a numeric IPv4 address"},
        {"listen: \"[::1]\"\n", "2:9: listen: '[::1]': missing the port, as in [::1]:8080"},
        {"listen: \"[::g]:80\"\n",
         "2:9: listen: '[::g]:80': host '::g' is not a numeric IPv6 address"},
        {"listen: \"::1:80\"\n",
         "2:9: listen: '::1:80': an IPv6 address needs brackets, as in [::1]:8080"},
        {"listen: \"*:80\"\n",
         "2:9: listen: '*:80': missing a numeric host; write only the port to listen on every "
         "address"},
        {"listen: \"127.0.0.1:\"\n",
         "2:9: listen: '127.0.0.1:': port '' is not a number in 1..65535"},
        {"listen: [80, \"127.0.0.1:80\", \"127.000.0.1:80\"]\n",
         "2:30: listen: '127.000.0.1:80': host '127.000.0.1' is not a numeric IPv4 address"},
        {"listen: [\"[::1]:80\", \"[0::1]:80\"]\n", "2:22: listen: '[0::1]:80' is given twice"},
        {"listen:\n  - [80]\n",
         "3:5: listen: expected host:port, [v6]:port or port, got a sequence; quote IPv6 "
         "addresses, as in \"[::1]:8080\""},
        // status.
        {"status: {path: server-status}\n",
         "2:16: status.path: expected a URL path starting with '/', got 'server-status'"},
        {"status: {allow: [\"10.0.0.0/33\"]}\n",
         "2:18: status.allow: '10.0.0.0/33': prefix length must be 0..32"},
        {"status: {allow: [\"::/129\"]}\n",
         "2:18: status.allow: '::/129': prefix length must be 0..128"},
        {"status: {allow: [\"10.0.0.0/\"]}\n",
         "2:18: status.allow: '10.0.0.0/': prefix length must be 0..32"},
        {"status: {allow: localhost}\n",
         "2:17: status.allow: 'localhost' is not a numeric IP address or CIDR block"},
    };
    for (const ErrorCase& c : cases) {
        SCOPED_TRACE(c.yaml);
        EXPECT_EQ(error_of(kRoot + c.yaml), c.message);
    }
}

TEST_F(ConfigTest, DocumentRootIsRequired) {
    EXPECT_EQ(error_of(""), "1:1: document_root is required");
    EXPECT_EQ(error_of("mpm: prefork\n"), "1:1: document_root is required");
    EXPECT_EQ(error_of("document_root: ''\n"),
              "1:16: document_root: expected a non-empty string, got ''");
}

TEST_F(ConfigTest, DocumentRootMustBeAnExistingDirectory) {
    EXPECT_EQ(error_of("document_root: missing\n"),
              "1:16: document_root: '" + (dir_ / "missing").string() + "' does not exist");
    write("", "plain.txt");
    EXPECT_EQ(error_of("document_root: plain.txt\n"),
              "1:16: document_root: '" + (dir_ / "plain.txt").string() + "' is not a directory");
}

/// Loads `file` as the unprivileged user "nobody" in a child process, for checks that root
/// would pass; returns the error message, or "loaded".
std::string load_as_nobody(const fs::path& file) {
    int fds[2];
    if (::pipe(fds) != 0) {
        return "pipe failed";
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
            ::_exit(2);
        }
        auto result = load_config(file);
        const std::string message = result.ok() ? "loaded" : result.error().message;
        const bool written =
            ::write(fds[1], message.data(), message.size()) == ssize_t(message.size());
        ::_exit(written ? 0 : 3);
    }
    ::close(fds[1]);
    std::string message;
    char buffer[512];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) {
        message.append(buffer, std::size_t(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    return message;
}

TEST_F(ConfigTest, DocumentRootMustBeReadableAndSearchable) {
    fs::create_directory(dir_ / "locked");
    fs::permissions(dir_ / "locked", fs::perms::owner_write);
    const fs::path file = write("document_root: locked\n");
    const std::string expected = file.string() + ":1:16: document_root: '" +
                                 (dir_ / "locked").string() +
                                 "' is not readable and searchable: Permission denied";
    if (::geteuid() != 0) {
        auto result = load_config(file);
        ASSERT_FALSE(result.ok());
        EXPECT_EQ(result.error().message, expected);
        return;
    }
    // Root passes every permission check: ask as nobody, who may read the file but not
    // the locked directory.
    fs::permissions(dir_, fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
    fs::permissions(file, fs::perms::others_read, fs::perm_options::add);
    EXPECT_EQ(load_as_nobody(file), expected);
}

TEST_F(ConfigTest, TheTopLevelMustBeOneMap) {
    EXPECT_EQ(error_of("- a\n- b\n"),
              "1:1: expected a map of settings at the top level, got a sequence");
    EXPECT_EQ(error_of("just words\n"),
              "1:1: expected a map of settings at the top level, got 'just words'");
    EXPECT_EQ(error_of(kRoot + "---\nmpm: prefork\n"), "3:1: only one YAML document is allowed");
    EXPECT_EQ(error_of("[a, b]: 1\n"), "1:1: expected a key name at the top level, got a sequence");
}

TEST_F(ConfigTest, SyntaxErrorsCarryTheirPosition) {
    EXPECT_EQ(error_of(kRoot + "listen: [80\n"),
              "3:1: YAML syntax error: end of sequence flow "
              "not found");
    EXPECT_EQ(error_of(kRoot + "mpm: prefork\n\tuser: x\n"),
              "3:1: YAML syntax error: illegal tab when looking for indentation");
    const std::string bad_escape = error_of(kRoot + "user: \"a\\q\"\n");
    EXPECT_EQ(bad_escape.rfind("2:", 0), 0u) << bad_escape;
    EXPECT_NE(bad_escape.find("YAML syntax error: unknown escape character"), std::string::npos)
        << bad_escape;
}

TEST_F(ConfigTest, AnUnreadableFileSaysWhy) {
    const fs::path missing = dir_ / "absent.yaml";
    auto result = load_config(missing);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().message,
              missing.string() + ": cannot read: No such file or directory");

    auto directory = load_config(dir_);
    ASSERT_FALSE(directory.ok());
    EXPECT_EQ(directory.error().message, dir_.string() + ": cannot read: Is a directory");
}

TEST_F(ConfigTest, MessagesNameTheFileAsGiven) {
    write("mpm: nope\n");
    const fs::path relative = fs::relative(dir_ / "trident.yaml", fs::current_path());
    auto result = load_config(relative);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().message.rfind(relative.string() + ":1:6: mpm:", 0), 0u)
        << result.error().message;
}

TEST_F(ConfigTest, QuotedTextStaysOnOneLine) {
    const std::string message = error_of(kRoot + "mpm: \"a\\nb\\tc\\x01\"\n");
    EXPECT_EQ(message, "2:6: mpm: expected one of prefork, worker, event, got 'a\\nb\\tc\\x01'");
}

// --- durations and sizes --------------------------------------------------------------------

// --- static files ---------------------------------------------------------------------------

TEST_F(ConfigTest, StaticSectionDefaultsToApacheLikeBehaviour) {
    auto config = load("");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_TRUE(config->static_files.precompressed);
    EXPECT_FALSE(config->static_files.autoindex);
    EXPECT_TRUE(config->static_files.follow_symlinks);
    EXPECT_TRUE(config->static_files.file_cache);
    EXPECT_EQ(config->static_files.file_cache_valid, std::chrono::milliseconds(100));
}

TEST_F(ConfigTest, StaticSectionIsRead) {
    auto config = load("static: {precompressed: off, autoindex: yes, follow_symlinks: false}\n");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_FALSE(config->static_files.precompressed);
    EXPECT_TRUE(config->static_files.autoindex);
    EXPECT_FALSE(config->static_files.follow_symlinks);

    auto partial = load("static:\n  autoindex: true\n");
    ASSERT_TRUE(partial.ok()) << partial.error().message;
    EXPECT_TRUE(partial->static_files.autoindex);
    EXPECT_TRUE(partial->static_files.precompressed);

    auto cache = load("static: {file_cache_valid: 2s}\n");
    ASSERT_TRUE(cache.ok()) << cache.error().message;
    EXPECT_EQ(cache->static_files.file_cache_valid, std::chrono::seconds(2));
    auto strict = load("static: {file_cache_valid: 0}\n");
    ASSERT_TRUE(strict.ok()) << strict.error().message;
    EXPECT_EQ(strict->static_files.file_cache_valid, std::chrono::milliseconds(0));
}

TEST_F(ConfigTest, StaticSectionErrorsArePrecise) {
    EXPECT_EQ(error_of(kRoot + "static: {autoindx: true}\n"),
              "2:10: unknown key 'autoindx' in static; did you mean 'autoindex'?");
    EXPECT_TRUE(error_of(kRoot + "static: {follow_symlinks: sometimes}\n")
                    .starts_with("2:27: static.follow_symlinks: expected"));
    EXPECT_TRUE(error_of(kRoot + "static: {file_cache_valid: soon}\n")
                    .starts_with("2:28: static.file_cache_valid: "));
    EXPECT_EQ(error_of(kRoot + "statik: {}\n"),
              "2:1: unknown key 'statik' at the top level; did you mean 'static'?");
}

TEST(ParseDuration, AcceptsNumbersWithUnits) {
    const std::vector<std::pair<std::string, Duration>> good = {
        {"0", 0ms},   {"5", 5s},    {"0s", 0ms},  {"250ms", 250ms}, {"5s", 5s},
        {"2m", 2min}, {"1h", 1h},   {"007s", 7s}, {"1000ms", 1s},   {"90m", 90min},
        {"0ms", 0ms}, {"24h", 24h}, {"3600", 1h},
    };
    for (const auto& [text, expected] : good) {
        auto parsed = parse_duration(text);
        ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.error().message;
        EXPECT_EQ(parsed.value(), expected) << text;
    }
}

TEST(ParseDuration, RefusesEverythingElse) {
    for (const char* text : {"", "s", "-5s", "+5s", "5x", "1.5s", "5 s", " 5s", "5s ", "5S", "5sec",
                             "5d", "ms", "5ms5", "0x10", "1e3"}) {
        auto parsed = parse_duration(text);
        ASSERT_FALSE(parsed.ok()) << "'" << text << "' parsed";
        EXPECT_EQ(
            parsed.error().message,
            std::string("expected a duration such as 5s or 250ms (units ms, s, m, h), got '") +
                text + "'");
    }
    // Past 2^31 - 1 seconds, as Apache's: a duration of 292 years or more wrapped around
    // when added to a clock reading, and a timeout meant as "never" struck at once.
    for (const char* text : {"9223372036854775808ms", "9223372036854776s", "99999999999999999999",
                             "9999999999", "2147483648s", "2147483647001ms", "596524h"}) {
        auto parsed = parse_duration(text);
        ASSERT_FALSE(parsed.ok()) << "'" << text << "' parsed";
        EXPECT_EQ(parsed.error().message,
                  std::string("duration '") + text +
                      "' is too large: at most 2147483647s (about 68 years)");
    }
    auto largest = parse_duration("2147483647s");
    ASSERT_TRUE(largest.ok());
    EXPECT_EQ(largest->count(), 2147483647000LL);
    EXPECT_TRUE(parse_duration("596523h").ok());
}

TEST(ParseSize, AcceptsBinaryAndDecimalSuffixes) {
    const std::vector<std::pair<std::string, std::uint64_t>> good = {
        {"0", 0},
        {"8190", 8190},
        {"1B", 1},
        {"1K", 1024},
        {"1k", 1024},
        {"8KiB", 8192},
        {"1M", 1048576},
        {"2MiB", 2097152},
        {"1G", 1073741824},
        {"1GiB", 1073741824},
        {"1T", 1099511627776},
        {"1TiB", 1099511627776},
        {"1KB", 1000},
        {"1kB", 1000},
        {"10MB", 10000000},
        {"3GB", 3000000000},
        {"2TB", 2000000000000},
        {"18446744073709551615", 18446744073709551615ull},
        {"16777215TiB", 16777215ull << 40},
    };
    for (const auto& [text, expected] : good) {
        auto parsed = parse_size(text);
        ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.error().message;
        EXPECT_EQ(parsed.value(), expected) << text;
    }
}

TEST(ParseSize, RefusesEverythingElse) {
    for (const char* text : {"", "K", "-1", "+1", "1.5G", "1 KiB", "1kib", "1KIB", "1Kb", "1b",
                             "1g", "1GiBs", "1PiB", "1e6", "0x10", "1_000"}) {
        auto parsed = parse_size(text);
        ASSERT_FALSE(parsed.ok()) << "'" << text << "' parsed";
        EXPECT_EQ(parsed.error().message,
                  std::string("expected a size such as 8190, 64KiB or 1GiB, got '") + text + "'");
    }
    for (const char* text : {"18446744073709551616", "16777216TiB", "18446744073709552KB"}) {
        auto parsed = parse_size(text);
        ASSERT_FALSE(parsed.ok()) << "'" << text << "' parsed";
        EXPECT_EQ(parsed.error().message, std::string("size '") + text + "' is too large");
    }
}

// --- near-miss suggestions ------------------------------------------------------------------

TEST(NearestName, SuggestsOnlyCloseNames) {
    using config_reader::edit_distance;
    using config_reader::nearest_name;
    EXPECT_EQ(edit_distance("timout", "timeout"), 1u);
    EXPECT_EQ(edit_distance("mmp", "mpm"), 1u);  // an adjacent swap counts once
    EXPECT_EQ(edit_distance("MPM", "mpm"), 0u);
    EXPECT_EQ(edit_distance("", "abc"), 3u);

    const std::vector<std::string> keys = {"enabled", "timeout", "max_requests"};
    EXPECT_EQ(nearest_name("timout", keys), "timeout");
    EXPECT_EQ(nearest_name("max_reqs", keys), "max_requests");
    EXPECT_EQ(nearest_name("enable", keys), "enabled");
    EXPECT_EQ(nearest_name("zzz", keys), "");
    EXPECT_EQ(nearest_name("x", {"mpm"}), "");
}

}  // namespace
}  // namespace trident
