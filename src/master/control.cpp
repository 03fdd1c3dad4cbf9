#include "master/control.hpp"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "master/module_loader.hpp"
#include "master/pid_file.hpp"
#include "master/privileges.hpp"
#include "process/mpm_directives.hpp"

namespace trident {

std::optional<ControlCommand> parse_control_command(const std::string& word) {
    if (word == "start") {
        return ControlCommand::start;
    }
    if (word == "stop") {
        return ControlCommand::stop;
    }
    if (word == "restart") {
        return ControlCommand::restart;
    }
    if (word == "graceful") {
        return ControlCommand::graceful;
    }
    if (word == "graceful-stop") {
        return ControlCommand::graceful_stop;
    }
    return std::nullopt;
}

std::optional<std::string> check_config(const Config& config) {
    Config clamped = config;
    std::vector<std::string> warnings;
    clamp_mpm_directives(clamped, warnings);
    for (const std::string& warning : warnings) {
        std::fprintf(stderr, "trident: warning: %s\n", warning.c_str());
    }
    const auto dir = config.module_dir.empty() ? default_module_dir() : config.module_dir;
    if (auto module = MpmModule::load(dir, config.mpm); !module) {
        return module.error().message;
    }
    if (auto identity = resolve_child_identity(config); !identity) {
        return identity.error().message;
    }
    return std::nullopt;
}

int send_control_command(ControlCommand command, const Config& config) {
    if (config.pid_file.empty()) {
        std::fprintf(stderr,
                     "trident: %s sets no pid_file, so the running master cannot be found\n",
                     config.file.c_str());
        return 1;
    }
    const PidFileStatus master = inspect_pid_file(config.pid_file);
    switch (master.state) {
        case PidFileStatus::State::running:
            break;
        case PidFileStatus::State::absent:
            std::fprintf(stderr, "trident: not running (no pid file %s)\n",
                         config.pid_file.c_str());
            return 1;
        case PidFileStatus::State::stale:
            std::fprintf(stderr, "trident: not running (stale pid file %s: %s)\n",
                         config.pid_file.c_str(), master.detail.c_str());
            return 1;
        case PidFileStatus::State::unreadable:
            std::fprintf(stderr, "trident: %s\n", master.detail.c_str());
            return 1;
    }
    int sig = SIGTERM;
    const char* what = "stop";
    switch (command) {
        case ControlCommand::start:
            return 1;  // handled by the caller: it runs the master
        case ControlCommand::stop:
            break;
        case ControlCommand::restart:
            sig = SIGHUP;
            what = "restart";
            break;
        case ControlCommand::graceful:
            sig = SIGUSR1;
            what = "graceful restart";
            break;
        case ControlCommand::graceful_stop:
            sig = SIGWINCH;
            what = "graceful stop";
            break;
    }
    if (sig == SIGHUP || sig == SIGUSR1) {
        // apachectl's rule: a config that does not pass the test is never signalled in.
        if (auto error = check_config(config)) {
            std::fprintf(stderr, "%s\ntrident: not signalling pid %d: the config has errors\n",
                         error->c_str(), int(master.pid));
            return 1;
        }
    }
    if (::kill(master.pid, sig) != 0) {
        std::fprintf(stderr, "trident: cannot signal pid %d: %s\n", int(master.pid),
                     std::strerror(errno));
        return 1;
    }
    std::printf("trident: %s requested (%s sent to pid %d)\n", what, strsignal(sig),
                int(master.pid));
    return 0;
}

}  // namespace trident
