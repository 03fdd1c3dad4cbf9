#pragma once

// `trident -k COMMAND`: apachectl's verbs, carried out by signalling the master that the
// config's pid file names.

#include <optional>
#include <string>

#include "trident/config.hpp"

namespace trident {

enum class ControlCommand { start, stop, restart, graceful, graceful_stop };

/// "start", "stop", "restart", "graceful", "graceful-stop"; nothing for anything else.
std::optional<ControlCommand> parse_control_command(const std::string& word);

/// Checks a config as `-t` does, minus binding: it loads (already done by the caller), its
/// MPM module loads and passes its checks, and the children's user and group resolve.
/// Returns the error, or nothing when the config is fit to start or reload with. The
/// selected MPM's directives are clamped as a start would, and each value raised or lowered
/// is printed to stderr as `trident: warning: …`, worded as the start logs it (Apache's -t
/// prints them too).
std::optional<std::string> check_config(const Config& config);

/// Carries out a command other than start: finds the master through `config.pid_file` and
/// sends it SIGTERM (stop), SIGHUP (restart), SIGUSR1 (graceful) or SIGWINCH
/// (graceful-stop); restart and graceful check the config first and refuse to signal a
/// master with a config that would not load. Prints what it did; returns the exit status.
int send_control_command(ControlCommand command, const Config& config);

}  // namespace trident
