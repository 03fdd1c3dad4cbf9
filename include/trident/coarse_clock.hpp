#pragma once

// Clock readings to the kernel's tick (a few milliseconds), taken without reading the clock
// hardware (CLOCK_*_COARSE): for times read on every request that need no finer grain.

#include <time.h>

#include <chrono>

namespace trident {

namespace coarse_clock_detail {
template <typename Clock>
typename Clock::time_point read(clockid_t id) noexcept {
    timespec now{};
    if (::clock_gettime(id, &now) != 0) {
        return Clock::now();  // a kernel without the coarse clocks (before 2.6.32)
    }
    return typename Clock::time_point(std::chrono::duration_cast<typename Clock::duration>(
        std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec)));
}
}  // namespace coarse_clock_detail

/// The time of day to the tick.
inline std::chrono::system_clock::time_point coarse_wall_now() noexcept {
    return coarse_clock_detail::read<std::chrono::system_clock>(CLOCK_REALTIME_COARSE);
}

/// steady_clock's time to the tick: CLOCK_MONOTONIC_COARSE counts from the same origin as
/// CLOCK_MONOTONIC, which is libstdc++'s steady_clock, so the two compare.
inline std::chrono::steady_clock::time_point coarse_steady_now() noexcept {
    return coarse_clock_detail::read<std::chrono::steady_clock>(CLOCK_MONOTONIC_COARSE);
}

}  // namespace trident
