#pragma once

// /server-status as a Handler: Apache mod_status's page from the scoreboard, for clients
// in `status.allow` only (403 for everyone else). `?auto` gives the machine-readable text,
// `?json` the same data as JSON, `?refresh=N` a Refresh header; queries combine with '&'.

#include <memory>

#include "status/allow_list.hpp"
#include "trident/config.hpp"
#include "trident/handler.hpp"
#include "trident/scoreboard.hpp"

namespace trident::status {

class StatusHandler final : public Handler {
public:
    /// `mpm`: the MPM of the generation this handler serves in.
    StatusHandler(const Scoreboard& scoreboard, AllowList allow, std::string server_version,
                  std::string mpm);

    std::string_view name() const noexcept override { return "status"; }
    /// Reads shared memory and /proc only.
    bool thread_safe() const noexcept override { return true; }
    void handle(const http::Request& request, http::Response& response) noexcept override;

private:
    const Scoreboard& scoreboard_;
    AllowList allow_;
    std::string server_version_;
    std::string mpm_;
};

/// The handler for `config.status`, reading `scoreboard`; an error if status.allow does
/// not parse (the config loader has checked it already).
Result<std::unique_ptr<Handler>> make_status_handler(const Config& config,
                                                     const Scoreboard& scoreboard);

}  // namespace trident::status
