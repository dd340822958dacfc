#pragma once
// process::spawn: start a program in a child process and get back exactly
// how it ended.
//
// The launch is one straight line: the parent validates the options and
// turns them into a child program (detail/child_program.hpp), clones, the
// child runs that program and execs, and the parent learns over a
// close-on-exec channel whether exec happened or which step failed.

#include <ctr/detail/child_program.hpp>
#include <ctr/detail/clone.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/cgroup.hpp>
#include <ctr/error.hpp>
#include <ctr/mount.hpp>
#include <ctr/net.hpp>
#include <ctr/ns.hpp>
#include <ctr/unique_fd.hpp>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern "C" char** environ;

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

    static stdio inherit() { return {}; }
    static stdio null() { return {.how = kind::null}; }
    static stdio file(std::string path, int flags = -1, unsigned mode = 0644) {
        return {.how = kind::file, .path = std::move(path), .flags = flags, .mode = mode};
    }
    static stdio append_to(std::string path) {
        return file(std::move(path), O_WRONLY | O_CREAT | O_APPEND);
    }
    static stdio from_fd(int borrowed_fd) { return {.how = kind::fd, .fd = borrowed_fd}; }
    static stdio pipe() { return {.how = kind::pipe}; }
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

struct options {
    // The file to run; empty: argv[0], looked up in the child's PATH when it
    // has no '/'.
    std::string executable{};
    environment env{};
    std::string cwd{};  // empty: the parent's
    stdio std_in{};
    stdio std_out{};
    stdio std_err{};
    // Further fds for the child. Every other fd is closed at exec.
    std::vector<fd_mapping> fds{};
    // SIGKILL the child when the parent dies. The kernel ties this to the
    // thread that spawned: if that thread exits, the child is killed too.
    bool die_with_parent = false;
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
    ns::id_maps id_maps{};
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
    std::optional<mount::plan> root{};

    // A network: a veth pair from the caller's network namespace into the
    // child's new one (ns::network is added), addressed and up on both ends
    // before the command runs; child::network() says what was made. Needs
    // CAP_NET_ADMIN where the caller is (root). The pair lives as long as the
    // child's network namespace: when its last process is gone (and no
    // ns::persist holds it), the kernel deletes both ends in the background.
    // A synchronous delete would cost the caller about 30 ms of RCU waits.
    std::optional<net::veth> network{};

    // The caller's own steps, run in the parent after the child's namespaces
    // exist and before it goes on to its mounts and exec: the child's
    // /proc/<pid>/ns/* are there to open (a user-mode network helper, an
    // OCI createRuntime hook). An exception thrown here fails the spawn; the
    // child is killed and reaped.
    std::vector<std::function<void(const waiting_child&)>> while_child_waits{};
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
    std::uint64_t peak_rss_bytes = 0;  // ru_maxrss of the child and the children it waited for
    std::string std_out{};             // what stdio::capture() collected
    std::string std_err{};
    // With a new pid namespace: other processes were still running in it
    // when the command ended, and died with it (the namespace ends with its
    // pid 1).
    bool pid_namespace_orphans_killed = false;
    // With options::cgroup: the group's out-of-memory killer killed a
    // process during this run (from the group's own events, not guessed
    // from SIGKILL), and the group's figures. A figure the layout does not
    // have stays empty.
    bool oom_killed = false;
    std::optional<std::uint64_t> memory_peak_bytes{};
    std::optional<std::chrono::nanoseconds> cgroup_user_time{};
    std::optional<std::chrono::nanoseconds> cgroup_system_time{};

    // Exited with status 0 before any timeout.
    bool success() const noexcept { return exit_code == 0 && !timed_out; }
};

namespace detail {

struct launch_plan;
// What the result needs from a pid 1 init that ran in our memory.
struct init_outcome {
    int command_wait_status = -1;
    bool others_were_running = false;
};
inline init_outcome read_init_outcome(const launch_plan&) noexcept;

// Launch internals build on the library-wide ones.
using namespace ::ctr::detail;
using clock = std::chrono::steady_clock;

inline std::chrono::nanoseconds to_duration(const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

}  // namespace detail

// A running (or finished) child. Move-only; holds its pidfd. Its destructor
// kills and reaps a child that is still running, so no zombie is left;
// release() hands the pidfd (and the duty to reap) to the caller instead.
class child {
public:
    child() = default;
    // Through the assignment, which also empties what the moved-from handle
    // would still report (its network).
    child(child&& other) noexcept { *this = std::move(other); }
    child& operator=(child&& other) noexcept {
        if (this != &other) {
            kill_and_reap();
            pid_ = other.pid_;
            pidfd_ = std::move(other.pidfd_);
            std_in_ = std::move(other.std_in_);
            std_out_ = std::move(other.std_out_);
            std_err_ = std::move(other.std_err_);
            capture_out_ = std::move(other.capture_out_);
            capture_err_ = std::move(other.capture_err_);
            captured_out_ = std::move(other.captured_out_);
            captured_err_ = std::move(other.captured_err_);
            plan_ = std::move(other.plan_);
            cgroup_ = other.cgroup_;
            oom_kills_before_ = other.oom_kills_before_;
            start_ = other.start_;
            timeout_ = other.timeout_;
            kill_grace_ = other.kill_grace_;
            term_sent_ = other.term_sent_;
            kill_sent_ = other.kill_sent_;
            kill_at_ = other.kill_at_;
            result_ = std::move(other.result_);
            network_ = std::exchange(other.network_, std::nullopt);
        }
        return *this;
    }
    ~child() { kill_and_reap(); }

    pid_t pid() const noexcept { return pid_; }
    // For poll or epoll: readable once the child has exited. -1 after reaping.
    int pidfd() const noexcept { return pidfd_.get(); }
    bool valid() const noexcept { return static_cast<bool>(pidfd_) || result_.has_value(); }

    // The caller's ends of stdio::pipe() streams (empty otherwise).
    unique_fd& std_in() noexcept { return std_in_; }
    unique_fd& std_out() noexcept { return std_out_; }
    unique_fd& std_err() noexcept { return std_err_; }

    // Waits until the child ends (enforcing the timeout) and reaps it.
    // Calling it again returns the same result.
    result wait() {
        wait_until(std::nullopt);
        return *result_;
    }

