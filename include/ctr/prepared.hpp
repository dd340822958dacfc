#pragma once
// A prepared sandbox: the reusable parts of a launch made once, each run
// paying only for what must be fresh. Made once: the namespaces (user with
// its id maps, network, and the others asked for), the root filesystem's
// mount tree, the cgroup placement, the compiled seccomp filter and the rest
// of the run's program. Fresh for every run: a new pid namespace (an init is
// its pid 1 unless options::init is false), a new mount namespace with a fresh /proc and fresh
// tmpfs mounts (prepared_options::fresh_tmpfs), new IPC and UTS namespaces
// when the sandbox has them, the run's credentials and confinement, exec.
//
// Sandbox2's fork server and Android's zygote are the model: a small server
// process stays inside the sandbox and clones each run from there, so a run
// neither copies the caller's mount table nor waits on a cgroup attach.
// What runs share is listed in docs/prepared.md.
//
//   ctr::process::prepared_sandbox box({.namespaces = ctr::ns::all, .root = plan, .cgroup = &group,
//                                       .security = ctr::security::confined()});
//   auto r = box.run({"/bin/true"}).wait();

#include <ctr/detail/prepared_server.hpp>
#include <ctr/mount.hpp>
#include <ctr/process.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ctr::process {

struct prepared_options {
    // tmpfs mounts made afresh for each run (mode 1777) over the shared
    // tree: what one run writes there, the next never sees. A path missing
    // in the root is made (as a plan's tmpfs would).
    std::vector<std::string> fresh_tmpfs = std::vector<std::string>{"/tmp", "/dev/shm"};
    // Runs that may be going at once.
    std::size_t most_runs = 256;
};

// What differs from one run to the next. The rest (credentials, rlimits,
// umask, security) comes from the sandbox's options.
struct run_options {
    environment env = environment();
    std::string executable{};  // empty: argv[0], looked up in the run's PATH
    std::string cwd{};         // empty: the sandbox's options::cwd, else "/"
    // inherit (the caller's own stream), null, file, fd or capture.
    stdio std_in = stdio();
    stdio std_out = stdio();
    stdio std_err = stdio();
    // Counted from run(): SIGTERM, then SIGKILL after kill_grace. Zero: none.
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds kill_grace{2000};
};

namespace detail {
// Everything the server reads, allocated before it is cloned.
struct prepared_state {
    launch_plan run_plan;
    mount::prepared_plan run_mounts;
    ctr::detail::mount_context mount_ctx;
    char mount_message[256] = {};
    std::vector<char> buffer;
    std::vector<char*> argv, envp;
    std::vector<const char*> candidates;
    std::vector<std::string> carried;
    std::vector<const char*> carried_paths;
    std::vector<ctr::detail::run_slot> runs;
    ctr::detail::prepared_server server;
};

template <class = void>
inline void add_prepared_server(launch_plan& plan, void* data) {
    auto* state = static_cast<prepared_state*>(data);
    plan.add(launch_phase::hold,
             {.code = child_op_code::call, .step = step::hold_for_start, .a = 3, .data = &state->server,
              .data2 = &plan.view, .run = ctr::detail::serve_prepared_runs},
             "the prepared sandbox's server");
}
}  // namespace detail

// One run of a prepared sandbox. Move-only. Dropping it kills a run that is
// still going (the server reaps it).
template <class>
class [[nodiscard]] basic_prepared_run {
public:
    basic_prepared_run() = default;
    basic_prepared_run(basic_prepared_run&&) noexcept = default;
    basic_prepared_run& operator=(basic_prepared_run&& other) noexcept {
        if (this != &other) {
            end_now();
            channel_ = std::move(other.channel_);
            pidfd_ = std::move(other.pidfd_);
            out_ = std::move(other.out_);
            err_ = std::move(other.err_);
            result_ = std::move(other.result_);
            pid_ = other.pid_;
            start_ = other.start_;
            timeout_ = other.timeout_;
            kill_grace_ = other.kill_grace_;
        }
        return *this;
    }
    ~basic_prepared_run() { end_now(); }

