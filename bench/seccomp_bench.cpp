// What seccomp costs: compiling the default profile (against the smallest
// filter the builder makes), and each system call under it (against no
// filter, and against the smallest filter, which separates the kernel's fixed
// cost of running a filter from the cost of the profile's search). Printed as
// ratios measured in the same run (never asserted).
#include <ctr/seccomp.hpp>
#include <ctr/seccomp_notify.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

namespace {

namespace sc = ctr::seccomp;

std::shared_ptr<const sc::filter> allow_all() {
    static const auto f = sc::builder{}.default_action(sc::action::allow()).build_shared();
    return f;
}

void compile_allow_all(benchmark::State& state) {
    for (auto _ : state) {
        sc::filter f = sc::builder{}.default_action(sc::action::allow()).build();
        benchmark::DoNotOptimize(f.size());
    }
}

void compile_default_profile(benchmark::State& state) {
    std::size_t size = 0;
    for (auto _ : state) {
        sc::filter f = sc::default_profile_builder().build();
        size = f.size();
        benchmark::DoNotOptimize(size);
    }
    state.counters["instructions"] = static_cast<double>(size);
}

// getppid in a loop on a thread of its own, which installs `f` first (a
// filter stays with its thread and goes when the thread ends; the
// benchmark's main thread stays unfiltered).
void getppid_under(benchmark::State& state, std::shared_ptr<const sc::filter> f) {
    std::thread worker([&] {
        if (f) {
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
                state.SkipWithError("prctl(PR_SET_NO_NEW_PRIVS) failed");
                return;
            }
            if (ctr::detail::child_install_seccomp(ctr::detail::seccomp_install_op(*f)) != 0) {
                state.SkipWithError("installing the filter failed");
                return;
            }
        }
        for (auto _ : state) benchmark::DoNotOptimize(syscall(SYS_getppid));
    });
    worker.join();
}

// getppid notified to a supervisor on another thread, which answers each
// call (with a value: emulated; or continue_call: run as if allowed). The
// round trip through the supervisor is the cost of any notified call.
void getppid_notified(benchmark::State& state, sc::response answer) {
    static const auto f = sc::builder{}
                              .default_action(sc::action::allow())
                              .rule("getppid", sc::action::notify())
                              .build_shared();
    std::thread worker([&] {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
            state.SkipWithError("prctl(PR_SET_NO_NEW_PRIVS) failed");
            return;
        }
        // The launch's own step sends the listener to a parent; here the
        // thread installs the filter itself and keeps it.
        const long listener = ctr::detail::sys::seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                                        &f->program());
        if (listener < 0) {
            state.SkipWithError("installing the filter with a listener failed");
            return;
        }
        sc::supervisor guard(ctr::unique_fd(static_cast<int>(listener)),
                             [answer](const sc::notification&, sc::listener&) { return answer; });
        for (auto _ : state) benchmark::DoNotOptimize(syscall(SYS_getppid));
        state.counters["answered"] = static_cast<double>(guard.answered());
    });
    worker.join();
}

class seccomp_ratios : public ctr_bench::ratio_reporter {
    void summary() override {
        std::printf("\nrelative to the baseline in the same run:\n");
        print_ratio("compile: default profile / allow-all filter", "compile/default_profile", "compile/allow_all");
        print_ratio("getppid: default profile / no filter", "getppid/default_profile", "getppid/unfiltered");
        print_ratio("getppid: allow-all filter / no filter", "getppid/allow_all", "getppid/unfiltered");
        print_ratio("getppid: default profile / allow-all filter", "getppid/default_profile", "getppid/allow_all");
        if (has("getppid/default_profile") && has("getppid/unfiltered"))
            std::printf("  %-50s %6.1f ns\n", "getppid: added by the default profile",
                        time("getppid/default_profile") - time("getppid/unfiltered"));
        print_ratio("getppid: notified, emulated / allow-all filter", "getppid/notified_value", "getppid/allow_all");
        print_ratio("getppid: notified, continued / allow-all filter", "getppid/notified_continue",
                    "getppid/allow_all");
        if (has("getppid/notified_value") && has("getppid/allow_all"))
            std::printf("  %-50s %6.1f us\n", "getppid: added by a supervisor's answer",
                        (time("getppid/notified_value") - time("getppid/allow_all")) / 1000.0);
        if (has("getppid/allow_all") && has("getppid/unfiltered"))
            std::printf("  %-50s %6.1f ns\n", "getppid: added by any filter (allow-all)",
                        time("getppid/allow_all") - time("getppid/unfiltered"));
    }
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::RegisterBenchmark("compile/allow_all", compile_allow_all)->UseRealTime();
    benchmark::RegisterBenchmark("compile/default_profile", compile_default_profile)->UseRealTime();
    benchmark::RegisterBenchmark("getppid/unfiltered", [](benchmark::State& s) { getppid_under(s, nullptr); })
        ->UseRealTime();
    benchmark::RegisterBenchmark("getppid/allow_all", [](benchmark::State& s) { getppid_under(s, allow_all()); })
        ->UseRealTime();
    benchmark::RegisterBenchmark("getppid/default_profile", [](benchmark::State& s) {
        getppid_under(s, sc::default_profile());
    })->UseRealTime();
    benchmark::RegisterBenchmark("getppid/notified_value", [](benchmark::State& s) {
        getppid_notified(s, sc::response::value(1));
    })->UseRealTime();
    benchmark::RegisterBenchmark("getppid/notified_continue", [](benchmark::State& s) {
        getppid_notified(s, sc::response::continue_call());
    })->UseRealTime();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    seccomp_ratios reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