    // Waits at most `limit`; nothing if the child is still running then.
    template <typename Rep, typename Period>
    std::optional<result> wait_for(std::chrono::duration<Rep, Period> limit) {
        const auto until = detail::clock::now() + std::chrono::duration_cast<detail::clock::duration>(limit);
        if (!wait_until(until)) return std::nullopt;
        return result_;
    }

    // Sends `sig` through the pidfd, so it never reaches a recycled pid.
    // After the child was reaped this does nothing.
    void signal(int sig) {
        if (!pidfd_) return;
        if (const long r = ctr::detail::sys::pidfd_send_signal(pidfd_.get(), sig); r < 0 && r != -ESRCH)
            throw error(step::signal, static_cast<int>(-r), "pid " + std::to_string(pid_));
    }
    void kill() { signal(SIGKILL); }

    // The veth options::network made (names and addresses of both ends),
    // or null without one.
    const net::veth_info* network() const noexcept { return network_ ? &*network_ : nullptr; }

    // Gives up ownership: the child runs on, and the caller must reap it
    // (waitid(P_PIDFD, ...)) and close the returned pidfd.
    [[nodiscard]] unique_fd release() noexcept {
        std_in_.reset();
        capture_out_.reset();
        capture_err_.reset();
        // A pid 1 init runs in our memory until it exits, and we no longer
        // know when that is: its launch state (stacks and plan) stays
        // allocated for the life of the process.
        if (plan_) new std::shared_ptr<detail::launch_plan>(std::move(plan_));
        return std::move(pidfd_);
    }

private:
    friend child spawn(std::vector<std::string> argv, const options& opts);

    // True once the child has been reaped; false if `until` came first.
    bool wait_until(std::optional<detail::clock::time_point> until) {
        using namespace std::chrono;
        if (result_) return true;
        for (;;) {
            const auto now = detail::clock::now();
            enforce_timeout(now);
            std::optional<detail::clock::time_point> wake = until;
            if (timeout_.count() > 0) {
                const auto next = term_sent_ ? kill_at_ : start_ + timeout_;
                if (!kill_sent_ && (!wake || next < *wake)) wake = next;
            }
            pollfd fds[3] = {{pidfd_.get(), POLLIN, 0}, {capture_out_.get(), POLLIN, 0},
                             {capture_err_.get(), POLLIN, 0}};
            timespec timeout_spec{};
            const timespec* timeout_ptr = nullptr;
            if (wake) {
                const auto left = std::max(nanoseconds(0), duration_cast<nanoseconds>(*wake - now));
                timeout_spec.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
                timeout_spec.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
                timeout_ptr = &timeout_spec;
            }
            const long ready = ctr::detail::sys::ppoll(fds, 3, timeout_ptr);
            if (ready == -EINTR) continue;
            if (ready < 0) throw error(step::wait, static_cast<int>(-ready), "pid " + std::to_string(pid_));
            const auto after = detail::clock::now();
            if (fds[1].revents) read_some(capture_out_, captured_out_);
            if (fds[2].revents) read_some(capture_err_, captured_err_);
            if (fds[0].revents) {
                reap(after);
                return true;
            }
            if (until && after >= *until) return false;
        }
    }

    void enforce_timeout(detail::clock::time_point now) {
        if (timeout_.count() <= 0 || kill_sent_) return;
        if (!term_sent_ && now >= start_ + timeout_) {
            term_sent_ = true;
            kill_at_ = now + kill_grace_;
            ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGTERM);
        } else if (term_sent_ && now >= kill_at_) {
            kill_sent_ = true;
            ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        }
    }

    // Reads what one capture pipe has now; closes it at end of file.
    void read_some(unique_fd& fd, std::string& into) {
        if (!fd) return;
        char buffer[65536];
        const long n = ctr::detail::sys::read(fd.get(), buffer, sizeof buffer);
        if (n > 0) {
            into.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || (n != -EINTR && n != -EAGAIN)) {
            fd.reset();
        }
    }

    // After exit: take what the pipes already hold, without waiting for an
    // end of file that a background grandchild could hold back forever.
    void drain_captures() {
        for (;;) {
            pollfd fds[2] = {{capture_out_.get(), POLLIN, 0}, {capture_err_.get(), POLLIN, 0}};
            const timespec zero{};
            const long ready = ctr::detail::sys::ppoll(fds, 2, &zero);
            if (ready == -EINTR) continue;
            if (ready <= 0) break;
            if (fds[0].revents) read_some(capture_out_, captured_out_);
            if (fds[1].revents) read_some(capture_err_, captured_err_);
        }
        capture_out_.reset();
        capture_err_.reset();
    }

