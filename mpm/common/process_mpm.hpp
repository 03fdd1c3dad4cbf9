#pragma once

// The master-side half every process-based MPM shares: it forks the generation's children
// through ChildPool, books their scoreboard slots, keeps the pool between the spare limits
// (SpareMaintenance), replaces children that die, and tells them to stop. An MPM derives
// from it and supplies what runs inside a child.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "process/child_pool.hpp"
#include "process/spare_maintenance.hpp"
#include "trident/mpm.hpp"

namespace spdlog {
class logger;
}

namespace trident {

class ProcessMpm : public Mpm {
public:
    /// `policy` comes from the MPM's clamped section; its server_limit bounds the children
    /// alive at once and workers_per_process the scoreboard slots each one uses.
    ProcessMpm(const MpmContext& context, std::string_view name, const SparePolicy& policy);

    bool start(std::string& error) noexcept override;
    bool on_child_exit(pid_t pid, int wait_status) noexcept override;
    void maintain() noexcept override;
    void stop(StopMode mode) noexcept override;
    void kill_all() noexcept override;
    std::size_t live_children() const noexcept override { return pool_.live(); }

protected:
    /// The clamped start_servers: children forked at start.
    virtual std::uint32_t start_servers() const noexcept = 0;

    /// A child's whole life in scoreboard slot `slot`, after prepare_child_process();
    /// returns its exit status.
    virtual int child_main(std::uint32_t slot) noexcept = 0;

    /// In a child: set once the master asked for a graceful stop (SIGUSR1). Stop accepting,
    /// finish the connections in hand at a request boundary, exit.
    static const std::atomic<bool>& graceful_stop_requested() noexcept;

    const MpmContext& context() const noexcept { return context_; }
    const Config& config() const noexcept { return *context_.config; }
    Scoreboard& scoreboard() const noexcept { return *context_.scoreboard; }
    spdlog::logger& log() const noexcept { return *log_; }

private:
    bool spawn_one() noexcept;
    /// Asks the accepting child in the highest slot to finish gracefully.
    void retire_one() noexcept;
    std::uint32_t listen_queue() const noexcept;

    MpmContext context_;
    std::string name_;
    std::shared_ptr<spdlog::logger> log_;
    SpareMaintenance spare_;
    ChildPool pool_;
    bool stopping_ = false;
};

/// The factory a module's descriptor points to: builds the generation's `T` and keeps any
/// exception inside the module, as the contract requires.
template <typename T>
Mpm* make_mpm(const MpmContext* context) noexcept {
    try {
        return new T(*context);
    } catch (...) {
        return nullptr;
    }
}

}  // namespace trident
