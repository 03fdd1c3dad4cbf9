#pragma once

// Hands accepted connections from a child's accepting thread to its worker threads. It
// also counts idle workers, so the accepting thread takes a connection off the listen
// queue only when a worker is free to serve it (Apache worker's queue_info idler count):
// connections never wait inside a busy child while another child sits idle.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

namespace trident {

template <typename T>
class WorkQueue {
public:
    /// Blocks until a worker is idle and not already spoken for by a queued item, or `stop`
    /// is set (checked at least once a second). Returns false on stop.
    bool wait_for_idle_worker(const std::atomic<bool>& stop) {
        std::unique_lock lock(mutex_);
        while (idle_ <= items_.size()) {
            if (stop.load(std::memory_order_relaxed)) {
                return false;
            }
            idle_changed_.wait_for(lock, std::chrono::seconds(1));
        }
        return !stop.load(std::memory_order_relaxed);
    }

    void push(T item) {
        {
            std::lock_guard lock(mutex_);
            items_.push_back(std::move(item));
        }
        item_ready_.notify_one();
    }

    /// Queues every item of `items` (left empty) under one lock, then wakes as many idle
    /// workers as there are items. An event loop hands over a whole round of ready
    /// connections this way, so the first worker woken does not preempt it mid-round.
    void push_all(std::vector<T>& items) {
        std::size_t wake = 0;
        {
            std::lock_guard lock(mutex_);
            for (T& item : items) {
                items_.push_back(std::move(item));
            }
            wake = std::min(items.size(), idle_);
        }
        items.clear();
        // None idle: every worker is busy, and each takes the next item as it finishes.
        for (std::size_t i = 0; i < wake; ++i) {
            item_ready_.notify_one();
        }
    }

    /// A worker's wait for its next item. Returns nullopt once closed and drained: queued
    /// items are always handed out, even after close().
    std::optional<T> pop() {
        std::unique_lock lock(mutex_);
        ++idle_;
        idle_changed_.notify_all();
        item_ready_.wait(lock, [&] { return !items_.empty() || closed_; });
        --idle_;
        if (items_.empty()) {
            return std::nullopt;
        }
        T item = std::move(items_.front());
        items_.pop_front();
        return item;
    }

    /// No more items will come; idle workers return from pop() once the queue is empty.
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        item_ready_.notify_all();
    }

    /// Blocks until at least `count` workers wait for items, or `timeout` passes; false then.
    bool wait_for_idle_workers(std::size_t count, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return idle_changed_.wait_for(lock, timeout, [&] { return idle_ >= count; });
    }

    std::size_t idle_workers() const {
        std::lock_guard lock(mutex_);
        return idle_;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable item_ready_;
    std::condition_variable idle_changed_;
    std::deque<T> items_;
    std::size_t idle_ = 0;
    bool closed_ = false;
};

}  // namespace trident
