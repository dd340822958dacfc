// Mounts, guards and root-filesystem plans.
//
// Nothing here touches the machine's mount table: guards mount in the
// private namespace the test main entered, and plans run in a forked child
// that first enters a mount namespace of its own (run_in_sandbox), where the
// plan's pivot_root also happens. Most behaviours run three more times with
// parts of the kernel API made to answer ENOSYS through fault injection, so
// the mount(2) path, the remount fallback for mount_setattr and the
// component walk for openat2 give the same sandbox.
#include "support.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace mnt = ctr::mount;
using ctr::detail::sys::call;
using ctr::detail::sys::fault_injection;

#define SKIP_WITHOUT_MOUNT_NAMESPACE()                                                              \
    if (!ctr_test::private_mount_namespace)                                                        \
    GTEST_SKIP() << "the test main could not enter a private mount namespace (see its message)"

#define SKIP_WITHOUT_BUSYBOX()                                                                      \
    if (busybox_rootfs().empty())                                                                  \
    GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed? (tools/install-deps)"

namespace {

// A directory tree under /tmp, removed with everything in it.
struct scratch {
    fs::path path;
    scratch() {
        char pattern[] = "/tmp/ctr-mount-XXXXXX";
        path = mkdtemp(pattern);
    }
    ~scratch() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Every entry under `root` with what it holds, to compare layers byte for byte.
std::map<std::string, std::string> snapshot(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        const std::string name = fs::relative(entry.path(), root).string();
        if (entry.is_symlink()) out[name] = "-> " + fs::read_symlink(entry.path()).string();
        else if (entry.is_regular_file()) out[name] = "file " + read_file(entry.path().string());
        else if (entry.is_directory()) out[name] = "dir";
        else out[name] = "other";
    }
    return out;
}

// The busybox root filesystem, built once per test run by the script.
const std::string& busybox_rootfs() {
    static scratch dir;
    static const std::string path = [] {
        const std::string target = dir / "rootfs";
        const std::string command = "'" + ctr_test::make_rootfs + "' '" + target + "' >/dev/null 2>&1";
        return std::system(command.c_str()) == 0 ? target : std::string();
    }();
    return path;
}

std::vector<std::string> mount_table() {
    std::vector<std::string> lines;
    std::ifstream in("/proc/self/mountinfo");
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// ---- running a plan in a forked child -------------------------------------

struct failure_report {
    std::uint32_t index;
    std::int32_t error;
    std::uint16_t failed_step;
    char message[256];
};

struct sandbox_options {
    // A fresh proc needs a pid namespace that the mounting user namespace
    // owns: when the tests run rootless, only one of the child's own will do.
    bool new_pid_namespace = true;
    // sysfs and mqueue in a user namespace need a network and an IPC
    // namespace that it owns.
    bool new_net_and_ipc_namespaces = false;
    // Run every step but the last (pivot_root or chroot), so that `inside`
    // still sees the whole namespace: where the plan's mounts landed.
    bool stop_before_entry = false;
};

// The child's mount table before the plan ran, for `inside` to compare with.
std::vector<std::string> child_mounts_before_plan;

int sandbox_child(const mnt::prepared_plan& plan, const std::function<int(std::string&)>& inside,
                  const sandbox_options& options, int report_fd, int output_fd) {
    std::string out;
    const auto send = [&](int code) {
        if (!out.empty() && write(output_fd, out.data(), out.size()) < 0) return 95;
        return code;
    };
    const int flags = CLONE_NEWNS | (options.new_pid_namespace ? CLONE_NEWPID : 0) |
                      (options.new_net_and_ipc_namespaces ? CLONE_NEWNET | CLONE_NEWIPC : 0);
    if (unshare(flags) != 0) {
        out = std::string("unshare: ") + std::strerror(errno) + "\n";
        return send(90);
    }
    if (options.new_pid_namespace) {
        // The plan runs in a grandchild, pid 1 of the new pid namespace.
        const pid_t child = fork();
        if (child < 0) return 91;
        if (child > 0) {
            int status = 0;
            waitpid(child, &status, 0);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 92;
        }
    }
    child_mounts_before_plan = mount_table();
    char message[256] = {};
    ctr::detail::mount_context ctx{};
    ctx.message = message;
    ctx.message_size = sizeof message;
    std::size_t failed = 0;
    const auto steps = plan.steps();
    const std::size_t count = options.stop_before_entry ? steps.size() - 1 : steps.size();
    if (const long r = ctr::detail::run_mount_steps(steps.data(), count, ctx, failed); r < 0) {
        failure_report report{static_cast<std::uint32_t>(failed), static_cast<std::int32_t>(-r),
                              static_cast<std::uint16_t>(ctx.failed_step), {}};
        std::memcpy(report.message, message, sizeof report.message);
        if (write(report_fd, &report, sizeof report) < 0) return 96;
        return 93;
    }
    return send(inside(out));
}

std::string read_all(int fd) {
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    return text;
}

struct sandbox_result {
    int exit_code = -1;
    std::string output;
    std::map<std::string, std::string> fields;  // "key=value" lines of the output

    std::string operator[](const std::string& key) const {
        const auto it = fields.find(key);
        return it == fields.end() ? "<missing " + key + ">" : it->second;
    }
};

// Forks a child that enters a mount namespace and a pid namespace of its
// own (forking again so that the plan runs as that namespace's pid 1),
// runs `plan` and then `inside`, which writes "key=value" lines to its
// string and returns the exit code. A failing step comes back as the
// ctr::error the plan names for it, thrown here.
sandbox_result run_in_sandbox(const mnt::prepared_plan& plan, const std::function<int(std::string&)>& inside,
                              sandbox_options options = {}) {
    int report[2], output[2];
    if (pipe2(report, O_CLOEXEC) != 0 || pipe2(output, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    const pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        close(output[0]);
        _exit(sandbox_child(plan, inside, options, report[1], output[1]));
    }
    close(report[1]);
    close(output[1]);
    sandbox_result result;
    result.output = read_all(output[0]);
    const std::string failure = read_all(report[0]);
    close(output[0]);
    close(report[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (failure.size() == sizeof(failure_report)) {
        failure_report report{};
        std::memcpy(&report, failure.data(), sizeof report);
        ctr::detail::mount_context ctx{};
        ctx.failed_step = static_cast<ctr::step>(report.failed_step);
        report.message[sizeof report.message - 1] = '\0';
        ctx.message = report.message;
        ctx.message_size = sizeof report.message;
        throw plan.error_for(report.index, report.error, &ctx);
    }
    std::istringstream lines(result.output);
    for (std::string line; std::getline(lines, line);)
        if (const auto eq = line.find('='); eq != std::string::npos) result.fields[line.substr(0, eq)] = line.substr(eq + 1);
    return result;
}

// ---- what the child looks at -----------------------------------------------

// 0 if the file could be created (or opened), errno otherwise.
int create_errno(const std::string& path) {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}
int open_errno(const std::string& path, int flags) {
    const int fd = open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}
int exists_errno(const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0 ? 0 : errno;
}
std::string text(int error) { return std::to_string(error); }

// "ro" when the mount that `path` is on is read-only. (Writing tells less:
// rootless, a write to /proc/sys is refused with EACCES before EROFS.)
std::string mount_mode(const std::string& path) {
    struct statvfs st {};
    if (statvfs(path.c_str(), &st) != 0) return "error " + std::to_string(errno);
    return (st.f_flag & ST_RDONLY) ? "ro" : "rw";
}

// The names in a directory, sorted.
std::vector<std::string> list(const std::string& path) {
    std::vector<std::string> names;
    if (DIR* dir = opendir(path.c_str())) {
        while (dirent* entry = readdir(dir))
            if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) names.push_back(entry->d_name);
        closedir(dir);
    }
    std::sort(names.begin(), names.end());
    return names;
}

// Mounts made since child_mounts_before_plan whose parent chain does not
// pass through the new root: a mount that landed outside the rootfs.
// Run before the root is entered. Empty means none escaped.
std::string mounts_outside_new_root() {
    struct mount_line {
        std::string id, parent, point;
    };
    const auto parse = [](const std::vector<std::string>& lines) {
        std::map<std::string, mount_line> out;
        for (const auto& line : lines) {
            std::istringstream fields(line);
            mount_line m;
            std::string devices, root;
            fields >> m.id >> m.parent >> devices >> root >> m.point;
            out[m.id] = m;
        }
        return out;
    };
    const auto before = parse(child_mounts_before_plan);
    const auto now = parse(mount_table());
    // The new root: the mount at "/" stacked on a mount that was there before.
    std::string new_root;
    for (const auto& [id, m] : now)
        if (!before.count(id) && m.point == "/" && before.count(m.parent)) new_root = id;
    if (new_root.empty()) return "no new root found";
    std::string escaped;
    for (const auto& [id, m] : now) {
        if (before.count(id) || id == new_root) continue;
        std::string at = m.parent;
        int hops = 0;
        while (at != new_root && now.count(at) && !before.count(at) && hops++ < 100) at = now.at(at).parent;
        if (at != new_root) escaped += m.point + " ";
    }
    return escaped;
}

// ---- the kernel API the executor may use, or not ----------------------------

struct api_mode {
    const char* name;
    std::vector<call> missing;  // answer ENOSYS
};

void PrintTo(const api_mode& mode, std::ostream* out) { *out << mode.name; }

const api_mode api_modes[] = {
    {"native", {}},
    {"mount2_only", {call::open_tree, call::fsopen, call::fsconfig, call::fsmount, call::move_mount, call::mount_setattr}},
    {"no_mount_setattr", {call::mount_setattr}},
    {"no_openat2", {call::openat2}},
};

constexpr int fault_budget = 1'000'000;

// Arms the mode's faults for as long as it lives. Faults are plain memory,
// so a forked child inherits them.
struct api_faults {
    std::vector<std::unique_ptr<fault_injection>> armed;
    explicit api_faults(const api_mode& mode) {
        for (call c : mode.missing) armed.push_back(std::make_unique<fault_injection>(c, ENOSYS, 0, fault_budget));
    }
};

// How often each faulted call was refused in this process (the child's copy
// of the counters), as "refused_<n>" fields.
void report_refusals(const api_mode& mode, std::string& out) {
    for (call c : mode.missing) {
        const int left = ctr::detail::sys::fault_points[static_cast<unsigned>(c)].times.load();
        out += "refused_" + std::to_string(static_cast<unsigned>(c)) + "=" + std::to_string(fault_budget - left) + "\n";
    }
}

class mount_api : public testing::TestWithParam<api_mode> {
protected:
    void SetUp() override {
        if (!ctr_test::private_mount_namespace) GTEST_SKIP() << "no private mount namespace (see the test main's message)";
        if (busybox_rootfs().empty()) GTEST_SKIP() << "no busybox rootfs: is busybox-static installed?";
        faults_ = std::make_unique<api_faults>(GetParam());
    }
    void TearDown() override { faults_.reset(); }

    // The faulted calls the child was refused at least once: the new path
    // really was not taken. mount_setattr is only reached by a bind with
    // attributes and only when open_tree worked.
    void expect_fallbacks_used(const sandbox_result& r, bool binds_with_attributes = false) {
        const auto& mode = GetParam();
        for (call c : mode.missing) {
            const bool reached = c == call::open_tree || c == call::fsopen || c == call::openat2 ||
                                 (c == call::mount_setattr && binds_with_attributes && mode.missing.size() == 1);
            if (!reached) continue;
            const std::string key = "refused_" + std::to_string(static_cast<unsigned>(c));
            EXPECT_NE(r[key], "0") << key << " in " << mode.name << ": the fallback was never taken";
        }
    }

    std::unique_ptr<api_faults> faults_;
};

}  // namespace

// ---- behaviour, with and without the new mount API --------------------------

TEST_P(mount_api, read_only_recursive_bind_rejects_writes_on_top_and_submounts) {
    scratch dir;
    fs::create_directories(dir / "data/sub");
    write_file(dir / "data/top.txt", "top");
    // A submount inside the source, in the test's own namespace.
    auto sub = mnt::tmpfs(dir / "data/sub", {.size = "64k"});
    write_file(dir / "data/sub/inner.txt", "inner");

    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.bind(dir / "data", "/ro", {.read_only = true}).prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "top_write=" + text(create_errno("/ro/new.txt")) + "\n";
        out += "sub_write=" + text(create_errno("/ro/sub/new.txt")) + "\n";
        out += "sub_read=" + read_file("/ro/sub/inner.txt") + "\n";
        out += "top_read=" + read_file("/ro/top.txt") + "\n";
        report_refusals(GetParam(), out);
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["top_write"], text(EROFS));
    EXPECT_EQ(r["sub_write"], text(EROFS));
    EXPECT_EQ(r["sub_read"], "inner");
    EXPECT_EQ(r["top_read"], "top");
    expect_fallbacks_used(r, true);
    // Writable on the host side all along.
    EXPECT_EQ(create_errno(dir / "data/sub/host.txt"), 0);
}

TEST_P(mount_api, tmpfs_of_one_mebibyte_returns_enospc_past_its_size) {
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.tmpfs("/small", {.size = "1M"}).prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        const int fd = open("/small/fill", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return 1;
        std::string chunk(64 * 1024, 'x');
        long total = 0;
        int error = 0;
        for (int i = 0; i < 64 && error == 0; ++i) {
            const ssize_t n = write(fd, chunk.data(), chunk.size());
            if (n < 0) error = errno;
            else total += n;
        }
        close(fd);
        out += "error=" + text(error) + "\ntotal=" + std::to_string(total) + "\n";
        report_refusals(GetParam(), out);
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["error"], text(ENOSPC));
    EXPECT_LE(std::stol(r["total"]), 1L << 20);
    EXPECT_GE(std::stol(r["total"]), (1L << 20) - 128 * 1024);
    expect_fallbacks_used(r);
}

TEST_P(mount_api, overlay_writes_land_in_the_upper_layer_and_lower_layers_stay_as_they_were) {
    scratch dir;
    for (const char* d : {"lower1", "lower2", "lower3", "upper", "work"}) fs::create_directories(dir / d);
    write_file(dir / "lower1/shared", "from lower1");
    write_file(dir / "lower2/shared", "from lower2");
    write_file(dir / "lower2/two", "two");
    write_file(dir / "lower3/three", "three");
    fs::create_directories(dir / "lower3/nested");
    write_file(dir / "lower3/nested/deep", "deep");
    const auto lower_before = std::vector{snapshot(dir / "lower1"), snapshot(dir / "lower2"), snapshot(dir / "lower3")};

    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}
                          .overlay("/merged", {.lower = {dir / "lower1", dir / "lower2", dir / "lower3"},
                                               .upper = dir / "upper",
                                               .work = dir / "work"})
                          .prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "shared=" + read_file("/merged/shared") + "\n";
        out += "three=" + read_file("/merged/three") + "\n";
        write_file("/merged/two", "changed");
        write_file("/merged/nested/deep", "changed deep");
        write_file("/merged/new", "new");
        out += "unlink=" + text(unlink("/merged/three") == 0 ? 0 : errno) + "\n";
        report_refusals(GetParam(), out);
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["shared"], "from lower1");  // the uppermost lower layer wins
    EXPECT_EQ(r["three"], "three");
    EXPECT_EQ(r["unlink"], "0");
    expect_fallbacks_used(r);

