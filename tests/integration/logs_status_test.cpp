// Access log lines, /server-status and the outside tools that read them, against the real
// binary under every MPM: the log's lines byte for byte (common, combined, a custom format
// with escaping), the `?auto` keys in mod_status's order, 403 for addresses outside
// status.allow, prometheus-apache-exporter scraping `?auto`, and goaccess reading the
// combined log without an invalid line.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace trident::test {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    return lines;
}

/// The log's lines once it holds at least `count` (bounded wait), with each [time] field
/// replaced by "[TIME]" after checking its shape.
std::vector<std::string> wait_for_lines(const fs::path& log, std::size_t count) {
    static const std::regex kTime(R"(\[\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\])");
    std::vector<std::string> lines;
    eventually(
        [&] {
            lines = lines_of(fs::exists(log) ? read_file(log) : "");
            return lines.size() >= count;
        },
        kIoTimeout, Millis(20));
    for (std::string& line : lines) {
        line = std::regex_replace(line, kTime, "[TIME]");
    }
    return lines;
}

bool contains(const std::vector<std::string>& lines, const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string joined(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) {
        text += "  " + line + "\n";
    }
    return text;
}

/// A server with the access log in `format` at <dir>/access.log.
class AccessLogTest : public ServerTest {
protected:
    void configure(ServerConfig& config) override {
        log_ = dir_->path() / "access.log";
        // Single-quoted YAML keeps backslashes and double quotes as they are.
        std::string quoted;
        for (const char c : format()) {
            quoted += c == '\'' ? std::string("''") : std::string(1, c);
        }
        config.access_log = "{path: " + log_.string() + ", format: '" + quoted + "'}";
    }
    virtual std::string format() const { return "combined"; }

    fs::path log_;
};

TEST_P(AccessLogTest, CombinedLinesAreApachesByteForByte) {
    const std::string fields =
        "Referer: http://ref.test/page?q=1\r\nUser-Agent: logs-test/1.0 \"quoted\"\r\n";
    const auto hello = get("/hello.txt", fields);
    ASSERT_TRUE(hello) << last_error_;
    ASSERT_EQ(hello->status, 200);
    const auto missing = get("/no-such-file", "User-Agent: logs-test/2.0\r\n");
    ASSERT_TRUE(missing) << last_error_;
    ASSERT_EQ(missing->status, 404);

    const auto lines = wait_for_lines(log_, 2);
    ASSERT_EQ(lines.size(), 2u) << "MPM " << GetParam() << ":\n" << joined(lines);
    // Two children may write in either order; each line must be exact.
    const std::string expected_hello =
        "127.0.0.1 - - [TIME] \"GET /hello.txt HTTP/1.1\" 200 " +
        std::to_string(site_.text.size()) +
        " \"http://ref.test/page?q=1\" \"logs-test/1.0 \\\"quoted\\\"\"";
    const std::string expected_missing =
        "127.0.0.1 - - [TIME] \"GET /no-such-file HTTP/1.1\" 404 " +
        missing->header("Content-Length").value_or("?") + " \"-\" \"logs-test/2.0\"";
    EXPECT_TRUE(contains(lines, expected_hello))
        << "MPM " << GetParam() << " wanted\n  " << expected_hello << "\ngot\n"
        << joined(lines);
    EXPECT_TRUE(contains(lines, expected_missing))
        << "MPM " << GetParam() << " wanted\n  " << expected_missing << "\ngot\n"
        << joined(lines);
}

