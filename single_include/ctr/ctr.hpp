// Generated from include/ctr/ctr.hpp by `python3 tools/amalgamate.py`; do not edit.
// Change the headers under include/ and run that command again.
#pragma once
// ctr: header-only Linux process isolation. Include this one header.

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
        return text;
    }

    ctr::step step_;
    std::string path_;
};

}  // namespace ctr
// end ctr/error.hpp
// begin ctr/probe.hpp
// ctr::probe(): what this kernel and host let ctr do, and why not where not.

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
#include <cstddef>

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
inline long mmap(void** out, std::size_t length, int prot, int flags) noexcept {
    CTR_FAULT_CHECK(mmap);
    const long result = raw::call(SYS_mmap, 0L, length, prot, flags, -1, 0L);
    if (result < 0 && result > -4096) return result;
    *out = reinterpret_cast<void*>(result);
    return 0;
}
inline long munmap(void* address, std::size_t length) noexcept {
    CTR_FAULT_CHECK(munmap);
    return raw::call(SYS_munmap, address, length);
}
inline long clone3(void* args, std::size_t size, int (*entry)(void*), void* argument) noexcept {
    CTR_FAULT_CHECK(clone3);
    return raw::clone3_run(args, size, entry, argument);
}
// clone(2) through glibc's wrapper, which provides the stack switch; glibc
// reports failure through errno, read here in the parent only.
inline long clone(int (*entry)(void*), void* stack_top, int flags, void* argument, int* pidfd) noexcept {
    CTR_FAULT_CHECK(clone);
    const int pid = ::clone(entry, stack_top, flags, argument, pidfd);
    return pid < 0 ? -errno : pid;
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

[[noreturn]] inline void exit_group(int status) noexcept {
    for (;;) raw::call(SYS_exit_group, status);
}



}  // namespace ctr::detail::sys
// end ctr/detail/syscall.hpp

#include <linux/close_range.h>
#include <sys/prctl.h>

#include <cstddef>
#include <cstdint>

// The child runs on a stack the sanitizer runtimes know nothing about and
// with the parent thread's TLS; keep their instrumentation out of it.
#if defined(__clang__)
#define CTR_CHILD_CODE __attribute__((no_sanitize("address", "undefined", "thread"), noinline))
#else
#define CTR_CHILD_CODE __attribute__((no_sanitize_address, no_sanitize_undefined, noinline))
#endif

namespace ctr::detail {

enum class child_op_code : std::uint8_t {
    reset_signals,        // every disposition back to SIG_DFL
    die_with_parent,      // a = signal; b = parent pid to compare with (0: skip the check)
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
    restore_signal_mask,  // unblock everything the parent blocked around clone
    exec,                 // data = const char* const* candidates (null-terminated)
};

struct child_op {
    child_op_code code;
    ctr::step step;
    long a = 0;
    long b = 0;
    long c = -1;
    const void* data = nullptr;
};

// What a failed child sends the parent before it exits.
struct child_report {
    std::uint32_t op_index;
    std::int32_t error;
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
};

inline constexpr int child_failed_exit_code = 127;

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

// Marks fds [first, last] close-on-exec. close_range(CLOSE_RANGE_CLOEXEC)
// needs Linux 5.11; before that, walk /proc/self/fd, and without /proc, try
// every number up to the fd limit. Async-signal-safe.
CTR_CHILD_CODE inline long child_cloexec_range(unsigned first, unsigned last) noexcept {
    long r = sys::close_range(first, last, CLOSE_RANGE_CLOEXEC);
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
                if (numeric && fd >= first && fd <= last && fd != static_cast<unsigned>(dir))
                    sys::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
                offset += length;
            }
        }
        sys::close(static_cast<int>(dir));
        return 0;
    }
    rlimit limit{};
    raw::call(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &limit);
    const unsigned end = limit.rlim_cur < last ? static_cast<unsigned>(limit.rlim_cur) : last;
    for (unsigned fd = first; fd < end; ++fd) sys::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return 0;
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
            permission_denied = true;
        } else if (last != -ENOENT && last != -ENOTDIR && last != -ESTALE) {
            return last;
        }
    }
    return permission_denied ? -EACCES : last;
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
            return child_cloexec_range(static_cast<unsigned>(op.a),
                                       op.b < 0 ? ~0U : static_cast<unsigned>(op.b));
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
        case child_op_code::restore_signal_mask: {
            const unsigned long none = 0;
            return sys::rt_sigprocmask(SIG_SETMASK, &none, nullptr);
        }
        case child_op_code::exec:
            return child_exec(static_cast<const char* const*>(op.data), view.argv, view.envp);
    }
    return -EINVAL;
}

