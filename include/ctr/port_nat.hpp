#pragma once
// ctr::net::port_nat: a veth sandbox's published ports by the kernel's DNAT,
// over IPv4 and, where the sandbox has it, IPv6 (below),
// as Docker publishes them without its userland proxy. Rules in ctr's own
// nftables table ("ip ctr", the one outbound NAT uses) rewrite connections
// to a host port so that they go straight to the sandbox's address and
// port: no relay copies the bytes, and the server inside sees the client's
// own address.
//
//   chain prerouting (nat, dstnat -100): clients from elsewhere (other
//     hosts, other namespaces, other sandboxes);
//   chain output (nat, dstnat -100): clients on the host itself;
//   both: [fib daddr type local | ip daddr HOST] meta l4proto P th dport
//     HOSTPORT dnat to SANDBOX:PORT
//
// Loopback clients (127.0.0.1:HOSTPORT) need more, because the kernel keeps
// 127.0.0.0/8 off real interfaces: route_localnet on ctr's host link only
// (a packet from 127.0.0.1 may leave by it, and the answer to 127.0.0.1
// come in), a masquerade of 127.0.0.0/8 sources leaving by the link (the
// sandbox sees the host end's address and can answer), and, because
// route_localnet would otherwise let the sandbox itself reach the host's
// loopback services (CVE-2020-8558 in kube-proxy), a raw-priority filter
// that drops whatever comes in on the link to or from 127.0.0.0/8. These go
// only where a mapping listens on 0.0.0.0 or a loopback address. The
// sandbox's own source leaving by its own link is masqueraded too: the
// sandbox reaching its own published port at a host address (hairpin).
//
// Each host port is also bound (not listened on) in the caller's namespace
// while the rules live: a busy port fails as with the relay, port 0 becomes
// one the kernel picks, and no other program takes the port meanwhile.
// Forwarding goes on for the link and the default route's interface, as for
// outbound NAT (outbound.hpp), whose rule lifetime this follows: the rules
// carry the comment "ctr ports LINK PID.N INDEX", go with the owner, the
// table with the last rule of any of ctr's chains, and reap_stale_outbound()
// removes those of a crashed caller once the link is gone.
//
// IPv6: a mapping on an IPv6 address, or on 0.0.0.0 with also_ipv6 (the
// default: Docker's -p without an address publishes on [::] too), gets the
// same prerouting and output rules in "ip6 ctr", to the sandbox's IPv6
// address, and the hairpin masquerade. Not for loopback clients: IPv6 has
// no route_localnet, so a packet from ::1 cannot be sent to the sandbox
// (the rules leave ::1 alone and a client there is refused by the bound
// socket; a mapping on [::1] is refused, use 127.0.0.1 or the relay).

#include <ctr/detail/netlink.hpp>
#include <ctr/detail/nftables.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/detail/veth_options.hpp>
#include <ctr/error.hpp>
#include <ctr/outbound.hpp>
#include <ctr/port_mapping.hpp>
#include <ctr/unique_fd.hpp>

#include <linux/netfilter.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ctr::net {

