// Generated from include/ctr/ctr.hpp by `python3 tools/amalgamate.py`; do not edit.
// Change the headers under include/ and run that command again.
#pragma once
// ctr: header-only Linux process isolation. Include this one header.
//
// Why so many `template <class = void>`: ctr's functions and member functions
// are templates with an unused parameter, so that a translation unit compiles
// (instantiates) a body, and the standard templates it uses, only where the
// program calls it. Calls look the same (`spawn(argv, opts)`); only taking a
// function's address needs `<>`. New functions follow the same rule (trivial
// ones too, so that there is one rule and nobody has to judge "trivial");
// README, "Compile cost", has the budget and the tool that checks it.

// begin ctr/capabilities.hpp
// ctr::capability and ctr::caps: Linux capabilities as values (names, sets,
// the default set) and the capability policy a launch applies to its child.
//
// The child side (the order of the kernel calls and why) lives in
// detail/capability_step.hpp; this header only describes what is wanted.

// begin ctr/detail/file.hpp
// Small whole-file reads for /proc and /sys, through the syscall layer.

// begin ctr/detail/syscall.hpp
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

// begin ctr/detail/raw_syscall.hpp
// Raw system calls that never touch errno or any other thread-local state.
//
// Why not glibc's syscall(): the spawn child shares the parent's memory
// (CLONE_VM) and, because it does not get its own TLS, also the parent
// thread's errno. A libc wrapper in the child would write that errno while
// the parent thread runs. These wrappers return the kernel's value as is:
// a result >= 0, or -errno.

#include <sys/syscall.h>

#include <cstdint>

#if !defined(__x86_64__)
#error "ctr supports x86-64 Linux only for now: the spawn child needs a raw syscall and clone3 trampoline for each architecture"
#endif

namespace ctr::detail::raw {

// Async-signal-safe.
inline long syscall6(long number, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                     long a6 = 0) noexcept {
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

template <typename... Args>
inline long call(long number, Args... args) noexcept {
    return syscall6(number, (long)(args)...);
}

// clone3 that runs `entry(argument)` on the new stack in the child and exits
// the child with its return value; the parent gets the child's pid or -errno.
// A C++ function cannot continue in the child after a raw clone3 with a new
// stack (its frame is on the old stack), hence this small trampoline.
// rdi = clone_args, rsi = size, rdx = entry, rcx = argument. The syscall
// clobbers rcx and r11, so entry and argument move to r8 and r9 first.
[[gnu::naked, gnu::noinline]] inline long clone3_run(void* /*args*/, unsigned long /*size*/,
                                                     int (* /*entry*/)(void*),
                                                     void* /*argument*/) noexcept {
    __asm__ volatile(
        "mov %rdx, %r8\n\t"
        "mov %rcx, %r9\n\t"
        "mov $435, %eax\n\t"  // __NR_clone3
        "syscall\n\t"
        "test %rax, %rax\n\t"
        "jnz 1f\n\t"
        "xor %ebp, %ebp\n\t"  // end of the frame chain for debuggers
        "mov %r9, %rdi\n\t"
        "call *%r8\n\t"
        "mov %eax, %edi\n\t"
        "mov $231, %eax\n\t"  // __NR_exit_group
        "syscall\n\t"
        "ud2\n"
        "1:\n\t"
        "ret\n\t");
}

// clone(2) that runs `entry(argument)` on the new stack in the child, for
// kernels (or seccomp profiles) without clone3. glibc's clone() would do the
// same but reports failure through errno, which the spawn child must not
// touch. rdi = flags, rsi = stack top (16-byte aligned), rdx = where the
// pidfd goes (CLONE_PIDFD) or the parent tid, rcx = entry, r8 = argument.
// The argument travels on the new stack: no free register survives the
// syscall besides the ones clone itself reads.
[[gnu::naked, gnu::noinline]] inline long clone_run(unsigned long /*flags*/, void* /*stack_top*/,
                                                    int* /*parent_tid*/, int (* /*entry*/)(void*),
                                                    void* /*argument*/) noexcept {
    __asm__ volatile(
        "mov %rcx, %r9\n\t"
        "sub $16, %rsi\n\t"
        "mov %r8, (%rsi)\n\t"
        "xor %r10d, %r10d\n\t"  // child tid: none
        "xor %r8d, %r8d\n\t"    // tls: none
        "mov $56, %eax\n\t"     // __NR_clone
        "syscall\n\t"
        "test %rax, %rax\n\t"
        "jnz 1f\n\t"
        "xor %ebp, %ebp\n\t"
        "mov (%rsp), %rdi\n\t"
        "call *%r9\n\t"
        "mov %eax, %edi\n\t"
        "mov $231, %eax\n\t"    // __NR_exit_group
        "syscall\n\t"
        "ud2\n"
        "1:\n\t"
        "ret\n\t");
}

}  // namespace ctr::detail::raw
// end ctr/detail/raw_syscall.hpp

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
// end ctr/detail/syscall.hpp

#include <optional>
#include <string>

namespace ctr::detail {

// The file's contents, or nothing if it cannot be opened or read.
template <class = void>
inline std::optional<std::string> read_small_file(const std::string& path) {
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string contents;
    char buffer[4096];
    for (;;) {
        const long n = sys::read(static_cast<int>(fd), buffer, sizeof buffer);
        if (n == -EINTR) continue;
        if (n < 0) {
            sys::close(static_cast<int>(fd));
            return std::nullopt;
        }
        if (n == 0) break;
        contents.append(buffer, static_cast<std::size_t>(n));
    }
    sys::close(static_cast<int>(fd));
    return contents;
}

// The first line of a file, without its newline; for sysctls and the like.
template <class = void>
inline std::optional<std::string> read_first_line(const std::string& path) {
    auto contents = read_small_file(path);
    if (!contents) return std::nullopt;
    contents->resize(contents->find('\n') == std::string::npos ? contents->size() : contents->find('\n'));
    return contents;
}

}  // namespace ctr::detail
// end ctr/detail/file.hpp
// begin ctr/error.hpp
// ctr::error: what failed (the step), on which path, and why (the errno).

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace ctr {

// The steps of a launch and of the library's other operations. A failure
// names its step, so a message says "exec '/bin/nope'" rather than a bare
// errno. Later capabilities add their steps here.
enum class step : std::uint16_t {
    none,
    prepare,            // validating options in the parent
    create_pipe,        // the error, sync or stdio pipes
    allocate_stack,     // the child's stack
    clone,              // creating the child
    open_stdio,         // opening a file given for a standard stream
    reset_signals,      // default dispositions in the child
    restore_signal_mask,
    die_with_parent,    // PR_SET_PDEATHSIG
    new_session,        // setsid
    set_umask,
    set_rlimit,
    map_fds,            // moving stdio and passed fds to their numbers
    close_fds,          // closing every other inherited fd
    set_groups,
    set_gid,
    set_uid,
    change_directory,
    exec,
    wait,               // waiting for or reaping the child
    signal,             // sending a signal to the child
    read_output,        // reading captured stdout or stderr
    // namespaces
    create_namespaces,  // the CLONE_NEW* flags of the clone
    join_namespace,     // setns into an existing namespace
    leave_namespace,    // ns::scope returning to where it started
    persist_namespace,  // bind-mounting a namespace file
    set_hostname,
    set_domainname,
    deny_setgroups,
    write_uid_map,
    write_gid_map,
    bring_up_loopback,
    set_time_offsets,
    wait_for_parent,    // the child waiting until the parent's steps are done
    run_init,           // the pid 1 of a new pid namespace
    // cgroups
    cgroup_layout,      // finding where cgroups are mounted and ours is
    create_cgroup,
    remove_cgroup,
    enable_controllers,
    set_cgroup_limit,
    read_cgroup_stat,
    attach_to_cgroup,
    freeze_cgroup,
    kill_cgroup,
    // mounts and the root filesystem
    resolve_path,       // finding a mount target inside the new root
    make_mount_point,
    mount,
    bind_mount,
    set_mount_attributes,
    set_propagation,
    unmount,
    pivot_root,
    change_root,        // chroot, when asked for by name
    make_device,
    make_symlink,
    set_controlling_terminal,
    // networking
    netlink,            // talking to the kernel's routing netlink (rtnetlink)
    create_link,        // a network interface (a veth pair) in the caller's namespace
    delete_link,
    configure_link,     // addresses, routes and state of an interface
    publish_port,       // listening on a host port that forwards into the sandbox
    start_network_helper,  // pasta, the user-mode network of a sandbox (net::pasta)
    configure_nat,      // nftables rules and switches for a veth sandbox: outbound NAT, published ports
    // confinement
    drop_bounding_capabilities,  // PR_CAPBSET_DROP of every capability not kept
    keep_capabilities,           // PR_SET_KEEPCAPS around a change of uid
    set_capabilities,            // capset: effective, permitted, inheritable
    set_ambient_capabilities,    // PR_CAP_AMBIENT
    set_securebits,              // PR_SET_SECUREBITS
    set_no_new_privileges,       // PR_SET_NO_NEW_PRIVS
    compile_seccomp,             // building a seccomp filter in the parent
    install_seccomp,             // seccomp(SECCOMP_SET_MODE_FILTER) in the child
    seal_init,                   // the init letting go of the caller's fds, memory and name
    idmap_mount,                 // an idmapped mount (MOUNT_ATTR_IDMAP) for a volume
    open_terminal,               // a pty in the sandbox's devpts for options::terminal, its master sent back
    hold_for_start,              // the command held before exec until options::start_gate opens
    write_file,                  // mount::plan::write: text into a file inside the new root (an OCI sysctl)
    create_landlock_ruleset,     // landlock_create_ruleset in the parent, or a feature the kernel lacks
    add_landlock_rule,           // a path rule (opened in the child) or a port rule
    apply_landlock,              // landlock_restrict_self in the child
};

inline std::string_view to_string(step s) noexcept {
    switch (s) {
        case step::none: return "none";
        case step::prepare: return "prepare";
        case step::create_pipe: return "create pipe";
        case step::allocate_stack: return "allocate child stack";
        case step::clone: return "clone";
        case step::open_stdio: return "open stdio file";
        case step::reset_signals: return "reset signal dispositions";
        case step::restore_signal_mask: return "restore signal mask";
        case step::die_with_parent: return "set parent-death signal";
        case step::new_session: return "new session";
        case step::set_umask: return "set umask";
        case step::set_rlimit: return "set rlimit";
        case step::map_fds: return "map fds";
        case step::close_fds: return "close inherited fds";
        case step::set_groups: return "set supplementary groups";
        case step::set_gid: return "set gid";
        case step::set_uid: return "set uid";
        case step::change_directory: return "change directory";
        case step::exec: return "exec";
        case step::wait: return "wait";
        case step::signal: return "signal";
        case step::read_output: return "read output";
        case step::create_namespaces: return "create namespaces";
        case step::join_namespace: return "join namespace";
        case step::leave_namespace: return "leave namespace";
        case step::persist_namespace: return "persist namespace";
        case step::set_hostname: return "set hostname";
        case step::set_domainname: return "set domain name";
        case step::deny_setgroups: return "deny setgroups";
        case step::write_uid_map: return "write uid map";
        case step::write_gid_map: return "write gid map";
        case step::bring_up_loopback: return "bring up loopback";
        case step::set_time_offsets: return "set time offsets";
        case step::wait_for_parent: return "wait for parent";
        case step::run_init: return "run init";
        case step::cgroup_layout: return "find cgroup layout";
        case step::create_cgroup: return "create cgroup";
        case step::remove_cgroup: return "remove cgroup";
        case step::enable_controllers: return "enable cgroup controllers";
        case step::set_cgroup_limit: return "set cgroup limit";
        case step::read_cgroup_stat: return "read cgroup statistic";
        case step::attach_to_cgroup: return "attach to cgroup";
        case step::freeze_cgroup: return "freeze cgroup";
        case step::kill_cgroup: return "kill cgroup";
        case step::resolve_path: return "resolve path in root";
        case step::make_mount_point: return "make mount point";
        case step::mount: return "mount";
        case step::bind_mount: return "bind mount";
        case step::set_mount_attributes: return "set mount attributes";
        case step::set_propagation: return "set mount propagation";
        case step::unmount: return "unmount";
        case step::pivot_root: return "pivot root";
        case step::change_root: return "change root";
        case step::make_device: return "make device node";
        case step::make_symlink: return "make symlink";
        case step::set_controlling_terminal: return "set controlling terminal";
        case step::netlink: return "netlink";
        case step::create_link: return "create network link";
        case step::delete_link: return "delete network link";
        case step::configure_link: return "configure network link";
        case step::configure_nat: return "configure NAT";
        case step::publish_port: return "publish port";
        case step::start_network_helper: return "start network helper";
        case step::drop_bounding_capabilities: return "drop bounding capabilities";
        case step::keep_capabilities: return "keep capabilities";
        case step::set_capabilities: return "set capabilities";
        case step::set_ambient_capabilities: return "set ambient capabilities";
        case step::set_securebits: return "set securebits";
        case step::set_no_new_privileges: return "set no_new_privs";
        case step::compile_seccomp: return "compile seccomp filter";
        case step::install_seccomp: return "install seccomp filter";
        case step::seal_init: return "seal init";
        case step::idmap_mount: return "idmap mount";
        case step::open_terminal: return "open terminal";
        case step::hold_for_start: return "hold for start";
        case step::write_file: return "write file";
        case step::create_landlock_ruleset: return "create Landlock ruleset";
        case step::add_landlock_rule: return "add Landlock rule";
        case step::apply_landlock: return "apply Landlock ruleset";
    }
    return "unknown step";
}

// Every failure ctr reports. what() reads "<step> '<path>': <reason>", e.g.
// "exec '/bin/nope': No such file or directory".
class error : public std::system_error {
public:
    error(ctr::step s, int errno_value, std::string path = {}, std::string_view detail = {})
        : std::system_error(errno_value, std::generic_category(), describe(s, path, detail)),
          step_(s),
          path_(std::move(path)) {}

    ctr::step step() const noexcept { return step_; }
    const std::string& path() const noexcept { return path_; }

private:
    static std::string describe(ctr::step s, const std::string& path, std::string_view detail) {
        std::string text{to_string(s)};
        if (!path.empty()) text.append(" '").append(path).append("'");
        if (!detail.empty()) text.append(" (").append(detail).append(")");
        // what() is a C string: a NUL byte from the caller's input (an
        // argument, a path) would cut the message short, so it shows as \0.
        for (std::size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at + 2))
            text.replace(at, 1, "\\0");
        return text;
    }

    ctr::step step_;
    std::string path_;
};

}  // namespace ctr
// end ctr/error.hpp

#include <sys/prctl.h>

#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

namespace ctr {

// Every capability Linux has, by its kernel number (linux/capability.h).
enum class capability : std::uint8_t {
    chown = 0,
    dac_override = 1,
    dac_read_search = 2,
    fowner = 3,
    fsetid = 4,
    kill = 5,
    setgid = 6,
    setuid = 7,
    setpcap = 8,
    linux_immutable = 9,
    net_bind_service = 10,
    net_broadcast = 11,
    net_admin = 12,
    net_raw = 13,
    ipc_lock = 14,
    ipc_owner = 15,
    sys_module = 16,
    sys_rawio = 17,
    sys_chroot = 18,
    sys_ptrace = 19,
    sys_pacct = 20,
    sys_admin = 21,
    sys_boot = 22,
    sys_nice = 23,
    sys_resource = 24,
    sys_time = 25,
    sys_tty_config = 26,
    mknod = 27,
    lease = 28,
    audit_write = 29,
    audit_control = 30,
    setfcap = 31,
    mac_override = 32,
    mac_admin = 33,
    syslog = 34,
    wake_alarm = 35,
    block_suspend = 36,
    audit_read = 37,
    perfmon = 38,
    bpf = 39,
    checkpoint_restore = 40,
};

namespace detail {

inline constexpr std::array<std::string_view, 41> capability_names{
    "CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID",          "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
    "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",       "CAP_NET_RAW",        "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",      "CAP_SYS_RAWIO",      "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",    "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
    "CAP_LEASE",           "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",      "CAP_SYSLOG",          "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

constexpr char ascii_upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

constexpr bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_upper(a[i]) != ascii_upper(b[i])) return false;
    return true;
}

constexpr std::string_view trim_spaces(std::string_view text) noexcept {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

}  // namespace detail

namespace caps {

// The capability numbers a set can hold: the kernel's masks are 64 bits.
inline constexpr unsigned max_number = 63;
// The last capability this header knows (CAP_CHECKPOINT_RESTORE, Linux 5.9).
inline constexpr capability last_known = capability::checkpoint_restore;

// "CAP_CHOWN" for capability::chown; an empty view for a number past
// last_known, which only a newer kernel would name.
constexpr std::string_view name(capability c) noexcept {
    const auto number = static_cast<std::size_t>(c);
    return number < detail::capability_names.size() ? detail::capability_names[number] : std::string_view{};
}

// The capability a name stands for, with or without the CAP_ prefix, in any
// case: "CAP_NET_BIND_SERVICE", "net_bind_service". Numbers are parse's job.
constexpr std::optional<capability> from_name(std::string_view text) noexcept {
    if (text.size() > 4 && detail::equal_ignoring_case(text.substr(0, 4), "CAP_")) text.remove_prefix(4);
    for (std::size_t i = 0; i < detail::capability_names.size(); ++i)
        if (detail::equal_ignoring_case(detail::capability_names[i].substr(4), text))
            return static_cast<capability>(i);
    return std::nullopt;
}

// A name as from_name takes it, or a decimal number from 0 to 63 (numbers
// past last_known are for capabilities newer than this header). Anything
// else throws ctr::error(step::prepare, EINVAL) naming the text.
template <class = void>
inline capability parse(std::string_view text) {
    if (const auto known = from_name(text)) return *known;
    unsigned number = 0;
    const char* const end = text.data() + text.size();
    const auto [next, ec] = std::from_chars(text.data(), end, number);
    if (!text.empty() && ec == std::errc{} && next == end && number <= max_number)
        return static_cast<capability>(number);
    throw error(step::prepare, EINVAL, std::string(text),
                "unknown capability: names look like CAP_NET_BIND_SERVICE or net_bind_service, numbers go from 0 "
                "to 63");
}

// A set of capabilities: a 64-bit mask, bit N for capability number N, the
// layout the kernel uses for its own sets.
class set {
public:
    // Walks the members from the lowest number up; allocates nothing.
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = capability;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = capability;

        constexpr iterator() noexcept = default;
        constexpr explicit iterator(std::uint64_t rest) noexcept : rest_(rest) {}
        constexpr capability operator*() const noexcept { return static_cast<capability>(std::countr_zero(rest_)); }
        constexpr iterator& operator++() noexcept {
            rest_ &= rest_ - 1;
            return *this;
        }
        constexpr iterator operator++(int) noexcept {
            iterator before = *this;
            ++*this;
            return before;
        }
        friend constexpr bool operator==(iterator, iterator) noexcept = default;

    private:
        std::uint64_t rest_ = 0;
    };

    constexpr set() noexcept = default;
    // One capability is a set of one, so a policy can say `.ambient = capability::net_bind_service`.
    constexpr set(capability c) noexcept : bits_(bit(c)) {}
    constexpr set(std::initializer_list<capability> members) noexcept {
        for (const capability c : members) bits_ |= bit(c);
    }
    static constexpr set from_bits(std::uint64_t bits) noexcept {
        set out;
        out.bits_ = bits;
        return out;
    }
    // Every capability this header knows, 0 to last_known.
    static constexpr set all() noexcept {
        return from_bits((std::uint64_t{1} << (static_cast<unsigned>(last_known) + 1)) - 1);
    }
    static constexpr set none() noexcept { return {}; }

    // "CAP_CHOWN,CAP_KILL" (items as parse takes them, spaces around them
    // allowed), "ALL" for all(), "" for none. A bad item throws as parse does.
    template <class = void>
    static set parse_list(std::string_view text) {
        set out;
        if (detail::trim_spaces(text).empty()) return out;
        for (;;) {
            const std::size_t comma = text.find(',');
            const std::string_view item = detail::trim_spaces(text.substr(0, comma));
            if (item.empty())
                throw error(step::prepare, EINVAL, std::string(text),
                            "empty item in a capability list: write CAP_CHOWN,CAP_KILL");
            if (detail::equal_ignoring_case(item, "ALL")) out |= all();
            else out.add(parse(item));
            if (comma == std::string_view::npos) break;
            text.remove_prefix(comma + 1);
        }
        return out;
    }

    constexpr set& add(capability c) noexcept {
        bits_ |= bit(c);
        return *this;
    }
    constexpr set& remove(capability c) noexcept {
        bits_ &= ~bit(c);
        return *this;
    }
    constexpr bool has(capability c) const noexcept { return (bits_ & bit(c)) != 0; }
    // Whether every member of `other` is here too.
    constexpr bool contains(set other) const noexcept { return (other.bits_ & ~bits_) == 0; }
    constexpr bool empty() const noexcept { return bits_ == 0; }
    constexpr unsigned size() const noexcept { return static_cast<unsigned>(std::popcount(bits_)); }
    constexpr std::uint64_t bits() const noexcept { return bits_; }

    constexpr iterator begin() const noexcept { return iterator(bits_); }
    constexpr iterator end() const noexcept { return iterator(0); }

    // "CAP_CHOWN,CAP_KILL", lowest number first; a number past last_known
    // is written as its number, so parse_list reads the text back. "" for none.
    template <class = void>
    std::string to_string() const {
        std::string out;
        for (const capability c : *this) {
            if (!out.empty()) out += ',';
            if (const std::string_view known = name(c); !known.empty()) out += known;
            else out += std::to_string(static_cast<unsigned>(c));
        }
        return out;
    }

    constexpr set& operator|=(set other) noexcept {
        bits_ |= other.bits_;
        return *this;
    }
    constexpr set& operator&=(set other) noexcept {
        bits_ &= other.bits_;
        return *this;
    }
    constexpr set& operator-=(set other) noexcept {
        bits_ &= ~other.bits_;
        return *this;
    }
    friend constexpr set operator|(set a, set b) noexcept { return a |= b; }
    friend constexpr set operator&(set a, set b) noexcept { return a &= b; }
    // The members of a that are not in b.
    friend constexpr set operator-(set a, set b) noexcept { return a -= b; }
    friend constexpr bool operator==(set, set) noexcept = default;

private:
    static constexpr std::uint64_t bit(capability c) noexcept {
        return std::uint64_t{1} << (static_cast<unsigned>(c) & max_number);
    }

    std::uint64_t bits_ = 0;
};

// What a container gets unless it asks for more or less: the set Podman 4
// gives by default. Each one is there because ordinary images need it while
// setting up as root inside their own user namespace:
//   CHOWN, FOWNER, FSETID, DAC_OVERRIDE  package managers and install scripts
//                        chown and chmod files they do not own, and keep the
//                        setuid bit across a chown;
//   SETUID, SETGID       su, sudo, gosu, and servers that drop to a user;
//   SETPCAP              the same programs lowering their own bounding set;
//   SETFCAP              installing binaries with file capabilities (ping);
//   KILL                 signalling processes of other users in the container;
//   NET_BIND_SERVICE     servers listening on ports below 1024;
//   SYS_CHROOT           chroot-based tools (package builds, sshd privsep).
// Docker adds three more, which Podman 4 dropped and ctr leaves out too:
// AUDIT_WRITE (records in the host's audit log, which only login tools
// write), MKNOD (device nodes: the mount layer makes the few a container
// needs, and a node made inside could open a host device that nothing else
// fences) and NET_RAW (raw sockets, a tool for ARP and DNS spoofing on a
// shared bridge; ping uses ICMP datagram sockets today).
constexpr set default_set() noexcept {
    return {capability::chown,    capability::dac_override, capability::fowner,
            capability::fsetid,   capability::kill,         capability::net_bind_service,
            capability::setfcap,  capability::setgid,       capability::setpcap,
            capability::setuid,   capability::sys_chroot};
}

// The number of the last capability the running kernel has, from
// /proc/sys/kernel/cap_last_cap; without /proc, found by asking the kernel
// about each number (PR_CAPBSET_READ fails past the last); 40 when neither
// answers. Parent side. The kernel's number does not change while it runs:
// read once per process (every confined spawn asks).
template <class = void>
inline unsigned last_supported() {
    static const unsigned last = [] {
        if (const auto line = detail::read_first_line("/proc/sys/kernel/cap_last_cap")) {
            unsigned number = 0;
            const char* const end = line->data() + line->size();
            const auto [next, ec] = std::from_chars(line->data(), end, number);
            if (ec == std::errc{} && next == end && number <= max_number) return number;
        }
        if (detail::sys::prctl(PR_CAPBSET_READ, 0) >= 0) {
            unsigned found = 0;
            while (found < max_number && detail::sys::prctl(PR_CAPBSET_READ, found + 1) >= 0) ++found;
            return found;
        }
        return static_cast<unsigned>(last_known);
    }();
    return last;
}

// Every capability the running kernel has: all() on a kernel as new as this
// header, fewer on an older one. `keep = supported()` keeps all there is.
template <class = void>
inline set supported() {
    const unsigned last = last_supported();
    return set::from_bits(last >= max_number ? ~std::uint64_t{0} : (std::uint64_t{1} << (last + 1)) - 1);
}

// The capabilities a launched process ends up with. After setup, before
// exec:
//   bounding, permitted, effective  exactly `keep` (what the launch had, less
//                                   everything else); empty keeps nothing;
//   inheritable                     inheritable | ambient;
//   ambient                         ambient;
//   securebits                      set to *securebits (SECBIT_* from
//                                   linux/securebits.h) when given.
// `inheritable` and `ambient` must be subsets of `keep`: the kernel raises an
// ambient capability only while it is permitted and inheritable, and refuses
// an inheritable one outside the bounding set.
// Across exec the kernel's rules apply: uid 0 (without SECBIT_NOROOT) gets
// `keep` again; any other uid keeps only `ambient`, plus the file
// capabilities of the program within `keep`.
struct policy {
    set keep{};
    set inheritable{};
    set ambient{};
    std::optional<unsigned> securebits{};
};

}  // namespace caps
}  // namespace ctr
// end ctr/capabilities.hpp
// begin ctr/cgroup.hpp
// ctr::cgroup::group: a cgroup of its own for a set of processes, with
// resource limits and accounting, on cgroup v2, v1 and hybrid hosts.
//
// A group is made below the calling process's own cgroup in every hierarchy
// it needs, is given its limits, and each limit is read back: a limit the
// kernel did not take, or a controller that is not there, is an error. When
// the group ends, everything left in it is killed, and its directories are
// removed. docs/cgroups.md describes the layouts and what each figure means.

// begin ctr/detail/cgroup_devices.hpp
// Device rules for a group (OCI linux.resources.devices): the rule type,
// its checks, the text the v1 devices controller takes, and the
// BPF_PROG_TYPE_CGROUP_DEVICE program that does the same job on cgroup v2,
// which has no devices controller. Building is pure; loading and attaching
// go through detail::sys.

// begin ctr/unique_fd.hpp
// ctr::unique_fd: the owner of one file descriptor.


#include <utility>

namespace ctr {

// Move-only; closes its fd when it ends. No implicit conversion to int:
// get() borrows, release() hands ownership over.
class [[nodiscard]] unique_fd {
public:
    constexpr unique_fd() noexcept = default;
    constexpr explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    // Closes the current fd (errors from close are not actionable: the fd is
    // gone either way) and takes `fd`.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) detail::sys::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace ctr
// end ctr/unique_fd.hpp

#include <linux/bpf.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ctr::cgroup {

// One device rule. Rules apply in order and the last one that matches an
// access decides it; an access no rule matches is allowed (as in a new v1
// group, which starts from its parent's allow-all). So a list starts with
// a deny-all rule, {.allow = false}, and then allows what the container
// may use. docs/cgroups.md lists the usual allow-list (null, zero, ...).
struct device_rule {
    bool allow = false;
    char type = 'a';                      // 'a' all devices, 'c' character, 'b' block
    std::optional<std::uint32_t> major{};  // empty: any
    std::optional<std::uint32_t> minor{};  // empty: any
    std::string access = "rwm";           // a subset of "rwm": read, write, mknod; empty means "rwm"
};

}  // namespace ctr::cgroup

namespace ctr::detail {

// The access of a checked rule as BPF_DEVCG_ACC_* bits.
template <class = void>
inline std::uint32_t device_access_bits(std::string_view access) {
    std::uint32_t bits = 0;
    for (char c : access.empty() ? std::string_view("rwm") : access)
        bits |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : c == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
    return bits;
}

// Throws ctr::error(set_cgroup_limit, EINVAL) naming rule `index` and why.
template <class = void>
inline void check_device_rule(const cgroup::device_rule& r, std::size_t index) {
    const auto fail = [&](const std::string& why) {
        throw error(step::set_cgroup_limit, EINVAL, "devices[" + std::to_string(index) + "]", why);
    };
    if (r.type != 'a' && r.type != 'c' && r.type != 'b')
        fail(std::string("bad type '") + r.type + "': 'a' (all devices), 'c' (character) or 'b' (block)");
    std::uint32_t seen = 0;
    for (char c : r.access) {
        const std::uint32_t bit = device_access_bits(std::string_view(&c, 1));
        if (c != 'r' && c != 'w' && c != 'm') fail("bad access '" + r.access + "': a subset of \"rwm\"");
        if (seen & bit) fail("bad access '" + r.access + "': '" + std::string(1, c) + "' twice");
        seen |= bit;
    }
    // The v1 controller takes "a" as a whole: every device, every access.
    if (r.type == 'a' && (r.major || r.minor || device_access_bits(r.access) != device_access_bits("rwm")))
        fail("a rule of type 'a' covers every device and every access; give 'c' or 'b' with a major and minor "
             "to narrow it");
}

// The line for devices.allow or devices.deny: "a", or "c 1:3 rwm" with '*'
// for an empty number.
template <class = void>
inline std::string device_rule_v1_text(const cgroup::device_rule& r) {
    if (r.type == 'a') return "a";
    const auto number = [](const std::optional<std::uint32_t>& n) { return n ? std::to_string(*n) : std::string("*"); };
    return std::string(1, r.type) + " " + number(r.major) + ":" + number(r.minor) + " "
           + (r.access.empty() ? std::string("rwm") : r.access);
}

// The cgroup v2 program for `rules` (checked): the rules are tried from the
// last to the first, and the first that matches answers (1 allow, 0 deny);
// none matching allows. An allow rule matches an access wholly within its
// own; a deny rule one that asks for any of its own (so "deny c 1:5 w"
// refuses read-write opens too), as the v1 controller decides.
template <class = void>
inline std::vector<bpf_insn> device_program(const std::vector<cgroup::device_rule>& rules) {
    std::vector<bpf_insn> p;
    const auto insn = [&](std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off, std::int32_t imm) {
        bpf_insn i{};
        i.code = code;
        i.dst_reg = dst & 0xf;
        i.src_reg = src & 0xf;
        i.off = off;
        i.imm = imm;
        p.push_back(i);
    };
    // struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; } in r1.
    insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
    insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
    insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_3, 0, 0, 0xffff);  // r3: type
    insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0);
    insn(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_4, 0, 0, 16);  // r4: access
    insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 4, 0);  // r5: major
    insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_6, BPF_REG_1, 8, 0);  // r6: minor
    for (std::size_t index = rules.size(); index-- > 0;) {
        const cgroup::device_rule* r = &rules[index];
        std::vector<std::size_t> to_next;  // jumps to patch to the next rule's block
        const auto jump = [&](std::uint8_t op, std::uint8_t dst, std::uint8_t src, std::int32_t imm) {
            to_next.push_back(p.size());
            insn(static_cast<std::uint8_t>(BPF_JMP32 | op | (src ? BPF_X : BPF_K)), dst, src, 0, imm);
        };
        if (r->type != 'a')
            jump(BPF_JNE, BPF_REG_3, 0, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
        const std::uint32_t mask = device_access_bits(r->access);
        if (mask != device_access_bits("rwm")) {
            insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_7, BPF_REG_4, 0, 0);
            insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_7, 0, 0, static_cast<std::int32_t>(mask));
            if (r->allow)
                jump(BPF_JNE, BPF_REG_7, BPF_REG_4, 0);  // asks for more than the rule gives
            else
                jump(BPF_JEQ, BPF_REG_7, 0, 0);  // asks for nothing the rule denies
        }
        // Immediates are 32 bits; JMP32 compares them as such.
        if (r->major) jump(BPF_JNE, BPF_REG_5, 0, static_cast<std::int32_t>(*r->major));
        if (r->minor) jump(BPF_JNE, BPF_REG_6, 0, static_cast<std::int32_t>(*r->minor));
        insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0);
        insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
        // A rule that matches everything ends the program: the verifier
        // refuses code that cannot be reached.
        if (to_next.empty()) return p;
        for (std::size_t j : to_next) p[j].off = static_cast<std::int16_t>(p.size() - j - 1);
    }
    insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    return p;
}

// Loads the program for `rules` and attaches it to the cgroup v2 directory
// `dirfd` with BPF_F_ALLOW_MULTI, so that programs attached above (by
// systemd, say) still apply, and one attached here does not stop a group
// below from having its own. The cgroup keeps the program until it is
// removed: nothing needs to stay open. Throws ctr::error(set_cgroup_limit)
// naming `dir`, with the verifier's log when it refuses the program.
template <class = void>
inline void attach_device_program(int dirfd, const std::string& dir, const std::vector<cgroup::device_rule>& rules) {
    const std::vector<bpf_insn> program = device_program(rules);
    static const char license[] = "Apache-2.0";
    const auto load = [&](char* log, std::uint32_t log_size) {
        union bpf_attr attr {};
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.insn_cnt = static_cast<std::uint32_t>(program.size());
        attr.insns = reinterpret_cast<std::uintptr_t>(program.data());
        attr.license = reinterpret_cast<std::uintptr_t>(license);
        if (log) {
            attr.log_level = 1;
            attr.log_buf = reinterpret_cast<std::uintptr_t>(log);
            attr.log_size = log_size;
        }
        return sys::bpf(BPF_PROG_LOAD, &attr, sizeof attr);
    };
    long fd = load(nullptr, 0);
    if (fd == -EPERM || fd == -EACCES)
        throw error(step::set_cgroup_limit, static_cast<int>(-fd), dir,
                    "devices: loading the cgroup v2 device program (bpf BPF_PROG_LOAD) needs CAP_BPF or "
                    "CAP_SYS_ADMIN in the initial user namespace; a rootless caller cannot restrict devices on "
                    "cgroup v2 (leave limits::devices empty there)");
    if (fd < 0) {
        std::string log(16384, '\0');
        // With the log the verifier may pass what it refused (odd): then
        // there is nothing to report from it.
        if (const long again = load(log.data(), static_cast<std::uint32_t>(log.size())); again >= 0) {
            sys::close(static_cast<int>(again));
            log.clear();
        }
        log.resize(log.find('\0') == std::string::npos ? log.size() : log.find('\0'));
        throw error(step::set_cgroup_limit, static_cast<int>(-fd), dir,
                    "devices: the kernel refused the device program (bpf BPF_PROG_LOAD, "
                        + std::to_string(program.size()) + " instructions)" + (log.empty() ? "" : ": " + log));
    }
    unique_fd prog(static_cast<int>(fd));
    union bpf_attr attr {};
    attr.target_fd = static_cast<std::uint32_t>(dirfd);
    attr.attach_bpf_fd = static_cast<std::uint32_t>(prog.get());
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (const long r = sys::bpf(BPF_PROG_ATTACH, &attr, sizeof attr); r < 0)
        throw error(step::set_cgroup_limit, static_cast<int>(-r), dir,
                    std::string("devices: attaching the device program (bpf BPF_PROG_ATTACH, BPF_F_ALLOW_MULTI)")
                        + (r == -EPERM ? ": a program attached above without BPF_F_ALLOW_MULTI forbids programs below"
                                       : ""));
}

}  // namespace ctr::detail
// end ctr/detail/cgroup_devices.hpp
// begin ctr/detail/cgroup_fs.hpp
// The file-system side of cgroups: reading and writing interface files
// through directory fds, listing and removing cgroup directories, and the
// per-hierarchy operations a group is made of (listing, signalling, freezing
// and waiting for its processes). Every call goes through detail::sys.

// begin ctr/detail/cgroup_layout.hpp
// Where the cgroup hierarchies are mounted and where this process's own
// cgroup is on each of them, from /proc/self/mountinfo and /proc/self/cgroup.
//
// The parsers take the files' text, so that layouts this host does not have
// (pure v2, pure v1, cgroup namespaces, odd mount roots) are tested too.


#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr {

// none: no cgroup filesystem is mounted; v1: only v1 hierarchies carry
// controllers; v2: only the unified (cgroup2) hierarchy is mounted; hybrid:
// v1 controller hierarchies plus a cgroup2 mount (often with no controllers).
enum class cgroup_layout : std::uint8_t { none, v1, v2, hybrid };

template <class = void>
inline std::string_view to_string(cgroup_layout layout) noexcept {
    switch (layout) {
        case cgroup_layout::none: return "none";
        case cgroup_layout::v1: return "v1";
        case cgroup_layout::v2: return "v2";
        case cgroup_layout::hybrid: return "hybrid";
    }
    return "unknown";
}

namespace detail {

// The cgroup a process moved itself into with cgroup::move_self_to_leaf().
// A process whose v2 cgroup has this name places its groups beside it, in
// the parent, whose subtree_control the leaf made usable.
inline constexpr std::string_view cgroup_leaf_name = "ctr-leaf";

// mountinfo escapes space, tab, newline and backslash as \ooo.
template <class = void>
inline std::string unescape_mountinfo(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3' && text[i + 2] >= '0'
            && text[i + 2] <= '7' && text[i + 3] >= '0' && text[i + 3] <= '7') {
            out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0'));
            i += 3;
        } else {
            out += text[i];
        }
    }
    return out;
}

template <class = void>
inline std::vector<std::string_view> cgroup_split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    while (true) {
        const auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) break;
        text.remove_prefix(at + 1);
    }
    return parts;
}

// Fields separated by runs of spaces.
template <class = void>
inline std::vector<std::string_view> cgroup_words(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
        const std::size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
        if (i > start) out.push_back(text.substr(start, i - start));
    }
    return out;
}

// Super options of a v1 cgroup mount that are not controller names.
template <class = void>
inline bool is_cgroup_mount_option(std::string_view option) {
    static constexpr std::string_view options[] = {
        "rw", "ro", "relatime", "xattr", "clone_children", "cpuset_v2_mode", "favordynmods", "noprefix"};
    if (option.empty() || option.find('=') != std::string_view::npos || option.rfind("no", 0) == 0) return true;
    return std::find(std::begin(options), std::end(options), option) != std::end(options);
}

struct cgroup_mount {
    bool v2 = false;
    std::string mount_point;
    std::string root;                      // the part of the hierarchy that is mounted there
    std::vector<std::string> controllers;  // v1 only, in mount-option order
    std::string name;                      // v1 name=... (named hierarchies like name=systemd)
};

// Every cgroup and cgroup2 mount, in mountinfo order.
template <class = void>
inline std::vector<cgroup_mount> parse_cgroup_mounts(std::string_view mountinfo) {
    std::vector<cgroup_mount> mounts;
    for (std::string_view line : cgroup_split(mountinfo, '\n')) {
        // "id parent major:minor root mount-point options [optional...] - fstype source super-options"
        const auto dash = line.find(" - ");
        if (dash == std::string_view::npos) continue;
        const auto before = cgroup_words(line.substr(0, dash));
        const auto after = cgroup_words(line.substr(dash + 3));
        if (before.size() < 5 || after.size() < 3) continue;
        cgroup_mount m;
        if (after[0] == "cgroup2")
            m.v2 = true;
        else if (after[0] != "cgroup")
            continue;
        m.root = unescape_mountinfo(before[3]);
        m.mount_point = unescape_mountinfo(before[4]);
        if (!m.v2)
            for (std::string_view option : cgroup_split(after[2], ',')) {
                if (option.rfind("name=", 0) == 0)
                    m.name = std::string(option.substr(5));
                else if (!is_cgroup_mount_option(option))
                    m.controllers.emplace_back(option);
            }
        mounts.push_back(std::move(m));
    }
    return mounts;
}

// One line of /proc/<pid>/cgroup: "id:controllers:path"; id 0 with no
// controllers is the v2 hierarchy.
struct proc_cgroup_entry {
    int id = 0;
    std::vector<std::string> controllers;
    std::string name;  // name=... of a named v1 hierarchy
    std::string path;
};

template <class = void>
inline std::vector<proc_cgroup_entry> parse_proc_cgroup(std::string_view text) {
    std::vector<proc_cgroup_entry> entries;
    for (std::string_view line : cgroup_split(text, '\n')) {
        const auto first = line.find(':');
        if (first == std::string_view::npos) continue;
        const auto second = line.find(':', first + 1);
        if (second == std::string_view::npos) continue;
        proc_cgroup_entry e;
        // The hierarchy id: a decimal the kernel writes; a line with anything
        // else, or more digits than an int holds, is not the kernel's.
        const auto id_text = line.substr(0, first);
        if (id_text.empty() || id_text.size() > 9) continue;
        e.id = 0;
        for (char c : id_text) {
            if (c < '0' || c > '9') {
                e.id = -1;
                break;
            }
            e.id = e.id * 10 + (c - '0');
        }
        if (e.id < 0) continue;
        const auto list = line.substr(first + 1, second - first - 1);
        if (!list.empty())
            for (std::string_view c : cgroup_split(list, ',')) {
                if (c.rfind("name=", 0) == 0)
                    e.name = std::string(c.substr(5));
                else if (!c.empty())
                    e.controllers.emplace_back(c);
            }
        e.path = std::string(line.substr(second + 1));
        entries.push_back(std::move(e));
    }
    return entries;
}

// The parent of a cgroup path ("/a/b" -> "/a", "/a" -> "/").
template <class = void>
inline std::string parent_cgroup_path(std::string_view path) {
    const auto slash = path.rfind('/');
    if (slash == std::string_view::npos || slash == 0) return "/";
    return std::string(path.substr(0, slash));
}

template <class = void>
inline std::string join_cgroup_path(std::string_view parent, std::string_view name) {
    std::string out(parent);
    if (out.empty() || out.back() != '/') out += '/';
    out += name;
    return out;
}

// One hierarchy ctr can make groups in: the v2 one, or a v1 one that carries
// controllers. Named v1 hierarchies (name=systemd) belong to their owner and
// are never used.
struct cgroup_hierarchy {
    bool v2 = false;
    int id = 0;                            // as in /proc/self/cgroup
    std::vector<std::string> controllers;  // v1: mounted there; v2: what the placement cgroup may enable
    std::string mount_point;
    std::string mount_root = "/";  // the part of the hierarchy mounted at mount_point
    std::string own_path;    // this process's cgroup, as /proc/self/cgroup shows it
    std::string place_path;  // where groups go: own_path, or its parent when own_path is a ctr-leaf
    std::string place_dir;   // place_path in the file system
    std::string problem;     // non-empty when the hierarchy cannot be used, saying why

    template <class = void>
    bool has(std::string_view controller) const {
        return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
    }
    template <class = void>
    bool usable() const { return problem.empty(); }
};

struct cgroup_layout_info {
    cgroup_layout kind = cgroup_layout::none;
    std::vector<cgroup_hierarchy> hierarchies;  // the v2 hierarchy first, then v1 ones in mount order

    template <class = void>
    const cgroup_hierarchy* v2() const {
        for (const auto& h : hierarchies)
            if (h.v2) return &h;
        return nullptr;
    }

    // For messages: "hybrid layout: v1 controllers cpu cpuacct ...; v2 at
    // /sys/fs/cgroup/unified with controllers hugetlb".
    template <class = void>
    std::string describe() const {
        std::string text = std::string(to_string(kind)) + " layout";
        std::string v1;
        for (const auto& h : hierarchies)
            if (!h.v2)
                for (const auto& c : h.controllers) v1 += " " + c;
        if (!v1.empty()) text += ": v1 controllers" + v1;
        if (const auto* h = v2()) {
            text += v1.empty() ? ": " : "; ";
            text += "v2 at " + h->mount_point + " with controllers";
            if (h->controllers.empty()) text += " (none)";
            for (const auto& c : h->controllers) text += " " + c;
            if (!h->usable()) text += " (unusable: " + h->problem + ")";
        }
        return text;
    }
};

// Maps a cgroup path to its directory under one of the hierarchy's mounts:
// the first mount whose root contains the path. Empty if none does (the
// process's cgroup is outside what is mounted, e.g. in another namespace).
template <class = void>
inline std::string cgroup_dir(const std::vector<const cgroup_mount*>& mounts, std::string_view path) {
    for (const cgroup_mount* m : mounts) {
        std::string_view root = m->root;
        if (root == "/") return path == "/" ? m->mount_point : m->mount_point + std::string(path);
        if (path == root) return m->mount_point;
        if (path.size() > root.size() && path.substr(0, root.size()) == root && path[root.size()] == '/')
            return m->mount_point + std::string(path.substr(root.size()));
    }
    return {};
}

// The layout from the two files' text. v2 controllers are left empty: they
// are read from the placement cgroup's cgroup.controllers by
// detect_cgroup_layout().
template <class = void>
inline cgroup_layout_info parse_cgroup_layout(std::string_view mountinfo, std::string_view proc_self_cgroup) {
    const auto mounts = parse_cgroup_mounts(mountinfo);
    const auto entries = parse_proc_cgroup(proc_self_cgroup);
    cgroup_layout_info info;

    std::vector<const cgroup_mount*> v2_mounts;
    for (const auto& m : mounts)
        if (m.v2) v2_mounts.push_back(&m);
    if (!v2_mounts.empty()) {
        cgroup_hierarchy h;
        h.v2 = true;
        h.mount_point = v2_mounts.front()->mount_point;
        h.mount_root = v2_mounts.front()->root;
        const proc_cgroup_entry* own = nullptr;
        for (const auto& e : entries)
            if (e.id == 0 && e.controllers.empty() && e.name.empty()) own = &e;
        if (!own) {
            h.problem = "/proc/self/cgroup has no v2 (0::) line";
        } else {
            h.own_path = own->path;
            const auto slash = own->path.rfind('/');
            const bool in_leaf = slash != std::string::npos && own->path.substr(slash + 1) == cgroup_leaf_name;
            h.place_path = in_leaf ? parent_cgroup_path(own->path) : own->path;
            if (h.place_path.rfind("/..", 0) == 0 || h.place_path.find("/../") != std::string::npos)
                h.problem = "this process's cgroup " + h.place_path + " is outside its cgroup namespace";
            else if ((h.place_dir = cgroup_dir(v2_mounts, h.place_path)).empty())
                h.problem = "this process's cgroup " + h.place_path + " is not below any cgroup2 mount's root";
            // The mount that holds the placement dir is the one reported.
            for (const cgroup_mount* m : v2_mounts)
                if (h.place_dir.rfind(m->mount_point, 0) == 0) {
                    h.mount_point = m->mount_point;
                    h.mount_root = m->root;
                    break;
                }
        }
        info.hierarchies.push_back(std::move(h));
    }

    // v1: one hierarchy per distinct controller set, in mount order.
    bool any_v1 = false;
    for (const auto& m : mounts) {
        if (m.v2 || m.controllers.empty()) continue;
        bool seen = false;
        for (const auto& h : info.hierarchies)
            if (!h.v2 && h.controllers == m.controllers) seen = true;
        if (seen) continue;
        any_v1 = true;
        cgroup_hierarchy h;
        h.controllers = m.controllers;
        h.mount_point = m.mount_point;
        h.mount_root = m.root;
        std::vector<const cgroup_mount*> same;
        for (const auto& other : mounts)
            if (!other.v2 && other.controllers == m.controllers) same.push_back(&other);
        const proc_cgroup_entry* own = nullptr;
        for (const auto& e : entries) {
            auto a = e.controllers, b = m.controllers;
            std::sort(a.begin(), a.end());
            std::sort(b.begin(), b.end());
            if (e.id > 0 && a == b) own = &e;
        }
        if (!own) {
            h.problem = "/proc/self/cgroup has no line for this hierarchy";
        } else {
            h.id = own->id;
            h.own_path = own->path;
            h.place_path = own->path;
            if (h.place_path.rfind("/..", 0) == 0 || h.place_path.find("/../") != std::string::npos)
                h.problem = "this process's cgroup " + h.place_path + " is outside its cgroup namespace";
            else if ((h.place_dir = cgroup_dir(same, h.place_path)).empty())
                h.problem = "this process's cgroup " + h.place_path + " is not below the mount's root";
        }
        info.hierarchies.push_back(std::move(h));
    }

    const bool any_v2 = !v2_mounts.empty();
    info.kind = any_v1 && any_v2 ? cgroup_layout::hybrid
                : any_v1         ? cgroup_layout::v1
                : any_v2         ? cgroup_layout::v2
                                 : cgroup_layout::none;
    return info;
}

// The components of a group path given by the caller (options::path,
// group::open): "a/b" or "/a/b". Empty components ("a//b"), "." and "..",
// a trailing slash and the root itself are refused: a path names one
// cgroup, and never climbs out of where it starts. Throws
// ctr::error(create_cgroup, EINVAL) naming the path.
template <class = void>
inline std::vector<std::string> group_path_components(std::string_view path) {
    const auto fail = [&](std::string_view why) {
        throw error(step::create_cgroup, EINVAL, std::string(path), "bad cgroup path: " + std::string(why));
    };
    std::string_view rest = path;
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    if (rest.empty()) fail("it names no group (give \"NAME\", \"PARENT/NAME\" or \"/PARENT/NAME\")");
    std::vector<std::string> out;
    for (std::string_view part : cgroup_split(rest, '/')) {
        if (part.empty()) fail("an empty component (a doubled or trailing '/')");
        if (part == "." || part == "..") fail("'.' and '..' are not allowed");
        if (part.size() > 255) fail("a component longer than 255 bytes");
        if (part.find('\0') != std::string_view::npos || part.find('\n') != std::string_view::npos)
            fail("a NUL or newline in it");
        out.emplace_back(part);
    }
    return out;
}

// Where a group at a caller's path lives in one hierarchy. An absolute path
// ("/a/b") starts at the root of the hierarchy as mounted here (as runc and
// crun read an OCI cgroupsPath); a relative one ("a/b") below this
// process's own cgroup (place_dir), like generated names.
struct group_location {
    std::string base_dir;                 // the directory the path starts from
    std::string base_path;                // base_dir as /proc/<pid>/cgroup shows it
    std::vector<std::string> components;  // below base_dir, the last is the group
    std::string dir;                      // the group's directory
    std::string cgroup_path;              // the group as /proc/<pid>/cgroup shows it
};

template <class = void>
inline group_location locate_group(const cgroup_hierarchy& h, std::string_view path) {
    group_location at;
    at.components = group_path_components(path);
    const bool absolute = path.front() == '/';
    at.base_dir = absolute ? h.mount_point : h.place_dir;
    at.base_path = absolute ? h.mount_root : h.place_path;
    at.dir = at.base_dir;
    at.cgroup_path = at.base_path;
    for (const auto& c : at.components) {
        at.dir += "/" + c;
        at.cgroup_path = join_cgroup_path(at.cgroup_path, c);
    }
    return at;
}

// Controllers listed in a cgroup.controllers or cgroup.subtree_control file.
template <class = void>
inline std::vector<std::string> controller_list(std::string_view text) {
    std::vector<std::string> out;
    for (std::string_view w : cgroup_words(text.substr(0, text.find('\n')))) out.emplace_back(w);
    return out;
}

// This process's layout; throws ctr::error(step::cgroup_layout) if the two
// files cannot be read.
template <class = void>
inline cgroup_layout_info detect_cgroup_layout() {
    const auto mountinfo = read_small_file("/proc/self/mountinfo");
    if (!mountinfo) throw error(step::cgroup_layout, EIO, "/proc/self/mountinfo", "cannot read it");
    const auto own = read_small_file("/proc/self/cgroup");
    if (!own) throw error(step::cgroup_layout, EIO, "/proc/self/cgroup", "cannot read it");
    cgroup_layout_info info = parse_cgroup_layout(*mountinfo, *own);
    for (auto& h : info.hierarchies)
        if (h.v2 && h.usable()) {
            if (auto list = read_first_line(h.place_dir + "/cgroup.controllers"))
                h.controllers = controller_list(*list);
            else
                h.problem = "cannot read " + h.place_dir + "/cgroup.controllers";
        }
    return info;
}

}  // namespace detail
}  // namespace ctr
// end ctr/detail/cgroup_layout.hpp
// begin ctr/detail/cgroup_parse.hpp
// Pure text handling for cgroups: human sizes, CPU lists, the kernel's
// "key value" files, io.max lines, and the names ctr gives its groups.
// Nothing here touches the file system, so all of it is unit-tested.


#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr::detail {

// What "max" means in a parsed value.
inline constexpr std::uint64_t cgroup_unlimited = std::numeric_limits<std::uint64_t>::max();

template <class = void>
inline std::string_view cgroup_trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n')) text.remove_suffix(1);
    return text;
}

// A plain decimal number; nothing for anything else or on overflow.
template <class = void>
inline std::optional<std::uint64_t> parse_decimal(std::string_view text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
        if (value > (cgroup_unlimited - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

// A byte count as people write it: "1048576", "512k", "64M", "1.5G", "2TiB",
// "max". Units are binary (K = 1024), as in the kernel's own memparse; an
// optional "i" and "B" after the letter are accepted. Throws
// ctr::error(set_cgroup_limit, EINVAL) naming `what` and the text.
template <class = void>
inline std::uint64_t parse_size(std::string_view text, std::string_view what = "size") {
    const auto fail = [&](std::string_view why) -> std::uint64_t {
        throw error(step::set_cgroup_limit, EINVAL, std::string(what),
                    "bad size '" + std::string(text) + "': " + std::string(why)
                        + "; write a number of bytes with an optional K, M, G, T, P or E suffix, or 'max'");
    };
    std::string_view t = cgroup_trim(text);
    if (t.empty()) return fail("it is empty");
    if (t == "max") return cgroup_unlimited;
    if (t.front() == '-') return fail("it is negative");
    std::size_t i = 0;
    std::uint64_t whole = 0;
    std::size_t digits = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
        const std::uint64_t d = static_cast<std::uint64_t>(t[i] - '0');
        if (whole > (cgroup_unlimited - d) / 10) return fail("it is too large");
        whole = whole * 10 + d;
        ++i;
        ++digits;
    }
    // Up to 18 fractional digits, kept as an integer numerator over 10^n.
    std::uint64_t fraction = 0, scale = 1;
    bool has_point = false;
    if (i < t.size() && t[i] == '.') {
        has_point = true;
        ++i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
            if (scale >= 1'000'000'000'000'000'000ULL) return fail("too many decimals");
            fraction = fraction * 10 + static_cast<std::uint64_t>(t[i] - '0');
            scale *= 10;
            ++i;
            ++digits;
        }
        if (scale == 1) return fail("no digits after the decimal point");
    }
    if (digits == 0) return fail("it does not start with a number");
    while (i < t.size() && t[i] == ' ') ++i;
    std::string_view unit = t.substr(i);
    int shift = 0;
    if (!unit.empty()) {
        static constexpr std::string_view letters = "kmgtpe";
        char letter = unit.front();
        if (letter >= 'A' && letter <= 'Z') letter = static_cast<char>(letter - 'A' + 'a');
        const auto at = letters.find(letter);
        if (at != std::string_view::npos) {
            shift = 10 * static_cast<int>(at + 1);
            unit.remove_prefix(1);
            if (!unit.empty() && unit.front() == 'i') unit.remove_prefix(1);
        }
        if (!unit.empty() && (unit.front() == 'B' || unit.front() == 'b') && (shift > 0 || unit.size() == 1))
            unit.remove_prefix(1);
        if (!unit.empty()) return fail("unknown unit '" + std::string(t.substr(i)) + "'");
    }
    if (shift == 0 && has_point && fraction != 0) return fail("a byte count must be whole");
    if (shift > 0 && whole > (cgroup_unlimited >> shift)) return fail("it is too large");
    std::uint64_t bytes = whole << shift;
    if (fraction != 0) {
        // floor(fraction / scale * 2^shift) by binary long division, which
        // stays within 64 bits: the remainder is below scale <= 10^18.
        std::uint64_t part = 0, remainder = fraction;
        for (int bit = 0; bit < shift; ++bit) {
            remainder *= 2;
            part *= 2;
            if (remainder >= scale) {
                remainder -= scale;
                part += 1;
            }
        }
        if (part > cgroup_unlimited - bytes) return fail("it is too large");
        bytes += part;
    }
    if (bytes == cgroup_unlimited) return fail("it is too large");
    return bytes;
}

// A CPU or memory-node list as cpuset files use it: "0-3,5,7-8". Throws
// ctr::error(set_cgroup_limit, EINVAL) naming `what`. The empty list is
// valid (it reads back from a cpuset that was never set). The numbers come
// sorted, each once.
template <class = void>
inline std::vector<unsigned> parse_cpu_list(std::string_view text, std::string_view what = "cpu list") {
    const auto fail = [&](std::string_view why) -> std::vector<unsigned> {
        throw error(step::set_cgroup_limit, EINVAL, std::string(what),
                    "bad list '" + std::string(text) + "': " + std::string(why) + "; write e.g. '0-3,6'");
    };
    std::vector<unsigned> out;
    const std::string_view t = cgroup_trim(text);
    if (t.empty()) return out;
    for (std::string_view part : cgroup_split(t, ',')) {
        part = cgroup_trim(part);
        const auto dash = part.find('-');
        const auto first = parse_decimal(part.substr(0, dash));
        const auto last = dash == std::string_view::npos ? first : parse_decimal(part.substr(dash + 1));
        if (!first || !last) return fail("'" + std::string(part) + "' is not a number or a range");
        if (*last < *first) return fail("the range '" + std::string(part) + "' runs backwards");
        if (*last >= 65536) return fail("'" + std::string(part) + "' is beyond any CPU or node number");
        for (std::uint64_t n = *first; n <= *last; ++n) out.push_back(static_cast<unsigned>(n));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// The value of `key` in a "key value" per line file (cpu.stat,
// memory.events, pids.events, memory.oom_control, cpuacct.stat). Nothing
// when the key is absent or its value is not a number.
template <class = void>
inline std::optional<std::uint64_t> keyed_value(std::string_view text, std::string_view key) {
    for (std::string_view line : cgroup_split(text, '\n')) {
        const auto w = cgroup_words(line);
        if (w.size() >= 2 && w[0] == key) return parse_decimal(w[1]);
    }
    return std::nullopt;
}

// A single value as limit files hold it: a number, or "max" (v2) as
// cgroup_unlimited.
template <class = void>
inline std::optional<std::uint64_t> parse_limit_value(std::string_view text) {
    const auto t = cgroup_trim(text);
    if (t == "max") return cgroup_unlimited;
    return parse_decimal(t);
}

// In an io.max text, the value of `key` (rbps, wbps, riops, wiops) on the
// line for `device` ("8:0"); "max" as cgroup_unlimited. Nothing when the
// device has no line (no limit set).
template <class = void>
inline std::optional<std::uint64_t> io_max_value(std::string_view text, std::string_view device, std::string_view key) {
    for (std::string_view line : cgroup_split(text, '\n')) {
        const auto w = cgroup_words(line);
        if (w.empty() || w[0] != device) continue;
        for (std::size_t i = 1; i < w.size(); ++i) {
            const auto eq = w[i].find('=');
            if (eq != std::string_view::npos && w[i].substr(0, eq) == key)
                return parse_limit_value(w[i].substr(eq + 1));
        }
    }
    return std::nullopt;
}

// The name of a group: "<prefix>-<creator pid>-<creator start time>-<counter>-<random>".
// The creator's pid and start time (clock ticks after boot, from
// /proc/<pid>/stat) let reap_stale tell a crashed run's group from a live
// one, even after the pid was reused; the random part keeps names apart
// across pid namespaces.
struct group_name {
    std::string prefix;
    std::uint64_t pid = 0;
    std::uint64_t start_time = 0;
    std::uint64_t counter = 0;
    std::string random;
};

template <class = void>
inline std::string format_group_name(const group_name& n) {
    return n.prefix + "-" + std::to_string(n.pid) + "-" + std::to_string(n.start_time) + "-" + std::to_string(n.counter)
           + "-" + n.random;
}

template <class = void>
inline std::optional<group_name> parse_group_name(std::string_view name) {
    group_name out;
    std::string_view rest = name;
    std::string_view fields[4];
    for (int i = 3; i >= 0; --i) {
        const auto dash = rest.rfind('-');
        if (dash == std::string_view::npos) return std::nullopt;
        fields[i] = rest.substr(dash + 1);
        rest = rest.substr(0, dash);
    }
    if (rest.empty() || fields[3].empty()) return std::nullopt;
    for (char c : fields[3])
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    const auto pid = parse_decimal(fields[0]), start = parse_decimal(fields[1]), counter = parse_decimal(fields[2]);
    if (!pid || !start || !counter) return std::nullopt;
    out.prefix = std::string(rest);
    out.pid = *pid;
    out.start_time = *start;
    out.counter = *counter;
    out.random = std::string(fields[3]);
    return out;
}

// A prefix must make a valid, unambiguous directory name: letters, digits,
// '_', '.', '-', not starting with '.', at most 64 characters.
template <class = void>
inline void check_group_prefix(std::string_view prefix) {
    bool ok = !prefix.empty() && prefix.size() <= 64 && prefix.front() != '.';
    for (char c : prefix)
        ok = ok
             && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'
                 || c == '-');
    if (!ok)
        throw error(step::create_cgroup, EINVAL, std::string(prefix),
                    "a group name prefix is 1 to 64 of [A-Za-z0-9_.-], not starting with '.'");
}

// The start time (field 22) and state (field 3) of /proc/<pid>/stat's text.
template <class = void>
inline std::optional<std::pair<std::uint64_t, char>> parse_proc_stat_start(std::string_view stat) {
    const auto paren = stat.rfind(')');
    if (paren == std::string_view::npos) return std::nullopt;
    const auto w = cgroup_words(stat.substr(paren + 1));
    // w[0] is field 3 (state); field 22 is w[19].
    if (w.size() < 20 || w[0].empty()) return std::nullopt;
    const auto start = parse_decimal(w[19]);
    if (!start) return std::nullopt;
    return std::pair{*start, w[0].front()};
}

}  // namespace ctr::detail
// end ctr/detail/cgroup_parse.hpp

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
// end ctr/detail/cgroup_fs.hpp

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr::cgroup {

// Bandwidth and iops limits for one block device.
struct io_device_limit {
    std::string device;                     // "MAJ:MIN" ("254:0"), or a block device's path ("/dev/vda")
    std::optional<std::string> read_bps{};  // bytes per second as a size: "10M", or "max"
    std::optional<std::string> write_bps{};
    std::optional<std::uint64_t> read_iops{};
    std::optional<std::uint64_t> write_iops{};
};

// A limit on one huge page size's use (OCI hugepageLimits).
struct hugepage_limit {
    std::string page_size;  // as the kernel names it: "2MB", "1GB", "64KB"
    std::string max;        // bytes as a size ("1G"), or "max"; kept in whole huge pages
};

// What a group may use. Every field is optional; a set field needs its
// controller (memory, cpu, cpuset, pids, io) and is an error without it.
struct limits {
    // Sizes: "64M", "1.5G", "512k", "1048576", or "max" (binary units).
    std::optional<std::string> memory_max{};   // hard limit: above it the kernel reclaims, then OOM-kills
    std::optional<std::string> memory_high{};  // v2 only: above it the group is throttled and reclaimed
    std::optional<std::string> swap_max{};     // swap the group may use besides memory_max
    // Memory the group is protected from reclaim below (v2 memory.low), or
    // its soft limit (v1 memory.soft_limit_in_bytes): OCI memory.reservation.
    std::optional<std::string> memory_reservation{};
    // CPU time as a number of CPUs: 0.5 is half of one CPU, 2 is two CPUs,
    // enforced over each cpu_period.
    std::optional<double> cpus{};
    std::chrono::microseconds cpu_period{100'000};
    std::optional<std::uint32_t> cpu_weight{};  // share against siblings, 1..10000, default 100
    // The same share as v1 counts it (OCI cpu.shares), 2..262144, default
    // 1024: written as is to v1 cpu.shares, converted to cpu.weight on v2
    // (1 + (shares - 2) * 9999 / 262142, as runc and crun do). Not with cpu_weight.
    std::optional<std::uint64_t> cpu_shares{};
    std::optional<std::string> cpuset_cpus{};   // CPUs the group may run on: "0-3,6"
    std::optional<std::string> cpuset_mems{};   // memory nodes: "0"
    std::optional<std::uint64_t> pids_max{};    // processes and threads, together
    std::optional<std::uint32_t> io_weight{};   // share of disk time, 1..10000 (1..1000 on v1)
    std::vector<io_device_limit> io_max{};
    // Which devices the group's processes may open or mknod, in order, the
    // last matching rule deciding (see device_rule). v1: the devices
    // controller; v2: a BPF device program attached to the group (root only).
    std::vector<device_rule> devices{};
    std::vector<hugepage_limit> hugepages{};  // needs the hugetlb controller
};

struct options {
    // Groups are named "<prefix>-<pid>-<start time>-<counter>-<random>";
    // reap_stale(prefix) finds the ones whose creator is gone.
    std::string prefix = "ctr";
    // The group's exact path instead of a generated name, e.g. an OCI
    // cgroupsPath. "/a/b" starts at the root of each hierarchy as mounted
    // here (as runc and crun read it); "a/b" below this process's own
    // cgroup. Missing parents are made (and on v2 given the controllers
    // down the path) and stay when the group is removed. An existing group
    // at the path is an error (EEXIST) unless join_existing.
    std::string path{};
    // With `path`: use a group that exists there already, setting the
    // limits on it. A joined directory is not the handle's: the destructor
    // and remove() leave it (as for group::open).
    bool join_existing = false;
    // `= limits()`, not `{}`: see process::options (g++ 12 destroys a `{}`
    // member twice when a later designated initializer throws).
    cgroup::limits limits = cgroup::limits();
    // More controllers to put the group under, e.g. for their accounting
    // ("hugetlb"). An unknown or missing one is an error.
    std::vector<std::string> controllers{};
    // Also use memory, cpu, cpuacct and pids, where they are available, so
    // that read_stats() has figures without limits. Missing ones are skipped.
    bool accounting = true;
    // Hybrid hosts: make the group in the cgroup2 hierarchy only, leaving
    // the v1 controllers alone. Limits are then out of reach (the v2 side of
    // a hybrid host rarely has controllers), but cgroup.kill, cgroup.freeze,
    // cgroup.events and CLONE_INTO_CGROUP work. Pure v2: no effect; v1: error.
    bool unified_only = false;
    // cgroup v2: when this process's cgroup must hand controllers to the
    // group but cannot because it has processes of its own (EBUSY; the
    // "no internal processes" rule), move this process into a leaf cgroup
    // "ctr-leaf" below it first (see move_self_to_leaf). Off: that case is
    // an error saying so. ctr never moves a process silently.
    bool move_caller_to_leaf = false;
    // How long remove() and the destructor wait for the processes to die
    // and for rmdir to succeed.
    std::chrono::milliseconds remove_timeout{5000};
};

// Accounting. A figure the layout or kernel does not provide is empty,
// never zero; docs/cgroups.md says which file each comes from.
struct stats {
    std::optional<std::uint64_t> memory_current{};     // bytes charged now
    std::optional<std::uint64_t> memory_peak{};        // highest charge (v2 memory.peak, 5.19+; v1 max_usage_in_bytes)
    std::optional<std::uint64_t> memory_max_events{};  // v2 only: times usage was about to pass memory_max
    std::optional<std::uint64_t> oom_events{};         // v2 only: times the group was out of memory
    std::optional<std::uint64_t> oom_kills{};          // processes the OOM killer killed in the group
    std::optional<std::chrono::nanoseconds> cpu_usage{};  // user + system
    std::optional<std::chrono::nanoseconds> cpu_user{};
    std::optional<std::chrono::nanoseconds> cpu_system{};
    std::optional<std::uint64_t> cpu_periods{};            // enforcement periods with runnable tasks
    std::optional<std::uint64_t> cpu_throttled_periods{};  // periods in which the quota ran out
    std::optional<std::chrono::nanoseconds> cpu_throttled_time{};
    std::optional<std::uint64_t> pids_current{};
    std::optional<std::uint64_t> pids_peak{};
    std::optional<std::uint64_t> pids_max_events{};  // forks refused at pids_max
};

template <class = void>
inline std::size_t reap_stale(std::string_view prefix);

// The smallest memory_max a group takes: Docker's floor. Below it a process
// cannot even be set up (the kernel's OOM killer ends it before exec), so a
// smaller limit is refused when the group is made rather than failing later.
inline constexpr std::uint64_t minimum_memory_max = 6 * 1024 * 1024;

namespace detail {

using namespace ::ctr::detail;

inline constexpr std::string_view known_controllers[] = {"cpu",   "cpuacct", "cpuset",  "memory",   "io",
                                                         "blkio", "pids",    "freezer", "hugetlb",  "rdma",
                                                         "misc",  "devices", "net_cls", "net_prio", "perf_event"};

template <class = void>
inline bool is_known_controller(std::string_view c) {
    for (auto k : known_controllers)
        if (k == c) return true;
    return false;
}

// A controller's name in a v1 hierarchy.
template <class = void>
inline std::string_view v1_controller_name(std::string_view c) { return c == "io" ? "blkio" : c; }

// Its name in v2: "" for what every v2 cgroup does without a controller
// (CPU time accounting, freezing, perf events); nothing when v2 has no such
// controller.
template <class = void>
inline std::optional<std::string_view> v2_controller_name(std::string_view c) {
    if (c == "blkio") return "io";
    if (c == "cpuacct" || c == "freezer" || c == "perf_event") return "";
    if (c == "devices" || c == "net_cls" || c == "net_prio") return std::nullopt;
    return c;
}

template <class = void>
inline std::uint64_t page_size() { return static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)); }

// What a v1 memory limit reads back as when it is unlimited.
template <class = void>
inline std::uint64_t v1_memory_unlimited() { return static_cast<std::uint64_t>(LONG_MAX) / page_size() * page_size(); }

// Where the group lives: which hierarchies, and which controllers in each.
struct member_plan {
    std::size_t hierarchy = 0;
    std::vector<std::string> controllers;  // v2: the ones to enable for the group
};

class planner {
public:
    template <class = void>
    planner(const cgroup_layout_info& layout, bool v2_only) : layout_(layout), v2_only_(v2_only) {}

    // Puts the group under `controller`. Returns false if it is missing and
    // not `required`; throws if it is missing and required, naming `what`
    // (the limit or option that needs it) under step `s`. `device_rules`:
    // the devices limit, which v2 enforces without a controller.
    template <class = void>
    bool use(std::string_view controller, bool required, ctr::step s, std::string_view what,
             bool device_rules = false) {
        if (!is_known_controller(controller)) {
            std::string known;
            for (auto k : known_controllers) known += std::string(known.empty() ? "" : " ") + std::string(k);
            throw error(step::enable_controllers, EINVAL, std::string(controller),
                        "unknown cgroup controller; known: " + known);
        }
        const auto missing = [&](const std::string& why) {
            if (!required) return false;
            throw error(
                s, ENOTSUP, std::string(what),
                "needs the " + std::string(controller) + " controller, which " + why + " (" + layout_.describe() + ")");
        };
        const cgroup_hierarchy* v2 = layout_.v2();
        const auto use_v2 = [&](std::string_view v2_name) {
            const std::size_t m = member_for(static_cast<std::size_t>(v2 - layout_.hierarchies.data()));
            if (!v2_name.empty()) add_unique(plan_[m].controllers, std::string(v2_name));
            place(controller, m);
            return true;
        };
        if (v2_only_) {
            if (!v2) return missing("needs cgroup v2, which is not mounted");
            if (!v2->usable()) return missing("cannot be used: " + v2->problem);
            // v2 has no devices controller; limits::devices becomes a BPF
            // program, which every v2 cgroup takes.
            const auto name = device_rules ? std::optional<std::string_view>("") : v2_controller_name(controller);
            if (!name) return missing("is a cgroup v1 controller only (cgroup v2 has no such controller)");
            if (!name->empty() && !v2->has(*name)) return missing("is not in " + v2->place_dir + "/cgroup.controllers");
            return use_v2(*name);
        }
        std::string problem;
        for (std::size_t i = 0; i < layout_.hierarchies.size(); ++i) {
            const auto& h = layout_.hierarchies[i];
            if (h.v2 || !h.has(v1_controller_name(controller))) continue;
            if (!h.usable()) {
                problem = "is mounted at " + h.mount_point + " but cannot be used: " + h.problem;
                continue;
            }
            place(controller, member_for(i));
            return true;
        }
        // A hybrid host's cgroup2 side may carry a controller that v1 lacks.
        if (v2 && v2->usable())
            if (const auto name = v2_controller_name(controller); name && !name->empty() && v2->has(*name))
                return use_v2(*name);
        return missing(problem.empty() ? "is not available" : problem);
    }

    // Makes sure the group has a directory somewhere, to hold its
    // processes, and puts the members in the layout's order (v2 first).
    template <class = void>
    void finish() {
        if (plan_.empty()) {
            for (std::size_t i = 0; i < layout_.hierarchies.size() && plan_.empty(); ++i) {
                const auto& h = layout_.hierarchies[i];
                if (h.usable() && h.v2 == v2_only_) member_for(i);
            }
            if (plan_.empty())
                throw error(step::cgroup_layout, ENOTSUP, {},
                            "no cgroup hierarchy to make a group in (" + layout_.describe() + ")");
        }
        std::vector<member_plan> sorted = plan_;
        std::sort(sorted.begin(), sorted.end(),
                  [](const member_plan& a, const member_plan& b) { return a.hierarchy < b.hierarchy; });
        for (auto& [controller, index] : where_)
            for (std::size_t i = 0; i < sorted.size(); ++i)
                if (sorted[i].hierarchy == plan_[index].hierarchy) {
                    index = i;
                    break;
                }
        plan_ = std::move(sorted);
    }

    template <class = void>
    std::vector<member_plan>& members() { return plan_; }
    // The index of the member that hosts `controller`, if the group uses it.
    template <class = void>
    std::optional<std::size_t> where(std::string_view controller) const {
        for (const auto& [name, index] : where_)
            if (name == controller) return index;
        return std::nullopt;
    }

private:
    template <class = void>
    static void add_unique(std::vector<std::string>& list, std::string value) {
        for (const auto& v : list)
            if (v == value) return;
        list.push_back(std::move(value));
    }
    template <class = void>
    std::size_t member_for(std::size_t hierarchy) {
        for (std::size_t i = 0; i < plan_.size(); ++i)
            if (plan_[i].hierarchy == hierarchy) return i;
        plan_.push_back({hierarchy, {}});
        return plan_.size() - 1;
    }

    const cgroup_layout_info& layout_;
    bool v2_only_;
    // Records that `controller` is hosted by member `m` (a later call for
    // the same controller wins).
    template <class = void>
    void place(std::string_view controller, std::size_t m) {
        for (auto& [name, index] : where_)
            if (name == controller) {
                index = m;
                return;
            }
        where_.emplace_back(std::string(controller), m);
    }

    std::vector<member_plan> plan_;
    // controller -> member; a few entries, so a vector rather than a std::map,
    // whose header every includer would parse.
    std::vector<std::pair<std::string, std::size_t>> where_;
};

// One limit: the file to write (the first of `targets` that exists), and a
// check of what the kernel then shows, which says why it is not what was
// asked for, or nothing when it is.
struct file_value {
    std::string file;
    std::string value;
};
struct limit_write {
    std::size_t member = 0;
    // A plain struct, not std::pair: each `{"file", value}` below would
    // otherwise instantiate pair's constructor checks for the length of
    // its literal, in every includer's compile.
    std::vector<file_value> targets;
    std::string what;                                          // the limits field, for messages
    std::function<std::optional<std::string>(std::string_view)> check;  // empty: nothing to read back
    // Instead of writing a file (the v2 device program): the group's
    // directory fd and path.
    std::function<void(int, const std::string&)> action{};
};

template <class = void>
inline std::string size_text(std::uint64_t bytes) { return bytes == cgroup_unlimited ? "max" : std::to_string(bytes); }

// Memory limits are kept in whole pages: the kernel rounds down.
template <class = void>
inline std::function<std::optional<std::string>(std::string_view)> expect_bytes(std::uint64_t wanted, bool v1) {
    const std::uint64_t expected = wanted == cgroup_unlimited ? wanted : wanted / page_size() * page_size();
    return [expected, v1](std::string_view back) -> std::optional<std::string> {
        auto got = parse_limit_value(back);
        if (got && v1 && *got >= v1_memory_unlimited()) got = cgroup_unlimited;
        if (got == expected) return std::nullopt;
        return "the kernel kept '" + std::string(cgroup_trim(back)) + "' instead of " + size_text(expected);
    };
}

template <class = void>
inline std::function<std::optional<std::string>(std::string_view)> expect_number(std::uint64_t wanted) {
    return [wanted](std::string_view back) -> std::optional<std::string> {
        if (parse_limit_value(back) == wanted) return std::nullopt;
        return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
    };
}

template <class = void>
inline std::function<std::optional<std::string>(std::string_view)> expect_text(std::string wanted) {
    return [wanted](std::string_view back) -> std::optional<std::string> {
        if (cgroup_trim(back) == wanted) return std::nullopt;
        return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
    };
}

template <class = void>
inline std::function<std::optional<std::string>(std::string_view)> expect_cpu_list(std::vector<unsigned> wanted) {
    return [wanted](std::string_view back) -> std::optional<std::string> {
        try {
            if (parse_cpu_list(back) == wanted) return std::nullopt;
        } catch (const error&) {
        }
        return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
    };
}

// A huge page size as the kernel names it in hugetlb files ("2MB", "1GB",
// "64KB"), in bytes; throws naming the text.
template <class = void>
inline std::uint64_t hugepage_size(const std::string& text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    const auto number = parse_decimal(std::string_view(text).substr(0, digits));
    const std::string_view unit = std::string_view(text).substr(digits);
    const std::uint64_t scale = unit == "KB"   ? 1024
                                : unit == "MB" ? 1024 * 1024
                                : unit == "GB" ? 1024 * 1024 * 1024
                                               : 0;
    if (!number || *number == 0 || scale == 0 || *number > (std::uint64_t{1} << 40))
        throw error(step::set_cgroup_limit, EINVAL, "hugepages",
                    "bad page size '" + text + "': write it as the kernel names it, e.g. \"2MB\" or \"1GB\"");
    return *number * scale;
}

// "MAJ:MIN" for a device given as "MAJ:MIN" or as a block device's path.
template <class = void>
inline std::string resolve_block_device(const std::string& device) {
    const auto colon = device.find(':');
    if (colon != std::string::npos && parse_decimal(std::string_view(device).substr(0, colon))
        && parse_decimal(std::string_view(device).substr(colon + 1)))
        return device;
    if (device.empty() || device.front() != '/')
        throw error(step::set_cgroup_limit, EINVAL, device, "io_max: a device is 'MAJ:MIN' or a block device's path");
    struct stat st {};
    if (const long r = sys::fstatat(AT_FDCWD, device.c_str(), &st, 0); r < 0)
        throw error(step::set_cgroup_limit, static_cast<int>(-r), device, "io_max: cannot stat the device");
    if (!S_ISBLK(st.st_mode)) throw error(step::set_cgroup_limit, ENOTBLK, device, "io_max: not a block device");
    return std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
}

// The controller each set limit needs, with the limit's name.
template <class = void>
inline std::vector<std::pair<std::string_view, std::string_view>> limit_controllers(const limits& l) {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    if (l.memory_max) out.emplace_back("memory", "memory_max");
    if (l.memory_high) out.emplace_back("memory", "memory_high");
    if (l.swap_max) out.emplace_back("memory", "swap_max");
    if (l.memory_reservation) out.emplace_back("memory", "memory_reservation");
    if (l.cpus) out.emplace_back("cpu", "cpus");
    if (l.cpu_weight) out.emplace_back("cpu", "cpu_weight");
    if (l.cpu_shares) out.emplace_back("cpu", "cpu_shares");
    if (l.cpuset_cpus) out.emplace_back("cpuset", "cpuset_cpus");
    if (l.cpuset_mems) out.emplace_back("cpuset", "cpuset_mems");
    if (l.pids_max) out.emplace_back("pids", "pids_max");
    if (l.io_weight) out.emplace_back("io", "io_weight");
    if (!l.io_max.empty()) out.emplace_back("io", "io_max");
    if (!l.devices.empty()) out.emplace_back("devices", "devices");
    if (!l.hugepages.empty()) out.emplace_back("hugetlb", "hugepages");
    return out;
}

// The writes for `l`, in the order they must happen, once the planner has
// placed every controller limit_controllers() names. Throws on nonsense
// values and on limits the layout cannot express.
template <class = void>
inline std::vector<limit_write> plan_limits(const limits& l, const planner& plan, const cgroup_layout_info& layout,
                                            const std::vector<bool>& member_is_v2) {
    std::vector<limit_write> writes;
    const auto member = [&](std::string_view controller, std::string_view) { return *plan.where(controller); };
    const auto v2_of = [&](std::size_t m) { return member_is_v2.at(m); };

    std::optional<std::uint64_t> memory_max;
    if (l.memory_max) {
        const std::uint64_t bytes = parse_size(*l.memory_max, "memory_max");
        if (bytes < minimum_memory_max)
            throw error(step::set_cgroup_limit, EINVAL, "memory_max",
                        "'" + *l.memory_max + "' is below the floor of 6 MiB (" + std::to_string(minimum_memory_max) +
                            " bytes): a smaller limit cannot start a process, whose setup the out-of-memory killer "
                            "would end; Docker refuses the same");
        memory_max = bytes;
        const std::size_t m = member("memory", "memory_max");
        if (v2_of(m))
            writes.push_back({m, {{"memory.max", size_text(bytes)}}, "memory_max", expect_bytes(bytes, false)});
        else
            writes.push_back({m,
                              {{"memory.limit_in_bytes", bytes == cgroup_unlimited ? "-1" : std::to_string(bytes)}},
                              "memory_max",
                              expect_bytes(bytes, true)});
    }
    if (l.memory_high) {
        const std::uint64_t bytes = parse_size(*l.memory_high, "memory_high");
        const std::size_t m = member("memory", "memory_high");
        if (!v2_of(m))
            throw error(step::set_cgroup_limit, ENOTSUP, "memory_high",
                        "memory.high exists only on cgroup v2, and the memory controller here is on v1 ("
                            + layout.describe() + "); use memory_max");
        writes.push_back({m, {{"memory.high", size_text(bytes)}}, "memory_high", expect_bytes(bytes, false)});
    }
    if (l.swap_max) {
        const std::uint64_t bytes = parse_size(*l.swap_max, "swap_max");
        const std::size_t m = member("memory", "swap_max");
        if (v2_of(m)) {
            writes.push_back({m, {{"memory.swap.max", size_text(bytes)}}, "swap_max", expect_bytes(bytes, false)});
        } else {
            // v1 limits memory and swap together (memory.memsw), so the
            // swap allowance is added to memory_max.
            std::uint64_t total = cgroup_unlimited;
            if (bytes != cgroup_unlimited) {
                if (!memory_max || *memory_max == cgroup_unlimited)
                    throw error(step::set_cgroup_limit, ENOTSUP, "swap_max",
                                "on cgroup v1 swap is limited together with memory (memory.memsw.limit_in_bytes), "
                                "so swap_max needs a memory_max");
                if (bytes > cgroup_unlimited - 1 - *memory_max)
                    throw error(step::set_cgroup_limit, EINVAL, "swap_max", "memory_max + swap_max is too large");
                total = *memory_max + bytes;
            }
            writes.push_back(
                {m,
                 {{"memory.memsw.limit_in_bytes", total == cgroup_unlimited ? "-1" : std::to_string(total)}},
                 "swap_max",
                 expect_bytes(total, true)});
        }
    }
    if (l.memory_reservation) {
        const std::uint64_t bytes = parse_size(*l.memory_reservation, "memory_reservation");
        const std::size_t m = member("memory", "memory_reservation");
        if (v2_of(m))
            writes.push_back(
                {m, {{"memory.low", size_text(bytes)}}, "memory_reservation", expect_bytes(bytes, false)});
        else
            writes.push_back(
                {m,
                 {{"memory.soft_limit_in_bytes", bytes == cgroup_unlimited ? "-1" : std::to_string(bytes)}},
                 "memory_reservation",
                 expect_bytes(bytes, true)});
    }
    if (l.cpus) {
        const double cpus = *l.cpus;
        const auto period = l.cpu_period.count();
        if (period < 1000 || period > 1'000'000)
            throw error(step::set_cgroup_limit, EINVAL, "cpu_period",
                        "bad period " + std::to_string(period) + "us: the kernel takes 1000us to 1s");
        // Written so that NaN and infinity fail too (<cmath> costs every user's build).
        if (!(cpus > 0 && cpus <= 1e6))
            throw error(step::set_cgroup_limit, EINVAL, "cpus",
                        "bad CPU count " + std::to_string(cpus) + ": give a positive number of CPUs, e.g. 0.5");
        const auto quota = static_cast<long long>(cpus * static_cast<double>(period) + 0.5);  // positive: rounds to nearest
        if (quota < 1000)
            throw error(step::set_cgroup_limit, EINVAL, "cpus",
                        std::to_string(cpus) + " CPUs is a quota of " + std::to_string(quota) + "us per "
                            + std::to_string(period) + "us period; the kernel's smallest quota is 1000us");
        const std::size_t m = member("cpu", "cpus");
        if (v2_of(m)) {
            const std::string value = std::to_string(quota) + " " + std::to_string(period);
            writes.push_back({m, {{"cpu.max", value}}, "cpus", expect_text(value)});
        } else {
            writes.push_back({m,
                              {{"cpu.cfs_period_us", std::to_string(period)}},
                              "cpu_period",
                              expect_number(static_cast<std::uint64_t>(period))});
            writes.push_back({m,
                              {{"cpu.cfs_quota_us", std::to_string(quota)}},
                              "cpus",
                              expect_number(static_cast<std::uint64_t>(quota))});
        }
    }
    if (l.cpu_weight) {
        const std::uint32_t w = *l.cpu_weight;
        if (w < 1 || w > 10000)
            throw error(step::set_cgroup_limit, EINVAL, "cpu_weight",
                        "bad weight " + std::to_string(w) + ": 1 to 10000");
        const std::size_t m = member("cpu", "cpu_weight");
        if (v2_of(m)) {
            writes.push_back({m, {{"cpu.weight", std::to_string(w)}}, "cpu_weight", expect_number(w)});
        } else {
            // v1 shares: 1024 is the default as 100 is in v2.
            const std::uint64_t shares = std::max<std::uint64_t>(2, std::uint64_t{w} * 1024 / 100);
            writes.push_back({m, {{"cpu.shares", std::to_string(shares)}}, "cpu_weight", expect_number(shares)});
        }
    }
    if (l.cpu_shares) {
        const std::uint64_t shares = *l.cpu_shares;
        if (l.cpu_weight)
            throw error(step::set_cgroup_limit, EINVAL, "cpu_shares",
                        "cpu_shares and cpu_weight are the same share in two scales: give one");
        if (shares < 2 || shares > 262144)
            throw error(step::set_cgroup_limit, EINVAL, "cpu_shares",
                        "bad shares " + std::to_string(shares) + ": 2 to 262144");
        const std::size_t m = member("cpu", "cpu_shares");
        if (v2_of(m)) {
            const std::uint64_t w = 1 + (shares - 2) * 9999 / 262142;
            writes.push_back({m, {{"cpu.weight", std::to_string(w)}}, "cpu_shares", expect_number(w)});
        } else {
            writes.push_back({m, {{"cpu.shares", std::to_string(shares)}}, "cpu_shares", expect_number(shares)});
        }
    }
    struct cpuset_limit {
        const char* field;
        const char* file;
        const std::optional<std::string>* value;
    };
    for (const auto& [field, file, value] : {cpuset_limit{"cpuset_cpus", "cpuset.cpus", &l.cpuset_cpus},
                                             cpuset_limit{"cpuset_mems", "cpuset.mems", &l.cpuset_mems}}) {
        if (!*value) continue;
        std::vector<unsigned> wanted = parse_cpu_list(**value, field);
        if (wanted.empty())
            throw error(step::set_cgroup_limit, EINVAL, field, "an empty list would leave the group nowhere to run");
        const std::size_t m = member("cpuset", field);
        writes.push_back({m, {{file, std::string(cgroup_trim(**value))}}, field, expect_cpu_list(std::move(wanted))});
    }
    if (l.pids_max) {
        const std::size_t m = member("pids", "pids_max");
        writes.push_back({m, {{"pids.max", std::to_string(*l.pids_max)}}, "pids_max", expect_number(*l.pids_max)});
    }
    if (l.io_weight) {
        const std::uint32_t w = *l.io_weight;
        const std::size_t m = member("io", "io_weight");
        if (w < 1 || w > (v2_of(m) ? 10000U : 1000U))
            throw error(step::set_cgroup_limit, EINVAL, "io_weight",
                        "bad weight " + std::to_string(w) + (v2_of(m) ? ": 1 to 10000" : ": 1 to 1000 on cgroup v1"));
        const auto check = [w](std::string_view back) -> std::optional<std::string> {
            if (keyed_value(back, "default") == w || parse_decimal(cgroup_trim(back)) == w) return std::nullopt;
            return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
        };
        const std::string value = std::to_string(w);
        if (v2_of(m))
            writes.push_back(
                {m, {{"io.weight", "default " + value}, {"io.bfq.weight", "default " + value}}, "io_weight", check});
        else
            writes.push_back({m, {{"blkio.bfq.weight", value}, {"blkio.weight", value}}, "io_weight", check});
    }
    for (const auto& d : l.io_max) {
        const std::size_t m = member("io", "io_max");
        const std::string device = resolve_block_device(d.device);
        struct key {
            const char* v2;
            const char* v1_file;
            std::optional<std::uint64_t> value;
        };
        const key keys[] = {
            {"rbps", "blkio.throttle.read_bps_device",
             d.read_bps ? std::optional(parse_size(*d.read_bps, "io_max read_bps")) : std::nullopt},
            {"wbps", "blkio.throttle.write_bps_device",
             d.write_bps ? std::optional(parse_size(*d.write_bps, "io_max write_bps")) : std::nullopt},
            {"riops", "blkio.throttle.read_iops_device", d.read_iops},
            {"wiops", "blkio.throttle.write_iops_device", d.write_iops},
        };
        if (v2_of(m)) {
            std::string value = device;
            std::vector<std::pair<std::string, std::uint64_t>> wanted;
            for (const auto& k : keys)
                if (k.value) {
                    value += std::string(" ") + k.v2 + "=" + size_text(*k.value);
                    wanted.emplace_back(k.v2, *k.value);
                }
            if (wanted.empty())
                throw error(step::set_cgroup_limit, EINVAL, d.device, "io_max: no limit given for the device");
            writes.push_back({m,
                              {{"io.max", value}},
                              "io_max",
                              [device, wanted](std::string_view back) -> std::optional<std::string> {
                                  for (const auto& [k, v] : wanted) {
                                      const auto got = io_max_value(back, device, k);
                                      if (got.value_or(cgroup_unlimited) != v)
                                          return "the kernel kept '" + std::string(cgroup_trim(back)) + "' for " + k;
                                  }
                                  return std::nullopt;
                              }});
        } else {
            bool any = false;
            for (const auto& k : keys) {
                if (!k.value) continue;
                any = true;
                // v1 takes 0 as "no limit" and then lists no line for the device.
                const std::uint64_t v = *k.value == cgroup_unlimited ? 0 : *k.value;
                writes.push_back({m,
                                  {{k.v1_file, device + " " + std::to_string(v)}},
                                  "io_max",
                                  [device, v](std::string_view back) -> std::optional<std::string> {
                                      std::optional<std::uint64_t> got;
                                      for (std::string_view line : cgroup_split(back, '\n')) {
                                          const auto w = cgroup_words(line);
                                          if (w.size() == 2 && w[0] == device) got = parse_decimal(w[1]);
                                      }
                                      if (got.value_or(0) == v) return std::nullopt;
                                      return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
                                  }});
            }
            if (!any) throw error(step::set_cgroup_limit, EINVAL, d.device, "io_max: no limit given for the device");
        }
    }
    for (const auto& h : l.hugepages) {
        const std::uint64_t page = hugepage_size(h.page_size);
        const std::uint64_t bytes = parse_size(h.max, "hugepages " + h.page_size);
        const std::size_t m = member("hugetlb", "hugepages");
        // The kernel keeps whole huge pages, and "max" as a count of small
        // pages, rounded down to whole huge pages too.
        const std::uint64_t expected = bytes == cgroup_unlimited ? bytes : bytes / page * page;
        const auto check = [expected, page](std::string_view back) -> std::optional<std::string> {
            auto got = parse_limit_value(back);
            if (got && *got != cgroup_unlimited && *got > v1_memory_unlimited() - page) got = cgroup_unlimited;
            if (got == expected) return std::nullopt;
            return "the kernel kept '" + std::string(cgroup_trim(back)) + "' instead of " + size_text(expected);
        };
        const std::string what = "hugepages " + h.page_size;
        if (v2_of(m))
            writes.push_back({m, {{"hugetlb." + h.page_size + ".max", size_text(bytes)}}, what, check});
        else
            writes.push_back({m,
                              {{"hugetlb." + h.page_size + ".limit_in_bytes",
                                bytes == cgroup_unlimited ? "-1" : std::to_string(bytes)}},
                              what,
                              check});
    }
    if (!l.devices.empty()) {
        // The v2 program's jumps are 16 bits; real lists have tens of rules.
        if (l.devices.size() > 2048)
            throw error(step::set_cgroup_limit, EINVAL, "devices",
                        std::to_string(l.devices.size()) + " rules; at most 2048");
        for (std::size_t i = 0; i < l.devices.size(); ++i) check_device_rule(l.devices[i], i);
        const std::size_t m = member("devices", "devices");
        if (v2_of(m)) {
            writes.push_back({m, {}, "devices", {}, [rules = l.devices](int fd, const std::string& dir) {
                                  attach_device_program(fd, dir, rules);
                              }});
        } else {
            // devices.allow and devices.deny are write-only: the kernel's
            // answer to each write is the check.
            for (std::size_t i = 0; i < l.devices.size(); ++i)
                writes.push_back({m,
                                  {{l.devices[i].allow ? "devices.allow" : "devices.deny",
                                    device_rule_v1_text(l.devices[i])}},
                                  "devices[" + std::to_string(i) + "]",
                                  {}});
        }
    }
    return writes;
}

// This process's own pid and start time, for group names.
template <class = void>
inline group_name own_group_name(std::string_view prefix) {
    static std::atomic<std::uint64_t> counter{0};
    group_name n;
    n.prefix = std::string(prefix);
    n.pid = static_cast<std::uint64_t>(sys::getpid());
    if (const auto start = process_start(static_cast<long>(n.pid))) n.start_time = start->first;
    n.counter = counter.fetch_add(1, std::memory_order_relaxed);
    n.random = random_hex();
    return n;
}

template <class = void>
inline std::string duration_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace detail

// Moves the calling process (all its threads) into a leaf cgroup named
// "ctr-leaf" below its own v2 cgroup, creating it if needed, and returns the
// leaf's directory. This is the explicit step the cgroup v2 "no internal
// processes" rule asks for: a cgroup with processes of its own cannot enable
// controllers for its children, so a process that wants to make groups
// below its own cgroup (a delegated subtree, say) first leaves it for a
// leaf. Groups made afterwards by this process and its children go beside
// the leaf. The leaf stays: it is where this process now lives. Throws
// (step attach_to_cgroup) where there is no usable cgroup v2 hierarchy.
template <class = void>
inline std::string move_self_to_leaf() {
    namespace d = detail;
    const auto layout = d::detect_cgroup_layout();
    const auto* h = layout.v2();
    if (!h || !h->usable())
        throw error(
            step::attach_to_cgroup, ENOTSUP, {},
            "moving to a leaf is a cgroup v2 step, and there is no usable v2 hierarchy (" + layout.describe() + ")");
    const std::string leaf = h->place_dir + "/" + std::string(d::cgroup_leaf_name);
    if (const long r = d::sys::mkdirat(AT_FDCWD, leaf.c_str(), 0755); r < 0 && r != -EEXIST)
        throw error(step::create_cgroup, static_cast<int>(-r), leaf);
    const std::string pid = std::to_string(d::sys::getpid());
    if (const long r = d::write_file_at(AT_FDCWD, (leaf + "/cgroup.procs").c_str(), pid); r < 0)
        throw error(step::attach_to_cgroup, static_cast<int>(-r), leaf + "/cgroup.procs", "pid " + pid);
    return leaf;
}

namespace detail {
// The error for a group this process may not create (EACCES, EPERM): it
// names what the caller asked for and the controller that needs it, rather
// than whichever hierarchy happened to be tried first, and the fix.
template <class = void>
inline error refused_group_error(const error& failed, const options& opts, planner& plan,
                                 const cgroup_layout_info& layout, const std::string& name) {
    std::vector<std::pair<std::string, std::string>> asked;  // controller, what needs it
    for (const auto& [controller, what] : limit_controllers(opts.limits))
        asked.emplace_back(std::string(controller), std::string(what));
    for (const auto& c : opts.controllers) asked.emplace_back(c, "options::controllers");
    std::string path = failed.path();
    std::string why;
    const std::string user = "this user (uid " + std::to_string(::geteuid()) + ")";
    for (const auto& [controller, what] : asked) {
        const auto member = plan.where(controller);
        if (!member) continue;
        const auto& h = layout.hierarchies[plan.members()[*member].hierarchy];
        if (::access(h.place_dir.c_str(), W_OK) == 0) continue;
        path = h.place_dir + "/" + name;
        why = what + " needs the " + controller + " controller, and " + user + " may not create a group in " +
              h.place_dir;
        break;
    }
    if (why.empty())
        why = "the group is made in every hierarchy it uses, also for accounting (options::accounting) and, on "
              "cgroup v1, the freezer; " + user + " may not create one in " +
              failed.path().substr(0, failed.path().rfind('/'));
    why += ": run as root, or in a cgroup delegated to this user (on cgroup v2: systemd-run --user --scope -p "
           "Delegate=yes COMMAND; a cgroup v1 hierarchy only root can delegate, by giving a group to the user)";
    return error(failed.step(), failed.code().value(), path, why);
}
}  // namespace detail

// For group::open.
struct open_options {
    // Whether the destructor removes the group, as for one it made.
    bool remove_on_destruction = false;
    std::chrono::milliseconds remove_timeout{5000};
};

// A cgroup of its own, in every hierarchy it needs, below the caller's
// cgroup. Move-only. The destructor kills what is left inside, waits until
// it is empty and removes it, quietly; remove() does the same and reports.
// One thread at a time, like the standard containers.
//
// A class template with one instantiation, `group`, for the compile cost of
// every includer: a destructor is never a template, so a plain class's
// destructor, and the whole removal it calls, would be compiled in every
// translation unit that includes this header. As a template's member it is
// compiled only where a program destroys a group (README "Compile cost").
template <class>
class [[nodiscard]] basic_group {
public:
    // Creates the group and sets its limits; throws ctr::error naming the
    // step and path, and leaves nothing behind when it does.
    template <class = void>
    explicit basic_group(const options& opts = {}) : remove_timeout_(opts.remove_timeout) {
        namespace d = detail;
        d::check_group_prefix(opts.prefix);
        const d::cgroup_layout_info layout = d::detect_cgroup_layout();
        layout_ = layout.kind;
        layout_text_ = layout.describe();
        if (layout.kind == cgroup_layout::none)
            throw error(step::cgroup_layout, ENOTSUP, "/proc/self/mountinfo", "no cgroup file system is mounted");
        const bool v2_only = layout.kind == cgroup_layout::v2 || opts.unified_only;
        if (opts.unified_only && !layout.v2())
            throw error(step::cgroup_layout, ENOTSUP, {},
                        "unified_only needs a cgroup2 hierarchy (" + layout_text_ + ")");

        d::planner plan(layout, v2_only);
        for (const auto& c : opts.controllers) plan.use(c, true, step::enable_controllers, c);
        if (opts.accounting)
            for (std::string_view c : {"memory", "cpu", "cpuacct", "pids"})
                plan.use(c, false, step::enable_controllers, c);
        // The v1 freezer is how kill_all stops a process tree from forking.
        if (!v2_only) plan.use("freezer", false, step::enable_controllers, "freezer");

        for (const auto& [controller, what] : d::limit_controllers(opts.limits))
            plan.use(controller, true, step::set_cgroup_limit, what, what == "devices");
        plan.finish();
        // Every value is checked here, before anything exists.
        std::vector<bool> is_v2;
        for (const auto& m : plan.members()) is_v2.push_back(layout.hierarchies[m.hierarchy].v2);
        const std::vector<d::limit_write> writes = d::plan_limits(opts.limits, plan, layout, is_v2);

        if (!opts.path.empty()) d::group_path_components(opts.path);
        const bool absolute = !opts.path.empty() && opts.path.front() == '/';
        for (const auto& m : plan.members()) {
            const auto& h = layout.hierarchies[m.hierarchy];
            // An absolute path starts at the mount's root, where the caller
            // is not, so moving it to a leaf would not help there.
            if (h.v2)
                enable_controllers(absolute ? h.mount_point : h.place_dir, absolute ? h.mount_root : h.place_path,
                                   m.controllers, opts.move_caller_to_leaf && !absolute);
        }

        name_ = opts.path.empty() ? d::format_group_name(d::own_group_name(opts.prefix)) : opts.path;
        try {
            for (const auto& m : plan.members())
                create_member(layout.hierarchies[m.hierarchy], m, opts.path, opts.join_existing);
            for (auto& m : members_) {
                if (!m.v2 && m.created && m.has("cpuset")) inherit_cpuset(m.fd.get(), m.dir);
                if (!m.created) owned_ = false;
            }
            for (const auto& w : writes) apply(w);
        } catch (const error& e) {
            discard();
            if (e.step() == step::create_cgroup && (e.code().value() == EACCES || e.code().value() == EPERM))
                throw d::refused_group_error(e, opts, plan, layout, name_);
            throw;
        } catch (...) {
            discard();
            throw;
        }
        if (opts.limits.memory_max) {
            const std::uint64_t bytes = d::parse_size(*opts.limits.memory_max, "memory_max");
            if (bytes != d::cgroup_unlimited) memory_max_ = bytes / d::page_size() * d::page_size();
        }
    }

    basic_group(basic_group&& other) noexcept
        : name_(std::move(other.name_)),
          members_(std::move(other.members_)),
          layout_(other.layout_),
          layout_text_(std::move(other.layout_text_)),
          memory_max_(other.memory_max_),
          remove_timeout_(other.remove_timeout_),
          owned_(other.owned_) {
        other.members_.clear();
    }
    basic_group& operator=(basic_group&& other) noexcept {
        if (this != &other) {
            if (owned_) quiet_remove();
            members_.clear();
            owned_ = other.owned_;
            name_ = std::move(other.name_);
            members_ = std::move(other.members_);
            other.members_.clear();
            layout_ = other.layout_;
            layout_text_ = std::move(other.layout_text_);
            memory_max_ = other.memory_max_;
            remove_timeout_ = other.remove_timeout_;
        }
        return *this;
    }
    basic_group(const basic_group&) = delete;
    basic_group& operator=(const basic_group&) = delete;
    // Removes the group (quietly) when the handle owns it: one it created.
    // A group from open() or join_existing is left as it is; remove() is
    // how to remove those.
    ~basic_group() {
        if (owned_) quiet_remove();
    }

    // Finds the group at `path` (as options::path reads it: "/a/b" from the
    // root of each hierarchy as mounted, "a/b" below this process's own
    // cgroup) in every hierarchy that has it, for another invocation of a
    // runtime (kill, state, delete) than the one that made it. Everything
    // works on it: pids(), kill_all(), freeze(), read_stats(), remove().
    // Limits are not read back (memory_max_bytes() is empty). Throws
    // (cgroup_layout, ENOENT) when no hierarchy has the group.
    template <class = void>
    [[nodiscard]] static basic_group open(std::string_view path, const open_options& opts = {}) {
        namespace d = detail;
        d::group_path_components(path);
        const d::cgroup_layout_info layout = d::detect_cgroup_layout();
        std::vector<d::cgroup_member> members;
        std::string looked;
        for (const auto& h : layout.hierarchies) {
            if (!h.usable()) continue;
            const d::group_location at = d::locate_group(h, path);
            const long fd = d::open_directory(AT_FDCWD, at.dir.c_str());
            looked += " " + at.dir;
            if (fd == -ENOENT) continue;
            if (fd < 0) throw error(step::cgroup_layout, static_cast<int>(-fd), at.dir, "opening the group");
            d::cgroup_member m = d::found_member(h, at.cgroup_path, at.dir, unique_fd(static_cast<int>(fd)));
            // The v2 directory first, as in a group made here.
            members.insert(h.v2 ? members.begin() : members.end(), std::move(m));
        }
        if (members.empty())
            throw error(step::cgroup_layout, ENOENT, std::string(path),
                        "no group at this path in any hierarchy (looked for" + looked + "; " + layout.describe() + ")");
        basic_group g(adopt_tag{}, std::string(path), std::move(members), layout.kind, layout.describe(),
                opts.remove_timeout);
        g.owned_ = opts.remove_on_destruction;
        return g;
    }

    // Lets go of the group without removing it: its directories (and what
    // runs in them) stay, and the handle is no longer valid(). For a
    // runtime whose `create` exits before the container does; open() finds
    // the group again.
    template <class = void>
    void release() noexcept {
        members_.clear();
        owned_ = true;
    }
    // Whether the destructor removes the group (see ~group).
    template <class = void>
    bool owns() const noexcept { return owned_ && valid(); }

    // False once removed or moved from.
    template <class = void>
    bool valid() const noexcept { return !members_.empty(); }
    template <class = void>
    const std::string& name() const noexcept { return name_; }
    template <class = void>
    cgroup_layout layout() const noexcept { return layout_; }

    // The group's main directory, for messages: the v2 one when there is
    // one, else the first v1 one.
    template <class = void>
    const std::string& path() const noexcept {
        static const std::string none;
        return members_.empty() ? none : members_.front().dir;
    }
    // The directory that carries `controller` ("memory", "cpu", ...); throws
    // if the group does not use it.
    template <class = void>
    const std::string& path(std::string_view controller) const {
        for (const auto& m : members_) {
            if (m.v2) {
                const auto name = detail::v2_controller_name(controller);
                if (name && (name->empty() || m.has(*name))) return m.dir;
            } else if (m.has(detail::v1_controller_name(controller))) {
                return m.dir;
            }
        }
        throw error(step::cgroup_layout, ENOENT, std::string(controller),
                    "group " + name_ + " does not use this controller (" + layout_text_ + ")");
    }
    // Every directory of the group, one per hierarchy.
    template <class = void>
    std::vector<std::string> paths() const {
        std::vector<std::string> out;
        for (const auto& m : members_) out.push_back(m.dir);
        return out;
    }

    // The memory limit the kernel holds (rounded to pages), if one was set.
    template <class = void>
    std::optional<std::uint64_t> memory_max_bytes() const noexcept { return memory_max_; }

    // For CLONE_INTO_CGROUP: an O_RDONLY|O_DIRECTORY fd of the group's v2
    // directory when that is all the group is (pure v2, or unified_only);
    // -1 otherwise. Owned by the group.
    template <class = void>
    int clone_into_fd() const noexcept {
        return members_.size() == 1 && members_.front().v2 ? members_.front().fd.get() : -1;
    }
    // True when a child must be attached by pid (attach()) before it execs,
    // because clone_into_fd() cannot place it: v1 and hybrid layouts.
    template <class = void>
    bool needs_attach_before_exec() const noexcept { return valid() && clone_into_fd() < 0; }

    // Moves a process (all its threads) into the group, in every hierarchy.
    template <class = void>
    void attach(pid_t pid) {
        require_valid(step::attach_to_cgroup);
        const std::string text = std::to_string(pid);
        for (const auto& m : members_)
            if (const long r = detail::write_file_at(m.fd.get(), "cgroup.procs", text); r < 0)
                throw error(step::attach_to_cgroup, static_cast<int>(-r), m.file("cgroup.procs"),
                            "pid " + text + (r == -ESRCH ? ": no such process" : ""));
    }
    // The same for a process given by its pidfd. Attaching goes by pid (no
    // kernel interface takes a pidfd); the pidfd is checked afterwards, so a
    // process that was already reaped is reported rather than its pid's
    // next owner attached silently.
    template <class = void>
    void attach_pidfd(int pidfd) {
        require_valid(step::attach_to_cgroup);
        const auto info = detail::read_small_file("/proc/self/fdinfo/" + std::to_string(pidfd));
        const auto pid = info ? detail::keyed_value(*info, "Pid:") : std::nullopt;
        if (!pid || *pid == 0)
            throw error(step::attach_to_cgroup, info ? ESRCH : EBADF, "pidfd " + std::to_string(pidfd),
                        info ? "the process has exited" : "not an open pidfd");
        attach(static_cast<pid_t>(*pid));
        if (detail::sys::pidfd_send_signal(pidfd, 0) == -ESRCH)
            throw error(step::attach_to_cgroup, ESRCH, "pidfd " + std::to_string(pidfd),
                        "the process exited while it was being attached");
    }

    // The pids in the group (and in any cgroups below it), as this process's
    // pid namespace sees them.
    template <class = void>
    std::vector<pid_t> pids() const {
        std::vector<pid_t> out;
        if (!valid()) return out;
        const auto& m = tracker();
        std::vector<long> found;
        if (const long r = detail::processes_below(m.fd.get(), found); r < 0)
            throw error(step::read_cgroup_stat, static_cast<int>(-r), m.file("cgroup.procs"));
        for (long p : found) out.push_back(static_cast<pid_t>(p));
        return out;
    }

    // Stops every process in the group: v2 cgroup.freeze, waiting for
    // cgroup.events to say frozen; v1 freezer.state FROZEN. Throws
    // (freeze_cgroup) when the layout has no freezer or `timeout` passes.
    template <class = void>
    void freeze(std::chrono::milliseconds timeout = std::chrono::seconds(5)) { set_frozen(true, timeout); }
    template <class = void>
    void thaw(std::chrono::milliseconds timeout = std::chrono::seconds(5)) { set_frozen(false, timeout); }

    // SIGKILL for everything in the group, including processes that forked
    // away from their parent. v2: cgroup.kill (Linux 5.14+), which the
    // kernel makes race-free. v1 (and v2 before 5.14): freeze, SIGKILL every
    // listed process, thaw, and again until the group lists nothing or
    // `timeout` passes (then step kill_cgroup, ETIMEDOUT).
    template <class = void>
    void kill_all(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        require_valid(step::kill_cgroup);
        kill_until(detail::cgroup_clock::now() + timeout);
    }

    // Waits until no process is left in the group; false if `timeout`
    // passes first. v2 waits on cgroup.events (populated 0) with poll; v1
    // has no such event and looks at cgroup.procs every few milliseconds.
    template <class = void>
    bool wait_empty(std::chrono::milliseconds timeout) {
        require_valid(step::wait);
        return wait_empty_until(detail::cgroup_clock::now() + timeout);
    }

    template <class = void>
    stats read_stats() const { return read_selected(false); }
    // Only what a run's result takes from the group (process::result):
    // peak memory, OOM kills, user and system CPU time. spawn reads them
    // before and after every child it places in the group; on a v1 host
    // that is 4 files where read_stats() reads 11.
    template <class = void>
    stats read_run_figures() const { return read_selected(true); }
    // The OOM-kill count alone: spawn reads it before every child it places
    // in the group, so it reads only the one file the figure is in.
    template <class = void>
    std::optional<std::uint64_t> oom_kills() const {
        std::optional<std::uint64_t> kills;
        for (const auto& m : members_) {
            if (!m.has("memory")) continue;
            std::string text;
            bool present = false;
            read_into(m, m.v2 ? "memory.events" : "memory.oom_control", text, present);
            if (present) fill(kills, detail::keyed_value(text, "oom_kill"));
        }
        return kills;
    }

    // Kills what is left, waits until the group is empty and removes its
    // directories, retrying rmdir on EBUSY, all within options::remove_timeout.
    // Throws (remove_cgroup) on failure; the group stays valid then, and
    // remove() or the destructor may try again.
    template <class = void>
    void remove() {
        if (!valid()) return;
        const auto deadline = detail::cgroup_clock::now() + remove_timeout_;
        kill_until(deadline);
        if (!wait_empty_until(deadline)) {
            std::string listed;
            // Appended: see kill_until.
            for (pid_t p : pids()) listed.append(1, ' ').append(std::to_string(p));
            throw error(step::remove_cgroup, EBUSY, path(),
                        "processes still inside after " + detail::duration_text(remove_timeout_) + ":" + listed);
        }
        remove_directories(deadline);
    }

private:
    template <class> friend std::size_t reap_stale(std::string_view prefix);
    struct adopt_tag {};

    // Takes over directories found on disk (reap_stale).
    template <class = void>
    basic_group(adopt_tag, std::string name, std::vector<detail::cgroup_member> members, cgroup_layout layout,
          std::string layout_text, std::chrono::milliseconds timeout)
        : name_(std::move(name)),
          members_(std::move(members)),
          layout_(layout),
          layout_text_(std::move(layout_text)),
          remove_timeout_(timeout) {}

    template <class = void>
    void require_valid(ctr::step s) const {
        if (!valid()) throw error(s, EINVAL, name_, "the group was removed or moved from");
    }

    // Where the group's processes are listed: v2 if the group is there, else
    // the v1 freezer hierarchy (which kill_all freezes), else any.
    template <class = void>
    const detail::cgroup_member& tracker() const {
        for (const auto& m : members_)
            if (m.v2) return m;
        for (const auto& m : members_)
            if (m.has("freezer")) return m;
        return members_.front();
    }
    template <class = void>
    const detail::cgroup_member* v2_member() const {
        for (const auto& m : members_)
            if (m.v2) return &m;
        return nullptr;
    }
    template <class = void>
    const detail::cgroup_member* v1_freezer() const {
        for (const auto& m : members_)
            if (!m.v2 && m.has("freezer")) return &m;
        return nullptr;
    }

    // Enables `wanted` for the children of the v2 cgroup at `dir` (`shown`
    // as /proc/self/cgroup names it).
    template <class = void>
    void enable_controllers(const std::string& dir, const std::string& shown, const std::vector<std::string>& wanted,
                            bool move_caller) {
        namespace d = detail;
        if (wanted.empty()) return;
        const std::string file = dir + "/cgroup.subtree_control";
        const auto current = d::read_first_line(file);
        if (!current) throw error(step::enable_controllers, EIO, file, "cannot read it");
        const auto enabled = d::controller_list(*current);
        std::string text;
        for (const auto& c : wanted)
            if (std::find(enabled.begin(), enabled.end(), c) == enabled.end()) text += (text.empty() ? "+" : " +") + c;
        if (text.empty()) return;
        long r = d::write_file_at(AT_FDCWD, file.c_str(), text);
        if (r == -EBUSY && move_caller) {
            move_self_to_leaf();
            r = d::write_file_at(AT_FDCWD, file.c_str(), text);
        }
        if (r == -EBUSY)
            throw error(step::enable_controllers, EBUSY, file,
                        "writing '" + text + "': " + shown +
                            " has processes of its own, and cgroup v2 lets only a cgroup without processes hand "
                            "controllers to its children; set options::move_caller_to_leaf, or call "
                            "cgroup::move_self_to_leaf() first" +
                            (move_caller ? " (this process was moved, so others are still there)" : ""));
        if (r < 0) throw error(step::enable_controllers, static_cast<int>(-r), file, "writing '" + text + "'");
    }

    // Makes the group's directory in one hierarchy: below the own cgroup
    // with the generated name, or at `path` with any missing parents (each
    // given the parent's cpuset on v1, the controllers on v2). Parents it
    // made are removed again if it fails.
    template <class = void>
    void create_member(const detail::cgroup_hierarchy& h, const detail::member_plan& plan, const std::string& path,
                       bool join_existing) {
        namespace d = detail;
        d::cgroup_member m;
        m.v2 = h.v2;
        m.hierarchy_id = h.id;
        m.controllers = h.v2 ? plan.controllers : h.controllers;
        const auto why_not = [&](long r, const std::string& parent) {
            if (r == -EACCES || r == -EPERM)
                return "no write access to " + parent + ": run as root, or in a cgroup delegated to this user";
            if (r == -EROFS)
                return std::string(
                    "the cgroup file system is read-only here (a container without cgroup delegation?)");
            return std::string{};
        };
        std::string parent = h.place_dir;
        if (path.empty()) {
            m.cgroup_path = d::join_cgroup_path(h.place_path, name_);
            m.dir = h.place_dir + "/" + name_;
        } else {
            const d::group_location at = d::locate_group(h, path);
            m.cgroup_path = at.cgroup_path;
            m.dir = at.dir;
            parent = at.base_dir;
            std::string shown = at.base_path;
            try {
                for (std::size_t i = 0; i + 1 < at.components.size(); ++i) {
                    const std::string above = parent;
                    parent += "/" + at.components[i];
                    shown = d::join_cgroup_path(shown, at.components[i]);
                    const long r = d::sys::mkdirat(AT_FDCWD, parent.c_str(), 0755);
                    if (r < 0 && r != -EEXIST)
                        throw error(step::create_cgroup, static_cast<int>(-r), parent,
                                    "making a parent of " + m.dir + (why_not(r, above).empty() ? "" : ": ")
                                        + why_not(r, above));
                    if (r == 0) {
                        m.made_parents.push_back(parent);
                        if (!h.v2 && h.has("cpuset")) {
                            const long fd = d::open_directory(AT_FDCWD, parent.c_str());
                            if (fd < 0) throw error(step::create_cgroup, static_cast<int>(-fd), parent, "opening it");
                            unique_fd owner(static_cast<int>(fd));
                            inherit_cpuset(owner.get(), parent);
                        }
                    }
                    if (h.v2) enable_controllers(parent, shown, plan.controllers, false);
                }
            } catch (...) {
                remove_made_parents(m);
                throw;
            }
        }
        if (const long r = d::sys::mkdirat(AT_FDCWD, m.dir.c_str(), 0755); r == -EEXIST && join_existing) {
            m.created = false;
        } else if (r < 0) {
            remove_made_parents(m);
            if (r == -EEXIST && !path.empty())
                throw error(step::create_cgroup, EEXIST, m.dir,
                            "a cgroup exists at this path already: remove it (group::open(path).remove()), choose "
                            "another path, or set options::join_existing to use it");
            throw error(step::create_cgroup, static_cast<int>(-r), m.dir, why_not(r, parent));
        }
        const long fd = d::open_directory(AT_FDCWD, m.dir.c_str());
        if (fd < 0) {
            if (m.created) d::sys::unlinkat(AT_FDCWD, m.dir.c_str(), AT_REMOVEDIR);
            remove_made_parents(m);
            throw error(step::create_cgroup, static_cast<int>(-fd), m.dir, "cannot open the new group");
        }
        m.fd.reset(static_cast<int>(fd));
        members_.push_back(std::move(m));
    }

    // Removes the parents a failed creation made, deepest first; a parent
    // something else has meanwhile used stays.
    template <class = void>
    static void remove_made_parents(detail::cgroup_member& m) noexcept {
        for (std::size_t i = m.made_parents.size(); i-- > 0;)
            detail::sys::unlinkat(AT_FDCWD, m.made_parents[i].c_str(), AT_REMOVEDIR);
        m.made_parents.clear();
    }

    // A new v1 cpuset has no CPUs and no memory nodes, and no process can
    // join it until it has both: start from the parent's.
    template <class = void>
    static void inherit_cpuset(int dirfd, const std::string& dir) {
        namespace d = detail;
        const std::string above = dir.substr(0, dir.rfind('/'));
        for (const char* kind : {"cpus", "mems"}) {
            std::string own;
            const std::string file = std::string("cpuset.") + kind;
            if (d::read_file_at(dirfd, file.c_str(), own) == 0 && !d::cgroup_trim(own).empty()) continue;
            auto parent = d::read_first_line(above + "/" + file);
            if (!parent || d::cgroup_trim(*parent).empty())
                parent = d::read_first_line(above + "/cpuset.effective_" + kind);
            if (!parent)
                throw error(step::set_cgroup_limit, EIO, above + "/" + file, "cannot read the parent's cpuset");
            if (const long r = d::write_file_at(dirfd, file.c_str(), d::cgroup_trim(*parent)); r < 0)
                throw error(step::set_cgroup_limit, static_cast<int>(-r), dir + "/" + file,
                            "copying the parent's '" + std::string(d::cgroup_trim(*parent)) + "'");
        }
    }

    template <class = void>
    void apply(const detail::limit_write& w) {
        namespace d = detail;
        const auto& m = members_[w.member];
        if (w.action) {
            w.action(m.fd.get(), m.dir);
            return;
        }
        long r = -ENOENT;
        std::string file, value;
        for (const auto& [f, v] : w.targets) {
            file = f;
            value = v;
            r = d::write_file_at(m.fd.get(), f.c_str(), v);
            if (r != -ENOENT) break;
        }
        if (r == -ENOENT)
            throw error(
                step::set_cgroup_limit, ENOENT, m.file(file),
                w.what + ": this kernel has no such file (the feature is not built in, or the kernel is too old)");
        if (r < 0)
            throw error(step::set_cgroup_limit, static_cast<int>(-r), m.file(file),
                        w.what + ": writing '" + value + "'");
        if (!w.check) return;
        std::string back;
        if (const long rr = d::read_file_at(m.fd.get(), file.c_str(), back); rr < 0)
            throw error(step::set_cgroup_limit, static_cast<int>(-rr), m.file(file), w.what + ": reading it back");
        if (const auto why = w.check(back))
            throw error(step::set_cgroup_limit, EIO, m.file(file), w.what + ": wrote '" + value + "', but " + *why);
    }

    template <class = void>
    void set_frozen(bool frozen, std::chrono::milliseconds timeout) {
        namespace d = detail;
        require_valid(step::freeze_cgroup);
        const auto deadline = d::cgroup_clock::now() + timeout;
        const char* verb = frozen ? "freezing" : "thawing";
        if (const auto* m = v2_member()) {
            const long r = d::write_file_at(m->fd.get(), "cgroup.freeze", frozen ? "1" : "0");
            if (r == -ENOENT)
                throw error(step::freeze_cgroup, ENOTSUP, m->file("cgroup.freeze"),
                            "cgroup.freeze needs Linux 5.2 or later");
            if (r < 0) throw error(step::freeze_cgroup, static_cast<int>(-r), m->file("cgroup.freeze"), verb);
            const long w = d::wait_for_event(*m, "frozen", frozen ? 1 : 0, deadline);
            if (w < 0) throw error(step::freeze_cgroup, static_cast<int>(-w), m->file("cgroup.events"), verb);
            if (w == 0)
                throw error(step::freeze_cgroup, ETIMEDOUT, m->file("cgroup.events"),
                            std::string(verb) + ": not done after " + d::duration_text(timeout));
            return;
        }
        if (const auto* m = v1_freezer()) {
            const char* wanted = frozen ? "FROZEN" : "THAWED";
            auto pause = std::chrono::microseconds(100);
            for (;;) {
                // Writing FROZEN again retries a freeze that stalled in FREEZING.
                if (const long r = d::write_file_at(m->fd.get(), "freezer.state", wanted); r < 0)
                    throw error(step::freeze_cgroup, static_cast<int>(-r), m->file("freezer.state"), verb);
                std::string state;
                if (const long r = d::freezer_state(*m, state); r < 0)
                    throw error(step::freeze_cgroup, static_cast<int>(-r), m->file("freezer.state"), verb);
                if (state == wanted) return;
                if (d::cgroup_clock::now() >= deadline) {
                    if (frozen) d::write_file_at(m->fd.get(), "freezer.state", "THAWED");
                    throw error(step::freeze_cgroup, ETIMEDOUT, m->file("freezer.state"),
                                std::string(verb) + ": still " + state + " after " + d::duration_text(timeout)
                                    + " (a process in uninterruptible sleep?)");
                }
                d::cgroup_nap(pause);
                pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
            }
        }
        throw error(step::freeze_cgroup, ENOTSUP, path(),
                    "no freezer here: the v1 freezer controller is not mounted (" + layout_text_ + ")");
    }

    // Freezes as far as the layout allows, for a short while; false when it
    // could not. The kill loop goes on either way.
    template <class = void>
    bool try_freeze(bool frozen) noexcept {
        namespace d = detail;
        const auto deadline = d::cgroup_clock::now() + std::chrono::milliseconds(frozen ? 50 : 1000);
        if (const auto* m = v2_member()) {
            if (d::write_file_at(m->fd.get(), "cgroup.freeze", frozen ? "1" : "0") < 0) return false;
            try {
                return d::wait_for_event(*m, "frozen", frozen ? 1 : 0, deadline) == 1;
            } catch (...) {
                return false;
            }
        }
        if (const auto* m = v1_freezer()) {
            const char* wanted = frozen ? "FROZEN" : "THAWED";
            for (auto pause = std::chrono::microseconds(100);;
                 pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(5))) {
                if (d::write_file_at(m->fd.get(), "freezer.state", wanted) < 0) return false;
                try {
                    std::string state;
                    if (d::freezer_state(*m, state) < 0) return false;
                    if (state == wanted) return true;
                } catch (...) {
                    return false;
                }
                if (d::cgroup_clock::now() >= deadline) return false;
                d::cgroup_nap(pause);
            }
        }
        return false;
    }

    template <class = void>
    void kill_until(detail::cgroup_clock::time_point deadline) {
        namespace d = detail;
        // Killing everything would kill this process too.
        for (const auto& m : members_)
            if (d::process_in_member(static_cast<long>(d::sys::getpid()), m))
                throw error(step::kill_cgroup, EDEADLK, m.dir,
                            "this process is in the group itself; move it out before killing or removing the group");
        if (const auto* m = v2_member()) {
            const long r = d::write_file_at(m->fd.get(), "cgroup.kill", "1");
            if (r == 0) return;
            if (r != -ENOENT) throw error(step::kill_cgroup, static_cast<int>(-r), m->file("cgroup.kill"));
        }
        // No cgroup.kill: freeze (so nothing forks while the list is read),
        // signal each listed process, thaw (a v1-frozen process dies only
        // once thawed), until nothing is listed. An empty group is not
        // frozen at all: a v1 freeze costs milliseconds (it flips a static
        // key in the kernel).
        const auto& m = tracker();
        const auto list = [&](std::vector<long>& found) {
            found.clear();
            if (const long r = d::processes_below(m.fd.get(), found); r < 0)
                throw error(step::kill_cgroup, static_cast<int>(-r), m.file("cgroup.procs"));
        };
        std::vector<long> found;
        for (auto pause = std::chrono::microseconds(200);;
             pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10))) {
            list(found);
            if (found.empty()) return;
            if (d::cgroup_clock::now() >= deadline) {
                std::string listed;
                // Appended, not `" " + std::to_string(p)`: g++ 12 -O3 -Wrestrict (GCC bug 105329).
                for (long p : found) listed.append(1, ' ').append(std::to_string(p));
                throw error(step::kill_cgroup, ETIMEDOUT, m.dir, "processes survive SIGKILL:" + listed);
            }
            const bool froze = try_freeze(true);
            try {
                if (froze) list(found);
            } catch (...) {
                try_freeze(false);
                throw;
            }
            for (long pid : found) d::kill_member_process(pid, m);
            if (froze) try_freeze(false);
            d::cgroup_nap(pause);
        }
    }

    template <class = void>
    bool wait_empty_until(detail::cgroup_clock::time_point deadline) {
        namespace d = detail;
        if (const auto* m = v2_member()) {
            const long r = d::wait_for_event(*m, "populated", 0, deadline);
            if (r < 0) throw error(step::wait, static_cast<int>(-r), m->file("cgroup.events"));
            return r == 1;
        }
        const auto& m = tracker();
        for (auto pause = std::chrono::microseconds(100);;
             pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10))) {
            std::vector<long> found;
            if (const long r = d::processes_below(m.fd.get(), found); r < 0)
                throw error(step::wait, static_cast<int>(-r), m.file("cgroup.procs"));
            if (found.empty()) return true;
            if (d::cgroup_clock::now() >= deadline) return false;
            d::cgroup_nap(pause);
        }
    }

    template <class = void>
    void remove_directories(detail::cgroup_clock::time_point deadline) {
        namespace d = detail;
        std::optional<error> first;
        std::vector<d::cgroup_member> left;
        for (auto& m : members_) {
            m.fd.reset();
            if (const long r = d::remove_cgroup_dir(m.dir, deadline); r < 0) {
                if (!first)
                    first.emplace(
                        step::remove_cgroup, static_cast<int>(-r), m.dir,
                        r == -EBUSY ? "still busy after " + d::duration_text(remove_timeout_) : std::string{});
                const long fd = d::open_directory(AT_FDCWD, m.dir.c_str());
                if (fd >= 0) m.fd.reset(static_cast<int>(fd));
                left.push_back(std::move(m));
            }
        }
        members_ = std::move(left);
        if (first) throw *first;
    }

    // Best effort, for the destructor and for failed construction.
    template <class = void>
    void quiet_remove() noexcept {
        try {
            remove();
        } catch (...) {
            // Nothing more can be done here; remove() is how to hear why.
        }
    }
    template <class = void>
    void discard() noexcept {
        const auto deadline = detail::cgroup_clock::now() + std::chrono::seconds(1);
        for (auto& m : members_) {
            m.fd.reset();
            if (m.created) detail::remove_cgroup_dir(m.dir, deadline);
            remove_made_parents(m);
        }
        members_.clear();
    }

    template <class = void>
    static void read_into(const detail::cgroup_member& m, const char* file, std::string& text, bool& present) {
        present = false;
        const long r = detail::read_file_at(m.fd.get(), file, text);
        if (r == -ENOENT) return;
        if (r < 0) throw error(step::read_cgroup_stat, static_cast<int>(-r), m.file(file));
        present = true;
    }
    template <typename T>
    static void fill(std::optional<T>& field, std::optional<T> value) {
        if (!field && value) field = value;
    }
    template <class = void>
    static std::optional<std::chrono::nanoseconds> micros(std::optional<std::uint64_t> v) {
        if (!v) return std::nullopt;
        return std::chrono::microseconds(*v);
    }
    template <class = void>
    static std::optional<std::chrono::nanoseconds> nanos(std::optional<std::uint64_t> v) {
        if (!v) return std::nullopt;
        return std::chrono::nanoseconds(*v);
    }

    template <class = void>
    stats read_selected(bool run_figures_only) const {
        stats s;
        for (const auto& m : members_) {
            if (m.v2)
                read_v2_stats(m, s, run_figures_only);
            else
                read_v1_stats(m, s, run_figures_only);
        }
        return s;
    }

    template <class = void>
    static void read_v2_stats(const detail::cgroup_member& m, stats& s, bool run_figures_only) {
        namespace d = detail;
        std::string text;
        bool present = false;
        // cpu.stat's usage lines exist in every v2 cgroup; the throttling
        // lines only with the cpu controller.
        read_into(m, "cpu.stat", text, present);
        if (present) {
            fill(s.cpu_usage, micros(d::keyed_value(text, "usage_usec")));
            fill(s.cpu_user, micros(d::keyed_value(text, "user_usec")));
            fill(s.cpu_system, micros(d::keyed_value(text, "system_usec")));
            if (m.has("cpu")) {
                fill(s.cpu_periods, d::keyed_value(text, "nr_periods"));
                fill(s.cpu_throttled_periods, d::keyed_value(text, "nr_throttled"));
                fill(s.cpu_throttled_time, micros(d::keyed_value(text, "throttled_usec")));
            }
        }
        if (m.has("memory")) {
            if (!run_figures_only) {
                read_into(m, "memory.current", text, present);
                if (present) fill(s.memory_current, d::parse_decimal(d::cgroup_trim(text)));
            }
            read_into(m, "memory.peak", text, present);
            if (present) fill(s.memory_peak, d::parse_decimal(d::cgroup_trim(text)));
            read_into(m, "memory.events", text, present);
            if (present) {
                fill(s.memory_max_events, d::keyed_value(text, "max"));
                fill(s.oom_events, d::keyed_value(text, "oom"));
                fill(s.oom_kills, d::keyed_value(text, "oom_kill"));
            }
        }
        if (m.has("pids") && !run_figures_only) read_pids(m, s);
    }

    template <class = void>
    static void read_v1_stats(const detail::cgroup_member& m, stats& s, bool run_figures_only) {
        namespace d = detail;
        std::string text;
        bool present = false;
        if (m.has("memory")) {
            if (!run_figures_only) {
                read_into(m, "memory.usage_in_bytes", text, present);
                if (present) fill(s.memory_current, d::parse_decimal(d::cgroup_trim(text)));
            }
            read_into(m, "memory.max_usage_in_bytes", text, present);
            if (present) fill(s.memory_peak, d::parse_decimal(d::cgroup_trim(text)));
            // memory_max_events stays empty: v1's memory.failcnt counts
            // failed charge attempts, not limit events, and reads 0 on
            // recent kernels even after an OOM kill at the limit.
            read_into(m, "memory.oom_control", text, present);
            if (present) fill(s.oom_kills, d::keyed_value(text, "oom_kill"));
        }
        if (m.has("cpuacct")) {
            if (!run_figures_only) {
                read_into(m, "cpuacct.usage", text, present);
                if (present) fill(s.cpu_usage, nanos(d::parse_decimal(d::cgroup_trim(text))));
            }
            read_into(m, "cpuacct.usage_user", text, present);
            if (present) fill(s.cpu_user, nanos(d::parse_decimal(d::cgroup_trim(text))));
            read_into(m, "cpuacct.usage_sys", text, present);
            if (present) fill(s.cpu_system, nanos(d::parse_decimal(d::cgroup_trim(text))));
            if (!s.cpu_user || !s.cpu_system) {
                // Older kernels: cpuacct.stat, in USER_HZ ticks.
                read_into(m, "cpuacct.stat", text, present);
                const auto hz = static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK));
                const auto ticks = [&](std::string_view key) -> std::optional<std::chrono::nanoseconds> {
                    const auto v = d::keyed_value(text, key);
                    if (!v || hz == 0) return std::nullopt;
                    return std::chrono::nanoseconds(*v * (1'000'000'000 / hz));
                };
                if (present) {
                    fill(s.cpu_user, ticks("user"));
                    fill(s.cpu_system, ticks("system"));
                }
            }
        }
        if (m.has("cpu") && !run_figures_only) {
            read_into(m, "cpu.stat", text, present);
            if (present) {
                fill(s.cpu_periods, d::keyed_value(text, "nr_periods"));
                fill(s.cpu_throttled_periods, d::keyed_value(text, "nr_throttled"));
                fill(s.cpu_throttled_time, nanos(d::keyed_value(text, "throttled_time")));
            }
        }
        if (m.has("pids") && !run_figures_only) read_pids(m, s);
    }

    template <class = void>
    static void read_pids(const detail::cgroup_member& m, stats& s) {
        namespace d = detail;
        std::string text;
        bool present = false;
        read_into(m, "pids.current", text, present);
        if (present) fill(s.pids_current, d::parse_decimal(d::cgroup_trim(text)));
        read_into(m, "pids.peak", text, present);
        if (present) fill(s.pids_peak, d::parse_decimal(d::cgroup_trim(text)));
        read_into(m, "pids.events", text, present);
        if (present) fill(s.pids_max_events, d::keyed_value(text, "max"));
    }

    std::string name_;
    std::vector<detail::cgroup_member> members_;  // the v2 directory first, then v1 ones
    cgroup_layout layout_ = cgroup_layout::none;
    std::string layout_text_;
    std::optional<std::uint64_t> memory_max_;
    std::chrono::milliseconds remove_timeout_{5000};
    bool owned_ = true;  // the destructor removes the group
};
using group = basic_group<void>;

// Finds groups named "<prefix>-..." below this process's cgroup, in every
// hierarchy, whose creator is gone (no such process, a zombie, or its pid
// now belongs to a later process), kills what is in them and removes them.
// Returns how many groups it removed. Groups of live creators are never
// touched. Creator pids are those of the pid namespace the group was made
// in: call this from the same one. Throws the first failure after trying
// every group.
template <class>
inline std::size_t reap_stale(std::string_view prefix) {
    namespace d = detail;
    d::check_group_prefix(prefix);
    const d::cgroup_layout_info layout = d::detect_cgroup_layout();
    // name -> its directories in each hierarchy
    std::vector<std::pair<std::string, std::vector<d::cgroup_member>>> stale;
    for (const auto& h : layout.hierarchies) {
        if (!h.usable()) continue;
        const long dirfd = d::open_directory(AT_FDCWD, h.place_dir.c_str());
        if (dirfd < 0) continue;
        unique_fd dir(static_cast<int>(dirfd));
        std::vector<std::string> names;
        if (const long r = d::subdirectories(dir.get(), names); r < 0)
            throw error(step::remove_cgroup, static_cast<int>(-r), h.place_dir, "listing it");
        for (const auto& name : names) {
            const auto parsed = d::parse_group_name(name);
            if (!parsed || parsed->prefix != prefix || !d::creator_is_gone(*parsed)) continue;
            const long fd = d::open_directory(dir.get(), name.c_str());
            if (fd < 0) continue;
            auto at = std::find_if(stale.begin(), stale.end(), [&](const auto& s) { return s.first == name; });
            if (at == stale.end()) at = stale.emplace(stale.end(), name, std::vector<d::cgroup_member>());
            at->second.push_back(d::found_member(h, d::join_cgroup_path(h.place_path, name),
                                                 h.place_dir + "/" + name, unique_fd(static_cast<int>(fd))));
        }
    }
    std::size_t removed = 0;
    std::optional<error> first;
    for (auto& [name, members] : stale) {
        group g(group::adopt_tag{}, name, std::move(members), layout.kind, layout.describe(), std::chrono::seconds(5));
        try {
            g.remove();
            ++removed;
        } catch (const error& e) {
            if (!first) first = e;
        }
    }
    if (first) throw *first;
    return removed;
}

// A size as limits take it ("64M", "1.5G", "max" as UINT64_MAX), for
// callers that want to check one early. Throws like the limits do.
template <class = void>
inline std::uint64_t parse_size(std::string_view text) { return detail::parse_size(text, "size"); }

}  // namespace ctr::cgroup
// end ctr/cgroup.hpp
// begin ctr/ip_address.hpp
// ctr::net::ipv4_address and ipv4_interface, ipv6_address and
// ipv6_interface, ip_address (either family): addresses as values, parsed
// with errors that name the text.


#include <netinet/in.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ctr::net {

// An IPv4 address, kept as four bytes in network order.
struct ipv4_address {
    std::array<std::uint8_t, 4> bytes{};

    // "10.0.0.1"; a malformed text throws ctr::error naming it.
    static ipv4_address parse(std::string_view text) {
        ipv4_address out;
        const char* p = text.data();
        const char* const end = text.data() + text.size();
        for (int i = 0; i < 4; ++i) {
            if (i > 0) {
                if (p == end || *p != '.') throw malformed(text);
                ++p;
            }
            unsigned value = 256;
            const char* const digits = p;
            const auto [next, ec] = std::from_chars(p, end, value);
            if (ec != std::errc{} || value > 255 || next - digits > 3) throw malformed(text);
            out.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value);
            p = next;
        }
        if (p != end) throw malformed(text);
        return out;
    }

    // Host-order value, for arithmetic (subnets, pools).
    static constexpr ipv4_address from_host_order(std::uint32_t value) noexcept {
        return {{static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
                 static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)}};
    }
    constexpr std::uint32_t host_order() const noexcept {
        return std::uint32_t{bytes[0]} << 24 | std::uint32_t{bytes[1]} << 16 | std::uint32_t{bytes[2]} << 8 |
               std::uint32_t{bytes[3]};
    }
    in_addr to_in_addr() const noexcept {
        in_addr out{};
        static_assert(sizeof out == 4);
        std::memcpy(&out, bytes.data(), 4);
        return out;
    }

    std::string to_string() const {
        std::string out;
        for (std::size_t i = 0; i < 4; ++i) {
            if (i > 0) out += '.';
            out += std::to_string(bytes[i]);
        }
        return out;
    }

    friend constexpr bool operator==(const ipv4_address&, const ipv4_address&) noexcept = default;

private:
    static error malformed(std::string_view text) {
        return error(step::prepare, EINVAL, std::string(text), "not an IPv4 address like 10.0.0.1");
    }
};

// An address on an interface with its prefix length: "10.0.0.2/30".
struct ipv4_interface {
    ipv4_address address{};
    std::uint8_t prefix_length = 32;

    static ipv4_interface parse(std::string_view text) {
        const auto slash = text.find('/');
        if (slash == std::string_view::npos)
            throw error(step::prepare, EINVAL, std::string(text), "an interface address needs a prefix length, like 10.0.0.2/30");
        unsigned prefix = 33;
        const auto rest = text.substr(slash + 1);
        const auto [next, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), prefix);
        if (ec != std::errc{} || next != rest.data() + rest.size() || prefix > 32)
            throw error(step::prepare, EINVAL, std::string(text), "the prefix length must be 0 to 32");
        return {ipv4_address::parse(text.substr(0, slash)), static_cast<std::uint8_t>(prefix)};
    }

    constexpr std::uint32_t netmask_host_order() const noexcept {
        return prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_length);
    }
    constexpr ipv4_address network() const noexcept {
        return ipv4_address::from_host_order(address.host_order() & netmask_host_order());
    }
    constexpr ipv4_address netmask() const noexcept { return ipv4_address::from_host_order(netmask_host_order()); }
    // Whether `other` lies in this interface's subnet.
    constexpr bool contains(ipv4_address other) const noexcept {
        return (other.host_order() & netmask_host_order()) == network().host_order();
    }

    std::string to_string() const { return address.to_string() + "/" + std::to_string(prefix_length); }

    friend constexpr bool operator==(const ipv4_interface&, const ipv4_interface&) noexcept = default;
};

// An IPv6 address, kept as sixteen bytes in network order.
struct ipv6_address {
    std::array<std::uint8_t, 16> bytes{};

    // "fd63:7472::1", "::", "2001:db8::a:b" (RFC 4291's text form without
    // an embedded IPv4 tail or a zone); a malformed text throws ctr::error
    // naming it.
    static ipv6_address parse(std::string_view text) {
        // Up to eight groups before "::" and after it; the gap fills with zeros.
        std::uint16_t head[8] = {}, tail[8] = {};
        std::size_t head_count = 0, tail_count = 0;
        bool gap = false;
        std::string_view rest = text;
        if (rest.substr(0, 2) == "::") {
            gap = true;
            rest.remove_prefix(2);
        }
        while (!rest.empty()) {
            std::size_t digits = 0;
            unsigned value = 0;
            while (digits < rest.size() && digits < 5) {
                const char c = rest[digits];
                const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (v < 0) break;
                value = value * 16 + static_cast<unsigned>(v);
                ++digits;
            }
            if (digits == 0 || digits > 4) throw malformed(text);
            std::uint16_t* const groups = gap ? tail : head;
            std::size_t& count = gap ? tail_count : head_count;
            if (head_count + tail_count >= 8) throw malformed(text);
            groups[count++] = static_cast<std::uint16_t>(value);
            rest.remove_prefix(digits);
            if (rest.empty()) break;
            if (rest[0] != ':') throw malformed(text);
            if (rest.substr(0, 2) == "::") {
                if (gap) throw malformed(text);
                gap = true;
                rest.remove_prefix(2);
            } else {
                rest.remove_prefix(1);
                if (rest.empty()) throw malformed(text);
            }
        }
        if (gap ? head_count + tail_count > 7 : head_count != 8) throw malformed(text);
        ipv6_address out;
        for (std::size_t i = 0; i < head_count; ++i) out.set_group(i, head[i]);
        for (std::size_t i = 0; i < tail_count; ++i) out.set_group(8 - tail_count + i, tail[i]);
        return out;
    }

    constexpr std::uint16_t group(std::size_t i) const noexcept {
        return static_cast<std::uint16_t>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
    }
    constexpr void set_group(std::size_t i, std::uint16_t value) noexcept {
        bytes[2 * i] = static_cast<std::uint8_t>(value >> 8);
        bytes[2 * i + 1] = static_cast<std::uint8_t>(value);
    }
    in6_addr to_in6_addr() const noexcept {
        in6_addr out{};
        static_assert(sizeof out == 16);
        std::memcpy(&out, bytes.data(), 16);
        return out;
    }
    static ipv6_address from_in6_addr(const in6_addr& in) noexcept {
        ipv6_address out;
        std::memcpy(out.bytes.data(), &in, 16);
        return out;
    }
    constexpr bool is_unspecified() const noexcept { return *this == ipv6_address{}; }
    constexpr bool is_loopback() const noexcept {
        ipv6_address one;
        one.bytes[15] = 1;
        return *this == one;
    }

    // RFC 5952's form: lower case, no leading zeros, the longest run of two
    // or more zero groups (the first of equals) as "::".
    std::string to_string() const {
        std::size_t best = 8, best_length = 0;
        for (std::size_t i = 0; i < 8;) {
            std::size_t j = i;
            while (j < 8 && group(j) == 0) ++j;
            if (j - i > best_length && j - i >= 2) {
                best = i;
                best_length = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        static constexpr char hex[] = "0123456789abcdef";
        std::string out;
        for (std::size_t i = 0; i < 8; ++i) {
            if (i == best) {
                out += "::";
                i += best_length - 1;
                continue;
            }
            if (!out.empty() && out.back() != ':') out += ':';
            const std::uint16_t g = group(i);
            bool started = false;
            for (int shift = 12; shift >= 0; shift -= 4) {
                const unsigned nibble = (g >> shift) & 0xfu;
                if (nibble != 0 || started || shift == 0) {
                    out += hex[nibble];
                    started = true;
                }
            }
        }
        return out;
    }

    friend constexpr bool operator==(const ipv6_address&, const ipv6_address&) noexcept = default;

private:
    static error malformed(std::string_view text) {
        return error(step::prepare, EINVAL, std::string(text), "not an IPv6 address like fd63:7472::1");
    }
};

// An IPv6 address on an interface with its prefix length: "fd63:7472:0:1::2/64".
struct ipv6_interface {
    ipv6_address address{};
    std::uint8_t prefix_length = 128;

    static ipv6_interface parse(std::string_view text) {
        const auto slash = text.find('/');
        if (slash == std::string_view::npos)
            throw error(step::prepare, EINVAL, std::string(text),
                        "an interface address needs a prefix length, like fd63:7472:0:1::2/64");
        unsigned prefix = 129;
        const auto rest = text.substr(slash + 1);
        const auto [next, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), prefix);
        if (ec != std::errc{} || next != rest.data() + rest.size() || prefix > 128)
            throw error(step::prepare, EINVAL, std::string(text), "the prefix length must be 0 to 128");
        return {ipv6_address::parse(text.substr(0, slash)), static_cast<std::uint8_t>(prefix)};
    }

    constexpr ipv6_address network() const noexcept {
        ipv6_address out = address;
        for (std::size_t i = 0; i < 16; ++i) {
            const int bits = static_cast<int>(prefix_length) - static_cast<int>(8 * i);
            const unsigned mask = bits >= 8 ? 0xffu : bits <= 0 ? 0u : (0xffu << (8 - bits)) & 0xffu;
            out.bytes[i] = static_cast<std::uint8_t>(out.bytes[i] & mask);
        }
        return out;
    }
    // Whether `other` lies in this interface's subnet.
    constexpr bool contains(const ipv6_address& other) const noexcept {
        return ipv6_interface{other, prefix_length}.network() == network();
    }

    std::string to_string() const { return address.to_string() + "/" + std::to_string(prefix_length); }

    friend constexpr bool operator==(const ipv6_interface&, const ipv6_interface&) noexcept = default;
};

// An IPv4 or an IPv6 address: where a published port listens on the host
// (port_mapping). Converts from either; a default one is 0.0.0.0.
class ip_address {
public:
    constexpr ip_address() noexcept = default;
    constexpr ip_address(ipv4_address v4) noexcept : v4_(v4) {}  // NOLINT: implicit, as either is one
    constexpr ip_address(const ipv6_address& v6) noexcept : ipv6_(true), v6_(v6) {}  // NOLINT

    // "127.0.0.1" or "::1" (no brackets); bad text throws ctr::error naming it.
    static ip_address parse(std::string_view text) {
        if (text.find(':') != std::string_view::npos) return ipv6_address::parse(text);
        return ipv4_address::parse(text);
    }

    constexpr bool is_ipv6() const noexcept { return ipv6_; }
    constexpr ipv4_address ipv4() const noexcept { return v4_; }
    constexpr const ipv6_address& ipv6() const noexcept { return v6_; }
    // 0.0.0.0 or ::: every address of that family.
    constexpr bool is_unspecified() const noexcept { return ipv6_ ? v6_.is_unspecified() : v4_ == ipv4_address{}; }

    // "127.0.0.1", "::1".
    std::string to_string() const { return ipv6_ ? v6_.to_string() : v4_.to_string(); }
    // "127.0.0.1", "[::1]": as it stands before ":PORT".
    std::string to_string_bracketed() const { return ipv6_ ? "[" + v6_.to_string() + "]" : v4_.to_string(); }

    friend constexpr bool operator==(const ip_address&, const ip_address&) noexcept = default;

private:
    bool ipv6_ = false;
    ipv4_address v4_{};
    ipv6_address v6_{};
};

}  // namespace ctr::net
// end ctr/ip_address.hpp
// begin ctr/landlock.hpp
// ctr::landlock: what files and TCP ports a command may use, enforced by the
// kernel's Landlock LSM (Linux 5.13 and later). No privilege, no namespace:
// any process may confine itself, and spawn applies a ruleset in the child
// right before no_new_privs and seccomp (docs/security.md, "Landlock").
//
//     auto rules = ctr::landlock::ruleset{}
//                      .execute("/usr")       // read and run
//                      .read("/etc")
//                      .write("/tmp/out")     // a tree the command may change
//                      .connect_tcp(443);
//     spawn(argv, {.security = {.landlock = rules}});
//
// A ruleset confines the filesystem once it has a path rule (or
// restrict_filesystem()): every file access outside the rules is denied,
// with EACCES. TCP is confined once it has a port rule (or restrict_tcp()).
// Paths are resolved in the child, after its mounts, as the command sees
// them; each must exist.
//
// Kernels differ (the Landlock ABI): best_effort, the default, drops what
// the kernel cannot enforce and dropped() says what that is; required makes
// spawn fail instead, naming the feature and the kernel it needs.


#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ctr::landlock {

// A set of access rights on files (LANDLOCK_ACCESS_FS_*), the kernel's bits.
struct access {
    std::uint64_t bits = 0;
    friend constexpr access operator|(access a, access b) noexcept { return {a.bits | b.bits}; }
    friend constexpr access operator&(access a, access b) noexcept { return {a.bits & b.bits}; }
    friend constexpr bool operator==(access a, access b) noexcept = default;
    constexpr bool empty() const noexcept { return bits == 0; }
};

namespace fs {
// Each right, with the ABI that introduced it.
inline constexpr access execute{1ULL << 0};
inline constexpr access write_file{1ULL << 1};
inline constexpr access read_file{1ULL << 2};
inline constexpr access read_dir{1ULL << 3};
inline constexpr access remove_dir{1ULL << 4};
inline constexpr access remove_file{1ULL << 5};
inline constexpr access make_char{1ULL << 6};
inline constexpr access make_dir{1ULL << 7};
inline constexpr access make_reg{1ULL << 8};
inline constexpr access make_sock{1ULL << 9};
inline constexpr access make_fifo{1ULL << 10};
inline constexpr access make_block{1ULL << 11};
inline constexpr access make_sym{1ULL << 12};
inline constexpr access refer{1ULL << 13};      // ABI 2: rename or link into another directory
inline constexpr access truncate{1ULL << 14};   // ABI 3: truncate(2), O_TRUNC
inline constexpr access ioctl_dev{1ULL << 15};  // ABI 5: ioctl on character and block devices

// The groups the ruleset's shorthands use.
inline constexpr access read = read_file | read_dir;
inline constexpr access write = write_file | truncate;
inline constexpr access make = make_reg | make_dir | make_sym | make_sock | make_fifo;
inline constexpr access remove = remove_file | remove_dir;
// A tree the command may change: everything but device nodes and device ioctls.
inline constexpr access read_write = read | write | make | remove | refer;
// The rights that apply to a file that is not a directory.
inline constexpr access file_rights = execute | write_file | read_file | truncate | ioctl_dev;
}  // namespace fs

// What the kernel does with what it cannot enforce.
enum class mode : std::uint8_t {
    best_effort,  // drop it (ruleset::dropped() lists it) and enforce the rest
    required,     // spawn fails with a ctr::error naming it and the kernel it needs
};

struct path_rule {
    std::string path;
    access rights;
};

enum class tcp : std::uint8_t { bind = 1, connect = 2 };  // LANDLOCK_ACCESS_NET_*

struct port_rule {
    std::uint16_t port;
    tcp what;
};

class ruleset {
public:
    // Read files and list directories beneath `path`.
    template <class = void>
    ruleset& read(std::string path) { return allow(std::move(path), fs::read); }
    // Read and run: what /usr needs.
    template <class = void>
    ruleset& execute(std::string path) { return allow(std::move(path), fs::read | fs::execute); }
    // A tree the command may read and change: write, truncate, make and
    // remove files and directories, move them within the rules (fs::read_write).
    template <class = void>
    ruleset& write(std::string path) { return allow(std::move(path), fs::read_write); }
    // Any set of rights beneath `path`. On a file that is not a directory
    // only fs::file_rights apply; the rest are ignored there.
    template <class = void>
    ruleset& allow(std::string path, access rights) {
        paths_.push_back({std::move(path), rights});
        return *this;
    }
    // Listen on (bind) or connect to this TCP port (ABI 4, Linux 6.7).
    template <class = void>
    ruleset& bind_tcp(std::uint16_t port) {
        ports_.push_back({port, tcp::bind});
        return *this;
    }
    template <class = void>
    ruleset& connect_tcp(std::uint16_t port) {
        ports_.push_back({port, tcp::connect});
        return *this;
    }
    // Confine without a rule of the kind: no file access at all, or no TCP
    // bind and connect at all.
    ruleset& restrict_filesystem() noexcept {
        restrict_filesystem_ = true;
        return *this;
    }
    ruleset& restrict_tcp() noexcept {
        restrict_tcp_ = true;
        return *this;
    }
    // ABI 6, Linux 6.12: no connecting to abstract unix sockets made outside
    // the sandbox, no signals to processes outside it.
    ruleset& scope_abstract_unix_sockets() noexcept {
        scopes_ |= 1U;
        return *this;
    }
    ruleset& scope_signals() noexcept {
        scopes_ |= 2U;
        return *this;
    }
    // ABI 7, Linux 6.15: which of the sandbox's denials the kernel's audit
    // log records (where audit is on; what is denied stays the same). The
    // ruleset is applied in the child before it execs the command, and the
    // kernel's defaults follow that line: denials before the exec are
    // logged (ctr's last setup steps; log_same_exec(false) mutes them),
    // the command's own are not unless log_new_exec(true); sandboxes the
    // command makes inside this one are logged unless log_subdomains(false).
    // Passed as landlock_restrict_self's flags (LANDLOCK_RESTRICT_SELF_LOG_*).
    ruleset& log_same_exec(bool on) noexcept { return set_restrict_flag(log_same_exec_off, !on); }
    ruleset& log_new_exec(bool on) noexcept { return set_restrict_flag(log_new_exec_on, on); }
    ruleset& log_subdomains(bool on) noexcept { return set_restrict_flag(log_subdomains_off, !on); }
    ruleset& set_mode(landlock::mode m) noexcept {
        mode_ = m;
        return *this;
    }
    // Use no feature newer than this ABI, whatever the kernel has, so that
    // a ruleset means the same on every kernel (go-landlock's V1..Vn).
    ruleset& at_most_abi(int abi) noexcept {
        abi_limit_ = abi;
        return *this;
    }

    const std::vector<path_rule>& paths() const noexcept { return paths_; }
    const std::vector<port_rule>& ports() const noexcept { return ports_; }
    bool restricts_filesystem() const noexcept { return restrict_filesystem_ || !paths_.empty(); }
    bool restricts_tcp() const noexcept { return restrict_tcp_ || !ports_.empty(); }
    bool scopes_abstract_unix_sockets() const noexcept { return (scopes_ & 1U) != 0; }
    bool scopes_signals() const noexcept { return (scopes_ & 2U) != 0; }
    landlock::mode mode() const noexcept { return mode_; }
    int abi_limit() const noexcept { return abi_limit_; }
    // The flags the log switches give landlock_restrict_self (0: the kernel's defaults).
    std::uint32_t restrict_self_flags() const noexcept { return restrict_flags_; }

    // The kernel's values (linux/landlock.h).
    static constexpr std::uint32_t log_same_exec_off = 1U << 0;   // LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF
    static constexpr std::uint32_t log_new_exec_on = 1U << 1;     // LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON
    static constexpr std::uint32_t log_subdomains_off = 1U << 2;  // LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF

    // What a kernel with Landlock ABI `abi` (0: none) could not enforce of
    // this ruleset, one line each, with the ABI and kernel it needs. Empty:
    // all of it. Defined below.
    template <class = void>
    std::vector<std::string> dropped(int abi) const;
    // The same against this kernel.
    template <class = void>
    std::vector<std::string> dropped() const;

private:
    ruleset& set_restrict_flag(std::uint32_t flag, bool set) noexcept {
        restrict_flags_ = set ? restrict_flags_ | flag : restrict_flags_ & ~flag;
        return *this;
    }

    std::vector<path_rule> paths_;
    std::vector<port_rule> ports_;
    bool restrict_filesystem_ = false;
    bool restrict_tcp_ = false;
    unsigned scopes_ = 0;
    std::uint32_t restrict_flags_ = 0;
    landlock::mode mode_ = landlock::mode::best_effort;
    int abi_limit_ = 0;  // 0: none
};

// The kernel's Landlock ABI version: 1 (Linux 5.13) and up, 0 when the
// kernel has none or it is disabled at boot.
template <class = void>
inline int abi() noexcept {
    const long version = detail::sys::landlock_create_ruleset(nullptr, 0, 1U);  // LANDLOCK_CREATE_RULESET_VERSION
    return version > 0 ? static_cast<int>(version) : 0;
}

namespace detail {

// The kernel's structures (linux/landlock.h), defined here because the
// installed header may predate the kernel: the ruleset's attributes grew
// with ABI 4 (handled_access_net) and ABI 6 (scoped); a kernel reads the
// fields it knows and requires the rest to be zero.
struct ruleset_attr {
    std::uint64_t handled_access_fs = 0;
    std::uint64_t handled_access_net = 0;
    std::uint64_t scoped = 0;
};
struct [[gnu::packed]] path_beneath_attr {
    std::uint64_t allowed_access;
    std::int32_t parent_fd;
};
struct net_port_attr {
    std::uint64_t allowed_access;
    std::uint64_t port;
};
inline constexpr int rule_path_beneath = 1;
inline constexpr int rule_net_port = 2;

// What each ABI added, and the first Linux release with it.
struct abi_feature {
    int abi;
    const char* kernel;
    const char* what;
};
inline constexpr abi_feature abi_features[] = {
    {1, "5.13", "files: read, write, execute, make and remove"},
    {2, "5.19", "refer: moving and linking files between directories"},
    {3, "6.2", "truncate"},
    {4, "6.7", "TCP bind and connect ports"},
    {5, "6.10", "ioctl on devices"},
    {6, "6.12", "scoped abstract unix sockets and signals"},
    {7, "6.15", "audit logging of denials"},
};

// The file rights an ABI knows.
constexpr std::uint64_t file_rights_of(int abi) noexcept {
    if (abi < 1) return 0;
    std::uint64_t bits = (1ULL << 13) - 1;  // execute .. make_sym
    if (abi >= 2) bits |= fs::refer.bits;
    if (abi >= 3) bits |= fs::truncate.bits;
    if (abi >= 5) bits |= fs::ioctl_dev.bits;
    return bits;
}

// What a kernel with `kernel_abi` enforces of a ruleset, and what it cannot.
struct fit {
    int abi = 0;  // the ABI used: the kernel's, or the ruleset's limit
    ruleset_attr attr{};
    std::uint32_t restrict_self_flags = 0;  // what landlock_restrict_self is given
    std::vector<std::string> missing;
};

template <class = void>
fit fit_ruleset(const ruleset& rules, int kernel_abi) {
    fit out;
    out.abi = rules.abi_limit() > 0 && rules.abi_limit() < kernel_abi ? rules.abi_limit() : kernel_abi;
    const int abi = out.abi;
    const auto has = [&](int needed, const char* what) {
        if (abi >= needed) return true;
        const abi_feature& f = abi_features[needed - 1];
        std::string line = std::string(what) + ": needs Landlock ABI " + std::to_string(needed) + " (Linux " +
                           f.kernel + "); ";
        if (abi != kernel_abi) line += "the ruleset allows at most ABI " + std::to_string(abi);
        else if (abi == 0) line += "this kernel has no Landlock, or it is disabled at boot";
        else line += "this kernel has ABI " + std::to_string(abi);
        out.missing.push_back(std::move(line));
        return false;
    };
    if (rules.restricts_filesystem() && has(1, "file rules")) {
        out.attr.handled_access_fs = file_rights_of(abi);
        std::uint64_t named = 0;
        for (const path_rule& rule : rules.paths()) named |= rule.rights.bits;
        if ((named & fs::refer.bits) != 0)
            has(2, "refer (without it, moving or linking a file between directories is always denied)");
        has(3, "truncate (without it, truncate(2) and O_TRUNC are not confined)");
        has(5, "ioctl_dev (without it, ioctl on devices is not confined)");
    }
    if (rules.restricts_tcp() && has(4, "TCP port rules")) out.attr.handled_access_net = 3;
    if (rules.scopes_abstract_unix_sockets() && has(6, "scoped abstract unix sockets")) out.attr.scoped |= 1;
    if (rules.scopes_signals() && has(6, "scoped signals")) out.attr.scoped |= 2;
    // A kernel before ABI 7 refuses any flag (EINVAL): best effort keeps the
    // kernel's logging defaults there.
    if (rules.restrict_self_flags() != 0 &&
        has(7, "audit log switches (log_same_exec, log_new_exec, log_subdomains)"))
        out.restrict_self_flags = rules.restrict_self_flags();
    return out;
}

}  // namespace detail

template <class>
std::vector<std::string> ruleset::dropped(int kernel_abi) const {
    return detail::fit_ruleset(*this, kernel_abi).missing;
}
template <class>
std::vector<std::string> ruleset::dropped() const {
    return dropped(landlock::abi());
}

}  // namespace ctr::landlock
// end ctr/landlock.hpp
// begin ctr/mount.hpp
// ctr::mount: mounts owned by a guard, and the root-filesystem plan that a
// sandboxed child builds and enters before exec.
//
// A plan is an ordered list of operations. prepare() validates it in the
// parent (sources and layers exist, sizes parse, paths are sane) and turns
// it into detail::mount_step data that the child runs with
// detail::run_mount_step, async-signal-safely, in its own mount namespace:
//
//   1. every mount of the namespace becomes private (or slave);
//   2. the new root is mounted on top of "/": a recursive bind of the rootfs
//      (or of the host's "/"), or an overlay; then the tmpfs skeletons that
//      missing mount points are made in (plan::missing_points);
//   3. the operations, in the order given, with targets resolved inside the
//      new root (symlinks in the rootfs cannot lead out of it);
//   4. the masked and read-only paths that come with a fresh /proc or /sys;
//   5. a read-only root's skeletons made read-only;
//   6. pivot_root into the new root, the old one detached (or chroot, when
//      asked for by name).
//
// docs/mounts.md has the details: the default plan, the symlink-safety
// design, the new mount API and its fallback, and what works rootless.

// begin ctr/detail/mount_plan.hpp
// ctr::mount's plan as spawn takes it (options::root): the operations a
// child's root filesystem is built from, as plain data, with the builder
// calls that add them and host_readonly(). mount.hpp has what runs them
// (plan::prepare, the steps, guards) and the launch layer: a program that
// spawns without a root filesystem compiles none of that.

// begin ctr/detail/mount_step.hpp
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

// begin ctr/detail/child_code.hpp
// CTR_CHILD_CODE marks a function that runs in the child between clone and
// exec (detail/child_program.hpp, detail/mount_step.hpp, the layers' steps).
//
// The child runs on a stack the sanitizer runtimes know nothing about and
// with the parent thread's TLS, so their instrumentation stays out of it:
// no_sanitize removes the memory checks, and clang's
// disable_sanitizer_instrumentation also the function entry and exit hooks
// that ThreadSanitizer would otherwise run there, writing the parent
// thread's TSan state from the child. noinline keeps the child's code from
// being folded into an instrumented caller.
#if defined(__clang__)
#if __has_attribute(disable_sanitizer_instrumentation)
#define CTR_CHILD_CODE \
    __attribute__((no_sanitize("address", "undefined", "thread"), disable_sanitizer_instrumentation, noinline))
#else
#define CTR_CHILD_CODE __attribute__((no_sanitize("address", "undefined", "thread"), noinline))
#endif
#else
#define CTR_CHILD_CODE __attribute__((no_sanitize_address, no_sanitize_undefined, noinline))
#endif
// end ctr/detail/child_code.hpp

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
// end ctr/detail/mount_step.hpp

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ctr::mount {

// Whether a bind is idmapped through the sandbox's new user namespace
// (Linux 5.12+, a filesystem that supports it, a privileged caller): then a
// file owned by uid N on disk shows as uid N inside, and what the sandbox's
// root writes is owned by root on disk - Docker's volume ownership, although
// the sandbox's ids are unprivileged on the host.
enum class idmapping : std::uint8_t {
    none,
    required,        // the launch fails where the kernel or filesystem cannot idmap
    when_supported,  // elsewhere a plain bind: root-owned files show as nobody inside
};

struct bind_options {
    bool read_only = false;
    bool recursive = true;   // the source's submounts come along, as with bwrap's --bind
    bool nosuid = false;
    bool nodev = false;
    bool noexec = false;
    bool optional = false;   // a source that does not exist skips the bind instead of failing
    idmapping idmap = idmapping::none;
    bool nosymfollow = false;  // symlinks in it are not followed (Linux 5.10+)
};

struct tmpfs_options {
    std::string size{};      // "1M", "512k", "4096", "10%"; empty: the kernel's default (half of RAM)
    mode_t mode = 0755;
    std::optional<uid_t> uid{};
    std::optional<gid_t> gid{};
    bool read_only = false;
    bool nosuid = true;
    bool nodev = true;
    bool noexec = false;
};

// How a new filesystem's mount updates access times (MOUNT_ATTR_*ATIME).
enum class access_time : std::uint8_t {
    kernel_default,  // relatime, unless the filesystem says otherwise
    relative,        // relatime
    none,            // noatime
    strict,          // strictatime: every access
};

// A filesystem of any type that plan::filesystem mounts: the mount's
// attributes, and the filesystem's own options passed to the kernel as they
// are, in order ("newinstance", "ptmxmode=0666", "size=65536k"), each a key
// or key=value as mount -o takes them. The kernel judges them: an option it
// does not know fails the launch with its own message.
struct filesystem_options {
    bool read_only = false;
    bool nosuid = false;
    bool nodev = false;
    bool noexec = false;
    bool nodiratime = false;
    bool nosymfollow = false;
    access_time atime = access_time::kernel_default;
    std::vector<std::string> data{};
};

// proc's hidepid: whether other users' /proc/PID directories are readable
// (no_access) or even listed (invisible).
enum class hide_pids : std::uint8_t { off, no_access, invisible };

struct proc_options {
    // Only the /proc/PID directories and what processes need (Linux 5.8+);
    // older kernels mount the full proc, still under the default masks.
    bool subset_pid = false;
    hide_pids hide = hide_pids::off;
    // runc's masked paths (/proc/kcore, /proc/keys, ...) and read-only
    // paths (/proc/sys, /proc/sysrq-trigger, ...). Plans only; guards never mask.
    bool mask_defaults = true;
};

struct overlay_layers {
    std::vector<std::string> lower{};  // uppermost first, as overlayfs lists them
    std::string upper{};               // empty: a read-only overlay (then at least two lower layers)
    std::string work{};                // with upper: an empty directory on the same filesystem
    // Each lower layer idmapped through the sandbox's user namespace first
    // (see idmapping; overlay over idmapped layers needs Linux 5.19+), so
    // that files owned by root on disk are the sandbox root's.
    idmapping idmap_lower = idmapping::none;
};

// Attributes for plan::set_attributes.
struct attributes {
    bool read_only = false;
    bool nosuid = false;
    bool nodev = false;
    bool noexec = false;
    bool recursive = true;  // also every mount below
    bool nosymfollow = false;
};

// How mounts of the child's namespace relate to the host's: private (no
// propagation either way), or slave (host mounts appear; none flow back).
enum class propagation_mode : std::uint8_t { private_mounts, slave };

// How the child enters the new root. chroot leaves the old root mounted in
// the namespace and a process with CAP_SYS_CHROOT can climb back out: use it
// only where pivot_root cannot work (e.g. a rootfs on the initramfs).
enum class root_entry : std::uint8_t { pivot_root, chroot_escapable };

// Where a mount point that the root lacks is made.
enum class missing_mount_points : std::uint8_t {
    // In the root itself, as runc does: a writable rootfs directory gains it
    // on the host; a read-only root fails (EROFS).
    make_in_root,
    // In a skeleton: a tmpfs over the deepest directory of the root that
    // exists, holding what that directory holds (each entry bound back from
    // it, each symlink made again), where the mount point is then made. The
    // rootfs directory and the host never change; the skeleton is made
    // read-only after the last mount when the root is. A bind root only (an
    // overlay at "/" takes its mount points in its upper layer).
    make_in_skeleton,
};

namespace detail {

using namespace ::ctr::detail;

struct bind_request {
    std::string source;
    std::string target;
    bind_options options;
    ctr::step step = ctr::step::bind_mount;
};
struct tmpfs_request {
    std::string target;
    tmpfs_options options;
};
struct proc_request {
    std::string target;
    proc_options options;
};
// sysfs, devpts, mqueue
struct kernel_fs_request {
    std::string fs_type;
    std::string target;
};
// plan::filesystem: any type, options given by the caller.
struct filesystem_request {
    std::string fs_type;
    std::string source;
    std::string target;
    filesystem_options options;
};
// plan::write: text into an existing file in the new root.
struct write_request {
    std::string target;
    std::string text;
};
struct dev_request {
    std::string target;
};
struct overlay_request {
    std::string target;
    overlay_layers layers;
};
struct path_request {
    mount_step_kind kind;  // make_directory, make_file, mask, read_only
    std::string target;
    mode_t mode = 0755;
};
struct symlink_request {
    std::string text;
    std::string target;
};
struct attributes_request {
    std::string target;
    mount::attributes attrs;
};

// The kinds of request, in the order of request_kinds below.
enum class request_kind : std::uint8_t {
    bind, tmpfs, proc, kernel_fs, dev, overlay, path, symlink, attributes, filesystem, write
};

template <class... Requests>
struct request_list {};
using request_kinds = request_list<bind_request, tmpfs_request, proc_request, kernel_fs_request, dev_request,
                                   overlay_request, path_request, symlink_request, attributes_request,
                                   filesystem_request, write_request>;

template <class Request, class First, class... Rest>
constexpr std::uint8_t request_index(request_list<First, Rest...>) noexcept {
    if constexpr (std::is_same_v<Request, First>)
        return 0;
    else
        return static_cast<std::uint8_t>(1 + request_index<Request>(request_list<Rest...>{}));
}
template <class Request>
inline constexpr request_kind kind_of_request = static_cast<request_kind>(request_index<Request>(request_kinds{}));

// One request of a plan: any one of the types above. Not a std::variant: a
// plan sits in process::options, whose default member initializers make g++
// compile the destructor of each member's type where the options are
// declared, and a variant's destructor brings its whole visitation machinery
// (about 1,000 classes) into every translation unit that includes ctr. This
// holder's special members are plain functions; what depends on a request's
// type is compiled only where a plan adds one of that type.
class mount_request {
public:
    template <class Request, class Plain = std::remove_cvref_t<Request>,
              class = std::enable_if_t<!std::is_same_v<Plain, mount_request>>>
    explicit mount_request(Request&& request)
        : kind_(kind_of_request<Plain>), object_(new Plain(std::forward<Request>(request))),
          operations_(&operations_of<Plain>) {}
    mount_request(const mount_request& other)
        : kind_(other.kind_), object_(other.object_ ? other.operations_->copy(other.object_) : nullptr),
          operations_(other.operations_) {}
    mount_request(mount_request&& other) noexcept
        : kind_(other.kind_), object_(std::exchange(other.object_, nullptr)), operations_(other.operations_) {}
    mount_request& operator=(const mount_request& other) {
        if (this != &other) *this = mount_request(other);
        return *this;
    }
    mount_request& operator=(mount_request&& other) noexcept {
        std::swap(kind_, other.kind_);
        std::swap(object_, other.object_);
        std::swap(operations_, other.operations_);
        return *this;
    }
    ~mount_request() {
        if (object_) operations_->destroy(object_);
    }

    request_kind kind() const noexcept { return kind_; }
    // The request, when it is a `Request`; null otherwise (and when moved from).
    template <class Request>
    const Request* get_if() const noexcept {
        return kind_ == kind_of_request<Request> ? static_cast<const Request*>(object_) : nullptr;
    }
    template <class Request>
    Request* get_if() noexcept {
        return kind_ == kind_of_request<Request> ? static_cast<Request*>(object_) : nullptr;
    }

private:
    struct operations {
        void* (*copy)(const void*);
        void (*destroy)(void*) noexcept;
    };
    template <class Request>
    static void* copy_of(const void* request) {
        return new Request(*static_cast<const Request*>(request));
    }
    template <class Request>
    static void destroy_one(void* request) noexcept {
        delete static_cast<Request*>(request);
    }
    template <class Request>
    static constexpr operations operations_of{&copy_of<Request>, &destroy_one<Request>};

    request_kind kind_;
    void* object_;
    const operations* operations_;
};

template <class Request, class Holder>
const Request* request_if(const Holder& request) noexcept {
    return request.template get_if<Request>();
}

// Calls `visitor` with the request as its own type; every call must return
// a `Result`.
template <class Result, class Visitor, class Holder>
Result visit_request(Visitor&& visitor, const Holder& request) {
    switch (request.kind()) {
    case request_kind::bind: return visitor(*request.template get_if<bind_request>());
    case request_kind::tmpfs: return visitor(*request.template get_if<tmpfs_request>());
    case request_kind::proc: return visitor(*request.template get_if<proc_request>());
    case request_kind::kernel_fs: return visitor(*request.template get_if<kernel_fs_request>());
    case request_kind::dev: return visitor(*request.template get_if<dev_request>());
    case request_kind::overlay: return visitor(*request.template get_if<overlay_request>());
    case request_kind::path: return visitor(*request.template get_if<path_request>());
    case request_kind::symlink: return visitor(*request.template get_if<symlink_request>());
    case request_kind::attributes: return visitor(*request.template get_if<attributes_request>());
    case request_kind::filesystem: return visitor(*request.template get_if<filesystem_request>());
    case request_kind::write: return visitor(*request.template get_if<write_request>());
    }
    return visitor(*request.template get_if<write_request>());  // not reached: every kind is above
}

// A plan's requests, named through the caller's template parameter so that
// the loop over them is compiled only where the caller is: in an expression
// that depends on nothing g++ compiles a loop's iterator operations at the
// template's definition, in every translation unit.
template <class Unused, class Plan>
const auto& plan_requests(const Plan& p) noexcept {
    return p.requests;
}

class step_builder;

}  // namespace detail

// Defined in mount.hpp, which plan::prepare() needs.
class prepared_plan;

// An ordered list of mount operations that builds a child's root filesystem.
// An aggregate: `mount::plan{.rootfs = "/srv/image"}.proc().dev().tmpfs("/tmp")`.
// Targets are paths inside the new root; sources are host paths.
struct plan {
    std::string rootfs{};  // the host directory that becomes "/"; empty: the host's own "/"
    bool read_only_root = false;
    // The root's bind: no setuid and no device files from it (the host's
    // own root in host_readonly()), and idmapped (see bind_options::idmap).
    bool nosuid_root = false;
    bool nodev_root = false;
    idmapping idmap_root = idmapping::none;
    propagation_mode propagation = propagation_mode::private_mounts;
    root_entry entry = root_entry::pivot_root;
    missing_mount_points missing_points = missing_mount_points::make_in_root;
    std::vector<detail::mount_request> requests{};  // what the calls below added, in order

    template <class = void>
    plan& bind(std::string source, std::string target, bind_options options = {}) {
        return add(detail::bind_request{std::move(source), std::move(target), options});
    }
    template <class = void>
    plan& tmpfs(std::string target, tmpfs_options options = {}) {
        return add(detail::tmpfs_request{std::move(target), std::move(options)});
    }
    template <class = void>
    plan& proc(std::string target = "/proc", proc_options options = {}) {
        return add(detail::proc_request{std::move(target), options});
    }
    template <class = void>
    plan& sysfs(std::string target = "/sys") {
        return add(detail::kernel_fs_request{"sysfs", std::move(target)});
    }
    template <class = void>
    plan& devpts(std::string target = "/dev/pts") {
        return add(detail::kernel_fs_request{"devpts", std::move(target)});
    }
    template <class = void>
    plan& mqueue(std::string target = "/dev/mqueue") {
        return add(detail::kernel_fs_request{"mqueue", std::move(target)});
    }
    // A filesystem of any type with the options given (see
    // filesystem_options): devpts with a gid, tmpfs with strictatime, cgroup2,
    // as an OCI config.json asks. Unlike proc() and sysfs() it adds no masks.
    // `source` is what mountinfo shows (empty: the type).
    template <class = void>
    plan& filesystem(std::string fs_type, std::string source, std::string target, filesystem_options options = {}) {
        return add(detail::filesystem_request{std::move(fs_type), std::move(source), std::move(target),
                                              std::move(options)});
    }
    // Writes `text` into the existing file at `target`, in the order of the
    // plan's requests: after the proc() or filesystem("proc", ...) it is in,
    // before a read_only() over it. For an OCI sysctl:
    // .write("/proc/sys/net/ipv4/ping_group_range", "0 0"). The value goes
    // to the namespaces the child is in by then (its network, IPC, UTS).
    template <class = void>
    plan& write(std::string target, std::string text) {
        return add(detail::write_request{std::move(target), std::move(text)});
    }
    // A minimal /dev: a tmpfs with null, zero, full, random, urandom and tty
    // bound from the host; fd, stdin, stdout, stderr and ptmx symlinks; a
    // devpts of its own at pts; a tmpfs at shm.
    template <class = void>
    plan& dev(std::string target = "/dev") {
        return add(detail::dev_request{std::move(target)});
    }
    // An overlay at `target`; at "/" it is the new root itself (then leave
    // rootfs empty).
    template <class = void>
    plan& overlay(std::string target, overlay_layers layers) {
        return add(detail::overlay_request{std::move(target), std::move(layers)});
    }
    template <class = void>
    plan& directory(std::string target, mode_t mode = 0755) {
        return add(detail::path_request{ctr::detail::mount_step_kind::make_directory, std::move(target), mode});
    }
    template <class = void>
    plan& file(std::string target, mode_t mode = 0644) {
        return add(detail::path_request{ctr::detail::mount_step_kind::make_file, std::move(target), mode});
    }
    // A symlink at `target` whose text is `text`.
    template <class = void>
    plan& symlink(std::string text, std::string target) {
        return add(detail::symlink_request{std::move(text), std::move(target)});
    }
    // Hides a path: a file reads empty (/dev/null over it), a directory
    // shows empty (a read-only tmpfs over it). A missing path is skipped.
    template <class = void>
    plan& mask(std::string target) {
        return add(detail::path_request{ctr::detail::mount_step_kind::mask, std::move(target)});
    }
    // Makes a path read-only (bound onto itself). A missing path is skipped.
    template <class = void>
    plan& read_only(std::string target) {
        return add(detail::path_request{ctr::detail::mount_step_kind::read_only, std::move(target)});
    }
    // Sets attributes on the mount at `target` (an earlier step's).
    template <class = void>
    plan& set_attributes(std::string target, attributes attrs) {
        return add(detail::attributes_request{std::move(target), attrs});
    }

    // Appends one request (one of the detail::*_request types).
    template <class Request>
    plan& add(Request&& request) {
        requests.emplace_back(std::forward<Request>(request));
        return *this;
    }

    // Validates the plan and prepares the child's steps. Throws ctr::error
    // naming the step and the path (a missing bind source, an overlay layer
    // that does not exist, a size that does not parse...).
    template <class = void>
    prepared_plan prepare() const;
};

// The plan used when the caller gives no root filesystem: the host's "/"
// bind-mounted read-only (recursively), a private tmpfs at /tmp, a fresh
// /proc and a minimal /dev, as `bwrap --ro-bind / / --proc /proc --dev /dev
// --tmpfs /tmp` gives; /sys is the host's, read-only, with /sys/firmware masked.
template <class = void>
inline plan host_readonly() {
    plan p{.read_only_root = true};
    p.nosuid_root = true;
    p.nodev_root = true;
    p.tmpfs("/tmp", {.mode = 01777}).proc("/proc").dev("/dev").mask("/sys/firmware");
    return p;
}

}  // namespace ctr::mount
// end ctr/detail/mount_plan.hpp
// begin ctr/detail/mount_skeleton.hpp
// The skeletons of a plan that makes missing mount points in one
// (plan::missing_points = missing_mount_points::make_in_skeleton): which
// directories of the root need one, and what each holds. Read by the parent
// before the launch, from the rootfs directory or the host's "/", so that
// the child only runs steps it already has on prepared data: a tmpfs, binds,
// symlinks (mount.hpp's step_builder turns a skeleton into them).


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
// end ctr/detail/mount_skeleton.hpp

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr::mount {

// A plan validated and turned into the steps a child runs. Move-only: the
// steps point into strings it owns, so it must outlive the child's use of
// steps() (in spawn: until the child has exec'd or failed).
class prepared_plan {
public:
    prepared_plan() = default;
    prepared_plan(prepared_plan&&) = default;
    prepared_plan& operator=(prepared_plan&&) = default;
    prepared_plan(const prepared_plan&) = delete;
    prepared_plan& operator=(const prepared_plan&) = delete;
    ~prepared_plan() = default;

    template <class = void>
    std::span<const ctr::detail::mount_step> steps() const noexcept { return {steps_.data(), steps_.size()}; }
    // The host directory that becomes "/" ("/" for the host's own root).
    template <class = void>
    const std::string& root() const noexcept { return root_; }

    // The binds the parent must make for the child (bind_options::idmap),
    // in the order of their steps' detached_slot.
    struct detached_bind {
        const char* source;
        bool recursive;
        std::uint64_t attributes;  // MOUNT_ATTR_* to set with the idmap
        bool required;             // else a plain bind where the filesystem cannot idmap
        std::string shown;         // the target, for errors
    };
    template <class = void>
    const std::vector<detached_bind>& detached_binds() const noexcept { return detached_; }

    // The error that step `index` failing with `errno_value` reports: its
    // step (or the finer one the child recorded in ctx), its path, and the
    // kernel's message or a hint.
    template <class = void>
    ctr::error error_for(std::size_t index, int errno_value, const ctr::detail::mount_context* ctx = nullptr) const;

private:
    friend class detail::step_builder;

    struct step_info {
        std::string path;    // what the error names
        std::string detail;  // e.g. "source '/srv/data'"
    };

    // What the steps point into, so it must never move: each string on the
    // heap by itself (a moved short string would move its characters), and
    // the lists in vectors whose buffers stay where they are when the outer
    // vector grows and moves them. (No std::deque: every includer would
    // parse its header for these three members.)
    std::vector<std::unique_ptr<std::string>> strings_;
    std::vector<std::vector<const char*>> lists_;
    std::vector<std::vector<ctr::detail::mount_param>> params_;
    std::vector<ctr::detail::mount_step> steps_;
    std::vector<step_info> info_;
    std::vector<detached_bind> detached_;
    std::string root_;
};

namespace detail {

// The masked and read-only paths of runc's default spec, relative to where
// proc and sysfs are mounted.
inline constexpr const char* masked_proc_paths[] = {"acpi",         "asound",      "kcore",       "keys",
                                                     "latency_stats", "timer_list", "timer_stats", "sched_debug",
                                                     "scsi"};
inline constexpr const char* read_only_proc_paths[] = {"bus", "fs", "irq", "sys", "sysrq-trigger"};
inline constexpr const char* masked_sys_paths[] = {"firmware", "devices/virtual/powercap"};
inline constexpr const char* dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

// Whether the kernel has mount_setattr (5.12+). When it has, a child never
// needs the submount lists, and the parent does not read mountinfo.
template <class = void>
inline bool kernel_has_mount_setattr() {
    static const bool has = raw::call(SYS_mount_setattr, -1, "", 0, nullptr, 0) != -ENOSYS;
    return has;
}

template <class = void>
inline std::optional<struct stat> host_stat(const std::string& path) {
    struct stat st {};
    if (sys::fstatat(AT_FDCWD, path.c_str(), &st, 0) < 0) return std::nullopt;
    return st;
}

template <class = void>
inline std::string current_directory() {
    char buffer[mount_path_max];
    if (sys::getcwd(buffer, sizeof buffer) < 0) return "/";
    return buffer;
}

// Collapses repeated and trailing slashes; keeps "." and ".." (they are
// resolved inside the root, where they cannot climb out).
template <class = void>
inline std::string squeeze_slashes(std::string_view path) {
    std::string out;
    for (char c : path)
        if (c != '/' || out.empty() || out.back() != '/') out.push_back(c);
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

// Absolute (a relative path is taken from the current directory); ".." and
// symlinks are left for the kernel, which resolves them in
// canonical_host_path (collapsing ".." by text would be wrong past a symlink).
template <class = void>
inline std::string absolute_host_path(const std::string& path) {
    return squeeze_slashes(path.empty() || path[0] != '/' ? current_directory() + "/" + path : path);
}

// The host path with its symlinks resolved, as the kernel sees the object
// (through /proc/self/fd); the lexical absolute path if that cannot be read.
template <class = void>
inline std::string canonical_host_path(const std::string& path) {
    const std::string absolute = absolute_host_path(path);
    const long fd = sys::openat(AT_FDCWD, absolute.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) return absolute;
    char name[32];
    char buffer[mount_path_max];
    const long n = sys::readlinkat(AT_FDCWD, proc_fd_path(static_cast<int>(fd), name), buffer, sizeof buffer);
    sys::close(static_cast<int>(fd));
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buffer || buffer[0] != '/') return absolute;
    return std::string(buffer, static_cast<std::size_t>(n));
}

// A target inside the new root: absolute, slashes squeezed. "." and ".."
// stay; resolution inside the root confines them.
template <class = void>
inline std::string root_target(const std::string& target, const char* what) {
    if (target.empty()) throw error(step::prepare, EINVAL, target, std::string(what) + ": the target is empty");
    if (target.find('\0') != std::string::npos)
        throw error(step::prepare, EINVAL, target, std::string(what) + ": the target contains a NUL byte");
    if (target.size() >= mount_path_max) throw error(step::prepare, ENAMETOOLONG, target, what);
    return squeeze_slashes(target[0] == '/' ? target : "/" + target);
}

// Whether a target inside the root names the root itself once "." and ".."
// are taken, ".." stopping at the root as resolution inside it does ("/..",
// "/tmp/.."): a mount there would lie under the new root, silently unseen.
template <class = void>
inline bool names_the_root(std::string_view path) {
    std::size_t depth = 0;
    while (!path.empty()) {
        const std::size_t slash = path.find('/');
        const std::string_view part = path.substr(0, slash);
        if (part == "..") {
            if (depth > 0) --depth;
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
        path.remove_prefix(slash == std::string_view::npos ? path.size() : slash + 1);
    }
    return depth == 0;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
template <class = void>
inline std::string unescape_mountinfo(std::string_view field) {
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            const char a = field[i + 1], b = field[i + 2], c = field[i + 3];
            if (a >= '0' && a <= '7' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
                out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
                i += 3;
                continue;
            }
        }
        out.push_back(field[i]);
    }
    return out;
}

// The mount points strictly below `source` in a mountinfo text, relative to
// it, parents first. Takes the text so that it is fuzzed (tests/fuzz).
template <class = void>
inline std::vector<std::string> submounts_in(std::string_view mountinfo, const std::string& source) {
    std::vector<std::string> out;
    const std::string prefix = source == "/" ? "/" : source + "/";
    std::size_t start = 0;
    while (start < mountinfo.size()) {
        std::size_t end = mountinfo.find('\n', start);
        if (end == std::string_view::npos) end = mountinfo.size();
        const std::string_view line(mountinfo.data() + start, end - start);
        start = end + 1;
        // id parent major:minor root mount-point ...
        std::size_t field = 0, position = 0;
        std::string_view mount_point;
        while (position < line.size() && field <= 4) {
            std::size_t next = line.find(' ', position);
            if (next == std::string_view::npos) next = line.size();
            if (field == 4) mount_point = line.substr(position, next - position);
            ++field;
            position = next + 1;
        }
        const std::string point = unescape_mountinfo(mount_point);
        if (point.size() > prefix.size() && point.compare(0, prefix.size(), prefix) == 0) {
            std::string relative = point.substr(prefix.size());
            bool seen = false;
            for (const auto& known : out) seen = seen || known == relative;
            if (!seen) out.push_back(std::move(relative));
        }
    }
    return out;
}

// The mount points strictly below `source` in this process's mount table,
// relative to it, parents first: what a recursive bind of `source` copies.
// Read in the parent because the child's namespace is a copy of this one
// taken at clone, so the child needs no parser and no big buffer.
template <class = void>
inline std::vector<std::string> submounts_below(const std::string& source) {
    const auto mountinfo = read_small_file("/proc/self/mountinfo");
    if (!mountinfo) return {};
    return submounts_in(*mountinfo, source);
}

template <class = void>
inline std::uint64_t attribute_bits(bool read_only, bool nosuid, bool nodev, bool noexec, bool nosymfollow = false) {
    std::uint64_t bits = 0;
    if (nosymfollow) bits |= mount_abi::attr_nosymfollow;
    if (read_only) bits |= mount_abi::attr_rdonly;
    if (nosuid) bits |= mount_abi::attr_nosuid;
    if (nodev) bits |= mount_abi::attr_nodev;
    if (noexec) bits |= mount_abi::attr_noexec;
    return bits;
}

template <class = void>
inline std::string octal(unsigned value) {
    std::string digits;
    do {
        digits.insert(digits.begin(), static_cast<char>('0' + (value & 7)));
        value >>= 3;
    } while (value != 0);
    return "0" + digits;
}

template <class = void>
inline bool valid_tmpfs_size(const std::string& size) {
    std::size_t digits = 0;
    while (digits < size.size() && size[digits] >= '0' && size[digits] <= '9') ++digits;
    if (digits == 0) return false;
    if (digits == size.size()) return true;
    return digits + 1 == size.size() && std::string_view("kKmMgGtTpPeE%").find(size.back()) != std::string_view::npos;
}

// Builds a prepared_plan: owns the strings, appends steps.
class step_builder {
public:
    template <class = void>
    // for_guard: targets are paths of the current root, for steps run in
    // place (no new root, no pivot); checked on this host unless
    // `targets_elsewhere` (a prepared sandbox's runs resolve them in the
    // sandbox's root, which this process does not see).
    explicit step_builder(bool for_guard, bool targets_elsewhere = false)
        : for_guard_(for_guard), targets_elsewhere_(targets_elsewhere) {}

    template <class = void>
    const char* keep(std::string text) {
        return out_.strings_.emplace_back(std::make_unique<std::string>(std::move(text)))->c_str();
    }

    template <class = void>
    const char* const* keep_list(const std::vector<std::string>& items) {
        std::vector<const char*> pointers;
        for (const auto& item : items) pointers.push_back(keep(item));
        pointers.push_back(nullptr);
        return out_.lists_.emplace_back(std::move(pointers)).data();
    }

    template <class = void>
    void add(mount_step s, std::string path, std::string detail = {}) {
        out_.steps_.push_back(s);
        out_.info_.push_back({std::move(path), std::move(detail)});
    }

    template <class = void>
    void set_params(mount_step& s, std::vector<mount_param> params) {
        if (params.empty()) return;
        s.param_count = static_cast<std::uint32_t>(params.size());
        s.params = out_.params_.emplace_back(std::move(params)).data();
    }

    // A host path for a bind's source: absolute and with symlinks resolved.
    // Nothing when it does not exist and the bind is optional.
    template <class = void>
    std::optional<std::pair<std::string, struct stat>> bind_source(const std::string& source, bool optional,
                                                                   ctr::step s) {
        if (source.empty()) throw error(s, EINVAL, source, "the bind source is empty");
        const std::string absolute = absolute_host_path(source);
        struct stat st {};
        if (const long r = sys::fstatat(AT_FDCWD, absolute.c_str(), &st, 0); r < 0) {
            if (optional && r == -ENOENT) return std::nullopt;
            throw error(s, static_cast<int>(-r), absolute, "bind source");
        }
        return std::pair{canonical_host_path(absolute), st};
    }

    template <class = void>
    void add_bind(const std::string& source, const char* target, const bind_options& o, ctr::step s,
                  const std::string& shown_target) {
        const auto found = bind_source(source, o.optional, s);
        if (!found) return;
        const auto& [path, st] = *found;
        mount_step m{};
        m.kind = mount_step_kind::bind;
        m.step = s;
        m.source = keep(path);
        m.target = target;
        m.point = S_ISDIR(st.st_mode) ? mount_point::directory : mount_point::file;
        m.recursive = o.recursive;
        m.optional = o.optional;
        m.attributes = attribute_bits(o.read_only, o.nosuid, o.nodev, o.noexec, o.nosymfollow);
        if (m.attributes != 0 && o.recursive && S_ISDIR(st.st_mode) &&
            (!kernel_has_mount_setattr() || sys::faults_armed.load(std::memory_order_relaxed)))
            m.submounts = keep_list(submounts_below(path));
        if (o.idmap != idmapping::none) {
            m.detached_slot = static_cast<int>(out_.detached_.size());
            out_.detached_.push_back({m.source, m.recursive, m.attributes, o.idmap == idmapping::required, shown_target});
        }
        add(m, shown_target, "source '" + path + "'");
    }

    template <class = void>
    void add_tmpfs(const char* target, const tmpfs_options& o, const std::string& shown) {
        if (!o.size.empty() && !valid_tmpfs_size(o.size))
            throw error(step::mount, EINVAL, shown,
                        "tmpfs size '" + o.size + "' is not a number with an optional k, m, g or % suffix");
        if (o.mode > 07777) throw error(step::mount, EINVAL, shown, "tmpfs mode " + octal(o.mode) + " is not a mode");
        std::vector<mount_param> params;
        std::string data;
        const auto option = [&](const char* key, std::string value) {
            const char* kept = keep(value);
            params.push_back({key, kept});
            if (!data.empty()) data += ",";
            data += std::string(key) + "=" + value;
        };
        if (!o.size.empty()) option("size", o.size);
        option("mode", octal(o.mode));
        if (o.uid) option("uid", std::to_string(*o.uid));
        if (o.gid) option("gid", std::to_string(*o.gid));
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.source = "tmpfs";
        m.fs_type = "tmpfs";
        m.target = target;
        m.point = mount_point::directory;
        m.attributes = attribute_bits(o.read_only, o.nosuid, o.nodev, o.noexec);
        m.flags = attributes_to_ms(m.attributes);
        m.legacy_data = keep_list({data});
        set_params(m, std::move(params));
        add(m, shown, "tmpfs");
    }

    template <class = void>
    void add_proc(const char* target, const proc_options& o, const std::string& shown) {
        std::vector<mount_param> params;
        std::vector<std::string> data;
        const char* hide_name = o.hide == hide_pids::invisible ? "invisible" : "noaccess";
        const char* hide_number = o.hide == hide_pids::invisible ? "2" : "1";
        // Kernels before 5.8 know neither subset nor the hidepid names: do
        // without subset (the default masks still apply) and use the numbers.
        if (o.subset_pid) params.push_back({"subset", "pid", on_rejected::skip, nullptr});
        if (o.hide != hide_pids::off) params.push_back({"hidepid", hide_name, on_rejected::alternative, hide_number});
        if (o.subset_pid && o.hide != hide_pids::off) {
            data = {std::string("subset=pid,hidepid=") + hide_name, std::string("hidepid=") + hide_number};
        } else if (o.subset_pid) {
            data = {"subset=pid", ""};
        } else if (o.hide != hide_pids::off) {
            data = {std::string("hidepid=") + hide_name, std::string("hidepid=") + hide_number};
        }
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.source = "proc";
        m.fs_type = "proc";
        m.target = target;
        m.point = mount_point::directory;
        m.attributes = attribute_bits(false, true, true, true);
        m.flags = attributes_to_ms(m.attributes);
        if (!data.empty()) m.legacy_data = keep_list(data);
        set_params(m, std::move(params));
        add(m, shown, "proc");
        if (o.mask_defaults && !for_guard_) {
            for (const char* p : masked_proc_paths) deferred_.push_back({mount_step_kind::mask, shown + "/" + p});
            for (const char* p : read_only_proc_paths) deferred_.push_back({mount_step_kind::read_only, shown + "/" + p});
        }
    }

    template <class = void>
    void add_kernel_fs(const std::string& fs_type, const char* target, const std::string& shown) {
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.target = target;
        m.point = mount_point::directory;
        std::vector<mount_param> params;
        std::string data;
        if (fs_type == "sysfs") {
            m.source = "sysfs";
            m.fs_type = "sysfs";
            m.attributes = attribute_bits(true, true, true, true);
            if (!for_guard_)
                for (const char* p : masked_sys_paths) deferred_.push_back({mount_step_kind::mask, shown + "/" + p});
        } else if (fs_type == "devpts") {
            m.source = "devpts";
            m.fs_type = "devpts";
            m.attributes = attribute_bits(false, true, false, true);
            // A devpts of its own: newinstance is the default since 4.7,
            // and ptmxmode lets the unprivileged open pts/ptmx.
            params = {{"newinstance", nullptr, on_rejected::skip, nullptr},
                      {"ptmxmode", "0666", on_rejected::fail, nullptr},
                      {"mode", "0620", on_rejected::fail, nullptr}};
            data = "newinstance,ptmxmode=0666,mode=0620";
        } else if (fs_type == "mqueue") {
            m.source = "mqueue";
            m.fs_type = "mqueue";
            m.attributes = attribute_bits(false, true, true, true);
        } else {
            throw error(step::prepare, EINVAL, shown, "unknown filesystem type " + fs_type);
        }
        m.flags = attributes_to_ms(m.attributes);
        if (!data.empty()) m.legacy_data = keep_list({data});
        set_params(m, std::move(params));
        add(m, shown, fs_type);
    }

    // plan::filesystem: the caller's type and options, each option both a
    // fsconfig parameter and a part of the mount(2) data.
    template <class = void>
    void add_filesystem(const filesystem_request& r, const char* target, const std::string& shown) {
        const auto bad = [](const std::string& text) { return text.find('\0') != std::string::npos; };
        if (r.fs_type.empty() || bad(r.fs_type) || r.fs_type.find(',') != std::string::npos)
            throw error(step::prepare, EINVAL, shown, "filesystem type '" + r.fs_type + "' is empty or not a name");
        if (bad(r.source)) throw error(step::prepare, EINVAL, shown, "the filesystem's source contains a NUL byte");
        std::vector<mount_param> params;
        std::string data;
        for (const auto& item : r.options.data) {
            if (item.empty() || item[0] == '=' || bad(item) || item.find(',') != std::string::npos)
                throw error(step::prepare, EINVAL, shown,
                            r.fs_type + " option '" + item + "' is empty, has no key, or contains ',' or a NUL byte");
            const std::size_t equals = item.find('=');
            const char* key = keep(item.substr(0, equals));
            const char* value = equals == std::string::npos ? nullptr : keep(item.substr(equals + 1));
            params.push_back({key, value, on_rejected::fail, nullptr});
            if (!data.empty()) data += ",";
            data += item;
        }
        using namespace mount_abi;
        const filesystem_options& o = r.options;
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.source = keep(r.source.empty() ? r.fs_type : r.source);
        m.fs_type = keep(r.fs_type);
        m.target = target;
        m.point = mount_point::directory;
        m.attributes = attribute_bits(o.read_only, o.nosuid, o.nodev, o.noexec, o.nosymfollow);
        m.flags = attributes_to_ms(m.attributes);
        if (o.nodiratime) m.attributes |= attr_nodiratime, m.flags |= ms_nodiratime;
        switch (o.atime) {
            case access_time::kernel_default: break;
            case access_time::relative: m.flags |= ms_relatime; break;
            case access_time::none: m.attributes |= attr_noatime, m.flags |= ms_noatime; break;
            case access_time::strict: m.attributes |= attr_strictatime, m.flags |= ms_strictatime; break;
        }
        if (!data.empty()) m.legacy_data = keep_list({data});
        set_params(m, std::move(params));
        add(m, shown, r.fs_type);
    }

    template <class = void>
    void add_dev(const std::string& shown) {
        const auto at = [&](const char* name) { return shown == "/" ? "/" + std::string(name) : shown + "/" + name; };
        add_tmpfs(keep(shown), {.mode = 0755, .nosuid = true, .nodev = false, .noexec = true}, shown);
        for (const char* node : dev_nodes) {
            const std::string host = std::string("/dev/") + node;
            const auto st = host_stat(host);
            if (!st || !S_ISCHR(st->st_mode)) continue;  // a host without it: the sandbox goes without
            const std::string target = at(node);
            add_bind(host, keep(target), {.recursive = false, .nosuid = true, .noexec = true}, step::make_device,
                     target);
        }
        const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "fd"},
                                                             {"/proc/self/fd/0", "stdin"},
                                                             {"/proc/self/fd/1", "stdout"},
                                                             {"/proc/self/fd/2", "stderr"},
                                                             {"pts/ptmx", "ptmx"}};
        for (const auto& [text, name] : links) add_symlink(text, at(name));
        add_kernel_fs("devpts", keep(at("pts")), at("pts"));
        add_tmpfs(keep(at("shm")), {.mode = 01777}, at("shm"));
    }

    template <class = void>
    void add_symlink(const std::string& text, const std::string& target) {
        if (text.empty() || text.find('\0') != std::string::npos)
            throw error(step::make_symlink, EINVAL, target, "the symlink's text is empty or has a NUL byte");
        const std::string name = target.substr(target.rfind('/') + 1);
        if (name.empty() || name == "." || name == "..")
            throw error(step::make_symlink, EINVAL, target, "a symlink needs a name");
        mount_step m{};
        m.kind = mount_step_kind::make_symlink;
        m.step = step::make_symlink;
        m.source = keep(text);
        m.target = keep(target);
        add(m, target, "-> " + text);
    }

    // Both the new-API parameters and the mount(2) data of an overlay.
    template <class = void>
    void add_overlay(const char* target, const overlay_layers& layers, bool read_only, const std::string& shown) {
        if (layers.lower.empty()) throw error(step::mount, EINVAL, shown, "an overlay needs a lower layer");
        if (layers.upper.empty() != layers.work.empty())
            throw error(step::mount, EINVAL, shown, "an overlay's upper and work directories come together");
        if (layers.upper.empty() && layers.lower.size() < 2)
            throw error(step::mount, EINVAL, shown, "a read-only overlay (no upper layer) needs at least two lower layers");
        const auto layer = [&](const std::string& path, const char* role) {
            const std::string absolute = absolute_host_path(path);
            struct stat st {};
            if (const long r = sys::fstatat(AT_FDCWD, absolute.c_str(), &st, 0); r < 0)
                throw error(step::mount, static_cast<int>(-r), absolute, std::string("overlay ") + role);
            if (!S_ISDIR(st.st_mode))
                throw error(step::mount, ENOTDIR, absolute, std::string("overlay ") + role + " must be a directory");
            std::string canonical = canonical_host_path(absolute);
            if (canonical.find(',') != std::string::npos)
                throw error(step::mount, EINVAL, canonical, std::string("overlay ") + role + " paths cannot contain ','");
            return std::pair{canonical, st.st_dev};
        };
        // overlayfs splits lowerdir at ':' unless escaped with '\'.
        const auto escaped = [](const std::string& path) {
            std::string out;
            for (char c : path) {
                if (c == ':' || c == '\\') out.push_back('\\');
                out.push_back(c);
            }
            return out;
        };
        std::vector<mount_param> params;
        std::string lowerdir;
        for (const auto& lower : layers.lower) {
            const auto [path, dev] = layer(lower, "lower layer");
            if (layers.idmap_lower != idmapping::none) {
                // The idmapped copy goes over the layer's own host path in
                // the child's mount namespace, where the overlay then finds
                // it (overlayfs takes layers only from its own namespace).
                mount_step m{};
                m.kind = mount_step_kind::bind;
                m.step = step::idmap_mount;
                m.source = keep(path);
                m.target = m.source;
                m.host_target = true;
                m.recursive = true;
                m.detached_slot = static_cast<int>(out_.detached_.size());
                out_.detached_.push_back({m.source, true, 0, layers.idmap_lower == idmapping::required, path});
                add(m, path, "overlay lower layer");
            }
            // lowerdir+ (6.5+) takes one layer a call and any length; older
            // kernels reject it, and then mount(2) takes the whole list.
            params.push_back({"lowerdir+", keep(path), on_rejected::use_mount2, nullptr});
            if (!lowerdir.empty()) lowerdir.push_back(':');
            lowerdir.append(escaped(path));
        }
        // Built by appending: g++ 12 at -O3 reports -Wrestrict inside
        // libstdc++ for `"text" + std::string` chains (GCC bug 105329).
        std::string data = "lowerdir=";
        data.append(lowerdir);
        if (!layers.upper.empty()) {
            const auto [upper, upper_dev] = layer(layers.upper, "upper layer");
            const auto [work, work_dev] = layer(layers.work, "work directory");
            if (upper_dev != work_dev)
                throw error(step::mount, EXDEV, work, "an overlay's work directory must be on the upper layer's filesystem");
            params.push_back({"upperdir", keep(upper), on_rejected::use_mount2, nullptr});
            params.push_back({"workdir", keep(work), on_rejected::use_mount2, nullptr});
            data.append(",upperdir=").append(escaped(upper)).append(",workdir=").append(escaped(work));
        }
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.source = "overlay";
        m.fs_type = "overlay";
        m.target = target;
        m.point = mount_point::directory;
        m.attributes = read_only ? mount_abi::attr_rdonly : 0;
        m.flags = attributes_to_ms(m.attributes);
        m.legacy_data = keep_list({data});
        set_params(m, std::move(params));
        std::string what = "overlay of ";
        what.append(std::to_string(layers.lower.size())).append(" lower layer(s)");
        add(m, shown, std::move(what));
    }

    template <class = void>
    void add_request(const mount_request& request) {
        visit_request<void>([&](const auto& r) { add_one(r); }, request);
    }

    template <class = void>
    void add_one(const bind_request& r) {
        const std::string target = target_of(r.target, "bind");
        add_bind(r.source, keep(target), r.options, r.step, target);
    }
    template <class = void>
    void add_one(const tmpfs_request& r) {
        const std::string target = target_of(r.target, "tmpfs");
        add_tmpfs(keep(target), r.options, target);
    }
    template <class = void>
    void add_one(const proc_request& r) {
        const std::string target = target_of(r.target, "proc");
        add_proc(keep(target), r.options, target);
    }
    template <class = void>
    void add_one(const kernel_fs_request& r) {
        const std::string target = target_of(r.target, r.fs_type.c_str());
        add_kernel_fs(r.fs_type, keep(target), target);
    }
    template <class = void>
    void add_one(const dev_request& r) { add_dev(target_of(r.target, "dev")); }
    template <class = void>
    void add_one(const filesystem_request& r) {
        const std::string target = target_of(r.target, r.fs_type.c_str());
        add_filesystem(r, keep(target), target);
    }
    template <class = void>
    void add_one(const write_request& r) {
        const std::string target = target_of(r.target, "write", false);
        if (r.text.find('\0') != std::string::npos)
            throw error(step::write_file, EINVAL, target, "the text to write contains a NUL byte");
        mount_step m{};
        m.kind = mount_step_kind::write_file;
        m.step = step::write_file;
        m.source = keep(r.text);
        m.target = keep(target);
        add(m, target, "writing '" + r.text + "'");
    }
    template <class = void>
    void add_one(const overlay_request& r) {
        const std::string target = target_of(r.target, "overlay", false);
        if (target == "/" && !for_guard_) return;  // the root; placed by add_root
        add_overlay(keep(target), r.layers, false, target);
    }
    template <class = void>
    void add_one(const path_request& r) {
        const bool mounts = r.kind == mount_step_kind::mask || r.kind == mount_step_kind::read_only;
        const std::string target = target_of(r.target, "path", mounts);
        if (r.mode > 07777) throw error(step::make_mount_point, EINVAL, target, "mode " + octal(r.mode) + " is not a mode");
        mount_step m{};
        m.kind = r.kind;
        m.target = keep(target);
        m.mode = r.mode;
        switch (r.kind) {
            case mount_step_kind::make_directory:
            case mount_step_kind::make_file:
                m.step = step::make_mount_point;
                break;
            case mount_step_kind::read_only:
                m.step = step::set_mount_attributes;
                m.recursive = true;
                m.attributes = mount_abi::attr_rdonly;
                break;
            default:
                m.step = step::mount;
                break;
        }
        add(m, target, r.kind == mount_step_kind::mask ? "mask" : "");
    }
    template <class = void>
    void add_one(const symlink_request& r) { add_symlink(r.text, target_of(r.target, "symlink", false)); }
    template <class = void>
    void add_one(const attributes_request& r) {
        const std::string target = target_of(r.target, "attributes", false);
        mount_step m{};
        m.kind = mount_step_kind::set_attributes;
        m.step = step::set_mount_attributes;
        m.target = keep(target);
        m.recursive = r.attrs.recursive;
        m.attributes =
            attribute_bits(r.attrs.read_only, r.attrs.nosuid, r.attrs.nodev, r.attrs.noexec, r.attrs.nosymfollow);
        if (m.attributes == 0) throw error(step::set_mount_attributes, EINVAL, target, "no attribute to set");
        add(m, target);
    }

    // Guards take host paths: absolute, symlinks resolved, and existing.
    // In a plan, a mount over "/" itself would sit on top of the new root
    // that pivot_root enters; the root is the rootfs (or an overlay at "/").
    template <class = void>
    std::string target_of(const std::string& target, const char* what, bool mounts = true) {
        if (!for_guard_) {
            std::string in_root = root_target(target, what);
            if (mounts && names_the_root(in_root))
                throw error(step::prepare, EINVAL, target,
                            std::string(what) + " over the new root itself: give the root as rootfs, or an overlay at /");
            return in_root;
        }
        if (target.empty()) throw error(step::resolve_path, EINVAL, target, std::string(what) + ": the target is empty");
        if (targets_elsewhere_) {
            if (target.front() != '/')
                throw error(step::resolve_path, EINVAL, target, std::string(what) + ": the target must be absolute");
            return target;
        }
        const std::string absolute = absolute_host_path(target);
        struct stat st {};
        if (const long r = sys::fstatat(AT_FDCWD, absolute.c_str(), &st, 0); r < 0)
            throw error(step::resolve_path, static_cast<int>(-r), absolute, "mount target");
        return canonical_host_path(absolute);
    }

    template <class = void>
    void add_propagation(propagation_mode mode) {
        mount_step m{};
        m.kind = mount_step_kind::set_propagation;
        m.step = step::set_propagation;
        m.flags = mode == propagation_mode::slave ? mount_abi::ms_slave : mount_abi::ms_private;
        struct stat st {};
        if (sys::fstatat(AT_FDCWD, "/proc/self/ns/mnt", &st, 0) == 0) m.parent_mount_ns = st.st_ino;
        add(m, "/", mode == propagation_mode::slave ? "slave" : "private");
    }

    template <class Unused = void>
    void add_root(const plan& p, const std::vector<skeleton>& skeletons) {
        const overlay_request* root_overlay = nullptr;
        for (const auto& request : plan_requests<Unused>(p))
            if (const auto* o = request_if<overlay_request>(request); o && root_target(o->target, "overlay") == "/") {
                if (root_overlay) throw error(step::mount, EINVAL, "/", "two overlays at /");
                root_overlay = o;
            }
        if (root_overlay) {
            if (!p.rootfs.empty())
                throw error(step::mount, EINVAL, p.rootfs, "give either a rootfs or an overlay at /, not both");
            out_.root_ = "/";
            add_overlay(nullptr, root_overlay->layers, p.read_only_root, "/");
            return;
        }
        std::string source = "/";
        if (!p.rootfs.empty()) {
            const auto st = host_stat(absolute_host_path(p.rootfs));
            if (!st) throw error(step::bind_mount, ENOENT, p.rootfs, "the root filesystem does not exist");
            if (!S_ISDIR(st->st_mode)) throw error(step::bind_mount, ENOTDIR, p.rootfs, "the root filesystem must be a directory");
            source = canonical_host_path(p.rootfs);
        }
        out_.root_ = source;
        if (!skeletons.empty() && skeletons.front().target == "/") {
            // A skeleton of the whole root: the tmpfs is the new root, and
            // the root's entries are bound into it (add_skeletons).
            add_tmpfs(nullptr, skeleton_tmpfs(skeletons.front()), "/");
            out_.info_.back().detail = "the new root: a skeleton of " + source;
            return;
        }
        add_bind(source, nullptr,
                 {.read_only = p.read_only_root, .recursive = true, .nosuid = p.nosuid_root, .nodev = p.nodev_root,
                  .idmap = p.idmap_root},
                 step::bind_mount, source);
        out_.info_.back().detail = "the new root";
    }

    template <class = void>
    static tmpfs_options skeleton_tmpfs(const skeleton& s) {
        return {.mode = s.mode, .nosuid = true, .nodev = true};
    }

    // Right after the root, before any other mount, so that none is hidden
    // under a skeleton: each skeleton's tmpfs (the root's is made by
    // add_root), then the entries of the directory it covers, bound back
    // recursively with the root's attributes, or made again as symlinks.
    template <class = void>
    void add_skeletons(const plan& p, const std::vector<skeleton>& skeletons) {
        if (skeletons.empty()) return;
        const std::string source = out_.root_;
        bool idmap_each = false;
        if (p.idmap_root != idmapping::none && source != "/") {
            // One idmapped copy of the rootfs over its own host path in the
            // child's namespace (as for an overlay's layers): the entries'
            // binds, made from host paths below it, inherit its idmap, so
            // the parent makes one detached mount, not one an entry.
            mount_step m{};
            m.kind = mount_step_kind::bind;
            m.step = step::idmap_mount;
            m.source = keep(source);
            m.target = m.source;
            m.host_target = true;
            m.recursive = true;
            m.detached_slot = static_cast<int>(out_.detached_.size());
            out_.detached_.push_back({m.source, true, 0, p.idmap_root == idmapping::required, source});
            add(m, source, "the root's idmapped copy, for the skeletons");
        } else {
            idmap_each = p.idmap_root != idmapping::none;
        }
        const bind_options entry_options{.read_only = p.read_only_root,
                                         .recursive = true,
                                         .nosuid = p.nosuid_root,
                                         .nodev = p.nodev_root,
                                         .optional = true,
                                         .idmap = idmap_each ? p.idmap_root : idmapping::none};
        for (const auto& s : skeletons) {
            const std::string base = s.target == "/" ? std::string() : s.target;
            if (!base.empty()) {
                add_tmpfs(keep(s.target), skeleton_tmpfs(s), s.target);
                out_.info_.back().detail = "a skeleton of " + s.source + ", for a missing mount point";
            }
            for (const auto& e : s.entries) {
                const std::string target = base + "/" + e.name;
                if (e.symlink) add_symlink(e.text, target);
                else add_bind((s.source == "/" ? std::string() : s.source) + "/" + e.name, keep(target), entry_options,
                              step::bind_mount, target);
            }
        }
    }

    // After every mount point is made: a read-only root's skeletons become
    // read-only too, each tmpfs alone (the binds in it keep their own).
    template <class = void>
    void seal_skeletons(const plan& p, const std::vector<skeleton>& skeletons) {
        if (!p.read_only_root) return;
        for (const auto& s : skeletons) {
            if (!s.seal) continue;
            mount_step m{};
            m.kind = mount_step_kind::set_attributes;
            m.step = step::set_mount_attributes;
            m.target = keep(s.target);
            m.recursive = false;
            m.attributes = mount_abi::attr_rdonly;
            add(m, s.target, "the skeleton, read-only as the root");
        }
    }

    template <class = void>
    void add_deferred() {
        for (const auto& d : deferred_) add_one(path_request{d.first, d.second});
        deferred_.clear();
    }

    template <class = void>
    void add_entry(root_entry entry) {
        mount_step m{};
        m.kind = entry == root_entry::pivot_root ? mount_step_kind::pivot_root : mount_step_kind::change_root;
        m.step = entry == root_entry::pivot_root ? step::pivot_root : step::change_root;
        add(m, out_.root_);
    }

    template <class = void>
    prepared_plan take() { return std::move(out_); }

private:
    bool for_guard_;
    bool targets_elsewhere_;
    prepared_plan out_;
    std::vector<std::pair<mount_step_kind, std::string>> deferred_;
};

// Where a request makes a mount point (see made_point); nothing for those
// that make none (mask, read_only and set_attributes skip a missing path)
// and for a target that the request's own step refuses.
template <class Request = mount_request>
inline std::optional<made_point> made_point_of(const Request& request) {
    std::string target;
    bool mounts = true;
    if (const auto* b = request_if<bind_request>(request)) target = b->target;
    else if (const auto* t = request_if<tmpfs_request>(request)) target = t->target;
    else if (const auto* pr = request_if<proc_request>(request)) target = pr->target;
    else if (const auto* k = request_if<kernel_fs_request>(request)) target = k->target;
    else if (const auto* g = request_if<filesystem_request>(request)) target = g->target;
    else if (const auto* d = request_if<dev_request>(request)) target = d->target;
    else if (const auto* o = request_if<overlay_request>(request)) target = o->target;
    else if (const auto* l = request_if<symlink_request>(request)) target = l->target, mounts = false;
    else if (const auto* pa = request_if<path_request>(request);
             pa && (pa->kind == mount_step_kind::make_directory || pa->kind == mount_step_kind::make_file))
        target = pa->target, mounts = false;
    else return std::nullopt;
    if (target.empty() || target.find('\0') != std::string::npos || target.size() >= mount_path_max) return std::nullopt;
    target = squeeze_slashes(target[0] == '/' ? target : "/" + target);
    if (names_the_root(target)) return std::nullopt;
    return made_point{std::move(target), mounts};
}

// The skeletons a plan's missing mount points need: none unless the plan
// asks for them, and none for an overlay root (its upper layer takes them).
template <class Unused = void>
inline std::vector<skeleton> plan_skeletons(const plan& p) {
    if (p.missing_points != missing_mount_points::make_in_skeleton) return {};
    std::vector<made_point> points;
    for (const auto& request : plan_requests<Unused>(p)) {
        if (const auto* o = request_if<overlay_request>(request); o && names_the_root(squeeze_slashes(o->target)))
            return {};
        if (auto point = made_point_of(request)) points.push_back(std::move(*point));
    }
    if (points.empty()) return {};
    return find_skeletons(p.rootfs.empty() ? std::string("/") : canonical_host_path(p.rootfs), points);
}

// What an errno means for a step, where the bare text would puzzle.
template <class = void>
inline std::string mount_hint(const mount_step& s, int error) {
    const std::string_view fs = s.fs_type ? s.fs_type : "";
    if (s.kind == mount_step_kind::set_propagation && error == EPERM)
        return "refusing to change the caller's own mount namespace: run the plan in a new one (CLONE_NEWNS)";
    if (s.kind == mount_step_kind::pivot_root && error == EINVAL)
        return "the new root or its parent mount is shared, or the root is not a mount point";
    if (error == EPERM && fs == "proc")
        return "a fresh proc needs CAP_SYS_ADMIN over the pid namespace (in a user namespace: one of its own, and a "
               "/proc with nothing mounted over its parts)";
    if (error == EPERM && fs == "sysfs") return "sysfs in a user namespace needs a network namespace of its own";
    if (error == EPERM && fs == "mqueue") return "mqueue in a user namespace needs an IPC namespace of its own";
    if ((error == EPERM || error == EINVAL) && fs == "overlay")
        return "overlayfs in a user namespace needs Linux 5.11 or later";
    if (error == EROFS) return "the mount point is missing and the filesystem it would go in is read-only";
    if (error == ELOOP) return "a symlink loop, or a /proc magic link, on the way; neither can be followed inside the root";
    if (error == ENOSYS) return "the kernel (or a seccomp filter) refuses this call";
    return {};
}

}  // namespace detail

template <class Unused>
inline prepared_plan plan::prepare() const {
    detail::step_builder builder(false);
    builder.add_propagation(propagation);
    const auto skeletons = detail::plan_skeletons(*this);
    builder.add_root(*this, skeletons);
    builder.add_skeletons(*this, skeletons);
    for (const auto& request : detail::plan_requests<Unused>(*this)) builder.add_request(request);
    builder.add_deferred();
    builder.seal_skeletons(*this, skeletons);
    builder.add_entry(entry);
    return builder.take();
}

template <class>
inline ctr::error prepared_plan::error_for(std::size_t index, int errno_value,
                                           const ctr::detail::mount_context* ctx) const {
    if (index >= steps_.size()) return ctr::error(step::mount, errno_value, {}, "no such mount step");
    const auto& s = steps_[index];
    const auto& info = info_[index];
    ctr::step which = s.step;
    if (ctx && ctx->failed_step != ctr::step::none) which = ctx->failed_step;
    std::string detail = info.detail;
    std::string extra;
    if (ctx && ctx->message && ctx->message[0] != '\0') extra = ctx->message;
    else extra = detail::mount_hint(s, errno_value);
    if (!extra.empty()) detail += (detail.empty() ? "" : "; ") + extra;
    return ctr::error(which, errno_value, info.path, detail);
}

// Owns one mount in the current process's mount namespace and unmounts it
// when it ends. Move-only; release() keeps the mount. A recursive bind is
// detached lazily (MNT_DETACH), since its submounts would make a plain
// unmount fail with EBUSY; others are unmounted plainly unless
// unmount_lazily() was asked for.
template <class>
class [[nodiscard]] basic_guard {
public:
    basic_guard() noexcept = default;
    basic_guard(basic_guard&& other) noexcept
        : target_(std::move(other.target_)),
          mount_id_(other.mount_id_),
          flags_(other.flags_),
          active_(std::exchange(other.active_, false)) {}
    basic_guard& operator=(basic_guard&& other) noexcept {
        if (this != &other) {
            reset();
            target_ = std::move(other.target_);
            mount_id_ = other.mount_id_;
            flags_ = other.flags_;
            active_ = std::exchange(other.active_, false);
        }
        return *this;
    }
    basic_guard(const basic_guard&) = delete;
    basic_guard& operator=(const basic_guard&) = delete;
    ~basic_guard() { reset(); }

    // Where the mount is (absolute, symlinks resolved).
    template <class = void>
    const std::string& target() const noexcept { return target_; }
    template <class = void>
    bool active() const noexcept { return active_; }

    template <class = void>
    basic_guard& unmount_lazily(bool lazily = true) noexcept {
        flags_ = lazily ? ctr::detail::mount_abi::mnt_detach : 0;
        return *this;
    }

    // Unmounts now; throws ctr::error(step::unmount) on failure, e.g. EBUSY
    // while a process works inside, or when a later mount covers this one.
    template <class = void>
    void unmount() {
        if (!active_) return;
        bool covered = false;
        const long r = unmount_now(flags_, covered);
        if (r < 0)
            throw ctr::error(step::unmount, static_cast<int>(-r), target_,
                             covered ? "another mount now covers it" : std::string_view{});
    }

    // Keeps the mount; the guard no longer owns it. Returns its target.
    [[nodiscard]] std::string release() noexcept {
        active_ = false;
        return std::move(target_);
    }

    // Best effort: unmounts, lazily if a plain unmount is refused as busy.
    template <class = void>
    void reset() noexcept {
        if (!active_) return;
        bool covered = false;
        long r = unmount_now(flags_, covered);
        if (r == -EBUSY && !covered && flags_ == 0) r = unmount_now(ctr::detail::mount_abi::mnt_detach, covered);
        active_ = false;
    }

    // For the factories below.
    template <class = void>
    static basic_guard adopt(std::string target, int flags) {
        basic_guard g;
        g.target_ = std::move(target);
        g.mount_id_ = mount_id(g.target_);
        g.flags_ = flags;
        g.active_ = true;
        return g;
    }

private:
    // The id of the mount on top at `path`; 0 when statx cannot say (before 5.8).
    template <class = void>
    static std::uint64_t mount_id(const std::string& path) noexcept {
        alignas(8) unsigned char buffer[256] = {};
        if (ctr::detail::sys::statx(AT_FDCWD, path.c_str(), 0, ctr::detail::mount_abi::statx_mnt_id, buffer) < 0) return 0;
        std::uint32_t mask = 0;
        __builtin_memcpy(&mask, buffer, sizeof mask);
        if ((mask & ctr::detail::mount_abi::statx_mnt_id) == 0) return 0;
        std::uint64_t id = 0;
        __builtin_memcpy(&id, buffer + 144, sizeof id);  // stx_mnt_id
        return id;
    }

    template <class = void>
    long unmount_now(int flags, bool& covered) noexcept {
        if (mount_id_ != 0) {
            const std::uint64_t now = mount_id(target_);
            if (now != 0 && now != mount_id_) {
                // Another mount is on top: unmounting by path would take
                // that one. Leave both; the caller has mounts out of order.
                covered = true;
                return -EBUSY;
            }
        }
        const long r = ctr::detail::sys::umount2(target_.c_str(), flags);
        if (r == 0) active_ = false;
        return r;
    }

    std::string target_;
    std::uint64_t mount_id_ = 0;
    int flags_ = 0;
    bool active_ = false;
};
using guard = basic_guard<void>;

namespace detail {

// Runs one operation as a guard: the same steps a plan's child runs, with
// host paths for targets.
// A template of the request's type: the request goes to the builder as it
// is, without a mount_request around it.
template <class Request>
inline guard run_guard(const Request& request, int unmount_flags) {
    step_builder builder(true);
    builder.add_one(request);
    const prepared_plan prepared = builder.take();
    char message[256] = {};
    mount_context ctx{};
    ctx.host_paths = true;
    ctx.message = message;
    ctx.message_size = sizeof message;
    std::size_t failed = 0;
    const auto steps = prepared.steps();
    if (steps.empty()) throw error(step::prepare, ENOENT, {}, "nothing to mount");
    if (const long r = run_mount_steps(steps.data(), steps.size(), ctx, failed); r < 0)
        throw prepared.error_for(failed, static_cast<int>(-r), &ctx);
    return guard::adopt(steps.back().target, unmount_flags);
}

}  // namespace detail

// Mounts in the current mount namespace, each owned by the guard returned.
// Targets are host paths that must exist. Call them in a mount namespace of
// the caller's own (ns::scope, unshare(CLONE_NEWNS)) unless changing the
// host's mount table is the point.
template <class = void>
inline guard bind(std::string source, std::string target, bind_options options = {}) {
    const int flags = options.recursive ? ctr::detail::mount_abi::mnt_detach : 0;
    return detail::run_guard(detail::bind_request{std::move(source), std::move(target), options}, flags);
}
template <class = void>
inline guard tmpfs(std::string target, tmpfs_options options = {}) {
    return detail::run_guard(detail::tmpfs_request{std::move(target), std::move(options)}, 0);
}
template <class = void>
inline guard proc(std::string target, proc_options options = {}) {
    return detail::run_guard(detail::proc_request{std::move(target), options}, 0);
}
template <class = void>
inline guard sysfs(std::string target) {
    return detail::run_guard(detail::kernel_fs_request{"sysfs", std::move(target)}, 0);
}
template <class = void>
inline guard devpts(std::string target) {
    return detail::run_guard(detail::kernel_fs_request{"devpts", std::move(target)}, 0);
}
template <class = void>
inline guard mqueue(std::string target) {
    return detail::run_guard(detail::kernel_fs_request{"mqueue", std::move(target)}, 0);
}
template <class = void>
inline guard overlay(std::string target, overlay_layers layers) {
    return detail::run_guard(detail::overlay_request{std::move(target), std::move(layers)}, 0);
}

}  // namespace ctr::mount

namespace ctr::detail {

// Runs a prepared plan in the calling process: for tests, in a forked child
// that has entered a mount namespace of its own (unshare(CLONE_NEWNS), and
// CLONE_NEWUSER when not root). The plan's first step refuses to run in the
// namespace prepare() was called in. Returns 0, or -errno with `failed` the
// index of the failing step (prepared_plan::error_for turns it into the
// ctr::error). Async-signal-safe.
CTR_CHILD_CODE inline long run_plan_in_current_process(const ctr::mount::prepared_plan& plan, mount_context& ctx,
                                                       std::size_t& failed) noexcept {
    const auto steps = plan.steps();
    return run_mount_steps(steps.data(), steps.size(), ctx, failed);
}

}  // namespace ctr::detail
// end ctr/mount.hpp
// begin ctr/net.hpp
// ctr::net: a sandbox's network. A veth pair joins the caller's network
// namespace (the host side) to the sandbox's new one; each end gets an
// address from a /30, and the sandbox a default route through the host end.
// Published ports (port_forward.hpp) then reach services inside.
//
// spawn does all of it with options::network = net::veth{}; the pieces are
// public for callers that hold namespaces themselves.

// begin ctr/detail/child_program.hpp
// The child side of a launch: everything that runs between clone and exec.
//
// The parent turns the options into a child_program, a flat list of
// operations over data it prepared; the child only walks that list. This is
// the one place where child code lives. Every function here is
// async-signal-safe: no allocation, no locks, no exceptions, no libc calls
// that touch errno (the child shares the parent's memory and TLS), only
// detail::sys wrappers. Later capabilities (namespaces, mounts, cgroups,
// seccomp) add operation codes here, so they run as steps of the same launch.


#include <linux/close_range.h>
#include <net/route.h>
#include <netinet/in.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <linux/futex.h>

#include <cstddef>
#include <cstdint>


namespace ctr::detail {

enum class child_op_code : std::uint8_t {
    reset_signals,        // every disposition back to SIG_DFL
    die_with_parent,      // a = signal; b = parent pid to compare with (0: skip the check)
    die_with_owner,       // SIGKILL at the parent's death; a = the owner's pidfd: end at once if it has ended
    new_session,          // setsid
    set_umask,            // a = mask
    set_rlimit,           // a = resource, data = const rlimit*
    dup_above,            // a = source fd, b = lowest allowed number; the new fd goes to scratch[c]
    dup_to,               // scratch[c] (or a, when c < 0) becomes fd b, without close-on-exec
    clear_cloexec,        // a = fd
    cloexec_range,        // fds a..b (b = -1: no end) get close-on-exec; they close at exec
    set_groups,           // a = count, data = const gid_t*
    set_gid,              // a = gid
    set_uid,              // a = uid
    change_directory,     // data = const char*
    wait_for_parent,      // a = fd to read one byte from; EOF means the parent gave up
    close_fd,             // a = fd (the child's copy of the parent's end of the sync channel)
    restore_signal_mask,  // unblock everything the parent blocked around clone
    exec,                 // data = const char* const* candidates (null-terminated)
    join_namespace,       // setns(a, b): a = fd, b = CLONE_NEW* type (0 for a pidfd)
    unshare,              // a = CLONE_* flags
    set_hostname,         // data = name, a = length
    set_domainname,       // data = name, a = length
    write_file,           // data = path, data2 = contents, a = length
    bring_up_loopback,    // set IFF_UP on "lo" of the current network namespace
    become_init,          // data = init_state*: the rest of the program runs in a child; this process reaps
    set_controlling_terminal,  // TIOCSCTTY on fd a (the session leader takes its terminal)
    hold,                 // close the fd ranges of data (b pairs), tell the parent "held", read one byte from fd a
    call,                 // run(op): a layer's own step (capabilities, seccomp, ...), planned in its header
};

struct child_op;
// A layer's step in the child: returns 0 or -errno. Must be async-signal-safe
// and marked CTR_CHILD_CODE; it reads only op.a/b/c/data/data2, which the
// parent prepared and keeps alive until the child has exec'd.
using child_function = long (*)(const child_op& op) noexcept;

struct child_op {
    child_op_code code;
    ctr::step step;
    long a = 0;
    long b = 0;
    long c = -1;
    const void* data = nullptr;
    const void* data2 = nullptr;
    child_function run = nullptr;  // with child_op_code::call
};

// What a failed child sends the parent before it exits.
struct child_report {
    std::uint32_t op_index;
    std::int32_t error;
    std::int32_t detail;  // which part of the step failed, where the step has parts (an interface's setup)
};

// The plain data the child reads. Built and owned by the parent, which keeps
// it alive until the child has exec'd or exited.
struct child_view {
    const child_op* ops = nullptr;
    std::size_t op_count = 0;
    int report_fd = -1;          // write end of the close-on-exec error channel
    int* scratch = nullptr;      // fds made by dup_above
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    // Where a step notes which of its parts failed, for the report. The
    // child writes it in its own memory (shared or copied) and reads it back
    // before it reports; the parent never reads it there.
    int* failure_detail = nullptr;
};

inline constexpr int child_failed_exit_code = 127;

// The op index of the report a held command sends (options::start_gate):
// not a failure, the sign that every step before exec has succeeded.
inline constexpr std::uint32_t held_report_index = 0xffffffffU;

// Shared between the parent, the pid 1 of a new pid namespace (or the time
// namespace's supervisor) and the command it starts. It lives in a
// MAP_SHARED page (see launch_shared), so every one of them sees the same
// words whether or not it shares the parent's memory. The parent reads the
// results only after it has reaped pid 1.
struct init_state {
    void* command_stack_top = nullptr;  // where the command's clone runs until exec
    int (*command_entry)(void*) = nullptr;  // child_command_main; set by the parent
    std::size_t next_op = 0;            // the command continues the program here
    const child_view* view = nullptr;
    // The caller's argv and environment strings (from /proc/self/stat). An
    // init with a copy of the caller's memory overwrites them in its copy,
    // so /proc/1/cmdline and /proc/1/environ show nothing of the caller. Zero
    // when the init shares the caller's memory (then it must not write).
    std::uintptr_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
    // 0 until pid 1 has sealed itself (no fds, not dumpable, neutral name);
    // the command waits on it (a futex) before it runs any of its steps.
    std::uint32_t command_gate = 0;
    // options::die_with_owner: a pidfd of the owner (the caller's process),
    // readable once the owner has ended, and the caller's /proc, where a
    // supervisor that is not pid 1 finds its children; -1 when not asked.
    // seal_init keeps both open.
    int owner_pidfd = -1;
    int proc_fd = -1;
    long supervisor_pid = 0;  // as the supervisor sees itself; the command checks its parent against it
    // Written by pid 1 before it exits.
    int command_wait_status = -1;       // as wait4 gives it; -1: the command never ran
    int others_were_running = 0;        // other processes were left in the namespace
};

// The name the init shows in /proc/1/comm and /proc/1/cmdline.
inline constexpr char init_name[] = "ctr-init";

// Async-signal-safe.
CTR_CHILD_CODE inline long child_reset_signals() noexcept {
    sys::kernel_sigaction current{};
    sys::kernel_sigaction default_action{};
    default_action.handler = SIG_DFL;
    for (int signal = 1; signal <= 64; ++signal) {
        if (signal == SIGKILL || signal == SIGSTOP) continue;
        if (long r = sys::rt_sigaction(signal, nullptr, &current); r < 0) {
            if (r == -EINVAL) continue;  // a number this kernel does not have
            return r;
        }
        if (current.handler == SIG_DFL) continue;
        if (long r = sys::rt_sigaction(signal, &default_action, nullptr); r < 0) return r;
    }
    return 0;
}

// Marks fds [first, last] close-on-exec, or closes them.
// close_range(CLOSE_RANGE_CLOEXEC) needs Linux 5.11, close_range 5.9; before
// that, walk /proc/self/fd, and without /proc, try every number up to the fd
// limit. Async-signal-safe.
CTR_CHILD_CODE inline long child_fd_range(unsigned first, unsigned last, bool close) noexcept {
    long r = sys::close_range(first, last, close ? 0U : CLOSE_RANGE_CLOEXEC);
    if (r != -ENOSYS && r != -EINVAL) return r;
    const long dir = sys::openat(AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        alignas(8) char buffer[1024];
        for (;;) {
            const long n = sys::getdents64(static_cast<int>(dir), buffer, sizeof buffer);
            if (n < 0) {
                sys::close(static_cast<int>(dir));
                return n;
            }
            if (n == 0) break;
            for (long offset = 0; offset < n;) {
                const auto* entry = reinterpret_cast<const char*>(buffer + offset);
                const unsigned short length = *reinterpret_cast<const unsigned short*>(entry + 16);
                const char* name = entry + 19;
                unsigned fd = 0;
                bool numeric = *name != '\0';
                for (const char* p = name; *p; ++p) {
                    if (*p < '0' || *p > '9') numeric = false;
                    fd = fd * 10 + static_cast<unsigned>(*p - '0');
                }
                if (numeric && fd >= first && fd <= last && fd != static_cast<unsigned>(dir)) {
                    if (close) sys::close(static_cast<int>(fd));
                    else sys::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
                }
                offset += length;
            }
        }
        sys::close(static_cast<int>(dir));
        return 0;
    }
    rlimit limit{};
    raw::call(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &limit);
    const unsigned end = limit.rlim_cur < last ? static_cast<unsigned>(limit.rlim_cur) : last;
    for (unsigned fd = first; fd < end; ++fd) {
        if (close) sys::close(static_cast<int>(fd));
        else sys::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

// Sets IFF_UP on the loopback device of the current network namespace, as
// `ip link set lo up` does. Async-signal-safe.
CTR_CHILD_CODE inline long child_bring_up_loopback() noexcept {
    const long fd = sys::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fd;
    ifreq request{};
    request.ifr_name[0] = 'l';
    request.ifr_name[1] = 'o';
    long r = sys::ioctl(static_cast<int>(fd), SIOCGIFFLAGS, reinterpret_cast<long>(&request));
    if (r >= 0) {
        request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
        r = sys::ioctl(static_cast<int>(fd), SIOCSIFFLAGS, reinterpret_cast<long>(&request));
    }
    sys::close(static_cast<int>(fd));
    return r < 0 ? r : 0;
}

// An interface to configure from inside its network namespace: the end of a
// veth pair that the parent moved into the child's namespace. Plain data: the
// parent sends it through the sync pipe, because the addresses are chosen
// after the clone and a child with copied memory would not see them.
struct interface_setup {
    char name[IFNAMSIZ] = {};
    in_addr address{};
    in_addr netmask{};
    in_addr gateway{};        // 0.0.0.0: no default route
    unsigned mtu = 0;         // 0: leave the kernel's
};

// Fills a sockaddr with an AF_INET address. Async-signal-safe.
CTR_CHILD_CODE inline void set_inet_address(sockaddr& out, in_addr value) noexcept {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr = value;
    __builtin_memcpy(&out, &in, sizeof in);
}

// Sets the address, netmask and MTU, brings the interface up and adds the
// default route, like `ip addr add`, `ip link set up`, `ip route add default
// via`. ioctls on a datagram socket need no netlink buffers, so this runs in
// the child as well as in the parent (net::configure_interface). Returns the
// failed part's number in *failed_part (0 socket, 1 address, 2 netmask, 3 mtu,
// 4 up, 5 route) so the parent can name it. Async-signal-safe.
CTR_CHILD_CODE inline long apply_interface_setup(const interface_setup& setup, int* failed_part) noexcept {
    *failed_part = 0;
    const long fd = sys::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fd;
    const int s = static_cast<int>(fd);
    ifreq request{};
    for (std::size_t i = 0; i + 1 < IFNAMSIZ && setup.name[i]; ++i) request.ifr_name[i] = setup.name[i];
    long r = 0;
    set_inet_address(request.ifr_addr, setup.address);
    *failed_part = 1;
    r = sys::ioctl(s, SIOCSIFADDR, reinterpret_cast<long>(&request));
    if (r >= 0) {
        *failed_part = 2;
        set_inet_address(request.ifr_netmask, setup.netmask);
        r = sys::ioctl(s, SIOCSIFNETMASK, reinterpret_cast<long>(&request));
    }
    if (r >= 0 && setup.mtu != 0) {
        *failed_part = 3;
        request.ifr_mtu = static_cast<int>(setup.mtu);
        r = sys::ioctl(s, SIOCSIFMTU, reinterpret_cast<long>(&request));
    }
    if (r >= 0) {
        *failed_part = 4;
        r = sys::ioctl(s, SIOCGIFFLAGS, reinterpret_cast<long>(&request));
        if (r >= 0) {
            request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
            r = sys::ioctl(s, SIOCSIFFLAGS, reinterpret_cast<long>(&request));
        }
    }
    if (r >= 0 && setup.gateway.s_addr != 0) {
        *failed_part = 5;
        rtentry route{};
        set_inet_address(route.rt_dst, in_addr{});
        set_inet_address(route.rt_genmask, in_addr{});
        set_inet_address(route.rt_gateway, setup.gateway);
        route.rt_flags = RTF_UP | RTF_GATEWAY;
        r = sys::ioctl(s, SIOCADDRT, reinterpret_cast<long>(&route));
    }
    sys::close(s);
    return r < 0 ? r : 0;
}

// Reads the interface_setup the parent wrote after the go byte, then applies
// it; *failed_part says which part failed. Async-signal-safe.
CTR_CHILD_CODE inline long child_configure_interface(int sync_fd, int* failed_part) noexcept {
    interface_setup setup;
    std::size_t got = 0;
    while (got < sizeof setup) {
        const long n = sys::read(sync_fd, reinterpret_cast<char*>(&setup) + got, sizeof setup - got);
        if (n == -EINTR) continue;
        if (n <= 0) return n < 0 ? n : -EPIPE;
        got += static_cast<std::size_t>(n);
    }
    return apply_interface_setup(setup, failed_part);
}

// Opens, writes and closes a file, e.g. /proc/self/timens_offsets.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_write_file(const char* path, const char* contents, std::size_t length) noexcept {
    const long fd = sys::openat(AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fd;
    const long written = sys::write(static_cast<int>(fd), contents, length);
    sys::close(static_cast<int>(fd));
    if (written < 0) return written;
    return static_cast<std::size_t>(written) == length ? 0 : -EIO;
}

// Tries each candidate path in turn, as execvp does with PATH: a missing
// file moves on, a permission problem is remembered. Async-signal-safe.
CTR_CHILD_CODE inline long child_exec(const char* const* candidates, char* const* argv,
                                      char* const* envp) noexcept {
    long last = -ENOENT;
    bool permission_denied = false;
    for (const char* const* candidate = candidates; *candidate; ++candidate) {
        last = sys::execve(*candidate, argv, envp);
        if (last == -EACCES) {
            // A PATH directory this process cannot search hides whatever is
            // in it, as a shell's own search sees it (the caller's PATH may
            // name directories of its user that the sandbox's user cannot
            // enter): only a file that is there but not executable counts.
            struct stat found {};
            if (sys::fstatat(AT_FDCWD, *candidate, &found, 0) == 0) permission_denied = true;
        } else if (last != -ENOENT && last != -ENOTDIR && last != -ESTALE) {
            return last;
        }
    }
    return permission_denied ? -EACCES : last;
}

// Whether the process behind `pidfd` has ended (every one of its threads):
// a pidfd polls readable then. Async-signal-safe.
CTR_CHILD_CODE inline bool owner_has_ended(int pidfd) noexcept {
    pollfd owner{pidfd, POLLIN, 0};
    const timespec now{};
    return sys::ppoll(&owner, 1, &now) > 0;
}

// Kills every descendant of this process, which is a child subreaper (so
// orphans of the sandbox come back to it), and reaps them: the children
// listed in /proc/<pid>/task/<tid>/children are killed, reaped, and the
// list read again until it is empty, since a process's children become
// ours only when it dies. Without that file (no /proc, or a kernel without
// CONFIG_PROC_CHILDREN) only `command` and its process group are killed.
// Returns whether anything besides `command` was found. Async-signal-safe.
CTR_CHILD_CODE inline bool kill_descendants(int proc_fd, long command) noexcept {
    bool others = false;
    if (command > 0) {
        sys::kill(static_cast<int>(command), SIGKILL);
        sys::kill(-static_cast<int>(command), SIGKILL);
    }
    // Bounded only so that a fork bomb outpacing the kills cannot hold the
    // supervisor forever; each round kills every child there is.
    for (int round = 0; round < 100000; ++round) {
        int status = 0;
        while (sys::wait4(-1, &status, WNOHANG) > 0) {
        }
        const long fd = proc_fd < 0 ? -EBADF : sys::openat(proc_fd, "thread-self/children", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        long found = 0;
        char text[4096];
        long pid = 0;
        bool in_number = false;
        for (;;) {
            const long n = sys::read(static_cast<int>(fd), text, sizeof text);
            if (n == -EINTR) continue;
            if (n <= 0) break;
            // Numbers separated by spaces; a number is complete at the
            // next non-digit (the file ends with one).
            for (long i = 0; i < n; ++i) {
                if (text[i] >= '0' && text[i] <= '9') {
                    pid = pid * 10 + (text[i] - '0');
                    in_number = true;
                    continue;
                }
                if (!in_number) continue;
                if (pid != command) others = true;
                sys::kill(static_cast<int>(pid), SIGKILL);
                ++found;
                pid = 0;
                in_number = false;
            }
        }
        sys::close(static_cast<int>(fd));
        if (found == 0) break;
        // One of them dies (each has SIGKILL pending); its children are
        // ours now, so the list is read again.
        if (sys::wait4(-1, &status, 0) == -ECHILD) break;
    }
    return others;
}

// Runs one operation; returns 0 or -errno. Async-signal-safe.
CTR_CHILD_CODE inline long child_run_op(const child_view& view, const child_op& op) noexcept {
    switch (op.code) {
        case child_op_code::reset_signals:
            return child_reset_signals();
        case child_op_code::die_with_parent: {
            if (long r = sys::prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(op.a)); r < 0) return r;
            // The parent may have died before prctl took effect: then no
            // signal comes, the child was re-parented, and nobody waits for
            // a report. End quietly.
            if (op.b != 0 && sys::getppid() != op.b) sys::exit_group(child_failed_exit_code);
            return 0;
        }
        case child_op_code::die_with_owner: {
            if (long r = sys::prctl(PR_SET_PDEATHSIG, SIGKILL); r < 0) return r;
            // The owner may have ended before prctl took effect: then no
            // signal comes. Its pidfd tells, in every shape of launch (in a
            // new pid namespace getppid() cannot).
            if (owner_has_ended(static_cast<int>(op.a))) sys::exit_group(child_failed_exit_code);
            return 0;
        }
        case child_op_code::new_session: {
            const long r = sys::setsid();
            return r < 0 ? r : 0;
        }
        case child_op_code::set_umask:
            sys::umask(static_cast<unsigned>(op.a));
            return 0;
        case child_op_code::set_rlimit:
            return sys::prlimit(static_cast<int>(op.a), static_cast<const rlimit*>(op.data));
        case child_op_code::dup_above: {
            const long fd = sys::fcntl(static_cast<int>(op.a), F_DUPFD_CLOEXEC, op.b);
            if (fd < 0) return fd;
            view.scratch[op.c] = static_cast<int>(fd);
            return 0;
        }
        case child_op_code::dup_to: {
            const int from = op.c >= 0 ? view.scratch[op.c] : static_cast<int>(op.a);
            const long r = sys::dup3(from, static_cast<int>(op.b), 0);
            return r < 0 ? r : 0;
        }
        case child_op_code::clear_cloexec: {
            const long r = sys::fcntl(static_cast<int>(op.a), F_SETFD, 0);
            return r < 0 ? r : 0;
        }
        case child_op_code::cloexec_range:
            return child_fd_range(static_cast<unsigned>(op.a), op.b < 0 ? ~0U : static_cast<unsigned>(op.b), false);
        case child_op_code::set_groups:
            return sys::setgroups(static_cast<std::size_t>(op.a), static_cast<const gid_t*>(op.data));
        case child_op_code::set_gid:
            return sys::setresgid(static_cast<gid_t>(op.a));
        case child_op_code::set_uid:
            return sys::setresuid(static_cast<uid_t>(op.a));
        case child_op_code::change_directory:
            return sys::chdir(static_cast<const char*>(op.data));
        case child_op_code::wait_for_parent: {
            char byte = 0;
            long r;
            do r = sys::read(static_cast<int>(op.a), &byte, 1);
            while (r == -EINTR);
            if (r == 0) sys::exit_group(child_failed_exit_code);  // the parent gave up
            return r < 0 ? r : 0;
        }
        case child_op_code::hold: {
            // What exec would close goes now: a copy of the gate's writer
            // among it would hold the gate open for ever.
            const auto* ranges = static_cast<const unsigned*>(op.data);
            for (long i = 0; i < op.b; ++i)
                if (const long r = child_fd_range(ranges[2 * i], ranges[2 * i + 1], true); r < 0) return r;
            // The parent returns from spawn on this report; a report that
            // cannot be sent leaves it nothing to wait for: end, and the
            // closed channel tells it the command was never held.
            const child_report held{held_report_index, 0, 0};
            if (sys::write(view.report_fd, &held, sizeof held) != static_cast<long>(sizeof held))
                sys::exit_group(child_failed_exit_code);
            char byte = 0;
            long r;
            do r = sys::read(static_cast<int>(op.a), &byte, 1);
            while (r == -EINTR);
            // Every writer gone: nobody will start the command.
            if (r == 0) sys::exit_group(child_failed_exit_code);
            if (r < 0) return r;
            // Nobody reads the channel any more (spawn has returned): a later
            // failure ends the command with exit 127 instead of a report
            // into a pipe whose reader may be gone (SIGPIPE).
            sys::close(view.report_fd);
            return 0;
        }
        case child_op_code::restore_signal_mask: {
            const unsigned long none = 0;
            return sys::rt_sigprocmask(SIG_SETMASK, &none, nullptr);
        }
        case child_op_code::exec:
            return child_exec(static_cast<const char* const*>(op.data), view.argv, view.envp);
        case child_op_code::join_namespace:
            return sys::setns(static_cast<int>(op.a), static_cast<int>(op.b));
        case child_op_code::unshare:
            return sys::unshare(static_cast<unsigned long>(op.a));
        case child_op_code::set_hostname:
            return sys::sethostname(static_cast<const char*>(op.data), static_cast<std::size_t>(op.a));
        case child_op_code::set_domainname:
            return sys::setdomainname(static_cast<const char*>(op.data), static_cast<std::size_t>(op.a));
        case child_op_code::write_file:
            return child_write_file(static_cast<const char*>(op.data), static_cast<const char*>(op.data2),
                                    static_cast<std::size_t>(op.a));
        case child_op_code::bring_up_loopback:
            return child_bring_up_loopback();
        case child_op_code::close_fd:
            return sys::close(static_cast<int>(op.a));
        case child_op_code::set_controlling_terminal: {
            const long r = sys::ioctl(static_cast<int>(op.a), TIOCSCTTY, 0);
            return r < 0 ? r : 0;
        }
        case child_op_code::call:
            return op.run ? op.run(op) : -EINVAL;
        case child_op_code::become_init:
            return -EINVAL;  // handled by child_run_program: it changes who runs the rest
    }
    return -EINVAL;
}

// Sends `size` bytes of `data` on `socket`, with `fd` (SCM_RIGHTS) unless
// it is negative; retries EINTR. Returns what sendmsg returns.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_send_with_fd(int socket, const void* data, std::size_t size, int fd, int flags) noexcept {
    iovec part{const_cast<void*>(data), size};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    if (fd >= 0) {
        message.msg_control = control;
        message.msg_controllen = sizeof control;
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        __builtin_memcpy(CMSG_DATA(header), &fd, sizeof fd);
    }
    long sent;
    do sent = sys::sendmsg(socket, &message, flags);
    while (sent == -EINTR);
    return sent;
}

[[noreturn]] CTR_CHILD_CODE inline void child_report_failure(const child_view& view, std::size_t op_index,
                                                          long negative_errno) noexcept {
    const child_report report{static_cast<std::uint32_t>(op_index), static_cast<std::int32_t>(-negative_errno),
                              view.failure_detail ? *view.failure_detail : 0};
    sys::write(view.report_fd, &report, sizeof report);
    sys::exit_group(child_failed_exit_code);
}

// Makes pid 1 hold nothing of the caller's before the command may run: no
// fd (the report channel, cgroup directories, whatever the caller had
// open), not dumpable (so /proc/1/mem, environ, fd/ and exe and ptrace need
// CAP_SYS_PTRACE over the caller's user namespace, which nothing inside has),
// and, in its private copy of the caller's memory, the caller's argv and
// environment overwritten with a neutral name and zeros (/proc/1/cmdline is
// readable by anyone). Async-signal-safe.
CTR_CHILD_CODE inline void seal_init(init_state* state) noexcept {
    // Every fd but the two die_with_owner needs (the owner's pidfd, /proc).
    int keep[2] = {state->owner_pidfd, state->proc_fd};
    if (keep[0] > keep[1]) {
        const int t = keep[0];
        keep[0] = keep[1];
        keep[1] = t;
    }
    unsigned next = 0;
    for (const int fd : keep) {
        if (fd < 0) continue;
        if (static_cast<unsigned>(fd) > next) child_fd_range(next, static_cast<unsigned>(fd) - 1, true);
        next = static_cast<unsigned>(fd) + 1;
    }
    child_fd_range(next, ~0U, true);
    sys::prctl(PR_SET_DUMPABLE, 0);
    sys::prctl(PR_SET_NAME, reinterpret_cast<unsigned long>(init_name));
    if (state->arg_end > state->arg_start) {
        auto* args = reinterpret_cast<char*>(state->arg_start);
        const std::size_t length = state->arg_end - state->arg_start;
        for (std::size_t i = 0; i < length; ++i) args[i] = i + 1 < sizeof init_name ? init_name[i] : '\0';
    }
    if (state->env_end > state->env_start) {
        auto* env = reinterpret_cast<char*>(state->env_start);
        for (std::size_t i = 0; i < state->env_end - state->env_start; ++i) env[i] = '\0';
    }
}

// pid 1 of a new pid namespace. Starts the command as its child, seals
// itself (seal_init) and only then lets the command go on, so there is no
// moment in which the command runs beside an init that still holds the
// caller's fds. Then it forwards each signal it receives to the command and
// reaps every process that ends, until the command itself ends. It leaves
// the command's wait status in `state` and exits with the command's code
// (128+N for signal N). When pid 1 exits the kernel kills whatever else is
// left in the namespace. Signals stay blocked here from the clone on; they
// are read from a signalfd, so no handler ever runs. Async-signal-safe.
[[noreturn]] CTR_CHILD_CODE inline void child_become_init(const child_view& view, std::size_t op_index,
                                                          init_state* state) noexcept {
    // With die_with_owner this process is what ties the sandbox to its
    // owner. As pid 1 its exit ends the namespace; otherwise it becomes a
    // subreaper first, so that no process of the sandbox can leave its tree.
    const bool owned = state->owner_pidfd >= 0;
    const bool pid1 = sys::getpid() == 1;
    state->supervisor_pid = sys::getpid();
    if (owned && !pid1) sys::prctl(PR_SET_CHILD_SUBREAPER, 1);
    // Sharing memory is cheapest, but kernels before 6.x refuse CLONE_VM
    // while a new time namespace waits for this process's children (EINVAL):
    // then the command gets a copy. The gate is in a MAP_SHARED page, so the
    // command sees it open in either case.
    long command = -EINVAL;
    for (const std::uint64_t flags : {std::uint64_t{CLONE_VM}, std::uint64_t{0}}) {
        clone_args args{};
        args.flags = flags;
        args.exit_signal = SIGCHLD;
        args.stack = reinterpret_cast<std::uint64_t>(static_cast<char*>(state->command_stack_top) - 64 * 1024);
        args.stack_size = 64 * 1024;
        command = sys::clone3(&args, sizeof args, state->command_entry, state);
        if (command == -ENOSYS)
            command = sys::clone(state->command_entry, state->command_stack_top, flags | SIGCHLD, state, nullptr);
        if (command != -EINVAL) break;
    }
    if (command < 0) child_report_failure(view, op_index, command);

    // The parent learns that exec happened when every copy of the report
    // channel is closed; ours goes here, with every other fd.
    seal_init(state);
    const unsigned long all_signals = ~0UL;
    const long signals = sys::signalfd4(-1, &all_signals, SFD_CLOEXEC);
    // From here the owner's pidfd watches; the parent-death signal would
    // also fire when the thread that spawned exits, which the owner may do
    // long before it ends. Cleared before the command may run, so before
    // spawn() returns and that thread could exit.
    if (owned) sys::prctl(PR_SET_PDEATHSIG, 0);
    __atomic_store_n(&state->command_gate, 1U, __ATOMIC_RELEASE);
    sys::futex(&state->command_gate, FUTEX_WAKE, 1);
    if (signals < 0) sys::exit_group(child_failed_exit_code);

    for (;;) {
        pollfd events[2] = {{static_cast<int>(signals), POLLIN, 0}, {state->owner_pidfd, POLLIN, 0}};
        const long ready = sys::ppoll(events, 2, nullptr);
        if (ready == -EINTR) continue;
        if (ready < 0) sys::exit_group(child_failed_exit_code);
        if (events[1].revents) {
            // The owner is gone: so is the sandbox. pid 1's exit makes the
            // kernel kill every process in its namespace.
            if (!pid1) kill_descendants(state->proc_fd, command);
            sys::exit_group(128 + SIGKILL);
        }
        if (!events[0].revents) continue;
        signalfd_siginfo info{};
        const long n = sys::read(static_cast<int>(signals), &info, sizeof info);
        if (n == -EINTR) continue;
        if (n != static_cast<long>(sizeof info)) sys::exit_group(child_failed_exit_code);
        if (info.ssi_signo != SIGCHLD) {
            sys::kill(static_cast<int>(command), static_cast<int>(info.ssi_signo));
            continue;
        }
        bool command_ended = false;
        for (;;) {
            int status = 0;
            const long reaped = sys::wait4(-1, &status, WNOHANG);
            if (reaped <= 0) break;
            if (reaped == command) {
                state->command_wait_status = status;
                command_ended = true;
            }
        }
        if (!command_ended) continue;
        int ignored = 0;
        // An owned sandbox ends with its command, as a pid namespace does
        // when its pid 1 exits: what the command left running is killed.
        if (owned && !pid1) state->others_were_running = kill_descendants(state->proc_fd, 0) ? 1 : 0;
        else state->others_were_running = sys::wait4(-1, &ignored, WNOHANG) == 0 ? 1 : 0;
        const int status = state->command_wait_status;
        sys::exit_group(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
}

// Runs the program from operation `first` on. Never returns: exec replaces
// the process, or a failure is reported (op, errno) and the process exits.
// Async-signal-safe.
[[noreturn]] CTR_CHILD_CODE inline void child_run_program(const child_view& view, std::size_t first) noexcept {
    for (std::size_t i = first; i < view.op_count; ++i) {
        const child_op& op = view.ops[i];
        if (op.code == child_op_code::become_init) {
            auto* state = const_cast<init_state*>(static_cast<const init_state*>(op.data));
            child_become_init(view, i, state);
        }
        if (const long r = child_run_op(view, op); r < 0) child_report_failure(view, i, r);
    }
    // A program always ends with exec, so reaching here is a bug in the plan.
    child_report_failure(view, view.op_count, -EINVAL);
}

// The command's side of become_init: the rest of the program, then exec.
// Async-signal-safe.
CTR_CHILD_CODE inline int child_command_main(void* argument) noexcept {
    auto* state = static_cast<init_state*>(argument);
    // Owned: the command dies with its supervisor (whose own death follows
    // the owner's). A supervisor already gone leaves nothing to wait for.
    if (state->owner_pidfd >= 0) {
        sys::prctl(PR_SET_PDEATHSIG, SIGKILL);
        const long parent = sys::getppid();
        if (parent != state->supervisor_pid && parent != 0) sys::exit_group(child_failed_exit_code);
    }
    // Nothing runs until pid 1 has sealed itself.
    while (__atomic_load_n(&state->command_gate, __ATOMIC_ACQUIRE) == 0)
        sys::futex(&state->command_gate, FUTEX_WAIT, 0);
    child_run_program(*state->view, state->next_op);
}

// The child's entry point, called on the new stack by clone.
// Async-signal-safe.
CTR_CHILD_CODE inline int child_main(void* argument) noexcept {
    child_run_program(*static_cast<const child_view*>(argument), 0);
}

}  // namespace ctr::detail
// end ctr/detail/child_program.hpp
// begin ctr/detail/interface_ipv6.hpp
// The IPv6 half of a sandbox's interface, configured from inside its network
// namespace. IPv4 gets by with ioctls (child_program.hpp,
// apply_interface_setup); IPv6 addresses need netlink to carry
// IFA_F_NODAD, so that they are usable at once rather than "tentative" for
// the second that duplicate address detection takes. The requests are built
// on the stack, sent with raw syscalls and acknowledged one by one: no
// allocation, so this runs in the child between clone and exec as well as in
// the parent (net::configure_ipv6).


#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace ctr::detail {

// Plain data, sent through the sync pipe after interface_setup.
struct ipv6_setup {
    char name[IFNAMSIZ] = {};
    std::uint8_t present = 0;  // 0: no IPv6 for this interface (the parent found none): nothing to do
    std::uint8_t prefix_length = 0;
    in6_addr address{};
    in6_addr gateway{};  // all zero: no default route
};

// Which part of apply_ipv6_setup failed (its *failed_part).
enum ipv6_setup_part : int {
    ipv6_part_socket = 0,
    ipv6_part_index = 1,
    ipv6_part_address = 2,
    ipv6_part_route = 3,
};

// NLMSG_HDRLEN and NLA_HDRLEN as sizes (the kernel's macros are ints).
inline constexpr std::size_t child_netlink_header_size = (sizeof(nlmsghdr) + 3) & ~std::size_t{3};
inline constexpr std::size_t child_attribute_header_size = (sizeof(nlattr) + 3) & ~std::size_t{3};

// One rtnetlink request of up to 128 bytes: the header, the family header,
// attributes. Built in place on the caller's stack.
struct child_netlink_request {
    alignas(nlmsghdr) char bytes[128] = {};
    std::size_t size = 0;

    CTR_CHILD_CODE void start(std::uint16_t type, std::uint16_t flags) noexcept {
        size = child_netlink_header_size;
        auto* h = reinterpret_cast<nlmsghdr*>(bytes);
        h->nlmsg_type = type;
        h->nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK);
        h->nlmsg_seq = 1;
        h->nlmsg_len = static_cast<std::uint32_t>(size);
    }
    CTR_CHILD_CODE void append(const void* data, std::size_t length) noexcept {
        __builtin_memcpy(bytes + size, data, length);
        size += (length + 3) & ~std::size_t{3};
        reinterpret_cast<nlmsghdr*>(bytes)->nlmsg_len = static_cast<std::uint32_t>(size);
    }
    CTR_CHILD_CODE void attribute(std::uint16_t type, const void* data, std::size_t length) noexcept {
        nlattr a{};
        a.nla_type = type;
        a.nla_len = static_cast<std::uint16_t>(child_attribute_header_size + length);
        __builtin_memcpy(bytes + size, &a, sizeof a);
        size += child_attribute_header_size;
        append(data, length);
    }
};

// Sends `request` on netlink socket `fd` and waits for its acknowledgement:
// 0 or the kernel's -errno. Async-signal-safe.
CTR_CHILD_CODE inline long child_netlink_exchange(int fd, const child_netlink_request& request) noexcept {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    long r;
    do r = sys::sendto(fd, request.bytes, request.size, 0, &kernel, sizeof kernel);
    while (r == -EINTR);
    if (r < 0) return r;
    alignas(nlmsghdr) char answer[512];
    for (;;) {
        do r = sys::recvfrom(fd, answer, sizeof answer, 0, nullptr, nullptr);
        while (r == -EINTR);
        if (r < 0) return r;
        if (static_cast<std::size_t>(r) < child_netlink_header_size + sizeof(nlmsgerr)) return -EPROTO;
        const auto* h = reinterpret_cast<const nlmsghdr*>(answer);
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        const auto* e = reinterpret_cast<const nlmsgerr*>(answer + child_netlink_header_size);
        return e->error;
    }
}

// Adds the address (IFA_F_NODAD) and the default route through the gateway
// to the interface, which must exist (and, for the route, be up: the
// address's prefix route makes the gateway reachable). *failed_part says
// which part failed. Async-signal-safe.
CTR_CHILD_CODE inline long apply_ipv6_setup(const ipv6_setup& setup, int* failed_part) noexcept {
    *failed_part = ipv6_part_socket;
    if (!setup.present) return 0;
    long r = sys::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (r < 0) return r;
    ifreq request{};
    for (std::size_t i = 0; i + 1 < IFNAMSIZ && setup.name[i]; ++i) request.ifr_name[i] = setup.name[i];
    *failed_part = ipv6_part_index;
    const long index_result = sys::ioctl(static_cast<int>(r), SIOCGIFINDEX, reinterpret_cast<long>(&request));
    sys::close(static_cast<int>(r));
    if (index_result < 0) return index_result;
    const int index = request.ifr_ifindex;

    *failed_part = ipv6_part_socket;
    r = sys::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (r < 0) return r;
    const int fd = static_cast<int>(r);

    *failed_part = ipv6_part_address;
    child_netlink_request m;
    m.start(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg a{};
    a.ifa_family = AF_INET6;
    a.ifa_prefixlen = setup.prefix_length;
    a.ifa_flags = IFA_F_NODAD;
    a.ifa_scope = RT_SCOPE_UNIVERSE;
    a.ifa_index = static_cast<unsigned>(index);
    m.append(&a, sizeof a);
    m.attribute(IFA_LOCAL, &setup.address, sizeof setup.address);
    m.attribute(IFA_ADDRESS, &setup.address, sizeof setup.address);
    const std::uint32_t flags = IFA_F_NODAD;  // IFA_FLAGS: the 32-bit field that newer flags need
    m.attribute(IFA_FLAGS, &flags, sizeof flags);
    r = child_netlink_exchange(fd, m);

    bool gateway = false;
    for (std::size_t i = 0; i < sizeof setup.gateway; ++i)
        gateway = gateway || reinterpret_cast<const unsigned char*>(&setup.gateway)[i] != 0;
    if (r >= 0 && gateway) {
        *failed_part = ipv6_part_route;
        m.start(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        rtmsg route{};
        route.rtm_family = AF_INET6;
        route.rtm_table = RT_TABLE_MAIN;
        route.rtm_protocol = RTPROT_STATIC;
        route.rtm_scope = RT_SCOPE_UNIVERSE;
        route.rtm_type = RTN_UNICAST;
        m.append(&route, sizeof route);
        m.attribute(RTA_GATEWAY, &setup.gateway, sizeof setup.gateway);
        const std::uint32_t oif = static_cast<std::uint32_t>(index);
        m.attribute(RTA_OIF, &oif, sizeof oif);
        r = child_netlink_exchange(fd, m);
    }
    sys::close(fd);
    return r < 0 ? r : 0;
}

// Reads the ipv6_setup the parent wrote after the interface_setup and
// applies it. op.a = the sync fd, op.data2 = int* failure_detail.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_configure_ipv6(const child_op& op) noexcept {
    ipv6_setup setup;
    std::size_t got = 0;
    while (got < sizeof setup) {
        const long n = sys::read(static_cast<int>(op.a), reinterpret_cast<char*>(&setup) + got, sizeof setup - got);
        if (n == -EINTR) continue;
        if (n <= 0) return n < 0 ? n : -EPIPE;
        got += static_cast<std::size_t>(n);
    }
    return apply_ipv6_setup(setup, static_cast<int*>(const_cast<void*>(op.data2)));
}

}  // namespace ctr::detail
// end ctr/detail/interface_ipv6.hpp
// begin ctr/detail/netlink.hpp
// Routing netlink (rtnetlink): the message builder and the socket that
// net.hpp uses to create links and set addresses. Parent-side only: it
// allocates.


#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ctr::net::detail {

namespace sys = ctr::detail::sys;

constexpr std::size_t netlink_align(std::size_t n) noexcept { return (n + 3) & ~std::size_t{3}; }
// NLA_HDRLEN, as a size: the kernel's macro is an int built from ~3, which
// -Wsign-conversion reports wherever it meets a size_t.
constexpr std::size_t attribute_header_size = netlink_align(sizeof(nlattr));

// One request: an nlmsghdr, a family header (ifinfomsg, ifaddrmsg, ...)
// and attributes, nested where the kernel wants them nested.
class netlink_message {
public:
    netlink_message(std::uint16_t type, std::uint16_t flags) {
        buffer_.resize(netlink_align(sizeof(nlmsghdr)));
        header().nlmsg_type = type;
        header().nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST);
        sync_length();
    }

    template <class FamilyHeader>
    void add_header(const FamilyHeader& h) {
        append(&h, sizeof h);
    }
    template <class = void>
    void add_attribute(std::uint16_t type, const void* data, std::size_t size) {
        nlattr a{};
        a.nla_type = type;
        a.nla_len = static_cast<std::uint16_t>(attribute_header_size + size);
        append(&a, sizeof a);
        append(data, size);
    }
    template <class = void>
    void add_u32(std::uint16_t type, std::uint32_t value) { add_attribute(type, &value, sizeof value); }
    template <class = void>
    void add_string(std::uint16_t type, std::string_view text) {
        std::string with_nul(text);
        add_attribute(type, with_nul.c_str(), with_nul.size() + 1);
    }
    // Nested attributes: begin_nested returns a mark for end_nested, which
    // patches the length once the contents are known.
    template <class = void>
    std::size_t begin_nested(std::uint16_t type) {
        const std::size_t mark = buffer_.size();
        nlattr a{};
        a.nla_type = static_cast<std::uint16_t>(type | NLA_F_NESTED);
        append(&a, sizeof a);
        return mark;
    }
    template <class = void>
    void end_nested(std::size_t mark) {
        auto* a = reinterpret_cast<nlattr*>(buffer_.data() + mark);
        a->nla_len = static_cast<std::uint16_t>(buffer_.size() - mark);
    }

    template <class = void>
    nlmsghdr& header() noexcept { return *reinterpret_cast<nlmsghdr*>(buffer_.data()); }
    template <class = void>
    const char* data() const noexcept { return buffer_.data(); }
    template <class = void>
    std::size_t size() const noexcept { return buffer_.size(); }

private:
    template <class = void>
    void append(const void* data, std::size_t size) {
        const std::size_t at = buffer_.size();
        buffer_.resize(at + netlink_align(size));
        std::memcpy(buffer_.data() + at, data, size);
        sync_length();
    }
    template <class = void>
    void sync_length() noexcept { header().nlmsg_len = static_cast<std::uint32_t>(buffer_.size()); }

    // Kept in 4-byte units' alignment by construction; the vector's storage
    // is suitably aligned for nlmsghdr.
    std::vector<char> buffer_;
};

// Walks the attributes in [data, data + size): calls visit(type, payload, length).
template <class Visit>
void for_each_attribute(const char* data, std::size_t size, Visit&& visit) {
    while (size >= sizeof(nlattr)) {
        nlattr a;
        std::memcpy(&a, data, sizeof a);
        if (a.nla_len < sizeof(nlattr) || a.nla_len > size) return;
        visit(static_cast<std::uint16_t>(a.nla_type & NLA_TYPE_MASK), data + attribute_header_size,
              a.nla_len - attribute_header_size);
        const std::size_t step = netlink_align(a.nla_len);
        if (step >= size) return;
        data += step;
        size -= step;
    }
}

// A NETLINK_ROUTE socket in the network namespace of the thread that opened
// it. Requests wait for the kernel's acknowledgement; a refusal comes back as
// -errno plus the kernel's own explanation when it gives one (extended ack).
// nftables.hpp opens one on NETLINK_NETFILTER: the framing is the same.
class rtnetlink {
public:
    // Throws ctr::error(step::netlink) when the socket cannot be made.
    template <class = void>
    static rtnetlink open(int protocol = NETLINK_ROUTE, const char* protocol_name = "NETLINK_ROUTE") {
        const long fd = sys::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
        if (fd < 0) throw error(step::netlink, static_cast<int>(-fd), protocol_name, "socket");
        rtnetlink out;
        out.fd_.reset(static_cast<int>(fd));
        sockaddr_nl local{};
        local.nl_family = AF_NETLINK;
        if (const long r = sys::bind(out.fd_.get(), &local, sizeof local); r < 0)
            throw error(step::netlink, static_cast<int>(-r), protocol_name, "bind");
        // Both are optional: older kernels just give bare errnos and whole
        // requests back in errors.
        const int on = 1;
        sys::setsockopt(out.fd_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
        sys::setsockopt(out.fd_.get(), SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
        return out;
    }

    // Sends a request with NLM_F_ACK and waits for its answer: 0, or -errno
    // with last_message() holding the kernel's explanation (may be empty).
    template <class = void>
    long request(netlink_message& message) {
        message.header().nlmsg_flags |= NLM_F_ACK;
        long result = -EPROTO;
        if (const long r = send(message); r < 0) return r;
        const long r = receive_until_done(message.header().nlmsg_seq, [](const nlmsghdr&) {}, result);
        return r < 0 ? r : result;
    }

    // The same, calling visit for each answer before the acknowledgement
    // (a "get" that is not a dump).
    template <class = void>
    long request(netlink_message& message, const std::function<void(const nlmsghdr&)>& visit) {
        message.header().nlmsg_flags |= NLM_F_ACK;
        long result = -EPROTO;
        if (const long r = send(message); r < 0) return r;
        const long r = receive_until_done(message.header().nlmsg_seq, visit, result);
        return r < 0 ? r : result;
    }

    // Sends `messages` in one datagram, each with its own sequence number
    // (returned in `sequences`), and no waiting: see receive_queued.
    template <class = void>
    long send_together(std::vector<netlink_message>& messages, std::vector<std::uint32_t>& sequences) {
        std::vector<char> all;
        sequences.clear();
        for (auto& m : messages) {
            m.header().nlmsg_seq = ++sequence_;
            sequences.push_back(sequence_);
            all.insert(all.end(), m.data(), m.data() + m.size());
        }
        return send_to_kernel(all.data(), all.size());
    }

    // Reads the answers already queued on the socket, without waiting, and
    // calls visit(header, error) for each NLMSG_ERROR (error: 0 for an
    // acknowledgement, else -errno; last_message() then holds the kernel's
    // explanation of the first refusal). The kernel handles what a socket
    // sends to it within the send, so after send_together every answer is
    // queued. Returns 0, or -errno when reading failed.
    template <class Visit>
    long receive_queued(Visit&& visit) {
        std::vector<char> buffer(32768);
        for (;;) {
            long n;
            do n = sys::recvfrom(fd_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT, nullptr, nullptr);
            while (n == -EINTR);
            if (n == -EAGAIN) return 0;
            if (n < 0) return n;
            std::size_t left = static_cast<std::size_t>(n);
            const char* at = buffer.data();
            while (left >= sizeof(nlmsghdr)) {
                nlmsghdr h;
                std::memcpy(&h, at, sizeof h);
                if (h.nlmsg_len < sizeof h || h.nlmsg_len > left) return -EPROTO;
                if (h.nlmsg_type == NLMSG_ERROR) {
                    const std::string before = last_message_;
                    long result = -EPROTO;
                    read_error(at, h, result);
                    if (result == 0 || !before.empty()) last_message_ = before;
                    visit(h, result);
                }
                const std::size_t step = netlink_align(h.nlmsg_len);
                if (step >= left) break;
                at += step;
                left -= step;
            }
        }
    }

    // Sends a dump request (NLM_F_DUMP) and calls visit for each answer.
    template <class = void>
    long dump(netlink_message& message, const std::function<void(const nlmsghdr&)>& visit) {
        message.header().nlmsg_flags |= NLM_F_DUMP;
        long result = 0;
        if (const long r = send(message); r < 0) return r;
        const long r = receive_until_done(message.header().nlmsg_seq, visit, result);
        return r < 0 ? r : result;
    }

    template <class = void>
    const std::string& last_message() const noexcept { return last_message_; }

private:
    template <class = void>
    long send(netlink_message& message) {
        message.header().nlmsg_seq = ++sequence_;
        return send_to_kernel(message.data(), message.size());
    }

    // One datagram to the kernel; a new exchange, so no message of the last.
    template <class = void>
    long send_to_kernel(const char* bytes, std::size_t size) {
        last_message_.clear();
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        long r;
        do r = sys::sendto(fd_.get(), bytes, size, 0, &kernel, sizeof kernel);
        while (r == -EINTR);
        return r < 0 ? r : 0;
    }

    // Reads answers to `sequence` until the ack (NLMSG_ERROR) or the end of
    // a dump (NLMSG_DONE). Returns -errno when reading failed; `result`
    // gets the kernel's verdict.
    template <class Visit>
    long receive_until_done(std::uint32_t sequence, Visit&& visit, long& result) {
        std::vector<char> buffer(32768);
        for (;;) {
            long n;
            do n = sys::recvfrom(fd_.get(), buffer.data(), buffer.size(), 0, nullptr, nullptr);
            while (n == -EINTR);
            if (n < 0) return n;
            std::size_t left = static_cast<std::size_t>(n);
            const char* at = buffer.data();
            while (left >= sizeof(nlmsghdr)) {
                nlmsghdr h;
                std::memcpy(&h, at, sizeof h);
                if (h.nlmsg_len < sizeof h || h.nlmsg_len > left) return -EPROTO;
                if (h.nlmsg_seq == sequence) {
                    // A dump that changed while it was read is incomplete.
                    if (h.nlmsg_flags & NLM_F_DUMP_INTR) result = -EINTR;
                    if (h.nlmsg_type == NLMSG_DONE) {
                        // The end of a dump may carry the dump's own error.
                        int done_error = 0;
                        if (h.nlmsg_len >= NLMSG_LENGTH(sizeof done_error))
                            std::memcpy(&done_error, at + NLMSG_HDRLEN, sizeof done_error);
                        if (done_error < 0) result = done_error;
                        return 0;
                    }
                    if (h.nlmsg_type == NLMSG_ERROR) {
                        read_error(at, h, result);
                        return 0;
                    }
                    visit(*reinterpret_cast<const nlmsghdr*>(at));
                }
                const std::size_t step = netlink_align(h.nlmsg_len);
                if (step >= left) break;
                at += step;
                left -= step;
            }
        }
    }

    template <class = void>
    void read_error(const char* at, const nlmsghdr& h, long& result) {
        nlmsgerr e;
        if (h.nlmsg_len < NLMSG_HDRLEN + sizeof e) {
            result = -EPROTO;
            return;
        }
        std::memcpy(&e, at + NLMSG_HDRLEN, sizeof e);
        result = e.error;
        if (!(h.nlmsg_flags & NLM_F_ACK_TLVS)) return;
        // The TLVs follow the echoed request: only its header when capped.
        std::size_t offset = NLMSG_HDRLEN + sizeof e;
        if (!(h.nlmsg_flags & NLM_F_CAPPED)) offset += e.msg.nlmsg_len - sizeof(nlmsghdr);
        if (offset >= h.nlmsg_len) return;
        for_each_attribute(at + offset, h.nlmsg_len - offset, [&](std::uint16_t type, const char* p, std::size_t n) {
            if (type == NLMSGERR_ATTR_MSG) last_message_.assign(p, strnlen(p, n));
        });
    }

    unique_fd fd_;
    std::uint32_t sequence_ = 0;
    std::string last_message_;
};

}  // namespace ctr::net::detail
// end ctr/detail/netlink.hpp
// begin ctr/detail/veth_options.hpp
// ctr::net's options as spawn takes them (options::network) and what it made
// (child::network()): plain structs, so that process.hpp needs no more of the
// network than these. net.hpp has the operations and the launch layer.

// begin ctr/port_mapping.hpp
// ctr::net::port_mapping: one published port (host address and port, the
// sandbox's port, the protocol), parsed from Docker's -p syntax. Both ways
// of publishing take it: the user-space relay (port_forward.hpp) and the
// kernel's DNAT for a veth sandbox (port_nat.hpp, net::veth::publish).


#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ctr::net {

enum class protocol : std::uint8_t { tcp, udp };

constexpr std::string_view to_string(protocol p) noexcept { return p == protocol::udp ? "udp" : "tcp"; }

// One published port: the host side (address, port, protocol) and the port
// inside the sandbox it leads to.
struct port_mapping {
    protocol proto = protocol::tcp;
    // Where to listen: an IPv4 or an IPv6 address; 0.0.0.0 (or ::) is every
    // address of that family in the caller's network namespace.
    ip_address host_address{};
    std::uint16_t host_port = 0;  // 0: the kernel picks one (port_forwarder::host_port tells which)
    std::uint16_t container_port = 0;
    // With host address 0.0.0.0: also [::] where the sandbox has IPv6 (DNAT,
    // net::veth::publish), as Docker's -p without an address publishes on
    // both. parse sets it false for an explicit "0.0.0.0:"; other addresses
    // ignore it.
    bool also_ipv6 = true;

    // Docker's -p syntax: "[[IP:]HOSTPORT:]CONTAINERPORT[/tcp|/udp]", e.g.
    // "8080:80", "127.0.0.1:5353:53/udp", "127.0.0.1::80", "[::1]:8080:80",
    // "[2001:db8::1]::80" (IPv6 in brackets) or "80" (the kernel picks the
    // host port). A port range is several mappings (parse_range). Bad text throws
    // ctr::error(step::prepare, EINVAL) naming the text and what is wrong
    // with it.
    template <class = void>
    static port_mapping parse(std::string_view text);

    // parse, and Docker's port ranges: "8000-8003:80-83" is 8000->80,
    // 8001->81, 8002->82 and 8003->83; "80-83" (or "127.0.0.1::80-83")
    // publishes four container ports on ports the kernel picks. The two
    // ranges must have the same length: Docker's "8000-8010:80", one host
    // port picked from a range, is refused. Text without a range gives one
    // mapping, as parse.
    template <class = void>
    static std::vector<port_mapping> parse_range(std::string_view text);

    // "0.0.0.0:8080->80/tcp" or "[::]:8080->80/tcp", as `docker ps` shows it.
    template <class = void>
    std::string to_string() const {
        return host_address.to_string_bracketed() + ":" + std::to_string(host_port) + "->" +
               std::to_string(container_port) + "/" + std::string(net::to_string(proto));
    }
    // "0.0.0.0:8080/tcp": the host side alone, as errors name it.
    template <class = void>
    std::string host_side() const {
        return host_address.to_string_bracketed() + ":" + std::to_string(host_port) + "/" +
               std::string(net::to_string(proto));
    }

    friend bool operator==(const port_mapping&, const port_mapping&) = default;
};

}  // namespace ctr::net

namespace ctr::net::detail {

// port_mapping::parse, with errors that name `shown` (the text the user
// gave, when parse_range reads one mapping of a range).
template <class = void>
inline port_mapping parse_port_mapping(std::string_view text, std::string_view shown) {
    const auto fail = [shown](std::string_view why) { return error(step::prepare, EINVAL, std::string(shown), why); };
    if (text.empty()) throw fail("empty; expected [[IP:]HOSTPORT:]CONTAINERPORT[/tcp|/udp]");

    port_mapping out;
    std::string_view rest = text;
    if (const auto slash = rest.rfind('/'); slash != std::string_view::npos) {
        const auto name = rest.substr(slash + 1);
        if (name == "tcp") out.proto = protocol::tcp;
        else if (name == "udp") out.proto = protocol::udp;
        else throw fail("the protocol after '/' must be tcp or udp");
        rest = rest.substr(0, slash);
    }
    // "[IPV6]:HOSTPORT:CONTAINERPORT": the address in brackets, as in Docker.
    std::string_view bracketed;
    bool has_bracket = false;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) throw fail("an IPv6 address in '[' has no ']'");
        bracketed = rest.substr(1, close - 1);
        rest = rest.substr(close + 1);
        if (rest.empty() || rest.front() != ':' || std::count(rest.begin(), rest.end(), ':') != 2)
            throw fail("an IPv6 address needs a host port and a container port after it: [ADDRESS]:HOSTPORT:CONTAINERPORT");
        rest.remove_prefix(1);
        has_bracket = true;
    }
    if (rest.find('[') != std::string_view::npos || rest.find(']') != std::string_view::npos)
        throw fail("an IPv6 address goes first, in brackets: [2001:db8::1]:8080:80");
    if (std::count(rest.begin(), rest.end(), ':') > 2)
        throw fail("an IPv6 address goes in brackets: [2001:db8::1]:8080:80");
    if (rest.find('-') != std::string_view::npos)
        throw fail("a port range is several mappings (port_mapping::parse_range)");

    // Fields from the right: the container port, then the host port, then the address.
    std::string_view fields[3];
    std::size_t count = 0;
    for (;;) {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) {
            fields[count++] = rest;
            break;
        }
        fields[count++] = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
    }

    // A port is 1 to 5 digits and at most 65535; a sign, spaces or a name are errors.
    const auto port = [&](std::string_view field, std::string_view which, bool zero_allowed) -> std::uint16_t {
        unsigned value = 0;
        const bool digits_only = !field.empty() && field.size() <= 5 &&
                                 std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits_only) std::from_chars(field.data(), field.data() + field.size(), value);
        if (!digits_only || value > 65535 || (value == 0 && !zero_allowed))
            throw fail(std::string(which) + (zero_allowed ? " must be a number from 0 to 65535"
                                                          : " must be a number from 1 to 65535"));
        return static_cast<std::uint16_t>(value);
    };

    if (has_bracket) {
        fields[count++] = bracketed;  // [A]:H:C read as the fields C, H, A
        if (count != 3) throw fail("an IPv6 address needs a host port and a container port after it");
    }
    out.container_port = port(fields[0], "the container port", false);
    if (count >= 2) {
        // An empty host port after an address ("127.0.0.1::80") asks for any port, as in Docker.
        if (fields[1].empty() && count == 2) throw fail("the host port is empty");
        out.host_port = fields[1].empty() ? 0 : port(fields[1], "the host port", true);
    }
    if (has_bracket) {
        try {
            out.host_address = ipv6_address::parse(fields[2]);
        } catch (const error&) {
            throw fail("'" + std::string(fields[2]) + "' is not an IPv6 address like 2001:db8::1");
        }
    } else if (count == 3) {
        try {
            out.host_address = ipv4_address::parse(fields[2]);
        } catch (const error&) {
            throw fail("'" + std::string(fields[2]) + "' is not an IPv4 address like 127.0.0.1");
        }
        // An explicit 0.0.0.0 is IPv4 alone, as in Docker.
        if (out.host_address.is_unspecified()) out.also_ipv6 = false;
    }
    return out;
}

}  // namespace ctr::net::detail

namespace ctr::net {

template <class>
inline port_mapping port_mapping::parse(std::string_view text) {
    return detail::parse_port_mapping(text, text);
}

template <class>
inline std::vector<port_mapping> port_mapping::parse_range(std::string_view text) {
    if (text.find('-') == std::string_view::npos) return {parse(text)};
    const auto fail = [text](std::string_view why) { return error(step::prepare, EINVAL, std::string(text), why); };

    // "[[IP:]HOST:]CONTAINER[/PROTO]": the ports are the last two fields
    // before the protocol. A '-' elsewhere (in the address or protocol) is
    // found by parse below.
    std::string_view rest = text, protocol_suffix;
    if (const auto slash = rest.rfind('/'); slash != std::string_view::npos) {
        protocol_suffix = rest.substr(slash);
        rest = rest.substr(0, slash);
    }
    std::string_view container = rest, host, address;  // address: with its ':'
    bool has_host = false;
    if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        container = rest.substr(colon + 1);
        const auto front = rest.substr(0, colon);
        has_host = true;
        const auto second = front.rfind(':');
        host = second == std::string_view::npos ? front : front.substr(second + 1);
        address = second == std::string_view::npos ? std::string_view{} : front.substr(0, second + 1);
    }

    // "FIRST-LAST" or one port; the numbers themselves are checked by parse.
    struct range {
        std::string_view first, last;
        unsigned count = 1;
    };
    const auto read_range = [&](std::string_view field, std::string_view which) {
        range r{field, field};
        const auto dash = field.find('-');
        if (dash == std::string_view::npos) return r;
        r.first = field.substr(0, dash);
        r.last = field.substr(dash + 1);
        const auto number = [](std::string_view digits) {
            unsigned value = 0;
            const bool ok = !digits.empty() && digits.size() <= 5 &&
                            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (ok) std::from_chars(digits.data(), digits.data() + digits.size(), value);
            return ok && value <= 65535 ? static_cast<int>(value) : -1;
        };
        const int first = number(r.first), last = number(r.last);
        if (first < 0 || last < 0)
            throw fail(std::string(which) + " range must be FIRST-LAST, two numbers from 1 to 65535");
        if (last < first) throw fail(std::string(which) + " range '" + std::string(field) + "' ends before it starts");
        r.count = static_cast<unsigned>(last - first + 1);
        return r;
    };
    const range containers = read_range(container, "the container port");
    const range hosts = has_host && !host.empty() ? read_range(host, "the host port") : range{};
    if (has_host && !host.empty() && hosts.count != containers.count)
        throw fail("the host ports (" + std::to_string(hosts.count) + ") and the container ports (" +
                   std::to_string(containers.count) + ") must be ranges of the same length");

    // The first mapping through parse (address, protocol and the port
    // numbers checked there, errors naming the whole text), then the others.
    std::string first_text(address);
    if (has_host) first_text += std::string(hosts.first) + ":";
    first_text += std::string(containers.first) + std::string(protocol_suffix);
    const port_mapping first = detail::parse_port_mapping(first_text, text);
    if (hosts.count > 1 && first.host_port == 0) throw fail("the host port range must start at 1 or above");
    std::vector<port_mapping> out;
    out.reserve(containers.count);
    for (unsigned i = 0; i < containers.count; ++i) {
        port_mapping m = first;
        m.container_port = static_cast<std::uint16_t>(first.container_port + i);
        if (first.host_port != 0) m.host_port = static_cast<std::uint16_t>(first.host_port + i);
        out.push_back(m);
    }
    return out;
}

}  // namespace ctr::net

namespace ctr::net::detail {

template <class = void>
inline sockaddr_in to_sockaddr(net::ipv4_address address, std::uint16_t port) noexcept {
    sockaddr_in out{};
    out.sin_family = AF_INET;
    out.sin_port = htons(port);
    out.sin_addr = address.to_in_addr();
    return out;
}

template <class = void>
inline sockaddr_in6 to_sockaddr(const net::ipv6_address& address, std::uint16_t port) noexcept {
    sockaddr_in6 out{};
    out.sin6_family = AF_INET6;
    out.sin6_port = htons(port);
    out.sin6_addr = address.to_in6_addr();
    return out;
}

// A socket bound to the host side of `m` (not listening), with
// `extra_type_flags` added to its type, and the port it got (m's, or the
// kernel's pick for 0). Throws ctr::error(step::publish_port) naming the
// host side and the call. The relay listens on it; DNAT only holds it.
template <class = void>
inline unique_fd bind_host_side(const net::port_mapping& m, int extra_type_flags, std::uint16_t& bound_port) {
    const bool tcp = m.proto == net::protocol::tcp;
    const auto fail = [&m](long r, std::string_view call) {
        return error(step::publish_port, static_cast<int>(-r), m.host_side(), call);
    };
    const int type = (tcp ? SOCK_STREAM : SOCK_DGRAM) | extra_type_flags | SOCK_CLOEXEC;
    const bool v6 = m.host_address.is_ipv6();
    const long s = ctr::detail::sys::socket(v6 ? AF_INET6 : AF_INET, type, 0);
    if (s < 0) throw fail(s, "socket");
    unique_fd fd(static_cast<int>(s));
    if (v6) {
        // [::] is IPv6 alone: 0.0.0.0 is a mapping (and a socket) of its own.
        const int one = 1;
        if (const long r = ctr::detail::sys::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one); r < 0)
            throw fail(r, "setsockopt IPV6_V6ONLY");
    }
    if (tcp) {
        // Lets a port be bound again while the connections of an earlier
        // relay linger in TIME_WAIT. It does not let two listeners share a
        // port (that is SO_REUSEPORT), so a busy port still fails. UDP has
        // no TIME_WAIT, and there SO_REUSEADDR would share the port.
        const int one = 1;
        if (const long r = ctr::detail::sys::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); r < 0)
            throw fail(r, "setsockopt SO_REUSEADDR");
    }
    long r;
    if (v6) {
        const sockaddr_in6 address = to_sockaddr(m.host_address.ipv6(), m.host_port);
        r = ctr::detail::sys::bind(fd.get(), &address, sizeof address);
    } else {
        const sockaddr_in address = to_sockaddr(m.host_address.ipv4(), m.host_port);
        r = ctr::detail::sys::bind(fd.get(), &address, sizeof address);
    }
    if (r < 0) throw fail(r, "bind");
    sockaddr_in6 bound{};  // sin_port and sin6_port lie at the same offset
    unsigned length = sizeof bound;
    if (const long got = ctr::detail::sys::getsockname(fd.get(), &bound, &length); got < 0)
        throw fail(got, "getsockname");
    bound_port = ntohs(bound.sin6_port);
    return fd;
}

}  // namespace ctr::net::detail
// end ctr/port_mapping.hpp

#include <optional>
#include <string>
#include <vector>

namespace ctr::net {

// What spawn (or create_veth) builds. Every field has a working default:
// net::veth{} gives "ctr-<subnet in hex>" on the host side, "eth0" inside,
// and a free /30 of 10.231.0.0/16.
struct veth {
    // The host end's name; empty: "ctr-" and the /30's network address in
    // hex ("ctr-0ae70004" for 10.231.0.4/30), which also keeps launches in
    // other processes from taking the same subnet (within a process they
    // take turns); with explicit addresses, "ctr<N>" for the first free N.
    // With a name of your own and pool addresses, launches in two processes
    // may pick the same slot: give the addresses too, or leave the name to ctr.
    std::string host_name{};
    std::string container_name = "eth0";
    // Both or neither. Neither: the first /30 of `pool` that no address or
    // route of the caller's namespace overlaps; the host end gets .1 of it,
    // the sandbox .2.
    std::optional<ipv4_interface> host_address{};
    std::optional<ipv4_interface> container_address{};
    ipv4_interface pool{{{10, 231, 0, 0}}, 16};
    // A default route inside through the host end. Traffic to the host's own
    // addresses then arrives there; beyond the host it goes nowhere unless
    // `outbound` (or the caller's own rules) forward and masquerade it.
    bool default_route = true;
    // Outbound NAT (outbound.hpp): the sandbox's subnet masqueraded behind
    // the host's address by a rule in ctr's nftables table "ip ctr",
    // forwarding on for the host end and the default route's interface.
    // Needs CAP_NET_ADMIN (root); the rule goes when the handle reaps the
    // sandbox.
    bool outbound = false;
    // Published ports by the kernel's DNAT (port_nat.hpp): connections to a
    // host port, on the host's addresses (loopback included), go straight to
    // the sandbox's address and port, and the server inside sees the
    // client's own address (the host end's for a loopback client). Rules in
    // ctr's table "ip ctr", forwarding on as for `outbound`; host port 0 is
    // one the kernel picks (veth_info::published says which). Needs
    // CAP_NET_ADMIN (root) and nftables; the rules go when the handle reaps
    // the sandbox. Without privilege, use pasta's ports or a port_forwarder.
    std::vector<port_mapping> publish{};
    unsigned mtu = 0;  // 0: the kernel's (1500)
    // IPv6 beside IPv4, where the kernel has it: a /64 of `ipv6_pool` for
    // each pair (subnet ID: the IPv4 /30's slot, the low 16 bits of its
    // network address divided by 4, so 10.231.0.4/30 goes with
    // fd63:7472:0:1::/64), host end ::1, sandbox ::2, both without duplicate
    // address detection, and a default route inside through the host end.
    // `outbound` and `publish` then cover IPv6 too. A kernel without IPv6
    // (ipv6.disable=1) or with it disabled on the new link
    // (net.ipv6.conf.default.disable_ipv6 = 1) gives IPv4 alone, without an
    // error: veth_info::host_ipv6 is empty then. false: IPv4 alone.
    bool ipv6 = true;
    // Both or neither, as the IPv4 ones: neither takes the pool's /64.
    std::optional<ipv6_interface> host_ipv6{};
    std::optional<ipv6_interface> container_ipv6{};
    // ctr's ULA prefix (RFC 4193): "fd", then "ctr" in ASCII (63 74 72) and
    // a zero, as the 40-bit global ID. A /48 gives 65536 /64s, one per IPv4
    // slot of a /16 pool; a prefix of its own (at most a /48) if this one
    // is taken where you run.
    ipv6_interface ipv6_pool{{{0xfd, 0x63, 0x74, 0x72}}, 48};
};

// What was made: names, indexes and addresses of both ends.
struct veth_info {
    std::string host_name{};
    std::string container_name{};
    int host_index = 0;
    ipv4_interface host_address{};
    ipv4_interface container_address{};
    bool default_route = true;
    unsigned mtu = 0;
    // The IPv6 addresses of both ends; empty without IPv6 (veth::ipv6
    // false, or a kernel without it).
    std::optional<ipv6_interface> host_ipv6{};
    std::optional<ipv6_interface> container_ipv6{};
    // veth::publish with the host ports bound (the kernel's pick for 0).
    std::vector<port_mapping> published{};
};

}  // namespace ctr::net
// end ctr/detail/veth_options.hpp

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ctr::net {

// The network namespace the other end goes into: an open namespace file, or
// the namespace of a process (a child the caller has not reaped, so the pid
// cannot name anyone else).
struct peer_namespace {
    int netns_fd = -1;
    pid_t pid = 0;
    template <class = void>
    static peer_namespace from_fd(int fd) noexcept { return {fd, 0}; }
    template <class = void>
    static peer_namespace of_process(pid_t pid) noexcept { return {-1, pid}; }
};

namespace detail {

template <class = void>
inline bool valid_interface_name(const std::string& name) noexcept {
    if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
    for (const char c : name)
        if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) return false;
    return true;
}

template <class = void>
inline void check_interface_name(const std::string& name) {
    if (!valid_interface_name(name))
        throw error(step::prepare, EINVAL, name,
                    "an interface name is 1 to 15 characters without '/', ':' or spaces");
}

// The index of `name` in the current network namespace, 0 when there is
// none, -errno when asking failed.
template <class = void>
inline long interface_index(const std::string& name) noexcept {
    const long fd = sys::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fd;
    ifreq request{};
    name.copy(request.ifr_name, IFNAMSIZ - 1);
    const long r = sys::ioctl(static_cast<int>(fd), SIOCGIFINDEX, reinterpret_cast<long>(&request));
    sys::close(static_cast<int>(fd));
    if (r == -ENODEV) return 0;
    return r < 0 ? r : request.ifr_ifindex;
}

template <class = void>
inline ctr::detail::interface_setup make_setup(const std::string& name, const ipv4_interface& address,
                                               std::optional<ipv4_address> gateway, unsigned mtu) {
    ctr::detail::interface_setup setup;
    name.copy(setup.name, IFNAMSIZ - 1);
    setup.address = address.address.to_in_addr();
    setup.netmask = address.netmask().to_in_addr();
    if (gateway) setup.gateway = gateway->to_in_addr();
    setup.mtu = mtu;
    return setup;
}

// What apply_interface_setup's failed_part numbers mean.
template <class = void>
inline std::string interface_setup_failure(int failed_part) {
    switch (failed_part) {
        case 0: return "opening a socket";
        case 1: return "setting the address";
        case 2: return "setting the netmask";
        case 3: return "setting the MTU";
        case 4: return "bringing it up";
        default: return "adding the default route";
    }
}

// The IPv4 networks in use in the current namespace: interface addresses and
// routes, so that a pool slot never shadows either.
template <class = void>
inline std::vector<ipv4_interface> networks_in_use(rtnetlink& netlink);

// The same, asked again while a dump comes back interrupted (the tables
// changed while the kernel wrote it).
template <class = void>
inline std::vector<ipv4_interface> networks_in_use_consistent(rtnetlink& netlink) {
    for (int attempt = 0;; ++attempt) {
        try {
            return networks_in_use(netlink);
        } catch (const error& e) {
            if (e.code().value() != EINTR || attempt == 10) throw;
        }
    }
}

template <class>
inline std::vector<ipv4_interface> networks_in_use(rtnetlink& netlink) {
    std::vector<ipv4_interface> used;
    netlink_message addresses(RTM_GETADDR, 0);
    ifaddrmsg address_header{};
    address_header.ifa_family = AF_INET;
    addresses.add_header(address_header);
    long r = netlink.dump(addresses, [&](const nlmsghdr& h) {
        if (h.nlmsg_type != RTM_NEWADDR || h.nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return;
        const auto* a = static_cast<const ifaddrmsg*>(NLMSG_DATA(&h));
        const char* attributes = reinterpret_cast<const char*>(a) + NLMSG_ALIGN(sizeof *a);
        for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof *a)),
                           [&](std::uint16_t type, const char* p, std::size_t n) {
                               if ((type == IFA_LOCAL || type == IFA_ADDRESS) && n == 4) {
                                   ipv4_interface in{{}, a->ifa_prefixlen};
                                   std::memcpy(in.address.bytes.data(), p, 4);
                                   used.push_back(in);
                               }
                           });
    });
    if (r < 0) throw error(step::netlink, static_cast<int>(-r), "RTM_GETADDR", netlink.last_message());

    netlink_message routes(RTM_GETROUTE, 0);
    rtmsg route_header{};
    route_header.rtm_family = AF_INET;
    routes.add_header(route_header);
    r = netlink.dump(routes, [&](const nlmsghdr& h) {
        if (h.nlmsg_type != RTM_NEWROUTE || h.nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return;
        const auto* m = static_cast<const rtmsg*>(NLMSG_DATA(&h));
        if (m->rtm_dst_len == 0) return;  // a default route overlaps everything and shadows nothing
        const char* attributes = reinterpret_cast<const char*>(m) + NLMSG_ALIGN(sizeof *m);
        for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof *m)),
                           [&](std::uint16_t type, const char* p, std::size_t n) {
                               if (type == RTA_DST && n == 4) {
                                   ipv4_interface in{{}, m->rtm_dst_len};
                                   std::memcpy(in.address.bytes.data(), p, 4);
                                   used.push_back(in);
                               }
                           });
    });
    if (r < 0) throw error(step::netlink, static_cast<int>(-r), "RTM_GETROUTE", netlink.last_message());
    return used;
}

template <class = void>
inline bool overlaps(const ipv4_interface& a, const ipv4_interface& b) noexcept {
    const std::uint8_t shorter = a.prefix_length < b.prefix_length ? a.prefix_length : b.prefix_length;
    const ipv4_interface wide{a.address, shorter};
    return wide.contains(b.address);
}

// RTM_NEWLINK for a veth pair: the host end here, the peer in `peer`.
template <class = void>
inline long request_veth(rtnetlink& netlink, const std::string& host_name, const std::string& peer_name,
                         peer_namespace peer, unsigned mtu) {
    netlink_message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    ifinfomsg link_header{};
    link_header.ifi_family = AF_UNSPEC;
    m.add_header(link_header);
    m.add_string(IFLA_IFNAME, host_name);
    if (mtu != 0) m.add_u32(IFLA_MTU, mtu);
    const auto info = m.begin_nested(IFLA_LINKINFO);
    m.add_string(IFLA_INFO_KIND, "veth");
    const auto data = m.begin_nested(IFLA_INFO_DATA);
    const auto peer_info = m.begin_nested(VETH_INFO_PEER);
    m.add_header(link_header);  // the peer's own ifinfomsg comes first in VETH_INFO_PEER
    m.add_string(IFLA_IFNAME, peer_name);
    if (mtu != 0) m.add_u32(IFLA_MTU, mtu);
    if (peer.netns_fd >= 0) m.add_u32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(peer.netns_fd));
    else m.add_u32(IFLA_NET_NS_PID, static_cast<std::uint32_t>(peer.pid));
    m.end_nested(peer_info);
    m.end_nested(data);
    m.end_nested(info);
    return netlink.request(m);
}

// RTM_DELLINK by index, or by name when the index is 0.
template <class = void>
inline long delete_link(rtnetlink& netlink, int index, const std::string& name) {
    netlink_message m(RTM_DELLINK, 0);
    ifinfomsg h{};
    h.ifi_family = AF_UNSPEC;
    h.ifi_index = index;
    m.add_header(h);
    if (index == 0) m.add_string(IFLA_IFNAME, name);
    return netlink.request(m);
}

// Best effort, for error paths: a failed launch leaves no link behind.
template <class = void>
inline void delete_link_quietly(rtnetlink& netlink, int index, const std::string& name) noexcept {
    try {
        delete_link(netlink, index, name);
    } catch (...) {
    }
}

// The address with its prefix in one request. (SIOCSIFADDR would first give
// the address its old class mask, a /8 that a concurrent pool dump would
// take as covering every slot.)
template <class = void>
inline long add_address(rtnetlink& netlink, int index, const ipv4_interface& address) {
    netlink_message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg h{};
    h.ifa_family = AF_INET;
    h.ifa_prefixlen = address.prefix_length;
    h.ifa_index = static_cast<unsigned>(index);
    m.add_header(h);
    const in_addr in = address.address.to_in_addr();
    m.add_attribute(IFA_LOCAL, &in, sizeof in);
    m.add_attribute(IFA_ADDRESS, &in, sizeof in);
    return netlink.request(m);
}

// The same for IPv6, without duplicate address detection (IFA_F_NODAD):
// usable at once. -EAFNOSUPPORT: the kernel has no IPv6; -EACCES: IPv6 is
// disabled on the link (disable_ipv6).
template <class = void>
inline long add_address(rtnetlink& netlink, int index, const ipv6_interface& address) {
    netlink_message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg h{};
    h.ifa_family = AF_INET6;
    h.ifa_prefixlen = address.prefix_length;
    h.ifa_flags = IFA_F_NODAD;
    h.ifa_index = static_cast<unsigned>(index);
    m.add_header(h);
    const in6_addr in = address.address.to_in6_addr();
    m.add_attribute(IFA_LOCAL, &in, sizeof in);
    m.add_attribute(IFA_ADDRESS, &in, sizeof in);
    m.add_u32(IFA_FLAGS, IFA_F_NODAD);
    return netlink.request(m);
}

// fe80::1/64: the host end's link-local address (each link has its own).
inline const ipv6_interface host_link_local{{{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, 64};

// The /64 of `pool` that goes with an IPv4 subnet: its subnet ID (bytes 6
// and 7) is the /30's slot in its /16, the low 16 bits of its network
// address divided by 4; host end ::1, sandbox ::2.
template <class = void>
inline std::pair<ipv6_interface, ipv6_interface> ipv6_pair_for(const ipv6_interface& pool,
                                                               const ipv4_interface& ipv4) {
    const std::uint32_t slot = (ipv4.network().host_order() & 0xffffu) >> 2;
    ipv6_address subnet = pool.network();
    subnet.bytes[6] = static_cast<std::uint8_t>(subnet.bytes[6] | (slot >> 8));
    subnet.bytes[7] = static_cast<std::uint8_t>(subnet.bytes[7] | (slot & 0xffu));
    ipv6_address host = subnet, sandbox = subnet;
    host.bytes[15] = 1;
    sandbox.bytes[15] = 2;
    return {{host, 64}, {sandbox, 64}};
}

// What apply_ipv6_setup's failed_part numbers mean.
template <class = void>
inline std::string ipv6_setup_failure(int failed_part) {
    switch (failed_part) {
        case ctr::detail::ipv6_part_socket: return "opening a socket";
        case ctr::detail::ipv6_part_index: return "looking up the interface";
        case ctr::detail::ipv6_part_address: return "setting the IPv6 address";
        default: return "adding the IPv6 default route";
    }
}

template <class = void>
inline ctr::detail::ipv6_setup make_ipv6_setup(const std::string& name, const std::optional<ipv6_interface>& address,
                                               std::optional<ipv6_address> gateway) {
    ctr::detail::ipv6_setup setup;
    name.copy(setup.name, IFNAMSIZ - 1);
    if (!address) return setup;
    setup.present = 1;
    setup.prefix_length = address->prefix_length;
    setup.address = address->address.to_in6_addr();
    if (gateway) setup.gateway = gateway->to_in6_addr();
    return setup;
}

template <class = void>
inline long set_link_up(rtnetlink& netlink, int index) {
    netlink_message m(RTM_NEWLINK, 0);
    ifinfomsg h{};
    h.ifi_family = AF_UNSPEC;
    h.ifi_index = index;
    h.ifi_flags = IFF_UP;
    h.ifi_change = IFF_UP;
    m.add_header(h);
    return netlink.request(m);
}

// "ctr-0ae70004" for 10.231.0.5/30: the name that claims a pool subnet.
template <class = void>
inline std::string subnet_link_name(const ipv4_interface& address) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string name = "ctr-";
    const std::uint32_t network = address.network().host_order();
    for (int shift = 28; shift >= 0; shift -= 4) name += hex[(network >> shift) & 0xf];
    return name;
}

// Serializes choosing and claiming a pool slot between the threads of this
// process. Between processes, the generated name "ctr-<subnet>" is the claim (the
// create is NLM_F_EXCL). A lock object that other processes could see would
// have to be an fd, and children being set up at the same moment on other
// threads would hold a copy of it until they exec, while they wait for
// their own parent, who waits for the lock.
template <class = void>
inline std::mutex& pool_mutex() {
    static std::mutex m;
    return m;
}

// Why creating a link failed, in words an operator can act on.
template <class = void>
inline std::string create_link_reason(long negative_errno, const std::string& kernel_message) {
    std::string reason;
    switch (-negative_errno) {
        case EPERM:
            reason = "creating network links needs CAP_NET_ADMIN in the caller's network namespace: run as root "
                     "(rootless, use options::pasta: net::pasta, package passt)";
            break;
        case EEXIST: reason = "an interface with this name exists"; break;
        case EOPNOTSUPP: reason = "this kernel has no veth driver (CONFIG_VETH; modprobe veth)"; break;
        default: break;
    }
    if (!kernel_message.empty()) reason += (reason.empty() ? "" : "; ") + std::string("kernel: ") + kernel_message;
    return reason;
}

}  // namespace detail

// A network interface in the namespace it was made in, owned: deleted when
// the owner ends (deleting one end of a veth deletes both). It keeps its own
// netlink socket, so it is removed from the right namespace whichever
// thread ends it. Deleting is slow (the kernel waits for RCU grace periods:
// about 30 ms here), which is why spawn leaves a sandbox's pair to the
// kernel, which deletes it in the background when the namespace ends.
class [[nodiscard]] link {
public:
    link() = default;
    link(link&& other) noexcept
        : netlink_(std::move(other.netlink_)), index_(std::exchange(other.index_, 0)), name_(std::move(other.name_)) {}
    link& operator=(link&& other) noexcept {
        if (this != &other) {
            remove_quietly();
            netlink_ = std::move(other.netlink_);
            index_ = std::exchange(other.index_, 0);
            name_ = std::move(other.name_);
        }
        return *this;
    }
    ~link() { remove_quietly(); }

    template <class = void>
    int index() const noexcept { return index_; }
    template <class = void>
    const std::string& name() const noexcept { return name_; }
    explicit operator bool() const noexcept { return index_ > 0; }

    // Deletes the interface now. Gone already (its namespace ended and took
    // the pair with it) is not an error.
    template <class = void>
    void remove() {
        if (index_ <= 0) return;
        const long r = detail::delete_link(*netlink_, std::exchange(index_, 0), name_);
        if (r < 0 && r != -ENODEV) throw error(step::delete_link, static_cast<int>(-r), name_);
    }
    // Leaves the interface to the kernel: it goes when its namespace does.
    template <class = void>
    void release() noexcept { index_ = 0; }

    // Takes ownership of interface `index`, to be deleted through `netlink`.
    template <class = void>
    static link adopt(detail::rtnetlink netlink, int index, std::string name) {
        link out;
        out.netlink_ = std::move(netlink);
        out.index_ = index;
        out.name_ = std::move(name);
        return out;
    }

private:
    template <class = void>
    void remove_quietly() noexcept {
        if (index_ <= 0 || !netlink_) return;
        detail::delete_link_quietly(*netlink_, std::exchange(index_, 0), name_);
    }

    std::optional<detail::rtnetlink> netlink_;
    int index_ = 0;
    std::string name_;
};

// A veth pair: the host end owned here, the other end in a sandbox's
// namespace, still to be configured from inside (container_setup()).
class veth_pair;
template <class = void>
veth_pair create_veth(const veth& options, peer_namespace peer);

class [[nodiscard]] veth_pair {
public:
    template <class = void>
    const veth_info& info() const noexcept { return info_; }
    template <class = void>
    net::link& host_link() noexcept { return host_; }
    // What the sandbox side applies inside its namespace.
    template <class = void>
    ctr::detail::interface_setup container_setup() const {
        return detail::make_setup(info_.container_name, info_.container_address,
                                  info_.default_route ? std::optional(info_.host_address.address) : std::nullopt,
                                  info_.mtu);
    }
    // Its IPv6 half ("not present" without IPv6), applied after container_setup().
    template <class = void>
    ctr::detail::ipv6_setup container_ipv6_setup() const {
        return detail::make_ipv6_setup(info_.container_name, info_.container_ipv6,
                                       info_.default_route && info_.host_ipv6
                                           ? std::optional(info_.host_ipv6->address)
                                           : std::nullopt);
    }

private:
    template <class> friend veth_pair create_veth(const veth&, peer_namespace);
    net::link host_;
    veth_info info_;
};

// Sets an address (and a default route through `gateway`, and an MTU) on an
// interface of the current thread's network namespace and brings it up.
template <class = void>
inline void configure_interface(const std::string& name, const ipv4_interface& address,
                                std::optional<ipv4_address> gateway = {}, unsigned mtu = 0) {
    detail::check_interface_name(name);
    const auto setup = detail::make_setup(name, address, gateway, mtu);
    int failed_part = 0;
    if (const long r = ctr::detail::apply_interface_setup(setup, &failed_part); r < 0)
        throw error(step::configure_link, static_cast<int>(-r), name,
                    detail::interface_setup_failure(failed_part) + " " +
                        (failed_part == 3   ? std::to_string(mtu)
                         : failed_part == 5 ? "via " + (gateway ? gateway->to_string() : std::string())
                                            : address.to_string()));
}

// Adds an IPv6 address (without duplicate address detection) and, with a
// gateway, a default route through it, to an interface of the current
// thread's network namespace that is up.
template <class = void>
inline void configure_ipv6(const std::string& name, const ipv6_interface& address,
                           std::optional<ipv6_address> gateway = {}) {
    detail::check_interface_name(name);
    const auto setup = detail::make_ipv6_setup(name, address, gateway);
    int failed_part = 0;
    if (const long r = ctr::detail::apply_ipv6_setup(setup, &failed_part); r < 0)
        throw error(step::configure_link, static_cast<int>(-r), name,
                    detail::ipv6_setup_failure(failed_part) + " " +
                        (failed_part == ctr::detail::ipv6_part_route
                             ? "via " + (gateway ? gateway->to_string() : std::string())
                             : address.to_string()));
}

// Creates a veth pair: the host end in the caller's network namespace,
// addressed and up; the other end in `peer`, named options.container_name,
// to be configured from inside. Throws ctr::error naming the link.
template <class>
inline veth_pair create_veth(const veth& options, peer_namespace peer) {
    if (!options.host_name.empty()) detail::check_interface_name(options.host_name);
    detail::check_interface_name(options.container_name);
    if (options.host_address.has_value() != options.container_address.has_value())
        throw error(step::prepare, EINVAL, {}, "give both veth addresses (host and container) or neither");
    if (options.host_address && !options.host_address->contains(options.container_address->address))
        throw error(step::prepare, EINVAL, options.container_address->to_string(),
                    "the container address is not in the host end's subnet " + options.host_address->to_string());
    if (options.host_address && options.host_address->address == options.container_address->address)
        throw error(step::prepare, EINVAL, options.host_address->to_string(), "both ends have the same address");
    if (!options.host_address && options.pool.prefix_length > 30)
        throw error(step::prepare, EINVAL, options.pool.to_string(), "the address pool must hold at least a /30");
    if (options.host_ipv6.has_value() != options.container_ipv6.has_value())
        throw error(step::prepare, EINVAL, {}, "give both IPv6 veth addresses (host and container) or neither");
    if (options.host_ipv6 && !options.host_ipv6->contains(options.container_ipv6->address))
        throw error(step::prepare, EINVAL, options.container_ipv6->to_string(),
                    "the container's IPv6 address is not in the host end's subnet " + options.host_ipv6->to_string());
    if (options.host_ipv6 && options.host_ipv6->address == options.container_ipv6->address)
        throw error(step::prepare, EINVAL, options.host_ipv6->to_string(), "both ends have the same IPv6 address");
    if (options.ipv6 && !options.host_ipv6 && options.ipv6_pool.prefix_length > 48)
        throw error(step::prepare, EINVAL, options.ipv6_pool.to_string(),
                    "the IPv6 pool must be a /48 or wider (a /64 for each of 65536 slots)");
    if (options.mtu != 0 && (options.mtu < 68 || options.mtu > 65535))
        throw error(step::prepare, EINVAL, std::to_string(options.mtu), "the MTU must be 68 to 65535");
    if (peer.netns_fd < 0 && peer.pid <= 0)
        throw error(step::prepare, EINVAL, {}, "no network namespace given for the veth's other end");

    auto netlink = detail::rtnetlink::open();
    veth_pair pair;
    pair.info_.container_name = options.container_name;
    pair.info_.default_route = options.default_route;
    pair.info_.mtu = options.mtu;

    // One launch of this process at a time chooses a slot and claims it (the
    // name and the address below).
    std::lock_guard lock(detail::pool_mutex());
    const bool from_pool = !options.host_address;
    std::vector<ipv4_interface> in_use;
    if (from_pool) in_use = detail::networks_in_use_consistent(netlink);
    const std::uint32_t base = options.pool.network().host_order();
    const std::uint32_t slots = from_pool ? 1u << (30 - options.pool.prefix_length) : 65536u;
    bool created = false;
    for (std::uint32_t slot = 0; slot < slots && !created; ++slot) {
        ipv4_interface host_address, container_address;
        if (from_pool) {
            const ipv4_interface subnet{ipv4_address::from_host_order(base + 4 * slot), 30};
            bool taken = false;
            for (const auto& used : in_use) taken = taken || detail::overlaps(subnet, used);
            if (taken) continue;
            host_address = {ipv4_address::from_host_order(base + 4 * slot + 1), 30};
            container_address = {ipv4_address::from_host_order(base + 4 * slot + 2), 30};
        } else {
            host_address = *options.host_address;
            container_address = *options.container_address;
        }
        // A generated name names the subnet, whatever pool it came from; a
        // link still being deleted with an ended sandbox may hold one for a
        // while, and the next slot is tried then.
        const std::string name = !options.host_name.empty() ? options.host_name
                                 : from_pool              ? detail::subnet_link_name(host_address)
                                                          : "ctr" + std::to_string(slot);
        const long r = detail::request_veth(netlink, name, options.container_name, peer, options.mtu);
        if (r == -EEXIST) {
            const long taken = detail::interface_index(name);
            if (taken < 0)
                throw error(step::create_link, static_cast<int>(-taken), name, "looking up whether the name is taken");
            if (taken > 0 && options.host_name.empty()) continue;
            if (taken == 0)
                throw error(step::create_link, EEXIST, options.container_name,
                            "the sandbox's namespace already has an interface with this name");
        }
        if (r < 0) {
            // The link may exist even though its acknowledgement was lost.
            if (r != -EEXIST && detail::interface_index(name) > 0) detail::delete_link_quietly(netlink, 0, name);
            throw error(step::create_link, static_cast<int>(-r), name, detail::create_link_reason(r, netlink.last_message()));
        }
        pair.info_.host_name = name;
        pair.info_.host_address = host_address;
        pair.info_.container_address = container_address;
        created = true;
    }
    if (!created)
        throw error(step::create_link, EADDRNOTAVAIL, from_pool ? options.pool.to_string() : "ctr<N>",
                    from_pool ? "no free /30 left in the address pool" : "no free ctr<N> name");

    const long index = detail::interface_index(pair.info_.host_name);
    if (index <= 0) {
        detail::delete_link_quietly(netlink, 0, pair.info_.host_name);
        throw error(step::create_link, index < 0 ? static_cast<int>(-index) : ENODEV, pair.info_.host_name,
                    index < 0 ? "looking up the new link's index" : "the new link vanished");
    }
    pair.info_.host_index = static_cast<int>(index);
    if (const long r = detail::add_address(netlink, pair.info_.host_index, pair.info_.host_address); r < 0) {
        const std::string kernel = netlink.last_message();
        detail::delete_link_quietly(netlink, pair.info_.host_index, pair.info_.host_name);
        throw error(step::configure_link, static_cast<int>(-r), pair.info_.host_name,
                    "setting the address " + pair.info_.host_address.to_string() +
                        (kernel.empty() ? "" : "; kernel: " + kernel));
    }
    if (options.ipv6) {
        auto [host6, sandbox6] = options.host_ipv6 ? std::pair(*options.host_ipv6, *options.container_ipv6)
                                                   : detail::ipv6_pair_for(options.ipv6_pool, pair.info_.host_address);
        const long r = detail::add_address(netlink, pair.info_.host_index, host6);
        // No IPv6 in this kernel, or IPv6 disabled for new links: IPv4 alone.
        if (r == 0) {
            pair.info_.host_ipv6 = host6;
            pair.info_.container_ipv6 = sandbox6;
            // A link-local address usable at once too. The kernel makes one
            // when the link comes up, tentative for a second or two of
            // duplicate address detection, and a router sends neighbour
            // solicitations for packets it forwards only from a link-local
            // address that is not tentative: until then, forwarded packets
            // (published ports' clients, answers from beyond the host) to a
            // new sandbox wait.
            const long local = detail::add_address(netlink, pair.info_.host_index, detail::host_link_local);
            if (local < 0) {
                const std::string kernel = netlink.last_message();
                detail::delete_link_quietly(netlink, pair.info_.host_index, pair.info_.host_name);
                throw error(step::configure_link, static_cast<int>(-local), pair.info_.host_name,
                            "setting the address " + detail::host_link_local.to_string() +
                                (kernel.empty() ? "" : "; kernel: " + kernel));
            }
        } else if (r != -EAFNOSUPPORT && r != -EACCES) {
            const std::string kernel = netlink.last_message();
            detail::delete_link_quietly(netlink, pair.info_.host_index, pair.info_.host_name);
            throw error(step::configure_link, static_cast<int>(-r), pair.info_.host_name,
                        "setting the IPv6 address " + host6.to_string() + (kernel.empty() ? "" : "; kernel: " + kernel) +
                            " (veth::ipv6 = false leaves IPv6 out)");
        }
    }
    if (const long r = detail::set_link_up(netlink, pair.info_.host_index); r < 0) {
        detail::delete_link_quietly(netlink, pair.info_.host_index, pair.info_.host_name);
        throw error(step::configure_link, static_cast<int>(-r), pair.info_.host_name, "bringing it up");
    }
    pair.host_ = link::adopt(std::move(netlink), static_cast<int>(index), pair.info_.host_name);
    return pair;
}

}  // namespace ctr::net
// end ctr/net.hpp
// begin ctr/ns.hpp
// Namespaces: the kinds, references to existing ones, id maps, and making a
// namespace outlive its processes.


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
// end ctr/ns.hpp
// begin ctr/ns_scope.hpp
// ns::scope: the calling thread inside other namespaces for a while.


#include <sys/mount.h>

#include <string>
#include <utility>
#include <vector>

namespace ctr::ns {

namespace detail {

// Why a kind cannot be entered by one thread and left again, or nullptr.
constexpr const char* why_not_per_thread(kind k) noexcept {
    switch (k) {
        case kind::pid:
            return "a pid namespace applies only to children: use process::spawn with ns::pid";
        case kind::time:
            return "a time namespace applies only to children: use process::spawn with ns::time";
        case kind::user:
            return "a thread cannot enter a user namespace and come back (the kernel refuses it in a "
                   "multithreaded process, and a process cannot return to a parent user namespace): use "
                   "process::spawn with ns::user";
        default:
            return nullptr;
    }
}

template <class = void>
inline std::string thread_ns_path(kind k) { return "/proc/thread-self/ns/" + std::string(name(k)); }

}  // namespace detail

// Moves the calling thread into new or existing namespaces and, when it ends,
// back into the ones it came from (it holds their fds). Other threads keep
// their own namespaces throughout. For example a test runs a server and its
// client in a fresh network namespace on one thread while the others carry
// on in the host's.
//
// Mount namespaces are per fs_struct, which threads share: entering one
// first gives the thread an fs_struct of its own (unshare(CLONE_FS)), which
// stays after the scope ends. The working directory is restored.
//
// Not movable: it belongs to the thread that made it.
template <class>
class [[nodiscard]] basic_scope {
public:
    // Fresh namespaces of these kinds (not pid, time or user: see
    // detail::why_not_per_thread). A new network namespace has lo up; a new
    // mount namespace starts with every mount private, so nothing mounted in
    // it reaches the original.
    template <class = void>
    explicit basic_scope(kinds fresh) {
        check(fresh);
        save(fresh);
        check_can_return();
        try {
            if (fresh.has(mount)) {
                unshare_fs();
                call(ctr::detail::sys::unshare(CLONE_NEWNS), step::create_namespaces, "mnt");
                call(ctr::detail::sys::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr),
                     step::set_propagation, "/");
            }
            const kinds rest = fresh.without(mount);
            if (!rest.empty()) call(ctr::detail::sys::unshare(rest.flags()), step::create_namespaces, names(rest));
            if (fresh.has(network))
                call(ctr::detail::child_bring_up_loopback(), step::bring_up_loopback, "lo");
        } catch (...) {
            restore();
            throw;
        }
    }

    // Existing namespaces, each a path, fd or pidfd (see ns::existing).
    template <class = void>
    explicit basic_scope(const std::vector<existing>& targets) {
        kinds all_kinds;
        for (const auto& t : targets) all_kinds = all_kinds | t.which;
        check(all_kinds);
        save(all_kinds);
        check_can_return();
        try {
            for (const auto& t : targets) {
                if (t.which == mount) unshare_fs();
                unique_fd opened;
                int fd = -1;
                std::string what;
                if (const auto* path = std::get_if<std::string>(&t.source)) {
                    const long r = ctr::detail::sys::openat(AT_FDCWD, path->c_str(), O_RDONLY | O_CLOEXEC);
                    call(r, step::join_namespace, *path);
                    opened.reset(static_cast<int>(r));
                    fd = opened.get();
                    what = *path;
                } else {
                    fd = std::get<int>(t.source);
                    what = std::string(name(t.which)) + " namespace fd " + std::to_string(fd);
                }
                call(ctr::detail::sys::setns(fd, static_cast<int>(t.which)), step::join_namespace, what);
            }
        } catch (...) {
            restore();
            throw;
        }
    }

    basic_scope(const basic_scope&) = delete;
    basic_scope& operator=(const basic_scope&) = delete;
    basic_scope(basic_scope&&) = delete;
    basic_scope& operator=(basic_scope&&) = delete;

    // Back where the thread started; best effort.
    ~basic_scope() { restore(); }

    // Back where the thread started, reporting what failed.
    template <class = void>
    void leave() {
        if (saved_.empty()) return;
        const int failed = restore();
        if (failed != 0) throw error(step::leave_namespace, failed, left_failed_path_);
    }

private:
    template <class = void>
    static void check(kinds k) {
        for (kind each : every_kind)
            if (k.has(each))
                if (const char* why = detail::why_not_per_thread(each))
                    throw error(step::prepare, EINVAL, std::string(name(each)), why);
    }

    template <class = void>
    static std::string names(kinds k) {
        std::string text;
        for (kind each : every_kind)
            if (k.has(each)) text += (text.empty() ? "" : ",") + std::string(name(each));
        return text;
    }

    template <class = void>
    static void call(long result, step s, const std::string& path) {
        if (result < 0) throw error(s, static_cast<int>(-result), path);
    }

    template <class = void>
    void save(kinds k) {
        for (kind each : every_kind) {
            if (!k.has(each)) continue;
            const std::string path = detail::thread_ns_path(each);
            const long fd = ctr::detail::sys::openat(AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                saved_.clear();
                throw error(step::join_namespace, static_cast<int>(-fd), path, "cannot hold the current namespace");
            }
            saved_.emplace_back(each, unique_fd(static_cast<int>(fd)));
        }
        if (k.has(mount)) {
            const long cwd = ctr::detail::sys::openat(AT_FDCWD, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (cwd >= 0) cwd_.reset(static_cast<int>(cwd));
        }
    }

    // Entering is only worth it if the thread can come back: setns into the
    // namespace it is in now needs the same rights as coming back, and a
    // rootless caller lacks them for namespaces its user namespace does not
    // own. Asked before anything changes.
    template <class = void>
    void check_can_return() {
        for (auto& [which, fd] : saved_) {
            if (which == mount) continue;  // checked by the real setns below; it would move the cwd
            if (const long r = ctr::detail::sys::setns(fd.get(), static_cast<int>(which)); r < 0) {
                const std::string path = detail::thread_ns_path(which);
                saved_.clear();
                throw error(step::join_namespace, static_cast<int>(-r), path,
                            r == -EPERM ? "could not come back to this namespace: it belongs to a user namespace "
                                          "where this process lacks CAP_SYS_ADMIN (a rootless caller); use "
                                          "process::spawn instead"
                                        : "could not come back to this namespace");
            }
        }
    }

    template <class = void>
    void unshare_fs() {
        if (fs_unshared_) return;
        call(ctr::detail::sys::unshare(CLONE_FS), step::create_namespaces, "fs");
        fs_unshared_ = true;
    }

    // Returns 0 or the errno of the first failure.
    template <class = void>
    int restore() noexcept {
        int first_failure = 0;
        for (auto& [which, fd] : saved_) {
            if (const long r = ctr::detail::sys::setns(fd.get(), static_cast<int>(which)); r < 0 && !first_failure) {
                first_failure = static_cast<int>(-r);
                left_failed_path_ = detail::thread_ns_path(which);
            }
        }
        // Entering the old mount namespace put the thread at its root.
        if (cwd_) ctr::detail::sys::fchdir(cwd_.get());
        saved_.clear();
        cwd_.reset();
        return first_failure;
    }

    std::vector<std::pair<kind, unique_fd>> saved_;
    unique_fd cwd_;
    bool fs_unshared_ = false;
    std::string left_failed_path_;
};
using scope = basic_scope<void>;

// The same, with the kinds as template arguments, so that a kind that cannot
// be entered per thread is refused at compile time.
template <kind... Kinds>
class [[nodiscard]] fresh_scope : public scope {
    static_assert(((detail::why_not_per_thread(Kinds) == nullptr) && ...),
                  "pid and time namespaces apply only to children, and a thread cannot leave a user namespace: "
                  "use process::spawn for those");

public:
    fresh_scope() : scope((kinds() | ... | Kinds)) {}
};

}  // namespace ctr::ns
// end ctr/ns_scope.hpp
// begin ctr/outbound.hpp
// ctr::net outbound NAT: a veth sandbox reaching beyond the host. Its
// subnet is masqueraded behind the host's address on the way out, by a rule
// in an nftables table of ctr's own ("ip ctr", chain "postrouting"; its
// IPv6 /64 by the same rule in "ip6 ctr"), and
// the host forwards for it. spawn does it with net::veth{.outbound = true};
// the rule goes when the sandbox's handle reaps it, the table with the last
// rule, and reap_stale_outbound() (and every outbound launch, first) removes
// the rules of sandboxes whose link is gone (a crashed caller's), published
// ports' (port_nat.hpp) included: they share the table.
//
// Forwarding: IPv4 asks the interface a packet came in on whether it may be
// forwarded (net.ipv4.conf.<in>.forwarding; ip_forward is only the switch
// that sets every interface at once). The sandbox's packets come in on its
// host link and the answers on the uplink, so both forward: ctr sets it on
// its own link and on the interface of each default route, and leaves the
// rest of the host (net.ipv4.ip_forward, other interfaces) as it was. The
// uplink keeps forwarding after the last sandbox ends, as Docker and Podman
// leave ip_forward on: turning it off could break whatever else relied on it
// meanwhile.

// begin ctr/detail/nftables.hpp
// nftables through its netlink interface (NETLINK_NETFILTER, subsystem
// NFNL_SUBSYS_NFTABLES), without the nft binary: just what ctr's NAT needs
// (outbound NAT, published ports). Changes go in batches
// (NFNL_MSG_BATCH_BEGIN ... END) that the kernel applies all or nothing; a batch may name the ruleset generation it
// was planned against and is then refused with ERESTART when another change
// came first, which makes "delete the table if only my rule is left" safe
// between processes. Integers in nftables attributes are big-endian.
// Parent-side only: it allocates.


#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ctr::net::detail {

// An nftables message: nlmsghdr, nfgenmsg (the family: NFPROTO_IPV4 for an
// "ip" table), attributes.
template <class = void>
inline netlink_message nft_message(int type, std::uint16_t flags, std::uint8_t family = NFPROTO_IPV4) {
    netlink_message m(static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | type), flags);
    nfgenmsg g{};
    g.nfgen_family = family;
    g.version = NFNETLINK_V0;
    m.add_header(g);
    return m;
}

template <class = void>
inline void add_be32(netlink_message& m, std::uint16_t type, std::uint32_t value) {
    m.add_u32(type, htonl(value));
}

// NFTA_DATA_VALUE inside `type`: how cmp and bitwise take their constants.
template <class = void>
inline void add_data_value(netlink_message& m, std::uint16_t type, const void* bytes, std::size_t size) {
    const auto outer = m.begin_nested(type);
    m.add_attribute(NFTA_DATA_VALUE, bytes, size);
    m.end_nested(outer);
}

// One expression of a rule: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } };
// fill adds the expression's own attributes.
template <class Fill>
void add_expression(netlink_message& m, std::string_view name, Fill&& fill) {
    const auto element = m.begin_nested(NFTA_LIST_ELEM);
    m.add_string(NFTA_EXPR_NAME, name);
    const auto data = m.begin_nested(NFTA_EXPR_DATA);
    fill();
    m.end_nested(data);
    m.end_nested(element);
}

// A rule's comment as nft stores it in NFTA_RULE_USERDATA (a type-length-
// value list; type 0 is the comment, NUL included), so that `nft list
// ruleset` shows it.
template <class = void>
inline std::string rule_comment_userdata(const std::string& comment) {
    std::string out;
    out += '\0';
    out += static_cast<char>(comment.size() + 1);
    out += comment;
    out += '\0';
    return out;
}

template <class = void>
inline std::string comment_of_userdata(const char* p, std::size_t n) {
    while (n >= 2) {
        const auto type = static_cast<unsigned char>(p[0]);
        const auto length = static_cast<unsigned char>(p[1]);
        if (std::size_t{2} + length > n) break;
        if (type == 0) return std::string(p + 2, strnlen(p + 2, length));
        p += 2 + length;
        n -= std::size_t{2} + length;
    }
    return {};
}

// A rule as a dump shows it: its handle and its comment.
struct nft_rule_seen {
    std::uint64_t handle = 0;
    std::string comment;
};

// A NETLINK_NETFILTER socket in the current thread's network namespace.
class nftables_socket {
public:
    template <class = void>
    static nftables_socket open() {
        nftables_socket out;
        out.netlink_ = rtnetlink::open(NETLINK_NETFILTER, "NETLINK_NETFILTER");
        return out;
    }

    // The ruleset's generation, for commit.
    template <class = void>
    std::uint32_t generation() {
        auto m = nft_message(NFT_MSG_GETGEN, 0, AF_UNSPEC);
        std::uint32_t id = 0;
        const long r = netlink_.request(m, [&](const nlmsghdr& h) {
            if (h.nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return;
            const char* attributes = reinterpret_cast<const char*>(NLMSG_DATA(&h)) + netlink_align(sizeof(nfgenmsg));
            for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(netlink_align(sizeof(nfgenmsg))),
                               [&](std::uint16_t type, const char* p, std::size_t n) {
                                   if (type == NFTA_GEN_ID && n == 4) {
                                       std::memcpy(&id, p, 4);
                                       id = ntohl(id);
                                   }
                               });
        });
        if (r < 0) throw error(step::configure_nat, static_cast<int>(-r), "NFT_MSG_GETGEN", reason(r));
        return id;
    }

    // Whether table "ip <name>" (or "ip6 <name>" for NFPROTO_IPV6) exists.
    template <class = void>
    bool table_exists(const std::string& name, std::uint8_t family = NFPROTO_IPV4) {
        auto m = nft_message(NFT_MSG_GETTABLE, 0, family);
        m.add_string(NFTA_TABLE_NAME, name);
        const long r = netlink_.request(m, [](const nlmsghdr&) {});
        if (r == -ENOENT || r == -EAFNOSUPPORT) return false;
        if (r < 0)
            throw error(step::configure_nat, static_cast<int>(-r), family_name(family) + " " + name,
                        "looking the table up: " + reason(r));
        return true;
    }

    // The rules of table/chain (family ip, or ip6 for NFPROTO_IPV6); none
    // when either is missing.
    template <class = void>
    std::vector<nft_rule_seen> rules(const std::string& table, const std::string& chain,
                                     std::uint8_t family = NFPROTO_IPV4) {
        auto m = nft_message(NFT_MSG_GETRULE, 0, family);
        m.add_string(NFTA_RULE_TABLE, table);
        m.add_string(NFTA_RULE_CHAIN, chain);
        std::vector<nft_rule_seen> out;
        const long r = netlink_.dump(m, [&](const nlmsghdr& h) {
            if (h.nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return;
            const char* attributes = reinterpret_cast<const char*>(NLMSG_DATA(&h)) + netlink_align(sizeof(nfgenmsg));
            nft_rule_seen rule;
            bool ours = true;
            for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(netlink_align(sizeof(nfgenmsg))),
                               [&](std::uint16_t type, const char* p, std::size_t n) {
                                   // Older kernels ignore the filter and dump every rule.
                                   if (type == NFTA_RULE_TABLE) ours = ours && std::string(p, strnlen(p, n)) == table;
                                   if (type == NFTA_RULE_CHAIN) ours = ours && std::string(p, strnlen(p, n)) == chain;
                                   if (type == NFTA_RULE_HANDLE && n == 8) {
                                       std::uint32_t halves[2];
                                       std::memcpy(halves, p, 8);
                                       rule.handle = (std::uint64_t{ntohl(halves[0])} << 32) | ntohl(halves[1]);
                                   }
                                   if (type == NFTA_RULE_USERDATA) rule.comment = comment_of_userdata(p, n);
                               });
            if (ours) out.push_back(std::move(rule));
        });
        if (r == -ENOENT || r == -EAFNOSUPPORT) return {};
        if (r < 0)
            throw error(step::configure_nat, static_cast<int>(-r), family_name(family) + " " + table + " " + chain,
                        "listing the rules: " + reason(r));
        return out;
    }

    // Applies `messages` as one batch, all or nothing. With a generation
    // other than 0, the kernel refuses the batch when the ruleset changed
    // since: then false comes back, to plan again. Any other refusal throws,
    // naming `what` and the message that failed.
    template <class = void>
    bool commit(std::vector<netlink_message> messages, std::uint32_t generation, const std::string& what) {
        std::vector<std::string> names;
        std::vector<netlink_message> batch;
        auto begin = nft_message(NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
        begin.header().nlmsg_type = NFNL_MSG_BATCH_BEGIN;
        // The batch names its subsystem in res_id.
        reinterpret_cast<nfgenmsg*>(NLMSG_DATA(&begin.header()))->res_id = htons(NFNL_SUBSYS_NFTABLES);
        if (generation != 0) add_be32(begin, NFNL_BATCH_GENID, generation);
        batch.push_back(std::move(begin));
        for (auto& m : messages) {
            m.header().nlmsg_flags |= NLM_F_ACK;
            batch.push_back(std::move(m));
        }
        auto end = nft_message(NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
        end.header().nlmsg_type = NFNL_MSG_BATCH_END;
        reinterpret_cast<nfgenmsg*>(NLMSG_DATA(&end.header()))->res_id = htons(NFNL_SUBSYS_NFTABLES);
        batch.push_back(std::move(end));

        std::vector<std::uint32_t> sequences;
        if (const long r = netlink_.send_together(batch, sequences); r < 0)
            throw error(step::configure_nat, static_cast<int>(-r), what, "sending the nftables batch");
        std::vector<bool> answered(batch.size(), false);
        long first_error = 0;
        std::size_t failed = 0;
        const long r = netlink_.receive_queued([&](const nlmsghdr& h, long result) {
            for (std::size_t i = 0; i < sequences.size(); ++i) {
                if (sequences[i] != h.nlmsg_seq) continue;
                answered[i] = true;
                if (result < 0 && first_error == 0) {
                    first_error = result;
                    failed = i;
                }
            }
        });
        if (r < 0) throw error(step::configure_nat, static_cast<int>(-r), what, "reading the nftables answers");
        if (first_error == -ERESTART && failed == 0) return false;
        if (first_error < 0)
            throw error(step::configure_nat, static_cast<int>(-first_error), what,
                        (failed == 0 ? std::string("the batch") : message_name(batch[failed])) + ": " + reason(first_error));
        for (std::size_t i = 1; i + 1 < batch.size(); ++i)
            if (!answered[i])
                throw error(step::configure_nat, EPROTO, what, message_name(batch[i]) + ": no answer from the kernel");
        return true;
    }

    // "ip" or "ip6", as nft names the families.
    template <class = void>
    static std::string family_name(std::uint8_t family) {
        return family == NFPROTO_IPV6 ? "ip6" : "ip";
    }

private:
    template <class = void>
    std::string reason(long negative_errno) const {
        std::string out;
        switch (-negative_errno) {
            case EPERM: out = "nftables needs CAP_NET_ADMIN in this network namespace (run as root)"; break;
            case EPROTONOSUPPORT:
            case EAFNOSUPPORT: out = "this kernel has no nftables (CONFIG_NF_TABLES)"; break;
            case ENOENT:
                out = "the kernel lacks a part the rule needs (CONFIG_NFT_NAT, CONFIG_NFT_MASQ, CONFIG_NFT_FIB_IPV4, "
                      "and for IPv6 CONFIG_NF_TABLES_IPV6, CONFIG_NFT_FIB_IPV6) or the table is gone";
                break;
            default: break;
        }
        if (!netlink_.last_message().empty())
            out += (out.empty() ? "" : "; ") + std::string("kernel: ") + netlink_.last_message();
        return out;
    }

    template <class = void>
    static std::string message_name(netlink_message& m) {
        switch (m.header().nlmsg_type & 0xff) {
            case NFT_MSG_NEWTABLE: return "NFT_MSG_NEWTABLE";
            case NFT_MSG_DELTABLE: return "NFT_MSG_DELTABLE";
            case NFT_MSG_NEWCHAIN: return "NFT_MSG_NEWCHAIN";
            case NFT_MSG_NEWRULE: return "NFT_MSG_NEWRULE";
            case NFT_MSG_DELCHAIN: return "NFT_MSG_DELCHAIN";
            case NFT_MSG_DELRULE: return "NFT_MSG_DELRULE";
            default: return "nftables message " + std::to_string(m.header().nlmsg_type & 0xff);
        }
    }

    rtnetlink netlink_;
};

// The messages ctr's NAT is made of: table "ip <table>", base chains of
// type nat (or filter) on a hook, and rules built from the matches below,
// each with the comment that says whose it is.
template <class = void>
inline netlink_message new_table_message(const std::string& table, std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_NEWTABLE, NLM_F_CREATE, family);  // no NLM_F_EXCL: an existing one is kept
    m.add_string(NFTA_TABLE_NAME, table);
    return m;
}

template <class = void>
inline netlink_message delete_table_message(const std::string& table, std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_DELTABLE, 0, family);
    m.add_string(NFTA_TABLE_NAME, table);
    return m;
}

// A base chain: `type` "nat" or "filter", on `hook` (NF_INET_*) at
// `priority` (srcnat 100, dstnat -100, raw -300). An existing one is kept.
template <class = void>
inline netlink_message new_chain_message(const std::string& table, const std::string& chain, std::uint32_t hook,
                                         std::int32_t priority, const char* type,
                                         std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_NEWCHAIN, NLM_F_CREATE, family);
    m.add_string(NFTA_CHAIN_TABLE, table);
    m.add_string(NFTA_CHAIN_NAME, chain);
    const auto hook_attribute = m.begin_nested(NFTA_CHAIN_HOOK);
    add_be32(m, NFTA_HOOK_HOOKNUM, hook);
    add_be32(m, NFTA_HOOK_PRIORITY, static_cast<std::uint32_t>(priority));
    m.end_nested(hook_attribute);
    m.add_string(NFTA_CHAIN_TYPE, type);
    return m;
}

// The outbound chain: nat on postrouting at srcnat (100).
template <class = void>
inline netlink_message new_nat_chain_message(const std::string& table, const std::string& chain,
                                             std::uint8_t family = NFPROTO_IPV4) {
    return new_chain_message(table, chain, NF_INET_POST_ROUTING, 100, "nat", family);
}

// cmp of register 1 against `bytes`.
template <class = void>
inline void add_compare(netlink_message& m, std::uint32_t op, const void* bytes, std::size_t size) {
    add_expression(m, "cmp", [&] {
        add_be32(m, NFTA_CMP_SREG, NFT_REG_1);
        add_be32(m, NFTA_CMP_OP, op);
        add_data_value(m, NFTA_CMP_DATA, bytes, size);
    });
}

// `size` bytes at `offset` of the network (or transport) header into register 1.
template <class = void>
inline void add_load_payload(netlink_message& m, std::uint32_t base, std::uint32_t offset, std::uint32_t size) {
    add_expression(m, "payload", [&] {
        add_be32(m, NFTA_PAYLOAD_DREG, NFT_REG_1);
        add_be32(m, NFTA_PAYLOAD_BASE, base);
        add_be32(m, NFTA_PAYLOAD_OFFSET, offset);
        add_be32(m, NFTA_PAYLOAD_LEN, size);
    });
}

inline constexpr std::uint32_t ipv4_source_offset = 12;
inline constexpr std::uint32_t ipv4_destination_offset = 16;

// Loads `size` bytes of the network header at `offset` and compares them with
// `network`, masked with `mask` first unless the prefix covers every bit:
// the one rule shape behind both families' address matches.
template <class = void>
inline void match_masked(netlink_message& m, std::uint32_t offset, std::uint32_t size, const void* mask,
                         const void* network, bool whole) {
    add_load_payload(m, NFT_PAYLOAD_NETWORK_HEADER, offset, size);
    if (!whole) {
        const std::uint8_t zero[16] = {};
        add_expression(m, "bitwise", [&] {
            add_be32(m, NFTA_BITWISE_SREG, NFT_REG_1);
            add_be32(m, NFTA_BITWISE_DREG, NFT_REG_1);
            add_be32(m, NFTA_BITWISE_LEN, size);
            add_data_value(m, NFTA_BITWISE_MASK, mask, size);
            add_data_value(m, NFTA_BITWISE_XOR, zero, size);
        });
    }
    add_compare(m, NFT_CMP_EQ, network, size);
}

// ip saddr (offset 12) or ip daddr (offset 16) in `network`.
template <class = void>
inline void match_network(netlink_message& m, std::uint32_t offset, const ipv4_interface& network) {
    const std::uint32_t mask =
        htonl(network.prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - network.prefix_length));
    const in_addr address = network.network().to_in_addr();
    match_masked(m, offset, 4, &mask, &address, network.prefix_length >= 32);
}

inline constexpr std::uint32_t ipv6_source_offset = 8;
inline constexpr std::uint32_t ipv6_destination_offset = 24;

// ip6 saddr (offset 8) or ip6 daddr (offset 24) in `network`.
template <class = void>
inline void match_network(netlink_message& m, std::uint32_t offset, const ipv6_interface& network) {
    const ipv6_address mask = ipv6_interface{ipv6_address{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
                                             network.prefix_length}
                                  .network();
    const ipv6_address address = network.network();
    match_masked(m, offset, 16, mask.bytes.data(), address.bytes.data(), network.prefix_length >= 128);
}

// iifname or oifname (`key`) == or != `link` (IFNAMSIZ bytes, NUL padded).
template <class = void>
inline void match_interface(netlink_message& m, std::uint32_t key, std::uint32_t op, const std::string& link) {
    add_expression(m, "meta", [&] {
        add_be32(m, NFTA_META_KEY, key);
        add_be32(m, NFTA_META_DREG, NFT_REG_1);
    });
    char name[IFNAMSIZ] = {};
    link.copy(name, IFNAMSIZ - 1);
    add_compare(m, op, name, sizeof name);
}

// fib daddr type local: the destination is one of this namespace's own
// addresses (any interface, loopback included), as Docker's
// "-m addrtype --dst-type LOCAL". The result is a host-order u32.
template <class = void>
inline void match_local_destination(netlink_message& m) {
    add_expression(m, "fib", [&] {
        add_be32(m, NFTA_FIB_DREG, NFT_REG_1);
        add_be32(m, NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
        add_be32(m, NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
    });
    const std::uint32_t local = RTN_LOCAL;
    add_compare(m, NFT_CMP_EQ, &local, sizeof local);
}

// meta l4proto `protocol` and its destination port (2 bytes at offset 2 of
// TCP's and UDP's headers) == `port`.
template <class = void>
inline void match_destination_port(netlink_message& m, std::uint8_t protocol, std::uint16_t port) {
    add_expression(m, "meta", [&] {
        add_be32(m, NFTA_META_KEY, NFT_META_L4PROTO);
        add_be32(m, NFTA_META_DREG, NFT_REG_1);
    });
    add_compare(m, NFT_CMP_EQ, &protocol, 1);
    add_load_payload(m, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    const std::uint16_t big_endian = htons(port);
    add_compare(m, NFT_CMP_EQ, &big_endian, 2);
}

// dnat to address:port: both into registers (nft uses 1 and 2), then nat.
template <class = void>
inline void add_dnat(netlink_message& m, const ipv4_address& address, std::uint16_t port) {
    const in_addr to = address.to_in_addr();
    const std::uint16_t to_port = htons(port);
    const auto immediate = [&m](std::uint32_t reg, const void* bytes, std::size_t size) {
        add_expression(m, "immediate", [&] {
            add_be32(m, NFTA_IMMEDIATE_DREG, reg);
            add_data_value(m, NFTA_IMMEDIATE_DATA, bytes, size);
        });
    };
    immediate(NFT_REG_1, &to, 4);
    immediate(NFT_REG_2, &to_port, 2);
    add_expression(m, "nat", [&] {
        add_be32(m, NFTA_NAT_TYPE, NFT_NAT_DNAT);
        add_be32(m, NFTA_NAT_FAMILY, NFPROTO_IPV4);
        add_be32(m, NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
        add_be32(m, NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
    });
}

// dnat to [address]:port, for an ip6 table.
template <class = void>
inline void add_dnat(netlink_message& m, const ipv6_address& address, std::uint16_t port) {
    const std::uint16_t to_port = htons(port);
    const auto immediate = [&m](std::uint32_t reg, const void* bytes, std::size_t size) {
        add_expression(m, "immediate", [&] {
            add_be32(m, NFTA_IMMEDIATE_DREG, reg);
            add_data_value(m, NFTA_IMMEDIATE_DATA, bytes, size);
        });
    };
    // Register 1 is 16 bytes wide: the whole address, and the port in the next.
    immediate(NFT_REG_1, address.bytes.data(), 16);
    immediate(NFT_REG_2, &to_port, 2);
    add_expression(m, "nat", [&] {
        add_be32(m, NFTA_NAT_TYPE, NFT_NAT_DNAT);
        add_be32(m, NFTA_NAT_FAMILY, NFPROTO_IPV6);
        add_be32(m, NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
        add_be32(m, NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
    });
}

template <class = void>
inline void add_drop(netlink_message& m) {
    add_expression(m, "immediate", [&] {
        add_be32(m, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        const auto data = m.begin_nested(NFTA_IMMEDIATE_DATA);
        const auto verdict = m.begin_nested(NFTA_DATA_VERDICT);
        add_be32(m, NFTA_VERDICT_CODE, NF_DROP);
        m.end_nested(verdict);
        m.end_nested(data);
    });
}

// A rule appended to table/chain: `fill` adds its expressions.
template <class Fill>
netlink_message rule_message(const std::string& table, const std::string& chain, const std::string& comment,
                             Fill&& fill, std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, family);
    m.add_string(NFTA_RULE_TABLE, table);
    m.add_string(NFTA_RULE_CHAIN, chain);
    const auto expressions = m.begin_nested(NFTA_RULE_EXPRESSIONS);
    fill(m);
    m.end_nested(expressions);
    const std::string userdata = rule_comment_userdata(comment);
    m.add_attribute(NFTA_RULE_USERDATA, userdata.data(), userdata.size());
    return m;
}

// ip saddr <subnet> oifname != <link> masquerade comment "<comment>"
template <class = void>
inline netlink_message masquerade_rule_message(const std::string& table, const std::string& chain,
                                               const ipv4_interface& subnet, const std::string& link,
                                               const std::string& comment) {
    return rule_message(table, chain, comment, [&](netlink_message& m) {
        match_network(m, ipv4_source_offset, subnet);
        // Not the sandbox's own link, so that traffic between the host's
        // other ctr links or back into the same one keeps its source.
        match_interface(m, NFT_META_OIFNAME, NFT_CMP_NEQ, link);
        add_expression(m, "masq", [] {});
    });
}

// ip6 saddr <subnet> oifname != <link> masquerade comment "<comment>"
template <class = void>
inline netlink_message masquerade_rule_message(const std::string& table, const std::string& chain,
                                               const ipv6_interface& subnet, const std::string& link,
                                               const std::string& comment) {
    return rule_message(
        table, chain, comment,
        [&](netlink_message& m) {
            match_network(m, ipv6_source_offset, subnet);
            match_interface(m, NFT_META_OIFNAME, NFT_CMP_NEQ, link);
            add_expression(m, "masq", [] {});
        },
        NFPROTO_IPV6);
}

template <class = void>
inline netlink_message delete_rule_message(const std::string& table, const std::string& chain, std::uint64_t handle,
                                           std::uint8_t family = NFPROTO_IPV4) {
    auto m = nft_message(NFT_MSG_DELRULE, 0, family);
    m.add_string(NFTA_RULE_TABLE, table);
    m.add_string(NFTA_RULE_CHAIN, chain);
    const std::uint32_t halves[2] = {htonl(static_cast<std::uint32_t>(handle >> 32)),
                                     htonl(static_cast<std::uint32_t>(handle))};
    m.add_attribute(NFTA_RULE_HANDLE, halves, sizeof halves);
    return m;
}

}  // namespace ctr::net::detail
// end ctr/detail/nftables.hpp

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr::net {

namespace detail {

inline constexpr const char* nat_table = "ctr";
inline constexpr const char* nat_chain = "postrouting";
// Every chain ctr's rules live in: outbound's, and the published ports'
// (port_nat.hpp). Deleting plans over all of them, so that the table goes
// only with the last rule of any.
inline constexpr const char* ctr_chains[] = {"postrouting", "prerouting", "output", "guard"};
inline constexpr std::string_view outbound_comment_prefix = "ctr outbound ";
inline constexpr std::string_view ports_comment_prefix = "ctr ports ";

// "ctr outbound ctr-0ae70004 1234.1 57": the link the rule serves, who made
// it (pid and a count), so that each sandbox deletes only its own, and the
// link's index (when known), so that a rule outlives neither its link nor a
// link that took the name again.
template <class = void>
inline std::string rule_comment(std::string_view prefix, const std::string& link, int index) {
    static std::atomic<unsigned> count{0};
    std::string out = std::string(prefix) + link + " " + std::to_string(::getpid()) + "." + std::to_string(++count);
    if (index > 0) out += " " + std::to_string(index);
    return out;
}

template <class = void>
inline std::string outbound_comment(const std::string& link, int index = 0) {
    return rule_comment(outbound_comment_prefix, link, index);
}

// The link a rule's comment names, and its index (0: not recorded); an
// empty link when the rule is not one of ctr's (outbound or ports).
struct rule_owner {
    std::string link;
    int index = 0;
};

template <class = void>
inline rule_owner owner_of_comment(const std::string& comment) {
    std::string rest;
    for (const std::string_view prefix : {outbound_comment_prefix, ports_comment_prefix})
        if (comment.compare(0, prefix.size(), prefix) == 0) rest = comment.substr(prefix.size());
    rule_owner out;
    out.link = rest.substr(0, rest.find(' '));
    // The third word, when there is one and it is a number.
    const std::size_t maker = rest.find(' ');
    const std::size_t index = maker == std::string::npos ? maker : rest.find(' ', maker + 1);
    if (index != std::string::npos) {
        const std::string digits = rest.substr(index + 1);
        if (!digits.empty() && digits.size() < 10 && digits.find_first_not_of("0123456789") == std::string::npos)
            out.index = std::stoi(digits);
    }
    return out;
}

// The link an outbound rule's comment names; empty when it is not an outbound rule.
template <class = void>
inline std::string link_of_outbound_comment(const std::string& comment) {
    if (comment.compare(0, outbound_comment_prefix.size(), outbound_comment_prefix) != 0) return {};
    return owner_of_comment(comment).link;
}

// Deletes the rules of ctr's chains that `doomed` picks, and the table with
// them when no rule would be left. Planned against the ruleset's generation
// and planned again when another process changed it meanwhile, so that the
// table is never deleted under a rule just added. Returns how many went.
// Both of ctr's tables, "ip ctr" and "ip6 ctr", are planned in one batch.
template <class Doomed>
std::size_t delete_outbound_rules(nftables_socket& nft, Doomed&& doomed) {
    for (int attempt = 0;; ++attempt) {
        const std::uint32_t generation = nft.generation();
        std::vector<netlink_message> batch;
        std::size_t deleted = 0;
        for (const std::uint8_t family : {std::uint8_t{NFPROTO_IPV4}, std::uint8_t{NFPROTO_IPV6}}) {
            std::vector<netlink_message> part;
            std::size_t kept = 0;
            for (const char* chain : ctr_chains) {
                for (const auto& rule : nft.rules(nat_table, chain, family)) {
                    if (doomed(rule)) part.push_back(delete_rule_message(nat_table, chain, rule.handle, family));
                    else ++kept;
                }
            }
            deleted += part.size();
            if (part.empty()) continue;
            if (kept == 0) {
                part.clear();
                part.push_back(delete_table_message(nat_table, family));
            }
            for (auto& m : part) batch.push_back(std::move(m));
        }
        if (deleted == 0) return 0;
        if (nft.commit(std::move(batch), generation, std::string("ip/ip6 ") + nat_table)) return deleted;
        if (attempt == 20)
            throw error(step::configure_nat, EAGAIN, std::string("ip/ip6 ") + nat_table,
                        "the ruleset kept changing while ctr removed its rules");
    }
}

// Deletes ctr's rules (outbound and published ports) whose link is gone
// from the current namespace, or is another link by that name now.
template <class = void>
inline std::size_t delete_stale_outbound_rules(nftables_socket& nft) {
    return delete_outbound_rules(nft, [](const nft_rule_seen& rule) {
        const rule_owner owner = owner_of_comment(rule.comment);
        if (owner.link.empty()) return false;
        const unsigned index = if_nametoindex(owner.link.c_str());
        return index == 0 || (owner.index > 0 && index != static_cast<unsigned>(owner.index));
    });
}

// The names of the interfaces the main table's default routes (IPv4, or
// IPv6 for AF_INET6) leave by.
template <class = void>
inline std::vector<std::string> default_route_interfaces(rtnetlink& netlink, std::uint8_t family = AF_INET) {
    std::vector<int> indexes;
    netlink_message routes(RTM_GETROUTE, 0);
    rtmsg header{};
    header.rtm_family = family;
    routes.add_header(header);
    const long r = netlink.dump(routes, [&](const nlmsghdr& h) {
        if (h.nlmsg_type != RTM_NEWROUTE || h.nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return;
        const auto* m = static_cast<const rtmsg*>(NLMSG_DATA(&h));
        if (m->rtm_dst_len != 0 || m->rtm_type != RTN_UNICAST) return;
        std::uint32_t table = m->rtm_table;
        int oif = 0;
        const char* attributes = reinterpret_cast<const char*>(m) + NLMSG_ALIGN(sizeof *m);
        for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof *m)),
                           [&](std::uint16_t type, const char* p, std::size_t n) {
                               if (type == RTA_TABLE && n == 4) std::memcpy(&table, p, 4);
                               if (type == RTA_OIF && n == 4) std::memcpy(&oif, p, 4);
                           });
        if (table == RT_TABLE_MAIN && oif > 0) indexes.push_back(oif);
    });
    if (r < 0) throw error(step::configure_nat, static_cast<int>(-r), "RTM_GETROUTE", "finding the default route's interface");
    std::vector<std::string> names;
    for (const int index : indexes) {
        char name[IF_NAMESIZE] = {};
        if (if_indextoname(static_cast<unsigned>(index), name) != nullptr) names.emplace_back(name);
    }
    return names;
}

// net.ipv4.conf.<link>.<name> = 1 (net.ipv6... with `ipv6`) in the current
// thread's network namespace (/proc/sys/net shows the namespace of the
// thread that opens it). Returns false, with `missing_is_false`, when this
// kernel has no such switch.
template <class = void>
inline bool enable_interface_switch(const std::string& link, const std::string& name, bool ipv6 = false,
                                    bool missing_is_false = false) {
    const std::string path = std::string("/proc/sys/net/") + (ipv6 ? "ipv6" : "ipv4") + "/conf/" + link + "/" + name;
    const long fd = ctr::detail::sys::openat(AT_FDCWD, path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd == -ENOENT && missing_is_false) return false;
    if (fd < 0)
        throw error(step::configure_nat, static_cast<int>(-fd), path, "opening the interface's " + name + " switch");
    const unique_fd owned(static_cast<int>(fd));
    char now = '0';
    if (ctr::detail::sys::pread64(owned.get(), &now, 1, 0) == 1 && now == '1') return true;
    // At offset 0: with kernel.sysctl_writes_strict (the default), a write
    // anywhere else is ignored and still reports success.
    const long r = ctr::detail::sys::pwrite64(owned.get(), "1", 1, 0);
    if (r < 0) throw error(step::configure_nat, static_cast<int>(-r), path, "turning " + name + " on");
    if (ctr::detail::sys::pread64(owned.get(), &now, 1, 0) != 1 || now != '1')
        throw error(step::configure_nat, EIO, path, name + " stayed off after writing 1");
    return true;
}

template <class = void>
inline void enable_forwarding(const std::string& link) {
    enable_interface_switch(link, "forwarding");
}

// Before all.forwarding goes on: an interface that accepts router
// advertisements only while the host does not forward (accept_ra = 1, the
// default) would stop learning its addresses and default route from them,
// and lose them as they expire. accept_ra = 2 accepts them while forwarding,
// so each such interface, and `default` (for interfaces made later), goes
// from 1 to 2 and goes on as it did. Nothing changes while all.forwarding
// is already on: the host was a router before ctr came.
template <class = void>
inline void keep_accepting_router_advertisements() {
    const std::string conf = "/proc/sys/net/ipv6/conf";
    char now = '0';
    {
        const long fd = ctr::detail::sys::openat(AT_FDCWD, (conf + "/all/forwarding").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;  // no IPv6: enable_interface_switch says why
        const unique_fd all(static_cast<int>(fd));
        if (ctr::detail::sys::pread64(all.get(), &now, 1, 0) == 1 && now == '1') return;
    }
    DIR* dir = ::opendir(conf.c_str());
    if (!dir) throw error(step::configure_nat, errno, conf, "listing the interfaces' IPv6 settings");
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != ".." && name != "all") names.emplace_back(name);
    }
    ::closedir(dir);
    for (const auto& name : names) {
        const std::string path = conf + "/" + name + "/accept_ra";
        const long fd = ctr::detail::sys::openat(AT_FDCWD, path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd == -ENOENT) continue;  // gone since the listing
        if (fd < 0) throw error(step::configure_nat, static_cast<int>(-fd), path, "opening it");
        const unique_fd owned(static_cast<int>(fd));
        if (ctr::detail::sys::pread64(owned.get(), &now, 1, 0) != 1 || now != '1') continue;
        // At offset 0, as in enable_interface_switch.
        if (const long r = ctr::detail::sys::pwrite64(owned.get(), "2", 1, 0); r < 0)
            throw error(step::configure_nat, static_cast<int>(-r), path,
                        "keeping router advertisements accepted before net.ipv6.conf.all.forwarding goes on "
                        "(veth::ipv6 = false leaves IPv6 and this switch alone)");
    }
}

// IPv6 forwarding for a sandbox's link and the IPv6 uplinks. IPv6 asks
// net.ipv6.conf.all.forwarding alone: the per-interface "forwarding" only
// makes an interface act as a router (ignore router advertisements, answer
// as one), it forwards nothing. Linux 6.17 added a per-interface switch that
// does, force_forwarding, which ctr sets on these links only. Before it,
// the only way is all.forwarding = 1, as Docker and Podman do for IPv6:
// every interface then acts as a router, and one that learns its own
// default route from router advertisements (accept_ra = 1) would stop
// learning it: keep_accepting_router_advertisements sets those to 2 first.
template <class = void>
inline void enable_ipv6_forwarding(const std::string& link, rtnetlink& routes) {
    std::vector<std::string> links{link};
    for (auto& uplink : default_route_interfaces(routes, AF_INET6)) links.push_back(std::move(uplink));
    for (const auto& each : links)
        if (!enable_interface_switch(each, "force_forwarding", true, true)) {
            keep_accepting_router_advertisements();
            enable_interface_switch("all", "forwarding", true);
            return;
        }
}

}  // namespace detail

// One sandbox's masquerade rule, owned: deleted (and ctr's table with the
// last rule) when the owner ends. It keeps its own netlink socket, so it is
// removed from the right namespace whichever thread ends it.
template <class>
class [[nodiscard]] basic_outbound_nat {
public:
    basic_outbound_nat() = default;
    basic_outbound_nat(basic_outbound_nat&& other) noexcept : nft_(std::move(other.nft_)), comment_(std::move(other.comment_)) {
        other.nft_.reset();
    }
    basic_outbound_nat& operator=(basic_outbound_nat&& other) noexcept {
        if (this != &other) {
            remove_quietly();
            nft_ = std::move(other.nft_);
            comment_ = std::move(other.comment_);
            other.nft_.reset();
        }
        return *this;
    }
    ~basic_outbound_nat() { remove_quietly(); }

    explicit operator bool() const noexcept { return nft_.has_value(); }
    // The rule's comment, as `nft list table ip ctr` shows it.
    template <class = void>
    const std::string& comment() const noexcept { return comment_; }

    // Deletes the rule now if there is one, best effort (what the destructor does).
    template <class = void>
    void reset() noexcept { remove_quietly(); }

    // Deletes the rule now, and the table if it was the last.
    template <class = void>
    void remove() {
        if (!nft_) return;
        auto nft = std::move(*nft_);
        nft_.reset();
        detail::delete_outbound_rules(nft, [&](const detail::nft_rule_seen& rule) { return rule.comment == comment_; });
    }

    // Adds the rule for `link` (a veth's host end, and its subnet) in the
    // current thread's network namespace and turns forwarding on for the
    // link and the default route's interface. Throws ctr::error naming what
    // failed.
    template <class = void>
    static basic_outbound_nat add(const veth_info& link) {
        detail::enable_forwarding(link.host_name);
        auto routes = detail::rtnetlink::open();
        for (const auto& uplink : detail::default_route_interfaces(routes)) detail::enable_forwarding(uplink);
        if (link.host_ipv6) detail::enable_ipv6_forwarding(link.host_name, routes);
        basic_outbound_nat out;
        out.comment_ = detail::outbound_comment(link.host_name, link.host_index);
        auto nft = detail::nftables_socket::open();
        // A crashed caller's rules go with the next launch; best effort, the
        // new rule matters more.
        try {
            detail::delete_stale_outbound_rules(nft);
        } catch (const error&) {
        }
        std::vector<detail::netlink_message> batch;
        batch.push_back(detail::new_table_message(detail::nat_table));
        batch.push_back(detail::new_nat_chain_message(detail::nat_table, detail::nat_chain));
        batch.push_back(detail::masquerade_rule_message(detail::nat_table, detail::nat_chain, link.host_address,
                                                        link.host_name, out.comment_));
        std::string what = "masquerading " + link.host_address.network().to_string() + "/" +
                           std::to_string(link.host_address.prefix_length);
        if (link.host_ipv6) {
            // The same in "ip6 ctr", in the same batch: both or neither.
            batch.push_back(detail::new_table_message(detail::nat_table, NFPROTO_IPV6));
            batch.push_back(detail::new_nat_chain_message(detail::nat_table, detail::nat_chain, NFPROTO_IPV6));
            batch.push_back(detail::masquerade_rule_message(detail::nat_table, detail::nat_chain, *link.host_ipv6,
                                                            link.host_name, out.comment_));
            what += " and " + link.host_ipv6->network().to_string() + "/" +
                    std::to_string(link.host_ipv6->prefix_length) + " (veth::ipv6 = false leaves IPv6 out)";
        }
        nft.commit(std::move(batch), 0, what + " of " + link.host_name);
        out.nft_ = std::move(nft);
        return out;
    }

private:
    template <class = void>
    void remove_quietly() noexcept {
        try {
            remove();
        } catch (...) {
        }
    }

    std::optional<detail::nftables_socket> nft_;
    std::string comment_;
};
using outbound_nat = basic_outbound_nat<void>;

// Deletes ctr's rules (outbound NAT and published ports), in the current
// thread's network namespace, whose sandbox link no longer exists (their
// sandbox ended while its caller had crashed) or is another link by that
// name now, and ctr's table with the last of them. Returns how many.
// (Every outbound launch does the same first, best effort.)
template <class = void>
inline std::size_t reap_stale_outbound() {
    auto nft = detail::nftables_socket::open();
    return detail::delete_stale_outbound_rules(nft);
}

}  // namespace ctr::net
// end ctr/outbound.hpp
// begin ctr/port_forward.hpp
// ctr::net::port_forwarder: publishes ports of a sandbox on the caller's
// network namespace by relaying in user space, as docker-proxy and
// rootlesskit's builtin port driver do. It needs no privilege, no iptables
// and no route into the sandbox beyond the address it connects to.


#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <array>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ctr::net {

struct port_forward_options {
    // A UDP client's session (its socket towards the sandbox) ends after this
    // long without a datagram either way: UDP has no end of its own.
    std::chrono::milliseconds udp_idle_timeout{60'000};
    // Bytes held per TCP connection in each direction. A side is not read
    // while the buffer it fills is full, so a slow reader slows its writer
    // (through TCP's own flow control) instead of growing memory. The bytes
    // wait in a pipe (see port_relay's tcp_buffer), grown to this size where
    // it is above a pipe's default 64 KiB and the pipe-max-size sysctl allows.
    std::size_t tcp_buffer_size = 64 * 1024;
    int listen_backlog = 128;
};

// What the relay has done so far, for tests and diagnostics.
struct port_forward_stats {
    std::uint64_t tcp_connections = 0;       // accepted on a host port
    std::uint64_t tcp_connect_failures = 0;  // connections to the target that failed; their client was reset
    std::uint64_t tcp_open = 0;              // connections being relayed now
    std::uint64_t udp_sessions = 0;          // UDP sessions opened (one per client address while active)
    std::uint64_t udp_open = 0;              // UDP sessions open now
    std::uint64_t bytes_to_container = 0;
    std::uint64_t bytes_from_container = 0;
    // Directions of TCP connections relayed by copying through a buffer
    // instead of splice(2): no pipe to be had (out of fds), or the kernel
    // refused to splice those sockets. 0 in the common case.
    std::uint64_t tcp_copied_directions = 0;
    int loop_error = 0;                      // the errno the relay loop stopped on; 0 while it runs
};

}  // namespace ctr::net

namespace ctr::net::detail {

namespace sys = ctr::detail::sys;

// A bound (and for TCP listening) socket for the host side of `m`; throws
// ctr::error(step::publish_port) naming the host side and the call.
template <class = void>
inline unique_fd open_host_socket(const net::port_mapping& m, int backlog, std::uint16_t& bound_port) {
    unique_fd fd = bind_host_side(m, SOCK_NONBLOCK, bound_port);
    if (m.proto == net::protocol::tcp) {
        if (const long r = sys::listen(fd.get(), backlog); r < 0)
            throw error(step::publish_port, static_cast<int>(-r), m.host_side(), "listen");
    }
    return fd;
}

// A UDP client's address and port, IPv4 or IPv6, as a key: 16 address
// bytes (an IPv4 one in the first 4) and the port.
using udp_client_id = std::array<std::uint8_t, 18>;
struct udp_client_id_hash {
    std::size_t operator()(const udp_client_id& id) const noexcept {
        std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
        for (const std::uint8_t b : id) h = (h ^ b) * 1099511628211ULL;
        return static_cast<std::size_t>(h);
    }
};

// The relay: every socket of one port_forwarder and the epoll loop that
// moves their bytes. After start, only the relay thread touches it, except
// for the atomics (the stop flag and the counters) and the wake-up eventfd.
// A class template with one instantiation (port_relay), like the handles:
// its hash maps and its members are compiled only where a program publishes
// ports, not in every includer.
template <class>
class [[nodiscard]] basic_port_relay {
public:
    struct host_socket {
        net::port_mapping mapping;  // with the bound host port
        unique_fd fd;
        std::uint32_t watched = 0;  // the epoll events registered for it; 0: not registered
        // UDP: the session of each client, by address (see client_key).
        std::unordered_map<udp_client_id, std::uint64_t, udp_client_id_hash> udp_clients{};
    };

    template <class = void>
    basic_port_relay(std::vector<host_socket> hosts, const net::port_forward_options& options)
        : hosts_(std::move(hosts)),
          buffer_size_(options.tcp_buffer_size),
          udp_idle_timeout_(options.udp_idle_timeout),
          sweep_interval_(std::clamp<clock::duration>(options.udp_idle_timeout / 4, std::chrono::milliseconds(10),
                                                      std::chrono::seconds(1))) {}

    // Makes the epoll instance and the wake-up eventfd and registers the
    // host sockets: everything that can fail before the thread starts.
    template <class = void>
    void prepare(net::ipv4_address target) {
        target_ = target;
        const auto fail = [](long r, std::string_view call) {
            return error(step::publish_port, static_cast<int>(-r), {}, call);
        };
        const long ep = sys::epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) throw fail(ep, "epoll_create1");
        epoll_.reset(static_cast<int>(ep));
        // Non-blocking so that draining it never stalls the loop.
        const long ev = sys::eventfd2(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ev < 0) throw fail(ev, "eventfd2");
        wake_.reset(static_cast<int>(ev));
        std::uint32_t wake_watched = 0;
        if (const long r = watch(wake_.get(), token(kind::wake, 0), wake_watched, EPOLLIN); r < 0)
            throw fail(r, "epoll_ctl");
        for (std::size_t i = 0; i < hosts_.size(); ++i) {
            hosts_[i].watched = 0;  // a new epoll set: nothing is registered in it yet
            if (const long r = watch(hosts_[i].fd.get(), token(kind::host, i), hosts_[i].watched, EPOLLIN); r < 0)
                throw fail(r, "epoll_ctl");
            if (hosts_[i].mapping.proto == net::protocol::udp && !datagram_)
                datagram_ = std::make_unique_for_overwrite<char[]>(datagram_size);
        }
    }

    // The relay thread's body. Nothing escapes it: an exception leaving a
    // std::thread would terminate the whole process.
    template <class = void>
    void run() noexcept {
        try {
            loop();
        } catch (...) {
            loop_error_.store(ENOMEM, std::memory_order_relaxed);
        }
        // A loop that failed closes every connection and host socket, so that
        // clients see resets and refusals instead of a silent hang. The epoll
        // and eventfd stay: the owner may still be writing to the eventfd.
        if (loop_error_.load(std::memory_order_relaxed) != 0) drop_connections();
    }

    // From the owner's thread: ends run() soon. The eventfd wakes the loop at
    // once; should that write fail, the loop still sees the flag within its
    // longest wait (max_wait).
    template <class = void>
    void request_stop() noexcept {
        stop_.store(true, std::memory_order_release);
        const std::uint64_t one = 1;
        (void)sys::write(wake_.get(), &one, sizeof one);
    }

    // Closes every socket. Only once the thread has ended (or never started).
    template <class = void>
    void close_all() noexcept {
        drop_connections();
        wake_.reset();
        epoll_.reset();
        closed_ = true;
    }
    template <class = void>
    bool closed() const noexcept { return closed_; }

    template <class = void>
    int loop_error() const noexcept { return loop_error_.load(std::memory_order_relaxed); }

    template <class = void>
    net::port_forward_stats stats() const noexcept {
        constexpr auto relaxed = std::memory_order_relaxed;
        return {tcp_connections_.load(relaxed), tcp_connect_failures_.load(relaxed), tcp_open_.load(relaxed),
                udp_sessions_.load(relaxed),    udp_open_.load(relaxed),             bytes_to_.load(relaxed),
                bytes_from_.load(relaxed),      copied_.load(relaxed),               loop_error_.load(relaxed)};
    }

private:
    using clock = std::chrono::steady_clock;

    // What an epoll event is about, packed with an id into its 64-bit token.
    // Ids are never reused, so an event for a connection closed earlier in
    // the same batch finds nothing instead of another connection.
    enum class kind : std::uint64_t { wake, host, client, server, udp_session };
    static constexpr std::uint64_t token(kind k, std::uint64_t id) noexcept {
        return id << 3 | static_cast<std::uint64_t>(k);
    }

    static constexpr int batch = 64;                      // events per wait; accepts and datagrams per event
    static constexpr std::size_t datagram_size = 65536;   // more than the largest UDP payload over IPv4
    static constexpr auto max_wait = std::chrono::seconds(1);
    static constexpr auto accept_pause = std::chrono::milliseconds(100);
    static constexpr std::size_t default_pipe_size = 64 * 1024;  // pipe(7): 16 pages
    // SPLICE_F_MOVE is only a hint; SPLICE_F_NONBLOCK keeps the pipe's side
    // from blocking (the sockets are non-blocking themselves).
    static constexpr unsigned splice_flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

    // One direction of a TCP connection: bytes read from one side and not
    // yet written to the other. They wait in a pipe, moved in and out with
    // splice(2), so that they never cross into user space: the relay copies
    // nothing and the sockets' pages pass from one to the other. Where no
    // pipe can be had, or the kernel will not splice these sockets, they
    // wait in a buffer of ours instead, moved with recv and send.
    struct tcp_buffer {
        unique_fd pipe_read;   // spliced: the pipe's two ends
        unique_fd pipe_write;
        std::size_t held = 0;    // spliced: bytes in the pipe
        bool pipe_full = false;  // spliced: the pipe took nothing more with `held` below the limit (see pull)
        std::unique_ptr<char[]> bytes;  // copied: the buffer, and the part of it in use
        std::size_t begin = 0;
        std::size_t end = 0;
        bool eof = false;   // the side it is read from has sent its FIN
        bool shut = false;  // and that FIN was passed on: shutdown(SHUT_WR) of the other side
        bool spliced() const noexcept { return static_cast<bool>(pipe_read); }
        std::size_t size() const noexcept { return spliced() ? held : end - begin; }
    };
    struct tcp_link {
        unique_fd client;  // accepted on the host port
        unique_fd server;  // towards the target
        bool connecting = false;
        tcp_buffer up;    // client to server
        tcp_buffer down;  // server to client
        std::uint32_t client_watched = 0;
        std::uint32_t server_watched = 0;
    };
    struct udp_session {
        std::size_t host = 0;  // index into hosts_
        sockaddr_in6 client{};  // a sockaddr_in where the host side is IPv4 (sin_family says)
        unique_fd fd;  // connected to target:container_port
        std::uint32_t watched = 0;
        clock::time_point last_active{};
    };
    using link_iterator = typename std::unordered_map<std::uint64_t, tcp_link>::iterator;

    // Makes the epoll interest of `fd` `wanted` (level-triggered). An fd that
    // wants nothing is taken out rather than left with an empty mask: a
    // hung-up socket is reported (EPOLLHUP) on every wait whatever its mask.
    template <class = void>
    long watch(int fd, std::uint64_t tok, std::uint32_t& current, std::uint32_t wanted) noexcept {
        if (current == wanted) return 0;
        epoll_event event{};
        event.events = wanted;
        event.data.u64 = tok;
        const int op = wanted == 0 ? EPOLL_CTL_DEL : current == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        const long r = sys::epoll_ctl(epoll_.get(), op, fd, &event);
        if (r >= 0) current = wanted;
        return r;
    }

    template <class = void>
    void loop() {
        epoll_event events[batch];
        while (!stop_.load(std::memory_order_acquire)) {
            const long n = sys::epoll_wait(epoll_.get(), events, batch, wait_ms());
            if (n == -EINTR) continue;
            if (n < 0) {
                loop_error_.store(static_cast<int>(-n), std::memory_order_relaxed);
                return;
            }
            now_ = clock::now();
            for (long i = 0; i < n; ++i) {
                try {
                    dispatch(events[i].data.u64, events[i].events);
                } catch (...) {
                    // Out of memory while opening one connection or session:
                    // it was not made (its sockets closed as the exception
                    // left), and the others go on.
                }
            }
            now_ = clock::now();
            if (!sessions_.empty() && now_ >= next_sweep_) expire_sessions();
            if (accept_paused_ && now_ >= accept_resume_) resume_accepting();
        }
    }

    template <class = void>
    int wait_ms() const noexcept {
        const auto now = clock::now();
        auto deadline = now + max_wait;
        if (!sessions_.empty()) deadline = std::min(deadline, next_sweep_);
        if (accept_paused_) deadline = std::min(deadline, accept_resume_);
        if (deadline <= now) return 0;
        return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
    }

    template <class = void>
    void dispatch(std::uint64_t tok, std::uint32_t events) {
        const std::uint64_t id = tok >> 3;
        switch (static_cast<kind>(tok & 7)) {
            case kind::wake: {
                std::uint64_t count = 0;
                (void)sys::read(wake_.get(), &count, sizeof count);
                return;  // the loop looks at the stop flag next
            }
            case kind::host:
                if (hosts_[id].mapping.proto == net::protocol::tcp) accept_clients(id);
                else from_udp_client(id);
                return;
            case kind::client: on_link(id, false, events); return;
            case kind::server: on_link(id, true, events); return;
            case kind::udp_session: from_udp_target(id); return;
        }
    }

    // ---- TCP ----

    template <class = void>
    void accept_clients(std::size_t host) {
        for (int i = 0; i < batch; ++i) {
            const long fd = sys::accept4(hosts_[host].fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                open_link(host, unique_fd(static_cast<int>(fd)));
                continue;
            }
            switch (-fd) {
                case EAGAIN: return;
                // Errors of one connection that was aborted or refused on its
                // way in (accept(2) lists the network errors as such): the
                // next one may be fine.
                case EINTR: case ECONNABORTED: case EPROTO: case EPERM: case ENETDOWN: case ENOPROTOOPT:
                case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case ETIMEDOUT:
                    continue;
                default:
                    // Out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or
                    // an error we do not know: the listener would stay readable
                    // and spin the loop, so stop accepting for a moment. The
                    // connections wait in the backlog meanwhile.
                    pause_accepting();
                    return;
            }
        }
    }

    template <class = void>
    void pause_accepting() noexcept {
        for (std::size_t i = 0; i < hosts_.size(); ++i)
            if (hosts_[i].mapping.proto == net::protocol::tcp)
                (void)watch(hosts_[i].fd.get(), token(kind::host, i), hosts_[i].watched, 0);
        accept_paused_ = true;
        accept_resume_ = now_ + accept_pause;
    }
    template <class = void>
    void resume_accepting() noexcept {
        bool all = true;
        for (std::size_t i = 0; i < hosts_.size(); ++i)
            if (hosts_[i].mapping.proto == net::protocol::tcp && hosts_[i].fd)
                all = watch(hosts_[i].fd.get(), token(kind::host, i), hosts_[i].watched, EPOLLIN) >= 0 && all;
        accept_paused_ = !all;
        accept_resume_ = now_ + accept_pause;
    }

    // Sends a reset rather than a FIN when `fd` is closed: a client whose
    // target cannot be reached, or whose other side broke, learns that the
    // connection failed instead of reading a clean end of stream.
    template <class = void>
    static void reset_on_close(const unique_fd& fd) noexcept {
        if (!fd) return;
        const linger hard_close{1, 0};
        (void)sys::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &hard_close, sizeof hard_close);
    }

    // The relay must not add Nagle's delay on top of the endpoints' own:
    // what it reads is written on at once.
    template <class = void>
    static void no_delay(int fd) noexcept {
        const int one = 1;
        (void)sys::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    template <class = void>
    void open_link(std::size_t host, unique_fd client) {
        tcp_connections_.fetch_add(1, std::memory_order_relaxed);
        tcp_link link;
        link.client = std::move(client);
        const auto refuse = [&] {
            tcp_connect_failures_.fetch_add(1, std::memory_order_relaxed);
            reset_on_close(link.client);
        };
        const long s = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) return refuse();
        link.server.reset(static_cast<int>(s));
        no_delay(link.client.get());
        no_delay(link.server.get());
        // Non-blocking: a target that is slow to answer must not stall every
        // other connection. Completion shows as writability, then SO_ERROR.
        const sockaddr_in target = to_sockaddr(target_, hosts_[host].mapping.container_port);
        const long r = sys::connect(link.server.get(), &target, sizeof target);
        if (r < 0 && r != -EINPROGRESS) return refuse();
        link.connecting = r < 0;
        // The pipes last, so that they take only fds the sockets left over.
        make_room(link.up);
        make_room(link.down);
        const auto it = links_.emplace(next_id_++, std::move(link)).first;
        tcp_open_.fetch_add(1, std::memory_order_relaxed);
        settle(it);
    }

    template <class = void>
    void on_link(std::uint64_t id, bool server_side, std::uint32_t events) noexcept {
        const auto it = links_.find(id);
        if (it == links_.end()) return;  // closed earlier in this batch
        tcp_link& l = it->second;
        if (server_side && l.connecting) {
            int failure = 0;
            unsigned length = sizeof failure;
            if (const long r = sys::getsockopt(l.server.get(), SOL_SOCKET, SO_ERROR, &failure, &length); r < 0)
                failure = static_cast<int>(-r);
            if (failure != 0) {
                tcp_connect_failures_.fetch_add(1, std::memory_order_relaxed);
                return abort_link(it);
            }
            l.connecting = false;
            events = EPOLLOUT;  // pass on what the client sent meanwhile
        }
        const int from = server_side ? l.server.get() : l.client.get();
        const int to = server_side ? l.client.get() : l.server.get();
        tcp_buffer& inbound = server_side ? l.down : l.up;    // read from this side
        tcp_buffer& outbound = server_side ? l.up : l.down;   // written to this side
        auto& in_count = server_side ? bytes_from_ : bytes_to_;
        auto& out_count = server_side ? bytes_to_ : bytes_from_;
        bool ok = true;
        // An error or hang-up is found by the read (or below, the write)
        // that it makes fail.
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ok = pull(from, inbound);
        if (ok && (events & EPOLLOUT)) ok = push(from, outbound, out_count);
        // What was just read goes on at once, saving a round through epoll.
        if (ok && !l.connecting) ok = push(to, inbound, in_count);
        if (!ok) return abort_link(it);
        settle(it);
    }

    // Gives one direction a pipe, or, when none can be had (out of fds, or
    // past the pipe-user-pages limits), a buffer: the connection is relayed
    // either way.
    template <class = void>
    void make_room(tcp_buffer& b) {
        int fds[2];
        if (sys::pipe2(fds, O_CLOEXEC | O_NONBLOCK) >= 0) {
            b.pipe_read.reset(fds[0]);
            b.pipe_write.reset(fds[1]);
            // Best effort: a pipe kept at its default size still relays,
            // only in more rounds.
            if (buffer_size_ > default_pipe_size)
                (void)sys::fcntl(fds[1], F_SETPIPE_SZ, static_cast<long>(std::min<std::size_t>(buffer_size_, 1u << 30)));
            return;
        }
        b.bytes = std::make_unique_for_overwrite<char[]>(buffer_size_);
        copied_.fetch_add(1, std::memory_order_relaxed);
    }

    // Turns a spliced direction into a copied one, moving what its pipe
    // holds (at most buffer_size_ bytes) into a new buffer. False when there
    // is no memory for the buffer or the pipe cannot be read.
    template <class = void>
    bool copy_instead(tcp_buffer& b) noexcept {
        b.bytes.reset(new (std::nothrow) char[buffer_size_]);
        if (!b.bytes) return false;
        b.begin = b.end = 0;
        while (b.end < b.held) {
            const long n = sys::read(b.pipe_read.get(), b.bytes.get() + b.end, b.held - b.end);
            if (n > 0) b.end += static_cast<std::size_t>(n);
            else if (n != -EINTR) return false;
        }
        b.held = 0;
        b.pipe_full = false;
        b.pipe_read.reset();
        b.pipe_write.reset();
        copied_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    // Whether a failed splice means that splice cannot serve these files at
    // all (an old kernel, or a socket type that has no splice), so that
    // copying is the way on, rather than that the connection failed.
    static constexpr bool splice_unsupported(long r) noexcept { return r == -EINVAL || r == -ENOSYS; }

    // Reads from `fd` until it has nothing more, the buffer is full or the
    // side sends its FIN. False when the socket failed (a reset).
    template <class = void>
    bool pull(int fd, tcp_buffer& b) noexcept {
        while (b.spliced() && !b.eof && b.held < buffer_size_) {
            const long n = sys::splice(fd, nullptr, b.pipe_write.get(), nullptr, buffer_size_ - b.held, splice_flags);
            if (n > 0) {
                b.held += static_cast<std::size_t>(n);
            } else if (n == 0) {
                b.eof = true;
            } else if (n == -EAGAIN) {
                // The socket has nothing more, or the pipe is full: a pipe
                // counts pages, not bytes, and small segments can fill its
                // 16 slots well before `held` reaches the limit. An empty
                // pipe always has room, so with bytes held it is taken as
                // full, and the side is read again once push has drained
                // some (should the socket merely have been empty, that costs
                // one more wake-up). Watching a readable socket for a pipe
                // that cannot take its bytes would spin the loop.
                b.pipe_full = b.held > 0;
                return true;
            } else if (splice_unsupported(n)) {
                if (!copy_instead(b)) return false;
            } else if (n != -EINTR) {
                return false;
            }
        }
        if (b.spliced()) return true;
        if (b.end == buffer_size_ && b.begin > 0) {
            std::memmove(b.bytes.get(), b.bytes.get() + b.begin, b.size());
            b.end -= b.begin;
            b.begin = 0;
        }
        while (!b.eof && b.end < buffer_size_) {
            const long n = sys::recvfrom(fd, b.bytes.get() + b.end, buffer_size_ - b.end, 0, nullptr, nullptr);
            if (n > 0) b.end += static_cast<std::size_t>(n);
            else if (n == 0) b.eof = true;
            else if (n != -EINTR) return n == -EAGAIN;
        }
        return true;
    }

    // Writes what `b` holds to `fd` until the socket takes no more, then
    // passes a FIN on (half-close: the other direction keeps flowing). False
    // when the socket failed (the peer is gone).
    template <class = void>
    bool push(int fd, tcp_buffer& b, std::atomic<std::uint64_t>& count) noexcept {
        while (b.spliced() && b.held > 0) {
            // splice has no MSG_NOSIGNAL: a peer that has gone raises
            // SIGPIPE, which the relay thread blocks (port_forwarder::start),
            // so it stays pending on that thread and ends with it, while the
            // splice fails with EPIPE.
            const long n = sys::splice(b.pipe_read.get(), nullptr, fd, nullptr, b.held, splice_flags);
            if (n > 0) {
                b.held -= static_cast<std::size_t>(n);
                b.pipe_full = false;
                count.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
            } else if (n == -EAGAIN || n == 0) {
                return true;
            } else if (splice_unsupported(n)) {
                if (!copy_instead(b)) return false;
            } else if (n != -EINTR) {
                return false;
            }
        }
        while (!b.spliced() && b.size() > 0) {
            // MSG_NOSIGNAL: writing to a peer that has gone must not raise
            // SIGPIPE, whose default action would end the whole process.
            const long n = sys::sendto(fd, b.bytes.get() + b.begin, b.size(), MSG_NOSIGNAL, nullptr, 0);
            if (n > 0) {
                b.begin += static_cast<std::size_t>(n);
                count.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
            } else if (n == -EAGAIN || n == 0) {
                return true;
            } else if (n != -EINTR) {
                return false;
            }
        }
        if (!b.spliced()) b.begin = b.end = 0;
        if (b.eof && !b.shut) {
            if (sys::shutdown(fd, SHUT_WR) < 0) return false;
            b.shut = true;
        }
        return true;
    }

    // After every event of a link: closes it when both directions have ended,
    // else asks epoll for exactly what can make progress. A side is read only
    // while its buffer has room, and watched for writing only while there is
    // something to write to it.
    template <class = void>
    void settle(link_iterator it) noexcept {
        tcp_link& l = it->second;
        if (l.up.shut && l.down.shut) return close_link(it);
        static constexpr std::uint32_t in = EPOLLIN, out = EPOLLOUT, none = 0;
        const auto readable = [this](const tcp_buffer& b) {
            return !b.eof && !b.pipe_full && b.size() < buffer_size_ ? in : none;
        };
        const auto writable = [](const tcp_buffer& b) { return b.size() > 0 ? out : none; };
        const std::uint32_t client_wants = readable(l.up) | writable(l.down);
        const std::uint32_t server_wants = l.connecting ? out : readable(l.down) | writable(l.up);
        if (watch(l.client.get(), token(kind::client, it->first), l.client_watched, client_wants) < 0 ||
            watch(l.server.get(), token(kind::server, it->first), l.server_watched, server_wants) < 0)
            abort_link(it);
    }

    template <class = void>
    void abort_link(link_iterator it) noexcept {
        reset_on_close(it->second.client);
        reset_on_close(it->second.server);
        close_link(it);
    }
    // Closing the fds also takes them out of the epoll set.
    template <class = void>
    void close_link(link_iterator it) noexcept {
        links_.erase(it);
        tcp_open_.fetch_sub(1, std::memory_order_relaxed);
    }

    // ---- UDP ----

    template <class = void>
    static udp_client_id client_key(const sockaddr_in6& a) noexcept {
        udp_client_id id{};
        if (a.sin6_family == AF_INET6) {
            std::memcpy(id.data(), &a.sin6_addr, 16);
        } else {
            sockaddr_in v4;
            std::memcpy(&v4, &a, sizeof v4);
            std::memcpy(id.data(), &v4.sin_addr, 4);
        }
        std::memcpy(id.data() + 16, &a.sin6_port, 2);  // sin_port lies at the same offset
        return id;
    }

    template <class = void>
    void from_udp_client(std::size_t host) {
        for (int i = 0; i < batch; ++i) {
            sockaddr_in6 from{};
            unsigned length = sizeof from;
            const long n = sys::recvfrom(hosts_[host].fd.get(), datagram_.get(), datagram_size, 0, &from, &length);
            if (n == -EINTR) continue;
            if (n < 0) return;  // EAGAIN: drained
            udp_session* s = session_for(host, from);
            if (!s) continue;  // no socket to be had for it now: dropped, as UDP may
            long sent = send_datagram(s->fd.get(), static_cast<std::size_t>(n));
            // An ICMP port-unreachable that answered an earlier datagram is
            // reported by the next send, which it fails; the datagram is not
            // lost for it when the target has started listening since.
            if (sent == -ECONNREFUSED) sent = send_datagram(s->fd.get(), static_cast<std::size_t>(n));
            if (sent >= 0) {
                bytes_to_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
                s->last_active = now_;
            }
        }
    }

    template <class = void>
    long send_datagram(int fd, std::size_t size, const sockaddr_in6* to = nullptr) const noexcept {
        // MSG_DONTWAIT: a full send buffer drops the datagram rather than
        // stalling the loop.
        const unsigned length = !to ? 0u : to->sin6_family == AF_INET6 ? unsigned{sizeof(sockaddr_in6)}
                                                                      : unsigned{sizeof(sockaddr_in)};
        return sys::sendto(fd, datagram_.get(), size, MSG_NOSIGNAL | MSG_DONTWAIT, to, length);
    }

    // The session of a client address, opened on its first datagram: a
    // socket connected to the target, so that the target's replies can be
    // told apart per client and sent back from the host port.
    template <class = void>
    udp_session* session_for(std::size_t host, const sockaddr_in6& client) {
        auto& clients = hosts_[host].udp_clients;
        const udp_client_id key = client_key(client);
        if (const auto found = clients.find(key); found != clients.end()) return &sessions_.at(found->second);

        const long s = sys::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) return nullptr;
        udp_session session{host, client, unique_fd(static_cast<int>(s)), 0, now_};
        const sockaddr_in target = to_sockaddr(target_, hosts_[host].mapping.container_port);
        if (sys::connect(session.fd.get(), &target, sizeof target) < 0) return nullptr;
        const std::uint64_t id = next_id_++;
        if (watch(session.fd.get(), token(kind::udp_session, id), session.watched, EPOLLIN) < 0) return nullptr;
        if (sessions_.empty()) next_sweep_ = now_ + sweep_interval_;
        const auto it = sessions_.emplace(id, std::move(session)).first;
        try {
            clients.emplace(key, id);
        } catch (...) {
            sessions_.erase(it);
            throw;
        }
        udp_sessions_.fetch_add(1, std::memory_order_relaxed);
        udp_open_.fetch_add(1, std::memory_order_relaxed);
        return &it->second;
    }

    template <class = void>
    void from_udp_target(std::uint64_t id) noexcept {
        const auto it = sessions_.find(id);
        if (it == sessions_.end()) return;
        udp_session& s = it->second;
        for (int i = 0; i < batch; ++i) {
            const long n = sys::recvfrom(s.fd.get(), datagram_.get(), datagram_size, 0, nullptr, nullptr);
            // ECONNREFUSED: an ICMP error from the target, which has nothing
            // for the client; it finds out by its own timeout, as with any
            // datagram lost.
            if (n == -EINTR || n == -ECONNREFUSED) continue;
            if (n < 0) return;
            // Sent from the host socket, so the client sees the reply come
            // from the address and port it sent to.
            if (send_datagram(hosts_[s.host].fd.get(), static_cast<std::size_t>(n), &s.client) >= 0) {
                bytes_from_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
                s.last_active = now_;
            }
        }
    }

    template <class = void>
    void expire_sessions() noexcept {
        for (auto it = sessions_.begin(); it != sessions_.end();) {
            if (now_ - it->second.last_active < udp_idle_timeout_) {
                ++it;
                continue;
            }
            hosts_[it->second.host].udp_clients.erase(client_key(it->second.client));
            it = sessions_.erase(it);
            udp_open_.fetch_sub(1, std::memory_order_relaxed);
        }
        next_sweep_ = now_ + sweep_interval_;
    }

    template <class = void>
    void drop_connections() noexcept {
        links_.clear();
        sessions_.clear();
        tcp_open_.store(0, std::memory_order_relaxed);
        udp_open_.store(0, std::memory_order_relaxed);
        for (auto& h : hosts_) {
            h.udp_clients.clear();
            h.fd.reset();
            h.watched = 0;
        }
    }

    std::vector<host_socket> hosts_;
    std::size_t buffer_size_;
    clock::duration udp_idle_timeout_;
    clock::duration sweep_interval_;
    net::ipv4_address target_{};
    unique_fd epoll_;
    unique_fd wake_;
    std::unique_ptr<char[]> datagram_;
    std::unordered_map<std::uint64_t, tcp_link> links_;
    std::unordered_map<std::uint64_t, udp_session> sessions_;
    std::uint64_t next_id_ = 0;
    clock::time_point now_ = clock::now();
    clock::time_point next_sweep_{};
    clock::time_point accept_resume_{};
    bool accept_paused_ = false;
    bool closed_ = false;

    std::atomic<bool> stop_{false};
    std::atomic<int> loop_error_{0};
    std::atomic<std::uint64_t> tcp_connections_{0};
    std::atomic<std::uint64_t> tcp_connect_failures_{0};
    std::atomic<std::uint64_t> tcp_open_{0};
    std::atomic<std::uint64_t> udp_sessions_{0};
    std::atomic<std::uint64_t> udp_open_{0};
    std::atomic<std::uint64_t> bytes_to_{0};
    std::atomic<std::uint64_t> bytes_from_{0};
    std::atomic<std::uint64_t> copied_{0};
};
using port_relay = basic_port_relay<void>;

}  // namespace ctr::net::detail

namespace ctr::net {

// Publishes ports: listens on host ports in the caller's network namespace
// and relays each TCP connection and UDP client to a target address (the
// sandbox's) on one thread of its own. Move-only; the destructor stops the
// thread and closes every socket.
template <class>
class [[nodiscard]] basic_port_forwarder {
public:
    // Binds (and for TCP listens on) every mapping now, so that a busy port
    // fails before anything is started: ctr::error(step::publish_port,
    // EADDRINUSE, "0.0.0.0:8080/tcp"). Nothing is left open on failure. A
    // mapping on 0.0.0.0 with also_ipv6 (parse's "8080:80") listens on
    // [::] too, on the same port, where the kernel has IPv6; mappings()
    // lists it once.
    template <class = void>
    explicit basic_port_forwarder(std::vector<port_mapping> mappings, const port_forward_options& options = {}) {
        if (options.tcp_buffer_size == 0)
            throw error(step::prepare, EINVAL, "tcp_buffer_size", "a connection needs room for at least one byte");
        if (options.udp_idle_timeout <= std::chrono::milliseconds::zero())
            throw error(step::prepare, EINVAL, "udp_idle_timeout", "must be positive");
        for (const auto& m : mappings)
            if (m.container_port == 0) throw error(step::prepare, EINVAL, m.to_string(), "the container port is 0");
        std::vector<detail::port_relay::host_socket> hosts;
        hosts.reserve(mappings.size());
        for (auto& m : mappings) {
            std::uint16_t bound = 0;
            unique_fd fd = detail::open_host_socket(m, options.listen_backlog, bound);
            m.host_port = bound;
            hosts.push_back({m, std::move(fd)});
            // Docker's -p without an address: [::] too, on the same port,
            // where the kernel has IPv6 (an explicit 0.0.0.0 is IPv4 alone).
            if (m.also_ipv6 && !m.host_address.is_ipv6() && m.host_address.is_unspecified()) {
                port_mapping v6 = m;
                v6.host_address = ipv6_address{};
                try {
                    unique_fd fd6 = detail::open_host_socket(v6, options.listen_backlog, bound);
                    hosts.push_back({v6, std::move(fd6)});
                } catch (const error& e) {
                    if (e.code().value() != EAFNOSUPPORT && e.code().value() != EADDRNOTAVAIL) throw;
                }
            }
        }
        relay_ = std::make_unique<detail::port_relay>(std::move(hosts), options);
        mappings_ = std::move(mappings);
    }

    basic_port_forwarder(basic_port_forwarder&&) noexcept = default;
    basic_port_forwarder& operator=(basic_port_forwarder&& other) noexcept {
        if (this != &other) {
            stop();
            mappings_ = std::move(other.mappings_);
            relay_ = std::move(other.relay_);
            thread_ = std::move(other.thread_);
            started_ = other.started_;
        }
        return *this;
    }
    basic_port_forwarder(const basic_port_forwarder&) = delete;
    basic_port_forwarder& operator=(const basic_port_forwarder&) = delete;

    // Stops the relay thread and closes every socket; noexcept and bounded:
    // the loop wakes on an eventfd, or within a second should that fail.
    ~basic_port_forwarder() { stop(); }

    // Starts relaying to `target` (the sandbox's address): each TCP
    // connection accepted on a host port gets a connection of its own to
    // target:container_port; each UDP client address gets a session.
    // A second call is an error (step::prepare, EALREADY).
    template <class = void>
    void start(ipv4_address target) {
        if (!relay_ || relay_->closed())
            throw error(step::prepare, EBADF, {}, "the port forwarder is closed or was moved from");
        if (started_) throw error(step::prepare, EALREADY, {}, "the port forwarder was started already");
        relay_->prepare(target);

        // The relay thread takes no signals: the application's handlers, and
        // its signalfd or sigwait, expect them on its own threads. It gets
        // its mask from this thread at creation, so block here for the
        // moment. glibc's internal signals 32 (cancellation) and 33 (setxid)
        // stay open: a set*id() call elsewhere in the process signals every
        // thread and waits for each.
        const unsigned long all_but_glibc = ~((1UL << (32 - 1)) | (1UL << (33 - 1)));
        unsigned long previous = 0;
        if (const long r = ctr::detail::sys::rt_sigprocmask(SIG_SETMASK, &all_but_glibc, &previous); r < 0)
            throw error(step::publish_port, static_cast<int>(-r), {}, "block signals for the relay thread");
        int failure = 0;
        try {
            thread_ = std::thread([relay = relay_.get()] { relay->run(); });
        } catch (const std::system_error& e) {
            failure = e.code().value();
        }
        // Straight to the kernel, as in clone.hpp: restoring a mask the
        // kernel just gave us cannot fail, and an injected fault is not for it.
        ctr::detail::raw::call(SYS_rt_sigprocmask, SIG_SETMASK, &previous, nullptr,
                               ctr::detail::sys::kernel_sigset_size);
        if (failure != 0) throw error(step::publish_port, failure, {}, "start the relay thread");
        started_ = true;
    }

    // The host port of mapping `index`: the one asked for, or the one the
    // kernel picked for host_port 0. std::out_of_range past the end.
    template <class = void>
    std::uint16_t host_port(std::size_t index) const { return mappings_.at(index).host_port; }
    // The mappings with their bound host ports.
    template <class = void>
    const std::vector<port_mapping>& mappings() const noexcept { return mappings_; }

    template <class = void>
    port_forward_stats stats() const noexcept { return relay_ ? relay_->stats() : port_forward_stats{}; }

    // What the destructor does, reporting what it would swallow: a relay
    // loop that stopped on an error (ctr::error(step::publish_port)), after
    // which nothing was being relayed.
    template <class = void>
    void close() {
        stop();
        if (!relay_ || relay_->closed()) return;
        const int failure = relay_->loop_error();
        relay_->close_all();
        if (failure != 0) throw error(step::publish_port, failure, {}, "the relay loop stopped");
    }

private:
    template <class = void>
    void stop() noexcept {
        if (thread_.joinable()) {
            relay_->request_stop();
            thread_.join();
        }
    }

    std::vector<port_mapping> mappings_;
    // On the heap so that the thread's pointer survives moves of the forwarder.
    std::unique_ptr<detail::port_relay> relay_;
    std::thread thread_;
    bool started_ = false;
};
using port_forwarder = basic_port_forwarder<void>;

}  // namespace ctr::net
// end ctr/port_forward.hpp
// begin ctr/port_nat.hpp
// ctr::net::port_nat: a veth sandbox's published ports by the kernel's DNAT,
// over IPv4 and, where the sandbox has it, IPv6 (below),
// as Docker publishes them without its userland proxy. Rules in ctr's own
// nftables table ("ip ctr", the one outbound NAT uses) rewrite connections
// to a host port so that they go straight to the sandbox's address and
// port: no relay copies the bytes, and the server inside sees the client's
// own address.
//
//   chain prerouting (nat, dstnat -100): clients from elsewhere (other
//     hosts, other namespaces, other sandboxes);
//   chain output (nat, dstnat -100): clients on the host itself;
//   both: [fib daddr type local | ip daddr HOST] meta l4proto P th dport
//     HOSTPORT dnat to SANDBOX:PORT
//
// Loopback clients (127.0.0.1:HOSTPORT) need more, because the kernel keeps
// 127.0.0.0/8 off real interfaces: route_localnet on ctr's host link only
// (a packet from 127.0.0.1 may leave by it, and the answer to 127.0.0.1
// come in), a masquerade of 127.0.0.0/8 sources leaving by the link (the
// sandbox sees the host end's address and can answer), and, because
// route_localnet would otherwise let the sandbox itself reach the host's
// loopback services (CVE-2020-8558 in kube-proxy), a raw-priority filter
// that drops whatever comes in on the link to or from 127.0.0.0/8. These go
// only where a mapping listens on 0.0.0.0 or a loopback address. The
// sandbox's own source leaving by its own link is masqueraded too: the
// sandbox reaching its own published port at a host address (hairpin).
//
// Each host port is also bound (not listened on) in the caller's namespace
// while the rules live: a busy port fails as with the relay, port 0 becomes
// one the kernel picks, and no other program takes the port meanwhile.
// Forwarding goes on for the link and the default route's interface, as for
// outbound NAT (outbound.hpp), whose rule lifetime this follows: the rules
// carry the comment "ctr ports LINK PID.N INDEX", go with the owner, the
// table with the last rule of any of ctr's chains, and reap_stale_outbound()
// removes those of a crashed caller once the link is gone.
//
// IPv6: a mapping on an IPv6 address, or on 0.0.0.0 with also_ipv6 (the
// default: Docker's -p without an address publishes on [::] too), gets the
// same prerouting and output rules in "ip6 ctr", to the sandbox's IPv6
// address, and the hairpin masquerade. Not for loopback clients: IPv6 has
// no route_localnet, so a packet from ::1 cannot be sent to the sandbox
// (the rules leave ::1 alone and a client there is refused by the bound
// socket; a mapping on [::1] is refused, use 127.0.0.1 or the relay).


#include <linux/netfilter.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ctr::net {

namespace detail {

inline constexpr const char* dnat_chain = "prerouting";
inline constexpr const char* local_dnat_chain = "output";
inline constexpr const char* guard_chain = "guard";
inline const ipv4_interface loopback_network{{{127, 0, 0, 0}}, 8};

// Whether a client on the host's IPv4 loopback can reach the mapping's host side.
template <class = void>
inline bool reachable_on_loopback(const port_mapping& m) noexcept {
    return !m.host_address.is_ipv6() &&
           (m.host_address.is_unspecified() || loopback_network.contains(m.host_address.ipv4()));
}

// Whether the mapping is published over IPv6 to a sandbox that has it: an
// IPv6 host address, or 0.0.0.0 with also_ipv6 (then on [::] too).
template <class = void>
inline bool published_over_ipv6(const port_mapping& m, const veth_info& link) noexcept {
    return link.container_ipv6 && (m.host_address.is_ipv6() || (m.host_address.is_unspecified() && m.also_ipv6));
}

// Binds, without listening, a socket on the host side of `m` and sets its
// host port to the bound one, as the relay binds (bind_host_side); for
// 0.0.0.0 over IPv6 too, a second socket on [::] and the same port.
template <class = void>
inline void reserve_host_port(port_mapping& m, const veth_info& link, std::vector<unique_fd>& reserved) {
    std::uint16_t bound = 0;
    reserved.push_back(bind_host_side(m, 0, bound));
    m.host_port = bound;
    if (!m.host_address.is_ipv6() && published_over_ipv6(m, link)) {
        port_mapping v6 = m;
        v6.host_address = ipv6_address{};
        reserved.push_back(bind_host_side(v6, 0, bound));
    }
}

inline const ipv6_address ipv6_loopback{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};

// The same rules for IPv6, in "ip6 ctr": no loopback part (below), so
// none where there is nothing to publish over IPv6.
template <class = void>
inline void add_port_nat_rules6(std::vector<netlink_message>& batch, const veth_info& link,
                                const std::vector<port_mapping>& mappings, const std::string& comment) {
    bool any = false;
    for (const auto& m : mappings) any = any || published_over_ipv6(m, link);
    if (!any) return;
    constexpr std::uint8_t v6 = NFPROTO_IPV6;
    batch.push_back(new_table_message(nat_table, v6));
    batch.push_back(new_chain_message(nat_table, dnat_chain, NF_INET_PRE_ROUTING, -100, "nat", v6));
    batch.push_back(new_chain_message(nat_table, local_dnat_chain, NF_INET_LOCAL_OUT, -100, "nat", v6));
    batch.push_back(new_nat_chain_message(nat_table, nat_chain, v6));
    const ipv6_address sandbox = link.container_ipv6->address;
    for (const auto& m : mappings) {
        if (!published_over_ipv6(m, link)) continue;
        const std::uint8_t l4 = m.proto == protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
        for (const char* chain : {dnat_chain, local_dnat_chain}) {
            batch.push_back(rule_message(
                nat_table, chain, comment,
                [&](netlink_message& r) {
                    if (m.host_address.is_unspecified()) {
                        match_local_destination(r);
                        // Not ::1: IPv6 has no route_localnet, so a packet
                        // from ::1 rewritten towards the sandbox would be
                        // dropped as a martian. Left alone, a client there
                        // meets the bound, not listening, socket: refused at
                        // once instead of a connect that hangs.
                        add_load_payload(r, NFT_PAYLOAD_NETWORK_HEADER, ipv6_destination_offset, 16);
                        add_compare(r, NFT_CMP_NEQ, ipv6_loopback.bytes.data(), 16);
                    } else {
                        match_network(r, ipv6_destination_offset, ipv6_interface{m.host_address.ipv6(), 128});
                    }
                    match_destination_port(r, l4, m.host_port);
                    add_dnat(r, sandbox, m.container_port);
                },
                v6));
        }
    }
    // oifname LINK ip6 saddr SANDBOX masquerade: hairpin, as for IPv4.
    batch.push_back(rule_message(
        nat_table, nat_chain, comment,
        [&](netlink_message& r) {
            match_interface(r, NFT_META_OIFNAME, NFT_CMP_EQ, link.host_name);
            match_network(r, ipv6_source_offset, ipv6_interface{sandbox, 128});
            add_expression(r, "masq", [] {});
        },
        v6));
}

// The batch that publishes `mappings` (host ports bound) of the sandbox
// behind `link`: table, chains, rules.
template <class = void>
inline std::vector<netlink_message> port_nat_batch(const veth_info& link, const std::vector<port_mapping>& mappings,
                                                   const std::string& comment) {
    bool loopback = false;
    for (const auto& m : mappings) loopback = loopback || reachable_on_loopback(m);
    std::vector<netlink_message> batch;
    batch.push_back(new_table_message(nat_table));
    batch.push_back(new_chain_message(nat_table, dnat_chain, NF_INET_PRE_ROUTING, -100, "nat"));
    batch.push_back(new_chain_message(nat_table, local_dnat_chain, NF_INET_LOCAL_OUT, -100, "nat"));
    batch.push_back(new_nat_chain_message(nat_table, nat_chain));
    if (loopback) batch.push_back(new_chain_message(nat_table, guard_chain, NF_INET_PRE_ROUTING, -300, "filter"));
    const ipv4_address sandbox = link.container_address.address;
    for (const auto& m : mappings) {
        if (m.host_address.is_ipv6()) continue;
        const std::uint8_t l4 = m.proto == protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
        for (const char* chain : {dnat_chain, local_dnat_chain}) {
            batch.push_back(rule_message(nat_table, chain, comment, [&](netlink_message& r) {
                if (m.host_address.is_unspecified()) match_local_destination(r);
                else match_network(r, ipv4_destination_offset, ipv4_interface{m.host_address.ipv4(), 32});
                match_destination_port(r, l4, m.host_port);
                add_dnat(r, sandbox, m.container_port);
            }));
        }
    }
    // oifname LINK ip saddr SANDBOX masquerade: the sandbox reaching its own
    // published port through the host's address (hairpin), whose answer
    // must come back through the host too.
    batch.push_back(rule_message(nat_table, nat_chain, comment, [&](netlink_message& r) {
        match_interface(r, NFT_META_OIFNAME, NFT_CMP_EQ, link.host_name);
        match_network(r, ipv4_source_offset, ipv4_interface{sandbox, 32});
        add_expression(r, "masq", [] {});
    }));
    if (loopback) {
        // oifname LINK ip saddr 127.0.0.0/8 masquerade
        batch.push_back(rule_message(nat_table, nat_chain, comment, [&](netlink_message& r) {
            match_interface(r, NFT_META_OIFNAME, NFT_CMP_EQ, link.host_name);
            match_network(r, ipv4_source_offset, loopback_network);
            add_expression(r, "masq", [] {});
        }));
        // iifname LINK ip daddr 127.0.0.0/8 drop; iifname LINK ip saddr 127.0.0.0/8 drop.
        // Before conntrack: a loopback client's answers still carry the
        // host end's address here.
        for (const std::uint32_t offset : {ipv4_destination_offset, ipv4_source_offset}) {
            batch.push_back(rule_message(nat_table, guard_chain, comment, [&](netlink_message& r) {
                match_interface(r, NFT_META_IIFNAME, NFT_CMP_EQ, link.host_name);
                match_network(r, offset, loopback_network);
                add_drop(r);
            }));
        }
    }
    add_port_nat_rules6(batch, link, mappings, comment);
    return batch;
}

}  // namespace detail

// One sandbox's published ports, owned: the rules are deleted (and ctr's
// table with the last of them) and the host ports released when the owner
// ends. It keeps its own netlink socket, so it is removed from the right
// namespace whichever thread ends it.
template <class>
class [[nodiscard]] basic_port_nat {
public:
    basic_port_nat() = default;
    basic_port_nat(basic_port_nat&& other) noexcept
        : nft_(std::move(other.nft_)),
          comment_(std::move(other.comment_)),
          mappings_(std::move(other.mappings_)),
          reserved_(std::move(other.reserved_)) {
        other.nft_.reset();
    }
    basic_port_nat& operator=(basic_port_nat&& other) noexcept {
        if (this != &other) {
            remove_quietly();
            nft_ = std::move(other.nft_);
            comment_ = std::move(other.comment_);
            mappings_ = std::move(other.mappings_);
            reserved_ = std::move(other.reserved_);
            other.nft_.reset();
        }
        return *this;
    }
    ~basic_port_nat() { remove_quietly(); }

    explicit operator bool() const noexcept { return nft_.has_value(); }
    // The rules' comment, as `nft list table ip ctr` shows it.
    template <class = void>
    const std::string& comment() const noexcept { return comment_; }
    // The mappings with their bound host ports.
    template <class = void>
    const std::vector<port_mapping>& mappings() const noexcept { return mappings_; }

    // Deletes the rules now if there are any, best effort (what the destructor does).
    template <class = void>
    void reset() noexcept { remove_quietly(); }

    // Deletes the rules now, and the table if they were the last, and
    // releases the host ports.
    template <class = void>
    void remove() {
        reserved_.clear();
        if (!nft_) return;
        auto nft = std::move(*nft_);
        nft_.reset();
        detail::delete_outbound_rules(nft, [&](const detail::nft_rule_seen& rule) { return rule.comment == comment_; });
    }

    // Publishes `mappings` on the current thread's network namespace, to the
    // sandbox behind `link` (a veth's host end, its index and both
    // addresses): binds each host port, adds the rules, turns forwarding on
    // for the link and the default route's interface, and route_localnet on
    // the link where a mapping is reachable on loopback. Throws ctr::error
    // naming what failed (step::publish_port for a host port, step::configure_nat
    // for the rest), leaving nothing behind.
    template <class = void>
    static basic_port_nat add(const veth_info& link, std::vector<port_mapping> mappings) {
        for (const auto& m : mappings) {
            if (m.container_port == 0) throw error(step::prepare, EINVAL, m.to_string(), "the container port is 0");
            if (m.host_address.is_ipv6() && !link.container_ipv6)
                throw error(step::prepare, EINVAL, m.to_string(),
                            "the sandbox has no IPv6 address (veth::ipv6 is false, or the host has IPv6 off)");
            if (m.host_address.is_ipv6() && m.host_address.ipv6().is_loopback())
                throw error(step::prepare, EINVAL, m.to_string(),
                            "the kernel cannot DNAT from IPv6's loopback (there is no route_localnet for IPv6): "
                            "publish on 127.0.0.1, or relay [::1] with net::port_forwarder");
        }
        if (link.host_name.empty() || link.container_address.address == ipv4_address{})
            throw error(step::prepare, EINVAL, link.host_name, "publishing ports needs a veth's names and addresses");
        basic_port_nat out;
        bool ipv6 = false;
        for (auto& m : mappings) {
            detail::reserve_host_port(m, link, out.reserved_);
            ipv6 = ipv6 || detail::published_over_ipv6(m, link);
        }

        detail::enable_forwarding(link.host_name);
        auto routes = detail::rtnetlink::open();
        for (const auto& uplink : detail::default_route_interfaces(routes)) detail::enable_forwarding(uplink);
        if (ipv6) detail::enable_ipv6_forwarding(link.host_name, routes);

        out.comment_ = detail::rule_comment(detail::ports_comment_prefix, link.host_name, link.host_index);
        auto nft = detail::nftables_socket::open();
        // A crashed caller's rules go with the next launch; best effort, the
        // new rules matter more.
        try {
            detail::delete_stale_outbound_rules(nft);
        } catch (const error&) {
        }
        std::string what = "publishing";
        for (const auto& m : mappings) what += " " + m.to_string();
        what += " to " + link.container_address.address.to_string() + " behind " + link.host_name;
        nft.commit(detail::port_nat_batch(link, mappings, out.comment_), 0, what);
        out.nft_ = std::move(nft);
        out.mappings_ = std::move(mappings);
        // After the rules, the guard among them: until it stands, the
        // sandbox must not reach the host's loopback. A failure here
        // deletes the rules with `out`.
        bool loopback = false;
        for (const auto& m : out.mappings_) loopback = loopback || detail::reachable_on_loopback(m);
        if (loopback) detail::enable_interface_switch(link.host_name, "route_localnet");
        return out;
    }

private:
    template <class = void>
    void remove_quietly() noexcept {
        try {
            remove();
        } catch (...) {
        }
    }

    std::optional<detail::nftables_socket> nft_;
    std::string comment_;
    std::vector<port_mapping> mappings_;
    std::vector<unique_fd> reserved_;
};
using port_nat = basic_port_nat<void>;

}  // namespace ctr::net
// end ctr/port_nat.hpp
// begin ctr/prepared.hpp
// A prepared sandbox: the reusable parts of a launch made once, each run
// paying only for what must be fresh. Made once: the namespaces (user with
// its id maps, network, and the others asked for), the root filesystem's
// mount tree, the cgroup placement, the compiled seccomp filter and the rest
// of the run's program. Fresh for every run: a new pid namespace (an init is
// its pid 1 unless options::init is false), a new mount namespace with a fresh /proc and fresh
// tmpfs mounts (prepared_options::fresh_tmpfs), new IPC and UTS namespaces
// when the sandbox has them, the run's credentials and confinement, exec.
//
// Sandbox2's fork server and Android's zygote are the model: a small server
// process stays inside the sandbox and clones each run from there, so a run
// neither copies the caller's mount table nor waits on a cgroup attach.
// What runs share is listed in docs/prepared.md.
//
//   ctr::process::prepared_sandbox box({.namespaces = ctr::ns::all, .root = plan, .cgroup = &group,
//                                       .security = ctr::security::confined()});
//   auto r = box.run({"/bin/true"}).wait();

// begin ctr/detail/prepared_server.hpp
// The child side of a prepared sandbox (ctr/prepared.hpp): the server that
// stays in the sandbox's namespaces, root and cgroup, and starts each run
// from there, and the run's own first steps before the usual program
// (credentials, capabilities, seccomp, exec). Async-signal-safe like every
// other child step: the server runs on a copy of the caller's memory and
// reads only buffers the caller allocated before it was cloned; it
// allocates nothing and takes no lock.


#include <linux/sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cstddef>
#include <cstdint>

namespace ctr::detail {

// What the server says on a run's own channel.
enum class run_event : std::uint32_t { started = 1, failed = 2, ended = 3 };

struct run_message {
    run_event event = run_event::failed;
    std::int32_t pid = 0;            // as the sandbox's pid namespace sees it
    std::uint32_t op_index = 0;      // failed: which step (see the run_* indexes)
    std::int32_t error = 0;          // failed: errno
    std::int32_t detail = 0;         // failed: which part of the step
    std::int32_t wait_status = 0;    // ended: as wait4 gives it
    std::int64_t user_us = 0, system_us = 0, max_rss_kib = 0;  // ended: the run's rusage
};

// Failed steps that are not ops of the run program.
inline constexpr std::uint32_t run_mount_flag = 0x80000000U;  // | the index of a per-run mount step
inline constexpr std::uint32_t run_clone_index = 0x7ffffff0U;     // the server could not clone the run
inline constexpr std::uint32_t run_request_index = 0x7ffffff1U;   // the request did not fit or parse
inline constexpr std::uint32_t run_cwd_index = 0x7ffffff2U;       // chdir to the run's directory
inline constexpr std::uint32_t run_stream_index = 0x7ffffff3U;    // a standard stream to its number
inline constexpr std::uint32_t run_oom_index = 0x7ffffff4U;       // the run's oom_score_adj
inline constexpr std::uint32_t run_carry_index = 0x7ffffff5U;     // a carried mount (detail: which)
inline constexpr std::uint32_t run_init_index = 0x7ffffff6U;      // the run's pid 1 could not start the command
inline constexpr std::size_t most_carried_mounts = 32;

// A request: this header, then argc + envc + candc + 1 NUL-terminated
// strings (argv, environment, exec candidates, working directory). Its
// SCM_RIGHTS carry the run's channel, then the standard streams whose bits
// are set in `streams`.
struct run_request_header {
    std::uint32_t argc = 0, envc = 0, candc = 0;
    std::uint32_t streams = 0;
};

// Where the server keeps everything, all allocated by the caller before the
// server was cloned (its copy of the caller's memory has them).
struct prepared_server {
    int request_fd = -1;  // the server's end of the request socket
    // An fd of the run program's the server keeps for every run (at 4):
    // the Landlock ruleset each run's command applies to itself. -1: none.
    int run_program_fd = -1;
    // The run program, built by the caller (credentials, capabilities,
    // seccomp, exec); the server points it at each request's strings.
    child_view* run_view = nullptr;
    child_op* run_ops = nullptr;
    std::size_t exec_op = 0;
    // Mounts each run makes in its new mount namespace (a fresh /proc for
    // its pid namespace, fresh tmpfs), with host paths: the server is
    // already in the sandbox's root.
    const mount_step* mounts = nullptr;
    std::size_t mount_count = 0;
    mount_context* mount_ctx = nullptr;
    unsigned long run_clone_flags = 0;  // CLONE_NEWPID | CLONE_NEWNS, and IPC, UTS as the sandbox has them
    // In a cgroup with limits the runs, not the server or pid 1, are the
    // OOM killer's first choice: an out-of-memory run never ends the
    // sandbox (oom_score_adj 1000; raising it needs no privilege).
    bool runs_first_to_oom = false;
    // The sandbox's own mounts below a fresh tmpfs (a bind at /tmp/work
    // under a fresh /tmp): copied before the tmpfs covers them, put back
    // on top of it.
    const char* const* carried = nullptr;
    std::size_t carried_count = 0;
    int carried_fds[most_carried_mounts] = {};
    char* buffer = nullptr;
    std::size_t buffer_size = 0;
    char** argv = nullptr;
    char** envp = nullptr;
    const char** candidates = nullptr;
    std::size_t slots = 0;  // entries in each of the three arrays
    // Runs started and not yet reaped, a slot each.
    struct run_slot* runs = nullptr;
    std::size_t run_capacity = 0;
    bool use_init = true;  // options::init: pid 1 of each run is an init, the command its child
    // The run being started: read by the run's processes, which share the
    // server's memory until the command execs; the server waits for that
    // before it takes the next request.
    int streams[3] = {-1, -1, -1};
    const char* cwd = nullptr;
};

// One run: its pid 1's state (an init, when the sandbox has one: shared by
// the server, pid 1 and the command, all on the server's memory), its two
// stacks (mapped by the server on first use), its pid and channel.
struct run_slot {
    init_state init;  // first: the command's entry gets &init
    prepared_server* server = nullptr;
    void* stacks = nullptr;  // guard, pid 1's stack, guard, the command's stack
    int pid = 0;             // 0: free
    int pidfd = -1;          // until the server has sent it to the caller
    int channel = -1;
};
inline constexpr std::size_t run_stack_size = 64 * 1024, run_guard_size = 4096;

CTR_CHILD_CODE inline void server_send(int channel, const run_message& message, int fd = -1) noexcept {
    // A caller that dropped its run handle has closed the channel: nothing
    // to tell it, so the result is not looked at.
    child_send_with_fd(channel, &message, sizeof message, fd, MSG_NOSIGNAL | MSG_DONTWAIT);
}

CTR_CHILD_CODE inline void server_fail(int channel, std::uint32_t index, long negative_errno, int detail = 0) noexcept {
    run_message m{};
    m.event = run_event::failed;
    m.op_index = index;
    m.error = static_cast<std::int32_t>(-negative_errno);
    m.detail = detail;
    server_send(channel, m);
}

// Makes the directories of `path` (absolute, in the run's fresh tmpfs) and
// puts the detached mount `mnt` there. Async-signal-safe.
CTR_CHILD_CODE inline long place_carried_mount(const char* path, int mnt) noexcept {
    char buffer[mount_path_max];
    const std::size_t length = mount_strlen(path);
    if (length >= sizeof buffer) return -ENAMETOOLONG;
    for (std::size_t i = 0; i <= length; ++i) buffer[i] = path[i];
    for (std::size_t i = 1; i < length; ++i) {
        if (buffer[i] != '/') continue;
        buffer[i] = '\0';
        const long r = sys::mkdirat(AT_FDCWD, buffer, 0755);
        buffer[i] = '/';
        if (r < 0 && r != -EEXIST) return r;
    }
    struct stat st {};
    if (const long r = sys::fstatat(mnt, "", &st, AT_EMPTY_PATH); r < 0) return r;
    long made;
    if (S_ISDIR(st.st_mode)) {
        made = sys::mkdirat(AT_FDCWD, path, 0755);
    } else {
        made = sys::openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (made >= 0) sys::close(static_cast<int>(made));
    }
    if (made < 0 && made != -EEXIST) return made;
    return sys::move_mount(mnt, "", AT_FDCWD, path, mount_abi::move_mount_f_empty_path);
}

// The command's own first steps: its streams, its directory, then the run
// program (credentials, capabilities, seccomp, exec). Async-signal-safe.
[[noreturn]] CTR_CHILD_CODE inline void run_command(prepared_server& s) noexcept {
    const child_view& view = *s.run_view;
    for (int i = 0; i < 3; ++i)
        if (s.streams[i] >= 0)
            if (const long r = sys::dup3(s.streams[i], i, 0); r < 0) child_report_failure(view, run_stream_index, r);
    if (s.cwd != nullptr && s.cwd[0] != '\0')
        if (const long r = sys::chdir(s.cwd); r < 0) child_report_failure(view, run_cwd_index, r);
    child_run_program(view, 0);
}

// The command under a run's init: waits until pid 1 has sealed itself (as
// under spawn's init), dies with it, then goes on as above.
// Async-signal-safe.
CTR_CHILD_CODE inline int run_command_main(void* argument) noexcept {
    auto* slot = reinterpret_cast<run_slot*>(argument);
    sys::prctl(PR_SET_PDEATHSIG, SIGKILL);
    while (__atomic_load_n(&slot->init.command_gate, __ATOMIC_ACQUIRE) == 0)
        sys::futex(&slot->init.command_gate, FUTEX_WAIT, 0);
    run_command(*slot->server);
}

// pid 1 of a run: dies with the server, makes the run's mounts, then
// becomes its init (the command its child) or, without one, the command
// itself. Runs on the server's memory, on its slot's stack.
// Async-signal-safe.
CTR_CHILD_CODE inline int run_main(void* argument) noexcept {
    auto& slot = *static_cast<run_slot*>(argument);
    auto& s = *slot.server;
    const child_view& view = *s.run_view;
    // As spawn's clone does: no handler of the caller's (whose memory this
    // is) may run here; the init reads signals from a signalfd, the
    // command's program restores the mask last.
    const unsigned long all_signals = ~0UL;
    raw::call(SYS_rt_sigprocmask, SIG_SETMASK, &all_signals, nullptr, sys::kernel_sigset_size);
    sys::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (std::size_t i = 0; i < s.carried_count; ++i) {
        const long mnt = sys::open_tree(AT_FDCWD, s.carried[i],
                                        mount_abi::open_tree_clone | mount_abi::open_tree_cloexec | mount_abi::at_recursive);
        if (mnt < 0) {
            if (view.failure_detail) *view.failure_detail = static_cast<int>(i);
            child_report_failure(view, run_carry_index, mnt);
        }
        s.carried_fds[i] = static_cast<int>(mnt);
    }
    std::size_t failed = 0;
    if (s.mount_count > 0)
        if (const long r = run_mount_steps(s.mounts, s.mount_count, *s.mount_ctx, failed); r < 0)
            child_report_failure(view, run_mount_flag | failed, r);
    for (std::size_t i = 0; i < s.carried_count; ++i) {
        if (const long r = place_carried_mount(s.carried[i], s.carried_fds[i]); r < 0) {
            if (view.failure_detail) *view.failure_detail = static_cast<int>(i);
            child_report_failure(view, run_carry_index, r);
        }
        sys::close(s.carried_fds[i]);
    }
    if (s.runs_first_to_oom) {
        // /proc/self of a process that changed its ids (not dumpable)
        // belongs to the host's root, whom the sandbox's user namespace
        // does not map: the write needs the process dumpable, as it is
        // after exec anyway. The mm is the server's (CLONE_VM): an init
        // seals itself (not dumpable) before the command runs, and the
        // server does the same once the command has exec'd; nothing that
        // could trace it sees it in between (the run is alone in its new
        // pid namespace; the server is no more exposed than the caller it
        // copies). Children inherit the score: the command too.
        sys::prctl(PR_SET_DUMPABLE, 1);
        const long fd = sys::openat(AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        const long r = fd < 0 ? fd : sys::write(static_cast<int>(fd), "1000", 4);
        if (fd >= 0) sys::close(static_cast<int>(fd));
        if (r < 0) child_report_failure(view, run_oom_index, r);
    }
    if (s.use_init) child_become_init(view, run_init_index, &slot.init);
    run_command(s);
}

// The NUL-terminated string at `at` in the request; moves `at` past it.
// Null when the request ends first.
CTR_CHILD_CODE inline char* next_request_string(char* buffer, std::size_t length, std::size_t& at) noexcept {
    if (at >= length) return nullptr;
    char* start = buffer + at;
    while (at < length && buffer[at] != '\0') ++at;
    if (at >= length) return nullptr;
    ++at;
    return start;
}

// Points the run program at one request's strings. False when the
// request does not parse or does not fit.
CTR_CHILD_CODE inline bool server_parse(prepared_server& s, std::size_t length) noexcept {
    if (length < sizeof(run_request_header)) return false;
    run_request_header header;
    __builtin_memcpy(&header, s.buffer, sizeof header);
    const std::size_t counts[3] = {header.argc, header.envc, header.candc};
    char** lists[3] = {s.argv, s.envp, const_cast<char**>(s.candidates)};
    std::size_t at = sizeof header;
    for (int l = 0; l < 3; ++l) {
        if (counts[l] + 1 > s.slots) return false;
        for (std::size_t i = 0; i < counts[l]; ++i)
            if (!(lists[l][i] = next_request_string(s.buffer, length, at))) return false;
        lists[l][counts[l]] = nullptr;
    }
    if (header.argc == 0 || header.candc == 0) return false;
    char* const cwd = next_request_string(s.buffer, length, at);
    if (!cwd) return false;
    s.cwd = cwd;
    s.run_view->argv = s.argv;
    s.run_view->envp = s.envp;
    s.run_ops[s.exec_op].data = s.candidates;
    return true;
}

// Clones a run's pid 1 into `slot` (mapping its stacks on first use), with
// a fresh report channel. Returns the channel's read end, or -errno.
CTR_CHILD_CODE inline long server_clone_run(prepared_server& s, run_slot& slot) noexcept {
    if (!slot.stacks) {
        void* base = nullptr;
        const std::size_t size = 2 * (run_guard_size + run_stack_size);
        if (const long r = sys::mmap(&base, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE);
            r < 0)
            return r;
        raw::call(SYS_mprotect, base, run_guard_size, PROT_NONE);
        raw::call(SYS_mprotect, static_cast<char*>(base) + run_guard_size + run_stack_size, run_guard_size, PROT_NONE);
        slot.stacks = base;
    }
    char* const base = static_cast<char*>(slot.stacks);
    int report[2];
    if (const long r = sys::pipe2(report, O_CLOEXEC); r < 0) return r;
    s.run_view->report_fd = report[1];
    slot.server = &s;
    slot.init = init_state{};
    slot.init.command_stack_top = base + 2 * (run_guard_size + run_stack_size);
    slot.init.command_entry = run_command_main;
    slot.init.view = s.run_view;
    // No owner watch (owner_pidfd -1): the server's own death ends the
    // run, by the parent-death signal.
    int pidfd = -1;
    clone_args args{};
    args.flags = CLONE_VM | CLONE_PIDFD | s.run_clone_flags;
    args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<std::uint64_t>(base + run_guard_size);
    args.stack_size = run_stack_size;
    const long pid = sys::clone3(&args, sizeof args, run_main, &slot);
    sys::close(report[1]);
    if (pid < 0) {
        sys::close(report[0]);
        return pid;
    }
    slot.pid = static_cast<int>(pid);
    slot.pidfd = pidfd;
    return report[0];
}

// Starts one run: receives the request, clones the run into new pid and
// mount namespaces (it execs before the server goes on), and answers on the
// run's channel with its pid and a pidfd, or with the failed step.
CTR_CHILD_CODE inline void server_start_run(prepared_server& s) noexcept {
    constexpr std::size_t most_fds = 4;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * most_fds)];
    iovec part{s.buffer, s.buffer_size};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    long length;
    do length = sys::recvmsg(s.request_fd, &message, MSG_CMSG_CLOEXEC);
    while (length == -EINTR);
    // The caller closed its end (the sandbox's owner object is gone): the
    // server ends, and with it pid 1 and every run.
    if (length == 0) sys::exit_group(0);
    if (length < 0) sys::exit_group(child_failed_exit_code);

    int fds[most_fds] = {-1, -1, -1, -1};
    std::size_t fd_count = 0;
    if (const cmsghdr* c = CMSG_FIRSTHDR(&message); c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        fd_count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (fd_count > most_fds) fd_count = most_fds;
        __builtin_memcpy(fds, CMSG_DATA(c), sizeof(int) * fd_count);
    }
    if (fd_count == 0) return;  // no channel to answer on
    const int channel = fds[0];
    run_request_header header{};
    if (static_cast<std::size_t>(length) >= sizeof header) __builtin_memcpy(&header, s.buffer, sizeof header);
    std::size_t next_fd = 1;
    for (int i = 0; i < 3; ++i) s.streams[i] = (header.streams & (1U << i)) && next_fd < fd_count ? fds[next_fd++] : -1;

    run_slot* slot = nullptr;
    for (std::size_t i = 0; i < s.run_capacity && !slot; ++i)
        if (s.runs[i].pid == 0) slot = &s.runs[i];
    if ((message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || !server_parse(s, static_cast<std::size_t>(length))) {
        server_fail(channel, run_request_index, -EPROTO);
    } else if (!slot) {
        server_fail(channel, run_request_index, -EAGAIN);
    } else if (const long started = server_clone_run(s, *slot); started < 0) {
        server_fail(channel, run_clone_index, started);
    } else {
        // The run's channel: closed when its pid 1 has exec'd the command
        // (every copy of the write end gone), or a report of the failed step.
        const int report_read = static_cast<int>(started);
        child_report report{};
        long got;
        do got = sys::read(report_read, &report, sizeof report);
        while (got == -EINTR);
        sys::close(report_read);
        if (s.runs_first_to_oom) sys::prctl(PR_SET_DUMPABLE, 0);
        if (got == static_cast<long>(sizeof report)) {
            int status = 0;
            long r;
            do r = sys::wait4(slot->pid, &status, 0);
            while (r == -EINTR);
            server_fail(channel, report.op_index, -static_cast<long>(report.error), report.detail);
            sys::close(slot->pidfd);
            slot->pidfd = -1;
            slot->pid = 0;
        } else {
            run_message m{};
            m.event = run_event::started;
            m.pid = slot->pid;
            server_send(channel, m, slot->pidfd);
            sys::close(slot->pidfd);
            slot->pidfd = -1;
            slot->channel = channel;
            for (std::size_t i = 1; i < fd_count; ++i) sys::close(fds[i]);
            return;
        }
    }
    for (std::size_t i = 1; i < fd_count; ++i) sys::close(fds[i]);
    sys::close(channel);
}

// Reaps every run that ended and tells its caller how.
CTR_CHILD_CODE inline void server_reap(prepared_server& s) noexcept {
    for (;;) {
        int status = 0;
        rusage usage{};
        // With the run's rusage: raw, as the wrapper passes none.
        const long pid = raw::call(SYS_wait4, -1, &status, WNOHANG, &usage);
        if (pid == -EINTR) continue;
        if (pid <= 0) return;
        for (std::size_t i = 0; i < s.run_capacity; ++i) {
            run_slot& slot = s.runs[i];
            if (slot.pid != pid) continue;
            run_message ended{};
            ended.event = run_event::ended;
            ended.pid = static_cast<std::int32_t>(pid);
            // An init leaves the command's own status (a signal stays a
            // signal); without one, or when pid 1 was killed first, its own.
            ended.wait_status = s.use_init && slot.init.command_wait_status != -1 ? slot.init.command_wait_status : status;
            ended.user_us = usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec;
            ended.system_us = usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
            ended.max_rss_kib = usage.ru_maxrss;
            server_send(slot.channel, ended);
            sys::close(slot.channel);
            slot.channel = -1;
            slot.pid = 0;
            break;
        }
    }
}

// The server: the last step of the sandbox's program, in place of exec.
// Tells the caller "held" (spawn returns: every step of the sandbox has
// succeeded), keeps only its request socket (op.a), then serves requests
// and reaps runs until the caller closes the socket. op.data: the
// prepared_server; op.data2: the sandbox program's view (its report fd).
// Async-signal-safe; never returns.
CTR_CHILD_CODE inline long serve_prepared_runs(const child_op& op) noexcept {
    auto& s = *static_cast<prepared_server*>(const_cast<void*>(op.data));
    const auto& view = *static_cast<const child_view*>(op.data2);
    // Nothing of the caller's stays open here: only the standard streams
    // (/dev/null), the request socket at op.a (3), the run program's fd (4)
    // when it has one, and the report channel (above the fds mapped) until
    // "held" is sent. Closed before it is sent, so that nobody who sees the
    // sandbox made finds them open.
    s.request_fd = static_cast<int>(op.a);
    const int report_fd = view.report_fd;
    const int first_closed = s.run_program_fd >= 0 ? s.run_program_fd + 1 : 4;
    if (s.request_fd != 3 || report_fd < first_closed || (s.run_program_fd >= 0 && s.run_program_fd != 4))
        sys::exit_group(child_failed_exit_code);
    if (report_fd > first_closed)
        sys::close_range(static_cast<unsigned>(first_closed), static_cast<unsigned>(report_fd - 1), 0);
    sys::close_range(static_cast<unsigned>(report_fd + 1), ~0U, 0);
    const child_report held{held_report_index, 0, 0};
    if (sys::write(report_fd, &held, sizeof held) != static_cast<long>(sizeof held))
        sys::exit_group(child_failed_exit_code);
    sys::close(report_fd);

    const unsigned long child_signal = 1UL << (SIGCHLD - 1);
    raw::call(SYS_rt_sigprocmask, SIG_BLOCK, &child_signal, nullptr, sys::kernel_sigset_size);
    const long signals = sys::signalfd4(-1, &child_signal, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signals < 0) sys::exit_group(child_failed_exit_code);

    for (;;) {
        pollfd ready[2] = {{s.request_fd, POLLIN, 0}, {static_cast<int>(signals), POLLIN, 0}};
        const long r = sys::ppoll(ready, 2, nullptr);
        if (r == -EINTR) continue;
        if (r < 0) sys::exit_group(child_failed_exit_code);
        if (ready[1].revents & POLLIN) {
            signalfd_siginfo info[8];
            while (sys::read(static_cast<int>(signals), info, sizeof info) > 0) {
            }
            server_reap(s);
        }
        if (ready[0].revents & (POLLIN | POLLHUP | POLLERR)) server_start_run(s);
    }
}

}  // namespace ctr::detail
// end ctr/detail/prepared_server.hpp
// begin ctr/process.hpp
// process::spawn with every launch layer: <ctr/spawn.hpp> plus the root
// filesystem (options::root), a veth network (options::network) and pasta
// (options::pasta).
//
// A program that only spawns can include <ctr/spawn.hpp> and parse none of
// these. Here too a layer's code is compiled only where its option is set
// (detail::layer_option): spawn calls it through the pointer that setting
// the option took.

// begin ctr/detail/launch_filesystem.hpp
// Launch layer: the child's root filesystem, a mount plan run in its new
// mount namespace before pivot_root, with every right the new namespaces
// give and before credentials and capabilities take rights away. Idmapped
// binds are made by the parent, which alone may idmap a host filesystem,
// and sent to the child to attach.

// begin ctr/detail/launch_plan.hpp
// The launch plan: everything a spawn prepares before clone, and the one
// mechanism through which each layer (namespaces, network, mounts, fds,
// credentials, capabilities, seccomp, ...) contributes to a launch.
//
// A layer is a planner function in its own header. It may
//   - add child steps with plan.add(phase, op, path, explain): the steps are
//     ordered by phase (launch_phase below, the one documented order of a
//     launch), then by the order in which they were added;
//   - keep the data its steps read alive with plan.keep(...);
//   - add parent steps with plan.while_child_waits(...): they run in the
//     parent after clone, while the child waits on the sync channel, and may
//     append bytes to the message the child reads after its go byte;
//   - explain a failed step of its own: `explain` turns the child's report
//     into the error the caller sees.
// spawn() only composes the planners and runs the result.

// begin ctr/detail/clone.hpp
// Creating the child: its stack, and clone3 with a clone(2) fallback.


#include <linux/sched.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace ctr::detail {

// The stack the child runs on until exec. A guard page below it turns an
// overflow into a fault instead of a write into the parent's memory.
template <class>
class basic_child_stack {
public:
    static constexpr std::size_t usable_size = 64 * 1024;
    static constexpr std::size_t guard_size = 4096;

    basic_child_stack() = default;
    basic_child_stack(basic_child_stack&& other) noexcept : base_(std::exchange(other.base_, nullptr)) {}
    basic_child_stack& operator=(basic_child_stack&& other) noexcept {
        if (this != &other) {
            release_mapping();
            base_ = std::exchange(other.base_, nullptr);
        }
        return *this;
    }
    ~basic_child_stack() { release_mapping(); }

    // Returns 0 or -errno.
    template <class = void>
    long allocate() noexcept {
        void* base = nullptr;
        const long r = sys::mmap(&base, guard_size + usable_size, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE);
        if (r < 0) return r;
        raw::call(SYS_mprotect, base, guard_size, PROT_NONE);
        base_ = base;
        return 0;
    }
    template <class = void>
    void* lowest() const noexcept { return static_cast<char*>(base_) + guard_size; }
    template <class = void>
    void* top() const noexcept { return static_cast<char*>(base_) + guard_size + usable_size; }

private:
    template <class = void>
    void release_mapping() noexcept {
        if (base_) sys::munmap(base_, guard_size + usable_size);
        base_ = nullptr;
    }
    void* base_ = nullptr;
};
using child_stack = basic_child_stack<void>;

// How the child's memory relates to the parent's until exec.
enum class memory_mode : std::uint8_t {
    // CLONE_VM: no page tables are copied, so the cost does not grow with
    // the parent's heap. The child must only run child_program code.
    shared,
    // A copy-on-write copy, as fork() makes: the cost grows with the heap.
    copied,
};

struct clone_request {
    std::uint64_t flags = 0;   // namespace and other CLONE_* flags beyond the basics
    memory_mode memory = memory_mode::shared;
    int cgroup_fd = -1;        // CLONE_INTO_CGROUP target, -1 for none
    bool needs_clone3 = false; // some flags exist only in clone3
};

struct clone_outcome {
    long pid = 0;  // the child's pid, or -errno
    int pidfd = -1;
};

// Starts child_main(view) in a new process. All signals are blocked across
// the clone so that no handler of the parent runs in the child before it
// resets the dispositions; the child restores the mask last.
// Returns the pid or -errno; the pidfd comes back through `outcome`.
template <class = void>
inline clone_outcome clone_child(const clone_request& request, child_stack& stack, child_view& view) noexcept {
    clone_outcome outcome;
    std::uint64_t flags = CLONE_PIDFD | request.flags;
    if (request.memory == memory_mode::shared) flags |= CLONE_VM;
    if (request.cgroup_fd >= 0) flags |= CLONE_INTO_CGROUP;

    const unsigned long all_signals = ~0UL;
    unsigned long previous = 0;
    if (long r = sys::rt_sigprocmask(SIG_SETMASK, &all_signals, &previous); r < 0) {
        outcome.pid = r;
        return outcome;
    }

    clone_args args{};
    args.flags = flags;
    args.pidfd = reinterpret_cast<std::uint64_t>(&outcome.pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<std::uint64_t>(stack.lowest());
    args.stack_size = child_stack::usable_size;
    if (request.cgroup_fd >= 0) args.cgroup = static_cast<decltype(args.cgroup)>(request.cgroup_fd);
    long pid = sys::clone3(&args, sizeof args, child_main, &view);

    // clone3 is missing before Linux 5.3 and is often answered with ENOSYS
    // by container seccomp profiles; clone(2) does the same job unless a
    // flag only clone3 has was asked for.
    if (pid == -ENOSYS && !request.needs_clone3 && request.cgroup_fd < 0) {
        pid = sys::clone(child_main, stack.top(), flags | SIGCHLD, &view, &outcome.pidfd);
    }
    // Straight to the kernel, not through the fault-injectable wrapper:
    // restoring a mask the kernel just gave us cannot fail, and a test fault
    // meant for the child's restore must not be taken here.
    raw::call(SYS_rt_sigprocmask, SIG_SETMASK, &previous, nullptr, sys::kernel_sigset_size);
    outcome.pid = pid;
    return outcome;
}

}  // namespace ctr::detail
// end ctr/detail/clone.hpp

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <new>
#include <string>
#include <utility>
#include <vector>


namespace ctr::detail {

// The order of a launch in the child. Every step belongs to one phase; the
// program runs the phases in this order. Why this order:
//  - joining a user namespace first grants the rights to join the others;
//  - the child waits for the parent (id maps, cgroup, network) before it
//    uses the rights a new user namespace gives, and before anything it does
//    could depend on its cgroup;
//  - the root filesystem is built with every right the namespaces give,
//    before credentials and capabilities take rights away;
//  - the bounding set is dropped while CAP_SETPCAP is still there, and
//    PR_SET_KEEPCAPS is set before a change of uid so permitted
//    capabilities survive it;
//  - the init (pid 1) splits off after credentials: what follows runs in
//    the command only, so pid 1 keeps what it needs to forward signals;
//  - Landlock after the mounts (its paths are the command's) and after
//    capabilities and credentials, which it does not govern; it sets its
//    own no_new_privs, since the capabilities that could stand in for it
//    may be gone by then;
//  - no_new_privs before seccomp: installing a filter without CAP_SYS_ADMIN
//    needs it; seccomp last, so that no setup step is filtered.
enum class launch_phase : std::uint8_t {
    join_user,             // setns into a user namespace
    join_namespaces,       // setns into the others
    signals,               // default dispositions, parent-death signal
    wait_for_parent,       // the parent's steps: id maps, cgroup, network, hooks
    create_namespaces,     // unshare (cgroup, time), host names, interfaces
    become_root,           // uid and gid 0 of a new user namespace
    mounts,                // the root filesystem, pivot_root
    rlimits,
    fds,                   // stdio and passed fds to their numbers, the rest close-on-exec
    bounding_capabilities, // bounding set, securebits, keep-caps
    credentials,           // groups, gid, uid
    init,                  // become_init: what follows runs in the command
    session,               // setsid, controlling terminal, umask, working directory
    capabilities,          // effective, permitted, inheritable, ambient
    landlock,              // the Landlock ruleset (with its own no_new_privs)
    no_new_privileges,
    restore_signal_mask,
    hold,                  // options::start_gate: wait to be started
    seccomp,
    exec,
};

// What a parent step sees of the waiting child.
struct parent_step_context {
    pid_t pid = -1;
    int pidfd = -1;
    // Sent to the child after its go byte, in the same write; the child's
    // steps read their parts in the order the parent steps appended them.
    std::string& message_to_child;
    // fds for the child, sent after that message (SCM_RIGHTS) with the
    // bytes of fds_data_to_child (at least one); the child's receive step
    // reads them. Empty data: nothing is sent.
    std::vector<int> fds_to_child{};
    std::string fds_data_to_child{};
};

// The child's failure as it reported it.
struct child_report_view {
    int error = 0;
    int detail = 0;  // which part of a step failed, where the step has parts
};

// Turns a failed step's report into the caller's error.
using step_explainer = std::function<ctr::error(const child_report_view&)>;

// Memory that the parent, the child and pid 1 share whether or not the
// child has a copy of the parent's memory: MAP_SHARED survives clone without
// CLONE_VM. Holds what a child writes for the parent to read.
struct launch_shared {
    init_state init;
    mount_context mount_state;
    char mount_message[256] = {};
    int failure_detail = 0;  // the child's own note of which part of a step failed
};

class shared_launch_page {
public:
    shared_launch_page() = default;
    shared_launch_page(const shared_launch_page&) = delete;
    shared_launch_page& operator=(const shared_launch_page&) = delete;
    ~shared_launch_page() {
        if (page_) {
            page_->~launch_shared();
            sys::munmap(page_, sizeof(launch_shared));
        }
    }
    // Returns 0 or -errno.
    template <class = void>
    long allocate() noexcept {
        void* address = nullptr;
        const long r = sys::mmap(&address, sizeof(launch_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
        if (r < 0) return r;
        page_ = new (address) launch_shared{};
        return 0;
    }
    launch_shared* operator->() const noexcept { return page_; }
    launch_shared& operator*() const noexcept { return *page_; }

private:
    launch_shared* page_ = nullptr;
};

// Everything the child reads, owned by the parent until the child has
// exec'd or exited. Built in full before clone: the child allocates nothing.
struct launch_plan {
    std::vector<std::string> argv_storage;
    std::vector<std::string> env_storage;
    std::vector<std::string> candidate_storage;
    std::vector<char*> argv;
    std::vector<char*> envp;
    std::vector<const char*> candidates;
    std::vector<int> scratch;  // fds made by dup_above
    // The program, in phase order once finish() ran.
    std::vector<child_op> ops;
    std::vector<std::string> op_paths;      // what an error in op i names
    std::vector<step_explainer> explainers; // a layer's own explanation of op i, or empty
    child_view view;

    unique_fd report_read, report_write;
    unique_fd start_gate;  // the child's copy of options::start_gate, above every fd it maps
    // The lowest fd number that no fd mapping targets: a layer's fd that the
    // child needs after the fds phase must be at or above it.
    int first_unmapped_fd = 3;
    // What a held child closes before it waits (pairs first, last; ~0U: no
    // end): every fd that exec would close, but the report channel and the
    // gate. A copy of the gate's write end among them would keep its read
    // from ever seeing the end of file.
    std::vector<unsigned> hold_closes;
    std::vector<unique_fd> child_ends;  // the child's ends of stdio files and pipes
    unique_fd parent_in, parent_out, parent_err;
    bool capture_out = false, capture_err = false;

    // The child's stack, and the command's when a pid 1 init starts it.
    child_stack stack, command_stack;
    clone_request request;
    shared_launch_page shared;
    ns::kinds created;  // namespaces this launch creates
    // Namespaces the program starts in already (a prepared sandbox's runs,
    // cloned by its server): their errors are explained as the created ones'.
    ns::kinds entered;
    bool uses_init = false;
    // The channel on which the child waits for the parent's steps.
    unique_fd sync_read, sync_write;
    // The parent's end of the socket on which options::terminal's child
    // sends the pty master (empty: no terminal, or a console socket).
    unique_fd terminal_from_child;
    // The parent's end of the socket on which the child sends the listener
    // of a seccomp filter that notifies (empty: none).
    unique_fd seccomp_listener_from_child;
    // What options::network made (names and addresses of both ends), once
    // its parent step ran: the child handle's network() (null: none).
    std::shared_ptr<const net::veth_info> network_made;
    // What the network layers made that must outlast the sandbox and no
    // more: options::network's outbound NAT and published ports' rules,
    // options::pasta's pasta. The child's handle takes them and releases
    // them once the sandbox has ended, the last made first.
    std::vector<std::shared_ptr<void>> ends_after_sandbox;
    // The pid of options::pasta's pasta once its parent step started it.
    pid_t pasta_pid = -1;

    // Each layer's data that its steps point into, kept until the child
    // has exec'd (and, with an init, for the sandbox's life).
    template <typename T>
    T& keep(T value) {
        auto owned = std::make_shared<T>(std::move(value));
        T& ref = *owned;
        kept_.push_back(std::move(owned));
        return ref;
    }

    template <class = void>
    void add(launch_phase phase, child_op op, std::string path = {}, step_explainer explain = {}) {
        pending_.push_back({phase, op, std::move(path), std::move(explain)});
    }

    template <class = void>
    void while_child_waits(std::function<void(parent_step_context&)> step) { parent_steps.push_back(std::move(step)); }
    template <class = void>
    bool has_parent_steps() const noexcept { return !parent_steps.empty(); }
    std::vector<std::function<void(parent_step_context&)>> parent_steps;

    // Orders the steps by phase and points the child's view at them.
    template <class = void>
    void finish() {
        std::stable_sort(pending_.begin(), pending_.end(),
                         [](const pending& a, const pending& b) { return a.phase < b.phase; });
        ops.clear();
        op_paths.clear();
        explainers.clear();
        for (auto& p : pending_) {
            if (p.op.code == child_op_code::become_init) shared->init.next_op = ops.size() + 1;
            ops.push_back(p.op);
            op_paths.push_back(std::move(p.path));
            explainers.push_back(std::move(p.explain));
        }
        pending_.clear();
        view.ops = ops.data();
        view.op_count = ops.size();
        view.report_fd = report_write.get();
        view.scratch = scratch.data();
        view.argv = argv.data();
        view.envp = envp.data();
        view.failure_detail = &shared->failure_detail;
    }

    // The child's end of the sync channel, made on first use: a socket pair
    // rather than a pipe, so that the parent's write to a child that already
    // died fails with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE.
    template <class = void>
    int sync_channel() {
        if (!sync_read) {
            int fds[2];
            if (const long r = sys::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); r < 0)
                throw error(step::create_pipe, static_cast<int>(-r), {}, "the sync channel");
            sync_read.reset(fds[0]);
            sync_write.reset(fds[1]);
        }
        return sync_read.get();
    }

private:
    struct pending {
        launch_phase phase;
        child_op op;
        std::string path;
        step_explainer explain;
    };
    std::vector<pending> pending_;
    std::vector<std::shared_ptr<void>> kept_;
};

template <class = void>
inline unique_fd open_checked(const char* path, int flags, unsigned mode, step s) {
    const long fd = sys::openat(AT_FDCWD, path, flags | O_CLOEXEC, mode);
    if (fd < 0) throw error(s, static_cast<int>(-fd), path);
    return unique_fd(static_cast<int>(fd));
}

template <class = void>
inline std::string fd_name(int fd) { return "fd " + std::to_string(fd); }

// The fd a child sent on `socket` (SCM_RIGHTS) before it exec'd, so that it
// is there to take without waiting; `what` names it in the error.
template <class = void>
inline unique_fd receive_fd_from_child(int socket, ctr::step s, const char* path, const char* what) {
    char byte = 0;
    iovec data{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    long r;
    do r = sys::recvmsg(socket, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (r == -EINTR);
    const cmsghdr* header = r > 0 ? CMSG_FIRSTHDR(&message) : nullptr;
    if (!header || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS ||
        header->cmsg_len != CMSG_LEN(sizeof(int)))
        throw error(s, r < 0 ? static_cast<int>(-r) : EPROTO, path,
                    std::string("the child ran without sending ") + what + " back");
    int fd = -1;
    __builtin_memcpy(&fd, CMSG_DATA(header), sizeof fd);
    return unique_fd(fd);
}

template <class = void>
inline bool fd_is_open(int fd) { return fd >= 0 && sys::fcntl(fd, F_GETFD) >= 0; }

template <class = void>
inline void make_pipe(unique_fd& read_end, unique_fd& write_end) {
    int fds[2];
    if (const long r = sys::pipe2(fds, O_CLOEXEC); r < 0) throw error(step::create_pipe, static_cast<int>(-r));
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
}

}  // namespace ctr::detail
// end ctr/detail/launch_plan.hpp
// begin ctr/spawn_options.hpp
// What process::spawn takes (options) and gives back (result).

// begin ctr/detail/pasta_options.hpp
// ctr::net::pasta as spawn takes it (options::pasta): a plain struct, so that
// spawn_options.hpp needs no more of pasta than this. pasta.hpp has the
// operations, detail/launch_pasta.hpp the launch layer.

#include <chrono>
#include <string>
#include <vector>

namespace ctr::net {

// A network for a sandbox through pasta (Debian and Fedora package
// `passt`), as rootless podman uses it: pasta runs in the caller's network
// namespace, owns a tap interface in the sandbox's, and carries the
// sandbox's TCP, UDP and ICMP through sockets of its own. It needs no
// privilege. The sandbox's interface gets the address, routes and MTU of
// the caller's interface that holds the default route, so the caller's
// namespace must have one.
//
// ctr's defaults are closed where pasta's are open: no port is forwarded
// unless listed here (pasta's default is every port the sandbox binds), the
// sandbox's own loopback does not reach the caller's (pasta's -T and -U),
// and the gateway address does not stand for the caller's loopback
// (--no-map-gw). extra_args may open them again.
struct pasta {
    // The program: looked up in PATH when it has no '/'.
    std::string program = "pasta";
    // Published ports, in pasta's own -t (TCP) and -u (UDP) syntax:
    // "8080" (host port 8080 to 8080 inside), "8080:80", "127.0.0.1/8080:80",
    // "8000-8010". Each string is one -t or -u argument.
    std::vector<std::string> tcp_ports{};
    std::vector<std::string> udp_ports{};
    // The interface's name inside (-I); empty: pasta's choice, the name of
    // the caller's interface with the default route.
    std::string interface_name{};
    // Further arguments, after ctr's own (say "--mtu", "1500").
    std::vector<std::string> extra_args{};
    // How long pasta may take to set the network up before spawn gives up.
    std::chrono::milliseconds ready_timeout{10000};
};

}  // namespace ctr::net
// end ctr/detail/pasta_options.hpp
// begin ctr/detail/security_options.hpp
// ctr::security as spawn takes it (options::security): which capabilities,
// no_new_privs, which seccomp filter and which Landlock ruleset, as plain
// data. security.hpp (the header to include) has the filters and the launch
// layer that applies them, so that a program that spawns without them
// compiles none of that.


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
// end ctr/detail/security_options.hpp
// begin ctr/detail/terminal_options.hpp
// What options::terminal takes: a pseudo-terminal made inside the sandbox.
// Plain data; detail/launch_terminal.hpp plans the child's steps.

#include <cstdint>

namespace ctr::process {

// A terminal's window, in character cells (struct winsize without the
// pixel fields, which nothing reads).
struct window_size {
    std::uint16_t rows = 24;
    std::uint16_t columns = 80;
};

// A pty for the command, opened by the child itself after its mounts, from
// the /dev/ptmx it sees: with a mount plan that has .dev() (a devpts of the
// sandbox's own), the slave is /dev/pts/0 of that devpts, so `tty`, ttyname
// and reopening the terminal by name work inside; without a mount
// namespace it is the host's /dev/ptmx and a slave of the host's devpts.
// The slave becomes the command's stdin, stdout and stderr (each stream
// left at stdio::inherit(); the others keep their setting) and its
// controlling terminal, in a session of its own (setsid, TIOCSCTTY), so job
// control and ^C work. The master comes back to the caller, to relay.
struct terminal_options {
    // The window size the command sees from its first instruction on; later
    // changes through child::resize_terminal (forward SIGWINCH there).
    window_size size{};
    // -1: the master comes back in child::terminal(). Otherwise a connected
    // AF_UNIX socket of the caller's (borrowed) to which the child sends the
    // master itself (SCM_RIGHTS, with the one byte 'T'), as an OCI runtime's
    // --console-socket asks; child::terminal() is then empty.
    int console_socket = -1;
};

}  // namespace ctr::process
// end ctr/detail/terminal_options.hpp

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// Only borrowed here (options::cgroup); cgroup.hpp defines it. The other
// concepts' options come as plain structs (detail/*_options.hpp,
// detail/mount_plan.hpp), not with their operations.
namespace ctr::cgroup {
template <class>
class basic_group;
using group = basic_group<void>;
}

namespace ctr::process {
struct options;
}

namespace ctr::detail {

struct launch_plan;

// A launch layer that spawn runs only for the options that ask for it: the
// root filesystem (options::root), a veth network (options::network) and
// pasta (options::pasta). Each layer's header specializes launch_layer for
// its option's type, with `template <class = void> static void add_steps(...)`,
// and sets layer_header_included for it. Spawn's own header
// (<ctr/spawn.hpp>) includes none of them; <ctr/process.hpp> includes all.
template <class Option>
struct launch_layer;
template <class Option>
inline constexpr bool layer_header_included = false;

using layer_planner = void (*)(launch_plan&, const process::options&);

// An option whose layer is planned only when it is set: a std::optional<T>
// that, when given a value, also takes the address of its layer's planner.
// So the layer's code (mounts, netlink, nftables, pasta) is compiled only in
// the translation units that set the option, and spawn calls it through the
// pointer. Setting it needs the layer's header: <ctr/process.hpp> (a
// program that includes only <ctr/spawn.hpp> gets a compile error that says
// so, never a spawn that ignores the option).
template <class T>
class layer_option {
    // What std::optional<T> takes a value from (and, as there, explicitly
    // where T's own conversion is explicit).
    template <class U>
    static constexpr bool is_value_source =
        !std::is_same_v<std::remove_cvref_t<U>, layer_option> &&
        !std::is_same_v<std::remove_cvref_t<U>, std::nullopt_t> &&
        !std::is_same_v<std::remove_cvref_t<U>, std::in_place_t> &&
        !std::is_same_v<std::remove_cvref_t<U>, std::optional<T>> && std::is_constructible_v<T, U&&>;

public:
    using value_type = T;

    layer_option() noexcept = default;
    layer_option(std::nullopt_t) noexcept {}
    template <class U = T>
        requires is_value_source<U>
    explicit(!std::is_convertible_v<U&&, T>) layer_option(U&& value)
        : value_(std::forward<U>(value)), planner_(planner()) {}
    template <class U = T>
        requires std::is_same_v<U, T>
    layer_option(std::optional<U> value) : value_(std::move(value)), planner_(value_ ? planner() : nullptr) {}

    layer_option& operator=(std::nullopt_t) noexcept {
        reset();
        return *this;
    }
    template <class U = T>
        requires is_value_source<U> && std::is_convertible_v<U&&, T> && std::is_assignable_v<T&, U&&>
    layer_option& operator=(U&& value) {
        value_ = std::forward<U>(value);
        planner_ = planner();
        return *this;
    }
    template <class... Args>
    T& emplace(Args&&... args) {
        value_.emplace(std::forward<Args>(args)...);
        planner_ = planner();
        return *value_;
    }
    void reset() noexcept {
        value_.reset();
        planner_ = nullptr;
    }

    bool has_value() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return value_.has_value(); }
    T& operator*() & noexcept { return *value_; }
    const T& operator*() const& noexcept { return *value_; }
    T* operator->() noexcept { return &*value_; }
    const T* operator->() const noexcept { return &*value_; }
    T& value() & { return value_.value(); }
    const T& value() const& { return value_.value(); }
    template <class U>
    T value_or(U&& otherwise) const& {
        return value_.value_or(std::forward<U>(otherwise));
    }
    // As the std::optional it stands for.
    operator const std::optional<T>&() const& noexcept { return value_; }
    friend bool operator==(const layer_option& option, std::nullopt_t) noexcept { return !option.has_value(); }

    // The layer's planner: set whenever a value is.
    layer_planner planner_of_layer() const noexcept { return planner_; }

private:
    template <class Unused = void>
    static layer_planner planner() noexcept {
        static_assert(layer_header_included<std::conditional_t<true, T, Unused>>,
                      "options::root, options::network and options::pasta need their launch layers: include "
                      "<ctr/process.hpp> (<ctr/spawn.hpp> alone has spawn without them)");
        return &launch_layer<T>::template add_steps<>;
    }

    std::optional<T> value_{};
    layer_planner planner_ = nullptr;
};

}  // namespace ctr::detail

namespace ctr::process {

// Where one standard stream of the child goes.
struct stdio {
    enum class kind : std::uint8_t {
        inherit,  // the parent's own stream
        null,     // /dev/null
        file,     // a file the parent opens
        fd,       // an fd the caller owns (it is duplicated, not taken)
        pipe,     // a pipe whose other end the caller gets from child::std_in/std_out/std_err
        capture,  // a pipe that wait() drains into result::std_out or result::std_err
    };
    kind how = kind::inherit;
    std::string path{};
    int flags = -1;  // for file: -1 picks O_RDONLY for stdin, O_WRONLY|O_CREAT|O_TRUNC otherwise
    unsigned mode = 0644;
    int fd = -1;

    template <class = void>
    static stdio inherit() { return {}; }
    template <class = void>
    static stdio null() { return {.how = kind::null}; }
    template <class = void>
    static stdio file(std::string path, int flags = -1, unsigned mode = 0644) {
        return {.how = kind::file, .path = std::move(path), .flags = flags, .mode = mode};
    }
    template <class = void>
    static stdio append_to(std::string path) {
        return file(std::move(path), O_WRONLY | O_CREAT | O_APPEND);
    }
    template <class = void>
    static stdio from_fd(int borrowed_fd) { return {.how = kind::fd, .fd = borrowed_fd}; }
    template <class = void>
    static stdio pipe() { return {.how = kind::pipe}; }
    template <class = void>
    static stdio capture() { return {.how = kind::capture}; }
};

// An fd of the parent that the child gets at number `target`.
struct fd_mapping {
    int source;
    int target;
};

struct rlimit_setting {
    int resource;  // RLIMIT_*
    rlim_t soft;
    rlim_t hard;
};

// The child's environment: the parent's (or none), then `unset`, then `set`.
struct environment {
    bool inherit = true;
    std::vector<std::pair<std::string, std::string>> set{};
    std::vector<std::string> unset{};
};

// How the child is created; see detail::memory_mode. shared_memory is the
// fast default; copy_memory exists to measure the difference.
enum class clone_style : std::uint8_t { shared_memory, copy_memory };

// What a parent step sees of the child while it waits (see
// options::while_child_waits).
struct waiting_child {
    pid_t pid = -1;
    int pidfd = -1;
};

// Members of aggregate type with a non-trivial destructor (environment,
// stdio, id_maps, security) default to `= T()` rather than `{}`: when a
// caller's designated initializer throws (say .root = mount::host_readonly()
// runs out of memory), g++ 12 destroys a member initialized from a `{}`
// default member initializer twice, and at -O2 and up its
// -Wmaybe-uninitialized reports that in the caller's code. clang++ and the
// `= T()` spelling destroy it once.
struct options {
    // The file to run; empty: argv[0], looked up in the child's PATH when it
    // has no '/'.
    std::string executable{};
    environment env = environment();
    std::string cwd{};  // empty: the parent's
    stdio std_in = stdio();
    stdio std_out = stdio();
    stdio std_err = stdio();
    // Further fds for the child. Every other fd is closed at exec.
    std::vector<fd_mapping> fds{};
    // SIGKILL the child when the parent dies. The kernel ties this to the
    // thread that spawned: if that thread exits, the child is killed too.
    // Only the child: what it starts lives on. See die_with_owner.
    bool die_with_parent = false;
    // The sandbox ends with its owner, this process: when the owner ends,
    // by any signal (SIGKILL included) and at any moment (during setup or
    // while the command runs), every process of the sandbox is killed,
    // whichever thread spawned it and whether or not that thread still
    // runs. A supervisor holds the sandbox: pid 1 with ns::pid (so this
    // implies `init`, as ns::time does), otherwise a child subreaper that
    // kills what the command leaves running when the command ends, as a pid
    // namespace would. What the owner made outside the sandbox (a cgroup,
    // scratch directories) cannot be removed by a dead owner: name it so
    // that the next run finds it (cgroup::reap_stale; docs/lifecycle.md).
    bool die_with_owner = false;
    // Wall-clock limit, counted from spawn and enforced while the caller
    // waits: SIGTERM, then SIGKILL after kill_grace. Zero: none.
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds kill_grace{2000};
    std::vector<rlimit_setting> rlimits{};
    std::optional<mode_t> umask{};
    bool new_session = false;  // setsid: no controlling terminal, own process group
    // With new_session: the child's stdin, a terminal (say the slave of a
    // pty the caller opened), becomes its controlling terminal, so job
    // control and ^C work in an interactive shell.
    bool controlling_terminal = false;
    // Credentials to switch to, in this order: groups, gid, uid.
    std::optional<std::vector<gid_t>> groups{};
    std::optional<gid_t> gid{};
    std::optional<uid_t> uid{};
    clone_style clone = clone_style::shared_memory;

    // Namespaces to create for the child (ns::pid | ns::mount ..., or
    // ns::all). A caller that is not root gets a user namespace with them,
    // which is what lets it create the others.
    ns::kinds namespaces{};
    // Existing namespaces to join (setns), user first.
    std::vector<ns::existing> join{};
    // With ns::uts.
    std::string hostname{};
    std::string domainname{};
    // With ns::user: the uid and gid maps (empty: see ns::id_maps).
    ns::id_maps id_maps = ns::id_maps();
    // With ns::time: clock offsets the child sees.
    ns::time_offsets time_offsets{};
    // With ns::pid: a minimal init is pid 1, forwards signals to the
    // command, reaps orphans and exits with the command's status. false runs
    // the command itself as pid 1 (not with ns::time, which always starts the
    // command from a supervisor: see plan_namespaces).
    bool init = true;

    // A cgroup the child starts in, with no moment outside it: placed by
    // the clone itself on cgroup v2 (CLONE_INTO_CGROUP), attached by the
    // parent before the child goes on past its first steps on v1. Borrowed:
    // the group must outlive the child. The result then carries the group's
    // out-of-memory kills, peak memory and CPU time.
    cgroup::group* cgroup = nullptr;

    // The child's filesystem: a mount plan run in a new mount namespace
    // (added to `namespaces`) before pivot_root into its root, e.g.
    // mount::host_readonly() or mount::plan{.rootfs = "/srv/image"}.proc().dev().
    // Empty: the child sees the parent's mounts.
    ::ctr::detail::layer_option<mount::plan> root{};

    // A network: a veth pair from the caller's network namespace into the
    // child's new one (ns::network is added), addressed and up on both ends
    // before the command runs; child::network() says what was made. Needs
    // CAP_NET_ADMIN where the caller is (root). The pair lives as long as the
    // child's network namespace: when its last process is gone (and no
    // ns::persist holds it), the kernel deletes both ends in the background.
    // A synchronous delete would cost the caller about 30 ms of RCU waits.
    ::ctr::detail::layer_option<net::veth> network{};

    // A network through pasta instead (ctr/pasta.hpp; needs the program,
    // package passt, and no privilege): ns::network is added, and pasta is
    // started on the child's namespace while the child waits, with the
    // published ports; the command runs once pasta has configured the
    // interface. pasta runs as a child of this process in the caller's
    // network namespace and ends when the sandbox does: when wait() has
    // reaped it, or with the handle (child::pasta_pid() says which it is).
    // With die_with_parent or die_with_owner, pasta also dies with the
    // thread that spawned (PR_SET_PDEATHSIG).
    ::ctr::detail::layer_option<net::pasta> pasta{};

    // The caller's own steps, run in the parent after the child's namespaces
    // exist and before it goes on to its mounts and exec: the child's
    // /proc/<pid>/ns/* are there to open (a user-mode network helper, an
    // OCI createRuntime hook). An exception thrown here fails the spawn; the
    // child is killed and reaped.
    std::vector<std::function<void(const waiting_child&)>> while_child_waits{};

    // What the command may still do once it runs: capabilities,
    // no_new_privs, a seccomp filter (ctr/security.hpp). The library's
    // default is explicit: nothing is taken away unless asked, e.g.
    // `.security = ctr::security::confined()` as ctr-run does. Every
    // launch's init is sealed regardless (see child_become_init).
    ::ctr::security security = ::ctr::security();

    // A pty made inside the sandbox for the command's standard streams and
    // its controlling terminal; the caller gets the master from
    // child::terminal() (see terminal_options). Empty: none.
    std::optional<terminal_options> terminal{};

    // Holds the command right before exec until it reads one byte from this
    // fd, and returns from spawn as soon as it is held: every step has
    // succeeded by then (namespaces, mounts, ids, capabilities,
    // no_new_privs), only the seccomp filter and exec remain. So a caller
    // can create a sandbox now and start it later, from this process or
    // from another: an OCI runtime's `create` and `start`. A pipe whose
    // write end the caller keeps, or a FIFO the child holds open for reading
    // and writing (then any process that opens the FIFO can start it). End
    // of file (every writer closed) ends the command unstarted (exit 127);
    // so does a failure after the hold (seccomp, exec), which only the exit
    // status then tells. Borrowed; the child reads its own copy. -1: none.
    int start_gate = -1;
};

// How a run ended.
struct result {
    std::optional<int> exit_code{};  // set when the program exited
    std::optional<int> signal{};     // set when a signal ended it
    bool core_dumped = false;
    bool timed_out = false;          // the timeout fired (the program was then signalled)
    std::chrono::nanoseconds wall_time{};
    std::chrono::nanoseconds user_time{};
    std::chrono::nanoseconds system_time{};
    // The kernel's ru_maxrss of the child and the children it waited for.
    // It counts the memory the child had before exec too, which is a share
    // or a copy of the caller's: a small command started from a large
    // caller shows the caller's size. For the command's own peak, run it in
    // a cgroup and read memory_peak_bytes.
    std::uint64_t rusage_max_rss_bytes = 0;
    std::string std_out{};             // what stdio::capture() collected
    std::string std_err{};
    // With a new pid namespace: other processes were still running in it
    // when the command ended, and died with it (the namespace ends with its
    // pid 1).
    bool pid_namespace_orphans_killed = false;
    // With options::cgroup, this run's figures: what changed in the group
    // between spawn and reap (other processes in the group at the same time
    // count too). A figure the layout does not have stays empty. The
    // group's lifetime figures are cgroup::group::read_stats().
    //  - oom_killed: the group's out-of-memory killer killed a process
    //    during the run (from the group's own events, not guessed from
    //    SIGKILL).
    //  - memory_peak_bytes: the group's highest charge during the run, set
    //    when the kernel can tell it apart: in a group never charged before,
    //    whose lifetime peak is then the run's (a high-water mark cannot be
    //    reset without losing the group's own). Otherwise empty, and
    //    group_memory_peak_bytes has the lifetime figure.
    //  - cgroup_user_time, cgroup_system_time: CPU time the group used
    //    during the run.
    bool oom_killed = false;
    std::optional<std::uint64_t> memory_peak_bytes{};
    std::optional<std::uint64_t> group_memory_peak_bytes{};  // the group's peak over its whole life
    std::optional<std::chrono::nanoseconds> cgroup_user_time{};
    std::optional<std::chrono::nanoseconds> cgroup_system_time{};

    // Exited with status 0 before any timeout.
    template <class = void>
    bool success() const noexcept { return exit_code == 0 && !timed_out; }
};

}  // namespace ctr::process
// end ctr/spawn_options.hpp

#include <sys/socket.h>

#include <string>
#include <vector>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Receives the parent's detached mounts over the sync channel (op.a): one
// message whose bytes are [count, slot...] and whose SCM_RIGHTS carry the
// fds in that order; each goes to its slot of the int array at op.data (a
// slot left at -1 falls back to a plain bind). Async-signal-safe.
CTR_CHILD_CODE inline long child_receive_fds(const child_op& op) noexcept {
    constexpr std::size_t most = 64;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * most)];
    unsigned char bytes[most + 1];
    iovec part{bytes, sizeof bytes};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    long r;
    do r = sys::recvmsg(static_cast<int>(op.a), &message, MSG_CMSG_CLOEXEC);
    while (r == -EINTR);
    if (r <= 0) return r < 0 ? r : -EPIPE;
    const std::size_t count = bytes[0];
    if (count == 0) return 0;
    const cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (static_cast<std::size_t>(r) != count + 1 || !header || header->cmsg_type != SCM_RIGHTS ||
        header->cmsg_len != CMSG_LEN(sizeof(int) * count))
        return -EPROTO;
    int fds[most];
    __builtin_memcpy(fds, CMSG_DATA(header), sizeof(int) * count);
    int* slots = const_cast<int*>(static_cast<const int*>(op.data));
    for (std::size_t i = 0; i < count; ++i) {
        if (bytes[i + 1] >= static_cast<unsigned long>(op.b)) return -EPROTO;
        slots[bytes[i + 1]] = fds[i];
    }
    return 0;
}

// The idmapped binds, made in the parent while the child waits: a detached
// copy of the source with the sandbox's user namespace as its idmap. Where
// the filesystem cannot idmap (EINVAL) and the bind allows it, nothing is
// sent and the child binds it plain.
template <class = void>
inline void make_detached_binds(const mount::prepared_plan& mounts, parent_step_context& child,
                                std::vector<unique_fd>& made, std::string& slots_sent) {
    using namespace mount_abi;
    const std::string userns_path = "/proc/" + std::to_string(child.pid) + "/ns/user";
    const long userns = sys::openat(AT_FDCWD, userns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (userns < 0) throw error(step::idmap_mount, static_cast<int>(-userns), userns_path);
    const unique_fd userns_fd(static_cast<int>(userns));
    const auto& binds = mounts.detached_binds();
    for (std::size_t slot = 0; slot < binds.size(); ++slot) {
        const auto& bind = binds[slot];
        const unsigned recursive = bind.recursive ? at_recursive : 0U;
        const long tree = sys::open_tree(AT_FDCWD, bind.source, open_tree_clone | open_tree_cloexec | recursive);
        if (tree < 0) throw error(step::bind_mount, static_cast<int>(-tree), bind.source);
        unique_fd owned(static_cast<int>(tree));
        mount_attr attr{};
        attr.attr_set = bind.attributes | attr_idmap;
        attr.userns_fd = static_cast<std::uint64_t>(userns_fd.get());
        const long r = sys::mount_setattr(owned.get(), "", at_empty_path | recursive, &attr, sizeof attr);
        if (r < 0 && (bind.required || (r != -EINVAL && r != -ENOSYS && r != -EOPNOTSUPP)))
            throw error(step::idmap_mount, static_cast<int>(-r), bind.source,
                        "idmapped mounts need Linux 5.12+ and a filesystem that supports them (tmpfs only from 6.3); "
                        "without them, run the sandbox in the host's user namespace or give the files to its ids");
        if (r < 0) continue;  // a plain bind, made by the child
        child.fds_to_child.push_back(owned.get());
        slots_sent.push_back(static_cast<char>(slot));
        made.push_back(std::move(owned));
    }
}

// The child's step for one mount step: op.data = const mount_step*,
// op.data2 = mount_context*. A call, not a case of the child's interpreter,
// so that a program that never sets options::root does not compile the
// mount steps. Async-signal-safe.
CTR_CHILD_CODE inline long child_mount_step(const child_op& op) noexcept {
    return run_mount_step(*static_cast<const mount_step*>(op.data),
                          *static_cast<mount_context*>(const_cast<void*>(op.data2)));
}

template <class = void>
inline void plan_filesystem(launch_plan& plan, const options& opts) {
    if (!opts.root) return;
    const auto& mounts = plan.keep(opts.root->prepare());
    mount_context& state = plan.shared->mount_state;
    state.message = plan.shared->mount_message;
    state.message_size = sizeof plan.shared->mount_message;

    if (const std::size_t detached = mounts.detached_binds().size(); detached > 0) {
        if (!plan.created.has(ns::user) || raw::call(SYS_geteuid) != 0)
            throw error(step::idmap_mount, EINVAL, mounts.detached_binds().front().shown,
                        "an idmapped bind maps the ids of a new user namespace (ns::user) and needs a privileged caller");
        if (detached > 64) throw error(step::idmap_mount, E2BIG, {}, "at most 64 idmapped binds");
        auto& slots = plan.keep(std::vector<int>(detached, -1));
        auto& made = plan.keep(std::vector<unique_fd>{});
        state.detached_fds = slots.data();
        const int sync = plan.sync_channel();
        plan.while_child_waits([&mounts, &made](parent_step_context& child) {
            std::string slots_sent;
            make_detached_binds(mounts, child, made, slots_sent);
            child.fds_data_to_child = static_cast<char>(slots_sent.size()) + slots_sent;
        });
        plan.add(launch_phase::mounts,
                 {.code = child_op_code::call, .step = step::idmap_mount, .a = sync, .b = static_cast<long>(detached),
                  .data = slots.data(), .run = child_receive_fds},
                 "the idmapped binds");
    }

    const auto steps = mounts.steps();
    for (std::size_t i = 0; i < steps.size(); ++i)
        // A mount step's error says which part failed and why, from what the
        // child left in the shared mount state.
        plan.add(launch_phase::mounts,
                 {.code = child_op_code::call, .step = step::mount, .a = static_cast<long>(i), .data = &steps[i],
                  .data2 = &state, .run = child_mount_step},
                 steps[i].target ? steps[i].target : "",
                 [&mounts, &state, i](const child_report_view& report) {
                     return mounts.error_for(i, report.error, &state);
                 });
}

}  // namespace ctr::process::detail

namespace ctr::detail {
template <>
inline constexpr bool layer_header_included<mount::plan> = true;
template <>
struct launch_layer<mount::plan> {
    template <class = void>
    static void add_steps(launch_plan& plan, const process::options& opts) {
        process::detail::plan_filesystem(plan, opts);
    }
};
}  // namespace ctr::detail
// end ctr/detail/launch_filesystem.hpp
// begin ctr/detail/launch_network.hpp
// Launch layer: a veth pair into the child's new network namespace. The
// parent creates it while the child waits and sends the child's end's
// settings after the go byte; the child configures its end.


#include <cstring>
#include <memory>
#include <optional>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// The rules a network adds outside the sandbox, deleted after it: the
// outbound NAT rule first, then the published ports' (as members are
// destroyed, the last declared first).
struct network_rules {
    net::port_nat ports;
    net::outbound_nat outbound;
};

// The child's step that configures its end: reads the interface_setup the
// parent sent after the go byte (op.a = the sync fd) and applies it; which
// part failed goes to op.data2 (int*). Async-signal-safe.
CTR_CHILD_CODE inline long child_configure_interface_step(const child_op& op) noexcept {
    return child_configure_interface(static_cast<int>(op.a), static_cast<int*>(const_cast<void*>(op.data2)));
}

// Adds the network's steps. Its parent step records what it made (names and
// addresses of both ends) in plan.network_made; the outbound NAT and the
// published ports' rules, when asked for, go to plan.ends_after_sandbox.
template <class = void>
inline void plan_network(launch_plan& plan, const options& opts) {
    if (!opts.network) return;
    const net::veth& wanted = *opts.network;
    const auto info = std::make_shared<net::veth_info>();
    plan.network_made = info;
    net::veth_info* const made = info.get();
    net::outbound_nat* outbound = nullptr;
    net::port_nat* ports = nullptr;
    if (wanted.outbound || !wanted.publish.empty()) {
        const auto rules = std::make_shared<network_rules>();
        if (wanted.outbound) outbound = &rules->outbound;
        if (!wanted.publish.empty()) ports = &rules->ports;
        plan.ends_after_sandbox.push_back(rules);
    }
    const int sync = plan.sync_channel();
    plan.while_child_waits([&wanted, made, outbound, ports](parent_step_context& child) {
        net::veth_pair pair = net::create_veth(wanted, net::peer_namespace::of_process(child.pid));
        *made = pair.info();
        // From here the pair is the namespace's: if a later step fails, the
        // child is killed, its namespace ends and the kernel deletes the pair.
        pair.host_link().release();
        if (outbound) *outbound = net::outbound_nat::add(*made);
        if (ports) {
            *ports = net::port_nat::add(*made, wanted.publish);
            made->published = ports->mappings();
        }
        const interface_setup setup = pair.container_setup();
        child.message_to_child.append(reinterpret_cast<const char*>(&setup), sizeof setup);
        if (wanted.ipv6) {
            const ipv6_setup setup6 = pair.container_ipv6_setup();
            child.message_to_child.append(reinterpret_cast<const char*>(&setup6), sizeof setup6);
        }
    });
    plan.add(launch_phase::create_namespaces,
             {.code = child_op_code::call, .step = step::configure_link, .a = sync,
              .data2 = &plan.shared->failure_detail, .run = child_configure_interface_step},
             wanted.container_name, [name = wanted.container_name](const child_report_view& report) {
                 return error(step::configure_link, report.error, name,
                              net::detail::interface_setup_failure(report.detail));
             });
    if (wanted.ipv6)
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::call, .step = step::configure_link, .a = sync,
                  .data2 = &plan.shared->failure_detail, .run = child_configure_ipv6},
                 wanted.container_name, [name = wanted.container_name, made](const child_report_view& report) {
                     std::string what = net::detail::ipv6_setup_failure(report.detail);
                     if (made->container_ipv6)
                         what += report.detail == ipv6_part_route ? " via " + made->host_ipv6->address.to_string()
                                                                  : " " + made->container_ipv6->to_string();
                     if (report.error == EACCES)
                         what += " (IPv6 is disabled in the sandbox's namespace: net.ipv6.conf.default.disable_ipv6 "
                                 "with net.core.devconf_inherit_init_net; veth::ipv6 = false leaves IPv6 out)";
                     return error(step::configure_link, report.error, name, what);
                 });
}

}  // namespace ctr::process::detail

namespace ctr::detail {
template <>
inline constexpr bool layer_header_included<net::veth> = true;
template <>
struct launch_layer<net::veth> {
    template <class = void>
    static void add_steps(launch_plan& plan, const process::options& opts) {
        process::detail::plan_network(plan, opts);
    }
};
}  // namespace ctr::detail
// end ctr/detail/launch_network.hpp
// begin ctr/detail/launch_pasta.hpp
// Launch layer: pasta on the child's new network namespace. The parent
// starts it while the child waits, after the id maps are written, and lets
// the child go on once pasta has configured the interface; the child has no
// step of its own. The pasta process goes to the child's handle, which ends
// it with the sandbox.

// begin ctr/detail/pasta_process.hpp
// A running pasta, owned (net::pasta_process), and what starting one needs
// that does not spawn: its command line and the reading of its errors.
// start_pasta itself spawns, so it is defined in pasta.hpp, after
// process::spawn.


#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

namespace ctr::net {

// The namespaces pasta connects to the caller's: the sandbox's network
// namespace and, when the sandbox has a user namespace of its own, that
// one, which pasta joins first (as its owner it has every right there,
// among them the right to enter the network namespace). Borrowed fds.
struct pasta_target {
    int netns_fd = -1;
    int userns_fd = -1;  // -1: the network namespace belongs to the caller's user namespace
};

// A pasta process, a child of this process: ended (SIGTERM, then SIGKILL
// after a second) and reaped when the owner ends. pasta keeps the sandbox's
// network namespace open and never ends by itself, so this owner is what
// ends it.
template <class>
class [[nodiscard]] basic_pasta_process {
public:
    basic_pasta_process() = default;
    basic_pasta_process(basic_pasta_process&& other) noexcept
        : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)) {}
    basic_pasta_process& operator=(basic_pasta_process&& other) noexcept {
        if (this != &other) {
            stop_quietly();
            pid_ = std::exchange(other.pid_, -1);
            pidfd_ = std::move(other.pidfd_);
        }
        return *this;
    }
    ~basic_pasta_process() { stop_quietly(); }

    template <class = void>
    pid_t pid() const noexcept { return pid_; }
    explicit operator bool() const noexcept { return static_cast<bool>(pidfd_); }

    // Ends pasta and reaps it; the sandbox's network stops. Throws
    // ctr::error when reaping fails (the destructor swallows that).
    template <class = void>
    void stop() {
        if (!pidfd_) return;
        const long r = end_and_reap();
        if (r < 0 && r != -ECHILD) throw error(step::wait, static_cast<int>(-r), "pasta, pid " + std::to_string(pid_));
    }

    // Takes ownership of a pasta started elsewhere: `pid` is a child of this
    // process and `pidfd` refers to it.
    template <class = void>
    static basic_pasta_process adopt(pid_t pid, unique_fd pidfd) noexcept {
        basic_pasta_process out;
        out.pid_ = pid;
        out.pidfd_ = std::move(pidfd);
        return out;
    }

private:
    // 0 or -errno of the reaping.
    template <class = void>
    long end_and_reap() noexcept {
        namespace sys = ctr::detail::sys;
        sys::pidfd_send_signal(pidfd_.get(), SIGTERM);
        pollfd ended{pidfd_.get(), POLLIN, 0};
        const timespec grace{1, 0};
        long ready;
        do ready = sys::ppoll(&ended, 1, &grace);
        while (ready == -EINTR);
        if (ready <= 0) sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        siginfo_t info{};
        long r;
        do r = sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, nullptr);
        while (r == -EINTR);
        pidfd_.reset();
        return r < 0 ? r : 0;
    }
    template <class = void>
    void stop_quietly() noexcept {
        if (pidfd_) end_and_reap();
    }

    pid_t pid_ = -1;
    unique_fd pidfd_;
};
using pasta_process = basic_pasta_process<void>;

// Starts pasta on `target` and returns once it has configured the
// interface there (pasta.hpp). `die_with_this_thread`: pasta gets SIGKILL
// when the calling thread ends.
template <class = void>
pasta_process start_pasta(const pasta& options, pasta_target target, bool die_with_this_thread = false);

namespace detail {

// The fds pasta gets, at these numbers, and names as /proc/self/fd/N: the
// namespaces (pasta accepts a path, not a number) and the write end of the
// pipe that it takes for its pid file. pasta writes its pid there once the
// sandbox's interface is configured: the readiness signal.
inline constexpr int pasta_netns_fd = 3;
inline constexpr int pasta_userns_fd = 4;
inline constexpr int pasta_ready_fd = 5;

// Empty, or a reason why `spec` cannot be one -t or -u argument.
template <class = void>
inline std::string pasta_port_problem(const std::string& spec) {
    if (spec.empty()) return "a published port is empty";
    for (const char c : spec)
        if (c <= ' ' || c == 0x7f) return "a published port has a space or a control character";
    return {};
}

template <class = void>
inline void check_pasta_options(const pasta& options) {
    if (options.program.empty())
        throw error(step::prepare, EINVAL, {}, "net::pasta::program is empty: give \"pasta\" or a path to it");
    for (const auto* list : {&options.tcp_ports, &options.udp_ports})
        for (const auto& spec : *list)
            if (const std::string problem = pasta_port_problem(spec); !problem.empty())
                throw error(step::prepare, EINVAL, spec, problem + " (pasta's -t/-u syntax: \"8080\", \"8080:80\")");
    if (options.ready_timeout.count() <= 0)
        throw error(step::prepare, EINVAL, std::to_string(options.ready_timeout.count()) + " ms",
                    "net::pasta::ready_timeout must be positive");
}

// pasta's command line. As root pasta would change to the user nobody
// before it joins the namespaces, and then cannot join them (this is how
// pasta 2023_03_09 behaves): --runas keeps it the caller.
template <class = void>
inline std::vector<std::string> pasta_command(const pasta& options, bool has_userns, bool as_root) {
    std::vector<std::string> argv{options.program, "--config-net", "--foreground", "--quiet",
                                  "--pid",        "/proc/self/fd/" + std::to_string(pasta_ready_fd)};
    if (as_root) argv.insert(argv.end(), {"--runas", "0"});
    if (has_userns) argv.insert(argv.end(), {"--userns", "/proc/self/fd/" + std::to_string(pasta_userns_fd)});
    argv.insert(argv.end(), {"--netns", "/proc/self/fd/" + std::to_string(pasta_netns_fd)});
    if (!options.interface_name.empty()) argv.insert(argv.end(), {"--ns-ifname", options.interface_name});
    if (options.tcp_ports.empty()) argv.insert(argv.end(), {"-t", "none"});
    for (const auto& spec : options.tcp_ports) argv.insert(argv.end(), {"-t", spec});
    if (options.udp_ports.empty()) argv.insert(argv.end(), {"-u", "none"});
    for (const auto& spec : options.udp_ports) argv.insert(argv.end(), {"-u", spec});
    argv.insert(argv.end(), {"-T", "none", "-U", "none", "--no-map-gw"});
    argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
    return argv;
}

// What pasta wrote to stderr, on one line: without the notes that it
// could not reach a system logger (there is none in many containers).
template <class = void>
inline std::string pasta_error_text(const std::string& written) {
    std::string out;
    std::size_t at = 0;
    while (at < written.size()) {
        std::size_t end = written.find('\n', at);
        if (end == std::string::npos) end = written.size();
        const std::string line = written.substr(at, end - at);
        at = end + 1;
        const bool syslog_note = line.rfind("Failed to send ", 0) == 0 && line.find(" to syslog") != std::string::npos;
        if (line.empty() || syslog_note) continue;
        out += (out.empty() ? "" : "; ") + line;
    }
    if (out.size() > 1000) out = out.substr(0, 1000) + "...";
    return out;
}

// Reads the memfd that held pasta's stderr.
template <class = void>
inline std::string read_all_from_start(int fd) {
    std::string text;
    char buffer[4096];
    long offset = 0;
    for (;;) {
        const long n = ctr::detail::sys::pread64(fd, buffer, sizeof buffer, offset);
        if (n == -EINTR) continue;
        if (n <= 0 || text.size() > 65536) break;
        text.append(buffer, static_cast<std::size_t>(n));
        offset += n;
    }
    return text;
}

}  // namespace detail
}  // namespace ctr::net
// end ctr/detail/pasta_process.hpp
// begin ctr/pasta.hpp
// ctr::net::pasta: a sandbox's network through pasta (package passt), with
// no privilege. spawn does all of it with options::pasta = net::pasta{};
// start_pasta is public for callers that hold namespaces themselves.
//
// How: pasta runs in the caller's network namespace as a child of this
// process, joins the sandbox's user namespace (when it has one) and network
// namespace, creates and configures a tap interface there (--config-net),
// and then carries the sandbox's traffic through sockets of the caller's
// namespace. Its pid file, given as a pipe, is the readiness signal: pasta
// writes it once the interface is configured. It never ends by itself (it
// holds the namespace open), so its owner, pasta_process, ends it.

// begin ctr/spawn.hpp
// process::spawn: start a program in a child process and get back exactly
// how it ended.
//
// This header is spawn alone: namespaces, ids, cgroups, streams, rlimits,
// confinement. The layers that need much more code, the root filesystem
// (options::root), a veth network (options::network) and pasta
// (options::pasta), come with <ctr/process.hpp>, which includes this one;
// setting one of them with this header alone is a compile error that says
// so (detail::layer_option).
//
// The launch is one straight line: the parent validates the options and
// turns them into a child program (detail/child_program.hpp), clones, the
// child runs that program and execs, and the parent learns over a
// close-on-exec channel whether exec happened or which step failed.

// begin ctr/detail/launch_cgroup.hpp
// Launch layer: the cgroup the child starts in, with no moment outside it.
// Placed by the clone itself on cgroup v2 (CLONE_INTO_CGROUP), or attached
// by the parent while the child waits (v1, or a kernel that refuses the
// flag: spawn retries the clone without it).


#include <chrono>
#include <cstdint>
#include <optional>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// The group's figures at the start of a run, which the run's figures are
// measured from (process::result).
struct cgroup_run_start {
    cgroup::stats before{};
    // The group's peak charge is the run's only when nothing was charged
    // to the group before: a high-water mark cannot be reset without losing
    // the group's own (v1 max_usage_in_bytes), or only for one open file
    // (v2 memory.peak, 6.12+).
    bool peak_is_per_run = false;
};

template <class = void>
inline cgroup_run_start begin_cgroup_run(const cgroup::group& group) {
    cgroup_run_start start;
    start.before = group.read_run_figures();
    start.peak_is_per_run = start.before.memory_peak == std::uint64_t{0};
    return start;
}

// The run's figures: the group's now, less those at the start.
template <class = void>
inline void add_cgroup_run_figures(result& out, const cgroup_run_start& start, const cgroup::stats& after) {
    const auto since = [](const std::optional<std::chrono::nanoseconds>& now,
                          const std::optional<std::chrono::nanoseconds>& then) -> std::optional<std::chrono::nanoseconds> {
        if (!now || !then) return now;
        return *now >= *then ? *now - *then : std::chrono::nanoseconds(0);
    };
    out.oom_killed = after.oom_kills.value_or(0) > start.before.oom_kills.value_or(0);
    out.group_memory_peak_bytes = after.memory_peak;
    if (start.peak_is_per_run) out.memory_peak_bytes = after.memory_peak;
    out.cgroup_user_time = since(after.cpu_user, start.before.cpu_user);
    out.cgroup_system_time = since(after.cpu_system, start.before.cpu_system);
}

template <class = void>
inline void plan_cgroup(launch_plan& plan, const options& opts) {
    if (!opts.cgroup) return;
    cgroup::group* group = opts.cgroup;
    if (!group->valid()) throw error(step::attach_to_cgroup, EINVAL, {}, "the cgroup::group was moved from or removed");
    plan.request.cgroup_fd = group->clone_into_fd();
    // A child that shared the caller's memory would take the caller down
    // with it: when the group runs out of memory and its OOM killer picks
    // the child, the kernel kills every process that uses the victim's
    // memory. So the child in a group gets a copy (fork's cost: page tables
    // that grow with the caller's heap), however small the group's limit.
    plan.request.memory = memory_mode::copied;
    // The wait is there in both cases, so that a kernel that refuses
    // CLONE_INTO_CGROUP can fall back to attaching.
    plan.sync_channel();
    plan.while_child_waits([group, &request = plan.request](parent_step_context& child) {
        if (request.cgroup_fd < 0) group->attach(child.pid);
    });
}

}  // namespace ctr::process::detail
// end ctr/detail/launch_cgroup.hpp
// begin ctr/detail/launch_identity.hpp
// Launch layer: who the command runs as and in what session. rlimits,
// supplementary groups, gid and uid; a new session and its controlling
// terminal, umask and working directory.

// begin ctr/detail/id_errors.hpp
// The error for a uid or gid the sandbox's user namespace does not map.
// The kernel answers only EINVAL to setresuid/setresgid of such an id; the
// caller needs to know that the id is not mapped, which ids are, and how to
// get more (a subordinate range and the setuid helpers).


#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ctr::process::detail {

// Which ids a map gives the sandbox, as "0 to 65536" or "0" (one id).
template <class = void>
inline std::string mapped_ids_text(std::vector<ns::id_range> ranges) {
    std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) { return a.inside < b.inside; });
    std::string text;
    for (std::size_t i = 0; i < ranges.size();) {
        // Ranges that follow each other inside read as one.
        const std::uint64_t first = ranges[i].inside;
        std::uint64_t end = first + ranges[i].count;
        for (++i; i < ranges.size() && ranges[i].inside == end; ++i) end += ranges[i].count;
        if (!text.empty()) text += ", ";
        text += std::to_string(first);
        if (end - first > 1) text += " to " + std::to_string(end - 1);
    }
    return text;
}

// `kind` is "uid" or "gid"; `maps` what the launch asked for (resolved
// again here, after the failure, as plan_namespaces resolved it).
template <class = void>
inline error unmapped_id_error(step s, int code, const char* kind, std::uint32_t id, const ns::id_maps& asked) {
    const std::string shown = std::to_string(id);
    if (code != EINVAL) return error(s, code, std::string(kind) + " " + shown);
    const bool uid = kind[0] == 'u';
    std::vector<ns::id_range> mapped;
    try {
        const auto maps = ns::detail::resolve_id_maps(asked);
        mapped = uid ? maps.uid : maps.gid;
    } catch (const error&) {
    }
    std::string why = std::string(kind) + " " + shown + " is not mapped in the sandbox's user namespace";
    if (!mapped.empty()) why += " (it has " + std::string(kind) + (mapped.size() == 1 && mapped[0].count == 1 ? " " : "s ") + mapped_ids_text(mapped) + ")";
    const auto euid = static_cast<std::uint32_t>(ctr::detail::raw::call(SYS_geteuid));
    std::uint32_t total = 0;
    for (const auto& r : mapped) total += r.count;
    const char* file = uid ? "/etc/subuid" : "/etc/subgid";
    const char* helper = uid ? "/usr/bin/newuidmap" : "/usr/bin/newgidmap";
    if (euid != 0 && total <= 1 && asked.uid.empty() && asked.gid.empty()) {
        // Only the caller's own id went in: say what would add the rest.
        const std::string user = ns::detail::user_name_of(euid);
        const std::string name = user.empty() ? std::to_string(euid) : user;
        const bool has_range = ns::detail::subordinate_range(file, name, euid).has_value();
        const bool has_helper = ns::detail::executable(helper);
        if (has_range && has_helper && !asked.full_range_when_available)
            return error(s, code, shown,
                         why + ": ns::id_maps::full_range_when_available is off, so only the caller's own id is mapped "
                               "although " + file + " has a range for " + name + "; turn it on");
        why += ": a caller that is not root maps only its own id (as 0) unless " + std::string(file) +
               " gives it a range and " + helper + " (package uidmap) is installed; then ctr maps ids 1 to 65536 " +
               "inside onto that range. Here " +
               (has_range ? std::string(file) + " has a range for " + name : "there is no range for " + name + " in " + file) +
               " and " + (has_helper ? std::string(helper) + " is installed" : std::string(helper) + " is missing") +
               ". Fix: as root, `usermod --add-sub" + (uid ? "uids" : "gids") + " 100000-165535 " + name +
               "` and install uidmap, or run as " + kind + " 0";
    } else {
        why += ": use an id the map has, or map this one (ns::id_maps)";
    }
    return error(s, code, shown, why);
}

}  // namespace ctr::process::detail
// end ctr/detail/id_errors.hpp

#include <string>

namespace ctr::process::detail {

using namespace ::ctr::detail;

template <class = void>
inline void plan_identity(launch_plan& plan, const options& opts) {
    for (const auto& limit : opts.rlimits) {
        const rlimit& value = plan.keep(rlimit{limit.soft, limit.hard});
        plan.add(launch_phase::rlimits,
                 {.code = child_op_code::set_rlimit, .step = step::set_rlimit, .a = limit.resource, .data = &value},
                 "resource " + std::to_string(limit.resource));
    }
    if (opts.groups) {
        const auto& groups = plan.keep(*opts.groups);
        plan.add(launch_phase::credentials, {.code = child_op_code::set_groups, .step = step::set_groups,
                                             .a = static_cast<long>(groups.size()), .data = groups.data()});
    }
    // -1 is setresuid's and setresgid's "leave unchanged": asked for, it would run the command as the caller.
    if (opts.uid == static_cast<uid_t>(-1) || opts.gid == static_cast<gid_t>(-1))
        throw error(step::prepare, EINVAL, opts.uid == static_cast<uid_t>(-1) ? "uid 4294967295" : "gid 4294967295",
                    "-1 is not an id (the kernel reads it as \"leave unchanged\")");
    if (opts.umask && *opts.umask > 0777)
        throw error(step::prepare, EINVAL, "umask " + std::to_string(*opts.umask), "a umask is 0 to 0777");
    // In a new user namespace an id outside its maps is EINVAL; the error
    // says so, and how to map more (detail/id_errors.hpp).
    const auto unmapped = [&](step s, const char* kind, std::uint32_t id) -> step_explainer {
        if (!plan.created.has(ns::user) && !plan.entered.has(ns::user)) return {};
        return [s, kind, id, asked = opts.id_maps](const child_report_view& report) {
            return unmapped_id_error(s, report.error, kind, id, asked);
        };
    };
    if (opts.gid)
        plan.add(launch_phase::credentials,
                 {.code = child_op_code::set_gid, .step = step::set_gid, .a = static_cast<long>(*opts.gid)},
                 "gid " + std::to_string(*opts.gid), unmapped(step::set_gid, "gid", *opts.gid));
    if (opts.uid)
        plan.add(launch_phase::credentials,
                 {.code = child_op_code::set_uid, .step = step::set_uid, .a = static_cast<long>(*opts.uid)},
                 "uid " + std::to_string(*opts.uid), unmapped(step::set_uid, "uid", *opts.uid));

    if (opts.controlling_terminal && !opts.new_session)
        throw error(step::prepare, EINVAL, {}, "a controlling terminal needs a new session (options::new_session)");
    if (opts.new_session) plan.add(launch_phase::session, {.code = child_op_code::new_session, .step = step::new_session});
    if (opts.controlling_terminal)
        plan.add(launch_phase::session,
                 {.code = child_op_code::set_controlling_terminal, .step = step::set_controlling_terminal, .a = 0}, "fd 0");
    if (opts.umask)
        plan.add(launch_phase::session,
                 {.code = child_op_code::set_umask, .step = step::set_umask, .a = static_cast<long>(*opts.umask)});
    if (!opts.cwd.empty()) {
        // Resolved in the child after the new root is entered.
        const std::string& cwd = plan.keep(opts.cwd);
        plan.add(launch_phase::session,
                 {.code = child_op_code::change_directory, .step = step::change_directory, .data = cwd.c_str()}, cwd);
    }
}

}  // namespace ctr::process::detail
// end ctr/detail/launch_identity.hpp
// begin ctr/detail/launch_io.hpp
// Launch layer: what the command runs with. Its argv, environment and the
// files exec tries; its standard streams and passed fds, moved to their
// numbers with every other fd closed at exec.


#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

extern "C" char** environ;

namespace ctr::process::detail {

using namespace ::ctr::detail;

inline constexpr std::string_view default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

template <class = void>
inline std::string_view env_key(std::string_view entry) { return entry.substr(0, entry.find('=')); }

template <class = void>
inline std::vector<std::string> build_environment(const environment& env) {
    for (const auto& [key, value] : env.set)
        if (key.empty() || key.find('=') != std::string::npos)
            throw error(step::prepare, EINVAL, key, "environment variable names must be non-empty and contain no '='");
    const auto replaced = [&](std::string_view key) {
        for (const auto& name : env.unset)
            if (name == key) return true;
        for (const auto& entry : env.set)
            if (entry.first == key) return true;
        return false;
    };
    std::vector<std::string> entries;
    if (env.inherit)
        for (char** entry = environ; entry && *entry; ++entry)
            if (!replaced(env_key(*entry))) entries.emplace_back(*entry);
    for (const auto& [key, value] : env.set) entries.push_back(key + "=" + value);
    return entries;
}

// The files exec tries, in order: the name itself when it has a '/', else
// each PATH directory of the child's environment.
template <class = void>
inline std::vector<std::string> exec_candidates(const std::string& program, const std::vector<std::string>& env) {
    if (program.find('/') != std::string::npos) return {program};
    std::string_view path = default_path;
    for (const auto& entry : env)
        if (env_key(entry) == "PATH") path = std::string_view(entry).substr(5);
    std::vector<std::string> candidates;
    while (true) {
        const auto colon = path.find(':');
        std::string directory{path.substr(0, colon)};
        if (directory.empty()) directory = ".";  // an empty PATH element means the working directory
        candidates.push_back(directory + "/" + program);
        if (colon == std::string_view::npos) break;
        path.remove_prefix(colon + 1);
    }
    return candidates;
}

// argv, environment and exec candidates; the exec step itself.
template <class = void>
inline void plan_command(launch_plan& plan, std::vector<std::string> argv, const options& opts) {
    if (argv.empty()) throw error(step::prepare, EINVAL, {}, "argv is empty");
    // Zero means "none" for the timeout; a negative one is a mistake, not a
    // wish to be killed at once (nor, for the grace, to skip SIGTERM).
    if (opts.timeout.count() < 0)
        throw error(step::prepare, EINVAL, "timeout", std::to_string(opts.timeout.count()) + " ms is negative (0: none)");
    if (opts.kill_grace.count() < 0)
        throw error(step::prepare, EINVAL, "kill_grace", std::to_string(opts.kill_grace.count()) + " ms is negative");
    for (const auto& arg : argv)
        if (arg.find('\0') != std::string::npos) throw error(step::prepare, EINVAL, arg, "argument contains a NUL byte");
    plan.argv_storage = std::move(argv);
    plan.env_storage = build_environment(opts.env);
    const std::string& program = opts.executable.empty() ? plan.argv_storage.front() : opts.executable;
    if (program.empty()) throw error(step::prepare, ENOENT, {}, "the program name is empty");
    plan.candidate_storage = exec_candidates(program, plan.env_storage);

    for (auto& s : plan.argv_storage) plan.argv.push_back(s.data());
    plan.argv.push_back(nullptr);
    for (auto& s : plan.env_storage) plan.envp.push_back(s.data());
    plan.envp.push_back(nullptr);
    for (auto& s : plan.candidate_storage) plan.candidates.push_back(s.c_str());
    plan.candidates.push_back(nullptr);

    make_pipe(plan.report_read, plan.report_write);
    plan.add(launch_phase::signals, {.code = child_op_code::reset_signals, .step = step::reset_signals});
    plan.add(launch_phase::restore_signal_mask,
             {.code = child_op_code::restore_signal_mask, .step = step::restore_signal_mask});
    plan.add(launch_phase::exec, {.code = child_op_code::exec, .step = step::exec, .data = plan.candidates.data()},
             program);
}

// Resolves one standard stream to the fd the child gets (or -1 to keep the
// parent's own).
template <class = void>
inline int prepare_stream(launch_plan& plan, const stdio& spec, int target) {
    const bool input = target == 0;
    switch (spec.how) {
        case stdio::kind::inherit:
            return -1;
        case stdio::kind::null:
            plan.child_ends.push_back(open_checked("/dev/null", input ? O_RDONLY : O_WRONLY, 0, step::open_stdio));
            return plan.child_ends.back().get();
        case stdio::kind::file: {
            const int flags = spec.flags >= 0 ? spec.flags : (input ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC);
            plan.child_ends.push_back(open_checked(spec.path.c_str(), flags, spec.mode, step::open_stdio));
            return plan.child_ends.back().get();
        }
        case stdio::kind::fd:
            if (!fd_is_open(spec.fd)) throw error(step::map_fds, EBADF, fd_name(spec.fd), "stdio fd is not open");
            return spec.fd;
        case stdio::kind::pipe:
        case stdio::kind::capture: {
            unique_fd read_end, write_end;
            make_pipe(read_end, write_end);
            unique_fd& parent_end = target == 0 ? plan.parent_in : target == 1 ? plan.parent_out : plan.parent_err;
            parent_end = input ? std::move(write_end) : std::move(read_end);
            plan.child_ends.push_back(input ? std::move(read_end) : std::move(write_end));
            if (spec.how == stdio::kind::capture) (target == 1 ? plan.capture_out : plan.capture_err) = true;
            return plan.child_ends.back().get();
        }
    }
    return -1;
}

// Moves every source fd to its target number in the child and marks every
// other fd close-on-exec. Sources first go above the highest target, so no
// dup3 can overwrite a source that is still needed.
template <class = void>
inline void plan_fd_mapping(launch_plan& plan, const std::vector<fd_mapping>& mappings,
                            const bool inherited_stdio[3], int start_gate) {
    int lowest_free = 3;
    for (const auto& m : mappings) lowest_free = std::max(lowest_free, m.target + 1);
    plan.first_unmapped_fd = lowest_free;

    // The error channel must survive the moves: put it above every target.
    if (plan.report_write.get() < lowest_free) {
        const long moved = sys::fcntl(plan.report_write.get(), F_DUPFD_CLOEXEC, lowest_free);
        if (moved < 0) throw error(step::create_pipe, static_cast<int>(-moved));
        plan.report_write.reset(static_cast<int>(moved));
    }
    // So must the start gate; the child reads its own copy, close-on-exec.
    if (start_gate >= 0) {
        const long copy = sys::fcntl(start_gate, F_DUPFD_CLOEXEC, lowest_free);
        if (copy < 0) throw error(step::hold_for_start, static_cast<int>(-copy), fd_name(start_gate), "the start gate fd");
        plan.start_gate.reset(static_cast<int>(copy));
    }

    plan.scratch.assign(mappings.size(), -1);
    for (std::size_t i = 0; i < mappings.size(); ++i)
        plan.add(launch_phase::fds,
                 {.code = child_op_code::dup_above, .step = step::map_fds, .a = mappings[i].source,
                  .b = lowest_free, .c = static_cast<long>(i)},
                 fd_name(mappings[i].source));
    for (std::size_t i = 0; i < mappings.size(); ++i)
        plan.add(launch_phase::fds,
                 {.code = child_op_code::dup_to, .step = step::map_fds, .b = mappings[i].target,
                  .c = static_cast<long>(i)},
                 fd_name(mappings[i].target));

    // Close-on-exec for each gap below lowest_free and everything above it.
    std::vector<bool> kept(static_cast<std::size_t>(lowest_free), false);
    for (int fd = 0; fd < 3; ++fd) kept[static_cast<std::size_t>(fd)] = inherited_stdio[fd];
    for (const auto& m : mappings) kept[static_cast<std::size_t>(m.target)] = true;
    for (int fd = 0; fd < lowest_free;) {
        if (kept[static_cast<std::size_t>(fd)]) {
            ++fd;
            continue;
        }
        int last = fd;
        while (last + 1 < lowest_free && !kept[static_cast<std::size_t>(last + 1)]) ++last;
        plan.add(launch_phase::fds, {.code = child_op_code::cloexec_range, .step = step::close_fds, .a = fd, .b = last});
        plan.hold_closes.insert(plan.hold_closes.end(), {static_cast<unsigned>(fd), static_cast<unsigned>(last)});
        fd = last + 1;
    }
    plan.add(launch_phase::fds, {.code = child_op_code::cloexec_range, .step = step::close_fds, .a = lowest_free, .b = -1});
    if (plan.start_gate) {
        // From lowest_free up, around the two fds the held child keeps.
        const auto low = static_cast<unsigned>(std::min(plan.report_write.get(), plan.start_gate.get()));
        const auto high = static_cast<unsigned>(std::max(plan.report_write.get(), plan.start_gate.get()));
        const auto from = static_cast<unsigned>(lowest_free);
        if (low > from) plan.hold_closes.insert(plan.hold_closes.end(), {from, low - 1});
        if (high > low + 1) plan.hold_closes.insert(plan.hold_closes.end(), {low + 1, high - 1});
        plan.hold_closes.insert(plan.hold_closes.end(), {high + 1, ~0U});
    }
}

// Standard streams and passed fds.
template <class = void>
inline void plan_streams(launch_plan& plan, const options& opts) {
    std::vector<fd_mapping> mappings;
    bool inherited_stdio[3] = {false, false, false};
    const stdio* streams[3] = {&opts.std_in, &opts.std_out, &opts.std_err};
    for (int target = 0; target < 3; ++target) {
        const int source = prepare_stream(plan, *streams[target], target);
        if (source < 0) inherited_stdio[target] = true;
        else mappings.push_back({source, target});
    }
    for (const auto& m : opts.fds) {
        if (m.target < 0 || m.target > 65535)
            throw error(step::map_fds, EBADF, fd_name(m.target), "target fd number out of range");
        if (!fd_is_open(m.source)) throw error(step::map_fds, EBADF, fd_name(m.source), "source fd is not open");
        for (const auto& other : mappings)
            if (other.target == m.target)
                throw error(step::map_fds, EINVAL, fd_name(m.target), "two fds are mapped to the same number");
        mappings.push_back(m);
        if (m.target < 3) inherited_stdio[m.target] = false;
    }
    plan_fd_mapping(plan, mappings, inherited_stdio, opts.start_gate);
    if (plan.start_gate) {
        // A held child outlives spawn's frame and the caller's plan (and,
        // for an OCI create, the caller itself): it runs on a copy of the
        // caller's memory, never on a share of it.
        plan.request.memory = memory_mode::copied;
        plan.add(launch_phase::hold,
                 {.code = child_op_code::hold, .step = step::hold_for_start, .a = plan.start_gate.get(),
                  .b = static_cast<long>(plan.hold_closes.size() / 2), .data = plan.hold_closes.data()},
                 fd_name(opts.start_gate));
    }
}

}  // namespace ctr::process::detail
// end ctr/detail/launch_io.hpp
// begin ctr/detail/launch_lifetime.hpp
// Launch layer: how long the sandbox may live. options::die_with_parent (the
// kernel's parent-death signal, tied to the spawning thread) and
// options::die_with_owner (the sandbox ends with the owner process, however
// it ends, whichever thread spawned).
//
// die_with_owner works in two stages. Until the supervisor runs, the child
// has the parent-death signal, so an owner killed during setup takes it
// along. The supervisor (pid 1 of a new pid namespace, else a subreaper
// outside it; see child_become_init) then watches a pidfd of the owner,
// which becomes readable only when every thread of the owner has ended, and
// drops the parent-death signal before the command may run, so that a
// spawning thread that exits later does not end the sandbox.


#include <fcntl.h>

namespace ctr::process::detail {

using namespace ::ctr::detail;

template <class = void>
inline void plan_lifetime(launch_plan& plan, const options& opts) {
    // A change of uid or gid clears the parent-death signal (the kernel
    // does so on every change of effective or filesystem ids), so it is set
    // again after each step that may change them.
    const bool ids_change_as_root = plan.created.has(ns::user);
    const bool ids_change = opts.uid || opts.gid || opts.groups;

    if (opts.die_with_parent) {
        const long parent = plan.created.has(ns::pid) ? 0 : sys::getpid();
        const child_op again{.code = child_op_code::die_with_parent, .step = step::die_with_parent, .a = SIGKILL,
                             .b = parent};
        if (ids_change_as_root) plan.add(launch_phase::become_root, again);
        if (ids_change) plan.add(launch_phase::credentials, again);
    }

    if (!opts.die_with_owner) return;
    // plan_namespaces made the supervisor (plan.uses_init) for this.
    const long pidfd = sys::pidfd_open(static_cast<int>(sys::getpid()), 0);
    if (pidfd < 0)
        throw error(step::die_with_parent, static_cast<int>(-pidfd), {},
                    "die_with_owner watches the owner through a pidfd (pidfd_open, Linux 5.3)");
    const int owner = plan.keep(unique_fd(static_cast<int>(pidfd))).get();
    init_state& supervisor = plan.shared->init;
    supervisor.owner_pidfd = owner;
    // A supervisor that is not pid 1 finds what to kill in its own
    // /proc/<pid>/task/<tid>/children, through the caller's /proc: the
    // sandbox may have another one, or none.
    if (!plan.created.has(ns::pid)) {
        const long proc = sys::openat(AT_FDCWD, "/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (proc >= 0) supervisor.proc_fd = plan.keep(unique_fd(static_cast<int>(proc))).get();
    }
    const child_op arm{.code = child_op_code::die_with_owner, .step = step::die_with_parent, .a = owner};
    plan.add(launch_phase::signals, arm);
    if (ids_change_as_root) plan.add(launch_phase::become_root, arm);
    if (ids_change) plan.add(launch_phase::credentials, arm);
}

}  // namespace ctr::process::detail
// end ctr/detail/launch_lifetime.hpp
// begin ctr/detail/launch_namespaces.hpp
// Launch layer: namespaces. Which ones the clone creates and which the
// child joins or unshares; host and domain names, time offsets, loopback;
// the id maps of a new user namespace (a parent step while the child waits)
// and the child becoming root in it; pid 1 (the init) or the time
// namespace's supervisor.


#include <string>
#include <utility>
#include <vector>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Runs newuidmap/newgidmap as a plain child; returns its exit code (-1 when
// it did not exit) and the first line of its stderr. Defined in process.hpp,
// after spawn.
template <class = void>
inline std::pair<int, std::string> run_id_map_helper_program(std::vector<std::string> argv);

template <class = void>
inline void write_proc_file(const std::string& path, const std::string& text, step s) {
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw error(s, static_cast<int>(-fd), path);
    const long written = sys::write(static_cast<int>(fd), text.data(), text.size());
    sys::close(static_cast<int>(fd));
    if (written < 0) throw error(s, static_cast<int>(-written), path, "writing \"" + text.substr(0, text.find('\n')) + "\"");
}

// Writes one of the child's id-map files; explains the one surprising
// refusal: a process that changed its ids without exec is not dumpable, and
// the /proc files of it and of its children belong to root.
template <class = void>
inline void write_id_map_file(const std::string& path, const std::string& text, step s) {
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd == -EACCES && sys::prctl(PR_GET_DUMPABLE) == 0)
        throw error(s, EACCES, path,
                    "this process is not dumpable (it changed its ids without exec), so its children's /proc files "
                    "belong to root; prctl(PR_SET_DUMPABLE, 1) first");
    if (fd >= 0) sys::close(static_cast<int>(fd));
    write_proc_file(path, text, s);
}

template <class = void>
inline void run_id_map_helper(const char* helper, pid_t pid, const std::vector<ns::id_range>& ranges, step s) {
    std::vector<std::string> argv{helper, std::to_string(pid)};
    for (const auto& r : ranges) {
        argv.push_back(std::to_string(r.inside));
        argv.push_back(std::to_string(r.outside));
        argv.push_back(std::to_string(r.count));
    }
    auto [code, message] = run_id_map_helper_program(std::move(argv));
    if (code != 0) throw error(s, EPERM, helper, message.empty() ? "it failed" : message);
}

// Writes the uid and gid maps of the child's new user namespace, directly
// or through newuidmap/newgidmap.
template <class = void>
inline void write_id_maps(pid_t pid, const ns::detail::resolved_id_maps& maps) {
    if (maps.use_helpers) {
        run_id_map_helper("/usr/bin/newuidmap", pid, maps.uid, step::write_uid_map);
        run_id_map_helper("/usr/bin/newgidmap", pid, maps.gid, step::write_gid_map);
        return;
    }
    const std::string base = "/proc/" + std::to_string(pid) + "/";
    if (maps.deny_setgroups) write_id_map_file(base + "setgroups", "deny", step::deny_setgroups);
    write_id_map_file(base + "uid_map", ns::detail::map_text(maps.uid), step::write_uid_map);
    write_id_map_file(base + "gid_map", ns::detail::map_text(maps.gid), step::write_gid_map);
}

// Where this process's argv and environment strings are (fields 48 to 51
// of /proc/self/stat), so that an init with a copy of our memory can blank
// them. Read once: they do not move.
struct caller_strings {
    std::uintptr_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};
template <class = void>
inline caller_strings read_caller_strings() {
    static const caller_strings found = [] {
        caller_strings out;
        const auto stat = ctr::detail::read_small_file("/proc/self/stat");
        if (!stat) return out;
        const auto close = stat->rfind(')');
        if (close == std::string::npos) return out;
        std::vector<std::uintptr_t> fields;  // fields[0] is field 3 (state) of proc(5)
        std::size_t at = close + 2;
        while (at < stat->size()) {
            const auto end = std::min(stat->find(' ', at), stat->size());
            std::uintptr_t value = 0;
            for (std::size_t i = at; i < end; ++i)
                if ((*stat)[i] >= '0' && (*stat)[i] <= '9') value = value * 10 + static_cast<std::uintptr_t>((*stat)[i] - '0');
            fields.push_back(value);
            at = end + 1;
        }
        if (fields.size() > 51 - 3) {
            out.arg_start = fields[48 - 3];
            out.arg_end = fields[49 - 3];
            out.env_start = fields[50 - 3];
            out.env_end = fields[51 - 3];
        }
        return out;
    }();
    return found;
}

// Validates the namespace options and adds the namespaces' steps.
template <class = void>
inline void plan_namespaces(launch_plan& plan, const options& opts) {
    ns::kinds wanted = opts.namespaces;
    if (opts.root) wanted = wanted | ns::mount;  // a root filesystem is built in a mount namespace of its own
    if (opts.network) wanted = wanted | ns::network;  // the veth's other end goes into a namespace of its own
    if (opts.pasta) wanted = wanted | ns::network;    // pasta's tap interface likewise
    if (opts.network && opts.pasta)
        throw error(step::prepare, EINVAL, {}, "options::network (veth) and options::pasta are two networks: give one");
    bool joins_user = false;
    for (const auto& j : opts.join) {
        joins_user = joins_user || j.which == ns::user;
        if (opts.network && j.which == ns::network)
            throw error(step::prepare, EINVAL, {}, "options::network makes a new network namespace; it cannot also join one");
        if (opts.pasta && j.which == ns::network)
            throw error(step::prepare, EINVAL, {}, "options::pasta makes a new network namespace; it cannot also join one");
    }
    const bool privileged = raw::call(SYS_geteuid) == 0;
    if (!wanted.empty() && !privileged && !joins_user) wanted = wanted | ns::user;
    if (joins_user && wanted.has(ns::user))
        throw error(step::prepare, EINVAL, {}, "cannot both join a user namespace and create one");
    if (joins_user && wanted.has(ns::pid))
        throw error(step::prepare, ENOTSUP, {},
                    "joining a user namespace while creating a pid namespace is not supported yet");
    plan.created = wanted;

    if ((!opts.hostname.empty() || !opts.domainname.empty()) && !wanted.has(ns::uts))
        throw error(step::prepare, EINVAL, opts.hostname, "a hostname needs a new uts namespace (ns::uts)");
    if (opts.hostname.size() > 64 || opts.domainname.size() > 64)
        throw error(step::prepare, ENAMETOOLONG, opts.hostname.size() > 64 ? opts.hostname : opts.domainname,
                    "host and domain names are at most 64 bytes");
    const bool has_offsets = opts.time_offsets.monotonic_seconds != 0 || opts.time_offsets.boottime_seconds != 0;
    if (has_offsets && !wanted.has(ns::time))
        throw error(step::prepare, EINVAL, {}, "time offsets need a new time namespace (ns::time)");

    // The time and cgroup namespaces are created by unshare in the child
    // (below); every other kind by the clone itself. A cgroup namespace made
    // by the clone would have the parent's cgroup as its root, not the group
    // the child is placed in.
    plan.request.flags = wanted.without(ns::time | ns::cgroup).flags();
    // The kernel refuses to let a process that shares its memory join a
    // user namespace, so that launch copies the parent's memory instead.
    if (joins_user) plan.request.memory = memory_mode::copied;

    for (const auto& j : opts.join) {
        int fd = -1;
        std::string what;
        if (const auto* path = std::get_if<std::string>(&j.source)) {
            const long opened = sys::openat(AT_FDCWD, path->c_str(), O_RDONLY | O_CLOEXEC);
            if (opened < 0) throw error(step::join_namespace, static_cast<int>(-opened), *path);
            fd = plan.keep(unique_fd(static_cast<int>(opened))).get();
            what = *path;
        } else {
            fd = std::get<int>(j.source);
            if (!fd_is_open(fd)) throw error(step::join_namespace, EBADF, fd_name(fd), "namespace fd is not open");
            what = std::string(ns::name(j.which)) + " namespace " + fd_name(fd);
        }
        // The user namespace goes first: joining it is what grants the
        // rights to join the others.
        plan.add(j.which == ns::user ? launch_phase::join_user : launch_phase::join_namespaces,
                 {.code = child_op_code::join_namespace, .step = step::join_namespace, .a = fd,
                  .b = static_cast<long>(j.which)},
                 what);
    }

    if (wanted.has(ns::user)) {
        const auto& maps = plan.keep(ns::detail::resolve_id_maps(opts.id_maps));
        plan.sync_channel();
        plan.while_child_waits([&maps](parent_step_context& child) { write_id_maps(child.pid, maps); });
        // Become root of the new namespace. Until now the child kept the
        // caller's ids, which the maps need not cover (root's default map
        // starts at 100000); uid 0 inside is always mapped. This comes after
        // the writes to /proc/self of create_namespaces: changing ids makes
        // the process non-dumpable, and its /proc files then belong to the
        // host's root.
        if (maps.may_setgroups)
            plan.add(launch_phase::become_root, {.code = child_op_code::set_groups, .step = step::set_groups, .a = 0});
        plan.add(launch_phase::become_root, {.code = child_op_code::set_gid, .step = step::set_gid, .a = 0}, "gid 0");
        plan.add(launch_phase::become_root, {.code = child_op_code::set_uid, .step = step::set_uid, .a = 0}, "uid 0");
    }

    if (wanted.has(ns::cgroup))
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::unshare, .step = step::create_namespaces, .a = CLONE_NEWCGROUP}, "cgroup");
    if (wanted.has(ns::time)) {
        // unshare(CLONE_NEWTIME) puts this process's children (and this
        // process, at exec) in the new namespace; its offsets can be set
        // only before anything is in it.
        const std::string& offsets = plan.keep("monotonic " + std::to_string(opts.time_offsets.monotonic_seconds) +
                                               " 0\nboottime " + std::to_string(opts.time_offsets.boottime_seconds) +
                                               " 0\n");
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::unshare, .step = step::create_namespaces, .a = CLONE_NEWTIME}, "time");
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::write_file, .step = step::set_time_offsets,
                  .a = static_cast<long>(offsets.size()), .data = "/proc/self/timens_offsets", .data2 = offsets.c_str()},
                 "/proc/self/timens_offsets");
    }
    if (!opts.hostname.empty()) {
        const std::string& name = plan.keep(opts.hostname);
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::set_hostname, .step = step::set_hostname, .a = static_cast<long>(name.size()),
                  .data = name.c_str()},
                 name);
    }
    if (!opts.domainname.empty()) {
        const std::string& name = plan.keep(opts.domainname);
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::set_domainname, .step = step::set_domainname,
                  .a = static_cast<long>(name.size()), .data = name.c_str()},
                 name);
    }
    if (wanted.has(ns::network))
        plan.add(launch_phase::create_namespaces, {.code = child_op_code::bring_up_loopback, .step = step::bring_up_loopback},
                 "lo");

    // pid 1 of a new pid namespace is the init unless asked otherwise. A
    // time namespace needs the same shape: its offsets can be set only
    // before any process is in it, and only children of the process that
    // unshared it enter it (older kernels, 6.1 among them, do not move the
    // process itself in at exec), so the command is started by a small
    // supervisor that then reaps it and forwards signals, like the init.
    // die_with_owner needs the same supervisor: it is what watches the owner
    // (see launch_lifetime.hpp).
    // Joining a pid namespace moves only the joiner's children into it, so
    // the command is started by such a supervisor too (outside the
    // namespace; an OCI runtime's exec).
    bool joins_pid = false;
    for (const auto& j : opts.join) joins_pid = joins_pid || j.which == ns::pid;
    if ((wanted.has(ns::pid) && opts.init) || wanted.has(ns::time) || opts.die_with_owner || joins_pid) {
        plan.uses_init = true;
        // The init lives as long as the sandbox. It gets a copy of our
        // memory rather than a share of it: then its /proc/1/cmdline and
        // environ can be blanked without touching ours, and nothing the
        // sandbox could read of it is the caller's (see seal_init).
        plan.request.memory = memory_mode::copied;
        if (const long r = plan.command_stack.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));
        init_state& init = plan.shared->init;
        init.command_stack_top = plan.command_stack.top();
        init.command_entry = child_command_main;
        init.view = &plan.view;
        const caller_strings strings = read_caller_strings();
        init.arg_start = strings.arg_start;
        init.arg_end = strings.arg_end;
        init.env_start = strings.env_start;
        init.env_end = strings.env_end;
        plan.add(launch_phase::init, {.code = child_op_code::become_init, .step = step::run_init, .data = &init});
    }
}

// The error for a failed clone: with namespaces, why they could not be made.
template <class = void>
inline error clone_error(const launch_plan& plan, long negative_errno) {
    const int code = static_cast<int>(-negative_errno);
    if (plan.created.empty()) return error(step::clone, code);
    std::string kinds;
    for (ns::kind k : ns::every_kind)
        if (plan.created.has(k)) kinds += (kinds.empty() ? "" : ",") + std::string(ns::name(k));
    if (plan.created.has(ns::user) && (code == EPERM || code == ENOSPC || code == EUSERS || code == EINVAL))
        return error(step::create_namespaces, code, kinds, ns::detail::user_namespace_blocker(negative_errno));
    if (code == EPERM)
        return error(step::create_namespaces, code, kinds,
                     "creating namespaces needs CAP_SYS_ADMIN; add a user namespace (ns::user) to do it unprivileged");
    return error(step::create_namespaces, code, kinds);
}

}  // namespace ctr::process::detail
// end ctr/detail/launch_namespaces.hpp
// begin ctr/detail/launch_security.hpp
// Launch layer: what the command may still do (ctr::security).
// Capabilities in their documented order around the change of credentials,
// the Landlock ruleset (detail/launch_landlock.hpp), no_new_privs, then the
// seccomp filter right before exec. All of it runs in the command, after the
// init split off: pid 1 keeps what it needs to forward signals to a command
// that may have changed its uid.

// begin ctr/detail/capability_step.hpp
// The capability steps of a launch: planned in the parent from a
// caps::policy, run in the child as child_op_code::call operations.
//
// The order, and why:
//   1. drop_bounding_capabilities  PR_CAPBSET_DROP needs CAP_SETPCAP in the
//      effective set, so it goes first, while the child still has the
//      launcher's capabilities. The bounding set also limits what a later
//      exec can gain, and what capset may put into the inheritable set.
//   2. set_securebits              PR_SET_SECUREBITS needs CAP_SETPCAP too.
//      It comes before the change of ids so that SECBIT_NO_SETUID_FIXUP and
//      SECBIT_KEEP_CAPS shape what setresuid does.
//   3. keep_capabilities(1)        only when a change of uid follows: going
//      from uid 0 to another uid empties the permitted set unless keepcaps is
//      on. The kernel turns keepcaps off again at exec.
//   4. setgroups, setgid, setuid   (the launch's own steps) need CAP_SETGID
//      and CAP_SETUID, which `keep` need not hold: that is why the sets are
//      only lowered after them. Leaving uid 0 also empties the effective and
//      ambient sets.
//   5. set_capabilities            capset: permitted = effective = keep,
//      inheritable = inheritable | ambient. Lowering needs no capability;
//      it also brings back the effective set that setuid emptied.
//   6. set_ambient_capabilities    the kernel raises an ambient capability
//      only while it is both permitted and inheritable, and lowering either
//      set (step 5) or leaving uid 0 (step 4) clears ambient ones; so last.
// Exec then applies the kernel's rules: uid 0 (without SECBIT_NOROOT) gets
// the bounding set again, any other uid only its ambient capabilities.


#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace ctr::detail {

// What the child reads: bit N of each mask is capability number N.
struct capability_plan {
    std::uint64_t keep = 0;         // bounding, permitted, effective
    std::uint64_t inheritable = 0;  // already includes ambient
    std::uint64_t ambient = 0;
    bool set_securebits = false;
    unsigned securebits = 0;
};

// "CAP_BPF", or "capability 45" for a number this header has no name for.
template <class = void>
inline std::string describe_capability(unsigned number) {
    const std::string_view known = caps::name(static_cast<capability>(number));
    return known.empty() ? "capability " + std::to_string(number) : std::string(known);
}

// Checks a policy and turns it into plain data for the child. `last_cap` is
// the running kernel's last capability (caps::last_supported()); a
// capability past it, an ambient or inheritable one that is not kept, or
// securebits the kernel cannot take throw ctr::error(step::prepare, EINVAL)
// naming what is wrong. Parent side.
template <class = void>
inline capability_plan plan_capabilities(const caps::policy& policy, unsigned last_cap = caps::last_supported()) {
    const auto invalid = [](std::string what, std::string why) {
        return error(step::prepare, EINVAL, std::move(what), why);
    };
    const caps::set mentioned = policy.keep | policy.inheritable | policy.ambient;
    for (const capability c : mentioned) {
        if (static_cast<unsigned>(c) > last_cap)
            throw invalid(describe_capability(static_cast<unsigned>(c)),
                          describe_capability(static_cast<unsigned>(c)) + " is not known to this kernel (its last is " +
                              describe_capability(last_cap) + ")");
    }
    if (const caps::set extra = policy.ambient - policy.keep; !extra.empty())
        throw invalid(extra.to_string(),
                      "ambient capabilities must also be kept: the kernel raises an ambient capability only while it "
                      "is permitted and inheritable");
    if (const caps::set extra = policy.inheritable - policy.keep; !extra.empty())
        throw invalid(extra.to_string(),
                      "inheritable capabilities must also be kept: the kernel refuses an inheritable capability "
                      "outside the bounding set");
    capability_plan plan;
    plan.keep = policy.keep.bits();
    plan.inheritable = (policy.inheritable | policy.ambient).bits();
    plan.ambient = policy.ambient.bits();
    if (policy.securebits) {
        const unsigned bits = *policy.securebits;
        constexpr unsigned known = SECURE_ALL_BITS | SECURE_ALL_LOCKS;
        if ((bits & ~known) != 0)
            throw invalid("securebits " + std::to_string(bits),
                          "unknown securebits: use the SECBIT_* flags of linux/securebits.h");
        if ((bits & SECBIT_NO_CAP_AMBIENT_RAISE) != 0 && !policy.ambient.empty())
            throw invalid(policy.ambient.to_string(),
                          "ambient capabilities cannot be raised under SECBIT_NO_CAP_AMBIENT_RAISE");
        plan.set_securebits = true;
        plan.securebits = bits;
    }
    return plan;
}

// PR_CAPBSET_DROP of every capability not in plan.keep, 0 to 63; the first
// number the kernel does not know (EINVAL) ends the walk. A capability that
// is already out of the bounding set is left alone, so a launcher without
// CAP_SETPCAP can still run a policy that drops nothing new.
// op.data = const capability_plan*. Async-signal-safe.
CTR_CHILD_CODE inline long child_drop_bounding_capabilities(const child_op& op) noexcept {
    const auto* plan = static_cast<const capability_plan*>(op.data);
    if (!plan) return -EINVAL;
    for (unsigned long number = 0; number <= caps::max_number; ++number) {
        if ((plan->keep >> number & 1) != 0) continue;
        long r = sys::prctl(PR_CAPBSET_READ, number);
        if (r == -EINVAL) break;
        if (r < 0) return r;
        if (r == 0) continue;
        r = sys::prctl(PR_CAPBSET_DROP, number);
        if (r == -EINVAL) break;
        if (r < 0) return r;
    }
    return 0;
}

// PR_SET_SECUREBITS to plan.securebits, when plan.set_securebits.
// op.data = const capability_plan*. Async-signal-safe.
CTR_CHILD_CODE inline long child_set_securebits(const child_op& op) noexcept {
    const auto* plan = static_cast<const capability_plan*>(op.data);
    if (!plan) return -EINVAL;
    if (!plan->set_securebits) return 0;
    const long r = sys::prctl(PR_SET_SECUREBITS, plan->securebits);
    return r < 0 ? r : 0;
}

// PR_SET_KEEPCAPS to op.a (1 before a change of uid). Async-signal-safe.
CTR_CHILD_CODE inline long child_keep_capabilities(const child_op& op) noexcept {
    const long r = sys::prctl(PR_SET_KEEPCAPS, static_cast<unsigned long>(op.a));
    return r < 0 ? r : 0;
}

// capset (version 3, this process): permitted = effective = plan.keep,
// inheritable = plan.inheritable. op.data = const capability_plan*.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_set_capabilities(const child_op& op) noexcept {
    const auto* plan = static_cast<const capability_plan*>(op.data);
    if (!plan) return -EINVAL;
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    for (unsigned word = 0; word < _LINUX_CAPABILITY_U32S_3; ++word) {
        const unsigned shift = 32 * word;
        data[word].effective = static_cast<std::uint32_t>(plan->keep >> shift);
        data[word].permitted = static_cast<std::uint32_t>(plan->keep >> shift);
        data[word].inheritable = static_cast<std::uint32_t>(plan->inheritable >> shift);
    }
    const long r = sys::capset(&header, data);
    return r < 0 ? r : 0;
}

// Empties the ambient set, then raises each capability of plan.ambient. A
// kernel without ambient capabilities (before 4.3) answers EINVAL, which is
// fine only when there is nothing to raise. op.data = const capability_plan*.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_set_ambient_capabilities(const child_op& op) noexcept {
    const auto* plan = static_cast<const capability_plan*>(op.data);
    if (!plan) return -EINVAL;
    const long cleared = sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
    if (cleared == -EINVAL && plan->ambient == 0) return 0;
    if (cleared < 0) return cleared;
    for (unsigned long number = 0; number <= caps::max_number; ++number) {
        if ((plan->ambient >> number & 1) == 0) continue;
        const long r = sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number);
        if (r < 0) return r;
    }
    return 0;
}

// The operations of steps 1-3 above, for a launch to put before its own
// setgroups/setgid/setuid; `changes_uid` says whether a setuid follows.
// The plan must outlive the child's exec. Parent side.
template <class = void>
inline void add_capability_steps_before_ids(std::vector<child_op>& ops, const capability_plan& plan,
                                            bool changes_uid) {
    ops.push_back({.code = child_op_code::call,
                   .step = step::drop_bounding_capabilities,
                   .data = &plan,
                   .run = &child_drop_bounding_capabilities});
    if (plan.set_securebits)
        ops.push_back({.code = child_op_code::call,
                       .step = step::set_securebits,
                       .data = &plan,
                       .run = &child_set_securebits});
    // With SECBIT_KEEP_CAPS_LOCKED the caller fixed keepcaps already (the
    // kernel refuses PR_SET_KEEPCAPS then); with SECBIT_NO_SETUID_FIXUP the
    // change of uid leaves the sets alone.
    const bool fixed = plan.set_securebits &&
                       (plan.securebits & (SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP)) != 0;
    if (changes_uid && plan.keep != 0 && !fixed)
        ops.push_back({.code = child_op_code::call,
                       .step = step::keep_capabilities,
                       .a = 1,
                       .data = &plan,
                       .run = &child_keep_capabilities});
}

// The operations of steps 5-6 above, for a launch to put after its own
// setgroups/setgid/setuid. The plan must outlive the child's exec. Parent side.
template <class = void>
inline void add_capability_steps_after_ids(std::vector<child_op>& ops, const capability_plan& plan) {
    ops.push_back({.code = child_op_code::call,
                   .step = step::set_capabilities,
                   .data = &plan,
                   .run = &child_set_capabilities});
    ops.push_back({.code = child_op_code::call,
                   .step = step::set_ambient_capabilities,
                   .data = &plan,
                   .run = &child_set_ambient_capabilities});
}

}  // namespace ctr::detail
// end ctr/detail/capability_step.hpp
// begin ctr/detail/launch_landlock.hpp
// Launch layer: the Landlock ruleset of ctr::security::landlock.
//
// The parent creates the ruleset (its handled rights fitted to the kernel's
// ABI) and adds the port rules; the fd goes above every fd the child maps,
// close-on-exec. The child, after its mounts, opens each rule's path as the
// command will see it (O_PATH), adds the rule, then sets no_new_privs,
// confines itself (landlock_restrict_self) and closes the ruleset, so that
// the command never holds it.


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
// end ctr/detail/launch_landlock.hpp
// begin ctr/seccomp.hpp
// ctr::seccomp: system call filters, built in the parent and installed in the
// child as one step of the launch.
//
//     auto f = ctr::seccomp::builder{}
//                  .default_action(ctr::seccomp::action::fail_with(EPERM))
//                  .allow({"read", "write", "exit_group"})
//                  .rule("clone", ctr::seccomp::action::allow(),
//                        ctr::seccomp::arg(0).masked(CLONE_NEWUSER) == 0)
//                  .build();
//
// Semantics, in this order:
//   - another ABI (the i386 ABI through int 0x80, or x32 numbers with
//     __X32_SYSCALL_BIT) gets the foreign-ABI action (kill_process unless
//     set), because its numbers mean different calls;
//   - a number with rules tries them in the order they were given; the first
//     whose conditions all hold decides; when none does, the number gets the
//     default action;
//   - a number the system call table knows (detail/syscall_table_x86_64.hpp)
//     and nobody ruled gets the default action;
//   - a number the table does not know (a hole, or a call newer than the
//     table) gets the unknown-call action, ENOSYS unless set: libc then
//     falls back to an older call (clone3 to clone, close_range to a loop),
//     where EPERM would be taken as a real refusal.
// The kernel itself lets two x86-64 numbers through every filter (Linux 6.11
// and 6.16 on): uretprobe (335) and uprobe (336), which only work from the
// kernel's own probe trampolines and end in SIGILL or an error elsewhere.
//
// A filter is compiled once and is immutable; spawn holds it through
// std::shared_ptr<const filter>, so one filter serves any number of launches.
// Installing it needs no_new_privs (or CAP_SYS_ADMIN), which another step of
// the launch sets before it.

// begin ctr/detail/seccomp_bpf.hpp
// The seccomp BPF emitter: turns a list of rules into a classic BPF program.
//
// ctr writes its own BPF rather than linking libseccomp. The program has one
// shape (docs/security.md shows it):
//
//   1. load seccomp_data.arch; anything but the expected architecture (on
//      x86-64: the i386 ABI, entered through int 0x80) gets the foreign-ABI
//      action, because its numbers mean other calls;
//   2. load seccomp_data.nr; numbers from 0x40000000 on (__X32_SYSCALL_BIT,
//      the x32 ABI, which shares the x86-64 arch value) get the same action;
//   3. a balanced binary search over the numbers, split into ranges in which
//      every number has the same plain action, so a call costs O(log n)
//      comparisons rather than a walk down a list;
//   4. at a leaf: a return, or for a call with argument rules, those rules in
//      order (each a conjunction of 64-bit comparisons) and then its fallback.
//
// Classic BPF has 32-bit loads and 8-bit conditional jump offsets. A 64-bit
// argument is compared as two words (the low word at args[i], the high word
// 4 bytes on, on little-endian x86-64), and a target more than 255
// instructions away is reached through an unconditional jump (JA, 32-bit
// offset). The program is emitted backwards, from its last instruction to its
// first, so that every jump target already has its place when the jump is
// written.
//
// This runs in the parent only: it allocates and throws.


#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <utility>
#include <vector>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "seccomp_bpf.hpp loads the low word of an argument first: little-endian only");

namespace ctr::detail::bpf {

// Where the kernel's struct seccomp_data keeps each field.
inline constexpr std::uint32_t offset_nr = offsetof(seccomp_data, nr);
inline constexpr std::uint32_t offset_arch = offsetof(seccomp_data, arch);
inline constexpr std::uint32_t offset_args = offsetof(seccomp_data, args);
inline constexpr unsigned argument_count = 6;

// The kernel refuses longer programs (BPF_MAXINSNS).
inline constexpr std::size_t max_instructions = BPF_MAXINSNS;
// A conditional jump reaches at most this many instructions ahead.
inline constexpr std::size_t max_short_jump = 255;

// How one argument is compared; every comparison is unsigned and 64 bits wide.
enum class arg_op : std::uint8_t {
    eq,         // arg == value
    ne,         // arg != value
    masked_eq,  // (arg & extra) == value
    masked_ne,  // (arg & extra) != value
    gt,         // arg > value
    ge,         // arg >= value
    lt,         // arg < value
    le,         // arg <= value
    in_range,   // value <= arg <= extra
};

struct arg_check {
    unsigned index = 0;  // 0..5
    arg_op op = arg_op::eq;
    std::uint64_t value = 0;
    std::uint64_t extra = 0;  // the mask (masked_*) or the upper bound (in_range)
};

struct rule {
    std::uint32_t nr = 0;
    std::uint32_t action = SECCOMP_RET_KILL_PROCESS;  // a SECCOMP_RET_* value
    std::vector<arg_check> checks;                    // all must hold; none: always
};

struct program_spec {
    std::uint32_t arch = AUDIT_ARCH_X86_64;
    // Numbers from here on belong to another ABI (x32 on x86-64).
    std::uint32_t foreign_nr_from = 0x40000000U;
    std::uint32_t foreign_action = SECCOMP_RET_KILL_PROCESS;
    // For a known number without a matching rule, and for a ruled number
    // whose rules all fail.
    std::uint32_t default_action = SECCOMP_RET_KILL_PROCESS;
    // For a number that is neither known nor ruled: holes and calls newer
    // than the caller's table.
    std::uint32_t unknown_action = SECCOMP_RET_ERRNO | ENOSYS;
    std::vector<std::uint32_t> known;  // sorted ascending, no duplicates
    std::vector<rule> rules;           // tried in this order, per number
};

constexpr sock_filter statement(std::uint16_t code, std::uint32_t k) noexcept { return sock_filter{code, 0, 0, k}; }

// Builds the program backwards. Positions count from the end: the first
// instruction emitted is the program's last. A jump from position q to
// position t (t < q) has the offset q - t - 1, whatever comes before them.
class emitter {
public:
    // Where a jump goes: an instruction already emitted, or "return this".
    struct target {
        bool is_return = false;
        std::uint32_t action = 0;
        std::size_t at = 0;
    };
    template <class = void>
    static target returning(std::uint32_t action) noexcept { return {true, action, 0}; }
    template <class = void>
    static target position(std::size_t at) noexcept { return {false, 0, at}; }

    template <class = void>
    std::size_t size() const noexcept { return reversed_.size(); }

    template <class = void>
    std::size_t emit(sock_filter instruction) {
        reversed_.push_back(instruction);
        return reversed_.size() - 1;
    }
    template <class = void>
    std::size_t load_word(std::uint32_t offset) { return emit(statement(BPF_LD | BPF_W | BPF_ABS, offset)); }
    template <class = void>
    std::size_t and_with(std::uint32_t mask) { return emit(statement(BPF_ALU | BPF_AND | BPF_K, mask)); }

    // Makes `t` an emitted instruction that a jump placed `slack` instructions
    // from now can still reach with an 8-bit offset: a return is shared with
    // an earlier one for the same action when that one is near enough, and a
    // far instruction is reached through a JA placed here.
    template <class = void>
    target place(target t, std::size_t slack) {
        if (t.is_return) {
            for (auto& [action, at] : returns_)
                if (action == t.action && size() - at - 1 + slack <= max_short_jump) return position(at);
            const std::size_t at = emit(statement(BPF_RET | BPF_K, t.action));
            remember_return(t.action, at);
            return position(at);
        }
        if (size() - t.at - 1 + slack <= max_short_jump) return t;
        return position(emit(statement(BPF_JMP | BPF_JA, static_cast<std::uint32_t>(size() - t.at - 1))));
    }

    // Emits `if (A <op> k) goto when_true; else goto when_false;`.
    template <class = void>
    std::size_t jump(std::uint16_t op, std::uint32_t k, target when_true, target when_false) {
        // Each place() emits at most one instruction, so slack 2 leaves room
        // for both.
        const target t = place(when_true, 2);
        const target f = place(when_false, 2);
        const std::size_t here = size();
        sock_filter j{static_cast<std::uint16_t>(BPF_JMP | op | BPF_K), static_cast<std::uint8_t>(here - t.at - 1),
                      static_cast<std::uint8_t>(here - f.at - 1), k};
        return emit(j);
    }

    // The program in execution order.
    template <class = void>
    std::vector<sock_filter> finish() && {
        std::reverse(reversed_.begin(), reversed_.end());
        return std::move(reversed_);
    }

private:
    template <class = void>
    void remember_return(std::uint32_t action, std::size_t at) {
        for (auto& entry : returns_)
            if (entry.first == action) {
                entry.second = at;
                return;
            }
        returns_.emplace_back(action, at);
    }

    std::vector<sock_filter> reversed_;
    std::vector<std::pair<std::uint32_t, std::size_t>> returns_;  // the latest return per action
};

constexpr std::uint32_t low_word(std::uint64_t v) noexcept { return static_cast<std::uint32_t>(v); }
constexpr std::uint32_t high_word(std::uint64_t v) noexcept { return static_cast<std::uint32_t>(v >> 32); }

// Emits one argument check, entered at the returned target, that continues
// at `match` when it holds and at `fail` when not.
template <class = void>
inline emitter::target emit_check(emitter& e, const arg_check& c, emitter::target match, emitter::target fail) {
    using target = emitter::target;
    // Both ends are used by several jumps: give them a place once.
    match = e.place(match, 12);
    fail = e.place(fail, 12);
    const std::uint32_t low = offset_args + 8 * c.index;
    const std::uint32_t high = low + 4;
    const std::uint32_t lo = low_word(c.value);
    const std::uint32_t hi = high_word(c.value);
    const auto load = [&](std::uint32_t offset) { return emitter::position(e.load_word(offset)); };
    switch (c.op) {
        case arg_op::eq: {
            // ld hi; jeq hi ? next : fail; ld lo; jeq lo ? match : fail
            e.jump(BPF_JEQ, lo, match, fail);
            const target next = load(low);
            e.jump(BPF_JEQ, hi, next, fail);
            return load(high);
        }
        case arg_op::ne: {
            // ld hi; jeq hi ? next : match; ld lo; jeq lo ? fail : match
            e.jump(BPF_JEQ, lo, fail, match);
            const target next = load(low);
            e.jump(BPF_JEQ, hi, next, match);
            return load(high);
        }
        case arg_op::masked_eq:
        case arg_op::masked_ne: {
            // Per word: ld; and mask (left out when the mask is all ones);
            // jeq. A word whose mask is 0 always compares 0 with the value's
            // word, so it is decided here and emits nothing.
            const bool equal = c.op == arg_op::masked_eq;
            const std::uint32_t lo_mask = low_word(c.extra);
            const std::uint32_t hi_mask = high_word(c.extra);
            if ((lo_mask == 0 && lo != 0) || (hi_mask == 0 && hi != 0)) return equal ? fail : match;
            // Both words equal: `equal` holds; either differs: it does not.
            const target both_equal = equal ? match : fail;
            const target differs = equal ? fail : match;
            target next = both_equal;
            const auto word = [&](std::uint32_t offset, std::uint32_t mask, std::uint32_t value) {
                if (mask == 0) return;
                e.jump(BPF_JEQ, value, next, differs);
                if (mask != 0xffffffffU) e.and_with(mask);
                next = load(offset);
            };
            word(low, lo_mask, lo);
            word(high, hi_mask, hi);
            return next;
        }
        case arg_op::gt:
        case arg_op::ge: {
            // ld hi; jgt hi ? match : next; jeq hi ? next2 : fail; ld lo; j{gt,ge} lo ? match : fail
            e.jump(c.op == arg_op::gt ? BPF_JGT : BPF_JGE, lo, match, fail);
            const target low_part = load(low);
            const target equal_high = emitter::position(e.jump(BPF_JEQ, hi, low_part, fail));
            e.jump(BPF_JGT, hi, match, equal_high);
            return load(high);
        }
        case arg_op::lt:
        case arg_op::le: {
            // ld hi; jgt hi ? fail : next; jeq hi ? next2 : match; ld lo; j{ge,gt} lo ? fail : match
            e.jump(c.op == arg_op::lt ? BPF_JGE : BPF_JGT, lo, fail, match);
            const target low_part = load(low);
            const target equal_high = emitter::position(e.jump(BPF_JEQ, hi, low_part, match));
            e.jump(BPF_JGT, hi, fail, equal_high);
            return load(high);
        }
        case arg_op::in_range: {
            const target upper = emit_check(e, {c.index, arg_op::le, c.extra, 0}, match, fail);
            return emit_check(e, {c.index, arg_op::ge, c.value, 0}, upper, fail);
        }
    }
    return fail;
}

// What happens to the numbers of one range of the dispatch.
struct plan {
    bool has_rules = false;                 // rules to try first (a single number)
    std::uint32_t action = 0;               // without rules: the action; with: the fallback
    std::vector<const rule*> rules;         // in order
};

struct segment {
    std::uint32_t first = 0;  // the range runs to the next segment's first number
    plan what;
};

// The rules of one number, as a plan: a rule without checks ends the list
// (it becomes the fallback; later rules can never run), and rules at the end
// whose action is the fallback's change nothing.
template <class = void>
inline plan plan_for(std::uint32_t fallback, std::span<const rule* const> rules) {
    plan p;
    p.action = fallback;
    for (const rule* r : rules) {
        if (r->checks.empty()) {
            p.action = r->action;
            break;
        }
        p.rules.push_back(r);
    }
    while (!p.rules.empty() && p.rules.back()->action == p.action) p.rules.pop_back();
    p.has_rules = !p.rules.empty();
    return p;
}

template <class = void>
inline emitter::target emit_plan(emitter& e, const plan& p) {
    if (!p.has_rules) return emitter::returning(p.action);
    // Backwards: the fallback, then each rule from the last to the first;
    // a rule's failed check continues with the next rule.
    emitter::target next = emitter::returning(p.action);
    // (Indexes, not reverse iterators: a reverse_iterator's C++20 concept
    // checks cost every includer's compile, called or not.)
    for (std::size_t i = p.rules.size(); i-- > 0;) {
        const rule& r = *p.rules[i];
        emitter::target entry = emitter::returning(r.action);
        for (std::size_t k = r.checks.size(); k-- > 0;) entry = emit_check(e, r.checks[k], entry, next);
        next = entry;
    }
    return next;
}

// Emits the search over segments [first, last]; the accumulator holds nr.
template <class = void>
inline emitter::target emit_search(emitter& e, std::span<const segment> segments, std::size_t first,
                                   std::size_t last) {
    if (first == last) return emit_plan(e, segments[first].what);
    const std::size_t middle = first + (last - first + 1) / 2;
    // The upper half is emitted first, so it lies further on in the program.
    const emitter::target upper = emit_search(e, segments, middle, last);
    const emitter::target lower = emit_search(e, segments, first, middle - 1);
    return emitter::position(e.jump(BPF_JGE, segments[middle].first, upper, lower));
}

// Splits [0, foreign_nr_from) into ranges with one plan each; neighbouring
// numbers with the same plain action share a range.
template <class = void>
inline std::vector<segment> segments_for(const program_spec& spec) {
    std::vector<std::uint32_t> numbers = spec.known;
    for (const rule& r : spec.rules) numbers.push_back(r.nr);
    std::sort(numbers.begin(), numbers.end());
    numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());

    std::vector<std::vector<const rule*>> rules_of(numbers.size());
    for (const rule& r : spec.rules) {
        const auto at = std::lower_bound(numbers.begin(), numbers.end(), r.nr) - numbers.begin();
        rules_of[static_cast<std::size_t>(at)].push_back(&r);
    }

    std::vector<segment> segments;
    const auto add = [&](std::uint32_t first, plan p) {
        if (!segments.empty() && !p.has_rules && !segments.back().what.has_rules &&
            segments.back().what.action == p.action)
            return;
        segments.push_back({first, std::move(p)});
    };
    std::uint32_t next = 0;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        const std::uint32_t n = numbers[i];
        if (n > next) add(next, plan{false, spec.unknown_action, {}});
        add(n, plan_for(spec.default_action, std::span<const rule* const>(rules_of[i].data(), rules_of[i].size())));
        next = n + 1;
    }
    if (next < spec.foreign_nr_from) add(next, plan{false, spec.unknown_action, {}});
    return segments;
}

// The whole program. Throws ctr::error(step::compile_seccomp): EINVAL for a
// malformed spec, E2BIG when the program would exceed the kernel's limit.
template <class = void>
inline std::vector<sock_filter> compile(const program_spec& spec) {
    const auto invalid = [](std::string detail) {
        return ctr::error(ctr::step::compile_seccomp, EINVAL, {}, detail);
    };
    if (spec.foreign_nr_from == 0) throw invalid("no system call number is below the foreign-ABI boundary");
    if (!std::is_sorted(spec.known.begin(), spec.known.end()) ||
        std::adjacent_find(spec.known.begin(), spec.known.end()) != spec.known.end())
        throw invalid("the known numbers are not sorted and distinct");
    if (!spec.known.empty() && spec.known.back() >= spec.foreign_nr_from)
        throw invalid("a known number lies in the foreign-ABI range");
    for (const rule& r : spec.rules) {
        if (r.nr >= spec.foreign_nr_from)
            throw invalid("system call number " + std::to_string(r.nr) + " lies in the foreign-ABI range");
        for (const arg_check& c : r.checks)
            if (c.index >= argument_count)
                throw invalid("argument index " + std::to_string(c.index) + " is not in 0..5");
    }

    const std::vector<segment> segments = segments_for(spec);
    emitter e;
    const emitter::target dispatch = emit_search(e, std::span<const segment>(segments.data(), segments.size()), 0, segments.size() - 1);
    // The head, backwards: ld arch; jeq arch ? next : foreign; ld nr;
    // jge foreign_nr_from ? foreign : dispatch.
    const emitter::target foreign = emitter::returning(spec.foreign_action);
    e.jump(BPF_JGE, spec.foreign_nr_from, foreign, dispatch);
    const std::size_t load_nr = e.load_word(offset_nr);
    e.jump(BPF_JEQ, spec.arch, emitter::position(load_nr), foreign);
    e.load_word(offset_arch);

    if (e.size() > max_instructions)
        throw ctr::error(ctr::step::compile_seccomp, E2BIG, {},
                         "the program needs " + std::to_string(e.size()) +
                             " instructions; the kernel accepts at most " + std::to_string(max_instructions));
    return std::move(e).finish();
}

// A SECCOMP_RET_* value as text: "ALLOW", "ERRNO(1)", ...
template <class = void>
inline std::string return_value_name(std::uint32_t value) {
    const std::uint32_t data = value & SECCOMP_RET_DATA;
    switch (value & SECCOMP_RET_ACTION_FULL) {
        case SECCOMP_RET_KILL_PROCESS: return "KILL_PROCESS";
        case SECCOMP_RET_KILL_THREAD: return "KILL_THREAD";
        case SECCOMP_RET_TRAP: return "TRAP(" + std::to_string(data) + ")";
        case SECCOMP_RET_ERRNO: return "ERRNO(" + std::to_string(data) + ")";
        case SECCOMP_RET_USER_NOTIF: return "USER_NOTIF";
        case SECCOMP_RET_TRACE: return "TRACE(" + std::to_string(data) + ")";
        case SECCOMP_RET_LOG: return "LOG";
        case SECCOMP_RET_ALLOW: return "ALLOW";
    }
    return "RET(" + std::to_string(value) + ")";
}

// One line per instruction, with absolute jump targets, for reading a
// program and for tests.
template <class = void>
inline std::string disassemble(std::span<const sock_filter> program) {
    std::string out;
    char line[160];
    const auto field = [](std::uint32_t k) -> const char* {
        if (k == offset_nr) return "nr";
        if (k == offset_arch) return "arch";
        return nullptr;
    };
    for (std::size_t pc = 0; pc < program.size(); ++pc) {
        const sock_filter& f = program[pc];
        const auto code = f.code;
        if (code == (BPF_LD | BPF_W | BPF_ABS)) {
            if (const char* name = field(f.k)) std::snprintf(line, sizeof line, "%4zu: ld %s\n", pc, name);
            else if (f.k >= offset_args && f.k < offset_args + 8 * argument_count)
                std::snprintf(line, sizeof line, "%4zu: ld args[%u].%s\n", pc, (f.k - offset_args) / 8,
                              (f.k - offset_args) % 8 ? "high" : "low");
            else std::snprintf(line, sizeof line, "%4zu: ld [%u]\n", pc, f.k);
        } else if (code == (BPF_ALU | BPF_AND | BPF_K)) {
            std::snprintf(line, sizeof line, "%4zu: and #0x%x\n", pc, f.k);
        } else if (code == (BPF_RET | BPF_K)) {
            std::snprintf(line, sizeof line, "%4zu: ret %s\n", pc, return_value_name(f.k).c_str());
        } else if (code == (BPF_JMP | BPF_JA)) {
            std::snprintf(line, sizeof line, "%4zu: ja %zu\n", pc, pc + 1 + f.k);
        } else if (BPF_CLASS(code) == BPF_JMP) {
            const char* op = BPF_OP(code) == BPF_JEQ ? "jeq" : BPF_OP(code) == BPF_JGT ? "jgt"
                           : BPF_OP(code) == BPF_JGE ? "jge" : BPF_OP(code) == BPF_JSET ? "jset" : "j?";
            std::snprintf(line, sizeof line, "%4zu: %s #0x%x ? %zu : %zu\n", pc, op, f.k, pc + 1 + f.jt,
                          pc + 1 + f.jf);
        } else {
            std::snprintf(line, sizeof line, "%4zu: code 0x%x jt %u jf %u k 0x%x\n", pc, code, f.jt, f.jf, f.k);
        }
        out += line;
    }
    return out;
}

}  // namespace ctr::detail::bpf
// end ctr/detail/seccomp_bpf.hpp
// begin ctr/detail/syscall_table_x86_64.hpp
// Generated by tools/gen-syscall-table from <asm/unistd_64.h>; do not edit.
//
// The x86-64 system call numbers the seccomp layer knows by name. A number
// that is not here (a hole, or anything above `highest_number`, i.e. a call
// newer than the header this was made from) is unknown to ctr::seccomp and
// answers ENOSYS. Regenerate when the kernel headers move on; the test
// suite runs the generator with --check.

#include <array>
#include <cstddef>
#include <string_view>

namespace ctr::detail::syscall_table_x86_64 {

struct entry {
    const char* name;  // not a std::string_view: 724 of those are constant-evaluated in every includer
    int number;
};

inline constexpr int highest_number = 450;
inline constexpr std::size_t size = 362;

// Sorted by number.
inline constexpr std::array<entry, size> by_number{{
    {"read",                    0},
    {"write",                   1},
    {"open",                    2},
    {"close",                   3},
    {"stat",                    4},
    {"fstat",                   5},
    {"lstat",                   6},
    {"poll",                    7},
    {"lseek",                   8},
    {"mmap",                    9},
    {"mprotect",                10},
    {"munmap",                  11},
    {"brk",                     12},
    {"rt_sigaction",            13},
    {"rt_sigprocmask",          14},
    {"rt_sigreturn",            15},
    {"ioctl",                   16},
    {"pread64",                 17},
    {"pwrite64",                18},
    {"readv",                   19},
    {"writev",                  20},
    {"access",                  21},
    {"pipe",                    22},
    {"select",                  23},
    {"sched_yield",             24},
    {"mremap",                  25},
    {"msync",                   26},
    {"mincore",                 27},
    {"madvise",                 28},
    {"shmget",                  29},
    {"shmat",                   30},
    {"shmctl",                  31},
    {"dup",                     32},
    {"dup2",                    33},
    {"pause",                   34},
    {"nanosleep",               35},
    {"getitimer",               36},
    {"alarm",                   37},
    {"setitimer",               38},
    {"getpid",                  39},
    {"sendfile",                40},
    {"socket",                  41},
    {"connect",                 42},
    {"accept",                  43},
    {"sendto",                  44},
    {"recvfrom",                45},
    {"sendmsg",                 46},
    {"recvmsg",                 47},
    {"shutdown",                48},
    {"bind",                    49},
    {"listen",                  50},
    {"getsockname",             51},
    {"getpeername",             52},
    {"socketpair",              53},
    {"setsockopt",              54},
    {"getsockopt",              55},
    {"clone",                   56},
    {"fork",                    57},
    {"vfork",                   58},
    {"execve",                  59},
    {"exit",                    60},
    {"wait4",                   61},
    {"kill",                    62},
    {"uname",                   63},
    {"semget",                  64},
    {"semop",                   65},
    {"semctl",                  66},
    {"shmdt",                   67},
    {"msgget",                  68},
    {"msgsnd",                  69},
    {"msgrcv",                  70},
    {"msgctl",                  71},
    {"fcntl",                   72},
    {"flock",                   73},
    {"fsync",                   74},
    {"fdatasync",               75},
    {"truncate",                76},
    {"ftruncate",               77},
    {"getdents",                78},
    {"getcwd",                  79},
    {"chdir",                   80},
    {"fchdir",                  81},
    {"rename",                  82},
    {"mkdir",                   83},
    {"rmdir",                   84},
    {"creat",                   85},
    {"link",                    86},
    {"unlink",                  87},
    {"symlink",                 88},
    {"readlink",                89},
    {"chmod",                   90},
    {"fchmod",                  91},
    {"chown",                   92},
    {"fchown",                  93},
    {"lchown",                  94},
    {"umask",                   95},
    {"gettimeofday",            96},
    {"getrlimit",               97},
    {"getrusage",               98},
    {"sysinfo",                 99},
    {"times",                   100},
    {"ptrace",                  101},
    {"getuid",                  102},
    {"syslog",                  103},
    {"getgid",                  104},
    {"setuid",                  105},
    {"setgid",                  106},
    {"geteuid",                 107},
    {"getegid",                 108},
    {"setpgid",                 109},
    {"getppid",                 110},
    {"getpgrp",                 111},
    {"setsid",                  112},
    {"setreuid",                113},
    {"setregid",                114},
    {"getgroups",               115},
    {"setgroups",               116},
    {"setresuid",               117},
    {"getresuid",               118},
    {"setresgid",               119},
    {"getresgid",               120},
    {"getpgid",                 121},
    {"setfsuid",                122},
    {"setfsgid",                123},
    {"getsid",                  124},
    {"capget",                  125},
    {"capset",                  126},
    {"rt_sigpending",           127},
    {"rt_sigtimedwait",         128},
    {"rt_sigqueueinfo",         129},
    {"rt_sigsuspend",           130},
    {"sigaltstack",             131},
    {"utime",                   132},
    {"mknod",                   133},
    {"uselib",                  134},
    {"personality",             135},
    {"ustat",                   136},
    {"statfs",                  137},
    {"fstatfs",                 138},
    {"sysfs",                   139},
    {"getpriority",             140},
    {"setpriority",             141},
    {"sched_setparam",          142},
    {"sched_getparam",          143},
    {"sched_setscheduler",      144},
    {"sched_getscheduler",      145},
    {"sched_get_priority_max",  146},
    {"sched_get_priority_min",  147},
    {"sched_rr_get_interval",   148},
    {"mlock",                   149},
    {"munlock",                 150},
    {"mlockall",                151},
    {"munlockall",              152},
    {"vhangup",                 153},
    {"modify_ldt",              154},
    {"pivot_root",              155},
    {"_sysctl",                 156},
    {"prctl",                   157},
    {"arch_prctl",              158},
    {"adjtimex",                159},
    {"setrlimit",               160},
    {"chroot",                  161},
    {"sync",                    162},
    {"acct",                    163},
    {"settimeofday",            164},
    {"mount",                   165},
    {"umount2",                 166},
    {"swapon",                  167},
    {"swapoff",                 168},
    {"reboot",                  169},
    {"sethostname",             170},
    {"setdomainname",           171},
    {"iopl",                    172},
    {"ioperm",                  173},
    {"create_module",           174},
    {"init_module",             175},
    {"delete_module",           176},
    {"get_kernel_syms",         177},
    {"query_module",            178},
    {"quotactl",                179},
    {"nfsservctl",              180},
    {"getpmsg",                 181},
    {"putpmsg",                 182},
    {"afs_syscall",             183},
    {"tuxcall",                 184},
    {"security",                185},
    {"gettid",                  186},
    {"readahead",               187},
    {"setxattr",                188},
    {"lsetxattr",               189},
    {"fsetxattr",               190},
    {"getxattr",                191},
    {"lgetxattr",               192},
    {"fgetxattr",               193},
    {"listxattr",               194},
    {"llistxattr",              195},
    {"flistxattr",              196},
    {"removexattr",             197},
    {"lremovexattr",            198},
    {"fremovexattr",            199},
    {"tkill",                   200},
    {"time",                    201},
    {"futex",                   202},
    {"sched_setaffinity",       203},
    {"sched_getaffinity",       204},
    {"set_thread_area",         205},
    {"io_setup",                206},
    {"io_destroy",              207},
    {"io_getevents",            208},
    {"io_submit",               209},
    {"io_cancel",               210},
    {"get_thread_area",         211},
    {"lookup_dcookie",          212},
    {"epoll_create",            213},
    {"epoll_ctl_old",           214},
    {"epoll_wait_old",          215},
    {"remap_file_pages",        216},
    {"getdents64",              217},
    {"set_tid_address",         218},
    {"restart_syscall",         219},
    {"semtimedop",              220},
    {"fadvise64",               221},
    {"timer_create",            222},
    {"timer_settime",           223},
    {"timer_gettime",           224},
    {"timer_getoverrun",        225},
    {"timer_delete",            226},
    {"clock_settime",           227},
    {"clock_gettime",           228},
    {"clock_getres",            229},
    {"clock_nanosleep",         230},
    {"exit_group",              231},
    {"epoll_wait",              232},
    {"epoll_ctl",               233},
    {"tgkill",                  234},
    {"utimes",                  235},
    {"vserver",                 236},
    {"mbind",                   237},
    {"set_mempolicy",           238},
    {"get_mempolicy",           239},
    {"mq_open",                 240},
    {"mq_unlink",               241},
    {"mq_timedsend",            242},
    {"mq_timedreceive",         243},
    {"mq_notify",               244},
    {"mq_getsetattr",           245},
    {"kexec_load",              246},
    {"waitid",                  247},
    {"add_key",                 248},
    {"request_key",             249},
    {"keyctl",                  250},
    {"ioprio_set",              251},
    {"ioprio_get",              252},
    {"inotify_init",            253},
    {"inotify_add_watch",       254},
    {"inotify_rm_watch",        255},
    {"migrate_pages",           256},
    {"openat",                  257},
    {"mkdirat",                 258},
    {"mknodat",                 259},
    {"fchownat",                260},
    {"futimesat",               261},
    {"newfstatat",              262},
    {"unlinkat",                263},
    {"renameat",                264},
    {"linkat",                  265},
    {"symlinkat",               266},
    {"readlinkat",              267},
    {"fchmodat",                268},
    {"faccessat",               269},
    {"pselect6",                270},
    {"ppoll",                   271},
    {"unshare",                 272},
    {"set_robust_list",         273},
    {"get_robust_list",         274},
    {"splice",                  275},
    {"tee",                     276},
    {"sync_file_range",         277},
    {"vmsplice",                278},
    {"move_pages",              279},
    {"utimensat",               280},
    {"epoll_pwait",             281},
    {"signalfd",                282},
    {"timerfd_create",          283},
    {"eventfd",                 284},
    {"fallocate",               285},
    {"timerfd_settime",         286},
    {"timerfd_gettime",         287},
    {"accept4",                 288},
    {"signalfd4",               289},
    {"eventfd2",                290},
    {"epoll_create1",           291},
    {"dup3",                    292},
    {"pipe2",                   293},
    {"inotify_init1",           294},
    {"preadv",                  295},
    {"pwritev",                 296},
    {"rt_tgsigqueueinfo",       297},
    {"perf_event_open",         298},
    {"recvmmsg",                299},
    {"fanotify_init",           300},
    {"fanotify_mark",           301},
    {"prlimit64",               302},
    {"name_to_handle_at",       303},
    {"open_by_handle_at",       304},
    {"clock_adjtime",           305},
    {"syncfs",                  306},
    {"sendmmsg",                307},
    {"setns",                   308},
    {"getcpu",                  309},
    {"process_vm_readv",        310},
    {"process_vm_writev",       311},
    {"kcmp",                    312},
    {"finit_module",            313},
    {"sched_setattr",           314},
    {"sched_getattr",           315},
    {"renameat2",               316},
    {"seccomp",                 317},
    {"getrandom",               318},
    {"memfd_create",            319},
    {"kexec_file_load",         320},
    {"bpf",                     321},
    {"execveat",                322},
    {"userfaultfd",             323},
    {"membarrier",              324},
    {"mlock2",                  325},
    {"copy_file_range",         326},
    {"preadv2",                 327},
    {"pwritev2",                328},
    {"pkey_mprotect",           329},
    {"pkey_alloc",              330},
    {"pkey_free",               331},
    {"statx",                   332},
    {"io_pgetevents",           333},
    {"rseq",                    334},
    {"pidfd_send_signal",       424},
    {"io_uring_setup",          425},
    {"io_uring_enter",          426},
    {"io_uring_register",       427},
    {"open_tree",               428},
    {"move_mount",              429},
    {"fsopen",                  430},
    {"fsconfig",                431},
    {"fsmount",                 432},
    {"fspick",                  433},
    {"pidfd_open",              434},
    {"clone3",                  435},
    {"close_range",             436},
    {"openat2",                 437},
    {"pidfd_getfd",             438},
    {"faccessat2",              439},
    {"process_madvise",         440},
    {"epoll_pwait2",            441},
    {"mount_setattr",           442},
    {"quotactl_fd",             443},
    {"landlock_create_ruleset", 444},
    {"landlock_add_rule",       445},
    {"landlock_restrict_self",  446},
    {"memfd_secret",            447},
    {"process_mrelease",        448},
    {"futex_waitv",             449},
    {"set_mempolicy_home_node", 450},
}};

// Sorted by name, for name_to_number.
inline constexpr std::array<entry, size> by_name{{
    {"_sysctl",                 156},
    {"accept",                  43},
    {"accept4",                 288},
    {"access",                  21},
    {"acct",                    163},
    {"add_key",                 248},
    {"adjtimex",                159},
    {"afs_syscall",             183},
    {"alarm",                   37},
    {"arch_prctl",              158},
    {"bind",                    49},
    {"bpf",                     321},
    {"brk",                     12},
    {"capget",                  125},
    {"capset",                  126},
    {"chdir",                   80},
    {"chmod",                   90},
    {"chown",                   92},
    {"chroot",                  161},
    {"clock_adjtime",           305},
    {"clock_getres",            229},
    {"clock_gettime",           228},
    {"clock_nanosleep",         230},
    {"clock_settime",           227},
    {"clone",                   56},
    {"clone3",                  435},
    {"close",                   3},
    {"close_range",             436},
    {"connect",                 42},
    {"copy_file_range",         326},
    {"creat",                   85},
    {"create_module",           174},
    {"delete_module",           176},
    {"dup",                     32},
    {"dup2",                    33},
    {"dup3",                    292},
    {"epoll_create",            213},
    {"epoll_create1",           291},
    {"epoll_ctl",               233},
    {"epoll_ctl_old",           214},
    {"epoll_pwait",             281},
    {"epoll_pwait2",            441},
    {"epoll_wait",              232},
    {"epoll_wait_old",          215},
    {"eventfd",                 284},
    {"eventfd2",                290},
    {"execve",                  59},
    {"execveat",                322},
    {"exit",                    60},
    {"exit_group",              231},
    {"faccessat",               269},
    {"faccessat2",              439},
    {"fadvise64",               221},
    {"fallocate",               285},
    {"fanotify_init",           300},
    {"fanotify_mark",           301},
    {"fchdir",                  81},
    {"fchmod",                  91},
    {"fchmodat",                268},
    {"fchown",                  93},
    {"fchownat",                260},
    {"fcntl",                   72},
    {"fdatasync",               75},
    {"fgetxattr",               193},
    {"finit_module",            313},
    {"flistxattr",              196},
    {"flock",                   73},
    {"fork",                    57},
    {"fremovexattr",            199},
    {"fsconfig",                431},
    {"fsetxattr",               190},
    {"fsmount",                 432},
    {"fsopen",                  430},
    {"fspick",                  433},
    {"fstat",                   5},
    {"fstatfs",                 138},
    {"fsync",                   74},
    {"ftruncate",               77},
    {"futex",                   202},
    {"futex_waitv",             449},
    {"futimesat",               261},
    {"get_kernel_syms",         177},
    {"get_mempolicy",           239},
    {"get_robust_list",         274},
    {"get_thread_area",         211},
    {"getcpu",                  309},
    {"getcwd",                  79},
    {"getdents",                78},
    {"getdents64",              217},
    {"getegid",                 108},
    {"geteuid",                 107},
    {"getgid",                  104},
    {"getgroups",               115},
    {"getitimer",               36},
    {"getpeername",             52},
    {"getpgid",                 121},
    {"getpgrp",                 111},
    {"getpid",                  39},
    {"getpmsg",                 181},
    {"getppid",                 110},
    {"getpriority",             140},
    {"getrandom",               318},
    {"getresgid",               120},
    {"getresuid",               118},
    {"getrlimit",               97},
    {"getrusage",               98},
    {"getsid",                  124},
    {"getsockname",             51},
    {"getsockopt",              55},
    {"gettid",                  186},
    {"gettimeofday",            96},
    {"getuid",                  102},
    {"getxattr",                191},
    {"init_module",             175},
    {"inotify_add_watch",       254},
    {"inotify_init",            253},
    {"inotify_init1",           294},
    {"inotify_rm_watch",        255},
    {"io_cancel",               210},
    {"io_destroy",              207},
    {"io_getevents",            208},
    {"io_pgetevents",           333},
    {"io_setup",                206},
    {"io_submit",               209},
    {"io_uring_enter",          426},
    {"io_uring_register",       427},
    {"io_uring_setup",          425},
    {"ioctl",                   16},
    {"ioperm",                  173},
    {"iopl",                    172},
    {"ioprio_get",              252},
    {"ioprio_set",              251},
    {"kcmp",                    312},
    {"kexec_file_load",         320},
    {"kexec_load",              246},
    {"keyctl",                  250},
    {"kill",                    62},
    {"landlock_add_rule",       445},
    {"landlock_create_ruleset", 444},
    {"landlock_restrict_self",  446},
    {"lchown",                  94},
    {"lgetxattr",               192},
    {"link",                    86},
    {"linkat",                  265},
    {"listen",                  50},
    {"listxattr",               194},
    {"llistxattr",              195},
    {"lookup_dcookie",          212},
    {"lremovexattr",            198},
    {"lseek",                   8},
    {"lsetxattr",               189},
    {"lstat",                   6},
    {"madvise",                 28},
    {"mbind",                   237},
    {"membarrier",              324},
    {"memfd_create",            319},
    {"memfd_secret",            447},
    {"migrate_pages",           256},
    {"mincore",                 27},
    {"mkdir",                   83},
    {"mkdirat",                 258},
    {"mknod",                   133},
    {"mknodat",                 259},
    {"mlock",                   149},
    {"mlock2",                  325},
    {"mlockall",                151},
    {"mmap",                    9},
    {"modify_ldt",              154},
    {"mount",                   165},
    {"mount_setattr",           442},
    {"move_mount",              429},
    {"move_pages",              279},
    {"mprotect",                10},
    {"mq_getsetattr",           245},
    {"mq_notify",               244},
    {"mq_open",                 240},
    {"mq_timedreceive",         243},
    {"mq_timedsend",            242},
    {"mq_unlink",               241},
    {"mremap",                  25},
    {"msgctl",                  71},
    {"msgget",                  68},
    {"msgrcv",                  70},
    {"msgsnd",                  69},
    {"msync",                   26},
    {"munlock",                 150},
    {"munlockall",              152},
    {"munmap",                  11},
    {"name_to_handle_at",       303},
    {"nanosleep",               35},
    {"newfstatat",              262},
    {"nfsservctl",              180},
    {"open",                    2},
    {"open_by_handle_at",       304},
    {"open_tree",               428},
    {"openat",                  257},
    {"openat2",                 437},
    {"pause",                   34},
    {"perf_event_open",         298},
    {"personality",             135},
    {"pidfd_getfd",             438},
    {"pidfd_open",              434},
    {"pidfd_send_signal",       424},
    {"pipe",                    22},
    {"pipe2",                   293},
    {"pivot_root",              155},
    {"pkey_alloc",              330},
    {"pkey_free",               331},
    {"pkey_mprotect",           329},
    {"poll",                    7},
    {"ppoll",                   271},
    {"prctl",                   157},
    {"pread64",                 17},
    {"preadv",                  295},
    {"preadv2",                 327},
    {"prlimit64",               302},
    {"process_madvise",         440},
    {"process_mrelease",        448},
    {"process_vm_readv",        310},
    {"process_vm_writev",       311},
    {"pselect6",                270},
    {"ptrace",                  101},
    {"putpmsg",                 182},
    {"pwrite64",                18},
    {"pwritev",                 296},
    {"pwritev2",                328},
    {"query_module",            178},
    {"quotactl",                179},
    {"quotactl_fd",             443},
    {"read",                    0},
    {"readahead",               187},
    {"readlink",                89},
    {"readlinkat",              267},
    {"readv",                   19},
    {"reboot",                  169},
    {"recvfrom",                45},
    {"recvmmsg",                299},
    {"recvmsg",                 47},
    {"remap_file_pages",        216},
    {"removexattr",             197},
    {"rename",                  82},
    {"renameat",                264},
    {"renameat2",               316},
    {"request_key",             249},
    {"restart_syscall",         219},
    {"rmdir",                   84},
    {"rseq",                    334},
    {"rt_sigaction",            13},
    {"rt_sigpending",           127},
    {"rt_sigprocmask",          14},
    {"rt_sigqueueinfo",         129},
    {"rt_sigreturn",            15},
    {"rt_sigsuspend",           130},
    {"rt_sigtimedwait",         128},
    {"rt_tgsigqueueinfo",       297},
    {"sched_get_priority_max",  146},
    {"sched_get_priority_min",  147},
    {"sched_getaffinity",       204},
    {"sched_getattr",           315},
    {"sched_getparam",          143},
    {"sched_getscheduler",      145},
    {"sched_rr_get_interval",   148},
    {"sched_setaffinity",       203},
    {"sched_setattr",           314},
    {"sched_setparam",          142},
    {"sched_setscheduler",      144},
    {"sched_yield",             24},
    {"seccomp",                 317},
    {"security",                185},
    {"select",                  23},
    {"semctl",                  66},
    {"semget",                  64},
    {"semop",                   65},
    {"semtimedop",              220},
    {"sendfile",                40},
    {"sendmmsg",                307},
    {"sendmsg",                 46},
    {"sendto",                  44},
    {"set_mempolicy",           238},
    {"set_mempolicy_home_node", 450},
    {"set_robust_list",         273},
    {"set_thread_area",         205},
    {"set_tid_address",         218},
    {"setdomainname",           171},
    {"setfsgid",                123},
    {"setfsuid",                122},
    {"setgid",                  106},
    {"setgroups",               116},
    {"sethostname",             170},
    {"setitimer",               38},
    {"setns",                   308},
    {"setpgid",                 109},
    {"setpriority",             141},
    {"setregid",                114},
    {"setresgid",               119},
    {"setresuid",               117},
    {"setreuid",                113},
    {"setrlimit",               160},
    {"setsid",                  112},
    {"setsockopt",              54},
    {"settimeofday",            164},
    {"setuid",                  105},
    {"setxattr",                188},
    {"shmat",                   30},
    {"shmctl",                  31},
    {"shmdt",                   67},
    {"shmget",                  29},
    {"shutdown",                48},
    {"sigaltstack",             131},
    {"signalfd",                282},
    {"signalfd4",               289},
    {"socket",                  41},
    {"socketpair",              53},
    {"splice",                  275},
    {"stat",                    4},
    {"statfs",                  137},
    {"statx",                   332},
    {"swapoff",                 168},
    {"swapon",                  167},
    {"symlink",                 88},
    {"symlinkat",               266},
    {"sync",                    162},
    {"sync_file_range",         277},
    {"syncfs",                  306},
    {"sysfs",                   139},
    {"sysinfo",                 99},
    {"syslog",                  103},
    {"tee",                     276},
    {"tgkill",                  234},
    {"time",                    201},
    {"timer_create",            222},
    {"timer_delete",            226},
    {"timer_getoverrun",        225},
    {"timer_gettime",           224},
    {"timer_settime",           223},
    {"timerfd_create",          283},
    {"timerfd_gettime",         287},
    {"timerfd_settime",         286},
    {"times",                   100},
    {"tkill",                   200},
    {"truncate",                76},
    {"tuxcall",                 184},
    {"umask",                   95},
    {"umount2",                 166},
    {"uname",                   63},
    {"unlink",                  87},
    {"unlinkat",                263},
    {"unshare",                 272},
    {"uselib",                  134},
    {"userfaultfd",             323},
    {"ustat",                   136},
    {"utime",                   132},
    {"utimensat",               280},
    {"utimes",                  235},
    {"vfork",                   58},
    {"vhangup",                 153},
    {"vmsplice",                278},
    {"vserver",                 236},
    {"wait4",                   61},
    {"waitid",                  247},
    {"write",                   1},
    {"writev",                  20},
}};

// The number of a system call, or -1 when the table has no such name.
constexpr int name_to_number(std::string_view name) noexcept {
    std::size_t low = 0, high = by_name.size();
    while (low < high) {
        const std::size_t middle = low + (high - low) / 2;
        if (std::string_view(by_name[middle].name) < name) low = middle + 1;
        else high = middle;
    }
    return low < by_name.size() && std::string_view(by_name[low].name) == name ? by_name[low].number : -1;
}

// The name of a system call number, or an empty view when the table has none.
constexpr std::string_view number_to_name(long number) noexcept {
    std::size_t low = 0, high = by_number.size();
    while (low < high) {
        const std::size_t middle = low + (high - low) / 2;
        if (by_number[middle].number < number) low = middle + 1;
        else high = middle;
    }
    return low < by_number.size() && by_number[low].number == number ? by_number[low].name
                                                                    : std::string_view{};
}

// Whether the table knows the number.
constexpr bool known(long number) noexcept { return !number_to_name(number).empty(); }

}  // namespace ctr::detail::syscall_table_x86_64
// end ctr/detail/syscall_table_x86_64.hpp

#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ctr::seccomp {

// What the kernel does with a call.
class action {
public:
    enum class kind : std::uint8_t {
        allow,
        fail_with,     // the call returns -1 with this errno, without running
        kill_process,  // the whole process dies of SIGSYS
        kill_thread,   // only the calling thread dies
        trap,          // SIGSYS to the thread; si_syscall names the call
        log,           // allowed, and logged by the audit subsystem
        // SECCOMP_RET_USER_NOTIF: the call waits while a supervisor reads it
        // from the filter's listener fd and answers it (<ctr/seccomp_notify.hpp>).
        // spawn installs such a filter with SECCOMP_FILTER_FLAG_NEW_LISTENER
        // and hands the listener to the caller (child::take_seccomp_listener).
        // Once no supervisor holds the listener, the call fails with ENOSYS.
        notify,
    };

    static constexpr action allow() noexcept { return action{kind::allow, 0}; }
    // errno_value must be in 1..4095; the builder reports anything else.
    static constexpr action fail_with(int errno_value) noexcept { return action{kind::fail_with, errno_value}; }
    static constexpr action kill_process() noexcept { return action{kind::kill_process, 0}; }
    static constexpr action kill_thread() noexcept { return action{kind::kill_thread, 0}; }
    static constexpr action trap() noexcept { return action{kind::trap, 0}; }
    static constexpr action log() noexcept { return action{kind::log, 0}; }
    // Linux 5.0+: the supervisor decides (see kind::notify).
    static constexpr action notify() noexcept { return action{kind::notify, 0}; }

    constexpr kind which() const noexcept { return kind_; }
    constexpr int errno_value() const noexcept { return errno_; }
    constexpr bool valid() const noexcept { return kind_ != kind::fail_with || (errno_ >= 1 && errno_ <= 4095); }

    // The SECCOMP_RET_* value the filter returns.
    constexpr std::uint32_t return_value() const noexcept {
        switch (kind_) {
            case kind::allow: return SECCOMP_RET_ALLOW;
            case kind::fail_with: return SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(errno_) & SECCOMP_RET_DATA);
            case kind::kill_process: return SECCOMP_RET_KILL_PROCESS;
            case kind::kill_thread: return SECCOMP_RET_KILL_THREAD;
            case kind::trap: return SECCOMP_RET_TRAP;
            case kind::log: return SECCOMP_RET_LOG;
            case kind::notify: return SECCOMP_RET_USER_NOTIF;
        }
        return SECCOMP_RET_KILL_PROCESS;
    }

    friend constexpr bool operator==(const action&, const action&) noexcept = default;

private:
    constexpr action(kind k, int errno_value) noexcept : kind_(k), errno_(errno_value) {}
    kind kind_;
    int errno_;
};

// "allow", "fail with EPERM", "fail with errno 22", "kill process", ...
template <class = void>
inline std::string to_string(action a) {
    switch (a.which()) {
        case action::kind::allow: return "allow";
        case action::kind::kill_process: return "kill process";
        case action::kind::kill_thread: return "kill thread";
        case action::kind::trap: return "trap (SIGSYS)";
        case action::kind::log: return "log and allow";
        case action::kind::notify: return "notify the supervisor";
        case action::kind::fail_with: break;
    }
    switch (a.errno_value()) {
        case EPERM: return "fail with EPERM";
        case ENOSYS: return "fail with ENOSYS";
        case EACCES: return "fail with EACCES";
        case EINVAL: return "fail with EINVAL";
        default: return "fail with errno " + std::to_string(a.errno_value());
    }
}

// How a condition compares an argument. Comparisons are unsigned and 64 bits
// wide, as the kernel passes the registers. An argument the kernel reads as
// 32 bits (an int, an unsigned int: a socket family, an ioctl request) may
// arrive with anything in the upper half, which the kernel ignores but a
// 64-bit comparison would not: compare such arguments through
// masked(0xffffffff).
enum class compare : std::uint8_t {
    equal,             // arg == value
    not_equal,         // arg != value
    masked_equal,      // (arg & mask) == value
    masked_not_equal,  // (arg & mask) != value
    greater,           // arg > value
    greater_equal,     // arg >= value
    less,              // arg < value
    less_equal,        // arg <= value
    in_range,          // value <= arg <= upper
};

// One condition on one argument. Plain data: seccomp::arg(i) writes it
// readably, designated initializers work too.
struct condition {
    unsigned index = 0;  // which argument, 0..5
    compare op = compare::equal;
    std::uint64_t value = 0;
    std::uint64_t mask = ~std::uint64_t{0};  // masked_equal, masked_not_equal
    std::uint64_t upper = 0;                 // in_range

    friend constexpr bool operator==(const condition&, const condition&) noexcept = default;
};

// "arg0 & 0x7e020000 == 0x0", "arg1 in 0x10..0x20", ...
template <class = void>
inline std::string to_string(const condition& c) {
    const auto hex = [](std::uint64_t v) {
        char text[24];
        std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(v));
        return std::string(text);
    };
    const std::string a = "arg" + std::to_string(c.index);
    switch (c.op) {
        case compare::equal: return a + " == " + hex(c.value);
        case compare::not_equal: return a + " != " + hex(c.value);
        case compare::masked_equal: return a + " & " + hex(c.mask) + " == " + hex(c.value);
        case compare::masked_not_equal: return a + " & " + hex(c.mask) + " != " + hex(c.value);
        case compare::greater: return a + " > " + hex(c.value);
        case compare::greater_equal: return a + " >= " + hex(c.value);
        case compare::less: return a + " < " + hex(c.value);
        case compare::less_equal: return a + " <= " + hex(c.value);
        case compare::in_range: return a + " in " + hex(c.value) + ".." + hex(c.upper);
    }
    return a + " ?";
}

// An argument with its mask applied: arg(1).masked(O_ACCMODE) == O_RDONLY.
class masked_arg {
public:
    constexpr masked_arg(unsigned index, std::uint64_t mask) noexcept : index_(index), mask_(mask) {}
    constexpr condition operator==(std::uint64_t value) const noexcept {
        return {index_, compare::masked_equal, value, mask_, 0};
    }
    constexpr condition operator!=(std::uint64_t value) const noexcept {
        return {index_, compare::masked_not_equal, value, mask_, 0};
    }

private:
    unsigned index_;
    std::uint64_t mask_;
};

// Argument i of the call (0..5), to write conditions: arg(0) == 3,
// arg(2) >= 4096, arg(0).masked(CLONE_NEWUSER) == 0, arg(1).in_range(1, 9).
class arg {
public:
    constexpr explicit arg(unsigned index) noexcept : index_(index) {}
    constexpr condition operator==(std::uint64_t v) const noexcept { return {index_, compare::equal, v}; }
    constexpr condition operator!=(std::uint64_t v) const noexcept { return {index_, compare::not_equal, v}; }
    constexpr condition operator>(std::uint64_t v) const noexcept { return {index_, compare::greater, v}; }
    constexpr condition operator>=(std::uint64_t v) const noexcept { return {index_, compare::greater_equal, v}; }
    constexpr condition operator<(std::uint64_t v) const noexcept { return {index_, compare::less, v}; }
    constexpr condition operator<=(std::uint64_t v) const noexcept { return {index_, compare::less_equal, v}; }
    constexpr masked_arg masked(std::uint64_t mask) const noexcept { return {index_, mask}; }
    // low <= arg <= high, both ends included.
    constexpr condition in_range(std::uint64_t low, std::uint64_t high) const noexcept {
        return {index_, compare::in_range, low, ~std::uint64_t{0}, high};
    }

private:
    unsigned index_;
};

class builder;

// A compiled program: immutable, cheap to share (hold it in a
// std::shared_ptr<const filter>). program() points into the object, so it
// stays valid for as long as the filter lives where it is.
class filter {
public:
    filter(const filter& other) : code_(other.code_), install_flags_(other.install_flags_), notify_(other.notify_) {
        point_program();
    }
    filter(filter&& other) noexcept
        : code_(std::move(other.code_)), install_flags_(other.install_flags_), notify_(std::move(other.notify_)) {
        point_program();
        other.point_program();
    }
    filter& operator=(const filter&) = delete;
    filter& operator=(filter&&) = delete;
    ~filter() = default;

    // The number of BPF instructions (at most 4096).
    template <class = void>
    std::size_t size() const noexcept { return code_.size(); }
    template <class = void>
    std::span<const sock_filter> instructions() const noexcept { return {code_.data(), code_.size()}; }
    // What seccomp(SECCOMP_SET_MODE_FILTER) takes (by address).
    template <class = void>
    const sock_fprog& program() const noexcept { return program_; }
    // The program as text, one instruction a line.
    template <class = void>
    std::string disassemble() const { return detail::bpf::disassemble(std::span<const sock_filter>(code_.data(), code_.size())); }
    // The SECCOMP_FILTER_FLAG_* bits the launch installs it with
    // (builder::install_flags); 0 unless set.
    template <class = void>
    std::uint32_t install_flags() const noexcept { return install_flags_; }

    // Whether any call may get action::notify(): then the launch installs
    // the filter with a listener and hands it to the caller.
    template <class = void>
    bool notifies() const noexcept { return notify_.by_default || !notify_.by_rule.empty(); }
    // Whether a call of this x86-64 number may get action::notify(), for
    // some arguments.
    template <class = void>
    bool may_notify(int number) const noexcept {
        for (const int n : notify_.by_rule)
            if (n == number) return true;
        for (const int n : notify_.never)
            if (n == number) return false;
        return notify_.by_default;
    }

private:
    friend class builder;
    struct notify_map {
        std::vector<int> by_rule;  // numbers with a rule that notifies
        std::vector<int> never;    // numbers that a rule without conditions decides otherwise
        bool by_default = false;   // the default or unknown-call action notifies
    };
    filter(std::vector<sock_filter> code, std::uint32_t flags, notify_map notify)
        : code_(std::move(code)), install_flags_(flags), notify_(std::move(notify)) {
        point_program();
    }
    template <class = void>
    void point_program() noexcept {
        program_.len = static_cast<unsigned short>(code_.size());
        program_.filter = code_.data();
    }

    std::vector<sock_filter> code_;
    std::uint32_t install_flags_ = 0;
    notify_map notify_;
    sock_fprog program_{};
};

// Builds a filter. Every setter returns *this and keeps the first error
// (an unknown name, an errno out of range, a rule that can never run), which
// build() then throws, so a chain of calls needs no checks in between.
class builder {
public:
    // For a known call without a matching rule. Default: kill_process.
    template <class = void>
    builder& default_action(action a) { return set(default_, a, "default action"); }
    // For the i386 ABI (int 0x80) and x32 numbers. Default: kill_process.
    template <class = void>
    builder& foreign_abi_action(action a) { return set(foreign_, a, "foreign-ABI action"); }
    // For numbers the table does not know. Default: fail_with(ENOSYS).
    template <class = void>
    builder& unknown_syscall_action(action a) { return set(unknown_, a, "unknown-call action"); }

    // SECCOMP_FILTER_FLAG_* bits to install the filter with. Two are taken:
    // LOG (the kernel logs every action but allow, where it otherwise logs
    // only kills) and SPEC_ALLOW (the filter does not switch on the
    // speculative store bypass mitigation, a weakening some profiles ask
    // for). The others change what the install call returns (TSYNC,
    // NEW_LISTENER: a thread id or a listener fd the launch has no use for)
    // and are reported.
    template <class = void>
    builder& install_flags(std::uint32_t flags) {
        constexpr std::uint32_t taken = SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW;
        if ((flags & ~taken) != 0)
            return fail_build(EINVAL, "install flags",
                              "only SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW are supported");
        install_flags_ = flags;
        return *this;
    }

    template <class = void>
    builder& allow(std::string_view name) { return rule(name, action::allow()); }
    template <class = void>
    builder& allow(int number) { return rule(number, action::allow()); }
    template <class = void>
    builder& allow(std::initializer_list<std::string_view> names) {
        for (std::string_view name : names) allow(name);
        return *this;
    }
    template <class = void>
    builder& fail(std::string_view name, int errno_value) { return rule(name, action::fail_with(errno_value)); }
    template <class = void>
    builder& fail(int number, int errno_value) { return rule(number, action::fail_with(errno_value)); }
    template <class = void>
    builder& fail(std::initializer_list<std::string_view> names, int errno_value) {
        for (std::string_view name : names) fail(name, errno_value);
        return *this;
    }

    // `what` when every condition holds (none: always). Rules of one call are
    // tried in the order given; the default action follows the last.
    template <class = void>
    builder& rule(std::string_view name, action what, std::span<const condition> all_of) {
        const int number = detail::syscall_table_x86_64::name_to_number(name);
        if (number < 0)
            return fail_build(EINVAL, name,
                              "unknown system call name; the table (<asm/unistd_64.h>, x86-64) has no such call, "
                              "a call newer than the table can be named by number");
        return add(number, name, what, all_of);
    }
    template <class = void>
    builder& rule(int number, action what, std::span<const condition> all_of) {
        if (number < 0 || static_cast<std::uint32_t>(number) >= foreign_nr_from)
            return fail_build(EINVAL, std::to_string(number), "system call number outside 0..0x3fffffff");
        const std::string_view known = detail::syscall_table_x86_64::number_to_name(number);
        const std::string unknown = known.empty() ? std::to_string(number) : std::string();
        return add(number, known.empty() ? std::string_view(unknown) : known, what, all_of);
    }
    template <typename... Conditions>
        requires(std::same_as<Conditions, condition> && ...)
    builder& rule(std::string_view name, action what, const Conditions&... all_of) {
        const std::array<condition, sizeof...(Conditions)> list{all_of...};
        return rule(name, what, std::span<const condition>(list));
    }
    template <typename... Conditions>
        requires(std::same_as<Conditions, condition> && ...)
    builder& rule(int number, action what, const Conditions&... all_of) {
        const std::array<condition, sizeof...(Conditions)> list{all_of...};
        return rule(number, what, std::span<const condition>(list));
    }

    // The first error so far, if any.
    template <class = void>
    const std::optional<ctr::error>& first_error() const noexcept { return error_; }

    // Compiles. Throws ctr::error(step::compile_seccomp) with the first error
    // the setters met, or E2BIG when the program exceeds 4096 instructions.
    template <class = void>
    filter build() const {
        if (error_) throw *error_;
        detail::bpf::program_spec spec;
        spec.arch = AUDIT_ARCH_X86_64;
        spec.foreign_nr_from = foreign_nr_from;
        spec.foreign_action = foreign_.return_value();
        spec.default_action = default_.return_value();
        spec.unknown_action = unknown_.return_value();
        spec.known.reserve(detail::syscall_table_x86_64::size);
        for (const auto& entry : detail::syscall_table_x86_64::by_number)
            spec.known.push_back(static_cast<std::uint32_t>(entry.number));
        spec.rules.reserve(rules_.size());
        for (const pending_rule& r : rules_) {
            detail::bpf::rule out{static_cast<std::uint32_t>(r.number), r.what.return_value(), {}};
            out.checks.reserve(r.all_of.size());
            for (const condition& c : r.all_of) out.checks.push_back(to_check(c));
            spec.rules.push_back(std::move(out));
        }
        // What may notify: a number with a notifying rule; any other number
        // when the default does, unless a rule without conditions decides
        // it otherwise.
        filter::notify_map notifying;
        notifying.by_default =
            default_.which() == action::kind::notify || unknown_.which() == action::kind::notify;
        for (const pending_rule& r : rules_)
            if (r.what.which() == action::kind::notify) notifying.by_rule.push_back(r.number);
        for (const auto& [number, what] : decided_)
            if (what.which() != action::kind::notify) notifying.never.push_back(number);
        return filter(detail::bpf::compile(spec), install_flags_, std::move(notifying));
    }
    template <class = void>
    std::shared_ptr<const filter> build_shared() const { return std::make_shared<const filter>(build()); }

private:
    // __X32_SYSCALL_BIT: numbers from here on are another ABI.
    static constexpr std::uint32_t foreign_nr_from = 0x40000000U;

    struct pending_rule {
        int number;
        action what;
        std::vector<condition> all_of;
    };

    template <class = void>
    builder& fail_build(int errno_value, std::string_view subject, std::string_view why) {
        if (!error_) error_.emplace(ctr::step::compile_seccomp, errno_value, std::string(subject), why);
        return *this;
    }

    template <class = void>
    builder& set(action& slot, action a, std::string_view what) {
        if (!a.valid()) return fail_build(EINVAL, what, "errno outside 1..4095");
        slot = a;
        return *this;
    }

    // `name` names the call in error messages.
    template <class = void>
    builder& add(int number, std::string_view name, action what, std::span<const condition> all_of) {
        if (error_) return *this;
        if (!what.valid())
            return fail_build(EINVAL, name, "errno " + std::to_string(what.errno_value()) + " outside 1..4095");
        for (const condition& c : all_of) {
            if (c.index > 5)
                return fail_build(EINVAL, name, "argument index " + std::to_string(c.index) + " is not in 0..5");
            if (c.op > compare::in_range)
                return fail_build(EINVAL, name,
                                  "comparison " + std::to_string(static_cast<unsigned>(c.op)) + " is not a compare");
            const bool masked = c.op == compare::masked_equal || c.op == compare::masked_not_equal;
            if (masked && (c.value & ~c.mask) != 0)
                return fail_build(EINVAL, name, to_string(c) + ": the value has bits outside the mask");
            if (c.op == compare::in_range && c.value > c.upper)
                return fail_build(EINVAL, name, to_string(c) + ": the range is empty");
        }
        // An earlier rule without conditions decides every call of this
        // number: a later rule could never run. The same plain rule twice is
        // harmless (allow lists overlap); a different one is a contradiction.
        if (const auto earlier = decided_.find(number); earlier != decided_.end()) {
            if (all_of.empty() && earlier->second == what) return *this;
            return fail_build(EINVAL, name,
                              "an earlier rule (" + to_string(earlier->second) +
                                  ", no conditions) already decides every call; this one (" + to_string(what) +
                                  ") could never apply");
        }
        if (all_of.empty()) decided_.emplace(number, what);
        rules_.push_back({number, what, std::vector<condition>(all_of.begin(), all_of.end())});
        return *this;
    }

    template <class = void>
    static detail::bpf::arg_check to_check(const condition& c) noexcept {
        using detail::bpf::arg_op;
        switch (c.op) {
            case compare::equal: return {c.index, arg_op::eq, c.value, 0};
            case compare::not_equal: return {c.index, arg_op::ne, c.value, 0};
            case compare::masked_equal: return {c.index, arg_op::masked_eq, c.value, c.mask};
            case compare::masked_not_equal: return {c.index, arg_op::masked_ne, c.value, c.mask};
            case compare::greater: return {c.index, arg_op::gt, c.value, 0};
            case compare::greater_equal: return {c.index, arg_op::ge, c.value, 0};
            case compare::less: return {c.index, arg_op::lt, c.value, 0};
            case compare::less_equal: return {c.index, arg_op::le, c.value, 0};
            case compare::in_range: return {c.index, arg_op::in_range, c.value, c.upper};
        }
        return {c.index, arg_op::eq, c.value, 0};
    }

    action default_ = action::kill_process();
    action foreign_ = action::kill_process();
    action unknown_ = action::fail_with(ENOSYS);
    std::uint32_t install_flags_ = 0;
    std::vector<pending_rule> rules_;
    std::unordered_map<int, action> decided_;  // numbers with a rule without conditions
    std::optional<ctr::error> error_;
};

// One entry of the default profile: a group of calls, what they get, and why.
struct profile_entry {
    std::string_view group;
    // Names as plain C strings: the profile's few hundred names are then
    // plain pointers, where views would be constant-evaluated (their lengths
    // counted) in every translation unit that includes this header.
    std::span<const char* const> syscalls;  // all in the table
    // Calls newer than some tables (and older kernels): ruled when the table
    // knows them; until then they answer ENOSYS like every unknown number.
    std::span<const char* const> newer_syscalls;
    action what;
    std::span<const condition> all_of;  // none: unconditional
    std::string_view why;
};

}  // namespace ctr::seccomp

namespace ctr::detail::seccomp_profile {

using seccomp::action;
using seccomp::compare;
using seccomp::condition;
using seccomp::profile_entry;

// The default profile's data, by group. Every call in the table appears in
// exactly one group (a test holds the table to that), so a regenerated
// table with new calls fails the test until someone decides about them.

// --- allowed ---------------------------------------------------------------
inline constexpr const char* files[] = {
    "open", "openat", "openat2", "creat", "close", "close_range", "stat", "lstat", "fstat", "newfstatat", "statx",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir",
    "fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat", "unlink",
    "unlinkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat",
    "umask", "truncate", "ftruncate", "fallocate", "utime", "utimes", "utimensat", "futimesat", "mknod", "mknodat",
    "statfs", "fstatfs", "chroot"};
inline constexpr const char* files_newer[] = {"fchmodat2", "file_getattr", "file_setattr"};
inline constexpr const char* io[] = {
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "lseek", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "readahead", "fadvise64", "fsync",
    "fdatasync", "sync", "syncfs", "sync_file_range", "flock", "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2"};
inline constexpr const char* io_newer[] = {"cachestat"};
inline constexpr const char* xattrs[] = {
    "setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr",
    "flistxattr", "removexattr", "lremovexattr", "fremovexattr"};
inline constexpr const char* xattrs_newer[] = {"setxattrat", "getxattrat", "listxattrat", "removexattrat"};
inline constexpr const char* file_events[] = {"inotify_init", "inotify_init1", "inotify_add_watch",
                                                   "inotify_rm_watch", "fanotify_mark"};
inline constexpr const char* polling[] = {
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create",
    "timerfd_settime", "timerfd_gettime"};
inline constexpr const char* aio[] = {"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
                                           "io_pgetevents"};
inline constexpr const char* memory[] = {
    "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "mincore", "msync", "mlock", "mlock2", "munlock",
    "mlockall", "munlockall", "remap_file_pages", "membarrier", "memfd_create", "memfd_secret", "pkey_mprotect",
    "pkey_alloc", "pkey_free"};
inline constexpr const char* memory_newer[] = {"map_shadow_stack", "mseal"};
inline constexpr const char* processes[] = {
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "getpid", "getppid",
    "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "set_tid_address", "prctl", "arch_prctl",
    "prlimit64", "getrlimit", "setrlimit", "getrusage", "getpriority", "setpriority", "ioprio_get", "ioprio_set",
    "times", "pidfd_open", "process_mrelease"};
inline constexpr const char* threads[] = {
    "futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq", "set_thread_area", "get_thread_area",
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_getattr", "sched_setattr", "getcpu"};
inline constexpr const char* threads_newer[] = {"futex_wake", "futex_wait", "futex_requeue"};
inline constexpr const char* signals[] = {
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "pause", "kill", "tkill", "tgkill", "pidfd_send_signal",
    "restart_syscall", "alarm", "getitimer", "setitimer"};
inline constexpr const char* time_reading[] = {
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "timer_create",
    "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete"};
inline constexpr const char* credentials[] = {
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid",
    "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups", "capget", "capset"};
inline constexpr const char* sockets[] = {
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername", "getsockopt",
    "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown"};
inline constexpr const char* ipc[] = {
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd", "msgrcv",
    "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr"};
inline constexpr const char* system_info[] = {"uname", "sysinfo", "getrandom"};
inline constexpr const char* self_confinement[] = {"seccomp", "landlock_create_ruleset", "landlock_add_rule",
                                                        "landlock_restrict_self"};

// --- allowed with conditions -------------------------------------------------
inline constexpr const char* clone_call[] = {"clone"};
inline constexpr std::uint64_t namespace_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                                 CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
inline constexpr condition clone_without_namespaces[] = {{0, compare::masked_equal, 0, namespace_flags, 0}};
inline constexpr const char* personality_call[] = {"personality"};
// The low 32 bits (the kernel takes an unsigned int) hold nothing but
// PER_LINUX32 and UNAME26: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26.
inline constexpr condition harmless_persona[] = {
    {0, compare::masked_equal, 0, 0xffffffffULL & ~(std::uint64_t{PER_LINUX32} | std::uint64_t{UNAME26}), 0}};
inline constexpr condition persona_query[] = {{0, compare::masked_equal, 0xffffffffULL, 0xffffffffULL, 0}};
inline constexpr const char* socket_call[] = {"socket"};
inline constexpr condition not_vsock[] = {{0, compare::masked_not_equal, AF_VSOCK, 0xffffffffULL, 0}};
inline constexpr const char* ioctl_call[] = {"ioctl"};
inline constexpr condition no_terminal_injection[] = {
    {1, compare::masked_not_equal, TIOCSTI, 0xffffffffULL, 0},
    {1, compare::masked_not_equal, TIOCLINUX, 0xffffffffULL, 0}};

// --- ENOSYS ---------------------------------------------------------------------
inline constexpr const char* clone3_call[] = {"clone3"};

// --- refused (EPERM) -------------------------------------------------------------
inline constexpr const char* namespaces[] = {"unshare", "setns"};
inline constexpr const char* mounts[] = {"mount", "umount2", "pivot_root", "open_tree", "move_mount",
                                              "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"};
inline constexpr const char* mounts_newer[] = {"open_tree_attr", "statmount", "listmount"};
inline constexpr const char* modules[] = {"init_module", "finit_module", "delete_module"};
inline constexpr const char* kexec_reboot[] = {"kexec_load", "kexec_file_load", "reboot"};
inline constexpr const char* bpf_perf[] = {"bpf", "perf_event_open"};
inline constexpr const char* userfault[] = {"userfaultfd"};
inline constexpr const char* keyrings[] = {"add_key", "request_key", "keyctl"};
inline constexpr const char* clock_setting[] = {"settimeofday", "clock_settime", "clock_adjtime", "adjtimex"};
inline constexpr const char* file_handles[] = {"open_by_handle_at", "name_to_handle_at"};
inline constexpr const char* swap_accounting[] = {"swapon", "swapoff", "acct"};
inline constexpr const char* hardware_access[] = {"iopl", "ioperm", "modify_ldt"};
inline constexpr const char* io_uring[] = {"io_uring_setup", "io_uring_enter", "io_uring_register"};
inline constexpr const char* other_processes[] = {"ptrace", "process_vm_readv", "process_vm_writev",
                                                       "pidfd_getfd", "kcmp", "process_madvise"};
inline constexpr const char* host_names[] = {"sethostname", "setdomainname"};
inline constexpr const char* kernel_log_tty[] = {"syslog", "vhangup"};
inline constexpr const char* numa[] = {"mbind", "set_mempolicy", "get_mempolicy", "migrate_pages",
                                            "move_pages", "set_mempolicy_home_node"};
inline constexpr const char* whole_fs_watch[] = {"fanotify_init"};
inline constexpr const char* quotas[] = {"quotactl", "quotactl_fd"};
inline constexpr const char* lsm_attributes_newer[] = {"lsm_get_self_attr", "lsm_set_self_attr",
                                                            "lsm_list_modules"};
inline constexpr const char* obsolete[] = {
    "uselib", "_sysctl", "ustat", "sysfs", "create_module", "get_kernel_syms", "query_module", "nfsservctl",
    "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "vserver", "lookup_dcookie", "epoll_ctl_old",
    "epoll_wait_old"};

inline constexpr action allowed = action::allow();
inline constexpr action refused = action::fail_with(EPERM);

// Conditional entries come before any plain entry of the same call, since
// rules are tried in order.
// A span over a whole array, made from its first element and its size: the
// span's array constructor would be a constrained template of its own for
// each length, instantiated in every includer's compile.
template <class T, std::size_t N>
constexpr std::span<const T> all(const T (&items)[N]) noexcept {
    return std::span<const T>(&items[0], N);
}

inline constexpr profile_entry default_entries[] = {
    {"files and directories", all(files), all(files_newer), allowed, {},
     "The ordinary file interface. The kernel's permission checks, the mount namespace and Landlock still "
     "decide what is reachable; device nodes (mknod) need CAP_MKNOD, chroot needs CAP_SYS_CHROOT and only "
     "narrows the view."},
    {"reading, writing, file descriptors", all(io), all(io_newer), allowed, {},
     "Every program reads and writes; pipes and descriptor duplication are how shells connect commands."},
    {"extended attributes", all(xattrs), all(xattrs_newer), allowed, {},
     "Per-file metadata (ACLs, security labels, user.* attributes), checked by the kernel like the file itself."},
    {"file change notification", all(file_events), {}, allowed, {},
     "inotify watches paths the process can already read; build tools and servers watch their files. "
     "fanotify_mark is harmless without fanotify_init, which is refused."},
    {"polling and event descriptors", all(polling), {}, allowed, {},
     "Event loops of servers and runtimes (epoll, poll, select, eventfd, signalfd, timerfd)."},
    {"Linux AIO", all(aio), {}, allowed, {},
     "The older asynchronous I/O interface that databases use; bounded by aio-max-nr. io_uring is refused."},
    {"memory", all(memory), all(memory_newer), allowed, {},
     "Allocation, mappings and protection of the process's own memory; locking is bounded by RLIMIT_MEMLOCK."},
    {"processes", all(processes), {}, allowed, {},
     "fork, exec and wait are what shells and compilers do; the rest reads or adjusts the process itself, "
     "within its limits and capabilities."},
    {"threads and scheduling", all(threads), all(threads_newer), allowed, {},
     "glibc threads need futex, robust lists, rseq and TLS setup; scheduling changes beyond the process's own "
     "rights still need CAP_SYS_NICE."},
    {"signals and timers", all(signals), {}, allowed, {},
     "Signal handling, and signals to processes the kernel lets this one signal."},
    {"reading the time", all(time_reading), {}, allowed, {},
     "Reading clocks, sleeping and per-process timers; setting the clocks is refused below."},
    {"user and group ids, capabilities", all(credentials), {}, allowed, {},
     "Changing ids and capabilities needs the capabilities the kernel checks (CAP_SETUID, CAP_SETGID, "
     "CAP_SETPCAP); with them, dropping privileges is what daemons do."},
    {"sockets", all(sockets), {}, allowed, {},
     "Networking, confined by the network namespace. socket itself is conditional, below."},
    {"System V and POSIX IPC", all(ipc), {}, allowed, {},
     "Shared memory, semaphores and message queues, confined by the IPC namespace."},
    {"system information and randomness", all(system_info), {}, allowed, {},
     "uname and sysinfo read what the UTS namespace and the kernel show; getrandom seeds every TLS library."},
    {"self-confinement", all(self_confinement), {}, allowed, {},
     "A process may always confine itself further: another seccomp filter, or Landlock rules."},

    {"clone without namespace flags", all(clone_call), {}, allowed, all(clone_without_namespaces),
     "fork and threads use clone. The CLONE_NEW* flags (NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, "
     "NEWCGROUP) would create namespaces, whose user namespace hands back every capability inside it and "
     "opens the kernel code that needs them: such a clone gets EPERM."},
    {"personality: PER_LINUX, PER_LINUX32, UNAME26", all(personality_call), {}, allowed, all(harmless_persona),
     "These only change what uname reports (setarch i386, old build scripts). The other flags "
     "(ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) weaken the hardening of what the process executes next: EPERM. "
     "The kernel reads the argument as 32 bits, so the upper half is masked off."},
    {"personality: query", all(personality_call), {}, allowed, all(persona_query),
     "personality(0xffffffff) only reads the current persona."},
    {"socket, except AF_VSOCK", all(socket_call), {}, allowed, all(not_vsock),
     "Every address family the network namespace confines. AF_VSOCK talks to the hypervisor host, outside any "
     "network namespace: EPERM. The family is an int, so the upper half is masked off."},
    {"ioctl, except TIOCSTI and TIOCLINUX", all(ioctl_call), {}, allowed, all(no_terminal_injection),
     "Device and terminal control that programs need. TIOCSTI pushes characters into a terminal's input, and "
     "TIOCLINUX can paste into a virtual console: a sandbox that shares a terminal with a shell outside could "
     "type commands there (CVE-2017-5226). The request is an unsigned int, so the upper half is masked off."},

    {"clone3", all(clone3_call), {}, action::fail_with(ENOSYS), {},
     "Its flags are in memory that seccomp cannot read, so its namespace flags cannot be checked. ENOSYS (not "
     "EPERM) makes glibc and other runtimes fall back to clone, whose flags are checked."},

    {"namespaces", all(namespaces), {}, refused, {},
     "Creating or joining namespaces: a user namespace hands back every capability inside it and opens kernel "
     "code written for privileged callers; setns could join namespaces outside the sandbox."},
    {"mounts", all(mounts), all(mounts_newer), refused, {},
     "Changing the mount tree (including the new mount API) could undo the sandbox's file system view; the "
     "sandbox's mounts are made before this filter is installed. statmount and listmount read the mount tree."},
    {"kernel modules", all(modules), {}, refused, {}, "Loading code into the kernel."},
    {"kexec and reboot", all(kexec_reboot), {}, refused, {}, "Replacing or stopping the running kernel."},
    {"BPF and performance events", all(bpf_perf), {}, refused, {},
     "Programs that run in the kernel and hardware counters: a large attack surface and side channels on "
     "other processes."},
    {"userfaultfd", all(userfault), {}, refused, {},
     "Lets a process stall the kernel inside a page fault on its memory, the standard way to widen race "
     "windows in kernel exploits."},
    {"kernel keyrings", all(keyrings), {}, refused, {},
     "Keyrings are not namespaced: a sandbox could read or plant keys of the same user outside it."},
    {"setting the clocks", all(clock_setting), {}, refused, {},
     "The system clocks are not namespaced (time namespaces only offset what is read). adjtimex and "
     "clock_adjtime both read and set, in a structure seccomp cannot inspect. (i386's stime has no x86-64 "
     "number.)"},
    {"file handles", all(file_handles), {}, refused, {},
     "open_by_handle_at opens any file of a mounted file system by its handle, bypassing the sandbox's view of "
     "the tree (the \"shocker\" container escape); name_to_handle_at makes the handles."},
    {"swap and process accounting", all(swap_accounting), {}, refused, {}, "Host-wide administration."},
    {"I/O ports and the LDT", all(hardware_access), {}, refused, {},
     "iopl and ioperm give direct hardware port access; modify_ldt serves only 16-bit code (DOS emulators, "
     "Wine) and has a history of kernel bugs."},
    {"io_uring", all(io_uring), {}, refused, {},
     "Runs operations from kernel workers beside the filter's view, with a long record of privilege "
     "escalations; recent Docker and Podman profiles refuse it too."},
    {"tracing and reading other processes", all(other_processes), {}, refused, {},
     "Without a pid namespace a filtered process could attach to, read or steal descriptors from an "
     "unfiltered process of the same user outside the sandbox and act through it. strace and gdb inside need "
     "a profile that allows these."},
    {"host and domain name", all(host_names), {}, refused, {},
     "These are the host's names unless the sandbox has a UTS namespace."},
    {"kernel log and terminal hangup", all(kernel_log_tty), {}, refused, {},
     "syslog reads the kernel's log (addresses, other containers' messages); vhangup hangs up the terminal."},
    {"NUMA memory policy", all(numa), {}, refused, {},
     "Docker allows mbind, set_mempolicy and get_mempolicy only with CAP_SYS_NICE; migrate_pages and "
     "move_pages act on other processes' memory. Programs using libnuma run without them."},
    {"fanotify_init", all(whole_fs_watch), {}, refused, {},
     "Watches (and can block) access to whole file systems, beyond the sandbox's view."},
    {"disk quotas", all(quotas), {}, refused, {}, "Host-wide administration of file system quotas."},
    {"LSM attributes", {}, all(lsm_attributes_newer), refused, {},
     "Security module attributes of the process; nothing in an ordinary program needs them yet."},
    {"obsolete and unimplemented", all(obsolete), {}, refused, {},
     "Removed from the kernel or never implemented there, or interfaces nothing current uses (uselib, ustat, "
     "sysfs, _sysctl, lookup_dcookie): refused, so their code stays closed where it still exists."},
};

}  // namespace ctr::detail::seccomp_profile

namespace ctr::seccomp {

// The default profile's entries, in order, with their reasons: what
// docs/security.md prints as a table. Every call of the table is in some
// entry; the default action (EPERM) would cover one that was not.
template <class = void>
inline std::span<const profile_entry> default_profile_entries() noexcept {
    return ctr::detail::seccomp_profile::default_entries;
}

// A builder holding the default profile, to add to before building: rules
// for numbers the profile leaves to its actions (calls newer than the table,
// by number), or another default, foreign-ABI or unknown-call action. A call
// the profile already rules keeps its rule: default_profile_builder()
// .allow("ptrace") is an error (ptrace has a plain EPERM rule). For a
// different policy, build one from builder{} and the entries of
// default_profile_entries() you keep.
template <class = void>
inline builder default_profile_builder() {
    builder b;
    b.default_action(action::fail_with(EPERM))
        .foreign_abi_action(action::kill_process())
        .unknown_syscall_action(action::fail_with(ENOSYS));
    for (const profile_entry& entry : default_profile_entries()) {
        for (std::string_view name : entry.syscalls) b.rule(name, entry.what, entry.all_of);
        for (std::string_view name : entry.newer_syscalls)
            if (ctr::detail::syscall_table_x86_64::name_to_number(name) >= 0)
                b.rule(name, entry.what, entry.all_of);
    }
    return b;
}

// The default profile, in the shape of the one Docker and Podman ship: an
// allow list, EPERM for every other known call, ENOSYS for unknown numbers
// and clone3, kill for a foreign ABI. Compiled once, on first use.
template <class = void>
inline std::shared_ptr<const filter> default_profile() {
    static const std::shared_ptr<const filter> profile = default_profile_builder().build_shared();
    return profile;
}

}  // namespace ctr::seccomp

namespace ctr::detail {

// The child's step: installs the filter that op.data points to (a
// const sock_fprog*, &seccomp::filter::program()), with the
// SECCOMP_FILTER_FLAG_* bits in op.a (filter::install_flags()).
// no_new_privs must be set before (another step does), or the kernel answers
// EACCES to a caller without CAP_SYS_ADMIN. Returns 0 or -errno.
// Async-signal-safe: one system call, no allocation.
CTR_CHILD_CODE inline long child_install_seccomp(const child_op& op) noexcept {
    const long r = sys::seccomp(SECCOMP_SET_MODE_FILTER, static_cast<unsigned>(op.a), op.data);
    return r < 0 ? r : 0;
}

// The step for a filter that notifies: installs it with a listener (its fd
// is close-on-exec: the command never holds it) and sends the listener to
// the parent on socket op.b. The send is the one call the launch makes
// under the filter before exec; a filter that refuses it fails the launch
// with *op.data2 (failure_detail) set to 1.
CTR_CHILD_CODE inline long child_install_seccomp_with_listener(const child_op& op) noexcept {
    const long listener = sys::seccomp(SECCOMP_SET_MODE_FILTER, static_cast<unsigned>(op.a), op.data);
    if (listener < 0) return listener;
    const char tag = 'L';
    const long sent = child_send_with_fd(static_cast<int>(op.b), &tag, 1, static_cast<int>(listener), MSG_NOSIGNAL);
    if (sent < 0) {
        *static_cast<int*>(const_cast<void*>(op.data2)) = 1;
        return sent;
    }
    return 0;
}

// The launch step that installs `f`: child_op_code::call with
// child_install_seccomp. `f` must stay alive (and in place) until the child
// has exec'd; spawn keeps its shared_ptr for that long.
template <class = void>
inline child_op seccomp_install_op(const seccomp::filter& f) noexcept {
    return child_op{.code = child_op_code::call,
                    .step = ctr::step::install_seccomp,
                    .a = static_cast<long>(f.install_flags()),
                    .data = &f.program(),
                    .run = child_install_seccomp};
}

}  // namespace ctr::detail
// end ctr/seccomp.hpp
// begin ctr/security.hpp
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
// end ctr/security.hpp

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <vector>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Async-signal-safe.
CTR_CHILD_CODE inline long child_set_no_new_privileges(const child_op&) noexcept {
    return sys::prctl(PR_SET_NO_NEW_PRIVS, 1);
}

// A filter that notifies (seccomp::action::notify): the child installs it
// with a listener and sends that to the parent on a socket, whose parent end
// the child's handle keeps (child::take_seccomp_listener). Refuses what
// would leave the launch waiting on a supervisor that does not exist yet.
template <class = void>
inline child_op plan_seccomp_listener(launch_plan& plan, const seccomp::filter& compiled, launch_phase phase) {
    // Under the filter the child still sends the listener, execs, and on a
    // failure reports and exits: a notified one of these would wait for a
    // supervisor that spawn only hands out once the launch is over.
    for (const char* call : {"sendmsg", "execve", "execveat", "write", "exit_group"})
        if (compiled.may_notify(syscall_table_x86_64::name_to_number(call)))
            throw error(step::install_seccomp, EINVAL, call,
                        std::string("the filter may notify ") + call +
                            ", which the launch itself calls under the filter before exec (sendmsg, execve, "
                            "execveat, write, exit_group); give it another action");
    if (plan.start_gate)
        throw error(step::install_seccomp, EINVAL, "start_gate",
                    "a filter that notifies is not supported with options::start_gate: its listener would be "
                    "sent only once the command is started");
    if (phase != launch_phase::seccomp)
        throw error(step::install_seccomp, EINVAL, {},
                    "a filter that notifies needs security::no_new_privileges, so that it is installed last, "
                    "right before exec");
    int ends[2];
    if (const long r = sys::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends); r < 0)
        throw error(step::create_pipe, static_cast<int>(-r), {}, "the seccomp listener's channel");
    plan.seccomp_listener_from_child.reset(ends[0]);
    unique_fd child_end(ends[1]);
    // Above every fd the child maps: no dup3 of the fds phase may replace it.
    if (child_end.get() < plan.first_unmapped_fd) {
        const long moved = sys::fcntl(child_end.get(), F_DUPFD_CLOEXEC, plan.first_unmapped_fd);
        if (moved < 0)
            throw error(step::create_pipe, static_cast<int>(-moved), {}, "moving the seccomp listener's channel");
        child_end.reset(static_cast<int>(moved));
    }
    const int child_socket = child_end.get();
    plan.child_ends.push_back(std::move(child_end));
    return child_op{.code = child_op_code::call,
                    .step = ctr::step::install_seccomp,
                    .a = static_cast<long>(compiled.install_flags() | SECCOMP_FILTER_FLAG_NEW_LISTENER),
                    .b = child_socket,
                    .data = &compiled.program(),
                    .data2 = &plan.shared->failure_detail,
                    .run = child_install_seccomp_with_listener};
}

template <class = void>
inline void plan_security(launch_plan& plan, const options& opts) {
    const ::ctr::security& wanted = opts.security;
    if (wanted.capabilities) {
        const capability_plan& caps = plan.keep(plan_capabilities(*wanted.capabilities));
        const bool has_user_namespace =
            plan.created.has(ns::user) || plan.entered.has(ns::user) || raw::call(SYS_geteuid) == 0;
        const auto explain_privilege = [has_user_namespace](ctr::step s) {
            return [s, has_user_namespace](const child_report_view& report) {
                if (report.error == EPERM && !has_user_namespace)
                    return error(s, report.error, {},
                                 "changing capabilities needs CAP_SETPCAP: run as root or create a user namespace "
                                 "(ns::user), in which the command is root");
                return error(s, report.error);
            };
        };
        // The capability layer's own steps, in its order, placed around
        // the change of credentials.
        std::vector<child_op> before_ids, after_ids;
        add_capability_steps_before_ids(before_ids, caps, opts.uid.has_value());
        add_capability_steps_after_ids(after_ids, caps);
        for (const child_op& op : before_ids)
            plan.add(launch_phase::bounding_capabilities, op, {}, explain_privilege(op.step));
        for (const child_op& op : after_ids) plan.add(launch_phase::capabilities, op, {}, explain_privilege(op.step));
    }
    if (wanted.landlock) plan_landlock(plan, *wanted.landlock);
    if (wanted.no_new_privileges)
        plan.add(launch_phase::no_new_privileges,
                 {.code = child_op_code::call, .step = step::set_no_new_privileges, .run = child_set_no_new_privileges});
    if (wanted.seccomp) {
        const seccomp::filter& compiled = *plan.keep(wanted.seccomp);
        // Without no_new_privs only CAP_SYS_ADMIN lets a process install a
        // filter, so then it goes in before capabilities are dropped, and
        // before a change from uid 0 to another uid, which empties the
        // effective set (runc's order); the steps after it then run under
        // the filter.
        const bool leaves_root = opts.uid && *opts.uid != 0;
        const launch_phase phase = wanted.no_new_privileges ? launch_phase::seccomp
                                   : leaves_root           ? launch_phase::bounding_capabilities
                                                           : launch_phase::session;
        const child_op install = compiled.notifies() ? plan_seccomp_listener(plan, compiled, phase)
                                                     : seccomp_install_op(compiled);
        plan.add(phase, install, {}, [nnp = wanted.no_new_privileges](const child_report_view& report) {
            if (report.detail == 1)
                return error(step::install_seccomp, report.error, {},
                             "handing the filter's listener to the parent: the filter must allow sendmsg, the one "
                             "call the launch makes under it before exec");
            if (report.error == EACCES && !nnp)
                return error(step::install_seccomp, report.error, {},
                             "without no_new_privs a filter needs CAP_SYS_ADMIN; set security::no_new_privileges");
            if (report.error == EBUSY)
                return error(step::install_seccomp, report.error, {},
                             "a filter with a listener is installed already (by an outer sandbox or supervisor), "
                             "and the kernel allows one listener in a process's filters");
            return error(step::install_seccomp, report.error);
        });
    }
}

}  // namespace ctr::process::detail
// end ctr/detail/launch_security.hpp
// begin ctr/detail/launch_terminal.hpp
// Launch layer: options::terminal, a pty made by the child inside the
// sandbox. The child opens it after its mounts, so /dev/ptmx is the one the
// sandbox sees (its own devpts when the mount plan has .dev(): the slave is
// then /dev/pts/0 there, as under `podman run -t`); the slave becomes its
// standard streams and, in a session of its own, its controlling terminal;
// the master goes back over a socket the parent prepared (SCM_RIGHTS), or
// to the caller's console socket. A pty the parent opened could only come
// from the host's devpts, which the sandbox does not see.


#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <string>

// Linux 4.13; older headers lack the number, older kernels answer EINVAL.
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

namespace ctr::process::detail {

using namespace ::ctr::detail;

// What the child's terminal step reads; built by the parent.
struct terminal_step {
    int socket = -1;        // where the master goes
    winsize size{};
    long owner_uid = -1;    // the slave's owner once the command runs (-1: root of the sandbox keeps it)
    long owner_gid = -1;
    int streams[3] = {-1, -1, -1};  // the standard fds the slave becomes
};

// Which part of the terminal step failed (the child's failure_detail).
namespace terminal_part {
inline constexpr int open_ptmx = 1, unlock = 2, open_slave = 3, set_size = 4, become_stream = 5, send_master = 6;
}

// Opens the pty, unlocks it, opens the slave (TIOCGPTPEER, so no path is
// looked up where the sandbox could have put something else; /dev/pts/N
// before Linux 4.13), sets the window size, gives the slave to the
// command's ids, puts it on the standard fds and sends the master away.
// op.data = const terminal_step*, op.data2 = int* failure_detail.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_open_terminal(const child_op& op) noexcept {
    const auto& t = *static_cast<const terminal_step*>(op.data);
    int* part = static_cast<int*>(const_cast<void*>(op.data2));
    *part = terminal_part::open_ptmx;
    const long master = sys::openat(AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return master;
    const int m = static_cast<int>(master);
    const auto fail = [m](long r) {
        sys::close(m);
        return r;
    };
    *part = terminal_part::unlock;
    int locked = 0;
    if (const long r = sys::ioctl(m, TIOCSPTLCK, reinterpret_cast<long>(&locked)); r < 0) return fail(r);
    *part = terminal_part::open_slave;
    long slave = sys::ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave == -EINVAL || slave == -ENOTTY) {
        unsigned number = 0;
        if (const long r = sys::ioctl(m, TIOCGPTN, reinterpret_cast<long>(&number)); r < 0) return fail(r);
        char path[32] = "/dev/pts/";
        char digits[12];
        int count = 0;
        do digits[count++] = static_cast<char>('0' + number % 10);
        while ((number /= 10) != 0);
        std::size_t at = 9;
        while (count > 0) path[at++] = digits[--count];
        path[at] = '\0';
        slave = sys::openat(AT_FDCWD, path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    }
    if (slave < 0) return fail(slave);
    const int s = static_cast<int>(slave);
    const auto fail_both = [&fail, s](long r) {
        sys::close(s);
        return fail(r);
    };
    *part = terminal_part::set_size;
    if (const long r = sys::ioctl(m, TIOCSWINSZ, reinterpret_cast<long>(&t.size)); r < 0) return fail_both(r);
    // A command that changes its ids can still reopen its terminal by name
    // (ttyname, /dev/pts/0), as with a login. An id the sandbox does not
    // map is left to the credentials step, whose error explains it.
    if (t.owner_uid >= 0 || t.owner_gid >= 0)
        raw::call(SYS_fchown, s, t.owner_uid, t.owner_gid);
    *part = terminal_part::become_stream;
    for (const int target : t.streams)
        if (target >= 0)
            if (const long r = sys::dup3(s, target, 0); r < 0) return fail_both(r);
    sys::close(s);

    *part = terminal_part::send_master;
    const char byte = 'T';
    const long sent = child_send_with_fd(t.socket, &byte, 1, m, MSG_NOSIGNAL);
    // The receiver has its own copy now; this process keeps only the slave.
    sys::close(m);
    return sent < 0 ? sent : 0;
}

// The caller's error for a failed terminal step: which part, and the fix.
template <class = void>
inline error terminal_error(const child_report_view& report) {
    const int code = report.error;
    switch (report.detail) {
        case terminal_part::open_ptmx:
            return error(step::open_terminal, code, "/dev/ptmx",
                         code == ENOENT ? "the sandbox has no /dev/ptmx: give its mount plan a /dev (.dev(), which "
                                          "mounts a devpts of its own) or bind one"
                                        : "opening the pty multiplexer inside the sandbox");
        case terminal_part::unlock: return error(step::open_terminal, code, "/dev/ptmx", "unlocking the new pty (TIOCSPTLCK)");
        case terminal_part::open_slave:
            return error(step::open_terminal, code, "/dev/pts",
                         "opening the pty's slave: the sandbox's /dev/pts must be the devpts that its /dev/ptmx "
                         "belongs to");
        case terminal_part::set_size: return error(step::open_terminal, code, "/dev/ptmx", "setting the window size (TIOCSWINSZ)");
        case terminal_part::become_stream: return error(step::open_terminal, code, "/dev/pts", "making the slave the standard streams");
        case terminal_part::send_master:
            return error(step::open_terminal, code, "/dev/ptmx",
                         "sending the pty master back (SCM_RIGHTS): the console socket must be a connected AF_UNIX "
                         "socket");
        default: return error(step::open_terminal, code, "/dev/ptmx");
    }
}

template <class = void>
inline void plan_terminal(launch_plan& plan, const options& opts) {
    if (!opts.terminal) return;
    const terminal_options& asked = *opts.terminal;
    terminal_step step_data;
    step_data.size.ws_row = asked.size.rows;
    step_data.size.ws_col = asked.size.columns;
    if (opts.uid) step_data.owner_uid = static_cast<long>(*opts.uid);
    if (opts.gid) step_data.owner_gid = static_cast<long>(*opts.gid);

    // The terminal takes the streams left to it: those at stdio::inherit()
    // that no fd mapping replaces.
    const stdio* streams[3] = {&opts.std_in, &opts.std_out, &opts.std_err};
    int first = -1;
    for (int fd = 0; fd < 3; ++fd) {
        bool taken = streams[fd]->how == stdio::kind::inherit;
        for (const auto& m : opts.fds) taken = taken && m.target != fd;
        if (!taken) continue;
        step_data.streams[fd] = fd;
        if (first < 0) first = fd;
    }
    if (first < 0)
        throw error(step::prepare, EINVAL, {},
                    "options::terminal takes the standard streams left at stdio::inherit(), and none is");
    // A session has one controlling terminal: the one asked for on stdin
    // would leave none for the pty.
    if (opts.controlling_terminal && first != 0)
        throw error(step::prepare, EINVAL, {},
                    "options::terminal makes its pty the controlling terminal; controlling_terminal (stdin's) would "
                    "take another: leave it off");

    if (asked.console_socket >= 0) {
        if (!fd_is_open(asked.console_socket))
            throw error(step::open_terminal, EBADF, fd_name(asked.console_socket), "the console socket is not open");
        step_data.socket = asked.console_socket;
    } else {
        int ends[2];
        if (const long r = sys::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends); r < 0)
            throw error(step::create_pipe, static_cast<int>(-r), {}, "the terminal's channel");
        plan.terminal_from_child.reset(ends[0]);
        plan.child_ends.emplace_back(ends[1]);
        step_data.socket = ends[1];
    }
    const terminal_step& kept = plan.keep(step_data);
    // After the mounts (the sandbox's /dev/ptmx) and the other fds, while
    // the child is still root of its namespaces (to give the slave away).
    plan.add(launch_phase::fds,
             {.code = child_op_code::call, .step = step::open_terminal, .data = &kept,
              .data2 = &plan.shared->failure_detail, .run = child_open_terminal},
             "/dev/ptmx", terminal_error<>);
    // In the command (after an init splits off): a session of its own whose
    // controlling terminal is the slave.
    if (!opts.new_session)
        plan.add(launch_phase::session, {.code = child_op_code::new_session, .step = step::new_session});
    if (!(opts.controlling_terminal && first == 0))
        plan.add(launch_phase::session,
                 {.code = child_op_code::set_controlling_terminal, .step = step::set_controlling_terminal, .a = first},
                 fd_name(first));
}

// The master the child sent, once it has exec'd (so the message is there).
template <class = void>
inline unique_fd receive_terminal(int socket) {
    return receive_fd_from_child(socket, step::open_terminal, "/dev/ptmx", "the pty master");
}

}  // namespace ctr::process::detail
// end ctr/detail/launch_terminal.hpp

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ctr::process {

namespace detail {

using ::ctr::detail::launch_plan;
// What the result needs from a pid 1 init that ran in our memory.
struct init_outcome {
    int command_wait_status = -1;
    bool others_were_running = false;
};
template <class = void>
inline init_outcome read_init_outcome(const launch_plan&) noexcept;

// Launch internals build on the library-wide ones.
using namespace ::ctr::detail;
using clock = std::chrono::steady_clock;

// Whether this process ignores SIGCHLD (SIG_IGN or SA_NOCLDWAIT): then the
// kernel reaps children by itself and wait finds none.
template <class = void>
inline bool sigchld_ignored() noexcept {
    ::ctr::detail::sys::kernel_sigaction current{};
    if (::ctr::detail::sys::rt_sigaction(SIGCHLD, nullptr, &current) < 0) return false;
    return current.handler == SIG_IGN || (current.flags & SA_NOCLDWAIT) != 0;
}

template <class = void>
inline std::chrono::nanoseconds to_duration(const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

}  // namespace detail

// A running (or finished) child. Move-only; holds its pidfd. Its destructor
// kills and reaps a child that is still running, so no zombie is left;
// release() hands the pidfd (and the duty to reap) to the caller instead.
template <class>
class basic_child;
using child = basic_child<void>;
template <class = void>
[[nodiscard("the child is killed when its handle is dropped: keep it, wait() for it, or release() it")]]
child spawn(std::vector<std::string> argv, const options& opts = {});

namespace detail {
// A step another launcher adds to a spawn's program before it is ordered
// (a prepared sandbox's server, in place of exec).
struct plan_extension {
    void (*add)(launch_plan& plan, void* data) = nullptr;
    void* data = nullptr;
};
template <class = void>
child spawn_extended(std::vector<std::string> argv, const options& opts, plan_extension extension);
}  // namespace detail

template <class>
class [[nodiscard]] basic_child {
public:
    basic_child() = default;
    // Through the assignment, which leaves the moved-from handle empty in
    // every accessor (pid -1, no pidfd, no result, no network).
    basic_child(basic_child&& other) noexcept { *this = std::move(other); }
    basic_child& operator=(basic_child&& other) noexcept {
        if (this != &other) {
            kill_and_reap();
            pid_ = std::exchange(other.pid_, -1);
            pidfd_ = std::move(other.pidfd_);
            std_in_ = std::move(other.std_in_);
            std_out_ = std::move(other.std_out_);
            std_err_ = std::move(other.std_err_);
            capture_out_ = std::move(other.capture_out_);
            capture_err_ = std::move(other.capture_err_);
            captured_out_ = std::move(other.captured_out_);
            captured_err_ = std::move(other.captured_err_);
            plan_ = std::move(other.plan_);
            cgroup_ = std::exchange(other.cgroup_, nullptr);
            cgroup_run_ = other.cgroup_run_;
            start_ = other.start_;
            timeout_ = other.timeout_;
            kill_grace_ = other.kill_grace_;
            term_sent_ = other.term_sent_;
            kill_sent_ = other.kill_sent_;
            kill_at_ = other.kill_at_;
            result_ = std::exchange(other.result_, std::nullopt);
            network_ = std::move(other.network_);
            ends_after_sandbox_ = std::move(other.ends_after_sandbox_);
            other.ends_after_sandbox_.clear();
            pasta_pid_ = std::exchange(other.pasta_pid_, -1);
            terminal_ = std::move(other.terminal_);
            seccomp_listener_ = std::move(other.seccomp_listener_);
        }
        return *this;
    }
    ~basic_child() { kill_and_reap(); }

    template <class = void>
    pid_t pid() const noexcept { return pid_; }
    // For poll or epoll: readable once the child has exited. -1 after reaping.
    template <class = void>
    int pidfd() const noexcept { return pidfd_.get(); }
    template <class = void>
    bool valid() const noexcept { return static_cast<bool>(pidfd_) || result_.has_value(); }

    // The caller's ends of stdio::pipe() streams (empty otherwise).
    template <class = void>
    unique_fd& std_in() noexcept { return std_in_; }
    template <class = void>
    unique_fd& std_out() noexcept { return std_out_; }
    template <class = void>
    unique_fd& std_err() noexcept { return std_err_; }

    // Waits until the child ends (enforcing the timeout) and reaps it.
    // Calling it again returns the same result.
    template <class = void>
    result wait() {
        wait_until(std::nullopt);
        return *result_;
    }

    // Waits at most `limit`; nothing if the child is still running then.
    template <typename Rep, typename Period>
    std::optional<result> wait_for(std::chrono::duration<Rep, Period> limit) {
        const auto until = detail::clock::now() + std::chrono::duration_cast<detail::clock::duration>(limit);
        if (!wait_until(until)) return std::nullopt;
        return result_;
    }

    // Sends `sig` through the pidfd, so it never reaches a recycled pid.
    // After the child was reaped this does nothing.
    template <class = void>
    void signal(int sig) {
        if (!pidfd_) return;
        if (const long r = ctr::detail::sys::pidfd_send_signal(pidfd_.get(), sig); r < 0 && r != -ESRCH)
            throw error(step::signal, static_cast<int>(-r), "pid " + std::to_string(pid_));
    }
    template <class = void>
    void kill() { signal(SIGKILL); }

    // The master of options::terminal's pty (empty without one, or when it
    // went to a console socket): read what the command writes, write what
    // it reads. The caller may take it (std::move); it is closed with the
    // handle otherwise.
    template <class = void>
    unique_fd& terminal() noexcept { return terminal_; }

    // Sets the window size of options::terminal's pty (TIOCSWINSZ on the
    // master): the command's foreground process group gets SIGWINCH. For a
    // caller that relays a terminal of its own, on its SIGWINCH.
    template <class = void>
    void resize_terminal(window_size size) {
        if (!terminal_)
            throw error(step::open_terminal, EBADF, {}, "this child has no terminal master (options::terminal)");
        winsize value{};
        value.ws_row = size.rows;
        value.ws_col = size.columns;
        if (const long r = ctr::detail::sys::ioctl(terminal_.get(), TIOCSWINSZ, reinterpret_cast<long>(&value)); r < 0)
            throw error(step::open_terminal, static_cast<int>(-r), "pid " + std::to_string(pid_),
                        "setting the window size");
    }

    // The listener of a seccomp filter that notifies (seccomp::action::
    // notify), for a supervisor (<ctr/seccomp_notify.hpp>); empty without
    // one, and once taken. While no supervisor holds it the notified calls
    // wait; once every copy is closed they fail with ENOSYS.
    template <class = void>
    [[nodiscard]] unique_fd take_seccomp_listener() noexcept { return std::move(seccomp_listener_); }

    // The veth options::network made (names and addresses of both ends),
    // or null without one.
    template <class = void>
    const net::veth_info* network() const noexcept { return network_.get(); }

    // The pid of options::pasta's pasta while it runs, else -1. It is a
    // child of this process, ended and reaped once the sandbox has been
    // reaped (by wait, or by the handle's end); release() leaves it to the
    // handle, so keep the handle while the released sandbox needs a network.
    template <class = void>
    pid_t pasta_pid() const noexcept { return pasta_pid_; }

    // Gives up ownership: the child runs on, and the caller must reap it
    // (waitid(P_PIDFD, ...)) and close the returned pidfd. A sandbox spawned
    // with die_with_owner still ends with this process.
    [[nodiscard]] unique_fd release() noexcept {
        std_in_.reset();
        capture_out_.reset();
        capture_err_.reset();
        // A child that runs in our memory (shared, not copied) needs its
        // launch state (stacks and plan) until it exits, and we no longer
        // know when that is: then it stays allocated for the life of the
        // process. A child on a copy of our memory (every init and
        // supervisor, every held child) has its own; ours can go.
        if (plan_ && plan_->request.memory == ::ctr::detail::memory_mode::shared)
            new std::shared_ptr<detail::launch_plan>(std::move(plan_));
        plan_.reset();
        return std::move(pidfd_);
    }

private:
    template <class> friend child detail::spawn_extended(std::vector<std::string> argv, const options& opts,
                                                         detail::plan_extension extension);

    // True once the child has been reaped; false if `until` came first.
    template <class = void>
    bool wait_until(std::optional<detail::clock::time_point> until) {
        using namespace std::chrono;
        if (result_) return true;
        if (!pidfd_)
            throw error(step::wait, EINVAL, {},
                        "this process::child holds no process (default-constructed, moved from, or released): there "
                        "is nothing to wait for");
        for (;;) {
            const auto now = detail::clock::now();
            enforce_timeout(now);
            std::optional<detail::clock::time_point> wake = until;
            if (timeout_.count() > 0) {
                const auto next = term_sent_ ? kill_at_ : start_ + timeout_;
                if (!kill_sent_ && (!wake || next < *wake)) wake = next;
            }
            pollfd fds[3] = {{pidfd_.get(), POLLIN, 0}, {capture_out_.get(), POLLIN, 0},
                             {capture_err_.get(), POLLIN, 0}};
            timespec timeout_spec{};
            const timespec* timeout_ptr = nullptr;
            if (wake) {
                const auto left = std::max(nanoseconds(0), duration_cast<nanoseconds>(*wake - now));
                timeout_spec.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
                timeout_spec.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
                timeout_ptr = &timeout_spec;
            }
            const long ready = ctr::detail::sys::ppoll(fds, 3, timeout_ptr);
            if (ready == -EINTR) continue;
            if (ready < 0) throw error(step::wait, static_cast<int>(-ready), "pid " + std::to_string(pid_));
            const auto after = detail::clock::now();
            if (fds[1].revents) read_some(capture_out_, captured_out_);
            if (fds[2].revents) read_some(capture_err_, captured_err_);
            if (fds[0].revents) {
                reap(after);
                return true;
            }
            if (until && after >= *until) return false;
        }
    }

    template <class = void>
    void enforce_timeout(detail::clock::time_point now) {
        if (timeout_.count() <= 0 || kill_sent_) return;
        if (!term_sent_ && now >= start_ + timeout_) {
            term_sent_ = true;
            kill_at_ = now + kill_grace_;
            ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGTERM);
        } else if (term_sent_ && now >= kill_at_) {
            kill_sent_ = true;
            ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        }
    }

    // Reads what one capture pipe has now; closes it at end of file.
    template <class = void>
    void read_some(unique_fd& fd, std::string& into) {
        if (!fd) return;
        char buffer[65536];
        const long n = ctr::detail::sys::read(fd.get(), buffer, sizeof buffer);
        if (n > 0) {
            into.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || (n != -EINTR && n != -EAGAIN)) {
            fd.reset();
        }
    }

    // After exit: take what the pipes already hold, without waiting for an
    // end of file that a background grandchild could hold back forever.
    template <class = void>
    void drain_captures() {
        for (;;) {
            pollfd fds[2] = {{capture_out_.get(), POLLIN, 0}, {capture_err_.get(), POLLIN, 0}};
            const timespec zero{};
            const long ready = ctr::detail::sys::ppoll(fds, 2, &zero);
            if (ready == -EINTR) continue;
            if (ready <= 0) break;
            if (fds[0].revents) read_some(capture_out_, captured_out_);
            if (fds[1].revents) read_some(capture_err_, captured_err_);
        }
        capture_out_.reset();
        capture_err_.reset();
    }

    template <class = void>
    void reap(detail::clock::time_point ended) {
        siginfo_t info{};
        rusage usage{};
        long r;
        do r = ctr::detail::sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, &usage);
        while (r == -EINTR);
        if (r == -ECHILD && detail::sigchld_ignored())
            throw error(step::wait, ECHILD, "pid " + std::to_string(pid_),
                        "SIGCHLD is ignored in this process (SIG_IGN or SA_NOCLDWAIT), so the kernel reaps children "
                        "itself and their exit status is lost; set SIGCHLD back to SIG_DFL before spawning");
        if (r < 0) throw error(step::wait, static_cast<int>(-r), "pid " + std::to_string(pid_));
        drain_captures();
        result out;
        if (info.si_code == CLD_EXITED) {
            out.exit_code = info.si_status;
        } else {
            out.signal = info.si_status;
            out.core_dumped = info.si_code == CLD_DUMPED;
        }
        out.timed_out = term_sent_;
        out.wall_time = ended - start_;
        out.user_time = detail::to_duration(usage.ru_utime);
        out.system_time = detail::to_duration(usage.ru_stime);
        out.rusage_max_rss_bytes = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
        out.std_out = std::move(captured_out_);
        out.std_err = std::move(captured_err_);
        if (plan_) {
            // The init reports the command's own status; if the init itself
            // was killed first, its status is the answer.
            const detail::init_outcome init = detail::read_init_outcome(*plan_);
            if (init.command_wait_status >= 0) {
                const int status = init.command_wait_status;
                out.exit_code.reset();
                out.signal.reset();
                if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
                else out.signal = WTERMSIG(status);
                out.core_dumped = WIFSIGNALED(status) && WCOREDUMP(status);
            }
            out.pid_namespace_orphans_killed = init.others_were_running;
            plan_.reset();
        }
        if (cgroup_ && cgroup_->valid()) {
            // A reaped child has left the group, so its figures are final.
            // A group that can no longer be read leaves them empty: the
            // run's own outcome above stands either way.
            try {
                detail::add_cgroup_run_figures(out, cgroup_run_, cgroup_->read_run_figures());
            } catch (const error&) {
            }
        }
        result_ = std::move(out);
        pidfd_.reset();
        end_what_outlasts_the_sandbox();  // its network (pasta, NAT rules) ends with it
    }

    // Best effort, for destructors: nothing here may throw.
    template <class = void>
    void kill_and_reap() noexcept {
        if (!pidfd_) return;
        ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        siginfo_t info{};
        long r;
        do r = ctr::detail::sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, nullptr);
        while (r == -EINTR);
        pidfd_.reset();
        plan_.reset();  // only now: a pid 1 init ran in this memory
        end_what_outlasts_the_sandbox();
    }

    // The last made first: pasta, then the outbound NAT rule, then the
    // published ports' rules.
    void end_what_outlasts_the_sandbox() noexcept {
        while (!ends_after_sandbox_.empty()) ends_after_sandbox_.pop_back();
        pasta_pid_ = -1;
    }

    pid_t pid_ = -1;
    unique_fd pidfd_;
    unique_fd std_in_, std_out_, std_err_;
    unique_fd capture_out_, capture_err_;
    std::string captured_out_, captured_err_;
    detail::clock::time_point start_{};
    std::chrono::milliseconds timeout_{0};
    std::chrono::milliseconds kill_grace_{0};
    bool term_sent_ = false;
    bool kill_sent_ = false;
    detail::clock::time_point kill_at_{};
    std::optional<result> result_;
    // Kept while a pid 1 init runs on its stack, in our memory.
    std::shared_ptr<detail::launch_plan> plan_;
    // The group the child runs in, and its figures before the spawn.
    cgroup::group* cgroup_ = nullptr;
    detail::cgroup_run_start cgroup_run_{};
    // What options::network made. The pair itself belongs to the child's
    // network namespace (see options::network).
    std::shared_ptr<const net::veth_info> network_;
    // What the network layers made that ends after the sandbox
    // (launch_plan::ends_after_sandbox), and options::pasta's pid.
    std::vector<std::shared_ptr<void>> ends_after_sandbox_;
    pid_t pasta_pid_ = -1;
    unique_fd terminal_;
    unique_fd seccomp_listener_;
};
using child = basic_child<void>;

namespace detail {

// The child's wait for the parent's steps, when a layer has any: the child
// closes its copy of the parent's end, then reads the go byte.
template <class = void>
inline void plan_parent_wait(launch_plan& plan, const options& opts) {
    for (const auto& hook : opts.while_child_waits)
        plan.while_child_waits([&hook](parent_step_context& child) { hook(waiting_child{child.pid, child.pidfd}); });
    if (plan.has_parent_steps()) plan.sync_channel();
    // In a new pid namespace getppid() says 0, so the check that the parent
    // is still there cannot be made.
    const long parent = plan.created.has(ns::pid) ? 0 : sys::getpid();
    if (opts.die_with_parent)
        plan.add(launch_phase::signals, {.code = child_op_code::die_with_parent, .step = step::die_with_parent,
                                         .a = SIGKILL, .b = parent});
    if (!plan.sync_read) return;
    // While the child waits it dies with the parent even when not asked to:
    // other children being set up at the same time hold copies of its sync
    // channel, so the channel alone may never say that the parent is gone.
    // die_with_owner has set the signal already and keeps it.
    const bool dies_anyway = opts.die_with_parent || opts.die_with_owner;
    if (!dies_anyway)
        plan.add(launch_phase::signals, {.code = child_op_code::die_with_parent, .step = step::die_with_parent,
                                         .a = SIGKILL, .b = parent});
    // The child's copy of the parent's end goes first: while it is open, a
    // parent that died would never be seen as gone.
    plan.add(launch_phase::wait_for_parent,
             {.code = child_op_code::close_fd, .step = step::wait_for_parent, .a = plan.sync_write.get()});
    plan.add(launch_phase::wait_for_parent,
             {.code = child_op_code::wait_for_parent, .step = step::wait_for_parent, .a = plan.sync_read.get()});
    if (!dies_anyway)
        plan.add(launch_phase::wait_for_parent,
                 {.code = child_op_code::die_with_parent, .step = step::die_with_parent, .a = 0, .b = 0});
}

// The steps of an optional layer (detail::layer_option): through the
// planner that setting the option took, so that only programs that set it
// compile the layer.
template <class T>
inline void add_layer_steps(launch_plan& plan, const options& opts, const layer_option<T>& option) {
    if (!option) return;
    const layer_planner add_steps = option.planner_of_layer();
    if (!add_steps)
        throw error(step::prepare, EINVAL, {},
                    "an option was given a value without its launch layer (include <ctr/process.hpp>)");
    add_steps(plan, opts);
}

// Each layer in turn; the plan puts their steps in launch order.
template <class = void>
inline void build_plan(launch_plan& plan, std::vector<std::string> argv, const options& opts,
                       plan_extension extension = {}) {
    if (const long r = plan.shared.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));
    plan_command(plan, std::move(argv), opts);
    plan_streams(plan, opts);
    plan_namespaces(plan, opts);
    plan_cgroup(plan, opts);
    add_layer_steps(plan, opts, opts.root);
    plan_identity(plan, opts);
    plan_terminal(plan, opts);  // after identity: its session steps follow the caller's
    plan_lifetime(plan, opts);  // after the steps that change ids, which clear the parent-death signal
    plan_security(plan, opts);
    add_layer_steps(plan, opts, opts.network);
    add_layer_steps(plan, opts, opts.pasta);
    plan_parent_wait(plan, opts);
    if (extension.add) extension.add(plan, extension.data);
    plan.finish();
}

// Sends `data` with `fds` (SCM_RIGHTS, none allowed) to the child's receive
// step. A child that already failed has closed its end; its report says why.
template <class = void>
inline void send_fds(int socket, const std::string& data, const std::vector<int>& fds) {
    std::vector<char> control(fds.empty() ? 0 : CMSG_SPACE(sizeof(int) * fds.size()));
    iovec part{const_cast<char*>(data.data()), data.size()};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    if (!fds.empty()) {
        message.msg_control = control.data();
        message.msg_controllen = control.size();
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    }
    long r;
    do r = sys::sendmsg(socket, &message, MSG_NOSIGNAL);
    while (r == -EINTR);
    if (r < 0 && r != -EPIPE && r != -ECONNRESET) throw error(step::wait_for_parent, static_cast<int>(-r), {}, "sending mounts");
}

// Reaps a child whose setup failed, so that it leaves no zombie.
template <class = void>
inline void reap_failed(int pidfd) noexcept {
    siginfo_t info{};
    long r;
    do r = sys::waitid(P_PIDFD, pidfd, &info, WEXITED, nullptr);
    while (r == -EINTR);
}

template <class>
inline init_outcome read_init_outcome(const launch_plan& plan) noexcept {
    if (!plan.uses_init) return {};
    const init_state& init = plan.shared->init;
    // A supervisor outside a pid namespace kills what is left only for an
    // owned sandbox (die_with_owner); a pid namespace always does.
    const bool ends_the_rest = plan.created.has(ns::pid) || init.owner_pidfd >= 0;
    return {init.command_wait_status, ends_the_rest && init.others_were_running != 0};
}

// The child's report of a failed step: waits for it (or for exec, which
// closes the channel) when `wait`, else takes only one already there.
template <class = void>
inline std::optional<child_report> read_report(const launch_plan& plan, bool wait) {
    if (!wait) {
        pollfd ready{plan.report_read.get(), POLLIN, 0};
        timespec now{};
        if (sys::ppoll(&ready, 1, &now) <= 0 || !(ready.revents & POLLIN)) return std::nullopt;
    }
    child_report report{};
    std::size_t received = 0;
    while (received < sizeof report) {
        const long n = sys::read(plan.report_read.get(), reinterpret_cast<char*>(&report) + received,
                                 sizeof report - received);
        if (n == -EINTR) continue;
        if (n <= 0) break;
        received += static_cast<std::size_t>(n);
    }
    if (received != sizeof report) return std::nullopt;
    return report;
}

// The error a child's report stands for: the layer's own explanation of its
// step where it has one, else the step and the path it names.
template <class = void>
inline error report_error(const launch_plan& plan, const child_report& report) {
    const std::size_t index = report.op_index;
    if (index < plan.explainers.size() && plan.explainers[index])
        return plan.explainers[index](child_report_view{report.error, report.detail});
    const step failed = index < plan.ops.size() ? plan.ops[index].step : step::exec;
    std::string path = index < plan.op_paths.size() ? plan.op_paths[index] : std::string{};
    return error(failed, report.error, std::move(path));
}

}  // namespace detail

// Starts argv as a child process; throws ctr::error naming the step that
// failed, in the parent or in the child before exec.
template <class>
[[nodiscard("the child is killed when its handle is dropped: keep it, wait() for it, or release() it")]]
inline child spawn(std::vector<std::string> argv, const options& opts) {
    return detail::spawn_extended(std::move(argv), opts, {});
}

template <class>
inline child detail::spawn_extended(std::vector<std::string> argv, const options& opts, plan_extension extension) {
    namespace d = ctr::process::detail;
    namespace cd = ctr::detail;
    // Shared with the child handle when a pid 1 init keeps running in it.
    const auto plan = std::make_shared<d::launch_plan>();
    if (opts.clone == clone_style::copy_memory) plan->request.memory = cd::memory_mode::copied;
    d::build_plan(*plan, std::move(argv), opts, extension);

    if (const long r = plan->stack.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));

    const d::cgroup_run_start cgroup_run = opts.cgroup ? d::begin_cgroup_run(*opts.cgroup) : d::cgroup_run_start{};
    const auto start = d::clock::now();
    cd::clone_outcome started = cd::clone_child(plan->request, plan->stack, plan->view);
    if (plan->request.cgroup_fd >= 0 &&
        (started.pid == -EINVAL || started.pid == -ENOSYS || started.pid == -E2BIG || started.pid == -EOPNOTSUPP)) {
        // No CLONE_INTO_CGROUP (Linux before 5.7, or no clone3): the cgroup
        // layer's parent step attaches the waiting child instead.
        plan->request.cgroup_fd = -1;
        started = cd::clone_child(plan->request, plan->stack, plan->view);
    }
    if (started.pid < 0) throw d::clone_error(*plan, started.pid);

    // Declared after the plan, so that it is destroyed first: its
    // destructor kills and reaps a child that may still use the plan.
    child handle;
    handle.pid_ = static_cast<pid_t>(started.pid);
    handle.pidfd_.reset(started.pidfd);
    handle.start_ = start;
    handle.timeout_ = opts.timeout;
    handle.kill_grace_ = opts.kill_grace;

    // The child has its own copies now; ours would hold pipes open.
    plan->report_write.reset();
    plan->start_gate.reset();
    plan->sync_read.reset();
    plan->child_ends.clear();

    handle.cgroup_ = opts.cgroup;
    handle.cgroup_run_ = cgroup_run;

    // The parent's steps while the child waits. If one fails, the child is
    // killed with the handle; but when the child failed first (a join before
    // its wait), its own report is the better answer.
    std::string message_to_child(1, '\1');  // the go byte, then what the layers add
    cd::parent_step_context context{handle.pid_, handle.pidfd_.get(), message_to_child};
    try {
        for (const auto& parent_step : plan->parent_steps) parent_step(context);
    } catch (...) {
        if (const auto reported = d::read_report(*plan, false)) {
            d::reap_failed(handle.pidfd_.get());
            handle.pidfd_.reset();
            throw d::report_error(*plan, *reported);
        }
        throw;
    }
    handle.network_ = plan->network_made;
    handle.ends_after_sandbox_ = std::move(plan->ends_after_sandbox);
    handle.pasta_pid_ = plan->pasta_pid;
    if (plan->sync_write) {
        // One write, so the child never sees half of it. A child that
        // already failed has closed its end: EPIPE, and its report says why.
        long r;
        do r = cd::sys::sendto(plan->sync_write.get(), message_to_child.data(), message_to_child.size(), MSG_NOSIGNAL,
                               nullptr, 0);
        while (r == -EINTR);
        if (r != static_cast<long>(message_to_child.size()) && r != -EPIPE && r != -ECONNRESET)
            throw error(step::wait_for_parent, r < 0 ? static_cast<int>(-r) : EIO);
        if (!context.fds_data_to_child.empty() && r > 0)
            d::send_fds(plan->sync_write.get(), context.fds_data_to_child, context.fds_to_child);
        plan->sync_write.reset();
    }

    // Wait for exec (the channel closes) or a report of the failed step, or
    // with a start gate for the report that the command is held. The stack
    // and plan stay alive until then.
    const auto reported = d::read_report(*plan, true);
    const bool held = reported && reported->op_index == cd::held_report_index;
    if (reported && !held) {
        d::reap_failed(handle.pidfd_.get());
        handle.pidfd_.reset();
        throw d::report_error(*plan, *reported);
    }
    if (plan->start_gate && !held) {
        // The channel closed without a report: the child was killed (or its
        // gate's report could not be sent) before it was held.
        d::reap_failed(handle.pidfd_.get());
        handle.pidfd_.reset();
        throw error(step::hold_for_start, ECHILD, {}, "the sandbox ended before its command was held");
    }
    // Sent by the child before it exec'd, so it is there to take.
    if (plan->terminal_from_child) handle.terminal_ = d::receive_terminal(plan->terminal_from_child.get());
    if (plan->seccomp_listener_from_child)
        handle.seccomp_listener_ = cd::receive_fd_from_child(plan->seccomp_listener_from_child.get(),
                                                             step::install_seccomp, "", "the seccomp listener");
    if (plan->uses_init) handle.plan_ = plan;  // pid 1 runs on in our memory
    handle.std_in_ = std::move(plan->parent_in);
    if (plan->capture_out) handle.capture_out_ = std::move(plan->parent_out);
    else handle.std_out_ = std::move(plan->parent_out);
    if (plan->capture_err) handle.capture_err_ = std::move(plan->parent_err);
    else handle.std_err_ = std::move(plan->parent_err);
    return handle;
}

namespace detail {
// newuidmap and newgidmap run as plain children, their stderr captured.
template <class>
inline std::pair<int, std::string> run_id_map_helper_program(std::vector<std::string> argv) {
    auto r = spawn(std::move(argv), {.std_in = stdio::null(), .std_out = stdio::null(), .std_err = stdio::capture()})
                 .wait();
    return {r.exit_code.value_or(-1), r.std_err.substr(0, r.std_err.find('\n'))};
}
}  // namespace detail

}  // namespace ctr::process

// end ctr/spawn.hpp

#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <string>
#include <utility>

namespace ctr::net {

namespace detail {

// Why pasta is gone, with what it wrote to stderr.
template <class = void>
inline error pasta_failed(const pasta& options, const process::result& ended, int errors_fd) {
    const std::string written = pasta_error_text(read_all_from_start(errors_fd));
    std::string how = ended.exit_code ? "pasta exited with status " + std::to_string(*ended.exit_code)
                                      : "pasta was killed by signal " + std::to_string(ended.signal.value_or(0));
    return error(step::start_network_helper, EIO, options.program, how + (written.empty() ? "" : ": " + written));
}

}  // namespace detail

template <class>
inline pasta_process start_pasta(const pasta& options, pasta_target target, bool die_with_this_thread) {
    namespace sys = ctr::detail::sys;
    detail::check_pasta_options(options);
    if (target.netns_fd < 0) throw error(step::prepare, EINVAL, {}, "no network namespace given for pasta");

    // Its stderr goes to a file in memory, read only if it fails: a pipe
    // that nobody reads once it runs would stop it when full.
    const long memfd = sys::memfd_create("ctr-pasta-stderr", MFD_CLOEXEC);
    if (memfd < 0)
        throw error(step::start_network_helper, static_cast<int>(-memfd), options.program, "a file for its errors");
    const unique_fd errors(static_cast<int>(memfd));
    unique_fd ready_read, ready_write;
    ctr::detail::make_pipe(ready_read, ready_write);

    std::vector<process::fd_mapping> fds{{target.netns_fd, detail::pasta_netns_fd},
                                         {ready_write.get(), detail::pasta_ready_fd}};
    if (target.userns_fd >= 0) fds.push_back({target.userns_fd, detail::pasta_userns_fd});
    const bool as_root = ctr::detail::raw::call(SYS_geteuid) == 0;
    process::child helper;
    try {
        helper = process::spawn(detail::pasta_command(options, target.userns_fd >= 0, as_root),
                                {.std_in = process::stdio::null(),
                                 .std_out = process::stdio::null(),
                                 .std_err = process::stdio::from_fd(errors.get()),
                                 .fds = std::move(fds),
                                 .die_with_parent = die_with_this_thread,
                                 // Out of the caller's process group: a ^C at
                                 // the caller's terminal is for the caller
                                 // (and its sandbox), while pasta ends when
                                 // its owner ends it.
                                 .new_session = true});
    } catch (const error& e) {
        const int code = e.code().value();
        if (e.step() == step::exec && (code == ENOENT || code == ENOTDIR))
            throw error(step::start_network_helper, code, options.program,
                        "pasta is not installed: install the package passt (apt-get install passt, dnf install "
                        "passt), or give its path in net::pasta::program");
        throw;
    }
    // Only pasta's copy now: its exit closes the pipe.
    ready_write.reset();

    // pasta writes "<pid>\n" once the interface is configured; an end of
    // file before that means it exited.
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + options.ready_timeout;
    std::string line;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            helper.kill();
            helper.wait();
            const std::string written = detail::pasta_error_text(detail::read_all_from_start(errors.get()));
            throw error(step::start_network_helper, ETIMEDOUT, options.program,
                        "pasta did not configure the sandbox's network within " +
                            std::to_string(options.ready_timeout.count()) + " ms" +
                            (written.empty() ? "" : ": " + written));
        }
        pollfd ready{ready_read.get(), POLLIN, 0};
        const timespec wait{static_cast<time_t>(left.count() / 1'000'000'000),
                            static_cast<long>(left.count() % 1'000'000'000)};
        const long r = sys::ppoll(&ready, 1, &wait);
        if (r == -EINTR || r == 0) continue;
        if (r < 0) throw error(step::start_network_helper, static_cast<int>(-r), options.program, "waiting for it");
        char buffer[64];
        const long n = sys::read(ready_read.get(), buffer, sizeof buffer);
        if (n == -EINTR || n == -EAGAIN) continue;
        if (n <= 0) throw detail::pasta_failed(options, helper.wait(), errors.get());
        line.append(buffer, static_cast<std::size_t>(n));
        if (line.find('\n') != std::string::npos) break;
    }
    const pid_t pid = helper.pid();
    return pasta_process::adopt(pid, helper.release());
}

}  // namespace ctr::net

// spawn's pasta layer, so that a program that includes this header can set
// options::pasta (it needs start_pasta above).
// end ctr/pasta.hpp

#include <sys/stat.h>

#include <memory>
#include <string>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Whether the user namespace `userns_fd` is another than this process's: then
// pasta must join it to enter the network namespace it owns.
template <class = void>
inline bool in_other_user_namespace(int userns_fd) {
    struct stat theirs{}, ours{};
    if (const long r = sys::fstatat(userns_fd, "", &theirs, AT_EMPTY_PATH); r < 0)
        throw error(step::start_network_helper, static_cast<int>(-r), "user namespace", "reading the child's");
    if (const long r = sys::fstatat(AT_FDCWD, "/proc/self/ns/user", &ours, 0); r < 0)
        throw error(step::start_network_helper, static_cast<int>(-r), "/proc/self/ns/user");
    return theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev;
}

// Adds pasta's parent step. The running pasta goes to
// plan.ends_after_sandbox, its pid to plan.pasta_pid.
template <class = void>
inline void plan_pasta(launch_plan& plan, const options& opts) {
    if (!opts.pasta) return;
    const net::pasta& wanted = *opts.pasta;
    net::detail::check_pasta_options(wanted);  // before clone, so bad options start nothing
    const auto running = std::make_shared<net::pasta_process>();
    plan.ends_after_sandbox.push_back(running);
    net::pasta_process& made = *running;
    pid_t* const made_pid = &plan.pasta_pid;
    const bool die_with_this_thread = opts.die_with_parent || opts.die_with_owner;
    plan.while_child_waits([&wanted, &made, made_pid, die_with_this_thread](parent_step_context& child) {
        const std::string base = "/proc/" + std::to_string(child.pid) + "/ns/";
        const unique_fd netns = open_checked((base + "net").c_str(), O_RDONLY, 0, step::start_network_helper);
        const unique_fd userns = open_checked((base + "user").c_str(), O_RDONLY, 0, step::start_network_helper);
        net::pasta_target target{netns.get(), -1};
        if (in_other_user_namespace(userns.get())) target.userns_fd = userns.get();
        made = net::start_pasta(wanted, target, die_with_this_thread);
        *made_pid = made.pid();
    });
}

}  // namespace ctr::process::detail

namespace ctr::detail {
template <>
inline constexpr bool layer_header_included<net::pasta> = true;
template <>
struct launch_layer<net::pasta> {
    template <class = void>
    static void add_steps(launch_plan& plan, const process::options& opts) {
        process::detail::plan_pasta(plan, opts);
    }
};
}  // namespace ctr::detail
// end ctr/detail/launch_pasta.hpp
// end ctr/process.hpp

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ctr::process {

struct prepared_options {
    // tmpfs mounts made afresh for each run (mode 1777) over the shared
    // tree: what one run writes there, the next never sees. A path missing
    // in the root is made (as a plan's tmpfs would).
    std::vector<std::string> fresh_tmpfs = std::vector<std::string>{"/tmp", "/dev/shm"};
    // Runs that may be going at once.
    std::size_t most_runs = 256;
};

// What differs from one run to the next. The rest (credentials, rlimits,
// umask, security) comes from the sandbox's options.
struct run_options {
    environment env = environment();
    std::string executable{};  // empty: argv[0], looked up in the run's PATH
    std::string cwd{};         // empty: the sandbox's options::cwd, else "/"
    // inherit (the caller's own stream), null, file, fd or capture.
    stdio std_in = stdio();
    stdio std_out = stdio();
    stdio std_err = stdio();
    // Counted from run(): SIGTERM, then SIGKILL after kill_grace. Zero: none.
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds kill_grace{2000};
};

namespace detail {
// Everything the server reads, allocated before it is cloned.
struct prepared_state {
    launch_plan run_plan;
    mount::prepared_plan run_mounts;
    ctr::detail::mount_context mount_ctx;
    char mount_message[256] = {};
    std::vector<char> buffer;
    std::vector<char*> argv, envp;
    std::vector<const char*> candidates;
    std::vector<std::string> carried;
    std::vector<const char*> carried_paths;
    std::vector<ctr::detail::run_slot> runs;
    ctr::detail::prepared_server server;
};

template <class = void>
inline void add_prepared_server(launch_plan& plan, void* data) {
    auto* state = static_cast<prepared_state*>(data);
    plan.add(launch_phase::hold,
             {.code = child_op_code::call, .step = step::hold_for_start, .a = 3, .data = &state->server,
              .data2 = &plan.view, .run = ctr::detail::serve_prepared_runs},
             "the prepared sandbox's server");
}
}  // namespace detail

// One run of a prepared sandbox. Move-only. Dropping it kills a run that is
// still going (the server reaps it).
template <class>
class [[nodiscard]] basic_prepared_run {
public:
    basic_prepared_run() = default;
    basic_prepared_run(basic_prepared_run&&) noexcept = default;
    basic_prepared_run& operator=(basic_prepared_run&& other) noexcept {
        if (this != &other) {
            end_now();
            channel_ = std::move(other.channel_);
            pidfd_ = std::move(other.pidfd_);
            out_ = std::move(other.out_);
            err_ = std::move(other.err_);
            result_ = std::move(other.result_);
            pid_ = other.pid_;
            start_ = other.start_;
            timeout_ = other.timeout_;
            kill_grace_ = other.kill_grace_;
        }
        return *this;
    }
    ~basic_prepared_run() { end_now(); }

    // The run's pid 1 as the sandbox's pid namespace sees it.
    pid_t pid_in_sandbox() const noexcept { return pid_; }
    // A pidfd of the run's pid 1 (its init, which forwards signals to the
    // command; or the command itself without one); -1 once it has ended.
    int pidfd() const noexcept { return pidfd_.get(); }

    template <class = void>
    void signal(int number) {
        if (!pidfd_ || result_) return;
        if (const long r = ::ctr::detail::sys::pidfd_send_signal(pidfd_.get(), number); r < 0 && r != -ESRCH)
            throw error(step::wait, static_cast<int>(-r), {}, "signalling a prepared run");
    }
    template <class = void>
    void kill() { signal(SIGKILL); }

    // Waits for the run to end (enforcing its timeout) and for its
    // captured streams to close.
    template <class = void>
    result wait();

private:
    friend class prepared_sandbox;
    template <class = void>
    void end_now() noexcept {
        if (pidfd_ && !result_) ::ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
    }

    unique_fd channel_, pidfd_, out_, err_;
    std::optional<result> result_{};
    pid_t pid_ = -1;
    detail::clock::time_point start_{};
    std::chrono::milliseconds timeout_{0}, kill_grace_{2000};
};
using prepared_run = basic_prepared_run<void>;

class [[nodiscard]] prepared_sandbox {
public:
    // Makes the sandbox: its namespaces, root, cgroup placement as `shared`
    // asks (as for spawn; the root defaults to mount::host_readonly(), and
    // gets a /proc when it has none), and the run program from its
    // credentials, rlimits, umask and security. Throws ctr::error as spawn
    // does. Per-run things are refused here: streams, fds, a timeout, a
    // terminal, a start gate (set them in run_options, or spawn).
    template <class = void>
    explicit prepared_sandbox(const options& shared, prepared_options prepared = prepared_options());
    prepared_sandbox(prepared_sandbox&&) noexcept = default;
    prepared_sandbox& operator=(prepared_sandbox&&) noexcept = default;
    // Ends the server, and with it every run still going.
    ~prepared_sandbox() = default;

    // Starts one run; returns once it has exec'd. Throws ctr::error naming
    // the step that failed (the program not found, a mount, the directory).
    // Safe to call from several threads at once.
    template <class = void>
    prepared_run run(std::vector<std::string> argv, const run_options& opts = run_options()) const;

    // The sandbox's pid 1, as this process sees it.
    pid_t pid() const noexcept { return server_.pid(); }

private:
    template <class = void>
    error run_error(const ctr::detail::run_message& failed, const std::string& program, const std::string& cwd) const;

    static const std::string& root_directory() {
        static const std::string root("/");
        return root;
    }

    std::unique_ptr<detail::prepared_state> state_;
    std::string default_cwd_;  // options::cwd of the sandbox
    unique_fd requests_;
    child server_;  // last: destroyed first, while the state it used is alive
};

template <class Unused>
prepared_sandbox::prepared_sandbox(const options& shared, prepared_options prepared)
    : state_(std::make_unique<detail::prepared_state>()), default_cwd_(shared.cwd) {
    namespace cd = ::ctr::detail;
    const auto refuse = [](const char* field, const char* why) {
        throw error(step::prepare, EINVAL, field, std::string("a prepared sandbox ") + why);
    };
    if (shared.terminal) refuse("terminal", "has no terminal (spawn one with options::terminal)");
    if (shared.start_gate >= 0) refuse("start_gate", "starts each run at run()");
    if (!shared.fds.empty()) refuse("fds", "passes no further fds to its runs");
    if (shared.security.seccomp && shared.security.seccomp->notifies())
        refuse("security.seccomp", "hands out no seccomp listener: spawn a filter that notifies (action::notify)");
    if (shared.timeout.count() != 0) refuse("timeout", "takes a timeout per run (run_options::timeout)");
    if (shared.std_in.how != stdio::kind::inherit || shared.std_out.how != stdio::kind::inherit ||
        shared.std_err.how != stdio::kind::inherit)
        refuse("std_in/std_out/std_err", "takes streams per run (run_options)");
    if (prepared.most_runs == 0 || prepared.most_runs > 65536)
        refuse("most_runs", "runs between 1 and 65536 commands at once");
    auto& st = *state_;

    // The run's program: what spawn would do after the mounts.
    options run_program;
    run_program.env = environment{.inherit = false};
    run_program.groups = shared.groups;
    run_program.gid = shared.gid;
    run_program.uid = shared.uid;
    run_program.rlimits = shared.rlimits;
    run_program.umask = shared.umask;
    run_program.new_session = shared.new_session;
    run_program.security = shared.security;
    run_program.id_maps = shared.id_maps;  // what an unmapped id's error names
    st.run_plan.entered = shared.namespaces | ns::pid | ns::mount;
    if (cd::raw::call(SYS_geteuid) != 0) st.run_plan.entered = st.run_plan.entered | ns::user;
    detail::build_plan(st.run_plan, {"/"}, run_program);
    st.run_plan.report_read.reset();
    st.run_plan.report_write.reset();
    std::size_t exec_op = st.run_plan.ops.size();
    for (std::size_t i = 0; i < st.run_plan.ops.size(); ++i)
        if (st.run_plan.ops[i].code == cd::child_op_code::exec) exec_op = i;
    if (exec_op == st.run_plan.ops.size()) throw error(step::prepare, EINVAL, {}, "the run program has no exec");
    // A Landlock ruleset (security::landlock) is made here once; the server
    // keeps its fd at 4 for every run, whose command adds the path rules as
    // its mounts show them and applies it to itself.
    int ruleset_fd = -1;
    for (auto& op : st.run_plan.ops)
        if (op.step == step::add_landlock_rule || op.step == step::apply_landlock) {
            ruleset_fd = static_cast<int>(op.a);
            op.a = 4;
        }

    // The sandbox's root, and the options of its /proc, which each run's
    // fresh /proc takes too.
    std::optional<mount::plan> root = shared.root ? *shared.root : mount::host_readonly();
    mount::proc_options proc_options;
    bool has_proc = false;
    for (const auto& request : mount::detail::plan_requests<Unused>(*root))
        if (const auto* p = mount::detail::request_if<mount::detail::proc_request>(request); p && p->target == "/proc") {
            has_proc = true;
            proc_options = p->options;
        }
    // A new /proc may be mounted in a user namespace only where one is
    // fully visible already: the server's.
    if (!has_proc) root->proc("/proc");
    // Each fresh tmpfs needs its mount point: a tmpfs there in the shared
    // tree makes it wherever the root lacks it (the plan's rules for a
    // missing mount point), and is what runs find under their own.
    for (const auto& fresh : prepared.fresh_tmpfs) {
        bool mounted = false;
        for (const auto& request : mount::detail::plan_requests<Unused>(*root)) {
            if (const auto* t = mount::detail::request_if<mount::detail::tmpfs_request>(request); t && t->target == fresh)
                mounted = true;
            // dev() makes a tmpfs at shm.
            if (const auto* d = mount::detail::request_if<mount::detail::dev_request>(request); d && d->target + "/shm" == fresh)
                mounted = true;
        }
        if (!mounted) root->tmpfs(fresh, {.mode = 01777});
    }

    // Each run's own mounts, at paths of the sandbox's root.
    {
        mount::detail::step_builder builder(true, true);
        builder.add_one(mount::detail::proc_request{"/proc", proc_options});
        for (const char* p : mount::detail::masked_proc_paths)
            builder.add_one(mount::detail::path_request{cd::mount_step_kind::mask, std::string("/proc/") + p});
        for (const char* p : mount::detail::read_only_proc_paths)
            builder.add_one(mount::detail::path_request{cd::mount_step_kind::read_only, std::string("/proc/") + p});
        for (const auto& target : prepared.fresh_tmpfs)
            builder.add_one(mount::detail::tmpfs_request{target, {.mode = 01777}});
        st.run_mounts = builder.take();
    }
    // The root's mounts below a fresh tmpfs, carried over it (the topmost
    // only: a recursive copy brings what is below).
    for (const auto& request : mount::detail::plan_requests<Unused>(*root)) {
        const std::string target = mount::detail::visit_request<std::string>(
            [](const auto& r) -> std::string {
                using type = std::remove_cvref_t<decltype(r)>;
                if constexpr (std::is_same_v<type, mount::detail::write_request> ||
                              std::is_same_v<type, mount::detail::symlink_request> ||
                              std::is_same_v<type, mount::detail::attributes_request>)
                    return {};
                else if constexpr (std::is_same_v<type, mount::detail::path_request>)
                    return r.kind == cd::mount_step_kind::mask || r.kind == cd::mount_step_kind::read_only ? r.target
                                                                                                         : std::string();
                else
                    return r.target;
            },
            request);
        const auto below = [](const std::string& path, const std::string& top) {
            const std::string prefix = top.back() == '/' ? top : top + "/";
            return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0;
        };
        if (target.empty()) continue;
        bool covered = false;
        for (const auto& fresh : prepared.fresh_tmpfs) covered = covered || below(target, fresh);
        for (const auto& kept : st.carried) covered = covered && !below(target, kept) && target != kept;
        if (covered) st.carried.push_back(target);
    }
    if (st.carried.size() > cd::most_carried_mounts)
        throw error(step::prepare, E2BIG, st.carried.front(),
                    "more than 32 of the root's mounts lie below a fresh tmpfs (prepared_options::fresh_tmpfs)");
    for (const auto& c : st.carried) st.carried_paths.push_back(c.c_str());
    st.mount_ctx.host_paths = true;
    st.mount_ctx.message = st.mount_message;
    st.mount_ctx.message_size = sizeof st.mount_message;

    constexpr std::size_t request_bytes = 128 * 1024, slots = 8192;
    st.buffer.assign(request_bytes, '\0');
    st.argv.assign(slots, nullptr);
    st.envp.assign(slots, nullptr);
    st.candidates.assign(slots, nullptr);
    st.runs.resize(prepared.most_runs);

    auto& s = st.server;
    s.run_view = &st.run_plan.view;
    s.run_ops = st.run_plan.ops.data();
    s.exec_op = exec_op;
    const auto steps = st.run_mounts.steps();
    s.mounts = steps.data();
    s.mount_count = steps.size();
    s.mount_ctx = &st.mount_ctx;
    s.run_clone_flags = CLONE_NEWPID | CLONE_NEWNS;
    if (shared.namespaces.has(ns::ipc)) s.run_clone_flags |= CLONE_NEWIPC;
    if (shared.namespaces.has(ns::uts)) s.run_clone_flags |= CLONE_NEWUTS;
    s.runs_first_to_oom = shared.cgroup != nullptr;
    s.carried = st.carried_paths.data();
    s.carried_count = st.carried_paths.size();
    s.buffer = st.buffer.data();
    s.buffer_size = st.buffer.size();
    s.argv = st.argv.data();
    s.envp = st.envp.data();
    s.candidates = st.candidates.data();
    s.slots = slots;
    s.runs = st.runs.data();
    s.run_capacity = st.runs.size();
    s.use_init = shared.init;
    s.run_program_fd = ruleset_fd >= 0 ? 4 : -1;

    int ends[2];
    if (const long r = cd::sys::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends); r < 0)
        throw error(step::create_pipe, static_cast<int>(-r), {}, "the prepared sandbox's request socket");
    requests_.reset(ends[0]);
    const unique_fd server_end(ends[1]);

    // The server: the sandbox's own launch, ending in the server instead
    // of exec. It outlives this call, so it runs on a copy of our memory.
    options sandbox = shared;
    sandbox.security = ::ctr::security();
    sandbox.groups.reset();
    sandbox.gid.reset();
    sandbox.uid.reset();
    sandbox.rlimits.clear();
    sandbox.umask.reset();
    sandbox.new_session = false;
    sandbox.namespaces = sandbox.namespaces | ns::pid | ns::mount;
    sandbox.root = std::move(root);
    sandbox.cwd.clear();
    sandbox.clone = clone_style::copy_memory;
    sandbox.env = environment{.inherit = false};
    sandbox.executable = "/";
    sandbox.std_in = stdio::null();
    sandbox.std_out = stdio::null();
    sandbox.std_err = stdio::null();
    sandbox.fds = {{server_end.get(), 3}};
    if (ruleset_fd >= 0) sandbox.fds.push_back({ruleset_fd, 4});
    server_ = detail::spawn_extended({"ctr-prepared"}, sandbox, {detail::add_prepared_server<>, state_.get()});
}

template <class>
error prepared_sandbox::run_error(const ::ctr::detail::run_message& failed, const std::string& program,
                                  const std::string& cwd) const {
    namespace cd = ::ctr::detail;
    const std::uint32_t index = failed.op_index;
    const int e = failed.error;
    if (index & cd::run_mount_flag) return state_->run_mounts.error_for(index & ~cd::run_mount_flag, e, nullptr);
    switch (index) {
        case cd::run_clone_index:
            return error(step::clone, e, {}, "the prepared sandbox could not start a run");
        case cd::run_request_index:
            return error(step::prepare, e, {},
                         e == EAGAIN ? "more runs at once than prepared_options::most_runs"
                                     : "the prepared sandbox could not read the run's request");
        case cd::run_cwd_index:
            return error(step::change_directory, e, cwd);
        case cd::run_stream_index:
            return error(step::map_fds, e, {}, "a standard stream of the run");
        case cd::run_carry_index: {
            const auto which = static_cast<std::size_t>(failed.detail);  // a negative detail wraps past the end
            return error(step::bind_mount, e, which < state_->carried.size() ? state_->carried[which] : std::string(),
                         "carrying the sandbox's mount over the run's fresh tmpfs");
        }
        case cd::run_init_index:
            return error(step::run_init, e, {}, "the run's pid 1 could not start the command");
        case cd::run_oom_index:
            return error(step::write_file, e, "/proc/self/oom_score_adj", "making the run the OOM killer's first choice");
        default:
            break;
    }
    const auto& plan = state_->run_plan;
    if (index < plan.ops.size() && plan.ops[index].code == cd::child_op_code::exec) return error(step::exec, e, program);
    return detail::report_error(plan, cd::child_report{index, e, failed.detail});
}

template <class>
prepared_run prepared_sandbox::run(std::vector<std::string> argv, const run_options& opts) const {
    namespace cd = ::ctr::detail;
    if (!requests_) throw error(step::prepare, EINVAL, {}, "this prepared sandbox was moved from");
    if (argv.empty()) throw error(step::prepare, EINVAL, {}, "argv is empty");
    for (const auto& arg : argv)
        if (arg.find('\0') != std::string::npos) throw error(step::prepare, EINVAL, arg, "argument contains a NUL byte");
    if (opts.cwd.find('\0') != std::string::npos) throw error(step::prepare, EINVAL, "cwd", "contains a NUL byte");
    if (opts.timeout.count() < 0 || opts.kill_grace.count() < 0)
        throw error(step::prepare, EINVAL, "timeout", "a negative time");
    const auto env = detail::build_environment(opts.env);
    const std::string& program = opts.executable.empty() ? argv.front() : opts.executable;
    if (program.empty()) throw error(step::prepare, ENOENT, {}, "the program name is empty");
    const auto candidates = detail::exec_candidates(program, env);
    const std::string& cwd = !opts.cwd.empty() ? opts.cwd : !default_cwd_.empty() ? default_cwd_ : root_directory();

    std::string request(sizeof(cd::run_request_header), '\0');
    cd::run_request_header header{static_cast<std::uint32_t>(argv.size()), static_cast<std::uint32_t>(env.size()),
                                  static_cast<std::uint32_t>(candidates.size()), 0};
    for (const std::vector<std::string>* list : {&std::as_const(argv), &env, &candidates})
        for (const auto& item : *list) request.append(item.c_str(), item.size() + 1);
    request.append(cwd.c_str(), cwd.size() + 1);
    if (request.size() > state_->buffer.size() || argv.size() >= state_->argv.size() ||
        env.size() >= state_->envp.size() || candidates.size() >= state_->candidates.size())
        throw error(step::prepare, E2BIG, {},
                    "a run's argv and environment are limited to 128 KiB and 8191 entries each in a prepared sandbox");

    // The run's channel, then its streams.
    int ends[2];
    if (const long r = cd::sys::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends); r < 0)
        throw error(step::create_pipe, static_cast<int>(-r), {}, "a prepared run's channel");
    unique_fd mine(ends[0]), theirs(ends[1]);
    std::vector<int> fds{theirs.get()};
    std::vector<unique_fd> child_ends;
    unique_fd capture[3];
    const stdio* streams[3] = {&opts.std_in, &opts.std_out, &opts.std_err};
    for (int i = 0; i < 3; ++i) {
        const stdio& spec = *streams[i];
        const bool input = i == 0;
        int fd = -1;
        switch (spec.how) {
            case stdio::kind::inherit:
                fd = i;
                break;
            case stdio::kind::null:
                child_ends.push_back(detail::open_checked("/dev/null", input ? O_RDONLY : O_WRONLY, 0, step::open_stdio));
                fd = child_ends.back().get();
                break;
            case stdio::kind::file: {
                const int flags = spec.flags >= 0 ? spec.flags : (input ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC);
                child_ends.push_back(detail::open_checked(spec.path.c_str(), flags, spec.mode, step::open_stdio));
                fd = child_ends.back().get();
                break;
            }
            case stdio::kind::fd:
                fd = spec.fd;
                break;
            case stdio::kind::capture: {
                if (input) throw error(step::open_stdio, EINVAL, "std_in", "stdin cannot be captured");
                unique_fd read_end, write_end;
                detail::make_pipe(read_end, write_end);
                capture[i] = std::move(read_end);
                child_ends.push_back(std::move(write_end));
                fd = child_ends.back().get();
                break;
            }
            case stdio::kind::pipe:
                throw error(step::open_stdio, EINVAL, i == 0 ? "std_in" : i == 1 ? "std_out" : "std_err",
                            "a prepared run takes inherit, null, file, fd or capture");
        }
        if (!detail::fd_is_open(fd)) throw error(step::map_fds, EBADF, detail::fd_name(fd), "stdio fd is not open");
        fds.push_back(fd);
        header.streams |= 1U << i;
    }
    std::memcpy(request.data(), &header, sizeof header);

    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    iovec part{request.data(), request.size()};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    const auto start = detail::clock::now();
    long sent;
    do sent = cd::sys::sendmsg(requests_.get(), &message, MSG_NOSIGNAL);
    while (sent == -EINTR);
    if (sent < 0)
        throw error(step::wait_for_parent, static_cast<int>(-sent), {},
                    sent == -EPIPE || sent == -ECONNRESET ? "the prepared sandbox has ended" : "sending a run");
    theirs.reset();
    child_ends.clear();

    // started (with a pidfd) or failed
    cd::run_message answer{};
    alignas(cmsghdr) char answer_control[CMSG_SPACE(sizeof(int))];
    iovec answer_part{&answer, sizeof answer};
    msghdr reply{};
    reply.msg_iov = &answer_part;
    reply.msg_iovlen = 1;
    reply.msg_control = answer_control;
    reply.msg_controllen = sizeof answer_control;
    long got;
    do got = cd::sys::recvmsg(mine.get(), &reply, MSG_CMSG_CLOEXEC);
    while (got == -EINTR);
    unique_fd pidfd;
    if (const cmsghdr* h = CMSG_FIRSTHDR(&reply); h && h->cmsg_type == SCM_RIGHTS) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(h), sizeof fd);
        pidfd.reset(fd);
    }
    if (got != static_cast<long>(sizeof answer))
        throw error(step::wait_for_parent, got < 0 ? static_cast<int>(-got) : EPIPE, {},
                    "the prepared sandbox ended before the run started");
    if (answer.event == cd::run_event::failed) throw run_error(answer, program, cwd);

    prepared_run handle;
    handle.channel_ = std::move(mine);
    handle.pidfd_ = std::move(pidfd);
    handle.out_ = std::move(capture[1]);
    handle.err_ = std::move(capture[2]);
    handle.pid_ = answer.pid;
    handle.start_ = start;
    handle.timeout_ = opts.timeout;
    handle.kill_grace_ = opts.kill_grace;
    return handle;
}

template <class Unused>
template <class>
result basic_prepared_run<Unused>::wait() {
    namespace cd = ::ctr::detail;
    if (result_) return *result_;
    if (!channel_) throw error(step::wait, EINVAL, {}, "this prepared_run holds no run (default-constructed or moved from)");
    result r;
    std::optional<cd::run_message> ended;
    std::optional<detail::clock::time_point> deadline;
    if (timeout_.count() > 0) deadline = start_ + timeout_;
    bool termed = false, killed = false;
    for (;;) {
        pollfd ready[3];
        unsigned count = 0;
        if (!ended) ready[count++] = {channel_.get(), POLLIN, 0};
        if (out_) ready[count++] = {out_.get(), POLLIN, 0};
        if (err_) ready[count++] = {err_.get(), POLLIN, 0};
        if (count == 0) break;
        timespec wait_for{};
        const timespec* limit = nullptr;
        if (deadline && !ended && !killed) {
            const auto left = std::max(*deadline - detail::clock::now(), detail::clock::duration::zero());
            wait_for.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(left).count();
            wait_for.tv_nsec = (left - std::chrono::seconds(wait_for.tv_sec)).count();
            limit = &wait_for;
        }
        const long n = cd::sys::ppoll(ready, count, limit);
        if (n == -EINTR) continue;
        if (n < 0) throw error(step::wait, static_cast<int>(-n), {}, "waiting for a prepared run");
        if (n == 0) {
            // The deadline: SIGTERM first, SIGKILL after the grace.
            r.timed_out = true;
            if (!termed) {
                termed = true;
                cd::sys::pidfd_send_signal(pidfd_.get(), SIGTERM);
                deadline = detail::clock::now() + kill_grace_;
            } else {
                killed = true;
                cd::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
            }
            continue;
        }
        for (unsigned i = 0; i < count; ++i) {
            if (!(ready[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (!ended && ready[i].fd == channel_.get()) {
                cd::run_message m{};
                const long got = cd::sys::read(channel_.get(), &m, sizeof m);
                if (got == -EINTR || got == -EAGAIN) continue;
                if (got != static_cast<long>(sizeof m) || m.event != cd::run_event::ended)
                    throw error(step::wait, got < 0 ? static_cast<int>(-got) : ECHILD, {},
                                "the prepared sandbox ended before the run did");
                ended = m;
                continue;
            }
            std::string& into = ready[i].fd == out_.get() ? r.std_out : r.std_err;
            char chunk[16384];
            const long got = cd::sys::read(ready[i].fd, chunk, sizeof chunk);
            if (got == -EINTR || got == -EAGAIN) continue;
            if (got <= 0) (ready[i].fd == out_.get() ? out_ : err_).reset();
            else into.append(chunk, static_cast<std::size_t>(got));
        }
    }
    r.wall_time = detail::clock::now() - start_;
    const int status = ended->wait_status;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
        r.core_dumped = WCOREDUMP(status);
    }
    r.user_time = std::chrono::microseconds(ended->user_us);
    r.system_time = std::chrono::microseconds(ended->system_us);
    r.rusage_max_rss_bytes = static_cast<std::uint64_t>(ended->max_rss_kib) * 1024;
    pidfd_.reset();
    channel_.reset();
    result_ = r;
    return r;
}

}  // namespace ctr::process
// end ctr/prepared.hpp
// begin ctr/probe.hpp
// ctr::probe(): what this kernel and host let ctr do, and why not where not.


#include <linux/close_range.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/utsname.h>

#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr {

struct feature {
    bool available = false;
    std::string detail{};  // a version or note when available, the reason when not
};

// cgroup_layout and its to_string() are in detail/cgroup_layout.hpp, beside the
// parsing that cgroup::group shares with probe().

struct host_probe {
    std::string kernel_release;
    feature clone3;
    feature pidfd;
    feature clone_into_cgroup;
    feature close_range_cloexec;
    feature user_namespaces;
    feature time_namespaces;
    feature new_mount_api;
    feature mount_setattr;
    feature openat2;
    // "ABI N: " and what that ABI enforces, feature by feature.
    feature landlock;
    int landlock_abi = 0;  // 0: none
    cgroup_layout cgroups = cgroup_layout::none;
    std::string cgroup_detail;

    // Every feature with its name, in a fixed order, for printing. Copies,
    // so the list stays valid when the probe was a temporary.
    template <class = void>
    std::vector<std::pair<std::string_view, feature>> features() const {
        // Views, not literals: a pair from each length of literal would be
        // a constructor of its own to check, in every includer's compile.
        using namespace std::string_view_literals;
        return {{"clone3"sv, clone3},
                {"pidfd"sv, pidfd},
                {"clone_into_cgroup"sv, clone_into_cgroup},
                {"close_range_cloexec"sv, close_range_cloexec},
                {"user_namespaces"sv, user_namespaces},
                {"time_namespaces"sv, time_namespaces},
                {"new_mount_api"sv, new_mount_api},
                {"mount_setattr"sv, mount_setattr},
                {"openat2"sv, openat2},
                {"landlock"sv, landlock}};
    }
};

// One line a feature: "name: yes (detail)" or "name: no (reason)".
template <class = void>
inline std::string to_string(const host_probe& p) {
    std::string out = "kernel: " + p.kernel_release + '\n';
    for (const auto& [name, f] : p.features()) {
        out.append(name).append(": ").append(f.available ? "yes" : "no");
        if (!f.detail.empty()) out.append(" (").append(f.detail).append(")");
        out += '\n';
    }
    out.append("cgroups: ").append(to_string(p.cgroups));
    if (!p.cgroup_detail.empty()) out.append(" (").append(p.cgroup_detail).append(")");
    out += '\n';
    return out;
}

// The same, to a stream. A template, so that this header needs only
// <iosfwd>: <ostream> is the caller's, who has it to print at all.
template <typename Traits>
std::basic_ostream<char, Traits>& operator<<(std::basic_ostream<char, Traits>& out, const host_probe& p) {
    return out << to_string(p);
}

namespace detail {

using ns::detail::errno_text;

template <class = void>
inline int probe_child_exit(void*) { return 0; }

template <class = void>
inline feature probe_user_namespaces() {
    child_stack stack;
    if (const long r = stack.allocate(); r < 0) return {false, "cannot allocate a stack: " + errno_text(r)};
    clone_args args{};
    args.flags = CLONE_NEWUSER | CLONE_PIDFD;
    int pidfd = -1;
    args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<std::uint64_t>(stack.lowest());
    args.stack_size = child_stack::usable_size;
    long pid = sys::clone3(&args, sizeof args, probe_child_exit, nullptr);
    if (pid == -ENOSYS) pid = sys::clone(probe_child_exit, stack.top(), CLONE_NEWUSER | CLONE_PIDFD | SIGCHLD, nullptr, &pidfd);
    if (pid < 0) return {false, ns::detail::user_namespace_blocker(pid)};
    siginfo_t info{};
    sys::waitid(P_PIDFD, pidfd, &info, WEXITED, nullptr);
    sys::close(pidfd);
    if (auto apparmor = read_first_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
        apparmor && *apparmor == "1" && raw::call(SYS_geteuid) != 0)
        return {true, "created, but AppArmor may deny capabilities inside (apparmor_restrict_unprivileged_userns=1)"};
    return {true, {}};
}

template <class = void>
inline feature probe_clone_into_cgroup(const feature& clone3) {
    if (!clone3.available) return {false, "needs clone3"};
    // A closed cgroup fd: a kernel that knows CLONE_INTO_CGROUP rejects it
    // with EBADF before it creates anything; an older one says EINVAL.
    clone_args args{};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = 0x7ffffffe;
    const long r = raw::call(SYS_clone3, &args, sizeof args);
    if (r == 0) sys::exit_group(0);  // cannot happen for a closed fd; never continue in a stray child
    if (r > 0) {
        siginfo_t info{};
        sys::waitid(P_PID, static_cast<int>(r), &info, WEXITED, nullptr);
        return {true, {}};
    }
    if (r == -EBADF) return {true, {}};
    return {false, "the kernel rejects it (Linux 5.7 or later needed): " + errno_text(r)};
}

template <class = void>
inline void probe_cgroups(host_probe& p) {
    const auto mountinfo = read_small_file("/proc/self/mountinfo");
    if (!mountinfo) {
        p.cgroup_detail = "cannot read /proc/self/mountinfo";
        return;
    }
    std::vector<std::string> v1_controllers;
    std::string v2_mount;
    for (const auto& m : parse_cgroup_mounts(*mountinfo)) {
        if (m.v2 && v2_mount.empty()) v2_mount = m.mount_point;
        if (!m.v2) v1_controllers.insert(v1_controllers.end(), m.controllers.begin(), m.controllers.end());
    }
    std::string v2_controllers;
    if (!v2_mount.empty()) v2_controllers = read_first_line(v2_mount + "/cgroup.controllers").value_or("");
    if (!v1_controllers.empty() && !v2_mount.empty()) p.cgroups = cgroup_layout::hybrid;
    else if (!v1_controllers.empty()) p.cgroups = cgroup_layout::v1;
    else if (!v2_mount.empty()) p.cgroups = cgroup_layout::v2;
    std::string detail;
    if (!v1_controllers.empty()) {
        detail += "v1 controllers:";
        for (const auto& c : v1_controllers) detail += " " + c;
    }
    if (!v2_mount.empty()) {
        if (!detail.empty()) detail += "; ";
        detail += "v2 at " + v2_mount + " with controllers: " + (v2_controllers.empty() ? "none" : v2_controllers);
    }
    p.cgroup_detail = detail;
}

}  // namespace detail

// Asks the kernel, without side effects beyond short-lived probe children.
template <class = void>
inline host_probe probe() {
    using detail::errno_text;
    namespace sys = detail::sys;
    namespace raw = detail::raw;
    host_probe p;
    utsname name{};
    if (uname(&name) == 0) p.kernel_release = name.release;

    // clone3 with a zero size always fails: EINVAL if the call exists.
    if (const long r = raw::call(SYS_clone3, nullptr, 0); r == -ENOSYS)
        p.clone3 = {false, "ENOSYS: Linux older than 5.3, or a seccomp filter refuses it; clone(2) is used instead"};
    else
        p.clone3 = {true, {}};

    if (const long fd = sys::pidfd_open(static_cast<int>(sys::getpid()), 0); fd >= 0) {
        sys::close(static_cast<int>(fd));
        p.pidfd = {true, {}};
    } else {
        p.pidfd = {false, "pidfd_open: " + errno_text(fd) + " (Linux 5.3 or later needed)"};
    }

    p.clone_into_cgroup = detail::probe_clone_into_cgroup(p.clone3);

    if (const long r = sys::close_range(~0U - 1, ~0U - 1, CLOSE_RANGE_CLOEXEC); r == 0)
        p.close_range_cloexec = {true, {}};
    else
        p.close_range_cloexec = {false, errno_text(r) + " (Linux 5.11 or later); /proc/self/fd is walked instead"};

    p.user_namespaces = detail::probe_user_namespaces();

    if (raw::call(SYS_access, "/proc/self/ns/time", F_OK) == 0) p.time_namespaces = {true, {}};
    else p.time_namespaces = {false, "no /proc/self/ns/time (Linux 5.6 or later with CONFIG_TIME_NS)"};

    // Each call is made so that it fails on its arguments if the kernel has it.
    if (const long r = raw::call(SYS_open_tree, -1, "", 0); r == -ENOSYS)
        p.new_mount_api = {false, "open_tree: ENOSYS (Linux 5.2 or later); mount(2) is used instead"};
    else
        p.new_mount_api = {true, {}};
    if (const long r = raw::call(SYS_mount_setattr, -1, "", 0, nullptr, 0); r == -ENOSYS)
        p.mount_setattr = {false, "ENOSYS (Linux 5.12 or later); each submount is remounted instead"};
    else
        p.mount_setattr = {true, {}};

    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_MAGICLINKS;
    if (const long fd = raw::call(SYS_openat2, AT_FDCWD, "/", &how, sizeof how); fd >= 0) {
        sys::close(static_cast<int>(fd));
        p.openat2 = {true, {}};
    } else {
        p.openat2 = {false, "openat2: " + errno_text(fd) + " (Linux 5.6 or later)"};
    }

    if (const long abi = sys::landlock_create_ruleset(nullptr, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */); abi > 0) {
        p.landlock_abi = static_cast<int>(abi);
        std::string detail = "ABI " + std::to_string(abi) + ":";
        for (const landlock::detail::abi_feature& f : landlock::detail::abi_features)
            if (f.abi <= abi) detail.append(f.abi == 1 ? " " : "; ").append(f.what);
        p.landlock = {true, std::move(detail)};
    } else if (abi == -EOPNOTSUPP)
        p.landlock = {false, "built in but disabled at boot (add landlock to the lsm= kernel parameter)"};
    else
        p.landlock = {false, errno_text(abi) + " (Linux 5.13 or later with CONFIG_SECURITY_LANDLOCK)"};

    detail::probe_cgroups(p);
    return p;
}

}  // namespace ctr
// end ctr/probe.hpp
// begin ctr/seccomp_notify.hpp
// ctr::seccomp user notification: a supervisor in the caller that answers
// chosen system calls of a sandbox (Linux 5.0+).
//
//     auto f = ctr::seccomp::builder{}
//                  .default_action(ctr::seccomp::action::allow())
//                  .rule("connect", ctr::seccomp::action::notify())
//                  .build_shared();
//     auto child = ctr::process::spawn(argv, {.security = {.no_new_privileges = true, .seccomp = f}});
//     ctr::seccomp::supervisor guard(child.take_seccomp_listener(),
//         [](const ctr::seccomp::notification& call, ctr::seccomp::listener& from) {
//             return allowed(call, from) ? ctr::seccomp::response::continue_call()
//                                        : ctr::seccomp::response::fail_with(ECONNREFUSED);
//         });
//
// A notified call waits in the kernel until the listener answers it: fail
// with an errno, return a value without running (emulated), run as if
// unfiltered (continue_call), or return a new fd of the caller that refers
// to a file of the supervisor's (with_fd). Once every copy of the listener
// is closed (a supervisor that ended or died), notified calls fail with
// ENOSYS: they never hang.
//
// What the supervisor reads of the caller (a path, a socket address) lives
// in the caller's memory, which another of its threads may change after the
// read: continue_call() on such a decision is a race the caller can win
// (seccomp_unotify(2)). For a decision that must hold, emulate the call on
// what was read: take the caller's fd (listener::take_fd), do the call on it
// here, and answer with its result (examples/connect_allowlist.cpp).


#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ctr::seccomp {

// One notified call, as the kernel reported it.
struct notification {
    std::uint64_t id = 0;              // the kernel's cookie for this call
    pid_t pid = 0;                     // the calling thread, as the supervisor's pid namespace sees it
    int syscall = -1;                  // its number in `arch`'s table
    std::uint32_t arch = 0;            // AUDIT_ARCH_X86_64, or another ABI's
    std::uint64_t instruction_pointer = 0;
    std::array<std::uint64_t, 6> args{};
};

// The answer to a notification.
class response {
public:
    enum class kind : std::uint8_t { fail_with, value, continue_call, with_fd };

    // The call returns -1 with this errno (1..4095), without running.
    static constexpr response fail_with(int errno_value) noexcept { return {kind::fail_with, errno_value, 0, -1, false}; }
    // The call returns `v` without running: an emulated call.
    static constexpr response value(std::int64_t v) noexcept { return {kind::value, 0, v, -1, false}; }
    // The call runs as if the filter had allowed it. Not a security decision
    // on anything the call's arguments point to (see the header's comment).
    static constexpr response continue_call() noexcept { return {kind::continue_call, 0, 0, -1, false}; }
    // The call returns a new fd of the caller that refers to the supervisor's
    // open file `fd` (which the supervisor keeps and closes itself): an
    // emulated open, socket or accept. Linux 5.9+ (atomic with the answer
    // from 5.14).
    static constexpr response with_fd(int fd, bool close_on_exec = true) noexcept {
        return {kind::with_fd, 0, 0, fd, close_on_exec};
    }

    constexpr kind which() const noexcept { return kind_; }
    constexpr int errno_value() const noexcept { return errno_; }
    constexpr std::int64_t return_value() const noexcept { return value_; }
    constexpr int fd() const noexcept { return fd_; }
    constexpr bool close_on_exec() const noexcept { return cloexec_; }

private:
    constexpr response(kind k, int e, std::int64_t v, int fd, bool cloexec) noexcept
        : kind_(k), errno_(e), value_(v), fd_(fd), cloexec_(cloexec) {}
    kind kind_;
    int errno_;
    std::int64_t value_;
    int fd_;
    bool cloexec_;
};

namespace detail {
using namespace ::ctr::detail;

// The sizes of the kernel's structures, which may be larger than this
// header's (a newer kernel): receive and answer through buffers of that size.
struct notify_sizes {
    std::size_t notif = sizeof(seccomp_notif);
    std::size_t resp = sizeof(seccomp_notif_resp);
};
template <class = void>
inline notify_sizes kernel_notify_sizes() {
    seccomp_notif_sizes sizes{};
    if (const long r = sys::seccomp(SECCOMP_GET_NOTIF_SIZES, 0, &sizes); r < 0)
        throw error(step::install_seccomp, static_cast<int>(-r), {},
                    "asking the kernel for its notification sizes: seccomp user notification needs Linux 5.0+");
    return {std::max<std::size_t>(sizes.seccomp_notif, sizeof(seccomp_notif)),
            std::max<std::size_t>(sizes.seccomp_notif_resp, sizeof(seccomp_notif_resp))};
}
}  // namespace detail

// The listener of a filter that notifies (child::take_seccomp_listener):
// receives the notified calls and answers them. Owns the fd; closing it
// (the destructor) makes the calls that nobody answers fail with ENOSYS.
class listener {
public:
    listener() = default;
    template <class = void>
    explicit listener(unique_fd fd) : fd_(std::move(fd)) {
        if (!fd_) throw error(step::install_seccomp, EBADF, {}, "no listener: the filter notifies nothing, or it was taken");
        sizes_ = detail::kernel_notify_sizes();
    }

    int fd() const noexcept { return fd_.get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

    // The next notified call, waiting at most `timeout` (negative: forever).
    // Nothing when the time passed, or once no process uses the filter any
    // more (every sandboxed process ended).
    template <class = void>
    std::optional<notification> receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) {
        for (;;) {
            pollfd p{fd_.get(), POLLIN, 0};
            timespec limit{static_cast<time_t>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000) * 1000000L};
            const long ready = detail::sys::ppoll(&p, 1, timeout.count() < 0 ? nullptr : &limit);
            if (ready == -EINTR) continue;
            if (ready < 0) throw error(step::install_seccomp, static_cast<int>(-ready), {}, "polling the listener");
            if (ready == 0) return std::nullopt;
            if ((p.revents & POLLIN) == 0) return std::nullopt;  // POLLHUP: no process uses the filter
            std::vector<std::uint64_t> buffer((sizes_.notif + 7) / 8, 0);
            const long r = detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_RECV, reinterpret_cast<long>(buffer.data()));
            // ENOENT: the caller went away (killed, or its wait interrupted)
            // between poll and receive: wait for the next.
            if (r == -ENOENT || r == -EINTR) continue;
            if (r < 0) throw error(step::install_seccomp, static_cast<int>(-r), {}, "receiving a notification");
            seccomp_notif got{};
            std::memcpy(&got, buffer.data(), sizeof got);
            notification n;
            n.id = got.id;
            n.pid = static_cast<pid_t>(got.pid);
            n.syscall = got.data.nr;
            n.arch = got.data.arch;
            n.instruction_pointer = got.data.instruction_pointer;
            for (std::size_t i = 0; i < 6; ++i) n.args[i] = got.data.args[i];
            return n;
        }
    }

    // Whether the call still waits for its answer. After reading the
    // caller's memory, this is what says the bytes were its: the thread
    // that made the call is still there, not another that reused its id.
    template <class = void>
    bool still_waiting(const notification& n) const noexcept {
        std::uint64_t id = n.id;
        return detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, reinterpret_cast<long>(&id)) == 0;
    }

    // Answers the call. False when it no longer waits: answered already,
    // or the caller was killed, or a signal interrupted it (then the call
    // is restarted and notified again).
    template <class = void>
    bool answer(const notification& n, const response& how) {
        if (how.which() == response::kind::with_fd) return answer_with_fd(n, how);
        if (how.which() == response::kind::fail_with && (how.errno_value() < 1 || how.errno_value() > 4095))
            throw error(step::install_seccomp, EINVAL, std::to_string(how.errno_value()),
                        "an answer's errno must be in 1..4095");
        std::vector<std::uint64_t> buffer((sizes_.resp + 7) / 8, 0);
        seccomp_notif_resp resp{};
        resp.id = n.id;
        switch (how.which()) {
            case response::kind::fail_with: resp.error = -how.errno_value(); break;
            case response::kind::value: resp.val = how.return_value(); break;
            case response::kind::continue_call: resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; break;
            case response::kind::with_fd: break;
        }
        std::memcpy(buffer.data(), &resp, sizeof resp);
        const long r = detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_SEND, reinterpret_cast<long>(buffer.data()));
        // ENOENT: the call no longer waits; EINPROGRESS: it was answered.
        if (r == -ENOENT || r == -EINPROGRESS) return false;
        if (r < 0)
            throw error(step::install_seccomp, static_cast<int>(-r), {},
                        r == -EINVAL && how.which() == response::kind::continue_call
                            ? "answering a notification: continue_call needs Linux 5.5+"
                            : "answering a notification");
        return true;
    }

    // Up to `size` bytes of the caller's memory at `address` (fewer where
    // its mapping ends), checked with still_waiting() afterwards. Throws
    // when the caller is gone (ESRCH) or the memory cannot be read.
    template <class = void>
    std::string read_memory(const notification& n, std::uint64_t address, std::size_t size) const {
        const unique_fd mem = open_memory(n);
        std::string out(size, '\0');
        std::size_t got = 0;
        while (got < size) {
            const long r = detail::sys::pread64(mem.get(), out.data() + got, size - got,
                                                static_cast<long>(address + got));
            if (r == -EINTR) continue;
            if (r < 0 && got == 0) throw error(step::install_seccomp, static_cast<int>(-r), memory_path(n), "reading the caller's memory");
            if (r <= 0) break;
            got += static_cast<std::size_t>(r);
        }
        out.resize(got);
        if (!still_waiting(n)) throw error(step::install_seccomp, ESRCH, memory_path(n), "the caller went away while its memory was read");
        return out;
    }

    // A NUL-terminated string of the caller's (a path), at most `max` bytes;
    // EFAULT when no end is found within them.
    template <class = void>
    std::string read_string(const notification& n, std::uint64_t address, std::size_t max = 4096) const {
        const unique_fd mem = open_memory(n);
        std::string out;
        char chunk[256];
        while (out.size() < max) {
            // Never across a page boundary: the next page may be unmapped
            // although the string ends before it.
            const std::uint64_t at = address + out.size();
            const std::size_t to_page_end = static_cast<std::size_t>(4096 - (at % 4096));
            const std::size_t want = std::min({sizeof chunk, to_page_end, max - out.size()});
            const long r = detail::sys::pread64(mem.get(), chunk, want, static_cast<long>(at));
            if (r == -EINTR) continue;
            if (r <= 0) throw error(step::install_seccomp, r < 0 ? static_cast<int>(-r) : EFAULT, memory_path(n), "reading a string of the caller's");
            const std::size_t len = static_cast<std::size_t>(r);
            if (const void* end = std::memchr(chunk, '\0', len)) {
                out.append(chunk, static_cast<std::size_t>(static_cast<const char*>(end) - chunk));
                if (!still_waiting(n)) throw error(step::install_seccomp, ESRCH, memory_path(n), "the caller went away while its memory was read");
                return out;
            }
            out.append(chunk, len);
        }
        throw error(step::install_seccomp, EFAULT, memory_path(n), "no end of the string within " + std::to_string(max) + " bytes");
    }

    // The caller's fd `target_fd`, as a new fd of this process (Linux 5.6+,
    // pidfd_getfd): to do the call on the caller's own file, socket or
    // directory, and answer with its result.
    template <class = void>
    unique_fd take_fd(const notification& n, int target_fd) const {
        const long pidfd = detail::sys::pidfd_open(n.pid, 0);
        if (pidfd < 0) throw error(step::install_seccomp, static_cast<int>(-pidfd), "pid " + std::to_string(n.pid), "opening the caller");
        const unique_fd caller(static_cast<int>(pidfd));
        const long fd = detail::sys::pidfd_getfd(caller.get(), target_fd, 0);
        if (fd < 0)
            throw error(step::install_seccomp, static_cast<int>(-fd), "fd " + std::to_string(target_fd) + " of pid " + std::to_string(n.pid),
                        fd == -EPERM ? "taking the caller's fd needs ptrace access to it" : "taking the caller's fd");
        unique_fd taken(static_cast<int>(fd));
        if (!still_waiting(n)) throw error(step::install_seccomp, ESRCH, "pid " + std::to_string(n.pid), "the caller went away while its fd was taken");
        return taken;
    }

private:
    static std::string memory_path(const notification& n) { return "/proc/" + std::to_string(n.pid) + "/mem"; }

    template <class = void>
    unique_fd open_memory(const notification& n) const {
        const std::string path = memory_path(n);
        const long fd = detail::sys::openat(AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) throw error(step::install_seccomp, static_cast<int>(-fd), path, "opening the caller's memory");
        return unique_fd(static_cast<int>(fd));
    }

    template <class = void>
    bool answer_with_fd(const notification& n, const response& how) {
        seccomp_notif_addfd add{};
        add.id = n.id;
        add.flags = SECCOMP_ADDFD_FLAG_SEND;
        add.srcfd = static_cast<std::uint32_t>(how.fd());
        add.newfd_flags = how.close_on_exec() ? O_CLOEXEC : 0;
        long r = detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_ADDFD, reinterpret_cast<long>(&add));
        if (r == -EINVAL) {
            // Before Linux 5.14: add the fd, then answer with its number.
            add.flags = 0;
            r = detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_ADDFD, reinterpret_cast<long>(&add));
            if (r >= 0) return answer(n, response::value(r));
        }
        if (r == -ENOENT) return false;
        if (r < 0)
            throw error(step::install_seccomp, static_cast<int>(-r), "fd " + std::to_string(how.fd()),
                        r == -ENOTTY || r == -EINVAL ? "answering with an fd needs Linux 5.9+"
                                                     : "adding the supervisor's fd to the caller");
        return true;
    }

    unique_fd fd_;
    detail::notify_sizes sizes_{};
};

// Serves a listener on a thread of its own: every notified call goes to
// `decide`, and its answer to the call. Until destroyed, or until no
// process uses the filter any more. A `decide` that throws fails the call
// with EPERM (nothing is granted by mistake) and is kept in failure().
template <class>
class basic_supervisor {
public:
    using decision = std::function<response(const notification&, listener&)>;

    template <class = void>
    basic_supervisor(unique_fd listener_fd, decision decide)
        : listener_(std::move(listener_fd)), decide_(std::move(decide)) {
        int ends[2];
        if (const long r = ::ctr::detail::sys::pipe2(ends, O_CLOEXEC); r < 0)
            throw error(step::create_pipe, static_cast<int>(-r), {}, "the supervisor's stop channel");
        stop_read_.reset(ends[0]);
        stop_write_.reset(ends[1]);
        thread_ = std::thread([this] { serve(); });
    }
    basic_supervisor(const basic_supervisor&) = delete;
    basic_supervisor& operator=(const basic_supervisor&) = delete;
    // Stops serving and closes the listener: the sandbox's notified calls
    // fail with ENOSYS from then on.
    ~basic_supervisor() {
        const char byte = 1;
        (void)::ctr::detail::sys::write(stop_write_.get(), &byte, 1);
        if (thread_.joinable()) thread_.join();
    }

    // Calls answered so far.
    std::uint64_t answered() const noexcept { return answered_.load(std::memory_order_relaxed); }
    // The first exception `decide` threw, if any.
    template <class = void>
    std::exception_ptr failure() const {
        std::lock_guard lock(failure_mutex_);
        return failure_;
    }

private:
    template <class = void>
    void serve() {
        for (;;) {
            pollfd p[2] = {{listener_.fd(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
            const long ready = ::ctr::detail::sys::ppoll(p, 2, nullptr);
            if (ready == -EINTR) continue;
            if (ready < 0 || p[1].revents != 0) return;
            if ((p[0].revents & POLLIN) == 0) return;  // no process uses the filter any more
            std::optional<notification> n;
            try {
                n = listener_.receive(std::chrono::milliseconds(0));
            } catch (...) {
                keep_failure(std::current_exception());
                return;
            }
            if (!n) continue;
            response how = response::fail_with(EPERM);
            try {
                how = decide_(*n, listener_);
            } catch (...) {
                keep_failure(std::current_exception());
                how = response::fail_with(EPERM);
            }
            // Counted before the answer, which lets the caller go on: whoever
            // sees the call's effect sees it counted.
            answered_.fetch_add(1, std::memory_order_relaxed);
            try {
                if (!listener_.answer(*n, how)) answered_.fetch_sub(1, std::memory_order_relaxed);
            } catch (...) {
                keep_failure(std::current_exception());
                // The answer itself was refused (a bad errno, an fd that is
                // not open): the call must not wait forever.
                try {
                    listener_.answer(*n, response::fail_with(EPERM));
                } catch (...) {
                }
            }
        }
    }
    template <class = void>
    void keep_failure(std::exception_ptr e) {
        std::lock_guard lock(failure_mutex_);
        if (!failure_) failure_ = std::move(e);
    }

    listener listener_;
    decision decide_;
    unique_fd stop_read_, stop_write_;
    std::atomic<std::uint64_t> answered_{0};
    mutable std::mutex failure_mutex_;
    std::exception_ptr failure_;
    std::thread thread_;
};
using supervisor = basic_supervisor<void>;

}  // namespace ctr::seccomp
// end ctr/seccomp_notify.hpp
