// options::terminal against the real kernel: a pty the child opens in the
// sandbox's own devpts, seen from inside by the probe helper (its name, the
// controlling terminal, the window size), and relayed through the master.
#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

using namespace std::chrono_literals;
namespace mnt = ctr::mount;
namespace ns = ctr::ns;
namespace p = ctr::process;
using ctr_test::helper;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The host's root read-only with a /dev of its own (a fresh devpts), and the
// helper's directory, which may be under the sandbox's private /tmp.
mnt::plan sandbox_root() {
    const std::string helper_dir = std::filesystem::path(ctr_test::probe_helper).parent_path().string();
    return mnt::host_readonly().bind(helper_dir, helper_dir, {.read_only = true});
}

// Everything the master gives until `done` is in it or the slave side is
// gone (EIO), at most 20 s.
std::string read_master(int master, const std::string& done = {}) {
    std::string out;
    char buffer[4096];
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!done.empty() && contains(out, done)) break;
        pollfd ready{master, POLLIN, 0};
        if (poll(&ready, 1, 100) <= 0) continue;
        const ssize_t n = read(master, buffer, sizeof buffer);
        if (n <= 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

}  // namespace

TEST(terminal, the_command_gets_a_pty_of_the_sandboxs_own_devpts) {
    // With an init as pid 1 and with the command as pid 1.
    for (const bool init : {true, false}) {
        auto child = p::spawn(helper({"terminal"}), {.namespaces = ns::pid,
                                                     .init = init,
                                                     .root = sandbox_root(),
                                                     .terminal = p::terminal_options{.size = {33, 101}}});
        ASSERT_TRUE(child.terminal()) << "the master came back";
        const std::string out = read_master(child.terminal().get());
        const auto r = child.wait();
        EXPECT_EQ(r.exit_code, 0) << out;
        // The first pty of a devpts that only this sandbox has, its
        // controlling terminal, the size set before it ran.
        EXPECT_TRUE(contains(out, "tty=/dev/pts/0 streams=111 ctty=yes session=own foreground=yes size=33x101"))
            << "init=" << init << ": " << out;
    }
}

TEST(terminal, without_a_mount_namespace_the_pty_is_the_hosts) {
    auto child = p::spawn(helper({"terminal"}), {.terminal = p::terminal_options{.size = {20, 60}}});
    ASSERT_TRUE(child.terminal());
    // The host's devpts numbers it: the master's number is the slave's.
    unsigned number = 0;
    ASSERT_EQ(ioctl(child.terminal().get(), TIOCGPTN, &number), 0);
    const std::string out = read_master(child.terminal().get());
    EXPECT_EQ(child.wait().exit_code, 0) << out;
    EXPECT_TRUE(contains(out, "tty=/dev/pts/" + std::to_string(number) +
                                  " streams=111 ctty=yes session=own foreground=yes size=20x60"))
        << out;
}

TEST(terminal, window_size_changes_reach_the_command) {
    auto child = p::spawn(helper({"terminal", "wait-winch"}),
                          {.namespaces = ns::pid, .root = sandbox_root(), .terminal = p::terminal_options{}});
    const int master = child.terminal().get();
    std::string out = read_master(master, "ready");
    ASSERT_TRUE(contains(out, "size=24x80")) << "the default size: " << out;
    child.resize_terminal({.rows = 50, .columns = 132});
    out += read_master(master);
    EXPECT_EQ(child.wait().exit_code, 0) << out;
    EXPECT_TRUE(contains(out, "winch size=50x132")) << out;
    // The handle without a master says so.
    p::child empty;
    EXPECT_THROW(empty.resize_terminal({}), ctr::error);
}

