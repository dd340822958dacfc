#pragma once
// ctr::security: what a sandboxed command may still do once it runs.
//
// Three layers, applied in the child in this order after the root
// filesystem, rlimits, fds and credentials (see detail::launch_phase):
// capabilities (bounding, permitted, effective, inheritable, ambient and
// securebits), no_new_privs, then a seccomp filter, right before exec.
// The library takes nothing away unless asked; `security::confined()` is
// the set ctr-run uses by default, and docs/security.md says what each
// layer stops.

#include <ctr/capabilities.hpp>
#include <ctr/seccomp.hpp>

#include <memory>
#include <optional>

namespace ctr {

struct security {
    // The capabilities the command keeps, in every set; empty `keep`: none.
    // Unset: the launch's own capabilities are left as they are (all of
    // them for root, or for root of a new user namespace).
    std::optional<caps::policy> capabilities{};
    // PR_SET_NO_NEW_PRIVS: exec can never grant more privileges (setuid and
    // file capabilities stop working), and it lets an unprivileged process
    // install a seccomp filter.
    bool no_new_privileges = false;
    // Installed last, right before exec; compiled once and shared between
    // launches. Null: no filter. Without no_new_privileges the filter is
    // installed before capabilities are dropped, while CAP_SYS_ADMIN may
    // still allow it (runc's order).
    std::shared_ptr<const seccomp::filter> seccomp{};

    // Podman's default capability set, no_new_privs and the default seccomp
    // profile: root inside cannot mount, load modules, make namespaces,
    // bpf, perf, set the clock, or open files by handle.
    static security confined() {
        return {.capabilities = caps::policy{.keep = caps::default_set()},
                .no_new_privileges = true,
                .seccomp = seccomp::default_profile()};
    }
    // Nothing taken away: the name says what it means (ctr-run --privileged).
    static security unconfined() { return {}; }

    bool takes_anything_away() const noexcept { return capabilities || no_new_privileges || seccomp; }
};

}  // namespace ctr
