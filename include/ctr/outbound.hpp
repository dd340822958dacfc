#pragma once
// ctr::net outbound NAT: a veth sandbox reaching beyond the host. Its
// subnet is masqueraded behind the host's address on the way out, by a rule
// in an nftables table of ctr's own ("ip ctr", chain "postrouting"; its
// IPv6 /64 by the same rule in "ip6 ctr"), and
// the host forwards for it. spawn does it with net::veth{.outbound = true};
// the rule goes when the sandbox's handle reaps it, the table with the last
// rule, and reap_stale_outbound() (and every outbound launch, first) removes
// the rules of sandboxes whose link is gone (a crashed caller's), published
// ports' (port_nat.hpp) included: they share the table.
//
// Forwarding: IPv4 asks the interface a packet came in on whether it may be
// forwarded (net.ipv4.conf.<in>.forwarding; ip_forward is only the switch
// that sets every interface at once). The sandbox's packets come in on its
// host link and the answers on the uplink, so both forward: ctr sets it on
// its own link and on the interface of each default route, and leaves the
// rest of the host (net.ipv4.ip_forward, other interfaces) as it was. The
// uplink keeps forwarding after the last sandbox ends, as Docker and Podman
// leave ip_forward on: turning it off could break whatever else relied on it
// meanwhile.