// The child's entry point, called on the new stack by clone. Never returns
// on success (exec replaces it); on failure it reports (op, errno) and exits.
// Async-signal-safe.
CTR_CHILD_CODE inline int child_main(void* argument) noexcept {
    const auto& view = *static_cast<const child_view*>(argument);
    for (std::size_t i = 0; i < view.op_count; ++i) {
        const long r = child_run_op(view, view.ops[i]);
        if (r < 0) {
            const child_report report{static_cast<std::uint32_t>(i), static_cast<std::int32_t>(-r)};
            sys::write(view.report_fd, &report, sizeof report);
            sys::exit_group(child_failed_exit_code);
        }
    }
    // A program always ends with exec, so reaching here is a bug in the plan.
    const child_report report{static_cast<std::uint32_t>(view.op_count), EINVAL};
    sys::write(view.report_fd, &report, sizeof report);
    sys::exit_group(child_failed_exit_code);
}

}  // namespace ctr::detail
// end ctr/detail/child_program.hpp
// begin ctr/detail/clone.hpp
// Creating the child: its stack, and clone3 with a clone(2) fallback.


#include <linux/sched.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace ctr::detail {

// The stack the child runs on until exec. A guard page below it turns an
// overflow into a fault instead of a write into the parent's memory.
class child_stack {
public:
    static constexpr std::size_t usable_size = 64 * 1024;
    static constexpr std::size_t guard_size = 4096;

    child_stack() = default;
    child_stack(child_stack&& other) noexcept : base_(std::exchange(other.base_, nullptr)) {}
    child_stack& operator=(child_stack&& other) noexcept {
        if (this != &other) {
            release_mapping();
            base_ = std::exchange(other.base_, nullptr);
        }
        return *this;
    }
    ~child_stack() { release_mapping(); }

    // Returns 0 or -errno.
    long allocate() noexcept {
        void* base = nullptr;
        const long r = sys::mmap(&base, guard_size + usable_size, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE);
        if (r < 0) return r;
        raw::call(SYS_mprotect, base, guard_size, PROT_NONE);
        base_ = base;
        return 0;
    }
    void* lowest() const noexcept { return static_cast<char*>(base_) + guard_size; }
    void* top() const noexcept { return static_cast<char*>(base_) + guard_size + usable_size; }

private:
    void release_mapping() noexcept {
        if (base_) sys::munmap(base_, guard_size + usable_size);
        base_ = nullptr;
    }
    void* base_ = nullptr;
};

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
    if (request.cgroup_fd >= 0) args.cgroup = static_cast<std::uint64_t>(request.cgroup_fd);
    long pid = sys::clone3(&args, sizeof args, child_main, &view);

    // clone3 is missing before Linux 5.3 and is often answered with ENOSYS
    // by container seccomp profiles; clone(2) does the same job unless a
    // flag only clone3 has was asked for.
    if (pid == -ENOSYS && !request.needs_clone3 && request.cgroup_fd < 0) {
        pid = sys::clone(child_main, stack.top(), static_cast<int>(flags) | SIGCHLD, &view, &outcome.pidfd);
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
// begin ctr/detail/file.hpp
// Small whole-file reads for /proc and /sys, through the syscall layer.


#include <optional>
#include <string>

namespace ctr::detail {

// The file's contents, or nothing if it cannot be opened or read.
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
inline std::optional<std::string> read_first_line(const std::string& path) {
    auto contents = read_small_file(path);
    if (!contents) return std::nullopt;
    contents->resize(contents->find('\n') == std::string::npos ? contents->size() : contents->find('\n'));
    return contents;
}

}  // namespace ctr::detail
// end ctr/detail/file.hpp

#include <linux/close_range.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/utsname.h>

#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr {

struct feature {
    bool available = false;
    std::string detail{};  // a version or note when available, the reason when not
};

enum class cgroup_layout : std::uint8_t { none, v1, v2, hybrid };

inline std::string_view to_string(cgroup_layout layout) noexcept {
    switch (layout) {
        case cgroup_layout::none: return "none";
        case cgroup_layout::v1: return "v1";
        case cgroup_layout::v2: return "v2";
        case cgroup_layout::hybrid: return "hybrid";
    }
    return "unknown";
}

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
    feature landlock;
    cgroup_layout cgroups = cgroup_layout::none;
    std::string cgroup_detail;

    // Every feature with its name, in a fixed order, for printing. Copies,
    // so the list stays valid when the probe was a temporary.
    std::vector<std::pair<std::string_view, feature>> features() const {
        return {{"clone3", clone3},
                {"pidfd", pidfd},
                {"clone_into_cgroup", clone_into_cgroup},
                {"close_range_cloexec", close_range_cloexec},
                {"user_namespaces", user_namespaces},
                {"time_namespaces", time_namespaces},
                {"new_mount_api", new_mount_api},
                {"mount_setattr", mount_setattr},
                {"openat2", openat2},
                {"landlock", landlock}};
    }
};

