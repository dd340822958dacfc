// Runs test commands, each in its own sandbox with limits, several at once,
// and prints a table: passed, failed, crashed (signal), timed out, out of
// memory, skipped, disabled, with the time and peak memory charge of each.
// Each case runs in a scratch working directory of its own, writable, empty
// at the start and removed afterwards; the rest of the host is read-only.
// Each worker thread keeps a prepared sandbox (process::prepared_sandbox)
// and starts its cases from it: a fresh pid, mount, IPC and UTS namespace
// and a fresh /tmp per case, for a fraction of a new sandbox's cost.
// --fresh-sandboxes makes a whole sandbox and cgroup per case instead.
//
//   test_harness [OPTIONS] COMMAND...
//       each COMMAND is a shell command line, run with /bin/sh -c; exit
//       status 77 means skipped (the Automake and CTest convention)
//   test_harness [OPTIONS] --gtest BINARY
//       each test case of a GoogleTest binary, from --gtest_list_tests
//   test_harness --help
//
// Without arguments it runs a mix that gives every outcome (`tail /dev/zero`
// keeps every byte it reads, looking for a line's end).
// expect-output: passed +exit 0
// expect-output: failed +exit 1
// expect-output: crashed +signal 11
// expect-output: timed out +after 1.0 s
// expect-output: out of memory +limit 64 MiB
// expect-output: skipped +exit 77
// expect-output: 6 tests: 1 passed, 1 failed, 1 crashed, 1 timed out, 1 out of memory, 1 skipped, 0 disabled
// expect-output: peak charge: the most memory the case's cgroup
#include <ctr/ctr.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* usage = R"(usage:
  test_harness [OPTIONS] COMMAND...
      run each COMMAND with /bin/sh -c in a sandbox of its own; exit status
      0 passes, 77 is skipped, anything else fails
  test_harness [OPTIONS] --gtest BINARY
      run each test case of a GoogleTest binary in a sandbox of its own;
      cases named DISABLED_ are reported as disabled and not run
  test_harness --help

Each case sees the host read-only, a private /tmp, no network and its own
pids, and runs in an empty scratch directory of its own (writable, removed
afterwards, below $TMPDIR or /tmp), with TMPDIR=/tmp. Its cgroup has the
memory limit and a limit of 128 processes.
Each worker starts its cases from a prepared sandbox: each case gets its
own pid namespace (with an init), /tmp, IPC and host name, and shares the
worker's cgroup (one case at a time), so no per-case peak charge is shown.

options:
  --jobs N          cases run at once (default: the number of CPUs, at least 2)
  --timeout SECONDS the wall-clock limit of each case (default 30)
  --memory SIZE     each case's memory limit, no swap (default 256M)
  --junit FILE      also write the results as JUnit XML, the format that
                    Jenkins, GitLab and GitHub read
  --fresh-sandboxes a whole new sandbox and cgroup for each case (slower;
                    gives each case's peak memory charge)
  --                the arguments that follow are commands, even with a '-'
  -h, --help        this text

The exit status is 0 when no case failed, crashed, timed out, ran out of
memory or could not run (skipped and disabled cases do not fail the run),
1 otherwise, 2 for a usage error. Without a cgroup (rootless without a
delegated subtree) the cases run without the memory and process limits.
)";

struct test_case {
    std::string suite;  // JUnit's classname: a GoogleTest suite, or "commands"
    std::string name;   // what the table shows
    std::vector<std::string> argv;
    std::optional<std::chrono::milliseconds> timeout{};  // empty: the --timeout for all
    std::string binary_dir{};  // bound read-only at the same path (it may be below the private /tmp)
    bool gtest = false;
    bool disabled = false;
};

struct settings {
    unsigned jobs = std::max(2U, std::thread::hardware_concurrency());
    std::chrono::milliseconds timeout = 30s;
    std::string memory = "256M";
    std::string junit{};
    bool cgroups = true;  // false: the host lets this process make none
    bool fresh_sandboxes = false;
};

