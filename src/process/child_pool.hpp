#pragma once

// Forks, tracks and signals an MPM generation's child processes. Written once here and used
// by every MPM, so fork/reap/respawn bookkeeping exists in one place.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trident/mpm.hpp"

namespace trident {

/// What became of a reaped child.
struct ChildExit {
    std::size_t slot = 0;
    pid_t pid = 0;
    int wait_status = 0;
    std::chrono::steady_clock::duration lifetime{};

    bool exited_cleanly() const noexcept;  ///< exit status 0
    std::string describe() const;  ///< "exited with status 1" / "killed by signal 9 (Killed)"
};

class ChildPool {
public:
    /// Runs in the child after fork; its return value becomes the exit status.
    using ChildMain = std::function<int(std::size_t slot)>;

    /// A child that cannot take on its identity (or whose master is gone) exits with this.
    static constexpr int kSetupFailedStatus = 3;

    /// `on_graceful_stop`, when given, handles SIGUSR1 in the children; it is installed
    /// before the child's signals are unblocked, so no graceful stop is ever lost to the
    /// default action. `identity`, when given, is who the children become (it must outlive
    /// the pool).
    ChildPool(std::size_t capacity, ChildMain child_main, void (*on_graceful_stop)(int) = nullptr,
              const ChildIdentity* identity = nullptr);
    ChildPool(const ChildPool&) = delete;
    ChildPool& operator=(const ChildPool&) = delete;

    /// Forks a child into the lowest free slot. Returns its pid, or -1 with errno set
    /// (EAGAIN when every slot is taken).
    pid_t spawn();

    /// Forks a child into `slot`, which must be free. Returns its pid, or -1 with errno set.
    pid_t spawn_into(std::size_t slot);

    /// Claims `pid` if it was ours: frees its slot and says how it ended.
    std::optional<ChildExit> on_exit(pid_t pid, int wait_status) noexcept;

    /// Sends `sig` to every live child.
    void signal_all(int sig) noexcept;

    /// The slot the next spawn() takes (the lowest free one), if any.
    std::optional<std::size_t> free_slot() const noexcept;

    /// The child in `slot`, or 0 when the slot is free.
    pid_t pid_at(std::size_t slot) const noexcept { return slots_[slot].pid; }
    /// When the child in `slot` was forked.
    std::chrono::steady_clock::time_point started_at(std::size_t slot) const noexcept {
        return slots_[slot].started;
    }

    std::size_t live() const noexcept { return live_; }
    std::size_t capacity() const noexcept { return slots_.size(); }
    std::vector<pid_t> pids() const;

private:
    struct Slot {
        pid_t pid = 0;  ///< 0: free
        std::chrono::steady_clock::time_point started;
    };
    std::vector<Slot> slots_;
    std::size_t live_ = 0;
    ChildMain child_main_;
    void (*on_graceful_stop_)(int) = nullptr;
    const ChildIdentity* identity_ = nullptr;
};

/// Keeps children that die at start-up from being respawned in a hot loop. Apache's
/// prefork sleeps after a fork failure; Trident goes further and notices a crash loop: after
/// kCrashLoopThreshold children in a row die younger than kYoungDeath without a clean exit,
/// respawning waits kFirstDelay, doubling with every further young death up to kMaxDelay,
/// and only one child (a probe) is started per wait. When a probe lives kYoungDeath, the
/// episode is over. Pure bookkeeping: the caller owns the clock, the forks and the log.
class RespawnBackoff {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr auto kYoungDeath = std::chrono::seconds(1);
    static constexpr int kCrashLoopThreshold = 3;
    static constexpr auto kFirstDelay = std::chrono::seconds(1);
    static constexpr auto kMaxDelay = std::chrono::seconds(16);

    /// What a child's exit means for respawning.
    struct Verdict {
        bool respawn_now = false;      ///< replace it at once
        bool episode_started = false;  ///< this death began a crash loop: log it (once)
        Clock::duration delay{};       ///< when backing off: the wait before the next probe
        int crashes_in_a_row = 0;
    };

    /// A child ended without being asked to. `clean`: exit status 0.
    Verdict on_exit(bool clean, Clock::duration lifetime, Clock::time_point now) noexcept;

    /// Whether a child may be forked now (always, outside a crash loop).
    bool may_spawn(Clock::time_point now) const noexcept;

    /// A child was forked; in a crash loop it is the probe, and no other follows it until
    /// it has proved itself or died.
    void on_spawn(Clock::time_point now) noexcept;

    /// Ends the episode once the probe has lived kYoungDeath; true when it just ended.
    bool check_recovered(Clock::time_point now) noexcept;

    bool in_crash_loop() const noexcept { return in_episode_; }

private:
    int crashes_ = 0;  ///< young, unclean deaths in a row
    bool in_episode_ = false;
    bool probe_pending_ = false;
    Clock::time_point probe_started_{};
    Clock::time_point next_spawn_{};
    Clock::duration delay_{};
};

/// In a freshly forked child: takes on `identity` (supplementary groups, then group, then
/// user, and checks that root cannot be regained), then re-arms the parent-death signal,
/// which the kernel clears on a change of credentials. Returns false with `error` filled
/// when any step fails; the child must then exit.
bool become_child_identity(const ChildIdentity& identity, pid_t master_pid,
                           std::string& error) noexcept;

/// Puts a freshly forked child in a clean state: dispositions reset (SIGUSR1 to
/// `on_graceful_stop` when given), SIGPIPE and SIGXFSZ ignored, SIGTERM delivered if the
/// master dies, and only then the master's blocked signals unblocked. Returns false if the
/// master is already gone.
bool prepare_child_process(pid_t master_pid, void (*on_graceful_stop)(int) = nullptr) noexcept;

/// `cpu_scheduling: batch`, in a freshly forked child before it starts a thread (threads
/// inherit the policy): moves it from SCHED_OTHER to SCHED_BATCH. Any other policy, one
/// systemd's CPUSchedulingPolicy= or chrt chose, is left as it is, and so is the nice value.
/// Returns false with `error` filled when the kernel refuses; the child runs on regardless.
bool apply_cpu_scheduling(std::string_view policy, std::string& error) noexcept;

}  // namespace trident