    EXPECT_EQ(read_file(dir / "upper/two"), "changed");
    EXPECT_EQ(read_file(dir / "upper/nested/deep"), "changed deep");
    EXPECT_EQ(read_file(dir / "upper/new"), "new");
    struct stat whiteout {};
    ASSERT_EQ(lstat((dir / "upper/three").c_str(), &whiteout), 0) << "no whiteout for the deleted file";
    EXPECT_TRUE(S_ISCHR(whiteout.st_mode) && whiteout.st_rdev == makedev(0, 0));
    const auto lower_after = std::vector{snapshot(dir / "lower1"), snapshot(dir / "lower2"), snapshot(dir / "lower3")};
    EXPECT_EQ(lower_after, lower_before);
}

TEST_P(mount_api, dev_has_null_zero_and_a_pty_but_no_disks) {
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.proc().dev().prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        const int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        out += "null_write=" + text(null >= 0 && write(null, "x", 1) == 1 ? 0 : errno) + "\n";
        if (null >= 0) close(null);
        char zeros[4] = {1, 1, 1, 1};
        const int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        out += "zero_read=" + text(zero >= 0 && read(zero, zeros, 4) == 4 && zeros[3] == 0 ? 0 : EIO) + "\n";
        if (zero >= 0) close(zero);
        for (const char* disk : {"/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/mem", "/dev/kmsg", "/dev/port"})
            out += std::string("disk_") + (disk + 5) + "=" + text(exists_errno(disk)) + "\n";
        char link[64] = {};
        out += "fd_link=" + std::string(link, std::max<ssize_t>(0, readlink("/dev/fd", link, sizeof link))) + "\n";
        out += "stdout_link_ok=" + text(exists_errno("/dev/stdout")) + "\n";
        out += "ptmx=" + text(open_errno("/dev/ptmx", O_RDWR | O_NOCTTY)) + "\n";
        out += "shm_write=" + text(create_errno("/dev/shm/x")) + "\n";
        out += "dev_entries=" + std::to_string(list("/dev").size()) + "\n";
        report_refusals(GetParam(), out);
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["null_write"], "0");
    EXPECT_EQ(r["zero_read"], "0");
    for (const char* disk : {"sda", "vda", "nvme0n1", "mem", "kmsg", "port"})
        EXPECT_EQ(r[std::string("disk_") + disk], text(ENOENT)) << disk;
    EXPECT_EQ(r["fd_link"], "/proc/self/fd");
    EXPECT_EQ(r["stdout_link_ok"], "0");
    EXPECT_EQ(r["ptmx"], "0");
    EXPECT_EQ(r["shm_write"], "0");
    EXPECT_EQ(r["dev_entries"], "13");  // 6 nodes, 5 symlinks, pts, shm
    expect_fallbacks_used(r);
}

