#pragma once

// One client connection's HTTP/1.1 state machine. Sans-I/O: the MPM's driver reads bytes
// into input_space(), calls commit_input(), asks next() what to do, writes what output()
// holds and reports output_sent(). No sockets, clocks or logging in here.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/chunked.hpp"
#include "http/framing.hpp"
#include "http/request_parser.hpp"
#include "trident/config.hpp"
#include "trident/http/request.hpp"
#include "trident/http/response.hpp"

namespace trident {

class Router;

namespace http {

/// What the driver must do next.
enum class Action : std::uint8_t {
    read,   ///< wait for bytes (see waiting_for() for which deadline applies), then commit_input
    write,  ///< send output(), then call output_sent()
    close,  ///< close the connection (lingering, so a response already sent is not reset)
};

/// What a read is waiting for, so the driver can pick the matching timeout.
enum class Wait : std::uint8_t {
    first_request,  ///< nothing received yet on this connection
    keep_alive,     ///< between requests, no byte of the next one yet
    head,           ///< part of a request head received
    body,           ///< in a request body
};

/// One response ready to send: the serialised head, then either bytes or a file range.
struct Output {
    std::string head;
    std::string_view body;           ///< bytes body (points into the held response)
    const FileBody* file = nullptr;  ///< file body; nullptr when none
    /// An interim "100 Continue" (RFC 9110 §15.2.1): head only, not a response to count.
    /// The final response follows once the body has been read.
    bool interim = false;
    /// The head says "Connection: close" (RFC 9112 §9.6): the connection ends after it.
    bool closes = false;
};

class Connection {
public:
    Connection(const Router& router, const Config& config) noexcept;
    /// Its buffers go to the next connection this thread serves.
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Writable space at the end of the input buffer, at least `min_bytes` long.
    std::span<char> input_space(std::size_t min_bytes = 4096);
    void commit_input(std::size_t bytes) noexcept;
    /// The peer will send nothing more.
    void on_peer_eof() noexcept { peer_eof_ = true; }

    /// Advances the state machine with the bytes received so far. `date` is the current
    /// IMF-fixdate for the Date field.
    Action next(std::string_view date);

    /// The driver's read deadline expired. Returns write when a 408 is worth sending,
    /// close otherwise.
    Action on_timeout(std::string_view date);

    /// Graceful stop: the next response says "Connection: close". An idle connection still
    /// waits for its next request (for as long as the driver lets it): closing it now would
    /// lose one the client is sending.
    void close_after_response() noexcept { close_after_ = true; }

    const Output& output() const noexcept { return output_; }
    void output_sent() noexcept;
    /// Between requests, with no byte of the next one at hand: lets go of the input buffer
    /// and the output head, so a connection that waits for its client holds only this object
    /// (nginx frees an idle keep-alive connection's buffers the same way). The thread keeps
    /// one of each for the next connection it serves, so the next read seldom allocates. Does
    /// nothing while a request is under way.
    void release_idle_memory() noexcept;
    /// The exchange is over (the connection lingers or closes): lets go of the buffers as
    /// above, whatever was left in them.
    void release_memory() noexcept { give_back_buffers(); }

    Wait waiting_for() const noexcept;
    /// The client said it sends nothing more on this connection ("close", or HTTP/1.0
    /// without keep-alive), its last request was read whole, and no byte past it is
    /// buffered. Then closing at once cannot reset a response it is still reading, unless
    /// more bytes wait in the socket (the driver knows).
    bool client_finished() const noexcept {
        return client_closes_ && request_read_ && begin_ == end_;
    }
    std::uint64_t requests_served() const noexcept { return served_; }
    /// The status of the last response produced, for logs and tests.
    Status last_status() const noexcept { return response_.status; }

    /// The request being answered, once its head parsed; valid until output_sent(). Once a
    /// body is being read, only the request line (method, target, query) is kept: the head's
    /// other views point into a buffer that may since have moved.
    const Request* current_request() const noexcept { return head_complete_ ? &request_ : nullptr; }

    /// The peer's numeric address, shown to handlers as Request::client_address; the text
    /// must outlive the connection.
    void set_client_address(std::string_view address) noexcept {
        request_.client_address = address;
    }

private:
    enum class State : std::uint8_t { head, interim, body, respond, write, closing };

    /// After a head parsed: decides the framing, answers (while the head's views are valid)
    /// and sets up the body. False when the request was refused and the answer is ready.
    bool start_request(std::string_view date);
    /// Fills response_ for a framed request: the router's answer, or an error it earned.
    void answer(const Framing& framing);
    /// Copies the request head out of the buffer, so the buffer may move while a body is
    /// read: the request's views then point into the copy.
    void hold_head();
    void start_interim();
    /// Consumes body bytes at hand; false on a framing error (the decoder says which).
    bool consume_body() noexcept;
    void start_response(std::string_view date);
    void reject(Status status, std::string_view reason, std::string_view date);
    void serialize_head(std::string_view date);
    /// Lets go of the input buffer and the output head, keeping them for this thread's next
    /// connection (one of each).
    void give_back_buffers() noexcept;
    bool decide_keep_alive() const noexcept;
    std::string_view unconsumed() const noexcept { return {buffer_.get() + begin_, end_ - begin_}; }

    const Router& router_;
    const Config& config_;
    std::string_view server_token_;  ///< the Server field's value, per config.server_tokens
    RequestParser parser_;
    Request request_;
    Response response_;
    Output output_;

    /// Input bytes, left uninitialised (a vector would zero each allocation), and released
    /// while the connection idles between requests (release_idle_memory).
    std::unique_ptr<char[]> buffer_;
    std::size_t buffer_size_ = 0;
    std::size_t begin_ = 0;  ///< first unconsumed byte
    std::size_t end_ = 0;    ///< one past the last received byte
    std::size_t max_buffer_;

    State state_ = State::head;
    BodyFraming body_framing_ = BodyFraming::none;
    std::uint64_t body_remaining_ = 0;  ///< for BodyFraming::length
    ChunkedDecoder chunked_;
    std::string held_head_;  ///< the request head while its body is read
    std::uint64_t served_ = 0;
    bool keep_alive_ = false;
    bool client_closes_ = false;  ///< the current request said the client closes after it
    bool request_read_ = false;   ///< the current request's head and body were read whole
    bool close_after_ = false;
    bool peer_eof_ = false;
    bool head_complete_ = false;  ///< the current request's head parsed without error
};

}  // namespace http
}  // namespace trident