enum class outcome { passed, failed, crashed, timed_out, out_of_memory, skipped, disabled, error };
constexpr const char* outcome_names[] = {"passed",        "failed",  "crashed",  "timed out",
                                         "out of memory", "skipped", "disabled", "error"};
constexpr std::size_t outcome_count = std::size(outcome_names);

struct report {
    outcome how = outcome::error;
    std::string detail;
    std::string message;  // GoogleTest's failure or skip message, in full
    std::chrono::nanoseconds time{};
    std::optional<std::uint64_t> peak;
    std::string output;  // what a case that did not pass printed
    std::string hint;
};

bool fails_the_run(outcome how) {
    return how != outcome::passed && how != outcome::skipped && how != outcome::disabled;
}

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

// The directories of one run, removed with it: a directory per case, bound
// into the case's sandbox at the same path, holding its working directory
// (work/) and what GoogleTest reports (gtest.xml) beside it, where the case
// cannot mistake it for its own.
class scratch {
public:
    scratch() {
        const char* tmpdir = std::getenv("TMPDIR");
        std::string pattern = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/test-harness-XXXXXX";
        if (!mkdtemp(pattern.data()))
            throw std::runtime_error("mkdtemp " + pattern + ": cannot make the scratch directory");
        top_ = fs::canonical(pattern);
    }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;
    ~scratch() {
        std::error_code ignored;
        fs::remove_all(top_, ignored);
    }
    fs::path case_dir(std::size_t index) const { return top_ / std::to_string(index); }
    const fs::path& top() const { return top_; }

private:
    fs::path top_;
};

// The host read-only, the test binary's directory bound read-only at its
// path, and `writable` (a case's directory, or a worker's scratch).
ctr::mount::plan sandbox_root(const std::string& binary_dir, const fs::path& writable) {
    auto plan = ctr::mount::host_readonly();
    if (!binary_dir.empty()) plan.bind(binary_dir, binary_dir, {.read_only = true});
    plan.bind(writable, writable);
    return plan;
}

constexpr ctr::ns::kinds case_namespaces = ctr::ns::pid | ctr::ns::network | ctr::ns::ipc | ctr::ns::uts;

// What a worker thread keeps from one case to the next: its cgroup and its
// prepared sandbox, made again when a case needs another binary directory.
struct lane {
    std::optional<ctr::cgroup::group> group;
    std::optional<ctr::process::prepared_sandbox> box;
    std::string binary_dir;
};

std::string xml_unescape(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '&') {
            out += text[i];
            continue;
        }
        const std::size_t end = text.find(';', i);
        if (end == std::string_view::npos) {
            out += text.substr(i);
            break;
        }
        const std::string_view entity = text.substr(i + 1, end - i - 1);
        if (entity == "lt") out += '<';
        else if (entity == "gt") out += '>';
        else if (entity == "amp") out += '&';
        else if (entity == "quot") out += '"';
        else if (entity == "apos") out += '\'';
        else if (entity.size() > 1 && entity[0] == '#') {
            const bool hex = entity[1] == 'x' || entity[1] == 'X';
            const unsigned long code = std::stoul(std::string(entity.substr(hex ? 2 : 1)), nullptr, hex ? 16 : 10);
            if (code < 0x80) out += static_cast<char>(code);
            else out += '?';  // GoogleTest escapes only control characters this way
        } else out += text.substr(i, end - i + 1);
        i = end;
    }
    return out;
}

// The value of attribute `name` in the first element `<tag ...>` of `xml`.
std::optional<std::string> xml_attribute(const std::string& xml, const std::string& tag, const std::string& name) {
    const std::size_t start = xml.find("<" + tag + " ");
    if (start == std::string::npos) return std::nullopt;
    const std::size_t end = xml.find('>', start);
    const std::string element = xml.substr(start, end - start);
    const std::size_t at = element.find(" " + name + "=\"");
    if (at == std::string::npos) return std::nullopt;
    const std::size_t value = at + name.size() + 3;
    return xml_unescape(std::string_view(element).substr(value, element.find('"', value) - value));
}

