// The event MPM: child processes with a fixed pool of worker threads plus one listener
// thread each, which holds every connection that is waiting for its client (fresh, idle
// keep-alive, part of a head received, lingering close) on epoll through Boost.Asio. An
// idle keep-alive connection costs a socket, not a thread.

#include <algorithm>

#include <spdlog/logger.h>

#include "common/process_mpm.hpp"
#include "event/event_child.hpp"

namespace trident {
namespace {

class EventMpm final : public ProcessMpm {
public:
    explicit EventMpm(const MpmContext& context)
        : ProcessMpm(context, "event", context.config->event.server_limit),
          settings_(context.config->event) {}

private:
    std::uint32_t start_servers() const noexcept override { return settings_.start_servers; }

    std::uint32_t threads_per_child() const noexcept {
        return std::clamp<std::uint32_t>(settings_.threads_per_child, 1,
                                         std::max<std::uint32_t>(1, settings_.thread_limit));
    }

    std::uint32_t target_processes() const noexcept override {
        // Spare-thread maintenance comes later; until then start_servers children, never more
        // than max_request_workers threads in all.
        const std::uint32_t by_workers =
            std::max<std::uint32_t>(1, settings_.max_request_workers / threads_per_child());
        const std::uint32_t limit =
            std::min(by_workers, std::max<std::uint32_t>(1, std::uint32_t(process_capacity())));
        return std::clamp<std::uint32_t>(settings_.start_servers, 1, limit);
    }

    int child_main(std::size_t) noexcept override {
        const EventChildSettings settings{threads_per_child(),
                                          settings_.async_request_worker_factor,
                                          settings_.max_connections_per_child};
        return run_event_child(context(), settings, graceful_stop_requested(), log());
    }

    EventConfig settings_;
};

Mpm* create_event(const MpmContext* context) {
    try {
        return new EventMpm(*context);
    } catch (...) {
        return nullptr;
    }
}

}  // namespace
}  // namespace trident

TRIDENT_MPM_DEFINE_MODULE("event", trident::kMpmThreaded | trident::kMpmAsyncKeepAlive,
                          trident::create_event)
