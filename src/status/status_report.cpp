#include "status/status_report.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string_view>

#include "http/html.hpp"
#include "trident/build_info.hpp"

namespace trident::status {

namespace {

using std::chrono::system_clock;

/// mod_status's %g of a float: it computes rates in float, and APR's formatter drops the
/// zero before the point (".25", not "0.25").
std::string g(float value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", double(value));
    std::string formatted = text;
    if (formatted.starts_with("0.")) {
        formatted.erase(0, 1);
    }
    return formatted;
}

std::string two_decimals(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f", value);
    return text;
}

/// Apache's DEFAULT_TIME_FORMAT in local time: "Tuesday, 24-Nov-2026 11:02:34 UTC".
std::string apache_time(system_clock::time_point when) {
    const std::time_t seconds = system_clock::to_time_t(when);
    std::tm local{};
    localtime_r(&seconds, &local);
    char text[64];
    return std::string(text, std::strftime(text, sizeof text, "%A, %d-%b-%Y %H:%M:%S %Z", &local));
}

/// "2026-11-24T10:57:40" from the build stamp "0.1.0-20261124T105740-random".
std::string build_time() {
    const std::string_view stamp = TRIDENT_BUILD_STAMP;
    const std::size_t dash = stamp.find('-');
    if (dash == std::string_view::npos || stamp.size() < dash + 16) {
        return std::string(stamp);
    }
    const std::string_view t = stamp.substr(dash + 1, 15);  // 20261124T105740
    return std::string(t.substr(0, 4)) + "-" + std::string(t.substr(4, 2)) + "-" +
           std::string(t.substr(6, 2)) + "T" + std::string(t.substr(9, 2)) + ":" +
           std::string(t.substr(11, 2)) + ":" + std::string(t.substr(13, 2));
}

/// User and system CPU seconds of a process from /proc/<pid>/stat; zeros if it is gone.
std::pair<double, double> cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const std::size_t paren = stat.rfind(')');  // the command name may hold spaces
    if (paren == std::string::npos) {
        return {0, 0};
    }
    std::istringstream fields(stat.substr(paren + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) {  // fields 3..13 precede utime (14) and stime (15)
        fields >> skip;
    }
    unsigned long long user = 0;
    unsigned long long system = 0;
    fields >> user >> system;
    const double tick = double(::sysconf(_SC_CLK_TCK));
    return {double(user) / tick, double(system) / tick};
}

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20 || byte >= 0x7f) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", unsigned(byte));
            out += escaped;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

/// The `?auto` lines as key/value pairs, in mod_status's order; numbers already formatted
/// as Apache formats them. JSON reuses them.
struct Line {
    std::string key;
    std::string value;
    bool number;
};

std::vector<Line> auto_lines(const StatusReport& report) {
    const std::uint64_t up = report.uptime_seconds();
    const std::uint64_t kbytes = report.bytes >> 10;
    const ScoreboardTally& t = report.tally;
    std::vector<Line> lines = {
        {"ServerVersion", report.server_version, false},
        {"ServerMPM", report.mpm, false},
        {"Server Built", report.built, false},
        {"CurrentTime", apache_time(report.now), false},
        {"RestartTime", apache_time(report.restart_time), false},
        {"ParentServerConfigGeneration", std::to_string(report.generation), true},
        {"ParentServerMPMGeneration",
         std::to_string(report.generation > 0 ? report.generation - 1 : 0), true},
        {"ServerUptimeSeconds", std::to_string(up), true},
        {"ServerUptime", uptime_text(up), false},
        {"Load1", two_decimals(report.load[0]), true},
        {"Load5", two_decimals(report.load[1]), true},
        {"Load15", two_decimals(report.load[2]), true},
        {"Total Accesses", std::to_string(report.accesses), true},
        {"Total kBytes", std::to_string(kbytes), true},
        {"Total Duration", std::to_string(report.duration_ms), true},
        {"CPUUser", g(float(report.cpu_user)), true},
        {"CPUSystem", g(float(report.cpu_system)), true},
        {"CPUChildrenUser", "0", true},
        {"CPUChildrenSystem", "0", true},
    };
    const double cpu = report.cpu_user + report.cpu_system;
    if (cpu > 0 && up > 0) {
        lines.push_back({"CPULoad", g(float(cpu / double(up) * 100.0)), true});
    }
    lines.push_back({"Uptime", std::to_string(up), true});
    if (up > 0) {
        lines.push_back({"ReqPerSec", g(float(report.accesses) / float(up)), true});
        lines.push_back({"BytesPerSec", g(1024.0f * float(kbytes) / float(up)), true});
    }
    if (report.accesses > 0) {
        lines.push_back({"BytesPerReq", g(1024.0f * float(kbytes) / float(report.accesses)), true});
        lines.push_back(
            {"DurationPerReq", g(float(report.duration_ms) / float(report.accesses)), true});
    }
    const std::vector<Line> workers = {
        {"BusyWorkers", std::to_string(t.busy), true},
        {"GracefulWorkers", std::to_string(t.graceful), true},
        {"IdleWorkers", std::to_string(t.idle), true},
    };
    lines.insert(lines.end(), workers.begin(), workers.end());
    if (report.mpm == "event") {
        // mod_status prints these for an asynchronous MPM only (AP_MPMQ_IS_ASYNC).
        const std::vector<Line> async = {
            {"Processes", std::to_string(t.processes), true},
            {"Stopping", std::to_string(t.quiescing), true},
            {"ConnsTotal", std::to_string(t.connections), true},
            // Trident has no connection waiting on I/O without a worker but for writes.
            {"ConnsAsyncWaitIO", "0", true},
            {"ConnsAsyncWriting", std::to_string(t.connections_writing), true},
            {"ConnsAsyncKeepAlive", std::to_string(t.connections_keep_alive), true},
            {"ConnsAsyncClosing", std::to_string(t.connections_lingering), true},
        };
        lines.insert(lines.end(), async.begin(), async.end());
    }
    lines.push_back({"Scoreboard", report.scoreboard, false});
    return lines;
}

}  // namespace

