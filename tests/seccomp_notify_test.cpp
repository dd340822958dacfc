// Seccomp user notification on the real kernel: spawn installs a filter
// whose chosen calls wait for the test's supervisor, which answers them with
// an errno, a value, the call itself, or an fd of its own. Every answer is
// first shown to differ from what the command does without it, so that a
// test cannot pass by accident. The commands are the host's shell and
// coreutils; nothing needs privilege (no_new_privs lets any user install a
// filter), so the suite runs the same rootless.
#include "support.hpp"

#include <ctr/ctr.hpp>
#include <ctr/seccomp_notify.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

namespace {

namespace sc = ctr::seccomp;
namespace p = ctr::process;
using namespace std::chrono_literals;

// Notifies each call named, allows the rest.
std::shared_ptr<const sc::filter> notifying(std::initializer_list<std::string_view> calls) {
    sc::builder b;
    b.default_action(sc::action::allow());
    for (std::string_view name : calls) b.rule(name, sc::action::notify());
    return b.build_shared();
}

// The controls' filter notifies a call that neither a shell nor cat makes
// (busybox's sh calls uname as it starts, so uname would not do), and spawns
// them with nobody to answer: the filter is there, nothing is decided by it.
constexpr std::string_view never_called = "kexec_load";

p::options with_filter(std::shared_ptr<const sc::filter> f) {
    p::options o;
    o.security.no_new_privileges = true;
    o.security.seccomp = std::move(f);
    o.std_out = p::stdio::capture();
    o.std_err = p::stdio::capture();
    o.timeout = 60s;  // a call left waiting would show as a timeout, not a hung test
    return o;
}

// The path argument of mkdir (0) or mkdirat (1).
std::uint64_t mkdir_path_argument(const sc::notification& n) { return n.syscall == SYS_mkdir ? n.args[0] : n.args[1]; }

TEST(seccomp_notify, the_filter_says_which_calls_may_notify) {
    const auto f = sc::builder{}
                       .default_action(sc::action::notify())
                       .allow("read")
                       .rule("openat", sc::action::allow(), sc::arg(2) == 0)
                       .rule("mkdir", sc::action::notify())
                       .build();
    EXPECT_TRUE(f.notifies());
    EXPECT_FALSE(f.may_notify(SYS_read)) << "a rule without conditions decides read";
    EXPECT_TRUE(f.may_notify(SYS_openat)) << "openat with other flags falls to the default";
    EXPECT_TRUE(f.may_notify(SYS_mkdir));
    EXPECT_TRUE(f.may_notify(SYS_write));
    const auto plain = sc::builder{}.default_action(sc::action::allow()).rule("mkdir", sc::action::notify()).build();
    EXPECT_TRUE(plain.notifies());
    EXPECT_TRUE(plain.may_notify(SYS_mkdir));
    EXPECT_FALSE(plain.may_notify(SYS_write));
    EXPECT_FALSE(sc::builder{}.default_action(sc::action::allow()).build().notifies());
    EXPECT_EQ(sc::to_string(sc::action::notify()), "notify the supervisor");
}

TEST(seccomp_notify, an_errno_answer_fails_the_call_and_the_supervisor_reads_its_path) {
    ctr_test::temp_dir dir;
    const std::string made = dir.path + "/made";
    const std::string script = "mkdir " + made + " && echo made || echo refused";
    // Without the answer the directory is made: the test can see a refusal.
    auto control = p::spawn({"/bin/sh", "-c", script}, with_filter(notifying({never_called})));
    EXPECT_EQ(control.wait().std_out, "made\n");
    ASSERT_TRUE(std::filesystem::exists(made));
    std::filesystem::remove(made);

    auto child = p::spawn({"/bin/sh", "-c", script}, with_filter(notifying({"mkdir", "mkdirat"})));
    std::vector<std::string> paths;
    std::mutex paths_mutex;
    {
        sc::supervisor guard(child.take_seccomp_listener(), [&](const sc::notification& n, sc::listener& from) {
            const std::string path = from.read_string(n, mkdir_path_argument(n));
            std::lock_guard lock(paths_mutex);
            paths.push_back(path);
            return sc::response::fail_with(EROFS);
        });
        const auto r = child.wait();
        EXPECT_FALSE(r.timed_out);
        EXPECT_EQ(r.std_out, "refused\n");
        EXPECT_NE(r.std_err.find("Read-only file system"), std::string::npos) << r.std_err;
        EXPECT_EQ(guard.answered(), 1u);
        EXPECT_FALSE(guard.failure());
    }
    EXPECT_FALSE(std::filesystem::exists(made));
    EXPECT_EQ(paths, std::vector<std::string>{made});
}

TEST(seccomp_notify, a_continued_call_runs) {
    ctr_test::temp_dir dir;
    const std::string made = dir.path + "/made";
    auto child = p::spawn({"/bin/sh", "-c", "mkdir " + made + " && echo made"},
                          with_filter(notifying({"mkdir", "mkdirat"})));
    sc::supervisor guard(child.take_seccomp_listener(),
                         [](const sc::notification&, sc::listener&) { return sc::response::continue_call(); });
    const auto r = child.wait();
    EXPECT_EQ(r.std_out, "made\n") << r.std_err;
    EXPECT_TRUE(std::filesystem::is_directory(made));
    EXPECT_EQ(guard.answered(), 1u);
}

TEST(seccomp_notify, an_emulated_call_returns_the_supervisors_value) {
    // The shell learns $PPID from getppid() as it starts.
    auto control = p::spawn({"/bin/sh", "-c", "echo $PPID"}, with_filter(notifying({never_called})));
    const auto plain = control.wait();
    ASSERT_NE(plain.std_out, "4242\n");
    auto child = p::spawn({"/bin/sh", "-c", "echo $PPID"}, with_filter(notifying({"getppid"})));
    sc::supervisor guard(child.take_seccomp_listener(), [](const sc::notification& n, sc::listener&) {
        return n.syscall == SYS_getppid ? sc::response::value(4242) : sc::response::fail_with(ENOSYS);
    });
    EXPECT_EQ(child.wait().std_out, "4242\n");
}

TEST(seccomp_notify, an_fd_answer_opens_a_file_of_the_supervisors) {
    ctr_test::temp_dir dir;
    const std::string served = dir.path + "/served";
    { std::ofstream(served) << "from the supervisor\n"; }
    // A path that exists nowhere: only the supervisor's answer can open it.
    const std::string asked = dir.path + "/absent/secret";
    auto control = p::spawn({"/bin/cat", asked}, with_filter(notifying({never_called})));
    EXPECT_NE(control.wait().exit_code, 0);

    const int file = ::open(served.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(file, 0);
    auto child = p::spawn({"/bin/cat", asked}, with_filter(notifying({"openat"})));
    {
        sc::supervisor guard(child.take_seccomp_listener(), [&](const sc::notification& n, sc::listener& from) {
            // Everything else (the loader's libraries) opens as it would.
            if (from.read_string(n, n.args[1]) != asked) return sc::response::continue_call();
            return sc::response::with_fd(file);
        });
        const auto r = child.wait();
        EXPECT_EQ(r.exit_code, 0) << r.std_err;
        EXPECT_EQ(r.std_out, "from the supervisor\n");
    }
    ::close(file);
}

TEST(seccomp_notify, without_a_supervisor_the_calls_fail_with_enosys) {
    ctr_test::temp_dir dir;
    const std::string made = dir.path + "/made";
    auto child = p::spawn({"/bin/sh", "-c", "mkdir " + made + " || echo refused"},
                          with_filter(notifying({"mkdir", "mkdirat"})));
    // Nobody serves the listener: closing it is what a supervisor that died
    // leaves behind.
    { const ctr::unique_fd dropped = child.take_seccomp_listener(); ASSERT_TRUE(dropped); }
    const auto r = child.wait();
    EXPECT_FALSE(r.timed_out) << "the call waited for a supervisor that is gone";
    EXPECT_EQ(r.std_out, "refused\n");
    EXPECT_NE(r.std_err.find("Function not implemented"), std::string::npos) << r.std_err;
    EXPECT_FALSE(std::filesystem::exists(made));
}

TEST(seccomp_notify, a_supervisor_stopped_mid_run_leaves_the_next_calls_failing) {
    ctr_test::temp_dir dir;
    const std::string first = dir.path + "/first", second = dir.path + "/second";
    auto opts = with_filter(notifying({"mkdir", "mkdirat"}));
    opts.std_in = p::stdio::pipe();
    auto child = p::spawn({"/bin/sh", "-c", "mkdir " + first + "; read go; mkdir " + second + " || echo refused"},
                          std::move(opts));
    {
        sc::supervisor guard(child.take_seccomp_listener(),
                             [](const sc::notification&, sc::listener&) { return sc::response::continue_call(); });
        for (int i = 0; i < 600 && !std::filesystem::exists(first); ++i) std::this_thread::sleep_for(10ms);
        ASSERT_TRUE(std::filesystem::exists(first));
    }
    ASSERT_EQ(::write(child.std_in().get(), "go\n", 3), 3);
    child.std_in().reset();
    const auto r = child.wait();
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.std_out, "refused\n");
    EXPECT_FALSE(std::filesystem::exists(second));
}

TEST(seccomp_notify, the_command_holds_no_listener) {
    // What a listener's fd reads as, so that the check below can see one.
    auto child = p::spawn({"/bin/ls", "-l", "/proc/self/fd/"},
                          with_filter(notifying({"mkdirat"})));
    const ctr::unique_fd listener = child.take_seccomp_listener();
    ASSERT_TRUE(listener);
    char link[256] = {};
    const std::string own = "/proc/self/fd/" + std::to_string(listener.get());
    ASSERT_GT(::readlink(own.c_str(), link, sizeof link - 1), 0);
    ASSERT_NE(std::string(link).find("seccomp"), std::string::npos) << link;
    const auto r = child.wait();
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.std_out.find("seccomp"), std::string::npos) << r.std_out;
    EXPECT_NE(r.std_out.find("-> /"), std::string::npos) << "the listing shows no link: " << r.std_out;
}

