#pragma once
// A forked child under a seccomp filter, reporting what its calls answered
// one line at a time (tests/seccomp_test.cpp, tests/oci_seccomp_test.cpp).
#include <ctr/seccomp.hpp>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ctr_test {

// The child's side of the report pipe: one line per report.
struct reporter {
    int fd;
    void number(long value) const {
        char line[32];
        const int n = std::snprintf(line, sizeof line, "%ld\n", value);
        write_all(line, static_cast<std::size_t>(n));
    }
    void text(std::string_view value) const {
        std::string line(value);
        for (char& c : line)
            if (c == '\n') c = '|';
        line += '\n';
        write_all(line.data(), line.size());
    }
    void write_all(const char* data, std::size_t size) const {
        while (size > 0) {
            const ssize_t n = write(fd, data, size);
            if (n <= 0) _exit(125);
            data += n;
            size -= static_cast<std::size_t>(n);
        }
    }
};

struct child_result {
    int status = -1;
    std::vector<std::string> lines;

    // The leading lines that are numbers, and what follows them as text.
    std::vector<long> numbers() const {
        std::vector<long> out;
        for (const std::string& line : lines) {
            if (line.empty() || line.find_first_not_of("-0123456789") != std::string::npos) break;
            out.push_back(std::stol(line));
        }
        return out;
    }
    std::string output() const {
        std::string out;
        for (std::size_t i = numbers().size(); i < lines.size(); ++i) out += lines[i] + "\n";
        return out;
    }

    bool exited_with(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
    bool killed_by(int signal) const { return WIFSIGNALED(status) && WTERMSIG(status) == signal; }
    long number(std::size_t i) const { return i < lines.size() ? std::stol(lines[i]) : -999999; }
    std::string describe() const {
        std::string text = WIFEXITED(status)     ? "exit " + std::to_string(WEXITSTATUS(status))
                           : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                 : "status " + std::to_string(status);
        text += ", reports:";
        for (const std::string& line : lines) text += " [" + line + "]";
        return text;
    }
};

// Exit codes of a child that could not set itself up.
inline constexpr int no_new_privs_failed = 120;
inline constexpr int install_failed = 121;

// Forks a child that installs `f` (none: runs unfiltered, as a probe) and
// then runs body(reporter). The child never dumps core: a killed child is
// expected here.
inline child_result run_child(const ctr::seccomp::filter* f, const std::function<void(const reporter&)>& body) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        close(fds[0]);
        const reporter out{fds[1]};
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        const rlimit no_core{0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        if (f) {
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(no_new_privs_failed);
            const ctr::detail::child_op op = ctr::detail::seccomp_install_op(*f);
            const ctr::detail::child_view view{};
            if (ctr::detail::child_run_op(view, op) != 0) _exit(install_failed);
        }
        body(out);
        _exit(0);
    }
    close(fds[1]);
    std::string all;
    char buffer[4096];
    for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        all.append(buffer, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    child_result result;
    while (waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {
    }
    for (std::size_t start = 0; start < all.size();) {
        const std::size_t end = all.find('\n', start);
        if (end == std::string::npos) break;
        result.lines.push_back(all.substr(start, end - start));
        start = end + 1;
    }
    return result;
}

}  // namespace ctr_test
