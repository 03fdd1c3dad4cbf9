#include "handlers/static_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <optional>
#include <utility>

#include "handlers/byte_range.hpp"
#include "http/http_date.hpp"
#include "http/syntax.hpp"

namespace trident {

using http::Method;
using http::Response;
using http::Status;

namespace {

constexpr int kOpenFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

/// What one open-and-stat produced: the file, or the status that says why not.
struct OpenedFile {
    UniqueFd fd;
    struct stat info {};
    Status failure = Status::ok;
};

Status status_for_errno(int error) noexcept {
    switch (error) {
        case ENOENT:
        case ENOTDIR:
        case ENAMETOOLONG:
        case ELOOP:
            return Status::not_found;
        case EACCES:
        case EPERM:
            return Status::forbidden;
        default:
            return Status::internal_server_error;
    }
}

/// open() then fstat() on the descriptor, so that the checks and the bytes served are of
/// the same file even if the name is replaced meanwhile. O_NONBLOCK keeps a FIFO from
/// blocking the open; it is refused as "not a regular file" afterwards.
OpenedFile open_file(int dir_fd, const char* name) noexcept {
    OpenedFile file;
    file.fd = UniqueFd(::openat(dir_fd, name, kOpenFlags));
    if (!file.fd.valid()) {
        file.failure = status_for_errno(errno);
        return file;
    }
    if (::fstat(file.fd.get(), &file.info) != 0) {
        file.failure = Status::internal_server_error;
        file.fd.reset();
    }
    return file;
}

bool starts_with_ht(std::string_view segment) noexcept {
    // Case-insensitively, so that ".HTpasswd" on a case-insensitive file system is refused too.
    return segment.size() >= 3 && segment[0] == '.' && (segment[1] | 0x20) == 'h' &&
           (segment[2] | 0x20) == 't';
}

/// Apache's default `<Files ".ht*"> Require all denied`, for every segment of the path.
bool has_hidden_segment(std::string_view path) noexcept {
    std::size_t start = 0;
    while (start <= path.size()) {
        const std::size_t slash = path.find('/', start);
        const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
        if (starts_with_ht(path.substr(start, end - start))) {
            return true;
        }
        if (slash == std::string_view::npos) {
            break;
        }
        start = slash + 1;
    }
    return false;
}

/// The router normalises the path; a handler reached another way must still not escape the
/// root or have its file name cut short by a NUL.
bool is_safe_path(std::string_view path) noexcept {
    if (path.empty() || path.front() != '/' || path.find('\0') != std::string_view::npos) {
        return false;
    }
    return path.find("/../") == std::string_view::npos && !path.ends_with("/..");
}

/// Percent-encodes a path for a Location field: everything but unreserved, sub-delims,
/// ':', '@' and '/' (RFC 3986 §3.3 pchar).
std::string encode_path(std::string_view path) {
    constexpr std::string_view kAllowed = "-._~!$&'()*+,;=:@/";
    constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(path.size() + 8);
    for (char c : path) {
        const auto byte = static_cast<unsigned char>(c);
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum || kAllowed.find(c) != std::string_view::npos) {
            out += c;
        } else {
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 0x0F];
        }
    }
    return out;
}

std::string make_etag(const struct stat& info) {
    // Apache's "FileETag MTime Size" shape: size and mtime in microseconds, in hex.
    const auto size = static_cast<unsigned long long>(info.st_size);
    const auto mtime_us = static_cast<unsigned long long>(info.st_mtim.tv_sec) * 1000000ULL +
                          static_cast<unsigned long long>(info.st_mtim.tv_nsec / 1000);
    // "<size hex>-<mtime µs hex>", built with to_chars: this runs for every response.
    // Each number is at most 16 hex digits; the bounds leave room for the punctuation.
    char text[40];
    text[0] = '"';
    char* end = std::to_chars(text + 1, text + 18, size, 16).ptr;
    *end++ = '-';
    end = std::to_chars(end, text + 37, mtime_us, 16).ptr;
    *end++ = '"';
    return std::string(text, end);
}

using http::is_ows;

/// One entity-tag of a field list (RFC 9110 §8.8.3).
struct EntityTag {
    bool weak = false;
    std::string_view opaque;  ///< with its quotes
};

/// Walks a comma-separated list of entity-tags or "*". `next` returns false at the end of
/// the list or at the first malformed element, so garbage never matches anything.
class EntityTagList {
public:
    explicit EntityTagList(std::string_view text) noexcept : rest_(text) {}

