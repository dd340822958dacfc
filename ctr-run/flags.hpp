#pragma once
// ctr-run's command line: the flags and their rules, parsed into a config
// without touching the system (only "-e KEY" reads the caller's
// environment). Kept apart from the commands so that the parser is tested
// and fuzzed on its own (tests/fuzz/ctr_run_flags.cpp). A bad flag or value
// throws usage_error and nothing else. The values: values.hpp; the usage
// text: help.hpp.

#include "values.hpp"

#include <ctr/capabilities.hpp>
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
