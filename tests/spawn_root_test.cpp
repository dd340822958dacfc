// spawn with options::root: the plan runs in the child's own mount
// namespace, then pivot_root, then the command sees only the new root.
#include "support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;
namespace ns = ctr::ns;
namespace mnt = ctr::mount;

namespace {

ctr::process::result run(std::vector<std::string> args, ctr::process::options opts) {
    opts.std_out = stdio::capture();
    opts.std_err = stdio::capture();
    return spawn(std::move(args), std::move(opts)).wait();
}

// A busybox root filesystem, built once for this file's tests.
const std::string& busybox_rootfs() {
    static ctr_test::temp_dir dir;
    static const std::string path = [] {
        const std::string target = dir.path + "/rootfs";
        const std::string command = "'" + ctr_test::make_rootfs + "' '" + target + "' >/dev/null 2>&1";
        return std::system(command.c_str()) == 0 ? target : std::string();
    }();
    return path;
}

#define REQUIRE_BUSYBOX_ROOTFS() \
    if (busybox_rootfs().empty()) GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed?"

std::vector<std::string> mountinfo() {
    std::vector<std::string> lines;
    std::ifstream in("/proc/self/mountinfo");
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST(spawn_root, host_readonly_gives_a_read_only_host_and_private_tmp_proc_and_dev) {
    const auto before = mountinfo();
    auto r = run({"/bin/sh", "-c",
                  "touch /usr/ctr-should-fail 2>/dev/null && echo usr-writable || echo usr-read-only;"
                  "touch /tmp/x && ls -A /tmp;"
                  "ls /proc | grep -c '^[0-9]';"
                  "ls /dev | tr '\\n' ' '"},
                 {.namespaces = ns::pid, .root = mnt::host_readonly()});
    ASSERT_EQ(r.exit_code, 0) << r.std_err;
    std::istringstream lines(r.std_out);
    std::string line;
    std::getline(lines, line);
    EXPECT_EQ(line, "usr-read-only");
    std::getline(lines, line);
    EXPECT_EQ(line, "x");  // a tmpfs of its own: nothing of the host's /tmp
    std::getline(lines, line);
    // Only the sandbox's processes: init, sh, and what sh runs.
    EXPECT_LE(std::stoi(line), 4) << line;
    std::getline(lines, line);
    EXPECT_NE(line.find("null"), std::string::npos) << line;
    EXPECT_NE(line.find("urandom"), std::string::npos) << line;
    EXPECT_EQ(line.find("sda"), std::string::npos) << line;
    EXPECT_EQ(line.find("vda"), std::string::npos) << line;
    // Nothing of this reached the test's own mount table.
    EXPECT_EQ(mountinfo(), before);
}

TEST(spawn_root, busybox_rootfs_with_hostname_and_init) {
    REQUIRE_BUSYBOX_ROOTFS();
    auto r = run({"/bin/sh", "-c", "hostname; echo $$; ls /proc | grep -c '^[0-9]'; ls /"},
                 {.namespaces = ns::pid | ns::uts,
                  .hostname = "box",
                  .root = mnt::plan{.rootfs = busybox_rootfs()}.proc().dev().tmpfs("/tmp")});
    ASSERT_EQ(r.exit_code, 0) << r.std_err;
    std::istringstream lines(r.std_out);
    std::string hostname, pid, processes;
    lines >> hostname >> pid >> processes;
    EXPECT_EQ(hostname, "box");
    EXPECT_EQ(pid, "2");
    EXPECT_LE(std::stoi(processes), 4);
    // The host's files outside the rootfs are not there.
    EXPECT_EQ(r.std_out.find("work"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("bin"), std::string::npos) << r.std_out;
}

TEST(spawn_root, cwd_and_path_resolve_inside_the_new_root) {
    REQUIRE_BUSYBOX_ROOTFS();
    auto r = run({"pwd"}, {.env = {.inherit = false, .set = {{"PATH", "/bin"}}},
                           .cwd = "/tmp",
                           .root = mnt::plan{.rootfs = busybox_rootfs()}.tmpfs("/tmp")});
    ASSERT_EQ(r.exit_code, 0) << r.std_err;
    EXPECT_EQ(r.std_out, "/tmp\n");
}

TEST(spawn_root, a_failing_mount_step_names_the_part_and_the_path) {
    REQUIRE_BUSYBOX_ROOTFS();
    ctr_test::temp_dir source;
    // A bind source the parent can check fails before anything starts...
    try {
        (void)spawn({"/bin/true"}, {.root = mnt::plan{.rootfs = busybox_rootfs()}.bind("/nonexistent-source", "/mnt")});
        ADD_FAILURE() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.code().value(), ENOENT) << e.what();
        EXPECT_NE(std::string(e.what()).find("/nonexistent-source"), std::string::npos) << e.what();
    }
    // ...a target below a file fails in the child, and the error still
    // names the target and why.
    try {
        (void)spawn({"/bin/true"}, {.root = mnt::plan{.rootfs = busybox_rootfs()}.bind(source.path, "/bin/busybox/x")});
        ADD_FAILURE() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.code().value(), ENOTDIR) << e.what();
        EXPECT_NE(std::string(e.what()).find("/bin/busybox/x"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(spawn_root, symlink_targets_cannot_escape_the_rootfs) {
    REQUIRE_BUSYBOX_ROOTFS();
    ctr_test::temp_dir host;
    // A copy of the rootfs would be slow; a small one is enough: a tree with
    // a symlink to "/" that a mount target goes through.
    const std::string root = host.path + "/root";
    ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
    ASSERT_EQ(symlink("/", (root + "/escape").c_str()), 0);
    const auto before = mountinfo();
    try {
        auto r = run({"/bin/true"}, {.root = mnt::plan{.rootfs = root}.tmpfs("/escape/tmp")});
        // If it ran, the tmpfs must have landed inside the root, never on
        // the host's /tmp.
        (void)r;
    } catch (const ctr::error& e) {
        SUCCEED() << e.what();
    }
    EXPECT_EQ(mountinfo(), before);
    EXPECT_FALSE(ctr_test::has_children());
}