// GoogleTest starts a message with "file:line" on a line of its own; the
// table shows the rest, on one line.
std::string short_message(const std::string& message) {
    std::string text = message.substr(message.find('\n') == std::string::npos ? 0 : message.find('\n') + 1);
    std::replace(text.begin(), text.end(), '\n', ' ');
    return text.size() > 48 ? text.substr(0, 45) + "..." : text;
}

// A GoogleTest case exits 0 when skipped, and when its filter matched no
// case at all: only its XML report tells. A case that crashed or timed out
// wrote none.
void read_gtest_report(const fs::path& file, report& rep) {
    std::ifstream in(file);
    if (!in) return;
    const std::string xml{std::istreambuf_iterator<char>(in), {}};
    if (rep.how == outcome::passed && xml_attribute(xml, "testsuites", "tests") == "0") {
        rep.how = outcome::error;
        rep.detail = "no case ran: the binary did not find it";
    } else if (rep.how == outcome::passed && xml_attribute(xml, "testcase", "result") == "skipped") {
        rep.how = outcome::skipped;
        rep.message = xml_attribute(xml, "skipped", "message").value_or("");
        rep.detail = short_message(rep.message);
    } else if (auto failure = xml_attribute(xml, "failure", "message")) {
        rep.message = *failure;
    }
}

// One test in a sandbox of its own: the host read-only with a private /tmp,
// no network, its own pids, a writable scratch working directory, and a
// cgroup with the memory and pids limits: started from the worker's
// prepared sandbox, or (--fresh-sandboxes) made anew.
report run_one(const test_case& t, const settings& s, const fs::path& case_dir, lane& mine, const fs::path& scratch_top) {
    report rep;
    if (t.disabled) {
        rep.how = outcome::disabled;
        return rep;
    }
    try {
        const fs::path work = case_dir / "work", gtest_xml = case_dir / "gtest.xml";
        fs::create_directories(work);
        std::vector<std::string> argv = t.argv;
        if (t.gtest) argv.push_back("--gtest_output=xml:" + gtest_xml.string());
        namespace p = ctr::process;
        // $TMPDIR may name the host's directory, read-only in the sandbox.
        const p::environment env{.set = {{"TMPDIR", "/tmp"}}};
        const auto timeout = t.timeout.value_or(s.timeout);
        std::optional<ctr::cgroup::group> own_group;
        p::result r;
        bool oom_killed = false;
        std::optional<std::uint64_t> memory_max;
        if (s.fresh_sandboxes) {
            if (s.cgroups) own_group.emplace(make_group(s));
            r = p::spawn(argv, {.env = env,
                                .cwd = work.string(),
                                .std_in = p::stdio::null(),
                                .std_out = p::stdio::capture(),
                                .std_err = p::stdio::capture(),
                                .timeout = timeout,
                                .kill_grace = 500ms,
                                .namespaces = case_namespaces,
                                .cgroup = own_group ? &*own_group : nullptr,
                                .root = sandbox_root(t.binary_dir, case_dir)})
                    .wait();
            oom_killed = r.oom_killed;
            rep.peak = r.memory_peak_bytes;
            if (own_group) memory_max = own_group->memory_max_bytes();
        } else {
            if (s.cgroups && !mine.group) mine.group.emplace(make_group(s));
            if (!mine.box || mine.binary_dir != t.binary_dir) {
                mine.box.reset();
                mine.box.emplace(p::options{.namespaces = case_namespaces,
                                            .cgroup = mine.group ? &*mine.group : nullptr,
                                            .root = sandbox_root(t.binary_dir, scratch_top)});
                mine.binary_dir = t.binary_dir;
            }
            // One case at a time in the worker's group: its new OOM kills
            // are this case's.
            const auto kills = [&] { return mine.group ? mine.group->oom_kills().value_or(0) : std::uint64_t{0}; };
            const auto kills_before = kills();
            r = mine.box
                    ->run(argv, {.env = env,
                                 .cwd = work.string(),
                                 .std_in = p::stdio::null(),
                                 .std_out = p::stdio::capture(),
                                 .std_err = p::stdio::capture(),
                                 .timeout = timeout,
                                 .kill_grace = 500ms})
                    .wait();
            oom_killed = kills() > kills_before;
            if (mine.group) memory_max = mine.group->memory_max_bytes();
        }
        rep.time = r.wall_time;
        std::ostringstream detail;
        if (r.timed_out) {
            rep.how = outcome::timed_out;
            detail.precision(1);
            detail << std::fixed << "after " << std::chrono::duration<double>(t.timeout.value_or(s.timeout)).count()
                   << " s";
        } else if (oom_killed) {
            rep.how = outcome::out_of_memory;
            detail << "limit " << (memory_max.value_or(0) >> 20) << " MiB";
        } else if (r.signal) {
            rep.how = outcome::crashed;
            detail << "signal " << *r.signal;
        } else {
            const bool skip_status = !t.gtest && r.exit_code == 77;
            rep.how = r.exit_code == 0 ? outcome::passed : skip_status ? outcome::skipped : outcome::failed;
            detail << "exit " << *r.exit_code;
        }
        rep.detail = detail.str();
        if (t.gtest) read_gtest_report(gtest_xml, rep);
        if (rep.how != outcome::passed) rep.output = r.std_out + r.std_err;
        if (fails_the_run(rep.how) && rep.output.find("Read-only file system") != std::string::npos)
            rep.hint = "the case wrote outside its working directory, and only that (" + work.string() +
                       ") and /tmp are writable in its sandbox: write test files to the current directory or /tmp";
    } catch (const std::exception& e) {
        rep.how = outcome::error;
        rep.detail = e.what();
    }
    return rep;
}

