#pragma once
// Launch layer: the cgroup the child starts in, with no moment outside it.
// Placed by the clone itself on cgroup v2 (CLONE_INTO_CGROUP), or attached
// by the parent while the child waits (v1, or a kernel that refuses the
// flag: spawn retries the clone without it).

#include <ctr/cgroup.hpp>
#include <ctr/detail/launch_plan.hpp>
#include <ctr/spawn_options.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// The group's figures at the start of a run, which the run's figures are
// measured from (process::result).
struct cgroup_run_start {
    cgroup::stats before{};
    // The group's peak charge is the run's only when nothing was charged
    // to the group before: a high-water mark cannot be reset without losing
    // the group's own (v1 max_usage_in_bytes), or only for one open file
    // (v2 memory.peak, 6.12+).
    bool peak_is_per_run = false;
};

template <class = void>
inline cgroup_run_start begin_cgroup_run(const cgroup::group& group) {
    cgroup_run_start start;
    start.before = group.read_run_figures();
    start.peak_is_per_run = start.before.memory_peak == std::uint64_t{0};
    return start;
}

// The run's figures: the group's now, less those at the start.
template <class = void>
inline void add_cgroup_run_figures(result& out, const cgroup_run_start& start, const cgroup::stats& after) {
    const auto since = [](const std::optional<std::chrono::nanoseconds>& now,
                          const std::optional<std::chrono::nanoseconds>& then) -> std::optional<std::chrono::nanoseconds> {
        if (!now || !then) return now;
        return *now >= *then ? *now - *then : std::chrono::nanoseconds(0);
    };
    out.oom_killed = after.oom_kills.value_or(0) > start.before.oom_kills.value_or(0);
    out.group_memory_peak_bytes = after.memory_peak;
    if (start.peak_is_per_run) out.memory_peak_bytes = after.memory_peak;
    out.cgroup_user_time = since(after.cpu_user, start.before.cpu_user);
    out.cgroup_system_time = since(after.cpu_system, start.before.cpu_system);
}

template <class = void>
inline void plan_cgroup(launch_plan& plan, const options& opts) {
    if (!opts.cgroup) return;
    cgroup::group* group = opts.cgroup;
    if (!group->valid()) throw error(step::attach_to_cgroup, EINVAL, {}, "the cgroup::group was moved from or removed");
    plan.request.cgroup_fd = group->clone_into_fd();
    // A child that shared the caller's memory would take the caller down
    // with it: when the group runs out of memory and its OOM killer picks
    // the child, the kernel kills every process that uses the victim's
    // memory. So the child in a group gets a copy (fork's cost: page tables
    // that grow with the caller's heap), however small the group's limit.
    plan.request.memory = memory_mode::copied;
    // The wait is there in both cases, so that a kernel that refuses
    // CLONE_INTO_CGROUP can fall back to attaching.
    plan.sync_channel();
    plan.while_child_waits([group, &request = plan.request](parent_step_context& child) {
        if (request.cgroup_fd < 0) group->attach(child.pid);
    });
}

}  // namespace ctr::process::detail
