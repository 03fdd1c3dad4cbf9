#pragma once

// The access log: one line per answered request, in a LogFormat, written with O_APPEND in
// whole lines so that children and threads never interleave.
//
// Each thread (so each prefork child) formats into its own buffer. A buffer is written out
//   - when it would pass flush_bytes(): kFileFlushBytes (16 KiB) for a regular file, where
//     Linux writes each write() whole under the file's lock, and kFlushBytes (4 KiB,
//     PIPE_BUF) for anything else, so that a write to a pipe such as stderr under systemd
//     stays atomic,
//   - once its oldest line is kFlushAge (1 s) old: on the thread's next request, or by the
//     process's flusher thread (started with the process's first line), which looks every
//     half second, so lines never wait on an idle worker,
//   - when the connection driver closes its connection (a prefork child may then _exit
//     without losing a line), and when the thread exits.
// A failing write (full disk, the file size limit, closed pipe) drops the buffered lines
// and is reported to the error log, with the count once writes succeed again (at most one
// such pair a minute per process); serving goes on.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "log/access_record.hpp"
#include "log/log_format.hpp"
#include "trident/config.hpp"

namespace trident {
namespace http {
class Connection;
}

namespace log {

class AccessLog {
public:
    static constexpr std::size_t kFlushBytes = 4096;
    /// A write to a regular file costs 10-15 µs whatever its size (ext4, measured): every
    /// 4 KiB, that was 2 % of a small request's CPU time.
    static constexpr std::size_t kFileFlushBytes = 16384;
    static constexpr std::chrono::seconds kFlushAge{1};
    /// The least time between two reports that writes succeed again after failing.
    static constexpr std::chrono::minutes kFailureReportGap{1};

    /// Compiles the format and opens the file (O_APPEND, created 0644) or takes stderr or
    /// stdout; null for `access_log: off`. The master calls this before the first fork, so children
    /// inherit the descriptor and keep writing after a privilege drop.
    static Result<std::unique_ptr<AccessLog>> open(const AccessLogConfig& config);

    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;
    /// Writes out the calling thread's buffer. Must outlive every thread that writes to it.
    ~AccessLog();

    /// Formats `record` into the calling thread's buffer; may write the buffer out.
    void write(const AccessRecord& record) noexcept;

    /// Writes out the calling thread's buffer now.
    void flush() noexcept;

    const std::string& path() const noexcept { return path_; }
    const LogFormat& format() const noexcept { return format_; }
    /// The size past which a thread's lines are written out, chosen at open (see above).
    std::size_t flush_bytes() const noexcept { return flush_bytes_; }

private:
    friend struct ThreadBuffer;
    AccessLog(std::string path, int fd, bool owns_fd, LogFormat format);

    /// One write() per chunk of whole lines; false on failure. A failure is reported once
    /// until a later write succeeds, which reports how many lines were dropped meanwhile
    /// (at most once per kFailureReportGap).
    bool write_out(std::string_view lines) noexcept;
    /// Ends the line a write of this process left cut short at the end of the file, so that
    /// its next line starts on its own; false, with `error` its errno, if that write failed
    /// too.
    bool end_cut_line(int& error) noexcept;

    std::string path_;
    int fd_;
    bool owns_fd_;
    std::size_t flush_bytes_;
    LogFormat format_;
    std::atomic<bool> failure_reported_{false};
    std::atomic<bool> cut_{false};                 ///< the file ends in a cut-short line
    std::atomic<std::uint64_t> dropped_lines_{0};  ///< since the failure was reported
    /// Until when a failure episode's end is not reported (nor so a new one started):
    /// steady-clock nanoseconds.
    std::atomic<std::int64_t> quiet_until_{0};
};

/// The connection driver's one call, made when a response has been sent (`completed`) or
/// has failed to be: fills an AccessRecord from the connection and writes it to `log`.
/// `now` is the caller's reading of the steady clock, which ends the request's duration.
/// A failed response is logged with the `written` bytes of it (head first) that reached
/// the socket: %O counts them all, %b those past the head. Does nothing when `log` is null
/// (access_log: off). Never throws.
void log_response(AccessLog* log, const http::Connection& connection, const Endpoints& endpoints,
                  std::chrono::steady_clock::time_point request_start,
                  std::chrono::steady_clock::time_point now, bool completed,
                  std::uint64_t written = 0) noexcept;

}  // namespace log
}  // namespace trident
