#pragma once
// What process::spawn takes (options) and gives back (result).

#include <ctr/detail/mount_plan.hpp>
#include <ctr/detail/pasta_options.hpp>
#include <ctr/detail/security_options.hpp>
#include <ctr/detail/terminal_options.hpp>
#include <ctr/detail/veth_options.hpp>
#include <ctr/ns.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// Only borrowed here (options::cgroup); cgroup.hpp defines it. The other
// concepts' options come as plain structs (detail/*_options.hpp,
// detail/mount_plan.hpp), not with their operations.
namespace ctr::cgroup {
template <class>
class basic_group;
using group = basic_group<void>;
}

namespace ctr::process {
struct options;
}

namespace ctr::detail {

struct launch_plan;

// A launch layer that spawn runs only for the options that ask for it: the
// root filesystem (options::root), a veth network (options::network) and
// pasta (options::pasta). Each layer's header specializes launch_layer for
// its option's type, with `template <class = void> static void add_steps(...)`,
// and sets layer_header_included for it. Spawn's own header
// (<ctr/spawn.hpp>) includes none of them; <ctr/process.hpp> includes all.
template <class Option>
struct launch_layer;
template <class Option>
inline constexpr bool layer_header_included = false;

using layer_planner = void (*)(launch_plan&, const process::options&);

// An option whose layer is planned only when it is set: a std::optional<T>
// that, when given a value, also takes the address of its layer's planner.
// So the layer's code (mounts, netlink, nftables, pasta) is compiled only in
// the translation units that set the option, and spawn calls it through the
// pointer. Setting it needs the layer's header: <ctr/process.hpp> (a
// program that includes only <ctr/spawn.hpp> gets a compile error that says
// so, never a spawn that ignores the option).
template <class T>
class layer_option {
    // What std::optional<T> takes a value from (and, as there, explicitly
    // where T's own conversion is explicit).
    template <class U>
    static constexpr bool is_value_source =
        !std::is_same_v<std::remove_cvref_t<U>, layer_option> &&
        !std::is_same_v<std::remove_cvref_t<U>, std::nullopt_t> &&
        !std::is_same_v<std::remove_cvref_t<U>, std::in_place_t> &&
        !std::is_same_v<std::remove_cvref_t<U>, std::optional<T>> && std::is_constructible_v<T, U&&>;

public:
    using value_type = T;

    layer_option() noexcept = default;
    layer_option(std::nullopt_t) noexcept {}
    template <class U = T>
        requires is_value_source<U>
    explicit(!std::is_convertible_v<U&&, T>) layer_option(U&& value)
        : value_(std::forward<U>(value)), planner_(planner()) {}
    template <class U = T>
        requires std::is_same_v<U, T>
    layer_option(std::optional<U> value) : value_(std::move(value)), planner_(value_ ? planner() : nullptr) {}

    layer_option& operator=(std::nullopt_t) noexcept {
        reset();
        return *this;
    }
    template <class U = T>
        requires is_value_source<U> && std::is_convertible_v<U&&, T> && std::is_assignable_v<T&, U&&>
    layer_option& operator=(U&& value) {
        value_ = std::forward<U>(value);
        planner_ = planner();
        return *this;
    }
    template <class... Args>
    T& emplace(Args&&... args) {
        value_.emplace(std::forward<Args>(args)...);
        planner_ = planner();
        return *value_;
    }
    void reset() noexcept {
        value_.reset();
        planner_ = nullptr;
    }

    bool has_value() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return value_.has_value(); }
    T& operator*() & noexcept { return *value_; }
    const T& operator*() const& noexcept { return *value_; }
    T* operator->() noexcept { return &*value_; }
    const T* operator->() const noexcept { return &*value_; }
    T& value() & { return value_.value(); }
    const T& value() const& { return value_.value(); }
    template <class U>
    T value_or(U&& otherwise) const& {
        return value_.value_or(std::forward<U>(otherwise));
    }
    // As the std::optional it stands for.
    operator const std::optional<T>&() const& noexcept { return value_; }
    friend bool operator==(const layer_option& option, std::nullopt_t) noexcept { return !option.has_value(); }

