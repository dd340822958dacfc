#pragma once
// nftables through its netlink interface (NETLINK_NETFILTER, subsystem
// NFNL_SUBSYS_NFTABLES), without the nft binary: just what ctr's NAT needs
// (outbound NAT, published ports). Changes go in batches
// (NFNL_MSG_BATCH_BEGIN ... END) that the kernel applies all or nothing; a batch may name the ruleset generation it
// was planned against and is then refused with ERESTART when another change
// came first, which makes "delete the table if only my rule is left" safe
// between processes. Integers in nftables attributes are big-endian.
// Parent-side only: it allocates.

#include <ctr/detail/netlink.hpp>
#include <ctr/error.hpp>
#include <ctr/ip_address.hpp>

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ctr::net::detail {

// An nftables message: nlmsghdr, nfgenmsg (the family: NFPROTO_IPV4 for an
// "ip" table), attributes.
template <class = void>
inline netlink_message nft_message(int type, std::uint16_t flags, std::uint8_t family = NFPROTO_IPV4) {
    netlink_message m(static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | type), flags);
    nfgenmsg g{};
    g.nfgen_family = family;
    g.version = NFNETLINK_V0;
    m.add_header(g);
    return m;
}

template <class = void>
inline void add_be32(netlink_message& m, std::uint16_t type, std::uint32_t value) {
    m.add_u32(type, htonl(value));
}

// NFTA_DATA_VALUE inside `type`: how cmp and bitwise take their constants.
template <class = void>
inline void add_data_value(netlink_message& m, std::uint16_t type, const void* bytes, std::size_t size) {
    const auto outer = m.begin_nested(type);
    m.add_attribute(NFTA_DATA_VALUE, bytes, size);
    m.end_nested(outer);
}

// One expression of a rule: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } };
// fill adds the expression's own attributes.
template <class Fill>
void add_expression(netlink_message& m, std::string_view name, Fill&& fill) {
    const auto element = m.begin_nested(NFTA_LIST_ELEM);
    m.add_string(NFTA_EXPR_NAME, name);
    const auto data = m.begin_nested(NFTA_EXPR_DATA);
    fill();
    m.end_nested(data);
    m.end_nested(element);
}

// A rule's comment as nft stores it in NFTA_RULE_USERDATA (a type-length-
// value list; type 0 is the comment, NUL included), so that `nft list
// ruleset` shows it.
template <class = void>
inline std::string rule_comment_userdata(const std::string& comment) {
    std::string out;
    out += '\0';
    out += static_cast<char>(comment.size() + 1);
    out += comment;
    out += '\0';
    return out;
}

template <class = void>
inline std::string comment_of_userdata(const char* p, std::size_t n) {
    while (n >= 2) {
        const auto type = static_cast<unsigned char>(p[0]);
        const auto length = static_cast<unsigned char>(p[1]);
        if (std::size_t{2} + length > n) break;
        if (type == 0) return std::string(p + 2, strnlen(p + 2, length));
        p += 2 + length;
        n -= std::size_t{2} + length;
    }
    return {};
}

// A rule as a dump shows it: its handle and its comment.
struct nft_rule_seen {
    std::uint64_t handle = 0;
    std::string comment;
};

// A NETLINK_NETFILTER socket in the current thread's network namespace.
class nftables_socket {
public:
    template <class = void>
    static nftables_socket open() {
        nftables_socket out;
        out.netlink_ = rtnetlink::open(NETLINK_NETFILTER, "NETLINK_NETFILTER");
        return out;
    }