TEST_P(AccessLogTest, GoaccessReadsEveryLine) {
    const fs::path goaccess = "/usr/bin/goaccess";
    if (!fs::exists(goaccess)) {
        GTEST_SKIP() << "goaccess is not installed (make deps installs it)";
    }
    for (const char* target : {"/", "/hello.txt", "/missing", "/sub/", "/big.bin"}) {
        ASSERT_TRUE(get(target, "Referer: http://ref.test/\r\nUser-Agent: Mozilla/5.0 (X11)\r\n"))
            << last_error_;
    }
    ASSERT_EQ(wait_for_lines(log_, 5).size(), 5u);
    const fs::path report = dir_->path() / "report.json";
    const CommandResult run =
        run_command({goaccess.string(), log_.string(), "--log-format=COMBINED",
                     "--no-global-config", "-o", report.string()},
                    dir_->path());
    ASSERT_TRUE(run.ok()) << run.err;
    const std::string json = read_file(report);
    EXPECT_NE(json.find("\"valid_requests\": 5,"), std::string::npos) << json.substr(0, 600);
    EXPECT_NE(json.find("\"failed_requests\": 0,"), std::string::npos) << json.substr(0, 600);
}

TEST_P(AccessLogTest, LogrotateThenGracefulRestartWritesToTheNewFile) {
    ASSERT_TRUE(get("/hello.txt")) << last_error_;
    ASSERT_EQ(wait_for_lines(log_, 1).size(), 1u);

    // What logrotate does: rename the file, then `postrotate trident -k graceful`.
    const fs::path rotated = log_.string() + ".1";
    fs::rename(log_, rotated);
    const CommandResult graceful = run_command(
        {TRIDENT_BINARY, "-k", "graceful", "-f", server_->config_file().string()}, dir_->path());
    ASSERT_TRUE(graceful.ok()) << graceful.out << graceful.err;

    // New generation's children log to a fresh file at the old path; a request taken by an
    // old child while it still finishes may land in the rotated one, as with Apache.
    bool fresh = false;
    for (int i = 0; i < 100 && !fresh; ++i) {
        ASSERT_TRUE(get("/hello.txt?after=" + std::to_string(i))) << last_error_;
        fresh = fs::exists(log_) && read_file(log_).find("?after=") != std::string::npos;
        if (!fresh) {
            std::this_thread::sleep_for(Millis(100));
        }
    }
    EXPECT_TRUE(fresh) << "no request reached " << log_ << " after the graceful restart";
    const auto old_lines = lines_of(read_file(rotated));
    ASSERT_FALSE(old_lines.empty());
    EXPECT_NE(old_lines.front().find("\"GET /hello.txt HTTP/1.1\" 200"), std::string::npos)
        << joined(old_lines);
}

INSTANTIATE_TEST_SUITE_P(Mpm, AccessLogTest, ::testing::ValuesIn(kMpms), mpm_test_name);

class CommonLogTest : public AccessLogTest {
protected:
    std::string format() const override { return "common"; }
};

TEST_P(CommonLogTest, CommonLineHasNoFieldsAfterTheSize) {
    const auto head = fetch(make_request("HEAD", "/hello.txt"), true);
    ASSERT_TRUE(head) << last_error_;
    const auto lines = wait_for_lines(log_, 1);
    // HEAD sends no body: %b is "-".
    EXPECT_EQ(lines,
              std::vector<std::string>{"127.0.0.1 - - [TIME] \"HEAD /hello.txt HTTP/1.1\" 200 -"})
        << "MPM " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Mpm, CommonLogTest, ::testing::ValuesIn(kMpms), mpm_test_name);

class CustomLogTest : public AccessLogTest {
protected:
    std::string format() const override {
        return "%m %U%q %H %>s %B %b [%{X-Test}i] [%{Content-Type}o] %X %k %p %{remote}p %I";
    }
};

