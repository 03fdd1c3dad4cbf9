#include "common/blocking_driver.hpp"

#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>

#include "http/connection.hpp"
#include "http/http_date.hpp"

namespace trident {

namespace {

using Clock = std::chrono::steady_clock;

// How long a closing connection keeps reading what the client still sends, so that our
// last response is not destroyed by a TCP reset (Apache's lingering close: 2 s).
constexpr auto kLingerTime = std::chrono::seconds(2);
// The longest single poll: waits wake at least this often to notice a graceful stop.
constexpr auto kPollSlice = std::chrono::milliseconds(1000);

enum class Ready : std::uint8_t { yes, timeout, stopped, failed };

/// Waits until `fd` is ready for `events`, the deadline passes, or (when `stopping` is
/// given) a graceful stop is requested.
Ready wait_ready(int fd, short events, Clock::time_point deadline,
                 const std::atomic<bool>* stopping) noexcept {
    for (;;) {
        if (stopping != nullptr && stopping->load(std::memory_order_relaxed)) {
            return Ready::stopped;
        }
        const auto now = Clock::now();
        if (now >= deadline) {
            return Ready::timeout;
        }
        const auto slice = std::min<Clock::duration>(deadline - now, kPollSlice);
        const int ms = int(std::chrono::ceil<std::chrono::milliseconds>(slice).count());
        pollfd pfd{fd, events, 0};
        const int n = ::poll(&pfd, 1, ms);
        if (n > 0) {
            return Ready::yes;  // POLLHUP/POLLERR too: the next call reports the error
        }
        if (n < 0 && errno != EINTR) {
            return Ready::failed;
        }
    }
}

/// After a failed send: true when sending again is worth it, because the call was
/// interrupted or the socket buffer gained room within the send timeout.
bool send_may_retry(int fd, Duration timeout) noexcept {
    return errno == EINTR || (errno == EAGAIN && wait_ready(fd, POLLOUT, Clock::now() + timeout,
                                                            nullptr) == Ready::yes);
}

/// Writes every byte of the iovecs; false on error or when the send timeout passes without
/// progress (Apache's Timeout: the limit is per step, not for the whole response).
bool send_all(int fd, iovec* iov, int count, bool more, Duration timeout) noexcept {
    while (count > 0) {
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = std::size_t(count);
        const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n < 0) {
            if (send_may_retry(fd, timeout)) {
                continue;
            }
            return false;
        }
        std::size_t left = std::size_t(n);
        while (count > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            ++iov;
            --count;
        }
        if (count > 0) {
            iov->iov_base = static_cast<char*>(iov->iov_base) + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

bool send_file(int fd, const http::FileBody& file, Duration timeout) noexcept {
    off_t offset = off_t(file.offset);
    std::uint64_t left = file.length;
    while (left > 0) {
        const std::size_t chunk = std::size_t(std::min<std::uint64_t>(left, 1u << 30));
        const ssize_t n = ::sendfile(fd, file.fd.get(), &offset, chunk);
        if (n > 0) {
            left -= std::uint64_t(n);
            continue;
        }
        if (n == 0) {
            return false;  // the file shrank under us: the promised length cannot be kept
        }
        if (send_may_retry(fd, timeout)) {
            continue;
        }
        return false;
    }
    return true;
}

bool write_output(int fd, const http::Output& out, Duration timeout) noexcept {
    iovec iov[2] = {{const_cast<char*>(out.head.data()), out.head.size()},
                    {const_cast<char*>(out.body.data()), out.body.size()}};
    const int count = out.body.empty() ? 1 : 2;
    if (!send_all(fd, iov, count, out.file != nullptr, timeout)) {
        return false;
    }
    return out.file == nullptr || send_file(fd, *out.file, timeout);
}

/// Half-closes, then drains what the client still sends for a short while before closing,
/// so a response already written is not lost to a reset (RFC 9112 §9.6).
void lingering_close(int fd) noexcept {
    if (::shutdown(fd, SHUT_WR) == 0) {
        const auto deadline = Clock::now() + kLingerTime;
        char sink[4096];
        while (wait_ready(fd, POLLIN, deadline, nullptr) == Ready::yes) {
            const ssize_t n = ::recv(fd, sink, sizeof sink, 0);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                break;
            }
        }
    }
    ::close(fd);
}

Duration read_timeout(const Config& config, http::Wait wait) noexcept {
    switch (wait) {
        case http::Wait::keep_alive:
            return config.keep_alive.timeout;
        case http::Wait::body:
            return config.timeouts.request_body;
        case http::Wait::first_request:
        case http::Wait::head:
            break;
    }
    return config.timeouts.request_header;
}

}  // namespace

void serve_connection(int fd, const Router& router, const Config& config,
                      const std::atomic<bool>& stopping) noexcept {
    thread_local http::DateCache dates;
    bool responded = false;  // whether a response went out, so a close should linger
    try {
        http::Connection conn(router, config);
        // One deadline per phase (head, body, idle): slow trickling cannot extend it.
        http::Wait phase = conn.waiting_for();
        auto deadline = Clock::now() + read_timeout(config, phase);
        // On a graceful stop the next response is planned with "Connection: close", so the
        // client is told before the connection ends (RFC 9112 §9.6).
        auto advance = [&] {
            if (stopping.load(std::memory_order_relaxed)) {
                conn.close_after_response();
            }
            return conn.next(dates.get(std::time(nullptr)));
        };
        http::Action action = advance();
        for (;;) {
            if (action == http::Action::close) {
                break;
            }
            if (action == http::Action::write) {
                if (!write_output(fd, conn.output(), config.timeouts.send)) {
                    responded = false;  // the peer is gone or stuck: nothing to protect
                    break;
                }
                responded = true;
                conn.output_sent();
                phase = conn.waiting_for();
                deadline = Clock::now() + read_timeout(config, phase);
                action = advance();
                continue;
            }
            // Action::read
            if (const http::Wait now = conn.waiting_for(); now != phase) {
                phase = now;
                deadline = Clock::now() + read_timeout(config, phase);
            }
            const bool idle = phase == http::Wait::keep_alive;
            const Ready ready = wait_ready(fd, POLLIN, deadline, idle ? &stopping : nullptr);
            if (ready == Ready::stopped || ready == Ready::failed) {
                responded = false;  // idle or broken: no response of ours is in flight
                break;
            }
            if (ready == Ready::timeout) {
                action = conn.on_timeout(dates.get(std::time(nullptr)));
                responded = action == http::Action::write;
                continue;
            }
            const std::span<char> space = conn.input_space();
            const ssize_t n = ::recv(fd, space.data(), space.size(), 0);
            if (n > 0) {
                conn.commit_input(std::size_t(n));
            } else if (n == 0) {
                conn.on_peer_eof();
            } else if (errno != EINTR && errno != EAGAIN) {
                responded = false;  // reset by the peer
                break;
            }
            action = advance();
        }
    } catch (...) {
        // Out of memory in the core: drop this connection, keep the process serving.
    }
    if (responded) {
        lingering_close(fd);
    } else {
        ::close(fd);
    }
}

}  // namespace trident
