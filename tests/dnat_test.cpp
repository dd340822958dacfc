// Published ports by the kernel's DNAT (net::veth::publish, port_nat.hpp):
// a client elsewhere, one on the host's loopback and one on the host's own
// address reach a server inside the sandbox through the host port, and the
// server sees the remote client's own address (through the user-space relay
// it sees the relay's, which shows the check can tell them apart); the
// sandbox cannot use route_localnet to reach the host's loopback; the rules
// go with the sandbox, and after a crash with reap_stale_outbound.
//
// Each test builds its own small internet from network namespaces made here,
// inside the one the test main made (net_host.hpp): this thread's namespace
// plays the host, another the router, where the outside client connects
// from (198.51.100.126, a documentation address, to the host's
// 198.51.100.1). No packet reaches a real interface; each test checks that
// the namespace it started in kept its switches and has no ctr table, and
// that a table of the host's own outlived ctr's.
#include "net_host.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using ctr::net::ipv4_address;
using ctr::net::ipv4_interface;
using ctr::net::port_mapping;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;
using ctr_test::small_internet;

const ipv4_address host_address = small_internet::host_uplink.address;       // 198.51.100.1
const ipv4_address client_address = small_internet::router_downlink.address;  // 198.51.100.126
const ipv4_address loopback = ipv4_address::parse("127.0.0.1");
constexpr std::uint16_t host_port = 18080;

std::string sysctl(const std::string& link, const std::string& name) {
    return ctr_test::read_first_line("/proc/sys/net/ipv4/conf/" + link + "/" + name);
}

// What must be the same after a test in the namespace it started in.
struct outside_state {
    std::string all_forwarding = sysctl("all", "forwarding");
    std::string all_route_localnet = sysctl("all", "route_localnet");
    std::string lo_route_localnet = sysctl("lo", "route_localnet");
    bool ctr_table = ctr::net::detail::nftables_socket::open().table_exists("ctr");
    bool operator==(const outside_state&) const = default;
};

// The names of every nftables table of the current namespace.
std::set<std::string> tables() {
    namespace d = ctr::net::detail;
    auto netlink = d::rtnetlink::open(NETLINK_NETFILTER, "NETLINK_NETFILTER");
    auto m = d::nft_message(NFT_MSG_GETTABLE, 0, AF_UNSPEC);
    std::set<std::string> out;
    const long r = netlink.dump(m, [&](const nlmsghdr& h) {
        if (h.nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return;
        const char* attributes = reinterpret_cast<const char*>(NLMSG_DATA(&h)) + d::netlink_align(sizeof(nfgenmsg));
        d::for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(d::netlink_align(sizeof(nfgenmsg))),
                              [&](std::uint16_t type, const char* p, std::size_t n) {
                                  if (type == NFTA_TABLE_NAME) out.emplace(p, strnlen(p, n));
                              });
    });
    EXPECT_EQ(r, 0);
    return out;
}

// A table of the host's own, "ip keep", with a chain and a rule, which ctr
// must leave as it was.
void add_hosts_own_table() {
    namespace d = ctr::net::detail;
    auto nft = d::nftables_socket::open();
    std::vector<d::netlink_message> batch;
    batch.push_back(d::new_table_message("keep"));
    batch.push_back(d::new_nat_chain_message("keep", "postrouting"));
    // (A source no test packet has: it must not rewrite theirs.)
    batch.push_back(d::masquerade_rule_message("keep", "postrouting", ipv4_interface::parse("203.0.113.0/24"), "up0",
                                               "the host's own"));
    nft.commit(std::move(batch), 0, "the test's own table");
}

void expect_only_the_hosts_own_table() {
    EXPECT_EQ(tables(), std::set<std::string>{"keep"});
    const auto rules = ctr::net::detail::nftables_socket::open().rules("keep", "postrouting");
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(rules[0].comment, "the host's own");
}