TEST_P(CustomLogTest, EscapesAndCountsKeepAliveRequests) {
    RawClient client;
    ASSERT_TRUE(client.connect(port())) << client.error();
    const std::string first = make_request("GET", "/hello.txt?a=1&b=%22",
                                           "X-Test: tab\there \"q\" back\\slash \xc3\xa9\r\n");
    const std::string second = make_request("GET", "/hello.txt", "Connection: close\r\n");
    ASSERT_TRUE(client.send(first + second)) << client.error();
    const auto responses = client.read_responses(2);
    ASSERT_EQ(responses.size(), 2u) << client.error();
    const std::string type = responses[0].header("Content-Type").value_or("?");
    const std::string size = std::to_string(site_.text.size());
    EXPECT_TRUE(client.wait_closed());
    const auto lines = wait_for_lines(log_, 2);
    ASSERT_EQ(lines.size(), 2u) << joined(lines);
    // Ports: the server's, then some client port; %I counts the request head's bytes.
    const std::string port_text = " " + std::to_string(port()) + " ";
    const std::string first_line_start =
        "GET /hello.txt?a=1&b=%22 HTTP/1.1 200 " + size + " " + size +
        " [tab\\there \\\"q\\\" back\\\\slash \\xc3\\xa9] [" + type + "] + 0" + port_text;
    const std::string second_line_start =
        "GET /hello.txt HTTP/1.1 200 " + size + " " + size + " [-] [" + type + "] - 1" + port_text;
    EXPECT_TRUE(lines[0].starts_with(first_line_start))
        << "MPM " << GetParam() << "\nwanted " << first_line_start << "\ngot    " << lines[0];
    EXPECT_TRUE(lines[1].starts_with(second_line_start))
        << "MPM " << GetParam() << "\nwanted " << second_line_start << "\ngot    " << lines[1];
    EXPECT_TRUE(lines[0].ends_with(" " + std::to_string(first.size()))) << lines[0];
    EXPECT_TRUE(lines[1].ends_with(" " + std::to_string(second.size()))) << lines[1];
}

INSTANTIATE_TEST_SUITE_P(Mpm, CustomLogTest, ::testing::ValuesIn(kMpms), mpm_test_name);

/// The access log already at the server's file size limit (`ulimit -f`, systemd's
/// LimitFSIZE=): each write of it fails.
class FileSizeLimitTest : public AccessLogTest {
protected:
    static constexpr std::uint64_t kLimit = 64 * 1024;

    void configure(ServerConfig& config) override {
        AccessLogTest::configure(config);
        write_file(log_, std::string(kLimit - 1, '#') + "\n");
        config.file_size_limit = kLimit;
    }
};

TEST_P(FileSizeLimitTest, ALogAtTheLimitDropsItsLinesAndTheServerServesOn) {
    for (int i = 0; i < 10; ++i) {
        const auto response = fetch(make_request("GET", "/hello.txt", "Connection: close\r\n"));
        ASSERT_TRUE(response) << "request " << i << ": " << last_error_ << "\n"
                              << server_->output();
        EXPECT_EQ(response->status, 200);
    }
    // SIGXFSZ is ignored, as Apache does: the write fails with EFBIG and says so, where the
    // signal's default action killed the child that wrote the line.
    EXPECT_TRUE(eventually([&] {
        return server_->output().find(": File too large; its lines are dropped") !=
               std::string::npos;
    })) << server_->output();
    EXPECT_EQ(server_->output().find("killed by signal"), std::string::npos) << server_->output();
    EXPECT_EQ(fs::file_size(log_), kLimit);
}

INSTANTIATE_TEST_SUITE_P(Mpm, FileSizeLimitTest, ::testing::ValuesIn(kMpms), mpm_test_name);

TEST(AccessLogConfig, BadFormatIsAConfigErrorWithItsPosition) {
    TempDir dir;
    ServerConfig config;
    config.document_root = dir.path();
    config.access_log = "{path: stderr, format: '%h %Z'}";
    const fs::path file = dir.path() / "trident.yaml";
    write_file(file, render_config(config, 8080, dir.path() / "trident.pid"));
    const CommandResult test = run_command({TRIDENT_BINARY, "-t", "-f", file.string()}, dir.path());
    EXPECT_EQ(test.exit_code(), 1) << test.out << test.err;
    const std::string output = test.out + test.err;
    EXPECT_NE(output.find(file.string() + ":"), std::string::npos) << output;
    EXPECT_NE(output.find("access_log.format: unknown directive '%Z' at position 4"),
              std::string::npos)
        << output;
}

// --- /server-status ----------------------------------------------------------------------

using StatusTest = ServerTest;

