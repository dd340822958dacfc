#pragma once
// Small whole-file reads for /proc and /sys, through the syscall layer.

#include <ctr/detail/syscall.hpp>

#include <optional>
#include <string>

namespace ctr::detail {

// The file's contents, or nothing if it cannot be opened or read.
template <class = void>
inline std::optional<std::string> read_small_file(const std::string& path) {
    const long fd = sys::openat(AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string contents;
    char buffer[4096];
    for (;;) {
        const long n = sys::read(static_cast<int>(fd), buffer, sizeof buffer);
        if (n == -EINTR) continue;
        if (n < 0) {
            sys::close(static_cast<int>(fd));
            return std::nullopt;
        }
        if (n == 0) break;
        contents.append(buffer, static_cast<std::size_t>(n));
    }
    sys::close(static_cast<int>(fd));
    return contents;
}

// The first line of a file, without its newline; for sysctls and the like.
template <class = void>
inline std::optional<std::string> read_first_line(const std::string& path) {
    auto contents = read_small_file(path);
    if (!contents) return std::nullopt;
    contents->resize(contents->find('\n') == std::string::npos ? contents->size() : contents->find('\n'));
    return contents;
}

}  // namespace ctr::detail
