// Startup cost by stage, and how it scales (issue 14), in one run so that
// every ratio compares figures taken side by side:
//  - stages: posix_spawn and fork+exec of a static no-op, a plain ctr spawn,
//    then each layer alone on top of it (each namespace kind, three mount
//    plans, cgroups, confinement, a veth), a build-up that adds the layers
//    one by one, and the full pipeline;
//  - scale: a plain spawn and the full pipeline from a parent with 10 MiB,
//    1 GiB and 4 GiB of touched heap; full-pipeline sandboxes per second
//    from 1, 2, 4 and 8 threads; the cost of 1, 10 and 100 mounts in a plan.
// Each launch is timed by itself (clock_gettime around spawn and reap), so
// every benchmark reports its median and 99th percentile besides the mean.
// The targets are printed at the end as ratios, never asserted.
//
// Iterations per benchmark: CTR_BENCH_ITERATIONS (default 300; the heap
// scale runs a third of it at 1 GiB and 4 GiB, whose launches are slow);
// launches per thread count: CTR_BENCH_THROUGHPUT_LAUNCHES (default 240).
//
// Safety: every mount happens in the mount namespace that spawn makes for
// the child, and as root the program first enters a private mount namespace
// and a network namespace of its own, so that the veths it makes never
// touch the machine's network. Its cgroups sit below its own, named
// "ctr-bench-pipeline-...", and are removed before it ends. Not root: the
// cgroup and veth stages are skipped with the reason.
#include <ctr/ctr.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <sched.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern "C" char** environ;

namespace {

namespace cg = ctr::cgroup;
namespace fs = std::filesystem;
namespace mnt = ctr::mount;
namespace ns = ctr::ns;
using ctr::process::options;

bool privileged = false;

std::string from_environment_or(const char* variable, const char* built) {
    const char* value = std::getenv(variable);
    return value && *value ? value : built;
}

int count_from_environment(const char* variable, int fallback) {
    const char* value = std::getenv(variable);
    if (!value || !*value) return fallback;
    const int n = std::atoi(value);
    return n > 0 ? n : fallback;
}

// The rootless lane copies the helpers where its user can read them.
const std::string noop = from_environment_or("CTR_BENCH_NOOP_STATIC", CTR_NOOP_STATIC);
const std::string make_rootfs = from_environment_or("CTR_BENCH_MAKE_ROOTFS", CTR_MAKE_ROOTFS);
const int iterations = count_from_environment("CTR_BENCH_ITERATIONS", 300);
const int throughput_launches = count_from_environment("CTR_BENCH_THROUGHPUT_LAUNCHES", 240);

double seconds_now() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Nearest rank: the smallest sample with at least q of them at or below it.
double percentile(const std::vector<double>& sorted_us, double q) {
    if (sorted_us.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted_us.size())));
    return sorted_us[std::clamp<std::size_t>(rank, 1, sorted_us.size()) - 1];
}

void publish(benchmark::State& state, std::vector<double> us) {
    if (us.empty()) return;
    std::sort(us.begin(), us.end());
    const double p50 = percentile(us, 0.50), p99 = percentile(us, 0.99);
    state.counters["p50_us"] = p50;
    state.counters["p99_us"] = p99;
    state.counters["p99/p50"] = p99 / p50;
}

// A launch returns an empty string, or why it failed.
using launch_fn = std::function<std::string()>;

std::string run_ctr(const std::vector<std::string>& argv, const options& opts) {
    try {
        const auto r = ctr::process::spawn(argv, opts).wait();
        if (r.exit_code == 0) return {};
        if (r.exit_code) return "the no-op exited with status " + std::to_string(*r.exit_code);
        return "the no-op was killed by signal " + std::to_string(r.signal.value_or(0));
    } catch (const std::exception& e) {
        return e.what();
    }
}

std::string wait_ok(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return "the no-op failed";
    return {};
}

std::string run_posix_spawn() {
    char* argv[] = {const_cast<char*>(noop.c_str()), nullptr};
    pid_t pid = 0;
    if (const int e = posix_spawn(&pid, noop.c_str(), nullptr, nullptr, argv, environ); e != 0)
        return std::string("posix_spawn: ") + std::strerror(e);
    return wait_ok(pid);
}

