// process::prepared_sandbox: the sandbox made once, each run fresh where it
// must be (pid namespace, /proc, tmpfs, IPC, UTS), and nothing of one run
// reaching the next.
#include <ctr/cgroup.hpp>
#include <ctr/landlock.hpp>
#include <ctr/prepared.hpp>
#include <ctr/security.hpp>

#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using ctr::process::prepared_sandbox;
using ctr::process::run_options;
using ctr::process::stdio;

namespace {

ctr::process::options sandboxed() { return {.namespaces = ctr::ns::all}; }

// `sh -c script` in the sandbox, its stdout captured.
ctr::process::result shell(const prepared_sandbox& box, const std::string& script, run_options opts = {}) {
    opts.std_out = stdio::capture();
    return box.run({"/bin/sh", "-c", script}, opts).wait();
}

// The pid a pidfd stands for, as this process sees it (its fdinfo).
pid_t pid_of_pidfd(int pidfd) {
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(pidfd));
    std::string line;
    while (std::getline(info, line))
        if (line.rfind("Pid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(4)));
    return -1;
}

// The children of `pid` (its main thread's), from /proc.
std::vector<pid_t> children_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    std::vector<pid_t> out;
    for (pid_t p; in >> p;) out.push_back(p);
    return out;
}

// Every process below `pid`, itself excluded.
std::vector<pid_t> descendants_of(pid_t pid) {
    std::vector<pid_t> out, next{pid};
    while (!next.empty()) {
        const pid_t p = next.back();
        next.pop_back();
        for (pid_t c : children_of(p)) {
            out.push_back(c);
            next.push_back(c);
        }
    }
    return out;
}

// What /proc/<pid>/fd/<n> points at, for each fd of `pid`.
std::set<std::string> fd_targets(pid_t pid) {
    std::set<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        std::error_code ec;
        out.insert(std::filesystem::read_symlink(entry.path(), ec).string());
    }
    return out;
}

}  // namespace

TEST(prepared, runs_commands_and_reports_how_they_ended) {
    prepared_sandbox box(sandboxed());
    auto r = shell(box, "echo hello; exit 3");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.std_out, "hello\n");
    // A signal stays a signal: the command is the init's child, so its own
    // signals end it, and the init leaves its exact status.
    r = box.run({"/bin/sh", "-c", "kill -SEGV $$"}).wait();
    EXPECT_EQ(r.signal, SIGSEGV);
    EXPECT_FALSE(r.exit_code.has_value());
    auto stopped = box.run({"/bin/sleep", "100"});
    stopped.signal(SIGTERM);  // to pid 1, which forwards it
    EXPECT_EQ(stopped.wait().signal, SIGTERM);
    auto killed = box.run({"/bin/sleep", "100"});
    killed.kill();
    EXPECT_EQ(killed.wait().signal, SIGKILL);
    // A program outside /tmp: the sandbox's /tmp is its own (a build tree
    // below the host's /tmp is not there).
    r = box.run({"/bin/true"}).wait();
    EXPECT_TRUE(r.success());
    EXPECT_GT(r.wall_time.count(), 0);

    // stderr, stdin from a file, a working directory, the environment.
    ctr_test::temp_dir dir;
    { std::ofstream(dir.path + "/in") << "from a file\n"; }
    r = box.run({"/bin/sh", "-c", "cat; pwd; echo \"$ONLY\" >&2; env | wc -l >&2"},
                {.env = {.inherit = false, .set = {{"ONLY", "this"}}},
                 .cwd = "/proc",
                 .std_in = stdio::file(dir.path + "/in"),
                 .std_out = stdio::capture(),
                 .std_err = stdio::capture()})
            .wait();
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.std_out, "from a file\n/proc\n");
    // ONLY, and what sh itself sets (PWD, and on some shells SHLVL/_).
    EXPECT_EQ(r.std_err.substr(0, r.std_err.find('\n')), "this");
}

TEST(prepared, each_run_is_pid_1_of_a_fresh_pid_namespace_with_its_own_proc) {
    prepared_sandbox box(sandboxed());
    for (int i = 0; i < 3; ++i) {
        // The command is 2, under the run's init; /proc lists the run's
        // own processes only (init, sh, ls): not the server, not an earlier run.
        const auto r = shell(box, "echo $$; ls /proc > /tmp/list; grep -E '^[0-9]+$' /tmp/list | tr '\\n' ' '; "
                                  "cat /proc/1/comm");
        EXPECT_EQ(r.exit_code, 0);
        EXPECT_EQ(r.std_out, "2\n1 2 3 ctr-init\n") << "run " << i;
    }
    // Without an init the command is pid 1 itself.
    auto no_init = sandboxed();
    no_init.init = false;
    prepared_sandbox bare(no_init);
    EXPECT_EQ(shell(bare, "echo $$").std_out, "1\n");
    // The fresh /proc is masked as a plan's proc() is.
    const auto masked = shell(box, "cat /proc/keys | wc -c; touch /proc/sys/kernel/x 2>/dev/null || echo read-only");
    EXPECT_EQ(masked.std_out, "0\nread-only\n");
}