    // The layer's planner: set whenever a value is.
    layer_planner planner_of_layer() const noexcept { return planner_; }

private:
    template <class Unused = void>
    static layer_planner planner() noexcept {
        static_assert(layer_header_included<std::conditional_t<true, T, Unused>>,
                      "options::root, options::network and options::pasta need their launch layers: include "
                      "<ctr/process.hpp> (<ctr/spawn.hpp> alone has spawn without them)");
        return &launch_layer<T>::template add_steps<>;
    }

    std::optional<T> value_{};
    layer_planner planner_ = nullptr;
};

}  // namespace ctr::detail

namespace ctr::process {

// Where one standard stream of the child goes.
struct stdio {
    enum class kind : std::uint8_t {
        inherit,  // the parent's own stream
        null,     // /dev/null
        file,     // a file the parent opens
        fd,       // an fd the caller owns (it is duplicated, not taken)
        pipe,     // a pipe whose other end the caller gets from child::std_in/std_out/std_err
        capture,  // a pipe that wait() drains into result::std_out or result::std_err
    };
    kind how = kind::inherit;
    std::string path{};
    int flags = -1;  // for file: -1 picks O_RDONLY for stdin, O_WRONLY|O_CREAT|O_TRUNC otherwise
    unsigned mode = 0644;
    int fd = -1;

    template <class = void>
    static stdio inherit() { return {}; }
    template <class = void>
    static stdio null() { return {.how = kind::null}; }
    template <class = void>
    static stdio file(std::string path, int flags = -1, unsigned mode = 0644) {
        return {.how = kind::file, .path = std::move(path), .flags = flags, .mode = mode};
    }
    template <class = void>
    static stdio append_to(std::string path) {
        return file(std::move(path), O_WRONLY | O_CREAT | O_APPEND);
    }
    template <class = void>
    static stdio from_fd(int borrowed_fd) { return {.how = kind::fd, .fd = borrowed_fd}; }
    template <class = void>
    static stdio pipe() { return {.how = kind::pipe}; }
    template <class = void>
    static stdio capture() { return {.how = kind::capture}; }
};

// An fd of the parent that the child gets at number `target`.
struct fd_mapping {
    int source;
    int target;
};

struct rlimit_setting {
    int resource;  // RLIMIT_*
    rlim_t soft;
    rlim_t hard;
};

// The child's environment: the parent's (or none), then `unset`, then `set`.
struct environment {
    bool inherit = true;
    std::vector<std::pair<std::string, std::string>> set{};
    std::vector<std::string> unset{};
};

// How the child is created; see detail::memory_mode. shared_memory is the
// fast default; copy_memory exists to measure the difference.
enum class clone_style : std::uint8_t { shared_memory, copy_memory };

// What a parent step sees of the child while it waits (see
// options::while_child_waits).
struct waiting_child {
    pid_t pid = -1;
    int pidfd = -1;
};

// Members of aggregate type with a non-trivial destructor (environment,
// stdio, id_maps, security) default to `= T()` rather than `{}`: when a
// caller's designated initializer throws (say .root = mount::host_readonly()
// runs out of memory), g++ 12 destroys a member initialized from a `{}`
// default member initializer twice, and at -O2 and up its
// -Wmaybe-uninitialized reports that in the caller's code. clang++ and the
// `= T()` spelling destroy it once.
struct options {
    // The file to run; empty: argv[0], looked up in the child's PATH when it
    // has no '/'.
    std::string executable{};
    environment env = environment();
    std::string cwd{};  // empty: the parent's
    stdio std_in = stdio();
    stdio std_out = stdio();
    stdio std_err = stdio();
    // Further fds for the child. Every other fd is closed at exec.
    std::vector<fd_mapping> fds{};
    // SIGKILL the child when the parent dies. The kernel ties this to the
    // thread that spawned: if that thread exits, the child is killed too.
    // Only the child: what it starts lives on. See die_with_owner.
    bool die_with_parent = false;
    // The sandbox ends with its owner, this process: when the owner ends,
    // by any signal (SIGKILL included) and at any moment (during setup or
    // while the command runs), every process of the sandbox is killed,
    // whichever thread spawned it and whether or not that thread still
    // runs. A supervisor holds the sandbox: pid 1 with ns::pid (so this
    // implies `init`, as ns::time does), otherwise a child subreaper that
    // kills what the command leaves running when the command ends, as a pid
    // namespace would. What the owner made outside the sandbox (a cgroup,
    // scratch directories) cannot be removed by a dead owner: name it so
    // that the next run finds it (cgroup::reap_stale; docs/lifecycle.md).
    bool die_with_owner = false;
    // Wall-clock limit, counted from spawn and enforced while the caller
    // waits: SIGTERM, then SIGKILL after kill_grace. Zero: none.
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds kill_grace{2000};
    std::vector<rlimit_setting> rlimits{};
    std::optional<mode_t> umask{};
    bool new_session = false;  // setsid: no controlling terminal, own process group
    // With new_session: the child's stdin, a terminal (say the slave of a
    // pty the caller opened), becomes its controlling terminal, so job
    // control and ^C work in an interactive shell.
    bool controlling_terminal = false;
    // Credentials to switch to, in this order: groups, gid, uid.
    std::optional<std::vector<gid_t>> groups{};
    std::optional<gid_t> gid{};
    std::optional<uid_t> uid{};
    clone_style clone = clone_style::shared_memory;

