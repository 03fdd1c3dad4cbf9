#pragma once

// The scoreboard: one block of shared memory, created by the master before any fork, with a
// slot per child process and one per (process, thread) worker, as in Apache httpd. Children
// write their own slots on the request path; the master (spare maintenance), /server-status
// and outside tools read them. The memory is an anonymous shared mapping, or a file (Apache's
// ScoreBoardFile) that another process can map read-only with Scoreboard::attach().
//
// Layout: ScoreboardHeader, then server_limit ProcessSlots, then server_limit × thread_limit
// WorkerSlots (process-major). Every field that changes after creation is a lock-free atomic,
// or text guarded by a per-slot sequence counter (a seqlock whose words are relaxed atomics),
// so a reader never sees a torn value. Each WorkerSlot has one writer: the thread that owns
// it, or the master while no child holds the slot.

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "trident/result.hpp"

namespace trident {

/// Apache's worker states, as the characters of its status page and `?auto` Scoreboard line.
enum class WorkerState : char {
    open = '.',          ///< no worker in this slot
    waiting = '_',       ///< idle, waiting for a connection
    starting = 'S',      ///< the process or thread is starting
    reading = 'R',       ///< reading a request
    writing = 'W',       ///< sending a response
    keep_alive = 'K',    ///< waiting for the next request on a kept-alive connection
    closing = 'C',       ///< closing the connection (lingering close)
    logging = 'L',       ///< writing the access log
    graceful = 'G',      ///< gracefully finishing
    idle_cleanup = 'I',  ///< an idle worker being retired
};

/// "TRIDENTS" in the first eight bytes of a scoreboard file.
inline constexpr std::uint64_t kScoreboardMagic = 0x53544e4544495254ull;
/// Bumped whenever ScoreboardHeader, ProcessSlot or WorkerSlot change shape.
inline constexpr std::uint32_t kScoreboardLayoutVersion = 2;

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<pid_t>::is_always_lock_free);
static_assert(std::atomic<char>::is_always_lock_free);
static_assert(std::atomic<bool>::is_always_lock_free);

/// At offset 0. The constant fields are written once by create() before `magic`, which is
/// stored last (release), so a reader that sees the magic sees the rest.
struct alignas(64) ScoreboardHeader {
    std::atomic<std::uint64_t> magic{0};
    std::uint32_t layout_version = 0;
    std::uint32_t header_size = 0;  ///< sizeof(ScoreboardHeader)
    std::uint32_t process_slot_size = 0;
    std::uint32_t worker_slot_size = 0;
    std::uint32_t server_limit = 0;
    std::uint32_t thread_limit = 0;
    std::uint64_t total_size = 0;              ///< bytes of the whole layout
    char mpm[16] = {};                         ///< NUL-terminated module name: "prefork", "event"
    std::int64_t start_time_us = 0;            ///< creation, microseconds since the Unix epoch
    std::atomic<std::uint32_t> generation{0};  ///< the generation now running
    std::atomic<std::int64_t> restart_time_us{0};  ///< start, or the last restart (SIGHUP)
};

/// A process's connection gauges (Apache event's ConnsTotal and ConnsAsync* of mod_status).
enum class ConnectionGauge : std::uint8_t {
    total,       ///< every open connection
    keep_alive,  ///< idle between requests
    writing,     ///< finishing a write without a worker (event MPM)
    lingering,   ///< in lingering close
};
inline constexpr std::size_t kConnectionGauges = 4;

/// One child process. The master writes pid and generation; the child writes the rest.
class alignas(64) ProcessSlot {
public:
    pid_t pid() const noexcept { return pid_.load(std::memory_order_acquire); }  ///< 0: free
    std::uint32_t generation() const noexcept {
        return generation_.load(std::memory_order_relaxed);
    }
    /// Stopped accepting and finishing what it holds (graceful stop, restart or retirement).
    bool quiescing() const noexcept { return quiescing_.load(std::memory_order_relaxed); }
    /// Alive and serving, but taking no new connections for now: the event MPM's
    /// async_request_worker_factor limit is reached (Apache's not_accepting).
    bool not_accepting() const noexcept { return not_accepting_.load(std::memory_order_relaxed); }
    /// Whether the slot's worker slots exist yet: they are built when a process first takes
    /// the slot, so memory for slots never used (most of a scoreboard sized for two
    /// generations of any MPM) is never touched. Until then every worker reads '.'.
    bool workers_ready() const noexcept { return workers_ready_.load(std::memory_order_acquire); }

