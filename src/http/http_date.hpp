#pragma once

// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out, all three formats in.

#include <ctime>
#include <optional>
#include <string_view>

namespace trident::http {

inline constexpr std::size_t kHttpDateLength = 29;  ///< "Sun, 06 Nov 1994 08:49:37 GMT"

/// Writes the IMF-fixdate of `t` (UTC) into out[0..29).
void format_http_date(std::time_t t, char* out) noexcept;

/// Parses IMF-fixdate, obsolete RFC 850 and asctime forms; nullopt when malformed.
std::optional<std::time_t> parse_http_date(std::string_view text) noexcept;

/// The Date field value, reformatted only when the second changes. One per thread.
class DateCache {
public:
    /// The IMF-fixdate for `now`; the view stays valid until the next call.
    std::string_view get(std::time_t now) noexcept {
        if (now != second_) {
            format_http_date(now, text_);
            second_ = now;
        }
        return {text_, kHttpDateLength};
    }

private:
    std::time_t second_ = -1;
    char text_[kHttpDateLength + 1] = {};
};

}  // namespace trident::http
