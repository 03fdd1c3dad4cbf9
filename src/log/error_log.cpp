#include "log/error_log.hpp"

#include <fcntl.h>
#include <spdlog/details/registry.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

namespace trident::log {

namespace {

// Apache's severities, lowest first; spdlog has no notice.
constexpr int kTrace = 0;
constexpr int kDebug = 1;
constexpr int kInfo = 2;
constexpr int kNotice = 3;
constexpr int kWarn = 4;
constexpr int kError = 5;
constexpr int kCrit = 6;

int severity_of_level_name(std::string_view name) noexcept {
    if (name == "emerg" || name == "alert" || name == "crit") {
        return kCrit;
    }
    if (name == "error") {
        return kError;
    }
    if (name == "warn") {
        return kWarn;
    }
    if (name == "notice") {
        return kNotice;
    }
    if (name == "info") {
        return kInfo;
    }
    return name == "debug" ? kDebug : kTrace;
}

// Apache's line shape; %n is the module name, %* Apache's name of the level.
constexpr const char* kPattern = "[%a %b %d %H:%M:%S.%f %Y] [%n:%*] [pid %P:tid %t] %v";

/// Apache's level names ("warn", "crit", "trace1") where spdlog says "warning", "critical".
class ApacheLevelFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        const std::string_view name =
            apache_severity(msg) == kNotice ? "notice" : apache_level_name(msg.level);
        dest.append(name.data(), name.data() + name.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<ApacheLevelFlag>();
    }
};

std::unique_ptr<spdlog::formatter> make_formatter() {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<ApacheLevelFlag>('*').set_pattern(kPattern);
    return formatter;
}

/// Each message is one write() of one whole line to a descriptor opened with O_APPEND (or
/// stderr/stdout), so lines from the master, the children and their threads never mix.
class AppendSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    /// Keeps messages of Apache severity `min_severity` and above: the loggers' own level
    /// cannot tell info from notice.
    /// `cut`: the file already ends inside a line (see end_line_left_cut()).
    AppendSink(int fd, bool owns_fd, int min_severity, bool cut) noexcept
        : fd_(fd), owns_fd_(owns_fd), min_severity_(min_severity), cut_(cut) {}
    ~AppendSink() override {
        if (owns_fd_) {
            ::close(fd_);
        }
    }
    AppendSink(const AppendSink&) = delete;
    AppendSink& operator=(const AppendSink&) = delete;

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        if (apache_severity(msg) < min_severity_) {
            return;
        }
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        const std::string_view text(line.data(), line.size());
        int error = 0;
        // A line an earlier write cut short is ended first, so the next stands on its own.
        const bool ended = !cut_ || write_fully(fd_, "\n", error) == 1;
        const std::size_t written = ended ? write_fully(fd_, text, error) : 0;
        cut_ = !ended || (written > 0 && written < text.size() && text[written - 1] != '\n');
        if (written < text.size() && owns_fd_) {
            // The file failed (a full disk, the file size limit): the line goes to stderr,
            // systemd's journal or the terminal, rather than nowhere.
            write_fully(STDERR_FILENO, text, error);
        }
    }
    void flush_() override {}

private:
    int fd_;
    bool owns_fd_;
    int min_severity_;
    bool cut_;  ///< the file ends in a line this process cut short; base_sink's mutex guards it
};

spdlog::sink_ptr make_sink(int fd, bool owns_fd, int min_severity = kInfo, bool cut = false) {
    auto sink = std::make_shared<AppendSink>(fd, owns_fd, min_severity, cut);
    sink->set_formatter(make_formatter());
    return sink;
}

struct State {
    std::mutex mutex;
    spdlog::sink_ptr sink;
    spdlog::level::level_enum level = spdlog::level::info;
};

State& state() {
    static State s;
    return s;
}

spdlog::sink_ptr default_sink() {
    return make_sink(STDERR_FILENO, false);
}

}  // namespace

int apache_severity(const spdlog::details::log_msg& msg) noexcept {
    switch (msg.level) {
        case spdlog::level::trace:
            return kTrace;
        case spdlog::level::debug:
            return kDebug;
        case spdlog::level::info:
            return msg.source.funcname != nullptr &&
                           std::string_view(msg.source.funcname) == kNoticeMark.funcname
                       ? kNotice
                       : kInfo;
        case spdlog::level::warn:
            return kWarn;
        case spdlog::level::err:
            return kError;
        default:
            return kCrit;
    }
}