TEST_P(mount_api, masked_paths_read_empty_or_fail) {
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.proc().prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        // /proc/kcore exists on most kernels; masked, it reads as empty.
        if (exists_errno("/proc/kcore") == 0) {
            const int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
            char byte;
            out += "kcore_read=" + std::to_string(fd < 0 ? -1 : read(fd, &byte, 1)) + "\n";
            if (fd >= 0) close(fd);
        }
        if (exists_errno("/proc/acpi") == 0) out += "acpi_entries=" + std::to_string(list("/proc/acpi").size()) + "\n";
        out += "sys_write=" + text(open_errno("/proc/sys/kernel/hostname", O_WRONLY)) + "\n";
        out += "sys_mount=" + mount_mode("/proc/sys/kernel/hostname") + "\n";
        if (exists_errno("/proc/sysrq-trigger") == 0) {  // CONFIG_MAGIC_SYSRQ
            out += "sysrq_write=" + text(open_errno("/proc/sysrq-trigger", O_WRONLY)) + "\n";
            out += "sysrq_mount=" + mount_mode("/proc/sysrq-trigger") + "\n";
        }
        out += "acpi_create=" + text(exists_errno("/proc/acpi") == 0 ? create_errno("/proc/acpi/x") : EROFS) + "\n";
        report_refusals(GetParam(), out);
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    if (r.fields.count("kcore_read")) {
        EXPECT_EQ(r["kcore_read"], "0");
    }
    if (r.fields.count("acpi_entries")) {
        EXPECT_EQ(r["acpi_entries"], "0");
    }
    EXPECT_NE(r["sys_write"], "0");
    EXPECT_EQ(r["sys_mount"], "ro");
    if (r.fields.count("sysrq_write")) {
        EXPECT_NE(r["sysrq_write"], "0");
        EXPECT_EQ(r["sysrq_mount"], "ro");
    }
    EXPECT_EQ(r["acpi_create"], text(EROFS));
    expect_fallbacks_used(r, true);
}