TEST(prepared, nothing_a_run_writes_to_its_tmpfs_reaches_the_next_run) {
    // First, without fresh tmpfs: the second run finds the first run's
    // file, so the check below can see a leak.
    {
        prepared_sandbox shared_tmp(sandboxed(), {.fresh_tmpfs = {}});
        ASSERT_EQ(shell(shared_tmp, "echo secret > /tmp/left; echo ok > /dev/shm/left").exit_code, 0);
        EXPECT_EQ(shell(shared_tmp, "cat /tmp/left /dev/shm/left 2>&1").std_out, "secret\nok\n");
    }
    prepared_sandbox box(sandboxed());
    ASSERT_EQ(shell(box, "echo secret > /tmp/left; echo ok > /dev/shm/left").exit_code, 0);
    const auto next = shell(box, "ls -A /tmp /dev/shm | tr '\\n' ' '; stat -c %a /tmp");
    EXPECT_EQ(next.std_out, "/dev/shm:  /tmp: 1777\n");
}

TEST(prepared, host_names_and_ipc_objects_do_not_reach_the_next_run) {
    prepared_sandbox box(sandboxed());
    const std::string original = shell(box, "hostname").std_out;
    // The first run changes what its namespaces hold (it is root in the
    // sandbox's user namespace, unconfined here): the change is real...
    const auto changed = shell(box, "hostname changed-by-run && hostname");
    ASSERT_EQ(changed.exit_code, 0);
    EXPECT_EQ(changed.std_out, "changed-by-run\n");
    // ...and the next run has its own again.
    EXPECT_EQ(shell(box, "hostname").std_out, original);

    // A System V message queue: the run that made it sees it (so the count
    // would show one left behind), the next run sees none.
    if (std::system("command -v ipcmk >/dev/null && command -v ipcs >/dev/null") != 0)
        GTEST_SKIP() << "ipcmk and ipcs (util-linux) are missing";
    EXPECT_EQ(shell(box, "ipcmk -Q >/dev/null && ipcs -q | grep -c '^0x'").std_out, "1\n");
    EXPECT_EQ(shell(box, "ipcs -q | grep -c '^0x'").std_out, "0\n");
}

TEST(prepared, processes_a_run_leaves_behind_die_with_it) {
    prepared_sandbox box(sandboxed());
    // While the run goes, its background process is there below the
    // sandbox: the check can see one.
    // (`wait`, not a last command that a shell may exec in its own place.)
    auto running = box.run({"/bin/sh", "-c", "sleep 1000 & wait"});
    const pid_t run_pid = pid_of_pidfd(running.pidfd());
    ASSERT_GT(run_pid, 0);
    // Below pid 1 (the init): sh, and its background sleep.
    for (int i = 0; i < 200 && descendants_of(run_pid).size() < 2; ++i) usleep(10000);
    EXPECT_EQ(descendants_of(run_pid).size(), 2U);
    running.kill();
    EXPECT_EQ(running.wait().signal, SIGKILL);

    const auto before = descendants_of(box.pid());
    // A run that leaves a process running and exits.
    ASSERT_EQ(shell(box, "sleep 1000 & echo started").std_out, "started\n");
    // Its pid namespace ended with it: below the sandbox's pid 1 only the
    // server is left, as before.
    std::vector<pid_t> after;
    for (int i = 0; i < 200; ++i) {
        after = descendants_of(box.pid());
        if (after.size() <= before.size()) break;
        usleep(10000);
    }
    EXPECT_EQ(after, before);
    EXPECT_EQ(before.size(), 1U) << "the server alone";
}

