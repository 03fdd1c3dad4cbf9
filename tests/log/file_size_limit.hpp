#pragma once

// A helper shared by the log tests: the file size limit (RLIMIT_FSIZE) as a full disk.

#include <sys/resource.h>

#include <csignal>
#include <cstdint>

namespace trident::log {

/// The file size limit standing in for a full disk: a write that crosses it stops there,
/// and the next fails with EFBIG. The server ignores SIGXFSZ, and so does this test while
/// one is in place; both are undone on destruction.
class FileSizeLimit {
public:
    FileSizeLimit() {
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        ok_ = ::sigaction(SIGXFSZ, &ignore, &before_) == 0 &&
              ::getrlimit(RLIMIT_FSIZE, &unlimited_) == 0;
    }
    ~FileSizeLimit() {
        lift();
        ::sigaction(SIGXFSZ, &before_, nullptr);
    }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;

    bool set(std::uint64_t bytes) {
        rlimit limited = unlimited_;
        limited.rlim_cur = rlim_t(bytes);
        return ok_ && ::setrlimit(RLIMIT_FSIZE, &limited) == 0;
    }
    bool lift() { return ok_ && ::setrlimit(RLIMIT_FSIZE, &unlimited_) == 0; }

private:
    struct sigaction before_ {};
    rlimit unlimited_{};
    bool ok_ = false;
};

}  // namespace trident::log
