#pragma once
// Launch layer: what the command runs with. Its argv, environment and the
// files exec tries; its standard streams and passed fds, moved to their
// numbers with every other fd closed at exec.

#include <ctr/detail/launch_plan.hpp>
#include <ctr/spawn_options.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

extern "C" char** environ;

namespace ctr::process::detail {

using namespace ::ctr::detail;

inline constexpr std::string_view default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

template <class = void>
inline std::string_view env_key(std::string_view entry) { return entry.substr(0, entry.find('=')); }

template <class = void>
inline std::vector<std::string> build_environment(const environment& env) {
    for (const auto& [key, value] : env.set)
        if (key.empty() || key.find('=') != std::string::npos)
            throw error(step::prepare, EINVAL, key, "environment variable names must be non-empty and contain no '='");
    const auto replaced = [&](std::string_view key) {
        for (const auto& name : env.unset)
            if (name == key) return true;
        for (const auto& entry : env.set)
            if (entry.first == key) return true;
        return false;
    };
    std::vector<std::string> entries;
    if (env.inherit)
        for (char** entry = environ; entry && *entry; ++entry)
            if (!replaced(env_key(*entry))) entries.emplace_back(*entry);
    for (const auto& [key, value] : env.set) entries.push_back(key + "=" + value);
    return entries;
}

// The files exec tries, in order: the name itself when it has a '/', else
// each PATH directory of the child's environment.
template <class = void>
inline std::vector<std::string> exec_candidates(const std::string& program, const std::vector<std::string>& env) {
    if (program.find('/') != std::string::npos) return {program};
    std::string_view path = default_path;
    for (const auto& entry : env)
        if (env_key(entry) == "PATH") path = std::string_view(entry).substr(5);
    std::vector<std::string> candidates;
    while (true) {
        const auto colon = path.find(':');
        std::string directory{path.substr(0, colon)};
        if (directory.empty()) directory = ".";  // an empty PATH element means the working directory
        candidates.push_back(directory + "/" + program);
        if (colon == std::string_view::npos) break;
        path.remove_prefix(colon + 1);
    }
    return candidates;
}

// argv, environment and exec candidates; the exec step itself.
template <class = void>
inline void plan_command(launch_plan& plan, std::vector<std::string> argv, const options& opts) {
    if (argv.empty()) throw error(step::prepare, EINVAL, {}, "argv is empty");
    // Zero means "none" for the timeout; a negative one is a mistake, not a
    // wish to be killed at once (nor, for the grace, to skip SIGTERM).
    if (opts.timeout.count() < 0)
        throw error(step::prepare, EINVAL, "timeout", std::to_string(opts.timeout.count()) + " ms is negative (0: none)");
    if (opts.kill_grace.count() < 0)
        throw error(step::prepare, EINVAL, "kill_grace", std::to_string(opts.kill_grace.count()) + " ms is negative");
    for (const auto& arg : argv)
        if (arg.find('\0') != std::string::npos) throw error(step::prepare, EINVAL, arg, "argument contains a NUL byte");
    plan.argv_storage = std::move(argv);
    plan.env_storage = build_environment(opts.env);
    const std::string& program = opts.executable.empty() ? plan.argv_storage.front() : opts.executable;
    if (program.empty()) throw error(step::prepare, ENOENT, {}, "the program name is empty");
    plan.candidate_storage = exec_candidates(program, plan.env_storage);

    for (auto& s : plan.argv_storage) plan.argv.push_back(s.data());
    plan.argv.push_back(nullptr);
    for (auto& s : plan.env_storage) plan.envp.push_back(s.data());
    plan.envp.push_back(nullptr);
    for (auto& s : plan.candidate_storage) plan.candidates.push_back(s.c_str());
    plan.candidates.push_back(nullptr);

    make_pipe(plan.report_read, plan.report_write);
    plan.add(launch_phase::signals, {.code = child_op_code::reset_signals, .step = step::reset_signals});
    plan.add(launch_phase::restore_signal_mask,
             {.code = child_op_code::restore_signal_mask, .step = step::restore_signal_mask});
    plan.add(launch_phase::exec, {.code = child_op_code::exec, .step = step::exec, .data = plan.candidates.data()},
             program);
}

// Resolves one standard stream to the fd the child gets (or -1 to keep the
// parent's own).
template <class = void>
inline int prepare_stream(launch_plan& plan, const stdio& spec, int target) {
    const bool input = target == 0;
    switch (spec.how) {
        case stdio::kind::inherit:
            return -1;
        case stdio::kind::null:
            plan.child_ends.push_back(open_checked("/dev/null", input ? O_RDONLY : O_WRONLY, 0, step::open_stdio));
            return plan.child_ends.back().get();
        case stdio::kind::file: {
            const int flags = spec.flags >= 0 ? spec.flags : (input ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC);
            plan.child_ends.push_back(open_checked(spec.path.c_str(), flags, spec.mode, step::open_stdio));
            return plan.child_ends.back().get();
        }
        case stdio::kind::fd:
            if (!fd_is_open(spec.fd)) throw error(step::map_fds, EBADF, fd_name(spec.fd), "stdio fd is not open");
            return spec.fd;
        case stdio::kind::pipe:
        case stdio::kind::capture: {
            unique_fd read_end, write_end;
            make_pipe(read_end, write_end);
            unique_fd& parent_end = target == 0 ? plan.parent_in : target == 1 ? plan.parent_out : plan.parent_err;
            parent_end = input ? std::move(write_end) : std::move(read_end);
            plan.child_ends.push_back(input ? std::move(read_end) : std::move(write_end));
            if (spec.how == stdio::kind::capture) (target == 1 ? plan.capture_out : plan.capture_err) = true;
            return plan.child_ends.back().get();
        }
    }
    return -1;
}

// Moves every source fd to its target number in the child and marks every
// other fd close-on-exec. Sources first go above the highest target, so no
// dup3 can overwrite a source that is still needed.
template <class = void>
inline void plan_fd_mapping(launch_plan& plan, const std::vector<fd_mapping>& mappings,
                            const bool inherited_stdio[3], int start_gate) {
    int lowest_free = 3;
    for (const auto& m : mappings) lowest_free = std::max(lowest_free, m.target + 1);
    plan.first_unmapped_fd = lowest_free;

    // The error channel must survive the moves: put it above every target.
    if (plan.report_write.get() < lowest_free) {
        const long moved = sys::fcntl(plan.report_write.get(), F_DUPFD_CLOEXEC, lowest_free);
        if (moved < 0) throw error(step::create_pipe, static_cast<int>(-moved));
        plan.report_write.reset(static_cast<int>(moved));
    }
    // So must the start gate; the child reads its own copy, close-on-exec.
    if (start_gate >= 0) {
        const long copy = sys::fcntl(start_gate, F_DUPFD_CLOEXEC, lowest_free);
        if (copy < 0) throw error(step::hold_for_start, static_cast<int>(-copy), fd_name(start_gate), "the start gate fd");
        plan.start_gate.reset(static_cast<int>(copy));
    }

    plan.scratch.assign(mappings.size(), -1);
    for (std::size_t i = 0; i < mappings.size(); ++i)
        plan.add(launch_phase::fds,
                 {.code = child_op_code::dup_above, .step = step::map_fds, .a = mappings[i].source,
                  .b = lowest_free, .c = static_cast<long>(i)},
                 fd_name(mappings[i].source));
    for (std::size_t i = 0; i < mappings.size(); ++i)
        plan.add(launch_phase::fds,
                 {.code = child_op_code::dup_to, .step = step::map_fds, .b = mappings[i].target,
                  .c = static_cast<long>(i)},
                 fd_name(mappings[i].target));

    // Close-on-exec for each gap below lowest_free and everything above it.
    std::vector<bool> kept(static_cast<std::size_t>(lowest_free), false);
    for (int fd = 0; fd < 3; ++fd) kept[static_cast<std::size_t>(fd)] = inherited_stdio[fd];
    for (const auto& m : mappings) kept[static_cast<std::size_t>(m.target)] = true;
    for (int fd = 0; fd < lowest_free;) {
        if (kept[static_cast<std::size_t>(fd)]) {
            ++fd;
            continue;
        }
        int last = fd;
        while (last + 1 < lowest_free && !kept[static_cast<std::size_t>(last + 1)]) ++last;
        plan.add(launch_phase::fds, {.code = child_op_code::cloexec_range, .step = step::close_fds, .a = fd, .b = last});
        plan.hold_closes.insert(plan.hold_closes.end(), {static_cast<unsigned>(fd), static_cast<unsigned>(last)});
        fd = last + 1;
    }
    plan.add(launch_phase::fds, {.code = child_op_code::cloexec_range, .step = step::close_fds, .a = lowest_free, .b = -1});
    if (plan.start_gate) {
        // From lowest_free up, around the two fds the held child keeps.
        const auto low = static_cast<unsigned>(std::min(plan.report_write.get(), plan.start_gate.get()));
        const auto high = static_cast<unsigned>(std::max(plan.report_write.get(), plan.start_gate.get()));
        const auto from = static_cast<unsigned>(lowest_free);
        if (low > from) plan.hold_closes.insert(plan.hold_closes.end(), {from, low - 1});
        if (high > low + 1) plan.hold_closes.insert(plan.hold_closes.end(), {low + 1, high - 1});
        plan.hold_closes.insert(plan.hold_closes.end(), {high + 1, ~0U});
    }
}

// Standard streams and passed fds.
template <class = void>
inline void plan_streams(launch_plan& plan, const options& opts) {
    std::vector<fd_mapping> mappings;
    bool inherited_stdio[3] = {false, false, false};
    const stdio* streams[3] = {&opts.std_in, &opts.std_out, &opts.std_err};
    for (int target = 0; target < 3; ++target) {
        const int source = prepare_stream(plan, *streams[target], target);
        if (source < 0) inherited_stdio[target] = true;
        else mappings.push_back({source, target});
    }
    for (const auto& m : opts.fds) {
        if (m.target < 0 || m.target > 65535)
            throw error(step::map_fds, EBADF, fd_name(m.target), "target fd number out of range");
        if (!fd_is_open(m.source)) throw error(step::map_fds, EBADF, fd_name(m.source), "source fd is not open");
        for (const auto& other : mappings)
            if (other.target == m.target)
                throw error(step::map_fds, EINVAL, fd_name(m.target), "two fds are mapped to the same number");
        mappings.push_back(m);
        if (m.target < 3) inherited_stdio[m.target] = false;
    }
    plan_fd_mapping(plan, mappings, inherited_stdio, opts.start_gate);
    if (plan.start_gate) {
        // A held child outlives spawn's frame and the caller's plan (and,
        // for an OCI create, the caller itself): it runs on a copy of the
        // caller's memory, never on a share of it.
        plan.request.memory = memory_mode::copied;
        plan.add(launch_phase::hold,
                 {.code = child_op_code::hold, .step = step::hold_for_start, .a = plan.start_gate.get(),
                  .b = static_cast<long>(plan.hold_closes.size() / 2), .data = plan.hold_closes.data()},
                 fd_name(opts.start_gate));
    }
}

}  // namespace ctr::process::detail
