#include "config/yaml_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <utility>

namespace trident::config_reader {

namespace {

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

/// `text` begins with `prefix` (ignoring case), a prefix of at least three characters:
/// "warning" is a near miss for "warn".
bool starts_with_folded(std::string_view text, std::string_view prefix) {
    if (prefix.size() < 3 || prefix.size() > text.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (lower(text[i]) != lower(prefix[i])) {
            return false;
        }
    }
    return true;
}

bool is_empty_value(const YAML::Node& node) {
    return !node.IsDefined() || node.IsNull();
}

}  // namespace

// --- Field ----------------------------------------------------------------------------------

YAML::Mark Field::mark() const {
    if (is_empty_value(node) || node.Mark().is_null()) {
        return key_mark;
    }
    return node.Mark();
}

void Field::fail(const std::string& what) const {
    throw ConfigError(mark(), name.empty() ? what : name + ": " + what);
}

void Field::fail_expected(std::string_view what) const {
    fail("expected " + std::string(what) + ", got " + describe(node));
}

// --- MapReader ------------------------------------------------------------------------------

MapReader::MapReader(const Field& field, std::vector<std::string> known)
    : field_(field), known_(std::move(known)) {
    if (is_empty_value(field_.node)) {
        return;  // "keep_alive:" with everything commented out: all defaults
    }
    if (!field_.node.IsMap()) {
        if (field_.name.empty()) {
            field_.fail_expected("a map of settings at the top level");
        }
        field_.fail_expected("a map");
    }
    for (auto it = field_.node.begin(); it != field_.node.end(); ++it) {
        // By value: `it->first` lives in a proxy that dies with the full expression.
        const YAML::Node key = it->first;
        const YAML::Node value = it->second;
        if (!key.IsScalar()) {
            throw ConfigError(key.Mark(),
                              "expected a key name " + where() + ", got " + describe(key));
        }
        const std::string& name = key.Scalar();
        for (const Entry& seen : entries_) {
            if (seen.key == name) {
                throw ConfigError(key.Mark(), "duplicate key " + quote(name) + " " + where() +
                                                  " (first given at line " +
                                                  std::to_string(seen.value.key_mark.line + 1) +
                                                  ")");
            }
        }
        if (std::find(known_.begin(), known_.end(), name) == known_.end()) {
            std::string message = "unknown key " + describe(key) + " " + where();
            if (const std::string near = nearest_name(name, known_); !near.empty()) {
                message += "; did you mean '" + near + "'?";
            } else {
                message += "; known keys: " + join(known_, ", ");
            }
            throw ConfigError(key.Mark(), message);
        }
        const std::string child_name = field_.name.empty() ? name : field_.name + "." + name;
        entries_.push_back(Entry{name, Field{value, key.Mark(), child_name}});
    }
}

std::optional<Field> MapReader::find(std::string_view key) const {
    for (const Entry& entry : entries_) {
        if (entry.key == key) {
            return entry.value;
        }
    }
    return std::nullopt;
}

std::string MapReader::where() const {
    return field_.name.empty() ? std::string("at the top level") : "in " + field_.name;
}

// --- names and messages ---------------------------------------------------------------------

std::string describe(const YAML::Node& node) {
    if (is_empty_value(node)) {
        return "nothing";
    }
    if (node.IsMap()) {
        return "a map";
    }
    if (node.IsSequence()) {
        return "a sequence";
    }
    return quote(node.Scalar());
}

std::string quote(std::string_view text, std::size_t max_shown) {
    std::string shown = "'";
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (i == max_shown) {
            shown += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            shown += "\\n";
        } else if (c == '\t') {
            shown += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            shown += "\\x";
            shown += kHex[c >> 4];
            shown += kHex[c & 0xf];
        } else {
            shown += static_cast<char>(c);
        }
    }
    return shown + "'";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Three rolling rows: the adjacent-swap rule looks two rows back.
    std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        previous[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1])) {
                current[j] = std::min(current[j], before[j - 2] + 1);
            }
        }
        std::swap(before, previous);
        std::swap(previous, current);
    }
    return previous[b.size()];
}

