#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "handlers/mime_types.hpp"
#include "trident/handler.hpp"

namespace trident {

/// Serves files below a document root: GET and HEAD, directory index, 301 to the slash form
/// of a directory, ETag / Last-Modified validators, If-None-Match / If-Modified-Since → 304,
/// If-Range, and a single byte Range → 206 or 416. Bodies are open files for sendfile.
class StaticFileHandler final : public Handler {
public:
    StaticFileHandler(std::filesystem::path document_root, std::vector<std::string> index_files,
                      const MimeTypes& mime_types);

    std::string_view name() const noexcept override { return "static"; }
    bool thread_safe() const noexcept override { return true; }
    void handle(const http::Request& request, http::Response& response) noexcept override;

private:
    /// handle() without the exception boundary.
    http::Response serve(const http::Request& request) const;

    std::string root_;  ///< absolute, without a trailing slash
    std::vector<std::string> index_files_;
    const MimeTypes& mime_types_;
};

}  // namespace trident
