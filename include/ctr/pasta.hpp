#pragma once
// ctr::net::pasta: a sandbox's network through pasta (package passt), with
// no privilege. spawn does all of it with options::pasta = net::pasta{};
// start_pasta is public for callers that hold namespaces themselves.
//
// How: pasta runs in the caller's network namespace as a child of this
// process, joins the sandbox's user namespace (when it has one) and network
// namespace, creates and configures a tap interface there (--config-net),
// and then carries the sandbox's traffic through sockets of the caller's
// namespace. Its pid file, given as a pipe, is the readiness signal: pasta
// writes it once the interface is configured. It never ends by itself (it
// holds the namespace open), so its owner, pasta_process, ends it.

#include <ctr/detail/pasta_process.hpp>
#include <ctr/detail/launch_plan.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/spawn.hpp>
#include <ctr/unique_fd.hpp>

#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <string>
#include <utility>

namespace ctr::net {

namespace detail {

// Why pasta is gone, with what it wrote to stderr.
template <class = void>
inline error pasta_failed(const pasta& options, const process::result& ended, int errors_fd) {
    const std::string written = pasta_error_text(read_all_from_start(errors_fd));
    std::string how = ended.exit_code ? "pasta exited with status " + std::to_string(*ended.exit_code)
                                      : "pasta was killed by signal " + std::to_string(ended.signal.value_or(0));
    return error(step::start_network_helper, EIO, options.program, how + (written.empty() ? "" : ": " + written));
}

}  // namespace detail

template <class>
inline pasta_process start_pasta(const pasta& options, pasta_target target, bool die_with_this_thread) {
    namespace sys = ctr::detail::sys;
    detail::check_pasta_options(options);
    if (target.netns_fd < 0) throw error(step::prepare, EINVAL, {}, "no network namespace given for pasta");

    // Its stderr goes to a file in memory, read only if it fails: a pipe
    // that nobody reads once it runs would stop it when full.
    const long memfd = sys::memfd_create("ctr-pasta-stderr", MFD_CLOEXEC);
    if (memfd < 0)
        throw error(step::start_network_helper, static_cast<int>(-memfd), options.program, "a file for its errors");
    const unique_fd errors(static_cast<int>(memfd));
    unique_fd ready_read, ready_write;
    ctr::detail::make_pipe(ready_read, ready_write);

    std::vector<process::fd_mapping> fds{{target.netns_fd, detail::pasta_netns_fd},
                                         {ready_write.get(), detail::pasta_ready_fd}};
    if (target.userns_fd >= 0) fds.push_back({target.userns_fd, detail::pasta_userns_fd});
    const bool as_root = ctr::detail::raw::call(SYS_geteuid) == 0;
    process::child helper;
    try {
        helper = process::spawn(detail::pasta_command(options, target.userns_fd >= 0, as_root),
                                {.std_in = process::stdio::null(),
                                 .std_out = process::stdio::null(),
                                 .std_err = process::stdio::from_fd(errors.get()),
                                 .fds = std::move(fds),
                                 .die_with_parent = die_with_this_thread,
                                 // Out of the caller's process group: a ^C at
                                 // the caller's terminal is for the caller
                                 // (and its sandbox), while pasta ends when
                                 // its owner ends it.
                                 .new_session = true});
    } catch (const error& e) {
        const int code = e.code().value();
        if (e.step() == step::exec && (code == ENOENT || code == ENOTDIR))
            throw error(step::start_network_helper, code, options.program,
                        "pasta is not installed: install the package passt (apt-get install passt, dnf install "
                        "passt), or give its path in net::pasta::program");
        throw;
    }
    // Only pasta's copy now: its exit closes the pipe.
    ready_write.reset();

    // pasta writes "<pid>\n" once the interface is configured; an end of
    // file before that means it exited.
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + options.ready_timeout;
    std::string line;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            helper.kill();
            helper.wait();
            const std::string written = detail::pasta_error_text(detail::read_all_from_start(errors.get()));
            throw error(step::start_network_helper, ETIMEDOUT, options.program,
                        "pasta did not configure the sandbox's network within " +
                            std::to_string(options.ready_timeout.count()) + " ms" +
                            (written.empty() ? "" : ": " + written));
        }
        pollfd ready{ready_read.get(), POLLIN, 0};
        const timespec wait{static_cast<time_t>(left.count() / 1'000'000'000),
                            static_cast<long>(left.count() % 1'000'000'000)};
        const long r = sys::ppoll(&ready, 1, &wait);
        if (r == -EINTR || r == 0) continue;
        if (r < 0) throw error(step::start_network_helper, static_cast<int>(-r), options.program, "waiting for it");
        char buffer[64];
        const long n = sys::read(ready_read.get(), buffer, sizeof buffer);
        if (n == -EINTR || n == -EAGAIN) continue;
        if (n <= 0) throw detail::pasta_failed(options, helper.wait(), errors.get());
        line.append(buffer, static_cast<std::size_t>(n));
        if (line.find('\n') != std::string::npos) break;
    }
    const pid_t pid = helper.pid();
    return pasta_process::adopt(pid, helper.release());
}

}  // namespace ctr::net

// spawn's pasta layer, so that a program that includes this header can set
// options::pasta (it needs start_pasta above).
#include <ctr/detail/launch_pasta.hpp>
