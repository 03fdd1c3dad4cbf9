#pragma once

#include <vector>

#include "trident/config.hpp"
#include "trident/mpm.hpp"

namespace trident {

/// Apache's ListenBacklog default.
inline constexpr int kDefaultListenBacklog = 511;

/// Binds and listens on every address, non-blocking and close-on-exec. A port-only entry
/// binds the dual-stack "[::]" (or 0.0.0.0 where IPv6 is off). On failure every socket
/// opened so far is closed and the error names the address, e.g.
/// "cannot bind 127.0.0.1:8080: Address already in use".
Result<std::vector<Listener>> bind_listeners(const std::vector<ListenAddress>& addresses,
                                             int backlog = kDefaultListenBacklog);

void close_listeners(std::vector<Listener>& listeners) noexcept;

}  // namespace trident
