// load_config: the YAML file of DESIGN.md §5 read strictly into trident::Config. Each section
// has one reader below; the typed reads of single values live in yaml_reader.cpp.

#include "trident/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include "config/yaml_reader.hpp"
#include "log/log_format.hpp"

namespace trident {

namespace {

using config_reader::ConfigError;
using config_reader::Field;
using config_reader::MapReader;
using config_reader::quote;
using config_reader::read_bool;
using config_reader::read_choice;
using config_reader::read_duration;
using config_reader::read_list;
using config_reader::read_size;
using config_reader::read_string;
using config_reader::read_uint;

namespace fs = std::filesystem;

constexpr std::size_t kMaxConfigBytes = 16u << 20;
constexpr std::size_t kWholePath = std::string::npos;  // paths are quoted uncut
constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

// Hard bounds only; fitting the process-model directives to each other, with warnings, is
// the MPM's job (as in Apache's *_check_config hooks).
constexpr std::uint64_t kPreforkServerLimit = 200000;
constexpr std::uint64_t kThreadedServerLimit = 20000;
constexpr std::uint64_t kThreadLimit = 20000;
constexpr std::uint64_t kThreadedWorkers = kThreadedServerLimit * kThreadLimit;

const std::vector<std::string> kErrorLogLevels = {
    "emerg",  "alert",  "crit",   "error",  "warn",   "notice", "info",   "debug",
    "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8"};

/// Reads a whole file; returns 0 or the errno that stopped it.
int read_file(const fs::path& file, std::string& text) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    char buffer[16384];
    int error = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error = errno;
            break;
        }
        if (n == 0) {
            break;
        }
        if (text.size() + static_cast<std::size_t>(n) > kMaxConfigBytes) {
            error = EFBIG;
            break;
        }
        text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return error;
}

/// Reads the sections of one document into a Config; relative paths resolve against
/// `folder`, the config file's directory.
class Loader {
public:
    explicit Loader(fs::path folder) : folder_(std::move(folder)) {}

    void read_document(const YAML::Node& document, Config& config) const;

private:
    fs::path resolve(const Field& field) const;
    std::string read_log_path(const Field& field) const;

    static std::vector<ListenAddress> read_listen(const Field& field);
    static ListenAddress read_listen_entry(const Field& item);
    fs::path read_document_root(const Field& field) const;
    static std::vector<std::string> read_directory_index(const Field& field);
    static void read_keep_alive(const Field& field, KeepAliveConfig& keep_alive);
    static void read_timeouts(const Field& field, TimeoutConfig& timeouts);
    static void read_limits(const Field& field, LimitConfig& limits);
    static void read_prefork(const Field& field, PreforkConfig& prefork);
    static void read_threaded(const Field& field, ThreadedMpmConfig& mpm, EventConfig* event);
    void read_access_log(const Field& field, AccessLogConfig& log) const;
    void read_error_log(const Field& field, ErrorLogConfig& log) const;
    static void read_status(const Field& field, StatusConfig& status);
    static std::string read_address_block(const Field& item);
    static void read_static(const Field& field, StaticConfig& static_files);

    fs::path folder_;
};

fs::path Loader::resolve(const Field& field) const {
    const fs::path path = read_string(field);
    return (path.is_absolute() ? path : folder_ / path).lexically_normal();
}

std::string Loader::read_log_path(const Field& field) const {
    const std::string text = read_string(field);
    if (text == "stderr" || text == "stdout") {
        return text;
    }
    return resolve(field).string();
}

