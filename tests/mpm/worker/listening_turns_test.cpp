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
};

/// A thread that waits for a turn, and gives it back when told to (or at the end).
class Waiter {
public:
    explicit Waiter(std::shared_ptr<Shared> shared) : got_(taken_.get_future()) {
        thread_ = std::thread([shared = std::move(shared), taken = std::move(taken_),
                               release = release_.get_future()]() mutable {
            const bool got = shared->turns.take();
            taken.set_value(got);
            if (got) {
                release.wait();
                shared->turns.give_back();
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

    /// What take() returned: true (a turn), false (stopped), or nothing yet after `wait`.
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

TEST(ListeningTurns, TwoAtOnceAndTheRestWait) {
    auto shared = std::make_shared<Shared>();
    ASSERT_TRUE(shared->turns.take());
    ASSERT_TRUE(shared->turns.take());
    Waiter third(shared);
    EXPECT_FALSE(third.result(200ms)) << "a third thread got a turn while two were taken";
    shared->turns.give_back();
    shared->turns.give_back();
    EXPECT_EQ(third.result(10s), std::optional<bool>(true));
}

TEST(ListeningTurns, AWaitingThreadIsWokenOnlyWhenTheLastListenerLeaves) {
    auto shared = std::make_shared<Shared>();
    ASSERT_TRUE(shared->turns.take());
    ASSERT_TRUE(shared->turns.take());
    Waiter waiting(shared);
    ASSERT_FALSE(waiting.result(100ms));
    // One listener left on the sockets: a thread finishing its connection would take the
    // free turn with no wake-up, so none is made.
    shared->turns.give_back();
    EXPECT_FALSE(waiting.result(200ms)) << "woken while a listener was still on the sockets";
    // A thread back from its connection takes the free turn itself.
    ASSERT_TRUE(shared->turns.take());
    shared->turns.give_back();
    shared->turns.give_back();  // none left: the waiting thread takes over
    EXPECT_EQ(waiting.result(10s), std::optional<bool>(true));
}

TEST(ListeningTurns, AStopWakesEveryWaitingThread) {
    auto shared = std::make_shared<Shared>();
    ASSERT_TRUE(shared->turns.take());
    ASSERT_TRUE(shared->turns.take());
    std::vector<std::unique_ptr<Waiter>> waiting;
    for (int i = 0; i < 5; ++i) {
        waiting.push_back(std::make_unique<Waiter>(shared));
    }
    shared->stop = true;
    shared->turns.give_back();  // a listener saw the stop on the sockets
    for (auto& waiter : waiting) {
        EXPECT_EQ(waiter->result(10s), std::optional<bool>(false));
    }
    shared->turns.give_back();
    EXPECT_FALSE(shared->turns.take()) << "a turn after the stop";
}

// The last listener accepts and hands its turn on, and the stop comes before the thread it
// woke has run: that thread must pass the stop on to the others, which no listener is left
// to wake.
TEST(ListeningTurns, AThreadWokenToTakeOverPassesAStopOn) {
    for (int round = 0; round < 20; ++round) {
        auto shared = std::make_shared<Shared>();
        ASSERT_TRUE(shared->turns.take());
        ASSERT_TRUE(shared->turns.take());
        std::vector<std::unique_ptr<Waiter>> waiting;
        for (int i = 0; i < 4; ++i) {
            waiting.push_back(std::make_unique<Waiter>(shared));
        }
        std::this_thread::sleep_for(20ms);  // let them wait
        shared->turns.give_back();
        shared->turns.give_back();  // wakes one waiting thread
        shared->stop = true;        // most often before that thread runs
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