    // The run's pid 1 as the sandbox's pid namespace sees it.
    pid_t pid_in_sandbox() const noexcept { return pid_; }
    // A pidfd of the run's pid 1 (its init, which forwards signals to the
    // command; or the command itself without one); -1 once it has ended.
    int pidfd() const noexcept { return pidfd_.get(); }

    template <class = void>
    void signal(int number) {
        if (!pidfd_ || result_) return;
        if (const long r = ::ctr::detail::sys::pidfd_send_signal(pidfd_.get(), number); r < 0 && r != -ESRCH)
            throw error(step::wait, static_cast<int>(-r), {}, "signalling a prepared run");
    }
    template <class = void>
    void kill() { signal(SIGKILL); }

    // Waits for the run to end (enforcing its timeout) and for its
    // captured streams to close.
    template <class = void>
    result wait();

private:
    friend class prepared_sandbox;
    template <class = void>
    void end_now() noexcept {
        if (pidfd_ && !result_) ::ctr::detail::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
    }

    unique_fd channel_, pidfd_, out_, err_;
    std::optional<result> result_{};
    pid_t pid_ = -1;
    detail::clock::time_point start_{};
    std::chrono::milliseconds timeout_{0}, kill_grace_{2000};
};
using prepared_run = basic_prepared_run<void>;

class [[nodiscard]] prepared_sandbox {
public:
    // Makes the sandbox: its namespaces, root, cgroup placement as `shared`
    // asks (as for spawn; the root defaults to mount::host_readonly(), and
    // gets a /proc when it has none), and the run program from its
    // credentials, rlimits, umask and security. Throws ctr::error as spawn
    // does. Per-run things are refused here: streams, fds, a timeout, a
    // terminal, a start gate (set them in run_options, or spawn).
    template <class = void>
    explicit prepared_sandbox(const options& shared, prepared_options prepared = prepared_options());
    prepared_sandbox(prepared_sandbox&&) noexcept = default;
    prepared_sandbox& operator=(prepared_sandbox&&) noexcept = default;
    // Ends the server, and with it every run still going.
    ~prepared_sandbox() = default;

    // Starts one run; returns once it has exec'd. Throws ctr::error naming
    // the step that failed (the program not found, a mount, the directory).
    // Safe to call from several threads at once.
    template <class = void>
    prepared_run run(std::vector<std::string> argv, const run_options& opts = run_options()) const;

    // The sandbox's pid 1, as this process sees it.
    pid_t pid() const noexcept { return server_.pid(); }

private:
    template <class = void>
    error run_error(const ctr::detail::run_message& failed, const std::string& program, const std::string& cwd) const;

    static const std::string& root_directory() {
        static const std::string root("/");
        return root;
    }

    std::unique_ptr<detail::prepared_state> state_;
    std::string default_cwd_;  // options::cwd of the sandbox
    unique_fd requests_;
    child server_;  // last: destroyed first, while the state it used is alive
};

