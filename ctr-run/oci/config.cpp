// config.json -> ctr::process::options and the rest of container_config.
// docs/oci.md ("config.json fields") is the table of what maps where; the
// comments here say why where the mapping is not one to one.

#include "oci/config.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

namespace ctr_run::oci {

namespace {

using json = nlohmann::json;
using namespace json_field;
namespace fs = std::filesystem;
namespace mnt = ctr::mount;

[[noreturn]] void refuse(std::string_view path, std::string_view why) { fail(path, why); }

// A field that changes nothing when it is empty (a label on a host without
// that security module) and that ctr cannot apply otherwise.
void empty_or_refused(const json& object_value, std::string_view key, std::string_view path, std::string_view why) {
    if (const json* v = find(object_value, key)) {
        const std::string p = member(path, key);
        if (!string(*v, p).empty()) refuse(p, why);
    }
}

// A field ctr does not support at all: refused when present.
void absent_or_refused(const json& object_value, std::string_view key, std::string_view path, std::string_view why) {
    if (find(object_value, key)) refuse(member(path, key), why);
}

// ---- process ----------------------------------------------------------------

struct rlimit_name {
    std::string_view name;
    int resource;
};
constexpr std::array<rlimit_name, 16> rlimit_names{{
    {"RLIMIT_AS", RLIMIT_AS},         {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},     {"RLIMIT_FSIZE", RLIMIT_FSIZE},       {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
}};

ctr::caps::set capability_list(const json& value, const std::string& path) {
    ctr::caps::set out;
    const auto names = strings(value, path);
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto c = ctr::caps::from_name(names[i]);
        // from_name also takes "net_admin"; the spec spells CAP_NET_ADMIN.
        if (!c || names[i].rfind("CAP_", 0) != 0)
            refuse(element(path, i), "unknown capability " + describe(value[i]) +
                                         ", write a name such as CAP_NET_BIND_SERVICE (Linux 5.9's set)");
        out.add(*c);
    }
    return out;
}

// process.capabilities -> caps::policy. The library keeps one set for
// bounding, permitted and effective (`keep`), which is what a runc
// container ends up with after exec anyway: the kernel recomputes
// permitted and effective at exec (uid 0 gets the bounding set; another uid
// gets its ambient set and file capabilities within bounding). So
// effective and permitted are checked, not carried: they must lie within
// bounding, and ambient within permitted and inheritable, as the kernel
// demands of runc.
ctr::caps::policy capabilities(const json& value, const std::string& path) {
    object(value, path);
    const auto set_of = [&](const char* key) {
        const json* v = find(value, key);
        return v ? capability_list(*v, member(path, key)) : ctr::caps::set{};
    };
    const auto bounding = set_of("bounding");
    const auto effective = set_of("effective");
    const auto permitted = set_of("permitted");
    const auto inheritable = set_of("inheritable");
    const auto ambient = set_of("ambient");
    const auto outside = [&](ctr::caps::set part, ctr::caps::set whole, const char* key, const char* of) {
        if (!whole.contains(part))
            refuse(member(path, key), (part - whole).to_string() + " not in " + of +
                                          ", the kernel cannot grant it: add it there or remove it here");
    };
    outside(permitted, bounding, "permitted", "bounding");
    outside(effective, permitted, "effective", "permitted");
    outside(inheritable, bounding, "inheritable", "bounding");
    outside(ambient, permitted & inheritable, "ambient", "both permitted and inheritable");
    return {.keep = bounding, .inheritable = inheritable, .ambient = ambient};
}

void apply_user(const json& value, const std::string& path, ctr::process::options& o) {
    object(value, path);
    const auto uid = optional_integer<std::uint32_t>(value, "uid", path);
    const auto gid = optional_integer<std::uint32_t>(value, "gid", path);
    if (!uid) refuse(member(path, "uid"), "missing, give the user id the process runs as");
    if (!gid) refuse(member(path, "gid"), "missing, give the group id the process runs as");
    o.uid = *uid;
    o.gid = *gid;
    // setgroups always, as runc does: the runtime's own supplementary
    // groups must not reach the container.
    std::vector<gid_t> groups;
    if (const json* extra = find(value, "additionalGids")) {
        const std::string p = member(path, "additionalGids");
        array(*extra, p);
        for (std::size_t i = 0; i < extra->size(); ++i) groups.push_back(integer<std::uint32_t>((*extra)[i], element(p, i)));
    }
    o.groups = std::move(groups);
    if (const auto mask = optional_integer<unsigned>(value, "umask", path, 0, 0777)) o.umask = static_cast<mode_t>(*mask);
    empty_or_refused(value, "username", path, "a Windows field, give uid and gid instead");
}

std::vector<ctr::process::rlimit_setting> rlimits(const json& value, const std::string& path) {
    array(value, path);
    std::vector<ctr::process::rlimit_setting> out;
    std::set<int> seen;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string p = element(path, i);
        object(value[i], p);
        const json* type = find(value[i], "type");
        if (!type) refuse(member(p, "type"), "missing, give a limit such as RLIMIT_NOFILE");
        const std::string name = string(*type, member(p, "type"));
        int resource = -1;
        for (const auto& known : rlimit_names)
            if (known.name == name) resource = known.resource;
        if (resource < 0) refuse(member(p, "type"), "unknown limit " + describe(*type) + ", use an RLIMIT_* name");
        if (!seen.insert(resource).second) refuse(member(p, "type"), name + " given twice, keep one");
        const auto soft = optional_integer<std::uint64_t>(value[i], "soft", p);
        const auto hard = optional_integer<std::uint64_t>(value[i], "hard", p);
        if (!soft || !hard) refuse(p, "needs both soft and hard");
        if (*soft > *hard) refuse(member(p, "soft"), "above hard, lower it to at most " + std::to_string(*hard));
        out.push_back({resource, static_cast<rlim_t>(*soft), static_cast<rlim_t>(*hard)});
    }
    return out;
}

// The fields of a process object. `full`: config.json's (args, cwd
// required, everything replaced); otherwise an exec's onto a copy.
void map_process(const json& process, const std::string& path, container_config& out) {
    object(process, path);
    auto& o = out.options;

    const json* args = find(process, "args");
    if (!args) refuse(member(path, "args"), "missing, give the program and its arguments");
    out.args = strings(*args, member(path, "args"));
    if (out.args.empty() || out.args[0].empty())
        refuse(member(path, "args"), "empty, give at least the program to run");
    for (std::size_t i = 0; i < out.args.size(); ++i)
        if (out.args[i].find('\0') != std::string::npos) refuse(element(member(path, "args"), i), "contains a NUL byte");
    absent_or_refused(process, "commandLine", path, "a Windows field, give args instead");

    o.env = ctr::process::environment{.inherit = false};
    if (const json* env = find(process, "env")) {
        const std::string p = member(path, "env");
        const auto entries = strings(*env, p);
        for (std::size_t i = 0; i < entries.size(); ++i) {
            const auto equals = entries[i].find('=');
            if (equals == std::string::npos || equals == 0 || entries[i].find('\0') != std::string::npos)
                refuse(element(p, i), describe((*env)[i]) + " is not KEY=value, write it as KEY=value");
            o.env.set.emplace_back(entries[i].substr(0, equals), entries[i].substr(equals + 1));
        }
    }

    const auto cwd = optional_string(process, "cwd", path);
    if (!cwd) refuse(member(path, "cwd"), "missing, give the working directory as an absolute path");
    if (cwd->empty() || (*cwd)[0] != '/' || cwd->find('\0') != std::string::npos)
        refuse(member(path, "cwd"), describe(process["cwd"]) + " is not an absolute path, start it with /");
    o.cwd = *cwd;

    if (const auto terminal = optional_boolean(process, "terminal", path)) out.terminal = *terminal;
    if (const json* size = find(process, "consoleSize")) {
        const std::string p = member(path, "consoleSize");
        object(*size, p);
        const auto height = optional_integer<std::uint16_t>(*size, "height", p);
        const auto width = optional_integer<std::uint16_t>(*size, "width", p);
        if (!height || !width) refuse(p, "needs both height and width");
        out.console_size = ctr::process::window_size{.rows = *height, .columns = *width};
    }

    if (const json* user = find(process, "user")) apply_user(*user, member(path, "user"), o);
    if (const json* caps = find(process, "capabilities"))
        o.security.capabilities = capabilities(*caps, member(path, "capabilities"));
    if (const json* limits = find(process, "rlimits")) o.rlimits = rlimits(*limits, member(path, "rlimits"));
    if (const auto nnp = optional_boolean(process, "noNewPrivileges", path)) o.security.no_new_privileges = *nnp;
    if (const auto adj = optional_integer<int>(process, "oomScoreAdj", path, -1000, 1000)) out.oom_score_adj = *adj;

    empty_or_refused(process, "apparmorProfile", path,
                     "AppArmor profiles are not supported by ctr, run without one (podman --security-opt apparmor=unconfined)");
    empty_or_refused(process, "selinuxLabel", path,
                     "SELinux labels are not supported by ctr, run without one (podman --security-opt label=disable)");
    absent_or_refused(process, "ioPriority", path, "I/O priorities are not supported by ctr, remove the field");
    absent_or_refused(process, "scheduler", path, "scheduling policies are not supported by ctr, remove the field");
    absent_or_refused(process, "execCPUAffinity", path, "CPU affinity at exec is not supported by ctr, remove the field");
}

// ---- linux.namespaces and id maps ------------------------------------------

struct namespace_name {
    std::string_view name;
    ctr::ns::kind kind;
};
constexpr std::array<namespace_name, 8> namespace_names{{
    {"pid", ctr::ns::pid},
    {"network", ctr::ns::network},
    {"mount", ctr::ns::mount},
    {"ipc", ctr::ns::ipc},
    {"uts", ctr::ns::uts},
    {"user", ctr::ns::user},
    {"cgroup", ctr::ns::cgroup},
    {"time", ctr::ns::time},
}};

// What the config says of each namespace kind.
struct namespace_plan {
    ctr::ns::kinds created;
    std::map<ctr::ns::kind, std::string> joined;  // kind -> path
    bool listed(ctr::ns::kind k) const { return created.has(k) || joined.count(k) != 0; }
};

namespace_plan namespaces(const json& value, const std::string& path, ctr::process::options& o) {
    array(value, path);
    namespace_plan out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string p = element(path, i);
        object(value[i], p);
        const json* type = find(value[i], "type");
        if (!type) refuse(member(p, "type"), "missing, give one of pid, network, mount, ipc, uts, user, cgroup, time");
        const std::string name = string(*type, member(p, "type"));
        std::optional<ctr::ns::kind> kind;
        for (const auto& known : namespace_names)
            if (known.name == name) kind = known.kind;
        if (!kind)
            refuse(member(p, "type"), "unknown namespace " + describe(*type) +
                                          ", use pid, network, mount, ipc, uts, user, cgroup or time");
        if (out.listed(*kind)) refuse(member(p, "type"), name + " listed twice, keep one");
        const auto ns_path = optional_string(value[i], "path", p);
        if (ns_path && !ns_path->empty()) {
            if ((*ns_path)[0] != '/' || ns_path->find('\0') != std::string::npos)
                refuse(member(p, "path"), "not an absolute path, give the namespace file (/proc/PID/ns/..., /run/netns/...)");
            if (*kind == ctr::ns::mount)
                refuse(member(p, "path"), "ctr builds the root filesystem in a mount namespace of its own; remove the path");
            out.joined[*kind] = *ns_path;
            o.join.push_back(ctr::ns::existing::path(*kind, *ns_path));
        } else {
            out.created = out.created | *kind;
        }
    }
    o.namespaces = out.created;
    return out;
}

