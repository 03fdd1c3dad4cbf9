#include "http/connection.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "http/decoded_path.hpp"
#include "http/router.hpp"
#include "trident/build_info.hpp"

namespace trident::http {

namespace {

constexpr std::size_t kInitialBuffer = 8192;

std::string_view server_token(const Config& config) {
    return config.server_tokens == "prod" ? "Trident" : "Trident/" TRIDENT_VERSION;
}

/// Writes a response head into a string sized for it beforehand: one allocation at most,
/// and no capacity check per piece.
class HeadWriter {
public:
    explicit HeadWriter(char* at) noexcept : at_(at) {}
    HeadWriter& operator<<(std::string_view text) noexcept {
        if (!text.empty()) {  // an empty view may have no data at all: memcpy wants one
            std::memcpy(at_, text.data(), text.size());
            at_ += text.size();
        }
        return *this;
    }
    char* end() const noexcept { return at_; }

private:
    char* at_;
};

/// The buffers of connections that no longer need them, kept by the thread that let them go
/// for the next connection it serves: an event worker parks one keep-alive connection and
/// takes the next, so a request costs no allocation of either.
struct SpareBuffers {
    std::unique_ptr<char[]> input;  ///< kInitialBuffer bytes, or null
    std::string head;               ///< capacity only
};
// At a fixed offset in the static TLS block, guard included (-ftls-model=initial-exec in
// CMakeLists.txt: libtrident is loaded with the program, never by dlopen).
thread_local SpareBuffers spare_buffers;

/// Whether a response to this status carries content at all (RFC 9110 §6.4.1).
bool status_has_content(Status status) {
    return status != Status::not_modified && code(status) >= 200 && code(status) != 204;
}

}  // namespace

Connection::~Connection() {
    give_back_buffers();
}

Connection::Connection(const Router& router, const Config& config) noexcept
    : router_(router),
      config_(config),
      server_token_(server_token(config)),
      parser_(ParserLimits{config.limits.request_line, config.limits.request_fields,
                           config.limits.request_field_size}),
      // The parser's limits bound a head; anything past that is refused before it is stored.
      max_buffer_(
          2 * RequestParser::kMaxLeadingEmptyLines + std::size_t(config.limits.request_line) + 2 +
          std::size_t(config.limits.request_fields) * (config.limits.request_field_size + 2) + 2),
      chunked_(ChunkedLimits{config.limits.request_body, config.limits.request_field_size,
                             config.limits.request_fields}) {}

std::span<char> Connection::input_space(std::size_t min_bytes) {
    if (buffer_size_ - end_ >= min_bytes) {
        return {buffer_.get() + end_, buffer_size_ - end_};
    }
    bool moved = false;
    if (begin_ > 0) {
        std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
        moved = true;
    }
    if (buffer_size_ == 0 && min_bytes <= kInitialBuffer) {
        if (SpareBuffers& spare = spare_buffers; spare.input) {
            buffer_ = std::move(spare.input);
            buffer_size_ = kInitialBuffer;
            return {buffer_.get(), buffer_size_};
        }
    }
    if (buffer_size_ - end_ < min_bytes) {
        const std::size_t size = std::max({buffer_size_ * 2, end_ + min_bytes, kInitialBuffer});
        auto larger = std::make_unique_for_overwrite<char[]>(size);
        if (end_ > 0) {
            std::memcpy(larger.get(), buffer_.get(), end_);
        }
        buffer_ = std::move(larger);
        buffer_size_ = size;
        moved = true;
    }
    if (moved && state_ == State::head) {
        // Views into the old bytes are gone: parse this head again from its start.
        parser_.reset();
        request_.clear();
    }
    return {buffer_.get() + end_, buffer_size_ - end_};
}

void Connection::commit_input(std::size_t bytes) noexcept {
    end_ = std::min(end_ + bytes, buffer_size_);
}

Wait Connection::waiting_for() const noexcept {
    if (state_ == State::body) {
        return Wait::body;
    }
    if (begin_ < end_) {
        return Wait::head;
    }
    return served_ == 0 ? Wait::first_request : Wait::keep_alive;
}

Action Connection::next(std::string_view date) {
    for (;;) {
        switch (state_) {
            case State::head: {
                if (begin_ == end_) {
                    // A graceful stop does not end an idle connection here: its client may
                    // be sending the next request right now, and a close would lose it.
                    // That request is answered, with Connection: close; the driver ends
                    // the wait of a client that sends none (ConnectionDriver's
                    // drain_idle_wait, or the keep-alive timeout).
                    if (peer_eof_) {
                        state_ = State::closing;
                        return Action::close;
                    }
                    return Action::read;
                }
                const ParseState parsed = parser_.parse(unconsumed(), request_);
                if (parsed == ParseState::need_more) {
                    if (peer_eof_) {
                        state_ = State::closing;  // a truncated head: nobody to answer
                        return Action::close;
                    }
                    if (end_ - begin_ > max_buffer_) {
                        reject(Status::bad_request, "request head too large", date);
                        return Action::write;
                    }
                    return Action::read;
                }
                if (parsed == ParseState::error) {
                    reject(parser_.error().status, parser_.error().reason, date);
                    return Action::write;
                }
                if (!start_request(date)) {
                    return Action::write;
                }
                break;
            }
            case State::interim:
                return Action::write;
            case State::body: {
                if (!consume_body()) {
                    // The body's framing broke (or its size passed the limit): what follows
                    // cannot be trusted, so answer and close.
                    reject(chunked_.error().status, chunked_.error().reason, date);
                    return Action::write;
                }
                const bool done = body_framing_ == BodyFraming::chunked
                                      ? chunked_.state() == ChunkedDecoder::State::done
                                      : body_remaining_ == 0;
                if (!done) {
                    if (peer_eof_) {
                        state_ = State::closing;
                        return Action::close;
                    }
                    return Action::read;
                }
                state_ = State::respond;
                request_read_ = true;
                break;
            }
            case State::respond:
                start_response(date);
                return Action::write;
            case State::write:
                return Action::write;
            case State::closing:
                return Action::close;
        }
    }
}

bool Connection::start_request(std::string_view date) {
    head_complete_ = true;
    const Framing framing = decide_framing(request_, config_.limits.request_body);
    if (framing.close) {
        reject(framing.status, framing.reason, date);
        return false;
    }
    keep_alive_ = decide_keep_alive();
    // RFC 9112 §9.6: a client that sends "close" sends no further requests; HTTP/1.0
    // without keep-alive closes after one.
    client_closes_ = request_.connection_close ||
                     (request_.version.minor == 0 && !request_.connection_keep_alive);
    request_read_ = false;
    begin_ += parser_.head_length();
    body_framing_ = framing.body;
    body_remaining_ = framing.length;
    chunked_.reset();
    const bool has_body = framing.body != BodyFraming::none;
    // RFC 9110 §10.1.1: the client waits for 100 before sending the content; a server may
    // skip the 100 when some of the content already arrived, and must ignore 100-continue
    // in an HTTP/1.0 request.
    const bool awaits_continue =
        has_body && begin_ == end_ && request_.version.minor >= 1 && request_.expect_continue;
    // Handle now, while the request's views are valid; the body (no handler reads one yet)
    // is then discarded as it arrives.
    answer(framing);
    if (has_body) {
        hold_head();
    }
    if (awaits_continue) {
        if (code(response_.status) >= 400) {
            // RFC 9110 §10.1.1: a final status instead of 100 goes out at once. The client may
            // send the body anyway or not at all, so where the next request starts is
            // unknown: close after answering.
            keep_alive_ = false;
            body_framing_ = BodyFraming::none;
            state_ = State::respond;
            return true;
        }
        start_interim();
        return true;
    }
    state_ = has_body ? State::body : State::respond;
    request_read_ = !has_body;
    return true;
}

void Connection::answer(const Framing& framing) {
    if (framing.status != Status::ok) {
        response_ = make_error_response(framing.status, framing.reason);
        return;
    }
    // RFC 9110 §10.1.1: an expectation other than 100-continue cannot be met → 417. Expect
    // belongs to HTTP/1.1; an HTTP/1.0 request's is ignored.
    if (request_.version.minor >= 1 && request_.expect_unsupported) {
        response_ = make_error_response(Status::expectation_failed,
                                        "Only the 100-continue expectation is supported.");
        return;
    }
    if (!request_.target_path.empty() && !request_.plain_path) {
        if (const std::string_view reason = check_decoded_path(request_.target_path);
            !reason.empty()) {
            response_ = make_error_response(Status::bad_request, reason);
            return;
        }
    }
    router_.route(request_, response_);
}

void Connection::hold_head() {
    // The body is discarded through the buffer, which overwrites the head's bytes: copy
    // them, and point every view of the request at the copy, so the access log and the
    // scoreboard still see the request line and fields once the body is read.
    const std::size_t length = parser_.head_length();
    const char* old_begin = buffer_.get() + (begin_ - length);
    const char* old_end = old_begin + length;
    held_head_.assign(old_begin, length);
    const auto rebase = [&](std::string_view view) -> std::string_view {
        if (view.empty() || view.data() < old_begin || view.data() + view.size() > old_end) {
            return view;  // empty, or a constant that does not live in the buffer
        }
        return {held_head_.data() + (view.data() - old_begin), view.size()};
    };
    request_.method_text = rebase(request_.method_text);
    request_.target = rebase(request_.target);
    request_.query = rebase(request_.query);
    request_.target_path = rebase(request_.target_path);
    request_.authority = rebase(request_.authority);
    request_.host = rebase(request_.host);
    for (Field& field : request_.fields) {
        field.name = rebase(field.name);
        field.value = rebase(field.value);
    }
}

void Connection::start_interim() {
    // RFC 9110 §15.2.1: "100 Continue" with no fields, sent on its own before the body is
    // read; the final response comes after it.
    output_.head = "HTTP/1.1 100 Continue\r\n\r\n";
    output_.body = {};
    output_.file = nullptr;
    output_.interim = true;
    state_ = State::interim;
}

bool Connection::consume_body() noexcept {
    if (body_framing_ == BodyFraming::chunked) {
        begin_ += chunked_.decode(unconsumed());
        return chunked_.state() != ChunkedDecoder::State::error;
    }
    const std::uint64_t take = std::min<std::uint64_t>(end_ - begin_, body_remaining_);
    begin_ += std::size_t(take);
    body_remaining_ -= take;
    return true;
}

Action Connection::on_timeout(std::string_view date) {
    if ((state_ == State::head && begin_ < end_) || state_ == State::body) {
        reject(Status::request_timeout, "timed out waiting for the request", date);
        return Action::write;
    }
    state_ = State::closing;
    return Action::close;
}

bool Connection::decide_keep_alive() const noexcept {
    if (!config_.keep_alive.enabled || close_after_ || request_.connection_close) {
        return false;  // RFC 9112 §9.6: "close" ends the connection after this response
    }
    if (request_.version.minor == 0 && !request_.connection_keep_alive) {
        return false;  // RFC 9112 §9.3: HTTP/1.0 persists only when asked to
    }
    const std::uint32_t max = config_.keep_alive.max_requests;
    return max == 0 || served_ + 1 < max;
}

void Connection::reject(Status status, std::string_view reason, std::string_view date) {
    response_ = make_error_response(status, reason);
    keep_alive_ = false;  // the framing of what follows is uncertain
    request_read_ = false;
    if (!head_complete_) {
        // A head that did not parse has no trustworthy method: answer as to a GET. A
        // complete HEAD request keeps its method, so its error carries no content.
        request_.method = Method::get;
    }
    start_response(date);
}

void Connection::start_response(std::string_view date) {
    if (close_after_) {
        keep_alive_ = false;
    }
    serialize_head(date);
    output_.body = {};
    output_.file = nullptr;
    // HEAD and 304 carry the fields of a GET but no content (RFC 9110 §9.3.2, §15.4.5).
    if (request_.method != Method::head && status_has_content(response_.status)) {
        if (const auto* file = std::get_if<FileBody>(&response_.body)) {
            output_.file = file;
        } else {
            output_.body = response_.body_bytes();
        }
    }
    state_ = State::write;
}

void Connection::serialize_head(std::string_view date) {
    char status_code[4];
    std::to_chars(status_code, status_code + 3, code(response_.status));
    const std::string_view reason = reason_phrase(response_.status);
    const std::string_view server = server_token_;
    char length[24];
    const bool has_length = status_has_content(response_.status);
    // For HEAD, the length a GET would send (RFC 9110 §8.6).
    const std::string_view length_text(
        length,
        has_length
            ? std::to_chars(length, length + sizeof length, response_.body_length()).ptr - length
            : 0);
    const std::string_view connection =
        keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    output_.closes = !keep_alive_;

    std::size_t size = 9 + 3 + 1 + reason.size() + 8 + date.size() + 10 + server.size() + 2 +
                       response_.serialized_fields.size() + connection.size();
    for (const auto& [name, value] : response_.headers) {
        size += name.size() + 2 + value.size() + 2;
    }
    if (has_length) {
        size += 16 + length_text.size() + 2;
    }
    std::string& head = output_.head;
    if (head.capacity() == 0) {
        head.swap(spare_buffers.head);  // the memory a parked connection gave back
    }
    head.resize(size);
    HeadWriter out(head.data());
    // RFC 9110 §6.2: our highest version with the request's major.
    out << "HTTP/1.1 " << std::string_view(status_code, 3) << " " << reason << "\r\nDate: " << date
        << "\r\nServer: " << server << "\r\n"
        << response_.serialized_fields;
    for (const auto& [name, value] : response_.headers) {
        out << name << ": " << value << "\r\n";
    }
    if (has_length) {
        out << "Content-Length: " << length_text << "\r\n";
    }
    out << connection;
    head.resize(std::size_t(out.end() - head.data()));
}

void Connection::release_idle_memory() noexcept {
    if (state_ != State::head || begin_ != end_) {
        return;  // a request, or part of one, still needs the bytes
    }
    give_back_buffers();
}

void Connection::give_back_buffers() noexcept {
    SpareBuffers& spare = spare_buffers;
    if (buffer_size_ == kInitialBuffer && !spare.input) {
        spare.input = std::move(buffer_);
    }
    buffer_.reset();
    buffer_size_ = begin_ = end_ = 0;
    output_.head.clear();
    if (spare.head.capacity() < output_.head.capacity()) {
        spare.head.swap(output_.head);
    }
    std::string().swap(output_.head);
}

void Connection::output_sent() noexcept {
    if (output_.interim) {
        output_.interim = false;
        output_.head.clear();
        state_ = State::body;  // the client now sends the body
        return;
    }
    ++served_;
    head_complete_ = false;
    response_ = Response{};  // closes the file, if any
    output_.body = {};
    output_.file = nullptr;
    if (!keep_alive_) {
        state_ = State::closing;
        return;
    }
    request_.clear();
    parser_.reset();
    state_ = State::head;
}

}  // namespace trident::http
