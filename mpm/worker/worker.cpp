// The worker MPM: child processes, each with a fixed pool of threads serving one
// connection per thread, fed by one accepting thread. Keep-alive holds its thread while the
// client is idle (Apache worker's known cost; the event MPM removes it).

#include <unistd.h>

#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "common/connection_driver.hpp"
#include "common/listener_set.hpp"
#include "common/process_mpm.hpp"
#include "common/threaded_child.hpp"
#include "common/work_queue.hpp"
#include "trident/scoreboard.hpp"

namespace trident {
namespace {

class WorkerMpm final : public ProcessMpm {
public:
    explicit WorkerMpm(const MpmContext& context)
        : ProcessMpm(context, "worker", SparePolicy::threaded(context.config->worker)),
          settings_(context.config->worker) {}

private:
    std::uint32_t start_servers() const noexcept override { return settings_.start_servers; }

    int child_main(std::uint32_t slot) noexcept override {
        limit_malloc_arenas();
        const auto& stop = graceful_stop_requested();
        WorkQueue<AcceptedSocket> queue;
        std::vector<std::thread> workers;
        try {
            for (std::uint32_t i = 0; i < settings_.threads_per_child; ++i) {
                WorkerSlot& worker = scoreboard().worker(slot, i);
                workers.emplace_back([&, &worker = worker] {
                    worker.set_state(WorkerState::waiting);
                    while (const std::optional<AcceptedSocket> client = queue.pop()) {
                        serve_connection(client->fd, client->peer, *context().router, config(),
                                         stop, &worker, context().access_log);
                        worker.set_state(WorkerState::waiting);
                    }
                    worker.set_state(WorkerState::graceful);
                });
            }
        } catch (const std::system_error& e) {
            log().error("cannot start worker threads: {}", e.what());
            queue.close();
            for (std::thread& worker : workers) {
                worker.join();
            }
            return 1;
        }

        // This thread accepts, and only while a worker is idle to take the connection.
        ListenerSet listeners(context().listeners);
        const std::uint64_t max_connections = settings_.max_connections_per_child;
        std::uint64_t connections = 0;
        while (queue.wait_for_idle_worker(stop)) {
            const std::optional<AcceptedSocket> client = listeners.accept(stop, log());
            if (!client) {
                break;
            }
            queue.push(*client);
            if (max_connections != 0 && ++connections >= max_connections) {
                break;  // recycled: finish what was accepted, then the master starts a fresh child
            }
        }
        queue.close();  // workers serve what is queued, then return
        for (std::thread& worker : workers) {
            worker.join();
        }
        return 0;
    }

    ThreadedMpmConfig settings_;  // as clamped by the master
};

}  // namespace
}  // namespace trident

TRIDENT_MPM_DEFINE_MODULE("worker", trident::kMpmThreaded, trident::make_mpm<trident::WorkerMpm>)