namespace detail {

inline constexpr const char* dnat_chain = "prerouting";
inline constexpr const char* local_dnat_chain = "output";
inline constexpr const char* guard_chain = "guard";
inline const ipv4_interface loopback_network{{{127, 0, 0, 0}}, 8};

// Whether a client on the host's IPv4 loopback can reach the mapping's host side.
template <class = void>
inline bool reachable_on_loopback(const port_mapping& m) noexcept {
    return !m.host_address.is_ipv6() &&
           (m.host_address.is_unspecified() || loopback_network.contains(m.host_address.ipv4()));
}

// Whether the mapping is published over IPv6 to a sandbox that has it: an
// IPv6 host address, or 0.0.0.0 with also_ipv6 (then on [::] too).
template <class = void>
inline bool published_over_ipv6(const port_mapping& m, const veth_info& link) noexcept {
    return link.container_ipv6 && (m.host_address.is_ipv6() || (m.host_address.is_unspecified() && m.also_ipv6));
}

// Binds, without listening, a socket on the host side of `m` and sets its
// host port to the bound one, as the relay binds (bind_host_side); for
// 0.0.0.0 over IPv6 too, a second socket on [::] and the same port.
template <class = void>
inline void reserve_host_port(port_mapping& m, const veth_info& link, std::vector<unique_fd>& reserved) {
    std::uint16_t bound = 0;
    reserved.push_back(bind_host_side(m, 0, bound));
    m.host_port = bound;
    if (!m.host_address.is_ipv6() && published_over_ipv6(m, link)) {
        port_mapping v6 = m;
        v6.host_address = ipv6_address{};
        reserved.push_back(bind_host_side(v6, 0, bound));
    }
}

inline const ipv6_address ipv6_loopback{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};

// The same rules for IPv6, in "ip6 ctr": no loopback part (below), so
// none where there is nothing to publish over IPv6.
template <class = void>
inline void add_port_nat_rules6(std::vector<netlink_message>& batch, const veth_info& link,
                                const std::vector<port_mapping>& mappings, const std::string& comment) {
    bool any = false;
    for (const auto& m : mappings) any = any || published_over_ipv6(m, link);
    if (!any) return;
    constexpr std::uint8_t v6 = NFPROTO_IPV6;
    batch.push_back(new_table_message(nat_table, v6));
    batch.push_back(new_chain_message(nat_table, dnat_chain, NF_INET_PRE_ROUTING, -100, "nat", v6));
    batch.push_back(new_chain_message(nat_table, local_dnat_chain, NF_INET_LOCAL_OUT, -100, "nat", v6));
    batch.push_back(new_nat_chain_message(nat_table, nat_chain, v6));
    const ipv6_address sandbox = link.container_ipv6->address;
    for (const auto& m : mappings) {
        if (!published_over_ipv6(m, link)) continue;
        const std::uint8_t l4 = m.proto == protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
        for (const char* chain : {dnat_chain, local_dnat_chain}) {
            batch.push_back(rule_message(
                nat_table, chain, comment,
                [&](netlink_message& r) {
                    if (m.host_address.is_unspecified()) {
                        match_local_destination(r);
                        // Not ::1: IPv6 has no route_localnet, so a packet
                        // from ::1 rewritten towards the sandbox would be
                        // dropped as a martian. Left alone, a client there
                        // meets the bound, not listening, socket: refused at
                        // once instead of a connect that hangs.
                        add_load_payload(r, NFT_PAYLOAD_NETWORK_HEADER, ipv6_destination_offset, 16);
                        add_compare(r, NFT_CMP_NEQ, ipv6_loopback.bytes.data(), 16);
                    } else {
                        match_network(r, ipv6_destination_offset, ipv6_interface{m.host_address.ipv6(), 128});
                    }
                    match_destination_port(r, l4, m.host_port);
                    add_dnat(r, sandbox, m.container_port);
                },
                v6));
        }
    }
    // oifname LINK ip6 saddr SANDBOX masquerade: hairpin, as for IPv4.
    batch.push_back(rule_message(
        nat_table, nat_chain, comment,
        [&](netlink_message& r) {
            match_interface(r, NFT_META_OIFNAME, NFT_CMP_EQ, link.host_name);
            match_network(r, ipv6_source_offset, ipv6_interface{sandbox, 128});
            add_expression(r, "masq", [] {});
        },
        v6));
}

// The batch that publishes `mappings` (host ports bound) of the sandbox
// behind `link`: table, chains, rules.
template <class = void>
inline std::vector<netlink_message> port_nat_batch(const veth_info& link, const std::vector<port_mapping>& mappings,
                                                   const std::string& comment) {
    bool loopback = false;
    for (const auto& m : mappings) loopback = loopback || reachable_on_loopback(m);
    std::vector<netlink_message> batch;
    batch.push_back(new_table_message(nat_table));
    batch.push_back(new_chain_message(nat_table, dnat_chain, NF_INET_PRE_ROUTING, -100, "nat"));
    batch.push_back(new_chain_message(nat_table, local_dnat_chain, NF_INET_LOCAL_OUT, -100, "nat"));
    batch.push_back(new_nat_chain_message(nat_table, nat_chain));
    if (loopback) batch.push_back(new_chain_message(nat_table, guard_chain, NF_INET_PRE_ROUTING, -300, "filter"));
    const ipv4_address sandbox = link.container_address.address;
    for (const auto& m : mappings) {
        if (m.host_address.is_ipv6()) continue;
        const std::uint8_t l4 = m.proto == protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
        for (const char* chain : {dnat_chain, local_dnat_chain}) {
            batch.push_back(rule_message(nat_table, chain, comment, [&](netlink_message& r) {
                if (m.host_address.is_unspecified()) match_local_destination(r);
                else match_network(r, ipv4_destination_offset, ipv4_interface{m.host_address.ipv4(), 32});
                match_destination_port(r, l4, m.host_port);
                add_dnat(r, sandbox, m.container_port);
            }));
        }
    }
    // oifname LINK ip saddr SANDBOX masquerade: the sandbox reaching its own
    // published port through the host's address (hairpin), whose answer
    // must come back through the host too.
    batch.push_back(rule_message(nat_table, nat_chain, comment, [&](netlink_message& r) {
        match_interface(r, NFT_META_OIFNAME, NFT_CMP_EQ, link.host_name);
        match_network(r, ipv4_source_offset, ipv4_interface{sandbox, 32});
        add_expression(r, "masq", [] {});
    }));
    if (loopback) {
        // oifname LINK ip saddr 127.0.0.0/8 masquerade
        batch.push_back(rule_message(nat_table, nat_chain, comment, [&](netlink_message& r) {
            match_interface(r, NFT_META_OIFNAME, NFT_CMP_EQ, link.host_name);
            match_network(r, ipv4_source_offset, loopback_network);
            add_expression(r, "masq", [] {});
        }));
        // iifname LINK ip daddr 127.0.0.0/8 drop; iifname LINK ip saddr 127.0.0.0/8 drop.
        // Before conntrack: a loopback client's answers still carry the
        // host end's address here.
        for (const std::uint32_t offset : {ipv4_destination_offset, ipv4_source_offset}) {
            batch.push_back(rule_message(nat_table, guard_chain, comment, [&](netlink_message& r) {
                match_interface(r, NFT_META_IIFNAME, NFT_CMP_EQ, link.host_name);
                match_network(r, offset, loopback_network);
                add_drop(r);
            }));
        }
    }
    add_port_nat_rules6(batch, link, mappings, comment);
    return batch;
}

}  // namespace detail

