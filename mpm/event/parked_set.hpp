#pragma once

// The event child's parked set: an epoll instance holding every connection of the child
// that has waited for its client, edge-triggered, registered once until it closes, and
// the listening sockets (exclusively); plus a registry that finds the connection an event
// names. Idle workers wait on it themselves, so bytes arriving on a parked connection wake
// one worker directly, with no hand-off through the listener, and a keep-alive request
// costs no epoll_ctl: see event_connection.hpp for who holds what.

#include <sys/epoll.h>

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "event/event_connection.hpp"

namespace trident {

class ParkedSet {
public:
    ParkedSet();  ///< throws std::system_error when the kernel refuses an epoll instance
    ParkedSet(const ParkedSet&) = delete;
    ParkedSet& operator=(const ParkedSet&) = delete;

    int fd() const noexcept { return epoll_.get(); }

    /// Watches `signal_fd` level-triggered: every waiter sees it while it is readable. Its
    /// events carry `key`, which no connection's key can equal.
    void watch_signal(int signal_fd, std::uint64_t key);
    static constexpr std::uint64_t kSignalKey = ~std::uint64_t{0};

    /// Watches listening socket `fd` for new connections, edge-triggered and exclusive: an
    /// arrival wakes one waiter among all the children watching it, the first in the
    /// socket's queue that has a thread asleep in epoll_wait, instead of every child. Its
    /// events carry listener_key(index). Registering a socket with connections queued raises
    /// an event at once. Throws std::system_error (out of memory, max_user_watches).
    void watch_listener(int fd, std::size_t index);
    /// Stops watching it: the next arrival wakes another child.
    void unwatch_listener(int fd) noexcept;
    static constexpr std::uint64_t kListenerBit = std::uint64_t{1} << 63;
    static constexpr std::uint64_t listener_key(std::size_t index) noexcept {
        return kListenerBit | index;
    }
    /// Whether an event's key names a listening socket, and which (an index of watch_listener).
    static constexpr bool is_listener_key(std::uint64_t key) noexcept {
        return key != kSignalKey && (key & kListenerBit) != 0;
    }
    static constexpr std::size_t listener_index(std::uint64_t key) noexcept {
        return std::size_t(key & ~kListenerBit);
    }

    /// Registers `conn` for the rest of its life; the caller holds it. Once registered, a
    /// parked connection is taken by the first worker its bytes wake; until then nobody but
    /// the caller can take it. Throws std::system_error (out of memory, max_user_watches).
    void add(const ConnectionPtr& conn);
    /// Takes `conn` out: an event that names it from now on, or was taken already, finds
    /// nothing. Its holder calls this before the socket closes, which ends the
    /// registration.
    void remove(EventConnection& conn) noexcept;

    /// Waits for events; at most events.size() of them. Returns how many (0 on EINTR).
    std::size_t wait(std::span<epoll_event> events) noexcept;

    /// The connection `key` names, taken for the caller (EventConnection::take_on_event);
    /// null when it is gone (the event is stale) or held by another thread, who is told.
    /// `events` is the event's mask: an end of stream in it is noted on the connection
    /// (EventConnection::end_seen) either way.
    ConnectionPtr take(std::uint64_t key, std::uint32_t events);

    /// Takes, for the caller, every parked connection whose wait ends by `due` (steady clock
    /// ticks), appending them to `out`. Its deadline may have moved since: it was served and
    /// parked again between the look and the taking. Throws std::bad_alloc before taking
    /// any.
    void take_parked(ConnectionDriver::Clock::rep due, std::vector<ConnectionPtr>& out);

private:
    /// Below kListenerBit: a descriptor is a non-negative int.
    static std::uint64_t key_of(const EventConnection& conn) noexcept {
        return std::uint64_t(std::uint32_t(conn.driver.fd())) << 32 | conn.id;
    }

    UniqueFd epoll_;
    std::mutex mutex_;  ///< guards by_fd_
    std::vector<ConnectionPtr> by_fd_;
};

}  // namespace trident
