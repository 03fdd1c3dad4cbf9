#pragma once

// Who may see /server-status: numeric addresses and CIDR blocks, IPv4 and IPv6, as in
// `status.allow` (Apache's `Require ip`).

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trident/result.hpp"

namespace trident::status {

class AllowList {
public:
    /// Parses "127.0.0.0/8", "::1", "10.1.2.3"; an error names the entry it cannot read.
    static Result<AllowList> parse(const std::vector<std::string>& entries);

    /// Whether the numeric address `client` lies in one of the blocks. An IPv4-mapped IPv6
    /// address (::ffff:127.0.0.1, as a dual-stack listener reports) counts as its IPv4
    /// address. Anything that is not a numeric address is refused.
    bool permits(std::string_view client) const noexcept;

private:
    struct Block {
        bool v6 = false;
        std::array<std::uint8_t, 16> bytes{};
        unsigned prefix = 0;  ///< leading bits that must match
    };
    static bool matches(const Block& block, bool v6, const std::uint8_t* bytes) noexcept;

    std::vector<Block> blocks_;
};

}  // namespace trident::status
