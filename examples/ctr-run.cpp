// ctr-run: a small container runtime built only on ctr's public API.
//
//   ctr-run [OPTIONS] [--] COMMAND [ARG...]
//
// Flags follow Docker's and Podman's names. `ctr-run --help` documents them,
// docs/ctr-run.md walks through examples. The whole runtime is this file
// and ctr-run/flags.hpp (the command line):
// parse the flags into a process::options (namespaces, a mount plan, a
// cgroup), spawn, relay a terminal when there is one, and turn the result
// into an exit status.
//
// example-args: --hostname box /bin/sh -c "hostname && echo pid $$ && cat /proc/1/comm"
// expect-output: box
// expect-output: pid 2
#include <ctr/ctr.hpp>

#include "ctr-run/flags.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

namespace {

using namespace std::chrono_literals;

// Exit statuses, as Docker and Podman use them (and `timeout` for 124).
constexpr int exit_timed_out = 124;
constexpr int exit_runtime_failed = 125;
constexpr int exit_cannot_execute = 126;
constexpr int exit_not_found = 127;

// The flags, their values and the usage text: ctr-run/flags.hpp.
using namespace ctr_run;

std::string format_bytes(std::uint64_t bytes) {
    const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        ++unit;
    }
    std::ostringstream out;
    if (unit == 0 || value == std::floor(value)) out << static_cast<std::uint64_t>(value) << ' ' << units[unit];
    else out << std::fixed << std::setprecision(1) << value << ' ' << units[unit];
    return out.str();
}

// ---- the sandbox -----------------------------------------------------------

// "<pid>.<start time>" of a process (the 22nd field of /proc/<pid>/stat), or
// nothing once it is gone or a zombie. A pid alone could name a later process.
std::optional<std::string> process_tag(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(close + 2));
    std::string field, state, start;
    fields >> state;
    for (int i = 4; i <= 22 && fields >> field; ++i)
        if (i == 22) start = field;
    if (start.empty() || state == "Z" || state == "X") return std::nullopt;
    return std::to_string(pid) + "." + start;
}

constexpr std::string_view scratch_prefix = "ctr-run-overlay.";

// Removes a scratch directory. Rootless, the files in it may belong to ids
// that only a user namespace maps, so the removal runs as root of one.
void remove_scratch(const std::string& dir, bool in_user_namespace) {
    std::error_code ec;
    if (geteuid() == 0 && !in_user_namespace) {
        std::filesystem::remove_all(dir, ec);
        return;
    }
    try {
        (void)ctr::process::spawn({"/bin/rm", "-rf", dir},
                                  {.std_in = ctr::process::stdio::null(), .namespaces = ctr::ns::user})
            .wait();
    } catch (const ctr::error&) {
    }
    std::filesystem::remove_all(dir, ec);  // what is left, if anything
}

// The writable top layer of --overlay: upper and work directories on a tmpfs
// (/dev/shm where it is one), removed at exit. Its name carries this
// process's tag, so that a later run removes the layer of a ctr-run that was
// killed before it could (reap_stale_scratch).
class scratch_layer {
public:
    static std::string base_directory() {
        struct statfs fs {};
        if (statfs("/dev/shm", &fs) == 0 && static_cast<unsigned long>(fs.f_type) == TMPFS_MAGIC &&
            access("/dev/shm", W_OK) == 0)
            return "/dev/shm";
        if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) return tmp;
        return "/tmp";
    }

    // Removes the layers whose ctr-run is gone. Best effort: what this user
    // may not remove stays for one that may.
    static void reap_stale_scratch(bool in_user_namespace) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(base_directory(), ec)) {
            const std::string name = entry.path().filename().string();
            if (!name.starts_with(scratch_prefix)) continue;
            const std::string rest = name.substr(scratch_prefix.size());
            const auto dot = rest.find('.');
            const auto second = dot == std::string::npos ? dot : rest.find('.', dot + 1);
            if (second == std::string::npos) continue;
            const std::string tag = rest.substr(0, second);
            pid_t pid = 0;
            if (std::from_chars(tag.data(), tag.data() + dot, pid).ec != std::errc{} || pid <= 0) continue;
            if (process_tag(pid) == tag) continue;  // its ctr-run still runs
            struct stat st {};
            // Root's layers belong to the id root inside maps to; anyone
            // else removes only its own.
            if (lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || (geteuid() != 0 && st.st_uid != geteuid()))
                continue;
            remove_scratch(entry.path().string(), in_user_namespace);
        }
    }

    scratch_layer() {
        const std::string base = base_directory();
        std::string pattern = base + "/" + std::string(scratch_prefix) + process_tag(getpid()).value_or("0.0") + ".XXXXXX";
        if (!mkdtemp(pattern.data())) throw ctr::error(ctr::step::prepare, errno, pattern, "overlay scratch directory");
        dir_ = pattern;
        for (const char* sub : {"/upper", "/work"})
            if (mkdir((dir_ + sub).c_str(), 0755) != 0)
                throw ctr::error(ctr::step::prepare, errno, dir_ + sub, "overlay scratch directory");
    }
    scratch_layer(const scratch_layer&) = delete;
    scratch_layer& operator=(const scratch_layer&) = delete;
    ~scratch_layer() {
        if (!dir_.empty()) remove_scratch(dir_, in_user_namespace_);
    }

    void give_to(std::pair<uid_t, gid_t> owner) const {
        for (const char* sub : {"", "/upper", "/work"})
            if (chown((dir_ + sub).c_str(), owner.first, owner.second) != 0)
                throw ctr::error(ctr::step::prepare, errno, dir_ + sub, "overlay scratch directory (chown)");
    }
    std::string upper() const { return dir_ + "/upper"; }
    std::string work() const { return dir_ + "/work"; }
    void removed_in_user_namespace() { in_user_namespace_ = true; }

