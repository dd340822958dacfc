#pragma once
// ctr::seccomp user notification: a supervisor in the caller that answers
// chosen system calls of a sandbox (Linux 5.0+).
//
//     auto f = ctr::seccomp::builder{}
//                  .default_action(ctr::seccomp::action::allow())
//                  .rule("connect", ctr::seccomp::action::notify())
//                  .build_shared();
//     auto child = ctr::process::spawn(argv, {.security = {.no_new_privileges = true, .seccomp = f}});
//     ctr::seccomp::supervisor guard(child.take_seccomp_listener(),
//         [](const ctr::seccomp::notification& call, ctr::seccomp::listener& from) {
//             return allowed(call, from) ? ctr::seccomp::response::continue_call()
//                                        : ctr::seccomp::response::fail_with(ECONNREFUSED);
//         });
//
// A notified call waits in the kernel until the listener answers it: fail
// with an errno, return a value without running (emulated), run as if
// unfiltered (continue_call), or return a new fd of the caller that refers
// to a file of the supervisor's (with_fd). Once every copy of the listener
// is closed (a supervisor that ended or died), notified calls fail with
// ENOSYS: they never hang.
//
// What the supervisor reads of the caller (a path, a socket address) lives
// in the caller's memory, which another of its threads may change after the
// read: continue_call() on such a decision is a race the caller can win
// (seccomp_unotify(2)). For a decision that must hold, emulate the call on
// what was read: take the caller's fd (listener::take_fd), do the call on it
// here, and answer with its result (examples/connect_allowlist.cpp).

#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ctr::seccomp {

// One notified call, as the kernel reported it.
struct notification {
    std::uint64_t id = 0;              // the kernel's cookie for this call
    pid_t pid = 0;                     // the calling thread, as the supervisor's pid namespace sees it
    int syscall = -1;                  // its number in `arch`'s table
    std::uint32_t arch = 0;            // AUDIT_ARCH_X86_64, or another ABI's
    std::uint64_t instruction_pointer = 0;
    std::array<std::uint64_t, 6> args{};
};

// The answer to a notification.
class response {
public:
    enum class kind : std::uint8_t { fail_with, value, continue_call, with_fd };

    // The call returns -1 with this errno (1..4095), without running.
    static constexpr response fail_with(int errno_value) noexcept { return {kind::fail_with, errno_value, 0, -1, false}; }
    // The call returns `v` without running: an emulated call.
    static constexpr response value(std::int64_t v) noexcept { return {kind::value, 0, v, -1, false}; }
    // The call runs as if the filter had allowed it. Not a security decision
    // on anything the call's arguments point to (see the header's comment).
    static constexpr response continue_call() noexcept { return {kind::continue_call, 0, 0, -1, false}; }
    // The call returns a new fd of the caller that refers to the supervisor's
    // open file `fd` (which the supervisor keeps and closes itself): an
    // emulated open, socket or accept. Linux 5.9+ (atomic with the answer
    // from 5.14).
    static constexpr response with_fd(int fd, bool close_on_exec = true) noexcept {
        return {kind::with_fd, 0, 0, fd, close_on_exec};
    }

    constexpr kind which() const noexcept { return kind_; }
    constexpr int errno_value() const noexcept { return errno_; }
    constexpr std::int64_t return_value() const noexcept { return value_; }
    constexpr int fd() const noexcept { return fd_; }
    constexpr bool close_on_exec() const noexcept { return cloexec_; }

private:
    constexpr response(kind k, int e, std::int64_t v, int fd, bool cloexec) noexcept
        : kind_(k), errno_(e), value_(v), fd_(fd), cloexec_(cloexec) {}
    kind kind_;
    int errno_;
    std::int64_t value_;
    int fd_;
    bool cloexec_;
};

namespace detail {
using namespace ::ctr::detail;

// The sizes of the kernel's structures, which may be larger than this
// header's (a newer kernel): receive and answer through buffers of that size.
struct notify_sizes {
    std::size_t notif = sizeof(seccomp_notif);
    std::size_t resp = sizeof(seccomp_notif_resp);
};
template <class = void>
inline notify_sizes kernel_notify_sizes() {
    seccomp_notif_sizes sizes{};
    if (const long r = sys::seccomp(SECCOMP_GET_NOTIF_SIZES, 0, &sizes); r < 0)
        throw error(step::install_seccomp, static_cast<int>(-r), {},
                    "asking the kernel for its notification sizes: seccomp user notification needs Linux 5.0+");
    return {std::max<std::size_t>(sizes.seccomp_notif, sizeof(seccomp_notif)),
            std::max<std::size_t>(sizes.seccomp_notif_resp, sizeof(seccomp_notif_resp))};
}
}  // namespace detail

