// process::spawn against the real kernel: exit status, streams, fds,
// environment, limits, timeouts and the exact errors of failed launches.
#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;
using ctr_test::temp_dir;

namespace {

ctr::process::options capture_out() { return {.std_out = stdio::capture()}; }

std::string run_output(std::vector<std::string> args, ctr::process::options opts = capture_out()) {
    auto r = spawn(std::move(args), opts).wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
    return r.std_out;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Whether the process behind `pidfd` ends within `limit`.
bool exits_within(int pidfd, std::chrono::milliseconds limit) {
    pollfd p{pidfd, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

}  // namespace

TEST(process, reports_exit_codes) {
    for (int code : {0, 1, 3, 42, 255}) {
        auto r = spawn(helper({"exit", std::to_string(code)})).wait();
        ASSERT_TRUE(r.exit_code.has_value());
        EXPECT_EQ(*r.exit_code, code);
        EXPECT_FALSE(r.signal.has_value());
        EXPECT_FALSE(r.timed_out);
        EXPECT_EQ(r.success(), code == 0);
    }
}

TEST(process, reports_the_terminating_signal) {
    for (int sig : {SIGTERM, SIGKILL, SIGSEGV, SIGUSR1}) {
        auto r = spawn(helper({"raise", std::to_string(sig)}), {.rlimits = {{RLIMIT_CORE, 0, 0}}}).wait();
        EXPECT_FALSE(r.exit_code.has_value());
        ASSERT_TRUE(r.signal.has_value());
        EXPECT_EQ(*r.signal, sig);
        EXPECT_FALSE(r.success());
    }
}

TEST(process, signal_reaches_the_child) {
    auto child = spawn(helper({"sleep", "100"}));
    child.signal(SIGUSR1);
    auto r = child.wait();
    EXPECT_EQ(r.signal, SIGUSR1);
}

TEST(process, wait_for_returns_nothing_while_running) {
    auto child = spawn(helper({"sleep", "100"}));
    EXPECT_FALSE(child.wait_for(50ms).has_value());
    child.kill();
    auto r = child.wait_for(10s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->signal, SIGKILL);
    // Waiting again gives the same answer.
    EXPECT_EQ(child.wait().signal, SIGKILL);
}

TEST(process, captures_ten_megabytes_on_both_streams) {
    constexpr std::size_t size = 10 * 1024 * 1024;
    auto r = spawn(helper({"spew", std::to_string(size)}),
                   {.std_out = stdio::capture(), .std_err = stdio::capture()})
                 .wait();
    ASSERT_EQ(r.exit_code, 0);
    ASSERT_EQ(r.std_out.size(), size);
    ASSERT_EQ(r.std_err.size(), size);
    for (std::size_t i = 0; i < size; i += 4099) {
        ASSERT_EQ(r.std_out[i], static_cast<char>('a' + (i % 65536) % 26)) << "at " << i;
        ASSERT_EQ(r.std_err[i], static_cast<char>('a' + (i % 65536) % 26)) << "at " << i;
    }
}

TEST(process, pipes_connect_the_caller_to_stdin_and_stdout) {
    auto child = spawn(helper({"cat"}), {.std_in = stdio::pipe(), .std_out = stdio::pipe()});
    ASSERT_TRUE(child.std_in());
    ASSERT_TRUE(child.std_out());
    const std::string text = "through the pipe\n";
    ASSERT_EQ(write(child.std_in().get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
    child.std_in().reset();  // end of input
    std::string got;
    char buffer[256];
    for (ssize_t n; (n = read(child.std_out().get(), buffer, sizeof buffer)) > 0;) got.append(buffer, n);
    EXPECT_EQ(got, text);
    EXPECT_EQ(child.wait().exit_code, 0);
}

TEST(process, stdin_from_null_reads_nothing) {
    EXPECT_EQ(run_output(helper({"cat"}), {.std_in = stdio::null(), .std_out = stdio::capture()}), "");
}

TEST(process, streams_go_to_and_come_from_files) {
    temp_dir dir;
    const std::string in = dir.path + "/in", out = dir.path + "/out";
    std::ofstream(in) << "file contents";
    auto r = spawn(helper({"cat"}), {.std_in = stdio::file(in), .std_out = stdio::file(out)}).wait();
    ASSERT_EQ(r.exit_code, 0);
    std::stringstream got;
    got << std::ifstream(out).rdbuf();
    EXPECT_EQ(got.str(), "file contents");
}

TEST(process, stdout_to_a_given_fd) {
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    auto r = spawn(helper({"write-fd", "1", "via fd"}), {.std_out = stdio::from_fd(fds[1])}).wait();
    close(fds[1]);
    char buffer[64] = {};
    ASSERT_GT(read(fds[0], buffer, sizeof buffer), 0);
    close(fds[0]);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_STREQ(buffer, "via fd");
}

TEST(process, environment_is_inherited_set_and_unset) {
    setenv("CTR_TEST_INHERITED", "yes", 1);
    setenv("CTR_TEST_REMOVED", "no", 1);
    const std::string out = run_output(
        helper({"env"}), {.env = {.set = {{"CTR_TEST_SET", "1"}, {"CTR_TEST_INHERITED", "replaced"}},
                                  .unset = {"CTR_TEST_REMOVED"}},
                          .std_out = stdio::capture()});
    EXPECT_NE(out.find("CTR_TEST_SET=1\n"), std::string::npos);
    EXPECT_NE(out.find("CTR_TEST_INHERITED=replaced\n"), std::string::npos);
    EXPECT_EQ(out.find("CTR_TEST_INHERITED=yes"), std::string::npos);
    EXPECT_EQ(out.find("CTR_TEST_REMOVED"), std::string::npos);
    unsetenv("CTR_TEST_INHERITED");
    unsetenv("CTR_TEST_REMOVED");
}

TEST(process, cleared_environment_holds_only_what_was_set) {
    const std::string out = run_output(
        helper({"env"}), {.env = {.inherit = false, .set = {{"ONLY", "this"}}}, .std_out = stdio::capture()});
    EXPECT_EQ(out, "ONLY=this\n");
}

TEST(process, program_is_found_on_the_childs_path) {
    temp_dir dir;
    ASSERT_EQ(symlink(ctr_test::probe_helper.c_str(), (dir.path + "/ctr-probe-on-path").c_str()), 0);
    const std::string out = run_output({"ctr-probe-on-path", "exit", "0"},
                                       {.env = {.set = {{"PATH", "/nonexistent:" + dir.path}}}});
    EXPECT_EQ(out, "");
}

TEST(process, runs_in_the_given_directory) {
    EXPECT_EQ(trim(run_output(helper({"cwd"}), {.cwd = "/usr/share", .std_out = stdio::capture()})), "/usr/share");
}

TEST(process, child_sees_only_stdio_and_passed_fds) {
    // Fds the parent leaves inheritable must still not reach the child.
    int leaky[2];
    ASSERT_EQ(pipe(leaky), 0);
    int passed[2];
    ASSERT_EQ(pipe2(passed, O_CLOEXEC), 0);
    const std::string out = run_output(
        helper({"fds"}), {.std_out = stdio::capture(), .fds = {{passed[1], 5}, {passed[0], 9}}});
    close(leaky[0]);
    close(leaky[1]);
    close(passed[0]);
    close(passed[1]);
    EXPECT_EQ(trim(out), "0 1 2 5 9");
}

TEST(process, passed_fd_carries_data_and_swapped_numbers_work) {
    int a[2], b[2];
    ASSERT_EQ(pipe2(a, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(b, O_CLOEXEC), 0);
    // Each write end goes to the other's number: a naive dup2 order would
    // overwrite one source before it is used.
    auto r = spawn(helper({"write-fd", std::to_string(a[1]), "to-a"}),
                   {.fds = {{a[1], b[1]}, {b[1], a[1]}}})
                 .wait();
    ASSERT_EQ(r.exit_code, 0);
    close(a[1]);
    close(b[1]);
    char buffer[16] = {};
    // The child wrote to its fd numbered a[1], which is our b pipe.
    ASSERT_EQ(read(b[0], buffer, sizeof buffer), 4);
    EXPECT_STREQ(buffer, "to-a");
    close(a[0]);
    close(b[0]);
}

TEST(process, timeout_terminates_a_long_sleep) {
    auto r = spawn(helper({"sleep", "100"}), {.timeout = 200ms, .kill_grace = 2s}).wait();
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.signal, SIGTERM);
    EXPECT_FALSE(r.success());
    // Killed after the timeout, long before the program would have ended.
    EXPECT_GE(r.wall_time, 200ms);
    EXPECT_LT(r.wall_time, 30s);
}

TEST(process, timeout_kills_after_the_grace_when_term_is_ignored) {
    auto child = spawn(helper({"ignore-term"}), {.std_out = stdio::pipe(), .timeout = 300ms, .kill_grace = 200ms});
    char ready[8];
    ASSERT_GT(read(child.std_out().get(), ready, sizeof ready), 0);  // SIGTERM is ignored from here on
    auto r = child.wait();
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.signal, SIGKILL);
    EXPECT_GE(r.wall_time, 500ms);
    EXPECT_LT(r.wall_time, 30s);
}

TEST(process, child_dies_with_its_parent) {
    auto parent = spawn(helper({"die-with-parent-parent"}), {.std_out = stdio::pipe()});
    char buffer[32] = {};
    ASSERT_GT(read(parent.std_out().get(), buffer, sizeof buffer - 1), 0);
    const pid_t grandchild = std::atoi(buffer);
    ASSERT_GT(grandchild, 0);
    const int grandchild_fd = static_cast<int>(syscall(SYS_pidfd_open, grandchild, 0));
    ASSERT_GE(grandchild_fd, 0);
    EXPECT_FALSE(exits_within(grandchild_fd, 0ms));  // alive while its parent is
    ::kill(parent.pid(), SIGKILL);
    EXPECT_EQ(parent.wait().signal, SIGKILL);
    EXPECT_TRUE(exits_within(grandchild_fd, 10s));
    close(grandchild_fd);
}

TEST(process, missing_program_names_the_program) {
    try {
        (void)spawn({"/nonexistent/program", "arg"});
        FAIL() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::exec);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.path(), "/nonexistent/program");
        EXPECT_EQ(std::string(e.what()), "exec '/nonexistent/program': No such file or directory");
    }
    try {
        // A PATH of readable directories: with one the caller cannot search,
        // the answer would be EACCES, as execvp gives.
        (void)spawn({"ctr-no-such-program-anywhere"}, {.env = {.set = {{"PATH", "/usr/bin:/bin"}}}});
        FAIL() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::exec);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.path(), "ctr-no-such-program-anywhere");
    }
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(process, non_executable_file_is_permission_denied) {
    temp_dir dir;
    const std::string file = dir.path + "/not-executable";
    std::ofstream(file) << "#!/bin/sh\n";
    chmod(file.c_str(), 0644);
    for (const std::string& path : {file, dir.path}) {
        try {
            (void)spawn({path});
            FAIL() << "spawn succeeded for " << path;
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::exec);
            EXPECT_EQ(e.code().value(), EACCES);
            EXPECT_EQ(e.path(), path);
        }
    }
}

