// Nothing outlives its owner: options::die_with_owner in every shape of
// launch (with and without a pid namespace or init), with the owner
// SIGKILLed while the command runs and during setup, and a spawning thread
// that exits before its owner does.
//
// The owner is a forked copy of this test process. The sandbox holds the
// write end of a pipe (fd 3 inside, and in a background process the command
// starts), which nothing else holds: end of file on the read end means
// every process of the sandbox is gone. Each check first shows that
// without the option the same kill leaves the sandbox running, so it
// cannot pass by accident; those survivors are then killed by their pids.
#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <net/if.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

// Kills and reaps every child of this process that a test did not wait
// for: in the test below only what came to it as the subreaper (a killed
// ctr-run's init or supervisor, dead or still ending), found by pid in
// /proc, since waitid() names only the children that have already ended.
void end_orphans() {
    for (;;) {
        std::vector<pid_t> children;
        std::error_code ec;
        for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
            std::ifstream in(task.path() / "children");
            for (pid_t pid; in >> pid;) children.push_back(pid);
        }
        while (waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        if (children.empty()) return;
        for (const pid_t pid : children) {
            ::kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
}

using namespace std::chrono_literals;
namespace p = ctr::process;

struct pipe_pair {
    int read = -1, write = -1;
    pipe_pair() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) == 0) {
            read = fds[0];
            write = fds[1];
        }
    }
    ~pipe_pair() {
        if (read >= 0) close(read);
        if (write >= 0) close(write);
    }
    void close_write() {
        if (write >= 0) close(write);
        write = -1;
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
};

// Waits up to `limit` for end of file on `fd`: every writer gone.
bool ends_within(int fd, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd ready{fd, POLLIN, 0};
        const int n = poll(&ready, 1, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        char buffer[256];
        const ssize_t got = read(fd, buffer, sizeof buffer);
        if (got == 0) return true;
        if (got < 0 && errno != EINTR && errno != EAGAIN) return true;
    }
}

// One line from `fd`, waiting at most 30 s.
std::string read_line(int fd) {
    std::string line;
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
        pollfd ready{fd, POLLIN, 0};
        if (poll(&ready, 1, 1000) <= 0) continue;
        char c;
        const ssize_t n = read(fd, &c, 1);
        if (n <= 0) break;
        if (c == '\n') return line;
        line += c;
    }
    return line;
}

struct shape {
    const char* name;
    ctr::ns::kinds namespaces;
    bool init;
};

// The host pids of a sandbox's processes, to kill the survivors of a
// control run: the spawned child (pid 1, the supervisor, or the command),
// and, without a pid namespace, what the command reported ($$ and $!).
struct sandbox_pids {
    std::vector<pid_t> pids;
    void kill_all() const {
        for (const pid_t pid : pids)
            if (pid > 1) ::kill(pid, SIGKILL);
    }
};

void add_pids(sandbox_pids& out, const std::string& line) {
    std::istringstream in(line);
    long pid = 0;
    while (in >> pid) out.pids.push_back(static_cast<pid_t>(pid));
}

enum class kill_moment { while_running, during_setup };

