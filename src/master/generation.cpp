#include "master/generation.hpp"

#include <algorithm>

#include "http/router.hpp"
#include "log/access_log.hpp"
#include "log/error_log.hpp"
#include "master/privileges.hpp"
#include "process/mpm_directives.hpp"
#include "status/status_handler.hpp"
#include "trident/scoreboard.hpp"

namespace trident {

namespace {

/// Apache keeps ServerLimit and ThreadLimit across a restart ("not allowed during restart");
/// so does Trident where the scoreboard made at start is too small for the new values. The
/// section is re-clamped afterwards, so max_request_workers and the rest follow.
void fit_to_scoreboard(Config& config, const Scoreboard& scoreboard,
                       std::vector<std::string>& warnings) {
    const std::uint32_t per_generation = std::max(1u, scoreboard.server_limit() / 2);
    const std::uint32_t threads = scoreboard.thread_limit();
    auto hold = [&](std::uint32_t& value, std::uint32_t limit, const char* name) {
        if (value > limit) {
            warnings.push_back(config.mpm + "." + name + " of " + std::to_string(value) +
                               " needs a full restart (the scoreboard made at start holds " +
                               std::to_string(limit) + "); using " + std::to_string(limit));
            value = limit;
        }
    };
    if (config.mpm == "prefork") {
        hold(config.prefork.server_limit, per_generation, "server_limit");
    } else {
        ThreadedMpmConfig& threaded =
            config.mpm == "worker" ? config.worker : static_cast<ThreadedMpmConfig&>(config.event);
        hold(threaded.server_limit, per_generation, "server_limit");
        hold(threaded.thread_limit, threads, "thread_limit");
    }
    clamp_mpm_directives(config, warnings);
}

}  // namespace

Generation::~Generation() {
    mpm.reset();  // explicitly first: it points into everything else here
}

ScoreboardShape scoreboard_shape(const Config& config) {
    // Every section clamped as if selected (warnings dropped: only the selected MPM's are
    // Apache's to report), so a reload may switch to any of them within the same memory.
    std::vector<std::string> ignored;
    const PreforkConfig prefork = clamp_prefork(config.prefork, ignored);
    const ThreadedMpmConfig worker = clamp_threaded(config.worker, "worker", ignored);
    const EventConfig event = clamp_event(config.event, ignored);
    const std::uint32_t largest =
        std::max({prefork.server_limit, worker.server_limit, event.server_limit});
    return ScoreboardShape{2 * largest, std::max({1u, worker.thread_limit, event.thread_limit})};
}

Result<std::unique_ptr<Generation>> build_generation(Config config, std::uint32_t number,
                                                     Scoreboard& scoreboard,
                                                     ListenerRegistry& listeners,
                                                     std::vector<std::string>& warnings) {
    auto generation = std::make_unique<Generation>();
    generation->number = number;
    clamp_mpm_directives(config, warnings);
    fit_to_scoreboard(config, scoreboard, warnings);
    generation->config = std::move(config);
    const Config& cfg = generation->config;

    auto identity = resolve_child_identity(cfg);
    if (!identity) {
        return identity.error();
    }
    generation->identity = std::move(identity.value());

    const auto module_dir = cfg.module_dir.empty() ? default_module_dir() : cfg.module_dir;
    auto module = MpmModule::load(module_dir, cfg.mpm);
    if (!module) {
        return module.error();
    }
    generation->module.emplace(std::move(module.value()));

    try {
        generation->router = std::make_unique<Router>(cfg);
    } catch (const std::exception& e) {
        return Error{std::string("cannot set up request routing: ") + e.what()};
    }
    auto status = status::make_status_handler(cfg, scoreboard);
    if (!status) {
        return status.error();
    }
    generation->router->mount(cfg.status.path, std::move(status.value()));
    auto access_log = log::AccessLog::open(cfg.access_log);
    if (!access_log) {
        return access_log.error();
    }
    generation->access_log = std::move(access_log.value());
    if ((generation->module->descriptor().traits & kMpmThreaded) != 0) {
        for (const Handler* handler : generation->router->handlers()) {
            if (!handler->thread_safe()) {
                return Error{"handler '" + std::string(handler->name()) +
                             "' is not thread-safe and cannot run under the threaded '" + cfg.mpm +
                             "' MPM; use mpm: prefork"};
            }
        }
    }

    // Last, so a config that fails any check above binds nothing.
    auto bound = listeners.acquire(cfg.listen);
    if (!bound) {
        return bound.error();
    }
    generation->listeners = std::move(bound.value());

    generation->context =
        MpmContext{&generation->config,         &generation->identity, generation->listeners,
                   generation->router.get(),    &scoreboard,           number,
                   generation->access_log.get()};
    generation->mpm.reset(generation->module->descriptor().create(&generation->context));
    if (!generation->mpm) {
        return Error{"the " + cfg.mpm + " MPM could not be created"};
    }
    return generation;
}

Result<bool> reopen_generation_logs(const Generation& generation) {
    // Only the error log: the older generations' access logs serve children that are
    // finishing, and opening them again would bring back a file a rotation or the new
    // config left behind.
    return log::configure(generation.config.error_log);
}

}  // namespace trident