    // The ruleset's generation, for commit.
    template <class = void>
    std::uint32_t generation() {
        auto m = nft_message(NFT_MSG_GETGEN, 0, AF_UNSPEC);
        std::uint32_t id = 0;
        const long r = netlink_.request(m, [&](const nlmsghdr& h) {
            if (h.nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return;
            const char* attributes = reinterpret_cast<const char*>(NLMSG_DATA(&h)) + netlink_align(sizeof(nfgenmsg));
            for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(netlink_align(sizeof(nfgenmsg))),
                               [&](std::uint16_t type, const char* p, std::size_t n) {
                                   if (type == NFTA_GEN_ID && n == 4) {
                                       std::memcpy(&id, p, 4);
                                       id = ntohl(id);
                                   }
                               });
        });
        if (r < 0) throw error(step::configure_nat, static_cast<int>(-r), "NFT_MSG_GETGEN", reason(r));
        return id;
    }

    // Whether table "ip <name>" (or "ip6 <name>" for NFPROTO_IPV6) exists.
    template <class = void>
    bool table_exists(const std::string& name, std::uint8_t family = NFPROTO_IPV4) {
        auto m = nft_message(NFT_MSG_GETTABLE, 0, family);
        m.add_string(NFTA_TABLE_NAME, name);
        const long r = netlink_.request(m, [](const nlmsghdr&) {});
        if (r == -ENOENT || r == -EAFNOSUPPORT) return false;
        if (r < 0)
            throw error(step::configure_nat, static_cast<int>(-r), family_name(family) + " " + name,
                        "looking the table up: " + reason(r));
        return true;
    }

    // The rules of table/chain (family ip, or ip6 for NFPROTO_IPV6); none
    // when either is missing.
    template <class = void>
    std::vector<nft_rule_seen> rules(const std::string& table, const std::string& chain,
                                     std::uint8_t family = NFPROTO_IPV4) {
        auto m = nft_message(NFT_MSG_GETRULE, 0, family);
        m.add_string(NFTA_RULE_TABLE, table);
        m.add_string(NFTA_RULE_CHAIN, chain);
        std::vector<nft_rule_seen> out;
        const long r = netlink_.dump(m, [&](const nlmsghdr& h) {
            if (h.nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return;
            const char* attributes = reinterpret_cast<const char*>(NLMSG_DATA(&h)) + netlink_align(sizeof(nfgenmsg));
            nft_rule_seen rule;
            bool ours = true;
            for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(netlink_align(sizeof(nfgenmsg))),
                               [&](std::uint16_t type, const char* p, std::size_t n) {
                                   // Older kernels ignore the filter and dump every rule.
                                   if (type == NFTA_RULE_TABLE) ours = ours && std::string(p, strnlen(p, n)) == table;
                                   if (type == NFTA_RULE_CHAIN) ours = ours && std::string(p, strnlen(p, n)) == chain;
                                   if (type == NFTA_RULE_HANDLE && n == 8) {
                                       std::uint32_t halves[2];
                                       std::memcpy(halves, p, 8);
                                       rule.handle = (std::uint64_t{ntohl(halves[0])} << 32) | ntohl(halves[1]);
                                   }
                                   if (type == NFTA_RULE_USERDATA) rule.comment = comment_of_userdata(p, n);
                               });
            if (ours) out.push_back(std::move(rule));
        });
        if (r == -ENOENT || r == -EAFNOSUPPORT) return {};
        if (r < 0)
            throw error(step::configure_nat, static_cast<int>(-r), family_name(family) + " " + table + " " + chain,
                        "listing the rules: " + reason(r));
        return out;
    }

