// Builds a project inside a sandbox: the host's system directories and the
// project root read-only, a writable build directory, a private /tmp, no
// network, memory and process limits and a timeout. Nothing of the host but
// the toolchain, the project and the build directory is visible: not $HOME,
// not other projects, not the caller's environment.
//
//   sandboxed_build [OPTIONS] --cmake [CMAKE_CONFIGURE_ARGS...]
//       configures the CMake project at ROOT into OUT, then builds it
//   sandboxed_build [OPTIONS] -- COMMAND [ARGS...]
//       runs any build command (cc, make, ninja...) in the sandbox
//   sandboxed_build --help
//
// Without arguments it configures and builds examples/sample_project (a
// library, a program and a header in another directory), runs the program,
// compiles one file by hand with -MD -MF into the build directory, and shows
// that the source tree cannot be written.
// expect-output: configure of .*sample_project: ok
// expect-output: build of .*sample_project: ok
// expect-output: hello, sandbox, from a sandboxed CMake build \(sample 1\.2\.3, 2 vowels\)
// expect-output: count\.o: .*count\.c .*greet/greet\.h
// expect-output: touch: .*Read-only file system
// expect-output: source tree unchanged: yes
#include <ctr/ctr.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* usage = R"(usage:
  sandboxed_build [OPTIONS] --cmake [CMAKE_CONFIGURE_ARGS...]
      configure the CMake project at ROOT into OUT (cmake -S ROOT -B OUT ...),
      then build it (cmake --build OUT)
  sandboxed_build [OPTIONS] -- COMMAND [ARGS...]
      run any build command inside the sandbox
  sandboxed_build --help

The sandbox sees /usr, /etc, /opt and the /bin, /lib... links read-only, the
project root read-only, the build directory writable, a private /tmp, a fresh
/proc and /dev, no network. The command runs in the current directory when
that lies inside ROOT or OUT, otherwise in OUT.

options:
  --root DIR        the project root, bound read-only (default: .)
  --out DIR         the build directory, bound writable, created if missing
                    (default: ROOT/build)
  -I, --include DIR an include directory outside ROOT: bound read-only and
                    added to CPATH, which gcc and clang search as with -I
                    (may be repeated)
  --ro DIR          a further directory bound read-only, e.g. a toolchain
                    outside /usr and /opt (may be repeated)
  --memory SIZE     the sandbox's memory limit (default 2G; needs a cgroup:
                    root, or a delegated cgroup v2 subtree)
  --timeout SECONDS the wall-clock limit of each step (default 600)
  -h, --help        this text

The environment inside is PATH, HOME=/tmp, TMPDIR=/tmp, CPATH and, when set,
CC CXX CFLAGS CXXFLAGS CPPFLAGS LDFLAGS MAKEFLAGS CMAKE_BUILD_PARALLEL_LEVEL
CMAKE_GENERATOR LANG LC_ALL.
)";

struct settings {
    fs::path root;
    fs::path out;
    std::vector<fs::path> includes;
    std::vector<fs::path> read_only;
    std::string memory = "2G";
    std::chrono::milliseconds timeout = 600s;
};