    void reap(detail::clock::time_point ended) {
        siginfo_t info{};
        rusage usage{};
        long r;
        do r = ctr::detail::sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, &usage);
        while (r == -EINTR);
        if (r < 0) throw error(step::wait, static_cast<int>(-r), "pid " + std::to_string(pid_));
        drain_captures();
        result out;
        if (info.si_code == CLD_EXITED) {
            out.exit_code = info.si_status;
        } else {
            out.signal = info.si_status;
            out.core_dumped = info.si_code == CLD_DUMPED;
        }
        out.timed_out = term_sent_;
        out.wall_time = ended - start_;
        out.user_time = detail::to_duration(usage.ru_utime);
        out.system_time = detail::to_duration(usage.ru_stime);
        out.peak_rss_bytes = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
        out.std_out = std::move(captured_out_);
        out.std_err = std::move(captured_err_);
        if (plan_) {
            // The init reports the command's own status; if the init itself
            // was killed first, its status is the answer.
            const detail::init_outcome init = detail::read_init_outcome(*plan_);
            if (init.command_wait_status >= 0) {
                const int status = init.command_wait_status;
                out.exit_code.reset();
                out.signal.reset();
                if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
                else out.signal = WTERMSIG(status);
                out.core_dumped = WIFSIGNALED(status) && WCOREDUMP(status);
            }
            out.pid_namespace_orphans_killed = init.others_were_running;
            plan_.reset();
        }
        if (cgroup_ && cgroup_->valid()) {
            // A reaped child has left the group, so its figures are final.
            // A group that can no longer be read leaves them empty: the
            // run's own outcome above stands either way.
            try {
                const cgroup::stats figures = cgroup_->read_stats();
                out.oom_killed = figures.oom_kills.value_or(0) > oom_kills_before_;
                out.memory_peak_bytes = figures.memory_peak;
                out.cgroup_user_time = figures.cpu_user;
                out.cgroup_system_time = figures.cpu_system;
            } catch (const error&) {
            }
        }
        result_ = std::move(out);
        pidfd_.reset();
    }

    // Best effort, for destructors: nothing here may throw.
    void kill_and_reap() noexcept {
        if (!pidfd_) return;
        ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        siginfo_t info{};
        long r;
        do r = ctr::detail::sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, nullptr);
        while (r == -EINTR);
        pidfd_.reset();
        plan_.reset();  // only now: a pid 1 init ran in this memory
    }

    pid_t pid_ = -1;
    unique_fd pidfd_;
    unique_fd std_in_, std_out_, std_err_;
    unique_fd capture_out_, capture_err_;
    std::string captured_out_, captured_err_;
    detail::clock::time_point start_{};
    std::chrono::milliseconds timeout_{0};
    std::chrono::milliseconds kill_grace_{0};
    bool term_sent_ = false;
    bool kill_sent_ = false;
    detail::clock::time_point kill_at_{};
    std::optional<result> result_;
    // Kept while a pid 1 init runs on its stack, in our memory.
    std::shared_ptr<detail::launch_plan> plan_;
    // The group the child runs in, and its OOM kill count before the spawn.
    cgroup::group* cgroup_ = nullptr;
    std::uint64_t oom_kills_before_ = 0;
    // What options::network made. The pair itself belongs to the child's
    // network namespace (see options::network).
    std::optional<net::veth_info> network_;
};

namespace detail {

inline constexpr std::string_view default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

inline std::string_view env_key(std::string_view entry) { return entry.substr(0, entry.find('=')); }

inline std::vector<std::string> build_environment(const environment& env) {
    for (const auto& [key, value] : env.set)
        if (key.empty() || key.find('=') != std::string::npos)
            throw error(step::prepare, EINVAL, key, "environment variable names must be non-empty and contain no '='");
    const auto replaced = [&](std::string_view key) {
        for (const auto& name : env.unset)
            if (name == key) return true;
        for (const auto& entry : env.set)
            if (entry.first == key) return true;
        return false;
    };
    std::vector<std::string> entries;
    if (env.inherit)
        for (char** entry = environ; entry && *entry; ++entry)
            if (!replaced(env_key(*entry))) entries.emplace_back(*entry);
    for (const auto& [key, value] : env.set) entries.push_back(key + "=" + value);
    return entries;
}

// The files exec tries, in order: the name itself when it has a '/', else
// each PATH directory of the child's environment.
inline std::vector<std::string> exec_candidates(const std::string& program, const std::vector<std::string>& env) {
    if (program.find('/') != std::string::npos) return {program};
    std::string_view path = default_path;
    for (const auto& entry : env)
        if (env_key(entry) == "PATH") path = std::string_view(entry).substr(5);
    std::vector<std::string> candidates;
    while (true) {
        const auto colon = path.find(':');
        std::string directory{path.substr(0, colon)};
        if (directory.empty()) directory = ".";  // an empty PATH element means the working directory
        candidates.push_back(directory + "/" + program);
        if (colon == std::string_view::npos) break;
        path.remove_prefix(colon + 1);
    }
    return candidates;
}

inline bool fd_is_open(int fd) { return fd >= 0 && sys::fcntl(fd, F_GETFD) >= 0; }

// Everything the child reads, owned by the parent until the child has
// exec'd or exited. Built in full before clone: the child allocates nothing.
struct launch_plan {
    std::vector<std::string> argv_storage;
    std::vector<std::string> env_storage;
    std::vector<std::string> candidate_storage;
    std::string cwd;
    std::vector<char*> argv;
    std::vector<char*> envp;
    std::vector<const char*> candidates;
    std::vector<rlimit> rlimits;
    std::vector<gid_t> groups;
    std::vector<int> scratch;
    std::vector<child_op> ops;
    std::vector<std::string> op_paths;  // what an error in op i names
    child_view view;

    unique_fd report_read, report_write;
    std::vector<unique_fd> child_ends;  // the child's ends of stdio files and pipes
    unique_fd parent_in, parent_out, parent_err;
    bool capture_out = false, capture_err = false;

    // The child's stack, and the command's when a pid 1 init starts it.
    child_stack stack, command_stack;
    clone_request request;
    ns::kinds created;                     // namespaces this launch creates
    // Parent steps between clone and the child going on (id maps).
    unique_fd sync_read, sync_write;
    bool writes_id_maps = false;
    ns::detail::resolved_id_maps id_maps;
    std::vector<unique_fd> join_fds;       // namespace files opened by path
    std::string hostname, domainname, time_offsets_text;
    bool uses_init = false;
    init_state init;
    // The parent attaches the child to this group before it goes on.
    cgroup::group* attach_to = nullptr;
    // options::network, made by the parent and configured inside by the
    // child's configure_interface step.
    const net::veth* network = nullptr;
    bool has_parent_hooks = false;
    // The root filesystem's steps, and what the child's mount steps share
    // (the new root's fd, the finer step and message of a failure).
    std::optional<mount::prepared_plan> mounts;
    mount_context mount_state;
    char mount_message[256] = {};
    int failure_detail = 0;  // the child's own note of which part of a step failed
    bool clears_parent_death_signal = false;

    void add(child_op op, std::string path = {}) {
        ops.push_back(op);
        op_paths.push_back(std::move(path));
    }
};

inline std::string fd_name(int fd) { return "fd " + std::to_string(fd); }

inline unique_fd open_checked(const char* path, int flags, unsigned mode, step s) {
    const long fd = sys::openat(AT_FDCWD, path, flags | O_CLOEXEC, mode);
    if (fd < 0) throw error(s, static_cast<int>(-fd), path);
    return unique_fd(static_cast<int>(fd));
}

// The channel on which the child waits for the parent's steps: a socket
// pair rather than a pipe, so that the parent's write to a child that
// already died fails with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE.
inline void make_sync_channel(unique_fd& child_end, unique_fd& parent_end) {
    int fds[2];
    if (const long r = sys::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); r < 0)
        throw error(step::create_pipe, static_cast<int>(-r), {}, "the sync channel");
    child_end.reset(fds[0]);
    parent_end.reset(fds[1]);
}