// Forks an owner that spawns `argv` with `opts` (fd 3 inside: the
// sandbox's end of `sandbox`), then SIGKILLs it at `moment`. Returns the
// host pids to clean up with, once the owner is reaped.
sandbox_pids run_and_kill_owner(const std::vector<std::string>& argv, p::options opts, pipe_pair& sandbox,
                                kill_moment moment) {
    pipe_pair owner_said, command_said;
    const pid_t owner = fork();
    if (owner == 0) {
        try {
            close(sandbox.read);
            close(owner_said.read);
            close(command_said.read);
            opts.fds.push_back({sandbox.write, 3});
            opts.std_in = p::stdio::null();
            opts.std_out = p::stdio::from_fd(command_said.write);
            const int to_test = owner_said.write;
            if (moment == kill_moment::during_setup) {
                opts.while_child_waits.push_back([to_test](const p::waiting_child& c) {
                    const std::string line = std::to_string(c.pid) + "\n";
                    [[maybe_unused]] const auto n = write(to_test, line.data(), line.size());
                    for (;;) pause();  // killed here, in the middle of the launch
                });
            }
            auto child = p::spawn(argv, opts);
            // The owner's copies go: only the sandbox holds the pipe now.
            close(sandbox.write);
            close(command_said.write);
            const std::string line = std::to_string(child.pid()) + "\n";
            [[maybe_unused]] const auto n = write(to_test, line.data(), line.size());
            for (;;) pause();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "owner: %s\n", e.what());
        }
        _exit(1);
    }
    owner_said.close_write();
    command_said.close_write();
    sandbox.close_write();
    sandbox_pids pids;
    add_pids(pids, read_line(owner_said.read));
    // While running: once the command has printed, it runs for certain.
    // Its $$ and $! are host pids only without a pid namespace.
    if (moment == kill_moment::while_running) {
        const std::string line = read_line(command_said.read);
        if (!opts.namespaces.has(ctr::ns::pid)) add_pids(pids, line);
    }
    ::kill(owner, SIGKILL);
    int status = 0;
    waitpid(owner, &status, 0);
    return pids;
}

class owner_death : public ::testing::TestWithParam<shape> {};

// The command starts a background process, and both hold fd 3.
const std::vector<std::string> sandbox_command = {"/bin/sh", "-c", "sleep 1000 & echo $$ $!; exec sleep 1000"};

TEST_P(owner_death, owner_killed_while_the_command_runs_takes_every_process_along) {
    const shape s = GetParam();
    // Control: without the option the sandbox outlives the SIGKILLed owner.
    {
        pipe_pair sandbox;
        const auto pids = run_and_kill_owner(sandbox_command, {.namespaces = s.namespaces, .init = s.init}, sandbox,
                                             kill_moment::while_running);
        ASSERT_FALSE(pids.pids.empty()) << "the owner never reported";
        const bool ended = ends_within(sandbox.read, 300ms);
        pids.kill_all();
        ASSERT_FALSE(ended) << "without die_with_owner the sandbox should have survived its owner: the check below "
                               "would prove nothing";
        ASSERT_TRUE(ends_within(sandbox.read, 10s)) << "control survivors could not be cleaned up";
    }
    pipe_pair sandbox;
    const auto pids = run_and_kill_owner(
        sandbox_command, {.die_with_owner = true, .namespaces = s.namespaces, .init = s.init}, sandbox,
        kill_moment::while_running);
    ASSERT_FALSE(pids.pids.empty()) << "the owner never reported";
    const bool ended = ends_within(sandbox.read, 10s);
    if (!ended) pids.kill_all();
    EXPECT_TRUE(ended) << "a process of the sandbox outlived its owner";
}

TEST_P(owner_death, owner_killed_during_setup_leaves_nothing) {
    const shape s = GetParam();
    pipe_pair sandbox;
    const auto pids = run_and_kill_owner(sandbox_command,
                                         {.die_with_owner = true, .namespaces = s.namespaces, .init = s.init},
                                         sandbox, kill_moment::during_setup);
    ASSERT_FALSE(pids.pids.empty()) << "the parent step never ran";
    const bool ended = ends_within(sandbox.read, 10s);
    if (!ended) pids.kill_all();
    EXPECT_TRUE(ended) << "the child being set up outlived its owner";
}

INSTANTIATE_TEST_SUITE_P(lifecycle, owner_death,
                         ::testing::Values(shape{"pid_namespace_with_init", ctr::ns::pid, true},
                                           shape{"pid_namespace_without_init", ctr::ns::pid, false},
                                           shape{"uts_namespace_only", ctr::ns::uts, true},
                                           shape{"time_namespace", ctr::ns::time, true},
                                           shape{"no_namespaces", ctr::ns::kinds{}, true}),
                         [](const ::testing::TestParamInfo<shape>& info) { return std::string(info.param.name); });

