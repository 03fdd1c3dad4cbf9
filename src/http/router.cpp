#include "http/router.hpp"

#include <variant>

#include "handlers/request_path.hpp"
#include "handlers/static_file.hpp"

namespace trident {

using http::Method;
using http::Status;

Router::Router(const Config& config)
    : mime_types_(MimeTypes::load()),
      static_files_(std::make_unique<StaticFileHandler>(config.document_root,
                                                        config.directory_index, mime_types_)) {}

Router::~Router() = default;

std::vector<const Handler*> Router::handlers() const {
    std::vector<const Handler*> all = {static_files_.get()};
    for (const auto& [path, handler] : mounted_) {
        all.push_back(handler.get());
    }
    return all;
}

void Router::mount(std::string path, std::unique_ptr<Handler> handler) {
    mounted_.emplace_back(std::move(path), std::move(handler));
}

namespace {

/// The path part of an origin-form or absolute-form target (RFC 9112 §3.2), or empty when
/// the target has neither form.
std::string_view target_path(std::string_view target) {
    if (target.starts_with('/')) {
        return target.substr(0, target.find('?'));
    }
    // absolute-form: "http://authority/path?query"; the authority is ignored here since
    // there is one virtual host (RFC 9112 §3.2.2: it would replace Host).
    for (std::string_view scheme : {"http://", "https://"}) {
        if (target.size() > scheme.size() &&
            http::iequals(target.substr(0, scheme.size()), scheme)) {
            const std::string_view rest = target.substr(scheme.size());
            const std::size_t slash = rest.find_first_of("/?");
            if (slash == std::string_view::npos || rest[slash] == '?') {
                return "/";
            }
            return rest.substr(slash, rest.find('?', slash) - slash);
        }
    }
    return {};
}

}  // namespace

void Router::route(http::Request& request, http::Response& response) const noexcept {
    try {
        if (request.method == Method::other) {
            // RFC 9110 §9.1: an unrecognised method → 501.
            response = make_error_response(Status::not_implemented, "Method not implemented.");
            return;
        }
        if (request.method == Method::connect) {
            // Authority-form is for proxies (RFC 9112 §3.2.3); Trident is not one.
            response = make_error_response(Status::method_not_allowed);
            response.add_header("Allow", "GET, HEAD");
            return;
        }
        const std::string_view raw_path = target_path(request.target);
        if (raw_path.empty()) {
            // asterisk-form (RFC 9112 §3.2.4) or garbage.
            response = make_error_response(Status::bad_request, "Unsupported request target.");
            return;
        }
        PathResult path = normalize_request_path(raw_path);
        if (const Status* status = std::get_if<Status>(&path)) {
            response = make_error_response(*status);
            return;
        }
        request.path = std::move(std::get<std::string>(path));
        for (const auto& [mount_path, handler] : mounted_) {
            if (request.path == mount_path) {
                handler->handle(request, response);
                return;
            }
        }
        static_files_->handle(request, response);
    } catch (...) {
        response = http::Response{};
        response.status = Status::internal_server_error;
    }
}

}  // namespace trident