private:
    std::string dir_;
    bool in_user_namespace_ = false;
};

// The host ids that uid and gid 0 inside map to.
std::pair<uid_t, gid_t> mapped_root(const ctr::ns::id_maps& wanted) {
    const auto maps = ctr::ns::detail::resolve_id_maps(wanted);
    const auto outside = [](const std::vector<ctr::ns::id_range>& ranges) {
        for (const auto& r : ranges)
            if (r.inside == 0) return r.outside;
        return std::uint32_t{0};
    };
    return {outside(maps.uid), outside(maps.gid)};
}

// Root gets a user namespace of its own unless --userns host; a caller that
// is not root always has one.
bool root_in_user_namespace(const config& c) { return geteuid() == 0 && !c.userns_host && !c.rootless; }
// Idmapping a host filesystem needs CAP_SYS_ADMIN over it: root of the
// initial user namespace. Root of another one (a rootless outer sandbox)
// maps its own ids into the sandbox, so files keep their owners without it.
bool in_initial_user_namespace() {
    std::ifstream map("/proc/self/uid_map");
    std::string first_line;
    std::getline(map, first_line);
    return first_line.find("4294967295") != std::string::npos;
}
// Where the filesystem cannot idmap (tmpfs before Linux 6.3), the bind is
// plain: root-owned files show as nobody and stay unchanged by the
// sandbox's root (docs/ctr-run.md).
ctr::mount::idmapping binds_idmapping(const config& c) {
    return root_in_user_namespace(c) && in_initial_user_namespace() ? ctr::mount::idmapping::when_supported
                                                                     : ctr::mount::idmapping::none;
}

// What the command may still do: Podman's default capabilities with
// --cap-add/--cap-drop applied, no_new_privs and the default seccomp
// profile, unless --privileged or the --security-opt switches say otherwise.
ctr::security confinement(const config& c) {
    if (c.privileged) return ctr::security::unconfined();
    ctr::caps::set keep = ctr::caps::default_set();
    for (const auto& name : c.cap_drop) keep = name == "ALL" ? ctr::caps::set::none() : keep - ctr::caps::set{ctr::caps::parse(name)};
    for (const auto& name : c.cap_add) keep = name == "ALL" ? ctr::caps::set::all() : keep | ctr::caps::set{ctr::caps::parse(name)};
    return {.capabilities = ctr::caps::policy{.keep = keep & ctr::caps::supported()},
            .no_new_privileges = c.no_new_privileges,
            .seccomp = c.seccomp ? ctr::seccomp::default_profile() : nullptr};
}