    bool next(EntityTag& tag, bool& star) noexcept {
        while (!rest_.empty() && (is_ows(rest_.front()) || rest_.front() == ',')) {
            rest_.remove_prefix(1);  // empty list elements are allowed (RFC 9110 §5.6.1.2)
        }
        if (rest_.empty()) {
            return false;
        }
        star = false;
        tag = {};
        if (rest_.front() == '*') {
            star = true;
            rest_.remove_prefix(1);
            return true;
        }
        if (rest_.starts_with("W/")) {
            tag.weak = true;
            rest_.remove_prefix(2);
        }
        if (rest_.empty() || rest_.front() != '"') {
            rest_ = {};
            return false;
        }
        const std::size_t close = rest_.find('"', 1);
        if (close == std::string_view::npos) {
            rest_ = {};
            return false;
        }
        tag.opaque = rest_.substr(0, close + 1);
        rest_.remove_prefix(close + 1);
        return true;
    }

private:
    std::string_view rest_;
};

/// Whether any If-Match / If-None-Match field line of the request lists `etag` (a strong tag
/// of ours) or "*". RFC 9110 §8.8.3.2: strong comparison needs both tags strong; weak
/// comparison ignores W/.
bool list_matches(const http::Request& request, std::string_view field, std::string_view etag,
                  bool strong) noexcept {
    for (const http::Field& line : request.fields) {
        if (!http::iequals(line.name, field)) {
            continue;
        }
        EntityTagList list(line.value);
        EntityTag tag;
        bool star = false;
        while (list.next(tag, star)) {
            if (star) {
                return true;
            }
            if ((!strong || !tag.weak) && tag.opaque == etag) {
                return true;
            }
        }
    }
    return false;
}

bool has_field(const http::Request& request, std::string_view name) noexcept {
    for (const http::Field& line : request.fields) {
        if (http::iequals(line.name, name)) {
            return true;
        }
    }
    return false;
}

/// The outcome of RFC 9110 §13.2.2's evaluation order, steps 1-4.
enum class Precondition : std::uint8_t { proceed, not_modified, failed };

Precondition evaluate_preconditions(const http::Request& request, std::string_view etag,
                                    std::time_t mtime) noexcept {
    // Step 1 and 2: If-Match, else If-Unmodified-Since.
    if (has_field(request, "If-Match")) {
        if (!list_matches(request, "If-Match", etag, /*strong=*/true)) {
            return Precondition::failed;
        }
    } else if (const std::string_view value = request.field("If-Unmodified-Since");
               !value.empty()) {
        const std::optional<std::time_t> date = http::parse_http_date(value);
        if (date && mtime > *date) {
            return Precondition::failed;
        }
    }
    // Step 3 and 4: If-None-Match, else If-Modified-Since (GET and HEAD only).
    const bool safe = request.method == Method::get || request.method == Method::head;
    if (has_field(request, "If-None-Match")) {
        if (list_matches(request, "If-None-Match", etag, /*strong=*/false)) {
            return safe ? Precondition::not_modified : Precondition::failed;
        }
    } else if (const std::string_view value = request.field("If-Modified-Since");
               safe && !value.empty()) {
        const std::optional<std::time_t> date = http::parse_http_date(value);
        if (date && mtime <= *date) {
            return Precondition::not_modified;
        }
    }
    return Precondition::proceed;
}

/// RFC 9110 §13.1.5: an If-Range entity-tag must match strongly; a date must be exactly the
/// Last-Modified. Anything else means "send the whole representation".
bool if_range_allows(std::string_view value, std::string_view etag, std::time_t mtime) noexcept {
    if (value.empty()) {
        return true;
    }
    if (value.front() == '"' || value.starts_with("W/")) {
        return value.front() == '"' && value == etag;
    }
    const std::optional<std::time_t> date = http::parse_http_date(value);
    return date && *date == mtime;
}

struct IndexFile {
    OpenedFile file;
    std::string_view name;
};

/// The first of `names` that is a regular file in the directory `dir_fd`; nullopt when none
/// exists. An index that exists but cannot be opened is reported, not skipped.
std::optional<IndexFile> open_index(int dir_fd, const std::vector<std::string>& names) noexcept {
    for (const std::string& name : names) {
        if (name.empty() || name.find('/') != std::string::npos || starts_with_ht(name)) {
            continue;
        }
        OpenedFile file = open_file(dir_fd, name.c_str());
        if (file.failure == Status::not_found) {
            continue;
        }
        if (file.failure != Status::ok || S_ISREG(file.info.st_mode)) {
            return IndexFile{std::move(file), name};
        }
    }
    return std::nullopt;
}

Response redirect_to_directory(const http::Request& request) {
    // Relative references inside the index page resolve against the slash form.
    Response response = make_error_response(Status::moved_permanently);
    std::string location = encode_path(request.path);
    location += '/';
    if (!request.query.empty() || request.target.find('?') != std::string_view::npos) {
        location += '?';
        location += request.query;
    }
    response.add_header("Location", std::move(location));
    return response;
}

