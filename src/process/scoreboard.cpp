#include "trident/scoreboard.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

namespace trident {

namespace {

static_assert(sizeof(ScoreboardHeader) % 64 == 0);
static_assert(sizeof(ProcessSlot) % 64 == 0 && alignof(ProcessSlot) == 64);
static_assert(sizeof(WorkerSlot) % 64 == 0 && alignof(WorkerSlot) == 64);
static_assert(WorkerSlot::kClientTextSize % 8 == 0 && WorkerSlot::kRequestTextSize % 8 == 0);

// A reader retries a text copy that raced with a write; past this many attempts it gives up
// (empty text) so that a writer that died mid-write cannot hang the status page.
constexpr int kMaxTextReadAttempts = 1000;

std::int64_t microseconds_now() noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string errno_text() {
    return std::strerror(errno);
}

/// Stores `text` into `words`, cut to leave at least one NUL byte, zero-padded. Runs per
/// request, so it writes whole words, skips a word that holds those bytes already (the same
/// client as the last request's), and stops padding at the first word that is zero
/// already: every word after it is too, since each store pads to there.
void store_text(std::atomic<std::uint64_t>* words, std::size_t capacity,
                std::string_view text) noexcept {
    const auto put = [&](std::size_t index, std::uint64_t word) {
        // Only this slot's owner writes it, so its own relaxed load reads what it stored.
        if (words[index].load(std::memory_order_relaxed) != word) {
            words[index].store(word, std::memory_order_relaxed);
        }
    };
    const std::size_t length = std::min(text.size(), capacity - 1);
    std::size_t offset = 0;
    for (; offset + 8 <= length; offset += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, text.data() + offset, 8);
        put(offset / 8, word);
    }
    std::uint64_t tail = 0;  // the last bytes, NUL-padded; there is room: length < capacity
    if (offset < length) {
        std::memcpy(&tail, text.data() + offset, length - offset);
    }
    put(offset / 8, tail);
    for (offset += 8; offset < capacity; offset += 8) {
        if (words[offset / 8].load(std::memory_order_relaxed) == 0) {
            break;
        }
        words[offset / 8].store(0, std::memory_order_relaxed);
    }
}

void load_text(const std::atomic<std::uint64_t>* words, std::size_t capacity, char* out) noexcept {
    for (std::size_t offset = 0; offset < capacity; offset += 8) {
        const std::uint64_t word = words[offset / 8].load(std::memory_order_relaxed);
        std::memcpy(out + offset, &word, 8);
    }
}

std::string text_of(const char* bytes, std::size_t capacity) {
    return std::string(bytes, strnlen(bytes, capacity));
}

}  // namespace

// --- slots ---------------------------------------------------------------------------------

void ProcessSlot::vacate() noexcept {
    for (auto& gauge : gauges_) {
        gauge.store(0, std::memory_order_relaxed);
    }
    quiescing_.store(false, std::memory_order_relaxed);
    not_accepting_.store(false, std::memory_order_relaxed);
    generation_.store(0, std::memory_order_relaxed);
    pid_.store(0, std::memory_order_release);
}

