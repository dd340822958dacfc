#pragma once
// ctr::security: what a sandboxed command may still do once it runs.
//
// Four layers, applied in the child in this order after the root
// filesystem, rlimits, fds and credentials (see detail::launch_phase):
// capabilities (bounding, permitted, effective, inheritable, ambient and
// securebits), a Landlock ruleset (<ctr/landlock.hpp>), no_new_privs, then a
// seccomp filter, right before exec.
// The library takes nothing away unless asked; `security::confined()` is
// the set ctr-run uses by default, and docs/security.md says what each
// layer stops.

#include <ctr/capabilities.hpp>
#include <ctr/detail/security_options.hpp>
#include <ctr/seccomp.hpp>

#include <memory>
#include <optional>

namespace ctr::detail {
// security::confined()'s filter: the default profile, compiled once.
template <typename>
struct default_seccomp_profile {
    template <class = void>
    static std::shared_ptr<const seccomp::filter> make() { return seccomp::default_profile(); }
};
}  // namespace ctr::detail
