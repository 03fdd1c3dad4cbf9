#include "http/router.hpp"

#include <variant>

#include "handlers/request_path.hpp"
#include "handlers/static_file.hpp"

namespace trident {

using http::Method;
using http::Status;

Router::Router(const Config& config)
    : mime_types_(MimeTypes::load()),
      static_files_(std::make_unique<StaticFileHandler>(
          config.document_root, config.directory_index, mime_types_, config.static_files)) {}

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

// The methods Trident serves (RFC 9110 §9.3): what every 405 and OPTIONS answer lists.
constexpr std::string_view kAllowedMethods = "GET, HEAD, OPTIONS";

http::Response method_not_allowed() {
    // RFC 9110 §15.5.6: a 405 carries Allow.
    http::Response response = http::make_error_response(Status::method_not_allowed);
    response.add_header("Allow", std::string(kAllowedMethods));
    return response;
}

http::Response options_answer() {
    // RFC 9110 §9.3.7: 200 with Allow and no content (Content-Length: 0 is added by the core).
    http::Response response;
    response.status = Status::ok;
    response.add_header("Allow", std::string(kAllowedMethods));
    return response;
}

}  // namespace

void Router::route(http::Request& request, http::Response& response) const noexcept {
    try {
        switch (request.method) {
            case Method::other:
                // RFC 9110 §9.1: an unrecognised method → 501.
                response = make_error_response(Status::not_implemented, "Method not implemented.");
                return;
            case Method::connect:
            case Method::trace:
                // CONNECT is for proxies (RFC 9112 §3.2.3), which Trident is not. TRACE
                // (RFC 9110 §9.3.8) would echo credentials back; off, as Apache's
                // TraceEnable off.
                response = method_not_allowed();
                return;
            default:
                break;
        }
        if (request.target_form == http::TargetForm::asterisk) {
            // The parser lets asterisk-form through only for OPTIONS (RFC 9112 §3.2.4).
            response = options_answer();
            return;
        }
        // Origin- or absolute-form: the parser set target_path (RFC 9112 §3.2.1-§3.2.2).
        if (request.plain_path) {
            request.path.assign(request.target_path);  // already what normalising gives
        } else if (const std::optional<Status> refused =
                       normalize_request_path(request.target_path, request.path)) {
            response = make_error_response(*refused);
            return;
        }
        if (request.method == Method::options) {
            response = options_answer();
            return;
        }
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