inline void make_pipe(unique_fd& read_end, unique_fd& write_end) {
    int fds[2];
    if (const long r = sys::pipe2(fds, O_CLOEXEC); r < 0) throw error(step::create_pipe, static_cast<int>(-r));
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
}

// Resolves one standard stream to the fd the child gets (or -1 to keep the
// parent's own).
inline int prepare_stream(launch_plan& plan, const stdio& spec, int target) {
    const bool input = target == 0;
    switch (spec.how) {
        case stdio::kind::inherit:
            return -1;
        case stdio::kind::null:
            plan.child_ends.push_back(open_checked("/dev/null", input ? O_RDONLY : O_WRONLY, 0, step::open_stdio));
            return plan.child_ends.back().get();
        case stdio::kind::file: {
            const int flags = spec.flags >= 0 ? spec.flags : (input ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC);
            plan.child_ends.push_back(open_checked(spec.path.c_str(), flags, spec.mode, step::open_stdio));
            return plan.child_ends.back().get();
        }
        case stdio::kind::fd:
            if (!fd_is_open(spec.fd)) throw error(step::map_fds, EBADF, fd_name(spec.fd), "stdio fd is not open");
            return spec.fd;
        case stdio::kind::pipe:
        case stdio::kind::capture: {
            unique_fd read_end, write_end;
            make_pipe(read_end, write_end);
            unique_fd& parent_end = target == 0 ? plan.parent_in : target == 1 ? plan.parent_out : plan.parent_err;
            parent_end = input ? std::move(write_end) : std::move(read_end);
            plan.child_ends.push_back(input ? std::move(read_end) : std::move(write_end));
            if (spec.how == stdio::kind::capture) (target == 1 ? plan.capture_out : plan.capture_err) = true;
            return plan.child_ends.back().get();
        }
    }
    return -1;
}

// Moves every source fd to its target number in the child and marks every
// other fd close-on-exec. Sources first go above the highest target, so no
// dup3 can overwrite a source that is still needed.
inline void plan_fd_mapping(launch_plan& plan, const std::vector<fd_mapping>& mappings,
                            const bool inherited_stdio[3]) {
    int lowest_free = 3;
    for (const auto& m : mappings) lowest_free = std::max(lowest_free, m.target + 1);

    // The error channel must survive the moves: put it above every target.
    if (plan.report_write.get() < lowest_free) {
        const long moved = sys::fcntl(plan.report_write.get(), F_DUPFD_CLOEXEC, lowest_free);
        if (moved < 0) throw error(step::create_pipe, static_cast<int>(-moved));
        plan.report_write.reset(static_cast<int>(moved));
    }

    plan.scratch.assign(mappings.size(), -1);
    for (std::size_t i = 0; i < mappings.size(); ++i)
        plan.add({.code = child_op_code::dup_above, .step = step::map_fds, .a = mappings[i].source,
                  .b = lowest_free, .c = static_cast<long>(i)},
                 fd_name(mappings[i].source));
    for (std::size_t i = 0; i < mappings.size(); ++i)
        plan.add({.code = child_op_code::dup_to, .step = step::map_fds, .b = mappings[i].target,
                  .c = static_cast<long>(i)},
                 fd_name(mappings[i].target));

    // Close-on-exec for each gap below lowest_free and everything above it.
    std::vector<bool> kept(static_cast<std::size_t>(lowest_free), false);
    for (int fd = 0; fd < 3; ++fd) kept[static_cast<std::size_t>(fd)] = inherited_stdio[fd];
    for (const auto& m : mappings) kept[static_cast<std::size_t>(m.target)] = true;
    for (int fd = 0; fd < lowest_free;) {
        if (kept[static_cast<std::size_t>(fd)]) {
            ++fd;
            continue;
        }
        int last = fd;
        while (last + 1 < lowest_free && !kept[static_cast<std::size_t>(last + 1)]) ++last;
        plan.add({.code = child_op_code::cloexec_range, .step = step::close_fds, .a = fd, .b = last});
        fd = last + 1;
    }
    plan.add({.code = child_op_code::cloexec_range, .step = step::close_fds, .a = lowest_free, .b = -1});
}

