#pragma once

// What a handler answers: a status, header fields, and a body that is empty, bytes, or a
// range of an open file (sent with sendfile by the MPM's driver). The core adds Date,
// Server, Content-Length and Connection itself.

#include <cstdint>
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

struct FileBody {
    UniqueFd fd;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

struct Response {
    Status status = Status::ok;
    std::vector<std::pair<std::string, std::string>> headers;
    std::variant<std::monostate, std::string, FileBody> body;

    void add_header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
    }
    /// Length of the body as it would be sent for GET.
    std::uint64_t body_length() const noexcept;
};

/// A small HTML page for an error status; `detail` is HTML-escaped.
Response make_error_response(Status status, std::string_view detail = {});

}  // namespace trident::http
