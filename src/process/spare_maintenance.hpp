#pragma once

// Spare-worker maintenance, Apache 2.4's perform_idle_server_maintenance as pure logic: the
// MPM measures once a second (from the scoreboard and its listeners), SpareMaintenance
// decides how many processes to start or whether to retire one, and the MPM carries it out.
// One class serves prefork (one worker per process, min/max_spare_servers) and worker/event
// (threads_per_child workers per process, min/max_spare_threads). docs/mpm.md explains the
// policy, including the burst rule that goes beyond Apache.

#include <cstdint>
#include <optional>

#include "trident/config.hpp"
#include "trident/scoreboard.hpp"

namespace trident {

/// The limits maintenance works within, in workers and processes. Build it from a config
/// that has been through clamp_prefork / clamp_threaded.
struct SparePolicy {
    std::uint32_t workers_per_process = 1;  ///< 1 for prefork, threads_per_child otherwise
    std::uint32_t min_spare = 5;            ///< idle workers wanted at least
    std::uint32_t max_spare = 10;           ///< idle workers tolerated at most
    std::uint32_t max_request_workers = 256;
    std::uint32_t server_limit = 256;  ///< process slots

    static SparePolicy prefork(const PreforkConfig& config) noexcept;
    static SparePolicy threaded(const ThreadedMpmConfig& config) noexcept;

    /// Accepting processes allowed at once: max_request_workers / workers_per_process, at
    /// least 1, at most server_limit.
    std::uint32_t max_processes() const noexcept;
};

/// What the MPM measured this tick (one generation's processes).
struct SpareSample {
    std::uint32_t idle_workers = 0;         ///< '_' and 'S' in accepting processes
    std::uint32_t active_workers = 0;       ///< held against max_request_workers
    std::uint32_t live_processes = 0;       ///< accepting: alive and not finishing
    std::uint32_t free_process_slots = 0;   ///< slots a new process could take
    std::uint32_t finishing_processes = 0;  ///< gracefully finishing, still holding a slot
    std::uint32_t listen_queue = 0;         ///< connections waiting in the accept queues
};

/// The measurement Apache takes, read from a scoreboard tally of the generation.
SpareSample spare_sample(const ScoreboardTally& tally, std::uint32_t listen_queue) noexcept;

/// What to do this tick. At most one of spawn > 0 and retire is set.
struct SpareDecision {
    std::uint32_t spawn = 0;  ///< processes to start now
    bool retire = false;      ///< ask one idle process to finish gracefully
    /// No idle worker and no room for another process: true on the first tick of such an
    /// episode only, so "server reached max_request_workers" is logged once per episode.
    bool reached_max_request_workers = false;
    /// At the process limit with fewer idle workers than min_spare (but some): Apache's
    /// "server is within min_spare_threads of max_request_workers", once per episode too.
    bool near_max_request_workers = false;
    /// Below min_spare with no free slot while under max_request_workers: raise server_limit.
    bool scoreboard_full = false;
    bool busy = false;   ///< spawning at a rate of 8 or more (Apache's "server seems busy")
    bool burst = false;  ///< the listen queue, not the rate, sized this spawn
};

class SpareMaintenance {
public:
    /// Apache's MAX_SPAWN_RATE: processes started per tick at most, by the doubling rule.
    static constexpr std::uint32_t kMaxSpawnRate = 32;
    /// Ticks without doubling after a graceful restart (Apache's hold_off value).
    static constexpr std::uint32_t kGracefulHoldOff = 10;

    explicit SpareMaintenance(const SparePolicy& policy) noexcept;

    /// Decides one tick (called about once a second).
    SpareDecision tick(const SpareSample& sample) noexcept;

    /// Between ticks (called about every 100 ms): the burst rule alone, so clients that
    /// arrive at once wait a fraction of a second for their processes, not up to a whole
    /// tick. It spawns only when two calls in a row find connections queued and no idle
    /// worker, so a connection caught on its way to an accept() starts nothing. The rate,
    /// the limit episodes and retiring stay with tick().
    SpareDecision between_ticks(const SpareSample& sample) noexcept;

    /// After a graceful restart: keep the rate from doubling for `ticks` spawning ticks, so
    /// the old generation's exits do not push the new one into exponential spawning.
    void hold_off(std::uint32_t ticks) noexcept { hold_off_ = ticks; }

    /// A child reported a resource shortage (Apache's APEXIT_CHILDSICK): back to rate 1.
    void child_sick() noexcept { spawn_rate_ = 1; }

    /// Processes the next spawning tick may start by the doubling rule.
    std::uint32_t spawn_rate() const noexcept { return spawn_rate_; }
    const SparePolicy& policy() const noexcept { return policy_; }

private:
    SpareDecision spawn(const SpareSample& sample) noexcept;
    /// The processes a queue with no idle worker calls for, within `room`; 0 for none.
    std::uint32_t burst_size(const SpareSample& sample, std::uint32_t room) const noexcept;
    /// Processes that may still start: free slots, and the process limit.
    std::uint32_t room(const SpareSample& sample) const noexcept;

    SparePolicy policy_;
    std::uint32_t spawn_rate_ = 1;
    std::uint32_t hold_off_ = 0;
    bool max_reported_ = false;        ///< in an at-the-limit episode, "reached" already said
    bool near_max_reported_ = false;   ///< in an at-the-limit episode, "near" already said
    bool queue_seen_waiting_ = false;  ///< the last between_ticks() found a queue, nobody idle
};

/// The child a "too many idle workers" tick stops, of `generation`'s in the scoreboard's
/// first `slots` slots: Apache's choice, an idle child (every worker waiting) in the highest
/// slot first, failing that the highest one. Only a child whose idle workers count as spare
/// qualifies: not one already finishing, nor an event child not accepting (full of idle
/// keep-alive connections, or recycled), whose workers all wait but whose stop would cut
/// its clients short and leave the spare count as it was. Nothing when none qualifies.
std::optional<std::uint32_t> child_to_retire(const Scoreboard& board, std::uint32_t generation,
                                             std::uint32_t slots,
                                             std::uint32_t workers_per_process) noexcept;

/// The connections waiting in a listening TCP socket's accept queue (Linux TCP_INFO on a
/// LISTEN socket: tcpi_unacked is the queue length, tcpi_sacked the backlog). 0 on error or
/// for a socket that is not listening.
std::uint32_t listen_queue_length(int fd) noexcept;

}  // namespace trident
