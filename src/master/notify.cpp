#include "master/notify.hpp"

#include <dlfcn.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "log/error_log.hpp"
#include "trident/scoreboard.hpp"

namespace trident {

void ServiceNotifier::send(const std::string& message) {
    if (std::getenv("NOTIFY_SOCKET") == nullptr) {
        return;  // not a systemd service: sd_notify would do nothing either
    }
    if (!looked_up_) {
        // Loaded only now: libsystemd and what it pulls in (libgcrypt, lz4, zstd, lzma,
        // libcap) add about 0.8 MiB to the master's PSS, for a server not run by systemd
        // to carry for nothing.
        looked_up_ = true;
        void* library = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (library != nullptr) {
            notify_ = reinterpret_cast<decltype(&sd_notify)>(::dlsym(library, "sd_notify"));
        }
        if (notify_ == nullptr) {
            const char* why = ::dlerror();
            log::get("core")->error(
                "NOTIFY_SOCKET is set, but libsystemd.so.0 cannot be used ({}): systemd will "
                "not hear that the server is ready",
                why != nullptr ? why : "no sd_notify");
        }
    }
    if (notify_ != nullptr) {
        // unset_environment = 0: children never call sd_notify, and the master may again.
        notify_(0, message.c_str());
    }
}

void ServiceNotifier::ready(const std::string& status) {
    send("READY=1\nSTATUS=" + status);
}

void ServiceNotifier::reloading() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = std::uint64_t(now.tv_sec) * 1'000'000u + std::uint64_t(now.tv_nsec) / 1000u;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=Reloading");
}

void ServiceNotifier::stopping() {
    send("STOPPING=1\nSTATUS=Stopping");
}

void ServiceNotifier::status(const std::string& status) {
    send("STATUS=" + status);
}

std::string ServiceNotifier::status_text(const Scoreboard& scoreboard, std::uint32_t generation) {
    // Every worker slot's counter, live process or not: they only grow (scoreboard.hpp).
    std::uint64_t total = 0;
    for (std::uint32_t p = 0; p < scoreboard.server_limit(); ++p) {
        for (std::uint32_t t = 0;
             scoreboard.process(p).workers_ready() && t < scoreboard.thread_limit(); ++t) {
            total += scoreboard.worker(p, t).accesses();
        }
    }
    const auto now = std::chrono::steady_clock::now();
    double per_second = 0;
    if (last_time_ != std::chrono::steady_clock::time_point{} && total >= last_total_) {
        const double seconds = std::chrono::duration<double>(now - last_time_).count();
        per_second = seconds > 0 ? double(total - last_total_) / seconds : 0;
    }
    last_total_ = total;
    last_time_ = now;
    const ScoreboardTally tally = scoreboard.tally();
    char text[200];
    std::snprintf(text, sizeof text,
                  "Total requests: %llu; Requests/sec: %.3g; Idle/Busy workers %u/%u; "
                  "Generation: %u",
                  static_cast<unsigned long long>(total), per_second, tally.idle, tally.busy,
                  generation);
    return text;
}

}  // namespace trident
