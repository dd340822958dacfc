#pragma once
// What the run command makes of a config before it spawns: the sandbox's
// filesystem (a mount plan, with the files --add-host and --dns generate),
// its confinement, its cgroup, its environment, and the checks of values
// against this machine (--cpus, --cpuset-cpus).

#include "flags.hpp"
#include "lookup.hpp"
#include "oci/seccomp_profile.hpp"
#include "output.hpp"
#include "scratch.hpp"

#include <ctr/ctr.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace ctr_run {

// The host ids that uid and gid 0 inside map to.
inline std::pair<uid_t, gid_t> mapped_root(const ctr::ns::id_maps& wanted) {
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
inline bool root_in_user_namespace(const config& c) { return geteuid() == 0 && !c.userns_host && !c.rootless; }
// Idmapping a host filesystem needs CAP_SYS_ADMIN over it: root of the
// initial user namespace. Root of another one (a rootless outer sandbox)
// maps its own ids into the sandbox, so files keep their owners without it.
inline bool in_initial_user_namespace() {
    std::ifstream map("/proc/self/uid_map");
    std::string first_line;
    std::getline(map, first_line);
    return first_line.find("4294967295") != std::string::npos;
}
// Where the filesystem cannot idmap (tmpfs before Linux 6.3), the bind is
// plain: root-owned files show as nobody and stay unchanged by the
// sandbox's root (docs/ctr-run.md).
inline ctr::mount::idmapping binds_idmapping(const config& c) {
    return root_in_user_namespace(c) && in_initial_user_namespace() ? ctr::mount::idmapping::when_supported
                                                                     : ctr::mount::idmapping::none;
}

// --security-opt seccomp=PATH: the profile, its includes/excludes checked
// against the capabilities the run keeps, as Docker checks them.
inline std::shared_ptr<const ctr::seccomp::filter> profile_filter(const std::string& path, ctr::caps::set keep) {
    try {
        oci::seccomp_context context;
        context.capabilities = keep;
        return oci::load_seccomp_profile(path, context);
    } catch (const oci::seccomp_error& e) {
        bad_value("--security-opt", std::string("seccomp profile ") + e.what());
    }
}

// Whether the sandbox has a /tmp for the default Landlock rule: the host's
// root gets a private one; a --rootfs or --overlay root has one where a
// layer has it or a flag mounts one there.
inline bool sandbox_has_tmp(const config& c) {
    if (!c.rootfs && c.overlay.empty()) return true;
    for (const auto& t : c.tmpfs)
        if (t.target == "/tmp") return true;
    for (const auto& v : c.volumes)
        if (v.target == "/tmp") return true;
    std::vector<std::string> layers = c.overlay;
    if (c.rootfs) layers.push_back(*c.rootfs);
    std::error_code ec;
    for (const auto& layer : layers)
        if (std::filesystem::is_directory(layer + "/tmp", ec)) return true;
    return false;
}

// --landlock: the rules asked for, over the defaults (docs/ctr-run.md):
// the whole root readable and executable, the devices of /dev readable and
// writable (/dev/null, a terminal's ioctls), /dev/shm and /tmp writable.
// Best effort for what refines a file rule (truncate, device ioctls, moving
// between directories); refused where the kernel would leave the asked-for
// confinement out altogether.
inline std::optional<ctr::landlock::ruleset> landlock_ruleset(const config& c) {
    namespace fs = ctr::landlock::fs;
    const landlock_request& asked = c.landlock;
    if (!asked.enabled) return std::nullopt;
    const int abi = ctr::landlock::abi();
    if (abi == 0)
        bad_value("--landlock", "this kernel has no Landlock, or it is disabled at boot (it needs Linux 5.13 and "
                                "landlock in the lsm= boot parameter)");
    if (!asked.ports.empty() && abi < 4)
        bad_value("--landlock", "TCP port rules need Landlock ABI 4 (Linux 6.7); this kernel has ABI " +
                                    std::to_string(abi));
    ctr::landlock::ruleset rules;
    if (asked.defaults) {
        rules.execute("/");
        rules.allow("/dev", fs::read | fs::write | fs::ioctl_dev);
        rules.write("/dev/shm");
        if (sandbox_has_tmp(c)) rules.write("/tmp");
    }
    for (const auto& rule : asked.paths) rules.allow(rule.path, rule.rights);
    for (const auto& rule : asked.ports) {
        if (rule.what == ctr::landlock::tcp::bind) rules.bind_tcp(rule.port);
        else rules.connect_tcp(rule.port);
    }
    if (rules.paths().empty() && rules.ports().empty())
        bad_value("--landlock", "no-defaults leaves no rule: give the paths the command needs (rx=/usr,rw=/out)");
    return rules;
}

// What the command may still do: Podman's default capabilities with
// --cap-add/--cap-drop applied, no_new_privs and the default seccomp
// profile, unless --privileged or the --security-opt switches say otherwise.
inline ctr::security confinement(const config& c) {
    if (c.privileged) return ctr::security::unconfined();
    ctr::caps::set keep = ctr::caps::default_set();
    for (const auto& name : c.cap_drop) keep = name == "ALL" ? ctr::caps::set::none() : keep - ctr::caps::set{ctr::caps::parse(name)};
    for (const auto& name : c.cap_add) keep = name == "ALL" ? ctr::caps::set::all() : keep | ctr::caps::set{ctr::caps::parse(name)};
    keep &= ctr::caps::supported();
    std::shared_ptr<const ctr::seccomp::filter> filter;
    if (c.seccomp_profile) filter = profile_filter(*c.seccomp_profile, keep);
    else if (c.seccomp) filter = ctr::seccomp::default_profile();
    return {.capabilities = ctr::caps::policy{.keep = keep},
            .no_new_privileges = c.no_new_privileges,
            .seccomp = std::move(filter),
            .landlock = landlock_ruleset(c)};
}

// /proc for the sandbox: a fresh one for its own pid namespace, or, with
// --pid host, the host's bound in (a new proc of the host's pid namespace
// cannot be mounted from the sandbox's user namespace).
inline void add_proc(ctr::mount::plan& plan, const config& c) {
    if (c.pid_host) plan.bind("/proc", "/proc");
    else plan.proc();
}

// The files --add-host and --dns make: /etc/hosts and /etc/resolv.conf as
// the sandbox would see them, changed as asked (resolv_conf.hpp makes the
// latter, for its network too), written in a private directory and bound
// read-only over the sandbox's, so that neither the rootfs nor the host's
// files change.
inline void add_generated_files(ctr::mount::plan& plan, const config& c, private_files& files,
                                const std::optional<std::string>& resolv_conf) {
    // A --rootfs without the file gets it in a skeleton of its /etc
    // (filesystem_plan), not in the rootfs directory.
    const auto bind_over = [&](const std::string& target, const std::string& text) {
        plan.bind(files.write(target.substr(target.rfind('/') + 1), text), target, {.read_only = true});
    };
    if (!c.add_hosts.empty()) {
        std::string hosts = read_sandbox_file(c, "/etc/hosts")
                                .value_or("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        if (!hosts.empty() && hosts.back() != '\n') hosts += '\n';
        for (const auto& [name, address] : c.add_hosts) hosts += address + "\t" + name + "\n";
        bind_over("/etc/hosts", hosts);
    }
    if (resolv_conf) bind_over("/etc/resolv.conf", *resolv_conf);
}

inline ctr::mount::plan filesystem_plan(const config& c, scratch_layer* scratch, private_files* files,
                                        const std::optional<std::string>& resolv_conf = std::nullopt) {
    namespace mnt = ctr::mount;
    mnt::plan plan;
    if (!c.overlay.empty()) {
        std::vector<std::string> lower = c.overlay;
        if (c.rootfs) lower.push_back(*c.rootfs);
        plan.overlay("/", {.lower = lower, .upper = scratch->upper(), .work = scratch->work(),
                           .idmap_lower = binds_idmapping(c)});
        add_proc(plan, c);
        plan.dev();
    } else if (c.rootfs) {
        plan = mnt::plan{.rootfs = *c.rootfs, .read_only_root = c.read_only};
        add_proc(plan, c);
        plan.dev();
    } else if (c.pid_host) {
        // host_readonly() with the host's /proc.
        plan = mnt::plan{.read_only_root = true};
        plan.nosuid_root = true;
        plan.nodev_root = true;
        plan.tmpfs("/tmp", {.mode = 01777, .read_only = c.read_only});
        add_proc(plan, c);
        plan.dev("/dev").mask("/sys/firmware");
    } else {
        plan = mnt::host_readonly();
        // --read-only: the private /tmp too, as Docker's root has no other
        // writable place than its volumes and tmpfs mounts.
        if (c.read_only) plan.set_attributes("/tmp", {.read_only = true});
    }
    // As Docker, a mount point the root lacks is made, but neither in the
    // --rootfs directory nor on the host: in a tmpfs skeleton of the
    // directory it goes in (mount::missing_mount_points). An --overlay root
    // takes them in its upper layer.
    if (c.overlay.empty()) plan.missing_points = mnt::missing_mount_points::make_in_skeleton;
    // /dev/shm: the host's with --ipc host, else the sandbox's own tmpfs
    // (the minimal /dev's), sized by --shm-size.
    if (c.ipc_host) plan.bind("/dev/shm", "/dev/shm");
    else if (c.shm_size) plan.tmpfs("/dev/shm", {.size = std::to_string(*c.shm_size), .mode = 01777});
    // In a user namespace of root's making, the rootfs and volumes are
    // idmapped: files keep the owners they have on disk as the sandbox sees
    // them, and what its root writes belongs to root on the host (Docker's
    // ownership). The host's own root stays unmapped: its root-only files
    // stay unreadable inside.
    const auto idmap = binds_idmapping(c);
    if (c.rootfs && c.overlay.empty()) plan.idmap_root = idmap;
    for (const auto& v : c.volumes) plan.bind(v.source, v.target, {.read_only = v.read_only, .idmap = idmap});
    for (const auto& t : c.tmpfs) plan.tmpfs(t.target, t.options);
    for (const auto& d : c.devices) {
        struct stat st {};
        if (stat(d.source.c_str(), &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
            bad_value("--device", "'" + d.source + "' is not a device node");
        // Not nodev: a device node is what this bind is for.
        plan.bind(d.source, d.target, {.recursive = false});
    }
    if (files) add_generated_files(plan, c, *files, resolv_conf);
    // -w DIR the root lacks is made, as Docker makes it: last, so that a
    // directory below a volume or tmpfs is made there, and otherwise (like a
    // mount point) in a skeleton, not in the --rootfs directory or the host.
    if (!c.workdir.empty()) plan.directory(c.workdir);
    return plan;
}

// As Docker: no more CPUs than there are.
inline void check_cpus(const config& c) {
    if (c.cpus) {
        if (const auto online = online_cpus(); online && *c.cpus > static_cast<double>(online->size())) {
            char range[96];
            std::snprintf(range, sizeof range, "the range is 0.01 to %.2f, as there are only %zu CPUs available",
                          static_cast<double>(online->size()), online->size());
            std::ostringstream given;
            given << *c.cpus;
            bad_value("--cpus", "'" + given.str() + "' is more than this machine has: " + range);
        }
    }
    if (c.cpuset_cpus) {
        const auto wanted = parse_cpu_list("--cpuset-cpus", *c.cpuset_cpus);
        if (const auto available = available_cpus()) {
            std::set<unsigned> missing;
            for (unsigned cpu : wanted)
                if (!available->contains(cpu)) missing.insert(cpu);
            if (!missing.empty())
                bad_value("--cpuset-cpus", "CPU " + format_cpu_list(missing) + (missing.size() > 1 ? " are" : " is") +
                                               " not available: the CPUs here are " + format_cpu_list(*available));
        }
    }
}

// A --memory under the floor was refused with the flags (flags.hpp).
inline std::optional<ctr::cgroup::group> make_group(const config& c) {
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
    // Docker's shares, 1024 the default, as cgroup v2's weight, 100 the
    // default (the library writes v1's cpu.shares back from the weight).
    if (c.cpu_shares) limits.cpu_weight = std::clamp<std::uint32_t>(*c.cpu_shares * 100 / 1024, 1, 10000);
    const bool wants_limits = c.memory || c.cpus || c.pids_limit || c.cpuset_cpus || c.cpu_shares;
    // A group costs a directory in every hierarchy, made and removed, and
    // an attach that can wait for an RCU grace period (about a third of a
    // plain run's time here): only for limits, or for the figures that
    // --result json reports (peak memory, OOM kills, the group's CPU time).
    if (!wants_limits && !c.result_json) return std::nullopt;
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

// Docker's environment: PATH, HOSTNAME, TERM with -t, HOME from the
// sandbox's /etc/passwd, then --env-file and -e (a later value of a key
// replaces an earlier one). Not the caller's, unless --env-host.
inline std::vector<std::pair<std::string, std::string>> environment(const config& c, const identity& id) {
    std::vector<std::pair<std::string, std::string>> env;
    const auto set = [&](const std::string& key, const std::string& value) {
        for (auto& [k, v] : env)
            if (k == key) {
                v = value;
                return;
            }
        env.emplace_back(key, value);
    };
    if (!c.env_host) {
        set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        if (!c.clear_env) {
            std::string hostname = c.hostname;
            if (hostname.empty()) {
                char name[256] = {};
                gethostname(name, sizeof name - 1);
                hostname = name;
            }
            set("HOSTNAME", hostname);
            if (c.tty) set("TERM", "xterm");
            set("HOME", id.home);
        }
    }
    for (const auto& file : c.env_files)
        for (const auto& [key, value] : read_env_file(file)) set(key, value);
    for (const auto& [key, value] : c.env) set(key, value);
    return env;
}

}  // namespace ctr_run
