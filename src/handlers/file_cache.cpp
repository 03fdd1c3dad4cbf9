#include "handlers/file_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace trident {

namespace {
constexpr std::time_t kSettleSeconds = 2;
}  // namespace

bool FileCache::same_file(const struct stat& a, const struct stat& b) noexcept {
    // ctime moves on every write and metadata change, even one that restores the mtime.
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
           a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

std::shared_ptr<const FileCache::Entry> FileCache::find(const std::string& path,
                                                        const struct stat& current) const {
    std::lock_guard lock(mutex_);
    const auto found = entries_.find(path);
    if (found == entries_.end() || !same_file(found->second->info, current)) {
        return nullptr;
    }
    return found->second;
}

std::shared_ptr<const FileCache::Entry> FileCache::load(const std::string& path, int fd,
                                                        const struct stat& info, std::time_t now) {
    if (!admits(info)) {
        return nullptr;
    }
    auto entry = std::make_shared<Entry>();
    entry->info = info;
    entry->content.resize(std::size_t(info.st_size));
    std::size_t done = 0;
    while (done < entry->content.size()) {
        const ssize_t n =
            ::pread(fd, entry->content.data() + done, entry->content.size() - done, off_t(done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return nullptr;  // an error, or the file shrank: serve it from the descriptor
        }
        done += std::size_t(n);
    }
    // Read under the same identity it was stat'ed with: a writer racing the read would
    // have moved the ctime.
    struct stat after {};
    if (::fstat(fd, &after) != 0 || !same_file(info, after)) {
        return nullptr;
    }

    // File times tick coarsely (a few ms), so two same-size writes in one tick leave equal
    // stats. A file changed in the last couple of seconds is served but not kept (git's
    // "racy clean" rule): any later change to a kept file shows in its times.
    if (now == 0) {
        now = std::time(nullptr);
    }
    if (now - info.st_ctim.tv_sec < kSettleSeconds || now - info.st_mtim.tv_sec < kSettleSeconds) {
        return entry;
    }

    std::lock_guard lock(mutex_);
    if (const auto old = entries_.find(path); old != entries_.end()) {
        total_ -= old->second->content.size();
        entries_.erase(old);
    }
    // Full: make room by dropping arbitrary entries. A site with more small files than the
    // cache holds keeps working, only with some files read from disk again.
    while (!entries_.empty() && (entries_.size() >= limits_.max_entries ||
                                 total_ + entry->content.size() > limits_.max_total)) {
        total_ -= entries_.begin()->second->content.size();
        entries_.erase(entries_.begin());
    }
    if (entries_.size() < limits_.max_entries &&
        total_ + entry->content.size() <= limits_.max_total) {
        total_ += entry->content.size();
        entries_.emplace(path, entry);
    }
    return entry;
}

std::size_t FileCache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace trident
