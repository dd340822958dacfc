#pragma once
// The mount steps of a root-filesystem plan and the code that runs them.
//
// The parent (ctr/mount.hpp) turns a mount::plan into an array of
// mount_step: plain data over strings it owns. run_mount_step() executes one
// step. It runs in the spawn child between clone and exec, so everything in
// this file that runs there is async-signal-safe: no allocation, no
// exceptions, no locks, only detail::sys wrappers, and fixed buffers on the
// stack (the child's stack is 64 KiB; the deepest step here, a symlink in a
// directory still to be made, uses about 21 KiB).
//
// Two rules shape it:
// - Targets are resolved inside the new root and never by a string again:
//   openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), or a component walk
//   with O_NOFOLLOW where openat2 is missing, gives an fd; the mount goes
//   onto that fd (move_mount with MOVE_MOUNT_T_EMPTY_PATH, or mount(2) onto
//   /proc/self/fd/N). A symlink in the rootfs such as `etc -> /` therefore
//   resolves to the rootfs's own top, never to the host's.
// - The new mount API (open_tree, fsopen, fsconfig, fsmount, move_mount,
//   mount_setattr) is used where the kernel has it; a call that answers
//   ENOSYS (an old kernel, or a seccomp profile) switches that operation to
//   mount(2). The test for "has it" is the one ctr::probe() reports.

#include <ctr/detail/child_code.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cstddef>
#include <cstdint>

