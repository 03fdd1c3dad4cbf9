#include "log/access_log.hpp"

#include "log/error_log.hpp"

#include "file_size_limit.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace trident::log {
namespace {

namespace fs = std::filesystem;

class AccessLogTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "trident-access-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
        std::strcpy(endpoints_.client, "127.0.0.1");
        request_.method_text = "GET";
        request_.target = "/";
        record_.request = &request_;
        record_.status = 200;
        record_.endpoints = &endpoints_;
        record_.received = std::chrono::system_clock::now();
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::unique_ptr<AccessLog> open(const std::string& format = "%h \"%r\" %>s") {
        AccessLogConfig config;
        config.path = (dir_ / "access.log").string();
        config.format = format;
        auto log = AccessLog::open(config);
        EXPECT_TRUE(log) << log.error().message;
        return log ? std::move(log.value()) : nullptr;
    }
    std::string contents(const std::string& name = "access.log") {
        std::ifstream in(dir_ / name);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

    fs::path dir_;
    Endpoints endpoints_;
    http::Request request_;
    AccessRecord record_;
};

TEST_F(AccessLogTest, OffGivesNoLog) {
    AccessLogConfig config;
    config.enabled = false;
    auto log = AccessLog::open(config);
    ASSERT_TRUE(log);
    EXPECT_EQ(log.value(), nullptr);
}

TEST_F(AccessLogTest, BadFormatOrPathIsAnError) {
    AccessLogConfig config;
    config.path = (dir_ / "access.log").string();
    config.format = "%Z";
    EXPECT_FALSE(AccessLog::open(config));
    config.format = "common";
    config.path = (dir_ / "missing" / "access.log").string();
    auto log = AccessLog::open(config);
    ASSERT_FALSE(log);
    EXPECT_NE(log.error().message.find("cannot open access log"), std::string::npos);
}

TEST_F(AccessLogTest, LinesWaitInTheThreadBufferUntilFlushed) {
    auto log = open();
    log->write(record_);
    EXPECT_EQ(contents(), "");  // buffered
    log->flush();
    EXPECT_EQ(contents(), "127.0.0.1 \"GET / HTTP/1.1\" 200\n");
}

TEST_F(AccessLogTest, FullBufferIsWrittenInWholeLines) {
    auto log = open();
    const std::string line = "127.0.0.1 \"GET / HTTP/1.1\" 200\n";
    ASSERT_EQ(log->flush_bytes(), AccessLog::kFileFlushBytes) << "a regular file";
    const std::size_t per_flush = (log->flush_bytes() - 1) / line.size();
    for (std::size_t i = 0; i < per_flush; ++i) {
        log->write(record_);
    }
    EXPECT_EQ(contents(), "") << "written before flush_bytes() were buffered";
    log->write(record_);
    const std::string written = contents();
    EXPECT_FALSE(written.empty()) << "nothing written after more than flush_bytes()";
    EXPECT_LE(written.size(), log->flush_bytes());
    EXPECT_EQ(written.size() % line.size(), 0u) << "a partial line was written";
    log->flush();
    EXPECT_EQ(contents().size(), (per_flush + 1) * line.size());
}

TEST_F(AccessLogTest, APipeGetsWritesNoLargerThanPipeBuf) {
    const fs::path fifo = dir_ / "access.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // A reader first, so that the log's open for writing does not wait for one.
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(reader, 0);
    AccessLogConfig config;
    config.path = fifo.string();
    config.format = "%h \"%r\" %>s";
    auto log = AccessLog::open(config);
    ASSERT_TRUE(log) << log.error().message;
    EXPECT_EQ(log.value()->flush_bytes(), AccessLog::kFlushBytes);
    log.value().reset();
    ::close(reader);
}

TEST_F(AccessLogTest, ThreadsNeverInterleaveAndExitFlushes) {
    auto log = open();
    constexpr int kThreads = 4;
    constexpr int kLines = 500;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            http::Request request = request_;
            const std::string target = "/thread-" + std::to_string(t);
            request.target = target;
            AccessRecord record = record_;
            record.request = &request;
            for (int i = 0; i < kLines; ++i) {
                log->write(record);
            }
        });  // the thread's exit writes out what it still holds
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    std::istringstream lines(contents());
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) {
        ++count;
        EXPECT_TRUE(line.starts_with("127.0.0.1 \"GET /thread-") &&
                    line.ends_with(" HTTP/1.1\" 200"))
            << line;
    }
    EXPECT_EQ(count, kThreads * kLines);
}