std::string run_fork_exec() {
    char* argv[] = {const_cast<char*>(noop.c_str()), nullptr};
    const pid_t pid = fork();
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    if (pid == 0) {
        execve(noop.c_str(), argv, environ);
        _exit(127);
    }
    return wait_ok(pid);
}

// Times each launch by itself: the iteration's time is the launch's, and
// the samples give the median and the 99th percentile. One launch first,
// untimed: the first after a change (a new overlay, a grown heap) pays for
// caches that every later one finds warm.
void timed(benchmark::State& state, const launch_fn& launch) {
    if (const std::string failure = launch(); !failure.empty()) {
        state.SkipWithError(failure.c_str());
        for (auto _ : state) {
        }
        return;
    }
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(state.max_iterations));
    for (auto _ : state) {
        const double start = seconds_now();
        const std::string failure = launch();
        const double took = seconds_now() - start;
        state.SetIterationTime(took);
        if (!failure.empty()) {
            state.SkipWithError(failure.c_str());
            break;
        }
        us.push_back(took * 1e6);
    }
    publish(state, std::move(us));
}

// What the sandboxes are built from, made once in a temporary directory: a
// busybox rootfs with the static no-op at /bin/noop, two more overlay
// layers, and the mount points and bind sources of the mount-count plans.
struct fixtures {
    fs::path dir;
    std::string rootfs;  // empty: no busybox
    std::string why_no_rootfs;
    static constexpr int most_mounts = 100;

    fixtures() {
        char pattern[] = "/tmp/ctr-pipeline-bench-XXXXXX";
        if (!mkdtemp(pattern)) {
            why_no_rootfs = std::string("mkdtemp: ") + std::strerror(errno);
            return;
        }
        dir = pattern;
        // The sandbox's root is an unprivileged host id when the user
        // namespace maps it (root's runs): it must be able to enter.
        chmod(pattern, 0755);
        const std::string root = (dir / "busybox").string();
        const std::string command = "'" + make_rootfs + "' '" + root + "' >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0) {
            why_no_rootfs = make_rootfs + " failed (install busybox-static)";
            return;
        }
        std::error_code ec;
        fs::copy_file(noop, root + "/bin/noop", ec);
        if (ec) {
            why_no_rootfs = "cannot copy " + noop + ": " + ec.message();
            return;
        }
        fs::permissions(root + "/bin/noop", fs::perms(0755), ec);
        for (const char* d : {"layer1", "layer2", "upper", "work", "bind-source"}) fs::create_directories(dir / d);
        std::ofstream(dir / "layer1/app.conf") << "app\n";
        std::ofstream(dir / "layer2/lib.txt") << "lib\n";
        for (int i = 0; i < most_mounts; ++i) fs::create_directories(root + "/mnt/" + std::to_string(i));
        rootfs = root;
    }
    ~fixtures() {
        if (dir.empty()) return;
        std::error_code ignored;
        // overlayfs leaves work/work with mode 000; not root, remove_all
        // could not enter it.
        fs::permissions(dir / "work/work", fs::perms::owner_all, ignored);
        fs::remove_all(dir, ignored);
    }
    fixtures(const fixtures&) = delete;
    fixtures& operator=(const fixtures&) = delete;

    // The busybox root with a fresh proc and a minimal /dev, entered by
    // pivot_root (the plan's default).
    mnt::plan busybox() const {
        mnt::plan p{.rootfs = rootfs};
        p.proc().dev();
        return p;
    }
    mnt::plan overlay() const {
        mnt::plan p{};
        p.overlay("/", {.lower = {(dir / "layer1").string(), (dir / "layer2").string(), rootfs},
                        .upper = (dir / "upper").string(),
                        .work = (dir / "work").string()})
            .proc()
            .dev();
        return p;
    }
    // The busybox root and `n` more mounts, binds and tmpfs in turn.
    mnt::plan with_mounts(int n) const {
        mnt::plan p{.rootfs = rootfs};
        for (int i = 0; i < n; ++i) {
            const std::string target = "/mnt/" + std::to_string(i);
            if (i % 2 == 0)
                p.bind((dir / "bind-source").string(), target);
            else
                p.tmpfs(target, {.size = "1M"});
        }
        return p;
    }
};

