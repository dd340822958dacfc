#pragma once
// ctr::error: what failed (the step), on which path, and why (the errno).

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace ctr {

// The steps of a launch and of the library's other operations. A failure
// names its step, so a message says "exec '/bin/nope'" rather than a bare
// errno. Later capabilities add their steps here.
enum class step : std::uint16_t {
    none,
    prepare,            // validating options in the parent
    create_pipe,        // the error, sync or stdio pipes
    allocate_stack,     // the child's stack
    clone,              // creating the child
    open_stdio,         // opening a file given for a standard stream
    reset_signals,      // default dispositions in the child
    restore_signal_mask,
    die_with_parent,    // PR_SET_PDEATHSIG
    new_session,        // setsid
    set_umask,
    set_rlimit,
    map_fds,            // moving stdio and passed fds to their numbers
    close_fds,          // closing every other inherited fd
    set_groups,
    set_gid,
    set_uid,
    change_directory,
    exec,
    wait,               // waiting for or reaping the child
    signal,             // sending a signal to the child
    read_output,        // reading captured stdout or stderr
};

inline std::string_view to_string(step s) noexcept {
    switch (s) {
        case step::none: return "none";
        case step::prepare: return "prepare";
        case step::create_pipe: return "create pipe";
        case step::allocate_stack: return "allocate child stack";
        case step::clone: return "clone";
        case step::open_stdio: return "open stdio file";
        case step::reset_signals: return "reset signal dispositions";
        case step::restore_signal_mask: return "restore signal mask";
        case step::die_with_parent: return "set parent-death signal";
        case step::new_session: return "new session";
        case step::set_umask: return "set umask";
        case step::set_rlimit: return "set rlimit";
        case step::map_fds: return "map fds";
        case step::close_fds: return "close inherited fds";
        case step::set_groups: return "set supplementary groups";
        case step::set_gid: return "set gid";
        case step::set_uid: return "set uid";
        case step::change_directory: return "change directory";
        case step::exec: return "exec";
        case step::wait: return "wait";
        case step::signal: return "signal";
        case step::read_output: return "read output";
    }
    return "unknown step";
}

// Every failure ctr reports. what() reads "<step> '<path>': <reason>", e.g.
// "exec '/bin/nope': No such file or directory".
class error : public std::system_error {
public:
    error(ctr::step s, int errno_value, std::string path = {}, std::string_view detail = {})
        : std::system_error(errno_value, std::generic_category(), describe(s, path, detail)),
          step_(s),
          path_(std::move(path)) {}

    ctr::step step() const noexcept { return step_; }
    const std::string& path() const noexcept { return path_; }

private:
    static std::string describe(ctr::step s, const std::string& path, std::string_view detail) {
        std::string text{to_string(s)};
        if (!path.empty()) text.append(" '").append(path).append("'");
        if (!detail.empty()) text.append(" (").append(detail).append(")");
        return text;
    }

    ctr::step step_;
    std::string path_;
};

}  // namespace ctr
