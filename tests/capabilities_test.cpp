// Capabilities: names, sets and policies as values, and the child steps run
// in a forked child, checked against what the kernel then reports in
// /proc/self/status.
#include "support.hpp"

#include <ctr/capabilities.hpp>
#include <ctr/detail/capability_step.hpp>
#include <ctr/process.hpp>
#include <ctr/security.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using ctr::capability;
namespace caps = ctr::caps;
namespace detail = ctr::detail;

// The enumerators are the kernel's numbers.
#define CTR_SAME_NUMBER(ours, kernels) \
    static_assert(static_cast<int>(capability::ours) == CAP_##kernels, #ours " is not CAP_" #kernels)
CTR_SAME_NUMBER(chown, CHOWN);
CTR_SAME_NUMBER(dac_override, DAC_OVERRIDE);
CTR_SAME_NUMBER(dac_read_search, DAC_READ_SEARCH);
CTR_SAME_NUMBER(fowner, FOWNER);
CTR_SAME_NUMBER(fsetid, FSETID);
CTR_SAME_NUMBER(kill, KILL);
CTR_SAME_NUMBER(setgid, SETGID);
CTR_SAME_NUMBER(setuid, SETUID);
CTR_SAME_NUMBER(setpcap, SETPCAP);
CTR_SAME_NUMBER(linux_immutable, LINUX_IMMUTABLE);
CTR_SAME_NUMBER(net_bind_service, NET_BIND_SERVICE);
CTR_SAME_NUMBER(net_broadcast, NET_BROADCAST);
CTR_SAME_NUMBER(net_admin, NET_ADMIN);
CTR_SAME_NUMBER(net_raw, NET_RAW);
CTR_SAME_NUMBER(ipc_lock, IPC_LOCK);
CTR_SAME_NUMBER(ipc_owner, IPC_OWNER);
CTR_SAME_NUMBER(sys_module, SYS_MODULE);
CTR_SAME_NUMBER(sys_rawio, SYS_RAWIO);
CTR_SAME_NUMBER(sys_chroot, SYS_CHROOT);
CTR_SAME_NUMBER(sys_ptrace, SYS_PTRACE);
CTR_SAME_NUMBER(sys_pacct, SYS_PACCT);
CTR_SAME_NUMBER(sys_admin, SYS_ADMIN);
CTR_SAME_NUMBER(sys_boot, SYS_BOOT);
CTR_SAME_NUMBER(sys_nice, SYS_NICE);
CTR_SAME_NUMBER(sys_resource, SYS_RESOURCE);
CTR_SAME_NUMBER(sys_time, SYS_TIME);
CTR_SAME_NUMBER(sys_tty_config, SYS_TTY_CONFIG);
CTR_SAME_NUMBER(mknod, MKNOD);
CTR_SAME_NUMBER(lease, LEASE);
CTR_SAME_NUMBER(audit_write, AUDIT_WRITE);
CTR_SAME_NUMBER(audit_control, AUDIT_CONTROL);
CTR_SAME_NUMBER(setfcap, SETFCAP);
CTR_SAME_NUMBER(mac_override, MAC_OVERRIDE);
CTR_SAME_NUMBER(mac_admin, MAC_ADMIN);
CTR_SAME_NUMBER(syslog, SYSLOG);
CTR_SAME_NUMBER(wake_alarm, WAKE_ALARM);
CTR_SAME_NUMBER(block_suspend, BLOCK_SUSPEND);
CTR_SAME_NUMBER(audit_read, AUDIT_READ);
#ifdef CAP_PERFMON
CTR_SAME_NUMBER(perfmon, PERFMON);
CTR_SAME_NUMBER(bpf, BPF);
#endif
#ifdef CAP_CHECKPOINT_RESTORE
CTR_SAME_NUMBER(checkpoint_restore, CHECKPOINT_RESTORE);
#endif
#undef CTR_SAME_NUMBER

// The set is a constexpr value type.
static_assert(caps::set{capability::chown, capability::kill}.bits() == 0b100001);
static_assert((caps::set{capability::chown} | capability::kill) - capability::chown == caps::set{capability::kill});
static_assert(caps::default_set().size() == 11);

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// The five capability lines of /proc/<pid>/status.
struct capability_sets {
    caps::set bounding, permitted, effective, inheritable, ambient;
};

std::optional<capability_sets> parse_status(const std::string& text) {
    capability_sets out;
    int found = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string key = line.substr(0, colon);
        caps::set* target = key == "CapBnd"   ? &out.bounding
                            : key == "CapPrm" ? &out.permitted
                            : key == "CapEff" ? &out.effective
                            : key == "CapInh" ? &out.inheritable
                            : key == "CapAmb" ? &out.ambient
                                              : nullptr;
        if (!target) continue;
        *target = caps::set::from_bits(std::stoull(line.substr(colon + 1), nullptr, 16));
        ++found;
    }
    if (found != 5) return std::nullopt;
    return out;
}