namespace ctr::detail {

// Kernel ABI values for the mount calls. Spelled out here because
// <sys/mount.h> and <linux/mount.h> cannot both be included with glibc 2.36,
// and a consumer of ctr may include either.
namespace mount_abi {
inline constexpr unsigned long ms_rdonly = 1;
inline constexpr unsigned long ms_nosuid = 2;
inline constexpr unsigned long ms_nodev = 4;
inline constexpr unsigned long ms_noexec = 8;
inline constexpr unsigned long ms_remount = 32;
inline constexpr unsigned long ms_nosymfollow = 256;
inline constexpr unsigned long ms_noatime = 1024;
inline constexpr unsigned long ms_nodiratime = 2048;
inline constexpr unsigned long ms_bind = 4096;
inline constexpr unsigned long ms_rec = 16384;
inline constexpr unsigned long ms_silent = 32768;
inline constexpr unsigned long ms_private = 1UL << 18;
inline constexpr unsigned long ms_slave = 1UL << 19;
inline constexpr unsigned long ms_relatime = 1UL << 21;
inline constexpr unsigned long ms_strictatime = 1UL << 24;

// statfs f_flags
inline constexpr unsigned long st_rdonly = 1;
inline constexpr unsigned long st_nosuid = 2;
inline constexpr unsigned long st_nodev = 4;
inline constexpr unsigned long st_noexec = 8;
inline constexpr unsigned long st_noatime = 1024;
inline constexpr unsigned long st_nodiratime = 2048;
inline constexpr unsigned long st_relatime = 4096;
inline constexpr unsigned long st_nosymfollow = 0x2000;

inline constexpr unsigned open_tree_clone = 1;
inline constexpr unsigned open_tree_cloexec = 02000000;  // O_CLOEXEC
inline constexpr unsigned at_empty_path = 0x1000;
inline constexpr unsigned at_recursive = 0x8000;
inline constexpr unsigned at_symlink_nofollow = 0x100;
inline constexpr unsigned move_mount_f_empty_path = 0x4;
inline constexpr unsigned move_mount_t_empty_path = 0x40;
inline constexpr unsigned fsopen_cloexec = 1;
inline constexpr unsigned fsconfig_set_flag = 0;
inline constexpr unsigned fsconfig_set_string = 1;
inline constexpr unsigned fsconfig_cmd_create = 6;
inline constexpr unsigned fsmount_cloexec = 1;

inline constexpr std::uint64_t attr_rdonly = 0x1;
inline constexpr std::uint64_t attr_nosuid = 0x2;
inline constexpr std::uint64_t attr_idmap = 0x100000;
inline constexpr std::uint64_t attr_nodev = 0x4;
inline constexpr std::uint64_t attr_noexec = 0x8;
inline constexpr std::uint64_t attr_noatime = 0x10;
inline constexpr std::uint64_t attr_strictatime = 0x20;
inline constexpr std::uint64_t attr_nodiratime = 0x80;
inline constexpr std::uint64_t attr_nosymfollow = 0x200000;

inline constexpr int mnt_detach = 2;
inline constexpr unsigned statx_mnt_id = 0x1000;

struct mount_attr {
    std::uint64_t attr_set;
    std::uint64_t attr_clr;
    std::uint64_t propagation;
    std::uint64_t userns_fd;
};
}  // namespace mount_abi

enum class mount_step_kind : std::uint8_t {
    set_propagation,  // flags: ms_private or ms_slave, on every mount of the namespace
    bind,             // source (a host path) onto target
    filesystem,       // a new filesystem of fs_type onto target
    make_directory,   // target, mode
    make_file,        // an empty file at target, mode
    make_symlink,     // a symlink at target whose text is source
    set_attributes,   // attributes on the mount at target (recursive: and below)
    mask,             // a file: /dev/null bound over it; a directory: an empty read-only tmpfs
    read_only,        // target bound onto itself, read-only
    pivot_root,       // into the new root; the old root is detached
    change_root,      // chroot into the new root (weaker; asked for by name)
    write_file,       // source (text) written into the existing file at target
};

// What to create at a missing target.
enum class mount_point : std::uint8_t { none, directory, file };

// What to do when the kernel rejects one fsconfig parameter with EINVAL.
enum class on_rejected : std::uint8_t {
    fail,          // report the error
    alternative,   // try `alternative` instead (e.g. hidepid=2 for hidepid=invisible)
    skip,          // do without it
    use_mount2,    // do the whole mount with mount(2) and the legacy data instead
};

struct mount_param {
    const char* key = nullptr;
    const char* value = nullptr;  // nullptr: a flag (FSCONFIG_SET_FLAG)
    on_rejected rejected = on_rejected::fail;
    const char* alternative = nullptr;
};

// One step. All pointers are into memory the parent owns and keeps alive
// until the child has exec'd or exited.
struct mount_step {
    mount_step_kind kind = mount_step_kind::make_directory;
    ctr::step step = ctr::step::mount;   // named when it fails
    const char* source = nullptr;        // bind: host path; filesystem: source name; symlink: its text
    const char* target = nullptr;        // inside the new root; nullptr: this step makes the new root
    const char* fs_type = nullptr;       // filesystem: "tmpfs", "proc", "overlay"...
    const mount_param* params = nullptr; // filesystem: for fsconfig
    std::uint32_t param_count = 0;
    const char* const* legacy_data = nullptr;  // filesystem: mount(2) data, tried in order on EINVAL
    unsigned long flags = 0;             // MS_* for mount(2) (propagation: ms_private or ms_slave)
    std::uint64_t attributes = 0;        // MOUNT_ATTR_* to set
    unsigned mode = 0;                   // make_directory, make_file
    mount_point point = mount_point::none;
    bool recursive = false;              // bind, set_attributes
    bool optional = false;               // a missing source or target skips the step
    const char* const* submounts = nullptr;  // bind: mounts below the source, relative, for the
                                             // fallback without mount_setattr (null-terminated)
    std::uint64_t parent_mount_ns = 0;   // set_propagation: refuse to run in this mount namespace
    // bind: the parent makes this one, idmapped (MOUNT_ATTR_IDMAP needs
    // CAP_SYS_ADMIN over the filesystem, which the child in its user
    // namespace lacks), and sends it; the child attaches what it received
    // in mount_context::detached_fds[detached_slot]. -1: the child binds.
    int detached_slot = -1;
    bool host_target = false;  // bind: the target is a host path (an overlay layer), not one in the root
};

// What the steps of one run share. Writable by the child; with
// clone(CLONE_VM) the parent can read it after a failure.
struct mount_context {
    int root_fd = -1;            // the new root once a step made it (O_PATH, close-on-exec)
    bool host_paths = false;     // guards: targets are plain host paths, not inside a root
    ctr::step failed_step = ctr::step::none;  // the part of the step that failed, when finer
    char* message = nullptr;     // the kernel's fs_context message for a failed filesystem
    std::size_t message_size = 0;
    const int* detached_fds = nullptr;  // mounts the parent made for steps with a detached_slot
};

inline constexpr std::size_t mount_path_max = 4096;

// ---- helpers (async-signal-safe) ------------------------------------------

CTR_CHILD_CODE inline std::size_t mount_strlen(const char* s) noexcept {
    std::size_t n = 0;
    while (s[n] != '\0') ++n;
    return n;
}

CTR_CHILD_CODE inline bool mount_streq(const char* a, const char* b) noexcept {
    while (*a != '\0' && *a == *b) ++a, ++b;
    return *a == *b;
}

// "/proc/self/fd/N" into `out` (at least 32 bytes).
CTR_CHILD_CODE inline const char* proc_fd_path(int fd, char* out) noexcept {
    const char prefix[] = "/proc/self/fd/";
    std::size_t n = 0;
    for (; prefix[n] != '\0'; ++n) out[n] = prefix[n];
    char digits[16];
    std::size_t count = 0;
    unsigned value = static_cast<unsigned>(fd);
    do {
        digits[count++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (count > 0) out[n++] = digits[--count];
    out[n] = '\0';
    return out;
}

CTR_CHILD_CODE inline void close_fd(int fd) noexcept {
    if (fd >= 0) sys::close(fd);
}

CTR_CHILD_CODE inline long mount_fail(mount_context& ctx, ctr::step part, long error) noexcept {
    if (ctx.failed_step == ctr::step::none) ctx.failed_step = part;
    return error;
}

// Keeps the last error line ("e ...") of a filesystem context's log, for
// the parent's message.
CTR_CHILD_CODE inline void keep_fs_message(int fs_fd, mount_context& ctx) noexcept {
    if (ctx.message == nullptr || ctx.message_size == 0) return;
    char line[256];
    for (int i = 0; i < 16; ++i) {
        const long n = sys::read(fs_fd, line, sizeof line - 1);
        if (n <= 0) break;
        if (n < 3 || line[0] != 'e' || line[1] != ' ') continue;
        std::size_t k = 0;
        for (long j = 2; j < n && k + 1 < ctx.message_size; ++j) ctx.message[k++] = line[j];
        ctx.message[k] = '\0';
    }
}

// The kernel's statfs flags of the mount an fd is on, as the MS_* flags a
// bind remount must repeat. In a user namespace the kernel locks nosuid,
// nodev, noexec, ro and the atime flags of mounts that came from a more
// privileged namespace; a remount that drops one fails with EPERM.
CTR_CHILD_CODE inline long mount_flags_to_keep(int fd, unsigned long& out) noexcept {
    struct statfs st {};
    if (const long r = sys::fstatfs(fd, &st); r < 0) return r;
    using namespace mount_abi;
    const auto f = static_cast<unsigned long>(st.f_flags);
    out = 0;
    if (f & st_rdonly) out |= ms_rdonly;
    if (f & st_nosuid) out |= ms_nosuid;
    if (f & st_nodev) out |= ms_nodev;
    if (f & st_noexec) out |= ms_noexec;
    if (f & st_noatime) out |= ms_noatime;
    if (f & st_nodiratime) out |= ms_nodiratime;
    if (f & st_relatime) out |= ms_relatime;
    if (f & st_nosymfollow) out |= ms_nosymfollow;
    return 0;
}

CTR_CHILD_CODE inline unsigned long attributes_to_ms(std::uint64_t attributes) noexcept {
    using namespace mount_abi;
    unsigned long flags = 0;
    if (attributes & attr_rdonly) flags |= ms_rdonly;
    if (attributes & attr_nosuid) flags |= ms_nosuid;
    if (attributes & attr_nodev) flags |= ms_nodev;
    if (attributes & attr_noexec) flags |= ms_noexec;
    if (attributes & attr_nosymfollow) flags |= ms_nosymfollow;
    return flags;
}

// ---- resolving paths inside a root ----------------------------------------

// The openat2 fallback: walks `path` one component at a time from `root`,
// opening each with O_NOFOLLOW. A symlink's text is spliced into the rest of
// the path, an absolute one restarting at `root`; ".." at `root` stays
// there. So nothing leaves `root` by symlinks or "..". (Unlike
// RESOLVE_IN_ROOT it cannot detect a directory renamed concurrently out of
// the root; nobody else should be writing into a rootfs being set up.)
// Returns an O_PATH fd or -errno. Async-signal-safe.
CTR_CHILD_CODE inline long walk_in_root(int root, const char* path) noexcept {
    char rest[mount_path_max];
    char link[mount_path_max];
    std::size_t length = mount_strlen(path);
    if (length >= sizeof rest) return -ENAMETOOLONG;
    for (std::size_t i = 0; i <= length; ++i) rest[i] = path[i];

    long current = sys::openat(root, ".", O_PATH | O_CLOEXEC | O_DIRECTORY);
    if (current < 0) return current;
    int depth = 0;  // components below root, for clamping ".."
    int links = 0;
    std::size_t position = 0;
    for (;;) {
        while (rest[position] == '/') ++position;
        if (rest[position] == '\0') return current;
        std::size_t end = position;
        while (rest[end] != '\0' && rest[end] != '/') ++end;
        std::size_t after = end;
        while (rest[after] == '/') ++after;
        const bool last = rest[after] == '\0';
        const char saved = rest[end];
        rest[end] = '\0';
        const char* name = rest + position;

        if (mount_streq(name, ".")) {
            rest[end] = saved;
            position = end;
            continue;
        }
        if (mount_streq(name, "..")) {
            rest[end] = saved;
            position = end;
            if (depth == 0) continue;
            const long up = sys::openat(static_cast<int>(current), "..", O_PATH | O_CLOEXEC | O_DIRECTORY);
            close_fd(static_cast<int>(current));
            if (up < 0) return up;
            current = up;
            --depth;
            continue;
        }
        const long next = sys::openat(static_cast<int>(current), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        rest[end] = saved;
        if (next < 0) {
            close_fd(static_cast<int>(current));
            return next;
        }
        struct stat st {};
        if (const long r = sys::fstatat(static_cast<int>(next), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); r < 0) {
            close_fd(static_cast<int>(next));
            close_fd(static_cast<int>(current));
            return r;
        }
        if (S_ISLNK(st.st_mode)) {
            long n = -ELOOP;
            if (++links <= 40) n = sys::readlinkat(static_cast<int>(next), "", link, sizeof link);
            close_fd(static_cast<int>(next));
            if (n < 0 || static_cast<std::size_t>(n) >= sizeof link) {
                close_fd(static_cast<int>(current));
                return n < 0 ? n : -ENAMETOOLONG;
            }
            // rest = link + "/" + what followed the link's component
            const std::size_t tail = length - end;
            if (static_cast<std::size_t>(n) + 1 + tail >= sizeof rest) {
                close_fd(static_cast<int>(current));
                return -ENAMETOOLONG;
            }
            // The tail moves within the same buffer: copy from whichever end
            // keeps the bytes not yet moved intact.
            const std::size_t to = static_cast<std::size_t>(n) + 1;
            if (to > end) {
                for (std::size_t i = tail + 1; i-- > 0;) rest[to + i] = rest[end + i];
            } else {
                for (std::size_t i = 0; i <= tail; ++i) rest[to + i] = rest[end + i];
            }
            for (long i = 0; i < n; ++i) rest[i] = link[i];
            rest[n] = '/';
            length = static_cast<std::size_t>(n) + 1 + tail;
            position = 0;
            if (link[0] == '/') {
                close_fd(static_cast<int>(current));
                current = sys::openat(root, ".", O_PATH | O_CLOEXEC | O_DIRECTORY);
                if (current < 0) return current;
                depth = 0;
            }
            continue;
        }
        if (!last && !S_ISDIR(st.st_mode)) {
            close_fd(static_cast<int>(next));
            close_fd(static_cast<int>(current));
            return -ENOTDIR;
        }
        close_fd(static_cast<int>(current));
        current = next;
        ++depth;
        position = end;
    }
}

// An O_PATH fd for `path` resolved inside `root`, or -errno. `beneath`
// refuses symlinks altogether (for mount points read from mountinfo, which
// never contain one). Async-signal-safe.
CTR_CHILD_CODE inline long open_in_root(int root, const char* path, bool beneath = false) noexcept {
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = beneath ? (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
                          : (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    long r = -EAGAIN;
    // EAGAIN: a concurrent rename or mount made the kernel give up on ".."
    // checks; trying again is what the man page suggests.
    for (int attempt = 0; attempt < 8 && r == -EAGAIN; ++attempt) r = sys::openat2(root, path, &how, sizeof how);
    if (r != -ENOSYS) return r;
    return walk_in_root(root, path);
}

// The fd of a step's target: resolved in the new root (creating what is
// missing when `point` says so), or as a host path for guards.
// Async-signal-safe.
CTR_CHILD_CODE inline long open_target(mount_context& ctx, const char* path, mount_point point,
                                       unsigned mode) noexcept {
    if (ctx.host_paths) {
        const long r = sys::openat(AT_FDCWD, path, O_PATH | O_CLOEXEC);
        return r < 0 ? mount_fail(ctx, ctr::step::resolve_path, r) : r;
    }
    if (ctx.root_fd < 0) return mount_fail(ctx, ctr::step::resolve_path, -EBADF);
    long fd = open_in_root(ctx.root_fd, path);
    if (fd != -ENOENT || point == mount_point::none)
        return fd < 0 ? mount_fail(ctx, ctr::step::resolve_path, fd) : fd;

    char buffer[mount_path_max];
    const std::size_t length = mount_strlen(path);
    if (length >= sizeof buffer) return mount_fail(ctx, ctr::step::resolve_path, -ENAMETOOLONG);
    for (std::size_t i = 0; i <= length; ++i) buffer[i] = path[i];

    // The common case first: only the last component is missing (the
    // entries of a fresh /dev). It is made in its parent, resolved inside
    // the root once, and opened from there without following anything:
    // three calls where the walk below takes six.
    std::size_t slash = length;
    while (slash > 0 && buffer[slash - 1] != '/') --slash;
    const char* last_name = buffer + slash;
    const bool plain_name = slash > 0 && last_name[0] != '\0' && !mount_streq(last_name, ".") &&
                            !mount_streq(last_name, "..");
    if (plain_name) {
        const char saved = buffer[slash];
        buffer[slash] = '\0';  // the parent, with its trailing '/'
        const long parent = open_in_root(ctx.root_fd, buffer);
        buffer[slash] = saved;
        if (parent >= 0) {
            const int p = static_cast<int>(parent);
            long made;
            if (point == mount_point::file) {
                made = sys::openat(p, last_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
                if (made >= 0) close_fd(static_cast<int>(made));
            } else {
                made = sys::mkdirat(p, last_name, mode);
            }
            if (made < 0 && made != -EEXIST) {
                close_fd(p);
                return mount_fail(ctx, ctr::step::make_mount_point, made);
            }
            fd = open_in_root(p, last_name, true);
            close_fd(p);
            // A name that someone else made meanwhile (EEXIST), perhaps a
            // symlink: the walk below resolves it inside the root.
            if (fd >= 0) return fd;
        } else if (parent != -ENOENT) {
            return mount_fail(ctx, ctr::step::resolve_path, parent);
        }
    }

    // Create what is missing, one component at a time, each time resolving
    // the prefix again inside the root: a component is created only in a
    // directory that the root-confined resolution reached.
    std::size_t position = 0;
    for (;;) {
        while (buffer[position] == '/') ++position;
        if (buffer[position] == '\0') break;
        std::size_t end = position;
        while (buffer[end] != '\0' && buffer[end] != '/') ++end;
        std::size_t after = end;
        while (buffer[after] == '/') ++after;
        const bool last = buffer[after] == '\0';
        const char saved = buffer[end];
        buffer[end] = '\0';
        fd = open_in_root(ctx.root_fd, buffer);
        if (fd == -ENOENT) {
            const char first = buffer[position];
            buffer[position] = '\0';  // the prefix, with its trailing '/'
            const long parent = open_in_root(ctx.root_fd, position == 0 ? "/" : buffer);
            buffer[position] = first;
            if (parent < 0) return mount_fail(ctx, ctr::step::resolve_path, parent);
            const char* name = buffer + position;
            long made;
            if (last && point == mount_point::file) {
                made = sys::openat(static_cast<int>(parent), name,
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
                if (made >= 0) close_fd(static_cast<int>(made));
            } else {
                made = sys::mkdirat(static_cast<int>(parent), name, last ? mode : 0755);
            }
            close_fd(static_cast<int>(parent));
            if (made < 0 && made != -EEXIST) return mount_fail(ctx, ctr::step::make_mount_point, made);
            fd = open_in_root(ctx.root_fd, buffer);
        }
        buffer[end] = saved;
        if (fd < 0) return mount_fail(ctx, ctr::step::resolve_path, fd);
        if (last) return fd;
        close_fd(static_cast<int>(fd));
        position = end;
    }
    // Only slashes: the root itself.
    fd = sys::openat(ctx.root_fd, ".", O_PATH | O_CLOEXEC);
    return fd < 0 ? mount_fail(ctx, ctr::step::resolve_path, fd) : fd;
}

// ---- attaching mounts -----------------------------------------------------

// Puts the detached mount `mnt` (from open_tree or fsmount) at the step's
// target. For the new root it goes on top of "/": the process's own root
// and cwd stay below it, so host paths (bind sources, /proc/self/fd) keep
// resolving to the host until the root is entered, and `mnt` itself becomes
// ctx.root_fd. Async-signal-safe.
CTR_CHILD_CODE inline long attach_mount(const mount_step& s, mount_context& ctx, int mnt) noexcept {
    using namespace mount_abi;
    if (s.target == nullptr) {
        const long r = sys::move_mount(mnt, "", AT_FDCWD, "/", move_mount_f_empty_path);
        if (r < 0) return r;
        ctx.root_fd = mnt;
        return 0;
    }
    const long target = open_target(ctx, s.target, s.point, 0755);
    if (target < 0) return target;
    const long r = sys::move_mount(mnt, "", static_cast<int>(target), "",
                                   move_mount_f_empty_path | move_mount_t_empty_path);
    close_fd(static_cast<int>(target));
    return r;
}

// mount(2) onto the step's target, resolved as an fd and named through
// /proc/self/fd (the host's /proc: the process's root is still the host's).
// For the new root, the mount goes on top of "/" and "/.." opens it: ".."
// from the root stays on the root dentry and then crosses into the mount
// stacked there. Returns 0 or -errno; on success `*mounted` (if given) gets
// an O_PATH fd of the new mount's root.
CTR_CHILD_CODE inline long legacy_mount(const mount_step& s, mount_context& ctx, const char* source,
                                        const char* fs_type, unsigned long flags, const void* data,
                                        long* mounted) noexcept {
    if (s.target == nullptr) {
        if (const long r = sys::mount(source, "/", fs_type, flags, data); r < 0) return r;
        const long root = sys::openat(AT_FDCWD, "/..", O_PATH | O_CLOEXEC | O_DIRECTORY);
        if (root < 0) return root;
        ctx.root_fd = static_cast<int>(root);
        if (mounted) *mounted = sys::openat(static_cast<int>(root), ".", O_PATH | O_CLOEXEC);
        return 0;
    }
    const long target = open_target(ctx, s.target, s.point, 0755);
    if (target < 0) return target;
    char name[32];
    const long r = sys::mount(source, proc_fd_path(static_cast<int>(target), name), fs_type, flags, data);
    close_fd(static_cast<int>(target));
    if (r < 0) return r;
    if (mounted) {
        // The target again, now through the new mount: it is the top one there.
        *mounted = open_target(ctx, s.target, mount_point::none, 0);
        if (*mounted < 0) return *mounted;
    }
    return 0;
}

// Remounts the mount whose root `fd` is with `flags` added to what it has.
CTR_CHILD_CODE inline long remount_one(int fd, unsigned long flags) noexcept {
    using namespace mount_abi;
    unsigned long keep = 0;
    if (const long r = mount_flags_to_keep(fd, keep); r < 0) return r;
    char name[32];
    return sys::mount(nullptr, proc_fd_path(fd, name), nullptr, ms_remount | ms_bind | keep | flags, nullptr);
}

// The fallback for mount_setattr: remount the top mount and, for a
// recursive bind, each submount the parent listed. A listed mount that is
// not there (hidden, or gone since) is skipped. Async-signal-safe.
CTR_CHILD_CODE inline long remount_tree(int fd, unsigned long flags, const char* const* submounts,
                                        bool recursive) noexcept {
    if (const long r = remount_one(fd, flags); r < 0) return r;
    if (!recursive || submounts == nullptr) return 0;
    for (const char* const* sub = submounts; *sub != nullptr; ++sub) {
        const long child = open_in_root(fd, *sub, true);
        if (child == -ENOENT || child == -EXDEV || child == -ELOOP) continue;
        if (child < 0) return child;
        const long r = remount_one(static_cast<int>(child), flags);
        close_fd(static_cast<int>(child));
        if (r < 0) return r;
    }
    return 0;
}

// mount_setattr on a mount (attached or not); -ENOSYS when the kernel lacks it.
CTR_CHILD_CODE inline long set_attributes_fd(int fd, std::uint64_t attributes, bool recursive) noexcept {
    using namespace mount_abi;
    mount_attr attr{};
    attr.attr_set = attributes;
    return sys::mount_setattr(fd, "", at_empty_path | (recursive ? at_recursive : 0U), &attr, sizeof attr);
}

// ---- the operations -------------------------------------------------------

// A bind of a host path, or of `from_fd` (read_only: the target onto
// itself). Async-signal-safe.
CTR_CHILD_CODE inline long run_bind(const mount_step& s, mount_context& ctx, int from_fd = -1) noexcept {
    using namespace mount_abi;
    if (s.detached_slot >= 0 && ctx.detached_fds && ctx.detached_fds[s.detached_slot] >= 0) {
        // Made by the parent (idmapped), with its attributes already set.
        const int mnt = ctx.detached_fds[s.detached_slot];
        const long r = s.host_target ? sys::move_mount(mnt, "", AT_FDCWD, s.target, move_mount_f_empty_path)
                                     : attach_mount(s, ctx, mnt);
        if (ctx.root_fd != mnt) close_fd(mnt);
        return r;
    }
    // The parent could not idmap it: an overlay layer stays where it is, any
    // other bind is made plain below.
    if (s.host_target) return 0;
    const unsigned clone_flags = open_tree_clone | open_tree_cloexec | (s.recursive ? at_recursive : 0U);
    const long tree = from_fd >= 0 ? sys::open_tree(from_fd, "", clone_flags | at_empty_path)
                                   : sys::open_tree(AT_FDCWD, s.source, clone_flags);
    if (tree >= 0) {
        bool remount = false;
        if (s.attributes != 0) {
            // On the detached copy, before it is attached: the mount is
            // never visible without its attributes.
            const long r = set_attributes_fd(static_cast<int>(tree), s.attributes, s.recursive);
            if (r == -ENOSYS) remount = true;
            else if (r < 0) {
                close_fd(static_cast<int>(tree));
                return mount_fail(ctx, ctr::step::set_mount_attributes, r);
            }
        }
        long r = attach_mount(s, ctx, static_cast<int>(tree));
        if (r == 0 && remount) {
            r = remount_tree(static_cast<int>(tree), attributes_to_ms(s.attributes), s.submounts, s.recursive);
            if (r < 0) mount_fail(ctx, ctr::step::set_mount_attributes, r);
        }
        if (ctx.root_fd != tree) close_fd(static_cast<int>(tree));
        return r;
    }
    if (tree != -ENOSYS) return (s.optional && tree == -ENOENT) ? 0 : tree;

    // mount(2): MS_BIND ignores the other flags, so attributes take a remount.
    char from_name[32];
    const char* source = from_fd >= 0 ? proc_fd_path(from_fd, from_name) : s.source;
    long mounted = -1;
    long r = legacy_mount(s, ctx, source, nullptr, ms_bind | (s.recursive ? ms_rec : 0UL), nullptr,
                          s.attributes != 0 ? &mounted : nullptr);
    if (r < 0) return (s.optional && r == -ENOENT && ctx.failed_step == ctr::step::none) ? 0 : r;
    if (s.attributes != 0) {
        if (mounted < 0) return mount_fail(ctx, ctr::step::set_mount_attributes, mounted);
        r = remount_tree(static_cast<int>(mounted), attributes_to_ms(s.attributes), s.submounts, s.recursive);
        close_fd(static_cast<int>(mounted));
        if (r < 0) return mount_fail(ctx, ctr::step::set_mount_attributes, r);
    }
    return 0;
}

// mount(2) for a filesystem, trying each legacy data string in turn while
// the kernel says EINVAL (an option this kernel does not know).
CTR_CHILD_CODE inline long run_filesystem_legacy(const mount_step& s, mount_context& ctx) noexcept {
    const char* const* data = s.legacy_data;
    if (data == nullptr || *data == nullptr) return legacy_mount(s, ctx, s.source, s.fs_type, s.flags, nullptr, nullptr);
    long r = -EINVAL;
    for (; *data != nullptr; ++data) {
        r = legacy_mount(s, ctx, s.source, s.fs_type, s.flags, *data, nullptr);
        if (r != -EINVAL || ctx.failed_step != ctr::step::none) break;
    }
    return r;
}

// A new filesystem: fsopen, fsconfig for each parameter, create, fsmount
// with the attributes, attach. Async-signal-safe.
CTR_CHILD_CODE inline long run_filesystem(const mount_step& s, mount_context& ctx) noexcept {
    using namespace mount_abi;
    const long fs = sys::fsopen(s.fs_type, fsopen_cloexec);
    if (fs == -ENOSYS) return run_filesystem_legacy(s, ctx);
    if (fs < 0) return fs;
    const int f = static_cast<int>(fs);
    // The name mountinfo shows as the source ("none" otherwise); mount(2)
    // passes it as its first argument.
    if (s.source != nullptr) sys::fsconfig(f, fsconfig_set_string, "source", s.source, 0);
    for (std::uint32_t i = 0; i < s.param_count; ++i) {
        const mount_param& p = s.params[i];
        long r = p.value == nullptr ? sys::fsconfig(f, fsconfig_set_flag, p.key, nullptr, 0)
                                    : sys::fsconfig(f, fsconfig_set_string, p.key, p.value, 0);
        if (r == -EINVAL && p.rejected == on_rejected::alternative && p.alternative != nullptr)
            r = sys::fsconfig(f, fsconfig_set_string, p.key, p.alternative, 0);
        else if (r == -EINVAL && p.rejected == on_rejected::skip)
            r = 0;
        else if (r == -EINVAL && p.rejected == on_rejected::use_mount2) {
            close_fd(f);
            return run_filesystem_legacy(s, ctx);
        }
        if (r < 0) {
            keep_fs_message(f, ctx);
            close_fd(f);
            return r;
        }
    }
    if (const long r = sys::fsconfig(f, fsconfig_cmd_create, nullptr, nullptr, 0); r < 0) {
        // A filesystem not yet converted to the new mount API (overlayfs
        // before 6.5) takes any key at fsconfig and refuses an unknown one
        // (lowerdir+) only here: the steps that have mount(2) data go that
        // way instead.
        bool has_legacy_way = false;
        for (std::uint32_t i = 0; i < s.param_count; ++i)
            has_legacy_way = has_legacy_way || s.params[i].rejected == on_rejected::use_mount2;
        if (r == -EINVAL && has_legacy_way) {
            close_fd(f);
            return run_filesystem_legacy(s, ctx);
        }
        keep_fs_message(f, ctx);
        close_fd(f);
        return r;
    }
    const long mnt = sys::fsmount(f, fsmount_cloexec, static_cast<unsigned>(s.attributes));
    if (mnt < 0) keep_fs_message(f, ctx);
    close_fd(f);
    if (mnt < 0) return mnt;
    const long r = attach_mount(s, ctx, static_cast<int>(mnt));
    if (ctx.root_fd != mnt) close_fd(static_cast<int>(mnt));
    return r;
}

CTR_CHILD_CODE inline long run_symlink(const mount_step& s, mount_context& ctx) noexcept {
    // The link's directory is resolved (and made) in the root; the link is
    // created in it by name.
    char buffer[mount_path_max];
    const std::size_t length = mount_strlen(s.target);
    if (length >= sizeof buffer) return mount_fail(ctx, ctr::step::resolve_path, -ENAMETOOLONG);
    for (std::size_t i = 0; i <= length; ++i) buffer[i] = s.target[i];
    std::size_t slash = length;
    while (slash > 0 && buffer[slash - 1] != '/') --slash;
    const char* name = buffer + slash;
    if (*name == '\0' || mount_streq(name, ".") || mount_streq(name, "..")) return -EINVAL;
    long dir;
    if (slash == 0) {
        dir = ctx.host_paths ? sys::openat(AT_FDCWD, ".", O_PATH | O_CLOEXEC)
                             : sys::openat(ctx.root_fd, ".", O_PATH | O_CLOEXEC);
    } else {
        char keep = buffer[slash];
        buffer[slash] = '\0';
        dir = open_target(ctx, buffer, mount_point::directory, 0755);
        buffer[slash] = keep;
    }
    if (dir < 0) return dir;
    long r = sys::symlinkat(s.source, static_cast<int>(dir), name);
    if (r == -EEXIST) {
        // Already there with the same text is fine (a rootfs that has it).
        char existing[mount_path_max];
        const long n = sys::readlinkat(static_cast<int>(dir), name, existing, sizeof existing - 1);
        if (n >= 0) {
            existing[n] = '\0';
            if (mount_streq(existing, s.source)) r = 0;
        }
    }
    close_fd(static_cast<int>(dir));
    return r;
}

CTR_CHILD_CODE inline long run_mask(const mount_step& s, mount_context& ctx) noexcept {
    using namespace mount_abi;
    const long target = open_target(ctx, s.target, mount_point::none, 0);
    if (target == -ENOENT) {
        ctx.failed_step = ctr::step::none;
        return 0;  // nothing to hide
    }
    if (target < 0) return target;
    const int t = static_cast<int>(target);
    struct stat st {};
    long r = sys::fstatat(t, "", &st, AT_EMPTY_PATH);
    if (r < 0) {
        close_fd(t);
        return r;
    }
    if (S_ISDIR(st.st_mode)) {
        // An empty read-only tmpfs hides the directory's contents.
        const long fs = sys::fsopen("tmpfs", fsopen_cloexec);
        if (fs >= 0) {
            sys::fsconfig(static_cast<int>(fs), fsconfig_set_string, "source", "tmpfs", 0);
            r = sys::fsconfig(static_cast<int>(fs), fsconfig_cmd_create, nullptr, nullptr, 0);
            long mnt = r;
            if (r == 0) mnt = sys::fsmount(static_cast<int>(fs), fsmount_cloexec,
                                           static_cast<unsigned>(attr_rdonly | attr_nosuid | attr_nodev | attr_noexec));
            close_fd(static_cast<int>(fs));
            if (mnt >= 0) {
                r = sys::move_mount(static_cast<int>(mnt), "", t, "", move_mount_f_empty_path | move_mount_t_empty_path);
                close_fd(static_cast<int>(mnt));
            } else {
                r = mnt;
            }
        } else if (fs == -ENOSYS) {
            char name[32];
            r = sys::mount("tmpfs", proc_fd_path(t, name), "tmpfs", ms_rdonly | ms_nosuid | ms_nodev | ms_noexec,
                           nullptr);
        } else {
            r = fs;
        }
    } else {
        // A file reads as empty: /dev/null over it.
        const long tree = sys::open_tree(AT_FDCWD, "/dev/null", open_tree_clone | open_tree_cloexec);
        if (tree >= 0) {
            r = sys::move_mount(static_cast<int>(tree), "", t, "", move_mount_f_empty_path | move_mount_t_empty_path);
            close_fd(static_cast<int>(tree));
        } else if (tree == -ENOSYS) {
            char name[32];
            r = sys::mount("/dev/null", proc_fd_path(t, name), nullptr, ms_bind, nullptr);
        } else {
            r = tree;
        }
    }
    close_fd(t);
    return r;
}

CTR_CHILD_CODE inline long run_set_attributes(const mount_step& s, mount_context& ctx) noexcept {
    const long target = open_target(ctx, s.target, mount_point::none, 0);
    if (target < 0) return target;
    long r = set_attributes_fd(static_cast<int>(target), s.attributes, s.recursive);
    if (r == -ENOSYS)
        r = remount_tree(static_cast<int>(target), attributes_to_ms(s.attributes), s.submounts, s.recursive);
    close_fd(static_cast<int>(target));
    return r;
}

CTR_CHILD_CODE inline long run_read_only(const mount_step& s, mount_context& ctx) noexcept {
    const long target = open_target(ctx, s.target, mount_point::none, 0);
    if (target == -ENOENT) {
        ctx.failed_step = ctr::step::none;
        return 0;
    }
    if (target < 0) return target;
    const long r = run_bind(s, ctx, static_cast<int>(target));
    close_fd(static_cast<int>(target));
    return r;
}

// Writes the step's text into the file at its target, which must exist: a
// sysctl under the new root's /proc/sys, after that proc is mounted and
// before /proc/sys is made read-only. The target is resolved inside the root
// as an O_PATH fd and opened for writing through /proc/self/fd (the host's
// proc: the process's root is still the host's). One write(2) call carries
// the whole text, as sysctl files take it. Async-signal-safe.
CTR_CHILD_CODE inline long run_write_file(const mount_step& s, mount_context& ctx) noexcept {
    const long target = open_target(ctx, s.target, mount_point::none, 0);
    if (target < 0) return target;
    char name[32];
    const long fd = sys::openat(AT_FDCWD, proc_fd_path(static_cast<int>(target), name), O_WRONLY | O_CLOEXEC);
    close_fd(static_cast<int>(target));
    if (fd < 0) return fd;
    const std::size_t length = mount_strlen(s.source);
    long r;
    do r = sys::write(static_cast<int>(fd), s.source, length);
    while (r == -EINTR);
    close_fd(static_cast<int>(fd));
    if (r < 0) return r;
    return static_cast<std::size_t>(r) == length ? 0 : -EIO;
}

// Makes the new root the process's root. pivot_root(".", ".") puts the old
// root on top of the new one; unmounting "." then detaches it, so nothing of
// the host stays reachable in this mount namespace.
CTR_CHILD_CODE inline long run_pivot_root(mount_context& ctx) noexcept {
    if (ctx.root_fd < 0) return -EBADF;
    if (const long r = sys::fchdir(ctx.root_fd); r < 0) return r;
    if (const long r = sys::pivot_root(".", "."); r < 0) return r;
    if (const long r = sys::umount2(".", mount_abi::mnt_detach); r < 0) return mount_fail(ctx, ctr::step::unmount, r);
    if (const long r = sys::chdir("/"); r < 0) return r;
    close_fd(ctx.root_fd);
    ctx.root_fd = -1;
    return 0;
}

// chroot: the old root stays mounted, only out of reach by path; a process
// that keeps CAP_SYS_CHROOT can get back out. Hence only by name.
CTR_CHILD_CODE inline long run_change_root(mount_context& ctx) noexcept {
    if (ctx.root_fd < 0) return -EBADF;
    if (const long r = sys::fchdir(ctx.root_fd); r < 0) return r;
    if (const long r = sys::chroot("."); r < 0) return r;
    if (const long r = sys::chdir("/"); r < 0) return r;
    close_fd(ctx.root_fd);
    ctx.root_fd = -1;
    return 0;
}

CTR_CHILD_CODE inline long run_set_propagation(const mount_step& s, mount_context& ctx) noexcept {
    // A safety net: these steps change the mount table of the namespace they
    // run in, which must be one of the child's own.
    if (s.parent_mount_ns != 0) {
        struct stat st {};
        if (sys::fstatat(AT_FDCWD, "/proc/self/ns/mnt", &st, 0) == 0 && st.st_ino == s.parent_mount_ns)
            return mount_fail(ctx, ctr::step::set_propagation, -EPERM);
    }
    return sys::mount(nullptr, "/", nullptr, mount_abi::ms_rec | s.flags, nullptr);
}

// Runs one step: 0 or -errno (ctx.failed_step may then name the part that
// failed). Async-signal-safe.
CTR_CHILD_CODE inline long run_mount_step(const mount_step& s, mount_context& ctx) noexcept {
    switch (s.kind) {
        case mount_step_kind::set_propagation:
            return run_set_propagation(s, ctx);
        case mount_step_kind::bind:
            return run_bind(s, ctx);
        case mount_step_kind::filesystem:
            return run_filesystem(s, ctx);
        case mount_step_kind::make_directory:
        case mount_step_kind::make_file: {
            const long fd = open_target(ctx, s.target,
                                        s.kind == mount_step_kind::make_file ? mount_point::file : mount_point::directory,
                                        s.mode);
            if (fd < 0) return fd;
            close_fd(static_cast<int>(fd));
            return 0;
        }
        case mount_step_kind::make_symlink:
            return run_symlink(s, ctx);
        case mount_step_kind::set_attributes:
            return run_set_attributes(s, ctx);
        case mount_step_kind::mask:
            return run_mask(s, ctx);
        case mount_step_kind::read_only:
            return run_read_only(s, ctx);
        case mount_step_kind::pivot_root:
            return run_pivot_root(ctx);
        case mount_step_kind::change_root:
            return run_change_root(ctx);
        case mount_step_kind::write_file:
            return run_write_file(s, ctx);
    }
    return -EINVAL;
}

// Runs steps in order and stops at the first failure: 0, or -errno with
// `failed` set to its index. On failure the new root's fd is closed.
// Async-signal-safe.
CTR_CHILD_CODE inline long run_mount_steps(const mount_step* steps, std::size_t count, mount_context& ctx,
                                           std::size_t& failed) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
        const long r = run_mount_step(steps[i], ctx);
        if (r < 0) {
            failed = i;
            close_fd(ctx.root_fd);
            ctx.root_fd = -1;
            return r;
        }
    }
    return 0;
}

}  // namespace ctr::detail
