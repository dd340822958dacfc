#pragma once
// ctr::mount: mounts owned by a guard, and the root-filesystem plan that a
// sandboxed child builds and enters before exec.
//
// A plan is an ordered list of operations. prepare() validates it in the
// parent (sources and layers exist, sizes parse, paths are sane) and turns
// it into detail::mount_step data that the child runs with
// detail::run_mount_step, async-signal-safely, in its own mount namespace:
//
//   1. every mount of the namespace becomes private (or slave);
//   2. the new root is mounted on top of "/": a recursive bind of the rootfs
//      (or of the host's "/"), or an overlay; then the tmpfs skeletons that
//      missing mount points are made in (plan::missing_points);
//   3. the operations, in the order given, with targets resolved inside the
//      new root (symlinks in the rootfs cannot lead out of it);
//   4. the masked and read-only paths that come with a fresh /proc or /sys;
//   5. a read-only root's skeletons made read-only;
//   6. pivot_root into the new root, the old one detached (or chroot, when
//      asked for by name).
//
// docs/mounts.md has the details: the default plan, the symlink-safety
// design, the new mount API and its fallback, and what works rootless.

#include <ctr/detail/file.hpp>
#include <ctr/detail/mount_plan.hpp>
#include <ctr/detail/mount_skeleton.hpp>
#include <ctr/detail/mount_step.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr::mount {

// A plan validated and turned into the steps a child runs. Move-only: the
// steps point into strings it owns, so it must outlive the child's use of
// steps() (in spawn: until the child has exec'd or failed).
class prepared_plan {
public:
    prepared_plan() = default;
    prepared_plan(prepared_plan&&) = default;
    prepared_plan& operator=(prepared_plan&&) = default;
    prepared_plan(const prepared_plan&) = delete;
    prepared_plan& operator=(const prepared_plan&) = delete;
    ~prepared_plan() = default;

    template <class = void>
    std::span<const ctr::detail::mount_step> steps() const noexcept { return {steps_.data(), steps_.size()}; }
    // The host directory that becomes "/" ("/" for the host's own root).
    template <class = void>
    const std::string& root() const noexcept { return root_; }

    // The binds the parent must make for the child (bind_options::idmap),
    // in the order of their steps' detached_slot.
    struct detached_bind {
        const char* source;
        bool recursive;
        std::uint64_t attributes;  // MOUNT_ATTR_* to set with the idmap
        bool required;             // else a plain bind where the filesystem cannot idmap
        std::string shown;         // the target, for errors
    };
    template <class = void>
    const std::vector<detached_bind>& detached_binds() const noexcept { return detached_; }

    // The error that step `index` failing with `errno_value` reports: its
    // step (or the finer one the child recorded in ctx), its path, and the
    // kernel's message or a hint.
    template <class = void>
    ctr::error error_for(std::size_t index, int errno_value, const ctr::detail::mount_context* ctx = nullptr) const;

private:
    friend class detail::step_builder;

    struct step_info {
        std::string path;    // what the error names
        std::string detail;  // e.g. "source '/srv/data'"
    };

    // What the steps point into, so it must never move: each string on the
    // heap by itself (a moved short string would move its characters), and
    // the lists in vectors whose buffers stay where they are when the outer
    // vector grows and moves them. (No std::deque: every includer would
    // parse its header for these three members.)
    std::vector<std::unique_ptr<std::string>> strings_;
    std::vector<std::vector<const char*>> lists_;
    std::vector<std::vector<ctr::detail::mount_param>> params_;
    std::vector<ctr::detail::mount_step> steps_;
    std::vector<step_info> info_;
    std::vector<detached_bind> detached_;
    std::string root_;
};

