#include "status/allow_list.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace trident::status {

namespace {

/// Parses a numeric address into 4 or 16 bytes; false when it is neither.
bool parse_address(std::string_view text, bool& v6, std::uint8_t* bytes) noexcept {
    char buffer[64];
    if (text.empty() || text.size() >= sizeof buffer) {
        return false;
    }
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    if (::inet_pton(AF_INET, buffer, bytes) == 1) {
        v6 = false;
        return true;
    }
    if (::inet_pton(AF_INET6, buffer, bytes) == 1) {
        v6 = true;
        return true;
    }
    return false;
}

bool is_v4_mapped(const std::uint8_t* bytes) noexcept {
    static constexpr std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes, kPrefix, sizeof kPrefix) == 0;
}

}  // namespace

Result<AllowList> AllowList::parse(const std::vector<std::string>& entries) {
    AllowList list;
    for (const std::string& entry : entries) {
        const std::string_view text = entry;
        const std::size_t slash = text.find('/');
        Block block;
        if (!parse_address(text.substr(0, slash), block.v6, block.bytes.data())) {
            return Error{"status.allow: '" + entry + "' is not a numeric IP address or CIDR block"};
        }
        const unsigned width = block.v6 ? 128 : 32;
        block.prefix = width;
        if (slash != std::string_view::npos) {
            const std::string_view digits = text.substr(slash + 1);
            unsigned prefix = 0;
            const auto [end, ec] =
                std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
            if (ec != std::errc() || end != digits.data() + digits.size() || prefix > width) {
                return Error{"status.allow: '" + entry + "': prefix length must be 0.." +
                             std::to_string(width)};
            }
            block.prefix = prefix;
        }
        list.blocks_.push_back(block);
    }
    return list;
}

bool AllowList::matches(const Block& block, bool v6, const std::uint8_t* bytes) noexcept {
    if (block.v6 != v6) {
        return false;
    }
    const unsigned whole = block.prefix / 8;
    if (std::memcmp(block.bytes.data(), bytes, whole) != 0) {
        return false;
    }
    const unsigned rest = block.prefix % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = std::uint8_t(0xff << (8 - rest));
    return (block.bytes[whole] & mask) == (bytes[whole] & mask);
}

bool AllowList::permits(std::string_view client) const noexcept {
    bool v6 = false;
    std::uint8_t bytes[16] = {};
    if (!parse_address(client, v6, bytes)) {
        return false;
    }
    std::uint8_t v4[4];
    const bool mapped = v6 && is_v4_mapped(bytes);
    if (mapped) {
        std::memcpy(v4, bytes + 12, 4);
    }
    for (const Block& block : blocks_) {
        if (matches(block, v6, bytes) || (mapped && matches(block, false, v4))) {
            return true;
        }
    }
    return false;
}

}  // namespace trident::status
