#include "http/field_line.hpp"

#include "http/syntax.hpp"

namespace trident::http {

std::string_view parse_field_line(std::string_view line, Field& field) noexcept {
    // RFC 9112 §5.2: obs-fold (a line starting with whitespace) is rejected, not unfolded.
    if (!line.empty() && is_ows(line.front())) {
        return "obsolete line folding";
    }
    // RFC 9112 §5.1: field-name ":" with no whitespace before the colon; the name is a token.
    const std::size_t colon = token_length(line);
    if (colon == 0 || colon == line.size() || line[colon] != ':') {
        return "invalid field name";
    }
    // RFC 9112 §5.1: OWS field-value OWS. RFC 9110 §5.5: CTLs (NUL, CR, LF, ...) and DEL → 400.
    std::size_t begin = colon + 1;
    while (begin < line.size() && is_ows(line[begin])) {
        ++begin;
    }
    for (std::size_t i = begin; i < line.size(); ++i) {
        if (!is_field_value_byte(line[i])) {
            return "invalid field value";
        }
    }
    std::size_t end = line.size();
    while (end > begin && is_ows(line[end - 1])) {
        --end;
    }
    field = Field{line.substr(0, colon), line.substr(begin, end - begin)};
    return {};
}

}  // namespace trident::http