namespace detail {

// The masked and read-only paths of runc's default spec, relative to where
// proc and sysfs are mounted.
inline constexpr const char* masked_proc_paths[] = {"acpi",         "asound",      "kcore",       "keys",
                                                     "latency_stats", "timer_list", "timer_stats", "sched_debug",
                                                     "scsi"};
inline constexpr const char* read_only_proc_paths[] = {"bus", "fs", "irq", "sys", "sysrq-trigger"};
inline constexpr const char* masked_sys_paths[] = {"firmware", "devices/virtual/powercap"};
inline constexpr const char* dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

// Whether the kernel has mount_setattr (5.12+). When it has, a child never
// needs the submount lists, and the parent does not read mountinfo.
template <class = void>
inline bool kernel_has_mount_setattr() {
    static const bool has = raw::call(SYS_mount_setattr, -1, "", 0, nullptr, 0) != -ENOSYS;
    return has;
}

template <class = void>
inline std::optional<struct stat> host_stat(const std::string& path) {
    struct stat st {};
    if (sys::fstatat(AT_FDCWD, path.c_str(), &st, 0) < 0) return std::nullopt;
    return st;
}

template <class = void>
inline std::string current_directory() {
    char buffer[mount_path_max];
    if (sys::getcwd(buffer, sizeof buffer) < 0) return "/";
    return buffer;
}

// Collapses repeated and trailing slashes; keeps "." and ".." (they are
// resolved inside the root, where they cannot climb out).
template <class = void>
inline std::string squeeze_slashes(std::string_view path) {
    std::string out;
    for (char c : path)
        if (c != '/' || out.empty() || out.back() != '/') out.push_back(c);
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

// Absolute (a relative path is taken from the current directory); ".." and
// symlinks are left for the kernel, which resolves them in
// canonical_host_path (collapsing ".." by text would be wrong past a symlink).
template <class = void>
inline std::string absolute_host_path(const std::string& path) {
    return squeeze_slashes(path.empty() || path[0] != '/' ? current_directory() + "/" + path : path);
}

// The host path with its symlinks resolved, as the kernel sees the object
// (through /proc/self/fd); the lexical absolute path if that cannot be read.
template <class = void>
inline std::string canonical_host_path(const std::string& path) {
    const std::string absolute = absolute_host_path(path);
    const long fd = sys::openat(AT_FDCWD, absolute.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) return absolute;
    char name[32];
    char buffer[mount_path_max];
    const long n = sys::readlinkat(AT_FDCWD, proc_fd_path(static_cast<int>(fd), name), buffer, sizeof buffer);
    sys::close(static_cast<int>(fd));
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buffer || buffer[0] != '/') return absolute;
    return std::string(buffer, static_cast<std::size_t>(n));
}

// A target inside the new root: absolute, slashes squeezed. "." and ".."
// stay; resolution inside the root confines them.
template <class = void>
inline std::string root_target(const std::string& target, const char* what) {
    if (target.empty()) throw error(step::prepare, EINVAL, target, std::string(what) + ": the target is empty");
    if (target.find('\0') != std::string::npos)
        throw error(step::prepare, EINVAL, target, std::string(what) + ": the target contains a NUL byte");
    if (target.size() >= mount_path_max) throw error(step::prepare, ENAMETOOLONG, target, what);
    return squeeze_slashes(target[0] == '/' ? target : "/" + target);
}

// Whether a target inside the root names the root itself once "." and ".."
// are taken, ".." stopping at the root as resolution inside it does ("/..",
// "/tmp/.."): a mount there would lie under the new root, silently unseen.
template <class = void>
inline bool names_the_root(std::string_view path) {
    std::size_t depth = 0;
    while (!path.empty()) {
        const std::size_t slash = path.find('/');
        const std::string_view part = path.substr(0, slash);
        if (part == "..") {
            if (depth > 0) --depth;
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
        path.remove_prefix(slash == std::string_view::npos ? path.size() : slash + 1);
    }
    return depth == 0;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
template <class = void>
inline std::string unescape_mountinfo(std::string_view field) {
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            const char a = field[i + 1], b = field[i + 2], c = field[i + 3];
            if (a >= '0' && a <= '7' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
                out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
                i += 3;
                continue;
            }
        }
        out.push_back(field[i]);
    }
    return out;
}

// The mount points strictly below `source` in a mountinfo text, relative to
// it, parents first. Takes the text so that it is fuzzed (tests/fuzz).
template <class = void>
inline std::vector<std::string> submounts_in(std::string_view mountinfo, const std::string& source) {
    std::vector<std::string> out;
    const std::string prefix = source == "/" ? "/" : source + "/";
    std::size_t start = 0;
    while (start < mountinfo.size()) {
        std::size_t end = mountinfo.find('\n', start);
        if (end == std::string_view::npos) end = mountinfo.size();
        const std::string_view line(mountinfo.data() + start, end - start);
        start = end + 1;
        // id parent major:minor root mount-point ...
        std::size_t field = 0, position = 0;
        std::string_view mount_point;
        while (position < line.size() && field <= 4) {
            std::size_t next = line.find(' ', position);
            if (next == std::string_view::npos) next = line.size();
            if (field == 4) mount_point = line.substr(position, next - position);
            ++field;
            position = next + 1;
        }
        const std::string point = unescape_mountinfo(mount_point);
        if (point.size() > prefix.size() && point.compare(0, prefix.size(), prefix) == 0) {
            std::string relative = point.substr(prefix.size());
            bool seen = false;
            for (const auto& known : out) seen = seen || known == relative;
            if (!seen) out.push_back(std::move(relative));
        }
    }
    return out;
}

// The mount points strictly below `source` in this process's mount table,
// relative to it, parents first: what a recursive bind of `source` copies.
// Read in the parent because the child's namespace is a copy of this one
// taken at clone, so the child needs no parser and no big buffer.
template <class = void>
inline std::vector<std::string> submounts_below(const std::string& source) {
    const auto mountinfo = read_small_file("/proc/self/mountinfo");
    if (!mountinfo) return {};
    return submounts_in(*mountinfo, source);
}

template <class = void>
inline std::uint64_t attribute_bits(bool read_only, bool nosuid, bool nodev, bool noexec, bool nosymfollow = false) {
    std::uint64_t bits = 0;
    if (nosymfollow) bits |= mount_abi::attr_nosymfollow;
    if (read_only) bits |= mount_abi::attr_rdonly;
    if (nosuid) bits |= mount_abi::attr_nosuid;
    if (nodev) bits |= mount_abi::attr_nodev;
    if (noexec) bits |= mount_abi::attr_noexec;
    return bits;
}

template <class = void>
inline std::string octal(unsigned value) {
    std::string digits;
    do {
        digits.insert(digits.begin(), static_cast<char>('0' + (value & 7)));
        value >>= 3;
    } while (value != 0);
    return "0" + digits;
}

template <class = void>
inline bool valid_tmpfs_size(const std::string& size) {
    std::size_t digits = 0;
    while (digits < size.size() && size[digits] >= '0' && size[digits] <= '9') ++digits;
    if (digits == 0) return false;
    if (digits == size.size()) return true;
    return digits + 1 == size.size() && std::string_view("kKmMgGtTpPeE%").find(size.back()) != std::string_view::npos;
}

// Builds a prepared_plan: owns the strings, appends steps.
class step_builder {
public:
    template <class = void>
    // for_guard: targets are paths of the current root, for steps run in
    // place (no new root, no pivot); checked on this host unless
    // `targets_elsewhere` (a prepared sandbox's runs resolve them in the
    // sandbox's root, which this process does not see).
    explicit step_builder(bool for_guard, bool targets_elsewhere = false)
        : for_guard_(for_guard), targets_elsewhere_(targets_elsewhere) {}

    template <class = void>
    const char* keep(std::string text) {
        return out_.strings_.emplace_back(std::make_unique<std::string>(std::move(text)))->c_str();
    }

    template <class = void>
    const char* const* keep_list(const std::vector<std::string>& items) {
        std::vector<const char*> pointers;
        for (const auto& item : items) pointers.push_back(keep(item));
        pointers.push_back(nullptr);
        return out_.lists_.emplace_back(std::move(pointers)).data();
    }

    template <class = void>
    void add(mount_step s, std::string path, std::string detail = {}) {
        out_.steps_.push_back(s);
        out_.info_.push_back({std::move(path), std::move(detail)});
    }

    template <class = void>
    void set_params(mount_step& s, std::vector<mount_param> params) {
        if (params.empty()) return;
        s.param_count = static_cast<std::uint32_t>(params.size());
        s.params = out_.params_.emplace_back(std::move(params)).data();
    }

