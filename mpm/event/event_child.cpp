#include "event/event_child.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/logger.h>

#include "common/connection_driver.hpp"
#include "common/threaded_child.hpp"
#include "common/work_queue.hpp"
#include "log/access_log.hpp"
#include "trident/http/response.hpp"
#include "trident/scoreboard.hpp"

namespace trident {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// Apache's lingering close: how long a half-closed connection is drained before closing.
constexpr auto kLingerTime = std::chrono::seconds(2);
// How often the listener expires waits whose deadline passed, looks at the stop flag and
// at whether accepting may resume: the resolution of every timeout of a parked connection.
constexpr auto kHousekeeping = std::chrono::milliseconds(100);

/// A connection and the listener thread's means of waiting on it. Registered with the
/// listener thread, lent to one worker at a time through the queue. A worker parks it
/// again itself (registering the read with the reactor needs no listener round trip), so
/// the parked state is guarded by `mutex` against the listener's expiry sweep.
struct EventConnection {
    /// Takes the socket from `fd` as the driver is built (which cannot fail), so the socket
    /// has exactly one owner whether or not registering it with epoll throws afterwards.
    EventConnection(asio::io_context& io, UniqueFd& fd, const Router& router, const Config& config,
                    log::AccessLog* access_log)
        : driver(fd.release(), router, config, access_log), stream(io) {
        stream.assign(driver.fd());
    }
    ~EventConnection() {
        // Deregister from epoll before the driver closes the socket, so a reused descriptor
        // number can never be mistaken for this one.
        error_code ignored;
        stream.cancel(ignored);
        stream.release();
    }

    ConnectionDriver driver;  // first: destroyed last, closing the socket
    asio::posix::stream_descriptor stream;
    std::mutex mutex;  ///< guards the wait: wait_id, waiting, deadline, and starting a read
    std::uint64_t wait_id = 0;  ///< names the current wait; completions of older ones are stale
    bool waiting = false;       ///< a read is registered with the reactor for this wait
    ConnectionDriver::Clock::time_point deadline;  ///< when the wait ends without data
    bool lingering = false;                        ///< listener thread only
    bool writing = false;  ///< listener thread only: finishing a response to a slow reader
    bool counted_keep_alive = false;  ///< under `mutex`: in the keep-alive gauge while parked
};

using ConnectionPtr = std::shared_ptr<EventConnection>;

bool writable_now(int fd) noexcept {
    pollfd pfd{fd, POLLOUT, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT) != 0;
}

class EventChild {
public:
    EventChild(const MpmContext& context, const EventChildSettings& settings,
               const std::atomic<bool>& stopping, spdlog::logger& log)
        : context_(context),
          settings_(settings),
          stopping_(stopping),
          log_(log),
          housekeeping_(io_) {}

    int run();

private:
    // Accepting, within Apache's async_request_worker_factor rule.
    bool accept_allowed() const;
    void resume_accepting();
    void arm_accept(std::size_t index);
    void on_accepted(int fd);

    // Waiting for the client without a thread.
    /// Registers a read for the next request; any thread that holds the connection. False
    /// when a graceful stop means the idle connection should close instead.
    bool park(const ConnectionPtr& conn);
    void on_read(const ConnectionPtr& conn, std::uint64_t id, const error_code& ec,
                 std::size_t bytes);
    /// Listener thread: ends the waits whose deadline passed.
    void expire_waits();
    /// Keeps the process's keep-alive gauge; called under the connection's mutex.
    void count_keep_alive(EventConnection& conn, bool idle) noexcept;
    void linger(const ConnectionPtr& conn);
    /// Write completion: waits for room in the socket and sends the rest of a response that
    /// a worker could not, without a thread.
    void await_writable(const ConnectionPtr& conn);
    void on_writable(const ConnectionPtr& conn, std::uint64_t id, const error_code& ec);
    void write_more(const ConnectionPtr& conn);
    void end_writing(const ConnectionPtr& conn);
    void close(const ConnectionPtr& conn);

    // Handing over to and back from the workers.
    void dispatch(const ConnectionPtr& conn);
    void on_worker_done(const ConnectionPtr& conn, ConnectionDriver::Outcome outcome);
    void worker_loop(WorkerSlot& worker);

