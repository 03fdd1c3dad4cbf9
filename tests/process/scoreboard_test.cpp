#include "trident/scoreboard.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace trident {
namespace {

namespace fs = std::filesystem;

/// A fresh directory under the system's temporary folder, removed afterwards.
class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "trident-scoreboard-XXXXXX").string();
        if (mkdtemp(pattern.data()) != nullptr) {
            path_ = pattern;
        }
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

std::string read_bytes(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& file, const std::string& bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

TEST(Scoreboard, CreateAndAttachRoundTripThroughAFile) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path file = dir.path() / "scoreboard";
    {
        auto created = Scoreboard::create(4, 3, "event", file);
        ASSERT_TRUE(created) << created.error().message;
        Scoreboard& board = *created;
        EXPECT_FALSE(board.read_only());
        EXPECT_EQ(fs::file_size(file), Scoreboard::layout_size(4, 3));

        board.set_generation(7);
        EXPECT_FALSE(board.process(1).workers_ready());  // built when a process takes the slot
        ASSERT_EQ(board.prepare_process(1, 0), 0);  // no worker starting: the test sets the states
        EXPECT_TRUE(board.process(1).workers_ready());
        board.process(1).occupy(4242, 7);
        board.process(1).add_connections(ConnectionGauge::keep_alive, 2);
        WorkerSlot& worker = board.worker(1, 2);
        worker.set_state(WorkerState::writing);
        worker.set_text("192.0.2.7", "GET /index.html HTTP/1.1");
        worker.count_request(512, std::chrono::system_clock::now());

        auto attached = Scoreboard::attach(file);
        ASSERT_TRUE(attached) << attached.error().message;
        const Scoreboard& view = *attached;
        EXPECT_TRUE(view.read_only());
        EXPECT_EQ(view.server_limit(), 4u);
        EXPECT_EQ(view.thread_limit(), 3u);
        EXPECT_EQ(view.mpm(), "event");
        EXPECT_EQ(view.generation(), 7u);
        EXPECT_EQ(view.start_time(), board.start_time());
        EXPECT_EQ(view.process(1).pid(), 4242);
        EXPECT_EQ(view.process(1).generation(), 7u);
        EXPECT_EQ(view.process(1).connections(ConnectionGauge::keep_alive), 2u);
        EXPECT_EQ(view.worker(1, 2).state(), WorkerState::writing);
        EXPECT_EQ(view.worker(1, 2).accesses(), 1u);
        EXPECT_EQ(view.worker(1, 2).bytes(), 512u);
        EXPECT_EQ(view.worker(1, 2).text().client, "192.0.2.7");
        EXPECT_EQ(view.worker(1, 2).text().request, "GET /index.html HTTP/1.1");
        EXPECT_FALSE(view.process(0).workers_ready());  // never used: shown as open slots

        // The read-only mapping sees later writes as they happen.
        worker.set_state(WorkerState::keep_alive);
        EXPECT_EQ(view.worker(1, 2).state(), WorkerState::keep_alive);
        EXPECT_EQ(view.status_line(), ".....K......");
    }
    EXPECT_FALSE(fs::exists(file));  // the creator removes its file
}

TEST(Scoreboard, IsSharedWithAForkedChild) {
    auto created = Scoreboard::create(2, 2, "worker");
    ASSERT_TRUE(created) << created.error().message;
    Scoreboard& board = *created;

    ASSERT_EQ(board.prepare_process(1, 2), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        board.process(1).set_quiescing(true);
        board.process(1).add_connections(ConnectionGauge::total, 3);
        WorkerSlot& worker = board.worker(1, 1);
        worker.set_state(WorkerState::reading);
        worker.set_text("2001:db8::1", "POST /form HTTP/1.1");
        worker.count_connection();
        worker.count_request(100, std::chrono::system_clock::now(), std::chrono::microseconds(700));
        worker.count_request(23, std::chrono::system_clock::now(), std::chrono::microseconds(300));
        _exit(0);
    }
    board.process(1).occupy(child, 3);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    EXPECT_TRUE(board.process(1).quiescing());
    EXPECT_EQ(board.process(1).connections(), 3u);
    const WorkerSlot& worker = board.worker(1, 1);
    EXPECT_EQ(worker.state(), WorkerState::reading);
    EXPECT_EQ(worker.text().client, "2001:db8::1");
    EXPECT_EQ(worker.text().request, "POST /form HTTP/1.1");
    EXPECT_EQ(worker.connections(), 1u);
    EXPECT_EQ(worker.accesses(), 2u);
    EXPECT_EQ(worker.bytes(), 123u);
    EXPECT_EQ(worker.duration_us(), 1000u);
    EXPECT_EQ(board.tally().duration_us, 1000u);
    EXPECT_GT(worker.last_used(), board.start_time() - std::chrono::seconds(1));

    // Reaping frees the slot; the cumulative counters stay, as Apache's access_count does.
    board.vacate_process(1);
    EXPECT_EQ(board.process(1).pid(), 0);
    EXPECT_FALSE(board.process(1).quiescing());
    EXPECT_EQ(board.process(1).connections(), 0u);
    EXPECT_EQ(worker.state(), WorkerState::open);
    EXPECT_EQ(worker.text().request, "");
    EXPECT_EQ(worker.accesses(), 2u);
}