std::string status_line(const std::string& text, const std::string& key) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
    return {};
}

// What a forked child reported: "skip <why>", "fail <what>: <errno text>",
// or the observations it was asked for.
struct child_outcome {
    std::string skip{};
    std::string failure{};
    std::string output{};
    int exit_code = -1;
};

// Only for the forked child: plain writes, no buffering to lose at _exit.
void say(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = write(fd, text.data() + done, text.size() - done);
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
}
[[noreturn]] void child_skip(int fd, const std::string& why) {
    say(fd, "skip " + why);
    _exit(0);
}
[[noreturn]] void child_fail(int fd, const std::string& what, long negative_errno) {
    say(fd, "fail " + what + ": " + std::strerror(static_cast<int>(-negative_errno)));
    _exit(1);
}

bool write_proc_file(const char* path, const std::string& text) {
    const int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    return ok;
}

std::string read_own_status() {
    std::ifstream in("/proc/self/status");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Runs `body` in a forked child that is root of its user namespace: the one
// this process is in when it is root there (real root, or the user namespace
// the test main makes for a rootless run), or else a new one mapping root to
// this user. `body` writes to the fd it gets and may end the child itself.
child_outcome run_in_child(const std::function<void(int fd)>& body) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return {.failure = "pipe2 failed"};
    const pid_t pid = fork();
    if (pid < 0) return {.failure = "fork failed"};
    if (pid == 0) {
        close(pipe_fds[0]);
        const int fd = pipe_fds[1];
        if (geteuid() != 0) {
            const uid_t uid = geteuid();
            const gid_t gid = getegid();
            if (unshare(CLONE_NEWUSER) != 0)
                child_skip(fd, std::string("not root, and unshare(CLONE_NEWUSER) failed: ") + std::strerror(errno));
            write_proc_file("/proc/self/setgroups", "deny");
            if (!write_proc_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
                !write_proc_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n"))
                child_skip(fd, "not root, and the new user namespace could not be mapped");
        }
        body(fd);
        _exit(0);
    }
    close(pipe_fds[1]);
    child_outcome out;
    char buffer[4096];
    for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) out.output.append(buffer, static_cast<std::size_t>(n));
    close(pipe_fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (out.output.rfind("skip ", 0) == 0) out.skip = out.output.substr(5);
    if (out.output.rfind("fail ", 0) == 0) out.failure = out.output.substr(5);
    return out;
}

// Calls one child function the way child_op_code::call does.
long call(detail::child_function function, const detail::capability_plan& plan, long a = 0) {
    const detail::child_op op{
        .code = detail::child_op_code::call, .step = ctr::step::none, .a = a, .data = &plan, .run = function};
    return function(op);
}

// In the child: skips unless this process holds every capability of `wanted`
// in its bounding and permitted sets (a container may lack some).
void skip_unless_held(int fd, caps::set wanted) {
    const auto now = parse_status(read_own_status());
    if (!now) child_skip(fd, "no capability lines in /proc/self/status");
    const caps::set missing = wanted - (now->bounding & now->permitted);
    if (!missing.empty()) child_skip(fd, "this process lacks " + missing.to_string());
}

// In the child: the four steps that come with no change of ids, in order.
void apply_without_id_change(int fd, const detail::capability_plan& plan) {
    if (const long r = call(&detail::child_drop_bounding_capabilities, plan); r < 0)
        child_fail(fd, "drop bounding capabilities", r);
    if (const long r = call(&detail::child_set_securebits, plan); r < 0) child_fail(fd, "set securebits", r);
    if (const long r = call(&detail::child_set_capabilities, plan); r < 0) child_fail(fd, "set capabilities", r);
    if (const long r = call(&detail::child_set_ambient_capabilities, plan); r < 0)
        child_fail(fd, "set ambient capabilities", r);
}

// In the child: /proc/self/status of a program run after the steps, written
// by /bin/cat itself to the pipe.
[[noreturn]] void exec_cat_status(int fd) {
    if (dup2(fd, STDOUT_FILENO) < 0) child_fail(fd, "dup2", -errno);
    char cat[] = "/bin/cat";
    char path[] = "/proc/self/status";
    char* const argv[] = {cat, path, nullptr};
    char* const envp[] = {nullptr};
    const long r = detail::sys::execve(cat, argv, envp);
    child_fail(fd, "execve /bin/cat", r);
}

// Whether `id` is mapped in this process's user namespace, per the map file.
bool id_is_mapped(const char* map_file, unsigned id) {
    std::ifstream map(map_file);
    for (unsigned long inside = 0, outside = 0, count = 0; map >> inside >> outside >> count;)
        if (id >= inside && id - inside < count) return true;
    return false;
}

// Why the uid change to 1000 cannot be tried here; empty when it can.
std::string blocker_for_uid_1000() {
    if (geteuid() != 0) return "not root in any user namespace";
    if (!id_is_mapped("/proc/self/uid_map", 1000) || !id_is_mapped("/proc/self/gid_map", 1000))
        return "uid or gid 1000 is not mapped in this user namespace (a rootless run maps only its own uid)";
    if (access("/bin/cat", X_OK) != 0) return "no /bin/cat to exec";
    return {};
}

}  // namespace

