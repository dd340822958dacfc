// ctr-run (ctr-run/) from the outside: its exit statuses, its
// messages, and what a command sees inside, as root and, where the suite
// runs as real root and the user ctrtest exists, as that unprivileged user.
#include "ctr_run_support.hpp"
#include "net_host.hpp"
#include "support.hpp"
#include "without_namespaces.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifdef CTR_RUN_BINARY

namespace {

using namespace ctr_run_test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Docker's PATH, the one ctr-run gives by default.
const std::string docker_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Why ctr-run's cgroup limits cannot be tried here (not real root, no
// group can be made, a controller is missing), or empty.
std::string cgroup_limits_blocker(std::initializer_list<const char*> controllers) {
    if (!ctr_test::real_root) return "cgroup limits need real root here";
    if (const auto& why = ctr_test::cgroup_blocker()) return std::string("cannot make cgroups here: ") + why->what();
    const auto layout = ctr::cgroup::detail::detect_cgroup_layout();
    for (const char* controller : controllers) {
        bool found = false;
        for (const auto& h : layout.hierarchies) found = found || (h.usable() && h.has(controller));
        if (!found) return std::string("no ") + controller + " controller to use here: " + layout.describe();
    }
    return {};
}

#define SKIP_WITHOUT_CGROUP_LIMITS(...) \
    if (const std::string why = cgroup_limits_blocker({__VA_ARGS__}); !why.empty()) GTEST_SKIP() << why

// The one line ctr-run printed about itself.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// The flags a test adds so that the sandbox's root may change the files it
// is given in `dir` as the caller would: none where ctr-run's binds keep
// their owners (idmapped, or the caller's own ids inside), `--userns host`
// where the filesystem cannot idmap (tmpfs before Linux 6.3, as in the VM
// lane) and root-owned files would show as nobody (docs/ctr-run.md).
std::vector<std::string> to_write_in(const fs::path& dir) {
    const auto r = run({"-v", dir.string() + ":/tmp/owner-probe:ro", "/bin/sh", "-c",
                        "stat -c %u /tmp/owner-probe 2>/dev/null || ls -dn /tmp/owner-probe"});
    struct stat st {};
    stat(dir.c_str(), &st);
    const std::string owner = std::to_string(st.st_uid);
    if (r.out == owner + "\n" || r.out.find(" " + owner + " ") != std::string::npos) return {};
    return {"--userns", "host"};
}

TEST(ctr_run, passes_the_exit_code_through) {
    const auto r = run({"/bin/sh", "-c", "exit 7"});
    EXPECT_EQ(r.status, 7) << r.err;
    EXPECT_EQ(r.err, "");
}

TEST(ctr_run, a_signal_gives_128_plus_its_number) {
    EXPECT_EQ(run({"/bin/sh", "-c", "kill -SEGV $$"}).status, 128 + SIGSEGV);
    EXPECT_EQ(run({"/bin/sh", "-c", "kill -TERM $$"}).status, 128 + SIGTERM);
}

TEST(ctr_run, a_timeout_gives_124) {
    const auto started = std::chrono::steady_clock::now();
    const auto r = run({"--timeout", "0.3", "sleep", "30"});
    EXPECT_EQ(r.status, 124) << r.err;
    EXPECT_TRUE(contains(r.err, "timed out")) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(ctr_run, a_missing_command_gives_127_and_one_that_cannot_run_126) {
    auto r = run({"no-such-command-here"});
    EXPECT_EQ(r.status, 127) << r.err;
    EXPECT_EQ(r.err, "ctr-run: exec 'no-such-command-here': No such file or directory\n");
    r = run({"/etc/passwd"});
    EXPECT_EQ(r.status, 126) << r.err;
    EXPECT_TRUE(contains(r.err, "exec '/etc/passwd'")) << r.err;
}

TEST(ctr_run, a_bad_rootfs_gives_125_naming_the_step_and_path) {
    const auto r = run({"--rootfs", "/no/such/rootfs", "/bin/sh"});
    EXPECT_EQ(r.status, 125) << r.err;
    EXPECT_TRUE(contains(r.err, "/no/such/rootfs")) << r.err;
    EXPECT_TRUE(contains(r.err, "No such file or directory")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
}

// Each command line is refused with exit status 125 and one line on stderr
// that starts with its message, and nothing on stdout.
void expect_usage_errors(const std::vector<std::pair<std::vector<std::string>, std::string>>& cases) {
    for (const auto& [args, message] : cases) {
        const auto r = run(args);
        EXPECT_EQ(r.status, 125) << message;
        EXPECT_EQ(r.err.substr(0, message.size()), message) << r.err;
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
        EXPECT_EQ(r.out, "");
    }
}

TEST(ctr_run, bad_flags_and_values_get_one_line_naming_the_flag) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--bogus", "true"}, "ctr-run: --bogus: unknown flag"},
        {{"-Z", "true"}, "ctr-run: -Z: unknown flag"},
        {{"--memory", "12q", "true"}, "ctr-run: --memory: '12q' is not a size"},
        {{"-m=lots", "true"}, "ctr-run: -m: 'lots' is not a size"},
        {{"--cpus", "-1", "true"}, "ctr-run: --cpus:"},
        {{"--pids-limit", "many", "true"}, "ctr-run: --pids-limit:"},
        {{"--timeout", "soon", "true"}, "ctr-run: --timeout: 'soon' is not a duration"},
        {{"-v", "/tmp", "true"}, "ctr-run: -v: '/tmp' is not SRC:DST"},
        {{"--volume", "/tmp:relative", "true"}, "ctr-run: --volume: the destination 'relative' must be an absolute path"},
        {{"--tmpfs", "/x:size=big", "true"}, "ctr-run: --tmpfs: 'big' is not a size"},
        {{"--tmpfs", "/x:bogus", "true"}, "ctr-run: --tmpfs: unknown tmpfs option 'bogus'"},
        {{"--network", "bridgeless", "true"}, "ctr-run: --network: 'bridgeless' is not none, host, veth or pasta"},
        {{"-p", "8080:80:80:80", "true"}, "ctr-run: -p: "},
        {{"--publish=8080:80/sctp", "true"}, "ctr-run: --publish: "},
        {{"-p", "99999:80", "true"}, "ctr-run: -p: "},
        {{"--network", "none", "-p", "8080:80", "true"}, "ctr-run: --publish: needs --network veth"},
        {{"-p", "8080:80", "--network=host", "true"}, "ctr-run: --publish: needs --network veth"},
        {{"--seccomp", "strict", "true"}, "ctr-run: --seccomp: 'strict' is not default or none"},
        {{"--cap-drop", "NOT_A_CAP", "true"}, "ctr-run: --cap-drop: 'NOT_A_CAP' is not a capability"},
        {{"--cap-add", "NET_ADMIN,", "true"}, "ctr-run: --cap-add: '' is not a capability"},
        {{"--cap-add", "", "true"}, "ctr-run: --cap-add: needs a capability name"},
        {{"--userns", "private", "true"}, "ctr-run: --userns: 'private' is not host"},
        {{"--security-opt", "label=disable", "true"},
         "ctr-run: --security-opt: 'label=disable' is not no-new-privileges[=true|false], seccomp=unconfined, "
         "seccomp=PROFILE.json or landlock=RULES"},
        {{"--security-opt", "seccomp=", "true"}, "ctr-run: --security-opt: 'seccomp=' names no profile file"},
        {{"--security-opt", "seccomp=/no/such/profile.json", "true"},
         "ctr-run: --security-opt: seccomp profile /no/such/profile.json: cannot read it: No such file or directory"},
        {{"--privileged=yes", "true"}, "ctr-run: --privileged: takes true or false, not 'yes'"},
        {{"--tty=on", "true"}, "ctr-run: --tty: takes true or false, not 'on'"},
        {{"-t=maybe", "true"}, "ctr-run: -t: takes true or false, not 'maybe'"},
        {{"-i=2", "true"}, "ctr-run: -i: takes true or false, not '2'"},
        {{"--interactive=", "true"}, "ctr-run: --interactive: takes true or false, not ''"},
        {{"--init", "--init=false", "true"}, "ctr-run: --init: contradicts --no-init (--init=false)"},
        {{"-u", "no-such-user", "true"}, "ctr-run: --user: no user 'no-such-user' in /etc/passwd"},
        {{"--network", "bridge", "true"}, "ctr-run: --network: 'bridge' is not supported: ctr-run has no bridge"},
        {{"--result", "yaml", "true"}, "ctr-run: --result: 'yaml' is not json"},
        {{"--memory-swap", "1g", "true"}, "ctr-run: --memory-swap: needs --memory as well"},
        {{"--memory"}, "ctr-run: --memory: needs a value"},
        {{"--no-init=yes", "true"}, "ctr-run: --no-init: takes true or false, not 'yes'"},
        {{}, "ctr-run: COMMAND: missing"},
    };
    expect_usage_errors(cases);
}

TEST(ctr_run, help_documents_every_flag_and_lists_the_refused_ones) {
    const auto r = run({"--help"});
    EXPECT_EQ(r.status, 0);
    for (const char* flag :
         {"--rootfs", "-h, --hostname", "--volume", "--tmpfs", "--overlay", "--workdir", "--env", "--env-file",
          "--env-host", "--clear-env", "--memory", "--memory-swap", "--cpus", "--pids-limit", "--cpuset-cpus",
          "--cpu-shares", "--network", "--publish", "--rootless", "--user", "--group-add", "--seccomp",
          "seccomp=PROFILE.json", "--landlock RULE", "landlock=RULE", "no-defaults", "--cap-add",
          "--cap-drop", "--timeout", "--init", "--no-init", "--result json", "--probe", "--read-only", "--mount",
          "--device", "--shm-size", "--ulimit", "--add-host", "--dns", "--dns-search", "--dns-option", "--dns-opt",
          "--domainname", "=true or =false", "--init=false",
          "--pid host", "--ipc host", "--uts host", "--entrypoint", "--name", "--stop-signal", "--stop-timeout",
          "--sig-proxy", "--tty", "--interactive", "--rm", "--version", "124", "125", "126", "127", "128+N",
          "--network none|host|veth|pasta", "package passt", "Docker flags ctr-run refuses", "-d/--detach",
          "no daemon", "--gpus", "--sysctl", "--memory-reservation", "--restart", "--health-cmd",
          "-P/--publish-all", "--network-alias", "--net-alias", "--use-api-socket"})
        EXPECT_TRUE(contains(r.out, flag)) << flag;
    EXPECT_FALSE(contains(r.out, "-h, --help")) << "-h is --hostname";
}

// --security-opt seccomp=FILE: Podman's profile in place of ctr's own. ctr's
// refuses unshare with EPERM, Podman's allows it (the capabilities decide),
// so what the command sees tells whose profile is in.
TEST(ctr_run, security_opt_seccomp_loads_a_docker_format_profile) {
    const std::string podman = "/usr/share/containers/seccomp.json";
    if (!fs::exists(podman)) GTEST_SKIP() << podman << " is absent (install podman)";
    const std::string script =
        "grep ^Seccomp: /proc/self/status; unshare -U true 2>/dev/null && echo unshare ran || echo unshare refused";
    auto r = run({"/bin/sh", "-c", script});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "Seccomp:\t2\nunshare refused\n") << "the default profile refuses unshare";
    r = run({"--security-opt", "seccomp=" + podman, "/bin/sh", "-c", script});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "Seccomp:\t2\nunshare ran\n") << r.err;
    // Podman's profile refuses vmsplice; the old spelling with a colon works too.
    r = run({"--security-opt", "seccomp:" + podman, "/bin/sh", "-c", "echo in; exit 3"});
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_EQ(r.out, "in\n");

    scratch dir;
    write_file(dir / "bad.json",
               R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]})");
    write_file(dir / "eacces.json",
               R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})");
    expect_usage_errors({{{"--security-opt", "seccomp=" + (dir / "bad.json").string(), "true"},
                          "ctr-run: --security-opt: seccomp profile " + (dir / "bad.json").string() +
                              ": syscalls[0].action: unknown action 'SCMP_ACT_FOO'"}});
    r = run({"--security-opt", "seccomp=" + (dir / "eacces.json").string(), "/bin/sh", "-c",
             "mkdir /tmp/made 2>&1 || echo refused"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "Permission denied")) << r.out;
    EXPECT_TRUE(contains(r.out, "refused")) << r.out;
    // unconfined after a profile switches the filter off, as the last flag says.
    r = run({"--security-opt", "seccomp=" + (dir / "eacces.json").string(), "--security-opt", "seccomp=unconfined",
             "/bin/sh", "-c", "grep ^Seccomp: /proc/self/status"});
    EXPECT_EQ(r.out, "Seccomp:\t0\n") << r.err;
}

TEST(ctr_run, probe_prints_one_feature_a_line) {
    const auto r = run({"--probe"});
    EXPECT_EQ(r.status, 0) << r.err;
    for (const char* line : {"kernel: ", "\nclone3: ", "\npidfd: ", "\nuser_namespaces: ", "\ncgroups: "})
        EXPECT_TRUE(contains(r.out, line)) << line << " in " << r.out;
}

TEST(ctr_run, result_json_has_every_field) {
    auto r = run({"--result", "json", "/bin/sh", "-c", "exit 3"});
    EXPECT_EQ(r.status, 3) << r.err;
    const std::string json = first_line(r.err);
    EXPECT_EQ(json.front(), '{');
    EXPECT_EQ(json.back(), '}');
    for (const char* field : {"\"exit_code\":3,", "\"signal\":null,", "\"timed_out\":false,", "\"oom_killed\":false,",
                              "\"wall_ms\":", "\"user_ms\":", "\"sys_ms\":", "\"memory_peak_bytes\":"})
        EXPECT_TRUE(contains(json, field)) << field << " in " << json;

    r = run({"--result=json", "--timeout=200ms", "sleep", "30"});
    EXPECT_EQ(r.status, 124);
    EXPECT_TRUE(contains(r.err, "\"timed_out\":true")) << r.err;
    EXPECT_TRUE(contains(r.err, "\"signal\":15")) << r.err;

    r = run({"--result", "json", "no-such-command-here"});
    EXPECT_EQ(r.status, 127);
    EXPECT_TRUE(contains(r.err, "\"exit_code\":null")) << r.err;
    EXPECT_TRUE(contains(r.err, "\"error\":\"exec 'no-such-command-here': No such file or directory\"")) << r.err;
}

