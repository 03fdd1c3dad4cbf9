#pragma once

#include <sys/types.h>

#include <filesystem>

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

}  // namespace trident
