#pragma once

// Typed, strict reads of yaml-cpp nodes for the config loader. Every read either returns a
// checked value or throws ConfigError carrying the node's position; load_config turns that
// into the one-line "FILE:LINE:COLUMN: message". Nothing here is seen outside src/config.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "trident/config.hpp"

namespace trident::config_reader {

/// What went wrong and where; thrown inside the loader only.
class ConfigError : public std::runtime_error {
public:
    ConfigError(const YAML::Mark& mark, const std::string& message)
        : std::runtime_error(message), mark_(mark) {}

    const YAML::Mark& mark() const noexcept { return mark_; }

private:
    YAML::Mark mark_;
};

/// One value of the file: its node, where its key stood, and its dotted name for messages
/// ("keep_alive.timeout"; empty for the document itself).
struct Field {
    YAML::Node node;
    YAML::Mark key_mark;
    std::string name;

    /// The value's position, or the key's when the value is empty (yaml-cpp places an
    /// empty value on the following line).
    YAML::Mark mark() const;

    /// Throws "NAME: what" at the value's position.
    [[noreturn]] void fail(const std::string& what) const;

    /// Throws "NAME: expected WHAT, got 'TEXT'" at the value's position.
    [[noreturn]] void fail_expected(std::string_view what) const;
};

/// One YAML mapping. The constructor rejects a non-map, a non-scalar key, a key given twice
/// and a key not in `known` (suggesting the nearest known one), so later look-ups only ask
/// for keys that may be absent.
class MapReader {
public:
    MapReader(const Field& field, std::vector<std::string> known);

    /// The value under `key`, or nothing when the key is absent.
    std::optional<Field> find(std::string_view key) const;

    /// Where the map starts, for "X is required" messages.
    YAML::Mark mark() const { return field_.mark(); }

private:
    struct Entry {
        std::string key;
        Field value;
    };

    /// "in keep_alive" or "at the top level", for messages about keys.
    std::string where() const;

    Field field_;
    std::vector<std::string> known_;
    std::vector<Entry> entries_;
};

/// `text` in single quotes, cut after `max_shown` characters and with control characters
/// escaped, so that a message stays on one readable line whatever the file holds.
std::string quote(std::string_view text, std::size_t max_shown = 60);

/// How a node reads in a message: "'text'" for a scalar (shortened, control characters
/// escaped), otherwise "a map", "a sequence" or "nothing".
std::string describe(const YAML::Node& node);

/// Optimal string alignment distance (Levenshtein plus adjacent swaps), case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The name in `names` nearest to `word` when it is close enough to be a likely typo:
/// distance <= max(2, length of the name / 3), or one is a prefix (3+ characters) of the
/// other. Empty when nothing is that close.
std::string nearest_name(std::string_view word, const std::vector<std::string>& names);

/// "a, b, c".
std::string join(const std::vector<std::string>& names, std::string_view separator);

/// A non-empty string scalar.
std::string read_string(const Field& field);

/// true/false, yes/no, on/off (also Capitalised and UPPER case, as YAML 1.1 has them).
bool read_bool(const Field& field);

/// A decimal integer in [min, max].
std::uint64_t read_uint(const Field& field, std::uint64_t min, std::uint64_t max);

/// A duration as parse_duration reads it.
Duration read_duration(const Field& field);

/// A size as parse_size reads it.
std::uint64_t read_size(const Field& field);

/// One of `names`, with a did-you-mean when the value is a near miss.
std::string read_choice(const Field& field, const std::vector<std::string>& names);

/// The items of a sequence, or the value itself when it is a single scalar. Items keep the
/// sequence's name, so messages read "listen: ..." at the item's own position.
std::vector<Field> read_list(const Field& field);

}  // namespace trident::config_reader
