#pragma once
// ctr::seccomp: system call filters, built in the parent and installed in the
// child as one step of the launch.
//
//     auto f = ctr::seccomp::builder{}
//                  .default_action(ctr::seccomp::action::fail_with(EPERM))
//                  .allow({"read", "write", "exit_group"})
//                  .rule("clone", ctr::seccomp::action::allow(),
//                        ctr::seccomp::arg(0).masked(CLONE_NEWUSER) == 0)
//                  .build();
//
// Semantics, in this order:
//   - another ABI (the i386 ABI through int 0x80, or x32 numbers with
//     __X32_SYSCALL_BIT) gets the foreign-ABI action (kill_process unless
//     set), because its numbers mean different calls;
//   - a number with rules tries them in the order they were given; the first
//     whose conditions all hold decides; when none does, the number gets the
//     default action;
//   - a number the system call table knows (detail/syscall_table_x86_64.hpp)
//     and nobody ruled gets the default action;
//   - a number the table does not know (a hole, or a call newer than the
//     table) gets the unknown-call action, ENOSYS unless set: libc then
//     falls back to an older call (clone3 to clone, close_range to a loop),
//     where EPERM would be taken as a real refusal.
// The kernel itself lets two x86-64 numbers through every filter (Linux 6.11
// and 6.16 on): uretprobe (335) and uprobe (336), which only work from the
// kernel's own probe trampolines and end in SIGILL or an error elsewhere.
//
// A filter is compiled once and is immutable; spawn holds it through
// std::shared_ptr<const filter>, so one filter serves any number of launches.
// Installing it needs no_new_privs (or CAP_SYS_ADMIN), which another step of
// the launch sets before it.

#include <ctr/detail/child_program.hpp>
#include <ctr/detail/seccomp_bpf.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/detail/syscall_table_x86_64.hpp>
#include <ctr/error.hpp>

#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ctr::seccomp {

// What the kernel does with a call.
class action {
public:
    enum class kind : std::uint8_t {
        allow,
        fail_with,     // the call returns -1 with this errno, without running
        kill_process,  // the whole process dies of SIGSYS
        kill_thread,   // only the calling thread dies
        trap,          // SIGSYS to the thread; si_syscall names the call
        log,           // allowed, and logged by the audit subsystem
        // SECCOMP_RET_USER_NOTIF: the call waits while a supervisor reads it
        // from the filter's listener fd and answers it (<ctr/seccomp_notify.hpp>).
        // spawn installs such a filter with SECCOMP_FILTER_FLAG_NEW_LISTENER
        // and hands the listener to the caller (child::take_seccomp_listener).
        // Once no supervisor holds the listener, the call fails with ENOSYS.
        notify,
    };

    static constexpr action allow() noexcept { return action{kind::allow, 0}; }
    // errno_value must be in 1..4095; the builder reports anything else.
    static constexpr action fail_with(int errno_value) noexcept { return action{kind::fail_with, errno_value}; }
    static constexpr action kill_process() noexcept { return action{kind::kill_process, 0}; }
    static constexpr action kill_thread() noexcept { return action{kind::kill_thread, 0}; }
    static constexpr action trap() noexcept { return action{kind::trap, 0}; }
    static constexpr action log() noexcept { return action{kind::log, 0}; }
    // Linux 5.0+: the supervisor decides (see kind::notify).
    static constexpr action notify() noexcept { return action{kind::notify, 0}; }

    constexpr kind which() const noexcept { return kind_; }
    constexpr int errno_value() const noexcept { return errno_; }
    constexpr bool valid() const noexcept { return kind_ != kind::fail_with || (errno_ >= 1 && errno_ <= 4095); }

    // The SECCOMP_RET_* value the filter returns.
    constexpr std::uint32_t return_value() const noexcept {
        switch (kind_) {
            case kind::allow: return SECCOMP_RET_ALLOW;
            case kind::fail_with: return SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(errno_) & SECCOMP_RET_DATA);
            case kind::kill_process: return SECCOMP_RET_KILL_PROCESS;
            case kind::kill_thread: return SECCOMP_RET_KILL_THREAD;
            case kind::trap: return SECCOMP_RET_TRAP;
            case kind::log: return SECCOMP_RET_LOG;
            case kind::notify: return SECCOMP_RET_USER_NOTIF;
        }
        return SECCOMP_RET_KILL_PROCESS;
    }

    friend constexpr bool operator==(const action&, const action&) noexcept = default;

private:
    constexpr action(kind k, int errno_value) noexcept : kind_(k), errno_(errno_value) {}
    kind kind_;
    int errno_;
};

// "allow", "fail with EPERM", "fail with errno 22", "kill process", ...
template <class = void>
inline std::string to_string(action a) {
    switch (a.which()) {
        case action::kind::allow: return "allow";
        case action::kind::kill_process: return "kill process";
        case action::kind::kill_thread: return "kill thread";
        case action::kind::trap: return "trap (SIGSYS)";
        case action::kind::log: return "log and allow";
        case action::kind::notify: return "notify the supervisor";
        case action::kind::fail_with: break;
    }
    switch (a.errno_value()) {
        case EPERM: return "fail with EPERM";
        case ENOSYS: return "fail with ENOSYS";
        case EACCES: return "fail with EACCES";
        case EINVAL: return "fail with EINVAL";
        default: return "fail with errno " + std::to_string(a.errno_value());
    }
}

