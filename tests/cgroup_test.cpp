// cgroup::group against the real kernel: limits that bite (memory, pids,
// CPU quota, cpuset), accounting, kill/freeze/wait, cleanup after crashes,
// and clear errors for bad input. Runs on whatever layout the host has: v1
// or hybrid here, pure v2 in the VM lane. Parsing is also tested with text
// from layouts the host does not have.
#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
namespace cg = ctr::cgroup;
namespace cgd = ctr::cgroup::detail;
using ctr::detail::sys::call;
using ctr::detail::sys::fault_injection;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;

namespace {

constexpr std::uint64_t MiB = 1024 * 1024;

// Directories of groups this process made, in every hierarchy: group names
// carry the creator's pid, so concurrent runs of the suite do not disturb
// the count.
std::set<std::string> own_group_dirs() {
    std::set<std::string> out;
    const auto layout = cgd::detect_cgroup_layout();
    for (const auto& h : layout.hierarchies) {
        if (!h.usable()) continue;
        const long fd = cgd::open_directory(AT_FDCWD, h.place_dir.c_str());
        if (fd < 0) continue;
        ctr::unique_fd dir(static_cast<int>(fd));
        std::vector<std::string> names;
        cgd::subdirectories(dir.get(), names);
        for (const auto& name : names)
            if (const auto parsed = cgd::parse_group_name(name);
                parsed && parsed->pid == static_cast<std::uint64_t>(getpid()))
                out.insert(h.place_dir + "/" + name);
    }
    return out;
}

// The whole suite must leave none of this process's groups behind.
class no_leftover_groups : public testing::Environment {
public:
    void TearDown() override {
        const auto left = own_group_dirs();
        std::string listed;
        for (const auto& d : left) listed += "\n  " + d;
        EXPECT_TRUE(left.empty()) << "cgroup directories left behind:" << listed;
    }
};
[[maybe_unused]] testing::Environment* const leftover_check = testing::AddGlobalTestEnvironment(new no_leftover_groups);

// Why groups cannot be made here (no cgroup file system, no write access,
// or a v2 cgroup with processes of its own that therefore cannot hand
// controllers down: a container's or a login session's cgroup), or empty.
// Any other failure is a failure, never a skip.
std::string blocker() {
    static const std::string reason = []() -> std::string {
        const auto& e = ctr_test::cgroup_blocker();
        if (!e) return {};
        const int code = e->code().value();
        if (code == EACCES || code == EPERM || code == EROFS || e->step() == ctr::step::cgroup_layout ||
            (code == EBUSY && e->step() == ctr::step::enable_controllers))
            return e->what();
        ADD_FAILURE() << "making a plain group failed: " << e->what();
        return e->what();
    }();
    return reason;
}

#define REQUIRE_CGROUPS()                                                                                         \
    do {                                                                                                          \
        if (const std::string why = blocker(); !why.empty()) GTEST_SKIP() << "cannot make cgroups here: " << why; \
    } while (0)

ctr::cgroup_layout host_layout() { return cgd::detect_cgroup_layout().kind; }

// Limits go to v2 files only on a pure v2 host (hybrid hosts use their v1
// controllers).
bool limits_are_v2() { return host_layout() == ctr::cgroup_layout::v2; }

bool has_usable_v2() {
    const auto layout = cgd::detect_cgroup_layout();
    return layout.v2() && layout.v2()->usable();
}

// The option sets that exercise each implementation this host has: the
// default, and on a hybrid host also the cgroup2 side alone (cgroup.kill,
// cgroup.freeze, cgroup.events).
std::vector<std::pair<std::string, cg::options>> variants() {
    std::vector<std::pair<std::string, cg::options>> out{{"default", {}}};
    if (host_layout() == ctr::cgroup_layout::hybrid && has_usable_v2())
        out.push_back({"unified_only", {.unified_only = true}});
    return out;
}

// Starts the helper waiting on stdin, puts it into `g`, then lets it run:
// all its work happens inside the group.
ctr::process::child start_in(cg::group& g, std::vector<std::string> args) {
    args.insert(args.begin(), "after-stdin");
    auto child = spawn(helper(args), {.std_in = stdio::pipe(), .std_out = stdio::capture()});
    g.attach(child.pid());
    const char newline = '\n';
    EXPECT_EQ(write(child.std_in().get(), &newline, 1), 1);
    child.std_in().reset();
    return child;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

bool exists(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0;
}

// Whether the process behind `pidfd` ends within `limit`.
bool exits_within(int pidfd, std::chrono::milliseconds limit) {
    pollfd p{pidfd, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

// One line from a pipe, waiting at most `limit`.
std::string read_line(int fd, std::chrono::milliseconds limit) {
    std::string line;
    const auto until = std::chrono::steady_clock::now() + limit;
    char c = 0;
    while (std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) != 1) continue;
        if (read(fd, &c, 1) != 1) break;
        if (c == '\n') break;
        line += c;
    }
    return line;
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

template <typename F>
ctr::error error_of(F&& f) {
    try {
        f();
    } catch (const ctr::error& e) {
        return e;
    }
    ADD_FAILURE() << "no error was thrown";
    return ctr::error(ctr::step::none, 0);
}

bool mentions(const ctr::error& e, std::string_view text) {
    return std::string_view(e.what()).find(text) != std::string_view::npos;
}

}  // namespace

// --- parsing, with text from layouts this host does not have ---

TEST(cgroup, parses_human_sizes) {
    EXPECT_EQ(cg::parse_size("0"), 0u);
    EXPECT_EQ(cg::parse_size("4096"), 4096u);
    EXPECT_EQ(cg::parse_size("512k"), 512u * 1024);
    EXPECT_EQ(cg::parse_size("512K"), 512u * 1024);
    EXPECT_EQ(cg::parse_size("64M"), 64 * MiB);
    EXPECT_EQ(cg::parse_size("64MiB"), 64 * MiB);
    EXPECT_EQ(cg::parse_size("64MB"), 64 * MiB);
    EXPECT_EQ(cg::parse_size("1.5G"), 1536 * MiB);
    EXPECT_EQ(cg::parse_size("0.5k"), 512u);
    EXPECT_EQ(cg::parse_size(" 2 T "), 2ULL << 40);
    EXPECT_EQ(cg::parse_size("100B"), 100u);
    EXPECT_EQ(cg::parse_size("max"), std::numeric_limits<std::uint64_t>::max());
}

TEST(cgroup, rejects_nonsense_sizes_naming_the_value) {
    for (const char* bad : {"", "  ", "12Q", "-1", "1.5.5G", "abc", "G", "1.5", ".G", "1e9", "99999999999999999999",
                            "16E", "0x10", "64 MBs", "Max"}) {
        const auto e = error_of([&] { cg::parse_size(bad); });
        EXPECT_EQ(e.step(), ctr::step::set_cgroup_limit) << bad;
        EXPECT_EQ(e.code().value(), EINVAL) << bad;
        EXPECT_TRUE(mentions(e, "'" + std::string(bad) + "'")) << e.what();
    }
}

TEST(cgroup, parses_cpu_lists) {
    EXPECT_EQ(cgd::parse_cpu_list("0-3,6"), (std::vector<unsigned>{0, 1, 2, 3, 6}));
    EXPECT_EQ(cgd::parse_cpu_list("1\n"), (std::vector<unsigned>{1}));
    EXPECT_TRUE(cgd::parse_cpu_list("").empty());
    for (const char* bad : {"3-1", "a", "1,,2", "0-", "-1", "70000"}) {
        const auto e = error_of([&] { cgd::parse_cpu_list(bad, "cpuset_cpus"); });
        EXPECT_EQ(e.code().value(), EINVAL) << bad;
        EXPECT_TRUE(mentions(e, "cpuset_cpus")) << e.what();
    }
}

TEST(cgroup, reads_pure_v2_layout) {
    const std::string mountinfo =
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        "25 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
        "rw,nsdelegate,memory_recursiveprot\n";
    const auto info = cgd::parse_cgroup_layout(mountinfo, "0::/user.slice/user-1000.slice/session-2.scope\n");
    EXPECT_EQ(info.kind, ctr::cgroup_layout::v2);
    ASSERT_EQ(info.hierarchies.size(), 1u);
    const auto& h = info.hierarchies[0];
    EXPECT_TRUE(h.v2);
    EXPECT_TRUE(h.usable()) << h.problem;
    EXPECT_EQ(h.place_dir, "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope");

    // The VM lane: the tests run in the root cgroup.
    const auto root = cgd::parse_cgroup_layout(mountinfo, "0::/\n");
    EXPECT_EQ(root.hierarchies.at(0).place_dir, "/sys/fs/cgroup");
    EXPECT_EQ(root.hierarchies.at(0).place_path, "/");
}

TEST(cgroup, reads_hybrid_layout_like_this_hosts) {
    const std::string mountinfo =
        "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
        "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    const std::string own = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
    const auto info = cgd::parse_cgroup_layout(mountinfo, own);
    EXPECT_EQ(info.kind, ctr::cgroup_layout::hybrid);
    ASSERT_EQ(info.hierarchies.size(), 3u);  // v2, cpu, memory; never name=systemd
    EXPECT_TRUE(info.hierarchies[0].v2);
    EXPECT_EQ(info.hierarchies[0].place_dir, "/sys/fs/cgroup/unified");
    EXPECT_EQ(info.hierarchies[1].place_dir, "/sys/fs/cgroup/cpu");
    EXPECT_EQ(info.hierarchies[1].id, 1);
    EXPECT_EQ(info.hierarchies[2].place_dir, "/sys/fs/cgroup/memory/process_api/abc");
    EXPECT_EQ(info.hierarchies[2].id, 4);
    EXPECT_NE(info.describe().find("v1 controllers cpu memory"), std::string::npos) << info.describe();
}

TEST(cgroup, reads_v1_layout_with_comounted_controllers_and_a_mount_root) {
    // A container that sees its own cgroup mounted at /sys/fs/cgroup/...
    // with the host's path as the mount's root, and a space in a name.
    const std::string mountinfo =
        "50 40 0:40 /docker/c1 /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "51 40 0:41 /docker/c1 /sys/fs/cgroup/pids\\040x rw - cgroup cgroup rw,pids\n"
        "52 40 0:42 /other /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n";
    const std::string own = "3:freezer:/docker/c1\n2:pids:/docker/c1/sub\n1:cpuacct,cpu:/docker/c1\n";
    const auto info = cgd::parse_cgroup_layout(mountinfo, own);
    EXPECT_EQ(info.kind, ctr::cgroup_layout::v1);
    ASSERT_EQ(info.hierarchies.size(), 3u);
    EXPECT_EQ(info.hierarchies[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
    EXPECT_EQ(info.hierarchies[0].place_dir, "/sys/fs/cgroup/cpu,cpuacct");
    EXPECT_EQ(info.hierarchies[1].place_dir, "/sys/fs/cgroup/pids x/sub");
    EXPECT_FALSE(info.hierarchies[2].usable());  // own cgroup outside the mounted part
    EXPECT_NE(info.hierarchies[2].problem.find("/docker/c1"), std::string::npos) << info.hierarchies[2].problem;
}

TEST(cgroup, places_groups_beside_a_ctr_leaf) {
    const std::string mountinfo = "25 21 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    const auto info = cgd::parse_cgroup_layout(mountinfo, "0::/delegated/ctr-leaf\n");
    EXPECT_EQ(info.hierarchies.at(0).own_path, "/delegated/ctr-leaf");
    EXPECT_EQ(info.hierarchies.at(0).place_path, "/delegated");
    EXPECT_EQ(info.hierarchies.at(0).place_dir, "/sys/fs/cgroup/delegated");

    const auto outside = cgd::parse_cgroup_layout(mountinfo, "0::/../../elsewhere\n");
    EXPECT_FALSE(outside.hierarchies.at(0).usable());
}

TEST(cgroup, names_record_their_creator) {
    const cgd::group_name n{"my-tests", 1234, 987654, 7, "00ff00aa"};
    const std::string text = cgd::format_group_name(n);
    EXPECT_EQ(text, "my-tests-1234-987654-7-00ff00aa");
    const auto back = cgd::parse_group_name(text);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->prefix, "my-tests");
    EXPECT_EQ(back->pid, 1234u);
    EXPECT_EQ(back->start_time, 987654u);
    EXPECT_EQ(back->counter, 7u);
    for (const char* other : {"ctr-leaf", "ctr", "system.slice", "ctr-1-2-3", "-1-2-3-ab", "ctr-1-2-3-XY"})
        EXPECT_FALSE(cgd::parse_group_name(other)) << other;
}

// --- against the kernel ---

TEST(cgroup, makes_and_removes_its_directories_below_the_own_cgroup) {
    REQUIRE_CGROUPS();
    const auto layout = cgd::detect_cgroup_layout();
    cg::group g;
    ASSERT_TRUE(g.valid());
    EXPECT_EQ(g.layout(), layout.kind);
    const auto dirs = g.paths();
    ASSERT_FALSE(dirs.empty());
    for (const auto& dir : dirs) {
        EXPECT_TRUE(exists(dir + "/cgroup.procs")) << dir;
        bool below_own = false;
        for (const auto& h : layout.hierarchies) below_own = below_own || dir == h.place_dir + "/" + g.name();
        EXPECT_TRUE(below_own) << dir;
    }
    g.remove();
    EXPECT_FALSE(g.valid());
    for (const auto& dir : dirs) EXPECT_FALSE(exists(dir)) << dir;
    g.remove();  // again: nothing to do
}

TEST(cgroup, sets_limits_and_the_kernel_holds_them) {
    REQUIRE_CGROUPS();
    const unsigned last_cpu = [] {
        cpu_set_t set;
        sched_getaffinity(0, sizeof set, &set);
        unsigned last = 0;
        for (unsigned c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) last = c;
        return last;
    }();
    cg::group g({.limits = {.memory_max = "64M",
                            .swap_max = "16M",
                            .cpus = 0.5,
                            .cpu_weight = 200,
                            .cpuset_cpus = std::to_string(last_cpu),
                            .pids_max = 64}});
    EXPECT_EQ(g.memory_max_bytes(), 64 * MiB);
    const std::string memory = g.path("memory"), cpu = g.path("cpu"), pids = g.path("pids"), cpuset = g.path("cpuset");
    if (limits_are_v2()) {
        EXPECT_EQ(read_file(memory + "/memory.max"), std::to_string(64 * MiB));
        EXPECT_EQ(read_file(memory + "/memory.swap.max"), std::to_string(16 * MiB));
        EXPECT_EQ(read_file(cpu + "/cpu.max"), "50000 100000");
        EXPECT_EQ(read_file(cpu + "/cpu.weight"), "200");
    } else {
        EXPECT_EQ(read_file(memory + "/memory.limit_in_bytes"), std::to_string(64 * MiB));
        EXPECT_EQ(read_file(memory + "/memory.memsw.limit_in_bytes"), std::to_string(80 * MiB));
        EXPECT_EQ(read_file(cpu + "/cpu.cfs_quota_us"), "50000");
        EXPECT_EQ(read_file(cpu + "/cpu.cfs_period_us"), "100000");
        EXPECT_EQ(read_file(cpu + "/cpu.shares"), "2048");
    }
    EXPECT_EQ(read_file(pids + "/pids.max"), "64");
    EXPECT_EQ(read_file(cpuset + "/cpuset.cpus"), std::to_string(last_cpu));
}

TEST(cgroup, memory_hog_over_the_limit_is_oom_killed) {
    REQUIRE_CGROUPS();
    cg::group g({.limits = {.memory_max = "32M", .swap_max = "0"}});
    auto r = start_in(g, {"alloc", "256"}).wait();
    EXPECT_EQ(r.signal, SIGKILL) << "exit code " << r.exit_code.value_or(-1);
    const cg::stats s = g.read_stats();
    ASSERT_TRUE(s.oom_kills.has_value());
    EXPECT_GE(*s.oom_kills, 1u);
    EXPECT_EQ(g.oom_kills(), s.oom_kills);
    ASSERT_TRUE(s.memory_peak.has_value());
    EXPECT_LE(*s.memory_peak, 32 * MiB);
    EXPECT_GE(*s.memory_peak, 16 * MiB);
    if (limits_are_v2()) {
        ASSERT_TRUE(s.oom_events.has_value());
        EXPECT_GE(*s.oom_events, 1u);
    }
}

TEST(cgroup, memory_under_the_limit_is_not_killed) {
    REQUIRE_CGROUPS();
    cg::group g({.limits = {.memory_max = "256M"}});
    auto r = start_in(g, {"alloc", "32"}).wait();
    EXPECT_EQ(r.exit_code, 0);
    const cg::stats s = g.read_stats();
    EXPECT_EQ(s.oom_kills, 0u);
    ASSERT_TRUE(s.memory_peak.has_value());
    EXPECT_GE(*s.memory_peak, 32 * MiB);
}

TEST(cgroup, run_figures_are_the_stats_a_result_takes) {
    REQUIRE_CGROUPS();
    cg::group g({.limits = {.memory_max = "256M", .pids_max = 64}});
    ASSERT_EQ(start_in(g, {"alloc", "16"}).wait().exit_code, 0);
    const cg::stats all = g.read_stats();
    const cg::stats run = g.read_run_figures();
    // The four figures a process::result takes, as read_stats() has them
    // (nothing runs in the group now, so they cannot move)...
    EXPECT_EQ(run.memory_peak, all.memory_peak);
    EXPECT_EQ(run.oom_kills, all.oom_kills);
    EXPECT_EQ(run.cpu_user.has_value(), all.cpu_user.has_value());
    EXPECT_EQ(run.cpu_system.has_value(), all.cpu_system.has_value());
    if (run.cpu_user && all.cpu_user) {
        EXPECT_EQ(*run.cpu_user, *all.cpu_user);
    }
    ASSERT_TRUE(run.memory_peak.has_value());
    EXPECT_GE(*run.memory_peak, 16 * MiB);
    // ...and none of what it does not read (read_stats() has them here).
    EXPECT_TRUE(all.pids_current.has_value());
    EXPECT_FALSE(run.pids_current.has_value());
    EXPECT_FALSE(run.memory_current.has_value());
}

TEST(cgroup, fork_bomb_stops_at_pids_max) {
    REQUIRE_CGROUPS();
    cg::group g({.limits = {.pids_max = 16}});
    auto r = start_in(g, {"fork-bomb", "200"}).wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out;
    std::istringstream out(r.std_out);
    std::string word, failure;
    std::size_t forked = 0;
    out >> word >> forked >> failure;
    EXPECT_EQ(word, "forked");
    EXPECT_EQ(forked, 15u) << r.std_out;  // 16 tasks with the helper itself
    EXPECT_EQ(failure, "EAGAIN") << r.std_out;
    const cg::stats s = g.read_stats();
    ASSERT_TRUE(s.pids_max_events.has_value());
    EXPECT_GE(*s.pids_max_events, 1u);
    // The host is fine: the group is empty and spawning still works.
    EXPECT_TRUE(g.wait_empty(5s));
    EXPECT_EQ(spawn(helper({"exit", "0"})).wait().exit_code, 0);
}

TEST(cgroup, cpu_hog_gets_a_fifth_of_a_cpu) {
    REQUIRE_CGROUPS();
    cg::group g({.limits = {.cpus = 0.2}});
    auto child = start_in(g, {"burn", "2000"});
    // From the moment it is let go the helper runs inside the group: it
    // burns for 2 s of wall time, then exits (which, under a sanitizer,
    // also takes CPU time). All of it is held to 0.2 CPU.
    const auto start = std::chrono::steady_clock::now();
    auto r = child.wait();
    const double wall = seconds(std::chrono::steady_clock::now() - start);
    ASSERT_EQ(r.exit_code, 0);
    const cg::stats s = g.read_stats();
    ASSERT_TRUE(s.cpu_usage.has_value());
    const double share = seconds(*s.cpu_usage) / wall;
    EXPECT_NEAR(share, 0.2, 0.2 * 0.15) << "cpu usage " << seconds(*s.cpu_usage) << " s over " << wall << " s";
    EXPECT_GE(wall, 2.0);
    ASSERT_TRUE(s.cpu_throttled_periods.has_value());
    EXPECT_GT(*s.cpu_throttled_periods, 0u);
    ASSERT_TRUE(s.cpu_throttled_time.has_value());
    EXPECT_GT(s.cpu_throttled_time->count(), 0);
}

TEST(cgroup, cpuset_pinning_is_seen_from_inside) {
    REQUIRE_CGROUPS();
    cpu_set_t set;
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    std::vector<unsigned> allowed;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) allowed.push_back(c);
    ASSERT_FALSE(allowed.empty());
    const std::string cpu = std::to_string(allowed.back());
    cg::group g({.limits = {.cpuset_cpus = cpu}});
    auto r = start_in(g, {"affinity"}).wait();
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.std_out, cpu + "\n");
}

TEST(cgroup, kill_all_reaches_a_tree_that_double_forked_away) {
    REQUIRE_CGROUPS();
    for (const auto& [label, opts] : variants()) {
        SCOPED_TRACE(label);
        cg::group g(opts);
        auto r = start_in(g, {"double-fork-sleep"}).wait();
        ASSERT_EQ(r.exit_code, 0);
        const pid_t grandchild = std::stoi(r.std_out);
        const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, grandchild, 0));
        ASSERT_GE(pidfd, 0);
        const auto inside = g.pids();
        EXPECT_NE(std::find(inside.begin(), inside.end(), grandchild), inside.end());
        EXPECT_FALSE(exits_within(pidfd, 100ms));
        g.kill_all();
        EXPECT_TRUE(exits_within(pidfd, 5s));
        EXPECT_TRUE(g.wait_empty(5s));
        // Reap it if this process is its subreaper; otherwise pid 1 does.
        siginfo_t info{};
        waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG);
        close(pidfd);
    }
}