const fixtures* fixture = nullptr;

// The id maps of the user namespace: as root, the sandbox's 0..65535 onto
// an unprivileged host range, as a container runtime maps; otherwise the
// caller becomes root inside (one id, no newuidmap).
ns::id_maps id_maps() {
    if (privileged) return {.uid = {{0, 100000, 65536}}, .gid = {{0, 100000, 65536}}};
    return {.full_range_when_available = false};
}

// Groups below this process's own, under a prefix of their own.
const cg::options group_options{
    .prefix = "ctr-bench-pipeline",
    .limits = {.memory_max = "256M", .pids_max = 256},
};

// The group that the "reused" launches share, made on first use; or why it
// cannot be made here.
std::optional<cg::group> shared_group;
std::string why_no_group;

cg::group* reused_group() {
    if (shared_group || !why_no_group.empty()) return shared_group ? &*shared_group : nullptr;
    try {
        shared_group.emplace(group_options);
    } catch (const std::exception& e) {
        why_no_group = e.what();
    }
    return shared_group ? &*shared_group : nullptr;
}

// The full pipeline (issue 14): user (with id maps), pid (with the init),
// mount, uts and ipc namespaces; a cgroup with memory and pids limits; the
// busybox root with proc and /dev, entered by pivot_root; confinement
// (capabilities dropped, no_new_privs, the default seccomp profile); exec
// of the static no-op, and the reap. `group` may be null: the same without
// a cgroup (the launchers below set it).
options full_pipeline(cg::group* group) {
    return {.namespaces = ns::user | ns::pid | ns::mount | ns::uts | ns::ipc,
            .hostname = "sandbox",
            .id_maps = id_maps(),
            .cgroup = group,
            .root = fixture->busybox(),
            .security = ctr::security::confined()};
}

const std::vector<std::string> noop_in_root{"/bin/noop"};

// Not root, spawn adds a user namespace to every launch, whose default maps
// run newuidmap and newgidmap where the caller has subordinate ids (two
// setuid programs per launch): every rootless launch here maps the caller
// alone instead, so that the stages compare like with like, and
// stage/ns_user_default_maps shows what the default costs.
options rootless_maps(options opts) {
    if (!privileged) opts.id_maps = id_maps();
    return opts;
}

launch_fn ctr_launch_as_given(std::vector<std::string> argv, options opts) {
    return [argv = std::move(argv), opts = std::move(opts)] { return run_ctr(argv, opts); };
}

launch_fn ctr_launch(std::vector<std::string> argv, options opts) {
    return ctr_launch_as_given(std::move(argv), rootless_maps(std::move(opts)));
}

// A launch in a group of its own, made and removed each time. The options
// are built once; only their group changes.
launch_fn launch_in_new_group(std::vector<std::string> argv, options base) {
    auto opts = std::make_shared<options>(rootless_maps(std::move(base)));
    return [opts, argv = std::move(argv)]() -> std::string {
        try {
            cg::group g(group_options);
            opts->cgroup = &g;
            std::string failure = run_ctr(argv, *opts);
            opts->cgroup = nullptr;
            g.remove();
            return failure;
        } catch (const std::exception& e) {
            opts->cgroup = nullptr;
            return e.what();
        }
    };
}

// A launch in the shared group.
launch_fn launch_in_reused_group(std::vector<std::string> argv, options base) {
    auto opts = std::make_shared<options>(rootless_maps(std::move(base)));
    return [opts, argv = std::move(argv)]() -> std::string {
        cg::group* g = reused_group();
        if (!g) return "cannot make cgroups here: " + why_no_group;
        opts->cgroup = g;
        return run_ctr(argv, *opts);
    };
}

