#pragma once
// Launch layer: pasta on the child's new network namespace. The parent
// starts it while the child waits, after the id maps are written, and lets
// the child go on once pasta has configured the interface; the child has no
// step of its own. The pasta process goes to the child's handle, which ends
// it with the sandbox.

#include <ctr/detail/launch_plan.hpp>
#include <ctr/detail/pasta_process.hpp>
#include <ctr/pasta.hpp>
#include <ctr/spawn_options.hpp>

#include <sys/stat.h>

#include <memory>
#include <string>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Whether the user namespace `userns_fd` is another than this process's: then
// pasta must join it to enter the network namespace it owns.
template <class = void>
inline bool in_other_user_namespace(int userns_fd) {
    struct stat theirs{}, ours{};
    if (const long r = sys::fstatat(userns_fd, "", &theirs, AT_EMPTY_PATH); r < 0)
        throw error(step::start_network_helper, static_cast<int>(-r), "user namespace", "reading the child's");
    if (const long r = sys::fstatat(AT_FDCWD, "/proc/self/ns/user", &ours, 0); r < 0)
        throw error(step::start_network_helper, static_cast<int>(-r), "/proc/self/ns/user");
    return theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev;
}

// Adds pasta's parent step. The running pasta goes to
// plan.ends_after_sandbox, its pid to plan.pasta_pid.
template <class = void>
inline void plan_pasta(launch_plan& plan, const options& opts) {
    if (!opts.pasta) return;
    const net::pasta& wanted = *opts.pasta;
    net::detail::check_pasta_options(wanted);  // before clone, so bad options start nothing
    const auto running = std::make_shared<net::pasta_process>();
    plan.ends_after_sandbox.push_back(running);
    net::pasta_process& made = *running;
    pid_t* const made_pid = &plan.pasta_pid;
    const bool die_with_this_thread = opts.die_with_parent || opts.die_with_owner;
    plan.while_child_waits([&wanted, &made, made_pid, die_with_this_thread](parent_step_context& child) {
        const std::string base = "/proc/" + std::to_string(child.pid) + "/ns/";
        const unique_fd netns = open_checked((base + "net").c_str(), O_RDONLY, 0, step::start_network_helper);
        const unique_fd userns = open_checked((base + "user").c_str(), O_RDONLY, 0, step::start_network_helper);
        net::pasta_target target{netns.get(), -1};
        if (in_other_user_namespace(userns.get())) target.userns_fd = userns.get();
        made = net::start_pasta(wanted, target, die_with_this_thread);
        *made_pid = made.pid();
    });
}

}  // namespace ctr::process::detail

namespace ctr::detail {
template <>
inline constexpr bool layer_header_included<net::pasta> = true;
template <>
struct launch_layer<net::pasta> {
    template <class = void>
    static void add_steps(launch_plan& plan, const process::options& opts) {
        process::detail::plan_pasta(plan, opts);
    }
};
}  // namespace ctr::detail
