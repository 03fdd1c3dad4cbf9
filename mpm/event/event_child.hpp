#pragma once

// One event-MPM child: a listener thread running a Boost.Asio io_context that keeps the
// deadline of every connection and finishes writes to slow readers; plus a fixed pool of
// worker threads that accept and run requests through the shared connection driver. A
// connection waiting for its client (fresh, idle keep-alive, part of a head received, or
// half-closed and lingering) holds no thread: it is parked in an edge-triggered epoll set
// on which the idle workers wait, so a request wakes one worker directly. The listening
// sockets are in that set too, exclusively: a new client wakes one worker of one child.

#include <atomic>
#include <cstdint>
#include <span>

#include "trident/mpm.hpp"

namespace spdlog {
class logger;
}

namespace trident {

struct EventChildSettings {
    std::uint32_t threads = 25;         ///< worker threads
    std::uint32_t async_factor = 2;     ///< async_request_worker_factor
    std::uint64_t max_connections = 0;  ///< per child; 0: unlimited
    std::uint32_t slot = 0;             ///< this child\'s scoreboard slot
};

/// Runs the child until a graceful stop (or recycling) has drained it. Returns the exit
/// status.
int run_event_child(const MpmContext& context, const EventChildSettings& settings,
                    const std::atomic<bool>& stopping, spdlog::logger& log) noexcept;

}  // namespace trident