    // Namespaces to create for the child (ns::pid | ns::mount ..., or
    // ns::all). A caller that is not root gets a user namespace with them,
    // which is what lets it create the others.
    ns::kinds namespaces{};
    // Existing namespaces to join (setns), user first.
    std::vector<ns::existing> join{};
    // With ns::uts.
    std::string hostname{};
    std::string domainname{};
    // With ns::user: the uid and gid maps (empty: see ns::id_maps).
    ns::id_maps id_maps = ns::id_maps();
    // With ns::time: clock offsets the child sees.
    ns::time_offsets time_offsets{};
    // With ns::pid: a minimal init is pid 1, forwards signals to the
    // command, reaps orphans and exits with the command's status. false runs
    // the command itself as pid 1 (not with ns::time, which always starts the
    // command from a supervisor: see plan_namespaces).
    bool init = true;

    // A cgroup the child starts in, with no moment outside it: placed by
    // the clone itself on cgroup v2 (CLONE_INTO_CGROUP), attached by the
    // parent before the child goes on past its first steps on v1. Borrowed:
    // the group must outlive the child. The result then carries the group's
    // out-of-memory kills, peak memory and CPU time.
    cgroup::group* cgroup = nullptr;

    // The child's filesystem: a mount plan run in a new mount namespace
    // (added to `namespaces`) before pivot_root into its root, e.g.
    // mount::host_readonly() or mount::plan{.rootfs = "/srv/image"}.proc().dev().
    // Empty: the child sees the parent's mounts.
    ::ctr::detail::layer_option<mount::plan> root{};

    // A network: a veth pair from the caller's network namespace into the
    // child's new one (ns::network is added), addressed and up on both ends
    // before the command runs; child::network() says what was made. Needs
    // CAP_NET_ADMIN where the caller is (root). The pair lives as long as the
    // child's network namespace: when its last process is gone (and no
    // ns::persist holds it), the kernel deletes both ends in the background.
    // A synchronous delete would cost the caller about 30 ms of RCU waits.
    ::ctr::detail::layer_option<net::veth> network{};

    // A network through pasta instead (ctr/pasta.hpp; needs the program,
    // package passt, and no privilege): ns::network is added, and pasta is
    // started on the child's namespace while the child waits, with the
    // published ports; the command runs once pasta has configured the
    // interface. pasta runs as a child of this process in the caller's
    // network namespace and ends when the sandbox does: when wait() has
    // reaped it, or with the handle (child::pasta_pid() says which it is).
    // With die_with_parent or die_with_owner, pasta also dies with the
    // thread that spawned (PR_SET_PDEATHSIG).
    ::ctr::detail::layer_option<net::pasta> pasta{};

