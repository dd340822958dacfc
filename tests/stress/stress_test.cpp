// Stress and crash safety (issue 11): many full-pipeline sandboxes launched
// from several threads at once, every result checked, and afterwards nothing
// of them left in this process (fds, mounts, cgroups, children).
//
// A program of its own (ctr_stress_test, CTest label "stress") so that the
// unit suite stays fast. Counts come from the environment:
//   CTR_STRESS_COUNT         sandboxes of stress.full_pipeline_sandboxes (10000)
//   CTR_STRESS_THREADS       threads launching them (8)
//   CTR_STRESS_FAULT_COUNT   sandboxes of stress.mixed_faults_are_each_reported_right (400)
//   CTR_STRESS_PREPARED_COUNT runs of stress.prepared_sandbox_runs (the same as CTR_STRESS_COUNT)
// e.g. `CTR_STRESS_COUNT=500 build/stress/tests/ctr_stress_test` while developing.
//
// The test main (tests/main.cpp) first moves the process into a mount and
// network namespace of its own (and a user namespace when not root), so the
// mount table compared here is that namespace's.
#include "support.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace cg = ctr::cgroup;
namespace mnt = ctr::mount;
namespace ns = ctr::ns;
using namespace std::chrono_literals;
using ctr::process::stdio;

const std::string crash_helper = ctr_test::from_environment_or("CTR_TEST_CRASH_HELPER", CTR_CRASH_HELPER);

std::size_t count_from_environment(const char* name, std::size_t fallback) {
    const char* text = std::getenv(name);
    if (!text || !*text) return fallback;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (*end != '\0' || value == 0) {
        ADD_FAILURE() << name << "=" << text << " is not a positive number; using " << fallback;
        return fallback;
    }
    return static_cast<std::size_t>(value);
}

// The busybox rootfs, built once by the repository's script, with the crash
// helper as /bin/crash. Empty when it cannot be built.
const std::string& busybox_rootfs() {
    static ctr_test::temp_dir dir;
    static const std::string path = [] {
        const std::string target = dir.path + "/rootfs";
        const std::string command = "'" + ctr_test::make_rootfs + "' '" + target + "' >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0) return std::string();
        std::error_code failed;
        fs::copy_file(crash_helper, target + "/bin/crash", failed);
        if (failed) return std::string();
        return target;
    }();
    return path;
}

// Groups made here carry this prefix and our pid in their names (see
// cgroup::options::prefix), which is how the leak check tells them from the
// groups of whatever else runs beside this test in the same cgroup (the unit
// suite under `ctest -j`, other builds on a shared machine).
const std::string group_prefix = "ctr-stress";

// Why groups cannot be made here, or nothing. Groups that an earlier run
// killed midway left behind go first (cgroup::reap_stale).
std::optional<std::string> cgroups_missing() {
    if (const auto& why = ctr_test::cgroup_blocker()) return std::string(why->what());
    static const bool reaped = [] {
        try {
            if (const std::size_t n = cg::reap_stale(group_prefix))
                std::printf("[ stress   ] removed %zu groups left by an earlier run\n", n);
        } catch (const ctr::error& e) {
            std::printf("[ stress   ] reap_stale: %s\n", e.what());
        }
        return true;
    }();
    (void)reaped;
    return std::nullopt;
}

// ---- what must be the same before and after -------------------------------

void directories_below(const std::string& dir, const std::string& name_prefix, std::vector<std::string>& out) {
    DIR* d = opendir(dir.c_str());
    if (!d) return;  // removed meanwhile by whoever made it
    while (dirent* entry = readdir(d)) {
        if (entry->d_type != DT_DIR || entry->d_name[0] == '.') continue;
        const std::string path = dir + "/" + entry->d_name;
        if (std::string_view(entry->d_name).rfind(name_prefix, 0) == 0) out.push_back(path);
        directories_below(path, name_prefix, out);
    }
    closedir(d);
}