TEST(cgroup, freeze_stops_progress_and_thaw_resumes_it) {
    REQUIRE_CGROUPS();
    for (const auto& [label, opts] : variants()) {
        SCOPED_TRACE(label);
        cg::group g(opts);
        auto child = start_in(g, {"burn", "20000"});
        std::this_thread::sleep_for(200ms);
        g.freeze();
        const auto a = g.read_stats().cpu_usage;
        ASSERT_TRUE(a.has_value());
        std::this_thread::sleep_for(300ms);
        const auto b = g.read_stats().cpu_usage;
        EXPECT_LT(seconds(*b - *a), 0.005) << "the frozen group used CPU";
        g.thaw();
        std::this_thread::sleep_for(300ms);
        const auto c = g.read_stats().cpu_usage;
        EXPECT_GT(seconds(*c - *b), 0.05) << "the thawed group did not run";
        g.kill_all();
        EXPECT_EQ(child.wait().signal, SIGKILL);
    }
}

TEST(cgroup, kill_all_reaches_frozen_processes) {
    REQUIRE_CGROUPS();
    for (const auto& [label, opts] : variants()) {
        SCOPED_TRACE(label);
        cg::group g(opts);
        auto child = start_in(g, {"sleep", "100"});
        g.freeze();
        g.kill_all();
        EXPECT_TRUE(exits_within(child.pidfd(), 5s));
        EXPECT_EQ(child.wait().signal, SIGKILL);
    }
}

