#include "event/event_child.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/logger.h>

#include "common/connection_driver.hpp"
#include "common/threaded_child.hpp"
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
// The parked set's key for the hand-over queue's eventfd. A connection's key is its
// descriptor in the high half, so it never has all bits set.
constexpr std::uint64_t kHandOverKey = ~std::uint64_t{0};
// How many connections a worker serves in a row before it lets other threads run.
constexpr std::uint32_t kYieldEvery = 32;

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

/// A connection and the child's means of waiting on it. Registered with the listener
/// thread, which keeps its deadline; served by one worker at a time.
///
/// While it waits for the client's next request it sits in the child's parked set (an
/// epoll instance, armed one-shot), where an idle worker picks it up. While the listener
/// finishes a write or drains a lingering close, it is watched by the listener's io_context
/// instead, never by both at once: an edge on a descriptor the reactor watches wakes the
/// listener even with no operation pending.
struct EventConnection {
    /// Takes the socket from `fd` as the driver is built (which cannot fail), so the socket
    /// has exactly one owner whatever throws afterwards.
    EventConnection(asio::io_context& io, UniqueFd& fd, const Router& router, const Config& config,
                    log::AccessLog* access_log)
        : driver(fd.release(), router, config, access_log), stream(io) {}
    ~EventConnection() { unwatch(); }

    /// Listener thread: lets the io_context wait on the socket.
    void watch() {
        if (!stream.is_open()) {
            stream.assign(driver.fd());
        }
    }
    /// Listener thread (or the last owner): the io_context stops watching the socket.
    /// Deregistering before the driver closes it means a reused descriptor number can never
    /// be mistaken for this one.
    void unwatch() noexcept {
        if (stream.is_open()) {
            error_code ignored;
            stream.cancel(ignored);
            stream.release();
        }
    }

    ConnectionDriver driver;  // first: destroyed last, closing the socket
    asio::posix::stream_descriptor stream;
    std::mutex mutex;           ///< guards the wait: wait_id, waiting, deadline, armed
    std::uint32_t wait_id = 0;  ///< names the current wait; events of older ones are stale
    bool waiting = false;       ///< a wait (parked set or io_context) is in place
    bool armed = false;         ///< registered with the parked set (perhaps disarmed since)
    ConnectionDriver::Clock::time_point deadline;  ///< when the wait ends without data
    bool lingering = false;                        ///< listener thread only
    bool writing = false;  ///< listener thread only: finishing a response to a slow reader
    bool counted_keep_alive = false;  ///< under `mutex`: in the keep-alive gauge while parked
};

using ConnectionPtr = std::shared_ptr<EventConnection>;

bool ready_now(int fd, short events) noexcept {
    pollfd pfd{fd, events, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & events) != 0;
}

/// Connections the listener gives to a worker: a partial request to answer with 408, or
/// one whose response the listener finished writing. Also carries the workers' stop. Its
/// eventfd sits in the parked set, level-triggered, so a waiting worker wakes for either.
class HandOver {
public:
    HandOver() : event_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (event_.get() < 0) {
            throw_errno("eventfd");
        }
    }
    int fd() const noexcept { return event_.get(); }

    void push(ConnectionPtr conn) {
        std::lock_guard lock(mutex_);
        items_.push_back(std::move(conn));
        signal();
    }
    /// Every worker sees it: the eventfd stays readable from now on.
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        signal();
    }
    /// Nothing: closed. A null pointer: another worker took what there was.
    std::optional<ConnectionPtr> pop() {
        std::lock_guard lock(mutex_);
        if (closed_) {
            return std::nullopt;
        }
        if (items_.empty()) {
            return ConnectionPtr{};
        }
        ConnectionPtr conn = std::move(items_.front());
        items_.pop_front();
        if (items_.empty()) {
            std::uint64_t count = 0;  // under the lock: a push after this signals afresh
            [[maybe_unused]] const ssize_t n = ::read(event_.get(), &count, sizeof count);
            signalled_ = false;
        }
        return conn;
    }

