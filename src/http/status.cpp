#include "trident/http/status.hpp"

namespace trident::http {

std::string_view reason_phrase(Status status) noexcept {
    // RFC 9110 §15 names.
    switch (status) {
        case Status::continue_:
            return "Continue";
        case Status::ok:
            return "OK";
        case Status::partial_content:
            return "Partial Content";
        case Status::moved_permanently:
            return "Moved Permanently";
        case Status::not_modified:
            return "Not Modified";
        case Status::bad_request:
            return "Bad Request";
        case Status::forbidden:
            return "Forbidden";
        case Status::not_found:
            return "Not Found";
        case Status::method_not_allowed:
            return "Method Not Allowed";
        case Status::request_timeout:
            return "Request Timeout";
        case Status::precondition_failed:
            return "Precondition Failed";
        case Status::content_too_large:
            return "Content Too Large";
        case Status::uri_too_long:
            return "URI Too Long";
        case Status::range_not_satisfiable:
            return "Range Not Satisfiable";
        case Status::expectation_failed:
            return "Expectation Failed";
        case Status::internal_server_error:
            return "Internal Server Error";
        case Status::not_implemented:
            return "Not Implemented";
        case Status::service_unavailable:
            return "Service Unavailable";
        case Status::http_version_not_supported:
            return "HTTP Version Not Supported";
    }
    return "Unknown";
}

}  // namespace trident::http
