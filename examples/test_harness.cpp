// Runs test commands, each in its own sandbox with limits, several at once,
// and prints a table: passed, failed, crashed (signal), timed out, out of
// memory, with the time and peak memory of each.
//
//   test_harness [--jobs N] [--timeout SECONDS] [--memory SIZE] COMMAND...
//       each COMMAND is a shell command line, run with /bin/sh -c
//   test_harness [...] --gtest BINARY
//       each test case of a GoogleTest binary, from --gtest_list_tests
//
// Without arguments it runs a mix that gives every outcome (`tail /dev/zero`
// keeps every byte it reads, looking for a line's end).
// expect-output: passed +exit 0
// expect-output: failed +exit 1
// expect-output: crashed +signal 11
// expect-output: timed out +after 1.0 s
// expect-output: out of memory +limit 64 MiB
// expect-output: 5 tests: 1 passed, 1 failed, 1 crashed, 1 timed out, 1 out of memory
#include <ctr/ctr.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct test_case {
    std::string name;
    std::vector<std::string> argv;
    std::optional<std::chrono::milliseconds> timeout{};  // empty: the --timeout for all
    std::string binary_dir{};  // bound read-only at the same path (it may be below the private /tmp)
};

struct settings {
    unsigned jobs = std::max(2U, std::thread::hardware_concurrency());
    std::chrono::milliseconds timeout = 30s;
    std::string memory = "256M";
};

enum class outcome { passed, failed, crashed, timed_out, out_of_memory, error };

struct report {
    outcome how = outcome::error;
    std::string detail;
    std::chrono::nanoseconds time{};
    std::optional<std::uint64_t> peak;
    std::string output;  // what a failing test printed
};

constexpr const char* outcome_names[] = {"passed", "failed", "crashed", "timed out", "out of memory", "error"};

// No swap where the host can limit it, so that a hog meets the limit at once.
ctr::cgroup::group make_group(const settings& s) {
    const ctr::cgroup::limits limits{.memory_max = s.memory, .pids_max = 128};
    try {
        auto no_swap = limits;
        no_swap.swap_max = "0";
        return ctr::cgroup::group({.prefix = "test-harness", .limits = no_swap});
    } catch (const ctr::error&) {
        return ctr::cgroup::group({.prefix = "test-harness", .limits = limits});
    }
}

ctr::mount::plan sandbox_root(const test_case& t) {
    auto plan = ctr::mount::host_readonly();
    if (!t.binary_dir.empty()) plan.bind(t.binary_dir, t.binary_dir, {.read_only = true});
    return plan;
}

// One test in a sandbox of its own: the host read-only with a private /tmp,
// no network, its own pids, and a cgroup with the memory and pids limits.
report run_one(const test_case& t, const settings& s) {
    report rep;
    try {
        ctr::cgroup::group group = make_group(s);
        namespace p = ctr::process;
        const auto r = p::spawn(t.argv, {.std_in = p::stdio::null(),
                                         .std_out = p::stdio::capture(),
                                         .std_err = p::stdio::capture(),
                                         .timeout = t.timeout.value_or(s.timeout),
                                         .kill_grace = 500ms,
                                         .namespaces = ctr::ns::pid | ctr::ns::network | ctr::ns::ipc | ctr::ns::uts,
                                         .cgroup = &group,
                                         .root = sandbox_root(t)})
                           .wait();
        rep.time = r.wall_time;
        rep.peak = r.memory_peak_bytes;
        std::ostringstream detail;
        if (r.timed_out) {
            rep.how = outcome::timed_out;
            detail.precision(1);
            detail << std::fixed << "after " << std::chrono::duration<double>(t.timeout.value_or(s.timeout)).count()
                   << " s";
        } else if (r.oom_killed) {
            rep.how = outcome::out_of_memory;
            detail << "limit " << (group.memory_max_bytes().value_or(0) >> 20) << " MiB";
        } else if (r.signal) {
            rep.how = outcome::crashed;
            detail << "signal " << *r.signal;
        } else {
            rep.how = r.exit_code == 0 ? outcome::passed : outcome::failed;
            detail << "exit " << *r.exit_code;
        }
        rep.detail = detail.str();
        if (rep.how != outcome::passed) rep.output = r.std_out + r.std_err;
    } catch (const ctr::error& e) {
        rep.how = outcome::error;
        rep.detail = e.what();
    }
    return rep;
}