/// mod_status 2.4's `?auto` keys in order, less the ones it prints only sometimes
/// (CPULoad with CPU time, ReqPerSec and BytesPerSec with uptime, *PerReq with accesses).
const std::vector<std::string> kAutoKeys = {"ServerVersion",
                                            "ServerMPM",
                                            "Server Built",
                                            "CurrentTime",
                                            "RestartTime",
                                            "ParentServerConfigGeneration",
                                            "ParentServerMPMGeneration",
                                            "ServerUptimeSeconds",
                                            "ServerUptime",
                                            "Load1",
                                            "Load5",
                                            "Load15",
                                            "Total Accesses",
                                            "Total kBytes",
                                            "Total Duration",
                                            "CPUUser",
                                            "CPUSystem",
                                            "CPUChildrenUser",
                                            "CPUChildrenSystem",
                                            "Uptime",
                                            "BusyWorkers",
                                            "GracefulWorkers",
                                            "IdleWorkers",
                                            "Processes",
                                            "Stopping",
                                            "ConnsTotal",
                                            "ConnsAsyncWaitIO",
                                            "ConnsAsyncWriting",
                                            "ConnsAsyncKeepAlive",
                                            "ConnsAsyncClosing",
                                            "Scoreboard"};

TEST_P(StatusTest, AutoHasModStatusKeysInOrder) {
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(get("/hello.txt")) << last_error_;
    }
    const std::string url = "http://127.0.0.1:" + std::to_string(port()) + "/server-status?auto";
    const CurlResult curl = run_curl({"-D", (dir_->path() / "head").string()}, url, dir_->path());
    ASSERT_EQ(curl.http_code, 200) << curl.command.err;
    const std::string head = read_file(dir_->path() / "head");
    EXPECT_NE(head.find("Cache-Control: no-cache"), std::string::npos) << head;
    const std::vector<std::string> lines = lines_of(curl.body);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0], "127.0.0.1");
    std::vector<std::string> keys;
    std::string scoreboard;
    std::uint64_t accesses = 0;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const std::string key = lines[i].substr(0, lines[i].find(':'));
        if (key == "Total Accesses") {
            accesses = std::stoull(lines[i].substr(key.size() + 2));
        }
        if (key == "Scoreboard") {
            scoreboard = lines[i].substr(key.size() + 2);
        }
        if (key != "CPULoad" && key != "ReqPerSec" && key != "BytesPerSec" &&
            key != "BytesPerReq" && key != "DurationPerReq") {
            keys.push_back(key);
        }
    }
    std::vector<std::string> expected = kAutoKeys;
    if (GetParam() != "event") {  // mod_status prints these for an asynchronous MPM only
        std::erase_if(expected, [](const std::string& key) {
            return key == "Processes" || key == "Stopping" || key.starts_with("Conns");
        });
    }
    EXPECT_EQ(keys, expected) << "MPM " << GetParam() << ":\n" << curl.body;
    EXPECT_GE(accesses, 3u) << curl.body;
    EXPECT_NE(curl.body.find("\nServerMPM: " + GetParam() + "\n"), std::string::npos) << curl.body;
    EXPECT_FALSE(scoreboard.empty());
    EXPECT_EQ(scoreboard.find_first_not_of("_SRWKDCLGI."), std::string::npos) << scoreboard;

    const CurlResult json = run_curl(
        {}, "http://127.0.0.1:" + std::to_string(port()) + "/server-status?json", dir_->path());
    EXPECT_EQ(json.http_code, 200);
    EXPECT_NE(json.body.find("\"ServerMPM\": \"" + GetParam() + "\""), std::string::npos)
        << json.body;
    const CurlResult html =
        run_curl({}, "http://127.0.0.1:" + std::to_string(port()) + "/server-status", dir_->path());
    EXPECT_EQ(html.http_code, 200);
    EXPECT_NE(html.body.find("Server MPM: " + GetParam()), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Mpm, StatusTest, ::testing::ValuesIn(kMpms), mpm_test_name);

using StatusRestartTest = ServerTest;

