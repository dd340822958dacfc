#pragma once
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