TEST(cgroup, wait_empty_times_out_while_a_process_runs) {
    REQUIRE_CGROUPS();
    for (const auto& [label, opts] : variants()) {
        SCOPED_TRACE(label);
        cg::group g(opts);
        auto child = start_in(g, {"sleep", "100"});
        const auto start = std::chrono::steady_clock::now();
        EXPECT_FALSE(g.wait_empty(150ms));
        EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
        EXPECT_EQ(g.pids(), std::vector<pid_t>{child.pid()});
        child.kill();
        child.wait();
        EXPECT_TRUE(g.wait_empty(5s));
        EXPECT_TRUE(g.pids().empty());
    }
}

TEST(cgroup, destructor_kills_what_is_left_and_removes_the_group) {
    REQUIRE_CGROUPS();
    std::vector<std::string> dirs;
    int pidfd = -1;
    {
        cg::group g;
        dirs = g.paths();
        auto r = start_in(g, {"double-fork-sleep"}).wait();
        const pid_t grandchild = std::stoi(r.std_out);
        pidfd = static_cast<int>(syscall(SYS_pidfd_open, grandchild, 0));
        ASSERT_GE(pidfd, 0);
    }
    EXPECT_TRUE(exits_within(pidfd, 1s));
    siginfo_t info{};
    waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG);
    close(pidfd);
    for (const auto& dir : dirs) EXPECT_FALSE(exists(dir)) << dir;
}

