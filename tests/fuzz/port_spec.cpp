// Fuzz target: -p port specs (net::port_mapping::parse:
// "[[IP:]HOSTPORT:]CONTAINERPORT[/tcp|/udp]") and the IPv4 addresses in them
// (net::ipv4_address::parse, net::ipv4_interface::parse).
//
// Also port_mapping::parse_range ("8000-8003:80-83").
//
// Properties: only ctr::error(EINVAL) for bad text; a mapping written back
// in full ("IP:HOSTPORT:PORT/PROTO") parses to the same mapping, with a
// container port of 1 to 65535; an address or interface written back
// parses to itself.
#include "fuzz.hpp"

#include <ctr/port_forward.hpp>

#include <cerrno>
#include <string_view>
#include <vector>

namespace net = ctr::net;

namespace {

template <typename Parse>
void expect_einval_only(Parse parse) {
    try {
        parse();
    } catch (const ctr::error& e) {
        CTR_FUZZ_CHECK(e.code().value() == EINVAL, "errno %d: %s", e.code().value(), e.what());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);

    expect_einval_only([&] {
        const net::port_mapping m = net::port_mapping::parse(text);
        CTR_FUZZ_CHECK(m.container_port >= 1, "container port 0");
        // Without an address for Docker's both-families default ("8080:80"),
        // which an explicit 0.0.0.0 is not; an IPv6 one in brackets.
        const bool both = m.also_ipv6 && !m.host_address.is_ipv6() && m.host_address.is_unspecified();
        const std::string ports = std::to_string(m.container_port) + "/" + std::string(net::to_string(m.proto));
        const std::string full =
            both ? (m.host_port ? std::to_string(m.host_port) + ":" : std::string()) + ports
                 : m.host_address.to_string_bracketed() + ":" + (m.host_port ? std::to_string(m.host_port) : "") +
                       ":" + ports;
        net::port_mapping again;
        try {
            again = net::port_mapping::parse(full);
        } catch (const ctr::error& e) {
            CTR_FUZZ_CHECK(false, "'%s' (written back) is refused: %s", full.c_str(), e.what());
        }
        CTR_FUZZ_CHECK(again == m, "'%s' reads back as another mapping", full.c_str());
    });

    // Ranges: every mapping of one is the first with both ports moved on by
    // its index; text without a '-' gives what parse gives.
    expect_einval_only([&] {
        const std::vector<net::port_mapping> all = net::port_mapping::parse_range(text);
        CTR_FUZZ_CHECK(!all.empty() && all.size() <= 65535, "%zu mappings", all.size());
        for (std::size_t i = 0; i < all.size(); ++i) {
            const net::port_mapping& m = all[i];
            CTR_FUZZ_CHECK(m.container_port >= 1, "container port 0");
            CTR_FUZZ_CHECK(m.container_port == all[0].container_port + i, "container ports not consecutive");
            CTR_FUZZ_CHECK(m.host_port == (all[0].host_port == 0 ? 0 : all[0].host_port + i), "host ports not consecutive");
            CTR_FUZZ_CHECK(m.proto == all[0].proto && m.host_address == all[0].host_address, "mixed address or protocol");
        }
        if (text.find('-') == std::string_view::npos)
            CTR_FUZZ_CHECK(all.size() == 1 && all[0] == net::port_mapping::parse(text), "not what parse reads");
    });

    expect_einval_only([&] {
        const net::ipv6_address a = net::ipv6_address::parse(text);
        CTR_FUZZ_CHECK(net::ipv6_address::parse(a.to_string()) == a, "%s does not read back", a.to_string().c_str());
    });

    expect_einval_only([&] {
        const net::ipv4_address a = net::ipv4_address::parse(text);
        CTR_FUZZ_CHECK(net::ipv4_address::parse(a.to_string()) == a, "%s does not read back", a.to_string().c_str());
        CTR_FUZZ_CHECK(net::ipv4_address::from_host_order(a.host_order()) == a, "host order round trip");
    });

    expect_einval_only([&] {
        const net::ipv4_interface i = net::ipv4_interface::parse(text);
        CTR_FUZZ_CHECK(i.prefix_length <= 32, "prefix /%u", unsigned{i.prefix_length});
        const std::string written = i.address.to_string() + "/" + std::to_string(i.prefix_length);
        const net::ipv4_interface again = net::ipv4_interface::parse(written);
        CTR_FUZZ_CHECK(again.address == i.address && again.prefix_length == i.prefix_length, "%s does not read back",
                       written.c_str());
        CTR_FUZZ_CHECK(i.contains(i.address), "%s does not contain its own address", written.c_str());
    });
    return 0;
}
