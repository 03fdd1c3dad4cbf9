#pragma once

// Forks, tracks and signals an MPM generation's child processes. Written once here and used
// by every MPM, so fork/reap/respawn bookkeeping exists in one place.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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

    /// `on_graceful_stop`, when given, handles SIGUSR1 in the children; it is installed
    /// before the child's signals are unblocked, so no graceful stop is ever lost to the
    /// default action.
    ChildPool(std::size_t capacity, ChildMain child_main, void (*on_graceful_stop)(int) = nullptr);
    ChildPool(const ChildPool&) = delete;
    ChildPool& operator=(const ChildPool&) = delete;

    /// Forks a child into the lowest free slot. Returns its pid, or -1 with errno set
    /// (EAGAIN when every slot is taken).
    pid_t spawn();

    /// Claims `pid` if it was ours: frees its slot and says how it ended.
    std::optional<ChildExit> on_exit(pid_t pid, int wait_status) noexcept;

    /// Sends `sig` to every live child.
    void signal_all(int sig) noexcept;

    /// The slot the next spawn() takes (the lowest free one), if any.
    std::optional<std::size_t> free_slot() const noexcept;

    /// The child in `slot`, or 0 when the slot is free.
    pid_t pid_at(std::size_t slot) const noexcept { return slots_[slot].pid; }

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
};

/// Puts a freshly forked child in a clean state: dispositions reset (SIGUSR1 to
/// `on_graceful_stop` when given), SIGPIPE ignored, SIGTERM delivered if the master dies,
/// and only then the master's blocked signals unblocked. Returns false if the master is
/// already gone.
bool prepare_child_process(pid_t master_pid, void (*on_graceful_stop)(int) = nullptr) noexcept;

}  // namespace trident
