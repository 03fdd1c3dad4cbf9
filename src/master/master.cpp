#include "master/master.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "log/error_log.hpp"
#include "master/generation.hpp"
#include "master/listeners.hpp"
#include "master/notify.hpp"
#include "master/pid_file.hpp"
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
// How often, between those, the MPM looks for clients waiting with no worker free.
constexpr auto kQueueCheckInterval = std::chrono::milliseconds(100);
// How often systemd gets a STATUS= line.
constexpr auto kStatusInterval = std::chrono::seconds(5);
// A scoreboard larger than this is worth a warning at start.
constexpr std::size_t kLargeScoreboard = std::size_t(64) << 20;

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

/// Waits up to `timeout` for one of `set`; 0 on timeout.
int wait_signal(const sigset_t& set, Clock::duration timeout) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::max(timeout, Clock::duration::zero()))
                        .count();
    timespec ts{time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)};
    const int sig = sigtimedwait(&set, nullptr, &ts);
    return sig > 0 ? sig : 0;
}

std::string listener_names(const std::vector<Listener>& listeners) {
    std::string names;
    for (const Listener& listener : listeners) {
        names += (names.empty() ? "" : ", ") + listener.name;
    }
    return names;
}

/// A generation that was replaced and is finishing its children's work.
struct Draining {
    std::unique_ptr<Generation> generation;
    std::optional<Clock::time_point> kill_at;  ///< SIGKILL then (a restart's stop grace)
};

class Master {
public:
    explicit Master(const Config& config) : start_config_(config), log_(log::get("core")) {}
    ~Master();
    int run();

private:
    /// Builds and starts generation 1; false (after logging) when the server cannot start.
    bool start_first_generation();
    /// SIGUSR1 (graceful) or SIGHUP (immediate): a new generation from the re-read config;
    /// with a config that does not load or validate, the running one keeps serving.
    void restart(StopMode old_generation_stop);
    void reap_children() noexcept;
    /// Drops drained generations; SIGKILLs one whose stop grace ran out.
    void tend_draining_generations();
    std::size_t live_children() const noexcept;
    void stop_all(StopMode mode) noexcept;
    void kill_all() noexcept;
    /// Waits, reaping, until every child is gone or `deadline` passes (none: no bound).
    /// A SIGTERM/SIGINT meanwhile turns a graceful stop into a stop (sets `escalated`).
    bool wait_children(std::optional<Clock::time_point> deadline, bool& escalated);
    void shut_down(StopMode mode);
    void send_status();
    int fail(const std::string& message);

    Config start_config_;  ///< as loaded by main(); later generations re-read its file
    std::shared_ptr<spdlog::logger> log_;
    sigset_t signals_ = master_signals();
    ServiceNotifier notifier_;
    PidFile pid_file_;
    ListenerRegistry listeners_;
    std::optional<Scoreboard> scoreboard_;  // outlives every generation
    std::unique_ptr<Generation> current_;
    std::vector<Draining> draining_;
};

Master::~Master() {
    // Generations point into the scoreboard: they go first.
    draining_.clear();
    current_.reset();
}

namespace {

/// Says `message` on stderr too when the error log is a file, where the terminal or the
/// service manager's journal shows it: the file may be what failed, or nobody reads it.
void echo_to_stderr(const Config& config, const std::string& message) {
    if (config.error_log.path != "stderr" && config.error_log.path != "stdout") {
        std::fprintf(stderr, "trident: %s\n", message.c_str());
    }
}

/// A reason the master cannot go on, in the error log and, when that is a file, on stderr
/// too: whoever started it (a terminal, systemd's journal) learns why, as Apache prints
/// its start-up failures, not only to the log file.
void report_fatal(const Config& config, const std::string& message) {
    log::get("core")->critical("{}", message);
    echo_to_stderr(config, message);
}

}  // namespace

int Master::fail(const std::string& message) {
    report_fatal(start_config_, message);
    return 1;
}

bool Master::start_first_generation() {
    std::vector<std::string> warnings;
    auto built = build_generation(start_config_, 1, *scoreboard_, listeners_, warnings);
    for (const std::string& warning : warnings) {
        log_->warn("{}", warning);
    }
    if (!built) {
        listeners_.rollback();
        fail(built.error().message);
        return false;
    }
    current_ = std::move(built.value());
    listeners_.commit(current_->listeners);
    return true;
}

