// Namespaces in spawn: each kind proven by what the child sees from inside
// against the parent's view; joining, persisting, id maps, and pid 1.
#include "support.hpp"

#include <gtest/gtest.h>

#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include <chrono>
#include <fstream>
#include <sstream>

using namespace std::chrono_literals;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;
namespace ns = ctr::ns;

namespace {

ctr::process::result run(std::vector<std::string> args, ctr::process::options opts) {
    opts.std_out = stdio::capture();
    opts.std_err = stdio::capture();
    return spawn(std::move(args), opts).wait();
}

std::string output_of(std::vector<std::string> args, ctr::process::options opts) {
    auto r = run(std::move(args), std::move(opts));
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
    std::string out = r.std_out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

std::string host_name() {
    utsname name{};
    uname(&name);
    return name.nodename;
}

// Skips a test on a kernel without a namespace kind.
#define SKIP_WITHOUT_NAMESPACE(kind)                                                       \
    if (access(("/proc/self/ns/" + std::string(ns::name(kind))).c_str(), F_OK) != 0)     \
    GTEST_SKIP() << "this kernel has no " << ns::name(kind) << " namespaces"

}  // namespace

TEST(namespaces, each_kind_gives_the_child_a_namespace_of_its_own) {
    for (ns::kind kind : ns::every_kind) {
        if (access(("/proc/self/ns/" + std::string(ns::name(kind))).c_str(), F_OK) != 0) continue;
        // A time namespace is entered at exec, so the file to look at is
        // the one for children of the process before it.
        const std::string file = kind == ns::time ? "time" : std::string(ns::name(kind));
        const std::string inside = output_of(helper({"ns", file}), {.namespaces = kind});
        EXPECT_NE(inside, std::to_string(ns::inode_of(kind))) << ns::name(kind);
        const std::string without = output_of(helper({"ns", file}), {});
        EXPECT_EQ(without, std::to_string(ns::inode_of(kind))) << ns::name(kind);
    }
}

TEST(namespaces, hostname_changes_are_invisible_outside) {
    const std::string before = host_name();
    EXPECT_EQ(output_of(helper({"hostname"}), {.namespaces = ns::uts, .hostname = "box", .domainname = "example"}),
              "box example");
    EXPECT_EQ(host_name(), before);
}

TEST(namespaces, pid_namespace_shows_pid_1_and_hides_the_hosts_pids) {
    // With the default init, the command is pid 2 and its parent pid 1.
    EXPECT_EQ(output_of(helper({"pid"}), {.namespaces = ns::pid}), "pid=2 ppid=1");
    EXPECT_EQ(output_of(helper({"pid"}), {.namespaces = ns::pid, .init = false}), "pid=1 ppid=0");
    // A fresh /proc (in the child's own mount namespace) lists only the
    // sandbox's processes: init and the command.
    EXPECT_EQ(output_of(helper({"mount-proc-and-list"}), {.namespaces = ns::pid | ns::mount}), "1 2");
    EXPECT_EQ(output_of(helper({"mount-proc-and-list"}), {.namespaces = ns::pid | ns::mount, .init = false}), "1");
}

TEST(namespaces, new_network_namespace_has_only_loopback_and_it_is_up) {
    EXPECT_EQ(output_of(helper({"netdevs"}), {.namespaces = ns::network}), "lo:up");
}

TEST(namespaces, ipc_objects_are_invisible_across) {
    const int segment = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    ASSERT_GE(segment, 0);
    const std::string id = " " + std::to_string(segment) + " ";
    const std::string host_view = output_of(helper({"file", "/proc/sysvipc/shm"}), {});
    const std::string sandbox_view = output_of(helper({"file", "/proc/sysvipc/shm"}), {.namespaces = ns::ipc});
    shmctl(segment, IPC_RMID, nullptr);
    EXPECT_NE(host_view.find(id), std::string::npos);
    EXPECT_EQ(sandbox_view.find(id), std::string::npos);
}

TEST(namespaces, cgroup_namespace_root_is_slash) {
    const std::string view = output_of(helper({"file", "/proc/self/cgroup"}), {.namespaces = ns::cgroup});
    std::istringstream lines(view);
    int count = 0;
    for (std::string line; std::getline(lines, line); ++count)
        EXPECT_EQ(line.substr(line.rfind(':')), ":/") << line;
    EXPECT_GT(count, 0);
}

TEST(namespaces, time_offsets_show_in_the_clocks) {
    SKIP_WITHOUT_NAMESPACE(ns::time);
    timespec host{};
    clock_gettime(CLOCK_MONOTONIC, &host);
    const std::string clocks = output_of(
        helper({"clocks"}),
        {.namespaces = ns::time, .time_offsets = {.monotonic_seconds = 100000, .boottime_seconds = 200000}});
    long long monotonic = 0, boottime = 0;
    ASSERT_EQ(std::sscanf(clocks.c_str(), "%lld %lld", &monotonic, &boottime), 2);
    EXPECT_GE(monotonic, host.tv_sec + 100000);
    EXPECT_LT(monotonic, host.tv_sec + 100000 + 60);
    EXPECT_GE(boottime, 200000);
}

TEST(namespaces, user_namespace_maps_root_inside) {
    const std::string ids = output_of(helper({"ids"}), {.namespaces = ns::user});
    EXPECT_EQ(ids.substr(0, 12), "uid=0 gid=0 ");
    const std::string map = output_of(helper({"file", "/proc/self/uid_map"}), {.namespaces = ns::user});
    unsigned long inside = 1, outside = 0, count = 0;
    ASSERT_EQ(std::sscanf(map.c_str(), "%lu %lu %lu", &inside, &outside, &count), 3) << map;
    EXPECT_EQ(inside, 0u);
    if (ctr_test::real_root) {
        EXPECT_EQ(count, 65536u);  // root maps the sandbox's 0..65535 onto a host range
    }
}

TEST(namespaces, explicit_id_maps_with_several_ranges) {
    if (!ctr_test::real_root) GTEST_SKIP() << "writing arbitrary maps needs real root";
    const std::string map = output_of(
        helper({"file", "/proc/self/uid_map"}),
        {.namespaces = ns::user, .id_maps = {.uid = {{0, 200000, 1000}, {1000, 300000, 10}}, .gid = {{0, 200000, 1000}}}});
    std::istringstream lines(map);
    unsigned long a = 0, b = 0, c = 0;
    std::string line;
    std::getline(lines, line);
    ASSERT_EQ(std::sscanf(line.c_str(), "%lu %lu %lu", &a, &b, &c), 3);
    EXPECT_EQ(a, 0u);
    EXPECT_EQ(b, 200000u);
    EXPECT_EQ(c, 1000u);
    std::getline(lines, line);
    ASSERT_EQ(std::sscanf(line.c_str(), "%lu %lu %lu", &a, &b, &c), 3);
    EXPECT_EQ(a, 1000u);
    EXPECT_EQ(b, 300000u);
    EXPECT_EQ(c, 10u);
}

TEST(namespaces, credentials_switch_inside_after_the_maps) {
    if (!ctr_test::real_root) GTEST_SKIP() << "needs a map with more than one id (real root)";
    EXPECT_EQ(output_of(helper({"ids"}), {.groups = std::vector<gid_t>{5}, .gid = 1000, .uid = 1000,
                                           .namespaces = ns::user}),
              "uid=1000 gid=1000 groups=5");
}

TEST(namespaces, unprivileged_caller_maps_itself_to_root) {
    if (!ctr_test::real_root) GTEST_SKIP() << "needs real root to drop to an unprivileged uid for the test";
    // A forked child gives up root for good, then spawns with every kind.
    int pipe_fds[2];
    ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    const pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(2);
        // Changing ids without exec made this process non-dumpable; an
        // ordinary unprivileged program (which got its ids at exec) is.
        prctl(PR_SET_DUMPABLE, 1);
        try {
            auto r = spawn(helper({"ids"}), {.std_out = stdio::from_fd(pipe_fds[1]), .namespaces = ns::all}).wait();
            _exit(r.exit_code.value_or(3));
        } catch (const ctr::error& e) {
            const std::string message = e.what();
            (void)!write(pipe_fds[1], message.data(), message.size());
            _exit(4);
        }
    }
    close(pipe_fds[1]);
    char buffer[256] = {};
    (void)!read(pipe_fds[0], buffer, sizeof buffer - 1);
    close(pipe_fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << buffer;
    EXPECT_EQ(std::string(buffer).substr(0, 12), "uid=0 gid=0 ") << buffer;
}

TEST(namespaces, second_child_joins_the_first_ones_network_and_uts) {
    auto first = spawn(helper({"sleep", "100"}), {.namespaces = ns::network | ns::uts, .hostname = "shared-box"});
    const std::string uts_path = "/proc/" + std::to_string(first.pid()) + "/ns/uts";
    const std::string net_path = "/proc/" + std::to_string(first.pid()) + "/ns/net";
    const std::string net_inode = std::to_string(ns::detail::ns_inode(net_path).value());
    // By path.
    EXPECT_EQ(output_of(helper({"hostname"}), {.join = {ns::existing::path(ns::uts, uts_path),
                                                        ns::existing::path(ns::network, net_path)}}),
              "shared-box (none)");
    EXPECT_EQ(output_of(helper({"ns", "net"}), {.join = {ns::existing::path(ns::network, net_path)}}), net_inode);
    EXPECT_EQ(output_of(helper({"netdevs"}), {.join = {ns::existing::path(ns::network, net_path)}}), "lo:up");
    // By pidfd.
    EXPECT_EQ(output_of(helper({"hostname"}), {.join = {ns::existing::of_pidfd(ns::uts, first.pidfd())}}),
              "shared-box (none)");
    first.kill();
}

TEST(namespaces, a_command_that_joins_a_pid_namespace_runs_inside_it) {
    if (!ctr_test::real_root) GTEST_SKIP() << "joins a pid namespace made by real root";
    auto first = spawn(helper({"sleep", "100"}), {.namespaces = ns::pid | ns::mount});
    const std::string proc = "/proc/" + std::to_string(first.pid()) + "/ns/";
    // setns moves only the joiner's children; the command must be one. In
    // the namespace the first sandbox's init is 1 and its sleep 2, so the
    // joined command's pid is small, where the host's pids are not.
    const std::string pid = output_of({"/bin/sh", "-c", "echo $$"},
                                      {.join = {ns::existing::path(ns::pid, proc + "pid"),
                                                ns::existing::path(ns::mount, proc + "mnt")}});
    EXPECT_EQ(pid, "3");
    // Its exit status comes through the supervisor that started it.
    const auto result = spawn({"/bin/sh", "-c", "exit 7"}, {.join = {ns::existing::path(ns::pid, proc + "pid")}}).wait();
    EXPECT_EQ(result.exit_code, 7);
    first.kill();
}

TEST(namespaces, persisted_namespace_outlives_its_processes) {
    if (!ctr_test::private_mount_namespace) GTEST_SKIP() << "needs the test's private mount namespace";
    ctr_test::temp_dir dir;
    ns::persisted kept;
    {
        auto first = spawn(helper({"sleep", "100"}), {.namespaces = ns::uts, .hostname = "kept"});
        kept = ns::persist(first.pid(), ns::uts, dir.path + "/uts");
        first.kill();
        first.wait();
    }
    EXPECT_EQ(output_of(helper({"hostname"}), {.join = {kept.to_join(ns::uts)}}), "kept (none)");
}

TEST(namespaces, init_reaps_orphans) {
    EXPECT_EQ(output_of(helper({"reap-check"}), {.namespaces = ns::pid | ns::mount}), "zombies=0");
}

TEST(namespaces, sigterm_to_the_sandbox_reaches_the_command) {
    auto child = spawn(helper({"trap-term"}), {.std_out = stdio::pipe(), .namespaces = ns::pid});
    char ready[16] = {};
    ASSERT_GT(read(child.std_out().get(), ready, sizeof ready - 1), 0);
    child.signal(SIGTERM);
    auto r = child.wait();
    EXPECT_EQ(r.exit_code, 7);
}

TEST(namespaces, exit_status_and_signal_come_through_init) {
    EXPECT_EQ(run(helper({"exit", "42"}), {.namespaces = ns::pid}).exit_code, 42);
    auto killed = run(helper({"raise", std::to_string(SIGUSR1)}), {.namespaces = ns::pid});
    EXPECT_FALSE(killed.exit_code.has_value());
    EXPECT_EQ(killed.signal, SIGUSR1);
}

TEST(namespaces, command_ending_kills_what_is_left_and_the_result_says_so) {
    auto r = run({"/bin/sh", "-c", "sleep 100 & exit 3"}, {.timeout = 60s, .namespaces = ns::pid});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_TRUE(r.pid_namespace_orphans_killed);
    EXPECT_LT(r.wall_time, 30s);  // did not wait for the background sleep
    auto alone = run(helper({"exit", "0"}), {.namespaces = ns::pid});
    EXPECT_FALSE(alone.pid_namespace_orphans_killed);
}

TEST(namespaces, timeout_and_kill_reach_a_sandbox_with_init) {
    auto r = run(helper({"sleep", "100"}), {.timeout = 200ms, .namespaces = ns::pid});
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.signal, SIGTERM);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(namespaces, missing_program_in_a_pid_namespace_is_reported) {
    try {
        (void)spawn({"/nonexistent/program"}, {.namespaces = ns::pid | ns::mount});
        FAIL() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::exec);
        EXPECT_EQ(e.path(), "/nonexistent/program");
    }
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(namespaces, refused_user_namespace_names_the_cause) {
    ctr::detail::sys::fault_injection refused(ctr::detail::sys::call::clone3, EPERM);
    try {
        (void)spawn(helper({"exit", "0"}), {.namespaces = ns::user | ns::pid});
        FAIL() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::create_namespaces);
        EXPECT_EQ(e.path(), "user,pid");
        const std::string message = e.what();
        EXPECT_NE(message.find("create namespaces 'user,pid' ("), std::string::npos) << message;
    }
}

