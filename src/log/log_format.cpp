#include "log/log_format.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstring>
#include <ctime>

namespace trident::log {

enum class LogFormat::Item : std::uint8_t {
    literal,
    client_address,     // %h %a
    local_address,      // %A
    remote_logname,     // %l
    remote_user,        // %u
    time,               // %t
    time_formatted,     // %{format}t
    request_line,       // %r
    status,             // %s %>s %<s
    body_bytes_clf,     // %b
    body_bytes,         // %B
    duration_us,        // %D
    duration_unit,      // %T %{s|ms|us}T
    bytes_received,     // %I
    bytes_sent,         // %O
    keep_alive,         // %k
    connection_status,  // %X
    request_field,      // %{Name}i
    response_field,     // %{Name}o
    server_name,        // %v %V
    port,               // %p %{local|canonical|remote}p
    process_id,         // %P %{pid|tid}P
    url_path,           // %U
    query,              // %q
    protocol,           // %H
    method,             // %m
};

/// A line in the making: appends go to a buffer on the stack and reach the caller's string
/// in one append at the end, or whenever the buffer fills. Each std::string append checks
/// capacity and writes a terminator, which cost more than the few bytes most pieces copy.
class LineWriter {
public:
    explicit LineWriter(std::string& line) noexcept : line_(line) {}
    LineWriter(const LineWriter&) = delete;
    LineWriter& operator=(const LineWriter&) = delete;

    [[gnu::always_inline]] void append(const char* data, std::size_t size) {
        if (size > kSize - used_) [[unlikely]] {
            spill(data, size);
            return;
        }
        std::memcpy(buffer_ + used_, data, size);
        used_ += size;
    }
    void append(std::string_view text) { append(text.data(), text.size()); }
    /// Appends the first `size` bytes of a 16-byte array: when the buffer has room for the
    /// whole array, a fixed-size copy of all of it instead of a memcpy call of a variable
    /// length.
    [[gnu::always_inline]] void append_short(const char (&bytes)[16], std::size_t size) {
        if (kSize - used_ < sizeof bytes) [[unlikely]] {
            append(bytes, size);
            return;
        }
        std::memcpy(buffer_ + used_, bytes, sizeof bytes);
        used_ += size;
    }
    LineWriter& operator+=(std::string_view text) {
        append(text);
        return *this;
    }
    [[gnu::always_inline]] LineWriter& operator+=(char c) {
        if (used_ == kSize) [[unlikely]] {
            flush();
        }
        buffer_[used_++] = c;
        return *this;
    }
    /// Hands the buffered text to the line. Called once the line is done, not from a
    /// destructor: it can throw std::bad_alloc.
    void flush() {
        line_.append(buffer_, used_);
        used_ = 0;
    }

private:
    [[gnu::noinline]] void spill(const char* data, std::size_t size) {
        flush();
        if (size > kSize) {
            line_.append(data, size);
        } else {
            std::memcpy(buffer_, data, size);
            used_ = size;
        }
    }

