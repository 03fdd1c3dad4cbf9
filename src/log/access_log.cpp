#include "log/access_log.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

#include "http/connection.hpp"
#include "log/error_log.hpp"
#include "trident/coarse_clock.hpp"
#include "trident/http/status.hpp"

namespace trident::log {

static_assert(AccessLog::kFlushBytes <= PIPE_BUF, "a write to a pipe must stay atomic");

/// One thread's pending lines, for one AccessLog at a time. The owning thread appends; the
/// process's flusher thread writes out lines that have waited kFlushAge. The mutex is
/// uncontended but for those moments.
struct ThreadBuffer {
    std::mutex mutex;
    AccessLog* owner = nullptr;
    std::string lines;
    std::chrono::steady_clock::time_point oldest{};

    ThreadBuffer();
    ~ThreadBuffer();
    ThreadBuffer(const ThreadBuffer&) = delete;
    ThreadBuffer& operator=(const ThreadBuffer&) = delete;

    /// With `mutex` held.
    void drain() noexcept {
        if (owner != nullptr && !lines.empty()) {
            owner->write_out(lines);
        }
        lines.clear();
    }
};

namespace {

struct BufferRegistry;
BufferRegistry& registry();

/// Every live ThreadBuffer of the process, and its flusher thread. Never destroyed: the
/// detached flusher may outlive static destruction.
struct BufferRegistry {
    std::mutex mutex;  // taken before any ThreadBuffer::mutex
    std::vector<ThreadBuffer*> buffers;
    bool flusher_started = false;  // per process: reset in a forked child
};

// This thread's buffer, once it has one.
thread_local ThreadBuffer* t_self = nullptr;
thread_local bool t_flusher_checked = false;

/// In a forked child: only the forking thread exists, its pending lines are the parent's to
/// write, and the child has no flusher until it writes.
void adopt_after_fork() {
    BufferRegistry& r = registry();
    r.buffers.clear();
    if (t_self != nullptr) {
        t_self->lines.clear();
        r.buffers.push_back(t_self);
    }
    r.flusher_started = false;
    t_flusher_checked = false;
    r.mutex.unlock();
}

BufferRegistry& registry() {
    static BufferRegistry* instance = [] {
        auto* created = new BufferRegistry;
        // Held across fork(), so a child never inherits it locked by a thread it lacks.
        ::pthread_atfork([] { registry().mutex.lock(); }, [] { registry().mutex.unlock(); },
                         adopt_after_fork);
        return created;
    }();
    return *instance;
}

/// Wakes twice per kFlushAge and writes out every buffer whose oldest line is that old, so
/// no line waits long on a worker that has nothing more to log.
[[noreturn]] void run_flusher() {
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(AccessLog::kFlushAge) / 2);
        BufferRegistry& r = registry();
        std::lock_guard registry_lock(r.mutex);
        const auto now = std::chrono::steady_clock::now();
        for (ThreadBuffer* buffer : r.buffers) {
            std::lock_guard buffer_lock(buffer->mutex);
            if (!buffer->lines.empty() && now - buffer->oldest >= AccessLog::kFlushAge) {
                buffer->drain();
            }
        }
    }
}

void ensure_flusher() noexcept {
    BufferRegistry& r = registry();
    std::lock_guard lock(r.mutex);
    if (r.flusher_started) {
        return;
    }
    try {
        std::thread(run_flusher).detach();
        r.flusher_started = true;
    } catch (...) {
        // No thread to be had: lines still go out by size, at connection end and at exit.
    }
}

// Like every thread-local of libtrident, at a fixed offset in the static TLS block, guard
// included: no __tls_get_addr call per line (-ftls-model=initial-exec in CMakeLists.txt).
thread_local ThreadBuffer t_buffer;

/// The dotted quad inet_ntop() writes for `address`, without the sprintf() it goes through:
/// that took 1,740 of the 10,100 instructions a one-request connection ran in user space.
void ipv4_text(const in_addr& address, char (&text)[46]) noexcept {
    const auto* octets = reinterpret_cast<const unsigned char*>(&address.s_addr);
    char* out = text;
    for (int i = 0; i < 4; ++i) {
        if (i > 0) {
            *out++ = '.';
        }
        out = std::to_chars(out, std::end(text), octets[i]).ptr;  // at most 15 in all
    }
    *out = '\0';
}