TEST(ctr_run, a_memory_limit_kills_a_hog_and_says_so) {
    SKIP_WITHOUT_CGROUP_LIMITS("memory");
    // The probe helper touches 300 MiB; no shell tool whose options differ
    // between coreutils and busybox (the VM lane has busybox).
    // It may live below /tmp, which the sandbox replaces with its own: bind
    // its directory in.
    const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));
    const auto r = run({"--memory", "32m", "--memory-swap", "32m", "--result", "json", "-v",
                        helper_dir + ":" + helper_dir + ":ro", ctr_test::probe_helper, "alloc", "300"});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.err;
    EXPECT_TRUE(contains(r.err, "ctr-run: out of memory")) << r.err;
    EXPECT_TRUE(contains(r.err, "32 MiB")) << r.err;
    EXPECT_TRUE(contains(r.err, "\"oom_killed\":true")) << r.err;
}

TEST(ctr_run, resource_flags_reach_the_cgroup) {
    SKIP_WITHOUT_CGROUP_LIMITS("pids", "cpu", "cpuset");
    // The pids limit holds: the shell cannot start ten more processes.
    const std::string script = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done; wait; echo done";
    auto r = run({"--pids-limit", "8", "--cpus", "0.5", "--cpuset-cpus", "0", "/bin/sh", "-c", script});
    EXPECT_EQ(r.status, 2) << r.err;
    // dash says "Cannot fork", busybox sh "can't fork".
    EXPECT_TRUE(contains(r.err, "Cannot fork") || contains(r.err, "can't fork")) << r.err;
    r = run({"--cpus", "0.5", "--cpuset-cpus", "0", "/bin/sh", "-c", script});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "done\n");
}

