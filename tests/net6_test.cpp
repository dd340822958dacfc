// IPv6 on a veth sandbox (net::veth::ipv6): the addresses of both ends from
// ctr's ULA prefix, usable at once (no duplicate address detection), the
// default route inside, traffic both ways, and IPv4 alone where the kernel
// has no IPv6 or it is disabled. Everything runs in the network namespace the
// test main made, or in fresh ones made here, which play the host: no packet
// reaches a real interface.
#include "net_host.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace {

using ctr::net::ipv6_address;
using ctr::net::ipv6_interface;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;

TEST(net6, addresses_are_parsed_and_printed_in_the_rfc_5952_form) {
    const std::pair<const char*, const char*> cases[] = {
        {"::", "::"},
        {"::1", "::1"},
        {"fd63:7472::1", "fd63:7472::1"},
        {"FD63:7472:0:0:0:0:0:2", "fd63:7472::2"},
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},  // the first of two equal runs
        {"2001:db8::", "2001:db8::"},
        {"2001:0db8:0000:0001:0000:0000:0000:0001", "2001:db8:0:1::1"},  // a lone zero group stays
        {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
    };
    for (const auto& [text, shown] : cases) EXPECT_EQ(ipv6_address::parse(text).to_string(), shown) << text;
    for (const char* bad : {"", ":", ":::", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "g::",
                            "1:", ":1", "1::2:", "::ffff:1.2.3.4", "1:2:3:4:5:6:7::8"}) {
        try {
            (void)ipv6_address::parse(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.code().value(), EINVAL) << bad;
            EXPECT_EQ(e.path(), bad);
        }
    }
    const auto subnet = ipv6_interface::parse("fd63:7472:0:5::2/64");
    EXPECT_EQ(subnet.network().to_string(), "fd63:7472:0:5::");
    EXPECT_TRUE(subnet.contains(ipv6_address::parse("fd63:7472:0:5:ffff::1")));
    EXPECT_FALSE(subnet.contains(ipv6_address::parse("fd63:7472:0:6::1")));
    EXPECT_THROW((void)ipv6_interface::parse("fd63::1/129"), ctr::error);
    EXPECT_THROW((void)ipv6_interface::parse("fd63::1"), ctr::error);
}

