#pragma once
// Signals and the terminal: what ctr-run forwards to the command, and the
// pty it relays with -t (what the caller types, with -i too).

#include <ctr/error.hpp>
#include <ctr/process.hpp>
#include <ctr/unique_fd.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace ctr_run {

using namespace std::chrono_literals;

// The handlers run on the only thread, between two steps of main's: a signal
// that comes before the pidfd is known waits in `pending_signals` until
// start_forwarding() sends it.
inline std::atomic<int> child_pidfd{-1};
inline std::atomic<std::uint64_t> pending_signals{0};
inline int winch_pipe[2] = {-1, -1};

// Docker's stop: a SIGTERM sent to ctr-run reaches the command as the
// --stop-signal, and SIGKILL follows --stop-timeout seconds later (0: at
// once; never_kill: never).
inline constexpr unsigned never_kill = ~0u;
inline int stop_signal = SIGTERM;
inline unsigned stop_timeout_seconds = 10;

// Async-signal-safe.
inline void deliver_signal(int fd, int sig) {
    if (sig == SIGTERM) {
        syscall(SYS_pidfd_send_signal, fd, stop_signal, nullptr, 0);
        if (stop_timeout_seconds == 0) syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
        else if (stop_timeout_seconds != never_kill) alarm(stop_timeout_seconds);
        return;
    }
    syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
}

extern "C" inline void forward_signal(int sig) {
    const int saved = errno;
    if (const int fd = child_pidfd.load(); fd >= 0) deliver_signal(fd, sig);
    else pending_signals.fetch_or(std::uint64_t{1} << sig);
    errno = saved;
}

// The stop's time is up.
extern "C" inline void kill_after_stop(int) {
    const int saved = errno;
    if (const int fd = child_pidfd.load(); fd >= 0) syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
    errno = saved;
}

inline void start_forwarding(int pidfd) {
    child_pidfd = pidfd;
    const std::uint64_t pending = pending_signals.exchange(0);
    for (int sig = 1; sig < 64; ++sig)
        if (pending & (std::uint64_t{1} << sig)) deliver_signal(pidfd, sig);
}

extern "C" inline void note_window_change(int) {
    const int saved = errno;
    const char byte = 0;
    if (winch_pipe[1] >= 0) {
        [[maybe_unused]] const ssize_t n = write(winch_pipe[1], &byte, 1);
    }
    errno = saved;
}

// Without --sig-proxy=false, the signals that ctr-run receives are passed on
// to the command (SIGTERM as the stop signal). With it, they take their
// default action on ctr-run, and the sandbox ends with it.
inline void install_signal_forwarding(bool forward, int stop, unsigned stop_timeout) {
    signal(SIGPIPE, SIG_IGN);
    if (!forward) return;
    stop_signal = stop;
    stop_timeout_seconds = stop_timeout;
    struct sigaction action {};
    action.sa_handler = forward_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaction(sig, &action, nullptr);
    action.sa_handler = kill_after_stop;
    sigaction(SIGALRM, &action, nullptr);
}

// The caller's terminal in raw mode until this ends. With output_only,
// only its output processing is off: the pty's own already turned "\n"
// into "\r\n", and the caller's keys keep their meaning (^C, ^Z).
class raw_terminal {
public:
    explicit raw_terminal(int fd, bool output_only = false) : fd_(fd) {
        if (tcgetattr(fd_, &saved_) != 0) return;
        termios raw = saved_;
        if (output_only) raw.c_oflag &= ~static_cast<tcflag_t>(OPOST);
        else cfmakeraw(&raw);
        active_ = tcsetattr(fd_, TCSADRAIN, &raw) == 0;
    }
    raw_terminal(const raw_terminal&) = delete;
    raw_terminal& operator=(const raw_terminal&) = delete;
    ~raw_terminal() {
        if (active_) tcsetattr(fd_, TCSADRAIN, &saved_);
    }

private:
    int fd_;
    termios saved_{};
    bool active_ = false;
};

inline bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            poll(&p, 1, 100);
            continue;
        }
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

inline void copy_window_size(int from, int to) {
    winsize size{};
    if (ioctl(from, TIOCGWINSZ, &size) == 0) ioctl(to, TIOCSWINSZ, &size);
}

// Relays the pty's output, its window size and, with `input` (-i), what
// the caller types, until the command ends. Only with input is the caller's
// terminal raw: without, ^C and ^Z act on ctr-run (^C is passed on as
// SIGINT), as they do on `docker run -t` without -i; only its output
// processing is off then.
inline ctr::process::result relay(ctr::process::child& child, int master, bool input) {
    if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
        struct sigaction action {};
        action.sa_handler = note_window_change;
        action.sa_flags = SA_RESTART;
        sigemptyset(&action.sa_mask);
        sigaction(SIGWINCH, &action, nullptr);
    }
    const raw_terminal raw(input ? STDIN_FILENO : STDOUT_FILENO, !input);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    bool input_open = input, output_open = true;
    char buffer[16384];
    for (;;) {
        // wait_for also enforces the timeout; it is cheap when nothing is due.
        if (auto r = child.wait_for(0ms)) {
            // Whatever the command wrote before it ended.
            while (output_open) {
                const ssize_t n = read(master, buffer, sizeof buffer);
                if (n <= 0) break;
                write_all(STDOUT_FILENO, buffer, static_cast<std::size_t>(n));
            }
            return *r;
        }
        pollfd fds[4] = {{child.pidfd(), POLLIN, 0},
                         {input_open ? STDIN_FILENO : -1, POLLIN, 0},
                         {output_open ? master : -1, POLLIN, 0},
                         {winch_pipe[0], POLLIN, 0}};
        if (poll(fds, 4, 100) < 0 && errno != EINTR) break;
        if (fds[1].revents) {
            const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
            if (n > 0) write_all(master, buffer, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EINTR) input_open = false;
        }
        if (fds[2].revents) {
            const ssize_t n = read(master, buffer, sizeof buffer);
            if (n > 0) write_all(STDOUT_FILENO, buffer, static_cast<std::size_t>(n));
            else if (n == 0 || (errno != EINTR && errno != EAGAIN)) output_open = false;  // EIO: no slave left
        }
        if (fds[3].revents) {
            while (read(winch_pipe[0], buffer, sizeof buffer) > 0) {
            }
            copy_window_size(STDIN_FILENO, master);
        }
    }
    return child.wait();
}
}  // namespace ctr_run
