#pragma once
// Launch layer: the child's root filesystem, a mount plan run in its new
// mount namespace before pivot_root, with every right the new namespaces
// give and before credentials and capabilities take rights away. Idmapped
// binds are made by the parent, which alone may idmap a host filesystem,
// and sent to the child to attach.

#include <ctr/detail/launch_plan.hpp>
#include <ctr/mount.hpp>
#include <ctr/spawn_options.hpp>

#include <sys/socket.h>

#include <string>
#include <vector>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Receives the parent's detached mounts over the sync channel (op.a): one
// message whose bytes are [count, slot...] and whose SCM_RIGHTS carry the
// fds in that order; each goes to its slot of the int array at op.data (a
// slot left at -1 falls back to a plain bind). Async-signal-safe.
CTR_CHILD_CODE inline long child_receive_fds(const child_op& op) noexcept {
    constexpr std::size_t most = 64;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * most)];
    unsigned char bytes[most + 1];
    iovec part{bytes, sizeof bytes};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    long r;
    do r = sys::recvmsg(static_cast<int>(op.a), &message, MSG_CMSG_CLOEXEC);
    while (r == -EINTR);
    if (r <= 0) return r < 0 ? r : -EPIPE;
    const std::size_t count = bytes[0];
    if (count == 0) return 0;
    const cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (static_cast<std::size_t>(r) != count + 1 || !header || header->cmsg_type != SCM_RIGHTS ||
        header->cmsg_len != CMSG_LEN(sizeof(int) * count))
        return -EPROTO;
    int fds[most];
    __builtin_memcpy(fds, CMSG_DATA(header), sizeof(int) * count);
    int* slots = const_cast<int*>(static_cast<const int*>(op.data));
    for (std::size_t i = 0; i < count; ++i) {
        if (bytes[i + 1] >= static_cast<unsigned long>(op.b)) return -EPROTO;
        slots[bytes[i + 1]] = fds[i];
    }
    return 0;
}

// The idmapped binds, made in the parent while the child waits: a detached
// copy of the source with the sandbox's user namespace as its idmap. Where
// the filesystem cannot idmap (EINVAL) and the bind allows it, nothing is
// sent and the child binds it plain.
template <class = void>
inline void make_detached_binds(const mount::prepared_plan& mounts, parent_step_context& child,
                                std::vector<unique_fd>& made, std::string& slots_sent) {
    using namespace mount_abi;
    const std::string userns_path = "/proc/" + std::to_string(child.pid) + "/ns/user";
    const long userns = sys::openat(AT_FDCWD, userns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (userns < 0) throw error(step::idmap_mount, static_cast<int>(-userns), userns_path);
    const unique_fd userns_fd(static_cast<int>(userns));
    const auto& binds = mounts.detached_binds();
    for (std::size_t slot = 0; slot < binds.size(); ++slot) {
        const auto& bind = binds[slot];
        const unsigned recursive = bind.recursive ? at_recursive : 0U;
        const long tree = sys::open_tree(AT_FDCWD, bind.source, open_tree_clone | open_tree_cloexec | recursive);
        if (tree < 0) throw error(step::bind_mount, static_cast<int>(-tree), bind.source);
        unique_fd owned(static_cast<int>(tree));
        mount_attr attr{};
        attr.attr_set = bind.attributes | attr_idmap;
        attr.userns_fd = static_cast<std::uint64_t>(userns_fd.get());
        const long r = sys::mount_setattr(owned.get(), "", at_empty_path | recursive, &attr, sizeof attr);
        if (r < 0 && (bind.required || (r != -EINVAL && r != -ENOSYS && r != -EOPNOTSUPP)))
            throw error(step::idmap_mount, static_cast<int>(-r), bind.source,
                        "idmapped mounts need Linux 5.12+ and a filesystem that supports them (tmpfs only from 6.3); "
                        "without them, run the sandbox in the host's user namespace or give the files to its ids");
        if (r < 0) continue;  // a plain bind, made by the child
        child.fds_to_child.push_back(owned.get());
        slots_sent.push_back(static_cast<char>(slot));
        made.push_back(std::move(owned));
    }
}

// The child's step for one mount step: op.data = const mount_step*,
// op.data2 = mount_context*. A call, not a case of the child's interpreter,
// so that a program that never sets options::root does not compile the
// mount steps. Async-signal-safe.
CTR_CHILD_CODE inline long child_mount_step(const child_op& op) noexcept {
    return run_mount_step(*static_cast<const mount_step*>(op.data),
                          *static_cast<mount_context*>(const_cast<void*>(op.data2)));
}

template <class = void>
inline void plan_filesystem(launch_plan& plan, const options& opts) {
    if (!opts.root) return;
    const auto& mounts = plan.keep(opts.root->prepare());
    mount_context& state = plan.shared->mount_state;
    state.message = plan.shared->mount_message;
    state.message_size = sizeof plan.shared->mount_message;

    if (const std::size_t detached = mounts.detached_binds().size(); detached > 0) {
        if (!plan.created.has(ns::user) || raw::call(SYS_geteuid) != 0)
            throw error(step::idmap_mount, EINVAL, mounts.detached_binds().front().shown,
                        "an idmapped bind maps the ids of a new user namespace (ns::user) and needs a privileged caller");
        if (detached > 64) throw error(step::idmap_mount, E2BIG, {}, "at most 64 idmapped binds");
        auto& slots = plan.keep(std::vector<int>(detached, -1));
        auto& made = plan.keep(std::vector<unique_fd>{});
        state.detached_fds = slots.data();
        const int sync = plan.sync_channel();
        plan.while_child_waits([&mounts, &made](parent_step_context& child) {
            std::string slots_sent;
            make_detached_binds(mounts, child, made, slots_sent);
            child.fds_data_to_child = static_cast<char>(slots_sent.size()) + slots_sent;
        });
        plan.add(launch_phase::mounts,
                 {.code = child_op_code::call, .step = step::idmap_mount, .a = sync, .b = static_cast<long>(detached),
                  .data = slots.data(), .run = child_receive_fds},
                 "the idmapped binds");
    }

    const auto steps = mounts.steps();
    for (std::size_t i = 0; i < steps.size(); ++i)
        // A mount step's error says which part failed and why, from what the
        // child left in the shared mount state.
        plan.add(launch_phase::mounts,
                 {.code = child_op_code::call, .step = step::mount, .a = static_cast<long>(i), .data = &steps[i],
                  .data2 = &state, .run = child_mount_step},
                 steps[i].target ? steps[i].target : "",
                 [&mounts, &state, i](const child_report_view& report) {
                     return mounts.error_for(i, report.error, &state);
                 });
}

}  // namespace ctr::process::detail

namespace ctr::detail {
template <>
inline constexpr bool layer_header_included<mount::plan> = true;
template <>
struct launch_layer<mount::plan> {
    template <class = void>
    static void add_steps(launch_plan& plan, const process::options& opts) {
        process::detail::plan_filesystem(plan, opts);
    }
};
}  // namespace ctr::detail
