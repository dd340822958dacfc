#pragma once
// Namespaces: the kinds, references to existing ones, id maps, and making a
// namespace outlive its processes.

#include <ctr/detail/file.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <sched.h>
#include <sys/mount.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <system_error>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace ctr::ns {

// One namespace kind; the value is its CLONE_NEW* flag.
enum class kind : std::uint32_t {
    user = CLONE_NEWUSER,
    pid = CLONE_NEWPID,
    mount = CLONE_NEWNS,
    network = CLONE_NEWNET,
    uts = CLONE_NEWUTS,
    ipc = CLONE_NEWIPC,
    cgroup = CLONE_NEWCGROUP,
    time = CLONE_NEWTIME,
};

// A set of kinds: `ns::pid | ns::mount`.
class kinds {
public:
    constexpr kinds() noexcept = default;
    constexpr kinds(kind k) noexcept : flags_(static_cast<std::uint32_t>(k)) {}
    static constexpr kinds from_flags(std::uint32_t flags) noexcept {
        kinds k;
        k.flags_ = flags;
        return k;
    }
    constexpr std::uint32_t flags() const noexcept { return flags_; }
    constexpr bool has(kind k) const noexcept { return (flags_ & static_cast<std::uint32_t>(k)) != 0; }
    constexpr bool empty() const noexcept { return flags_ == 0; }
    constexpr kinds without(kinds other) const noexcept { return from_flags(flags_ & ~other.flags_); }
    friend constexpr kinds operator|(kinds a, kinds b) noexcept { return from_flags(a.flags_ | b.flags_); }
    friend constexpr bool operator==(kinds, kinds) noexcept = default;

private:
    std::uint32_t flags_ = 0;
};

inline constexpr kinds none{};
inline constexpr kind user = kind::user;
inline constexpr kind pid = kind::pid;
inline constexpr kind mount = kind::mount;
inline constexpr kind network = kind::network;
inline constexpr kind uts = kind::uts;
inline constexpr kind ipc = kind::ipc;
inline constexpr kind cgroup = kind::cgroup;
inline constexpr kind time = kind::time;
// Every kind. Unprivileged callers get a user namespace with it, which is
// what lets them create the others.
inline constexpr kinds all = kinds(user) | pid | mount | network | uts | ipc | cgroup | time;

inline constexpr kinds operator|(kind a, kind b) noexcept { return kinds(a) | kinds(b); }

inline constexpr kind every_kind[] = {user, pid, mount, network, uts, ipc, cgroup, time};

// The name the kernel uses in /proc/PID/ns/.
constexpr std::string_view name(kind k) noexcept {
    switch (k) {
        case kind::user: return "user";
        case kind::pid: return "pid";
        case kind::mount: return "mnt";
        case kind::network: return "net";
        case kind::uts: return "uts";
        case kind::ipc: return "ipc";
        case kind::cgroup: return "cgroup";
        case kind::time: return "time";
    }
    return "unknown";
}

// An existing namespace to join: a /proc/PID/ns/KIND path or a bind-mounted
// namespace file, an fd of one (borrowed), or a pidfd (borrowed; Linux 5.8+).
struct existing {
    kind which;
    std::variant<std::string, int> source;  // path, or fd
    bool source_is_pidfd = false;

    template <class = void>
    static existing path(kind k, std::string p) { return {k, std::move(p)}; }
    template <class = void>
    static existing fd(kind k, int borrowed_fd) { return {k, borrowed_fd}; }
    template <class = void>
    static existing of_pidfd(kind k, int borrowed_pidfd) { return {k, borrowed_pidfd, true}; }
};

// One line of a uid or gid map: ids [inside, inside+count) in the namespace
// are [outside, outside+count) outside it.
struct id_range {
    std::uint32_t inside;
    std::uint32_t outside;
    std::uint32_t count;
};

