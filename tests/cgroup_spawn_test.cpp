// spawn with options::cgroup: the child starts inside the group with no
// moment outside it, and the result carries the group's figures.
#include "support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <sstream>
#include <vector>

using namespace std::chrono_literals;
namespace cg = ctr::cgroup;
namespace ns = ctr::ns;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;

namespace {

#define REQUIRE_GROUPS()                  \
    if (const auto& why = ctr_test::cgroup_blocker()) \
    GTEST_SKIP() << "cannot make cgroups here: " << why->what()

// The lines of /proc/self/cgroup whose path names the group, for each
// hierarchy the group lives in.
bool in_group(const std::string& proc_self_cgroup, const cg::group& g) {
    return proc_self_cgroup.find("/" + g.name() + "\n") != std::string::npos;
}

}  // namespace

TEST(cgroup_spawn, child_starts_inside_the_group) {
    REQUIRE_GROUPS();
    cg::group g({.limits = {.pids_max = 32}});
    auto r = spawn(helper({"file", "/proc/self/cgroup"}), {.std_out = stdio::capture(), .cgroup = &g}).wait();
    ASSERT_EQ(r.exit_code, 0);
    EXPECT_TRUE(in_group(r.std_out, g)) << r.std_out;
    // Every hierarchy the group has holds the child: on v1 one line per
    // controller directory names the group.
    std::size_t lines_naming_group = 0;
    std::istringstream lines(r.std_out);
    for (std::string line; std::getline(lines, line);)
        if (line.size() >= g.name().size() && line.compare(line.size() - g.name().size(), g.name().size(), g.name()) == 0)
            ++lines_naming_group;
    EXPECT_GE(lines_naming_group, 1u);
}

TEST(cgroup_spawn, the_whole_run_is_accounted_to_the_group) {
    REQUIRE_GROUPS();
    // The static no-op is over in well under a millisecond: its CPU time
    // shows up in the group only if it was inside from before its exec.
    cg::group g;
    auto r = spawn({ctr_test::noop_static}, {.cgroup = &g}).wait();
    ASSERT_EQ(r.exit_code, 0);
    const cg::stats s = g.read_stats();
    ASSERT_TRUE(s.cpu_usage.has_value());
    EXPECT_GT(s.cpu_usage->count(), 0);
    // And a limit holds from the first instruction: a fork bomb in a
    // group of 8 tasks stops at once.
    cg::group small({.limits = {.pids_max = 8}});
    auto bomb = spawn(helper({"fork-bomb", "100"}), {.std_out = stdio::capture(), .cgroup = &small}).wait();
    ASSERT_EQ(bomb.exit_code, 0) << bomb.std_out;
    EXPECT_NE(bomb.std_out.find("forked 7 EAGAIN"), std::string::npos) << bomb.std_out;
}

TEST(cgroup_spawn, out_of_memory_kill_is_reported_from_the_groups_events) {
    REQUIRE_GROUPS();
    cg::group g({.limits = {.memory_max = "32M", .swap_max = "0"}});
    auto r = spawn(helper({"alloc", "256"}), {.cgroup = &g}).wait();
    EXPECT_EQ(r.signal, SIGKILL);
    EXPECT_TRUE(r.oom_killed);
    ASSERT_TRUE(r.memory_peak_bytes.has_value());
    EXPECT_LE(*r.memory_peak_bytes, 32u << 20);
    // A later run in the same group that is killed some other way is not
    // taken for an out-of-memory kill.
    auto child = spawn(helper({"sleep", "100"}), {.cgroup = &g});
    child.kill();
    auto killed = child.wait();
    EXPECT_EQ(killed.signal, SIGKILL);
    EXPECT_FALSE(killed.oom_killed);
}

TEST(cgroup_spawn, result_carries_the_groups_cpu_time_and_peak) {
    REQUIRE_GROUPS();
    cg::group g;
    auto r = spawn(helper({"burn-cpu", "200"}), {.cgroup = &g}).wait();
    ASSERT_EQ(r.exit_code, 0);
    EXPECT_FALSE(r.oom_killed);
    ASSERT_TRUE(r.cgroup_user_time.has_value());
    // The group counts at least what the process itself used.
    EXPECT_GE(*r.cgroup_user_time + r.cgroup_system_time.value_or(0ns), 190ms);
    EXPECT_TRUE(r.memory_peak_bytes.has_value());
}

