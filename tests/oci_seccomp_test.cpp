// ctr-run's JSON seccomp profiles (ctr-run/oci/seccomp_profile.hpp) on the
// real kernel: each filter is installed in a forked child through the
// launch's own step (seccomp_install_op, with the filter's install flags),
// and the child reports what its raw system calls answered. Every refusal
// is first shown to be the filter's: the same call unfiltered gets another
// answer from the kernel. Malformed profiles must give a seccomp_error that
// names the entry and the field.
#include "seccomp_child.hpp"
#include "support.hpp"

#include "oci/seccomp_profile.hpp"

#include <ctr/seccomp.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace oci = ctr_run::oci;
using ctr_test::child_result;
using ctr_test::reporter;
using ctr_test::run_child;
using json = nlohmann::json;

const fs::path podman_profile = "/usr/share/containers/seccomp.json";

long call(long number, std::uint64_t a0 = 0, std::uint64_t a1 = 0, std::uint64_t a2 = 0, std::uint64_t a3 = 0,
          std::uint64_t a4 = 0) {
    const long r = syscall(number, a0, a1, a2, a3, a4);
    return r < 0 ? -errno : r;
}

oci::seccomp_context context_with(ctr::caps::set caps) {
    oci::seccomp_context c;
    c.capabilities = caps;
    return c;
}

std::shared_ptr<const ctr::seccomp::filter> from(const json& profile, const oci::seccomp_context& c = {}) {
    return oci::seccomp_from_json(profile, c, "linux.seccomp");
}

// The calls the Podman profile test makes, in order. Arguments are chosen so
// that the kernel, unfiltered, answers with an error of its own (a bad fd, a
// bad pointer, a bad command) or succeeds harmlessly.
void podman_probe_calls(const reporter& out) {
    out.number(call(SYS_add_key, 0, 0, 0, 0, 0));                      // not in the profile
    out.number(call(SYS_vmsplice, static_cast<std::uint64_t>(-1), 0, 0, 0));  // refused, errnoRet 1
    out.number(call(SYS_bpf, 9999, 0, 0));                             // refused without CAP_SYS_ADMIN
    out.number(call(SYS_personality, ADDR_NO_RANDOMIZE));              // not among the allowed values
    out.number(call(SYS_personality, 0xffffffffULL));                  // the query: allowed
    out.number(call(SYS_chroot, reinterpret_cast<std::uint64_t>("/no/such/dir")));  // allowed with SYS_CHROOT
    out.number(call(SYS_setns, static_cast<std::uint64_t>(-1), 0));    // in the allow list
}

