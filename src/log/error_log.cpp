#include "log/error_log.hpp"

#include <spdlog/details/registry.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <optional>
#include <string>

namespace trident::log {

namespace {

// Apache's line shape; %n is the module name.
constexpr const char* kPattern = "[%a %b %d %H:%M:%S.%f %Y] [%n:%l] [pid %P:tid %t] %v";

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
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_pattern(kPattern);
    return sink;
}

std::optional<spdlog::level::level_enum> level_from_apache(std::string_view name) {
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
    if (name.starts_with("trace")) {
        return spdlog::level::trace;
    }
    return std::nullopt;
}

}  // namespace

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

Result<bool> configure(const ErrorLogConfig& config) {
    const auto level = level_from_apache(config.level);
    if (!level) {
        return Error{"unknown error_log level '" + config.level + "'"};
    }
    spdlog::sink_ptr sink;
    try {
        if (config.path == "stderr") {
            sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        } else if (config.path == "stdout") {
            sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
        } else {
            // basic_file_sink opens in append mode ("ab"), so whole lines land with O_APPEND.
            sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.path, false);
        }
    } catch (const std::exception& e) {
        return Error{"cannot open error log " + config.path + ": " + e.what()};
    }
    sink->set_pattern(kPattern);

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