TEST(namespaces, bad_namespace_options_are_clear_errors) {
    const auto expect_prepare_error = [](ctr::process::options opts) {
        try {
            (void)spawn(helper({"exit", "0"}), opts);
            ADD_FAILURE() << "spawn succeeded";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::prepare) << e.what();
        }
    };
    expect_prepare_error({.hostname = "no-uts"});
    expect_prepare_error({.namespaces = ns::uts, .hostname = std::string(65, 'x')});
    expect_prepare_error({.time_offsets = {.monotonic_seconds = 5}});
    try {
        (void)spawn(helper({"exit", "0"}), {.join = {ns::existing::path(ns::network, "/nonexistent/ns")}});
        ADD_FAILURE() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::join_namespace);
        EXPECT_EQ(e.path(), "/nonexistent/ns");
    }
    EXPECT_FALSE(ctr_test::has_children());
}

// Found by tests/fuzz (id_map): std::stoul read "3000x" as 3000 and cut a
// start past 2^32 to 32 bits (4294967296 became uid 0).
TEST(namespaces, subordinate_ranges_are_plain_decimals_the_kernel_can_map) {
    const int fd = memfd_create("subuid", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    const std::string text =
        "root:3000x:65536\nroot:4294967296:65536\nroot:-1:65536\nroot:4294967295:2\nroot:100000:65536\n";
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    const auto range = ns::detail::subordinate_range("/proc/self/fd/" + std::to_string(fd), "root", 0);
    close(fd);
    ASSERT_TRUE(range);
    EXPECT_EQ(range->outside, 100000u);
    EXPECT_EQ(range->count, 65536u);
}

// The kernel answers only EINVAL to setresgid of an id the user namespace
// does not map; the error says that, which ids the sandbox has, and the fix.
TEST(namespaces, an_unmapped_id_names_the_map_and_the_fix) {
    // Root's default map is 0 to 65535; the caller's own id alone is 0; a
    // caller with a subordinate range has 0 to 65536: 70000 is in none.
    for (const bool gid_first : {true, false}) {
        ctr::process::options opts{.namespaces = ns::user | ns::pid};
        if (gid_first) opts.gid = 70000;
        else opts.uid = 70000;
        try {
            (void)spawn(helper({"exit", "0"}), opts);
            FAIL() << "spawn succeeded with an unmapped id";
        } catch (const ctr::error& e) {
            const std::string kind = gid_first ? "gid" : "uid";
            EXPECT_EQ(e.step(), gid_first ? ctr::step::set_gid : ctr::step::set_uid);
            EXPECT_EQ(e.code().value(), EINVAL);
            EXPECT_EQ(e.path(), "70000");
            const std::string message = e.what();
            EXPECT_NE(message.find(kind + " 70000 is not mapped in the sandbox's user namespace (it has " + kind),
                      std::string::npos)
                << message;
        }
    }
    // The ids the map has are named, and the way to add more.
    try {
        (void)spawn(helper({"exit", "0"}),
                    {.gid = 500, .namespaces = ns::user, .id_maps = {.uid = {{0, static_cast<std::uint32_t>(geteuid()), 1}},
                                                                     .gid = {{0, static_cast<std::uint32_t>(getegid()), 1}}}});
        FAIL() << "spawn succeeded with an unmapped id";
    } catch (const ctr::error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("gid 500 is not mapped in the sandbox's user namespace (it has gid 0): use an id the map "
                               "has, or map this one (ns::id_maps)"),
                  std::string::npos)
            << message;
    }
}

