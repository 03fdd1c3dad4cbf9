#include "log/log_format.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>

namespace trident::log {
namespace {

using namespace std::chrono_literals;

/// A request as the parser would leave it.
struct Sample {
    http::Request request;
    Endpoints endpoints;
    AccessRecord record;

    Sample() {
        request.method = http::Method::get;
        request.method_text = "GET";
        request.target = "/a%20b?x=1";
        request.query = "x=1";
        request.path = "/a b";
        request.host = "example.test:8080";
        request.fields = {{"Host", "example.test:8080"},
                          {"Referer", "http://ref.test/"},
                          {"User-Agent", "curl/8.0"}};
        std::strcpy(endpoints.client, "192.0.2.7");
        std::strcpy(endpoints.local, "127.0.0.1");
        endpoints.client_port = 40000;
        endpoints.local_port = 8080;
        record.request = &request;
        record.response_head =
            "HTTP/1.1 200 OK\r\nServer: Trident\r\nContent-Type: text/plain\r\n"
            "Connection: keep-alive\r\n\r\n";
        record.status = 200;
        record.bytes_sent = 1234;
        record.body_bytes = 1000;
        record.bytes_received = 80;
        record.duration = 1500us;
        // 2026-11-24 07:19:31.123456 UTC
        record.received = std::chrono::system_clock::time_point(1795504771123456us);
        record.endpoints = &endpoints;
        record.keep_alive_requests = 2;
        record.connection_status = '+';
    }
};

std::string line_for(std::string_view format, const AccessRecord& record) {
    auto compiled = LogFormat::compile(format);
    EXPECT_TRUE(compiled) << compiled.error().message;
    std::string line;
    if (compiled) {
        compiled->append(record, line);
    }
    return line;
}

/// Times print in local time: pin the zone to UTC for the expected text.
class LogFormatTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tz = std::getenv("TZ");
        saved_tz_ = tz != nullptr ? std::optional<std::string>(tz) : std::nullopt;
        setenv("TZ", "UTC", 1);
        tzset();
    }
    void TearDown() override {
        if (saved_tz_) {
            setenv("TZ", saved_tz_->c_str(), 1);
        } else {
            unsetenv("TZ");
        }
        tzset();
    }
    std::optional<std::string> saved_tz_;
};

TEST_F(LogFormatTest, CommonAndCombinedAreApachesLines) {
    Sample s;
    EXPECT_EQ(line_for("common", s.record),
              "192.0.2.7 - - [24/Nov/2026:07:19:31 +0000] \"GET /a%20b?x=1 HTTP/1.1\" 200 1000\n");
    EXPECT_EQ(line_for("combined", s.record),
              "192.0.2.7 - - [24/Nov/2026:07:19:31 +0000] \"GET /a%20b?x=1 HTTP/1.1\" 200 1000 "
              "\"http://ref.test/\" \"curl/8.0\"\n");
}

TEST_F(LogFormatTest, EveryDirective) {
    Sample s;
    EXPECT_EQ(
        line_for("%a %A %p %{remote}p %v %U %q %H %m %I %O %B %D %T %{ms}T %k %X %%", s.record),
        "192.0.2.7 127.0.0.1 8080 40000 example.test /a b ?x=1 HTTP/1.1 GET 80 1234 1000 "
        "1500 0 1 2 + %\n");
    EXPECT_EQ(line_for("%{Content-Type}o|%{X-Missing}o|%{user-agent}i|%{X-None}i", s.record),
              "text/plain|-|curl/8.0|-\n");
    EXPECT_EQ(line_for("%{%Y-%m-%d %H:%M:%S}t.%{msec_frac}t %{usec_frac}t %{sec}t", s.record),
              "2026-11-24 07:19:31.123 123456 1795504771\n");
    EXPECT_EQ(line_for("%{end:usec_frac}t", s.record), "124956\n");
    // A prefix alone is %t's format; a long strftime result is written whole (Apache keeps
    // up to 8 KiB of it; it was cut to nothing past 255 bytes).
    EXPECT_EQ(line_for("%{begin:}t %{end:}t", s.record),
              "[24/Nov/2026:07:19:31 +0000] [24/Nov/2026:07:19:31 +0000]\n");
    EXPECT_EQ(line_for("%{begin}t %{end}t", s.record),
              "[24/Nov/2026:07:19:31 +0000] [24/Nov/2026:07:19:31 +0000]\n");
    std::string many_years;
    std::string expected;
    for (int i = 0; i < 100; ++i) {
        many_years += "%Y-";
        expected += "2026-";
    }
    EXPECT_EQ(line_for("%{" + many_years + "}t", s.record), expected + "\n");
    EXPECT_EQ(line_for("%P", s.record), std::to_string(::getpid()) + "\n");
}

TEST_F(LogFormatTest, EmptyBodyIsADashForPercentBOnly) {
    Sample s;
    s.record.body_bytes = 0;
    EXPECT_EQ(line_for("%b %B", s.record), "- 0\n");
}

TEST_F(LogFormatTest, EscapesAsModLogConfig) {
    Sample s;
    s.request.fields[2].value = "a\"b\\c\td\x01\xff";
    s.request.target = "/x\ny";
    EXPECT_EQ(line_for("\"%{User-Agent}i\" %r", s.record),
              "\"a\\\"b\\\\c\\td\\x01\\xff\" GET /x\\ny HTTP/1.1\n");
}