TEST(Scoreboard, TallyAndStatusLine) {
    auto created = Scoreboard::create(4, 2, "worker");
    ASSERT_TRUE(created) << created.error().message;
    Scoreboard& board = *created;
    EXPECT_EQ(board.status_line(), "........");

    ASSERT_EQ(board.prepare_process(0, 2), 0);
    ASSERT_EQ(board.prepare_process(1, 2), 0);
    board.process(0).occupy(100, 1);  // accepting: one idle, one writing
    board.worker(0, 0).set_state(WorkerState::waiting);
    board.worker(0, 1).set_state(WorkerState::writing);
    board.process(0).add_connections(ConnectionGauge::total, 1);
    board.process(1).occupy(101, 1);  // finishing: neither idle nor busy for mod_status
    board.process(1).set_quiescing(true);
    board.worker(1, 0).set_state(WorkerState::graceful);
    board.worker(1, 1).set_state(WorkerState::keep_alive);
    board.process(2).occupy(102, 2);  // the next generation, starting
    ASSERT_EQ(board.prepare_process(2, 2), 0);
    board.worker(2, 1).set_state(WorkerState::reading);
    board.worker(2, 1).count_request(10, std::chrono::system_clock::now());

    EXPECT_EQ(board.status_line(), "_WGKSR..");

    const ScoreboardTally all = board.tally();
    EXPECT_EQ(all.processes, 3u);
    EXPECT_EQ(all.quiescing, 1u);
    EXPECT_EQ(all.free_process_slots, 1u);
    EXPECT_EQ(all.idle, 1u);
    EXPECT_EQ(all.starting, 1u);
    EXPECT_EQ(all.spare, 2u);   // the idle one and the starting one
    EXPECT_EQ(all.busy, 2u);    // W and R; G and K are in a finishing process
    EXPECT_EQ(all.active, 4u);  // _ W K R
    EXPECT_EQ(all.keep_alive, 1u);
    EXPECT_EQ(all.graceful, 0u);  // a part of busy: not in a finishing process either
    EXPECT_EQ(all.accesses, 1u);
    EXPECT_EQ(all.bytes, 10u);
    EXPECT_EQ(all.connections, 1u);

    const ScoreboardTally first = board.tally(1);
    EXPECT_EQ(first.processes, 2u);
    EXPECT_EQ(first.starting, 0u);
    EXPECT_EQ(first.active, 3u);
    EXPECT_EQ(first.free_process_slots, 1u);  // free slots are counted whatever the filter
    const ScoreboardTally second = board.tally(2);
    EXPECT_EQ(second.processes, 1u);
    EXPECT_EQ(second.starting, 1u);
    EXPECT_EQ(second.busy, 1u);
    board.worker(2, 0).set_state(WorkerState::graceful);  // a thread of a running child ends
    EXPECT_EQ(board.tally(2).graceful, 1u);
    EXPECT_EQ(board.tally(2).busy, 2u);
    board.worker(2, 0).set_state(WorkerState::starting);

    // A child at its connection limit keeps idle threads for mod_status, but offers no
    // spare capacity to spare maintenance.
    board.process(0).set_not_accepting(true);
    const ScoreboardTally full = board.tally();
    EXPECT_EQ(full.idle, 1u);
    EXPECT_EQ(full.spare, 1u);  // only the starting one of the other child
    board.process(0).vacate();
    EXPECT_FALSE(board.process(0).not_accepting());
}

