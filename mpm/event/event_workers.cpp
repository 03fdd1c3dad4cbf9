// The worker threads of an event-MPM child: they wait on the parked set for ready
// connections, serve them through the connection driver, and park, linger or close them
// without a word to the listener in the common cases.

#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <span>

#include <spdlog/logger.h>

#include "event/event_child_impl.hpp"

namespace trident::event_detail {
namespace {

// Apache's lingering close: how long a half-closed connection is drained before closing.
constexpr auto kLingerTime = std::chrono::seconds(2);
// What one visit discards from a lingering client before the worker moves on: a client
// that keeps sending gets its next visit from its next bytes, never a worker of its own.
constexpr std::size_t kLingerReadPerVisit = 64 * 1024;
// How many connections a worker serves in a row before it lets other threads run.
constexpr std::uint32_t kYieldEvery = 32;
// How many ready connections a worker takes from the parked set in one epoll_wait. A batch
// saves a system call per request on a busy child; what a worker has taken it serves in
// turn, and passes on to the other workers before it blocks on anything.
constexpr std::size_t kBatch = 16;

}  // namespace

bool EventChild::park(EventConnection& conn) {
    const bool idle = conn.driver.idle_keep_alive();
    conn.driver.release_idle_memory();  // a parked connection holds no buffer
    conn.deadline.store(ticks(conn.driver.deadline()), std::memory_order_relaxed);
    count_idle(conn, idle);  // mod_status's ConnsAsyncKeepAlive
    if (!conn.park()) {
        count_idle(conn, false);
        return false;
    }
    // In a graceful stop too: its next request is answered with Connection: close, or the
    // listener's sweep ends it once the drain's grace for idle connections is over.
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

void EventChild::linger(const ConnectionPtr& held, bool look) {
    EventConnection& conn = *held;
    if (!enlist(held)) {
        end_on_worker(conn);  // its FIN could raise no event
        return;
    }
    if (!conn.lingering) {
        conn.driver.release_memory();
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

void EventChild::hand_over(const ConnectionPtr& conn) {
    conn->unwatch();  // the worker's next wait is in the parked set
    hand_over_.push(conn);
}

void EventChild::nudge_listener() noexcept {
    post_once(nudge_posted_, [this] {
        if (recycled()) {
            begin_drain();  // max_connections_per_child reached
        }
        resume_accepting();
        finish_if_drained();
    });
}

void EventChild::worker_loop(Worker& self) {
    WorkerSlot& slot = self.slot;
    slot.set_state(WorkerState::waiting);
    std::vector<ConnectionPtr> taken;
    // Room for a batch of events and the connections accepted: the two are swapped.
    taken.reserve(kBatch + kKeepFresh);
    self.batch.reserve(kBatch + kKeepFresh);
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
        // New clients first, while this worker still counts as idle for the worker-factor
        // rule: it is the one that serves them, the first few straight away (the rest join
        // the parked set).
        for (std::size_t i = 0; i < n; ++i) {
            if (ParkedSet::is_listener_key(events[i].data.u64)) {
                accept_on_event(ParkedSet::listener_index(events[i].data.u64), taken);
            }
        }
        idle_workers_.fetch_sub(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < n; ++i) {
            if (ParkedSet::is_listener_key(events[i].data.u64)) {
                continue;
            } else if (events[i].data.u64 == ParkedSet::kSignalKey) {
                std::optional<ConnectionPtr> given = hand_over_.pop();
                if (!given) {
                    done = true;  // the child is done
                } else if (*given) {
                    taken.push_back(std::move(*given));
                }
            } else if (ConnectionPtr conn = parked_.take(events[i].data.u64, events[i].events)) {
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
    count_idle(*conn, false);
    conn->driver.set_block_hook(&EventChild::on_worker_blocks, &self);
    for (;;) {
        if (conn->lingering) {
            linger(conn, true);  // an event on a half-closed connection: the client spoke
            break;
        }
        if (conn->end_seen.load(std::memory_order_relaxed)) {
            conn->driver.end_of_stream_pending();  // ordered by the hold, or the hand-over
        }
        const auto outcome = conn->driver.run(drain_flag_, true, &self.slot);
        self.slot.set_state(WorkerState::waiting);
        // The common cases end here, on this thread, with no word to the listener: a
        // keep-alive connection waiting for its next request, a lingering close, a
        // closed connection.
        if (outcome == ConnectionDriver::Outcome::parked) {
            if (!enlist(conn)) {
                end_on_worker(*conn);  // nothing could tell a worker that its client spoke
            } else if (!park(*conn)) {
                continue;  // bytes came while this thread held it
            }
        } else if (outcome == ConnectionDriver::Outcome::linger) {
            linger(conn, false);
        } else if (outcome == ConnectionDriver::Outcome::closed) {
            end_on_worker(*conn);
        } else {
            // A response the socket could not take at once: the listener finishes it.
            asio::post(io_, [this, conn, outcome] { on_worker_done(conn, outcome); });
        }
        break;
    }
}

void EventChild::on_worker_done(const ConnectionPtr& conn, ConnectionDriver::Outcome outcome) {
    if (outcome == ConnectionDriver::Outcome::writing) {
        await_writable(conn);
    } else {
        close(conn);
    }
}

}  // namespace trident::event_detail