    void housekeeping();
    void begin_drain();
    ProcessSlot& process_slot() const { return context_.scoreboard->process(settings_.slot); }
    /// Once drained, lets io_.run() return after the last cancelled handler has run, so no
    /// connection outlives the loop it is registered with.
    void finish_if_drained();

    const MpmContext& context_;
    EventChildSettings settings_;
    const std::atomic<bool>& stopping_;
    spdlog::logger& log_;

    asio::io_context io_;  // first: outlives every descriptor and timer bound to it
    asio::steady_timer housekeeping_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
    std::vector<bool> accept_armed_;
    std::unordered_map<EventConnection*, ConnectionPtr> connections_;
    std::size_t lingering_ = 0;
    std::uint64_t accepted_ = 0;
    bool not_accepting_ = false;               ///< accepting paused by the worker-factor rule
    std::atomic<bool> accept_blocked_{false};  ///< same, for workers: nudge when one is idle
    bool draining_ = false;
    std::atomic<bool> drain_flag_{false};  ///< what workers see: finish up, keep nothing open
    std::array<char, 4096> scratch_{};     ///< lingering reads land here, all on this thread
    WorkQueue<ConnectionPtr> queue_;
    std::vector<ConnectionPtr> ready_;  ///< dispatched this round, not yet queued
    bool hand_over_posted_ = false;
    std::vector<std::thread> workers_;
};

int EventChild::run() {
    limit_malloc_arenas();
    try {
        for (const Listener& listener : context_.listeners) {
            sockaddr_storage address{};
            socklen_t length = sizeof address;
            ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&address), &length);
            auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io_);
            acceptor->assign(
                address.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(),
                listener.fd);
            acceptors_.push_back(std::move(acceptor));
        }
        accept_armed_.assign(acceptors_.size(), false);
        for (std::uint32_t i = 0; i < settings_.threads; ++i) {
            WorkerSlot& worker = context_.scoreboard->worker(settings_.slot, i);
            workers_.emplace_back([this, &worker] { worker_loop(worker); });
        }
    } catch (const std::exception& e) {
        log_.error("event child cannot start: {}", e.what());
        queue_.close();
        for (std::thread& worker : workers_) {
            worker.join();
        }
        for (auto& acceptor : acceptors_) {
            acceptor->release();  // the listening sockets belong to the master
        }
        return 1;
    }

    // Accepting needs an idle worker (Apache's rule), so start once the workers are ready;
    // otherwise nothing would arm the acceptors until the first housekeeping tick.
    if (!queue_.wait_for_idle_workers(settings_.threads, std::chrono::seconds(5))) {
        log_.warn("event child: worker threads slow to start; accepting anyway");
    }
    work_.emplace(io_.get_executor());
    housekeeping();
    int status = 0;
    try {
        io_.run();
    } catch (const std::exception& e) {
        // Out of memory in the event loop: stop this child cleanly; the master replaces it.
        log_.error("event child: {}; exiting", e.what());
        status = 1;
    }
    if (context_.access_log != nullptr) {
        context_.access_log->flush();  // lines of responses the listener finished writing
    }

    queue_.close();
    for (std::thread& worker : workers_) {
        worker.join();
    }
    for (auto& acceptor : acceptors_) {
        error_code ignored;
        acceptor->cancel(ignored);
        acceptor->release();
    }
    return status;
}

bool EventChild::accept_allowed() const {
    if (draining_ || (settings_.max_connections != 0 && accepted_ >= settings_.max_connections)) {
        return false;
    }
    // Apache event's rule: a child takes new connections only while it has an idle worker
    // and fewer than threads_per_child + idle × async_request_worker_factor connections
    // (lingering ones excepted), so a busy child leaves new clients to the others.
    const std::size_t idle = queue_.idle_workers();
    const std::size_t active = connections_.size() - lingering_;
    return idle > 0 && active < settings_.threads + idle * settings_.async_factor;
}

void EventChild::resume_accepting() {
    for (std::size_t i = 0; i < acceptors_.size(); ++i) {
        arm_accept(i);
    }
}

