// The chunked decoder alone (RFC 9112 §7.1): what it accepts, what it refuses with which
// status, and that the outcome does not depend on how the bytes were split.

#include "http/chunked.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace trident::http {
namespace {

constexpr ChunkedLimits kLimits{.body = 1000, .line = 64, .trailer_fields = 3};

struct Decoded {
    ChunkedDecoder::State state = ChunkedDecoder::State::need_more;
    std::size_t consumed = 0;  ///< bytes consumed in all
    std::uint64_t body_size = 0;
    int status = 0;  ///< on error
    std::string reason;
    bool operator==(const Decoded&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Decoded& d) {
    return os << "state=" << int(d.state) << " consumed=" << d.consumed << " body=" << d.body_size
              << " status=" << d.status << " reason=" << d.reason;
}

Decoded snapshot(const ChunkedDecoder& decoder, std::size_t consumed) {
    Decoded d{decoder.state(), consumed, decoder.body_size(), 0, ""};
    if (decoder.state() == ChunkedDecoder::State::error) {
        d.consumed = 0;  // what was consumed before an error depends on the pieces
        d.status = code(decoder.error().status);
        d.reason = std::string(decoder.error().reason);
    }
    return d;
}

/// Feeds `input` `piece` bytes at a time (0: all at once), as a connection would: consumed
/// bytes are dropped, the rest is shown again with the next piece. Each call sees a heap
/// block of exactly the unconsumed size, so AddressSanitizer catches a read past it.
Decoded decode(std::string_view input, std::size_t piece = 0,
               const ChunkedLimits& limits = kLimits) {
    ChunkedDecoder decoder(limits);
    std::string pending;
    std::size_t consumed = 0;
    std::size_t fed = 0;
    while (decoder.state() == ChunkedDecoder::State::need_more && fed < input.size()) {
        const std::size_t n = piece == 0 ? input.size() - fed : std::min(piece, input.size() - fed);
        pending.append(input.substr(fed, n));
        fed += n;
        const auto block = std::make_unique<char[]>(pending.size());
        std::copy(pending.begin(), pending.end(), block.get());
        const std::size_t used = decoder.decode({block.get(), pending.size()});
        if (decoder.state() != ChunkedDecoder::State::error) {
            EXPECT_LE(used, pending.size());
            pending.erase(0, used);
            consumed += used;
        }
    }
    return snapshot(decoder, consumed);
}

/// The outcome must be the same at every piece size.
void expect_split_invariant(const std::string& input) {
    const Decoded whole = decode(input);
    for (std::size_t piece = 1; piece <= input.size(); ++piece) {
        EXPECT_EQ(decode(input, piece), whole) << "piece " << piece;
    }
}

// ---------------------------------------------------------------------------------------
// Accepted bodies.

struct Valid {
    const char* name;
    std::string body;            ///< the whole chunked body, final CRLF included
    std::uint64_t decoded_size;  ///< sum of chunk sizes
};

std::ostream& operator<<(std::ostream& os, const Valid& v) {
    return os << v.name;
}

class ValidChunked : public testing::TestWithParam<Valid> {};

TEST_P(ValidChunked, ConsumesExactlyTheBody) {
    const Valid& v = GetParam();
    // Whatever follows (the next pipelined request) is left alone.
    const std::string input = v.body + "GET / HTTP/1.1\r\n";
    const Decoded d = decode(input);
    EXPECT_EQ(d.state, ChunkedDecoder::State::done) << d;
    EXPECT_EQ(d.consumed, v.body.size());
    EXPECT_EQ(d.body_size, v.decoded_size);
}

TEST_P(ValidChunked, SameOutcomeHoweverSplit) {
    expect_split_invariant(GetParam().body);
}

INSTANTIATE_TEST_SUITE_P(
    Chunked, ValidChunked,
    testing::Values(
        Valid{"Empty", "0\r\n\r\n", 0}, Valid{"OneChunk", "5\r\nhello\r\n0\r\n\r\n", 5},
        Valid{"SeveralChunks", "3\r\nabc\r\n1\r\nd\r\na\r\n0123456789\r\n0\r\n\r\n", 14},
        Valid{"UpperAndLowerHex", "A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n", 21},
        Valid{"LeadingZeros", "0005\r\nhello\r\n000\r\n\r\n", 5},
        Valid{"DataHoldsCrlfAndDigits", "7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n", 7},
        // RFC 9112 §7.1.1: extensions, with BWS around ';' and '=', token or quoted values.
        Valid{"Extensions", "5;a;b=c; d = \"x; \\\"y\\\"\"\r\nhello\r\n0;last\r\n\r\n", 5},
        Valid{"WhitespaceBeforeSemicolon", "5 \t;a\r\nhello\r\n0\r\n\r\n", 5},
        // RFC 9112 §7.1.2: trailer fields, read and discarded.
        Valid{"Trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Empty:\r\n\r\n", 5},
        Valid{"TrailersAtTheLimit", "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0},
        Valid{"BodyAtTheLimit", "3e8\r\n" + std::string(1000, 'x') + "\r\n0\r\n\r\n", 1000},
        Valid{"LineAtTheLimit", "1;" + std::string(62, 'e') + "\r\nx\r\n0\r\n\r\n", 1}),
    [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------
// Refused bodies.

struct Invalid {
    const char* name;
    std::string body;
    int status;
    std::string reason;
};

std::ostream& operator<<(std::ostream& os, const Invalid& v) {
    return os << v.name;
}

class InvalidChunked : public testing::TestWithParam<Invalid> {};

TEST_P(InvalidChunked, RefusesWithStatus) {
    const Invalid& v = GetParam();
    const Decoded d = decode(v.body);
    ASSERT_EQ(d.state, ChunkedDecoder::State::error) << d;
    EXPECT_EQ(d.status, v.status);
    EXPECT_EQ(d.reason, v.reason);
}

TEST_P(InvalidChunked, SameOutcomeHoweverSplit) {
    expect_split_invariant(GetParam().body);
}

INSTANTIATE_TEST_SUITE_P(
    Chunked, InvalidChunked,
    testing::Values(
        // chunk-size = 1*HEXDIG (RFC 9112 §7.1)
        Invalid{"HexPrefix", "0x5\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk extension"},
        Invalid{"LeadingSpace", " 5\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk size"},
        Invalid{"TrailingSpace", "5 \r\nhello\r\n0\r\n\r\n", 400, "invalid chunk extension"},
        Invalid{"TrailingTab", "5\t\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk extension"},
        Invalid{"Negative", "-1\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk size"},
        Invalid{"Plus", "+5\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk size"},
        Invalid{"Empty", "\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk size"},
        Invalid{"NotHex", "g\r\n", 400, "invalid chunk size"},
        Invalid{"Overflow", "10000000000000000\r\n", 400, "chunk size overflows"},
        Invalid{"HugeButRepresentable", "ffffffffffffffff\r\n", 413, "request body too large"},
        Invalid{"OverTheBodyLimit", "3e9\r\n", 413, "request body too large"},
        Invalid{"SumOverTheBodyLimit", "3e8\r\n" + std::string(1000, 'x') + "\r\n1\r\n", 413,
                "request body too large"},
        // chunk-ext (RFC 9112 §7.1.1)
        Invalid{"BareSemicolon", "5;\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk extension"},
        Invalid{"EmptyName", "5;=x\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk extension"},
        Invalid{"EmptyValue", "5;a=\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk extension"},
        Invalid{"BadTokenInName", "5;a(b\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk extension"},
        Invalid{"UnterminatedQuote", "5;a=\"x\r\nhello\r\n0\r\n\r\n", 400,
                "invalid chunk extension"},
        Invalid{"SpaceAfterExtension", "5;a=b \r\nhello\r\n0\r\n\r\n", 400,
                "invalid chunk extension"},
        Invalid{"ControlInExtension", "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", 400,
                "invalid chunk extension"},
        Invalid{"LineTooLong", "1;" + std::string(63, 'e') + "\r\nx\r\n0\r\n\r\n", 400,
                "chunk size line too long"},
        Invalid{"LineTooLongUnfinished", std::string(100, '0'), 400, "chunk size line too long"},
        Invalid{"ExtensionsTooLargeInAll",
                "1;" + std::string(40, 'e') + "\r\nx\r\n1;" + std::string(40, 'e') + "\r\nx\r\n",
                400, "chunk extensions too large"},
        // Line endings and the data's CRLF
        Invalid{"BareLfAfterSize", "5\nhello\r\n0\r\n\r\n", 400,
                "chunk line not terminated by CRLF"},
        Invalid{"BareCrAfterSize", "5\rhello\r\n0\r\n\r\n", 400, "invalid chunk extension"},
        Invalid{"DataLongerThanSize", "5\r\nhelloX\r\n0\r\n\r\n", 400,
                "chunk data not followed by CRLF"},
        Invalid{"DataShorterThanSize", "5\r\nhell\r\n0\r\n\r\n", 400,
                "chunk data not followed by CRLF"},
        Invalid{"DataBareLf", "5\r\nhello\n0\r\n\r\n", 400, "chunk data not followed by CRLF"},
        Invalid{"FinalBareLf", "0\r\n\n", 400, "chunk line not terminated by CRLF"},
        // Trailers (RFC 9112 §7.1.2): the rules of header fields
        Invalid{"TrailerObsFold", "0\r\nA: 1\r\n 2\r\n\r\n", 400, "obsolete line folding"},
        Invalid{"TrailerSpaceBeforeColon", "0\r\nA : 1\r\n\r\n", 400, "invalid field name"},
        Invalid{"TrailerNoColon", "0\r\nA\r\n\r\n", 400, "invalid field name"},
        Invalid{"TrailerNul", std::string("0\r\nA: \0\r\n\r\n", 11), 400, "invalid field value"},
        Invalid{"TooManyTrailers", "0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 400,
                "too many trailer fields"},
        Invalid{"TrailerTooLong", "0\r\nA: " + std::string(70, 'v') + "\r\n\r\n", 400,
                "trailer field line too long"}),
    [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------
// Behaviour across calls.

TEST(ChunkedDecoderTest, WaitsForMoreWithoutConsumingAPartialLine) {
    ChunkedDecoder decoder(kLimits);
    EXPECT_EQ(decoder.decode("5;a=b"), 0u);
    EXPECT_EQ(decoder.state(), ChunkedDecoder::State::need_more);
    EXPECT_EQ(decoder.decode("5;a=b\r\nhel"), 10u);  // the line and three data bytes
    EXPECT_EQ(decoder.decode("lo\r"), 2u);           // the data; CR waits for its LF
    EXPECT_EQ(decoder.decode("\r\n0\r\n\r\n"), 7u);
    EXPECT_EQ(decoder.state(), ChunkedDecoder::State::done);
    EXPECT_EQ(decoder.body_size(), 5u);
    EXPECT_EQ(decoder.decode("more"), 0u);  // done consumes nothing further
}

TEST(ChunkedDecoderTest, ResetStartsANewBody) {
    ChunkedDecoder decoder(kLimits);
    decoder.decode("x\r\n");
    ASSERT_EQ(decoder.state(), ChunkedDecoder::State::error);
    decoder.reset();
    EXPECT_EQ(decoder.decode("1\r\na\r\n0\r\n\r\n"), 11u);
    EXPECT_EQ(decoder.state(), ChunkedDecoder::State::done);
    EXPECT_EQ(decoder.body_size(), 1u);
}

TEST(ChunkedDecoderTest, LargeChunkDataIsSkippedInBulk) {
    // 1 MiB of data in one chunk, shown 64 KiB at a time: consumed as it comes, not stored.
    const ChunkedLimits limits{.body = 1 << 20, .line = 64, .trailer_fields = 3};
    ChunkedDecoder decoder(limits);
    ASSERT_EQ(decoder.decode("100000\r\n"), 8u);
    const std::string piece(64 * 1024, 'd');
    for (int i = 0; i < 16; ++i) {
        ASSERT_EQ(decoder.decode(piece), piece.size()) << i;
    }
    EXPECT_EQ(decoder.decode("\r\n0\r\n\r\n"), 7u);
    EXPECT_EQ(decoder.state(), ChunkedDecoder::State::done);
    EXPECT_EQ(decoder.body_size(), 1u << 20);
}

}  // namespace
}  // namespace trident::http