// Our groups below our own cgroup, in every hierarchy.
std::vector<std::string> our_cgroups() {
    std::vector<std::string> out;
    const std::string name_prefix = group_prefix + "-" + std::to_string(getpid()) + "-";
    try {
        for (const auto& h : ctr::detail::detect_cgroup_layout().hierarchies)
            if (!h.place_dir.empty()) directories_below(h.place_dir, name_prefix, out);
    } catch (const ctr::error&) {
        // No cgroups at all: nothing of ours either.
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> lines_of(const std::string& path) {
    std::vector<std::string> lines;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// The children of every thread of this process, zombies included.
std::vector<std::string> child_pids() {
    std::vector<std::string> pids;
    DIR* tasks = opendir("/proc/self/task");
    if (!tasks) return pids;
    while (dirent* entry = readdir(tasks)) {
        if (entry->d_name[0] == '.') continue;
        std::ifstream in(std::string("/proc/self/task/") + entry->d_name + "/children");
        for (std::string pid; in >> pid;) pids.push_back(pid);
    }
    closedir(tasks);
    std::sort(pids.begin(), pids.end());
    return pids;
}

std::size_t thread_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/task")) ++n;
    return n;
}

struct process_state {
    std::vector<int> fds = ctr_test::open_fds();
    std::vector<std::string> mounts = lines_of("/proc/self/mountinfo");
    std::vector<std::string> groups = our_cgroups();
    std::vector<std::string> children = child_pids();
    bool any_child = ctr_test::has_children();  // a zombie waitid still sees
    std::size_t threads = thread_count();
};

void expect_same_state(const process_state& before) {
    const process_state after;
    EXPECT_EQ(after.fds, before.fds) << "fds leaked";
    EXPECT_EQ(after.mounts, before.mounts) << "this process's mount table changed";
    EXPECT_EQ(after.groups, before.groups) << "cgroups of this test left below its own cgroup";
    EXPECT_EQ(after.children, before.children) << "children (running or zombie) left";
    EXPECT_EQ(after.any_child, before.any_child) << "a child (running or zombie) left";
    EXPECT_EQ(after.threads, before.threads) << "threads left";
}

// ---- running many sandboxes from many threads -----------------------------

// Runs job(i) for i in [0, count) from `threads` threads; each returns an
// empty string when sandbox i was right, or what was wrong. The first
// failures are reported (a broken build would otherwise print thousands).
struct run_summary {
    std::size_t failures = 0;
    std::chrono::duration<double> elapsed{};
};

run_summary run_from_threads(std::size_t count, std::size_t threads, const std::function<std::string(std::size_t)>& job) {
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> failures{0};
    std::mutex report;
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (std::size_t t = 0; t < threads; ++t)
        workers.emplace_back([&] {
            for (std::size_t i; (i = next.fetch_add(1)) < count;) {
                std::string wrong;
                try {
                    wrong = job(i);
                } catch (const std::exception& e) {
                    wrong = std::string("threw: ") + e.what();
                }
                if (wrong.empty()) continue;
                if (failures.fetch_add(1) < 20) {
                    std::lock_guard lock(report);
                    ADD_FAILURE() << "sandbox " << i << ": " << wrong;
                }
            }
        });
    for (auto& w : workers) w.join();
    return {failures.load(), std::chrono::steady_clock::now() - start};
}

void print_summary(const char* what, std::size_t count, std::size_t threads, const run_summary& s) {
    std::printf("[ stress   ] %s: %zu sandboxes from %zu threads in %.1f s (%.0f per second), %zu wrong\n", what, count,
                threads, s.elapsed.count(), static_cast<double>(count) / s.elapsed.count(), s.failures);
    std::fflush(stdout);
    testing::Test::RecordProperty("sandboxes", static_cast<int>(count));
    testing::Test::RecordProperty("threads", static_cast<int>(threads));
    testing::Test::RecordProperty("seconds", std::to_string(s.elapsed.count()));
}

// A random part for the tokens, so that output from some other run cannot
// pass for this one's.
const std::string run_id = [] {
    std::random_device random;
    return std::to_string(random() % 1'000'000);
}();

// What every sandbox runs: proves it ran with its own argv, environment and
// hostname, with a writable private /tmp, a read-only root, nothing but lo
// in its network namespace, and in its own cgroup. Builtins only after sh
// starts, so the pids limit is never what a failure is about. (The probe of
// the root uses echo: a failed redirection of a special builtin such as `:`
// ends a POSIX shell.)
constexpr const char* sandbox_script = R"(echo "argv=$0 pid=$$ env=$TOKEN"
read h < /proc/sys/kernel/hostname; echo "host=$h"
echo "$0" > /tmp/t; read t < /tmp/t; echo "tmp=$t"
if echo 2>/dev/null > /ro-probe; then echo root=rw; else echo root=ro; fi
while read l; do case $l in *:*) echo "if=${l%%:*}";; esac; done < /proc/net/dev
while read l; do echo "cg=$l"; done < /proc/self/cgroup
)";

