#pragma once
// ctr::net::pasta as spawn takes it (options::pasta): a plain struct, so that
// spawn_options.hpp needs no more of pasta than this. pasta.hpp has the
// operations, detail/launch_pasta.hpp the launch layer.

#include <chrono>
#include <string>
#include <vector>

namespace ctr::net {

// A network for a sandbox through pasta (Debian and Fedora package
// `passt`), as rootless podman uses it: pasta runs in the caller's network
// namespace, owns a tap interface in the sandbox's, and carries the
// sandbox's TCP, UDP and ICMP through sockets of its own. It needs no
// privilege. The sandbox's interface gets the address, routes and MTU of
// the caller's interface that holds the default route, so the caller's
// namespace must have one.
//
// ctr's defaults are closed where pasta's are open: no port is forwarded
// unless listed here (pasta's default is every port the sandbox binds), the
// sandbox's own loopback does not reach the caller's (pasta's -T and -U),
// and the gateway address does not stand for the caller's loopback
// (--no-map-gw). extra_args may open them again.
struct pasta {
    // The program: looked up in PATH when it has no '/'.
    std::string program = "pasta";
    // Published ports, in pasta's own -t (TCP) and -u (UDP) syntax:
    // "8080" (host port 8080 to 8080 inside), "8080:80", "127.0.0.1/8080:80",
    // "8000-8010". Each string is one -t or -u argument.
    std::vector<std::string> tcp_ports{};
    std::vector<std::string> udp_ports{};
    // The interface's name inside (-I); empty: pasta's choice, the name of
    // the caller's interface with the default route.
    std::string interface_name{};
    // Further arguments, after ctr's own (say "--mtu", "1500").
    std::vector<std::string> extra_args{};
    // How long pasta may take to set the network up before spawn gives up.
    std::chrono::milliseconds ready_timeout{10000};
};

}  // namespace ctr::net