private:
    void signal() noexcept {
        if (!signalled_) {
            const std::uint64_t one = 1;
            [[maybe_unused]] const ssize_t n = ::write(event_.get(), &one, sizeof one);
            signalled_ = true;
        }
    }

    UniqueFd event_;
    std::mutex mutex_;
    std::deque<ConnectionPtr> items_;
    bool signalled_ = false;
    bool closed_ = false;
};

class EventChild {
public:
    EventChild(const MpmContext& context, const EventChildSettings& settings,
               const std::atomic<bool>& stopping, spdlog::logger& log)
        : context_(context),
          settings_(settings),
          stopping_(stopping),
          log_(log),
          parked_(::epoll_create1(EPOLL_CLOEXEC)),
          housekeeping_(io_) {
        if (parked_.get() < 0) {
            throw_errno("epoll_create1");
        }
        epoll_event ev{};
        ev.events = EPOLLIN;  // level-triggered: every waiting worker sees a stop
        ev.data.u64 = kHandOverKey;
        if (::epoll_ctl(parked_.get(), EPOLL_CTL_ADD, hand_over_.fd(), &ev) != 0) {
            throw_errno("epoll_ctl");
        }
    }

    int run();

private:
    // Accepting, within Apache's async_request_worker_factor rule.
    bool accept_allowed() const;
    void resume_accepting();
    void arm_accept(std::size_t index);
    /// Registers a freshly accepted socket; `fresh_` holds it until park_fresh().
    void on_accepted(int fd, bool flags_set);
    /// Parks the connections accepted this round. Done once the round's accepts are over:
    /// each park may wake a worker, which on a busy core would preempt the accepting.
    void park_fresh();

    // Waiting for the client without a thread.
    /// Puts the connection in the parked set until its next request arrives; any thread
    /// that holds the connection. False when a graceful stop means the idle connection
    /// should close instead.
    bool park(const ConnectionPtr& conn);
    /// (Re)arms the connection's one-shot entry in the parked set under a fresh wait id;
    /// the caller holds the connection's mutex.
    void arm(EventConnection& conn, std::uint32_t events);
    /// Takes a connection out of the parked set (it is no longer waiting); under its mutex.
    void disarm(EventConnection& conn) noexcept;
    /// Listener thread: ends the waits whose deadline passed.
    void expire_waits();
    /// Keeps the process's keep-alive gauge; called under the connection's mutex.
    void count_keep_alive(EventConnection& conn, bool idle) noexcept;
    void linger(const ConnectionPtr& conn);
    /// Write completion: waits for room in the socket and sends the rest of a response that
    /// a worker could not, without a thread.
    void await_writable(const ConnectionPtr& conn);
    void on_writable(const ConnectionPtr& conn, std::uint32_t id, const error_code& ec);
    void write_more(const ConnectionPtr& conn);
    void end_writing(const ConnectionPtr& conn);
    void close(const ConnectionPtr& conn);

    // The workers' side.
    void worker_loop(WorkerSlot& worker);
    /// Waits until a worker about to block on a client promotes this one; false once the
    /// child is done.
    bool wait_in_reserve();
    /// A worker is about to block waiting for a client: if no other waits on the parked
    /// set, a reserve worker takes its place there.
    void promote_if_needed();
    void close_reserve();
    /// The connection a parked-set event names, if that wait is still current; it is the
    /// caller's to serve from then on.
    ConnectionPtr claim(std::uint64_t key);
    void serve(WorkerSlot& worker, ConnectionPtr conn);
    /// Listener thread: gives a connection it holds to a worker.
    void hand_over(const ConnectionPtr& conn);
    void on_worker_done(const ConnectionPtr& conn, ConnectionDriver::Outcome outcome);

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
    HandOver hand_over_;
    /// The parked set: connections waiting for their next request. Idle workers wait on it
    /// themselves, so a request that arrives on a parked connection is served by the first
    /// free worker with no hand-off through the listener: on a busy core, a worker goes from
    /// one ready connection to the next without a context switch.
    UniqueFd parked_;
    std::atomic<std::uint32_t> next_wait_id_{0};
    std::atomic<std::size_t> idle_workers_{0};  ///< workers waiting for work, either way
    /// How many workers wait on the parked set at once: one per core the child may run on. Each
    /// ready connection wakes one of them, so with every worker waiting there, a saturated core
    /// would have every worker awake and most caught mid-request. The rest wait in reserve, and one
    /// is promoted when a worker is about to block on a client (a request body) with no other left
    /// on the set.
    std::size_t pollers_max_ = 2;
    std::atomic<std::size_t> pollers_{0};  ///< workers in epoll_wait on the parked set
    std::mutex reserve_mutex_;
    std::condition_variable reserve_cv_;
    std::size_t in_reserve_ = 0;  ///< under reserve_mutex_, as the next two
    std::size_t promotions_ = 0;
    bool reserve_closed_ = false;
    /// Lets a worker find the connection a parked-set event names, by descriptor.
    std::mutex registry_mutex_;
    std::vector<ConnectionPtr> by_fd_;