// A launch from a prepared sandbox (ctr/prepared.hpp) made with `base` on
// the first launch (so after the heap has grown to the run's size), in the
// shared group: each run pays only for its fresh pid and mount namespaces,
// /proc, /tmp, IPC and UTS, its init, confinement and exec.
launch_fn launch_prepared(std::vector<std::string> argv, options base) {
    auto box = std::make_shared<std::optional<ctr::process::prepared_sandbox>>();
    auto opts = std::make_shared<options>(rootless_maps(std::move(base)));
    return [box, opts, argv = std::move(argv)]() -> std::string {
        try {
            if (!*box) {
                opts->cgroup = reused_group();
                box->emplace(*opts);
            }
            const auto r = (*box)->run(argv, {.std_in = ctr::process::stdio::null()}).wait();
            if (r.exit_code == 0) return {};
            return "the no-op ended with status " + std::to_string(r.exit_code.value_or(-1)) + ", signal " +
                   std::to_string(r.signal.value_or(0));
        } catch (const std::exception& e) {
            return e.what();
        }
    };
}

// What the summary lists, in the order registered.
std::vector<std::string> latency_benchmarks;
std::vector<std::string> throughput_benchmarks;

void add_timed(const std::string& name, launch_fn launch, int n = iterations) {
    latency_benchmarks.push_back(name);
    benchmark::RegisterBenchmark(name.c_str(), [launch = std::move(launch)](benchmark::State& s) { timed(s, launch); })
        ->UseManualTime()
        ->Iterations(n)
        ->Unit(benchmark::kMicrosecond);
}

void add_skipped(const std::string& name, std::string why) {
    benchmark::RegisterBenchmark(name.c_str(), [why = std::move(why)](benchmark::State& s) {
        s.SkipWithError(why.c_str());
        for (auto _ : s) {
        }
    })->Iterations(1);
}

// Full-pipeline sandboxes per second from `threads` threads, all in the
// shared group (or, `with_group` false, in none): each thread launches its
// share of throughput_launches one after another. One iteration; its time
// is the wall time of them all.
void throughput(benchmark::State& state, int threads, bool with_group, bool prepared = false) {
    cg::group* group = with_group ? reused_group() : nullptr;
    if (with_group && !group) {
        state.SkipWithError(("cannot make cgroups here: " + why_no_group).c_str());
        for (auto _ : state) {
        }
        return;
    }
    const int each = std::max(1, throughput_launches / threads);
    std::vector<std::vector<double>> samples(static_cast<std::size_t>(threads));
    std::mutex failure_lock;
    std::string failure;
    // One prepared sandbox that every thread starts its runs from.
    std::optional<ctr::process::prepared_sandbox> box;
    if (prepared) {
        try {
            box.emplace(rootless_maps(full_pipeline(group)));
        } catch (const std::exception& e) {
            state.SkipWithError(e.what());
            for (auto _ : state) {
            }
            return;
        }
    }
    for (auto _ : state) {
        const double start = seconds_now();
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t)
            workers.emplace_back([&, t] {
                auto& mine = samples[static_cast<std::size_t>(t)];
                const options opts = rootless_maps(full_pipeline(group));
                for (int i = 0; i < each; ++i) {
                    const double begin = seconds_now();
                    std::string why;
                    if (box) {
                        try {
                            const auto r = box->run(noop_in_root, {.std_in = ctr::process::stdio::null()}).wait();
                            if (r.exit_code != 0) why = "a prepared run failed";
                        } catch (const std::exception& e) {
                            why = e.what();
                        }
                    } else {
                        why = run_ctr(noop_in_root, opts);
                    }
                    if (!why.empty()) {
                        const std::lock_guard hold(failure_lock);
                        if (failure.empty()) failure = why;
                        return;
                    }
                    mine.push_back((seconds_now() - begin) * 1e6);
                }
            });
        for (auto& w : workers) w.join();
        const double took = seconds_now() - start;
        state.SetIterationTime(took);
        if (!failure.empty()) {
            state.SkipWithError(failure.c_str());
            break;
        }
        state.counters["sandboxes_per_s"] = static_cast<double>(each * threads) / took;
    }
    std::vector<double> all;
    for (const auto& s : samples) all.insert(all.end(), s.begin(), s.end());
    publish(state, std::move(all));
}

// The parent's heap for the scale runs: grown (never shrunk) to the size
// asked, every page touched, so that copying the caller's memory (a fork,
// the sealed init's copy, a child in a cgroup) costs what it would in a
// large program. The scale benchmarks run last, smallest first.
std::vector<std::unique_ptr<char[]>> ballast;
std::size_t ballast_bytes = 0;

