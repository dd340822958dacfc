// <ctr/spawn.hpp> on its own: spawn without the root filesystem, network and
// pasta layers (README, "Compile cost"). This file includes nothing else of
// ctr, so it also proves that the header stands alone for a real program.
// An options value given a root in a unit that has the layers
// (tests/helper/spawn_alone_layer.cpp) still gets its root here: the layer
// goes with the option, not with the unit that calls spawn.
#include <ctr/spawn.hpp>

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace ctr_test {
ctr::process::options options_with_a_readonly_host_root();
}

namespace {

using ctr::process::spawn;
using ctr::process::stdio;

// The mount options of the child's root ("ro,..." or "rw,..."): the last
// mount at "/" in its /proc/self/mountinfo, the one it sees.
std::string root_mount_options(ctr::process::options opts) {
    opts.std_out = stdio::capture();
    const auto r = spawn({"/bin/cat", "/proc/self/mountinfo"}, opts).wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
    std::istringstream lines(r.std_out);
    std::string options;
    for (std::string line; std::getline(lines, line);) {
        std::istringstream fields(line);
        std::string id, parent, device, root, mount_point, mount_options;
        fields >> id >> parent >> device >> root >> mount_point >> mount_options;
        if (mount_point == "/") options = mount_options;
    }
    return options;
}

TEST(spawn_alone, spawns_into_new_namespaces_with_only_the_spawn_header) {
    ctr::process::options opts{.std_out = stdio::capture(), .namespaces = ctr::ns::pid | ctr::ns::uts,
                               .hostname = "spawn-alone"};
    ctr::process::child child;
    try {
        child = spawn({"/bin/sh", "-c", "echo $$ $(cat /proc/sys/kernel/hostname)"}, opts);
    } catch (const ctr::error& e) {
        if (e.step() == ctr::step::create_namespaces) GTEST_SKIP() << "no new namespaces here: " << e.what();
        throw;
    }
    EXPECT_EQ(child.network(), nullptr);
    EXPECT_EQ(child.pasta_pid(), -1);
    const auto r = child.wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
    // The shell's pid is 2: ctr's init is pid 1 of the new pid namespace.
    EXPECT_EQ(r.std_out, "2 spawn-alone\n");
}

TEST(spawn_alone, an_option_set_where_its_layer_is_included_is_honoured_here) {
    auto opts = ctr_test::options_with_a_readonly_host_root();
    ASSERT_TRUE(opts.root.has_value());
    // The check can tell: without the root, the child sees the host's
    // writable root.
    auto without_root = opts;
    without_root.root.reset();
    const std::string host = root_mount_options(without_root);
    if (host.rfind("rw", 0) != 0)
        GTEST_SKIP() << "this host's root is not writable (" << host << "), so a read-only root shows nothing";
    std::string sandboxed;
    try {
        sandboxed = root_mount_options(opts);
    } catch (const ctr::error& e) {
        if (e.step() == ctr::step::create_namespaces) GTEST_SKIP() << "no new namespaces here: " << e.what();
        throw;
    }
    EXPECT_EQ(sandboxed.rfind("ro", 0), 0u) << "the root layer did not run: " << sandboxed;
}

}  // namespace
