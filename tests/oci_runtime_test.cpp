// ctr-run as an OCI runtime (ctr-run/oci/runtime.cpp, docs/oci.md), driven
// the way an engine drives it: separate create, start, kill, delete, state
// and exec invocations on a bundle, with the state under a --root of the
// test's own. The engines themselves drive it in tests/oci/.
#include "ctr_run_support.hpp"

#include <ctr/cgroup.hpp>

#include <gtest/gtest.h>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#ifdef CTR_RUN_BINARY

namespace {

using namespace ctr_run_test;

// A bundle whose root is the busybox root filesystem, whose /out is a
// directory of the test's, and whose process is `sh -c SCRIPT`.
struct bundle {
    scratch dir;
    fs::path root_dir = dir / "state";
    fs::path out = dir / "out";

    explicit bundle(const std::string& script, const std::string& extra_process = {}) {
        fs::create_directories(out);
        write_config(script, extra_process);
    }
    void write_config(const std::string& script, const std::string& extra_process = {}) const {
        std::string quoted;
        for (const char c : script) {
            if (c == '"' || c == '\\') quoted += '\\';
            quoted += c;
        }
        write_file(dir / "config.json", R"({
  "ociVersion": "1.0.2",
  "process": {
    "args": ["/bin/sh", "-c", ")" + quoted + R"("],
    "env": ["PATH=/bin:/usr/bin", "FROM_CONFIG=yes"],
    "cwd": "/",
    "user": {"uid": 0, "gid": 0})" + extra_process + R"(
  },
  "root": {"path": ")" + busybox_rootfs() + R"(", "readonly": true},
  "hostname": "oci-box",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    {"destination": "/out", "type": "bind", "source": ")" + out.string() + R"(", "options": ["rbind", "rw"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]
  }
})");
    }
    // ctr-run --root STATE ARGS...
    outcome runtime(std::vector<std::string> args) const {
        args.insert(args.begin(), {"--root", root_dir.string()});
        return run(std::move(args));
    }
    outcome create(const std::string& id) const {
        return runtime({"create", "--bundle", dir.path.string(), "--pid-file", (dir / "pid").string(), id});
    }
    std::string status(const std::string& id) const {
        const auto r = runtime({"state", id});
        const auto at = r.out.find("\"status\": \"");
        if (at == std::string::npos) return "(no state: " + r.err + ")";
        const auto begin = at + 11;
        return r.out.substr(begin, r.out.find('"', begin) - begin);
    }
};

#define SKIP_UNLESS_ROOT_WITH_BUSYBOX()                                                         \
    if (!ctr_test::real_root) GTEST_SKIP() << "the OCI runtime tests run containers as root"; \
    SKIP_WITHOUT_BUSYBOX()

// The engine (conmon, containerd's shim) is a subreaper: the container's
// init, left by create, becomes its child and it reaps it. The test plays
// that part for the span of one test.
struct acting_subreaper {
    acting_subreaper() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
    ~acting_subreaper() {
        prctl(PR_SET_CHILD_SUBREAPER, 0);
        // Whatever was adopted and has ended.
        while (waitpid(-1, nullptr, WNOHANG) > 0) {
        }
    }
    // The adopted init's wait status.
    static int reap(pid_t pid) {
        int status = 0;
        if (waitpid(pid, &status, 0) != pid) return -1;
        return status;
    }
};

bool eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 1000; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return done();
}

}  // namespace