TEST(cgroup, kill_all_refuses_to_kill_the_caller) {
    REQUIRE_CGROUPS();
    cg::group g;
    // In a forked child, so that a failure cannot take the test process down.
    const pid_t pid = fork();
    if (pid == 0) {
        try {
            g.attach(getpid());
            g.kill_all();
            _exit(1);
        } catch (const ctr::error& e) {
            _exit(e.code().value() == EDEADLK && e.step() == ctr::step::kill_cgroup ? 0 : 2);
        }
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST(cgroup, attaches_by_pidfd) {
    REQUIRE_CGROUPS();
    cg::group g;
    auto child = spawn(helper({"sleep", "100"}));
    g.attach_pidfd(child.pidfd());
    EXPECT_EQ(g.pids(), std::vector<pid_t>{child.pid()});
    const std::string own = read_file("/proc/" + std::to_string(child.pid()) + "/cgroup");
    EXPECT_NE(own.find("/" + g.name()), std::string::npos) << own;
    child.kill();
    child.wait();

    const auto e = error_of([&] { g.attach_pidfd(-1); });
    EXPECT_EQ(e.step(), ctr::step::attach_to_cgroup);
    const auto gone = error_of([&] { g.attach(0x3ffffff0); });
    EXPECT_EQ(gone.step(), ctr::step::attach_to_cgroup);
    EXPECT_EQ(gone.code().value(), ESRCH) << gone.what();
    EXPECT_TRUE(mentions(gone, "cgroup.procs")) << gone.what();
}

TEST(cgroup, clone_into_fd_places_a_child_on_cgroup_v2) {
    REQUIRE_CGROUPS();
    cg::group plain;
    if (plain.layout() == ctr::cgroup_layout::v2) {
        EXPECT_GE(plain.clone_into_fd(), 0);
        EXPECT_FALSE(plain.needs_attach_before_exec());
    } else {
        EXPECT_EQ(plain.clone_into_fd(), -1);
        EXPECT_TRUE(plain.needs_attach_before_exec());
    }
    if (!has_usable_v2()) GTEST_SKIP() << "no cgroup2 hierarchy to clone into";
    cg::group g({.unified_only = true});
    ASSERT_GE(g.clone_into_fd(), 0);
    EXPECT_FALSE(g.needs_attach_before_exec());
    clone_args args{};
    int pidfd = -1;
    args.flags = CLONE_INTO_CGROUP | CLONE_PIDFD;
    args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<std::uint64_t>(g.clone_into_fd());
    const long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0)
        for (;;) syscall(SYS_pause);
    if (pid < 0 && (errno == ENOSYS || errno == EINVAL)) GTEST_SKIP() << "no CLONE_INTO_CGROUP here";
    ASSERT_GT(pid, 0) << std::strerror(errno);
    EXPECT_EQ(g.pids(), std::vector<pid_t>{static_cast<pid_t>(pid)});
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    siginfo_t info{};
    waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
    close(pidfd);
}

TEST(cgroup, reap_stale_removes_the_groups_of_a_killed_run) {
    REQUIRE_CGROUPS();
    const std::string prefix = "ctrtest-reap-" + std::to_string(getpid());
    cg::group mine({.prefix = prefix});  // a live creator's group: never reaped

    auto run = spawn(helper({"make-cgroup-and-hang", prefix}), {.std_out = stdio::pipe()});
    std::istringstream line(read_line(run.std_out().get(), 10s));
    std::string name;
    pid_t sleeper = 0;
    line >> name >> sleeper;
    ASSERT_FALSE(name.empty());
    ASSERT_GT(sleeper, 0);
    const int sleeper_fd = static_cast<int>(syscall(SYS_pidfd_open, sleeper, 0));
    ASSERT_GE(sleeper_fd, 0);
    std::vector<std::string> dirs;
    for (const auto& dir : mine.paths()) dirs.push_back(dir.substr(0, dir.rfind('/') + 1) + name);
    for (const auto& dir : dirs) EXPECT_TRUE(exists(dir)) << dir;

    run.kill();  // the run dies midway, without cleaning up
    EXPECT_EQ(run.wait().signal, SIGKILL);
    for (const auto& dir : dirs) EXPECT_TRUE(exists(dir)) << dir;
    EXPECT_FALSE(exits_within(sleeper_fd, 50ms));

    EXPECT_EQ(cg::reap_stale(prefix), 1u);
    for (const auto& dir : dirs) EXPECT_FALSE(exists(dir)) << dir;
    EXPECT_TRUE(exits_within(sleeper_fd, 5s));
    siginfo_t info{};
    waitid(P_PIDFD, static_cast<id_t>(sleeper_fd), &info, WEXITED | WNOHANG);
    close(sleeper_fd);

    EXPECT_TRUE(mine.valid());
    for (const auto& dir : mine.paths()) EXPECT_TRUE(exists(dir)) << dir;
    EXPECT_EQ(cg::reap_stale(prefix), 0u);
}

TEST(cgroup, move_self_to_leaf_puts_later_groups_beside_the_leaf) {
    REQUIRE_CGROUPS();
    const auto layout = cgd::detect_cgroup_layout();
    if (!layout.v2() || !layout.v2()->usable()) GTEST_SKIP() << "no usable cgroup2 hierarchy: " << layout.describe();
    // In a helper, which is then moved: never this test process.
    auto r = spawn(helper({"move-to-leaf"}), {.std_out = stdio::capture(), .std_err = stdio::capture()}).wait();
    const std::string leaf = layout.v2()->place_dir + "/ctr-leaf";
    ASSERT_EQ(r.exit_code, 0) << r.std_err;
    std::istringstream out(r.std_out);
    std::string reported_leaf, group_dir;
    std::getline(out, reported_leaf);
    std::getline(out, group_dir);
    EXPECT_EQ(reported_leaf, leaf);
    EXPECT_EQ(group_dir.substr(0, group_dir.rfind('/')), layout.v2()->place_dir);
    // The leaf is empty now that the helper is gone. Another run of the
    // suite may be using it at the same moment: then it stays for that one.
    for (int i = 0; i < 100 && rmdir(leaf.c_str()) != 0 && errno == EBUSY; ++i) std::this_thread::sleep_for(10ms);
}

TEST(cgroup, v2_leaf_rule_needs_the_explicit_move) {
    REQUIRE_CGROUPS();
    const auto layout = cgd::detect_cgroup_layout();
    const auto* v2 = layout.v2();
    if (layout.kind != ctr::cgroup_layout::v2 || !v2->usable() || !v2->has("pids"))
        GTEST_SKIP() << "needs pure cgroup v2 with the pids controller: " << layout.describe();
    // A cgroup with a process in it, like a delegated subtree: the helper.
    const std::string parent = v2->place_dir + "/ctrtest-leafrule-" + std::to_string(getpid());
    ASSERT_EQ(mkdir(parent.c_str(), 0755), 0) << std::strerror(errno);
    for (const char* how : {"stay", "move"}) {
        SCOPED_TRACE(how);
        auto child = spawn(helper({"after-stdin", "make-group-here", how}),
                           {.std_in = stdio::pipe(), .std_out = stdio::capture()});
        {
            std::ofstream procs(parent + "/cgroup.procs");
            procs << child.pid() << std::flush;
            ASSERT_TRUE(procs) << "cannot move the helper into " << parent;
        }
        const char newline = '\n';
        ASSERT_EQ(write(child.std_in().get(), &newline, 1), 1);
        child.std_in().reset();
        const auto r = child.wait();
        if (std::string(how) == "stay") {
            // Without the option: a clear error, and the helper was not moved.
            EXPECT_EQ(r.exit_code, 3) << r.std_out;
            EXPECT_NE(r.std_out.find("error " + std::to_string(EBUSY)), std::string::npos) << r.std_out;
            EXPECT_NE(r.std_out.find("move_caller_to_leaf"), std::string::npos) << r.std_out;
            EXPECT_FALSE(exists(parent + "/ctr-leaf"));
        } else {
            // With it: the helper lives in the leaf, the group beside it.
            EXPECT_EQ(r.exit_code, 0) << r.std_out;
            std::istringstream out(r.std_out);
            std::string ok, group_dir, own;
            out >> ok >> group_dir >> own;
            EXPECT_EQ(ok, "ok");
            EXPECT_EQ(group_dir.substr(0, group_dir.rfind('/')), parent);
            EXPECT_EQ(own, parent.substr(v2->mount_point.size()) + "/ctr-leaf");
        }
    }
    rmdir((parent + "/ctr-leaf").c_str());
    EXPECT_EQ(rmdir(parent.c_str()), 0) << std::strerror(errno);
}

TEST(cgroup, unknown_controller_is_an_error) {
    REQUIRE_CGROUPS();
    const auto before = own_group_dirs();
    const auto e = error_of([] { cg::group g({.controllers = {"memroy"}}); });
    EXPECT_EQ(e.step(), ctr::step::enable_controllers);
    EXPECT_EQ(e.code().value(), EINVAL);
    EXPECT_TRUE(mentions(e, "memroy")) << e.what();
    EXPECT_TRUE(mentions(e, "unknown cgroup controller")) << e.what();
    EXPECT_EQ(own_group_dirs(), before);
}

TEST(cgroup, bad_limits_are_errors_that_name_the_value) {
    REQUIRE_CGROUPS();
    const auto before = own_group_dirs();
    struct bad {
        cg::limits limits;
        const char* field;
        const char* text;
    };
    const bad cases[] = {
        {{.memory_max = "1.5.5G"}, "memory_max", "1.5.5G"},
        {{.memory_max = "64M", .swap_max = "lots"}, "swap_max", "lots"},
        {{.cpus = 0.001}, "cpus", "1000us"},
        {{.cpus = -1.0}, "cpus", "positive"},
        {{.cpus = 0.5, .cpu_period = std::chrono::microseconds(10)}, "cpu_period", "10us"},
        {{.cpu_weight = 0}, "cpu_weight", "1 to 10000"},
        {{.cpuset_cpus = "3-1"}, "cpuset_cpus", "3-1"},
        {{.pids_max = 10, .io_max = {{.device = "sda"}}}, "sda", "MAJ:MIN"},
    };
    for (const auto& c : cases) {
        const auto e = error_of([&] { cg::group g({.limits = c.limits}); });
        EXPECT_EQ(e.step(), ctr::step::set_cgroup_limit) << e.what();
        EXPECT_EQ(e.code().value(), EINVAL) << e.what();
        EXPECT_TRUE(mentions(e, c.field)) << e.what();
        EXPECT_TRUE(mentions(e, c.text)) << e.what();
    }
    // Past the parser: a device the kernel does not have.
    const auto e = error_of([] { cg::group g({.limits = {.io_max = {{.device = "4095:4095", .read_iops = 10}}}}); });
    EXPECT_EQ(e.step(), ctr::step::set_cgroup_limit) << e.what();
    EXPECT_TRUE(mentions(e, "4095:4095") || e.code().value() == ENOTSUP) << e.what();
    EXPECT_EQ(own_group_dirs(), before);
}

TEST(cgroup, a_limit_the_layout_cannot_hold_is_an_error) {
    REQUIRE_CGROUPS();
    const auto layout = cgd::detect_cgroup_layout();
    const std::string layout_name(ctr::to_string(layout.kind));
    if (layout.kind == ctr::cgroup_layout::v2) {
        // v2 has no devices controller (it uses BPF for that).
        const auto e = error_of([] { cg::group g({.controllers = {"devices"}}); });
        EXPECT_EQ(e.code().value(), ENOTSUP) << e.what();
        EXPECT_TRUE(mentions(e, "devices")) << e.what();
        EXPECT_TRUE(mentions(e, "v2 layout")) << e.what();
    } else {
        // memory.high exists on v2 only.
        const auto e = error_of([] { cg::group g({.limits = {.memory_high = "64M"}}); });
        EXPECT_EQ(e.step(), ctr::step::set_cgroup_limit);
        EXPECT_EQ(e.code().value(), ENOTSUP) << e.what();
        EXPECT_TRUE(mentions(e, "memory.high")) << e.what();
        EXPECT_TRUE(mentions(e, layout_name + " layout")) << e.what();
        // swap on v1 is bounded together with memory, so it needs memory_max.
        const auto swap = error_of([] { cg::group g({.limits = {.swap_max = "1G"}}); });
        EXPECT_EQ(swap.code().value(), ENOTSUP) << swap.what();
        EXPECT_TRUE(mentions(swap, "memory_max")) << swap.what();
    }
    if (layout.kind == ctr::cgroup_layout::hybrid && has_usable_v2()) {
        // The cgroup2 side of this host has no memory controller.
        const auto e = error_of([] { cg::group g({.limits = {.memory_max = "64M"}, .unified_only = true}); });
        EXPECT_EQ(e.code().value(), ENOTSUP) << e.what();
        EXPECT_TRUE(mentions(e, "memory")) << e.what();
        EXPECT_TRUE(mentions(e, "cgroup.controllers")) << e.what();
    }
    if (layout.kind == ctr::cgroup_layout::v1) {
        const auto e = error_of([] { cg::group g({.unified_only = true}); });
        EXPECT_EQ(e.code().value(), ENOTSUP) << e.what();
    }
}

TEST(cgroup, io_limits_reach_the_kernel) {
    REQUIRE_CGROUPS();
    // The first real block device (not a loop, ram or zram device).
    std::string device, name;
    for (const char* candidate : {"vda", "sda", "nvme0n1", "xvda", "hda"})
        if (exists(std::string("/sys/block/") + candidate + "/dev")) {
            name = candidate;
            device = read_file(std::string("/sys/block/") + candidate + "/dev");
            break;
        }
    if (device.empty()) GTEST_SKIP() << "no block device to limit";
    cg::group g({.limits = {.io_max = {{.device = "/dev/" + name, .read_bps = "1M", .write_iops = 100}}}});
    const std::string dir = g.path("io");
    if (limits_are_v2()) {
        const std::string io = read_file(dir + "/io.max");
        EXPECT_NE(io.find(device + " rbps=1048576 wbps=max riops=max wiops=100"), std::string::npos) << io;
    } else {
        EXPECT_EQ(read_file(dir + "/blkio.throttle.read_bps_device"), device + " 1048576");
        EXPECT_EQ(read_file(dir + "/blkio.throttle.write_iops_device"), device + " 100");
    }
}

TEST(cgroup, io_weight_reaches_the_kernel_or_says_why_not) {
    REQUIRE_CGROUPS();
    try {
        cg::group g({.limits = {.io_weight = 300}});
        const std::string dir = g.path("io");
        const std::string v2 = read_file(dir + "/io.weight"), v2_bfq = read_file(dir + "/io.bfq.weight");
        const std::string v1 = read_file(dir + "/blkio.bfq.weight"), v1_cfq = read_file(dir + "/blkio.weight");
        EXPECT_TRUE(v2 == "default 300" || v2_bfq == "default 300" || v1 == "300" || v1_cfq == "300")
            << v2 << " | " << v2_bfq << " | " << v1 << " | " << v1_cfq;
    } catch (const ctr::error& e) {
        // A kernel without the weight files must say which file is missing.
        EXPECT_EQ(e.step(), ctr::step::set_cgroup_limit) << e.what();
        EXPECT_TRUE(e.code().value() == ENOENT || e.code().value() == ENOTSUP) << e.what();
        EXPECT_TRUE(mentions(e, "io_weight")) << e.what();
    }
}

TEST(cgroup, missing_figures_are_empty_not_zero) {
    REQUIRE_CGROUPS();
    cg::group g;
    const cg::stats s = g.read_stats();
    EXPECT_TRUE(s.cpu_usage.has_value());
    EXPECT_EQ(s.cpu_usage->count(), 0);
    if (g.layout() == ctr::cgroup_layout::v2) {
        EXPECT_TRUE(s.oom_events.has_value());
    } else {
        // v1 counts OOM kills (memory.oom_control) but not OOM events.
        EXPECT_FALSE(s.oom_events.has_value());
        EXPECT_TRUE(s.oom_kills.has_value());
    }
    if (host_layout() == ctr::cgroup_layout::hybrid && has_usable_v2()) {
        cg::group u({.unified_only = true});
        const cg::stats us = u.read_stats();
        EXPECT_TRUE(us.cpu_usage.has_value());  // every v2 cgroup has cpu.stat
        EXPECT_FALSE(us.memory_current.has_value());
        EXPECT_FALSE(us.memory_peak.has_value());
        EXPECT_FALSE(us.oom_kills.has_value());
        EXPECT_FALSE(us.pids_current.has_value());
        EXPECT_FALSE(us.cpu_throttled_periods.has_value());
    }
    cg::group none({.accounting = false});
    EXPECT_FALSE(none.read_stats().memory_current.has_value());
}

TEST(cgroup, moves_and_move_assignment_removes_the_old_group) {
    REQUIRE_CGROUPS();
    cg::group a;
    const auto a_dirs = a.paths();
    cg::group b(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_TRUE(b.valid());
    EXPECT_EQ(b.paths(), a_dirs);
    for (const auto& dir : a_dirs) EXPECT_TRUE(exists(dir)) << dir;
    b = cg::group();
    for (const auto& dir : a_dirs) EXPECT_FALSE(exists(dir)) << dir;
    EXPECT_TRUE(b.valid());
    EXPECT_THROW(a.attach(getpid()), ctr::error);
}

TEST(cgroup, bad_prefix_is_an_error) {
    for (const char* bad : {"", "a/b", ".hidden", "sp ace"}) {
        const auto e = error_of([&] { cg::group g({.prefix = bad}); });
        EXPECT_EQ(e.step(), ctr::step::create_cgroup) << bad;
        EXPECT_EQ(e.code().value(), EINVAL) << bad;
    }
}

// --- failures on the way, made to happen ---

TEST(cgroup, failed_mkdir_leaves_nothing_behind) {
    REQUIRE_CGROUPS();
    const cg::options opts{.limits = {.pids_max = 8}};
    const std::size_t directories = cg::group(opts).paths().size();
    const auto before = own_group_dirs();
    const auto fds_before = ctr_test::open_fds();
    // The first directory fails, then (where the group has more) a later one.
    for (int skip = 0; skip < static_cast<int>(directories); ++skip) {
        fault_injection fault(call::mkdirat, ENOSPC, skip);
        const auto e = error_of([&] { cg::group g(opts); });
        EXPECT_TRUE(fault.exhausted());
        EXPECT_EQ(e.step(), ctr::step::create_cgroup) << e.what();
        EXPECT_EQ(e.code().value(), ENOSPC) << e.what();
        EXPECT_EQ(own_group_dirs(), before) << "skip " << skip;
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
}

TEST(cgroup, failed_limit_write_leaves_nothing_behind) {
    REQUIRE_CGROUPS();
    const auto before = own_group_dirs();
    {
        fault_injection fault(call::write, EIO, 0, -1);
        const auto e = error_of([] { cg::group g({.limits = {.pids_max = 8}}); });
        EXPECT_EQ(e.step(), ctr::step::set_cgroup_limit) << e.what();
        EXPECT_EQ(e.code().value(), EIO) << e.what();
        EXPECT_TRUE(mentions(e, "pids.max")) << e.what();
    }
    EXPECT_EQ(own_group_dirs(), before);
}

TEST(cgroup, failed_rmdir_is_reported_and_can_be_retried) {
    REQUIRE_CGROUPS();
    const auto before = own_group_dirs();
    cg::group g({.remove_timeout = 200ms});
    {
        fault_injection fault(call::unlinkat, EBUSY, 0, -1);
        const auto e = error_of([&] { g.remove(); });
        EXPECT_EQ(e.step(), ctr::step::remove_cgroup) << e.what();
        EXPECT_EQ(e.code().value(), EBUSY) << e.what();
        EXPECT_TRUE(g.valid());
    }
    g.remove();
    EXPECT_FALSE(g.valid());
    EXPECT_EQ(own_group_dirs(), before);
}

// Found by tests/fuzz (proc_cgroup): an id longer than an int overflowed it.
TEST(cgroup, proc_cgroup_lines_without_a_kernel_id_are_skipped) {
    const auto entries = cgd::parse_proc_cgroup("99999999999:memory:/a\n:cpu:/b\nx:cpu:/c\n4:memory:/d\n0::/\n");
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].id, 4);
    EXPECT_EQ(entries[0].path, "/d");
    EXPECT_EQ(entries[1].id, 0);
    EXPECT_EQ(entries[1].path, "/");
}

// A caller that may not make groups (rootless without delegation) is told
// which controller its limit needs, in that controller's hierarchy (not the
// first one tried, which on a hybrid host is cpu), and the fix.
TEST(cgroup, a_refused_group_names_the_controller_asked_for_and_the_fix) {
    const auto& refused = ctr_test::cgroup_blocker();
    if (!refused || refused->step() != ctr::step::create_cgroup ||
        (refused->code().value() != EACCES && refused->code().value() != EPERM))
        GTEST_SKIP() << "this process may make cgroups here (the rootless lane provokes the refusal)";
    try {
        ctr::cgroup::group g(ctr::cgroup::options{.limits = {.pids_max = 10}});
        FAIL() << "a group was made although a plain one was refused";
    } catch (const ctr::error& e) {
        const std::string message = e.what();
        EXPECT_EQ(e.step(), ctr::step::create_cgroup);
        EXPECT_NE(message.find("pids_max needs the pids controller"), std::string::npos) << message;
        // The path is in the hierarchy that has pids.
        std::string pids_dir;
        for (const auto& h : cgd::detect_cgroup_layout().hierarchies)
            if (h.usable() && h.has("pids") && pids_dir.empty()) pids_dir = h.place_dir + "/";
        EXPECT_EQ(e.path().rfind(pids_dir, 0), 0u) << "in " << pids_dir << ": " << e.path();
        EXPECT_NE(message.find("Delegate=yes"), std::string::npos) << message;
    }
}

// --- exact paths, release and open (OCI runtimes), device rules ---

// Tested as a pure function with a container's mount roots: an absolute
// path starts at the root of the hierarchy as mounted, a relative one at
// the own cgroup. (No test makes a group at an absolute path: that would
// be outside this process's cgroup on the host.)
TEST(cgroup, exact_paths_start_at_the_mount_root_or_the_own_cgroup) {
    const auto layout = cgd::parse_cgroup_layout(
        "30 22 0:27 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "31 22 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
        "4:memory:/docker/abc/inner\n0::/user.slice/me\n");
    ASSERT_EQ(layout.hierarchies.size(), 2u);
    const auto& v2 = layout.hierarchies[0];
    const auto& memory = layout.hierarchies[1];
    ASSERT_TRUE(v2.v2);
    ASSERT_TRUE(memory.usable()) << memory.problem;

    auto at = cgd::locate_group(memory, "/libpod_parent/libpod-1");
    EXPECT_EQ(at.dir, "/sys/fs/cgroup/memory/libpod_parent/libpod-1");
    EXPECT_EQ(at.cgroup_path, "/docker/abc/libpod_parent/libpod-1");  // as /proc/PID/cgroup shows it
    EXPECT_EQ(at.base_dir, "/sys/fs/cgroup/memory");
    EXPECT_EQ(at.components, (std::vector<std::string>{"libpod_parent", "libpod-1"}));
    at = cgd::locate_group(memory, "pod/c1");
    EXPECT_EQ(at.dir, "/sys/fs/cgroup/memory/inner/pod/c1");
    EXPECT_EQ(at.cgroup_path, "/docker/abc/inner/pod/c1");
    at = cgd::locate_group(v2, "/libpod_parent/libpod-1");
    EXPECT_EQ(at.dir, "/sys/fs/cgroup/unified/libpod_parent/libpod-1");
    EXPECT_EQ(at.cgroup_path, "/libpod_parent/libpod-1");
    at = cgd::locate_group(v2, "c1");
    EXPECT_EQ(at.dir, "/sys/fs/cgroup/unified/user.slice/me/c1");
    EXPECT_EQ(at.cgroup_path, "/user.slice/me/c1");

    for (const char* bad : {"", "/", "a//b", "a/", "../x", "a/./b", "a/../../b", "//a"}) {
        const auto e = error_of([&] { cgd::locate_group(memory, bad); });
        EXPECT_EQ(e.step(), ctr::step::create_cgroup) << bad;
        EXPECT_EQ(e.code().value(), EINVAL) << bad;
        EXPECT_TRUE(mentions(e, "bad cgroup path")) << e.what();
    }
}

namespace {
// Removes a test's path groups and their parents in every hierarchy.
struct path_cleanup {
    std::string top;  // relative to the own cgroup
    ~path_cleanup() {
        const auto deadline = cgd::cgroup_clock::now() + 5s;
        for (const auto& h : cgd::detect_cgroup_layout().hierarchies)
            if (h.usable()) cgd::remove_cgroup_dir(h.place_dir + "/" + top, deadline);
    }
};
std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}
}  // namespace