std::uint64_t StatusReport::uptime_seconds() const noexcept {
    const auto up = std::chrono::duration_cast<std::chrono::seconds>(now - restart_time).count();
    return up > 0 ? std::uint64_t(up) : 0;
}

std::string uptime_text(std::uint64_t seconds) {
    const std::uint64_t parts[4] = {seconds / 86400, seconds / 3600 % 24, seconds / 60 % 60,
                                    seconds % 60};
    static constexpr const char* kNames[4] = {"day", "hour", "minute", "second"};
    std::string text;
    for (int i = 0; i < 4; ++i) {
        if (parts[i] != 0) {
            text += " " + std::to_string(parts[i]) + " " + kNames[i] + (parts[i] == 1 ? "" : "s");
        }
    }
    return text;
}

StatusReport take_report(const Scoreboard& scoreboard, std::string server_name,
                         std::string server_version, std::string mpm) {
    StatusReport report;
    report.server_name = std::move(server_name);
    report.server_version = std::move(server_version);
    report.mpm = std::move(mpm);
    report.built = build_time();
    report.now = system_clock::now();
    report.restart_time = scoreboard.restart_time();
    report.generation = scoreboard.generation();
    if (::getloadavg(report.load, 3) != 3) {
        report.load[0] = report.load[1] = report.load[2] = 0;
    }
    report.tally = scoreboard.tally();
    report.scoreboard = scoreboard.status_line();
    std::uint64_t duration_us = 0;
    for (std::uint32_t p = 0; p < scoreboard.server_limit(); ++p) {
        const pid_t pid = scoreboard.process(p).pid();
        if (pid > 0) {
            const auto [user, system] = cpu_seconds(pid);
            report.cpu_user += user;
            report.cpu_system += system;
        }
        for (std::uint32_t t = 0;
             scoreboard.process(p).workers_ready() && t < scoreboard.thread_limit(); ++t) {
            const WorkerSlot& slot = scoreboard.worker(p, t);
            report.accesses += slot.accesses();
            report.bytes += slot.bytes();
            duration_us += slot.duration_us();
            const char state = char(slot.state());
            if (state == char(WorkerState::open) && slot.accesses() == 0) {
                continue;
            }
            WorkerText text = slot.text();
            const auto idle = std::chrono::duration<double>(report.now - slot.last_used());
            report.workers.push_back(WorkerRow{p, t, pid, state, slot.accesses(), slot.bytes(),
                                               slot.accesses() > 0 ? idle.count() : 0.0,
                                               std::move(text.client), std::move(text.request)});
        }
    }
    report.duration_ms = duration_us / 1000;
    return report;
}

