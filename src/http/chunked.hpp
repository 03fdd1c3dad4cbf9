#pragma once

// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1). Sans-I/O and
// zero-copy: it is shown the unconsumed bytes of the connection, says how many it consumed,
// and keeps only counters between calls. Chunk data is skipped, not stored (no handler
// reads a body yet), but every byte is accounted for, so the next pipelined request starts
// exactly where this body ends.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/request_parser.hpp"

namespace trident::http {

struct ChunkedLimits {
    std::uint64_t body = 0;  ///< decoded bytes; more → 413
    /// Bytes of one chunk-size line or trailer field line before CRLF (400 beyond), and of
    /// all chunk extensions of one body together (400 beyond): limits.request_field_size.
    std::uint32_t line = 8190;
    std::uint32_t trailer_fields = 100;  ///< trailer field lines; more → 400
};

class ChunkedDecoder {
public:
    enum class State : std::uint8_t { need_more, done, error };

    explicit ChunkedDecoder(const ChunkedLimits& limits) noexcept : limits_(limits) {}

    /// Decodes from the start of `input`, which holds every byte not consumed so far.
    /// Returns how many bytes it consumed; the caller drops them and calls again with the
    /// rest once more bytes arrived. After done, the consumed bytes end with the last CRLF of
    /// the trailer section. After error, error() says what to answer.
    std::size_t decode(std::string_view input) noexcept;

    State state() const noexcept { return state_; }
    const ParseError& error() const noexcept { return error_; }
    /// Decoded body bytes so far.
    std::uint64_t body_size() const noexcept { return body_size_; }

    /// Readies the decoder for the next body.
    void reset() noexcept;

private:
    enum class Phase : std::uint8_t { size_line, data, data_end, trailer };

    std::size_t fail(std::size_t consumed, Status status, std::string_view reason) noexcept;
    /// Finds the CRLF of the line at input[pos...]; false when it is not all there yet (or on
    /// an error, after fail()). `content` is the line without CRLF, `next` the byte after it.
    bool take_line(std::string_view input, std::size_t pos, std::string_view& content,
                   std::size_t& next) noexcept;
    bool chunk_size_line(std::string_view line) noexcept;
    bool chunk_extensions(std::string_view extensions) noexcept;
    bool trailer_line(std::string_view line) noexcept;

    ChunkedLimits limits_;
    Phase phase_ = Phase::size_line;
    State state_ = State::need_more;
    std::uint64_t chunk_left_ = 0;       ///< data bytes of the current chunk still to come
    std::uint64_t body_size_ = 0;        ///< decoded bytes so far
    std::size_t scanned_ = 0;            ///< bytes of the current line searched for LF
    std::uint64_t extension_bytes_ = 0;  ///< chunk-ext bytes of this body so far
    std::uint32_t trailer_count_ = 0;
    ParseError error_;
};

}  // namespace trident::http
