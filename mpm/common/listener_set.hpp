#pragma once

// Accepting from every listening socket, as a prefork child and a worker thread do.

#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <optional>
#include <span>

#include "trident/http/response.hpp"
#include "trident/mpm.hpp"

namespace spdlog {
class logger;
}

namespace trident {

/// Whether an accept(2) error belongs to the one connection it would have given (gone, or
/// one of the network errors accept(2) says TCP/IP reports this way), so the next may be
/// accepted at once.
bool accept_error_is_transient(int error) noexcept;

/// A connection accept() gave: the socket and the client's address.
struct AcceptedSocket {
    int fd = -1;
    sockaddr_storage peer{};
};

/// Every listening socket in an epoll instance of its own, registered with EPOLLEXCLUSIVE:
/// a new connection wakes one of the processes (or threads) waiting to accept, each in an
/// instance of its own, not all of them as poll() did. Apache's prefork gets the same from
/// its accept mutex. One thread at a time waits in an instance.
class ListenerSet {
public:
    explicit ListenerSet(std::span<const Listener> listeners) noexcept;

    /// Waits for a connection on any listener and accepts it (blocking, close-on-exec, with
    /// the listening socket's TCP_NODELAY). Nothing once `stop` is set, once the master has
    /// stopped listening on every socket (it is stopping; a socket a reload dropped is left
    /// out and the others served until this generation's stop arrives), or when the epoll
    /// instance could not be made (logged). Several processes may accept from the same
    /// sockets: losing the race just means waiting again.
    std::optional<AcceptedSocket> accept(const std::atomic<bool>& stop, spdlog::logger& log);

    /// Whether the epoll instance was made; when not, logs why ("cannot wait for
    /// connections") and the child should exit with a failure, so the master backs off.
    bool ready(spdlog::logger& log) const;

private:
    UniqueFd epoll_;
    int error_ = 0;              ///< why the epoll instance could not be made; 0 when it was
    bool failing_ = false;       ///< accept is failing for want of resources; logged once
    std::size_t listening_ = 0;  ///< sockets in the instance that still listen
};

}  // namespace trident
