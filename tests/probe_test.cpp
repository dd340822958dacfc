// ctr::probe() checked against what the kernel does when asked directly.
#include "support.hpp"

#include <gtest/gtest.h>

#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

TEST(probe, every_missing_feature_says_why) {
    const ctr::host_probe p = ctr::probe();
    EXPECT_FALSE(p.kernel_release.empty());
    for (const auto& [name, f] : p.features()) {
        if (!f.available) {
            EXPECT_FALSE(f.detail.empty()) << name << " is missing without a reason";
        }
    }
}

TEST(probe, agrees_with_the_kernel) {
    const ctr::host_probe p = ctr::probe();
    // spawn itself needs pidfds, and this suite ran spawn already.
    EXPECT_TRUE(p.pidfd.available);
    EXPECT_EQ(p.clone3.available, syscall(SYS_clone3, nullptr, 0) == -1 && errno != ENOSYS);
    EXPECT_EQ(p.time_namespaces.available, access("/proc/self/ns/time", F_OK) == 0);

    // A user namespace, made the plain way in a forked child.
    const pid_t pid = fork();
    if (pid == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_EQ(p.user_namespaces.available, WIFEXITED(status) && WEXITSTATUS(status) == 0) << p.user_namespaces.detail;
}

TEST(probe, cgroup_layout_matches_the_mount_table) {
    const ctr::host_probe p = ctr::probe();
    std::ifstream mountinfo("/proc/self/mountinfo");
    bool v1 = false, v2 = false;
    for (std::string line; std::getline(mountinfo, line);) {
        if (line.find(" - cgroup2 ") != std::string::npos) v2 = true;
        else if (line.find(" - cgroup ") != std::string::npos && line.find("name=") == std::string::npos) v1 = true;
    }
    const ctr::cgroup_layout expected = v1 && v2 ? ctr::cgroup_layout::hybrid
                                        : v1     ? ctr::cgroup_layout::v1
                                        : v2     ? ctr::cgroup_layout::v2
                                                 : ctr::cgroup_layout::none;
    EXPECT_EQ(p.cgroups, expected) << p.cgroup_detail;
}

TEST(probe, prints_one_line_a_feature) {
    std::ostringstream out;
    out << ctr::probe();
    const std::string text = out.str();
    for (const auto& [name, f] : ctr::probe().features()) {
        EXPECT_NE(text.find("\n" + std::string(name) + ": " + (f.available ? "yes" : "no")), std::string::npos) << name;
    }
}
