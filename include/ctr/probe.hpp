#pragma once
// ctr::probe(): what this kernel and host let ctr do, and why not where not.

#include <ctr/detail/cgroup_layout.hpp>
#include <ctr/detail/child_program.hpp>
#include <ctr/detail/clone.hpp>
#include <ctr/detail/file.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/landlock.hpp>
#include <ctr/ns.hpp>

#include <linux/close_range.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/utsname.h>

#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr {

struct feature {
    bool available = false;
    std::string detail{};  // a version or note when available, the reason when not
};

// cgroup_layout and its to_string() are in detail/cgroup_layout.hpp, beside the
// parsing that cgroup::group shares with probe().

struct host_probe {
    std::string kernel_release;
    feature clone3;
    feature pidfd;
    feature clone_into_cgroup;
    feature close_range_cloexec;
    feature user_namespaces;
    feature time_namespaces;
    feature new_mount_api;
    feature mount_setattr;
    feature openat2;
    // "ABI N: " and what that ABI enforces, feature by feature.
    feature landlock;
    int landlock_abi = 0;  // 0: none
    cgroup_layout cgroups = cgroup_layout::none;
    std::string cgroup_detail;

    // Every feature with its name, in a fixed order, for printing. Copies,
    // so the list stays valid when the probe was a temporary.
    template <class = void>
    std::vector<std::pair<std::string_view, feature>> features() const {
        // Views, not literals: a pair from each length of literal would be
        // a constructor of its own to check, in every includer's compile.
        using namespace std::string_view_literals;
        return {{"clone3"sv, clone3},
                {"pidfd"sv, pidfd},
                {"clone_into_cgroup"sv, clone_into_cgroup},
                {"close_range_cloexec"sv, close_range_cloexec},
                {"user_namespaces"sv, user_namespaces},
                {"time_namespaces"sv, time_namespaces},
                {"new_mount_api"sv, new_mount_api},
                {"mount_setattr"sv, mount_setattr},
                {"openat2"sv, openat2},
                {"landlock"sv, landlock}};
    }
};

// One line a feature: "name: yes (detail)" or "name: no (reason)".
template <class = void>
inline std::string to_string(const host_probe& p) {
    std::string out = "kernel: " + p.kernel_release + '\n';
    for (const auto& [name, f] : p.features()) {
        out.append(name).append(": ").append(f.available ? "yes" : "no");
        if (!f.detail.empty()) out.append(" (").append(f.detail).append(")");
        out += '\n';
    }
    out.append("cgroups: ").append(to_string(p.cgroups));
    if (!p.cgroup_detail.empty()) out.append(" (").append(p.cgroup_detail).append(")");
    out += '\n';
    return out;
}

// The same, to a stream. A template, so that this header needs only
// <iosfwd>: <ostream> is the caller's, who has it to print at all.
template <typename Traits>
std::basic_ostream<char, Traits>& operator<<(std::basic_ostream<char, Traits>& out, const host_probe& p) {
    return out << to_string(p);
}

namespace detail {

using ns::detail::errno_text;

template <class = void>
inline int probe_child_exit(void*) { return 0; }

template <class = void>
inline feature probe_user_namespaces() {
    child_stack stack;
    if (const long r = stack.allocate(); r < 0) return {false, "cannot allocate a stack: " + errno_text(r)};
    clone_args args{};
    args.flags = CLONE_NEWUSER | CLONE_PIDFD;
    int pidfd = -1;
    args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<std::uint64_t>(stack.lowest());
    args.stack_size = child_stack::usable_size;
    long pid = sys::clone3(&args, sizeof args, probe_child_exit, nullptr);
    if (pid == -ENOSYS) pid = sys::clone(probe_child_exit, stack.top(), CLONE_NEWUSER | CLONE_PIDFD | SIGCHLD, nullptr, &pidfd);
    if (pid < 0) return {false, ns::detail::user_namespace_blocker(pid)};
    siginfo_t info{};
    sys::waitid(P_PIDFD, pidfd, &info, WEXITED, nullptr);
    sys::close(pidfd);
    if (auto apparmor = read_first_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
        apparmor && *apparmor == "1" && raw::call(SYS_geteuid) != 0)
        return {true, "created, but AppArmor may deny capabilities inside (apparmor_restrict_unprivileged_userns=1)"};
    return {true, {}};
}

template <class = void>
inline feature probe_clone_into_cgroup(const feature& clone3) {
    if (!clone3.available) return {false, "needs clone3"};
    // A closed cgroup fd: a kernel that knows CLONE_INTO_CGROUP rejects it
    // with EBADF before it creates anything; an older one says EINVAL.
    clone_args args{};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = 0x7ffffffe;
    const long r = raw::call(SYS_clone3, &args, sizeof args);
    if (r == 0) sys::exit_group(0);  // cannot happen for a closed fd; never continue in a stray child
    if (r > 0) {
        siginfo_t info{};
        sys::waitid(P_PID, static_cast<int>(r), &info, WEXITED, nullptr);
        return {true, {}};
    }
    if (r == -EBADF) return {true, {}};
    return {false, "the kernel rejects it (Linux 5.7 or later needed): " + errno_text(r)};
}

template <class = void>
inline void probe_cgroups(host_probe& p) {
    const auto mountinfo = read_small_file("/proc/self/mountinfo");
    if (!mountinfo) {
        p.cgroup_detail = "cannot read /proc/self/mountinfo";
        return;
    }
    std::vector<std::string> v1_controllers;
    std::string v2_mount;
    for (const auto& m : parse_cgroup_mounts(*mountinfo)) {
        if (m.v2 && v2_mount.empty()) v2_mount = m.mount_point;
        if (!m.v2) v1_controllers.insert(v1_controllers.end(), m.controllers.begin(), m.controllers.end());
    }
    std::string v2_controllers;
    if (!v2_mount.empty()) v2_controllers = read_first_line(v2_mount + "/cgroup.controllers").value_or("");
    if (!v1_controllers.empty() && !v2_mount.empty()) p.cgroups = cgroup_layout::hybrid;
    else if (!v1_controllers.empty()) p.cgroups = cgroup_layout::v1;
    else if (!v2_mount.empty()) p.cgroups = cgroup_layout::v2;
    std::string detail;
    if (!v1_controllers.empty()) {
        detail += "v1 controllers:";
        for (const auto& c : v1_controllers) detail += " " + c;
    }
    if (!v2_mount.empty()) {
        if (!detail.empty()) detail += "; ";
        detail += "v2 at " + v2_mount + " with controllers: " + (v2_controllers.empty() ? "none" : v2_controllers);
    }
    p.cgroup_detail = detail;
}

}  // namespace detail

