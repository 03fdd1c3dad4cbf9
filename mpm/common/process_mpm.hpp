#pragma once

// The master-side half every process-based MPM shares: it forks the generation's children
// through ChildPool, books their scoreboard slots, keeps the pool between the spare limits
// (SpareMaintenance), replaces children that die (backing off when they die at start-up),
// and tells them to stop. An MPM derives from it and supplies what runs inside a child.
//
// The scoreboard is shared by every generation alive at once (a graceful restart drains the
// old one while the new one serves), so a child takes any process slot that no process of
// any generation holds, and a generation never has more than its own server_limit children.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
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
    void answer_queue() noexcept override;
    void stop(StopMode mode) noexcept override;
    void kill_all() noexcept override;
    std::size_t live_children() const noexcept override { return pool_.live(); }

protected:
    /// The clamped start_servers: children forked at start.
    virtual std::uint32_t start_servers() const noexcept = 0;

    /// A child's whole life in scoreboard slot `slot`, after prepare_child_process(), the
    /// generation's identity and cpu_scheduling; returns its exit status.
    virtual int child_main(std::uint32_t slot) noexcept = 0;

    /// In a child: set once the master asked for a graceful stop (SIGUSR1). Stop accepting,
    /// finish the connections in hand at a request boundary, exit.
    static const std::atomic<bool>& graceful_stop_requested() noexcept;

    const MpmContext& context() const noexcept { return context_; }
    const Config& config() const noexcept { return *context_.config; }
    Scoreboard& scoreboard() const noexcept { return *context_.scoreboard; }
    spdlog::logger& log() const noexcept { return *log_; }

private:
    /// In a new child: the config's cpu_scheduling, then child_main().
    int run_child(std::uint32_t slot) noexcept;
    /// Whether SCHED_BATCH may be taken here; says so once when it may not.
    bool batch_scheduling_allowed() noexcept;
    bool spawn_one() noexcept;
    /// The lowest process slot free in the scoreboard (no generation holds it).
    std::optional<std::uint32_t> free_slot() const noexcept;
    /// Replaces a child that ended without being asked to, or leaves it to the backoff.
    void replace_after_exit(const ChildExit& exit) noexcept;
    /// Asks the accepting child in the highest slot to finish gracefully.
    void retire_one() noexcept;
    /// Starts what maintenance decided, saying so when the pool seems busy.
    void carry_out_spawn(const SpareDecision& decision, const SpareSample& sample) noexcept;
    std::uint32_t listen_queue() const noexcept;

    MpmContext context_;
    std::string name_;
    std::shared_ptr<spdlog::logger> log_;
    SpareMaintenance spare_;
    std::uint32_t max_children_;  ///< this generation's server_limit, within the scoreboard
    ChildPool pool_;
    RespawnBackoff backoff_;
    bool stopping_ = false;
    bool batch_scheduling_ = false;          ///< cpu_scheduling: batch, and the kernel allows it
    bool scoreboard_full_reported_ = false;  ///< "no room in the scoreboard file" said
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
