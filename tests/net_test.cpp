// Networking: veth pairs made by spawn (options::network), the
// addresses and routes the sandbox sees, traffic both ways, cleanup, errors.
// Everything runs in the network namespace the test main made, which plays
// the host: no packet reaches a real interface.
#include "support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <set>
#include <string>
#include <thread>

namespace {

using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;

// Connects to address:port (retrying while the far end comes up), sends
// `text`, half-closes and returns everything that comes back.
std::string tcp_round_trip(const ctr::net::ipv4_address& address, int port, const std::string& text) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (auto reply = ctr_test::tcp_exchange(address.to_in_addr(), port, text)) return *reply;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "could not connect to " << address.to_string() << ":" << port;
    return {};
}

bool interface_exists(const std::string& name) { return ctr::net::detail::interface_index(name) > 0; }

TEST(net, veth_gives_the_child_an_addressed_interface_and_a_default_route) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    auto child = spawn(helper({"addresses"}), {.std_out = stdio::capture(), .network = ctr::net::veth{}});
    ASSERT_NE(child.network(), nullptr);
    const ctr::net::veth_info info = *child.network();
    const auto r = child.wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_EQ(info.container_name, "eth0");
    EXPECT_EQ(info.host_address.prefix_length, 30);
    EXPECT_TRUE(info.host_address.contains(info.container_address.address));
    EXPECT_TRUE(ctr::net::veth{}.pool.contains(info.host_address.address)) << info.host_address.to_string();
    EXPECT_NE(r.std_out.find("eth0 " + info.container_address.to_string() + " up"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("lo 127.0.0.1/8 up"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("default via " + info.host_address.address.to_string() + " dev eth0"), std::string::npos)
        << r.std_out;
}

TEST(net, explicit_addresses_names_and_mtu_are_used_and_the_route_can_be_left_out) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    auto child = spawn(helper({"addresses"}),
                       {.std_out = stdio::capture(),
                        .network = ctr::net::veth{.host_name = "ctr-test-a",
                                                  .container_name = "inside0",
                                                  .host_address = ctr::net::ipv4_interface::parse("10.77.0.1/24"),
                                                  .container_address = ctr::net::ipv4_interface::parse("10.77.0.9/24"),
                                                  .default_route = false,
                                                  .mtu = 1400}});
    EXPECT_TRUE(interface_exists("ctr-test-a"));
    const auto r = child.wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_NE(r.std_out.find("inside0 10.77.0.9/24 up mtu 1400"), std::string::npos) << r.std_out;
    EXPECT_EQ(r.std_out.find("default via"), std::string::npos) << r.std_out;
}

TEST(net, the_host_reaches_a_server_inside_and_the_sandbox_reaches_the_host_end) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    auto server = spawn(helper({"tcp-echo", "7000"}), {.std_out = stdio::pipe(), .network = ctr::net::veth{}});
    ASSERT_EQ(ctr_test::read_line_of(server.std_out().get()), "listening\n");
    const std::string payload(300000, 'x');
    EXPECT_EQ(tcp_round_trip(server.network()->container_address.address, 7000, payload), payload);
    EXPECT_EQ(server.wait().exit_code, 0);

    // The other way: a server on the host side, reached through the gateway.
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_port = htons(7001);
    const int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof any), 0) << std::strerror(errno);
    ASSERT_EQ(listen(listener, 4), 0);
    std::thread answer([&] {
        const int c = accept(listener, nullptr, nullptr);
        char buffer[64];
        const ssize_t n = read(c, buffer, sizeof buffer);
        const std::string reply = "host got " + std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
        EXPECT_GT(write(c, reply.data(), reply.size()), 0);
        close(c);
    });
    auto client = spawn(helper({"tcp-send-gateway", "7001", "hi"}), {.std_out = stdio::capture(), .network = ctr::net::veth{}});
    const auto r = client.wait();
    answer.join();
    close(listener);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.std_out, "host got hi");
}

