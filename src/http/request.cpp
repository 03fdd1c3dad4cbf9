#include "trident/http/request.hpp"

namespace trident::http {

namespace {
constexpr char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? char(c + 32) : c;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

std::string_view Request::field(std::string_view name) const noexcept {
    for (const Field& f : fields) {
        if (iequals(f.name, name)) {
            return f.value;
        }
    }
    return {};
}

void Request::clear() noexcept {
    method = Method::other;
    method_text = {};
    target = {};
    query = {};
    target_form = TargetForm::origin;
    target_path = {};
    authority = {};
    plain_path = false;
    version = {};
    fields.clear();
    host = {};
    content_length.reset();
    has_transfer_encoding = false;
    transfer_codings = {};
    expect_continue = false;
    expect_unsupported = false;
    connection_close = false;
    connection_keep_alive = false;
    path.clear();
}

std::string_view method_name(Method method) noexcept {
    switch (method) {
        case Method::get:
            return "GET";
        case Method::head:
            return "HEAD";
        case Method::post:
            return "POST";
        case Method::put:
            return "PUT";
        case Method::delete_:
            return "DELETE";
        case Method::connect:
            return "CONNECT";
        case Method::options:
            return "OPTIONS";
        case Method::trace:
            return "TRACE";
        case Method::patch:
            return "PATCH";
        case Method::other:
            break;
    }
    return "";
}

}  // namespace trident::http