std::string render_auto(const StatusReport& report) {
    std::string out = report.server_name + "\n";
    for (const Line& line : auto_lines(report)) {
        // show_time() starts with its own space; every other value follows ": ".
        out += line.key + (line.key == "ServerUptime" ? ":" : ": ") + line.value + "\n";
    }
    return out;
}

/// A number of the `?auto` page as JSON writes it: APR's ".25" needs its zero back
/// (RFC 8259 §6: an integer part comes first), or parsers reject the whole document.
std::string json_number(std::string text) {
    const std::size_t sign = text.starts_with('-') ? 1 : 0;
    if (text.size() > sign && text[sign] == '.') {
        text.insert(sign, 1, '0');
    }
    return text;
}

std::string render_json(const StatusReport& report) {
    std::string out = "{\n  \"ServerName\": " + json_string(report.server_name);
    for (const Line& line : auto_lines(report)) {
        std::string value = line.value;
        if (line.key == "ServerUptime" && !value.empty()) {
            value.erase(0, 1);
        }
        out += ",\n  " + json_string(line.key) + ": " +
               (line.number ? json_number(std::move(value)) : json_string(value));
    }
    out += ",\n  \"Workers\": [";
    bool first = true;
    for (const WorkerRow& w : report.workers) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.3f", w.seconds_since_used);
        out += std::string(first ? "\n" : ",\n") + "    {\"Slot\": \"" + std::to_string(w.process) +
               "-" + std::to_string(w.thread) + "\", \"PID\": " + std::to_string(w.pid) +
               ", \"State\": " + json_string(std::string(1, w.state)) +
               ", \"Accesses\": " + std::to_string(w.accesses) +
               ", \"Bytes\": " + std::to_string(w.bytes) + ", \"SecondsSinceUsed\": " + seconds +
               ", \"Client\": " + json_string(w.client) +
               ", \"Request\": " + json_string(w.request) + "}";
        first = false;
    }
    out += first ? "]\n}\n" : "\n  ]\n}\n";
    return out;
}