// Validates the namespace options and prepares what the child and the
// parent need for them.
inline void plan_namespaces(launch_plan& plan, const options& opts) {
    ns::kinds wanted = opts.namespaces;
    if (opts.root) wanted = wanted | ns::mount;  // a root filesystem is built in a mount namespace of its own
    if (opts.network) wanted = wanted | ns::network;  // the veth's other end goes into a namespace of its own
    bool joins_user = false;
    for (const auto& j : opts.join) {
        joins_user = joins_user || j.which == ns::user;
        if (opts.network && j.which == ns::network)
            throw error(step::prepare, EINVAL, {}, "options::network makes a new network namespace; it cannot also join one");
    }
    const bool privileged = raw::call(SYS_geteuid) == 0;
    if (!wanted.empty() && !privileged && !joins_user) wanted = wanted | ns::user;
    if (joins_user && wanted.has(ns::user))
        throw error(step::prepare, EINVAL, {}, "cannot both join a user namespace and create one");
    if (joins_user && wanted.has(ns::pid))
        throw error(step::prepare, ENOTSUP, {},
                    "joining a user namespace while creating a pid namespace is not supported yet");
    plan.created = wanted;

    if ((!opts.hostname.empty() || !opts.domainname.empty()) && !wanted.has(ns::uts))
        throw error(step::prepare, EINVAL, opts.hostname, "a hostname needs a new uts namespace (ns::uts)");
    if (opts.hostname.size() > 64 || opts.domainname.size() > 64)
        throw error(step::prepare, ENAMETOOLONG, opts.hostname.size() > 64 ? opts.hostname : opts.domainname,
                    "host and domain names are at most 64 bytes");
    const bool has_offsets = opts.time_offsets.monotonic_seconds != 0 || opts.time_offsets.boottime_seconds != 0;
    if (has_offsets && !wanted.has(ns::time))
        throw error(step::prepare, EINVAL, {}, "time offsets need a new time namespace (ns::time)");
    plan.hostname = opts.hostname;
    plan.domainname = opts.domainname;
    if (wanted.has(ns::time))
        plan.time_offsets_text = "monotonic " + std::to_string(opts.time_offsets.monotonic_seconds) +
                                 " 0\nboottime " + std::to_string(opts.time_offsets.boottime_seconds) + " 0\n";

    // The time and cgroup namespaces are created by unshare in the child
    // (see add_namespace_ops); every other kind by the clone itself. A
    // cgroup namespace made by the clone would have the parent's cgroup as
    // its root, not the group the child is placed in.
    plan.request.flags = wanted.without(ns::time | ns::cgroup).flags();
    if (wanted.has(ns::user)) {
        plan.id_maps = ns::detail::resolve_id_maps(opts.id_maps);
        plan.writes_id_maps = true;
    }
    // The kernel refuses to let a process that shares its memory join a
    // user namespace, so that launch copies the parent's memory instead.
    if (joins_user) plan.request.memory = memory_mode::copied;

    for (const auto& j : opts.join) {
        int fd = -1;
        std::string what;
        if (const auto* path = std::get_if<std::string>(&j.source)) {
            const long opened = sys::openat(AT_FDCWD, path->c_str(), O_RDONLY | O_CLOEXEC);
            if (opened < 0) throw error(step::join_namespace, static_cast<int>(-opened), *path);
            plan.join_fds.emplace_back(static_cast<int>(opened));
            fd = static_cast<int>(opened);
            what = *path;
        } else {
            fd = std::get<int>(j.source);
            if (!fd_is_open(fd)) throw error(step::join_namespace, EBADF, fd_name(fd), "namespace fd is not open");
            what = std::string(ns::name(j.which)) + " namespace " + fd_name(fd);
        }
        // The user namespace goes first: joining it is what grants the
        // rights to join the others.
        const child_op op{.code = child_op_code::join_namespace, .step = step::join_namespace, .a = fd,
                          .b = static_cast<long>(j.which)};
        if (j.which == ns::user) {
            plan.ops.insert(plan.ops.begin(), op);
            plan.op_paths.insert(plan.op_paths.begin(), what);
        } else {
            plan.add(op, what);
        }
    }

    // pid 1 of a new pid namespace is the init unless asked otherwise. A
    // time namespace needs the same shape: its offsets can be set only
    // before any process is in it, and only children of the process that
    // unshared it enter it (older kernels, 6.1 among them, do not move the
    // process itself in at exec), so the command is started by a small
    // supervisor that then reaps it and forwards signals, like the init.
    if ((wanted.has(ns::pid) && opts.init) || wanted.has(ns::time)) {
        plan.uses_init = true;
        if (const long r = plan.command_stack.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));
        plan.init.command_stack_top = plan.command_stack.top();
        plan.init.command_entry = child_command_main;
        plan.init.view = &plan.view;
    }
    if (opts.cgroup) {
        if (!opts.cgroup->valid()) throw error(step::attach_to_cgroup, EINVAL, {}, "the cgroup::group was moved from or removed");
        // Placed by the clone where the layout allows, else attached by the
        // parent while the child waits. The wait is there in both cases,
        // so that a kernel that refuses CLONE_INTO_CGROUP can fall back.
        plan.request.cgroup_fd = opts.cgroup->clone_into_fd();
        if (plan.request.cgroup_fd < 0) plan.attach_to = opts.cgroup;
    }
    if (opts.network) plan.network = &*opts.network;
    plan.has_parent_hooks = !opts.while_child_waits.empty();
    if (plan.writes_id_maps || opts.cgroup || plan.network || plan.has_parent_hooks)
        make_sync_channel(plan.sync_read, plan.sync_write);
}

// The child's namespace steps, after joins (already in the program) and
// before mounts, fds and credentials.
inline void add_namespace_ops(launch_plan& plan) {
    // setns ops were added first; keep them ahead of reset_signals' peers.
    if (plan.sync_read) {
        // The child's copy of the parent's end goes first: while it is open,
        // a parent that died would never be seen as gone.
        plan.add({.code = child_op_code::close_fd, .step = step::wait_for_parent, .a = plan.sync_write.get()});
        plan.add({.code = child_op_code::wait_for_parent, .step = step::wait_for_parent, .a = plan.sync_read.get()});
        if (plan.clears_parent_death_signal)
            plan.add({.code = child_op_code::die_with_parent, .step = step::die_with_parent, .a = 0, .b = 0});
    }
    if (plan.created.has(ns::cgroup))
        plan.add({.code = child_op_code::unshare, .step = step::create_namespaces, .a = CLONE_NEWCGROUP}, "cgroup");
    if (plan.created.has(ns::time)) {
        // unshare(CLONE_NEWTIME) puts this process's children (and this
        // process, at exec) in the new namespace; its offsets can be set
        // only before anything is in it.
        plan.add({.code = child_op_code::unshare, .step = step::create_namespaces, .a = CLONE_NEWTIME}, "time");
        plan.add({.code = child_op_code::write_file, .step = step::set_time_offsets,
                  .a = static_cast<long>(plan.time_offsets_text.size()), .data = "/proc/self/timens_offsets",
                  .data2 = plan.time_offsets_text.c_str()},
                 "/proc/self/timens_offsets");
    }
    if (!plan.hostname.empty())
        plan.add({.code = child_op_code::set_hostname, .step = step::set_hostname,
                  .a = static_cast<long>(plan.hostname.size()), .data = plan.hostname.c_str()},
                 plan.hostname);
    if (!plan.domainname.empty())
        plan.add({.code = child_op_code::set_domainname, .step = step::set_domainname,
                  .a = static_cast<long>(plan.domainname.size()), .data = plan.domainname.c_str()},
                 plan.domainname);
    if (plan.created.has(ns::network))
        plan.add({.code = child_op_code::bring_up_loopback, .step = step::bring_up_loopback}, "lo");
    if (plan.network)
        plan.add({.code = child_op_code::configure_interface, .step = step::configure_link, .a = plan.sync_read.get()},
                 plan.network->container_name);
    if (plan.writes_id_maps) {
        // Become root of the new namespace. Until now the child kept the
        // caller's ids, which the maps need not cover (root's default map
        // starts at 100000); uid 0 inside is always mapped. This comes after
        // the writes to /proc/self above: changing ids makes the process
        // non-dumpable, and its /proc files then belong to the host's root.
        if (plan.id_maps.may_setgroups)
            plan.add({.code = child_op_code::set_groups, .step = step::set_groups, .a = 0, .data = nullptr});
        plan.add({.code = child_op_code::set_gid, .step = step::set_gid, .a = 0}, "gid 0");
        plan.add({.code = child_op_code::set_uid, .step = step::set_uid, .a = 0}, "uid 0");
    }
}

