#pragma once

// Moves bytes for the HTTP core over one blocking-style connection: poll-based deadlines,
// recv, writev and sendfile. Used by prefork, worker, and the event MPM's worker threads.

#include <atomic>

#include "trident/config.hpp"

namespace trident {

class Router;

/// Serves the accepted, non-blocking socket `fd` until the connection ends, then closes it.
/// When `stopping` becomes true, an idle keep-alive connection is closed at once and a busy
/// one after its current response (graceful stop).
void serve_connection(int fd, const Router& router, const Config& config,
                      const std::atomic<bool>& stopping) noexcept;

}  // namespace trident
