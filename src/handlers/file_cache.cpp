#include "handlers/file_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace trident {

namespace {

constexpr std::time_t kSettleSeconds = 2;

bool settled(const struct stat& info, std::time_t now) noexcept {
    return now - info.st_ctim.tv_sec >= kSettleSeconds &&
           now - info.st_mtim.tv_sec >= kSettleSeconds;
}

bool unchanged(const std::string& path, const struct stat& recorded) noexcept {
    struct stat now {};
    return ::stat(path.c_str(), &now) == 0 && FileCache::same_file(recorded, now);
}

std::int64_t steady_nanoseconds() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

bool FileCache::same_file(const struct stat& a, const struct stat& b) noexcept {
    // ctime moves on every write and metadata change, even one that restores the mtime.
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
           a.st_mode == b.st_mode && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
           a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
           a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

std::shared_ptr<const FileCache::Entry> FileCache::find(const std::string& key,
                                                        bool check_directory) {
    std::shared_ptr<Kept> kept;
    {
        std::lock_guard lock(mutex_);
        const auto found = entries_.find(key);
        if (found == entries_.end()) {
            return nullptr;
        }
        kept = found->second;
    }
    // Checked outside the lock: system calls must not serialise the other threads.
    const std::int64_t now = steady_nanoseconds();
    const std::int64_t valid = std::chrono::nanoseconds(limits_.valid).count();
    // Another thread may have stored a later clock reading than `now`: a negative age. With
    // `valid` 0 every use checks regardless.
    const auto due = [&](const std::atomic<std::int64_t>& checked, std::int64_t interval) {
        return interval == 0 || now - checked.load(std::memory_order_relaxed) >= interval;
    };
    // An on-disk entry's file is the caller's to check, on the descriptor it sends from.
    const bool file = !kept->entry.on_disk && due(kept->file_checked, valid);
    const bool directory =
        due(kept->directory_checked,
            check_directory
                ? valid
                : std::max(valid, std::chrono::nanoseconds(limits_.directory_recheck).count()));
    if ((file && !unchanged(kept->entry.file_path, kept->entry.file_info)) ||
        (directory && !unchanged(kept->entry.dir_path, kept->entry.dir_info))) {
        drop(key, kept->entry);
        return nullptr;
    }
    if (file) {
        kept->file_checked.store(now, std::memory_order_relaxed);
    }
    if (directory) {
        kept->directory_checked.store(now, std::memory_order_relaxed);
    }
    return {kept, &kept->entry};
}

bool FileCache::store(const std::string& key, Entry entry, int fd, std::time_t now) {
    if (!admits(entry.file_info)) {
        return false;
    }
    if (now == 0) {
        now = std::time(nullptr);
    }
    if (!settled(entry.file_info, now) || !settled(entry.dir_info, now)) {
        return false;
    }
    entry.on_disk = std::uint64_t(entry.file_info.st_size) > limits_.max_file_size;
    entry.content.resize(entry.on_disk ? 0 : std::size_t(entry.file_info.st_size));
    std::size_t done = 0;
    while (done < entry.content.size()) {
        const ssize_t n =
            ::pread(fd, entry.content.data() + done, entry.content.size() - done, off_t(done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;  // an error, or the file shrank
        }
        done += std::size_t(n);
    }
    // Read under the identity it was stat'ed with: a writer racing the read moved the ctime.
    struct stat after {};
    if (::fstat(fd, &after) != 0 || !same_file(entry.file_info, after)) {
        return false;
    }

    auto kept = std::make_shared<Kept>(std::move(entry), steady_nanoseconds());
    std::lock_guard lock(mutex_);
    if (const auto old = entries_.find(key); old != entries_.end()) {
        total_ -= old->second->entry.content.size();
        entries_.erase(old);
    }
    // Full: make room by dropping arbitrary entries. A site with more small files than the
    // cache holds keeps working, only with some of them read from disk again.
    const std::size_t bytes = kept->entry.content.size();
    while (!entries_.empty() &&
           (entries_.size() >= limits_.max_entries || total_ + bytes > limits_.max_total)) {
        total_ -= entries_.begin()->second->entry.content.size();
        entries_.erase(entries_.begin());
    }
    if (entries_.size() >= limits_.max_entries || total_ + bytes > limits_.max_total) {
        return false;  // larger than the whole cache
    }
    total_ += bytes;
    entries_.emplace(key, std::move(kept));
    return true;
}

void FileCache::drop(const std::string& key, const Entry& entry) noexcept {
    std::lock_guard lock(mutex_);
    if (const auto found = entries_.find(key);
        found != entries_.end() && &found->second->entry == &entry) {
        total_ -= found->second->entry.content.size();
        entries_.erase(found);
    }
}

std::size_t FileCache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace trident