    // A host path for a bind's source: absolute and with symlinks resolved.
    // Nothing when it does not exist and the bind is optional.
    template <class = void>
    std::optional<std::pair<std::string, struct stat>> bind_source(const std::string& source, bool optional,
                                                                   ctr::step s) {
        if (source.empty()) throw error(s, EINVAL, source, "the bind source is empty");
        const std::string absolute = absolute_host_path(source);
        struct stat st {};
        if (const long r = sys::fstatat(AT_FDCWD, absolute.c_str(), &st, 0); r < 0) {
            if (optional && r == -ENOENT) return std::nullopt;
            throw error(s, static_cast<int>(-r), absolute, "bind source");
        }
        return std::pair{canonical_host_path(absolute), st};
    }

    template <class = void>
    void add_bind(const std::string& source, const char* target, const bind_options& o, ctr::step s,
                  const std::string& shown_target) {
        const auto found = bind_source(source, o.optional, s);
        if (!found) return;
        const auto& [path, st] = *found;
        mount_step m{};
        m.kind = mount_step_kind::bind;
        m.step = s;
        m.source = keep(path);
        m.target = target;
        m.point = S_ISDIR(st.st_mode) ? mount_point::directory : mount_point::file;
        m.recursive = o.recursive;
        m.optional = o.optional;
        m.attributes = attribute_bits(o.read_only, o.nosuid, o.nodev, o.noexec, o.nosymfollow);
        if (m.attributes != 0 && o.recursive && S_ISDIR(st.st_mode) &&
            (!kernel_has_mount_setattr() || sys::faults_armed.load(std::memory_order_relaxed)))
            m.submounts = keep_list(submounts_below(path));
        if (o.idmap != idmapping::none) {
            m.detached_slot = static_cast<int>(out_.detached_.size());
            out_.detached_.push_back({m.source, m.recursive, m.attributes, o.idmap == idmapping::required, shown_target});
        }
        add(m, shown_target, "source '" + path + "'");
    }

    template <class = void>
    void add_tmpfs(const char* target, const tmpfs_options& o, const std::string& shown) {
        if (!o.size.empty() && !valid_tmpfs_size(o.size))
            throw error(step::mount, EINVAL, shown,
                        "tmpfs size '" + o.size + "' is not a number with an optional k, m, g or % suffix");
        if (o.mode > 07777) throw error(step::mount, EINVAL, shown, "tmpfs mode " + octal(o.mode) + " is not a mode");
        std::vector<mount_param> params;
        std::string data;
        const auto option = [&](const char* key, std::string value) {
            const char* kept = keep(value);
            params.push_back({key, kept});
            if (!data.empty()) data += ",";
            data += std::string(key) + "=" + value;
        };
        if (!o.size.empty()) option("size", o.size);
        option("mode", octal(o.mode));
        if (o.uid) option("uid", std::to_string(*o.uid));
        if (o.gid) option("gid", std::to_string(*o.gid));
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.source = "tmpfs";
        m.fs_type = "tmpfs";
        m.target = target;
        m.point = mount_point::directory;
        m.attributes = attribute_bits(o.read_only, o.nosuid, o.nodev, o.noexec);
        m.flags = attributes_to_ms(m.attributes);
        m.legacy_data = keep_list({data});
        set_params(m, std::move(params));
        add(m, shown, "tmpfs");
    }

    template <class = void>
    void add_proc(const char* target, const proc_options& o, const std::string& shown) {
        std::vector<mount_param> params;
        std::vector<std::string> data;
        const char* hide_name = o.hide == hide_pids::invisible ? "invisible" : "noaccess";
        const char* hide_number = o.hide == hide_pids::invisible ? "2" : "1";
        // Kernels before 5.8 know neither subset nor the hidepid names: do
        // without subset (the default masks still apply) and use the numbers.
        if (o.subset_pid) params.push_back({"subset", "pid", on_rejected::skip, nullptr});
        if (o.hide != hide_pids::off) params.push_back({"hidepid", hide_name, on_rejected::alternative, hide_number});
        if (o.subset_pid && o.hide != hide_pids::off) {
            data = {std::string("subset=pid,hidepid=") + hide_name, std::string("hidepid=") + hide_number};
        } else if (o.subset_pid) {
            data = {"subset=pid", ""};
        } else if (o.hide != hide_pids::off) {
            data = {std::string("hidepid=") + hide_name, std::string("hidepid=") + hide_number};
        }
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.source = "proc";
        m.fs_type = "proc";
        m.target = target;
        m.point = mount_point::directory;
        m.attributes = attribute_bits(false, true, true, true);
        m.flags = attributes_to_ms(m.attributes);
        if (!data.empty()) m.legacy_data = keep_list(data);
        set_params(m, std::move(params));
        add(m, shown, "proc");
        if (o.mask_defaults && !for_guard_) {
            for (const char* p : masked_proc_paths) deferred_.push_back({mount_step_kind::mask, shown + "/" + p});
            for (const char* p : read_only_proc_paths) deferred_.push_back({mount_step_kind::read_only, shown + "/" + p});
        }
    }

    template <class = void>
    void add_kernel_fs(const std::string& fs_type, const char* target, const std::string& shown) {
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.target = target;
        m.point = mount_point::directory;
        std::vector<mount_param> params;
        std::string data;
        if (fs_type == "sysfs") {
            m.source = "sysfs";
            m.fs_type = "sysfs";
            m.attributes = attribute_bits(true, true, true, true);
            if (!for_guard_)
                for (const char* p : masked_sys_paths) deferred_.push_back({mount_step_kind::mask, shown + "/" + p});
        } else if (fs_type == "devpts") {
            m.source = "devpts";
            m.fs_type = "devpts";
            m.attributes = attribute_bits(false, true, false, true);
            // A devpts of its own: newinstance is the default since 4.7,
            // and ptmxmode lets the unprivileged open pts/ptmx.
            params = {{"newinstance", nullptr, on_rejected::skip, nullptr},
                      {"ptmxmode", "0666", on_rejected::fail, nullptr},
                      {"mode", "0620", on_rejected::fail, nullptr}};
            data = "newinstance,ptmxmode=0666,mode=0620";
        } else if (fs_type == "mqueue") {
            m.source = "mqueue";
            m.fs_type = "mqueue";
            m.attributes = attribute_bits(false, true, true, true);
        } else {
            throw error(step::prepare, EINVAL, shown, "unknown filesystem type " + fs_type);
        }
        m.flags = attributes_to_ms(m.attributes);
        if (!data.empty()) m.legacy_data = keep_list({data});
        set_params(m, std::move(params));
        add(m, shown, fs_type);
    }

