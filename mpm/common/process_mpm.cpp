#include "common/process_mpm.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <thread>

#include "log/error_log.hpp"
#include "trident/scoreboard.hpp"

namespace trident {

namespace {

std::atomic<bool> g_graceful_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void on_graceful_signal(int) {
    g_graceful_stop.store(true, std::memory_order_relaxed);
}

}  // namespace

ProcessMpm::ProcessMpm(const MpmContext& context, std::string_view name, const SparePolicy& policy)
    : context_(context),
      name_(name),
      log_(log::get("mpm_" + std::string(name))),
      spare_(policy),
      max_children_(std::max<std::uint32_t>(
          1, std::min(policy.server_limit, context.scoreboard->server_limit()))),
      // One pool slot per scoreboard slot, so a child's slot is the same in both; SIGUSR1 is
      // Apache's graceful signal to children.
      pool_(
          context.scoreboard->server_limit(),
          [this](std::size_t slot) { return run_child(std::uint32_t(slot)); }, on_graceful_signal,
          context.identity) {}

int ProcessMpm::run_child(std::uint32_t slot) noexcept {
    scoreboard().drop_file_descriptor();  // a child has no business resizing the file
    std::string error;
    if (batch_scheduling_ && !apply_cpu_scheduling("batch", error)) {
        log().warn("child pid {} keeps its CPU scheduling policy: {}", getpid(), error);
    }
    return child_main(slot);
}

bool ProcessMpm::batch_scheduling_allowed() noexcept {
    // Tried on a short-lived thread of the master's, so that the master keeps its policy and
    // a refusal (a seccomp filter, a security module) is said once per generation rather
    // than by every child.
    std::string error;
    bool allowed = true;
    try {
        std::thread([&] { allowed = apply_cpu_scheduling("batch", error); }).join();
    } catch (const std::exception&) {
        return true;  // no thread to try it on: each child tries for itself
    }
    if (!allowed) {
        log().warn("cpu_scheduling: batch is refused ({}); the children keep their policy", error);
    }
    return allowed;
}

const std::atomic<bool>& ProcessMpm::graceful_stop_requested() noexcept {
    return g_graceful_stop;
}

bool ProcessMpm::start(std::string& error) noexcept {
    batch_scheduling_ = config().cpu_scheduling == "batch" && batch_scheduling_allowed();
    if (context_.generation > 1) {
        // Apache's hold_off_on_exponential_spawning: while the previous generation drains, its
        // clients arrive here a few at a time; the burst rule still answers a real queue.
        spare_.hold_off(SpareMaintenance::kGracefulHoldOff);
    }
    for (std::uint32_t i = 0; i < start_servers(); ++i) {
        if (!spawn_one()) {
            error = "cannot start a " + name_ + " child: " + std::strerror(errno);
            return false;
        }
    }
    log::notice(*log_, "{} MPM started: {} children, generation {}", name_, pool_.live(),
                context_.generation);
    return true;
}

bool ProcessMpm::on_child_exit(pid_t pid, int wait_status) noexcept {
    const auto exit = pool_.on_exit(pid, wait_status);
    if (!exit) {
        return false;
    }
    const auto slot = std::uint32_t(exit->slot);
    const bool retired = scoreboard().process(slot).quiescing();
    scoreboard().vacate_process(slot);
    if (stopping_) {
        // Asked to go, so not wanted back. A crash on the way out is still a crash; the
        // SIGTERM or SIGKILL that ends a stop is not.
        const int signal = WIFSIGNALED(exit->wait_status) ? WTERMSIG(exit->wait_status) : 0;
        if (!exit->exited_cleanly() && signal != SIGTERM && signal != SIGKILL) {
            log_->error("child pid {} (slot {}, generation {}, stopping) {}", exit->pid, exit->slot,
                        context_.generation, exit->describe());
        }
        return true;
    }
    if (!exit->exited_cleanly()) {
        log_->error("child pid {} (slot {}, generation {}) {}", exit->pid, exit->slot,
                    context_.generation, exit->describe());
    }
    if (!retired) {
        replace_after_exit(*exit);
    }
    return true;
}

void ProcessMpm::replace_after_exit(const ChildExit& exit) noexcept {
    const auto now = std::chrono::steady_clock::now();
    const RespawnBackoff::Verdict verdict =
        backoff_.on_exit(exit.exited_cleanly(), exit.lifetime, now);
    if (verdict.episode_started) {
        // Once per episode: the next deaths of the episode are logged above, the backoff not.
        log_->error(
            "{} children of generation {} keep dying at start-up ({} in a row); respawning "
            "one at a time with backoff, next in {} ms",
            name_, context_.generation, verdict.crashes_in_a_row,
            std::chrono::duration_cast<std::chrono::milliseconds>(verdict.delay).count());
    }
    // A recycled or crashed child is replaced at once, so capacity does not dip for a
    // second; during a crash loop the backoff decides, and maintenance spawns the probe.
    if (verdict.respawn_now) {
        spawn_one();
    }
}

void ProcessMpm::maintain() noexcept {
    if (stopping_) {
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (backoff_.check_recovered(now)) {
        log_->info("{} children of generation {} start normally again; respawn backoff over", name_,
                   context_.generation);
    }
    const bool crash_loop = backoff_.in_crash_loop();
    if (crash_loop && !backoff_.may_spawn(now)) {
        return;  // nothing to decide before the next probe may start
    }
    const ScoreboardTally tally = scoreboard().tally(context_.generation);
    const std::uint32_t queued = listen_queue();
    const SpareSample sample = spare_sample(tally, queued);
    SpareDecision decision = spare_.tick(sample);
    if (crash_loop) {
        // One probe, and the spawn rate back to 1 (Apache's child_sick) for when it lives.
        spare_.child_sick();
        decision.spawn = std::min<std::uint32_t>(decision.spawn, 1);
        decision.busy = decision.burst = false;
    }
    if (decision.reached_max_request_workers) {
        log_->error("server reached max_request_workers ({}); consider raising it",
                    spare_.policy().max_request_workers);
    }
    if (decision.near_max_request_workers) {
        log_->error("server is within min_spare of max_request_workers ({}); consider raising it",
                    spare_.policy().max_request_workers);
    }
    if (decision.scoreboard_full) {
        log_->warn("scoreboard is full, not at max_request_workers; consider raising server_limit");
    }
    carry_out_spawn(decision, sample);
    if (decision.retire) {
        retire_one();
    }
}

void ProcessMpm::answer_queue() noexcept {
    // Reading the queue is one getsockopt a listener; the scoreboard is read only when
    // connections wait.
    const std::uint32_t queued = stopping_ || backoff_.in_crash_loop() ? 0 : listen_queue();
    const ScoreboardTally tally =
        queued > 0 ? scoreboard().tally(context_.generation) : ScoreboardTally{};
    const SpareSample sample = spare_sample(tally, queued);
    carry_out_spawn(spare_.between_ticks(sample), sample);
}

void ProcessMpm::carry_out_spawn(const SpareDecision& decision,
                                 const SpareSample& sample) noexcept {
    if (decision.busy || decision.burst) {
        // The figures the decision was made on: idle workers of children that accept.
        log_->info(
            "server seems busy ({} idle workers, {} queued connections): starting {} "
            "children",
            sample.idle_workers, sample.listen_queue, decision.spawn);
    }
    for (std::uint32_t i = 0; i < decision.spawn; ++i) {
        if (!spawn_one()) {
            break;
        }
    }
}

void ProcessMpm::stop(StopMode mode) noexcept {
    stopping_ = true;
    // Marked first, so the scoreboard counts them as finishing (not accepting) at once.
    for (std::size_t slot = 0; slot < pool_.capacity(); ++slot) {
        if (pool_.pid_at(slot) != 0) {
            scoreboard().process(std::uint32_t(slot)).set_quiescing(true);
        }
    }
    pool_.signal_all(mode == StopMode::graceful ? SIGUSR1 : SIGTERM);
}

void ProcessMpm::kill_all() noexcept {
    pool_.signal_all(SIGKILL);
}

std::optional<std::uint32_t> ProcessMpm::free_slot() const noexcept {
    for (std::uint32_t slot = 0; slot < pool_.capacity(); ++slot) {
        if (pool_.pid_at(slot) == 0 && scoreboard().process(slot).pid() == 0) {
            return slot;
        }
    }
    return std::nullopt;
}

bool ProcessMpm::spawn_one() noexcept {
    const auto now = std::chrono::steady_clock::now();
    if (pool_.live() >= max_children_ || !backoff_.may_spawn(now)) {
        errno = EAGAIN;
        return false;
    }
    const std::optional<std::uint32_t> slot = free_slot();
    if (!slot) {
        errno = EAGAIN;
        return false;
    }
    if (const int error = scoreboard().prepare_process(*slot, spare_.policy().workers_per_process);
        error != 0) {
        // Tried again on every maintenance tick: said once until a process starts again.
        if (!scoreboard_full_reported_) {
            log_->error("cannot start a {} child: no room in the scoreboard file for slot {}: {}",
                        name_, *slot, std::strerror(error));
            scoreboard_full_reported_ = true;
        }
        errno = error;
        return false;
    }
    scoreboard_full_reported_ = false;
    const pid_t pid = pool_.spawn_into(*slot);
    if (pid < 0) {
        const int saved = errno;
        scoreboard().vacate_process(*slot);
        log_->error("cannot fork a {} child: {}", name_, std::strerror(saved));
        errno = saved;
        return false;
    }
    scoreboard().process(*slot).occupy(pid, context_.generation);
    backoff_.on_spawn(now);
    return true;
}

void ProcessMpm::retire_one() noexcept {
    const std::optional<std::uint32_t> chosen =
        child_to_retire(scoreboard(), context_.generation, std::uint32_t(pool_.capacity()),
                        spare_.policy().workers_per_process);
    if (!chosen || pool_.pid_at(*chosen) == 0) {
        return;
    }
    scoreboard().process(*chosen).set_quiescing(true);
    ::kill(pool_.pid_at(*chosen), SIGUSR1);
}

std::uint32_t ProcessMpm::listen_queue() const noexcept {
    std::uint32_t queued = 0;
    for (const Listener& listener : context_.listeners) {
        queued += listen_queue_length(listener.fd);
    }
    return queued;
}

}  // namespace trident