void EventChild::arm_accept(std::size_t index) {
    if (accept_armed_[index]) {
        return;
    }
    const bool allowed = accept_allowed();
    // Apache counts the idle workers of a child that does not accept as no spare capacity
    // at all, so the master starts children while every child is full of slow clients.
    if (!draining_ && allowed == not_accepting_) {
        not_accepting_ = !allowed;
        process_slot().set_not_accepting(not_accepting_);
    }
    accept_blocked_.store(!allowed, std::memory_order_relaxed);
    if (!allowed) {
        return;
    }
    accept_armed_[index] = true;
    acceptors_[index]->async_accept(
        [this, index](const error_code& ec, asio::ip::tcp::socket socket) {
            accept_armed_[index] = false;
            if (!ec) {
                on_accepted(socket.release());
            } else if (ec == asio::error::operation_aborted) {
                return;
            } else if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
                log_.error("accept: {}", ec.message());
                return;  // housekeeping retries once descriptors free up
            }
            arm_accept(index);
        });
}

void EventChild::on_accepted(int fd) {
    ++accepted_;
    UniqueFd socket(fd);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ConnectionPtr conn;
    try {
        conn = std::make_shared<EventConnection>(io_, socket, *context_.router, *context_.config,
                                                 context_.access_log);
        connections_.emplace(conn.get(), conn);
        process_slot().add_connections(ConnectionGauge::total, 1);
        // A new connection waits for its first request here, holding no worker: a slow
        // client costs a socket, not a thread.
        if (!park(conn)) {
            close(conn);
        } else if (draining_ && !work_) {
            // Accepted in the round the drain finished (the accept completed before it was
            // cancelled): keep the loop and its deadline sweep running to serve it.
            work_.emplace(io_.get_executor());
            housekeeping();
        }
    } catch (const std::exception& e) {
        log_.error("cannot take a connection: {}", e.what());
        if (conn) {
            close(conn);  // registered already: close() undoes that and the count
        }                 // else the socket was closed by its one owner
    }
    if (settings_.max_connections != 0 && accepted_ >= settings_.max_connections) {
        begin_drain();  // recycled: finish what was accepted, then exit
    }
}

bool EventChild::park(const ConnectionPtr& conn) {
    std::lock_guard lock(conn->mutex);
    // Read under the connection's lock: begin_drain() sets the flag, then visits each
    // connection under its lock, so an idle connection is either closed by the listener or
    // sees the flag here.
    if (drain_flag_.load(std::memory_order_relaxed) && conn->driver.idle_keep_alive()) {
        return false;  // a graceful stop lets idle keep-alive connections go
    }
    const std::uint64_t id = ++conn->wait_id;
    conn->waiting = true;
    conn->deadline = conn->driver.deadline();
    if (conn->driver.idle_keep_alive()) {
        count_keep_alive(*conn, true);  // mod_status's ConnsAsyncKeepAlive
    }
    // async_read_some, not async_wait: the reactor is edge-triggered, and only a read is
    // tried at once when data may already be there (an edge nobody was waiting for).
    const std::span<char> space = conn->driver.read_buffer();
    conn->stream.async_read_some(asio::buffer(space.data(), space.size()),
                                 [this, conn, id](const error_code& ec, std::size_t bytes) {
                                     on_read(conn, id, ec, bytes);
                                 });
    return true;
}

void EventChild::count_keep_alive(EventConnection& conn, bool idle) noexcept {
    if (conn.counted_keep_alive != idle) {
        conn.counted_keep_alive = idle;
        process_slot().add_connections(ConnectionGauge::keep_alive, idle ? 1 : -1);
    }
}

void EventChild::on_read(const ConnectionPtr& conn, std::uint64_t id, const error_code& ec,
                         std::size_t bytes) {
    {
        std::lock_guard lock(conn->mutex);
        if (id != conn->wait_id || !conn->waiting) {
            return;  // stale: the wait ended another way
        }
        conn->waiting = false;
        count_keep_alive(*conn, false);
    }
    if (!ec && bytes > 0) {
        conn->driver.received(bytes);
        dispatch(conn);
    } else {
        close(conn);  // end of stream or an error while waiting for a request: nothing to answer
    }
}

