#pragma once
// process::spawn: start a program in a child process and get back exactly
// how it ended.
//
// This header is spawn alone: namespaces, ids, cgroups, streams, rlimits,
// confinement. The layers that need much more code, the root filesystem
// (options::root), a veth network (options::network) and pasta
// (options::pasta), come with <ctr/process.hpp>, which includes this one;
// setting one of them with this header alone is a compile error that says
// so (detail::layer_option).
//
// The launch is one straight line: the parent validates the options and
// turns them into a child program (detail/child_program.hpp), clones, the
// child runs that program and execs, and the parent learns over a
// close-on-exec channel whether exec happened or which step failed.

#include <ctr/detail/launch_cgroup.hpp>
#include <ctr/detail/launch_identity.hpp>
#include <ctr/detail/launch_io.hpp>
#include <ctr/detail/launch_lifetime.hpp>
#include <ctr/detail/launch_namespaces.hpp>
#include <ctr/detail/launch_plan.hpp>
#include <ctr/detail/launch_security.hpp>
#include <ctr/detail/launch_terminal.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/spawn_options.hpp>
#include <ctr/unique_fd.hpp>

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ctr::process {

namespace detail {

using ::ctr::detail::launch_plan;
// What the result needs from a pid 1 init that ran in our memory.
struct init_outcome {
    int command_wait_status = -1;
    bool others_were_running = false;
};
template <class = void>
inline init_outcome read_init_outcome(const launch_plan&) noexcept;

// Launch internals build on the library-wide ones.
using namespace ::ctr::detail;
using clock = std::chrono::steady_clock;

// Whether this process ignores SIGCHLD (SIG_IGN or SA_NOCLDWAIT): then the
// kernel reaps children by itself and wait finds none.
template <class = void>
inline bool sigchld_ignored() noexcept {
    ::ctr::detail::sys::kernel_sigaction current{};
    if (::ctr::detail::sys::rt_sigaction(SIGCHLD, nullptr, &current) < 0) return false;
    return current.handler == SIG_IGN || (current.flags & SA_NOCLDWAIT) != 0;
}

template <class = void>
inline std::chrono::nanoseconds to_duration(const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

}  // namespace detail

// A running (or finished) child. Move-only; holds its pidfd. Its destructor
// kills and reaps a child that is still running, so no zombie is left;
// release() hands the pidfd (and the duty to reap) to the caller instead.
template <class>
class basic_child;
using child = basic_child<void>;
template <class = void>
[[nodiscard("the child is killed when its handle is dropped: keep it, wait() for it, or release() it")]]
child spawn(std::vector<std::string> argv, const options& opts = {});

namespace detail {
// A step another launcher adds to a spawn's program before it is ordered
// (a prepared sandbox's server, in place of exec).
struct plan_extension {
    void (*add)(launch_plan& plan, void* data) = nullptr;
    void* data = nullptr;
};
template <class = void>
child spawn_extended(std::vector<std::string> argv, const options& opts, plan_extension extension);
}  // namespace detail

template <class>
class [[nodiscard]] basic_child {
public:
    basic_child() = default;
    // Through the assignment, which leaves the moved-from handle empty in
    // every accessor (pid -1, no pidfd, no result, no network).
    basic_child(basic_child&& other) noexcept { *this = std::move(other); }
    basic_child& operator=(basic_child&& other) noexcept {
        if (this != &other) {
            kill_and_reap();
            pid_ = std::exchange(other.pid_, -1);
            pidfd_ = std::move(other.pidfd_);
            std_in_ = std::move(other.std_in_);
            std_out_ = std::move(other.std_out_);
            std_err_ = std::move(other.std_err_);
            capture_out_ = std::move(other.capture_out_);
            capture_err_ = std::move(other.capture_err_);
            captured_out_ = std::move(other.captured_out_);
            captured_err_ = std::move(other.captured_err_);
            plan_ = std::move(other.plan_);
            cgroup_ = std::exchange(other.cgroup_, nullptr);
            cgroup_run_ = other.cgroup_run_;
            start_ = other.start_;
            timeout_ = other.timeout_;
            kill_grace_ = other.kill_grace_;
            term_sent_ = other.term_sent_;
            kill_sent_ = other.kill_sent_;
            kill_at_ = other.kill_at_;
            result_ = std::exchange(other.result_, std::nullopt);
            network_ = std::move(other.network_);
            ends_after_sandbox_ = std::move(other.ends_after_sandbox_);
            other.ends_after_sandbox_.clear();
            pasta_pid_ = std::exchange(other.pasta_pid_, -1);
            terminal_ = std::move(other.terminal_);
            seccomp_listener_ = std::move(other.seccomp_listener_);
        }
        return *this;
    }
    ~basic_child() { kill_and_reap(); }

    template <class = void>
    pid_t pid() const noexcept { return pid_; }
    // For poll or epoll: readable once the child has exited. -1 after reaping.
    template <class = void>
    int pidfd() const noexcept { return pidfd_.get(); }
    template <class = void>
    bool valid() const noexcept { return static_cast<bool>(pidfd_) || result_.has_value(); }

    // The caller's ends of stdio::pipe() streams (empty otherwise).
    template <class = void>
    unique_fd& std_in() noexcept { return std_in_; }
    template <class = void>
    unique_fd& std_out() noexcept { return std_out_; }
    template <class = void>
    unique_fd& std_err() noexcept { return std_err_; }

    // Waits until the child ends (enforcing the timeout) and reaps it.
    // Calling it again returns the same result.
    template <class = void>
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
    template <class = void>
    void signal(int sig) {
        if (!pidfd_) return;
        if (const long r = ctr::detail::sys::pidfd_send_signal(pidfd_.get(), sig); r < 0 && r != -ESRCH)
            throw error(step::signal, static_cast<int>(-r), "pid " + std::to_string(pid_));
    }
    template <class = void>
    void kill() { signal(SIGKILL); }

    // The master of options::terminal's pty (empty without one, or when it
    // went to a console socket): read what the command writes, write what
    // it reads. The caller may take it (std::move); it is closed with the
    // handle otherwise.
    template <class = void>
    unique_fd& terminal() noexcept { return terminal_; }

    // Sets the window size of options::terminal's pty (TIOCSWINSZ on the
    // master): the command's foreground process group gets SIGWINCH. For a
    // caller that relays a terminal of its own, on its SIGWINCH.
    template <class = void>
    void resize_terminal(window_size size) {
        if (!terminal_)
            throw error(step::open_terminal, EBADF, {}, "this child has no terminal master (options::terminal)");
        winsize value{};
        value.ws_row = size.rows;
        value.ws_col = size.columns;
        if (const long r = ctr::detail::sys::ioctl(terminal_.get(), TIOCSWINSZ, reinterpret_cast<long>(&value)); r < 0)
            throw error(step::open_terminal, static_cast<int>(-r), "pid " + std::to_string(pid_),
                        "setting the window size");
    }

    // The listener of a seccomp filter that notifies (seccomp::action::
    // notify), for a supervisor (<ctr/seccomp_notify.hpp>); empty without
    // one, and once taken. While no supervisor holds it the notified calls
    // wait; once every copy is closed they fail with ENOSYS.
    template <class = void>
    [[nodiscard]] unique_fd take_seccomp_listener() noexcept { return std::move(seccomp_listener_); }

    // The veth options::network made (names and addresses of both ends),
    // or null without one.
    template <class = void>
    const net::veth_info* network() const noexcept { return network_.get(); }

    // The pid of options::pasta's pasta while it runs, else -1. It is a
    // child of this process, ended and reaped once the sandbox has been
    // reaped (by wait, or by the handle's end); release() leaves it to the
    // handle, so keep the handle while the released sandbox needs a network.
    template <class = void>
    pid_t pasta_pid() const noexcept { return pasta_pid_; }

    // Gives up ownership: the child runs on, and the caller must reap it
    // (waitid(P_PIDFD, ...)) and close the returned pidfd. A sandbox spawned
    // with die_with_owner still ends with this process.
    [[nodiscard]] unique_fd release() noexcept {
        std_in_.reset();
        capture_out_.reset();
        capture_err_.reset();
        // A child that runs in our memory (shared, not copied) needs its
        // launch state (stacks and plan) until it exits, and we no longer
        // know when that is: then it stays allocated for the life of the
        // process. A child on a copy of our memory (every init and
        // supervisor, every held child) has its own; ours can go.
        if (plan_ && plan_->request.memory == ::ctr::detail::memory_mode::shared)
            new std::shared_ptr<detail::launch_plan>(std::move(plan_));
        plan_.reset();
        return std::move(pidfd_);
    }

private:
    template <class> friend child detail::spawn_extended(std::vector<std::string> argv, const options& opts,
                                                         detail::plan_extension extension);

    // True once the child has been reaped; false if `until` came first.
    template <class = void>
    bool wait_until(std::optional<detail::clock::time_point> until) {
        using namespace std::chrono;
        if (result_) return true;
        if (!pidfd_)
            throw error(step::wait, EINVAL, {},
                        "this process::child holds no process (default-constructed, moved from, or released): there "
                        "is nothing to wait for");
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

    template <class = void>
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
    template <class = void>
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
    template <class = void>
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

    template <class = void>
    void reap(detail::clock::time_point ended) {
        siginfo_t info{};
        rusage usage{};
        long r;
        do r = ctr::detail::sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, &usage);
        while (r == -EINTR);
        if (r == -ECHILD && detail::sigchld_ignored())
            throw error(step::wait, ECHILD, "pid " + std::to_string(pid_),
                        "SIGCHLD is ignored in this process (SIG_IGN or SA_NOCLDWAIT), so the kernel reaps children "
                        "itself and their exit status is lost; set SIGCHLD back to SIG_DFL before spawning");
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
        out.rusage_max_rss_bytes = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
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
                detail::add_cgroup_run_figures(out, cgroup_run_, cgroup_->read_run_figures());
            } catch (const error&) {
            }
        }
        result_ = std::move(out);
        pidfd_.reset();
        end_what_outlasts_the_sandbox();  // its network (pasta, NAT rules) ends with it
    }

    // Best effort, for destructors: nothing here may throw.
    template <class = void>
    void kill_and_reap() noexcept {
        if (!pidfd_) return;
        ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        siginfo_t info{};
        long r;
        do r = ctr::detail::sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, nullptr);
        while (r == -EINTR);
        pidfd_.reset();
        plan_.reset();  // only now: a pid 1 init ran in this memory
        end_what_outlasts_the_sandbox();
    }

    // The last made first: pasta, then the outbound NAT rule, then the
    // published ports' rules.
    void end_what_outlasts_the_sandbox() noexcept {
        while (!ends_after_sandbox_.empty()) ends_after_sandbox_.pop_back();
        pasta_pid_ = -1;
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
    // The group the child runs in, and its figures before the spawn.
    cgroup::group* cgroup_ = nullptr;
    detail::cgroup_run_start cgroup_run_{};
    // What options::network made. The pair itself belongs to the child's
    // network namespace (see options::network).
    std::shared_ptr<const net::veth_info> network_;
    // What the network layers made that ends after the sandbox
    // (launch_plan::ends_after_sandbox), and options::pasta's pid.
    std::vector<std::shared_ptr<void>> ends_after_sandbox_;
    pid_t pasta_pid_ = -1;
    unique_fd terminal_;
    unique_fd seccomp_listener_;
};
using child = basic_child<void>;