TEST(ctr_run, the_default_root_is_the_hosts_read_only_with_private_tmp_proc_and_dev) {
    const auto r = run({"/bin/sh", "-c",
                        "touch /etc/ctr-run-test 2>/dev/null && echo etc=writable || echo etc=read-only; "
                        "ls /tmp | wc -l; echo $$; ls /proc | grep -c '^[0-9]'; ls /dev | tr '\\n' ' '"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "etc=read-only\n0\n2\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "null")) << r.out;
    EXPECT_FALSE(contains(r.out, "sda")) << r.out;
}

TEST(ctr_run, hostname_env_and_workdir) {
    auto r = run({"--hostname", "box", "-e", "GREETING=hi there", "-w", "/usr/bin", "/bin/sh", "-c",
                  "hostname; echo $GREETING; pwd"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "box\nhi there\n/usr/bin\n");
    r = run({"--clear-env", "-e", "ONLY=1", "/usr/bin/env"});
    EXPECT_EQ(r.out, "PATH=" + docker_path + "\nONLY=1\n");
}

TEST(ctr_run, stdin_and_stdout_pass_through) {
    const auto r = run({"-i", "/bin/sh", "-c", "tr a-z A-Z; echo to-stderr >&2"}, as::caller, "hello\n");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "HELLO\n");
    EXPECT_EQ(r.err, "to-stderr\n");
}

// As Docker's: without -i the command's stdin is not ctr-run's; it reads
// end-of-file, although ctr-run's own stdin has something to read.
TEST(ctr_run, without_i_stdin_reads_end_of_file) {
    const std::string script = "cat; echo end; readlink /proc/self/fd/0";
    auto r = run({"-i", "/bin/sh", "-c", script}, as::caller, "typed\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(r.out.starts_with("typed\nend\npipe:")) << r.out;
    r = run({"/bin/sh", "-c", script}, as::caller, "typed\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "end\n/dev/null\n");
    r = run({"--interactive=false", "/bin/sh", "-c", script}, as::caller, "typed\n");
    EXPECT_EQ(r.out, "end\n/dev/null\n") << r.err;
}

// Docker's =true and =false forms of the switches, through what the command
// sees.
TEST(ctr_run, switches_take_dockers_true_and_false) {
    EXPECT_EQ(run({"--rm=true", "/bin/echo", "kept"}).out, "kept\n");
    EXPECT_EQ(run({"--rm=false", "/bin/echo", "kept"}).out, "kept\n");
    const std::vector<std::string> pid = {"/bin/sh", "-c", "echo $$"};
    const auto with = [](std::vector<std::string> flags, const std::vector<std::string>& command) {
        flags.insert(flags.end(), command.begin(), command.end());
        return run(flags);
    };
    EXPECT_EQ(with({"--init=false"}, pid).out, "1\n") << "--init=false is --no-init";
    EXPECT_EQ(with({"--init=true"}, pid).out, "2\n");
    EXPECT_EQ(with({"--no-init=false"}, pid).out, "2\n");
    EXPECT_EQ(with({"--init", "--init=true"}, pid).out, "2\n");
    const std::vector<std::string> write_tmp = {"/bin/sh", "-c", "touch /tmp/x 2>/dev/null && echo rw || echo ro"};
    EXPECT_EQ(with({"--read-only=true"}, write_tmp).out, "ro\n");
    EXPECT_EQ(with({"--read-only=false"}, write_tmp).out, "rw\n");
    EXPECT_EQ(with({"--read-only", "--read-only=0"}, write_tmp).out, "rw\n") << "the last one counts";
    const std::vector<std::string> on_a_tty = {"/bin/sh", "-c", "[ -t 1 ] && echo tty || echo no-tty"};
    EXPECT_EQ(with({"-t=false"}, on_a_tty).out, "no-tty\n");
    EXPECT_EQ(with({"--tty=true"}, on_a_tty).out, "tty\r\n");
    EXPECT_EQ(with({"-t=1"}, on_a_tty).out, "tty\r\n");
    const std::vector<std::string> seccomp = {"/bin/sh", "-c", "grep ^Seccomp: /proc/self/status"};
    EXPECT_EQ(with({"--privileged=false"}, seccomp).out, "Seccomp:\t2\n");
    EXPECT_EQ(with({"--privileged=true"}, seccomp).out, "Seccomp:\t0\n");
    auto r = run({"-i=true", "/bin/cat"}, as::caller, "in\n");
    EXPECT_EQ(r.out, "in\n") << r.err;
    r = run({"-i=false", "/bin/cat"}, as::caller, "in\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(with({"--clear-env=true", "-e", "A=1"}, {"/usr/bin/env"}).out, "PATH=" + docker_path + "\nA=1\n");
}

TEST(ctr_run, no_init_runs_the_command_as_pid_1) {
    EXPECT_EQ(run({"/bin/sh", "-c", "echo $$"}).out, "2\n");
    EXPECT_EQ(run({"--no-init", "/bin/sh", "-c", "echo $$"}).out, "1\n");
}

TEST(ctr_run, network_none_has_only_lo) {
    const auto r = run({"/bin/sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"});
    EXPECT_EQ(r.out, "lo\n") << r.err;
}

TEST(ctr_run, user_switches_ids) {
    if (!ctr_test::real_root)
        GTEST_SKIP() << "ids other than 0 inside need a map of more than one id (real root); "
                        "the rootless cases below run ctr-run as a plain user instead";
    const auto r = run({"-u", "1234:567", "/bin/sh", "-c", "id -u; id -g; id -G"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "1234\n567\n567\n");
}

TEST(ctr_run, volumes_bind_read_only_or_writable) {
    scratch dir;
    write_file(dir / "in.txt", "from the host");
    auto r = run({"-v", dir.path.string() + ":/mnt:ro", "/bin/sh", "-c",
                  "cat /mnt/in.txt; echo; touch /mnt/new 2>/dev/null && echo writable || echo read-only"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "from the host\nread-only\n");
    EXPECT_FALSE(fs::exists(dir / "new"));
    auto args = to_write_in(dir.path);
    args.insert(args.end(), {"--volume", dir.path.string() + ":/tmp/data", "/bin/sh", "-c", "echo written > /tmp/data/new"});
    r = run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(read_file(dir / "new"), "written\n");
}

TEST(ctr_run, tmpfs_only_the_container_sees) {
    SKIP_WITHOUT_BUSYBOX();
    // The mount point /scratch is made in a skeleton of the rootfs's /, not
    // in the rootfs.
    const auto r = run({"--rootfs", busybox_rootfs(), "--tmpfs", "/scratch:size=1m", "/bin/sh", "-c",
                        "grep ' /scratch ' /proc/mounts | cut -d' ' -f1,3; echo x > /scratch/file && ls /scratch; "
                        "head -c 2000000 /dev/zero > /scratch/big 2>/dev/null || echo full"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "tmpfs tmpfs\nfile\nfull\n");
    EXPECT_FALSE(fs::exists(fs::path(busybox_rootfs()) / "scratch"));
}

// The names in a directory, each with d (a directory) or f (anything else).
std::map<std::string, char> names_in(const fs::path& dir) {
    std::map<std::string, char> out;
    for (const auto& e : fs::directory_iterator(dir)) out[e.path().filename().string()] = e.is_directory() ? 'd' : 'f';
    return out;
}

// As Docker, -w makes a directory the root lacks; like a mount point, in a
// skeleton: the host's / and the --rootfs directory are left as they were.
TEST(ctr_run, a_missing_workdir_is_made_inside_only) {
    scratch dir;
    const std::string workdir = "/ctr-run-test-" + dir.path.filename().string().substr(13) + "/sub";
    ASSERT_FALSE(fs::exists(workdir));
    const auto host_before = names_in("/");
    auto r = run({"-w", workdir, "/bin/sh", "-c", "pwd; touch made 2>/dev/null || echo read-only"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, workdir + "\nread-only\n");  // the skeleton is read-only, as the host's root is
    EXPECT_EQ(names_in("/"), host_before);
    SKIP_WITHOUT_BUSYBOX();
    const auto before = snapshot(busybox_rootfs());
    r = run({"--rootfs", busybox_rootfs(), "-w", "/work/a/b", "/bin/pwd"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "/work/a/b\n");
    EXPECT_EQ(snapshot(busybox_rootfs()), before);
}

// As Docker: a -v or --tmpfs destination the host's / lacks is made, inside
// only (a skeleton of /), and the host's / does not change.
TEST(ctr_run, missing_mount_points_without_rootfs_are_made_inside_only) {
    scratch dir;
    write_file(dir / "in.txt", "from the host");
    const std::string name = "ctr-run-test-" + dir.path.filename().string().substr(13);
    const std::string volume = "/" + name, tmpfs = "/" + name + "-tmpfs";
    ASSERT_FALSE(fs::exists(volume));
    ASSERT_FALSE(fs::exists(tmpfs));
    const auto before = names_in("/");
    const auto r = run({"-v", dir.path.string() + ":" + volume + ":ro", "--tmpfs", tmpfs, "--tmpfs", "/" + name +
                        "-deep/a/b", "--mount", "type=tmpfs,target=/" + name + "-mount", "--device",
                        "/dev/null:/" + name + "-dev/null", "/bin/sh", "-c",
                        "cat " + volume + "/in.txt; echo; echo x > " + tmpfs + "/f && cat " + tmpfs + "/f; "
                        "ls / | grep -c " + name + "; grep -c '^root:' /etc/passwd; echo hi > /dev/null && echo dev; "
                        "test -c /" + name + "-dev/null && echo device; grep -c ' /" + name + "-mount ' /proc/mounts; "
                        "touch /tmp/ok && echo tmp; touch /" + name + "-new 2>&1 | grep -o 'Read-only file system'; "
                        "grep -c ' " + volume + " ' /proc/mounts"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "from the host\nx\n5\n1\ndev\ndevice\n1\ntmp\nRead-only file system\n1\n");
    EXPECT_EQ(names_in("/"), before);
    EXPECT_FALSE(fs::exists(volume));
}

// The rootfs's copy: this test writes in it.
std::string fresh_busybox_rootfs(const scratch& dir) {
    const std::string target = dir / "rootfs";
    const std::string command = "'" + ctr_test::make_rootfs + "' '" + target + "' >/dev/null 2>&1";
    return std::system(command.c_str()) == 0 ? target : std::string();
}

#define SKIP_WITHOUT_LANDLOCK() \
    if (ctr::landlock::abi() == 0) GTEST_SKIP() << "this kernel has no Landlock, or it is disabled at boot"

std::vector<std::string> joined(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// --landlock over a root of the container's own: writes go only where the
// rules and the defaults (/tmp, /dev) allow, reads and programs everywhere.
// Each denial is first shown to succeed without the flag.
TEST(ctr_run, landlock_lets_the_command_write_only_where_asked) {
    SKIP_WITHOUT_LANDLOCK();
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    const std::string rootfs = fresh_busybox_rootfs(dir);
    ASSERT_FALSE(rootfs.empty());
    fs::create_directories(dir / "out");
    fs::create_directories(dir / "data");
    const auto base = joined(to_write_in(rootfs), {"--rootfs", rootfs, "-v", (dir / "out").string() + ":/out", "-v",
                                                   (dir / "data").string() + ":/data"});
    const auto sh = [&](std::vector<std::string> flags, const std::string& script) {
        return run(joined(joined(base, flags), {"/bin/sh", "-c", script}));
    };
    // A writable volume and the rootfs's own /etc: both writable without it...
    for (const std::string target : {"/data", "/etc"}) {
        const auto r = sh({}, "echo x > " + target + "/f && echo written");
        ASSERT_EQ(r.status, 0) << r.err;
        ASSERT_EQ(r.out, "written\n");
        const fs::path on_host = target == "/data" ? dir / "data/f" : fs::path(rootfs) / "etc/f";
        ASSERT_TRUE(fs::exists(on_host));
        fs::remove(on_host);
    }
    // ...and neither with rules that do not name them, by either spelling.
    for (const std::vector<std::string>& flags : {std::vector<std::string>{"--landlock", "rw=/out"},
                                                  std::vector<std::string>{"--security-opt", "landlock=rw=/out"}})
        for (const std::string target : {"/data", "/etc"}) {
            const auto r = sh(flags, "echo x > " + target + "/f && echo written");
            EXPECT_NE(r.status, 0) << flags[0] << " " << target;
            EXPECT_EQ(r.out, "");
            EXPECT_TRUE(contains(r.err, "Permission denied")) << r.err;
            EXPECT_FALSE(fs::exists(dir / "data/f"));
            EXPECT_FALSE(fs::exists(fs::path(rootfs) / "etc/f"));
        }
    // Inside the rules: the tree named, /tmp and /dev/null; reading and
    // running programs anywhere.
    const auto r = sh({"--landlock", "rw=/out"},
                      "mkdir /out/d && echo x > /out/d/f && mv /out/d/f /out/g && rm -r /out/d && echo t > /tmp/t && "
                      "cat /tmp/t && echo n > /dev/null && grep -c root /etc/passwd");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "t\n1\n");
    EXPECT_EQ(read_file(dir / "out/g"), "x\n");
}

// The rules hold for a command of another uid (-u) and for a rootless
// ctr-run: two volumes anyone may write, only the one named writable.
TEST(ctr_run, landlock_holds_for_another_uid_and_rootless) {
    SKIP_WITHOUT_LANDLOCK();
    const bool as_uid = ctr_test::real_root;
    const bool rootless = !unprivileged_ctr_run().empty();
    if (!as_uid && !rootless) GTEST_SKIP() << "needs real root (for -u, and the user ctrtest for a rootless run)";
    scratch dir;
    for (const char* name : {"out", "data"}) {
        fs::create_directories(dir / name);
        fs::permissions(dir / name, fs::perms::all);
    }
    const std::vector<std::string> volumes = {"-v", (dir / "out").string() + ":/out", "-v",
                                              (dir / "data").string() + ":/data"};
    const auto write_in = [&](std::vector<std::string> flags, const std::string& target, as who) {
        flags.insert(flags.begin(), volumes.begin(), volumes.end());
        flags.insert(flags.end(), {"/bin/sh", "-c", "echo x > " + target + "/f && echo written"});
        return run(flags, who);
    };
    std::vector<std::pair<std::vector<std::string>, as>> cases;
    if (as_uid) cases.push_back({{"-u", "65534:65534"}, as::caller});
    if (rootless) cases.push_back({{}, as::unprivileged});
    for (const auto& [flags, who] : cases) {
        const std::string which = who == as::caller ? "-u 65534" : "rootless";
        auto r = write_in(flags, "/data", who);
        ASSERT_EQ(r.out, "written\n") << which << ": " << r.err;
        fs::remove(dir / "data/f");
        auto confined = flags;
        confined.insert(confined.end(), {"--landlock", "rw=/out"});
        r = write_in(confined, "/data", who);
        EXPECT_NE(r.status, 0) << which;
        EXPECT_TRUE(contains(r.err, "Permission denied")) << which << ": " << r.err;
        EXPECT_FALSE(fs::exists(dir / "data/f")) << which;
        r = write_in(confined, "/out", who);
        EXPECT_EQ(r.out, "written\n") << which << ": " << r.err;
        fs::remove(dir / "out/f");
    }
}

// no-defaults: only the paths given, reads too.
TEST(ctr_run, landlock_no_defaults_keeps_only_the_rules_given) {
    SKIP_WITHOUT_LANDLOCK();
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    fs::create_directories(dir / "src");
    write_file(dir / "src/in", "source\n");
    const std::vector<std::string> base = {"--rootfs", busybox_rootfs(), "-v", (dir / "src").string() + ":/src:ro"};
    const std::string script = "cat /src/in; grep -q root /etc/group && echo group read";
    auto r = run(joined(base, {"--landlock", "ro=/etc", "/bin/sh", "-c", script}));
    ASSERT_EQ(r.status, 0) << r.err;
    ASSERT_EQ(r.out, "source\ngroup read\n") << "the defaults read everything";
    r = run(joined(base, {"--landlock", "no-defaults,rx=/bin", "--landlock", "ro=/src", "/bin/sh", "-c", script}));
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(r.out, "source\n");
    EXPECT_TRUE(contains(r.err, "Permission denied")) << r.err;
}

// connect=PORT and bind=PORT: the only TCP ports, in the sandbox's own
// network (nothing listens there, so an allowed connect is refused by the
// peer, a denied one by Landlock).
TEST(ctr_run, landlock_ports_are_the_only_tcp_ports) {
    if (ctr::landlock::abi() < 4) GTEST_SKIP() << "TCP rules need Landlock ABI 4; this kernel has " << ctr::landlock::abi();
    const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));
    const auto helper = [&](std::vector<std::string> flags, const std::string& mode, const std::string& port) {
        flags.insert(flags.end(), {"-v", helper_dir + ":" + helper_dir + ":ro", ctr_test::probe_helper, mode, port});
        const auto r = run(flags);
        EXPECT_EQ(r.status, 0) << r.err;
        return r.out;
    };
    ASSERT_EQ(helper({}, "tcp-connect", "8081"), "Connection refused\n");
    ASSERT_EQ(helper({}, "tcp-bind", "8081"), "ok\n");
    const std::vector<std::string> rules = {"--landlock", "connect=8080,bind=8080"};
    EXPECT_EQ(helper(rules, "tcp-connect", "8081"), "Permission denied\n");
    EXPECT_EQ(helper(rules, "tcp-bind", "8081"), "Permission denied\n");
    EXPECT_EQ(helper(rules, "tcp-connect", "8080"), "Connection refused\n");
    EXPECT_EQ(helper(rules, "tcp-bind", "8080"), "ok\n");
}

TEST(ctr_run, bad_landlock_rules_get_one_line_naming_the_flag) {
    const std::string forms = "ro=PATH, rx=PATH, rw=PATH, rwx=PATH, connect=PORT, bind=PORT, defaults or no-defaults";
    expect_usage_errors({
        {{"--landlock", "", "true"}, "ctr-run: --landlock: needs Landlock rules (" + forms + ")"},
        {{"--landlock", "rz=/data", "true"}, "ctr-run: --landlock: 'rz=/data' is not a Landlock rule (" + forms + ")"},
        {{"--landlock", "/data", "true"}, "ctr-run: --landlock: '/data' is not a Landlock rule"},
        {{"--landlock", "rw=data", "true"},
         "ctr-run: --landlock: 'rw=data': the path 'data' must be an absolute path, as the sandbox sees it"},
        {{"--landlock", "rw=", "true"}, "ctr-run: --landlock: 'rw=': the path '' must be an absolute path"},
        {{"--landlock", "ro=/a,,rw=/b", "true"}, "ctr-run: --landlock: '' is not a Landlock rule"},
        {{"--landlock", "connect=https", "true"}, "ctr-run: --landlock: 'connect=https': 'https' is not a TCP port"},
        {{"--landlock", "bind=70000", "true"}, "ctr-run: --landlock: 'bind=70000': '70000' is not a TCP port"},
        {{"--security-opt", "landlock=", "true"}, "ctr-run: --security-opt: needs Landlock rules"},
        {{"--security-opt", "landlock=ro", "true"}, "ctr-run: --security-opt: 'ro': the path '' must be an absolute path"},
        {{"--landlock", "rw=/tmp", "--privileged", "true"}, "ctr-run: --landlock: does not go with --privileged"},
    });
    SKIP_WITHOUT_LANDLOCK();
    expect_usage_errors({{{"--landlock", "no-defaults", "true"}, "ctr-run: --landlock: no-defaults leaves no rule"}});
    // A path the sandbox lacks: the library's error, naming it.
    const auto r = run({"--landlock", "rw=/no/such/dir", "true"});
    EXPECT_EQ(r.status, 125) << r.err;
    EXPECT_TRUE(contains(r.err, "'/no/such/dir'")) << r.err;
    EXPECT_TRUE(contains(r.err, "create it or drop the rule")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
}

// With --rootfs, missing mount points go in tmpfs skeletons of the rootfs's
// directories, not in the rootfs directory; what the skeletons cover is all
// there, and what was writable (the rootfs is used in place) still is.
TEST(ctr_run, missing_mount_points_in_a_rootfs_go_in_a_skeleton_not_in_the_rootfs) {
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    const std::string rootfs = fresh_busybox_rootfs(dir);
    ASSERT_FALSE(rootfs.empty());
    fs::create_directories(dir / "src");
    write_file(dir / "src/in.txt", "volume");
    write_file(fs::path(rootfs) / "etc/motd", "kept\n");
    const auto before = snapshot(rootfs);
    auto args = to_write_in(rootfs);
    args.insert(args.end(), {"--rootfs", rootfs, "-v", (dir / "src").string() + ":/a/b/c", "--tmpfs", "/mytemp",
                             "-v", (dir / "src").string() + ":/etc/conf.d/x:ro", "/bin/sh", "-c",
                             "cat /a/b/c/in.txt; echo; echo t > /mytemp/f && cat /mytemp/f; cat /etc/motd; "
                             "grep -c '^root:' /etc/passwd; cat /etc/conf.d/x/in.txt; echo; ls /a/b; "
                             "ls /bin/busybox; echo w > /tmp/written && echo written"});
    const auto r = run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "volume\nt\nkept\n1\nvolume\nc\n/bin/busybox\nwritten\n");
    // One change, the file written in the rootfs's own /tmp; no mount point.
    auto expected = before;
    expected["tmp/written"] = "file w\n";
    EXPECT_EQ(snapshot(rootfs), expected);
}

// With --read-only the skeletons are read-only too, as is all they cover.
TEST(ctr_run, a_read_only_rootfs_keeps_its_skeletons_read_only) {
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    write_file(dir / "in.txt", "volume");
    const auto before = snapshot(busybox_rootfs());
    const auto r = run({"--rootfs", busybox_rootfs(), "--read-only", "-v", dir.path.string() + ":/a/b/c", "--tmpfs",
                        "/mytemp", "-v", dir.path.string() + ":/etc/new/x", "/bin/sh", "-c",
                        "cat /a/b/c/in.txt; echo; echo t > /mytemp/f && cat /mytemp/f; head -1 /etc/passwd; "
                        "for p in /new /a/new /etc/new-file /etc/passwd /bin/new /tmp/new; do "
                        "touch $p 2>&1 | grep -o 'Read-only file system'; done"});
    EXPECT_EQ(r.status, 0) << r.err;
    std::string read_only;
    for (int i = 0; i < 6; ++i) read_only += "Read-only file system\n";
    EXPECT_EQ(r.out, "volume\nt\nroot:x:0:0:root:/root:/bin/sh\n" + read_only);
    EXPECT_EQ(snapshot(busybox_rootfs()), before);
}

TEST(ctr_run, busybox_rootfs_has_its_own_hostname_pids_and_proc) {
    SKIP_WITHOUT_BUSYBOX();
    const auto r = run({"--rootfs", busybox_rootfs(), "--hostname", "box", "/bin/sh", "-c",
                        "hostname; echo $$; ls /proc | grep '^[0-9]' | tr '\\n' ' '; ls /bin/busybox"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "box\n2\n1 2 ")) << r.out;
    EXPECT_TRUE(contains(r.out, "/bin/busybox")) << r.out;
}

TEST(ctr_run, read_only_rootfs) {
    SKIP_WITHOUT_BUSYBOX();
    const auto r = run({"--rootfs", busybox_rootfs(), "--read-only", "/bin/sh", "-c",
                        "touch /x 2>/dev/null && echo writable || echo read-only"});
    EXPECT_EQ(r.out, "read-only\n") << r.err;
}

TEST(ctr_run, overlay_leaves_the_layers_and_the_rootfs_unchanged) {
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    fs::create_directories(dir / "app/etc");
    write_file(dir / "app/etc/motd", "from the app layer\n");
    write_file(dir / "app/hello", "app\n");
    const auto rootfs_before = snapshot(busybox_rootfs());
    const auto layer_before = snapshot(dir / "app");
    // As root the sandbox has a user namespace of its own: the layers are
    // idmapped, so root inside may change what root owns on disk (in its
    // upper layer only).
    auto args = to_write_in(busybox_rootfs());
    args.insert(args.end(), {"--rootfs", busybox_rootfs(), "--overlay", (dir / "app").string(), "/bin/sh", "-c",
                             "cat /etc/motd; echo changed > /hello; rm /bin/ls; echo new > /new; mkdir /d; "
                             "cat /hello; ls /bin/ls 2>/dev/null || echo ls-gone"});
    const auto r = run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "from the app layer\nchanged\nls-gone\n");
    EXPECT_EQ(snapshot(busybox_rootfs()), rootfs_before);
    EXPECT_EQ(snapshot(dir / "app"), layer_before);
    // The upper layer is gone too.
    for (const char* base : {"/dev/shm", "/tmp"})
        for (const auto& e : fs::directory_iterator(base))
            EXPECT_FALSE(e.path().filename().string().starts_with("ctr-run-overlay.")) << e.path();
}

TEST(ctr_run, signals_to_ctr_run_reach_the_command) {
    namespace p = ctr::process;
    auto child = p::spawn({ctr_run, "/bin/sh", "-c", "trap 'echo got TERM; exit 9' TERM; echo ready; "
                                                     "while :; do sleep 0.1; done"},
                          {.std_in = p::stdio::null(), .std_out = p::stdio::pipe(), .timeout = 30s});
    char buffer[16] = {};
    pollfd ready{child.std_out().get(), POLLIN, 0};
    ASSERT_EQ(poll(&ready, 1, 20000), 1) << "no 'ready' from the command";
    ASSERT_GT(read(child.std_out().get(), buffer, sizeof buffer - 1), 0);
    EXPECT_STREQ(buffer, "ready\n");
    child.signal(SIGTERM);
    std::string rest;
    for (ssize_t n; poll(&ready, 1, 20000) == 1 && (n = read(child.std_out().get(), buffer, sizeof buffer)) > 0;)
        rest.append(buffer, static_cast<std::size_t>(n));
    const auto r = child.wait();
    EXPECT_EQ(r.exit_code, 9);
    EXPECT_EQ(rest, "got TERM\n");
}

// ---- networking (in the test's own network namespace, which plays the host)

// Connects to 127.0.0.1:port, retrying while the far end comes up, sends
// `request` and returns the whole answer.
std::string fetch(int port, const std::string& request) {
    for (int attempt = 0; attempt < 200; ++attempt) {
        // Until the server inside listens, the relay accepts and then
        // resets: an empty answer means "not yet".
        const auto answer = ctr_test::tcp_exchange(in_addr{htonl(INADDR_LOOPBACK)}, port, request);
        if (answer && !answer->empty()) return *answer;
        std::this_thread::sleep_for(50ms);
    }
    return {};
}


TEST(ctr_run, veth_network_gives_eth0_an_address_and_a_default_route) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    const auto r = run({"--rootfs", busybox_rootfs(), "--network", "veth", "/bin/sh", "-c",
                        "ip -4 -o addr show dev eth0 | awk '{print $4}'; ip route | grep default"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "10.231.")) << r.out;
    EXPECT_TRUE(contains(r.out, "/30\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "default via 10.231.")) << r.out;
}

TEST(ctr_run, publish_serves_a_page_from_inside) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    SKIP_WITHOUT_BUSYBOX();
    scratch www;
    write_file(www / "index.html", "hello from the sandbox\n");
    namespace p = ctr::process;
    // The mount point /www is made in the rootfs by the sandbox's root.
    std::vector<std::string> args{ctr_run};
    for (auto& flag : to_write_in(busybox_rootfs())) args.push_back(flag);
    args.insert(args.end(), {"--rootfs", busybox_rootfs(), "-p", "127.0.0.1:18080:80", "-v",
                             www.path.string() + ":/www:ro", "httpd", "-f", "-p", "80", "-h", "/www"});
    auto server = p::spawn(args,
                           {.std_in = p::stdio::null(), .std_out = p::stdio::capture(), .std_err = p::stdio::capture(),
                            .timeout = 60s});
    const std::string answer = fetch(18080, "GET / HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(contains(answer, "200 OK")) << answer;
    EXPECT_TRUE(contains(answer, "hello from the sandbox")) << answer;
    server.signal(SIGTERM);
    const auto r = server.wait();
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.std_err;
    EXPECT_FALSE(r.timed_out);
}

TEST(ctr_run, a_published_udp_port_answers) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    namespace p = ctr::process;
    // The probe helper answers each datagram; its directory may be below
    // /tmp, which the sandbox replaces: bind it in.
    const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));
    auto server = p::spawn({ctr_run, "-p", "127.0.0.1:18053:53/udp", "-v", helper_dir + ":" + helper_dir + ":ro",
                            ctr_test::probe_helper, "udp-echo", "53"},
                           {.std_in = p::stdio::null(), .std_out = p::stdio::capture(), .std_err = p::stdio::capture(),
                            .timeout = 60s});
    const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(18053);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval wait_limit{0, 200000};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &wait_limit, sizeof wait_limit);
    std::string answer;
    for (int attempt = 0; attempt < 100 && answer.empty(); ++attempt) {
        sendto(s, "ping\n", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        char buffer[64];
        const ssize_t n = recv(s, buffer, sizeof buffer, 0);
        if (n > 0) answer.assign(buffer, static_cast<std::size_t>(n));
    }
    close(s);
    EXPECT_EQ(answer, "got ping\n");
    server.signal(SIGTERM);
    server.wait();
}

// A TCP socket listening on 127.0.0.1:port (in the test's own network
// namespace), or -1.
int listening_on_loopback(int port) {
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(static_cast<std::uint16_t>(port));
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || listen(s, 1) != 0) {
        if (s >= 0) close(s);
        return -1;
    }
    return s;
}

TEST(ctr_run, a_busy_published_port_fails_before_the_command_runs) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const int busy = listening_on_loopback(18081);
    ASSERT_GE(busy, 0) << std::strerror(errno);
    const auto r = run({"-p", "127.0.0.1:18081:80", "echo", "should not run"});
    close(busy);
    EXPECT_EQ(r.status, 125);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "ctr-run: publish port '127.0.0.1:18081/tcp' (bind): Address already in use\n");
}

// A range publishes each of its ports: the second one, busy, is the one
// named, before the command runs.
TEST(ctr_run, a_published_port_range_binds_each_port) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const int busy = listening_on_loopback(18083);
    ASSERT_GE(busy, 0) << std::strerror(errno);
    const auto r = run({"-p", "127.0.0.1:18082-18084:80-82", "echo", "should not run"});
    close(busy);
    EXPECT_EQ(r.status, 125);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "ctr-run: publish port '127.0.0.1:18083/tcp' (bind): Address already in use\n");
}

TEST(ctr_run, bad_port_ranges_get_one_line_with_the_reason) {
    const std::pair<const char*, const char*> cases[] = {
        {"8000-8003:80-81", "must be ranges of the same length"},
        {"8000-8003:80", "the host ports (4) and the container ports (1) must be ranges of the same length"},
        {"8003-8000:80-83", "ends before it starts"},
        {"8000-:80-81", "must be FIRST-LAST"},
        {"8000-8001:0-1", "the container port must be a number from 1 to 65535"},
    };
    for (const auto& [spec, reason] : cases) {
        const auto r = run({"-p", spec, "true"});
        EXPECT_EQ(r.status, 125) << spec << ": " << r.err;
        EXPECT_EQ(r.err.rfind("ctr-run: -p: ", 0), 0u) << r.err;
        EXPECT_TRUE(contains(r.err, reason)) << r.err;
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
        EXPECT_EQ(r.out, "");
    }
}

// A pty the test holds: ctr-run sees a terminal on stdin and stdout, and
// with -it the shell gets a pty of its own with that window size.
TEST(ctr_run, an_interactive_shell_gets_a_pty_with_the_window_size) {
    const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(master, 0);
    ctr::unique_fd master_fd(master);
    ASSERT_EQ(grantpt(master), 0);
    ASSERT_EQ(unlockpt(master), 0);
    const ctr::unique_fd slave(open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC));
    ASSERT_TRUE(slave);
    winsize size{};
    size.ws_row = 40;
    size.ws_col = 100;
    ioctl(master, TIOCSWINSZ, &size);

    namespace p = ctr::process;
    auto child = p::spawn({ctr_run, "-it", "/bin/sh"},
                          {.std_in = p::stdio::from_fd(slave.get()),
                           .std_out = p::stdio::from_fd(slave.get()),
                           .std_err = p::stdio::from_fd(slave.get()),
                           .timeout = 30s,
                           .new_session = true,
                           .controlling_terminal = true});
    const std::string input = "stty size; tty >/dev/null && echo is-a-tty; echo h''i; exit 3\n";
    ASSERT_EQ(write(master, input.data(), input.size()), static_cast<ssize_t>(input.size()));
    std::string output;
    char buffer[4096];
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd fds[2] = {{master, POLLIN, 0}, {child.pidfd(), POLLIN, 0}};
        poll(fds, 2, 100);
        if (fds[0].revents & POLLIN) {
            const ssize_t n = read(master, buffer, sizeof buffer);
            if (n > 0) output.append(buffer, static_cast<std::size_t>(n));
        }
        if (fds[1].revents) break;
    }
    const auto r = child.wait();
    EXPECT_EQ(r.exit_code, 3) << output;
    EXPECT_TRUE(contains(output, "40 100")) << output;
    EXPECT_TRUE(contains(output, "is-a-tty")) << output;
    EXPECT_TRUE(contains(output, "hi\r\n")) << output;
}

