#pragma once
// Launch layer: namespaces. Which ones the clone creates and which the
// child joins or unshares; host and domain names, time offsets, loopback;
// the id maps of a new user namespace (a parent step while the child waits)
// and the child becoming root in it; pid 1 (the init) or the time
// namespace's supervisor.

#include <ctr/detail/file.hpp>
#include <ctr/detail/launch_plan.hpp>
#include <ctr/spawn_options.hpp>

#include <string>
#include <utility>
#include <vector>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Runs newuidmap/newgidmap as a plain child; returns its exit code (-1 when
// it did not exit) and the first line of its stderr. Defined in process.hpp,
// after spawn.
template <class = void>
inline std::pair<int, std::string> run_id_map_helper_program(std::vector<std::string> argv);

template <class = void>
inline void write_proc_file(const std::string& path, const std::string& text, step s) {
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw error(s, static_cast<int>(-fd), path);
    const long written = sys::write(static_cast<int>(fd), text.data(), text.size());
    sys::close(static_cast<int>(fd));
    if (written < 0) throw error(s, static_cast<int>(-written), path, "writing \"" + text.substr(0, text.find('\n')) + "\"");
}

// Writes one of the child's id-map files; explains the one surprising
// refusal: a process that changed its ids without exec is not dumpable, and
// the /proc files of it and of its children belong to root.
template <class = void>
inline void write_id_map_file(const std::string& path, const std::string& text, step s) {
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd == -EACCES && sys::prctl(PR_GET_DUMPABLE) == 0)
        throw error(s, EACCES, path,
                    "this process is not dumpable (it changed its ids without exec), so its children's /proc files "
                    "belong to root; prctl(PR_SET_DUMPABLE, 1) first");
    if (fd >= 0) sys::close(static_cast<int>(fd));
    write_proc_file(path, text, s);
}

template <class = void>
inline void run_id_map_helper(const char* helper, pid_t pid, const std::vector<ns::id_range>& ranges, step s) {
    std::vector<std::string> argv{helper, std::to_string(pid)};
    for (const auto& r : ranges) {
        argv.push_back(std::to_string(r.inside));
        argv.push_back(std::to_string(r.outside));
        argv.push_back(std::to_string(r.count));
    }
    auto [code, message] = run_id_map_helper_program(std::move(argv));
    if (code != 0) throw error(s, EPERM, helper, message.empty() ? "it failed" : message);
}

// Writes the uid and gid maps of the child's new user namespace, directly
// or through newuidmap/newgidmap.
template <class = void>
inline void write_id_maps(pid_t pid, const ns::detail::resolved_id_maps& maps) {
    if (maps.use_helpers) {
        run_id_map_helper("/usr/bin/newuidmap", pid, maps.uid, step::write_uid_map);
        run_id_map_helper("/usr/bin/newgidmap", pid, maps.gid, step::write_gid_map);
        return;
    }
    const std::string base = "/proc/" + std::to_string(pid) + "/";
    if (maps.deny_setgroups) write_id_map_file(base + "setgroups", "deny", step::deny_setgroups);
    write_id_map_file(base + "uid_map", ns::detail::map_text(maps.uid), step::write_uid_map);
    write_id_map_file(base + "gid_map", ns::detail::map_text(maps.gid), step::write_gid_map);
}

// Where this process's argv and environment strings are (fields 48 to 51
// of /proc/self/stat), so that an init with a copy of our memory can blank
// them. Read once: they do not move.
struct caller_strings {
    std::uintptr_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};
template <class = void>
inline caller_strings read_caller_strings() {
    static const caller_strings found = [] {
        caller_strings out;
        const auto stat = ctr::detail::read_small_file("/proc/self/stat");
        if (!stat) return out;
        const auto close = stat->rfind(')');
        if (close == std::string::npos) return out;
        std::vector<std::uintptr_t> fields;  // fields[0] is field 3 (state) of proc(5)
        std::size_t at = close + 2;
        while (at < stat->size()) {
            const auto end = std::min(stat->find(' ', at), stat->size());
            std::uintptr_t value = 0;
            for (std::size_t i = at; i < end; ++i)
                if ((*stat)[i] >= '0' && (*stat)[i] <= '9') value = value * 10 + static_cast<std::uintptr_t>((*stat)[i] - '0');
            fields.push_back(value);
            at = end + 1;
        }
        if (fields.size() > 51 - 3) {
            out.arg_start = fields[48 - 3];
            out.arg_end = fields[49 - 3];
            out.env_start = fields[50 - 3];
            out.env_end = fields[51 - 3];
        }
        return out;
    }();
    return found;
}

