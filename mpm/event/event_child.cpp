#include "event/event_child.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>

#include <spdlog/logger.h>

#include "common/listener_set.hpp"
#include "common/threaded_child.hpp"
#include "event/event_child_impl.hpp"
#include "log/access_log.hpp"
#include "process/spare_maintenance.hpp"

namespace trident {
namespace event_detail {
namespace {

// How often the listener expires waits whose deadline passed, looks at the stop flag and
// at whether accepting may resume: the resolution of every timeout of a parked connection.
constexpr auto kHousekeeping = std::chrono::milliseconds(100);
// How long the rest of a burst of new connections is left to the sibling children before
// this one looks again: on a loaded machine some of them take a few milliseconds to get a
// core, and a look that found them stalled would take everything they were left.
constexpr auto kBurstGrace = std::chrono::milliseconds(10);

bool ready_now(int fd, short events) noexcept {
    pollfd pfd{fd, events, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & events) != 0;
}

}  // namespace

int EventChild::run() {
    limit_malloc_arenas();
    try {
        for (const Listener& listener : context_.listeners) {
            listeners_.push_back(listener.fd);
        }
        watched_.assign(listeners_.size(), false);
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
            workers_.emplace_back([this, &worker = *worker] {
                try {
                    worker_loop(worker);
                } catch (const std::exception& e) {
                    // Out of memory accepting, or handing a connection on: it can no longer
                    // be tracked, so this child cannot drain cleanly. Exit at once; the
                    // master logs it and starts a replacement.
                    log_.error("event worker: {}; the child exits", e.what());
                    std::_Exit(1);
                }
            });
        }
    } catch (const std::exception& e) {
        log_.error("event child cannot start: {}", e.what());
        hand_over_.close();
        close_reserve();
        for (std::thread& worker : workers_) {
            worker.join();
        }
        return 1;
    }

