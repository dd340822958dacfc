#pragma once
// ns::scope: the calling thread inside other namespaces for a while.

#include <ctr/detail/child_program.hpp>
#include <ctr/detail/file.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/ns.hpp>
#include <ctr/unique_fd.hpp>

#include <sys/mount.h>

#include <string>
#include <utility>
#include <vector>

namespace ctr::ns {

namespace detail {

// Why a kind cannot be entered by one thread and left again, or nullptr.
constexpr const char* why_not_per_thread(kind k) noexcept {
    switch (k) {
        case kind::pid:
            return "a pid namespace applies only to children: use process::spawn with ns::pid";
        case kind::time:
            return "a time namespace applies only to children: use process::spawn with ns::time";
        case kind::user:
            return "a thread cannot enter a user namespace and come back (the kernel refuses it in a "
                   "multithreaded process, and a process cannot return to a parent user namespace): use "
                   "process::spawn with ns::user";
        default:
            return nullptr;
    }
}

template <class = void>
inline std::string thread_ns_path(kind k) { return "/proc/thread-self/ns/" + std::string(name(k)); }

}  // namespace detail

// Moves the calling thread into new or existing namespaces and, when it ends,
// back into the ones it came from (it holds their fds). Other threads keep
// their own namespaces throughout. For example a test runs a server and its
// client in a fresh network namespace on one thread while the others carry
// on in the host's.
//
// Mount namespaces are per fs_struct, which threads share: entering one
// first gives the thread an fs_struct of its own (unshare(CLONE_FS)), which
// stays after the scope ends. The working directory is restored.
//
// Not movable: it belongs to the thread that made it.
template <class>
class [[nodiscard]] basic_scope {
public:
    // Fresh namespaces of these kinds (not pid, time or user: see
    // detail::why_not_per_thread). A new network namespace has lo up; a new
    // mount namespace starts with every mount private, so nothing mounted in
    // it reaches the original.
    template <class = void>
    explicit basic_scope(kinds fresh) {
        check(fresh);
        save(fresh);
        check_can_return();
        try {
            if (fresh.has(mount)) {
                unshare_fs();
                call(ctr::detail::sys::unshare(CLONE_NEWNS), step::create_namespaces, "mnt");
                call(ctr::detail::sys::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr),
                     step::set_propagation, "/");
            }
            const kinds rest = fresh.without(mount);
            if (!rest.empty()) call(ctr::detail::sys::unshare(rest.flags()), step::create_namespaces, names(rest));
            if (fresh.has(network))
                call(ctr::detail::child_bring_up_loopback(), step::bring_up_loopback, "lo");
        } catch (...) {
            restore();
            throw;
        }
    }

    // Existing namespaces, each a path, fd or pidfd (see ns::existing).
    template <class = void>
    explicit basic_scope(const std::vector<existing>& targets) {
        kinds all_kinds;
        for (const auto& t : targets) all_kinds = all_kinds | t.which;
        check(all_kinds);
        save(all_kinds);
        check_can_return();
        try {
            for (const auto& t : targets) {
                if (t.which == mount) unshare_fs();
                unique_fd opened;
                int fd = -1;
                std::string what;
                if (const auto* path = std::get_if<std::string>(&t.source)) {
                    const long r = ctr::detail::sys::openat(AT_FDCWD, path->c_str(), O_RDONLY | O_CLOEXEC);
                    call(r, step::join_namespace, *path);
                    opened.reset(static_cast<int>(r));
                    fd = opened.get();
                    what = *path;
                } else {
                    fd = std::get<int>(t.source);
                    what = std::string(name(t.which)) + " namespace fd " + std::to_string(fd);
                }
                call(ctr::detail::sys::setns(fd, static_cast<int>(t.which)), step::join_namespace, what);
            }
        } catch (...) {
            restore();
            throw;
        }
    }

    basic_scope(const basic_scope&) = delete;
    basic_scope& operator=(const basic_scope&) = delete;
    basic_scope(basic_scope&&) = delete;
    basic_scope& operator=(basic_scope&&) = delete;

