#pragma once
// The sandbox's /etc/resolv.conf: what ctr-run binds over it for each
// network (docs/networking.md, DNS). A sandbox with a network of its own
// cannot reach the host's loopback, so the host's loopback resolvers
// (systemd-resolved's 127.0.0.53, dnsmasq's 127.0.1.1) are left out, as
// Docker and Podman leave them out; --dns, --dns-search and --dns-option
// replace their parts of the file. Nothing here writes a file.

#include "flags.hpp"
#include "lookup.hpp"

#include <arpa/inet.h>

#include <array>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace ctr_run {

// A resolv.conf's directives. "domain" counts as "search", as the C
// library reads it; comments and blank lines go.
struct resolver_config {
    std::vector<std::string> nameservers, search, options, other;

    static resolver_config parse(const std::string& text) {
        resolver_config r;
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);) {
            std::istringstream words(line);
            std::string directive;
            if (!(words >> directive) || directive[0] == '#' || directive[0] == ';') continue;
            std::vector<std::string> rest{std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
            if (directive == "nameserver") {
                if (!rest.empty()) r.nameservers.push_back(rest[0]);
            } else if (directive == "search" || directive == "domain") {
                r.search = rest;  // the last one counts
            } else if (directive == "options") {
                r.options.insert(r.options.end(), rest.begin(), rest.end());
            } else {
                r.other.push_back(line);
            }
        }
        return r;
    }

    std::string text() const {
        std::string out;
        for (const auto& server : nameservers) out += "nameserver " + server + "\n";
        const auto line = [&](const char* directive, const std::vector<std::string>& words) {
            if (words.empty()) return;
            out += directive;
            for (const auto& word : words) out += " " + word;
            out += "\n";
        };
        line("search", search);
        line("options", options);
        for (const auto& o : other) out += o + "\n";
        return out;
    }

    // --dns, --dns-search and --dns-option replace their parts, as
    // Docker's do; --dns-search . means no search domains.
    void apply_flags(const config& c) {
        if (!c.dns.empty()) nameservers = c.dns;
        if (!c.dns_search.empty()) {
            search.clear();
            for (const auto& domain : c.dns_search)
                if (domain != ".") search.push_back(domain);
        }
        if (!c.dns_options.empty()) options = c.dns_options;
    }
};

