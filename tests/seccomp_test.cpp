// ctr::seccomp on the real kernel: each test forks a child, sets
// no_new_privs, installs a filter through the launch's own step
// (child_install_seccomp via child_run_op), makes system calls with raw
// syscall(2) and reports what it saw through a pipe; the parent compares
// that with what the rules say. Refused calls are only ever attempted in
// those filtered children. No privilege is needed: any user may set
// no_new_privs, so the suite runs the same rootless.
#include "seccomp_child.hpp"
#include "support.hpp"

#include <ctr/seccomp.hpp>

#include <gtest/gtest.h>

#include <asm/unistd.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace sc = ctr::seccomp;
using ctr_test::child_result;
using ctr_test::install_failed;
using ctr_test::no_new_privs_failed;
using ctr_test::reporter;
using ctr_test::run_child;
namespace table = ctr::detail::syscall_table_x86_64;

// A raw system call as the kernel answers it: the result, or -errno.
long call(long number, std::uint64_t a0 = 0, std::uint64_t a1 = 0, std::uint64_t a2 = 0, std::uint64_t a3 = 0,
          std::uint64_t a4 = 0, std::uint64_t a5 = 0) {
    const long r = syscall(number, a0, a1, a2, a3, a4, a5);
    return r < 0 ? -errno : r;
}

// The i386 getpid (number 20) through int 0x80, from 64-bit code.
long int80_getpid() {
    long result = 20;
    __asm__ volatile("int $0x80" : "+a"(result) : : "memory", "cc", "r8", "r9", "r10", "r11");
    return result;
}

// What a child's own runtime may call once the filter is in: the report
// (write), the end (exit_group), and what allocators, threads and sanitizer
// runtimes use. Restrictive test filters let these through.
const std::vector<std::string_view> runtime_calls = {
    "write", "exit", "exit_group", "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "sigaltstack",
    "rt_sigaction", "rt_sigprocmask", "futex", "getpid", "gettid", "sched_yield", "prctl", "arch_prctl"};

sc::builder& allow_runtime(sc::builder& b) {
    for (std::string_view name : runtime_calls) b.allow(name);
    return b;
}

child_result run_filtered(const sc::filter& f, const std::function<void(const reporter&)>& body) {
    return run_child(&f, body);
}
child_result run_unfiltered(const std::function<void(const reporter&)>& body) { return run_child(nullptr, body); }

// What a condition means, written out independently of the emitter.
bool holds(const sc::condition& c, std::uint64_t v) {
    switch (c.op) {
        case sc::compare::equal: return v == c.value;
        case sc::compare::not_equal: return v != c.value;
        case sc::compare::masked_equal: return (v & c.mask) == c.value;
        case sc::compare::masked_not_equal: return (v & c.mask) != c.value;
        case sc::compare::greater: return v > c.value;
        case sc::compare::greater_equal: return v >= c.value;
        case sc::compare::less: return v < c.value;
        case sc::compare::less_equal: return v <= c.value;
        case sc::compare::in_range: return v >= c.value && v <= c.upper;
    }
    return false;
}

// The values a comparison of v is most likely to get wrong: v itself, its
// neighbours, and the same low word under another high word (and back).
std::vector<std::uint64_t> probes_around(std::uint64_t v) {
    constexpr std::uint64_t high_ones = 0xffffffff00000000ULL;
    const std::uint64_t bases[] = {v, v ^ (std::uint64_t{1} << 32), v ^ high_ones, v & ~high_ones, v | high_ones};
    std::vector<std::uint64_t> out;
    for (std::uint64_t base : bases) {
        out.push_back(base);
        out.push_back(base + 1);
        out.push_back(base - 1);
    }
    for (std::uint64_t fixed : {0ULL, 1ULL, 0xffffffffULL, 0x100000000ULL, ~0ULL}) out.push_back(fixed);
    return out;
}

// Numbers the kernel lets through every filter (seccomp_uprobe_exception,
// Linux 6.11 and 6.16 on): uretprobe and uprobe, which only work from the
// kernel's own probe trampolines and end in SIGILL or an error elsewhere.
// A filter cannot answer them, so the tests do not call them.
const std::set<long> exempt_from_seccomp = {335, 336};

constexpr int marker_errno = 77;

