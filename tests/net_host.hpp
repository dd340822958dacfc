#pragma once
// A small host for network tests that need one of their own (pasta runs in
// the caller's network namespace and copies its addresses and routes): the
// calling thread in a fresh network namespace, inside the one the test main
// made, with a veth pair whose both ends stay in it: 198.51.100.1/25 with a
// default route through 198.51.100.126, and 198.51.100.129/25 where a
// test's server listens. No packet reaches a real interface.
#include "support.hpp"

#include <ctr/ctr.hpp>

#include <gtest/gtest.h>

#include <linux/netlink.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ctr_test {

// Whether `program` is an executable file in PATH.
inline bool in_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (std::size_t at = 0; at <= dirs.size();) {
        std::size_t end = dirs.find(':', at);
        if (end == std::string::npos) end = dirs.size();
        const std::string candidate = dirs.substr(at, end - at) + "/" + program;
        if (access(candidate.c_str(), X_OK) == 0) return true;
        at = end + 1;
    }
    return false;
}

// nftables' netlink family, for the outbound NAT tests: a kernel without
// the nf_tables module answers EPROTONOSUPPORT.
inline bool nftables_available() {
    const int probe = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (probe < 0) return errno != EPROTONOSUPPORT;
    close(probe);
    return true;
}
#define CTR_SKIP_WITHOUT_NFTABLES()          \
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();   \
    if (!ctr_test::nftables_available())    \
    GTEST_SKIP() << "this kernel has no nftables (the nf_tables module: modprobe nf_tables nft_masq)"

// nftables' nat and fib expressions, which published ports by DNAT need
// (nft_nat, nft_fib_ipv4): a throwaway table in a network namespace of its
// own, which takes the table with it.
inline bool nft_dnat_available() {
    namespace d = ctr::net::detail;
    try {
        ctr::ns::scope fresh{ctr::ns::kinds(ctr::ns::network)};
        auto nft = d::nftables_socket::open();
        std::vector<d::netlink_message> batch;
        batch.push_back(d::new_table_message("probe"));
        batch.push_back(d::new_chain_message("probe", "prerouting", NF_INET_PRE_ROUTING, -100, "nat"));
        batch.push_back(d::rule_message("probe", "prerouting", "probe", [](d::netlink_message& m) {
            d::match_local_destination(m);
            d::add_dnat(m, ctr::net::ipv4_address::parse("198.51.100.2"), 80);
        }));
        nft.commit(std::move(batch), 0, "probing nftables' nat and fib");
        return true;
    } catch (const ctr::error& e) {
        return e.code().value() != ENOENT;  // any other failure: the test names it
    }
}
// The same for IPv6 (nft_fib_ipv6; the ip6 family of nf_tables and nat).
inline bool nft_dnat6_available() {
    namespace d = ctr::net::detail;
    try {
        ctr::ns::scope fresh{ctr::ns::kinds(ctr::ns::network)};
        auto nft = d::nftables_socket::open();
        std::vector<d::netlink_message> batch;
        batch.push_back(d::new_table_message("probe", NFPROTO_IPV6));
        batch.push_back(d::new_chain_message("probe", "prerouting", NF_INET_PRE_ROUTING, -100, "nat", NFPROTO_IPV6));
        batch.push_back(d::rule_message(
            "probe", "prerouting", "probe",
            [](d::netlink_message& m) {
                d::match_local_destination(m);
                d::add_dnat(m, ctr::net::ipv6_address::parse("2001:db8::2"), 80);
            },
            NFPROTO_IPV6));
        nft.commit(std::move(batch), 0, "probing nftables' ip6 nat and fib");
        return true;
    } catch (const ctr::error& e) {
        return e.code().value() != ENOENT && e.code().value() != EAFNOSUPPORT;
    }
}

#define CTR_SKIP_WITHOUT_NFT_DNAT()        \
    CTR_SKIP_WITHOUT_NFTABLES();           \
    if (!ctr_test::nft_dnat_available())   \
    GTEST_SKIP() << "this kernel lacks nftables' nat or fib expressions (modprobe nft_nat nft_fib_ipv4)"