TEST(net, the_pair_lives_as_long_as_the_sandboxs_namespace) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    // A caller step holds the child's network namespace open, as a process
    // that joined it or ns::persist would: the pair outlives the child.
    ctr::unique_fd held;
    auto child = spawn(helper({"exit", "0"}),
                       {.network = ctr::net::veth{},
                        .while_child_waits = {[&](const ctr::process::waiting_child& w) {
                            held.reset(open(("/proc/" + std::to_string(w.pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
                        }}});
    ASSERT_TRUE(held);
    const std::string name = child.network()->host_name;
    EXPECT_EQ(child.wait().exit_code, 0);
    child = ctr::process::child{};
    EXPECT_TRUE(interface_exists(name));
    // Once the namespace ends, the kernel deletes the pair in the background;
    // the bound is only a hang guard.
    held.reset();
    for (int i = 0; i < 1000 && interface_exists(name); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(interface_exists(name)) << name;
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(net, every_launch_shape_gets_its_interface_configured) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    using ctr::process::options;
    struct shape {
        const char* name;
        options opts;
    };
    std::vector<shape> shapes;
    shapes.push_back({"copied memory", {}});
    shapes.back().opts.clone = ctr::process::clone_style::copy_memory;
    shapes.push_back({"user namespace", {}});
    shapes.back().opts.namespaces = ctr::ns::user;
    shapes.push_back({"pid namespace with init", {}});
    shapes.back().opts.namespaces = ctr::ns::pid;
    shapes.push_back({"pid namespace without init", {}});
    shapes.back().opts.namespaces = ctr::ns::pid;
    shapes.back().opts.init = false;
    shapes.push_back({"time namespace", {}});
    shapes.back().opts.namespaces = ctr::ns::time;
    for (auto& s : shapes) {
        if (s.opts.namespaces.has(ctr::ns::time) && !ctr::probe().time_namespaces.available) continue;
        s.opts.std_out = stdio::capture();
        s.opts.network = ctr::net::veth{};
        auto child = spawn(helper({"addresses"}), s.opts);
        const std::string address = child.network()->container_address.to_string();
        const std::string gateway = child.network()->host_address.address.to_string();
        const auto r = child.wait();
        EXPECT_EQ(r.exit_code, 0) << s.name;
        EXPECT_NE(r.std_out.find("eth0 " + address + " up"), std::string::npos) << s.name << ": " << r.std_out;
        EXPECT_NE(r.std_out.find("default via " + gateway), std::string::npos) << s.name << ": " << r.std_out;
    }
}

TEST(net, a_child_that_fails_before_the_network_is_made_reports_its_own_error) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    // The join runs before the child waits; the child's own error must win
    // over whatever the parent's steps then run into.
    for (int i = 0; i < 5; ++i) {
        try {
            (void)spawn(helper({"exit", "0"}), {.join = {ctr::ns::existing::path(ctr::ns::uts, "/dev/null")},
                                          .network = ctr::net::veth{}});
            ADD_FAILURE() << "joining /dev/null was accepted";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::join_namespace) << e.what();
        }
    }
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(net, a_standalone_pair_is_deleted_by_its_owner) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    // A namespace held by a sleeping child stands for one the caller keeps.
    auto holder = spawn(helper({"sleep", "10"}), {.namespaces = ctr::ns::network});
    {
        auto pair = ctr::net::create_veth({.host_name = "ctr-test-own", .container_name = "peer0"},
                                          ctr::net::peer_namespace::of_process(holder.pid()));
        EXPECT_TRUE(interface_exists("ctr-test-own"));
        EXPECT_EQ(pair.host_link().index(), pair.info().host_index);
        EXPECT_EQ(pair.host_link().name(), "ctr-test-own");
    }
    EXPECT_FALSE(interface_exists("ctr-test-own"));
    holder.kill();
    holder.wait();
}

TEST(net, concurrent_launches_get_distinct_names_and_subnets) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    constexpr int count = 6;
    std::vector<ctr::process::child> children(count);
    std::vector<std::thread> threads;
    std::vector<std::string> failures(count);
    for (int i = 0; i < count; ++i)
        threads.emplace_back([&, i] {
            // One with a name of its own: it takes a pool slot all the same.
            ctr::net::veth v;
            if (i == 0) v.host_name = "ctr-test-named";
            try {
                children[static_cast<std::size_t>(i)] = spawn(helper({"sleep", "10"}), {.network = v});
            } catch (const std::exception& e) {
                failures[static_cast<std::size_t>(i)] = e.what();
            }
        });
    for (auto& t : threads) t.join();
    for (const auto& f : failures) ASSERT_EQ(f, "");
    std::set<std::string> names, subnets;
    for (auto& c : children) {
        ASSERT_NE(c.network(), nullptr);
        names.insert(c.network()->host_name);
        subnets.insert(c.network()->host_address.network().to_string());
    }
    EXPECT_EQ(names.size(), static_cast<std::size_t>(count));
    EXPECT_EQ(subnets.size(), static_cast<std::size_t>(count));
}

TEST(net, the_pool_skips_subnets_already_in_use_and_says_when_it_is_full) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    // Slot 0 of 10.78.0.0/29 is taken by an address of this namespace.
    auto first = spawn(helper({"sleep", "10"}),
                       {.network = ctr::net::veth{.host_name = "ctr-test-b",
                                                  .host_address = ctr::net::ipv4_interface::parse("10.78.0.1/30"),
                                                  .container_address = ctr::net::ipv4_interface::parse("10.78.0.2/30")}});
    const auto pool = ctr::net::ipv4_interface::parse("10.78.0.0/29");
    auto second = spawn(helper({"sleep", "10"}), {.network = ctr::net::veth{.pool = pool}});
    EXPECT_EQ(second.network()->host_address.to_string(), "10.78.0.5/30");
    EXPECT_EQ(second.network()->container_address.to_string(), "10.78.0.6/30");
    try {
        (void)spawn(helper({"sleep", "10"}), {.network = ctr::net::veth{.pool = pool}});
        ADD_FAILURE() << "a full pool was accepted";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::create_link);
        EXPECT_EQ(e.code().value(), EADDRNOTAVAIL);
        EXPECT_NE(std::string(e.what()).find("10.78.0.0/29"), std::string::npos) << e.what();
    }
    first.kill();
    second.kill();
    first.wait();
    second.wait();
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(net, bad_options_are_refused_before_anything_starts) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const auto before = ctr_test::open_fds();
    const auto refuses = [](const ctr::net::veth& v, const char* needle) {
        try {
            (void)spawn(helper({"exit", "0"}), {.network = v});
            ADD_FAILURE() << "accepted; expected: " << needle;
        } catch (const ctr::error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    using ctr::net::ipv4_interface;
    refuses({.host_name = "a/b"}, "interface name");
    refuses({.container_name = "much-too-long-name"}, "interface name");
    refuses({.host_address = ipv4_interface::parse("10.79.0.1/30")}, "both veth addresses");
    refuses({.host_address = ipv4_interface::parse("10.79.0.1/30"),
             .container_address = ipv4_interface::parse("10.80.0.2/30")},
            "not in the host end's subnet");
    refuses({.host_name = "lo"}, "an interface with this name exists");
    refuses({.container_name = "lo"}, "the sandbox's namespace already has an interface with this name");
    refuses({.pool = ipv4_interface::parse("10.79.0.0/31")}, "at least a /30");
    refuses({.mtu = 20}, "MTU");
    refuses({.publish = {ctr::net::port_mapping{}}}, "the container port is 0");
    EXPECT_THROW(ctr::net::ipv4_interface::parse("10.0.0.1"), ctr::error);
    EXPECT_THROW(ctr::net::ipv4_address::parse("10.0.0.256"), ctr::error);
    EXPECT_THROW(ctr::net::ipv4_address::parse("10.0.0"), ctr::error);
    EXPECT_EQ(ctr_test::open_fds(), before);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(net, a_network_cannot_be_combined_with_joining_one) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    try {
        (void)spawn(helper({"exit", "0"}), {.join = {ctr::ns::existing::path(ctr::ns::network, "/proc/self/ns/net")},
                                      .network = ctr::net::veth{}});
        ADD_FAILURE() << "accepted";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::prepare);
        EXPECT_NE(std::string(e.what()).find("cannot also join"), std::string::npos) << e.what();
    }
}

