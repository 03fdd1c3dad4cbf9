#include "event/event_child.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "common/connection_driver.hpp"
#include "common/threaded_child.hpp"
#include "event/event_connection.hpp"
#include "event/hand_over.hpp"
#include "event/parked_set.hpp"
#include "log/access_log.hpp"
#include "process/spare_maintenance.hpp"
#include "trident/http/response.hpp"
#include "trident/scoreboard.hpp"

namespace trident {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = ConnectionDriver::Clock;

// Apache's lingering close: how long a half-closed connection is drained before closing.
constexpr auto kLingerTime = std::chrono::seconds(2);
// What one visit discards from a lingering client before the worker moves on: a client
// that keeps sending gets its next visit from its next bytes, never a worker of its own.
constexpr std::size_t kLingerReadPerVisit = 64 * 1024;
// How often the listener expires waits whose deadline passed, looks at the stop flag and
// at whether accepting may resume: the resolution of every timeout of a parked connection.
constexpr auto kHousekeeping = std::chrono::milliseconds(100);
// How long a lone new connection is left to a sibling child that holds fewer connections
// (and was woken for it too) before this child takes it anyway.
constexpr auto kSiblingGrace = std::chrono::milliseconds(2);
// How many connections a worker serves in a row before it lets other threads run.
constexpr std::uint32_t kYieldEvery = 32;
// How many ready connections a worker takes from the parked set in one epoll_wait. A batch
// saves a system call per request on a busy child; what a worker has taken it serves in
// turn, and passes on to the other workers before it blocks on anything.
constexpr std::size_t kBatch = 16;

bool ready_now(int fd, short events) noexcept {
    pollfd pfd{fd, events, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & events) != 0;
}

/// The wait a parked connection's deadline stands for, as its atomic holds it.
Clock::rep ticks(Clock::time_point when) noexcept {
    return when.time_since_epoch().count();
}

class EventChild {
public:
    EventChild(const MpmContext& context, const EventChildSettings& settings,
               const std::atomic<bool>& stopping, spdlog::logger& log)
        : context_(context),
          settings_(settings),
          stopping_(stopping),
          log_(log),
          housekeeping_(io_),
          accept_retry_(io_) {
        parked_.watch_signal(hand_over_.fd(), ParkedSet::kSignalKey);
    }

    int run();

private:
    /// One worker thread and the ready connections it has taken but not served yet.
    /// One worker thread and the ready connections it has taken but not served yet.
    struct Worker {
        Worker(EventChild& c, WorkerSlot& s) : child(c), slot(s) {}
        EventChild& child;
        WorkerSlot& slot;
        std::mutex mutex;  ///< guards batch and next: the listener may pass them on
        std::vector<ConnectionPtr> batch;
        std::size_t next = 0;  ///< batch[next...] are still to serve
        /// Connections begun; the listener's sweep sees whether it moved since its last look.
        std::atomic<std::uint64_t> progress{0};
        std::uint64_t progress_seen = 0;  ///< listener only
    };
    /// Passes on what `worker` has taken but not begun to the other workers; the caller
    /// holds worker.mutex.
    void pass_on_rest(Worker& worker) noexcept;
    /// Listener: a worker stuck on one connection since the last sweep (a cold disk, a slow
    /// handler) passes on the rest of its batch.
    void rescue_batches() noexcept;

    // Accepting, within Apache's async_request_worker_factor rule.
    bool accept_allowed() const;
    /// Whether the worker-factor rule leaves room for another connection; any thread.
    bool has_room() const noexcept;
    /// max_connections_per_child reached: the child accepts no more.
    bool recycled() const;
    /// `balance`: leave a lone new connection to a sibling holding fewer (the sweep passes
    /// false, so a connection never waits on a sibling for more than a tick).
    void resume_accepting(bool balance = true);
    /// Accepts what waits on listener `index` while the rule allows, then (if it still
    /// allows) waits for more.
    void arm_accept(std::size_t index, bool balance = true);
    /// Whether a lone new connection on `listener` is better left to another accepting
    /// child of this generation that holds markedly fewer connections.
    bool leave_to_sibling(int listener) const noexcept;
    /// Registers a freshly accepted socket; `fresh_` holds it until park_fresh().
    void take_connection(int fd, const sockaddr_storage& peer);
    /// Parks the connections accepted this round. Done once the round's accepts are over:
    /// each park may wake a worker, which on a busy core would preempt the accepting.
    void park_fresh();

