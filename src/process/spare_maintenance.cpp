#include "process/spare_maintenance.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <utility>

namespace trident {

SparePolicy SparePolicy::prefork(const PreforkConfig& config) noexcept {
    SparePolicy policy;
    policy.workers_per_process = 1;
    policy.min_spare = config.min_spare_servers;
    policy.max_spare = config.max_spare_servers;
    policy.max_request_workers = config.max_request_workers;
    policy.server_limit = config.server_limit;
    return policy;
}

SparePolicy SparePolicy::threaded(const ThreadedMpmConfig& config) noexcept {
    SparePolicy policy;
    policy.workers_per_process = std::max<std::uint32_t>(1, config.threads_per_child);
    policy.min_spare = config.min_spare_threads;
    policy.max_spare = config.max_spare_threads;
    policy.max_request_workers = config.max_request_workers;
    policy.server_limit = config.server_limit;
    return policy;
}

std::uint32_t SparePolicy::max_processes() const noexcept {
    const std::uint32_t per_process = std::max<std::uint32_t>(1, workers_per_process);
    const std::uint32_t by_workers = std::max<std::uint32_t>(1, max_request_workers / per_process);
    return std::min(by_workers, std::max<std::uint32_t>(1, server_limit));
}

SpareSample spare_sample(const ScoreboardTally& tally, std::uint32_t listen_queue) noexcept {
    SpareSample sample;
    // Apache counts a starting worker as idle: it was started at least a tick ago, and forking
    // more while it finishes starting would only swamp the machine further.
    // Only processes with room for connections count: a child full of slow clients has idle
    // threads but takes nobody new (Apache skips not_accepting children the same way).
    sample.idle_workers = tally.spare;
    sample.active_workers = tally.active;
    sample.live_processes = tally.processes - std::min(tally.quiescing, tally.processes);
    sample.free_process_slots = tally.free_process_slots;
    sample.finishing_processes = tally.quiescing;
    sample.listen_queue = listen_queue;
    return sample;
}

SpareMaintenance::SpareMaintenance(const SparePolicy& policy) noexcept : policy_(policy) {}

SpareDecision SpareMaintenance::tick(const SpareSample& sample) noexcept {
    const bool short_of_workers = sample.idle_workers < policy_.min_spare;
    // Beyond Apache: connections already wait in the accept queue and nobody is free to take
    // them. Spawning at the doubling rate would leave them waiting for several ticks.
    const bool burst = sample.listen_queue > 0 && sample.idle_workers == 0;
    const std::uint32_t max_processes = policy_.max_processes();
    const bool at_limit = sample.live_processes >= max_processes ||
                          sample.active_workers >= policy_.max_request_workers;
    // An episode at the limit lasts while ticks find the pool short of workers and full.
    if (!((short_of_workers || burst) && at_limit)) {
        max_reported_ = false;
        near_max_reported_ = false;
    }

    SpareDecision decision;
    if (sample.idle_workers > policy_.max_spare) {
        // Apache: retire one process per tick, and the rate starts over.
        spawn_rate_ = 1;
        // Apache event: finishing processes can linger (long requests, keep-alive), and
        // retiring more would fill the scoreboard; retire only with no process finishing, or
        // while slack for a whole generation remains.
        const std::uint32_t holding = sample.live_processes + sample.finishing_processes;
        const bool slack =
            sample.finishing_processes == 0 ||
            (policy_.server_limit > holding && policy_.server_limit - holding > max_processes);
        // Beyond Apache: never retire the last accepting process.
        decision.retire = slack && sample.live_processes > 1;
        return decision;
    }
    if (!short_of_workers && !burst) {
        spawn_rate_ = 1;  // Apache: reset on every tick that needs no spawning
        return decision;
    }
    if (at_limit) {
        if (sample.idle_workers == 0) {
            decision.reached_max_request_workers = !max_reported_;
            max_reported_ = true;
        } else {
            decision.near_max_request_workers = !near_max_reported_;
            near_max_reported_ = true;
        }
        spawn_rate_ = 1;
        return decision;
    }
    if (sample.free_process_slots == 0) {
        decision.scoreboard_full = true;  // under the limit yet no slot: server_limit too low
        spawn_rate_ = 1;
        return decision;
    }
    return spawn(sample);
}

SpareDecision SpareMaintenance::spawn(const SpareSample& sample) noexcept {
    SpareDecision decision;
    const std::uint32_t room = this->room(sample);
    std::uint32_t count = std::min(spawn_rate_, room);
    // Enough processes for every queued connection at once, within the limits.
    if (const std::uint32_t needed = burst_size(sample, room); needed > count) {
        count = needed;
        decision.burst = true;
    }
    decision.spawn = count;
    decision.busy = spawn_rate_ >= 8;
    // Apache: the next spawning tick starts twice as many, up to MAX_SPAWN_RATE, except while
    // holding off after a graceful restart.
    if (hold_off_ > 0) {
        --hold_off_;
    } else if (spawn_rate_ < kMaxSpawnRate) {
        spawn_rate_ *= 2;
    }
    return decision;
}

SpareDecision SpareMaintenance::between_ticks(const SpareSample& sample) noexcept {
    SpareDecision decision;
    const bool waiting = sample.listen_queue > 0 && sample.idle_workers == 0;
    const bool seen_before = std::exchange(queue_seen_waiting_, waiting);
    if (!waiting || !seen_before) {
        return decision;
    }
    // At the limit nothing may start; the next tick says so in the log.
    if (sample.active_workers < policy_.max_request_workers) {
        decision.spawn = burst_size(sample, room(sample));
        decision.burst = decision.spawn > 0;
    }
    queue_seen_waiting_ = false;  // what starts now counts as idle at the next call
    return decision;
}

std::uint32_t SpareMaintenance::burst_size(const SpareSample& sample,
                                           std::uint32_t room) const noexcept {
    if (sample.listen_queue == 0 || sample.idle_workers > 0) {
        return 0;  // an idle worker means the queue is being drained
    }
    const std::uint32_t per_process = std::max<std::uint32_t>(1, policy_.workers_per_process);
    return std::min((sample.listen_queue + per_process - 1) / per_process, room);
}

std::uint32_t SpareMaintenance::room(const SpareSample& sample) const noexcept {
    const std::uint32_t max_processes = policy_.max_processes();
    const std::uint32_t under_limit =
        max_processes > sample.live_processes ? max_processes - sample.live_processes : 0;
    return std::min(sample.free_process_slots, under_limit);
}

std::optional<std::uint32_t> child_to_retire(const Scoreboard& board, std::uint32_t generation,
                                             std::uint32_t slots,
                                             std::uint32_t workers_per_process) noexcept {
    std::optional<std::uint32_t> chosen;
    for (std::uint32_t slot = std::min(slots, board.server_limit()); slot-- > 0;) {
        const ProcessSlot& process = board.process(slot);
        if (process.pid() == 0 || process.generation() != generation || process.quiescing() ||
            process.not_accepting()) {
            continue;
        }
        bool idle = true;
        for (std::uint32_t t = 0; t < workers_per_process && idle; ++t) {
            idle = board.worker(slot, t).state() == WorkerState::waiting;
        }
        if (idle) {
            return slot;
        }
        if (!chosen) {
            chosen = slot;
        }
    }
    return chosen;
}

std::uint32_t listen_queue_length(int fd) noexcept {
    if (fd < 0) {
        return 0;
    }
    tcp_info info{};
    socklen_t length = sizeof(info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) {
        return 0;
    }
    if (length < offsetof(tcp_info, tcpi_unacked) + sizeof(info.tcpi_unacked) ||
        info.tcpi_state != TCP_LISTEN) {
        return 0;  // only a listening socket reports its accept queue in tcpi_unacked
    }
    return info.tcpi_unacked;
}

}  // namespace trident