TEST(process, bad_working_directory_names_the_directory) {
    try {
        (void)spawn(helper({"exit", "0"}), {.cwd = "/nonexistent-dir"});
        FAIL();
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::change_directory);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.path(), "/nonexistent-dir");
    }
}

TEST(process, bad_input_is_a_clear_error) {
    const auto fds_before = ctr_test::open_fds();
    const auto expect_error = [](auto&& launch, ctr::step step, int code) {
        try {
            launch();
            ADD_FAILURE() << "no error";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), step) << e.what();
            EXPECT_EQ(e.code().value(), code) << e.what();
        }
    };
    expect_error([] { (void)spawn({}); }, ctr::step::prepare, EINVAL);
    expect_error([] { (void)spawn({""}); }, ctr::step::prepare, ENOENT);
    expect_error([] { (void)spawn(helper({"exit", "0"}), {.env = {.set = {{"A=B", "c"}}}}); }, ctr::step::prepare, EINVAL);
    expect_error([] { (void)spawn(helper({"exit", "0"}), {.std_out = stdio::from_fd(987)}); }, ctr::step::map_fds, EBADF);
    expect_error([] { (void)spawn(helper({"exit", "0"}), {.fds = {{988, 4}}}); }, ctr::step::map_fds, EBADF);
    expect_error([] { (void)spawn(helper({"exit", "0"}), {.fds = {{0, 4}, {1, 4}}}); }, ctr::step::map_fds, EINVAL);
    expect_error([] { (void)spawn(helper({"exit", "0"}), {.std_out = stdio::file("/nonexistent-dir/out")}); },
                 ctr::step::open_stdio, ENOENT);
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(process, rlimits_umask_and_session_apply) {
    EXPECT_EQ(trim(run_output(helper({"rlimit", std::to_string(RLIMIT_NOFILE)}),
                              {.std_out = stdio::capture(), .rlimits = {{RLIMIT_NOFILE, 64, 128}}})),
              "64 128");
    EXPECT_EQ(trim(run_output(helper({"umask"}), {.std_out = stdio::capture(), .umask = 027})), "027");
    const std::string sid = run_output(helper({"sid"}), {.std_out = stdio::capture(), .new_session = true});
    int pid = 0, session = 0, group = 0;
    ASSERT_EQ(std::sscanf(sid.c_str(), "pid=%d sid=%d pgid=%d", &pid, &session, &group), 3);
    EXPECT_EQ(session, pid);
    EXPECT_EQ(group, pid);
}

