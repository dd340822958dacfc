#pragma once
// ctr::net's options as spawn takes them (options::network) and what it made
// (child::network()): plain structs, so that process.hpp needs no more of the
// network than these. net.hpp has the operations and the launch layer.

#include <ctr/ip_address.hpp>
#include <ctr/port_mapping.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ctr::net {

// What spawn (or create_veth) builds. Every field has a working default:
// net::veth{} gives "ctr-<subnet in hex>" on the host side, "eth0" inside,
// and a free /30 of 10.231.0.0/16.
struct veth {
    // The host end's name; empty: "ctr-" and the /30's network address in
    // hex ("ctr-0ae70004" for 10.231.0.4/30), which also keeps launches in
    // other processes from taking the same subnet (within a process they
    // take turns); with explicit addresses, "ctr<N>" for the first free N.
    // With a name of your own and pool addresses, launches in two processes
    // may pick the same slot: give the addresses too, or leave the name to ctr.
    std::string host_name{};
    std::string container_name = "eth0";
    // Both or neither. Neither: the first /30 of `pool` that no address or
    // route of the caller's namespace overlaps; the host end gets .1 of it,
    // the sandbox .2.
    std::optional<ipv4_interface> host_address{};
    std::optional<ipv4_interface> container_address{};
    ipv4_interface pool{{{10, 231, 0, 0}}, 16};
    // A default route inside through the host end. Traffic to the host's own
    // addresses then arrives there; beyond the host it goes nowhere unless
    // `outbound` (or the caller's own rules) forward and masquerade it.
    bool default_route = true;
    // Outbound NAT (outbound.hpp): the sandbox's subnet masqueraded behind
    // the host's address by a rule in ctr's nftables table "ip ctr",
    // forwarding on for the host end and the default route's interface.
    // Needs CAP_NET_ADMIN (root); the rule goes when the handle reaps the
    // sandbox.
    bool outbound = false;
    // Published ports by the kernel's DNAT (port_nat.hpp): connections to a
    // host port, on the host's addresses (loopback included), go straight to
    // the sandbox's address and port, and the server inside sees the
    // client's own address (the host end's for a loopback client). Rules in
    // ctr's table "ip ctr", forwarding on as for `outbound`; host port 0 is
    // one the kernel picks (veth_info::published says which). Needs
    // CAP_NET_ADMIN (root) and nftables; the rules go when the handle reaps
    // the sandbox. Without privilege, use pasta's ports or a port_forwarder.
    std::vector<port_mapping> publish{};
    unsigned mtu = 0;  // 0: the kernel's (1500)
    // IPv6 beside IPv4, where the kernel has it: a /64 of `ipv6_pool` for
    // each pair (subnet ID: the IPv4 /30's slot, the low 16 bits of its
    // network address divided by 4, so 10.231.0.4/30 goes with
    // fd63:7472:0:1::/64), host end ::1, sandbox ::2, both without duplicate
    // address detection, and a default route inside through the host end.
    // `outbound` and `publish` then cover IPv6 too. A kernel without IPv6
    // (ipv6.disable=1) or with it disabled on the new link
    // (net.ipv6.conf.default.disable_ipv6 = 1) gives IPv4 alone, without an
    // error: veth_info::host_ipv6 is empty then. false: IPv4 alone.
    bool ipv6 = true;
    // Both or neither, as the IPv4 ones: neither takes the pool's /64.
    std::optional<ipv6_interface> host_ipv6{};
    std::optional<ipv6_interface> container_ipv6{};
    // ctr's ULA prefix (RFC 4193): "fd", then "ctr" in ASCII (63 74 72) and
    // a zero, as the 40-bit global ID. A /48 gives 65536 /64s, one per IPv4
    // slot of a /16 pool; a prefix of its own (at most a /48) if this one
    // is taken where you run.
    ipv6_interface ipv6_pool{{{0xfd, 0x63, 0x74, 0x72}}, 48};
};

// What was made: names, indexes and addresses of both ends.
struct veth_info {
    std::string host_name{};
    std::string container_name{};
    int host_index = 0;
    ipv4_interface host_address{};
    ipv4_interface container_address{};
    bool default_route = true;
    unsigned mtu = 0;
    // The IPv6 addresses of both ends; empty without IPv6 (veth::ipv6
    // false, or a kernel without it).
    std::optional<ipv6_interface> host_ipv6{};
    std::optional<ipv6_interface> container_ipv6{};
    // veth::publish with the host ports bound (the kernel's pick for 0).
    std::vector<port_mapping> published{};
};

}  // namespace ctr::net