TEST(capabilities, names_round_trip_for_every_capability) {
    std::set<std::string_view> distinct;
    for (unsigned number = 0; number <= static_cast<unsigned>(caps::last_known); ++number) {
        const auto c = static_cast<capability>(number);
        const std::string_view name = caps::name(c);
        ASSERT_EQ(name.rfind("CAP_", 0), 0U) << number;
        distinct.insert(name);
        EXPECT_EQ(caps::from_name(name), c) << name;
        EXPECT_EQ(caps::from_name(name.substr(4)), c) << name;
        EXPECT_EQ(caps::from_name(lower(name)), c) << name;
        EXPECT_EQ(caps::from_name(lower(name.substr(4))), c) << name;
        EXPECT_EQ(caps::parse(name), c) << name;
        EXPECT_EQ(caps::parse(std::to_string(number)), c) << number;
    }
    EXPECT_EQ(distinct.size(), 41U);
    EXPECT_EQ(caps::name(capability::net_bind_service), "CAP_NET_BIND_SERVICE");
    EXPECT_EQ(caps::name(capability::checkpoint_restore), "CAP_CHECKPOINT_RESTORE");
    EXPECT_TRUE(caps::name(static_cast<capability>(41)).empty());
}

TEST(capabilities, parse_takes_names_in_any_case_and_numbers) {
    for (const char* text : {"CAP_NET_BIND_SERVICE", "NET_BIND_SERVICE", "net_bind_service", "cap_net_bind_service",
                             "Cap_Net_Bind_Service", "10"})
        EXPECT_EQ(caps::parse(text), capability::net_bind_service) << text;
    EXPECT_EQ(caps::parse("0"), capability::chown);
    EXPECT_EQ(static_cast<unsigned>(caps::parse("63")), 63U);
    EXPECT_EQ(static_cast<unsigned>(caps::parse("41")), 41U);
    EXPECT_FALSE(caps::from_name("10"));
    EXPECT_FALSE(caps::from_name("CAP_"));
    EXPECT_FALSE(caps::from_name(""));
}

TEST(capabilities, parse_rejects_every_bad_form_naming_it) {
    for (const char* text : {"", "CAP_", "cap_", "CAP_NOPE", "NOPE", "64", "100", "-1", "+1", "1x", " 10", "10 ",
                             "CAP_10", "0x10", "99999999999999999999", "CAP_CHOWN,CAP_KILL", "CAP_NET_BIND SERVICE",
                             "NET-BIND-SERVICE"}) {
        try {
            caps::parse(text);
            ADD_FAILURE() << "'" << text << "' was accepted";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::prepare) << text;
            EXPECT_EQ(e.code().value(), EINVAL) << text;
            EXPECT_EQ(e.path(), text);
            EXPECT_NE(std::string(e.what()).find("unknown capability: names look like CAP_NET_BIND_SERVICE"),
                      std::string::npos)
                << e.what();
        }
    }
}

