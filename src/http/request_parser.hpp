#pragma once

// Incremental, zero-copy parser for a request head (request line and header fields),
// RFC 9112 §2-§5. It does no I/O and allocates nothing per byte: views in the Request point
// into the caller's buffer.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "trident/http/request.hpp"
#include "trident/http/status.hpp"

namespace trident::http {

struct ParserLimits {
    std::uint32_t request_line = 8190;        ///< bytes before CRLF; longer → 414
    std::uint32_t request_fields = 100;       ///< field lines; more → 400
    std::uint32_t request_field_size = 8190;  ///< bytes of one field line before CRLF; longer → 400
};

enum class ParseState : std::uint8_t { need_more, complete, error };

struct ParseError {
    Status status = Status::bad_request;
    std::string_view reason;  ///< static text for logs and the error page
};

class RequestParser {
public:
    /// Empty lines ignored before a request line: RFC 9112 §2.2 asks for at least one;
    /// Apache ignores ten (DEFAULT_LIMIT_BLANK_LINES), and so do we. One more → 400.
    static constexpr std::uint32_t kMaxLeadingEmptyLines = 10;

    explicit RequestParser(const ParserLimits& limits) noexcept : limits_(limits) {}

    /// Parses the head at the start of `input`, which holds every unconsumed byte of the
    /// connection. After need_more, call again with the same start and more bytes appended:
    /// scanning resumes where it stopped, so the total cost is linear. On complete, `request`
    /// is filled and head_length() is the number of bytes the head used. On error, error()
    /// says which status to answer; the connection must close after answering.
    ParseState parse(std::string_view input, Request& request) noexcept;

    std::size_t head_length() const noexcept { return head_length_; }
    const ParseError& error() const noexcept { return error_; }

    /// Readies the parser for the next request on the same connection.
    void reset() noexcept;

private:
    enum class Phase : std::uint8_t { request_line, fields, complete, error };

    ParseState fail(Status status, std::string_view reason) noexcept;
    /// Each handles one complete line [line_start_, cr) and returns false after fail().
    bool request_line(std::string_view input, std::size_t cr, Request& request) noexcept;
    bool field_line(std::string_view input, std::size_t cr, Request& request) noexcept;
    /// Checks what is buffered of the request line against the limits, before it ends.
    bool request_line_limits(std::string_view line) noexcept;
    bool http_version(std::string_view version, Request& request) noexcept;
    bool end_of_head(Request& request) noexcept;
    bool record_semantics(const Field& field, Request& request) noexcept;
    bool record_content_length(std::string_view value, Request& request) noexcept;

    ParserLimits limits_;
    // Resume state: everything is an offset into `input`, so nothing dangles between calls.
    std::size_t scanned_ = 0;     ///< bytes of input already searched for '\n'
    std::size_t line_start_ = 0;  ///< start of the line being scanned
    std::size_t head_length_ = 0;
    std::uint32_t field_count_ = 0;
    std::uint32_t empty_lines_ = 0;  ///< empty lines before the request line so far
    Phase phase_ = Phase::request_line;
    bool host_seen_ = false;  ///< an empty Host value is legal (RFC 9112 §3.2), so track it apart
    ParseError error_;
};

}  // namespace trident::http