TEST(net6, veth_gives_both_ends_ula_addresses_usable_at_once_and_a_default_route_inside) {
    CTR_SKIP_WITHOUT_IPV6();
    auto child = spawn(helper({"addresses6"}), {.std_out = stdio::capture(), .network = ctr::net::veth{}});
    const ctr::net::veth_info info = *child.network();
    const auto r = child.wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out;
    ASSERT_TRUE(info.host_ipv6.has_value());
    ASSERT_TRUE(info.container_ipv6.has_value());
    EXPECT_EQ(info.host_ipv6->prefix_length, 64);
    EXPECT_TRUE(info.host_ipv6->contains(info.container_ipv6->address));
    EXPECT_TRUE(ctr::net::veth{}.ipv6_pool.contains(info.host_ipv6->address)) << info.host_ipv6->to_string();
    // The /64 goes with the /30: its subnet ID is the /30's slot.
    const std::uint32_t slot = (info.host_address.network().host_order() & 0xffff) >> 2;
    EXPECT_EQ(info.host_ipv6->address.group(3), slot);
    // Not "tentative": the address works as soon as the command starts.
    EXPECT_NE(r.std_out.find("eth0 " + info.container_ipv6->to_string() + "\n"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("default6 via " + info.host_ipv6->address.to_string() + " dev eth0"), std::string::npos)
        << r.std_out;
    EXPECT_NE(r.std_out.find("lo ::1/128"), std::string::npos) << r.std_out;
    // The host end has fe80::1, not tentative either: the address a router
    // needs to ask for a forwarded packet's next hop.
    std::ifstream addresses("/proc/net/if_inet6");
    std::string hex, index, prefix, scope, flags, name;
    bool link_local = false;
    while (addresses >> hex >> index >> prefix >> scope >> flags >> name)
        if (name == info.host_name && hex == "fe800000000000000000000000000001")
            link_local = (std::stoul(flags, nullptr, 16) & 0x40) == 0;
    EXPECT_TRUE(link_local) << "no usable fe80::1 on " << info.host_name;
}

// Whether /proc/net/if_inet6 of the current namespace shows `hex` on `link`
// as tentative (IFA_F_TENTATIVE, 0x40): empty when the address is not there.
std::optional<bool> tentative(const std::string& link, const std::string& hex) {
    std::ifstream addresses("/proc/net/if_inet6");
    std::string address, index, prefix, scope, flags, name;
    while (addresses >> address >> index >> prefix >> scope >> flags >> name)
        if (name == link && address == hex) return (std::stoul(flags, nullptr, 16) & 0x40) != 0;
    return std::nullopt;
}

TEST(net6, an_address_added_with_duplicate_address_detection_is_tentative_at_first) {
    CTR_SKIP_WITHOUT_IPV6();
    // The negative control of "not tentative" above: the same check sees an
    // address that DAD holds back. A pair whose ends both stay in a
    // namespace of this test's own, up (DAD runs only with a carrier), and
    // an address added without IFA_F_NODAD.
    ctr::ns::scope host{ctr::ns::kinds(ctr::ns::network)};
    ctr::unique_fd here = ctr_test::current_network_namespace();
    auto pair = ctr::net::create_veth(
        ctr::net::veth{.host_name = "dad0",
                       .container_name = "dad1",
                       .host_address = ctr::net::ipv4_interface::parse("198.51.100.1/30"),
                       .container_address = ctr::net::ipv4_interface::parse("198.51.100.2/30"),
                       .ipv6 = false},
        ctr::net::peer_namespace::from_fd(here.get()));
    ctr::net::configure_interface("dad1", ctr::net::ipv4_interface::parse("198.51.100.2/30"));
    ctr_test::write_sysctl("/proc/sys/net/ipv6/conf/dad0/dad_transmits", "3");
    auto netlink = ctr::net::detail::rtnetlink::open();
    ctr::net::detail::netlink_message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg h{};
    h.ifa_family = AF_INET6;
    h.ifa_prefixlen = 64;
    h.ifa_index = static_cast<unsigned>(pair.info().host_index);
    m.add_header(h);
    const in6_addr address = ipv6_address::parse("2001:db8:5::1").to_in6_addr();
    m.add_attribute(IFA_LOCAL, &address, sizeof address);
    ASSERT_EQ(netlink.request(m), 0) << netlink.last_message();
    EXPECT_EQ(tentative("dad0", "20010db8000500000000000000000001"), std::optional<bool>(true));
    // And with IFA_F_NODAD, as ctr adds its addresses, not.
    ASSERT_EQ(ctr::net::detail::add_address(netlink, pair.info().host_index,
                                            ipv6_interface::parse("2001:db8:5::2/64")),
              0);
    EXPECT_EQ(tentative("dad0", "20010db8000500000000000000000002"), std::optional<bool>(false));
}

TEST(net6, ipv6_false_gives_ipv4_alone) {
    CTR_SKIP_WITHOUT_IPV6();
    // The negative control of the test above: the same probe finds no IPv6
    // address on eth0 and no IPv6 default route.
    auto child = spawn(helper({"addresses6"}),
                       {.std_out = stdio::capture(), .network = ctr::net::veth{.ipv6 = false}});
    const ctr::net::veth_info info = *child.network();
    const auto r = child.wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_FALSE(info.host_ipv6.has_value());
    EXPECT_FALSE(info.container_ipv6.has_value());
    EXPECT_EQ(r.std_out.find("eth0"), std::string::npos) << r.std_out;
    EXPECT_EQ(r.std_out.find("default6"), std::string::npos) << r.std_out;
}

TEST(net6, explicit_ipv6_addresses_are_used) {
    CTR_SKIP_WITHOUT_IPV6();
    auto child = spawn(helper({"addresses6"}),
                       {.std_out = stdio::capture(),
                        .network = ctr::net::veth{.host_ipv6 = ipv6_interface::parse("fd00:db8:1::a/120"),
                                                  .container_ipv6 = ipv6_interface::parse("fd00:db8:1::b/120")}});
    const auto r = child.wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_NE(r.std_out.find("eth0 fd00:db8:1::b/120\n"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("default6 via fd00:db8:1::a dev eth0"), std::string::npos) << r.std_out;
}

TEST(net6, bad_ipv6_options_are_refused_before_anything_starts) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const std::pair<ctr::net::veth, const char*> cases[] = {
        {{.host_ipv6 = ipv6_interface::parse("fd00::1/64")}, "both IPv6"},
        {{.host_ipv6 = ipv6_interface::parse("fd00::1/64"), .container_ipv6 = ipv6_interface::parse("fd01::2/64")},
         "not in the host end's subnet"},
        {{.host_ipv6 = ipv6_interface::parse("fd00::1/64"), .container_ipv6 = ipv6_interface::parse("fd00::1/64")},
         "same IPv6 address"},
        {{.ipv6_pool = ipv6_interface::parse("fd00::/56")}, "/48 or wider"},
    };
    for (const auto& [options, reason] : cases) {
        try {
            (void)spawn(helper({"exit", "0"}), {.network = options});
            ADD_FAILURE() << "accepted: " << reason;
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::prepare) << e.what();
            EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
        }
    }
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(net6, the_host_and_the_sandbox_talk_over_ipv6_both_ways) {
    CTR_SKIP_WITHOUT_IPV6();
    // In: a client here reaches a server inside, which sees the host end's address.
    auto server = spawn(helper({"tcp6-peer", "7000", "1"}), {.std_out = stdio::pipe(), .network = ctr::net::veth{}});
    ASSERT_EQ(ctr_test::read_line_of(server.std_out().get()), "listening\n");
    const ctr::net::veth_info info = *server.network();
    ASSERT_TRUE(info.container_ipv6);
    const auto reply = ctr_test::tcp6_exchange(info.container_ipv6->address, 7000, "hi\n");
    EXPECT_EQ(reply, "saw " + info.host_ipv6->address.to_string() + "\n");
    EXPECT_EQ(server.wait().exit_code, 0);

    // Out: the sandbox reaches a server on the host end's address, which
    // sees the sandbox's (explicit addresses: the client needs the host
    // end's before it starts).
    ctr_test::one_shot_server6 host_side(ipv6_address{}, 7001);
    auto explicit_client = spawn(
        helper({"tcp6-send", "fd00:db8:2::1", "7001", "hello\n"}),
        {.std_out = stdio::capture(),
         .network = ctr::net::veth{.host_ipv6 = ipv6_interface::parse("fd00:db8:2::1/64"),
                                   .container_ipv6 = ipv6_interface::parse("fd00:db8:2::2/64")}});
    const auto r = explicit_client.wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_EQ(r.std_out, "host got hello\n from fd00:db8:2::2");
}

TEST(net6, a_host_with_ipv6_disabled_gives_ipv4_alone_without_an_error) {
    CTR_SKIP_WITHOUT_IPV6();
    // A namespace of this test's own plays a host whose new links come
    // without IPv6 (net.ipv6.conf.default.disable_ipv6 = 1).
    ctr::ns::scope host{ctr::ns::kinds(ctr::ns::network)};
    ctr_test::write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    auto child = spawn(helper({"addresses"}), {.std_out = stdio::capture(), .network = ctr::net::veth{}});
    const ctr::net::veth_info info = *child.network();
    const auto r = child.wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_FALSE(info.host_ipv6.has_value());
    EXPECT_NE(r.std_out.find("eth0 " + info.container_address.to_string() + " up"), std::string::npos) << r.std_out;
}

}  // namespace