// The uid/gid maps of a new user namespace. Empty maps pick a default:
//  - root: the sandbox's 0..65535 onto a host range, root's range in
//    /etc/subuid and /etc/subgid if there is one, else 100000..165535;
//  - anyone else: the caller becomes 0 inside (one id). Where /etc/subuid and
//    /etc/subgid grant the caller a range and newuidmap/newgidmap exist, that
//    range is mapped from 1 up as well (full_range_when_available).
struct id_maps {
    std::vector<id_range> uid{};
    std::vector<id_range> gid{};
    bool full_range_when_available = true;
};

// Time namespace offsets, in seconds and nanoseconds.
struct time_offsets {
    std::int64_t monotonic_seconds = 0;
    std::int64_t boottime_seconds = 0;
};

namespace detail {

// A negative id would otherwise read as "this process" (ns_path).
template <class = void>
inline void check_process_id(int process_id, step s) {
    if (process_id < 0)
        throw error(s, ESRCH, "pid " + std::to_string(process_id), "a process id is positive, or 0 for this process");
}

template <class = void>
inline std::string ns_path(int pid, kind k) {
    return "/proc/" + (pid > 0 ? std::to_string(pid) : std::string("self")) + "/ns/" + std::string(name(k));
}

// The inode that identifies a process's namespace of one kind.
template <class = void>
inline std::optional<std::uint64_t> ns_inode(const std::string& path) {
    struct stat st {};
    if (ctr::detail::sys::fstatat(AT_FDCWD, path.c_str(), &st, 0) < 0) return std::nullopt;
    return st.st_ino;
}

// A subordinate id range from /etc/subuid or /etc/subgid for a user name or
// numeric id: "name:start:count" lines.
template <class = void>
inline std::optional<id_range> subordinate_range(const std::string& file, const std::string& user_name,
                                                 std::uint32_t id) {
    const auto contents = ctr::detail::read_small_file(file);
    if (!contents) return std::nullopt;
    std::size_t at = 0;
    while (at < contents->size()) {
        const std::size_t end = std::min(contents->find('\n', at), contents->size());
        const std::string line = contents->substr(at, end - at);
        at = end + 1;
        const auto first = line.find(':'), second = line.rfind(':');
        if (first == std::string::npos || first == second) continue;
        const std::string owner = line.substr(0, first);
        if (owner != user_name && owner != std::to_string(id)) continue;
        // Plain decimals only, and a range the kernel can map: stoul took
        // "3000x" as 3000 and cut a start past 2^32 to 32 bits.
        const auto decimal = [](std::string_view text) -> std::optional<std::uint64_t> {
            if (text.empty() || text.size() > 10) return std::nullopt;
            std::uint64_t value = 0;
            for (char c : text) {
                if (c < '0' || c > '9') return std::nullopt;
                value = value * 10 + static_cast<std::uint64_t>(c - '0');
            }
            return value;
        };
        const auto start = decimal(std::string_view(line).substr(first + 1, second - first - 1));
        const auto count = decimal(std::string_view(line).substr(second + 1));
        if (start && count && *count > 0 && *start + *count <= (std::uint64_t{1} << 32))
            return id_range{0, static_cast<std::uint32_t>(*start), static_cast<std::uint32_t>(*count)};
    }
    return std::nullopt;
}

template <class = void>
inline std::string errno_text(long negative_errno) {
    return std::generic_category().message(static_cast<int>(-negative_errno));
}

// Why this process cannot create a user namespace, as far as the host
// shows it. Used by probe() and by spawn's error for a failed CLONE_NEWUSER.
template <class = void>
inline std::string user_namespace_blocker(long negative_errno) {
    if (auto max = ctr::detail::read_first_line("/proc/sys/user/max_user_namespaces"); max && *max == "0")
        return "user.max_user_namespaces is 0, which forbids user namespaces to everyone; root can allow them: "
               "sysctl -w user.max_user_namespaces=15000";
    if (negative_errno == -ENOSPC) return "the user namespace limit (user.max_user_namespaces) is reached";
    if (auto clone = ctr::detail::read_first_line("/proc/sys/kernel/unprivileged_userns_clone");
        clone && *clone == "0" && ctr::detail::raw::call(SYS_geteuid) != 0)
        return "kernel.unprivileged_userns_clone is 0, which forbids them to users other than root; root can allow "
               "them: sysctl -w kernel.unprivileged_userns_clone=1 (or run as root)";
    if (auto apparmor = ctr::detail::read_first_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
        apparmor && *apparmor == "1" && ctr::detail::raw::call(SYS_geteuid) != 0)
        return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns is 1); "
               "root can allow them: an AppArmor profile with the userns rule for this program, or sysctl -w "
               "kernel.apparmor_restrict_unprivileged_userns=0 (or run as root)";
    if (auto status = ctr::detail::read_small_file("/proc/self/status"); status && status->find("Seccomp:\t2") != std::string::npos)
        return "a seccomp filter on this process (an outer container?) refuses it: " + errno_text(negative_errno);
    if (negative_errno == -EPERM) {
        // The kernel refuses user namespaces to a process in a chroot.
        struct stat root {}, init_root {};
        if (ctr::detail::raw::call(SYS_stat, "/", &root) == 0 && ctr::detail::raw::call(SYS_stat, "/proc/1/root/.", &init_root) == 0 &&
            (root.st_ino != init_root.st_ino || root.st_dev != init_root.st_dev))
            return "this process runs in a chroot, where the kernel refuses user namespaces";
    }
    return errno_text(negative_errno);
}

