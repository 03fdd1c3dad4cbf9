#include "http/request_parser.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace trident::http {
namespace {

using namespace std::string_literals;

// A parsed head copied out of the views, so outcomes can be compared across buffers.
struct Head {
    Method method = Method::get;
    std::string method_text = "GET";
    std::string target = "/";
    std::string query{};
    Version version{1, 1};
    std::vector<std::pair<std::string, std::string>> fields{};
    std::string host{};
    std::optional<std::uint64_t> content_length{};
    bool transfer_encoding = false;
    bool close = false;
    bool keep_alive = false;
    std::string target_path = "/";
    TargetForm form = TargetForm::origin;
    std::string authority{};
    bool chunked_last = false;
    bool chunked_twice = false;
    bool other_coding = false;
    bool expect_continue = false;
    bool expect_unsupported = false;
    bool operator==(const Head&) const = default;
};

struct Outcome {
    ParseState state = ParseState::need_more;
    Status status = Status::ok;   // when error
    std::string reason;           // when error
    std::size_t head_length = 0;  // when complete
    Head head;                    // when complete
    bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    os << "state=" << int(o.state);
    if (o.state == ParseState::error) {
        os << " status=" << code(o.status) << " reason=\"" << o.reason << '"';
    }
    if (o.state == ParseState::complete) {
        os << " head_length=" << o.head_length << " " << o.head.method_text << " " << o.head.target
           << " ?" << o.head.query << " " << int(o.head.version.major) << "."
           << int(o.head.version.minor) << " fields=" << o.head.fields.size();
        for (const auto& [name, value] : o.head.fields) {
            os << " [" << name << ": " << value << "]";
        }
    }
    return os;
}

Head snapshot(const Request& r) {
    Head h{r.method,
           std::string(r.method_text),
           std::string(r.target),
           std::string(r.query),
           r.version,
           {},
           std::string(r.host),
           r.content_length,
           r.has_transfer_encoding,
           r.connection_close,
           r.connection_keep_alive,
           std::string(r.target_path),
           r.target_form,
           std::string(r.authority),
           r.transfer_codings.chunked_last,
           r.transfer_codings.chunked_twice,
           r.transfer_codings.other,
           r.expect_continue,
           r.expect_unsupported};
    for (const Field& f : r.fields) {
        h.fields.emplace_back(f.name, f.value);
    }
    return h;
}

Outcome capture(ParseState state, const RequestParser& parser, const Request& request) {
    Outcome o;
    o.state = state;
    if (state == ParseState::error) {
        o.status = parser.error().status;
        o.reason = std::string(parser.error().reason);
    }
    if (state == ParseState::complete) {
        o.head_length = parser.head_length();
        o.head = snapshot(request);
    }
    return o;
}

bool inside(std::string_view view, std::string_view buffer) {
    return view.empty() || (view.data() >= buffer.data() &&
                            view.data() + view.size() <= buffer.data() + buffer.size());
}

// Every view of a complete request must point into the parsed buffer (zero-copy).
void expect_views_inside(const Request& r, std::string_view buffer) {
    EXPECT_TRUE(inside(r.method_text, buffer));
    EXPECT_TRUE(inside(r.target, buffer));
    EXPECT_TRUE(inside(r.query, buffer));
    EXPECT_TRUE(inside(r.host, buffer));
    EXPECT_TRUE(inside(r.authority, buffer));
    EXPECT_TRUE(r.target_path == "/" || inside(r.target_path, buffer));
    for (const Field& f : r.fields) {
        EXPECT_TRUE(inside(f.name, buffer)) << f.name;
        EXPECT_TRUE(inside(f.value, buffer)) << f.name;
    }
}

// Parses a copy of `input` held in a heap block of exactly its size, so that AddressSanitizer
// reports any read past input.size().
Outcome parse_exact(std::string_view input, const ParserLimits& limits) {
    const auto block = std::make_unique<char[]>(input.size());
    std::copy(input.begin(), input.end(), block.get());
    const std::string_view view(block.get(), input.size());
    RequestParser parser(limits);
    Request request;
    const ParseState state = parser.parse(view, request);
    if (state == ParseState::complete) {
        expect_views_inside(request, view);
    }
    return capture(state, parser, request);
}

// Whether `partial` is an acceptable result for a prefix of an input whose full result is
// `full`: need more bytes, or (for an error) the same error found early.
bool acceptable_prefix_outcome(const Outcome& partial, const Outcome& full) {
    return partial.state == ParseState::need_more ||
           (full.state == ParseState::error && partial == full);
}

// Checks that every split point and byte-by-byte feeding give the one-shot outcome.
void expect_split_invariant(const std::string& input, const ParserLimits& limits) {
    const Outcome one_shot = parse_exact(input, limits);
    const std::string_view buffer(input);

    for (std::size_t split = 0; split <= input.size(); ++split) {
        SCOPED_TRACE("split at " + std::to_string(split));
        const std::string_view prefix = buffer.substr(0, split);
        // A fresh parse of just the prefix, in a block of its exact size.
        const Outcome alone = parse_exact(prefix, limits);
        if (one_shot.state == ParseState::complete && split >= one_shot.head_length) {
            EXPECT_EQ(alone, one_shot);
        } else {
            EXPECT_TRUE(acceptable_prefix_outcome(alone, one_shot)) << alone;
        }

        // The same parser resumed with the whole input.
        RequestParser parser(limits);
        Request request;
        const ParseState first = parser.parse(prefix, request);
        EXPECT_EQ(capture(first, parser, request), alone);
        const ParseState second = parser.parse(buffer, request);
        EXPECT_EQ(capture(second, parser, request), one_shot);
        if (second == ParseState::complete) {
            expect_views_inside(request, buffer);
        }
    }

    // One byte at a time until the parser decides.
    RequestParser parser(limits);
    Request request;
    ParseState state = ParseState::need_more;
    std::size_t fed = 0;
    while (state == ParseState::need_more && fed < input.size()) {
        state = parser.parse(buffer.substr(0, ++fed), request);
    }
    EXPECT_EQ(capture(state, parser, request), one_shot);
    if (state == ParseState::complete) {
        EXPECT_EQ(fed, parser.head_length()) << "complete must come with the final LF";
    }
}

// ---------------------------------------------------------------------------------------
// Valid heads.

struct ValidCase {
    const char* name;
    std::string input;
    std::size_t head_length;
    Head head;
    ParserLimits limits = {};
};

std::ostream& operator<<(std::ostream& os, const ValidCase& c) {
    return os << c.name;
}

std::string repeat(std::string_view piece, int times) {
    std::string out;
    for (int i = 0; i < times; ++i) {
        out += piece;
    }
    return out;
}

const std::string kGet = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
const std::string kSecond = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";

std::vector<ValidCase> valid_cases() {
    return {
        {"Get", kGet, kGet.size(), {.fields = {{"Host", "example.com"}}, .host = "example.com"}},
        {"HeadSeveralFields",
         "HEAD /index.html HTTP/1.1\r\nHost: a\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n",
         68,
         {.method = Method::head,
          .method_text = "HEAD",
          .target = "/index.html",
          .fields = {{"Host", "a"}, {"User-Agent", "t/1"}, {"Accept", "*/*"}},
          .host = "a",
          .target_path = "/index.html"}},
        {"PostWithBodyAfterHead",
         "POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
         51,
         {.method = Method::post,
          .method_text = "POST",
          .target = "/form",
          .fields = {{"Host", "a"}, {"Content-Length", "5"}},
          .host = "a",
          .content_length = 5,
          .target_path = "/form"}},
        {"Query",
         "GET /search?q=a?b&x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
         43,
         {.target = "/search?q=a?b&x=1",
          .query = "q=a?b&x=1",
          .fields = {{"Host", "a"}},
          .host = "a",
          .target_path = "/search"}},
        {"EmptyQuery",
         "GET /x? HTTP/1.1\r\nHost: a\r\n\r\n",
         29,
         {.target = "/x?", .fields = {{"Host", "a"}}, .host = "a", .target_path = "/x"}},
        {"AbsoluteForm",
         "GET http://a.example/p?k HTTP/1.1\r\nHost: a.example\r\n\r\n",
         54,
         {.target = "http://a.example/p?k",
          .query = "k",
          .fields = {{"Host", "a.example"}},
          .host = "a.example",
          .target_path = "/p",
          .form = TargetForm::absolute,
          .authority = "a.example"}},
        {"OwsTrimmed",
         "GET / HTTP/1.1\r\nHost:\t a \t\r\nX-A: \t v  w \t \r\nX-Empty:   \r\nX-None:\r\n\r\n",
         68,
         {.fields = {{"Host", "a"}, {"X-A", "v  w"}, {"X-Empty", ""}, {"X-None", ""}},
          .host = "a"}},
        {"ObsTextInValue",
         "GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
         42,
         {.fields = {{"Host", "a"}, {"X-Utf8", "caf\xc3\xa9"}}, .host = "a"}},
        {"Http10WithoutHost",
         "GET /old HTTP/1.0\r\n\r\n",
         21,
         {.target = "/old", .version = {1, 0}, .target_path = "/old"}},
        {"Http12IsAnsweredAs11",
         "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
         27,
         {.fields = {{"Host", "a"}}, .host = "a"}},
        {"LeadingEmptyLines",
         "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
         31,
         {.fields = {{"Host", "a"}}, .host = "a"}},
        {"PipelinedFirstOnly",
         "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" + kSecond,
         28,
         {.target = "/a", .fields = {{"Host", "h"}}, .host = "h", .target_path = "/a"}},
        {"UnknownMethod",
         "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n",
         31,
         {.method = Method::other,
          .method_text = "BREW",
          .target = "/pot",
          .fields = {{"Host", "a"}},
          .host = "a",
          .target_path = "/pot"}},
        {"MethodIsCaseSensitive",
         "get / HTTP/1.1\r\nHost: a\r\n\r\n",
         27,
         {.method = Method::other, .method_text = "get", .fields = {{"Host", "a"}}, .host = "a"}},
        {"EmptyHostIsPresent",
         "OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n",
         29,
         {.method = Method::options,
          .method_text = "OPTIONS",
          .target = "*",
          .fields = {{"Host", ""}},
          .target_path = "",
          .form = TargetForm::asterisk}},
        {"HostWithIpv6AndPort",
         "GET / HTTP/1.1\r\nhOsT: [::1]:8080\r\n\r\n",
         36,
         {.fields = {{"hOsT", "[::1]:8080"}}, .host = "[::1]:8080"}},
        {"ConnectionClose",
         "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n",
         51,
         {.fields = {{"Host", "a"}, {"Connection", "foo, CLOSE"}}, .host = "a", .close = true}},
        {"ConnectionKeepAliveList",
         "GET / HTTP/1.0\r\nConnection: ,Upgrade , \tKeep-Alive\t,\r\n\r\n",
         56,
         {.version = {1, 0},
          .fields = {{"Connection", ",Upgrade , \tKeep-Alive\t,"}},
          .keep_alive = true}},
        {"ConnectionTokenNeedsWholeItem",
         "GET / HTTP/1.1\r\nHost: a\r\nConnection: closed, keep-alive-ish\r\n\r\n",
         63,
         {.fields = {{"Host", "a"}, {"Connection", "closed, keep-alive-ish"}}, .host = "a"}},
        {"MaxContentLength",
         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
         66,
         {.method = Method::post,
          .method_text = "POST",
          .fields = {{"Host", "a"}, {"Content-Length", "18446744073709551615"}},
          .host = "a",
          .content_length = 18446744073709551615ull}},
        {"TransferEncodingRecorded",
         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
         56,
         {.method = Method::post,
          .method_text = "POST",
          .fields = {{"Host", "a"}, {"Transfer-Encoding", "chunked"}},
          .host = "a",
          .transfer_encoding = true,
          .chunked_last = true}},
        {"RequestLineExactlyAtLimit",
         "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
         27,
         {.fields = {{"Host", "a"}}, .host = "a"},
         {.request_line = 14, .request_fields = 100, .request_field_size = 100}},
        {"FieldsExactlyAtLimits",
         "GET / HTTP/1.1\r\nHost: a\r\nX: 1234\r\n\r\n",
         36,
         {.fields = {{"Host", "a"}, {"X", "1234"}}, .host = "a"},
         {.request_line = 100, .request_fields = 2, .request_field_size = 7}},
        // RFC 9112 §2.2: up to ten empty lines are ignored, and do not count toward the limit.
        {"TenLeadingEmptyLines",
         repeat("\r\n", 10) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
         47,
         {.fields = {{"Host", "a"}}, .host = "a"},
         {.request_line = 14, .request_fields = 100, .request_field_size = 100}},
        {"MethodAtLengthLimit",
         std::string(32, 'M') + " / HTTP/1.0\r\n\r\n",
         47,
         {.method = Method::other, .method_text = std::string(32, 'M'), .version = {1, 0}}},
        // RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host.
        {"AbsoluteFormAuthorityWinsOverHost",
         "GET HTTPS://b.example:8443 HTTP/1.1\r\nHost: a\r\n\r\n",
         48,
         {.target = "HTTPS://b.example:8443",
          .fields = {{"Host", "a"}},
          .host = "b.example:8443",
          .form = TargetForm::absolute,
          .authority = "b.example:8443"}},
        {"AbsoluteFormQueryWithoutPath",
         "GET http://b?x=1 HTTP/1.1\r\nHost: b\r\n\r\n",
         38,
         {.target = "http://b?x=1",
          .query = "x=1",
          .fields = {{"Host", "b"}},
          .host = "b",
          .form = TargetForm::absolute,
          .authority = "b"}},
        {"ConnectAuthorityForm",
         "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
         55,
         {.method = Method::connect,
          .method_text = "CONNECT",
          .target = "a.example:443",
          .fields = {{"Host", "a.example:443"}},
          .host = "a.example:443",
          .target_path = "",
          .form = TargetForm::authority,
          .authority = "a.example:443"}},
        {"OptionsOriginForm",
         "OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n",
         32,
         {.method = Method::options,
          .method_text = "OPTIONS",
          .target = "/x",
          .fields = {{"Host", "a"}},
          .host = "a",
          .target_path = "/x"}},
        // Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2).
        {"HostIpv4EmptyPort",
         "GET / HTTP/1.1\r\nHost: 127.0.0.1:\r\n\r\n",
         36,
         {.fields = {{"Host", "127.0.0.1:"}}, .host = "127.0.0.1:"}},
        {"HostIpvFutureAndPercent",
         "GET / HTTP/1.1\r\nHost: [v1.a:b]:80\r\n\r\n",
         37,
         {.fields = {{"Host", "[v1.a:b]:80"}}, .host = "[v1.a:b]:80"}},
        {"HostPercentEncodedRegName",
         "GET / HTTP/1.1\r\nHost: %41b.example\r\n\r\n",
         38,
         {.fields = {{"Host", "%41b.example"}}, .host = "%41b.example"}},
        // Transfer-Encoding lists, RFC 9112 §6.1; the framing decision is the connection's.
        {"TransferEncodingListOverTwoLines",
         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;q=\"a,b\" , \r\n"
         "Transfer-Encoding: ,CHUNKED\r\n\r\n",
         93,
         {.method = Method::post,
          .method_text = "POST",
          .fields = {{"Host", "a"},
                     {"Transfer-Encoding", "gzip;q=\"a,b\" ,"},
                     {"Transfer-Encoding", ",CHUNKED"}},
          .host = "a",
          .transfer_encoding = true,
          .chunked_last = true,
          .other_coding = true}},
        {"TransferEncodingChunkedTwice",
         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
         65,
         {.method = Method::post,
          .method_text = "POST",
          .fields = {{"Host", "a"}, {"Transfer-Encoding", "chunked, chunked"}},
          .host = "a",
          .transfer_encoding = true,
          .chunked_last = true,
          .chunked_twice = true}},
        {"TransferEncodingChunkedNotLast",
         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
         66,
         {.method = Method::post,
          .method_text = "POST",
          .fields = {{"Host", "a"}, {"Transfer-Encoding", "chunked, identity"}},
          .host = "a",
          .transfer_encoding = true,
          .other_coding = true}},
        // Expect, RFC 9110 §10.1.1.
        {"ExpectContinueAnyCase",
         "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n",
         50,
         {.method = Method::put,
          .method_text = "PUT",
          .target = "/f",
          .fields = {{"Host", "a"}, {"Expect", "100-Continue"}},
          .host = "a",
          .target_path = "/f",
          .expect_continue = true}},
        {"ExpectOther",
         "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x=1\r\n\r\n",
         54,
         {.fields = {{"Host", "a"}, {"Expect", "100-continue, x=1"}},
          .host = "a",
          .expect_continue = true,
          .expect_unsupported = true}},
    };
}

class ValidHead : public testing::TestWithParam<ValidCase> {};

TEST_P(ValidHead, ParsesOneShot) {
    const ValidCase& c = GetParam();
    const std::size_t request_line = c.input.find_first_not_of("\r\n");
    ASSERT_EQ(c.head_length, c.input.find("\r\n\r\n", request_line) + 4) << "the case itself";
    const Outcome expected{ParseState::complete, Status::ok, "", c.head_length, c.head};
    EXPECT_EQ(parse_exact(c.input, c.limits), expected);
}

TEST_P(ValidHead, SameOutcomeHoweverSplit) {
    expect_split_invariant(GetParam().input, GetParam().limits);
}

INSTANTIATE_TEST_SUITE_P(RequestParser, ValidHead, testing::ValuesIn(valid_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------
// Invalid heads.

struct InvalidCase {
    const char* name;
    std::string input;
    Status status;
    std::string_view reason;
    ParserLimits limits = {};
};

std::ostream& operator<<(std::ostream& os, const InvalidCase& c) {
    return os << c.name;
}

constexpr Status k400 = Status::bad_request;
constexpr ParserLimits kSmall{.request_line = 16, .request_fields = 2, .request_field_size = 10};

std::string with_field(std::string_view line) {
    return "GET / HTTP/1.1\r\nHost: a\r\n" + std::string(line) + "\r\n\r\n";
}

std::vector<InvalidCase> invalid_cases() {
    return {
        // 414 / request line
        {"LongRequestLine", "GET /abcdefghijklmnop HTTP/1.1\r\nHost: a\r\n\r\n",
         Status::uri_too_long, "request line too long", kSmall},
        {"LongRequestLineOneOver",
         "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
         Status::uri_too_long,
         "request line too long",
         {.request_line = 13}},
        {"ElevenLeadingEmptyLines", repeat("\r\n", 11) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "too many empty lines before the request line"},
        {"EndlessEmptyLines", repeat("\r\n", 60), k400,
         "too many empty lines before the request line", kSmall},
        // An over-long method is an unknown method (501), even before its line ends.
        {"MethodTooLong", std::string(33, 'M') + " / HTTP/1.1\r\nHost: a\r\n\r\n",
         Status::not_implemented, "method too long"},
        {"MethodLongerThanTheLine", std::string(9000, 'M') + " / HTTP/1.1\r\nHost: a\r\n\r\n",
         Status::not_implemented, "method too long"},
        // Line endings, RFC 9112 §2.2
        {"BareLfRequestLine", "GET / HTTP/1.1\nHost: a\r\n\r\n", k400,
         "line not terminated by CRLF"},
        {"BareLfLeading", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "line not terminated by CRLF"},
        {"BareLfField", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", k400,
         "line not terminated by CRLF"},
        {"BareLfEnd", "GET / HTTP/1.1\r\nHost: a\r\n\n", k400, "line not terminated by CRLF"},
        {"BareCrInTarget", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", k400, "invalid request target"},
        {"BareCrAfterVersion", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", k400,
         "malformed HTTP version"},
        {"BareCrInValue", with_field("X: a\rb"), k400, "invalid field value"},
        {"BareCrEndsHead", "GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n", k400, "invalid field name"},
        // Request line shape, RFC 9112 §3
        {"DoubleSpace", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", k400, "invalid request target"},
        {"TabSeparator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", k400, "invalid method"},
        {"LeadingSpace", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", k400, "invalid method"},
        {"NoTarget", "GET\r\nHost: a\r\n\r\n", k400, "invalid method"},
        {"NoVersion", "GET /\r\nHost: a\r\n\r\n", k400, "invalid request target"},
        {"MethodNonTchar", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", k400, "invalid method"},
        {"SpaceInTarget", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", k400, "malformed HTTP version"},
        {"DelInTarget", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", k400, "invalid request target"},
        {"HighByteInTarget", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "invalid request target"},
        {"NulInTarget", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"s, k400, "invalid request target"},
        // HTTP-version, RFC 9112 §2.3
        {"VersionShort", "GET / HTTP/1\r\nHost: a\r\n\r\n", k400, "malformed HTTP version"},
        {"VersionLowercase", "GET / http/1.1\r\nHost: a\r\n\r\n", k400, "malformed HTTP version"},
        {"VersionTrailingSpace", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", k400,
         "malformed HTTP version"},
        {"VersionTwoDigitMajor", "GET / HTTP/10.0\r\nHost: a\r\n\r\n", k400,
         "malformed HTTP version"},
        {"VersionLetter", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", k400, "malformed HTTP version"},
        {"VersionComma", "GET / HTTP/1,1\r\nHost: a\r\n\r\n", k400, "malformed HTTP version"},
        {"Version20", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", Status::http_version_not_supported,
         "unsupported HTTP version"},
        {"Version09", "GET / HTTP/0.9\r\n\r\n", k400, "malformed HTTP version"},
        {"VersionLeadingZero", "GET / HTTP/01.1\r\nHost: a\r\n\r\n", k400,
         "malformed HTTP version"},
        {"VersionNoMinor", "GET / HTTP/1.\r\nHost: a\r\n\r\n", k400, "malformed HTTP version"},
        {"VersionNoMajor", "GET / HTTP/.1\r\nHost: a\r\n\r\n", k400, "malformed HTTP version"},
        {"VersionTwoSpaces", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", k400, "malformed HTTP version"},
        {"Version21", "GET / HTTP/2.1\r\nHost: a\r\n\r\n", Status::http_version_not_supported,
         "unsupported HTTP version"},
        {"Version30", "GET / HTTP/3.0\r\n\r\n", Status::http_version_not_supported,
         "unsupported HTTP version"},
        // Field lines, RFC 9112 §5 and RFC 9110 §5.5
        {"SpaceBeforeColon", with_field("X-A : b"), k400, "invalid field name"},
        {"TabBeforeColon", with_field("X-A\t: b"), k400, "invalid field name"},
        {"NoColon", with_field("X-A b"), k400, "invalid field name"},
        {"EmptyName", with_field(": b"), k400, "invalid field name"},
        {"NonTcharName", with_field("X(A): b"), k400, "invalid field name"},
        {"ObsFold", with_field("X-A: b\r\n c"), k400, "obsolete line folding"},
        {"ObsFoldTab", with_field("X-A: b\r\n\tc"), k400, "obsolete line folding"},
        {"WhitespaceBeforeFirstField", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", k400,
         "obsolete line folding"},
        {"NulInValue", with_field("X: a\0b"s), k400, "invalid field value"},
        {"DelInValue", with_field("X: a\x7f"), k400, "invalid field value"},
        {"CtlInValue", with_field("X: a\x01"), k400, "invalid field value"},
        {"TooManyFields", "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n", k400,
         "too many header fields", kSmall},
        {"FieldTooLong", "GET / HTTP/1.1\r\nHost: a\r\nX: 12345678\r\n\r\n", k400,
         "field line too long", kSmall},
        {"FieldOneOverLimit",
         "GET / HTTP/1.1\r\nHost: a\r\nX: 12345\r\n\r\n",
         k400,
         "field line too long",
         {.request_field_size = 7}},
        // Host, RFC 9112 §3.2
        {"MissingHost", "GET / HTTP/1.1\r\nX: a\r\n\r\n", k400, "missing Host"},
        {"MissingHost12", "GET / HTTP/1.2\r\n\r\n", k400, "missing Host"},
        {"DuplicateHost", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", k400, "duplicate Host"},
        {"DuplicateHost10", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", k400, "duplicate Host"},
        {"HostWithSlash", "GET / HTTP/1.1\r\nHost: a/../b\r\n\r\n", k400, "invalid Host"},
        {"HostWithSpace", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", k400, "invalid Host"},
        // Content-Length, RFC 9112 §6.3 and RFC 9110 §8.6
        {"ContentLengthNegative", with_field("Content-Length: -1"), k400, "invalid Content-Length"},
        {"ContentLengthPlus", with_field("Content-Length: +1"), k400, "invalid Content-Length"},
        {"ContentLengthSpaceInside", with_field("Content-Length: 1 2"), k400,
         "invalid Content-Length"},
        {"ContentLengthEmpty", with_field("Content-Length: "), k400, "invalid Content-Length"},
        {"ContentLengthList", with_field("Content-Length: 5, 5"), k400, "invalid Content-Length"},
        {"ContentLengthHex", with_field("Content-Length: 0x10"), k400, "invalid Content-Length"},
        {"ContentLengthOverflow", with_field("Content-Length: 18446744073709551616"), k400,
         "invalid Content-Length"},
        {"ContentLengthConflict", with_field("Content-Length: 5\r\nContent-Length: 6"), k400,
         "duplicate Content-Length"},
        // As Apache (HttpProtocolOptions Strict): identical repeats are refused too.
        {"ContentLengthRepeated", with_field("Content-Length: 7\r\ncontent-length: 7"), k400,
         "duplicate Content-Length"},
        // Request-target forms, RFC 9112 §3.2
        {"Fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", k400, "fragment in request target"},
        {"AsteriskWithGet", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "asterisk-form is only for OPTIONS"},
        {"ConnectOriginForm", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "CONNECT needs an authority-form target"},
        {"ConnectWithoutPort", "CONNECT a.example HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "CONNECT needs an authority-form target"},
        {"ConnectEmptyPort", "CONNECT a.example: HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "CONNECT needs an authority-form target"},
        {"AuthorityFormWithGet", "GET a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "unsupported request target"},
        {"FtpScheme", "GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "unsupported request target"},
        {"AbsoluteWithoutAuthority", "GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "absolute-form without authority"},
        {"AbsoluteEmptyHost", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "invalid authority in request target"},
        {"AbsoluteUserinfo", "GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", k400,
         "invalid authority in request target"},
        {"RelativeTarget", "GET x HTTP/1.1\r\nHost: a\r\n\r\n", k400, "invalid request target"},
        {"AbsoluteWithoutHost", "GET http://a/ HTTP/1.1\r\n\r\n", k400, "missing Host"},
        // Host syntax, RFC 9110 §7.2
        {"HostPortNotDigits", "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", k400, "invalid Host"},
        {"HostTwoColons", "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", k400, "invalid Host"},
        {"HostUnclosedLiteral", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", k400, "invalid Host"},
        {"HostJunkAfterLiteral", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", k400, "invalid Host"},
        {"HostBadLiteral", "GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", k400, "invalid Host"},
        {"HostUserinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", k400, "invalid Host"},
        {"HostBadPercent", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", k400, "invalid Host"},
        // Transfer-Encoding syntax, RFC 9112 §6.1 and §7
        {"TransferEncodingEmpty", with_field("Transfer-Encoding: "), k400,
         "invalid Transfer-Encoding"},
        {"TransferEncodingBareSemicolon", with_field("Transfer-Encoding: chunked;"), k400,
         "invalid Transfer-Encoding"},
        {"TransferEncodingChunkedParameter", with_field("Transfer-Encoding: chunked;a=b"), k400,
         "invalid Transfer-Encoding"},
        {"TransferEncodingSpaceInside", with_field("Transfer-Encoding: chun ked"), k400,
         "invalid Transfer-Encoding"},
        {"TransferEncodingQuoted", with_field("Transfer-Encoding: \"chunked\""), k400,
         "invalid Transfer-Encoding"},
        {"TransferEncodingObsFold", with_field("Transfer-Encoding: gzip,\r\n chunked"), k400,
         "obsolete line folding"},
    };
}

class InvalidHead : public testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidHead, RejectsWithStatus) {
    const InvalidCase& c = GetParam();
    const Outcome outcome = parse_exact(c.input, c.limits);
    ASSERT_EQ(outcome.state, ParseState::error) << outcome;
    EXPECT_EQ(code(outcome.status), code(c.status));
    EXPECT_EQ(outcome.reason, c.reason);
}

TEST_P(InvalidHead, SameOutcomeHoweverSplit) {
    expect_split_invariant(GetParam().input, GetParam().limits);
}

INSTANTIATE_TEST_SUITE_P(RequestParser, InvalidHead, testing::ValuesIn(invalid_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------
// Behaviour across calls.

TEST(RequestParserTest, MapsEveryKnownMethod) {
    const std::pair<std::string, Method> methods[] = {
        {"GET", Method::get},         {"HEAD", Method::head},      {"POST", Method::post},
        {"PUT", Method::put},         {"DELETE", Method::delete_}, {"CONNECT", Method::connect},
        {"OPTIONS", Method::options}, {"TRACE", Method::trace},    {"PATCH", Method::patch},
        {"Get", Method::other},       {"GETS", Method::other},     {"M-SEARCH", Method::other},
    };
    for (const auto& [text, method] : methods) {
        const std::string target = method == Method::connect ? "a:443" : "/";
        const std::string input = text + " " + target + " HTTP/1.0\r\n\r\n";
        RequestParser parser({});
        Request request;
        ASSERT_EQ(parser.parse(input, request), ParseState::complete) << text;
        EXPECT_EQ(request.method, method) << text;
        EXPECT_EQ(request.method_text, text);
    }
}

TEST(RequestParserTest, ResetParsesPipelinedSecondRequest) {
    const std::string input = "GET /a HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n" + kSecond + "GET";
    RequestParser parser({});
    Request request;
    ASSERT_EQ(parser.parse(input, request), ParseState::complete);
    EXPECT_EQ(request.target, "/a");
    const std::size_t first = parser.head_length();
    ASSERT_EQ(first, 34u);

    // Calling again without reset keeps the finished result.
    EXPECT_EQ(parser.parse(input, request), ParseState::complete);
    EXPECT_EQ(parser.head_length(), first);

    parser.reset();
    request.clear();
    const std::string_view rest = std::string_view(input).substr(first);
    ASSERT_EQ(parser.parse(rest, request), ParseState::complete);
    EXPECT_EQ(request.target, "/b");
    ASSERT_EQ(request.fields.size(), 1u);  // the first request's "X" is gone
    EXPECT_EQ(parser.head_length(), kSecond.size());
    expect_views_inside(request, rest);

    const std::string_view third = rest.substr(parser.head_length());
    parser.reset();
    request.clear();
    EXPECT_EQ(parser.parse(third, request), ParseState::need_more);
}

TEST(RequestParserTest, ErrorIsSticky) {
    const std::string input = "GET / HTTP/2.0\r\nHost: a\r\n\r\n";
    RequestParser parser({});
    Request request;
    ASSERT_EQ(parser.parse(input, request), ParseState::error);
    EXPECT_EQ(parser.error().status, Status::http_version_not_supported);
    EXPECT_EQ(parser.parse(kGet, request), ParseState::error);
    EXPECT_EQ(parser.error().status, Status::http_version_not_supported);

    parser.reset();
    request.clear();
    EXPECT_EQ(parser.parse(kGet, request), ParseState::complete);
}

TEST(RequestParserTest, LongLineRejectedBeforeItEnds) {
    // RFC 9112 §3: 414 as soon as more than the limit is buffered, without waiting for CRLF.
    const std::string line = "GET /" + std::string(40, 'a');
    const ParserLimits limits{.request_line = 32};
    RequestParser parser(limits);
    Request request;
    EXPECT_EQ(parser.parse(std::string_view(line).substr(0, 32), request), ParseState::need_more);
    EXPECT_EQ(parser.parse(std::string_view(line).substr(0, 33), request), ParseState::error);
    EXPECT_EQ(parser.error().status, Status::uri_too_long);

    // A trailing CR may still be the line's end, so it does not count yet.
    const std::string exact = "GET /" + std::string(27, 'a') + "\r";
    RequestParser at_limit(limits);
    EXPECT_EQ(at_limit.parse(exact, request), ParseState::need_more);
}

TEST(RequestParserTest, LongFieldRejectedBeforeItEnds) {
    const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(100, 'v');
    RequestParser parser({.request_field_size = 64});
    Request request;
    EXPECT_EQ(parser.parse(std::string_view(head).substr(0, 25 + 64), request),
              ParseState::need_more);
    EXPECT_EQ(parser.parse(std::string_view(head).substr(0, 25 + 65), request), ParseState::error);
    EXPECT_EQ(parser.error().status, Status::bad_request);
    EXPECT_EQ(parser.error().reason, "field line too long");
}

TEST(RequestParserTest, ResumesAcrossAnEightKibFieldFedByteByByte) {
    // Fed one byte at a time, a rescanning parser would do ~n²/2 work; this one resumes. The
    // check is for correctness only: the value must come out whole and point into the buffer.
    const std::string value(8000, 'v');
    const std::string input = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + value + "\r\n\r\n";
    RequestParser parser({});
    Request request;
    std::size_t fed = 0;
    ParseState state = ParseState::need_more;
    while (state == ParseState::need_more && fed < input.size()) {
        state = parser.parse(std::string_view(input).substr(0, ++fed), request);
    }
    ASSERT_EQ(state, ParseState::complete);
    EXPECT_EQ(fed, input.size());
    EXPECT_EQ(parser.head_length(), input.size());
    EXPECT_EQ(request.field("x-big"), value);
    expect_views_inside(request, input);
}

TEST(RequestParserTest, DoesNotSearchScannedBytesAgain) {
    // A white-box probe: after need_more, plant an LF among bytes already searched. A parser
    // that resumes never looks for the line end there again, so it only meets the LF when it
    // checks the completed line's value bytes; one that rescans would stop at the planted LF.
    std::string input = "GET / HTTP/1.1\r\nHost: a\r\nX: abcdef";
    RequestParser parser({});
    Request request;
    ASSERT_EQ(parser.parse(input, request), ParseState::need_more);
    input[input.size() - 3] = '\n';
    input += "\r\n\r\n";
    ASSERT_EQ(parser.parse(input, request), ParseState::error);
    EXPECT_EQ(parser.error().reason, "invalid field value");
}

TEST(RequestParserTest, FieldsKeepCapacityAcrossRequests) {
    RequestParser parser({});
    Request request;
    ASSERT_EQ(parser.parse(with_field("A: 1\r\nB: 2\r\nC: 3"), request), ParseState::complete);
    const std::size_t capacity = request.fields.capacity();
    EXPECT_GE(capacity, 4u);
    const Field* storage = request.fields.data();
    parser.reset();
    request.clear();
    ASSERT_EQ(parser.parse(kGet, request), ParseState::complete);
    EXPECT_EQ(request.fields.size(), 1u);
    EXPECT_EQ(request.fields.data(), storage);  // no reallocation for a smaller head
}

TEST(RequestParserTest, ParseClearsAStaleRequest) {
    RequestParser parser({});
    Request request;
    ASSERT_EQ(parser.parse(with_field("Content-Length: 3\r\nConnection: close"), request),
              ParseState::complete);
    ASSERT_TRUE(request.content_length);
    parser.reset();  // the caller forgot request.clear()
    ASSERT_EQ(parser.parse(kGet, request), ParseState::complete);
    EXPECT_FALSE(request.content_length);
    EXPECT_FALSE(request.connection_close);
    EXPECT_EQ(request.fields.size(), 1u);
}

}  // namespace
}  // namespace trident::http