void EventChild::expire_waits() {
    const auto now = ConnectionDriver::Clock::now();
    std::vector<ConnectionPtr> expired;
    std::vector<ConnectionPtr> writable;
    for (const auto& [raw, conn] : connections_) {
        std::lock_guard lock(conn->mutex);
        if (conn->writing && conn->waiting && conn->deadline > now &&
            writable_now(conn->driver.fd())) {
            // A safety net under the edge-triggered reactor: should the edge that made room
            // have come before the wait was registered, the sweep notices within a tick.
            conn->waiting = false;
            error_code ignored;
            conn->stream.cancel(ignored);
            writable.push_back(conn);
            continue;
        }
        if (conn->waiting && conn->deadline <= now) {
            conn->waiting = false;
            count_keep_alive(*conn, false);
            // After cancel() returns, the read can no longer touch the buffer; its handler
            // sees the wait ended and does nothing.
            error_code ignored;
            conn->stream.cancel(ignored);
            expired.push_back(conn);
        }
    }
    for (const ConnectionPtr& conn : writable) {
        write_more(conn);
    }
    for (const ConnectionPtr& conn : expired) {
        if (conn->writing) {
            close(conn);  // timeouts.send passed without the client taking a byte
        } else if (conn->lingering || conn->driver.between_requests()) {
            close(conn);
        } else {
            conn->driver.expire();  // part of a request arrived: a worker answers 408
            dispatch(conn);
        }
    }
}

void EventChild::linger(const ConnectionPtr& conn) {
    std::lock_guard lock(conn->mutex);
    if (!conn->lingering) {
        conn->lingering = true;
        ++lingering_;
        process_slot().add_connections(ConnectionGauge::lingering, 1);
        ++conn->wait_id;
        conn->waiting = true;
        conn->deadline = ConnectionDriver::Clock::now() + kLingerTime;
    }
    const std::uint64_t id = conn->wait_id;
    conn->stream.async_read_some(asio::buffer(scratch_),
                                 [this, conn, id](const error_code& ec, std::size_t) {
                                     {
                                         std::lock_guard relock(conn->mutex);
                                         if (id != conn->wait_id || !conn->waiting) {
                                             return;
                                         }
                                     }
                                     if (ec) {
                                         close(conn);  // the client closed too: done
                                     } else {
                                         linger(conn);  // discard and keep draining
                                     }
                                 });
}

void EventChild::await_writable(const ConnectionPtr& conn) {
    if (!conn->writing) {
        conn->writing = true;
        process_slot().add_connections(ConnectionGauge::writing, 1);
    }
    std::lock_guard lock(conn->mutex);
    const std::uint64_t id = ++conn->wait_id;
    conn->waiting = true;
    conn->deadline = conn->driver.write_deadline();
    // The socket was full a moment ago and the kernel still holds unsent bytes, so the
    // acknowledgements that make room raise a fresh writable edge even if one was missed.
    conn->stream.async_wait(asio::posix::stream_descriptor::wait_write,
                            [this, conn, id](const error_code& ec) { on_writable(conn, id, ec); });
}

void EventChild::on_writable(const ConnectionPtr& conn, std::uint64_t id, const error_code& ec) {
    {
        std::lock_guard lock(conn->mutex);
        if (id != conn->wait_id || !conn->waiting) {
            return;  // stale: the wait ended another way
        }
        conn->waiting = false;
    }
    if (ec) {
        close(conn);  // logs the response as aborted
        return;
    }
    write_more(conn);
}

void EventChild::write_more(const ConnectionPtr& conn) {
    switch (conn->driver.continue_write()) {
        case ConnectionDriver::WriteStep::blocked:
            await_writable(conn);
            break;
        case ConnectionDriver::WriteStep::done:
            end_writing(conn);
            dispatch(conn);  // a worker goes on: the next request may need a handler
            break;
        case ConnectionDriver::WriteStep::failed:  // already logged as aborted by the driver
            end_writing(conn);
            close(conn);
            break;
    }
}

void EventChild::end_writing(const ConnectionPtr& conn) {
    if (conn->writing) {
        conn->writing = false;
        process_slot().add_connections(ConnectionGauge::writing, -1);
    }
}

void EventChild::close(const ConnectionPtr& conn) {
    {
        std::lock_guard lock(conn->mutex);
        conn->waiting = false;
        count_keep_alive(*conn, false);
        error_code ignored;
        conn->stream.cancel(ignored);
    }
    if (conn->writing) {
        conn->driver.abandon_write();  // a response cut short: the access log says so
        end_writing(conn);
    }
    if (conn->lingering) {
        conn->lingering = false;
        --lingering_;
        process_slot().add_connections(ConnectionGauge::lingering, -1);
    }
    if (connections_.erase(conn.get()) > 0) {  // destroyed once the cancelled handlers let go
        process_slot().add_connections(ConnectionGauge::total, -1);
    }
    resume_accepting();
    finish_if_drained();
}

