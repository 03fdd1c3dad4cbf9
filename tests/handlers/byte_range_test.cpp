#include "handlers/byte_range.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace trident {
namespace {

using Kind = ByteRanges::Kind;

struct RangeCase {
    std::string_view value;
    std::uint64_t size;
    Kind kind;
    std::uint64_t first = 0;
    std::uint64_t last = 0;
};

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::ignore:
            return "ignore";
        case Kind::satisfiable:
            return "satisfiable";
        case Kind::unsatisfiable:
            return "unsatisfiable";
    }
    return "?";
}

TEST(ByteRangeTest, EvaluatesTable) {
    const RangeCase cases[] = {
        // int-range
        {"bytes=0-0", 100, Kind::satisfiable, 0, 0},
        {"bytes=0-99", 100, Kind::satisfiable, 0, 99},
        {"bytes=10-19", 100, Kind::satisfiable, 10, 19},
        {"bytes=10-", 100, Kind::satisfiable, 10, 99},
        {"bytes=99-", 100, Kind::satisfiable, 99, 99},
        {"bytes=50-1000", 100, Kind::satisfiable, 50, 99},  // last clamped to size-1
        {"bytes=5-5", 100, Kind::satisfiable, 5, 5},
        {"bytes=100-", 100, Kind::unsatisfiable},
        {"bytes=100-200", 100, Kind::unsatisfiable},
        {"bytes=0-0", 0, Kind::unsatisfiable},
        {"bytes=0-", 0, Kind::unsatisfiable},
        // suffix-range
        {"bytes=-10", 100, Kind::satisfiable, 90, 99},
        {"bytes=-100", 100, Kind::satisfiable, 0, 99},
        {"bytes=-500", 100, Kind::satisfiable, 0, 99},  // longer than the file: all of it
        {"bytes=-1", 1, Kind::satisfiable, 0, 0},
        {"bytes=-0", 100, Kind::unsatisfiable},
        {"bytes=-5", 0, Kind::unsatisfiable},
        // unit and whitespace
        {"BYTES=1-2", 100, Kind::satisfiable, 1, 2},
        {"Bytes=1-2", 100, Kind::satisfiable, 1, 2},
        {"bytes= 1-2 ", 100, Kind::satisfiable, 1, 2},
        {" bytes=\t1-2", 100, Kind::satisfiable, 1, 2},
        {"items=1-2", 100, Kind::ignore},
        {"bytes 1-2", 100, Kind::ignore},
        {"bytes:1-2", 100, Kind::ignore},
        {"byte=1-2", 100, Kind::ignore},
        {"", 100, Kind::ignore},
        // malformed
        {"bytes=", 100, Kind::ignore},
        {"bytes=-", 100, Kind::ignore},
        {"bytes=abc", 100, Kind::ignore},
        {"bytes=1", 100, Kind::ignore},
        {"bytes=a-5", 100, Kind::ignore},
        {"bytes=1-b", 100, Kind::ignore},
        {"bytes=+1-5", 100, Kind::ignore},
        {"bytes=1 - 5", 100, Kind::ignore},
        {"bytes=1-2-3", 100, Kind::ignore},
        {"bytes=--5", 100, Kind::ignore},
        {"bytes=0x10-20", 100, Kind::ignore},
        // invalid: last before first (ignored even when first is beyond the end)
        {"bytes=20-10", 100, Kind::ignore},
        {"bytes=500-10", 100, Kind::ignore},
        // empty list elements are skipped (RFC 9110 §5.6.1.2)
        {"bytes=0-1,", 100, Kind::satisfiable, 0, 1},
        {"bytes=, ,0-1", 100, Kind::satisfiable, 0, 1},
        {"bytes=,", 100, Kind::ignore},
        // overflow
        {"bytes=18446744073709551615-", 100, Kind::unsatisfiable},  // UINT64_MAX fits
        {"bytes=18446744073709551616-", 100, Kind::ignore},
        {"bytes=0-99999999999999999999999", 100, Kind::ignore},
        {"bytes=-99999999999999999999999", 100, Kind::ignore},
        {"bytes=0-18446744073709551615", 100, Kind::satisfiable, 0, 99},
    };
    for (const RangeCase& c : cases) {
        const ByteRanges ranges = parse_byte_ranges(c.value, c.size);
        EXPECT_EQ(ranges.kind, c.kind)
            << "\"" << c.value << "\" size " << c.size << " gave " << kind_name(ranges.kind);
        if (c.kind == Kind::satisfiable && ranges.kind == Kind::satisfiable) {
            ASSERT_EQ(ranges.spans.size(), 1u) << c.value;
            EXPECT_EQ(ranges.spans[0], (ByteSpan{c.first, c.last})) << c.value;
        } else {
            EXPECT_TRUE(ranges.spans.empty()) << c.value;
        }
    }
}