// The kernel's MemAvailable in bytes, or 0 when unknown.
std::size_t available_memory() {
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);)
        if (line.starts_with("MemAvailable:"))
            return static_cast<std::size_t>(std::strtoull(line.c_str() + 13, nullptr, 10)) * 1024;  // "... kB"
    return 0;
}

// Empty, or why the ballast cannot grow to `bytes`.
std::string grow_ballast(std::size_t bytes) {
    if (ballast_bytes >= bytes) return {};
    const std::size_t more = bytes - ballast_bytes;
    // Touching more than the machine has would bring in the OOM killer; a
    // GiB is left for the launches.
    if (const std::size_t available = available_memory(); available != 0 && more + (std::size_t{1} << 30) > available)
        return "the heap ballast needs " + std::to_string(more >> 20) + " MiB more and " +
               std::to_string(available >> 20) + " MiB are available (with 1 GiB to spare)";
    std::unique_ptr<char[]> chunk(new (std::nothrow) char[more]);
    if (!chunk) return "cannot allocate the heap ballast";
    const long page = sysconf(_SC_PAGESIZE);
    for (std::size_t i = 0; i < more; i += static_cast<std::size_t>(page)) chunk[i] = 1;
    benchmark::DoNotOptimize(chunk.get());
    ballast.push_back(std::move(chunk));
    ballast_bytes = bytes;
    return {};
}

void add_heap_timed(const std::string& name, std::size_t heap, launch_fn launch, int n) {
    latency_benchmarks.push_back(name);
    benchmark::RegisterBenchmark(name.c_str(), [heap, launch = std::move(launch)](benchmark::State& s) {
        if (const std::string why = grow_ballast(heap); !why.empty()) {
            s.SkipWithError(why.c_str());
            for (auto _ : s) {
            }
            return;
        }
        timed(s, launch);
    })
        ->UseManualTime()
        ->Iterations(n)
        ->Unit(benchmark::kMicrosecond);
}

// As root: a private mount namespace (belt and braces: spawn gives every
// child with a root filesystem a mount namespace of its own anyway) and a
// network namespace of this process's own, where the veths go.
std::string enter_own_namespaces() {
    if (!privileged) return {};
    if (unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) return std::string("unshare: ") + std::strerror(errno);
    if (ctr::detail::sys::mount(nullptr, "/", nullptr,
                                ctr::detail::mount_abi::ms_rec | ctr::detail::mount_abi::ms_private, nullptr) != 0)
        return std::string("making / private: ") + std::strerror(errno);
    return {};
}

class pipeline_summary : public ctr_bench::ratio_reporter {
public:
    using ratio_reporter::ratio_reporter;

    void ReportRuns(const std::vector<Run>& runs) override {
        ratio_reporter::ReportRuns(runs);
        for (const auto& run : runs)
            if (run.error_occurred) {
                std::string name = run.benchmark_name();
                if (const auto at = name.find("/iterations:"); at != std::string::npos) name.resize(at);
                skipped_[name] = run.error_message;
            }
    }

private:
    std::map<std::string, std::string> skipped_;

    double p50(const std::string& name) const { return counter(name, "p50_us"); }

    // "label  a/b  goal ...: met|MISSED" on the medians, when both ran.
    void goal_ratio(const char* label, const std::string& a, const std::string& b, double goal) const {
        const double x = p50(a), y = p50(b);
        if (x <= 0 || y <= 0) {
            std::printf("  %-58s    n/a   (%s or %s did not run)\n", label, a.c_str(), b.c_str());
            return;
        }
        const double value = x / y;
        std::printf("  %-58s %6.2f   goal <= %.1f: %s\n", label, value, goal, value <= goal ? "met" : "MISSED");
    }