// The kernel's parent-death signal fires when the spawning thread exits;
// die_with_owner must not.
TEST(lifecycle, an_owned_sandbox_outlives_the_thread_that_spawned_it) {
    // Control: die_with_parent alone is killed with the thread.
    {
        std::optional<p::child> child;
        std::thread([&] {
            child = p::spawn({"/bin/sleep", "1000"}, {.std_in = p::stdio::null(), .die_with_parent = true});
        }).join();
        const auto r = child->wait_for(10s);
        ASSERT_TRUE(r.has_value()) << "die_with_parent's child should have died with its thread";
        EXPECT_EQ(r->signal, SIGKILL);
    }
    for (const ctr::ns::kinds namespaces : {ctr::ns::kinds(ctr::ns::pid), ctr::ns::kinds{}}) {
        std::optional<p::child> child;
        std::thread([&] {
            child = p::spawn({"/bin/sh", "-c", "read line; echo got $line"},
                             {.std_in = p::stdio::pipe(), .std_out = p::stdio::capture(), .die_with_owner = true,
                              .namespaces = namespaces});
        }).join();
        EXPECT_FALSE(child->wait_for(300ms).has_value()) << "the sandbox died with the thread that spawned it";
        ASSERT_EQ(write(child->std_in().get(), "x\n", 2), 2);
        child->std_in().reset();
        const auto r = child->wait();
        EXPECT_EQ(r.exit_code, 0);
        EXPECT_EQ(r.std_out, "got x\n");
    }
}

// Without a pid namespace the supervisor is a subreaper: what the command
// leaves behind is killed when it ends, as a pid namespace's would be.
TEST(lifecycle, an_owned_sandbox_without_pid_namespace_ends_with_its_command) {
    pipe_pair sandbox;
    auto child = p::spawn({"/bin/sh", "-c", "sleep 1000 & setsid sleep 1000 & echo started"},
                          {.std_in = p::stdio::null(), .std_out = p::stdio::capture(),
                           .fds = {{sandbox.write, 3}}, .die_with_owner = true});
    sandbox.close_write();
    const auto r = child.wait();
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.std_out, "started\n");
    EXPECT_TRUE(r.pid_namespace_orphans_killed);
    EXPECT_TRUE(ends_within(sandbox.read, 10s)) << "a background process of the command outlived it";
}

// ---- the caller is never the victim of a sandbox's OOM ----------------------

TEST(lifecycle, a_memory_limit_under_the_floor_is_refused_naming_it_and_the_floor) {
    for (const char* small : {"1", "64k", "1M", "6143k"}) {
        try {
            ctr::cgroup::group g({.prefix = "ctr-floortest", .limits = {.memory_max = small}});
            ADD_FAILURE() << small << " was accepted";
        } catch (const ctr::error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find(std::string("'") + small + "'"), std::string::npos) << what;
            EXPECT_NE(what.find("6 MiB"), std::string::npos) << what;
        }
    }
    if (ctr_test::cgroup_blocker()) GTEST_SKIP() << "cannot make cgroups here: the floor itself was not tried";
    try {
        ctr::cgroup::group g({.prefix = "ctr-floortest", .limits = {.memory_max = "6M"}});
    } catch (const ctr::error& e) {
        if (std::string(e.what()).find("floor") != std::string::npos) ADD_FAILURE() << "6M refused: " << e.what();
    }
}

// Arguments that exec copies into the new image, charged to the child's
// cgroup while the child still has its old memory: 3 MiB.
std::vector<std::string> big_arguments() {
    std::vector<std::string> argv = {"/bin/true"};
    for (int i = 0; i < 30; ++i) argv.emplace_back(100 * 1024, 'x');
    return argv;
}

// Runs `body` in a forked caller; returns its wait status.
template <typename Body>
int in_forked_caller(Body body) {
    const pid_t caller = fork();
    if (caller == 0) {
        int code = 1;
        try {
            code = body();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "caller: %s\n", e.what());
        }
        std::fflush(stdout);  // _exit does not
        _exit(code);
    }
    int status = 0;
    waitpid(caller, &status, 0);
    return status;
}

