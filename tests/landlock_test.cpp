// ctr::landlock on the real kernel: a ruleset in security::landlock, observed
// from the command it confines. Every denial is first shown to succeed
// without the rule that denies it, so that no test passes by accident. Only
// files under temporary directories of the test are read or written; the
// network tests use loopback in the network namespace the test main made.
// Landlock needs no privilege, so the suite runs the same rootless.
#include "support.hpp"

#include <ctr/landlock.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace landlock = ctr::landlock;
using ctr::process::spawn;
using ctr::process::stdio;
using ctr_test::helper;
using ctr_test::temp_dir;

#define SKIP_WITHOUT_LANDLOCK_ABI(n)                                                                       \
    if (landlock::abi() < (n))                                                                              \
    GTEST_SKIP() << "this kernel has Landlock ABI " << landlock::abi() << "; the test needs ABI " << (n)

// What every confined command needs: the programs and libraries of /usr
// (and /bin etc. where they are not links into it)...
landlock::ruleset system_rules() {
    landlock::ruleset rules;
    rules.execute("/usr");
    for (const char* dir : {"/bin", "/sbin", "/lib", "/lib64"})
        if (!std::filesystem::is_symlink(dir) && std::filesystem::is_directory(dir)) rules.execute(dir);
    return rules;
}
// ...and the test's helper.
landlock::ruleset base_rules() {
    return system_rules().execute(std::filesystem::path(ctr_test::probe_helper).parent_path().string());
}

struct outcome {
    int exit_code = -1;
    std::string out, err;
};

outcome run(std::vector<std::string> argv, std::optional<landlock::ruleset> rules) {
    ctr::process::options opts{.std_out = stdio::capture(), .std_err = stdio::capture()};
    opts.security.landlock = std::move(rules);
    auto r = spawn(std::move(argv), opts).wait();
    return {r.exit_code.value_or(-1), r.std_out, r.std_err};
}

outcome sh(const std::string& script, std::optional<landlock::ruleset> rules) {
    return run({"/bin/sh", "-c", script}, std::move(rules));
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(landlock, abi_matches_the_probe) {
    const int abi = landlock::abi();
    const ctr::host_probe p = ctr::probe();
    EXPECT_EQ(p.landlock.available, abi > 0) << p.landlock.detail;
    if (abi == 0) GTEST_SKIP() << "no Landlock: " << p.landlock.detail;
    EXPECT_NE(p.landlock.detail.find("ABI " + std::to_string(abi)), std::string::npos) << p.landlock.detail;
    // Each feature of the ABI is named.
    if (abi >= 4) {
        EXPECT_NE(p.landlock.detail.find("TCP"), std::string::npos) << p.landlock.detail;
    }
}

TEST(landlock, reads_only_beneath_the_rules) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    temp_dir tmp;
    std::filesystem::create_directories(tmp.path + "/allowed");
    std::filesystem::create_directories(tmp.path + "/denied");
    write_text(tmp.path + "/allowed/a", "alpha");
    write_text(tmp.path + "/denied/b", "beta");
    const std::string script = "cat " + tmp.path + "/allowed/a; cat " + tmp.path + "/denied/b";

    const outcome open = sh(script, std::nullopt);
    ASSERT_EQ(open.exit_code, 0) << open.err;
    ASSERT_EQ(open.out, "alphabeta");

    const outcome confined = sh(script, base_rules().read(tmp.path + "/allowed"));
    EXPECT_NE(confined.exit_code, 0);
    EXPECT_EQ(confined.out, "alpha");
    EXPECT_NE(confined.err.find("Permission denied"), std::string::npos) << confined.err;
    // Listing a directory is a right of its own, too.
    EXPECT_NE(sh("ls " + tmp.path + "/denied", base_rules().read(tmp.path + "/allowed")).exit_code, 0);
    EXPECT_EQ(sh("ls " + tmp.path + "/allowed", base_rules().read(tmp.path + "/allowed")).out, "a\n");
}