    /// Parks `conn`, which the caller holds, until its client speaks. False when bytes
    /// came meanwhile: the caller keeps it and reads them.
    bool park(EventConnection& conn);
    /// The holder ends the connection: out of the parked set and the books; the socket
    /// closes when the last reference goes.
    void retire(EventConnection& conn) noexcept;
    /// A worker retires a connection it holds, and tells the listener when that matters:
    /// room for a new connection, or one fewer to wait for in a drain.
    void end_on_worker(EventConnection& conn) noexcept;
    /// A worker drains a half-closed connection without blocking: parks it until the client
    /// closes or sends more, and closes it once the client has closed. `look`: read before
    /// parking (bytes may wait); without it, only if the last read may have left some.
    void linger(EventConnection& conn, bool look);
    /// Keeps the process's keep-alive gauge; the holder calls it as it parks or takes an
    /// idle connection.
    void count_idle(EventConnection& conn, bool idle) noexcept;
    /// Listener thread: ends the waits whose deadline passed.
    void expire_waits();
    /// Listener thread: what a parked connection whose wait ran out becomes.
    void expire(const ConnectionPtr& conn, Clock::time_point now, bool no_poller);
    /// Listener thread: parks again, as it was, a connection it took only to look at; in a
    /// graceful stop, an idle one ends instead.
    void put_back(const ConnectionPtr& conn);

    // Write completion, on the listener thread: waits for room in the socket and sends the
    // rest of a response that a worker could not, without a thread.
    void await_writable(const ConnectionPtr& conn);
    void on_writable(const ConnectionPtr& conn, std::uint32_t id, const error_code& ec);
    void write_more(const ConnectionPtr& conn);
    void end_writing(EventConnection& conn);
    /// Listener thread: ends a connection it holds.
    void close(const ConnectionPtr& conn);

    // The workers' side.
    void worker_loop(Worker& self);
    /// Waits until a worker about to block on a client promotes this one; false once the
    /// child is done.
    bool wait_in_reserve();
    /// A worker is about to block waiting for a client: it passes on the connections it has
    /// taken but not served, and if no other worker waits on the parked set, a reserve
    /// worker takes its place there.
    static void on_worker_blocks(void* worker) noexcept;
    void promote_if_needed();
    void close_reserve();
    void serve(Worker& worker, ConnectionPtr conn);
    /// Gives a connection the caller holds to a worker.
    void hand_over(const ConnectionPtr& conn);
    void on_worker_done(const ConnectionPtr& conn, ConnectionDriver::Outcome outcome);
    /// Asks the listener to look at accepting and draining again (a worker became idle, or
    /// closed a connection); at most one such request waits at a time.
    void nudge_listener() noexcept;

    void housekeeping();
    void begin_drain();
    /// Draining: closes every parked idle keep-alive connection.
    void end_idle_connections();
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
    /// Every connection of the child, from accept to close, and the waiting workers.
    ParkedSet parked_;
    std::atomic<std::uint32_t> next_id_{0};
    std::atomic<std::uint32_t> next_wait_id_{0};
    std::atomic<std::size_t> open_{0};          ///< connections not yet retired
    std::atomic<std::size_t> lingering_{0};     ///< of those, draining a lingering close
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