// The seqlock, after Boehm ("Can seqlocks get along with programming language memory
// models?", 2012): the writer makes the sequence odd, fences, writes the words with relaxed
// stores and publishes an even sequence with release; a reader that copied the words under
// one even sequence, unchanged after an acquire fence, saw no write in progress.
void WorkerSlot::write_text(const std::string_view* client,
                            const std::string_view* request) noexcept {
    // `| 1` rather than `+ 1`: if a previous owner died in the middle of a write (odd), the
    // sequence still ends even after this one.
    const std::uint32_t writing = text_sequence_.load(std::memory_order_relaxed) | 1u;
    text_sequence_.store(writing, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    if (client != nullptr) {
        store_text(client_, kClientTextSize, *client);
    }
    if (request != nullptr) {
        store_text(request_, kRequestTextSize, *request);
    }
    text_sequence_.store(writing + 1, std::memory_order_release);
}

void WorkerSlot::set_text(std::string_view client, std::string_view request_line) noexcept {
    write_text(&client, &request_line);
}

void WorkerSlot::set_client(std::string_view client) noexcept {
    write_text(&client, nullptr);
}

void WorkerSlot::set_request(std::string_view request_line) noexcept {
    write_text(nullptr, &request_line);
}

WorkerText WorkerSlot::text() const {
    char client[kClientTextSize];
    char request[kRequestTextSize];
    for (int attempt = 0; attempt < kMaxTextReadAttempts; ++attempt) {
        const std::uint32_t before = text_sequence_.load(std::memory_order_acquire);
        if (before % 2 != 0) {
            continue;  // a write is in progress
        }
        load_text(client_, kClientTextSize, client);
        load_text(request_, kRequestTextSize, request);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (text_sequence_.load(std::memory_order_relaxed) == before) {
            return WorkerText{text_of(client, kClientTextSize), text_of(request, kRequestTextSize)};
        }
    }
    return {};
}

// --- creation and mapping ------------------------------------------------------------------

std::size_t Scoreboard::layout_size(std::uint32_t server_limit, std::uint32_t thread_limit) {
    std::size_t workers = 0;
    std::size_t worker_bytes = 0;
    std::size_t process_bytes = 0;
    std::size_t total = 0;
    if (__builtin_mul_overflow(std::size_t(server_limit), std::size_t(thread_limit), &workers) ||
        __builtin_mul_overflow(workers, sizeof(WorkerSlot), &worker_bytes) ||
        __builtin_mul_overflow(std::size_t(server_limit), sizeof(ProcessSlot), &process_bytes) ||
        __builtin_add_overflow(process_bytes, worker_bytes, &total) ||
        __builtin_add_overflow(total, sizeof(ScoreboardHeader), &total)) {
        return 0;
    }
    return total;
}

Result<Scoreboard> Scoreboard::create(std::uint32_t server_limit, std::uint32_t thread_limit,
                                      std::string_view mpm, const std::filesystem::path& file) {
    if (server_limit == 0 || thread_limit == 0) {
        return Error{"scoreboard needs server_limit and thread_limit of at least 1"};
    }
    if (mpm.size() >= sizeof(ScoreboardHeader::mpm)) {
        return Error{"scoreboard: MPM name '" + std::string(mpm) + "' is too long"};
    }
    const std::size_t size = layout_size(server_limit, thread_limit);
    if (size == 0) {
        return Error{"scoreboard of " + std::to_string(server_limit) + " processes of " +
                     std::to_string(thread_limit) + " threads does not fit in memory"};
    }

    void* memory = MAP_FAILED;
    int file_fd = -1;
    if (file.empty()) {
        memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            return Error{"cannot map a scoreboard of " + std::to_string(size) +
                         " bytes: " + errno_text()};
        }
    } else {
        const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            return Error{"cannot create scoreboard file " + file.string() + ": " + errno_text()};
        }
        // The file is sized sparse, and a write to a page the disk has no room for raises
        // SIGBUS. So the part written now is reserved now, and each process's worker slots
        // when a process first takes them (prepare_process()): reserving it all would make
        // a large scoreboard resident on tmpfs, where such files usually live.
        const off_t written_now =
            off_t(sizeof(ScoreboardHeader) + std::size_t(server_limit) * sizeof(ProcessSlot));
        int error = 0;
        if (ftruncate(fd, off_t(size)) != 0) {
            error = errno;
        } else {
            error = posix_fallocate(fd, 0, written_now);
        }
        if (error != 0) {
            close(fd);
            unlink(file.c_str());
            return Error{"cannot make scoreboard file " + file.string() + " of " +
                         std::to_string(size) + " bytes: " + std::strerror(error)};
        }
        memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        const std::string reason = errno_text();
        if (memory == MAP_FAILED) {
            close(fd);
            unlink(file.c_str());
            return Error{"cannot map scoreboard file " + file.string() + ": " + reason};
        }
        file_fd = fd;
    }

    // The memory is zero; construct every object in it so each atomic begins its lifetime.
    auto* base = static_cast<std::byte*>(memory);
    auto* header = new (base) ScoreboardHeader;
    auto* processes = reinterpret_cast<ProcessSlot*>(base + sizeof(ScoreboardHeader));
    for (std::uint32_t i = 0; i < server_limit; ++i) {
        new (processes + i) ProcessSlot;
    }
    // Worker slots are built by prepare_process() when a process first takes their slot:
    // writing them all now would make every page of a large scoreboard resident.

    header->layout_version = kScoreboardLayoutVersion;
    header->header_size = sizeof(ScoreboardHeader);
    header->process_slot_size = sizeof(ProcessSlot);
    header->worker_slot_size = sizeof(WorkerSlot);
    header->server_limit = server_limit;
    header->thread_limit = thread_limit;
    header->total_size = size;
    std::memcpy(header->mpm, mpm.data(), mpm.size());
    header->start_time_us = microseconds_now();
    header->restart_time_us.store(header->start_time_us, std::memory_order_relaxed);
    header->magic.store(kScoreboardMagic, std::memory_order_release);  // published: last

    return Scoreboard(base, size, false, file, getpid(), file_fd);
}