void Loader::read_document(const YAML::Node& document, Config& config) const {
    const MapReader top(Field{document, YAML::Mark(), ""},
                        {"mpm",      "listen",          "document_root",  "directory_index",
                         "pid_file", "scoreboard_file", "module_dir",     "user",
                         "group",    "server_tokens",   "cpu_scheduling", "keep_alive",
                         "timeouts", "limits",          "prefork",        "worker",
                         "event",    "access_log",      "error_log",      "status",
                         "static"});

    if (auto field = top.find("mpm")) {
        config.mpm = read_choice(*field, known_mpm_names());
    }
    if (auto field = top.find("listen")) {
        config.listen = read_listen(*field);
    } else {
        config.listen = {ListenAddress{"127.0.0.1", 8080, "127.0.0.1:8080"}};
    }
    if (auto field = top.find("document_root")) {
        config.document_root = read_document_root(*field);
    } else {
        throw ConfigError(top.mark(), "document_root is required");
    }
    if (auto field = top.find("directory_index")) {
        config.directory_index = read_directory_index(*field);
    }
    // Optional paths and names: an empty value leaves them unset.
    if (auto field = top.find("pid_file"); field && !field->node.IsNull()) {
        config.pid_file = resolve(*field);
    }
    if (auto field = top.find("scoreboard_file"); field && !field->node.IsNull()) {
        config.scoreboard_file = resolve(*field);
    }
    if (auto field = top.find("module_dir"); field && !field->node.IsNull()) {
        config.module_dir = resolve(*field);
    }
    if (auto field = top.find("user"); field && !field->node.IsNull()) {
        config.user = read_string(*field);
    }
    if (auto field = top.find("group"); field && !field->node.IsNull()) {
        config.group = read_string(*field);
    }
    if (auto field = top.find("server_tokens")) {
        config.server_tokens = read_choice(*field, {"full", "prod"});
    }
    if (auto field = top.find("cpu_scheduling")) {
        config.cpu_scheduling = read_choice(*field, {"batch", "inherit"});
    }
    if (auto field = top.find("keep_alive")) {
        read_keep_alive(*field, config.keep_alive);
    }
    if (auto field = top.find("timeouts")) {
        read_timeouts(*field, config.timeouts);
    }
    if (auto field = top.find("limits")) {
        read_limits(*field, config.limits);
    }
    if (auto field = top.find("prefork")) {
        read_prefork(*field, config.prefork);
    }
    if (auto field = top.find("worker")) {
        read_threaded(*field, config.worker, nullptr);
    }
    if (auto field = top.find("event")) {
        read_threaded(*field, config.event, &config.event);
    }
    if (auto field = top.find("access_log")) {
        read_access_log(*field, config.access_log);
    }
    if (auto field = top.find("error_log")) {
        read_error_log(*field, config.error_log);
    }
    if (auto field = top.find("status")) {
        read_status(*field, config.status);
    }
    if (auto field = top.find("static")) {
        read_static(*field, config.static_files);
    }
}

// --- listen ---------------------------------------------------------------------------------

std::vector<ListenAddress> Loader::read_listen(const Field& field) {
    std::vector<ListenAddress> addresses;
    std::vector<std::string> seen;  // normalised host and port, to catch one address twice
    for (const Field& item : read_list(field)) {
        ListenAddress address = read_listen_entry(item);
        std::string key = address.host;
        if (!key.empty()) {
            unsigned char binary[sizeof(in6_addr)];
            char normal[INET6_ADDRSTRLEN];
            const int family = key.find(':') == std::string::npos ? AF_INET : AF_INET6;
            if (inet_pton(family, key.c_str(), binary) == 1 &&
                inet_ntop(family, binary, normal, sizeof normal) != nullptr) {
                key = normal;
            }
        }
        key += '|';
        key += std::to_string(address.port);
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
            item.fail(quote(address.text) + " is given twice");
        }
        seen.push_back(key);
        addresses.push_back(std::move(address));
    }
    if (addresses.empty()) {
        field.fail("expected at least one address");
    }
    return addresses;
}

ListenAddress Loader::read_listen_entry(const Field& item) {
    static constexpr std::string_view kForms = "host:port, [v6]:port or port";
    if (item.node.IsSequence()) {
        // An unquoted [::1]:8080 in a YAML sequence is itself a flow sequence.
        item.fail("expected " + std::string(kForms) +
                  ", got a sequence; quote IPv6 addresses, as in \"[::1]:8080\"");
    }
    if (!item.node.IsScalar() || item.node.Scalar().empty()) {
        item.fail_expected(kForms);
    }
    const std::string text = item.node.Scalar();
    const std::string shown = quote(text);
    std::string host;
    std::string port;
    if (text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string::npos) {
            item.fail(shown + ": missing ']' after the IPv6 address");
        }
        host = text.substr(1, close - 1);
        if (close + 1 == text.size()) {
            item.fail(shown + ": missing the port, as in [::1]:8080");
        }
        if (text[close + 1] != ':') {
            item.fail(shown + ": expected ':' and a port after ']'");
        }
        port = text.substr(close + 2);
        in6_addr binary{};
        if (inet_pton(AF_INET6, host.c_str(), &binary) != 1) {
            item.fail(shown + ": host " + quote(host) + " is not a numeric IPv6 address");
        }
    } else if (const std::size_t colon = text.rfind(':'); colon == std::string::npos) {
        port = text;  // a bare port: every address
    } else if (text.find(':') != colon) {
        item.fail(shown + ": an IPv6 address needs brackets, as in [::1]:8080");
    } else {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        in_addr binary{};
        if (host.empty() || host == "*") {
            item.fail(shown + ": missing a numeric host; write only the port to listen on " +
                      "every address");
        }
        if (inet_pton(AF_INET, host.c_str(), &binary) != 1) {
            item.fail(shown + ": host " + quote(host) + " is not a numeric IPv4 address");
        }
    }
    const bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    const int number = digits ? std::stoi(port) : 0;
    if (number < 1 || number > 65535) {
        item.fail(shown + ": port " + quote(port) + " is not a number in 1..65535");
    }
    return ListenAddress{host, static_cast<std::uint16_t>(number), text};
}