// Runs every case on `jobs` worker threads and returns the reports in order.
std::vector<report> run_all(const std::vector<test_case>& cases, const settings& s) {
    std::vector<report> reports(cases.size());
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> workers;
    for (unsigned i = 0; i < std::min<std::size_t>(s.jobs, cases.size()); ++i)
        workers.emplace_back([&] {
            for (std::size_t k; (k = next++) < cases.size();) reports[k] = run_one(cases[k], s);
        });
    for (auto& w : workers) w.join();
    return reports;
}

int print_table(const std::vector<test_case>& cases, const std::vector<report>& reports) {
    std::size_t width = 4;
    for (const auto& c : cases) width = std::max(width, c.name.size());
    std::printf("%-*s  %-13s  %-16s  %9s  %10s\n", static_cast<int>(width), "test", "outcome", "detail", "time",
                "peak mem");
    std::size_t counts[6] = {};
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const report& r = reports[i];
        ++counts[static_cast<int>(r.how)];
        const std::string peak = r.peak ? std::to_string(*r.peak >> 10) + " KiB" : "-";
        std::printf("%-*s  %-13s  %-16s  %7.1f ms  %10s\n", static_cast<int>(width), cases[i].name.c_str(),
                    outcome_names[static_cast<int>(r.how)], r.detail.c_str(),
                    std::chrono::duration<double, std::milli>(r.time).count(), peak.c_str());
    }
    std::printf("%zu tests: %zu passed, %zu failed, %zu crashed, %zu timed out, %zu out of memory", cases.size(),
                counts[0], counts[1], counts[2], counts[3], counts[4]);
    if (counts[5]) std::printf(", %zu could not run", counts[5]);
    std::printf("\n");
    for (std::size_t i = 0; i < cases.size(); ++i)
        if (!reports[i].output.empty())
            std::printf("\n--- %s ---\n%s", cases[i].name.c_str(), reports[i].output.c_str());
    return counts[0] == cases.size() ? 0 : 1;
}

// The cases of a GoogleTest binary: "Suite." lines, then "  Case" lines.
std::vector<test_case> gtest_cases(const std::string& relative) {
    // The sandbox starts at "/", so the binary is named by its full path.
    const std::string binary = std::filesystem::absolute(relative).string();
    namespace p = ctr::process;
    const auto r = p::spawn({binary, "--gtest_list_tests"}, {.std_out = p::stdio::capture(), .timeout = 60s}).wait();
    if (!r.success()) throw std::runtime_error(binary + " --gtest_list_tests failed");
    std::vector<test_case> cases;
    std::string suite;
    std::istringstream lines(r.std_out);
    for (std::string line; std::getline(lines, line);) {
        line = line.substr(0, line.find('#'));
        while (!line.empty() && line.back() == ' ') line.pop_back();
        if (line.empty()) continue;
        if (line[0] != ' ') {
            if (line.back() == '.') suite = line;  // not "Running main() from ..."
            continue;
        }
        const std::string name = suite + line.substr(line.find_first_not_of(' '));
        cases.push_back({name, {binary, "--gtest_filter=" + name}, {},
                         std::filesystem::path(binary).parent_path().string()});
    }
    return cases;
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    std::vector<test_case> cases;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string arg = argv[i];
            const auto value = [&]() -> std::string {
                if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
                return argv[++i];
            };
            if (arg == "--jobs") s.jobs = static_cast<unsigned>(std::stoul(value()));
            else if (arg == "--timeout") s.timeout = std::chrono::milliseconds(static_cast<long>(std::stod(value()) * 1000));
            else if (arg == "--memory") s.memory = value();
            else if (arg == "--gtest") {
                const auto found = gtest_cases(value());
                cases.insert(cases.end(), found.begin(), found.end());
            } else cases.push_back({arg, {"/bin/sh", "-c", arg}});
        }
        if (argc == 1) {
            // The demo: one test for each outcome; only the sleep has a short timeout.
            s.memory = "64M";
            for (const char* command : {"exit 0", "echo some output; exit 1", "kill -SEGV $$", "sleep 30", "tail /dev/zero"})
                cases.push_back({command, {"/bin/sh", "-c", command}});
            cases[3].timeout = 1s;
        }
        const auto reports = run_all(cases, s);
        const int status = print_table(cases, reports);
        if (argc > 1) return status;
        // The demo passes when each outcome came once, and skips where no
        // cgroup can be made (a rootless caller without delegation).
        for (const auto& r : reports)
            if (r.how == outcome::error) return 77;
        for (std::size_t i = 0; i < reports.size(); ++i)
            if (reports[i].how != static_cast<outcome>(i)) return 1;
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "test_harness: " << e.what() << '\n';
        return 2;
    }
}
