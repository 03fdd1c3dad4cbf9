#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace trident {

/// Maps file extensions to media types: /etc/mime.types when readable, a built-in table
/// for the common web types otherwise (and for anything the file lacks).
///
/// Types are stored exactly as written, without a charset parameter: the built-in table
/// says "text/html", as /etc/mime.types does.
class MimeTypes {
public:
    /// Built-in table only.
    MimeTypes();

    /// Built-in table, then every entry of a mime.types file (file entries win).
    /// A missing or unreadable file leaves the built-in table.
    static MimeTypes load(const std::string& path = "/etc/mime.types");

    /// The media type for a file name, by its last extension, case-insensitively, exactly as
    /// the table has it; "application/octet-stream" when unknown.
    std::string_view lookup(std::string_view filename) const noexcept;

    std::size_t size() const noexcept { return by_extension_.size(); }

private:
    /// Lets lookup() find a std::string key from a string_view without allocating.
    struct ExtensionHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view key) const noexcept {
            return std::hash<std::string_view>{}(key);
        }
    };

    void add(std::string_view type, std::string_view extension);

    std::unordered_map<std::string, std::string, ExtensionHash, std::equal_to<>>
        by_extension_;  ///< lower-case extension
};

}  // namespace trident
