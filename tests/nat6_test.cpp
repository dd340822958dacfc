// Outbound NAT over IPv6 (net::veth::outbound with veth::ipv6, outbound.hpp):
// a veth sandbox reaches a server beyond the host on a 2001:db8:: address,
// masqueraded behind the host's uplink address by ctr's table "ip6 ctr",
// which goes with the last sandbox as "ip ctr" does. The small internet of
// net_host.hpp: this thread's namespace plays the host, another the router
// with the server. No packet reaches a real interface.
#include "net_host.hpp"

#include <gtest/gtest.h>

#include <linux/netfilter.h>

#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace {

using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;
using ctr_test::small_internet;

#define CTR_SKIP_WITHOUT_NFTABLES_AND_IPV6() \
    CTR_SKIP_WITHOUT_NFTABLES();             \
    if (!ctr_test::ipv6_available()) GTEST_SKIP() << "this kernel has no IPv6 (ipv6.disable=1 or CONFIG_IPV6 off)"

std::string read_file(const std::string& path) { return ctr_test::read_first_line(path); }

bool ip6_table() { return ctr::net::detail::nftables_socket::open().table_exists("ctr", NFPROTO_IPV6); }

// What must be the same after a test in the namespace it started in.
struct outside_state {
    std::string all_forwarding = read_file("/proc/sys/net/ipv6/conf/all/forwarding");
    std::string default_forwarding = read_file("/proc/sys/net/ipv6/conf/default/forwarding");
    bool ctr_table = ctr::net::detail::nftables_socket::open().table_exists("ctr");
    bool ctr_table6 = ip6_table();
    bool operator==(const outside_state&) const = default;
};

std::vector<std::string> ask_server6() {
    return helper({"tcp6-send", small_internet::server_address6.to_string(),
                   std::to_string(small_internet::server_port), "hello"});
}

// Whether this kernel forwards IPv6 per interface (Linux 6.17's force_forwarding).
bool per_interface_forwarding() { return access("/proc/sys/net/ipv6/conf/all/force_forwarding", F_OK) == 0; }