// How a condition compares an argument. Comparisons are unsigned and 64 bits
// wide, as the kernel passes the registers. An argument the kernel reads as
// 32 bits (an int, an unsigned int: a socket family, an ioctl request) may
// arrive with anything in the upper half, which the kernel ignores but a
// 64-bit comparison would not: compare such arguments through
// masked(0xffffffff).
enum class compare : std::uint8_t {
    equal,             // arg == value
    not_equal,         // arg != value
    masked_equal,      // (arg & mask) == value
    masked_not_equal,  // (arg & mask) != value
    greater,           // arg > value
    greater_equal,     // arg >= value
    less,              // arg < value
    less_equal,        // arg <= value
    in_range,          // value <= arg <= upper
};

// One condition on one argument. Plain data: seccomp::arg(i) writes it
// readably, designated initializers work too.
struct condition {
    unsigned index = 0;  // which argument, 0..5
    compare op = compare::equal;
    std::uint64_t value = 0;
    std::uint64_t mask = ~std::uint64_t{0};  // masked_equal, masked_not_equal
    std::uint64_t upper = 0;                 // in_range

    friend constexpr bool operator==(const condition&, const condition&) noexcept = default;
};

// "arg0 & 0x7e020000 == 0x0", "arg1 in 0x10..0x20", ...
template <class = void>
inline std::string to_string(const condition& c) {
    const auto hex = [](std::uint64_t v) {
        char text[24];
        std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(v));
        return std::string(text);
    };
    const std::string a = "arg" + std::to_string(c.index);
    switch (c.op) {
        case compare::equal: return a + " == " + hex(c.value);
        case compare::not_equal: return a + " != " + hex(c.value);
        case compare::masked_equal: return a + " & " + hex(c.mask) + " == " + hex(c.value);
        case compare::masked_not_equal: return a + " & " + hex(c.mask) + " != " + hex(c.value);
        case compare::greater: return a + " > " + hex(c.value);
        case compare::greater_equal: return a + " >= " + hex(c.value);
        case compare::less: return a + " < " + hex(c.value);
        case compare::less_equal: return a + " <= " + hex(c.value);
        case compare::in_range: return a + " in " + hex(c.value) + ".." + hex(c.upper);
    }
    return a + " ?";
}

// An argument with its mask applied: arg(1).masked(O_ACCMODE) == O_RDONLY.
class masked_arg {
public:
    constexpr masked_arg(unsigned index, std::uint64_t mask) noexcept : index_(index), mask_(mask) {}
    constexpr condition operator==(std::uint64_t value) const noexcept {
        return {index_, compare::masked_equal, value, mask_, 0};
    }
    constexpr condition operator!=(std::uint64_t value) const noexcept {
        return {index_, compare::masked_not_equal, value, mask_, 0};
    }

private:
    unsigned index_;
    std::uint64_t mask_;
};

// Argument i of the call (0..5), to write conditions: arg(0) == 3,
// arg(2) >= 4096, arg(0).masked(CLONE_NEWUSER) == 0, arg(1).in_range(1, 9).
class arg {
public:
    constexpr explicit arg(unsigned index) noexcept : index_(index) {}
    constexpr condition operator==(std::uint64_t v) const noexcept { return {index_, compare::equal, v}; }
    constexpr condition operator!=(std::uint64_t v) const noexcept { return {index_, compare::not_equal, v}; }
    constexpr condition operator>(std::uint64_t v) const noexcept { return {index_, compare::greater, v}; }
    constexpr condition operator>=(std::uint64_t v) const noexcept { return {index_, compare::greater_equal, v}; }
    constexpr condition operator<(std::uint64_t v) const noexcept { return {index_, compare::less, v}; }
    constexpr condition operator<=(std::uint64_t v) const noexcept { return {index_, compare::less_equal, v}; }
    constexpr masked_arg masked(std::uint64_t mask) const noexcept { return {index_, mask}; }
    // low <= arg <= high, both ends included.
    constexpr condition in_range(std::uint64_t low, std::uint64_t high) const noexcept {
        return {index_, compare::in_range, low, ~std::uint64_t{0}, high};
    }

private:
    unsigned index_;
};

class builder;

// A compiled program: immutable, cheap to share (hold it in a
// std::shared_ptr<const filter>). program() points into the object, so it
// stays valid for as long as the filter lives where it is.
class filter {
public:
    filter(const filter& other) : code_(other.code_), install_flags_(other.install_flags_), notify_(other.notify_) {
        point_program();
    }
    filter(filter&& other) noexcept
        : code_(std::move(other.code_)), install_flags_(other.install_flags_), notify_(std::move(other.notify_)) {
        point_program();
        other.point_program();
    }
    filter& operator=(const filter&) = delete;
    filter& operator=(filter&&) = delete;
    ~filter() = default;

    // The number of BPF instructions (at most 4096).
    template <class = void>
    std::size_t size() const noexcept { return code_.size(); }
    template <class = void>
    std::span<const sock_filter> instructions() const noexcept { return {code_.data(), code_.size()}; }
    // What seccomp(SECCOMP_SET_MODE_FILTER) takes (by address).
    template <class = void>
    const sock_fprog& program() const noexcept { return program_; }
    // The program as text, one instruction a line.
    template <class = void>
    std::string disassemble() const { return detail::bpf::disassemble(std::span<const sock_filter>(code_.data(), code_.size())); }
    // The SECCOMP_FILTER_FLAG_* bits the launch installs it with
    // (builder::install_flags); 0 unless set.
    template <class = void>
    std::uint32_t install_flags() const noexcept { return install_flags_; }

