// The cost of each namespace kind on top of a plain spawn, and of all of
// them together, in one run. Printed as ratios to the plain spawn (never
// asserted).
#include <ctr/ctr.hpp>

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

class ratio_reporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& run : runs)
            if (!run.error_occurred && run.run_type == Run::RT_Iteration) {
                std::string name = run.benchmark_name();
                if (const auto suffix = name.find("/real_time"); suffix != std::string::npos) name.resize(suffix);
                times_[name] = run.GetAdjustedRealTime();
            }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        const auto plain = times_.find("spawn/plain");
        if (plain == times_.end()) return;
        std::printf("\nper spawn, relative to a plain spawn (%.0f us):\n", plain->second / 1000);
        for (const auto& [name, time] : times_)
            if (name != plain->first)
                std::printf("  %-28s %6.2fx  (+%.0f us)\n", name.c_str(), time / plain->second,
                            (time - plain->second) / 1000);
    }

private:
    std::map<std::string, double> times_;
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
    ratio_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