TEST(prepared, runs_are_confined_as_the_sandbox_asks) {
    auto opts = sandboxed();
    opts.security = ctr::security::confined();
    prepared_sandbox box(opts);
    const auto r = shell(box, "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t ' ' '");
    EXPECT_EQ(r.exit_code, 0);
    // confined() keeps Docker's default capabilities, not all of them.
    EXPECT_NE(r.std_out.find("NoNewPrivs: 1"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("Seccomp: 2"), std::string::npos) << r.std_out;
    EXPECT_EQ(r.std_out.find("CapEff: 000001ffffffffff"), std::string::npos) << r.std_out;
    // A run cannot undo it: the hostname change of the test above fails.
    EXPECT_NE(shell(box, "hostname nope 2>/dev/null").exit_code, 0);

    // Credentials too: uid and gid from the options. Rootless, the user
    // namespace maps only the caller (as root), and the error says so.
    auto as_user = sandboxed();
    as_user.uid = 1;
    as_user.gid = 1;
    prepared_sandbox user_box(as_user);
    if (ctr_test::real_root) {
        EXPECT_EQ(shell(user_box, "id -u; id -g").std_out, "1\n1\n");
    } else {
        try {
            (void)user_box.run({"/bin/true"});
            FAIL() << "ran as an unmapped id";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::set_gid) << e.what();
            EXPECT_NE(std::string(e.what()).find("map"), std::string::npos) << e.what();
        }
    }
}

// security::landlock: the ruleset is made once; each run's command adds
// the path rules as its own mounts show them (its fresh /tmp) and confines
// itself; the ruleset's fd does not reach the command.
TEST(prepared, runs_are_confined_by_the_sandboxs_landlock_ruleset) {
    if (ctr::landlock::abi() < 1) GTEST_SKIP() << "this kernel has no Landlock (see ctr::probe())";
    const std::string script =
        "if cat /etc/hostname > /tmp/copy; then echo read; else echo denied; fi; "
        "cat /tmp/copy > /tmp/again && echo tmp-ok; ls -l /proc/$$/fd/ | grep -c landlock || true";
    // Without a ruleset /etc reads: the check can see a denial.
    const prepared_sandbox open_box(sandboxed());
    EXPECT_EQ(shell(open_box, script, {.std_err = stdio::null()}).std_out, "read\ntmp-ok\n0\n");

    ctr::landlock::ruleset rules;
    for (const char* path : {"/usr", "/bin", "/lib", "/lib64"})
        if (std::filesystem::exists(path)) rules.execute(path);
    rules.read("/proc").write("/tmp");
    auto opts = sandboxed();
    opts.security.landlock = rules;
    const prepared_sandbox box(opts);
    for (int run = 0; run < 2; ++run) {
        const auto r = shell(box, script, {.std_err = stdio::null()});
        EXPECT_EQ(r.exit_code, 0) << "run " << run;
        EXPECT_EQ(r.std_out, "denied\ntmp-ok\n0\n") << "run " << run;
    }
}

TEST(prepared, the_server_keeps_nothing_of_the_callers_fds) {
    if (!ctr_test::real_root) GTEST_SKIP() << "another user namespace's /proc/<pid>/fd is readable by root only";
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    const ctr::unique_fd a(fds[0]), b(fds[1]);
    const std::string pipe_name = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fds[0])).string();
    prepared_sandbox box(sandboxed());
    const auto below = descendants_of(box.pid());
    ASSERT_EQ(below.size(), 1U);
    const auto held = fd_targets(below.front());
    // The check sees the caller's pipe where it is open: here.
    EXPECT_TRUE(fd_targets(getpid()).count(pipe_name));
    EXPECT_FALSE(held.count(pipe_name));
    // stdio (/dev/null), the request socket, its report pipe, a signalfd.
    EXPECT_LE(held.size(), 7U);
}

TEST(prepared, failures_name_the_step_and_the_path) {
    prepared_sandbox box(sandboxed());
    try {
        (void)box.run({"/no/such/program"});
        FAIL() << "ran a missing program";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::exec);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("/no/such/program"), std::string::npos) << e.what();
    }
    try {
        (void)box.run({"/bin/true"}, {.cwd = "/no/such/dir"});
        FAIL() << "ran in a missing directory";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::change_directory);
        EXPECT_NE(std::string(e.what()).find("/no/such/dir"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)box.run({}), ctr::error);
    EXPECT_THROW((void)box.run({"/bin/true"}, {.std_in = stdio::capture()}), ctr::error);
    // The sandbox still works after failed runs.
    EXPECT_TRUE(box.run({"/bin/true"}).wait().success());

    // Per-run settings are refused on the sandbox, naming the field.
    for (auto opts : {ctr::process::options{.std_out = stdio::capture()}, ctr::process::options{.timeout = std::chrono::seconds(1)},
                      ctr::process::options{.fds = {{0, 5}}}, ctr::process::options{.start_gate = 0}}) {
        try {
            prepared_sandbox refused(opts);
            FAIL() << "a per-run setting was taken";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::prepare) << e.what();
        }
    }
}