std::string nearest_name(std::string_view word, const std::vector<std::string>& names) {
    std::string best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (const std::string& name : names) {
        const std::size_t distance = edit_distance(word, name);
        const std::size_t allowed = std::max<std::size_t>(2, name.size() / 3);
        const bool close = (distance <= allowed && distance < name.size()) ||
                           starts_with_folded(word, name) || starts_with_folded(name, word);
        if (close && distance < best_distance) {
            best = name;
            best_distance = distance;
        }
    }
    return best;
}

std::string join(const std::vector<std::string>& names, std::string_view separator) {
    std::string joined;
    for (const std::string& name : names) {
        if (!joined.empty()) {
            joined += separator;
        }
        joined += name;
    }
    return joined;
}

// --- typed reads ----------------------------------------------------------------------------

std::string read_string(const Field& field) {
    if (!field.node.IsScalar() || field.node.Scalar().empty()) {
        field.fail_expected("a non-empty string");
    }
    return field.node.Scalar();
}

bool read_bool(const Field& field) {
    static const std::vector<std::string> kTrue = {"true", "True", "TRUE", "yes", "Yes",
                                                   "YES",  "on",   "On",   "ON"};
    static const std::vector<std::string> kFalse = {"false", "False", "FALSE", "no", "No",
                                                    "NO",    "off",   "Off",   "OFF"};
    if (field.node.IsScalar()) {
        const std::string& text = field.node.Scalar();
        if (std::find(kTrue.begin(), kTrue.end(), text) != kTrue.end()) {
            return true;
        }
        if (std::find(kFalse.begin(), kFalse.end(), text) != kFalse.end()) {
            return false;
        }
    }
    field.fail_expected("a boolean (true/false, yes/no, on/off)");
}

std::uint64_t read_uint(const Field& field, std::uint64_t min, std::uint64_t max) {
    if (!field.node.IsScalar()) {
        field.fail_expected("a non-negative integer");
    }
    const std::string& text = field.node.Scalar();
    const bool digits_only = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return c >= '0' && c <= '9';
    });
    if (!digits_only) {
        field.fail_expected("a non-negative integer");
    }
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
        field.fail(text + " is out of range (" + std::to_string(min) + ".." + std::to_string(max) +
                   ")");
    }
    return value;
}

Duration read_duration(const Field& field) {
    if (!field.node.IsScalar()) {
        field.fail_expected("a duration such as 5s or 250ms");
    }
    auto parsed = parse_duration(field.node.Scalar());
    if (!parsed) {
        field.fail(parsed.error().message);
    }
    return parsed.value();
}

std::uint64_t read_size(const Field& field) {
    if (!field.node.IsScalar()) {
        field.fail_expected("a size such as 8190, 64KiB or 1GiB");
    }
    auto parsed = parse_size(field.node.Scalar());
    if (!parsed) {
        field.fail(parsed.error().message);
    }
    return parsed.value();
}

std::string read_choice(const Field& field, const std::vector<std::string>& names) {
    const std::string what = "one of " + join(names, ", ");
    if (!field.node.IsScalar()) {
        field.fail_expected(what);
    }
    const std::string& text = field.node.Scalar();
    if (std::find(names.begin(), names.end(), text) != names.end()) {
        return text;
    }
    std::string message = "expected " + what + ", got " + describe(field.node);
    if (const std::string near = nearest_name(text, names); !near.empty()) {
        message += "; did you mean '" + near + "'?";
    }
    field.fail(message);
}

std::vector<Field> read_list(const Field& field) {
    if (field.node.IsScalar()) {
        return {field};
    }
    if (!field.node.IsSequence()) {
        field.fail_expected("a sequence or a single value");
    }
    std::vector<Field> items;
    for (const YAML::Node& item : field.node) {
        // An empty item ("- ") has no useful position of its own: use the sequence's.
        items.push_back(Field{item, field.mark(), field.name});
    }
    return items;
}

}  // namespace trident::config_reader
