#include "process/mpm_directives.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace trident {
namespace {

using Warnings = std::vector<std::string>;

// --- prefork --------------------------------------------------------------------------------

TEST(PreforkDirectiveClamp, DefaultsPassUntouched) {
    Warnings warnings;
    const PreforkConfig clamped = clamp_prefork(PreforkConfig{}, warnings);
    EXPECT_TRUE(warnings.empty());
    EXPECT_EQ(clamped.server_limit, 256u);
    EXPECT_EQ(clamped.max_request_workers, 256u);
    EXPECT_EQ(clamped.start_servers, 5u);
    EXPECT_EQ(clamped.min_spare_servers, 5u);
    EXPECT_EQ(clamped.max_spare_servers, 10u);
}

TEST(PreforkDirectiveClamp, ServerLimitWithinTheHardLimit) {
    PreforkConfig config;
    config.server_limit = 300000;
    config.max_request_workers = 300000;
    Warnings warnings;
    const PreforkConfig clamped = clamp_prefork(config, warnings);
    EXPECT_EQ(clamped.server_limit, 200000u);
    EXPECT_EQ(clamped.max_request_workers, 200000u);
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_EQ(warnings[0],
              "server_limit of 300000 exceeds the compile-time limit of 200000, decreasing to "
              "200000");
    EXPECT_EQ(warnings[1],
              "max_request_workers of 300000 exceeds server_limit of 200000, decreasing to "
              "200000");
}

TEST(PreforkDirectiveClamp, ZeroServerLimitBecomesOneAndPullsTheRestDown) {
    PreforkConfig config;
    config.server_limit = 0;
    Warnings warnings;
    const PreforkConfig clamped = clamp_prefork(config, warnings);
    EXPECT_EQ(clamped.server_limit, 1u);
    EXPECT_EQ(clamped.max_request_workers, 1u);
    EXPECT_EQ(clamped.start_servers, 1u);
    const Warnings expected = {
        "server_limit of 0 not allowed, increasing to 1",
        "max_request_workers of 256 exceeds server_limit of 1, decreasing to 1",
        "start_servers of 5 exceeds max_request_workers of 1, decreasing to 1",
    };
    EXPECT_EQ(warnings, expected);
}

TEST(PreforkDirectiveClamp, MaxRequestWorkersWithinServerLimit) {
    PreforkConfig config;
    config.max_request_workers = 500;
    Warnings warnings;
    EXPECT_EQ(clamp_prefork(config, warnings).max_request_workers, 256u);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0],
              "max_request_workers of 500 exceeds server_limit of 256, decreasing to 256");

    config.max_request_workers = 0;
    warnings.clear();
    EXPECT_EQ(clamp_prefork(config, warnings).max_request_workers, 1u);
    EXPECT_EQ(warnings.front(), "max_request_workers of 0 not allowed, increasing to 1");
}

TEST(PreforkDirectiveClamp, StartServersIntoOneToMaxRequestWorkers) {
    PreforkConfig config;
    config.start_servers = 0;
    Warnings warnings;
    EXPECT_EQ(clamp_prefork(config, warnings).start_servers, 1u);
    EXPECT_EQ(warnings, Warnings{"start_servers of 0 not allowed, increasing to 1"});

    config.start_servers = 300;
    warnings.clear();
    EXPECT_EQ(clamp_prefork(config, warnings).start_servers, 256u);
    EXPECT_EQ(
        warnings,
        Warnings{"start_servers of 300 exceeds max_request_workers of 256, decreasing to 256"});
}

TEST(PreforkDirectiveClamp, SpareServersNeverThrash) {
    PreforkConfig config;
    config.min_spare_servers = 0;
    config.max_spare_servers = 0;
    Warnings warnings;
    PreforkConfig clamped = clamp_prefork(config, warnings);
    EXPECT_EQ(clamped.min_spare_servers, 1u);
    EXPECT_EQ(clamped.max_spare_servers, 2u);
    const Warnings expected = {
        "min_spare_servers of 0 not allowed, increasing to 1",
        "max_spare_servers of 0 is less than min_spare_servers of 1 plus 1, increasing to 2",
    };
    EXPECT_EQ(warnings, expected);

    config.min_spare_servers = 8;
    config.max_spare_servers = 8;
    warnings.clear();
    clamped = clamp_prefork(config, warnings);
    EXPECT_EQ(clamped.max_spare_servers, 9u);
    EXPECT_EQ(warnings.size(), 1u);

    config.max_spare_servers = 9;  // exactly min + 1 is allowed
    warnings.clear();
    EXPECT_EQ(clamp_prefork(config, warnings).max_spare_servers, 9u);
    EXPECT_TRUE(warnings.empty());
}