// A group whose limit is lowered behind the library's back to 1 MiB, far
// under the floor: the case spawn must survive even so.
struct tiny_group {
    ctr::cgroup::group group;
    tiny_group() : group({.prefix = "ctr-oomtest", .limits = {.memory_max = "6M", .swap_max = "0"}}) {
        const std::string dir = group.path("memory");
        std::ofstream v1(dir + "/memory.limit_in_bytes");
        if (v1) v1 << (1 << 20) << std::flush;
        std::ofstream v2(dir + "/memory.max");
        if (v2) v2 << (1 << 20) << std::flush;
    }
};

struct raw_child_data {
    const char* procs = nullptr;
    char* const* argv = nullptr;
};

int raw_child(void* argument) {
    const auto* data = static_cast<const raw_child_data*>(argument);
    const int fd = open(data->procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) _exit(90);
    close(fd);
    char* const envp[] = {nullptr};
    execve(data->argv[0], data->argv, envp);
    _exit(91);
}

bool raise_stack_limit() {
    rlimit r{};
    getrlimit(RLIMIT_STACK, &r);
    r.rlim_cur = r.rlim_max == RLIM_INFINITY ? (64u << 20) : std::min<rlim_t>(r.rlim_max, 64u << 20);
    return setrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur >= (16u << 20);
}

TEST(lifecycle, a_sandbox_oom_killed_at_any_moment_never_takes_the_caller) {
    if (!ctr_test::real_root) GTEST_SKIP() << "needs real root to make a cgroup with a memory limit";
    if (const auto& why = ctr_test::cgroup_blocker()) GTEST_SKIP() << "cannot make cgroups here: " << why->what();
    try {
        tiny_group probe;
    } catch (const ctr::error& e) {
        GTEST_SKIP() << "no memory limit here: " << e.what();
    }

    // The hazard, on this kernel: a child that shares its caller's memory,
    // in the tiny group, exec'ing with 3 MiB of arguments. The OOM killer
    // picks the child and kills every process that uses its memory.
    const int raw = in_forked_caller([&] {
        if (!raise_stack_limit()) return 2;
        tiny_group g;
        const std::string procs = g.group.path("memory") + "/cgroup.procs";
        std::vector<std::string> strings = big_arguments();
        std::vector<char*> argv;
        for (auto& a : strings) argv.push_back(a.data());
        argv.push_back(nullptr);
        raw_child_data data{procs.c_str(), argv.data()};
        std::vector<char> child_stack(1 << 20);
        const int pid = clone(raw_child, child_stack.data() + child_stack.size(), CLONE_VM | SIGCHLD, &data);
        if (pid < 0) return 3;
        int status = 0;
        waitpid(pid, &status, 0);
        std::fprintf(stderr, "caller: the raw child ended with status %d\n", status);
        return 0;  // the caller lived
    });
    ctr::cgroup::reap_stale("ctr-oomtest");
    if (!(WIFSIGNALED(raw) && WTERMSIG(raw) == SIGKILL))
        GTEST_SKIP() << "this kernel did not kill a caller sharing memory with an OOM-killed child (status " << raw
                     << "), so the check below could not fail";

    // The same through spawn, in each shape, from a caller with 256 MiB of
    // its own: the caller lives, and each kill is reported as an OOM kill.
    const int status = in_forked_caller([&] {
        if (!raise_stack_limit()) return 2;
        std::vector<char> ballast(256u << 20, 1);
        int reported = 0, launches = 0;
        for (int i = 0; i < 5; ++i) {
            for (const ctr::ns::kinds namespaces : {ctr::ns::kinds{}, ctr::ns::pid | ctr::ns::mount}) {
                tiny_group g;
                ++launches;
                try {
                    auto r = p::spawn(big_arguments(), {.std_in = p::stdio::null(), .namespaces = namespaces,
                                                        .cgroup = &g.group})
                                 .wait();
                    if (r.signal == SIGKILL && r.oom_killed) ++reported;
                    else std::fprintf(stderr, "caller: not reported as an OOM kill: exit %d signal %d\n",
                                      r.exit_code.value_or(-1), r.signal.value_or(0));
                } catch (const ctr::error& e) {
                    std::fprintf(stderr, "caller: %s\n", e.what());
                }
            }
        }
        std::printf("[ lifecycle ] %d launches OOM-killed in a 1 MiB group from a 256 MiB caller: %d reported as "
                    "OOM kills (ballast %d)\n",
                    launches, reported, static_cast<int>(ballast[12345]));
        return reported == launches ? 0 : 5;
    });
    ctr::cgroup::reap_stale("ctr-oomtest");
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the caller ended with status " << status << (WIFSIGNALED(status) ? " (killed by a signal)" : "");
}