std::vector<ctr::ns::id_range> id_map(const json& value, const std::string& path) {
    array(value, path);
    std::vector<ctr::ns::id_range> out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string p = element(path, i);
        object(value[i], p);
        const auto inside = optional_integer<std::uint32_t>(value[i], "containerID", p);
        const auto outside = optional_integer<std::uint32_t>(value[i], "hostID", p);
        const auto count = optional_integer<std::uint32_t>(value[i], "size", p, 1);
        if (!inside || !outside || !count) refuse(p, "needs containerID, hostID and size");
        out.push_back({*inside, *outside, *count});
    }
    return out;
}

bool same_map(const std::vector<ctr::ns::id_range>& a, const std::vector<ctr::ns::id_range>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].inside != b[i].inside || a[i].outside != b[i].outside || a[i].count != b[i].count) return false;
    return true;
}

// Whether a joined namespace file is the caller's own namespace of that
// kind (then a sysctl would change the host's). A file that cannot be
// read is a config_error naming `field`.
bool is_own_namespace(ctr::ns::kind k, const std::string& path, const std::string& field) {
    struct stat joined {}, own {};
    const std::string self = "/proc/self/ns/" + std::string(ctr::ns::name(k));
    if (::stat(path.c_str(), &joined) != 0)
        refuse(field, "cannot check the namespace " + path + " (" + std::strerror(errno) +
                          "), which the sysctl would change: give a namespace file that exists");
    if (::stat(self.c_str(), &own) != 0) return true;  // cannot tell: refuse the sysctl
    return joined.st_ino == own.st_ino && joined.st_dev == own.st_dev;
}