// One line a feature: "name: yes (detail)" or "name: no (reason)".
inline std::ostream& operator<<(std::ostream& out, const host_probe& p) {
    out << "kernel: " << p.kernel_release << '\n';
    for (const auto& [name, f] : p.features())
        out << name << ": " << (f.available ? "yes" : "no") << (f.detail.empty() ? "" : " (" + f.detail + ")")
            << '\n';
    out << "cgroups: " << to_string(p.cgroups) << (p.cgroup_detail.empty() ? "" : " (" + p.cgroup_detail + ")")
        << '\n';
    return out;
}

namespace detail {

inline std::string errno_text(long negative_errno) {
    return std::generic_category().message(static_cast<int>(-negative_errno));
}

// Why this process cannot create a user namespace, as far as the host
// shows it. Used by probe() and by spawn's error for a failed CLONE_NEWUSER.
inline std::string user_namespace_blocker(long negative_errno) {
    if (auto max = read_first_line("/proc/sys/user/max_user_namespaces"); max && *max == "0")
        return "user.max_user_namespaces is 0";
    if (negative_errno == -ENOSPC) return "the user namespace limit (user.max_user_namespaces) is reached";
    if (auto clone = read_first_line("/proc/sys/kernel/unprivileged_userns_clone");
        clone && *clone == "0" && raw::call(SYS_geteuid) != 0)
        return "kernel.unprivileged_userns_clone is 0";
    if (auto apparmor = read_first_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
        apparmor && *apparmor == "1" && raw::call(SYS_geteuid) != 0)
        return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns is 1)";
    if (auto status = read_small_file("/proc/self/status"); status && status->find("Seccomp:\t2") != std::string::npos)
        return "a seccomp filter on this process (an outer container?) refuses it: " + errno_text(negative_errno);
    if (negative_errno == -EPERM) {
        // The kernel refuses user namespaces to a process in a chroot.
        struct stat root {}, init_root {};
        if (raw::call(SYS_stat, "/", &root) == 0 && raw::call(SYS_stat, "/proc/1/root/.", &init_root) == 0 &&
            (root.st_ino != init_root.st_ino || root.st_dev != init_root.st_dev))
            return "this process runs in a chroot, where the kernel refuses user namespaces";
    }
    return errno_text(negative_errno);
}

inline int probe_child_exit(void*) { return 0; }

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
    if (pid < 0) return {false, user_namespace_blocker(pid)};
    siginfo_t info{};
    sys::waitid(P_PIDFD, pidfd, &info, WEXITED, nullptr);
    sys::close(pidfd);
    if (auto apparmor = read_first_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
        apparmor && *apparmor == "1" && raw::call(SYS_geteuid) != 0)
        return {true, "created, but AppArmor may deny capabilities inside (apparmor_restrict_unprivileged_userns=1)"};
    return {true, {}};
}

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