TEST_F(AccessLogTest, ForkedChildDoesNotRepeatTheParentsPendingLines) {
    auto log = open();
    log->write(record_);  // pending in this thread's buffer when the child is forked
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        log->flush();
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_EQ(contents(), "") << "the child wrote the parent's line";
    log->flush();
    EXPECT_EQ(contents(), "127.0.0.1 \"GET / HTTP/1.1\" 200\n");
}

TEST_F(AccessLogTest, AFileLeftEndingInsideALineIsEndedBeforeTheFirstLine) {
    // What a full disk leaves when it cuts a line short and the server is then restarted.
    {
        std::ofstream out(dir_ / "access.log");
        out << "127.0.0.1 \"GET /cut";
    }
    auto log = open();
    ASSERT_NE(log, nullptr);
    log->write(record_);
    log->flush();
    EXPECT_EQ(contents(), "127.0.0.1 \"GET /cut\n127.0.0.1 \"GET / HTTP/1.1\" 200\n");
}

TEST_F(AccessLogTest, ALineThatCannotBeEndedAtOpenIsAFailureSaidLikeAnyOther) {
    const fs::path error_file = dir_ / "error.log";
    ASSERT_TRUE(configure(ErrorLogConfig{error_file.string(), "info"}));
    // Long enough that the error log's line fits under the same limit.
    const std::string cut = "127.0.0.1 \"GET /" + std::string(400, 'a');
    {
        std::ofstream out(dir_ / "access.log");
        out << cut;
    }
    // Still full: not even the newline fits, at open or at the first write.
    FileSizeLimit limit;
    ASSERT_TRUE(limit.set(cut.size()));
    auto log = open();
    if (log != nullptr) {
        log->write(record_);
        log->flush();
    }
    ASSERT_TRUE(limit.lift());
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(configure(ErrorLogConfig{}));
    EXPECT_EQ(contents(), cut);
    const std::string errors = contents("error.log");
    EXPECT_NE(errors.find("cannot write to access log " + (dir_ / "access.log").string() +
                          ": File too large; its lines are dropped"),
              std::string::npos)
        << errors;
}

TEST_F(AccessLogTest, FullDiskIsReportedOnceToTheErrorLog) {
    if (!fs::exists("/dev/full")) {
        GTEST_SKIP() << "no /dev/full to simulate a full disk";
    }
    const fs::path error_file = dir_ / "error.log";
    ASSERT_TRUE(configure(ErrorLogConfig{error_file.string(), "info"}));
    AccessLogConfig config;
    config.path = "/dev/full";
    config.format = "common";
    auto log = AccessLog::open(config);
    ASSERT_TRUE(log) << log.error().message;
    for (int i = 0; i < 3; ++i) {
        log.value()->write(record_);
        log.value()->flush();  // ENOSPC each time: the lines are dropped, serving goes on
    }
    ASSERT_TRUE(configure(ErrorLogConfig{}));  // back to stderr
    const std::string errors = contents("error.log");
    const std::string message = "cannot write to access log /dev/full: No space left on device";
    const std::size_t first = errors.find(message);
    EXPECT_NE(first, std::string::npos) << errors;
    EXPECT_EQ(errors.find(message, first + 1), std::string::npos) << "reported twice: " << errors;
}

