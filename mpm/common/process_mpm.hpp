#pragma once

// The master-side half every process-based MPM shares: it forks the generation's children
// through ChildPool, replaces the ones that die, and tells them to stop. An MPM derives from
// it and supplies what runs inside a child and how many children to keep.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "process/child_pool.hpp"
#include "trident/mpm.hpp"

namespace spdlog {
class logger;
}

namespace trident {

class ProcessMpm : public Mpm {
public:
    /// `process_limit` bounds the children alive at once (server_limit).
    ProcessMpm(const MpmContext& context, std::string_view name, std::uint32_t process_limit);

    bool start(std::string& error) noexcept override;
    bool on_child_exit(pid_t pid, int wait_status) noexcept override;
    void maintain() noexcept override;
    void stop(StopMode mode) noexcept override;
    void kill_all() noexcept override;
    std::size_t live_children() const noexcept override { return pool_.live(); }

protected:
    /// How many children the generation keeps running now.
    virtual std::uint32_t target_processes() const noexcept = 0;

    /// The configured start_servers, for the warning when the limits change it.
    virtual std::uint32_t start_servers() const noexcept = 0;

    /// A child's whole life, after prepare_child_process(); returns its exit status.
    virtual int child_main(std::size_t slot) noexcept = 0;

    /// In a child: set once the master asked for a graceful stop (SIGUSR1). Stop accepting,
    /// finish the connections in hand at a request boundary, exit.
    static const std::atomic<bool>& graceful_stop_requested() noexcept;

    const MpmContext& context() const noexcept { return context_; }
    const Config& config() const noexcept { return *context_.config; }
    spdlog::logger& log() const noexcept { return *log_; }
    std::size_t process_capacity() const noexcept { return pool_.capacity(); }

private:
    bool spawn_one() noexcept;

    MpmContext context_;
    std::string name_;
    std::shared_ptr<spdlog::logger> log_;
    ChildPool pool_;
    bool stopping_ = false;
};

}  // namespace trident