// The namespaces of every sandbox. Not real root (the rootless lane, where
// the test main already made a user namespace and is root in it): a user
// namespace of the sandbox's own too, its root being ours.
ns::kinds sandbox_namespaces() {
    const ns::kinds kinds = ns::mount | ns::pid | ns::uts | ns::ipc | ns::network;
    return ctr_test::real_root ? kinds : kinds | ns::user;
}
const ns::id_maps sandbox_id_maps{.uid = {{0, 0, 1}}, .gid = {{0, 0, 1}}};

mnt::plan sandbox_root() {
    return mnt::plan{.rootfs = busybox_rootfs(), .read_only_root = true}.proc().dev().tmpfs("/tmp", {.size = "1M"});
}

std::string check_pipeline_sandbox(std::size_t index, bool with_cgroup) {
    const std::string token = "s" + run_id + "-" + std::to_string(index);
    std::optional<cg::group> group;
    if (with_cgroup) group.emplace(cg::options{.prefix = group_prefix, .limits = {.memory_max = "32M", .pids_max = 16}});
    ctr::process::result r;
    {
        auto child = ctr::process::spawn({"/bin/sh", "-c", sandbox_script, token},
                                         {.env = {.inherit = false, .set = {{"PATH", "/bin"}, {"TOKEN", token}}},
                                          .std_out = stdio::capture(),
                                          .std_err = stdio::capture(),
                                          // A hung sandbox ends as a failure, never as a hung test.
                                          .timeout = 120s,
                                          .namespaces = sandbox_namespaces(),
                                          .hostname = token,
                                          .id_maps = ctr_test::real_root ? ns::id_maps{} : sandbox_id_maps,
                                          .cgroup = group ? &*group : nullptr,
                                          .root = sandbox_root()});
        r = child.wait();
    }
    std::string wrong;
    const auto fail = [&](const std::string& what) { wrong += (wrong.empty() ? "" : "; ") + what; };
    if (r.exit_code != 0 || r.timed_out)
        fail("ended with exit code " + std::to_string(r.exit_code.value_or(-1)) + ", signal " +
             std::to_string(r.signal.value_or(0)) + (r.timed_out ? ", timed out" : ""));
    const std::string expected = "argv=" + token + " pid=2 env=" + token + "\nhost=" + token + "\ntmp=" + token +
                                 "\nroot=ro\nif=lo\n";
    if (r.std_out.rfind(expected, 0) != 0) fail("stdout \"" + r.std_out + "\", expected it to start with \"" + expected + "\"");
    // Then only the lines of /proc/self/cgroup: no other interface than lo.
    std::istringstream rest(r.std_out.substr(std::min(expected.size(), r.std_out.size())));
    for (std::string line; std::getline(rest, line);)
        if (line.rfind("cg=", 0) != 0) fail("unexpected line \"" + line + "\"");
    if (!r.std_err.empty()) fail("stderr \"" + r.std_err + "\"");
    if (r.oom_killed) fail("reported an out-of-memory kill");
    if (group) {
        if (r.std_out.find("/" + group->name() + "\n") == std::string::npos)
            fail("not in its group " + group->name() + ": \"" + r.std_out + "\"");
        group->remove();  // reports what the destructor would swallow
    }
    return wrong;
}

}  // namespace

