#include "status/status_handler.hpp"

#include <charconv>

#include "status/status_report.hpp"
#include "trident/build_info.hpp"

namespace trident::status {

namespace {

enum class Format : std::uint8_t { html, text, json };

struct Query {
    Format format = Format::html;
    unsigned refresh = 0;  ///< seconds; 0: no Refresh header
};

/// mod_status's query words, separated by '&' or ';': auto, json, refresh[=N] (N < 1 means
/// 1, as in Apache). Unknown words are ignored, as Apache does.
Query parse_query(std::string_view query) {
    Query parsed;
    while (!query.empty()) {
        const std::size_t end = std::min(query.find_first_of("&;"), query.size());
        const std::string_view word = query.substr(0, end);
        query.remove_prefix(std::min(end + 1, query.size()));
        if (word == "auto") {
            parsed.format = Format::text;
        } else if (word == "json") {
            parsed.format = Format::json;
        } else if (word == "refresh" || word.starts_with("refresh=")) {
            unsigned seconds = 1;
            if (word.size() > 8) {
                std::from_chars(word.data() + 8, word.data() + word.size(), seconds);
            }
            parsed.refresh = std::clamp(seconds, 1u, 86400u);
        }
    }
    return parsed;
}

/// The host the client named, without its port; Apache's first `?auto` line.
std::string host_name(const http::Request& request) {
    std::string_view host = request.host;
    if (host.starts_with('[')) {
        host = host.substr(0, host.find(']') + 1);
    } else {
        host = host.substr(0, host.find(':'));
    }
    return host.empty() ? std::string("localhost") : std::string(host);
}

}  // namespace

StatusHandler::StatusHandler(const Scoreboard& scoreboard, AllowList allow,
                             std::string server_version, std::string mpm)
    : scoreboard_(scoreboard),
      allow_(std::move(allow)),
      server_version_(std::move(server_version)),
      mpm_(std::move(mpm)) {}

void StatusHandler::handle(const http::Request& request, http::Response& response) noexcept {
    try {
        if (!allow_.permits(request.client_address)) {
            response = http::make_error_response(
                http::Status::forbidden, "You don't have permission to access this resource.");
            return;
        }
        if (request.method != http::Method::get && request.method != http::Method::head) {
            // RFC 9110 §15.5.6: 405 names the methods the resource supports.
            response = http::make_error_response(http::Status::method_not_allowed);
            response.add_header("Allow", "GET, HEAD");
            return;
        }
        const Query query = parse_query(request.query);
        const StatusReport report =
            take_report(scoreboard_, host_name(request), server_version_, mpm_);
        response.status = http::Status::ok;
        switch (query.format) {
            case Format::text:
                response.add_header("Content-Type", "text/plain; charset=ISO-8859-1");
                response.body = render_auto(report);
                break;
            case Format::json:
                response.add_header("Content-Type", "application/json");
                response.body = render_json(report);
                break;
            case Format::html:
                response.add_header("Content-Type", "text/html; charset=utf-8");
                response.body = render_html(report);
                break;
        }
        // RFC 9111 §5.2.2.4: a stored copy must be revalidated, so a monitor sees now.
        response.add_header("Cache-Control", "no-cache");
        if (query.refresh > 0) {
            response.add_header("Refresh", std::to_string(query.refresh));
        }
    } catch (...) {
        response = http::Response{};
        response.status = http::Status::internal_server_error;
    }
}

Result<std::unique_ptr<Handler>> make_status_handler(const Config& config,
                                                     const Scoreboard& scoreboard) {
    auto allow = AllowList::parse(config.status.allow);
    if (!allow) {
        return allow.error();
    }
    const std::string version =
        config.server_tokens == "prod" ? "Trident" : "Trident/" TRIDENT_VERSION;
    return std::unique_ptr<Handler>(
        std::make_unique<StatusHandler>(scoreboard, std::move(allow.value()), version, config.mpm));
}

}  // namespace trident::status