// ---- Docker's defaults and flags (issue 12) ----------------------------------

TEST(ctr_run, the_environment_is_dockers_not_the_callers) {
    setenv("CTR_RUN_TEST_CALLERS_SECRET", "leaked", 1);
    auto r = run({"-h", "box", "/usr/bin/env"});
    EXPECT_EQ(r.status, 0) << r.err;
    // As root and in the rootless lane the sandbox's user is root, whose
    // home the host's /etc/passwd (the sandbox's, without --rootfs) names.
    EXPECT_EQ(r.out, "PATH=" + docker_path + "\nHOSTNAME=box\nHOME=/root\n");
    // -t adds TERM (the command's output then comes through a pty).
    r = run({"-t", "-h", "box", "/bin/sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty; echo TERM=$TERM"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "on-a-tty\r\nTERM=xterm\r\n");
    // --env-host is the explicit way to pass the caller's environment.
    r = run({"--env-host", "/bin/sh", "-c", "echo $CTR_RUN_TEST_CALLERS_SECRET"});
    EXPECT_EQ(r.out, "leaked\n") << r.err;
    unsetenv("CTR_RUN_TEST_CALLERS_SECRET");
}

TEST(ctr_run, env_file_then_e_and_clear_env_keeps_path) {
    scratch dir;
    write_file(dir / "env", "# a comment\n\nA=from the file\nB=file\n  C=indented\n");
    auto r = run({"--env-file", (dir / "env").string(), "-e", "B=flag", "--clear-env", "/usr/bin/env"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "PATH=" + docker_path + "\nA=from the file\nB=flag\nC=indented\n");
    // A command found through PATH without the caller's PATH.
    r = run({"--clear-env", "sh", "-c", "echo found"});
    EXPECT_EQ(r.out, "found\n") << r.err;
}

TEST(ctr_run, dash_h_is_the_hostname_and_version_prints_a_line) {
    auto r = run({"-h", "box", "hostname"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "box\n");
    r = run({"-hbox2", "hostname"});
    EXPECT_EQ(r.out, "box2\n") << r.err;
    r = run({"--version"});
    EXPECT_EQ(r.status, 0);
    EXPECT_TRUE(r.out.starts_with("ctr-run version ")) << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
    r = run({"-h"});
    EXPECT_EQ(r.status, 125);
    EXPECT_EQ(r.err, "ctr-run: -h: needs a value (see ctr-run --help)\n");
}

TEST(ctr_run, cpus_and_cpuset_beyond_this_machine_are_refused_naming_what_there_is) {
    std::ifstream online_file("/sys/devices/system/cpu/online");
    std::string online;
    std::getline(online_file, online);
    const long count = sysconf(_SC_NPROCESSORS_ONLN);
    auto r = run({"--cpus", std::to_string(count + 1), "true"});
    EXPECT_EQ(r.status, 125);
    EXPECT_TRUE(contains(r.err, "ctr-run: --cpus: '" + std::to_string(count + 1) + "' is more than this machine has"))
        << r.err;
    EXPECT_TRUE(contains(r.err, "as there are only " + std::to_string(count) + " CPUs available")) << r.err;
    r = run({"--cpuset-cpus", "4000", "true"});
    EXPECT_EQ(r.status, 125);
    EXPECT_TRUE(contains(r.err, "ctr-run: --cpuset-cpus: CPU 4000 is not available: the CPUs here are ")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(ctr_run, docker_flags_it_lacks_are_refused_by_name_with_125) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"-d", "true"}, "ctr-run: -d: not supported: ctr-run has no daemon"},
        {{"--detach", "true"}, "ctr-run: --detach: not supported: ctr-run has no daemon"},
        {{"-dit", "true"}, "ctr-run: -d: not supported: ctr-run has no daemon"},
        {{"--gpus", "all", "true"}, "ctr-run: --gpus: not supported"},
        {{"--sysctl", "net.ipv4.ip_forward=1", "true"}, "ctr-run: --sysctl: not supported"},
        {{"--memory-reservation", "1g", "true"}, "ctr-run: --memory-reservation: not supported"},
        {{"--restart=always", "true"}, "ctr-run: --restart: not supported"},
        {{"-P", "true"}, "ctr-run: -P: not supported"},
        {{"--cidfile", "/tmp/x", "true"}, "ctr-run: --cidfile: not supported"},
        {{"--health-cmd", "true", "true"}, "ctr-run: --health-cmd: not supported"},
        {{"--log-driver", "json-file", "true"}, "ctr-run: --log-driver: not supported"},
        {{"--ip", "10.0.0.2", "true"}, "ctr-run: --ip: not supported"},
        {{"-l", "a=b", "true"}, "ctr-run: -l: not supported"},
        {{"--pull", "always", "true"}, "ctr-run: --pull: not supported"},
        {{"--network-alias", "db", "true"}, "ctr-run: --network-alias: not supported: ctr-run has no user-defined "
                                            "networks and no DNS server to answer to an alias"},
        {{"--net-alias=db", "true"}, "ctr-run: --net-alias: not supported: ctr-run has no user-defined networks"},
        {{"--use-api-socket", "true"}, "ctr-run: --use-api-socket: not supported: ctr-run has no daemon"},
        // A refused switch is refused whatever its value.
        {{"-d=false", "true"}, "ctr-run: -d: not supported: ctr-run has no daemon"},
        {{"--detach=true", "true"}, "ctr-run: --detach: not supported: ctr-run has no daemon"},
    };
    expect_usage_errors(cases);
}

TEST(ctr_run, init_is_pid_1_with_a_short_name) {
    const auto r = run({"--init", "/bin/sh", "-c", "cat /proc/1/comm; tr -d '\\0' < /proc/1/cmdline; echo; echo $$"});
    EXPECT_EQ(r.status, 0) << r.err;
    // Neither ctr-run's path nor its arguments: what ps shows is the name.
    EXPECT_EQ(r.out, "ctr-init\nctr-init\n2\n");
}

// The host's /etc/hosts and /etc/resolv.conf, which --add-host and --dns bind
// over without a --rootfs (the VM lane's initramfs may lack them, and its
// read-only root cannot get mount points).
#define SKIP_WITHOUT_HOST_RESOLVER_FILES()                                    \
    if (!fs::exists("/etc/hosts") || !fs::exists("/etc/resolv.conf"))         \
    GTEST_SKIP() << "the host has no /etc/hosts or /etc/resolv.conf to bind over"

TEST(ctr_run, add_host_and_dns_write_no_file_of_the_host_or_the_rootfs) {
    SKIP_WITHOUT_HOST_RESOLVER_FILES();
    const std::string hosts_before = read_file("/etc/hosts"), resolv_before = read_file("/etc/resolv.conf");
    const auto r = run({"--add-host", "db.test:198.51.100.7", "--add-host=v6.test:[2001:db8::1]", "--dns",
                        "198.51.100.53", "--dns-search", "example.test", "--dns-option", "ndots:2", "--dns-opt", "timeout:1",
                        "/bin/sh", "-c",
                        "grep -E '(db|v6)[.]test' /etc/hosts; grep -E '^(nameserver|search|options)' /etc/resolv.conf; "
                        "echo x > /etc/hosts 2>/dev/null || echo read-only"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "198.51.100.7\tdb.test\n2001:db8::1\tv6.test\nnameserver 198.51.100.53\nsearch example.test\n"
                     "options ndots:2 timeout:1\nread-only\n");
    EXPECT_EQ(read_file("/etc/hosts"), hosts_before);
    EXPECT_EQ(read_file("/etc/resolv.conf"), resolv_before);
    // The private directory is gone with the run.
    for (const char* base : {"/dev/shm", "/tmp"}) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(base, ec))
            EXPECT_FALSE(e.path().filename().string().starts_with("ctr-run-files.")) << e.path();
    }
}