#include <ctr/detail/netlink.hpp>
#include <ctr/detail/nftables.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/detail/veth_options.hpp>
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr::net {

namespace detail {

inline constexpr const char* nat_table = "ctr";
inline constexpr const char* nat_chain = "postrouting";
// Every chain ctr's rules live in: outbound's, and the published ports'
// (port_nat.hpp). Deleting plans over all of them, so that the table goes
// only with the last rule of any.
inline constexpr const char* ctr_chains[] = {"postrouting", "prerouting", "output", "guard"};
inline constexpr std::string_view outbound_comment_prefix = "ctr outbound ";
inline constexpr std::string_view ports_comment_prefix = "ctr ports ";

// "ctr outbound ctr-0ae70004 1234.1 57": the link the rule serves, who made
// it (pid and a count), so that each sandbox deletes only its own, and the
// link's index (when known), so that a rule outlives neither its link nor a
// link that took the name again.
template <class = void>
inline std::string rule_comment(std::string_view prefix, const std::string& link, int index) {
    static std::atomic<unsigned> count{0};
    std::string out = std::string(prefix) + link + " " + std::to_string(::getpid()) + "." + std::to_string(++count);
    if (index > 0) out += " " + std::to_string(index);
    return out;
}

template <class = void>
inline std::string outbound_comment(const std::string& link, int index = 0) {
    return rule_comment(outbound_comment_prefix, link, index);
}

// The link a rule's comment names, and its index (0: not recorded); an
// empty link when the rule is not one of ctr's (outbound or ports).
struct rule_owner {
    std::string link;
    int index = 0;
};

template <class = void>
inline rule_owner owner_of_comment(const std::string& comment) {
    std::string rest;
    for (const std::string_view prefix : {outbound_comment_prefix, ports_comment_prefix})
        if (comment.compare(0, prefix.size(), prefix) == 0) rest = comment.substr(prefix.size());
    rule_owner out;
    out.link = rest.substr(0, rest.find(' '));
    // The third word, when there is one and it is a number.
    const std::size_t maker = rest.find(' ');
    const std::size_t index = maker == std::string::npos ? maker : rest.find(' ', maker + 1);
    if (index != std::string::npos) {
        const std::string digits = rest.substr(index + 1);
        if (!digits.empty() && digits.size() < 10 && digits.find_first_not_of("0123456789") == std::string::npos)
            out.index = std::stoi(digits);
    }
    return out;
}

// The link an outbound rule's comment names; empty when it is not an outbound rule.
template <class = void>
inline std::string link_of_outbound_comment(const std::string& comment) {
    if (comment.compare(0, outbound_comment_prefix.size(), outbound_comment_prefix) != 0) return {};
    return owner_of_comment(comment).link;
}

// Deletes the rules of ctr's chains that `doomed` picks, and the table with
// them when no rule would be left. Planned against the ruleset's generation
// and planned again when another process changed it meanwhile, so that the
// table is never deleted under a rule just added. Returns how many went.
// Both of ctr's tables, "ip ctr" and "ip6 ctr", are planned in one batch.
template <class Doomed>
std::size_t delete_outbound_rules(nftables_socket& nft, Doomed&& doomed) {
    for (int attempt = 0;; ++attempt) {
        const std::uint32_t generation = nft.generation();
        std::vector<netlink_message> batch;
        std::size_t deleted = 0;
        for (const std::uint8_t family : {std::uint8_t{NFPROTO_IPV4}, std::uint8_t{NFPROTO_IPV6}}) {
            std::vector<netlink_message> part;
            std::size_t kept = 0;
            for (const char* chain : ctr_chains) {
                for (const auto& rule : nft.rules(nat_table, chain, family)) {
                    if (doomed(rule)) part.push_back(delete_rule_message(nat_table, chain, rule.handle, family));
                    else ++kept;
                }
            }
            deleted += part.size();
            if (part.empty()) continue;
            if (kept == 0) {
                part.clear();
                part.push_back(delete_table_message(nat_table, family));
            }
            for (auto& m : part) batch.push_back(std::move(m));
        }
        if (deleted == 0) return 0;
        if (nft.commit(std::move(batch), generation, std::string("ip/ip6 ") + nat_table)) return deleted;
        if (attempt == 20)
            throw error(step::configure_nat, EAGAIN, std::string("ip/ip6 ") + nat_table,
                        "the ruleset kept changing while ctr removed its rules");
    }
}

// Deletes ctr's rules (outbound and published ports) whose link is gone
// from the current namespace, or is another link by that name now.
template <class = void>
inline std::size_t delete_stale_outbound_rules(nftables_socket& nft) {
    return delete_outbound_rules(nft, [](const nft_rule_seen& rule) {
        const rule_owner owner = owner_of_comment(rule.comment);
        if (owner.link.empty()) return false;
        const unsigned index = if_nametoindex(owner.link.c_str());
        return index == 0 || (owner.index > 0 && index != static_cast<unsigned>(owner.index));
    });
}

// The names of the interfaces the main table's default routes (IPv4, or
// IPv6 for AF_INET6) leave by.
template <class = void>
inline std::vector<std::string> default_route_interfaces(rtnetlink& netlink, std::uint8_t family = AF_INET) {
    std::vector<int> indexes;
    netlink_message routes(RTM_GETROUTE, 0);
    rtmsg header{};
    header.rtm_family = family;
    routes.add_header(header);
    const long r = netlink.dump(routes, [&](const nlmsghdr& h) {
        if (h.nlmsg_type != RTM_NEWROUTE || h.nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return;
        const auto* m = static_cast<const rtmsg*>(NLMSG_DATA(&h));
        if (m->rtm_dst_len != 0 || m->rtm_type != RTN_UNICAST) return;
        std::uint32_t table = m->rtm_table;
        int oif = 0;
        const char* attributes = reinterpret_cast<const char*>(m) + NLMSG_ALIGN(sizeof *m);
        for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof *m)),
                           [&](std::uint16_t type, const char* p, std::size_t n) {
                               if (type == RTA_TABLE && n == 4) std::memcpy(&table, p, 4);
                               if (type == RTA_OIF && n == 4) std::memcpy(&oif, p, 4);
                           });
        if (table == RT_TABLE_MAIN && oif > 0) indexes.push_back(oif);
    });
    if (r < 0) throw error(step::configure_nat, static_cast<int>(-r), "RTM_GETROUTE", "finding the default route's interface");
    std::vector<std::string> names;
    for (const int index : indexes) {
        char name[IF_NAMESIZE] = {};
        if (if_indextoname(static_cast<unsigned>(index), name) != nullptr) names.emplace_back(name);
    }
    return names;
}

