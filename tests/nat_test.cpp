// Outbound NAT (net::veth::outbound, outbound.hpp): a veth sandbox reaches a
// server beyond the host, masqueraded behind the host's address; ctr's
// nftables table goes with the last sandbox, and after a crash with
// reap_stale_outbound. Each test builds its own small internet from network
// namespaces made here, inside the one the test main made: this thread's
// namespace plays the host, another the router, which carries the server on
// 198.51.100.200 (a documentation address) behind it. No packet reaches a
// real interface, and each test checks that the namespace it started in kept
// its forwarding switches and has no ctr table.
#include "support.hpp"

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

const ipv4_address server_address = ipv4_address::parse("198.51.100.200");
const ipv4_interface host_uplink = ipv4_interface::parse("198.51.100.1/25");
const ipv4_interface router_downlink = ipv4_interface::parse("198.51.100.126/25");
constexpr int server_port = 8000;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::string text;
    std::getline(in, text);
    return text;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    ASSERT_TRUE(out.good()) << path;
}

ctr::unique_fd current_network_namespace() {
    return ctr::unique_fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
}

// What must be the same after a test in the namespace it started in.
struct outside_state {
    std::string all_forwarding = read_file("/proc/sys/net/ipv4/conf/all/forwarding");
    std::string default_forwarding = read_file("/proc/sys/net/ipv4/conf/default/forwarding");
    bool ctr_table = ctr::net::detail::nftables_socket::open().table_exists("ctr");
    bool operator==(const outside_state&) const = default;
};

// The host (this thread, while it lives) with an uplink "up0" to the router
// and a default route through it; the router has the server's address on
// its loopback and no route back to the sandboxes' pool, so only
// masqueraded traffic can be answered. Forwarding starts off everywhere in
// the host, whatever the test main's namespace had, so that the sandbox's
// way out depends on what ctr turns on.
struct small_internet {
    ctr::ns::scope host{ctr::ns::kinds(ctr::ns::network)};
    ctr::unique_fd router;
    std::optional<ctr::net::veth_pair> uplink;
    int listener = -1;

    small_internet() {
        write_file("/proc/sys/net/ipv4/conf/all/forwarding", "0");
        write_file("/proc/sys/net/ipv4/conf/default/forwarding", "0");
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
        ctr::ns::scope in_router({ctr::ns::existing::fd(ctr::ns::network, router.get())});
        ctr::net::configure_interface("down0", router_downlink);
        auto netlink = ctr::net::detail::rtnetlink::open();
        EXPECT_EQ(ctr::net::detail::add_address(netlink, static_cast<int>(ctr::net::detail::interface_index("lo")),
                                                ipv4_interface{server_address, 32}),
                  0);
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
    }

    // Answers one connection with the address it came from.
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
    // Wakes a serve_one whose client never came.
    void stop_serving() { shutdown(listener, SHUT_RDWR); }
};

std::vector<std::string> ask_server() {
    return helper({"tcp-send", server_address.to_string(), std::to_string(server_port), "hello"});
}

TEST(nat, an_outbound_sandbox_reaches_a_server_beyond_the_host_behind_the_hosts_address) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
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

TEST(nat, without_outbound_the_same_sandbox_cannot_reach_the_server) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const outside_state before;
    {
        small_internet net;
        std::thread server = net.serve_one();
        // The host's end of the pair does not forward, and the kernel then
        // drops the sandbox's packets without a word (no ICMP): the connect
        // waits until the timeout ends the sandbox.
        auto child = spawn(ask_server(), {.std_out = stdio::capture(),
                                          .timeout = std::chrono::milliseconds(1500),
                                          .network = ctr::net::veth{}});
        const auto r = child.wait();
        net.stop_serving();
        server.join();
        EXPECT_TRUE(r.timed_out) << r.std_out;
        EXPECT_EQ(r.std_out.find("server saw"), std::string::npos) << r.std_out;
        EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

TEST(nat, forwarding_alone_is_not_enough_the_masquerade_rule_is_what_brings_answers_back) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    small_internet net;
    // Every interface of the host forwards, but nothing is masqueraded: the
    // router has no route back to the sandbox's own address, so the
    // connection never completes and the timeout ends the sandbox.
    write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1");
    write_file("/proc/sys/net/ipv4/conf/default/forwarding", "1");
    std::thread server = net.serve_one();
    auto child = spawn(ask_server(), {.std_out = stdio::capture(),
                                      .timeout = std::chrono::milliseconds(1500),
                                      .network = ctr::net::veth{}});
    const auto r = child.wait();
    net.stop_serving();
    server.join();
    EXPECT_EQ(r.std_out.find("server saw"), std::string::npos) << r.std_out;
    EXPECT_TRUE(r.timed_out) << r.std_out;
}

TEST(nat, the_table_holds_one_rule_per_sandbox_and_goes_with_the_last) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
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

TEST(nat, reap_stale_removes_the_rule_a_crashed_caller_left_and_the_table_with_it) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const outside_state before;
    {
        small_internet net;
        auto nft = ctr::net::detail::nftables_socket::open();
        // A sandbox's link, and a process that adds its rule and dies
        // without removing it, as a crashed caller would.
        ctr::unique_fd sandbox;
        {
            ctr::ns::scope fresh{ctr::ns::kinds(ctr::ns::network)};
            sandbox = current_network_namespace();
        }
        auto pair = ctr::net::create_veth(ctr::net::veth{}, ctr::net::peer_namespace::from_fd(sandbox.get()));
        const pid_t crashing = fork();
        ASSERT_GE(crashing, 0);
        if (crashing == 0) {
            try {
                auto rule = ctr::net::outbound_nat::add(pair.info());
                _exit(0);  // no destructors: the rule stays
            } catch (...) {
                _exit(1);
            }
        }
        int status = 0;
        ASSERT_EQ(waitpid(crashing, &status, 0), crashing);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ASSERT_EQ(nft.rules("ctr", "postrouting").size(), 1u);
        EXPECT_EQ(ctr::net::reap_stale_outbound(), 0u) << "the link still exists";
        pair.host_link().remove();
        EXPECT_EQ(ctr::net::reap_stale_outbound(), 1u);
        EXPECT_FALSE(nft.table_exists("ctr"));
        EXPECT_EQ(ctr::net::reap_stale_outbound(), 0u);
    }
    EXPECT_TRUE(outside_state{} == before) << "the test's own namespace changed";
}

TEST(nat, a_bad_link_is_named_in_the_error) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
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