inline void probe_cgroups(host_probe& p) {
    const auto mountinfo = read_small_file("/proc/self/mountinfo");
    if (!mountinfo) {
        p.cgroup_detail = "cannot read /proc/self/mountinfo";
        return;
    }
    std::vector<std::string> v1_controllers;
    std::string v2_mount;
    std::istringstream lines(*mountinfo);
    for (std::string line; std::getline(lines, line);) {
        // "... mountpoint options - fstype source superoptions"
        const auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream before(line.substr(0, dash)), after(line.substr(dash + 3));
        std::string id, parent, devices, root, mount_point, fstype, source, super_options;
        before >> id >> parent >> devices >> root >> mount_point;
        after >> fstype >> source >> super_options;
        if (fstype == "cgroup2" && v2_mount.empty()) v2_mount = mount_point;
        if (fstype == "cgroup") {
            std::istringstream options(super_options);
            for (std::string option; std::getline(options, option, ',');)
                if (option != "rw" && option != "ro" && option.find('=') == std::string::npos &&
                    option.rfind("no", 0) != 0 && option != "relatime")
                    v1_controllers.push_back(option);
        }
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

    if (const long abi = raw::call(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION); abi > 0)
        p.landlock = {true, "ABI " + std::to_string(abi)};
    else if (abi == -EOPNOTSUPP)
        p.landlock = {false, "built in but disabled at boot (add landlock to the lsm= kernel parameter)"};
    else
        p.landlock = {false, errno_text(abi) + " (Linux 5.13 or later with CONFIG_SECURITY_LANDLOCK)"};

    detail::probe_cgroups(p);
    return p;
}

}  // namespace ctr
// end ctr/probe.hpp
// begin ctr/process.hpp
// process::spawn: start a program in a child process and get back exactly
// how it ended.
//
// The launch is one straight line: the parent validates the options and
// turns them into a child program (detail/child_program.hpp), clones, the
// child runs that program and execs, and the parent learns over a
// close-on-exec channel whether exec happened or which step failed.

// begin ctr/unique_fd.hpp
// ctr::unique_fd: the owner of one file descriptor.


#include <utility>

namespace ctr {

// Move-only; closes its fd when it ends. No implicit conversion to int:
// get() borrows, release() hands ownership over.
class unique_fd {
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

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern "C" char** environ;

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

    static stdio inherit() { return {}; }
    static stdio null() { return {.how = kind::null}; }
    static stdio file(std::string path, int flags = -1, unsigned mode = 0644) {
        return {.how = kind::file, .path = std::move(path), .flags = flags, .mode = mode};
    }
    static stdio append_to(std::string path) {
        return file(std::move(path), O_WRONLY | O_CREAT | O_APPEND);
    }
    static stdio from_fd(int borrowed_fd) { return {.how = kind::fd, .fd = borrowed_fd}; }
    static stdio pipe() { return {.how = kind::pipe}; }
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

struct options {
    // The file to run; empty: argv[0], looked up in the child's PATH when it
    // has no '/'.
    std::string executable{};
    environment env{};
    std::string cwd{};  // empty: the parent's
    stdio std_in{};
    stdio std_out{};
    stdio std_err{};
    // Further fds for the child. Every other fd is closed at exec.
    std::vector<fd_mapping> fds{};
    // SIGKILL the child when the parent dies. The kernel ties this to the
    // thread that spawned: if that thread exits, the child is killed too.
    bool die_with_parent = false;
    // Wall-clock limit, counted from spawn and enforced while the caller
    // waits: SIGTERM, then SIGKILL after kill_grace. Zero: none.
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds kill_grace{2000};
    std::vector<rlimit_setting> rlimits{};
    std::optional<mode_t> umask{};
    bool new_session = false;  // setsid: no controlling terminal, own process group
    // Credentials to switch to, in this order: groups, gid, uid.
    std::optional<std::vector<gid_t>> groups{};
    std::optional<gid_t> gid{};
    std::optional<uid_t> uid{};
    clone_style clone = clone_style::shared_memory;
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
    std::uint64_t peak_rss_bytes = 0;  // ru_maxrss of the child and the children it waited for
    std::string std_out{};             // what stdio::capture() collected
    std::string std_err{};

