#include "handlers/file_cache.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace trident {
namespace {

namespace fs = std::filesystem;

struct stat stat_of(const std::string& path) {
    struct stat info {};
    EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
    return info;
}

/// A clock reading well after both stats: the file and its folder have settled.
std::time_t later_than(const struct stat& a, const struct stat& b) {
    return std::max({a.st_ctim.tv_sec, a.st_mtim.tv_sec, b.st_ctim.tv_sec, b.st_mtim.tv_sec}) + 10;
}

class FileCacheTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/trident-file-cache-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write(const std::string& name, const std::string& bytes) {
        const std::string path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
        return path;
    }

    /// An entry for `path` as the static handler builds it.
    FileCache::Entry entry_for(const std::string& path) {
        FileCache::Entry entry;
        entry.file_path = path;
        entry.file_info = stat_of(path);
        entry.dir_path = dir_.string();
        entry.dir_info = stat_of(entry.dir_path);
        entry.content_type = "text/html";
        return entry;
    }

    /// Stores `path` under `key` with a clock after its last change; whether it was kept.
    /// Caches "a.html" under "/a.html" in `cache`, then, once file times have ticked, adds
    /// `sibling` beside it: only the directory changes.
    void cache_then_add_sibling(FileCache& cache, const std::string& sibling) {
        ASSERT_TRUE(store(cache, "/a.html", write("a.html", "<p>hello</p>")));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        write(sibling, "zz");
    }

    bool store(FileCache& cache, const std::string& key, const std::string& path) {
        FileCache::Entry entry = entry_for(path);
        const std::time_t now = later_than(entry.file_info, entry.dir_info);
        const int fd = ::open(path.c_str(), O_RDONLY);
        EXPECT_GE(fd, 0);
        const bool kept = cache.store(key, std::move(entry), fd, now);
        ::close(fd);
        return kept;
    }

    fs::path dir_;
};

TEST_F(FileCacheTest, KeepsASettledFileAndFindsItWhileUnchanged) {
    const std::string path = write("a.html", "<p>hello</p>");
    FileCache cache;
    ASSERT_TRUE(store(cache, "/a.html", path));
    EXPECT_EQ(cache.size(), 1u);
    const auto entry = cache.find("/a.html");
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->content, "<p>hello</p>");
    EXPECT_EQ(entry->content_type, "text/html");
    EXPECT_EQ(cache.find("/b.html"), nullptr);
}

TEST_F(FileCacheTest, AFileEditedInPlaceMisses) {
    const std::string path = write("a.html", "<p>hello</p>");
    FileCache cache;
    ASSERT_TRUE(store(cache, "/a.html", path));
    // File times tick every few milliseconds: let one pass, as the two-second rule ensures
    // for every file the cache really keeps.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ofstream(path, std::ios::binary | std::ios::trunc) << "<p>HELLO</p>";  // same size
    EXPECT_EQ(cache.find("/a.html"), nullptr);
}

TEST_F(FileCacheTest, AReplacedFileMisses) {
    const std::string path = write("a.html", "<p>hello</p>");
    FileCache cache;
    ASSERT_TRUE(store(cache, "/a.html", path));
    const std::string other = write("next.html", "<p>howdy</p>");
    fs::rename(other, path);  // a new inode at the same name, as deploy tools do
    EXPECT_EQ(cache.find("/a.html"), nullptr);
}

TEST_F(FileCacheTest, ANewFileInTheDirectoryMisses) {
    const std::string path = write("index.html", "<p>hello</p>");
    FileCache cache;
    ASSERT_TRUE(store(cache, "/", path));
    // A new ".gz" sibling, or a new index file, changes what the directory resolves to.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    write("index.html.gz", "zz");
    EXPECT_EQ(cache.find("/"), nullptr);
}

TEST_F(FileCacheTest, ADirectoryTheAnswerDoesNotDependOnIsCheckedOncePerInterval) {
    FileCache::Limits limits;
    limits.directory_recheck = std::chrono::milliseconds(200);
    FileCache cache(limits);
    ASSERT_NO_FATAL_FAILURE(cache_then_add_sibling(cache, "a.html.gz"));
    // A client that takes no coding gets the same bytes either way: the file's stat decides.
    EXPECT_NE(cache.find("/a.html", false), nullptr);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    // Once the interval passed, the directory is looked at again, and the entry goes.
    EXPECT_EQ(cache.find("/a.html", false), nullptr);
    EXPECT_EQ(cache.size(), 0u);
}

TEST_F(FileCacheTest, WithinItsValidityAnEntryIsUsedWithoutAStat) {
    FileCache::Limits limits;
    limits.valid = std::chrono::milliseconds(300);
    FileCache cache(limits);
    const std::string path = write("a.html", "<p>hello</p>");
    ASSERT_TRUE(store(cache, "/a.html", path));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    write("a.html", "<p>HELLO</p>");  // same size, edited in place
    write("a.html.gz", "zz");         // and the directory changed too
    // Inside the period neither the file nor, even when it matters, the directory is read.
    const auto hit = cache.find("/a.html", true);
    ASSERT_NE(hit, nullptr);
    EXPECT_EQ(hit->content, "<p>hello</p>");
    std::this_thread::sleep_for(std::chrono::milliseconds(350));
    // Past it, the next use checks, finds the edit and drops the entry.
    EXPECT_EQ(cache.find("/a.html", true), nullptr);
    EXPECT_EQ(cache.size(), 0u);
}

TEST_F(FileCacheTest, WithoutValidityEveryUseChecks) {
    FileCache cache;  // valid 0, as static.file_cache_valid: 0 configures it
    const std::string path = write("a.html", "<p>hello</p>");
    ASSERT_TRUE(store(cache, "/a.html", path));
    ASSERT_NE(cache.find("/a.html", false), nullptr);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    write("a.html", "<p>HELLO</p>");
    EXPECT_EQ(cache.find("/a.html", false), nullptr);
}