// ---- mounts -------------------------------------------------------------------

enum class propagation { unset, private_mode, slave, other };

struct mount_flags {
    bool bind = false, rbind = false;
    bool read_only = false, nosuid = false, nodev = false, noexec = false, nosymfollow = false, nodiratime = false;
    mnt::access_time atime = mnt::access_time::kernel_default;
    bool atime_given = false;
    bool idmap = false, ridmap = false;
    propagation prop = propagation::unset;
    std::string prop_name;
    bool tmpcopyup = false;  // runc's and crun's: the tmpfs starts with what the directory held
    std::size_t tmpcopyup_index = 0;
    std::vector<std::string> data;  // the filesystem's own options
};

mount_flags mount_options(const std::vector<std::string>& options, const std::string& path) {
    mount_flags f;
    for (std::size_t i = 0; i < options.size(); ++i) {
        const std::string& o = options[i];
        // runc's recursive variants (rro, rnosuid, ...): the library's
        // attributes on a recursive bind apply to every mount below anyway.
        std::string_view flag = o;
        if (flag.size() > 2 && flag[0] == 'r' && (flag == "rro" || flag == "rrw" || flag == "rnosuid" ||
                                                  flag == "rsuid" || flag == "rnodev" || flag == "rdev" ||
                                                  flag == "rnoexec" || flag == "rexec" || flag == "rnosymfollow" ||
                                                  flag == "rsymfollow"))
            flag.remove_prefix(1);
        if (flag == "ro") f.read_only = true;
        else if (flag == "rw") f.read_only = false;
        else if (flag == "nosuid") f.nosuid = true;
        else if (flag == "suid") f.nosuid = false;
        else if (flag == "nodev") f.nodev = true;
        else if (flag == "dev") f.nodev = false;
        else if (flag == "noexec") f.noexec = true;
        else if (flag == "exec") f.noexec = false;
        else if (flag == "nosymfollow") f.nosymfollow = true;
        else if (flag == "symfollow") f.nosymfollow = false;
        else if (flag == "bind") f.bind = true;
        else if (flag == "rbind") f.bind = f.rbind = true;
        else if (flag == "relatime") f.atime = mnt::access_time::relative, f.atime_given = true;
        else if (flag == "noatime") f.atime = mnt::access_time::none, f.atime_given = true;
        else if (flag == "strictatime") f.atime = mnt::access_time::strict, f.atime_given = true;
        else if (flag == "atime") f.atime = mnt::access_time::kernel_default, f.atime_given = true;
        else if (flag == "nodiratime") f.nodiratime = true, f.atime_given = true;
        else if (flag == "diratime") f.nodiratime = false, f.atime_given = true;
        else if (flag == "async" || flag == "loud" || flag == "nomand" || flag == "nolazytime" ||
                 flag == "nostrictatime") {
            // The kernel's defaults: nothing to do.
        } else if (flag == "private" || flag == "rprivate") f.prop = propagation::private_mode, f.prop_name = o;
        else if (flag == "slave" || flag == "rslave") f.prop = propagation::slave, f.prop_name = o;
        else if (flag == "shared" || flag == "rshared" || flag == "unbindable" || flag == "runbindable")
            f.prop = propagation::other, f.prop_name = o;
        else if (flag == "tmpcopyup") f.tmpcopyup = true, f.tmpcopyup_index = i;
        else if (flag == "notmpcopyup") f.tmpcopyup = false;
        else if (flag == "idmap") f.idmap = true;
        else if (flag == "ridmap") f.idmap = f.ridmap = true;
        else if (flag == "sync" || flag == "dirsync" || flag == "mand" || flag == "lazytime" || flag == "silent" ||
                 flag == "remount" || flag == "norelatime" ||
                 flag == "copy-symlink" || flag.rfind("X-mount.", 0) == 0 || flag.rfind("x-mount.", 0) == 0)
            refuse(element(path, i), "option '" + o + "' is not supported by ctr, remove it");
        else if (o.empty() || o.find(',') != std::string::npos || o.find('\0') != std::string::npos)
            refuse(element(path, i), describe(json(o)) + " is not one mount option, give each option as its own item");
        else f.data.push_back(o);
    }
    return f;
}

enum class cgroup_layout { v2, v1_or_hybrid };

cgroup_layout host_cgroup_layout() {
    struct statfs st {};
    constexpr long cgroup2_magic = 0x63677270;
    if (::statfs("/sys/fs/cgroup", &st) == 0 && static_cast<long>(st.f_type) == cgroup2_magic) return cgroup_layout::v2;
    return cgroup_layout::v1_or_hybrid;
}

// ---- the whole config ---------------------------------------------------------

class mapper {
public:
    mapper(const json& doc, container_config& out) : doc_(doc), out_(out) {}