TEST(process, pty_slave_becomes_the_controlling_terminal) {
    const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(master, 0);
    ASSERT_EQ(grantpt(master), 0);
    ASSERT_EQ(unlockpt(master), 0);
    const int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(slave, 0);
    for (const ctr::ns::kinds kinds : {ctr::ns::none, ctr::ns::kinds(ctr::ns::pid)}) {
        const std::string out = run_output(helper({"ctty"}), {.std_in = stdio::from_fd(slave),
                                                              .std_out = stdio::capture(),
                                                              .new_session = true,
                                                              .controlling_terminal = true,
                                                              .namespaces = kinds});
        EXPECT_EQ(trim(out), "ctty=yes foreground=yes");
    }
    // Without it, no terminal: a new session has none.
    EXPECT_EQ(trim(run_output(helper({"ctty"}), {.std_in = stdio::from_fd(slave), .std_out = stdio::capture(),
                                                 .new_session = true})),
              "ctty=no foreground=no");
    close(slave);
    close(master);
    EXPECT_THROW((void)spawn(helper({"exit", "0"}), {.controlling_terminal = true}), ctr::error);
}

TEST(process, switches_user_and_groups) {
    if (!ctr_test::real_root) GTEST_SKIP() << "needs real root to switch to another uid";
    EXPECT_EQ(trim(run_output(helper({"ids"}),
                              {.std_out = stdio::capture(), .groups = std::vector<gid_t>{4, 24}, .gid = 65534,
                               .uid = 65534})),
              "uid=65534 gid=65534 groups=4,24");
}