    // The caller's own steps, run in the parent after the child's namespaces
    // exist and before it goes on to its mounts and exec: the child's
    // /proc/<pid>/ns/* are there to open (a user-mode network helper, an
    // OCI createRuntime hook). An exception thrown here fails the spawn; the
    // child is killed and reaped.
    std::vector<std::function<void(const waiting_child&)>> while_child_waits{};

    // What the command may still do once it runs: capabilities,
    // no_new_privs, a seccomp filter (ctr/security.hpp). The library's
    // default is explicit: nothing is taken away unless asked, e.g.
    // `.security = ctr::security::confined()` as ctr-run does. Every
    // launch's init is sealed regardless (see child_become_init).
    ::ctr::security security = ::ctr::security();

    // A pty made inside the sandbox for the command's standard streams and
    // its controlling terminal; the caller gets the master from
    // child::terminal() (see terminal_options). Empty: none.
    std::optional<terminal_options> terminal{};

    // Holds the command right before exec until it reads one byte from this
    // fd, and returns from spawn as soon as it is held: every step has
    // succeeded by then (namespaces, mounts, ids, capabilities,
    // no_new_privs), only the seccomp filter and exec remain. So a caller
    // can create a sandbox now and start it later, from this process or
    // from another: an OCI runtime's `create` and `start`. A pipe whose
    // write end the caller keeps, or a FIFO the child holds open for reading
    // and writing (then any process that opens the FIFO can start it). End
    // of file (every writer closed) ends the command unstarted (exit 127);
    // so does a failure after the hold (seccomp, exec), which only the exit
    // status then tells. Borrowed; the child reads its own copy. -1: none.
    int start_gate = -1;
};

// How a run ended.
struct result {
    std::optional<int> exit_code{};  // set when the program exited
    std::optional<int> signal{};     // set when a signal ended it
    bool core_dumped = false;
    bool timed_out = false;          // the timeout fired (the program was then signalled)
    std::chrono::nanoseconds wall_time{};
    std::chrono::nanoseconds user_time{};
    std::chrono::nanoseconds system_time{};
    // The kernel's ru_maxrss of the child and the children it waited for.
    // It counts the memory the child had before exec too, which is a share
    // or a copy of the caller's: a small command started from a large
    // caller shows the caller's size. For the command's own peak, run it in
    // a cgroup and read memory_peak_bytes.
    std::uint64_t rusage_max_rss_bytes = 0;
    std::string std_out{};             // what stdio::capture() collected
    std::string std_err{};
    // With a new pid namespace: other processes were still running in it
    // when the command ended, and died with it (the namespace ends with its
    // pid 1).
    bool pid_namespace_orphans_killed = false;
    // With options::cgroup, this run's figures: what changed in the group
    // between spawn and reap (other processes in the group at the same time
    // count too). A figure the layout does not have stays empty. The
    // group's lifetime figures are cgroup::group::read_stats().
    //  - oom_killed: the group's out-of-memory killer killed a process
    //    during the run (from the group's own events, not guessed from
    //    SIGKILL).
    //  - memory_peak_bytes: the group's highest charge during the run, set
    //    when the kernel can tell it apart: in a group never charged before,
    //    whose lifetime peak is then the run's (a high-water mark cannot be
    //    reset without losing the group's own). Otherwise empty, and
    //    group_memory_peak_bytes has the lifetime figure.
    //  - cgroup_user_time, cgroup_system_time: CPU time the group used
    //    during the run.
    bool oom_killed = false;
    std::optional<std::uint64_t> memory_peak_bytes{};
    std::optional<std::uint64_t> group_memory_peak_bytes{};  // the group's peak over its whole life
    std::optional<std::chrono::nanoseconds> cgroup_user_time{};
    std::optional<std::chrono::nanoseconds> cgroup_system_time{};

    // Exited with status 0 before any timeout.
    template <class = void>
    bool success() const noexcept { return exit_code == 0 && !timed_out; }
};

}  // namespace ctr::process