namespace detail {

// The child's wait for the parent's steps, when a layer has any: the child
// closes its copy of the parent's end, then reads the go byte.
template <class = void>
inline void plan_parent_wait(launch_plan& plan, const options& opts) {
    for (const auto& hook : opts.while_child_waits)
        plan.while_child_waits([&hook](parent_step_context& child) { hook(waiting_child{child.pid, child.pidfd}); });
    if (plan.has_parent_steps()) plan.sync_channel();
    // In a new pid namespace getppid() says 0, so the check that the parent
    // is still there cannot be made.
    const long parent = plan.created.has(ns::pid) ? 0 : sys::getpid();
    if (opts.die_with_parent)
        plan.add(launch_phase::signals, {.code = child_op_code::die_with_parent, .step = step::die_with_parent,
                                         .a = SIGKILL, .b = parent});
    if (!plan.sync_read) return;
    // While the child waits it dies with the parent even when not asked to:
    // other children being set up at the same time hold copies of its sync
    // channel, so the channel alone may never say that the parent is gone.
    // die_with_owner has set the signal already and keeps it.
    const bool dies_anyway = opts.die_with_parent || opts.die_with_owner;
    if (!dies_anyway)
        plan.add(launch_phase::signals, {.code = child_op_code::die_with_parent, .step = step::die_with_parent,
                                         .a = SIGKILL, .b = parent});
    // The child's copy of the parent's end goes first: while it is open, a
    // parent that died would never be seen as gone.
    plan.add(launch_phase::wait_for_parent,
             {.code = child_op_code::close_fd, .step = step::wait_for_parent, .a = plan.sync_write.get()});
    plan.add(launch_phase::wait_for_parent,
             {.code = child_op_code::wait_for_parent, .step = step::wait_for_parent, .a = plan.sync_read.get()});
    if (!dies_anyway)
        plan.add(launch_phase::wait_for_parent,
                 {.code = child_op_code::die_with_parent, .step = step::die_with_parent, .a = 0, .b = 0});
}

// The steps of an optional layer (detail::layer_option): through the
// planner that setting the option took, so that only programs that set it
// compile the layer.
template <class T>
inline void add_layer_steps(launch_plan& plan, const options& opts, const layer_option<T>& option) {
    if (!option) return;
    const layer_planner add_steps = option.planner_of_layer();
    if (!add_steps)
        throw error(step::prepare, EINVAL, {},
                    "an option was given a value without its launch layer (include <ctr/process.hpp>)");
    add_steps(plan, opts);
}

// Each layer in turn; the plan puts their steps in launch order.
template <class = void>
inline void build_plan(launch_plan& plan, std::vector<std::string> argv, const options& opts,
                       plan_extension extension = {}) {
    if (const long r = plan.shared.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));
    plan_command(plan, std::move(argv), opts);
    plan_streams(plan, opts);
    plan_namespaces(plan, opts);
    plan_cgroup(plan, opts);
    add_layer_steps(plan, opts, opts.root);
    plan_identity(plan, opts);
    plan_terminal(plan, opts);  // after identity: its session steps follow the caller's
    plan_lifetime(plan, opts);  // after the steps that change ids, which clear the parent-death signal
    plan_security(plan, opts);
    add_layer_steps(plan, opts, opts.network);
    add_layer_steps(plan, opts, opts.pasta);
    plan_parent_wait(plan, opts);
    if (extension.add) extension.add(plan, extension.data);
    plan.finish();
}