// Every probe value through getppid (which ignores its arguments) under
// `rule_conditions` (ANDed) with marker_errno as the rule's action; returns
// the failures, described.
std::string check_conditions(const std::vector<sc::condition>& conditions, unsigned argument,
                             const std::vector<std::uint64_t>& values) {
    const sc::filter f = sc::builder{}
                             .default_action(sc::action::allow())
                             .rule("getppid", sc::action::fail_with(marker_errno), conditions)
                             .build();
    const child_result r = run_filtered(f, [&](const reporter& out) {
        for (std::uint64_t v : values) {
            std::uint64_t args[6] = {};
            args[argument] = v;
            out.number(call(SYS_getppid, args[0], args[1], args[2], args[3], args[4], args[5]));
        }
    });
    if (!r.exited_with(0) || r.lines.size() != values.size()) return "child: " + r.describe();
    std::string failures;
    const long parent = getpid();
    for (std::size_t i = 0; i < values.size(); ++i) {
        bool expected_match = true;
        for (const sc::condition& c : conditions) expected_match = expected_match && holds(c, values[i]);
        const long expected = expected_match ? -marker_errno : parent;
        if (r.number(i) != expected) {
            char line[160];
            std::snprintf(line, sizeof line, "  value 0x%llx: got %ld, expected %ld\n",
                          static_cast<unsigned long long>(values[i]), r.number(i), expected);
            failures += line;
        }
    }
    return failures;
}

std::string describe(const std::vector<sc::condition>& conditions) {
    std::string text;
    for (const sc::condition& c : conditions) text += (text.empty() ? "" : " && ") + sc::to_string(c);
    return text;
}

TEST(seccomp, allow_and_fail_with_answer_as_ruled) {
    sc::builder b;
    const sc::filter f = allow_runtime(b)
                             .default_action(sc::action::fail_with(EACCES))
                             .allow("getpid")
                             .fail("getuid", ENOTTY)
                             .build();
    const child_result r = run_filtered(f, [&](const reporter& out) {
        out.number(call(SYS_getpid));
        out.number(call(SYS_getuid));
        out.number(call(SYS_getppid));  // not ruled: the default action
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    ASSERT_EQ(r.lines.size(), 3U) << r.describe();
    EXPECT_GT(r.number(0), 0);
    EXPECT_NE(r.number(0), getpid()) << "getpid ran in the child";
    EXPECT_EQ(r.number(1), -ENOTTY);
    EXPECT_EQ(r.number(2), -EACCES);
}

TEST(seccomp, kill_process_ends_the_child_with_sigsys) {
    const sc::filter f =
        sc::builder{}.default_action(sc::action::allow()).rule("getppid", sc::action::kill_process()).build();
    const child_result r = run_filtered(f, [](const reporter& out) {
        out.number(1);
        call(SYS_getppid);
        out.number(2);
    });
    EXPECT_TRUE(r.killed_by(SIGSYS)) << r.describe();
    EXPECT_EQ(r.lines, std::vector<std::string>{"1"});
}

TEST(seccomp, kill_thread_ends_only_the_calling_thread) {
    const sc::filter f =
        sc::builder{}.default_action(sc::action::allow()).rule("getppid", sc::action::kill_thread()).build();
    const child_result r = run_filtered(f, [](const reporter& out) {
        volatile int after_call = 0;
        std::thread t([&] {
            call(SYS_getppid);
            after_call = 1;
        });
        t.join();  // the kernel clears the dead thread's tid, which join waits for
        out.number(after_call);
        out.number(call(SYS_getpid) > 0 ? 1 : 0);
    });
    EXPECT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.lines, (std::vector<std::string>{"0", "1"})) << r.describe();
}

// si_code of a SIGSYS from seccomp (SYS_SECCOMP, which glibc's headers
// define only for some feature macros).
constexpr int sys_seccomp_code = 1;

volatile sig_atomic_t trapped_syscall = -1;
volatile sig_atomic_t trapped_code = -1;
volatile sig_atomic_t trapped_arch = -1;

void on_sigsys(int, siginfo_t* info, void*) {
    trapped_syscall = info->si_syscall;
    trapped_code = info->si_code;
    trapped_arch = static_cast<sig_atomic_t>(info->si_arch);
}

TEST(seccomp, trap_raises_sigsys_naming_the_call) {
    const sc::filter f = sc::builder{}.default_action(sc::action::allow()).rule("getppid", sc::action::trap()).build();
    const child_result r = run_filtered(f, [](const reporter& out) {
        struct sigaction handler{};
        handler.sa_sigaction = on_sigsys;
        handler.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &handler, nullptr);
        call(SYS_getppid);
        out.number(trapped_syscall);
        out.number(trapped_code);
        out.number(static_cast<long>(static_cast<std::uint32_t>(trapped_arch)));
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.number(0), SYS_getppid);
    EXPECT_EQ(r.number(1), sys_seccomp_code);
    EXPECT_EQ(r.number(2), static_cast<long>(AUDIT_ARCH_X86_64));
}

TEST(seccomp, log_lets_the_call_run) {
    sc::builder b;
    const sc::filter f =
        allow_runtime(b).default_action(sc::action::fail_with(EPERM)).rule("getppid", sc::action::log()).build();
    const child_result r = run_filtered(f, [](const reporter& out) {
        out.number(call(SYS_getppid));
        out.number(call(SYS_getuid));
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.number(0), getpid()) << "the logged call ran and saw its parent";
    EXPECT_EQ(r.number(1), -EPERM) << "the default action still applies to others";
}

TEST(seccomp, numbers_the_table_lacks_answer_enosys_not_eperm) {
    sc::builder b;
    const sc::filter f = allow_runtime(b).default_action(sc::action::fail_with(EPERM)).build();
    const long newer = table::highest_number + 1;
    // Whether the running kernel has a call the table does not know: then
    // ENOSYS below is the filter's answer, not the kernel's. Every argument
    // is invalid (-1), so the call fails whatever it is.
    const child_result probe = run_unfiltered([&](const reporter& out) {
        out.number(call(newer, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL));
    });
    const child_result r = run_filtered(f, [&](const reporter& out) {
        out.number(call(1000));
        out.number(call(400));  // a hole in the x86-64 numbers
        out.number(call(newer, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL));
        out.number(call(0x3fffffff));
        out.number(call(SYS_getppid));  // known, not allowed
    });
    ASSERT_FALSE(table::known(400));
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.number(0), -ENOSYS);
    EXPECT_EQ(r.number(1), -ENOSYS);
    EXPECT_EQ(r.number(2), -ENOSYS);
    EXPECT_EQ(r.number(3), -ENOSYS);
    EXPECT_EQ(r.number(4), -EPERM);
    if (probe.exited_with(0) && probe.number(0) != -ENOSYS)
        std::printf("  (the kernel has call %ld, which the table lacks: it answered %ld unfiltered)\n", newer,
                    probe.number(0));
}

TEST(seccomp, default_profile_answers_enosys_to_clone3) {
    const auto profile = sc::default_profile();
    const auto clone3 = [](const reporter& out) { out.number(call(SYS_clone3, 0, 0)); };
    const child_result probe = run_unfiltered(clone3);
    const child_result r = run_filtered(*profile, clone3);
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.number(0), -ENOSYS);
    ASSERT_TRUE(probe.exited_with(0)) << probe.describe();
    EXPECT_NE(probe.number(0), -ENOSYS) << "unfiltered, the kernel itself rejects the empty clone_args otherwise";
}

