#include "handlers/byte_range.hpp"

#include <gtest/gtest.h>

namespace trident {
namespace {

using Kind = ByteRange::Kind;

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
        // several ranges: not served yet
        {"bytes=0-1,5-6", 100, Kind::ignore},
        {"bytes=0-1, 5-6", 100, Kind::ignore},
        {"bytes=0-1,", 100, Kind::ignore},
        // overflow
        {"bytes=18446744073709551615-", 100, Kind::unsatisfiable},  // UINT64_MAX fits
        {"bytes=18446744073709551616-", 100, Kind::ignore},
        {"bytes=0-99999999999999999999999", 100, Kind::ignore},
        {"bytes=-99999999999999999999999", 100, Kind::ignore},
        {"bytes=0-18446744073709551615", 100, Kind::satisfiable, 0, 99},
    };
    for (const RangeCase& c : cases) {
        const ByteRange range = parse_byte_range(c.value, c.size);
        EXPECT_EQ(range.kind, c.kind)
            << "\"" << c.value << "\" size " << c.size << " gave " << kind_name(range.kind);
        if (c.kind == Kind::satisfiable && range.kind == Kind::satisfiable) {
            EXPECT_EQ(range.first, c.first) << c.value;
            EXPECT_EQ(range.last, c.last) << c.value;
        }
    }
}

TEST(ByteRangeTest, SatisfiableRangeStaysInsideTheRepresentation) {
    for (std::uint64_t size : {1u, 2u, 7u, 4096u}) {
        for (std::string_view value : {"bytes=0-", "bytes=-1", "bytes=-100000", "bytes=0-100000"}) {
            const ByteRange range = parse_byte_range(value, size);
            ASSERT_EQ(range.kind, Kind::satisfiable) << value << " / " << size;
            EXPECT_LE(range.first, range.last);
            EXPECT_LT(range.last, size);
        }
    }
}

}  // namespace
}  // namespace trident