TEST(landlock, writes_only_in_the_allowed_tree) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    temp_dir tmp;
    std::filesystem::create_directories(tmp.path + "/out");
    std::filesystem::create_directories(tmp.path + "/src");
    write_text(tmp.path + "/src/kept", "source");
    const std::string out = tmp.path + "/out", src = tmp.path + "/src";
    const std::string into_out = "mkdir " + out + "/d && echo x > " + out + "/d/f && rm -r " + out + "/d && echo y > " +
                                 out + "/g";
    const std::string into_src = "echo x > " + src + "/new";

    ASSERT_EQ(sh(into_src, std::nullopt).exit_code, 0);
    ASSERT_TRUE(std::filesystem::exists(src + "/new"));
    std::filesystem::remove(src + "/new");

    const landlock::ruleset rules = base_rules().read(src).write(out);
    const outcome made = sh(into_out, rules);
    EXPECT_EQ(made.exit_code, 0) << made.err;
    EXPECT_TRUE(std::filesystem::exists(out + "/g"));
    EXPECT_FALSE(std::filesystem::exists(out + "/d"));

    const outcome refused = sh(into_src, rules);
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("Permission denied"), std::string::npos) << refused.err;
    EXPECT_FALSE(std::filesystem::exists(src + "/new"));
    // Read-only means no removal either.
    EXPECT_NE(sh("rm " + src + "/kept", rules).exit_code, 0);
    EXPECT_TRUE(std::filesystem::exists(src + "/kept"));
}

TEST(landlock, truncate_is_a_write_where_the_abi_has_it) {
    SKIP_WITHOUT_LANDLOCK_ABI(3);
    temp_dir tmp;
    write_text(tmp.path + "/f", "content");
    // truncate(1) calls truncate(2) on the path: no open for writing.
    const std::string script = "truncate -s 0 " + tmp.path + "/f";
    ASSERT_EQ(sh(script, base_rules().write(tmp.path)).exit_code, 0);
    EXPECT_EQ(std::filesystem::file_size(tmp.path + "/f"), 0U);
    write_text(tmp.path + "/f", "content");
    EXPECT_NE(sh(script, base_rules().read(tmp.path)).exit_code, 0);
    EXPECT_EQ(std::filesystem::file_size(tmp.path + "/f"), 7U);
}

TEST(landlock, exec_is_denied_outside_the_allowed_paths) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    temp_dir tmp;
    const std::string copy = tmp.path + "/noop";
    std::filesystem::copy_file(ctr_test::noop_static, copy);
    std::filesystem::permissions(copy, std::filesystem::perms::owner_all);

    ASSERT_EQ(run({copy}, base_rules().execute(tmp.path)).exit_code, 0);
    // Readable is not runnable: the command itself fails at exec.
    try {
        (void)run({copy}, base_rules().read(tmp.path));
        FAIL() << "exec outside the rules ran";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::exec) << e.what();
        EXPECT_EQ(e.code().value(), EACCES) << e.what();
    }
    // And so does a program the command starts.
    const outcome nested = sh(copy, base_rules().read(tmp.path));
    EXPECT_NE(nested.exit_code, 0);
    EXPECT_NE(nested.err.find("Permission denied"), std::string::npos) << nested.err;
}

// A port on loopback that a listener of the test holds, or that is free.
struct loopback_port {
    int fd = -1;
    std::uint16_t port = 0;
    explicit loopback_port(bool listening) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
            getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
            return;
        port = ntohs(address.sin_port);
        if (listening) {
            listen(fd, 8);
        } else {
            close(fd);
            fd = -1;
        }
    }
    ~loopback_port() {
        if (fd >= 0) close(fd);
    }
    std::string text() const { return std::to_string(port); }
};

