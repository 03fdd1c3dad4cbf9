#pragma once

// The error log: spdlog loggers, one per module ("core", "master", "mpm_prefork"), all
// writing to one sink in Apache's line shape:
//   [Tue Nov 24 07:19:31.123456 2026] [mpm_prefork:info] [pid 123:tid 456] message

#include <spdlog/logger.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "trident/config.hpp"

namespace trident::log {

/// Points every logger at the configured file (O_APPEND) or stderr/stdout, at the
/// configured level. Before this runs, loggers write to stderr at info.
Result<bool> configure(const ErrorLogConfig& config);

/// Opens a log file to append to (O_APPEND, created 0644, close-on-exec), as the error and
/// access logs do. A FIFO that no process reads fails with ENXIO at once instead of waiting
/// for a reader, which would stall the master in a restart; once open, writes block as on
/// any file. -1 with errno on failure.
int open_log_file(const std::string& path) noexcept;

/// For a log just opened as `fd` at `path`: if it is a regular file that ends inside a line,
/// as a write that a full disk cut short leaves it, ends that line with a newline now, so
/// the next line does not glue onto it. Done once, by the process that opens the log, so
/// that the children it forks start clean. True if the file still ends inside a line (the
/// newline did not fit either): the first write must then begin with one.
bool end_line_left_cut(const std::string& path, int fd) noexcept;

/// Why open_log_file() failed on `path` with `error`, for "cannot open … log PATH: <this>".
std::string open_log_error(const std::string& path, int error);

/// Writes `bytes` to a log's `fd`, again after a short write or EINTR, until all of them
/// are written or a write fails: a full disk, the file size limit (EFBIG). Returns how
/// many were written; `error` is then the failure's errno (ENOSPC for a write that took
/// nothing), else 0.
std::size_t write_fully(int fd, std::string_view bytes, int& error) noexcept;

/// Apache's level name for an spdlog level, as the log lines show it ("warn", "crit").
std::string_view apache_level_name(spdlog::level::level_enum level) noexcept;

/// The spdlog level for one of Apache's: emerg alert crit → critical, error, warn,
/// notice info → info, debug, trace1..trace8 → trace; nothing for an unknown name.
std::optional<spdlog::level::level_enum> level_from_apache(std::string_view name) noexcept;

/// The logger for a module, created on first use. Safe to call from any thread.
std::shared_ptr<spdlog::logger> get(std::string_view module);

/// Marks a message logged at spdlog's info as Apache's notice, the level spdlog lacks.
inline constexpr spdlog::source_loc kNoticeMark{"", 0, "notice"};

/// Logs at Apache's notice level, between info and warn: what an operator always wants to
/// see (start, restart, stop, a child replaced). The line says "notice"; `error_log.level:
/// notice` keeps these and drops info.
template <typename... Args>
void notice(spdlog::logger& logger, spdlog::format_string_t<Args...> format, Args&&... args) {
    logger.log(kNoticeMark, spdlog::level::info, format, std::forward<Args>(args)...);
}

/// Apache's severity of a message: 0 trace … 3 notice … 6 crit and above.
int apache_severity(const spdlog::details::log_msg& msg) noexcept;

}  // namespace trident::log
