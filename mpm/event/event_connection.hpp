#pragma once

// One connection of an event child, and who holds it.
//
// A connection is registered in the child's parked set once, from the first time it waits
// for its client to its close, edge triggered: every arrival of bytes raises one event,
// whether or not anybody waits. Nobody re-arms anything per request. Instead the
// connection says who has it (`Hold`): parked (waiting for its client, held by nobody), or
// held by one thread (a worker serving it, or the listener finishing a write, lingering,
// or expiring it). An event on a parked connection lets the worker that sees it take it;
// an event on a held one only tells the holder, who looks at the socket once more before
// parking it. So bytes that arrive while a worker is still busy with the connection are
// never left unread, and no two threads ever serve it at once.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>

#include "common/connection_driver.hpp"

namespace trident {

/// Who has a connection (see the top of this file).
enum class Hold : std::uint8_t {
    parked,          ///< waiting for its client; the next event's worker takes it
    held,            ///< one thread has it
    held_and_ready,  ///< one thread has it, and bytes came since: look before parking
};

struct EventConnection {
    /// Takes the socket from `fd` as the driver is built (which cannot fail), so the socket
    /// has exactly one owner whatever throws afterwards. Starts held by its creator.
    EventConnection(boost::asio::io_context& io, UniqueFd& fd, std::uint32_t id,
                    const Router& router, const Config& config, log::AccessLog* access_log,
                    const sockaddr_storage* peer)
        : driver(fd.release(), router, config, access_log, peer), stream(io), id(id) {}
    ~EventConnection() { unwatch(); }

    /// On an event of the parked set: takes a parked connection for the caller. When another
    /// thread has it, tells that thread to look at the socket again, and returns false.
    bool take_on_event() noexcept {
        Hold seen = hold.load(std::memory_order_acquire);
        for (;;) {
            const Hold next = seen == Hold::parked ? Hold::held : Hold::held_and_ready;
            if (seen == Hold::held_and_ready) {
                return false;
            }
            if (hold.compare_exchange_weak(seen, next, std::memory_order_acq_rel)) {
                return seen == Hold::parked;
            }
        }
    }
    /// Takes it only if parked (the listener expiring a wait or letting an idle one go).
    bool take_if_parked() noexcept {
        Hold expected = Hold::parked;
        return hold.compare_exchange_strong(expected, Hold::held, std::memory_order_seq_cst);
    }
    /// The holder lets go of it until its client speaks. False when bytes came while it was
    /// held: the holder keeps it and reads them first. Everything the holder wrote before
    /// is seen by the next taker. Sequentially consistent, for the graceful stop's handshake.
    bool park() noexcept {
        Hold expected = Hold::held;
        if (hold.compare_exchange_strong(expected, Hold::parked, std::memory_order_seq_cst)) {
            return true;
        }
        hold.store(Hold::held, std::memory_order_relaxed);  // was held_and_ready
        return false;
    }

    /// Listener thread: lets the io_context wait on the socket (write completion, lingering).
    void watch() {
        if (!stream.is_open()) {
            stream.assign(driver.fd());
        }
    }
    /// Listener thread (or the last owner): the io_context stops watching the socket.
    /// Deregistering before the driver closes it means a reused descriptor number can never
    /// be mistaken for this one.
    void unwatch() noexcept {
        if (stream.is_open()) {
            boost::system::error_code ignored;
            stream.cancel(ignored);
            stream.release();
        }
    }

    ConnectionDriver driver;  // first: destroyed last, closing the socket
    boost::asio::posix::stream_descriptor stream;
    const std::uint32_t id;  ///< unique in the child: names it in the parked set's events
    std::atomic<Hold> hold{Hold::held};
    /// An event of the parked set said the client has closed its side (EPOLLRDHUP). That
    /// end raises no edge of its own once an event has reported it, so the next holder must
    /// read until it (ConnectionDriver::end_of_stream_pending()), not wait for it.
    std::atomic<bool> end_seen{false};
    /// While parked: when the wait for the client ends (steady clock ticks). Written by the
    /// holder before park(), read by the listener's sweep.
    std::atomic<ConnectionDriver::Clock::rep> deadline{0};
    /// Holder only: parked between two requests, counted in the keep-alive gauge.
    bool idle = false;
    /// Holder only: in the parked set. A worker serves a connection it accepted before
    /// registering it, and registers it only when it first has to wait for its client.
    bool registered = false;

    // The listener thread's own waits (write completion, lingering), on its io_context.
    std::uint32_t wait_id = 0;  ///< names the current wait; handlers of older ones are stale
    bool waiting = false;       ///< such a wait is in place
    ConnectionDriver::Clock::time_point wait_deadline;
    bool lingering = false;
    bool writing = false;
};

using ConnectionPtr = std::shared_ptr<EventConnection>;

}  // namespace trident
