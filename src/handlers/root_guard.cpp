#include "handlers/root_guard.hpp"

#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace trident {

RootGuard::RootGuard(const std::string& root) {
    const std::unique_ptr<char, decltype(&std::free)> real(::realpath(root.c_str(), nullptr),
                                                           &std::free);
    real_root_ = real ? real.get() : root;
    while (!real_root_.empty() && real_root_.back() == '/') {
        real_root_.pop_back();
    }
}

bool RootGuard::contains(int fd) const noexcept {
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    char target[PATH_MAX];
    const ssize_t n = ::readlink(link, target, sizeof target);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof target) {
        return false;
    }
    const std::string_view path(target, static_cast<std::size_t>(n));
    if (!path.starts_with(real_root_)) {
        return false;
    }
    // "/srv/www" must not admit "/srv/www-private".
    return path.size() == real_root_.size() || path[real_root_.size()] == '/';
}

}  // namespace trident
