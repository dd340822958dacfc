#pragma once
// ctr-run's command line: the flags and their rules, parsed into a config
// without touching the system (only "-e KEY" reads the caller's
// environment). Kept apart from the commands so that the parser is tested
// and fuzzed on its own (tests/fuzz/ctr_run_flags.cpp). A bad flag or value
// throws usage_error and nothing else. The values: values.hpp; the usage
// text: help.hpp.

#include "values.hpp"

#include <ctr/capabilities.hpp>
#include <ctr/cgroup.hpp>
#include <ctr/error.hpp>
#include <ctr/port_forward.hpp>

#include <sys/types.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr_run {

enum class network_mode { none, host, veth, pasta };

struct config {
    std::optional<std::string> rootfs;
    bool read_only = false;
    std::vector<std::string> overlay;
    std::vector<volume> volumes;  // -v and --mount type=bind
    std::vector<tmpfs_mount> tmpfs;  // --tmpfs and --mount type=tmpfs
    std::vector<device> devices;
    std::optional<std::uint64_t> shm_size;
    std::string workdir;
    std::string hostname;
    std::string domainname;
    std::vector<std::pair<std::string, std::string>> env;  // -e, in order
    std::vector<std::string> env_files;                    // --env-file, read when the run starts
    bool clear_env = false;
    bool env_host = false;  // --env-host: the caller's environment instead of Docker's defaults
    std::vector<std::pair<std::string, std::string>> add_hosts;  // name, address
    std::vector<std::string> dns, dns_search, dns_options;
    std::vector<ulimit> ulimits;

    std::optional<std::uint64_t> memory;
    std::optional<std::string> memory_swap;  // what the flag said, resolved once --memory is known
    std::optional<double> cpus;
    std::optional<std::uint64_t> pids_limit;
    std::optional<std::string> cpuset_cpus;
    std::optional<std::uint32_t> cpu_shares;

    network_mode network = network_mode::none;
    bool network_given = false;  // --network was on the command line
    // IPv6 for --network veth; --sysctl net.ipv6.conf.all.disable_ipv6=1
    // (Docker's way) turns it off.
    bool ipv6 = true;
    std::vector<ctr::net::port_mapping> publish;
    bool pid_host = false, ipc_host = false, uts_host = false;
    bool rootless = false;
    bool userns_host = false;  // --userns host: root inside is the caller (root) outside
    // Fail where user namespaces are refused, instead of running without
    // namespaces (no_namespaces.hpp).
    bool require_namespaces = false;
    std::optional<user_spec> user;        // -u, resolved when the run starts
    std::vector<std::string> group_add;   // names or numeric ids

    // Confinement (docs/security.md): on unless switched off.
    bool privileged = false;           // --privileged: every capability, no no_new_privs, no seccomp
    std::vector<std::string> cap_add;  // names as given, checked when parsed
    std::vector<std::string> cap_drop;
    bool no_new_privileges = true;
    bool seccomp = true;
    // --security-opt seccomp=PATH: a profile in Docker's format, read when
    // the run starts (oci/seccomp_profile.hpp) in place of the default one.
    std::optional<std::string> seccomp_profile;
    // --landlock, --security-opt landlock=: applied when the run starts
    // (sandbox.hpp, landlock_ruleset).
    landlock_request landlock;

    std::string name;  // --name: one run at a time under it
    std::chrono::milliseconds timeout{0};
    int stop_signal = 15;  // SIGTERM
    std::optional<std::chrono::seconds> stop_timeout;  // empty: Docker's 10 s; -1 given: never
    bool stop_timeout_never = false;
    bool no_init = false;
    bool init = false;  // --init: the default, said out loud
    bool tty = false;
    bool interactive = false;
    bool sig_proxy = true;
    bool result_json = false;
    bool probe = false;
    bool help = false;
    bool version = false;

    std::optional<std::string> entrypoint;
    std::vector<std::string> command;
};

// ---- flags -----------------------------------------------------------------

enum class takes : std::uint8_t {
    boolean,  // --flag, or Docker's --flag=true|false (-t=false): see parse_boolean
    value,
};