/// A regular file, open and checked: preconditions, then Range, then 200.
Response serve_file(const http::Request& request, UniqueFd fd, const struct stat& info,
                    std::string_view content_type) {
    const std::string etag = make_etag(info);
    const std::time_t mtime = info.st_mtim.tv_sec;
    char last_modified[http::kHttpDateLength + 1] = {};
    http::format_http_date(mtime, last_modified);
    const auto size = static_cast<std::uint64_t>(info.st_size);

    switch (evaluate_preconditions(request, etag, mtime)) {
        case Precondition::failed:
            return make_error_response(Status::precondition_failed);
        case Precondition::not_modified: {
            // RFC 9110 §15.4.5: the validators a 200 would carry, no content.
            Response response;
            response.status = Status::not_modified;
            response.add_header("ETag", etag);
            response.add_header("Last-Modified", std::string(last_modified, http::kHttpDateLength));
            return response;
        }
        case Precondition::proceed:
            break;
    }

    Response response;
    response.headers.reserve(5);  // one allocation, not four as the vector grows
    response.status = Status::ok;
    std::uint64_t offset = 0;
    std::uint64_t length = size;
    // RFC 9110 §14.2: Range applies to GET only; HEAD answers as a GET without Range would.
    const std::string_view range_value = request.field("Range");
    if (request.method == Method::get && !range_value.empty() &&
        if_range_allows(request.field("If-Range"), etag, mtime)) {
        const ByteRange range = parse_byte_range(range_value, size);
        if (range.kind == ByteRange::Kind::unsatisfiable) {
            response = make_error_response(Status::range_not_satisfiable);
            response.add_header("Content-Range", "bytes */" + std::to_string(size));
            return response;
        }
        if (range.kind == ByteRange::Kind::satisfiable) {
            response.status = Status::partial_content;
            offset = range.first;
            length = range.last - range.first + 1;
            response.add_header("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                     std::to_string(range.last) + "/" +
                                                     std::to_string(size));
        }
    }
    response.add_header("Content-Type", std::string(content_type));
    response.add_header("ETag", etag);
    response.add_header("Last-Modified", std::string(last_modified, http::kHttpDateLength));
    response.add_header("Accept-Ranges", "bytes");
    response.body = http::FileBody{std::move(fd), offset, length};
    return response;
}

}  // namespace

StaticFileHandler::StaticFileHandler(std::filesystem::path document_root,
                                     std::vector<std::string> index_files,
                                     const MimeTypes& mime_types)
    : root_(std::filesystem::absolute(document_root).lexically_normal().string()),
      index_files_(std::move(index_files)),
      mime_types_(mime_types) {
    while (!root_.empty() && root_.back() == '/') {
        root_.pop_back();  // "/" becomes "", so that root_ + path is always one slash
    }
}

void StaticFileHandler::handle(const http::Request& request, Response& response) noexcept {
    try {
        response = serve(request);
    } catch (...) {
        // Only allocation can throw here; the open file, if any, was closed by unwinding.
        response.headers.clear();
        response.body = std::monostate{};
        response.status = Status::internal_server_error;
    }
}

Response StaticFileHandler::serve(const http::Request& request) const {
    if (request.method != Method::get && request.method != Method::head) {
        Response response = make_error_response(Status::method_not_allowed);
        response.add_header("Allow", "GET, HEAD");
        return response;
    }
    const std::string_view path = request.path;
    if (!is_safe_path(path)) {
        return make_error_response(Status::bad_request);
    }
    if (has_hidden_segment(path)) {
        return make_error_response(Status::forbidden);
    }

    const std::string file_name = root_ + std::string(path);
    OpenedFile file = open_file(AT_FDCWD, file_name.c_str());
    if (file.failure != Status::ok) {
        return make_error_response(file.failure);
    }
    std::string_view served_name = path;
    if (S_ISDIR(file.info.st_mode)) {
        if (!path.ends_with('/')) {
            return redirect_to_directory(request);
        }
        std::optional<IndexFile> index = open_index(file.fd.get(), index_files_);
        if (!index) {
            return make_error_response(Status::forbidden, "Directory listing is off.");
        }
        if (index->file.failure != Status::ok) {
            return make_error_response(index->file.failure);
        }
        file = std::move(index->file);
        served_name = index->name;
    }
    if (!S_ISREG(file.info.st_mode)) {
        return make_error_response(Status::forbidden);
    }
    return serve_file(request, std::move(file.fd), file.info, mime_types_.lookup(served_name));
}

}  // namespace trident