    static constexpr std::size_t kSize = 512;
    std::string& line_;
    std::size_t used_ = 0;
    char buffer_[kSize];
};

namespace {

constexpr char kHex[] = "0123456789abcdef";

/// The bytes a log line carries as they are: printable ASCII but for '"' and '\\' (Apache's
/// ap_escape_logitem escapes the rest).
constexpr std::array<bool, 256> kPlain = [] {
    std::array<bool, 256> plain{};
    for (int byte = 0x20; byte < 0x7f; ++byte) {
        plain[std::size_t(byte)] = byte != '"' && byte != '\\';
    }
    return plain;
}();

void append_number(LineWriter& line, std::uint64_t value) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    line.append(digits, std::size_t(end - digits));
}

std::string error_at(std::size_t position, std::string_view what) {
    // The config reader puts the key before it: "FILE:L:C: access_log.format: ...".
    return std::string(what) + " at position " + std::to_string(position + 1);
}

/// "[24/Nov/2026:07:19:31 +0000]" in local time, formatted once per second per thread.
void append_clf_time(LineWriter& line, std::chrono::system_clock::time_point when) {
    struct Cached {
        std::time_t second = -1;
        std::size_t size = 0;
        char text[40];
    };
    thread_local Cached cached;  // one look-up, not three
    const std::time_t second = std::chrono::system_clock::to_time_t(when);
    if (second != cached.second) {
        std::tm local{};
        localtime_r(&second, &local);
        cached.size =
            std::strftime(cached.text, sizeof cached.text, "[%d/%b/%Y:%H:%M:%S %z]", &local);
        cached.second = second;
    }
    line.append(cached.text, cached.size);
}

/// %{format}t: Apache's sec, msec, usec, msec_frac, usec_frac, or a strftime format, each
/// optionally prefixed "begin:" (request start, the default) or "end:" (response end); a
/// prefix alone, with or without its ':', gives %t's format, as in Apache.
void append_custom_time(LineWriter& line, const std::string& argument, const AccessRecord& record) {
    std::string_view format = argument;  // a suffix of `argument`: NUL-terminated still
    auto when = record.received;
    // Apache's reading: "begin" or "end", then an optional ':'.
    if (format.starts_with("begin")) {
        format.remove_prefix(5);
    } else if (format.starts_with("end")) {
        format.remove_prefix(3);
        when += record.duration;
    }
    if (format.starts_with(':')) {
        format.remove_prefix(1);
    }
    if (format.empty()) {
        append_clf_time(line, when);
        return;
    }
    const auto since_epoch =
        std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
    const auto us = std::uint64_t(since_epoch < 0 ? 0 : since_epoch);
    if (format == "sec") {
        append_number(line, us / 1'000'000);
    } else if (format == "msec") {
        append_number(line, us / 1'000);
    } else if (format == "usec") {
        append_number(line, us);
    } else if (format == "msec_frac" || format == "usec_frac") {
        const bool milli = format == "msec_frac";
        char digits[8];
        const std::uint64_t fraction = milli ? (us / 1000) % 1000 : us % 1'000'000;
        const int width = milli ? 3 : 6;
        std::uint64_t rest = fraction;
        for (int i = width - 1; i >= 0; --i) {
            digits[i] = char('0' + rest % 10);
            rest /= 10;
        }
        line.append(digits, std::size_t(width));
    } else {
        const std::time_t second = std::chrono::system_clock::to_time_t(when);
        std::tm local{};
        localtime_r(&second, &local);
        // Apache's room for it (MAX_STRING_LEN); a longer result is left out, as there.
        char text[8192];
        line.append(text, std::strftime(text, sizeof text, format.data(), &local));
    }
}

/// The value of response field `name` in a serialised head, or an empty view.
std::string_view response_field(std::string_view head, std::string_view name) {
    std::size_t line = head.find('\n');  // skip the status line
    while (line != std::string_view::npos && line + 1 < head.size()) {
        const std::size_t start = line + 1;
        std::size_t end = head.find('\n', start);
        if (end == std::string_view::npos) {
            end = head.size();
        }
        std::string_view field = head.substr(start, end - start);
        if (field.ends_with('\r')) {
            field.remove_suffix(1);
        }
        const std::size_t colon = field.find(':');
        if (colon != std::string_view::npos && http::iequals(field.substr(0, colon), name)) {
            std::string_view value = field.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
                value.remove_prefix(1);
            }
            return value;
        }
        line = end;
    }
    return {};
}

/// Whether any of the 8 bytes of `word` is not kPlain: below 0x20, 0x7f or above, '"' or
/// '\\'. Exact for "any" (the borrows and carries can only mark bytes above a real one).
constexpr bool needs_escape(std::uint64_t word) noexcept {
    constexpr std::uint64_t kOnes = 0x0101010101010101;
    constexpr std::uint64_t kHighs = 0x8080808080808080;
    const auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHighs; };
    const std::uint64_t below_space = (word - kOnes * 0x20) & ~word & kHighs;
    const std::uint64_t del_or_high = ((word + kOnes) | word) & kHighs;
    return (below_space | del_or_high | has_zero(word ^ (kOnes * '"')) |
            has_zero(word ^ (kOnes * '\\'))) != 0;
}

