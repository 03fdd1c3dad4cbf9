#include "handlers/mime_types.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace trident {
namespace {

TEST(MimeTypesTest, BuiltinTableCoversCommonWebTypes) {
    const MimeTypes types;
    EXPECT_EQ(types.lookup("index.html"), "text/html");
    EXPECT_EQ(types.lookup("page.htm"), "text/html");
    EXPECT_EQ(types.lookup("site.css"), "text/css");
    EXPECT_EQ(types.lookup("app.js"), "text/javascript");
    EXPECT_EQ(types.lookup("mod.mjs"), "text/javascript");
    EXPECT_EQ(types.lookup("data.json"), "application/json");
    EXPECT_EQ(types.lookup("readme.txt"), "text/plain");
    EXPECT_EQ(types.lookup("logo.svg"), "image/svg+xml");
    EXPECT_EQ(types.lookup("a.png"), "image/png");
    EXPECT_EQ(types.lookup("a.jpg"), "image/jpeg");
    EXPECT_EQ(types.lookup("a.jpeg"), "image/jpeg");
    EXPECT_EQ(types.lookup("a.webp"), "image/webp");
    EXPECT_EQ(types.lookup("a.avif"), "image/avif");
    EXPECT_EQ(types.lookup("doc.pdf"), "application/pdf");
    EXPECT_EQ(types.lookup("m.wasm"), "application/wasm");
    EXPECT_EQ(types.lookup("f.woff2"), "font/woff2");
    EXPECT_EQ(types.lookup("v.mp4"), "video/mp4");
    EXPECT_EQ(types.lookup("s.mp3"), "audio/mpeg");
    EXPECT_EQ(types.lookup("a.tar"), "application/x-tar");
    EXPECT_EQ(types.lookup("a.gz"), "application/gzip");
    EXPECT_EQ(types.lookup("t.csv"), "text/csv");
    EXPECT_EQ(types.lookup("n.md"), "text/markdown");
    EXPECT_GT(types.size(), 40u);
}

TEST(MimeTypesTest, LooksUpTheLastExtensionOfTheLastSegmentCaseInsensitively) {
    const MimeTypes types;
    EXPECT_EQ(types.lookup("INDEX.HTML"), "text/html");
    EXPECT_EQ(types.lookup("Photo.JpG"), "image/jpeg");
    EXPECT_EQ(types.lookup("archive.tar.gz"), "application/gzip");
    EXPECT_EQ(types.lookup("/static/v1.2/app.css"), "text/css");
    EXPECT_EQ(types.lookup("/dir.html/file"), "application/octet-stream");
    EXPECT_EQ(types.lookup("README"), "application/octet-stream");
    EXPECT_EQ(types.lookup("trailing."), "application/octet-stream");
    EXPECT_EQ(types.lookup(".html"), "application/octet-stream");  // a hidden file's name
    EXPECT_EQ(types.lookup("file.unknownext"), "application/octet-stream");
    EXPECT_EQ(types.lookup(""), "application/octet-stream");
    EXPECT_EQ(types.lookup("x." + std::string(200, 'a')), "application/octet-stream");
}

class MimeTypesFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        char name[] = "/tmp/trident-mime-XXXXXX";
        const int fd = ::mkstemp(name);
        ASSERT_GE(fd, 0);
        ::close(fd);
        path_ = name;
    }
    void TearDown() override { ::unlink(path_.c_str()); }

    void write(const std::string& text) {
        std::ofstream out(path_);
        out << text;
    }

    std::string path_;
};

TEST_F(MimeTypesFileTest, FileEntriesOverlayTheBuiltinTable) {
    write(
        "# a comment line\n"
        "\n"
        "application/x-trident\ttrd TRX  # trailing comment ignored\n"
        "text/x-override html\n"
        "application/registration-only\n"
        "application/cwl+json cwl.json\n"
        "notatype foo\n");
    const MimeTypes types = MimeTypes::load(path_);
    EXPECT_EQ(types.lookup("a.trd"), "application/x-trident");
    EXPECT_EQ(types.lookup("a.trx"), "application/x-trident");  // stored lower-case
    EXPECT_EQ(types.lookup("a.TRX"), "application/x-trident");
    EXPECT_EQ(types.lookup("a.html"), "text/x-override");  // the file wins
    EXPECT_EQ(types.lookup("a.css"), "text/css");          // the built-in table remains
    EXPECT_EQ(types.lookup("a.comment"), "application/octet-stream");
    EXPECT_EQ(types.lookup("a.foo"), "application/octet-stream");  // no '/' → not a type
    EXPECT_EQ(types.lookup("a.cwl.json"), "application/json");
}

TEST_F(MimeTypesFileTest, MissingFileLeavesTheBuiltinTable) {
    const MimeTypes builtin;
    const MimeTypes types = MimeTypes::load(path_ + ".does-not-exist");
    EXPECT_EQ(types.size(), builtin.size());
    EXPECT_EQ(types.lookup("a.html"), "text/html");
}

TEST(MimeTypesTest, SystemFileLoadsWhenPresent) {
    if (::access("/etc/mime.types", R_OK) != 0) {
        GTEST_SKIP() << "no readable /etc/mime.types";
    }
    const MimeTypes builtin;
    const MimeTypes types = MimeTypes::load();
    EXPECT_GT(types.size(), builtin.size());
    EXPECT_EQ(types.lookup("index.html"), "text/html");
    EXPECT_EQ(types.lookup("a.png"), "image/png");
}

}  // namespace
}  // namespace trident
