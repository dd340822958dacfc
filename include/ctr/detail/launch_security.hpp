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

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <vector>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Async-signal-safe.
CTR_CHILD_CODE inline long child_set_no_new_privileges(const child_op&) noexcept {
    return sys::prctl(PR_SET_NO_NEW_PRIVS, 1);
}

// A filter that notifies (seccomp::action::notify): the child installs it
// with a listener and sends that to the parent on a socket, whose parent end
// the child's handle keeps (child::take_seccomp_listener). Refuses what
// would leave the launch waiting on a supervisor that does not exist yet.
template <class = void>
inline child_op plan_seccomp_listener(launch_plan& plan, const seccomp::filter& compiled, launch_phase phase) {
    // Under the filter the child still sends the listener, execs, and on a
    // failure reports and exits: a notified one of these would wait for a
    // supervisor that spawn only hands out once the launch is over.
    for (const char* call : {"sendmsg", "execve", "execveat", "write", "exit_group"})
        if (compiled.may_notify(syscall_table_x86_64::name_to_number(call)))
            throw error(step::install_seccomp, EINVAL, call,
                        std::string("the filter may notify ") + call +
                            ", which the launch itself calls under the filter before exec (sendmsg, execve, "
                            "execveat, write, exit_group); give it another action");
    if (plan.start_gate)
        throw error(step::install_seccomp, EINVAL, "start_gate",
                    "a filter that notifies is not supported with options::start_gate: its listener would be "
                    "sent only once the command is started");
    if (phase != launch_phase::seccomp)
        throw error(step::install_seccomp, EINVAL, {},
                    "a filter that notifies needs security::no_new_privileges, so that it is installed last, "
                    "right before exec");
    int ends[2];
    if (const long r = sys::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends); r < 0)
        throw error(step::create_pipe, static_cast<int>(-r), {}, "the seccomp listener's channel");
    plan.seccomp_listener_from_child.reset(ends[0]);
    unique_fd child_end(ends[1]);
    // Above every fd the child maps: no dup3 of the fds phase may replace it.
    if (child_end.get() < plan.first_unmapped_fd) {
        const long moved = sys::fcntl(child_end.get(), F_DUPFD_CLOEXEC, plan.first_unmapped_fd);
        if (moved < 0)
            throw error(step::create_pipe, static_cast<int>(-moved), {}, "moving the seccomp listener's channel");
        child_end.reset(static_cast<int>(moved));
    }
    const int child_socket = child_end.get();
    plan.child_ends.push_back(std::move(child_end));
    return child_op{.code = child_op_code::call,
                    .step = ctr::step::install_seccomp,
                    .a = static_cast<long>(compiled.install_flags() | SECCOMP_FILTER_FLAG_NEW_LISTENER),
                    .b = child_socket,
                    .data = &compiled.program(),
                    .data2 = &plan.shared->failure_detail,
                    .run = child_install_seccomp_with_listener};
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
        const child_op install = compiled.notifies() ? plan_seccomp_listener(plan, compiled, phase)
                                                     : seccomp_install_op(compiled);
        plan.add(phase, install, {}, [nnp = wanted.no_new_privileges](const child_report_view& report) {
            if (report.detail == 1)
                return error(step::install_seccomp, report.error, {},
                             "handing the filter's listener to the parent: the filter must allow sendmsg, the one "
                             "call the launch makes under it before exec");
            if (report.error == EACCES && !nnp)
                return error(step::install_seccomp, report.error, {},
                             "without no_new_privs a filter needs CAP_SYS_ADMIN; set security::no_new_privileges");
            if (report.error == EBUSY)
                return error(step::install_seccomp, report.error, {},
                             "a filter with a listener is installed already (by an outer sandbox or supervisor), "
                             "and the kernel allows one listener in a process's filters");
            return error(step::install_seccomp, report.error);
        });
    }
}

}  // namespace ctr::process::detail
