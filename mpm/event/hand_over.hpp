#pragma once

// Connections given to the event child's workers by a thread that holds them: the listener
// (a partial request to answer with 408, a response it finished writing, a request that
// waited for a busy worker) or a worker about to block, which passes on the connections it
// had taken but not yet served. Also carries the workers' stop. Its eventfd sits in the
// parked set, level-triggered, so a waiting worker wakes for either.

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>

#include "event/event_connection.hpp"

namespace trident {

class HandOver {
public:
    HandOver() : event_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (!event_.valid()) {
            throw std::system_error(errno, std::generic_category(), "eventfd");
        }
    }
    int fd() const noexcept { return event_.get(); }

    /// Gives each held connection of `conns` to the next worker free.
    void push(std::span<const ConnectionPtr> conns) {
        std::lock_guard lock(mutex_);
        items_.insert(items_.end(), conns.begin(), conns.end());
        signal();
    }
    void push(ConnectionPtr conn) { push(std::span<const ConnectionPtr>(&conn, 1)); }

    /// Every worker sees it: the eventfd stays readable from now on.
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        signal();
    }
    /// Nothing: closed. A null pointer: another worker took what there was.
    std::optional<ConnectionPtr> pop() {
        std::lock_guard lock(mutex_);
        if (closed_) {
            return std::nullopt;
        }
        if (items_.empty()) {
            return ConnectionPtr{};
        }
        ConnectionPtr conn = std::move(items_.front());
        items_.pop_front();
        if (items_.empty()) {
            std::uint64_t count = 0;  // under the lock: a push after this signals afresh
            [[maybe_unused]] const ssize_t n = ::read(event_.get(), &count, sizeof count);
            signalled_ = false;
        }
        return conn;
    }

private:
    void signal() noexcept {
        if (!signalled_) {
            const std::uint64_t one = 1;
            [[maybe_unused]] const ssize_t n = ::write(event_.get(), &one, sizeof one);
            signalled_ = true;
        }
    }

    UniqueFd event_;
    std::mutex mutex_;
    std::deque<ConnectionPtr> items_;
    bool signalled_ = false;
    bool closed_ = false;
};

}  // namespace trident