// One sandbox's published ports, owned: the rules are deleted (and ctr's
// table with the last of them) and the host ports released when the owner
// ends. It keeps its own netlink socket, so it is removed from the right
// namespace whichever thread ends it.
template <class>
class [[nodiscard]] basic_port_nat {
public:
    basic_port_nat() = default;
    basic_port_nat(basic_port_nat&& other) noexcept
        : nft_(std::move(other.nft_)),
          comment_(std::move(other.comment_)),
          mappings_(std::move(other.mappings_)),
          reserved_(std::move(other.reserved_)) {
        other.nft_.reset();
    }
    basic_port_nat& operator=(basic_port_nat&& other) noexcept {
        if (this != &other) {
            remove_quietly();
            nft_ = std::move(other.nft_);
            comment_ = std::move(other.comment_);
            mappings_ = std::move(other.mappings_);
            reserved_ = std::move(other.reserved_);
            other.nft_.reset();
        }
        return *this;
    }
    ~basic_port_nat() { remove_quietly(); }

    explicit operator bool() const noexcept { return nft_.has_value(); }
    // The rules' comment, as `nft list table ip ctr` shows it.
    template <class = void>
    const std::string& comment() const noexcept { return comment_; }
    // The mappings with their bound host ports.
    template <class = void>
    const std::vector<port_mapping>& mappings() const noexcept { return mappings_; }

