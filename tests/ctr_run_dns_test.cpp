// ctr-run's /etc/resolv.conf for each network (ctr-run/resolv_conf.hpp,
// docs/networking.md, DNS): a veth sandbox resolves a name through the
// host's resolver beyond the test's router, through outbound NAT, and
// reaches the server the name stands for; the host's loopback resolvers are
// left out; --network none fails a lookup at once; pasta's forwarder
// reaches a resolver on the host's loopback. Each test binds its own host
// /etc/resolv.conf in a mount namespace of its own and runs a tiny DNS
// server of its own, in network namespaces made here (net_host.hpp), on
// documentation addresses.
#include "ctr_run_support.hpp"
#include "net_host.hpp"
#include "support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#ifdef CTR_RUN_BINARY

namespace {

using namespace ctr_run_test;
namespace fs = std::filesystem;

// The name the test's DNS server knows, and what it stands for: the small
// internet's server behind the router.
constexpr const char* known_name = "www.example.test";
const std::string known_address = ctr_test::small_internet::server_address.to_string();
// The resolver, on the router's loopback beside the server.
const ctr::net::ipv4_address resolver_address = ctr::net::ipv4_address::parse("198.51.100.153");

// A DNS server on UDP port 53 of `address` in the calling thread's network
// namespace (the socket stays there; the thread that serves may be
// anywhere): an A record for known_name, no record of another type for it
// (NODATA), NXDOMAIN for every other name. It keeps the source address of
// each query.
class tiny_dns_server {
public:
    explicit tiny_dns_server(const ctr::net::ipv4_address& address) {
        fd_ = ctr::unique_fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_port = htons(53);
        at.sin_addr = address.to_in_addr();
        if (!fd_ || bind(fd_.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
            ADD_FAILURE() << "DNS server on " << address.to_string() << ":53: " << std::strerror(errno);
            return;
        }
        thread_ = std::thread([this] { serve(); });
    }
    ~tiny_dns_server() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    tiny_dns_server(const tiny_dns_server&) = delete;
    tiny_dns_server& operator=(const tiny_dns_server&) = delete;

    // "<source address> <name>" of each query so far.
    std::vector<std::string> queries() {
        std::lock_guard lock(mutex_);
        return queries_;
    }

private:
    void serve() {
        while (!stop_) {
            pollfd ready{fd_.get(), POLLIN, 0};
            if (poll(&ready, 1, 100) <= 0) continue;
            unsigned char query[512];
            sockaddr_in from{};
            socklen_t size = sizeof from;
            const ssize_t n = recvfrom(fd_.get(), query, sizeof query, 0, reinterpret_cast<sockaddr*>(&from), &size);
            if (n < 12) continue;
            // The question: labels up to a zero byte, then type and class.
            std::string name;
            std::size_t at = 12;
            while (at < static_cast<std::size_t>(n) && query[at] != 0 && query[at] < 64) {
                const std::size_t length = query[at];
                if (at + 1 + length > static_cast<std::size_t>(n)) break;
                if (!name.empty()) name += '.';
                for (std::size_t i = 0; i < length; ++i)
                    name += static_cast<char>(std::tolower(query[at + 1 + i]));
                at += 1 + length;
            }
            const std::size_t question_end = at + 5;  // the zero byte, type, class
            if (question_end > static_cast<std::size_t>(n)) continue;
            const unsigned type = static_cast<unsigned>(query[at + 1] << 8 | query[at + 2]);
            {
                char text[INET_ADDRSTRLEN] = {};
                inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
                std::lock_guard lock(mutex_);
                queries_.push_back(std::string(text) + " " + name);
            }
            const bool known = name == known_name;
            const bool answer = known && type == 1;  // A
            std::vector<unsigned char> reply(query, query + question_end);
            reply[2] = static_cast<unsigned char>(0x80 | (query[2] & 0x01));   // a response; RD as asked
            reply[3] = static_cast<unsigned char>(0x80 | (known ? 0 : 3));      // RA; NXDOMAIN for another name
            reply[4] = 0, reply[5] = 1;                                          // one question
            reply[6] = 0, reply[7] = answer ? 1 : 0;                             // answers
            reply[8] = reply[9] = reply[10] = reply[11] = 0;                     // no authority, no additional
            if (answer) {
                const in_addr address = ctr::net::ipv4_address::parse(known_address).to_in_addr();
                const unsigned char record[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
                reply.insert(reply.end(), std::begin(record), std::end(record));
                const auto* bytes = reinterpret_cast<const unsigned char*>(&address.s_addr);
                reply.insert(reply.end(), bytes, bytes + 4);
            }
            (void)sendto(fd_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), size);
        }
    }

    ctr::unique_fd fd_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<std::string> queries_;
};

// The host's resolver files as a test wants them, in a mount namespace of
// the calling thread's own (ctr-run, started from this thread, reads them
// there): /etc/resolv.conf with `resolv`, and a private /run (a tmpfs) with
// systemd-resolved's upstream list only where `upstream` is given. Where
// /etc/resolv.conf is a link into /run, the file is written there.
struct host_resolver_files {
    ctr::ns::scope mounts{ctr::ns::kinds(ctr::ns::mount)};
    scratch dir;

