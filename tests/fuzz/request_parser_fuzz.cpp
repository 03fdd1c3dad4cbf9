// libFuzzer target: the request-head parser. Whatever the bytes, it must not read out of
// bounds, and parsing all at once must agree with parsing in two pieces.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/request_parser.hpp"

using trident::http::ParserLimits;
using trident::http::ParseState;
using trident::http::Request;
using trident::http::RequestParser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    // Small limits, so the limit paths are reached as often as the others.
    const ParserLimits limits{256, 16, 128};
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    RequestParser whole(limits);
    Request request;
    const ParseState once = whole.parse(input, request);

    RequestParser split(limits);
    Request pieces;
    const std::size_t cut = data[0] % size;
    ParseState state = split.parse(input.substr(0, cut), pieces);
    if (state == ParseState::need_more) {
        state = split.parse(input, pieces);
    }
    if (state != once) {
        std::abort();  // the outcome must not depend on how the bytes arrived
    }
    if (once == ParseState::complete) {
        if (whole.head_length() != split.head_length() || whole.head_length() > size ||
            request.target != pieces.target || request.fields.size() != pieces.fields.size() ||
            request.target_form != pieces.target_form || request.host != pieces.host ||
            request.content_length != pieces.content_length ||
            request.transfer_codings.chunked_last != pieces.transfer_codings.chunked_last) {
            std::abort();
        }
    } else if (once == ParseState::error && whole.error().status != split.error().status) {
        std::abort();
    }
    return 0;
}