// 127.0.0.0/8, ::1 and ::ffff:127.x: reachable only in the host's own
// network namespace.
inline bool is_loopback_address(const std::string& address) {
    in_addr v4{};
    if (inet_pton(AF_INET, address.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    const std::string bare = address.substr(0, address.find('%'));
    if (inet_pton(AF_INET6, bare.c_str(), &v6) != 1) return false;
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

inline bool is_ipv4_address(const std::string& address) {
    in_addr v4{};
    return inet_pton(AF_INET, address.c_str(), &v4) == 1;
}

// An IPv6 address a veth sandbox with IPv6 outbound NAT reaches: not
// loopback, not link-local (fe80::/10 and "%zone": only on the host's own
// links), not v4-mapped.
inline bool is_routable_ipv6_address(const std::string& address) {
    if (address.find('%') != std::string::npos) return false;
    in6_addr v6{};
    if (inet_pton(AF_INET6, address.c_str(), &v6) != 1) return false;
    return !IN6_IS_ADDR_LOOPBACK(&v6) && !IN6_IS_ADDR_LINKLOCAL(&v6) && !IN6_IS_ADDR_V4MAPPED(&v6) &&
           !IN6_IS_ADDR_UNSPECIFIED(&v6);
}

// Where no resolver of the host is reachable from a veth sandbox: Google's
// public resolvers, the ones Docker and Podman fall back to, so that a
// command that worked under `docker run` resolves names here too. ctr-run
// says so in one line; --dns chooses others.
inline constexpr std::array<const char*, 2> fallback_nameservers{"8.8.8.8", "8.8.4.4"};

// pasta's DNS forwarder inside the sandbox (--dns-forward): UDP to port
// 53 of this address goes to the host's first resolver, from the host's
// own network namespace, so a loopback resolver is reached too. The
// address Podman gives pasta's forwarder.
inline constexpr const char* pasta_dns_forwarder = "169.254.1.1";

// The C library reads three nameservers at most.
inline constexpr std::size_t max_nameservers = 3;

inline std::optional<std::string> read_host_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// systemd-resolved's own list of upstream resolvers, which its stub at
// 127.0.0.53 forwards to (Docker and Podman read it in the same case).
inline constexpr const char* systemd_resolved_upstream = "/run/systemd/resolve/resolv.conf";

struct sandbox_resolver {
    std::string text;  // the file's content
    std::string note;  // one line for stderr, or empty
};

// A veth sandbox reaches, through the host's outbound NAT, what the host
// reaches from its own addresses, but not the host's loopback, and IPv6
// resolvers only with `ipv6` (the sandbox has IPv6 and its outbound NAT).
// `host_text`: the host's /etc/resolv.conf; `upstream_text`:
// systemd-resolved's upstream list, for a host whose only resolver is its
// stub.
inline sandbox_resolver veth_resolv_conf(const config& c, const std::string& host_text,
                                         const std::optional<std::string>& upstream_text, bool ipv6 = false) {
    resolver_config r = resolver_config::parse(host_text);
    const auto reachable = [ipv6](const std::vector<std::string>& servers) {
        std::vector<std::string> kept;
        for (const auto& s : servers)
            if (((is_ipv4_address(s) && !is_loopback_address(s)) || (ipv6 && is_routable_ipv6_address(s))) &&
                kept.size() < max_nameservers)
                kept.push_back(s);
        return kept;
    };
    sandbox_resolver out;
    if (c.dns.empty()) {
        std::vector<std::string> kept = reachable(r.nameservers);
        if (kept.empty() && upstream_text) kept = reachable(resolver_config::parse(*upstream_text).nameservers);
        if (kept.empty()) {
            std::string named;
            for (const auto& s : r.nameservers) named += (named.empty() ? "" : ", ") + s;
            out.note = "ctr-run: --network veth: " +
                       (named.empty() ? std::string("the host's /etc/resolv.conf names no nameserver")
                                      : "the host's nameservers (" + named +
                                            ") are not reachable from the sandbox (loopback, or IPv6 without "
                                            "the sandbox's IPv6 outbound NAT)") +
                       ": it uses " + fallback_nameservers[0] + " and " + fallback_nameservers[1] +
                       ", as Docker does; --dns names others";
            kept.assign(fallback_nameservers.begin(), fallback_nameservers.end());
        }
        r.nameservers = kept;
    }
    r.apply_flags(c);
    out.text = r.text();
    return out;
}

// A pasta sandbox reaches what the host reaches, except its loopback:
// pasta's forwarder first (it reaches the host's first IPv4 resolver
// wherever that is; where the host has none, it would only drop queries),
// then the host's other resolvers off its loopback.
inline sandbox_resolver pasta_resolv_conf(const config& c, const std::string& host_text) {
    resolver_config r = resolver_config::parse(host_text);
    if (c.dns.empty()) {
        std::vector<std::string> kept;
        for (const auto& s : r.nameservers)
            if (is_ipv4_address(s)) {
                kept.emplace_back(pasta_dns_forwarder);
                break;
            }
        for (const auto& s : r.nameservers)
            if (!is_loopback_address(s) && kept.size() < max_nameservers) kept.push_back(s);
        r.nameservers = kept;
    }
    r.apply_flags(c);
    return {r.text(), {}};
}

// The sandbox's own file, less the lines the flags replace, with theirs:
// for --network none and host, where the file is the sandbox's as it is
// unless a flag changes it.
inline std::string edited_resolv_conf(const config& c) {
    std::string resolv;
    std::istringstream lines(read_sandbox_file(c, "/etc/resolv.conf").value_or(""));
    for (std::string line; std::getline(lines, line);) {
        const bool replaced = (!c.dns.empty() && line.starts_with("nameserver")) ||
                              (!c.dns_search.empty() && (line.starts_with("search") || line.starts_with("domain"))) ||
                              (!c.dns_options.empty() && line.starts_with("options"));
        if (!replaced) resolv += line + "\n";
    }
    resolver_config given;
    given.apply_flags(c);
    return resolv + given.text();
}

// What ctr-run binds over the sandbox's /etc/resolv.conf, or nothing to
// leave it as it is. With a network of its own (veth, pasta) the file is
// the host's, made reachable, whatever a --rootfs holds, as Docker's is.
// --network none keeps the sandbox's file: with no route out, a lookup
// fails at once (ENETUNREACH) rather than waiting on a resolver.
//
// A host without the file (a minimal VM's initramfs) gives the host's root
// nothing to bind over, and nothing to wait on either: the C library then
// asks 127.0.0.1, the sandbox's own loopback, which refuses at once. A
// --rootfs gets the file in a skeleton of its /etc. An --overlay root whose
// layers lack the file gets none unless --dns and its kin ask: its mount
// point would go in the upper layer, which cannot always take it (before
// Linux 6.3 a tmpfs lower is not idmapped, so its root-owned /etc is
// nobody's inside and the run would fail on a file it did not ask for).
// `ipv6`: a veth sandbox with IPv6 routed out (veth_resolv_conf).
inline std::optional<sandbox_resolver> sandbox_resolv_conf(const config& c, network_mode network, bool ipv6 = false) {
    const bool given = !c.dns.empty() || !c.dns_search.empty() || !c.dns_options.empty();
    if (network == network_mode::veth || network == network_mode::pasta) {
        const std::optional<std::string> host = read_host_file("/etc/resolv.conf");
        if (!host && !given && !c.rootfs && c.overlay.empty()) return std::nullopt;
        if (!given && !c.overlay.empty() && !read_sandbox_file(c, "/etc/resolv.conf")) return std::nullopt;
        if (network == network_mode::pasta) return pasta_resolv_conf(c, host.value_or(""));
        return veth_resolv_conf(c, host.value_or(""), read_host_file(systemd_resolved_upstream), ipv6);
    }
    if (!given) return std::nullopt;
    return sandbox_resolver{edited_resolv_conf(c), {}};
}

}  // namespace ctr_run
