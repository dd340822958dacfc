// pasta: a sandbox's network through pasta (options::pasta): the sandbox
// reaches a server of the host, a published port reaches a server inside,
// pasta ends with the sandbox, errors name the package and pasta's words.
//
// Every test first enters a network namespace of its own on its thread
// (net_host.hpp's test_host), inside the one the test main made: pasta runs
// in the caller's namespace, so that small host is all it sees, and no
// packet reaches a real interface.
#include "net_host.hpp"
#include "support.hpp"

#include <ctr/pasta.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

namespace {

using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;
using ctr::net::ipv4_address;
using ctr_test::one_shot_server;
using ctr_test::test_host;

bool has_exited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

class pasta_both_user_namespaces : public testing::TestWithParam<bool> {};

TEST_P(pasta_both_user_namespaces, the_sandbox_reaches_the_hosts_server_and_pasta_ends_with_it) {
    CTR_SKIP_WITHOUT_PASTA();
    test_host host;
    one_shot_server server(test_host::server_address, 7200);
    // With its own user namespace the sandbox's network namespace belongs
    // to it, and pasta joins it first (--userns); without, only --netns.
    ctr::process::options options{.std_out = stdio::capture(), .pasta = ctr::net::pasta{}};
    if (GetParam()) options.namespaces = ctr::ns::user;
    auto child = spawn(helper({"tcp-ask", test_host::server_address.to_string(), "7200", "hi"}), options);
    const pid_t pasta = child.pasta_pid();
    ASSERT_GT(pasta, 0);
    const ctr::unique_fd pasta_fd(static_cast<int>(syscall(SYS_pidfd_open, pasta, 0)));
    ASSERT_TRUE(pasta_fd) << std::strerror(errno);
    EXPECT_FALSE(has_exited(pasta_fd.get()));
    const auto r = child.wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_EQ(r.std_out, "host got hi\n");
    // Reaped with the sandbox: gone, and no child of ours left.
    EXPECT_EQ(child.pasta_pid(), -1);
    EXPECT_TRUE(has_exited(pasta_fd.get()));
    EXPECT_FALSE(ctr_test::has_children());
}

INSTANTIATE_TEST_SUITE_P(pasta, pasta_both_user_namespaces, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& info) {
                             return info.param ? "own_user_namespace" : "callers_user_namespace";
                         });

