/* The faults of tests/stress/stress_test.cpp, made for real inside a busybox
   rootfs (hence static):
     crash segv      dereferences a null pointer (SIGSEGV)
     crash abort     abort() (SIGABRT)
     crash alloc N   touches N MiB of anonymous memory, then exits 0
   Anything else exits 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
    if (argc >= 2 && strcmp(argv[1], "segv") == 0) {
        /* Both volatile: the compiler can neither see that the pointer is
           null (and emit a trap instead) nor drop the store as dead. */
        volatile int* volatile nowhere = NULL;
        *nowhere = 1;
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "abort") == 0) abort();
    if (argc >= 3 && strcmp(argv[1], "alloc") == 0) {
        const size_t bytes = (size_t)strtoull(argv[2], NULL, 10) << 20;
        volatile char* memory = malloc(bytes);
        if (!memory) return 1;
        for (size_t i = 0; i < bytes; i += 4096) memory[i] = 1;
        printf("allocated %s MiB\n", argv[2]);
        return 0;
    }
    return 2;
}
