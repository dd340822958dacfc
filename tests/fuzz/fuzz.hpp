#pragma once
// Shared by the fuzz targets of tests/fuzz: a property check that stops the
// run with a message (libFuzzer then saves the input as crash-*), and the
// input as text.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// A broken property: print what and where, then abort so that libFuzzer
// records the input. Not assert(): it must hold in release builds too.
#define CTR_FUZZ_CHECK(condition, ...)                                                       \
    do {                                                                                     \
        if (!(condition)) {                                                                  \
            std::fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #condition); \
            std::fprintf(stderr, "  " __VA_ARGS__);                                          \
            std::fputc('\n', stderr);                                                        \
            std::abort();                                                                    \
        }                                                                                    \
    } while (0)

namespace ctr_fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// Splits at `separator`, keeping empty parts.
inline std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

}  // namespace ctr_fuzz
