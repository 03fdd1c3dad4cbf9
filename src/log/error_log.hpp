#pragma once

// The error log: spdlog loggers, one per module ("core", "master", "mpm_prefork"), all
// writing to one sink in Apache's line shape:
//   [Tue Nov 24 07:19:31.123456 2026] [mpm_prefork:info] [pid 123:tid 456] message

#include <spdlog/logger.h>

#include <memory>
#include <optional>
#include <string_view>

#include "trident/config.hpp"

namespace trident::log {

/// Points every logger at the configured file (O_APPEND) or stderr/stdout, at the
/// configured level. Before this runs, loggers write to stderr at info.
Result<bool> configure(const ErrorLogConfig& config);

/// Apache's level name for an spdlog level, as the log lines show it ("warn", "crit").
std::string_view apache_level_name(spdlog::level::level_enum level) noexcept;

/// The spdlog level for one of Apache's: emerg alert crit → critical, error, warn,
/// notice info → info, debug, trace1..trace8 → trace; nothing for an unknown name.
std::optional<spdlog::level::level_enum> level_from_apache(std::string_view name) noexcept;

/// The logger for a module, created on first use. Safe to call from any thread.
std::shared_ptr<spdlog::logger> get(std::string_view module);

}  // namespace trident::log
