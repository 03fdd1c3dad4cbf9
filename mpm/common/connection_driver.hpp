#pragma once

// Moves bytes for the HTTP core over one connection: deadlines, recv, sendmsg and
// sendfile. Prefork and worker run it blocking from accept to close; the event MPM's
// workers run it in parking mode, where it hands the connection back whenever the next
// step would be to wait for the client to send a request.

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>

#include "http/connection.hpp"
#include "log/access_record.hpp"
#include "trident/config.hpp"

namespace trident {

class Router;
class WorkerSlot;
namespace log {
class AccessLog;
}
namespace http {
class DateCache;
}

/// How long, once a graceful stop is seen, an idle keep-alive connection may still wait for
/// its next request: a client that has just had a response may be sending one at that very
/// moment, and a close would lose it. Bounded so that an old generation does not outlive a
/// reload by a long keep_alive.timeout: the least of that timeout, 5 s, and half of
/// timeouts.graceful_shutdown when set (the master kills what is left at that bound).
Duration drain_idle_wait(const Config& config) noexcept;

class ConnectionDriver {
public:
    using Clock = std::chrono::steady_clock;

    enum class Outcome : std::uint8_t {
        closed,   ///< done: closed when blocking; in parking mode closed by the destructor
        parked,   ///< waiting for the client: call run() again once readable, or expire()
        linger,   ///< half-closed after a response: drain briefly, then close (parking mode)
        writing,  ///< the socket is full mid-response: call continue_write() once writable
    };

    /// What continue_write() achieved.
    enum class WriteStep : std::uint8_t {
        done,     ///< the response is out: run() again (on a worker) to go on
        blocked,  ///< the socket is full again: wait until writable (or write_deadline())
        failed,   ///< the peer is gone: close without lingering
    };

    /// Takes ownership of the accepted socket `fd`: non-blocking for run() with `park`,
    /// blocking without (a wait for the client is then one recv, with SO_RCVTIMEO slices).
    /// Each response is written to `access_log` when one is given. `peer` is the client's
    /// address as accept() gave it; without it the driver asks the kernel.
    ConnectionDriver(int fd, const Router& router, const Config& config,
                     log::AccessLog* access_log = nullptr, const sockaddr_storage* peer = nullptr);
    ~ConnectionDriver();
    ConnectionDriver(const ConnectionDriver&) = delete;
    ConnectionDriver& operator=(const ConnectionDriver&) = delete;

    /// Serves requests until the connection ends or, with `park`, until the next step
    /// would wait for a request head (reading a body or writing still blocks here). When
    /// `stopping` is set, the next response says "Connection: close"; an idle connection
    /// still gets its next request, for drain_idle_wait() at most.
    /// `slot`, when given, is the scoreboard slot of the thread running this: the driver
    /// keeps its state ('R', 'K', 'W', 'C'), counters and texts current.
    Outcome run(const std::atomic<bool>& stopping, bool park, WorkerSlot* slot = nullptr) noexcept;

    /// Parking mode: `hook(arg)` runs each time the thread is about to block waiting for
    /// the client (a request body), so a pool can put another thread in its place.
    void set_block_hook(void (*hook)(void*), void* arg) noexcept {
        block_hook_ = hook;
        block_hook_arg_ = arg;
    }

    /// The parked wait's deadline passed: the next run() answers 408 or closes.
    void expire() noexcept { expired_ = true; }

    /// The event loop gives up on a response it was finishing (timeouts.send, an error, a
    /// stop): logged as aborted, as a failed blocking write is.
    void abandon_write() noexcept { response_failed(); }

    /// After Outcome::writing: sends more of the response without blocking. Needs no
    /// worker: the event MPM's listener finishes large writes to slow readers this way.
    WriteStep continue_write() noexcept;
    /// When a blocked write gives up (timeouts.send without progress).
    Clock::time_point write_deadline() const noexcept { return write_deadline_; }

    /// When the parked wait ends without data.
    Clock::time_point deadline() const noexcept { return deadline_; }
    /// The latest the current read phase may last however the client trickles.
    Clock::time_point hard_deadline() const noexcept { return hard_deadline_; }

    /// Parked with no byte of a request yet (a fresh or an idle keep-alive connection).
    bool between_requests() const noexcept;

    /// Parked between two requests of a keep-alive connection.
    bool idle_keep_alive() const noexcept { return phase_ == http::Wait::keep_alive; }
    /// Frees the connection's buffers while it waits for a request it has no byte of yet
    /// (the event MPM parks it so; a blocking driver reads into them at once).
    void release_idle_memory() noexcept { conn_.release_idle_memory(); }
    /// After run() ended in Outcome::linger: the exchange is over, and a lingering close
    /// reads into a scratch buffer of its own, so the connection holds no buffer while it
    /// waits for the client's close.
    void release_memory() noexcept { conn_.release_memory(); }

    int fd() const noexcept { return fd_; }