TEST(capabilities, sets_add_remove_and_combine) {
    caps::set s;
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(s, caps::set::none());
    s.add(capability::kill).add(capability::chown).add(capability::kill);
    EXPECT_EQ(s.size(), 2U);
    EXPECT_TRUE(s.has(capability::kill));
    EXPECT_FALSE(s.has(capability::sys_admin));
    EXPECT_EQ(s.bits(), (std::uint64_t{1} << CAP_KILL) | (std::uint64_t{1} << CAP_CHOWN));
    s.remove(capability::kill).remove(capability::sys_admin);
    EXPECT_EQ(s, caps::set{capability::chown});

    const caps::set a{capability::chown, capability::kill, capability::net_raw};
    const caps::set b{capability::kill, capability::sys_admin};
    EXPECT_EQ(a | b, (caps::set{capability::chown, capability::kill, capability::net_raw, capability::sys_admin}));
    EXPECT_EQ(a & b, caps::set{capability::kill});
    EXPECT_EQ(a - b, (caps::set{capability::chown, capability::net_raw}));
    EXPECT_EQ(b - a, caps::set{capability::sys_admin});
    EXPECT_TRUE(a.contains(a & b));
    EXPECT_FALSE(a.contains(b));
    EXPECT_NE(a, b);

    std::vector<capability> members(a.begin(), a.end());
    EXPECT_EQ(members, (std::vector<capability>{capability::chown, capability::kill, capability::net_raw}));

    EXPECT_EQ(caps::set::all().size(), 41U);
    EXPECT_TRUE(caps::set::all().has(capability::checkpoint_restore));
    EXPECT_FALSE(caps::set::all().has(static_cast<capability>(41)));
    EXPECT_TRUE(caps::set::none().empty());
    unsigned walked = 0;
    for (const capability c : caps::set::all()) EXPECT_EQ(static_cast<unsigned>(c), walked++);
    EXPECT_EQ(walked, 41U);
}

TEST(capabilities, lists_parse_and_print) {
    EXPECT_EQ(caps::set::parse_list("CAP_CHOWN,CAP_KILL"), (caps::set{capability::chown, capability::kill}));
    EXPECT_EQ(caps::set::parse_list(" kill , chown "), (caps::set{capability::chown, capability::kill}));
    EXPECT_EQ(caps::set::parse_list("NET_RAW"), caps::set{capability::net_raw});
    EXPECT_EQ(caps::set::parse_list("ALL"), caps::set::all());
    EXPECT_EQ(caps::set::parse_list("all"), caps::set::all());
    EXPECT_EQ(caps::set::parse_list(""), caps::set::none());
    EXPECT_EQ((caps::set{capability::kill, capability::chown}).to_string(), "CAP_CHOWN,CAP_KILL");
    EXPECT_EQ(caps::set::none().to_string(), "");
    EXPECT_EQ(caps::set::parse_list(caps::set::all().to_string()), caps::set::all());
    const caps::set with_unnamed = caps::set::from_bits(std::uint64_t{1} << 45 | 1);
    EXPECT_EQ(with_unnamed.to_string(), "CAP_CHOWN,45");
    EXPECT_EQ(caps::set::parse_list(with_unnamed.to_string()), with_unnamed);

    for (const char* text : {",", "CAP_CHOWN,", ",CAP_CHOWN", "CAP_CHOWN,,CAP_KILL", "CAP_CHOWN,NOPE", "CAP_CHOWN;KILL"}) {
        EXPECT_THROW(caps::set::parse_list(text), ctr::error) << text;
    }
    try {
        caps::set::parse_list("CAP_CHOWN, NOPE");
        ADD_FAILURE() << "accepted";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.path(), "NOPE");
    }
}

TEST(capabilities, default_set_is_podmans) {
    const caps::set d = caps::default_set();
    EXPECT_EQ(d, caps::set::parse_list("CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,NET_BIND_SERVICE,SETFCAP,SETGID,SETPCAP,"
                                       "SETUID,SYS_CHROOT"));
    EXPECT_EQ(d.size(), 11U);
    for (const capability dockers_extra : {capability::audit_write, capability::mknod, capability::net_raw})
        EXPECT_FALSE(d.has(dockers_extra)) << caps::name(dockers_extra);
    EXPECT_FALSE(d.has(capability::sys_admin));
}

