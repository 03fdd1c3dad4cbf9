#include "common/connection_driver.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>

#include "http/connection.hpp"
#include "http/http_date.hpp"
#include "log/access_log.hpp"
#include "trident/coarse_clock.hpp"
#include "trident/scoreboard.hpp"

namespace trident {

namespace {

using Clock = std::chrono::steady_clock;

// How long a closing connection keeps reading what the client still sends, so that our
// last response is not destroyed by a TCP reset (Apache's lingering close: 2 s).
constexpr auto kLingerTime = std::chrono::seconds(2);
// The longest single wait: a longer one is cut into slices of this, so the receive timeout
// set on a socket (SO_RCVTIMEO) stays the same from one keep-alive wait to the next, and an
// idle wait sees a graceful stop within one.
constexpr auto kPollSlice = std::chrono::milliseconds(1000);
// The most an idle connection waits for its next request once a graceful stop is seen.
constexpr Duration kDrainIdleWaitMax = std::chrono::seconds(5);  // Apache's KeepAliveTimeout

enum class Ready : std::uint8_t { yes, timeout, failed };

/// The next stretch, from `now`, of a wait that ends at `deadline`: at most kPollSlice.
/// Nothing once the deadline has passed.
std::optional<Clock::duration> next_slice(Clock::time_point deadline,
                                          Clock::time_point now) noexcept {
    if (now >= deadline) {
        return std::nullopt;
    }
    return std::min<Clock::duration>(deadline - now, kPollSlice);
}

/// A socket timeout (SO_RCVTIMEO) of `timeout`, at least a millisecond: zero would mean
/// none.
timeval socket_timeout(Clock::duration timeout) noexcept {
    const auto us = std::max<std::int64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(timeout).count(), 1000);
    return timeval{time_t(us / 1'000'000), suseconds_t(us % 1'000'000)};
}

/// Makes a blocking socket non-blocking for its lifetime, then blocking again; does nothing
/// for -1. FIONBIO sets that one flag alone, so the others need not be read first: two
/// calls a file response, where F_GETFL and two F_SETFL took three.
class NonBlocking {
public:
    explicit NonBlocking(int fd) noexcept : fd_(fd) {
        if (fd_ >= 0) {
            ok_ = set(fd_, 1);
        }
    }
    ~NonBlocking() {
        if (fd_ >= 0 && ok_) {
            set(fd_, 0);
        }
    }
    NonBlocking(const NonBlocking&) = delete;
    NonBlocking& operator=(const NonBlocking&) = delete;
    bool ok() const noexcept { return ok_; }

private:
    static bool set(int fd, int on) noexcept { return ::ioctl(fd, FIONBIO, &on) == 0; }