ctr::mount::plan filesystem_plan(const config& c, scratch_layer* scratch) {
    namespace mnt = ctr::mount;
    mnt::plan plan;
    if (!c.overlay.empty()) {
        std::vector<std::string> lower = c.overlay;
        if (c.rootfs) lower.push_back(*c.rootfs);
        plan.overlay("/", {.lower = lower, .upper = scratch->upper(), .work = scratch->work(),
                           .idmap_lower = binds_idmapping(c)});
        plan.proc().dev();
    } else if (c.rootfs) {
        plan = mnt::plan{.rootfs = *c.rootfs, .read_only_root = c.read_only};
        plan.proc().dev();
    } else {
        plan = mnt::host_readonly();
    }
    // In a user namespace of root's making, the rootfs and volumes are
    // idmapped: files keep the owners they have on disk as the sandbox sees
    // them, and what its root writes belongs to root on the host (Docker's
    // ownership). The host's own root stays unmapped: its root-only files
    // stay unreadable inside.
    const auto idmap = binds_idmapping(c);
    if (c.rootfs && c.overlay.empty()) plan.idmap_root = idmap;
    for (const auto& v : c.volumes) plan.bind(v.source, v.target, {.read_only = v.read_only, .idmap = idmap});
    for (const auto& t : c.tmpfs) plan.tmpfs(t.target, t.options);
    return plan;
}

std::optional<ctr::cgroup::group> make_group(const config& c) {
    // As Docker: below the floor the command could not even be set up.
    if (c.memory && *c.memory < ctr::cgroup::minimum_memory_max)
        bad_value("--memory", "'" + format_bytes(*c.memory) + "' is below the minimum of " +
                                  format_bytes(ctr::cgroup::minimum_memory_max) +
                                  ": a smaller limit cannot start a process (Docker refuses the same)");
    ctr::cgroup::limits limits;
    if (c.memory) limits.memory_max = std::to_string(*c.memory);
    if (c.memory_swap) {
        if (*c.memory_swap == "-1") {
            limits.swap_max = "max";
        } else {
            const std::uint64_t total = parse_size("--memory-swap", *c.memory_swap);
            if (total < *c.memory) bad_value("--memory-swap", "must be at least --memory (it is memory plus swap)");
            limits.swap_max = std::to_string(total - *c.memory);
        }
    }
    limits.cpus = c.cpus;
    limits.pids_max = c.pids_limit;
    limits.cpuset_cpus = c.cpuset_cpus;
    const bool wants_limits = c.memory || c.cpus || c.pids_limit || c.cpuset_cpus;
    // A ctr-run that was SIGKILLed could not remove its group; its creator
    // pid is dead, so this removes it now. Best effort: a caller without
    // cgroup rights finds nothing to do or is told below.
    try {
        ctr::cgroup::reap_stale("ctr-run");
    } catch (const ctr::error&) {
    }
    try {
        return std::optional<ctr::cgroup::group>(std::in_place, ctr::cgroup::options{.prefix = "ctr-run", .limits = limits});
    } catch (const ctr::error&) {
        // Without limits the group is only for the figures (peak memory,
        // OOM kills); a rootless caller often may not make one.
        if (wants_limits) throw;
        return std::nullopt;
    }
}

// ---- signals and the terminal -----------------------------------------------

// The handlers run on the only thread, between two steps of main's: a signal
// that comes before the pidfd is known waits in `pending_signals` until
// start_forwarding() sends it.
std::atomic<int> child_pidfd{-1};
std::atomic<std::uint64_t> pending_signals{0};
int winch_pipe[2] = {-1, -1};

extern "C" void forward_signal(int sig) {
    const int saved = errno;
    if (const int fd = child_pidfd.load(); fd >= 0) syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
    else pending_signals.fetch_or(std::uint64_t{1} << sig);
    errno = saved;
}

void start_forwarding(int pidfd) {
    child_pidfd = pidfd;
    const std::uint64_t pending = pending_signals.exchange(0);
    for (int sig = 1; sig < 64; ++sig)
        if (pending & (std::uint64_t{1} << sig)) syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
}

extern "C" void note_window_change(int) {
    const int saved = errno;
    const char byte = 0;
    if (winch_pipe[1] >= 0) {
        [[maybe_unused]] const ssize_t n = write(winch_pipe[1], &byte, 1);
    }
    errno = saved;
}

