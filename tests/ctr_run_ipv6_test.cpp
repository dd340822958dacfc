// ctr-run's --network veth over IPv6: eth0 gets an address of ctr's ULA
// prefix and a default route where the kernel has IPv6, --sysctl
// net.ipv6.conf.all.disable_ipv6=1 leaves them out (the negative control),
// and -p without an address publishes on IPv6 too, the server inside seeing
// the client's own IPv6 address. In network namespaces made here
// (net_host.hpp), on documentation addresses.
#include "ctr_run_support.hpp"
#include "net_host.hpp"
#include "support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#ifdef CTR_RUN_BINARY

namespace {

using namespace ctr_run_test;
using namespace std::chrono_literals;

const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));

TEST(ctr_run_ipv6, veth_gives_eth0_an_ipv6_address_and_route_unless_ipv6_is_turned_off) {
    CTR_SKIP_WITHOUT_IPV6();
    auto r = run({"--network", "veth", "-v", helper_dir + ":" + helper_dir + ":ro", ctr_test::probe_helper,
                  "addresses6"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "eth0 fd63:7472:")) << r.out;
    EXPECT_TRUE(contains(r.out, "/64\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "default6 via fd63:7472:")) << r.out;
    r = run({"--network", "veth", "--sysctl", "net.ipv6.conf.all.disable_ipv6=1", "-v",
             helper_dir + ":" + helper_dir + ":ro", ctr_test::probe_helper, "addresses6"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(contains(r.out, "eth0")) << r.out;
    EXPECT_FALSE(contains(r.out, "default6")) << r.out;
    r = run({"--network", "veth", "--sysctl", "net.ipv4.ip_forward=1", "true"});
    EXPECT_EQ(r.status, 125);
    EXPECT_TRUE(contains(r.err, "ctr-run: --sysctl: not supported")) << r.err;
}

// The server's one line for a connection to [address]:port from the
// router's namespace, or what went wrong (the limits are hang guards).
std::string ask6_from_router(ctr_test::small_internet& net, const ctr::net::ipv6_address& address,
                             std::uint16_t port, int attempts = 100) {
    std::string out;
    std::thread client([&] {
        ctr::ns::scope in_router({ctr::ns::existing::fd(ctr::ns::network, net.router.get())});
        for (int attempt = 0; attempt < attempts; ++attempt) {
            const ctr::unique_fd s(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
            const timeval limit{10, 0};
            setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
            sockaddr_in6 to{};
            to.sin6_family = AF_INET6;
            to.sin6_port = htons(port);
            to.sin6_addr = address.to_in6_addr();
            if (connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
                out = std::string("connect: ") + std::strerror(errno);
                std::this_thread::sleep_for(50ms);  // the run may not have published yet
                continue;
            }
            if (write(s.get(), "hi\n", 3) != 3) return;
            char buffer[256];
            out.clear();
            for (ssize_t n; out.find('\n') == std::string::npos && (n = read(s.get(), buffer, sizeof buffer)) > 0;)
                out.append(buffer, static_cast<std::size_t>(n));
            return;
        }
    });
    client.join();
    return out;
}

TEST(ctr_run_ipv6, publish_without_an_address_serves_ipv6_clients_and_the_server_sees_theirs) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    if (!ctr_test::ipv6_available()) GTEST_SKIP() << "this kernel has no IPv6";
    if (!ctr_test::nft_dnat6_available())
        GTEST_SKIP() << "this kernel lacks nftables' IPv6 nat or fib (modprobe nft_nat nft_fib_ipv6)";
    ctr_test::small_internet net;
    namespace p = ctr::process;
    for (const char* mapping : {"18090:80", "[2001:db8:1::1]:18090:80"}) {
        auto server = p::spawn({ctr_run, "-p", mapping, "-v", helper_dir + ":" + helper_dir + ":ro",
                                ctr_test::probe_helper, "tcp6-peer", "80", "1"},
                               {.std_in = p::stdio::null(), .std_out = p::stdio::capture(),
                                .std_err = p::stdio::capture(), .timeout = 60s});
        EXPECT_EQ(ask6_from_router(net, ctr_test::small_internet::host_uplink6.address, 18090),
                  "saw " + ctr_test::small_internet::router_downlink6.address.to_string() + "\n")
            << mapping;
        const auto r = server.wait();
        EXPECT_EQ(r.exit_code, 0) << mapping << ": " << r.std_err;
    }
    // The negative control: IPv4 alone, the same client is refused.
    auto server = p::spawn({ctr_run, "-p", "0.0.0.0:18090:80", "-v", helper_dir + ":" + helper_dir + ":ro",
                            ctr_test::probe_helper, "tcp6-peer", "80", "1"},
                           {.std_in = p::stdio::null(), .std_out = p::stdio::pipe(), .std_err = p::stdio::capture(),
                            .timeout = 60s});
    EXPECT_EQ(ctr_test::read_line_of(server.std_out().get()), "listening\n");
    // Once the server listens, the rules (had there been any) are in.
    EXPECT_EQ(ask6_from_router(net, ctr_test::small_internet::host_uplink6.address, 18090, 1),
              "connect: Connection refused");
    // SIGTERM, which ctr-run passes on and then cleans up after (a SIGKILL
    // would leave its private files behind).
    server.signal(SIGTERM);
    (void)server.wait();
}

}  // namespace

#endif