TEST(ByteRangeTest, SatisfiableRangeStaysInsideTheRepresentation) {
    for (std::uint64_t size : {1u, 2u, 7u, 4096u}) {
        for (std::string_view value : {"bytes=0-", "bytes=-1", "bytes=-100000", "bytes=0-100000"}) {
            const ByteRanges ranges = parse_byte_ranges(value, size);
            ASSERT_EQ(ranges.kind, Kind::satisfiable) << value << " / " << size;
            ASSERT_EQ(ranges.spans.size(), 1u);
            EXPECT_LE(ranges.spans[0].first, ranges.spans[0].last);
            EXPECT_LT(ranges.spans[0].last, size);
        }
    }
}

std::vector<ByteSpan> spans_of(std::string_view value, std::uint64_t size,
                               const RangeLimits& limits = {}) {
    const ByteRanges ranges = parse_byte_ranges(value, size, limits);
    EXPECT_EQ(ranges.kind, Kind::satisfiable) << value << " gave " << kind_name(ranges.kind);
    return ranges.spans;
}

TEST(ByteRangeTest, SeveralRangesKeepTheirOrder) {
    EXPECT_EQ(spans_of("bytes=0-1,5-6", 100), (std::vector<ByteSpan>{{0, 1}, {5, 6}}));
    EXPECT_EQ(spans_of("bytes=50-59, 0-9", 100), (std::vector<ByteSpan>{{50, 59}, {0, 9}}));
    EXPECT_EQ(spans_of("bytes=0-1,-2", 100), (std::vector<ByteSpan>{{0, 1}, {98, 99}}));
    const ByteRanges ranges = parse_byte_ranges("bytes=0-9,20-29", 100);
    EXPECT_EQ(ranges.total_length(), 20u);
}

TEST(ByteRangeTest, OverlappingAndAdjacentRangesMerge) {
    EXPECT_EQ(spans_of("bytes=0-9,5-14", 100), (std::vector<ByteSpan>{{0, 14}}));
    EXPECT_EQ(spans_of("bytes=0-9,10-19", 100), (std::vector<ByteSpan>{{0, 19}}));  // adjacent
    EXPECT_EQ(spans_of("bytes=10-19,0-9", 100), (std::vector<ByteSpan>{{0, 19}}));  // reversed
    EXPECT_EQ(spans_of("bytes=0-9,2-3", 100), (std::vector<ByteSpan>{{0, 9}}));     // contained
    EXPECT_EQ(spans_of("bytes=0-9,11-19", 100), (std::vector<ByteSpan>{{0, 9}, {11, 19}}));
    // Apache merges into the set before only: a later overlap with an earlier part stays.
    EXPECT_EQ(spans_of("bytes=0-9,20-29,5-25", 100), (std::vector<ByteSpan>{{0, 9}, {5, 29}}));
}

TEST(ByteRangeTest, OpenRangeFromZeroIsTheWholeRepresentation) {
    // Apache: "0-" stands for everything, whatever comes before or after it.
    EXPECT_EQ(spans_of("bytes=5-6,0-,90-95", 100), (std::vector<ByteSpan>{{0, 99}}));
}

TEST(ByteRangeTest, UnsatisfiableRangesAmongOthersAreDropped) {
    EXPECT_EQ(spans_of("bytes=200-300,0-1", 100), (std::vector<ByteSpan>{{0, 1}}));
    EXPECT_EQ(parse_byte_ranges("bytes=200-300,100-", 100).kind, Kind::unsatisfiable);
    EXPECT_EQ(parse_byte_ranges("bytes=200-300,x", 100).kind, Kind::ignore);  // one invalid
}

std::string repeated(std::string_view spec, std::size_t count) {
    std::string value = "bytes=";
    for (std::size_t i = 0; i < count; ++i) {
        value += i == 0 ? "" : ",";
        value += spec;
    }
    return value;
}

