#pragma once

// The inside of an event-MPM child (event_child.hpp says what it is), shared by its two
// halves: event_child.cpp, the listener thread's side (deadlines, write completion,
// draining) and accepting, which both sides do, and event_workers.cpp, the worker threads'
// side (taking ready connections, serving, parking, lingering).

#include <netinet/in.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/connection_driver.hpp"
#include "event/event_child.hpp"
#include "event/event_connection.hpp"
#include "event/hand_over.hpp"
#include "event/parked_set.hpp"
#include "trident/scoreboard.hpp"

namespace trident::event_detail {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = ConnectionDriver::Clock;

/// The wait a parked connection's deadline stands for, as its atomic holds it.
inline Clock::rep ticks(Clock::time_point when) noexcept {
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

    // Accepting, within Apache's async_request_worker_factor rule. The workers waiting on
    // the parked set also watch the listening sockets there, exclusively: a new client
    // wakes one thread of one child, which accepts it. The listener thread accepts too,
    // when a grace or a sweep looks again. Either way under accept_mutex_.
    bool accept_allowed() const;
    /// Whether the worker-factor rule leaves room for another connection; any thread.
    bool has_room() const noexcept;
    /// The connections the worker-factor rule counts: open, lingering ones excepted.
    std::size_t active() const noexcept;
    /// How many of those the rule allows with `idle` idle workers.
    std::size_t connection_limit(std::size_t idle) const noexcept;
    /// max_connections_per_child reached: the child accepts no more.
    bool recycled() const noexcept;
    /// Any thread. `retry`: a look after a burst's rest was left to the siblings (the grace
    /// timer, the sweep); what the siblings have not started taking since is taken here.
    void resume_accepting(bool retry = false);
    /// A worker woken by listening socket `index` accepts; up to kKeepFresh of the new
    /// connections it keeps, held, in `keep` to serve itself, and parks the rest.
    void accept_on_event(std::size_t index, std::vector<ConnectionPtr>& keep);
    static constexpr std::size_t kKeepFresh = 8;
    /// Accepts what waits on listener `index` while the rule allows, then watches it in
    /// the parked set if the rule still allows, and stops watching it if not. The caller
    /// holds accept_mutex_.
    void accept_round(std::size_t index, bool retry, std::vector<ConnectionPtr>* keep = nullptr);
    /// Where this child stands among its siblings of the generation that take new
    /// connections (lingering connections not counted); a walk of the scoreboard.
    struct Standing {
        std::size_t mine = 0;
        std::size_t others = 0;  ///< what the siblings hold
        std::size_t fewest = 0;  ///< the fewest any of them, or this child, holds
        std::size_t takers = 1;  ///< this child and those siblings
        /// This child holds more than the sibling with the fewest by more than `slack`.
        bool ahead(std::size_t slack) const noexcept { return takers > 1 && fewest + slack < mine; }
    };
    Standing standing() const noexcept;
    /// Whether this child, holding `s.mine`, is close to the worker-factor limit while a
    /// sibling holds clearly fewer: it then leaves new clients to the siblings.
    bool near_limit(const Standing& s) const noexcept;
    /// Under this many connections a child does not look at its siblings at all.
    std::size_t balance_slack() const noexcept;
    /// The caller holds accept_mutex_.
    void watch_listener(std::size_t index);
    void unwatch_listener(std::size_t index) noexcept;
    /// Asks the listener thread to look again a grace later; any thread.
    void request_retry() noexcept;
    /// Registers a freshly accepted socket; `fresh_` holds it until park_fresh(). The caller
    /// holds accept_mutex_.
    void take_connection(int fd, const sockaddr_storage& peer);
    /// Parks the connections accepted this round, but for those `keep` takes (up to
    /// kKeepFresh in all). Done once the round's accepts are over: each park may wake a
    /// worker, which on a busy core would preempt the accepting.
    void park_fresh(std::vector<ConnectionPtr>* keep);
    /// Registers `conn`, which the caller holds, in the parked set, where it stays until it
    /// closes; does nothing if it is registered already. Before parking it: bytes that
    /// arrive from then on tell the holder (park() fails). False if the kernel refused
    /// (logged): the caller ends the connection.
    bool enlist(const ConnectionPtr& conn);

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
    void linger(const ConnectionPtr& conn, bool look);
    /// Keeps the process's keep-alive gauge; the holder calls it as it parks or takes an
    /// idle connection.
    void count_idle(EventConnection& conn, bool idle) noexcept;
    /// Listener thread: ends the waits whose deadline passed.
    void expire_waits();
    /// Listener thread: what a parked connection whose wait ran out becomes.
    void expire(const ConnectionPtr& conn, Clock::time_point now, bool no_poller);
    /// Listener thread: parks again, as it was, a connection it took only to look at; once a
    /// drain's grace for idle connections is over, an idle one ends instead.
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
    /// A worker thread's life. Throws only when out of memory (accepting, or handing a
    /// connection on); the thread then ends the child (run()).
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
    /// Posts `work` to the listener thread, unless what an earlier call posted under the
    /// same `pending` flag has not run yet; any thread. Out of memory, nothing is posted:
    /// the 100 ms sweep looks anyway.
    template <class Work>
    void post_once(std::atomic<bool>& pending, Work work) noexcept {
        if (pending.exchange(true)) {
            return;
        }
        try {
            asio::post(io_, [&pending, work] {
                pending.store(false);
                work();
            });
        } catch (const std::exception&) {
            pending.store(false);
        }
    }

    void housekeeping();
    void begin_drain();
    /// Draining, once idle_grace_end_ has passed: closes every parked idle keep-alive
    /// connection.
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
    /// The connections of the child that have waited for their client, the listening
    /// sockets, and the waiting workers.
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
    asio::steady_timer accept_retry_;    ///< listener thread: a burst left to siblings, look again
    bool accept_retry_pending_ = false;  ///< listener thread
    std::atomic<bool> retry_requested_{false};  ///< a request_retry() waits in io_
    std::vector<int> listeners_;                ///< the master's listening sockets
    std::atomic<std::uint64_t> accepted_{0};    ///< written under accept_mutex_
    std::mutex accept_mutex_;    ///< one accepting round at a time; guards what follows
    std::vector<bool> watched_;  ///< listener i is in the parked set
    /// What the siblings held when connections were last left to them: unchanged a grace
    /// later, they are not taking them (stalled, or not awake), and this child does.
    std::size_t siblings_held_when_left_ = 0;
    std::vector<ConnectionPtr> fresh_;  ///< accepted this round, parked at its end
    bool not_accepting_ = false;        ///< accepting paused by the worker-factor rule
    bool accept_failing_ = false;       ///< accept4 failed for lack of resources, logged once
    bool watch_failing_ = false;        ///< the parked set refused a listener, logged once
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    /// Accepting paused by the worker-factor rule alone: a worker that finds room again
    /// nudges the listener.
    std::atomic<bool> accept_blocked_{false};
    std::atomic<bool> nudge_posted_{false};  ///< a worker's nudge waits in the io_context
    bool draining_ = false;
    /// Draining: until when an idle keep-alive connection may still send its next request.
    Clock::time_point idle_grace_end_;
    std::atomic<bool> drain_flag_{false};  ///< what workers see: say close, finish up
    std::vector<ConnectionPtr> writing_;   ///< listener thread: finishing a response
    std::vector<ConnectionPtr> expired_;   ///< the sweep's, kept to reuse its memory
    std::vector<std::unique_ptr<Worker>> worker_states_;  ///< one per thread, made before them
    std::vector<std::thread> workers_;
};

}  // namespace trident::event_detail
