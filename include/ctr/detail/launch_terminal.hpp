#pragma once
// Launch layer: options::terminal, a pty made by the child inside the
// sandbox. The child opens it after its mounts, so /dev/ptmx is the one the
// sandbox sees (its own devpts when the mount plan has .dev(): the slave is
// then /dev/pts/0 there, as under `podman run -t`); the slave becomes its
// standard streams and, in a session of its own, its controlling terminal;
// the master goes back over a socket the parent prepared (SCM_RIGHTS), or
// to the caller's console socket. A pty the parent opened could only come
// from the host's devpts, which the sandbox does not see.

#include <ctr/detail/launch_plan.hpp>
#include <ctr/spawn_options.hpp>

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
