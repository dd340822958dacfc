// ns::scope on a worker thread of a multithreaded test: the thread goes in
// and comes back, and other threads never move.
#include "support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <atomic>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace ns = ctr::ns;

namespace {

// Whether this thread could enter and leave these namespaces; a rootless
// suite cannot come back to namespaces its user namespace does not own.
bool can_scope(ns::kinds kinds, std::string& why) {
    bool ok = true;
    std::thread probe([&] {
        try {
            ns::scope s(kinds);
        } catch (const ctr::error& e) {
            ok = false;
            why = e.what();
        }
    });
    probe.join();
    return ok;
}

#define SKIP_UNLESS_SCOPE(kinds)                                     \
    if (std::string why; !can_scope(kinds, why)) GTEST_SKIP() << why

std::uint64_t thread_inode(ns::kind k) {
    struct stat st {};
    stat(("/proc/thread-self/ns/" + std::string(ns::name(k))).c_str(), &st);
    return st.st_ino;
}

std::vector<std::string> interfaces() {
    std::vector<std::string> names;
    struct if_nameindex* list = if_nameindex();
    for (auto* i = list; i && i->if_name; ++i) names.emplace_back(i->if_name);
    if_freenameindex(list);
    return names;
}

// A TCP echo over loopback in whatever network namespace the thread is in.
bool loopback_round_trip() {
    const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    bool ok = bind(server, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 && listen(server, 1) == 0 &&
              getsockname(server, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ok = ok && connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    const int accepted = ok ? accept4(server, nullptr, nullptr, SOCK_CLOEXEC) : -1;
    char byte = 'x';
    ok = ok && accepted >= 0 && write(client, &byte, 1) == 1 && read(accepted, &byte, 1) == 1 && byte == 'x';
    for (int fd : {server, client, accepted})
        if (fd >= 0) close(fd);
    return ok;
}

}  // namespace

TEST(ns_scope, worker_thread_enters_a_fresh_network_and_comes_back) {
    SKIP_UNLESS_SCOPE(ns::network | ns::uts);
    const auto host_net = thread_inode(ns::network);
    const auto host_uts = thread_inode(ns::uts);
    std::atomic<bool> stop{false};
    std::atomic<bool> others_moved{false};
    // Another thread keeps checking that it stays in the host's namespaces.
    std::thread watcher([&] {
        while (!stop)
            if (thread_inode(ns::network) != host_net || thread_inode(ns::uts) != host_uts) others_moved = true;
    });

    std::uint64_t inside_net = 0;
    std::vector<std::string> inside_interfaces;
    bool round_trip = false;
    std::string inside_host;
    std::thread worker([&] {
        {
            ns::scope sandbox(ns::network | ns::uts);
            inside_net = thread_inode(ns::network);
            inside_interfaces = interfaces();
            round_trip = loopback_round_trip();
            sethostname("scoped", 6);
            utsname name{};
            uname(&name);
            inside_host = name.nodename;
        }
        EXPECT_EQ(thread_inode(ns::network), host_net);
        EXPECT_EQ(thread_inode(ns::uts), host_uts);
    });
    worker.join();
    stop = true;
    watcher.join();

    EXPECT_NE(inside_net, host_net);
    EXPECT_EQ(inside_interfaces, std::vector<std::string>{"lo"});
    EXPECT_TRUE(round_trip);
    EXPECT_EQ(inside_host, "scoped");
    EXPECT_FALSE(others_moved);
    utsname name{};
    uname(&name);
    EXPECT_STRNE(name.nodename, "scoped");
}

TEST(ns_scope, thread_comes_back_when_an_exception_leaves_the_scope) {
    SKIP_UNLESS_SCOPE(ns::network);
    const auto host_net = thread_inode(ns::network);
    std::thread worker([&] {
        try {
            ns::fresh_scope<ns::kind::network> sandbox;
            EXPECT_NE(thread_inode(ns::network), host_net);
            throw std::runtime_error("leaving early");
        } catch (const std::runtime_error&) {
        }
        EXPECT_EQ(thread_inode(ns::network), host_net);
    });
    worker.join();
}

TEST(ns_scope, mount_namespace_per_thread_keeps_mounts_away_from_other_threads) {
    if (!ctr_test::private_mount_namespace) GTEST_SKIP() << "needs the test's private mount namespace";
    SKIP_UNLESS_SCOPE(ns::mount);
    ctr_test::temp_dir dir;
    const auto host_mnt = thread_inode(ns::mount);
    std::string cwd_after;
    bool mounted_inside = false;
    std::thread worker([&] {
        {
            ns::scope sandbox(ns::mount);
            mounted_inside = mount("tmpfs", dir.path.c_str(), "tmpfs", 0, "size=1m") == 0;
            std::ofstream(dir.path + "/only-inside") << "x";
        }
        EXPECT_EQ(thread_inode(ns::mount), host_mnt);
        char buffer[4096];
        cwd_after = getcwd(buffer, sizeof buffer) ? buffer : "";
    });
    worker.join();
    EXPECT_TRUE(mounted_inside);
    EXPECT_NE(access((dir.path + "/only-inside").c_str(), F_OK), 0);  // the tmpfs was only in the scope
    char buffer[4096];
    EXPECT_EQ(cwd_after, getcwd(buffer, sizeof buffer));
}

TEST(ns_scope, joins_an_existing_namespace) {
    SKIP_UNLESS_SCOPE(ns::uts | ns::network);
    auto child = ctr::process::spawn(ctr_test::helper({"sleep", "100"}),
                                     {.namespaces = ns::uts | ns::network, .hostname = "joined"});
    const auto child_net = ns::inode_of(ns::network, child.pid());
    std::string seen;
    std::uint64_t net = 0;
    std::thread worker([&] {
        try {
            ns::scope joined({ns::existing::path(ns::uts, "/proc/" + std::to_string(child.pid()) + "/ns/uts"),
                              ns::existing::of_pidfd(ns::network, child.pidfd())});
            utsname name{};
            uname(&name);
            seen = name.nodename;
            net = thread_inode(ns::network);
        } catch (const ctr::error& e) {
            seen = e.what();
        }
    });
    worker.join();
    EXPECT_EQ(seen, "joined");
    EXPECT_EQ(net, child_net);
    child.kill();
}

TEST(ns_scope, rootless_caller_is_told_it_could_not_come_back) {
    std::string why;
    if (can_scope(ns::network, why)) GTEST_SKIP() << "this caller can come back to its network namespace";
    EXPECT_NE(why.find("could not come back"), std::string::npos) << why;
}

TEST(ns_scope, kinds_that_only_apply_to_children_are_refused) {
    for (ns::kind k : {ns::pid, ns::time, ns::user}) {
        try {
            ns::scope s(k);
            ADD_FAILURE() << "entered " << ns::name(k);
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::prepare);
            EXPECT_NE(std::string(e.what()).find("process::spawn"), std::string::npos) << e.what();
        }
    }
    // ns::fresh_scope<ns::kind::pid> does not compile: a static_assert
    // explains why (checked by tests/compile_fail in CMake).
}
