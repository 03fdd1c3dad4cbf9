#include "handlers/static_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <optional>
#include <utility>

#include "handlers/autoindex.hpp"
#include "handlers/byte_range.hpp"
#include "handlers/conditional.hpp"
#include "handlers/content_coding.hpp"
#include "handlers/multipart.hpp"
#include "http/http_date.hpp"

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
/// With a `guard` (symlinks not followed), a file whose real path leaves the root is
/// refused with 403, as Apache without FollowSymLinks; the check is on the open descriptor.
OpenedFile open_file(int dir_fd, const char* name, const RootGuard* guard) noexcept {
    OpenedFile file;
    file.fd = UniqueFd(::openat(dir_fd, name, kOpenFlags));
    if (!file.fd.valid()) {
        file.failure = status_for_errno(errno);
        return file;
    }
    if (guard != nullptr && !guard->contains(file.fd.get())) {
        file.failure = Status::forbidden;
        file.fd.reset();
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

/// Apache's "FileETag MTime Size" shape: "<size hex>-<mtime µs hex>", and for an encoded
/// sibling "-br" / "-gzip" after it, so that each representation has its own strong tag
/// (RFC 9110 §8.8.3) even if two of them share a size and a time.
std::string make_etag(const struct stat& info, ContentCoding coding) {
    const auto size = static_cast<unsigned long long>(info.st_size);
    const auto mtime_us = static_cast<unsigned long long>(info.st_mtim.tv_sec) * 1000000ULL +
                          static_cast<unsigned long long>(info.st_mtim.tv_nsec / 1000);
    // Built with to_chars: this runs for every response. Each number is at most 16 hex
    // digits; the bounds leave room for the punctuation and the coding.
    char text[48];
    text[0] = '"';
    char* end = std::to_chars(text + 1, text + 18, size, 16).ptr;
    *end++ = '-';
    end = std::to_chars(end, text + 37, mtime_us, 16).ptr;
    if (const std::string_view name = content_coding_name(coding); !name.empty()) {
        *end++ = '-';
        end = std::copy(name.begin(), name.end(), end);
    }
    *end++ = '"';
    return std::string(text, end);
}

struct IndexFile {
    OpenedFile file;
    std::string_view name;
};

/// The first of `names` that is a regular file in the directory `dir_fd`; nullopt when none
/// exists. An index that exists but cannot be opened is reported, not skipped.
std::optional<IndexFile> open_index(int dir_fd, const std::vector<std::string>& names,
                                    const RootGuard* guard) noexcept {
    for (const std::string& name : names) {
        if (name.empty() || name.find('/') != std::string::npos || starts_with_ht(name)) {
            continue;
        }
        OpenedFile file = open_file(dir_fd, name.c_str(), guard);
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

/// The representation chosen for a request: the file itself or an encoded sibling.
struct Representation {
    OpenedFile file;
    std::string_view content_type;  ///< of the original file, whatever the coding
    ContentCoding coding = ContentCoding::identity;
    bool varies = false;  ///< a sibling exists: the choice depends on Accept-Encoding
    bool has_br = false;  ///< which siblings exist, for the file cache
    bool has_gzip = false;
    /// A sibling's name exists but it could not be used (unreadable, a dangling link): it
    /// may become usable without the folder changing, so the file cache must not remember
    /// "no sibling".
    bool sibling_unsettled = false;
    /// The file cache's entry whose validators (and bytes, unless on disk) answer; else the
    /// file's do.
    std::shared_ptr<const FileCache::Entry> cached = nullptr;
};

/// The request's Accept-Encoding as one list: several field lines are one comma-separated
/// list (RFC 9110 §5.3). `present` says whether there was any.
std::string accept_encoding(const http::Request& request, bool& present) {
    std::string accept;
    present = false;
    for (const http::Field& line : request.fields) {
        if (http::iequals(line.name, "Accept-Encoding")) {
            accept += present ? "," : "";
            accept += line.value;
            present = true;
        }
    }
    return accept;
}

/// Whether the request has a field that may be a precondition (RFC 9110 §13.1: If-Match,
/// If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range): all begin "If-".
bool has_preconditions(const http::Request& request) noexcept {
    for (const http::Field& field : request.fields) {
        if (field.name.size() > 3 && http::iequals(field.name.substr(0, 3), "if-")) {
            return true;
        }
    }
    return false;
}

/// Opens "<name>.br" and "<name>.gz" beside the file and picks what to send (RFC 9110
/// §12.5.3). A sibling that is missing, not a regular file or not readable does not exist.
void choose_sibling(const http::Request& request, int dir_fd, const std::string& name,
                    const RootGuard* guard, Representation& chosen) {
    OpenedFile siblings[2];
    const ContentCoding codings[2] = {ContentCoding::br, ContentCoding::gzip};
    bool exists[2] = {false, false};
    for (int i = 0; i < 2; ++i) {
        const std::string sibling = name + std::string(content_coding_suffix(codings[i]));
        // The name itself first, without following a link: most files have no siblings,
        // and then this one look-up settles it (opening first took a second one to tell a
        // missing name from a dangling link, both ENOENT to open).
        struct stat link {};
        if (::fstatat(dir_fd, sibling.c_str(), &link, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;
        }
        siblings[i] = open_file(dir_fd, sibling.c_str(), guard);
        exists[i] = siblings[i].failure == Status::ok && S_ISREG(siblings[i].info.st_mode);
        if (!exists[i]) {
            chosen.sibling_unsettled = true;
        }
    }
    chosen.has_br = exists[0];
    chosen.has_gzip = exists[1];
    chosen.varies = exists[0] || exists[1];
    if (!chosen.varies) {
        return;
    }
    bool present = false;
    const std::string accept = accept_encoding(request, present);
    chosen.coding = choose_content_coding(accept, present, exists[0], exists[1]);
    if (chosen.coding != ContentCoding::identity) {
        chosen.file = std::move(siblings[chosen.coding == ContentCoding::br ? 0 : 1]);
    }
}

/// Vary and Content-Encoding of the chosen representation (RFC 9110 §12.5.5, §8.4).
void add_coding_headers(const Representation& chosen, Response& response, bool with_encoding) {
    if (with_encoding && chosen.coding != ContentCoding::identity) {
        response.add_header("Content-Encoding", std::string(content_coding_name(chosen.coding)));
    }
    if (chosen.varies) {
        response.add_header("Vary", "Accept-Encoding");
    }
}

/// The 206 for the ranges asked (RFC 9110 §15.3.7): one part as Content-Range, several as
/// multipart/byteranges (§14.6) whose parts are sent from the file piece by piece.
void answer_ranges(const ByteRanges& ranges, std::uint64_t size, const Representation& chosen,
                   Response& response) {
    response.status = Status::partial_content;
    if (ranges.spans.size() == 1) {
        const ByteSpan& span = ranges.spans.front();
        response.add_header("Content-Range", "bytes " + std::to_string(span.first) + "-" +
                                                 std::to_string(span.last) + "/" +
                                                 std::to_string(size));
        response.add_header("Content-Type", std::string(chosen.content_type));
        auto& file = std::get<http::FileBody>(response.body);
        file.offset = span.first;
        file.length = span.length();
        return;
    }
    MultipartBody multipart = make_multipart_byteranges(ranges.spans, size, chosen.content_type,
                                                        make_multipart_boundary());
    response.add_header("Content-Type", std::move(multipart.content_type));
    auto& file = std::get<http::FileBody>(response.body);
    file.length = multipart.length;
    file.pieces = std::move(multipart.pieces);
}

/// What a 200 or 206 says of the representation after its Content-Type: its coding, Vary,
/// validators (RFC 9110 §8.8) and that ranges are accepted (§14.3).
void add_validator_fields(const Representation& chosen, std::string etag,
                          std::string_view last_modified, Response& response) {
    add_coding_headers(chosen, response, true);
    response.add_header("ETag", std::move(etag));
    response.add_header("Last-Modified", std::string(last_modified));
    response.add_header("Accept-Ranges", "bytes");
}

/// The whole representation as the body: the cache entry's bytes when it holds them, kept
/// alive with the response; else the open file. (A Range request never holds them: those
/// bypass the cache.)
void set_whole_body(Representation& chosen, std::uint64_t size, Response& response) {
    if (chosen.cached && !chosen.cached->on_disk) {
        response.body = http::BorrowedBytes{chosen.cached->content};
        response.keep = chosen.cached;
    } else {
        response.body = http::FileBody{std::move(chosen.file.fd), 0, size, {}};
    }
}

/// A regular file, open and checked: preconditions, then Range, then 200.
Response serve_file(const http::Request& request, Representation chosen) {
    const struct stat& info = chosen.file.info;
    const std::string etag = chosen.cached ? chosen.cached->etag : make_etag(info, chosen.coding);
    const std::time_t mtime = info.st_mtim.tv_sec;
    char last_modified[http::kHttpDateLength + 1] = {};
    http::format_http_date(mtime, last_modified);
    const auto size = static_cast<std::uint64_t>(info.st_size);

    switch (evaluate_preconditions(request, etag, mtime)) {
        case Precondition::failed: {
            Response response = make_error_response(Status::precondition_failed);
            add_coding_headers(chosen, response, false);
            return response;
        }
        case Precondition::not_modified: {
            // RFC 9110 §15.4.5: the validators and Vary a 200 would carry, no content.
            Response response;
            response.status = Status::not_modified;
            response.add_header("ETag", etag);
            response.add_header("Last-Modified", std::string(last_modified, http::kHttpDateLength));
            add_coding_headers(chosen, response, false);
            return response;
        }
        case Precondition::proceed:
            break;
    }

    // RFC 9110 §14.2: Range applies to GET only; HEAD answers as a GET without Range would.
    ByteRanges ranges;
    const std::string_view range_value = request.field("Range");
    if (request.method == Method::get && !range_value.empty() &&
        if_range_allows(request.field("If-Range"), etag, mtime, std::time(nullptr))) {
        ranges = parse_byte_ranges(range_value, size);
    }
    if (ranges.kind == ByteRanges::Kind::unsatisfiable) {
        // §15.5.17: 416 says how long the representation is.
        Response response = make_error_response(Status::range_not_satisfiable);
        response.add_header("Content-Range", "bytes */" + std::to_string(size));
        add_coding_headers(chosen, response, false);  // the body is our HTML, not encoded
        return response;
    }

    Response response;
    response.headers.reserve(8);  // one allocation, not several as the vector grows
    response.status = Status::ok;
    set_whole_body(chosen, size, response);  // answer_ranges() narrows it
    if (ranges.kind == ByteRanges::Kind::satisfiable) {
        answer_ranges(ranges, size, chosen, response);
    } else {
        response.add_header("Content-Type", std::string(chosen.content_type));
    }
    add_validator_fields(chosen, etag, std::string_view(last_modified, http::kHttpDateLength),
                         response);
    return response;
}

/// Keeps what answering `key` took in the cache: the file served (at `served_path`, with
/// its bytes read from the open descriptor) and its directory, whose stat `dir_info` is
/// known when the request named the directory itself.
void remember(FileCache& cache, std::string key, const std::string& served_path,
              const struct stat* dir_info, const Representation& chosen) {
    FileCache::Entry entry;
    entry.file_path = served_path;
    entry.file_info = chosen.file.info;
    const std::size_t slash = served_path.rfind('/');
    entry.dir_path = slash == 0 || slash == std::string::npos ? "/" : served_path.substr(0, slash);
    if (dir_info != nullptr) {
        entry.dir_info = *dir_info;
    } else if (::stat(entry.dir_path.c_str(), &entry.dir_info) != 0) {
        return;
    }
    entry.content_type = chosen.content_type;
    entry.varies = chosen.varies;
    entry.has_br = chosen.has_br;
    entry.has_gzip = chosen.has_gzip;
    // What serve_file() would compute on every hit, done once: the validators, and the
    // fields of a 200 serialised as the core sends them.
    entry.etag = make_etag(chosen.file.info, chosen.coding);
    char last_modified[http::kHttpDateLength + 1] = {};
    http::format_http_date(chosen.file.info.st_mtim.tv_sec, last_modified);
    Response fields;
    fields.add_header("Content-Type", std::string(chosen.content_type));
    add_validator_fields(chosen, entry.etag, std::string_view(last_modified, http::kHttpDateLength),
                         fields);
    for (const auto& [name, value] : fields.headers) {
        entry.fields_200 += name;
        entry.fields_200 += ": ";
        entry.fields_200 += value;
        entry.fields_200 += "\r\n";
    }
    cache.store(key, std::move(entry), chosen.file.fd.get());
}

Response directory_listing(int dir_fd, std::string_view path, const RootGuard* guard) {
    Response response;
    response.status = Status::ok;
    response.add_header("Content-Type", "text/html; charset=utf-8");
    response.body = render_directory_listing(dir_fd, path, guard);
    return response;
}

}  // namespace

StaticFileHandler::StaticFileHandler(std::filesystem::path document_root,
                                     std::vector<std::string> index_files,
                                     const MimeTypes& mime_types, StaticConfig options)
    : root_(std::filesystem::absolute(document_root).lexically_normal().string()),
      index_files_(std::move(index_files)),
      mime_types_(mime_types),
      options_(options),
      guard_(root_) {
    while (!root_.empty() && root_.back() == '/') {
        root_.pop_back();  // "/" becomes "", so that root_ + path is always one slash
    }
    if (options_.file_cache) {
        FileCache::Limits limits;
        limits.valid = options_.file_cache_valid;
        cache_ = std::make_unique<FileCache>(limits);
    }
}

std::optional<Response> StaticFileHandler::serve_from_cache(const http::Request& request) const {
    bool present = false;
    const std::string accept =
        options_.precompressed ? accept_encoding(request, present) : std::string();
    // Whether a ".br" or ".gz" sibling, had one appeared since, would be sent instead.
    const bool negotiates =
        options_.precompressed &&
        choose_content_coding(accept, present, true, true) != ContentCoding::identity;
    // The directory's listing picks the index file and the siblings. When neither can
    // change this answer, the file's own stat is enough: a sibling added since would only
    // have added Vary (RFC 9110 §12.5.5), and this client would get these bytes anyway.
    const bool check_directory = request.path.ends_with('/') || negotiates;
    const std::shared_ptr<const FileCache::Entry> entry =
        cache_->find(request.path, check_directory);
    if (!entry) {
        return std::nullopt;
    }
    if (entry->varies && negotiates &&
        choose_content_coding(accept, present, entry->has_br, entry->has_gzip) !=
            ContentCoding::identity) {
        return std::nullopt;  // an encoded sibling is wanted: the ordinary path sends it
    }
    Representation chosen;
    if (entry->on_disk) {
        // Its bytes are sent from the file, opened now: the entry holds only while the
        // descriptor is of the very file it was made from, unchanged.
        chosen.file = open_file(AT_FDCWD, entry->file_path.c_str(), nullptr);
        if (chosen.file.failure != Status::ok ||
            !FileCache::same_file(chosen.file.info, entry->file_info)) {
            cache_->drop(request.path, *entry);
            return std::nullopt;
        }
    }
    chosen.cached = entry;
    if (!has_preconditions(request)) {
        // The common case, answered from what the entry rendered when it was made.
        Response response;
        response.status = Status::ok;
        response.serialized_fields = entry->fields_200;
        set_whole_body(chosen, static_cast<std::uint64_t>(entry->file_info.st_size), response);
        response.keep = entry;  // the fields too point into it
        return response;
    }
    chosen.file.info = entry->file_info;
    chosen.content_type = entry->content_type;
    chosen.varies = entry->varies;
    return serve_file(request, std::move(chosen));
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
    // RFC 9110 §15.5.6: Allow lists every method the resource answers; the core answers
    // OPTIONS itself.
    if (request.method != Method::get && request.method != Method::head) {
        Response response = make_error_response(Status::method_not_allowed);
        response.add_header("Allow", "GET, HEAD, OPTIONS");
        return response;
    }
    const std::string_view path = request.path;
    // A plain path (Request::plain_path) is safe and names no hidden file already.
    if (!request.plain_path || path != request.target_path) {
        if (!is_safe_path(path)) {
            return make_error_response(Status::bad_request);
        }
        if (has_hidden_segment(path)) {
            return make_error_response(Status::forbidden);
        }
    }

    const RootGuard* guard = options_.follow_symlinks ? nullptr : &guard_;
    // The cache checks names, not opened files, so the symlink guard bypasses it; ranges
    // are sent from the file.
    const bool cacheable = cache_ != nullptr && guard == nullptr && request.field("Range").empty();
    if (cacheable) {
        if (std::optional<Response> cached = serve_from_cache(request)) {
            return std::move(*cached);
        }
    }
    std::string file_name = root_ + std::string(path);
    OpenedFile file = open_file(AT_FDCWD, file_name.c_str(), guard);
    if (file.failure != Status::ok) {
        return make_error_response(file.failure);
    }
    std::string_view served_name = path;
    UniqueFd directory;  // the folder an index file was found in, for its siblings
    struct stat directory_info {};
    if (S_ISDIR(file.info.st_mode)) {
        if (!path.ends_with('/')) {
            return redirect_to_directory(request);
        }
        std::optional<IndexFile> index = open_index(file.fd.get(), index_files_, guard);
        if (!index) {
            if (options_.autoindex) {
                return directory_listing(file.fd.get(), path, guard);
            }
            return make_error_response(Status::forbidden, "Directory listing is off.");
        }
        if (index->file.failure != Status::ok) {
            return make_error_response(index->file.failure);
        }
        directory = std::move(file.fd);
        directory_info = file.info;
        file = std::move(index->file);
        served_name = index->name;
        file_name = std::string(index->name);
    }
    if (!S_ISREG(file.info.st_mode)) {
        return make_error_response(Status::forbidden);
    }
    Representation chosen{std::move(file), mime_types_.lookup(served_name)};
    if (options_.precompressed) {
        const int dir_fd = directory.valid() ? directory.get() : AT_FDCWD;
        choose_sibling(request, dir_fd, file_name, guard, chosen);
    }
    // Any regular file is kept (its bytes only when small): this one is regular, checked
    // above.
    if (cacheable && chosen.coding == ContentCoding::identity && !chosen.sibling_unsettled) {
        const std::string served_path =
            directory.valid() ? root_ + std::string(path) + file_name : root_ + std::string(path);
        remember(*cache_, std::string(path), served_path,
                 directory.valid() ? &directory_info : nullptr, chosen);
    }
    return serve_file(request, std::move(chosen));
}

}  // namespace trident