// Connects to address:port from the current thread's namespace and returns
// the server's one line ("saw ADDRESS"), or what went wrong. The time
// limits only guard against a hang.
std::string ask(const ipv4_address& address, std::uint16_t port) {
    const ctr::unique_fd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const timeval limit{10, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr = address.to_in_addr();
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
        return std::string("connect: ") + std::strerror(errno);
    if (write(s.get(), "hello\n", 6) != 6) return std::string("write: ") + std::strerror(errno);
    std::string reply;
    char buffer[256];
    for (ssize_t n; reply.find('\n') == std::string::npos && (n = read(s.get(), buffer, sizeof buffer)) > 0;)
        reply.append(buffer, static_cast<std::size_t>(n));
    return reply.substr(0, reply.find('\n'));
}

// The same from the router's namespace: a client on another machine.
std::string ask_from_router(small_internet& net, const ipv4_address& address, std::uint16_t port) {
    std::string out;
    std::thread client([&] {
        ctr::ns::scope in_router({ctr::ns::existing::fd(ctr::ns::network, net.router.get())});
        out = ask(address, port);
    });
    client.join();
    return out;
}

// A sandbox whose server answers `count` connections on port 80 with the
// address it saw, published on host_port as `mapping` says.
ctr::process::child serve(int count, std::vector<port_mapping> publish = {}) {
    auto child = spawn(helper({"tcp-peer", "80", std::to_string(count)}),
                       {.std_out = stdio::pipe(),
                        .timeout = std::chrono::seconds(60),  // a hang guard only
                        .network = ctr::net::veth{.publish = std::move(publish)}});
    EXPECT_EQ(ctr_test::read_line_of(child.std_out().get()), "listening\n");
    return child;
}

TEST(dnat, clients_elsewhere_on_loopback_and_on_the_host_reach_the_server_and_it_sees_the_remote_ones_address) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    const outside_state before;
    {
        small_internet net;
        add_hosts_own_table();
        auto child = serve(3, {port_mapping::parse("18080:80")});
        const auto& made = *child.network();
        ASSERT_EQ(made.published.size(), 1u);
        EXPECT_EQ(made.published[0].host_port, host_port);
        // From the router, as a client on another machine: the server sees
        // that client's own address.
        EXPECT_EQ(ask_from_router(net, host_address, host_port), "saw " + client_address.to_string());
        // From the host's loopback: through the host end, masqueraded.
        EXPECT_EQ(ask(loopback, host_port), "saw " + made.host_address.address.to_string());
        // From the host on its own address: that address.
        EXPECT_EQ(ask(host_address, host_port), "saw " + host_address.to_string());
        // route_localnet on ctr's link only.
        EXPECT_EQ(sysctl(made.host_name, "route_localnet"), "1");
        EXPECT_EQ(sysctl("all", "route_localnet"), "0");
        EXPECT_EQ(sysctl("lo", "route_localnet"), "0");
        EXPECT_EQ(sysctl("up0", "route_localnet"), "0");
        const auto r = child.wait();
        EXPECT_EQ(r.exit_code, 0);
        EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr")) << "the rules outlived the sandbox";
        expect_only_the_hosts_own_table();
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

TEST(dnat, through_the_user_space_relay_the_server_sees_the_relays_address_instead) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    small_internet net;
    auto child = serve(1);
    ctr::net::port_forwarder relay({port_mapping::parse("18080:80")});
    relay.start(child.network()->container_address.address);
    // The same question as above: the answer names the host end, not the client.
    EXPECT_EQ(ask_from_router(net, host_address, host_port), "saw " + child.network()->host_address.address.to_string())
        << relay.stats().tcp_connections << " connections, " << relay.stats().tcp_connect_failures << " failed";
    EXPECT_EQ(child.wait().exit_code, 0);
}

TEST(dnat, a_port_the_kernel_picks_and_a_specific_address_are_published) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    small_internet net;
    // Port 0: one the kernel picks, bound while the sandbox lives. An
    // address of the host's: only connections to it are rewritten.
    auto child = serve(2, {port_mapping::parse("127.0.0.1::80"), port_mapping::parse("198.51.100.1:18081:80")});
    const auto& published = child.network()->published;
    ASSERT_EQ(published.size(), 2u);
    EXPECT_NE(published[0].host_port, 0);
    EXPECT_EQ(ask(loopback, published[0].host_port), "saw " + child.network()->host_address.address.to_string());
    EXPECT_EQ(ask_from_router(net, host_address, 18081), "saw " + client_address.to_string());
    // Nothing published on loopback at 18081.
    EXPECT_EQ(ask(loopback, 18081), std::string("connect: ") + std::strerror(ECONNREFUSED));
    EXPECT_EQ(child.wait().exit_code, 0);
}