    // plan::filesystem: the caller's type and options, each option both a
    // fsconfig parameter and a part of the mount(2) data.
    template <class = void>
    void add_filesystem(const filesystem_request& r, const char* target, const std::string& shown) {
        const auto bad = [](const std::string& text) { return text.find('\0') != std::string::npos; };
        if (r.fs_type.empty() || bad(r.fs_type) || r.fs_type.find(',') != std::string::npos)
            throw error(step::prepare, EINVAL, shown, "filesystem type '" + r.fs_type + "' is empty or not a name");
        if (bad(r.source)) throw error(step::prepare, EINVAL, shown, "the filesystem's source contains a NUL byte");
        std::vector<mount_param> params;
        std::string data;
        for (const auto& item : r.options.data) {
            if (item.empty() || item[0] == '=' || bad(item) || item.find(',') != std::string::npos)
                throw error(step::prepare, EINVAL, shown,
                            r.fs_type + " option '" + item + "' is empty, has no key, or contains ',' or a NUL byte");
            const std::size_t equals = item.find('=');
            const char* key = keep(item.substr(0, equals));
            const char* value = equals == std::string::npos ? nullptr : keep(item.substr(equals + 1));
            params.push_back({key, value, on_rejected::fail, nullptr});
            if (!data.empty()) data += ",";
            data += item;
        }
        using namespace mount_abi;
        const filesystem_options& o = r.options;
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.source = keep(r.source.empty() ? r.fs_type : r.source);
        m.fs_type = keep(r.fs_type);
        m.target = target;
        m.point = mount_point::directory;
        m.attributes = attribute_bits(o.read_only, o.nosuid, o.nodev, o.noexec, o.nosymfollow);
        m.flags = attributes_to_ms(m.attributes);
        if (o.nodiratime) m.attributes |= attr_nodiratime, m.flags |= ms_nodiratime;
        switch (o.atime) {
            case access_time::kernel_default: break;
            case access_time::relative: m.flags |= ms_relatime; break;
            case access_time::none: m.attributes |= attr_noatime, m.flags |= ms_noatime; break;
            case access_time::strict: m.attributes |= attr_strictatime, m.flags |= ms_strictatime; break;
        }
        if (!data.empty()) m.legacy_data = keep_list({data});
        set_params(m, std::move(params));
        add(m, shown, r.fs_type);
    }