    void run() {
        object(doc_, "config.json");
        const auto version = optional_string(doc_, "ociVersion", "");
        if (!version) refuse("ociVersion", "missing, give the runtime-spec version (1.0.2)");
        if (version->rfind("1.", 0) != 0)
            refuse("ociVersion", describe(doc_["ociVersion"]) + " is not a 1.x version, ctr reads runtime-spec 1.0 to 1.3");
        out_.oci_version = *version;

        for (const char* other : {"solaris", "windows", "vm", "zos"})
            absent_or_refused(doc_, other, "", "not a Linux field, ctr runs Linux containers only");

        const json* linux_value = find(doc_, "linux");
        static const json empty_object = json::object();
        const json& linux_part = linux_value ? object(*linux_value, "linux") : empty_object;

        ns_ = namespaces(find(linux_part, "namespaces") ? linux_part["namespaces"] : json::array(), "linux.namespaces",
                         out_.options);
        if (!ns_.created.has(ctr::ns::mount))
            refuse("linux.namespaces", "no new mount namespace, ctr builds the root filesystem in one: add {\"type\": \"mount\"}");
        // OCI: args[0] is the container's pid 1 (runc has no init of its own).
        out_.options.init = false;

        id_maps(linux_part);
        if (const json* process = find(doc_, "process")) map_process(*process, "process", out_);
        else refuse("process", "missing, give the process to run");

        hostnames();
        root();
        mounts();
        default_devices();
        devices(linux_part);
        sysctls(linux_part);
        paths(linux_part, "readonlyPaths", false);
        paths(linux_part, "maskedPaths", true);
        resources(linux_part);
        time_offsets(linux_part);
        hooks();
        annotations();
        if (const json* seccomp = find(linux_part, "seccomp")) out_.seccomp = object(*seccomp, "linux.seccomp");

        empty_or_refused(linux_part, "mountLabel", "linux", "SELinux labels are not supported by ctr, run without one");
        for (const char* key : {"intelRdt", "personality", "memoryPolicy", "netDevices"})
            absent_or_refused(linux_part, key, "linux", "not supported by ctr, remove the field");
    }

private:
    void id_maps(const json& linux_part) {
        const json* uid = find(linux_part, "uidMappings");
        const json* gid = find(linux_part, "gidMappings");
        const bool user = ns_.created.has(ctr::ns::user);
        if ((uid || gid) && !user)
            refuse(uid ? "linux.uidMappings" : "linux.gidMappings",
                   "id mappings need a new user namespace, add {\"type\": \"user\"} to linux.namespaces");
        if (user && (!uid || !gid))
            refuse(!uid ? "linux.uidMappings" : "linux.gidMappings",
                   "missing, a new user namespace needs both uidMappings and gidMappings");
        if (!user) return;
        out_.options.id_maps.uid = id_map(*uid, "linux.uidMappings");
        out_.options.id_maps.gid = id_map(*gid, "linux.gidMappings");
        out_.options.id_maps.full_range_when_available = false;
    }

    void hostnames() {
        auto& o = out_.options;
        for (const auto& [key, target] : {std::pair{"hostname", &o.hostname}, std::pair{"domainname", &o.domainname}}) {
            const auto name = optional_string(doc_, key, "");
            if (!name || name->empty()) continue;
            if (!ns_.created.has(ctr::ns::uts))
                refuse(key, "setting it needs a new UTS namespace, add {\"type\": \"uts\"} to linux.namespaces");
            if (name->size() > 64 || name->find('\0') != std::string::npos)
                refuse(key, "longer than 64 bytes or with a NUL byte, shorten it");
            *target = *name;
        }
    }

    void root() {
        const json* root_value = find(doc_, "root");
        if (!root_value) refuse("root", "missing, give root.path, the container's root filesystem");
        object(*root_value, "root");
        const auto path = optional_string(*root_value, "path", "root");
        if (!path || path->empty()) refuse("root.path", "missing, give the root filesystem's directory");
        if (path->find('\0') != std::string::npos) refuse("root.path", "contains a NUL byte");
        const bool read_only = optional_boolean(*root_value, "readonly", "root").value_or(false);
        const fs::path rootfs = fs::path(*path).is_absolute() ? fs::path(*path) : out_.bundle / *path;

        mnt::plan plan{.rootfs = rootfs.lexically_normal().string(), .read_only_root = read_only};
        // runc's way: a missing mount point is made in the root, which for
        // an engine's overlay is the container's own upper layer. A
        // read-only root cannot take one, so it gets them in a skeleton.
        plan.missing_points =
            read_only ? mnt::missing_mount_points::make_in_skeleton : mnt::missing_mount_points::make_in_root;

        const json& linux_part = find(doc_, "linux") ? doc_["linux"] : json::object();
        const auto rootfs_propagation =
            linux_part.is_object() ? optional_string(linux_part, "rootfsPropagation", "linux") : std::nullopt;
        if (rootfs_propagation && !rootfs_propagation->empty()) {
            const std::string& p = *rootfs_propagation;
            if (p == "private" || p == "rprivate") plan.propagation = mnt::propagation_mode::private_mounts;
            else if (p == "slave" || p == "rslave") plan.propagation = mnt::propagation_mode::slave;
            else
                refuse("linux.rootfsPropagation",
                       describe(linux_part["rootfsPropagation"]) + " is not supported, use private or slave (rprivate, rslave)");
        }
        out_.options.root = std::move(plan);
    }

    void mounts() {
        const json* list = find(doc_, "mounts");
        if (!list) return;
        array(*list, "mounts");
        for (std::size_t i = 0; i < list->size(); ++i) one_mount((*list)[i], element("mounts", i));
    }

    void one_mount(const json& m, const std::string& path) {
        object(m, path);
        auto& plan = *out_.options.root;
        const auto destination = optional_string(m, "destination", path);
        if (!destination || destination->empty()) refuse(member(path, "destination"), "missing, give the mount point");
        if ((*destination)[0] != '/' || destination->find('\0') != std::string::npos)
            refuse(member(path, "destination"), describe(m["destination"]) + " is not an absolute path, start it with /");
        const std::string type = optional_string(m, "type", path).value_or("");
        const std::string source = optional_string(m, "source", path).value_or("");
        if (source.find('\0') != std::string::npos) refuse(member(path, "source"), "contains a NUL byte");
        std::vector<std::string> options;
        if (const json* o = find(m, "options")) options = strings(*o, member(path, "options"));
        const std::string options_path = member(path, "options");
        mount_flags f = mount_options(options, options_path);

        const bool is_bind = type == "bind" || f.bind;
        const bool plan_slave = plan.propagation == mnt::propagation_mode::slave;
        if (f.prop == propagation::other || (f.prop == propagation::slave && !plan_slave) ||
            (f.prop == propagation::private_mode && plan_slave))
            refuse(options_path, "propagation '" + f.prop_name + "' is not supported here: ctr gives every mount the "
                                 "propagation of linux.rootfsPropagation (" +
                                     (plan_slave ? "slave" : "private") + "), set that or remove the option");
        const bool mappings = find(m, "uidMappings") || find(m, "gidMappings");

        if (is_bind) {
            if (!f.data.empty())
                refuse(options_path, "option '" + f.data.front() + "' is not a bind option, remove it");
            if (f.atime_given)
                refuse(options_path, "access-time options on a bind are not supported (a bind keeps its source's), remove them");
            if (f.nodiratime) refuse(options_path, "nodiratime on a bind is not supported, remove it");
            if (f.tmpcopyup) refuse(element(options_path, f.tmpcopyup_index), "tmpcopyup is for tmpfs mounts, remove it");
            if (source.empty()) refuse(member(path, "source"), "missing, give the host path to bind");
            const fs::path from = fs::path(source).is_absolute() ? fs::path(source) : out_.bundle / source;
            mnt::bind_options b{.read_only = f.read_only, .recursive = f.rbind, .nosuid = f.nosuid, .nodev = f.nodev,
                                .noexec = f.noexec};
            b.nosymfollow = f.nosymfollow;
            if (f.idmap || mappings) b.idmap = bind_idmap(m, path);
            plan.bind(from.lexically_normal().string(), *destination, b);
            return;
        }
        if (f.idmap || mappings) refuse(options_path, "idmapped mounts are supported for binds only");
        if (type.empty()) refuse(member(path, "type"), "missing, give the filesystem type (tmpfs, proc, ...) or bind");
        if (type.find(',') != std::string::npos || type.find('\0') != std::string::npos)
            refuse(member(path, "type"), describe(m["type"]) + " is not a filesystem type");
        if (f.tmpcopyup) tmpcopyup(type, *destination, element(options_path, f.tmpcopyup_index));
        if (type == "cgroup" || type == "cgroup2") {
            cgroup_mount(source, *destination, f, path);
            return;
        }
        if (*destination == "/dev") dev_is_tmpfs_ = true;
        if (type == "proc" && *destination == "/proc") has_proc_ = true;
        plan.filesystem(type, source, *destination, filesystem_options(f));
    }

