#pragma once

// Accepting from every listening socket, as each MPM's accepting thread does.

#include <poll.h>

#include <atomic>
#include <memory>
#include <span>
#include <vector>

#include "trident/mpm.hpp"

namespace spdlog {
class logger;
}

namespace trident {

class ListenerSet {
public:
    explicit ListenerSet(std::span<const Listener> listeners);

    /// Waits for a connection on any listener and accepts it (non-blocking, close-on-exec,
    /// TCP_NODELAY). Returns the client socket, or -1 once `stop` is set. Several processes
    /// may accept from the same sockets: losing the race just means waiting again.
    int accept(const std::atomic<bool>& stop, spdlog::logger& log);

private:
    std::vector<pollfd> fds_;
    std::size_t next_ = 0;  ///< where the next scan starts, so no listener is starved
};

}  // namespace trident
