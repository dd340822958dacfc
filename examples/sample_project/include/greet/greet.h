#pragma once

/* Writes a greeting for `who` into `out` (at most `size` bytes, terminated);
   returns the length it needed, as snprintf does. */
int greet(char* out, unsigned long size, const char* who);

/* How many vowels `text` holds: a second file of the library. */
int count_vowels(const char* text);
