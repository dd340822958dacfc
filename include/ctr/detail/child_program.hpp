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

#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>

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