/// The numbers of an `?auto` page, by key (those that parse as numbers).
std::map<std::string, double> auto_numbers(const std::string& body) {
    std::map<std::string, double> numbers;
    for (const std::string& line : lines_of(body)) {
        const std::size_t colon = line.find(": ");
        if (colon != std::string::npos) {
            try {
                numbers[line.substr(0, colon)] = std::stod(line.substr(colon + 2));
            } catch (const std::exception&) {
            }
        }
    }
    return numbers;
}

TEST_P(StatusRestartTest, CountersAndUptimeStartTogetherAcrossRestarts) {
    // As Apache: a graceful restart keeps the restart time and the totals, a restart
    // (SIGHUP) starts both over. Reset apart (the uptime, not the totals), they made
    // ReqPerSec read 2e6 a second after a reload.
    const std::string url = "http://127.0.0.1:" + std::to_string(port()) + "/server-status?auto";
    // Empty when the page could not be had (a request cut by SIGHUP's stop of the old
    // children): the polls below try again.
    auto status = [&] {
        const CurlResult curl = run_curl({}, url, dir_->path());
        return curl.http_code == 200 ? auto_numbers(curl.body) : std::map<std::string, double>{};
    };
    auto value = [](const std::map<std::string, double>& numbers, const std::string& key) {
        const auto found = numbers.find(key);
        return found == numbers.end() ? -1.0 : found->second;
    };
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(get("/hello.txt")) << last_error_;
    }
    std::this_thread::sleep_for(Millis(2100));  // an uptime of two seconds at least
    const auto before = status();
    ASSERT_GE(value(before, "Total Accesses"), 5.0);
    ASSERT_GE(value(before, "ServerUptimeSeconds"), 2.0);

    ASSERT_EQ(::kill(server_->pid(), SIGUSR1), 0);
    std::map<std::string, double> graceful;
    ASSERT_TRUE(eventually([&] {
        graceful = status();
        return value(graceful, "ParentServerConfigGeneration") == 2;
    }));
    EXPECT_GE(value(graceful, "ServerUptimeSeconds"), value(before, "ServerUptimeSeconds"))
        << "a graceful restart reset the uptime";
    EXPECT_GT(value(graceful, "Total Accesses"), value(before, "Total Accesses"))
        << "a graceful restart lost the totals";

    const auto sighup = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(server_->pid(), SIGHUP), 0);
    std::map<std::string, double> hard;
    ASSERT_TRUE(eventually([&] {
        hard = status();
        return value(hard, "ParentServerConfigGeneration") == 3;
    }));
    // The uptime counts from the restart: at most the whole seconds since the signal.
    const double since =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - sighup).count();
    EXPECT_LE(value(hard, "ServerUptimeSeconds"), since + 1) << "SIGHUP kept the uptime";
    EXPECT_LT(value(hard, "Total Accesses"), 5.0) << "SIGHUP kept the totals";
}

INSTANTIATE_TEST_SUITE_P(Mpm, StatusRestartTest, ::testing::Values("worker"), mpm_test_name);

class StatusDeniedTest : public ServerTest {
protected:
    void configure(ServerConfig& config) override {
        config.extra_yaml = "status: {path: /server-status, allow: [\"10.0.0.0/8\", \"::2\"]}\n";
    }
};

TEST_P(StatusDeniedTest, LoopbackOutsideAllowIsForbidden) {
    const auto status = get("/server-status?auto");
    ASSERT_TRUE(status) << last_error_;
    EXPECT_EQ(status->status, 403) << status->head_text();
    EXPECT_EQ(status->body.find("Scoreboard"), std::string::npos);
    const auto file = get("/hello.txt");
    ASSERT_TRUE(file) << last_error_;
    EXPECT_EQ(file->status, 200);
}

INSTANTIATE_TEST_SUITE_P(Mpm, StatusDeniedTest, ::testing::ValuesIn(kMpms), mpm_test_name);