    template <class = void>
    void add_dev(const std::string& shown) {
        const auto at = [&](const char* name) { return shown == "/" ? "/" + std::string(name) : shown + "/" + name; };
        add_tmpfs(keep(shown), {.mode = 0755, .nosuid = true, .nodev = false, .noexec = true}, shown);
        for (const char* node : dev_nodes) {
            const std::string host = std::string("/dev/") + node;
            const auto st = host_stat(host);
            if (!st || !S_ISCHR(st->st_mode)) continue;  // a host without it: the sandbox goes without
            const std::string target = at(node);
            add_bind(host, keep(target), {.recursive = false, .nosuid = true, .noexec = true}, step::make_device,
                     target);
        }
        const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "fd"},
                                                             {"/proc/self/fd/0", "stdin"},
                                                             {"/proc/self/fd/1", "stdout"},
                                                             {"/proc/self/fd/2", "stderr"},
                                                             {"pts/ptmx", "ptmx"}};
        for (const auto& [text, name] : links) add_symlink(text, at(name));
        add_kernel_fs("devpts", keep(at("pts")), at("pts"));
        add_tmpfs(keep(at("shm")), {.mode = 01777}, at("shm"));
    }

    template <class = void>
    void add_symlink(const std::string& text, const std::string& target) {
        if (text.empty() || text.find('\0') != std::string::npos)
            throw error(step::make_symlink, EINVAL, target, "the symlink's text is empty or has a NUL byte");
        const std::string name = target.substr(target.rfind('/') + 1);
        if (name.empty() || name == "." || name == "..")
            throw error(step::make_symlink, EINVAL, target, "a symlink needs a name");
        mount_step m{};
        m.kind = mount_step_kind::make_symlink;
        m.step = step::make_symlink;
        m.source = keep(text);
        m.target = keep(target);
        add(m, target, "-> " + text);
    }

    // Both the new-API parameters and the mount(2) data of an overlay.
    template <class = void>
    void add_overlay(const char* target, const overlay_layers& layers, bool read_only, const std::string& shown) {
        if (layers.lower.empty()) throw error(step::mount, EINVAL, shown, "an overlay needs a lower layer");
        if (layers.upper.empty() != layers.work.empty())
            throw error(step::mount, EINVAL, shown, "an overlay's upper and work directories come together");
        if (layers.upper.empty() && layers.lower.size() < 2)
            throw error(step::mount, EINVAL, shown, "a read-only overlay (no upper layer) needs at least two lower layers");
        const auto layer = [&](const std::string& path, const char* role) {
            const std::string absolute = absolute_host_path(path);
            struct stat st {};
            if (const long r = sys::fstatat(AT_FDCWD, absolute.c_str(), &st, 0); r < 0)
                throw error(step::mount, static_cast<int>(-r), absolute, std::string("overlay ") + role);
            if (!S_ISDIR(st.st_mode))
                throw error(step::mount, ENOTDIR, absolute, std::string("overlay ") + role + " must be a directory");
            std::string canonical = canonical_host_path(absolute);
            if (canonical.find(',') != std::string::npos)
                throw error(step::mount, EINVAL, canonical, std::string("overlay ") + role + " paths cannot contain ','");
            return std::pair{canonical, st.st_dev};
        };
        // overlayfs splits lowerdir at ':' unless escaped with '\'.
        const auto escaped = [](const std::string& path) {
            std::string out;
            for (char c : path) {
                if (c == ':' || c == '\\') out.push_back('\\');
                out.push_back(c);
            }
            return out;
        };
        std::vector<mount_param> params;
        std::string lowerdir;
        for (const auto& lower : layers.lower) {
            const auto [path, dev] = layer(lower, "lower layer");
            if (layers.idmap_lower != idmapping::none) {
                // The idmapped copy goes over the layer's own host path in
                // the child's mount namespace, where the overlay then finds
                // it (overlayfs takes layers only from its own namespace).
                mount_step m{};
                m.kind = mount_step_kind::bind;
                m.step = step::idmap_mount;
                m.source = keep(path);
                m.target = m.source;
                m.host_target = true;
                m.recursive = true;
                m.detached_slot = static_cast<int>(out_.detached_.size());
                out_.detached_.push_back({m.source, true, 0, layers.idmap_lower == idmapping::required, path});
                add(m, path, "overlay lower layer");
            }
            // lowerdir+ (6.5+) takes one layer a call and any length; older
            // kernels reject it, and then mount(2) takes the whole list.
            params.push_back({"lowerdir+", keep(path), on_rejected::use_mount2, nullptr});
            if (!lowerdir.empty()) lowerdir.push_back(':');
            lowerdir.append(escaped(path));
        }
        // Built by appending: g++ 12 at -O3 reports -Wrestrict inside
        // libstdc++ for `"text" + std::string` chains (GCC bug 105329).
        std::string data = "lowerdir=";
        data.append(lowerdir);
        if (!layers.upper.empty()) {
            const auto [upper, upper_dev] = layer(layers.upper, "upper layer");
            const auto [work, work_dev] = layer(layers.work, "work directory");
            if (upper_dev != work_dev)
                throw error(step::mount, EXDEV, work, "an overlay's work directory must be on the upper layer's filesystem");
            params.push_back({"upperdir", keep(upper), on_rejected::use_mount2, nullptr});
            params.push_back({"workdir", keep(work), on_rejected::use_mount2, nullptr});
            data.append(",upperdir=").append(escaped(upper)).append(",workdir=").append(escaped(work));
        }
        mount_step m{};
        m.kind = mount_step_kind::filesystem;
        m.source = "overlay";
        m.fs_type = "overlay";
        m.target = target;
        m.point = mount_point::directory;
        m.attributes = read_only ? mount_abi::attr_rdonly : 0;
        m.flags = attributes_to_ms(m.attributes);
        m.legacy_data = keep_list({data});
        set_params(m, std::move(params));
        std::string what = "overlay of ";
        what.append(std::to_string(layers.lower.size())).append(" lower layer(s)");
        add(m, shown, std::move(what));
    }

    template <class = void>
    void add_request(const mount_request& request) {
        visit_request<void>([&](const auto& r) { add_one(r); }, request);
    }

    template <class = void>
    void add_one(const bind_request& r) {
        const std::string target = target_of(r.target, "bind");
        add_bind(r.source, keep(target), r.options, r.step, target);
    }
    template <class = void>
    void add_one(const tmpfs_request& r) {
        const std::string target = target_of(r.target, "tmpfs");
        add_tmpfs(keep(target), r.options, target);
    }
    template <class = void>
    void add_one(const proc_request& r) {
        const std::string target = target_of(r.target, "proc");
        add_proc(keep(target), r.options, target);
    }
    template <class = void>
    void add_one(const kernel_fs_request& r) {
        const std::string target = target_of(r.target, r.fs_type.c_str());
        add_kernel_fs(r.fs_type, keep(target), target);
    }
    template <class = void>
    void add_one(const dev_request& r) { add_dev(target_of(r.target, "dev")); }
    template <class = void>
    void add_one(const filesystem_request& r) {
        const std::string target = target_of(r.target, r.fs_type.c_str());
        add_filesystem(r, keep(target), target);
    }
    template <class = void>
    void add_one(const write_request& r) {
        const std::string target = target_of(r.target, "write", false);
        if (r.text.find('\0') != std::string::npos)
            throw error(step::write_file, EINVAL, target, "the text to write contains a NUL byte");
        mount_step m{};
        m.kind = mount_step_kind::write_file;
        m.step = step::write_file;
        m.source = keep(r.text);
        m.target = keep(target);
        add(m, target, "writing '" + r.text + "'");
    }
    template <class = void>
    void add_one(const overlay_request& r) {
        const std::string target = target_of(r.target, "overlay", false);
        if (target == "/" && !for_guard_) return;  // the root; placed by add_root
        add_overlay(keep(target), r.layers, false, target);
    }
    template <class = void>
    void add_one(const path_request& r) {
        const bool mounts = r.kind == mount_step_kind::mask || r.kind == mount_step_kind::read_only;
        const std::string target = target_of(r.target, "path", mounts);
        if (r.mode > 07777) throw error(step::make_mount_point, EINVAL, target, "mode " + octal(r.mode) + " is not a mode");
        mount_step m{};
        m.kind = r.kind;
        m.target = keep(target);
        m.mode = r.mode;
        switch (r.kind) {
            case mount_step_kind::make_directory:
            case mount_step_kind::make_file:
                m.step = step::make_mount_point;
                break;
            case mount_step_kind::read_only:
                m.step = step::set_mount_attributes;
                m.recursive = true;
                m.attributes = mount_abi::attr_rdonly;
                break;
            default:
                m.step = step::mount;
                break;
        }
        add(m, target, r.kind == mount_step_kind::mask ? "mask" : "");
    }
    template <class = void>
    void add_one(const symlink_request& r) { add_symlink(r.text, target_of(r.target, "symlink", false)); }
    template <class = void>
    void add_one(const attributes_request& r) {
        const std::string target = target_of(r.target, "attributes", false);
        mount_step m{};
        m.kind = mount_step_kind::set_attributes;
        m.step = step::set_mount_attributes;
        m.target = keep(target);
        m.recursive = r.attrs.recursive;
        m.attributes =
            attribute_bits(r.attrs.read_only, r.attrs.nosuid, r.attrs.nodev, r.attrs.noexec, r.attrs.nosymfollow);
        if (m.attributes == 0) throw error(step::set_mount_attributes, EINVAL, target, "no attribute to set");
        add(m, target);
    }

    // Guards take host paths: absolute, symlinks resolved, and existing.
    // In a plan, a mount over "/" itself would sit on top of the new root
    // that pivot_root enters; the root is the rootfs (or an overlay at "/").
    template <class = void>
    std::string target_of(const std::string& target, const char* what, bool mounts = true) {
        if (!for_guard_) {
            std::string in_root = root_target(target, what);
            if (mounts && names_the_root(in_root))
                throw error(step::prepare, EINVAL, target,
                            std::string(what) + " over the new root itself: give the root as rootfs, or an overlay at /");
            return in_root;
        }
        if (target.empty()) throw error(step::resolve_path, EINVAL, target, std::string(what) + ": the target is empty");
        if (targets_elsewhere_) {
            if (target.front() != '/')
                throw error(step::resolve_path, EINVAL, target, std::string(what) + ": the target must be absolute");
            return target;
        }
        const std::string absolute = absolute_host_path(target);
        struct stat st {};
        if (const long r = sys::fstatat(AT_FDCWD, absolute.c_str(), &st, 0); r < 0)
            throw error(step::resolve_path, static_cast<int>(-r), absolute, "mount target");
        return canonical_host_path(absolute);
    }

    template <class = void>
    void add_propagation(propagation_mode mode) {
        mount_step m{};
        m.kind = mount_step_kind::set_propagation;
        m.step = step::set_propagation;
        m.flags = mode == propagation_mode::slave ? mount_abi::ms_slave : mount_abi::ms_private;
        struct stat st {};
        if (sys::fstatat(AT_FDCWD, "/proc/self/ns/mnt", &st, 0) == 0) m.parent_mount_ns = st.st_ino;
        add(m, "/", mode == propagation_mode::slave ? "slave" : "private");
    }

    template <class Unused = void>
    void add_root(const plan& p, const std::vector<skeleton>& skeletons) {
        const overlay_request* root_overlay = nullptr;
        for (const auto& request : plan_requests<Unused>(p))
            if (const auto* o = request_if<overlay_request>(request); o && root_target(o->target, "overlay") == "/") {
                if (root_overlay) throw error(step::mount, EINVAL, "/", "two overlays at /");
                root_overlay = o;
            }
        if (root_overlay) {
            if (!p.rootfs.empty())
                throw error(step::mount, EINVAL, p.rootfs, "give either a rootfs or an overlay at /, not both");
            out_.root_ = "/";
            add_overlay(nullptr, root_overlay->layers, p.read_only_root, "/");
            return;
        }
        std::string source = "/";
        if (!p.rootfs.empty()) {
            const auto st = host_stat(absolute_host_path(p.rootfs));
            if (!st) throw error(step::bind_mount, ENOENT, p.rootfs, "the root filesystem does not exist");
            if (!S_ISDIR(st->st_mode)) throw error(step::bind_mount, ENOTDIR, p.rootfs, "the root filesystem must be a directory");
            source = canonical_host_path(p.rootfs);
        }
        out_.root_ = source;
        if (!skeletons.empty() && skeletons.front().target == "/") {
            // A skeleton of the whole root: the tmpfs is the new root, and
            // the root's entries are bound into it (add_skeletons).
            add_tmpfs(nullptr, skeleton_tmpfs(skeletons.front()), "/");
            out_.info_.back().detail = "the new root: a skeleton of " + source;
            return;
        }
        add_bind(source, nullptr,
                 {.read_only = p.read_only_root, .recursive = true, .nosuid = p.nosuid_root, .nodev = p.nodev_root,
                  .idmap = p.idmap_root},
                 step::bind_mount, source);
        out_.info_.back().detail = "the new root";
    }

    template <class = void>
    static tmpfs_options skeleton_tmpfs(const skeleton& s) {
        return {.mode = s.mode, .nosuid = true, .nodev = true};
    }

    // Right after the root, before any other mount, so that none is hidden
    // under a skeleton: each skeleton's tmpfs (the root's is made by
    // add_root), then the entries of the directory it covers, bound back
    // recursively with the root's attributes, or made again as symlinks.
    template <class = void>
    void add_skeletons(const plan& p, const std::vector<skeleton>& skeletons) {
        if (skeletons.empty()) return;
        const std::string source = out_.root_;
        bool idmap_each = false;
        if (p.idmap_root != idmapping::none && source != "/") {
            // One idmapped copy of the rootfs over its own host path in the
            // child's namespace (as for an overlay's layers): the entries'
            // binds, made from host paths below it, inherit its idmap, so
            // the parent makes one detached mount, not one an entry.
            mount_step m{};
            m.kind = mount_step_kind::bind;
            m.step = step::idmap_mount;
            m.source = keep(source);
            m.target = m.source;
            m.host_target = true;
            m.recursive = true;
            m.detached_slot = static_cast<int>(out_.detached_.size());
            out_.detached_.push_back({m.source, true, 0, p.idmap_root == idmapping::required, source});
            add(m, source, "the root's idmapped copy, for the skeletons");
        } else {
            idmap_each = p.idmap_root != idmapping::none;
        }
        const bind_options entry_options{.read_only = p.read_only_root,
                                         .recursive = true,
                                         .nosuid = p.nosuid_root,
                                         .nodev = p.nodev_root,
                                         .optional = true,
                                         .idmap = idmap_each ? p.idmap_root : idmapping::none};
        for (const auto& s : skeletons) {
            const std::string base = s.target == "/" ? std::string() : s.target;
            if (!base.empty()) {
                add_tmpfs(keep(s.target), skeleton_tmpfs(s), s.target);
                out_.info_.back().detail = "a skeleton of " + s.source + ", for a missing mount point";
            }
            for (const auto& e : s.entries) {
                const std::string target = base + "/" + e.name;
                if (e.symlink) add_symlink(e.text, target);
                else add_bind((s.source == "/" ? std::string() : s.source) + "/" + e.name, keep(target), entry_options,
                              step::bind_mount, target);
            }
        }
    }

    // After every mount point is made: a read-only root's skeletons become
    // read-only too, each tmpfs alone (the binds in it keep their own).
    template <class = void>
    void seal_skeletons(const plan& p, const std::vector<skeleton>& skeletons) {
        if (!p.read_only_root) return;
        for (const auto& s : skeletons) {
            if (!s.seal) continue;
            mount_step m{};
            m.kind = mount_step_kind::set_attributes;
            m.step = step::set_mount_attributes;
            m.target = keep(s.target);
            m.recursive = false;
            m.attributes = mount_abi::attr_rdonly;
            add(m, s.target, "the skeleton, read-only as the root");
        }
    }

    template <class = void>
    void add_deferred() {
        for (const auto& d : deferred_) add_one(path_request{d.first, d.second});
        deferred_.clear();
    }

    template <class = void>
    void add_entry(root_entry entry) {
        mount_step m{};
        m.kind = entry == root_entry::pivot_root ? mount_step_kind::pivot_root : mount_step_kind::change_root;
        m.step = entry == root_entry::pivot_root ? step::pivot_root : step::change_root;
        add(m, out_.root_);
    }

    template <class = void>
    prepared_plan take() { return std::move(out_); }

