#include "log/error_log.hpp"

#include "file_size_limit.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace trident::log {
namespace {

namespace fs = std::filesystem;

class ErrorLogTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "trident-error-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
        file_ = dir_ / "error.log";
    }
    void TearDown() override {
        EXPECT_TRUE(configure(ErrorLogConfig{}));  // back to stderr at info
        fs::remove_all(dir_);
    }
    std::string contents() const {
        std::ifstream in(file_);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

    fs::path dir_;
    fs::path file_;
};

TEST_F(ErrorLogTest, LinesHaveApachesShape) {
    ASSERT_TRUE(configure(ErrorLogConfig{file_.string(), "debug"}));
    get("mpm_event")->warn("child {} exited", 42);
    get("core")->error("no listener");
    get("core")->critical("bad");
    get("core")->debug("details");
    const std::string pid = std::to_string(::getpid());
    const std::string stamp =
        R"(\[(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) )"
        R"(\d\d \d\d:\d\d:\d\d\.\d{6} \d{4}\] )";
    const std::regex expected(stamp + R"(\[mpm_event:warn\] \[pid )" + pid +
                              R"(:tid \d+\] child 42 exited\n)" + stamp +
                              R"(\[core:error\] \[pid \d+:tid \d+\] no listener\n)" + stamp +
                              R"(\[core:crit\] \[pid \d+:tid \d+\] bad\n)" + stamp +
                              R"(\[core:debug\] \[pid \d+:tid \d+\] details\n)");
    const std::string text = contents();
    EXPECT_TRUE(std::regex_match(text, expected)) << text;
}

TEST_F(ErrorLogTest, LevelFiltersLowerMessages) {
    ASSERT_TRUE(configure(ErrorLogConfig{file_.string(), "error"}));
    get("core")->warn("hidden");
    get("core")->info("hidden too");
    get("core")->error("shown");
    const std::string text = contents();
    EXPECT_EQ(text.find("hidden"), std::string::npos) << text;
    EXPECT_NE(text.find("[core:error]"), std::string::npos) << text;
}

