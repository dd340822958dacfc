#pragma once
// ctr-run's command line: the flags, their values and the usage text, parsed
// into a config without touching the system (only "-e KEY" reads the
// caller's environment). Kept apart from ctr-run.cpp so that the parser is
// tested and fuzzed on its own (tests/fuzz/ctr_run_flags.cpp). A bad flag or
// value throws usage_error and nothing else.

#include <ctr/capabilities.hpp>
#include <ctr/error.hpp>
#include <ctr/mount.hpp>
#include <ctr/port_forward.hpp>

#include <sys/types.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr_run {

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
sent to ctr-run are passed to the command. The sandbox ends with ctr-run, however
ctr-run ends (SIGKILL too): every process in it is killed; a killed ctr-run's
cgroup and overlay scratch layer are removed by the next run.

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

[[noreturn]] inline void bad_value(std::string_view flag, std::string message) {
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

inline std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A non-negative decimal number with an optional fraction, and what follows it.
inline std::optional<std::pair<double, std::string_view>> leading_number(std::string_view text) {
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
inline std::uint64_t parse_size(std::string_view flag, std::string_view text) {
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
inline std::chrono::milliseconds parse_duration(std::string_view flag, std::string_view text) {
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

inline std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

inline void require_absolute(std::string_view flag, std::string_view path, std::string_view what) {
    if (path.empty() || path[0] != '/')
        bad_value(flag, std::string(what) + " '" + std::string(path) + "' must be an absolute path");
}

inline volume parse_volume(std::string_view flag, std::string_view text) {
    const auto parts = split(text, ':');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty())
        bad_value(flag, "'" + std::string(text) + "' is not SRC:DST[:ro|rw]");
    volume v{std::string(parts[0]), std::string(parts[1])};
    // Docker reads a relative source as a named volume, which ctr-run does not have.
    require_absolute(flag, v.source, "the source");
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

inline tmpfs_mount parse_tmpfs(std::string_view flag, std::string_view text) {
    const auto colon = text.find(':');
    tmpfs_mount t{std::string(text.substr(0, colon)), {.mode = 01777}};
    require_absolute(flag, t.target, "the destination");
    if (colon == std::string_view::npos) return t;
    for (auto option : split(text.substr(colon + 1), ',')) {
        if (option.starts_with("size=")) {
            // Docker's sizes, handed to tmpfs in bytes; "%" is tmpfs's own.
            const auto size = option.substr(5);
            if (size.ends_with('%')) {
                const auto percent = size.substr(0, size.size() - 1);
                if (percent.empty() || percent.find_first_not_of("0123456789") != std::string_view::npos)
                    bad_value(flag, "size '" + std::string(size) + "' is not a size or a percentage (64m, 50%)");
            }
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
inline void add_capability_names(std::vector<std::string>& into, std::string_view shown, std::string_view value) {
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

inline void apply_flag(config& c, const flag_spec& f, std::string_view shown, std::string_view value) {
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

inline config parse_arguments(int argc, char** argv) {
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

}  // namespace ctr_run