TEST(prepared, a_timeout_ends_the_run) {
    prepared_sandbox box(sandboxed());
    const auto r = box.run({"/bin/sleep", "100"}, {.timeout = std::chrono::milliseconds(100),
                                                   .kill_grace = std::chrono::milliseconds(100)})
                       .wait();
    EXPECT_TRUE(r.timed_out);
    // The init forwards SIGTERM: sleep ends by it.
    EXPECT_EQ(r.signal, SIGTERM);
    EXPECT_LT(r.wall_time, std::chrono::seconds(50));
}

TEST(prepared, runs_from_several_threads_at_once_each_get_their_own_result) {
    prepared_sandbox box(sandboxed());
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) {
                const std::string word = std::to_string(t) + "-" + std::to_string(i);
                const auto r = shell(box, "echo " + word + "; exit " + std::to_string(i % 7));
                if (r.std_out != word + "\n" || r.exit_code != i % 7) ++wrong;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(wrong.load(), 0);
}

TEST(prepared, the_sandbox_ends_with_its_object_and_a_dropped_run_is_killed) {
    pid_t pid1 = -1;
    int pidfd = -1;
    {
        prepared_sandbox box(sandboxed());
        pid1 = box.pid();
        pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid1, 0));
        ASSERT_GE(pidfd, 0);
        {
            auto dropped = box.run({"/bin/sleep", "1000"});
            ASSERT_GT(pid_of_pidfd(dropped.pidfd()), 0);
        }
        EXPECT_TRUE(shell(box, "true").success());
    }
    const ctr::unique_fd owned(pidfd);
    // Reaped by the destructor: the pidfd says it has ended.
    pollfd ended{pidfd, POLLIN, 0};
    EXPECT_EQ(poll(&ended, 1, 5000), 1);
}

TEST(prepared, runs_start_in_the_sandboxs_cgroup) {
    if (const auto& why = ctr_test::cgroup_blocker()) GTEST_SKIP() << "cgroups: " << why->what();
    ctr::cgroup::group group(ctr::cgroup::options{.limits = {.pids_max = 32}});
    auto opts = sandboxed();
    opts.cgroup = &group;
    {
        prepared_sandbox box(opts);
        auto run = box.run({"/bin/sleep", "1000"});
        const pid_t pid = pid_of_pidfd(run.pidfd());
        const auto members = group.pids();
        EXPECT_NE(std::find(members.begin(), members.end(), pid), members.end()) << "the run is not in the group";
        run.kill();
        (void)run.wait();
        // The limit holds for runs: pids_max 32 counts pid 1, the server
        // and everything the run starts. 40 background processes: the
        // same command runs where there is no limit (so a limit that did
        // not hold would be seen), and fails here.
        const std::string many = "for i in $(seq 40); do sleep 5 & done; echo all-started";
        prepared_sandbox unlimited(sandboxed());
        EXPECT_EQ(shell(unlimited, many).std_out, "all-started\n");
        const auto limited = shell(box, many, {.std_err = stdio::null()});
        EXPECT_NE(limited.exit_code, 0);
        EXPECT_EQ(limited.std_out, "");
    }
    group.remove();
}

