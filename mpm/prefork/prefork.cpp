// The prefork MPM: a pool of single-threaded children, each serving one connection at a
// time from a blocking accept loop over every listener. Isolation first: a crash or a
// non-thread-safe handler affects one connection.

#include <spdlog/logger.h>

#include "common/connection_driver.hpp"
#include "common/listener_set.hpp"
#include "common/process_mpm.hpp"
#include "trident/scoreboard.hpp"

namespace trident {
namespace {

class PreforkMpm final : public ProcessMpm {
public:
    explicit PreforkMpm(const MpmContext& context)
        : ProcessMpm(context, "prefork", SparePolicy::prefork(context.config->prefork)),
          settings_(context.config->prefork) {}

private:
    std::uint32_t start_servers() const noexcept override { return settings_.start_servers; }

    int child_main(std::uint32_t slot) noexcept override {
        WorkerSlot& worker = scoreboard().worker(slot, 0);
        ListenerSet listeners(context().listeners);
        if (!listeners.ready(log())) {
            return 1;  // a failure, so the master backs off instead of forking again at once
        }
        const auto& stop = graceful_stop_requested();
        const std::uint64_t max_connections = settings_.max_connections_per_child;
        std::uint64_t connections = 0;
        for (;;) {
            worker.set_state(WorkerState::waiting);
            const std::optional<AcceptedSocket> client = listeners.accept(stop, log());
            if (!client) {
                break;  // graceful stop
            }
            serve_connection(client->fd, client->peer, *context().router, config(), stop, &worker,
                             context().access_log);
            if (max_connections != 0 && ++connections >= max_connections) {
                break;  // recycled; the master starts a fresh child
            }
        }
        worker.set_state(WorkerState::graceful);
        return 0;
    }

    PreforkConfig settings_;  // as clamped by the master
};

}  // namespace
}  // namespace trident

TRIDENT_MPM_DEFINE_MODULE("prefork", 0, trident::make_mpm<trident::PreforkMpm>)
