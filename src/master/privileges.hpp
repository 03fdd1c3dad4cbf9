#pragma once

// Who the children run as. The master starts as root to bind ports below 1024 and open its
// logs and pid file; its children then run as `user`/`group`. Resolved in the master, before
// any fork, so a child never asks the name service anything.

#include "trident/config.hpp"
#include "trident/mpm.hpp"

namespace trident {

/// The identity for a generation's children, from `config.user` and `config.group`:
///  - started as root: `user` is required (children never run as root by accident; writing
///    `user: root` says it is meant), `group` defaults to the user's primary group;
///  - started as another user: `user`/`group`, if written, must be that user and group, as
///    only root can switch.
/// An unknown user or group is an error naming it.
Result<ChildIdentity> resolve_child_identity(const Config& config);

}  // namespace trident