void escape_into(LineWriter& line, std::string_view text) {
    if (text.empty()) {
        return;  // its data() may be null, which memcpy must not get even for no bytes
    }
    // Runs that need no escape (usually the whole text) go in whole, not byte by byte: eight
    // bytes at a time are checked at once while none of them needs an escape.
    std::size_t run = 0;
    std::size_t i = 0;
    for (std::uint64_t word; i + 8 <= text.size(); i += 8) {
        std::memcpy(&word, text.data() + i, 8);
        if (needs_escape(word)) {
            break;
        }
    }
    for (; i < text.size(); ++i) {
        const char c = text[i];
        const auto byte = static_cast<unsigned char>(c);
        if (kPlain[byte]) {
            continue;
        }
        line.append(text.data() + run, i - run);
        run = i + 1;
        // mod_log_config's named escapes, then '"' and '\\' as themselves, then \xhh.
        constexpr std::string_view kNamed = "\b\n\r\t\v";
        char escape[4] = {'\\', c, 0, 0};
        std::size_t size = 2;
        if (const std::size_t named = kNamed.find(c); named != std::string_view::npos) {
            escape[1] = "bnrtv"[named];
        } else if (c != '"' && c != '\\') {
            escape[1] = 'x';
            escape[2] = kHex[byte >> 4];
            escape[3] = kHex[byte & 0xf];
            size = 4;
        }
        line.append(escape, size);
    }
    line.append(text.data() + run, text.size() - run);
}

/// `text`, or "-" when there is none. Escaped, unless the server wrote it itself (the
/// numeric addresses from inet_ntop, which Apache logs as they are too).
void append_or_dash(LineWriter& line, std::string_view text, bool escape = true) {
    if (text.empty()) {
        line += '-';
    } else if (escape) {
        escape_into(line, text);
    } else {
        line.append(text);
    }
}

std::string_view protocol_of(const http::Request& request) {
    return request.version.minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

/// The request-target's path, as %U logs it: decoded when routing got that far.
std::string_view url_path(const http::Request& request) {
    if (!request.path.empty()) {
        return request.path;
    }
    return request.target.substr(0, request.target.find('?'));
}

/// Host without its port (%v, %V); the local address when the request named none.
std::string_view server_name(const AccessRecord& record) {
    if (record.request != nullptr && !record.request->host.empty()) {
        std::string_view host = record.request->host;
        if (host.front() == '[') {
            return host.substr(0, host.find(']') + 1);
        }
        return host.substr(0, host.find(':'));
    }
    return record.endpoints != nullptr ? std::string_view(record.endpoints->local) : "";
}

bool takes_argument(char letter) {
    return letter == 'i' || letter == 'o';
}

}  // namespace

LogFormat::Piece LogFormat::literal_piece(std::string text) {
    return Piece{Item::literal, std::move(text), {}, false, false, {}};
}

