#include "handlers/conditional.hpp"

#include <optional>

#include "http/http_date.hpp"
#include "http/syntax.hpp"

namespace trident {

namespace {

using http::is_ows;
using http::Method;

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

}  // namespace

Precondition evaluate_preconditions(const http::Request& request, std::string_view etag,
                                    std::time_t mtime) noexcept {
    // Step 1 and 2: If-Match (§13.1.1, strong), else If-Unmodified-Since (§13.1.4); a value
    // that is not a valid HTTP-date is ignored.
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
    // Step 3 and 4: If-None-Match (§13.1.2, weak: 304 for GET/HEAD, 412 otherwise), else
    // If-Modified-Since (§13.1.3: GET and HEAD only, invalid dates ignored).
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

bool if_range_allows(std::string_view value, std::string_view etag, std::time_t mtime,
                     std::time_t now) noexcept {
    value = http::trim_ows(value);
    if (value.empty()) {
        return true;
    }
    // §13.1.5: a DQUOTE (or "W/") starts an entity-tag; a weak one never matches.
    if (value.front() == '"' || value.starts_with("W/")) {
        return value.front() == '"' && value == etag;
    }
    // §8.8.2.2: a modification time is a strong validator only once its second is over; a
    // file changed twice within the current second would carry the same date.
    const std::optional<std::time_t> date = http::parse_http_date(value);
    return date && *date == mtime && mtime < now;
}

}  // namespace trident
