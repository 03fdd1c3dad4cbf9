#include "process/child_pool.hpp"

#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "log/error_log.hpp"

namespace trident {

namespace {

/// Test-only hook, documented in docs/operations.md: while the file this variable names
/// exists, every child dies of SIGSEGV right after it starts. It is how the integration
/// tests make an honest crash loop (a real signal death at start-up) without a crashing
/// build; nothing else reads it, and an unset variable costs one getenv per fork.
constexpr const char* kCrashHookVariable = "TRIDENT_TEST_CRASH_CHILD_FILE";

void crash_if_asked_to() noexcept {
    const char* file = std::getenv(kCrashHookVariable);
    if (file == nullptr || ::access(file, F_OK) != 0) {
        return;
    }
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);  // a test leaves no core files behind
    // The default action, even under a sanitizer that would turn the signal into an abort.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    ::sigaction(SIGSEGV, &default_action, nullptr);
    ::raise(SIGSEGV);
}

}  // namespace

bool ChildExit::exited_cleanly() const noexcept {
    return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

std::string ChildExit::describe() const {
    if (WIFEXITED(wait_status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
    }
    if (WIFSIGNALED(wait_status)) {
        const int sig = WTERMSIG(wait_status);
        std::string text = "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
        if (WCOREDUMP(wait_status)) {
            text += ", core dumped";
        }
        return text;
    }
    return "ended with wait status " + std::to_string(wait_status);
}

ChildPool::ChildPool(std::size_t capacity, ChildMain child_main, void (*on_graceful_stop)(int),
                     const ChildIdentity* identity)
    : slots_(capacity),
      child_main_(std::move(child_main)),
      on_graceful_stop_(on_graceful_stop),
      identity_(identity) {}

std::optional<std::size_t> ChildPool::free_slot() const noexcept {
    for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
        if (slots_[slot].pid == 0) {
            return slot;
        }
    }
    return std::nullopt;
}

pid_t ChildPool::spawn() {
    const std::optional<std::size_t> free = free_slot();
    if (!free) {
        errno = EAGAIN;
        return -1;
    }
    return spawn_into(*free);
}

pid_t ChildPool::spawn_into(std::size_t slot) {
    if (slot >= slots_.size() || slots_[slot].pid != 0) {
        errno = EINVAL;
        return -1;
    }
    const pid_t master = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int status = kSetupFailedStatus;
        if (prepare_child_process(master, on_graceful_stop_)) {
            std::string error;
            if (identity_ != nullptr && !become_child_identity(*identity_, master, error)) {
                log::get("core")->error("child pid {} cannot run as {}: {}", getpid(),
                                        identity_->user, error);
                _exit(kSetupFailedStatus);
            }
            crash_if_asked_to();
            try {
                status = child_main_(slot);
            } catch (...) {
                status = 1;
            }
        }
        // _exit: the child must not run the master's atexit handlers or static destructors.
        _exit(status);
    }
    slots_[slot] = Slot{pid, std::chrono::steady_clock::now()};
    ++live_;
    return pid;
}

std::optional<ChildExit> ChildPool::on_exit(pid_t pid, int wait_status) noexcept {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].pid == pid) {
            ChildExit exit{i, pid, wait_status,
                           std::chrono::steady_clock::now() - slots_[i].started};
            slots_[i] = Slot{};
            --live_;
            return exit;
        }
    }
    return std::nullopt;
}

void ChildPool::signal_all(int sig) noexcept {
    for (const Slot& slot : slots_) {
        if (slot.pid > 0) {
            kill(slot.pid, sig);
        }
    }
}

std::vector<pid_t> ChildPool::pids() const {
    std::vector<pid_t> out;
    for (const Slot& slot : slots_) {
        if (slot.pid > 0) {
            out.push_back(slot.pid);
        }
    }
    return out;
}

