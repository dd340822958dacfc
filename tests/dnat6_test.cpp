// Published ports by DNAT over IPv6 (net::veth::publish, port_nat.hpp): a
// client elsewhere reaches the server inside over IPv6 at the host's
// address and the server sees the client's own IPv6 address; "8080:80"
// publishes on both families (Docker), "0.0.0.0:8080:80" on IPv4 alone (the
// negative control: the same IPv6 client is refused); IPv6 loopback is
// refused at once, as the kernel cannot DNAT from ::1. The small internet of
// net_host.hpp; no packet reaches a real interface.
#include "net_host.hpp"

#include <gtest/gtest.h>

#include <linux/netfilter.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

namespace {

using ctr::net::ipv6_address;
using ctr::net::port_mapping;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;
using ctr_test::small_internet;

const ipv6_address host_address6 = small_internet::host_uplink6.address;       // 2001:db8:1::1
const ipv6_address client_address6 = small_internet::router_downlink6.address;  // 2001:db8:1::fe
constexpr std::uint16_t host_port = 18080;

#define CTR_SKIP_WITHOUT_NFT_DNAT6()                                                                       \
    CTR_SKIP_WITHOUT_NFT_DNAT();                                                                           \
    if (!ctr_test::ipv6_available()) GTEST_SKIP() << "this kernel has no IPv6 (ipv6.disable=1 or CONFIG_IPV6 off)";   \
    if (!ctr_test::nft_dnat6_available())                                                                  \
    GTEST_SKIP() << "this kernel lacks nftables' IPv6 nat or fib (modprobe nft_nat nft_fib_ipv6)"

// The server's one line ("saw ADDRESS") for a connection to [address]:port
// from the current thread's namespace, or what went wrong. The time limits
// only guard against a hang.
std::string ask6(const ipv6_address& address, std::uint16_t port) {
    const ctr::unique_fd s(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const timeval limit{10, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(port);
    to.sin6_addr = address.to_in6_addr();
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
        return std::string("connect: ") + std::strerror(errno);
    if (write(s.get(), "hello\n", 6) != 6) return std::string("write: ") + std::strerror(errno);
    std::string reply;
    char buffer[256];
    for (ssize_t n; reply.find('\n') == std::string::npos && (n = read(s.get(), buffer, sizeof buffer)) > 0;)
        reply.append(buffer, static_cast<std::size_t>(n));
    return reply.substr(0, reply.find('\n'));
}

std::string ask6_from_router(small_internet& net, const ipv6_address& address, std::uint16_t port) {
    std::string out;
    std::thread client([&] {
        ctr::ns::scope in_router({ctr::ns::existing::fd(ctr::ns::network, net.router.get())});
        out = ask6(address, port);
    });
    client.join();
    return out;
}

// A sandbox whose server (on [::], IPv4 clients too) answers `count`
// connections on port 80 with the address it saw.
ctr::process::child serve6(int count, std::vector<port_mapping> publish) {
    auto child = spawn(helper({"tcp6-peer", "80", std::to_string(count)}),
                       {.std_out = stdio::pipe(),
                        .timeout = std::chrono::seconds(60),  // a hang guard only
                        .network = ctr::net::veth{.publish = std::move(publish)}});
    EXPECT_EQ(ctr_test::read_line_of(child.std_out().get()), "listening\n");
    return child;
}

bool ip6_table() { return ctr::net::detail::nftables_socket::open().table_exists("ctr", NFPROTO_IPV6); }

TEST(dnat6, a_client_elsewhere_reaches_the_port_over_ipv6_and_the_server_sees_its_own_address) {
    CTR_SKIP_WITHOUT_NFT_DNAT6();
    {
        small_internet net;
        auto child = serve6(3, {port_mapping::parse("18080:80")});
        const auto& made = *child.network();
        ASSERT_TRUE(made.container_ipv6);
        // From the router over IPv6: the client's own address.
        EXPECT_EQ(ask6_from_router(net, host_address6, host_port), "saw " + client_address6.to_string());
        // From the host on its own IPv6 address: that address.
        EXPECT_EQ(ask6(host_address6, host_port), "saw " + host_address6.to_string());
        // The IPv4 half of the same mapping still works beside it.
        const ctr::net::ipv4_address v4 = small_internet::host_uplink.address;
        std::string v4_answer;
        std::thread client([&] {
            ctr::ns::scope in_router({ctr::ns::existing::fd(ctr::ns::network, net.router.get())});
            v4_answer = ctr_test::tcp_exchange(v4.to_in_addr(), host_port, "hello\n").value_or("no answer");
        });
        client.join();
        EXPECT_EQ(v4_answer, "saw ::ffff:" + small_internet::router_downlink.address.to_string() + "\n");
        EXPECT_EQ(child.wait().exit_code, 0);
        EXPECT_FALSE(ip6_table()) << "the rules outlived the sandbox";
    }
}

TEST(dnat6, an_explicit_0_0_0_0_publishes_on_ipv4_alone_and_the_ipv6_client_is_refused) {
    CTR_SKIP_WITHOUT_NFT_DNAT6();
    small_internet net;
    // The negative control of the test above: the same client, the same
    // port, no IPv6 rule.
    auto child = serve6(1, {port_mapping::parse("0.0.0.0:18080:80")});
    EXPECT_FALSE(ip6_table());
    EXPECT_EQ(ask6_from_router(net, host_address6, host_port), "connect: Connection refused");
    child.kill();
    (void)child.wait();
}

TEST(dnat6, an_ipv6_address_publishes_there_alone_and_ipv6_loopback_is_refused_at_once) {
    CTR_SKIP_WITHOUT_NFT_DNAT6();
    small_internet net;
    auto child = serve6(1, {port_mapping::parse("[2001:db8:1::1]:18081:80"), port_mapping::parse("18082:80")});
    EXPECT_EQ(child.network()->published[0].to_string(), "[2001:db8:1::1]:18081->80/tcp");
    // The kernel cannot send a packet from ::1 to the sandbox: no rule for
    // it, and the bound socket refuses the client instead of a hang.
    EXPECT_EQ(ask6(ipv6_address::parse("::1"), 18082), "connect: Connection refused");
    EXPECT_EQ(ask6_from_router(net, host_address6, 18081), "saw " + client_address6.to_string());
    EXPECT_EQ(child.wait().exit_code, 0);
}

TEST(dnat6, mappings_the_kernel_cannot_serve_are_refused_with_the_reason) {
    CTR_SKIP_WITHOUT_NFT_DNAT6();
    small_internet net;
    const std::pair<ctr::net::veth, const char*> cases[] = {
        {{.publish = {port_mapping::parse("[::1]:18080:80")}}, "no route_localnet for IPv6"},
        {{.publish = {port_mapping::parse("[::]:18080:80")}, .ipv6 = false}, "has no IPv6 address"},
    };
    for (const auto& [options, reason] : cases) {
        try {
            (void)spawn(helper({"exit", "0"}), {.network = options});
            ADD_FAILURE() << "accepted: " << reason;
        } catch (const ctr::error& e) {
            EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
        }
    }
    EXPECT_FALSE(ip6_table());
    EXPECT_FALSE(ctr_test::has_children());
}

}  // namespace