TEST(process, child_starts_with_default_signal_dispositions_and_no_blocked_signals) {
    // What the helper reports with nothing changed in the parent (under a
    // sanitizer its runtime catches some signals itself).
    const std::string baseline = trim(run_output(helper({"signals"})));
    struct sigaction handler {};
    handler.sa_handler = [](int) {};
    struct sigaction old_usr1 {};
    sigaction(SIGUSR1, &handler, &old_usr1);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    const std::string out = trim(run_output(helper({"signals"})));
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    sigaction(SIGUSR1, &old_usr1, nullptr);
    signal(SIGPIPE, SIG_DFL);
    EXPECT_EQ(out, baseline);
    EXPECT_NE(out.find("blocked=0000000000000000 ignored=0000000000000000"), std::string::npos) << out;
}

TEST(process, result_carries_cpu_time_and_peak_memory) {
    auto r = spawn(helper({"alloc", "64"})).wait();
    ASSERT_EQ(r.exit_code, 0);
    EXPECT_GE(r.rusage_max_rss_bytes, 64u << 20);
    // 200 ms of CPU time, however busy the machine is.
    auto burn = spawn(helper({"burn-cpu", "200"})).wait();
    ASSERT_EQ(burn.exit_code, 0);
    EXPECT_GE(burn.user_time + burn.system_time, 190ms);
    EXPECT_GE(burn.wall_time, burn.user_time);
}

