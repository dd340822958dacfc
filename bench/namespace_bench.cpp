// The cost of each namespace kind on top of a plain spawn, and of all of
// them together, in one run. Printed as ratios to the plain spawn (never
// asserted).
#include <ctr/ctr.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>

namespace {

const char* const noop = CTR_NOOP_STATIC;

void spawn_with(benchmark::State& state, ctr::process::options opts) {
    for (auto _ : state) {
        auto r = ctr::process::spawn({noop}, opts).wait();
        if (r.exit_code != 0) state.SkipWithError("child failed");
    }
}

class namespace_ratios : public ctr_bench::ratio_reporter {
    void summary() override {
        if (!has("spawn/plain")) return;
        const double plain = time("spawn/plain");
        std::printf("\nper spawn, relative to a plain spawn (%.0f us):\n", plain / 1000);
        for (const auto& [name, t] : times())
            if (name != "spawn/plain")
                std::printf("  %-28s %6.2fx  (+%.0f us)\n", name.c_str(), t / plain, (t - plain) / 1000);
    }
};

}  // namespace

int main(int argc, char** argv) {
    namespace ns = ctr::ns;
    benchmark::RegisterBenchmark("spawn/plain", [](benchmark::State& s) { spawn_with(s, {}); })->UseRealTime();
    for (ns::kind kind : ns::every_kind) {
        if (access(("/proc/self/ns/" + std::string(ns::name(kind))).c_str(), F_OK) != 0) continue;
        benchmark::RegisterBenchmark(("spawn/" + std::string(ns::name(kind))).c_str(), [kind](benchmark::State& s) {
            spawn_with(s, {.namespaces = kind});
        })->UseRealTime();
    }
    benchmark::RegisterBenchmark("spawn/all", [](benchmark::State& s) {
        spawn_with(s, {.namespaces = ns::all});
    })->UseRealTime();
    benchmark::RegisterBenchmark("spawn/all_without_init", [](benchmark::State& s) {
        spawn_with(s, {.namespaces = ns::all, .init = false});
    })->UseRealTime();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    namespace_ratios reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