// Writes the uid and gid maps of the child's new user namespace, directly
// or through newuidmap/newgidmap.
inline void write_id_maps(pid_t pid, const ns::detail::resolved_id_maps& maps);

inline void build_plan(launch_plan& plan, std::vector<std::string> argv, const options& opts) {
    if (argv.empty()) throw error(step::prepare, EINVAL, {}, "argv is empty");
    for (const auto& arg : argv)
        if (arg.find('\0') != std::string::npos) throw error(step::prepare, EINVAL, arg, "argument contains a NUL byte");

    plan.argv_storage = std::move(argv);
    plan.env_storage = build_environment(opts.env);
    const std::string& program = opts.executable.empty() ? plan.argv_storage.front() : opts.executable;
    if (program.empty()) throw error(step::prepare, ENOENT, {}, "the program name is empty");
    plan.candidate_storage = exec_candidates(program, plan.env_storage);
    plan.cwd = opts.cwd;

    for (auto& s : plan.argv_storage) plan.argv.push_back(s.data());
    plan.argv.push_back(nullptr);
    for (auto& s : plan.env_storage) plan.envp.push_back(s.data());
    plan.envp.push_back(nullptr);
    for (auto& s : plan.candidate_storage) plan.candidates.push_back(s.c_str());
    plan.candidates.push_back(nullptr);

    make_pipe(plan.report_read, plan.report_write);

    // Standard streams and passed fds.
    std::vector<fd_mapping> mappings;
    bool inherited_stdio[3] = {false, false, false};
    const stdio* streams[3] = {&opts.std_in, &opts.std_out, &opts.std_err};
    for (int target = 0; target < 3; ++target) {
        const int source = prepare_stream(plan, *streams[target], target);
        if (source < 0) inherited_stdio[target] = true;
        else mappings.push_back({source, target});
    }
    for (const auto& m : opts.fds) {
        if (m.target < 0 || m.target > 65535)
            throw error(step::map_fds, EBADF, fd_name(m.target), "target fd number out of range");
        if (!fd_is_open(m.source)) throw error(step::map_fds, EBADF, fd_name(m.source), "source fd is not open");
        for (const auto& other : mappings)
            if (other.target == m.target)
                throw error(step::map_fds, EINVAL, fd_name(m.target), "two fds are mapped to the same number");
        mappings.push_back(m);
        if (m.target < 3) inherited_stdio[m.target] = false;
    }

    plan.rlimits.reserve(opts.rlimits.size());
    for (const auto& limit : opts.rlimits) plan.rlimits.push_back({limit.soft, limit.hard});
    if (opts.groups) plan.groups = *opts.groups;

    plan_namespaces(plan, opts);

    // The child program, in order. Signals first, so that nothing the parent
    // installed can run in the child.
    plan.add({.code = child_op_code::reset_signals, .step = step::reset_signals});
    // While the child waits for the parent's steps it dies with the parent
    // even when not asked to: other children being set up at the same time
    // hold copies of its sync channel, so the channel alone may never say
    // that the parent is gone. add_namespace_ops clears it after the wait.
    plan.clears_parent_death_signal = plan.sync_read && !opts.die_with_parent;
    if (opts.die_with_parent || plan.sync_read)
        // In a new pid namespace getppid() says 0, so the check that the
        // parent is still there cannot be made.
        plan.add({.code = child_op_code::die_with_parent, .step = step::die_with_parent, .a = SIGKILL,
                  .b = plan.created.has(ns::pid) ? 0 : sys::getpid()});
    add_namespace_ops(plan);
    if (opts.root) {
        // The root filesystem, with every right the new namespaces give,
        // before credentials drop them. Paths the command uses (cwd, PATH
        // candidates) are resolved after it, inside the new root.
        plan.mounts = opts.root->prepare();
        plan.mount_state.message = plan.mount_message;
        plan.mount_state.message_size = sizeof plan.mount_message;
        const auto steps = plan.mounts->steps();
        for (std::size_t i = 0; i < steps.size(); ++i)
            plan.add({.code = child_op_code::mount_step, .step = step::mount, .a = static_cast<long>(i),
                      .data = &steps[i], .data2 = &plan.mount_state},
                     steps[i].target ? steps[i].target : "");
    }
    for (std::size_t i = 0; i < plan.rlimits.size(); ++i)
        plan.add({.code = child_op_code::set_rlimit, .step = step::set_rlimit, .a = opts.rlimits[i].resource,
                  .data = &plan.rlimits[i]},
                 "resource " + std::to_string(opts.rlimits[i].resource));
    plan_fd_mapping(plan, mappings, inherited_stdio);
    if (opts.groups)
        plan.add({.code = child_op_code::set_groups, .step = step::set_groups,
                  .a = static_cast<long>(plan.groups.size()), .data = plan.groups.data()});
    if (opts.gid)
        plan.add({.code = child_op_code::set_gid, .step = step::set_gid, .a = static_cast<long>(*opts.gid)},
                 "gid " + std::to_string(*opts.gid));
    if (opts.uid)
        plan.add({.code = child_op_code::set_uid, .step = step::set_uid, .a = static_cast<long>(*opts.uid)},
                 "uid " + std::to_string(*opts.uid));
    if (plan.uses_init) {
        // Everything above ran in pid 1 (or the time namespace's
        // supervisor); what follows runs in the command.
        plan.add({.code = child_op_code::become_init, .step = step::run_init, .data = &plan.init});
    }
    if (opts.controlling_terminal && !opts.new_session)
        throw error(step::prepare, EINVAL, {}, "a controlling terminal needs a new session (options::new_session)");
    if (opts.new_session) plan.add({.code = child_op_code::new_session, .step = step::new_session});
    if (opts.controlling_terminal)
        plan.add({.code = child_op_code::set_controlling_terminal, .step = step::set_controlling_terminal, .a = 0},
                 "fd 0");
    if (opts.umask) plan.add({.code = child_op_code::set_umask, .step = step::set_umask, .a = static_cast<long>(*opts.umask)});
    if (!plan.cwd.empty())
        plan.add({.code = child_op_code::change_directory, .step = step::change_directory, .data = plan.cwd.c_str()},
                 plan.cwd);
    plan.add({.code = child_op_code::restore_signal_mask, .step = step::restore_signal_mask});
    plan.add({.code = child_op_code::exec, .step = step::exec, .data = plan.candidates.data()}, program);

    if (plan.uses_init) {
        // The command continues right after become_init.
        for (std::size_t i = 0; i < plan.ops.size(); ++i)
            if (plan.ops[i].code == child_op_code::become_init) plan.init.next_op = i + 1;
    }
    plan.view.ops = plan.ops.data();
    plan.view.op_count = plan.ops.size();
    plan.view.report_fd = plan.report_write.get();
    plan.view.scratch = plan.scratch.data();
    plan.view.argv = plan.argv.data();
    plan.view.envp = plan.envp.data();
    plan.view.failure_detail = &plan.failure_detail;
}