    // tmpcopyup (Podman adds it to every --tmpfs): the new tmpfs starts with
    // a copy of what the directory under it held. ctr does not copy, so it
    // takes the option only where there is nothing to copy: the directory
    // is missing from the root or empty. The path is walked in the rootfs
    // without following symlinks (a symlink could point at the host's
    // files); one on the way is refused too.
    void tmpcopyup(const std::string& type, const std::string& destination, const std::string& field) {
        if (type != "tmpfs") refuse(field, "tmpcopyup is for tmpfs mounts, remove it");
        fs::path at = out_.options.root->rootfs;
        for (const auto& part : fs::path(destination).relative_path()) {
            if (part == "." || part == "..") refuse(field, "tmpcopyup on a path with . or .., write the path plainly");
            at /= part;
            std::error_code ec;
            const auto st = fs::symlink_status(at, ec);
            if (st.type() == fs::file_type::not_found) return;  // nothing there to copy
            if (ec || st.type() == fs::file_type::symlink)
                refuse(field, "tmpcopyup over " + destination + ", which goes through a symlink or cannot be read: "
                              "ctr does not copy into a tmpfs, use notmpcopyup");
        }
        std::error_code ec;
        if (!fs::is_directory(at, ec) || !fs::is_empty(at, ec) || ec)
            refuse(field, "tmpcopyup over " + destination + ", which is not an empty directory in the root: ctr does "
                          "not copy into a tmpfs, use notmpcopyup (podman --tmpfs " + destination + ":notmpcopyup)");
    }

    static mnt::filesystem_options filesystem_options(const mount_flags& f) {
        return {.read_only = f.read_only, .nosuid = f.nosuid, .nodev = f.nodev, .noexec = f.noexec,
                .nodiratime = f.nodiratime, .nosymfollow = f.nosymfollow, .atime = f.atime, .data = f.data};
    }

    // An idmapped bind: the library maps through the container's own user
    // namespace, so the mount's mappings must be absent or those of
    // linux.uidMappings and linux.gidMappings.
    mnt::idmapping bind_idmap(const json& m, const std::string& path) {
        if (!ns_.created.has(ctr::ns::user))
            refuse(member(path, "options"), "an idmapped bind needs a new user namespace, add {\"type\": \"user\"}");
        for (const auto& [key, container_map] : {std::pair{"uidMappings", &out_.options.id_maps.uid},
                                                 std::pair{"gidMappings", &out_.options.id_maps.gid}}) {
            if (const json* v = find(m, key))
                if (!same_map(id_map(*v, member(path, key)), *container_map))
                    refuse(member(path, key), "ctr idmaps a bind through the container's user namespace only: give "
                                              "the mappings of linux." + std::string(key) + " or none");
        }
        return mnt::idmapping::required;
    }

    // The "cgroup" type. Pure cgroup v2: a cgroup2 filesystem, which in a
    // cgroup namespace shows the container's own group as its root (runc
    // does the same). v1 and hybrid hosts: the host's /sys/fs/cgroup, bound
    // recursively (read-only when asked): the whole host hierarchy is
    // visible, where runc binds only the container's own group of each
    // controller. docs/oci.md says so.
    void cgroup_mount(const std::string& source, const std::string& destination, const mount_flags& f,
                      const std::string& path) {
        auto& plan = *out_.options.root;
        if (!f.data.empty())
            refuse(member(path, "options"), "option '" + f.data.front() + "' is not supported on a cgroup mount, remove it");
        const bool own_user_namespace = ns_.created.has(ctr::ns::user);
        if (host_cgroup_layout() == cgroup_layout::v2 && (ns_.created.has(ctr::ns::cgroup) || !own_user_namespace)) {
            plan.filesystem("cgroup2", source.empty() || source == "cgroup" ? "cgroup2" : source, destination,
                            filesystem_options(f));
            return;
        }
        mnt::bind_options b{.read_only = f.read_only, .recursive = true, .nosuid = f.nosuid, .nodev = f.nodev,
                            .noexec = f.noexec};
        plan.bind("/sys/fs/cgroup", destination, b);
    }

    // The devices every container has (runtime-spec config-linux.md,
    // "Default Devices"), when /dev is a filesystem of the config's own:
    // bound from the host, as runc does in a user namespace, with the
    // /dev/fd and stdio symlinks and /dev/ptmx into the container's devpts.
    void default_devices() {
        if (!dev_is_tmpfs_) return;
        auto& plan = *out_.options.root;
        for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
            const std::string host = std::string("/dev/") + node;
            struct stat st {};
            if (::stat(host.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) continue;
            listed_devices_.insert(host);
            plan.bind(host, host, {.recursive = false});
        }
        for (const auto& [text, name] : {std::pair{"/proc/self/fd", "/dev/fd"}, std::pair{"/proc/self/fd/0", "/dev/stdin"},
                                         std::pair{"/proc/self/fd/1", "/dev/stdout"},
                                         std::pair{"/proc/self/fd/2", "/dev/stderr"}, std::pair{"pts/ptmx", "/dev/ptmx"}})
            plan.symlink(text, name);
    }