TEST(oci_runtime, create_holds_the_process_until_start_then_kill_and_delete_end_it) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    acting_subreaper engine;
    bundle b("echo \"$FROM_CONFIG $(hostname) $$\" > /out/ran; exec sleep 1000");
    const auto created = b.create("life");
    ASSERT_EQ(created.status, 0) << created.err;
    const pid_t init = std::stoi(read_file(b.dir / "pid"));
    EXPECT_GT(init, 1);
    EXPECT_EQ(b.status("life"), "created");
    // Held before exec: however long we look, nothing ran.
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(fs::exists(b.out / "ran"));

    const auto started = b.runtime({"start", "life"});
    ASSERT_EQ(started.status, 0) << started.err;
    ASSERT_TRUE(eventually([&] { return read_file(b.out / "ran").find('\n') != std::string::npos; }));
    EXPECT_EQ(read_file(b.out / "ran"), "yes oci-box 1\n");
    EXPECT_EQ(b.status("life"), "running");
    // A second start is refused.
    const auto again = b.runtime({"start", "life"});
    EXPECT_EQ(again.status, 1);
    EXPECT_TRUE(contains(again.err, "already running")) << again.err;

    // Not deleted while it runs, unless forced.
    const auto refused = b.runtime({"delete", "life"});
    EXPECT_EQ(refused.status, 1);
    EXPECT_TRUE(contains(refused.err, "is running")) << refused.err;

    ASSERT_EQ(b.runtime({"kill", "life", "KILL"}).status, 0);
    const int status = acting_subreaper::reap(init);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    EXPECT_EQ(b.status("life"), "stopped");
    const auto late_kill = b.runtime({"kill", "life", "9"});
    EXPECT_EQ(late_kill.status, 1);
    EXPECT_TRUE(contains(late_kill.err, "container not running")) << late_kill.err;

    const auto deleted = b.runtime({"delete", "life"});
    EXPECT_EQ(deleted.status, 0) << deleted.err;
    EXPECT_FALSE(fs::exists(b.root_dir / "life"));
    const auto gone = b.runtime({"state", "life"});
    EXPECT_EQ(gone.status, 1);
    EXPECT_TRUE(contains(gone.err, "does not exist")) << gone.err;
    // containerd's shim deletes twice, the second time with --force.
    EXPECT_EQ(b.runtime({"delete", "--force", "life"}).status, 0);
}

TEST(oci_runtime, delete_force_kills_a_running_container) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    acting_subreaper engine;
    bundle b("exec sleep 1000");
    ASSERT_EQ(b.create("forced").status, 0);
    const pid_t init = std::stoi(read_file(b.dir / "pid"));
    ASSERT_EQ(b.runtime({"start", "forced"}).status, 0);
    const auto deleted = b.runtime({"delete", "--force", "forced"});
    EXPECT_EQ(deleted.status, 0) << deleted.err;
    EXPECT_NE(acting_subreaper::reap(init), -1);
    EXPECT_FALSE(fs::exists(b.root_dir / "forced"));
}

TEST(oci_runtime, a_created_container_can_be_deleted_without_ever_running) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    acting_subreaper engine;
    bundle b("echo ran > /out/ran");
    ASSERT_EQ(b.create("never").status, 0);
    const pid_t init = std::stoi(read_file(b.dir / "pid"));
    EXPECT_EQ(b.runtime({"delete", "never"}).status, 0);
    EXPECT_NE(acting_subreaper::reap(init), -1);
    EXPECT_FALSE(fs::exists(b.out / "ran"));
}

TEST(oci_runtime, exec_joins_the_running_container) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    acting_subreaper engine;
    bundle b("exec sleep 1000");
    ASSERT_EQ(b.create("host").status, 0);
    const pid_t init = std::stoi(read_file(b.dir / "pid"));
    ASSERT_EQ(b.runtime({"start", "host"}).status, 0);
    // Its hostname, its pid namespace (sleep is 1, the exec 2), its root.
    const auto r = b.runtime({"exec", "host", "/bin/sh", "-c", "echo $(hostname) $$ $FROM_CONFIG; ls /out; exit 4"});
    EXPECT_EQ(r.status, 4) << r.err;
    EXPECT_EQ(r.out, "oci-box 2 yes\n");
    // --detach with a pid file, as conmon asks for `podman exec`.
    const auto detached = b.runtime({"exec", "--detach", "--pid-file", (b.dir / "exec-pid").string(), "host",
                                     "/bin/sh", "-c", "echo detached > /out/exec"});
    EXPECT_EQ(detached.status, 0) << detached.err;
    const pid_t exec_pid = std::stoi(read_file(b.dir / "exec-pid"));
    EXPECT_EQ(acting_subreaper::reap(exec_pid), 0);
    EXPECT_EQ(read_file(b.out / "exec"), "detached\n");
    EXPECT_EQ(b.runtime({"delete", "--force", "host"}).status, 0);
    acting_subreaper::reap(init);
}

