#include <greet/greet.h>

#include "sample_version.h"

#include <stdio.h>

int greet(char* out, unsigned long size, const char* who) {
    return snprintf(out, size, "hello, %s, from a sandboxed CMake build (sample %s, %d vowels)", who,
                    SAMPLE_VERSION, count_vowels(who));
}