// net.ipv4.conf.<link>.<name> = 1 (net.ipv6... with `ipv6`) in the current
// thread's network namespace (/proc/sys/net shows the namespace of the
// thread that opens it). Returns false, with `missing_is_false`, when this
// kernel has no such switch.
template <class = void>
inline bool enable_interface_switch(const std::string& link, const std::string& name, bool ipv6 = false,
                                    bool missing_is_false = false) {
    const std::string path = std::string("/proc/sys/net/") + (ipv6 ? "ipv6" : "ipv4") + "/conf/" + link + "/" + name;
    const long fd = ctr::detail::sys::openat(AT_FDCWD, path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd == -ENOENT && missing_is_false) return false;
    if (fd < 0)
        throw error(step::configure_nat, static_cast<int>(-fd), path, "opening the interface's " + name + " switch");
    const unique_fd owned(static_cast<int>(fd));
    char now = '0';
    if (ctr::detail::sys::pread64(owned.get(), &now, 1, 0) == 1 && now == '1') return true;
    // At offset 0: with kernel.sysctl_writes_strict (the default), a write
    // anywhere else is ignored and still reports success.
    const long r = ctr::detail::sys::pwrite64(owned.get(), "1", 1, 0);
    if (r < 0) throw error(step::configure_nat, static_cast<int>(-r), path, "turning " + name + " on");
    if (ctr::detail::sys::pread64(owned.get(), &now, 1, 0) != 1 || now != '1')
        throw error(step::configure_nat, EIO, path, name + " stayed off after writing 1");
    return true;
}

template <class = void>
inline void enable_forwarding(const std::string& link) {
    enable_interface_switch(link, "forwarding");
}

// Before all.forwarding goes on: an interface that accepts router
// advertisements only while the host does not forward (accept_ra = 1, the
// default) would stop learning its addresses and default route from them,
// and lose them as they expire. accept_ra = 2 accepts them while forwarding,
// so each such interface, and `default` (for interfaces made later), goes
// from 1 to 2 and goes on as it did. Nothing changes while all.forwarding
// is already on: the host was a router before ctr came.
template <class = void>
inline void keep_accepting_router_advertisements() {
    const std::string conf = "/proc/sys/net/ipv6/conf";
    char now = '0';
    {
        const long fd = ctr::detail::sys::openat(AT_FDCWD, (conf + "/all/forwarding").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;  // no IPv6: enable_interface_switch says why
        const unique_fd all(static_cast<int>(fd));
        if (ctr::detail::sys::pread64(all.get(), &now, 1, 0) == 1 && now == '1') return;
    }
    DIR* dir = ::opendir(conf.c_str());
    if (!dir) throw error(step::configure_nat, errno, conf, "listing the interfaces' IPv6 settings");
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != ".." && name != "all") names.emplace_back(name);
    }
    ::closedir(dir);
    for (const auto& name : names) {
        const std::string path = conf + "/" + name + "/accept_ra";
        const long fd = ctr::detail::sys::openat(AT_FDCWD, path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd == -ENOENT) continue;  // gone since the listing
        if (fd < 0) throw error(step::configure_nat, static_cast<int>(-fd), path, "opening it");
        const unique_fd owned(static_cast<int>(fd));
        if (ctr::detail::sys::pread64(owned.get(), &now, 1, 0) != 1 || now != '1') continue;
        // At offset 0, as in enable_interface_switch.
        if (const long r = ctr::detail::sys::pwrite64(owned.get(), "2", 1, 0); r < 0)
            throw error(step::configure_nat, static_cast<int>(-r), path,
                        "keeping router advertisements accepted before net.ipv6.conf.all.forwarding goes on "
                        "(veth::ipv6 = false leaves IPv6 and this switch alone)");
    }
}

// IPv6 forwarding for a sandbox's link and the IPv6 uplinks. IPv6 asks
// net.ipv6.conf.all.forwarding alone: the per-interface "forwarding" only
// makes an interface act as a router (ignore router advertisements, answer
// as one), it forwards nothing. Linux 6.17 added a per-interface switch that
// does, force_forwarding, which ctr sets on these links only. Before it,
// the only way is all.forwarding = 1, as Docker and Podman do for IPv6:
// every interface then acts as a router, and one that learns its own
// default route from router advertisements (accept_ra = 1) would stop
// learning it: keep_accepting_router_advertisements sets those to 2 first.
template <class = void>
inline void enable_ipv6_forwarding(const std::string& link, rtnetlink& routes) {
    std::vector<std::string> links{link};
    for (auto& uplink : default_route_interfaces(routes, AF_INET6)) links.push_back(std::move(uplink));
    for (const auto& each : links)
        if (!enable_interface_switch(each, "force_forwarding", true, true)) {
            keep_accepting_router_advertisements();
            enable_interface_switch("all", "forwarding", true);
            return;
        }
}

}  // namespace detail

