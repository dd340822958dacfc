// Escape tests: each route out of a sandbox that issue 10 lists, tried as a
// hostile program would, through ctr-run's defaults (escape_ctr_run) and
// through the library's default confinement (escape_library); and the
// routes that exist without namespaces, through ctr-run's no-namespace mode
// (escape_without_namespaces, whose proof is the attempt made outside the
// sandbox; see that section).
//
// Every test first proves that it would catch the escape: the same attempt
// with confinement switched off (ctr-run --privileged, plus --userns host
// as real root; the library with `.security = {}` and, as real root, no
// user namespace) must report ESCAPED, or the test skips saying why that
// proof cannot be made here (the kernel lacks the feature, the route needs
// real root). Only then does the confined run count: it must report
// BLOCKED. The attempts are made by tests/helper/escape.c, inside the
// sandbox, never in this process.
//
// The host is never harmed: every target is a file this suite made under
// /var/tmp/ctr-escape-XXXXXX (on the host's disk, where a mounted disk or a
// handle reaches it), removed afterwards; a host disk mounted inside a
// sandbox is only written at such a file. Nothing is written to /proc/sys,
// the clock is never set (settimeofday gets neither a time nor a zone), no
// bpf program is attached, no module loaded, and only the sandbox's own pid
// 1 is traced.
#include "support.hpp"
#include "without_namespaces.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#if __has_include(<ctr/security.hpp>)
#include <ctr/security.hpp>
#define CTR_ESCAPE_LIBRARY 1
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string escape_helper = ctr_test::from_environment_or("CTR_TEST_ESCAPE_HELPER", CTR_ESCAPE_HELPER);
#ifdef CTR_RUN_BINARY
const std::string ctr_run = ctr_test::from_environment_or("CTR_TEST_CTR_RUN", CTR_RUN_BINARY);
#endif

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A string nobody else has: markers for the init's environment and argv.
std::string unique_text(const std::string& prefix) {
    std::random_device random;
    return prefix + std::to_string(getpid()) + "-" + std::to_string(random()) + std::to_string(random());
}

// ---- the scratch directory on the host's disk -------------------------------

// /var/tmp/ctr-escape-XXXXXX, made once per run: /var/tmp rather than /tmp,
// which may be a tmpfs and which ctr-run's host view replaces. It holds the
// helper (reachable through the host view), a busybox rootfs with the helper
// as /bin/escape, a copy of ctr-run that the user ctrtest can run, and the
// targets. Everyone may read it; only the targets are writable by all.
struct scratch_dir {
    std::string path;
    std::string helper;   // path/escape
    std::string problem;  // why it could not be made, or empty

    scratch_dir() {
        char pattern[] = "/var/tmp/ctr-escape-XXXXXX";
        if (!mkdtemp(pattern)) {
            problem = std::string("mkdtemp /var/tmp/ctr-escape-XXXXXX: ") + std::strerror(errno);
            return;
        }
        path = pattern;
        chmod(path.c_str(), 0755);
        helper = path + "/escape";
        std::error_code ec;
        fs::copy_file(escape_helper, helper, ec);
        if (ec) {
            problem = "copying the escape helper " + escape_helper + ": " + ec.message() +
                      " (a suite run from elsewhere says where it is with CTR_TEST_ESCAPE_HELPER)";
            return;
        }
        chmod(helper.c_str(), 0755);
    }
    ~scratch_dir() {
        if (path.empty()) return;
        // Only sandboxes mount, each in a namespace of its own; if something
        // is mounted below here anyway, removing could reach into it.
        std::ifstream mountinfo("/proc/self/mountinfo");
        for (std::string line; std::getline(mountinfo, line);) {
            if (contains(line, " " + path + "/") || contains(line, " " + path + " ")) {
                std::fprintf(stderr, "escape_test: %s has a mount below it; left in place\n", path.c_str());
                return;
            }
        }
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
};

scratch_dir& scratch() {
    static scratch_dir dir;
    return dir;
}

#define SKIP_WITHOUT_SCRATCH() \
    if (!scratch().problem.empty()) GTEST_SKIP() << scratch().problem

// The busybox rootfs in the scratch directory, with the helper as
// /bin/escape; empty when it could not be made.
const std::string& busybox_rootfs() {
    static const std::string path = []() -> std::string {
        if (!scratch().problem.empty()) return {};
        const std::string target = scratch().path + "/rootfs";
        const std::string command = "'" + ctr_test::make_rootfs + "' '" + target + "' >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0) return {};
        std::error_code ec;
        fs::copy_file(scratch().helper, target + "/bin/escape", ec);
        if (ec) return {};
        chmod((target + "/bin/escape").c_str(), 0755);
        return target;
    }();
    return path;
}

#define SKIP_WITHOUT_BUSYBOX()    \
    if (busybox_rootfs().empty()) \
    GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed? (tools/install-deps)"

// A file of the host's that an escape writes to: "original\n" until then.
// Writable by everyone, so that only the sandbox stops a write, not the
// file's mode.
struct target_file {
    std::string path;
    static constexpr const char* original = "original\n";

    explicit target_file(const std::string& name) {
        path = scratch().path + "/" + name;
        reset();
    }
    ~target_file() { unlink(path.c_str()); }
    target_file(const target_file&) = delete;
    target_file& operator=(const target_file&) = delete;

