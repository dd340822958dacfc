#pragma once
// Creating the child: its stack, and clone3 with a clone(2) fallback.

#include <ctr/detail/child_program.hpp>
#include <ctr/detail/syscall.hpp>

#include <linux/sched.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace ctr::detail {

// The stack the child runs on until exec. A guard page below it turns an
// overflow into a fault instead of a write into the parent's memory.
template <class>
class basic_child_stack {
public:
    static constexpr std::size_t usable_size = 64 * 1024;
    static constexpr std::size_t guard_size = 4096;

    basic_child_stack() = default;
    basic_child_stack(basic_child_stack&& other) noexcept : base_(std::exchange(other.base_, nullptr)) {}
    basic_child_stack& operator=(basic_child_stack&& other) noexcept {
        if (this != &other) {
            release_mapping();
            base_ = std::exchange(other.base_, nullptr);
        }
        return *this;
    }
    ~basic_child_stack() { release_mapping(); }

    // Returns 0 or -errno.
    template <class = void>
    long allocate() noexcept {
        void* base = nullptr;
        const long r = sys::mmap(&base, guard_size + usable_size, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE);
        if (r < 0) return r;
        raw::call(SYS_mprotect, base, guard_size, PROT_NONE);
        base_ = base;
        return 0;
    }
    template <class = void>
    void* lowest() const noexcept { return static_cast<char*>(base_) + guard_size; }
    template <class = void>
    void* top() const noexcept { return static_cast<char*>(base_) + guard_size + usable_size; }

private:
    template <class = void>
    void release_mapping() noexcept {
        if (base_) sys::munmap(base_, guard_size + usable_size);
        base_ = nullptr;
    }
    void* base_ = nullptr;
};
using child_stack = basic_child_stack<void>;

// How the child's memory relates to the parent's until exec.
enum class memory_mode : std::uint8_t {
    // CLONE_VM: no page tables are copied, so the cost does not grow with
    // the parent's heap. The child must only run child_program code.
    shared,
    // A copy-on-write copy, as fork() makes: the cost grows with the heap.
    copied,
};

struct clone_request {
    std::uint64_t flags = 0;   // namespace and other CLONE_* flags beyond the basics
    memory_mode memory = memory_mode::shared;
    int cgroup_fd = -1;        // CLONE_INTO_CGROUP target, -1 for none
    bool needs_clone3 = false; // some flags exist only in clone3
};

struct clone_outcome {
    long pid = 0;  // the child's pid, or -errno
    int pidfd = -1;
};

// Starts child_main(view) in a new process. All signals are blocked across
// the clone so that no handler of the parent runs in the child before it
// resets the dispositions; the child restores the mask last.
// Returns the pid or -errno; the pidfd comes back through `outcome`.
template <class = void>
inline clone_outcome clone_child(const clone_request& request, child_stack& stack, child_view& view) noexcept {
    clone_outcome outcome;
    std::uint64_t flags = CLONE_PIDFD | request.flags;
    if (request.memory == memory_mode::shared) flags |= CLONE_VM;
    if (request.cgroup_fd >= 0) flags |= CLONE_INTO_CGROUP;

    const unsigned long all_signals = ~0UL;
    unsigned long previous = 0;
    if (long r = sys::rt_sigprocmask(SIG_SETMASK, &all_signals, &previous); r < 0) {
        outcome.pid = r;
        return outcome;
    }

    clone_args args{};
    args.flags = flags;
    args.pidfd = reinterpret_cast<std::uint64_t>(&outcome.pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<std::uint64_t>(stack.lowest());
    args.stack_size = child_stack::usable_size;
    if (request.cgroup_fd >= 0) args.cgroup = static_cast<decltype(args.cgroup)>(request.cgroup_fd);
    long pid = sys::clone3(&args, sizeof args, child_main, &view);

    // clone3 is missing before Linux 5.3 and is often answered with ENOSYS
    // by container seccomp profiles; clone(2) does the same job unless a
    // flag only clone3 has was asked for.
    if (pid == -ENOSYS && !request.needs_clone3 && request.cgroup_fd < 0) {
        pid = sys::clone(child_main, stack.top(), flags | SIGCHLD, &view, &outcome.pidfd);
    }
    // Straight to the kernel, not through the fault-injectable wrapper:
    // restoring a mask the kernel just gave us cannot fail, and a test fault
    // meant for the child's restore must not be taken here.
    raw::call(SYS_rt_sigprocmask, SIG_SETMASK, &previous, nullptr, sys::kernel_sigset_size);
    outcome.pid = pid;
    return outcome;
}

}  // namespace ctr::detail