// The listener of a filter that notifies (child::take_seccomp_listener):
// receives the notified calls and answers them. Owns the fd; closing it
// (the destructor) makes the calls that nobody answers fail with ENOSYS.
class listener {
public:
    listener() = default;
    template <class = void>
    explicit listener(unique_fd fd) : fd_(std::move(fd)) {
        if (!fd_) throw error(step::install_seccomp, EBADF, {}, "no listener: the filter notifies nothing, or it was taken");
        sizes_ = detail::kernel_notify_sizes();
    }

    int fd() const noexcept { return fd_.get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

    // The next notified call, waiting at most `timeout` (negative: forever).
    // Nothing when the time passed, or once no process uses the filter any
    // more (every sandboxed process ended).
    template <class = void>
    std::optional<notification> receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) {
        for (;;) {
            pollfd p{fd_.get(), POLLIN, 0};
            timespec limit{static_cast<time_t>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000) * 1000000L};
            const long ready = detail::sys::ppoll(&p, 1, timeout.count() < 0 ? nullptr : &limit);
            if (ready == -EINTR) continue;
            if (ready < 0) throw error(step::install_seccomp, static_cast<int>(-ready), {}, "polling the listener");
            if (ready == 0) return std::nullopt;
            if ((p.revents & POLLIN) == 0) return std::nullopt;  // POLLHUP: no process uses the filter
            std::vector<std::uint64_t> buffer((sizes_.notif + 7) / 8, 0);
            const long r = detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_RECV, reinterpret_cast<long>(buffer.data()));
            // ENOENT: the caller went away (killed, or its wait interrupted)
            // between poll and receive: wait for the next.
            if (r == -ENOENT || r == -EINTR) continue;
            if (r < 0) throw error(step::install_seccomp, static_cast<int>(-r), {}, "receiving a notification");
            seccomp_notif got{};
            std::memcpy(&got, buffer.data(), sizeof got);
            notification n;
            n.id = got.id;
            n.pid = static_cast<pid_t>(got.pid);
            n.syscall = got.data.nr;
            n.arch = got.data.arch;
            n.instruction_pointer = got.data.instruction_pointer;
            for (std::size_t i = 0; i < 6; ++i) n.args[i] = got.data.args[i];
            return n;
        }
    }

    // Whether the call still waits for its answer. After reading the
    // caller's memory, this is what says the bytes were its: the thread
    // that made the call is still there, not another that reused its id.
    template <class = void>
    bool still_waiting(const notification& n) const noexcept {
        std::uint64_t id = n.id;
        return detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, reinterpret_cast<long>(&id)) == 0;
    }

    // Answers the call. False when it no longer waits: answered already,
    // or the caller was killed, or a signal interrupted it (then the call
    // is restarted and notified again).
    template <class = void>
    bool answer(const notification& n, const response& how) {
        if (how.which() == response::kind::with_fd) return answer_with_fd(n, how);
        if (how.which() == response::kind::fail_with && (how.errno_value() < 1 || how.errno_value() > 4095))
            throw error(step::install_seccomp, EINVAL, std::to_string(how.errno_value()),
                        "an answer's errno must be in 1..4095");
        std::vector<std::uint64_t> buffer((sizes_.resp + 7) / 8, 0);
        seccomp_notif_resp resp{};
        resp.id = n.id;
        switch (how.which()) {
            case response::kind::fail_with: resp.error = -how.errno_value(); break;
            case response::kind::value: resp.val = how.return_value(); break;
            case response::kind::continue_call: resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; break;
            case response::kind::with_fd: break;
        }
        std::memcpy(buffer.data(), &resp, sizeof resp);
        const long r = detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_SEND, reinterpret_cast<long>(buffer.data()));
        // ENOENT: the call no longer waits; EINPROGRESS: it was answered.
        if (r == -ENOENT || r == -EINPROGRESS) return false;
        if (r < 0)
            throw error(step::install_seccomp, static_cast<int>(-r), {},
                        r == -EINVAL && how.which() == response::kind::continue_call
                            ? "answering a notification: continue_call needs Linux 5.5+"
                            : "answering a notification");
        return true;
    }

    // Up to `size` bytes of the caller's memory at `address` (fewer where
    // its mapping ends), checked with still_waiting() afterwards. Throws
    // when the caller is gone (ESRCH) or the memory cannot be read.
    template <class = void>
    std::string read_memory(const notification& n, std::uint64_t address, std::size_t size) const {
        const unique_fd mem = open_memory(n);
        std::string out(size, '\0');
        std::size_t got = 0;
        while (got < size) {
            const long r = detail::sys::pread64(mem.get(), out.data() + got, size - got,
                                                static_cast<long>(address + got));
            if (r == -EINTR) continue;
            if (r < 0 && got == 0) throw error(step::install_seccomp, static_cast<int>(-r), memory_path(n), "reading the caller's memory");
            if (r <= 0) break;
            got += static_cast<std::size_t>(r);
        }
        out.resize(got);
        if (!still_waiting(n)) throw error(step::install_seccomp, ESRCH, memory_path(n), "the caller went away while its memory was read");
        return out;
    }

    // A NUL-terminated string of the caller's (a path), at most `max` bytes;
    // EFAULT when no end is found within them.
    template <class = void>
    std::string read_string(const notification& n, std::uint64_t address, std::size_t max = 4096) const {
        const unique_fd mem = open_memory(n);
        std::string out;
        char chunk[256];
        while (out.size() < max) {
            // Never across a page boundary: the next page may be unmapped
            // although the string ends before it.
            const std::uint64_t at = address + out.size();
            const std::size_t to_page_end = static_cast<std::size_t>(4096 - (at % 4096));
            const std::size_t want = std::min({sizeof chunk, to_page_end, max - out.size()});
            const long r = detail::sys::pread64(mem.get(), chunk, want, static_cast<long>(at));
            if (r == -EINTR) continue;
            if (r <= 0) throw error(step::install_seccomp, r < 0 ? static_cast<int>(-r) : EFAULT, memory_path(n), "reading a string of the caller's");
            const std::size_t len = static_cast<std::size_t>(r);
            if (const void* end = std::memchr(chunk, '\0', len)) {
                out.append(chunk, static_cast<std::size_t>(static_cast<const char*>(end) - chunk));
                if (!still_waiting(n)) throw error(step::install_seccomp, ESRCH, memory_path(n), "the caller went away while its memory was read");
                return out;
            }
            out.append(chunk, len);
        }
        throw error(step::install_seccomp, EFAULT, memory_path(n), "no end of the string within " + std::to_string(max) + " bytes");
    }

    // The caller's fd `target_fd`, as a new fd of this process (Linux 5.6+,
    // pidfd_getfd): to do the call on the caller's own file, socket or
    // directory, and answer with its result.
    template <class = void>
    unique_fd take_fd(const notification& n, int target_fd) const {
        const long pidfd = detail::sys::pidfd_open(n.pid, 0);
        if (pidfd < 0) throw error(step::install_seccomp, static_cast<int>(-pidfd), "pid " + std::to_string(n.pid), "opening the caller");
        const unique_fd caller(static_cast<int>(pidfd));
        const long fd = detail::sys::pidfd_getfd(caller.get(), target_fd, 0);
        if (fd < 0)
            throw error(step::install_seccomp, static_cast<int>(-fd), "fd " + std::to_string(target_fd) + " of pid " + std::to_string(n.pid),
                        fd == -EPERM ? "taking the caller's fd needs ptrace access to it" : "taking the caller's fd");
        unique_fd taken(static_cast<int>(fd));
        if (!still_waiting(n)) throw error(step::install_seccomp, ESRCH, "pid " + std::to_string(n.pid), "the caller went away while its fd was taken");
        return taken;
    }

