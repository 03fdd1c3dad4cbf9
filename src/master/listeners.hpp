#pragma once

#include <vector>

#include "trident/config.hpp"
#include "trident/mpm.hpp"

namespace trident {

/// Apache's ListenBacklog default.
inline constexpr int kDefaultListenBacklog = 511;

/// Binds and listens on every address, non-blocking and close-on-exec. A port-only entry
/// binds the dual-stack "[::]" (or 0.0.0.0 where IPv6 is off). On failure every socket
/// opened so far is closed and the error names the address, e.g.
/// "cannot bind 127.0.0.1:8080: Address already in use".
Result<std::vector<Listener>> bind_listeners(const std::vector<ListenAddress>& addresses,
                                             int backlog = kDefaultListenBacklog);

void close_listeners(std::vector<Listener>& listeners) noexcept;

/// The master's listening sockets across generations. A reload asks for the new config's
/// addresses: sockets already bound are handed out again (never re-bound, so no connection
/// waiting in their queues is lost), missing ones are bound. commit() then closes the
/// sockets no generation asked for; rollback() closes the ones just bound, for a reload that
/// failed after binding. A socket closed here stops listening at once, though children
/// still hold copies of it.
class ListenerRegistry {
public:
    ListenerRegistry() = default;
    ListenerRegistry(const ListenerRegistry&) = delete;
    ListenerRegistry& operator=(const ListenerRegistry&) = delete;
    ~ListenerRegistry() { close_all(); }

    /// The sockets for `addresses`, in their order, binding those not bound yet. On a bind
    /// error, what this call bound is closed again and the error names the address.
    Result<std::vector<Listener>> acquire(const std::vector<ListenAddress>& addresses,
                                          int backlog = kDefaultListenBacklog);

    /// Keeps exactly the sockets in `in_use`; closes the rest. Call before forking the
    /// generation that uses them, so no child inherits a socket nobody accepts on.
    /// Returns the names of the sockets closed.
    std::vector<std::string> commit(const std::vector<Listener>& in_use);

    /// Closes the sockets bound since the last commit.
    void rollback() noexcept;

    /// Stops listening on every socket: called when the master begins to stop, so clients
    /// are refused from then on instead of queueing for children that no longer accept.
    void close_all() noexcept;

private:
    struct Entry {
        std::string key;  ///< host and port, as bound
        Listener listener;
        bool committed = false;
    };
    std::vector<Entry> entries_;
};

}  // namespace trident