TEST_F(LogFormatTest, LongLinesComeOutWholeAfterWhatTheBufferHeld) {
    // Far longer than the formatter's own buffer, with escapes throughout and a piece of
    // its own larger than that buffer.
    Sample s;
    std::string agent;
    std::string escaped;
    for (int i = 0; i < 3000; ++i) {
        agent += i % 97 == 0 ? '"' : char('a' + i % 26);
        escaped += i % 97 == 0 ? std::string("\\\"") : std::string(1, char('a' + i % 26));
    }
    s.request.fields[2].value = agent;
    const std::string target = "/" + std::string(700, 'x') + "\t";  // the request's views
    s.request.target = target;                                      // need it to outlive them
    auto compiled = LogFormat::compile("%r \"%{User-Agent}i\" %>s");
    ASSERT_TRUE(compiled);
    std::string line = "earlier line\n";
    compiled->append(s.record, line);
    EXPECT_EQ(line, "earlier line\nGET /" + std::string(700, 'x') + "\\t HTTP/1.1 \"" + escaped +
                        "\" 200\n");
}

TEST_F(LogFormatTest, RequestThatNeverParsedLogsDashes) {
    Sample s;
    s.record.request = nullptr;
    s.record.status = 408;
    EXPECT_EQ(line_for("\"%r\" %>s %m %U %{Referer}i", s.record), "\"-\" 408 - - -\n");
}

TEST_F(LogFormatTest, StatusConditions) {
    Sample s;
    EXPECT_EQ(line_for("%200,304{Referer}i %!200{Referer}i %404{Referer}i", s.record),
              "http://ref.test/ - -\n");
}

TEST_F(LogFormatTest, LiteralTextOfEveryLengthAroundTheShortLimit) {
    // Literal text of up to 16 bytes rides with the next item (or the newline); longer text
    // is a piece of its own. Each length on both sides of that limit, before an item, after
    // the last one, alone, and before an item whose status condition fails.
    Sample s;
    for (std::size_t n = 0; n <= 20; ++n) {
        const std::string text(n, 'a' + char(n % 26));
        EXPECT_EQ(line_for(text + "%s" + text + "%m%%" + text, s.record),
                  text + "200" + text + "GET%" + text + "\n")
            << n;
        EXPECT_EQ(line_for(text, s.record), text + "\n") << n;
        EXPECT_EQ(line_for(text + "%404{Referer}i" + text, s.record), text + "-" + text + "\n")
            << n;
    }
    EXPECT_EQ(line_for("%%%%%h%%", s.record), "%%192.0.2.7%\n");
    EXPECT_EQ(line_for("a%404%b%200%c", s.record), "a-b%c\n");  // conditions on "%%" hold
    EXPECT_EQ(line_for("", s.record), "\n");
}

TEST(LogFormat, BadFormatsNameThePosition) {
    const auto error = [](std::string_view format) {
        auto compiled = LogFormat::compile(format);
        return compiled ? std::string("compiled") : compiled.error().message;
    };
    EXPECT_EQ(error("%h %Z"), "unknown directive '%Z' at position 4");
    EXPECT_EQ(error("%h %{Referer"), "unterminated '{' at position 5");
    EXPECT_EQ(error("%h %"), "incomplete directive '%' at position 4");
    EXPECT_EQ(error("%i"), "%i needs a field name: %{Name}i at position 1");
    EXPECT_EQ(error("%{minutes}T"), "%{unit}T takes s, ms or us at position 1");
    EXPECT_EQ(error("%!{Referer}i"), "'!' without status codes at position 1");
    EXPECT_EQ(error("plain text"), "compiled");
}

TEST(LogEscape, PrintableTextIsUnchanged) {
    std::string line;
    append_escaped(line, "plain text ~!@#$%^&*()");
    EXPECT_EQ(line, "plain text ~!@#$%^&*()");
    append_escaped(line, std::string_view());
    EXPECT_EQ(line, "plain text ~!@#$%^&*()");
}

TEST(LogEscape, EveryByteAtEveryPlaceOfAWord) {
    // Each byte value, alone among plain bytes at each place of the first three 8-byte
    // words and the tail after them, comes out as mod_log_config writes it.
    const auto expected = [](unsigned char byte) -> std::string {
        switch (byte) {
            case '\b':
                return "\\b";
            case '\n':
                return "\\n";
            case '\r':
                return "\\r";
            case '\t':
                return "\\t";
            case '\v':
                return "\\v";
            case '"':
                return "\\\"";
            case '\\':
                return "\\\\";
            default:
                break;
        }
        if (byte < 0x20 || byte >= 0x7f) {
            constexpr char kHex[] = "0123456789abcdef";
            return std::string("\\x") + kHex[byte >> 4] + kHex[byte & 0xf];
        }
        return std::string(1, char(byte));
    };
    for (int value = 0; value < 256; ++value) {
        const auto byte = static_cast<unsigned char>(value);
        for (std::size_t place = 0; place < 27; ++place) {
            std::string text(27, 'a');
            text[place] = char(byte);
            std::string line;
            append_escaped(line, text);
            ASSERT_EQ(line, std::string(place, 'a') + expected(byte) + std::string(26 - place, 'a'))
                << "byte " << value << " at " << place;
        }
    }
}

}  // namespace
}  // namespace trident::log
