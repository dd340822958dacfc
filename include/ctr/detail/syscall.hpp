#pragma once
// The one layer through which ctr makes every system call.
//
// Each wrapper returns the kernel's result: a value >= 0, or -errno. None of
// them touches errno, so they are safe in the spawn child, which shares the
// parent's memory (see raw_syscall.hpp), and every one of them is
// async-signal-safe.
//
// Tests make a chosen call fail with a chosen errno through fault_injection
// (below), so that each error path of the library runs for real. Faults are
// also seen in the spawn child, because it shares the parent's memory.

#include <ctr/detail/raw_syscall.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace ctr::detail::sys {

// Every call the library makes, named for fault injection.
enum class call : unsigned {
    pipe2,
    mmap,
    munmap,
    clone3,
    clone,
    openat,
    close,
    fcntl,
    dup3,
    read,
    write,
    ppoll,
    waitid,
    pidfd_open,
    pidfd_send_signal,
    pidfd_getfd,
    rt_sigaction,
    rt_sigprocmask,
    prctl,
    setsid,
    umask,
    prlimit,
    close_range,
    getdents64,
    setgroups,
    setresgid,
    setresuid,
    chdir,
    execve,
    // namespaces
    unshare,
    setns,
    sethostname,
    setdomainname,
    // files and mounts
    mkdirat,
    unlinkat,
    symlinkat,
    mknodat,
    fchdir,
    chroot,
    fstatat,
    fstatfs,
    ioctl,
    mount,
    umount2,
    pivot_root,
    open_tree,
    move_mount,
    fsopen,
    fsconfig,
    fsmount,
    mount_setattr,
    openat2,
    // processes
    kill,
    wait4,
    signalfd4,
    socket,
    memfd_create,
    // cgroups
    pread64,
    pwrite64,
    bpf,
    // mounts (path resolution and guards)
    readlinkat,
    statx,
    getcwd,
    // sockets: netlink and port forwarding
    bind,
    listen,
    accept4,
    connect,
    sendto,
    recvfrom,
    setsockopt,
    getsockname,
    shutdown,
    epoll_create1,
    epoll_ctl,
    epoll_wait,
    eventfd2,
    getsockopt,
    socketpair,
    splice,
    // confinement: capabilities, seccomp, the init's hand-off
    capget,
    capset,
    seccomp,
    futex,
    sendmsg,
    recvmsg,
    // Landlock
    landlock_create_ruleset,
    landlock_add_rule,
    landlock_restrict_self,
    count_,
};

struct fault_point {
    std::atomic<int> error{0};  // errno to return, 0 when disarmed
    std::atomic<int> skip{0};   // calls that still succeed before the first failure
    std::atomic<int> times{0};  // failures left; -1 fails every call
};

inline constinit std::atomic<bool> faults_armed{false};
inline constinit fault_point fault_points[static_cast<unsigned>(call::count_)]{};

// Returns the errno to fail `c` with, or 0. Async-signal-safe (lock-free atomics).
inline int injected_fault(call c) noexcept {
    if (!faults_armed.load(std::memory_order_relaxed)) return 0;
    fault_point& point = fault_points[static_cast<unsigned>(c)];
    const int error = point.error.load(std::memory_order_relaxed);
    if (error == 0) return 0;
    if (point.skip.load(std::memory_order_relaxed) > 0 &&
        point.skip.fetch_sub(1, std::memory_order_relaxed) > 0)
        return 0;
    int times = point.times.load(std::memory_order_relaxed);
    while (times != 0) {
        if (times < 0) return error;
        if (point.times.compare_exchange_weak(times, times - 1, std::memory_order_relaxed)) return error;
    }
    return 0;
}

// Arms one fault for as long as it lives: the call `c` succeeds `skip` times,
// then fails with `error` `times` times (-1: always). For tests only.
class fault_injection {
public:
    fault_injection(call c, int error, int skip = 0, int times = 1) noexcept : call_(c) {
        fault_point& point = fault_points[static_cast<unsigned>(c)];
        point.skip.store(skip);
        point.times.store(times);
        point.error.store(error);
        faults_armed.store(true);
    }
    ~fault_injection() {
        fault_points[static_cast<unsigned>(call_)].error.store(0);
        bool any = false;
        for (auto& point : fault_points) any = any || point.error.load() != 0;
        faults_armed.store(any);
    }
    fault_injection(const fault_injection&) = delete;
    fault_injection& operator=(const fault_injection&) = delete;