struct flag_spec {
    std::string_view long_name;
    char short_name;  // 0: none
    takes what;
};

constexpr flag_spec flags[] = {
    {"rootfs", 0, takes::value},          {"read-only", 0, takes::boolean},     {"overlay", 0, takes::value},
    {"volume", 'v', takes::value},        {"mount", 0, takes::value},           {"tmpfs", 0, takes::value},
    {"device", 0, takes::value},          {"shm-size", 0, takes::value},        {"workdir", 'w', takes::value},
    {"hostname", 'h', takes::value},      {"domainname", 0, takes::value},      {"env", 'e', takes::value},
    {"env-file", 0, takes::value},        {"env-host", 0, takes::boolean},      {"clear-env", 0, takes::boolean},
    {"add-host", 0, takes::value},        {"dns", 0, takes::value},             {"dns-search", 0, takes::value},
    {"dns-option", 0, takes::value},      {"dns-opt", 0, takes::value},         {"ulimit", 0, takes::value},
    {"memory", 'm', takes::value},        {"memory-swap", 0, takes::value},     {"cpus", 0, takes::value},
    {"cpu-shares", 'c', takes::value},    {"pids-limit", 0, takes::value},      {"cpuset-cpus", 0, takes::value},
    {"network", 0, takes::value},         {"net", 0, takes::value},             {"publish", 'p', takes::value},
    {"sysctl", 0, takes::value},
    {"pid", 0, takes::value},             {"ipc", 0, takes::value},             {"uts", 0, takes::value},
    {"rootless", 0, takes::boolean},      {"user", 'u', takes::value},          {"group-add", 0, takes::value},
    {"seccomp", 0, takes::value},         {"cap-add", 0, takes::value},         {"cap-drop", 0, takes::value},
    {"name", 0, takes::value},            {"timeout", 0, takes::value},         {"stop-signal", 0, takes::value},
    {"stop-timeout", 0, takes::value},    {"init", 0, takes::boolean},          {"no-init", 0, takes::boolean},
    {"result", 0, takes::value},          {"probe", 0, takes::boolean},         {"help", 0, takes::boolean},
    {"version", 0, takes::boolean},       {"interactive", 'i', takes::boolean}, {"tty", 't', takes::boolean},
    {"rm", 0, takes::boolean},            {"sig-proxy", 0, takes::boolean},     {"entrypoint", 0, takes::value},
    {"userns", 0, takes::value},          {"privileged", 0, takes::boolean},    {"security-opt", 0, takes::value},
    {"landlock", 0, takes::value},        {"require-namespaces", 0, takes::boolean},
};

// Docker's `run` flags that ctr-run does not have, each refused with one line
// naming it and why (exit 125) rather than "unknown flag": a script written
// for Docker learns what to change. --help lists them.
struct refused_flag {
    std::string_view long_name;
    char short_name;
    takes what;
    std::string_view why;
};

constexpr std::string_view no_daemon =
    "ctr-run has no daemon: a sandbox lives as long as the ctr-run that started it (run ctr-run itself in the "
    "background: '&', nohup, systemd-run)";
constexpr std::string_view no_images = "ctr-run runs no images (give a root filesystem with --rootfs or --overlay)";
constexpr std::string_view no_metadata = "ctr-run keeps no containers, so no metadata about them";
constexpr std::string_view no_io_limits = "I/O limits are not supported by ctr-run yet";
constexpr std::string_view one_network =
    "ctr-run has no user-defined networks: --network veth picks the address (docs/networking.md)";
constexpr std::string_view no_alias =
    "ctr-run has no user-defined networks and no DNS server to answer to an alias: give the names with --add-host "
    "NAME:IP where they are needed";
constexpr std::string_view no_health = "ctr-run has no health checks (no daemon to run them)";
constexpr std::string_view windows_only = "Docker takes it on Windows only";