Result<LogFormat::Piece> LogFormat::parse_directive(std::string_view format, std::size_t& i) {
    const std::size_t start = i;  // at the '%'
    Piece piece = literal_piece({});
    ++i;
    // Status conditions: "%400,501{User-agent}i", "%!200,304{Referer}i".
    if (i < format.size() && format[i] == '!') {
        piece.negate = true;
        ++i;
    }
    while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        int status = 0;
        const auto [end, ec] =
            std::from_chars(format.data() + i, format.data() + format.size(), status);
        if (ec != std::errc() || status < 100 || status > 999) {
            return Error{error_at(i, "bad status condition")};
        }
        piece.statuses.push_back(status);
        i = std::size_t(end - format.data());
        if (i < format.size() && format[i] == ',') {
            ++i;
        }
    }
    if (piece.negate && piece.statuses.empty()) {
        return Error{error_at(start, "'!' without status codes")};
    }
    if (i < format.size() && (format[i] == '<' || format[i] == '>')) {
        piece.original = format[i] == '<';
        ++i;
    }
    bool has_argument = false;
    if (i < format.size() && format[i] == '{') {
        const std::size_t close = format.find('}', i);
        if (close == std::string_view::npos) {
            return Error{error_at(i, "unterminated '{'")};
        }
        piece.argument = std::string(format.substr(i + 1, close - i - 1));
        has_argument = true;
        i = close + 1;
    }
    if (i >= format.size()) {
        return Error{
            error_at(start, "incomplete directive '" + std::string(format.substr(start)) + "'")};
    }
    const char letter = format[i++];
    if (takes_argument(letter) && (!has_argument || piece.argument.empty())) {
        return Error{
            error_at(start, std::string("%") + letter + " needs a field name: %{Name}" + letter)};
    }
    const std::string_view argument = piece.argument;
    switch (letter) {
        case 'h':
        case 'a':
            piece.item = Item::client_address;
            break;
        case 'A':
            piece.item = Item::local_address;
            break;
        case 'l':
            piece.item = Item::remote_logname;
            break;
        case 'u':
            piece.item = Item::remote_user;
            break;
        case 't':
            piece.item = has_argument ? Item::time_formatted : Item::time;
            break;
        case 'r':
            piece.item = Item::request_line;
            break;
        case 's':
            piece.item = Item::status;
            break;
        case 'b':
            piece.item = Item::body_bytes_clf;
            break;
        case 'B':
            piece.item = Item::body_bytes;
            break;
        case 'D':
            piece.item = Item::duration_us;
            break;
        case 'T':
            if (has_argument && argument != "s" && argument != "ms" && argument != "us") {
                return Error{error_at(start, "%{unit}T takes s, ms or us")};
            }
            piece.item = Item::duration_unit;
            break;
        case 'I':
            piece.item = Item::bytes_received;
            break;
        case 'O':
            piece.item = Item::bytes_sent;
            break;
        case 'k':
            piece.item = Item::keep_alive;
            break;
        case 'X':
            piece.item = Item::connection_status;
            break;
        case 'i':
            piece.item = Item::request_field;
            break;
        case 'o':
            piece.item = Item::response_field;
            break;
        case 'v':
        case 'V':
            piece.item = Item::server_name;
            break;
        case 'p':
            if (has_argument && argument != "local" && argument != "canonical" &&
                argument != "remote") {
                return Error{error_at(start, "%{type}p takes canonical, local or remote")};
            }
            piece.item = Item::port;
            break;
        case 'P':
            if (has_argument && argument != "pid" && argument != "tid") {
                return Error{error_at(start, "%{type}P takes pid or tid")};
            }
            piece.item = Item::process_id;
            break;
        case 'U':
            piece.item = Item::url_path;
            break;
        case 'q':
            piece.item = Item::query;
            break;
        case 'H':
            piece.item = Item::protocol;
            break;
        case 'm':
            piece.item = Item::method;
            break;
        case '%':
            piece.item = Item::literal;
            piece.argument = "%";
            break;
        default:
            return Error{error_at(start, std::string("unknown directive '%") + letter + "'")};
    }
    return piece;
}

Result<LogFormat> LogFormat::compile(std::string_view format) {
    LogFormat compiled;
    if (format == "common") {
        format = kCommonLogFormat;
    } else if (format == "combined") {
        format = kCombinedLogFormat;
    }
    compiled.source_ = std::string(format);
    std::size_t i = 0;
    while (i < format.size()) {
        if (format[i] != '%') {
            const std::size_t next = std::min(format.find('%', i), format.size());
            compiled.pieces_.push_back(literal_piece(std::string(format.substr(i, next - i))));
            i = next;
            continue;
        }
        auto piece = parse_directive(format, i);
        if (!piece) {
            return piece.error();
        }
        compiled.pieces_.push_back(std::move(piece.value()));
    }
    compiled.fold_literals();
    return compiled;
}

void LogFormat::fold_literals() {
    const auto short_text = [](std::string_view text) {
        ShortText folded;
        std::memcpy(folded.bytes, text.data(), text.size());
        folded.size = std::uint8_t(text.size());
        return folded;
    };
    std::vector<Piece> folded;
    std::string pending;  // literal text not placed yet
    for (Piece& piece : pieces_) {
        if (piece.item == Item::literal && piece.statuses.empty()) {
            pending += piece.argument;  // "%%" is a literal piece of its own
            continue;
        }
        if (pending.size() > kShortText) {
            folded.push_back(literal_piece(std::move(pending)));
        } else {
            piece.prefix = short_text(pending);
        }
        pending.clear();
        folded.push_back(std::move(piece));
    }
    pending += '\n';
    if (pending.size() > kShortText) {
        pending.pop_back();
        folded.push_back(literal_piece(std::move(pending)));
        pending = "\n";
    }
    tail_ = short_text(pending);
    pieces_ = std::move(folded);
}