    // Applies `messages` as one batch, all or nothing. With a generation
    // other than 0, the kernel refuses the batch when the ruleset changed
    // since: then false comes back, to plan again. Any other refusal throws,
    // naming `what` and the message that failed.
    template <class = void>
    bool commit(std::vector<netlink_message> messages, std::uint32_t generation, const std::string& what) {
        std::vector<std::string> names;
        std::vector<netlink_message> batch;
        auto begin = nft_message(NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
        begin.header().nlmsg_type = NFNL_MSG_BATCH_BEGIN;
        // The batch names its subsystem in res_id.
        reinterpret_cast<nfgenmsg*>(NLMSG_DATA(&begin.header()))->res_id = htons(NFNL_SUBSYS_NFTABLES);
        if (generation != 0) add_be32(begin, NFNL_BATCH_GENID, generation);
        batch.push_back(std::move(begin));
        for (auto& m : messages) {
            m.header().nlmsg_flags |= NLM_F_ACK;
            batch.push_back(std::move(m));
        }
        auto end = nft_message(NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
        end.header().nlmsg_type = NFNL_MSG_BATCH_END;
        reinterpret_cast<nfgenmsg*>(NLMSG_DATA(&end.header()))->res_id = htons(NFNL_SUBSYS_NFTABLES);
        batch.push_back(std::move(end));

        std::vector<std::uint32_t> sequences;
        if (const long r = netlink_.send_together(batch, sequences); r < 0)
            throw error(step::configure_nat, static_cast<int>(-r), what, "sending the nftables batch");
        std::vector<bool> answered(batch.size(), false);
        long first_error = 0;
        std::size_t failed = 0;
        const long r = netlink_.receive_queued([&](const nlmsghdr& h, long result) {
            for (std::size_t i = 0; i < sequences.size(); ++i) {
                if (sequences[i] != h.nlmsg_seq) continue;
                answered[i] = true;
                if (result < 0 && first_error == 0) {
                    first_error = result;
                    failed = i;
                }
            }
        });
        if (r < 0) throw error(step::configure_nat, static_cast<int>(-r), what, "reading the nftables answers");
        if (first_error == -ERESTART && failed == 0) return false;
        if (first_error < 0)
            throw error(step::configure_nat, static_cast<int>(-first_error), what,
                        (failed == 0 ? std::string("the batch") : message_name(batch[failed])) + ": " + reason(first_error));
        for (std::size_t i = 1; i + 1 < batch.size(); ++i)
            if (!answered[i])
                throw error(step::configure_nat, EPROTO, what, message_name(batch[i]) + ": no answer from the kernel");
        return true;
    }

    // "ip" or "ip6", as nft names the families.
    template <class = void>
    static std::string family_name(std::uint8_t family) {
        return family == NFPROTO_IPV6 ? "ip6" : "ip";
    }

private:
    template <class = void>
    std::string reason(long negative_errno) const {
        std::string out;
        switch (-negative_errno) {
            case EPERM: out = "nftables needs CAP_NET_ADMIN in this network namespace (run as root)"; break;
            case EPROTONOSUPPORT:
            case EAFNOSUPPORT: out = "this kernel has no nftables (CONFIG_NF_TABLES)"; break;
            case ENOENT:
                out = "the kernel lacks a part the rule needs (CONFIG_NFT_NAT, CONFIG_NFT_MASQ, CONFIG_NFT_FIB_IPV4, "
                      "and for IPv6 CONFIG_NF_TABLES_IPV6, CONFIG_NFT_FIB_IPV6) or the table is gone";
                break;
            default: break;
        }
        if (!netlink_.last_message().empty())
            out += (out.empty() ? "" : "; ") + std::string("kernel: ") + netlink_.last_message();
        return out;
    }

    template <class = void>
    static std::string message_name(netlink_message& m) {
        switch (m.header().nlmsg_type & 0xff) {
            case NFT_MSG_NEWTABLE: return "NFT_MSG_NEWTABLE";
            case NFT_MSG_DELTABLE: return "NFT_MSG_DELTABLE";
            case NFT_MSG_NEWCHAIN: return "NFT_MSG_NEWCHAIN";
            case NFT_MSG_NEWRULE: return "NFT_MSG_NEWRULE";
            case NFT_MSG_DELCHAIN: return "NFT_MSG_DELCHAIN";
            case NFT_MSG_DELRULE: return "NFT_MSG_DELRULE";
            default: return "nftables message " + std::to_string(m.header().nlmsg_type & 0xff);
        }
    }

    rtnetlink netlink_;
};

// The messages ctr's NAT is made of: table "ip <table>", base chains of
// type nat (or filter) on a hook, and rules built from the matches below,
// each with the comment that says whose it is.
template <class = void>
inline netlink_message new_table_message(const std::string& table, std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_NEWTABLE, NLM_F_CREATE, family);  // no NLM_F_EXCL: an existing one is kept
    m.add_string(NFTA_TABLE_NAME, table);
    return m;
}

template <class = void>
inline netlink_message delete_table_message(const std::string& table, std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_DELTABLE, 0, family);
    m.add_string(NFTA_TABLE_NAME, table);
    return m;
}