private:
    bool for_guard_;
    bool targets_elsewhere_;
    prepared_plan out_;
    std::vector<std::pair<mount_step_kind, std::string>> deferred_;
};

// Where a request makes a mount point (see made_point); nothing for those
// that make none (mask, read_only and set_attributes skip a missing path)
// and for a target that the request's own step refuses.
template <class Request = mount_request>
inline std::optional<made_point> made_point_of(const Request& request) {
    std::string target;
    bool mounts = true;
    if (const auto* b = request_if<bind_request>(request)) target = b->target;
    else if (const auto* t = request_if<tmpfs_request>(request)) target = t->target;
    else if (const auto* pr = request_if<proc_request>(request)) target = pr->target;
    else if (const auto* k = request_if<kernel_fs_request>(request)) target = k->target;
    else if (const auto* g = request_if<filesystem_request>(request)) target = g->target;
    else if (const auto* d = request_if<dev_request>(request)) target = d->target;
    else if (const auto* o = request_if<overlay_request>(request)) target = o->target;
    else if (const auto* l = request_if<symlink_request>(request)) target = l->target, mounts = false;
    else if (const auto* pa = request_if<path_request>(request);
             pa && (pa->kind == mount_step_kind::make_directory || pa->kind == mount_step_kind::make_file))
        target = pa->target, mounts = false;
    else return std::nullopt;
    if (target.empty() || target.find('\0') != std::string::npos || target.size() >= mount_path_max) return std::nullopt;
    target = squeeze_slashes(target[0] == '/' ? target : "/" + target);
    if (names_the_root(target)) return std::nullopt;
    return made_point{std::move(target), mounts};
}