TEST(ctr_run, add_host_with_a_rootfs_lacking_etc_hosts_gets_one_in_a_skeleton_not_in_the_rootfs) {
    SKIP_WITHOUT_BUSYBOX();
    ASSERT_FALSE(fs::exists(fs::path(busybox_rootfs()) / "etc/hosts"));
    const auto before = snapshot(busybox_rootfs());
    const auto r = run({"--rootfs", busybox_rootfs(), "--add-host", "db:198.51.100.7", "--dns", "198.51.100.53",
                        "/bin/sh", "-c", "grep db /etc/hosts; cat /etc/resolv.conf; grep -c ^root: /etc/passwd"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "198.51.100.7\tdb\nnameserver 198.51.100.53\n1\n");
    EXPECT_EQ(snapshot(busybox_rootfs()), before);
}

TEST(ctr_run, mount_ulimit_shm_size_device_and_read_only_take_effect_inside) {
    scratch dir;
    write_file(dir / "in.txt", "bound");
    auto r = run({"--mount", "type=bind,source=" + dir.path.string() + ",target=/tmp/b,readonly", "--mount",
                  "type=tmpfs,target=/tmp/t,tmpfs-size=1m", "/bin/sh", "-c",
                  "cat /tmp/b/in.txt; echo; touch /tmp/b/new 2>/dev/null || echo ro; "
                  "grep ' /tmp/t ' /proc/mounts | grep -o 'size=1024k'"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "bound\nro\nsize=1024k\n");

    r = run({"--ulimit", "nofile=100:200", "--ulimit", "core=0", "/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "100\n200\n0\n");

    r = run({"--shm-size", "8m", "/bin/sh", "-c", "grep ' /dev/shm ' /proc/mounts | tail -n 1 | grep -o 'size=8192k'"});
    EXPECT_EQ(r.out, "size=8192k\n") << r.err;

    r = run({"--device", "/dev/null:/dev/ctr-null", "/bin/sh", "-c",
             "test -c /dev/ctr-null && echo hi > /dev/ctr-null && echo device"});
    EXPECT_EQ(r.out, "device\n") << r.err;

    // --read-only without --rootfs: the private /tmp is read-only too.
    r = run({"--read-only", "/bin/sh", "-c", "touch /tmp/x 2>/dev/null && echo writable || echo read-only"});
    EXPECT_EQ(r.out, "read-only\n") << r.err;
}

TEST(ctr_run, entrypoint_domainname_and_host_namespaces) {
    auto r = run({"--entrypoint", "/bin/echo", "--", "hello", "world"});
    EXPECT_EQ(r.out, "hello world\n") << r.err;
    r = run({"--domainname", "example.test", "/bin/sh", "-c", "cat /proc/sys/kernel/domainname"});
    EXPECT_EQ(r.out, "example.test\n") << r.err;

    const auto link = [](const char* kind) { return fs::read_symlink(std::string("/proc/self/ns/") + kind).string(); };
    // One readlink per link: busybox's (the VM lane's) takes one file.
    r = run({"/bin/sh", "-c", "for k in uts ipc pid; do readlink /proc/self/ns/$k; done"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(contains(r.out, link("uts"))) << r.out;
    EXPECT_FALSE(contains(r.out, link("ipc"))) << r.out;
    EXPECT_FALSE(contains(r.out, link("pid"))) << r.out;
    r = run({"--uts", "host", "--ipc", "host", "--pid", "host", "/bin/sh", "-c",
             "for k in uts ipc pid; do readlink /proc/self/ns/$k; done; cat /proc/1/comm"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, link("uts") + "\n" + link("ipc") + "\n" + link("pid") + "\n")) << r.out;
    EXPECT_FALSE(contains(r.out, "ctr-init")) << "pid 1 is the host's: " << r.out;
}

TEST(ctr_run, user_names_come_from_the_sandboxs_passwd_and_group) {
    if (!ctr_test::real_root)
        GTEST_SKIP() << "ids other than 0 inside need a map of more than one id (real root)";
    SKIP_WITHOUT_BUSYBOX();
    // The host view: the host's /etc/passwd, where Debian has nobody.
    outcome r;
    if (contains(read_file("/etc/passwd"), "\nnobody:x:65534:65534:nobody:/nonexistent:")) {
        r = run({"-u", "nobody", "/bin/sh", "-c", "id -u; echo $HOME"});
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(r.out, "65534\n/nonexistent\n");
    }
    // A rootfs of the test's own with users and groups that the host lacks.
    scratch dir;
    const std::string rootfs = (dir / "rootfs").string();
    ASSERT_EQ(std::system(("'" + ctr_test::make_rootfs + "' '" + rootfs + "' >/dev/null 2>&1").c_str()), 0);
    std::ofstream(rootfs + "/etc/passwd", std::ios::app) << "ctr-app:x:1234:567:app:/home/app:/bin/sh\n";
    std::ofstream(rootfs + "/etc/group", std::ios::app) << "ctr-staff:x:567:\nctr-extra:x:890:ctr-app\nctr-more:x:891:\n";
    r = run({"--rootfs", rootfs, "-u", "ctr-app", "--group-add", "ctr-more", "--group-add", "42", "/bin/sh", "-c",
             "id -u; id -g; id -G; echo $HOME"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "1234\n567\n567 42 890 891\n/home/app\n");
    r = run({"--rootfs", rootfs, "-u", "1234:ctr-extra", "/bin/sh", "-c", "id -u; id -g"});
    EXPECT_EQ(r.out, "1234\n890\n") << r.err;
    r = run({"--rootfs", rootfs, "-u", "nobody-here", "true"});
    EXPECT_EQ(r.status, 125);
    EXPECT_TRUE(contains(r.err, "ctr-run: --user: no user 'nobody-here' in /etc/passwd of the --rootfs")) << r.err;
}

// Runs ctr-run with args in the background until its command prints
// "ready"; the caller signals and waits.
ctr::process::child start_until_ready(std::vector<std::string> args, std::string& rest) {
    namespace p = ctr::process;
    args.insert(args.begin(), ctr_run);
    auto child = p::spawn(args, {.std_in = p::stdio::null(), .std_out = p::stdio::pipe(), .timeout = 30s});
    pollfd ready{child.std_out().get(), POLLIN, 0};
    char buffer[64] = {};
    if (poll(&ready, 1, 20000) == 1) {
        const ssize_t n = read(child.std_out().get(), buffer, sizeof buffer - 1);
        if (n > 0) rest.assign(buffer, static_cast<std::size_t>(n));
    }
    return child;
}

std::string read_rest(ctr::process::child& child) {
    std::string rest;
    char buffer[64];
    pollfd more{child.std_out().get(), POLLIN, 0};
    for (ssize_t n; poll(&more, 1, 20000) == 1 && (n = read(child.std_out().get(), buffer, sizeof buffer)) > 0;)
        rest.append(buffer, static_cast<std::size_t>(n));
    return rest;
}

TEST(ctr_run, a_name_is_held_by_one_run_at_a_time) {
    const std::string name = "ctr-run-test-" + std::to_string(getpid());
    std::string first;
    auto holder = start_until_ready({"--name", name, "/bin/sh", "-c", "echo ready; sleep 30"}, first);
    ASSERT_EQ(first, "ready\n");
    auto r = run({"--name", name, "true"});
    EXPECT_EQ(r.status, 125);
    EXPECT_TRUE(contains(r.err, "ctr-run: --name: '" + name + "' is in use by the ctr-run with pid " +
                                    std::to_string(holder.pid())))
        << r.err;
    holder.signal(SIGKILL);
    holder.wait();
    r = run({"--name", name, "echo", "free again"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "free again\n");
}

TEST(ctr_run, stop_signal_and_stop_timeout_shape_a_sigterm_to_ctr_run) {
    std::string first;
    auto child = start_until_ready({"--stop-signal", "USR1", "/bin/sh", "-c",
                                    "trap 'echo got USR1; exit 4' USR1; echo ready; while :; do sleep 0.1; done"},
                                   first);
    ASSERT_EQ(first, "ready\n");
    child.signal(SIGTERM);
    EXPECT_EQ(read_rest(child), "got USR1\n");
    EXPECT_EQ(child.wait().exit_code, 4);

    // A command that ignores the stop signal is killed --stop-timeout later.
    auto stubborn = start_until_ready(
        {"--stop-timeout", "1", "/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"}, first);
    ASSERT_EQ(first, "ready\n");
    stubborn.signal(SIGTERM);
    const auto r = stubborn.wait();
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 128 + SIGKILL);
}

TEST(ctr_run, cpu_shares_reach_the_cgroup) {
    SKIP_WITHOUT_CGROUP_LIMITS("cpu");
    // The group's cpu.weight or cpu.shares, read from the outside while the
    // command runs: its cgroup namespace hides the path from the inside.
    std::string first;
    auto child = start_until_ready({"-c", "512", "/bin/sh", "-c", "echo ready; sleep 30"}, first);
    ASSERT_EQ(first, "ready\n");
    std::string found;
    for (const auto& task : fs::directory_iterator("/proc")) {
        std::ifstream status(task.path() / "status");
        std::string line, ppid;
        while (std::getline(status, line))
            if (line.starts_with("PPid:")) ppid = line.substr(line.find_first_not_of(" \t", 5));
        if (ppid != std::to_string(child.pid())) continue;
        std::ifstream cgroups(task.path() / "cgroup");
        for (std::string entry; std::getline(cgroups, entry);) {
            const auto path = entry.substr(entry.find(':', entry.find(':') + 1) + 1);
            for (const std::string& file : {"/sys/fs/cgroup" + path + "/cpu.weight",
                                           "/sys/fs/cgroup/cpu" + path + "/cpu.shares",
                                           "/sys/fs/cgroup/cpu,cpuacct" + path + "/cpu.shares"})
                if (fs::exists(file) && path != "/") found = file + "=" + read_file(file);
        }
    }
    // SIGTERM, which ctr-run passes on and then removes its group; a
    // SIGKILLed ctr-run would leave the group to the next run's reap_stale.
    child.signal(SIGTERM);
    child.wait();
    // 512 shares are half the default: weight 50 (v2) or shares 512 (v1).
    EXPECT_TRUE(found.ends_with("cpu.weight=50\n") || found.ends_with("cpu.shares=512\n")) << found;
}

TEST(ctr_run, install_puts_ctr_run_in_prefix_bin) {
#ifdef CTR_BINARY_DIR
    // The build tree, where the install rules are and where cmake --install
    // writes its manifest: not there in the VM lane, not writable in the
    // rootless lane.
    if (access((std::string(CTR_BINARY_DIR) + "/cmake_install.cmake").c_str(), R_OK) != 0 ||
        access(CTR_BINARY_DIR, W_OK) != 0 || access("/usr/bin/cmake", X_OK) != 0)
        GTEST_SKIP() << "needs the build tree " << CTR_BINARY_DIR << ", writable, and cmake";
    scratch prefix;
    namespace p = ctr::process;
    auto r = p::spawn({"cmake", "--install", CTR_BINARY_DIR, "--prefix", prefix.path.string()},
                      {.std_in = p::stdio::null(), .std_out = p::stdio::capture(), .std_err = p::stdio::capture(),
                       .timeout = 120s})
                 .wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_out << r.std_err;
    const auto installed = prefix / "bin/ctr-run";
    ASSERT_TRUE(fs::exists(installed)) << r.std_out;
    r = p::spawn({installed.string(), "--version"}, {.std_out = p::stdio::capture()}).wait();
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(r.std_out.starts_with("ctr-run version ")) << r.std_out;
#else
    GTEST_SKIP() << "built without CTR_BINARY_DIR";
#endif
}

// ctr-run under a pty the test holds, as a user at a terminal runs it:
// what it printed there, its exit status, and whether the terminal's mode
// was the same after it as before (ctr-run sets it raw while it relays).
struct terminal_outcome {
    int status = -1;
    std::string output;
    bool mode_restored = false;
};

// The same, driven a step at a time: wait for text, type, resize. Every
// wait reads with a generous deadline and says whether the text came; none
// measures time.
class terminal_session {
public:
    terminal_session(std::vector<std::string> args, unsigned short rows, unsigned short columns,
                     as who = as::caller) {
        const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0) return;
        master_.reset(master);
        if (grantpt(master) != 0 || unlockpt(master) != 0) return;
        slave_.reset(open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC));
        if (!slave_) return;
        resize(rows, columns);
        tcgetattr(slave_.get(), &before_);
        if (who == as::unprivileged)
            args.insert(args.begin(), {"runuser", "-u", "ctrtest", "--", unprivileged_ctr_run()});
        else args.insert(args.begin(), ctr_run);
        namespace p = ctr::process;
        child_.emplace(p::spawn(args, {.std_in = p::stdio::from_fd(slave_.get()),
                                       .std_out = p::stdio::from_fd(slave_.get()),
                                       .std_err = p::stdio::from_fd(slave_.get()),
                                       .timeout = 60s,
                                       .new_session = true,
                                       .controlling_terminal = true}));
    }

    bool started() const { return child_.has_value(); }
    const std::string& output() const { return output_; }

    // Reads until `text` appears after what the last wait matched; false
    // when 25 s pass or ctr-run ends first.
    bool wait_for(const std::string& text) {
        const auto deadline = std::chrono::steady_clock::now() + 25s;
        for (;;) {
            if (const auto at = output_.find(text, matched_); at != std::string::npos) {
                matched_ = at + text.size();
                return true;
            }
            if (!child_ || std::chrono::steady_clock::now() >= deadline) return false;
            if (!read_some(100) && ended_) return false;
        }
    }

    void type(const std::string& input) {
        [[maybe_unused]] const ssize_t n = write(master_.get(), input.data(), input.size());
    }

    // As a terminal emulator does: the kernel sends SIGWINCH to the
    // terminal's foreground process group, ctr-run.
    void resize(unsigned short rows, unsigned short columns) {
        winsize size{};
        size.ws_row = rows;
        size.ws_col = columns;
        ioctl(master_.get(), TIOCSWINSZ, &size);
    }

    // The caller's terminal's mode now.
    termios mode() const {
        termios now{};
        tcgetattr(slave_.get(), &now);
        return now;
    }

    // Reads until ctr-run has ended and what it wrote before is read, then
    // its status.
    terminal_outcome finish() {
        terminal_outcome result;
        if (!child_) return result;
        const auto deadline = std::chrono::steady_clock::now() + 25s;
        while (std::chrono::steady_clock::now() < deadline)
            if (!read_some(100) && ended_) break;
        const auto r = child_->wait();
        result.status = r.exit_code ? *r.exit_code : 128 + r.signal.value_or(0);
        result.output = output_;
        const termios after = mode();
        result.mode_restored = before_.c_lflag == after.c_lflag && before_.c_iflag == after.c_iflag &&
                               before_.c_oflag == after.c_oflag &&
                               std::memcmp(before_.c_cc, after.c_cc, sizeof before_.c_cc) == 0;
        return result;
    }

private:
    // Waits up to `ms` for output and appends it; false when none came.
    // Notes when ctr-run has ended.
    bool read_some(int ms) {
        pollfd fds[2] = {{master_.get(), POLLIN, 0}, {child_->pidfd(), POLLIN, 0}};
        poll(fds, 2, ms);
        if (fds[1].revents) ended_ = true;
        if (!(fds[0].revents & POLLIN)) return false;
        char buffer[4096];
        const ssize_t n = read(master_.get(), buffer, sizeof buffer);
        if (n <= 0) return false;
        output_.append(buffer, static_cast<std::size_t>(n));
        return true;
    }

    ctr::unique_fd master_, slave_;
    termios before_{};
    std::optional<ctr::process::child> child_;
    std::string output_;
    std::size_t matched_ = 0;
    bool ended_ = false;
};

terminal_outcome run_at_a_terminal(std::vector<std::string> args, unsigned short rows, unsigned short columns,
                                   as who = as::caller) {
    return terminal_session(std::move(args), rows, columns, who).finish();
}

// -t: the pty is made inside the sandbox, in its own devpts, so `tty` names
// it as under `docker run -t`; it has the caller's window size, it is the
// shell's controlling terminal, and the caller's terminal gets its mode back.
TEST(ctr_run, tty_gives_a_pty_of_the_sandboxs_own_devpts) {
    std::vector<std::vector<std::string>> roots = {{}};
    if (!busybox_rootfs().empty()) roots.push_back({"--rootfs", busybox_rootfs()});
    for (const auto& root : roots) {
        std::vector<std::string> args = {"-t"};
        args.insert(args.end(), root.begin(), root.end());
        args.insert(args.end(), {"/bin/sh", "-c", "tty; stty size; ls /dev/pts | tr '\\n' ' '; exit 4"});
        const auto r = run_at_a_terminal(args, 41, 99);
        EXPECT_EQ(r.status, 4) << r.output;
        EXPECT_TRUE(contains(r.output, "/dev/pts/0\r\n41 99\r\n0 ptmx ")) << r.output;
        EXPECT_TRUE(r.mode_restored) << "the caller's terminal is left in raw mode";
    }
}

// As Docker's: without -t no pty is made, even when ctr-run runs at a
// terminal; without -i the command's stdin is /dev/null there too. The same
// script under -t first shows what a pty looks like.
TEST(ctr_run, without_t_there_is_no_pty_even_at_a_terminal) {
    const std::string script =
        "tty; ls /dev/pts | tr '\\n' ' '; echo; [ -t 0 ] && echo stdin-is-a-terminal; readlink /proc/self/fd/0; exit 4";
    auto r = run_at_a_terminal({"-t", "/bin/sh", "-c", script}, 24, 80);
    EXPECT_EQ(r.status, 4) << r.output;
    EXPECT_TRUE(contains(r.output, "/dev/pts/0\r\n0 ptmx \r\nstdin-is-a-terminal\r\n/dev/pts/0\r\n")) << r.output;
    r = run_at_a_terminal({"/bin/sh", "-c", script}, 24, 80);
    EXPECT_EQ(r.status, 4) << r.output;
    EXPECT_TRUE(contains(r.output, "not a tty\r\nptmx \r\n/dev/null\r\n")) << r.output;
    EXPECT_TRUE(r.mode_restored);
    // -i alone: the caller's terminal itself, passed through; still no pty
    // of the sandbox's.
    r = run_at_a_terminal({"-i", "/bin/sh", "-c", script}, 24, 80);
    EXPECT_EQ(r.status, 4) << r.output;
    EXPECT_TRUE(contains(r.output, "not a tty\r\nptmx \r\nstdin-is-a-terminal\r\n")) << r.output;
}

// -t without -i: the output comes through the pty, but what is typed does
// not go in (the command's read waits until --timeout ends it), and the
// caller's terminal stays in its own mode, so ^C would reach ctr-run. With
// -it, the terminal is raw and the typed line arrives.
TEST(ctr_run, t_without_i_relays_output_but_not_what_is_typed) {
    const std::vector<std::string> command = {"/bin/sh", "-c", "echo ready; read -r line; echo got:$line"};
    std::vector<std::string> args = {"-it"};
    args.insert(args.end(), command.begin(), command.end());
    terminal_session it(args, 24, 80);
    ASSERT_TRUE(it.started());
    ASSERT_TRUE(it.wait_for("ready")) << it.output();
    EXPECT_FALSE(it.mode().c_lflag & ICANON) << "-it: the caller's terminal is raw while ctr-run relays";
    it.type("typed\n");
    EXPECT_TRUE(it.wait_for("got:typed")) << it.output();
    auto r = it.finish();
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(r.mode_restored);

    args = {"-t", "--timeout", "3"};
    args.insert(args.end(), command.begin(), command.end());
    terminal_session t(args, 24, 80);
    ASSERT_TRUE(t.started());
    ASSERT_TRUE(t.wait_for("ready")) << t.output();
    EXPECT_TRUE(t.mode().c_lflag & ICANON) << "-t alone leaves the caller's terminal as it was";
    t.type("typed\n");
    r = t.finish();
    EXPECT_EQ(r.status, 124) << r.output;
    EXPECT_FALSE(contains(r.output, "got:")) << r.output;
    EXPECT_TRUE(r.mode_restored);
}

// ctr-run's own relay of the window size: the test resizes its terminal
// (the kernel sends ctr-run SIGWINCH), ctr-run sets the new size on the
// sandbox's pty, whose kernel sends the command SIGWINCH; its trap prints
// the size it then sees.
TEST(ctr_run, a_resized_terminal_reaches_the_command_with_sigwinch) {
    terminal_session s({"-t", "/bin/sh", "-c",
                        "trap 'stty size; exit 7' WINCH; stty size; echo ready; "
                        "i=0; while [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done"},
                       24, 80);
    ASSERT_TRUE(s.started());
    ASSERT_TRUE(s.wait_for("24 80\r\nready")) << s.output();
    s.resize(50, 120);
    const auto r = s.finish();
    EXPECT_EQ(r.status, 7) << "the trap did not run: no SIGWINCH inside\n" << r.output;
    EXPECT_TRUE(contains(r.output, "ready\r\n50 120\r\n")) << r.output;
}

// Job control in an interactive shell under -it: ^Z stops the foreground
// job, fg brings it back, and it reads the terminal again. Each step waits
// for what the previous one printed.
TEST(ctr_run, ctrl_z_and_fg_work_in_an_interactive_shell) {
    terminal_session s({"-it", "/bin/sh"}, 24, 80);
    ASSERT_TRUE(s.started());
    s.type("tr a-z A-Z\n");
    s.type("ping\n");
    ASSERT_TRUE(s.wait_for("PING")) << s.output();  // tr runs in the foreground
    s.type("\x1a");                                 // ^Z
    ASSERT_TRUE(s.wait_for("Stopped")) << s.output();
    // The shell reads a line at a time (canonical mode): "fg", then tr,
    // back in the foreground, reads "pong".
    s.type("fg\n");
    s.type("pong\n");
    EXPECT_TRUE(s.wait_for("PONG")) << s.output();
    s.type("\x04");  // ^D: tr reads end-of-file and ends
    s.type("exit 5\n");
    const auto r = s.finish();
    EXPECT_EQ(r.status, 5) << r.output;
    EXPECT_TRUE(r.mode_restored);
}

// ---- as an unprivileged user ------------------------------------------------

TEST(ctr_run, rootless_tty_gives_a_pty_of_the_sandboxs_own_devpts) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    const auto r = run_at_a_terminal({"-t", "/bin/sh", "-c", "tty; stty size; id -u"}, 30, 70, as::unprivileged);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "/dev/pts/0\r\n30 70\r\n0\r\n")) << r.output;
    EXPECT_TRUE(r.mode_restored);
}

TEST(ctr_run, rootless_busybox_has_root_inside_its_own_hostname_and_pids) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    SKIP_WITHOUT_BUSYBOX();
    const auto r = run({"--rootfs", busybox_rootfs(), "--hostname", "box", "/bin/sh", "-c",
                        "hostname; id -u; echo $$; ls /proc | grep '^[0-9]' | tr '\\n' ' '"},
                       as::unprivileged);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "box\n0\n2\n1 2 ")) << r.out << r.err;
}

