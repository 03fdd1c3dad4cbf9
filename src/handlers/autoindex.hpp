#pragma once

// Directory listings (Apache's mod_autoindex with Options +Indexes): an HTML table of the
// entries of a directory that has no index file.

#include <string>
#include <string_view>

namespace trident {

class RootGuard;

/// At most this many entries are listed; a larger directory says that it was cut.
inline constexpr std::size_t kMaxListingEntries = 10000;

/// The HTML page listing the directory open at `dir_fd`, reached by the decoded request
/// path `path` (ending in '/'). Names are HTML-escaped and percent-encoded in links, sorted
/// bytewise; dotfiles are hidden, and so is anything that would not be served: entries that
/// are neither files nor directories, dangling links, and links that leave the root when
/// `guard` is given (symlinks not followed).
std::string render_directory_listing(int dir_fd, std::string_view path, const RootGuard* guard);

}  // namespace trident