// A group used for several runs: each result has that run's figures,
// read_stats() and group_memory_peak_bytes the group's whole life.
TEST(cgroup_spawn, each_run_has_its_own_figures_and_the_group_its_lifetime_ones) {
    REQUIRE_GROUPS();
    cg::group g;
    if (!g.read_stats().memory_peak) GTEST_SKIP() << "no memory peak in this layout (no memory controller)";
    auto big = spawn(helper({"alloc", "64"}), {.cgroup = &g}).wait();
    ASSERT_EQ(big.exit_code, 0);
    ASSERT_TRUE(big.group_memory_peak_bytes.has_value());
    EXPECT_GE(*big.group_memory_peak_bytes, 64u << 20);
    auto burn = spawn(helper({"burn-cpu", "200"}), {.cgroup = &g}).wait();
    auto small = spawn({ctr_test::noop_static}, {.cgroup = &g}).wait();
    ASSERT_EQ(small.exit_code, 0);
    // The group's lifetime peak is the big run's. The first run's peak is
    // its own (the group was fresh); a later run's cannot be told apart
    // from the group's and is left empty rather than wrong.
    ASSERT_TRUE(small.group_memory_peak_bytes.has_value());
    EXPECT_GE(*small.group_memory_peak_bytes, 64u << 20);
    ASSERT_TRUE(big.memory_peak_bytes.has_value());
    EXPECT_GE(*big.memory_peak_bytes, 64u << 20);
    EXPECT_FALSE(small.memory_peak_bytes.has_value()) << *small.memory_peak_bytes;
    // CPU time per run: the burn's 200 ms are its own, not the next run's.
    ASSERT_TRUE(burn.cgroup_user_time && small.cgroup_user_time);
    EXPECT_GE(*burn.cgroup_user_time + burn.cgroup_system_time.value_or(0ns), 190ms);
    EXPECT_LT(*small.cgroup_user_time + small.cgroup_system_time.value_or(0ns), 100ms);
    const cg::stats lifetime = g.read_stats();
    ASSERT_TRUE(lifetime.cpu_usage.has_value());
    EXPECT_GE(*lifetime.cpu_usage, 190ms);
}

// The group's peak measures the command, not the caller's memory that the
// child had before exec (which the kernel's ru_maxrss counts).
TEST(cgroup_spawn, a_small_command_from_a_large_caller_has_a_small_peak_in_its_group) {
    REQUIRE_GROUPS();
    std::vector<char> ballast(256u << 20, 1);
    cg::group g;
    auto r = spawn({ctr_test::noop_static}, {.cgroup = &g}).wait();
    ASSERT_EQ(r.exit_code, 0);
    if (!r.memory_peak_bytes) GTEST_SKIP() << "no per-run memory peak in this layout";
    EXPECT_LT(*r.memory_peak_bytes, 16u << 20);
    // The kernel's figure, as documented, includes the caller's image.
    EXPECT_GE(r.rusage_max_rss_bytes, std::uint64_t{200} << 20) << "ballast " << static_cast<int>(ballast[4096]);
}

TEST(cgroup_spawn, cgroup_namespace_is_rooted_at_the_group) {
    REQUIRE_GROUPS();
    cg::group g;
    auto r = spawn(helper({"file", "/proc/self/cgroup"}),
                   {.std_out = stdio::capture(), .namespaces = ns::cgroup, .cgroup = &g})
                 .wait();
    ASSERT_EQ(r.exit_code, 0);
    std::istringstream lines(r.std_out);
    for (std::string line; std::getline(lines, line);)
        if (line.find(g.name()) != std::string::npos) ADD_FAILURE() << "group visible by name inside: " << line;
    EXPECT_NE(r.std_out.find(":/\n"), std::string::npos) << r.std_out;
}

TEST(cgroup_spawn, works_with_every_namespace_and_init) {
    REQUIRE_GROUPS();
    cg::group g({.limits = {.pids_max = 32}});
    auto r = spawn(helper({"exit", "6"}), {.namespaces = ns::all, .cgroup = &g}).wait();
    EXPECT_EQ(r.exit_code, 6);
    EXPECT_TRUE(g.wait_empty(5s));
}

TEST(cgroup_spawn, falls_back_to_attaching_when_the_kernel_refuses_clone_into_cgroup) {
    REQUIRE_GROUPS();
    cg::group g;
    if (g.clone_into_fd() < 0) GTEST_SKIP() << "this layout attaches by pid anyway (no usable cgroup v2 group)";
    // What a kernel before 5.7 answers to CLONE_INTO_CGROUP.
    ctr::detail::sys::fault_injection old_kernel(ctr::detail::sys::call::clone3, EINVAL);
    auto r = spawn(helper({"file", "/proc/self/cgroup"}), {.std_out = stdio::capture(), .cgroup = &g}).wait();
    EXPECT_TRUE(old_kernel.exhausted());
    ASSERT_EQ(r.exit_code, 0);
    EXPECT_TRUE(in_group(r.std_out, g)) << r.std_out;
}