    /// Master, right after fork: the slot now belongs to `pid` of `generation`.
    void occupy(pid_t pid, std::uint32_t generation) noexcept {
        generation_.store(generation, std::memory_order_relaxed);
        pid_.store(pid, std::memory_order_release);
    }
    /// Master, after reaping: the slot is free and its gauges zero.
    void vacate() noexcept;
    void set_quiescing(bool quiescing) noexcept {
        quiescing_.store(quiescing, std::memory_order_relaxed);
    }
    void set_not_accepting(bool not_accepting) noexcept {
        not_accepting_.store(not_accepting, std::memory_order_relaxed);
    }

    /// Counts the process's open connections in `gauge` up or down by `delta`.
    void add_connections(ConnectionGauge gauge, std::int32_t delta) noexcept {
        // Unsigned wrap-around makes a negative delta a decrement.
        gauges_[std::size_t(gauge)].fetch_add(std::uint32_t(delta), std::memory_order_relaxed);
    }
    std::uint32_t connections(ConnectionGauge gauge = ConnectionGauge::total) const noexcept {
        return gauges_[std::size_t(gauge)].load(std::memory_order_relaxed);
    }

private:
    std::atomic<pid_t> pid_{0};
    std::atomic<std::uint32_t> generation_{0};
    std::atomic<bool> quiescing_{false};
    std::atomic<bool> not_accepting_{false};
    std::atomic<bool> workers_ready_{false};  ///< set once by the master; vacate() keeps it
    friend class Scoreboard;
    std::atomic<std::uint32_t> gauges_[kConnectionGauges];
};

/// A worker's client address and request line, copied out consistently.
struct WorkerText {
    std::string client;
    std::string request;
};

/// One worker: a prefork child or one thread of a threaded child. Counters are cumulative
/// over every process that held the slot, as Apache's access_count, so their sums only grow.
class alignas(64) WorkerSlot {
public:
    static constexpr std::size_t kClientTextSize = 64;    ///< bytes, longer text is cut
    static constexpr std::size_t kRequestTextSize = 128;  ///< bytes, longer text is cut

    WorkerState state() const noexcept {
        return WorkerState(state_.load(std::memory_order_acquire));
    }
    void set_state(WorkerState state) noexcept {
        state_.store(char(state), std::memory_order_release);
    }

    /// A request was answered with `bytes` bytes, `duration` after its first byte arrived
    /// (mod_status's Total Duration); also marks the slot used now.
    void count_request(std::uint64_t bytes, std::chrono::system_clock::time_point now,
                       std::chrono::microseconds duration = {}) noexcept {
        accesses_.fetch_add(1, std::memory_order_relaxed);
        bytes_.fetch_add(bytes, std::memory_order_relaxed);
        duration_us_.fetch_add(std::uint64_t(std::max<std::int64_t>(duration.count(), 0)),
                               std::memory_order_relaxed);
        touch(now);
    }
    void count_connection() noexcept { connections_.fetch_add(1, std::memory_order_relaxed); }
    /// Master, on a restart: the request counters start again from zero. The owner adds
    /// with fetch_add, so a request it counts meanwhile is neither lost nor doubled.
    void reset_counters() noexcept {
        accesses_.store(0, std::memory_order_relaxed);
        bytes_.store(0, std::memory_order_relaxed);
        duration_us_.store(0, std::memory_order_relaxed);
        connections_.store(0, std::memory_order_relaxed);
    }
    void touch(std::chrono::system_clock::time_point now) noexcept {
        last_used_us_.store(
            std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count(),
            std::memory_order_relaxed);
    }