// The skeletons a plan's missing mount points need: none unless the plan
// asks for them, and none for an overlay root (its upper layer takes them).
template <class Unused = void>
inline std::vector<skeleton> plan_skeletons(const plan& p) {
    if (p.missing_points != missing_mount_points::make_in_skeleton) return {};
    std::vector<made_point> points;
    for (const auto& request : plan_requests<Unused>(p)) {
        if (const auto* o = request_if<overlay_request>(request); o && names_the_root(squeeze_slashes(o->target)))
            return {};
        if (auto point = made_point_of(request)) points.push_back(std::move(*point));
    }
    if (points.empty()) return {};
    return find_skeletons(p.rootfs.empty() ? std::string("/") : canonical_host_path(p.rootfs), points);
}

// What an errno means for a step, where the bare text would puzzle.
template <class = void>
inline std::string mount_hint(const mount_step& s, int error) {
    const std::string_view fs = s.fs_type ? s.fs_type : "";
    if (s.kind == mount_step_kind::set_propagation && error == EPERM)
        return "refusing to change the caller's own mount namespace: run the plan in a new one (CLONE_NEWNS)";
    if (s.kind == mount_step_kind::pivot_root && error == EINVAL)
        return "the new root or its parent mount is shared, or the root is not a mount point";
    if (error == EPERM && fs == "proc")
        return "a fresh proc needs CAP_SYS_ADMIN over the pid namespace (in a user namespace: one of its own, and a "
               "/proc with nothing mounted over its parts)";
    if (error == EPERM && fs == "sysfs") return "sysfs in a user namespace needs a network namespace of its own";
    if (error == EPERM && fs == "mqueue") return "mqueue in a user namespace needs an IPC namespace of its own";
    if ((error == EPERM || error == EINVAL) && fs == "overlay")
        return "overlayfs in a user namespace needs Linux 5.11 or later";
    if (error == EROFS) return "the mount point is missing and the filesystem it would go in is read-only";
    if (error == ELOOP) return "a symlink loop, or a /proc magic link, on the way; neither can be followed inside the root";
    if (error == ENOSYS) return "the kernel (or a seccomp filter) refuses this call";
    return {};
}

}  // namespace detail

template <class Unused>
inline prepared_plan plan::prepare() const {
    detail::step_builder builder(false);
    builder.add_propagation(propagation);
    const auto skeletons = detail::plan_skeletons(*this);
    builder.add_root(*this, skeletons);
    builder.add_skeletons(*this, skeletons);
    for (const auto& request : detail::plan_requests<Unused>(*this)) builder.add_request(request);
    builder.add_deferred();
    builder.seal_skeletons(*this, skeletons);
    builder.add_entry(entry);
    return builder.take();
}

template <class>
inline ctr::error prepared_plan::error_for(std::size_t index, int errno_value,
                                           const ctr::detail::mount_context* ctx) const {
    if (index >= steps_.size()) return ctr::error(step::mount, errno_value, {}, "no such mount step");
    const auto& s = steps_[index];
    const auto& info = info_[index];
    ctr::step which = s.step;
    if (ctx && ctx->failed_step != ctr::step::none) which = ctx->failed_step;
    std::string detail = info.detail;
    std::string extra;
    if (ctx && ctx->message && ctx->message[0] != '\0') extra = ctx->message;
    else extra = detail::mount_hint(s, errno_value);
    if (!extra.empty()) detail += (detail.empty() ? "" : "; ") + extra;
    return ctr::error(which, errno_value, info.path, detail);
}

// Owns one mount in the current process's mount namespace and unmounts it
// when it ends. Move-only; release() keeps the mount. A recursive bind is
// detached lazily (MNT_DETACH), since its submounts would make a plain
// unmount fail with EBUSY; others are unmounted plainly unless
// unmount_lazily() was asked for.
template <class>
class [[nodiscard]] basic_guard {
public:
    basic_guard() noexcept = default;
    basic_guard(basic_guard&& other) noexcept
        : target_(std::move(other.target_)),
          mount_id_(other.mount_id_),
          flags_(other.flags_),
          active_(std::exchange(other.active_, false)) {}
    basic_guard& operator=(basic_guard&& other) noexcept {
        if (this != &other) {
            reset();
            target_ = std::move(other.target_);
            mount_id_ = other.mount_id_;
            flags_ = other.flags_;
            active_ = std::exchange(other.active_, false);
        }
        return *this;
    }
    basic_guard(const basic_guard&) = delete;
    basic_guard& operator=(const basic_guard&) = delete;
    ~basic_guard() { reset(); }

