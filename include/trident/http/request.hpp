#pragma once

// A parsed request head. Views point into the connection's input buffer and stay valid
// until the connection moves on to the next request.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trident::http {

enum class Method : std::uint8_t {
    get,
    head,
    post,
    put,
    delete_,
    connect,
    options,
    trace,
    patch,
    other
};

struct Version {
    std::uint8_t major = 1;
    std::uint8_t minor = 1;
    friend bool operator==(Version, Version) = default;
};

/// How the request-target is written (RFC 9112 §3.2).
enum class TargetForm : std::uint8_t {
    origin,     ///< "/path?query"
    absolute,   ///< "http://authority/path?query"
    authority,  ///< "host:port", only with CONNECT
    asterisk,   ///< "*", only with OPTIONS
};

/// Transfer-Encoding, all its field lines read as one list (RFC 9110 §5.3, RFC 9112 §6.1).
struct TransferCodings {
    bool present = false;
    bool chunked = false;        ///< chunked appears
    bool chunked_last = false;   ///< the final coding is chunked
    bool chunked_twice = false;  ///< chunked appears more than once (RFC 9112 §7.1)
    bool other = false;          ///< a coding other than chunked, which Trident cannot decode
};

struct Field {
    std::string_view name;   ///< as sent; compare case-insensitively
    std::string_view value;  ///< leading and trailing whitespace removed
};

struct Request {
    Method method = Method::other;
    std::string_view method_text;
    std::string_view target;  ///< the raw request-target
    std::string_view query;   ///< after '?', without it; empty when absent
    TargetForm target_form = TargetForm::origin;
    /// The path of an origin- or absolute-form target, before any '?' ("/" when an
    /// absolute-form target has none); empty for the other forms.
    std::string_view target_path;
    /// The authority of an absolute- or authority-form target; empty otherwise.
    std::string_view authority;
    /// `target_path` is plain: no escape, no backslash, no empty segment but a trailing one,
    /// no segment that begins with '.'. Decoding and normalising it change nothing, and it
    /// names no hidden (".ht") file: the checks that would say so are skipped. Most paths
    /// are plain; the parser finds out as it splits off the query.
    bool plain_path = false;
    Version version;
    std::vector<Field> fields;

    /// The Host field value, or the authority of an absolute-form target, which wins over
    /// it (RFC 9112 §3.2.2); empty when neither is there.
    std::string_view host;
    std::optional<std::uint64_t> content_length;
    bool has_transfer_encoding = false;
    TransferCodings transfer_codings;
    bool expect_continue = false;        ///< Expect lists 100-continue (RFC 9110 §10.1.1)
    bool expect_unsupported = false;     ///< Expect lists anything else
    bool connection_close = false;       ///< "Connection: close" was sent
    bool connection_keep_alive = false;  ///< "Connection: keep-alive" was sent

    /// Decoded, dot-segment-free path, always starting with '/'. Set by the core before
    /// routing; handlers map this, never `target`.
    std::string path;

    /// The client's numeric address ("127.0.0.1", "::1"). Set by the MPM's driver for the
    /// whole connection and kept by clear(); empty when unknown.
    std::string_view client_address;

    /// The first field with this name (case-insensitive), or an empty view.
    std::string_view field(std::string_view name) const noexcept;

    /// Resets to the empty state, keeping allocated capacity for the next request.
    void clear() noexcept;
};

/// Case-insensitive ASCII comparison, as field names and tokens need (RFC 9110 §5.1).
bool iequals(std::string_view a, std::string_view b) noexcept;

std::string_view method_name(Method method) noexcept;

}  // namespace trident::http
