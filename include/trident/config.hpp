#pragma once

// The typed, validated configuration. Every key of conf/trident.yaml has a field here;
// docs/configuration.md describes each one. Defaults are Apache httpd 2.4's.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "trident/result.hpp"

namespace trident {

using Duration = std::chrono::milliseconds;

/// One `listen` entry: "host:port", "[v6]:port" or "port" (all addresses).
struct ListenAddress {
    std::string host;  ///< numeric address without brackets; empty means every address
    std::uint16_t port = 0;
    std::string text;  ///< as written in the config, for messages
};

struct KeepAliveConfig {
    bool enabled = true;
    Duration timeout{std::chrono::seconds(5)};
    std::uint32_t max_requests = 100;  ///< 0 means unlimited (as Apache's MaxKeepAliveRequests 0)
};

/// Apache's mod_reqtimeout defaults (`header=20-40,MinRate=500 body=20,MinRate=500`): each
/// read phase starts with its timeout, and every `min_data_rate` bytes received extend it
/// by a second, up to the phase's maximum (0: no maximum).
struct TimeoutConfig {
    Duration request_header{std::chrono::seconds(20)};
    Duration request_header_max{std::chrono::seconds(40)};
    Duration request_body{std::chrono::seconds(20)};
    Duration request_body_max{0};
    std::uint32_t min_data_rate = 500;  ///< bytes per second that extend a read; 0: fixed
    Duration send{std::chrono::seconds(60)};
    Duration graceful_shutdown{0};  ///< 0 means wait for in-flight work without a bound
};

struct LimitConfig {
    std::uint32_t request_line = 8190;        ///< bytes; longer → 414
    std::uint32_t request_fields = 100;       ///< header fields; more → 400
    std::uint32_t request_field_size = 8190;  ///< bytes per field line; longer → 400
    std::uint64_t request_body = 1ull << 30;  ///< bytes; larger → 413
};

/// Process-model directives shared by every MPM (Apache 2.4 names in snake_case).
struct PreforkConfig {
    std::uint32_t start_servers = 5;
    std::uint32_t min_spare_servers = 5;
    std::uint32_t max_spare_servers = 10;
    std::uint32_t server_limit = 256;
    std::uint32_t max_request_workers = 256;
    std::uint64_t max_connections_per_child = 0;  ///< 0 means never recycle
};

struct ThreadedMpmConfig {
    std::uint32_t start_servers = 3;
    std::uint32_t min_spare_threads = 75;
    std::uint32_t max_spare_threads = 250;
    std::uint32_t threads_per_child = 25;
    std::uint32_t server_limit = 16;
    std::uint32_t thread_limit = 64;
    std::uint32_t max_request_workers = 400;
    std::uint64_t max_connections_per_child = 0;
};

struct EventConfig : ThreadedMpmConfig {
    std::uint32_t async_request_worker_factor = 2;
};

struct AccessLogConfig {
    bool enabled = true;
    std::string path = "stderr";  ///< "stderr", "stdout" or a file (resolved absolute)
    std::string format = "combined";
};

struct ErrorLogConfig {
    std::string path = "stderr";
    std::string level = "info";  ///< Apache's levels: emerg alert crit error warn notice info debug
};

struct StatusConfig {
    std::string path = "/server-status";
    std::vector<std::string> allow = {"127.0.0.0/8", "::1"};  ///< addresses or CIDR blocks
};

/// How files below document_root are served (the `static:` section).
struct StaticConfig {
    bool precompressed = true;    ///< serve file.br / file.gz to clients that accept them
    bool autoindex = false;       ///< list a directory without index file (else 403)
    bool follow_symlinks = true;  ///< false: a link resolving outside document_root → 403
    bool file_cache = true;       ///< keep small files in memory, checked by stat
    /// How long a cached file is used without a stat: how late an edit may be seen (0: never).
    Duration file_cache_valid{std::chrono::milliseconds(100)};
};

struct Config {
    std::filesystem::path file;  ///< the config file this came from, absolute

    std::string mpm = "event";  ///< prefork | worker | event
    std::vector<ListenAddress> listen;
    std::filesystem::path document_root;  ///< absolute, an existing readable directory
    std::vector<std::string> directory_index = {"index.html"};
    std::filesystem::path pid_file;         ///< empty: no pid file
    std::filesystem::path scoreboard_file;  ///< empty: anonymous shared memory
    std::filesystem::path module_dir;       ///< empty: next to the executable
    std::string user;                       ///< empty: keep the starting user
    std::string group;
    std::string server_tokens = "full";  ///< full | prod (Server header detail)
    /// batch | inherit: whether the children take SCHED_BATCH when started under SCHED_OTHER.
    std::string cpu_scheduling = "batch";

    KeepAliveConfig keep_alive;
    TimeoutConfig timeouts;
    LimitConfig limits;
    PreforkConfig prefork;
    ThreadedMpmConfig worker;
    EventConfig event;
    AccessLogConfig access_log;
    ErrorLogConfig error_log;
    StatusConfig status;
    StaticConfig static_files;  ///< the `static:` section
};

/// The MPM names the product knows of, whether or not their modules are installed.
inline const std::vector<std::string>& known_mpm_names() {
    static const std::vector<std::string> names = {"prefork", "worker", "event"};
    return names;
}

/// Reads, validates and types the YAML file. On error the message is one line,
/// "FILE:LINE:COLUMN: what is wrong" where a position is known.
Result<Config> load_config(const std::filesystem::path& file);

/// The longest duration a config may give: 2^31 - 1 seconds, as Apache's timeouts.
inline constexpr Duration kMaxDuration = std::chrono::seconds(2147483647);

/// Parses a duration such as "5s", "250ms", "2m", "1h" or a bare number of seconds, at
/// most kMaxDuration.
Result<Duration> parse_duration(std::string_view text);

/// Parses a size such as "8190", "8KiB", "1GiB", "10MB" into bytes.
Result<std::uint64_t> parse_size(std::string_view text);

}  // namespace trident