    // Exited with status 0 before any timeout.
    bool success() const noexcept { return exit_code == 0 && !timed_out; }
};

namespace detail {

// Launch internals build on the library-wide ones.
using namespace ::ctr::detail;
using clock = std::chrono::steady_clock;

inline std::chrono::nanoseconds to_duration(const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

}  // namespace detail

// A running (or finished) child. Move-only; holds its pidfd. Its destructor
// kills and reaps a child that is still running, so no zombie is left;
// release() hands the pidfd (and the duty to reap) to the caller instead.
class child {
public:
    child() = default;
    child(child&&) noexcept = default;
    child& operator=(child&& other) noexcept {
        if (this != &other) {
            kill_and_reap();
            pid_ = other.pid_;
            pidfd_ = std::move(other.pidfd_);
            std_in_ = std::move(other.std_in_);
            std_out_ = std::move(other.std_out_);
            std_err_ = std::move(other.std_err_);
            capture_out_ = std::move(other.capture_out_);
            capture_err_ = std::move(other.capture_err_);
            captured_out_ = std::move(other.captured_out_);
            captured_err_ = std::move(other.captured_err_);
            start_ = other.start_;
            timeout_ = other.timeout_;
            kill_grace_ = other.kill_grace_;
            term_sent_ = other.term_sent_;
            kill_sent_ = other.kill_sent_;
            kill_at_ = other.kill_at_;
            result_ = std::move(other.result_);
        }
        return *this;
    }
    ~child() { kill_and_reap(); }

    pid_t pid() const noexcept { return pid_; }
    // For poll or epoll: readable once the child has exited. -1 after reaping.
    int pidfd() const noexcept { return pidfd_.get(); }
    bool valid() const noexcept { return static_cast<bool>(pidfd_) || result_.has_value(); }

    // The caller's ends of stdio::pipe() streams (empty otherwise).
    unique_fd& std_in() noexcept { return std_in_; }
    unique_fd& std_out() noexcept { return std_out_; }
    unique_fd& std_err() noexcept { return std_err_; }

    // Waits until the child ends (enforcing the timeout) and reaps it.
    // Calling it again returns the same result.
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
    void signal(int sig) {
        if (!pidfd_) return;
        if (const long r = ctr::detail::sys::pidfd_send_signal(pidfd_.get(), sig); r < 0 && r != -ESRCH)
            throw error(step::signal, static_cast<int>(-r), "pid " + std::to_string(pid_));
    }
    void kill() { signal(SIGKILL); }

    // Gives up ownership: the child runs on, and the caller must reap it
    // (waitid(P_PIDFD, ...)) and close the returned pidfd.
    [[nodiscard]] unique_fd release() noexcept {
        std_in_.reset();
        capture_out_.reset();
        capture_err_.reset();
        return std::move(pidfd_);
    }

private:
    friend child spawn(std::vector<std::string> argv, const options& opts);

    // True once the child has been reaped; false if `until` came first.
    bool wait_until(std::optional<detail::clock::time_point> until) {
        using namespace std::chrono;
        if (result_) return true;
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

    void reap(detail::clock::time_point ended) {
        siginfo_t info{};
        rusage usage{};
        long r;
        do r = ctr::detail::sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, &usage);
        while (r == -EINTR);
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
        out.peak_rss_bytes = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
        out.std_out = std::move(captured_out_);
        out.std_err = std::move(captured_err_);
        result_ = std::move(out);
        pidfd_.reset();
    }

    // Best effort, for destructors: nothing here may throw.
    void kill_and_reap() noexcept {
        if (!pidfd_) return;
        ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        siginfo_t info{};
        long r;
        do r = ctr::detail::sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, nullptr);
        while (r == -EINTR);
        pidfd_.reset();
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
};

namespace detail {

inline constexpr std::string_view default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

inline std::string_view env_key(std::string_view entry) { return entry.substr(0, entry.find('=')); }

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

inline bool fd_is_open(int fd) { return fd >= 0 && sys::fcntl(fd, F_GETFD) >= 0; }

// Everything the child reads, owned by the parent until the child has
// exec'd or exited. Built in full before clone: the child allocates nothing.
struct launch_plan {
    std::vector<std::string> argv_storage;
    std::vector<std::string> env_storage;
    std::vector<std::string> candidate_storage;
    std::string cwd;
    std::vector<char*> argv;
    std::vector<char*> envp;
    std::vector<const char*> candidates;
    std::vector<rlimit> rlimits;
    std::vector<gid_t> groups;
    std::vector<int> scratch;
    std::vector<child_op> ops;
    std::vector<std::string> op_paths;  // what an error in op i names
    child_view view;

    unique_fd report_read, report_write;
    std::vector<unique_fd> child_ends;  // the child's ends of stdio files and pipes
    unique_fd parent_in, parent_out, parent_err;
    bool capture_out = false, capture_err = false;

