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
    ipv4_address host_address{};  // where to listen; 0.0.0.0 is every address of the caller's network namespace
    std::uint16_t host_port = 0;  // 0: the kernel picks one (port_forwarder::host_port tells which)
    std::uint16_t container_port = 0;

    // Docker's -p syntax: "[[IP:]HOSTPORT:]CONTAINERPORT[/tcp|/udp]", e.g.
    // "8080:80", "127.0.0.1:5353:53/udp", "127.0.0.1::80" or "80" (the
    // kernel picks the host port). IPv6 is not supported, and a port range
    // is several mappings (parse_range). Bad text throws
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

    // "0.0.0.0:8080->80/tcp", as `docker ps` shows it.
    template <class = void>
    std::string to_string() const {
        return host_address.to_string() + ":" + std::to_string(host_port) + "->" + std::to_string(container_port) +
               "/" + std::string(net::to_string(proto));
    }
    // "0.0.0.0:8080/tcp": the host side alone, as errors name it.
    template <class = void>
    std::string host_side() const {
        return host_address.to_string() + ":" + std::to_string(host_port) + "/" + std::string(net::to_string(proto));
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
    if (rest.find('[') != std::string_view::npos || std::count(rest.begin(), rest.end(), ':') > 2)
        throw fail("IPv6 addresses are not supported");
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

    out.container_port = port(fields[0], "the container port", false);
    if (count >= 2) {
        // An empty host port after an address ("127.0.0.1::80") asks for any port, as in Docker.
        if (fields[1].empty() && count == 2) throw fail("the host port is empty");
        out.host_port = fields[1].empty() ? 0 : port(fields[1], "the host port", true);
    }
    if (count == 3) {
        try {
            out.host_address = ipv4_address::parse(fields[2]);
        } catch (const error&) {
            throw fail("'" + std::string(fields[2]) + "' is not an IPv4 address like 127.0.0.1");
        }
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
    const long s = ctr::detail::sys::socket(AF_INET, type, 0);
    if (s < 0) throw fail(s, "socket");
    unique_fd fd(static_cast<int>(s));
    if (tcp) {
        // Lets a port be bound again while the connections of an earlier
        // relay linger in TIME_WAIT. It does not let two listeners share a
        // port (that is SO_REUSEPORT), so a busy port still fails. UDP has
        // no TIME_WAIT, and there SO_REUSEADDR would share the port.
        const int one = 1;
        if (const long r = ctr::detail::sys::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); r < 0)
            throw fail(r, "setsockopt SO_REUSEADDR");
    }
    const sockaddr_in address = to_sockaddr(m.host_address, m.host_port);
    if (const long r = ctr::detail::sys::bind(fd.get(), &address, sizeof address); r < 0) throw fail(r, "bind");
    sockaddr_in bound{};
    unsigned length = sizeof bound;
    if (const long r = ctr::detail::sys::getsockname(fd.get(), &bound, &length); r < 0) throw fail(r, "getsockname");
    bound_port = ntohs(bound.sin_port);
    return fd;
}

}  // namespace ctr::net::detail