TEST(dnat, the_sandbox_reaches_its_own_published_port_through_the_hosts_address) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    small_internet net;
    auto child = serve(1, {port_mapping::parse("18080:80")});
    // A client in the sandbox's own namespace, at the host's address: the
    // rewritten packet goes back out by the link it came in on, and the
    // host masquerades it, so that the answer comes back through the host.
    auto client = spawn(helper({"tcp-ask", host_address.to_string(), std::to_string(host_port), "hi"}),
                        {.std_out = stdio::capture(),
                         .timeout = std::chrono::seconds(30),
                         .join = {ctr::ns::existing::path(ctr::ns::network,
                                                          "/proc/" + std::to_string(child.pid()) + "/ns/net")}});
    const auto r = client.wait();
    EXPECT_EQ(r.std_out, "saw " + child.network()->host_address.address.to_string() + "\n");
    EXPECT_EQ(child.wait().exit_code, 0);
}

TEST(dnat, a_busy_host_port_fails_the_launch_and_leaves_nothing) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    small_internet net;
    const int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(host_port);
    ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&at), sizeof at), 0) << std::strerror(errno);
    ASSERT_EQ(listen(busy, 1), 0);
    try {
        (void)spawn(helper({"exit", "0"}), {.network = ctr::net::veth{.publish = {port_mapping::parse("18080:80")}}});
        ADD_FAILURE() << "accepted";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::publish_port) << e.what();
        EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
        EXPECT_EQ(e.path(), "0.0.0.0:18080/tcp") << e.what();
    }
    close(busy);
    EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
    EXPECT_FALSE(ctr_test::has_children());
}

// route_localnet opens the host's loopback to whatever comes in on the
// link, and a sandbox's root can send there (CVE-2020-8558 in kube-proxy);
// the guard in ctr's table closes it again. First route_localnet set by
// hand on a link without ctr's rules: the sandbox reaches a server on the
// host's 127.0.0.1, which shows that the probe would catch it. Then the
// same with published ports, whose rules set it: the sandbox does not.
TEST(dnat, a_sandbox_cannot_reach_the_hosts_loopback_through_the_route_localnet_of_its_link) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    small_internet net;
    constexpr int secret_port = 18099;
    {
        ctr_test::one_shot_server secret(loopback, secret_port);
        auto child = spawn(helper({"after-stdin", "loopback-escape", std::to_string(secret_port)}),
                           {.std_in = stdio::pipe(),
                            .std_out = stdio::capture(),
                            .timeout = std::chrono::seconds(30),
                            .network = ctr::net::veth{}});
        ctr_test::write_sysctl("/proc/sys/net/ipv4/conf/" + child.network()->host_name + "/route_localnet", "1");
        ASSERT_EQ(write(child.std_in().get(), "\n", 1), 1);
        const auto r = child.wait();
        ASSERT_EQ(r.std_out, "host got hi\n") << "without the guard the probe must get through";
    }
    {
        ctr_test::one_shot_server secret(loopback, secret_port);
        auto child = spawn(helper({"after-stdin", "loopback-escape", std::to_string(secret_port)}),
                           {.std_in = stdio::pipe(),
                            .std_out = stdio::capture(),
                            .timeout = std::chrono::seconds(30),
                            .network = ctr::net::veth{.publish = {port_mapping::parse("18080:80")}}});
        EXPECT_EQ(sysctl(child.network()->host_name, "route_localnet"), "1");
        ASSERT_EQ(write(child.std_in().get(), "\n", 1), 1);
        const auto r = child.wait();
        EXPECT_EQ(r.std_out.find("host got"), std::string::npos) << r.std_out;
        EXPECT_NE(r.exit_code, 0) << r.std_out;
    }
}