// 10,000 sandboxes (CTR_STRESS_COUNT), each with pid, mount, uts, ipc and
// network namespaces (and a user namespace when not real root), a cgroup of its
// own with memory and pids limits, and the busybox rootfs read-only with
// /proc, /dev and a tmpfs /tmp, launched from 8 threads.
TEST(stress, full_pipeline_sandboxes) {
    if (!ctr_test::private_mount_namespace)
        GTEST_SKIP() << "the test main could not enter a private mount namespace (see its message)";
    if (busybox_rootfs().empty())
        GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed? (tools/install-deps)";
    const std::size_t count = count_from_environment("CTR_STRESS_COUNT", 10000);
    const std::size_t threads = count_from_environment("CTR_STRESS_THREADS", 8);
    // Rootless without a delegated cgroup the rest still runs, and says so:
    // namespaces, rootfs and the leak checks are the point there.
    const auto missing = cgroups_missing();
    if (missing) std::printf("[ stress   ] without cgroups (%s)\n", missing->c_str());

    const process_state before;
    const run_summary s = run_from_threads(count, threads, [&](std::size_t i) { return check_pipeline_sandbox(i, !missing); });
    print_summary(missing ? "full pipeline without cgroups" : "full pipeline", count, threads, s);
    EXPECT_EQ(s.failures, 0u);
    expect_same_state(before);
}

// ---- one prepared sandbox, many runs --------------------------------------

