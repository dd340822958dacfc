#pragma once
// ctr::net::port_mapping: one published port (host address and port, the
// sandbox's port, the protocol), parsed from Docker's -p syntax. Both ways
// of publishing take it: the user-space relay (port_forward.hpp) and the
// kernel's DNAT for a veth sandbox (port_nat.hpp, net::veth::publish).

#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/ip_address.hpp>
#include <ctr/unique_fd.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ctr::net {

enum class protocol : std::uint8_t { tcp, udp };

constexpr std::string_view to_string(protocol p) noexcept { return p == protocol::udp ? "udp" : "tcp"; }

// One published port: the host side (address, port, protocol) and the port
// inside the sandbox it leads to.
struct port_mapping {
    protocol proto = protocol::tcp;
    // Where to listen: an IPv4 or an IPv6 address; 0.0.0.0 (or ::) is every
    // address of that family in the caller's network namespace.
    ip_address host_address{};
    std::uint16_t host_port = 0;  // 0: the kernel picks one (port_forwarder::host_port tells which)
    std::uint16_t container_port = 0;
    // With host address 0.0.0.0: also [::] where the sandbox has IPv6 (DNAT,
    // net::veth::publish), as Docker's -p without an address publishes on
    // both. parse sets it false for an explicit "0.0.0.0:"; other addresses
    // ignore it.
    bool also_ipv6 = true;

    // Docker's -p syntax: "[[IP:]HOSTPORT:]CONTAINERPORT[/tcp|/udp]", e.g.
    // "8080:80", "127.0.0.1:5353:53/udp", "127.0.0.1::80", "[::1]:8080:80",
    // "[2001:db8::1]::80" (IPv6 in brackets) or "80" (the kernel picks the
    // host port). A port range is several mappings (parse_range). Bad text throws
    // ctr::error(step::prepare, EINVAL) naming the text and what is wrong
    // with it.
    template <class = void>
    static port_mapping parse(std::string_view text);

    // parse, and Docker's port ranges: "8000-8003:80-83" is 8000->80,
    // 8001->81, 8002->82 and 8003->83; "80-83" (or "127.0.0.1::80-83")
    // publishes four container ports on ports the kernel picks. The two
    // ranges must have the same length: Docker's "8000-8010:80", one host
    // port picked from a range, is refused. Text without a range gives one
    // mapping, as parse.
    template <class = void>
    static std::vector<port_mapping> parse_range(std::string_view text);

    // "0.0.0.0:8080->80/tcp" or "[::]:8080->80/tcp", as `docker ps` shows it.
    template <class = void>
    std::string to_string() const {
        return host_address.to_string_bracketed() + ":" + std::to_string(host_port) + "->" +
               std::to_string(container_port) + "/" + std::string(net::to_string(proto));
    }
    // "0.0.0.0:8080/tcp": the host side alone, as errors name it.
    template <class = void>
    std::string host_side() const {
        return host_address.to_string_bracketed() + ":" + std::to_string(host_port) + "/" +
               std::string(net::to_string(proto));
    }

    friend bool operator==(const port_mapping&, const port_mapping&) = default;
};

}  // namespace ctr::net

