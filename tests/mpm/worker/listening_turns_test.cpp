#include "worker/listening_turns.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace trident {
namespace {

using namespace std::chrono_literals;

/// The turns and the stop flag they watch, shared with threads a failing test may have to
/// leave behind still waiting.
struct Shared {
    std::atomic<bool> stop{false};
    ListeningTurns turns{stop};

    /// Waits (up to 10 s) until `count` threads wait for a turn inside take().
    bool waiting(unsigned count) const {
        for (int i = 0; i < 1000 && turns.waiting() != count; ++i) {
            std::this_thread::sleep_for(10ms);
        }
        return turns.waiting() == count;
    }
};

/// A thread that waits for a turn, and gives it back when told to (or at the end). The
/// test's own thread never waits for a turn, so a failure cannot hang it.
class Waiter {
public:
    explicit Waiter(std::shared_ptr<Shared> shared) : got_(taken_.get_future()) {
        thread_ = std::thread([shared = std::move(shared), taken = std::move(taken_),
                               release = release_.get_future()]() mutable {
            const std::optional<unsigned> turn = shared->turns.take();
            taken.set_value(turn.has_value());
            if (turn) {
                release.wait();
                shared->turns.give_back(*turn);
            }
        });
    }
    ~Waiter() {
        release();
        if (got_.valid() && got_.wait_for(10s) != std::future_status::ready) {
            thread_.detach();  // still waiting: a failure already reported; do not hang
        } else {
            thread_.join();
        }
    }

    /// Whether take() gave a turn (false: the child stopped), or nothing yet after `wait`.
    std::optional<bool> result(std::chrono::milliseconds wait) {
        if (!result_ && got_.wait_for(wait) == std::future_status::ready) {
            result_ = got_.get();
        }
        return result_;
    }

    /// Lets a thread holding a turn give it back.
    void release() {
        if (!released_) {
            released_ = true;
            release_.set_value();
        }
    }

private:
    std::promise<bool> taken_;
    std::future<bool> got_;
    std::optional<bool> result_;
    std::promise<void> release_;
    bool released_ = false;
    std::thread thread_;
};

/// Turns with both taken by the test's own thread, as two listening threads would hold them.
struct BothTaken {
    std::shared_ptr<Shared> shared = std::make_shared<Shared>();
    std::optional<unsigned> first = shared->turns.take();
    std::optional<unsigned> second = shared->turns.take();
};

/// `count` threads waiting for a turn, once every one of them is inside take(); none if
/// they did not get there within 10 s.
std::vector<std::unique_ptr<Waiter>> start_waiting(const std::shared_ptr<Shared>& shared,
                                                   unsigned count) {
    std::vector<std::unique_ptr<Waiter>> waiting;
    for (unsigned i = 0; i < count; ++i) {
        waiting.push_back(std::make_unique<Waiter>(shared));
    }
    if (!shared->waiting(count)) {
        ADD_FAILURE() << "the threads never waited for a turn";
        waiting.clear();
    }
    return waiting;
}

TEST(ListeningTurns, TwoNumberedTurnsAndTheRestWait) {
    BothTaken held;
    ASSERT_TRUE(held.first && held.second);
    const auto& [shared, first, second] = held;
    EXPECT_NE(*first, *second) << "two threads on one epoll instance";
    EXPECT_LT(*first, ListeningTurns::kListeners);
    EXPECT_LT(*second, ListeningTurns::kListeners);

    Waiter third(shared);
    ASSERT_TRUE(shared->waiting(1));
    EXPECT_FALSE(third.result(200ms)) << "a third thread got a turn while two were taken";
    shared->turns.give_back(*first);
    shared->turns.give_back(*second);
    EXPECT_EQ(third.result(10s), std::optional<bool>(true));
}

TEST(ListeningTurns, AWaitingThreadIsWokenWhenTheLastListenerLeaves) {
    BothTaken held;
    ASSERT_TRUE(held.first && held.second);
    const auto& [shared, first, second] = held;
    Waiter waiting(shared);
    ASSERT_TRUE(shared->waiting(1));

    // One listener left on the sockets: a thread finishing its connection takes the free
    // turn with no wake-up, so none is made.
    shared->turns.give_back(*first);
    EXPECT_FALSE(waiting.result(200ms)) << "woken while a listener was still on the sockets";
    Waiter back_from_a_connection(shared);
    EXPECT_EQ(back_from_a_connection.result(10s), std::optional<bool>(true));
    back_from_a_connection.release();

    shared->turns.give_back(*second);  // none left on the sockets: the waiting thread goes
    EXPECT_EQ(waiting.result(10s), std::optional<bool>(true));
}

TEST(ListeningTurns, AStopWakesEveryWaitingThread) {
    BothTaken held;
    ASSERT_TRUE(held.first && held.second);
    const auto& [shared, first, second] = held;
    const auto waiting = start_waiting(shared, 5);
    ASSERT_FALSE(waiting.empty());
    shared->stop = true;
    shared->turns.give_back(*first);  // a listener saw the stop on the sockets
    for (auto& waiter : waiting) {
        EXPECT_EQ(waiter->result(10s), std::optional<bool>(false));
    }
    shared->turns.give_back(*second);
    EXPECT_FALSE(shared->turns.take()) << "a turn after the stop";
}

// The last listener accepts and hands its turn on, and the stop comes before the thread it
// woke has run: that thread must pass the stop on to the others, which no listener is left
// to wake.
TEST(ListeningTurns, AThreadWokenToTakeOverPassesAStopOn) {
    for (int round = 0; round < 20; ++round) {
        BothTaken held;
        ASSERT_TRUE(held.first && held.second);
        const auto& [shared, first, second] = held;
        const auto waiting = start_waiting(shared, 4);
        ASSERT_FALSE(waiting.empty());
        shared->turns.give_back(*first);
        shared->turns.give_back(*second);  // wakes one waiting thread
        shared->stop = true;               // most often before that thread runs
        // The woken thread may have taken the turn before the stop; it gives it back, as a
        // listener that sees the stop on the sockets does.
        for (auto& waiter : waiting) {
            waiter->release();
        }
        for (auto& waiter : waiting) {
            ASSERT_TRUE(waiter->result(10s)) << "round " << round << ": a thread still waits";
        }
    }
}

}  // namespace
}  // namespace trident