TEST(terminal, input_and_output_relay_through_the_master_with_job_control) {
    auto child = p::spawn({"/bin/sh", "-c", "read line; echo got:$line; tty"},
                          {.namespaces = ns::pid, .root = mnt::host_readonly(), .terminal = p::terminal_options{}});
    const int master = child.terminal().get();
    ASSERT_EQ(write(master, "hello\n", 6), 6);
    const std::string out = read_master(master);
    EXPECT_EQ(child.wait().exit_code, 0) << out;
    // The line discipline echoes and turns \n into \r\n: a real terminal.
    EXPECT_TRUE(contains(out, "hello\r\ngot:hello\r\n/dev/pts/0\r\n")) << out;

    // An interactive shell turns job control on only where it can take the
    // terminal's foreground (otherwise: "can't access tty; job control
    // turned off"); a background job is then listed as one.
    auto shell = p::spawn({"/bin/sh", "-i"},
                          {.namespaces = ns::pid, .root = mnt::host_readonly(), .terminal = p::terminal_options{}});
    const std::string jobs = "sleep 30 & jobs; kill %1; echo done-$((6*7)); exit 0\n";
    ASSERT_EQ(write(shell.terminal().get(), jobs.data(), jobs.size()), static_cast<ssize_t>(jobs.size()));
    const std::string session = read_master(shell.terminal().get());
    EXPECT_EQ(shell.wait().exit_code, 0) << session;
    EXPECT_FALSE(contains(session, "job control turned off")) << session;
    // dash lists "[1] + Running", busybox's ash (the VM lane) "[1]+  Running".
    EXPECT_TRUE(contains(session, "[1] + Running") || contains(session, "[1]+  Running")) << session;
    EXPECT_TRUE(contains(session, "done-42")) << session;

    // ^C (the terminal's VINTR) reaches the foreground process group.
    auto interrupted = p::spawn({"/bin/sh", "-c", "echo ready; exec sleep 30"},
                                {.namespaces = ns::pid, .root = mnt::host_readonly(), .terminal = p::terminal_options{}});
    read_master(interrupted.terminal().get(), "ready");
    ASSERT_EQ(write(interrupted.terminal().get(), "\x03", 1), 1);
    EXPECT_EQ(interrupted.wait().signal, SIGINT);
}

TEST(terminal, a_command_that_changes_its_ids_owns_its_terminal) {
    if (!ctr_test::real_root) GTEST_SKIP() << "switching to uid 1000 needs real root (or a mapped range)";
    auto child = p::spawn(helper({"terminal"}), {.gid = 1000,
                                                 .uid = 1000,
                                                 .namespaces = ns::pid,
                                                 .root = sandbox_root(),
                                                 .terminal = p::terminal_options{}});
    const std::string out = read_master(child.terminal().get());
    EXPECT_EQ(child.wait().exit_code, 0) << out;
    EXPECT_TRUE(contains(out, "tty=/dev/pts/0 streams=111 ctty=yes")) << out;
    EXPECT_TRUE(contains(out, "owner=1000:1000")) << out;
}

TEST(terminal, the_master_can_go_to_a_console_socket) {
    int ends[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
    const ctr::unique_fd ours(ends[0]), theirs(ends[1]);
    auto child = p::spawn(helper({"terminal"}), {.namespaces = ns::pid,
                                                 .root = sandbox_root(),
                                                 .terminal = p::terminal_options{.console_socket = theirs.get()}});
    EXPECT_FALSE(child.terminal()) << "the master went to the socket";
    char byte = 0;
    iovec data{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    ASSERT_EQ(recvmsg(ours.get(), &message, MSG_CMSG_CLOEXEC), 1);
    const cmsghdr* header = CMSG_FIRSTHDR(&message);
    ASSERT_TRUE(header && header->cmsg_type == SCM_RIGHTS);
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(header), sizeof fd);
    const ctr::unique_fd master(fd);
    const std::string out = read_master(master.get());
    EXPECT_EQ(child.wait().exit_code, 0) << out;
    EXPECT_TRUE(contains(out, "tty=/dev/pts/0 streams=111 ctty=yes")) << out;
}

TEST(terminal, errors_name_the_step_the_path_and_the_fix) {
    // No stream left for the terminal.
    try {
        (void)p::spawn(helper({"exit", "0"}), {.std_in = p::stdio::null(),
                                               .std_out = p::stdio::null(),
                                               .std_err = p::stdio::null(),
                                               .terminal = p::terminal_options{}});
        ADD_FAILURE() << "spawned without a stream for the terminal";
    } catch (const ctr::error& e) {
        EXPECT_TRUE(contains(e.what(), "none is")) << e.what();
    }
    // A sandbox whose /dev has no ptmx: a tmpfs over the plan's /dev.
    try {
        (void)p::spawn(helper({"exit", "0"}),
                       {.namespaces = ns::pid, .root = sandbox_root().tmpfs("/dev"), .terminal = p::terminal_options{}});
        ADD_FAILURE() << "spawned without a /dev/ptmx";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::open_terminal);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.path(), "/dev/ptmx");
        EXPECT_TRUE(contains(e.what(), ".dev()")) << e.what();
    }
    // Two controlling terminals asked for: stdin's and the pty.
    EXPECT_THROW((void)p::spawn(helper({"exit", "0"}), {.std_in = p::stdio::null(),
                                                        .new_session = true,
                                                        .controlling_terminal = true,
                                                        .terminal = p::terminal_options{}}),
                 ctr::error);
    // A console socket that is not open.
    EXPECT_THROW((void)p::spawn(helper({"exit", "0"}), {.terminal = p::terminal_options{.console_socket = 999}}),
                 ctr::error);
}