// --- document root and index ----------------------------------------------------------------

fs::path Loader::read_document_root(const Field& field) const {
    const fs::path path = resolve(field);
    const std::string shown = quote(path.string(), kWholePath);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            field.fail(shown + " does not exist");
        }
        field.fail("cannot access " + shown + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        field.fail(shown + " is not a directory");
    }
    if (::access(path.c_str(), R_OK | X_OK) != 0) {
        field.fail(shown + " is not readable and searchable: " + std::strerror(errno));
    }
    std::error_code error;
    fs::path canonical = fs::canonical(path, error);
    if (error) {
        field.fail("cannot resolve " + shown + ": " + error.message());
    }
    return canonical;
}

std::vector<std::string> Loader::read_directory_index(const Field& field) {
    std::vector<std::string> names;
    for (const Field& item : read_list(field)) {
        std::string name = read_string(item);
        if (name.find('/') != std::string::npos || name == "." || name == "..") {
            item.fail(quote(name) + " is not a plain file name");
        }
        names.push_back(std::move(name));
    }
    return names;
}

// --- connection handling --------------------------------------------------------------------

/// A duration that must be above zero: a zero timeout would fail every request.
Duration read_positive_duration(const Field& field) {
    const Duration value = read_duration(field);
    if (value.count() == 0) {
        field.fail("must be greater than 0");
    }
    return value;
}

void Loader::read_keep_alive(const Field& field, KeepAliveConfig& keep_alive) {
    const MapReader map(field, {"enabled", "timeout", "max_requests"});
    if (auto value = map.find("enabled")) {
        keep_alive.enabled = read_bool(*value);
    }
    if (auto value = map.find("timeout")) {
        keep_alive.timeout = read_positive_duration(*value);
    }
    if (auto value = map.find("max_requests")) {
        keep_alive.max_requests = static_cast<std::uint32_t>(read_uint(*value, 0, kU32Max));
    }
}

void Loader::read_timeouts(const Field& field, TimeoutConfig& timeouts) {
    const MapReader map(field, {"request_header", "request_header_max", "request_body",
                                "request_body_max", "min_data_rate", "send", "graceful_shutdown"});
    if (auto value = map.find("request_header")) {
        timeouts.request_header = read_positive_duration(*value);
    }
    if (auto value = map.find("request_header_max")) {
        timeouts.request_header_max = read_duration(*value);  // 0: no maximum
    }
    if (auto value = map.find("request_body")) {
        timeouts.request_body = read_positive_duration(*value);
    }
    if (auto value = map.find("request_body_max")) {
        timeouts.request_body_max = read_duration(*value);
    }
    if (auto value = map.find("min_data_rate")) {
        timeouts.min_data_rate = static_cast<std::uint32_t>(read_uint(*value, 0, kU32Max));
    }
    // Like mod_reqtimeout's "header=20-40": a maximum below the starting timeout is a typo.
    const auto check_max = [&](const char* key, Duration start, Duration max) {
        if (max.count() != 0 && max < start) {
            map.find(key)->fail("must be 0 (no maximum) or at least the starting timeout");
        }
    };
    if (map.find("request_header_max")) {
        check_max("request_header_max", timeouts.request_header, timeouts.request_header_max);
    }
    if (map.find("request_body_max")) {
        check_max("request_body_max", timeouts.request_body, timeouts.request_body_max);
    }
    if (auto value = map.find("send")) {
        timeouts.send = read_positive_duration(*value);
    }
    if (auto value = map.find("graceful_shutdown")) {
        timeouts.graceful_shutdown = read_duration(*value);  // 0: no bound
    }
}

