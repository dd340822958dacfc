#pragma once
// Raw system calls that never touch errno or any other thread-local state.
//
// Why not glibc's syscall(): the spawn child shares the parent's memory
// (CLONE_VM) and, because it does not get its own TLS, also the parent
// thread's errno. A libc wrapper in the child would write that errno while
// the parent thread runs. These wrappers return the kernel's value as is:
// a result >= 0, or -errno.

#include <sys/syscall.h>

#include <cstdint>

#if !defined(__x86_64__)
#error "ctr supports x86-64 Linux only for now: the spawn child needs a raw syscall and clone3 trampoline for each architecture"
#endif

namespace ctr::detail::raw {

// Async-signal-safe.
inline long syscall6(long number, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                     long a6 = 0) noexcept {
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

template <typename... Args>
inline long call(long number, Args... args) noexcept {
    return syscall6(number, (long)(args)...);
}

// clone3 that runs `entry(argument)` on the new stack in the child and exits
// the child with its return value; the parent gets the child's pid or -errno.
// A C++ function cannot continue in the child after a raw clone3 with a new
// stack (its frame is on the old stack), hence this small trampoline.
// rdi = clone_args, rsi = size, rdx = entry, rcx = argument. The syscall
// clobbers rcx and r11, so entry and argument move to r8 and r9 first.
[[gnu::naked, gnu::noinline]] inline long clone3_run(void* /*args*/, unsigned long /*size*/,
                                                     int (* /*entry*/)(void*),
                                                     void* /*argument*/) noexcept {
    __asm__ volatile(
        "mov %rdx, %r8\n\t"
        "mov %rcx, %r9\n\t"
        "mov $435, %eax\n\t"  // __NR_clone3
        "syscall\n\t"
        "test %rax, %rax\n\t"
        "jnz 1f\n\t"
        "xor %ebp, %ebp\n\t"  // end of the frame chain for debuggers
        "mov %r9, %rdi\n\t"
        "call *%r8\n\t"
        "mov %eax, %edi\n\t"
        "mov $231, %eax\n\t"  // __NR_exit_group
        "syscall\n\t"
        "ud2\n"
        "1:\n\t"
        "ret\n\t");
}

// clone(2) that runs `entry(argument)` on the new stack in the child, for
// kernels (or seccomp profiles) without clone3. glibc's clone() would do the
// same but reports failure through errno, which the spawn child must not
// touch. rdi = flags, rsi = stack top (16-byte aligned), rdx = where the
// pidfd goes (CLONE_PIDFD) or the parent tid, rcx = entry, r8 = argument.
// The argument travels on the new stack: no free register survives the
// syscall besides the ones clone itself reads.
[[gnu::naked, gnu::noinline]] inline long clone_run(unsigned long /*flags*/, void* /*stack_top*/,
                                                    int* /*parent_tid*/, int (* /*entry*/)(void*),
                                                    void* /*argument*/) noexcept {
    __asm__ volatile(
        "mov %rcx, %r9\n\t"
        "sub $16, %rsi\n\t"
        "mov %r8, (%rsi)\n\t"
        "xor %r10d, %r10d\n\t"  // child tid: none
        "xor %r8d, %r8d\n\t"    // tls: none
        "mov $56, %eax\n\t"     // __NR_clone
        "syscall\n\t"
        "test %rax, %rax\n\t"
        "jnz 1f\n\t"
        "xor %ebp, %ebp\n\t"
        "mov (%rsp), %rdi\n\t"
        "call *%r9\n\t"
        "mov %eax, %edi\n\t"
        "mov $231, %eax\n\t"    // __NR_exit_group
        "syscall\n\t"
        "ud2\n"
        "1:\n\t"
        "ret\n\t");
}

}  // namespace ctr::detail::raw