TEST(landlock, tcp_connect_and_bind_only_to_allowed_ports) {
    SKIP_WITHOUT_LANDLOCK_ABI(4);
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const loopback_port allowed(true), other(true), free_allowed(false), free_other(false);
    ASSERT_NE(allowed.port, 0);
    ASSERT_NE(free_other.port, 0);
    const std::vector<std::string> connect_other = helper({"tcp-connect", other.text()});
    const std::vector<std::string> bind_other = helper({"tcp-bind", free_other.text()});
    ASSERT_EQ(run(connect_other, std::nullopt).out, "ok\n");
    ASSERT_EQ(run(bind_other, std::nullopt).out, "ok\n");

    const landlock::ruleset rules = base_rules().connect_tcp(allowed.port).bind_tcp(free_allowed.port);
    EXPECT_EQ(run(helper({"tcp-connect", allowed.text()}), rules).out, "ok\n");
    EXPECT_EQ(run(connect_other, rules).out, "Permission denied\n");
    EXPECT_EQ(run(helper({"tcp-bind", free_allowed.text()}), rules).out, "ok\n");
    EXPECT_EQ(run(bind_other, rules).out, "Permission denied\n");
    // Port rules alone leave the filesystem as it was.
    EXPECT_EQ(run(connect_other, landlock::ruleset{}.connect_tcp(allowed.port)).out, "Permission denied\n");
}

TEST(landlock, best_effort_drops_what_the_abi_lacks_and_required_refuses) {
    SKIP_WITHOUT_LANDLOCK_ABI(4);
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();
    const loopback_port other(true);
    const std::vector<std::string> connect_other = helper({"tcp-connect", other.text()});
    // The same rules on the whole kernel confine TCP...
    ASSERT_EQ(run(connect_other, base_rules().connect_tcp(1)).out, "Permission denied\n");

    // ...but held to ABI 3, which has no TCP rules, best effort drops them
    // and says so, and the connection goes through.
    const landlock::ruleset old = base_rules().connect_tcp(1).at_most_abi(3);
    const std::vector<std::string> dropped = old.dropped();
    ASSERT_FALSE(dropped.empty());
    bool names_tcp = false;
    for (const std::string& line : dropped) names_tcp = names_tcp || line.find("TCP port rules: needs Landlock ABI 4 (Linux 6.7)") == 0;
    EXPECT_TRUE(names_tcp) << dropped.front();
    EXPECT_EQ(run(connect_other, old).out, "ok\n");

    landlock::ruleset required = landlock::ruleset{}.connect_tcp(1).at_most_abi(3);
    required.set_mode(landlock::mode::required);
    try {
        (void)run(connect_other, required);
        FAIL() << "required mode ran without the TCP rules";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::create_landlock_ruleset);
        EXPECT_NE(std::string(e.what()).find("ABI 4 (Linux 6.7)"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("best_effort"), std::string::npos) << e.what();
    }
}

TEST(landlock, scopes_keep_signals_and_abstract_sockets_inside) {
    SKIP_WITHOUT_LANDLOCK_ABI(6);
    CTR_SKIP_WITHOUT_NETWORK_NAMESPACE();  // abstract sockets belong to a network namespace: the test's own
    // A process outside the sandbox, of the test's own, and a socket.
    auto outside = spawn({"/bin/sleep", "60"});
    const std::string kill0 = "kill -0 " + std::to_string(outside.pid());
    const std::string name = "ctr-landlock-test-" + std::to_string(getpid());
    const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    name.copy(address.sun_path + 1, name.size());
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
              0);
    ASSERT_EQ(listen(listener, 8), 0);
    const std::vector<std::string> connect_out = helper({"abstract-connect", name});

    // File rules alone let both out...
    ASSERT_EQ(sh(kill0, base_rules()).exit_code, 0);
    ASSERT_EQ(run(connect_out, base_rules()).out, "ok\n");
    // ...scopes keep them in.
    const outcome signal = sh(kill0, base_rules().scope_signals());
    EXPECT_NE(signal.exit_code, 0);
    EXPECT_NE(signal.err.find("not permitted"), std::string::npos) << signal.err;
    EXPECT_EQ(run(connect_out, base_rules().scope_abstract_unix_sockets()).out, "Operation not permitted\n");
    // Each scope only its own kind.
    EXPECT_EQ(sh(kill0, base_rules().scope_abstract_unix_sockets()).exit_code, 0);
    EXPECT_EQ(run(connect_out, base_rules().scope_signals()).out, "ok\n");
    close(listener);
}

TEST(landlock, required_mode_on_the_kernel_it_fits) {
    SKIP_WITHOUT_LANDLOCK_ABI(6);
    landlock::ruleset rules = base_rules().scope_signals().scope_abstract_unix_sockets();
    rules.set_mode(landlock::mode::required);
    EXPECT_TRUE(rules.dropped().empty());
    EXPECT_EQ(run({"/bin/true"}, rules).exit_code, 0);
}

