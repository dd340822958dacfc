// ctr-run: a small container runtime built only on ctr's public API.
//
//   ctr-run [OPTIONS] [--] COMMAND [ARG...]
//
// Flags follow Docker's and Podman's names. `ctr-run --help` documents them,
// docs/ctr-run.md walks through examples. The whole runtime is this file:
// parse the flags into a process::options (namespaces, a mount plan, a
// cgroup), spawn, relay a terminal when there is one, and turn the result
// into an exit status.
//
// example-args: --hostname box /bin/sh -c "hostname && echo pid $$ && cat /proc/1/comm"
// expect-output: box
// expect-output: pid 2
#include <ctr/ctr.hpp>

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

constexpr std::string_view usage_text = R"(Usage: ctr-run [OPTIONS] [--] COMMAND [ARG...]

Runs COMMAND in a sandbox: new pid, mount, uts, ipc, cgroup and network
namespaces (and a user namespace when not run as root), the host's root
filesystem read-only with a private /tmp, a fresh /proc and a minimal /dev
unless --rootfs or --overlay gives another root. Flags follow Docker's and
Podman's names. Options end at the first argument that is not an option, or
at "--". A value goes after the flag or after '=' (--memory=64m, -m 64m, -m64m).

Filesystem:
      --rootfs DIR             DIR becomes "/" (writable, shared with the host;
                               see --read-only and --overlay), with a fresh
                               /proc and a minimal /dev
      --read-only              mount the --rootfs read-only
      --overlay L1[:L2...]     "/" is an overlay of these layers stacked over the
                               --rootfs (leftmost on top; without --rootfs the
                               last layer is the bottom one), under a writable
                               upper layer on a tmpfs that is thrown away at
                               exit: neither the layers nor the rootfs change
  -v, --volume SRC:DST[:ro|rw] bind-mount the host path SRC at DST (recursive)
      --tmpfs DST[:OPTS]       a tmpfs at DST; OPTS, comma-separated: size=SIZE,
                               mode=OCTAL, ro, noexec, exec, nosuid, suid, nodev, dev
  -w, --workdir DIR            working directory inside (default: /)
      --hostname NAME          host name inside (default: the host's)
  -e, --env KEY=VALUE          set a variable; "-e KEY" passes the caller's KEY
      --clear-env              start from an empty environment (default: the
                               caller's environment is passed on)

Resources (a cgroup below ctr-run's own, removed at exit):
  -m, --memory SIZE            memory limit: 1048576, 512k, 64m, 1.5g (b k m g t)
      --memory-swap SIZE       memory plus swap, as Docker: equal to --memory
                               for no swap, -1 for unlimited swap (default: swap
                               not limited)
      --cpus N                 CPU time as a number of CPUs, fractions allowed (0.5)
      --pids-limit N           processes and threads together (0 or -1: no limit)
      --cpuset-cpus LIST       CPUs it may run on: 0-3,6

Network:
      --network none|host|veth none (default): a new network namespace with only
                               lo; host: the host's network; veth: a new
                               namespace joined to the host's by a veth pair,
                               eth0 inside with an address from 10.231.0.0/16
                               and a default route through the host end (needs
                               root: rootless networking is not supported yet)
  -p, --publish [IP:]HOSTPORT:PORT[/tcp|/udp]
                               relay connections to HOSTPORT on the host (on
                               IP, default every address) to PORT inside;
                               implies --network veth; may be repeated

Users:
      --rootless               map the caller to root inside a user namespace
                               (the default when not run as root)
  -u, --user UID[:GID]         numeric ids to run as inside (GID default: 0)

Security and lifetime (confined by default, see docs/security.md):
      --userns host            run in the caller's user namespace (default for
                               root: a user namespace of its own, root inside
                               mapped to an unprivileged range outside; the
                               --rootfs and volumes are idmapped so files keep
                               their owners)
      --cap-add NAME, --cap-drop NAME|ALL
                               capabilities on top of or taken from the
                               default set (Podman's: CHOWN DAC_OVERRIDE FOWNER
                               FSETID KILL NET_BIND_SERVICE SETFCAP SETGID
                               SETPCAP SETUID SYS_CHROOT); comma lists allowed
      --security-opt no-new-privileges[=true|false]
                               no_new_privs (default: true)
      --security-opt seccomp=unconfined, --seccomp default|none
                               default (the default): the seccomp profile that
                               refuses mount, namespaces, modules, bpf, perf,
                               the clock, open_by_handle_at...; none or
                               unconfined: no filter
      --privileged             every capability, no no_new_privs, no seccomp:
                               the documented way out (the user namespace stays
                               unless --userns host)
      --timeout SECONDS        wall-clock limit (fractions allowed, or a unit:
                               500ms, 2m, 1h): SIGTERM, then SIGKILL 2 s later;
                               ctr-run then exits 124
      --no-init                run the command as pid 1 (default: a minimal init
                               is pid 1, forwards signals and reaps orphans)
  -i, -t, -it, --rm, --interactive, --tty
                               accepted for Docker habits and ignored: stdin is
                               always passed on, a terminal always gets a pty,
                               nothing is left behind

Output:
      --result json            after the command ends, print one JSON object on
                               stderr: exit_code, signal, timed_out, oom_killed,
                               wall_ms, user_ms, sys_ms, memory_peak_bytes (null
                               where unknown), and "error" when ctr-run failed
      --probe                  print what this host supports, one feature a line
  -h, --help                   this text

stdin, stdout and stderr pass through. When stdin and stdout are terminals the
command gets a pty of its own (an interactive shell works; the window size
follows the terminal's). SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2
sent to ctr-run are passed to the command.

Exit status: the command's own; 128+N when it died of signal N; 124 when the
--timeout fired; 125 when ctr-run failed before the command ran (the message
names the step, the path and the reason); 126 when the command exists but
cannot be executed; 127 when it does not exist. An out-of-memory kill prints a
line saying so, with the limit.
)";

// A bad flag or value: one line naming the flag, exit 125.
struct usage_error {
    std::string flag;
    std::string message;
};

[[noreturn]] void bad_value(std::string_view flag, std::string message) {
    throw usage_error{std::string(flag), std::move(message)};
}

struct volume {
    std::string source, target;
    bool read_only = false;
};

struct tmpfs_mount {
    std::string target;
    ctr::mount::tmpfs_options options;
};

enum class network_mode { none, host, veth };

struct config {
    std::optional<std::string> rootfs;
    bool read_only = false;
    std::vector<std::string> overlay;
    std::vector<volume> volumes;
    std::vector<tmpfs_mount> tmpfs;
    std::string workdir;
    std::string hostname;
    std::vector<std::pair<std::string, std::string>> env;
    bool clear_env = false;

    std::optional<std::uint64_t> memory;
    std::optional<std::string> memory_swap;  // what the flag said, resolved once --memory is known
    std::optional<double> cpus;
    std::optional<std::uint64_t> pids_limit;
    std::optional<std::string> cpuset_cpus;

    network_mode network = network_mode::none;
    bool network_given = false;  // --network was on the command line
    std::vector<ctr::net::port_mapping> publish;
    bool rootless = false;
    bool userns_host = false;  // --userns host: root inside is the caller (root) outside
    std::optional<uid_t> uid;

    // Confinement (docs/security.md): on unless switched off.
    bool privileged = false;           // --privileged: every capability, no no_new_privs, no seccomp
    std::vector<std::string> cap_add;  // names as given, checked when parsed
    std::vector<std::string> cap_drop;
    bool no_new_privileges = true;
    bool seccomp = true;
    std::optional<gid_t> gid;

    std::chrono::milliseconds timeout{0};
    bool no_init = false;
    bool result_json = false;
    bool probe = false;
    bool help = false;

    std::vector<std::string> command;
};

// ---- values ----------------------------------------------------------------

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A non-negative decimal number with an optional fraction, and what follows it.
std::optional<std::pair<double, std::string_view>> leading_number(std::string_view text) {
    std::size_t end = 0;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
    if (end == 0) return std::nullopt;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
    if (ec != std::errc() || ptr != text.data() + end || !std::isfinite(value)) return std::nullopt;
    return std::pair{value, text.substr(end)};
}

// Docker's sizes: a number of bytes, or with b, k, m, g, t (binary units,
// any case, an optional trailing "b": 64m, 64MB, 1.5g).
std::uint64_t parse_size(std::string_view flag, std::string_view text) {
    const auto fail = [&] {
        bad_value(flag, "'" + std::string(text) + "' is not a size (examples: 1048576, 512k, 64m, 1.5g)");
    };
    const auto number = leading_number(text);
    if (!number) fail();
    std::string unit = lower(number->second);
    if (unit.size() == 2 && unit[1] == 'b' && unit[0] != 'b') unit.pop_back();
    double scale = 1;
    if (unit.empty() || unit == "b") scale = 1;
    else if (unit == "k") scale = 1024.0;
    else if (unit == "m") scale = 1024.0 * 1024;
    else if (unit == "g") scale = 1024.0 * 1024 * 1024;
    else if (unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
    else fail();
    const double bytes = std::floor(number->first * scale);
    if (bytes < 1 || bytes > 9.2e18) bad_value(flag, "'" + std::string(text) + "' is out of range");
    return static_cast<std::uint64_t>(bytes);
}

// Seconds, fractions allowed, or with a unit: 1.5, 500ms, 10s, 2m, 1h.
std::chrono::milliseconds parse_duration(std::string_view flag, std::string_view text) {
    const auto number = leading_number(text);
    const std::string unit = number ? lower(number->second) : "";
    double scale = 0;
    if (unit.empty() || unit == "s") scale = 1000;
    else if (unit == "ms") scale = 1;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    if (!number || scale == 0)
        bad_value(flag, "'" + std::string(text) + "' is not a duration (seconds, or with a unit: 1.5, 500ms, 2m)");
    const double ms = std::ceil(number->first * scale);
    if (ms < 1 || ms > 1e12) bad_value(flag, "'" + std::string(text) + "' is out of range (at least 1ms)");
    return std::chrono::milliseconds(static_cast<long long>(ms));
}

template <typename Int>
std::optional<Int> parse_integer(std::string_view text) {
    Int value{};
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

void require_absolute(std::string_view flag, std::string_view path, std::string_view what) {
    if (path.empty() || path[0] != '/')
        bad_value(flag, std::string(what) + " '" + std::string(path) + "' must be an absolute path");
}

volume parse_volume(std::string_view flag, std::string_view text) {
    const auto parts = split(text, ':');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty())
        bad_value(flag, "'" + std::string(text) + "' is not SRC:DST[:ro|rw]");
    volume v{std::string(parts[0]), std::string(parts[1])};
    require_absolute(flag, v.target, "the destination");
    if (parts.size() == 3) {
        for (auto option : split(parts[2], ',')) {
            if (option == "ro") v.read_only = true;
            else if (option == "rw") v.read_only = false;
            else bad_value(flag, "unknown volume option '" + std::string(option) + "' (ro or rw)");
        }
    }
    return v;
}

tmpfs_mount parse_tmpfs(std::string_view flag, std::string_view text) {
    const auto colon = text.find(':');
    tmpfs_mount t{std::string(text.substr(0, colon)), {.mode = 01777}};
    require_absolute(flag, t.target, "the destination");
    if (colon == std::string_view::npos) return t;
    for (auto option : split(text.substr(colon + 1), ',')) {
        if (option.starts_with("size=")) {
            // Docker's sizes, handed to tmpfs in bytes; "%" is tmpfs's own.
            const auto size = option.substr(5);
            t.options.size = size.ends_with('%') ? std::string(size) : std::to_string(parse_size(flag, size));
        } else if (option.starts_with("mode=")) {
            const auto mode = option.substr(5);
            unsigned value = 0;
            const auto [ptr, ec] = std::from_chars(mode.data(), mode.data() + mode.size(), value, 8);
            if (ec != std::errc() || ptr != mode.data() + mode.size() || mode.empty() || value > 07777)
                bad_value(flag, "mode '" + std::string(mode) + "' is not an octal mode");
            t.options.mode = value;
        } else if (option == "ro") t.options.read_only = true;
        else if (option == "rw") t.options.read_only = false;
        else if (option == "noexec") t.options.noexec = true;
        else if (option == "exec") t.options.noexec = false;
        else if (option == "nosuid") t.options.nosuid = true;
        else if (option == "suid") t.options.nosuid = false;
        else if (option == "nodev") t.options.nodev = true;
        else if (option == "dev") t.options.nodev = false;
        else bad_value(flag, "unknown tmpfs option '" + std::string(option) +
                                 "' (size=, mode=, ro, rw, noexec, exec, nosuid, suid, nodev, dev)");
    }
    return t;
}

// ---- flags -----------------------------------------------------------------

struct flag_spec {
    std::string_view long_name;
    char short_name;  // 0: none
    bool takes_value;
};

constexpr flag_spec flags[] = {
    {"rootfs", 0, true},        {"read-only", 0, false},   {"overlay", 0, true},     {"volume", 'v', true},
    {"tmpfs", 0, true},         {"workdir", 'w', true},    {"hostname", 0, true},    {"env", 'e', true},
    {"clear-env", 0, false},    {"memory", 'm', true},     {"memory-swap", 0, true}, {"cpus", 0, true},
    {"pids-limit", 0, true},    {"cpuset-cpus", 0, true},  {"network", 0, true},     {"net", 0, true},
    {"publish", 'p', true},     {"rootless", 0, false},    {"user", 'u', true},      {"seccomp", 0, true},
    {"cap-add", 0, true},       {"cap-drop", 0, true},     {"timeout", 0, true},     {"no-init", 0, false},
    {"result", 0, true},        {"probe", 0, false},       {"help", 'h', false},     {"interactive", 'i', false},
    {"tty", 't', false},        {"rm", 0, false},          {"userns", 0, true},      {"privileged", 0, false},
    {"security-opt", 0, true},
};

// NAME[,NAME...] or ALL, each checked against the capability names.
void add_capability_names(std::vector<std::string>& into, std::string_view shown, std::string_view value) {
    if (value.empty()) bad_value(shown, "needs a capability name, e.g. NET_ADMIN or CAP_NET_ADMIN, or ALL");
    std::size_t at = 0;
    while (at <= value.size()) {
        const auto comma = std::min(value.find(',', at), value.size());
        const std::string_view name = value.substr(at, comma - at);
        std::string upper(name);
        for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (upper != "ALL" && !ctr::caps::from_name(name))
            bad_value(shown, "'" + std::string(name) + "' is not a capability (names look like NET_ADMIN or CAP_NET_ADMIN)");
        into.push_back(upper);
        at = comma + 1;
    }
}

void apply_flag(config& c, const flag_spec& f, std::string_view shown, std::string_view value) {
    const std::string_view name = f.long_name;
    if (name == "rootfs") {
        if (value.empty()) bad_value(shown, "needs a directory");
        c.rootfs = std::string(value);
    } else if (name == "read-only") c.read_only = true;
    else if (name == "overlay") {
        for (auto layer : split(value, ':')) {
            if (layer.empty()) bad_value(shown, "'" + std::string(value) + "' has an empty layer");
            c.overlay.emplace_back(layer);
        }
    } else if (name == "volume") c.volumes.push_back(parse_volume(shown, value));
    else if (name == "tmpfs") c.tmpfs.push_back(parse_tmpfs(shown, value));
    else if (name == "workdir") {
        require_absolute(shown, value, "the working directory");
        c.workdir = std::string(value);
    } else if (name == "hostname") {
        if (value.empty() || value.size() > 64) bad_value(shown, "a host name is 1 to 64 bytes");
        c.hostname = std::string(value);
    } else if (name == "env") {
        const auto eq = value.find('=');
        const std::string key(value.substr(0, eq));
        if (key.empty()) bad_value(shown, "'" + std::string(value) + "' is not KEY=VALUE");
        if (eq != std::string_view::npos) c.env.emplace_back(key, std::string(value.substr(eq + 1)));
        else if (const char* from_caller = std::getenv(key.c_str())) c.env.emplace_back(key, from_caller);
    } else if (name == "clear-env") c.clear_env = true;
    else if (name == "memory") c.memory = parse_size(shown, value);
    else if (name == "memory-swap") {
        if (value != "-1") parse_size(shown, value);
        c.memory_swap = std::string(value);
    } else if (name == "cpus") {
        const auto number = leading_number(value);
        if (!number || !number->second.empty() || number->first <= 0 || number->first > 1e6)
            bad_value(shown, "'" + std::string(value) + "' is not a positive number of CPUs (0.5, 2)");
        c.cpus = number->first;
    } else if (name == "pids-limit") {
        const auto n = parse_integer<long long>(value);
        if (!n || *n < -1) bad_value(shown, "'" + std::string(value) + "' is not a number of processes");
        if (*n > 0) c.pids_limit = static_cast<std::uint64_t>(*n);
        else c.pids_limit.reset();
    } else if (name == "cpuset-cpus") {
        if (value.empty() || value.find_first_not_of("0123456789,-") != std::string_view::npos)
            bad_value(shown, "'" + std::string(value) + "' is not a CPU list (0-3,6)");
        c.cpuset_cpus = std::string(value);
    } else if (name == "network" || name == "net") {
        if (value == "none") c.network = network_mode::none;
        else if (value == "host") c.network = network_mode::host;
        else if (value == "veth" || value == "bridge") c.network = network_mode::veth;
        else bad_value(shown, "'" + std::string(value) + "' is not none, host or veth");
        c.network_given = true;
    } else if (name == "publish") {
        try {
            c.publish.push_back(ctr::net::port_mapping::parse(value));
        } catch (const ctr::error& e) {
            bad_value(shown, e.what());
        }
    } else if (name == "rootless") c.rootless = true;
    else if (name == "user") {
        const auto colon = value.find(':');
        const auto uid = parse_integer<uid_t>(value.substr(0, colon));
        if (!uid)
            bad_value(shown, "'" + std::string(value) + "' is not UID[:GID] (numeric ids; names are not looked up)");
        c.uid = *uid;
        c.gid = 0;
        if (colon != std::string_view::npos) {
            const auto gid = parse_integer<gid_t>(value.substr(colon + 1));
            if (!gid) bad_value(shown, "'" + std::string(value) + "' is not UID[:GID] (numeric ids)");
            c.gid = *gid;
        }
    } else if (name == "seccomp") {
        if (value != "default" && value != "none") bad_value(shown, "'" + std::string(value) + "' is not default or none");
        c.seccomp = value == "default";
    } else if (name == "cap-add") add_capability_names(c.cap_add, shown, value);
    else if (name == "cap-drop") add_capability_names(c.cap_drop, shown, value);
    else if (name == "privileged") c.privileged = true;
    else if (name == "userns") {
        if (value != "host")
            bad_value(shown, "'" + std::string(value) + "' is not host (without --userns, root gets a user namespace "
                             "of its own: root inside is unprivileged outside)");
        c.userns_host = true;
    } else if (name == "security-opt") {
        if (value == "no-new-privileges" || value == "no-new-privileges=true" || value == "no-new-privileges:true")
            c.no_new_privileges = true;
        else if (value == "no-new-privileges=false" || value == "no-new-privileges:false")
            c.no_new_privileges = false;
        else if (value == "seccomp=unconfined" || value == "seccomp:unconfined")
            c.seccomp = false;
        else
            bad_value(shown, "'" + std::string(value) + "' is not no-new-privileges[=true|false] or seccomp=unconfined");
    }
    else if (name == "timeout") c.timeout = parse_duration(shown, value);
    else if (name == "no-init") c.no_init = true;
    else if (name == "result") {
        if (value != "json") bad_value(shown, "'" + std::string(value) + "' is not json");
        c.result_json = true;
    } else if (name == "probe") c.probe = true;
    else if (name == "help") c.help = true;
    // -i, -t, --rm: nothing to do (see --help).
}

config parse_arguments(int argc, char** argv) {
    config c;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") {
            c.command.assign(argv + i + 1, argv + argc);
            break;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            c.command.assign(argv + i, argv + argc);
            break;
        }
        const flag_spec* spec = nullptr;
        std::string shown;
        std::optional<std::string_view> value;
        if (arg.starts_with("--")) {
            const auto eq = arg.find('=');
            const auto name = arg.substr(2, eq == std::string_view::npos ? std::string_view::npos : eq - 2);
            for (const auto& f : flags)
                if (f.long_name == name) spec = &f;
            shown = "--" + std::string(name);
            if (eq != std::string_view::npos) value = arg.substr(eq + 1);
        } else if (arg == "-it" || arg == "-ti") {
            continue;
        } else {
            for (const auto& f : flags)
                if (f.short_name == arg[1]) spec = &f;
            shown = std::string(arg.substr(0, 2));
            if (arg.size() > 2) {
                if (!spec || !spec->takes_value) bad_value(arg, "unknown flag (see ctr-run --help)");
                value = arg.substr(arg[2] == '=' ? 3 : 2);
            }
        }
        if (!spec) bad_value(shown, "unknown flag (see ctr-run --help)");
        if (spec->takes_value && !value) {
            if (i + 1 >= argc) bad_value(shown, "needs a value (see ctr-run --help)");
            value = argv[++i];
        }
        if (!spec->takes_value && value) bad_value(shown, "takes no value");
        apply_flag(c, *spec, shown, value.value_or(""));
    }
    if (c.memory_swap && !c.memory) bad_value("--memory-swap", "needs --memory as well");
    if (c.read_only && !c.rootfs) bad_value("--read-only", "needs --rootfs (the host's root is always read-only)");
    if (!c.help && !c.probe && c.command.empty()) bad_value("COMMAND", "missing (see ctr-run --help)");
    if (!c.publish.empty()) {
        // As Docker: publishing a port needs a network of the sandbox's own.
        if (c.network_given && c.network != network_mode::veth)
            bad_value("--publish", "needs --network veth (the sandbox's ports are published from its own network)");
        c.network = network_mode::veth;
    }
    return c;
}

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

// The writable top layer of --overlay: upper and work directories on a tmpfs
// (/dev/shm where it is one), removed at exit. Rootless, the files in it may
// belong to ids that only the user namespace maps, so the removal runs as
// root of such a namespace.
class scratch_layer {
public:
    scratch_layer() {
        std::string base = "/tmp";
        struct statfs fs {};
        if (statfs("/dev/shm", &fs) == 0 && static_cast<unsigned long>(fs.f_type) == TMPFS_MAGIC &&
            access("/dev/shm", W_OK) == 0)
            base = "/dev/shm";
        else if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp)
            base = tmp;
        std::string pattern = base + "/ctr-run-overlay.XXXXXX";
        if (!mkdtemp(pattern.data())) throw ctr::error(ctr::step::prepare, errno, pattern, "overlay scratch directory");
        dir_ = pattern;
        for (const char* sub : {"/upper", "/work"})
            if (mkdir((dir_ + sub).c_str(), 0755) != 0)
                throw ctr::error(ctr::step::prepare, errno, dir_ + sub, "overlay scratch directory");
    }
    scratch_layer(const scratch_layer&) = delete;
    scratch_layer& operator=(const scratch_layer&) = delete;
    ~scratch_layer() {
        if (dir_.empty()) return;
        std::error_code ec;
        if (geteuid() == 0 && !in_user_namespace_) {
            std::filesystem::remove_all(dir_, ec);
            return;
        }
        try {
            (void)ctr::process::spawn({"/bin/rm", "-rf", dir_},
                                {.std_in = ctr::process::stdio::null(), .namespaces = ctr::ns::user})
                .wait();
        } catch (const ctr::error&) {
        }
        std::filesystem::remove_all(dir_, ec);  // what is left, if anything
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

// A pty for the command; the caller keeps the master.
struct pty {
    ctr::unique_fd master, slave;
};

pty open_pty() {
    pty p;
    const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) throw ctr::error(ctr::step::prepare, errno, "/dev/ptmx", "open a pty");
    p.master.reset(master);
    char name[128];
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0)
        throw ctr::error(ctr::step::prepare, errno, "/dev/ptmx", "unlock the pty");
    const int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) throw ctr::error(ctr::step::prepare, errno, name, "open the pty's slave");
    p.slave.reset(slave);
    // The command's terminal starts with the caller's settings and size.
    termios settings{};
    if (tcgetattr(STDIN_FILENO, &settings) == 0) tcsetattr(slave, TCSANOW, &settings);
    copy_window_size(STDIN_FILENO, master);
    return p;
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

    std::optional<scratch_layer> scratch;
    if (!c.overlay.empty()) {
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

    const bool interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    std::optional<pty> terminal;
    if (interactive) {
        terminal = open_pty();
        const int slave = terminal->slave.get();
        options.std_in = options.std_out = options.std_err = ctr::process::stdio::from_fd(slave);
        options.new_session = true;
        options.controlling_terminal = true;
    }

    install_signal_forwarding();
    ctr::process::child child = ctr::process::spawn(c.command, options);
    start_forwarding(child.pidfd());
    if (ports) ports->start(child.network()->container_address.address);
    ctr::process::result r;
    if (terminal) {
        terminal->slave.reset();
        r = relay(child, terminal->master.get());
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