TEST(Scoreboard, ReaderNeverSeesATornString) {
    auto created = Scoreboard::create(1, 1, "prefork");
    ASSERT_TRUE(created) << created.error().message;
    ASSERT_EQ(created->prepare_process(0, 1), 0);
    WorkerSlot& slot = created->worker(0, 0);
    // Two texts of different lengths and bytes: any mix of them is detectable.
    const std::string client_a(63, 'a');
    const std::string request_a(127, 'A');
    const std::string client_b = "b";
    const std::string request_b = "GET /b HTTP/1.1";
    slot.set_text(client_a, request_a);

    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (int i = 0; i < 5'000'000 && !done.load(std::memory_order_relaxed); ++i) {
            if (i % 2 == 0) {
                slot.set_text(client_b, request_b);
            } else {
                slot.set_text(client_a, request_a);
            }
        }
    });
    int torn = 0;
    int consistent = 0;
    for (int i = 0; i < 100'000; ++i) {
        const WorkerText text = slot.text();
        if (text.client.empty() && text.request.empty()) {
            continue;  // gave up under contention: allowed, never torn
        }
        const bool is_a = text.client == client_a && text.request == request_a;
        const bool is_b = text.client == client_b && text.request == request_b;
        if (is_a || is_b) {
            ++consistent;
        } else {
            ++torn;
        }
    }
    done.store(true);
    writer.join();
    EXPECT_EQ(torn, 0) << consistent << " consistent reads";
    // Under contention a reader may give up (an empty text); once writes stop it must see
    // the last text whole. (How many reads succeed concurrently depends on the scheduler.)
    const WorkerText last = slot.text();
    const bool is_a = last.client == client_a && last.request == request_a;
    const bool is_b = last.client == client_b && last.request == request_b;
    EXPECT_TRUE(is_a || is_b) << "'" << last.client << "' '" << last.request << "'";
}

TEST(Scoreboard, LongTextIsCutNotOverflowed) {
    auto created = Scoreboard::create(1, 2, "event");
    ASSERT_TRUE(created) << created.error().message;
    ASSERT_EQ(created->prepare_process(0, 2), 0);
    WorkerSlot& slot = created->worker(0, 0);
    slot.set_client(std::string(500, 'c'));
    slot.set_request("GET /" + std::string(500, 'x'));
    EXPECT_EQ(slot.text().client, std::string(WorkerSlot::kClientTextSize - 1, 'c'));
    EXPECT_EQ(slot.text().request.size(), WorkerSlot::kRequestTextSize - 1);
    EXPECT_EQ(created->worker(0, 1).text().request, "");  // the neighbour is untouched
}

// Texts are written word by word, skipping words that hold the same bytes and stopping the
// padding at the first word that is zero already: whatever was there before, each text
// reads back exactly, with nothing of a longer one left behind.
TEST(Scoreboard, EachTextReadsBackExactlyWhateverCameBefore) {
    auto created = Scoreboard::create(1, 1, "event");
    ASSERT_TRUE(created) << created.error().message;
    ASSERT_EQ(created->prepare_process(0, 1), 0);
    WorkerSlot& slot = created->worker(0, 0);
    const std::string texts[] = {
        "GET /a-rather-long-path/that/spans/several/words.html HTTP/1.1",
        "GET / HTTP/1.1",
        "",
        "GET /exactly-16-b",  // a whole number of words, then the padding word
        "GET /exactly-16-bytes-more-than-that HTTP/1.0",
        "GET /x HTTP/1.1",
        std::string(500, 'z'),
        "HEAD / HTTP/1.1",
    };
    for (const std::string& request : texts) {
        for (const std::string& client : {std::string("192.0.2.7"), std::string("2001:db8::1"),
                                          std::string("2001:db8::1"), std::string()}) {
            slot.set_text(client, request);
            EXPECT_EQ(slot.text().client, client);
            EXPECT_EQ(slot.text().request, request.substr(0, WorkerSlot::kRequestTextSize - 1));
        }
    }
}