void Loader::read_limits(const Field& field, LimitConfig& limits) {
    const MapReader map(field,
                        {"request_line", "request_fields", "request_field_size", "request_body"});
    if (auto value = map.find("request_line")) {
        limits.request_line = static_cast<std::uint32_t>(read_uint(*value, 16, 1048576));
    }
    if (auto value = map.find("request_fields")) {
        limits.request_fields = static_cast<std::uint32_t>(read_uint(*value, 1, 10000));
    }
    if (auto value = map.find("request_field_size")) {
        limits.request_field_size = static_cast<std::uint32_t>(read_uint(*value, 16, 1048576));
    }
    if (auto value = map.find("request_body")) {
        limits.request_body = read_size(*value);
    }
}

// --- process models -------------------------------------------------------------------------

/// Reads `key` of `map` into `target` when present, bounded by [0, max].
template <typename T>
void read_count(const MapReader& map, std::string_view key, std::uint64_t max, T& target) {
    if (auto value = map.find(key)) {
        target = static_cast<T>(read_uint(*value, 0, max));
    }
}

void Loader::read_prefork(const Field& field, PreforkConfig& prefork) {
    const MapReader map(field,
                        {"start_servers", "min_spare_servers", "max_spare_servers", "server_limit",
                         "max_request_workers", "max_connections_per_child"});
    read_count(map, "start_servers", kPreforkServerLimit, prefork.start_servers);
    read_count(map, "min_spare_servers", kPreforkServerLimit, prefork.min_spare_servers);
    read_count(map, "max_spare_servers", kPreforkServerLimit, prefork.max_spare_servers);
    read_count(map, "server_limit", kPreforkServerLimit, prefork.server_limit);
    read_count(map, "max_request_workers", kPreforkServerLimit, prefork.max_request_workers);
    read_count(map, "max_connections_per_child", kU64Max, prefork.max_connections_per_child);
}

void Loader::read_threaded(const Field& field, ThreadedMpmConfig& mpm, EventConfig* event) {
    std::vector<std::string> keys = {
        "start_servers", "min_spare_threads", "max_spare_threads",   "threads_per_child",
        "server_limit",  "thread_limit",      "max_request_workers", "max_connections_per_child"};
    if (event != nullptr) {
        keys.push_back("async_request_worker_factor");
    }
    const MapReader map(field, std::move(keys));
    read_count(map, "start_servers", kThreadedServerLimit, mpm.start_servers);
    read_count(map, "min_spare_threads", kThreadedWorkers, mpm.min_spare_threads);
    read_count(map, "max_spare_threads", kThreadedWorkers, mpm.max_spare_threads);
    read_count(map, "threads_per_child", kThreadLimit, mpm.threads_per_child);
    read_count(map, "server_limit", kThreadedServerLimit, mpm.server_limit);
    read_count(map, "thread_limit", kThreadLimit, mpm.thread_limit);
    read_count(map, "max_request_workers", kThreadedWorkers, mpm.max_request_workers);
    read_count(map, "max_connections_per_child", kU64Max, mpm.max_connections_per_child);
    if (event != nullptr) {
        read_count(map, "async_request_worker_factor", 1000, event->async_request_worker_factor);
    }
}

// --- logs and status ------------------------------------------------------------------------

void Loader::read_access_log(const Field& field, AccessLogConfig& log) const {
    if (field.node.IsScalar()) {
        // `access_log: off` (or false/no) turns it off; on/true/yes keeps the defaults.
        try {
            log.enabled = read_bool(field);
        } catch (const ConfigError&) {
            field.fail_expected("off or a map with path and format");
        }
        return;
    }
    const MapReader map(field, {"path", "format"});
    if (auto value = map.find("path")) {
        log.path = read_log_path(*value);
    }
    if (auto value = map.find("format")) {
        log.format = read_string(*value);
        // Compiled here only to check it: a bad format stops `trident -t`, with where.
        if (auto compiled = log::LogFormat::compile(log.format); !compiled) {
            value->fail(compiled.error().message);
        }
    }
}

