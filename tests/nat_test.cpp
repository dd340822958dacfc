// Outbound NAT (net::veth::outbound, outbound.hpp): a veth sandbox reaches a
// server beyond the host, masqueraded behind the host's address; ctr's
// nftables table goes with the last sandbox, and after a crash with
// reap_stale_outbound. Each test builds its own small internet from network
// namespaces made here, inside the one the test main made: this thread's
// namespace plays the host, another the router, which carries the server on
// 198.51.100.200 (a documentation address) behind it (net_host.hpp). No packet reaches a
// real interface, and each test checks that the namespace it started in kept
// its forwarding switches and has no ctr table.
#include "net_host.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace {

using ctr::net::ipv4_address;
using ctr::net::ipv4_interface;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;

using ctr_test::small_internet;
const ipv4_address server_address = small_internet::server_address;
const ipv4_interface host_uplink = small_internet::host_uplink;
constexpr int server_port = small_internet::server_port;

std::string read_file(const std::string& path) { return ctr_test::read_first_line(path); }

void write_file(const std::string& path, const std::string& text) { ctr_test::write_sysctl(path, text); }

// What must be the same after a test in the namespace it started in.
struct outside_state {
    std::string all_forwarding = read_file("/proc/sys/net/ipv4/conf/all/forwarding");
    std::string default_forwarding = read_file("/proc/sys/net/ipv4/conf/default/forwarding");
    bool ctr_table = ctr::net::detail::nftables_socket::open().table_exists("ctr");
    bool operator==(const outside_state&) const = default;
};

std::vector<std::string> ask_server() {
    return helper({"tcp-send", server_address.to_string(), std::to_string(server_port), "hello"});
}

