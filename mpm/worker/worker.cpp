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
#include "worker/listening_turns.hpp"

namespace trident {
namespace {

/// max_connections_per_child, shared by a child's threads: a thread takes a ticket before
/// it waits to accept, so the child serves at most that many connections (fewer if it is
/// stopped first) and then ends. A thread that finds none left stays idle until the child
/// stops accepting: every holder has accepted (or given up). Leaving at once, as `G`, it
/// showed a child with fewer tickets than threads (max_connections_per_child: 1) as busy
/// before it had served anyone, and spare maintenance forked children up to server_limit
/// on an idle server; Apache's threads too stay idle until their child stops accepting.
class ConnectionTickets {
public:
    explicit ConnectionTickets(std::uint64_t limit) noexcept : limit_(limit) {}

    /// A ticket to accept one connection: always, without a limit (0). Once every ticket
    /// is taken, waits until every holder has spent its own, then says no.
    bool take() {
        if (limit_ == 0) {
            return true;
        }
        std::unique_lock lock(mutex_);
        if (taken_ < limit_) {
            ++taken_;
            ++holders_;
            return true;
        }
        spent_.wait(lock, [this] { return holders_ == 0; });
        return false;
    }

    /// The holder has accepted its connection, or given up waiting for one.
    void spend() {
        if (limit_ == 0) {
            return;
        }
        std::lock_guard lock(mutex_);
        if (--holders_ == 0) {
            spent_.notify_all();
        }
    }

private:
    const std::uint64_t limit_;
    std::mutex mutex_;
    std::condition_variable spent_;
    std::uint64_t taken_ = 0;
    std::uint64_t holders_ = 0;  ///< tickets taken and not yet spent
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
        // One epoll instance per turn on the sockets, used by one thread at a time: only
        // these are on the listening sockets' wait queues, so a new connection's wake-up
        // passes two per child at most.
        std::vector<ListenerSet> sockets;
        try {
            sockets.reserve(ListeningTurns::kListeners);
            for (unsigned i = 0; i < ListeningTurns::kListeners; ++i) {
                sockets.emplace_back(context().listeners);
                if (!sockets.back().ready(log())) {
                    return 1;
                }
            }
        } catch (const std::exception& e) {
            log().error("cannot wait for connections: {}", e.what());
            return 1;
        }
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
                        serve(worker, tickets, turns, sockets);
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

    /// One thread's life: while the child accepts, take a turn on the sockets (a new
    /// connection wakes one thread waiting in one of the child's `sockets`, with
    /// EPOLLEXCLUSIVE, of one child), accept, serve the connection to its end. Only an idle
    /// thread waits, so a connection never queues inside a busy child (Apache's rule).
    void serve(WorkerSlot& worker, ConnectionTickets& tickets, ListeningTurns& turns,
               std::vector<ListenerSet>& sockets) noexcept {
        const std::atomic<bool>& stop = graceful_stop_requested();
        worker.set_state(WorkerState::waiting);
        while (tickets.take()) {
            const std::optional<unsigned> turn = turns.take();
            if (!turn) {
                tickets.spend();
                break;  // graceful stop
            }
            const std::optional<AcceptedSocket> client = sockets[*turn].accept(stop, log());
            turns.give_back(*turn);
            tickets.spend();
            if (!client) {
                break;  // graceful stop
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
