#pragma once
// The file-system side of cgroups: reading and writing interface files
// through directory fds, listing and removing cgroup directories, and the
// per-hierarchy operations a group is made of (listing, signalling, freezing
// and waiting for its processes). Every call goes through detail::sys.

#include <ctr/detail/cgroup_layout.hpp>
#include <ctr/detail/cgroup_parse.hpp>
#include <ctr/detail/file.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ctr::detail {

using cgroup_clock = std::chrono::steady_clock;

template <class = void>
inline std::string errno_message(long negative_errno) {
    return std::generic_category().message(static_cast<int>(-negative_errno));
}

// Sleeps without touching errno (ppoll with no fds).
template <class = void>
inline void cgroup_nap(std::chrono::nanoseconds duration) noexcept {
    if (duration.count() <= 0) return;
    const timespec t{static_cast<time_t>(duration.count() / 1'000'000'000),
                     static_cast<long>(duration.count() % 1'000'000'000)};
    sys::ppoll(nullptr, 0, &t);
}

// Everything from offset 0 of an open fd; 0 or -errno.
template <class = void>
inline long read_whole_fd(int fd, std::string& out) {
    out.clear();
    char buffer[4096];
    for (;;) {
        const long n = sys::pread64(fd, buffer, sizeof buffer, static_cast<long>(out.size()));
        if (n == -EINTR) continue;
        if (n < 0) return n;
        if (n == 0) return 0;
        out.append(buffer, static_cast<std::size_t>(n));
    }
}

template <class = void>
inline long open_at(int dirfd, const char* name, int flags) {
    long fd;
    do fd = sys::openat(dirfd, name, flags | O_CLOEXEC);
    while (fd == -EINTR);
    return fd;
}

// A whole (small) file relative to a directory fd; 0 or -errno.
template <class = void>
inline long read_file_at(int dirfd, const char* name, std::string& out) {
    const long fd = open_at(dirfd, name, O_RDONLY);
    if (fd < 0) return fd;
    unique_fd owner(static_cast<int>(fd));
    return read_whole_fd(owner.get(), out);
}

// Writes `text` to a cgroup interface file in one write(2), which is how
// the kernel takes a value; 0 or -errno.
template <class = void>
inline long write_file_at(int dirfd, const char* name, std::string_view text) {
    const long fd = open_at(dirfd, name, O_WRONLY);
    if (fd < 0) return fd;
    unique_fd owner(static_cast<int>(fd));
    long n;
    do n = sys::write(owner.get(), text.data(), text.size());
    while (n == -EINTR);
    if (n < 0) return n;
    return static_cast<std::size_t>(n) == text.size() ? 0 : -EIO;
}

template <class = void>
inline long open_directory(int dirfd, const char* path) { return open_at(dirfd, path, O_RDONLY | O_DIRECTORY); }

// The names of the subdirectories of an open directory; 0 or -errno.
template <class = void>
inline long subdirectories(int dirfd, std::vector<std::string>& out) {
    out.clear();
    // A fresh fd: getdents64 advances the file position.
    const long fd = open_at(dirfd, ".", O_RDONLY | O_DIRECTORY);
    if (fd < 0) return fd;
    unique_fd owner(static_cast<int>(fd));
    alignas(8) char buffer[8192];
    for (;;) {
        const long n = sys::getdents64(owner.get(), buffer, sizeof buffer);
        if (n == -EINTR) continue;
        if (n < 0) return n;
        if (n == 0) return 0;
        for (long offset = 0; offset < n;) {
            // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[]
            unsigned short length;
            std::memcpy(&length, buffer + offset + 16, sizeof length);
            const unsigned char type = static_cast<unsigned char>(buffer[offset + 18]);
            const char* name = buffer + offset + 19;
            if (type == DT_DIR && std::strcmp(name, ".") != 0 && std::strcmp(name, "..") != 0) out.emplace_back(name);
            offset += length;
        }
    }
}

// /proc/<pid>/stat's start time and state; nothing if the process is gone.
template <class = void>
inline std::optional<std::pair<std::uint64_t, char>> process_start(long pid) {
    const auto text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
    if (!text) return std::nullopt;
    return parse_proc_stat_start(*text);
}

// Whether the process that made a group is gone: no such pid, a zombie, or
// a pid now used by a later process.
template <class = void>
inline bool creator_is_gone(const group_name& name) {
    if (name.pid == 0 || name.pid > 0x3fffffff) return true;
    if (sys::kill(static_cast<int>(name.pid), 0) == -ESRCH) return true;
    const auto start = process_start(static_cast<long>(name.pid));
    if (!start) return true;
    return start->second == 'Z' || start->second == 'X' || start->first != name.start_time;
}

// Four random bytes as hex, for group names; the clock if /dev/urandom fails.
template <class = void>
inline std::string random_hex() {
    std::uint32_t value = 0;
    const long fd = open_at(AT_FDCWD, "/dev/urandom", O_RDONLY);
    bool ok = false;
    if (fd >= 0) {
        ok = sys::read(static_cast<int>(fd), &value, sizeof value) == static_cast<long>(sizeof value);
        sys::close(static_cast<int>(fd));
    }
    if (!ok) value = static_cast<std::uint32_t>(cgroup_clock::now().time_since_epoch().count() * 2654435761U);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(8, '0');
    for (int i = 7; i >= 0; --i, value >>= 4) out[static_cast<std::size_t>(i)] = digits[value & 15];
    return out;
}

// One directory of a group: the group as it exists in one hierarchy.
struct cgroup_member {
    bool v2 = false;
    int hierarchy_id = 0;                  // the id /proc/<pid>/cgroup shows for the hierarchy
    std::vector<std::string> controllers;  // v1: the hierarchy's; v2: those enabled for the group
    std::string cgroup_path;               // as /proc/<pid>/cgroup shows it
    std::string dir;                       // in the file system
    unique_fd fd;                          // O_RDONLY|O_DIRECTORY on dir
    bool created = true;                   // false: joined (options::join_existing) or opened
    std::vector<std::string> made_parents;  // directories made above dir for a path, outermost first

    template <class = void>
    bool has(std::string_view controller) const {
        return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
    }
    template <class = void>
    std::string file(std::string_view name) const { return dir + "/" + std::string(name); }
};

// The member for a group directory found on disk (opened, not made here):
// its controllers are the hierarchy's on v1, those enabled for it on v2.
template <class = void>
inline cgroup_member found_member(const cgroup_hierarchy& h, std::string cgroup_path, std::string dir, unique_fd fd) {
    cgroup_member m;
    m.v2 = h.v2;
    m.hierarchy_id = h.id;
    m.cgroup_path = std::move(cgroup_path);
    m.dir = std::move(dir);
    m.fd = std::move(fd);
    if (h.v2) {
        std::string enabled;
        if (read_file_at(m.fd.get(), "cgroup.controllers", enabled) == 0) m.controllers = controller_list(enabled);
    } else {
        m.controllers = h.controllers;
    }
    return m;
}

// Whether `pid` is in the member's cgroup or below it, by /proc/<pid>/cgroup.
template <class = void>
inline bool process_in_member(long pid, const cgroup_member& m) {
    const auto text = read_small_file("/proc/" + std::to_string(pid) + "/cgroup");
    if (!text) return false;
    for (const auto& e : parse_proc_cgroup(*text)) {
        const bool same_hierarchy =
            m.v2 ? (e.id == 0 && e.controllers.empty() && e.name.empty()) : e.id == m.hierarchy_id;
        if (!same_hierarchy) continue;
        return e.path == m.cgroup_path
               || (e.path.size() > m.cgroup_path.size() && e.path.compare(0, m.cgroup_path.size(), m.cgroup_path) == 0
                   && e.path[m.cgroup_path.size()] == '/');
    }
    return false;
}

// The processes in a cgroup directory and the cgroups below it (which the
// processes inside may have made). 0 or -errno; a directory that vanished
// meanwhile counts as empty.
template <class = void>
inline long processes_below(int dirfd, std::vector<long>& out, int depth = 0) {
    std::string text;
    if (const long r = read_file_at(dirfd, "cgroup.procs", text); r < 0) return r == -ENOENT || r == -ENODEV ? 0 : r;
    for (std::string_view line : cgroup_split(text, '\n'))
        if (const auto pid = parse_decimal(cgroup_trim(line)); pid && *pid > 0) out.push_back(static_cast<long>(*pid));
    if (depth >= 16) return 0;
    std::vector<std::string> children;
    if (const long r = subdirectories(dirfd, children); r < 0) return r == -ENOENT ? 0 : r;
    for (const auto& child : children) {
        const long fd = open_directory(dirfd, child.c_str());
        if (fd == -ENOENT) continue;
        if (fd < 0) return fd;
        unique_fd owner(static_cast<int>(fd));
        if (const long r = processes_below(owner.get(), out, depth + 1); r < 0) return r;
    }
    return 0;
}

// SIGKILL for one listed pid, only while it is still a member: the pidfd
// pins the process before the membership check, so a pid that was reused
// by a process outside the group after the listing is never signalled.
template <class = void>
inline void kill_member_process(long pid, const cgroup_member& m) noexcept {
    try {
        const long pidfd = sys::pidfd_open(static_cast<int>(pid), 0);
        if (pidfd < 0) return;  // gone already
        unique_fd owner(static_cast<int>(pidfd));
        if (process_in_member(pid, m)) sys::pidfd_send_signal(owner.get(), SIGKILL);
    } catch (...) {
        // Only an allocation can throw here; the caller lists again anyway.
    }
}

// A v1 freezer's state: FROZEN, FREEZING or THAWED.
template <class = void>
inline long freezer_state(const cgroup_member& m, std::string& state) {
    const long r = read_file_at(m.fd.get(), "freezer.state", state);
    state = std::string(cgroup_trim(state));
    return r;
}

// The value of one key of cgroup.events (populated, frozen), read through
// `fd` so that the next poll waits for the next change.
template <class = void>
inline long events_value(int fd, std::string_view key, std::uint64_t& value) {
    std::string text;
    if (const long r = read_whole_fd(fd, text); r < 0) return r;
    const auto v = keyed_value(text, key);
    if (!v) return -ENODATA;
    value = *v;
    return 0;
}

// Waits until cgroup.events shows `key` == `wanted` or `deadline` passes.
// 1: reached, 0: timed out, or -errno.
template <class = void>
inline long wait_for_event(const cgroup_member& m, std::string_view key, std::uint64_t wanted,
                           cgroup_clock::time_point deadline) {
    const long fd = open_at(m.fd.get(), "cgroup.events", O_RDONLY);
    if (fd < 0) return fd;
    unique_fd events(static_cast<int>(fd));
    for (;;) {
        std::uint64_t value = 0;
        if (const long r = events_value(events.get(), key, value); r < 0) return r;
        if (value == wanted) return 1;
        const auto now = cgroup_clock::now();
        if (now >= deadline) return 0;
        // The kernel reports a change of the file as POLLPRI (and POLLERR).
        pollfd p{events.get(), POLLPRI, 0};
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
        const timespec t{static_cast<time_t>(left.count() / 1'000'000'000),
                         static_cast<long>(left.count() % 1'000'000'000)};
        const long r = sys::ppoll(&p, 1, &t);
        if (r < 0 && r != -EINTR) return r;
    }
}

// Removes a cgroup directory and any cgroups below it, deepest first,
// retrying rmdir while the kernel says EBUSY (a process is still on its way
// out) until `deadline`. 0 or -errno; a directory already gone counts as
// removed.
template <class = void>
inline long remove_cgroup_dir(const std::string& dir, cgroup_clock::time_point deadline, int depth = 0) {
    if (depth < 16) {
        const long fd = open_directory(AT_FDCWD, dir.c_str());
        if (fd == -ENOENT) return 0;
        if (fd >= 0) {
            unique_fd owner(static_cast<int>(fd));
            std::vector<std::string> children;
            if (subdirectories(owner.get(), children) == 0)
                for (const auto& child : children)
                    if (const long r = remove_cgroup_dir(dir + "/" + child, deadline, depth + 1); r < 0) return r;
        }
    }
    auto pause = std::chrono::microseconds(200);
    for (;;) {
        const long r = sys::unlinkat(AT_FDCWD, dir.c_str(), AT_REMOVEDIR);
        if (r == 0 || r == -ENOENT) return 0;
        if (r != -EBUSY && r != -EINTR) return r;
        if (cgroup_clock::now() >= deadline) return r;
        cgroup_nap(pause);
        pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
    }
}

}  // namespace ctr::detail