private:
    static std::string memory_path(const notification& n) { return "/proc/" + std::to_string(n.pid) + "/mem"; }

    template <class = void>
    unique_fd open_memory(const notification& n) const {
        const std::string path = memory_path(n);
        const long fd = detail::sys::openat(AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) throw error(step::install_seccomp, static_cast<int>(-fd), path, "opening the caller's memory");
        return unique_fd(static_cast<int>(fd));
    }

    template <class = void>
    bool answer_with_fd(const notification& n, const response& how) {
        seccomp_notif_addfd add{};
        add.id = n.id;
        add.flags = SECCOMP_ADDFD_FLAG_SEND;
        add.srcfd = static_cast<std::uint32_t>(how.fd());
        add.newfd_flags = how.close_on_exec() ? O_CLOEXEC : 0;
        long r = detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_ADDFD, reinterpret_cast<long>(&add));
        if (r == -EINVAL) {
            // Before Linux 5.14: add the fd, then answer with its number.
            add.flags = 0;
            r = detail::sys::ioctl(fd_.get(), SECCOMP_IOCTL_NOTIF_ADDFD, reinterpret_cast<long>(&add));
            if (r >= 0) return answer(n, response::value(r));
        }
        if (r == -ENOENT) return false;
        if (r < 0)
            throw error(step::install_seccomp, static_cast<int>(-r), "fd " + std::to_string(how.fd()),
                        r == -ENOTTY || r == -EINVAL ? "answering with an fd needs Linux 5.9+"
                                                     : "adding the supervisor's fd to the caller");
        return true;
    }

    unique_fd fd_;
    detail::notify_sizes sizes_{};
};