// The id maps to write for a new user namespace, resolved in the parent
// before clone so that a problem shows before anything starts.
struct resolved_id_maps {
    std::vector<id_range> uid;
    std::vector<id_range> gid;
    // Unprivileged writers must deny setgroups before writing a gid map.
    bool deny_setgroups = false;
    // More than the caller's own id needs the setuid helpers.
    bool use_helpers = false;
    // Whether the child may call setgroups: not after a deny, and not when
    // an outer user namespace denied it (a child namespace inherits that).
    bool may_setgroups = true;
};

template <class = void>
inline bool executable(const char* path) { return ctr::detail::raw::call(SYS_access, path, X_OK) == 0; }

template <class = void>
inline std::string user_name_of(std::uint32_t uid) {
    const auto passwd = ctr::detail::read_small_file("/etc/passwd");
    if (!passwd) return {};
    std::size_t at = 0;
    while (at < passwd->size()) {
        const std::size_t end = std::min(passwd->find('\n', at), passwd->size());
        const std::string line = passwd->substr(at, end - at);
        at = end + 1;
        const auto first = line.find(':');
        const auto second = line.find(':', first + 1);
        const auto third = line.find(':', second + 1);
        if (first == std::string::npos || second == std::string::npos || third == std::string::npos) continue;
        if (line.substr(second + 1, third - second - 1) == std::to_string(uid)) return line.substr(0, first);
    }
    return {};
}

// This process's own id map ("inside outside count" lines).
template <class = void>
inline std::vector<id_range> own_map(const char* proc_file) {
    std::vector<id_range> ranges;
    const auto text = ctr::detail::read_small_file(proc_file);
    if (!text) return ranges;
    std::size_t at = 0;
    while (at < text->size()) {
        const std::size_t end = std::min(text->find('\n', at), text->size());
        unsigned long inside = 0, outside = 0, count = 0;
        if (std::sscanf(text->substr(at, end - at).c_str(), "%lu %lu %lu", &inside, &outside, &count) == 3)
            ranges.push_back({static_cast<std::uint32_t>(inside), static_cast<std::uint32_t>(outside),
                              static_cast<std::uint32_t>(count)});
        at = end + 1;
    }
    return ranges;
}

