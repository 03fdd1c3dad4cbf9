#pragma once

// Small files kept in memory with the identity of the inode they were read from. A request
// for a cached file costs one stat(): when device, inode, size, modification and change
// times all still match, the bytes in memory are the bytes on disk, and the response goes
// out in one write instead of open, fstat, sendfile and close. Any change to the file
// (a write changes its ctime, a replacement its inode) misses and reloads, so the cache
// never serves stale content.

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace trident {

class FileCache {
public:
    struct Limits {
        std::size_t max_entries = 1024;
        std::uint64_t max_file_size = 64 * 1024;  ///< larger files are always sent from disk
        std::uint64_t max_total = 16 * 1024 * 1024;
    };

    /// One cached file: the stat it was read under, and its bytes.
    struct Entry {
        struct stat info {};
        std::string content;
    };

    explicit FileCache(Limits limits) : limits_(limits) {}
    FileCache() : FileCache(Limits{}) {}
    FileCache(const FileCache&) = delete;
    FileCache& operator=(const FileCache&) = delete;

    /// Whether a file of this kind and size may be cached at all.
    bool admits(const struct stat& info) const noexcept {
        return S_ISREG(info.st_mode) && std::uint64_t(info.st_size) <= limits_.max_file_size;
    }

    /// The cached bytes of `path` if `current` (a fresh stat of it) shows the same file,
    /// unchanged, as when it was read; nullptr otherwise.
    std::shared_ptr<const Entry> find(const std::string& path, const struct stat& current) const;

    /// Reads the open regular file `fd`, whose fstat is `info`, and keeps it under `path`
    /// (unless it changed within the last two seconds: then the bytes are returned for this
    /// response only). nullptr when the file is not admitted, changed while being read, or
    /// cannot be read; the caller then serves it from the descriptor as usual.
    /// `now` (seconds since the epoch; 0: the clock's) is for tests.
    std::shared_ptr<const Entry> load(const std::string& path, int fd, const struct stat& info,
                                      std::time_t now = 0);

    std::size_t size() const;

    /// Whether two stats describe the same, unchanged file.
    static bool same_file(const struct stat& a, const struct stat& b) noexcept;

private:
    Limits limits_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<const Entry>> entries_;
    std::uint64_t total_ = 0;  ///< bytes of content held
};

}  // namespace trident