/// Over [::1]: the default allow list (with "::1") admits the client, and the access log
/// shows its IPv6 address. (Refusals of IPv6 clients are unit-tested in AllowList.)
class StatusIpv6Test : public ServerTest {
protected:
    void SetUp() override {
        if (!ipv6_loopback_available()) {
            GTEST_SKIP() << "cannot bind [::1] on this machine";
        }
        ServerTest::SetUp();
    }
    void configure(ServerConfig& config) override {
        config.host = "::1";
        log_ = dir_->path() / "access.log";
        config.access_log = "{path: " + log_.string() + ", format: '%a %>s %U'}";
    }
    fs::path log_;
};

TEST_P(StatusIpv6Test, Ipv6ClientIsCheckedAndLogged) {
    const auto status = get("/server-status?auto");
    ASSERT_TRUE(status) << last_error_;
    EXPECT_EQ(status->status, 200) << status->head_text();
    EXPECT_TRUE(status->body.starts_with("localhost\nServerVersion: "))
        << status->body.substr(0, 200);
    EXPECT_EQ(wait_for_lines(log_, 1), std::vector<std::string>{"::1 200 /server-status"});
}

INSTANTIATE_TEST_SUITE_P(Mpm, StatusIpv6Test, ::testing::Values("event"), mpm_test_name);

/// A background process started by the test, stopped by its own pid.
class ChildProcess {
public:
    ChildProcess(const std::vector<std::string>& argv, const fs::path& output) {
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                ::dup2(fd, STDOUT_FILENO);
                ::dup2(fd, STDERR_FILENO);
            }
            std::vector<char*> args;
            for (const std::string& arg : argv) {
                args.push_back(const_cast<char*>(arg.c_str()));
            }
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
    }
    ~ChildProcess() {
        if (pid_ <= 0) {
            return;
        }
        ::kill(pid_, SIGTERM);
        const auto deadline = Clock::now() + kStopTimeout;
        while (::waitpid(pid_, nullptr, WNOHANG) == 0) {
            if (Clock::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, nullptr, 0);
                break;
            }
            std::this_thread::sleep_for(Millis(20));
        }
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    bool started() const { return pid_ > 0; }

private:
    pid_t pid_ = -1;
};

TEST_P(StatusTest, PrometheusApacheExporterScrapesAuto) {
    const fs::path exporter = "/usr/bin/prometheus-apache-exporter";
    if (!fs::exists(exporter)) {
        GTEST_SKIP() << "prometheus-apache-exporter is not installed (make deps installs it)";
    }
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(get("/hello.txt")) << last_error_;
    }
    const std::uint16_t metrics_port = free_port();
    ASSERT_NE(metrics_port, 0);
    const std::string listen = "127.0.0.1:" + std::to_string(metrics_port);
    ChildProcess process(
        {exporter.string(), "--telemetry.address=" + listen,
         "--scrape_uri=http://127.0.0.1:" + std::to_string(port()) + "/server-status?auto"},
        dir_->path() / "exporter.out");
    ASSERT_TRUE(process.started());
    CurlResult metrics;
    eventually(  // until the exporter listens
        [&] {
            metrics = run_curl({}, "http://" + listen + "/metrics", dir_->path());
            return metrics.http_code == 200;
        },
        kStartTimeout, Millis(100));
    ASSERT_EQ(metrics.http_code, 200) << read_file(dir_->path() / "exporter.out");
    const std::string& text = metrics.body;
    EXPECT_NE(text.find("\napache_up 1\n"), std::string::npos)
        << "MPM " << GetParam() << ": " << read_file(dir_->path() / "exporter.out");
    std::smatch accesses;
    ASSERT_TRUE(std::regex_search(text, accesses, std::regex(R"(\napache_accesses_total (\d+)\n)")))
        << text.substr(0, 2000);
    EXPECT_GE(std::stoull(accesses[1]), 4u);
    EXPECT_TRUE(std::regex_search(text, std::regex(R"(\napache_scoreboard\{state="idle"\} \d+\n)")))
        << text.substr(0, 2000);
    EXPECT_TRUE(std::regex_search(text, std::regex(R"(\napache_workers\{state="idle"\} \d+\n)")))
        << text.substr(0, 2000);
}

}  // namespace
}  // namespace trident::test