// pasta, for tests that start it.
#define CTR_SKIP_WITHOUT_PASTA()            \
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();   \
    if (!ctr_test::in_path("pasta"))        \
    GTEST_SKIP() << "pasta is not installed (package passt; tools/install-deps installs it)"

// IPv6 in this kernel and in the namespace the test runs in.
inline bool ipv6_available() {
    const int probe = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return false;
    close(probe);
    return access("/proc/sys/net/ipv6/conf/default/disable_ipv6", F_OK) == 0;
}
#define CTR_SKIP_WITHOUT_IPV6()            \
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();  \
    if (!ctr_test::ipv6_available())       \
    GTEST_SKIP() << "this kernel has no IPv6 (ipv6.disable=1 or CONFIG_IPV6 off)"

// Connects to [address]:port (retrying while the far end comes up), sends
// `text`, half-closes and returns everything that comes back.
inline std::string tcp6_exchange(const ctr::net::ipv6_address& address, int port, const std::string& text) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        const int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in6 to{};
        to.sin6_family = AF_INET6;
        to.sin6_port = htons(static_cast<std::uint16_t>(port));
        to.sin6_addr = address.to_in6_addr();
        if (connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
            close(s);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
        }
        if (write(s, text.data(), text.size()) < 0) ADD_FAILURE() << "write: " << std::strerror(errno);
        shutdown(s, SHUT_WR);
        std::string reply;
        char buffer[4096];
        for (ssize_t n; (n = read(s, buffer, sizeof buffer)) > 0;) reply.append(buffer, static_cast<std::size_t>(n));
        close(s);
        return reply;
    }
    ADD_FAILURE() << "could not connect to [" << address.to_string() << "]:" << port;
    return {};
}

// A TCP listener on [address]:port of the current thread's namespace that
// answers one connection with "host got ", what it read until the client
// half-closed, " from " and the client's address.
struct one_shot_server6 {
    int listener = -1;
    std::thread thread;
    one_shot_server6(const ctr::net::ipv6_address& address, int port) {
        listener = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in6 at{};
        at.sin6_family = AF_INET6;
        at.sin6_port = htons(static_cast<std::uint16_t>(port));
        at.sin6_addr = address.to_in6_addr();
        const int on = 1;
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || listen(listener, 4) != 0) {
            ADD_FAILURE() << "bind/listen: " << std::strerror(errno);
            return;
        }
        thread = std::thread([this] {
            sockaddr_in6 peer{};
            socklen_t size = sizeof peer;
            const int c = accept(listener, reinterpret_cast<sockaddr*>(&peer), &size);
            if (c < 0) return;
            std::string got;
            char buffer[256];
            for (ssize_t n; (n = read(c, buffer, sizeof buffer)) > 0;) got.append(buffer, static_cast<std::size_t>(n));
            char text[INET6_ADDRSTRLEN] = {};
            inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof text);
            const std::string reply = "host got " + got + " from " + text;
            EXPECT_GT(write(c, reply.data(), reply.size()), 0);
            close(c);
        });
    }
    ~one_shot_server6() {
        if (listener >= 0) shutdown(listener, SHUT_RDWR);
        if (thread.joinable()) thread.join();
        if (listener >= 0) close(listener);
    }
};

// The test's own host, on the calling thread while it lives.
struct test_host {
    static inline const ctr::net::ipv4_address server_address = ctr::net::ipv4_address::parse("198.51.100.129");

    ctr::ns::scope scope{ctr::ns::kinds(ctr::ns::network)};
    std::optional<ctr::net::veth_pair> pair;