    // Deletes the rules now if there are any, best effort (what the destructor does).
    template <class = void>
    void reset() noexcept { remove_quietly(); }

    // Deletes the rules now, and the table if they were the last, and
    // releases the host ports.
    template <class = void>
    void remove() {
        reserved_.clear();
        if (!nft_) return;
        auto nft = std::move(*nft_);
        nft_.reset();
        detail::delete_outbound_rules(nft, [&](const detail::nft_rule_seen& rule) { return rule.comment == comment_; });
    }

    // Publishes `mappings` on the current thread's network namespace, to the
    // sandbox behind `link` (a veth's host end, its index and both
    // addresses): binds each host port, adds the rules, turns forwarding on
    // for the link and the default route's interface, and route_localnet on
    // the link where a mapping is reachable on loopback. Throws ctr::error
    // naming what failed (step::publish_port for a host port, step::configure_nat
    // for the rest), leaving nothing behind.
    template <class = void>
    static basic_port_nat add(const veth_info& link, std::vector<port_mapping> mappings) {
        for (const auto& m : mappings) {
            if (m.container_port == 0) throw error(step::prepare, EINVAL, m.to_string(), "the container port is 0");
            if (m.host_address.is_ipv6() && !link.container_ipv6)
                throw error(step::prepare, EINVAL, m.to_string(),
                            "the sandbox has no IPv6 address (veth::ipv6 is false, or the host has IPv6 off)");
            if (m.host_address.is_ipv6() && m.host_address.ipv6().is_loopback())
                throw error(step::prepare, EINVAL, m.to_string(),
                            "the kernel cannot DNAT from IPv6's loopback (there is no route_localnet for IPv6): "
                            "publish on 127.0.0.1, or relay [::1] with net::port_forwarder");
        }
        if (link.host_name.empty() || link.container_address.address == ipv4_address{})
            throw error(step::prepare, EINVAL, link.host_name, "publishing ports needs a veth's names and addresses");
        basic_port_nat out;
        bool ipv6 = false;
        for (auto& m : mappings) {
            detail::reserve_host_port(m, link, out.reserved_);
            ipv6 = ipv6 || detail::published_over_ipv6(m, link);
        }

        detail::enable_forwarding(link.host_name);
        auto routes = detail::rtnetlink::open();
        for (const auto& uplink : detail::default_route_interfaces(routes)) detail::enable_forwarding(uplink);
        if (ipv6) detail::enable_ipv6_forwarding(link.host_name, routes);

        out.comment_ = detail::rule_comment(detail::ports_comment_prefix, link.host_name, link.host_index);
        auto nft = detail::nftables_socket::open();
        // A crashed caller's rules go with the next launch; best effort, the
        // new rules matter more.
        try {
            detail::delete_stale_outbound_rules(nft);
        } catch (const error&) {
        }
        std::string what = "publishing";
        for (const auto& m : mappings) what += " " + m.to_string();
        what += " to " + link.container_address.address.to_string() + " behind " + link.host_name;
        nft.commit(detail::port_nat_batch(link, mappings, out.comment_), 0, what);
        out.nft_ = std::move(nft);
        out.mappings_ = std::move(mappings);
        // After the rules, the guard among them: until it stands, the
        // sandbox must not reach the host's loopback. A failure here
        // deletes the rules with `out`.
        bool loopback = false;
        for (const auto& m : out.mappings_) loopback = loopback || detail::reachable_on_loopback(m);
        if (loopback) detail::enable_interface_switch(link.host_name, "route_localnet");
        return out;
    }

private:
    template <class = void>
    void remove_quietly() noexcept {
        try {
            remove();
        } catch (...) {
        }
    }

    std::optional<detail::nftables_socket> nft_;
    std::string comment_;
    std::vector<port_mapping> mappings_;
    std::vector<unique_fd> reserved_;
};
using port_nat = basic_port_nat<void>;

}  // namespace ctr::net