TEST(Scoreboard, CreateRejectsImpossibleShapes) {
    EXPECT_FALSE(Scoreboard::create(0, 1, "prefork"));
    EXPECT_FALSE(Scoreboard::create(1, 0, "prefork"));
    auto long_name = Scoreboard::create(1, 1, "a-module-name-far-too-long");
    ASSERT_FALSE(long_name);
    EXPECT_NE(long_name.error().message.find("too long"), std::string::npos);
    auto bad_path = Scoreboard::create(1, 1, "prefork", "/nonexistent-dir/sub/scoreboard");
    ASSERT_FALSE(bad_path);
    EXPECT_NE(bad_path.error().message.find("cannot create scoreboard file"), std::string::npos);
}

/// Writes zeros to `file` until the file system is full.
void fill(const fs::path& file) {
    std::ofstream out(file, std::ios::binary);
    const std::string block(4096, '\0');
    while (out.write(block.data(), std::streamsize(block.size()))) {
        out.flush();
    }
}

TEST(Scoreboard, AFileOnAFullDiskIsAnErrorNotASignal) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "mounting a small file system takes root";
    }
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    ASSERT_GT(Scoreboard::layout_size(64, 64), 256u << 10);
    // In a child with a mount namespace of its own, so the mount vanishes with it.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=256k") != 0) {
            ::_exit(77);
        }
        const fs::path file = dir.path() / "scoreboard";
        const fs::path filler = dir.path() / "filler";
        // No room for even the header: an error at creation, and no file left behind.
        fill(filler);
        auto refused = Scoreboard::create(64, 64, "worker", file);
        if (refused ||
            refused.error().message.find("No space left on device") == std::string::npos ||
            fs::exists(file)) {
            ::_exit(2);
        }
        // Room for the header and the process slots but not for a process's workers: the
        // master must hear it before it forks, not die of SIGBUS writing the slots.
        fs::remove(filler);
        auto made = Scoreboard::create(64, 64, "worker", file);
        if (!made) {
            ::_exit(3);
        }
        fill(filler);
        if (made->prepare_process(63, 64) != ENOSPC || made->process(63).workers_ready()) {
            ::_exit(4);
        }
        fs::remove(filler);
        ::_exit(made->prepare_process(63, 64) == 0 && made->process(63).workers_ready() ? 0 : 5);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        GTEST_SKIP() << "cannot mount a tmpfs here";
    }
    ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "step " << WEXITSTATUS(status) << " failed";
}

TEST(Scoreboard, AttachRejectsAWrongFile) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const auto error_of = [](const fs::path& file) {
        auto attached = Scoreboard::attach(file);
        return attached ? std::string("attached") : attached.error().message;
    };

    EXPECT_NE(error_of(dir.path() / "missing").find("cannot open"), std::string::npos);

    write_bytes(dir.path() / "short", "TRIDENTS");
    EXPECT_NE(error_of(dir.path() / "short").find("shorter than its header"), std::string::npos);

    write_bytes(dir.path() / "text", std::string(4096, 'x'));
    EXPECT_NE(error_of(dir.path() / "text").find("bad magic"), std::string::npos);

    const fs::path good = dir.path() / "good";
    auto created = Scoreboard::create(8, 4, "worker", good);
    ASSERT_TRUE(created) << created.error().message;
    const std::string image = read_bytes(good);
    ASSERT_EQ(image.size(), Scoreboard::layout_size(8, 4));
    EXPECT_EQ(image.substr(0, 8), "TRIDENTS");
    EXPECT_EQ(error_of(good), "attached");

    write_bytes(dir.path() / "truncated", image.substr(0, image.size() - 64));
    EXPECT_NE(error_of(dir.path() / "truncated").find("truncated"), std::string::npos);

    std::string other_version = image;
    other_version[8] = char(kScoreboardLayoutVersion + 1);  // layout_version follows the magic
    write_bytes(dir.path() / "version", other_version);
    EXPECT_NE(error_of(dir.path() / "version").find("layout version"), std::string::npos);
}

TEST(Scoreboard, MovesOwnershipOfTheMapping) {
    auto created = Scoreboard::create(2, 1, "prefork");
    ASSERT_TRUE(created) << created.error().message;
    Scoreboard first = std::move(*created);
    ASSERT_EQ(first.prepare_process(1, 1), 0);
    first.worker(1, 0).set_state(WorkerState::closing);
    Scoreboard second = std::move(first);
    EXPECT_EQ(second.worker(1, 0).state(), WorkerState::closing);
    EXPECT_EQ(second.mpm(), "prefork");
}

}  // namespace
}  // namespace trident