    void summary() override {
        std::printf("\nIssue 14 targets, on the medians of this run (printed, never asserted):\n");
        goal_ratio("full pipeline (reused group) / posix_spawn", "full_pipeline/reused_group", "stage/posix_spawn",
                   1.5);
        goal_ratio("full pipeline (new group per launch) / posix_spawn", "full_pipeline/new_group",
                   "stage/posix_spawn", 1.5);
        goal_ratio("full pipeline without a cgroup / posix_spawn", "full_pipeline/no_cgroup", "stage/posix_spawn",
                   1.5);
        goal_ratio("ctr spawn, 4 GiB heap / 10 MiB heap", "heap/4GiB/ctr_spawn", "heap/10MiB/ctr_spawn", 1.1);
        goal_ratio("full pipeline, 4 GiB heap / 10 MiB heap", "heap/4GiB/full_pipeline", "heap/10MiB/full_pipeline",
                   1.1);
        goal_ratio("posix_spawn, 4 GiB heap / 10 MiB heap (reference)", "heap/4GiB/posix_spawn",
                   "heap/10MiB/posix_spawn", 1.1);

        goal_ratio("prepared sandbox: full pipeline / posix_spawn", "prepared/full_pipeline", "stage/posix_spawn", 1.2);
        goal_ratio("prepared sandbox, 4 GiB heap / 10 MiB heap", "heap/4GiB/prepared", "heap/10MiB/prepared", 1.1);
        for (const auto& [series, goal] : {std::pair<const char*, double>{"throughput/full_pipeline/", 1000},
                                           {"throughput/full_pipeline_no_cgroup/", 1000},
                                           {"throughput/prepared/", 2000}}) {
            double best = 0;
            for (const auto& name : throughput_benchmarks)
                if (name.starts_with(series)) best = std::max(best, counter(name, "sandboxes_per_s"));
            if (best <= 0) continue;
            std::string label = std::string(series).substr(11);
            label.back() = ':';
            label += " sandboxes/s, best thread count";
            std::printf("  %-58s %6.0f   goal >= %.0f/s: %s\n", label.c_str(), best, goal,
                        best >= goal ? "met" : "MISSED");
        }

        std::printf("\nPer launch, median and 99th percentile (goal: p99/p50 <= 3 for every stage):\n");
        std::printf("  %-40s %10s %10s %8s %12s\n", "", "p50 us", "p99 us", "p99/p50", "+p50 vs ctr");
        const double plain = p50("stage/ctr_spawn");
        int missed = 0, met = 0;
        for (const auto& name : latency_benchmarks) {
            const double a = p50(name), b = counter(name, "p99_us");
            if (a <= 0) {
                // Not run at all: left out by --benchmark_filter.
                if (const auto why = skipped_.find(name); why != skipped_.end())
                    std::printf("  %-40s skipped: %.70s%s\n", name.c_str(), why->second.c_str(),
                                why->second.size() > 70 ? "..." : "");
                continue;
            }
            const bool ok = b / a <= 3;
            (ok ? met : missed)++;
            std::printf("  %-40s %10.0f %10.0f %8.2f", name.c_str(), a, b, b / a);
            if (plain > 0 && name != "stage/ctr_spawn") std::printf(" %+11.0f", a - plain);
            else std::printf(" %11s", "");
            std::printf("  %s\n", ok ? "met" : "MISSED");
        }
        std::printf("  p99/p50 <= 3: met by %d, MISSED by %d\n", met, missed);
        if (!throughput_benchmarks.empty()) {
            std::printf("\nFull-pipeline throughput (full_pipeline: one shared group; _no_cgroup: none):\n");
            for (const auto& name : throughput_benchmarks) {
                const double rate = counter(name, "sandboxes_per_s");
                if (rate < 0) {
                    if (skipped_.count(name)) std::printf("  %-44s skipped (see above)\n", name.c_str());
                } else
                    std::printf("  %-44s %8.0f sandboxes/s  (per launch p50 %.0f us, p99 %.0f us)\n", name.c_str(),
                                rate, p50(name), counter(name, "p99_us"));
            }
        }
    }
};