TEST(nat6, an_outbound_sandbox_reaches_a_server_beyond_the_host_over_ipv6_behind_the_hosts_address) {
    CTR_SKIP_WITHOUT_NFTABLES_AND_IPV6();
    const outside_state before;
    {
        small_internet net;
        std::thread server = net.serve_one6();
        // The timeout only guards against a hang.
        auto child = spawn(ask_server6(), {.std_out = stdio::capture(),
                                           .timeout = std::chrono::seconds(30),
                                           .network = ctr::net::veth{.outbound = true}});
        const ctr::net::veth_info info = *child.network();
        const auto r = child.wait();
        net.stop_serving();
        server.join();
        ASSERT_TRUE(info.host_ipv6);
        EXPECT_EQ(r.exit_code, 0) << r.std_out;
        // Masqueraded: the server saw the host's uplink address, not the sandbox's ULA one.
        EXPECT_EQ(r.std_out, "server saw " + small_internet::host_uplink6.address.to_string());
        if (per_interface_forwarding()) {
            // The sandbox's link and the uplink forward; the rest of the host is as it was.
            EXPECT_EQ(read_file("/proc/sys/net/ipv6/conf/up0/force_forwarding"), "1");
            EXPECT_EQ(read_file("/proc/sys/net/ipv6/conf/all/forwarding"), "0");
            EXPECT_EQ(read_file("/proc/sys/net/ipv6/conf/lo/force_forwarding"), "0");
        } else {
            EXPECT_EQ(read_file("/proc/sys/net/ipv6/conf/all/forwarding"), "1");
        }
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

// Before Linux 6.17 the only IPv6 forwarding switch is all.forwarding, and
// with it on an interface with accept_ra = 1 (the default) stops learning its
// addresses and default route from router advertisements. ctr moves each
// such interface, and `default`, to accept_ra = 2, which keeps them learning;
// an interface that took none (accept_ra = 0) stays as it is. From 6.17 ctr
// forwards per interface and none of these settings changes.
TEST(nat6, interfaces_that_learn_from_router_advertisements_keep_learning_once_the_host_forwards) {
    CTR_SKIP_WITHOUT_NFTABLES_AND_IPV6();
    small_internet net;
    const std::string conf = "/proc/sys/net/ipv6/conf/";
    // A host that does not forward yet (a new namespace may inherit the machine's setting).
    ctr_test::write_sysctl(conf + "all/forwarding", "0");
    ctr_test::write_sysctl(conf + "up0/accept_ra", "1");
    ctr_test::write_sysctl(conf + "default/accept_ra", "1");
    ctr_test::write_sysctl(conf + "lo/accept_ra", "0");
    auto child = spawn(helper({"sleep", "30"}), {.network = ctr::net::veth{.outbound = true}});
    ASSERT_TRUE(child.network()->host_ipv6);
    if (per_interface_forwarding()) {
        EXPECT_EQ(read_file(conf + "all/forwarding"), "0");
        EXPECT_EQ(read_file(conf + "up0/accept_ra"), "1");
        EXPECT_EQ(read_file(conf + "default/accept_ra"), "1");
    } else {
        EXPECT_EQ(read_file(conf + "all/forwarding"), "1");
        EXPECT_EQ(read_file(conf + "up0/accept_ra"), "2");
        EXPECT_EQ(read_file(conf + "default/accept_ra"), "2");
    }
    EXPECT_EQ(read_file(conf + "lo/accept_ra"), "0");
    child.kill();
    (void)child.wait();
}

// A veth sandbox without outbound asks the router's server over IPv6: no
// answer comes, and the connect waits until the timeout ends the sandbox.
void expect_no_answer_without_outbound(small_internet& net) {
    std::thread server = net.serve_one6();
    auto child = spawn(ask_server6(), {.std_out = stdio::capture(),
                                       .timeout = std::chrono::milliseconds(1500),
                                       .network = ctr::net::veth{}});
    const auto r = child.wait();
    net.stop_serving();
    server.join();
    EXPECT_TRUE(r.timed_out) << r.std_out;
    EXPECT_EQ(r.std_out.find("server saw"), std::string::npos) << r.std_out;
}

TEST(nat6, without_outbound_the_same_sandbox_cannot_reach_the_server) {
    CTR_SKIP_WITHOUT_NFTABLES_AND_IPV6();
    small_internet net;
    expect_no_answer_without_outbound(net);
    EXPECT_FALSE(ip6_table());
}

TEST(nat6, forwarding_alone_is_not_enough_the_masquerade_rule_is_what_brings_answers_back) {
    CTR_SKIP_WITHOUT_NFTABLES_AND_IPV6();
    small_internet net;
    // Every interface forwards, nothing is masqueraded: the router has no
    // route back to ctr's ULA prefix.
    ctr_test::write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");
    expect_no_answer_without_outbound(net);
}

TEST(nat6, both_tables_hold_one_rule_per_sandbox_and_go_with_the_last) {
    CTR_SKIP_WITHOUT_NFTABLES_AND_IPV6();
    const outside_state before;
    {
        small_internet net;
        auto nft = ctr::net::detail::nftables_socket::open();
        auto first = spawn(helper({"sleep", "30"}), {.network = ctr::net::veth{.outbound = true}});
        auto second = spawn(helper({"sleep", "30"}), {.network = ctr::net::veth{.outbound = true}});
        ASSERT_EQ(nft.rules("ctr", "postrouting").size(), 2u);
        const auto rules6 = nft.rules("ctr", "postrouting", NFPROTO_IPV6);
        ASSERT_EQ(rules6.size(), 2u);
        EXPECT_EQ(ctr::net::detail::link_of_outbound_comment(rules6[0].comment), first.network()->host_name);
        EXPECT_EQ(ctr::net::reap_stale_outbound(), 0u);
        first.kill();
        (void)first.wait();
        EXPECT_EQ(nft.rules("ctr", "postrouting", NFPROTO_IPV6).size(), 1u);
        EXPECT_TRUE(nft.table_exists("ctr", NFPROTO_IPV6));
        second.kill();
        (void)second.wait();
        EXPECT_FALSE(nft.table_exists("ctr", NFPROTO_IPV6));
        EXPECT_FALSE(nft.table_exists("ctr"));
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

TEST(nat6, reap_stale_removes_a_crashed_callers_rules_in_both_tables) {
    CTR_SKIP_WITHOUT_NFTABLES_AND_IPV6();
    small_internet net;
    auto nft = ctr::net::detail::nftables_socket::open();
    ctr::unique_fd sandbox;
    {
        ctr::ns::scope fresh{ctr::ns::kinds(ctr::ns::network)};
        sandbox = ctr_test::current_network_namespace();
    }
    auto pair = ctr::net::create_veth(ctr::net::veth{}, ctr::net::peer_namespace::from_fd(sandbox.get()));
    ASSERT_TRUE(pair.info().host_ipv6);
    // A forked caller adds the rules and exits without removing them, as a
    // crashed one would.
    const pid_t crashing = fork();
    ASSERT_GE(crashing, 0);
    if (crashing == 0) {
        try {
            auto rule = ctr::net::outbound_nat::add(pair.info());
            _exit(0);  // no destructors: the rules stay
        } catch (...) {
            _exit(1);
        }
    }
    int status = 0;
    ASSERT_EQ(waitpid(crashing, &status, 0), crashing);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ(nft.rules("ctr", "postrouting", NFPROTO_IPV6).size(), 1u);
    EXPECT_EQ(ctr::net::reap_stale_outbound(), 0u) << "the link still exists";
    pair.host_link().remove();
    EXPECT_EQ(ctr::net::reap_stale_outbound(), 2u);
    EXPECT_FALSE(nft.table_exists("ctr", NFPROTO_IPV6));
    EXPECT_FALSE(nft.table_exists("ctr"));
}

TEST(nat6, ipv6_false_makes_no_ip6_table) {
    CTR_SKIP_WITHOUT_NFTABLES_AND_IPV6();
    small_internet net;
    auto child = spawn(helper({"sleep", "30"}), {.network = ctr::net::veth{.outbound = true, .ipv6 = false}});
    auto nft = ctr::net::detail::nftables_socket::open();
    EXPECT_EQ(nft.rules("ctr", "postrouting").size(), 1u);
    EXPECT_FALSE(nft.table_exists("ctr", NFPROTO_IPV6));
    child.kill();
    (void)child.wait();
}

}  // namespace
