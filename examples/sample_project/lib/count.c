#include <greet/greet.h>

#include <string.h>

int count_vowels(const char* text) {
    int n = 0;
    for (; *text; ++text)
        if (strchr("aeiouAEIOU", *text)) ++n;
    return n;
}
