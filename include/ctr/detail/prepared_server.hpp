#pragma once
// The child side of a prepared sandbox (ctr/prepared.hpp): the server that
// stays in the sandbox's namespaces, root and cgroup, and starts each run
// from there, and the run's own first steps before the usual program
// (credentials, capabilities, seccomp, exec). Async-signal-safe like every
// other child step: the server runs on a copy of the caller's memory and
// reads only buffers the caller allocated before it was cloned; it
// allocates nothing and takes no lock.

#include <ctr/detail/child_program.hpp>
#include <ctr/detail/mount_step.hpp>
#include <ctr/detail/syscall.hpp>

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
