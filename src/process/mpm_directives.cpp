#include "process/mpm_directives.hpp"

#include <algorithm>
#include <cstdint>

namespace trident {

namespace {

using std::to_string;

/// "<name> of <value> not allowed, increasing to 1" when `value` is 0.
void at_least_one(std::string_view name, std::uint32_t& value, std::vector<std::string>& warnings) {
    if (value < 1) {
        warnings.push_back(std::string(name) + " of " + to_string(value) +
                           " not allowed, increasing to 1");
        value = 1;
    }
}

/// A compile-time hard limit, then at least 1 (Apache's ServerLimit / ThreadLimit checks).
void within_hard_limit(std::string_view name, std::uint32_t& value, std::uint32_t limit,
                       std::vector<std::string>& warnings) {
    if (value > limit) {
        warnings.push_back(std::string(name) + " of " + to_string(value) +
                           " exceeds the compile-time limit of " + to_string(limit) +
                           ", decreasing to " + to_string(limit));
        value = limit;
    } else {
        at_least_one(name, value, warnings);
    }
}

}  // namespace

PreforkConfig clamp_prefork(PreforkConfig config, std::vector<std::string>& warnings) {
    // prefork_check_config, in its order.
    within_hard_limit("server_limit", config.server_limit, kPreforkMaxServerLimit, warnings);
    if (config.max_request_workers > config.server_limit) {
        warnings.push_back("max_request_workers of " + to_string(config.max_request_workers) +
                           " exceeds server_limit of " + to_string(config.server_limit) +
                           ", decreasing to " + to_string(config.server_limit));
        config.max_request_workers = config.server_limit;
    } else {
        at_least_one("max_request_workers", config.max_request_workers, warnings);
    }
    at_least_one("start_servers", config.start_servers, warnings);
    at_least_one("min_spare_servers", config.min_spare_servers, warnings);

    // prefork_run: "Don't thrash" (max_spare_servers ≥ min_spare_servers + 1 with one
    // listener bucket), and no more children at start than max_request_workers. Apache applies
    // these two silently; Trident warns like every other clamp.
    if (config.max_spare_servers < config.min_spare_servers + 1) {
        const std::uint32_t raised = config.min_spare_servers + 1;
        warnings.push_back("max_spare_servers of " + to_string(config.max_spare_servers) +
                           " is less than min_spare_servers of " +
                           to_string(config.min_spare_servers) + " plus 1, increasing to " +
                           to_string(raised));
        config.max_spare_servers = raised;
    }
    if (config.start_servers > config.max_request_workers) {
        warnings.push_back("start_servers of " + to_string(config.start_servers) +
                           " exceeds max_request_workers of " +
                           to_string(config.max_request_workers) + ", decreasing to " +
                           to_string(config.max_request_workers));
        config.start_servers = config.max_request_workers;
    }
    return config;
}

ThreadedMpmConfig clamp_threaded(ThreadedMpmConfig config, std::string_view mpm,
                                 std::vector<std::string>& warnings) {
    // worker_check_config / event_check_config, in their order; they differ only in the
    // thread_limit ceiling.
    within_hard_limit("server_limit", config.server_limit, kThreadedMaxServerLimit, warnings);
    within_hard_limit("thread_limit", config.thread_limit,
                      mpm == "event" ? kEventMaxThreadLimit : kWorkerMaxThreadLimit, warnings);
    if (config.threads_per_child > config.thread_limit) {
        warnings.push_back("threads_per_child of " + to_string(config.threads_per_child) +
                           " exceeds thread_limit of " + to_string(config.thread_limit) +
                           ", decreasing to " + to_string(config.thread_limit));
        config.threads_per_child = config.thread_limit;
    } else {
        at_least_one("threads_per_child", config.threads_per_child, warnings);
    }
    const std::uint32_t per_child = config.threads_per_child;

    if (config.max_request_workers < per_child) {
        warnings.push_back("max_request_workers of " + to_string(config.max_request_workers) +
                           " is less than threads_per_child of " + to_string(per_child) +
                           ", increasing to " + to_string(per_child));
        config.max_request_workers = per_child;
    }
    std::uint32_t processes = config.max_request_workers / per_child;
    if (config.max_request_workers % per_child != 0) {
        const std::uint32_t rounded = processes * per_child;
        warnings.push_back("max_request_workers of " + to_string(config.max_request_workers) +
                           " is not a multiple of threads_per_child of " + to_string(per_child) +
                           ", decreasing to " + to_string(rounded));
        config.max_request_workers = rounded;
    }
    if (processes > config.server_limit) {
        // server_limit ≤ 20000 and threads_per_child ≤ 100000: the product fits 32 bits.
        const std::uint32_t lowered = config.server_limit * per_child;
        warnings.push_back(
            "max_request_workers of " + to_string(config.max_request_workers) + " would require " +
            to_string(processes) + " processes and exceed server_limit of " +
            to_string(config.server_limit) + ", decreasing to " + to_string(lowered));
        config.max_request_workers = lowered;
        processes = config.server_limit;
    }
    at_least_one("start_servers", config.start_servers, warnings);
    at_least_one("min_spare_threads", config.min_spare_threads, warnings);

    // worker_run / event_run with one listener bucket: max_spare_threads must leave room for
    // a whole child plus one idle thread above min_spare_threads, or maintenance would retire
    // the child it just started. Apache does this and the start_servers cap silently.
    const std::uint64_t floor = std::uint64_t(config.min_spare_threads) + per_child + 1;
    if (config.max_spare_threads < floor) {
        warnings.push_back("max_spare_threads of " + to_string(config.max_spare_threads) +
                           " is less than min_spare_threads of " +
                           to_string(config.min_spare_threads) + " plus threads_per_child of " +
                           to_string(per_child) + " plus 1, increasing to " + to_string(floor));
        config.max_spare_threads = std::uint32_t(std::min<std::uint64_t>(floor, UINT32_MAX));
    }
    if (config.start_servers > processes) {
        warnings.push_back("start_servers of " + to_string(config.start_servers) + " exceeds the " +
                           to_string(processes) +
                           " processes max_request_workers allows, decreasing to " +
                           to_string(processes));
        config.start_servers = processes;
    }
    return config;
}

EventConfig clamp_event(EventConfig config, std::vector<std::string>& warnings) {
    static_cast<ThreadedMpmConfig&>(config) = clamp_threaded(config, "event", warnings);
    // Apache refuses AsyncRequestWorkerFactor ≤ 0 and raises a fraction below 1 to 1; the
    // YAML value is a whole number, so only 0 is out of range.
    at_least_one("async_request_worker_factor", config.async_request_worker_factor, warnings);
    return config;
}

void clamp_mpm_directives(Config& config, std::vector<std::string>& warnings) {
    if (config.mpm == "prefork") {
        config.prefork = clamp_prefork(config.prefork, warnings);
    } else if (config.mpm == "worker") {
        config.worker = clamp_threaded(config.worker, "worker", warnings);
    } else if (config.mpm == "event") {
        config.event = clamp_event(config.event, warnings);
    }
}

}  // namespace trident