// A rootfs whose symlinks aim at the host. Each target is tried in a plan of
// its own; each ends in an error or in a mount inside the rootfs, never on
// the host: checked from the child's namespace before it enters the root
// (every new mount hangs below the new root) and on the host afterwards
// (no file or directory appeared outside the rootfs).
TEST_P(mount_api, symlinks_in_the_rootfs_cannot_move_a_mount_outside_it) {
    scratch dir;
    const std::string root = dir / "rootfs";
    fs::create_directories(root + "/proc");
    fs::create_directories(root + "/nested");
    fs::create_directories(root + "/tmp");
    fs::create_symlink("/", root + "/etc");
    fs::create_symlink("/proc/self/root", root + "/x");
    fs::create_symlink("../..", root + "/up");
    fs::create_symlink("/tmp", root + "/hosttmp");
    fs::create_symlink("../../..", root + "/nested/link");
    // The last component itself, dangling: nothing is created through it.
    fs::create_symlink("/escape_final", root + "/final");

    struct attempt {
        std::string name;  // what it would create on the host if it escaped
        std::function<void(mnt::plan&)> add;
    };
    const std::vector<attempt> attempts = {
        {"escape_etc", [](mnt::plan& p) { p.tmpfs("/etc/escape_etc"); }},
        {"escape_x", [](mnt::plan& p) { p.tmpfs("/x/escape_x"); }},
        {"escape_up", [](mnt::plan& p) { p.tmpfs("/up/escape_up"); }},
        {"escape_dotdot", [](mnt::plan& p) { p.tmpfs("../../escape_dotdot"); }},
        {"escape_hosttmp", [](mnt::plan& p) { p.tmpfs("/hosttmp/escape_hosttmp"); }},
        {"escape_nested", [](mnt::plan& p) { p.tmpfs("/nested/link/escape_nested"); }},
        {"escape_final", [](mnt::plan& p) { p.tmpfs("/final"); }},
        {"escape_bind", [&](mnt::plan& p) { p.bind(busybox_rootfs() + "/etc", "/etc/escape_bind"); }},
        {"escape_file", [](mnt::plan& p) { p.bind("/dev/null", "/up/escape_file"); }},
        {"escape_link", [](mnt::plan& p) { p.symlink("/target", "/etc/escape_link"); }},
        {"escape_dir", [](mnt::plan& p) { p.directory("/up/escape_dir/deeper"); }},
        {"escape_proc_root", [](mnt::plan& p) { p.tmpfs("/proc/self/root/escape_proc_root"); }},
    };
    const auto host_candidates = [&](const std::string& name) {
        return std::vector<std::string>{"/" + name, "/tmp/" + name, (dir.path.parent_path() / name).string(),
                                        (dir.path / name).string(), (fs::current_path() / name).string()};
    };
    int inside_root = 0;
    for (const auto& a : attempts) {
        SCOPED_TRACE(a.name);
        mnt::plan p{.rootfs = root};
        p.proc("/proc", {.mask_defaults = false});  // makes /proc/self/root a magic link inside
        a.add(p);
        const auto prepared = p.prepare();
        std::string outcome;
        try {
            const auto r = run_in_sandbox(
                prepared,
                [&](std::string& out) {
                    out += "outside=" + mounts_outside_new_root() + "\n";
                    report_refusals(GetParam(), out);
                    return 0;
                },
                {.stop_before_entry = true});
            EXPECT_EQ(r.exit_code, 0) << r.output;
            EXPECT_EQ(r["outside"], "") << "a mount landed outside the new root";
            outcome = "mounted inside";
            ++inside_root;
        } catch (const ctr::error& e) {
            outcome = e.what();
        }
        // CTR_TEST_VERBOSE=1 lists what each attempt came to.
        if (std::getenv("CTR_TEST_VERBOSE")) std::fprintf(stderr, "  %s: %s\n", a.name.c_str(), outcome.c_str());
        for (const auto& path : host_candidates(a.name))
            EXPECT_FALSE(fs::exists(fs::symlink_status(path))) << path << " appeared on the host (" << outcome << ")";
    }
    EXPECT_GT(inside_root, 0);
    // What did land went inside the rootfs.
    EXPECT_TRUE(fs::exists(root + "/escape_etc"));
    EXPECT_TRUE(fs::exists(root + "/escape_up"));
    EXPECT_TRUE(fs::exists(root + "/escape_dotdot"));
    EXPECT_TRUE(fs::exists(root + "/tmp/escape_hosttmp"));
    EXPECT_TRUE(fs::exists(root + "/escape_nested"));
    EXPECT_TRUE(fs::is_symlink(root + "/escape_link"));
    EXPECT_TRUE(fs::is_directory(root + "/escape_dir/deeper"));
}

// The check above would see an escape: a mount made outside the new root
// (in the child's own namespace, on a directory of the test's scratch).
TEST(mount, the_escape_check_sees_a_mount_outside_the_new_root) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    fs::create_directories(dir / "outside");
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.tmpfs("/inside").prepare();
    const auto r = run_in_sandbox(
        plan,
        [&](std::string& out) {
            out += "before=" + mounts_outside_new_root() + "\n";
            const std::string target = dir / "outside";
            if (ctr::detail::sys::mount("tmpfs", target.c_str(), "tmpfs", 0, nullptr) != 0) return 1;
            out += "after=" + mounts_outside_new_root() + "\n";
            return 0;
        },
        {.stop_before_entry = true});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["before"], "");
    EXPECT_EQ(r["after"], dir / "outside" + " ");
}

TEST_P(mount_api, guards_leave_the_mount_table_as_it_was) {
    scratch dir;
    for (const char* d : {"src/sub", "bind", "tmp", "pts", "lower1", "lower2", "upper", "work", "ovl"})
        fs::create_directories(dir / d);
    write_file(dir / "src/file", "data");
    write_file(dir / "lower1/a", "a");
    const auto before = mount_table();
    {
        auto sub = mnt::tmpfs(dir / "src/sub");
        auto bind = mnt::bind(dir / "src", dir / "bind", {.read_only = true});
        EXPECT_EQ(read_file(dir / "bind/file"), "data");
        EXPECT_EQ(create_errno(dir / "bind/new"), EROFS);
        EXPECT_EQ(create_errno(dir / "bind/sub/new"), EROFS) << "the submount is not read-only";
        auto tmp = mnt::tmpfs(dir / "tmp", {.size = "1M", .mode = 0700});
        EXPECT_EQ(fs::status(dir / "tmp").permissions(), fs::perms::owner_all);
        auto pts = mnt::devpts(dir / "pts");
        EXPECT_TRUE(fs::exists(dir / "pts/ptmx"));
        auto overlay = mnt::overlay(dir / "ovl", {.lower = {dir / "lower1", dir / "lower2"},
                                                  .upper = dir / "upper", .work = dir / "work"});
        write_file(dir / "ovl/b", "b");
        EXPECT_EQ(read_file(dir / "upper/b"), "b");
        // Moved guards own the mount once.
        mnt::guard moved = std::move(tmp);
        EXPECT_FALSE(tmp.active());
        EXPECT_TRUE(moved.active());
        // Unmount explicitly, and out of creation order.
        pts.unmount();
        EXPECT_FALSE(pts.active());
        EXPECT_NE(mount_table(), before);
    }
    EXPECT_EQ(mount_table(), before);
    for (call c : GetParam().missing) {
        const bool reached = c == call::open_tree || c == call::fsopen ||
                             (c == call::mount_setattr && GetParam().missing.size() == 1);
        if (!reached) continue;
        EXPECT_LT(ctr::detail::sys::fault_points[static_cast<unsigned>(c)].times.load(), fault_budget)
            << "the fallback for call " << static_cast<unsigned>(c) << " was never taken";
    }
}