// Runs every case on `jobs` worker threads and returns the reports in order.
std::vector<report> run_all(const std::vector<test_case>& cases, const settings& s) {
    const scratch dirs;
    std::vector<report> reports(cases.size());
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> workers;
    for (unsigned i = 0; i < std::min<std::size_t>(s.jobs, cases.size()); ++i)
        workers.emplace_back([&] {
            lane mine;
            for (std::size_t k; (k = next++) < cases.size();)
                reports[k] = run_one(cases[k], s, dirs.case_dir(k), mine, dirs.top());
        });
    for (auto& w : workers) w.join();
    return reports;
}

int print_table(const std::vector<test_case>& cases, const std::vector<report>& reports) {
    std::size_t width = 4, detail_width = 6;
    for (const auto& c : cases) width = std::max(width, c.name.size());
    for (const auto& r : reports) detail_width = std::max(detail_width, r.detail.size());
    std::printf("%-*s  %-13s  %-*s  %9s  %11s\n", static_cast<int>(width), "test", "outcome",
                static_cast<int>(detail_width), "detail", "time", "peak charge");
    std::size_t counts[outcome_count] = {};
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const report& r = reports[i];
        ++counts[static_cast<int>(r.how)];
        const std::string peak = r.peak ? std::to_string(*r.peak >> 10) + " KiB" : "-";
        std::printf("%-*s  %-13s  %-*s  %7.1f ms  %11s\n", static_cast<int>(width), cases[i].name.c_str(),
                    outcome_names[static_cast<int>(r.how)], static_cast<int>(detail_width), r.detail.c_str(),
                    std::chrono::duration<double, std::milli>(r.time).count(), peak.c_str());
    }
    std::printf("%zu tests: %zu passed, %zu failed, %zu crashed, %zu timed out, %zu out of memory, %zu skipped, "
                "%zu disabled",
                cases.size(), counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6]);
    if (counts[7]) std::printf(", %zu could not run", counts[7]);
    std::printf("\n");
    std::printf("peak charge: the most memory the case's cgroup was charged at once: its processes' memory, the\n"
                "  page cache of the files they touched and kernel memory, not a process's resident set (RSS);\n"
                "  - where the case had no cgroup of its own (a disabled case; a case started from a worker's\n"
                "  prepared sandbox, which shares the worker's group: --fresh-sandboxes gives each its own)\n");
    for (std::size_t i = 0; i < cases.size(); ++i) {
        if (!reports[i].output.empty() && fails_the_run(reports[i].how))
            std::printf("\n--- %s ---\n%s", cases[i].name.c_str(), reports[i].output.c_str());
        if (!reports[i].hint.empty()) std::printf("hint: %s\n", reports[i].hint.c_str());
    }
    for (const auto& r : reports)
        if (fails_the_run(r.how)) return 1;
    return 0;
}