    asio::steady_timer housekeeping_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
    std::vector<bool> accept_armed_;
    std::unordered_map<EventConnection*, ConnectionPtr> connections_;
    std::size_t lingering_ = 0;
    std::uint64_t accepted_ = 0;
    bool not_accepting_ = false;               ///< accepting paused by the worker-factor rule
    std::atomic<bool> accept_blocked_{false};  ///< same, for workers: nudge when one is idle
    std::atomic<bool> nudge_posted_{false};    ///< a worker's nudge waits in the io_context
    bool draining_ = false;
    std::atomic<bool> drain_flag_{false};  ///< what workers see: finish up, keep nothing open
    std::array<char, 4096> scratch_{};     ///< lingering reads land here, all on this thread
    std::vector<ConnectionPtr> fresh_;     ///< accepted this round, parked at its end
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
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        const std::size_t cores =
            ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? std::size_t(CPU_COUNT(&cpus)) : 2;
        pollers_max_ = std::clamp<std::size_t>(cores, 1, settings_.threads);
        for (std::uint32_t i = 0; i < settings_.threads; ++i) {
            WorkerSlot& worker = context_.scoreboard->worker(settings_.slot, i);
            workers_.emplace_back([this, &worker] { worker_loop(worker); });
        }
    } catch (const std::exception& e) {
        log_.error("event child cannot start: {}", e.what());
        hand_over_.close();
        close_reserve();
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
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (idle_workers_.load() < settings_.threads) {
        if (std::chrono::steady_clock::now() >= give_up) {
            log_.warn("event child: worker threads slow to start; accepting anyway");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
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

    hand_over_.close();
    close_reserve();
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
    const std::size_t idle = idle_workers_.load();
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
                on_accepted(socket.release(), false);
                // Take what else waits on this listener in the same round (a burst of new
                // clients), as far as Apache's rule allows, before any worker wakes.
                while (accept_allowed()) {
                    const int fd = ::accept4(acceptors_[index]->native_handle(), nullptr, nullptr,
                                             SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        break;  // none left (EAGAIN); an error shows in the next async_accept
                    }
                    on_accepted(fd, true);
                }
                park_fresh();
            } else if (ec == asio::error::operation_aborted) {
                return;
            } else if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
                log_.error("accept: {}", ec.message());
                return;  // housekeeping retries once descriptors free up
            }
            arm_accept(index);
        });
}

