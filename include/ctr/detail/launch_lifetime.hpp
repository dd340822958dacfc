#pragma once
// Launch layer: how long the sandbox may live. options::die_with_parent (the
// kernel's parent-death signal, tied to the spawning thread) and
// options::die_with_owner (the sandbox ends with the owner process, however
// it ends, whichever thread spawned).
//
// die_with_owner works in two stages. Until the supervisor runs, the child
// has the parent-death signal, so an owner killed during setup takes it
// along. The supervisor (pid 1 of a new pid namespace, else a subreaper
// outside it; see child_become_init) then watches a pidfd of the owner,
// which becomes readable only when every thread of the owner has ended, and
// drops the parent-death signal before the command may run, so that a
// spawning thread that exits later does not end the sandbox.

#include <ctr/detail/launch_plan.hpp>
#include <ctr/spawn_options.hpp>

#include <fcntl.h>

namespace ctr::process::detail {

using namespace ::ctr::detail;

template <class = void>
inline void plan_lifetime(launch_plan& plan, const options& opts) {
    // A change of uid or gid clears the parent-death signal (the kernel
    // does so on every change of effective or filesystem ids), so it is set
    // again after each step that may change them.
    const bool ids_change_as_root = plan.created.has(ns::user);
    const bool ids_change = opts.uid || opts.gid || opts.groups;

    if (opts.die_with_parent) {
        const long parent = plan.created.has(ns::pid) ? 0 : sys::getpid();
        const child_op again{.code = child_op_code::die_with_parent, .step = step::die_with_parent, .a = SIGKILL,
                             .b = parent};
        if (ids_change_as_root) plan.add(launch_phase::become_root, again);
        if (ids_change) plan.add(launch_phase::credentials, again);
    }

    if (!opts.die_with_owner) return;
    // plan_namespaces made the supervisor (plan.uses_init) for this.
    const long pidfd = sys::pidfd_open(static_cast<int>(sys::getpid()), 0);
    if (pidfd < 0)
        throw error(step::die_with_parent, static_cast<int>(-pidfd), {},
                    "die_with_owner watches the owner through a pidfd (pidfd_open, Linux 5.3)");
    const int owner = plan.keep(unique_fd(static_cast<int>(pidfd))).get();
    init_state& supervisor = plan.shared->init;
    supervisor.owner_pidfd = owner;
    // A supervisor that is not pid 1 finds what to kill in its own
    // /proc/<pid>/task/<tid>/children, through the caller's /proc: the
    // sandbox may have another one, or none.
    if (!plan.created.has(ns::pid)) {
        const long proc = sys::openat(AT_FDCWD, "/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (proc >= 0) supervisor.proc_fd = plan.keep(unique_fd(static_cast<int>(proc))).get();
    }
    const child_op arm{.code = child_op_code::die_with_owner, .step = step::die_with_parent, .a = owner};
    plan.add(launch_phase::signals, arm);
    if (ids_change_as_root) plan.add(launch_phase::become_root, arm);
    if (ids_change) plan.add(launch_phase::credentials, arm);
}

}  // namespace ctr::process::detail