    void add(child_op op, std::string path = {}) {
        ops.push_back(op);
        op_paths.push_back(std::move(path));
    }
};

inline std::string fd_name(int fd) { return "fd " + std::to_string(fd); }

inline unique_fd open_checked(const char* path, int flags, unsigned mode, step s) {
    const long fd = sys::openat(AT_FDCWD, path, flags | O_CLOEXEC, mode);
    if (fd < 0) throw error(s, static_cast<int>(-fd), path);
    return unique_fd(static_cast<int>(fd));
}

inline void make_pipe(unique_fd& read_end, unique_fd& write_end) {
    int fds[2];
    if (const long r = sys::pipe2(fds, O_CLOEXEC); r < 0) throw error(step::create_pipe, static_cast<int>(-r));
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
}

// Resolves one standard stream to the fd the child gets (or -1 to keep the
// parent's own).
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
inline void plan_fd_mapping(launch_plan& plan, const std::vector<fd_mapping>& mappings,
                            const bool inherited_stdio[3]) {
    int lowest_free = 3;
    for (const auto& m : mappings) lowest_free = std::max(lowest_free, m.target + 1);

    // The error channel must survive the moves: put it above every target.
    if (plan.report_write.get() < lowest_free) {
        const long moved = sys::fcntl(plan.report_write.get(), F_DUPFD_CLOEXEC, lowest_free);
        if (moved < 0) throw error(step::create_pipe, static_cast<int>(-moved));
        plan.report_write.reset(static_cast<int>(moved));
    }

    plan.scratch.assign(mappings.size(), -1);
    for (std::size_t i = 0; i < mappings.size(); ++i)
        plan.add({.code = child_op_code::dup_above, .step = step::map_fds, .a = mappings[i].source,
                  .b = lowest_free, .c = static_cast<long>(i)},
                 fd_name(mappings[i].source));
    for (std::size_t i = 0; i < mappings.size(); ++i)
        plan.add({.code = child_op_code::dup_to, .step = step::map_fds, .b = mappings[i].target,
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
        plan.add({.code = child_op_code::cloexec_range, .step = step::close_fds, .a = fd, .b = last});
        fd = last + 1;
    }
    plan.add({.code = child_op_code::cloexec_range, .step = step::close_fds, .a = lowest_free, .b = -1});
}

inline void build_plan(launch_plan& plan, std::vector<std::string> argv, const options& opts) {
    if (argv.empty()) throw error(step::prepare, EINVAL, {}, "argv is empty");
    for (const auto& arg : argv)
        if (arg.find('\0') != std::string::npos) throw error(step::prepare, EINVAL, arg, "argument contains a NUL byte");

    plan.argv_storage = std::move(argv);
    plan.env_storage = build_environment(opts.env);
    const std::string& program = opts.executable.empty() ? plan.argv_storage.front() : opts.executable;
    if (program.empty()) throw error(step::prepare, ENOENT, {}, "the program name is empty");
    plan.candidate_storage = exec_candidates(program, plan.env_storage);
    plan.cwd = opts.cwd;

    for (auto& s : plan.argv_storage) plan.argv.push_back(s.data());
    plan.argv.push_back(nullptr);
    for (auto& s : plan.env_storage) plan.envp.push_back(s.data());
    plan.envp.push_back(nullptr);
    for (auto& s : plan.candidate_storage) plan.candidates.push_back(s.c_str());
    plan.candidates.push_back(nullptr);

    make_pipe(plan.report_read, plan.report_write);

    // Standard streams and passed fds.
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

    plan.rlimits.reserve(opts.rlimits.size());
    for (const auto& limit : opts.rlimits) plan.rlimits.push_back({limit.soft, limit.hard});
    if (opts.groups) plan.groups = *opts.groups;

    // The child program, in order. Signals first, so that nothing the parent
    // installed can run in the child.
    plan.add({.code = child_op_code::reset_signals, .step = step::reset_signals});
    if (opts.die_with_parent)
        plan.add({.code = child_op_code::die_with_parent, .step = step::die_with_parent, .a = SIGKILL,
                  .b = sys::getpid()});
    if (opts.new_session) plan.add({.code = child_op_code::new_session, .step = step::new_session});
    if (opts.umask) plan.add({.code = child_op_code::set_umask, .step = step::set_umask, .a = static_cast<long>(*opts.umask)});
    for (std::size_t i = 0; i < plan.rlimits.size(); ++i)
        plan.add({.code = child_op_code::set_rlimit, .step = step::set_rlimit, .a = opts.rlimits[i].resource,
                  .data = &plan.rlimits[i]},
                 "resource " + std::to_string(opts.rlimits[i].resource));
    plan_fd_mapping(plan, mappings, inherited_stdio);
    if (opts.groups)
        plan.add({.code = child_op_code::set_groups, .step = step::set_groups,
                  .a = static_cast<long>(plan.groups.size()), .data = plan.groups.data()});
    if (opts.gid)
        plan.add({.code = child_op_code::set_gid, .step = step::set_gid, .a = static_cast<long>(*opts.gid)},
                 "gid " + std::to_string(*opts.gid));
    if (opts.uid)
        plan.add({.code = child_op_code::set_uid, .step = step::set_uid, .a = static_cast<long>(*opts.uid)},
                 "uid " + std::to_string(*opts.uid));
    if (!plan.cwd.empty())
        plan.add({.code = child_op_code::change_directory, .step = step::change_directory, .data = plan.cwd.c_str()},
                 plan.cwd);
    plan.add({.code = child_op_code::restore_signal_mask, .step = step::restore_signal_mask});
    plan.add({.code = child_op_code::exec, .step = step::exec, .data = plan.candidates.data()}, program);

    plan.view.ops = plan.ops.data();
    plan.view.op_count = plan.ops.size();
    plan.view.report_fd = plan.report_write.get();
    plan.view.scratch = plan.scratch.data();
    plan.view.argv = plan.argv.data();
    plan.view.envp = plan.envp.data();
}

// Reaps a child whose setup failed, so that it leaves no zombie.
inline void reap_failed(int pidfd) noexcept {
    siginfo_t info{};
    long r;
    do r = sys::waitid(P_PIDFD, pidfd, &info, WEXITED, nullptr);
    while (r == -EINTR);
}

}  // namespace detail

// Starts argv as a child process; throws ctr::error naming the step that
// failed, in the parent or in the child before exec.
inline child spawn(std::vector<std::string> argv, const options& opts = {}) {
    namespace d = ctr::process::detail;
    namespace cd = ctr::detail;
    d::launch_plan plan;
    d::build_plan(plan, std::move(argv), opts);

    cd::child_stack stack;
    if (const long r = stack.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));