// Sends `data` with `fds` (SCM_RIGHTS, none allowed) to the child's receive
// step. A child that already failed has closed its end; its report says why.
template <class = void>
inline void send_fds(int socket, const std::string& data, const std::vector<int>& fds) {
    std::vector<char> control(fds.empty() ? 0 : CMSG_SPACE(sizeof(int) * fds.size()));
    iovec part{const_cast<char*>(data.data()), data.size()};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    if (!fds.empty()) {
        message.msg_control = control.data();
        message.msg_controllen = control.size();
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    }
    long r;
    do r = sys::sendmsg(socket, &message, MSG_NOSIGNAL);
    while (r == -EINTR);
    if (r < 0 && r != -EPIPE && r != -ECONNRESET) throw error(step::wait_for_parent, static_cast<int>(-r), {}, "sending mounts");
}

// Reaps a child whose setup failed, so that it leaves no zombie.
template <class = void>
inline void reap_failed(int pidfd) noexcept {
    siginfo_t info{};
    long r;
    do r = sys::waitid(P_PIDFD, pidfd, &info, WEXITED, nullptr);
    while (r == -EINTR);
}

template <class>
inline init_outcome read_init_outcome(const launch_plan& plan) noexcept {
    if (!plan.uses_init) return {};
    const init_state& init = plan.shared->init;
    // A supervisor outside a pid namespace kills what is left only for an
    // owned sandbox (die_with_owner); a pid namespace always does.
    const bool ends_the_rest = plan.created.has(ns::pid) || init.owner_pidfd >= 0;
    return {init.command_wait_status, ends_the_rest && init.others_were_running != 0};
}