    // Whether any call may get action::notify(): then the launch installs
    // the filter with a listener and hands it to the caller.
    template <class = void>
    bool notifies() const noexcept { return notify_.by_default || !notify_.by_rule.empty(); }
    // Whether a call of this x86-64 number may get action::notify(), for
    // some arguments.
    template <class = void>
    bool may_notify(int number) const noexcept {
        for (const int n : notify_.by_rule)
            if (n == number) return true;
        for (const int n : notify_.never)
            if (n == number) return false;
        return notify_.by_default;
    }

private:
    friend class builder;
    struct notify_map {
        std::vector<int> by_rule;  // numbers with a rule that notifies
        std::vector<int> never;    // numbers that a rule without conditions decides otherwise
        bool by_default = false;   // the default or unknown-call action notifies
    };
    filter(std::vector<sock_filter> code, std::uint32_t flags, notify_map notify)
        : code_(std::move(code)), install_flags_(flags), notify_(std::move(notify)) {
        point_program();
    }
    template <class = void>
    void point_program() noexcept {
        program_.len = static_cast<unsigned short>(code_.size());
        program_.filter = code_.data();
    }

    std::vector<sock_filter> code_;
    std::uint32_t install_flags_ = 0;
    notify_map notify_;
    sock_fprog program_{};
};

// Builds a filter. Every setter returns *this and keeps the first error
// (an unknown name, an errno out of range, a rule that can never run), which
// build() then throws, so a chain of calls needs no checks in between.
class builder {
public:
    // For a known call without a matching rule. Default: kill_process.
    template <class = void>
    builder& default_action(action a) { return set(default_, a, "default action"); }
    // For the i386 ABI (int 0x80) and x32 numbers. Default: kill_process.
    template <class = void>
    builder& foreign_abi_action(action a) { return set(foreign_, a, "foreign-ABI action"); }
    // For numbers the table does not know. Default: fail_with(ENOSYS).
    template <class = void>
    builder& unknown_syscall_action(action a) { return set(unknown_, a, "unknown-call action"); }

    // SECCOMP_FILTER_FLAG_* bits to install the filter with. Two are taken:
    // LOG (the kernel logs every action but allow, where it otherwise logs
    // only kills) and SPEC_ALLOW (the filter does not switch on the
    // speculative store bypass mitigation, a weakening some profiles ask
    // for). The others change what the install call returns (TSYNC,
    // NEW_LISTENER: a thread id or a listener fd the launch has no use for)
    // and are reported.
    template <class = void>
    builder& install_flags(std::uint32_t flags) {
        constexpr std::uint32_t taken = SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW;
        if ((flags & ~taken) != 0)
            return fail_build(EINVAL, "install flags",
                              "only SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW are supported");
        install_flags_ = flags;
        return *this;
    }

    template <class = void>
    builder& allow(std::string_view name) { return rule(name, action::allow()); }
    template <class = void>
    builder& allow(int number) { return rule(number, action::allow()); }
    template <class = void>
    builder& allow(std::initializer_list<std::string_view> names) {
        for (std::string_view name : names) allow(name);
        return *this;
    }
    template <class = void>
    builder& fail(std::string_view name, int errno_value) { return rule(name, action::fail_with(errno_value)); }
    template <class = void>
    builder& fail(int number, int errno_value) { return rule(number, action::fail_with(errno_value)); }
    template <class = void>
    builder& fail(std::initializer_list<std::string_view> names, int errno_value) {
        for (std::string_view name : names) fail(name, errno_value);
        return *this;
    }

    // `what` when every condition holds (none: always). Rules of one call are
    // tried in the order given; the default action follows the last.
    template <class = void>
    builder& rule(std::string_view name, action what, std::span<const condition> all_of) {
        const int number = detail::syscall_table_x86_64::name_to_number(name);
        if (number < 0)
            return fail_build(EINVAL, name,
                              "unknown system call name; the table (<asm/unistd_64.h>, x86-64) has no such call, "
                              "a call newer than the table can be named by number");
        return add(number, name, what, all_of);
    }
    template <class = void>
    builder& rule(int number, action what, std::span<const condition> all_of) {
        if (number < 0 || static_cast<std::uint32_t>(number) >= foreign_nr_from)
            return fail_build(EINVAL, std::to_string(number), "system call number outside 0..0x3fffffff");
        const std::string_view known = detail::syscall_table_x86_64::number_to_name(number);
        const std::string unknown = known.empty() ? std::to_string(number) : std::string();
        return add(number, known.empty() ? std::string_view(unknown) : known, what, all_of);
    }
    template <typename... Conditions>
        requires(std::same_as<Conditions, condition> && ...)
    builder& rule(std::string_view name, action what, const Conditions&... all_of) {
        const std::array<condition, sizeof...(Conditions)> list{all_of...};
        return rule(name, what, std::span<const condition>(list));
    }
    template <typename... Conditions>
        requires(std::same_as<Conditions, condition> && ...)
    builder& rule(int number, action what, const Conditions&... all_of) {
        const std::array<condition, sizeof...(Conditions)> list{all_of...};
        return rule(number, what, std::span<const condition>(list));
    }

