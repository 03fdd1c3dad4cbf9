#include "common/connection_driver.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "http/connection.hpp"
#include "http/http_date.hpp"
#include "log/access_log.hpp"
#include "trident/scoreboard.hpp"

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
    // MSG_MORE only when file bytes follow: otherwise the kernel would hold the head back
    // until its cork timer (200 ms) fires.
    const bool more = out.file != nullptr && out.file->length > 0;
    if (!send_all(fd, iov, count, more, timeout)) {
        return false;
    }
    return !more || send_file(fd, *out.file, timeout);
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

ConnectionDriver::ConnectionDriver(int fd, const Router& router, const Config& config,
                                   log::AccessLog* access_log)
    : fd_(fd),
      config_(config),
      conn_(router, config),
      phase_(conn_.waiting_for()),
      access_log_(access_log),
      endpoints_(log::Endpoints::of(fd)),
      request_start_(Clock::now()) {
    conn_.set_client_address(endpoints_.client);
    deadline_ = Clock::now() + read_timeout(config_, phase_);
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
        if (peer.ss_family == AF_INET) {
            ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, client_,
                        sizeof client_);
        } else if (peer.ss_family == AF_INET6) {
            ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, client_,
                        sizeof client_);
        }
    }
}

void ConnectionDriver::report_reading() noexcept {
    if (slot_ != nullptr) {
        slot_->set_state(phase_ == http::Wait::keep_alive ? WorkerState::keep_alive
                                                          : WorkerState::reading);
    }
}

void ConnectionDriver::report_response() noexcept {
    if (slot_ == nullptr) {
        return;
    }
    slot_->set_state(WorkerState::writing);
    // "METHOD target HTTP/x.y", cut to fit; appended by hand, as this runs per request.
    char line[WorkerSlot::kRequestTextSize];
    std::size_t used = 0;
    auto append = [&](std::string_view part) {
        const std::size_t n = std::min(part.size(), sizeof line - used);
        std::memcpy(line + used, part.data(), n);
        used += n;
    };
    if (const http::Request* request = conn_.current_request()) {
        append(request->method_text);
        append(" ");
        append(request->target);
        append(request->version.minor == 0 ? " HTTP/1.0" : " HTTP/1.1");
    }
    const std::string_view text(line, used);
    slot_->set_text(client_, text);
}

ConnectionDriver::~ConnectionDriver() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

bool ConnectionDriver::between_requests() const noexcept {
    return phase_ == http::Wait::first_request || phase_ == http::Wait::keep_alive;
}

void ConnectionDriver::start_phase() noexcept {
    // One deadline per phase (head, body, idle): slow trickling cannot extend it.
    phase_ = conn_.waiting_for();
    deadline_ = Clock::now() + read_timeout(config_, phase_);
}

http::Action ConnectionDriver::advance(const std::atomic<bool>& stopping) {
    thread_local http::DateCache dates;
    // On a graceful stop the next response is planned with "Connection: close", so the
    // client is told before the connection ends (RFC 9112 §9.6).
    if (stopping.load(std::memory_order_relaxed)) {
        conn_.close_after_response();
    }
    if (expired_) {
        expired_ = false;
        const http::Action action = conn_.on_timeout(dates.get(std::time(nullptr)));
        responded_ = action == http::Action::write;
        return action;
    }
    return conn_.next(dates.get(std::time(nullptr)));
}

ConnectionDriver::Received ConnectionDriver::receive() {
    const std::span<char> space = conn_.input_space();
    const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n > 0) {
        mark_request_start();
        conn_.commit_input(std::size_t(n));
        return Received::data;
    }
    if (n == 0) {
        conn_.on_peer_eof();  // the connection decides what an end of stream means now
        return Received::data;
    }
    return errno == EAGAIN || errno == EINTR ? Received::nothing : Received::broken;
}

ConnectionDriver::Outcome ConnectionDriver::run(const std::atomic<bool>& stopping, bool park,
                                                WorkerSlot* slot) noexcept {
    slot_ = slot;
    try {
        http::Action action = advance(stopping);
        for (;;) {
            if (action == http::Action::close) {
                break;
            }
            if (action == http::Action::write) {
                report_response();
                const http::Output& out = conn_.output();
                const std::uint64_t bytes =
                    out.head.size() + out.body.size() + (out.file ? out.file->length : 0);
                const bool sent = write_output(fd_, out, config_.timeouts.send);
                log::log_response(access_log_, conn_, endpoints_, request_start_, sent);
                if (!sent) {
                    responded_ = false;  // the peer is gone or stuck: nothing to protect
                    break;
                }
                if (slot_ != nullptr) {
                    slot_->count_request(bytes, std::chrono::system_clock::now(),
                                         std::chrono::duration_cast<std::chrono::microseconds>(
                                             Clock::now() - request_start_));
                }
                request_start_ = Clock::now();  // a pipelined request waits from here
                responded_ = true;
                conn_.output_sent();
                start_phase();
                action = advance(stopping);
                continue;
            }
            // Action::read
            if (conn_.waiting_for() != phase_) {
                start_phase();
            }
            report_reading();
            const bool idle = phase_ == http::Wait::keep_alive;
            // Parking mode never waits for a head here: it takes what already arrived and
            // hands the connection back when the socket is empty. A body is waited for.
            const bool parks = park && phase_ != http::Wait::body;
            if (!parks) {
                const Ready ready = wait_ready(fd_, POLLIN, deadline_, idle ? &stopping : nullptr);
                if (ready == Ready::stopped || ready == Ready::failed) {
                    responded_ = false;  // idle or broken: no response of ours is in flight
                    break;
                }
                if (ready == Ready::timeout) {
                    expire();
                    action = advance(stopping);
                    continue;
                }
            }
            const Received got = receive();
            if (got == Received::broken) {
                responded_ = false;  // reset by the peer
                break;
            }
            if (got == Received::nothing && parks) {
                if (idle && stopping.load(std::memory_order_relaxed)) {
                    responded_ = false;
                    break;
                }
                return Outcome::parked;
            }
            action = advance(stopping);
        }
    } catch (...) {
        // Out of memory in the core: drop this connection, keep the process serving.
        responded_ = false;
    }
    if (slot_ != nullptr) {
        slot_->set_state(WorkerState::closing);
    }
    if (access_log_ != nullptr) {
        access_log_->flush();  // the connection ends: nothing waits in this worker's buffer
    }
    const Outcome outcome = finish(park);
    slot_ = nullptr;
    return outcome;
}

ConnectionDriver::Outcome ConnectionDriver::finish(bool park) noexcept {
    if (park) {
        // The event loop owns the descriptor's registration, so it closes the socket (by
        // destroying this driver) after deregistering it; a lingering drain is its job too.
        return responded_ && ::shutdown(fd_, SHUT_WR) == 0 ? Outcome::linger : Outcome::closed;
    }
    if (responded_) {
        lingering_close(fd_);
    } else {
        ::close(fd_);
    }
    fd_ = -1;
    return Outcome::closed;
}

void serve_connection(int fd, const Router& router, const Config& config,
                      const std::atomic<bool>& stopping, WorkerSlot* slot,
                      log::AccessLog* access_log) noexcept {
    try {
        if (slot != nullptr) {
            slot->count_connection();
        }
        ConnectionDriver(fd, router, config, access_log).run(stopping, false, slot);
    } catch (...) {
        ::close(fd);  // the driver could not even be built: out of memory
    }
}

}  // namespace trident