template <class Unused>
prepared_sandbox::prepared_sandbox(const options& shared, prepared_options prepared)
    : state_(std::make_unique<detail::prepared_state>()), default_cwd_(shared.cwd) {
    namespace cd = ::ctr::detail;
    const auto refuse = [](const char* field, const char* why) {
        throw error(step::prepare, EINVAL, field, std::string("a prepared sandbox ") + why);
    };
    if (shared.terminal) refuse("terminal", "has no terminal (spawn one with options::terminal)");
    if (shared.start_gate >= 0) refuse("start_gate", "starts each run at run()");
    if (!shared.fds.empty()) refuse("fds", "passes no further fds to its runs");
    if (shared.security.seccomp && shared.security.seccomp->notifies())
        refuse("security.seccomp", "hands out no seccomp listener: spawn a filter that notifies (action::notify)");
    if (shared.timeout.count() != 0) refuse("timeout", "takes a timeout per run (run_options::timeout)");
    if (shared.std_in.how != stdio::kind::inherit || shared.std_out.how != stdio::kind::inherit ||
        shared.std_err.how != stdio::kind::inherit)
        refuse("std_in/std_out/std_err", "takes streams per run (run_options)");
    if (prepared.most_runs == 0 || prepared.most_runs > 65536)
        refuse("most_runs", "runs between 1 and 65536 commands at once");
    auto& st = *state_;

    // The run's program: what spawn would do after the mounts.
    options run_program;
    run_program.env = environment{.inherit = false};
    run_program.groups = shared.groups;
    run_program.gid = shared.gid;
    run_program.uid = shared.uid;
    run_program.rlimits = shared.rlimits;
    run_program.umask = shared.umask;
    run_program.new_session = shared.new_session;
    run_program.security = shared.security;
    run_program.id_maps = shared.id_maps;  // what an unmapped id's error names
    st.run_plan.entered = shared.namespaces | ns::pid | ns::mount;
    if (cd::raw::call(SYS_geteuid) != 0) st.run_plan.entered = st.run_plan.entered | ns::user;
    detail::build_plan(st.run_plan, {"/"}, run_program);
    st.run_plan.report_read.reset();
    st.run_plan.report_write.reset();
    std::size_t exec_op = st.run_plan.ops.size();
    for (std::size_t i = 0; i < st.run_plan.ops.size(); ++i)
        if (st.run_plan.ops[i].code == cd::child_op_code::exec) exec_op = i;
    if (exec_op == st.run_plan.ops.size()) throw error(step::prepare, EINVAL, {}, "the run program has no exec");
    // A Landlock ruleset (security::landlock) is made here once; the server
    // keeps its fd at 4 for every run, whose command adds the path rules as
    // its mounts show them and applies it to itself.
    int ruleset_fd = -1;
    for (auto& op : st.run_plan.ops)
        if (op.step == step::add_landlock_rule || op.step == step::apply_landlock) {
            ruleset_fd = static_cast<int>(op.a);
            op.a = 4;
        }

    // The sandbox's root, and the options of its /proc, which each run's
    // fresh /proc takes too.
    std::optional<mount::plan> root = shared.root ? *shared.root : mount::host_readonly();
    mount::proc_options proc_options;
    bool has_proc = false;
    for (const auto& request : mount::detail::plan_requests<Unused>(*root))
        if (const auto* p = mount::detail::request_if<mount::detail::proc_request>(request); p && p->target == "/proc") {
            has_proc = true;
            proc_options = p->options;
        }
    // A new /proc may be mounted in a user namespace only where one is
    // fully visible already: the server's.
    if (!has_proc) root->proc("/proc");
    // Each fresh tmpfs needs its mount point: a tmpfs there in the shared
    // tree makes it wherever the root lacks it (the plan's rules for a
    // missing mount point), and is what runs find under their own.
    for (const auto& fresh : prepared.fresh_tmpfs) {
        bool mounted = false;
        for (const auto& request : mount::detail::plan_requests<Unused>(*root)) {
            if (const auto* t = mount::detail::request_if<mount::detail::tmpfs_request>(request); t && t->target == fresh)
                mounted = true;
            // dev() makes a tmpfs at shm.
            if (const auto* d = mount::detail::request_if<mount::detail::dev_request>(request); d && d->target + "/shm" == fresh)
                mounted = true;
        }
        if (!mounted) root->tmpfs(fresh, {.mode = 01777});
    }

    // Each run's own mounts, at paths of the sandbox's root.
    {
        mount::detail::step_builder builder(true, true);
        builder.add_one(mount::detail::proc_request{"/proc", proc_options});
        for (const char* p : mount::detail::masked_proc_paths)
            builder.add_one(mount::detail::path_request{cd::mount_step_kind::mask, std::string("/proc/") + p});
        for (const char* p : mount::detail::read_only_proc_paths)
            builder.add_one(mount::detail::path_request{cd::mount_step_kind::read_only, std::string("/proc/") + p});
        for (const auto& target : prepared.fresh_tmpfs)
            builder.add_one(mount::detail::tmpfs_request{target, {.mode = 01777}});
        st.run_mounts = builder.take();
    }
    // The root's mounts below a fresh tmpfs, carried over it (the topmost
    // only: a recursive copy brings what is below).
    for (const auto& request : mount::detail::plan_requests<Unused>(*root)) {
        const std::string target = mount::detail::visit_request<std::string>(
            [](const auto& r) -> std::string {
                using type = std::remove_cvref_t<decltype(r)>;
                if constexpr (std::is_same_v<type, mount::detail::write_request> ||
                              std::is_same_v<type, mount::detail::symlink_request> ||
                              std::is_same_v<type, mount::detail::attributes_request>)
                    return {};
                else if constexpr (std::is_same_v<type, mount::detail::path_request>)
                    return r.kind == cd::mount_step_kind::mask || r.kind == cd::mount_step_kind::read_only ? r.target
                                                                                                         : std::string();
                else
                    return r.target;
            },
            request);
        const auto below = [](const std::string& path, const std::string& top) {
            const std::string prefix = top.back() == '/' ? top : top + "/";
            return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0;
        };
        if (target.empty()) continue;
        bool covered = false;
        for (const auto& fresh : prepared.fresh_tmpfs) covered = covered || below(target, fresh);
        for (const auto& kept : st.carried) covered = covered && !below(target, kept) && target != kept;
        if (covered) st.carried.push_back(target);
    }
    if (st.carried.size() > cd::most_carried_mounts)
        throw error(step::prepare, E2BIG, st.carried.front(),
                    "more than 32 of the root's mounts lie below a fresh tmpfs (prepared_options::fresh_tmpfs)");
    for (const auto& c : st.carried) st.carried_paths.push_back(c.c_str());
    st.mount_ctx.host_paths = true;
    st.mount_ctx.message = st.mount_message;
    st.mount_ctx.message_size = sizeof st.mount_message;

    constexpr std::size_t request_bytes = 128 * 1024, slots = 8192;
    st.buffer.assign(request_bytes, '\0');
    st.argv.assign(slots, nullptr);
    st.envp.assign(slots, nullptr);
    st.candidates.assign(slots, nullptr);
    st.runs.resize(prepared.most_runs);

    auto& s = st.server;
    s.run_view = &st.run_plan.view;
    s.run_ops = st.run_plan.ops.data();
    s.exec_op = exec_op;
    const auto steps = st.run_mounts.steps();
    s.mounts = steps.data();
    s.mount_count = steps.size();
    s.mount_ctx = &st.mount_ctx;
    s.run_clone_flags = CLONE_NEWPID | CLONE_NEWNS;
    if (shared.namespaces.has(ns::ipc)) s.run_clone_flags |= CLONE_NEWIPC;
    if (shared.namespaces.has(ns::uts)) s.run_clone_flags |= CLONE_NEWUTS;
    s.runs_first_to_oom = shared.cgroup != nullptr;
    s.carried = st.carried_paths.data();
    s.carried_count = st.carried_paths.size();
    s.buffer = st.buffer.data();
    s.buffer_size = st.buffer.size();
    s.argv = st.argv.data();
    s.envp = st.envp.data();
    s.candidates = st.candidates.data();
    s.slots = slots;
    s.runs = st.runs.data();
    s.run_capacity = st.runs.size();
    s.use_init = shared.init;
    s.run_program_fd = ruleset_fd >= 0 ? 4 : -1;

    int ends[2];
    if (const long r = cd::sys::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends); r < 0)
        throw error(step::create_pipe, static_cast<int>(-r), {}, "the prepared sandbox's request socket");
    requests_.reset(ends[0]);
    const unique_fd server_end(ends[1]);

    // The server: the sandbox's own launch, ending in the server instead
    // of exec. It outlives this call, so it runs on a copy of our memory.
    options sandbox = shared;
    sandbox.security = ::ctr::security();
    sandbox.groups.reset();
    sandbox.gid.reset();
    sandbox.uid.reset();
    sandbox.rlimits.clear();
    sandbox.umask.reset();
    sandbox.new_session = false;
    sandbox.namespaces = sandbox.namespaces | ns::pid | ns::mount;
    sandbox.root = std::move(root);
    sandbox.cwd.clear();
    sandbox.clone = clone_style::copy_memory;
    sandbox.env = environment{.inherit = false};
    sandbox.executable = "/";
    sandbox.std_in = stdio::null();
    sandbox.std_out = stdio::null();
    sandbox.std_err = stdio::null();
    sandbox.fds = {{server_end.get(), 3}};
    if (ruleset_fd >= 0) sandbox.fds.push_back({ruleset_fd, 4});
    server_ = detail::spawn_extended({"ctr-prepared"}, sandbox, {detail::add_prepared_server<>, state_.get()});
}