    // Where the mount is (absolute, symlinks resolved).
    template <class = void>
    const std::string& target() const noexcept { return target_; }
    template <class = void>
    bool active() const noexcept { return active_; }

    template <class = void>
    basic_guard& unmount_lazily(bool lazily = true) noexcept {
        flags_ = lazily ? ctr::detail::mount_abi::mnt_detach : 0;
        return *this;
    }

    // Unmounts now; throws ctr::error(step::unmount) on failure, e.g. EBUSY
    // while a process works inside, or when a later mount covers this one.
    template <class = void>
    void unmount() {
        if (!active_) return;
        bool covered = false;
        const long r = unmount_now(flags_, covered);
        if (r < 0)
            throw ctr::error(step::unmount, static_cast<int>(-r), target_,
                             covered ? "another mount now covers it" : std::string_view{});
    }

    // Keeps the mount; the guard no longer owns it. Returns its target.
    [[nodiscard]] std::string release() noexcept {
        active_ = false;
        return std::move(target_);
    }

    // Best effort: unmounts, lazily if a plain unmount is refused as busy.
    template <class = void>
    void reset() noexcept {
        if (!active_) return;
        bool covered = false;
        long r = unmount_now(flags_, covered);
        if (r == -EBUSY && !covered && flags_ == 0) r = unmount_now(ctr::detail::mount_abi::mnt_detach, covered);
        active_ = false;
    }

    // For the factories below.
    template <class = void>
    static basic_guard adopt(std::string target, int flags) {
        basic_guard g;
        g.target_ = std::move(target);
        g.mount_id_ = mount_id(g.target_);
        g.flags_ = flags;
        g.active_ = true;
        return g;
    }

private:
    // The id of the mount on top at `path`; 0 when statx cannot say (before 5.8).
    template <class = void>
    static std::uint64_t mount_id(const std::string& path) noexcept {
        alignas(8) unsigned char buffer[256] = {};
        if (ctr::detail::sys::statx(AT_FDCWD, path.c_str(), 0, ctr::detail::mount_abi::statx_mnt_id, buffer) < 0) return 0;
        std::uint32_t mask = 0;
        __builtin_memcpy(&mask, buffer, sizeof mask);
        if ((mask & ctr::detail::mount_abi::statx_mnt_id) == 0) return 0;
        std::uint64_t id = 0;
        __builtin_memcpy(&id, buffer + 144, sizeof id);  // stx_mnt_id
        return id;
    }

    template <class = void>
    long unmount_now(int flags, bool& covered) noexcept {
        if (mount_id_ != 0) {
            const std::uint64_t now = mount_id(target_);
            if (now != 0 && now != mount_id_) {
                // Another mount is on top: unmounting by path would take
                // that one. Leave both; the caller has mounts out of order.
                covered = true;
                return -EBUSY;
            }
        }
        const long r = ctr::detail::sys::umount2(target_.c_str(), flags);
        if (r == 0) active_ = false;
        return r;
    }

    std::string target_;
    std::uint64_t mount_id_ = 0;
    int flags_ = 0;
    bool active_ = false;
};
using guard = basic_guard<void>;

namespace detail {

// Runs one operation as a guard: the same steps a plan's child runs, with
// host paths for targets.
// A template of the request's type: the request goes to the builder as it
// is, without a mount_request around it.
template <class Request>
inline guard run_guard(const Request& request, int unmount_flags) {
    step_builder builder(true);
    builder.add_one(request);
    const prepared_plan prepared = builder.take();
    char message[256] = {};
    mount_context ctx{};
    ctx.host_paths = true;
    ctx.message = message;
    ctx.message_size = sizeof message;
    std::size_t failed = 0;
    const auto steps = prepared.steps();
    if (steps.empty()) throw error(step::prepare, ENOENT, {}, "nothing to mount");
    if (const long r = run_mount_steps(steps.data(), steps.size(), ctx, failed); r < 0)
        throw prepared.error_for(failed, static_cast<int>(-r), &ctx);
    return guard::adopt(steps.back().target, unmount_flags);
}

}  // namespace detail

// Mounts in the current mount namespace, each owned by the guard returned.
// Targets are host paths that must exist. Call them in a mount namespace of
// the caller's own (ns::scope, unshare(CLONE_NEWNS)) unless changing the
// host's mount table is the point.
template <class = void>
inline guard bind(std::string source, std::string target, bind_options options = {}) {
    const int flags = options.recursive ? ctr::detail::mount_abi::mnt_detach : 0;
    return detail::run_guard(detail::bind_request{std::move(source), std::move(target), options}, flags);
}
template <class = void>
inline guard tmpfs(std::string target, tmpfs_options options = {}) {
    return detail::run_guard(detail::tmpfs_request{std::move(target), std::move(options)}, 0);
}
template <class = void>
inline guard proc(std::string target, proc_options options = {}) {
    return detail::run_guard(detail::proc_request{std::move(target), options}, 0);
}
template <class = void>
inline guard sysfs(std::string target) {
    return detail::run_guard(detail::kernel_fs_request{"sysfs", std::move(target)}, 0);
}
template <class = void>
inline guard devpts(std::string target) {
    return detail::run_guard(detail::kernel_fs_request{"devpts", std::move(target)}, 0);
}
template <class = void>
inline guard mqueue(std::string target) {
    return detail::run_guard(detail::kernel_fs_request{"mqueue", std::move(target)}, 0);
}
template <class = void>
inline guard overlay(std::string target, overlay_layers layers) {
    return detail::run_guard(detail::overlay_request{std::move(target), std::move(layers)}, 0);
}

}  // namespace ctr::mount

namespace ctr::detail {

// Runs a prepared plan in the calling process: for tests, in a forked child
// that has entered a mount namespace of its own (unshare(CLONE_NEWNS), and
// CLONE_NEWUSER when not root). The plan's first step refuses to run in the
// namespace prepare() was called in. Returns 0, or -errno with `failed` the
// index of the failing step (prepared_plan::error_for turns it into the
// ctr::error). Async-signal-safe.
CTR_CHILD_CODE inline long run_plan_in_current_process(const ctr::mount::prepared_plan& plan, mount_context& ctx,
                                                       std::size_t& failed) noexcept {
    const auto steps = plan.steps();
    return run_mount_steps(steps.data(), steps.size(), ctx, failed);
}

}  // namespace ctr::detail