    // The first error so far, if any.
    template <class = void>
    const std::optional<ctr::error>& first_error() const noexcept { return error_; }

    // Compiles. Throws ctr::error(step::compile_seccomp) with the first error
    // the setters met, or E2BIG when the program exceeds 4096 instructions.
    template <class = void>
    filter build() const {
        if (error_) throw *error_;
        detail::bpf::program_spec spec;
        spec.arch = AUDIT_ARCH_X86_64;
        spec.foreign_nr_from = foreign_nr_from;
        spec.foreign_action = foreign_.return_value();
        spec.default_action = default_.return_value();
        spec.unknown_action = unknown_.return_value();
        spec.known.reserve(detail::syscall_table_x86_64::size);
        for (const auto& entry : detail::syscall_table_x86_64::by_number)
            spec.known.push_back(static_cast<std::uint32_t>(entry.number));
        spec.rules.reserve(rules_.size());
        for (const pending_rule& r : rules_) {
            detail::bpf::rule out{static_cast<std::uint32_t>(r.number), r.what.return_value(), {}};
            out.checks.reserve(r.all_of.size());
            for (const condition& c : r.all_of) out.checks.push_back(to_check(c));
            spec.rules.push_back(std::move(out));
        }
        // What may notify: a number with a notifying rule; any other number
        // when the default does, unless a rule without conditions decides
        // it otherwise.
        filter::notify_map notifying;
        notifying.by_default =
            default_.which() == action::kind::notify || unknown_.which() == action::kind::notify;
        for (const pending_rule& r : rules_)
            if (r.what.which() == action::kind::notify) notifying.by_rule.push_back(r.number);
        for (const auto& [number, what] : decided_)
            if (what.which() != action::kind::notify) notifying.never.push_back(number);
        return filter(detail::bpf::compile(spec), install_flags_, std::move(notifying));
    }
    template <class = void>
    std::shared_ptr<const filter> build_shared() const { return std::make_shared<const filter>(build()); }

private:
    // __X32_SYSCALL_BIT: numbers from here on are another ABI.
    static constexpr std::uint32_t foreign_nr_from = 0x40000000U;

    struct pending_rule {
        int number;
        action what;
        std::vector<condition> all_of;
    };

    template <class = void>
    builder& fail_build(int errno_value, std::string_view subject, std::string_view why) {
        if (!error_) error_.emplace(ctr::step::compile_seccomp, errno_value, std::string(subject), why);
        return *this;
    }

    template <class = void>
    builder& set(action& slot, action a, std::string_view what) {
        if (!a.valid()) return fail_build(EINVAL, what, "errno outside 1..4095");
        slot = a;
        return *this;
    }

    // `name` names the call in error messages.
    template <class = void>
    builder& add(int number, std::string_view name, action what, std::span<const condition> all_of) {
        if (error_) return *this;
        if (!what.valid())
            return fail_build(EINVAL, name, "errno " + std::to_string(what.errno_value()) + " outside 1..4095");
        for (const condition& c : all_of) {
            if (c.index > 5)
                return fail_build(EINVAL, name, "argument index " + std::to_string(c.index) + " is not in 0..5");
            if (c.op > compare::in_range)
                return fail_build(EINVAL, name,
                                  "comparison " + std::to_string(static_cast<unsigned>(c.op)) + " is not a compare");
            const bool masked = c.op == compare::masked_equal || c.op == compare::masked_not_equal;
            if (masked && (c.value & ~c.mask) != 0)
                return fail_build(EINVAL, name, to_string(c) + ": the value has bits outside the mask");
            if (c.op == compare::in_range && c.value > c.upper)
                return fail_build(EINVAL, name, to_string(c) + ": the range is empty");
        }
        // An earlier rule without conditions decides every call of this
        // number: a later rule could never run. The same plain rule twice is
        // harmless (allow lists overlap); a different one is a contradiction.
        if (const auto earlier = decided_.find(number); earlier != decided_.end()) {
            if (all_of.empty() && earlier->second == what) return *this;
            return fail_build(EINVAL, name,
                              "an earlier rule (" + to_string(earlier->second) +
                                  ", no conditions) already decides every call; this one (" + to_string(what) +
                                  ") could never apply");
        }
        if (all_of.empty()) decided_.emplace(number, what);
        rules_.push_back({number, what, std::vector<condition>(all_of.begin(), all_of.end())});
        return *this;
    }

    template <class = void>
    static detail::bpf::arg_check to_check(const condition& c) noexcept {
        using detail::bpf::arg_op;
        switch (c.op) {
            case compare::equal: return {c.index, arg_op::eq, c.value, 0};
            case compare::not_equal: return {c.index, arg_op::ne, c.value, 0};
            case compare::masked_equal: return {c.index, arg_op::masked_eq, c.value, c.mask};
            case compare::masked_not_equal: return {c.index, arg_op::masked_ne, c.value, c.mask};
            case compare::greater: return {c.index, arg_op::gt, c.value, 0};
            case compare::greater_equal: return {c.index, arg_op::ge, c.value, 0};
            case compare::less: return {c.index, arg_op::lt, c.value, 0};
            case compare::less_equal: return {c.index, arg_op::le, c.value, 0};
            case compare::in_range: return {c.index, arg_op::in_range, c.value, c.upper};
        }
        return {c.index, arg_op::eq, c.value, 0};
    }

