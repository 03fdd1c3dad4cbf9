#include "common/process_mpm.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>

#include "log/error_log.hpp"

namespace trident {

namespace {

std::atomic<bool> g_graceful_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void on_graceful_signal(int) {
    g_graceful_stop.store(true, std::memory_order_relaxed);
}

// A child that dies younger than this is replaced on the next maintenance tick rather than
// at once, so a child that crashes at start-up cannot make the master fork in a hot loop.
constexpr auto kMinHealthyLifetime = std::chrono::seconds(1);

}  // namespace

ProcessMpm::ProcessMpm(const MpmContext& context, std::string_view name,
                       std::uint32_t process_limit)
    : context_(context),
      name_(name),
      log_(log::get("mpm_" + std::string(name))),
      // SIGUSR1 is Apache's graceful signal to children.
      pool_(
          std::max<std::uint32_t>(1, process_limit),
          [this](std::size_t slot) { return child_main(slot); }, on_graceful_signal) {}

const std::atomic<bool>& ProcessMpm::graceful_stop_requested() noexcept {
    return g_graceful_stop;
}

bool ProcessMpm::start(std::string& error) noexcept {
    const std::uint32_t target = target_processes();
    if (target != start_servers()) {
        // Apache clamps these too, rather than run with no child or past its limits.
        log_->warn(
            "{} start_servers {} does not fit server_limit and max_request_workers; "
            "running {} children",
            name_, start_servers(), target);
    }
    for (std::uint32_t i = 0; i < target; ++i) {
        if (pool_.spawn() < 0) {
            error = "cannot fork a " + name_ + " child: " + std::strerror(errno);
            return false;
        }
    }
    log_->info("{} MPM started: {} children, generation {}", name_, pool_.live(),
               context_.generation);
    return true;
}

bool ProcessMpm::on_child_exit(pid_t pid, int wait_status) noexcept {
    const auto exit = pool_.on_exit(pid, wait_status);
    if (!exit) {
        return false;
    }
    if (stopping_) {
        return true;
    }
    if (!exit->exited_cleanly()) {
        log_->error("child pid {} (slot {}) {}; replacing it", pid, exit->slot, exit->describe());
    }
    if ((exit->exited_cleanly() || exit->lifetime >= kMinHealthyLifetime) &&
        pool_.live() < target_processes()) {
        spawn_one();
    }
    return true;
}

void ProcessMpm::maintain() noexcept {
    while (!stopping_ && pool_.live() < target_processes()) {
        if (!spawn_one()) {
            break;
        }
    }
}

void ProcessMpm::stop(StopMode mode) noexcept {
    stopping_ = true;
    pool_.signal_all(mode == StopMode::graceful ? SIGUSR1 : SIGTERM);
}

void ProcessMpm::kill_all() noexcept {
    pool_.signal_all(SIGKILL);
}

bool ProcessMpm::spawn_one() noexcept {
    if (pool_.spawn() < 0) {
        log_->error("cannot fork a {} child: {}", name_, std::strerror(errno));
        return false;
    }
    return true;
}

}  // namespace trident
