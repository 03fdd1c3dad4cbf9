#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "trident/result.hpp"

namespace trident {

/// The master's pid file: written atomically (temporary file, then rename) and removed
/// on exit only while it still names this process.
class PidFile {
public:
    PidFile() = default;
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;
    ~PidFile() { remove(); }

    Result<bool> write(const std::filesystem::path& path, pid_t pid);
    void remove() noexcept;

private:
    std::filesystem::path path_;
    pid_t pid_ = 0;
};

/// What a pid file says about a running master.
struct PidFileStatus {
    enum class State {
        absent,     ///< no pid file (or an empty one)
        running,    ///< names a live trident master
        stale,      ///< names a dead process, or a live one that is not trident
        unreadable  ///< exists but cannot be read or parsed
    };
    State state = State::absent;
    pid_t pid = 0;
    std::string detail;  ///< why it is stale or unreadable, for messages
};

/// Reads `path` and checks the pid it names: alive (kill 0), and a trident master (its
/// /proc/PID/exe, or where that cannot be read its command line, names this executable's
/// file, and it is not a child of another trident).
PidFileStatus inspect_pid_file(const std::filesystem::path& path);

}  // namespace trident
