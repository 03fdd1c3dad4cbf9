#pragma once

// The systemd notification protocol (sd_notify(3)), for a service of Type=notify. Every call
// is a no-op when NOTIFY_SOCKET is not set, so the master calls them unconditionally;
// libsystemd is loaded (dlopen) on the first call that has a socket to notify.

#include <chrono>
#include <cstdint>
#include <string>

namespace trident {

class Scoreboard;

class ServiceNotifier {
public:
    /// READY=1: listeners bound and the first generation (or a reload's new one) up.
    void ready(const std::string& status);
    /// RELOADING=1 with MONOTONIC_USEC, as systemd 253's Type=notify-reload expects.
    void reloading();
    /// STOPPING=1: the master is shutting down.
    void stopping();
    /// STATUS=… alone.
    void status(const std::string& status);

    /// The STATUS text, Apache mod_systemd's shape: total requests, requests per second
    /// since the previous call, idle and busy workers, over every generation's slots.
    std::string status_text(const Scoreboard& scoreboard, std::uint32_t generation);

private:
    void send(const std::string& message);

    bool looked_up_ = false;                     ///< dlopen tried
    int (*notify_)(int, const char*) = nullptr;  ///< libsystemd's sd_notify, once loaded
    std::uint64_t last_total_ = 0;
    std::chrono::steady_clock::time_point last_time_{};
};

}  // namespace trident