    // `with_route`: without a default route pasta finds no interface to
    // copy and fails.
    explicit test_host(bool with_route = true) {
        if (!with_route) return;
        ctr::unique_fd here(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
        pair.emplace(ctr::net::create_veth(
            ctr::net::veth{.host_name = "h0",
                           .container_name = "h1",
                           .host_address = ctr::net::ipv4_interface::parse("198.51.100.1/25"),
                           .container_address = ctr::net::ipv4_interface::parse("198.51.100.2/25")},
            ctr::net::peer_namespace::from_fd(here.get())));
        ctr::net::configure_interface("h0", ctr::net::ipv4_interface::parse("198.51.100.1/25"),
                                      ctr::net::ipv4_address::parse("198.51.100.126"));
        ctr::net::configure_interface("h1", ctr::net::ipv4_interface::parse("198.51.100.129/25"));
    }
};

// A TCP listener on address:port of the current thread's namespace that
// answers one connection with "host got " and the line it read.
struct one_shot_server {
    int listener = -1;
    std::thread thread;
    one_shot_server(const ctr::net::ipv4_address& address, int port) {
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_port = htons(static_cast<std::uint16_t>(port));
        at.sin_addr = address.to_in_addr();
        const int on = 1;
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || listen(listener, 4) != 0) {
            ADD_FAILURE() << "bind/listen: " << std::strerror(errno);
            return;
        }
        thread = std::thread([this] {
            const int c = accept(listener, nullptr, nullptr);
            if (c < 0) return;
            std::string got;
            char buffer[256];
            while (got.find('\n') == std::string::npos) {
                const ssize_t n = read(c, buffer, sizeof buffer);
                if (n <= 0) break;
                got.append(buffer, static_cast<std::size_t>(n));
            }
            const std::string reply = "host got " + got;
            EXPECT_GT(write(c, reply.data(), reply.size()), 0);
            close(c);
        });
    }
    ~one_shot_server() {
        if (listener >= 0) shutdown(listener, SHUT_RDWR);  // wakes an accept that nobody reached
        if (thread.joinable()) thread.join();
        if (listener >= 0) close(listener);
    }
};

inline std::string read_first_line(const std::string& path) {
    std::ifstream in(path);
    std::string text;
    std::getline(in, text);
    return text;
}

// Only for the /proc/sys of a network namespace the test made.
inline void write_sysctl(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    out.flush();
    EXPECT_TRUE(out.good()) << path;
}

inline ctr::unique_fd current_network_namespace() {
    return ctr::unique_fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
}

// A small internet for outbound NAT: the calling thread in a fresh network
// namespace that plays the host, with an uplink "up0" (198.51.100.1/25) to
// another fresh namespace that plays the router (198.51.100.126/25) and a
// default route through it. The router carries the server's address
// (198.51.100.200) on its loopback and has no route back to the sandboxes'
// pool, so only masqueraded traffic can be answered. Forwarding starts off
// everywhere in the host, whatever the namespace it came from had, so that a
// sandbox's way out depends on what ctr turns on. No packet reaches a real
// interface.
struct small_internet {
    static inline const ctr::net::ipv4_address server_address = ctr::net::ipv4_address::parse("198.51.100.200");
    static inline const ctr::net::ipv4_interface host_uplink = ctr::net::ipv4_interface::parse("198.51.100.1/25");
    static inline const ctr::net::ipv4_interface router_downlink =
        ctr::net::ipv4_interface::parse("198.51.100.126/25");
    static constexpr int server_port = 8000;
    // The same over IPv6, where the kernel has it: the uplink
    // 2001:db8:1::1/64, the router 2001:db8:1::fe/64, the server
    // 2001:db8:ff::200 on the router's loopback (documentation addresses).
    static inline const ctr::net::ipv6_address server_address6 = ctr::net::ipv6_address::parse("2001:db8:ff::200");
    static inline const ctr::net::ipv6_interface host_uplink6 = ctr::net::ipv6_interface::parse("2001:db8:1::1/64");
    static inline const ctr::net::ipv6_interface router_downlink6 =
        ctr::net::ipv6_interface::parse("2001:db8:1::fe/64");

    ctr::ns::scope host{ctr::ns::kinds(ctr::ns::network)};
    ctr::unique_fd router;
    std::optional<ctr::net::veth_pair> uplink;
    int listener = -1;
    int listener6 = -1;