TEST(prepared, the_sandbox_and_its_runs_end_when_the_owner_is_killed) {
    int report[2];
    ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
    const pid_t owner = fork();
    ASSERT_GE(owner, 0);
    if (owner == 0) {
        // The owner: a sandbox, a run that would go on for ever, its pid
        // to the test, then it waits to be killed.
        try {
            prepared_sandbox box(sandboxed());
            auto run = box.run({"/bin/sleep", "1000"});
            const pid_t pid = pid_of_pidfd(run.pidfd());
            if (write(report[1], &pid, sizeof pid) != sizeof pid) _exit(1);
            pause();
        } catch (...) {
        }
        _exit(1);
    }
    close(report[1]);
    pid_t run_pid = -1;
    ASSERT_EQ(read(report[0], &run_pid, sizeof run_pid), static_cast<long>(sizeof run_pid));
    close(report[0]);
    const int run = static_cast<int>(syscall(SYS_pidfd_open, run_pid, 0));
    ASSERT_GE(run, 0);
    const ctr::unique_fd owned(run);
    // The run goes on while its owner lives: the check can see it alive.
    pollfd alive{run, POLLIN, 0};
    EXPECT_EQ(poll(&alive, 1, 100), 0);
    ASSERT_EQ(kill(owner, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(owner, &status, 0), owner);
    pollfd ended{run, POLLIN, 0};
    EXPECT_EQ(poll(&ended, 1, 10000), 1) << "the run outlived its owner";
}

TEST(prepared, a_run_out_of_memory_is_killed_and_the_sandbox_goes_on) {
    if (const auto& why = ctr_test::cgroup_blocker()) GTEST_SKIP() << "cgroups: " << why->what();
    std::optional<ctr::cgroup::group> group;
    try {
        // The OOM killer weighs a run's resident set plus its oom_score_adj
        // of 1000 (as much again as the limit) against the server's resident
        // set, which is the caller's (a copy of its memory): the limit must
        // be over half of that for the run to be the heavier (a sanitizer
        // build's test process is far larger than 32 MiB; docs/prepared.md).
        group.emplace(ctr::cgroup::options{.limits = {.memory_max = "256M", .swap_max = "0"}});
    } catch (const ctr::error& e) {
        GTEST_SKIP() << "no memory limit without swap here: " << e.what();
    }
    auto opts = sandboxed();
    opts.cgroup = &*group;
    {
        prepared_sandbox box(opts);
        const auto oom_before = group->read_stats().oom_kills.value_or(0);
        // tail keeps every byte of a line that never ends: past the limit.
        const auto hog = box.run({"tail", "/dev/zero"}, {.std_err = stdio::null()}).wait();
        EXPECT_EQ(hog.signal, SIGKILL);
        EXPECT_GT(group->read_stats().oom_kills.value_or(0), oom_before) << "the group's OOM killer did not act";
        // The OOM killer took a run, not the server: the next run works.
        EXPECT_EQ(shell(box, "echo still-here").std_out, "still-here\n");
    }
    group->remove();
}

TEST(prepared, the_roots_mounts_below_a_fresh_tmpfs_are_carried_over_it) {
    ctr_test::temp_dir dir;
    { std::ofstream(dir.path + "/file") << "kept\n"; }
    // Writable for the sandbox's root, whichever host id it maps to.
    std::filesystem::permissions(dir.path, std::filesystem::perms::all);
    // A bind below /tmp, which each run gets fresh.
    auto opts = sandboxed();
    opts.root = ctr::mount::host_readonly().bind(dir.path, "/tmp/work/data");
    prepared_sandbox box(opts);
    ASSERT_EQ(shell(box, "cat /tmp/work/data/file; echo new > /tmp/work/data/made; echo own > /tmp/own").std_out, "kept\n");
    // The next run: the bind is there (and what was written through it, on
    // the host), what the run wrote to its own /tmp is not.
    EXPECT_EQ(shell(box, "cat /tmp/work/data/made; ls /tmp/own 2>&1 >/dev/null | wc -l").std_out, "new\n1\n");
    EXPECT_TRUE(std::filesystem::exists(dir.path + "/made"));
}

TEST(prepared, runs_on_a_root_filesystem_of_its_own) {
    // A busybox root made for this test, read-only and without /tmp: the
    // sandbox makes the mount point of each fresh tmpfs by the plan's rule
    // (here a skeleton, so that the rootfs directory never changes).
    ctr_test::temp_dir dir;
    std::filesystem::permissions(dir.path, std::filesystem::perms::all);
    const std::string rootfs = dir.path + "/rootfs";
    if (std::system(("'" + ctr_test::make_rootfs + "' '" + rootfs + "' >/dev/null 2>&1").c_str()) != 0)
        GTEST_SKIP() << "no busybox rootfs (" << ctr_test::make_rootfs << " failed: install busybox-static)";
    std::filesystem::remove_all(rootfs + "/tmp");
    auto opts = sandboxed();
    opts.root = ctr::mount::plan{.rootfs = rootfs,
                                 .read_only_root = true,
                                 .missing_points = ctr::mount::missing_mount_points::make_in_skeleton}
                    .proc()
                    .dev();
    opts.security = ctr::security::confined();
    prepared_sandbox box(opts);
    for (int i = 0; i < 2; ++i) {
        const auto r = shell(box, "ls /tmp | wc -l; echo x > /tmp/f && echo wrote; touch /bin/x 2>/dev/null || echo ro");
        EXPECT_EQ(r.std_out, "0\nwrote\nro\n") << "run " << i;
    }
    EXPECT_FALSE(std::filesystem::exists(rootfs + "/tmp")) << "the rootfs directory changed";
}
