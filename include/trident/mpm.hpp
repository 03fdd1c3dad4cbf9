#pragma once

// The contract between the master process and a Multi-Processing Module (MPM).
//
// A module is a shared object `mpm_<name>.so` exporting one C symbol,
// `trident_mpm_module()`, which returns a TridentMpmModule descriptor. The master reads the
// descriptor's first two fields (ABI version and build stamp) before touching anything else,
// so a stale or foreign module is refused with a clear error instead of crashing.
//
// The master owns config, listeners, logs, signals and the pid file; it reaps every child
// and hands each exit to the Mpm that owns it. The Mpm owns its children: forking them (via
// the core's ChildPool), keeping their number right, and telling them to stop. All calls
// come from the master's single thread, never concurrently, and none throws.

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "trident/build_info.hpp"
#include "trident/config.hpp"

/// Bumped whenever TridentMpmModule, MpmContext or Mpm change shape.
#define TRIDENT_MPM_ABI_VERSION 3u

namespace trident {

class Router;
class Scoreboard;
namespace log {
class AccessLog;
}

/// A bound listening socket, shared by every generation.
struct Listener {
    int fd = -1;
    std::string name;  ///< "127.0.0.1:8080", for messages
};

/// Who a generation's children run as, resolved by the master from `user`/`group` before
/// any fork (the name service is never asked in a child).
struct ChildIdentity {
    bool switch_user = false;  ///< false: children keep the master's identity
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  ///< supplementary groups (initgroups' list, from getgrouplist)
    std::string user;           ///< for messages
};

/// What the master hands an MPM for one generation. Everything outlives the Mpm.
struct MpmContext {
    const Config* config = nullptr;
    const ChildIdentity* identity = nullptr;  ///< who the children run as
    std::span<const Listener> listeners;
    const Router* router = nullptr;    ///< the HTTP core's routing for this generation
    Scoreboard* scoreboard = nullptr;  ///< shared memory, created before any fork
    std::uint32_t generation = 0;
    log::AccessLog* access_log = nullptr;  ///< opened before any fork; null when off
};

enum class StopMode : std::uint8_t {
    immediate,  ///< SIGTERM: close connections now
    graceful,   ///< finish in-flight requests, then exit
};

/// One generation of one process model.
class Mpm {
public:
    virtual ~Mpm() = default;

    /// Forks the first children. On failure returns false and fills `error`.
    virtual bool start(std::string& error) noexcept = 0;

    /// The master reaped `pid`; returns true when it was this Mpm's child.
    virtual bool on_child_exit(pid_t pid, int wait_status) noexcept = 0;

    /// Called about once a second: replace lost children, adjust spare capacity.
    virtual void maintain() noexcept = 0;

    /// Called about every 100 ms between maintenance calls: start children at once for
    /// connections that wait in the listen queue while no worker is free.
    virtual void answer_queue() noexcept = 0;

    /// Tells every child to stop; no more children are started afterwards.
    virtual void stop(StopMode mode) noexcept = 0;

    /// Sends SIGKILL to every child still alive (the master's last resort on stop).
    virtual void kill_all() noexcept = 0;

    /// Children still alive (not yet reaped).
    virtual std::size_t live_children() const noexcept = 0;
};

enum MpmTrait : std::uint32_t {
    kMpmThreaded = 1u << 0,        ///< handlers run on several threads of one process
    kMpmAsyncKeepAlive = 1u << 1,  ///< idle keep-alive connections hold no thread
};

}  // namespace trident

extern "C" {

/// The descriptor a module returns. The first two fields never move, whatever the ABI.
struct TridentMpmModule {
    std::uint32_t abi_version;  ///< TRIDENT_MPM_ABI_VERSION the module was built with
    const char* build_stamp;    ///< TRIDENT_BUILD_STAMP of the build that made the module
    const char* name;           ///< "prefork", "worker", "event"
    std::uint32_t traits;       ///< MpmTrait bits
    /// Makes the generation's Mpm; returns nullptr (never throws) when it cannot.
    trident::Mpm* (*create)(const trident::MpmContext* context);
};

using TridentMpmModuleFn = const TridentMpmModule* (*)();

}  // extern "C"

/// The exported symbol's name, as the master looks it up.
#define TRIDENT_MPM_SYMBOL "trident_mpm_module"

/// Defines a module's entry point. Use once per module, at global scope.
#define TRIDENT_MPM_DEFINE_MODULE(mpm_name, mpm_traits, create_fn)                                \
    extern "C" __attribute__((visibility("default"))) const TridentMpmModule*                     \
    trident_mpm_module() {                                                                        \
        static const TridentMpmModule descriptor = {TRIDENT_MPM_ABI_VERSION, TRIDENT_BUILD_STAMP, \
                                                    mpm_name, mpm_traits, create_fn};             \
        return &descriptor;                                                                       \
    }