// --- worker and event -----------------------------------------------------------------------

TEST(ThreadedDirectiveClamp, DefaultsPassUntouched) {
    Warnings warnings;
    const ThreadedMpmConfig worker = clamp_threaded(ThreadedMpmConfig{}, "worker", warnings);
    const EventConfig event = clamp_event(EventConfig{}, warnings);
    EXPECT_TRUE(warnings.empty());
    EXPECT_EQ(worker.max_request_workers, 400u);
    EXPECT_EQ(worker.max_spare_threads, 250u);
    EXPECT_EQ(event.async_request_worker_factor, 2u);
}

TEST(ThreadedDirectiveClamp, HardLimitsDependOnTheMpm) {
    ThreadedMpmConfig config;
    config.server_limit = 30000;
    config.thread_limit = 50000;
    Warnings warnings;
    const ThreadedMpmConfig worker = clamp_threaded(config, "worker", warnings);
    EXPECT_EQ(worker.server_limit, 20000u);
    EXPECT_EQ(worker.thread_limit, 20000u);
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_EQ(warnings[0],
              "server_limit of 30000 exceeds the compile-time limit of 20000, decreasing to 20000");
    EXPECT_EQ(warnings[1],
              "thread_limit of 50000 exceeds the compile-time limit of 20000, decreasing to 20000");

    warnings.clear();
    EXPECT_EQ(clamp_threaded(config, "event", warnings).thread_limit, 50000u);  // event: 100000
    config.thread_limit = 200000;
    warnings.clear();
    EXPECT_EQ(clamp_threaded(config, "event", warnings).thread_limit, 100000u);

    config = ThreadedMpmConfig{};
    config.server_limit = 0;
    config.thread_limit = 0;
    warnings.clear();
    const ThreadedMpmConfig ones = clamp_threaded(config, "worker", warnings);
    EXPECT_EQ(ones.server_limit, 1u);
    EXPECT_EQ(ones.thread_limit, 1u);
    EXPECT_EQ(ones.threads_per_child, 1u);
    EXPECT_EQ(warnings[0], "server_limit of 0 not allowed, increasing to 1");
    EXPECT_EQ(warnings[1], "thread_limit of 0 not allowed, increasing to 1");
    EXPECT_EQ(warnings[2], "threads_per_child of 25 exceeds thread_limit of 1, decreasing to 1");
}

TEST(ThreadedDirectiveClamp, ThreadsPerChildWithinThreadLimit) {
    ThreadedMpmConfig config;
    config.threads_per_child = 100;
    config.max_request_workers = 1600;
    Warnings warnings;
    const ThreadedMpmConfig clamped = clamp_threaded(config, "worker", warnings);
    EXPECT_EQ(clamped.threads_per_child, 64u);
    EXPECT_EQ(warnings.front(),
              "threads_per_child of 100 exceeds thread_limit of 64, decreasing to 64");

    config.threads_per_child = 0;
    config.max_request_workers = 400;
    warnings.clear();
    EXPECT_EQ(clamp_threaded(config, "worker", warnings).threads_per_child, 1u);
    EXPECT_EQ(warnings.front(), "threads_per_child of 0 not allowed, increasing to 1");
}

TEST(ThreadedDirectiveClamp, MaxRequestWorkersAtLeastOneChild) {
    ThreadedMpmConfig config;
    config.max_request_workers = 10;
    Warnings warnings;
    EXPECT_EQ(clamp_threaded(config, "worker", warnings).max_request_workers, 25u);
    EXPECT_EQ(warnings.front(),
              "max_request_workers of 10 is less than threads_per_child of 25, increasing to 25");
}

TEST(ThreadedDirectiveClamp, MaxRequestWorkersRoundedDownToAMultiple) {
    ThreadedMpmConfig config;
    config.max_request_workers = 390;
    Warnings warnings;
    EXPECT_EQ(clamp_threaded(config, "worker", warnings).max_request_workers, 375u);
    EXPECT_EQ(warnings,
              Warnings{"max_request_workers of 390 is not a multiple of threads_per_child of 25, "
                       "decreasing to 375"});
}

