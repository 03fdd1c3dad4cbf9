#include "handlers/request_path.hpp"

#include <optional>
#include <vector>

#include "http/syntax.hpp"

namespace trident {

using http::Status;

namespace {

bool is_control(unsigned char c) noexcept {
    return c < 0x20 || c == 0x7F;
}

/// Percent-decodes one raw segment (no raw '/' in it) into `out` (RFC 3986 §2.1). Returns
/// the status to answer when the segment is unacceptable.
std::optional<Status> decode_segment(std::string_view raw, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '%') {
            if (i + 2 >= raw.size()) {
                return Status::bad_request;
            }
            const int high = http::hex_digit_value(raw[i + 1]);
            const int low = http::hex_digit_value(raw[i + 2]);
            if (high < 0 || low < 0) {
                return Status::bad_request;
            }
            c = static_cast<char>(high * 16 + low);
            i += 2;
            if (c == '/') {
                // Apache's AllowEncodedSlashes Off: a "%2F" would let a client address
                // something the slash-separated path cannot name.
                return Status::not_found;
            }
        }
        // Checked after decoding as well as before: "%00", "%5C", "%0A" are as bad as the
        // raw bytes (NUL would truncate the file name; '\' is a separator elsewhere).
        if (c == '\0' || c == '\\' || is_control(static_cast<unsigned char>(c))) {
            return Status::bad_request;
        }
        out += c;
    }
    return std::nullopt;
}

}  // namespace

std::optional<Status> normalize_request_path(std::string_view raw_path, std::string& path) {
    if (raw_path.empty() || raw_path.front() != '/') {
        return Status::bad_request;
    }
    // Decode segment by segment, so that the only '/' in `segments` are raw ones, then remove
    // dot segments (RFC 3986 §5.2.4) on the decoded names: "%2e%2e" is "..".
    std::vector<std::string> segments;
    std::string decoded;
    bool trailing_slash = false;
    std::optional<Status> refusal;
    std::size_t start = 1;
    while (true) {
        const std::size_t slash = raw_path.find('/', start);
        const std::size_t end = slash == std::string_view::npos ? raw_path.size() : slash;
        const bool last = slash == std::string_view::npos;
        if (std::optional<Status> status =
                decode_segment(raw_path.substr(start, end - start), decoded)) {
            // A malformed request (400) outranks an encoded slash (404) later in the path.
            if (*status == Status::bad_request) {
                return Status::bad_request;
            }
            refusal = *status;
        } else if (decoded == "..") {
            if (segments.empty()) {
                // Never clamp: a client climbing above the root is probing, not browsing.
                return Status::bad_request;
            }
            segments.pop_back();
            trailing_slash = last;
        } else if (decoded == ".") {
            trailing_slash = last;
        } else if (decoded.empty()) {
            // "//" collapses; an empty last segment is the trailing slash of "/dir/".
            trailing_slash = last;
        } else {
            segments.push_back(decoded);
            trailing_slash = false;
        }
        if (last) {
            break;
        }
        start = slash + 1;
    }
    if (refusal) {
        return refusal;
    }
    path.clear();
    path.reserve(raw_path.size());
    for (const std::string& segment : segments) {
        path += '/';
        path += segment;
    }
    if (path.empty() || trailing_slash) {
        path += '/';
    }
    return std::nullopt;
}

PathResult normalize_request_path(std::string_view raw_path) {
    std::string path;
    if (const std::optional<Status> refused = normalize_request_path(raw_path, path)) {
        return *refused;
    }
    return path;
}

}  // namespace trident
