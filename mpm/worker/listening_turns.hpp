#pragma once

// How a worker child's idle threads share the listening sockets (used by worker.cpp).

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace trident {

/// Which of a child's idle threads wait on the listening sockets: at most `kListeners` at
/// once; the others wait here. The kernel wakes a sleeping waiter for each new connection,
/// even when a thread about to finish its connection would take it a moment later: with all
/// 25 threads of a child on the sockets, `ab -c200` cost a context switch per connection,
/// with a few a fifth of one (and about 5 µs less CPU per connection).
///
/// A thread that finishes a connection takes a free turn with no wake-up. A thread waiting
/// here is woken only when the last listening thread accepts, so a child with an idle
/// thread always has one on the sockets; and when the child stops.
class ListeningTurns {
public:
    static constexpr unsigned kListeners = 2;

    explicit ListeningTurns(const std::atomic<bool>& stop) noexcept : stop_(stop) {}

    /// Waits for a turn on the sockets; false once the child stops.
    bool take() {
        std::unique_lock lock(mutex_);
        ++waiting_;
        // No timeout: whoever holds a turn sees a stop within a second on the sockets and
        // gives the turn back, which wakes everyone here.
        freed_.wait(lock, [&] { return listening_ < kListeners || stopping(); });
        --waiting_;
        if (stopping()) {
            // This thread may have been woken to take over the sockets just before the stop:
            // pass the wake-up on, or the threads still waiting would wait for ever.
            lock.unlock();
            freed_.notify_all();
            return false;
        }
        ++listening_;
        return true;
    }

    /// Gives the turn back (the thread accepted, or stops). Hands it on to a thread waiting
    /// here when no other thread is left on the sockets, or to all of them on a stop.
    void give_back() {
        std::unique_lock lock(mutex_);
        --listening_;
        const bool hand_on = listening_ == 0 && waiting_ > 0;
        lock.unlock();
        if (stopping()) {
            freed_.notify_all();
        } else if (hand_on) {
            freed_.notify_one();
        }
    }

private:
    bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }

    const std::atomic<bool>& stop_;
    std::mutex mutex_;
    std::condition_variable freed_;
    unsigned listening_ = 0;  ///< threads holding a turn
    unsigned waiting_ = 0;    ///< idle threads waiting for one
};

}  // namespace trident
