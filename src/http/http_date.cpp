#include "http/http_date.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace trident::http {

namespace {

// RFC 9110 §5.6.7: day-name, day-name-l and month are case-sensitive English names.
constexpr std::array<std::string_view, 7> kDayNames = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDayNames = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonthNames = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

constexpr std::int64_t kSecondsPerDay = 86400;
// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years a 4-digit field can hold.
constexpr std::int64_t kFirstFormattable = -62167219200;
constexpr std::int64_t kLastFormattable = 253402300799;

struct CivilDate {
    std::int64_t year;
    unsigned month;  // 1-12
    unsigned day;    // 1-31
};

// Days since 1970-01-01 → proleptic Gregorian date (H. Hinnant's civil_from_days).
constexpr CivilDate civil_from_days(std::int64_t days) noexcept {
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const auto doe = static_cast<unsigned>(days - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned day = doy - (153 * mp + 2) / 5 + 1;
    const unsigned month = mp < 10 ? mp + 3 : mp - 9;
    return {std::int64_t(yoe) + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

constexpr bool is_leap(int year) noexcept {
    return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

constexpr int days_in_month(int year, int month) noexcept {
    constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap(year) ? 29 : kDays[std::size_t(month - 1)];
}

void put2(char* out, unsigned value) noexcept {
    out[0] = char('0' + value / 10 % 10);
    out[1] = char('0' + value % 10);
}

void put_name(char* out, std::string_view name) noexcept {
    std::copy(name.begin(), name.end(), out);
}

/// The index of `name` in `names`, or -1.
template <std::size_t N>
int find_name(const std::array<std::string_view, N>& names, std::string_view name) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
        if (names[i] == name) {
            return int(i);
        }
    }
    return -1;
}

/// `count` ASCII digits at text[pos..) as a number, or -1.
int digits(std::string_view text, std::size_t pos, std::size_t count) noexcept {
    if (pos + count > text.size()) {
        return -1;
    }
    int value = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

struct DateFields {
    int weekday = -1;  // 0 = Sunday
    int day = -1;
    int month = -1;  // 0-11
    int year = -1;
    int hour = -1;
    int minute = -1;
    int second = -1;
};

/// "hh:mm:ss" at text[pos..).
bool parse_time_of_day(std::string_view text, std::size_t pos, DateFields& f) noexcept {
    if (pos + 8 > text.size() || text[pos + 2] != ':' || text[pos + 5] != ':') {
        return false;
    }
    f.hour = digits(text, pos, 2);
    f.minute = digits(text, pos + 3, 2);
    f.second = digits(text, pos + 6, 2);
    return f.hour >= 0 && f.minute >= 0 && f.second >= 0;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7).
bool parse_imf_fixdate(std::string_view text, DateFields& f) noexcept {
    if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' ||
        text[16] != ' ' || text.substr(25) != " GMT") {
        return false;
    }
    f.weekday = find_name(kDayNames, text.substr(0, 3));
    f.day = digits(text, 5, 2);
    f.month = find_name(kMonthNames, text.substr(8, 3));
    f.year = digits(text, 12, 4);
    return parse_time_of_day(text, 17, f);
}

// RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past century.
int expand_two_digit_year(int yy) noexcept {
    std::tm now{};
    const std::time_t t = std::time(nullptr);
    gmtime_r(&t, &now);
    const int this_year = now.tm_year + 1900;
    int year = this_year - this_year % 100 + yy;
    if (year > this_year + 50) {
        year -= 100;
    } else if (year <= this_year - 50) {
        year += 100;  // nearer in the future than in the past: keep the year closest to now
    }
    return year;
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT" (RFC 9110 §5.6.7, obsolete).
bool parse_rfc850(std::string_view text, DateFields& f) noexcept {
    const std::size_t comma = text.find(',');
    if (comma == std::string_view::npos) {
        return false;
    }
    const std::string_view rest = text.substr(comma);  // ", 06-Nov-94 08:49:37 GMT"
    if (rest.size() != 24 || rest.substr(0, 2) != ", " || rest[4] != '-' || rest[8] != '-' ||
        rest[11] != ' ' || rest.substr(20) != " GMT") {
        return false;
    }
    f.weekday = find_name(kLongDayNames, text.substr(0, comma));
    f.day = digits(rest, 2, 2);
    f.month = find_name(kMonthNames, rest.substr(5, 3));
    const int yy = digits(rest, 9, 2);
    f.year = yy < 0 ? -1 : expand_two_digit_year(yy);
    return parse_time_of_day(rest, 12, f);
}

// asctime-date: "Sun Nov  6 08:49:37 1994" (RFC 9110 §5.6.7, obsolete).
bool parse_asctime(std::string_view text, DateFields& f) noexcept {
    if (text.size() != 24 || text[3] != ' ' || text[7] != ' ' || text[10] != ' ' ||
        text[19] != ' ') {
        return false;
    }
    f.weekday = find_name(kDayNames, text.substr(0, 3));
    f.month = find_name(kMonthNames, text.substr(4, 3));
    // date3 = month SP ( 2DIGIT / ( SP DIGIT ) )
    f.day = text[8] == ' ' ? digits(text, 9, 1) : digits(text, 8, 2);
    f.year = digits(text, 20, 4);
    return parse_time_of_day(text, 11, f);
}

}  // namespace

void format_http_date(std::time_t t, char* out) noexcept {
    const std::int64_t clamped = std::clamp<std::int64_t>(t, kFirstFormattable, kLastFormattable);
    std::int64_t days = clamped / kSecondsPerDay;
    std::int64_t seconds = clamped % kSecondsPerDay;
    if (seconds < 0) {
        seconds += kSecondsPerDay;
        --days;
    }
    const CivilDate date = civil_from_days(days);
    const auto weekday = static_cast<std::size_t>(((days % 7) + 11) % 7);  // 1970-01-01: Thursday
    const auto year = static_cast<unsigned>(date.year);
    const auto sec = static_cast<unsigned>(seconds);

    // IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
    put_name(out, kDayNames[weekday]);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, date.day);
    out[7] = ' ';
    put_name(out + 8, kMonthNames[date.month - 1]);
    out[11] = ' ';
    put2(out + 12, year / 100);
    put2(out + 14, year % 100);
    out[16] = ' ';
    put2(out + 17, sec / 3600);
    out[19] = ':';
    put2(out + 20, sec / 60 % 60);
    out[22] = ':';
    put2(out + 23, sec % 60);
    put_name(out + 25, " GMT");
}

std::optional<std::time_t> parse_http_date(std::string_view text) noexcept {
    DateFields f;
    bool ok = false;
    if (text.size() == 29 && text[3] == ',') {
        ok = parse_imf_fixdate(text, f);
    } else if (text.size() == 24 && text[3] == ' ') {
        ok = parse_asctime(text, f);
    } else {
        ok = parse_rfc850(text, f);
    }
    // RFC 5322 §3.3 (which IMF-fixdate follows) allows second 60, a leap second.
    if (!ok || f.weekday < 0 || f.month < 0 || f.year < 0 || f.day < 1 ||
        f.day > days_in_month(f.year, f.month + 1) || f.hour > 23 || f.minute > 59 ||
        f.second > 60) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = f.year - 1900;
    tm.tm_mon = f.month;
    tm.tm_mday = f.day;
    tm.tm_hour = f.hour;
    tm.tm_min = f.minute;
    // Seconds are added afterwards so a leap second cannot move tm_wday onto the next day.
    const std::time_t minute_start = timegm(&tm);
    if (tm.tm_wday != f.weekday) {
        return std::nullopt;  // the day name must name the date's actual weekday
    }
    return minute_start + f.second;
}

}  // namespace trident::http