void EventChild::finish_if_drained() {
    if (draining_ && connections_.empty() && work_) {
        work_.reset();
        housekeeping_.cancel();
    }
}

void EventChild::dispatch(const ConnectionPtr& conn) {
    // Collected for the whole round of ready events: handing them over one by one would
    // let each woken worker preempt this thread (on a busy core), two context switches a
    // request instead of a few a round.
    ready_.push_back(conn);
    if (!hand_over_posted_) {
        hand_over_posted_ = true;
        asio::post(io_, [this] {
            hand_over_posted_ = false;
            queue_.push_all(ready_);
        });
    }
}

void EventChild::worker_loop(WorkerSlot& worker) {
    worker.set_state(WorkerState::waiting);
    while (std::optional<ConnectionPtr> conn = queue_.pop()) {
        try {
            const auto outcome = (*conn)->driver.run(drain_flag_, true, &worker);
            worker.set_state(WorkerState::waiting);
            // Parking is this thread's job: the common case of a keep-alive connection
            // waiting for its next request costs the listener no wake-up. Ending a
            // connection changes the listener's books, so that goes through it.
            if (outcome == ConnectionDriver::Outcome::parked && park(*conn)) {
                if (accept_blocked_.load(std::memory_order_relaxed)) {
                    asio::post(io_, [this] { resume_accepting(); });  // a worker is free again
                }
                continue;
            }
            asio::post(io_,
                       [this, conn = std::move(*conn), outcome] { on_worker_done(conn, outcome); });
        } catch (const std::exception& e) {
            // Out of memory registering a wait or handing the connection back: it can no
            // longer be tracked, so this child cannot drain cleanly. Exit at once; the
            // master logs it and starts a replacement.
            log_.error("event worker: {}; the child exits", e.what());
            std::_Exit(1);
        }
    }
    worker.set_state(WorkerState::graceful);
}

void EventChild::on_worker_done(const ConnectionPtr& conn, ConnectionDriver::Outcome outcome) {
    switch (outcome) {
        case ConnectionDriver::Outcome::parked:
            close(conn);  // only reaches here when park() refused: an idle one while draining
            break;
        case ConnectionDriver::Outcome::linger:
            linger(conn);
            break;
        case ConnectionDriver::Outcome::writing:
            await_writable(conn);
            break;
        case ConnectionDriver::Outcome::closed:
            close(conn);
            break;
    }
    resume_accepting();
}

void EventChild::housekeeping() {
    expire_waits();
    if (!draining_ && stopping_.load(std::memory_order_relaxed)) {
        begin_drain();
    }
    if (draining_ && connections_.empty()) {
        finish_if_drained();
        return;
    }
    resume_accepting();  // idle workers may have appeared since the last look
    housekeeping_.expires_after(kHousekeeping);
    housekeeping_.async_wait([this](const error_code& ec) {
        if (!ec) {
            housekeeping();
        }
    });
}

void EventChild::begin_drain() {
    if (draining_) {
        return;
    }
    draining_ = true;
    drain_flag_.store(true, std::memory_order_relaxed);
    for (auto& acceptor : acceptors_) {
        error_code ignored;
        acceptor->cancel(ignored);
    }
    std::vector<ConnectionPtr> idle;
    for (const auto& [raw, conn] : connections_) {
        std::lock_guard lock(conn->mutex);
        // Not one finishing a response: it waits for room, not for a request.
        if (conn->waiting && !conn->lingering && !conn->writing && conn->driver.idle_keep_alive()) {
            idle.push_back(conn);
        }
    }
    for (const ConnectionPtr& conn : idle) {
        close(conn);
    }
    finish_if_drained();
}

}  // namespace

int run_event_child(const MpmContext& context, const EventChildSettings& settings,
                    const std::atomic<bool>& stopping, spdlog::logger& log) noexcept {
    try {
        return EventChild(context, settings, stopping, log).run();
    } catch (const std::exception& e) {
        log.error("event child failed: {}", e.what());
        return 1;
    }
}

}  // namespace trident