namespace {

// The server of a prepared sandbox (its pid 1's only child) and what it
// holds: its fds and its resident set.
struct server_state {
    std::size_t fds = 0;
    long rss_kib = -1;
};

server_state state_of_server_now(pid_t sandbox_pid1) {
    server_state out;
    std::ifstream children("/proc/" + std::to_string(sandbox_pid1) + "/task/" + std::to_string(sandbox_pid1) +
                           "/children");
    pid_t server = -1;
    children >> server;
    if (server <= 0) return out;
    std::error_code ec;
    for (auto it = fs::directory_iterator("/proc/" + std::to_string(server) + "/fd", ec); !ec && it != fs::directory_iterator();
         it.increment(ec))
        ++out.fds;
    for (const auto& line : lines_of("/proc/" + std::to_string(server) + "/status"))
        if (line.rfind("VmRSS:", 0) == 0) out.rss_kib = std::stol(line.substr(6));
    return out;
}

// The server sends a run's "ended" before it closes that run's channel, so
// a caller whose wait() has returned may still see the channel open for a
// moment. What counts is what the server keeps: the fewest fds seen over
// a short while (a leak stays; a channel about to close does not).
server_state state_of_server(pid_t sandbox_pid1) {
    server_state fewest = state_of_server_now(sandbox_pid1);
    for (int i = 0; i < 20; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        const server_state now = state_of_server_now(sandbox_pid1);
        if (now.fds < fewest.fds) fewest = now;
    }
    return fewest;
}

// What every prepared run checks: its own argv and environment, pid 2 under
// its init, a /tmp that holds only what it wrote itself (no earlier run's
// file), the read-only root and lo alone.
constexpr const char* prepared_script = R"(echo "argv=$0 pid=$$ env=$TOKEN"
echo "$0" > /tmp/t; n=0; for f in /tmp/*; do n=$((n+1)); done; echo "tmp-entries=$n"
if echo 2>/dev/null > /ro-probe; then echo root=rw; else echo root=ro; fi
while read l; do case $l in *:*) echo "if=${l%%:*}";; esac; done < /proc/net/dev
)";

std::string check_prepared_run(const ctr::process::prepared_sandbox& box, std::size_t index) {
    const std::string token = "p" + run_id + "-" + std::to_string(index);
    const auto r = box.run({"/bin/sh", "-c", prepared_script, token},
                           {.env = {.inherit = false, .set = {{"PATH", "/bin"}, {"TOKEN", token}}},
                            .std_out = stdio::capture(),
                            .std_err = stdio::capture(),
                            .timeout = 120s})
                       .wait();
    std::string wrong;
    if (r.exit_code != 0 || r.timed_out)
        wrong = "ended with exit code " + std::to_string(r.exit_code.value_or(-1)) + ", signal " +
                std::to_string(r.signal.value_or(0));
    const std::string expected = "argv=" + token + " pid=2 env=" + token + "\ntmp-entries=1\nroot=ro\nif=lo\n";
    if (r.std_out != expected) wrong += "; stdout \"" + r.std_out + "\", expected \"" + expected + "\"";
    if (!r.std_err.empty()) wrong += "; stderr \"" + r.std_err + "\"";
    return wrong;
}

}  // namespace

// CTR_STRESS_PREPARED_COUNT runs (CTR_STRESS_COUNT by default) from one
// prepared sandbox (the namespaces and read-only busybox root of the test
// above, a cgroup with memory and pids limits), from 8 threads; every run
// checked; afterwards nothing left in this process, and the sandbox's
// server holds as many fds and as much memory as after the first runs.
TEST(stress, prepared_sandbox_runs) {
    if (!ctr_test::private_mount_namespace)
        GTEST_SKIP() << "the test main could not enter a private mount namespace (see its message)";
    if (busybox_rootfs().empty())
        GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed? (tools/install-deps)";
    const std::size_t count =
        count_from_environment("CTR_STRESS_PREPARED_COUNT", count_from_environment("CTR_STRESS_COUNT", 10000));
    const std::size_t threads = count_from_environment("CTR_STRESS_THREADS", 8);
    const auto missing = cgroups_missing();
    if (missing) std::printf("[ stress   ] without cgroups (%s)\n", missing->c_str());

    const process_state before;
    {
        std::optional<cg::group> group;
        if (!missing) group.emplace(cg::options{.prefix = group_prefix, .limits = {.memory_max = "64M", .pids_max = 256}});
        const ctr::process::prepared_sandbox box({.namespaces = sandbox_namespaces(),
                                                  .id_maps = ctr_test::real_root ? ns::id_maps{} : sandbox_id_maps,
                                                  .cgroup = group ? &*group : nullptr,
                                                  .root = sandbox_root()});
        // A first round, so that what the server allocates once is there.
        const std::size_t warm = std::min<std::size_t>(count, 50);
        const run_summary first = run_from_threads(warm, threads, [&](std::size_t i) { return check_prepared_run(box, i); });
        EXPECT_EQ(first.failures, 0u);
        const server_state server_before = state_of_server(box.pid());
        const run_summary s =
            run_from_threads(count, threads, [&](std::size_t i) { return check_prepared_run(box, warm + i); });
        print_summary(missing ? "prepared sandbox runs without cgroups" : "prepared sandbox runs", count, threads, s);
        EXPECT_EQ(s.failures, 0u);
        const server_state server_after = state_of_server(box.pid());
        if (ctr_test::real_root) {  // another user namespace's /proc/<pid>/fd is root's to read
            EXPECT_EQ(server_after.fds, server_before.fds) << "the server's fds grew";
            // The server allocates nothing per run: its resident set may
            // move by the pages the kernel faults in, not by the runs.
            EXPECT_LE(server_after.rss_kib, server_before.rss_kib + 512) << "the server's memory grew";
            std::printf("[ stress   ] server: %zu fds, %ld KiB resident after the warm-up; %zu fds, %ld KiB after\n",
                        server_before.fds, server_before.rss_kib, server_after.fds, server_after.rss_kib);
        }
        if (group) {
            EXPECT_EQ(group->pids().size(), 2u) << "the group holds more than pid 1 and the server";
        }
    }
    expect_same_state(before);
}

// ---- mixed faults under load ----------------------------------------------

namespace {

enum class fault : std::uint8_t {
    success,
    exit_code,
    segfault,
    abort,
    timeout,
    timeout_ignoring_term,  // SIGTERM ignored: the grace runs out and SIGKILL ends it
    out_of_memory,
    missing_program,
    missing_cwd,
    missing_mount_source,
};
constexpr std::size_t fault_kinds = 10;

const char* name_of(fault f) {
    switch (f) {
        case fault::success: return "success";
        case fault::exit_code: return "exit_code";
        case fault::segfault: return "segfault";
        case fault::abort: return "abort";
        case fault::timeout: return "timeout";
        case fault::timeout_ignoring_term: return "timeout_ignoring_term";
        case fault::out_of_memory: return "out_of_memory";
        case fault::missing_program: return "missing_program";
        case fault::missing_cwd: return "missing_cwd";
        case fault::missing_mount_source: return "missing_mount_source";
    }
    return "?";
}

// The memory limit of the out-of-memory case and what it allocates.
constexpr const char* small_memory = "8M";
constexpr const char* allocation_mib = "64";

std::string describe(const ctr::process::result& r) {
    std::ostringstream out;
    out << "exit code " << r.exit_code.value_or(-1) << ", signal " << r.signal.value_or(0)
        << (r.timed_out ? ", timed out" : "") << (r.oom_killed ? ", OOM-killed" : "") << ", stdout \"" << r.std_out
        << "\", stderr \"" << r.std_err << "\"";
    return out.str();
}

std::string check_fault_sandbox(std::size_t index, bool with_cgroup) {
    const auto kind = static_cast<fault>(index % fault_kinds);
    if (kind == fault::out_of_memory && !with_cgroup) return {};
    const std::string token = "f" + run_id + "-" + std::to_string(index);
    const std::string missing_source = "/nonexistent-ctr-stress-source-" + token;

    std::optional<cg::group> group;
    if (with_cgroup)
        group.emplace(cg::options{.prefix = group_prefix,
                                  .limits = {.memory_max = kind == fault::out_of_memory ? small_memory : "32M",
                                             .swap_max = "0",
                                             .pids_max = 16}});
    std::vector<std::string> argv;
    ctr::process::options o{.env = {.inherit = false, .set = {{"PATH", "/bin"}, {"TOKEN", token}}},
                            .std_out = stdio::capture(),
                            .std_err = stdio::capture(),
                            .timeout = 120s,
                            .kill_grace = 2s,
                            // No core files, whatever the host's core_pattern.
                            .rlimits = {{RLIMIT_CORE, 0, 0}},
                            .namespaces = sandbox_namespaces(),
                            .hostname = token,
                            .id_maps = ctr_test::real_root ? ns::id_maps{} : sandbox_id_maps,
                            .cgroup = group ? &*group : nullptr,
                            .root = sandbox_root()};
    switch (kind) {
        case fault::success: argv = {"/bin/sh", "-c", "echo ok-$TOKEN"}; break;
        case fault::exit_code: argv = {"/bin/sh", "-c", "exit 42"}; break;
        case fault::segfault: argv = {"/bin/crash", "segv"}; break;
        case fault::abort: argv = {"/bin/crash", "abort"}; break;
        case fault::timeout:
            argv = {"/bin/sleep", "1000"};
            o.timeout = 200ms;
            break;
        case fault::timeout_ignoring_term:
            argv = {"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 1000"};
            o.timeout = 200ms;
            o.kill_grace = 200ms;
            break;
        case fault::out_of_memory: argv = {"/bin/crash", "alloc", allocation_mib}; break;
        case fault::missing_program: argv = {"/bin/nope-" + token}; break;
        case fault::missing_cwd:
            argv = {"/bin/true"};
            o.cwd = "/nonexistent-cwd";
            break;
        case fault::missing_mount_source:
            argv = {"/bin/true"};
            o.root->bind(missing_source, "/mnt");
            break;
    }

    std::optional<ctr::process::result> r;
    std::optional<ctr::error> failed;
    try {
        auto child = ctr::process::spawn(argv, o);
        r = child.wait();
    } catch (const ctr::error& e) {
        failed = e;
    }
    if (group) group->remove();

    const auto expect_error = [&](ctr::step s, int code, const std::string& path) -> std::string {
        if (!failed) return "ran (" + describe(*r) + "), expected the error " + std::string(ctr::to_string(s));
        const std::string what = failed->what();
        if (failed->step() != s || failed->code().value() != code || what.find(path) == std::string::npos)
            return "error \"" + what + "\" (step " + std::string(ctr::to_string(failed->step())) + ", errno " +
                   std::to_string(failed->code().value()) + "), expected step " + std::string(ctr::to_string(s)) +
                   ", errno " + std::to_string(code) + ", naming '" + path + "'";
        return {};
    };
    const auto expect_run = [&](bool right) -> std::string {
        if (failed) return std::string("threw \"") + failed->what() + "\"";
        return right ? std::string() : describe(*r);
    };
    const auto ended_by = [&](int sig) { return !r->exit_code && r->signal == sig && !r->core_dumped; };

    std::string wrong;
    switch (kind) {
        case fault::success:
            wrong = expect_run(r && r->success() && r->std_out == "ok-" + token + "\n" && !r->oom_killed);
            break;
        case fault::exit_code: wrong = expect_run(r && r->exit_code == 42 && !r->timed_out && !r->oom_killed); break;
        case fault::segfault: wrong = expect_run(r && ended_by(SIGSEGV) && !r->timed_out && !r->oom_killed); break;
        case fault::abort: wrong = expect_run(r && ended_by(SIGABRT) && !r->timed_out && !r->oom_killed); break;
        case fault::timeout: wrong = expect_run(r && ended_by(SIGTERM) && r->timed_out && !r->oom_killed); break;
        case fault::timeout_ignoring_term:
            // Once "ready" is out, SIGTERM is ignored and only SIGKILL ends
            // it; before, a SIGTERM that came first may end it.
            wrong = expect_run(r && r->timed_out && !r->oom_killed &&
                               (ended_by(SIGKILL) || (ended_by(SIGTERM) && r->std_out.empty())));
            break;
        case fault::out_of_memory:
            wrong = expect_run(r && ended_by(SIGKILL) && r->oom_killed && !r->timed_out &&
                               r->std_out.find("allocated") == std::string::npos);
            break;
        case fault::missing_program: wrong = expect_error(ctr::step::exec, ENOENT, "/bin/nope-" + token); break;
        case fault::missing_cwd: wrong = expect_error(ctr::step::change_directory, ENOENT, "/nonexistent-cwd"); break;
        case fault::missing_mount_source: wrong = expect_error(ctr::step::bind_mount, ENOENT, missing_source); break;
    }
    return wrong.empty() ? wrong : std::string(name_of(kind)) + ": " + wrong;
}

}  // namespace

// Sandboxes that crash, time out, run out of memory, fail during setup and
// succeed, interleaved on 4 threads: each is reported as what it was, and
// nothing is left afterwards.
TEST(stress, mixed_faults_are_each_reported_right) {
    if (!ctr_test::private_mount_namespace)
        GTEST_SKIP() << "the test main could not enter a private mount namespace (see its message)";
    if (busybox_rootfs().empty())
        GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed? (tools/install-deps)";
    const std::size_t count = count_from_environment("CTR_STRESS_FAULT_COUNT", 400);
    const std::size_t threads = 4;
    const auto missing = cgroups_missing();
    if (missing) std::printf("[ stress   ] without cgroups, so without the out-of-memory case (%s)\n", missing->c_str());

    const process_state before;
    const run_summary s = run_from_threads(count, threads, [&](std::size_t i) { return check_fault_sandbox(i, !missing); });
    print_summary("mixed faults", count, threads, s);
    EXPECT_EQ(s.failures, 0u);
    expect_same_state(before);
}