bool prepare_child_process(pid_t master_pid, void (*on_graceful_stop)(int)) noexcept {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig : {SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD, SIGALRM}) {
        sigaction(sig, &dfl, nullptr);
    }
    // The master handles these for the whole process group (Ctrl-C in a terminal) and
    // then tells its children what to do.
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, nullptr);
    sigaction(SIGHUP, &ign, nullptr);
    sigaction(SIGPIPE, &ign, nullptr);
    sigaction(SIGXFSZ, &ign, nullptr);  // a log at the file size limit fails with EFBIG
    if (on_graceful_stop != nullptr) {
        struct sigaction graceful {};
        graceful.sa_handler = on_graceful_stop;
        sigemptyset(&graceful.sa_mask);
        sigaction(SIGUSR1, &graceful, nullptr);  // no SA_RESTART: blocking calls wake up
    }

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);

    // A child never outlives its master, even when the master is killed with SIGKILL.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    return getppid() == master_pid;
}

bool become_child_identity(const ChildIdentity& identity, pid_t master_pid,
                           std::string& error) noexcept {
    if (!identity.switch_user) {
        return true;
    }
    auto failed = [&](const char* step) {
        error = std::string(step) + ": " + std::strerror(errno);
        return false;
    };
    // Groups first: once the user is dropped, the right to change them is gone.
    if (::setgroups(identity.groups.size(), identity.groups.data()) != 0) {
        return failed("setgroups");
    }
    if (::setgid(identity.gid) != 0) {
        return failed("setgid");
    }
    if (::setuid(identity.uid) != 0) {
        return failed("setuid");
    }
    if (identity.uid != 0 && ::setuid(0) == 0) {
        error = "setuid(0) still succeeds after dropping to uid " + std::to_string(identity.uid);
        return false;
    }
    // The kernel clears the parent-death signal on a change of credentials.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != master_pid) {
        error = "the master is gone";
        return false;
    }
    return true;
}

bool apply_cpu_scheduling(std::string_view policy, std::string& error) noexcept {
    if (policy != "batch" || (::sched_getscheduler(0) & ~SCHED_RESET_ON_FORK) != SCHED_OTHER) {
        return true;
    }
    // Under SCHED_BATCH a thread that wakes does not preempt the one running: that one goes
    // on until it blocks, yields or spends its slice. A busy child then serves the clients
    // that became ready in one run instead of handing the core back and forth between its
    // threads and its siblings at every arrival. docs/mpm.md has the measurements.
    const sched_param param{};  // priority 0, the only one SCHED_BATCH takes
    if (::sched_setscheduler(0, SCHED_BATCH, &param) != 0) {
        error = std::string("sched_setscheduler(SCHED_BATCH): ") + std::strerror(errno);
        return false;
    }
    return true;
}

// --- RespawnBackoff --------------------------------------------------------------------------

RespawnBackoff::Verdict RespawnBackoff::on_exit(bool clean, Clock::duration lifetime,
                                                Clock::time_point now) noexcept {
    probe_pending_ = false;
    Verdict verdict;
    if (clean || lifetime >= kYoungDeath) {
        // Not a start-up crash; in a crash loop the probes still decide when it is over.
        crashes_ = in_episode_ ? crashes_ : 0;
        verdict.respawn_now = may_spawn(now);
        verdict.crashes_in_a_row = crashes_;
        return verdict;
    }
    ++crashes_;
    verdict.crashes_in_a_row = crashes_;
    if (crashes_ < kCrashLoopThreshold) {
        verdict.respawn_now = true;
        return verdict;
    }
    const int doublings = std::min(crashes_ - kCrashLoopThreshold, 16);
    delay_ = std::min<Clock::duration>(kFirstDelay * (1 << doublings), kMaxDelay);
    next_spawn_ = now + delay_;
    verdict.episode_started = !in_episode_;
    verdict.delay = delay_;
    in_episode_ = true;
    return verdict;
}

bool RespawnBackoff::may_spawn(Clock::time_point now) const noexcept {
    return !in_episode_ || (!probe_pending_ && now >= next_spawn_);
}

void RespawnBackoff::on_spawn(Clock::time_point now) noexcept {
    if (in_episode_) {
        probe_pending_ = true;
        probe_started_ = now;
    }
}

bool RespawnBackoff::check_recovered(Clock::time_point now) noexcept {
    if (!in_episode_ || !probe_pending_ || now - probe_started_ < kYoungDeath) {
        return false;
    }
    in_episode_ = false;
    probe_pending_ = false;
    crashes_ = 0;
    return true;
}

}  // namespace trident
