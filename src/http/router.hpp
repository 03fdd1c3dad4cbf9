#pragma once

// Maps a parsed request to a handler. Built once per generation in the master, before any
// fork, so children share it (and its MIME table) copy-on-write.

#include <memory>
#include <vector>

#include "handlers/mime_types.hpp"
#include "trident/config.hpp"
#include "trident/handler.hpp"

namespace trident {

class Router {
public:
    explicit Router(const Config& config);
    ~Router();

    /// Checks the request target's form and method, sets request.path, and lets the matching
    /// handler fill `response` (or fills an error response itself).
    void route(http::Request& request, http::Response& response) const noexcept;

    /// Every handler in use, for the threaded-MPM safety check.
    std::vector<const Handler*> handlers() const;

    /// Serves the normalised path `path` exactly with `handler` (e.g. /server-status),
    /// before static files. Called by the master before any fork.
    void mount(std::string path, std::unique_ptr<Handler> handler);

private:
    MimeTypes mime_types_;
    std::unique_ptr<Handler> static_files_;
    std::vector<std::pair<std::string, std::unique_ptr<Handler>>> mounted_;
};

}  // namespace trident