    // linux.devices: each node bound from the host's node of the same path,
    // type and numbers (runc makes them with mknod as root, binds them in a
    // user namespace). A node the host lacks, or one whose mode or owner
    // would differ, is refused: a bind cannot change them.
    void devices(const json& linux_part) {
        const json* list = find(linux_part, "devices");
        if (!list) return;
        array(*list, "linux.devices");
        for (std::size_t i = 0; i < list->size(); ++i) {
            const std::string p = element("linux.devices", i);
            const json& d = object((*list)[i], p);
            const auto dev_path = optional_string(d, "path", p);
            if (!dev_path || dev_path->empty() || (*dev_path)[0] != '/' || dev_path->find('\0') != std::string::npos)
                refuse(member(p, "path"), "missing or not absolute, give the device's path in the container");
            const auto type = optional_string(d, "type", p);
            if (!type || (*type != "c" && *type != "b" && *type != "u"))
                refuse(member(p, "type"), "expected \"c\", \"b\" or \"u\" (fifos are not supported)");
            const auto major = optional_integer<std::int64_t>(d, "major", p, 0, 0xfffff);
            const auto minor = optional_integer<std::int64_t>(d, "minor", p, 0, 0xfffff);
            if (!major || !minor) refuse(p, "needs major and minor");
            // The host's node at the same path, else the one udev lists by
            // number (podman --device /dev/sda:/dev/xvda names the container's path).
            const bool is_block = *type == "b";
            const auto matches = [&](const struct stat& st) {
                return (is_block ? S_ISBLK(st.st_mode) : S_ISCHR(st.st_mode)) &&
                       static_cast<std::int64_t>(::major(st.st_rdev)) == *major &&
                       static_cast<std::int64_t>(::minor(st.st_rdev)) == *minor;
            };
            const std::string by_number = std::string(is_block ? "/dev/block/" : "/dev/char/") +
                                          std::to_string(*major) + ":" + std::to_string(*minor);
            struct stat st {};
            std::string source;
            for (const std::string& candidate : {*dev_path, by_number})
                if (::stat(candidate.c_str(), &st) == 0 && matches(st)) {
                    source = candidate;
                    break;
                }
            if (source.empty())
                refuse(p, "the host has no " + std::string(is_block ? "block" : "character") + " device " +
                              std::to_string(*major) + ":" + std::to_string(*minor) + " at " + *dev_path + " or " +
                              by_number + ", and ctr binds device nodes from the host's");
            if (const auto mode = optional_integer<std::uint32_t>(d, "fileMode", p, 0, 07777))
                if ((st.st_mode & 07777) != *mode)
                    refuse(member(p, "fileMode"), "differs from the host node's mode, which a bind keeps; remove it");
            if (const auto uid = optional_integer<std::uint32_t>(d, "uid", p))
                if (st.st_uid != *uid) refuse(member(p, "uid"), "differs from the host node's owner, which a bind keeps; remove it");
            if (const auto gid = optional_integer<std::uint32_t>(d, "gid", p))
                if (st.st_gid != *gid) refuse(member(p, "gid"), "differs from the host node's group, which a bind keeps; remove it");
            if (!listed_devices_.insert(*dev_path).second) continue;  // a default device, bound already
            out_.options.root->bind(source, *dev_path, {.recursive = false});
        }
    }

