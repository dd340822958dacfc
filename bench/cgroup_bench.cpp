// Cgroup cost: making, limiting and removing a group, and a spawn whose child
// runs in a group of its own against the same spawn without one.
//
// Until process::spawn places children itself, the child is the probe helper
// waiting on stdin: it is attached by pid, then let go, in both the plain and
// the cgroup runs, so the two differ only by the group. Ratios are printed at
// the end, never asserted.
#include <ctr/ctr.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

namespace cg = ctr::cgroup;

const char* const probe_helper = CTR_PROBE_HELPER;

// Why groups cannot be made here, or empty.
std::string blocker() {
    static const std::string reason = []() -> std::string {
        try {
            cg::group g;
            g.remove();
            return {};
        } catch (const ctr::error& e) {
            return e.what();
        }
    }();
    return reason;
}

bool skip_without_cgroups(benchmark::State& state) {
    if (blocker().empty()) return false;
    state.SkipWithError(("cannot make cgroups here: " + blocker()).c_str());
    return true;
}

void create_remove(benchmark::State& state, const cg::options& opts) {
    if (skip_without_cgroups(state)) return;
    for (auto _ : state) {
        cg::group g(opts);
        g.remove();
    }
}

// The helper, held on stdin until `g` (if any) has it; then waited for.
void spawn_helper(benchmark::State& state, cg::group* g) {
    auto child = ctr::process::spawn({probe_helper, "after-stdin", "exit", "0"}, {.std_in = ctr::process::stdio::pipe()});
    if (g) g->attach(child.pid());
    const char newline = '\n';
    if (write(child.std_in().get(), &newline, 1) != 1) state.SkipWithError("cannot write to the helper");
    child.std_in().reset();
    if (child.wait().exit_code != 0) state.SkipWithError("the helper failed");
}

void spawn_plain(benchmark::State& state) {
    for (auto _ : state) spawn_helper(state, nullptr);
}

void spawn_in_group(benchmark::State& state, const cg::options& opts) {
    if (skip_without_cgroups(state)) return;
    for (auto _ : state) {
        cg::group g(opts);
        spawn_helper(state, &g);
        g.remove();
    }
}

class cgroup_ratios : public ctr_bench::ratio_reporter {
    void summary() override {
        std::printf("\nratios (lower is better):\n");
        print_ratio("spawn in a new group / plain spawn", "spawn/in_new_group", "spawn/plain");
        print_ratio("spawn in a new limited group / plain spawn", "spawn/in_new_limited_group", "spawn/plain");
        print_ratio("spawn in a new unified-only group / plain spawn", "spawn/in_new_unified_only_group", "spawn/plain");
        print_ratio("create+limit+remove / create+remove", "cgroup/create_limit_remove", "cgroup/create_remove");
    }
};

}  // namespace

int main(int argc, char** argv) {
    const cg::options limited{.limits = {.memory_max = "64M", .cpus = 0.5, .pids_max = 64}};
    const cg::options unified{.unified_only = true};
    const auto layout = cg::detail::detect_cgroup_layout();
    const bool hybrid_v2 = layout.kind == ctr::cgroup_layout::hybrid && layout.v2() && layout.v2()->usable();

    benchmark::RegisterBenchmark("cgroup/create_remove", [](benchmark::State& s) { create_remove(s, {}); })
        ->UseRealTime();
    benchmark::RegisterBenchmark("cgroup/create_limit_remove",
                                 [limited](benchmark::State& s) { create_remove(s, limited); })
        ->UseRealTime();
    if (hybrid_v2)
        benchmark::RegisterBenchmark("cgroup/create_remove_unified_only",
                                     [unified](benchmark::State& s) { create_remove(s, unified); })
            ->UseRealTime();
    benchmark::RegisterBenchmark("spawn/plain", spawn_plain)->UseRealTime();
    benchmark::RegisterBenchmark("spawn/in_new_group", [](benchmark::State& s) { spawn_in_group(s, {}); })
        ->UseRealTime();
    benchmark::RegisterBenchmark("spawn/in_new_limited_group",
                                 [limited](benchmark::State& s) { spawn_in_group(s, limited); })
        ->UseRealTime();
    if (hybrid_v2)
        benchmark::RegisterBenchmark("spawn/in_new_unified_only_group",
                                     [unified](benchmark::State& s) { spawn_in_group(s, unified); })
            ->UseRealTime();

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    cgroup_ratios reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
