#include "trident/http/response.hpp"

#include <unistd.h>

#include <string>

#include "http/html.hpp"

namespace trident {

void UniqueFd::reset(int fd) noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = fd;
}

}  // namespace trident

namespace trident::http {

std::uint64_t Response::body_length() const noexcept {
    if (const auto* file = std::get_if<FileBody>(&body)) {
        return file->length;
    }
    return body_bytes().size();
}

std::string_view Response::body_bytes() const noexcept {
    if (const auto* bytes = std::get_if<std::string>(&body)) {
        return *bytes;
    }
    if (const auto* borrowed = std::get_if<BorrowedBytes>(&body)) {
        return borrowed->bytes;
    }
    return {};
}

void append_html_escaped(std::string& out, std::string_view text) {
    for (char c : text) {
        switch (c) {
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '&':
                out += "&amp;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
}

Response make_error_response(Status status, std::string_view detail) {
    Response response;
    response.status = status;
    const std::string title =
        std::to_string(code(status)) + " " + std::string(reason_phrase(status));
    std::string html;
    html.reserve(256 + detail.size());
    html += "<!DOCTYPE html>\n<html><head><title>";
    html += title;
    html += "</title></head>\n<body><h1>";
    html += reason_phrase(status);
    html += "</h1>\n";
    if (!detail.empty()) {
        html += "<p>";
        append_html_escaped(html, detail);
        html += "</p>\n";
    }
    html += "</body></html>\n";
    response.add_header("Content-Type", "text/html; charset=utf-8");
    response.body = std::move(html);
    return response;
}

}  // namespace trident::http