// In an attribute a line break is escaped, or a parser reads it as a space.
std::string xml_escape(std::string_view text, bool attribute = false) {
    std::string out;
    for (const char c : text) {
        switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        case '\n': out += attribute ? "&#10;" : "\n"; break;
        case '\t': out += attribute ? "&#9;" : "\t"; break;
        default:
            // XML 1.0 has no other control characters, not even escaped.
            if (static_cast<unsigned char>(c) < 0x20) out += '?';
            else out += c;
        }
    }
    return out;
}

// JUnit XML as Jenkins, GitLab and GitHub read it: a testsuite per suite,
// a testcase per case with its time in seconds, and a failure, error or
// skipped element for what did not pass.
void write_junit(const std::string& path, const std::vector<test_case>& cases, const std::vector<report>& reports) {
    std::vector<std::string> suites;
    for (const auto& c : cases)
        if (std::find(suites.begin(), suites.end(), c.suite) == suites.end()) suites.push_back(c.suite);
    struct totals {
        std::size_t tests = 0, failures = 0, errors = 0, skipped = 0;
        double time = 0;
        void add(const report& r) {
            ++tests;
            failures += fails_the_run(r.how) && r.how != outcome::error;
            errors += r.how == outcome::error;
            skipped += r.how == outcome::skipped || r.how == outcome::disabled;
            time += std::chrono::duration<double>(r.time).count();
        }
    };
    const auto attributes = [](const totals& t) {
        char buffer[160];
        std::snprintf(buffer, sizeof buffer, R"(tests="%zu" failures="%zu" errors="%zu" skipped="%zu" time="%.3f")",
                      t.tests, t.failures, t.errors, t.skipped, t.time);
        return std::string(buffer);
    };
    totals all;
    for (const auto& r : reports) all.add(r);
    std::ostringstream xml;
    xml << R"(<?xml version="1.0" encoding="UTF-8"?>)" << '\n'
        << R"(<testsuites name="test_harness" )" << attributes(all) << ">\n";
    for (const auto& suite : suites) {
        totals t;
        for (std::size_t i = 0; i < cases.size(); ++i)
            if (cases[i].suite == suite) t.add(reports[i]);
        xml << R"(  <testsuite name=")" << xml_escape(suite, true) << "\" " << attributes(t) << ">\n";
        for (std::size_t i = 0; i < cases.size(); ++i) {
            if (cases[i].suite != suite) continue;
            const report& r = reports[i];
            std::string name = cases[i].name;
            if (cases[i].gtest) name = name.substr(suite.size() + 1);  // "Suite.Case" -> "Case"
            char time[32];
            std::snprintf(time, sizeof time, "%.3f", std::chrono::duration<double>(r.time).count());
            xml << R"(    <testcase name=")" << xml_escape(name, true) << R"(" classname=")" << xml_escape(suite, true)
                << R"(" time=")" << time << "\">\n";
            const std::string what = outcome_names[static_cast<int>(r.how)];
            if (r.how == outcome::skipped || r.how == outcome::disabled) {
                const std::string message = r.how == outcome::disabled ? "disabled"
                                            : r.message.empty()         ? r.detail
                                                                        : r.message;
                xml << R"(      <skipped message=")" << xml_escape(message, true) << "\"/>\n";
            } else if (fails_the_run(r.how)) {
                const std::string tag = r.how == outcome::error ? "error" : "failure";
                const std::string message = r.message.empty() ? what + " (" + r.detail + ")" : r.message;
                xml << "      <" << tag << R"( type=")" << what << R"(" message=")" << xml_escape(message, true)
                    << "\">" << xml_escape(r.output);
                if (!r.hint.empty()) xml << xml_escape("\nhint: " + r.hint + "\n");
                xml << "</" << tag << ">\n";
            }
            xml << "    </testcase>\n";
        }
        xml << "  </testsuite>\n";
    }
    xml << "</testsuites>\n";
    std::ofstream out(path);
    out << xml.str();
    if (!out.flush()) throw std::runtime_error("cannot write the JUnit report " + path);
}