// One sandbox's masquerade rule, owned: deleted (and ctr's table with the
// last rule) when the owner ends. It keeps its own netlink socket, so it is
// removed from the right namespace whichever thread ends it.
template <class>
class [[nodiscard]] basic_outbound_nat {
public:
    basic_outbound_nat() = default;
    basic_outbound_nat(basic_outbound_nat&& other) noexcept : nft_(std::move(other.nft_)), comment_(std::move(other.comment_)) {
        other.nft_.reset();
    }
    basic_outbound_nat& operator=(basic_outbound_nat&& other) noexcept {
        if (this != &other) {
            remove_quietly();
            nft_ = std::move(other.nft_);
            comment_ = std::move(other.comment_);
            other.nft_.reset();
        }
        return *this;
    }
    ~basic_outbound_nat() { remove_quietly(); }

    explicit operator bool() const noexcept { return nft_.has_value(); }
    // The rule's comment, as `nft list table ip ctr` shows it.
    template <class = void>
    const std::string& comment() const noexcept { return comment_; }

    // Deletes the rule now if there is one, best effort (what the destructor does).
    template <class = void>
    void reset() noexcept { remove_quietly(); }

    // Deletes the rule now, and the table if it was the last.
    template <class = void>
    void remove() {
        if (!nft_) return;
        auto nft = std::move(*nft_);
        nft_.reset();
        detail::delete_outbound_rules(nft, [&](const detail::nft_rule_seen& rule) { return rule.comment == comment_; });
    }

    // Adds the rule for `link` (a veth's host end, and its subnet) in the
    // current thread's network namespace and turns forwarding on for the
    // link and the default route's interface. Throws ctr::error naming what
    // failed.
    template <class = void>
    static basic_outbound_nat add(const veth_info& link) {
        detail::enable_forwarding(link.host_name);
        auto routes = detail::rtnetlink::open();
        for (const auto& uplink : detail::default_route_interfaces(routes)) detail::enable_forwarding(uplink);
        if (link.host_ipv6) detail::enable_ipv6_forwarding(link.host_name, routes);
        basic_outbound_nat out;
        out.comment_ = detail::outbound_comment(link.host_name, link.host_index);
        auto nft = detail::nftables_socket::open();
        // A crashed caller's rules go with the next launch; best effort, the
        // new rule matters more.
        try {
            detail::delete_stale_outbound_rules(nft);
        } catch (const error&) {
        }
        std::vector<detail::netlink_message> batch;
        batch.push_back(detail::new_table_message(detail::nat_table));
        batch.push_back(detail::new_nat_chain_message(detail::nat_table, detail::nat_chain));
        batch.push_back(detail::masquerade_rule_message(detail::nat_table, detail::nat_chain, link.host_address,
                                                        link.host_name, out.comment_));
        std::string what = "masquerading " + link.host_address.network().to_string() + "/" +
                           std::to_string(link.host_address.prefix_length);
        if (link.host_ipv6) {
            // The same in "ip6 ctr", in the same batch: both or neither.
            batch.push_back(detail::new_table_message(detail::nat_table, NFPROTO_IPV6));
            batch.push_back(detail::new_nat_chain_message(detail::nat_table, detail::nat_chain, NFPROTO_IPV6));
            batch.push_back(detail::masquerade_rule_message(detail::nat_table, detail::nat_chain, *link.host_ipv6,
                                                            link.host_name, out.comment_));
            what += " and " + link.host_ipv6->network().to_string() + "/" +
                    std::to_string(link.host_ipv6->prefix_length) + " (veth::ipv6 = false leaves IPv6 out)";
        }
        nft.commit(std::move(batch), 0, what + " of " + link.host_name);
        out.nft_ = std::move(nft);
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
};
using outbound_nat = basic_outbound_nat<void>;

// Deletes ctr's rules (outbound NAT and published ports), in the current
// thread's network namespace, whose sandbox link no longer exists (their
// sandbox ended while its caller had crashed) or is another link by that
// name now, and ctr's table with the last of them. Returns how many.
// (Every outbound launch does the same first, best effort.)
template <class = void>
inline std::size_t reap_stale_outbound() {
    auto nft = detail::nftables_socket::open();
    return detail::delete_stale_outbound_rules(nft);
}

}  // namespace ctr::net