// missing_mount_points::make_in_skeleton: the mount points a read-only
// rootfs lacks are made in tmpfs skeletons of / and of /etc, never in the
// rootfs directory; everything the skeletons cover is still there as it was.
TEST_P(mount_api, missing_mount_points_go_in_a_skeleton_and_the_rootfs_stays_as_it_was) {
    scratch dir;
    fs::create_directories(dir / "root/etc/sub");
    fs::create_directories(dir / "root/bin");
    fs::create_directories(dir / "src");
    write_file(dir / "root/etc/motd", "kept");
    fs::create_symlink("motd", dir / "root/etc/link");
    write_file(dir / "root/bin/tool", "tool");
    write_file(dir / "src/in.txt", "volume");
    // A submount in the rootfs, below a skeleton: it comes along with its entry.
    auto sub = mnt::tmpfs(dir / "root/etc/sub", {.size = "64k"});
    write_file(dir / "root/etc/sub/inner", "inner");
    const auto before = snapshot(dir / "root");
    ASSERT_EQ(before.count("etc/sub/inner"), 1U);

    mnt::plan p{.rootfs = dir / "root", .read_only_root = true};
    p.missing_points = mnt::missing_mount_points::make_in_skeleton;
    p.bind(dir / "src", "/a/b/c").tmpfs("/etc/new/t", {.size = "64k"}).directory("/etc/made");
    const auto plan = p.prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "volume=" + read_file("/a/b/c/in.txt") + "\n";
        out += "tmpfs_write=" + text(create_errno("/etc/new/t/f")) + "\n";
        out += "made=" + text(exists_errno("/etc/made")) + "\n";
        out += "motd=" + read_file("/etc/motd") + "\n";
        char link[64] = {};
        out += "link=" + std::string(link, std::max<ssize_t>(0, readlink("/etc/link", link, sizeof link))) + "\n";
        out += "inner=" + read_file("/etc/sub/inner") + "\n";
        out += "tool=" + read_file("/bin/tool") + "\n";
        // Read-only as the root: each skeleton, the entries bound back, the submount.
        for (const char* path : {"/x", "/a/x", "/etc/x", "/etc/motd", "/bin/x", "/etc/sub/x"})
            out += std::string("write") + path + "=" + text(create_errno(path)) + "\n";
        out += "root_entries=" + std::to_string(list("/").size()) + "\n";
        out += "etc_entries=" + std::to_string(list("/etc").size()) + "\n";
        report_refusals(GetParam(), out);
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["volume"], "volume");
    EXPECT_EQ(r["tmpfs_write"], "0");
    EXPECT_EQ(r["made"], "0");
    EXPECT_EQ(r["motd"], "kept");
    EXPECT_EQ(r["link"], "motd");
    EXPECT_EQ(r["inner"], "inner");
    EXPECT_EQ(r["tool"], "tool");
    for (const char* path : {"/x", "/a/x", "/etc/x", "/etc/motd", "/bin/x", "/etc/sub/x"})
        EXPECT_EQ(r[std::string("write") + path], text(EROFS)) << path;
    EXPECT_EQ(r["root_entries"], "3");  // a, bin, etc
    EXPECT_EQ(r["etc_entries"], "5");   // link, made, motd, new, sub
    expect_fallbacks_used(r, true);
    // Nothing was made in the rootfs directory, and it could have been: the
    // same plan making its mount points in the root (writable) adds them.
    EXPECT_EQ(snapshot(dir / "root"), before);
    mnt::plan in_root{.rootfs = dir / "root"};
    in_root.bind(dir / "src", "/a/b/c");
    EXPECT_EQ(run_in_sandbox(in_root.prepare(), [](std::string&) { return 0; }).exit_code, 0);
    EXPECT_TRUE(fs::is_directory(dir / "root/a/b/c"));
}

INSTANTIATE_TEST_SUITE_P(mount, mount_api, testing::ValuesIn(api_modes),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- plans ------------------------------------------------------------------

TEST(mount, host_files_outside_the_binds_are_invisible) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    fs::create_directories(dir / "shared");
    write_file(dir / "shared/visible", "yes");
    write_file(dir / "secret", "no");
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.bind(dir / "shared", "/data").prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "visible=" + read_file("/data/visible") + "\n";
        out += "secret=" + text(exists_errno(dir / "secret")) + "\n";
        out += "secret_via_dotdot=" + text(exists_errno("/data/../secret")) + "\n";
        out += "helper=" + text(exists_errno(ctr_test::probe_helper)) + "\n";
        out += "host_os_release=" + text(exists_errno("/etc/os-release")) + "\n";
        out += "busybox=" + text(exists_errno("/bin/busybox")) + "\n";
        // The host's top-level directories (the shared busybox rootfs also
        // gains the mount points other tests created in it).
        for (const char* host : {"usr", "home", "var", "lib", "boot"}) out += std::string("host_") + host + "=" + text(exists_errno(std::string("/") + host)) + "\n";
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["visible"], "yes");
    EXPECT_EQ(r["secret"], text(ENOENT));
    EXPECT_EQ(r["secret_via_dotdot"], text(ENOENT));
    EXPECT_EQ(r["helper"], text(ENOENT));
    EXPECT_EQ(r["host_os_release"], text(ENOENT));
    EXPECT_EQ(r["busybox"], "0");
    for (const char* host : {"usr", "home", "var", "lib", "boot"}) EXPECT_EQ(r[std::string("host_") + host], text(ENOENT)) << host;
}

TEST(mount, busybox_rootfs_runs_its_shell_after_pivot_root) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.proc().dev().tmpfs("/tmp").prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        int pipe_fds[2];
        if (pipe(pipe_fds) != 0) return 1;
        const pid_t pid = fork();
        if (pid == 0) {
            dup2(pipe_fds[1], 1);
            execl("/bin/sh", "sh", "-c", "echo shell=$(cat /etc/passwd | head -1 | cut -d: -f1) && grep -c . /proc/self/mountinfo | sed s/^/mounts=/", static_cast<char*>(nullptr));
            _exit(127);
        }
        close(pipe_fds[1]);
        out += read_all(pipe_fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        out += "status=" + std::to_string(status) + "\n";
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["status"], "0") << r.output;
    EXPECT_EQ(r["shell"], "root");
    // The root, proc, its 14 masks and read-only paths (fewer when the host
    // lacks some), /dev's 10 mounts and /tmp: nothing of the host's.
    EXPECT_LE(std::stoi(r["mounts"]), 1 + 1 + 14 + 10 + 1) << r.output;
}

TEST_P(mount_api, default_plan_is_the_host_read_only_with_private_tmp_proc_and_dev) {
    scratch dir;  // under the host's /tmp: invisible in the sandbox's private /tmp
    write_file(dir / "host-file", "x");
    const auto plan = mnt::host_readonly().prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "root_write=" + text(create_errno("/ctr-should-not-exist")) + "\n";
        out += "usr_write=" + text(create_errno("/usr/ctr-should-not-exist")) + "\n";
        out += "host_tmp_file=" + text(exists_errno(dir / "host-file")) + "\n";
        out += "tmp_entries=" + std::to_string(list("/tmp").size()) + "\n";
        out += "tmp_write=" + text(create_errno("/tmp/ok")) + "\n";
        out += "host_usr=" + text(exists_errno("/usr/bin/env")) + "\n";
        out += "proc_self=" + text(exists_errno("/proc/self/status")) + "\n";
        out += "dev_null=" + text(open_errno("/dev/null", O_WRONLY)) + "\n";
        out += "dev_sda=" + text(exists_errno("/dev/sda")) + "\n";
        out += "sys_write=" + text(open_errno("/proc/sys/kernel/hostname", O_WRONLY)) + "\n";
        out += "sys_mount=" + mount_mode("/proc/sys") + "\n";
        // Every host mount under the root bind is read-only too.
        std::string writable;
        std::ifstream mountinfo("/proc/self/mountinfo");
        for (std::string line; std::getline(mountinfo, line);) {
            std::istringstream fields(line);
            std::string id, parent, devices, root, point, options;
            fields >> id >> parent >> devices >> root >> point >> options;
            const bool ours = point == "/tmp" || point.rfind("/dev", 0) == 0 || point.rfind("/proc", 0) == 0;
            if (!ours && options.rfind("ro", 0) != 0) writable += point + " ";
        }
        out += "writable_host_mounts=" + writable + "\n";
        report_refusals(GetParam(), out);
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["writable_host_mounts"], "");
    expect_fallbacks_used(r, true);
    EXPECT_EQ(r["root_write"], text(EROFS));
    EXPECT_EQ(r["usr_write"], text(EROFS));
    EXPECT_EQ(r["host_tmp_file"], text(ENOENT));
    EXPECT_EQ(r["tmp_entries"], "0");
    EXPECT_EQ(r["tmp_write"], "0");
    EXPECT_EQ(r["host_usr"], "0");  // the host's files, read-only
    EXPECT_EQ(r["proc_self"], "0");
    EXPECT_EQ(r["dev_null"], "0");
    EXPECT_EQ(r["dev_sda"], text(ENOENT));
    EXPECT_NE(r["sys_write"], "0");
    EXPECT_EQ(r["sys_mount"], "ro");
    EXPECT_FALSE(fs::exists("/tmp/ok"));
}

