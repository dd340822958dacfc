// Every failure path of spawn, made to happen with detail::sys fault
// injection: the error names the step, and nothing leaks (fds, children).
#include "support.hpp"

#include <gtest/gtest.h>

using ctr::detail::sys::call;
using ctr::detail::sys::fault_injection;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;

namespace {

struct fault_case {
    const char* name;
    call which;
    int error;
    int skip;  // successful calls before the failing one
    ctr::process::options options;
    ctr::step expected_step;
};

// Names the case in test listings instead of dumping its bytes.
void PrintTo(const fault_case& c, std::ostream* out) { *out << c.name; }

}  // namespace

class spawn_fault : public testing::TestWithParam<fault_case> {};

TEST_P(spawn_fault, names_the_step_and_leaks_nothing) {
    const fault_case& c = GetParam();
    const auto fds_before = ctr_test::open_fds();
    {
        fault_injection fault(c.which, c.error, c.skip);
        try {
            auto r = spawn(helper({"exit", "0"}), c.options).wait();
            ADD_FAILURE() << "spawn succeeded with exit code " << r.exit_code.value_or(-1);
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), c.expected_step) << e.what();
            EXPECT_EQ(e.code().value(), c.error) << e.what();
            EXPECT_NE(std::string(e.what()).find(ctr::to_string(c.expected_step)), std::string::npos) << e.what();
        }
        EXPECT_TRUE(fault.exhausted()) << "the fault was never hit";
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
    EXPECT_FALSE(ctr_test::has_children());
}

INSTANTIATE_TEST_SUITE_P(
    parent_side, spawn_fault,
    testing::Values(
        fault_case{"error_pipe", call::pipe2, EMFILE, 0, {}, ctr::step::create_pipe},
        fault_case{"capture_pipe", call::pipe2, ENFILE, 1, {.std_out = stdio::capture()}, ctr::step::create_pipe},
        fault_case{"stdio_file", call::openat, EACCES, 0, {.std_out = stdio::file("/tmp/ctr-fault-out")},
                   ctr::step::open_stdio},
        fault_case{"stack", call::mmap, ENOMEM, 0, {}, ctr::step::allocate_stack},
        fault_case{"block_signals", call::rt_sigprocmask, EINVAL, 0, {}, ctr::step::clone},
        fault_case{"clone3", call::clone3, EAGAIN, 0, {}, ctr::step::clone}),
    [](const auto& info) { return std::string(info.param.name); });

// The child shares the parent's memory until exec, so a fault armed in the
// parent fires in the child too: each child step's report travels back.
INSTANTIATE_TEST_SUITE_P(
    child_side, spawn_fault,
    testing::Values(
        fault_case{"reset_signals", call::rt_sigaction, EFAULT, 0, {}, ctr::step::reset_signals},
        fault_case{"die_with_parent", call::prctl, EPERM, 0, {.die_with_parent = true}, ctr::step::die_with_parent},
        fault_case{"new_session", call::setsid, EPERM, 0, {.new_session = true}, ctr::step::new_session},
        fault_case{"rlimit", call::prlimit, EPERM, 0, {.rlimits = {{RLIMIT_NOFILE, 10, 10}}}, ctr::step::set_rlimit},
        fault_case{"map_fds", call::dup3, EMFILE, 0, {.std_out = stdio::null()}, ctr::step::map_fds},
        fault_case{"close_fds", call::close_range, EIO, 0, {}, ctr::step::close_fds},
        fault_case{"set_groups", call::setgroups, EPERM, 0, {.groups = std::vector<gid_t>{}}, ctr::step::set_groups},
        fault_case{"set_gid", call::setresgid, EPERM, 0, {.gid = 0}, ctr::step::set_gid},
        fault_case{"set_uid", call::setresuid, EPERM, 0, {.uid = 0}, ctr::step::set_uid},
        fault_case{"chdir", call::chdir, EACCES, 0, {.cwd = "/"}, ctr::step::change_directory},
        fault_case{"signal_mask", call::rt_sigprocmask, EINVAL, 1, {}, ctr::step::restore_signal_mask},
        fault_case{"exec", call::execve, E2BIG, 0, {}, ctr::step::exec}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(spawn_fallback, works_when_clone3_is_refused) {
    // What a container's seccomp profile does to clone3.
    fault_injection no_clone3(call::clone3, ENOSYS, 0, -1);
    auto r = spawn(helper({"exit", "9"})).wait();
    EXPECT_EQ(r.exit_code, 9);
    try {
        (void)spawn({"/nonexistent"});
        ADD_FAILURE() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::exec);
    }
}

TEST(spawn_fallback, closes_fds_by_walking_proc_without_close_range_cloexec) {
    fault_injection old_kernel(call::close_range, EINVAL, 0, -1);
    int leaky[2];
    ASSERT_EQ(pipe(leaky), 0);
    auto r = spawn(helper({"fds"}), {.std_out = stdio::capture()}).wait();
    close(leaky[0]);
    close(leaky[1]);
    EXPECT_EQ(r.std_out, "0 1 2\n");
}

TEST(spawn_fallback, clone_failure_after_fallback_is_reported) {
    fault_injection no_clone3(call::clone3, ENOSYS, 0, -1);
    fault_injection no_clone(call::clone, EAGAIN);
    const auto fds_before = ctr_test::open_fds();
    try {
        (void)spawn(helper({"exit", "0"}));
        ADD_FAILURE() << "spawn succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::clone);
        EXPECT_EQ(e.code().value(), EAGAIN);
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
}

TEST(wait_errors, poll_failure_is_reported_and_the_child_still_reaped) {
    auto child = spawn(helper({"sleep", "100"}));
    {
        fault_injection fault(call::ppoll, ENOMEM);
        try {
            child.wait();
            ADD_FAILURE() << "wait succeeded";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::wait);
            EXPECT_EQ(e.code().value(), ENOMEM);
        }
    }
    child.kill();
    EXPECT_EQ(child.wait().signal, SIGKILL);
    EXPECT_FALSE(ctr_test::has_children());
}