Result<Scoreboard> Scoreboard::attach(const std::filesystem::path& file) {
    const std::string name = file.string();
    const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return Error{"cannot open scoreboard file " + name + ": " + errno_text()};
    }
    struct stat status {};
    if (fstat(fd, &status) != 0) {
        const std::string reason = errno_text();
        close(fd);
        return Error{"cannot stat scoreboard file " + name + ": " + reason};
    }
    const auto file_size = std::size_t(status.st_size);
    if (file_size < sizeof(ScoreboardHeader)) {
        close(fd);
        return Error{name + " is not a Trident scoreboard: " + std::to_string(file_size) +
                     " bytes is shorter than its header"};
    }
    void* memory = mmap(nullptr, file_size, PROT_READ, MAP_SHARED, fd, 0);
    const std::string reason = errno_text();
    close(fd);
    if (memory == MAP_FAILED) {
        return Error{"cannot map scoreboard file " + name + ": " + reason};
    }
    auto* base = static_cast<std::byte*>(memory);
    // From here the Scoreboard owns the mapping, so every early return unmaps it.
    Scoreboard board(base, file_size, true, {}, 0);
    const ScoreboardHeader& header = *board.header_;

    if (header.magic.load(std::memory_order_acquire) != kScoreboardMagic) {
        return Error{name + " is not a Trident scoreboard (bad magic number)"};
    }
    if (header.layout_version != kScoreboardLayoutVersion) {
        return Error{name + " has scoreboard layout version " +
                     std::to_string(header.layout_version) + "; this build reads version " +
                     std::to_string(kScoreboardLayoutVersion)};
    }
    if (header.header_size != sizeof(ScoreboardHeader) ||
        header.process_slot_size != sizeof(ProcessSlot) ||
        header.worker_slot_size != sizeof(WorkerSlot)) {
        return Error{name + " has scoreboard slots of another size than this build's"};
    }
    if (header.server_limit == 0 || header.thread_limit == 0) {
        return Error{name + " describes an empty scoreboard"};
    }
    const std::size_t expected = layout_size(header.server_limit, header.thread_limit);
    if (expected == 0 || header.total_size != expected) {
        return Error{name + " has an inconsistent scoreboard size"};
    }
    if (file_size < expected) {
        return Error{name + " is truncated: " + std::to_string(file_size) + " bytes of " +
                     std::to_string(expected)};
    }
    return board;
}

Scoreboard::Scoreboard(std::byte* base, std::size_t size, bool read_only,
                       std::filesystem::path file, pid_t owner, int file_fd) noexcept
    : base_(base),
      size_(size),
      read_only_(read_only),
      file_(std::move(file)),
      owner_(owner),
      file_fd_(file_fd),
      header_(std::launder(reinterpret_cast<ScoreboardHeader*>(base))),
      processes_(std::launder(reinterpret_cast<ProcessSlot*>(base + sizeof(ScoreboardHeader)))),
      workers_(nullptr) {
    // Only dereferenced after attach() has checked the header; create() wrote it.
    if (size_ >=
        sizeof(ScoreboardHeader) + std::size_t(header_->server_limit) * sizeof(ProcessSlot)) {
        workers_ = std::launder(reinterpret_cast<WorkerSlot*>(processes_ + header_->server_limit));
    }
}

