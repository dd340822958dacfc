#pragma once
// A running pasta, owned (net::pasta_process), and what starting one needs
// that does not spawn: its command line and the reading of its errors.
// start_pasta itself spawns, so it is defined in pasta.hpp, after
// process::spawn.

#include <ctr/detail/pasta_options.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

namespace ctr::net {

// The namespaces pasta connects to the caller's: the sandbox's network
// namespace and, when the sandbox has a user namespace of its own, that
// one, which pasta joins first (as its owner it has every right there,
// among them the right to enter the network namespace). Borrowed fds.
struct pasta_target {
    int netns_fd = -1;
    int userns_fd = -1;  // -1: the network namespace belongs to the caller's user namespace
};

// A pasta process, a child of this process: ended (SIGTERM, then SIGKILL
// after a second) and reaped when the owner ends. pasta keeps the sandbox's
// network namespace open and never ends by itself, so this owner is what
// ends it.
template <class>
class [[nodiscard]] basic_pasta_process {
public:
    basic_pasta_process() = default;
    basic_pasta_process(basic_pasta_process&& other) noexcept
        : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)) {}
    basic_pasta_process& operator=(basic_pasta_process&& other) noexcept {
        if (this != &other) {
            stop_quietly();
            pid_ = std::exchange(other.pid_, -1);
            pidfd_ = std::move(other.pidfd_);
        }
        return *this;
    }
    ~basic_pasta_process() { stop_quietly(); }

    template <class = void>
    pid_t pid() const noexcept { return pid_; }
    explicit operator bool() const noexcept { return static_cast<bool>(pidfd_); }

    // Ends pasta and reaps it; the sandbox's network stops. Throws
    // ctr::error when reaping fails (the destructor swallows that).
    template <class = void>
    void stop() {
        if (!pidfd_) return;
        const long r = end_and_reap();
        if (r < 0 && r != -ECHILD) throw error(step::wait, static_cast<int>(-r), "pasta, pid " + std::to_string(pid_));
    }

    // Takes ownership of a pasta started elsewhere: `pid` is a child of this
    // process and `pidfd` refers to it.
    template <class = void>
    static basic_pasta_process adopt(pid_t pid, unique_fd pidfd) noexcept {
        basic_pasta_process out;
        out.pid_ = pid;
        out.pidfd_ = std::move(pidfd);
        return out;
    }

private:
    // 0 or -errno of the reaping.
    template <class = void>
    long end_and_reap() noexcept {
        namespace sys = ctr::detail::sys;
        sys::pidfd_send_signal(pidfd_.get(), SIGTERM);
        pollfd ended{pidfd_.get(), POLLIN, 0};
        const timespec grace{1, 0};
        long ready;
        do ready = sys::ppoll(&ended, 1, &grace);
        while (ready == -EINTR);
        if (ready <= 0) sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        siginfo_t info{};
        long r;
        do r = sys::waitid(P_PIDFD, pidfd_.get(), &info, WEXITED, nullptr);
        while (r == -EINTR);
        pidfd_.reset();
        return r < 0 ? r : 0;
    }
    template <class = void>
    void stop_quietly() noexcept {
        if (pidfd_) end_and_reap();
    }

    pid_t pid_ = -1;
    unique_fd pidfd_;
};
using pasta_process = basic_pasta_process<void>;

// Starts pasta on `target` and returns once it has configured the
// interface there (pasta.hpp). `die_with_this_thread`: pasta gets SIGKILL
// when the calling thread ends.
template <class = void>
pasta_process start_pasta(const pasta& options, pasta_target target, bool die_with_this_thread = false);

