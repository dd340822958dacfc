// What confinement costs a launch, in one run: a sandbox (every namespace,
// the host's root read-only) with ctr::security::confined() against the same
// sandbox unconfined, and each layer alone (a Landlock ruleset among them).
// Also the sealed init's copy of the caller's memory: a pid namespace launch
// from a parent with 256 MiB touched, against the same from a small one. Printed as ratios (never
// asserted).
#include <ctr/ctr.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace {

const char* const noop = CTR_NOOP_STATIC;

ctr::process::options sandbox(ctr::security security) {
    return {.namespaces = ctr::ns::all, .root = ctr::mount::host_readonly(), .security = std::move(security)};
}

void spawn_with(benchmark::State& state, const ctr::process::options& opts) {
    for (auto _ : state) {
        auto r = ctr::process::spawn({noop}, opts).wait();
        if (r.exit_code != 0) state.SkipWithError("child failed");
    }
}

class security_ratios : public ctr_bench::ratio_reporter {
    void summary() override {
        if (has("sandbox/unconfined")) {
            const double base = time("sandbox/unconfined");
            std::printf("\nper launch, relative to the same sandbox unconfined (%.0f us):\n", base / 1000);
            for (const auto& [name, t] : times())
                if (name.starts_with("sandbox/") && name != "sandbox/unconfined")
                    std::printf("  %-34s %6.2fx  (%+.0f us)\n", name.c_str(), t / base, (t - base) / 1000);
        }
        if (has("init/small_parent") && has("init/parent_with_256MiB")) {
            const double small = time("init/small_parent"), big = time("init/parent_with_256MiB");
            std::printf("\nsealed init (pid 1 gets a copy of the caller's memory): 256 MiB parent %.2fx a small one "
                        "(%+.0f us)\n", big / small, (big - small) / 1000);
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    using ctr::security;
    benchmark::RegisterBenchmark("sandbox/unconfined", [](benchmark::State& s) {
        spawn_with(s, sandbox(security::unconfined()));
    })->UseRealTime();
    benchmark::RegisterBenchmark("sandbox/confined", [](benchmark::State& s) {
        spawn_with(s, sandbox(security::confined()));
    })->UseRealTime();
    benchmark::RegisterBenchmark("sandbox/capabilities_only", [](benchmark::State& s) {
        spawn_with(s, sandbox({.capabilities = ctr::caps::policy{.keep = ctr::caps::default_set()}}));
    })->UseRealTime();
    benchmark::RegisterBenchmark("sandbox/no_new_privileges_only", [](benchmark::State& s) {
        spawn_with(s, sandbox({.no_new_privileges = true}));
    })->UseRealTime();
    benchmark::RegisterBenchmark("sandbox/seccomp_with_no_new_privileges", [](benchmark::State& s) {
        spawn_with(s, sandbox({.no_new_privileges = true, .seccomp = ctr::seccomp::default_profile()}));
    })->UseRealTime();
    benchmark::RegisterBenchmark("sandbox/landlock_ruleset", [](benchmark::State& s) {
        // Three path rules and a port rule: the ruleset is made in the parent
        // and each path opened in the child. A kernel without Landlock makes
        // this the unconfined row (best effort drops it).
        const std::string program = noop;
        const std::string directory = program.substr(0, program.rfind('/'));
        spawn_with(s, sandbox({.landlock = ctr::landlock::ruleset{}
                                               .execute(directory)
                                               .read("/usr")
                                               .write("/tmp")
                                               .connect_tcp(443)}));
    })->UseRealTime();
    benchmark::RegisterBenchmark("init/small_parent", [](benchmark::State& s) {
        spawn_with(s, {.namespaces = ctr::ns::pid | ctr::ns::user});
    })->UseRealTime();
    benchmark::RegisterBenchmark("init/parent_with_256MiB", [](benchmark::State& s) {
        constexpr std::size_t size = 256u << 20;
        const auto heap = std::make_unique<char[]>(size);
        std::memset(heap.get(), 1, size);  // touched: its page tables are what a copy costs
        benchmark::DoNotOptimize(heap.get());
        spawn_with(s, {.namespaces = ctr::ns::pid | ctr::ns::user});
    })->UseRealTime();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    security_ratios reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