TEST(nat, an_outbound_sandbox_reaches_a_server_beyond_the_host_behind_the_hosts_address) {
    CTR_SKIP_WITHOUT_NFTABLES();
    const outside_state before;
    {
        small_internet net;
        std::thread server = net.serve_one();
        // The timeout only guards against a hang.
        auto child = spawn(ask_server(), {.std_out = stdio::capture(),
                                          .timeout = std::chrono::seconds(30),
                                          .network = ctr::net::veth{.outbound = true}});
        const std::string link = child.network()->host_name;
        const auto r = child.wait();
        net.stop_serving();
        server.join();
        EXPECT_EQ(r.exit_code, 0) << r.std_out;
        // Masqueraded: the server saw the host's uplink address, not the sandbox's.
        EXPECT_EQ(r.std_out, "server saw " + host_uplink.address.to_string());
        // Forwarding on for the sandbox's link and the uplink only.
        EXPECT_EQ(read_file("/proc/sys/net/ipv4/conf/up0/forwarding"), "1");
        EXPECT_EQ(read_file("/proc/sys/net/ipv4/conf/all/forwarding"), "0");
        EXPECT_EQ(read_file("/proc/sys/net/ipv4/conf/lo/forwarding"), "0");
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

// A veth sandbox without outbound asks the router's server: no answer comes,
// and the connect waits until the timeout ends the sandbox.
void expect_no_answer_without_outbound(small_internet& net) {
    std::thread server = net.serve_one();
    auto child = spawn(ask_server(), {.std_out = stdio::capture(),
                                      .timeout = std::chrono::milliseconds(1500),
                                      .network = ctr::net::veth{}});
    const auto r = child.wait();
    net.stop_serving();
    server.join();
    EXPECT_TRUE(r.timed_out) << r.std_out;
    EXPECT_EQ(r.std_out.find("server saw"), std::string::npos) << r.std_out;
}

TEST(nat, without_outbound_the_same_sandbox_cannot_reach_the_server) {
    CTR_SKIP_WITHOUT_NFTABLES();
    const outside_state before;
    {
        small_internet net;
        // The host's end of the pair does not forward, and the kernel then
        // drops the sandbox's packets without a word (no ICMP).
        expect_no_answer_without_outbound(net);
        EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

TEST(nat, forwarding_alone_is_not_enough_the_masquerade_rule_is_what_brings_answers_back) {
    CTR_SKIP_WITHOUT_NFTABLES();
    small_internet net;
    // Every interface of the host forwards, but nothing is masqueraded: the
    // router has no route back to the sandbox's own address, so the
    // connection never completes and the timeout ends the sandbox.
    write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1");
    write_file("/proc/sys/net/ipv4/conf/default/forwarding", "1");
    expect_no_answer_without_outbound(net);
}

TEST(nat, the_table_holds_one_rule_per_sandbox_and_goes_with_the_last) {
    CTR_SKIP_WITHOUT_NFTABLES();
    const outside_state before;
    {
        small_internet net;
        auto nft = ctr::net::detail::nftables_socket::open();
        auto first = spawn(helper({"sleep", "30"}), {.network = ctr::net::veth{.outbound = true}});
        auto second = spawn(helper({"sleep", "30"}), {.network = ctr::net::veth{.outbound = true}});
        const auto rules = nft.rules("ctr", "postrouting");
        ASSERT_EQ(rules.size(), 2u);
        EXPECT_EQ(ctr::net::detail::link_of_outbound_comment(rules[0].comment), first.network()->host_name);
        EXPECT_EQ(ctr::net::detail::link_of_outbound_comment(rules[1].comment), second.network()->host_name);
        // A live sandbox's rule is not stale.
        EXPECT_EQ(ctr::net::reap_stale_outbound(), 0u);
        first.kill();
        (void)first.wait();
        ASSERT_EQ(nft.rules("ctr", "postrouting").size(), 1u);
        EXPECT_TRUE(nft.table_exists("ctr"));
        second.kill();
        (void)second.wait();
        EXPECT_FALSE(nft.table_exists("ctr"));
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

// A forked caller adds the rule of `link` and exits without removing it,
// as a crashed one would. True when it got as far as exiting.
bool add_rule_and_crash(const ctr::net::veth_info& link) {
    const pid_t crashing = fork();
    if (crashing < 0) return false;
    if (crashing == 0) {
        try {
            auto rule = ctr::net::outbound_nat::add(link);
            _exit(0);  // no destructors: the rule stays
        } catch (...) {
            _exit(1);
        }
    }
    int status = 0;
    return waitpid(crashing, &status, 0) == crashing && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(nat, reap_stale_removes_the_rule_a_crashed_caller_left_and_the_table_with_it) {
    CTR_SKIP_WITHOUT_NFTABLES();
    const outside_state before;
    {
        small_internet net;
        auto nft = ctr::net::detail::nftables_socket::open();
        // A sandbox's link, and a process that adds its rule and dies
        // without removing it, as a crashed caller would.
        ctr::unique_fd sandbox;
        {
            ctr::ns::scope fresh{ctr::ns::kinds(ctr::ns::network)};
            sandbox = ctr_test::current_network_namespace();
        }
        // IPv4 alone: one rule (nat6_test.cpp has the pair of rules with IPv6).
        auto pair = ctr::net::create_veth(ctr::net::veth{.ipv6 = false},
                                          ctr::net::peer_namespace::from_fd(sandbox.get()));
        ASSERT_TRUE(add_rule_and_crash(pair.info()));
        ASSERT_EQ(nft.rules("ctr", "postrouting").size(), 1u);
        EXPECT_EQ(ctr::net::reap_stale_outbound(), 0u) << "the link still exists";
        pair.host_link().remove();
        EXPECT_EQ(ctr::net::reap_stale_outbound(), 1u);
        EXPECT_FALSE(nft.table_exists("ctr"));
        EXPECT_EQ(ctr::net::reap_stale_outbound(), 0u);
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

TEST(nat, the_next_outbound_launch_removes_a_crashed_callers_rule_first) {
    CTR_SKIP_WITHOUT_NFTABLES();
    small_internet net;
    auto nft = ctr::net::detail::nftables_socket::open();
    {
        auto pair = ctr::net::create_veth(ctr::net::veth{.host_name = "crashed0",
                                                         .host_address = ipv4_interface::parse("10.99.0.1/30"),
                                                         .container_address = ipv4_interface::parse("10.99.0.2/30")},
                                          ctr::net::peer_namespace::from_fd(net.router.get()));
        ASSERT_TRUE(add_rule_and_crash(pair.info()));
    }  // the link goes; its rule stays
    ASSERT_EQ(nft.rules("ctr", "postrouting").size(), 1u);
    auto child = spawn(helper({"sleep", "30"}), {.network = ctr::net::veth{.outbound = true}});
    const auto rules = nft.rules("ctr", "postrouting");
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(ctr::net::detail::link_of_outbound_comment(rules[0].comment), child.network()->host_name);
    child.kill();
    (void)child.wait();
    EXPECT_FALSE(nft.table_exists("ctr"));
}

TEST(nat, a_failure_to_turn_forwarding_on_names_the_switch_and_leaves_nothing) {
    CTR_SKIP_WITHOUT_NFTABLES();
    namespace sys = ctr::detail::sys;
    small_internet net;
    const auto fds_before = ctr_test::open_fds();
    {
        sys::fault_injection fault(sys::call::pwrite64, EROFS);
        try {
            (void)spawn(helper({"exit", "0"}), {.network = ctr::net::veth{.outbound = true}});
            ADD_FAILURE() << "accepted";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::configure_nat) << e.what();
            EXPECT_EQ(e.code().value(), EROFS) << e.what();
            EXPECT_NE(e.path().find("/forwarding"), std::string::npos) << e.what();
        }
    }
    EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
    EXPECT_FALSE(ctr_test::has_children());
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
}

TEST(nat, a_bad_link_is_named_in_the_error) {
    CTR_SKIP_WITHOUT_NFTABLES();
    small_internet net;
    ctr::net::veth_info info;
    info.host_name = "no-such-link";
    info.host_address = ipv4_interface::parse("10.231.0.1/30");
    try {
        auto rule = ctr::net::outbound_nat::add(info);
        ADD_FAILURE() << "no error";
    } catch (const ctr::error& e) {
        EXPECT_NE(std::string(e.what()).find("no-such-link"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
}

}  // namespace