    // Whether every planned failure has happened.
    bool exhausted() const noexcept {
        return fault_points[static_cast<unsigned>(call_)].times.load() == 0;
    }

private:
    call call_;
};

#define CTR_FAULT_CHECK(name)                                         \
    if (const int ctr_injected_ = injected_fault(call::name); ctr_injected_ != 0) \
    return -ctr_injected_

inline long pipe2(int fds[2], int flags) noexcept {
    CTR_FAULT_CHECK(pipe2);
    return raw::call(SYS_pipe2, fds, flags);
}
// ThreadSanitizer learns of mappings only through libc's mmap and munmap:
// after a raw munmap the old page's access history stays, and the next
// mapping at that address (another thread's launch page or child stack)
// reads as a race with the thread that used the old one. Under TSan these
// two go through libc; only the parent calls them.
#if defined(__SANITIZE_THREAD__)
#define CTR_DETAIL_TSAN_MAPPINGS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CTR_DETAIL_TSAN_MAPPINGS 1
#endif
#endif
inline long mmap(void** out, std::size_t length, int prot, int flags) noexcept {
    CTR_FAULT_CHECK(mmap);
#ifdef CTR_DETAIL_TSAN_MAPPINGS
    void* const address = ::mmap(nullptr, length, prot, flags, -1, 0);
    if (address == MAP_FAILED) return -errno;
    *out = address;
    return 0;
#else
    const long result = raw::call(SYS_mmap, 0L, length, prot, flags, -1, 0L);
    if (result < 0 && result > -4096) return result;
    *out = reinterpret_cast<void*>(result);
    return 0;
#endif
}
inline long munmap(void* address, std::size_t length) noexcept {
    CTR_FAULT_CHECK(munmap);
#ifdef CTR_DETAIL_TSAN_MAPPINGS
    return ::munmap(address, length) == 0 ? 0 : -errno;
#else
    return raw::call(SYS_munmap, address, length);
#endif
}
inline long clone3(void* args, std::size_t size, int (*entry)(void*), void* argument) noexcept {
    CTR_FAULT_CHECK(clone3);
    return raw::clone3_run(args, size, entry, argument);
}
// clone(2) with the stack switch done by raw::clone_run.
inline long clone(int (*entry)(void*), void* stack_top, unsigned long flags, void* argument, int* pidfd) noexcept {
    CTR_FAULT_CHECK(clone);
    return raw::clone_run(flags, stack_top, pidfd, entry, argument);
}
inline long openat(int dirfd, const char* path, int flags, unsigned mode = 0) noexcept {
    CTR_FAULT_CHECK(openat);
    return raw::call(SYS_openat, dirfd, path, flags, mode);
}
inline long close(int fd) noexcept {
    CTR_FAULT_CHECK(close);
    return raw::call(SYS_close, fd);
}
inline long fcntl(int fd, int command, long argument = 0) noexcept {
    CTR_FAULT_CHECK(fcntl);
    return raw::call(SYS_fcntl, fd, command, argument);
}
inline long dup3(int from, int to, int flags) noexcept {
    CTR_FAULT_CHECK(dup3);
    return raw::call(SYS_dup3, from, to, flags);
}
inline long read(int fd, void* buffer, std::size_t size) noexcept {
    CTR_FAULT_CHECK(read);
    return raw::call(SYS_read, fd, buffer, size);
}
inline long write(int fd, const void* buffer, std::size_t size) noexcept {
    CTR_FAULT_CHECK(write);
    return raw::call(SYS_write, fd, buffer, size);
}
inline long ppoll(pollfd* fds, unsigned count, const timespec* timeout) noexcept {
    CTR_FAULT_CHECK(ppoll);
    return raw::call(SYS_ppoll, fds, count, timeout, 0L, 8L);
}
// waitid with the rusage argument the kernel has and glibc's wrapper lacks.
inline long waitid(int idtype, int id, siginfo_t* info, int options, rusage* usage) noexcept {
    CTR_FAULT_CHECK(waitid);
    return raw::call(SYS_waitid, idtype, id, info, options, usage);
}
inline long pidfd_open(int pid, unsigned flags) noexcept {
    CTR_FAULT_CHECK(pidfd_open);
    return raw::call(SYS_pidfd_open, pid, flags);
}
inline long pidfd_send_signal(int pidfd, int signal) noexcept {
    CTR_FAULT_CHECK(pidfd_send_signal);
    return raw::call(SYS_pidfd_send_signal, pidfd, signal, 0L, 0U);
}
inline long pidfd_getfd(int pidfd, int target_fd, unsigned flags) noexcept {
    CTR_FAULT_CHECK(pidfd_getfd);
    return raw::call(SYS_pidfd_getfd, pidfd, target_fd, flags);
}