TEST(landlock, dropped_names_each_feature_and_the_kernel_it_needs) {
    const landlock::ruleset rules =
        landlock::ruleset{}.write("/x").connect_tcp(80).scope_signals().scope_abstract_unix_sockets();
    EXPECT_TRUE(rules.dropped(7).empty());
    const std::vector<std::string> on_2 = rules.dropped(2);
    ASSERT_EQ(on_2.size(), 5U);
    EXPECT_EQ(on_2[0].rfind("truncate", 0), 0U) << on_2[0];
    EXPECT_NE(on_2[0].find("ABI 3 (Linux 6.2); this kernel has ABI 2"), std::string::npos) << on_2[0];
    EXPECT_EQ(on_2[1].rfind("ioctl_dev", 0), 0U) << on_2[1];
    EXPECT_EQ(on_2[2].rfind("TCP port rules: needs Landlock ABI 4 (Linux 6.7)", 0), 0U) << on_2[2];
    EXPECT_EQ(on_2[3].rfind("scoped abstract unix sockets: needs Landlock ABI 6 (Linux 6.12)", 0), 0U) << on_2[3];
    const std::vector<std::string> on_1 = rules.dropped(1);
    EXPECT_EQ(on_1[0].rfind("refer", 0), 0U) << on_1[0];
    const std::vector<std::string> none = rules.dropped(0);
    ASSERT_FALSE(none.empty());
    EXPECT_NE(none[0].find("no Landlock"), std::string::npos) << none[0];
}

// The ruleset is the command's whatever uid it runs as: the domain goes
// with the process through setuid and exec, and the rules' paths are
// opened after the change of user.
TEST(landlock, holds_after_a_change_of_uid) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    if (!ctr_test::real_root) GTEST_SKIP() << "another uid needs real root (the rootless lane maps one id)";
    temp_dir tmp;
    const std::string out = tmp.path + "/out", other = tmp.path + "/other";
    // Both writable by nobody: only Landlock stands in the way.
    std::filesystem::create_directories(out);
    std::filesystem::create_directories(other);
    for (const std::string& dir : {out, other}) std::filesystem::permissions(dir, std::filesystem::perms::all);
    std::filesystem::permissions(tmp.path, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                               std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                               std::filesystem::perms::others_exec);
    ctr::process::options opts{.std_out = stdio::capture(), .std_err = stdio::capture()};
    opts.groups = std::vector<gid_t>{};
    opts.gid = 65534;
    opts.uid = 65534;
    const auto write_in = [&](const std::string& dir, std::optional<landlock::ruleset> rules) {
        opts.security.landlock = std::move(rules);
        auto r = spawn({"/bin/sh", "-c", "id -u && echo x > " + dir + "/f"}, opts).wait();
        return outcome{r.exit_code.value_or(-1), r.std_out, r.std_err};
    };

    // Unconfined, nobody writes there...
    const outcome open_run = write_in(other, std::nullopt);
    ASSERT_EQ(open_run.exit_code, 0) << open_run.err;
    ASSERT_EQ(open_run.out, "65534\n");
    struct stat st {};
    ASSERT_EQ(stat((other + "/f").c_str(), &st), 0);
    ASSERT_EQ(st.st_uid, 65534U) << "the command ran as another uid";
    std::filesystem::remove(other + "/f");

    // ...and with the ruleset, as the same uid, only in the allowed tree.
    const landlock::ruleset rules = system_rules().write(out);
    const outcome refused = write_in(other, rules);
    EXPECT_EQ(refused.out, "65534\n");
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("Permission denied"), std::string::npos) << refused.err;
    EXPECT_FALSE(std::filesystem::exists(other + "/f"));
    const outcome allowed = write_in(out, rules);
    EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
    EXPECT_TRUE(std::filesystem::exists(out + "/f"));
}

// The flags the child's landlock_restrict_self is given: the apply step's.
long planned_restrict_self_flags(const landlock::ruleset& rules) {
    ctr::detail::launch_plan plan;
    ctr::process::options opts;
    opts.security.landlock = rules;
    ctr::process::detail::build_plan(plan, {"/bin/true"}, opts);
    for (const auto& op : plan.ops)
        if (op.step == ctr::step::apply_landlock) return op.b;
    return -1;
}