TEST(oci_runtime, run_waits_and_gives_the_exit_status) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    bundle b("echo out; exit 3");
    const auto r = b.runtime({"run", "--bundle", b.dir.path.string(), "short"});
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_EQ(r.out, "out\n");
    EXPECT_FALSE(fs::exists(b.root_dir / "short")) << "run cleans up as delete does";
}

TEST(oci_runtime, hooks_run_where_the_spec_says_with_the_state_on_stdin_and_a_failing_prestart_fails_create) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    bundle b("echo ran > /out/ran");
    const auto hook = [&](const std::string& name) {
        return R"({"path": "/bin/sh", "args": ["sh", "-c", "cat > )" + (b.out / name).string() + R"("]})";
    };
    std::string config = read_file(b.dir / "config.json");
    // createContainer runs in the container's namespaces before its mounts
    // (its pid namespace: the held process is 1, the hook 2); startContainer
    // in the container itself: its root (/out), its hostname.
    const std::string inside_create = R"({"path": "/bin/sh", "args": ["sh", "-c", "cat > )" +
                                      (b.out / "createContainer").string() + R"(; echo $$ >> )" +
                                      (b.out / "createContainer").string() + R"("]})";
    const std::string inside_start =
        R"({"path": "/bin/sh", "args": ["sh", "-c", "cat > /out/startContainer; hostname >> /out/startContainer"]})";
    const std::string hooks = R"("hooks": {"prestart": [)" + hook("prestart") + R"(], "createRuntime": [)" +
                              hook("createRuntime") + R"(], "createContainer": [)" + inside_create +
                              R"(], "startContainer": [)" + inside_start + R"(], "poststart": [)" +
                              hook("poststart") + R"(], "poststop": [)" + hook("poststop") + R"(]},)";
    config.insert(config.find('{') + 1, "\n  " + hooks);
    write_file(b.dir / "config.json", config);
    const auto r = b.runtime({"run", "--bundle", b.dir.path.string(), "hooked"});
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* name : {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}) {
        const std::string state = read_file(b.out / name);
        EXPECT_TRUE(contains(state, R"("id": "hooked")")) << name << ": " << state;
        EXPECT_TRUE(contains(state, R"("bundle": ")" + b.dir.path.string())) << name << ": " << state;
    }
    EXPECT_TRUE(contains(read_file(b.out / "poststop"), R"("status": "stopped")"));
    const std::string create_container = read_file(b.out / "createContainer");
    EXPECT_EQ(create_container.substr(create_container.rfind('}') + 1), "2\n") << create_container;
    const std::string start_container = read_file(b.out / "startContainer");
    EXPECT_EQ(start_container.substr(start_container.rfind('}') + 1), "oci-box\n") << start_container;
    EXPECT_EQ(read_file(b.out / "ran"), "ran\n");

    // A prestart hook that fails: create fails naming it, nothing is left.
    fs::remove(b.out / "ran");
    config.replace(config.find(hook("prestart")), hook("prestart").size(),
                   R"({"path": "/bin/sh", "args": ["sh", "-c", "echo no way >&2; exit 3"]})");
    write_file(b.dir / "config.json", config);
    const auto failed = b.create("refused");
    EXPECT_EQ(failed.status, 1);
    EXPECT_TRUE(contains(failed.err, "prestart hook /bin/sh exited with 3: no way")) << failed.err;
    EXPECT_FALSE(fs::exists(b.root_dir / "refused"));
    EXPECT_FALSE(fs::exists(b.out / "ran"));
}

