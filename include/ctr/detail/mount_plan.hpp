#pragma once
// ctr::mount's plan as spawn takes it (options::root): the operations a
// child's root filesystem is built from, as plain data, with the builder
// calls that add them and host_readonly(). mount.hpp has what runs them
// (plan::prepare, the steps, guards) and the launch layer: a program that
// spawns without a root filesystem compiles none of that.

#include <ctr/detail/mount_step.hpp>
#include <ctr/error.hpp>

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ctr::mount {

// Whether a bind is idmapped through the sandbox's new user namespace
// (Linux 5.12+, a filesystem that supports it, a privileged caller): then a
// file owned by uid N on disk shows as uid N inside, and what the sandbox's
// root writes is owned by root on disk - Docker's volume ownership, although
// the sandbox's ids are unprivileged on the host.
enum class idmapping : std::uint8_t {
    none,
    required,        // the launch fails where the kernel or filesystem cannot idmap
    when_supported,  // elsewhere a plain bind: root-owned files show as nobody inside
};

struct bind_options {
    bool read_only = false;
    bool recursive = true;   // the source's submounts come along, as with bwrap's --bind
    bool nosuid = false;
    bool nodev = false;
    bool noexec = false;
    bool optional = false;   // a source that does not exist skips the bind instead of failing
    idmapping idmap = idmapping::none;
    bool nosymfollow = false;  // symlinks in it are not followed (Linux 5.10+)
};

struct tmpfs_options {
    std::string size{};      // "1M", "512k", "4096", "10%"; empty: the kernel's default (half of RAM)
    mode_t mode = 0755;
    std::optional<uid_t> uid{};
    std::optional<gid_t> gid{};
    bool read_only = false;
    bool nosuid = true;
    bool nodev = true;
    bool noexec = false;
};

// How a new filesystem's mount updates access times (MOUNT_ATTR_*ATIME).
enum class access_time : std::uint8_t {
    kernel_default,  // relatime, unless the filesystem says otherwise
    relative,        // relatime
    none,            // noatime
    strict,          // strictatime: every access
};

// A filesystem of any type that plan::filesystem mounts: the mount's
// attributes, and the filesystem's own options passed to the kernel as they
// are, in order ("newinstance", "ptmxmode=0666", "size=65536k"), each a key
// or key=value as mount -o takes them. The kernel judges them: an option it
// does not know fails the launch with its own message.
struct filesystem_options {
    bool read_only = false;
    bool nosuid = false;
    bool nodev = false;
    bool noexec = false;
    bool nodiratime = false;
    bool nosymfollow = false;
    access_time atime = access_time::kernel_default;
    std::vector<std::string> data{};
};

// proc's hidepid: whether other users' /proc/PID directories are readable
// (no_access) or even listed (invisible).
enum class hide_pids : std::uint8_t { off, no_access, invisible };

struct proc_options {
    // Only the /proc/PID directories and what processes need (Linux 5.8+);
    // older kernels mount the full proc, still under the default masks.
    bool subset_pid = false;
    hide_pids hide = hide_pids::off;
    // runc's masked paths (/proc/kcore, /proc/keys, ...) and read-only
    // paths (/proc/sys, /proc/sysrq-trigger, ...). Plans only; guards never mask.
    bool mask_defaults = true;
};

struct overlay_layers {
    std::vector<std::string> lower{};  // uppermost first, as overlayfs lists them
    std::string upper{};               // empty: a read-only overlay (then at least two lower layers)
    std::string work{};                // with upper: an empty directory on the same filesystem
    // Each lower layer idmapped through the sandbox's user namespace first
    // (see idmapping; overlay over idmapped layers needs Linux 5.19+), so
    // that files owned by root on disk are the sandbox root's.
    idmapping idmap_lower = idmapping::none;
};

// Attributes for plan::set_attributes.
struct attributes {
    bool read_only = false;
    bool nosuid = false;
    bool nodev = false;
    bool noexec = false;
    bool recursive = true;  // also every mount below
    bool nosymfollow = false;
};

// How mounts of the child's namespace relate to the host's: private (no
// propagation either way), or slave (host mounts appear; none flow back).
enum class propagation_mode : std::uint8_t { private_mounts, slave };

// How the child enters the new root. chroot leaves the old root mounted in
// the namespace and a process with CAP_SYS_CHROOT can climb back out: use it
// only where pivot_root cannot work (e.g. a rootfs on the initramfs).
enum class root_entry : std::uint8_t { pivot_root, chroot_escapable };

// Where a mount point that the root lacks is made.
enum class missing_mount_points : std::uint8_t {
    // In the root itself, as runc does: a writable rootfs directory gains it
    // on the host; a read-only root fails (EROFS).
    make_in_root,
    // In a skeleton: a tmpfs over the deepest directory of the root that
    // exists, holding what that directory holds (each entry bound back from
    // it, each symlink made again), where the mount point is then made. The
    // rootfs directory and the host never change; the skeleton is made
    // read-only after the last mount when the root is. A bind root only (an
    // overlay at "/" takes its mount points in its upper layer).
    make_in_skeleton,
};

namespace detail {

using namespace ::ctr::detail;

struct bind_request {
    std::string source;
    std::string target;
    bind_options options;
    ctr::step step = ctr::step::bind_mount;
};
struct tmpfs_request {
    std::string target;
    tmpfs_options options;
};
struct proc_request {
    std::string target;
    proc_options options;
};
// sysfs, devpts, mqueue
struct kernel_fs_request {
    std::string fs_type;
    std::string target;
};
// plan::filesystem: any type, options given by the caller.
struct filesystem_request {
    std::string fs_type;
    std::string source;
    std::string target;
    filesystem_options options;
};
// plan::write: text into an existing file in the new root.
struct write_request {
    std::string target;
    std::string text;
};
struct dev_request {
    std::string target;
};
struct overlay_request {
    std::string target;
    overlay_layers layers;
};
struct path_request {
    mount_step_kind kind;  // make_directory, make_file, mask, read_only
    std::string target;
    mode_t mode = 0755;
};
struct symlink_request {
    std::string text;
    std::string target;
};
struct attributes_request {
    std::string target;
    mount::attributes attrs;
};

// The kinds of request, in the order of request_kinds below.
enum class request_kind : std::uint8_t {
    bind, tmpfs, proc, kernel_fs, dev, overlay, path, symlink, attributes, filesystem, write
};

template <class... Requests>
struct request_list {};
using request_kinds = request_list<bind_request, tmpfs_request, proc_request, kernel_fs_request, dev_request,
                                   overlay_request, path_request, symlink_request, attributes_request,
                                   filesystem_request, write_request>;

template <class Request, class First, class... Rest>
constexpr std::uint8_t request_index(request_list<First, Rest...>) noexcept {
    if constexpr (std::is_same_v<Request, First>)
        return 0;
    else
        return static_cast<std::uint8_t>(1 + request_index<Request>(request_list<Rest...>{}));
}
template <class Request>
inline constexpr request_kind kind_of_request = static_cast<request_kind>(request_index<Request>(request_kinds{}));

// One request of a plan: any one of the types above. Not a std::variant: a
// plan sits in process::options, whose default member initializers make g++
// compile the destructor of each member's type where the options are
// declared, and a variant's destructor brings its whole visitation machinery
// (about 1,000 classes) into every translation unit that includes ctr. This
// holder's special members are plain functions; what depends on a request's
// type is compiled only where a plan adds one of that type.
class mount_request {
public:
    template <class Request, class Plain = std::remove_cvref_t<Request>,
              class = std::enable_if_t<!std::is_same_v<Plain, mount_request>>>
    explicit mount_request(Request&& request)
        : kind_(kind_of_request<Plain>), object_(new Plain(std::forward<Request>(request))),
          operations_(&operations_of<Plain>) {}
    mount_request(const mount_request& other)
        : kind_(other.kind_), object_(other.object_ ? other.operations_->copy(other.object_) : nullptr),
          operations_(other.operations_) {}
    mount_request(mount_request&& other) noexcept
        : kind_(other.kind_), object_(std::exchange(other.object_, nullptr)), operations_(other.operations_) {}
    mount_request& operator=(const mount_request& other) {
        if (this != &other) *this = mount_request(other);
        return *this;
    }
    mount_request& operator=(mount_request&& other) noexcept {
        std::swap(kind_, other.kind_);
        std::swap(object_, other.object_);
        std::swap(operations_, other.operations_);
        return *this;
    }
    ~mount_request() {
        if (object_) operations_->destroy(object_);
    }

    request_kind kind() const noexcept { return kind_; }
    // The request, when it is a `Request`; null otherwise (and when moved from).
    template <class Request>
    const Request* get_if() const noexcept {
        return kind_ == kind_of_request<Request> ? static_cast<const Request*>(object_) : nullptr;
    }
    template <class Request>
    Request* get_if() noexcept {
        return kind_ == kind_of_request<Request> ? static_cast<Request*>(object_) : nullptr;
    }

private:
    struct operations {
        void* (*copy)(const void*);
        void (*destroy)(void*) noexcept;
    };
    template <class Request>
    static void* copy_of(const void* request) {
        return new Request(*static_cast<const Request*>(request));
    }
    template <class Request>
    static void destroy_one(void* request) noexcept {
        delete static_cast<Request*>(request);
    }
    template <class Request>
    static constexpr operations operations_of{&copy_of<Request>, &destroy_one<Request>};

    request_kind kind_;
    void* object_;
    const operations* operations_;
};

template <class Request, class Holder>
const Request* request_if(const Holder& request) noexcept {
    return request.template get_if<Request>();
}

// Calls `visitor` with the request as its own type; every call must return
// a `Result`.
template <class Result, class Visitor, class Holder>
Result visit_request(Visitor&& visitor, const Holder& request) {
    switch (request.kind()) {
    case request_kind::bind: return visitor(*request.template get_if<bind_request>());
    case request_kind::tmpfs: return visitor(*request.template get_if<tmpfs_request>());
    case request_kind::proc: return visitor(*request.template get_if<proc_request>());
    case request_kind::kernel_fs: return visitor(*request.template get_if<kernel_fs_request>());
    case request_kind::dev: return visitor(*request.template get_if<dev_request>());
    case request_kind::overlay: return visitor(*request.template get_if<overlay_request>());
    case request_kind::path: return visitor(*request.template get_if<path_request>());
    case request_kind::symlink: return visitor(*request.template get_if<symlink_request>());
    case request_kind::attributes: return visitor(*request.template get_if<attributes_request>());
    case request_kind::filesystem: return visitor(*request.template get_if<filesystem_request>());
    case request_kind::write: return visitor(*request.template get_if<write_request>());
    }
    return visitor(*request.template get_if<write_request>());  // not reached: every kind is above
}

// A plan's requests, named through the caller's template parameter so that
// the loop over them is compiled only where the caller is: in an expression
// that depends on nothing g++ compiles a loop's iterator operations at the
// template's definition, in every translation unit.
template <class Unused, class Plan>
const auto& plan_requests(const Plan& p) noexcept {
    return p.requests;
}

class step_builder;

}  // namespace detail

// Defined in mount.hpp, which plan::prepare() needs.
class prepared_plan;

// An ordered list of mount operations that builds a child's root filesystem.
// An aggregate: `mount::plan{.rootfs = "/srv/image"}.proc().dev().tmpfs("/tmp")`.
// Targets are paths inside the new root; sources are host paths.
struct plan {
    std::string rootfs{};  // the host directory that becomes "/"; empty: the host's own "/"
    bool read_only_root = false;
    // The root's bind: no setuid and no device files from it (the host's
    // own root in host_readonly()), and idmapped (see bind_options::idmap).
    bool nosuid_root = false;
    bool nodev_root = false;
    idmapping idmap_root = idmapping::none;
    propagation_mode propagation = propagation_mode::private_mounts;
    root_entry entry = root_entry::pivot_root;
    missing_mount_points missing_points = missing_mount_points::make_in_root;
    std::vector<detail::mount_request> requests{};  // what the calls below added, in order

    template <class = void>
    plan& bind(std::string source, std::string target, bind_options options = {}) {
        return add(detail::bind_request{std::move(source), std::move(target), options});
    }
    template <class = void>
    plan& tmpfs(std::string target, tmpfs_options options = {}) {
        return add(detail::tmpfs_request{std::move(target), std::move(options)});
    }
    template <class = void>
    plan& proc(std::string target = "/proc", proc_options options = {}) {
        return add(detail::proc_request{std::move(target), options});
    }
    template <class = void>
    plan& sysfs(std::string target = "/sys") {
        return add(detail::kernel_fs_request{"sysfs", std::move(target)});
    }
    template <class = void>
    plan& devpts(std::string target = "/dev/pts") {
        return add(detail::kernel_fs_request{"devpts", std::move(target)});
    }
    template <class = void>
    plan& mqueue(std::string target = "/dev/mqueue") {
        return add(detail::kernel_fs_request{"mqueue", std::move(target)});
    }
    // A filesystem of any type with the options given (see
    // filesystem_options): devpts with a gid, tmpfs with strictatime, cgroup2,
    // as an OCI config.json asks. Unlike proc() and sysfs() it adds no masks.
    // `source` is what mountinfo shows (empty: the type).
    template <class = void>
    plan& filesystem(std::string fs_type, std::string source, std::string target, filesystem_options options = {}) {
        return add(detail::filesystem_request{std::move(fs_type), std::move(source), std::move(target),
                                              std::move(options)});
    }
    // Writes `text` into the existing file at `target`, in the order of the
    // plan's requests: after the proc() or filesystem("proc", ...) it is in,
    // before a read_only() over it. For an OCI sysctl:
    // .write("/proc/sys/net/ipv4/ping_group_range", "0 0"). The value goes
    // to the namespaces the child is in by then (its network, IPC, UTS).
    template <class = void>
    plan& write(std::string target, std::string text) {
        return add(detail::write_request{std::move(target), std::move(text)});
    }
    // A minimal /dev: a tmpfs with null, zero, full, random, urandom and tty
    // bound from the host; fd, stdin, stdout, stderr and ptmx symlinks; a
    // devpts of its own at pts; a tmpfs at shm.
    template <class = void>
    plan& dev(std::string target = "/dev") {
        return add(detail::dev_request{std::move(target)});
    }
    // An overlay at `target`; at "/" it is the new root itself (then leave
    // rootfs empty).
    template <class = void>
    plan& overlay(std::string target, overlay_layers layers) {
        return add(detail::overlay_request{std::move(target), std::move(layers)});
    }
    template <class = void>
    plan& directory(std::string target, mode_t mode = 0755) {
        return add(detail::path_request{ctr::detail::mount_step_kind::make_directory, std::move(target), mode});
    }
    template <class = void>
    plan& file(std::string target, mode_t mode = 0644) {
        return add(detail::path_request{ctr::detail::mount_step_kind::make_file, std::move(target), mode});
    }
    // A symlink at `target` whose text is `text`.
    template <class = void>
    plan& symlink(std::string text, std::string target) {
        return add(detail::symlink_request{std::move(text), std::move(target)});
    }
    // Hides a path: a file reads empty (/dev/null over it), a directory
    // shows empty (a read-only tmpfs over it). A missing path is skipped.
    template <class = void>
    plan& mask(std::string target) {
        return add(detail::path_request{ctr::detail::mount_step_kind::mask, std::move(target)});
    }
    // Makes a path read-only (bound onto itself). A missing path is skipped.
    template <class = void>
    plan& read_only(std::string target) {
        return add(detail::path_request{ctr::detail::mount_step_kind::read_only, std::move(target)});
    }
    // Sets attributes on the mount at `target` (an earlier step's).
    template <class = void>
    plan& set_attributes(std::string target, attributes attrs) {
        return add(detail::attributes_request{std::move(target), attrs});
    }

    // Appends one request (one of the detail::*_request types).
    template <class Request>
    plan& add(Request&& request) {
        requests.emplace_back(std::forward<Request>(request));
        return *this;
    }

    // Validates the plan and prepares the child's steps. Throws ctr::error
    // naming the step and the path (a missing bind source, an overlay layer
    // that does not exist, a size that does not parse...).
    template <class = void>
    prepared_plan prepare() const;
};

// The plan used when the caller gives no root filesystem: the host's "/"
// bind-mounted read-only (recursively), a private tmpfs at /tmp, a fresh
// /proc and a minimal /dev, as `bwrap --ro-bind / / --proc /proc --dev /dev
// --tmpfs /tmp` gives; /sys is the host's, read-only, with /sys/firmware masked.
template <class = void>
inline plan host_readonly() {
    plan p{.read_only_root = true};
    p.nosuid_root = true;
    p.nodev_root = true;
    p.tmpfs("/tmp", {.mode = 01777}).proc("/proc").dev("/dev").mask("/sys/firmware");
    return p;
}

}  // namespace ctr::mount
