#pragma once

// What one answered request leaves behind for the access log. The connection driver fills
// it when a response has been sent (or failed to be); the log formats it. Every view points
// into memory the driver holds until the record has been written.

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string_view>

#include "trident/http/request.hpp"

namespace trident::log {

/// The two ends of a connection as numeric text, taken once per connection.
struct Endpoints {
    char client[46] = {};  ///< INET6_ADDRSTRLEN; empty when unknown (e.g. a Unix socket)
    char local[46] = {};
    std::uint16_t client_port = 0;
    std::uint16_t local_port = 0;

    /// The client's end from `peer` (what accept() returned) or, when null, getpeername();
    /// with `with_local`, the local end from getsockname() (it is for the access log only).
    /// Fields it cannot learn stay empty.
    static Endpoints of(int fd, const sockaddr_storage* peer = nullptr,
                        bool with_local = true) noexcept;
};

struct AccessRecord {
    /// The parsed request, or null when its head never parsed (a 400 or a 408).
    const http::Request* request = nullptr;
    /// The serialised response head as sent: "HTTP/1.1 200 OK\r\nName: value\r\n...".
    std::string_view response_head;
    int status = 0;
    std::uint64_t bytes_sent = 0;      ///< head and body (%O)
    std::uint64_t body_bytes = 0;      ///< body only (%B, %b)
    std::uint64_t bytes_received = 0;  ///< request head and body (%I)
    /// From the request's first byte to the response's last (%D, %T).
    std::chrono::microseconds duration{0};
    /// When the request's first byte arrived (%t).
    std::chrono::system_clock::time_point received;
    const Endpoints* endpoints = nullptr;
    std::uint64_t keep_alive_requests = 0;  ///< earlier requests on this connection (%k)
    /// %X: 'X' the response was not completed, '+' the connection stays open, '-' it closes.
    char connection_status = '-';
};

}  // namespace trident::log