TEST(landlock, audit_log_switches_are_restrict_self_flags_of_abi_7) {
    const landlock::ruleset rules =
        landlock::ruleset{}.read("/usr").log_same_exec(false).log_new_exec(true).log_subdomains(false);
    // LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF, _NEW_EXEC_ON, _SUBDOMAINS_OFF.
    EXPECT_EQ(rules.restrict_self_flags(), 1U | 2U | 4U);
    EXPECT_EQ(landlock::ruleset{}.log_new_exec(true).restrict_self_flags(), 2U);
    // The kernel's defaults set no flag.
    EXPECT_EQ(landlock::ruleset{rules}.log_same_exec(true).log_new_exec(false).log_subdomains(true).restrict_self_flags(),
              0U);
    EXPECT_TRUE(rules.dropped(7).empty());
    const std::vector<std::string> on_6 = rules.dropped(6);
    ASSERT_EQ(on_6.size(), 1U);
    EXPECT_EQ(on_6[0].rfind("audit log switches", 0), 0U) << on_6[0];
    EXPECT_NE(on_6[0].find("needs Landlock ABI 7 (Linux 6.15); this kernel has ABI 6"), std::string::npos) << on_6[0];
}

TEST(landlock, audit_log_switches_reach_the_kernel_or_are_dropped_below_abi_7) {
    SKIP_WITHOUT_LANDLOCK_ABI(7);
    // The kernel checks restrict_self's flags before anything else it
    // applies: one it does not know is refused, so a confined run below was
    // given flags it accepts.
    errno = 0;
    EXPECT_EQ(syscall(SYS_landlock_restrict_self, -1, 1U << 31), -1);
    EXPECT_EQ(errno, EINVAL);

    temp_dir tmp;
    write_text(tmp.path + "/f", "text");
    const std::string cat = "cat " + tmp.path + "/f";
    ASSERT_EQ(sh(cat, std::nullopt).out, "text");
    landlock::ruleset rules = base_rules().log_same_exec(false).log_new_exec(true).log_subdomains(false);
    rules.set_mode(landlock::mode::required);
    EXPECT_EQ(planned_restrict_self_flags(rules), 7);
    // The switches change what is logged, not what is denied.
    const outcome confined = sh(cat, rules);
    EXPECT_NE(confined.exit_code, 0);
    EXPECT_NE(confined.err.find("Permission denied"), std::string::npos) << confined.err;
    EXPECT_EQ(sh(cat, landlock::ruleset{rules}.read(tmp.path)).out, "text");

    // Held to ABI 6: best effort drops them (the kernel would refuse them)...
    landlock::ruleset old = base_rules().log_new_exec(true).at_most_abi(6);
    EXPECT_EQ(planned_restrict_self_flags(old), 0);
    EXPECT_EQ(sh(cat, landlock::ruleset{old}.read(tmp.path)).out, "text");
    EXPECT_NE(sh(cat, old).exit_code, 0);
    // ...and required refuses, naming the ABI they need.
    old.set_mode(landlock::mode::required);
    try {
        (void)sh(cat, old);
        FAIL() << "required mode ran without the log switches";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::create_landlock_ruleset);
        EXPECT_NE(std::string(e.what()).find("audit log switches"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("ABI 7 (Linux 6.15)"), std::string::npos) << e.what();
    }
}

TEST(landlock, ruleset_fd_does_not_reach_the_command) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    // What a ruleset fd looks like in /proc/self/fd, seen here first.
    const landlock::detail::ruleset_attr attr{landlock::fs::read.bits, 0, 0};
    const long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    ASSERT_GE(fd, 0);
    const std::string link = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd)).string();
    close(static_cast<int>(fd));
    ASSERT_NE(link.find("landlock"), std::string::npos) << link;

    const outcome seen = sh("ls -l /proc/self/fd/", base_rules().read("/proc"));
    ASSERT_EQ(seen.exit_code, 0) << seen.err;
    // 0, 1, 2 and the listing's own directory fd, nothing more: busybox's
    // ls (the VM lane's) may not show a link's target, so the count is what
    // would catch a ruleset fd that got through.
    std::istringstream lines(seen.out);
    int entries = 0;
    for (std::string line; std::getline(lines, line);)
        if (!line.empty() && line[0] == 'l') ++entries;
    EXPECT_EQ(entries, 4) << seen.out;
    EXPECT_EQ(seen.out.find("landlock"), std::string::npos) << seen.out;
}

