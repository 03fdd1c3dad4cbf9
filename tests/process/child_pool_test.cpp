#include "process/child_pool.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <thread>

namespace trident {
namespace {

/// Waits (bounded: 30 s, for a loaded machine) for one child of this process and returns
/// its pid and status.
std::pair<pid_t, int> reap_one() {
    for (int i = 0; i < 3000; ++i) {
        int status = 0;
        const pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            return {pid, status};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return {-1, 0};
}

TEST(ChildPool, SpawnsIntoSlotsAndReapsWithExitStatus) {
    ChildPool pool(2, [](std::size_t slot) { return int(slot) + 3; });
    const pid_t a = pool.spawn();
    const pid_t b = pool.spawn();
    ASSERT_GT(a, 0);
    ASSERT_GT(b, 0);
    EXPECT_EQ(pool.live(), 2u);
    EXPECT_EQ(pool.spawn(), -1);  // both slots taken
    EXPECT_EQ(errno, EAGAIN);

    for (int i = 0; i < 2; ++i) {
        const auto [pid, status] = reap_one();
        ASSERT_GT(pid, 0);
        const auto exit = pool.on_exit(pid, status);
        ASSERT_TRUE(exit.has_value());
        EXPECT_EQ(exit->pid, pid);
        EXPECT_EQ(WEXITSTATUS(status), int(exit->slot) + 3);  // the child ran in its slot
        EXPECT_FALSE(exit->exited_cleanly());
        EXPECT_EQ(exit->describe(), "exited with status " + std::to_string(exit->slot + 3));
    }
    EXPECT_EQ(pool.live(), 0u);
    EXPECT_FALSE(pool.on_exit(a, 0).has_value());  // already reaped: not ours any more
}

TEST(ChildPool, SignalAllReachesEveryChildAndSlotsAreReused) {
    ChildPool pool(3, [](std::size_t) {
        pause();  // until a signal ends us
        return 0;
    });
    for (int i = 0; i < 3; ++i) {
        ASSERT_GT(pool.spawn(), 0);
    }
    EXPECT_EQ(pool.pids().size(), 3u);
    pool.signal_all(SIGKILL);
    for (int i = 0; i < 3; ++i) {
        const auto [pid, status] = reap_one();
        ASSERT_GT(pid, 0);
        const auto exit = pool.on_exit(pid, status);
        ASSERT_TRUE(exit.has_value());
        EXPECT_TRUE(WIFSIGNALED(exit->wait_status));
        EXPECT_NE(exit->describe().find("killed by signal 9"), std::string::npos);
    }
    EXPECT_EQ(pool.live(), 0u);
    const pid_t again = pool.spawn();  // a freed slot takes a new child
    ASSERT_GT(again, 0);
    pool.signal_all(SIGKILL);
    const auto [pid, status] = reap_one();
    EXPECT_EQ(pid, again);
    EXPECT_TRUE(pool.on_exit(pid, status).has_value());
}

TEST(ChildPool, ChildStartsWithSignalsUnblocked) {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigset_t old;
    sigprocmask(SIG_BLOCK, &block, &old);  // as the master does
    ChildPool pool(1, [](std::size_t) {
        sigset_t now;
        sigprocmask(SIG_BLOCK, nullptr, &now);
        return sigismember(&now, SIGTERM) ? 1 : 0;
    });
    ASSERT_GT(pool.spawn(), 0);
    sigprocmask(SIG_SETMASK, &old, nullptr);
    const auto [pid, status] = reap_one();
    ASSERT_GT(pid, 0);
    const auto exit = pool.on_exit(pid, status);
    ASSERT_TRUE(exit.has_value());
    EXPECT_TRUE(exit->exited_cleanly()) << exit->describe();
}

std::atomic<bool> g_child_saw_graceful{false};
extern "C" void note_graceful(int) {
    g_child_saw_graceful.store(true);
}

TEST(ChildPool, GracefulSignalSentRightAfterForkReachesTheHandler) {
    // The master blocks SIGUSR1; a graceful stop sent before the child has set itself up
    // stays pending and must land in the handler, not kill the child.
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigset_t old;
    sigprocmask(SIG_BLOCK, &block, &old);
    ChildPool pool(
        1,
        [](std::size_t) {
            // The signal may come before or after set-up; either way the handler gets it
            // (waited for up to 10 s, for a loaded machine).
            for (int i = 0; i < 1000 && !g_child_saw_graceful.load(); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            return g_child_saw_graceful.load() ? 0 : 3;
        },
        note_graceful);
    const pid_t pid = pool.spawn();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGUSR1), 0);
    sigprocmask(SIG_SETMASK, &old, nullptr);
    const auto [reaped, status] = reap_one();
    ASSERT_EQ(reaped, pid);
    const auto exit = pool.on_exit(reaped, status);
    ASSERT_TRUE(exit.has_value());
    EXPECT_TRUE(exit->exited_cleanly()) << exit->describe();
}

TEST(ChildPool, SpawnIntoTakesTheSlotAskedFor) {
    ChildPool pool(4, [](std::size_t slot) { return int(slot); });
    const pid_t pid = pool.spawn_into(2);
    ASSERT_GT(pid, 0);
    EXPECT_EQ(pool.pid_at(2), pid);
    EXPECT_EQ(pool.pid_at(0), 0);
    EXPECT_EQ(pool.spawn_into(2), -1);  // taken
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(pool.spawn_into(4), -1);  // no such slot
    const auto [reaped, status] = reap_one();
    ASSERT_EQ(reaped, pid);
    EXPECT_EQ(WEXITSTATUS(status), 2);  // it ran in slot 2
    ASSERT_TRUE(pool.on_exit(pid, status));
}

TEST(ChildPool, KeepingTheMastersIdentityChangesNothing) {
    std::string error;
    EXPECT_TRUE(become_child_identity(ChildIdentity{}, getppid(), error)) << error;
    EXPECT_TRUE(error.empty());
}

using Backoff = RespawnBackoff;
constexpr auto kYoung = std::chrono::milliseconds(100);

// --- apply_cpu_scheduling, each case in a child of its own, as a child of the pool would be

/// Runs `body` in a forked child; its exit status, or -1 if it did not exit normally.
int in_child(const std::function<int()>& body) {
    const pid_t pid = fork();
    if (pid == 0) {
        _exit(body());
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

int own_policy() {
    return sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
}

TEST(CpuScheduling, BatchReplacesTheNormalPolicyKeepsNiceAndIsInherited) {
    if (own_policy() != SCHED_OTHER) {
        GTEST_SKIP() << "the tests do not run under SCHED_OTHER";
    }
    const int status = in_child([] {
        if (setpriority(PRIO_PROCESS, 0, 5) != 0) {
            return 10;
        }
        std::string error;
        if (!apply_cpu_scheduling("batch", error)) {
            return 1;
        }
        if (own_policy() != SCHED_BATCH) {
            return 2;
        }
        if (getpriority(PRIO_PROCESS, 0) != 5) {
            return 3;
        }
        int thread_policy = -1;
        std::thread([&] { thread_policy = own_policy(); }).join();
        return thread_policy == SCHED_BATCH ? 0 : 4;
    });
    // 1: refused, 2: not batch, 3: nice lost, 4: a new thread did not inherit it.
    EXPECT_EQ(status, 0);
}

TEST(CpuScheduling, InheritChangesNothing) {
    const int status = in_child([] {
        const int before = own_policy();
        std::string error;
        return apply_cpu_scheduling("inherit", error) && own_policy() == before ? 0 : 1;
    });
    EXPECT_EQ(status, 0);
}

TEST(CpuScheduling, BatchKeepsAPolicyChosenOutside) {
    // SCHED_IDLE, as systemd's CPUSchedulingPolicy=idle or chrt --idle sets it: kept.
    const int status = in_child([] {
        const sched_param param{};
        if (sched_setscheduler(0, SCHED_IDLE, &param) != 0) {
            return 10;
        }
        std::string error;
        if (!apply_cpu_scheduling("batch", error)) {
            return 1;
        }
        return own_policy() == SCHED_IDLE ? 0 : 2;
    });
    EXPECT_EQ(status, 0);  // 1: it tried and was refused, 2: it replaced SCHED_IDLE
}

TEST(RespawnBackoff, YoungCrashesBelowTheThresholdAreReplacedAtOnce) {
    Backoff backoff;
    const auto now = Backoff::Clock::now();
    for (int i = 1; i < Backoff::kCrashLoopThreshold; ++i) {
        const auto verdict = backoff.on_exit(false, kYoung, now);
        EXPECT_TRUE(verdict.respawn_now);
        EXPECT_FALSE(verdict.episode_started);
        EXPECT_EQ(verdict.crashes_in_a_row, i);
    }
    EXPECT_FALSE(backoff.in_crash_loop());
}

TEST(RespawnBackoff, ACleanOrOldDeathIsNoCrashLoop) {
    Backoff backoff;
    const auto now = Backoff::Clock::now();
    for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(backoff.on_exit(true, kYoung, now).respawn_now);  // recycled young
        EXPECT_TRUE(backoff.on_exit(false, std::chrono::seconds(5), now).respawn_now);
    }
    EXPECT_FALSE(backoff.in_crash_loop());
}

TEST(RespawnBackoff, ACrashLoopDoublesTheWaitUpToTheCapAndStartsOneProbe) {
    Backoff backoff;
    auto now = Backoff::Clock::now();
    Backoff::Verdict verdict;
    for (int i = 0; i < Backoff::kCrashLoopThreshold; ++i) {
        verdict = backoff.on_exit(false, kYoung, now);
    }
    EXPECT_FALSE(verdict.respawn_now);
    EXPECT_TRUE(verdict.episode_started);
    EXPECT_EQ(verdict.delay, Backoff::kFirstDelay);
    EXPECT_TRUE(backoff.in_crash_loop());
    EXPECT_FALSE(backoff.may_spawn(now));
    EXPECT_FALSE(backoff.may_spawn(now + Backoff::kFirstDelay / 2));

    Backoff::Clock::duration expected = Backoff::kFirstDelay;
    for (int round = 0; round < 8; ++round) {
        now += verdict.delay;
        ASSERT_TRUE(backoff.may_spawn(now)) << "round " << round;
        backoff.on_spawn(now);
        EXPECT_FALSE(backoff.may_spawn(now)) << "a second child while the probe runs";
        now += kYoung;
        verdict = backoff.on_exit(false, kYoung, now);
        EXPECT_FALSE(verdict.episode_started) << "logged once per episode";
        EXPECT_FALSE(verdict.respawn_now);
        expected = std::min<Backoff::Clock::duration>(2 * expected, Backoff::kMaxDelay);
        EXPECT_EQ(verdict.delay, expected) << "round " << round;
    }
    EXPECT_EQ(verdict.delay, Backoff::kMaxDelay);
}

TEST(RespawnBackoff, AProbeThatLivesEndsTheEpisode) {
    Backoff backoff;
    auto now = Backoff::Clock::now();
    Backoff::Verdict verdict;
    for (int i = 0; i < Backoff::kCrashLoopThreshold; ++i) {
        verdict = backoff.on_exit(false, kYoung, now);
    }
    now += verdict.delay;
    backoff.on_spawn(now);
    EXPECT_FALSE(backoff.check_recovered(now + Backoff::kYoungDeath / 2));
    EXPECT_TRUE(backoff.check_recovered(now + Backoff::kYoungDeath));
    EXPECT_FALSE(backoff.in_crash_loop());
    EXPECT_TRUE(backoff.may_spawn(now + Backoff::kYoungDeath));
    // A new episode needs the threshold again, and is logged again.
    for (int i = 1; i < Backoff::kCrashLoopThreshold; ++i) {
        EXPECT_TRUE(backoff.on_exit(false, kYoung, now).respawn_now);
    }
    EXPECT_TRUE(backoff.on_exit(false, kYoung, now).episode_started);
}

}  // namespace
}  // namespace trident
