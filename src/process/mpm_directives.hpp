#pragma once

// Apache 2.4's clamping of the process-model directives, rule for rule and in its order
// (prefork_check_config, worker_check_config, event_check_config, then the adjustments their
// *_run functions make before starting children). Each clamp appends one warning naming the
// directive, its value, the value it was held against and the result, Apache-like:
//   "max_request_workers of 490 is not a multiple of threads_per_child of 25, decreasing to 475"
// The functions are pure: the caller logs the warnings (Apache logs each at warn level).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trident/config.hpp"

namespace trident {

/// Apache 2.4's compile-time hard limits (MAX_SERVER_LIMIT, MAX_THREAD_LIMIT).
inline constexpr std::uint32_t kPreforkMaxServerLimit = 200000;
inline constexpr std::uint32_t kThreadedMaxServerLimit = 20000;
inline constexpr std::uint32_t kWorkerMaxThreadLimit = 20000;
inline constexpr std::uint32_t kEventMaxThreadLimit = 100000;

/// Clamps prefork's directives: server_limit into [1, 200000], max_request_workers into
/// [1, server_limit], start_servers into [1, max_request_workers], min_spare_servers ≥ 1,
/// max_spare_servers ≥ min_spare_servers + 1.
PreforkConfig clamp_prefork(PreforkConfig config, std::vector<std::string>& warnings);

/// Clamps the worker or event MPM's shared directives (`mpm` is "worker" or "event"; it
/// picks the thread_limit ceiling): server_limit into [1, 20000], thread_limit into
/// [1, 20000 (worker) or 100000 (event)], threads_per_child into [1, thread_limit],
/// max_request_workers ≥ threads_per_child, rounded down to a multiple of it and at most
/// server_limit × threads_per_child, start_servers into [1, max_request_workers /
/// threads_per_child], min_spare_threads ≥ 1, max_spare_threads ≥ min_spare_threads +
/// threads_per_child + 1.
ThreadedMpmConfig clamp_threaded(ThreadedMpmConfig config, std::string_view mpm,
                                 std::vector<std::string>& warnings);

/// clamp_threaded(…, "event", …), then async_request_worker_factor ≥ 1.
EventConfig clamp_event(EventConfig config, std::vector<std::string>& warnings);

/// Clamps the section of the MPM that `config.mpm` names, as Apache checks only the loaded
/// MPM's directives; the other sections are left as written.
void clamp_mpm_directives(Config& config, std::vector<std::string>& warnings);

}  // namespace trident