    // Accepting needs an idle worker (Apache's rule), so start once the workers are ready;
    // otherwise nothing would watch the listeners until the first housekeeping tick.
    const auto give_up = Clock::now() + std::chrono::seconds(5);
    while (idle_workers_.load() < settings_.threads) {
        if (Clock::now() >= give_up) {
            log_.warn("event child: worker threads slow to start; accepting anyway");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    int status = 0;
    try {
        work_.emplace(io_.get_executor());
        housekeeping();
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
    return status;
}

bool EventChild::recycled() const noexcept {
    return settings_.max_connections != 0 && accepted_.load() >= settings_.max_connections;
}

bool EventChild::has_room() const noexcept {
    // Apache event's rule: a child takes new connections only while it has an idle worker
    // and fewer than threads_per_child + idle × async_request_worker_factor connections
    // (lingering ones excepted), so a busy child leaves new clients to the others.
    const std::size_t idle = idle_workers_.load();
    return idle > 0 && active() < connection_limit(idle);
}

std::size_t EventChild::connection_limit(std::size_t idle) const noexcept {
    return settings_.threads + idle * settings_.async_factor;
}

std::size_t EventChild::active() const noexcept {
    const std::size_t open = open_.load();
    const std::size_t lingering = lingering_.load();  // read apart: may pass `open` a moment
    return open > lingering ? open - lingering : 0;
}

bool EventChild::accept_allowed() const {
    return !drain_flag_.load() && !recycled() && has_room();
}

void EventChild::resume_accepting(bool retry) {
    std::lock_guard lock(accept_mutex_);
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
        accept_round(i, retry);
    }
}

void EventChild::accept_on_event(std::size_t index, std::vector<ConnectionPtr>& keep) {
    if (index < listeners_.size()) {
        std::lock_guard lock(accept_mutex_);
        accept_round(index, false, &keep);
    }
}

std::size_t EventChild::balance_slack() const noexcept {
    return std::max<std::size_t>(2, settings_.threads / 8);
}

bool EventChild::near_limit(const Standing& s) const noexcept {
    // Apache's limit falls by async_request_worker_factor with every worker that turns busy,
    // so a child filled close to it reads as full at the next busy moment, and spare
    // maintenance, which counts a full child's idle workers as none, starts a child nobody
    // needed. Under wrk -c200 with the defaults, children that the kernel's wake-ups left
    // holding 63-75 connections while a sibling held 14-40 were found full 20-53 times in
    // 8 s, and 3 runs of 47 started a fifth child. A child that comes within half its
    // threads of the limit while a sibling holds clearly fewer leaves new clients to the
    // siblings: 0-45 times, median 2.
    const std::size_t headroom = std::max<std::size_t>(2, settings_.threads / 2);
    return s.mine + headroom >= connection_limit(idle_workers_.load()) && s.ahead(balance_slack());
}

EventChild::Standing EventChild::standing() const noexcept {
    Standing standing;
    standing.mine = active();
    standing.fewest = standing.mine;
    const Scoreboard& board = *context_.scoreboard;
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
        const std::size_t theirs = total > lingers ? total - lingers : 0;
        standing.fewest = std::min(standing.fewest, theirs);
        standing.others += theirs;
        ++standing.takers;
    }
    return standing;
}

void EventChild::accept_round(std::size_t index, bool retry, std::vector<ConnectionPtr>* keep) {
    bool allowed = accept_allowed();
    // A retry takes the first connection whatever the balance: one a grace at least, even
    // while stalled siblings hold fewer and the others' closes make them look busy.
    bool owed = retry;
    bool balance = true;
    bool took = false;
    bool left = false;  // what waits left to the siblings (a burst's rest, or near the limit)
    // The listen queue, read when the balance first needs it and counted down as this child
    // takes from it; read again while it looks like a burst.
    std::optional<std::uint32_t> queued;
    const int listener = listeners_[index];
    const std::size_t slack = balance_slack();
    // Take what waits in one round, as far as Apache's rule allows, before any worker wakes
    // for it. accept4 gives the client's address and the flags the connection needs in the
    // one call.
    while (allowed) {
        // A child holding a few connections does not look at its siblings at all.
        const Standing s = balance && active() > slack ? standing() : Standing{};
        if (s.takers > 1 && s.mine > slack) {
            if (!queued || *queued > settings_.threads) {
                queued = listen_queue_length(listener);
            }
            // A burst larger than a child has threads (wrk connecting 200 clients, or all of
            // them reconnecting after their 100th request) is shared out: this child takes
            // its fair share of what is held and what waits, and leaves the rest to the
            // siblings, whom the arrivals woke while this child was busy accepting. Taken in
            // one gulp by whoever ran first, such a burst filled children to the limit, and
            // spare maintenance, which counts a full child as no spare capacity at all,
            // started a fifth and sixth (each costing memory and context switches). A few at
            // once, as a steady stream of clients keeps queued (ab), are taken by whoever is
            // awake: shared out too, they went back and forth between the children, 1.8
            // context switches a request instead of 1.0 under ab -c200, and 15 % more CPU.
            // A child close to the worker-factor limit leaves new clients to a sibling that
            // holds clearly fewer in the same way (near_limit()).
            const std::size_t fair = (s.mine + s.others + *queued + s.takers - 1) / s.takers;
            if ((*queued > settings_.threads && s.mine >= fair) || near_limit(s)) {
                if (retry && s.others == siblings_held_when_left_) {
                    // A grace later the siblings have taken nothing: what waits is this
                    // child's, whatever the balance, so no client waits on a stalled sibling.
                    balance = false;
                } else if (!owed) {
                    siblings_held_when_left_ = s.others;
                    request_retry();
                    left = true;
                    break;
                }
            }
        }
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &length,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            owed = false;
            took = true;
            if (queued && *queued > 0) {
                --*queued;
            }
            take_connection(fd, peer);
            allowed = accept_allowed();
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            accept_failing_ = false;
            break;  // nothing waits: the parked set reports the next arrival
        }
        if (errno == EINVAL) {
            break;  // the master no longer listens on it: this child's stop is on its way
        }
        if (accept_error_is_transient(errno)) {
            continue;  // that client gave up, or its network failed; others may wait
        }
        if (!accept_failing_) {  // once per episode, not on every 100 ms retry
            log_.error("accept: {}", std::strerror(errno));
            accept_failing_ = true;
        }
        break;  // out of descriptors or memory: the sweep retries when some are free
    }
    park_fresh(keep);
    const bool draining = drain_flag_.load();  // raised under accept_mutex_
    if (!draining && recycled()) {
        // max_connections_per_child: the listener thread begins the drain; nothing is
        // accepted meanwhile.
        nudge_listener();
    }
    // Apache counts the idle workers of a child that does not accept as no spare capacity
    // at all, so the master starts children while every child is full of slow clients.
    if (!draining && allowed == not_accepting_) {
        not_accepting_ = !allowed;
        process_slot().set_not_accepting(not_accepting_);
    }
    // Only the rule's limit is worth a worker's nudge; a drain or a recycled child is over.
    accept_blocked_.store(!allowed && !draining && !recycled(), std::memory_order_relaxed);
    if (!allowed || left) {
        // Watching, its idle workers would take the wake-ups of arrivals it cannot (or,
        // having left them to the siblings, will not) accept, and the siblings would not be
        // woken. After leaving what waits to the siblings, the retry a grace later watches
        // again.
        unwatch_listener(index);
        return;
    }
    if (!watched_[index]) {
        watch_listener(index);
    } else if (took) {
        // The kernel wakes the first watcher in the socket's queue with a thread asleep, so
        // new clients keep coming to one child while it has an idle worker: cheapest, as
        // its data stays in the core's caches. A child that got ahead of the sibling that
        // holds the fewest goes to the back of the queue: spread over the children,
        // connections leave every child below the worker-factor limit.
        const Standing s = active() > slack ? standing() : Standing{};
        if (s.ahead(slack)) {
            unwatch_listener(index);
            watch_listener(index);
        }
    }
}

void EventChild::watch_listener(std::size_t index) {
    try {
        parked_.watch_listener(listeners_[index], index);
        watched_[index] = true;
        watch_failing_ = false;
    } catch (const std::exception& e) {
        // Out of memory, or max_user_watches: the 100 ms sweep accepts meanwhile, and tries
        // again.
        if (!watch_failing_) {
            log_.error("cannot watch for new connections: {}; looking every 100 ms", e.what());
            watch_failing_ = true;
        }
    }
}

void EventChild::unwatch_listener(std::size_t index) noexcept {
    if (watched_[index]) {
        parked_.unwatch_listener(listeners_[index]);
        watched_[index] = false;
    }
}

void EventChild::request_retry() noexcept {
    post_once(retry_requested_, [this] {
        if (accept_retry_pending_ || draining_) {
            return;
        }
        accept_retry_pending_ = true;
        accept_retry_.expires_after(kBurstGrace);
        accept_retry_.async_wait([this](const error_code& ec) {
            accept_retry_pending_ = false;
            if (!ec) {
                resume_accepting(true);
            }
        });
    });
}

void EventChild::take_connection(int fd, const sockaddr_storage& peer) {
    accepted_.fetch_add(1);
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
            retire(*conn);  // counted already; the socket closes with the last reference
        }                   // else the socket was closed by its one owner
    }
}