    std::uint64_t accesses() const noexcept { return accesses_.load(std::memory_order_relaxed); }
    std::uint64_t bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }
    /// Microseconds spent on the counted requests, summed.
    std::uint64_t duration_us() const noexcept {
        return duration_us_.load(std::memory_order_relaxed);
    }
    std::uint64_t connections() const noexcept {
        return connections_.load(std::memory_order_relaxed);
    }
    std::chrono::system_clock::time_point last_used() const noexcept {
        return std::chrono::system_clock::time_point(
            std::chrono::microseconds(last_used_us_.load(std::memory_order_relaxed)));
    }

    /// Writer side of the seqlock: only the slot's owner calls these. No allocation.
    void set_client(std::string_view client) noexcept;
    void set_request(std::string_view request_line) noexcept;
    void set_text(std::string_view client, std::string_view request_line) noexcept;
    void clear_text() noexcept { set_text({}, {}); }

    /// Reader side: never a mix of two writes. Gives empty text if the writer keeps the
    /// sequence busy past a bounded number of attempts (or died in the middle of a write).
    WorkerText text() const;

private:
    /// The one seqlock write; a null view leaves that text as it is.
    void write_text(const std::string_view* client, const std::string_view* request) noexcept;

    template <std::size_t N>
    using TextWords = std::atomic<std::uint64_t>[N / 8];

    std::atomic<std::uint32_t> text_sequence_{0};  ///< odd while a write is in progress
    std::atomic<char> state_{char(WorkerState::open)};
    std::atomic<std::uint64_t> accesses_{0};
    std::atomic<std::uint64_t> bytes_{0};
    std::atomic<std::uint64_t> connections_{0};
    std::atomic<std::uint64_t> duration_us_{0};
    std::atomic<std::int64_t> last_used_us_{0};  ///< microseconds since the Unix epoch
    TextWords<kClientTextSize> client_;          ///< NUL-padded, guarded by text_sequence_
    TextWords<kRequestTextSize> request_;
};

/// Counts over the scoreboard, for spare maintenance and the status page.
struct ScoreboardTally {
    std::uint32_t processes = 0;           ///< slots holding a live process
    std::uint32_t quiescing = 0;           ///< of those, gracefully finishing
    std::uint32_t free_process_slots = 0;  ///< slots without a process, whatever the generation
    std::uint32_t idle = 0;      ///< '_' in processes that accept (mod_status IdleWorkers)
    std::uint32_t starting = 0;  ///< 'S' in processes that accept
    /// '_' and 'S' in processes that accept and have room for more connections: the spare
    /// capacity spare maintenance counts (Apache's idle_thread_count skips not_accepting).
    std::uint32_t spare = 0;
    std::uint32_t busy = 0;        ///< mod_status BusyWorkers: not '_', 'S', '.' or 'I'
    std::uint32_t active = 0;      ///< '_' R W K C L in live processes: held against the limit
    std::uint32_t keep_alive = 0;  ///< 'K' workers
    std::uint32_t graceful = 0;    ///< 'G' in processes that accept: a part of busy
    std::uint64_t accesses = 0;    ///< requests, summed over the counted slots
    std::uint64_t bytes = 0;
    std::uint64_t duration_us = 0;  ///< request time, summed (mod_status Total Duration)
    std::uint32_t connections = 0;  ///< ProcessSlot gauges, summed
    std::uint32_t connections_keep_alive = 0;
    std::uint32_t connections_writing = 0;
    std::uint32_t connections_lingering = 0;
};

class Scoreboard {
public:
    /// tally() over every generation.
    static constexpr std::uint32_t kAllGenerations = UINT32_MAX;

    /// Maps a fresh scoreboard, shared with every child forked afterwards. With `file`, the
    /// memory is that file (created or truncated, mode 0644), removed again by the destructor
    /// in the creating process; otherwise an anonymous shared mapping.
    static Result<Scoreboard> create(std::uint32_t server_limit, std::uint32_t thread_limit,
                                     std::string_view mpm, const std::filesystem::path& file = {});