    // Back where the thread started; best effort.
    ~basic_scope() { restore(); }

    // Back where the thread started, reporting what failed.
    template <class = void>
    void leave() {
        if (saved_.empty()) return;
        const int failed = restore();
        if (failed != 0) throw error(step::leave_namespace, failed, left_failed_path_);
    }

private:
    template <class = void>
    static void check(kinds k) {
        for (kind each : every_kind)
            if (k.has(each))
                if (const char* why = detail::why_not_per_thread(each))
                    throw error(step::prepare, EINVAL, std::string(name(each)), why);
    }

    template <class = void>
    static std::string names(kinds k) {
        std::string text;
        for (kind each : every_kind)
            if (k.has(each)) text += (text.empty() ? "" : ",") + std::string(name(each));
        return text;
    }

    template <class = void>
    static void call(long result, step s, const std::string& path) {
        if (result < 0) throw error(s, static_cast<int>(-result), path);
    }

    template <class = void>
    void save(kinds k) {
        for (kind each : every_kind) {
            if (!k.has(each)) continue;
            const std::string path = detail::thread_ns_path(each);
            const long fd = ctr::detail::sys::openat(AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                saved_.clear();
                throw error(step::join_namespace, static_cast<int>(-fd), path, "cannot hold the current namespace");
            }
            saved_.emplace_back(each, unique_fd(static_cast<int>(fd)));
        }
        if (k.has(mount)) {
            const long cwd = ctr::detail::sys::openat(AT_FDCWD, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (cwd >= 0) cwd_.reset(static_cast<int>(cwd));
        }
    }

    // Entering is only worth it if the thread can come back: setns into the
    // namespace it is in now needs the same rights as coming back, and a
    // rootless caller lacks them for namespaces its user namespace does not
    // own. Asked before anything changes.
    template <class = void>
    void check_can_return() {
        for (auto& [which, fd] : saved_) {
            if (which == mount) continue;  // checked by the real setns below; it would move the cwd
            if (const long r = ctr::detail::sys::setns(fd.get(), static_cast<int>(which)); r < 0) {
                const std::string path = detail::thread_ns_path(which);
                saved_.clear();
                throw error(step::join_namespace, static_cast<int>(-r), path,
                            r == -EPERM ? "could not come back to this namespace: it belongs to a user namespace "
                                          "where this process lacks CAP_SYS_ADMIN (a rootless caller); use "
                                          "process::spawn instead"
                                        : "could not come back to this namespace");
            }
        }
    }

    template <class = void>
    void unshare_fs() {
        if (fs_unshared_) return;
        call(ctr::detail::sys::unshare(CLONE_FS), step::create_namespaces, "fs");
        fs_unshared_ = true;
    }

    // Returns 0 or the errno of the first failure.
    template <class = void>
    int restore() noexcept {
        int first_failure = 0;
        for (auto& [which, fd] : saved_) {
            if (const long r = ctr::detail::sys::setns(fd.get(), static_cast<int>(which)); r < 0 && !first_failure) {
                first_failure = static_cast<int>(-r);
                left_failed_path_ = detail::thread_ns_path(which);
            }
        }
        // Entering the old mount namespace put the thread at its root.
        if (cwd_) ctr::detail::sys::fchdir(cwd_.get());
        saved_.clear();
        cwd_.reset();
        return first_failure;
    }

    std::vector<std::pair<kind, unique_fd>> saved_;
    unique_fd cwd_;
    bool fs_unshared_ = false;
    std::string left_failed_path_;
};
using scope = basic_scope<void>;

// The same, with the kinds as template arguments, so that a kind that cannot
// be entered per thread is refused at compile time.
template <kind... Kinds>
class [[nodiscard]] fresh_scope : public scope {
    static_assert(((detail::why_not_per_thread(Kinds) == nullptr) && ...),
                  "pid and time namespaces apply only to children, and a thread cannot leave a user namespace: "
                  "use process::spawn for those");

public:
    fresh_scope() : scope((kinds() | ... | Kinds)) {}
};

}  // namespace ctr::ns