void EventChild::park_fresh(std::vector<ConnectionPtr>* keep) {
    std::size_t i = 0;
    if (keep != nullptr) {
        // The accepting worker serves these itself, straight away: a client's first request
        // has usually arrived by the time it is accepted (ab's has), and then the
        // connection costs no registration, no event and no hand-over at all.
        for (; i < fresh_.size() && keep->size() < kKeepFresh; ++i) {
            keep->push_back(std::move(fresh_[i]));  // room reserved by the worker
        }
    }
    for (; i < fresh_.size(); ++i) {
        // The others wait for their first request in the parked set, holding no worker: a
        // slow client costs a socket, not a thread. A request that arrived already raises
        // an event as it is registered, and since the connection is still held, the event
        // leaves it to this thread, whose park then fails: a worker gets it.
        const ConnectionPtr& conn = fresh_[i];
        if (!enlist(conn)) {
            retire(*conn);
        } else if (!park(*conn)) {
            hand_over(conn);
        }
    }
    fresh_.clear();  // keeps the memory for the next round
}

bool EventChild::enlist(const ConnectionPtr& conn) {
    if (conn->registered) {
        return true;
    }
    try {
        parked_.add(conn);
        return true;
    } catch (const std::exception& e) {
        log_.error("cannot take a connection: {}", e.what());
        return false;
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
    if (draining_ && conn->idle && Clock::now() >= idle_grace_end_) {
        // The drain's grace for idle connections is over, but not for one whose next
        // request already waits in the socket, unread only because every worker is busy: a
        // worker serves it, with "Connection: close".
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

void EventChild::housekeeping() {
    expire_waits();
    rescue_batches();
    // A safety net under the reserve: the workers off the parked set may all be busy with
    // something other than a body (a cold file read from disk) while connections are
    // ready. Polling the epoll descriptor does not take its events.
    if (pollers_.load() == 0 && ready_now(parked_.fd(), POLLIN)) {
        promote_if_needed();
    }
    if (!draining_ && (stopping_.load(std::memory_order_relaxed) || recycled())) {
        begin_drain();
    } else if (draining_ && Clock::now() >= idle_grace_end_) {
        end_idle_connections();  // and again each sweep: one may have parked since
    }
    if (draining_ && open_.load() == 0) {
        finish_if_drained();
        return;
    }
    // Idle workers may have appeared since the last look; and connections left to siblings
    // that have not taken them since are taken here.
    resume_accepting(true);
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
    {
        // Under the lock, so a round under way finishes first and none begins afterwards.
        std::lock_guard lock(accept_mutex_);
        drain_flag_.store(true);
        for (std::size_t i = 0; i < listeners_.size(); ++i) {
            unwatch_listener(i);
        }
    }
    accept_retry_.cancel();
    // Idle keep-alive connections stay parked for a while: a client may be sending its
    // next request right now, and closing would lose it. A worker answers it with
    // Connection: close; the sweep ends those that send none once the grace is over.
    idle_grace_end_ = Clock::now() + drain_idle_wait(*context_.config);
    finish_if_drained();
}

void EventChild::end_idle_connections() {
    // Idle keep-alive connections end (put_back() sees to it); the others go on. Not one
    // finishing a response either: it waits for room, not for a request.
    expired_.clear();
    parked_.take_parked(std::numeric_limits<Clock::rep>::max(), expired_);
    for (const ConnectionPtr& conn : expired_) {
        put_back(conn);
    }
    expired_.clear();
}

}  // namespace event_detail

int run_event_child(const MpmContext& context, const EventChildSettings& settings,
                    const std::atomic<bool>& stopping, spdlog::logger& log) noexcept {
    try {
        return event_detail::EventChild(context, settings, stopping, log).run();
    } catch (const std::exception& e) {
        log.error("event child failed: {}", e.what());
        return 1;
    }
}

}  // namespace trident