TEST(seccomp, default_profile_refuses_with_eperm) {
    const auto profile = sc::default_profile();
    // Each call is made so that the kernel alone would refuse it with
    // another errno and change nothing: a null mount target, invalid
    // unshare flags, a bad fd, CLONE_NEWUSER with CLONE_FS.
    const auto attempts = [](const reporter& out) {
        out.number(call(SYS_mount, 0, 0, 0, 0, 0));
        out.number(call(SYS_unshare, 1));
        out.number(call(SYS_setns, ~0ULL, 0));
        out.number(call(SYS_clone, CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0));
        out.number(call(SYS_ioctl, ~0ULL, TIOCSTI, 0));
        out.number(call(SYS_ioctl, ~0ULL, (std::uint64_t{1} << 32) | TIOCSTI, 0));  // the upper half is ignored
    };
    const child_result probe = run_unfiltered(attempts);
    const child_result r = run_filtered(*profile, attempts);
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    ASSERT_TRUE(probe.exited_with(0)) << probe.describe();
    ASSERT_EQ(r.lines.size(), 6U);
    for (std::size_t i = 0; i < r.lines.size(); ++i) {
        EXPECT_EQ(r.number(i), -EPERM) << "attempt " << i;
        EXPECT_NE(probe.number(i), -EPERM) << "attempt " << i << " unfiltered: the kernel's own answer differs";
    }

    // Calls whose unfiltered answer may itself be EPERM (sysctls, missing
    // capabilities), with arguments that would do nothing if they ran.
    const child_result more = run_filtered(*profile, [](const reporter& out) {
        out.number(call(SYS_open_by_handle_at, ~0ULL, 0, 0));
        out.number(call(SYS_bpf, ~0ULL, 0, 0));
        out.number(call(SYS_perf_event_open, 0, 0, ~0ULL, ~0ULL, 0));
        out.number(call(SYS_userfaultfd, ~0ULL));
        out.number(call(SYS_io_uring_setup, 0, 0));
        out.number(call(SYS_keyctl, ~0ULL));
        out.number(call(SYS_ptrace, PTRACE_PEEKUSER, 0, 0, 0));
        out.number(call(SYS_init_module, 0, 0, 0));
        out.number(call(SYS_kexec_load, 0, 0, 0, ~0ULL));
        out.number(call(SYS_clock_settime, ~0ULL, 0));
        out.number(call(SYS_umount2, 0, ~0ULL));
        out.number(call(SYS_pivot_root, 0, 0));
        out.number(call(SYS_fsopen, 0, ~0ULL));
        out.number(call(SYS_add_key, 0, 0, 0, 0, 0));
    });
    ASSERT_TRUE(more.exited_with(0)) << more.describe();
    ASSERT_EQ(more.lines.size(), 14U);
    for (std::size_t i = 0; i < more.lines.size(); ++i) EXPECT_EQ(more.number(i), -EPERM) << "call " << i;
}

