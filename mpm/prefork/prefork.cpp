// The prefork MPM: a pool of single-threaded children, each serving one connection at a
// time from a blocking accept loop over every listener. Isolation first: a crash or a
// non-thread-safe handler affects one connection.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <vector>

#include "common/blocking_driver.hpp"
#include "log/error_log.hpp"
#include "process/child_pool.hpp"
#include "trident/mpm.hpp"

namespace trident {
namespace {

// Set in a child by SIGUSR1 (Apache's graceful signal to children): stop accepting, finish
// the connection in hand at a request boundary, exit.
std::atomic<bool> g_graceful_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void on_graceful_signal(int) {
    g_graceful_stop.store(true, std::memory_order_relaxed);
}

// A child that dies younger than this is replaced on the next maintenance tick rather than
// at once, so a child that crashes at start-up cannot make the master fork in a hot loop.
constexpr auto kMinHealthyLifetime = std::chrono::seconds(1);

class PreforkMpm final : public Mpm {
public:
    explicit PreforkMpm(const MpmContext& context)
        : context_(context),
          settings_(context.config->prefork),
          pool_(std::max<std::uint32_t>(1, settings_.server_limit),
                [this](std::size_t) { return child_main(); }),
          log_(log::get("mpm_prefork")) {}

    bool start(std::string& error) noexcept override {
        if (target_children() != settings_.start_servers) {
            // Apache clamps these too, rather than run with no child at all.
            log_->warn(
                "prefork start_servers {} does not fit (server_limit {}, "
                "max_request_workers {}); running {} children",
                settings_.start_servers, settings_.server_limit, settings_.max_request_workers,
                target_children());
        }
        for (std::uint32_t i = 0; i < target_children(); ++i) {
            if (pool_.spawn() < 0) {
                error = std::string("cannot fork a prefork child: ") + std::strerror(errno);
                return false;
            }
        }
        log_->info("prefork MPM started: {} children, generation {}", pool_.live(),
                   context_.generation);
        return true;
    }

    bool on_child_exit(pid_t pid, int wait_status) noexcept override {
        const auto exit = pool_.on_exit(pid, wait_status);
        if (!exit) {
            return false;
        }
        if (stopping_) {
            return true;
        }
        if (!exit->exited_cleanly()) {
            log_->error("child pid {} (slot {}) {}; replacing it", pid, exit->slot,
                        exit->describe());
        }
        if (exit->exited_cleanly() || exit->lifetime >= kMinHealthyLifetime) {
            spawn_one();
        }
        return true;
    }

    void maintain() noexcept override {
        while (!stopping_ && pool_.live() < target_children()) {
            if (!spawn_one()) {
                break;
            }
        }
    }

    void stop(StopMode mode) noexcept override {
        stopping_ = true;
        pool_.signal_all(mode == StopMode::graceful ? SIGUSR1 : SIGTERM);
    }

    void kill_all() noexcept override { pool_.signal_all(SIGKILL); }

    std::size_t live_children() const noexcept override { return pool_.live(); }

private:
    std::uint32_t target_children() const noexcept {
        // Spare-server maintenance (min/max_spare_servers) comes later; until then the pool
        // holds start_servers children, within the hard limits.
        const std::uint32_t limit = std::max<std::uint32_t>(
            1, std::min(settings_.max_request_workers, std::uint32_t(pool_.capacity())));
        return std::clamp<std::uint32_t>(settings_.start_servers, 1, limit);
    }

    bool spawn_one() noexcept {
        if (pool_.spawn() < 0) {
            log_->error("cannot fork a prefork child: {}", std::strerror(errno));
            return false;
        }
        return true;
    }

    /// The child's whole life: accept, serve one connection, repeat.
    int child_main() noexcept {
        struct sigaction graceful {};
        graceful.sa_handler = on_graceful_signal;
        sigemptyset(&graceful.sa_mask);
        sigaction(SIGUSR1, &graceful, nullptr);  // no SA_RESTART: poll must wake up

        std::vector<pollfd> fds;
        for (const Listener& listener : context_.listeners) {
            fds.push_back(pollfd{listener.fd, POLLIN, 0});
        }
        const Config& config = *context_.config;
        const std::uint64_t max_connections = settings_.max_connections_per_child;
        std::uint64_t connections = 0;

        while (!g_graceful_stop.load(std::memory_order_relaxed)) {
            const int ready = ::poll(fds.data(), fds.size(), 1000);
            if (ready <= 0) {
                continue;  // timeout or EINTR: look at the stop flag again
            }
            for (const pollfd& pfd : fds) {
                if ((pfd.revents & POLLIN) == 0) {
                    continue;
                }
                // Every child polls every listener; the losers of the race get EAGAIN.
                const int client =
                    ::accept4(pfd.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (client < 0) {
                    if (errno == EMFILE || errno == ENFILE) {
                        log_->error("accept: {}", std::strerror(errno));
                        ::usleep(10'000);  // let descriptors free up instead of spinning
                    }
                    continue;  // EAGAIN, ECONNABORTED, EINTR: someone else's or gone
                }
                const int one = 1;
                ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                serve_connection(client, *context_.router, config, g_graceful_stop);
                if (max_connections != 0 && ++connections >= max_connections) {
                    return 0;  // recycled; the master starts a fresh child
                }
                break;  // back to poll, so no listener is starved
            }
        }
        return 0;
    }

    MpmContext context_;
    PreforkConfig settings_;
    ChildPool pool_;
    std::shared_ptr<spdlog::logger> log_;
    bool stopping_ = false;
};

Mpm* create_prefork(const MpmContext* context) {
    try {
        return new PreforkMpm(*context);
    } catch (...) {
        return nullptr;
    }
}

}  // namespace
}  // namespace trident

TRIDENT_MPM_DEFINE_MODULE("prefork", 0, trident::create_prefork)