    // linux.sysctl: written under the container's /proc/sys after its
    // mounts, before readonlyPaths. Only keys that a namespace of the
    // container's own holds, as runc allows: the IPC ones, net.* and the
    // UTS names; a joined namespace must not be the caller's.
    void sysctls(const json& linux_part) {
        const json* map = find(linux_part, "sysctl");
        if (!map) return;
        object(*map, "linux.sysctl");
        for (const auto& [key, value] : map->items()) {
            const std::string p = "linux.sysctl." + key;
            const std::string text = string(value, p);
            if (key.empty() || key.find("..") != std::string::npos || key.find("//") != std::string::npos ||
                key.front() == '.' || key.back() == '.' || key.front() == '/' || key.back() == '/' ||
                key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./") !=
                    std::string::npos)
                refuse(p, "not a sysctl name, write it as net.ipv4.ip_forward");
            if (text.find('\0') != std::string::npos) refuse(p, "the value contains a NUL byte");
            // runc's two spellings: net.ipv4.ip_forward, or with slashes
            // where a name holds a dot (net/ipv4/conf/eth0.100/forwarding).
            const bool slashes = key.find('/') != std::string::npos;
            std::string name = key;
            if (slashes)
                for (char& c : name)
                    if (c == '/') c = '.';
            std::optional<ctr::ns::kind> holder;
            static const std::set<std::string> ipc_keys = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
                                                           "kernel.sem",    "kernel.shmall", "kernel.shmmax",
                                                           "kernel.shmmni", "kernel.shm_rmid_forced"};
            if (ipc_keys.count(name) || name.rfind("fs.mqueue.", 0) == 0) holder = ctr::ns::ipc;
            else if (name.rfind("net.", 0) == 0) holder = ctr::ns::network;
            else if (name == "kernel.hostname" || name == "kernel.domainname") holder = ctr::ns::uts;
            if (!holder) refuse(p, "not a namespaced sysctl, which would change the host; remove it");
            const auto joined = ns_.joined.find(*holder);
            const bool own = ns_.created.has(*holder) || (joined != ns_.joined.end() && !is_own_namespace(*holder, joined->second, p));
            if (!own)
                refuse(p, "needs a " + std::string(ctr::ns::name(*holder)) +
                              " namespace that is not the host's, add it to linux.namespaces");
            if (!has_proc_) refuse(p, "ctr writes sysctls under /proc/sys: add a proc mount at /proc to mounts");
            std::string file = key;
            if (!slashes)
                for (char& c : file)
                    if (c == '.') c = '/';
            out_.options.root->write("/proc/sys/" + file, text);
        }
    }

    // readonlyPaths, then maskedPaths, as runc orders them: after the
    // mounts and sysctls, so that /proc/sys is written before it is sealed.
    void paths(const json& linux_part, const char* key, bool mask) {
        const json* list = find(linux_part, key);
        if (!list) return;
        const std::string p = member("linux", key);
        const auto items = strings(*list, p);
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (items[i].empty() || items[i][0] != '/' || items[i].find('\0') != std::string::npos)
                refuse(element(p, i), describe((*list)[i]) + " is not an absolute path, start it with /");
            if (mask) out_.options.root->mask(items[i]);
            else out_.options.root->read_only(items[i]);
        }
    }

    void time_offsets(const json& linux_part) {
        const json* offsets = find(linux_part, "timeOffsets");
        if (!offsets) return;
        object(*offsets, "linux.timeOffsets");
        if (!ns_.created.has(ctr::ns::time))
            refuse("linux.timeOffsets", "needs a new time namespace, add {\"type\": \"time\"} to linux.namespaces");
        for (const auto& [clock, value] : offsets->items()) {
            const std::string p = "linux.timeOffsets." + clock;
            if (clock != "monotonic" && clock != "boottime") refuse(p, "unknown clock, use monotonic or boottime");
            object(value, p);
            const auto secs = optional_integer<std::int64_t>(value, "secs", p).value_or(0);
            if (optional_integer<std::uint32_t>(value, "nanosecs", p).value_or(0) != 0)
                refuse(member(p, "nanosecs"), "ctr sets whole seconds only, make it 0");
            (clock == "monotonic" ? out_.options.time_offsets.monotonic_seconds
                                  : out_.options.time_offsets.boottime_seconds) = secs;
        }
    }

    void resources(const json& linux_part) {
        const json* path_value = find(linux_part, "cgroupsPath");
        const json* res = find(linux_part, "resources");
        if (!path_value && !res) return;
        cgroup_request request;
        if (path_value) {
            request.path = string(*path_value, "linux.cgroupsPath");
            if (request.path.find(':') != std::string::npos)
                refuse("linux.cgroupsPath", describe(*path_value) +
                                                " is systemd's form (slice:prefix:name), which ctr does not support: use "
                                                "the cgroupfs manager (podman --cgroup-manager=cgroupfs)");
            if (request.path.find('\0') != std::string::npos || ("/" + request.path + "/").find("/../") != std::string::npos)
                refuse("linux.cgroupsPath", describe(*path_value) + " has '..' or a NUL byte, give a plain path");
        }
        if (res) map_resources(object(*res, "linux.resources"), request);
        out_.cgroup = std::move(request);
    }

    static void map_resources(const json& r, cgroup_request& out) {
        const std::string base = "linux.resources";
        auto& l = out.limits;
        if (const json* memory = find(r, "memory")) {
            const std::string p = member(base, "memory");
            object(*memory, p);
            const auto limit = optional_integer<std::int64_t>(*memory, "limit", p, -1);
            if (limit && *limit > 0) l.memory_max = std::to_string(*limit);
            if (const auto swap = optional_integer<std::int64_t>(*memory, "swap", p, -1)) {
                // The spec's swap is memory plus swap (cgroup v1's
                // memsw); the library's swap_max is the swap alone.
                if (*swap == -1) l.swap_max = "max";
                else if (*swap > 0) {
                    if (!limit || *limit <= 0)
                        refuse(member(p, "swap"), "a swap limit needs memory.limit (swap counts memory plus swap)");
                    if (*swap < *limit) refuse(member(p, "swap"), "below memory.limit, it counts memory plus swap: raise it");
                    l.swap_max = std::to_string(*swap - *limit);
                }
            }
            for (const char* key : {"reservation", "kernel", "kernelTCP", "swappiness"})
                absent_or_refused(*memory, key, p, "not supported by ctr's cgroup layer, remove it");
            if (optional_boolean(*memory, "disableOOMKiller", p).value_or(false))
                refuse(member(p, "disableOOMKiller"), "not supported by ctr, remove it");
            if (optional_boolean(*memory, "useHierarchy", p).value_or(false))
                refuse(member(p, "useHierarchy"), "not supported by ctr, remove it");
            if (optional_boolean(*memory, "checkBeforeUpdate", p).value_or(false))
                refuse(member(p, "checkBeforeUpdate"), "not supported by ctr, remove it");
        }
        if (const json* cpu = find(r, "cpu")) {
            const std::string p = member(base, "cpu");
            object(*cpu, p);
            if (const auto shares = optional_integer<std::uint64_t>(*cpu, "shares", p); shares && *shares > 0) {
                // runc's conversion from v1 shares (2..262144) to a v2 weight.
                const std::uint64_t s = std::min<std::uint64_t>(std::max<std::uint64_t>(*shares, 2), 262144);
                l.cpu_weight = static_cast<std::uint32_t>(1 + ((s - 2) * 9999) / 262142);
            }
            const auto period = optional_integer<std::uint64_t>(*cpu, "period", p, 1000, 1000000);
            if (period) l.cpu_period = std::chrono::microseconds(*period);
            if (const auto quota = optional_integer<std::int64_t>(*cpu, "quota", p, -1); quota && *quota > 0)
                l.cpus = static_cast<double>(*quota) / static_cast<double>(period.value_or(100000));
            if (const auto cpus = optional_string(*cpu, "cpus", p); cpus && !cpus->empty()) l.cpuset_cpus = *cpus;
            if (const auto mems = optional_string(*cpu, "mems", p); mems && !mems->empty()) l.cpuset_mems = *mems;
            for (const char* key : {"realtimeRuntime", "realtimePeriod", "idle", "burst"})
                if (const json* v = find(*cpu, key); v && !(v->is_number() && *v == 0))
                    refuse(member(p, key), "not supported by ctr's cgroup layer, remove it");
        }
        if (const json* pids = find(r, "pids")) {
            const std::string p = member(base, "pids");
            object(*pids, p);
            if (const auto limit = optional_integer<std::int64_t>(*pids, "limit", p); limit && *limit > 0)
                l.pids_max = static_cast<std::uint64_t>(*limit);
        }
        if (const json* io = find(r, "blockIO")) block_io(*io, member(base, "blockIO"), l);
        for (const char* key : {"hugepageLimits", "rdma"})
            if (const json* v = find(r, key); v && !v->empty())
                refuse(member(base, key), "not supported by ctr's cgroup layer, remove it");
        if (const json* v = find(r, "unified"); v && !v->empty())
            refuse(member(base, "unified"), "raw cgroup v2 files are not supported by ctr, remove them");
        if (const json* v = find(r, "network"); v && !v->empty())
            refuse(member(base, "network"), "net_cls and net_prio are not supported by ctr, remove it");
        if (const json* devices = find(r, "devices")) device_rules(*devices, member(base, "devices"), out.devices);
    }

    static void block_io(const json& io, const std::string& p, ctr::cgroup::limits& l) {
        object(io, p);
        if (const auto weight = optional_integer<std::uint32_t>(io, "weight", p, 0, 10000); weight && *weight > 0)
            l.io_weight = *weight;
        for (const char* key : {"leafWeight", "weightDevice"})
            if (const json* v = find(io, key); v && !(v->is_number() && *v == 0) && !(v->is_array() && v->empty()))
                refuse(member(p, key), "not supported by ctr's cgroup layer, remove it");
        const auto entry_for = [&](const std::string& device) -> ctr::cgroup::io_device_limit& {
            for (auto& e : l.io_max)
                if (e.device == device) return e;
            return l.io_max.emplace_back(ctr::cgroup::io_device_limit{.device = device});
        };
        for (const char* key : {"throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                                "throttleWriteIOPSDevice"}) {
            const json* list = find(io, key);
            if (!list) continue;
            const std::string lp = member(p, key);
            array(*list, lp);
            for (std::size_t i = 0; i < list->size(); ++i) {
                const std::string ep = element(lp, i);
                const json& e = object((*list)[i], ep);
                const auto major = optional_integer<std::int64_t>(e, "major", ep, 0);
                const auto minor = optional_integer<std::int64_t>(e, "minor", ep, 0);
                const auto rate = optional_integer<std::uint64_t>(e, "rate", ep);
                if (!major || !minor || !rate) refuse(ep, "needs major, minor and rate");
                auto& limit = entry_for(std::to_string(*major) + ":" + std::to_string(*minor));
                const std::string_view k = key;
                if (k == "throttleReadBpsDevice") limit.read_bps = std::to_string(*rate);
                else if (k == "throttleWriteBpsDevice") limit.write_bps = std::to_string(*rate);
                else if (k == "throttleReadIOPSDevice") limit.read_iops = *rate;
                else limit.write_iops = *rate;
            }
        }
    }

    static void device_rules(const json& list, const std::string& p, std::vector<device_rule>& out) {
        array(list, p);
        for (std::size_t i = 0; i < list.size(); ++i) {
            const std::string ep = element(p, i);
            const json& e = object(list[i], ep);
            device_rule rule;
            const auto allow = optional_boolean(e, "allow", ep);
            if (!allow) refuse(member(ep, "allow"), "missing, say true or false");
            rule.allow = *allow;
            const std::string type = optional_string(e, "type", ep).value_or("a");
            if (type != "a" && type != "c" && type != "b") refuse(member(ep, "type"), "expected \"a\", \"c\" or \"b\"");
            rule.type = type[0];
            for (const auto& [key, target] : {std::pair{"major", &rule.major}, std::pair{"minor", &rule.minor}})
                if (const auto v = optional_integer<std::int64_t>(e, key, ep, -1); v && *v >= 0) *target = *v;
            rule.access = optional_string(e, "access", ep).value_or("rwm");
            if (rule.access.empty() || rule.access.find_first_not_of("rwm") != std::string::npos)
                refuse(member(ep, "access"), describe(e["access"]) + " is not a subset of \"rwm\"");
            out.push_back(std::move(rule));
        }
    }

    static hook one_hook(const json& value, const std::string& p) {
        object(value, p);
        hook h;
        const auto hook_path = optional_string(value, "path", p);
        if (!hook_path || hook_path->empty() || (*hook_path)[0] != '/')
            refuse(member(p, "path"), "missing or not absolute, give the hook program's absolute path");
        h.path = *hook_path;
        if (const json* args = find(value, "args")) h.args = strings(*args, member(p, "args"));
        if (const json* env = find(value, "env")) h.env = strings(*env, member(p, "env"));
        if (const auto timeout = optional_integer<std::int64_t>(value, "timeout", p, 1, 86400 * 365))
            h.timeout = std::chrono::seconds(*timeout);
        return h;
    }

    void hooks() {
        const json* all = find(doc_, "hooks");
        if (!all) return;
        object(*all, "hooks");
        const std::pair<const char*, std::vector<hook>*> kinds[] = {
            {"prestart", &out_.hooks.prestart},
            {"createRuntime", &out_.hooks.create_runtime},
            {"createContainer", &out_.hooks.create_container},
            {"startContainer", &out_.hooks.start_container},
            {"poststart", &out_.hooks.poststart},
            {"poststop", &out_.hooks.poststop},
        };
        for (const auto& [key, list] : kinds) {
            const json* v = find(*all, key);
            if (!v) continue;
            const std::string p = member("hooks", key);
            array(*v, p);
            for (std::size_t i = 0; i < v->size(); ++i) list->push_back(one_hook((*v)[i], element(p, i)));
        }
    }

    void annotations() {
        const json* all = find(doc_, "annotations");
        if (!all) return;
        object(*all, "annotations");
        for (const auto& [key, value] : all->items()) out_.annotations[key] = string(value, "annotations." + key);
    }

    const json& doc_;
    container_config& out_;
    namespace_plan ns_;
    bool dev_is_tmpfs_ = false;
    bool has_proc_ = false;
    std::set<std::string> listed_devices_;
};

}  // namespace

