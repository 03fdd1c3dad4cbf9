#include "common/listener_set.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/logger.h>

namespace trident {

bool accept_error_is_transient(int error) noexcept {
    switch (error) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
        case EPERM:  // a firewall rule refused this connection
            return true;
        default:
            return false;
    }
}

ListenerSet::ListenerSet(std::span<const Listener> listeners) noexcept
    : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_.valid()) {
        error_ = errno;
        return;
    }
    for (const Listener& listener : listeners) {
        epoll_event ev{};
        // Level-triggered: a connection that waits stays reported until accepted, and
        // epoll hands the ready listeners out in turn, so none is starved.
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.fd = listener.fd;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener.fd, &ev) != 0) {
            error_ = errno;
            epoll_.reset();
            return;
        }
        ++listening_;
    }
}

bool ListenerSet::ready(spdlog::logger& log) const {
    if (!epoll_.valid()) {
        log.error("cannot wait for connections: {}", std::strerror(error_));
        return false;
    }
    return true;
}

std::optional<AcceptedSocket> ListenerSet::accept(const std::atomic<bool>& stop,
                                                  spdlog::logger& log) {
    if (!ready(log)) {
        return std::nullopt;
    }
    while (listening_ > 0 && !stop.load(std::memory_order_relaxed)) {
        // A bounded wait, so a stop request is seen within a second even if the signal
        // went to another thread.
        epoll_event ready{};
        if (::epoll_wait(epoll_.get(), &ready, 1, 1000) != 1) {
            continue;
        }
        // Blocking: the connection driver waits for a request in recv itself.
        AcceptedSocket accepted;
        socklen_t length = sizeof accepted.peer;
        accepted.fd = ::accept4(ready.data.fd, reinterpret_cast<sockaddr*>(&accepted.peer), &length,
                                SOCK_CLOEXEC);
        if (accepted.fd >= 0) {
            failing_ = false;
            return accepted;
        }
        if (errno == EINVAL) {
            // The master no longer listens on it: it is stopping, or a reload dropped this
            // socket (this generation's stop is on its way). The others are still served
            // meanwhile: a reload's new children may not be there yet.
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, ready.data.fd, nullptr);
            if (--listening_ == 0) {
                return std::nullopt;
            }
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            failing_ = false;  // another process won: nothing is short
            continue;
        }
        // A client that gave up, or its network failed: wait again.
        if (!accept_error_is_transient(errno)) {
            // Out of descriptors or memory: pause instead of spinning on the level-triggered
            // socket while they free up, and say so once per episode, not every 10 ms.
            if (!failing_) {
                log.error("accept: {}", std::strerror(errno));
                failing_ = true;
            }
            ::usleep(10'000);
        }
    }
    return std::nullopt;
}

}  // namespace trident