#ifdef CTR_RUN_BINARY

// ctr-run's own cgroups, overlay scratch layers and veth links that name
// one of `owners` (ctr-run's pids), where this process can see them.
std::vector<std::string> leftovers_of(const std::set<pid_t>& owners) {
    std::vector<std::string> found;
    std::error_code ec;
    const auto named_after_owner = [&](const std::string& name, const std::string& prefix, char separator) {
        if (name.rfind(prefix, 0) != 0) return false;
        const std::string rest = name.substr(prefix.size());
        const pid_t pid = static_cast<pid_t>(std::strtol(rest.c_str(), nullptr, 10));
        return rest.find(separator) != std::string::npos && owners.count(pid) != 0;
    };
    for (const auto& h : ctr::cgroup::detail::detect_cgroup_layout().hierarchies) {
        if (!h.usable()) continue;
        for (const auto& entry : std::filesystem::directory_iterator(h.place_dir, ec))
            if (named_after_owner(entry.path().filename().string(), "ctr-run-", '-')) found.push_back(entry.path());
    }
    for (const char* base : {"/dev/shm", "/tmp"})
        for (const auto& entry : std::filesystem::directory_iterator(base, ec))
            if (named_after_owner(entry.path().filename().string(), "ctr-run-overlay.", '.'))
                found.push_back(entry.path());
    return found;
}

// veth ends ctr-run made in this network namespace (the test main's own).
std::vector<std::string> veth_links() {
    std::vector<std::string> out;
    if (struct if_nameindex* list = if_nameindex()) {
        for (const struct if_nameindex* i = list; i->if_index != 0; ++i)
            if (std::string(i->if_name).rfind("ctr-", 0) == 0) out.emplace_back(i->if_name);
        if_freenameindex(list);
    }
    return out;
}

