// Spawn cost: ctr against posix_spawn and fork+exec in the same run, from a
// small parent and from one with 1 GiB of touched heap.
//
// Goals (printed at the end as ratios, never asserted): ctr's time per spawn
// stays within 1.2x of posix_spawn's, and the 1 GiB parent spawns no slower
// than the small one.
#include <ctr/ctr.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

extern "C" char** environ;

namespace {

const char* const noop = CTR_NOOP_STATIC;

// 1 GiB, every page touched, so that a fork must copy its page tables.
char* heap_ballast = nullptr;
constexpr std::size_t ballast_size = std::size_t{1} << 30;

void ensure_ballast() {
    if (heap_ballast) return;
    heap_ballast = static_cast<char*>(std::malloc(ballast_size));
    if (!heap_ballast) {
        std::fprintf(stderr, "cannot allocate 1 GiB\n");
        std::exit(1);
    }
    for (std::size_t i = 0; i < ballast_size; i += 4096) heap_ballast[i] = 1;
}

void wait_ok(pid_t pid, benchmark::State& state) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        state.SkipWithError("child failed");
}

void posix_spawn_noop(benchmark::State& state) {
    char* argv[] = {const_cast<char*>(noop), nullptr};
    for (auto _ : state) {
        pid_t pid = 0;
        if (posix_spawn(&pid, noop, nullptr, nullptr, argv, environ) != 0) {
            state.SkipWithError("posix_spawn failed");
            break;
        }
        wait_ok(pid, state);
    }
}

void fork_exec_noop(benchmark::State& state) {
    char* argv[] = {const_cast<char*>(noop), nullptr};
    for (auto _ : state) {
        const pid_t pid = fork();
        if (pid == 0) {
            execve(noop, argv, environ);
            _exit(127);
        }
        wait_ok(pid, state);
    }
}

void ctr_spawn_noop(benchmark::State& state, ctr::process::clone_style style) {
    for (auto _ : state) {
        auto r = ctr::process::spawn({noop}, {.clone = style}).wait();
        if (r.exit_code != 0) state.SkipWithError("child failed");
    }
}


class spawn_ratios : public ctr_bench::ratio_reporter {
    void summary() override {
        std::printf("\nratios (lower is better):\n");
        print_ratio("ctr / posix_spawn, small parent", "ctr_spawn/small_parent", "posix_spawn/small_parent", 1.2);
        print_ratio("ctr / posix_spawn, 1 GiB parent", "ctr_spawn/1GiB_parent", "posix_spawn/1GiB_parent", 1.2);
        // A 10% allowance on "no slower" absorbs the noise of a shared machine.
        print_ratio("ctr, 1 GiB parent / small parent", "ctr_spawn/1GiB_parent", "ctr_spawn/small_parent", 1.0, 1.1);
        print_ratio("posix_spawn, 1 GiB parent / small parent", "posix_spawn/1GiB_parent", "posix_spawn/small_parent");
        print_ratio("fork+exec / ctr, small parent", "fork_exec/small_parent", "ctr_spawn/small_parent");
        print_ratio("fork+exec / ctr, 1 GiB parent", "fork_exec/1GiB_parent", "ctr_spawn/1GiB_parent");
        print_ratio("ctr copy_memory / shared_memory, 1 GiB parent", "ctr_spawn_copy_memory/1GiB_parent",
                    "ctr_spawn/1GiB_parent");
    }
};

}  // namespace

int main(int argc, char** argv) {
    for (const char* parent : {"small_parent", "1GiB_parent"}) {
        const bool big = std::strcmp(parent, "small_parent") != 0;
        const auto with_heap = [big](auto body) {
            return [big, body](benchmark::State& state) {
                if (big) ensure_ballast();
                body(state);
            };
        };
        const auto name = [parent](const char* what) { return std::string(what) + "/" + parent; };
        benchmark::RegisterBenchmark(name("posix_spawn").c_str(), with_heap(posix_spawn_noop))->UseRealTime();
        benchmark::RegisterBenchmark(name("fork_exec").c_str(), with_heap(fork_exec_noop))->UseRealTime();
        benchmark::RegisterBenchmark(name("ctr_spawn").c_str(), with_heap([](benchmark::State& s) {
                                         ctr_spawn_noop(s, ctr::process::clone_style::shared_memory);
                                     }))
            ->UseRealTime();
        benchmark::RegisterBenchmark(name("ctr_spawn_copy_memory").c_str(), with_heap([](benchmark::State& s) {
                                         ctr_spawn_noop(s, ctr::process::clone_style::copy_memory);
                                     }))
            ->UseRealTime();
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    spawn_ratios reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    std::free(heap_ballast);
    return 0;
}
