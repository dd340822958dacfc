#pragma once
// The child side of a launch: everything that runs between clone and exec.
//
// The parent turns the options into a child_program, a flat list of
// operations over data it prepared; the child only walks that list. This is
// the one place where child code lives. Every function here is
// async-signal-safe: no allocation, no locks, no exceptions, no libc calls
// that touch errno (the child shares the parent's memory and TLS), only
// detail::sys wrappers. Later capabilities (namespaces, mounts, cgroups,
// seccomp) add operation codes here, so they run as steps of the same launch.

#include <ctr/detail/child_code.hpp>
#include <ctr/detail/mount_step.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>

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
