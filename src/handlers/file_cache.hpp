#pragma once

// What the static handler learnt answering a request, kept so that the next request for
// the same path skips the work: which file it resolved to (the directory index, the
// precompressed siblings), the file's stat, its validators and 200 fields, and for small
// files their bytes. A larger file keeps the rest of its entry and is read from disk at
// each use (Entry::on_disk), as nginx's open_file_cache and lighttpd's stat cache keep
// what they learnt of a file but not its bytes.
//
// An entry is used only while a stat() of the file and of its directory both match what
// was recorded: device, inode, size, modification and change times. A write to the file
// moves its ctime, a replacement its inode; adding or removing a file in the directory (a
// new index, a new ".gz" sibling) moves the directory's times. So a hit costs at most two
// stat calls instead of opening, checking and closing the directory, the file and its
// siblings. Within `Limits::valid` of the last check an entry is trusted without any
// (lighttpd trusts a stat for the rest of its second, nginx's open_file_cache_valid for a
// minute): that is how stale a body may be, and with 0 every use checks, so an edit is
// seen by the very next request. An on-disk entry's file is never stat'ed here: the caller
// opens it to send it anyway, and compares the descriptor's fstat() with the entry, so its
// body and fields are always the file's as it is now. When the directory cannot change the
// body (a file named by its path, for a client that takes no coding), the file's stat
// alone decides, and the directory is looked at once a second: a new sibling's Vary header
// is then up to a second late for such clients. Files or directories changed in the last
// two seconds are not kept at all: file times tick coarsely, and two same-size writes
// within one tick would otherwise look alike (git's "racy clean" rule).

#include <sys/stat.h>

#include <atomic>
#include <chrono>
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
        /// Larger files keep an entry without their bytes, and are sent from disk.
        std::uint64_t max_file_size = 64 * 1024;
        std::uint64_t max_total = 16 * 1024 * 1024;
        /// How long a hit may go without checking the directory when the caller says its
        /// listing cannot change the answer: how late Vary may follow a new sibling.
        std::chrono::milliseconds directory_recheck{1000};
        /// How long after a check an entry is used without looking at the disk again: how
        /// late an edit may be seen. 0 checks on every use.
        std::chrono::milliseconds valid{0};
    };

    /// One resolved request path.
    struct Entry {
        std::string file_path;  ///< absolute path of the file served
        struct stat file_info {};
        std::string dir_path;  ///< its directory, whose listing chose index and siblings
        struct stat dir_info {};
        std::string content;            ///< the file's bytes, unless on_disk
        std::string_view content_type;  ///< from the MIME table, which outlives the cache
        std::string etag;               ///< its entity tag, as sent
        /// The fields of a 200 for it, serialised ("Name: value\r\n" each).
        std::string fields_200;
        bool varies = false;  ///< a precompressed sibling exists: Vary applies
        bool has_br = false;  ///< which siblings exist
        bool has_gzip = false;
        /// Larger than Limits::max_file_size: the bytes are not held, and the caller opens
        /// file_path and checks its fstat() against file_info at every use (find()).
        bool on_disk = false;
    };

    explicit FileCache(Limits limits) : limits_(limits) {}
    FileCache() : FileCache(Limits{}) {}
    FileCache(const FileCache&) = delete;
    FileCache& operator=(const FileCache&) = delete;

    /// Whether a file of this kind may be cached at all: any regular file, whose bytes are
    /// held when it is no larger than Limits::max_file_size.
    static bool admits(const struct stat& info) noexcept { return S_ISREG(info.st_mode); }

    /// The entry for `key` if its file and its directory are, by a stat of each no older
    /// than `valid`, the very ones it was made from, unchanged; nullptr otherwise, and a
    /// changed entry is dropped. Without `check_directory` (the caller knows the listing
    /// cannot change the body: the path named a file, not a directory's index, and the
    /// client takes no content coding a sibling could offer) the directory is checked only
    /// once per `directory_recheck` (or `valid`, if longer). The file of an on-disk entry is
    /// not stat'ed: the caller opens it, and drop()s the entry if the descriptor's fstat()
    /// is not same_file() as its file_info.
    std::shared_ptr<const Entry> find(const std::string& key, bool check_directory = true);

    /// Keeps `entry` (whose paths and stats the caller filled in from the open regular file
    /// `fd`) under `key`, with the file's bytes read from `fd` unless it is larger than
    /// Limits::max_file_size (then on_disk). Returns whether it is kept: not when the file
    /// changed while being read or in the last two seconds, or is no regular file.
    /// `now` (seconds since the epoch; 0: the clock's) is for tests.
    bool store(const std::string& key, Entry entry, int fd, std::time_t now = 0);

    /// Removes the entry under `key` if it is still `entry` (the caller found it out of date).
    void drop(const std::string& key, const Entry& entry) noexcept;

    std::size_t size() const;

    /// Whether two stats describe the same, unchanged file or directory.
    static bool same_file(const struct stat& a, const struct stat& b) noexcept;

private:
    struct Kept {
        explicit Kept(Entry e, std::int64_t now)
            : entry(std::move(e)), file_checked(now), directory_checked(now) {}
        Entry entry;
        std::atomic<std::int64_t> file_checked;       ///< steady clock, nanoseconds
        std::atomic<std::int64_t> directory_checked;  ///< steady clock, nanoseconds
    };

    Limits limits_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Kept>> entries_;
    std::uint64_t total_ = 0;  ///< bytes of content held
};

}  // namespace trident