    cd::clone_request request;
    request.memory = opts.clone == clone_style::shared_memory ? cd::memory_mode::shared : cd::memory_mode::copied;

    const auto start = d::clock::now();
    const cd::clone_outcome started = cd::clone_child(request, stack, plan.view);
    if (started.pid < 0) throw error(step::clone, static_cast<int>(-started.pid));

    child handle;
    handle.pid_ = static_cast<pid_t>(started.pid);
    handle.pidfd_.reset(started.pidfd);
    handle.start_ = start;
    handle.timeout_ = opts.timeout;
    handle.kill_grace_ = opts.kill_grace;

    // The child has its own copies now; ours would hold pipes open.
    plan.report_write.reset();
    plan.child_ends.clear();

    // Wait for exec (the channel closes) or a report of the failed step. The
    // stack and plan stay alive until then.
    d::child_report report{};
    std::size_t received = 0;
    while (received < sizeof report) {
        const long n = cd::sys::read(plan.report_read.get(), reinterpret_cast<char*>(&report) + received,
                                     sizeof report - received);
        if (n == -EINTR) continue;
        if (n <= 0) break;
        received += static_cast<std::size_t>(n);
    }
    if (received == sizeof report) {
        d::reap_failed(handle.pidfd_.get());
        handle.pidfd_.reset();
        const std::size_t index = report.op_index;
        const step failed = index < plan.ops.size() ? plan.ops[index].step : step::exec;
        throw error(failed, report.error, index < plan.op_paths.size() ? plan.op_paths[index] : std::string{});
    }

    handle.std_in_ = std::move(plan.parent_in);
    if (plan.capture_out) handle.capture_out_ = std::move(plan.parent_out);
    else handle.std_out_ = std::move(plan.parent_out);
    if (plan.capture_err) handle.capture_err_ = std::move(plan.parent_err);
    else handle.std_err_ = std::move(plan.parent_err);
    return handle;
}

}  // namespace ctr::process
// end ctr/process.hpp