TEST(pasta, the_sandbox_gets_the_hosts_address_and_route_before_its_command_runs) {
    CTR_SKIP_WITHOUT_PASTA();
    test_host host;
    auto child = spawn(helper({"addresses"}),
                       {.std_out = stdio::capture(), .pasta = ctr::net::pasta{.interface_name = "eth0"}});
    const auto r = child.wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_NE(r.std_out.find("eth0 198.51.100.1/25 up"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("default via 198.51.100.126 dev eth0"), std::string::npos) << r.std_out;
}

TEST(pasta, a_published_port_reaches_a_server_inside) {
    CTR_SKIP_WITHOUT_PASTA();
    test_host host;
    auto server = spawn(helper({"tcp-echo", "7000"}),
                        {.std_out = stdio::pipe(), .pasta = ctr::net::pasta{.tcp_ports = {"7100:7000"}}});
    ASSERT_EQ(ctr_test::read_line_of(server.std_out().get()), "listening\n");
    // The host's side of the port is pasta's socket in this namespace.
    const std::string payload(100000, 'x');
    const auto reply = ctr_test::tcp_exchange(ipv4_address::parse("198.51.100.1").to_in_addr(), 7100, payload);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(*reply, payload);
    EXPECT_EQ(server.wait().exit_code, 0);
}

TEST(pasta, only_what_is_asked_for_is_forwarded) {
    // pasta's own defaults forward every port the sandbox binds (found by
    // scanning it every second, so no test could tell in a bounded time),
    // let the sandbox's loopback reach the caller's and map the gateway to
    // the caller's loopback; ctr's command line closes all of that.
    const auto has = [](const std::vector<std::string>& argv, const std::string& option, const std::string& value) {
        for (std::size_t i = 0; i + 1 < argv.size(); ++i)
            if (argv[i] == option && argv[i + 1] == value) return true;
        return false;
    };
    const auto closed = ctr::net::detail::pasta_command(ctr::net::pasta{}, false, false);
    EXPECT_TRUE(has(closed, "-t", "none"));
    EXPECT_TRUE(has(closed, "-u", "none"));
    EXPECT_TRUE(has(closed, "-T", "none"));
    EXPECT_TRUE(has(closed, "-U", "none"));
    EXPECT_NE(std::find(closed.begin(), closed.end(), "--no-map-gw"), closed.end());
    const auto published = ctr::net::detail::pasta_command(
        ctr::net::pasta{.tcp_ports = {"8080:80"}, .udp_ports = {"5353:53"}, .extra_args = {"--mtu", "1500"}}, true, true);
    EXPECT_TRUE(has(published, "-t", "8080:80"));
    EXPECT_FALSE(has(published, "-t", "none"));
    EXPECT_TRUE(has(published, "-u", "5353:53"));
    EXPECT_FALSE(has(published, "-u", "none"));
    EXPECT_TRUE(has(published, "--userns", "/proc/self/fd/4"));
    EXPECT_TRUE(has(published, "--runas", "0"));
    EXPECT_EQ(published.back(), "1500");
}

TEST(pasta, a_missing_pasta_names_the_package_and_leaks_nothing) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    test_host host;
    const auto fds_before = ctr_test::open_fds();
    try {
        auto child = spawn(helper({"exit", "0"}), {.pasta = ctr::net::pasta{.program = "/nonexistent/pasta"}});
        ADD_FAILURE() << "spawn started a sandbox without pasta";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::start_network_helper);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("install the package passt"), std::string::npos) << e.what();
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(pasta, a_failing_pasta_is_quoted_and_leaks_nothing) {
    CTR_SKIP_WITHOUT_PASTA();
    test_host host(false);  // no default route: nothing for pasta to copy
    const auto fds_before = ctr_test::open_fds();
    try {
        auto child = spawn(helper({"exit", "0"}), {.pasta = ctr::net::pasta{}});
        ADD_FAILURE() << "spawn started a sandbox although pasta failed";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::start_network_helper);
        const std::string what = e.what();
        EXPECT_NE(what.find("pasta exited with status"), std::string::npos) << what;
        EXPECT_NE(what.find("interface"), std::string::npos) << what;  // pasta's own words
        EXPECT_EQ(what.find("syslog"), std::string::npos) << what;
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(pasta, a_pasta_that_never_gets_ready_is_killed_at_the_timeout) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    test_host host;
    // A stand-in that takes pasta's arguments and then neither configures
    // anything nor exits.
    ctr_test::temp_dir dir;
    const std::string fake = dir.path + "/pasta";
    {
        std::ofstream script(fake);
        script << "#!/bin/sh\necho 'stand-in: waiting' >&2\nexec sleep 60\n";
    }
    chmod(fake.c_str(), 0755);
    const auto fds_before = ctr_test::open_fds();
    try {
        auto child = spawn(helper({"exit", "0"}),
                           {.pasta = ctr::net::pasta{.program = fake, .ready_timeout = std::chrono::milliseconds(300)}});
        ADD_FAILURE() << "spawn started a sandbox without a ready pasta";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::start_network_helper);
        EXPECT_EQ(e.code().value(), ETIMEDOUT);
        EXPECT_NE(std::string(e.what()).find("within 300 ms: stand-in: waiting"), std::string::npos) << e.what();
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(pasta, failing_calls_while_starting_pasta_leak_nothing) {
    CTR_SKIP_WITHOUT_PASTA();
    test_host host;
    using ctr::detail::sys::call;
    const auto fds_before = ctr_test::open_fds();
    // Each call in turn (the file for pasta's errors, every pipe of the
    // launch and of pasta's, the waits), until the launch gets past them all.
    for (const call failing : {call::memfd_create, call::pipe2, call::ppoll}) {
        int failures = 0;
        for (int skip = 0; skip < 20; ++skip) {
            SCOPED_TRACE("call " + std::to_string(static_cast<int>(failing)) + ", skip " + std::to_string(skip));
            ctr::detail::sys::fault_injection fault(failing, EMFILE, skip, 1);
            try {
                auto child = spawn(helper({"exit", "0"}), {.pasta = ctr::net::pasta{}});
                EXPECT_EQ(child.wait().exit_code, 0);
                break;
            } catch (const ctr::error& e) {
                ++failures;
                EXPECT_EQ(e.code().value(), EMFILE) << e.what();
            }
        }
        EXPECT_GT(failures, 0);
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(pasta, a_sandbox_that_fails_after_pasta_started_ends_pasta_too) {
    CTR_SKIP_WITHOUT_PASTA();
    test_host host;
    const auto fds_before = ctr_test::open_fds();
    EXPECT_THROW((void)spawn({"/nonexistent/program"}, {.pasta = ctr::net::pasta{}}), ctr::error);
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(pasta, bad_options_are_refused_before_anything_starts) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const auto refused = [](const ctr::process::options& options) {
        try {
            auto child = spawn(helper({"exit", "0"}), options);
        } catch (const ctr::error& e) {
            return std::string(e.what());
        }
        return std::string("started");
    };
    EXPECT_NE(refused({.network = ctr::net::veth{}, .pasta = ctr::net::pasta{}}).find("give one"), std::string::npos);
    EXPECT_NE(refused({.pasta = ctr::net::pasta{.program = ""}}).find("program is empty"), std::string::npos);
    EXPECT_NE(refused({.pasta = ctr::net::pasta{.tcp_ports = {"80 81"}}}).find("'80 81'"), std::string::npos);
    EXPECT_NE(refused({.pasta = ctr::net::pasta{.tcp_ports = {""}}}).find("empty"), std::string::npos);
    EXPECT_NE(refused({.pasta = ctr::net::pasta{.ready_timeout = std::chrono::milliseconds(0)}}).find("ready_timeout"),
              std::string::npos);
    EXPECT_FALSE(ctr_test::has_children());
}

}  // namespace