void Loader::read_error_log(const Field& field, ErrorLogConfig& log) const {
    const MapReader map(field, {"path", "level"});
    if (auto value = map.find("path")) {
        log.path = read_log_path(*value);
    }
    if (auto value = map.find("level")) {
        log.level = read_choice(*value, kErrorLogLevels);
    }
}

std::string Loader::read_address_block(const Field& item) {
    const std::string text = read_string(item);
    const std::size_t slash = text.find('/');
    const std::string address = text.substr(0, slash);
    unsigned char binary[sizeof(in6_addr)];
    int max_prefix = 0;
    if (inet_pton(AF_INET, address.c_str(), binary) == 1) {
        max_prefix = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), binary) == 1) {
        max_prefix = 128;
    } else {
        item.fail(quote(text) + " is not a numeric IP address or CIDR block");
    }
    if (slash != std::string::npos) {
        const std::string prefix = text.substr(slash + 1);
        const bool digits =
            !prefix.empty() && prefix.size() <= 3 &&
            std::all_of(prefix.begin(), prefix.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits || std::stoi(prefix) > max_prefix) {
            item.fail(quote(text) + ": prefix length must be 0.." + std::to_string(max_prefix));
        }
    }
    return text;
}

void Loader::read_status(const Field& field, StatusConfig& status) {
    const MapReader map(field, {"path", "allow"});
    if (auto value = map.find("path")) {
        const std::string path = read_string(*value);
        if (path.front() != '/') {
            value->fail_expected("a URL path starting with '/'");
        }
        if (std::any_of(path.begin(), path.end(), [](char c) {
                return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
            })) {
            value->fail(quote(path) + " must not contain spaces or control characters");
        }
        status.path = path;
    }
    if (auto value = map.find("allow")) {
        status.allow.clear();
        for (const Field& item : read_list(*value)) {
            status.allow.push_back(read_address_block(item));
        }
    }
}

// --- static files ---------------------------------------------------------------------------

void Loader::read_static(const Field& field, StaticConfig& static_files) {
    const MapReader map(
        field, {"precompressed", "autoindex", "follow_symlinks", "file_cache", "file_cache_valid"});
    if (auto value = map.find("precompressed")) {
        static_files.precompressed = read_bool(*value);
    }
    if (auto value = map.find("autoindex")) {
        static_files.autoindex = read_bool(*value);
    }
    if (auto value = map.find("follow_symlinks")) {
        static_files.follow_symlinks = read_bool(*value);
    }
    if (auto value = map.find("file_cache")) {
        static_files.file_cache = read_bool(*value);
    }
    if (auto value = map.find("file_cache_valid")) {
        static_files.file_cache_valid = read_duration(*value);  // 0: stat on every use
    }
}

// --- messages -------------------------------------------------------------------------------

std::string at(const std::string& file, const YAML::Mark& mark) {
    if (mark.is_null() || mark.line < 0 || mark.column < 0) {
        return file + ": ";
    }
    return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
           ": ";
}

/// Errors are one line, whatever a library put in its message.
Error one_line(std::string message) {
    std::replace(message.begin(), message.end(), '\n', ' ');
    std::replace(message.begin(), message.end(), '\r', ' ');
    return Error{std::move(message)};
}

}  // namespace

Result<Config> load_config(const std::filesystem::path& file) {
    const std::string shown = file.string();
    try {
        std::string text;
        if (const int error = read_file(file, text); error != 0) {
            return one_line(shown + ": cannot read: " + std::strerror(error));
        }
        const std::vector<YAML::Node> documents = YAML::LoadAll(text);
        if (documents.size() > 1) {
            throw ConfigError(documents[1].Mark(), "only one YAML document is allowed");
        }
        Config config;
        config.file = fs::absolute(file).lexically_normal();
        const Loader loader(config.file.parent_path());
        loader.read_document(documents.empty() ? YAML::Node() : documents.front(), config);
        return config;
    } catch (const ConfigError& e) {
        return one_line(at(shown, e.mark()) + e.what());
    } catch (const YAML::ParserException& e) {
        return one_line(at(shown, e.mark) + "YAML syntax error: " + e.msg);
    } catch (const std::exception& e) {
        return one_line(shown + ": " + e.what());
    } catch (...) {
        return one_line(shown + ": unexpected error while loading the configuration");
    }
}

}  // namespace trident