TEST(cgroup_spawn, failed_attach_kills_the_waiting_child_and_names_the_step) {
    REQUIRE_GROUPS();
    cg::group g;
    if (!g.needs_attach_before_exec()) GTEST_SKIP() << "this layout places children with CLONE_INTO_CGROUP";
    const auto fds_before = ctr_test::open_fds();
    {
        // The attach writes the pid to cgroup.procs.
        ctr::detail::sys::fault_injection refused(ctr::detail::sys::call::write, EACCES);
        try {
            (void)spawn(helper({"exit", "0"}), {.cgroup = &g});
            ADD_FAILURE() << "spawn succeeded";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::attach_to_cgroup) << e.what();
        }
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

// An OCI runtime's group: at an exact path, with device rules, from the
// child's first step; and released, the group and its child go on.
TEST(cgroup_spawn, child_starts_in_a_group_at_a_path_with_device_rules) {
    REQUIRE_GROUPS();
    const std::string top = "ctrtest-spawnpath-" + std::to_string(getpid());
    const std::string path = top + "/ctr";
    const std::vector<cg::device_rule> null_only = {{.allow = false},
                                                    {.allow = true, .type = 'c', .major = 1, .minor = 3}};
    {
        cg::group g({.path = path, .limits = {.devices = null_only}});
        auto cgroup = spawn(helper({"file", "/proc/self/cgroup"}), {.std_out = stdio::capture(), .cgroup = &g}).wait();
        ASSERT_EQ(cgroup.exit_code, 0);
        EXPECT_NE(cgroup.std_out.find("/" + path + "\n"), std::string::npos) << cgroup.std_out;
        auto zero = spawn(helper({"open", "/dev/zero"}), {.std_out = stdio::capture(), .cgroup = &g}).wait();
        EXPECT_EQ(zero.std_out, std::to_string(EPERM) + "\n");
        auto null = spawn(helper({"open", "/dev/null"}), {.std_out = stdio::capture(), .cgroup = &g}).wait();
        EXPECT_EQ(null.std_out, "ok\n");
    }
    // The group is gone with its owner; its parent stays, and goes here.
    for (const auto& h : cg::detail::detect_cgroup_layout().hierarchies)
        if (h.usable()) rmdir((h.place_dir + "/" + top).c_str());
}

// An absolute path starts at the root of each hierarchy as mounted. The
// root here is a cgroup namespace's, rooted at a test group, with the
// hierarchies mounted again inside a mount namespace of the helper's own:
// the group lands below the test group, never at the host's root.
TEST(cgroup_spawn, an_absolute_path_starts_at_the_root_of_the_hierarchy_as_mounted) {
    REQUIRE_GROUPS();
    const std::string name = "ctrtest-abs-" + std::to_string(getpid());
    cg::group outer;  // its destructor removes what the helper left below it
    auto r = spawn(helper({"absolute-group", "/" + name + "/inner"}),
                   {.std_out = stdio::capture(), .std_err = stdio::capture(), .namespaces = ns::cgroup | ns::mount,
                    .cgroup = &outer})
                 .wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out << r.std_err;
    // Inside: each directory is a mount point followed by the path.
    std::istringstream lines(r.std_out);
    std::size_t reported = 0;
    for (std::string line; std::getline(lines, line);) {
        ASSERT_EQ(line.rfind("dir /", 0), 0u) << line;
        EXPECT_EQ(line.substr(line.size() - name.size() - 7), "/" + name + "/inner") << line;
        ++reported;
    }
    EXPECT_GE(reported, 1u);
    // Outside: below the test group (in the hierarchies the helper's group
    // uses), never at a hierarchy's root.
    std::size_t below_outer = 0;
    for (const auto& dir : outer.paths()) {
        struct stat st {};
        if (stat((dir + "/" + name + "/inner").c_str(), &st) == 0) ++below_outer;
    }
    EXPECT_EQ(below_outer, reported);
    for (const auto& h : cg::detail::detect_cgroup_layout().hierarchies) {
        struct stat st {};
        EXPECT_NE(stat((h.mount_point + "/" + name).c_str(), &st), 0) << h.mount_point;
    }
}