TEST(oci_seccomp, podman_profile_refuses_what_it_says_and_runs_a_shell_and_threads) {
    if (!fs::exists(podman_profile)) GTEST_SKIP() << podman_profile << " is absent (install podman)";
    std::vector<std::string> skipped;
    auto context = context_with(ctr::caps::default_set());
    context.skipped_names = &skipped;
    const auto filter = oci::load_seccomp_profile(podman_profile, context);

    // i386-only names such as chown32 are in the profile and not in the
    // x86-64 table: skipped, and said so.
    EXPECT_NE(std::find(skipped.begin(), skipped.end(), "chown32"), skipped.end());

    const child_result bare = run_child(nullptr, podman_probe_calls);
    ASSERT_TRUE(bare.exited_with(0)) << bare.describe();
    ASSERT_EQ(bare.numbers().size(), 7U) << bare.describe();
    EXPECT_EQ(bare.numbers()[0], -EFAULT) << "add_key reaches the kernel unfiltered";
    EXPECT_EQ(bare.numbers()[1], -EBADF) << "vmsplice reaches the kernel unfiltered";
    // Kernels before 5.?, unprivileged, refuse bpf before looking at the
    // command; then the filter's EPERM cannot be told apart and is not
    // checked.
    const bool bpf_distinct = bare.numbers()[2] != -EPERM;
    if (bpf_distinct) {
        EXPECT_EQ(bare.numbers()[2], -EINVAL) << "bpf reaches the kernel unfiltered";
    }
    EXPECT_GE(bare.numbers()[3], 0) << "personality(ADDR_NO_RANDOMIZE) works unfiltered";
    EXPECT_EQ(bare.numbers()[5], -ENOENT);
    EXPECT_EQ(bare.numbers()[6], -EBADF);

    const child_result r = run_child(filter.get(), podman_probe_calls);
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    ASSERT_EQ(r.numbers().size(), 7U) << r.describe();
    EXPECT_EQ(r.numbers()[0], -ENOSYS) << "defaultErrnoRet 38";
    EXPECT_EQ(r.numbers()[1], -EPERM) << "errnoRet 1";
    if (bpf_distinct) {
        EXPECT_EQ(r.numbers()[2], -EPERM) << "the entry that excludes CAP_SYS_ADMIN";
    }
    EXPECT_EQ(r.numbers()[3], -ENOSYS) << "personality with a value no rule allows gets the default";
    EXPECT_GE(r.numbers()[4], 0) << "personality(0xffffffff) is allowed";
    EXPECT_EQ(r.numbers()[5], -ENOENT) << "chroot is allowed with CAP_SYS_CHROOT";
    EXPECT_EQ(r.numbers()[6], -EBADF) << "setns: the allow list comes first, as libseccomp keeps it";

    // Without CAP_SYS_CHROOT the profile's other entry applies.
    const auto no_chroot = oci::load_seccomp_profile(
        podman_profile, context_with(ctr::caps::default_set() - ctr::caps::set{ctr::capability::sys_chroot}));
    const child_result c = run_child(no_chroot.get(), [](const reporter& out) {
        out.number(call(SYS_chroot, reinterpret_cast<std::uint64_t>("/no/such/dir")));
    });
    ASSERT_TRUE(c.exited_with(0)) << c.describe();
    EXPECT_EQ(c.numbers(), std::vector<long>{-EPERM});

    // A shell, a fork and threads run under it.
    const child_result shell = run_child(filter.get(), [](const reporter& out) {
        int from_thread = 0;
        std::thread([&] { from_thread = 42; }).join();
        out.number(from_thread);
        const pid_t pid = fork();
        if (pid == 0) {
            dup2(out.fd, 1);
            execl("/bin/sh", "sh", "-c", "echo shell ran; (echo subshell ran) | cat", static_cast<char*>(nullptr));
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (status != 0) _exit(3);
    });
    ASSERT_TRUE(shell.exited_with(0)) << shell.describe();
    EXPECT_EQ(shell.numbers(), std::vector<long>{42});
    EXPECT_EQ(shell.output(), "shell ran\nsubshell ran\n");
}

TEST(oci_seccomp, netlink_audit_socket_needs_both_arguments_as_podman_rules_it) {
    if (!fs::exists(podman_profile)) GTEST_SKIP() << podman_profile << " is absent (install podman)";
    const auto filter = oci::load_seccomp_profile(podman_profile, context_with(ctr::caps::default_set()));
    const auto calls = [](const reporter& out) {
        const long audit = call(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
        out.number(audit >= 0 ? 0 : audit);
        const long route = call(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        out.number(route >= 0 ? 0 : route);
    };
    const child_result bare = run_child(nullptr, calls);
    ASSERT_EQ(bare.numbers().size(), 2U) << bare.describe();
    if (bare.numbers()[0] != 0) GTEST_SKIP() << "no NETLINK_AUDIT socket here even unfiltered: " << bare.numbers()[0];
    const child_result r = run_child(filter.get(), calls);
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.numbers(), (std::vector<long>{-EINVAL, bare.numbers()[1]}))
        << "AF_NETLINK and NETLINK_AUDIT together get errnoRet 22 without CAP_AUDIT_WRITE; another protocol passes";
}

TEST(oci_seccomp, oci_object_with_arguments_is_enforced_by_the_kernel) {
    // An allow list: what the child's runtime needs, and the calls tried.
    const json profile = json::parse(R"({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 77,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["write", "exit", "exit_group", "brk", "mmap", "munmap", "mprotect", "madvise", "futex",
                       "rt_sigaction", "rt_sigprocmask", "sigaltstack", "getpid", "gettid"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77, "comment": "the default: left out"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 78,
             "args": [{"index": 0, "value": 255, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"},
                      {"index": 1, "value": 10, "op": "SCMP_CMP_GT"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 79,
             "args": [{"index": 2, "value": 3, "op": "SCMP_CMP_LE"}, {"index": 3, "value": 1, "op": "SCMP_CMP_NE"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["no_such_call", "chown32", "getpgrp"], "action": "SCMP_ACT_ERRNO"}
        ]})");
    std::vector<std::string> skipped;
    oci::seccomp_context context;
    context.skipped_names = &skipped;
    const auto filter = from(profile, context);
    EXPECT_EQ(skipped, (std::vector<std::string>{"chown32", "no_such_call"}));
    EXPECT_EQ(filter->install_flags(), static_cast<std::uint32_t>(SECCOMP_FILTER_FLAG_LOG));

    // The child's parent is this process (asked here: the child's own
    // getppid would be filtered).
    const long parent = getpid();
    const auto calls = [parent](const reporter& out) {
        out.number(call(SYS_personality, ADDR_NO_RANDOMIZE));
        out.number(call(SYS_personality, 0xffffffffULL) >= 0 ? 0 : -1);
        out.number(call(SYS_personality, PER_LINUX) >= 0 ? 0 : -1);
        const auto pp = [&](std::uint64_t a0, std::uint64_t a1, std::uint64_t a2, std::uint64_t a3) {
            const long r = call(SYS_getppid, a0, a1, a2, a3);
            return r == parent ? 0 : r;
        };
        out.number(pp(0x107, 11, 9, 0));   // both conditions of the first rule: 78
        out.number(pp(0x107, 10, 9, 0));   // arg1 not > 10: allowed
        out.number(pp(0x106, 11, 9, 0));   // masked arg0 is 6: allowed
        out.number(pp(0, 0, 3, 0));        // second rule: 79
        out.number(pp(0, 0, 3, 1));        // arg3 == 1: allowed
        out.number(pp(0x207, 11, 3, 0));   // both rules match: the first decides
        out.number(call(SYS_getpgrp));     // no errnoRet: EPERM
    };
    const child_result bare = run_child(nullptr, calls);
    ASSERT_TRUE(bare.exited_with(0)) << bare.describe();
    EXPECT_EQ(bare.numbers(), (std::vector<long>{bare.numbers()[0], 0, 0, 0, 0, 0, 0, 0, 0, getpgrp()}));
    EXPECT_GE(bare.numbers()[0], 0) << "personality(ADDR_NO_RANDOMIZE) works unfiltered";

    const child_result r = run_child(filter.get(), calls);
    ASSERT_TRUE(r.exited_with(0)) << r.describe();
    EXPECT_EQ(r.numbers(), (std::vector<long>{-77, 0, 0, -78, 0, 0, -79, 0, -78, -EPERM}));
}

TEST(oci_seccomp, kill_actions_and_the_foreign_abi) {
    const auto killer = [](const char* action) {
        return from({{"defaultAction", "SCMP_ACT_ALLOW"},
                     {"syscalls", {{{"names", {"getppid"}}, {"action", action}}}}});
    };
    const auto getppid_call = [](const reporter& out) { out.number(call(SYS_getppid)); };
    EXPECT_TRUE(run_child(nullptr, getppid_call).exited_with(0));
    EXPECT_TRUE(run_child(killer("SCMP_ACT_KILL_PROCESS").get(), getppid_call).killed_by(SIGSYS));
    EXPECT_TRUE(run_child(killer("SCMP_ACT_KILL").get(), getppid_call).killed_by(SIGSYS));
    EXPECT_TRUE(run_child(killer("SCMP_ACT_TRAP").get(), getppid_call).killed_by(SIGSYS));
    const child_result logged = run_child(killer("SCMP_ACT_LOG").get(), getppid_call);
    EXPECT_TRUE(logged.exited_with(0)) << logged.describe();

    // An x32 number under a profile that lists x32: ctr cannot translate the
    // rules to that ABI, so it is killed (docs/oci.md, "Seccomp profiles in JSON").
    const auto x32 = [](const reporter& out) { out.number(call(0x40000000 | SYS_getppid)); };
    const child_result bare = run_child(nullptr, x32);
    ASSERT_TRUE(bare.exited_with(0)) << bare.describe();
    const auto listing = from({{"defaultAction", "SCMP_ACT_ALLOW"},
                               {"archMap", {{{"architecture", "SCMP_ARCH_X86_64"},
                                             {"subArchitectures", {"SCMP_ARCH_X86", "SCMP_ARCH_X32"}}}}}});
    EXPECT_TRUE(run_child(listing.get(), x32).killed_by(SIGSYS));
}

TEST(oci_seccomp, includes_and_excludes_decide_which_entries_apply) {
    const auto with_entry = [](const json& entry, const oci::seccomp_context& c) {
        json profile = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", json::array()}};
        profile["syscalls"].push_back(entry);
        return from(profile, c)->disassemble();
    };
    const std::string without = from({{"defaultAction", "SCMP_ACT_ALLOW"}})->disassemble();
    const json refuse = {{"names", {"getpgrp"}}, {"action", "SCMP_ACT_ERRNO"}};
    const auto entry = [&](const char* key, json filter) {
        json e = refuse;
        e[key] = std::move(filter);
        return e;
    };
    oci::seccomp_context old_kernel, new_kernel;
    old_kernel.kernel = oci::kernel_version{4, 19};
    new_kernel.kernel = oci::kernel_version{6, 8};
    const auto admin = context_with(ctr::caps::set{ctr::capability::sys_admin});
    const oci::seccomp_context none;

    EXPECT_NE(with_entry(refuse, none), without) << "the plain entry applies";
    EXPECT_EQ(with_entry(entry("includes", {{"minKernel", "5.8"}}), old_kernel), without);
    EXPECT_NE(with_entry(entry("includes", {{"minKernel", "5.8"}}), new_kernel), without);
    EXPECT_NE(with_entry(entry("excludes", {{"minKernel", "5.8"}}), old_kernel), without);
    EXPECT_EQ(with_entry(entry("excludes", {{"minKernel", "5.8"}}), new_kernel), without);
    EXPECT_EQ(with_entry(entry("includes", {{"caps", {"CAP_SYS_ADMIN"}}}), none), without);
    EXPECT_NE(with_entry(entry("includes", {{"caps", {"CAP_SYS_ADMIN"}}}), admin), without);
    EXPECT_EQ(with_entry(entry("includes", {{"caps", {"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}}}), admin), without)
        << "includes needs every capability it names";
    EXPECT_EQ(with_entry(entry("excludes", {{"caps", {"CAP_NET_ADMIN", "CAP_SYS_ADMIN"}}}), admin), without)
        << "excludes drops the entry for any capability it names";
    EXPECT_EQ(with_entry(entry("includes", {{"caps", {"CAP_NO_SUCH_THING"}}}), admin), without);
    EXPECT_EQ(with_entry(entry("includes", {{"arches", {"arm64", "s390x"}}}), none), without);
    EXPECT_NE(with_entry(entry("includes", {{"arches", {"amd64", "x32"}}}), none), without);
    EXPECT_EQ(with_entry(entry("excludes", {{"arches", {"amd64"}}}), none), without);

    EXPECT_EQ(oci::parse_kernel_version("6.8.0-45-generic"), (oci::kernel_version{6, 8}));
    EXPECT_EQ(oci::parse_kernel_version("5.10"), (oci::kernel_version{5, 10}));
    EXPECT_FALSE(oci::parse_kernel_version("6"));
    EXPECT_FALSE(oci::parse_kernel_version("x.1"));
    EXPECT_GE(oci::running_kernel_version(), (oci::kernel_version{3, 17}));
}

TEST(oci_seccomp, malformed_profiles_are_refused_naming_the_entry_and_field) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"([])", "linux.seccomp: is not an object"},
        {R"({})", "linux.seccomp: has no defaultAction"},
        {R"({"defaultAction": 1})", "linux.seccomp.defaultAction: is not a string"},
        {R"({"defaultAction": "SCMP_ACT_FOO"})", "linux.seccomp.defaultAction: unknown action 'SCMP_ACT_FOO'"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})",
         "linux.seccomp.defaultErrnoRet: is only meaningful with defaultAction SCMP_ACT_ERRNO"},
        {R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 0})", "linux.seccomp.defaultErrnoRet: 0 would"},
        {R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000})",
         "linux.seccomp.defaultErrnoRet: 5000 is not an errno"},
        {R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1})",
         "linux.seccomp.defaultErrnoRet: is not an unsigned 64-bit integer: -1"},
        {R"({"defaultAction": "SCMP_ACT_TRACE"})", "linux.seccomp.defaultAction: SCMP_ACT_TRACE"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"]})",
         "linux.seccomp.architectures[0]: unknown architecture 'SCMP_ARCH_FOO'"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [], "archMap": []})",
         "linux.seccomp: both architectures and archMap"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"subArchitectures": []}]})",
         "linux.seccomp.archMap[0]: has no architecture"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": [7]}]})",
         "linux.seccomp.archMap[0].subArchitectures[0]: is not a string"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]})",
         "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_TSYNC is not supported"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "BOGUS"]})",
         "linux.seccomp.flags[1]: unknown flag 'BOGUS'"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/listener.sock"})",
         "linux.seccomp.listenerPath: ctr does not support seccomp listeners"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}})", "linux.seccomp.syscalls: is not an array"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [1]})", "linux.seccomp.syscalls[0]: is not an object"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]})",
         "linux.seccomp.syscalls[0]: names no system call"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]})",
         "linux.seccomp.syscalls[0]: names no system call"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read", 1], "action": "SCMP_ACT_ALLOW"}]})",
         "linux.seccomp.syscalls[0].names[1]: is not a string"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_ALLOW"}]})",
         "linux.seccomp.syscalls[0].names[0]: is empty"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["read"], "action": "SCMP_ACT_ALLOW"}]})",
         "linux.seccomp.syscalls[0]: has both name and names"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]})",
         "linux.seccomp.syscalls[0]: has no action"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]})",
         "linux.seccomp.syscalls[1].action: unknown action 'SCMP_ACT_FOO'"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]})",
         "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs a seccomp listener"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_TRACE"}]})",
         "linux.seccomp.syscalls[0].action: SCMP_ACT_TRACE"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]})",
         "linux.seccomp.syscalls[0].errnoRet: is only meaningful with SCMP_ACT_ERRNO"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": "EPERM"}]})",
         "linux.seccomp.syscalls[0].errnoRet: is not an unsigned 64-bit integer"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": {}}]})",
         "linux.seccomp.syscalls[0].args: is not an array"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
         "linux.seccomp.syscalls[0].args[0].index: 6 is not an argument (0..5)"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1}]}]})",
         "linux.seccomp.syscalls[0].args[0]: has no op"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]})",
         "linux.seccomp.syscalls[0].args[0].op: unknown operator 'SCMP_CMP_FOO'"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1.5, "op": "SCMP_CMP_EQ"}]}]})",
         "linux.seccomp.syscalls[0].args[0].value: is not an unsigned 64-bit integer: 1.5"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "valueTwo": -3, "op": "SCMP_CMP_EQ"}]}]})",
         "linux.seccomp.syscalls[0].args[0].valueTwo: is not an unsigned 64-bit integer: -3"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 15, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}]}]})",
         "linux.seccomp.syscalls[0].args[0]: valueTwo has bits outside the mask"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": []}]})",
         "linux.seccomp.syscalls[0].includes: is not an object"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": "CAP_SYS_ADMIN"}}]})",
         "linux.seccomp.syscalls[0].includes.caps: is not an array"},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "new"}}]})",
         "linux.seccomp.syscalls[0].excludes.minKernel: 'new' is not a kernel version"},
        // An entry that does not apply here is checked all the same.
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_BAD", "includes": {"arches": ["s390x"]}}]})",
         "linux.seccomp.syscalls[0].action: unknown action 'SCMP_ACT_BAD'"},
    };
    for (const auto& [text, message] : cases) {
        try {
            from(json::parse(text));
            ADD_FAILURE() << "accepted: " << text;
        } catch (const oci::seccomp_error& e) {
            EXPECT_EQ(std::string(e.what()).substr(0, message.size()), message) << text << "\n  got: " << e.what();
        }
    }
}