void register_stages() {
    const fixtures& f = *fixture;
    add_timed("stage/posix_spawn", run_posix_spawn);
    add_timed("stage/fork_exec", run_fork_exec);
    add_timed("stage/ctr_spawn", ctr_launch({noop}, {}));

    // Each namespace kind alone, on top of a plain spawn. Not root, spawn
    // adds a user namespace to every one of them (that is what lets it make
    // the others).
    for (ns::kind kind : ns::every_kind) {
        const std::string kind_name(ns::name(kind));
        const std::string name = "stage/ns_" + kind_name + (kind == ns::pid ? "_init" : "");
        if (access(("/proc/self/ns/" + kind_name).c_str(), F_OK) != 0) {
            add_skipped(name, "this kernel has no " + kind_name + " namespace");
            continue;
        }
        options opts{.namespaces = kind};
        if (kind == ns::user) opts.id_maps = id_maps();
        add_timed(name, ctr_launch({noop}, std::move(opts)));
    }
    // The default maps (ns::id_maps): as root, 0..65535 onto root's
    // subordinate range, written directly; not root, the caller and its
    // subordinate range through newuidmap and newgidmap where it has one.
    add_timed("stage/ns_user_default_maps", ctr_launch_as_given({noop}, {.namespaces = ns::user}));

    // Mount plans (each adds a mount namespace). Not root, a fresh proc
    // needs a pid namespace that the user namespace owns.
    const ns::kinds pid_if_rootless = privileged ? ns::none : ns::kinds(ns::pid);
    if (noop.starts_with("/tmp/"))
        add_skipped("stage/mount_host_readonly", "the plan's /tmp is a tmpfs of its own, which hides " + noop +
                                                     ": put the no-op elsewhere (CTR_BENCH_NOOP_STATIC)");
    else
        add_timed("stage/mount_host_readonly",
                  ctr_launch({noop}, {.namespaces = pid_if_rootless, .root = mnt::host_readonly()}));
    if (f.rootfs.empty()) {
        add_skipped("stage/mount_busybox_proc_dev", f.why_no_rootfs);
        add_skipped("stage/mount_overlay_3_layers", f.why_no_rootfs);
    } else {
        add_timed("stage/mount_busybox_proc_dev",
                  ctr_launch(noop_in_root, {.namespaces = pid_if_rootless, .root = f.busybox()}));
        add_timed("stage/mount_overlay_3_layers",
                  ctr_launch(noop_in_root, {.namespaces = pid_if_rootless, .root = f.overlay()}));
    }

    // Cgroups: a limited group made and removed per launch, and a reused one.
    add_timed("stage/cgroup_new_group", launch_in_new_group({noop}, {}));
    add_timed("stage/cgroup_reused_group", launch_in_reused_group({noop}, {}));

    // Not root, dropping capabilities needs the user namespace in which
    // the command is root.
    add_timed("stage/confined",
              ctr_launch({noop}, {.namespaces = privileged ? ns::none : ns::kinds(ns::user),
                                  .security = ctr::security::confined()}));

    if (privileged)
        add_timed("stage/veth", ctr_launch({noop}, {.network = ctr::net::veth{}}));
    else
        add_skipped("stage/veth", "a veth needs CAP_NET_ADMIN in the caller's network namespace: run as root");

    if (f.rootfs.empty()) {
        add_skipped("full_pipeline/reused_group", f.why_no_rootfs);
        return;
    }
    // The build-up: the full pipeline's layers added one at a time.
    const ns::kinds user_pid = ns::user | ns::pid;
    const ns::kinds five = ns::user | ns::pid | ns::mount | ns::uts | ns::ipc;
    add_timed("build_up/1_user", ctr_launch({noop}, {.namespaces = ns::user, .id_maps = id_maps()}));
    add_timed("build_up/2_+pid_init", ctr_launch({noop}, {.namespaces = user_pid, .id_maps = id_maps()}));
    add_timed("build_up/3_+mount_uts_ipc",
              ctr_launch({noop}, {.namespaces = five, .hostname = "sandbox", .id_maps = id_maps()}));
    add_timed("build_up/4_+busybox_root",
              ctr_launch(noop_in_root,
                         {.namespaces = five, .hostname = "sandbox", .id_maps = id_maps(), .root = f.busybox()}));
    add_timed("full_pipeline/no_cgroup", ctr_launch(noop_in_root, full_pipeline(nullptr)));
    add_timed("full_pipeline/reused_group", launch_in_reused_group(noop_in_root, full_pipeline(nullptr)));
    add_timed("full_pipeline/new_group", launch_in_new_group(noop_in_root, full_pipeline(nullptr)));
    // The same job from a prepared sandbox (made on the first launch).
    add_timed("prepared/full_pipeline", launch_prepared(noop_in_root, full_pipeline(nullptr)));
}