void append_escaped(std::string& line, std::string_view text) {
    LineWriter writer(line);
    escape_into(writer, text);
    writer.flush();
}

void LogFormat::append(const AccessRecord& record, std::string& out) const {
    LineWriter line(out);
    for (const Piece& piece : pieces_) {
        line.append_short(piece.prefix.bytes, piece.prefix.size);
        if (!piece.statuses.empty()) {
            bool listed = false;
            for (const int status : piece.statuses) {
                listed = listed || status == record.status;
            }
            if (listed == piece.negate) {
                line += '-';
                continue;
            }
        }
        append_piece(piece, record, line);
    }
    line.append_short(tail_.bytes, tail_.size);
    line.flush();
}

void LogFormat::append_piece(const Piece& piece, const AccessRecord& record,
                             LineWriter& line) const {
    const http::Request* request = record.request;
    const Endpoints* ends = record.endpoints;
    switch (piece.item) {
        case Item::literal:
            line += piece.argument;
            break;
        case Item::client_address:
            append_or_dash(line, ends != nullptr ? std::string_view(ends->client) : "", false);
            break;
        case Item::local_address:
            append_or_dash(line, ends != nullptr ? std::string_view(ends->local) : "", false);
            break;
        case Item::remote_logname:
        case Item::remote_user:
            line += '-';  // no identd lookups and no authentication
            break;
        case Item::time:
            append_clf_time(line, record.received);
            break;
        case Item::time_formatted:
            append_custom_time(line, piece.argument, record);
            break;
        case Item::request_line:
            if (request == nullptr) {
                line += '-';
                break;
            }
            escape_into(line, request->method_text);
            line += ' ';
            escape_into(line, request->target);
            line += ' ';
            line += protocol_of(*request);
            break;
        case Item::status:
            append_number(line, std::uint64_t(record.status));
            break;
        case Item::body_bytes_clf:
            if (record.body_bytes == 0) {
                line += '-';
            } else {
                append_number(line, record.body_bytes);
            }
            break;
        case Item::body_bytes:
            append_number(line, record.body_bytes);
            break;
        case Item::duration_us:
            append_number(line, std::uint64_t(record.duration.count()));
            break;
        case Item::duration_unit: {
            const auto us = std::uint64_t(record.duration.count());
            append_number(line, piece.argument == "us"   ? us
                                : piece.argument == "ms" ? us / 1000
                                                         : us / 1'000'000);
            break;
        }
        case Item::bytes_received:
            append_number(line, record.bytes_received);
            break;
        case Item::bytes_sent:
            append_number(line, record.bytes_sent);
            break;
        case Item::keep_alive:
            append_number(line, record.keep_alive_requests);
            break;
        case Item::connection_status:
            line += record.connection_status;
            break;
        case Item::request_field:
            append_or_dash(line, request != nullptr ? request->field(piece.argument) : "");
            break;
        case Item::response_field:
            append_or_dash(line, response_field(record.response_head, piece.argument));
            break;
        case Item::server_name:
            append_or_dash(line, server_name(record));
            break;
        case Item::port:
            append_number(line, ends == nullptr              ? 0
                                : piece.argument == "remote" ? ends->client_port
                                                             : ends->local_port);
            break;
        case Item::process_id:
            append_number(line, piece.argument == "tid" ? std::uint64_t(::syscall(SYS_gettid))
                                                        : std::uint64_t(::getpid()));
            break;
        case Item::url_path:
            append_or_dash(line, request != nullptr ? url_path(*request) : "");
            break;
        case Item::query:
            if (request != nullptr && !request->query.empty()) {
                line += '?';
                escape_into(line, request->query);
            }
            break;
        case Item::protocol:
            append_or_dash(line, request != nullptr ? protocol_of(*request) : "");
            break;
        case Item::method:
            append_or_dash(line, request != nullptr ? request->method_text : "");
            break;
    }
}

}  // namespace trident::log