TEST(seccomp_notify, works_in_a_pid_namespace_with_its_own_init) {
    ctr_test::temp_dir dir;
    std::filesystem::permissions(dir.path, std::filesystem::perms::all);
    const std::string made = dir.path + "/made";
    auto opts = with_filter(notifying({"mkdir", "mkdirat"}));
    opts.namespaces = ctr::ns::user | ctr::ns::pid;
    auto child = p::spawn({"/bin/sh", "-c", "mkdir " + made + " || echo refused; echo $$"}, std::move(opts));
    std::string path;
    {
        sc::supervisor guard(child.take_seccomp_listener(), [&](const sc::notification& n, sc::listener& from) {
            path = from.read_string(n, mkdir_path_argument(n));
            return sc::response::fail_with(EACCES);
        });
        const auto r = child.wait();
        EXPECT_EQ(r.std_out, "refused\n2\n") << "the command is pid 2, after ctr's init: " << r.std_err;
    }
    EXPECT_EQ(path, made);
}

TEST(seccomp_notify, a_filter_that_could_stop_the_launch_is_refused) {
    // The launch sends the listener, execs and, on a failure, reports and
    // exits under the filter: notifying one of those would wait forever.
    for (const char* call : {"sendmsg", "execve", "write"}) {
        try {
            (void)p::spawn({"/bin/true"}, with_filter(notifying({call})));
            ADD_FAILURE() << call << " was accepted";
        } catch (const ctr::error& e) {
            EXPECT_NE(std::string(e.what()).find(call), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("another action"), std::string::npos) << e.what();
        }
    }
    // The default notifying everything: sendmsg among it.
    EXPECT_THROW((void)p::spawn({"/bin/true"}, with_filter(sc::builder{}.default_action(sc::action::notify()).build_shared())),
                 ctr::error);
    // Without no_new_privs the filter would go in before the last steps.
    auto without_nnp = with_filter(notifying({"mkdir"}));
    without_nnp.security.no_new_privileges = false;
    try {
        (void)p::spawn({"/bin/true"}, without_nnp);
        ADD_FAILURE() << "a notifying filter without no_new_privs was accepted";
    } catch (const ctr::error& e) {
        EXPECT_NE(std::string(e.what()).find("no_new_privileges"), std::string::npos) << e.what();
    }
}