template <class>
error prepared_sandbox::run_error(const ::ctr::detail::run_message& failed, const std::string& program,
                                  const std::string& cwd) const {
    namespace cd = ::ctr::detail;
    const std::uint32_t index = failed.op_index;
    const int e = failed.error;
    if (index & cd::run_mount_flag) return state_->run_mounts.error_for(index & ~cd::run_mount_flag, e, nullptr);
    switch (index) {
        case cd::run_clone_index:
            return error(step::clone, e, {}, "the prepared sandbox could not start a run");
        case cd::run_request_index:
            return error(step::prepare, e, {},
                         e == EAGAIN ? "more runs at once than prepared_options::most_runs"
                                     : "the prepared sandbox could not read the run's request");
        case cd::run_cwd_index:
            return error(step::change_directory, e, cwd);
        case cd::run_stream_index:
            return error(step::map_fds, e, {}, "a standard stream of the run");
        case cd::run_carry_index: {
            const auto which = static_cast<std::size_t>(failed.detail);  // a negative detail wraps past the end
            return error(step::bind_mount, e, which < state_->carried.size() ? state_->carried[which] : std::string(),
                         "carrying the sandbox's mount over the run's fresh tmpfs");
        }
        case cd::run_init_index:
            return error(step::run_init, e, {}, "the run's pid 1 could not start the command");
        case cd::run_oom_index:
            return error(step::write_file, e, "/proc/self/oom_score_adj", "making the run the OOM killer's first choice");
        default:
            break;
    }
    const auto& plan = state_->run_plan;
    if (index < plan.ops.size() && plan.ops[index].code == cd::child_op_code::exec) return error(step::exec, e, program);
    return detail::report_error(plan, cd::child_report{index, e, failed.detail});
}