void install_signal_forwarding() {
    struct sigaction action {};
    action.sa_handler = forward_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaction(sig, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

// The caller's terminal in raw mode until this ends.
class raw_terminal {
public:
    explicit raw_terminal(int fd) : fd_(fd) {
        if (tcgetattr(fd_, &saved_) != 0) return;
        termios raw = saved_;
        cfmakeraw(&raw);
        active_ = tcsetattr(fd_, TCSADRAIN, &raw) == 0;
    }
    raw_terminal(const raw_terminal&) = delete;
    raw_terminal& operator=(const raw_terminal&) = delete;
    ~raw_terminal() {
        if (active_) tcsetattr(fd_, TCSADRAIN, &saved_);
    }

private:
    int fd_;
    termios saved_{};
    bool active_ = false;
};

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            poll(&p, 1, 100);
            continue;
        }
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

void copy_window_size(int from, int to) {
    winsize size{};
    if (ioctl(from, TIOCGWINSZ, &size) == 0) ioctl(to, TIOCSWINSZ, &size);
}

// Relays the caller's terminal and the pty until the command ends.
ctr::process::result relay(ctr::process::child& child, int master) {
    if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
        struct sigaction action {};
        action.sa_handler = note_window_change;
        action.sa_flags = SA_RESTART;
        sigemptyset(&action.sa_mask);
        sigaction(SIGWINCH, &action, nullptr);
    }
    raw_terminal raw(STDIN_FILENO);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    bool input_open = true, output_open = true;
    char buffer[16384];
    for (;;) {
        // wait_for also enforces the timeout; it is cheap when nothing is due.
        if (auto r = child.wait_for(0ms)) {
            // Whatever the command wrote before it ended.
            while (output_open) {
                const ssize_t n = read(master, buffer, sizeof buffer);
                if (n <= 0) break;
                write_all(STDOUT_FILENO, buffer, static_cast<std::size_t>(n));
            }
            return *r;
        }
        pollfd fds[4] = {{child.pidfd(), POLLIN, 0},
                         {input_open ? STDIN_FILENO : -1, POLLIN, 0},
                         {output_open ? master : -1, POLLIN, 0},
                         {winch_pipe[0], POLLIN, 0}};
        if (poll(fds, 4, 100) < 0 && errno != EINTR) break;
        if (fds[1].revents) {
            const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
            if (n > 0) write_all(master, buffer, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EINTR) input_open = false;
        }
        if (fds[2].revents) {
            const ssize_t n = read(master, buffer, sizeof buffer);
            if (n > 0) write_all(STDOUT_FILENO, buffer, static_cast<std::size_t>(n));
            else if (n == 0 || (errno != EINTR && errno != EAGAIN)) output_open = false;  // EIO: no slave left
        }
        if (fds[3].revents) {
            while (read(winch_pipe[0], buffer, sizeof buffer) > 0) {
            }
            copy_window_size(STDIN_FILENO, master);
        }
    }
    return child.wait();
}

// ---- the result --------------------------------------------------------------

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\', out += c;
        else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
            out += escaped;
        } else out += c;
    }
    return out + "\"";
}

template <typename T>
std::string json_or_null(const std::optional<T>& value) {
    if (!value) return "null";
    std::ostringstream out;
    out << *value;
    return out.str();
}

std::string milliseconds(std::chrono::nanoseconds d) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(3) << static_cast<double>(d.count()) / 1e6;
    return out.str();
}

void print_json(const ctr::process::result* r, const std::string& error) {
    std::ostringstream out;
    if (r) {
        out << "{\"exit_code\":" << json_or_null(r->exit_code) << ",\"signal\":" << json_or_null(r->signal)
            << ",\"timed_out\":" << (r->timed_out ? "true" : "false")
            << ",\"oom_killed\":" << (r->oom_killed ? "true" : "false") << ",\"wall_ms\":" << milliseconds(r->wall_time)
            << ",\"user_ms\":" << milliseconds(r->user_time) << ",\"sys_ms\":" << milliseconds(r->system_time)
            << ",\"memory_peak_bytes\":" << json_or_null(r->memory_peak_bytes) << "}";
    } else {
        out << "{\"exit_code\":null,\"signal\":null,\"timed_out\":false,\"oom_killed\":false,\"wall_ms\":null,"
               "\"user_ms\":null,\"sys_ms\":null,\"memory_peak_bytes\":null,\"error\":"
            << json_string(error) << "}";
    }
    std::cerr << out.str() << std::endl;
}

// 126 and 127 as shells use them; 125 for every other failure before exec.
int exit_status_for(const ctr::error& e) {
    if (e.step() != ctr::step::exec) return exit_runtime_failed;
    const int code = e.code().value();
    if (code == ENOENT || code == ENOTDIR) return exit_not_found;
    return exit_cannot_execute;
}