container_config parse_config(std::string_view json_text, const std::filesystem::path& bundle) {
    json doc;
    try {
        doc = json::parse(json_text.begin(), json_text.end());
    } catch (const json::exception& e) {
        // A syntax error (parse_error) or a number too large for a double
        // (out_of_range 406, found by tests/fuzz/oci_config). e.what() reads
        // "[json.exception.parse_error.101] parse error at line 1, column 2:
        // ..."; the part after "] " is what a user needs.
        std::string what = e.what();
        if (const auto end = what.find("] "); end != std::string::npos) what = what.substr(end + 2);
        throw config_error("config.json: not valid JSON (" + what + "), check the file's syntax");
    }
    container_config out;
    out.bundle = fs::absolute(bundle).lexically_normal();
    mapper(doc, out).run();
    return out;
}

container_config load_config(const std::filesystem::path& bundle) {
    const fs::path file = bundle / "config.json";
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        const int error = errno;
        throw config_error(file.string() + ": cannot be read (" + std::strerror(error) +
                           "), give the bundle directory that holds config.json");
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw config_error(file.string() + ": cannot be read (" + std::strerror(errno) + ")");
    return parse_config(text.str(), bundle);
}

void apply_process(const nlohmann::json& process, container_config& onto) {
    map_process(process, "process", onto);
}

}  // namespace ctr_run::oci