// The kernel's sigaction layout (not glibc's, whose sigset is 128 bytes).
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
};
inline constexpr long kernel_sigset_size = 8;

inline long rt_sigaction(int signal, const kernel_sigaction* action, kernel_sigaction* old) noexcept {
    CTR_FAULT_CHECK(rt_sigaction);
    return raw::call(SYS_rt_sigaction, signal, action, old, kernel_sigset_size);
}
inline long rt_sigprocmask(int how, const unsigned long* set, unsigned long* old) noexcept {
    CTR_FAULT_CHECK(rt_sigprocmask);
    return raw::call(SYS_rt_sigprocmask, how, set, old, kernel_sigset_size);
}
inline long prctl(int option, unsigned long a2 = 0, unsigned long a3 = 0) noexcept {
    CTR_FAULT_CHECK(prctl);
    return raw::call(SYS_prctl, option, a2, a3, 0UL, 0UL);
}
inline long getpid() noexcept { return raw::call(SYS_getpid); }
inline long getppid() noexcept { return raw::call(SYS_getppid); }
inline long setsid() noexcept {
    CTR_FAULT_CHECK(setsid);
    return raw::call(SYS_setsid);
}
inline long umask(unsigned mask) noexcept {
    CTR_FAULT_CHECK(umask);
    return raw::call(SYS_umask, mask);
}
inline long prlimit(int resource, const rlimit* limit) noexcept {
    CTR_FAULT_CHECK(prlimit);
    return raw::call(SYS_prlimit64, 0, resource, limit, 0L);
}
inline long close_range(unsigned first, unsigned last, unsigned flags) noexcept {
    CTR_FAULT_CHECK(close_range);
    return raw::call(SYS_close_range, first, last, flags);
}
inline long getdents64(int fd, void* buffer, std::size_t size) noexcept {
    CTR_FAULT_CHECK(getdents64);
    return raw::call(SYS_getdents64, fd, buffer, size);
}
inline long setgroups(std::size_t count, const gid_t* groups) noexcept {
    CTR_FAULT_CHECK(setgroups);
    return raw::call(SYS_setgroups, count, groups);
}
// Per-task credential changes: glibc's setuid() would signal every thread
// of the process, and the child is a task of its own.
inline long setresgid(gid_t gid) noexcept {
    CTR_FAULT_CHECK(setresgid);
    return raw::call(SYS_setresgid, gid, gid, gid);
}
inline long setresuid(uid_t uid) noexcept {
    CTR_FAULT_CHECK(setresuid);
    return raw::call(SYS_setresuid, uid, uid, uid);
}
inline long chdir(const char* path) noexcept {
    CTR_FAULT_CHECK(chdir);
    return raw::call(SYS_chdir, path);
}
inline long execve(const char* path, char* const* argv, char* const* envp) noexcept {
    CTR_FAULT_CHECK(execve);
    return raw::call(SYS_execve, path, argv, envp);
}
inline long unshare(unsigned long flags) noexcept {
    CTR_FAULT_CHECK(unshare);
    return raw::call(SYS_unshare, flags);
}
inline long setns(int fd, int nstype) noexcept {
    CTR_FAULT_CHECK(setns);
    return raw::call(SYS_setns, fd, nstype);
}
inline long sethostname(const char* name, std::size_t length) noexcept {
    CTR_FAULT_CHECK(sethostname);
    return raw::call(SYS_sethostname, name, length);
}
inline long setdomainname(const char* name, std::size_t length) noexcept {
    CTR_FAULT_CHECK(setdomainname);
    return raw::call(SYS_setdomainname, name, length);
}
inline long mkdirat(int dirfd, const char* path, unsigned mode) noexcept {
    CTR_FAULT_CHECK(mkdirat);
    return raw::call(SYS_mkdirat, dirfd, path, mode);
}
inline long unlinkat(int dirfd, const char* path, int flags) noexcept {
    CTR_FAULT_CHECK(unlinkat);
    return raw::call(SYS_unlinkat, dirfd, path, flags);
}
inline long symlinkat(const char* target, int dirfd, const char* path) noexcept {
    CTR_FAULT_CHECK(symlinkat);
    return raw::call(SYS_symlinkat, target, dirfd, path);
}
inline long mknodat(int dirfd, const char* path, unsigned mode, unsigned long device) noexcept {
    CTR_FAULT_CHECK(mknodat);
    return raw::call(SYS_mknodat, dirfd, path, mode, device);
}
inline long fchdir(int fd) noexcept {
    CTR_FAULT_CHECK(fchdir);
    return raw::call(SYS_fchdir, fd);
}
inline long chroot(const char* path) noexcept {
    CTR_FAULT_CHECK(chroot);
    return raw::call(SYS_chroot, path);
}
inline long fstatat(int dirfd, const char* path, struct stat* out, int flags) noexcept {
    CTR_FAULT_CHECK(fstatat);
    return raw::call(SYS_newfstatat, dirfd, path, out, flags);
}
inline long fstatfs(int fd, struct statfs* out) noexcept {
    CTR_FAULT_CHECK(fstatfs);
    return raw::call(SYS_fstatfs, fd, out);
}
inline long ioctl(int fd, unsigned long request, long argument = 0) noexcept {
    CTR_FAULT_CHECK(ioctl);
    return raw::call(SYS_ioctl, fd, request, argument);
}
inline long mount(const char* source, const char* target, const char* type, unsigned long flags,
                  const void* data) noexcept {
    CTR_FAULT_CHECK(mount);
    return raw::call(SYS_mount, source, target, type, flags, data);
}
inline long umount2(const char* target, int flags) noexcept {
    CTR_FAULT_CHECK(umount2);
    return raw::call(SYS_umount2, target, flags);
}
inline long pivot_root(const char* new_root, const char* put_old) noexcept {
    CTR_FAULT_CHECK(pivot_root);
    return raw::call(SYS_pivot_root, new_root, put_old);
}
inline long open_tree(int dirfd, const char* path, unsigned flags) noexcept {
    CTR_FAULT_CHECK(open_tree);
    return raw::call(SYS_open_tree, dirfd, path, flags);
}
inline long move_mount(int from_dirfd, const char* from_path, int to_dirfd, const char* to_path,
                       unsigned flags) noexcept {
    CTR_FAULT_CHECK(move_mount);
    return raw::call(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}
inline long fsopen(const char* fs_name, unsigned flags) noexcept {
    CTR_FAULT_CHECK(fsopen);
    return raw::call(SYS_fsopen, fs_name, flags);
}
inline long fsconfig(int fd, unsigned command, const char* key, const void* value, int aux) noexcept {
    CTR_FAULT_CHECK(fsconfig);
    return raw::call(SYS_fsconfig, fd, command, key, value, aux);
}
inline long fsmount(int fd, unsigned flags, unsigned attributes) noexcept {
    CTR_FAULT_CHECK(fsmount);
    return raw::call(SYS_fsmount, fd, flags, attributes);
}
// `attr` points to a struct mount_attr of `size` bytes.
inline long mount_setattr(int dirfd, const char* path, unsigned flags, void* attr, std::size_t size) noexcept {
    CTR_FAULT_CHECK(mount_setattr);
    return raw::call(SYS_mount_setattr, dirfd, path, flags, attr, size);
}
// `how` points to a struct open_how of `size` bytes.
inline long openat2(int dirfd, const char* path, void* how, std::size_t size) noexcept {
    CTR_FAULT_CHECK(openat2);
    return raw::call(SYS_openat2, dirfd, path, how, size);
}
inline long kill(int pid, int signal) noexcept {
    CTR_FAULT_CHECK(kill);
    return raw::call(SYS_kill, pid, signal);
}

inline long wait4(int pid, int* status, int options) noexcept {
    CTR_FAULT_CHECK(wait4);
    return raw::call(SYS_wait4, pid, status, options, nullptr);
}
inline long signalfd4(int fd, const unsigned long* mask, int flags) noexcept {
    CTR_FAULT_CHECK(signalfd4);
    return raw::call(SYS_signalfd4, fd, mask, kernel_sigset_size, flags);
}
inline long socket(int domain, int type, int protocol) noexcept {
    CTR_FAULT_CHECK(socket);
    return raw::call(SYS_socket, domain, type, protocol);
}
// A file in memory: where a helper process (pasta) writes its errors, read
// back only when it fails, so that it never blocks on a full pipe.
inline long memfd_create(const char* name, unsigned flags) noexcept {
    CTR_FAULT_CHECK(memfd_create);
    return raw::call(SYS_memfd_create, name, flags);
}

// `attr` points to a union bpf_attr of `size` bytes (device programs for
// cgroup v2 groups).
inline long bpf(int command, void* attr, unsigned size) noexcept {
    CTR_FAULT_CHECK(bpf);
    return raw::call(SYS_bpf, command, attr, size);
}

// Reads at an offset without moving the file position: a cgroup file that is
// polled for changes (cgroup.events) must be read again through the same fd.
inline long pread64(int fd, void* buffer, std::size_t size, long offset) noexcept {
    CTR_FAULT_CHECK(pread64);
    return raw::call(SYS_pread64, fd, buffer, size, offset);
}

// Writes at an offset: a sysctl file takes a value only at offset 0.
inline long pwrite64(int fd, const void* buffer, std::size_t size, long offset) noexcept {
    CTR_FAULT_CHECK(pwrite64);
    return raw::call(SYS_pwrite64, fd, buffer, size, offset);
}

inline long readlinkat(int dirfd, const char* path, char* buffer, std::size_t size) noexcept {
    CTR_FAULT_CHECK(readlinkat);
    return raw::call(SYS_readlinkat, dirfd, path, buffer, size);
}
// `out` points to a struct statx.
inline long statx(int dirfd, const char* path, int flags, unsigned mask, void* out) noexcept {
    CTR_FAULT_CHECK(statx);
    return raw::call(SYS_statx, dirfd, path, flags, mask, out);
}
// The kernel's getcwd: the length including the NUL, or -errno.
inline long getcwd(char* buffer, std::size_t size) noexcept {
    CTR_FAULT_CHECK(getcwd);
    return raw::call(SYS_getcwd, buffer, size);
}

// Sockets. Addresses are passed as the kernel takes them: a pointer to a
// sockaddr_* and its length.
inline long bind(int fd, const void* address, unsigned length) noexcept {
    CTR_FAULT_CHECK(bind);
    return raw::call(SYS_bind, fd, address, length);
}
inline long listen(int fd, int backlog) noexcept {
    CTR_FAULT_CHECK(listen);
    return raw::call(SYS_listen, fd, backlog);
}
inline long accept4(int fd, void* address, unsigned* length, int flags) noexcept {
    CTR_FAULT_CHECK(accept4);
    return raw::call(SYS_accept4, fd, address, length, flags);
}
inline long connect(int fd, const void* address, unsigned length) noexcept {
    CTR_FAULT_CHECK(connect);
    return raw::call(SYS_connect, fd, address, length);
}
inline long sendto(int fd, const void* buffer, std::size_t size, int flags, const void* address,
                   unsigned length) noexcept {
    CTR_FAULT_CHECK(sendto);
    return raw::call(SYS_sendto, fd, buffer, size, flags, address, length);
}
inline long recvfrom(int fd, void* buffer, std::size_t size, int flags, void* address, unsigned* length) noexcept {
    CTR_FAULT_CHECK(recvfrom);
    return raw::call(SYS_recvfrom, fd, buffer, size, flags, address, length);
}
inline long setsockopt(int fd, int level, int name, const void* value, unsigned length) noexcept {
    CTR_FAULT_CHECK(setsockopt);
    return raw::call(SYS_setsockopt, fd, level, name, value, length);
}
inline long getsockname(int fd, void* address, unsigned* length) noexcept {
    CTR_FAULT_CHECK(getsockname);
    return raw::call(SYS_getsockname, fd, address, length);
}
inline long shutdown(int fd, int how) noexcept {
    CTR_FAULT_CHECK(shutdown);
    return raw::call(SYS_shutdown, fd, how);
}
inline long epoll_create1(int flags) noexcept {
    CTR_FAULT_CHECK(epoll_create1);
    return raw::call(SYS_epoll_create1, flags);
}
// `event` points to a struct epoll_event (packed on x86-64).
inline long epoll_ctl(int epfd, int op, int fd, void* event) noexcept {
    CTR_FAULT_CHECK(epoll_ctl);
    return raw::call(SYS_epoll_ctl, epfd, op, fd, event);
}
inline long epoll_wait(int epfd, void* events, int max_events, int timeout_ms) noexcept {
    CTR_FAULT_CHECK(epoll_wait);
    return raw::call(SYS_epoll_wait, epfd, events, max_events, timeout_ms);
}
inline long eventfd2(unsigned initial, int flags) noexcept {
    CTR_FAULT_CHECK(eventfd2);
    return raw::call(SYS_eventfd2, initial, flags);
}
// `length` is in and out, as for getsockname.
inline long getsockopt(int fd, int level, int name, void* value, unsigned* length) noexcept {
    CTR_FAULT_CHECK(getsockopt);
    return raw::call(SYS_getsockopt, fd, level, name, value, length);
}

inline long socketpair(int domain, int type, int protocol, int fds[2]) noexcept {
    CTR_FAULT_CHECK(socketpair);
    return raw::call(SYS_socketpair, domain, type, protocol, fds);
}
// Moves bytes between a pipe and another file without copying them
// through user space (the port relay: socket to pipe to socket).
inline long splice(int fd_in, long* off_in, int fd_out, long* off_out, std::size_t length, unsigned flags) noexcept {
    CTR_FAULT_CHECK(splice);
    return raw::call(SYS_splice, fd_in, off_in, fd_out, off_out, length, flags);
}

// The capability calls take the kernel's own header and data layout
// (linux/capability.h, version 3: two 32-bit words per set).
inline long capget(void* header, void* data) noexcept {
    CTR_FAULT_CHECK(capget);
    return raw::call(SYS_capget, header, data);
}
inline long capset(void* header, const void* data) noexcept {
    CTR_FAULT_CHECK(capset);
    return raw::call(SYS_capset, header, data);
}
inline long seccomp(unsigned operation, unsigned flags, const void* argument) noexcept {
    CTR_FAULT_CHECK(seccomp);
    return raw::call(SYS_seccomp, operation, flags, argument);
}
// FUTEX_WAIT / FUTEX_WAKE on a word of memory shared between two processes.
inline long futex(std::uint32_t* word, int operation, std::uint32_t value, const timespec* timeout = nullptr) noexcept {
    CTR_FAULT_CHECK(futex);
    return raw::call(SYS_futex, word, operation, value, timeout, nullptr, 0);
}

inline long sendmsg(int fd, const void* message, int flags) noexcept {
    CTR_FAULT_CHECK(sendmsg);
    return raw::call(SYS_sendmsg, fd, message, flags);
}
inline long recvmsg(int fd, void* message, int flags) noexcept {
    CTR_FAULT_CHECK(recvmsg);
    return raw::call(SYS_recvmsg, fd, message, flags);
}

// Landlock takes the kernel's own structures (linux/landlock.h); ctr
// defines them itself (detail/landlock_abi in <ctr/landlock.hpp>), since
// the installed header may be older than the kernel.
inline long landlock_create_ruleset(const void* attr, std::size_t size, unsigned flags) noexcept {
    CTR_FAULT_CHECK(landlock_create_ruleset);
    return raw::call(SYS_landlock_create_ruleset, attr, size, flags);
}
inline long landlock_add_rule(int ruleset_fd, int rule_type, const void* attr, unsigned flags) noexcept {
    CTR_FAULT_CHECK(landlock_add_rule);
    return raw::call(SYS_landlock_add_rule, ruleset_fd, rule_type, attr, flags);
}
inline long landlock_restrict_self(int ruleset_fd, unsigned flags) noexcept {
    CTR_FAULT_CHECK(landlock_restrict_self);
    return raw::call(SYS_landlock_restrict_self, ruleset_fd, flags);
}

[[noreturn]] inline void exit_group(int status) noexcept {
    for (;;) raw::call(SYS_exit_group, status);
}



}  // namespace ctr::detail::sys
