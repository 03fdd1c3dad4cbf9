#pragma once

// Accepting from every listening socket, as each MPM's accepting thread does.

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "trident/mpm.hpp"

namespace spdlog {
class logger;
}

namespace trident {

/// A connection accept() gave: the socket and the client's address.
struct AcceptedSocket {
    int fd = -1;
    sockaddr_storage peer{};
};

class ListenerSet {
public:
    explicit ListenerSet(std::span<const Listener> listeners);

    /// Waits for a connection on any listener and accepts it (blocking, close-on-exec, with
    /// the listening socket's TCP_NODELAY). Nothing once `stop` is set. Several processes
    /// may accept from the same sockets: losing the race just means waiting again.
    std::optional<AcceptedSocket> accept(const std::atomic<bool>& stop, spdlog::logger& log);

private:
    std::vector<pollfd> fds_;
    std::size_t next_ = 0;  ///< where the next scan starts, so no listener is starved
};

}  // namespace trident