constexpr refused_flag refused_flags[] = {
    {"detach", 'd', takes::boolean, no_daemon},
    {"detach-keys", 0, takes::value, no_daemon},
    {"restart", 0, takes::value, "ctr-run has no daemon to restart the command: run ctr-run under a supervisor (systemd)"},
    {"attach", 'a', takes::value, "ctr-run always attaches stdin, stdout and stderr"},
    {"cidfile", 0, takes::value, no_metadata},
    {"label", 'l', takes::value, no_metadata},
    {"label-file", 0, takes::value, no_metadata},
    {"annotation", 0, takes::value, no_metadata},
    {"pull", 0, takes::value, no_images},
    {"platform", 0, takes::value, no_images},
    {"quiet", 'q', takes::boolean, no_images},
    {"disable-content-trust", 0, takes::boolean, no_images},
    {"publish-all", 'P', takes::boolean, "ctr-run runs no images, so nothing is exposed: publish each port with -p"},
    {"expose", 0, takes::value, "ctr-run has no container links to expose ports to: publish with -p"},
    {"storage-opt", 0, takes::value, "ctr-run has no storage driver (--overlay gives a throwaway writable layer)"},
    {"volume-driver", 0, takes::value, "ctr-run has no named volumes (bind host directories with -v)"},
    {"volumes-from", 0, takes::value, "ctr-run keeps no containers to take volumes from"},
    {"runtime", 0, takes::value, "ctr-run is the runtime"},
    {"isolation", 0, takes::value, windows_only},
    {"cpu-count", 0, takes::value, windows_only},
    {"cpu-percent", 0, takes::value, windows_only},
    {"io-maxbandwidth", 0, takes::value, windows_only},
    {"io-maxiops", 0, takes::value, windows_only},
    {"cpu-period", 0, takes::value, "set CPU time with --cpus"},
    {"cpu-quota", 0, takes::value, "set CPU time with --cpus"},
    {"cpu-rt-period", 0, takes::value, "real-time CPU time is not supported by ctr-run"},
    {"cpu-rt-runtime", 0, takes::value, "real-time CPU time is not supported by ctr-run"},
    {"cpuset-mems", 0, takes::value, "memory nodes are not supported by ctr-run yet"},
    {"memory-reservation", 0, takes::value,
     "ctr's cgroup limits have no soft memory limit (memory.low, memory.soft_limit_in_bytes) to set"},
    {"memory-swappiness", 0, takes::value, "ctr's cgroup limits have no swappiness"},
    {"kernel-memory", 0, takes::value, "kernel memory limits are gone from Linux (5.16) and from Docker"},
    {"oom-kill-disable", 0, takes::boolean, "ctr-run always lets the OOM killer act at the --memory limit"},
    {"oom-score-adj", 0, takes::value, "ctr's library has no step that sets the command's OOM score"},
    {"blkio-weight", 0, takes::value, no_io_limits},
    {"blkio-weight-device", 0, takes::value, no_io_limits},
    {"device-read-bps", 0, takes::value, no_io_limits},
    {"device-read-iops", 0, takes::value, no_io_limits},
    {"device-write-bps", 0, takes::value, no_io_limits},
    {"device-write-iops", 0, takes::value, no_io_limits},
    {"device-cgroup-rule", 0, takes::value, "ctr-run sets no device cgroup rules (--device binds a device node)"},
    {"gpus", 0, takes::value, "ctr-run has no GPU support (--device binds a device node)"},
    {"cgroup-parent", 0, takes::value, "ctr-run's cgroup is always below ctr-run's own"},
    {"cgroupns", 0, takes::value, "ctr-run always gives the command a cgroup namespace of its own"},
    {"ip", 0, takes::value, one_network},
    {"ip6", 0, takes::value, one_network},
    {"mac-address", 0, takes::value, one_network},
    {"network-alias", 0, takes::value, no_alias},
    {"net-alias", 0, takes::value, no_alias},
    {"link", 0, takes::value, one_network},
    {"link-local-ip", 0, takes::value, one_network},
    {"log-driver", 0, takes::value, "ctr-run writes the command's output to its own stdout and stderr"},
    {"log-opt", 0, takes::value, "ctr-run writes the command's output to its own stdout and stderr"},
    {"health-cmd", 0, takes::value, no_health},
    {"health-interval", 0, takes::value, no_health},
    {"health-retries", 0, takes::value, no_health},
    {"health-start-period", 0, takes::value, no_health},
    {"health-start-interval", 0, takes::value, no_health},
    {"health-timeout", 0, takes::value, no_health},
    {"no-healthcheck", 0, takes::boolean, no_health},
    {"use-api-socket", 0, takes::boolean, "ctr-run has no daemon, so no API socket to give the command"},
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

// --pid, --ipc, --uts: only "host" (the default is a namespace of the sandbox's own).
inline bool parse_host_only(std::string_view shown, std::string_view value) {
    if (value != "host")
        bad_value(shown, "'" + std::string(value) + "' is not host (without it the sandbox has a namespace of its own; "
                         "sharing another container's is not supported)");
    return true;
}

// A boolean flag's value after '=', as Docker's flags (Go's ParseBool)
// take it: --rm=true, --init=false, -t=0.
inline bool parse_boolean(std::string_view shown, std::string_view value) {
    for (std::string_view yes : {"true", "True", "TRUE", "t", "T", "1"})
        if (value == yes) return true;
    for (std::string_view no : {"false", "False", "FALSE", "f", "F", "0"})
        if (value == no) return false;
    bad_value(shown, "takes true or false, not '" + std::string(value) + "'");
}

// `value` is the flag's value; a boolean flag's is "true" or "false".
inline void apply_flag(config& c, const flag_spec& f, std::string_view shown, std::string_view value) {
    const std::string_view name = f.long_name;
    const bool on = value != "false";
    if (name == "rootfs") {
        if (value.empty()) bad_value(shown, "needs a directory");
        c.rootfs = std::string(value);
    } else if (name == "read-only") c.read_only = on;
    else if (name == "overlay") {
        for (auto layer : split(value, ':')) {
            if (layer.empty()) bad_value(shown, "'" + std::string(value) + "' has an empty layer");
            c.overlay.emplace_back(layer);
        }
    } else if (name == "volume") c.volumes.push_back(parse_volume(shown, value));
    else if (name == "mount") {
        auto m = parse_mount(shown, value);
        if (m.bind) c.volumes.push_back(std::move(*m.bind));
        if (m.tmpfs) c.tmpfs.push_back(std::move(*m.tmpfs));
    } else if (name == "tmpfs") c.tmpfs.push_back(parse_tmpfs(shown, value));
    else if (name == "device") c.devices.push_back(parse_device(shown, value));
    else if (name == "shm-size") c.shm_size = parse_size(shown, value);
    else if (name == "workdir") {
        require_absolute(shown, value, "the working directory");
        c.workdir = std::string(value);
    } else if (name == "hostname") {
        if (value.empty() || value.size() > 64) bad_value(shown, "a host name is 1 to 64 bytes");
        c.hostname = std::string(value);
    } else if (name == "domainname") {
        if (value.empty() || value.size() > 64) bad_value(shown, "a domain name is 1 to 64 bytes");
        c.domainname = std::string(value);
    } else if (name == "env") {
        const auto eq = value.find('=');
        const std::string key(value.substr(0, eq));
        if (key.empty()) bad_value(shown, "'" + std::string(value) + "' is not KEY=VALUE");
        if (eq != std::string_view::npos) c.env.emplace_back(key, std::string(value.substr(eq + 1)));
        else if (const char* from_caller = std::getenv(key.c_str())) c.env.emplace_back(key, from_caller);
    } else if (name == "env-file") {
        if (value.empty()) bad_value(shown, "needs a file");
        c.env_files.emplace_back(value);
    } else if (name == "env-host") c.env_host = on;
    else if (name == "clear-env") c.clear_env = on;
    else if (name == "add-host") c.add_hosts.push_back(parse_add_host(shown, value));
    else if (name == "dns") {
        if (!is_ip_address(value)) bad_value(shown, "'" + std::string(value) + "' is not an IP address");
        c.dns.emplace_back(value);
    } else if (name == "dns-search" || name == "dns-option" || name == "dns-opt") {
        if (value.empty() || value.find_first_of(" \t\n") != std::string_view::npos)
            bad_value(shown, "'" + std::string(value) + "' is not one word");
        (name == "dns-search" ? c.dns_search : c.dns_options).emplace_back(value);
    } else if (name == "ulimit") c.ulimits.push_back(parse_ulimit(shown, value));
    else if (name == "memory") {
        c.memory = parse_size(shown, value);
        // As Docker: below the floor the command could not even be set up.
        if (*c.memory < ctr::cgroup::minimum_memory_max)
            bad_value(shown, "'" + std::string(value) + "' is below the minimum of " +
                                 std::to_string(ctr::cgroup::minimum_memory_max >> 20) +
                                 " MiB: a smaller limit cannot start a process (Docker refuses the same)");
    }
    else if (name == "memory-swap") {
        if (value != "-1") parse_size(shown, value);
        c.memory_swap = std::string(value);
    } else if (name == "cpus") {
        const auto number = leading_number(value);
        if (!number || !number->second.empty() || number->first <= 0 || number->first > 1e6)
            bad_value(shown, "'" + std::string(value) + "' is not a positive number of CPUs (0.5, 2)");
        c.cpus = number->first;
    } else if (name == "cpu-shares") {
        // Docker's range; 0 is its "the default".
        const auto n = parse_integer<std::uint32_t>(value);
        if (!n || (*n != 0 && (*n < 2 || *n > 262144)))
            bad_value(shown, "'" + std::string(value) + "' is not a share from 2 to 262144 (1024 is the default)");
        if (*n != 0) c.cpu_shares = *n;
    } else if (name == "pids-limit") {
        const auto n = parse_integer<long long>(value);
        if (!n || *n < -1) bad_value(shown, "'" + std::string(value) + "' is not a number of processes");
        if (*n > 0) c.pids_limit = static_cast<std::uint64_t>(*n);
        else c.pids_limit.reset();
    } else if (name == "cpuset-cpus") {
        parse_cpu_list(shown, value);
        c.cpuset_cpus = std::string(value);
    } else if (name == "network" || name == "net") {
        if (value == "none") c.network = network_mode::none;
        else if (value == "host") c.network = network_mode::host;
        else if (value == "veth") c.network = network_mode::veth;
        else if (value == "pasta") c.network = network_mode::pasta;
        else if (value == "bridge" || value == "default")
            bad_value(shown, "'" + std::string(value) +
                                 "' is not supported: ctr-run has no bridge; --network veth joins the sandbox to the "
                                 "host by a veth pair and masquerades its traffic out, --network pasta gives it the host's "
                                 "connectivity through pasta (docs/networking.md)");
        else bad_value(shown, "'" + std::string(value) + "' is not none, host, veth or pasta");
        c.network_given = true;
    } else if (name == "sysctl") {
        // Only the switch that turns IPv6 off, as Docker users do for a
        // container; the library writes no other /proc/sys inside.
        if (value == "net.ipv6.conf.all.disable_ipv6=1" || value == "net.ipv6.conf.default.disable_ipv6=1")
            c.ipv6 = false;
        else if (value == "net.ipv6.conf.all.disable_ipv6=0" || value == "net.ipv6.conf.default.disable_ipv6=0")
            c.ipv6 = true;
        else
            bad_value(shown, "not supported: ctr's library has no step that writes /proc/sys inside the sandbox (ctr-run "
                             "takes only net.ipv6.conf.all.disable_ipv6=1: IPv4 alone for --network veth)");
    } else if (name == "publish") {
        try {
            for (const auto& m : ctr::net::port_mapping::parse_range(value)) {
                // The kernel cannot DNAT from ::1 (no route_localnet for
                // IPv6), and pasta's loopback is the host's own: refused
                // for both, as one rule is easier to know than two.
                if (m.host_address.is_ipv6() && m.host_address.ipv6().is_loopback())
                    bad_value(shown, "'" + std::string(value) +
                                         "': IPv6's loopback cannot be published (the kernel cannot DNAT from ::1): "
                                         "publish on 127.0.0.1, or without an address");
                c.publish.push_back(m);
            }
        } catch (const ctr::error& e) {
            bad_value(shown, e.what());
        }
    } else if (name == "pid") c.pid_host = parse_host_only(shown, value);
    else if (name == "ipc") c.ipc_host = parse_host_only(shown, value);
    else if (name == "uts") c.uts_host = parse_host_only(shown, value);
    else if (name == "rootless") c.rootless = on;
    else if (name == "require-namespaces") c.require_namespaces = on;
    else if (name == "user") c.user = parse_user(shown, value);
    else if (name == "group-add") {
        const bool numeric = !value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos;
        if (numeric ? !parse_integer<std::uint32_t>(value) : !is_account_name(value))
            bad_value(shown, "'" + std::string(value) + "' is not a group name or a numeric id");
        c.group_add.emplace_back(value);
    } else if (name == "seccomp") {
        if (value != "default" && value != "none") bad_value(shown, "'" + std::string(value) + "' is not default or none");
        c.seccomp = value == "default";
        c.seccomp_profile.reset();
    } else if (name == "cap-add") add_capability_names(c.cap_add, shown, value);
    else if (name == "cap-drop") add_capability_names(c.cap_drop, shown, value);
    else if (name == "privileged") c.privileged = on;
    else if (name == "landlock") parse_landlock(shown, value, c.landlock);
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
        else if (value == "seccomp=unconfined" || value == "seccomp:unconfined") {
            c.seccomp = false;
            c.seccomp_profile.reset();
        } else if (value.starts_with("seccomp=") || value.starts_with("seccomp:")) {
            // Docker's spellings of a profile file (the colon is its older one).
            if (value.size() == 8) bad_value(shown, "'" + std::string(value) + "' names no profile file");
            c.seccomp = true;
            c.seccomp_profile = std::string(value.substr(8));
        } else if (value.starts_with("landlock=") || value.starts_with("landlock:"))
            parse_landlock(shown, value.substr(9), c.landlock);
        else
            bad_value(shown, "'" + std::string(value) +
                                 "' is not no-new-privileges[=true|false], seccomp=unconfined, seccomp=PROFILE.json "
                                 "or landlock=RULES");
    } else if (name == "name") {
        if (!is_container_name(value))
            bad_value(shown, "'" + std::string(value) + "' is not a name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, as Docker's)");
        c.name = std::string(value);
    } else if (name == "timeout") c.timeout = parse_duration(shown, value);
    else if (name == "stop-signal") c.stop_signal = parse_signal(shown, value);
    else if (name == "stop-timeout") {
        const auto n = parse_integer<int>(value);
        if (!n || *n < -1) bad_value(shown, "'" + std::string(value) + "' is not a number of seconds (-1: never)");
        if (*n == -1) c.stop_timeout_never = true;
        else c.stop_timeout = std::chrono::seconds(*n);
    } else if (name == "init") {
        // --init=false is --no-init; either said both ways is refused below.
        (on ? c.init : c.no_init) = true;
    } else if (name == "no-init") (on ? c.no_init : c.init) = true;
    else if (name == "result") {
        if (value != "json") bad_value(shown, "'" + std::string(value) + "' is not json");
        c.result_json = true;
    } else if (name == "probe") c.probe = on;
    else if (name == "help") c.help = on;
    else if (name == "version") c.version = on;
    else if (name == "interactive") c.interactive = on;
    else if (name == "tty") c.tty = on;
    else if (name == "sig-proxy") c.sig_proxy = on;
    else if (name == "entrypoint") {
        if (value.empty()) bad_value(shown, "needs a program (ctr-run runs no images, so there is no entrypoint to reset)");
        c.entrypoint = std::string(value);
    }
    // --rm, --rm=false: nothing to do (see --help).
}

