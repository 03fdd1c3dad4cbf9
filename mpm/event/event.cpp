// The event MPM: child processes with a fixed pool of worker threads plus one listener
// thread each, which accepts and keeps the books of every connection that is waiting for
// its client (fresh, idle keep-alive, part of a head received, lingering close) in an
// epoll set the idle workers wait on. An idle keep-alive connection costs a socket, not a
// thread. event_child.cpp has the details.

#include <spdlog/logger.h>

#include "common/process_mpm.hpp"
#include "event/event_child.hpp"

namespace trident {
namespace {

class EventMpm final : public ProcessMpm {
public:
    explicit EventMpm(const MpmContext& context)
        : ProcessMpm(context, "event", SparePolicy::threaded(context.config->event)),
          settings_(context.config->event) {}

private:
    std::uint32_t start_servers() const noexcept override { return settings_.start_servers; }

    int child_main(std::uint32_t slot) noexcept override {
        const EventChildSettings settings{settings_.threads_per_child,
                                          settings_.async_request_worker_factor,
                                          settings_.max_connections_per_child, slot};
        return run_event_child(context(), settings, graceful_stop_requested(), log());
    }

    EventConfig settings_;  // as clamped by the master
};

}  // namespace
}  // namespace trident

TRIDENT_MPM_DEFINE_MODULE("event", trident::kMpmThreaded | trident::kMpmAsyncKeepAlive,
                          trident::make_mpm<trident::EventMpm>)
