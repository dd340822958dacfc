// ctr-run's run command: turns a config into a process::options (namespaces,
// a mount plan, a cgroup), spawns, relays a terminal when there is one, and
// turns the process::result into an exit status.

#include "run.hpp"

#include "output.hpp"
#include "scratch.hpp"
#include "terminal.hpp"

#include <ctr/ctr.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ctr_run {

namespace {

// The host ids that uid and gid 0 inside map to.
std::pair<uid_t, gid_t> mapped_root(const ctr::ns::id_maps& wanted) {
    const auto maps = ctr::ns::detail::resolve_id_maps(wanted);
    const auto outside = [](const std::vector<ctr::ns::id_range>& ranges) {
        for (const auto& r : ranges)
            if (r.inside == 0) return r.outside;
        return std::uint32_t{0};
    };
    return {outside(maps.uid), outside(maps.gid)};
}

// Root gets a user namespace of its own unless --userns host; a caller that
// is not root always has one.
bool root_in_user_namespace(const config& c) { return geteuid() == 0 && !c.userns_host && !c.rootless; }
// Idmapping a host filesystem needs CAP_SYS_ADMIN over it: root of the
// initial user namespace. Root of another one (a rootless outer sandbox)
// maps its own ids into the sandbox, so files keep their owners without it.
bool in_initial_user_namespace() {
    std::ifstream map("/proc/self/uid_map");
    std::string first_line;
    std::getline(map, first_line);
    return first_line.find("4294967295") != std::string::npos;
}
// Where the filesystem cannot idmap (tmpfs before Linux 6.3), the bind is
// plain: root-owned files show as nobody and stay unchanged by the
// sandbox's root (docs/ctr-run.md).
ctr::mount::idmapping binds_idmapping(const config& c) {
    return root_in_user_namespace(c) && in_initial_user_namespace() ? ctr::mount::idmapping::when_supported
                                                                     : ctr::mount::idmapping::none;
}

// What the command may still do: Podman's default capabilities with
// --cap-add/--cap-drop applied, no_new_privs and the default seccomp
// profile, unless --privileged or the --security-opt switches say otherwise.
ctr::security confinement(const config& c) {
    if (c.privileged) return ctr::security::unconfined();
    ctr::caps::set keep = ctr::caps::default_set();
    for (const auto& name : c.cap_drop) keep = name == "ALL" ? ctr::caps::set::none() : keep - ctr::caps::set{ctr::caps::parse(name)};
    for (const auto& name : c.cap_add) keep = name == "ALL" ? ctr::caps::set::all() : keep | ctr::caps::set{ctr::caps::parse(name)};
    return {.capabilities = ctr::caps::policy{.keep = keep & ctr::caps::supported()},
            .no_new_privileges = c.no_new_privileges,
            .seccomp = c.seccomp ? ctr::seccomp::default_profile() : nullptr};
}

ctr::mount::plan filesystem_plan(const config& c, scratch_layer* scratch) {
    namespace mnt = ctr::mount;
    mnt::plan plan;
    if (!c.overlay.empty()) {
        std::vector<std::string> lower = c.overlay;
        if (c.rootfs) lower.push_back(*c.rootfs);
        plan.overlay("/", {.lower = lower, .upper = scratch->upper(), .work = scratch->work(),
                           .idmap_lower = binds_idmapping(c)});
        plan.proc().dev();
    } else if (c.rootfs) {
        plan = mnt::plan{.rootfs = *c.rootfs, .read_only_root = c.read_only};
        plan.proc().dev();
    } else {
        plan = mnt::host_readonly();
    }
    // In a user namespace of root's making, the rootfs and volumes are
    // idmapped: files keep the owners they have on disk as the sandbox sees
    // them, and what its root writes belongs to root on the host (Docker's
    // ownership). The host's own root stays unmapped: its root-only files
    // stay unreadable inside.
    const auto idmap = binds_idmapping(c);
    if (c.rootfs && c.overlay.empty()) plan.idmap_root = idmap;
    for (const auto& v : c.volumes) plan.bind(v.source, v.target, {.read_only = v.read_only, .idmap = idmap});
    for (const auto& t : c.tmpfs) plan.tmpfs(t.target, t.options);
    return plan;
}

std::optional<ctr::cgroup::group> make_group(const config& c) {
    // As Docker: below the floor the command could not even be set up.
    if (c.memory && *c.memory < ctr::cgroup::minimum_memory_max)
        bad_value("--memory", "'" + format_bytes(*c.memory) + "' is below the minimum of " +
                                  format_bytes(ctr::cgroup::minimum_memory_max) +
                                  ": a smaller limit cannot start a process (Docker refuses the same)");
    ctr::cgroup::limits limits;
    if (c.memory) limits.memory_max = std::to_string(*c.memory);
    if (c.memory_swap) {
        if (*c.memory_swap == "-1") {
            limits.swap_max = "max";
        } else {
            const std::uint64_t total = parse_size("--memory-swap", *c.memory_swap);
            if (total < *c.memory) bad_value("--memory-swap", "must be at least --memory (it is memory plus swap)");
            limits.swap_max = std::to_string(total - *c.memory);
        }
    }
    limits.cpus = c.cpus;
    limits.pids_max = c.pids_limit;
    limits.cpuset_cpus = c.cpuset_cpus;
    const bool wants_limits = c.memory || c.cpus || c.pids_limit || c.cpuset_cpus;
    // A ctr-run that was SIGKILLed could not remove its group; its creator
    // pid is dead, so this removes it now. Best effort: a caller without
    // cgroup rights finds nothing to do or is told below.
    try {
        ctr::cgroup::reap_stale("ctr-run");
    } catch (const ctr::error&) {
    }
    try {
        return std::optional<ctr::cgroup::group>(std::in_place, ctr::cgroup::options{.prefix = "ctr-run", .limits = limits});
    } catch (const ctr::error&) {
        // Without limits the group is only for the figures (peak memory,
        // OOM kills); a rootless caller often may not make one.
        if (wants_limits) throw;
        return std::nullopt;
    }
}

}  // namespace