void numeric_address(const sockaddr_storage& address, char (&text)[46], std::uint16_t& port) {
    if (address.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        ipv4_text(v4.sin_addr, text);
        port = ntohs(v4.sin_port);
    } else if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
        port = ntohs(v6.sin6_port);
    }
}

/// Bytes of the request head as sent in canonical form: request line, "Name: value" lines
/// and the empty line, each ending in CRLF. Counted from the parsed parts rather than from
/// the buffer, whose bytes may have moved on by the time the response has gone out.
std::uint64_t head_size(const http::Request& request) {
    std::uint64_t size = request.method_text.size() + 1 + request.target.size() + 1 +
                         std::string_view("HTTP/1.1\r\n").size();
    for (const http::Field& field : request.fields) {
        size += field.name.size() + 2 + field.value.size() + 2;
    }
    return size + 2;
}

}  // namespace

ThreadBuffer::ThreadBuffer() {
    lines.reserve(AccessLog::kFlushBytes * 2);
    BufferRegistry& r = registry();
    std::lock_guard lock(r.mutex);
    r.buffers.push_back(this);
    t_self = this;
}

ThreadBuffer::~ThreadBuffer() {
    BufferRegistry& r = registry();
    std::lock_guard registry_lock(r.mutex);
    std::erase(r.buffers, this);
    t_self = nullptr;
    std::lock_guard buffer_lock(mutex);
    drain();  // a worker thread's exit
}

Endpoints Endpoints::of(int fd, const sockaddr_storage* peer, bool with_local) noexcept {
    Endpoints ends;
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (peer != nullptr) {
        numeric_address(*peer, ends.client, ends.client_port);
    } else if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        numeric_address(address, ends.client, ends.client_port);
    }
    address = {};
    length = sizeof address;
    if (with_local && ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        numeric_address(address, ends.local, ends.local_port);
    }
    return ends;
}

AccessLog::AccessLog(std::string path, int fd, bool owns_fd, LogFormat format)
    : path_(std::move(path)),
      fd_(fd),
      owns_fd_(owns_fd),
      flush_bytes_(kFlushBytes),
      format_(std::move(format)) {
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
        flush_bytes_ = kFileFlushBytes;
        // A line cut short before (a full disk, then a restart) is ended before ours.
        cut_.store(owns_fd_ && end_line_left_cut(path_, fd_), std::memory_order_relaxed);
    }
}

Result<std::unique_ptr<AccessLog>> AccessLog::open(const AccessLogConfig& config) {
    if (!config.enabled) {
        return std::unique_ptr<AccessLog>();
    }
    auto format = LogFormat::compile(config.format);
    if (!format) {
        return format.error();
    }
    int fd = -1;
    bool owns = false;
    if (config.path == "stderr") {
        fd = STDERR_FILENO;
    } else if (config.path == "stdout") {
        fd = STDOUT_FILENO;
    } else {
        fd = open_log_file(config.path);
        if (fd < 0) {
            return Error{"cannot open access log " + config.path + ": " +
                         open_log_error(config.path, errno)};
        }
        owns = true;
    }
    try {
        return std::unique_ptr<AccessLog>(
            new AccessLog(config.path, fd, owns, std::move(format.value())));
    } catch (...) {
        if (owns) {
            ::close(fd);
        }
        throw;
    }
}

AccessLog::~AccessLog() {
    // Whatever any thread still holds for this log goes out now, and no buffer keeps
    // pointing at it.
    BufferRegistry& r = registry();
    {
        std::lock_guard registry_lock(r.mutex);
        for (ThreadBuffer* buffer : r.buffers) {
            std::lock_guard buffer_lock(buffer->mutex);
            if (buffer->owner == this) {
                buffer->drain();
                buffer->owner = nullptr;
            }
        }
    }
    if (owns_fd_) {
        ::close(fd_);
    }
}

void AccessLog::write(const AccessRecord& record) noexcept {
    ThreadBuffer& buffer = t_buffer;
    if (!t_flusher_checked) {
        ensure_flusher();  // once per thread; the process's flusher starts with its first
        t_flusher_checked = true;
    }
    std::lock_guard lock(buffer.mutex);
    if (buffer.owner != this) {
        buffer.drain();  // lines of another log (tests make several) go out first
        buffer.owner = this;
    }
    const auto now = coarse_steady_now();  // to the tick: enough to age lines by kFlushAge
    const std::size_t before = buffer.lines.size();
    try {
        format_.append(record, buffer.lines);
    } catch (...) {
        buffer.lines.resize(before);  // out of memory: lose this line, not the process
        return;
    }
    if (before == 0) {
        buffer.oldest = now;
    }
    if (buffer.lines.size() > flush_bytes_ && before > 0) {
        // Keep every write within flush_bytes_: the earlier lines go, the new one stays.
        write_out(std::string_view(buffer.lines).substr(0, before));
        buffer.lines.erase(0, before);
        buffer.oldest = now;
    }
    if (buffer.lines.size() >= flush_bytes_ || now - buffer.oldest >= kFlushAge) {
        buffer.drain();
    }
}