// Asks the kernel, without side effects beyond short-lived probe children.
template <class = void>
inline host_probe probe() {
    using detail::errno_text;
    namespace sys = detail::sys;
    namespace raw = detail::raw;
    host_probe p;
    utsname name{};
    if (uname(&name) == 0) p.kernel_release = name.release;

    // clone3 with a zero size always fails: EINVAL if the call exists.
    if (const long r = raw::call(SYS_clone3, nullptr, 0); r == -ENOSYS)
        p.clone3 = {false, "ENOSYS: Linux older than 5.3, or a seccomp filter refuses it; clone(2) is used instead"};
    else
        p.clone3 = {true, {}};

    if (const long fd = sys::pidfd_open(static_cast<int>(sys::getpid()), 0); fd >= 0) {
        sys::close(static_cast<int>(fd));
        p.pidfd = {true, {}};
    } else {
        p.pidfd = {false, "pidfd_open: " + errno_text(fd) + " (Linux 5.3 or later needed)"};
    }

    p.clone_into_cgroup = detail::probe_clone_into_cgroup(p.clone3);

    if (const long r = sys::close_range(~0U - 1, ~0U - 1, CLOSE_RANGE_CLOEXEC); r == 0)
        p.close_range_cloexec = {true, {}};
    else
        p.close_range_cloexec = {false, errno_text(r) + " (Linux 5.11 or later); /proc/self/fd is walked instead"};

    p.user_namespaces = detail::probe_user_namespaces();

    if (raw::call(SYS_access, "/proc/self/ns/time", F_OK) == 0) p.time_namespaces = {true, {}};
    else p.time_namespaces = {false, "no /proc/self/ns/time (Linux 5.6 or later with CONFIG_TIME_NS)"};

    // Each call is made so that it fails on its arguments if the kernel has it.
    if (const long r = raw::call(SYS_open_tree, -1, "", 0); r == -ENOSYS)
        p.new_mount_api = {false, "open_tree: ENOSYS (Linux 5.2 or later); mount(2) is used instead"};
    else
        p.new_mount_api = {true, {}};
    if (const long r = raw::call(SYS_mount_setattr, -1, "", 0, nullptr, 0); r == -ENOSYS)
        p.mount_setattr = {false, "ENOSYS (Linux 5.12 or later); each submount is remounted instead"};
    else
        p.mount_setattr = {true, {}};

    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_MAGICLINKS;
    if (const long fd = raw::call(SYS_openat2, AT_FDCWD, "/", &how, sizeof how); fd >= 0) {
        sys::close(static_cast<int>(fd));
        p.openat2 = {true, {}};
    } else {
        p.openat2 = {false, "openat2: " + errno_text(fd) + " (Linux 5.6 or later)"};
    }

    if (const long abi = sys::landlock_create_ruleset(nullptr, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */); abi > 0) {
        p.landlock_abi = static_cast<int>(abi);
        std::string detail = "ABI " + std::to_string(abi) + ":";
        for (const landlock::detail::abi_feature& f : landlock::detail::abi_features)
            if (f.abi <= abi) detail.append(f.abi == 1 ? " " : "; ").append(f.what);
        p.landlock = {true, std::move(detail)};
    } else if (abi == -EOPNOTSUPP)
        p.landlock = {false, "built in but disabled at boot (add landlock to the lsm= kernel parameter)"};
    else
        p.landlock = {false, errno_text(abi) + " (Linux 5.13 or later with CONFIG_SECURITY_LANDLOCK)"};

    detail::probe_cgroups(p);
    return p;
}

}  // namespace ctr