template <class>
prepared_run prepared_sandbox::run(std::vector<std::string> argv, const run_options& opts) const {
    namespace cd = ::ctr::detail;
    if (!requests_) throw error(step::prepare, EINVAL, {}, "this prepared sandbox was moved from");
    if (argv.empty()) throw error(step::prepare, EINVAL, {}, "argv is empty");
    for (const auto& arg : argv)
        if (arg.find('\0') != std::string::npos) throw error(step::prepare, EINVAL, arg, "argument contains a NUL byte");
    if (opts.cwd.find('\0') != std::string::npos) throw error(step::prepare, EINVAL, "cwd", "contains a NUL byte");
    if (opts.timeout.count() < 0 || opts.kill_grace.count() < 0)
        throw error(step::prepare, EINVAL, "timeout", "a negative time");
    const auto env = detail::build_environment(opts.env);
    const std::string& program = opts.executable.empty() ? argv.front() : opts.executable;
    if (program.empty()) throw error(step::prepare, ENOENT, {}, "the program name is empty");
    const auto candidates = detail::exec_candidates(program, env);
    const std::string& cwd = !opts.cwd.empty() ? opts.cwd : !default_cwd_.empty() ? default_cwd_ : root_directory();

    std::string request(sizeof(cd::run_request_header), '\0');
    cd::run_request_header header{static_cast<std::uint32_t>(argv.size()), static_cast<std::uint32_t>(env.size()),
                                  static_cast<std::uint32_t>(candidates.size()), 0};
    for (const std::vector<std::string>* list : {&std::as_const(argv), &env, &candidates})
        for (const auto& item : *list) request.append(item.c_str(), item.size() + 1);
    request.append(cwd.c_str(), cwd.size() + 1);
    if (request.size() > state_->buffer.size() || argv.size() >= state_->argv.size() ||
        env.size() >= state_->envp.size() || candidates.size() >= state_->candidates.size())
        throw error(step::prepare, E2BIG, {},
                    "a run's argv and environment are limited to 128 KiB and 8191 entries each in a prepared sandbox");

    // The run's channel, then its streams.
    int ends[2];
    if (const long r = cd::sys::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends); r < 0)
        throw error(step::create_pipe, static_cast<int>(-r), {}, "a prepared run's channel");
    unique_fd mine(ends[0]), theirs(ends[1]);
    std::vector<int> fds{theirs.get()};
    std::vector<unique_fd> child_ends;
    unique_fd capture[3];
    const stdio* streams[3] = {&opts.std_in, &opts.std_out, &opts.std_err};
    for (int i = 0; i < 3; ++i) {
        const stdio& spec = *streams[i];
        const bool input = i == 0;
        int fd = -1;
        switch (spec.how) {
            case stdio::kind::inherit:
                fd = i;
                break;
            case stdio::kind::null:
                child_ends.push_back(detail::open_checked("/dev/null", input ? O_RDONLY : O_WRONLY, 0, step::open_stdio));
                fd = child_ends.back().get();
                break;
            case stdio::kind::file: {
                const int flags = spec.flags >= 0 ? spec.flags : (input ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC);
                child_ends.push_back(detail::open_checked(spec.path.c_str(), flags, spec.mode, step::open_stdio));
                fd = child_ends.back().get();
                break;
            }
            case stdio::kind::fd:
                fd = spec.fd;
                break;
            case stdio::kind::capture: {
                if (input) throw error(step::open_stdio, EINVAL, "std_in", "stdin cannot be captured");
                unique_fd read_end, write_end;
                detail::make_pipe(read_end, write_end);
                capture[i] = std::move(read_end);
                child_ends.push_back(std::move(write_end));
                fd = child_ends.back().get();
                break;
            }
            case stdio::kind::pipe:
                throw error(step::open_stdio, EINVAL, i == 0 ? "std_in" : i == 1 ? "std_out" : "std_err",
                            "a prepared run takes inherit, null, file, fd or capture");
        }
        if (!detail::fd_is_open(fd)) throw error(step::map_fds, EBADF, detail::fd_name(fd), "stdio fd is not open");
        fds.push_back(fd);
        header.streams |= 1U << i;
    }
    std::memcpy(request.data(), &header, sizeof header);

    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    iovec part{request.data(), request.size()};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    const auto start = detail::clock::now();
    long sent;
    do sent = cd::sys::sendmsg(requests_.get(), &message, MSG_NOSIGNAL);
    while (sent == -EINTR);
    if (sent < 0)
        throw error(step::wait_for_parent, static_cast<int>(-sent), {},
                    sent == -EPIPE || sent == -ECONNRESET ? "the prepared sandbox has ended" : "sending a run");
    theirs.reset();
    child_ends.clear();

    // started (with a pidfd) or failed
    cd::run_message answer{};
    alignas(cmsghdr) char answer_control[CMSG_SPACE(sizeof(int))];
    iovec answer_part{&answer, sizeof answer};
    msghdr reply{};
    reply.msg_iov = &answer_part;
    reply.msg_iovlen = 1;
    reply.msg_control = answer_control;
    reply.msg_controllen = sizeof answer_control;
    long got;
    do got = cd::sys::recvmsg(mine.get(), &reply, MSG_CMSG_CLOEXEC);
    while (got == -EINTR);
    unique_fd pidfd;
    if (const cmsghdr* h = CMSG_FIRSTHDR(&reply); h && h->cmsg_type == SCM_RIGHTS) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(h), sizeof fd);
        pidfd.reset(fd);
    }
    if (got != static_cast<long>(sizeof answer))
        throw error(step::wait_for_parent, got < 0 ? static_cast<int>(-got) : EPIPE, {},
                    "the prepared sandbox ended before the run started");
    if (answer.event == cd::run_event::failed) throw run_error(answer, program, cwd);

    prepared_run handle;
    handle.channel_ = std::move(mine);
    handle.pidfd_ = std::move(pidfd);
    handle.out_ = std::move(capture[1]);
    handle.err_ = std::move(capture[2]);
    handle.pid_ = answer.pid;
    handle.start_ = start;
    handle.timeout_ = opts.timeout;
    handle.kill_grace_ = opts.kill_grace;
    return handle;
}

