#pragma once
// ctr::net::ipv4_address and ipv4_interface, ipv6_address and
// ipv6_interface, ip_address (either family): addresses as values, parsed
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

// An IPv6 address, kept as sixteen bytes in network order.
struct ipv6_address {
    std::array<std::uint8_t, 16> bytes{};

    // "fd63:7472::1", "::", "2001:db8::a:b" (RFC 4291's text form without
    // an embedded IPv4 tail or a zone); a malformed text throws ctr::error
    // naming it.
    static ipv6_address parse(std::string_view text) {
        // Up to eight groups before "::" and after it; the gap fills with zeros.
        std::uint16_t head[8] = {}, tail[8] = {};
        std::size_t head_count = 0, tail_count = 0;
        bool gap = false;
        std::string_view rest = text;
        if (rest.substr(0, 2) == "::") {
            gap = true;
            rest.remove_prefix(2);
        }
        while (!rest.empty()) {
            std::size_t digits = 0;
            unsigned value = 0;
            while (digits < rest.size() && digits < 5) {
                const char c = rest[digits];
                const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (v < 0) break;
                value = value * 16 + static_cast<unsigned>(v);
                ++digits;
            }
            if (digits == 0 || digits > 4) throw malformed(text);
            std::uint16_t* const groups = gap ? tail : head;
            std::size_t& count = gap ? tail_count : head_count;
            if (head_count + tail_count >= 8) throw malformed(text);
            groups[count++] = static_cast<std::uint16_t>(value);
            rest.remove_prefix(digits);
            if (rest.empty()) break;
            if (rest[0] != ':') throw malformed(text);
            if (rest.substr(0, 2) == "::") {
                if (gap) throw malformed(text);
                gap = true;
                rest.remove_prefix(2);
            } else {
                rest.remove_prefix(1);
                if (rest.empty()) throw malformed(text);
            }
        }
        if (gap ? head_count + tail_count > 7 : head_count != 8) throw malformed(text);
        ipv6_address out;
        for (std::size_t i = 0; i < head_count; ++i) out.set_group(i, head[i]);
        for (std::size_t i = 0; i < tail_count; ++i) out.set_group(8 - tail_count + i, tail[i]);
        return out;
    }

    constexpr std::uint16_t group(std::size_t i) const noexcept {
        return static_cast<std::uint16_t>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
    }
    constexpr void set_group(std::size_t i, std::uint16_t value) noexcept {
        bytes[2 * i] = static_cast<std::uint8_t>(value >> 8);
        bytes[2 * i + 1] = static_cast<std::uint8_t>(value);
    }
    in6_addr to_in6_addr() const noexcept {
        in6_addr out{};
        static_assert(sizeof out == 16);
        std::memcpy(&out, bytes.data(), 16);
        return out;
    }
    static ipv6_address from_in6_addr(const in6_addr& in) noexcept {
        ipv6_address out;
        std::memcpy(out.bytes.data(), &in, 16);
        return out;
    }
    constexpr bool is_unspecified() const noexcept { return *this == ipv6_address{}; }
    constexpr bool is_loopback() const noexcept {
        ipv6_address one;
        one.bytes[15] = 1;
        return *this == one;
    }

