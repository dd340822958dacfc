#pragma once
// Launch layer: what the command may still do (ctr::security).
// Capabilities in their documented order around the change of credentials,
// the Landlock ruleset (detail/launch_landlock.hpp), no_new_privs, then the
// seccomp filter right before exec. All of it runs in the command, after the
// init split off: pid 1 keeps what it needs to forward signals to a command
// that may have changed its uid.

#include <ctr/detail/capability_step.hpp>
#include <ctr/detail/launch_landlock.hpp>
#include <ctr/detail/launch_plan.hpp>
#include <ctr/seccomp.hpp>
#include <ctr/security.hpp>
#include <ctr/spawn_options.hpp>

#include <sys/prctl.h>

#include <vector>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Async-signal-safe.
CTR_CHILD_CODE inline long child_set_no_new_privileges(const child_op&) noexcept {
    return sys::prctl(PR_SET_NO_NEW_PRIVS, 1);
}

template <class = void>
inline void plan_security(launch_plan& plan, const options& opts) {
    const ::ctr::security& wanted = opts.security;
    if (wanted.capabilities) {
        const capability_plan& caps = plan.keep(plan_capabilities(*wanted.capabilities));
        const bool has_user_namespace =
            plan.created.has(ns::user) || plan.entered.has(ns::user) || raw::call(SYS_geteuid) == 0;
        const auto explain_privilege = [has_user_namespace](ctr::step s) {
            return [s, has_user_namespace](const child_report_view& report) {
                if (report.error == EPERM && !has_user_namespace)
                    return error(s, report.error, {},
                                 "changing capabilities needs CAP_SETPCAP: run as root or create a user namespace "
                                 "(ns::user), in which the command is root");
                return error(s, report.error);
            };
        };
        // The capability layer's own steps, in its order, placed around
        // the change of credentials.
        std::vector<child_op> before_ids, after_ids;
        add_capability_steps_before_ids(before_ids, caps, opts.uid.has_value());
        add_capability_steps_after_ids(after_ids, caps);
        for (const child_op& op : before_ids)
            plan.add(launch_phase::bounding_capabilities, op, {}, explain_privilege(op.step));
        for (const child_op& op : after_ids) plan.add(launch_phase::capabilities, op, {}, explain_privilege(op.step));
    }
    if (wanted.landlock) plan_landlock(plan, *wanted.landlock);
    if (wanted.no_new_privileges)
        plan.add(launch_phase::no_new_privileges,
                 {.code = child_op_code::call, .step = step::set_no_new_privileges, .run = child_set_no_new_privileges});
    if (wanted.seccomp) {
        const seccomp::filter& compiled = *plan.keep(wanted.seccomp);
        // Without no_new_privs only CAP_SYS_ADMIN lets a process install a
        // filter, so then it goes in before capabilities are dropped, and
        // before a change from uid 0 to another uid, which empties the
        // effective set (runc's order); the steps after it then run under
        // the filter.
        const bool leaves_root = opts.uid && *opts.uid != 0;
        const launch_phase phase = wanted.no_new_privileges ? launch_phase::seccomp
                                   : leaves_root           ? launch_phase::bounding_capabilities
                                                           : launch_phase::session;
        plan.add(phase, seccomp_install_op(compiled), {}, [nnp = wanted.no_new_privileges](const child_report_view& report) {
                     if (report.error == EACCES && !nnp)
                         return error(step::install_seccomp, report.error, {},
                                      "without no_new_privs a filter needs CAP_SYS_ADMIN; set "
                                      "security::no_new_privileges");
                     return error(step::install_seccomp, report.error);
                 });
    }
}

}  // namespace ctr::process::detail
