#pragma once

// Reading a handler's Response in tests: its header fields, and the bytes the driver would
// send for its body (read with pread, as sendfile would).

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "trident/http/request.hpp"
#include "trident/http/response.hpp"

namespace trident::test {

/// Every header field, in the order the core sends them: the serialised ones (split back
/// into name and value), then `headers`.
inline std::vector<std::pair<std::string, std::string>> all_fields(const http::Response& response) {
    std::vector<std::pair<std::string, std::string>> all;
    std::string_view text = response.serialized_fields;
    while (!text.empty()) {
        const std::size_t end = text.find("\r\n");
        const std::string_view line = text.substr(0, end);
        const std::size_t colon = line.find(':');
        std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') {
            value.remove_prefix(1);
        }
        all.emplace_back(line.substr(0, colon), value);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 2);
    }
    all.insert(all.end(), response.headers.begin(), response.headers.end());
    return all;
}

/// The first field named `name` (case-insensitive); empty when none.
inline std::string header(const http::Response& response, std::string_view name) {
    for (auto& [field, value] : all_fields(response)) {
        if (http::iequals(field, name)) {
            return std::move(value);
        }
    }
    return {};
}

inline std::size_t header_count(const http::Response& response, std::string_view name) {
    std::size_t count = 0;
    for (const auto& [field, value] : all_fields(response)) {
        count += http::iequals(field, name) ? 1 : 0;
    }
    return count;
}

inline bool has_header(const http::Response& response, std::string_view name) {
    return header_count(response, name) > 0;
}

inline std::string read_range(int fd, std::uint64_t offset, std::uint64_t length) {
    std::string out(length, '\0');
    const ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
    EXPECT_EQ(n, static_cast<ssize_t>(length));
    return out;
}

/// The bytes of an open-file body: its range, or its pieces in order.
inline std::string file_body_bytes(const http::FileBody& file) {
    if (file.pieces.empty()) {
        return read_range(file.fd.get(), file.offset, file.length);
    }
    std::string out;
    for (const http::BodyPiece& piece : file.pieces) {
        out += piece.bytes;
        out += read_range(file.fd.get(), piece.file_offset, piece.file_length);
    }
    EXPECT_EQ(out.size(), file.length) << "length and pieces disagree";
    return out;
}

/// What the driver would send for this body: bytes, a file range, or pieces.
inline std::string body_of(const http::Response& response) {
    const auto* file = std::get_if<http::FileBody>(&response.body);
    return file == nullptr ? std::string(response.body_bytes()) : file_body_bytes(*file);
}

}  // namespace trident::test
