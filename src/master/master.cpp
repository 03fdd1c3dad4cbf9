#include "master/master.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>

#include "http/router.hpp"
#include "log/access_log.hpp"
#include "log/error_log.hpp"
#include "master/listeners.hpp"
#include "master/module_loader.hpp"
#include "master/pid_file.hpp"
#include "process/mpm_directives.hpp"
#include "status/status_handler.hpp"
#include "trident/mpm.hpp"
#include "trident/scoreboard.hpp"

namespace trident {

namespace {

using Clock = std::chrono::steady_clock;

// After SIGTERM, children get this long to exit before SIGKILL.
constexpr auto kStopGrace = std::chrono::seconds(5);
// After SIGKILL, how long to wait for the kernel to hand the children back.
constexpr auto kKillWait = std::chrono::seconds(5);
// How often the MPM replaces lost children and adjusts its spare capacity.
constexpr auto kMaintenanceInterval = std::chrono::seconds(1);

/// The signals the master takes synchronously with sigtimedwait. Blocked before the first
/// fork; children unblock them (prepare_child_process).
sigset_t master_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGWINCH, SIGCHLD}) {
        sigaddset(&set, sig);
    }
    return set;
}

/// Waits up to `timeout` for one of the master's signals; 0 on timeout.
int wait_signal(const sigset_t& set, Clock::duration timeout) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
    timespec ts{time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)};
    const int sig = sigtimedwait(&set, nullptr, &ts);
    return sig > 0 ? sig : 0;
}

/// Process slots and worker slots per process for the configured MPM.
std::pair<std::uint32_t, std::uint32_t> scoreboard_shape(const Config& config) {
    if (config.mpm == "prefork") {
        return {config.prefork.server_limit, 1};
    }
    const ThreadedMpmConfig& threaded = config.mpm == "worker"
                                            ? config.worker
                                            : static_cast<const ThreadedMpmConfig&>(config.event);
    return {threaded.server_limit, threaded.thread_limit};
}

class Master {
public:
    explicit Master(const Config& config) : config_(config), log_(log::get("core")) {}
    int run();

private:
    void reap_children() noexcept;
    /// Waits, reaping, until every child is gone or `deadline` passes (none: no bound).
    /// A SIGTERM/SIGINT meanwhile turns a graceful stop into a stop (sets `escalated`).
    bool wait_children(std::optional<Clock::time_point> deadline, bool& escalated);
    void shut_down(StopMode mode);
    int fail(const std::string& message);

    Config config_;  ///< as loaded, then with the MPM's directives clamped
    std::shared_ptr<spdlog::logger> log_;
    sigset_t signals_ = master_signals();
    std::optional<MpmModule> module_;       // declared before mpm_: unmapped only after it is gone
    std::optional<Scoreboard> scoreboard_;  // likewise outlives mpm_
    std::unique_ptr<Mpm> mpm_;
};

int Master::fail(const std::string& message) {
    log_->critical("{}", message);
    return 1;
}