TEST_F(ErrorLogTest, NoticeSitsBetweenInfoAndWarn) {
    ASSERT_TRUE(configure(ErrorLogConfig{file_.string(), "notice"}));
    get("mpm_event")->info("hidden info");
    notice(*get("mpm_event"), "resuming normal operations, generation {}", 2);
    get("core")->warn("a warning");
    std::string text = contents();
    EXPECT_EQ(text.find("hidden info"), std::string::npos) << text;
    EXPECT_NE(text.find("[mpm_event:notice] [pid "), std::string::npos) << text;
    EXPECT_NE(text.find("resuming normal operations, generation 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("[core:warn]"), std::string::npos) << text;

    ASSERT_TRUE(configure(ErrorLogConfig{file_.string(), "warn"}));
    notice(*get("core"), "hidden notice");
    text = contents();
    EXPECT_EQ(text.find("hidden notice"), std::string::npos) << text;

    ASSERT_TRUE(configure(ErrorLogConfig{file_.string(), "info"}));
    get("core")->info("plain info");
    text = contents();
    EXPECT_NE(text.find("[core:info] [pid "), std::string::npos) << text;
}

TEST_F(ErrorLogTest, FileIsAppendedToNotTruncated) {
    {
        std::ofstream out(file_);
        out << "earlier line\n";
    }
    ASSERT_TRUE(configure(ErrorLogConfig{file_.string(), "info"}));
    get("core")->info("later line");
    const std::string text = contents();
    EXPECT_TRUE(text.starts_with("earlier line\n")) << text;
    EXPECT_NE(text.find("later line"), std::string::npos) << text;
}

TEST_F(ErrorLogTest, AFileLeftEndingInsideALineIsEndedBeforeTheFirstLine) {
    {
        std::ofstream out(file_);
        out << "[Sun Dec 06 05:00:00.000000 2026] [core:error] [pid 1:tid 1] cut sh";
    }
    ASSERT_TRUE(configure(ErrorLogConfig{file_.string(), "info"}));
    get("core")->info("next line");
    const std::string text = contents();
    EXPECT_TRUE(
        text.starts_with("[Sun Dec 06 05:00:00.000000 2026] [core:error] [pid 1:tid 1] "
                         "cut sh\n["))
        << text;
    EXPECT_NE(text.find("] next line\n"), std::string::npos) << text;
}

TEST_F(ErrorLogTest, ALineCutShortByAFullFileIsEndedBeforeTheNextOne) {
    {
        std::ofstream out(file_);
        out << "earlier line\n";
    }
    // The line the file could not take whole goes to stderr, captured here through a pipe,
    // which the file size limit does not touch.
    FileSizeLimit limit;
    int capture[2];
    ASSERT_EQ(::pipe2(capture, O_CLOEXEC), 0);
    const int saved = ::dup(STDERR_FILENO);
    ASSERT_GE(saved, 0);
    ::dup2(capture[1], STDERR_FILENO);
    ::close(capture[1]);
    const bool configured = bool(configure(ErrorLogConfig{file_.string(), "info"}));
    // 20 bytes of the next line fit.
    const bool limit_set = limit.set(std::string("earlier line\n").size() + 20);
    get("core")->error("the line the disk cuts short");
    get("core")->error("a line for a disk still full");
    const bool limit_lifted = limit.lift();
    get("core")->error("a line once there is room");
    ::dup2(saved, STDERR_FILENO);  // closes the pipe's last write end
    ::close(saved);
    std::string stderr_text;
    char chunk[4096];
    for (ssize_t n; (n = ::read(capture[0], chunk, sizeof chunk)) > 0;) {
        stderr_text.append(chunk, std::size_t(n));
    }
    ::close(capture[0]);
    ASSERT_TRUE(configured);
    ASSERT_TRUE(limit_set);
    ASSERT_TRUE(limit_lifted);

    std::vector<std::string> lines;
    std::istringstream in(contents());
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    ASSERT_EQ(lines.size(), 3u) << contents();
    EXPECT_EQ(lines[0], "earlier line");
    EXPECT_EQ(lines[1].size(), 20u) << lines[1];  // the cut line, ended where it was cut
    EXPECT_TRUE(lines[2].starts_with("[")) << lines[2];
    EXPECT_TRUE(lines[2].ends_with("] a line once there is room")) << lines[2];
    EXPECT_NE(stderr_text.find("] the line the disk cuts short\n"), std::string::npos)
        << stderr_text;
    EXPECT_NE(stderr_text.find("] a line for a disk still full\n"), std::string::npos)
        << stderr_text;
}

TEST_F(ErrorLogTest, ALineTheFileCannotTakeGoesToStderr) {
    if (!fs::exists("/dev/full")) {
        GTEST_SKIP() << "no /dev/full to simulate a full disk";
    }
    const fs::path captured = dir_ / "stderr.txt";
    const int capture = ::open(captured.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(capture, 0);
    const int saved = ::dup(STDERR_FILENO);
    ASSERT_GE(saved, 0);
    ::dup2(capture, STDERR_FILENO);
    const bool configured = bool(configure(ErrorLogConfig{"/dev/full", "info"}));
    get("core")->error("a line for a full disk");
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(capture);
    ASSERT_TRUE(configured);
    std::ifstream in(captured);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("a line for a full disk"), std::string::npos) << text.str();
}

TEST_F(ErrorLogTest, AFifoThatNoProcessReadsIsAnErrorNotAWait) {
    const fs::path fifo = dir_ / "error.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const auto result = configure(ErrorLogConfig{fifo.string(), "info"});
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message,
              "cannot open error log " + fifo.string() + ": it is a FIFO that no process reads");
}

TEST(ErrorLogLevels, EveryApacheLevelIsKnown) {
    using spdlog::level::level_enum;
    const std::pair<const char*, level_enum> levels[] = {
        {"emerg", level_enum::critical}, {"alert", level_enum::critical},
        {"crit", level_enum::critical},  {"error", level_enum::err},
        {"warn", level_enum::warn},      {"notice", level_enum::info},
        {"info", level_enum::info},      {"debug", level_enum::debug},
        {"trace1", level_enum::trace},   {"trace8", level_enum::trace}};
    for (const auto& [name, level] : levels) {
        EXPECT_EQ(level_from_apache(name), level) << name;
    }
    for (const char* unknown : {"warning", "trace", "trace9", "TRACE1", ""}) {
        EXPECT_EQ(level_from_apache(unknown), std::nullopt) << unknown;
    }
    EXPECT_FALSE(configure(ErrorLogConfig{"stderr", "loud"}));
}

TEST(ErrorLogLevels, NamesAreApaches) {
    EXPECT_EQ(apache_level_name(spdlog::level::warn), "warn");
    EXPECT_EQ(apache_level_name(spdlog::level::critical), "crit");
    EXPECT_EQ(apache_level_name(spdlog::level::err), "error");
    EXPECT_EQ(apache_level_name(spdlog::level::trace), "trace1");
}

}  // namespace
}  // namespace trident::log
