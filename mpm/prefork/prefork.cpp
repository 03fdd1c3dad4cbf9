// The prefork MPM: a pool of single-threaded children, each serving one connection at a
// time from a blocking accept loop over every listener. Isolation first: a crash or a
// non-thread-safe handler affects one connection.

#include <algorithm>

#include <spdlog/logger.h>

#include "common/connection_driver.hpp"
#include "common/listener_set.hpp"
#include "common/process_mpm.hpp"

namespace trident {
namespace {

class PreforkMpm final : public ProcessMpm {
public:
    explicit PreforkMpm(const MpmContext& context)
        : ProcessMpm(context, "prefork", context.config->prefork.server_limit),
          settings_(context.config->prefork) {}

private:
    std::uint32_t start_servers() const noexcept override { return settings_.start_servers; }

    std::uint32_t target_processes() const noexcept override {
        // Spare-server maintenance (min/max_spare_servers) comes later; until then the pool
        // holds start_servers children, within the hard limits.
        const std::uint32_t limit = std::max<std::uint32_t>(
            1, std::min(settings_.max_request_workers, std::uint32_t(process_capacity())));
        return std::clamp<std::uint32_t>(settings_.start_servers, 1, limit);
    }

    int child_main(std::size_t) noexcept override {
        ListenerSet listeners(context().listeners);
        const auto& stop = graceful_stop_requested();
        const std::uint64_t max_connections = settings_.max_connections_per_child;
        std::uint64_t connections = 0;
        for (;;) {
            const int client = listeners.accept(stop, log());
            if (client < 0) {
                return 0;  // graceful stop
            }
            serve_connection(client, *context().router, config(), stop);
            if (max_connections != 0 && ++connections >= max_connections) {
                return 0;  // recycled; the master starts a fresh child
            }
        }
    }

    PreforkConfig settings_;
};

Mpm* create_prefork(const MpmContext* context) {
    try {
        return new PreforkMpm(*context);
    } catch (...) {
        return nullptr;
    }
}

}  // namespace
}  // namespace trident

TRIDENT_MPM_DEFINE_MODULE("prefork", 0, trident::create_prefork)
