#pragma once
// ctr::security as spawn takes it (options::security): which capabilities,
// no_new_privs, which seccomp filter and which Landlock ruleset, as plain
// data. security.hpp (the header to include) has the filters and the launch
// layer that applies them, so that a program that spawns without them
// compiles none of that.

#include <ctr/capabilities.hpp>
#include <ctr/landlock.hpp>

#include <memory>
#include <optional>

namespace ctr::seccomp {
class filter;
}

namespace ctr::detail {
// Defined by <ctr/security.hpp>: what security::confined() installs.
template <typename>
struct default_seccomp_profile;
template <typename T>
concept is_complete = requires { sizeof(T); };
}  // namespace ctr::detail

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
    // Which files and TCP ports the command may use (<ctr/landlock.hpp>).
    // Applied after capabilities, before no_new_privs and seccomp. The
    // kernel lets only a process with no_new_privs (or CAP_SYS_ADMIN)
    // confine itself, so a ruleset sets no_new_privs too, whatever
    // no_new_privileges says: setuid programs stop granting privileges.
    std::optional<landlock::ruleset> landlock{};

    // Podman's default capability set, no_new_privs and the default seccomp
    // profile: root inside cannot mount, load modules, make namespaces,
    // bpf, perf, set the clock, or open files by handle.
    // A template only so that its use, not this header, needs seccomp's
    // default profile: <ctr/security.hpp> brings it.
    template <typename Profile = detail::default_seccomp_profile<void>>
    static security confined() {
        static_assert(detail::is_complete<Profile>,
                      "ctr::security::confined() uses seccomp's default profile: include <ctr/security.hpp>");
        return {.capabilities = caps::policy{.keep = caps::default_set()},
                .no_new_privileges = true,
                .seccomp = Profile::make()};
    }
    // Nothing taken away: the name says what it means (ctr-run --privileged).
    template <class = void>
    static security unconfined() { return {}; }

    template <class = void>
    bool takes_anything_away() const noexcept {
        return capabilities || no_new_privileges || seccomp || landlock.has_value();
    }
};

}  // namespace ctr