// A directory below /tmp, removed with everything in it when it goes out of
// scope, an exception included.
class temporary_directory {
public:
    explicit temporary_directory(const std::string& name) {
        std::string pattern = "/tmp/" + name + "-XXXXXX";
        if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp " + pattern + ": cannot make a directory");
        path_ = pattern;
    }
    temporary_directory(const temporary_directory&) = delete;
    temporary_directory& operator=(const temporary_directory&) = delete;
    ~temporary_directory() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Whether `path` is `dir` or below it (both canonical).
bool inside(const fs::path& path, const fs::path& dir) {
    const auto rel = path.lexically_relative(dir);
    return !rel.empty() && *rel.begin() != "..";
}

// The sandbox's filesystem. The system directories come from the host;
// where /bin, /lib... are symlinks into /usr (a merged /usr), they stay links.
// /tmp is mounted before the binds so that a project or build directory
// below the host's /tmp gets its mount point in the sandbox's own /tmp.
ctr::mount::plan build_root(const settings& s, const fs::path& empty) {
    ctr::mount::plan p{.rootfs = empty.string()};
    p.nosuid_root = true;
    p.nodev_root = true;
    const ctr::mount::bind_options system{.read_only = true, .nosuid = true, .nodev = true, .optional = true};
    for (const char* dir : {"/usr", "/etc", "/opt"}) p.bind(dir, dir, system);
    for (const char* dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
        std::error_code ec;
        if (fs::is_symlink(dir, ec)) p.symlink(fs::read_symlink(dir).string(), dir);
        else if (fs::is_directory(dir, ec)) p.bind(dir, dir, system);
    }
    p.proc().dev().tmpfs("/tmp", {.mode = 01777});
    p.bind(s.root, s.root, {.read_only = true, .nodev = true});
    for (const auto& dir : s.includes) p.bind(dir, dir, {.read_only = true, .nodev = true});
    for (const auto& dir : s.read_only) p.bind(dir, dir, {.read_only = true, .nodev = true});
    p.bind(s.out, s.out, {.nodev = true});
    return p;
}

ctr::process::environment build_environment(const settings& s) {
    ctr::process::environment env{.inherit = false};
    const char* path = std::getenv("PATH");
    env.set.emplace_back("PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
    env.set.emplace_back("HOME", "/tmp");
    env.set.emplace_back("TMPDIR", "/tmp");
    std::string cpath;
    for (const auto& dir : s.includes) cpath += (cpath.empty() ? "" : ":") + dir.string();
    if (!cpath.empty()) env.set.emplace_back("CPATH", cpath);
    for (const char* name : {"CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "MAKEFLAGS",
                             "CMAKE_BUILD_PARALLEL_LEVEL", "CMAKE_GENERATOR", "LANG", "LC_ALL"})
        if (const char* value = std::getenv(name)) env.set.emplace_back(name, value);
    return env;
}

// Limits from a cgroup where this process may make one (root, or a
// delegated cgroup v2 subtree); rlimits otherwise. A group per step, so that
// each step's peak memory is its own.
std::optional<ctr::cgroup::group> limits_group(const settings& s) {
    try {
        return std::optional<ctr::cgroup::group>(
            std::in_place,
            ctr::cgroup::options{.prefix = "sandboxed-build", .limits = {.memory_max = s.memory, .pids_max = 256}});
    } catch (const ctr::error& e) {
        static bool said = false;
        if (!said) std::cerr << "note: no cgroup (" << e.what() << "); limits by rlimit only\n";
        said = true;
        return std::nullopt;
    }
}

// Runs argv in the sandbox; its output goes straight to ours, as a build's
// does. `what` names the step in the line that says how it ended.
bool run_step(const std::string& what, const std::vector<std::string>& argv, const settings& s,
              const fs::path& cwd) {
    std::cout << std::flush;  // our lines before the step's, which go straight to the same place
    auto group = limits_group(s);
    // The sandbox's "/": empty on the host but for the mount points the
    // sandbox makes in it.
    const temporary_directory root("sandboxed-build-root");
    namespace p = ctr::process;
    const auto r = p::spawn(argv, {.env = build_environment(s),
                                   .cwd = cwd.string(),
                                   .std_in = p::stdio::null(),
                                   .timeout = s.timeout,
                                   .rlimits = {{RLIMIT_NPROC, 1024, 1024}, {RLIMIT_FSIZE, 1UL << 30, 1UL << 30}},
                                   .namespaces = ctr::ns::pid | ctr::ns::network | ctr::ns::ipc | ctr::ns::uts,
                                   .cgroup = group ? &*group : nullptr,
                                   .root = build_root(s, root.path()),
                                   .security = ctr::security::confined()})
                       .wait();
    std::cout << what << ": ";
    if (r.timed_out) std::cout << "timed out";
    else if (r.oom_killed) std::cout << "out of memory";
    else if (r.signal) std::cout << "killed by signal " << *r.signal;
    else if (r.exit_code != 0) std::cout << "failed (exit " << *r.exit_code << ")";
    else std::cout << "ok";
    std::cout << ", " << std::chrono::duration_cast<std::chrono::milliseconds>(r.wall_time).count() << " ms";
    // The group's charge: the build's processes' memory and the page cache
    // of the files they read and wrote.
    if (r.memory_peak_bytes) std::cout << ", peak memory charge " << (*r.memory_peak_bytes >> 10) << " KiB";
    std::cout << std::endl;
    return r.success();
}

// Where a command runs: here, if the sandbox shows this directory.
fs::path working_directory(const settings& s) {
    const fs::path here = fs::current_path();
    for (const auto& dir : {s.root, s.out})
        if (inside(here, dir)) return here;
    return s.out;
}

bool cmake_build(const settings& s, const std::vector<std::string>& configure_args) {
    std::vector<std::string> configure = {"cmake", "-S", s.root.string(), "-B", s.out.string()};
    configure.insert(configure.end(), configure_args.begin(), configure_args.end());
    return run_step("configure of " + s.root.string(), configure, s, s.out) &&
           run_step("build of " + s.root.string(), {"cmake", "--build", s.out.string()}, s, s.out);
}

// Every path below `dir` with its size and time: what a build must not change.
std::vector<std::string> snapshot(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        out.push_back(entry.path().string());
        if (entry.is_regular_file())
            out.back() += " " + std::to_string(entry.file_size()) + " " +
                          std::to_string(entry.last_write_time().time_since_epoch().count());
    }
    return out;
}

bool on_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (std::size_t start = 0; start <= dirs.size();) {
        const std::size_t end = std::min(dirs.find(':', start), dirs.size());
        if (access((dirs.substr(start, end - start) + "/" + program).c_str(), X_OK) == 0) return true;
        start = end + 1;
    }
    return false;
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

int demo() {
#ifndef CTR_EXAMPLE_SAMPLE_PROJECT
    std::cerr << "sandboxed_build: built without CTR_EXAMPLE_SAMPLE_PROJECT; give --root and --cmake\n";
    return 77;
#else
    for (const char* tool : {"cmake", "cc", "make"})
        if (!on_path(tool)) {
            std::cout << "no " << tool << " on PATH: the demo builds a CMake project\n";
            return 77;
        }
    if (!fs::is_directory(CTR_EXAMPLE_SAMPLE_PROJECT)) {
        std::cerr << "sandboxed_build: the demo's project " CTR_EXAMPLE_SAMPLE_PROJECT
                     " is not there (examples/sample_project of ctr's source tree); give --root and --cmake\n";
        return 2;
    }
    const temporary_directory top("sandboxed-build");
    settings s;
    s.root = fs::canonical(CTR_EXAMPLE_SAMPLE_PROJECT);
    s.out = top.path() / "build";
    fs::create_directories(s.out);
    const auto before = snapshot(s.root);

    // 1. The whole project: configure, build, and run what it built.
    bool ok = cmake_build(s, {"-DCMAKE_BUILD_TYPE=Release"});
    ok = ok && run_step("run of hello", {(s.out / "hello").string(), "sandbox"}, s, s.out);

    // 2. One file by hand, the way a build system calls the compiler: the
    // include path from --include (CPATH), the dependency file and the object
    // written to the build directory.
    settings single = s;
    single.includes = {s.root / "include"};
    const fs::path objects = s.out / "by-hand";
    fs::create_directories(objects);
    ok = ok && run_step("compile of count.c",
                        {"cc", "-c", (s.root / "lib/count.c").string(), "-MD", "-MF", (objects / "count.d").string(),
                         "-o", (objects / "count.o").string()},
                        single, s.root);
    if (ok) {
        // The dependency file, less the system headers.
        std::ifstream depfile(objects / "count.d");
        for (std::string line; std::getline(depfile, line);)
            if (line.find(" /usr/") != 0) std::cout << line << '\n';
    }

    // 3. The source tree is read-only inside, and unchanged outside.
    const bool refused = !run_step("write into the source tree", {"touch", (s.root / "x").string()}, s, s.root);
    const bool unchanged = snapshot(s.root) == before;
    std::cout << "source tree unchanged: " << (unchanged ? "yes" : "no") << '\n';
    return ok && refused && unchanged ? 0 : 1;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc == 1) return demo();
        settings s;
        std::vector<std::string> command;
        bool cmake = false;
        for (int i = 1; i < argc; ++i) {
            const std::string arg = argv[i];
            const auto value = [&]() -> std::string {
                if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
                return argv[++i];
            };
            if (arg == "-h" || arg == "--help") {
                std::cout << usage;
                return 0;
            } else if (arg == "--root") s.root = value();
            else if (arg == "--out") s.out = value();
            else if (arg == "-I" || arg == "--include") s.includes.push_back(fs::canonical(value()));
            else if (arg == "--ro") s.read_only.push_back(fs::canonical(value()));
            else if (arg == "--memory") s.memory = value();
            else if (arg == "--timeout")
                s.timeout = std::chrono::milliseconds(static_cast<long>(number(arg, value()) * 1000));
            else if (arg == "--cmake" || arg == "--") {
                cmake = arg == "--cmake";
                const int first = cmake && i + 1 < argc && std::string(argv[i + 1]) == "--" ? i + 2 : i + 1;
                command.assign(argv + first, argv + argc);
                break;
            } else throw std::invalid_argument("unknown option " + arg + " (--help lists them)");
        }
        if (!cmake && command.empty()) throw std::invalid_argument("give --cmake or -- COMMAND (--help)");
        s.root = fs::canonical(s.root.empty() ? fs::current_path() : s.root);
        if (s.out.empty()) s.out = s.root / "build";
        fs::create_directories(s.out);
        s.out = fs::canonical(s.out);
        if (cmake) return cmake_build(s, command) ? 0 : 1;
        return run_step(command[0], command, s, working_directory(s)) ? 0 : 1;
    } catch (const std::invalid_argument& e) {
        std::cerr << "sandboxed_build: " << e.what() << '\n';
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "sandboxed_build: " << e.what() << '\n';
        return 1;
    }
}
