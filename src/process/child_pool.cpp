#include "process/child_pool.hpp"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>

namespace trident {

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

ChildPool::ChildPool(std::size_t capacity, ChildMain child_main, void (*on_graceful_stop)(int))
    : slots_(capacity), child_main_(std::move(child_main)), on_graceful_stop_(on_graceful_stop) {}

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
    const std::size_t slot = *free;
    const pid_t master = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int status = 1;
        if (prepare_child_process(master, on_graceful_stop_)) {
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

}  // namespace trident