TEST(cgroup, makes_a_group_at_an_exact_path_with_its_parents) {
    REQUIRE_CGROUPS();
    const std::string top = "ctrtest-path-" + std::to_string(getpid());
    const std::string path = top + "/pod/ctr";
    path_cleanup cleanup{top};
    const auto layout = cgd::detect_cgroup_layout();
    std::vector<std::string> dirs;
    {
        cg::group g({.path = path, .limits = {.pids_max = 16}});
        EXPECT_EQ(g.name(), path);
        EXPECT_TRUE(g.owns());
        dirs = g.paths();
        ASSERT_FALSE(dirs.empty());
        for (const auto& dir : dirs) {
            bool below_own = false;
            for (const auto& h : layout.hierarchies) below_own = below_own || dir == h.place_dir + "/" + path;
            EXPECT_TRUE(below_own) << dir;
            EXPECT_TRUE(exists(dir + "/cgroup.procs")) << dir;
        }
        EXPECT_EQ(read_file(g.path("pids") + "/pids.max"), "16");
        // A process placed there is in the group: /proc/PID/cgroup names the path.
        auto child = start_in(g, {"sleep", "30"});
        EXPECT_EQ(g.pids(), std::vector<pid_t>{child.pid()});
        const std::string seen = read_file("/proc/" + std::to_string(child.pid()) + "/cgroup");
        EXPECT_NE(seen.find("/" + path), std::string::npos) << seen;
        child.kill();
        child.wait();

        // Another group at the same path: an error naming it.
        const auto e = error_of([&] { cg::group again({.path = path}); });
        EXPECT_EQ(e.step(), ctr::step::create_cgroup);
        EXPECT_EQ(e.code().value(), EEXIST);
        EXPECT_TRUE(mentions(e, path)) << e.what();
        EXPECT_TRUE(mentions(e, "join_existing")) << e.what();
        for (const auto& dir : dirs) EXPECT_TRUE(exists(dir)) << dir;

        // Unless asked to join it; a joined group is not the handle's.
        {
            cg::group joined({.path = path, .join_existing = true, .limits = {.pids_max = 8}});
            EXPECT_FALSE(joined.owns());
            EXPECT_EQ(sorted(joined.paths()), sorted(dirs));
            EXPECT_EQ(read_file(g.path("pids") + "/pids.max"), "8");
        }
        for (const auto& dir : dirs) EXPECT_TRUE(exists(dir)) << dir;
    }
    // The owner removed the group; the parents it made stay (another
    // group may be made in them meanwhile, as runtimes share a parent).
    for (const auto& dir : dirs) {
        EXPECT_FALSE(exists(dir)) << dir;
        EXPECT_TRUE(exists(dir.substr(0, dir.rfind('/')))) << dir;
    }
}

