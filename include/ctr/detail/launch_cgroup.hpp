#pragma once
// Launch layer: the cgroup the child starts in, with no moment outside it.
// Placed by the clone itself on cgroup v2 (CLONE_INTO_CGROUP), or attached
// by the parent while the child waits (v1, or a kernel that refuses the
// flag: spawn retries the clone without it).

#include <ctr/cgroup.hpp>
#include <ctr/detail/launch_plan.hpp>
#include <ctr/spawn_options.hpp>

namespace ctr::process::detail {

using namespace ::ctr::detail;

inline void plan_cgroup(launch_plan& plan, const options& opts) {
    if (!opts.cgroup) return;
    cgroup::group* group = opts.cgroup;
    if (!group->valid()) throw error(step::attach_to_cgroup, EINVAL, {}, "the cgroup::group was moved from or removed");
    plan.request.cgroup_fd = group->clone_into_fd();
    // The wait is there in both cases, so that a kernel that refuses
    // CLONE_INTO_CGROUP can fall back to attaching.
    plan.sync_channel();
    plan.while_child_waits([group, &request = plan.request](parent_step_context& child) {
        if (request.cgroup_fd < 0) group->attach(child.pid);
    });
}

}  // namespace ctr::process::detail
