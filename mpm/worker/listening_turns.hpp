#pragma once

// How a worker child's idle threads share the listening sockets (used by worker.cpp).

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

namespace trident {

/// Which of a child's idle threads wait on the listening sockets: at most `kListeners` at
/// once, each on the epoll instance of its numbered turn; the others wait here. The kernel
/// wakes a sleeping waiter for each new connection, even when a thread about to finish its
/// connection would take it a moment later: with all 25 threads of a child on the sockets,
/// `ab -c200` cost a context switch per connection, with two a fifth of one.
///
/// A thread that finishes a connection takes a free turn with no wake-up. A thread waiting
/// here is woken when the last listening thread leaves the sockets, so one is back on them
/// within a scheduling delay; and when the child stops.
class ListeningTurns {
public:
    static constexpr unsigned kListeners = 2;

    explicit ListeningTurns(const std::atomic<bool>& stop) noexcept : stop_(stop) {}

    /// Waits for a turn on the sockets: its number, below kListeners, or nothing once the
    /// child stops.
    std::optional<unsigned> take() noexcept {
        std::unique_lock lock(mutex_);
        ++waiting_;
        // No timeout. A thread holding a turn sees a stop within a second on the sockets
        // and gives the turn back, which wakes everyone here; a thread woken to take over
        // from the last one passes the stop on itself (below).
        freed_.wait(lock, [&] { return listening_ < kListeners || stopping(); });
        --waiting_;
        if (stopping()) {
            // This thread may have been woken to take over the sockets just before the stop:
            // pass the wake-up on, or the threads still waiting would wait for ever.
            lock.unlock();
            freed_.notify_all();
            return std::nullopt;
        }
        unsigned turn = 0;
        while (taken_[turn]) {
            ++turn;  // one is free: fewer than kListeners are taken
        }
        taken_[turn] = true;
        ++listening_;
        return turn;
    }

    /// Gives turn `turn` back (the thread accepted, or stops). Hands it on to a thread
    /// waiting here when no other thread is left on the sockets, or to all of them on a
    /// stop.
    void give_back(unsigned turn) noexcept {
        std::unique_lock lock(mutex_);
        taken_[turn] = false;
        --listening_;
        const bool hand_on = listening_ == 0 && waiting_ > 0;
        lock.unlock();
        if (stopping()) {
            freed_.notify_all();
        } else if (hand_on) {
            freed_.notify_one();
        }
    }

    /// Threads waiting for a turn now (for tests).
    unsigned waiting() const noexcept {
        std::lock_guard lock(mutex_);
        return waiting_;
    }

private:
    bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }

    const std::atomic<bool>& stop_;
    mutable std::mutex mutex_;
    std::condition_variable freed_;
    std::array<bool, kListeners> taken_{};
    unsigned listening_ = 0;  ///< turns taken
    unsigned waiting_ = 0;    ///< idle threads waiting for one
};

}  // namespace trident
