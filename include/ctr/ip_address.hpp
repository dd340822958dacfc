#pragma once
// ctr::net::ipv4_address and ipv4_interface: IPv4 addresses as values, parsed
// with errors that name the text.

#include <ctr/error.hpp>

#include <netinet/in.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ctr::net {

// An IPv4 address, kept as four bytes in network order.
struct ipv4_address {
    std::array<std::uint8_t, 4> bytes{};

    // "10.0.0.1"; a malformed text throws ctr::error naming it.
    static ipv4_address parse(std::string_view text) {
        ipv4_address out;
        const char* p = text.data();
        const char* const end = text.data() + text.size();
        for (int i = 0; i < 4; ++i) {
            if (i > 0) {
                if (p == end || *p != '.') throw malformed(text);
                ++p;
            }
            unsigned value = 256;
            const char* const digits = p;
            const auto [next, ec] = std::from_chars(p, end, value);
            if (ec != std::errc{} || value > 255 || next - digits > 3) throw malformed(text);
            out.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value);
            p = next;
        }
        if (p != end) throw malformed(text);
        return out;
    }

    // Host-order value, for arithmetic (subnets, pools).
    static constexpr ipv4_address from_host_order(std::uint32_t value) noexcept {
        return {{static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
                 static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)}};
    }
    constexpr std::uint32_t host_order() const noexcept {
        return std::uint32_t{bytes[0]} << 24 | std::uint32_t{bytes[1]} << 16 | std::uint32_t{bytes[2]} << 8 |
               std::uint32_t{bytes[3]};
    }
    in_addr to_in_addr() const noexcept {
        in_addr out{};
        static_assert(sizeof out == 4);
        std::memcpy(&out, bytes.data(), 4);
        return out;
    }

    std::string to_string() const {
        std::string out;
        for (std::size_t i = 0; i < 4; ++i) {
            if (i > 0) out += '.';
            out += std::to_string(bytes[i]);
        }
        return out;
    }

    friend constexpr bool operator==(const ipv4_address&, const ipv4_address&) noexcept = default;

private:
    static error malformed(std::string_view text) {
        return error(step::prepare, EINVAL, std::string(text), "not an IPv4 address like 10.0.0.1");
    }
};

// An address on an interface with its prefix length: "10.0.0.2/30".
struct ipv4_interface {
    ipv4_address address{};
    std::uint8_t prefix_length = 32;

    static ipv4_interface parse(std::string_view text) {
        const auto slash = text.find('/');
        if (slash == std::string_view::npos)
            throw error(step::prepare, EINVAL, std::string(text), "an interface address needs a prefix length, like 10.0.0.2/30");
        unsigned prefix = 33;
        const auto rest = text.substr(slash + 1);
        const auto [next, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), prefix);
        if (ec != std::errc{} || next != rest.data() + rest.size() || prefix > 32)
            throw error(step::prepare, EINVAL, std::string(text), "the prefix length must be 0 to 32");
        return {ipv4_address::parse(text.substr(0, slash)), static_cast<std::uint8_t>(prefix)};
    }

    constexpr std::uint32_t netmask_host_order() const noexcept {
        return prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_length);
    }
    constexpr ipv4_address network() const noexcept {
        return ipv4_address::from_host_order(address.host_order() & netmask_host_order());
    }
    constexpr ipv4_address netmask() const noexcept { return ipv4_address::from_host_order(netmask_host_order()); }
    // Whether `other` lies in this interface's subnet.
    constexpr bool contains(ipv4_address other) const noexcept {
        return (other.host_order() & netmask_host_order()) == network().host_order();
    }

    std::string to_string() const { return address.to_string() + "/" + std::to_string(prefix_length); }

    friend constexpr bool operator==(const ipv4_interface&, const ipv4_interface&) noexcept = default;
};

}  // namespace ctr::net
