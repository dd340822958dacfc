#pragma once
// What the tests of ctr-run's no-namespace mode (ctr-run/no_namespaces.hpp)
// share: how a test puts ctr-run where user namespaces are refused. On a
// host whose own setting forbids them (the VM lane's boots with
// user.max_user_namespaces=0, and with kernel.unprivileged_userns_clone=0
// as an unprivileged user) ctr-run runs as it is; elsewhere an outer
// seccomp filter refuses them to it, as an outer container's would: clone
// and unshare with CLONE_NEWUSER fail with EPERM, clone3 (whose flags a
// filter cannot read) with ENOSYS, so that the library falls back to clone.
#include <ctr/process.hpp>
#include <ctr/seccomp.hpp>

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <memory>
#include <string>

namespace ctr_test {

// The setting of this host that forbids user namespaces to this process
// ("user.max_user_namespaces", "kernel.unprivileged_userns_clone"), or
// empty where none does. Read from /proc/sys, never written.
inline std::string user_namespaces_forbidden_by() {
    const auto setting = [](const char* file) {
        std::ifstream in(file);
        std::string value;
        return std::getline(in, value) ? value : std::string();
    };
    if (setting("/proc/sys/user/max_user_namespaces") == "0") return "user.max_user_namespaces";
    if (geteuid() != 0 && setting("/proc/sys/kernel/unprivileged_userns_clone") == "0")
        return "kernel.unprivileged_userns_clone";
    return {};
}

inline std::shared_ptr<const ctr::seccomp::filter> user_namespaces_refused_filter() {
    namespace sc = ctr::seccomp;
    static const auto outer = sc::builder{}
                                  .default_action(sc::action::allow())
                                  .rule("clone", sc::action::fail_with(EPERM), sc::arg(0).masked(CLONE_NEWUSER) != 0)
                                  .rule("unshare", sc::action::fail_with(EPERM), sc::arg(0).masked(CLONE_NEWUSER) != 0)
                                  .fail("clone3", ENOSYS)
                                  .build_shared();
    return outer;
}

// Options for spawning ctr-run so that it meets refused user namespaces:
// the outer filter (with no_new_privs, which an unprivileged filter needs),
// unless the host refuses them already.
inline void refuse_user_namespaces(ctr::process::options& o) {
    if (!user_namespaces_forbidden_by().empty()) return;
    o.security.no_new_privileges = true;
    o.security.seccomp = user_namespaces_refused_filter();
}

// What ctr-run says on stderr when it goes on without namespaces.
inline constexpr const char* ran_without_namespaces = "running without namespaces";

}  // namespace ctr_test
