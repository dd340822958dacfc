#pragma once
// An OCI bundle's config.json (runtime-spec 1.0 to 1.3), mapped onto the
// library: process::options with its mount::plan, namespaces, credentials
// and security, the cgroup asked for, the hooks and what the runtime itself
// does (seccomp, oomScoreAdj). docs/oci.md ("config.json fields") lists every
// field: what it becomes, and what is refused.
//
// The rule: a field the spec defines that ctr cannot honour is refused with
// config_error naming the field ("linux.intelRdt: not supported, ..."),
// never ignored. A property the spec does not define is ignored, as the
// spec requires of runtimes ("MUST ignore unknown properties").

#include "oci/json.hpp"

#include <ctr/cgroup.hpp>
#include <ctr/process.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ctr_run::oci {

// One hook of config.json's "hooks" (runtime-spec config.md, POSIX hooks).
struct hook {
    std::string path;  // absolute, on the runtime's host
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::optional<std::chrono::seconds> timeout;
};

struct hook_lists {
    std::vector<hook> prestart, create_runtime, create_container, start_container, poststart, poststop;
};

// A device cgroup rule (linux.resources.devices[]). The cgroup library will
// get a type of its own; until then this one.
struct device_rule {
    bool allow = false;
    char type = 'a';  // 'a' (all), 'c', 'b'
    std::optional<std::int64_t> major, minor;  // empty: any ("*")
    std::string access = "rwm";  // a subset of "rwm"
};

// linux.cgroupsPath and linux.resources.
struct cgroup_request {
    // As written: cgroupfs form, "/a/b" (from the root of each hierarchy) or
    // "a/b" (below the runtime's own group). Empty: the config gave none and
    // the runtime picks one. The systemd form "slice:prefix:name" is refused.
    std::string path;
    ctr::cgroup::limits limits;
    std::vector<device_rule> devices;
};

struct container_config {
    std::string oci_version;
    std::filesystem::path bundle;   // absolute
    std::vector<std::string> args;  // process.args; options.executable stays empty (args[0], PATH lookup)
    bool terminal = false;          // process.terminal: the runtime adds options.terminal with the console socket
    std::optional<ctr::process::window_size> console_size;  // process.consoleSize
    // The rest of process, root, hostname, domainname, mounts, namespaces,
    // uid/gid maps, maskedPaths, readonlyPaths, devices, sysctl. The
    // runtime adds stdio, terminal, cgroup, seccomp and its own steps;
    // options.cgroup stays null.
    ctr::process::options options;
    std::optional<cgroup_request> cgroup;
    hook_lists hooks;
    std::map<std::string, std::string> annotations;
    std::optional<int> oom_score_adj;          // process.oomScoreAdj: the runtime writes it
    std::optional<nlohmann::json> seccomp;     // linux.seccomp as given
};

// Parses and maps a config.json text; `bundle` is the bundle directory
// (made absolute here; root.path and relative bind sources are taken from
// it). Reads the host where the mapping depends on it: the cgroup layout
// (the "cgroup" mount type), host device nodes (linux.devices), the
// caller's own namespaces (a sysctl needs one that is not the host's) and
// the rootfs under a tmpfs with tmpcopyup (it must hold nothing to copy).
// Throws config_error.
container_config parse_config(std::string_view json_text, const std::filesystem::path& bundle);

// Reads bundle/config.json and parses it. A missing or unreadable file is a
// config_error naming the path and the errno text.
container_config load_config(const std::filesystem::path& bundle);

// For `exec --process FILE`: maps a process object (what config.json's
// "process" holds) onto `onto`, normally a copy of the container's
// config. args, env and cwd are replaced (they are required); user,
// capabilities, rlimits, noNewPrivileges, oomScoreAdj, terminal and
// consoleSize replace the container's when given and keep them when absent,
// as runc's exec does. Throws config_error with paths below "process".
void apply_process(const nlohmann::json& process, container_config& onto);

}  // namespace ctr_run::oci