TEST(mount, the_default_plan_runs_the_probe_helper_from_the_host) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    // The build tree may be under /tmp, which is the sandbox's own: bind it.
    const std::string helper_dir = fs::path(ctr_test::probe_helper).parent_path().string();
    const auto plan = mnt::host_readonly().bind(helper_dir, helper_dir, {.read_only = true}).prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        int pipe_fds[2];
        if (pipe(pipe_fds) != 0) return 1;
        const pid_t pid = fork();
        if (pid == 0) {
            dup2(pipe_fds[1], 1);
            execl(ctr_test::probe_helper.c_str(), "probe_helper", "cwd", static_cast<char*>(nullptr));
            _exit(127);
        }
        close(pipe_fds[1]);
        out += "cwd=" + read_all(pipe_fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        out += "status=" + std::to_string(status) + "\n";
        return 0;
    });
    EXPECT_EQ(r["status"], "0") << r.output;
    EXPECT_EQ(r["cwd"], "/");  // pivot_root then chdir("/")
}

TEST(mount, fresh_proc_lists_only_the_sandboxes_processes) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.proc().prepare();
    const auto r = run_in_sandbox(
        plan,
        [&](std::string& out) {
            out += "pids=";
            for (const auto& name : list("/proc"))
                if (name.find_first_not_of("0123456789") == std::string::npos) out += name + " ";
            out += "\n";
            char self[16] = {};
            out += "self=" + std::string(self, std::max<ssize_t>(0, readlink("/proc/self", self, sizeof self))) + "\n";
            return 0;
        },
        {.new_pid_namespace = true});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["pids"], "1 ");
    EXPECT_EQ(r["self"], "1");
}

TEST(mount, sysfs_is_read_only_and_masked_and_mqueue_mounts) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.sysfs().dev().mqueue().prepare();
    const auto r = run_in_sandbox(
        plan,
        [&](std::string& out) {
            out += "sys_kernel=" + text(exists_errno("/sys/kernel")) + "\n";
            out += "sys_mount=" + mount_mode("/sys") + "\n";
            if (exists_errno("/sys/firmware") == 0)
                out += "firmware_entries=" + std::to_string(list("/sys/firmware").size()) + "\n";
            struct statfs st {};
            out += "mqueue_magic=" + std::to_string(statfs("/dev/mqueue", &st) == 0 ? st.f_type : 0) + "\n";
            return 0;
        },
        {.new_net_and_ipc_namespaces = true});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["sys_kernel"], "0");
    EXPECT_EQ(r["sys_mount"], "ro");
    if (r.fields.count("firmware_entries")) {
        EXPECT_EQ(r["firmware_entries"], "0");
    }
    EXPECT_EQ(r["mqueue_magic"], std::to_string(0x19800202));  // MQUEUE_MAGIC
}

// plan::filesystem hands its options to the kernel as they are and sets
// the attributes on the new mount: a devpts with a gid, a read-only tmpfs
// with strictatime and a mode.
TEST(mount, filesystem_passes_its_options_and_attributes) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    // gid 5 (tty) exists only where it is mapped: not in a rootless run's
    // user namespace of one id, where devpts refuses it.
    std::vector<std::string> devpts_options = {"newinstance", "ptmxmode=0666", "mode=0620"};
    if (ctr_test::real_root) devpts_options.push_back("gid=5");
    const auto plan =
        mnt::plan{.rootfs = busybox_rootfs()}
            .proc()
            .tmpfs("/dev")
            .filesystem("devpts", "", "/dev/pts", {.nosuid = true, .noexec = true, .data = devpts_options})
            .filesystem("tmpfs", "scratch", "/small",
                        {.read_only = true, .nodev = true, .atime = mnt::access_time::strict, .data = {"size=1m", "mode=700"}})
            .prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        std::ifstream mounts("/proc/self/mounts");
        for (std::string line; std::getline(mounts, line);) {
            std::istringstream fields(line);
            std::string source, target, type, options;
            fields >> source >> target >> type >> options;
            if (target == "/dev/pts" || target == "/small") out += target + "=" + source + " " + type + " " + options + "\n";
        }
        struct stat st {};
        out += "small_mode=" + std::to_string(stat("/small", &st) == 0 ? (st.st_mode & 07777) : 0) + "\n";
        out += "small_create=" + text(create_errno("/small/x")) + "\n";
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const std::string pts = r["/dev/pts"];
    EXPECT_EQ(pts.rfind("devpts devpts rw,nosuid,noexec,", 0), 0u) << pts;
    if (ctr_test::real_root) {
        EXPECT_NE(pts.find(",gid=5,"), std::string::npos) << pts;
    }
    EXPECT_NE(pts.find(",mode=620,ptmxmode=666"), std::string::npos) << pts;
    const std::string small = r["/small"];
    EXPECT_EQ(small.rfind("scratch tmpfs ro,nodev,", 0), 0u) << small;
    EXPECT_EQ(small.find("relatime"), std::string::npos) << small;  // strictatime shows as neither
    EXPECT_NE(small.find("size=1024k"), std::string::npos) << small;
    EXPECT_EQ(r["small_mode"], std::to_string(0700));
    EXPECT_EQ(r["small_create"], text(EROFS));
}

TEST(mount, filesystem_options_that_cannot_be_passed_are_refused_in_the_parent) {
    for (const std::string& option : std::vector<std::string>{"", "=1", "a,b", std::string("a\0b", 3)}) {
        try {
            (void)mnt::plan{.rootfs = "/"}.filesystem("tmpfs", "", "/x", {.data = {option}}).prepare();
            ADD_FAILURE() << "accepted '" << option << "'";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.code().value(), EINVAL);
            EXPECT_EQ(e.path(), "/x");
        }
    }
    EXPECT_THROW((void)mnt::plan{.rootfs = "/"}.filesystem("", "", "/x").prepare(), ctr::error);
    EXPECT_THROW((void)mnt::plan{.rootfs = "/"}.write("/x", std::string("a\0b", 3)).prepare(), ctr::error);
}

// plan::write puts text into a file of the new root, in the plan's order:
// after the file exists, before a read-only step over it.
TEST(mount, write_puts_text_in_an_existing_file_of_the_new_root) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}
                          .tmpfs("/w")
                          .file("/w/value")
                          .write("/w/value", "written by the plan\n")
                          .read_only("/w")
                          .prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        std::string value = read_file("/w/value");
        if (!value.empty() && value.back() == '\n') value.pop_back();
        out += "value=" + value + "\n";
        out += "create=" + text(create_errno("/w/value")) + "\n";
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["value"], "written by the plan");
    EXPECT_EQ(r["create"], text(EROFS));

    // A file that is not there is an error naming it; nothing is created.
    const auto missing = mnt::plan{.rootfs = busybox_rootfs()}.tmpfs("/w").write("/w/missing", "x").prepare();
    try {
        run_in_sandbox(missing, [](std::string&) { return 0; });
        ADD_FAILURE() << "no error";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.path(), "/w/missing");
    }
}