// A base chain: `type` "nat" or "filter", on `hook` (NF_INET_*) at
// `priority` (srcnat 100, dstnat -100, raw -300). An existing one is kept.
template <class = void>
inline netlink_message new_chain_message(const std::string& table, const std::string& chain, std::uint32_t hook,
                                         std::int32_t priority, const char* type,
                                         std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_NEWCHAIN, NLM_F_CREATE, family);
    m.add_string(NFTA_CHAIN_TABLE, table);
    m.add_string(NFTA_CHAIN_NAME, chain);
    const auto hook_attribute = m.begin_nested(NFTA_CHAIN_HOOK);
    add_be32(m, NFTA_HOOK_HOOKNUM, hook);
    add_be32(m, NFTA_HOOK_PRIORITY, static_cast<std::uint32_t>(priority));
    m.end_nested(hook_attribute);
    m.add_string(NFTA_CHAIN_TYPE, type);
    return m;
}

// The outbound chain: nat on postrouting at srcnat (100).
template <class = void>
inline netlink_message new_nat_chain_message(const std::string& table, const std::string& chain,
                                             std::uint8_t family = NFPROTO_IPV4) {
    return new_chain_message(table, chain, NF_INET_POST_ROUTING, 100, "nat", family);
}

// cmp of register 1 against `bytes`.
template <class = void>
inline void add_compare(netlink_message& m, std::uint32_t op, const void* bytes, std::size_t size) {
    add_expression(m, "cmp", [&] {
        add_be32(m, NFTA_CMP_SREG, NFT_REG_1);
        add_be32(m, NFTA_CMP_OP, op);
        add_data_value(m, NFTA_CMP_DATA, bytes, size);
    });
}

// `size` bytes at `offset` of the network (or transport) header into register 1.
template <class = void>
inline void add_load_payload(netlink_message& m, std::uint32_t base, std::uint32_t offset, std::uint32_t size) {
    add_expression(m, "payload", [&] {
        add_be32(m, NFTA_PAYLOAD_DREG, NFT_REG_1);
        add_be32(m, NFTA_PAYLOAD_BASE, base);
        add_be32(m, NFTA_PAYLOAD_OFFSET, offset);
        add_be32(m, NFTA_PAYLOAD_LEN, size);
    });
}

inline constexpr std::uint32_t ipv4_source_offset = 12;
inline constexpr std::uint32_t ipv4_destination_offset = 16;

// Loads `size` bytes of the network header at `offset` and compares them with
// `network`, masked with `mask` first unless the prefix covers every bit:
// the one rule shape behind both families' address matches.
template <class = void>
inline void match_masked(netlink_message& m, std::uint32_t offset, std::uint32_t size, const void* mask,
                         const void* network, bool whole) {
    add_load_payload(m, NFT_PAYLOAD_NETWORK_HEADER, offset, size);
    if (!whole) {
        const std::uint8_t zero[16] = {};
        add_expression(m, "bitwise", [&] {
            add_be32(m, NFTA_BITWISE_SREG, NFT_REG_1);
            add_be32(m, NFTA_BITWISE_DREG, NFT_REG_1);
            add_be32(m, NFTA_BITWISE_LEN, size);
            add_data_value(m, NFTA_BITWISE_MASK, mask, size);
            add_data_value(m, NFTA_BITWISE_XOR, zero, size);
        });
    }
    add_compare(m, NFT_CMP_EQ, network, size);
}