    asio::steady_timer housekeeping_;
    asio::steady_timer accept_retry_;  ///< a connection left to a sibling: look again soon
    bool accept_retry_pending_ = false;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
    std::vector<bool> accept_armed_;
    std::uint64_t accepted_ = 0;
    bool not_accepting_ = false;    ///< accepting paused by the worker-factor rule
    bool in_accept_round_ = false;  ///< arm_accept() is running
    bool accept_failing_ = false;   ///< accept4 failed for lack of resources, logged once
    /// Accepting paused by the worker-factor rule alone: a worker that finds room again
    /// nudges the listener.
    std::atomic<bool> accept_blocked_{false};
    std::atomic<bool> nudge_posted_{false};  ///< a worker's nudge waits in the io_context
    bool draining_ = false;
    std::atomic<bool> drain_flag_{false};  ///< what workers see: finish up, keep nothing open
    std::vector<ConnectionPtr> writing_;   ///< listener thread: finishing a response
    std::vector<ConnectionPtr> fresh_;     ///< accepted this round, parked at its end
    std::vector<ConnectionPtr> expired_;   ///< the sweep's, kept to reuse its memory
    std::vector<std::unique_ptr<Worker>> worker_states_;  ///< one per thread, made before them
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
            worker_states_.push_back(
                std::make_unique<Worker>(*this, context_.scoreboard->worker(settings_.slot, i)));
        }
        for (const std::unique_ptr<Worker>& worker : worker_states_) {
            workers_.emplace_back([this, &worker = *worker] { worker_loop(worker); });
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
    const auto give_up = Clock::now() + std::chrono::seconds(5);
    while (idle_workers_.load() < settings_.threads) {
        if (Clock::now() >= give_up) {
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

bool EventChild::recycled() const {
    return settings_.max_connections != 0 && accepted_ >= settings_.max_connections;
}

bool EventChild::has_room() const noexcept {
    // Apache event's rule: a child takes new connections only while it has an idle worker
    // and fewer than threads_per_child + idle × async_request_worker_factor connections
    // (lingering ones excepted), so a busy child leaves new clients to the others.
    const std::size_t idle = idle_workers_.load();
    const std::size_t open = open_.load();
    const std::size_t lingering = lingering_.load();  // read apart: may pass `open` a moment
    const std::size_t active = open > lingering ? open - lingering : 0;
    return idle > 0 && active < settings_.threads + idle * settings_.async_factor;
}

bool EventChild::accept_allowed() const {
    return !draining_ && !recycled() && has_room();
}

void EventChild::resume_accepting(bool balance) {
    for (std::size_t i = 0; i < acceptors_.size(); ++i) {
        arm_accept(i, balance);
    }
}

bool EventChild::leave_to_sibling(int listener) const noexcept {
    // Spread over the children, connections leave every child below Apache's worker-factor
    // limit; piled on a few, those reach it, stop counting as spare capacity, and spare
    // maintenance starts children that a fair spread did not need (5 or 6 instead of 4
    // under wrk -c200 with the defaults, each costing memory and context switches).
    const std::size_t open = open_.load();
    const std::size_t lingering = lingering_.load();
    const std::size_t mine = open > lingering ? open - lingering : 0;
    const std::size_t slack = std::max<std::size_t>(2, settings_.threads / 8);
    if (mine <= slack) {
        return false;
    }
    const Scoreboard& board = *context_.scoreboard;
    std::size_t fewest = mine;
    // Children take the lowest free slots, so a generation's sit together: stop after a
    // run of free ones instead of walking a scoreboard sized for any MPM.
    for (std::uint32_t slot = 0, free_run = 0; slot < board.server_limit() && free_run < 8;
         ++slot) {
        const ProcessSlot& other = board.process(slot);
        if (other.pid() == 0) {
            ++free_run;
            continue;
        }
        free_run = 0;
        if (slot == settings_.slot || other.generation() != context_.generation ||
            other.quiescing() || other.not_accepting()) {
            continue;
        }
        const std::uint32_t total = other.connections(ConnectionGauge::total);
        const std::uint32_t lingers = other.connections(ConnectionGauge::lingering);
        fewest = std::min<std::size_t>(fewest, total > lingers ? total - lingers : 0);
    }
    // A burst is taken at once, by whoever is awake: only a lone arrival waits for the
    // sibling, which its wake-up reached too.
    return fewest + slack < mine && listen_queue_length(listener) <= 1;
}

void EventChild::arm_accept(std::size_t index, bool balance) {
    // Closing a connection resumes accepting; within a round that would start another
    // round inside this one.
    if (accept_armed_[index] || in_accept_round_) {
        return;
    }
    in_accept_round_ = true;
    struct RoundEnd {
        bool& flag;
        ~RoundEnd() { flag = false; }
    } round_end{in_accept_round_};
    bool allowed = accept_allowed();
    const int listener = acceptors_[index]->native_handle();
    // Take what waits (a burst of new clients) in one round, as far as Apache's rule
    // allows, before any worker wakes. accept4 gives the client's address and the flags
    // the connection needs in the one call.
    while (allowed) {
        if (balance && leave_to_sibling(listener)) {
            // The sibling was woken for this connection too: give it a moment. Whatever is
            // still waiting then is taken whatever the balance. (Not an async_wait meanwhile:
            // Asio re-arms one with EPOLL_CTL_MOD, which reports the still-readable socket
            // at once, and the wait would spin.)
            if (!accept_retry_pending_) {
                accept_retry_pending_ = true;
                accept_retry_.expires_after(kSiblingGrace);
                accept_retry_.async_wait([this](const error_code& ec) {
                    accept_retry_pending_ = false;
                    if (!ec) {
                        resume_accepting(false);
                    }
                });
            }
            park_fresh();
            return;
        }
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &length,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            take_connection(fd, peer);
            allowed = accept_allowed();
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;  // nothing waits: wait for the next one below
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
            continue;  // that client gave up; others may wait
        }
        if (!accept_failing_) {  // once per episode, not on every 100 ms retry
            log_.error("accept: {}", std::strerror(errno));
            accept_failing_ = true;
        }
        park_fresh();
        return;  // out of descriptors or memory: housekeeping retries when some are free
    }
    accept_failing_ = false;
    park_fresh();
    // Apache counts the idle workers of a child that does not accept as no spare capacity
    // at all, so the master starts children while every child is full of slow clients.
    if (!draining_ && allowed == not_accepting_) {
        not_accepting_ = !allowed;
        process_slot().set_not_accepting(not_accepting_);
    }
    // Only the rule's limit is worth a worker's nudge; a drain or a recycled child is over.
    accept_blocked_.store(!allowed && !draining_ && !recycled(), std::memory_order_relaxed);
    if (!allowed) {
        return;
    }
    // The reactor watches the listening socket edge-triggered: a client that arrives from
    // now on raises an edge that this wait sees, and the queue was empty a moment ago.
    accept_armed_[index] = true;
    acceptors_[index]->async_wait(asio::socket_base::wait_read,
                                  [this, index](const error_code& ec) {
                                      accept_armed_[index] = false;
                                      if (ec != asio::error::operation_aborted) {
                                          arm_accept(index);
                                      }
                                  });
}

void EventChild::take_connection(int fd, const sockaddr_storage& peer) {
    ++accepted_;
    UniqueFd socket(fd);
    ConnectionPtr conn;
    try {
        const std::uint32_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
        conn = std::make_shared<EventConnection>(io_, socket, id, *context_.router,
                                                 *context_.config, context_.access_log, &peer);
        open_.fetch_add(1);
        process_slot().add_connections(ConnectionGauge::total, 1);
        fresh_.push_back(conn);
    } catch (const std::exception& e) {
        log_.error("cannot take a connection: {}", e.what());
        if (conn) {
            close(conn);  // counted already: close() undoes that
        }                 // else the socket was closed by its one owner
    }
    if (settings_.max_connections != 0 && accepted_ >= settings_.max_connections) {
        begin_drain();  // recycled: finish what was accepted, then exit
    }
}

void EventChild::park_fresh() {
    // Taken out first: closing one below must not find the list half walked.
    std::vector<ConnectionPtr> fresh = std::exchange(fresh_, {});
    for (const ConnectionPtr& conn : fresh) {
        // A new connection waits for its first request in the parked set, holding no
        // worker: a slow client costs a socket, not a thread. Parked first, then registered:
        // a request that arrived already raises its event as it is registered, and the
        // worker that event wakes takes the connection. Unregistered, nobody else can
        // hold it, so parking cannot fail here.
        park(*conn);
        try {
            parked_.add(conn);
        } catch (const std::exception& e) {
            log_.error("cannot take a connection: {}", e.what());
            conn->take_if_parked();  // unregistered: nobody else can hold it
            close(conn);
            continue;
        }
        if (draining_ && !work_) {
            // Accepted in the round the drain finished: keep the loop and its deadline sweep
            // running to serve it.
            work_.emplace(io_.get_executor());
            housekeeping();
        }
    }
    fresh.clear();
    if (fresh_.empty()) {
        fresh_ = std::move(fresh);  // keep the memory for the next round
    }
}

bool EventChild::park(EventConnection& conn) {
    const bool idle = conn.driver.idle_keep_alive();
    conn.driver.release_idle_memory();  // a parked connection holds no buffer
    conn.deadline.store(ticks(conn.driver.deadline()), std::memory_order_relaxed);
    count_idle(conn, idle);  // mod_status's ConnsAsyncKeepAlive
    if (!conn.park()) {
        count_idle(conn, false);
        return false;
    }
    // In a graceful stop the driver ends an idle connection rather than park it; one that
    // slipped through as the stop began is closed by the listener's next sweep.
    return true;
}

void EventChild::count_idle(EventConnection& conn, bool idle) noexcept {
    if (conn.idle != idle) {
        conn.idle = idle;
        process_slot().add_connections(ConnectionGauge::keep_alive, idle ? 1 : -1);
    }
}

void EventChild::retire(EventConnection& conn) noexcept {
    parked_.remove(conn);
    count_idle(conn, false);
    if (conn.lingering) {
        conn.lingering = false;
        lingering_.fetch_sub(1);
        process_slot().add_connections(ConnectionGauge::lingering, -1);
    }
    process_slot().add_connections(ConnectionGauge::total, -1);
    open_.fetch_sub(1);
}

void EventChild::end_on_worker(EventConnection& conn) noexcept {
    retire(conn);
    if ((accept_blocked_.load(std::memory_order_relaxed) && has_room()) ||
        (drain_flag_.load() && open_.load() == 0)) {
        nudge_listener();
    }
}

void EventChild::linger(EventConnection& conn, bool look) {
    if (!conn.lingering) {
        conn.lingering = true;
        lingering_.fetch_add(1);
        process_slot().add_connections(ConnectionGauge::lingering, 1);
        conn.deadline.store(ticks(Clock::now() + kLingerTime), std::memory_order_relaxed);
    }
    // Discard what the client still sends, and close once it has closed too. Right after
    // the response the read is skipped when the last one left the socket empty: the client
    // has not seen the response yet, and anything it sends from now on raises an event.
    thread_local std::array<char, 4096> sink;
    look = look || !conn.driver.socket_drained();
    std::size_t budget = kLingerReadPerVisit;
    for (;;) {
        if (look) {
            const ssize_t n = ::recv(conn.driver.fd(), sink.data(), sink.size(), MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n > 0 && std::size_t(n) < budget) {
                budget -= std::size_t(n);
                continue;
            }
            if (n > 0) {
                // This visit's share is read and more may wait. Past the linger time the
                // connection ends; before it, the rest waits for the client's next bytes
                // (edge triggered: they raise an event) or for the sweep at the deadline.
                if (conn.deadline.load(std::memory_order_relaxed) <= ticks(Clock::now())) {
                    end_on_worker(conn);
                    return;
                }
                while (!conn.park()) {
                }
                return;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                end_on_worker(conn);  // the client closed too (or reset): done
                return;
            }
        }
        if (conn.park()) {
            return;
        }
        look = true;  // bytes came while this thread held it
    }
}

void EventChild::expire_waits() {
    const auto now = Clock::now();
    // Listener-held waits: writes to slow readers.
    for (std::size_t i = 0; i < writing_.size();) {
        const ConnectionPtr conn = writing_[i];
        if (conn->waiting && conn->wait_deadline <= now) {
            close(conn);  // timeouts.send passed without the client taking a byte
        } else if (conn->waiting && ready_now(conn->driver.fd(), POLLOUT)) {
            // A safety net under the edge-triggered reactor: should the edge that made room
            // have come before the wait was registered, the sweep notices within a tick.
            conn->waiting = false;
            error_code ignored;
            conn->stream.cancel(ignored);
            write_more(conn);
        }
        if (i < writing_.size() && writing_[i] == conn) {
            ++i;  // still writing; otherwise end_writing() took it out of the list
        }
    }
    // Parked connections, taken for the listener when their wait ran out.
    expired_.clear();
    parked_.take_parked(ticks(now), expired_);
    const bool no_poller = pollers_.load() == 0;
    for (const ConnectionPtr& conn : expired_) {
        expire(conn, now, no_poller);
    }
    expired_.clear();
}

void EventChild::expire(const ConnectionPtr& conn, Clock::time_point now, bool no_poller) {
    if (conn->deadline.load(std::memory_order_relaxed) > ticks(now)) {
        put_back(conn);  // served and parked afresh between the sweep's look and its taking it
    } else if (conn->lingering) {
        close(conn);
    } else if (ready_now(conn->driver.fd(), POLLIN) &&
               (conn->driver.between_requests() ||
                (no_poller && now < conn->driver.hard_deadline()))) {
        // Bytes wait in the socket: the client spoke in time, but every worker was busy.
        // A request is served, never reset. The rest of a head gets this only while no
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

void EventChild::put_back(const ConnectionPtr& conn) {
    if (draining_ && conn->idle) {
        // A graceful stop ends idle keep-alive connections, but not one whose next request
        // already waits in the socket, unread only because every worker is busy: a worker
        // serves it, with "Connection: close".
        if (ready_now(conn->driver.fd(), POLLIN)) {
            hand_over(conn);
        } else {
            close(conn);
        }
    } else if (!conn->park()) {
        hand_over(conn);  // bytes came while the listener held it
    }
}

void EventChild::await_writable(const ConnectionPtr& conn) {
    if (!conn->writing) {
        conn->writing = true;
        writing_.push_back(conn);
        process_slot().add_connections(ConnectionGauge::writing, 1);
    }
    const std::uint32_t id = next_wait_id_.fetch_add(1, std::memory_order_relaxed) + 1;
    conn->wait_id = id;
    conn->waiting = true;
    conn->wait_deadline = conn->driver.write_deadline();
    try {
        conn->watch();
        // The socket was full a moment ago and the kernel still holds unsent bytes, so the
        // acknowledgements that make room raise a fresh writable edge even if one was
        // missed.
        conn->stream.async_wait(
            asio::posix::stream_descriptor::wait_write,
            [this, conn, id](const error_code& ec) { on_writable(conn, id, ec); });
    } catch (const std::exception& e) {
        // The reactor cannot watch it (max_user_watches, out of memory): the 100 ms sweep's
        // writability check drives this one instead, so the child goes on.
        log_.warn("cannot wait for a slow reader: {}; polling it", e.what());
    }
}

void EventChild::on_writable(const ConnectionPtr& conn, std::uint32_t id, const error_code& ec) {
    if (id != conn->wait_id || !conn->waiting) {
        return;  // stale: the wait ended another way
    }
    conn->waiting = false;
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
            end_writing(*conn);
            hand_over(conn);  // a worker goes on: the next request may need a handler
            break;
        case ConnectionDriver::WriteStep::failed:  // already logged as aborted by the driver
            end_writing(*conn);
            close(conn);
            break;
    }
}

void EventChild::end_writing(EventConnection& conn) {
    if (conn.writing) {
        conn.writing = false;
        conn.waiting = false;
        std::erase_if(writing_, [&](const ConnectionPtr& c) { return c.get() == &conn; });
        process_slot().add_connections(ConnectionGauge::writing, -1);
    }
}

void EventChild::close(const ConnectionPtr& conn) {
    conn->unwatch();
    if (conn->writing) {
        conn->driver.abandon_write();  // a response cut short: the access log says so
        end_writing(*conn);
    }
    retire(*conn);
    resume_accepting();
    finish_if_drained();
}

void EventChild::finish_if_drained() {
    if (draining_ && open_.load() == 0 && work_) {
        work_.reset();
        housekeeping_.cancel();
    }
}

void EventChild::hand_over(const ConnectionPtr& conn) {
    conn->unwatch();  // the worker's next wait is in the parked set
    hand_over_.push(conn);
}

void EventChild::nudge_listener() noexcept {
    if (nudge_posted_.exchange(true)) {
        return;
    }
    try {
        asio::post(io_, [this] {
            nudge_posted_.store(false);
            resume_accepting();
            finish_if_drained();
        });
    } catch (const std::exception&) {
        nudge_posted_.store(false, std::memory_order_relaxed);  // the sweep looks anyway
    }
}

void EventChild::worker_loop(Worker& self) {
    WorkerSlot& slot = self.slot;
    slot.set_state(WorkerState::waiting);
    std::vector<ConnectionPtr> taken;
    taken.reserve(kBatch);
    self.batch.reserve(kBatch);
    std::array<epoll_event, kBatch> events{};
    std::uint32_t since_yield = 0;
    bool done = false;
    while (!done) {
        // Counted idle first, so the listener's look finds this worker. The listener is
        // nudged only when this worker's idleness makes room under the worker-factor rule,
        // one nudge at a time: a child that stays full must not wake its listener on every
        // request. A nudge missed in a race is the 100 ms sweep's.
        idle_workers_.fetch_add(1);
        if (accept_blocked_.load(std::memory_order_relaxed) && has_room()) {
            nudge_listener();
        }
        if (pollers_.load() >= pollers_max_ && !wait_in_reserve()) {
            idle_workers_.fetch_sub(1, std::memory_order_relaxed);
            break;  // the child is done
        }
        pollers_.fetch_add(1);
        const std::size_t n = parked_.wait(events);
        pollers_.fetch_sub(1);
        idle_workers_.fetch_sub(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < n; ++i) {
            if (events[i].data.u64 == ParkedSet::kSignalKey) {
                std::optional<ConnectionPtr> given = hand_over_.pop();
                if (!given) {
                    done = true;  // the child is done
                } else if (*given) {
                    taken.push_back(std::move(*given));
                }
            } else if (ConnectionPtr conn = parked_.take(events[i].data.u64)) {
                taken.push_back(std::move(conn));
            }
        }
        {
            std::lock_guard lock(self.mutex);
            self.batch.swap(taken);
            self.next = 0;
        }
        for (;;) {
            ConnectionPtr conn;
            {
                std::lock_guard lock(self.mutex);
                if (self.next == self.batch.size()) {
                    self.batch.clear();
                    break;
                }
                conn = std::move(self.batch[self.next++]);
            }
            self.progress.fetch_add(1, std::memory_order_relaxed);
            serve(self, std::move(conn));
            ++since_yield;
        }
        if (since_yield >= kYieldEvery) {
            // A worker that never finds the parked set empty never sleeps, and the scheduler
            // then rotates the busy workers of all children a whole time slice at a time:
            // clients of the others wait that long (p99 55 ms under wrk -c200 on one core;
            // 7-9 ms with this yield). Giving the core up now and then keeps the rotation
            // short; with nobody else runnable it returns at once.
            since_yield = 0;
            ::sched_yield();
        }
    }
    slot.set_state(WorkerState::graceful);
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

void EventChild::on_worker_blocks(void* worker) noexcept {
    Worker& self = *static_cast<Worker*>(worker);
    {
        std::lock_guard lock(self.mutex);
        self.child.pass_on_rest(self);
    }
    self.child.promote_if_needed();
}

void EventChild::pass_on_rest(Worker& worker) noexcept {
    if (worker.next < worker.batch.size()) {
        try {
            hand_over_.push(std::span(worker.batch).subspan(worker.next));
            worker.batch.resize(worker.next);
        } catch (const std::exception&) {
            // Out of memory: they wait for this worker instead.
        }
    }
}

void EventChild::rescue_batches() noexcept {
    for (const std::unique_ptr<Worker>& worker : worker_states_) {
        const std::uint64_t progress = worker->progress.load(std::memory_order_relaxed);
        if (progress == worker->progress_seen) {
            std::lock_guard lock(worker->mutex);
            pass_on_rest(*worker);
        }
        worker->progress_seen = progress;
    }
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

void EventChild::serve(Worker& self, ConnectionPtr conn) {
    try {
        count_idle(*conn, false);
        conn->driver.set_block_hook(&EventChild::on_worker_blocks, &self);
        for (;;) {
            if (conn->lingering) {
                linger(*conn, true);  // an event on a half-closed connection: the client spoke
                break;
            }
            const auto outcome = conn->driver.run(drain_flag_, true, &self.slot);
            self.slot.set_state(WorkerState::waiting);
            // The common cases end here, on this thread, with no word to the listener: a
            // keep-alive connection waiting for its next request, a lingering close, a
            // closed connection.
            if (outcome == ConnectionDriver::Outcome::parked) {
                if (!park(*conn)) {
                    continue;  // bytes came while this thread held it
                }
            } else if (outcome == ConnectionDriver::Outcome::linger) {
                linger(*conn, false);
            } else if (outcome == ConnectionDriver::Outcome::closed) {
                end_on_worker(*conn);
            } else {
                // A response the socket could not take at once: the listener finishes it.
                asio::post(io_, [this, conn, outcome] { on_worker_done(conn, outcome); });
            }
            break;
        }
    } catch (const std::exception& e) {
        // Out of memory handing the connection on: it can no longer be tracked, so this
        // child cannot drain cleanly. Exit at once; the master logs it and starts a
        // replacement.
        log_.error("event worker: {}; the child exits", e.what());
        std::_Exit(1);
    }
}

void EventChild::on_worker_done(const ConnectionPtr& conn, ConnectionDriver::Outcome outcome) {
    if (outcome == ConnectionDriver::Outcome::writing) {
        await_writable(conn);
    } else {
        close(conn);
    }
}

void EventChild::housekeeping() {
    expire_waits();
    rescue_batches();
    // A safety net under the reserve: the workers off the parked set may all be busy with
    // something other than a body (a cold file read from disk) while connections are
    // ready. Polling the epoll descriptor does not take its events.
    if (pollers_.load() == 0 && ready_now(parked_.fd(), POLLIN)) {
        promote_if_needed();
    }
    if (!draining_ && stopping_.load(std::memory_order_relaxed)) {
        begin_drain();
    } else if (draining_) {
        end_idle_connections();  // any parked as the stop began, past the driver's look
    }
    if (draining_ && open_.load() == 0) {
        finish_if_drained();
        return;
    }
    // Idle workers may have appeared since the last look; and a connection a sibling was
    // left has waited long enough: take it whatever the balance.
    resume_accepting(false);
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
    drain_flag_.store(true);
    for (auto& acceptor : acceptors_) {
        error_code ignored;
        acceptor->cancel(ignored);
    }
    accept_retry_.cancel();
    end_idle_connections();
    finish_if_drained();
}

void EventChild::end_idle_connections() {
    // Idle keep-alive connections end (put_back() sees to it); the others go on. Not one
    // finishing a response either: it waits for room, not for a request. From the stop on,
    // the driver ends an idle connection instead of parking it; one parked in the moment
    // the stop began is found by the next sweep.
    expired_.clear();
    parked_.take_parked(std::numeric_limits<Clock::rep>::max(), expired_);
    for (const ConnectionPtr& conn : expired_) {
        put_back(conn);
    }
    expired_.clear();
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