TEST(oci_runtime, pause_resume_and_ps_work_on_the_containers_cgroup) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    if (const auto& why = ctr_test::cgroup_blocker()) GTEST_SKIP() << "cannot make cgroups here: " << why->what();
    acting_subreaper engine;
    bundle b("exec sleep 1000");
    // A relative cgroupsPath: below this process's own cgroup.
    const std::string group = "ctr-oci-test-" + std::to_string(getpid()) + "/frozen";
    std::string config = read_file(b.dir / "config.json");
    config.insert(config.find("\"namespaces\""), "\"cgroupsPath\": \"" + group + "\",\n    ");
    write_file(b.dir / "config.json", config);
    ASSERT_EQ(b.create("frozen").status, 0);
    const pid_t init = std::stoi(read_file(b.dir / "pid"));
    ASSERT_EQ(b.runtime({"start", "frozen"}).status, 0);
    const auto ps = b.runtime({"ps", "--format", "json", "frozen"});
    EXPECT_EQ(ps.out, "[" + std::to_string(init) + "]\n") << ps.err;
    ASSERT_EQ(b.runtime({"pause", "frozen"}).status, 0);
    EXPECT_EQ(b.status("frozen"), "paused");
    ASSERT_EQ(b.runtime({"resume", "frozen"}).status, 0);
    EXPECT_EQ(b.status("frozen"), "running");
    // delete thaws a paused container before it kills it.
    ASSERT_EQ(b.runtime({"pause", "frozen"}).status, 0);
    const auto deleted = b.runtime({"delete", "--force", "frozen"});
    EXPECT_EQ(deleted.status, 0) << deleted.err;
    EXPECT_NE(acting_subreaper::reap(init), -1);
    // The group is gone; its parent (like Podman's libpod_parent) stays:
    // remove it.
    auto parent = ctr::cgroup::group::open("ctr-oci-test-" + std::to_string(getpid()));
    EXPECT_TRUE(parent.pids().empty());
    parent.remove();
}

TEST(oci_runtime, an_id_in_use_is_refused_and_a_crashed_create_is_cleaned_up) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    acting_subreaper engine;
    bundle b("exec sleep 1000");
    ASSERT_EQ(b.create("twice").status, 0);
    const pid_t init = std::stoi(read_file(b.dir / "pid"));
    const auto second = b.create("twice");
    EXPECT_EQ(second.status, 1);
    EXPECT_TRUE(contains(second.err, "already exists")) << second.err;
    EXPECT_EQ(b.runtime({"delete", "--force", "twice"}).status, 0);
    acting_subreaper::reap(init);

    // What a create killed halfway leaves: its directory without state.
    fs::create_directories(b.root_dir / "crashed");
    const auto after_crash = b.create("crashed");
    EXPECT_EQ(after_crash.status, 0) << after_crash.err;
    const pid_t second_init = std::stoi(read_file(b.dir / "pid"));
    EXPECT_EQ(b.runtime({"delete", "--force", "crashed"}).status, 0);
    acting_subreaper::reap(second_init);
}

TEST(oci_runtime, concurrent_creates_of_one_id_make_one_container) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    acting_subreaper engine;
    bundle b("exec sleep 1000");
    constexpr int count = 6;
    std::vector<ctr::process::child> creates;
    for (int i = 0; i < count; ++i)
        creates.push_back(ctr::process::spawn(
            {ctr_run, "--root", b.root_dir.string(), "create", "--bundle", b.dir.path.string(), "race"},
            {.std_out = ctr::process::stdio::capture(), .std_err = ctr::process::stdio::capture()}));
    int succeeded = 0;
    for (auto& c : creates) {
        const auto r = c.wait();
        if (r.exit_code == 0) ++succeeded;
        else EXPECT_TRUE(contains(r.std_err, "already exists")) << r.std_err;
    }
    EXPECT_EQ(succeeded, 1);
    EXPECT_EQ(b.status("race"), "created");
    EXPECT_EQ(b.runtime({"delete", "--force", "race"}).status, 0);
}

