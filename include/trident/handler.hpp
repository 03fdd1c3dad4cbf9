#pragma once

#include <string_view>

#include "trident/http/request.hpp"
#include "trident/http/response.hpp"

namespace trident {

/// Produces a response for a routed request. Handlers are synchronous and may block:
/// they run in a prefork child, a worker thread, or an event MPM worker thread.
class Handler {
public:
    virtual ~Handler() = default;

    /// A short name for messages, e.g. "static".
    virtual std::string_view name() const noexcept = 0;

    /// Whether handle() may run on several threads at once. A threaded MPM refuses to start
    /// with a handler that says no.
    virtual bool thread_safe() const noexcept = 0;

    /// Fills `response`. Must not throw. For HEAD the core drops the body, so a handler
    /// answers HEAD exactly as GET.
    virtual void handle(const http::Request& request, http::Response& response) noexcept = 0;
};

}  // namespace trident