// The cases of a GoogleTest binary: "Suite." lines, then "  Case" lines.
std::vector<test_case> gtest_cases(const std::string& relative) {
    // The sandbox starts at "/", so the binary is named by its full path.
    const std::string binary = fs::absolute(relative).string();
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
            if (line.back() == '.') suite = line.substr(0, line.size() - 1);  // not "Running main() from ..."
            continue;
        }
        const std::string name = line.substr(line.find_first_not_of(' '));
        // GoogleTest's own rule: a suite or case named DISABLED_... does not run.
        const bool disabled = suite.starts_with("DISABLED_") || name.starts_with("DISABLED_");
        cases.push_back({suite, suite + "." + name, {binary, "--gtest_filter=" + suite + "." + name}, {},
                         fs::path(binary).parent_path().string(), true, disabled});
    }
    return cases;
}

// A flag's non-negative number, or an error that names the flag.
double number(const std::string& flag, const std::string& text) {
    std::size_t used = 0;
    double value = -1;
    try {
        value = std::stod(text, &used);
    } catch (const std::exception&) {
    }
    if (used == 0 || used != text.size() || !(value >= 0))
        throw std::invalid_argument(flag + " takes a number, not '" + text + "'");
    return value;
}

// "--" so that a command starting with '-' is not read as sh's option.
test_case command_case(const std::string& command) { return {"commands", command, {"/bin/sh", "-c", "--", command}}; }

}  // namespace

int main(int argc, char** argv) {
    settings s;
    std::vector<test_case> cases;
    try {
        bool options_end = false;
        for (int i = 1; i < argc; ++i) {
            const std::string arg = argv[i];
            const auto value = [&]() -> std::string {
                if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
                return argv[++i];
            };
            if (options_end || arg.empty() || arg[0] != '-') cases.push_back(command_case(arg));
            else if (arg == "--") options_end = true;
            else if (arg == "-h" || arg == "--help") {
                std::cout << usage;
                return 0;
            } else if (arg == "--jobs") s.jobs = std::max(1U, static_cast<unsigned>(number(arg, value())));
            else if (arg == "--timeout")
                s.timeout = std::chrono::milliseconds(static_cast<long>(number(arg, value()) * 1000));
            else if (arg == "--memory") s.memory = value();
            else if (arg == "--junit") s.junit = value();
            else if (arg == "--fresh-sandboxes") s.fresh_sandboxes = true;
            else if (arg == "--gtest") {
                const auto found = gtest_cases(value());
                cases.insert(cases.end(), found.begin(), found.end());
            } else throw std::invalid_argument("unknown option " + arg + " (--help lists them)");
        }
        const bool demo = argc == 1;
        if (demo) {
            // One test for each outcome; only the sleep has a short timeout.
            s.memory = "64M";
            for (const char* command :
                 {"exit 0", "echo some output; exit 1", "kill -SEGV $$", "sleep 30", "tail /dev/zero", "exit 77"})
                cases.push_back(command_case(command));
            cases[3].timeout = 1s;
        } else if (cases.empty()) {
            throw std::invalid_argument("no tests given (--help)");
        }
        try {
            [[maybe_unused]] const auto probe = make_group(s);
        } catch (const ctr::error& e) {
            // The demo's memory hog needs the limit; it cannot run here.
            if (demo) {
                std::cout << "ctr-example: skipped: no cgroup (" << e.what() << ")\n";
                return 77;
            }
            std::cerr << "note: no cgroup (" << e.what() << "); cases run without memory and process limits\n";
            s.cgroups = false;
        }
        const auto reports = run_all(cases, s);
        const int status = print_table(cases, reports);
        if (!s.junit.empty()) write_junit(s.junit, cases, reports);
        if (!demo) return status;
        // The demo passes when each outcome came once, in order.
        for (std::size_t i = 0; i < reports.size(); ++i)
            if (reports[i].how != static_cast<outcome>(i)) return 1;
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "test_harness: " << e.what() << '\n';
        return 2;
    }
}
