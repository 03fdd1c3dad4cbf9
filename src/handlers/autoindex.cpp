#include "handlers/autoindex.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "handlers/root_guard.hpp"
#include "http/html.hpp"

namespace trident {

namespace {

struct ListingEntry {
    std::string name;
    bool directory = false;
    std::uint64_t size = 0;
    std::time_t mtime = 0;
};

/// A name as one path segment of a relative reference: only unreserved characters stay as
/// they are (RFC 3986 §2.3), so ':' cannot start a scheme and '?', '#' cannot cut the link.
void append_percent_encoded(std::string& out, std::string_view name) {
    constexpr char kHex[] = "0123456789ABCDEF";
    for (char c : name) {
        const auto byte = static_cast<unsigned char>(c);
        const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~';
        if (unreserved) {
            out += c;
        } else {
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 0x0F];
        }
    }
}

/// Whether a symlink entry stays inside the root; opened with O_PATH, which reads nothing.
bool link_stays_inside(int dir_fd, const char* name, const RootGuard& guard) {
    const int fd = ::openat(dir_fd, name, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    const bool inside = guard.contains(fd);
    ::close(fd);
    return inside;
}

struct DirCloser {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};

/// The entries worth listing; `cut` says whether more were left out than kMaxListingEntries.
std::vector<ListingEntry> read_entries(int dir_fd, const RootGuard* guard, bool& cut) {
    std::vector<ListingEntry> entries;
    cut = false;
    const int own_fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (own_fd < 0) {
        return entries;
    }
    const std::unique_ptr<DIR, DirCloser> dir(::fdopendir(own_fd));
    if (!dir) {
        ::close(own_fd);
        return entries;
    }
    while (const dirent* entry = ::readdir(dir.get())) {
        if (entry->d_name[0] == '.') {
            continue;  // dotfiles, ".", ".." and Apache's hidden ".ht*"
        }
        struct stat info {};
        if (::fstatat(dir_fd, entry->d_name, &info, 0) != 0) {
            continue;  // dangling link or vanished meanwhile: nothing to serve
        }
        if (!S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode)) {
            continue;
        }
        struct stat link {};
        if (guard != nullptr && ::fstatat(dir_fd, entry->d_name, &link, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(link.st_mode) && !link_stays_inside(dir_fd, entry->d_name, *guard)) {
            continue;
        }
        if (entries.size() == kMaxListingEntries) {
            cut = true;
            break;
        }
        entries.push_back({entry->d_name, S_ISDIR(info.st_mode),
                           static_cast<std::uint64_t>(info.st_size), info.st_mtim.tv_sec});
    }
    std::sort(entries.begin(), entries.end(),
              [](const ListingEntry& a, const ListingEntry& b) { return a.name < b.name; });
    return entries;
}

void append_row(std::string& html, const ListingEntry& entry) {
    html += "<tr><td><a href=\"";
    append_percent_encoded(html, entry.name);
    if (entry.directory) {
        html += '/';
    }
    html += "\">";
    http::append_html_escaped(html, entry.name);
    if (entry.directory) {
        html += '/';
    }
    html += "</a></td><td>";
    std::tm utc{};
    char when[32] = "-";
    if (::gmtime_r(&entry.mtime, &utc) != nullptr) {
        std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", &utc);
    }
    html += when;
    html += "</td><td>";
    html += entry.directory ? std::string("-") : std::to_string(entry.size);
    html += "</td></tr>\n";
}

}  // namespace

std::string render_directory_listing(int dir_fd, std::string_view path, const RootGuard* guard) {
    bool cut = false;
    const std::vector<ListingEntry> entries = read_entries(dir_fd, guard, cut);
    std::string html;
    html.reserve(512 + entries.size() * 128);
    html += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ";
    http::append_html_escaped(html, path);
    html += "</title></head>\n<body><h1>Index of ";
    http::append_html_escaped(html, path);
    html += "</h1>\n<table>\n<tr><th>Name</th><th>Last modified (UTC)</th><th>Size</th></tr>\n";
    if (path != "/") {
        html += "<tr><td><a href=\"../\">Parent Directory</a></td><td></td><td>-</td></tr>\n";
    }
    for (const ListingEntry& entry : entries) {
        append_row(html, entry);
    }
    html += "</table>\n";
    if (cut) {
        html += "<p>Only the first " + std::to_string(kMaxListingEntries) +
                " entries are listed.</p>\n";
    }
    html += "</body></html>\n";
    return html;
}

}  // namespace trident
