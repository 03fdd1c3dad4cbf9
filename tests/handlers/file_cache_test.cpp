#include "handlers/file_cache.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

namespace trident {
namespace {

namespace fs = std::filesystem;

class FileCacheTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/trident-file-cache-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }

    /// Writes `bytes` to `name` in the test folder; returns its path.
    std::string write(const std::string& name, const std::string& bytes) {
        const std::string path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary) << bytes;
        return path;
    }
    static struct stat stat_of(const std::string& path) {
        struct stat info {};
        EXPECT_EQ(::stat(path.c_str(), &info), 0);
        return info;
    }

    fs::path dir_;
};

/// A clock reading well after `path` was last changed: the file has settled.
std::time_t later_than(const struct stat& info) {
    return std::max(info.st_ctim.tv_sec, info.st_mtim.tv_sec) + 10;
}

TEST_F(FileCacheTest, KeepsASettledFileAndFindsItWhileUnchanged) {
    const std::string path = write("a.html", "<p>hello</p>");
    FileCache cache;
    const struct stat info = stat_of(path);
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    const auto entry = cache.load(path, fd, info, later_than(info));
    ::close(fd);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->content, "<p>hello</p>");
    EXPECT_EQ(cache.size(), 1u);
    EXPECT_EQ(cache.find(path, stat_of(path)), entry);
    EXPECT_EQ(cache.find(path + "x", info), nullptr);

    write("a.html", "<p>hello, world</p>");  // changed in place: size and ctime move
    EXPECT_EQ(cache.find(path, stat_of(path)), nullptr);
}

TEST_F(FileCacheTest, AFileJustChangedIsServedButNotKept) {
    const std::string path = write("b.html", "fresh");
    FileCache cache;
    const struct stat info = stat_of(path);
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    // Its times may not move on a second write within the same tick, so keeping it could
    // serve stale bytes later.
    const auto entry = cache.load(path, fd, info, info.st_ctim.tv_sec);
    ::close(fd);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->content, "fresh");
    EXPECT_EQ(cache.size(), 0u);
}

TEST_F(FileCacheTest, AStatThatDisagreesWithTheDescriptorIsNotTrusted) {
    const std::string path = write("c.txt", "12345");
    FileCache cache;
    struct stat info = stat_of(path);
    info.st_ctim.tv_nsec ^= 1;  // as if the file changed between the stat and the read
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(cache.load(path, fd, info, later_than(info)), nullptr);
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
        const std::string path = write("f" + std::to_string(i), "12345");
        const struct stat info = stat_of(path);
        const int fd = ::open(path.c_str(), O_RDONLY);
        ASSERT_GE(fd, 0);
        EXPECT_NE(cache.load(path, fd, info, later_than(info)), nullptr);  // served always
        ::close(fd);
        EXPECT_LE(cache.size(), 2u);  // two entries of 5 bytes fit 12; a third does not
    }
    EXPECT_EQ(cache.size(), 2u);

    const std::string big = write("big", "123456789");
    const struct stat info = stat_of(big);
    EXPECT_FALSE(cache.admits(info));
    const int fd = ::open(big.c_str(), O_RDONLY);
    EXPECT_EQ(cache.load(big, fd, info, later_than(info)), nullptr);  // over max_file_size
    ::close(fd);
}

TEST_F(FileCacheTest, RefusesDirectories) {
    FileCache cache;
    EXPECT_FALSE(cache.admits(stat_of(dir_.string())));
}

}  // namespace
}  // namespace trident