// The child's report of a failed step: waits for it (or for exec, which
// closes the channel) when `wait`, else takes only one already there.
template <class = void>
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

// The error a child's report stands for: the layer's own explanation of its
// step where it has one, else the step and the path it names.
template <class = void>
inline error report_error(const launch_plan& plan, const child_report& report) {
    const std::size_t index = report.op_index;
    if (index < plan.explainers.size() && plan.explainers[index])
        return plan.explainers[index](child_report_view{report.error, report.detail});
    const step failed = index < plan.ops.size() ? plan.ops[index].step : step::exec;
    std::string path = index < plan.op_paths.size() ? plan.op_paths[index] : std::string{};
    return error(failed, report.error, std::move(path));
}

}  // namespace detail

// Starts argv as a child process; throws ctr::error naming the step that
// failed, in the parent or in the child before exec.
template <class>
[[nodiscard("the child is killed when its handle is dropped: keep it, wait() for it, or release() it")]]
inline child spawn(std::vector<std::string> argv, const options& opts) {
    return detail::spawn_extended(std::move(argv), opts, {});
}

template <class>
inline child detail::spawn_extended(std::vector<std::string> argv, const options& opts, plan_extension extension) {
    namespace d = ctr::process::detail;
    namespace cd = ctr::detail;
    // Shared with the child handle when a pid 1 init keeps running in it.
    const auto plan = std::make_shared<d::launch_plan>();
    if (opts.clone == clone_style::copy_memory) plan->request.memory = cd::memory_mode::copied;
    d::build_plan(*plan, std::move(argv), opts, extension);

    if (const long r = plan->stack.allocate(); r < 0) throw error(step::allocate_stack, static_cast<int>(-r));

    const d::cgroup_run_start cgroup_run = opts.cgroup ? d::begin_cgroup_run(*opts.cgroup) : d::cgroup_run_start{};
    const auto start = d::clock::now();
    cd::clone_outcome started = cd::clone_child(plan->request, plan->stack, plan->view);
    if (plan->request.cgroup_fd >= 0 &&
        (started.pid == -EINVAL || started.pid == -ENOSYS || started.pid == -E2BIG || started.pid == -EOPNOTSUPP)) {
        // No CLONE_INTO_CGROUP (Linux before 5.7, or no clone3): the cgroup
        // layer's parent step attaches the waiting child instead.
        plan->request.cgroup_fd = -1;
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
    plan->start_gate.reset();
    plan->sync_read.reset();
    plan->child_ends.clear();

    handle.cgroup_ = opts.cgroup;
    handle.cgroup_run_ = cgroup_run;

    // The parent's steps while the child waits. If one fails, the child is
    // killed with the handle; but when the child failed first (a join before
    // its wait), its own report is the better answer.
    std::string message_to_child(1, '\1');  // the go byte, then what the layers add
    cd::parent_step_context context{handle.pid_, handle.pidfd_.get(), message_to_child};
    try {
        for (const auto& parent_step : plan->parent_steps) parent_step(context);
    } catch (...) {
        if (const auto reported = d::read_report(*plan, false)) {
            d::reap_failed(handle.pidfd_.get());
            handle.pidfd_.reset();
            throw d::report_error(*plan, *reported);
        }
        throw;
    }
    handle.network_ = plan->network_made;
    handle.ends_after_sandbox_ = std::move(plan->ends_after_sandbox);
    handle.pasta_pid_ = plan->pasta_pid;
    if (plan->sync_write) {
        // One write, so the child never sees half of it. A child that
        // already failed has closed its end: EPIPE, and its report says why.
        long r;
        do r = cd::sys::sendto(plan->sync_write.get(), message_to_child.data(), message_to_child.size(), MSG_NOSIGNAL,
                               nullptr, 0);
        while (r == -EINTR);
        if (r != static_cast<long>(message_to_child.size()) && r != -EPIPE && r != -ECONNRESET)
            throw error(step::wait_for_parent, r < 0 ? static_cast<int>(-r) : EIO);
        if (!context.fds_data_to_child.empty() && r > 0)
            d::send_fds(plan->sync_write.get(), context.fds_data_to_child, context.fds_to_child);
        plan->sync_write.reset();
    }

    // Wait for exec (the channel closes) or a report of the failed step, or
    // with a start gate for the report that the command is held. The stack
    // and plan stay alive until then.
    const auto reported = d::read_report(*plan, true);
    const bool held = reported && reported->op_index == cd::held_report_index;
    if (reported && !held) {
        d::reap_failed(handle.pidfd_.get());
        handle.pidfd_.reset();
        throw d::report_error(*plan, *reported);
    }
    if (plan->start_gate && !held) {
        // The channel closed without a report: the child was killed (or its
        // gate's report could not be sent) before it was held.
        d::reap_failed(handle.pidfd_.get());
        handle.pidfd_.reset();
        throw error(step::hold_for_start, ECHILD, {}, "the sandbox ended before its command was held");
    }
    // Sent by the child before it exec'd, so it is there to take.
    if (plan->terminal_from_child) handle.terminal_ = d::receive_terminal(plan->terminal_from_child.get());
    if (plan->seccomp_listener_from_child)
        handle.seccomp_listener_ = cd::receive_fd_from_child(plan->seccomp_listener_from_child.get(),
                                                             step::install_seccomp, "", "the seccomp listener");
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
template <class>
inline std::pair<int, std::string> run_id_map_helper_program(std::vector<std::string> argv) {
    auto r = spawn(std::move(argv), {.std_in = stdio::null(), .std_out = stdio::null(), .std_err = stdio::capture()})
                 .wait();
    return {r.exit_code.value_or(-1), r.std_err.substr(0, r.std_err.find('\n'))};
}
}  // namespace detail

}  // namespace ctr::process

