#include "oci/container_cgroup.hpp"

#include "oci/state.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ctr_run::oci {

namespace {

// Whether the request asks for anything a group must enforce.
bool asks_for_limits(const cgroup_request& request) {
    const ctr::cgroup::limits& l = request.limits;
    return l.memory_max || l.memory_high || l.swap_max || l.cpus || l.cpu_weight || l.cpuset_cpus || l.cpuset_mems ||
           l.pids_max || l.io_weight || !l.io_max.empty() || l.memory_reservation || l.cpu_shares ||
           !l.hugepages.empty();
}

// linux.resources.devices onto the library's rules, then the devices every
// container has, allowed after them (the last matching rule decides), as
// runc does: Podman's "deny all" must not take /dev/null away.
std::vector<ctr::cgroup::device_rule> device_rules(const std::vector<device_rule>& requested) {
    std::vector<ctr::cgroup::device_rule> rules;
    if (requested.empty()) return rules;
    const auto number = [](const std::optional<std::int64_t>& n) -> std::optional<std::uint32_t> {
        if (!n || *n < 0) return std::nullopt;
        return static_cast<std::uint32_t>(*n);
    };
    for (const auto& r : requested)
        rules.push_back({.allow = r.allow, .type = r.type, .major = number(r.major), .minor = number(r.minor),
                         .access = r.access});
    const auto allow = [&](char type, std::optional<std::uint32_t> major, std::optional<std::uint32_t> minor,
                           const char* access) {
        rules.push_back({.allow = true, .type = type, .major = major, .minor = minor, .access = access});
    };
    allow('c', std::nullopt, std::nullopt, "m");  // mknod of any node (using one needs a rule)
    allow('b', std::nullopt, std::nullopt, "m");
    allow('c', 1, 3, "rwm");             // null
    allow('c', 1, 5, "rwm");             // zero
    allow('c', 1, 7, "rwm");             // full
    allow('c', 1, 8, "rwm");             // random
    allow('c', 1, 9, "rwm");             // urandom
    allow('c', 5, 0, "rwm");             // tty
    allow('c', 5, 1, "rwm");             // console
    allow('c', 5, 2, "rwm");             // ptmx
    allow('c', 136, std::nullopt, "rwm");  // the pty slaves of /dev/pts
    allow('c', 10, 200, "rwm");          // net/tun
    return rules;
}

}  // namespace

std::optional<ctr::cgroup::group> make_container_group(const cgroup_request& request) {
    ctr::cgroup::options options;
    options.path = request.path;
    options.limits = request.limits;
    options.limits.devices = device_rules(request.devices);
    try {
        return ctr::cgroup::group(options);
    } catch (const ctr::error& e) {
        // Without the rights to make groups (an unprivileged caller without
        // delegation, rootless Podman on cgroup v1), a container that asks
        // for no limits runs without a group of its own, as with runc.
        const int code = e.code().value();
        if ((code == EACCES || code == EPERM || code == EROFS) && !asks_for_limits(request)) return std::nullopt;
        throw runtime_failure("linux.cgroupsPath '" + request.path + "': " + e.what());
    }
}

void forget_container_group(ctr::cgroup::group& group) { group.release(); }

std::optional<ctr::cgroup::group> open_container_group(const std::string& path) {
    try {
        return ctr::cgroup::group::open(path);
    } catch (const ctr::error& e) {
        if (e.code().value() == ENOENT) return std::nullopt;
        throw runtime_failure("cgroup '" + path + "': " + e.what());
    }
}

void signal_container_group(ctr::cgroup::group& group, int sig) {
    for (const pid_t pid : group.pids()) {
        // A process that ended since pids() read it is skipped.
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        if (pidfd < 0) continue;
        ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
        ::close(pidfd);
    }
}

void remove_container_group(ctr::cgroup::group& group) { group.remove(); }

}  // namespace ctr_run::oci
