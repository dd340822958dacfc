#pragma once
// Launch layer: the Landlock ruleset of ctr::security::landlock.
//
// The parent creates the ruleset (its handled rights fitted to the kernel's
// ABI) and adds the port rules; the fd goes above every fd the child maps,
// close-on-exec. The child, after its mounts, opens each rule's path as the
// command will see it (O_PATH), adds the rule, then sets no_new_privs,
// confines itself (landlock_restrict_self) and closes the ruleset, so that
// the command never holds it.

#include <ctr/detail/launch_plan.hpp>
#include <ctr/landlock.hpp>
#include <ctr/spawn_options.hpp>

#include <sys/prctl.h>
#include <sys/stat.h>

#include <string>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Opens op.data (a path) and allows op.b's rights beneath it in ruleset
// op.a; on a file that is not a directory, only the rights files have.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_landlock_add_path(const child_op& op) noexcept {
    const long fd = sys::openat(AT_FDCWD, static_cast<const char*>(op.data), O_PATH | O_CLOEXEC);
    if (fd < 0) return fd;
    auto allowed = static_cast<std::uint64_t>(op.b);
    struct stat st {};
    if (const long r = sys::fstatat(static_cast<int>(fd), "", &st, AT_EMPTY_PATH); r < 0) {
        sys::close(static_cast<int>(fd));
        return r;
    }
    if (!S_ISDIR(st.st_mode)) allowed &= landlock::fs::file_rights.bits;
    long r = 0;
    if (allowed != 0) {
        const landlock::detail::path_beneath_attr rule{allowed, static_cast<std::int32_t>(fd)};
        r = sys::landlock_add_rule(static_cast<int>(op.a), landlock::detail::rule_path_beneath, &rule, 0);
    }
    sys::close(static_cast<int>(fd));
    return r < 0 ? r : 0;
}

// no_new_privs, then the ruleset op.a on this process, with op.b as
// landlock_restrict_self's flags (the audit log switches); the ruleset's fd
// is closed either way. Async-signal-safe.
CTR_CHILD_CODE inline long child_landlock_apply(const child_op& op) noexcept {
    long r = sys::prctl(PR_SET_NO_NEW_PRIVS, 1);
    if (r >= 0) r = sys::landlock_restrict_self(static_cast<int>(op.a), static_cast<unsigned>(op.b));
    sys::close(static_cast<int>(op.a));
    return r < 0 ? r : 0;
}

template <class = void>
inline std::string landlock_rights_text(landlock::access rights) {
    return "rights 0x" + [](std::uint64_t bits) {
        std::string hex;
        do hex.insert(hex.begin(), "0123456789abcdef"[bits & 15]);
        while ((bits >>= 4) != 0);
        return hex;
    }(rights.bits);
}

template <class = void>
inline void plan_landlock(launch_plan& plan, const landlock::ruleset& rules) {
    constexpr std::uint64_t known = landlock::detail::file_rights_of(1 << 20);
    for (const landlock::path_rule& rule : rules.paths()) {
        if (rule.path.empty())
            throw error(step::add_landlock_rule, EINVAL, {}, "a Landlock path rule with an empty path: name a path");
        if (rule.rights.empty() || (rule.rights.bits & ~known) != 0)
            throw error(step::add_landlock_rule, EINVAL, rule.path,
                        landlock_rights_text(rule.rights) + ": give one or more of landlock::fs's rights");
    }
    if (!rules.restricts_filesystem() && !rules.restricts_tcp() && !rules.scopes_abstract_unix_sockets() &&
        !rules.scopes_signals())
        throw error(step::create_landlock_ruleset, EINVAL, {},
                    "the ruleset confines nothing: add a path or port rule, restrict_filesystem(), restrict_tcp() "
                    "or a scope");

    const int kernel_abi = landlock::abi();
    const landlock::detail::fit fitted = landlock::detail::fit_ruleset(rules, kernel_abi);
    if (rules.mode() == landlock::mode::required && !fitted.missing.empty()) {
        std::string missing;
        for (const std::string& line : fitted.missing) missing.append(line).append("; ");
        throw error(step::create_landlock_ruleset, EOPNOTSUPP, {},
                    "required, but " + missing + "or let landlock::mode::best_effort drop it");
    }
    const landlock::detail::ruleset_attr& attr = fitted.attr;
    // Best effort on a kernel that can enforce none of it: nothing to apply.
    if (attr.handled_access_fs == 0 && attr.handled_access_net == 0 && attr.scoped == 0) return;

    const long created = sys::landlock_create_ruleset(&attr, sizeof attr, 0);
    if (created < 0) {
        const int e = static_cast<int>(-created);
        throw error(step::create_landlock_ruleset, e, {},
                    e == EOPNOTSUPP ? "Landlock is built in but disabled: add landlock to the lsm= kernel parameter"
                    : e == ENOSYS   ? "this kernel has no Landlock: it needs Linux 5.13 with CONFIG_SECURITY_LANDLOCK"
                                    : "");
    }
    unique_fd made(static_cast<int>(created));
    // Above every fd the child maps: no dup3 of the fds phase may replace it.
    if (made.get() < plan.first_unmapped_fd) {
        const long moved = sys::fcntl(made.get(), F_DUPFD_CLOEXEC, plan.first_unmapped_fd);
        if (moved < 0) throw error(step::create_landlock_ruleset, static_cast<int>(-moved), {}, "moving its fd");
        made.reset(static_cast<int>(moved));
    }
    const int ruleset_fd = plan.keep(std::move(made)).get();

    if (attr.handled_access_net != 0)
        for (const landlock::port_rule& rule : rules.ports()) {
            const landlock::detail::net_port_attr port{static_cast<std::uint64_t>(rule.what), rule.port};
            if (const long r = sys::landlock_add_rule(ruleset_fd, landlock::detail::rule_net_port, &port, 0); r < 0)
                throw error(step::add_landlock_rule, static_cast<int>(-r),
                            std::string(rule.what == landlock::tcp::bind ? "bind" : "connect") + " TCP port " +
                                std::to_string(rule.port));
        }

    for (const landlock::path_rule& rule : rules.paths()) {
        const std::uint64_t rights = rule.rights.bits & attr.handled_access_fs;
        if (rights == 0) continue;  // best effort dropped all of its rights
        const std::string& path = plan.keep(rule.path);
        plan.add(launch_phase::landlock,
                 {.code = child_op_code::call, .step = step::add_landlock_rule, .a = ruleset_fd,
                  .b = static_cast<long>(rights), .data = path.c_str(), .run = child_landlock_add_path},
                 path, [&path](const child_report_view& report) -> error {
                     const char* fix = report.error == ENOENT
                                           ? "a rule's path must exist where the command sees it, after the "
                                             "sandbox's mounts: create it or drop the rule"
                                       : report.error == EACCES
                                           ? "the command cannot reach this path (search permission on a parent "
                                             "directory, after its change of user)"
                                           : "";
                     return error(step::add_landlock_rule, report.error, path, fix);
                 });
    }
    plan.add(launch_phase::landlock,
             {.code = child_op_code::call, .step = step::apply_landlock, .a = ruleset_fd,
              .b = static_cast<long>(fitted.restrict_self_flags), .run = child_landlock_apply});
}

}  // namespace ctr::process::detail