    action default_ = action::kill_process();
    action foreign_ = action::kill_process();
    action unknown_ = action::fail_with(ENOSYS);
    std::uint32_t install_flags_ = 0;
    std::vector<pending_rule> rules_;
    std::unordered_map<int, action> decided_;  // numbers with a rule without conditions
    std::optional<ctr::error> error_;
};

// One entry of the default profile: a group of calls, what they get, and why.
struct profile_entry {
    std::string_view group;
    // Names as plain C strings: the profile's few hundred names are then
    // plain pointers, where views would be constant-evaluated (their lengths
    // counted) in every translation unit that includes this header.
    std::span<const char* const> syscalls;  // all in the table
    // Calls newer than some tables (and older kernels): ruled when the table
    // knows them; until then they answer ENOSYS like every unknown number.
    std::span<const char* const> newer_syscalls;
    action what;
    std::span<const condition> all_of;  // none: unconditional
    std::string_view why;
};

}  // namespace ctr::seccomp

namespace ctr::detail::seccomp_profile {

using seccomp::action;
using seccomp::compare;
using seccomp::condition;
using seccomp::profile_entry;

// The default profile's data, by group. Every call in the table appears in
// exactly one group (a test holds the table to that), so a regenerated
// table with new calls fails the test until someone decides about them.

// --- allowed ---------------------------------------------------------------
inline constexpr const char* files[] = {
    "open", "openat", "openat2", "creat", "close", "close_range", "stat", "lstat", "fstat", "newfstatat", "statx",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir",
    "fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat", "unlink",
    "unlinkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat",
    "umask", "truncate", "ftruncate", "fallocate", "utime", "utimes", "utimensat", "futimesat", "mknod", "mknodat",
    "statfs", "fstatfs", "chroot"};
inline constexpr const char* files_newer[] = {"fchmodat2", "file_getattr", "file_setattr"};
inline constexpr const char* io[] = {
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "lseek", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "readahead", "fadvise64", "fsync",
    "fdatasync", "sync", "syncfs", "sync_file_range", "flock", "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2"};
inline constexpr const char* io_newer[] = {"cachestat"};
inline constexpr const char* xattrs[] = {
    "setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr",
    "flistxattr", "removexattr", "lremovexattr", "fremovexattr"};
inline constexpr const char* xattrs_newer[] = {"setxattrat", "getxattrat", "listxattrat", "removexattrat"};
inline constexpr const char* file_events[] = {"inotify_init", "inotify_init1", "inotify_add_watch",
                                                   "inotify_rm_watch", "fanotify_mark"};
inline constexpr const char* polling[] = {
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create",
    "timerfd_settime", "timerfd_gettime"};
inline constexpr const char* aio[] = {"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
                                           "io_pgetevents"};
inline constexpr const char* memory[] = {
    "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "mincore", "msync", "mlock", "mlock2", "munlock",
    "mlockall", "munlockall", "remap_file_pages", "membarrier", "memfd_create", "memfd_secret", "pkey_mprotect",
    "pkey_alloc", "pkey_free"};
inline constexpr const char* memory_newer[] = {"map_shadow_stack", "mseal"};
inline constexpr const char* processes[] = {
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "getpid", "getppid",
    "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "set_tid_address", "prctl", "arch_prctl",
    "prlimit64", "getrlimit", "setrlimit", "getrusage", "getpriority", "setpriority", "ioprio_get", "ioprio_set",
    "times", "pidfd_open", "process_mrelease"};
inline constexpr const char* threads[] = {
    "futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq", "set_thread_area", "get_thread_area",
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_getattr", "sched_setattr", "getcpu"};
inline constexpr const char* threads_newer[] = {"futex_wake", "futex_wait", "futex_requeue"};
inline constexpr const char* signals[] = {
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "pause", "kill", "tkill", "tgkill", "pidfd_send_signal",
    "restart_syscall", "alarm", "getitimer", "setitimer"};
inline constexpr const char* time_reading[] = {
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "timer_create",
    "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete"};
inline constexpr const char* credentials[] = {
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid",
    "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups", "capget", "capset"};
inline constexpr const char* sockets[] = {
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername", "getsockopt",
    "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown"};
inline constexpr const char* ipc[] = {
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd", "msgrcv",
    "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr"};
inline constexpr const char* system_info[] = {"uname", "sysinfo", "getrandom"};
inline constexpr const char* self_confinement[] = {"seccomp", "landlock_create_ruleset", "landlock_add_rule",
                                                        "landlock_restrict_self"};

// --- allowed with conditions -------------------------------------------------
inline constexpr const char* clone_call[] = {"clone"};
inline constexpr std::uint64_t namespace_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                                 CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
inline constexpr condition clone_without_namespaces[] = {{0, compare::masked_equal, 0, namespace_flags, 0}};
inline constexpr const char* personality_call[] = {"personality"};
// The low 32 bits (the kernel takes an unsigned int) hold nothing but
// PER_LINUX32 and UNAME26: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26.
inline constexpr condition harmless_persona[] = {
    {0, compare::masked_equal, 0, 0xffffffffULL & ~(std::uint64_t{PER_LINUX32} | std::uint64_t{UNAME26}), 0}};
inline constexpr condition persona_query[] = {{0, compare::masked_equal, 0xffffffffULL, 0xffffffffULL, 0}};
inline constexpr const char* socket_call[] = {"socket"};
inline constexpr condition not_vsock[] = {{0, compare::masked_not_equal, AF_VSOCK, 0xffffffffULL, 0}};
inline constexpr const char* ioctl_call[] = {"ioctl"};
inline constexpr condition no_terminal_injection[] = {
    {1, compare::masked_not_equal, TIOCSTI, 0xffffffffULL, 0},
    {1, compare::masked_not_equal, TIOCLINUX, 0xffffffffULL, 0}};

// --- ENOSYS ---------------------------------------------------------------------
inline constexpr const char* clone3_call[] = {"clone3"};

// --- refused (EPERM) -------------------------------------------------------------
inline constexpr const char* namespaces[] = {"unshare", "setns"};
inline constexpr const char* mounts[] = {"mount", "umount2", "pivot_root", "open_tree", "move_mount",
                                              "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"};
inline constexpr const char* mounts_newer[] = {"open_tree_attr", "statmount", "listmount"};
inline constexpr const char* modules[] = {"init_module", "finit_module", "delete_module"};
inline constexpr const char* kexec_reboot[] = {"kexec_load", "kexec_file_load", "reboot"};
inline constexpr const char* bpf_perf[] = {"bpf", "perf_event_open"};
inline constexpr const char* userfault[] = {"userfaultfd"};
inline constexpr const char* keyrings[] = {"add_key", "request_key", "keyctl"};
inline constexpr const char* clock_setting[] = {"settimeofday", "clock_settime", "clock_adjtime", "adjtimex"};
inline constexpr const char* file_handles[] = {"open_by_handle_at", "name_to_handle_at"};
inline constexpr const char* swap_accounting[] = {"swapon", "swapoff", "acct"};
inline constexpr const char* hardware_access[] = {"iopl", "ioperm", "modify_ldt"};
inline constexpr const char* io_uring[] = {"io_uring_setup", "io_uring_enter", "io_uring_register"};
inline constexpr const char* other_processes[] = {"ptrace", "process_vm_readv", "process_vm_writev",
                                                       "pidfd_getfd", "kcmp", "process_madvise"};
inline constexpr const char* host_names[] = {"sethostname", "setdomainname"};
inline constexpr const char* kernel_log_tty[] = {"syslog", "vhangup"};
inline constexpr const char* numa[] = {"mbind", "set_mempolicy", "get_mempolicy", "migrate_pages",
                                            "move_pages", "set_mempolicy_home_node"};
inline constexpr const char* whole_fs_watch[] = {"fanotify_init"};
inline constexpr const char* quotas[] = {"quotactl", "quotactl_fd"};
inline constexpr const char* lsm_attributes_newer[] = {"lsm_get_self_attr", "lsm_set_self_attr",
                                                            "lsm_list_modules"};
inline constexpr const char* obsolete[] = {
    "uselib", "_sysctl", "ustat", "sysfs", "create_module", "get_kernel_syms", "query_module", "nfsservctl",
    "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "vserver", "lookup_dcookie", "epoll_ctl_old",
    "epoll_wait_old"};

inline constexpr action allowed = action::allow();
inline constexpr action refused = action::fail_with(EPERM);

// Conditional entries come before any plain entry of the same call, since
// rules are tried in order.
// A span over a whole array, made from its first element and its size: the
// span's array constructor would be a constrained template of its own for
// each length, instantiated in every includer's compile.
template <class T, std::size_t N>
constexpr std::span<const T> all(const T (&items)[N]) noexcept {
    return std::span<const T>(&items[0], N);
}

inline constexpr profile_entry default_entries[] = {
    {"files and directories", all(files), all(files_newer), allowed, {},
     "The ordinary file interface. The kernel's permission checks, the mount namespace and Landlock still "
     "decide what is reachable; device nodes (mknod) need CAP_MKNOD, chroot needs CAP_SYS_CHROOT and only "
     "narrows the view."},
    {"reading, writing, file descriptors", all(io), all(io_newer), allowed, {},
     "Every program reads and writes; pipes and descriptor duplication are how shells connect commands."},
    {"extended attributes", all(xattrs), all(xattrs_newer), allowed, {},
     "Per-file metadata (ACLs, security labels, user.* attributes), checked by the kernel like the file itself."},
    {"file change notification", all(file_events), {}, allowed, {},
     "inotify watches paths the process can already read; build tools and servers watch their files. "
     "fanotify_mark is harmless without fanotify_init, which is refused."},
    {"polling and event descriptors", all(polling), {}, allowed, {},
     "Event loops of servers and runtimes (epoll, poll, select, eventfd, signalfd, timerfd)."},
    {"Linux AIO", all(aio), {}, allowed, {},
     "The older asynchronous I/O interface that databases use; bounded by aio-max-nr. io_uring is refused."},
    {"memory", all(memory), all(memory_newer), allowed, {},
     "Allocation, mappings and protection of the process's own memory; locking is bounded by RLIMIT_MEMLOCK."},
    {"processes", all(processes), {}, allowed, {},
     "fork, exec and wait are what shells and compilers do; the rest reads or adjusts the process itself, "
     "within its limits and capabilities."},
    {"threads and scheduling", all(threads), all(threads_newer), allowed, {},
     "glibc threads need futex, robust lists, rseq and TLS setup; scheduling changes beyond the process's own "
     "rights still need CAP_SYS_NICE."},
    {"signals and timers", all(signals), {}, allowed, {},
     "Signal handling, and signals to processes the kernel lets this one signal."},
    {"reading the time", all(time_reading), {}, allowed, {},
     "Reading clocks, sleeping and per-process timers; setting the clocks is refused below."},
    {"user and group ids, capabilities", all(credentials), {}, allowed, {},
     "Changing ids and capabilities needs the capabilities the kernel checks (CAP_SETUID, CAP_SETGID, "
     "CAP_SETPCAP); with them, dropping privileges is what daemons do."},
    {"sockets", all(sockets), {}, allowed, {},
     "Networking, confined by the network namespace. socket itself is conditional, below."},
    {"System V and POSIX IPC", all(ipc), {}, allowed, {},
     "Shared memory, semaphores and message queues, confined by the IPC namespace."},
    {"system information and randomness", all(system_info), {}, allowed, {},
     "uname and sysinfo read what the UTS namespace and the kernel show; getrandom seeds every TLS library."},
    {"self-confinement", all(self_confinement), {}, allowed, {},
     "A process may always confine itself further: another seccomp filter, or Landlock rules."},

    {"clone without namespace flags", all(clone_call), {}, allowed, all(clone_without_namespaces),
     "fork and threads use clone. The CLONE_NEW* flags (NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, "
     "NEWCGROUP) would create namespaces, whose user namespace hands back every capability inside it and "
     "opens the kernel code that needs them: such a clone gets EPERM."},
    {"personality: PER_LINUX, PER_LINUX32, UNAME26", all(personality_call), {}, allowed, all(harmless_persona),
     "These only change what uname reports (setarch i386, old build scripts). The other flags "
     "(ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) weaken the hardening of what the process executes next: EPERM. "
     "The kernel reads the argument as 32 bits, so the upper half is masked off."},
    {"personality: query", all(personality_call), {}, allowed, all(persona_query),
     "personality(0xffffffff) only reads the current persona."},
    {"socket, except AF_VSOCK", all(socket_call), {}, allowed, all(not_vsock),
     "Every address family the network namespace confines. AF_VSOCK talks to the hypervisor host, outside any "
     "network namespace: EPERM. The family is an int, so the upper half is masked off."},
    {"ioctl, except TIOCSTI and TIOCLINUX", all(ioctl_call), {}, allowed, all(no_terminal_injection),
     "Device and terminal control that programs need. TIOCSTI pushes characters into a terminal's input, and "
     "TIOCLINUX can paste into a virtual console: a sandbox that shares a terminal with a shell outside could "
     "type commands there (CVE-2017-5226). The request is an unsigned int, so the upper half is masked off."},

    {"clone3", all(clone3_call), {}, action::fail_with(ENOSYS), {},
     "Its flags are in memory that seccomp cannot read, so its namespace flags cannot be checked. ENOSYS (not "
     "EPERM) makes glibc and other runtimes fall back to clone, whose flags are checked."},

    {"namespaces", all(namespaces), {}, refused, {},
     "Creating or joining namespaces: a user namespace hands back every capability inside it and opens kernel "
     "code written for privileged callers; setns could join namespaces outside the sandbox."},
    {"mounts", all(mounts), all(mounts_newer), refused, {},
     "Changing the mount tree (including the new mount API) could undo the sandbox's file system view; the "
     "sandbox's mounts are made before this filter is installed. statmount and listmount read the mount tree."},
    {"kernel modules", all(modules), {}, refused, {}, "Loading code into the kernel."},
    {"kexec and reboot", all(kexec_reboot), {}, refused, {}, "Replacing or stopping the running kernel."},
    {"BPF and performance events", all(bpf_perf), {}, refused, {},
     "Programs that run in the kernel and hardware counters: a large attack surface and side channels on "
     "other processes."},
    {"userfaultfd", all(userfault), {}, refused, {},
     "Lets a process stall the kernel inside a page fault on its memory, the standard way to widen race "
     "windows in kernel exploits."},
    {"kernel keyrings", all(keyrings), {}, refused, {},
     "Keyrings are not namespaced: a sandbox could read or plant keys of the same user outside it."},
    {"setting the clocks", all(clock_setting), {}, refused, {},
     "The system clocks are not namespaced (time namespaces only offset what is read). adjtimex and "
     "clock_adjtime both read and set, in a structure seccomp cannot inspect. (i386's stime has no x86-64 "
     "number.)"},
    {"file handles", all(file_handles), {}, refused, {},
     "open_by_handle_at opens any file of a mounted file system by its handle, bypassing the sandbox's view of "
     "the tree (the \"shocker\" container escape); name_to_handle_at makes the handles."},
    {"swap and process accounting", all(swap_accounting), {}, refused, {}, "Host-wide administration."},
    {"I/O ports and the LDT", all(hardware_access), {}, refused, {},
     "iopl and ioperm give direct hardware port access; modify_ldt serves only 16-bit code (DOS emulators, "
     "Wine) and has a history of kernel bugs."},
    {"io_uring", all(io_uring), {}, refused, {},
     "Runs operations from kernel workers beside the filter's view, with a long record of privilege "
     "escalations; recent Docker and Podman profiles refuse it too."},
    {"tracing and reading other processes", all(other_processes), {}, refused, {},
     "Without a pid namespace a filtered process could attach to, read or steal descriptors from an "
     "unfiltered process of the same user outside the sandbox and act through it. strace and gdb inside need "
     "a profile that allows these."},
    {"host and domain name", all(host_names), {}, refused, {},
     "These are the host's names unless the sandbox has a UTS namespace."},
    {"kernel log and terminal hangup", all(kernel_log_tty), {}, refused, {},
     "syslog reads the kernel's log (addresses, other containers' messages); vhangup hangs up the terminal."},
    {"NUMA memory policy", all(numa), {}, refused, {},
     "Docker allows mbind, set_mempolicy and get_mempolicy only with CAP_SYS_NICE; migrate_pages and "
     "move_pages act on other processes' memory. Programs using libnuma run without them."},
    {"fanotify_init", all(whole_fs_watch), {}, refused, {},
     "Watches (and can block) access to whole file systems, beyond the sandbox's view."},
    {"disk quotas", all(quotas), {}, refused, {}, "Host-wide administration of file system quotas."},
    {"LSM attributes", {}, all(lsm_attributes_newer), refused, {},
     "Security module attributes of the process; nothing in an ordinary program needs them yet."},
    {"obsolete and unimplemented", all(obsolete), {}, refused, {},
     "Removed from the kernel or never implemented there, or interfaces nothing current uses (uselib, ustat, "
     "sysfs, _sysctl, lookup_dcookie): refused, so their code stays closed where it still exists."},
};

}  // namespace ctr::detail::seccomp_profile

namespace ctr::seccomp {

// The default profile's entries, in order, with their reasons: what
// docs/security.md prints as a table. Every call of the table is in some
// entry; the default action (EPERM) would cover one that was not.
template <class = void>
inline std::span<const profile_entry> default_profile_entries() noexcept {
    return ctr::detail::seccomp_profile::default_entries;
}

// A builder holding the default profile, to add to before building: rules
// for numbers the profile leaves to its actions (calls newer than the table,
// by number), or another default, foreign-ABI or unknown-call action. A call
// the profile already rules keeps its rule: default_profile_builder()
// .allow("ptrace") is an error (ptrace has a plain EPERM rule). For a
// different policy, build one from builder{} and the entries of
// default_profile_entries() you keep.
template <class = void>
inline builder default_profile_builder() {
    builder b;
    b.default_action(action::fail_with(EPERM))
        .foreign_abi_action(action::kill_process())
        .unknown_syscall_action(action::fail_with(ENOSYS));
    for (const profile_entry& entry : default_profile_entries()) {
        for (std::string_view name : entry.syscalls) b.rule(name, entry.what, entry.all_of);
        for (std::string_view name : entry.newer_syscalls)
            if (ctr::detail::syscall_table_x86_64::name_to_number(name) >= 0)
                b.rule(name, entry.what, entry.all_of);
    }
    return b;
}

// The default profile, in the shape of the one Docker and Podman ship: an
// allow list, EPERM for every other known call, ENOSYS for unknown numbers
// and clone3, kill for a foreign ABI. Compiled once, on first use.
template <class = void>
inline std::shared_ptr<const filter> default_profile() {
    static const std::shared_ptr<const filter> profile = default_profile_builder().build_shared();
    return profile;
}

}  // namespace ctr::seccomp

namespace ctr::detail {

// The child's step: installs the filter that op.data points to (a
// const sock_fprog*, &seccomp::filter::program()), with the
// SECCOMP_FILTER_FLAG_* bits in op.a (filter::install_flags()).
// no_new_privs must be set before (another step does), or the kernel answers
// EACCES to a caller without CAP_SYS_ADMIN. Returns 0 or -errno.
// Async-signal-safe: one system call, no allocation.
CTR_CHILD_CODE inline long child_install_seccomp(const child_op& op) noexcept {
    const long r = sys::seccomp(SECCOMP_SET_MODE_FILTER, static_cast<unsigned>(op.a), op.data);
    return r < 0 ? r : 0;
}

// The step for a filter that notifies: installs it with a listener (its fd
// is close-on-exec: the command never holds it) and sends the listener to
// the parent on socket op.b. The send is the one call the launch makes
// under the filter before exec; a filter that refuses it fails the launch
// with *op.data2 (failure_detail) set to 1.
CTR_CHILD_CODE inline long child_install_seccomp_with_listener(const child_op& op) noexcept {
    const long listener = sys::seccomp(SECCOMP_SET_MODE_FILTER, static_cast<unsigned>(op.a), op.data);
    if (listener < 0) return listener;
    const char tag = 'L';
    const long sent = child_send_with_fd(static_cast<int>(op.b), &tag, 1, static_cast<int>(listener), MSG_NOSIGNAL);
    if (sent < 0) {
        *static_cast<int*>(const_cast<void*>(op.data2)) = 1;
        return sent;
    }
    return 0;
}

// The launch step that installs `f`: child_op_code::call with
// child_install_seccomp. `f` must stay alive (and in place) until the child
// has exec'd; spawn keeps its shared_ptr for that long.
template <class = void>
inline child_op seccomp_install_op(const seccomp::filter& f) noexcept {
    return child_op{.code = child_op_code::call,
                    .step = ctr::step::install_seccomp,
                    .a = static_cast<long>(f.install_flags()),
                    .data = &f.program(),
                    .run = child_install_seccomp};
}

}  // namespace ctr::detail