TEST(process, destructor_kills_and_reaps) {
    int watch = -1;
    {
        auto child = spawn(helper({"sleep", "100"}));
        watch = static_cast<int>(syscall(SYS_pidfd_open, child.pid(), 0));
        ASSERT_GE(watch, 0);
    }
    EXPECT_TRUE(exits_within(watch, 0ms));
    close(watch);
    EXPECT_FALSE(ctr_test::has_children());
}

TEST(process, released_child_is_the_callers_to_reap) {
    auto child = spawn(helper({"exit", "7"}));
    ctr::unique_fd pidfd = child.release();
    ASSERT_TRUE(pidfd);
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PIDFD, pidfd.get(), &info, WEXITED), 0);
    EXPECT_EQ(info.si_status, 7);
}

TEST(process, copy_memory_clone_style_gives_the_same_result) {
    auto r = spawn(helper({"exit", "5"}), {.clone = ctr::process::clone_style::copy_memory}).wait();
    EXPECT_EQ(r.exit_code, 5);
    EXPECT_THROW((void)spawn({"/nonexistent"}, {.clone = ctr::process::clone_style::copy_memory}), ctr::error);
}

TEST(process, thousand_spawns_from_eight_threads_leak_nothing) {
    const auto fds_before = ctr_test::open_fds();
    std::atomic<int> succeeded{0}, failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 125; ++i) {
                try {
                    auto r = spawn({ctr_test::noop_static}, {.std_out = stdio::capture()}).wait();
                    (r.exit_code == 0 ? succeeded : failed)++;
                } catch (const std::exception&) {
                    failed++;
                }
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(succeeded.load(), 1000);
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

namespace {

// Runs `body` in a forked copy of this process, so that a test may change
// what is process-wide (SIGCHLD's disposition) without touching the suite.
// Returns what the copy wrote on its stdout.
template <typename Body>
std::string in_forked_copy(Body body) {
    int fds[2];
    if (pipe(fds) != 0) return "pipe failed";
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        const std::string out = body();
        if (write(fds[1], out.data(), out.size()) < 0) _exit(2);
        _exit(0);
    }
    close(fds[1]);
    std::string out;
    char buffer[256];
    for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return out;
}

}  // namespace

TEST(process, waiting_on_an_empty_handle_says_so_at_once) {
    ctr::process::child empty;
    try {
        (void)empty.wait();
        FAIL() << "wait() on a default-constructed child returned";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::wait);
        EXPECT_NE(std::string(e.what()).find("holds no process"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)empty.wait_for(10ms), ctr::error);
}

TEST(process, a_moved_from_handle_is_empty_in_every_accessor) {
    auto original = spawn({"/bin/true"}, {.std_out = stdio::capture()});
    const pid_t pid = original.pid();
    ctr::process::child moved = std::move(original);
    EXPECT_EQ(original.pid(), -1);
    EXPECT_EQ(original.pidfd(), -1);
    EXPECT_FALSE(original.valid());
    EXPECT_EQ(original.network(), nullptr);
    EXPECT_THROW((void)original.wait(), ctr::error);
    EXPECT_EQ(moved.pid(), pid);
    EXPECT_EQ(moved.wait().exit_code, 0);
    // A finished handle moved from: the result went with it.
    ctr::process::child again = std::move(moved);
    EXPECT_FALSE(moved.valid());
    EXPECT_EQ(again.wait().exit_code, 0);
}

TEST(process, an_ignored_sigchld_is_named_when_wait_finds_no_child) {
    // Proof that the condition is real: with SIGCHLD ignored, the kernel
    // reaps the child itself, and waitid finds nothing (ECHILD).
    const std::string out = in_forked_copy([] {
        signal(SIGCHLD, SIG_IGN);
        try {
            auto c = spawn({"/bin/true"});
            (void)c.wait();
            return std::string("no error");
        } catch (const ctr::error& e) {
            return std::to_string(e.code().value()) + " " + e.what();
        }
    });
    EXPECT_EQ(out.substr(0, out.find(' ')), std::to_string(ECHILD)) << out;
    EXPECT_NE(out.find("SIGCHLD is ignored"), std::string::npos) << out;
    EXPECT_NE(out.find("SIG_DFL"), std::string::npos) << out;
}