TEST_F(FileCacheTest, AMissForAChangedDirectoryDropsTheEntry) {
    FileCache cache;
    ASSERT_NO_FATAL_FAILURE(cache_then_add_sibling(cache, "a.html.br"));
    EXPECT_EQ(cache.find("/a.html", true), nullptr);  // a client that takes br would miss it
    // ... and so the next client that takes no coding resolves the name afresh, with Vary.
    EXPECT_EQ(cache.find("/a.html", false), nullptr);
    EXPECT_EQ(cache.size(), 0u);
}

TEST_F(FileCacheTest, ADeletedFileMisses) {
    const std::string path = write("a.html", "<p>hello</p>");
    FileCache cache;
    ASSERT_TRUE(store(cache, "/a.html", path));
    fs::remove(path);
    EXPECT_EQ(cache.find("/a.html"), nullptr);
}

TEST_F(FileCacheTest, AFileJustChangedIsNotKept) {
    const std::string path = write("b.html", "fresh");
    FileCache cache;
    FileCache::Entry entry = entry_for(path);
    const std::time_t now = entry.file_info.st_ctim.tv_sec;  // changed this very second
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_FALSE(cache.store("/b.html", std::move(entry), fd, now));
    ::close(fd);
    EXPECT_EQ(cache.size(), 0u);
}

TEST_F(FileCacheTest, AStatThatDisagreesWithTheDescriptorIsNotTrusted) {
    const std::string path = write("c.txt", "12345");
    FileCache cache;
    FileCache::Entry entry = entry_for(path);
    entry.file_info.st_ctim.tv_nsec ^= 1;  // as if the file changed between stat and read
    const std::time_t now = later_than(entry.file_info, entry.dir_info);
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_FALSE(cache.store("/c.txt", std::move(entry), fd, now));
    ::close(fd);
    EXPECT_EQ(cache.size(), 0u);
}

TEST_F(FileCacheTest, SameFileComparesIdentityAndTimes) {
    const struct stat before = stat_of(write("d.txt", "first"));
    struct stat after = before;
    EXPECT_TRUE(FileCache::same_file(before, after));
    after.st_ctim.tv_nsec ^= 1;  // what a write in another tick does to the ctime
    EXPECT_FALSE(FileCache::same_file(before, after));
    after = before;
    after.st_ino += 1;  // replaced by rename
    EXPECT_FALSE(FileCache::same_file(before, after));
    after = before;
    after.st_size += 1;
    EXPECT_FALSE(FileCache::same_file(before, after));
}

TEST_F(FileCacheTest, BoundsEntriesBytesAndFileSize) {
    FileCache cache(FileCache::Limits{.max_entries = 2, .max_file_size = 8, .max_total = 12});
    for (int i = 0; i < 4; ++i) {
        const std::string name = "f" + std::to_string(i);
        EXPECT_TRUE(store(cache, "/" + name, write(name, "12345")));
        EXPECT_LE(cache.size(), 2u);  // two entries of 5 bytes fit 12; a third does not
    }
    EXPECT_EQ(cache.size(), 2u);

    EXPECT_FALSE(FileCache::admits(stat_of(dir_.string())));
}

// A file over max_file_size keeps its entry but not its bytes: they count against no
// limit but the number of entries, and its file is the caller's to check at each use.
TEST_F(FileCacheTest, ALargeFileKeepsItsEntryButNotItsBytes) {
    FileCache cache(FileCache::Limits{.max_entries = 3, .max_file_size = 8, .max_total = 12});
    // All written first: a file added to the folder later would change what each entry
    // recorded of it.
    const std::string small = write("small", "12345");
    const std::string big = write("big", "123456789");
    const std::string other = write("other", "1234567");
    EXPECT_TRUE(store(cache, "/small", small));
    EXPECT_TRUE(FileCache::admits(stat_of(big)));
    ASSERT_TRUE(store(cache, "/big", big));
    EXPECT_TRUE(store(cache, "/other", other));  // 5 + 7 bytes fit 12
    EXPECT_EQ(cache.size(), 3u);

    const auto entry = cache.find("/big");
    ASSERT_NE(entry, nullptr);
    EXPECT_TRUE(entry->on_disk);
    EXPECT_TRUE(entry->content.empty());
    EXPECT_FALSE(cache.find("/small")->on_disk);

    // Edited in place, it is still found: the caller's fstat() of the file it opens tells,
    // and it drops the entry.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    write("big", "987654321");
    const auto stale = cache.find("/big");
    ASSERT_EQ(stale, entry);
    EXPECT_FALSE(FileCache::same_file(stale->file_info, stat_of(big)));
    cache.drop("/big", *stale);
    EXPECT_EQ(cache.find("/big"), nullptr);
    EXPECT_EQ(cache.size(), 2u);
}

TEST_F(FileCacheTest, DropRemovesOnlyTheEntryItWasGiven) {
    FileCache cache;
    const std::string path = write("a.html", "<p>hello</p>");
    ASSERT_TRUE(store(cache, "/a.html", path));
    const auto first = cache.find("/a.html");
    ASSERT_NE(first, nullptr);
    ASSERT_TRUE(store(cache, "/a.html", path));  // stored again, by another thread say
    cache.drop("/a.html", *first);               // the old one: not there any more
    const auto second = cache.find("/a.html");
    ASSERT_NE(second, nullptr);
    EXPECT_NE(second, first);
    cache.drop("/a.html", *second);
    EXPECT_EQ(cache.find("/a.html"), nullptr);
}

}  // namespace
}  // namespace trident