    // RFC 5952's form: lower case, no leading zeros, the longest run of two
    // or more zero groups (the first of equals) as "::".
    std::string to_string() const {
        std::size_t best = 8, best_length = 0;
        for (std::size_t i = 0; i < 8;) {
            std::size_t j = i;
            while (j < 8 && group(j) == 0) ++j;
            if (j - i > best_length && j - i >= 2) {
                best = i;
                best_length = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        static constexpr char hex[] = "0123456789abcdef";
        std::string out;
        for (std::size_t i = 0; i < 8; ++i) {
            if (i == best) {
                out += "::";
                i += best_length - 1;
                continue;
            }
            if (!out.empty() && out.back() != ':') out += ':';
            const std::uint16_t g = group(i);
            bool started = false;
            for (int shift = 12; shift >= 0; shift -= 4) {
                const unsigned nibble = (g >> shift) & 0xfu;
                if (nibble != 0 || started || shift == 0) {
                    out += hex[nibble];
                    started = true;
                }
            }
        }
        return out;
    }

    friend constexpr bool operator==(const ipv6_address&, const ipv6_address&) noexcept = default;

private:
    static error malformed(std::string_view text) {
        return error(step::prepare, EINVAL, std::string(text), "not an IPv6 address like fd63:7472::1");
    }
};

// An IPv6 address on an interface with its prefix length: "fd63:7472:0:1::2/64".
struct ipv6_interface {
    ipv6_address address{};
    std::uint8_t prefix_length = 128;

    static ipv6_interface parse(std::string_view text) {
        const auto slash = text.find('/');
        if (slash == std::string_view::npos)
            throw error(step::prepare, EINVAL, std::string(text),
                        "an interface address needs a prefix length, like fd63:7472:0:1::2/64");
        unsigned prefix = 129;
        const auto rest = text.substr(slash + 1);
        const auto [next, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), prefix);
        if (ec != std::errc{} || next != rest.data() + rest.size() || prefix > 128)
            throw error(step::prepare, EINVAL, std::string(text), "the prefix length must be 0 to 128");
        return {ipv6_address::parse(text.substr(0, slash)), static_cast<std::uint8_t>(prefix)};
    }

    constexpr ipv6_address network() const noexcept {
        ipv6_address out = address;
        for (std::size_t i = 0; i < 16; ++i) {
            const int bits = static_cast<int>(prefix_length) - static_cast<int>(8 * i);
            const unsigned mask = bits >= 8 ? 0xffu : bits <= 0 ? 0u : (0xffu << (8 - bits)) & 0xffu;
            out.bytes[i] = static_cast<std::uint8_t>(out.bytes[i] & mask);
        }
        return out;
    }
    // Whether `other` lies in this interface's subnet.
    constexpr bool contains(const ipv6_address& other) const noexcept {
        return ipv6_interface{other, prefix_length}.network() == network();
    }

    std::string to_string() const { return address.to_string() + "/" + std::to_string(prefix_length); }

    friend constexpr bool operator==(const ipv6_interface&, const ipv6_interface&) noexcept = default;
};

// An IPv4 or an IPv6 address: where a published port listens on the host
// (port_mapping). Converts from either; a default one is 0.0.0.0.
class ip_address {
public:
    constexpr ip_address() noexcept = default;
    constexpr ip_address(ipv4_address v4) noexcept : v4_(v4) {}  // NOLINT: implicit, as either is one
    constexpr ip_address(const ipv6_address& v6) noexcept : ipv6_(true), v6_(v6) {}  // NOLINT

    // "127.0.0.1" or "::1" (no brackets); bad text throws ctr::error naming it.
    static ip_address parse(std::string_view text) {
        if (text.find(':') != std::string_view::npos) return ipv6_address::parse(text);
        return ipv4_address::parse(text);
    }

    constexpr bool is_ipv6() const noexcept { return ipv6_; }
    constexpr ipv4_address ipv4() const noexcept { return v4_; }
    constexpr const ipv6_address& ipv6() const noexcept { return v6_; }
    // 0.0.0.0 or ::: every address of that family.
    constexpr bool is_unspecified() const noexcept { return ipv6_ ? v6_.is_unspecified() : v4_ == ipv4_address{}; }

    // "127.0.0.1", "::1".
    std::string to_string() const { return ipv6_ ? v6_.to_string() : v4_.to_string(); }
    // "127.0.0.1", "[::1]": as it stands before ":PORT".
    std::string to_string_bracketed() const { return ipv6_ ? "[" + v6_.to_string() + "]" : v4_.to_string(); }

    friend constexpr bool operator==(const ip_address&, const ip_address&) noexcept = default;

private:
    bool ipv6_ = false;
    ipv4_address v4_{};
    ipv6_address v6_{};
};

}  // namespace ctr::net