// Reaps a child whose setup failed, so that it leaves no zombie.
inline void reap_failed(int pidfd) noexcept {
    siginfo_t info{};
    long r;
    do r = sys::waitid(P_PIDFD, pidfd, &info, WEXITED, nullptr);
    while (r == -EINTR);
}

}  // namespace detail

namespace detail {

inline void write_proc_file(const std::string& path, const std::string& text, step s) {
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw error(s, static_cast<int>(-fd), path);
    const long written = sys::write(static_cast<int>(fd), text.data(), text.size());
    sys::close(static_cast<int>(fd));
    if (written < 0) throw error(s, static_cast<int>(-written), path, "writing \"" + text.substr(0, text.find('\n')) + "\"");
}

// Writes one of the child's id-map files; explains the one surprising
// refusal: a process that changed its ids without exec is not dumpable, and
// the /proc files of it and of its children belong to root.
inline void write_id_map_file(const std::string& path, const std::string& text, step s) {
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd == -EACCES && sys::prctl(PR_GET_DUMPABLE) == 0)
        throw error(s, EACCES, path,
                    "this process is not dumpable (it changed its ids without exec), so its children's /proc files "
                    "belong to root; prctl(PR_SET_DUMPABLE, 1) first");
    if (fd >= 0) sys::close(static_cast<int>(fd));
    write_proc_file(path, text, s);
}

inline child spawn_unchecked_helper(std::vector<std::string> argv);

inline void run_id_map_helper(const char* helper, pid_t pid, const std::vector<ns::id_range>& ranges, step s) {
    std::vector<std::string> argv{helper, std::to_string(pid)};
    for (const auto& r : ranges) {
        argv.push_back(std::to_string(r.inside));
        argv.push_back(std::to_string(r.outside));
        argv.push_back(std::to_string(r.count));
    }
    auto r = spawn_unchecked_helper(std::move(argv)).wait();
    if (r.exit_code != 0) {
        std::string message = r.std_err.substr(0, r.std_err.find('\n'));
        throw error(s, EPERM, helper, message.empty() ? "it failed" : message);
    }
}

inline void write_id_maps(pid_t pid, const ns::detail::resolved_id_maps& maps) {
    if (maps.use_helpers) {
        run_id_map_helper("/usr/bin/newuidmap", pid, maps.uid, step::write_uid_map);
        run_id_map_helper("/usr/bin/newgidmap", pid, maps.gid, step::write_gid_map);
        return;
    }
    const std::string base = "/proc/" + std::to_string(pid) + "/";
    if (maps.deny_setgroups) write_id_map_file(base + "setgroups", "deny", step::deny_setgroups);
    write_id_map_file(base + "uid_map", ns::detail::map_text(maps.uid), step::write_uid_map);
    write_id_map_file(base + "gid_map", ns::detail::map_text(maps.gid), step::write_gid_map);
}

inline init_outcome read_init_outcome(const launch_plan& plan) noexcept {
    if (!plan.uses_init) return {};
    return {plan.init.command_wait_status, plan.created.has(ns::pid) && plan.init.others_were_running != 0};
}

// The error for a failed clone: with namespaces, why they could not be made.
inline error clone_error(const launch_plan& plan, long negative_errno) {
    const int code = static_cast<int>(-negative_errno);
    if (plan.created.empty()) return error(step::clone, code);
    std::string kinds;
    for (ns::kind k : ns::every_kind)
        if (plan.created.has(k)) kinds += (kinds.empty() ? "" : ",") + std::string(ns::name(k));
    if (plan.created.has(ns::user) && (code == EPERM || code == ENOSPC || code == EUSERS || code == EINVAL))
        return error(step::create_namespaces, code, kinds, ns::detail::user_namespace_blocker(negative_errno));
    if (code == EPERM)
        return error(step::create_namespaces, code, kinds,
                     "creating namespaces needs CAP_SYS_ADMIN; add a user namespace (ns::user) to do it unprivileged");
    return error(step::create_namespaces, code, kinds);
}

// The child's report of a failed step: waits for it (or for exec, which
// closes the channel) when `wait`, else takes only one already there.
inline std::optional<child_report> read_report(const launch_plan& plan, bool wait) {
    if (!wait) {
        pollfd ready{plan.report_read.get(), POLLIN, 0};
        timespec now{};
        if (sys::ppoll(&ready, 1, &now) <= 0 || !(ready.revents & POLLIN)) return std::nullopt;
    }
    child_report report{};
    std::size_t received = 0;
    while (received < sizeof report) {
        const long n = sys::read(plan.report_read.get(), reinterpret_cast<char*>(&report) + received,
                                 sizeof report - received);
        if (n == -EINTR) continue;
        if (n <= 0) break;
        received += static_cast<std::size_t>(n);
    }
    if (received != sizeof report) return std::nullopt;
    return report;
}