TEST(cgroup, a_released_group_stays_and_open_finds_it_again) {
    REQUIRE_CGROUPS();
    for (const auto& [variant, base] : variants()) {
        SCOPED_TRACE(variant);
        const std::string top = "ctrtest-open-" + std::to_string(getpid()) + "-" + variant;
        const std::string path = top + "/ctr";
        path_cleanup cleanup{top};
        std::optional<cg::group> made;
        cg::options o = base;
        o.path = path;
        if (!o.unified_only) o.limits.pids_max = 32;  // the cgroup2 side here has no pids controller
        made.emplace(o);
        auto child = start_in(*made, {"sleep", "60"});
        const auto dirs = made->paths();
        made->release();  // as an OCI `create` does before it exits
        EXPECT_FALSE(made->valid());
        made.reset();
        for (const auto& dir : dirs) EXPECT_TRUE(exists(dir)) << dir;

        {
            auto g = cg::group::open(path);  // `state`
            EXPECT_TRUE(g.valid());
            EXPECT_FALSE(g.owns());
            EXPECT_EQ(g.name(), path);
            EXPECT_EQ(sorted(g.paths()), sorted(dirs));
            EXPECT_EQ(g.pids(), std::vector<pid_t>{child.pid()});
            const auto s = g.read_stats();
            if (s.pids_current) {
                EXPECT_EQ(*s.pids_current, 1u);
            }
            g.freeze();
            g.thaw();
        }
        // The opened handle's destructor left the group and its process.
        for (const auto& dir : dirs) EXPECT_TRUE(exists(dir)) << dir;
        EXPECT_EQ(cg::group::open(path).pids(), std::vector<pid_t>{child.pid()});

        auto g = cg::group::open(path);  // `delete`
        g.remove();
        EXPECT_FALSE(g.valid());
        EXPECT_EQ(child.wait().signal, SIGKILL);
        for (const auto& dir : dirs) EXPECT_FALSE(exists(dir)) << dir;

        const auto e = error_of([&] { (void)cg::group::open(path); });
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_TRUE(mentions(e, path)) << e.what();
    }
}