TEST(seccomp, default_profile_checks_arguments) {
    const auto profile = sc::default_profile();
    const child_result r = run_filtered(*profile, [](const reporter& out) {
        out.number(call(SYS_personality, 0xffffffff));       // query: allowed, returns the persona
        out.number(call(SYS_personality, ADDR_NO_RANDOMIZE));  // weakens ASLR: refused
        out.number(call(SYS_personality, PER_LINUX32));        // allowed, returns the old persona
        out.number(call(SYS_personality, 0xffffffff));
        out.number(call(SYS_socket, AF_VSOCK, SOCK_STREAM, 0));
        out.number(call(SYS_socket, (std::uint64_t{1} << 32) | AF_VSOCK, SOCK_STREAM, 0));
        const long unix_socket = call(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        out.number(unix_socket >= 0 ? 1 : unix_socket);
        out.number(call(SYS_ioctl, ~0ULL, TCGETS, 0));  // allowed: the kernel answers EBADF
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_GE(r.number(0), 0);
    EXPECT_EQ(r.number(1), -EPERM);
    EXPECT_EQ(r.number(2), r.number(0));
    EXPECT_EQ(r.number(3), PER_LINUX32);
    EXPECT_EQ(r.number(4), -EPERM);
    EXPECT_EQ(r.number(5), -EPERM);
    EXPECT_EQ(r.number(6), 1);
    EXPECT_EQ(r.number(7), -EBADF);
}

TEST(seccomp, default_profile_allows_fork_but_not_namespaces_through_clone) {
    const auto profile = sc::default_profile();
    const child_result r = run_filtered(*profile, [](const reporter& out) {
        const pid_t pid = fork();
        if (pid == 0) _exit(7);
        int status = 0;
        waitpid(pid, &status, 0);
        out.number(pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        // A clone that would make a user namespace (SIGCHLD: fork-like if
        // it were let through; the copy would leave at once).
        const long cloned = call(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (cloned == 0) _exit(0);
        if (cloned > 0) waitpid(static_cast<pid_t>(cloned), &status, 0);
        out.number(cloned > 0 ? 1 : cloned);
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.number(0), 7);
    EXPECT_EQ(r.number(1), -EPERM);
}

TEST(seccomp, default_profile_runs_threads_and_a_shell) {
    const auto profile = sc::default_profile();
    const child_result r = run_filtered(*profile, [](const reporter& out) {
        int from_thread = 0;
        std::thread([&] { from_thread = 42; }).join();
        out.number(from_thread);
        pthread_t t;
        int from_pthread = 0;
        if (pthread_create(&t, nullptr, [](void* p) -> void* { *static_cast<int*>(p) = 43; return nullptr; },
                           &from_pthread) == 0)
            pthread_join(t, nullptr);
        out.number(from_pthread);

        // fork and exec.
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) _exit(3);
        const pid_t pid = fork();
        if (pid == 0) {
            dup2(fds[1], 1);
            execl("/bin/sh", "sh", "-c", "echo ok", static_cast<char*>(nullptr));
            _exit(127);
        }
        close(fds[1]);
        std::string output;
        char buffer[256];
        for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;)
            output.append(buffer, static_cast<std::size_t>(n));
        close(fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        out.text(output);
        out.number(status);

        // posix_spawn, which glibc starts with clone3 and, on ENOSYS, clone.
        if (pipe2(fds, O_CLOEXEC) != 0) _exit(3);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
        pid_t spawned = 0;
        char arg0[] = "sh", arg1[] = "-c", arg2[] = "echo spawned";
        char* argv[] = {arg0, arg1, arg2, nullptr};
        const int spawn_error = posix_spawn(&spawned, "/bin/sh", &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        close(fds[1]);
        output.clear();
        for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;)
            output.append(buffer, static_cast<std::size_t>(n));
        close(fds[0]);
        if (spawn_error == 0) waitpid(spawned, &status, 0);
        out.number(spawn_error);
        out.text(output);
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    ASSERT_EQ(r.lines.size(), 6U) << r.describe();
    EXPECT_EQ(r.number(0), 42);
    EXPECT_EQ(r.number(1), 43);
    EXPECT_EQ(r.lines[2], "ok|");
    EXPECT_EQ(r.number(3), 0) << "the shell's wait status";
    EXPECT_EQ(r.number(4), 0) << "posix_spawn: " << std::strerror(static_cast<int>(r.number(4)));
    EXPECT_EQ(r.lines[5], "spawned|");
}

TEST(seccomp, argument_conditions_compare_all_64_bits) {
    const std::uint64_t v = 0x100000005ULL;  // high word 1, low word 5
    const std::vector<std::vector<sc::condition>> cases = {
        {sc::arg(0) == v},
        {sc::arg(0) != v},
        {sc::arg(0) > v},
        {sc::arg(0) >= v},
        {sc::arg(0) < v},
        {sc::arg(0) <= v},
        {sc::arg(0).masked(0xff000000ffULL) == 0x0100000005ULL},
        {sc::arg(0).masked(0xff000000ffULL) != 0x0100000005ULL},
        {sc::arg(0).masked(0xffffffff) == 5},
        {sc::arg(0).masked(0xffffffff00000000ULL) == 0x100000000ULL},
        {sc::arg(0).in_range(0xfffffff0ULL, v)},
        {sc::arg(0) >= 0xffffffffULL, sc::arg(0) < 0x200000000ULL},  // ANDed
    };
    for (const auto& conditions : cases) {
        std::vector<std::uint64_t> values = probes_around(v);
        for (const sc::condition& c : conditions) {
            for (std::uint64_t p : probes_around(c.value)) values.push_back(p);
            if (c.op == sc::compare::in_range)
                for (std::uint64_t p : probes_around(c.upper)) values.push_back(p);
        }
        EXPECT_EQ(check_conditions(conditions, 0, values), "") << describe(conditions);
    }
    // Another argument than the first: its words are elsewhere in seccomp_data.
    const std::vector<sc::condition> fifth = {sc::arg(5) == 0xdeadbeef00000001ULL};
    EXPECT_EQ(check_conditions(fifth, 5, probes_around(0xdeadbeef00000001ULL)), "") << describe(fifth);
}

TEST(seccomp, rules_of_one_call_are_tried_in_order) {
    const sc::filter f = sc::builder{}
                             .default_action(sc::action::allow())
                             .rule("getppid", sc::action::fail_with(71), sc::arg(0) == 1)
                             .rule("getppid", sc::action::fail_with(72), sc::arg(0) <= 5)
                             .rule("getppid", sc::action::fail_with(73), sc::arg(0) <= 9, sc::arg(1) == 2)
                             .rule("getpid", sc::action::fail_with(74), sc::arg(0) == 1)
                             .rule("getpid", sc::action::fail_with(75))
                             .build();
    const child_result r = run_filtered(f, [](const reporter& out) {
        out.number(call(SYS_getppid, 1));
        out.number(call(SYS_getppid, 3));
        out.number(call(SYS_getppid, 7, 2));
        out.number(call(SYS_getppid, 7, 3));  // no rule holds: the default (allow)
        out.number(call(SYS_getpid, 1));
        out.number(call(SYS_getpid, 2));  // the plain rule at the end is the call's own fallback
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.number(0), -71);
    EXPECT_EQ(r.number(1), -72);
    EXPECT_EQ(r.number(2), -73);
    EXPECT_EQ(r.number(3), getpid());
    EXPECT_EQ(r.number(4), -74);
    EXPECT_EQ(r.number(5), -75);
}

// A filter with a rule for every number of the table, each with its own
// errno, so no two neighbours share a range: hundreds of leaves, far
// jumps, and every number must still reach its own rule.
TEST(seccomp, large_filter_dispatches_every_number) {
    const auto plain_errno = [](long n) { return static_cast<int>(1 + (n * 37) % 3999); };
    const auto conditional_errno = [](long n) { return static_cast<int>(4010 + n % 80); };
    // Let through so that the child can report and end; the rest never runs.
    std::set<long> run_for_real;
    for (std::string_view name : runtime_calls) run_for_real.insert(table::name_to_number(name));
    constexpr int unknown_errno = 4001;
    constexpr int foreign_errno = 4002;
    sc::builder b;
    b.default_action(sc::action::fail_with(4000))
        .unknown_syscall_action(sc::action::fail_with(unknown_errno))
        .foreign_abi_action(sc::action::fail_with(foreign_errno));
    for (const auto& entry : table::by_number) {
        if (run_for_real.count(entry.number)) {
            b.allow(entry.number);
            continue;
        }
        if (entry.number % 7 == 0)
            b.rule(entry.number, sc::action::fail_with(conditional_errno(entry.number)),
                   sc::arg(0) == ((std::uint64_t{1} << 32) | static_cast<std::uint64_t>(entry.number)));
        b.fail(entry.number, plain_errno(entry.number));
    }
    const sc::filter f = b.build();
    ASSERT_GT(f.size(), 2 * 255U);
    bool far_jump = false;
    for (const sock_filter& i : f.instructions()) far_jump = far_jump || i.code == (BPF_JMP | BPF_JA);
    EXPECT_TRUE(far_jump) << "the program should need at least one JA";

    const long last = table::highest_number + 40;
    const child_result r = run_filtered(f, [&](const reporter& out) {
        std::vector<long> seen;
        for (long n = 0; n <= last; ++n) {
            if (run_for_real.count(n) || exempt_from_seccomp.count(n)) continue;
            seen.push_back(call(n, static_cast<std::uint64_t>(n)));
            if (n % 7 == 0) seen.push_back(call(n, (std::uint64_t{1} << 32) | static_cast<std::uint64_t>(n)));
        }
        seen.push_back(call(0x3fffffff));
        seen.push_back(call(__X32_SYSCALL_BIT | SYS_getpid));
        seen.push_back(call(__X32_SYSCALL_BIT + table::highest_number));
        for (long value : seen) out.number(value);
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe().substr(0, 400);
    std::vector<long> expected;
    for (long n = 0; n <= last; ++n) {
        if (run_for_real.count(n) || exempt_from_seccomp.count(n)) continue;
        const int plain = table::known(n) ? plain_errno(n) : unknown_errno;
        expected.push_back(-plain);
        if (n % 7 == 0) expected.push_back(table::known(n) ? -conditional_errno(n) : -plain);
    }
    expected.push_back(-unknown_errno);
    expected.push_back(-foreign_errno);
    expected.push_back(-foreign_errno);
    ASSERT_EQ(r.lines.size(), expected.size());
    int wrong = 0;
    for (std::size_t i = 0; i < expected.size(); ++i)
        if (r.number(i) != expected[i] && ++wrong <= 10)
            ADD_FAILURE() << "report " << i << ": got " << r.number(i) << ", expected " << expected[i];
    EXPECT_EQ(wrong, 0);
}

TEST(seccomp, x32_numbers_get_the_foreign_abi_action) {
    const long x32_getpid = __X32_SYSCALL_BIT | SYS_getpid;
    const child_result probe = run_unfiltered([&](const reporter& out) { out.number(call(x32_getpid)); });
    ASSERT_TRUE(probe.exited_with(0)) << probe.describe();
    // Without x32 support the kernel answers ENOSYS; seccomp sees the number
    // before that check either way, so the filter's answer shows regardless.
    const bool x32_available = probe.number(0) > 0;

    const sc::filter killing = sc::builder{}.default_action(sc::action::allow()).build();
    const child_result killed = run_filtered(killing, [&](const reporter& out) {
        out.number(1);
        call(x32_getpid);
        out.number(2);
    });
    EXPECT_TRUE(killed.killed_by(SIGSYS)) << killed.describe() << (x32_available ? "" : " (x32 unavailable)");
    EXPECT_EQ(killed.lines, std::vector<std::string>{"1"});

    const sc::filter failing = sc::builder{}
                                   .default_action(sc::action::allow())
                                   .foreign_abi_action(sc::action::fail_with(EXDEV))
                                   .build();
    const child_result failed = run_filtered(failing, [&](const reporter& out) { out.number(call(x32_getpid)); });
    ASSERT_TRUE(failed.exited_with(0)) << failed.describe();
    EXPECT_EQ(failed.number(0), -EXDEV);
}

TEST(seccomp, int80_calls_get_the_foreign_abi_action) {
    const child_result probe = run_unfiltered([](const reporter& out) {
        signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would report the probe's fault as a crash
        out.number(int80_getpid());
    });
    if (!probe.exited_with(0) || probe.number(0) <= 0)
        GTEST_SKIP() << "this kernel runs no i386 calls through int 0x80 (" << probe.describe() << ")";

    const sc::filter killing = sc::builder{}.default_action(sc::action::allow()).build();
    const child_result killed = run_filtered(killing, [](const reporter& out) {
        out.number(1);
        int80_getpid();
        out.number(2);
    });
    EXPECT_TRUE(killed.killed_by(SIGSYS)) << killed.describe();
    EXPECT_EQ(killed.lines, std::vector<std::string>{"1"});

    const sc::filter failing = sc::builder{}
                                   .default_action(sc::action::allow())
                                   .foreign_abi_action(sc::action::fail_with(EXDEV))
                                   .build();
    const child_result failed = run_filtered(failing, [](const reporter& out) { out.number(int80_getpid()); });
    ASSERT_TRUE(failed.exited_with(0)) << failed.describe();
    EXPECT_EQ(failed.number(0), -EXDEV);
}

// The first error of a chain, thrown by build().
ctr::error build_error(const sc::builder& b) {
    try {
        b.build();
    } catch (const ctr::error& e) {
        return e;
    }
    ADD_FAILURE() << "build() did not throw";
    return ctr::error(ctr::step::none, 0);
}

TEST(seccomp, builder_errors_name_what_is_wrong) {
    {
        const ctr::error e = build_error(sc::builder{}.allow("read").allow("frobnicate").allow("also_bogus"));
        EXPECT_EQ(e.step(), ctr::step::compile_seccomp);
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_EQ(e.path(), "frobnicate") << "the first error is kept";
        EXPECT_NE(std::string(e.what()).find("unknown system call name"), std::string::npos) << e.what();
    }
    {
        const ctr::error e = build_error(sc::builder{}.fail("read", 0));
        EXPECT_EQ(e.path(), "read");
        EXPECT_NE(std::string(e.what()).find("1..4095"), std::string::npos) << e.what();
        EXPECT_EQ(build_error(sc::builder{}.fail("read", 4096)).path(), "read");
        EXPECT_EQ(build_error(sc::builder{}.default_action(sc::action::fail_with(-1))).path(), "default action");
    }
    {
        const ctr::error e = build_error(sc::builder{}.rule("read", sc::action::allow(), sc::arg(6) == 0));
        EXPECT_NE(std::string(e.what()).find("argument index 6"), std::string::npos) << e.what();
        const ctr::error m =
            build_error(sc::builder{}.rule("read", sc::action::allow(), sc::arg(0).masked(0xf) == 0x10));
        EXPECT_NE(std::string(m.what()).find("outside the mask"), std::string::npos) << m.what();
        const ctr::error range =
            build_error(sc::builder{}.rule("read", sc::action::allow(), sc::arg(0).in_range(9, 3)));
        EXPECT_NE(std::string(range.what()).find("empty"), std::string::npos) << range.what();
    }
    {
        const ctr::error e = build_error(sc::builder{}.allow("mount").fail("mount", EPERM));
        EXPECT_EQ(e.path(), "mount");
        EXPECT_NE(std::string(e.what()).find("could never apply"), std::string::npos) << e.what();
        EXPECT_NO_THROW(sc::builder{}.allow("read").allow({"read", "write"}).build()) << "the same rule twice is fine";
    }
    {
        // Flags that change what the install call returns are refused; the
        // two taken are installed (a run under LOG: tests/oci_seccomp_test.cpp).
        const ctr::error e = build_error(sc::builder{}.install_flags(SECCOMP_FILTER_FLAG_TSYNC));
        EXPECT_EQ(e.path(), "install flags");
        const auto f = sc::builder{}
                           .install_flags(SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW)
                           .default_action(sc::action::allow())
                           .build();
        EXPECT_EQ(f.install_flags(), static_cast<std::uint32_t>(SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW));
        EXPECT_EQ(sc::filter(f).install_flags(), f.install_flags()) << "a copy keeps them";
        EXPECT_EQ(ctr::detail::seccomp_install_op(f).a, static_cast<long>(f.install_flags()));
    }
    {
        const ctr::error e = build_error(sc::builder{}.allow(__X32_SYSCALL_BIT));
        EXPECT_NE(std::string(e.what()).find("outside"), std::string::npos) << e.what();
    }
    {
        sc::builder b;
        b.default_action(sc::action::allow());
        for (std::uint64_t i = 0; i < 1200; ++i) b.rule("getpid", sc::action::fail_with(EPERM), sc::arg(0) == i);
        const ctr::error e = build_error(b);
        EXPECT_EQ(e.step(), ctr::step::compile_seccomp);
        EXPECT_EQ(e.code(), std::errc::argument_list_too_long);
        EXPECT_NE(std::string(e.what()).find("at most 4096"), std::string::npos) << e.what();
    }
}

TEST(seccomp, install_step_reports_the_kernels_error) {
    const auto profile = sc::default_profile();
    const ctr::detail::child_op op = ctr::detail::seccomp_install_op(*profile);
    EXPECT_EQ(op.code, ctr::detail::child_op_code::call);
    EXPECT_EQ(op.step, ctr::step::install_seccomp);
    EXPECT_EQ(op.data, &profile->program());
    EXPECT_EQ(op.a, 0) << "no SECCOMP_FILTER_FLAG_* by default";
    // A fault injected into the one syscall layer reaches the step's result.
    // In a child, so that nothing could ever be installed in the test process.
    const child_result r = run_unfiltered([&](const reporter& out) {
        ctr::detail::sys::fault_injection fault(ctr::detail::sys::call::seccomp, EINVAL);
        out.number(ctr::detail::child_run_op(ctr::detail::child_view{}, op));
        out.number(fault.exhausted() ? 1 : 0);
    });
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.number(0), -EINVAL);
    EXPECT_EQ(r.number(1), 1);
}

TEST(seccomp, default_profile_is_compiled_once_and_small) {
    const auto first = sc::default_profile();
    EXPECT_EQ(first.get(), sc::default_profile().get());
    EXPECT_LT(first->size(), 256U);
    EXPECT_EQ(first->program().len, first->size());
    EXPECT_EQ(first->program().filter, first->instructions().data());
    // A copy points at its own instructions.
    const sc::filter copy = *first;
    EXPECT_EQ(copy.program().filter, copy.instructions().data());
    EXPECT_EQ(copy.disassemble(), first->disassemble());
}

// Every call of the table is decided by some entry of the default profile,
// so a regenerated table with new calls fails here until someone decides.
TEST(seccomp, default_profile_names_every_call_of_the_table) {
    std::set<std::string_view> named;
    for (const sc::profile_entry& entry : sc::default_profile_entries()) {
        EXPECT_FALSE(entry.why.empty()) << entry.group;
        for (std::string_view name : entry.syscalls) {
            EXPECT_GE(table::name_to_number(name), 0) << name << " is not in the table (" << entry.group << ")";
            named.insert(name);
        }
        for (std::string_view name : entry.newer_syscalls) named.insert(name);
    }
    for (const auto& entry : table::by_number) EXPECT_TRUE(named.count(entry.name)) << entry.name << " is in no entry";
}

TEST(seccomp, syscall_table_matches_the_kernel_headers) {
    EXPECT_TRUE(std::is_sorted(table::by_number.begin(), table::by_number.end(),
                               [](const auto& a, const auto& b) { return a.number < b.number; }));
    EXPECT_TRUE(std::is_sorted(table::by_name.begin(), table::by_name.end(),
                               [](const auto& a, const auto& b) { return std::string_view(a.name) < b.name; }));
    EXPECT_EQ(table::highest_number, table::by_number.back().number);
    for (const auto& entry : table::by_number) {
        EXPECT_EQ(table::name_to_number(entry.name), entry.number);
        EXPECT_EQ(table::number_to_name(entry.number), entry.name);
    }
    EXPECT_EQ(table::name_to_number("read"), SYS_read);
    EXPECT_EQ(table::name_to_number("clone"), SYS_clone);
    EXPECT_EQ(table::name_to_number("clone3"), SYS_clone3);
    EXPECT_EQ(table::name_to_number("openat2"), SYS_openat2);
    EXPECT_EQ(table::name_to_number("exit_group"), SYS_exit_group);
    EXPECT_EQ(table::name_to_number("no_such_call"), -1);
    EXPECT_EQ(table::number_to_name(-1), "");
    static_assert(table::name_to_number("getppid") == SYS_getppid);
}

// The generator's own --check, against the header it reads on this machine.
TEST(seccomp, generated_syscall_table_is_up_to_date) {
    const std::filesystem::path source = std::filesystem::absolute(__FILE__).parent_path().parent_path();
    const std::filesystem::path tool = source / "tools" / "gen-syscall-table";
    if (access(tool.c_str(), R_OK) != 0)
        GTEST_SKIP() << tool << " is not readable from here (a copy of the suite run elsewhere)";
    const std::string command = "python3 '" + tool.string() + "' --check";
    const int status = std::system(command.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << status;
    if (WEXITSTATUS(status) == 127) GTEST_SKIP() << "no python3";
    if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "no <asm/unistd_64.h> to check against (linux-libc-dev)";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "include/ctr/detail/syscall_table_x86_64.hpp is out of date; run "
                                         "tools/gen-syscall-table";
}

}  // namespace