// ip saddr (offset 12) or ip daddr (offset 16) in `network`.
template <class = void>
inline void match_network(netlink_message& m, std::uint32_t offset, const ipv4_interface& network) {
    const std::uint32_t mask =
        htonl(network.prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - network.prefix_length));
    const in_addr address = network.network().to_in_addr();
    match_masked(m, offset, 4, &mask, &address, network.prefix_length >= 32);
}

inline constexpr std::uint32_t ipv6_source_offset = 8;
inline constexpr std::uint32_t ipv6_destination_offset = 24;

// ip6 saddr (offset 8) or ip6 daddr (offset 24) in `network`.
template <class = void>
inline void match_network(netlink_message& m, std::uint32_t offset, const ipv6_interface& network) {
    const ipv6_address mask = ipv6_interface{ipv6_address{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
                                             network.prefix_length}
                                  .network();
    const ipv6_address address = network.network();
    match_masked(m, offset, 16, mask.bytes.data(), address.bytes.data(), network.prefix_length >= 128);
}

// iifname or oifname (`key`) == or != `link` (IFNAMSIZ bytes, NUL padded).
template <class = void>
inline void match_interface(netlink_message& m, std::uint32_t key, std::uint32_t op, const std::string& link) {
    add_expression(m, "meta", [&] {
        add_be32(m, NFTA_META_KEY, key);
        add_be32(m, NFTA_META_DREG, NFT_REG_1);
    });
    char name[IFNAMSIZ] = {};
    link.copy(name, IFNAMSIZ - 1);
    add_compare(m, op, name, sizeof name);
}

// fib daddr type local: the destination is one of this namespace's own
// addresses (any interface, loopback included), as Docker's
// "-m addrtype --dst-type LOCAL". The result is a host-order u32.
template <class = void>
inline void match_local_destination(netlink_message& m) {
    add_expression(m, "fib", [&] {
        add_be32(m, NFTA_FIB_DREG, NFT_REG_1);
        add_be32(m, NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
        add_be32(m, NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
    });
    const std::uint32_t local = RTN_LOCAL;
    add_compare(m, NFT_CMP_EQ, &local, sizeof local);
}

// meta l4proto `protocol` and its destination port (2 bytes at offset 2 of
// TCP's and UDP's headers) == `port`.
template <class = void>
inline void match_destination_port(netlink_message& m, std::uint8_t protocol, std::uint16_t port) {
    add_expression(m, "meta", [&] {
        add_be32(m, NFTA_META_KEY, NFT_META_L4PROTO);
        add_be32(m, NFTA_META_DREG, NFT_REG_1);
    });
    add_compare(m, NFT_CMP_EQ, &protocol, 1);
    add_load_payload(m, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    const std::uint16_t big_endian = htons(port);
    add_compare(m, NFT_CMP_EQ, &big_endian, 2);
}

// dnat to address:port: both into registers (nft uses 1 and 2), then nat.
template <class = void>
inline void add_dnat(netlink_message& m, const ipv4_address& address, std::uint16_t port) {
    const in_addr to = address.to_in_addr();
    const std::uint16_t to_port = htons(port);
    const auto immediate = [&m](std::uint32_t reg, const void* bytes, std::size_t size) {
        add_expression(m, "immediate", [&] {
            add_be32(m, NFTA_IMMEDIATE_DREG, reg);
            add_data_value(m, NFTA_IMMEDIATE_DATA, bytes, size);
        });
    };
    immediate(NFT_REG_1, &to, 4);
    immediate(NFT_REG_2, &to_port, 2);
    add_expression(m, "nat", [&] {
        add_be32(m, NFTA_NAT_TYPE, NFT_NAT_DNAT);
        add_be32(m, NFTA_NAT_FAMILY, NFPROTO_IPV4);
        add_be32(m, NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
        add_be32(m, NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
    });
}

// dnat to [address]:port, for an ip6 table.
template <class = void>
inline void add_dnat(netlink_message& m, const ipv6_address& address, std::uint16_t port) {
    const std::uint16_t to_port = htons(port);
    const auto immediate = [&m](std::uint32_t reg, const void* bytes, std::size_t size) {
        add_expression(m, "immediate", [&] {
            add_be32(m, NFTA_IMMEDIATE_DREG, reg);
            add_data_value(m, NFTA_IMMEDIATE_DATA, bytes, size);
        });
    };
    // Register 1 is 16 bytes wide: the whole address, and the port in the next.
    immediate(NFT_REG_1, address.bytes.data(), 16);
    immediate(NFT_REG_2, &to_port, 2);
    add_expression(m, "nat", [&] {
        add_be32(m, NFTA_NAT_TYPE, NFT_NAT_DNAT);
        add_be32(m, NFTA_NAT_FAMILY, NFPROTO_IPV6);
        add_be32(m, NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
        add_be32(m, NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
    });
}

template <class = void>
inline void add_drop(netlink_message& m) {
    add_expression(m, "immediate", [&] {
        add_be32(m, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        const auto data = m.begin_nested(NFTA_IMMEDIATE_DATA);
        const auto verdict = m.begin_nested(NFTA_DATA_VERDICT);
        add_be32(m, NFTA_VERDICT_CODE, NF_DROP);
        m.end_nested(verdict);
        m.end_nested(data);
    });
}

// A rule appended to table/chain: `fill` adds its expressions.
template <class Fill>
netlink_message rule_message(const std::string& table, const std::string& chain, const std::string& comment,
                             Fill&& fill, std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, family);
    m.add_string(NFTA_RULE_TABLE, table);
    m.add_string(NFTA_RULE_CHAIN, chain);
    const auto expressions = m.begin_nested(NFTA_RULE_EXPRESSIONS);
    fill(m);
    m.end_nested(expressions);
    const std::string userdata = rule_comment_userdata(comment);
    m.add_attribute(NFTA_RULE_USERDATA, userdata.data(), userdata.size());
    return m;
}

// ip saddr <subnet> oifname != <link> masquerade comment "<comment>"
template <class = void>
inline netlink_message masquerade_rule_message(const std::string& table, const std::string& chain,
                                               const ipv4_interface& subnet, const std::string& link,
                                               const std::string& comment) {
    return rule_message(table, chain, comment, [&](netlink_message& m) {
        match_network(m, ipv4_source_offset, subnet);
        // Not the sandbox's own link, so that traffic between the host's
        // other ctr links or back into the same one keeps its source.
        match_interface(m, NFT_META_OIFNAME, NFT_CMP_NEQ, link);
        add_expression(m, "masq", [] {});
    });
}

// ip6 saddr <subnet> oifname != <link> masquerade comment "<comment>"
template <class = void>
inline netlink_message masquerade_rule_message(const std::string& table, const std::string& chain,
                                               const ipv6_interface& subnet, const std::string& link,
                                               const std::string& comment) {
    return rule_message(
        table, chain, comment,
        [&](netlink_message& m) {
            match_network(m, ipv6_source_offset, subnet);
            match_interface(m, NFT_META_OIFNAME, NFT_CMP_NEQ, link);
            add_expression(m, "masq", [] {});
        },
        NFPROTO_IPV6);
}

template <class = void>
inline netlink_message delete_rule_message(const std::string& table, const std::string& chain, std::uint64_t handle,
                                           std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_DELRULE, 0, family);
    m.add_string(NFTA_RULE_TABLE, table);
    m.add_string(NFTA_RULE_CHAIN, chain);
    const std::uint32_t halves[2] = {htonl(static_cast<std::uint32_t>(handle >> 32)),
                                     htonl(static_cast<std::uint32_t>(handle))};
    m.add_attribute(NFTA_RULE_HANDLE, halves, sizeof halves);
    return m;
}

}  // namespace ctr::net::detail