// Validates the namespace options and adds the namespaces' steps.
template <class = void>
inline void plan_namespaces(launch_plan& plan, const options& opts) {
    ns::kinds wanted = opts.namespaces;
    if (opts.root) wanted = wanted | ns::mount;  // a root filesystem is built in a mount namespace of its own
    if (opts.network) wanted = wanted | ns::network;  // the veth's other end goes into a namespace of its own
    if (opts.pasta) wanted = wanted | ns::network;    // pasta's tap interface likewise
    if (opts.network && opts.pasta)
        throw error(step::prepare, EINVAL, {}, "options::network (veth) and options::pasta are two networks: give one");
    bool joins_user = false;
    for (const auto& j : opts.join) {
        joins_user = joins_user || j.which == ns::user;
        if (opts.network && j.which == ns::network)
            throw error(step::prepare, EINVAL, {}, "options::network makes a new network namespace; it cannot also join one");
        if (opts.pasta && j.which == ns::network)
            throw error(step::prepare, EINVAL, {}, "options::pasta makes a new network namespace; it cannot also join one");
    }
    const bool privileged = raw::call(SYS_geteuid) == 0;
    if (!wanted.empty() && !privileged && !joins_user) wanted = wanted | ns::user;
    if (joins_user && wanted.has(ns::user))
        throw error(step::prepare, EINVAL, {}, "cannot both join a user namespace and create one");
    if (joins_user && wanted.has(ns::pid))
        throw error(step::prepare, ENOTSUP, {},
                    "joining a user namespace while creating a pid namespace is not supported yet");
    plan.created = wanted;

    if ((!opts.hostname.empty() || !opts.domainname.empty()) && !wanted.has(ns::uts))
        throw error(step::prepare, EINVAL, opts.hostname, "a hostname needs a new uts namespace (ns::uts)");
    if (opts.hostname.size() > 64 || opts.domainname.size() > 64)
        throw error(step::prepare, ENAMETOOLONG, opts.hostname.size() > 64 ? opts.hostname : opts.domainname,
                    "host and domain names are at most 64 bytes");
    const bool has_offsets = opts.time_offsets.monotonic_seconds != 0 || opts.time_offsets.boottime_seconds != 0;
    if (has_offsets && !wanted.has(ns::time))
        throw error(step::prepare, EINVAL, {}, "time offsets need a new time namespace (ns::time)");

    // The time and cgroup namespaces are created by unshare in the child
    // (below); every other kind by the clone itself. A cgroup namespace made
    // by the clone would have the parent's cgroup as its root, not the group
    // the child is placed in.
    plan.request.flags = wanted.without(ns::time | ns::cgroup).flags();
    // The kernel refuses to let a process that shares its memory join a
    // user namespace, so that launch copies the parent's memory instead.
    if (joins_user) plan.request.memory = memory_mode::copied;

    for (const auto& j : opts.join) {
        int fd = -1;
        std::string what;
        if (const auto* path = std::get_if<std::string>(&j.source)) {
            const long opened = sys::openat(AT_FDCWD, path->c_str(), O_RDONLY | O_CLOEXEC);
            if (opened < 0) throw error(step::join_namespace, static_cast<int>(-opened), *path);
            fd = plan.keep(unique_fd(static_cast<int>(opened))).get();
            what = *path;
        } else {
            fd = std::get<int>(j.source);
            if (!fd_is_open(fd)) throw error(step::join_namespace, EBADF, fd_name(fd), "namespace fd is not open");
            what = std::string(ns::name(j.which)) + " namespace " + fd_name(fd);
        }
        // The user namespace goes first: joining it is what grants the
        // rights to join the others.
        plan.add(j.which == ns::user ? launch_phase::join_user : launch_phase::join_namespaces,
                 {.code = child_op_code::join_namespace, .step = step::join_namespace, .a = fd,
                  .b = static_cast<long>(j.which)},
                 what);
    }

    if (wanted.has(ns::user)) {
        const auto& maps = plan.keep(ns::detail::resolve_id_maps(opts.id_maps));
        plan.sync_channel();
        plan.while_child_waits([&maps](parent_step_context& child) { write_id_maps(child.pid, maps); });
        // Become root of the new namespace. Until now the child kept the
        // caller's ids, which the maps need not cover (root's default map
        // starts at 100000); uid 0 inside is always mapped. This comes after
        // the writes to /proc/self of create_namespaces: changing ids makes
        // the process non-dumpable, and its /proc files then belong to the
        // host's root.
        if (maps.may_setgroups)
            plan.add(launch_phase::become_root, {.code = child_op_code::set_groups, .step = step::set_groups, .a = 0});
        plan.add(launch_phase::become_root, {.code = child_op_code::set_gid, .step = step::set_gid, .a = 0}, "gid 0");
        plan.add(launch_phase::become_root, {.code = child_op_code::set_uid, .step = step::set_uid, .a = 0}, "uid 0");
    }

    if (wanted.has(ns::cgroup))
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::unshare, .step = step::create_namespaces, .a = CLONE_NEWCGROUP}, "cgroup");
    if (wanted.has(ns::time)) {
        // unshare(CLONE_NEWTIME) puts this process's children (and this
        // process, at exec) in the new namespace; its offsets can be set
        // only before anything is in it.
        const std::string& offsets = plan.keep("monotonic " + std::to_string(opts.time_offsets.monotonic_seconds) +
                                               " 0\nboottime " + std::to_string(opts.time_offsets.boottime_seconds) +
                                               " 0\n");
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::unshare, .step = step::create_namespaces, .a = CLONE_NEWTIME}, "time");
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::write_file, .step = step::set_time_offsets,
                  .a = static_cast<long>(offsets.size()), .data = "/proc/self/timens_offsets", .data2 = offsets.c_str()},
                 "/proc/self/timens_offsets");
    }
    if (!opts.hostname.empty()) {
        const std::string& name = plan.keep(opts.hostname);
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::set_hostname, .step = step::set_hostname, .a = static_cast<long>(name.size()),
                  .data = name.c_str()},
                 name);
    }
    if (!opts.domainname.empty()) {
        const std::string& name = plan.keep(opts.domainname);
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::set_domainname, .step = step::set_domainname,
                  .a = static_cast<long>(name.size()), .data = name.c_str()},
                 name);
    }
    if (wanted.has(ns::network))
        plan.add(launch_phase::create_namespaces, {.code = child_op_code::bring_up_loopback, .step = step::bring_up_loopback},
                 "lo");

    // pid 1 of a new pid namespace is the init unless asked otherwise. A
    // time namespace needs the same shape: its offsets can be set only
    // before any process is in it, and only children of the process that
    // unshared it enter it (older kernels, 6.1 among them, do not move the
    // process itself in at exec), so the command is started by a small
    // supervisor that then reaps it and forwards signals, like the init.
    // die_with_owner needs the same supervisor: it is what watches the owner
    // (see launch_lifetime.hpp).
    // Joining a pid namespace moves only the joiner's children into it, so
    // the command is started by such a supervisor too (outside the
    // namespace; an OCI runtime's exec).
    bool joins_pid = false;
    for (const auto& j : opts.join) joins_pid = joins_pid || j.which == ns::pid;
    if ((wanted.has(ns::pid) && opts.init) || wanted.has(ns::time) || opts.die_with_owner || joins_pid) {
        plan.uses_init = true;
        // The init lives as long as the sandbox. It gets a copy of our
        // memory rather than a share of it: then its /proc/1/cmdline and
        // environ can be blanked without touching ours, and nothing the
        // sandbox could read of it is the caller's (see seal_init).
        plan.request.memory = memory_mode::copied;
        if (const long r = plan.command_stack.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));
        init_state& init = plan.shared->init;
        init.command_stack_top = plan.command_stack.top();
        init.command_entry = child_command_main;
        init.view = &plan.view;
        const caller_strings strings = read_caller_strings();
        init.arg_start = strings.arg_start;
        init.arg_end = strings.arg_end;
        init.env_start = strings.env_start;
        init.env_end = strings.env_end;
        plan.add(launch_phase::init, {.code = child_op_code::become_init, .step = step::run_init, .data = &init});
    }
}

// The error for a failed clone: with namespaces, why they could not be made.
template <class = void>
inline error clone_error(const launch_plan& plan, long negative_errno) {
    const int code = static_cast<int>(-negative_errno);
    if (plan.created.empty()) return error(step::clone, code);
    std::string kinds;
    for (ns::kind k : ns::every_kind)
        if (plan.created.has(k)) kinds += (kinds.empty() ? "" : ",") + std::string(ns::name(k));
    if (plan.created.has(ns::user) && (code == EPERM || code == ENOSPC || code == EUSERS || code == EINVAL))
        return error(step::create_namespaces, code, kinds, ns::detail::user_namespace_blocker(negative_errno));
    if (code == EPERM)
        return error(step::create_namespaces, code, kinds,
                     "creating namespaces needs CAP_SYS_ADMIN; add a user namespace (ns::user) to do it unprivileged");
    return error(step::create_namespaces, code, kinds);
}

}  // namespace ctr::process::detail
