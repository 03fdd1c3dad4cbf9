#include "process/spare_maintenance.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

namespace trident {
namespace {

/// Prefork-shaped limits with room to spare, so only the rule under test decides.
SparePolicy roomy_prefork() {
    SparePolicy policy;
    policy.workers_per_process = 1;
    policy.min_spare = 5;
    policy.max_spare = 10;
    policy.max_request_workers = 1000;
    policy.server_limit = 1000;
    return policy;
}

/// Event-shaped limits: 25 threads a child, 16 children at most.
SparePolicy event_policy() {
    SparePolicy policy;
    policy.workers_per_process = 25;
    policy.min_spare = 75;
    policy.max_spare = 250;
    policy.max_request_workers = 400;
    policy.server_limit = 16;
    return policy;
}

SpareSample sample(std::uint32_t idle, std::uint32_t live, std::uint32_t free_slots,
                   std::uint32_t active = 0, std::uint32_t listen_queue = 0,
                   std::uint32_t finishing = 0) {
    SpareSample s;
    s.idle_workers = idle;
    s.live_processes = live;
    s.free_process_slots = free_slots;
    s.active_workers = active;
    s.listen_queue = listen_queue;
    s.finishing_processes = finishing;
    return s;
}

TEST(SpareMaintenance, SpawnRateDoublesUpTo32) {
    SpareMaintenance maintenance(roomy_prefork());
    std::vector<std::uint32_t> spawned;
    for (int tick = 0; tick < 7; ++tick) {
        const SpareDecision decision = maintenance.tick(sample(0, 10, 990, 10));
        EXPECT_FALSE(decision.retire);
        EXPECT_FALSE(decision.burst);
        EXPECT_EQ(decision.busy, spawned.size() >= 3) << "tick " << tick;  // rate ≥ 8
        spawned.push_back(decision.spawn);
    }
    EXPECT_EQ(spawned, (std::vector<std::uint32_t>{1, 2, 4, 8, 16, 32, 32}));
}

TEST(SpareMaintenance, RateStartsOverWhenATickNeedsNoSpawn) {
    SpareMaintenance maintenance(roomy_prefork());
    EXPECT_EQ(maintenance.tick(sample(2, 10, 990)).spawn, 1u);
    EXPECT_EQ(maintenance.tick(sample(2, 10, 990)).spawn, 2u);
    EXPECT_EQ(maintenance.tick(sample(2, 10, 990)).spawn, 4u);
    const SpareDecision enough = maintenance.tick(sample(5, 10, 990));  // min_spare reached
    EXPECT_EQ(enough.spawn, 0u);
    EXPECT_FALSE(enough.retire);
    EXPECT_EQ(maintenance.spawn_rate(), 1u);
    EXPECT_EQ(maintenance.tick(sample(2, 10, 990)).spawn, 1u);

    maintenance.tick(sample(2, 10, 990));
    maintenance.child_sick();  // a resource shortage also starts over
    EXPECT_EQ(maintenance.tick(sample(2, 10, 990)).spawn, 1u);
}

TEST(SpareMaintenance, HoldOffKeepsTheRateAfterAGracefulRestart) {
    SpareMaintenance maintenance(roomy_prefork());
    maintenance.hold_off(2);
    std::vector<std::uint32_t> spawned;
    for (int tick = 0; tick < 5; ++tick) {
        spawned.push_back(maintenance.tick(sample(0, 10, 990)).spawn);
    }
    EXPECT_EQ(spawned, (std::vector<std::uint32_t>{1, 1, 1, 2, 4}));
}

TEST(SpareMaintenance, RetiresOneProcessWhenTooManyAreIdle) {
    SpareMaintenance maintenance(roomy_prefork());
    maintenance.tick(sample(0, 10, 990));
    maintenance.tick(sample(0, 10, 990));
    const SpareDecision decision = maintenance.tick(sample(11, 20, 980));
    EXPECT_TRUE(decision.retire);
    EXPECT_EQ(decision.spawn, 0u);
    EXPECT_EQ(maintenance.spawn_rate(), 1u);

    EXPECT_FALSE(maintenance.tick(sample(10, 20, 980)).retire);  // max_spare itself is fine
    EXPECT_FALSE(maintenance.tick(sample(11, 1, 999)).retire);   // never the last process
}

TEST(SpareMaintenance, RetiresNoMoreWhileFinishingProcessesCrowdTheSlots) {
    SparePolicy policy = event_policy();  // 16 slots, 16 processes at most
    SpareMaintenance maintenance(policy);
    // 4 live + 2 finishing: 10 slots left, fewer than a whole generation's 16.
    EXPECT_FALSE(maintenance.tick(sample(300, 4, 10, 100, 0, 2)).retire);
    // With nothing finishing, retiring is always allowed.
    EXPECT_TRUE(maintenance.tick(sample(300, 4, 12, 100, 0, 0)).retire);
    policy.server_limit = 40;  // slack for a generation: 40 - 6 = 34 > 16
    SpareMaintenance roomy(policy);
    EXPECT_TRUE(roomy.tick(sample(300, 4, 34, 100, 0, 2)).retire);
}

TEST(SpareMaintenance, NeverSpawnsPastMaxRequestWorkers) {
    SparePolicy policy = roomy_prefork();
    policy.max_request_workers = 10;
    SpareMaintenance maintenance(policy);
    maintenance.tick(sample(0, 1, 999, 1));
    maintenance.tick(sample(0, 2, 998, 2));
    maintenance.tick(sample(0, 4, 996, 4));  // the rate is 8 now
    EXPECT_EQ(maintenance.spawn_rate(), 8u);
    const SpareDecision last = maintenance.tick(sample(0, 7, 993, 7));
    EXPECT_EQ(last.spawn, 3u);  // 10 - 7, not 8
    EXPECT_FALSE(last.reached_max_request_workers);
}

TEST(SpareMaintenance, ReportsReachingMaxRequestWorkersOncePerEpisode) {
    SparePolicy policy = roomy_prefork();
    policy.max_request_workers = 10;
    SpareMaintenance maintenance(policy);
    const SpareDecision first = maintenance.tick(sample(0, 10, 990, 10));
    EXPECT_TRUE(first.reached_max_request_workers);
    EXPECT_EQ(first.spawn, 0u);
    EXPECT_EQ(maintenance.spawn_rate(), 1u);
    for (int tick = 0; tick < 3; ++tick) {
        const SpareDecision again = maintenance.tick(sample(0, 10, 990, 10));
        EXPECT_FALSE(again.reached_max_request_workers) << "tick " << tick;
        EXPECT_EQ(again.spawn, 0u);
    }
    // Near the limit within the same episode: said once as well.
    EXPECT_TRUE(maintenance.tick(sample(2, 10, 990, 10)).near_max_request_workers);
    EXPECT_FALSE(maintenance.tick(sample(2, 10, 990, 10)).near_max_request_workers);
    EXPECT_FALSE(maintenance.tick(sample(0, 10, 990, 10)).reached_max_request_workers);

    maintenance.tick(sample(6, 10, 990, 10));  // enough idle workers: the episode ends
    EXPECT_TRUE(maintenance.tick(sample(0, 10, 990, 10)).reached_max_request_workers);

    // Threads count too: all 400 workers busy in event's 16 processes.
    SpareMaintenance event(event_policy());
    EXPECT_TRUE(event.tick(sample(0, 16, 0, 400)).reached_max_request_workers);
}

TEST(SpareMaintenance, ReportsAFullScoreboardBelowTheLimit) {
    SpareMaintenance maintenance(event_policy());
    // 10 accepting processes (of 16 allowed) but 6 finishing ones hold the other slots.
    const SpareDecision decision = maintenance.tick(sample(0, 10, 0, 250, 0, 6));
    EXPECT_TRUE(decision.scoreboard_full);
    EXPECT_FALSE(decision.reached_max_request_workers);
    EXPECT_EQ(decision.spawn, 0u);
}

TEST(SpareMaintenance, BurstSpawnsForTheWholeListenQueue) {
    SpareMaintenance maintenance(event_policy());
    // 120 queued, nobody idle: 5 processes of 25 threads at once, not the rate's 1.
    const SpareDecision burst = maintenance.tick(sample(0, 2, 14, 50, 120));
    EXPECT_TRUE(burst.burst);
    EXPECT_EQ(burst.spawn, 5u);
    EXPECT_EQ(maintenance.spawn_rate(), 2u);  // the doubling goes on as usual

    // Bounded by the limits: 1000 queued needs 40, only 14 more fit under 16.
    SpareMaintenance bounded(event_policy());
    EXPECT_EQ(bounded.tick(sample(0, 2, 14, 50, 1000)).spawn, 14u);

    // An idle worker means the queue is being drained: the plain rate applies.
    SpareMaintenance draining(event_policy());
    const SpareDecision plain = draining.tick(sample(10, 2, 14, 50, 120));
    EXPECT_FALSE(plain.burst);
    EXPECT_EQ(plain.spawn, 1u);

    // A queue smaller than the rate changes nothing.
    SpareMaintenance prefork(roomy_prefork());
    prefork.tick(sample(0, 10, 990));
    prefork.tick(sample(0, 10, 990));
    const SpareDecision small = prefork.tick(sample(0, 10, 990, 10, 3));
    EXPECT_FALSE(small.burst);
    EXPECT_EQ(small.spawn, 4u);

    // Even with min_spare met (as configured 0 would allow), a queue with no idle worker
    // still spawns.
    SparePolicy no_minimum = roomy_prefork();
    no_minimum.min_spare = 0;
    SpareMaintenance unclamped(no_minimum);
    EXPECT_EQ(unclamped.tick(sample(0, 10, 990, 10, 6)).spawn, 6u);
}

TEST(SpareMaintenance, BetweenTicksABurstIsAnsweredOnTheSecondLook) {
    SpareMaintenance maintenance(event_policy());
    // The first look at a queue with nobody idle only notes it: the connection may have
    // been on its way to an accept().
    EXPECT_EQ(maintenance.between_ticks(sample(0, 2, 14, 50, 120)).spawn, 0u);
    const SpareDecision burst = maintenance.between_ticks(sample(0, 2, 14, 50, 120));
    EXPECT_TRUE(burst.burst);
    EXPECT_EQ(burst.spawn, 5u);
    EXPECT_EQ(maintenance.spawn_rate(), 1u);  // the rate belongs to the ticks
    // What was started counts as idle; were the queue still there with nobody idle, it
    // takes two looks again.
    EXPECT_EQ(maintenance.between_ticks(sample(0, 7, 9, 175, 30)).spawn, 0u);
    EXPECT_EQ(maintenance.between_ticks(sample(0, 7, 9, 175, 30)).spawn, 2u);

    // A look in between that finds the queue empty, or someone idle, starts over.
    SpareMaintenance interrupted(event_policy());
    interrupted.between_ticks(sample(0, 2, 14, 50, 120));
    EXPECT_EQ(interrupted.between_ticks(sample(0, 2, 14, 50, 0)).spawn, 0u);
    EXPECT_EQ(interrupted.between_ticks(sample(0, 2, 14, 50, 120)).spawn, 0u);
    EXPECT_EQ(interrupted.between_ticks(sample(3, 2, 14, 47, 120)).spawn, 0u);
    EXPECT_EQ(interrupted.between_ticks(sample(0, 2, 14, 50, 120)).spawn, 0u);

    // Never past the limits: 1000 queued fit 14 more processes; at the process limit, or
    // with every request worker busy, nothing starts (and nothing is reported: the tick
    // does that).
    SpareMaintenance bounded(event_policy());
    bounded.between_ticks(sample(0, 2, 14, 50, 1000));
    EXPECT_EQ(bounded.between_ticks(sample(0, 2, 14, 50, 1000)).spawn, 14u);
    SpareMaintenance full(event_policy());
    full.between_ticks(sample(0, 16, 0, 400, 1000));
    const SpareDecision none = full.between_ticks(sample(0, 16, 0, 400, 1000));
    EXPECT_EQ(none.spawn, 0u);
    EXPECT_FALSE(none.reached_max_request_workers);
    SpareMaintenance busy(event_policy());
    busy.between_ticks(sample(0, 10, 6, 400, 1000));
    EXPECT_EQ(busy.between_ticks(sample(0, 10, 6, 400, 1000)).spawn, 0u);
}

TEST(SpareMaintenance, PolicyFromConfigs) {
    PreforkConfig prefork;
    const SparePolicy p = SparePolicy::prefork(prefork);
    EXPECT_EQ(p.workers_per_process, 1u);
    EXPECT_EQ(p.min_spare, 5u);
    EXPECT_EQ(p.max_spare, 10u);
    EXPECT_EQ(p.max_processes(), 256u);

    ThreadedMpmConfig worker;
    const SparePolicy w = SparePolicy::threaded(worker);
    EXPECT_EQ(w.workers_per_process, 25u);
    EXPECT_EQ(w.min_spare, 75u);
    EXPECT_EQ(w.max_spare, 250u);
    EXPECT_EQ(w.max_processes(), 16u);  // 400 / 25
    worker.server_limit = 10;
    EXPECT_EQ(SparePolicy::threaded(worker).max_processes(), 10u);
}

TEST(SpareMaintenance, SampleFromAScoreboardTally) {
    ScoreboardTally tally;
    tally.processes = 5;
    tally.quiescing = 2;
    tally.free_process_slots = 11;
    tally.idle = 7;
    tally.starting = 3;
    tally.spare = 6;  // of those 10, 4 are in a child that takes no new connections
    tally.active = 40;
    const SpareSample s = spare_sample(tally, 9);
    EXPECT_EQ(s.idle_workers, 6u);  // spare capacity only, as Apache's idle_thread_count
    EXPECT_EQ(s.live_processes, 3u);
    EXPECT_EQ(s.finishing_processes, 2u);
    EXPECT_EQ(s.free_process_slots, 11u);
    EXPECT_EQ(s.active_workers, 40u);
    EXPECT_EQ(s.listen_queue, 9u);
}

// --- listen_queue_length over real sockets ---------------------------------------------------

int connect_to(const sockaddr_in& address) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/// Polls (bounded, about 2 s) until the queue reads `expected`; returns the last reading.
std::uint32_t wait_for_queue(int listener, std::uint32_t expected) {
    std::uint32_t length = 0;
    for (int i = 0; i < 200; ++i) {
        length = listen_queue_length(listener);
        if (length == expected) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return length;
}

TEST(SpareListenQueue, CountsConnectedButUnacceptedClients) {
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    socklen_t length = sizeof(address);
    ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
    ASSERT_EQ(listen(listener, 16), 0);
    EXPECT_EQ(listen_queue_length(listener), 0u);

    std::vector<int> clients;
    for (int i = 0; i < 3; ++i) {
        const int client = connect_to(address);
        ASSERT_GE(client, 0);
        clients.push_back(client);
    }
    EXPECT_EQ(wait_for_queue(listener, 3), 3u);

    const int accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(accepted, 0);
    EXPECT_EQ(wait_for_queue(listener, 2), 2u);
    EXPECT_EQ(listen_queue_length(accepted), 0u);  // a connected socket has no accept queue
    EXPECT_EQ(listen_queue_length(clients[0]), 0u);

    close(accepted);
    for (const int client : clients) {
        close(client);
    }
    close(listener);
}

TEST(SpareListenQueue, IsZeroForWhatIsNotAListeningSocket) {
    EXPECT_EQ(listen_queue_length(-1), 0u);
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    EXPECT_EQ(listen_queue_length(pipe_fds[0]), 0u);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(udp, 0);
    EXPECT_EQ(listen_queue_length(udp), 0u);
    close(udp);
}

/// A scoreboard of 6 slots x 2 workers with children of generation 2 in slots 0-4 (slot 5
/// free), every worker waiting.
Scoreboard board_of_idle_children() {
    auto created = Scoreboard::create(6, 2, "event");
    EXPECT_TRUE(created) << created.error().message;
    Scoreboard board = std::move(*created);
    for (std::uint32_t slot = 0; slot < 5; ++slot) {
        EXPECT_EQ(board.prepare_process(slot, 2), 0);
        board.process(slot).occupy(pid_t(1000 + slot), 2);
        for (std::uint32_t t = 0; t < 2; ++t) {
            board.worker(slot, t).set_state(WorkerState::waiting);
        }
    }
    return board;
}

TEST(SpareRetire, TakesAnIdleChildInTheHighestSlotFirst) {
    Scoreboard board = board_of_idle_children();
    board.worker(4, 1).set_state(WorkerState::writing);
    EXPECT_EQ(child_to_retire(board, 2, 6, 2), 3u);
    for (std::uint32_t slot = 0; slot < 4; ++slot) {
        board.worker(slot, 0).set_state(WorkerState::reading);
    }
    EXPECT_EQ(child_to_retire(board, 2, 6, 2), 4u) << "no idle child: the highest one";
}

TEST(SpareRetire, PassesOverChildrenWhoseIdleWorkersAreNoSpare) {
    Scoreboard board = board_of_idle_children();
    // Slot 4 belongs to the generation before, slot 3 is finishing already, slot 2 is an
    // event child full of idle keep-alive connections: its workers all wait, but it
    // accepts nobody, so they were never counted as spare.
    board.process(4).vacate();
    board.process(4).occupy(2000, 1);
    board.process(3).set_quiescing(true);
    board.process(2).set_not_accepting(true);
    EXPECT_EQ(child_to_retire(board, 2, 6, 2), 1u);
    board.process(1).set_not_accepting(true);
    board.process(0).set_not_accepting(true);
    EXPECT_EQ(child_to_retire(board, 2, 6, 2), std::nullopt);
    EXPECT_EQ(child_to_retire(board, 2, 2, 2), std::nullopt);
    board.process(0).set_not_accepting(false);
    EXPECT_EQ(child_to_retire(board, 2, 1, 2), 0u) << "only the first `slots` slots count";
}

}  // namespace
}  // namespace trident