    small_internet() {
        write_sysctl("/proc/sys/net/ipv4/conf/all/forwarding", "0");
        write_sysctl("/proc/sys/net/ipv4/conf/default/forwarding", "0");
        const bool ipv6 = ipv6_available();
        if (ipv6) {
            write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "0");
            write_sysctl("/proc/sys/net/ipv6/conf/default/forwarding", "0");
        }
        {
            ctr::ns::scope fresh{ctr::ns::kinds(ctr::ns::network)};
            router = current_network_namespace();
        }
        uplink.emplace(ctr::net::create_veth(ctr::net::veth{.host_name = "up0",
                                                            .container_name = "down0",
                                                            .host_address = host_uplink,
                                                            .container_address = router_downlink},
                                             ctr::net::peer_namespace::from_fd(router.get())));
        ctr::net::configure_interface("up0", host_uplink, router_downlink.address);
        if (ipv6) ctr::net::configure_ipv6("up0", host_uplink6, router_downlink6.address);
        ctr::ns::scope in_router({ctr::ns::existing::fd(ctr::ns::network, router.get())});
        ctr::net::configure_interface("down0", router_downlink);
        auto netlink = ctr::net::detail::rtnetlink::open();
        EXPECT_EQ(ctr::net::detail::add_address(netlink, static_cast<int>(ctr::net::detail::interface_index("lo")),
                                                ctr::net::ipv4_interface{server_address, 32}),
                  0);
        if (ipv6) {
            ctr::net::configure_ipv6("down0", router_downlink6);
            EXPECT_EQ(ctr::net::detail::add_address(netlink,
                                                    static_cast<int>(ctr::net::detail::interface_index("lo")),
                                                    ctr::net::ipv6_interface{server_address6, 128}),
                      0);
            listener6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in6 at6{};
            at6.sin6_family = AF_INET6;
            at6.sin6_port = htons(server_port);
            at6.sin6_addr = server_address6.to_in6_addr();
            if (bind(listener6, reinterpret_cast<sockaddr*>(&at6), sizeof at6) != 0 || listen(listener6, 4) != 0)
                ADD_FAILURE() << "bind/listen in the router over IPv6: " << std::strerror(errno);
        }
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_port = htons(server_port);
        at.sin_addr = server_address.to_in_addr();
        if (bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || listen(listener, 4) != 0)
            ADD_FAILURE() << "bind/listen in the router: " << std::strerror(errno);
    }
    ~small_internet() {
        if (listener >= 0) close(listener);
        if (listener6 >= 0) close(listener6);
    }
    small_internet(const small_internet&) = delete;
    small_internet& operator=(const small_internet&) = delete;

    // Answers one connection with "server saw " and the address it came from.
    std::thread serve_one() {
        return std::thread([this] {
            sockaddr_in peer{};
            socklen_t size = sizeof peer;
            const int c = accept(listener, reinterpret_cast<sockaddr*>(&peer), &size);
            if (c < 0) return;
            char buffer[64];
            (void)!read(c, buffer, sizeof buffer);
            char text[INET_ADDRSTRLEN] = {};
            inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
            const std::string reply = std::string("server saw ") + text;
            EXPECT_GT(write(c, reply.data(), reply.size()), 0);
            close(c);
        });
    }
    // serve_one over IPv6.
    std::thread serve_one6() {
        return std::thread([this] {
            sockaddr_in6 peer{};
            socklen_t size = sizeof peer;
            const int c = accept(listener6, reinterpret_cast<sockaddr*>(&peer), &size);
            if (c < 0) return;
            char buffer[64];
            (void)!read(c, buffer, sizeof buffer);
            char text[INET6_ADDRSTRLEN] = {};
            inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof text);
            const std::string reply = std::string("server saw ") + text;
            EXPECT_GT(write(c, reply.data(), reply.size()), 0);
            close(c);
        });
    }
    // Wakes a serve_one whose client never came.
    void stop_serving() {
        shutdown(listener, SHUT_RDWR);
        if (listener6 >= 0) shutdown(listener6, SHUT_RDWR);
    }
};

}  // namespace ctr_test