TEST(ctr_run, rootless_veth_says_it_needs_root_and_points_to_pasta) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const auto r = run({"--network", "veth", "true"}, as::unprivileged);
    EXPECT_EQ(r.status, 125) << r.err;
    EXPECT_TRUE(contains(r.err, "ctr-run: --network: a veth pair needs root")) << r.err;
    EXPECT_TRUE(contains(r.err, "--network pasta (package passt)")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
}

// ---- pasta, in a host network namespace of the test's own (net_host.hpp):
// ctr-run is started from the thread that is in it, so pasta sees only that.

TEST(ctr_run, network_pasta_reaches_the_hosts_server) {
    CTR_SKIP_WITHOUT_PASTA();
    ctr_test::test_host host;
    ctr_test::one_shot_server server(ctr_test::test_host::server_address, 7300);
    const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));
    const auto r = run({"--network", "pasta", "-v", helper_dir + ":" + helper_dir + ":ro", ctr_test::probe_helper,
                        "tcp-ask", ctr_test::test_host::server_address.to_string(), "7300", "hi"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "host got hi\n") << r.err;
}

// A veth's traffic is masqueraded out of the host's default route: the
// server behind the test's router sees the host's address (net_host.hpp's
// small internet; nat_test.cpp has the library's side).
TEST(ctr_run, veth_reaches_a_server_beyond_the_host_masqueraded) {
    CTR_SKIP_WITHOUT_NFTABLES();
    ctr_test::small_internet net;
    std::thread server = net.serve_one();
    const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));
    const auto r = run({"--network", "veth", "-v", helper_dir + ":" + helper_dir + ":ro", ctr_test::probe_helper,
                        "tcp-send", ctr_test::small_internet::server_address.to_string(),
                        std::to_string(ctr_test::small_internet::server_port), "hi"});
    net.stop_serving();
    server.join();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "server saw " + ctr_test::small_internet::host_uplink.address.to_string()) << r.err;
    EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
}

