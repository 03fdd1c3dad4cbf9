#include "handlers/content_coding.hpp"

#include <gtest/gtest.h>

namespace trident {
namespace {

using C = ContentCoding;

C choose(std::string_view accept, bool has_br = true, bool has_gzip = true) {
    return choose_content_coding(accept, true, has_br, has_gzip);
}

TEST(ContentCodingTest, PrefersBrOnATie) {
    EXPECT_EQ(choose("gzip, deflate, br"), C::br);
    EXPECT_EQ(choose("br, gzip"), C::br);
    EXPECT_EQ(choose("*"), C::br);
}

TEST(ContentCodingTest, HonoursQValues) {
    EXPECT_EQ(choose("br;q=0.5, gzip"), C::gzip);
    EXPECT_EQ(choose("br;q=0.5, gzip;q=0.8"), C::gzip);
    EXPECT_EQ(choose("br;q=0.9, gzip;q=0.8"), C::br);
    EXPECT_EQ(choose("br ; q=1.000, gzip"), C::br);
    EXPECT_EQ(choose("gzip;Q=0.3"), C::gzip);
    EXPECT_EQ(choose("*;q=0.2, br;q=0.1"), C::gzip);  // gzip takes the weight of *
    // An identity ranked above every coding wins; unnamed it has no weight to compare.
    EXPECT_EQ(choose("identity;q=1, gzip;q=0.5, br;q=0.4"), C::identity);
    EXPECT_EQ(choose("gzip;q=0.5"), C::gzip);
}

TEST(ContentCodingTest, QZeroRefuses) {
    EXPECT_EQ(choose("br;q=0, gzip"), C::gzip);
    EXPECT_EQ(choose("br;q=0.000, gzip;q=0"), C::identity);
    EXPECT_EQ(choose("*;q=0"), C::identity);
    EXPECT_EQ(choose("*;q=0, gzip"), C::gzip);
}

TEST(ContentCodingTest, OnlyExistingSiblingsAreChosen) {
    EXPECT_EQ(choose("br, gzip", false, true), C::gzip);
    EXPECT_EQ(choose("br", false, true), C::identity);
    EXPECT_EQ(choose("gzip", true, false), C::identity);
    EXPECT_EQ(choose("x-gzip", false, true), C::gzip);  // RFC 9110 §8.4.1.3 alias
}

TEST(ContentCodingTest, NoFieldOrEmptyFieldMeansIdentity) {
    EXPECT_EQ(choose_content_coding("", false, true, true), C::identity);
    EXPECT_EQ(choose(""), C::identity);
    EXPECT_EQ(choose("identity"), C::identity);
    EXPECT_EQ(choose("deflate, zstd"), C::identity);
}

TEST(ContentCodingTest, MalformedWeightsNeverAccept) {
    for (std::string_view value :
         {"br;q=2", "br;q=1.5", "br;q=0.0001", "br;q=abc", "br;q=", "br;level=1", "br;q=-1"}) {
        EXPECT_EQ(choose(value, true, false), C::identity) << value;
    }
}

TEST(ContentCodingTest, NamesAndSuffixes) {
    EXPECT_EQ(content_coding_name(C::br), "br");
    EXPECT_EQ(content_coding_name(C::gzip), "gzip");
    EXPECT_EQ(content_coding_name(C::identity), "");
    EXPECT_EQ(content_coding_suffix(C::br), ".br");
    EXPECT_EQ(content_coding_suffix(C::gzip), ".gz");
}

}  // namespace
}  // namespace trident