void AccessLog::flush() noexcept {
    ThreadBuffer& buffer = t_buffer;
    std::lock_guard lock(buffer.mutex);
    if (buffer.owner == this) {
        buffer.drain();
    }
}

bool AccessLog::write_out(std::string_view lines) noexcept {
    int error = 0;
    const bool ended = !cut_.load(std::memory_order_relaxed) || end_cut_line(error);
    const std::size_t written = ended ? write_fully(fd_, lines, error) : 0;
    lines.remove_prefix(written);
    if (!ended || !lines.empty()) {
        // A full disk or the file size limit (EFBIG) can cut a write short inside a line.
        if (written > 0 && lines.data()[-1] != '\n') {
            cut_.store(true, std::memory_order_relaxed);
        }
        if (!failure_reported_.exchange(true, std::memory_order_relaxed)) {
            try {
                get("core")->error("cannot write to access log {}: {}; its lines are dropped",
                                   path_, std::strerror(error));
            } catch (...) {
                // The error log failed too; nothing more to say.
            }
        }
        dropped_lines_.fetch_add(std::uint64_t(std::count(lines.begin(), lines.end(), '\n')),
                                 std::memory_order_relaxed);
        return false;
    }
    if (failure_reported_.load(std::memory_order_relaxed)) {
        // The episode is over: say so, and report the next one too. On a disk that keeps
        // filling up, at most once a minute: until then the episode goes on, counting.
        const std::int64_t now = coarse_steady_now().time_since_epoch().count();
        std::int64_t quiet = quiet_until_.load(std::memory_order_relaxed);
        if (now >= quiet &&
            quiet_until_.compare_exchange_strong(
                quiet, now + std::chrono::steady_clock::duration(kFailureReportGap).count(),
                std::memory_order_relaxed) &&
            failure_reported_.exchange(false, std::memory_order_relaxed)) {
            try {
                get("core")->warn("writing to access log {} again; {} lines were dropped", path_,
                                  dropped_lines_.exchange(0, std::memory_order_relaxed));
            } catch (...) {
                // The error log failed; the count starts afresh all the same.
            }
        }
    }
    return true;
}

bool AccessLog::end_cut_line(int& error) noexcept {
    // Taken before the write, so a thread that cuts a line meanwhile marks it afresh.
    if (!cut_.exchange(false, std::memory_order_relaxed)) {
        return true;
    }
    if (write_fully(fd_, "\n", error) == 1) {
        return true;
    }
    cut_.store(true, std::memory_order_relaxed);
    return false;
}

void log_response(AccessLog* log, const http::Connection& connection, const Endpoints& endpoints,
                  std::chrono::steady_clock::time_point request_start,
                  std::chrono::steady_clock::time_point now, bool completed,
                  std::uint64_t written) noexcept {
    if (log == nullptr) {
        return;
    }
    const http::Output& out = connection.output();
    const std::uint64_t body = out.body.size() + (out.file != nullptr ? out.file->length : 0);
    const auto duration = std::chrono::duration_cast<std::chrono::microseconds>(
        std::max(now - request_start, std::chrono::steady_clock::duration::zero()));

    AccessRecord record;
    record.request = connection.current_request();
    record.response_head = out.head;
    record.status = int(code(connection.last_status()));
    record.bytes_sent = completed ? out.head.size() + body : written;
    record.body_bytes =
        completed ? body : written - std::min<std::uint64_t>(written, out.head.size());
    if (record.request != nullptr) {
        record.bytes_received =
            head_size(*record.request) + record.request->content_length.value_or(0);
    }
    record.duration = duration;
    record.received = std::chrono::system_clock::now() - duration;
    record.endpoints = &endpoints;
    record.keep_alive_requests = connection.requests_served();
    if (!completed) {
        record.connection_status = 'X';
    } else {
        // The core always says which it chose (RFC 9112 §9.6).
        record.connection_status = out.closes ? '-' : '+';
    }
    log->write(record);
}

}  // namespace trident::log
