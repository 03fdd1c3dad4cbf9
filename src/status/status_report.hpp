#pragma once

// /server-status's data, taken from the scoreboard in one pass, and its three renderings:
// Apache 2.4 mod_status's `?auto` text (same keys, order and number formats, so tools such
// as prometheus-apache-exporter read it unchanged), JSON with the same keys, and HTML.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "trident/scoreboard.hpp"

namespace trident::status {

struct WorkerRow {
    std::uint32_t process = 0;  ///< process slot
    std::uint32_t thread = 0;
    pid_t pid = 0;  ///< 0 when no process holds the slot now
    char state = '.';
    std::uint64_t accesses = 0;
    std::uint64_t bytes = 0;
    double seconds_since_used = 0;  ///< since its last request (Apache's SS)
    std::string client;
    std::string request;
};

struct StatusReport {
    std::string server_name;     ///< the host the client asked for (Apache's first ?auto line)
    std::string server_version;  ///< "Trident/0.1.0"
    std::string mpm;
    std::string built;  ///< "2026-11-24T10:57:40"
    std::chrono::system_clock::time_point now;
    std::chrono::system_clock::time_point restart_time;
    std::uint32_t generation = 0;
    double load[3] = {0, 0, 0};
    double cpu_user = 0;  ///< seconds, summed over the live children
    double cpu_system = 0;
    std::uint64_t accesses = 0;  ///< summed over every slot, as Apache's counters are
    std::uint64_t bytes = 0;
    std::uint64_t duration_ms = 0;
    ScoreboardTally tally;
    std::string scoreboard;          ///< one character per worker slot
    std::vector<WorkerRow> workers;  ///< slots that are in use or have served requests

    std::uint64_t uptime_seconds() const noexcept;
};

/// Reads the scoreboard (and /proc for CPU time, getloadavg for the load). `mpm` is the
/// answering generation's MPM: the scoreboard's header keeps the one it was created for,
/// and a graceful restart may have switched since.
StatusReport take_report(const Scoreboard& scoreboard, std::string server_name,
                         std::string server_version, std::string mpm);

std::string render_auto(const StatusReport& report);
std::string render_json(const StatusReport& report);
std::string render_html(const StatusReport& report);

/// " 1 day 2 hours 5 seconds": Apache's show_time(), leading space included.
std::string uptime_text(std::uint64_t seconds);

}  // namespace trident::status