TEST_F(AccessLogTest, ALineCutShortByAFullFileIsEndedBeforeTheNextOne) {
    const fs::path error_file = dir_ / "error.log";
    ASSERT_TRUE(configure(ErrorLogConfig{error_file.string(), "info"}));
    auto log = open();
    ASSERT_NE(log, nullptr);
    const std::string filler(4095, '#');
    {
        std::ofstream out(dir_ / "access.log");
        out << filler << "\n";
    }
    const std::string line = "127.0.0.1 \"GET / HTTP/1.1\" 200\n";
    FileSizeLimit limit;
    ASSERT_TRUE(limit.set(filler.size() + 1 + line.size() + 10));  // a line and a bit more
    for (int i = 0; i < 3; ++i) {
        log->write(record_);
    }
    log->flush();
    ASSERT_TRUE(limit.lift());  // room again
    log->write(record_);
    log->flush();
    const std::string after_first = contents();
    // A second episode within the minute: reported as it starts, its end left for later.
    ASSERT_TRUE(limit.set(after_first.size()));
    log->write(record_);
    log->flush();
    ASSERT_TRUE(limit.lift());
    log->write(record_);
    log->flush();
    ASSERT_TRUE(configure(ErrorLogConfig{}));

    // The cut line ends where it was cut, and the next line stands on its own.
    EXPECT_EQ(after_first, filler + "\n" + line + line.substr(0, 10) + "\n" + line);
    EXPECT_EQ(contents(), after_first + line);
    const std::string errors = contents("error.log");
    const auto count = [&](const std::string& text) {
        std::size_t n = 0;
        for (auto at = errors.find(text); at != std::string::npos; at = errors.find(text, at + 1)) {
            ++n;
        }
        return n;
    };
    const std::string path = (dir_ / "access.log").string();
    EXPECT_EQ(
        count("cannot write to access log " + path + ": File too large; its lines are dropped"), 2u)
        << errors;
    // The first episode's end is reported, with what it dropped: the cut line and the one
    // after it. The second's would come at the earliest a minute later.
    EXPECT_EQ(count("writing to access log " + path + " again; 2 lines were dropped"), 1u)
        << errors;
    EXPECT_EQ(count(" again; "), 1u) << errors;
}

TEST_F(AccessLogTest, AFifoThatNoProcessReadsIsAnErrorNotAWait) {
    const fs::path fifo = dir_ / "access.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    AccessLogConfig config;
    config.path = fifo.string();
    config.format = "%>s";
    // Opening it for writing would wait for a reader; in a restart, that stalled the master.
    auto none = AccessLog::open(config);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().message,
              "cannot open access log " + fifo.string() + ": it is a FIFO that no process reads");

    // With a reader it is a log like any other.
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    auto log = AccessLog::open(config);
    ASSERT_TRUE(log) << log.error().message;
    log.value()->write(record_);
    log.value()->flush();
    char text[16] = {};
    EXPECT_EQ(::read(reader, text, sizeof text), 4);
    EXPECT_EQ(std::string(text), "200\n");
    ::close(reader);
}

TEST(EndpointsTest, ClientAddressReadsAsInetNtopWritesIt) {
    // Every width of octet, in every position; the text is built without inet_ntop.
    const std::uint8_t octets[] = {0, 1, 9, 10, 42, 99, 100, 127, 199, 200, 255};
    for (const std::uint8_t a : octets) {
        for (const std::uint8_t b : octets) {
            sockaddr_storage peer{};
            auto& v4 = reinterpret_cast<sockaddr_in&>(peer);
            v4.sin_family = AF_INET;
            v4.sin_port = htons(54321);
            const std::uint8_t bytes[4] = {a, b, std::uint8_t(255 - a), std::uint8_t(b ^ 0x5a)};
            std::memcpy(&v4.sin_addr, bytes, sizeof bytes);
            char expected[INET_ADDRSTRLEN];
            ASSERT_NE(::inet_ntop(AF_INET, &v4.sin_addr, expected, sizeof expected), nullptr);
            const Endpoints ends = Endpoints::of(-1, &peer, /*with_local=*/false);
            EXPECT_STREQ(ends.client, expected);
            EXPECT_EQ(ends.client_port, 54321);
        }
    }

    sockaddr_storage peer{};
    auto& v6 = reinterpret_cast<sockaddr_in6&>(peer);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(8080);
    ASSERT_EQ(::inet_pton(AF_INET6, "::ffff:192.0.2.1", &v6.sin6_addr), 1);
    const Endpoints ends = Endpoints::of(-1, &peer, /*with_local=*/false);
    EXPECT_STREQ(ends.client, "::ffff:192.0.2.1");
    EXPECT_EQ(ends.client_port, 8080);
    EXPECT_STREQ(ends.local, "");
}

}  // namespace
}  // namespace trident::log