TEST(net, a_caller_without_net_admin_here_gets_the_reason) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    // A fresh user namespace does not own this network namespace: the
    // helper is root in name only and the kernel refuses the link.
    auto r = spawn(helper({"create-veth"}), {.std_out = stdio::capture(), .namespaces = ctr::ns::user}).wait();
    ASSERT_EQ(r.exit_code, 0);
    EXPECT_NE(r.std_out.find("create network link"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("CAP_NET_ADMIN"), std::string::npos) << r.std_out;
}

TEST(net, failures_in_the_parent_and_in_the_child_name_their_step_and_leak_nothing) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    namespace sys = ctr::detail::sys;
    const auto before = ctr_test::open_fds();
    {
        // The netlink socket (the id-map and stdio steps make no sockets).
        sys::fault_injection fault(sys::call::socket, EMFILE);
        try {
            (void)spawn(helper({"exit", "0"}), {.network = ctr::net::veth{}});
            ADD_FAILURE() << "accepted";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::netlink) << e.what();
            EXPECT_EQ(e.code().value(), EMFILE);
        }
    }
    {
        // Each ioctl in turn: the host end's lookups and set-up in the
        // parent, then the child's loopback and its own end. Every failure
        // names its step and interface; the child's end is reached.
        bool reached_the_child_end = false;
        for (int skip = 0; skip < 16 && !reached_the_child_end; ++skip) {
            sys::fault_injection fault(sys::call::ioctl, EADDRNOTAVAIL, skip);
            try {
                auto c = spawn(helper({"exit", "0"}), {.network = ctr::net::veth{}});
                c.wait();
            } catch (const ctr::error& e) {
                EXPECT_EQ(e.code().value(), EADDRNOTAVAIL) << e.what();
                EXPECT_TRUE(e.step() == ctr::step::create_link || e.step() == ctr::step::configure_link ||
                            e.step() == ctr::step::bring_up_loopback)
                    << e.what();
                reached_the_child_end = e.step() == ctr::step::configure_link && e.path() == "eth0";
                // The child says which part failed: the first ioctl of its
                // own end sets the address.
                if (reached_the_child_end) {
                    EXPECT_NE(std::string(e.what()).find("(setting the address)"), std::string::npos) << e.what();
                }
            }
        }
        EXPECT_TRUE(reached_the_child_end);
    }
    EXPECT_EQ(ctr_test::open_fds(), before);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(net, steps_of_the_caller_run_while_the_child_waits) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    struct stat own{};
    ASSERT_EQ(stat("/proc/self/ns/net", &own), 0);
    ino_t seen = 0;
    pid_t seen_pid = 0;
    auto child = spawn(helper({"exit", "0"}),
                       {.namespaces = ctr::ns::network,
                        .while_child_waits = {[&](const ctr::process::waiting_child& w) {
                            struct stat theirs{};
                            if (stat(("/proc/" + std::to_string(w.pid) + "/ns/net").c_str(), &theirs) == 0)
                                seen = theirs.st_ino;
                            seen_pid = w.pid;
                        }}});
    EXPECT_EQ(seen_pid, child.pid());
    EXPECT_NE(seen, 0u);
    EXPECT_NE(seen, own.st_ino);
    EXPECT_EQ(child.wait().exit_code, 0);

    // A step that throws fails the spawn; the child is killed and reaped.
    const auto before = ctr_test::open_fds();
    EXPECT_THROW((void)spawn(helper({"exit", "0"}), {.while_child_waits = {[](const ctr::process::waiting_child&) {
                                                   throw ctr::error(ctr::step::prepare, EINVAL, "hook");
                                               }}}),
                 ctr::error);
    EXPECT_EQ(ctr_test::open_fds(), before);
    EXPECT_FALSE(ctr_test::has_children());
}

}  // namespace
