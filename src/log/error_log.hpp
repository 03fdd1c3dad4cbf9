#pragma once

// The error log: spdlog loggers, one per module ("core", "master", "mpm_prefork"), all
// writing to one sink in Apache's line shape:
//   [Tue Nov 24 07:19:31.123456 2026] [mpm_prefork:info] [pid 123:tid 456] message

#include <spdlog/logger.h>

#include <memory>
#include <string_view>

#include "trident/config.hpp"

namespace trident::log {

/// Points every logger at the configured file (O_APPEND) or stderr/stdout, at the
/// configured level. Before this runs, loggers write to stderr at info.
Result<bool> configure(const ErrorLogConfig& config);

/// The logger for a module, created on first use. Safe to call from any thread.
std::shared_ptr<spdlog::logger> get(std::string_view module);

}  // namespace trident::log