namespace ctr::net::detail {

// port_mapping::parse, with errors that name `shown` (the text the user
// gave, when parse_range reads one mapping of a range).
template <class = void>
inline port_mapping parse_port_mapping(std::string_view text, std::string_view shown) {
    const auto fail = [shown](std::string_view why) { return error(step::prepare, EINVAL, std::string(shown), why); };
    if (text.empty()) throw fail("empty; expected [[IP:]HOSTPORT:]CONTAINERPORT[/tcp|/udp]");

    port_mapping out;
    std::string_view rest = text;
    if (const auto slash = rest.rfind('/'); slash != std::string_view::npos) {
        const auto name = rest.substr(slash + 1);
        if (name == "tcp") out.proto = protocol::tcp;
        else if (name == "udp") out.proto = protocol::udp;
        else throw fail("the protocol after '/' must be tcp or udp");
        rest = rest.substr(0, slash);
    }
    // "[IPV6]:HOSTPORT:CONTAINERPORT": the address in brackets, as in Docker.
    std::string_view bracketed;
    bool has_bracket = false;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) throw fail("an IPv6 address in '[' has no ']'");
        bracketed = rest.substr(1, close - 1);
        rest = rest.substr(close + 1);
        if (rest.empty() || rest.front() != ':' || std::count(rest.begin(), rest.end(), ':') != 2)
            throw fail("an IPv6 address needs a host port and a container port after it: [ADDRESS]:HOSTPORT:CONTAINERPORT");
        rest.remove_prefix(1);
        has_bracket = true;
    }
    if (rest.find('[') != std::string_view::npos || rest.find(']') != std::string_view::npos)
        throw fail("an IPv6 address goes first, in brackets: [2001:db8::1]:8080:80");
    if (std::count(rest.begin(), rest.end(), ':') > 2)
        throw fail("an IPv6 address goes in brackets: [2001:db8::1]:8080:80");
    if (rest.find('-') != std::string_view::npos)
        throw fail("a port range is several mappings (port_mapping::parse_range)");

    // Fields from the right: the container port, then the host port, then the address.
    std::string_view fields[3];
    std::size_t count = 0;
    for (;;) {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) {
            fields[count++] = rest;
            break;
        }
        fields[count++] = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
    }

    // A port is 1 to 5 digits and at most 65535; a sign, spaces or a name are errors.
    const auto port = [&](std::string_view field, std::string_view which, bool zero_allowed) -> std::uint16_t {
        unsigned value = 0;
        const bool digits_only = !field.empty() && field.size() <= 5 &&
                                 std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits_only) std::from_chars(field.data(), field.data() + field.size(), value);
        if (!digits_only || value > 65535 || (value == 0 && !zero_allowed))
            throw fail(std::string(which) + (zero_allowed ? " must be a number from 0 to 65535"
                                                          : " must be a number from 1 to 65535"));
        return static_cast<std::uint16_t>(value);
    };

    if (has_bracket) {
        fields[count++] = bracketed;  // [A]:H:C read as the fields C, H, A
        if (count != 3) throw fail("an IPv6 address needs a host port and a container port after it");
    }
    out.container_port = port(fields[0], "the container port", false);
    if (count >= 2) {
        // An empty host port after an address ("127.0.0.1::80") asks for any port, as in Docker.
        if (fields[1].empty() && count == 2) throw fail("the host port is empty");
        out.host_port = fields[1].empty() ? 0 : port(fields[1], "the host port", true);
    }
    if (has_bracket) {
        try {
            out.host_address = ipv6_address::parse(fields[2]);
        } catch (const error&) {
            throw fail("'" + std::string(fields[2]) + "' is not an IPv6 address like 2001:db8::1");
        }
    } else if (count == 3) {
        try {
            out.host_address = ipv4_address::parse(fields[2]);
        } catch (const error&) {
            throw fail("'" + std::string(fields[2]) + "' is not an IPv4 address like 127.0.0.1");
        }
        // An explicit 0.0.0.0 is IPv4 alone, as in Docker.
        if (out.host_address.is_unspecified()) out.also_ipv6 = false;
    }
    return out;
}

}  // namespace ctr::net::detail

namespace ctr::net {

template <class>
inline port_mapping port_mapping::parse(std::string_view text) {
    return detail::parse_port_mapping(text, text);
}

template <class>
inline std::vector<port_mapping> port_mapping::parse_range(std::string_view text) {
    if (text.find('-') == std::string_view::npos) return {parse(text)};
    const auto fail = [text](std::string_view why) { return error(step::prepare, EINVAL, std::string(text), why); };

    // "[[IP:]HOST:]CONTAINER[/PROTO]": the ports are the last two fields
    // before the protocol. A '-' elsewhere (in the address or protocol) is
    // found by parse below.
    std::string_view rest = text, protocol_suffix;
    if (const auto slash = rest.rfind('/'); slash != std::string_view::npos) {
        protocol_suffix = rest.substr(slash);
        rest = rest.substr(0, slash);
    }
    std::string_view container = rest, host, address;  // address: with its ':'
    bool has_host = false;
    if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        container = rest.substr(colon + 1);
        const auto front = rest.substr(0, colon);
        has_host = true;
        const auto second = front.rfind(':');
        host = second == std::string_view::npos ? front : front.substr(second + 1);
        address = second == std::string_view::npos ? std::string_view{} : front.substr(0, second + 1);
    }

    // "FIRST-LAST" or one port; the numbers themselves are checked by parse.
    struct range {
        std::string_view first, last;
        unsigned count = 1;
    };
    const auto read_range = [&](std::string_view field, std::string_view which) {
        range r{field, field};
        const auto dash = field.find('-');
        if (dash == std::string_view::npos) return r;
        r.first = field.substr(0, dash);
        r.last = field.substr(dash + 1);
        const auto number = [](std::string_view digits) {
            unsigned value = 0;
            const bool ok = !digits.empty() && digits.size() <= 5 &&
                            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (ok) std::from_chars(digits.data(), digits.data() + digits.size(), value);
            return ok && value <= 65535 ? static_cast<int>(value) : -1;
        };
        const int first = number(r.first), last = number(r.last);
        if (first < 0 || last < 0)
            throw fail(std::string(which) + " range must be FIRST-LAST, two numbers from 1 to 65535");
        if (last < first) throw fail(std::string(which) + " range '" + std::string(field) + "' ends before it starts");
        r.count = static_cast<unsigned>(last - first + 1);
        return r;
    };
    const range containers = read_range(container, "the container port");
    const range hosts = has_host && !host.empty() ? read_range(host, "the host port") : range{};
    if (has_host && !host.empty() && hosts.count != containers.count)
        throw fail("the host ports (" + std::to_string(hosts.count) + ") and the container ports (" +
                   std::to_string(containers.count) + ") must be ranges of the same length");