    /// Maps a scoreboard file read-only, after checking its magic, layout version and size.
    static Result<Scoreboard> attach(const std::filesystem::path& file);

    /// Bytes a scoreboard of this shape takes, or 0 if it would not fit in memory.
    static std::size_t layout_size(std::uint32_t server_limit, std::uint32_t thread_limit);

    Scoreboard(Scoreboard&& other) noexcept;
    Scoreboard& operator=(Scoreboard&& other) noexcept;
    Scoreboard(const Scoreboard&) = delete;
    Scoreboard& operator=(const Scoreboard&) = delete;
    ~Scoreboard();

    std::uint32_t server_limit() const noexcept { return header_->server_limit; }
    std::uint32_t thread_limit() const noexcept { return header_->thread_limit; }
    std::string_view mpm() const noexcept;
    bool read_only() const noexcept { return read_only_; }
    std::chrono::system_clock::time_point start_time() const noexcept;
    std::chrono::system_clock::time_point restart_time() const noexcept;

    std::uint32_t generation() const noexcept {
        return header_->generation.load(std::memory_order_acquire);
    }
    /// Master: a new generation runs from now (Apache's running_generation). The restart
    /// time and the counters go on, as Apache's do over a graceful restart.
    void set_generation(std::uint32_t generation) noexcept;
    /// Master, on a restart that is not graceful (SIGHUP): the restart time is now and every
    /// slot's request counters start again from zero, as Apache makes a new scoreboard then.
    /// Uptime and the totals keep the same starting point either way, so the rates the
    /// status page derives from them hold.
    void restart_counters() noexcept;

    /// Slots. The mutable overloads are for a created scoreboard only (an attached one is
    /// mapped read-only). Indices must be below server_limit and thread_limit.
    ProcessSlot& process(std::uint32_t slot) noexcept;
    const ProcessSlot& process(std::uint32_t slot) const noexcept;
    /// A worker slot; only of a process slot whose workers_ready() is true.
    WorkerSlot& worker(std::uint32_t process, std::uint32_t thread) noexcept;
    const WorkerSlot& worker(std::uint32_t process, std::uint32_t thread) const noexcept;

    /// Master, before forking into `slot`: its first `workers` workers read 'S' (so spare
    /// maintenance counts them as coming), the rest '.'; texts cleared. 0, or the errno of
    /// reserving the slot's part of a scoreboard file the first time (ENOSPC: the process
    /// must not start, since writing a page the disk has no room for raises SIGBUS).
    [[nodiscard]] int prepare_process(std::uint32_t slot, std::uint32_t workers) noexcept;
    /// In a forked child: closes the scoreboard file's descriptor, which only the master
    /// uses (to reserve room in it); the mapping stays.
    void drop_file_descriptor() noexcept;
    /// Master, after reaping the process in `slot`: the process and its workers are free.
    void vacate_process(std::uint32_t slot) noexcept;

    /// Counts over the processes of `generation` (every generation by default).
    ScoreboardTally tally(std::uint32_t generation = kAllGenerations) const noexcept;

    /// Apache's `?auto` Scoreboard line: one state character per worker slot, process-major.
    std::string status_line() const;

private:
    Scoreboard(std::byte* base, std::size_t size, bool read_only, std::filesystem::path file,
               pid_t owner, int file_fd = -1) noexcept;
    void release() noexcept;

    std::byte* base_ = nullptr;
    std::size_t size_ = 0;
    bool read_only_ = false;
    std::filesystem::path file_;  ///< removed by the owner's destructor when not empty
    pid_t owner_ = 0;             ///< the creating process; 0 for an attached scoreboard
    int file_fd_ = -1;            ///< a created scoreboard's file, to reserve room in it
    ScoreboardHeader* header_ = nullptr;
    ProcessSlot* processes_ = nullptr;
    WorkerSlot* workers_ = nullptr;
};

}  // namespace trident