TEST(seccomp_notify, a_filter_that_refuses_the_handover_names_sendmsg) {
    const auto f = sc::builder{}
                       .default_action(sc::action::allow())
                       .rule("mkdir", sc::action::notify())
                       .fail("sendmsg", EPERM)
                       .build_shared();
    try {
        (void)p::spawn({"/bin/true"}, with_filter(f));
        ADD_FAILURE() << "the launch went on without its listener";
    } catch (const ctr::error& e) {
        EXPECT_NE(std::string(e.what()).find("must allow sendmsg"), std::string::npos) << e.what();
    }
}

TEST(seccomp_notify, a_prepared_sandbox_refuses_a_notifying_filter) {
    p::options opts;
    opts.security.no_new_privileges = true;
    opts.security.seccomp = notifying({"mkdir"});
    try {
        p::prepared_sandbox box(opts);
        ADD_FAILURE() << "a prepared sandbox took a filter it cannot serve";
    } catch (const ctr::error& e) {
        EXPECT_NE(std::string(e.what()).find("security.seccomp"), std::string::npos) << e.what();
    }
}

TEST(seccomp_notify, a_listener_refuses_a_bad_answer) {
    auto child = p::spawn({"/bin/sh", "-c", "mkdir /proc/ctr-notify-never || echo refused"},
                          with_filter(notifying({"mkdir", "mkdirat"})));
    sc::listener from(child.take_seccomp_listener());
    const auto n = from.receive(30s);
    ASSERT_TRUE(n);
    EXPECT_TRUE(n->syscall == SYS_mkdir || n->syscall == SYS_mkdirat);
    EXPECT_TRUE(from.still_waiting(*n));
    EXPECT_THROW(from.answer(*n, sc::response::fail_with(0)), ctr::error);
    EXPECT_THROW(from.answer(*n, sc::response::fail_with(5000)), ctr::error);
    EXPECT_TRUE(from.answer(*n, sc::response::fail_with(EPERM)));
    EXPECT_FALSE(from.answer(*n, sc::response::fail_with(EPERM))) << "answered twice";
    const auto r = child.wait();
    EXPECT_EQ(r.std_out, "refused\n");
    // Nobody uses the filter any more: receive says so at once.
    EXPECT_FALSE(from.receive(5s));
}

}  // namespace