// Root's default: the sandbox's 0..65535 onto root's /etc/subuid range, or
// 100000..165535. A caller that is root only inside a user namespace of its
// own may not have those ids; it maps the ids it has, from 0 up.
template <class = void>
inline id_range root_default_range(const char* subordinate_file, const char* proc_file) {
    const auto range = subordinate_range(subordinate_file, "root", 0);
    const std::uint32_t base = range ? range->outside : 100000;
    const std::uint32_t count = 65536;
    const auto own = own_map(proc_file);
    for (const auto& r : own)
        if (base >= r.inside && std::uint64_t{base} + count <= std::uint64_t{r.inside} + r.count)
            return {0, base, count};
    for (const auto& r : own)
        if (r.inside == 0) return {0, 0, std::min(r.count, count)};
    return {0, 0, 1};
}

// The kernel's rules for a map, checked before anything starts so that the
// error says which range is wrong (the kernel answers only EINVAL): no empty
// range, none past id 4294967295, no two overlapping inside or outside, at
// most 340 lines.
template <class = void>
inline void check_id_map(const std::vector<id_range>& ranges, step s, const char* which) {
    const auto text = [](const id_range& r) {
        return std::to_string(r.inside) + " " + std::to_string(r.outside) + " " + std::to_string(r.count);
    };
    if (ranges.size() > 340)
        throw error(s, EINVAL, which, std::to_string(ranges.size()) + " ranges; the kernel takes at most 340");
    constexpr std::uint64_t ids = std::uint64_t{1} << 32;
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        const id_range& r = ranges[i];
        if (r.count == 0) throw error(s, EINVAL, which, "the range '" + text(r) + "' has count 0");
        if (std::uint64_t{r.inside} + r.count > ids || std::uint64_t{r.outside} + r.count > ids)
            throw error(s, EINVAL, which, "the range '" + text(r) + "' runs past id 4294967295");
        for (std::size_t j = 0; j < i; ++j) {
            const id_range& o = ranges[j];
            const auto overlap = [](std::uint64_t a, std::uint64_t b, std::uint64_t count_a, std::uint64_t count_b) {
                return a < b + count_b && b < a + count_a;
            };
            if (overlap(r.inside, o.inside, r.count, o.count) || overlap(r.outside, o.outside, r.count, o.count))
                throw error(s, EINVAL, which, "the ranges '" + text(o) + "' and '" + text(r) + "' overlap");
        }
    }
}

template <class = void>
inline resolved_id_maps resolve_id_maps(const id_maps& asked) {
    const auto euid = static_cast<std::uint32_t>(ctr::detail::raw::call(SYS_geteuid));
    const auto egid = static_cast<std::uint32_t>(ctr::detail::raw::call(SYS_getegid));
    const bool privileged = euid == 0;
    resolved_id_maps maps;
    maps.uid = asked.uid;
    maps.gid = asked.gid;
    const std::string user = user_name_of(euid);
    if (maps.uid.empty()) {
        if (privileged) {
            maps.uid = {root_default_range("/etc/subuid", "/proc/self/uid_map")};
        } else {
            maps.uid = {{0, euid, 1}};
            const auto range = subordinate_range("/etc/subuid", user, euid);
            if (asked.full_range_when_available && range && executable("/usr/bin/newuidmap"))
                maps.uid.push_back({1, range->outside, range->count});
        }
    }
    if (maps.gid.empty()) {
        if (privileged) {
            maps.gid = {root_default_range("/etc/subgid", "/proc/self/gid_map")};
        } else {
            maps.gid = {{0, egid, 1}};
            const auto range = subordinate_range("/etc/subgid", user, euid);
            if (asked.full_range_when_available && range && executable("/usr/bin/newgidmap"))
                maps.gid.push_back({1, range->outside, range->count});
        }
    }
    check_id_map(maps.uid, step::write_uid_map, "uid map");
    check_id_map(maps.gid, step::write_gid_map, "gid map");
    if (!privileged) {
        const bool only_self = maps.uid.size() == 1 && maps.uid[0].outside == euid && maps.uid[0].count == 1 &&
                               maps.gid.size() == 1 && maps.gid[0].outside == egid && maps.gid[0].count == 1;
        maps.use_helpers = !only_self;
        maps.deny_setgroups = only_self;
        if (maps.use_helpers && (!executable("/usr/bin/newuidmap") || !executable("/usr/bin/newgidmap")))
            throw error(step::write_uid_map, EPERM, "/usr/bin/newuidmap",
                        "an unprivileged caller can map only its own id without newuidmap/newgidmap (package uidmap)");
    }
    const auto own_setgroups = ctr::detail::read_first_line("/proc/self/setgroups");
    maps.may_setgroups = !maps.deny_setgroups && own_setgroups.value_or("allow") == "allow";
    return maps;
}