template <typename Spec, std::size_t N>
const Spec* find_flag(const Spec (&table)[N], std::string_view long_name, char short_name) {
    for (const auto& f : table)
        if ((!long_name.empty() && f.long_name == long_name) || (short_name != 0 && f.short_name == short_name)) return &f;
    return nullptr;
}

[[noreturn]] inline void refuse(const refused_flag& f, std::string_view shown) {
    bad_value(shown, "not supported: " + std::string(f.why) + " (see ctr-run --help)");
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
        const refused_flag* refused = nullptr;
        std::string shown;
        std::optional<std::string_view> value;
        if (arg.starts_with("--")) {
            const auto eq = arg.find('=');
            const auto name = arg.substr(2, eq == std::string_view::npos ? std::string_view::npos : eq - 2);
            shown = "--" + std::string(name);
            if (!name.empty()) {
                spec = find_flag(flags, name, 0);
                refused = find_flag(refused_flags, name, 0);
            }
            if (eq != std::string_view::npos) value = arg.substr(eq + 1);
        } else {
            spec = find_flag(flags, {}, arg[1]);
            refused = find_flag(refused_flags, {}, arg[1]);
            shown = std::string(arg.substr(0, 2));
            if (arg.size() > 2) {
                // Docker's clusters of switches: -it, -ti, -dit.
                const auto is_switch = [](char ch) {
                    const flag_spec* s = find_flag(flags, {}, ch);
                    const refused_flag* r = find_flag(refused_flags, {}, ch);
                    return (s && s->what == takes::boolean) || (r && r->what == takes::boolean);
                };
                if (std::all_of(arg.begin() + 1, arg.end(), is_switch)) {
                    for (char ch : arg.substr(1)) {
                        const std::string one = std::string("-") + ch;
                        if (const auto* r = find_flag(refused_flags, {}, ch)) refuse(*r, one);
                        apply_flag(c, *find_flag(flags, {}, ch), one, "true");
                    }
                    continue;
                }
                // -m64m, -m=64m; a boolean's only with '=' (-t=false).
                const takes what = spec ? spec->what : refused ? refused->what : takes::boolean;
                if ((!spec && !refused) || (what == takes::boolean && arg[2] != '='))
                    bad_value(arg, "unknown flag (see ctr-run --help)");
                value = arg.substr(arg[2] == '=' ? 3 : 2);
            }
        }
        if (refused) refuse(*refused, shown);
        if (!spec) bad_value(shown, "unknown flag (see ctr-run --help)");
        if (spec->what == takes::value && !value) {
            if (i + 1 >= argc) bad_value(shown, "needs a value (see ctr-run --help)");
            value = argv[++i];
        }
        if (spec->what == takes::boolean) value = !value || parse_boolean(shown, *value) ? "true" : "false";
        apply_flag(c, *spec, shown, *value);
    }
    if (c.entrypoint) c.command.insert(c.command.begin(), *c.entrypoint);
    if (!c.help && !c.version && !c.probe && c.command.empty()) bad_value("COMMAND", "missing (see ctr-run --help)");
    if (c.memory_swap && !c.memory) bad_value("--memory-swap", "needs --memory as well");
    if (c.read_only && !c.overlay.empty())
        bad_value("--read-only", "does not go with --overlay, whose upper layer is what makes the root writable "
                                 "(leave out --overlay for a read-only root)");
    if (c.init && c.no_init) bad_value("--init", "contradicts --no-init (--init=false)");
    if (c.uts_host && !c.hostname.empty()) bad_value("--hostname", "needs a UTS namespace of the sandbox's own (leave out --uts host)");
    if (c.uts_host && !c.domainname.empty()) bad_value("--domainname", "needs a UTS namespace of the sandbox's own (leave out --uts host)");
    if (c.ipc_host && c.shm_size) bad_value("--shm-size", "with --ipc host, /dev/shm is the host's");
    if (c.pid_host && c.no_init) bad_value("--no-init", "with --pid host there is no pid 1 of the sandbox's own");
    if (c.clear_env && c.env_host) bad_value("--clear-env", "contradicts --env-host");
    if (c.privileged && c.landlock.enabled)
        bad_value("--landlock", "does not go with --privileged, which lifts every confinement (leave out one of them)");
    // As Docker: publishing a port needs a network of the sandbox's own.
    // Without --network, run picks veth or pasta (network.hpp).
    if (!c.publish.empty() && c.network_given && c.network != network_mode::veth && c.network != network_mode::pasta)
        bad_value("--publish",
                  "needs --network veth or --network pasta (the sandbox's ports are published from its own network)");
    return c;
}

}  // namespace ctr_run
