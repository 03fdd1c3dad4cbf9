#pragma once

// Apache's LogFormat language (mod_log_config), compiled once at configuration time into a
// list of pieces, then run per request into a caller's line buffer without iostreams or
// allocation beyond that buffer's growth.
//
// Supported: %h %a %A %l %u %t %{format}t %r %>s %<s %s %b %B %D %T %{unit}T %I %O %k %X
// %{Name}i %{Name}o %v %V %p %{local|remote|canonical}p %P %{pid|tid}P %U %q %H %m %%, with
// Apache's status conditions (%400,501{User-agent}i, %!200{Referer}i). Text taken from the
// request is escaped as mod_log_config does: `"` and `\` with a backslash, \b \n \r \t \v,
// and every other byte outside 0x20..0x7e as \xhh.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "log/access_record.hpp"
#include "trident/result.hpp"

namespace trident::log {

class LineWriter;

/// Apache's two predefined formats.
inline constexpr std::string_view kCommonLogFormat = "%h %l %u %t \"%r\" %>s %b";
inline constexpr std::string_view kCombinedLogFormat =
    "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"";

class LogFormat {
public:
    /// Compiles `format`: "common", "combined", or a LogFormat string. An error names the
    /// 1-based position of the offending directive.
    static Result<LogFormat> compile(std::string_view format);

    /// Appends one line for `record`, newline included, to `line`.
    void append(const AccessRecord& record, std::string& line) const;

    /// The LogFormat string this was compiled from (names expanded).
    const std::string& source() const noexcept { return source_; }

private:
    enum class Item : std::uint8_t;
    /// Literal text of at most this many bytes rides along with the piece it precedes.
    static constexpr std::size_t kShortText = 16;
    /// Up to kShortText bytes, copied in one fixed-size move (the array is read whole).
    struct ShortText {
        char bytes[kShortText] = {};
        std::uint8_t size = 0;
    };
    struct Piece {
        Item item;
        std::string argument;       ///< literal text, a field name, a strftime format or a unit
        std::vector<int> statuses;  ///< log the item only for these statuses (or all others)
        bool negate = false;
        bool original = false;  ///< '<' modifier (the same as final here: no internal redirects)
        ShortText prefix;       ///< the literal text before the item, whatever the statuses
    };

    static Piece literal_piece(std::string text);
    static Result<Piece> parse_directive(std::string_view format, std::size_t& i);
    void append_piece(const Piece& piece, const AccessRecord& record, LineWriter& line) const;
    /// Merges literal pieces and folds the short ones into the next item's prefix (or the
    /// line's tail), so a combined line runs 9 items instead of 18 pieces.
    void fold_literals();

    std::string source_;
    std::vector<Piece> pieces_;
    ShortText tail_{{'\n'}, 1};  ///< the literal text after the last item, newline included
};

/// Appends `text` escaped as Apache's ap_escape_logitem does.
void append_escaped(std::string& line, std::string_view text);

}  // namespace trident::log