// No user namespaces for this process: the error names the setting that
// forbids them (read from /proc/sys, never written) and how root lifts it.
TEST(namespaces, a_forbidden_user_namespace_names_the_setting) {
    const auto setting = [](const char* file) {
        std::ifstream in(file);
        std::string value;
        return std::getline(in, value) ? value : std::string();
    };
    std::string forbidding;
    if (setting("/proc/sys/user/max_user_namespaces") == "0") forbidding = "user.max_user_namespaces";
    else if (geteuid() != 0 && setting("/proc/sys/kernel/unprivileged_userns_clone") == "0")
        forbidding = "kernel.unprivileged_userns_clone";
    else if (geteuid() != 0 && setting("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1")
        forbidding = "kernel.apparmor_restrict_unprivileged_userns";
    if (forbidding.empty())
        GTEST_SKIP() << "no setting forbids user namespaces to this process here (user.max_user_namespaces is not 0, "
                        "kernel.unprivileged_userns_clone is not 0, kernel.apparmor_restrict_unprivileged_userns is "
                        "not 1), and the test changes no system setting";
    try {
        (void)spawn(helper({"exit", "0"}), {.namespaces = ns::user});
        FAIL() << "spawn made a user namespace although " << forbidding << " forbids it";
    } catch (const ctr::error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(forbidding), std::string::npos) << message;
        EXPECT_NE(message.find("sysctl -w " + forbidding), std::string::npos) << message;
    }
}