    void reset() const {
        std::ofstream(path, std::ios::trunc) << original;
        chmod(path.c_str(), 0666);
    }
    std::string contents() const { return read_file(path); }
};

// Where a file lies on its filesystem, from /proc/self/mountinfo: the
// device, the filesystem type and the path from that filesystem's root.
struct on_disk {
    unsigned major_number = 0, minor_number = 0;
    std::string fstype, path_in_fs;
};

std::string unescape_mountinfo(const std::string& field) {
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            out += static_cast<char>(std::stoi(field.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += field[i];
        }
    }
    return out;
}

std::optional<on_disk> locate(const std::string& file) {
    struct stat st {};
    std::error_code ec;
    const std::string real = fs::canonical(file, ec).string();
    if (ec || stat(file.c_str(), &st) != 0) return std::nullopt;
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::optional<on_disk> best;
    std::size_t best_length = 0;
    for (std::string line; std::getline(mountinfo, line);) {
        std::istringstream fields(line);
        std::string id, parent, device, root, point;
        fields >> id >> parent >> device >> root >> point;
        root = unescape_mountinfo(root);
        point = unescape_mountinfo(point);
        const bool under = point == "/" || real == point || real.rfind(point + "/", 0) == 0;
        if (!under || point.size() < best_length) continue;
        const auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream tail(line.substr(dash + 3));
        on_disk d;
        tail >> d.fstype;
        if (std::sscanf(device.c_str(), "%u:%u", &d.major_number, &d.minor_number) != 2) continue;
        const std::string inside = real.substr(point == "/" ? 0 : point.size());
        const std::string joined = (root == "/" ? "" : root) + inside;  // "/dir/file", or empty at the root
        d.path_in_fs = joined.empty() ? "." : joined.substr(1);
        best = d;
        best_length = point.size();
    }
    if (best && makedev(best->major_number, best->minor_number) != st.st_dev) return std::nullopt;
    return best;
}

// ---- running an attempt ----------------------------------------------------

// What the helper said: its first line, split into the verdict and the rest.
struct verdict {
    std::string kind;    // ESCAPED, BLOCKED, UNAVAILABLE, or ERROR when no line came
    std::string detail;  // the rest of the line, or what went wrong
    std::string output;  // everything, for messages