TEST(landlock, ruleset_fd_survives_the_fd_mapping) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    temp_dir tmp;
    write_text(tmp.path + "/f", "text");
    // Passed fds on every low number, where the parent's ruleset fd would
    // otherwise sit: a dup3 onto it would leave the child a wrong fd.
    const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(null, 0);
    ctr::process::options opts{.std_out = stdio::capture(), .std_err = stdio::capture()};
    for (int target = 3; target < 64; ++target) opts.fds.push_back({null, target});
    const auto cat = [&](std::optional<landlock::ruleset> rules) {
        opts.security.landlock = std::move(rules);
        return spawn({"/bin/cat", tmp.path + "/f"}, opts).wait();
    };
    const auto open_run = cat(std::nullopt);
    const auto confined = cat(base_rules());
    const auto allowed = cat(base_rules().read(tmp.path));
    close(null);
    ASSERT_EQ(open_run.std_out, "text") << open_run.std_err;
    EXPECT_NE(confined.exit_code, 0);
    EXPECT_NE(confined.std_err.find("Permission denied"), std::string::npos) << confined.std_err;
    EXPECT_EQ(allowed.std_out, "text") << allowed.std_err;
}

TEST(landlock, sets_no_new_privs_even_with_capabilities_dropped) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    // Without a ruleset and without no_new_privileges the flag is clear...
    const outcome plain = sh("grep NoNewPrivs /proc/self/status", std::nullopt);
    ASSERT_NE(plain.out.find("NoNewPrivs:\t0"), std::string::npos) << plain.out;
    // ...and with one it is set, also when no capability (CAP_SYS_ADMIN
    // among them) is left, which the kernel would otherwise ask for.
    ctr::process::options opts{.std_out = stdio::capture(), .std_err = stdio::capture()};
    opts.security.capabilities = ctr::caps::policy{};
    opts.security.landlock = base_rules().read("/proc");
    const auto r = spawn({"/bin/sh", "-c", "grep NoNewPrivs /proc/self/status"}, opts).wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
    EXPECT_NE(r.std_out.find("NoNewPrivs:\t1"), std::string::npos) << r.std_out;
}

TEST(landlock, confined_security_with_a_ruleset) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    temp_dir tmp;
    write_text(tmp.path + "/f", "text");
    ctr::process::options opts{.std_out = stdio::capture(), .std_err = stdio::capture()};
    opts.security = ctr::security::confined();
    opts.security.landlock = base_rules().read(tmp.path);
    const auto r = spawn({"/bin/cat", tmp.path + "/f"}, opts).wait();
    EXPECT_EQ(r.exit_code, 0) << r.std_err;
    EXPECT_EQ(r.std_out, "text");
}

TEST(landlock, confines_the_command_behind_a_pid_1) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    temp_dir tmp;
    write_text(tmp.path + "/f", "text");
    // Readable by the new user namespace's root, which is nobody outside.
    std::filesystem::permissions(tmp.path, std::filesystem::perms::all & ~std::filesystem::perms::others_write &
                                               ~std::filesystem::perms::group_write);
    ctr::process::options opts{.std_out = stdio::capture(), .std_err = stdio::capture()};
    opts.namespaces = ctr::ns::user | ctr::ns::pid;
    const auto cat = [&](std::optional<landlock::ruleset> rules) {
        opts.security.landlock = std::move(rules);
        return spawn({"/bin/cat", tmp.path + "/f"}, opts).wait();
    };
    const auto open = cat(std::nullopt);
    ASSERT_EQ(open.exit_code, 0) << open.std_err;
    ASSERT_EQ(open.std_out, "text");
    const auto confined = cat(base_rules());
    EXPECT_NE(confined.exit_code, 0);
    EXPECT_NE(confined.std_err.find("Permission denied"), std::string::npos) << confined.std_err;
}

