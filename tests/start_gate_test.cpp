// options::start_gate: a sandbox made now, its command started later (an OCI
// runtime's create and start), from this process or from another one.
#include <ctr/process.hpp>

#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using ctr::process::spawn;
using ctr_test::temp_dir;

namespace {

struct pipe_ends {
    ctr::unique_fd read_end, write_end;
    pipe_ends() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
    }
};

bool exists(const std::string& path) { return std::filesystem::exists(path); }

// Runs `sh -c script` as the command, held on `gate`.
ctr::process::child held(const std::string& script, int gate, ctr::process::options opts = {}) {
    opts.start_gate = gate;
    return spawn({"/bin/sh", "-c", script}, opts);
}

}  // namespace

TEST(start_gate, the_command_waits_for_its_byte_then_runs) {
    temp_dir dir;
    const std::string marker = dir.path + "/ran";
    pipe_ends gate;
    auto child = held("echo ran > " + marker, gate.read_end.get());
    // spawn returned, so the command is held before exec: it cannot have
    // written anything yet, however long we looked.
    EXPECT_FALSE(exists(marker));
    EXPECT_FALSE(child.wait_for(std::chrono::milliseconds(50)).has_value()) << "the held command ended";
    EXPECT_FALSE(exists(marker));

    ASSERT_EQ(write(gate.write_end.get(), "x", 1), 1);
    const auto result = child.wait();
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_TRUE(exists(marker));
}

TEST(start_gate, a_closed_gate_ends_the_command_unstarted) {
    temp_dir dir;
    const std::string marker = dir.path + "/ran";
    pipe_ends gate;
    auto child = held("echo ran > " + marker, gate.read_end.get());
    gate.write_end.reset();
    const auto result = child.wait();
    EXPECT_EQ(result.exit_code, 127);
    EXPECT_FALSE(exists(marker)) << "the command ran although nobody started it";
}

TEST(start_gate, a_fifo_lets_another_process_start_a_full_sandbox) {
    if (geteuid() != 0) GTEST_SKIP() << "the sandbox shape here (pid and mount namespaces) needs root";
    temp_dir dir;
    const std::string fifo = dir.path + "/start";
    const std::string marker = dir.path + "/ran";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    // Held open for reading and writing by the child, so that its read
    // blocks (a writer exists) until a byte arrives.
    ctr::unique_fd gate(open(fifo.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(gate);
    auto child = held("echo $$ > " + marker, gate.get(),
                      {.namespaces = ctr::ns::pid | ctr::ns::mount | ctr::ns::uts | ctr::ns::ipc});
    gate.reset();  // only the held command has it open now
    EXPECT_FALSE(exists(marker));

    // A process that is not the spawner opens the FIFO without blocking
    // (a reader is there) and writes the byte, as `ctr-run start` does.
    auto starter = spawn({"/bin/sh", "-c", "printf x > " + fifo});
    EXPECT_EQ(starter.wait().exit_code, 0);
    EXPECT_EQ(child.wait().exit_code, 0);
    std::ifstream in(marker);
    std::string pid;
    in >> pid;
    EXPECT_EQ(pid, "2") << "the command is the init's child in its own pid namespace";
    // Nothing holds the FIFO for reading any more: a second start finds
    // nobody to start.
    ctr::unique_fd again(open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    EXPECT_FALSE(again);
    EXPECT_EQ(errno, ENXIO);
}

TEST(start_gate, a_held_sandbox_can_be_signalled_before_it_starts) {
    pipe_ends gate;
    auto child = held("exit 0", gate.read_end.get(), {.namespaces = ctr::ns::pid});
    child.signal(SIGTERM);
    const auto result = child.wait();
    // The init forwards SIGTERM to the held command, which dies of it; the
    // result is the command's own end.
    EXPECT_EQ(result.signal, SIGTERM);
    EXPECT_FALSE(result.exit_code.has_value());
}

TEST(start_gate, setup_failures_are_still_reported_by_spawn) {
    pipe_ends gate;
    try {
        auto child = held("exit 0", gate.read_end.get(), {.cwd = "/nonexistent-ctr-start-gate"});
        FAIL() << "spawn returned although the working directory does not exist";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::change_directory) << e.what();
    }
}

TEST(start_gate, a_gate_fd_that_is_not_open_is_refused) {
    try {
        auto child = held("exit 0", 1000);
        FAIL() << "spawn accepted a closed gate fd";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::hold_for_start) << e.what();
        EXPECT_EQ(e.code().value(), EBADF) << e.what();
    }
}

TEST(start_gate, the_gate_is_not_left_open_in_the_command) {
    temp_dir dir;
    const std::string listing = dir.path + "/fds";
    pipe_ends gate;
    auto child = held("ls /proc/self/fd > " + listing, gate.read_end.get());
    ASSERT_EQ(write(gate.write_end.get(), "x", 1), 1);
    ASSERT_EQ(child.wait().exit_code, 0);
    std::ifstream in(listing);
    int count = 0;
    for (std::string fd; in >> fd;) ++count;
    // 0, 1, 2, the listing's own redirection... and ls's directory fd: the
    // gate and the report channel are gone.
    EXPECT_LE(count, 4);
}
