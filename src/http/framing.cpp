#include "http/framing.hpp"

namespace trident::http {

namespace {

Framing refuse(Status status, std::string_view reason) noexcept {
    Framing framing;
    framing.status = status;
    framing.reason = reason;
    framing.close = true;
    return framing;
}

Framing chunked_framing(const Request& request) noexcept {
    const TransferCodings& codings = request.transfer_codings;
    // RFC 9112 §6.1 ¶16: Transfer-Encoding in HTTP/1.0 means faulty framing; close after.
    if (request.version.minor == 0) {
        return refuse(Status::bad_request, "Transfer-Encoding in an HTTP/1.0 request");
    }
    // RFC 9112 §6.1 ¶15 and §6.3 ¶3: with Content-Length too, a server MAY go by
    // Transfer-Encoding; the strict choice is to refuse, since a proxy may have gone by the
    // other one.
    if (request.content_length) {
        return refuse(Status::bad_request, "Transfer-Encoding with Content-Length");
    }
    // RFC 9112 §6.3 ¶4: chunked not last → the length cannot be determined: 400, then close.
    if (!codings.chunked_last) {
        return refuse(Status::bad_request, "chunked is not the final transfer coding");
    }
    // RFC 9112 §7.1: a sender must not apply chunked more than once.
    if (codings.chunked_twice) {
        return refuse(Status::bad_request, "chunked applied more than once");
    }
    Framing framing;
    framing.body = BodyFraming::chunked;
    // RFC 9112 §6.1 ¶12: a coding we do not understand → 501. The body is still framed by
    // the final chunked, so it is read and the connection goes on.
    if (codings.other) {
        framing.status = Status::not_implemented;
        framing.reason = "transfer coding not supported";
    }
    return framing;
}

}  // namespace

Framing decide_framing(const Request& request, std::uint64_t body_limit) noexcept {
    if (request.transfer_codings.present) {
        return chunked_framing(request);
    }
    if (!request.content_length || *request.content_length == 0) {
        return {};  // RFC 9112 §6.3 ¶7: neither field → no body
    }
    // RFC 9110 §15.5.14: more than we accept → 413, and close rather than read it.
    if (*request.content_length > body_limit) {
        return refuse(Status::content_too_large, "request body too large");
    }
    Framing framing;
    framing.body = BodyFraming::length;
    framing.length = *request.content_length;
    return framing;
}

}  // namespace trident::http
