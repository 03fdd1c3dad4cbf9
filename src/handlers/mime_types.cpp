#include "handlers/mime_types.hpp"

#include <fstream>
#include <utility>

namespace trident {

namespace {

constexpr std::string_view kDefaultType = "application/octet-stream";

/// Longest extension lookup() considers; longer ones are unknown by definition.
constexpr std::size_t kMaxExtension = 64;

struct BuiltinType {
    std::string_view extension;
    std::string_view type;
};

// The common web types, so that a host without /etc/mime.types still serves a site.
// No charset parameters: the table says what the file is, as /etc/mime.types does.
constexpr BuiltinType kBuiltinTypes[] = {
    {"html", "text/html"},
    {"htm", "text/html"},
    {"shtml", "text/html"},
    {"css", "text/css"},
    {"js", "text/javascript"},  // RFC 9239 §6
    {"mjs", "text/javascript"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"webmanifest", "application/manifest+json"},
    {"map", "application/json"},
    {"txt", "text/plain"},
    {"text", "text/plain"},
    {"log", "text/plain"},
    {"md", "text/markdown"},
    {"markdown", "text/markdown"},
    {"csv", "text/csv"},
    {"tsv", "text/tab-separated-values"},
    {"ics", "text/calendar"},
    {"vtt", "text/vtt"},
    {"xml", "application/xml"},
    {"xsl", "application/xml"},
    {"xhtml", "application/xhtml+xml"},
    {"rss", "application/rss+xml"},
    {"atom", "application/atom+xml"},
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"png", "image/png"},
    {"apng", "image/apng"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"jpe", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ico", "image/vnd.microsoft.icon"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"eot", "application/vnd.ms-fontobject"},
    {"mp4", "video/mp4"},
    {"m4v", "video/mp4"},
    {"webm", "video/webm"},
    {"ogv", "video/ogg"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"m4a", "audio/mp4"},
    {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},
    {"opus", "audio/ogg"},
    {"wav", "audio/wav"},
    {"flac", "audio/flac"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tgz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"bz2", "application/x-bzip2"},
    {"xz", "application/x-xz"},
    {"zst", "application/zstd"},
    {"7z", "application/x-7z-compressed"},
    {"rar", "application/vnd.rar"},
    {"rtf", "application/rtf"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"epub", "application/epub+zip"},
};

constexpr char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? char(c + 32) : c;
}

std::string lowered(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        c = lower(c);
    }
    return out;
}

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v';
}

/// The next whitespace-separated token of `line`, consumed from its front.
std::string_view next_token(std::string_view& line) {
    std::size_t begin = 0;
    while (begin < line.size() && is_space(line[begin])) {
        ++begin;
    }
    std::size_t end = begin;
    while (end < line.size() && !is_space(line[end])) {
        ++end;
    }
    const std::string_view token = line.substr(begin, end - begin);
    line.remove_prefix(end);
    return token;
}

}  // namespace

MimeTypes::MimeTypes() {
    for (const BuiltinType& entry : kBuiltinTypes) {
        add(entry.type, entry.extension);
    }
}

void MimeTypes::add(std::string_view type, std::string_view extension) {
    // lookup() only ever asks for the last extension, so "cwl.json" could never match.
    if (extension.empty() || extension.find('.') != std::string_view::npos ||
        extension.size() > kMaxExtension) {
        return;
    }
    by_extension_.insert_or_assign(lowered(extension), std::string(type));
}

MimeTypes MimeTypes::load(const std::string& path) {
    MimeTypes types;
    std::ifstream file(path);
    if (!file) {
        return types;
    }
    // "type ext1 ext2 ..." per line; '#' starts a comment; a type without extensions is
    // only a registration and adds nothing.
    std::string line;
    while (std::getline(file, line)) {
        std::string_view rest(line);
        if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
            rest = rest.substr(0, hash);
        }
        const std::string_view type = next_token(rest);
        if (type.empty() || type.find('/') == std::string_view::npos) {
            continue;
        }
        for (std::string_view ext = next_token(rest); !ext.empty(); ext = next_token(rest)) {
            types.add(type, ext);
        }
    }
    return types;
}

std::string_view MimeTypes::lookup(std::string_view filename) const noexcept {
    if (const std::size_t slash = filename.rfind('/'); slash != std::string_view::npos) {
        filename.remove_prefix(slash + 1);
    }
    const std::size_t dot = filename.rfind('.');
    // A leading dot names a hidden file (".profile"), not an extension.
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == filename.size()) {
        return kDefaultType;
    }
    const std::string_view extension = filename.substr(dot + 1);
    if (extension.size() > kMaxExtension) {
        return kDefaultType;
    }
    char buffer[kMaxExtension];
    for (std::size_t i = 0; i < extension.size(); ++i) {
        buffer[i] = lower(extension[i]);
    }
    const auto it = by_extension_.find(std::string_view(buffer, extension.size()));
    if (it == by_extension_.end()) {
        return kDefaultType;
    }
    return it->second;
}

}  // namespace trident