Scoreboard::Scoreboard(Scoreboard&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      read_only_(other.read_only_),
      file_(std::move(other.file_)),
      owner_(std::exchange(other.owner_, 0)),
      file_fd_(std::exchange(other.file_fd_, -1)),
      header_(std::exchange(other.header_, nullptr)),
      processes_(std::exchange(other.processes_, nullptr)),
      workers_(std::exchange(other.workers_, nullptr)) {
    other.file_.clear();
}

Scoreboard& Scoreboard::operator=(Scoreboard&& other) noexcept {
    if (this != &other) {
        release();
        base_ = std::exchange(other.base_, nullptr);
        size_ = std::exchange(other.size_, 0);
        read_only_ = other.read_only_;
        file_ = std::move(other.file_);
        other.file_.clear();
        owner_ = std::exchange(other.owner_, 0);
        file_fd_ = std::exchange(other.file_fd_, -1);
        header_ = std::exchange(other.header_, nullptr);
        processes_ = std::exchange(other.processes_, nullptr);
        workers_ = std::exchange(other.workers_, nullptr);
    }
    return *this;
}

Scoreboard::~Scoreboard() {
    release();
}

void Scoreboard::release() noexcept {
    if (base_ != nullptr) {
        munmap(base_, size_);
        base_ = nullptr;
    }
    drop_file_descriptor();
    // Only the creator removes the file: a forked child that destroys its copy must not.
    if (!file_.empty() && owner_ != 0 && owner_ == getpid()) {
        unlink(file_.c_str());
    }
    file_.clear();
}

// --- reading and updating ------------------------------------------------------------------

std::string_view Scoreboard::mpm() const noexcept {
    return std::string_view(header_->mpm, strnlen(header_->mpm, sizeof(header_->mpm)));
}

std::chrono::system_clock::time_point Scoreboard::start_time() const noexcept {
    return std::chrono::system_clock::time_point(std::chrono::microseconds(header_->start_time_us));
}

std::chrono::system_clock::time_point Scoreboard::restart_time() const noexcept {
    return std::chrono::system_clock::time_point(
        std::chrono::microseconds(header_->restart_time_us.load(std::memory_order_relaxed)));
}

void Scoreboard::set_generation(std::uint32_t generation) noexcept {
    header_->generation.store(generation, std::memory_order_release);
}

void Scoreboard::restart_counters() noexcept {
    for (std::uint32_t slot = 0; slot < server_limit(); ++slot) {
        for (std::uint32_t thread = 0; process(slot).workers_ready() && thread < thread_limit();
             ++thread) {
            worker(slot, thread).reset_counters();
        }
    }
    header_->restart_time_us.store(microseconds_now(), std::memory_order_relaxed);
}

ProcessSlot& Scoreboard::process(std::uint32_t slot) noexcept {
    return processes_[slot];
}

const ProcessSlot& Scoreboard::process(std::uint32_t slot) const noexcept {
    return processes_[slot];
}

WorkerSlot& Scoreboard::worker(std::uint32_t process, std::uint32_t thread) noexcept {
    return workers_[std::size_t(process) * header_->thread_limit + thread];
}

const WorkerSlot& Scoreboard::worker(std::uint32_t process, std::uint32_t thread) const noexcept {
    return workers_[std::size_t(process) * header_->thread_limit + thread];
}

int Scoreboard::prepare_process(std::uint32_t slot, std::uint32_t workers) noexcept {
    ProcessSlot& process_slot = process(slot);
    if (!process_slot.workers_ready()) {
        if (file_fd_ >= 0) {
            const auto offset = reinterpret_cast<std::byte*>(&worker(slot, 0)) - base_;
            const int error = posix_fallocate(
                file_fd_, off_t(offset), off_t(std::size_t(thread_limit()) * sizeof(WorkerSlot)));
            if (error != 0) {
                return error;
            }
        }
        for (std::uint32_t thread = 0; thread < thread_limit(); ++thread) {
            new (&worker(slot, thread)) WorkerSlot;
        }
        process_slot.workers_ready_.store(true, std::memory_order_release);
    }
    for (std::uint32_t thread = 0; thread < thread_limit(); ++thread) {
        WorkerSlot& worker_slot = worker(slot, thread);
        worker_slot.clear_text();
        worker_slot.set_state(thread < workers ? WorkerState::starting : WorkerState::open);
    }
    return 0;
}

void Scoreboard::drop_file_descriptor() noexcept {
    if (file_fd_ >= 0) {
        close(file_fd_);
        file_fd_ = -1;
    }
}

void Scoreboard::vacate_process(std::uint32_t slot) noexcept {
    for (std::uint32_t thread = 0; process(slot).workers_ready() && thread < thread_limit();
         ++thread) {
        WorkerSlot& worker_slot = worker(slot, thread);
        worker_slot.clear_text();
        worker_slot.set_state(WorkerState::open);
    }
    process(slot).vacate();
}

ScoreboardTally Scoreboard::tally(std::uint32_t generation) const noexcept {
    ScoreboardTally tally;
    for (std::uint32_t slot = 0; slot < server_limit(); ++slot) {
        const ProcessSlot& process_slot = process(slot);
        if (process_slot.pid() == 0) {
            ++tally.free_process_slots;
            continue;
        }
        if (generation != kAllGenerations && process_slot.generation() != generation) {
            continue;
        }
        const bool accepting = !process_slot.quiescing();
        const bool has_room = accepting && !process_slot.not_accepting();
        ++tally.processes;
        tally.quiescing += accepting ? 0 : 1;
        tally.connections += process_slot.connections(ConnectionGauge::total);
        tally.connections_keep_alive += process_slot.connections(ConnectionGauge::keep_alive);
        tally.connections_writing += process_slot.connections(ConnectionGauge::writing);
        tally.connections_lingering += process_slot.connections(ConnectionGauge::lingering);

        for (std::uint32_t thread = 0; thread < thread_limit(); ++thread) {
            const WorkerSlot& worker_slot = worker(slot, thread);
            tally.accesses += worker_slot.accesses();
            tally.bytes += worker_slot.bytes();
            tally.duration_us += worker_slot.duration_us();
            const WorkerState state = worker_slot.state();
            switch (state) {
                case WorkerState::open:
                    continue;
                case WorkerState::waiting:
                    tally.idle += accepting ? 1 : 0;
                    tally.spare += has_room ? 1 : 0;
                    break;
                case WorkerState::starting:
                    tally.starting += accepting ? 1 : 0;
                    tally.spare += has_room ? 1 : 0;
                    break;
                case WorkerState::idle_cleanup:
                    break;
                default:
                    // mod_status counts busy workers in accepting processes only, 'G'
                    // included.
                    tally.busy += accepting ? 1 : 0;
                    break;
            }
            // Apache's active_thread_count: from ready up to (not including) gracefully
            // finishing, in any live process; these hold places under max_request_workers.
            switch (state) {
                case WorkerState::waiting:
                case WorkerState::reading:
                case WorkerState::writing:
                case WorkerState::keep_alive:
                case WorkerState::closing:
                case WorkerState::logging:
                    ++tally.active;
                    break;
                default:
                    break;
            }
            tally.keep_alive += state == WorkerState::keep_alive ? 1 : 0;
            // A part of `busy`, as in mod_status: a finishing process's 'G' workers show in
            // the scoreboard line but are counted in neither.
            tally.graceful += state == WorkerState::graceful && accepting ? 1 : 0;
        }
    }
    return tally;
}

std::string Scoreboard::status_line() const {
    std::string line;
    line.reserve(std::size_t(server_limit()) * thread_limit());
    for (std::uint32_t slot = 0; slot < server_limit(); ++slot) {
        if (!process(slot).workers_ready()) {
            line.append(thread_limit(), char(WorkerState::open));
            continue;
        }
        for (std::uint32_t thread = 0; thread < thread_limit(); ++thread) {
            line.push_back(char(worker(slot, thread).state()));
        }
    }
    return line;
}

}  // namespace trident
