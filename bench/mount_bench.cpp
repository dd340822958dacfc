// Root-filesystem cost: preparing and running a mount plan in a forked child
// with a mount namespace of its own, against a bare forked child that only
// enters the namespace. Three plans: the default (host read-only, /tmp,
// proc, /dev), a busybox rootfs with proc and /dev, and an overlay of three
// lower layers plus a writable one as the root. Ratios to the bare child are
// printed at the end.
//
// Before anything, the benchmark enters a private mount namespace of its own
// (and a user namespace when not root), as the test main does; each child
// then makes another one. Nothing it mounts reaches the machine's table.
#include <ctr/ctr.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

namespace fs = std::filesystem;
namespace mnt = ctr::mount;

namespace {

// Rootless, a fresh proc needs a pid namespace the user namespace owns, so
// every child (the bare one too, for a fair comparison) makes one.
bool rootless = false;

bool write_file(const char* path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    return static_cast<bool>(out.flush());
}

bool enter_private_mount_namespace() {
    rootless = geteuid() != 0;
    if (rootless) {
        const uid_t uid = geteuid();
        const gid_t gid = getegid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
        write_file("/proc/self/setgroups", "deny");
        write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n");
        write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n");
    } else if (unshare(CLONE_NEWNS) != 0) {
        return false;
    }
    return ctr::detail::sys::mount(nullptr, "/", nullptr, ctr::detail::mount_abi::ms_rec | ctr::detail::mount_abi::ms_private,
                                   nullptr) == 0;
}

// The child: a mount namespace of its own, then the plan (if any). Exits 0
// on success.
[[noreturn]] void child(const mnt::prepared_plan* plan) {
    if (unshare(CLONE_NEWNS | (rootless ? CLONE_NEWPID : 0)) != 0) _exit(90);
    if (rootless) {
        const pid_t pid = fork();
        if (pid < 0) _exit(91);
        if (pid > 0) {
            int status = 0;
            waitpid(pid, &status, 0);
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 92);
        }
    }
    if (plan) {
        ctr::detail::mount_context ctx{};
        std::size_t failed = 0;
        if (ctr::detail::run_plan_in_current_process(*plan, ctx, failed) < 0) _exit(1);
    }
    _exit(0);
}

// Forks, waits; adds the child's CPU time (user + system, its own and its
// reaped children's) to `cpu_us`. Wall time also holds what the kernel does
// after the exit: tearing the namespace down waits for RCU grace periods.
bool run_child(const mnt::prepared_plan* plan, double& cpu_us) {
    const pid_t pid = fork();
    if (pid == 0) child(plan);
    int status = 0;
    rusage usage{};
    if (pid < 0 || wait4(pid, &status, 0, &usage) != pid) return false;
    cpu_us += static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 +
              static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void report_child_cpu(benchmark::State& state, double cpu_us) {
    state.counters["child_cpu_us"] = benchmark::Counter(cpu_us, benchmark::Counter::kAvgIterations);
}

void bare_namespace(benchmark::State& state) {
    double cpu_us = 0;
    for (auto _ : state)
        if (!run_child(nullptr, cpu_us)) state.SkipWithError("the child failed");
    report_child_cpu(state, cpu_us);
}

// Prepare (in the parent) and run (in the child) the plan, as spawn will.
void plan_in_child(benchmark::State& state, const mnt::plan& plan) {
    try {
        (void)plan.prepare();
    } catch (const ctr::error& e) {
        state.SkipWithError(e.what());
        return;
    }
    double cpu_us = 0;
    for (auto _ : state) {
        const auto prepared = plan.prepare();
        if (!run_child(&prepared, cpu_us)) {
            state.SkipWithError("the plan failed in the child");
            break;
        }
    }
    report_child_cpu(state, cpu_us);
}

void prepare_only(benchmark::State& state, const mnt::plan& plan) {
    for (auto _ : state) benchmark::DoNotOptimize(plan.prepare());
}

struct fixtures {
    fs::path dir;
    std::string rootfs;
    fixtures() {
        char pattern[] = "/tmp/ctr-mount-bench-XXXXXX";
        dir = mkdtemp(pattern);
        rootfs = (dir / "busybox").string();
        const std::string command = std::string("'") + CTR_MAKE_ROOTFS + "' '" + rootfs + "' >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0) rootfs.clear();
        for (const char* d : {"layer1", "layer2", "upper", "work"}) fs::create_directories(dir / d);
        std::ofstream(dir / "layer1/app.conf") << "app\n";
        std::ofstream(dir / "layer2/lib.txt") << "lib\n";
    }
    ~fixtures() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }
};

class mount_ratios : public ctr_bench::ratio_reporter {
    void summary() override {
        std::printf("\nratio to the bare forked child with a mount namespace (lower is better):\n");
        std::printf("  %-47s %8s %10s\n", "", "wall", "child CPU");
        for (const char* name : {"default_plan", "busybox_proc_dev", "overlay_3_layers"}) ratio(name, "bare_mount_namespace");
        ratio("prepare_default_plan", "default_plan");
    }
    void ratio(const std::string& a, const std::string& b) {
        if (!has(a) || !has(b)) return;
        std::printf("  %-22s / %-22s %8.2f", a.c_str(), b.c_str(), time(a) / time(b));
        const double cpu_a = counter(a, "child_cpu_us"), cpu_b = counter(b, "child_cpu_us");
        if (cpu_a >= 0 && cpu_b > 0) std::printf(" %10.2f", cpu_a / cpu_b);
        std::printf("\n");
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (!enter_private_mount_namespace()) {
        std::fprintf(stderr, "mount_bench: cannot enter a private mount namespace (%s); nothing measured\n",
                     std::strerror(errno));
        return 0;
    }
    const fixtures f;
    const mnt::plan default_plan = mnt::host_readonly();
    std::optional<mnt::plan> busybox, overlay;
    if (!f.rootfs.empty()) {
        busybox = mnt::plan{.rootfs = f.rootfs};
        busybox->proc().dev();
        overlay = mnt::plan{};
        overlay
            ->overlay("/", {.lower = {(f.dir / "layer1").string(), (f.dir / "layer2").string(), f.rootfs},
                            .upper = (f.dir / "upper").string(),
                            .work = (f.dir / "work").string()})
            .proc()
            .dev();
    } else {
        std::fprintf(stderr, "mount_bench: no busybox rootfs (install busybox-static); its plans are left out\n");
    }

    benchmark::RegisterBenchmark("bare_mount_namespace", bare_namespace)->UseRealTime();
    benchmark::RegisterBenchmark("prepare_default_plan", [&](benchmark::State& s) { prepare_only(s, default_plan); })
        ->UseRealTime();
    benchmark::RegisterBenchmark("default_plan", [&](benchmark::State& s) { plan_in_child(s, default_plan); })
        ->UseRealTime();
    if (busybox) {
        benchmark::RegisterBenchmark("busybox_proc_dev", [&](benchmark::State& s) { plan_in_child(s, *busybox); })
            ->UseRealTime();
        benchmark::RegisterBenchmark("overlay_3_layers", [&](benchmark::State& s) { plan_in_child(s, *overlay); })
            ->UseRealTime();
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    mount_ratios reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
