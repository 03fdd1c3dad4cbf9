#include "common/listener_set.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/logger.h>

namespace trident {

ListenerSet::ListenerSet(std::span<const Listener> listeners) {
    for (const Listener& listener : listeners) {
        fds_.push_back(pollfd{listener.fd, POLLIN, 0});
    }
}

std::optional<AcceptedSocket> ListenerSet::accept(const std::atomic<bool>& stop,
                                                  spdlog::logger& log) {
    while (!stop.load(std::memory_order_relaxed)) {
        // A bounded wait, so a stop request is seen within a second even if the signal
        // went to another thread.
        if (::poll(fds_.data(), fds_.size(), 1000) <= 0) {
            continue;
        }
        for (std::size_t i = 0; i < fds_.size(); ++i) {
            const pollfd& pfd = fds_[(next_ + i) % fds_.size()];
            if ((pfd.revents & POLLIN) == 0) {
                continue;
            }
            next_ = (next_ + i + 1) % fds_.size();
            // Blocking: the connection driver waits for a request in recv itself.
            AcceptedSocket accepted;
            socklen_t length = sizeof accepted.peer;
            accepted.fd = ::accept4(pfd.fd, reinterpret_cast<sockaddr*>(&accepted.peer), &length,
                                    SOCK_CLOEXEC);
            if (accepted.fd >= 0) {
                return accepted;
            }
            if (errno == EMFILE || errno == ENFILE) {
                log.error("accept: {}", std::strerror(errno));
                ::usleep(10'000);  // let descriptors free up instead of spinning
            }
            break;  // EAGAIN (another process won), ECONNABORTED, EINTR: poll again
        }
    }
    return std::nullopt;
}

}  // namespace trident