// A CI job that times out kills its runner with SIGKILL at whatever moment
// it is in. ctr-run is killed at random moments from its start (during
// setup and while the command runs), each time with a command that keeps a
// background process: nothing of the sandbox may survive, and what ctr-run
// made outside it (cgroups, the overlay's scratch layer, veth links) must be
// gone once the next ctr-run has run.
TEST(lifecycle, ctr_run_killed_at_random_moments_leaves_nothing_after_the_next_run) {
    const char* count_text = std::getenv("CTR_TEST_OWNER_KILLS");
    const int count = count_text ? std::atoi(count_text) : 200;
    const std::string ctr_run = ctr_test::from_environment_or("CTR_TEST_CTR_RUN", CTR_RUN_BINARY);
    const bool before_links_empty = veth_links().empty();

    // A busybox root under an (empty) overlay layer: ctr-run then makes a
    // scratch directory for the writable layer.
    ctr_test::temp_dir dir;
    const std::string rootfs = dir.path + "/rootfs", layer = dir.path + "/layer";
    if (std::system(("'" + ctr_test::make_rootfs + "' '" + rootfs + "' >/dev/null 2>&1").c_str()) != 0)
        GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed? (tools/install-deps)";
    std::filesystem::create_directory(layer);
    std::filesystem::permissions(dir.path, std::filesystem::perms(0755));
    std::vector<std::string> flags = {"--rootfs", rootfs, "--overlay", layer};
    // Cgroups and a veth network need root; rootless still gets the
    // user namespace, the pid namespace's init and the scratch layer.
    const bool root = ctr_test::real_root && !ctr_test::cgroup_blocker();
    if (root) flags.insert(flags.end(), {"-m", "64m", "--pids-limit", "64"});
    const bool veth = ctr_test::real_root && before_links_empty;
    if (veth) flags.insert(flags.end(), {"--network", "veth"});

    // Orphans of a killed ctr-run come to this process instead of the
    // host's init, so a survivor is found and ended by its pid.
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    // How long a run takes to reach its command here, unkilled: the kills
    // fall at random moments from the start to twice that.
    const auto calibrate_start = std::chrono::steady_clock::now();
    {
        std::vector<std::string> argv = {ctr_run};
        argv.insert(argv.end(), flags.begin(), flags.end());
        argv.insert(argv.end(), {"/bin/sh", "-c", "echo up"});
        auto r = p::spawn(argv, {.std_in = p::stdio::null(), .std_out = p::stdio::capture()}).wait();
        ASSERT_EQ(r.std_out, "up\n") << "ctr-run " << argv.size() << " args exited " << r.exit_code.value_or(-1);
    }
    const auto to_command = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                                    calibrate_start);
    std::mt19937 random(12345);
    std::uniform_int_distribution<long> delay_us(0, 2 * to_command.count());
    std::set<pid_t> killed;
    int survivors = 0, started_command = 0;
    for (int i = 0; i < count; ++i) {
        std::vector<std::string> argv = {ctr_run};
        argv.insert(argv.end(), flags.begin(), flags.end());
        argv.insert(argv.end(), {"/bin/sh", "-c", "echo up; sleep 1000 & exec sleep 1000"});
        auto child = p::spawn(argv, {.std_in = p::stdio::null(), .std_out = p::stdio::pipe(),
                                     .std_err = p::stdio::null()});
        killed.insert(child.pid());
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us(random)));
        child.kill();
        (void)child.wait();
        // End of file once nothing holds ctr-run's stdout: no process of
        // the sandbox is left.
        const int out = child.std_out().get();
        pollfd ready{out, POLLIN, 0};
        if (poll(&ready, 1, 0) > 0) {
            char c;
            if (read(out, &c, 1) == 1) ++started_command;
        }
        if (!ends_within(out, 10s)) ++survivors;
        end_orphans();
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    // One still dying when the last round looked would otherwise stay this
    // process's child, and every later test's check for children fail.
    end_orphans();
    EXPECT_FALSE(ctr_test::has_children()) << "an orphan of a killed ctr-run is still this process's child";
    std::printf("[ lifecycle ] ctr-run %s killed %d times at random moments (0-%ld ms); the command had started %d "
                "times; survivors: %d\n",
                [&] {
                    std::string all;
                    for (const auto& f : flags) all += f + " ";
                    return all;
                }()
                    .c_str(),
                count, static_cast<long>(2 * to_command.count() / 1000), started_command, survivors);
    EXPECT_EQ(survivors, 0);

    // The next run removes what the killed ones could not.
    auto next = p::spawn({ctr_run, "--rootfs", rootfs, "--overlay", layer, "/bin/true"}, {.std_in = p::stdio::null()})
                    .wait();
    if (root) next = p::spawn({ctr_run, "-m", "64m", "/bin/true"}, {.std_in = p::stdio::null()}).wait();
    EXPECT_EQ(next.exit_code, 0);
    const auto left = leftovers_of(killed);
    for (const auto& path : left) ADD_FAILURE() << "left behind: " << path;
    if (veth) {
        // The kernel deletes a pair in the background once the sandbox's
        // network namespace is gone.
        for (int i = 0; i < 100 && !veth_links().empty(); ++i) std::this_thread::sleep_for(100ms);
        EXPECT_EQ(veth_links(), std::vector<std::string>{});
    }
    std::printf("[ lifecycle ] leftovers after the next run: %zu\n", left.size());
}

#endif  // CTR_RUN_BINARY

}  // namespace