// -p by DNAT: a client on another machine (the router's namespace) reaches
// the server inside through the host's port, and the server sees that
// client's own address (a relay would show its own); no line about a relay,
// and no ctr table left after the run.
TEST(ctr_run, publish_shows_the_server_its_clients_own_address) {
    CTR_SKIP_WITHOUT_NFT_DNAT();
    ctr_test::small_internet net;
    namespace p = ctr::process;
    const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));
    auto server = p::spawn({ctr_run, "-p", "18090:80", "-v", helper_dir + ":" + helper_dir + ":ro",
                            ctr_test::probe_helper, "tcp-peer", "80", "1"},
                           {.std_in = p::stdio::null(), .std_out = p::stdio::pipe(), .std_err = p::stdio::capture(),
                            .timeout = 60s});
    ASSERT_EQ(ctr_test::read_line_of(server.std_out().get()), "listening\n");
    std::string answer;
    std::thread client([&] {
        ctr::ns::scope in_router({ctr::ns::existing::fd(ctr::ns::network, net.router.get())});
        answer = ctr_test::tcp_exchange(ctr_test::small_internet::host_uplink.address.to_in_addr(), 18090, "hi\n")
                     .value_or("(no connection)");
    });
    client.join();
    EXPECT_EQ(answer, "saw " + ctr_test::small_internet::router_downlink.address.to_string() + "\n");
    const auto r = server.wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
    EXPECT_EQ(r.std_err, "");
    EXPECT_FALSE(ctr::net::detail::nftables_socket::open().table_exists("ctr"));
}

TEST(ctr_run, network_pasta_publishes_a_port) {
    CTR_SKIP_WITHOUT_PASTA();
    ctr_test::test_host host;
    namespace p = ctr::process;
    const std::string helper_dir = ctr_test::probe_helper.substr(0, ctr_test::probe_helper.rfind('/'));
    auto server = p::spawn({ctr_run, "--network", "pasta", "-p", "7301:7000", "-v", helper_dir + ":" + helper_dir + ":ro",
                            ctr_test::probe_helper, "tcp-echo", "7000"},
                           {.std_in = p::stdio::null(), .std_out = p::stdio::pipe(), .std_err = p::stdio::capture(),
                            .timeout = 60s});
    std::string line;
    char c = 0;
    while (line.find('\n') == std::string::npos && read(server.std_out().get(), &c, 1) == 1) line += c;
    ASSERT_EQ(line, "listening\n");
    const auto reply = ctr_test::tcp_exchange(ctr::net::ipv4_address::parse("198.51.100.1").to_in_addr(), 7301, "ping");
    EXPECT_EQ(reply.value_or("(no connection)"), "ping");
    const auto r = server.wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
}

TEST(ctr_run, rootless_publish_goes_through_pasta) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    SKIP_WITHOUT_BUSYBOX();
    CTR_SKIP_WITHOUT_PASTA();
    ctr_test::test_host host;
    scratch www;
    write_file(www / "index.html", "hello through pasta\n");
    namespace p = ctr::process;
    auto server = p::spawn({"runuser", "-u", "ctrtest", "--", unprivileged_ctr_run(), "--rootfs", busybox_rootfs(),
                            "-p", "7302:80", "-v", www.path.string() + ":/www:ro", "httpd", "-f", "-p", "80", "-h",
                            "/www"},
                           {.std_in = p::stdio::null(), .std_out = p::stdio::capture(), .std_err = p::stdio::capture(),
                            .timeout = 60s});
    // pasta listens before the sandbox starts; httpd a moment later: until
    // then a connection is reset and the answer is empty.
    std::string answer;
    for (int attempt = 0; attempt < 200 && answer.empty(); ++attempt) {
        answer = ctr_test::tcp_exchange(ctr::net::ipv4_address::parse("198.51.100.1").to_in_addr(), 7302,
                                        "GET / HTTP/1.0\r\n\r\n")
                     .value_or("");
        if (answer.empty()) std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(contains(answer, "200 OK")) << answer;
    EXPECT_TRUE(contains(answer, "hello through pasta")) << answer;
    server.signal(SIGTERM);
    const auto r = server.wait();
    EXPECT_FALSE(r.timed_out) << r.std_err;
}

TEST(ctr_run, network_pasta_without_pasta_names_the_package) {
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    namespace p = ctr::process;
    auto child = p::spawn({ctr_run, "--network", "pasta", "/bin/true"},
                          {.env = {.set = {{"PATH", "/nonexistent"}}},
                           .std_in = p::stdio::null(),
                           .std_out = p::stdio::capture(),
                           .std_err = p::stdio::capture(),
                           .timeout = 60s});
    const auto r = child.wait();
    EXPECT_EQ(r.exit_code, 125);
    EXPECT_EQ(r.std_err, "ctr-run: --network: pasta is not installed: install the package passt (apt-get install "
                         "passt, dnf install passt)\n");
}

TEST(ctr_run, rootless_default_root_exit_statuses_and_tmpfs) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    auto r = run({"--tmpfs", "/mnt:size=1m", "/bin/sh", "-c", "echo x > /mnt/f && cat /mnt/f; id -u; exit 5"},
                 as::unprivileged);
    EXPECT_EQ(r.status, 5) << r.err;
    EXPECT_EQ(r.out, "x\n0\n");
    EXPECT_EQ(run({"/bin/no-such-command-here"}, as::unprivileged).status, 127);
    EXPECT_EQ(run({"/bin/sh", "-c", "kill -SEGV $$"}, as::unprivileged).status, 128 + SIGSEGV);
    EXPECT_EQ(run({"--timeout", "0.2", "sleep", "30"}, as::unprivileged).status, 124);
    r = run({"--rootfs", "/no/such/rootfs", "true"}, as::unprivileged);
    EXPECT_EQ(r.status, 125);
    EXPECT_TRUE(contains(r.err, "/no/such/rootfs")) << r.err;
}

TEST(ctr_run, rootless_overlay_leaves_the_rootfs_unchanged) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    fs::create_directories(dir / "app");
    write_file(dir / "app/hello", "app\n");
    const auto rootfs_before = snapshot(busybox_rootfs());
    const auto r = run({"--rootfs", busybox_rootfs(), "--overlay", (dir / "app").string(), "/bin/sh", "-c",
                        "cat /hello; echo new > /new; rm /bin/ls; cat /new"},
                       as::unprivileged);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "app\nnew\n");
    EXPECT_EQ(snapshot(busybox_rootfs()), rootfs_before);
}

TEST(ctr_run, rootless_gets_dockers_environment_names_hosts_and_user_names) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    auto r = run({"-h", "box", "/usr/bin/env"}, as::unprivileged);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "PATH=" + docker_path + "\nHOSTNAME=box\nHOME=/root\n");
    if (fs::exists("/etc/hosts") && fs::exists("/etc/resolv.conf")) {
        r = run({"--add-host", "db.test:198.51.100.7", "--dns", "198.51.100.53", "/bin/sh", "-c",
                 "grep db.test /etc/hosts; grep ^nameserver /etc/resolv.conf"},
                as::unprivileged);
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(r.out, "198.51.100.7\tdb.test\nnameserver 198.51.100.53\n");
    }
    // A name, looked up in the host's /etc/passwd, mapped through the user's
    // subordinate range (tests/run-rootless gives ctrtest one).
    if (contains(read_file("/etc/passwd"), "\nnobody:x:65534:")) {
        r = run({"-u", "nobody", "id", "-u"}, as::unprivileged);
        EXPECT_TRUE(r.status == 0 ? r.out == "65534\n" : contains(r.err, "ctr-run: ")) << r.out << r.err;
    }
    r = run({"--name", "ctr-run-rootless-test", "echo", "named"}, as::unprivileged);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "named\n");
}

// The limit docs/ctr-run.md states: rootless, the sandbox's root is the
// caller, so the rootfs's root-owned directories (shown as nobody) stay
// read-only under --overlay, while the overlay's own new entries work.
TEST(ctr_run, rootless_overlay_on_a_root_owned_rootfs_keeps_its_directories_read_only) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    fs::create_directories(dir / "app");
    struct stat bin {};
    ASSERT_EQ(stat((fs::path(busybox_rootfs()) / "bin").c_str(), &bin), 0);
    ASSERT_EQ(bin.st_uid, 0u) << "the test's rootfs belongs to root";
    const auto r = run({"--rootfs", busybox_rootfs(), "--overlay", (dir / "app").string(), "/bin/sh", "-c",
                        "touch /bin/x 2>&1; echo new > /new && cat /new"},
                       as::unprivileged);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "touch: /bin/x: Permission denied\nnew\n")) << r.out;
}

TEST(ctr_run, rootless_missing_mount_points_go_in_skeletons_of_a_root_owned_rootfs_and_the_host) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    SKIP_WITHOUT_BUSYBOX();
    scratch dir;
    write_file(dir / "in.txt", "volume");
    const auto before = snapshot(busybox_rootfs());
    auto r = run({"--rootfs", busybox_rootfs(), "-v", dir.path.string() + ":/a/b/c:ro", "--tmpfs", "/mytemp", "-v",
                  dir.path.string() + ":/etc/new/x:ro", "/bin/sh", "-c",
                  "cat /a/b/c/in.txt /etc/new/x/in.txt; echo; echo t > /mytemp/f && cat /mytemp/f; "
                  "head -1 /etc/passwd; id -u"},
                 as::unprivileged);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "volumevolume\nt\nroot:x:0:0:root:/root:/bin/sh\n0\n");
    EXPECT_EQ(snapshot(busybox_rootfs()), before);

    const std::string volume = "/ctr-run-test-" + dir.path.filename().string().substr(13);
    ASSERT_FALSE(fs::exists(volume));
    const auto host_before = names_in("/");
    r = run({"-v", dir.path.string() + ":" + volume + ":ro", "/bin/sh", "-c",
             "cat " + volume + "/in.txt; echo; touch /x 2>&1 | grep -o 'Read-only file system'"},
            as::unprivileged);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "volume\nRead-only file system\n");
    EXPECT_EQ(names_in("/"), host_before);
}

TEST(ctr_run, rootless_memory_limit_says_why_it_cannot_or_kills_the_hog) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    const auto r = run({"-m", "32m", "--memory-swap", "32m", "/bin/sh", "-c", "head -c 300M /dev/zero | tail"},
                       as::unprivileged);
    if (r.status == 125) {
        // No delegated cgroup for this user: one line naming the step, the
        // controller that was asked for (not another one tried first) and
        // the fix.
        EXPECT_TRUE(contains(r.err, "create cgroup")) << r.err;
        EXPECT_TRUE(contains(r.err, "memory_max needs the memory controller")) << r.err;
        EXPECT_FALSE(contains(r.err, "/cpu/") || contains(r.err, "/cpu,")) << r.err;
        EXPECT_TRUE(contains(r.err, "Delegate=yes")) << r.err;
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    } else {
        EXPECT_EQ(r.status, 128 + SIGKILL) << r.err;
        EXPECT_TRUE(contains(r.err, "out of memory")) << r.err;
    }
}

// -u with an id the sandbox's user namespace does not map: the error says
// so, which ids it has, and (without a subordinate range) how to get more.
TEST(ctr_run, rootless_an_unmapped_user_names_the_cause_and_the_fix) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    // Beyond the 65536 ids a subordinate range gives, and beyond the one id
    // a caller without a range has.
    const auto r = run({"-u", "100000:100000", "id"}, as::unprivileged);
    EXPECT_EQ(r.status, 125) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
    EXPECT_TRUE(contains(r.err, "ctr-run: set gid '100000' (gid 100000 is not mapped in the sandbox's user namespace"))
        << r.err;
    std::ifstream subgid("/etc/subgid");
    bool has_range = false;
    for (std::string line; std::getline(subgid, line);) has_range = has_range || line.rfind("ctrtest:", 0) == 0;
    const bool has_helpers = access("/usr/bin/newuidmap", X_OK) == 0 && access("/usr/bin/newgidmap", X_OK) == 0;
    if (has_range && has_helpers) {
        EXPECT_TRUE(contains(r.err, "(it has gids 0 to 65536)")) << r.err;
    } else {
        EXPECT_TRUE(contains(r.err, "(it has gid 0)")) << r.err;
        EXPECT_TRUE(contains(r.err, "/etc/subgid")) << r.err;
        EXPECT_TRUE(contains(r.err, "usermod --add-subgids")) << r.err;
    }
}

