#include "event/parked_set.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace trident {

ParkedSet::ParkedSet() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_.valid()) {
        throw std::system_error(errno, std::generic_category(), "epoll_create1");
    }
}

void ParkedSet::watch_signal(int signal_fd, std::uint64_t key) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = key;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signal_fd, &ev) != 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
}

void ParkedSet::watch_listener(int fd, std::size_t index) {
    epoll_event ev{};
    // Exclusive: only a thread waiting directly on the epoll instance counts as woken (a
    // nested epoll would not), which the workers are. Edge-triggered: a child that leaves
    // what waits to its siblings is not woken again for it.
    ev.events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE;
    ev.data.u64 = listener_key(index);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
}

void ParkedSet::unwatch_listener(int fd) noexcept {
    epoll_event ev{};  // ignored, but kernels before 2.6.9 wanted one
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, &ev);  // fails only if not watched
}

void ParkedSet::add(const ConnectionPtr& conn) {
    const auto fd = std::size_t(conn->driver.fd());
    {
        std::lock_guard lock(mutex_);
        if (fd >= by_fd_.size()) {
            by_fd_.resize(std::max<std::size_t>(fd + 1, by_fd_.size() * 2));
        }
        by_fd_[fd] = conn;
    }
    epoll_event ev{};
    // Edge-triggered: an event per arrival of bytes (or of the end of the stream), none for
    // bytes already seen. Registering a socket that already has bytes raises one at once.
    // EPOLLRDHUP in the mask says the end came too: arriving before the event was taken, it
    // raised no event of its own (see ConnectionDriver::end_of_stream_pending()).
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = key_of(*conn);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, conn->driver.fd(), &ev) != 0) {
        const int error = errno;
        remove(*conn);
        throw std::system_error(error, std::generic_category(), "epoll_ctl");
    }
    conn->registered = true;
}

void ParkedSet::remove(EventConnection& conn) noexcept {
    // The registration itself ends with the socket (nothing else holds its file), which
    // closes right after: an EPOLL_CTL_DEL would be one more system call per connection.
    // An event it raises meanwhile finds no connection under its descriptor and is dropped.
    const auto fd = std::size_t(conn.driver.fd());
    std::lock_guard lock(mutex_);
    if (fd < by_fd_.size() && by_fd_[fd].get() == &conn) {
        by_fd_[fd].reset();
    }
}

std::size_t ParkedSet::wait(std::span<epoll_event> events) noexcept {
    const int n = ::epoll_wait(epoll_.get(), events.data(), int(events.size()), -1);
    return n > 0 ? std::size_t(n) : 0;  // EINTR; nothing else fails on a valid descriptor
}

ConnectionPtr ParkedSet::take(std::uint64_t key, std::uint32_t events) {
    const auto fd = std::size_t(key >> 32);
    ConnectionPtr conn;
    {
        std::lock_guard lock(mutex_);
        if (fd < by_fd_.size()) {
            conn = by_fd_[fd];
        }
    }
    // Gone, or the descriptor number now belongs to a newer connection: the event is stale.
    if (!conn || conn->id != std::uint32_t(key)) {
        return nullptr;
    }
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        // Before the hold changes, so whoever holds it next (this thread, or the holder this
        // event only tells to look again) sees it.
        conn->end_seen.store(true, std::memory_order_relaxed);
    }
    if (!conn->take_on_event()) {
        return nullptr;
    }
    return conn;
}

void ParkedSet::take_parked(ConnectionDriver::Clock::rep due, std::vector<ConnectionPtr>& out) {
    std::lock_guard lock(mutex_);
    // Room first: once taken, a connection must reach `out`, or nobody could ever park it.
    out.reserve(out.size() + by_fd_.size());
    for (const ConnectionPtr& conn : by_fd_) {
        // Sequentially consistent, as EventConnection::park(): a graceful stop must not miss
        // a connection parked just as the flag was raised.
        if (conn && conn->hold.load() == Hold::parked &&
            conn->deadline.load(std::memory_order_relaxed) <= due && conn->take_if_parked()) {
            out.push_back(conn);
        }
    }
}

}  // namespace trident
