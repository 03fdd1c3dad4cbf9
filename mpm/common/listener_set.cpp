#include "common/listener_set.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/logger.h>

namespace trident {

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
    while (!stop.load(std::memory_order_relaxed)) {
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
            return accepted;
        }
        if (errno == EMFILE || errno == ENFILE) {
            log.error("accept: {}", std::strerror(errno));
            ::usleep(10'000);  // let descriptors free up instead of spinning
        }
        // EAGAIN (another process won), ECONNABORTED, EINTR: wait again
    }
    return std::nullopt;
}

}  // namespace trident