template <class = void>
inline std::string map_text(const std::vector<id_range>& ranges) {
    std::string text;
    for (const auto& r : ranges)
        text += std::to_string(r.inside) + " " + std::to_string(r.outside) + " " + std::to_string(r.count) + "\n";
    return text;
}

}  // namespace detail

// Which namespace `process_id` (0: this process) is in, as the inode of its
// /proc/PID/ns file: two processes share a namespace when these are equal.
template <class = void>
inline std::uint64_t inode_of(kind k, int process_id = 0) {
    detail::check_process_id(process_id, step::join_namespace);
    const std::string path = detail::ns_path(process_id, k);
    const auto inode = detail::ns_inode(path);
    if (!inode) throw error(step::join_namespace, ENOENT, path, "cannot stat the namespace file");
    return *inode;
}

// A namespace kept alive by a bind mount of its /proc/PID/ns file onto
// `path` (what `ip netns add` does), so it can be joined after its last
// process is gone. The bind is undone and the file removed when this ends,
// unless release() was called. The mount lives in the caller's mount
// namespace.
template <class>
class basic_persisted;
using persisted = basic_persisted<void>;
template <class = void>
persisted persist(int process_id, kind k, std::string path);

template <class>
class [[nodiscard]] basic_persisted {
public:
    basic_persisted() = default;
    basic_persisted(basic_persisted&& other) noexcept : path_(std::exchange(other.path_, {})) {}
    basic_persisted& operator=(basic_persisted&& other) noexcept {
        if (this != &other) {
            reset();
            path_ = std::exchange(other.path_, {});
        }
        return *this;
    }
    ~basic_persisted() { reset(); }

    template <class = void>
    const std::string& path() const noexcept { return path_; }
    template <class = void>
    existing to_join(kind k) const { return existing::path(k, path_); }
    template <class = void>
    void release() noexcept { path_.clear(); }

private:
    template <class> friend persisted persist(int pid, kind k, std::string path);
    void reset() noexcept {
        if (path_.empty()) return;
        ctr::detail::sys::umount2(path_.c_str(), MNT_DETACH);
        ctr::detail::sys::unlinkat(AT_FDCWD, path_.c_str(), 0);
        path_.clear();
    }
    std::string path_;
};
using persisted = basic_persisted<void>;

template <class>
inline persisted persist(int process_id, kind k, std::string path) {
    namespace sys = ctr::detail::sys;
    detail::check_process_id(process_id, step::persist_namespace);
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) throw error(step::persist_namespace, static_cast<int>(-fd), path, "cannot create the file to bind onto");
    sys::close(static_cast<int>(fd));
    const std::string source = detail::ns_path(process_id, k);
    if (const long r = sys::mount(source.c_str(), path.c_str(), nullptr, MS_BIND, nullptr); r < 0) {
        sys::unlinkat(AT_FDCWD, path.c_str(), 0);
        throw error(step::persist_namespace, static_cast<int>(-r), path, "bind mount of " + source);
    }
    persisted p;
    p.path_ = std::move(path);
    return p;
}

}  // namespace ctr::ns