std::string render_html(const StatusReport& report) {
    const ScoreboardTally& t = report.tally;
    const std::uint64_t up = report.uptime_seconds();
    const std::uint64_t kbytes = report.bytes >> 10;
    std::string out;
    out.reserve(4096 + report.workers.size() * 200);
    out +=
        "<!DOCTYPE html>\n<html><head>\n<meta charset=\"utf-8\">\n"
        "<title>Trident Status</title>\n</head><body>\n<h1>Trident Server Status for " +
        http::html_escaped(report.server_name) +
        "</h1>\n\n<dl><dt>Server Version: " + http::html_escaped(report.server_version) +
        "</dt>\n<dt>Server MPM: " + http::html_escaped(report.mpm) +
        "</dt>\n<dt>Server Built: " + report.built +
        "</dt></dl><hr /><dl>\n<dt>Current Time: " + apache_time(report.now) +
        "</dt>\n<dt>Restart Time: " + apache_time(report.restart_time) +
        "</dt>\n<dt>Parent Server Config. Generation: " + std::to_string(report.generation) +
        "</dt>\n<dt>Parent Server MPM Generation: " +
        std::to_string(report.generation > 0 ? report.generation - 1 : 0) +
        "</dt>\n<dt>Server uptime: " + uptime_text(up) +
        "</dt>\n<dt>Server load: " + two_decimals(report.load[0]) + " " +
        two_decimals(report.load[1]) + " " + two_decimals(report.load[2]) +
        "</dt>\n<dt>Total accesses: " + std::to_string(report.accesses) +
        " - Total Traffic: " + std::to_string(kbytes) +
        " kB - Total Duration: " + std::to_string(report.duration_ms) + "</dt>\n<dt>CPU Usage: u" +
        g(float(report.cpu_user)) + " s" + g(float(report.cpu_system)) + " cu0 cs0</dt>\n";
    if (up > 0 || report.accesses > 0) {
        out += "<dt>";
        if (up > 0) {
            out += g(float(report.accesses) / float(up)) + " requests/sec - " +
                   g(1024.0f * float(kbytes) / float(up)) + " B/second - ";
        }
        if (report.accesses > 0) {
            out += g(1024.0f * float(kbytes) / float(report.accesses)) + " B/request - " +
                   g(float(report.duration_ms) / float(report.accesses)) + " ms/request";
        }
        out += "</dt>\n";
    }
    out += "<dt>" + std::to_string(t.busy) + " requests currently being processed, " +
           std::to_string(t.graceful) + " workers gracefully restarting, " +
           std::to_string(t.idle) + " idle workers</dt>\n</dl>\n\n<pre>";
    for (std::size_t i = 0; i < report.scoreboard.size(); i += 64) {
        out += report.scoreboard.substr(i, 64) + "\n";
    }
    out +=
        "</pre>\n<p>Scoreboard Key:<br />\n"
        "\"<b><code>_</code></b>\" Waiting for Connection, \n"
        "\"<b><code>S</code></b>\" Starting up, \n"
        "\"<b><code>R</code></b>\" Reading Request,<br />\n"
        "\"<b><code>W</code></b>\" Sending Reply, \n"
        "\"<b><code>K</code></b>\" Keepalive (read), \n"
        "\"<b><code>D</code></b>\" DNS Lookup,<br />\n"
        "\"<b><code>C</code></b>\" Closing connection, \n"
        "\"<b><code>L</code></b>\" Logging, \n"
        "\"<b><code>G</code></b>\" Gracefully finishing,<br /> \n"
        "\"<b><code>I</code></b>\" Idle cleanup of worker, \n"
        "\"<b><code>.</code></b>\" Open slot with no current process<br />\n</p>\n\n"
        "<table border=\"0\"><tr><th>Srv</th><th>PID</th><th>Acc</th><th>M</th><th>SS</th>"
        "<th>Bytes</th><th>Client</th><th>Request</th></tr>\n";
    for (const WorkerRow& w : report.workers) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.0f", w.seconds_since_used);
        out += "<tr><td><b>" + std::to_string(w.process) + "-" + std::to_string(w.thread) +
               "</b></td><td>" + (w.pid > 0 ? std::to_string(w.pid) : "-") + "</td><td>" +
               std::to_string(w.accesses) + "</td><td><b>" + std::string(1, w.state) +
               "</b></td><td>" + seconds + "</td><td>" + std::to_string(w.bytes) + "</td><td>" +
               http::html_escaped(w.client) + "</td><td nowrap>" + http::html_escaped(w.request) +
               "</td></tr>\n";
    }
    out +=
        "</table>\n<hr />\n<table>\n"
        " <tr><th>Srv</th><td>Process slot - worker</td></tr>\n"
        " <tr><th>PID</th><td>OS process ID</td></tr>\n"
        " <tr><th>Acc</th><td>Requests this worker slot has answered</td></tr>\n"
        " <tr><th>M</th><td>Mode of operation</td></tr>\n"
        " <tr><th>SS</th><td>Seconds since the most recent request</td></tr>\n"
        " <tr><th>Bytes</th><td>Bytes sent by this worker slot</td></tr>\n"
        "</table>\n</body></html>\n";
    return out;
}

}  // namespace trident::status
