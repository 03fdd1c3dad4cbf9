// The worker MPM: child processes, each with a fixed pool of threads serving one
// connection per thread. Idle threads take turns waiting on the listening sockets
// themselves, as prefork children do, and serve what they accept: no hand-off queue between
// an accepting thread and a worker. Keep-alive holds its thread while the client is idle
// (Apache worker's known cost; the event MPM removes it).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <latch>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "common/connection_driver.hpp"
#include "common/listener_set.hpp"
#include "common/process_mpm.hpp"
#include "common/threaded_child.hpp"
#include "trident/scoreboard.hpp"

namespace trident {
namespace {

/// max_connections_per_child, shared by a child's threads: a thread takes a ticket before
/// it waits to accept, so the child serves exactly that many connections and then ends.
class ConnectionTickets {
public:
    explicit ConnectionTickets(std::uint64_t limit) noexcept : limit_(limit) {}

    /// False once every ticket is taken; always true without a limit (0).
    bool take() noexcept {
        return limit_ == 0 || taken_.fetch_add(1, std::memory_order_relaxed) < limit_;
    }

private:
    const std::uint64_t limit_;
    std::atomic<std::uint64_t> taken_{0};
};

/// Which of a child's idle threads wait on the listening sockets: at most `kListeners` at
/// once; the others wait here. The kernel wakes a sleeping waiter for each new connection,
/// even when a thread about to finish its connection would take it a moment later: with all
/// 25 threads of a child on the sockets, `ab -c200` cost a context switch per connection,
/// with a few a fifth of one (and about 5 µs less CPU per connection).
///
/// A thread that finishes a connection takes a free turn with no wake-up. A thread waiting
/// here is woken only when the last listening thread accepts, so a child with an idle
/// thread always has one on the sockets; and when the child stops.
class ListeningTurns {
public:
    static constexpr unsigned kListeners = 2;

    explicit ListeningTurns(const std::atomic<bool>& stop) noexcept : stop_(stop) {}

    /// Waits for a turn on the sockets; false once the child stops.
    bool take() {
        std::unique_lock lock(mutex_);
        ++waiting_;
        // No timeout: whoever holds a turn sees a stop within a second on the sockets and
        // gives the turn back, which wakes everyone here.
        freed_.wait(lock, [&] { return listening_ < kListeners || stopping(); });
        --waiting_;
        if (stopping()) {
            return false;
        }
        ++listening_;
        return true;
    }

    /// Gives the turn back (the thread accepted, or stops). Hands it on to a thread waiting
    /// here when no other thread is left on the sockets, or to all of them on a stop.
    void give_back() {
        std::unique_lock lock(mutex_);
        --listening_;
        const bool hand_on = listening_ == 0 && waiting_ > 0;
        lock.unlock();
        if (stopping()) {
            freed_.notify_all();
        } else if (hand_on) {
            freed_.notify_one();
        }
    }

private:
    bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }

    const std::atomic<bool>& stop_;
    std::mutex mutex_;
    std::condition_variable freed_;
    unsigned listening_ = 0;  ///< threads holding a turn
    unsigned waiting_ = 0;    ///< idle threads waiting for one
};

class WorkerMpm final : public ProcessMpm {
public:
    explicit WorkerMpm(const MpmContext& context)
        : ProcessMpm(context, "worker", SparePolicy::threaded(context.config->worker)),
          settings_(context.config->worker) {}

private:
    std::uint32_t start_servers() const noexcept override { return settings_.start_servers; }

    int child_main(std::uint32_t slot) noexcept override {
        limit_malloc_arenas();
        ConnectionTickets tickets(settings_.max_connections_per_child);
        ListeningTurns turns(graceful_stop_requested());
        // The threads start serving together, once all of them exist: a child that cannot
        // make its pool ends before it has accepted anything.
        std::latch started(1);
        bool abandoned = false;
        std::vector<std::thread> threads;
        try {
            threads.reserve(settings_.threads_per_child);
            for (std::uint32_t i = 0; i < settings_.threads_per_child; ++i) {
                WorkerSlot& worker = scoreboard().worker(slot, i);
                threads.emplace_back([&, &worker = worker] {
                    started.wait();
                    if (!abandoned) {
                        serve(worker, tickets, turns);
                    }
                });
            }
        } catch (const std::exception& e) {  // std::system_error, or no memory for the vector
            log().error("cannot start worker threads: {}", e.what());
            abandoned = true;  // the latch orders this write before the threads read it
        }
        started.count_down();
        for (std::thread& thread : threads) {
            thread.join();
        }
        return abandoned ? 1 : 0;
    }

    /// One thread's life: while the child accepts, take a turn to wait on every listener
    /// (an epoll instance of the thread's own, with EPOLLEXCLUSIVE, so a new connection
    /// wakes one listening thread of one child), accept, serve the connection to its end.
    /// Only an idle thread waits, so a connection never queues inside a busy child
    /// (Apache's rule).
    void serve(WorkerSlot& worker, ConnectionTickets& tickets, ListeningTurns& turns) noexcept {
        const std::atomic<bool>& stop = graceful_stop_requested();
        ListenerSet listeners(context().listeners);
        worker.set_state(WorkerState::waiting);
        while (tickets.take() && turns.take()) {
            const std::optional<AcceptedSocket> client = listeners.accept(stop, log());
            turns.give_back();
            if (!client) {
                break;  // graceful stop, or no epoll instance (logged)
            }
            serve_connection(client->fd, client->peer, *context().router, config(), stop, &worker,
                             context().access_log);
            worker.set_state(WorkerState::waiting);
        }
        worker.set_state(WorkerState::graceful);  // stopping, or recycled
    }

    ThreadedMpmConfig settings_;  // as clamped by the master
};

}  // namespace
}  // namespace trident

TRIDENT_MPM_DEFINE_MODULE("worker", trident::kMpmThreaded, trident::make_mpm<trident::WorkerMpm>)
