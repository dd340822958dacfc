#pragma once
// ctr-run's network: which one a run gets (--network, -p, root or not) and
// pasta's options from -p. Throws usage_error for what cannot work here.

#include "flags.hpp"
#include "resolv_conf.hpp"
#include "values.hpp"

#include <ctr/ctr.hpp>

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

namespace ctr_run {

// Whether `program` is an executable file in this process's PATH (the
// library looks pasta up the same way).
inline bool in_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    const std::string dirs = path ? path : "/usr/bin:/bin";
    for (std::size_t at = 0; at <= dirs.size();) {
        std::size_t end = dirs.find(':', at);
        if (end == std::string::npos) end = dirs.size();
        const std::string dir = end > at ? dirs.substr(at, end - at) : ".";
        if (access((dir + "/" + program).c_str(), X_OK) == 0) return true;
        at = end + 1;
    }
    return false;
}

inline constexpr const char* pasta_missing =
    "pasta is not installed: install the package passt (apt-get install passt, dnf install passt)";

// The network of this run. Without --network: none, or with -p a network
// that can publish: veth for root, pasta for everyone else (a veth pair
// needs CAP_NET_ADMIN in the host's network namespace; pasta needs nothing).
inline network_mode chosen_network(const config& c, bool privileged) {
    network_mode mode = c.network;
    std::string flag = "--network";
    if (!c.network_given && !c.publish.empty()) {
        mode = privileged ? network_mode::veth : network_mode::pasta;
        flag = "--publish";
    }
    if (mode == network_mode::veth && !privileged)
        bad_value(flag, "a veth pair needs root (CAP_NET_ADMIN where ctr-run runs); rootless, use --network pasta "
                        "(package passt)");
    if (mode == network_mode::pasta && !in_path("pasta")) bad_value(flag, pasta_missing);
    return mode;
}

// Whether this kernel has nftables (its netlink family), which outbound NAT
// and published ports by DNAT need. Without it (no nf_tables module, as in
// a minimal VM) a veth sandbox still reaches the host, -p goes through the
// user-space relay, and ctr-run says so in one line.
inline bool nftables_available(bool publishing) {
    const int probe = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (probe >= 0) {
        close(probe);
        return true;
    }
    if (errno != EPROTONOSUPPORT) return true;  // let the launch name any other failure
    std::cerr << "ctr-run: --network veth without outbound NAT: this kernel has no nftables (modprobe nf_tables "
                 "nft_masq nft_nat); the sandbox reaches the host only"
              << (publishing ? ", and -p relays in user space (the server inside sees the relay's address)" : "")
              << std::endl;
    return false;
}

// Whether a veth sandbox will have IPv6 (net::veth::ipv6 finds the same
// when it makes the pair): the kernel has it and new links get it
// (net.ipv6.conf.default.disable_ipv6 is 0 here).
inline bool veth_gets_ipv6(const config& c) {
    if (!c.ipv6) return false;
    const int probe = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return false;
    close(probe);
    std::ifstream disabled("/proc/sys/net/ipv6/conf/default/disable_ipv6");
    std::string value;
    return std::getline(disabled, value) && value == "0";
}

// -p as pasta's -t and -u: "[ADDRESS/]HOSTPORT:PORT". pasta binds fixed
// host ports only. Its DNS forwarder is on.
inline ctr::net::pasta pasta_options(const config& c) {
    ctr::net::pasta options;
    for (const auto& p : c.publish) {
        if (p.host_port == 0)
            bad_value("--publish", "'" + p.to_string() +
                                       "': with pasta give the host port too (-p 8080:80); it does not pick one");
        std::string spec;
        if (!p.host_address.is_unspecified()) spec = p.host_address.to_string() + "/";
        spec += std::to_string(p.host_port) + ":" + std::to_string(p.container_port);
        (p.proto == ctr::net::protocol::udp ? options.udp_ports : options.tcp_ports).push_back(spec);
    }
    // The sandbox's resolv.conf names this forwarder (resolv_conf.hpp).
    options.extra_args.insert(options.extra_args.end(), {"--dns-forward", pasta_dns_forwarder});
    return options;
}

}  // namespace ctr_run