std::string_view apache_level_name(spdlog::level::level_enum level) noexcept {
    switch (level) {
        case spdlog::level::trace:
            return "trace1";
        case spdlog::level::debug:
            return "debug";
        case spdlog::level::info:
            return "info";
        case spdlog::level::warn:
            return "warn";
        case spdlog::level::err:
            return "error";
        case spdlog::level::critical:
            return "crit";
        default:
            return "emerg";
    }
}

std::optional<spdlog::level::level_enum> level_from_apache(std::string_view name) noexcept {
    // Apache's eight levels onto spdlog's six; trace1..8 are all spdlog's trace.
    if (name == "emerg" || name == "alert" || name == "crit") {
        return spdlog::level::critical;
    }
    if (name == "error") {
        return spdlog::level::err;
    }
    if (name == "warn") {
        return spdlog::level::warn;
    }
    if (name == "notice" || name == "info") {
        return spdlog::level::info;
    }
    if (name == "debug") {
        return spdlog::level::debug;
    }
    if (name.size() == 6 && name.starts_with("trace") && name[5] >= '1' && name[5] <= '8') {
        return spdlog::level::trace;
    }
    return std::nullopt;
}

std::shared_ptr<spdlog::logger> get(std::string_view module) {
    State& s = state();
    std::lock_guard lock(s.mutex);
    const std::string name(module);
    if (auto existing = spdlog::get(name)) {
        return existing;
    }
    if (!s.sink) {
        s.sink = default_sink();
    }
    auto logger = std::make_shared<spdlog::logger>(name, s.sink);
    logger->set_level(s.level);
    logger->flush_on(spdlog::level::trace);
    spdlog::register_logger(logger);
    return logger;
}

int open_log_file(const std::string& path) noexcept {
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd >= 0 && ::fcntl(fd, F_SETFL, O_APPEND) != 0) {
        const int error = errno;
        ::close(fd);
        errno = error;
        return -1;
    }
    return fd;
}

std::size_t write_fully(int fd, std::string_view bytes, int& error) noexcept {
    std::size_t done = 0;
    error = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n > 0) {
            done += std::size_t(n);
        } else if (n == 0 || errno != EINTR) {
            error = n < 0 ? errno : ENOSPC;
            break;
        }
    }
    return done;
}

namespace {

bool ends_inside_line(const std::string& path, int fd) noexcept {
    struct stat opened {};
    if (::fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode) || opened.st_size == 0) {
        return false;
    }
    // The log's own descriptor is write-only (a FIFO must not open without a reader), so
    // the last byte is read through a second one, if it is the same file.
    const int reader = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (reader < 0) {
        return false;
    }
    struct stat st {};
    char last = '\n';
    const bool cut = ::fstat(reader, &st) == 0 && st.st_dev == opened.st_dev &&
                     st.st_ino == opened.st_ino && st.st_size > 0 &&
                     ::pread(reader, &last, 1, st.st_size - 1) == 1 && last != '\n';
    ::close(reader);
    return cut;
}

}  // namespace

bool end_line_left_cut(const std::string& path, int fd) noexcept {
    int error = 0;
    return ends_inside_line(path, fd) && write_fully(fd, "\n", error) != 1;
}

std::string open_log_error(const std::string& path, int error) {
    struct stat st {};
    if (error == ENXIO && ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) {
        return "it is a FIFO that no process reads";
    }
    return std::strerror(error);
}

Result<bool> configure(const ErrorLogConfig& config) {
    const auto level = level_from_apache(config.level);
    if (!level) {
        return Error{"unknown error_log level '" + config.level + "'"};
    }
    spdlog::sink_ptr sink;
    const int min_severity = severity_of_level_name(config.level);
    if (config.path == "stderr") {
        sink = make_sink(STDERR_FILENO, false, min_severity);
    } else if (config.path == "stdout") {
        sink = make_sink(STDOUT_FILENO, false, min_severity);
    } else {
        const int fd = open_log_file(config.path);
        if (fd < 0) {
            return Error{"cannot open error log " + config.path + ": " +
                         open_log_error(config.path, errno)};
        }
        sink = make_sink(fd, true, min_severity, end_line_left_cut(config.path, fd));
    }

    State& s = state();
    std::lock_guard lock(s.mutex);
    s.sink = sink;
    s.level = *level;
    spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& logger) {
        logger->sinks().assign(1, sink);
        logger->set_level(*level);
    });
    return true;
}

}  // namespace trident::log