template <class Unused>
template <class>
result basic_prepared_run<Unused>::wait() {
    namespace cd = ::ctr::detail;
    if (result_) return *result_;
    if (!channel_) throw error(step::wait, EINVAL, {}, "this prepared_run holds no run (default-constructed or moved from)");
    result r;
    std::optional<cd::run_message> ended;
    std::optional<detail::clock::time_point> deadline;
    if (timeout_.count() > 0) deadline = start_ + timeout_;
    bool termed = false, killed = false;
    for (;;) {
        pollfd ready[3];
        unsigned count = 0;
        if (!ended) ready[count++] = {channel_.get(), POLLIN, 0};
        if (out_) ready[count++] = {out_.get(), POLLIN, 0};
        if (err_) ready[count++] = {err_.get(), POLLIN, 0};
        if (count == 0) break;
        timespec wait_for{};
        const timespec* limit = nullptr;
        if (deadline && !ended && !killed) {
            const auto left = std::max(*deadline - detail::clock::now(), detail::clock::duration::zero());
            wait_for.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(left).count();
            wait_for.tv_nsec = (left - std::chrono::seconds(wait_for.tv_sec)).count();
            limit = &wait_for;
        }
        const long n = cd::sys::ppoll(ready, count, limit);
        if (n == -EINTR) continue;
        if (n < 0) throw error(step::wait, static_cast<int>(-n), {}, "waiting for a prepared run");
        if (n == 0) {
            // The deadline: SIGTERM first, SIGKILL after the grace.
            r.timed_out = true;
            if (!termed) {
                termed = true;
                cd::sys::pidfd_send_signal(pidfd_.get(), SIGTERM);
                deadline = detail::clock::now() + kill_grace_;
            } else {
                killed = true;
                cd::sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
            }
            continue;
        }
        for (unsigned i = 0; i < count; ++i) {
            if (!(ready[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (!ended && ready[i].fd == channel_.get()) {
                cd::run_message m{};
                const long got = cd::sys::read(channel_.get(), &m, sizeof m);
                if (got == -EINTR || got == -EAGAIN) continue;
                if (got != static_cast<long>(sizeof m) || m.event != cd::run_event::ended)
                    throw error(step::wait, got < 0 ? static_cast<int>(-got) : ECHILD, {},
                                "the prepared sandbox ended before the run did");
                ended = m;
                continue;
            }
            std::string& into = ready[i].fd == out_.get() ? r.std_out : r.std_err;
            char chunk[16384];
            const long got = cd::sys::read(ready[i].fd, chunk, sizeof chunk);
            if (got == -EINTR || got == -EAGAIN) continue;
            if (got <= 0) (ready[i].fd == out_.get() ? out_ : err_).reset();
            else into.append(chunk, static_cast<std::size_t>(got));
        }
    }
    r.wall_time = detail::clock::now() - start_;
    const int status = ended->wait_status;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
        r.core_dumped = WCOREDUMP(status);
    }
    r.user_time = std::chrono::microseconds(ended->user_us);
    r.system_time = std::chrono::microseconds(ended->system_us);
    r.rusage_max_rss_bytes = static_cast<std::uint64_t>(ended->max_rss_kib) * 1024;
    pidfd_.reset();
    channel_.reset();
    result_ = r;
    return r;
}

}  // namespace ctr::process
