#pragma once

// What a handler answers: a status, header fields, and a body that is empty, bytes, or an
// open file sent with sendfile by the MPM's driver: one range of it, or a sequence of pieces
// that interleave bytes with ranges of it (multipart/byteranges). The core adds Date,
// Server, Content-Length and Connection itself.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "trident/http/status.hpp"

namespace trident {

/// Owns a file descriptor; closes it once.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

}  // namespace trident

namespace trident::http {

/// One piece of a file body sent as a sequence: `bytes` first, then `file_length` bytes of
/// the body's file from `file_offset` (either may be empty).
struct BodyPiece {
    std::string bytes;
    std::uint64_t file_offset = 0;
    std::uint64_t file_length = 0;
};

/// A file body. Without pieces it is [offset, offset + length) of the file. With pieces, the
/// pieces are sent in order instead and `length` is the sum of their sizes, so that
/// Content-Length and the bytes sent agree; `offset` is then unused.
struct FileBody {
    UniqueFd fd;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::vector<BodyPiece> pieces;
};

/// Bytes that live elsewhere (a cache entry), kept alive by Response::keep.
struct BorrowedBytes {
    std::string_view bytes;
};

struct Response {
    Status status = Status::ok;
    std::vector<std::pair<std::string, std::string>> headers;
    /// More header fields, already serialised as "Name: value\r\n" lines, sent before
    /// `headers`: a handler that gives the same answer many times (the file cache) renders
    /// them once. They live in memory that `keep` keeps alive.
    std::string_view serialized_fields;
    std::variant<std::monostate, std::string, FileBody, BorrowedBytes> body;
    /// Keeps alive what `serialized_fields` and a BorrowedBytes body point into.
    std::shared_ptr<const void> keep;

    void add_header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
    }
    /// Length of the body as it would be sent for GET.
    std::uint64_t body_length() const noexcept;
    /// The body's bytes when it is held in memory (owned or borrowed); empty otherwise.
    std::string_view body_bytes() const noexcept;
};

/// A small HTML page for an error status; `detail` is HTML-escaped.
Response make_error_response(Status status, std::string_view detail = {});

}  // namespace trident::http
