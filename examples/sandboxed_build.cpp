// Compiles a C or C++ file inside a sandbox: the source tree read-only, the
// output directory writable, no network, memory and process limits and a
// timeout. Prints the compiler's diagnostics and how the build ended.
//
//   sandboxed_build SOURCE OUTPUT_DIR [COMPILER [FLAGS...]]
//
// Without arguments it builds two files it writes itself: one that compiles
// (and runs the result, in a sandbox too) and one with an error.
// expect-output: build of hello.c: ok
// expect-output: hello from a sandboxed build
// expect-output: broken.c:2:[0-9]+: error: .*undeclared
// expect-output: build of broken.c: failed \(exit 1\)
#include <ctr/ctr.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Limits from a cgroup where this process may make one (root, or a
// delegated cgroup v2 subtree); rlimits otherwise.
std::optional<ctr::cgroup::group> limits_group() {
    try {
        return std::optional<ctr::cgroup::group>(
            std::in_place, ctr::cgroup::options{.prefix = "sandboxed-build", .limits = {.memory_max = "1G", .pids_max = 64}});
    } catch (const ctr::error& e) {
        std::cerr << "note: no cgroup (" << e.what() << "); limits by rlimit only\n";
        return std::nullopt;
    }
}

// Runs argv with the source directory read-only and the output directory
// writable; everything else of the host is read-only, /tmp is private.
ctr::process::result run_sandboxed(const std::vector<std::string>& argv, const fs::path& source_dir,
                                   const fs::path& output_dir, ctr::cgroup::group* group) {
    namespace p = ctr::process;
    return p::spawn(argv, {.std_in = p::stdio::null(),
                           .std_out = p::stdio::capture(),
                           .std_err = p::stdio::capture(),
                           .timeout = 60s,
                           .rlimits = {{RLIMIT_NPROC, 256, 256}, {RLIMIT_FSIZE, 256 << 20, 256 << 20}},
                           .namespaces = ctr::ns::pid | ctr::ns::network | ctr::ns::ipc | ctr::ns::uts,
                           .cgroup = group,
                           .root = ctr::mount::host_readonly()
                                       .bind(source_dir, source_dir, {.read_only = true})
                                       .bind(output_dir, output_dir)})
        .wait();
}

// Compiles one file; true when it built.
bool build(const fs::path& source, const fs::path& output_dir, std::vector<std::string> compiler) {
    auto group = limits_group();
    const fs::path output = output_dir / source.stem();
    std::vector<std::string> argv = std::move(compiler);
    argv.insert(argv.end(), {source.string(), "-o", output.string()});
    const auto r = run_sandboxed(argv, source.parent_path(), output_dir, group ? &*group : nullptr);
    std::cout << r.std_out << r.std_err;
    std::cout << "build of " << source.filename().string() << ": ";
    if (r.timed_out) std::cout << "timed out";
    else if (r.oom_killed) std::cout << "out of memory";
    else if (r.signal) std::cout << "killed by signal " << *r.signal;
    else if (r.exit_code != 0) std::cout << "failed (exit " << *r.exit_code << ")";
    else std::cout << "ok";
    std::cout << ", " << std::chrono::duration_cast<std::chrono::milliseconds>(r.wall_time).count() << " ms";
    if (r.memory_peak_bytes) std::cout << ", peak memory " << (*r.memory_peak_bytes >> 20) << " MiB";
    std::cout << '\n';
    return r.success();
}

int demo() {
    char pattern[] = "/tmp/sandboxed-build-XXXXXX";
    const fs::path top = mkdtemp(pattern);
    const fs::path src = top / "src", out = top / "out";
    fs::create_directories(src);
    fs::create_directories(out);
    std::ofstream(src / "hello.c") << "#include <stdio.h>\nint main(void) { puts(\"hello from a sandboxed build\"); return 0; }\n";
    std::ofstream(src / "broken.c") << "int main(void) {\n    return missing_variable;\n}\n";
    const std::vector<std::string> cc = {"cc", "-Wall"};
    bool ok = build(src / "hello.c", out, cc);
    if (ok) {
        const auto r = run_sandboxed({(out / "hello").string()}, src, out, nullptr);
        std::cout << r.std_out;
        ok = r.success();
    }
    const bool broken_failed = !build(src / "broken.c", out, cc);
    fs::remove_all(top);
    return ok && broken_failed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc == 1) return demo();
        if (argc < 3) {
            std::cerr << "usage: sandboxed_build SOURCE OUTPUT_DIR [COMPILER [FLAGS...]]\n";
            return 2;
        }
        std::vector<std::string> compiler(argv + 3, argv + argc);
        if (compiler.empty()) compiler = {"cc"};
        const fs::path source = fs::absolute(argv[1]);
        fs::create_directories(argv[2]);
        return build(source, fs::canonical(argv[2]), compiler) ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "sandboxed_build: " << e.what() << '\n';
        return 1;
    }
}
