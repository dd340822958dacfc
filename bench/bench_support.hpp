#pragma once
// What the benchmarks share: a console reporter that remembers each
// benchmark's time (and counters) so that the program can end with ratios
// measured in the same run. Targets live in those ratios, never in tests.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace ctr_bench {

class ratio_reporter : public benchmark::ConsoleReporter {
public:
    // A reporter passed to RunSpecifiedBenchmarks is not told of
    // --benchmark_color: a program that wants plain text when its output is
    // not a terminal passes OO_Tabular.
    explicit ratio_reporter(OutputOptions options = OO_Defaults) : ConsoleReporter(options) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        // With --benchmark_repetitions the median (reported after the
        // iterations) replaces a single run's figure.
        for (const auto& run : runs) {
            if (run.error_occurred) continue;
            if (run.run_type != Run::RT_Iteration &&
                !(run.run_type == Run::RT_Aggregate && run.aggregate_name == "median"))
                continue;
            // "ctr_spawn/small_parent/real_time" is kept as "ctr_spawn/small_parent";
            // likewise "/iterations:N" and "/manual_time".
            std::string name = run.benchmark_name();
            for (const char* suffix : {"/real_time", "/min_time:", "/iterations:", "/manual_time"})
                if (const auto at = name.find(suffix); at != std::string::npos) name.resize(at);
            times_[name] = run.GetAdjustedRealTime();
            for (const auto& [counter, value] : run.counters) counters_[name][counter] = value.value;
        }
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        summary();
    }

    bool has(const std::string& name) const { return times_.count(name) != 0; }
    double time(const std::string& name) const { return times_.at(name); }
    const std::map<std::string, double>& times() const { return times_; }
    // A counter of a benchmark, or a negative value when it has none.
    double counter(const std::string& name, const std::string& counter) const {
        const auto b = counters_.find(name);
        if (b == counters_.end()) return -1;
        const auto c = b->second.find(counter);
        return c == b->second.end() ? -1 : c->second;
    }

    // Prints "label  a/b" (and, with a goal, whether it was met) when both ran.
    void print_ratio(const char* label, const std::string& a, const std::string& b, double goal = 0,
                     double allowance = 1.0) const {
        if (!has(a) || !has(b)) return;
        const double value = time(a) / time(b);
        std::printf("  %-50s %6.2f", label, value);
        if (goal > 0) std::printf("   goal <= %.1f: %s", goal, value <= goal * allowance ? "met" : "MISSED");
        std::printf("\n");
    }

protected:
    // What the program prints after the table.
    virtual void summary() = 0;

private:
    std::map<std::string, double> times_;
    std::map<std::string, std::map<std::string, double>> counters_;
};

}  // namespace ctr_bench