    // The first mapping through parse (address, protocol and the port
    // numbers checked there, errors naming the whole text), then the others.
    std::string first_text(address);
    if (has_host) first_text += std::string(hosts.first) + ":";
    first_text += std::string(containers.first) + std::string(protocol_suffix);
    const port_mapping first = detail::parse_port_mapping(first_text, text);
    if (hosts.count > 1 && first.host_port == 0) throw fail("the host port range must start at 1 or above");
    std::vector<port_mapping> out;
    out.reserve(containers.count);
    for (unsigned i = 0; i < containers.count; ++i) {
        port_mapping m = first;
        m.container_port = static_cast<std::uint16_t>(first.container_port + i);
        if (first.host_port != 0) m.host_port = static_cast<std::uint16_t>(first.host_port + i);
        out.push_back(m);
    }
    return out;
}

}  // namespace ctr::net

namespace ctr::net::detail {

template <class = void>
inline sockaddr_in to_sockaddr(net::ipv4_address address, std::uint16_t port) noexcept {
    sockaddr_in out{};
    out.sin_family = AF_INET;
    out.sin_port = htons(port);
    out.sin_addr = address.to_in_addr();
    return out;
}

template <class = void>
inline sockaddr_in6 to_sockaddr(const net::ipv6_address& address, std::uint16_t port) noexcept {
    sockaddr_in6 out{};
    out.sin6_family = AF_INET6;
    out.sin6_port = htons(port);
    out.sin6_addr = address.to_in6_addr();
    return out;
}

// A socket bound to the host side of `m` (not listening), with
// `extra_type_flags` added to its type, and the port it got (m's, or the
// kernel's pick for 0). Throws ctr::error(step::publish_port) naming the
// host side and the call. The relay listens on it; DNAT only holds it.
template <class = void>
inline unique_fd bind_host_side(const net::port_mapping& m, int extra_type_flags, std::uint16_t& bound_port) {
    const bool tcp = m.proto == net::protocol::tcp;
    const auto fail = [&m](long r, std::string_view call) {
        return error(step::publish_port, static_cast<int>(-r), m.host_side(), call);
    };
    const int type = (tcp ? SOCK_STREAM : SOCK_DGRAM) | extra_type_flags | SOCK_CLOEXEC;
    const bool v6 = m.host_address.is_ipv6();
    const long s = ctr::detail::sys::socket(v6 ? AF_INET6 : AF_INET, type, 0);
    if (s < 0) throw fail(s, "socket");
    unique_fd fd(static_cast<int>(s));
    if (v6) {
        // [::] is IPv6 alone: 0.0.0.0 is a mapping (and a socket) of its own.
        const int one = 1;
        if (const long r = ctr::detail::sys::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one); r < 0)
            throw fail(r, "setsockopt IPV6_V6ONLY");
    }
    if (tcp) {
        // Lets a port be bound again while the connections of an earlier
        // relay linger in TIME_WAIT. It does not let two listeners share a
        // port (that is SO_REUSEPORT), so a busy port still fails. UDP has
        // no TIME_WAIT, and there SO_REUSEADDR would share the port.
        const int one = 1;
        if (const long r = ctr::detail::sys::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); r < 0)
            throw fail(r, "setsockopt SO_REUSEADDR");
    }
    long r;
    if (v6) {
        const sockaddr_in6 address = to_sockaddr(m.host_address.ipv6(), m.host_port);
        r = ctr::detail::sys::bind(fd.get(), &address, sizeof address);
    } else {
        const sockaddr_in address = to_sockaddr(m.host_address.ipv4(), m.host_port);
        r = ctr::detail::sys::bind(fd.get(), &address, sizeof address);
    }
    if (r < 0) throw fail(r, "bind");
    sockaddr_in6 bound{};  // sin_port and sin6_port lie at the same offset
    unsigned length = sizeof bound;
    if (const long got = ctr::detail::sys::getsockname(fd.get(), &bound, &length); got < 0)
        throw fail(got, "getsockname");
    bound_port = ntohs(bound.sin6_port);
    return fd;
}

}  // namespace ctr::net::detail
