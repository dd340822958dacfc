#pragma once
// What the tests of ctr-run (ctr_run_test.cpp, oci_runtime_test.cpp) share:
// running it (as the caller or as the unprivileged user ctrtest), scratch
// directories, a busybox root filesystem.
#include "support.hpp"

#include <ctr/process.hpp>

#include <gtest/gtest.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#ifdef CTR_RUN_BINARY

namespace ctr_run_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline const std::string ctr_run = ctr_test::from_environment_or("CTR_TEST_CTR_RUN", CTR_RUN_BINARY);

// A directory that everyone may read, removed with everything in it.
struct scratch {
    fs::path path;
    scratch() {
        char pattern[] = "/tmp/ctr-run-test-XXXXXX";
        path = mkdtemp(pattern);
        chmod(path.c_str(), 0755);
    }
    ~scratch() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;
};

inline void write_file(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

inline std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Every file below a directory with its type, size and content's first bytes.
inline std::map<std::string, std::string> snapshot(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        const auto name = fs::relative(e.path(), root).string();
        if (e.is_symlink()) out[name] = "link " + fs::read_symlink(e.path()).string();
        else if (e.is_regular_file()) out[name] = "file " + read_file(e.path()).substr(0, 64);
        else out[name] = "dir";
    }
    return out;
}

inline const std::string& busybox_rootfs() {
    static scratch dir;
    static const std::string path = [] {
        const std::string target = dir / "rootfs";
        const std::string command = "'" + ctr_test::make_rootfs + "' '" + target + "' >/dev/null 2>&1";
        return std::system(command.c_str()) == 0 ? target : std::string();
    }();
    return path;
}

#define SKIP_WITHOUT_BUSYBOX()      \
    if (busybox_rootfs().empty()) \
    GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed? (tools/install-deps)"

// ctr-run as the unprivileged user ctrtest: a copy it can run, and runuser.
inline const std::string& unprivileged_ctr_run() {
    static scratch dir;
    static const std::string path = [] {
        if (!ctr_test::real_root || !getpwnam("ctrtest")) return std::string();
        const fs::path copy = dir / "ctr-run";
        std::error_code ec;
        fs::copy_file(ctr_run, copy, ec);
        if (ec) return std::string();
        chmod(copy.c_str(), 0755);
        return copy.string();
    }();
    return path;
}

#define SKIP_WITHOUT_UNPRIVILEGED_USER()    \
    if (unprivileged_ctr_run().empty())     \
    GTEST_SKIP() << "needs real root and the user ctrtest (see tests/run-rootless)"

struct outcome {
    int status = -1;  // the exit status, or 128+N for signal N, as a shell says
    std::string out, err;
};

enum class as { caller, unprivileged };

inline outcome run(std::vector<std::string> args, as who = as::caller, const std::string& input = {}) {
    if (who == as::unprivileged) {
        args.insert(args.begin(), {"runuser", "-u", "ctrtest", "--", unprivileged_ctr_run()});
    } else {
        args.insert(args.begin(), ctr_run);
    }
    namespace p = ctr::process;
    auto child = p::spawn(args, {.std_in = input.empty() ? p::stdio::null() : p::stdio::pipe(),
                                 .std_out = p::stdio::capture(),
                                 .std_err = p::stdio::capture(),
                                 .timeout = 60s});
    if (!input.empty()) {
        [[maybe_unused]] const auto n = write(child.std_in().get(), input.data(), input.size());
        child.std_in().reset();
    }
    const auto r = child.wait();
    return {r.exit_code ? *r.exit_code : 128 + r.signal.value_or(0), r.std_out, r.std_err};
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace ctr_run_test

#endif  // CTR_RUN_BINARY