TEST(dnat, a_failure_after_the_rules_are_in_deletes_them_and_names_the_switch) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    namespace sys = ctr::detail::sys;
    small_internet net;
    // IPv4 alone, so that no IPv6 forwarding switch is written either.
    auto pair = ctr::net::create_veth(ctr::net::veth{.host_name = "pub0",
                                                     .host_address = ipv4_interface::parse("10.99.0.1/30"),
                                                     .container_address = ipv4_interface::parse("10.99.0.2/30"),
                                                     .ipv6 = false},
                                      ctr::net::peer_namespace::from_fd(net.router.get()));
    // Forwarding on already, so that route_localnet, written after the
    // rules, is the only switch left to write.
    ctr_test::write_sysctl("/proc/sys/net/ipv4/conf/pub0/forwarding", "1");
    ctr_test::write_sysctl("/proc/sys/net/ipv4/conf/up0/forwarding", "1");
    const auto fds_before = ctr_test::open_fds();
    {
        sys::fault_injection fault(sys::call::pwrite64, EROFS);
        try {
            auto rules = ctr::net::port_nat::add(pair.info(), {port_mapping::parse("18080:80")});
            ADD_FAILURE() << "accepted";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::configure_nat) << e.what();
            EXPECT_EQ(e.code().value(), EROFS) << e.what();
            EXPECT_EQ(e.path(), "/proc/sys/net/ipv4/conf/pub0/route_localnet") << e.what();
        }
    }
    EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
    EXPECT_EQ(sysctl("pub0", "route_localnet"), "0");
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    // The host port was released with the rules.
    auto again = ctr::net::port_nat::add(pair.info(), {port_mapping::parse("18080:80")});
    EXPECT_EQ(again.mappings().at(0).host_port, host_port);
}

// A forked caller publishes `mappings` for `link` and exits without
// removing the rules, as a crashed one would. True when it got as far as
// exiting.
bool publish_and_crash(const ctr::net::veth_info& link, std::vector<port_mapping> mappings) {
    const pid_t crashing = fork();
    if (crashing < 0) return false;
    if (crashing == 0) {
        try {
            auto rules = ctr::net::port_nat::add(link, std::move(mappings));
            _exit(0);  // no destructors: the rules stay
        } catch (...) {
            _exit(1);
        }
    }
    int status = 0;
    return waitpid(crashing, &status, 0) == crashing && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::size_t ctr_rules() {
    auto nft = ctr::net::detail::nftables_socket::open();
    std::size_t n = 0;
    for (const char* chain : ctr::net::detail::ctr_chains) n += nft.rules("ctr", chain).size();
    return n;
}

TEST(dnat, reap_stale_removes_a_crashed_callers_rules_once_its_link_is_gone_or_another_has_the_name) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    const outside_state before;
    {
        small_internet net;
        add_hosts_own_table();
        const auto make_link = [&] {
            // IPv4 alone: the rules counted below (IPv6 adds its own three).
            return ctr::net::create_veth(ctr::net::veth{.host_name = "crashed0",
                                                        .host_address = ipv4_interface::parse("10.99.0.1/30"),
                                                        .container_address = ipv4_interface::parse("10.99.0.2/30"),
                                                        .ipv6 = false},
                                         ctr::net::peer_namespace::from_fd(net.router.get()));
        };
        {
            auto pair = make_link();
            ASSERT_TRUE(publish_and_crash(pair.info(), {port_mapping::parse("18080:80")}));
            // Two DNAT rules, the hairpin and loopback masquerades and the two guards.
            EXPECT_EQ(ctr_rules(), 6u);
            EXPECT_EQ(ctr::net::reap_stale_outbound(), 0u) << "the link still exists";
            pair.host_link().remove();
            EXPECT_EQ(ctr::net::reap_stale_outbound(), 6u);
            EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
        }
        {
            // A new link that took the name: the old rules are stale all the same.
            std::optional<ctr::net::veth_pair> pair = make_link();
            ASSERT_TRUE(publish_and_crash(pair->info(), {port_mapping::parse("18080:80/udp")}));
            pair.reset();
            pair = make_link();
            EXPECT_EQ(ctr::net::reap_stale_outbound(), 6u);
            EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
        }
        expect_only_the_hosts_own_table();
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

TEST(dnat, outbound_and_published_ports_share_the_table_which_goes_with_the_last_rule) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    small_internet net;
    auto nft = ctr::net::detail::nftables_socket::open();
    auto published = spawn(helper({"sleep", "30"}),
                           {.network = ctr::net::veth{.publish = {port_mapping::parse("198.51.100.1:18080:80")}}});
    auto outbound = spawn(helper({"sleep", "30"}), {.network = ctr::net::veth{.outbound = true}});
    // Two DNAT rules and the hairpin masquerade (nothing for loopback at
    // that address), and the outbound masquerade.
    EXPECT_EQ(ctr_rules(), 4u);
    published.kill();
    (void)published.wait();
    EXPECT_EQ(ctr_rules(), 1u);
    EXPECT_TRUE(nft.table_exists("ctr"));
    outbound.kill();
    (void)outbound.wait();
    EXPECT_FALSE(nft.table_exists("ctr"));
}

}  // namespace