TEST(landlock, paths_are_the_commands_after_its_mounts) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    if (!ctr_test::private_mount_namespace) GTEST_SKIP() << "no private mount namespace (see the test main's message)";
    temp_dir tmp;
    write_text(tmp.path + "/f", "text");
    // Readable by the sandbox's root, which is not this process's user.
    std::filesystem::permissions(tmp.path, std::filesystem::perms::all & ~std::filesystem::perms::others_write &
                                               ~std::filesystem::perms::group_write);
    // /tmp/data exists only inside: the sandbox's /tmp is a tmpfs of its own.
    ctr::process::options opts{.std_out = stdio::capture(),
                               .std_err = stdio::capture(),
                               .namespaces = ctr::ns::all,
                               .root = ctr::mount::host_readonly().bind(tmp.path, "/tmp/data")};
    const auto cat = [&](std::optional<landlock::ruleset> rules) {
        opts.security.landlock = std::move(rules);
        return spawn({"/bin/cat", "/tmp/data/f"}, opts).wait();
    };
    const auto open_run = cat(std::nullopt);
    ASSERT_EQ(open_run.std_out, "text") << open_run.std_err;
    // The helper's directory may not exist in there: only /usr's rules.
    const auto confined = cat(system_rules());
    EXPECT_NE(confined.exit_code, 0);
    EXPECT_NE(confined.std_err.find("Permission denied"), std::string::npos) << confined.std_err;
    const auto allowed = cat(system_rules().read("/tmp/data"));
    EXPECT_EQ(allowed.std_out, "text") << allowed.std_err;
}

TEST(landlock, a_rule_path_that_does_not_exist_is_named) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    temp_dir tmp;
    const std::string missing = tmp.path + "/not-there";
    try {
        (void)run({"/bin/true"}, base_rules().read(missing));
        FAIL() << "a rule on a missing path was accepted";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::add_landlock_rule) << e.what();
        EXPECT_EQ(e.path(), missing);
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("create it or drop the rule"), std::string::npos) << e.what();
    }
}

TEST(landlock, kernel_refusals_name_their_step) {
    SKIP_WITHOUT_LANDLOCK_ABI(1);
    namespace sys = ctr::detail::sys;
    const auto failure = [](sys::call call, int error, int skip) -> std::string {
        sys::fault_injection fault(call, error, skip);
        try {
            (void)run({"/bin/true"}, base_rules());
        } catch (const ctr::error& e) {
            return std::string(ctr::to_string(e.step())) + ": " + std::to_string(e.code().value());
        }
        return "ran";
    };
    // The first create_ruleset call asks for the ABI; the second makes the ruleset.
    EXPECT_EQ(failure(sys::call::landlock_create_ruleset, ENOMEM, 1), "create Landlock ruleset: " + std::to_string(ENOMEM));
    EXPECT_EQ(failure(sys::call::landlock_add_rule, ENOMEM, 0), "add Landlock rule: " + std::to_string(ENOMEM));
    EXPECT_EQ(failure(sys::call::landlock_restrict_self, E2BIG, 0), "apply Landlock ruleset: " + std::to_string(E2BIG));
}

TEST(landlock, bad_rules_are_usage_errors) {
    const auto refused = [](landlock::ruleset rules) {
        try {
            (void)run({"/bin/true"}, std::move(rules));
        } catch (const ctr::error& e) {
            return e.code().value() == EINVAL ? std::string(e.what()) : "errno " + std::to_string(e.code().value());
        }
        return std::string("ran");
    };
    EXPECT_NE(refused(landlock::ruleset{}).find("confines nothing"), std::string::npos);
    EXPECT_NE(refused(landlock::ruleset{}.read("")).find("empty path"), std::string::npos);
    EXPECT_NE(refused(landlock::ruleset{}.allow("/usr", {})).find("'/usr'"), std::string::npos);
    EXPECT_NE(refused(landlock::ruleset{}.allow("/usr", {1ULL << 40})).find("rights 0x10000000000"),
              std::string::npos);
}

}  // namespace