TEST(ThreadedDirectiveClamp, MaxRequestWorkersWithinServerLimitChildren) {
    ThreadedMpmConfig config;
    config.max_request_workers = 1010;  // first rounded to 1000, then 40 > 16 children
    Warnings warnings;
    const ThreadedMpmConfig clamped = clamp_threaded(config, "event", warnings);
    EXPECT_EQ(clamped.max_request_workers, 400u);
    const Warnings expected = {
        "max_request_workers of 1010 is not a multiple of threads_per_child of 25, decreasing "
        "to 1000",
        "max_request_workers of 1000 would require 40 processes and exceed server_limit of 16, "
        "decreasing to 400",
    };
    EXPECT_EQ(warnings, expected);
}

TEST(ThreadedDirectiveClamp, StartServersIntoOneToTheProcessLimit) {
    ThreadedMpmConfig config;
    config.start_servers = 0;
    Warnings warnings;
    EXPECT_EQ(clamp_threaded(config, "worker", warnings).start_servers, 1u);
    EXPECT_EQ(warnings, Warnings{"start_servers of 0 not allowed, increasing to 1"});

    config.start_servers = 20;
    config.max_request_workers = 200;  // 8 processes
    warnings.clear();
    EXPECT_EQ(clamp_threaded(config, "worker", warnings).start_servers, 8u);
    EXPECT_EQ(warnings, Warnings{"start_servers of 20 exceeds the 8 processes "
                                 "max_request_workers allows, decreasing to 8"});
}

TEST(ThreadedDirectiveClamp, SpareThreadsLeaveRoomForAChild) {
    ThreadedMpmConfig config;
    config.min_spare_threads = 0;
    config.max_spare_threads = 0;
    Warnings warnings;
    ThreadedMpmConfig clamped = clamp_threaded(config, "worker", warnings);
    EXPECT_EQ(clamped.min_spare_threads, 1u);
    EXPECT_EQ(clamped.max_spare_threads, 27u);
    const Warnings expected = {
        "min_spare_threads of 0 not allowed, increasing to 1",
        "max_spare_threads of 0 is less than min_spare_threads of 1 plus threads_per_child of 25 "
        "plus 1, increasing to 27",
    };
    EXPECT_EQ(warnings, expected);

    config.min_spare_threads = 75;
    config.max_spare_threads = 100;
    warnings.clear();
    EXPECT_EQ(clamp_threaded(config, "event", warnings).max_spare_threads, 101u);
    config.max_spare_threads = 101;
    warnings.clear();
    EXPECT_EQ(clamp_threaded(config, "event", warnings).max_spare_threads, 101u);
    EXPECT_TRUE(warnings.empty());
}

TEST(ThreadedDirectiveClamp, AsyncRequestWorkerFactorAtLeastOne) {
    EventConfig config;
    config.async_request_worker_factor = 0;
    Warnings warnings;
    EXPECT_EQ(clamp_event(config, warnings).async_request_worker_factor, 1u);
    EXPECT_EQ(warnings, Warnings{"async_request_worker_factor of 0 not allowed, increasing to 1"});
}

TEST(MpmDirectiveClamp, OnlyTheSelectedMpmIsClamped) {
    Config config;
    config.mpm = "worker";
    config.prefork.server_limit = 0;
    config.worker.max_request_workers = 390;
    config.event.max_request_workers = 390;
    Warnings warnings;
    clamp_mpm_directives(config, warnings);
    EXPECT_EQ(config.worker.max_request_workers, 375u);
    EXPECT_EQ(config.prefork.server_limit, 0u);
    EXPECT_EQ(config.event.max_request_workers, 390u);
    EXPECT_EQ(warnings.size(), 1u);

    config.mpm = "event";
    warnings.clear();
    clamp_mpm_directives(config, warnings);
    EXPECT_EQ(config.event.max_request_workers, 375u);
    config.mpm = "prefork";
    warnings.clear();
    clamp_mpm_directives(config, warnings);
    EXPECT_EQ(config.prefork.server_limit, 1u);
}

}  // namespace
}  // namespace trident