// The error a child's report stands for, with what the plan knows of the step.
inline error report_error(const launch_plan& plan, const child_report& report) {
    const std::size_t index = report.op_index;
    // A mount step's error says which part failed and why, as the plan knows
    // it (the child left the details in the shared mount state).
    if (index < plan.ops.size() && plan.ops[index].code == child_op_code::mount_step && plan.mounts)
        return plan.mounts->error_for(static_cast<std::size_t>(plan.ops[index].a), report.error,
                                      plan.request.memory == memory_mode::shared ? &plan.mount_state : nullptr);
    const step failed = index < plan.ops.size() ? plan.ops[index].step : step::exec;
    std::string path = index < plan.op_paths.size() ? plan.op_paths[index] : std::string{};
    if (index < plan.ops.size() && plan.ops[index].code == child_op_code::configure_interface && plan.network)
        return error(failed, report.error, std::move(path),
                     net::detail::interface_setup_failure(report.detail));
    return error(failed, report.error, std::move(path));
}

}  // namespace detail

// Starts argv as a child process; throws ctr::error naming the step that
// failed, in the parent or in the child before exec.
inline child spawn(std::vector<std::string> argv, const options& opts = {}) {
    namespace d = ctr::process::detail;
    namespace cd = ctr::detail;
    // Shared with the child handle when a pid 1 init keeps running in it.
    const auto plan = std::make_shared<d::launch_plan>();
    if (opts.clone == clone_style::copy_memory) plan->request.memory = cd::memory_mode::copied;
    d::build_plan(*plan, std::move(argv), opts);

    if (const long r = plan->stack.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));

    const std::uint64_t oom_kills_before = opts.cgroup ? opts.cgroup->oom_kills().value_or(0) : 0;
    const auto start = d::clock::now();
    cd::clone_outcome started = cd::clone_child(plan->request, plan->stack, plan->view);
    if (plan->request.cgroup_fd >= 0 &&
        (started.pid == -EINVAL || started.pid == -ENOSYS || started.pid == -E2BIG || started.pid == -EOPNOTSUPP)) {
        // No CLONE_INTO_CGROUP (Linux before 5.7, or no clone3): attach the
        // waiting child instead.
        plan->request.cgroup_fd = -1;
        plan->attach_to = opts.cgroup;
        started = cd::clone_child(plan->request, plan->stack, plan->view);
    }
    if (started.pid < 0) throw d::clone_error(*plan, started.pid);

    // Declared after the plan, so that it is destroyed first: its
    // destructor kills and reaps a child that may still use the plan.
    child handle;
    handle.pid_ = static_cast<pid_t>(started.pid);
    handle.pidfd_.reset(started.pidfd);
    handle.start_ = start;
    handle.timeout_ = opts.timeout;
    handle.kill_grace_ = opts.kill_grace;

    // The child has its own copies now; ours would hold pipes open.
    plan->report_write.reset();
    plan->sync_read.reset();
    plan->child_ends.clear();

    handle.cgroup_ = opts.cgroup;
    handle.oom_kills_before_ = oom_kills_before;

    // The parent's steps while the child waits. If one fails, the child is
    // killed with the handle; but when the child failed first (a join before
    // its wait), its own report is the better answer.
    std::optional<net::veth_pair> veth;
    try {
        if (plan->writes_id_maps) d::write_id_maps(handle.pid_, plan->id_maps);
        if (plan->attach_to) plan->attach_to->attach(handle.pid_);
        if (plan->network) {
            veth = net::create_veth(*plan->network, net::peer_namespace::of_process(handle.pid_));
            handle.network_ = veth->info();
            // From here the pair is the namespace's: if a later step fails, the
            // child is killed, its namespace ends and the kernel deletes the pair.
            veth->host_link().release();
        }
        for (const auto& hook : opts.while_child_waits) hook(waiting_child{handle.pid_, handle.pidfd_.get()});
    } catch (...) {
        if (const auto reported = d::read_report(*plan, false)) {
            d::reap_failed(handle.pidfd_.get());
            handle.pidfd_.reset();
            throw d::report_error(*plan, *reported);
        }
        throw;
    }
    if (plan->sync_write) {
        // The go byte, then what the child's configure_interface step reads:
        // one write, so the child never sees half of it. A child that already
        // failed has closed its end: EPIPE, and its report says why.
        char message[1 + sizeof(cd::interface_setup)] = {1};
        std::size_t length = 1;
        if (veth) {
            const cd::interface_setup setup = veth->container_setup();
            std::memcpy(message + 1, &setup, sizeof setup);
            length += sizeof setup;
        }
        long r;
        do r = cd::sys::sendto(plan->sync_write.get(), message, length, MSG_NOSIGNAL, nullptr, 0);
        while (r == -EINTR);
        if (r != static_cast<long>(length) && r != -EPIPE && r != -ECONNRESET)
            throw error(step::wait_for_parent, r < 0 ? static_cast<int>(-r) : EIO);
        plan->sync_write.reset();
    }

    // Wait for exec (the channel closes) or a report of the failed step. The
    // stack and plan stay alive until then.
    if (const auto reported = d::read_report(*plan, true)) {
        d::reap_failed(handle.pidfd_.get());
        handle.pidfd_.reset();
        throw d::report_error(*plan, *reported);
    }
    if (plan->uses_init) handle.plan_ = plan;  // pid 1 runs on in our memory
    handle.std_in_ = std::move(plan->parent_in);
    if (plan->capture_out) handle.capture_out_ = std::move(plan->parent_out);
    else handle.std_out_ = std::move(plan->parent_out);
    if (plan->capture_err) handle.capture_err_ = std::move(plan->parent_err);
    else handle.std_err_ = std::move(plan->parent_err);
    return handle;
}

namespace detail {
// newuidmap and newgidmap run as plain children, their stderr captured.
inline child spawn_unchecked_helper(std::vector<std::string> argv) {
    return spawn(std::move(argv), {.std_in = stdio::null(), .std_out = stdio::null(), .std_err = stdio::capture()});
}
}  // namespace detail

}  // namespace ctr::process