TEST(capabilities, last_supported_agrees_with_the_kernel) {
    const unsigned last = caps::last_supported();
    std::ifstream file("/proc/sys/kernel/cap_last_cap");
    unsigned from_proc = 0;
    if (file >> from_proc) {
        EXPECT_EQ(last, from_proc);
    }
    // The kernel answers PR_CAPBSET_READ up to its last capability only.
    EXPECT_GE(prctl(PR_CAPBSET_READ, static_cast<unsigned long>(last)), 0);
    errno = 0;
    EXPECT_EQ(prctl(PR_CAPBSET_READ, static_cast<unsigned long>(last) + 1), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(caps::supported().size(), last + 1);
    EXPECT_TRUE(caps::supported().has(static_cast<capability>(last)));
}

TEST(capabilities, policy_errors_name_what_is_wrong) {
    const auto expect_error = [](const caps::policy& policy, unsigned last, const std::string& path,
                                 const std::string& words) {
        try {
            detail::plan_capabilities(policy, last);
            ADD_FAILURE() << "accepted; expected " << words;
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::prepare);
            EXPECT_EQ(e.code().value(), EINVAL);
            EXPECT_EQ(e.path(), path);
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    };
    expect_error({.keep = {capability::chown}, .ambient = {capability::chown, capability::net_raw}}, 40, "CAP_NET_RAW",
                 "ambient capabilities must also be kept");
    expect_error({.keep = {capability::chown}, .inheritable = {capability::kill}}, 40, "CAP_KILL",
                 "inheritable capabilities must also be kept");
    expect_error({.keep = {capability::checkpoint_restore}}, 39, "CAP_CHECKPOINT_RESTORE",
                 "CAP_CHECKPOINT_RESTORE is not known to this kernel (its last is CAP_BPF)");
    expect_error({.keep = caps::set::from_bits(std::uint64_t{1} << 50)}, 40, "capability 50",
                 "capability 50 is not known to this kernel (its last is CAP_CHECKPOINT_RESTORE)");
    expect_error({.keep = {capability::chown}, .securebits = 1U << 20}, 40, "securebits 1048576", "unknown securebits");
    expect_error({.keep = {capability::chown}, .ambient = {capability::chown}, .securebits = SECBIT_NO_CAP_AMBIENT_RAISE},
                 40, "CAP_CHOWN", "SECBIT_NO_CAP_AMBIENT_RAISE");

    // The running kernel's own limit is the default.
    const unsigned last = caps::last_supported();
    if (last < caps::max_number) {
        EXPECT_THROW(detail::plan_capabilities({.keep = caps::set::from_bits(std::uint64_t{1} << (last + 1))}),
                     ctr::error);
    }
    EXPECT_NO_THROW(detail::plan_capabilities({.keep = caps::supported()}));
}

TEST(capabilities, plan_is_the_policy_as_masks) {
    const detail::capability_plan plan = detail::plan_capabilities(
        {.keep = {capability::chown, capability::kill, capability::net_bind_service},
         .inheritable = {capability::kill},
         .ambient = {capability::net_bind_service},
         .securebits = SECBIT_NOROOT},
        40);
    EXPECT_EQ(plan.keep, (caps::set{capability::chown, capability::kill, capability::net_bind_service}).bits());
    EXPECT_EQ(plan.inheritable, (caps::set{capability::kill, capability::net_bind_service}).bits());
    EXPECT_EQ(plan.ambient, caps::set{capability::net_bind_service}.bits());
    EXPECT_TRUE(plan.set_securebits);
    EXPECT_EQ(plan.securebits, unsigned{SECBIT_NOROOT});

    const detail::capability_plan nothing = detail::plan_capabilities({}, 40);
    EXPECT_EQ(nothing.keep, 0U);
    EXPECT_EQ(nothing.inheritable, 0U);
    EXPECT_EQ(nothing.ambient, 0U);
    EXPECT_FALSE(nothing.set_securebits);
}

TEST(capabilities, steps_come_in_the_documented_order) {
    const auto steps = [](const std::vector<detail::child_op>& ops) {
        std::vector<ctr::step> out;
        for (const auto& op : ops) {
            EXPECT_EQ(op.code, detail::child_op_code::call);
            EXPECT_NE(op.run, nullptr);
            out.push_back(op.step);
        }
        return out;
    };
    using ctr::step;
    const auto plan = detail::plan_capabilities({.keep = {capability::chown}, .securebits = SECBIT_NOROOT}, 40);
    std::vector<detail::child_op> ops;
    detail::add_capability_steps_before_ids(ops, plan, true);
    EXPECT_EQ(steps(ops), (std::vector{step::drop_bounding_capabilities, step::set_securebits, step::keep_capabilities}));
    EXPECT_EQ(ops.back().a, 1);
    detail::add_capability_steps_after_ids(ops, plan);
    EXPECT_EQ(steps(ops), (std::vector{step::drop_bounding_capabilities, step::set_securebits, step::keep_capabilities,
                                       step::set_capabilities, step::set_ambient_capabilities}));
    for (const auto& op : ops) EXPECT_EQ(op.data, &plan);

    // No keepcaps without a change of uid, or with nothing to keep; no
    // securebits step when none are asked for.
    const auto plain = detail::plan_capabilities({.keep = {capability::chown}}, 40);
    ops.clear();
    detail::add_capability_steps_before_ids(ops, plain, false);
    EXPECT_EQ(steps(ops), std::vector{step::drop_bounding_capabilities});
    const auto empty = detail::plan_capabilities({}, 40);
    ops.clear();
    detail::add_capability_steps_before_ids(ops, empty, true);
    EXPECT_EQ(steps(ops), std::vector{step::drop_bounding_capabilities});
}

TEST(capabilities, kept_set_is_exactly_every_set) {
    const caps::set keep{capability::chown, capability::kill, capability::net_bind_service, capability::setuid,
                         capability::setgid, capability::sys_chroot};
    const auto plan = detail::plan_capabilities({.keep = keep});
    const child_outcome out = run_in_child([&](int fd) {
        skip_unless_held(fd, keep);
        apply_without_id_change(fd, plan);
        say(fd, read_own_status());
    });
    if (!out.skip.empty()) GTEST_SKIP() << out.skip;
    ASSERT_TRUE(out.failure.empty()) << out.failure;
    ASSERT_EQ(out.exit_code, 0);
    const auto seen = parse_status(out.output);
    ASSERT_TRUE(seen) << out.output;
    EXPECT_EQ(seen->bounding, keep) << seen->bounding.to_string();
    EXPECT_EQ(seen->permitted, keep) << seen->permitted.to_string();
    EXPECT_EQ(seen->effective, keep) << seen->effective.to_string();
    EXPECT_EQ(seen->inheritable, caps::set::none()) << seen->inheritable.to_string();
    EXPECT_EQ(seen->ambient, caps::set::none()) << seen->ambient.to_string();
}

TEST(capabilities, ambient_and_inheritable_are_raised_for_root) {
    const caps::set keep{capability::chown, capability::kill, capability::net_bind_service};
    const auto plan = detail::plan_capabilities(
        {.keep = keep, .inheritable = {capability::kill}, .ambient = {capability::net_bind_service}});
    const child_outcome out = run_in_child([&](int fd) {
        skip_unless_held(fd, keep);
        apply_without_id_change(fd, plan);
        say(fd, read_own_status());
    });
    if (!out.skip.empty()) GTEST_SKIP() << out.skip;
    ASSERT_TRUE(out.failure.empty()) << out.failure;
    const auto seen = parse_status(out.output);
    ASSERT_TRUE(seen) << out.output;
    EXPECT_EQ(seen->bounding, keep);
    EXPECT_EQ(seen->permitted, keep);
    EXPECT_EQ(seen->effective, keep);
    EXPECT_EQ(seen->inheritable, (caps::set{capability::kill, capability::net_bind_service}))
        << seen->inheritable.to_string();
    EXPECT_EQ(seen->ambient, caps::set{capability::net_bind_service}) << seen->ambient.to_string();
}

TEST(capabilities, keeping_nothing_leaves_no_capability) {
    const auto plan = detail::plan_capabilities({.keep = caps::set::none()});
    const child_outcome out = run_in_child([&](int fd) {
        apply_without_id_change(fd, plan);
        // The kernel agrees: a capability-checked call now fails.
        const long dropped = prctl(PR_CAPBSET_DROP, CAP_CHOWN) == 0 ? 0 : -errno;
        say(fd, read_own_status() + "DropAfter:\t" + std::to_string(dropped) + "\n");
    });
    if (!out.skip.empty()) GTEST_SKIP() << out.skip;
    ASSERT_TRUE(out.failure.empty()) << out.failure;
    const auto seen = parse_status(out.output);
    ASSERT_TRUE(seen) << out.output;
    EXPECT_TRUE(seen->bounding.empty()) << seen->bounding.to_string();
    EXPECT_TRUE(seen->permitted.empty()) << seen->permitted.to_string();
    EXPECT_TRUE(seen->effective.empty()) << seen->effective.to_string();
    EXPECT_TRUE(seen->inheritable.empty()) << seen->inheritable.to_string();
    EXPECT_TRUE(seen->ambient.empty()) << seen->ambient.to_string();
    EXPECT_EQ(status_line(out.output, "DropAfter"), "\t" + std::to_string(-EPERM));
}

TEST(capabilities, bounding_set_limits_what_root_gets_at_exec) {
    if (access("/bin/cat", X_OK) != 0) GTEST_SKIP() << "no /bin/cat to exec";
    const caps::set keep{capability::chown, capability::net_bind_service};
    const auto plan = detail::plan_capabilities({.keep = keep});
    const child_outcome out = run_in_child([&](int fd) {
        skip_unless_held(fd, keep);
        apply_without_id_change(fd, plan);
        exec_cat_status(fd);
    });
    if (!out.skip.empty()) GTEST_SKIP() << out.skip;
    ASSERT_TRUE(out.failure.empty()) << out.failure;
    const auto seen = parse_status(out.output);
    ASSERT_TRUE(seen) << out.output;
    // uid 0 without SECBIT_NOROOT gets its bounding set back at exec.
    EXPECT_EQ(seen->bounding, keep);
    EXPECT_EQ(seen->permitted, keep);
    EXPECT_EQ(seen->effective, keep);
    EXPECT_TRUE(seen->ambient.empty());
}

TEST(capabilities, securebits_are_set_and_noroot_withholds_caps_at_exec) {
    if (access("/bin/cat", X_OK) != 0) GTEST_SKIP() << "no /bin/cat to exec";
    const caps::set keep{capability::chown, capability::net_bind_service};
    const unsigned bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED;
    const auto plan = detail::plan_capabilities({.keep = keep, .securebits = bits});
    const child_outcome out = run_in_child([&](int fd) {
        skip_unless_held(fd, keep | capability::setpcap);
        apply_without_id_change(fd, plan);
        const int read_back = prctl(PR_GET_SECUREBITS);
        say(fd, "Securebits:\t" + std::to_string(read_back) + "\n");
        exec_cat_status(fd);
    });
    if (!out.skip.empty()) GTEST_SKIP() << out.skip;
    ASSERT_TRUE(out.failure.empty()) << out.failure;
    EXPECT_EQ(status_line(out.output, "Securebits"), "\t" + std::to_string(bits));
    const auto seen = parse_status(out.output);
    ASSERT_TRUE(seen) << out.output;
    // With SECBIT_NOROOT uid 0 is not special at exec: /bin/cat has no file
    // capabilities and nothing is ambient, so it runs with none.
    EXPECT_EQ(seen->bounding, keep);
    EXPECT_TRUE(seen->permitted.empty()) << seen->permitted.to_string();
    EXPECT_TRUE(seen->effective.empty()) << seen->effective.to_string();
}

TEST(capabilities, ambient_capability_survives_a_change_of_uid_and_exec) {
    if (const std::string blocker = blocker_for_uid_1000(); !blocker.empty()) GTEST_SKIP() << blocker;
    const caps::set keep{capability::chown, capability::kill, capability::net_bind_service};
    const auto plan = detail::plan_capabilities({.keep = keep, .ambient = {capability::net_bind_service}});
    // The whole sequence as a launch runs it: the capability steps around
    // the launch's own id steps, each through child_run_op.
    std::vector<detail::child_op> ops;
    detail::add_capability_steps_before_ids(ops, plan, true);
    ops.push_back({.code = detail::child_op_code::set_groups, .step = ctr::step::set_groups, .a = 0});
    ops.push_back({.code = detail::child_op_code::set_gid, .step = ctr::step::set_gid, .a = 1000});
    ops.push_back({.code = detail::child_op_code::set_uid, .step = ctr::step::set_uid, .a = 1000});
    detail::add_capability_steps_after_ids(ops, plan);
    const child_outcome out = run_in_child([&](int fd) {
        skip_unless_held(fd, keep);
        const detail::child_view view{};
        for (const auto& op : ops)
            if (const long r = detail::child_run_op(view, op); r < 0)
                child_fail(fd, std::string(ctr::to_string(op.step)), r);
        exec_cat_status(fd);
    });
    if (!out.skip.empty()) GTEST_SKIP() << out.skip;
    ASSERT_TRUE(out.failure.empty()) << out.failure;
    EXPECT_EQ(status_line(out.output, "Uid"), "\t1000\t1000\t1000\t1000");
    EXPECT_EQ(status_line(out.output, "Gid"), "\t1000\t1000\t1000\t1000");
    const auto seen = parse_status(out.output);
    ASSERT_TRUE(seen) << out.output;
    const caps::set nbs{capability::net_bind_service};
    EXPECT_EQ(seen->ambient, nbs) << seen->ambient.to_string();
    EXPECT_EQ(seen->effective, nbs) << seen->effective.to_string();
    EXPECT_EQ(seen->permitted, nbs) << seen->permitted.to_string();
    EXPECT_EQ(seen->inheritable, nbs) << seen->inheritable.to_string();
    EXPECT_EQ(seen->bounding, keep) << seen->bounding.to_string();
}

TEST(capabilities, without_keepcaps_a_change_of_uid_loses_the_kept_set) {
    if (const std::string blocker = blocker_for_uid_1000(); !blocker.empty()) GTEST_SKIP() << blocker;
    const caps::set keep{capability::chown, capability::net_bind_service};
    const auto plan = detail::plan_capabilities({.keep = keep});
    const child_outcome out = run_in_child([&](int fd) {
        skip_unless_held(fd, keep);
        if (const long r = call(&detail::child_drop_bounding_capabilities, plan); r < 0)
            child_fail(fd, "drop bounding capabilities", r);
        if (const long r = call(&detail::child_keep_capabilities, plan, 0); r < 0)
            child_fail(fd, "keep capabilities", r);
        if (const long r = detail::sys::setresuid(1000); r < 0) child_fail(fd, "setresuid", r);
        const std::string after_setuid = read_own_status();
        const long set = call(&detail::child_set_capabilities, plan);
        say(fd, after_setuid + "Capset:\t" + std::to_string(set) + "\n");
    });
    if (!out.skip.empty()) GTEST_SKIP() << out.skip;
    ASSERT_TRUE(out.failure.empty()) << out.failure;
    const auto seen = parse_status(out.output);
    ASSERT_TRUE(seen) << out.output;
    EXPECT_TRUE(seen->permitted.empty()) << seen->permitted.to_string();
    EXPECT_EQ(status_line(out.output, "Capset"), "\t" + std::to_string(-EPERM));
}

// An OCI config without noNewPrivileges and with a user: the seccomp filter
// must go in while the launch is still uid 0 with every capability (a
// change of uid empties the effective set, and without no_new_privs only
// CAP_SYS_ADMIN lets a filter in). Podman's `run -u 1000` is that launch.
TEST(capabilities, a_seccomp_filter_without_no_new_privs_goes_in_before_the_change_of_uid) {
    if (const std::string blocker = blocker_for_uid_1000(); !blocker.empty()) GTEST_SKIP() << blocker;
    ctr::security security = ctr::security::confined();
    security.no_new_privileges = false;
    auto r = ctr::process::spawn({"/bin/sh", "-c", "id -u; unshare -U true 2>/dev/null || echo refused"},
                                 {.std_out = ctr::process::stdio::capture(), .gid = 1000, .uid = 1000,
                                  .security = security})
                 .wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
    // The filter is in (unshare is refused by the default profile), and the
    // command runs as 1000.
    EXPECT_EQ(r.std_out, "1000\nrefused\n");
}
