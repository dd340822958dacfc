#pragma once
// Launch layer: who the command runs as and in what session. rlimits,
// supplementary groups, gid and uid; a new session and its controlling
// terminal, umask and working directory.

#include <ctr/detail/id_errors.hpp>
#include <ctr/detail/launch_plan.hpp>
#include <ctr/spawn_options.hpp>

#include <string>

namespace ctr::process::detail {

using namespace ::ctr::detail;

template <class = void>
inline void plan_identity(launch_plan& plan, const options& opts) {
    for (const auto& limit : opts.rlimits) {
        const rlimit& value = plan.keep(rlimit{limit.soft, limit.hard});
        plan.add(launch_phase::rlimits,
                 {.code = child_op_code::set_rlimit, .step = step::set_rlimit, .a = limit.resource, .data = &value},
                 "resource " + std::to_string(limit.resource));
    }
    if (opts.groups) {
        const auto& groups = plan.keep(*opts.groups);
        plan.add(launch_phase::credentials, {.code = child_op_code::set_groups, .step = step::set_groups,
                                             .a = static_cast<long>(groups.size()), .data = groups.data()});
    }
    // -1 is setresuid's and setresgid's "leave unchanged": asked for, it would run the command as the caller.
    if (opts.uid == static_cast<uid_t>(-1) || opts.gid == static_cast<gid_t>(-1))
        throw error(step::prepare, EINVAL, opts.uid == static_cast<uid_t>(-1) ? "uid 4294967295" : "gid 4294967295",
                    "-1 is not an id (the kernel reads it as \"leave unchanged\")");
    if (opts.umask && *opts.umask > 0777)
        throw error(step::prepare, EINVAL, "umask " + std::to_string(*opts.umask), "a umask is 0 to 0777");
    // In a new user namespace an id outside its maps is EINVAL; the error
    // says so, and how to map more (detail/id_errors.hpp).
    const auto unmapped = [&](step s, const char* kind, std::uint32_t id) -> step_explainer {
        if (!plan.created.has(ns::user) && !plan.entered.has(ns::user)) return {};
        return [s, kind, id, asked = opts.id_maps](const child_report_view& report) {
            return unmapped_id_error(s, report.error, kind, id, asked);
        };
    };
    if (opts.gid)
        plan.add(launch_phase::credentials,
                 {.code = child_op_code::set_gid, .step = step::set_gid, .a = static_cast<long>(*opts.gid)},
                 "gid " + std::to_string(*opts.gid), unmapped(step::set_gid, "gid", *opts.gid));
    if (opts.uid)
        plan.add(launch_phase::credentials,
                 {.code = child_op_code::set_uid, .step = step::set_uid, .a = static_cast<long>(*opts.uid)},
                 "uid " + std::to_string(*opts.uid), unmapped(step::set_uid, "uid", *opts.uid));

    if (opts.controlling_terminal && !opts.new_session)
        throw error(step::prepare, EINVAL, {}, "a controlling terminal needs a new session (options::new_session)");
    if (opts.new_session) plan.add(launch_phase::session, {.code = child_op_code::new_session, .step = step::new_session});
    if (opts.controlling_terminal)
        plan.add(launch_phase::session,
                 {.code = child_op_code::set_controlling_terminal, .step = step::set_controlling_terminal, .a = 0}, "fd 0");
    if (opts.umask)
        plan.add(launch_phase::session,
                 {.code = child_op_code::set_umask, .step = step::set_umask, .a = static_cast<long>(*opts.umask)});
    if (!opts.cwd.empty()) {
        // Resolved in the child after the new root is entered.
        const std::string& cwd = plan.keep(opts.cwd);
        plan.add(launch_phase::session,
                 {.code = child_op_code::change_directory, .step = step::change_directory, .data = cwd.c_str()}, cwd);
    }
}

}  // namespace ctr::process::detail
