#pragma once

// A generation: everything the master derives from one reading of the config, alive from
// the start or reload that made it until its last child is gone. A graceful restart builds
// the next generation from the re-read file while the previous one drains; with `mpm:`
// changed, the two run different modules side by side on the same listening sockets.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "log/access_log.hpp"
#include "master/listeners.hpp"
#include "master/module_loader.hpp"
#include "trident/config.hpp"
#include "trident/mpm.hpp"

namespace trident {

class Router;
class Scoreboard;

/// Member order is destruction order reversed: the Mpm goes first, then what it points to,
/// and the module is unmapped last.
struct Generation {
    Generation() = default;
    Generation(const Generation&) = delete;
    Generation& operator=(const Generation&) = delete;
    ~Generation();

    std::uint32_t number = 0;
    Config config;  ///< as read, with the MPM's directives clamped
    ChildIdentity identity;
    std::optional<MpmModule> module;
    std::unique_ptr<Router> router;
    std::vector<Listener> listeners;  ///< the registry's sockets; the registry closes them
    /// Opened by the master before the generation forks, so children write to it whatever
    /// user they become; a graceful restart opens the file afresh (logrotate).
    std::unique_ptr<log::AccessLog> access_log;
    MpmContext context;
    std::unique_ptr<Mpm> mpm;
};

/// The scoreboard's shape for the master's whole life: process slots for two generations
/// of whichever MPM section is the largest (a graceful restart drains one while the next one
/// grows, even across an MPM switch), and the largest thread_limit.
struct ScoreboardShape {
    std::uint32_t process_slots = 0;
    std::uint32_t thread_slots = 0;
};
ScoreboardShape scoreboard_shape(const Config& config);

/// Validates `config` the way a start does and builds generation `number` from it: MPM
/// directives clamped (warnings appended to `warnings`) and held within the scoreboard,
/// the children's identity, the MPM module, the router, the thread-safety check, and last
/// the listening sockets from `listeners` (new ones bound, not yet committed). Nothing is
/// forked. On error nothing of it is left behind except sockets `listeners` must roll back.
Result<std::unique_ptr<Generation>> build_generation(Config config, std::uint32_t number,
                                                     Scoreboard& scoreboard,
                                                     ListenerRegistry& listeners,
                                                     std::vector<std::string>& warnings);

/// Points the error log at the new generation's path afresh, so a restart after logrotate
/// writes to the new file. Its access log needs nothing: build_generation() opened it.
Result<bool> reopen_generation_logs(const Generation& generation);

}  // namespace trident