TEST(mount, proc_subset_and_hidepid_take_effect_where_the_kernel_has_them) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}
                          .proc("/proc", {.subset_pid = true, .hide = mnt::hide_pids::invisible})
                          .prepare();
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "self=" + text(exists_errno("/proc/self/status")) + "\n";
        out += "sys=" + text(exists_errno("/proc/sys")) + "\n";
        std::ifstream mountinfo("/proc/self/mountinfo");
        for (std::string line; std::getline(mountinfo, line);)
            if (line.find(" - proc ") != std::string::npos) out += "options=" + line.substr(line.rfind(' ') + 1) + "\n";
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r["self"], "0");
    if (r["options"].find("subset=pid") == std::string::npos)
        GTEST_SKIP() << "this kernel mounts proc without subset=pid (Linux 5.8+): " << r["options"];
    EXPECT_EQ(r["sys"], text(ENOENT));
    EXPECT_NE(r["options"].find("hidepid=invisible"), std::string::npos) << r["options"];
}

TEST_P(mount_api, an_overlay_of_layers_can_be_the_root) {
    scratch dir;
    for (const char* d : {"app", "upper", "work"}) fs::create_directories(dir / d);
    write_file(dir / "app/app.txt", "app layer");
    const auto base_before = snapshot(busybox_rootfs());
    const auto plan = mnt::plan{}
                          .overlay("/", {.lower = {dir / "app", busybox_rootfs()}, .upper = dir / "upper", .work = dir / "work"})
                          .proc()
                          .dev()
                          .prepare();
    EXPECT_EQ(plan.root(), "/");
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "app=" + read_file("/app.txt") + "\n";
        out += "busybox=" + text(exists_errno("/bin/busybox")) + "\n";
        out += "write=" + text(create_errno("/written-in-sandbox")) + "\n";
        out += "dev_null=" + text(open_errno("/dev/null", O_WRONLY)) + "\n";
        report_refusals(GetParam(), out);
        return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    expect_fallbacks_used(r);
    EXPECT_EQ(r["app"], "app layer");
    EXPECT_EQ(r["busybox"], "0");
    EXPECT_EQ(r["write"], "0");
    EXPECT_EQ(r["dev_null"], "0");
    EXPECT_TRUE(fs::exists(dir / "upper/written-in-sandbox"));
    EXPECT_EQ(snapshot(busybox_rootfs()), base_before);
}

TEST(mount, chroot_entry_is_there_by_name) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs(), .entry = mnt::root_entry::chroot_escapable}.prepare();
    EXPECT_EQ(plan.steps().back().kind, ctr::detail::mount_step_kind::change_root);
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "busybox=" + text(exists_errno("/bin/busybox")) + "\n";
        out += "host_file=" + text(exists_errno("/etc/os-release")) + "\n";
        return 0;
    });
    EXPECT_EQ(r["busybox"], "0");
    EXPECT_EQ(r["host_file"], text(ENOENT));
}

TEST(mount, slave_propagation_is_available_on_request) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs(), .propagation = mnt::propagation_mode::slave}.prepare();
    EXPECT_EQ(plan.steps().front().flags, ctr::detail::mount_abi::ms_slave);
    const auto r = run_in_sandbox(plan, [&](std::string& out) {
        out += "busybox=" + text(exists_errno("/bin/busybox")) + "\n";
        return 0;
    });
    EXPECT_EQ(r["busybox"], "0");
}

// ---- errors -----------------------------------------------------------------

TEST(mount, a_missing_bind_source_names_the_step_and_the_path) {
    try {
        (void)mnt::plan{}.bind("/nonexistent/ctr-source", "/data").prepare();
        FAIL() << "prepare succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::bind_mount);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.path(), "/nonexistent/ctr-source");
        EXPECT_NE(std::string(e.what()).find("bind mount '/nonexistent/ctr-source'"), std::string::npos) << e.what();
    }
    // Optional binds of a missing source are left out.
    EXPECT_EQ(mnt::plan{}.bind("/nonexistent/ctr-source", "/data", {.optional = true}).prepare().steps().size(), 3U);
}

TEST(mount, a_missing_overlay_layer_names_it) {
    scratch dir;
    fs::create_directories(dir / "lower");
    try {
        (void)mnt::plan{}.overlay("/merged", {.lower = {dir / "lower", dir / "missing-layer"}}).prepare();
        FAIL() << "prepare succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::mount);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.path(), dir / "missing-layer");
        EXPECT_NE(std::string(e.what()).find("overlay lower layer"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)mnt::plan{}.overlay("/m", {.lower = {dir / "lower"}}).prepare(), ctr::error)
        << "one lower layer and no upper";
    EXPECT_THROW((void)mnt::plan{}.overlay("/m", {.lower = {dir / "lower"}, .upper = dir / "lower"}).prepare(),
                 ctr::error)
        << "upper without work";
}

TEST(mount, a_plan_mounts_nothing_over_the_root_itself) {
    for (auto add : std::vector<std::function<void(mnt::plan&)>>{
             [](mnt::plan& p) { p.tmpfs("/"); }, [](mnt::plan& p) { p.bind("/tmp", "//"); },
             [](mnt::plan& p) { p.proc("/"); }, [](mnt::plan& p) { p.mask("/"); }}) {
        mnt::plan p;
        add(p);
        EXPECT_THROW((void)p.prepare(), ctr::error);
    }
    EXPECT_NO_THROW((void)mnt::plan{}.set_attributes("/", {.read_only = true, .recursive = false}).prepare());
}

TEST(mount, a_bad_tmpfs_size_fails_before_anything_runs) {
    try {
        (void)mnt::plan{}.tmpfs("/t", {.size = "lots"}).prepare();
        FAIL() << "prepare succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::mount);
        EXPECT_EQ(e.path(), "/t");
        EXPECT_NE(std::string(e.what()).find("lots"), std::string::npos) << e.what();
    }
    for (const char* good : {"1M", "512k", "4096", "10%", "2G"})
        EXPECT_NO_THROW((void)mnt::plan{}.tmpfs("/t", {.size = good}).prepare()) << good;
}

TEST(mount, a_child_side_failure_names_the_step_and_the_path) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    // A mount point to create in a read-only root.
    const auto plan =
        mnt::plan{.rootfs = busybox_rootfs(), .read_only_root = true}.tmpfs("/not-there/deeper").prepare();
    try {
        run_in_sandbox(plan, [](std::string&) { return 0; });
        FAIL() << "the plan ran";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::make_mount_point) << e.what();
        EXPECT_EQ(e.code().value(), EROFS);
        EXPECT_EQ(e.path(), "/not-there/deeper");
        EXPECT_NE(std::string(e.what()).find("make mount point '/not-there/deeper'"), std::string::npos) << e.what();
    }
    // A filesystem the kernel rejects: its own message comes back.
    scratch dir;
    for (const char* d : {"l1", "l2", "upper"}) fs::create_directories(dir / d);
    fs::create_directories(dir / "upper/work");
    const auto overlay =
        mnt::plan{.rootfs = busybox_rootfs()}
            .overlay("/m", {.lower = {dir / "l1", dir / "l2"}, .upper = dir / "upper", .work = dir / "upper/work"})
            .prepare();
    try {
        run_in_sandbox(overlay, [](std::string&) { return 0; });
        FAIL() << "an overlay whose work directory is inside its upper one was mounted";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::mount) << e.what();
        EXPECT_EQ(e.path(), "/m");
        EXPECT_NE(std::string(e.what()).find("overlay"), std::string::npos) << e.what();
    }
}

