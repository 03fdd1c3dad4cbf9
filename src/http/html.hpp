#pragma once

// HTML text for the pages the server writes itself: error pages, directory listings and
// the status page.

#include <string>
#include <string_view>

namespace trident::http {

/// Appends `text` with <, >, &, " and ' replaced by their character references, so it is
/// safe as element content and inside a quoted attribute.
void append_html_escaped(std::string& out, std::string_view text);

inline std::string html_escaped(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    append_html_escaped(out, text);
    return out;
}

}  // namespace trident::http
