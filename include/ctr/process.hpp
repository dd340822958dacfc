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
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
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
    // Credentials to switch to, in this order: groups, gid, uid.
    std::optional<std::vector<gid_t>> groups{};
    std::optional<gid_t> gid{};
    std::optional<uid_t> uid{};
    clone_style clone = clone_style::shared_memory;
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

    // Exited with status 0 before any timeout.
    bool success() const noexcept { return exit_code == 0 && !timed_out; }
};

namespace detail {

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
    child(child&&) noexcept = default;
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
            start_ = other.start_;
            timeout_ = other.timeout_;
            kill_grace_ = other.kill_grace_;
            term_sent_ = other.term_sent_;
            kill_sent_ = other.kill_sent_;
            kill_at_ = other.kill_at_;
            result_ = std::move(other.result_);
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

    // Gives up ownership: the child runs on, and the caller must reap it
    // (waitid(P_PIDFD, ...)) and close the returned pidfd.
    [[nodiscard]] unique_fd release() noexcept {
        std_in_.reset();
        capture_out_.reset();
        capture_err_.reset();
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

    // The child program, in order. Signals first, so that nothing the parent
    // installed can run in the child.
    plan.add({.code = child_op_code::reset_signals, .step = step::reset_signals});
    if (opts.die_with_parent)
        plan.add({.code = child_op_code::die_with_parent, .step = step::die_with_parent, .a = SIGKILL,
                  .b = sys::getpid()});
    if (opts.new_session) plan.add({.code = child_op_code::new_session, .step = step::new_session});
    if (opts.umask) plan.add({.code = child_op_code::set_umask, .step = step::set_umask, .a = static_cast<long>(*opts.umask)});
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
    if (!plan.cwd.empty())
        plan.add({.code = child_op_code::change_directory, .step = step::change_directory, .data = plan.cwd.c_str()},
                 plan.cwd);
    plan.add({.code = child_op_code::restore_signal_mask, .step = step::restore_signal_mask});
    plan.add({.code = child_op_code::exec, .step = step::exec, .data = plan.candidates.data()}, program);

    plan.view.ops = plan.ops.data();
    plan.view.op_count = plan.ops.size();
    plan.view.report_fd = plan.report_write.get();
    plan.view.scratch = plan.scratch.data();
    plan.view.argv = plan.argv.data();
    plan.view.envp = plan.envp.data();
}

// Reaps a child whose setup failed, so that it leaves no zombie.
inline void reap_failed(int pidfd) noexcept {
    siginfo_t info{};
    long r;
    do r = sys::waitid(P_PIDFD, pidfd, &info, WEXITED, nullptr);
    while (r == -EINTR);
}

}  // namespace detail

// Starts argv as a child process; throws ctr::error naming the step that
// failed, in the parent or in the child before exec.
inline child spawn(std::vector<std::string> argv, const options& opts = {}) {
    namespace d = ctr::process::detail;
    namespace cd = ctr::detail;
    d::launch_plan plan;
    d::build_plan(plan, std::move(argv), opts);

    cd::child_stack stack;
    if (const long r = stack.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));

    cd::clone_request request;
    request.memory = opts.clone == clone_style::shared_memory ? cd::memory_mode::shared : cd::memory_mode::copied;

    const auto start = d::clock::now();
    const cd::clone_outcome started = cd::clone_child(request, stack, plan.view);
    if (started.pid < 0) throw error(step::clone, static_cast<int>(-started.pid));

    child handle;
    handle.pid_ = static_cast<pid_t>(started.pid);
    handle.pidfd_.reset(started.pidfd);
    handle.start_ = start;
    handle.timeout_ = opts.timeout;
    handle.kill_grace_ = opts.kill_grace;

    // The child has its own copies now; ours would hold pipes open.
    plan.report_write.reset();
    plan.child_ends.clear();

    // Wait for exec (the channel closes) or a report of the failed step. The
    // stack and plan stay alive until then.
    d::child_report report{};
    std::size_t received = 0;
    while (received < sizeof report) {
        const long n = cd::sys::read(plan.report_read.get(), reinterpret_cast<char*>(&report) + received,
                                     sizeof report - received);
        if (n == -EINTR) continue;
        if (n <= 0) break;
        received += static_cast<std::size_t>(n);
    }
    if (received == sizeof report) {
        d::reap_failed(handle.pidfd_.get());
        handle.pidfd_.reset();
        const std::size_t index = report.op_index;
        const step failed = index < plan.ops.size() ? plan.ops[index].step : step::exec;
        throw error(failed, report.error, index < plan.op_paths.size() ? plan.op_paths[index] : std::string{});
    }

    handle.std_in_ = std::move(plan.parent_in);
    if (plan.capture_out) handle.capture_out_ = std::move(plan.parent_out);
    else handle.std_out_ = std::move(plan.parent_out);
    if (plan.capture_err) handle.capture_err_ = std::move(plan.parent_err);
    else handle.std_err_ = std::move(plan.parent_err);
    return handle;
}

}  // namespace ctr::process