TEST(mount, the_plan_refuses_to_run_in_the_namespace_it_was_prepared_in) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.prepare();
    const auto before = mount_table();
    // Forked, but without a namespace of its own: the first step says no.
    const pid_t pid = fork();
    if (pid == 0) {
        ctr::detail::mount_context ctx{};
        std::size_t failed = 99;
        const long r = ctr::detail::run_plan_in_current_process(plan, ctx, failed);
        _exit(r == -EPERM && failed == 0 && ctx.failed_step == ctr::step::set_propagation ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(mount_table(), before);
    const auto e = plan.error_for(0, EPERM);
    EXPECT_NE(std::string(e.what()).find("new one"), std::string::npos) << e.what();
}

// ---- guards -------------------------------------------------------------------

TEST(mount, a_proc_guard_unmounts_cleanly) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    scratch dir;
    fs::create_directories(dir / "proc");
    const auto before = mount_table();
    try {
        auto proc = mnt::proc(dir / "proc", {.hide = mnt::hide_pids::invisible});
        EXPECT_TRUE(fs::exists(dir / "proc/self/status"));
    } catch (const ctr::error& e) {
        if (e.code().value() != EPERM) throw;
        // Rootless: this process's pid namespace is not its user namespace's.
        GTEST_SKIP() << e.what();
    }
    EXPECT_EQ(mount_table(), before);
}

TEST(mount, guard_release_keeps_the_mount) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    scratch dir;
    fs::create_directories(dir / "t");
    const auto before = mount_table();
    std::string target;
    {
        auto g = mnt::tmpfs(dir / "t");
        target = g.release();
        EXPECT_FALSE(g.active());
    }
    EXPECT_EQ(target, dir / "t");
    EXPECT_NE(mount_table(), before);
    // Adopted again, and unmounted lazily.
    mnt::guard::adopt(target, 0).unmount_lazily();
    EXPECT_EQ(mount_table(), before);
}

TEST(mount, guard_does_not_unmount_a_mount_stacked_on_its_own) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    scratch dir;
    fs::create_directories(dir / "t");
    const auto before = mount_table();
    {
        auto lower = mnt::tmpfs(dir / "t");
        auto upper = mnt::tmpfs(dir / "t");
        write_file(dir / "t/marker", "upper");
        try {
            lower.unmount();
            ADD_FAILURE() << "unmounted through a mount stacked on it";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::unmount);
            EXPECT_EQ(e.code().value(), EBUSY);
            EXPECT_NE(std::string(e.what()).find("covers"), std::string::npos) << e.what();
        }
        EXPECT_EQ(read_file(dir / "t/marker"), "upper");
    }  // upper ends first, then lower: the order of declaration
    EXPECT_EQ(mount_table(), before);
}

TEST(mount, guard_errors_name_the_step_and_the_path) {
    SKIP_WITHOUT_MOUNT_NAMESPACE();
    try {
        auto g = mnt::tmpfs("/nonexistent/ctr-target");
        FAIL() << "mounted";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::resolve_path);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.path(), "/nonexistent/ctr-target");
    }
    scratch dir;
    fs::create_directories(dir / "t");
    try {
        auto g = mnt::bind(dir / "missing", dir / "t");
        FAIL() << "mounted";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::bind_mount);
        EXPECT_EQ(e.path(), dir / "missing");
    }
}

TEST(mount, plan_steps_come_in_the_documented_order) {
    SKIP_WITHOUT_BUSYBOX();
    const auto plan = mnt::plan{.rootfs = busybox_rootfs()}.tmpfs("/tmp").proc().prepare();
    using kind = ctr::detail::mount_step_kind;
    const auto steps = plan.steps();
    ASSERT_GE(steps.size(), 6U);
    EXPECT_EQ(steps[0].kind, kind::set_propagation);
    EXPECT_EQ(steps[1].kind, kind::bind);
    EXPECT_EQ(steps[1].target, nullptr);  // the new root
    EXPECT_STREQ(steps[2].fs_type, "tmpfs");
    EXPECT_STREQ(steps[3].fs_type, "proc");
    for (std::size_t i = 4; i + 1 < steps.size(); ++i)
        EXPECT_TRUE(steps[i].kind == kind::mask || steps[i].kind == kind::read_only) << i;
    EXPECT_EQ(steps.back().kind, kind::pivot_root);
    EXPECT_EQ(plan.root(), fs::canonical(busybox_rootfs()).string());
}

// A plan's requests are held by a small type-erased holder (not a
// std::variant, for the includers' compile time): copies are deep, a move
// empties its source, and each request keeps its kind and fields.
TEST(mount, a_plans_copies_and_moves_keep_every_request) {
    mnt::plan original = mnt::plan{}.bind("/src", "/dst", {.read_only = true}).tmpfs("/tmp").symlink("x", "/y");
    mnt::plan copy = original;
    ASSERT_EQ(copy.requests.size(), 3u);
    const auto* bind = copy.requests[0].get_if<mnt::detail::bind_request>();
    ASSERT_NE(bind, nullptr);
    EXPECT_EQ(bind->source, "/src");
    EXPECT_TRUE(bind->options.read_only);
    EXPECT_EQ(copy.requests[0].get_if<mnt::detail::tmpfs_request>(), nullptr) << "a bind is no tmpfs";
    EXPECT_NE(bind, original.requests[0].get_if<mnt::detail::bind_request>()) << "a copy is deep";
    // The copy is independent of the original.
    original.requests[0].get_if<mnt::detail::bind_request>()->source = "/changed";
    EXPECT_EQ(copy.requests[0].get_if<mnt::detail::bind_request>()->source, "/src");

    mnt::plan moved = std::move(copy);
    ASSERT_EQ(moved.requests.size(), 3u);
    EXPECT_EQ(moved.requests[2].get_if<mnt::detail::symlink_request>()->text, "x");
    // One request moved out of: empty, and its copy is empty too.
    mnt::detail::mount_request taken = std::move(moved.requests[1]);
    EXPECT_EQ(taken.get_if<mnt::detail::tmpfs_request>()->target, "/tmp");
    EXPECT_EQ(moved.requests[1].get_if<mnt::detail::tmpfs_request>(), nullptr);
    const mnt::detail::mount_request copy_of_empty = moved.requests[1];
    EXPECT_EQ(copy_of_empty.get_if<mnt::detail::tmpfs_request>(), nullptr);
    // Assignment both ways, and to itself.
    moved.requests[1] = taken;
    EXPECT_EQ(moved.requests[1].get_if<mnt::detail::tmpfs_request>()->target, "/tmp");
    moved.requests[0] = std::move(moved.requests[2]);
    EXPECT_EQ(moved.requests[0].get_if<mnt::detail::symlink_request>()->target, "/y");
    auto& self = moved.requests[1];
    moved.requests[1] = self;
    EXPECT_EQ(moved.requests[1].get_if<mnt::detail::tmpfs_request>()->target, "/tmp");
    // Every kind visits as itself.
    std::vector<mnt::detail::request_kind> kinds;
    for (const auto& r : original.requests)
        kinds.push_back(mnt::detail::visit_request<mnt::detail::request_kind>(
            [](const auto& typed) {
                return mnt::detail::kind_of_request<std::remove_cvref_t<decltype(typed)>>;
            },
            r));
    EXPECT_EQ(kinds, (std::vector{mnt::detail::request_kind::bind, mnt::detail::request_kind::tmpfs,
                                  mnt::detail::request_kind::symlink}));
}