TEST(oci_seccomp, profile_files_name_the_file_in_every_error) {
    ctr_test::temp_dir dir;
    const fs::path base = dir.path;
    const fs::path file = base / "profile.json";
    const auto expect_error = [&](const std::string& message) {
        try {
            oci::load_seccomp_profile(file, {});
            ADD_FAILURE() << "accepted " << file;
        } catch (const oci::seccomp_error& e) {
            EXPECT_EQ(std::string(e.what()).substr(0, message.size()), message) << e.what();
        }
    };
    expect_error(file.string() + ": cannot read it: No such file or directory");
    std::ofstream(file) << R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]})";
    expect_error(file.string() + ": syscalls[0].action: unknown action 'SCMP_ACT_FOO'");
    std::ofstream(file) << R"({"defaultAction": )";
    expect_error(file.string() + ": is not JSON: ");
    std::ofstream(file) << "";
    expect_error(file.string() + ": is not JSON: ");
    std::ofstream(file) << R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})";
    const auto filter = oci::load_seccomp_profile(file, {});
    const child_result r = run_child(filter.get(), [&](const reporter& out) {
        out.number(call(SYS_mkdir, reinterpret_cast<std::uint64_t>((base / "made").c_str()), 0700));
    });
    EXPECT_EQ(r.numbers(), std::vector<long>{-EACCES}) << r.describe();
    EXPECT_FALSE(fs::exists(base / "made"));
    const fs::path sub = base / "sub";
    fs::create_directory(sub);
    try {
        oci::load_seccomp_profile(sub, {});
        ADD_FAILURE() << "accepted a directory";
    } catch (const oci::seccomp_error& e) {
        EXPECT_EQ(std::string(e.what()), sub.string() + ": is not a regular file");
    }
}

}  // namespace