void register_scale() {
    const fixtures& f = *fixture;
    if (!f.rootfs.empty()) {
        for (const bool with_group : {true, false}) {
            for (int threads : {1, 2, 4, 8}) {
                const std::string name = std::string("throughput/full_pipeline") + (with_group ? "" : "_no_cgroup") +
                                         "/threads:" + std::to_string(threads);
                throughput_benchmarks.push_back(name);
                benchmark::RegisterBenchmark(name.c_str(), [threads, with_group](benchmark::State& s) {
                    throughput(s, threads, with_group);
                })
                    ->UseManualTime()
                    ->Iterations(1)
                    ->Unit(benchmark::kMillisecond);
            }
        }
        for (int threads : {1, 2, 4, 8}) {
            const std::string name = "throughput/prepared/threads:" + std::to_string(threads);
            throughput_benchmarks.push_back(name);
            benchmark::RegisterBenchmark(name.c_str(), [threads](benchmark::State& s) { throughput(s, threads, true, true); })
                ->UseManualTime()
                ->Iterations(1)
                ->Unit(benchmark::kMillisecond);
        }
        for (int n : {1, 10, 100}) {
            // Not root, spawn adds the user namespace, whose root may bind and
            // mount tmpfs in the mount namespace it owns.
            add_timed("mounts/" + std::to_string(n), ctr_launch(noop_in_root, {.root = f.with_mounts(n)}));
        }
    }
    // The heap runs last, smallest first: the ballast only grows.
    struct heap_size {
        const char* name;
        std::size_t bytes;
        int n;
    };
    const int slow = std::max(1, iterations / 3);
    for (const heap_size& h : {heap_size{"10MiB", std::size_t{10} << 20, iterations},
                               heap_size{"1GiB", std::size_t{1} << 30, slow},
                               heap_size{"4GiB", std::size_t{4} << 30, slow}}) {
        const std::string prefix = std::string("heap/") + h.name + "/";
        add_heap_timed(prefix + "posix_spawn", h.bytes, run_posix_spawn, h.n);
        add_heap_timed(prefix + "ctr_spawn", h.bytes, ctr_launch({noop}, {}), h.n);
        // The pid namespace's init alone: it gets a copy of the caller's
        // memory (the sealed init, see security_bench).
        add_heap_timed(prefix + "ns_pid_init", h.bytes, ctr_launch({noop}, {.namespaces = ns::pid}), h.n);
        if (!f.rootfs.empty()) {
            add_heap_timed(prefix + "full_pipeline", h.bytes,
                           launch_in_reused_group(noop_in_root, full_pipeline(nullptr)), h.n);
            // Without the group, whose child gets a copy of the caller's
            // memory (launch_cgroup.hpp): what is left is the init's.
            add_heap_timed(prefix + "full_pipeline_no_cgroup", h.bytes,
                           ctr_launch(noop_in_root, full_pipeline(nullptr)), h.n);
            // Made once the heap has grown: its server holds a copy of it,
            // its runs share the server's memory.
            add_heap_timed(prefix + "prepared", h.bytes, launch_prepared(noop_in_root, full_pipeline(nullptr)), h.n);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    privileged = geteuid() == 0;
    if (const std::string why = enter_own_namespaces(); !why.empty()) {
        std::fprintf(stderr, "pipeline_bench: cannot enter namespaces of its own (%s); nothing measured\n",
                     why.c_str());
        return 1;
    }
    const fixtures f;
    fixture = &f;
    if (f.rootfs.empty())
        std::fprintf(stderr, "pipeline_bench: no busybox rootfs (%s); its stages are left out\n",
                     f.why_no_rootfs.c_str());
    register_stages();
    register_scale();

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    pipeline_summary reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_Defaults
                                                    : benchmark::ConsoleReporter::OO_Tabular);
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    if (shared_group) {
        try {
            shared_group->remove();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "pipeline_bench: removing the shared cgroup: %s\n", e.what());
        }
    }
    return 0;
}