    bool escaped() const { return kind == "ESCAPED"; }
    // The confined run's pass: refused. UNAVAILABLE counts too once the
    // unconfined run has shown that the kernel has the feature: a seccomp
    // filter answers ENOSYS for what it refuses as unknown (x32, newer calls).
    bool refused() const { return kind == "BLOCKED" || kind == "UNAVAILABLE"; }
};

verdict parse(const std::string& out, const std::string& context) {
    verdict v;
    v.output = context + "\nstdout: " + out;
    const std::string line = out.substr(0, out.find('\n'));
    const auto space = line.find(' ');
    const std::string kind = line.substr(0, space);
    if (kind == "ESCAPED" || kind == "BLOCKED" || kind == "UNAVAILABLE") {
        v.kind = kind;
        v.detail = space == std::string::npos ? "" : line.substr(space + 1);
    } else {
        v.kind = "ERROR";
        v.detail = line.empty() ? "no verdict from the helper" : "not a verdict: " + line;
    }
    return v;
}

std::string how_it_ended(const ctr::process::result& r) {
    if (r.exit_code) return "exit " + std::to_string(*r.exit_code);
    return "signal " + std::to_string(r.signal.value_or(0));
}

enum class as { caller, unprivileged };
enum class confinement { off, on };

// One attempt, described once for both launchers.
struct attempt {
    std::vector<std::string> command;  // as the sandbox sees it: the helper, its mode, its arguments
    bool rootfs = false;               // the busybox rootfs (helper at /bin/escape) instead of the host view
    std::string volume{};              // a host directory bound read-only onto itself
    std::optional<uid_t> uid{};
    std::optional<gid_t> gid{};
    as who = as::caller;
    // Stand-ins only: the command itself (or its shell) is pid 1, with this
    // fd of ours as stdin and the secret passed on to it.
    bool no_init = false;
    int std_in = -1;
    std::vector<std::pair<std::string, std::string>> secret_env{};  // in the caller's environment
    bool pass_secret_env = false;
    bool clear_env = false;  // the command starts from an empty environment
};

struct launcher {
    const char* name;
    verdict (*run)(const attempt&, confinement);
    bool is_library;
};

#ifdef CTR_RUN_BINARY

// ctr-run as the unprivileged user ctrtest: a copy it can run.
const std::string& unprivileged_ctr_run() {
    static const std::string path = [] {
        if (!ctr_test::real_root || !getpwnam("ctrtest") || !scratch().problem.empty()) return std::string();
        const std::string copy = scratch().path + "/ctr-run";
        std::error_code ec;
        fs::copy_file(ctr_run, copy, ec);
        if (ec) return std::string();
        chmod(copy.c_str(), 0755);
        return copy;
    }();
    return path;
}

// ctr-run's way out of its confinement, as the issue documents it.
std::vector<std::string> unconfined_flags(as who) {
    if (ctr_test::real_root && who == as::caller) return {"--privileged", "--userns", "host"};
    return {"--privileged"};
}

verdict run_ctr_run(const attempt& a, confinement c) {
    std::vector<std::string> args;
    if (a.who == as::unprivileged) args = {"runuser", "-u", "ctrtest", "--", unprivileged_ctr_run()};
    else args = {ctr_run};
    if (c == confinement::off)
        for (const auto& flag : unconfined_flags(a.who)) args.push_back(flag);
    if (a.rootfs) args.insert(args.end(), {"--rootfs", busybox_rootfs()});
    if (!a.volume.empty()) args.insert(args.end(), {"-v", a.volume + ":" + a.volume + ":ro"});
    if (a.uid) args.insert(args.end(), {"-u", std::to_string(*a.uid) + ":" + std::to_string(a.gid.value_or(0))});
    if (a.no_init) args.push_back("--no-init");
    if (a.clear_env) args.push_back("--clear-env");
    if (a.std_in >= 0) args.push_back("-i");  // without it, the command's stdin is /dev/null, as Docker's
    if (a.pass_secret_env)
        for (const auto& [name, value] : a.secret_env) args.insert(args.end(), {"-e", name});
    args.insert(args.end(), a.command.begin(), a.command.end());

    std::string context = "ctr-run:";
    for (const auto& arg : args) context += " " + arg;
    namespace p = ctr::process;
    try {
        auto child = p::spawn(args, {.env = {.set = a.secret_env},
                                     .std_in = a.std_in >= 0 ? p::stdio::from_fd(a.std_in) : p::stdio::null(),
                                     .std_out = p::stdio::capture(),
                                     .std_err = p::stdio::capture(),
                                     .timeout = 60s});
        const auto r = child.wait();
        context += "\n" + how_it_ended(r) + "\nstderr: " + r.std_err;
        auto v = parse(r.std_out, context);
        if (v.kind == "ERROR") v.detail = "ctr-run gave no verdict: " + r.std_err;
        return v;
    } catch (const ctr::error& e) {
        return {"ERROR", e.what(), context + "\n" + e.what()};
    }
}

const launcher through_ctr_run{"ctr-run", run_ctr_run, false};

#endif  // CTR_RUN_BINARY

#ifdef CTR_ESCAPE_LIBRARY

verdict run_library(const attempt& a, confinement c) {
    namespace p = ctr::process;
    namespace mnt = ctr::mount;
    if (a.who == as::unprivileged) return {"ERROR", "the library runs as this process's user", ""};
    mnt::plan root = a.rootfs ? mnt::plan{.rootfs = busybox_rootfs()}.proc().dev().tmpfs("/tmp") : mnt::host_readonly();
    if (!a.volume.empty()) root.bind(a.volume, a.volume, {.read_only = true});
    p::options o{};
    // The library's caller is this process: the secret is in our own
    // environment already, and the command gets it only when asked.
    o.env.inherit = !a.clear_env;
    if (a.pass_secret_env) o.env.set = a.secret_env;
    o.std_in = a.std_in >= 0 ? p::stdio::from_fd(a.std_in) : p::stdio::null();
    o.std_out = p::stdio::capture();
    o.std_err = p::stdio::capture();
    o.timeout = 60s;
    o.uid = a.uid;
    o.gid = a.gid;
    if (a.uid && ctr_test::real_root) o.groups = std::vector<gid_t>{};  // root's own groups stay behind
    // Confined, root's sandbox gets a user namespace (ns::all has one; the
    // default map puts its ids at 100000 and up). Unconfined as real root,
    // none: root inside is root outside, as ctr-run --userns host.
    o.namespaces = c == confinement::off && ctr_test::real_root ? ctr::ns::all.without(ctr::ns::user) : ctr::ns::all;
    // A time namespace always starts the command from a supervisor: a
    // stand-in whose command is pid 1 goes without one.
    if (a.no_init) o.namespaces = o.namespaces.without(ctr::ns::time);
    o.init = !a.no_init;
    o.root = std::move(root);
    o.security = c == confinement::on ? ctr::security::confined() : ctr::security{};

    std::string context = std::string("library (") + (c == confinement::on ? "confined" : "unconfined") + "):";
    for (const auto& arg : a.command) context += " " + arg;
    try {
        const auto r = p::spawn(a.command, o).wait();
        context += "\n" + how_it_ended(r) + "\nstderr: " + r.std_err;
        return parse(r.std_out, context);
    } catch (const ctr::error& e) {
        return {"ERROR", e.what(), context + "\n" + e.what()};
    }
}

const launcher through_library{"library", run_library, true};

#endif  // CTR_ESCAPE_LIBRARY

// ---- prove, then expect the confined run to be refused ----------------------

struct route {
    std::vector<attempt> attempts;  // each is tried; a proof needs one ESCAPED, confined needs all refused
    // Pid 1 stand-ins, tried unconfined only when no attempt escaped: the
    // library and ctr-run may seal their init even with confinement off, and
    // then a deliberately leaky pid 1 (the helper itself, or a shell) shows
    // that the attempt would see a leak.
    std::vector<attempt> stand_ins{};
    const target_file* target = nullptr;  // an escape writes here; a confined run must leave it alone
    int runs = 1;                         // a race: how many launches each way
};

// Runs the proof and the confined runs, reporting failures; returns why the
// test skips (the proof cannot be made here), or nothing.
std::string prove_then_expect_refused(const launcher& launch, const route& r) {
    std::string proof_log;
    bool proven = false, wrote = false;
    for (int run = 0; run < r.runs && !proven; ++run) {
        for (const auto& a : r.attempts) {
            const verdict v = launch.run(a, confinement::off);
            if (run == 0 && &a == &r.attempts.front() && v.kind == "UNAVAILABLE")
                return std::string("unavailable here, even unconfined (") + launch.name + "): " + v.detail;
            if (v.escaped()) {
                proven = true;
                wrote = contains(v.detail, "wrote");
                break;
            }
            if (run == 0) proof_log += v.output + "\n";
        }
    }
    if (!proven) {
        for (const auto& a : r.stand_ins) {
            const verdict v = launch.run(a, confinement::off);
            if (v.escaped()) {
                proven = true;
                testing::Test::RecordProperty("proof", std::string("stand-in: ") + v.detail);
                break;
            }
            proof_log += "stand-in: " + v.output + "\n";
        }
    }
    EXPECT_TRUE(proven) << "with confinement off the attempt did not escape, so a refusal would prove nothing ("
                        << launch.name << "):\n" << proof_log;
    if (r.target) {
        if (wrote) {
            EXPECT_NE(r.target->contents(), target_file::original) << "a write was reported but did not land";
        }
        r.target->reset();
    }

    for (int run = 0; run < r.runs; ++run) {
        for (const auto& a : r.attempts) {
            const verdict v = launch.run(a, confinement::on);
            EXPECT_TRUE(v.refused()) << launch.name << " with its default confinement: " << v.kind << " " << v.detail
                                     << "\n" << v.output;
            if (!v.refused()) return {};
        }
    }
    if (r.target) {
        EXPECT_EQ(r.target->contents(), target_file::original) << "the host file changed";
    }
    return {};
}

#define ESCAPE_ROUTE(route_function, launch)                                        \
    if (const std::string why = route_function(launch); !why.empty()) GTEST_SKIP() << why

const char* const needs_real_root = "needs real root: unprivileged, the kernel refuses this even unconfined";

// Where the helper is inside the sandbox.
std::string helper_in(bool rootfs) { return rootfs ? "/bin/escape" : scratch().helper; }

// ---- the routes ---------------------------------------------------------------

// 1. Root inside was root outside: / remounted read-write, then a host file
//    written through the read-only host view.
std::string remount_root(const launcher& launch, as who) {
    if (!scratch().problem.empty()) return scratch().problem;
    target_file target("remount-target");
    attempt a{.command = {helper_in(false), "remount-root", target.path}, .who = who};
    return prove_then_expect_refused(launch, {.attempts = {a}, .target = &target});
}

std::string remount_root_as_root(const launcher& launch) {
    if (!ctr_test::real_root) return "as root needs real root; the rootless case is its own test";
    return remount_root(launch, as::caller);
}

std::string remount_root_rootless(const launcher& launch) {
    if (!ctr_test::real_root) return remount_root(launch, as::caller);  // this suite is the rootless one
#ifdef CTR_RUN_BINARY
    if (launch.is_library) return "the library runs as this process; tests/run-rootless covers it rootless";
    if (unprivileged_ctr_run().empty()) return "needs the user ctrtest (see tests/run-rootless)";
    return remount_root(launch, as::unprivileged);
#else
    return "the library runs as this process; tests/run-rootless covers it rootless";
#endif
}

// 2. mknod of the host's disk on a tmpfs of the sandbox's own, mounted.
std::string mknod_and_mount(const launcher& launch) {
    if (!ctr_test::real_root) return needs_real_root;
    if (!scratch().problem.empty()) return scratch().problem;
    target_file target("mknod-target");
    const auto where = locate(target.path);
    if (!where || where->major_number == 0)
        return "the scratch directory is not on a block device here (" + (where ? where->fstype : "?") + ")";
    const std::string device = std::to_string(where->major_number) + ":" + std::to_string(where->minor_number);
    attempt a{.command = {helper_in(false), "mknod-mount", device, where->fstype, where->path_in_fs}};
    return prove_then_expect_refused(launch, {.attempts = {a}, .target = &target});
}

// 3. open_by_handle_at from a rootfs on the host's ext4 disk: inode 2 is the
//    real root, outside the rootfs.
std::string open_by_handle(const launcher& launch) {
    if (!ctr_test::real_root) return needs_real_root;
    if (!scratch().problem.empty()) return scratch().problem;
    if (busybox_rootfs().empty()) return "no busybox rootfs: is busybox-static installed? (tools/install-deps)";
    target_file target("handle-target");
    const auto where = locate(target.path);
    if (!where || (where->fstype != "ext4" && where->fstype != "ext3" && where->fstype != "ext2"))
        return "the handle for inode 2 is ext2/3/4's; /var/tmp is on " + (where ? where->fstype : std::string("?"));
    attempt a{.command = {"/bin/escape", "open-by-handle", "/", where->path_in_fs}, .rootfs = true};
    return prove_then_expect_refused(launch, {.attempts = {a}, .target = &target});
}

// 4. The init's inherited fds, raced from the start of the command: a
//    directory of the host's leads by ".." to a file outside the rootfs.
std::string init_fds(const launcher& launch) {
    if (!scratch().problem.empty()) return scratch().problem;
    if (busybox_rootfs().empty()) return "no busybox rootfs: is busybox-static installed? (tools/install-deps)";
    const std::string marker = scratch().path + "/marker";
    std::ofstream(marker) << "outside the rootfs\n";
    chmod(marker.c_str(), 0644);
    // The marker relative to the host's root: a climb by ".." from any
    // directory of the host's ends there (the root of this mount namespace).
    const std::string relative = marker.substr(1);
    attempt race{.command = {"/bin/escape", "init-fds", "50", relative}, .rootfs = true};
    // The stand-in: pid 1 is the helper itself, holding a host directory as
    // its stdin.
    const std::string outside = scratch().path + "/outside";
    fs::create_directories(outside);
    const int directory = open(outside.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    attempt leaky = race;
    leaky.command = {"/bin/escape", "init-fds", "1", relative};
    leaky.no_init = true;
    leaky.std_in = directory;
    auto why = prove_then_expect_refused(launch, {.attempts = {race}, .stand_ins = {leaky}, .runs = 20});
    close(directory);
    return why;
}

// The init's environment: a secret in the caller's environment must not be
// readable from /proc/1/environ.
std::string init_environ(const launcher& launch) {
    if (!scratch().problem.empty()) return scratch().problem;
    std::string secret = unique_text("ctr-escape-secret-");
    if (launch.is_library) {
        // The library's caller is this process: its own initial environment
        // (what /proc/self/environ shows) is what an unsealed init would
        // hold. Its longest entry stands for a secret.
        const std::string environ_text = read_file("/proc/self/environ");
        secret.clear();
        for (std::size_t at = 0; at < environ_text.size();) {
            const auto end = environ_text.find('\0', at);
            const std::string entry = environ_text.substr(at, end - at);
            if (entry.size() > secret.size()) secret = entry;
            if (end == std::string::npos) break;
            at = end + 1;
        }
        if (secret.size() < 8) return "this process's environment has no entry long enough to stand for a secret";
    }
    const std::vector<std::pair<std::string, std::string>> env = {{"CTR_ESCAPE_SECRET", secret}};
    // The secret is the helper's argument too, but only pid 1's environment
    // is read. The command may hold what it was given (ctr-run passes the
    // caller's environment on by default); the init may not, with
    // --clear-env as without (the issue saw it leak with --clear-env).
    attempt a{.command = {helper_in(false), "init-environ", secret}, .secret_env = env};
    attempt cleared = a;
    cleared.clear_env = true;
    attempt leaky = a;
    leaky.no_init = true;
    leaky.pass_secret_env = true;
    return prove_then_expect_refused(launch, {.attempts = {a, cleared}, .stand_ins = {leaky}});
}

// The init's argv: the caller's command line (here the helper's own
// arguments, which ctr-run was given) must not show in /proc/1/cmdline.
std::string init_cmdline(const launcher& launch) {
    if (!scratch().problem.empty()) return scratch().problem;
    std::string marker = unique_text("ctr-escape-argv-");
    if (launch.is_library) {
        // An unsealed init shows this process's own argv[0].
        const std::string cmdline = read_file("/proc/self/cmdline");
        marker = cmdline.substr(0, cmdline.find('\0'));
        if (marker.size() < 4) return "this process's argv[0] is too short to look for";
    }
    attempt a{.command = {helper_in(false), "init-cmdline", marker}};
    attempt leaky = a;
    leaky.no_init = true;
    return prove_then_expect_refused(launch, {.attempts = {a}, .stand_ins = {leaky}});
}

std::string init_exe(const launcher& launch) {
    if (!scratch().problem.empty()) return scratch().problem;
    attempt a{.command = {helper_in(false), "init-exe"}};
    attempt leaky = a;
    leaky.no_init = true;
    return prove_then_expect_refused(launch, {.attempts = {a}, .stand_ins = {leaky}});
}

// ptrace and /proc/1/mem: the stand-in's pid 1 is a shell that waits for
// the helper (the helper cannot trace itself).
std::string init_traced(const launcher& launch, const char* mode) {
    if (!scratch().problem.empty()) return scratch().problem;
    attempt a{.command = {helper_in(false), mode}};
    attempt leaky = a;
    leaky.command = {"/bin/sh", "-c", "'" + helper_in(false) + "' " + mode + "; true"};
    leaky.no_init = true;
    return prove_then_expect_refused(launch, {.attempts = {a}, .stand_ins = {leaky}});
}

std::string init_ptrace(const launcher& launch) { return init_traced(launch, "init-ptrace"); }
std::string init_mem(const launcher& launch) { return init_traced(launch, "init-mem"); }

// A root-owned setuid copy of the helper run as uid 1000: through the host
// view, and through a volume (which may keep setuid where the host view is
// nosuid: then no_new_privs and the user namespace must stop it).
std::string setuid_escalation(const launcher& launch) {
    if (!ctr_test::real_root) return "needs real root: a setuid-root file and -u 1000:1000";
    if (!scratch().problem.empty()) return scratch().problem;
    const std::string copy = scratch().path + "/escape-setuid";
    std::error_code ec;
    fs::copy_file(scratch().helper, copy, fs::copy_options::overwrite_existing, ec);
    if (ec) return "copying the helper: " + ec.message();
    struct remove_on_exit {
        std::string path;
        ~remove_on_exit() { unlink(path.c_str()); }
    } remover{copy};
    if (chown(copy.c_str(), 0, 0) != 0 || chmod(copy.c_str(), 04755) != 0) return "cannot make a setuid-root copy";
    attempt host_view{.command = {copy, "euid"}, .uid = 1000, .gid = 1000};
    attempt volume = host_view;
    volume.volume = scratch().path;
    return prove_then_expect_refused(launch, {.attempts = {host_view, volume}});
}

std::string plain_route(const launcher& launch, const char* mode, bool root_only) {
    if (root_only && !ctr_test::real_root) return needs_real_root;
    if (!scratch().problem.empty()) return scratch().problem;
    return prove_then_expect_refused(launch, {.attempts = {attempt{.command = {helper_in(false), mode}}}});
}

std::string bpf(const launcher& launch) { return plain_route(launch, "bpf", true); }
std::string perf(const launcher& launch) { return plain_route(launch, "perf", true); }
std::string userfaultfd(const launcher& launch) { return plain_route(launch, "userfaultfd", true); }
std::string set_clock(const launcher& launch) { return plain_route(launch, "set-clock", true); }
std::string proc_mount(const launcher& launch) { return plain_route(launch, "proc-mount", false); }
std::string new_namespaces(const launcher& launch) { return plain_route(launch, "new-namespaces", false); }
std::string x32(const launcher& launch) { return plain_route(launch, "x32", false); }
std::string int80(const launcher& launch) { return plain_route(launch, "int80", false); }

// ---- without namespaces: ctr-run's no-namespace mode ------------------------
//
// Where user namespaces are refused, ctr-run runs the command without any
// namespace, confined by Landlock, seccomp, no_new_privs and no
// capabilities (ctr-run/no_namespaces.hpp). The routes above that go
// through a mount or pid namespace do not exist there; these do. The proof
// is the same attempt made outside the sandbox: the helper run directly by
// this process (in a mount namespace of its own when it may make one, so
// that a mount attempt changes nothing of the host's). Confined is ctr-run
// where user namespaces are refused: by the host's own setting in the VM
// lane's boots that forbid them, elsewhere by an outer seccomp filter
// (tests/without_namespaces.hpp). Each target is this test's own: a file it
// made, a process it started, a socket it listens on.

#ifdef CTR_RUN_BINARY

verdict run_without_namespaces(const attempt& a, confinement c) {
    namespace p = ctr::process;
    std::string context = c == confinement::on ? "ctr-run without namespaces:" : "outside the sandbox:";
    p::options o{.std_in = p::stdio::null(), .std_out = p::stdio::capture(), .std_err = p::stdio::capture(),
                 .timeout = 60s};
    std::vector<std::string> args;
    if (c == confinement::on) {
        args = {ctr_run};
        if (a.uid) args.insert(args.end(), {"-u", std::to_string(*a.uid) + ":" + std::to_string(a.gid.value_or(0))});
        ctr_test::refuse_user_namespaces(o);
    } else {
        o.uid = a.uid;
        o.gid = a.gid;
        if (a.uid && ctr_test::real_root) o.groups = std::vector<gid_t>{};
        if (geteuid() == 0) o.namespaces = ctr::ns::mount;
        o.env.set = {{"TMPDIR", scratch().path}};
    }
    args.insert(args.end(), a.command.begin(), a.command.end());
    for (const auto& arg : args) context += " " + arg;
    try {
        const auto r = p::spawn(args, o).wait();
        context += "\n" + how_it_ended(r) + "\nstderr: " + r.std_err;
        auto v = parse(r.std_out, context);
        // A run that made namespaces after all would test the other mode.
        if (c == confinement::on && !contains(r.std_err, ctr_test::ran_without_namespaces))
            return {"ERROR", "ctr-run did not say that it runs without namespaces: " + r.std_err, context};
        if (v.kind == "ERROR" && c == confinement::on) v.detail = "ctr-run gave no verdict: " + r.std_err;
        return v;
    } catch (const ctr::error& e) {
        return {"ERROR", e.what(), context + "\n" + e.what()};
    }
}

const launcher without_namespaces{"ctr-run without namespaces", run_without_namespaces, false};

// Why the no-namespace mode cannot run here, or empty.
std::string no_namespace_mode_unavailable() {
    if (ctr::landlock::abi() == 0)
        return "this kernel has no Landlock (or it is disabled at boot): ctr-run refuses to run without namespaces";
    return scratch().problem;
}

// A process of this test's, as the user the confined command runs as (the
// caller, or nobody for real root), so that only the sandbox can stand
// between them. Killed and reaped with the handle.
ctr::process::child victim() {
    namespace p = ctr::process;
    p::options o{.std_in = p::stdio::null(), .timeout = 60s};
    if (ctr_test::real_root) {
        o.uid = 65534;
        o.gid = 65534;
        o.groups = std::vector<gid_t>{};
    }
    return p::spawn({"/bin/sleep", "60"}, o);
}

std::string write_outside(const launcher& launch) {
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    target_file target("no-namespace-write-target");
    attempt a{.command = {scratch().helper, "write-file", target.path}};
    return prove_then_expect_refused(launch, {.attempts = {a}, .target = &target});
}

std::string signal_outside(const launcher& launch) {
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    if (ctr::landlock::abi() < 6)
        return "Landlock ABI " + std::to_string(ctr::landlock::abi()) +
               " cannot scope signals (ABI 6, Linux 6.12): there the command may signal its user's processes, as "
               "docs/ctr-run.md says";
    auto target = victim();
    attempt a{.command = {scratch().helper, "signal", std::to_string(target.pid())}};
    return prove_then_expect_refused(launch, {.attempts = {a}});
}

std::string ptrace_outside(const launcher& launch) {
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    std::ifstream yama("/proc/sys/kernel/yama/ptrace_scope");
    std::string scope;
    if (geteuid() != 0 && std::getline(yama, scope) && scope != "0")
        return "Yama's ptrace_scope is " + scope +
               ": a process without CAP_SYS_PTRACE may trace only its descendants, so the proof cannot be made here";
    auto target = victim();
    attempt a{.command = {scratch().helper, "ptrace", std::to_string(target.pid())}};
    return prove_then_expect_refused(launch, {.attempts = {a}});
}

// A listening socket of this test's, closed with the object.
struct listener {
    int fd = -1;
    std::string problem;
    listener(int domain, const sockaddr* address, socklen_t length) {
        fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, address, length) != 0 || listen(fd, 16) != 0)
            problem = std::string("a listening socket: ") + std::strerror(errno);
    }
    ~listener() {
        if (fd >= 0) close(fd);
    }
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;
};

