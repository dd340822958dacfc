#pragma once
// The launch plan: everything a spawn prepares before clone, and the one
// mechanism through which each layer (namespaces, network, mounts, fds,
// credentials, capabilities, seccomp, ...) contributes to a launch.
//
// A layer is a planner function in its own header. It may
//   - add child steps with plan.add(phase, op, path, explain): the steps are
//     ordered by phase (launch_phase below, the one documented order of a
//     launch), then by the order in which they were added;
//   - keep the data its steps read alive with plan.keep(...);
//   - add parent steps with plan.while_child_waits(...): they run in the
//     parent after clone, while the child waits on the sync channel, and may
//     append bytes to the message the child reads after its go byte;
//   - explain a failed step of its own: `explain` turns the child's report
//     into the error the caller sees.
// spawn() only composes the planners and runs the result.

#include <ctr/detail/child_program.hpp>
#include <ctr/detail/clone.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/detail/veth_options.hpp>
#include <ctr/ns.hpp>
#include <ctr/unique_fd.hpp>

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <new>
#include <string>
#include <utility>
#include <vector>


namespace ctr::detail {

// The order of a launch in the child. Every step belongs to one phase; the
// program runs the phases in this order. Why this order:
//  - joining a user namespace first grants the rights to join the others;
//  - the child waits for the parent (id maps, cgroup, network) before it
//    uses the rights a new user namespace gives, and before anything it does
//    could depend on its cgroup;
//  - the root filesystem is built with every right the namespaces give,
//    before credentials and capabilities take rights away;
//  - the bounding set is dropped while CAP_SETPCAP is still there, and
//    PR_SET_KEEPCAPS is set before a change of uid so permitted
//    capabilities survive it;
//  - the init (pid 1) splits off after credentials: what follows runs in
//    the command only, so pid 1 keeps what it needs to forward signals;
//  - Landlock after the mounts (its paths are the command's) and after
//    capabilities and credentials, which it does not govern; it sets its
//    own no_new_privs, since the capabilities that could stand in for it
//    may be gone by then;
//  - no_new_privs before seccomp: installing a filter without CAP_SYS_ADMIN
//    needs it; seccomp last, so that no setup step is filtered.
enum class launch_phase : std::uint8_t {
    join_user,             // setns into a user namespace
    join_namespaces,       // setns into the others
    signals,               // default dispositions, parent-death signal
    wait_for_parent,       // the parent's steps: id maps, cgroup, network, hooks
    create_namespaces,     // unshare (cgroup, time), host names, interfaces
    become_root,           // uid and gid 0 of a new user namespace
    mounts,                // the root filesystem, pivot_root
    rlimits,
    fds,                   // stdio and passed fds to their numbers, the rest close-on-exec
    bounding_capabilities, // bounding set, securebits, keep-caps
    credentials,           // groups, gid, uid
    init,                  // become_init: what follows runs in the command
    session,               // setsid, controlling terminal, umask, working directory
    capabilities,          // effective, permitted, inheritable, ambient
    landlock,              // the Landlock ruleset (with its own no_new_privs)
    no_new_privileges,
    restore_signal_mask,
    hold,                  // options::start_gate: wait to be started
    seccomp,
    exec,
};

// What a parent step sees of the waiting child.
struct parent_step_context {
    pid_t pid = -1;
    int pidfd = -1;
    // Sent to the child after its go byte, in the same write; the child's
    // steps read their parts in the order the parent steps appended them.
    std::string& message_to_child;
    // fds for the child, sent after that message (SCM_RIGHTS) with the
    // bytes of fds_data_to_child (at least one); the child's receive step
    // reads them. Empty data: nothing is sent.
    std::vector<int> fds_to_child{};
    std::string fds_data_to_child{};
};

// The child's failure as it reported it.
struct child_report_view {
    int error = 0;
    int detail = 0;  // which part of a step failed, where the step has parts
};

// Turns a failed step's report into the caller's error.
using step_explainer = std::function<ctr::error(const child_report_view&)>;

// Memory that the parent, the child and pid 1 share whether or not the
// child has a copy of the parent's memory: MAP_SHARED survives clone without
// CLONE_VM. Holds what a child writes for the parent to read.
struct launch_shared {
    init_state init;
    mount_context mount_state;
    char mount_message[256] = {};
    int failure_detail = 0;  // the child's own note of which part of a step failed
};

class shared_launch_page {
public:
    shared_launch_page() = default;
    shared_launch_page(const shared_launch_page&) = delete;
    shared_launch_page& operator=(const shared_launch_page&) = delete;
    ~shared_launch_page() {
        if (page_) {
            page_->~launch_shared();
            sys::munmap(page_, sizeof(launch_shared));
        }
    }
    // Returns 0 or -errno.
    template <class = void>
    long allocate() noexcept {
        void* address = nullptr;
        const long r = sys::mmap(&address, sizeof(launch_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
        if (r < 0) return r;
        page_ = new (address) launch_shared{};
        return 0;
    }
    launch_shared* operator->() const noexcept { return page_; }
    launch_shared& operator*() const noexcept { return *page_; }

private:
    launch_shared* page_ = nullptr;
};

// Everything the child reads, owned by the parent until the child has
// exec'd or exited. Built in full before clone: the child allocates nothing.
struct launch_plan {
    std::vector<std::string> argv_storage;
    std::vector<std::string> env_storage;
    std::vector<std::string> candidate_storage;
    std::vector<char*> argv;
    std::vector<char*> envp;
    std::vector<const char*> candidates;
    std::vector<int> scratch;  // fds made by dup_above
    // The program, in phase order once finish() ran.
    std::vector<child_op> ops;
    std::vector<std::string> op_paths;      // what an error in op i names
    std::vector<step_explainer> explainers; // a layer's own explanation of op i, or empty
    child_view view;

    unique_fd report_read, report_write;
    unique_fd start_gate;  // the child's copy of options::start_gate, above every fd it maps
    // The lowest fd number that no fd mapping targets: a layer's fd that the
    // child needs after the fds phase must be at or above it.
    int first_unmapped_fd = 3;
    // What a held child closes before it waits (pairs first, last; ~0U: no
    // end): every fd that exec would close, but the report channel and the
    // gate. A copy of the gate's write end among them would keep its read
    // from ever seeing the end of file.
    std::vector<unsigned> hold_closes;
    std::vector<unique_fd> child_ends;  // the child's ends of stdio files and pipes
    unique_fd parent_in, parent_out, parent_err;
    bool capture_out = false, capture_err = false;

    // The child's stack, and the command's when a pid 1 init starts it.
    child_stack stack, command_stack;
    clone_request request;
    shared_launch_page shared;
    ns::kinds created;  // namespaces this launch creates
    // Namespaces the program starts in already (a prepared sandbox's runs,
    // cloned by its server): their errors are explained as the created ones'.
    ns::kinds entered;
    bool uses_init = false;
    // The channel on which the child waits for the parent's steps.
    unique_fd sync_read, sync_write;
    // The parent's end of the socket on which options::terminal's child
    // sends the pty master (empty: no terminal, or a console socket).
    unique_fd terminal_from_child;
    // The parent's end of the socket on which the child sends the listener
    // of a seccomp filter that notifies (empty: none).
    unique_fd seccomp_listener_from_child;
    // What options::network made (names and addresses of both ends), once
    // its parent step ran: the child handle's network() (null: none).
    std::shared_ptr<const net::veth_info> network_made;
    // What the network layers made that must outlast the sandbox and no
    // more: options::network's outbound NAT and published ports' rules,
    // options::pasta's pasta. The child's handle takes them and releases
    // them once the sandbox has ended, the last made first.
    std::vector<std::shared_ptr<void>> ends_after_sandbox;
    // The pid of options::pasta's pasta once its parent step started it.
    pid_t pasta_pid = -1;

    // Each layer's data that its steps point into, kept until the child
    // has exec'd (and, with an init, for the sandbox's life).
    template <typename T>
    T& keep(T value) {
        auto owned = std::make_shared<T>(std::move(value));
        T& ref = *owned;
        kept_.push_back(std::move(owned));
        return ref;
    }

    template <class = void>
    void add(launch_phase phase, child_op op, std::string path = {}, step_explainer explain = {}) {
        pending_.push_back({phase, op, std::move(path), std::move(explain)});
    }

    template <class = void>
    void while_child_waits(std::function<void(parent_step_context&)> step) { parent_steps.push_back(std::move(step)); }
    template <class = void>
    bool has_parent_steps() const noexcept { return !parent_steps.empty(); }
    std::vector<std::function<void(parent_step_context&)>> parent_steps;

    // Orders the steps by phase and points the child's view at them.
    template <class = void>
    void finish() {
        std::stable_sort(pending_.begin(), pending_.end(),
                         [](const pending& a, const pending& b) { return a.phase < b.phase; });
        ops.clear();
        op_paths.clear();
        explainers.clear();
        for (auto& p : pending_) {
            if (p.op.code == child_op_code::become_init) shared->init.next_op = ops.size() + 1;
            ops.push_back(p.op);
            op_paths.push_back(std::move(p.path));
            explainers.push_back(std::move(p.explain));
        }
        pending_.clear();
        view.ops = ops.data();
        view.op_count = ops.size();
        view.report_fd = report_write.get();
        view.scratch = scratch.data();
        view.argv = argv.data();
        view.envp = envp.data();
        view.failure_detail = &shared->failure_detail;
    }

    // The child's end of the sync channel, made on first use: a socket pair
    // rather than a pipe, so that the parent's write to a child that already
    // died fails with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE.
    template <class = void>
    int sync_channel() {
        if (!sync_read) {
            int fds[2];
            if (const long r = sys::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); r < 0)
                throw error(step::create_pipe, static_cast<int>(-r), {}, "the sync channel");
            sync_read.reset(fds[0]);
            sync_write.reset(fds[1]);
        }
        return sync_read.get();
    }

private:
    struct pending {
        launch_phase phase;
        child_op op;
        std::string path;
        step_explainer explain;
    };
    std::vector<pending> pending_;
    std::vector<std::shared_ptr<void>> kept_;
};

template <class = void>
inline unique_fd open_checked(const char* path, int flags, unsigned mode, step s) {
    const long fd = sys::openat(AT_FDCWD, path, flags | O_CLOEXEC, mode);
    if (fd < 0) throw error(s, static_cast<int>(-fd), path);
    return unique_fd(static_cast<int>(fd));
}

template <class = void>
inline std::string fd_name(int fd) { return "fd " + std::to_string(fd); }

// The fd a child sent on `socket` (SCM_RIGHTS) before it exec'd, so that it
// is there to take without waiting; `what` names it in the error.
template <class = void>
inline unique_fd receive_fd_from_child(int socket, ctr::step s, const char* path, const char* what) {
    char byte = 0;
    iovec data{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    long r;
    do r = sys::recvmsg(socket, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (r == -EINTR);
    const cmsghdr* header = r > 0 ? CMSG_FIRSTHDR(&message) : nullptr;
    if (!header || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS ||
        header->cmsg_len != CMSG_LEN(sizeof(int)))
        throw error(s, r < 0 ? static_cast<int>(-r) : EPROTO, path,
                    std::string("the child ran without sending ") + what + " back");
    int fd = -1;
    __builtin_memcpy(&fd, CMSG_DATA(header), sizeof fd);
    return unique_fd(fd);
}

template <class = void>
inline bool fd_is_open(int fd) { return fd >= 0 && sys::fcntl(fd, F_GETFD) >= 0; }

template <class = void>
inline void make_pipe(unique_fd& read_end, unique_fd& write_end) {
    int fds[2];
    if (const long r = sys::pipe2(fds, O_CLOEXEC); r < 0) throw error(step::create_pipe, static_cast<int>(-r));
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
}

}  // namespace ctr::detail
