#pragma once

// The symlink policy's check: whether an open file lies below the document root.

#include <string>

namespace trident {

/// Answers, for a descriptor already open, whether the file it names is the root or below
/// it. The check is on the descriptor, not on the name: the kernel's own path of the open
/// file (/proc/self/fd/N), so a link swapped between the check and the read cannot point
/// the read elsewhere. This was chosen over openat() per component with O_NOFOLLOW, which
/// would refuse every symlink, also those that stay inside the root.
class RootGuard {
public:
    /// `root` is resolved to its real path once, here.
    explicit RootGuard(const std::string& root);

    /// False also when the path cannot be read (no /proc): the policy fails closed.
    bool contains(int fd) const noexcept;

private:
    std::string real_root_;  ///< without a trailing slash; "" for "/"
};

}  // namespace trident
