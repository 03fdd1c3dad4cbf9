// Durations and sizes as the config file writes them: a decimal number and a unit suffix.

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "config/yaml_reader.hpp"
#include "trident/config.hpp"

namespace trident {

namespace {

struct Unit {
    std::string_view suffix;
    std::uint64_t factor;
};

// Exact spellings only: "m" is minutes for a duration, so sizes do not take lower case
// beyond the customary "k"/"kB".
constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = kKiB * 1024;
constexpr std::uint64_t kGiB = kMiB * 1024;
constexpr std::uint64_t kTiB = kGiB * 1024;
constexpr std::uint64_t kMB = 1000 * 1000;
constexpr std::uint64_t kGB = kMB * 1000;
constexpr std::uint64_t kTB = kGB * 1000;
constexpr Unit kDurationUnits[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000},
};
constexpr Unit kSizeUnits[] = {
    {"", 1},       {"B", 1},    {"K", kKiB},   {"k", kKiB}, {"KiB", kKiB}, {"M", kMiB},
    {"MiB", kMiB}, {"G", kGiB}, {"GiB", kGiB}, {"T", kTiB}, {"TiB", kTiB}, {"KB", 1000},
    {"kB", 1000},  {"MB", kMB}, {"GB", kGB},   {"TB", kTB},
};

enum class Parsed { kOk, kMalformed, kTooLarge };

/// Splits "<digits><suffix>", looks the suffix up in `units` and multiplies, refusing any
/// result above `max`.
template <std::size_t N>
Parsed parse_scaled(std::string_view text, const Unit (&units)[N], std::uint64_t max,
                    std::uint64_t& out) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
        ++digits;
    }
    if (digits == 0) {
        return Parsed::kMalformed;
    }
    const std::string_view suffix = text.substr(digits);
    const Unit* unit = nullptr;
    for (const Unit& candidate : units) {
        if (candidate.suffix == suffix) {
            unit = &candidate;
            break;
        }
    }
    if (unit == nullptr) {
        return Parsed::kMalformed;
    }
    std::uint64_t number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + digits, number);
    if (error == std::errc::result_out_of_range || number > max / unit->factor) {
        return Parsed::kTooLarge;
    }
    if (error != std::errc() || end != text.data() + digits) {
        return Parsed::kMalformed;
    }
    out = number * unit->factor;
    return Parsed::kOk;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
    std::uint64_t ms = 0;
    // As Apache's timeouts, a count of seconds in an int: about 68 years. The server adds a
    // duration to clock readings in nanoseconds, where much more (from 292 years) wraps
    // around and reads as a deadline long past: "never" would have meant "at once".
    const auto max = std::uint64_t(kMaxDuration.count());
    switch (parse_scaled(text, kDurationUnits, max, ms)) {
        case Parsed::kOk:
            return Duration(static_cast<Duration::rep>(ms));
        case Parsed::kTooLarge:
            return Error{
                "duration " + config_reader::quote(text) + " is too large: at most " +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::seconds>(kMaxDuration).count()) +
                "s (about 68 years)"};
        case Parsed::kMalformed:
            break;
    }
    return Error{"expected a duration such as 5s or 250ms (units ms, s, m, h), got " +
                 config_reader::quote(text)};
}

Result<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t bytes = 0;
    switch (parse_scaled(text, kSizeUnits, std::numeric_limits<std::uint64_t>::max(), bytes)) {
        case Parsed::kOk:
            return bytes;
        case Parsed::kTooLarge:
            return Error{"size " + config_reader::quote(text) + " is too large"};
        case Parsed::kMalformed:
            break;
    }
    return Error{"expected a size such as 8190, 64KiB or 1GiB, got " + config_reader::quote(text)};
}

}  // namespace trident
