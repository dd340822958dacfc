// Test main: before any test runs, the process enters a mount namespace of
// its own (and a user namespace when not root), so nothing a test mounts can
// reach the machine's mount table, and a network namespace of its own that
// plays the host for network tests, so no packet reaches a real interface.
#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

namespace ctr_test {
bool private_mount_namespace = false;
bool private_network_namespace = false;
bool real_root = false;
}

namespace {

bool write_file(const char* path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    return static_cast<bool>(out.flush());
}

void enter_private_mount_namespace() {
    const uid_t uid = geteuid();
    const gid_t gid = getegid();
    // Root of the initial user namespace maps every id onto itself.
    std::ifstream map("/proc/self/uid_map");
    std::string first_line;
    std::getline(map, first_line);
    ctr_test::real_root = uid == 0 && first_line.find("4294967295") != std::string::npos;
    if (uid != 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0) {
            std::fprintf(stderr, "test main: unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET): %s; tests that mount "
                         "or use the network will skip\n", std::strerror(errno));
            return;
        }
        write_file("/proc/self/setgroups", "deny");
        write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n");
        write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n");
        ctr_test::private_network_namespace = true;
    } else if (unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) {
        std::fprintf(stderr, "test main: unshare(CLONE_NEWNS|CLONE_NEWNET): %s; tests that mount or use the network "
                     "will skip\n", std::strerror(errno));
        return;
    }
    ctr_test::private_network_namespace = true;
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        std::fprintf(stderr, "test main: making / private: %s; tests that mount will skip\n", std::strerror(errno));
        return;
    }
    ctr_test::private_mount_namespace = true;
    // The new network namespace has only lo, and it is down.
    try {
        ctr::net::configure_interface("lo", ctr::net::ipv4_interface::parse("127.0.0.1/8"));
    } catch (const ctr::error& e) {
        std::fprintf(stderr, "test main: %s\n", e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    enter_private_mount_namespace();
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
