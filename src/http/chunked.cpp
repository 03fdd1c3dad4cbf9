#include "http/chunked.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "http/field_line.hpp"
#include "http/syntax.hpp"

namespace trident::http {

void ChunkedDecoder::reset() noexcept {
    phase_ = Phase::size_line;
    state_ = State::need_more;
    chunk_left_ = 0;
    body_size_ = 0;
    scanned_ = 0;
    extension_bytes_ = 0;
    trailer_count_ = 0;
    error_ = {};
}

std::size_t ChunkedDecoder::fail(std::size_t consumed, Status status,
                                 std::string_view reason) noexcept {
    state_ = State::error;
    error_ = {status, reason};
    return consumed;
}

std::size_t ChunkedDecoder::decode(std::string_view input) noexcept {
    if (state_ != State::need_more) {
        return 0;
    }
    std::size_t pos = 0;
    for (;;) {
        switch (phase_) {
            case Phase::data: {
                const std::uint64_t take = std::min<std::uint64_t>(chunk_left_, input.size() - pos);
                pos += std::size_t(take);
                chunk_left_ -= take;
                if (chunk_left_ > 0) {
                    return pos;
                }
                phase_ = Phase::data_end;
                break;
            }
            case Phase::data_end: {
                // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF. A
                // wrong byte here means the size lied: the framing is lost.
                const std::size_t available = input.size() - pos;
                if ((available >= 1 && input[pos] != '\r') ||
                    (available >= 2 && input[pos + 1] != '\n')) {
                    return fail(pos, Status::bad_request, "chunk data not followed by CRLF");
                }
                if (available < 2) {
                    return pos;
                }
                pos += 2;
                phase_ = Phase::size_line;
                break;
            }
            case Phase::size_line:
            case Phase::trailer: {
                std::string_view line;
                std::size_t next = 0;
                if (!take_line(input, pos, line, next)) {
                    return pos;
                }
                pos = next;
                const bool ok =
                    phase_ == Phase::size_line ? chunk_size_line(line) : trailer_line(line);
                if (!ok || state_ == State::done) {
                    return pos;
                }
                break;
            }
        }
    }
}

bool ChunkedDecoder::take_line(std::string_view input, std::size_t pos, std::string_view& content,
                               std::size_t& next) noexcept {
    // Resume the search for LF where the last call stopped: trickled bytes cost linear time.
    const std::size_t from = pos + scanned_;
    const void* lf =
        from < input.size() ? std::memchr(input.data() + from, '\n', input.size() - from) : nullptr;
    const std::size_t end =
        lf != nullptr ? std::size_t(static_cast<const char*>(lf) - input.data()) : input.size();
    const bool cr_before = end > pos && input[end - 1] == '\r';
    const std::size_t content_end = cr_before ? end - 1 : end;
    // The limit is checked before the line ends, so a client cannot make us buffer without
    // bound, and the outcome does not depend on how the bytes were split.
    if (content_end - pos > limits_.line) {
        fail(pos, Status::bad_request,
             phase_ == Phase::trailer ? "trailer field line too long" : "chunk size line too long");
        return false;
    }
    if (lf == nullptr) {
        scanned_ = input.size() - pos;
        return false;
    }
    // RFC 9112 §2.2: CRLF only; a bare LF is not tolerated in a body's framing either.
    if (!cr_before) {
        fail(pos, Status::bad_request, "chunk line not terminated by CRLF");
        return false;
    }
    scanned_ = 0;
    content = input.substr(pos, content_end - pos);
    next = end + 1;
    return true;
}

bool ChunkedDecoder::chunk_size_line(std::string_view line) noexcept {
    // RFC 9112 §7.1: chunk-size = 1*HEXDIG: no sign, no "0x", no whitespace before it.
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t size = 0;
    std::size_t digits = 0;
    for (; digits < line.size(); ++digits) {
        const int value = hex_digit_value(line[digits]);
        if (value < 0) {
            break;
        }
        // RFC 9112 §7.1: a recipient must anticipate, and guard against, an overflowing size.
        if (size > (kMax >> 4)) {
            fail(0, Status::bad_request, "chunk size overflows");
            return false;
        }
        size = size * 16 + std::uint64_t(value);
    }
    if (digits == 0) {
        fail(0, Status::bad_request, "invalid chunk size");
        return false;
    }
    if (!chunk_extensions(line.substr(digits))) {
        return false;
    }
    // The decoded size counts against limits.request_body (RFC 9110 §15.5.14: 413), refused
    // before a byte of the chunk is read.
    if (size > limits_.body - body_size_) {
        fail(0, Status::content_too_large, "request body too large");
        return false;
    }
    body_size_ += size;
    if (size == 0) {
        phase_ = Phase::trailer;  // RFC 9112 §7.1: last-chunk, then the trailer section
    } else {
        chunk_left_ = size;
        phase_ = Phase::data;
    }
    return true;
}

bool ChunkedDecoder::chunk_extensions(std::string_view text) noexcept {
    // Bounded over the whole body, so a stream of tiny chunks cannot carry unbounded metadata.
    extension_bytes_ += text.size();
    if (extension_bytes_ > limits_.line) {
        fail(0, Status::bad_request, "chunk extensions too large");
        return false;
    }
    // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name
    //                                 [ BWS "=" BWS chunk-ext-val ] ),
    // chunk-ext-name = token, chunk-ext-val = token / quoted-string. Whitespace is allowed
    // only where BWS is, so "10 " (whitespace before CRLF) is refused.
    std::size_t i = 0;
    const auto skip_bws = [&] {
        while (i < text.size() && is_ows(text[i])) {
            ++i;
        }
    };
    while (i < text.size()) {
        skip_bws();
        if (i == text.size() || text[i] != ';') {
            fail(0, Status::bad_request, "invalid chunk extension");
            return false;
        }
        ++i;
        skip_bws();
        const std::size_t name = token_length(text.substr(i));
        if (name == 0) {
            fail(0, Status::bad_request, "invalid chunk extension");  // a bare ";"
            return false;
        }
        i += name;
        const std::size_t after_name = i;
        skip_bws();
        if (i < text.size() && text[i] == '=') {
            ++i;
            skip_bws();
            const std::string_view rest = text.substr(i);
            const std::size_t value = !rest.empty() && rest.front() == '"'
                                          ? quoted_string_length(rest)
                                          : token_length(rest);
            if (value == 0) {
                fail(0, Status::bad_request, "invalid chunk extension");
                return false;
            }
            i += value;
        } else {
            i = after_name;  // whitespace not before '=' must lead to the next ';'
        }
    }
    return true;
}

bool ChunkedDecoder::trailer_line(std::string_view line) noexcept {
    if (line.empty()) {
        state_ = State::done;  // RFC 9112 §7.1: the final CRLF ends the message
        return true;
    }
    // RFC 9112 §7.1.2: trailer fields follow the rules of header fields; they are bounded by
    // the same limits and then discarded (none is merged into the head, RFC 9110 §6.5.1).
    if (++trailer_count_ > limits_.trailer_fields) {
        fail(0, Status::bad_request, "too many trailer fields");
        return false;
    }
    Field field;
    if (const std::string_view reason = parse_field_line(line, field); !reason.empty()) {
        fail(0, Status::bad_request, reason);
        return false;
    }
    return true;
}

}  // namespace trident::http
