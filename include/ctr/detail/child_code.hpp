#pragma once
// CTR_CHILD_CODE marks a function that runs in the child between clone and
// exec (detail/child_program.hpp, detail/mount_step.hpp, the layers' steps).
//
// The child runs on a stack the sanitizer runtimes know nothing about and
// with the parent thread's TLS, so their instrumentation stays out of it:
// no_sanitize removes the memory checks, and clang's
// disable_sanitizer_instrumentation also the function entry and exit hooks
// that ThreadSanitizer would otherwise run there, writing the parent
// thread's TSan state from the child. noinline keeps the child's code from
// being folded into an instrumented caller.
#if defined(__clang__)
#if __has_attribute(disable_sanitizer_instrumentation)
#define CTR_CHILD_CODE \
    __attribute__((no_sanitize("address", "undefined", "thread"), disable_sanitizer_instrumentation, noinline))
#else
#define CTR_CHILD_CODE __attribute__((no_sanitize("address", "undefined", "thread"), noinline))
#endif
#else
#define CTR_CHILD_CODE __attribute__((no_sanitize_address, no_sanitize_undefined, noinline))
#endif