    int fd_;
    bool ok_ = true;
};

/// Waits until `fd` is ready for `events` or the deadline passes.
Ready wait_ready(int fd, short events, Clock::time_point deadline) noexcept {
    for (;;) {
        const std::optional<Clock::duration> slice = next_slice(deadline, Clock::now());
        if (!slice) {
            return Ready::timeout;
        }
        const int ms = int(std::chrono::ceil<std::chrono::milliseconds>(*slice).count());
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

/// Half-closes, then drains what the client still sends for a short while before closing,
/// so a response already written is not lost to a reset (RFC 9112 §9.6).
void lingering_close(int fd) noexcept {
    if (::shutdown(fd, SHUT_WR) == 0) {
        const auto deadline = Clock::now() + kLingerTime;
        char sink[4096];
        while (wait_ready(fd, POLLIN, deadline) == Ready::yes) {
            const ssize_t n = ::recv(fd, sink, sizeof sink, 0);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                break;
            }
        }
    }
    ::close(fd);
}

/// The longest a read phase may last however fast the client trickles; zero: no limit.
Duration read_timeout_max(const Config& config, http::Wait wait) noexcept {
    switch (wait) {
        case http::Wait::keep_alive:
            return config.keep_alive.timeout;  // idle: nothing arrives to extend it
        case http::Wait::body:
            return config.timeouts.request_body_max;
        case http::Wait::first_request:
        case http::Wait::head:
            break;
    }
    return config.timeouts.request_header_max;
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

Duration drain_idle_wait(const Config& config) noexcept {
    Duration wait = std::min(config.keep_alive.timeout, kDrainIdleWaitMax);
    if (config.timeouts.graceful_shutdown.count() > 0) {
        wait = std::min(wait, config.timeouts.graceful_shutdown / 2);
    }
    return wait;
}

ConnectionDriver::ConnectionDriver(int fd, const Router& router, const Config& config,
                                   log::AccessLog* access_log, const sockaddr_storage* peer)
    : fd_(fd),
      config_(config),
      conn_(router, config),
      phase_(conn_.waiting_for()),
      access_log_(access_log),
      endpoints_(log::Endpoints::of(fd, peer, /*with_local=*/access_log != nullptr)),
      request_start_(Clock::now()) {
    conn_.set_client_address(endpoints_.client);
    start_phase();
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
    slot_->set_text(endpoints_.client, text);
}

ConnectionDriver::~ConnectionDriver() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

bool ConnectionDriver::between_requests() const noexcept {
    return phase_ == http::Wait::first_request || phase_ == http::Wait::keep_alive;
}

void ConnectionDriver::start_phase(Clock::time_point now) noexcept {
    const http::Wait next = conn_.waiting_for();
    // The header clock runs from the accept: the first byte of a first request continues
    // that phase, it does not restart it (or a client could renew it byte by byte).
    const bool continues = phase_ == http::Wait::first_request && next == http::Wait::head &&
                           deadline_ != Clock::time_point{};
    phase_ = next;
    if (continues) {
        return;
    }
    const Duration timeout = read_timeout(config_, phase_);
    const Duration max = read_timeout_max(config_, phase_);
    deadline_ = now + timeout;
    hard_deadline_ = max.count() == 0 ? Clock::time_point::max() : now + std::max(timeout, max);
}

void ConnectionDriver::took_bytes(std::size_t bytes) noexcept {
    // The first bytes of a request: its duration (%D, Total Duration) runs from now, and a
    // keep-alive wait becomes a head's.
    const bool first = between_requests();
    const Clock::time_point now = first ? Clock::now() : Clock::time_point{};
    if (first) {
        request_start_ = now;
    }
    conn_.commit_input(bytes);
    if (phase_ == http::Wait::keep_alive) {
        start_phase(now);
    }
    extend_deadline(bytes);
}

void ConnectionDriver::extend_deadline(std::size_t bytes) noexcept {
    const std::uint32_t rate = config_.timeouts.min_data_rate;
    if (rate == 0 || phase_ == http::Wait::keep_alive) {
        return;
    }
    // A second per `rate` bytes, in microseconds so that small reads count too.
    const auto extra = std::chrono::microseconds(std::uint64_t(bytes) * 1'000'000 / rate);
    deadline_ = hard_deadline_ - deadline_ <= extra ? hard_deadline_ : deadline_ + extra;
}

http::Action ConnectionDriver::advance(const std::atomic<bool>& stopping) {
    http::DateCache& dates = *dates_;
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

ConnectionDriver::Sent ConnectionDriver::send_some() noexcept {
    const http::Output& out = conn_.output();
    const std::size_t in_memory = out.head.size() + out.body.size();
    const std::uint64_t in_file = out.file != nullptr ? out.file->length : 0;
    while (sent_bytes_ < in_memory) {
        iovec iov[2];
        int count = 0;
        if (sent_bytes_ < out.head.size()) {
            iov[count++] = {const_cast<char*>(out.head.data()) + sent_bytes_,
                            out.head.size() - sent_bytes_};
        }
        const std::size_t body_done =
            sent_bytes_ > out.head.size() ? sent_bytes_ - out.head.size() : 0;
        if (body_done < out.body.size()) {
            iov[count++] = {const_cast<char*>(out.body.data()) + body_done,
                            out.body.size() - body_done};
        }
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = std::size_t(count);
        // MSG_MORE only when file bytes follow: otherwise the kernel would hold the head
        // back until its cork timer (200 ms) fires.
        const ssize_t n =
            ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT | (in_file > 0 ? MSG_MORE : 0));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN ? Sent::blocked : Sent::failed;
        }
        sent_bytes_ += std::size_t(n);
    }
    if (in_file == 0) {
        return Sent::done;
    }
    // sendfile() has no "don't wait" flag. On a blocking socket it waits for any room at
    // all, and a client that takes a trickle kept it going for several times
    // timeouts.send. So the socket does not block while the file goes out: a full socket
    // returns here, and send_blocking() waits for room with poll(), as for every other
    // write (Apache's Timeout: one step of the write). It blocks again afterwards, for the
    // recv waits.
    const NonBlocking nonblocking(blocking_ ? fd_ : -1);
    if (!nonblocking.ok()) {
        return Sent::failed;
    }
    const http::FileBody& file = *out.file;
    if (file.pieces.empty()) {
        return send_file_part(file.fd.get(), file.offset, file.length, 0);
    }
    // multipart/byteranges: each piece's bytes, then its range of the file. `base` is where
    // the piece starts in the body; sent_file_bytes_ says how far the body got.
    std::uint64_t base = 0;
    for (std::size_t i = 0; i < file.pieces.size(); ++i) {
        const http::BodyPiece& piece = file.pieces[i];
        const bool last = i + 1 == file.pieces.size();
        while (sent_file_bytes_ < base + piece.bytes.size()) {
            const std::size_t done = std::size_t(sent_file_bytes_ - base);
            iovec iov{const_cast<char*>(piece.bytes.data()) + done, piece.bytes.size() - done};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            // MSG_MORE on every write but the last, so the end leaves without the cork timer.
            const bool more = !last || piece.file_length > 0;
            const ssize_t n =
                ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0));
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return errno == EAGAIN ? Sent::blocked : Sent::failed;
            }
            sent_file_bytes_ += std::uint64_t(n);
        }
        base += piece.bytes.size();
        const Sent sent = send_file_part(file.fd.get(), piece.file_offset, piece.file_length, base);
        if (sent != Sent::done) {
            return sent;
        }
        base += piece.file_length;
    }
    return Sent::done;
}

