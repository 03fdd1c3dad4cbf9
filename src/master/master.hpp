#pragma once

#include "trident/config.hpp"

namespace trident {

/// Runs the master process in the foreground until SIGTERM/SIGINT (or SIGWINCH, a
/// graceful stop): binds, loads the MPM, starts it, supervises it. Returns the exit status.
int run_master(const Config& config);

}  // namespace trident