    host_resolver_files(const std::string& resolv, const std::optional<std::string>& upstream) {
        std::error_code ec;
        const fs::path target = fs::canonical("/etc/resolv.conf", ec);
        const bool under_run = !ec && target.string().starts_with("/run/");
        if (mount("ctr-test-run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
            ADD_FAILURE() << "tmpfs on /run: " << std::strerror(errno);
            return;
        }
        if (upstream) {
            fs::create_directories("/run/systemd/resolve");
            write_file("/run/systemd/resolve/resolv.conf", *upstream);
        }
        if (under_run) {
            fs::create_directories(target.parent_path());
            write_file(target, resolv);
            return;
        }
        write_file(dir / "resolv.conf", resolv);
        chmod((dir / "resolv.conf").c_str(), 0644);
        if (mount((dir / "resolv.conf").c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0)
            ADD_FAILURE() << "binding over /etc/resolv.conf: " << std::strerror(errno);
    }
};

#define SKIP_WITHOUT_HOST_RESOLV_CONF()       \
    if (!fs::exists("/etc/resolv.conf"))      \
    GTEST_SKIP() << "the host has no /etc/resolv.conf to bind over"

const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));

// The case: a veth sandbox looks a name up through the host's
// resolver, which is beyond the router, and reaches the server it names.
// The host's loopback resolvers (one of each family) are left out, its
// search domains and options kept; the resolver sees the host's address
// (masqueraded); a name it does not know fails.
TEST(ctr_run_dns, a_veth_sandbox_resolves_through_the_hosts_resolver_beyond_the_router_and_reaches_the_server) {
    CTR_SKIP_WITHOUT_NFTABLES();
    SKIP_WITHOUT_HOST_RESOLV_CONF();
    host_resolver_files files("# the test's\nnameserver 127.0.0.53\nnameserver ::1\nnameserver " +
                                  resolver_address.to_string() + "\nsearch example.test\noptions timeout:2 attempts:2\n",
                              std::nullopt);
    ctr_test::small_internet net;
    std::optional<tiny_dns_server> dns;
    {
        ctr::ns::scope in_router({ctr::ns::existing::fd(ctr::ns::network, net.router.get())});
        auto netlink = ctr::net::detail::rtnetlink::open();
        ASSERT_EQ(ctr::net::detail::add_address(netlink, static_cast<int>(ctr::net::detail::interface_index("lo")),
                                                ctr::net::ipv4_interface{resolver_address, 32}),
                  0);
        dns.emplace(resolver_address);
    }
    std::thread server = net.serve_one();
    const auto r = run({"--network", "veth", "-v", helper_dir + ":" + helper_dir + ":ro", "/bin/sh", "-c",
                        "cat /etc/resolv.conf; getent hosts www; getent hosts missing.example.test; echo missing: $?; "
                        "address=$(getent hosts www.example.test) && '" + ctr_test::probe_helper +
                            "' tcp-send ${address%% *} " + std::to_string(ctr_test::small_internet::server_port) +
                            " hi"});
    net.stop_serving();
    server.join();
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.err, "");
    const std::string file = "nameserver " + resolver_address.to_string() +
                             "\nsearch example.test\noptions timeout:2 attempts:2\n";
    EXPECT_EQ(r.out.substr(0, file.size()), file) << r.out;
    // "www" through the search domain; getent pads the address.
    EXPECT_TRUE(contains(r.out, known_address + " ")) << r.out;
    EXPECT_TRUE(contains(r.out, " www.example.test\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "missing: 2\n")) << r.out;
    EXPECT_TRUE(r.out.ends_with("server saw " + ctr_test::small_internet::host_uplink.address.to_string())) << r.out;
    const auto queries = dns->queries();
    EXPECT_FALSE(queries.empty());
    for (const auto& q : queries)
        EXPECT_TRUE(q.starts_with(ctr_test::small_internet::host_uplink.address.to_string() + " ")) << q;
    EXPECT_TRUE(std::find(queries.begin(), queries.end(),
                          ctr_test::small_internet::host_uplink.address.to_string() + " missing.example.test") !=
                queries.end());
    EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
}

// A host whose resolvers are all on its loopback: with systemd-resolved's
// upstream list, the sandbox gets that; without, Docker's public fallback
// and one line saying so. --dns, --dns-search and --dns-option replace
// their parts. Only the file is read: nothing is looked up.
TEST(ctr_run_dns, a_host_with_only_loopback_resolvers_gives_the_upstream_or_the_public_fallback_and_says_so) {
    CTR_SKIP_WITHOUT_NFTABLES();
    SKIP_WITHOUT_HOST_RESOLV_CONF();
    const std::string stub = "nameserver 127.0.0.53\nnameserver ::1\nsearch example.test\noptions edns0\n";
    {
        host_resolver_files files(stub, "nameserver 198.51.100.154\nnameserver fe80::1%eth0\nnameserver 2001:db8::53\n");
        ctr_test::small_internet net;
        // The IPv6 resolver with the sandbox's IPv6 outbound NAT (a
        // link-local one never: it is on the host's own link)...
        auto r = run({"--network", "veth", "cat", "/etc/resolv.conf"});
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(r.out, std::string("nameserver 198.51.100.154\n") +
                             (ctr_test::ipv6_available() ? "nameserver 2001:db8::53\n" : "") +
                             "search example.test\noptions edns0\n");
        EXPECT_EQ(r.err, "");
        // ...and not without IPv6.
        r = run({"--network", "veth", "--sysctl", "net.ipv6.conf.all.disable_ipv6=1", "cat", "/etc/resolv.conf"});
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(r.out, "nameserver 198.51.100.154\nsearch example.test\noptions edns0\n");
        EXPECT_EQ(r.err, "");
    }
    host_resolver_files files(stub, std::nullopt);
    ctr_test::small_internet net;
    auto r = run({"--network", "veth", "cat", "/etc/resolv.conf"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch example.test\noptions edns0\n");
    EXPECT_TRUE(contains(r.err, "ctr-run: --network veth: the host's nameservers (127.0.0.53, ::1) are not reachable"))
        << r.err;
    EXPECT_TRUE(contains(r.err, "--dns names others")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
    r = run({"--network", "veth", "--dns", "198.51.100.155", "--dns-search", ".", "--dns-option", "ndots:2", "cat",
             "/etc/resolv.conf"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "nameserver 198.51.100.155\noptions ndots:2\n");
    EXPECT_EQ(r.err, "");
}

// --network none keeps the host's file: with no route out, the lookup fails
// at once rather than waiting out the 30 s the file allows. The bound
// (--timeout) is what would catch a wait: a veth sandbox asked to use a
// resolver that never answers is ended by it.
TEST(ctr_run_dns, with_network_none_a_lookup_fails_at_once_and_a_silent_resolver_would_be_caught) {
    CTR_SKIP_WITHOUT_NFTABLES();
    SKIP_WITHOUT_HOST_RESOLV_CONF();
    const std::string resolv = "nameserver " + resolver_address.to_string() + "\noptions timeout:30 attempts:1\n";
    host_resolver_files files(resolv, std::nullopt);
    ctr_test::small_internet net;
    auto r = run({"--timeout", "20", "--network", "none", "/bin/sh", "-c",
                  "cat /etc/resolv.conf; getent hosts www.example.test; echo status: $?"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, resolv + "status: 2\n") << r.err;
    // Nothing answers on 198.51.100.250, beyond the router, which drops
    // what is not its own without a word: the lookup waits until --timeout.
    r = run({"--timeout", "2", "--network", "veth", "--dns", "198.51.100.250", "getent", "hosts", "www.example.test"});
    EXPECT_EQ(r.status, 124) << r.out << r.err;
}

// A host without /etc/resolv.conf (a minimal VM's initramfs; here a tmpfs
// over /etc in the test's mount namespace): a veth run on the host's root
// binds nothing (its root could not get the file, and the C library's
// default, 127.0.0.1, refuses at once inside); a --rootfs gets the fallback.
TEST(ctr_run_dns, a_host_without_resolv_conf_still_runs_a_veth_sandbox) {
    CTR_SKIP_WITHOUT_NFTABLES();
    SKIP_WITHOUT_BUSYBOX();
    ctr::ns::scope mounts{ctr::ns::kinds(ctr::ns::mount)};
    ASSERT_EQ(mount("ctr-test-etc", "/etc", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), 0) << std::strerror(errno);
    ASSERT_FALSE(fs::exists("/etc/resolv.conf"));
    ctr_test::small_internet net;
    auto r = run({"--network", "veth", "/bin/sh", "-c", "cat /etc/resolv.conf 2>/dev/null; echo status: $?"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "status: 1\n");
    EXPECT_EQ(r.err, "");
    r = run({"--rootfs", busybox_rootfs(), "--network", "veth", "cat", "/etc/resolv.conf"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    EXPECT_TRUE(contains(r.err, "the host's /etc/resolv.conf names no nameserver")) << r.err;
}

// pasta forwards DNS to the host's first resolver from the host's own
// network namespace, so a resolver on the host's loopback answers too.
TEST(ctr_run_dns, a_pasta_sandbox_reaches_a_resolver_on_the_hosts_loopback_through_the_forwarder) {
    CTR_SKIP_WITHOUT_PASTA();
    SKIP_WITHOUT_HOST_RESOLV_CONF();
    host_resolver_files files("nameserver 127.0.0.1\nnameserver 198.51.100.129\noptions timeout:2\n", std::nullopt);
    ctr_test::test_host host;
    tiny_dns_server dns(ctr::net::ipv4_address::parse("127.0.0.1"));
    const auto r = run({"--network", "pasta", "/bin/sh", "-c", "cat /etc/resolv.conf; getent hosts www.example.test"});
    EXPECT_EQ(r.status, 0) << r.err;
    // 169.254.1.1: pasta's forwarder, the address Podman gives it.
    const std::string file = "nameserver 169.254.1.1\nnameserver 198.51.100.129\noptions timeout:2\n";
    EXPECT_EQ(r.out.substr(0, file.size()), file)
        << r.out;
    EXPECT_TRUE(contains(r.out, known_address + " ")) << r.out;
    EXPECT_FALSE(dns.queries().empty());
}

// pasta's forwarder takes the host's first IPv4 resolver: a host with IPv6
// ones only does not get it (it would drop every query), and a resolver on
// the host's loopback is left out as for a veth.
TEST(ctr_run_dns, a_pasta_sandbox_of_a_host_without_an_ipv4_resolver_gets_no_forwarder) {
    CTR_SKIP_WITHOUT_PASTA();
    SKIP_WITHOUT_HOST_RESOLV_CONF();
    host_resolver_files files("nameserver ::1\nnameserver 2001:db8::53\n", std::nullopt);
    ctr_test::test_host host;
    const auto r = run({"--network", "pasta", "cat", "/etc/resolv.conf"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "nameserver 2001:db8::53\n");
}

}  // namespace

#endif  // CTR_RUN_BINARY