void EventChild::on_accepted(int fd, bool flags_set) {
    ++accepted_;
    UniqueFd socket(fd);
    if (!flags_set) {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ConnectionPtr conn;
    try {
        conn = std::make_shared<EventConnection>(io_, socket, *context_.router, *context_.config,
                                                 context_.access_log);
        conn->driver.set_block_hook(
            [](void* child) { static_cast<EventChild*>(child)->promote_if_needed(); }, this);
        connections_.emplace(conn.get(), conn);
        process_slot().add_connections(ConnectionGauge::total, 1);
        {
            std::lock_guard lock(registry_mutex_);
            if (std::size_t(fd) >= by_fd_.size()) {
                by_fd_.resize(std::max<std::size_t>(std::size_t(fd) + 1, by_fd_.size() * 2));
            }
            by_fd_[std::size_t(fd)] = conn;
        }
        fresh_.push_back(conn);
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

void EventChild::park_fresh() {
    for (const ConnectionPtr& conn : fresh_) {
        try {
            // A new connection waits for its first request in the parked set, holding no
            // worker: a slow client costs a socket, not a thread.
            if (!park(conn)) {
                close(conn);
            } else if (draining_ && !work_) {
                // Accepted in the round the drain finished (the accept completed before it
                // was cancelled): keep the loop and its deadline sweep running to serve it.
                work_.emplace(io_.get_executor());
                housekeeping();
            }
        } catch (const std::exception& e) {
            log_.error("cannot take a connection: {}", e.what());
            close(conn);
        }
    }
    fresh_.clear();
}

bool EventChild::park(const ConnectionPtr& conn) {
    std::lock_guard lock(conn->mutex);
    // Read under the connection's lock: begin_drain() sets the flag, then visits each
    // connection under its lock, so an idle connection is either closed by the listener or
    // sees the flag here.
    if (drain_flag_.load(std::memory_order_relaxed) && conn->driver.idle_keep_alive()) {
        return false;  // a graceful stop lets idle keep-alive connections go
    }
    conn->driver.release_idle_memory();  // a parked connection holds no buffer
    // Level-triggered: bytes that came before the entry was armed raise the event at once.
    arm(*conn, EPOLLIN);
    conn->waiting = true;
    conn->deadline = conn->driver.deadline();
    if (conn->driver.idle_keep_alive()) {
        count_keep_alive(*conn, true);  // mod_status's ConnsAsyncKeepAlive
    }
    return true;
}

void EventChild::arm(EventConnection& conn, std::uint32_t events) {
    const std::uint32_t id = next_wait_id_.fetch_add(1, std::memory_order_relaxed) + 1;
    epoll_event ev{};
    // One-shot: the entry is disarmed as it wakes one worker, so no other worker can take
    // the connection until the next arm().
    ev.events = events | EPOLLONESHOT;
    ev.data.u64 = std::uint64_t(std::uint32_t(conn.driver.fd())) << 32 | id;
    if (::epoll_ctl(parked_.get(), conn.armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, conn.driver.fd(),
                    &ev) != 0) {
        throw_errno("epoll_ctl");
    }
    conn.armed = true;
    conn.wait_id = id;
}

void EventChild::disarm(EventConnection& conn) noexcept {
    if (conn.armed) {
        epoll_event ev{};
        ::epoll_ctl(parked_.get(), EPOLL_CTL_DEL, conn.driver.fd(), &ev);
        conn.armed = false;
    }
}

void EventChild::count_keep_alive(EventConnection& conn, bool idle) noexcept {
    if (conn.counted_keep_alive != idle) {
        conn.counted_keep_alive = idle;
        process_slot().add_connections(ConnectionGauge::keep_alive, idle ? 1 : -1);
    }
}

void EventChild::expire_waits() {
    const auto now = ConnectionDriver::Clock::now();
    std::vector<ConnectionPtr> expired;
    std::vector<ConnectionPtr> writable;
    for (const auto& [raw, conn] : connections_) {
        std::lock_guard lock(conn->mutex);
        if (conn->writing && conn->waiting && conn->deadline > now &&
            ready_now(conn->driver.fd(), POLLOUT)) {
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
            // After this, an event of the parked set for this wait is stale, and after
            // cancel() returns a read of the io_context can no longer touch the buffer.
            disarm(*conn);
            error_code ignored;
            conn->stream.cancel(ignored);
            expired.push_back(conn);
        }
    }
    for (const ConnectionPtr& conn : writable) {
        write_more(conn);
    }
    const bool no_poller = pollers_.load() == 0;
    for (const ConnectionPtr& conn : expired) {
        if (conn->writing) {
            close(conn);  // timeouts.send passed without the client taking a byte
        } else if (conn->lingering) {
            close(conn);
        } else if (ready_now(conn->driver.fd(), POLLIN) &&
                   (conn->driver.between_requests() ||
                    (no_poller && now < conn->driver.hard_deadline()))) {
            // Bytes wait in the socket: the client spoke in time, but every worker was busy
            // (a parked connection's bytes stay in the kernel until a worker takes it). A
            // request is served, never reset. The rest of a head gets this only while no
            // worker waits on the parked set (with one there, the bytes came too late), and
            // never past the head's maximum.
            hand_over(conn);
        } else if (conn->driver.between_requests()) {
            close(conn);
        } else {
            conn->driver.expire();  // part of a request arrived: a worker answers 408
            hand_over(conn);
        }
    }
}

void EventChild::linger(const ConnectionPtr& conn) {
    conn->watch();
    std::lock_guard lock(conn->mutex);
    if (!conn->lingering) {
        conn->lingering = true;
        ++lingering_;
        process_slot().add_connections(ConnectionGauge::lingering, 1);
        conn->wait_id = next_wait_id_.fetch_add(1, std::memory_order_relaxed) + 1;
        conn->waiting = true;
        conn->deadline = ConnectionDriver::Clock::now() + kLingerTime;
    }
    const std::uint32_t id = conn->wait_id;
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
    conn->watch();
    std::lock_guard lock(conn->mutex);
    const std::uint32_t id = next_wait_id_.fetch_add(1, std::memory_order_relaxed) + 1;
    conn->wait_id = id;
    conn->waiting = true;
    conn->deadline = conn->driver.write_deadline();
    // The socket was full a moment ago and the kernel still holds unsent bytes, so the
    // acknowledgements that make room raise a fresh writable edge even if one was missed.
    conn->stream.async_wait(asio::posix::stream_descriptor::wait_write,
                            [this, conn, id](const error_code& ec) { on_writable(conn, id, ec); });
}

void EventChild::on_writable(const ConnectionPtr& conn, std::uint32_t id, const error_code& ec) {
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
            hand_over(conn);  // a worker goes on: the next request may need a handler
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
        disarm(*conn);
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
    {
        std::lock_guard lock(registry_mutex_);
        const auto fd = std::size_t(conn->driver.fd());
        if (fd < by_fd_.size() && by_fd_[fd] == conn) {
            by_fd_[fd].reset();
        }
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

void EventChild::hand_over(const ConnectionPtr& conn) {
    conn->unwatch();  // the worker's next wait is in the parked set
    hand_over_.push(conn);
}

void EventChild::worker_loop(WorkerSlot& worker) {
    worker.set_state(WorkerState::waiting);
    std::uint32_t served = 0;
    for (;;) {
        epoll_event ev{};
        // Counted idle first, so the listener's look finds this worker. One nudge at a time:
        // a child that stays full must not wake its listener on every request. Sequentially
        // consistent with the listener's side: either it sees this worker, or this worker
        // sees the flag cleared and posts.
        idle_workers_.fetch_add(1);
        if (accept_blocked_.load(std::memory_order_relaxed) && !nudge_posted_.exchange(true)) {
            try {
                asio::post(io_, [this] {
                    nudge_posted_.exchange(false);
                    resume_accepting();
                });
            } catch (const std::exception&) {
                nudge_posted_.store(false, std::memory_order_relaxed);  // the sweep looks anyway
            }
        }
        if (pollers_.load() >= pollers_max_ && !wait_in_reserve()) {
            idle_workers_.fetch_sub(1, std::memory_order_relaxed);
            break;  // the child is done
        }
        pollers_.fetch_add(1);
        const int n = ::epoll_wait(parked_.get(), &ev, 1, -1);
        pollers_.fetch_sub(1);
        idle_workers_.fetch_sub(1, std::memory_order_relaxed);
        if (n != 1) {
            continue;  // EINTR; nothing else can fail on a valid epoll descriptor
        }
        ConnectionPtr conn;
        if (ev.data.u64 == kHandOverKey) {
            std::optional<ConnectionPtr> given = hand_over_.pop();
            if (!given) {
                break;  // the child is done
            }
            conn = std::move(*given);
        } else {
            conn = claim(ev.data.u64);
        }
        if (conn) {
            serve(worker, std::move(conn));
            if (++served % kYieldEvery == 0) {
                // A worker that never finds the parked set empty never sleeps, and the
                // scheduler then rotates the busy workers of all children a whole time slice
                // at a time: clients of the others wait that long (p99 55 ms under wrk -c200
                // on one core; 7-9 ms with this yield, 5 ms before the parked set). Giving
                // the core up now and then keeps the rotation short; with nobody else
                // runnable it returns at once.
                ::sched_yield();
            }
        }
    }
    worker.set_state(WorkerState::graceful);
}

bool EventChild::wait_in_reserve() {
    std::unique_lock lock(reserve_mutex_);
    // Looked at again under the lock that promote_if_needed() takes: a poller that goes
    // to block in between either sees this worker in reserve or leaves it a place.
    if (pollers_.load() < pollers_max_) {
        return true;
    }
    ++in_reserve_;
    reserve_cv_.wait(lock, [this] { return promotions_ > 0 || reserve_closed_; });
    --in_reserve_;
    if (reserve_closed_) {
        return false;
    }
    --promotions_;
    return true;
}

void EventChild::promote_if_needed() {
    if (pollers_.load() > 0) {
        return;  // someone still takes ready connections
    }
    std::lock_guard lock(reserve_mutex_);
    // A promotion under way counts as a poller: a body read in many chunks must not pull
    // the whole reserve onto the set before the first one promoted gets there.
    if (pollers_.load() == 0 && promotions_ == 0 && in_reserve_ > 0) {
        ++promotions_;
        reserve_cv_.notify_one();
    }
}

void EventChild::close_reserve() {
    std::lock_guard lock(reserve_mutex_);
    reserve_closed_ = true;
    reserve_cv_.notify_all();
}

ConnectionPtr EventChild::claim(std::uint64_t key) {
    const auto fd = std::size_t(key >> 32);
    ConnectionPtr conn;
    {
        std::lock_guard lock(registry_mutex_);
        if (fd < by_fd_.size()) {
            conn = by_fd_[fd];
        }
    }
    if (!conn) {
        return conn;  // closed since: the event is stale
    }
    std::lock_guard lock(conn->mutex);
    // A wait the sweep expired, or one whose descriptor number a newer connection took.
    if (!conn->waiting || conn->wait_id != std::uint32_t(key)) {
        return nullptr;
    }
    conn->waiting = false;
    count_keep_alive(*conn, false);
    return conn;
}

void EventChild::serve(WorkerSlot& worker, ConnectionPtr conn) {
    try {
        const auto outcome = conn->driver.run(drain_flag_, true, &worker);
        worker.set_state(WorkerState::waiting);
        // Parking is this thread's job: the common case of a keep-alive connection waiting
        // for its next request costs the listener no wake-up. Ending a connection changes
        // the listener's books, so that goes through it.
        ConnectionDriver::Outcome done = outcome;
        if (outcome == ConnectionDriver::Outcome::parked) {
            try {
                if (park(conn)) {
                    return;
                }
            } catch (const std::exception& e) {
                // The parked set cannot take it (out of memory, max_user_watches): this
                // connection ends, the child goes on.
                log_.error("cannot park a connection: {}", e.what());
                done = ConnectionDriver::Outcome::closed;
            }
        }
        asio::post(io_, [this, conn = std::move(conn), done] { on_worker_done(conn, done); });
    } catch (const std::exception& e) {
        // Out of memory handing the connection back: it can no longer be tracked, so this
        // child cannot drain cleanly. Exit at once; the master logs it and
        // starts a replacement.
        log_.error("event worker: {}; the child exits", e.what());
        std::_Exit(1);
    }
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
    // A safety net under the reserve: the workers off the parked set may all be busy with
    // something other than a body (a cold file read from disk) while connections are
    // ready. Polling the epoll descriptor does not take its events.
    if (pollers_.load() == 0 && ready_now(parked_.get(), POLLIN)) {
        promote_if_needed();
    }
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
        // Nor one whose next request already waits in the socket, unread only because every
        // worker is busy: a worker serves it with "Connection: close".
        if (conn->waiting && !conn->lingering && !conn->writing && conn->driver.idle_keep_alive() &&
            !ready_now(conn->driver.fd(), POLLIN)) {
            // Taken under the lock, so no worker can claim it before close() below.
            conn->waiting = false;
            count_keep_alive(*conn, false);
            disarm(*conn);
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