    /// Whether the last read found the socket empty, or took all it held: only then may the
    /// event MPM wait for an edge-triggered event of new bytes, or a close skip lingering.
    bool socket_drained() const noexcept { return socket_drained_; }
    /// The event that handed this connection over said the client has closed its side
    /// (EPOLLRDHUP). A read shorter than its buffer then no longer means the socket is empty:
    /// the end of the stream waits behind the bytes, and its own edge was already spent on
    /// that event, so it is read for, not waited for.
    void end_of_stream_pending() noexcept { end_pending_ = true; }

private:
    http::Action advance(const std::atomic<bool>& stopping);
    /// Notes what a recv of `space` bytes that returned `n` says of the socket.
    void note_read(ssize_t n, std::size_t space) noexcept {
        // A read that filled the space may have left more behind; a shorter one took it
        // all, unless the client's end of stream is known to wait behind it.
        socket_drained_ = n == 0 || ((n < 0 || std::size_t(n) < space) && !end_pending_);
    }

    enum class Sent : std::uint8_t { done, blocked, failed };
    /// Writes as much of the current output as the socket takes, from where the last call
    /// stopped. Never blocks.
    Sent send_some() noexcept;
    /// Sends [offset, offset + length) of `file`, which starts at `base` in the body, from
    /// wherever sent_file_bytes_ says it stopped.
    Sent send_file_part(int file, std::uint64_t offset, std::uint64_t length,
                        std::uint64_t base) noexcept;
    /// Writes the whole current output, waiting up to timeouts.send for each step.
    bool send_blocking() noexcept;
    /// The response went out: counts it and moves the connection on to its next request.
    void response_sent() noexcept;
    /// The response could not be written: logged as aborted, and no lingering close.
    void response_failed() noexcept;

    enum class Received : std::uint8_t { data, nothing, broken };
    /// One recv into the connection's buffer without waiting: bytes or the end of stream
    /// (data), an empty socket (nothing), or an error (broken).
    Received receive();
    enum class Waited : std::uint8_t { data, timeout, broken };
    /// Blocking mode: a recv that waits for the client until deadline_. With `stopping`
    /// (an idle wait), a graceful stop seen at a slice's end (within a second) brings the
    /// deadline to drain_idle_wait() after the last look that found no stop.
    /// Throws what input_space() throws (out of memory); run() ends the connection then.
    Waited receive_blocking(const std::atomic<bool>* stopping);
    /// Sets SO_RCVTIMEO when it differs from what the socket has.
    bool set_receive_timeout(Clock::duration timeout) noexcept;
    void report_reading() noexcept;
    void report_response() noexcept;
    /// The wait the connection is in now begins at `now` (unless it continues one).
    void start_phase(Clock::time_point now = Clock::now()) noexcept;
    /// Bytes of a request arrived in the buffer: the wait moves on from keep-alive to the
    /// head (so the header clock runs, and the connection is no longer idle), and a head or
    /// body deadline is extended by the data rate.
    void took_bytes(std::size_t bytes) noexcept;
    /// mod_reqtimeout's MinRate: bytes of a head or body push the deadline out by a second
    /// per `min_data_rate` bytes, never past the phase's hard maximum.
    void extend_deadline(std::size_t bytes) noexcept;
    Outcome finish(bool park) noexcept;

    int fd_;
    const Config& config_;
    http::Connection conn_;
    http::Wait phase_;
    Clock::time_point deadline_;
    Clock::time_point hard_deadline_;  ///< the latest the current phase may extend to
    Clock::time_point write_deadline_;
    std::size_t sent_bytes_ = 0;         ///< of the current output's head and bytes body
    std::uint64_t sent_file_bytes_ = 0;  ///< of its file body
    std::uint64_t uncounted_bytes_ = 0;  ///< a response finished off a worker, to count
    std::chrono::microseconds uncounted_duration_{0};
    bool resumed_ = false;    ///< continue_write() finished a response: run() goes on from it
    bool responded_ = false;  ///< a response went out: a close should linger
    bool expired_ = false;
    bool socket_drained_ = false;          ///< see socket_drained()
    bool end_pending_ = false;             ///< see end_of_stream_pending()
    bool blocking_ = false;                ///< during run() without `park`: the socket blocks
    Clock::duration receive_timeout_{0};   ///< the socket's SO_RCVTIMEO; 0: none set yet
    WorkerSlot* slot_ = nullptr;           ///< during run(): where to report
    http::DateCache* dates_ = nullptr;     ///< during run(): the thread's Date field
    void (*block_hook_)(void*) = nullptr;  ///< see set_block_hook()
    void* block_hook_arg_ = nullptr;
    log::AccessLog* access_log_;  ///< null: access_log off
    log::Endpoints endpoints_;
    Clock::time_point request_start_;
};

/// Serves the accepted, blocking socket `fd` from start to close; `peer` is the client's
/// address as accept() gave it.
void serve_connection(int fd, const sockaddr_storage& peer, const Router& router,
                      const Config& config, const std::atomic<bool>& stopping,
                      WorkerSlot* slot = nullptr, log::AccessLog* access_log = nullptr) noexcept;

}  // namespace trident
