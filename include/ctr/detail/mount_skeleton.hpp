#pragma once
// The skeletons of a plan that makes missing mount points in one
// (plan::missing_points = missing_mount_points::make_in_skeleton): which
// directories of the root need one, and what each holds. Read by the parent
// before the launch, from the rootfs directory or the host's "/", so that
// the child only runs steps it already has on prepared data: a tmpfs, binds,
// symlinks (mount.hpp's step_builder turns a skeleton into them).

#include <ctr/detail/mount_step.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace ctr::mount::detail {

// A place where a plan makes a mount point: its target inside the root
// (absolute, slashes squeezed), and whether something is mounted there
// (then what the plan puts below it is made in that mount, not in the root).
struct made_point {
    std::string target;
    bool mounts = true;
};

struct skeleton_entry {
    std::string name;
    bool symlink = false;  // made again with `text`; anything else is bound back
    std::string text;
};

// A tmpfs over `target` holding the entries of the directory it covers.
struct skeleton {
    std::string target;  // inside the root, symlinks resolved; "/": the skeleton is the new root
    std::string source;  // the same directory on the host
    mode_t mode = 0755;
    std::vector<skeleton_entry> entries;
    // Made read-only after the last mount (when the root is read-only);
    // not when a mount of the plan covers it whole, which that step would hit.
    bool seal = true;
};

// Whether `path` is `base` or below it, by whole components.
template <class = void>
inline bool at_or_below(const std::string& path, const std::string& base) {
    if (base == "/") return true;
    return path.compare(0, base.size(), base) == 0 && (path.size() == base.size() || path[base.size()] == '/');
}

template <class = void>
inline std::string parent_in_root(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    return slash == 0 || slash == std::string::npos ? std::string("/") : path.substr(0, slash);
}

// Where an fd's object is on the host, as /proc/self/fd shows it; empty
// when that cannot be read.
template <class = void>
inline std::string host_path_of(int fd) {
    char name[32];
    char buffer[ctr::detail::mount_path_max];
    const long n = ctr::detail::sys::readlinkat(AT_FDCWD, ctr::detail::proc_fd_path(fd, name), buffer, sizeof buffer);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buffer || buffer[0] != '/') return {};
    return std::string(buffer, static_cast<std::size_t>(n));
}

// The entries of the directory `dir` (an fd of it): each symlink with its
// text, every other kind by name.
template <class = void>
inline void list_skeleton_entries(int dir, skeleton& s) {
    namespace sys = ctr::detail::sys;
    const auto fail = [&](long r) {
        return error(step::prepare, static_cast<int>(-r), s.source,
                     "listing the directory a skeleton copies, as a missing mount point is to be made in it: "
                     "make the mount point in the root filesystem, or let the caller read the directory");
    };
    // A fresh fd: getdents64 needs one opened for reading, and advances it.
    const long fd = sys::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw fail(fd);
    const unique_fd owner(static_cast<int>(fd));
    alignas(8) char buffer[8192];
    for (;;) {
        const long n = sys::getdents64(owner.get(), buffer, sizeof buffer);
        if (n == -EINTR) continue;
        if (n < 0) throw fail(n);
        if (n == 0) break;
        for (long offset = 0; offset < n;) {
            // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[]
            unsigned short length;
            std::memcpy(&length, buffer + offset + 16, sizeof length);
            const char* name = buffer + offset + 19;
            offset += length;
            if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
            struct stat st {};
            if (const long r = sys::fstatat(owner.get(), name, &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT); r < 0) {
                if (r == -ENOENT) continue;  // gone since the listing
                throw fail(r);
            }
            skeleton_entry e{name, S_ISLNK(st.st_mode), {}};
            if (e.symlink) {
                char text[ctr::detail::mount_path_max];
                const long t = sys::readlinkat(owner.get(), name, text, sizeof text);
                if (t < 0) throw fail(t);
                if (static_cast<std::size_t>(t) >= sizeof text) throw fail(-ENAMETOOLONG);
                e.text.assign(text, static_cast<std::size_t>(t));
            }
            s.entries.push_back(std::move(e));
        }
    }
    std::sort(s.entries.begin(), s.entries.end(),
              [](const skeleton_entry& a, const skeleton_entry& b) { return a.name < b.name; });
}

// The skeletons the points need in the root at `root_source` (a canonical
// host directory): for each point missing from the root and not at or below
// an earlier mount of the plan, the deepest directory of the root that
// exists on its way. Parents come before the skeletons below them.
// Nothing when the root cannot be opened (the root's own step says why).
template <class = void>
inline std::vector<skeleton> find_skeletons(const std::string& root_source, const std::vector<made_point>& points) {
    namespace sys = ctr::detail::sys;
    const long root = sys::openat(AT_FDCWD, root_source.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return {};
    const unique_fd root_fd(static_cast<int>(root));
    std::vector<std::string> mounted;
    std::vector<skeleton> out;
    for (const auto& point : points) {
        bool covered = false;
        for (const auto& m : mounted) covered = covered || at_or_below(point.target, m);
        if (point.mounts) mounted.push_back(point.target);
        if (covered) continue;
        // Resolved inside the root, as the child resolves it.
        long fd = ctr::detail::open_in_root(root_fd.get(), point.target.c_str());
        if (fd >= 0) sys::close(static_cast<int>(fd));
        if (fd != -ENOENT) continue;  // there, or a fault that the step will report
        std::string dir = point.target;
        while (fd == -ENOENT && dir != "/") {
            dir = parent_in_root(dir);
            fd = ctr::detail::open_in_root(root_fd.get(), dir.c_str());
        }
        if (fd < 0) continue;
        const unique_fd dir_fd(static_cast<int>(fd));
        struct stat st {};
        if (sys::fstatat(dir_fd.get(), "", &st, AT_EMPTY_PATH) < 0 || !S_ISDIR(st.st_mode)) continue;
        // Where the directory is, symlinks resolved: in the root, and on the host.
        const std::string host = host_path_of(dir_fd.get());
        std::string in_root;
        if (host == root_source) in_root = "/";
        else if (root_source == "/") in_root = host;
        else if (at_or_below(host, root_source)) in_root = host.substr(root_source.size());
        else
            throw error(step::prepare, EXDEV, dir,
                        "cannot tell where this directory of the root is on the host (through /proc/self/fd), "
                        "to copy it into a skeleton for the mount point '" + point.target +
                            "': make the mount point in the root filesystem");
        bool known = false;
        for (const auto& s : out) known = known || s.target == in_root;
        if (known) continue;
        skeleton s{in_root, host, static_cast<mode_t>(st.st_mode & 07777), {}, true};
        list_skeleton_entries(dir_fd.get(), s);
        out.push_back(std::move(s));
    }
    for (auto& s : out)
        for (const auto& point : points) s.seal = s.seal && !(point.mounts && point.target == s.target);
    std::sort(out.begin(), out.end(), [](const skeleton& a, const skeleton& b) { return a.target < b.target; });
    return out;
}

}  // namespace ctr::mount::detail