int Master::run() {
    if (!start_config_.pid_file.empty()) {
        const PidFileStatus holder = inspect_pid_file(start_config_.pid_file);
        if (holder.state == PidFileStatus::State::running) {
            return fail("already running (pid " + std::to_string(holder.pid) + ", pid file " +
                        start_config_.pid_file.string() + ")");
        }
        if (holder.state == PidFileStatus::State::stale) {
            log_->info("pid file {} is stale ({}); taking it over", start_config_.pid_file.string(),
                       holder.detail);
        }
    }

    // Signals are taken synchronously from here on; children start with them unblocked.
    sigprocmask(SIG_BLOCK, &signals_, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    // The scoreboard exists before the first fork, so every child maps the same memory, and
    // it is sized once for two generations of the largest MPM section (generation.hpp).
    const ScoreboardShape shape = scoreboard_shape(start_config_);
    if (const std::size_t bytes = Scoreboard::layout_size(shape.process_slots, shape.thread_slots);
        bytes > kLargeScoreboard) {
        // The price of fitting any section's generation beside any other's: say where it goes.
        log_->warn(
            "the scoreboard takes {} MiB ({} process slots x {} worker slots, for two "
            "generations of any MPM section); lower server_limit and thread_limit of the "
            "sections you never switch to",
            bytes >> 20, shape.process_slots, shape.thread_slots);
    }
    auto scoreboard = Scoreboard::create(shape.process_slots, shape.thread_slots, start_config_.mpm,
                                         start_config_.scoreboard_file);
    if (!scoreboard) {
        return fail(scoreboard.error().message);
    }
    scoreboard_.emplace(std::move(scoreboard.value()));

    // Listeners are bound inside, after every other check and before any module code runs
    // (DESIGN §1); they outlive generations.
    if (!start_first_generation()) {
        return 1;
    }
    scoreboard_->set_generation(1);
    // Written once the master is set up (listeners, module, scoreboard): tools may take
    // it as the sign that the server is there.
    if (!start_config_.pid_file.empty()) {
        if (auto written = pid_file_.write(start_config_.pid_file, getpid()); !written) {
            return fail(written.error().message);
        }
    }
    std::string error;
    if (!current_->mpm->start(error)) {
        shut_down(StopMode::immediate);
        return fail(error);
    }
    log::notice(*log_, "Trident/{} ({} MPM) listening on {} -- resuming normal operations",
                TRIDENT_VERSION, current_->config.mpm, listener_names(current_->listeners));
    notifier_.ready(notifier_.status_text(*scoreboard_, current_->number));

    auto next_maintenance = Clock::now() + kMaintenanceInterval;
    auto next_status = Clock::now() + kStatusInterval;
    auto next_queue_check = Clock::now() + kQueueCheckInterval;
    for (;;) {
        const auto now = Clock::now();
        if (now >= next_maintenance) {
            // On a clock, not on a quiet second: a stream of SIGCHLD must not starve it.
            current_->mpm->maintain();
            tend_draining_generations();
            next_maintenance = now + kMaintenanceInterval;
        } else if (now >= next_queue_check) {
            current_->mpm->answer_queue();
        }
        if (now >= next_queue_check) {
            next_queue_check = now + kQueueCheckInterval;
        }
        if (now >= next_status) {
            send_status();
            next_status = now + kStatusInterval;
        }
        const int sig = wait_signal(
            signals_, std::min({next_maintenance, next_status, next_queue_check}) - Clock::now());
        if (sig != 0) {
            // On any signal, not only SIGCHLD: pending signals come lowest number first, so a
            // SIGHUP or SIGUSR1 is taken before a SIGCHLD that came earlier. Reaped after the
            // restart had begun, a child that crashed just before would count as the old
            // generation's, unlogged.
            reap_children();
        }
        if (sig == SIGTERM || sig == SIGINT) {
            log::notice(*log_, "caught {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            shut_down(StopMode::immediate);
            break;
        } else if (sig == SIGWINCH) {
            log::notice(*log_, "caught SIGWINCH, shutting down gracefully");
            shut_down(StopMode::graceful);
            break;
        } else if (sig == SIGUSR1) {
            log::notice(*log_, "caught SIGUSR1, graceful restart requested");
            restart(StopMode::graceful);
        } else if (sig == SIGHUP) {
            log::notice(*log_, "caught SIGHUP, restart requested");
            restart(StopMode::immediate);
        }
    }
    draining_.clear();
    current_.reset();  // before the modules are unmapped (shut_down closed the listeners)
    log::notice(*log_, "stopped");
    return 0;
}

void Master::restart(StopMode old_generation_stop) {
    const std::uint32_t running = current_->number;
    const std::filesystem::path file = start_config_.file;
    auto keep_serving = [&](const std::string& why) {
        const std::string message = fmt::format(
            "restart failed, generation {} keeps serving with the old configuration: {}", running,
            why);
        log_->error("{}", message);
        echo_to_stderr(current_->config, message);
    };
    auto loaded = load_config(file);
    if (!loaded) {
        keep_serving(loaded.error().message);
        return;
    }
    notifier_.reloading();
    std::vector<std::string> warnings;
    auto built = build_generation(std::move(loaded.value()), running + 1, *scoreboard_, listeners_,
                                  warnings);
    for (const std::string& warning : warnings) {
        log_->warn("{}", warning);
    }
    if (!built) {
        listeners_.rollback();
        keep_serving(built.error().message);
        notifier_.ready(notifier_.status_text(*scoreboard_, running));
        return;
    }
    std::unique_ptr<Generation> next = std::move(built.value());
    if (auto reopened = reopen_generation_logs(*next); !reopened) {
        const std::string message =
            reopened.error().message + "; the error log goes on where it went";
        log_->error("{}", message);
        echo_to_stderr(current_->config, message);
    }

    // Sockets the new config dropped close before the new children fork, so none inherits
    // one, and stop listening though the old children hold copies (they stop accepting now).
    for (const std::string& closed : listeners_.commit(next->listeners)) {
        log_->info("no longer listening on {}", closed);
    }
    std::unique_ptr<Generation> previous = std::move(current_);
    current_ = std::move(next);
    scoreboard_->set_generation(current_->number);
    if (old_generation_stop == StopMode::immediate) {
        scoreboard_->restart_counters();  // SIGHUP: mod_status starts over, as Apache's
    }
    // New children first, then the old ones are told: the listen queues never lack a taker.
    std::string error;
    if (!current_->mpm->start(error)) {
        log_->error("generation {}: {}; maintenance keeps trying", current_->number, error);
    }
    previous->mpm->stop(old_generation_stop);
    Draining finishing{std::move(previous), std::nullopt};
    if (old_generation_stop == StopMode::immediate) {
        finishing.kill_at = Clock::now() + kStopGrace;
    }
    log::notice(*log_, "generation {} ({} MPM) serving on {}; generation {} ({} MPM) {}",
                current_->number, current_->config.mpm, listener_names(current_->listeners),
                running, finishing.generation->config.mpm,
                old_generation_stop == StopMode::graceful ? "finishing its requests" : "stopping");
    draining_.push_back(std::move(finishing));
    reap_children();
    notifier_.ready(notifier_.status_text(*scoreboard_, current_->number));
}

void Master::reap_children() noexcept {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        bool claimed = current_ && current_->mpm->on_child_exit(pid, status);
        for (Draining& old : draining_) {
            claimed = claimed || old.generation->mpm->on_child_exit(pid, status);
        }
        if (!claimed) {
            log_->debug("reaped unknown child pid {}", pid);
        }
    }
    tend_draining_generations();
}

void Master::tend_draining_generations() {
    const auto now = Clock::now();
    std::erase_if(draining_, [&](Draining& old) {
        if (old.generation->mpm->live_children() == 0) {
            log_->info("generation {} ({} MPM) has finished: all its children are gone",
                       old.generation->number, old.generation->config.mpm);
            return true;
        }
        if (old.kill_at && now >= *old.kill_at) {
            log_->warn("generation {}: {} children outlived the stop grace; sending SIGKILL",
                       old.generation->number, old.generation->mpm->live_children());
            old.generation->mpm->kill_all();
            old.kill_at.reset();
        }
        return false;
    });
}

std::size_t Master::live_children() const noexcept {
    std::size_t live = current_ ? current_->mpm->live_children() : 0;
    for (const Draining& old : draining_) {
        live += old.generation->mpm->live_children();
    }
    return live;
}

void Master::stop_all(StopMode mode) noexcept {
    if (current_) {
        current_->mpm->stop(mode);
    }
    for (Draining& old : draining_) {
        // A generation already finishing gracefully needs no second graceful signal.
        if (mode == StopMode::immediate) {
            old.generation->mpm->stop(mode);
        }
    }
}

void Master::kill_all() noexcept {
    if (current_) {
        current_->mpm->kill_all();
    }
    for (Draining& old : draining_) {
        old.generation->mpm->kill_all();
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
    while (live_children() > 0) {
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
            log::notice(*log_, "caught {} during a graceful stop; stopping now",
                        sig == SIGTERM ? "SIGTERM" : "SIGINT");
            escalated = true;
            stop_all(StopMode::immediate);
            const auto grace = Clock::now() + kStopGrace;
            deadline = deadline ? std::min(*deadline, grace) : grace;
        }
        reap_children();
    }
    return true;
}

void Master::shut_down(StopMode mode) {
    if (!current_) {
        return;
    }
    notifier_.stopping();
    stop_all(mode);
    // As Apache's graceful-stop, the ports close now, not when the last child is done:
    // a client arriving meanwhile is refused at once (and a load balancer moves on) instead
    // of queueing for children that no longer accept, to be reset when they exit.
    listeners_.close_all();
    std::optional<Clock::time_point> deadline;
    if (mode == StopMode::immediate) {
        deadline = Clock::now() + kStopGrace;
    } else if (current_->config.timeouts.graceful_shutdown.count() > 0) {
        deadline = Clock::now() + current_->config.timeouts.graceful_shutdown;
    }
    bool escalated = mode == StopMode::immediate;
    if (!wait_children(deadline, escalated)) {
        log_->warn("{} children still running; sending SIGKILL", live_children());
        kill_all();
        if (!wait_children(Clock::now() + kKillWait, escalated)) {
            log_->error("{} children did not exit after SIGKILL", live_children());
        }
    }
}

void Master::send_status() {
    notifier_.status(notifier_.status_text(*scoreboard_, current_->number));
}

}  // namespace

int run_master(const Config& config) {
    try {
        return Master(config).run();
    } catch (const std::exception& e) {
        report_fatal(config, std::string("fatal: ") + e.what());
        return 1;
    }
}

}  // namespace trident