TEST(cgroup, open_with_remove_on_destruction_owns_the_group) {
    REQUIRE_CGROUPS();
    const std::string path = "ctrtest-own-" + std::to_string(getpid());
    path_cleanup cleanup{path};
    std::vector<std::string> dirs;
    {
        cg::group g({.path = path});
        dirs = g.paths();
        g.release();
    }
    {
        auto g = cg::group::open(path, {.remove_on_destruction = true});
        EXPECT_TRUE(g.owns());
    }
    for (const auto& dir : dirs) EXPECT_FALSE(exists(dir)) << dir;
}

namespace {
// What a helper in a new group with `rules` sees when it opens `device`.
std::string open_in_group(const cg::options& base, const std::vector<cg::device_rule>& rules,
                          const std::string& device, const std::string& how = "") {
    cg::options o = base;
    o.limits.devices = rules;
    cg::group g(o);
    auto child = start_in(g, {"open", device, how});
    const auto r = child.wait();
    std::string out = r.std_out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}
}  // namespace

// v1: the devices controller. v2 (unified_only on this hybrid host, or
// the VM lane): the BPF device program, which the kernel runs for the
// process's cgroup2 group even where v1 controllers are mounted.
TEST(cgroup, device_rules_deny_zero_and_allow_null) {
    REQUIRE_CGROUPS();
    const std::vector<cg::device_rule> null_only = {{.allow = false},
                                                    {.allow = true, .type = 'c', .major = 1, .minor = 3}};
    for (const auto& [variant, base] : variants()) {
        SCOPED_TRACE(variant);
        // Without rules both open: a refusal below is the rules' doing.
        EXPECT_EQ(open_in_group(base, {}, "/dev/zero"), "ok");
        EXPECT_EQ(open_in_group(base, {}, "/dev/null"), "ok");

        EXPECT_EQ(open_in_group(base, null_only, "/dev/zero"), std::to_string(EPERM));
        EXPECT_EQ(open_in_group(base, null_only, "/dev/null"), "ok");
        EXPECT_EQ(open_in_group(base, null_only, "/dev/null", "rw"), "ok");

        // One denied device, the rest allowed.
        const std::vector<cg::device_rule> no_zero = {{.allow = false, .type = 'c', .major = 1, .minor = 5}};
        EXPECT_EQ(open_in_group(base, no_zero, "/dev/zero"), std::to_string(EPERM));
        EXPECT_EQ(open_in_group(base, no_zero, "/dev/null"), "ok");

        // Access: read only; the later rule wins over the deny-all.
        const std::vector<cg::device_rule> read_zero = {
            {.allow = false}, {.allow = true, .type = 'c', .major = 1, .minor = 5, .access = "r"}};
        EXPECT_EQ(open_in_group(base, read_zero, "/dev/zero"), "ok");
        EXPECT_EQ(open_in_group(base, read_zero, "/dev/zero", "rw"), std::to_string(EPERM));
        // A wildcard minor.
        const std::vector<cg::device_rule> mem_devices = {{.allow = false}, {.allow = true, .type = 'c', .major = 1}};
        EXPECT_EQ(open_in_group(base, mem_devices, "/dev/zero"), "ok");
        EXPECT_EQ(open_in_group(base, mem_devices, "/dev/tty"), std::to_string(EPERM));
    }
}