namespace detail {

// The fds pasta gets, at these numbers, and names as /proc/self/fd/N: the
// namespaces (pasta accepts a path, not a number) and the write end of the
// pipe that it takes for its pid file. pasta writes its pid there once the
// sandbox's interface is configured: the readiness signal.
inline constexpr int pasta_netns_fd = 3;
inline constexpr int pasta_userns_fd = 4;
inline constexpr int pasta_ready_fd = 5;

// Empty, or a reason why `spec` cannot be one -t or -u argument.
template <class = void>
inline std::string pasta_port_problem(const std::string& spec) {
    if (spec.empty()) return "a published port is empty";
    for (const char c : spec)
        if (c <= ' ' || c == 0x7f) return "a published port has a space or a control character";
    return {};
}

template <class = void>
inline void check_pasta_options(const pasta& options) {
    if (options.program.empty())
        throw error(step::prepare, EINVAL, {}, "net::pasta::program is empty: give \"pasta\" or a path to it");
    for (const auto* list : {&options.tcp_ports, &options.udp_ports})
        for (const auto& spec : *list)
            if (const std::string problem = pasta_port_problem(spec); !problem.empty())
                throw error(step::prepare, EINVAL, spec, problem + " (pasta's -t/-u syntax: \"8080\", \"8080:80\")");
    if (options.ready_timeout.count() <= 0)
        throw error(step::prepare, EINVAL, std::to_string(options.ready_timeout.count()) + " ms",
                    "net::pasta::ready_timeout must be positive");
}

// pasta's command line. As root pasta would change to the user nobody
// before it joins the namespaces, and then cannot join them (this is how
// pasta 2023_03_09 behaves): --runas keeps it the caller.
template <class = void>
inline std::vector<std::string> pasta_command(const pasta& options, bool has_userns, bool as_root) {
    std::vector<std::string> argv{options.program, "--config-net", "--foreground", "--quiet",
                                  "--pid",        "/proc/self/fd/" + std::to_string(pasta_ready_fd)};
    if (as_root) argv.insert(argv.end(), {"--runas", "0"});
    if (has_userns) argv.insert(argv.end(), {"--userns", "/proc/self/fd/" + std::to_string(pasta_userns_fd)});
    argv.insert(argv.end(), {"--netns", "/proc/self/fd/" + std::to_string(pasta_netns_fd)});
    if (!options.interface_name.empty()) argv.insert(argv.end(), {"--ns-ifname", options.interface_name});
    if (options.tcp_ports.empty()) argv.insert(argv.end(), {"-t", "none"});
    for (const auto& spec : options.tcp_ports) argv.insert(argv.end(), {"-t", spec});
    if (options.udp_ports.empty()) argv.insert(argv.end(), {"-u", "none"});
    for (const auto& spec : options.udp_ports) argv.insert(argv.end(), {"-u", spec});
    argv.insert(argv.end(), {"-T", "none", "-U", "none", "--no-map-gw"});
    argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
    return argv;
}

// What pasta wrote to stderr, on one line: without the notes that it
// could not reach a system logger (there is none in many containers).
template <class = void>
inline std::string pasta_error_text(const std::string& written) {
    std::string out;
    std::size_t at = 0;
    while (at < written.size()) {
        std::size_t end = written.find('\n', at);
        if (end == std::string::npos) end = written.size();
        const std::string line = written.substr(at, end - at);
        at = end + 1;
        const bool syslog_note = line.rfind("Failed to send ", 0) == 0 && line.find(" to syslog") != std::string::npos;
        if (line.empty() || syslog_note) continue;
        out += (out.empty() ? "" : "; ") + line;
    }
    if (out.size() > 1000) out = out.substr(0, 1000) + "...";
    return out;
}

// Reads the memfd that held pasta's stderr.
template <class = void>
inline std::string read_all_from_start(int fd) {
    std::string text;
    char buffer[4096];
    long offset = 0;
    for (;;) {
        const long n = ctr::detail::sys::pread64(fd, buffer, sizeof buffer, offset);
        if (n == -EINTR) continue;
        if (n <= 0 || text.size() > 65536) break;
        text.append(buffer, static_cast<std::size_t>(n));
        offset += n;
    }
    return text;
}

}  // namespace detail
}  // namespace ctr::net