std::string abstract_socket_outside(const launcher& launch) {
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    if (ctr::landlock::abi() < 6)
        return "Landlock ABI " + std::to_string(ctr::landlock::abi()) +
               " cannot scope abstract unix sockets (ABI 6, Linux 6.12)";
    if (!ctr_test::private_network_namespace) return "needs the network namespace of the test main";
    const std::string name = unique_text("ctr-escape-abstract-");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name.data(), name.size());
    const listener server(AF_UNIX, reinterpret_cast<const sockaddr*>(&address),
                          static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size()));
    if (!server.problem.empty()) return server.problem;
    attempt a{.command = {scratch().helper, "abstract-connect", name}};
    return prove_then_expect_refused(launch, {.attempts = {a}});
}

std::string tcp_outside(const launcher& launch) {
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    if (ctr::landlock::abi() < 4)
        return "Landlock ABI " + std::to_string(ctr::landlock::abi()) + " has no TCP rules (ABI 4, Linux 6.7)";
    if (!ctr_test::private_network_namespace) return "needs the network namespace of the test main";
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const listener server(AF_INET, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    if (!server.problem.empty()) return server.problem;
    socklen_t length = sizeof address;
    if (getsockname(server.fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        return std::string("getsockname: ") + std::strerror(errno);
    attempt a{.command = {scratch().helper, "tcp-connect", std::to_string(ntohs(address.sin_port))}};
    return prove_then_expect_refused(launch, {.attempts = {a}});
}

// Without a mount namespace the host's files keep their setuid bits: only
// no_new_privs stops a setuid-root file.
std::string setuid_without_namespaces(const launcher& launch) {
    if (!ctr_test::real_root) return "needs real root: a setuid-root file and -u 1000:1000";
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    const std::string copy = scratch().path + "/escape-setuid-no-namespaces";
    std::error_code ec;
    fs::copy_file(scratch().helper, copy, fs::copy_options::overwrite_existing, ec);
    if (ec) return "copying the helper: " + ec.message();
    struct remove_on_exit {
        std::string path;
        ~remove_on_exit() { unlink(path.c_str()); }
    } remover{copy};
    if (chown(copy.c_str(), 0, 0) != 0 || chmod(copy.c_str(), 04755) != 0) return "cannot make a setuid-root copy";
    attempt a{.command = {copy, "euid"}, .uid = 1000, .gid = 1000};
    return prove_then_expect_refused(launch, {.attempts = {a}});
}

std::string keyring(const launcher& launch) {
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    return prove_then_expect_refused(launch, {.attempts = {attempt{.command = {scratch().helper, "keyring"}}}});
}

// The proofs of these need root (or root of the test's own user namespace):
// an unprivileged process may make neither mounts nor, where the host
// forbids user namespaces, any namespace.
std::string with_namespace_rights(const launcher& launch, const char* mode) {
    if (geteuid() != 0) return "the proof needs root, or the test's own user namespace (the rootless lane's)";
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    return prove_then_expect_refused(launch, {.attempts = {attempt{.command = {scratch().helper, mode}}}});
}

std::string mount_without_namespaces(const launcher& launch) { return with_namespace_rights(launch, "mount-tmpfs"); }
std::string namespaces_without_namespaces(const launcher& launch) {
    return with_namespace_rights(launch, "new-namespaces");
}

// The routes above that need no namespace of the sandbox's, through the
// no-namespace mode.
std::string plain_route_without_namespaces(const launcher& launch, std::string (*route)(const launcher&)) {
    if (auto why = no_namespace_mode_unavailable(); !why.empty()) return why;
    return route(launch);
}

#endif  // CTR_RUN_BINARY

}  // namespace

// ---- through ctr-run's defaults ------------------------------------------------

#ifdef CTR_RUN_BINARY

TEST(escape_ctr_run, root_cannot_remount_the_host_view_writable) {
    ESCAPE_ROUTE(remount_root_as_root, through_ctr_run);
}
TEST(escape_ctr_run, rootless_cannot_remount_the_host_view_writable) {
    ESCAPE_ROUTE(remount_root_rootless, through_ctr_run);
}
TEST(escape_ctr_run, root_cannot_mount_the_host_disk_through_mknod) { ESCAPE_ROUTE(mknod_and_mount, through_ctr_run); }
TEST(escape_ctr_run, open_by_handle_at_cannot_leave_the_rootfs) { ESCAPE_ROUTE(open_by_handle, through_ctr_run); }
TEST(escape_ctr_run, the_inits_fds_lead_nowhere_however_often_raced) { ESCAPE_ROUTE(init_fds, through_ctr_run); }
TEST(escape_ctr_run, the_inits_environment_holds_no_secret) { ESCAPE_ROUTE(init_environ, through_ctr_run); }
TEST(escape_ctr_run, the_inits_cmdline_holds_nothing_of_the_caller) { ESCAPE_ROUTE(init_cmdline, through_ctr_run); }
TEST(escape_ctr_run, the_inits_executable_cannot_be_reached) { ESCAPE_ROUTE(init_exe, through_ctr_run); }
TEST(escape_ctr_run, the_init_cannot_be_traced) { ESCAPE_ROUTE(init_ptrace, through_ctr_run); }
TEST(escape_ctr_run, the_inits_memory_cannot_be_opened) { ESCAPE_ROUTE(init_mem, through_ctr_run); }
TEST(escape_ctr_run, a_setuid_root_binary_gives_no_root) { ESCAPE_ROUTE(setuid_escalation, through_ctr_run); }
TEST(escape_ctr_run, bpf_kprobe_programs_do_not_load) { ESCAPE_ROUTE(bpf, through_ctr_run); }
TEST(escape_ctr_run, system_wide_perf_events_do_not_open) { ESCAPE_ROUTE(perf, through_ctr_run); }
TEST(escape_ctr_run, userfaultfd_is_refused) { ESCAPE_ROUTE(userfaultfd, through_ctr_run); }
TEST(escape_ctr_run, the_clock_cannot_be_set) { ESCAPE_ROUTE(set_clock, through_ctr_run); }
TEST(escape_ctr_run, a_fresh_proc_cannot_be_mounted) { ESCAPE_ROUTE(proc_mount, through_ctr_run); }
TEST(escape_ctr_run, no_new_namespaces_from_inside) { ESCAPE_ROUTE(new_namespaces, through_ctr_run); }
TEST(escape_ctr_run, x32_syscalls_are_refused) { ESCAPE_ROUTE(x32, through_ctr_run); }
TEST(escape_ctr_run, int80_syscalls_are_refused) { ESCAPE_ROUTE(int80, through_ctr_run); }

#endif  // CTR_RUN_BINARY

// ---- through the library's default confinement -----------------------------------

#ifdef CTR_ESCAPE_LIBRARY

TEST(escape_library, root_cannot_remount_the_host_view_writable) {
    ESCAPE_ROUTE(remount_root_as_root, through_library);
}
TEST(escape_library, rootless_cannot_remount_the_host_view_writable) {
    ESCAPE_ROUTE(remount_root_rootless, through_library);
}
TEST(escape_library, root_cannot_mount_the_host_disk_through_mknod) { ESCAPE_ROUTE(mknod_and_mount, through_library); }
TEST(escape_library, open_by_handle_at_cannot_leave_the_rootfs) { ESCAPE_ROUTE(open_by_handle, through_library); }
TEST(escape_library, the_inits_fds_lead_nowhere_however_often_raced) { ESCAPE_ROUTE(init_fds, through_library); }
TEST(escape_library, the_inits_environment_holds_no_secret) { ESCAPE_ROUTE(init_environ, through_library); }
TEST(escape_library, the_inits_cmdline_holds_nothing_of_the_caller) { ESCAPE_ROUTE(init_cmdline, through_library); }
TEST(escape_library, the_inits_executable_cannot_be_reached) { ESCAPE_ROUTE(init_exe, through_library); }
TEST(escape_library, the_init_cannot_be_traced) { ESCAPE_ROUTE(init_ptrace, through_library); }
TEST(escape_library, the_inits_memory_cannot_be_opened) { ESCAPE_ROUTE(init_mem, through_library); }
TEST(escape_library, a_setuid_root_binary_gives_no_root) { ESCAPE_ROUTE(setuid_escalation, through_library); }
TEST(escape_library, bpf_kprobe_programs_do_not_load) { ESCAPE_ROUTE(bpf, through_library); }
TEST(escape_library, system_wide_perf_events_do_not_open) { ESCAPE_ROUTE(perf, through_library); }
TEST(escape_library, userfaultfd_is_refused) { ESCAPE_ROUTE(userfaultfd, through_library); }
TEST(escape_library, the_clock_cannot_be_set) { ESCAPE_ROUTE(set_clock, through_library); }
TEST(escape_library, a_fresh_proc_cannot_be_mounted) { ESCAPE_ROUTE(proc_mount, through_library); }
TEST(escape_library, no_new_namespaces_from_inside) { ESCAPE_ROUTE(new_namespaces, through_library); }
TEST(escape_library, x32_syscalls_are_refused) { ESCAPE_ROUTE(x32, through_library); }
TEST(escape_library, int80_syscalls_are_refused) { ESCAPE_ROUTE(int80, through_library); }

#endif  // CTR_ESCAPE_LIBRARY

// ---- through ctr-run without namespaces ----------------------------------------

#ifdef CTR_RUN_BINARY

TEST(escape_without_namespaces, a_file_outside_the_volumes_cannot_be_written) {
    ESCAPE_ROUTE(write_outside, without_namespaces);
}
TEST(escape_without_namespaces, a_process_outside_cannot_be_signalled) {
    ESCAPE_ROUTE(signal_outside, without_namespaces);
}
TEST(escape_without_namespaces, a_process_outside_cannot_be_traced) { ESCAPE_ROUTE(ptrace_outside, without_namespaces); }
TEST(escape_without_namespaces, an_abstract_unix_socket_outside_cannot_be_reached) {
    ESCAPE_ROUTE(abstract_socket_outside, without_namespaces);
}
TEST(escape_without_namespaces, tcp_is_refused_with_network_none) { ESCAPE_ROUTE(tcp_outside, without_namespaces); }
TEST(escape_without_namespaces, a_setuid_root_binary_gives_no_root) {
    ESCAPE_ROUTE(setuid_without_namespaces, without_namespaces);
}
TEST(escape_without_namespaces, the_keyrings_are_refused) { ESCAPE_ROUTE(keyring, without_namespaces); }
TEST(escape_without_namespaces, nothing_can_be_mounted) { ESCAPE_ROUTE(mount_without_namespaces, without_namespaces); }
TEST(escape_without_namespaces, no_new_namespaces_from_inside) {
    ESCAPE_ROUTE(namespaces_without_namespaces, without_namespaces);
}
#define ESCAPE_ROUTE_WITHOUT_NAMESPACES(route)                                                        \
    if (const std::string why = plain_route_without_namespaces(without_namespaces, route); !why.empty()) \
    GTEST_SKIP() << why
TEST(escape_without_namespaces, bpf_kprobe_programs_do_not_load) { ESCAPE_ROUTE_WITHOUT_NAMESPACES(bpf); }
TEST(escape_without_namespaces, system_wide_perf_events_do_not_open) { ESCAPE_ROUTE_WITHOUT_NAMESPACES(perf); }
TEST(escape_without_namespaces, userfaultfd_is_refused) { ESCAPE_ROUTE_WITHOUT_NAMESPACES(userfaultfd); }
TEST(escape_without_namespaces, the_clock_cannot_be_set) { ESCAPE_ROUTE_WITHOUT_NAMESPACES(set_clock); }
TEST(escape_without_namespaces, x32_syscalls_are_refused) { ESCAPE_ROUTE_WITHOUT_NAMESPACES(x32); }
TEST(escape_without_namespaces, int80_syscalls_are_refused) { ESCAPE_ROUTE_WITHOUT_NAMESPACES(int80); }

#endif  // CTR_RUN_BINARY