TEST(cgroup, bad_device_rules_are_errors_naming_the_rule) {
    REQUIRE_CGROUPS();
    const auto before = own_group_dirs();
    const std::vector<cg::device_rule> bad = {
        {.allow = true, .type = 'x'},
        {.allow = true, .type = 'c', .access = "rwx"},
        {.allow = true, .type = 'c', .access = "rr"},
        {.allow = true, .type = 'a', .major = 1},
        {.allow = true, .type = 'a', .access = "r"},
    };
    for (const auto& rule : bad) {
        const auto e = error_of([&] { cg::group g({.limits = {.devices = {{.allow = false}, rule}}}); });
        EXPECT_EQ(e.step(), ctr::step::set_cgroup_limit) << e.what();
        EXPECT_EQ(e.code().value(), EINVAL) << e.what();
        EXPECT_TRUE(mentions(e, "devices[1]")) << e.what();
    }
    EXPECT_EQ(own_group_dirs(), before);
}

TEST(cgroup, reservation_shares_and_hugepage_limits_reach_the_kernel) {
    REQUIRE_CGROUPS();
    cg::group g({.limits = {.memory_max = "64M", .memory_reservation = "32M", .cpu_shares = 1024}});
    const std::string memory = g.path("memory"), cpu = g.path("cpu");
    if (limits_are_v2()) {
        EXPECT_EQ(read_file(memory + "/memory.low"), std::to_string(32 * MiB));
        EXPECT_EQ(read_file(cpu + "/cpu.weight"), "39");  // 1 + (1024 - 2) * 9999 / 262142
    } else {
        EXPECT_EQ(read_file(memory + "/memory.soft_limit_in_bytes"), std::to_string(32 * MiB));
        EXPECT_EQ(read_file(cpu + "/cpu.shares"), "1024");
    }
    const auto both = error_of([] { cg::group bad({.limits = {.cpu_weight = 100, .cpu_shares = 1024}}); });
    EXPECT_EQ(both.code().value(), EINVAL);
    EXPECT_TRUE(mentions(both, "cpu_shares")) << both.what();
    const auto low = error_of([] { cg::group bad({.limits = {.cpu_shares = 1}}); });
    EXPECT_EQ(low.code().value(), EINVAL);

    if (!exists("/sys/kernel/mm/hugepages/hugepages-2048kB")) GTEST_SKIP() << "no 2 MiB huge pages here";
    const auto layout = cgd::detect_cgroup_layout();
    bool hugetlb = false;
    for (const auto& h : layout.hierarchies) hugetlb = hugetlb || (h.usable() && h.has("hugetlb"));
    if (!hugetlb) GTEST_SKIP() << "no hugetlb controller: " << layout.describe();
    // 5M keeps two whole 2 MiB pages.
    cg::group h({.limits = {.hugepages = {{.page_size = "2MB", .max = "5M"}}}});
    const std::string dir = h.path("hugetlb");
    const bool v2 = exists(dir + "/hugetlb.2MB.max");
    EXPECT_EQ(read_file(dir + (v2 ? "/hugetlb.2MB.max" : "/hugetlb.2MB.limit_in_bytes")), std::to_string(4 * MiB));
    const auto bad_size = error_of([] { cg::group bad({.limits = {.hugepages = {{.page_size = "2M", .max = "max"}}}}); });
    EXPECT_EQ(bad_size.code().value(), EINVAL);
    EXPECT_TRUE(mentions(bad_size, "'2M'")) << bad_size.what();
}

// What a caller without CAP_BPF (rootless, on v2) meets: the load refused.
TEST(cgroup, a_refused_device_program_says_why_and_leaves_nothing_behind) {
    REQUIRE_CGROUPS();
    const auto layout = cgd::detect_cgroup_layout();
    if (!layout.v2() || !layout.v2()->usable() || layout.kind == ctr::cgroup_layout::v1)
        GTEST_SKIP() << "no usable cgroup2 hierarchy: " << layout.describe();
    const auto before = own_group_dirs();
    fault_injection fault(call::bpf, EPERM);
    const auto e = error_of([&] {
        cg::group g({.limits = {.devices = {{.allow = false}}},
                     .unified_only = layout.kind == ctr::cgroup_layout::hybrid});
    });
    EXPECT_EQ(e.step(), ctr::step::set_cgroup_limit);
    EXPECT_EQ(e.code().value(), EPERM);
    EXPECT_TRUE(mentions(e, "CAP_BPF")) << e.what();
    EXPECT_TRUE(mentions(e, "leave limits::devices empty")) << e.what();
    EXPECT_EQ(own_group_dirs(), before);
}