int run(const config& c) {
    const bool privileged = geteuid() == 0;
    const bool rootless = c.rootless || !privileged;

    ctr::process::options options{
        .env = {.inherit = !c.clear_env, .set = c.env},
        .cwd = c.workdir.empty() ? std::string("/") : c.workdir,
        .timeout = c.timeout,
    };
    options.namespaces = ctr::ns::pid | ctr::ns::mount | ctr::ns::uts | ctr::ns::ipc | ctr::ns::cgroup;
    if (c.network == network_mode::none) options.namespaces = options.namespaces | ctr::ns::network;
    if (c.network == network_mode::veth) options.network = ctr::net::veth{};
    // Published ports are bound before anything starts, so a busy port fails
    // the run (125) before the command could print a word.
    std::optional<ctr::net::port_forwarder> ports;
    if (!c.publish.empty()) ports.emplace(c.publish);
    if (rootless || root_in_user_namespace(c)) options.namespaces = options.namespaces | ctr::ns::user;
    options.security = confinement(c);
    options.hostname = c.hostname;
    options.init = !c.no_init;
    if (c.uid) {
        // Root of the host drops its supplementary groups too; inside a user
        // namespace the library already did, where the kernel allows it.
        if (!rootless) options.groups = std::vector<gid_t>{};
        options.gid = c.gid;
        options.uid = c.uid;
    }

    // The sandbox dies with this process, however it ends (SIGKILL too);
    // what a killed ctr-run leaves outside the sandbox (its cgroup, an
    // overlay's scratch layer) the next run removes (docs/lifecycle.md).
    // With --no-init the command is pid 1 and nothing supervises it: it gets
    // the parent-death signal instead (this program has one thread), and its
    // namespace ends with it.
    options.die_with_owner = !c.no_init;
    options.die_with_parent = c.no_init;

    std::optional<scratch_layer> scratch;
    if (!c.overlay.empty()) {
        scratch_layer::reap_stale_scratch(rootless);
        scratch.emplace();
        if (rootless) scratch->removed_in_user_namespace();
        // The sandbox's root writes the upper layer: give it to the host id
        // that root inside maps to.
        if (root_in_user_namespace(c)) scratch->give_to(mapped_root(options.id_maps));
    }
    options.root = filesystem_plan(c, scratch ? &*scratch : nullptr);

    // Declared before the child: the group must outlive it.
    std::optional<ctr::cgroup::group> group = make_group(c);
    if (group) options.cgroup = &*group;

    // A pty made inside the sandbox, in its own devpts: `tty` says
    // /dev/pts/0, as under `docker run -t`. It starts with the caller's
    // window size; the relay forwards later changes.
    const bool interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (interactive) {
        ctr::process::terminal_options terminal;
        if (winsize size{}; ioctl(STDIN_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_row > 0 && size.ws_col > 0)
            terminal.size = {.rows = size.ws_row, .columns = size.ws_col};
        options.terminal = terminal;
    }

    install_signal_forwarding();
    ctr::process::child child = ctr::process::spawn(c.command, options);
    start_forwarding(child.pidfd());
    if (ports) ports->start(child.network()->container_address.address);
    ctr::process::result r;
    if (child.terminal()) {
        r = relay(child, child.terminal().get());
    } else {
        r = child.wait();
    }
    child_pidfd = -1;

    if (c.result_json) print_json(&r, {});
    if (r.oom_killed) {
        std::cerr << "ctr-run: out of memory: the command was killed by the kernel's OOM killer at the memory limit"
                  << (group && group->memory_max_bytes() ? " of " + format_bytes(*group->memory_max_bytes()) : "")
                  << " (--memory)" << std::endl;
    }
    if (r.timed_out) {
        std::cerr << "ctr-run: timed out after " << std::chrono::duration<double>(c.timeout).count()
                  << " s (--timeout)" << std::endl;
        return exit_timed_out;
    }
    if (r.signal) return 128 + *r.signal;
    return r.exit_code.value_or(exit_runtime_failed);
}

}  // namespace

int main(int argc, char** argv) {
    config c;
    try {
        c = parse_arguments(argc, argv);
    } catch (const usage_error& e) {
        std::cerr << "ctr-run: " << e.flag << ": " << e.message << std::endl;
        return exit_runtime_failed;
    }
    if (c.help) {
        std::cout << usage_text;
        return 0;
    }
    if (c.probe) {
        std::cout << ctr::probe();
        return 0;
    }
    try {
        return run(c);
    } catch (const usage_error& e) {
        std::cerr << "ctr-run: " << e.flag << ": " << e.message << std::endl;
        if (c.result_json) print_json(nullptr, e.flag + ": " + e.message);
        return exit_runtime_failed;
    } catch (const ctr::error& e) {
        std::cerr << "ctr-run: " << e.what() << std::endl;
        if (c.result_json) print_json(nullptr, e.what());
        return exit_status_for(e);
    } catch (const std::exception& e) {
        std::cerr << "ctr-run: " << e.what() << std::endl;
        if (c.result_json) print_json(nullptr, e.what());
        return exit_runtime_failed;
    }
}
