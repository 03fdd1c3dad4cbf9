#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "handlers/file_cache.hpp"
#include "handlers/mime_types.hpp"
#include "handlers/root_guard.hpp"
#include "trident/config.hpp"
#include "trident/handler.hpp"

namespace trident {

/// Serves files below a document root: GET and HEAD, directory index (or a listing, or
/// 403), 301 to the slash form of a directory, ETag / Last-Modified validators, the
/// preconditions of RFC 9110 §13, single and multiple byte ranges (§14), precompressed
/// ".br" / ".gz" siblings, and a symlink policy. Bodies are open files for sendfile.
/// docs/static-files.md lists every rule with its status.
class StaticFileHandler final : public Handler {
public:
    StaticFileHandler(std::filesystem::path document_root, std::vector<std::string> index_files,
                      const MimeTypes& mime_types, StaticConfig options = {});

    std::string_view name() const noexcept override { return "static"; }
    bool thread_safe() const noexcept override { return true; }
    void handle(const http::Request& request, http::Response& response) noexcept override;

private:
    /// handle() without the exception boundary.
    http::Response serve(const http::Request& request) const;
    /// From the file cache, when the path was answered before and nothing changed since;
    /// nullopt sends the request down the ordinary path.
    std::optional<http::Response> serve_from_cache(const http::Request& request) const;

    std::string root_;  ///< absolute, without a trailing slash
    std::vector<std::string> index_files_;
    const MimeTypes& mime_types_;
    StaticConfig options_;
    RootGuard guard_;
    std::unique_ptr<FileCache> cache_;  ///< null when static.file_cache is off
};

}  // namespace trident