ConnectionDriver::Sent ConnectionDriver::send_file_part(int file, std::uint64_t offset,
                                                        std::uint64_t length,
                                                        std::uint64_t base) noexcept {
    while (sent_file_bytes_ < base + length) {
        const std::uint64_t done = sent_file_bytes_ - base;
        off_t position = off_t(offset + done);
        const std::size_t chunk = std::size_t(std::min<std::uint64_t>(length - done, 1u << 30));
        const ssize_t n = ::sendfile(fd_, file, &position, chunk);
        if (n > 0) {
            sent_file_bytes_ += std::uint64_t(n);
            continue;
        }
        if (n == 0) {
            return Sent::failed;  // the file shrank under us: the promised length cannot be kept
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN ? Sent::blocked : Sent::failed;
    }
    return Sent::done;
}

bool ConnectionDriver::send_blocking() noexcept {
    for (;;) {
        switch (send_some()) {
            case Sent::done:
                return true;
            case Sent::failed:
                return false;
            case Sent::blocked:
                // Apache's Timeout: the limit is per step, not for the whole response.
                if (wait_ready(fd_, POLLOUT, Clock::now() + config_.timeouts.send) != Ready::yes) {
                    return false;
                }
                break;
        }
    }
}

void ConnectionDriver::response_sent() noexcept {
    const http::Output& out = conn_.output();
    // An interim 100 (Continue) is neither a request served nor a line in the access log.
    const auto now = Clock::now();
    if (!out.interim) {
        const std::uint64_t bytes =
            out.head.size() + out.body.size() + (out.file ? out.file->length : 0);
        const auto duration =
            std::chrono::duration_cast<std::chrono::microseconds>(now - request_start_);
        log::log_response(access_log_, conn_, endpoints_, request_start_, now, true);
        if (slot_ != nullptr) {
            // When the slot was last used needs no finer grain than the clock's tick.
            slot_->count_request(bytes, coarse_wall_now(), duration);
        } else {
            // Finished on the event loop, which has no worker slot: the next worker counts it.
            uncounted_bytes_ = bytes;
            uncounted_duration_ = duration;
        }
        request_start_ = now;  // a pipelined request waits from here
    }
    sent_bytes_ = 0;
    sent_file_bytes_ = 0;
    responded_ = true;
    conn_.output_sent();
    start_phase(now);
}

void ConnectionDriver::response_failed() noexcept {
    if (!conn_.output().interim) {
        // Logged with what reached the socket, as nginx's $body_bytes_sent: "-" would read
        // as an empty response.
        log::log_response(access_log_, conn_, endpoints_, request_start_, Clock::now(), false,
                          sent_bytes_ + sent_file_bytes_);
    }
    responded_ = false;  // the peer is gone or stuck: nothing to protect
}

ConnectionDriver::WriteStep ConnectionDriver::continue_write() noexcept {
    switch (send_some()) {
        case Sent::done:
            response_sent();
            resumed_ = true;
            return WriteStep::done;
        case Sent::blocked:
            write_deadline_ = Clock::now() + config_.timeouts.send;
            return WriteStep::blocked;
        case Sent::failed:
            break;
    }
    response_failed();
    return WriteStep::failed;
}

ConnectionDriver::Received ConnectionDriver::receive() {
    const std::span<char> space = conn_.input_space();
    ssize_t n = 0;
    do {
        n = ::recv(fd_, space.data(), space.size(), MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    note_read(n, space.size());
    if (n > 0) {
        took_bytes(std::size_t(n));
        return Received::data;
    }
    if (n == 0) {
        conn_.on_peer_eof();  // the connection decides what an end of stream means now
        return Received::data;
    }
    return errno == EAGAIN ? Received::nothing : Received::broken;
}

bool ConnectionDriver::set_receive_timeout(Clock::duration timeout) noexcept {
    const timeval tv = socket_timeout(timeout);
    const Clock::duration wanted =
        std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
    if (wanted == receive_timeout_) {
        return true;
    }
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        return false;
    }
    receive_timeout_ = wanted;
    return true;
}

ConnectionDriver::Waited ConnectionDriver::receive_blocking(const std::atomic<bool>* stopping) {
    Clock::time_point now = Clock::now();
    // When the stop was last seen not raised. The grace counts from there, not from when a
    // slice's end lets this thread see it, so the master's graceful_shutdown bound, which
    // counts from the signal, still finds the connection closed.
    Clock::time_point not_stopped = now;
    for (;; now = Clock::now()) {
        if (stopping != nullptr) {
            if (stopping->load(std::memory_order_relaxed)) {
                deadline_ = std::min(deadline_, not_stopped + drain_idle_wait(config_));
            } else {
                not_stopped = now;
            }
        }
        const std::optional<Clock::duration> slice = next_slice(deadline_, now);
        if (!slice) {
            return Waited::timeout;
        }
        // One recv both waits and reads: a keep-alive request costs no poll. The slice is
        // a second in all but a wait's last one, so the option is set once per connection.
        if (!set_receive_timeout(*slice)) {
            return Waited::broken;
        }
        const std::span<char> space = conn_.input_space();
        const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
        note_read(n, space.size());
        if (n > 0) {
            took_bytes(std::size_t(n));
            return Waited::data;
        }
        if (n == 0) {
            conn_.on_peer_eof();
            return Waited::data;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return Waited::broken;
        }
        // The slice ran out, or a signal came: look at the stop flag and the deadline.
    }
}

ConnectionDriver::Outcome ConnectionDriver::run(const std::atomic<bool>& stopping, bool park,
                                                WorkerSlot* slot) noexcept {
    slot_ = slot;
    blocking_ = !park;
    thread_local http::DateCache dates;  // looked up once a run: thread_local costs a call here
    dates_ = &dates;
    try {
        bool after_response = false;  ///< the last step wrote a response
        bool tried_early = false;     ///< the first request was looked for before any poll
        if (resumed_) {
            // continue_write() finished a response off this thread: count it here.
            resumed_ = false;
            after_response = true;
            if (slot_ != nullptr && uncounted_bytes_ > 0) {
                slot_->count_request(uncounted_bytes_, coarse_wall_now(), uncounted_duration_);
            }
            uncounted_bytes_ = 0;
        }
        http::Action action = advance(stopping);
        for (;;) {
            if (action == http::Action::close) {
                break;
            }
            if (action == http::Action::write) {
                report_response();
                if (park) {
                    // A socket that takes no more is left to the event loop: a slow reader
                    // of a large response must not hold a worker thread.
                    const Sent sent = send_some();
                    if (sent == Sent::blocked) {
                        write_deadline_ = Clock::now() + config_.timeouts.send;
                        slot_ = nullptr;
                        return Outcome::writing;
                    }
                    if (sent == Sent::failed) {
                        response_failed();
                        break;
                    }
                } else if (!send_blocking()) {
                    response_failed();
                    break;
                }
                response_sent();
                action = advance(stopping);
                after_response = true;
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
            if (parks && idle && after_response && socket_drained_) {
                // A client that waits for our response before sending again has sent
                // nothing yet: skip the recv that would say so. Bytes it sends from now
                // on raise an event of the parked set; none are left from before, since
                // the last recv took all there was. In a graceful stop too: the response
                // said keep-alive, so the client may be sending its next request, which is
                // answered with Connection: close (RFC 9112 §9.6); the listener ends the
                // wait after drain_idle_wait().
                return Outcome::parked;
            }
            after_response = false;
            if (!parks && phase_ == http::Wait::first_request && !tried_early) {
                // A fresh connection's request has usually arrived by the time it is
                // accepted: read first, and poll only when nothing is there.
                tried_early = true;
                const Received got = receive();
                if (got == Received::broken) {
                    responded_ = false;
                    break;
                }
                if (got == Received::data) {
                    action = advance(stopping);
                    continue;
                }
            }
            if (blocking_) {
                // Idle, the wait goes on through a graceful stop, for drain_idle_wait().
                const Waited got = receive_blocking(idle ? &stopping : nullptr);
                if (got == Waited::broken) {
                    responded_ = false;  // reset by the peer: no response in flight
                    break;
                }
                if (got == Waited::timeout) {
                    expire();
                }
                action = advance(stopping);
                continue;
            }
            if (!parks) {
                if (block_hook_ != nullptr) {
                    block_hook_(block_hook_arg_);  // a body: this thread may wait a while
                }
                const Ready ready = wait_ready(fd_, POLLIN, deadline_);
                if (ready == Ready::failed) {
                    responded_ = false;  // broken: no response of ours is in flight
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
    // RFC 9112 §9.6: close in stages (half-close, then drain what the client still sends)
    // so that bytes arriving after the close do not reset our last response. Needless when
    // the client said it sends nothing more, sent nothing past its request and the last
    // read found the socket empty: nothing can arrive then (nginx skips it the same way).
    if (responded_ && conn_.client_finished() && socket_drained_) {
        responded_ = false;
    }
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

void serve_connection(int fd, const sockaddr_storage& peer, const Router& router,
                      const Config& config, const std::atomic<bool>& stopping, WorkerSlot* slot,
                      log::AccessLog* access_log) noexcept {
    try {
        if (slot != nullptr) {
            slot->count_connection();
        }
        ConnectionDriver(fd, router, config, access_log, &peer).run(stopping, false, slot);
    } catch (...) {
        ::close(fd);  // the driver could not even be built: out of memory
    }
}

}  // namespace trident
