#include "http/http_date.hpp"

#include <gtest/gtest.h>

#include <string>

namespace trident::http {
namespace {

std::string format(std::time_t t) {
    char out[kHttpDateLength + 1] = {};
    out[kHttpDateLength] = '#';  // a guard: the formatter writes exactly 29 bytes
    format_http_date(t, out);
    EXPECT_EQ(out[kHttpDateLength], '#');
    return std::string(out, kHttpDateLength);
}

int current_year() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    return tm.tm_year + 1900;
}

TEST(HttpDateTest, FormatsKnownTimestamps) {
    EXPECT_EQ(format(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110 §5.6.7
    EXPECT_EQ(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(format(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
    EXPECT_EQ(format(1709251199), "Thu, 29 Feb 2024 23:59:59 GMT");
    EXPECT_EQ(format(2147483648), "Tue, 19 Jan 2038 03:14:08 GMT");  // past 32-bit time_t
    EXPECT_EQ(format(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    EXPECT_EQ(format(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST(HttpDateTest, FormatClampsToFourDigitYears) {
    EXPECT_EQ(format(253402300800), "Fri, 31 Dec 9999 23:59:59 GMT");
    EXPECT_EQ(format(-62167219201), "Sat, 01 Jan 0000 00:00:00 GMT");
}

TEST(HttpDateTest, FormatAgreesWithGmtimeOverManyDays) {
    static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (std::time_t t = -86400LL * 800; t < 86400LL * 40000; t += 86400 * 7 + 3607) {
        std::tm tm{};
        gmtime_r(&t, &tm);
        char expected[64];
        std::snprintf(expected, sizeof expected, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                      kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900,
                      tm.tm_hour, tm.tm_min, tm.tm_sec);
        ASSERT_EQ(format(t), expected) << t;
    }
}

TEST(HttpDateTest, ParsesAllThreeForms) {
    EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    if (current_year() < 2044) {  // "94" means 2094 once that is no more than 50 years ahead
        EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    }
    EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
    EXPECT_EQ(parse_http_date("Thu Feb 29 12:00:00 2024"), 1709208000);
    EXPECT_EQ(parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT"), -1);
}

TEST(HttpDateTest, AcceptsALeapSecond) {
    // RFC 5322 §3.3: second may be 60; it lands on the next minute, not on a wrong weekday.
    EXPECT_EQ(parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228800);
}

TEST(HttpDateTest, TwoDigitYearsStayWithinFiftyYears) {
    // RFC 9110 §5.6.7: a year more than 50 years ahead is taken from the previous century.
    const int year = current_year();
    for (const int offset : {-49, -10, 0, 10, 49, 50}) {
        const int target = year + offset;
        std::tm tm{};
        tm.tm_year = target - 1900;
        tm.tm_mon = 2;
        tm.tm_mday = 1;
        const std::time_t expected = timegm(&tm);
        static const char* const kLongDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                "Thursday", "Friday", "Saturday"};
        char text[64];
        std::snprintf(text, sizeof text, "%s, 01-Mar-%02d 00:00:00 GMT", kLongDays[tm.tm_wday],
                      target % 100);
        EXPECT_EQ(parse_http_date(text), expected) << text << " → year " << target;
    }
}

TEST(HttpDateTest, RejectsMalformedDates) {
    const char* const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37 GM",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Mon, 06 Nov 1994 08:49:37 GMT",  // 6 Nov 1994 was a Sunday
        "Sun, 6 Nov 1994 08:49:37 GMT ",  // 29 chars but one-digit day
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT ",
        "Sun, 06 Nox 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Wed, 31 Nov 1994 08:49:37 GMT",  // November has 30 days
        "Tue, 29 Feb 2100 00:00:00 GMT",  // not a leap year
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08-49-37 GMT",
        "Sun, 06 Nov 199x 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sundy, 06-Nov-94 08:49:37 GMT",
        "Monday, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT ",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov 06 08:49:37 1994 ",
        "Sun Nov  6 08:49:37 94  ",
        "Mon Nov  6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun Nov 0x 08:49:37 1994",
        ", 06-Nov-94 08:49:37 GMT",
    };
    for (const char* text : bad) {
        EXPECT_EQ(parse_http_date(text), std::nullopt) << '"' << text << '"';
    }
    EXPECT_EQ(parse_http_date(std::string_view("Sun, 06 Nov 1994 08:49:37 GMT\0", 30)),
              std::nullopt);
}

TEST(HttpDateTest, AsctimeAcceptsTwoDigitDay) {
    EXPECT_EQ(parse_http_date("Wed Nov 16 08:49:37 1994"), 784111777 + 10 * 86400);
}

TEST(HttpDateTest, RoundTrips) {
    for (std::time_t t = 0; t < 4'000'000'000; t += 12'345'679) {
        const std::string text = format(t);
        EXPECT_EQ(parse_http_date(text), t) << text;
    }
}

TEST(HttpDateTest, DateCacheReformatsOnlyWhenTheSecondChanges) {
    DateCache cache;
    const std::string_view first = cache.get(784111777);
    EXPECT_EQ(first, "Sun, 06 Nov 1994 08:49:37 GMT");
    const char* storage = first.data();
    const std::string_view again = cache.get(784111777);
    EXPECT_EQ(again, "Sun, 06 Nov 1994 08:49:37 GMT");
    EXPECT_EQ(again.data(), storage);
    EXPECT_EQ(cache.get(784111778), "Sun, 06 Nov 1994 08:49:38 GMT");
    EXPECT_EQ(cache.get(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

}  // namespace
}  // namespace trident::http
