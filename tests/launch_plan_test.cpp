// The launch order (detail::launch_phase) as the child runs it: every layer's
// steps land in the documented place, whatever order the layers are planned
// in, and a confined launch that changes its uid works end to end.
#include "support.hpp"

#include <gtest/gtest.h>

#include <ctr/ctr.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace {

namespace p = ctr::process;
using ctr::step;

std::vector<step> steps_of(const p::options& opts) {
    ctr::detail::launch_plan plan;
    p::detail::build_plan(plan, {"/bin/true"}, opts);
    std::vector<step> out;
    for (const auto& op : plan.ops) out.push_back(op.step);
    return out;
}

// The first position of `s` in `steps`, or -1.
long position(const std::vector<step>& steps, step s) {
    const auto at = std::find(steps.begin(), steps.end(), s);
    return at == steps.end() ? -1 : at - steps.begin();
}

TEST(launch_plan, every_layer_lands_in_the_documented_order) {
    const auto steps = steps_of({
        .cwd = "/tmp",
        .rlimits = {{RLIMIT_NOFILE, 64, 64}},
        .new_session = true,
        .gid = 1000,
        .uid = 1000,
        .namespaces = ctr::ns::all,
        .hostname = "box",
        .root = ctr::mount::host_readonly(),
        .security = ctr::security::confined(),
    });
    // The documented order (docs/security.md), one representative a phase.
    const step order[] = {
        step::reset_signals,        step::wait_for_parent,  step::create_namespaces, step::set_hostname,
        step::bring_up_loopback,    step::mount,            step::set_rlimit,
        step::close_fds,            step::drop_bounding_capabilities, step::keep_capabilities,
        step::set_uid,              step::run_init,         step::new_session,        step::change_directory,
        step::set_capabilities,     step::set_ambient_capabilities, step::set_no_new_privileges,
        step::restore_signal_mask,  step::install_seccomp,  step::exec,
    };
    long previous = -1;
    for (const step s : order) {
        const long at = s == step::set_uid ? static_cast<long>(steps.size()) - 1 -
                                                 (std::find(steps.rbegin(), steps.rend(), s) - steps.rbegin())
                                           : position(steps, s);
        ASSERT_GE(at, 0) << "no step " << ctr::to_string(s);
        EXPECT_GT(at, previous) << ctr::to_string(s) << " is out of order";
        previous = at;
    }
    EXPECT_EQ(steps.back(), step::exec);
}

TEST(launch_plan, seccomp_goes_in_before_capabilities_are_dropped_without_no_new_privs) {
    const auto steps = steps_of({.namespaces = ctr::ns::user,
                                 .security = {.capabilities = ctr::caps::policy{.keep = ctr::caps::default_set()},
                                              .seccomp = ctr::seccomp::default_profile()}});
    ASSERT_GE(position(steps, step::install_seccomp), 0);
    EXPECT_LT(position(steps, step::install_seccomp), position(steps, step::set_capabilities));
    EXPECT_EQ(position(steps, step::set_no_new_privileges), -1);
}

TEST(launch_plan, a_confined_command_that_changes_its_uid_runs_with_what_it_was_given) {
    if (!ctr_test::real_root)
        GTEST_SKIP() << "uid 1000 inside needs a map of more than one id (real root)";
    auto r = p::spawn({"/bin/sh", "-c", "id -u; grep -E '^(CapEff|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status"},
                      {.std_out = p::stdio::capture(),
                       .gid = 1000,
                       .uid = 1000,
                       .namespaces = ctr::ns::all,
                       .root = ctr::mount::host_readonly(),
                       .security = {.capabilities = ctr::caps::policy{.keep = ctr::capability::net_bind_service,
                                                                      .ambient = ctr::capability::net_bind_service},
                                    .no_new_privileges = true,
                                    .seccomp = ctr::seccomp::default_profile()}})
                 .wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out;
    EXPECT_EQ(r.std_out, "1000\nCapEff:\t0000000000000400\nCapAmb:\t0000000000000400\nNoNewPrivs:\t1\nSeccomp:\t2\n");
}

}  // namespace