int Master::run() {
    if (!config_.user.empty() || !config_.group.empty()) {
        // Parsed so configs stay valid, but not applied yet: say so rather than let an
        // operator believe the children dropped privileges.
        log_->warn("user/group are not applied by this version; children run as uid {}", getuid());
    }
    std::vector<std::string> clamped;
    clamp_mpm_directives(config_, clamped);
    for (const std::string& warning : clamped) {
        log_->warn("{}", warning);
    }
    // Listeners first, before any module code runs (DESIGN §1): they outlive generations.
    auto bound = bind_listeners(config_.listen);
    if (!bound) {
        return fail(bound.error().message);
    }
    std::vector<Listener> listeners = std::move(bound.value());

    const auto module_dir = config_.module_dir.empty() ? default_module_dir() : config_.module_dir;
    auto loaded = MpmModule::load(module_dir, config_.mpm);
    if (!loaded) {
        close_listeners(listeners);
        return fail(loaded.error().message);
    }
    module_.emplace(std::move(loaded.value()));

    std::unique_ptr<Router> router;
    try {
        router = std::make_unique<Router>(config_);
    } catch (const std::exception& e) {
        close_listeners(listeners);
        return fail(std::string("cannot set up request routing: ") + e.what());
    }
    if ((module_->descriptor().traits & kMpmThreaded) != 0) {
        for (const Handler* handler : router->handlers()) {
            if (!handler->thread_safe()) {
                close_listeners(listeners);
                return fail("handler '" + std::string(handler->name()) +
                            "' is not thread-safe and cannot run under the threaded '" +
                            config_.mpm + "' MPM; use mpm: prefork");
            }
        }
    }

    // Signals are taken synchronously from here on; children start with them unblocked.
    sigprocmask(SIG_BLOCK, &signals_, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    // The scoreboard exists before the first fork, so every child maps the same memory.
    const auto [process_slots, worker_slots] = scoreboard_shape(config_);
    auto scoreboard =
        Scoreboard::create(process_slots, worker_slots, config_.mpm, config_.scoreboard_file);
    if (!scoreboard) {
        close_listeners(listeners);
        return fail(scoreboard.error().message);
    }
    scoreboard_.emplace(std::move(scoreboard.value()));
    scoreboard_->set_generation(1);
    // Opened before the first fork, so children write to it whatever user they become.
    auto access_log = log::AccessLog::open(config_.access_log);
    auto status = status::make_status_handler(config_, *scoreboard_);
    if (!access_log || !status) {
        close_listeners(listeners);
        return fail(!access_log ? access_log.error().message : status.error().message);
    }
    router->mount(config_.status.path, std::move(status.value()));

    // Written once the master is set up (listeners, module, scoreboard): tools may take
    // it as the sign that the server is there.
    PidFile pid_file;
    if (!config_.pid_file.empty()) {
        if (auto written = pid_file.write(config_.pid_file, getpid()); !written) {
            close_listeners(listeners);
            return fail(written.error().message);
        }
    }
    MpmContext context{&config_, listeners, router.get(), &*scoreboard_, 1};
    context.access_log = access_log->get();
    mpm_.reset(module_->descriptor().create(&context));
    if (!mpm_) {
        close_listeners(listeners);
        return fail("the " + config_.mpm + " MPM could not be created");
    }
    std::string error;
    if (!mpm_->start(error)) {
        shut_down(StopMode::immediate);
        close_listeners(listeners);
        return fail(error);
    }
    std::string names;
    for (const Listener& listener : listeners) {
        names += (names.empty() ? "" : ", ") + listener.name;
    }
    log_->info("Trident/{} ({} MPM) listening on {} -- resuming normal operations", TRIDENT_VERSION,
               config_.mpm, names);

    auto next_maintenance = Clock::now() + kMaintenanceInterval;
    for (;;) {
        const auto now = Clock::now();
        if (now >= next_maintenance) {
            // On a clock, not on a quiet second: a stream of SIGCHLD must not starve it.
            mpm_->maintain();
            next_maintenance = now + kMaintenanceInterval;
        }
        const int sig = wait_signal(signals_, next_maintenance - Clock::now());
        if (sig == SIGCHLD) {
            reap_children();
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_->info("caught {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            shut_down(StopMode::immediate);
            break;
        } else if (sig == SIGWINCH) {
            log_->info("caught SIGWINCH, shutting down gracefully");
            shut_down(StopMode::graceful);
            break;
        } else if (sig == SIGHUP || sig == SIGUSR1) {
            log_->warn("caught {}: restarts are not supported by this version; still serving",
                       sig == SIGHUP ? "SIGHUP" : "SIGUSR1");
        }
    }
    mpm_.reset();  // before the module is unmapped
    close_listeners(listeners);
    log_->info("stopped");
    return 0;
}

void Master::reap_children() noexcept {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (!mpm_ || !mpm_->on_child_exit(pid, status)) {
            log_->debug("reaped unknown child pid {}", pid);
        }
    }
}

bool Master::wait_children(std::optional<Clock::time_point> deadline, bool& escalated) {
    // SIGTERM and SIGINT still count while waiting: a graceful stop can be cut short.
    sigset_t wanted;
    sigemptyset(&wanted);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT}) {
        sigaddset(&wanted, sig);
    }
    reap_children();
    while (mpm_->live_children() > 0) {
        auto slice = Clock::duration(std::chrono::milliseconds(200));
        if (deadline) {
            const auto now = Clock::now();
            if (now >= *deadline) {
                return false;
            }
            slice = std::min(slice, *deadline - now);
        }
        const int sig = wait_signal(wanted, slice);
        if ((sig == SIGTERM || sig == SIGINT) && !escalated) {
            log_->info("caught {} during a graceful stop; stopping now",
                       sig == SIGTERM ? "SIGTERM" : "SIGINT");
            escalated = true;
            mpm_->stop(StopMode::immediate);
            const auto grace = Clock::now() + kStopGrace;
            deadline = deadline ? std::min(*deadline, grace) : grace;
        }
        reap_children();
    }
    return true;
}

void Master::shut_down(StopMode mode) {
    if (!mpm_) {
        return;
    }
    mpm_->stop(mode);
    std::optional<Clock::time_point> deadline;
    if (mode == StopMode::immediate) {
        deadline = Clock::now() + kStopGrace;
    } else if (config_.timeouts.graceful_shutdown.count() > 0) {
        deadline = Clock::now() + config_.timeouts.graceful_shutdown;
    }
    bool escalated = mode == StopMode::immediate;
    if (!wait_children(deadline, escalated)) {
        log_->warn("{} children still running; sending SIGKILL", mpm_->live_children());
        mpm_->kill_all();
        if (!wait_children(Clock::now() + kKillWait, escalated)) {
            log_->error("{} children did not exit after SIGKILL", mpm_->live_children());
        }
    }
}

}  // namespace

int run_master(const Config& config) {
    try {
        return Master(config).run();
    } catch (const std::exception& e) {
        log::get("core")->critical("fatal: {}", e.what());
        return 1;
    }
}

}  // namespace trident