TEST(ByteRangeTest, TheApacheKillerGetsTheWholeFile) {
    // CVE-2011-3192: "bytes=0-,5-0,5-1,5-2,..." asks for the file many times over.
    std::string killer = "bytes=0-";
    for (int i = 0; i < 1300; ++i) {
        killer += ",5-" + std::to_string(i);
    }
    // Apache 2.4 answers it with the open "0-": the whole file once, as one part.
    EXPECT_EQ(spans_of(killer, 1000), (std::vector<ByteSpan>{{0, 999}}));
    // From "5-5" on, the specs merge into each other past MaxRangeOverlaps.
    EXPECT_EQ(parse_byte_ranges("bytes=" + killer.substr(29), 1000).kind, Kind::ignore);

    // Overlapping specs: 21 merges are over MaxRangeOverlaps.
    EXPECT_EQ(parse_byte_ranges(repeated("1-2", 21), 100).kind, Kind::satisfiable);
    EXPECT_EQ(parse_byte_ranges(repeated("1-2", 22), 100).kind, Kind::ignore);
    // Reversals: each spec starts before the set it merges into.
    std::string reversed = "bytes=90-99";
    for (int first = 89; first >= 68; --first) {
        reversed += "," + std::to_string(first) + "-" + std::to_string(first);
    }
    EXPECT_EQ(parse_byte_ranges(reversed, 100).kind, Kind::ignore);
    // 200 disjoint parts are served; 201 are not. Specs that drop out do not count.
    std::string disjoint = "bytes=0-0";
    for (int i = 1; i < 200; ++i) {
        disjoint += "," + std::to_string(2 * i) + "-" + std::to_string(2 * i);
    }
    EXPECT_EQ(spans_of(disjoint, 1000).size(), 200u);
    EXPECT_EQ(parse_byte_ranges(disjoint + ",999-999", 1000).kind, Kind::ignore);
    EXPECT_EQ(spans_of(disjoint + ",5000-6000,,", 1000).size(), 200u);
}

TEST(ByteRangeTest, RangesSummingPastTheFileGetTheWholeFile) {
    // Disjoint in order, no merge, but together longer than the representation.
    EXPECT_EQ(parse_byte_ranges("bytes=0-59,-50", 100).kind, Kind::satisfiable);
    // 0-59, then 10-79 (70-79 merged with 10-69): 130 bytes of a 100-byte file.
    EXPECT_EQ(spans_of("bytes=0-59,70-79", 100), (std::vector<ByteSpan>{{0, 59}, {70, 79}}));
    EXPECT_EQ(parse_byte_ranges("bytes=0-59,70-79,10-69", 100).kind, Kind::ignore);
    RangeLimits tight;
    tight.max_overlaps = 0;
    EXPECT_EQ(parse_byte_ranges("bytes=0-9,5-14", 100, tight).kind, Kind::ignore);
}

TEST(ByteRangeTest, RandomFieldsNeverLeaveTheRepresentationNorExceedIt) {
    // Seeded, bounded: 20,000 fields of up to 40 specs built from digits, dashes, commas
    // and spaces. Whatever they say, a satisfiable answer stays inside the file, its parts
    // never add up past its length, and there are never more than 200 of them.
    std::mt19937 random(20261124u);
    const std::string alphabet = "0123456789-, ";
    for (int round = 0; round < 20000; ++round) {
        const std::uint64_t size = random() % 300;
        std::string value = "bytes=";
        const std::size_t length = random() % 120;
        for (std::size_t i = 0; i < length; ++i) {
            value += alphabet[random() % alphabet.size()];
        }
        const ByteRanges ranges = parse_byte_ranges(value, size);
        if (ranges.kind != Kind::satisfiable) {
            EXPECT_TRUE(ranges.spans.empty()) << value;
            continue;
        }
        ASSERT_FALSE(ranges.spans.empty()) << value;
        EXPECT_LE(ranges.spans.size(), 200u) << value;
        EXPECT_LE(ranges.total_length(), size) << value;
        for (const ByteSpan& span : ranges.spans) {
            EXPECT_LE(span.first, span.last) << value;
            EXPECT_LT(span.last, size) << value;
        }
    }
}

}  // namespace
}  // namespace trident