int run_command(const config& c) {
    const bool privileged = geteuid() == 0;
    const bool rootless = c.rootless || !privileged;

    ctr::process::options options{
        .env = {.inherit = !c.clear_env, .set = c.env},
        .cwd = c.workdir.empty() ? std::string("/") : c.workdir,
        .timeout = c.timeout,
    };
    options.namespaces = ctr::ns::pid | ctr::ns::mount | ctr::ns::uts | ctr::ns::ipc | ctr::ns::cgroup;
    if (c.network == network_mode::none) options.namespaces = options.namespaces | ctr::ns::network;
    if (c.network == network_mode::veth) options.network = ctr::net::veth{};
    // Published ports are bound before anything starts, so a busy port fails
    // the run (125) before the command could print a word.
    std::optional<ctr::net::port_forwarder> ports;
    if (!c.publish.empty()) ports.emplace(c.publish);
    if (rootless || root_in_user_namespace(c)) options.namespaces = options.namespaces | ctr::ns::user;
    options.security = confinement(c);
    options.hostname = c.hostname;
    options.init = !c.no_init;
    if (c.uid) {
        // Root of the host drops its supplementary groups too; inside a user
        // namespace the library already did, where the kernel allows it.
        if (!rootless) options.groups = std::vector<gid_t>{};
        options.gid = c.gid;
        options.uid = c.uid;
    }

    // The sandbox dies with this process, however it ends (SIGKILL too);
    // what a killed ctr-run leaves outside the sandbox (its cgroup, an
    // overlay's scratch layer) the next run removes (docs/lifecycle.md).
    // With --no-init the command is pid 1 and nothing supervises it: it gets
    // the parent-death signal instead (this program has one thread), and its
    // namespace ends with it.
    options.die_with_owner = !c.no_init;
    options.die_with_parent = c.no_init;

    std::optional<scratch_layer> scratch;
    if (!c.overlay.empty()) {
        scratch_layer::reap_stale_scratch(rootless);
        scratch.emplace();
        if (rootless) scratch->removed_in_user_namespace();
        // The sandbox's root writes the upper layer: give it to the host id
        // that root inside maps to.
        if (root_in_user_namespace(c)) scratch->give_to(mapped_root(options.id_maps));
    }
    options.root = filesystem_plan(c, scratch ? &*scratch : nullptr);

    // Declared before the child: the group must outlive it.
    std::optional<ctr::cgroup::group> group = make_group(c);
    if (group) options.cgroup = &*group;

    const bool interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    std::optional<pty> terminal;
    if (interactive) {
        terminal = open_pty();
        const int slave = terminal->slave.get();
        options.std_in = options.std_out = options.std_err = ctr::process::stdio::from_fd(slave);
        options.new_session = true;
        options.controlling_terminal = true;
    }

    install_signal_forwarding();
    ctr::process::child child = ctr::process::spawn(c.command, options);
    start_forwarding(child.pidfd());
    if (ports) ports->start(child.network()->container_address.address);
    ctr::process::result r;
    if (terminal) {
        terminal->slave.reset();
        r = relay(child, terminal->master.get());
    } else {
        r = child.wait();
    }
    child_pidfd = -1;

    if (c.result_json) print_json(&r, {});
    if (r.oom_killed) {
        std::cerr << "ctr-run: out of memory: the command was killed by the kernel's OOM killer at the memory limit"
                  << (group && group->memory_max_bytes() ? " of " + format_bytes(*group->memory_max_bytes()) : "")
                  << " (--memory)" << std::endl;
    }
    if (r.timed_out) {
        std::cerr << "ctr-run: timed out after " << std::chrono::duration<double>(c.timeout).count()
                  << " s (--timeout)" << std::endl;
        return exit_timed_out;
    }
    if (r.signal) return 128 + *r.signal;
    return r.exit_code.value_or(exit_runtime_failed);
}


}  // namespace ctr_run