TEST(oci_runtime, a_reused_pid_is_never_signalled) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    acting_subreaper engine;
    bundle b("exec sleep 1000");
    ASSERT_EQ(b.create("reused").status, 0);
    const pid_t init = std::stoi(read_file(b.dir / "pid"));
    ASSERT_EQ(b.runtime({"delete", "--force", "reused"}).status, 0);
    acting_subreaper::reap(init);

    // A container whose recorded init has ended and whose pid now belongs
    // to another process (a sleep of ours stands in): its start time
    // differs, so the runtime leaves it alone. First the proof that the
    // check is what protects it: with the true start time, kill reaches it.
    auto bystander = ctr::process::spawn({"/bin/sleep", "1000"});
    const auto write_state = [&](const std::string& start_time) {
        fs::create_directories(b.root_dir / "reused");
        write_file(b.root_dir / "reused" / "state.json",
                   R"({"ociVersion":"1.0.2","id":"reused","bundle":")" + b.dir.path.string() + R"(","pid":)" +
                       std::to_string(bystander.pid()) + R"(,"pidStartTime":)" + start_time +
                       R"(,"created":"2026-01-01T00:00:00Z","cgroupPath":"","started":true,"annotations":{}})");
    };
    std::ifstream stat("/proc/" + std::to_string(bystander.pid()) + "/stat");
    std::string text;
    std::getline(stat, text);
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::vector<std::string> rest;
    for (std::string f; fields >> f;) rest.push_back(f);
    ASSERT_GE(rest.size(), 20u);
    write_state(std::to_string(std::stoull(rest[19]) + 1));
    const auto refused = b.runtime({"kill", "reused", "TERM"});
    EXPECT_EQ(refused.status, 1);
    EXPECT_TRUE(contains(refused.err, "container not running")) << refused.err;
    EXPECT_FALSE(bystander.wait_for(100ms).has_value()) << "the bystander was signalled";

    write_state(rest[19]);
    EXPECT_EQ(b.runtime({"kill", "reused", "TERM"}).status, 0);
    EXPECT_EQ(bystander.wait().signal, SIGTERM);
    fs::remove_all(b.root_dir / "reused");
}

TEST(oci_runtime, a_bad_config_fails_create_with_the_field_and_leaves_nothing) {
    SKIP_UNLESS_ROOT_WITH_BUSYBOX();
    bundle b("true");
    write_file(b.dir / "config.json", R"({"ociVersion": "1.0.2", "process": {"args": "not a list", "cwd": "/"}, "root": {"path": "/"},
                  "linux": {"namespaces": [{"type": "mount"}]}})");
    const auto r = b.runtime({"--log", (b.dir / "log").string(), "--log-format", "json", "create", "--bundle",
                              b.dir.path.string(), "bad"});
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(r.err.empty()) << "with --log, errors go to the log only: " << r.err;
    const std::string log = read_file(b.dir / "log");
    EXPECT_TRUE(contains(log, R"("level":"error")")) << log;
    EXPECT_TRUE(contains(log, "process.args")) << log;
    EXPECT_FALSE(fs::exists(b.root_dir / "bad"));
}

TEST(oci_runtime, features_and_version_answer) {
    const auto features = run({"features"});
    EXPECT_EQ(features.status, 0) << features.err;
    EXPECT_TRUE(contains(features.out, R"("ociVersionMax": "1.3.0")")) << features.out;
    EXPECT_TRUE(contains(features.out, "SCMP_ACT_ERRNO")) << features.out;
    const auto version = run({"--version"});
    EXPECT_EQ(version.status, 0);
    EXPECT_TRUE(contains(version.out, "ctr-run version")) << version.out;
    const auto systemd = run({"--systemd-cgroup", "state", "x"});
    EXPECT_EQ(systemd.status, 1);
    EXPECT_TRUE(contains(systemd.err, "cgroupfs")) << systemd.err;
    const auto unknown = run({"--root", "/tmp", "frobnicate", "x"});
    EXPECT_EQ(unknown.status, 1);
    EXPECT_TRUE(contains(unknown.err, "unknown command 'frobnicate'")) << unknown.err;
    const auto bad_id = run({"--root", "/tmp", "state", "../etc"});
    EXPECT_EQ(bad_id.status, 1);
    EXPECT_TRUE(contains(bad_id.err, "'/'")) << bad_id.err;
}

#endif  // CTR_RUN_BINARY