// Serves a listener on a thread of its own: every notified call goes to
// `decide`, and its answer to the call. Until destroyed, or until no
// process uses the filter any more. A `decide` that throws fails the call
// with EPERM (nothing is granted by mistake) and is kept in failure().
template <class>
class basic_supervisor {
public:
    using decision = std::function<response(const notification&, listener&)>;

    template <class = void>
    basic_supervisor(unique_fd listener_fd, decision decide)
        : listener_(std::move(listener_fd)), decide_(std::move(decide)) {
        int ends[2];
        if (const long r = ::ctr::detail::sys::pipe2(ends, O_CLOEXEC); r < 0)
            throw error(step::create_pipe, static_cast<int>(-r), {}, "the supervisor's stop channel");
        stop_read_.reset(ends[0]);
        stop_write_.reset(ends[1]);
        thread_ = std::thread([this] { serve(); });
    }
    basic_supervisor(const basic_supervisor&) = delete;
    basic_supervisor& operator=(const basic_supervisor&) = delete;
    // Stops serving and closes the listener: the sandbox's notified calls
    // fail with ENOSYS from then on.
    ~basic_supervisor() {
        const char byte = 1;
        (void)::ctr::detail::sys::write(stop_write_.get(), &byte, 1);
        if (thread_.joinable()) thread_.join();
    }

    // Calls answered so far.
    std::uint64_t answered() const noexcept { return answered_.load(std::memory_order_relaxed); }
    // The first exception `decide` threw, if any.
    template <class = void>
    std::exception_ptr failure() const {
        std::lock_guard lock(failure_mutex_);
        return failure_;
    }

private:
    template <class = void>
    void serve() {
        for (;;) {
            pollfd p[2] = {{listener_.fd(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
            const long ready = ::ctr::detail::sys::ppoll(p, 2, nullptr);
            if (ready == -EINTR) continue;
            if (ready < 0 || p[1].revents != 0) return;
            if ((p[0].revents & POLLIN) == 0) return;  // no process uses the filter any more
            std::optional<notification> n;
            try {
                n = listener_.receive(std::chrono::milliseconds(0));
            } catch (...) {
                keep_failure(std::current_exception());
                return;
            }
            if (!n) continue;
            response how = response::fail_with(EPERM);
            try {
                how = decide_(*n, listener_);
            } catch (...) {
                keep_failure(std::current_exception());
                how = response::fail_with(EPERM);
            }
            // Counted before the answer, which lets the caller go on: whoever
            // sees the call's effect sees it counted.
            answered_.fetch_add(1, std::memory_order_relaxed);
            try {
                if (!listener_.answer(*n, how)) answered_.fetch_sub(1, std::memory_order_relaxed);
            } catch (...) {
                keep_failure(std::current_exception());
                // The answer itself was refused (a bad errno, an fd that is
                // not open): the call must not wait forever.
                try {
                    listener_.answer(*n, response::fail_with(EPERM));
                } catch (...) {
                }
            }
        }
    }
    template <class = void>
    void keep_failure(std::exception_ptr e) {
        std::lock_guard lock(failure_mutex_);
        if (!failure_) failure_ = std::move(e);
    }

    listener listener_;
    decision decide_;
    unique_fd stop_read_, stop_write_;
    std::atomic<std::uint64_t> answered_{0};
    mutable std::mutex failure_mutex_;
    std::exception_ptr failure_;
    std::thread thread_;
};
using supervisor = basic_supervisor<void>;

}  // namespace ctr::seccomp