// Without a subordinate range, -u with an id other than 0 names the
// unmapped id, the missing range, the file and the fix. ctrtest has a range
// (tests/run-rootless gives it one), so the test hides it: in a mount
// namespace of its own, an empty file is bound over /etc/subuid and
// /etc/subgid; the machine's files never change. With the real files the
// same run first works where the range is there, so the failure below comes
// from the missing range.
TEST(ctr_run, rootless_without_a_subordinate_range_names_the_file_and_the_fix) {
    SKIP_WITHOUT_UNPRIVILEGED_USER();
    if (access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "needs unshare(1) (util-linux)";
    const std::vector<std::string> command = {"-u", "1000:1000", "/bin/sh", "-c", "id -u; id -g"};
    bool has_range = true;
    for (const char* file : {"/etc/subuid", "/etc/subgid"}) {
        std::ifstream in(file);
        bool found = false;
        for (std::string line; std::getline(in, line);) found = found || line.rfind("ctrtest:", 0) == 0;
        has_range = has_range && found;
    }
    const bool has_helpers = access("/usr/bin/newuidmap", X_OK) == 0 && access("/usr/bin/newgidmap", X_OK) == 0;
    if (has_range && has_helpers) {
        const auto r = run(command, as::unprivileged);
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(r.out, "1000\n1000\n");
    }

    scratch dir;
    write_file(dir / "empty", "");
    chmod((dir / "empty").c_str(), 0644);
    const std::string script =
        "for f in /etc/subuid /etc/subgid; do if [ -e $f ]; then mount --bind \"$1\" $f || exit 99; fi; done; "
        "shift; exec runuser -u ctrtest -- \"$@\"";
    std::vector<std::string> args = {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script,
                                     "sh", (dir / "empty").string(), unprivileged_ctr_run()};
    args.insert(args.end(), command.begin(), command.end());
    namespace p = ctr::process;
    const auto r = p::spawn(args, {.std_in = p::stdio::null(), .std_out = p::stdio::capture(),
                                   .std_err = p::stdio::capture(), .timeout = 60s})
                       .wait();
    ASSERT_NE(r.exit_code, 99) << "could not bind over /etc/subuid: " << r.std_err;
    EXPECT_EQ(r.exit_code, 125) << r.std_out << r.std_err;
    EXPECT_EQ(r.std_out, "");
    const std::string& err = r.std_err;
    EXPECT_EQ(err.find('\n'), err.size() - 1) << "one line: " << err;
    // The id, what the namespace has instead, the missing range, the file
    // and the fix.
    EXPECT_TRUE(contains(err, "ctr-run: set gid '1000' (gid 1000 is not mapped in the sandbox's user namespace "
                              "(it has gid 0)")) << err;
    EXPECT_TRUE(contains(err, "there is no range for ctrtest in /etc/subgid")) << err;
    EXPECT_TRUE(contains(err, "usermod --add-subgids 100000-165535 ctrtest")) << err;
    if (has_range) {
        EXPECT_TRUE(contains(read_file("/etc/subgid"), "ctrtest:")) << "the bind stayed in its namespace";
    }
}

// ---- Without user namespaces (ctr-run/no_namespaces.hpp). The host here
// allows them; an outer seccomp filter refuses them to ctr-run, as an outer
// container's would (tests/without_namespaces.hpp).

outcome run_where_user_namespaces_are_refused(std::vector<std::string> args) {
    args.insert(args.begin(), ctr_run);
    namespace p = ctr::process;
    p::options o{.std_in = p::stdio::null(), .std_out = p::stdio::capture(), .std_err = p::stdio::capture(),
                 .timeout = 60s};
    o.security.no_new_privileges = true;
    o.security.seccomp = ctr_test::user_namespaces_refused_filter();
    const auto r = p::spawn(args, o).wait();
    return {r.exit_code ? *r.exit_code : 128 + r.signal.value_or(0), r.std_out, r.std_err};
}

// The same where the host forbids them already (the VM lane's boots): then
// ctr-run runs as it is, and the refusal is the kernel's.
outcome run_without_user_namespaces(std::vector<std::string> args) {
    if (ctr_test::user_namespaces_forbidden_by().empty()) return run_where_user_namespaces_are_refused(std::move(args));
    return run(std::move(args));
}

TEST(ctr_run, without_user_namespaces_the_run_is_confined_by_landlock_and_says_so) {
    SKIP_WITHOUT_LANDLOCK();
    scratch volume, outside;
    // Root's command runs as nobody here: both writable by it, so that only
    // Landlock can stop the write outside.
    chmod(volume.path.c_str(), 0777);
    chmod(outside.path.c_str(), 0777);
    const std::string target = (outside / "written").string();
    const std::string script = "echo in > " + (volume / "f").string() + " && echo volume-ok; "
                               "{ echo out > " + target + "; } 2>/dev/null && echo outside-written || echo outside-denied; "
                               "echo tmp > \"$TMPDIR/t\" && echo tmp-ok; cat /etc/hostname >/dev/null && echo reads";
    // Where ctr-run can make namespaces, the same files are out of reach
    // (its root is read-only) and the volume is written: the difference
    // below is the mode's, not the script's.
    const auto normal = run({"-v", volume.path.string() + ":" + volume.path.string(), "/bin/sh", "-c", script});
    ASSERT_EQ(normal.status, 0) << normal.err;
    ASSERT_TRUE(contains(normal.out, "volume-ok")) << normal.out;
    fs::remove(volume / "f");  // the sandbox's root made it; the next run may be nobody
    // Without ctr-run the command writes the file: the mode must stop it.
    ASSERT_EQ(std::system(("/bin/sh -c 'echo out > " + target + "'").c_str()), 0);
    fs::remove(target);

    const auto r = run_where_user_namespaces_are_refused(
        {"-v", volume.path.string() + ":" + volume.path.string(), "/bin/sh", "-c", script});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "volume-ok\noutside-denied\ntmp-ok\nreads\n") << r.err;
    EXPECT_FALSE(fs::exists(target));
    EXPECT_EQ(read_file(volume / "f"), "in\n");
    // One line, naming the setting that refused the namespace and the flag
    // that would refuse instead.
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_TRUE(contains(r.err, "a seccomp filter on this process")) << r.err;
    EXPECT_TRUE(contains(r.err, "running without namespaces, confined by Landlock, seccomp and no_new_privs")) << r.err;
    EXPECT_TRUE(contains(r.err, "--require-namespaces")) << r.err;
}

TEST(ctr_run, without_user_namespaces_the_command_keeps_no_capability_and_its_tmpdir_goes) {
    SKIP_WITHOUT_LANDLOCK();
    const auto r = run_where_user_namespaces_are_refused(
        {"/bin/sh", "-c", "grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; echo $TMPDIR"});
    EXPECT_EQ(r.status, 0) << r.err;
    // Root's command is nobody: without a user namespace root would be the
    // host's own. (The rootless lane's test main is root of a user
    // namespace of its own, which is unprivileged outside already.)
    if (ctr_test::real_root) {
        EXPECT_TRUE(contains(r.out, "Uid:\t65534\t65534\t65534\t65534")) << r.out;
        EXPECT_TRUE(contains(r.err, "as nobody (65534)")) << r.err;
    }
    EXPECT_TRUE(contains(r.out, "CapEff:\t0000000000000000")) << r.out;
    // Root's bounding set is emptied too; an unprivileged caller's cannot be.
    if (geteuid() == 0) {
        EXPECT_TRUE(contains(r.out, "CapBnd:\t0000000000000000")) << r.out;
    }
    EXPECT_TRUE(contains(r.out, "NoNewPrivs:\t1")) << r.out;
    EXPECT_TRUE(contains(r.out, "Seccomp:\t2")) << r.out;
    // The last line: the command's TMPDIR.
    ASSERT_GE(r.out.size(), 2u);
    const std::size_t before = r.out.rfind('\n', r.out.size() - 2);
    const std::size_t first = before == std::string::npos ? 0 : before + 1;
    const std::string tmpdir = r.out.substr(first, r.out.size() - 1 - first);
    ASSERT_TRUE(contains(tmpdir, "/ctr-run-tmp.")) << r.out;
    EXPECT_FALSE(fs::exists(tmpdir)) << "the private TMPDIR is removed with the run";
}

TEST(ctr_run, without_user_namespaces_tcp_is_refused_with_network_none) {
    SKIP_WITHOUT_LANDLOCK();
    if (ctr::landlock::abi() < 4) GTEST_SKIP() << "Landlock ABI " << ctr::landlock::abi() << " has no TCP rules (ABI 4)";
    // The probe helper's directory is readable: it runs from the host.
    const auto r = run_where_user_namespaces_are_refused({ctr_test::probe_helper, "tcp-ask", "127.0.0.1", "9", "hi"});
    EXPECT_NE(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out + r.err, "Permission denied")) << r.out << r.err;
}

TEST(ctr_run, require_namespaces_refuses_where_user_namespaces_are_refused) {
    const auto r = run_where_user_namespaces_are_refused({"--require-namespaces", "/bin/true"});
    EXPECT_EQ(r.status, 125) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_TRUE(contains(r.err, "a seccomp filter on this process")) << r.err;
    EXPECT_TRUE(contains(r.err, "--require-namespaces: not running without them")) << r.err;
    // Where they are allowed, the flag changes nothing.
    EXPECT_EQ(run({"--require-namespaces", "/bin/true"}).status, 0);
}

// On a host whose own setting forbids user namespaces (the VM lane boots
// once with sysctl.user.max_user_namespaces=0, and once with Debian's
// kernel.unprivileged_userns_clone=0 as an unprivileged user, .ci/run): no
// outer filter, the refusal is the kernel's.
TEST(ctr_run, where_the_host_forbids_user_namespaces_the_run_goes_on_without_them) {
    SKIP_WITHOUT_LANDLOCK();
    const std::string setting = ctr_test::user_namespaces_forbidden_by();
    if (setting.empty())
        GTEST_SKIP() << "user namespaces are allowed here (neither user.max_user_namespaces nor, for a user other "
                        "than root, kernel.unprivileged_userns_clone is 0); the VM lane boots with them off to run this";
    scratch volume, outside;
    // Root's command runs as nobody here: both writable by it, so that only
    // Landlock can stop the write outside.
    chmod(volume.path.c_str(), 0777);
    chmod(outside.path.c_str(), 0777);
    const std::string target = (outside / "written").string();
    const std::string script = "echo in > " + (volume / "f").string() + " && echo volume-ok; { echo out > " + target +
                               "; } 2>/dev/null && echo outside-written || echo outside-denied";
    ASSERT_EQ(std::system(("/bin/sh -c 'echo out > " + target + "'").c_str()), 0) << "the write works without ctr-run";
    fs::remove(target);
    const auto r = run({"-v", volume.path.string() + ":" + volume.path.string(), "/bin/sh", "-c", script});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "volume-ok\noutside-denied\n") << r.err;
    EXPECT_FALSE(fs::exists(target));
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_TRUE(contains(r.err, setting + " is 0")) << r.err;
    EXPECT_TRUE(contains(r.err, "running without namespaces")) << r.err;
    const auto refused = run({"--require-namespaces", "/bin/true"});
    EXPECT_EQ(refused.status, 125) << refused.err;
    EXPECT_TRUE(contains(refused.err, setting + " is 0")) << refused.err;
}

// A build step as a CI job runs one without namespaces: it reads a source
// tree and writes only into the output directory it is given as a volume.
// Here a shell script stands for the compiler: each source "compiles" to an
// object (upper-cased), the objects "link" into one file, and then it tries
// to write into the source tree, as a hostile or broken build would.
TEST(ctr_run, without_user_namespaces_a_build_step_reads_its_sources_and_writes_only_its_output) {
    SKIP_WITHOUT_LANDLOCK();
    scratch work;
    const fs::path source = work / "src", output = work / "out";
    fs::create_directories(source / "lib");
    fs::create_directories(output);
    write_file(source / "main.c", "int main(void) { return answer(); }\n");
    write_file(source / "lib" / "answer.c", "int answer(void) { return 42; }\n");
    // Writable by everyone (root's command runs as nobody here), so that only
    // Landlock can keep the build out of its sources.
    for (const auto& dir : {work.path, source, source / "lib", output}) chmod(dir.c_str(), 0777);
    for (const auto& file : {source / "main.c", source / "lib" / "answer.c"}) chmod(file.c_str(), 0666);
    const std::string src = source.string(), out = output.string();
    const std::string script =
        "set -e; cd '" + src + "'; "
        "for f in main.c lib/answer.c; do o='" + out + "'/$(basename $f .c).o; tr a-z A-Z < $f > $o; done; "
        "cat '" + out + "'/main.o '" + out + "'/answer.o > '" + out + "'/app; echo built; "
        "{ echo injected > '" + src + "'/injected.c; } 2>/dev/null && echo source-written || echo source-denied; "
        "{ echo tampered >> '" + src + "'/main.c; } 2>/dev/null && echo source-changed || echo source-kept; "
        "{ rm -f '" + src + "'/lib/answer.c; } 2>/dev/null || true; test -e '" + src + "'/lib/answer.c && echo source-there";
    // The positive control: without ctr-run the same script changes the
    // sources, so the refusals below are the sandbox's.
    {
        scratch copy;
        const fs::path copied_source = copy / "src", copied_output = copy / "out";
        fs::copy(source, copied_source, fs::copy_options::recursive);
        fs::create_directories(copied_output);
        std::string unconfined = script;
        for (const auto& [from, to] : {std::pair{src, copied_source.string()}, std::pair{out, copied_output.string()}})
            for (std::size_t at = 0; (at = unconfined.find(from, at)) != std::string::npos; at += to.size())
                unconfined.replace(at, from.size(), to);
        namespace p = ctr::process;
        const auto r = p::spawn({"/bin/sh", "-c", unconfined}, {.std_out = p::stdio::capture(), .timeout = 60s}).wait();
        ASSERT_EQ(r.std_out, "built\nsource-written\nsource-changed\n") << "without ctr-run the script changes its sources";
    }

    const auto r = run_without_user_namespaces({"-v", out + ":" + out, "/bin/sh", "-c", script});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out, "built\nsource-denied\nsource-kept\nsource-there\n") << r.err;
    EXPECT_TRUE(contains(r.err, ctr_test::ran_without_namespaces)) << r.err;
    EXPECT_EQ(read_file(output / "app"), "INT MAIN(VOID) { RETURN ANSWER(); }\nINT ANSWER(VOID) { RETURN 42; }\n");
    EXPECT_EQ(read_file(source / "main.c"), "int main(void) { return answer(); }\n");
    EXPECT_TRUE(fs::exists(source / "lib" / "answer.c"));
    EXPECT_FALSE(fs::exists(source / "injected.c"));
}

TEST(ctr_run, without_user_namespaces_the_flags_that_need_one_are_refused_by_name) {
    SKIP_WITHOUT_LANDLOCK();
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--rootfs", "/", "/bin/true"}, "--rootfs"},
        {{"--tmpfs", "/tmp", "/bin/true"}, "--tmpfs"},
        {{"-v", "/tmp:/data", "/bin/true"}, "--volume"},
        {{"--hostname", "box", "/bin/true"}, "--hostname"},
        {{"--add-host", "db:198.51.100.7", "/bin/true"}, "--add-host"},
        {{"--privileged", "/bin/true"}, "--privileged"},
    };
    for (const auto& [args, flag] : cases) {
        const auto r = run_where_user_namespaces_are_refused(args);
        EXPECT_EQ(r.status, 125) << flag << ": " << r.err;
        EXPECT_TRUE(contains(r.err, "ctr-run: " + flag + ": user namespaces are refused here")) << r.err;
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    }
}

}  // namespace

#endif  // CTR_RUN_BINARY
