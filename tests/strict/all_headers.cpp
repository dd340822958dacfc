// A consumer of every public header, compiled by the `strict.*` tests with
// -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Werror,
// by g++ and clang++, at -O0 and -O3, with include/ as a plain -I (not
// -isystem), so that a warning anywhere in the headers fails the build the way
// it would fail a consumer's.
//
// Compiling is the point: the program does nothing unless asked on its command
// line, but it is an honest program. Each use below makes the compiler
// instantiate the templates and inline functions behind a concept (spawn and
// its launch layers, cgroup::group, mount plans, veth, seccomp, capabilities,
// ns::scope, the port forwarder, the probe), since -O3 warnings such as
// -Wmaybe-uninitialized and -Wrestrict only appear in code that is emitted.
//
// Every header on its own first (each one must stand alone), then the
// umbrella header.
#include <ctr/capabilities.hpp>
#include <ctr/cgroup.hpp>
#include <ctr/error.hpp>
#include <ctr/ip_address.hpp>
#include <ctr/landlock.hpp>
#include <ctr/mount.hpp>
#include <ctr/net.hpp>
#include <ctr/ns.hpp>
#include <ctr/ns_scope.hpp>
#include <ctr/outbound.hpp>
#include <ctr/pasta.hpp>
#include <ctr/port_forward.hpp>
#include <ctr/port_mapping.hpp>
#include <ctr/port_nat.hpp>
#include <ctr/prepared.hpp>
#include <ctr/probe.hpp>
#include <ctr/process.hpp>
#include <ctr/seccomp.hpp>
#include <ctr/seccomp_notify.hpp>
#include <ctr/security.hpp>
#include <ctr/spawn.hpp>
#include <ctr/spawn_options.hpp>
#include <ctr/unique_fd.hpp>

#include <ctr/ctr.hpp>

#include <fcntl.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strict_consumer {

// Options as a temporary whose later initializers may throw: with `{}`
// defaults for its aggregate members, g++ 12 at -O3 reported those members
// as maybe uninitialized here (see process::options).
// Outside the anonymous namespace, so that g++ compiles it on its own rather
// than inlined into main, as a consumer's function would be.
int spawn_confined() {
    auto r = ctr::process::spawn({"id", "-u"},
                                 {.std_out = ctr::process::stdio::capture(),
                                  .gid = 1000u,
                                  .uid = 1000u,
                                  .namespaces = ctr::ns::all,
                                  .root = ctr::mount::host_readonly(),
                                  .security = {.capabilities = ctr::caps::policy{.keep = ctr::capability::kill},
                                               .no_new_privileges = true,
                                               .seccomp = ctr::seccomp::default_profile(),
                                               .landlock = ctr::landlock::ruleset{}
                                                               .execute("/usr")
                                                               .write("/tmp")
                                                               .allow("/dev/null", ctr::landlock::fs::write)
                                                               .connect_tcp(443)
                                                               .scope_signals()}})
                 .wait();
    for (const std::string& line : ctr::landlock::ruleset{}.read("/").dropped()) std::cout << line << '\n';
    return r.exit_code.value_or(-1);
}

}  // namespace strict_consumer

namespace {

using namespace std::chrono_literals;

// ctr::error and its steps.
std::string describe_failure() {
    const ctr::error e(ctr::step::exec, ENOENT, "/bin/nope", "not installed");
    std::string text = e.what();
    text.append(" [").append(ctr::to_string(e.step())).append("] ").append(e.path());
    text.append(" ").append(std::to_string(e.code().value()));
    return text;
}

// Capabilities: sets, names, parsing, the policy of a launch.
ctr::caps::policy capability_policy() {
    ctr::caps::set keep = ctr::caps::default_set();
    keep.add(ctr::capability::net_raw).remove(ctr::capability::setfcap);
    const ctr::caps::set parsed = ctr::caps::set::parse_list("chown,CAP_KILL, net_bind_service");
    unsigned count = 0;
    for (const ctr::capability c : parsed) {
        if (ctr::caps::from_name(ctr::caps::name(c))) ++count;
    }
    const bool all_kept = keep.contains(parsed) && !keep.empty() && keep.size() >= count;
    return {.keep = keep,
            .inheritable = all_kept ? ctr::caps::set{ctr::capability::kill} : ctr::caps::set::none(),
            .ambient = ctr::caps::set{ctr::caps::parse("cap_kill")},
            .securebits = std::nullopt};
}

// A seccomp filter from the builder, with argument conditions.
std::shared_ptr<const ctr::seccomp::filter> seccomp_filter() {
    using ctr::seccomp::action;
    using ctr::seccomp::arg;
    ctr::seccomp::builder b;
    b.default_action(action::fail_with(EPERM))
        .foreign_abi_action(action::kill_process())
        .unknown_syscall_action(action::fail_with(ENOSYS))
        .allow({"read", "write", "exit_group", "brk", "mmap", "munmap"})
        .fail("ptrace", EPERM)
        .rule("personality", action::allow(), arg(0) == 0)
        .rule("clone", action::allow(), arg(0).masked(0x7e020000) == 0)
        .rule("socket", action::fail_with(EAFNOSUPPORT), arg(0).in_range(40, 45), arg(1) != 3)
        .rule("ioctl", action::log(), ctr::seccomp::condition{.index = 1, .op = ctr::seccomp::compare::less, .value = 9});
    if (const auto& failure = b.first_error()) std::cerr << failure->what() << '\n';
    const ctr::seccomp::filter compiled = b.build();
    std::cout << compiled.size() << " instructions\n" << compiled.disassemble() << ctr::seccomp::to_string(action::trap())
              << ctr::seccomp::to_string(arg(2) >= 4096) << '\n';
    return b.build_shared();
}

// Seccomp user notification: a filter that notifies, its listener served by
// a supervisor that reads the caller's memory and answers.
std::uint64_t supervised_mkdir() {
    namespace sc = ctr::seccomp;
    auto child = ctr::process::spawn(
        {"mkdir", "/tmp/never"},
        {.security = {.no_new_privileges = true,
                      .seccomp = sc::builder{}.default_action(sc::action::allow()).rule("mkdir", sc::action::notify()).build_shared()}});
    std::uint64_t answered = 0;
    {
        sc::supervisor guard(child.take_seccomp_listener(), [](const sc::notification& call, sc::listener& from) {
            const std::string path = from.read_string(call, call.args[0], 256);
            if (path.empty() || !from.still_waiting(call)) return sc::response::continue_call();
            return call.args[1] > 0777 ? sc::response::value(0) : sc::response::fail_with(EACCES);
        });
        (void)child.wait();
        answered = guard.answered();
        if (guard.failure()) std::cerr << "the supervisor's decision threw\n";
    }
    const sc::response fd_answer = sc::response::with_fd(0, false);
    return answered + static_cast<std::uint64_t>(fd_answer.fd());
}

// A root filesystem: a plan with every kind of step, and the default.
ctr::mount::plan root_plan() {
    ctr::mount::plan p{.rootfs = "/srv/image", .read_only_root = true, .nosuid_root = true};
    p.missing_points = ctr::mount::missing_mount_points::make_in_skeleton;
    p.proc("/proc", {.subset_pid = true, .hide = ctr::mount::hide_pids::invisible})
        .sysfs()
        .dev()
        .devpts()
        .mqueue()
        .tmpfs("/tmp", {.size = "64M", .mode = 01777, .uid = 0u, .noexec = true})
        .bind("/etc/resolv.conf", "/etc/resolv.conf", {.read_only = true, .optional = true})
        .bind("/srv/data", "/data", {.idmap = ctr::mount::idmapping::when_supported})
        .overlay("/work", {.lower = {"/srv/lower"}, .upper = "/srv/upper", .work = "/srv/work"})
        .directory("/run/app", 0700)
        .file("/run/app/ready")
        .symlink("/proc/self/fd", "/dev/fd")
        .mask("/proc/kcore")
        .read_only("/etc")
        .set_attributes("/data", {.nosuid = true, .nodev = true})
        .filesystem("devpts", "", "/dev/pts2",
                    {.nosuid = true, .atime = ctr::mount::access_time::strict, .data = {"newinstance", "gid=5"}})
        .write("/proc/sys/net/ipv4/ping_group_range", "0 0");
    return p;
}

// Mounts in the caller's own mount namespace, each undone by its guard.
void guarded_mounts(const std::string& dir) {
    ctr::mount::guard scratch = ctr::mount::tmpfs(dir, {.size = "1M"});
    ctr::mount::guard view = ctr::mount::bind(dir, dir, {.read_only = true});
    view.unmount_lazily();
    if (view.active()) view.unmount();
    ctr::mount::guard merged =
        ctr::mount::overlay(dir + "/merged", {.lower = {dir + "/a", dir + "/b"}, .upper = {}, .work = {}});
    ctr::mount::guard procfs = ctr::mount::proc(dir + "/proc", {.hide = ctr::mount::hide_pids::no_access});
    const std::string kept = procfs.release();
    std::cout << "mounted at " << scratch.target() << ", " << merged.target() << " and " << kept << '\n';
}

// Addresses, a veth, a port mapping.
ctr::net::veth network() {
    const auto host = ctr::net::ipv4_interface::parse("10.88.0.1/30");
    const auto inside = ctr::net::ipv4_interface{ctr::net::ipv4_address::parse("10.88.0.2"), 30};
    std::cout << host.to_string() << " holds " << inside.address.to_string() << ": " << host.contains(inside.address)
              << ", netmask " << host.netmask().to_string() << '\n';
    const auto host6 = ctr::net::ipv6_interface::parse("fd00:db8::1/64");
    const ctr::net::ip_address either = ctr::net::ip_address::parse("2001:db8::1");
    std::cout << host6.network().to_string() << " holds " << either.to_string() << ": "
              << host6.contains(either.ipv6()) << ", " << either.is_unspecified() << '\n';
    return {.host_name = "ctr-strict",
            .host_address = host,
            .container_address = inside,
            .mtu = 1400,
            .host_ipv6 = host6,
            .container_ipv6 = ctr::net::ipv6_interface::parse("fd00:db8::2/64")};
}

// A group with every kind of limit, and what it reports.
void cgroup_use() {
    ctr::cgroup::group g({.prefix = "strict",
                          .limits = {.memory_max = "64M",
                                     .swap_max = "0",
                                     .cpus = 0.5,
                                     .cpu_weight = 100u,
                                     .pids_max = 64u,
                                     .io_max = {{.device = "/dev/vda", .read_bps = "10M", .write_iops = 100u}}},
                          .controllers = {"hugetlb"},
                          .move_caller_to_leaf = true,
                          .remove_timeout = 2s});
    std::cout << g.name() << ' ' << ctr::to_string(g.layout()) << ' ' << g.path() << ' ' << g.path("memory") << '\n';
    for (const std::string& dir : g.paths()) std::cout << dir << '\n';
    std::cout << g.memory_max_bytes().value_or(0) << ' ' << g.clone_into_fd() << ' ' << g.needs_attach_before_exec()
              << '\n';
    g.freeze(1s);
    g.thaw(1s);
    for (const pid_t p : g.pids()) std::cout << p << '\n';
    g.kill_all(1s);
    if (!g.wait_empty(1s)) std::cerr << "still busy\n";
    const ctr::cgroup::stats s = g.read_stats();
    std::cout << s.memory_peak.value_or(0) << ' ' << s.cpu_usage.value_or(0ns).count() << ' '
              << g.oom_kills().value_or(0) << '\n';
    ctr::cgroup::group moved = std::move(g);
    moved.remove();
    std::cout << ctr::cgroup::reap_stale("strict") << ' ' << ctr::cgroup::parse_size("1.5G") << '\n';
}

// The full launch: every layer of spawn, with options as designated
// initializers, the way README shows them.
int spawn_everything(ctr::cgroup::group& group) {
    ctr::process::options opts{
        .executable = "/bin/sh",
        .env = {.inherit = false, .set = {{"PATH", "/usr/bin:/bin"}}, .unset = {"HOME"}},
        .cwd = "/",
        .std_in = ctr::process::stdio::null(),
        .std_out = ctr::process::stdio::capture(),
        .std_err = ctr::process::stdio::append_to("/tmp/strict.log"),
        .fds = {{.source = 0, .target = 3}},
        .die_with_parent = true,
        .timeout = 10s,
        .kill_grace = 500ms,
        .rlimits = {{.resource = RLIMIT_NOFILE, .soft = 1024, .hard = 1024}},
        .umask = 022,
        .new_session = true,
        .gid = 0u,
        .uid = 0u,
        .namespaces = ctr::ns::pid | ctr::ns::mount | ctr::ns::uts | ctr::ns::ipc | ctr::ns::network,
        .hostname = "strict",
        .id_maps = {.uid = {{.inside = 0, .outside = 100000, .count = 65536}},
                    .gid = {{.inside = 0, .outside = 100000, .count = 65536}}},
        .time_offsets = {.monotonic_seconds = 3600},
        .cgroup = &group,
        .root = root_plan(),
        .network = network(),
        .while_child_waits = {[](const ctr::process::waiting_child& c) { std::cout << "child " << c.pid << '\n'; }},
        .security = {.capabilities = capability_policy(), .no_new_privileges = true, .seccomp = seccomp_filter()},
    };
    ctr::process::child child = ctr::process::spawn({"sh", "-c", "echo hi"}, opts);
    if (const ctr::net::veth_info* made = child.network())
        std::cout << made->host_name << ' ' << made->container_address.to_string() << '\n';
    child.signal(SIGCONT);
    if (const auto early = child.wait_for(100ms)) return early->exit_code.value_or(-1);
    const ctr::process::result r = child.wait();
    std::cout << r.std_out << r.success() << r.timed_out << r.oom_killed << r.pid_namespace_orphans_killed
              << r.wall_time.count() << r.rusage_max_rss_bytes << r.memory_peak_bytes.value_or(0) << '\n';

    // The simple forms: defaults, a pipe, a released child, a copied memory
    // clone with the confined set and the default root.
    ctr::process::child piped = ctr::process::spawn({"cat"}, {.std_in = ctr::process::stdio::pipe(),
                                                              .std_out = ctr::process::stdio::from_fd(1),
                                                              .clone = ctr::process::clone_style::copy_memory});
    piped.std_in().reset();
    piped.kill();
    const ctr::unique_fd pidfd = ctr::process::spawn({"true"}).release();
    std::cout << pidfd.get() << '\n';
    // A pty made inside the sandbox, its master relayed by the caller.
    ctr::process::child at_terminal = ctr::process::spawn(
        {"sh"}, {.namespaces = ctr::ns::pid, .root = ctr::mount::host_readonly(),
                 .terminal = ctr::process::terminal_options{.size = {.rows = 40, .columns = 120}}});
    at_terminal.resize_terminal({.rows = 50, .columns = 132});
    const ctr::unique_fd master = std::move(at_terminal.terminal());
    std::cout << master.get() << '\n';
    return r.exit_code.value_or(-1);
}

// Namespaces: kinds, a persisted namespace, a thread's scope.
void namespaces(pid_t target) {
    constexpr ctr::ns::kinds some = ctr::ns::network | ctr::ns::uts;
    static_assert(some.has(ctr::ns::network) && !some.without(ctr::ns::uts).has(ctr::ns::uts));
    for (const ctr::ns::kind k : ctr::ns::every_kind) std::cout << ctr::ns::name(k) << ' ';
    {
        ctr::ns::scope fresh(some);
        fresh.leave();
    }
    {
        ctr::ns::fresh_scope<ctr::ns::kind::network, ctr::ns::kind::ipc> fresh;
    }
    ctr::ns::persisted kept = ctr::ns::persist(target, ctr::ns::network, "/run/strict-netns");
    ctr::ns::scope joined({kept.to_join(ctr::ns::network), ctr::ns::existing::fd(ctr::ns::uts, 3)});
    std::cout << kept.path() << '\n';
}

// Port publishing into a sandbox address.
void publish_ports() {
    const auto mapping = ctr::net::port_mapping::parse("127.0.0.1:8080:80/tcp");
    std::cout << ctr::net::port_mapping::parse("[::1]:8080:80").to_string() << '\n';
    ctr::net::port_forwarder forwarder({mapping, ctr::net::port_mapping::parse("5353:53/udp")},
                                       {.udp_idle_timeout = 30s, .tcp_buffer_size = 16 * 1024});
    forwarder.start(ctr::net::ipv4_address::parse("10.88.0.2"));
    const ctr::net::port_forward_stats stats = forwarder.stats();
    std::cout << forwarder.host_port(0) << ' ' << forwarder.mappings().front().to_string() << ' '
              << mapping.host_side() << ' ' << stats.tcp_connections << '\n';
    forwarder.close();

    // The same port by the kernel's DNAT, on a sandbox's veth, and standalone.
    ctr::process::child child = ctr::process::spawn(
        {"true"}, {.network = ctr::net::veth{.outbound = true, .publish = {mapping}}});
    for (const auto& published : child.network()->published) std::cout << published.to_string() << '\n';
    ctr::net::port_nat rules = ctr::net::port_nat::add(*child.network(), {mapping});
    std::cout << rules.comment() << ' ' << rules.mappings().size() << '\n';
    rules.remove();
}

// A network through pasta: spawn's option, and pasta on namespaces of the
// caller's own.
void pasta_network(int netns_fd) {
    ctr::process::child child = ctr::process::spawn(
        {"true"}, {.die_with_owner = true,
                   .pasta = ctr::net::pasta{.tcp_ports = {"8080:80"}, .udp_ports = {"5353:53"},
                                            .interface_name = "eth0", .extra_args = {"--mtu", "1500"},
                                            .ready_timeout = 5s}});
    std::cout << child.pasta_pid() << ' ' << child.wait().exit_code.value_or(-1) << '\n';
    ctr::net::pasta_process helper = ctr::net::start_pasta(ctr::net::pasta{}, {.netns_fd = netns_fd});
    std::cout << helper.pid() << '\n';
    helper.stop();
}

// A prepared sandbox and its runs, from several threads' kind of use.
int prepared_runs() {
    const ctr::process::prepared_sandbox box({.namespaces = ctr::ns::all, .security = ctr::security::confined()},
                                             {.fresh_tmpfs = {"/tmp"}, .most_runs = 16});
    ctr::process::prepared_run run = box.run({"sh", "-c", "echo $$"}, {.std_out = ctr::process::stdio::capture(),
                                                                       .timeout = 5s});
    std::cout << run.pid_in_sandbox() << ' ' << run.pidfd() << ' ' << box.pid() << '\n';
    run.signal(SIGTERM);
    const ctr::process::result r = run.wait();
    std::cout << r.std_out;
    return r.exit_code.value_or(-1);
}

}  // namespace

int main(int argc, char** argv) {
    // Everything with effects on the host runs only when asked by name; the
    // rest only reads.
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    try {
        const ctr::security nothing = ctr::security::unconfined();
        std::cout << describe_failure() << ' ' << nothing.takes_anything_away() << ' '
                  << ctr::caps::default_set().to_string() << ' ' << ctr::caps::supported().size() << '\n';
        const ctr::mount::prepared_plan prepared = ctr::mount::host_readonly().prepare();
        static_cast<void>(prepared);
        for (const std::string_view what : args) {
            if (what == "probe") {
                std::ostringstream text;
                text << ctr::probe();
                std::cout << text.str();
            } else if (what == "spawn") {
                ctr::cgroup::group group;
                return spawn_everything(group);
            } else if (what == "confined") {
                return strict_consumer::spawn_confined();
            } else if (what == "cgroup") {
                cgroup_use();
            } else if (what == "mount") {
                guarded_mounts("/mnt");
            } else if (what == "namespaces") {
                namespaces(1);
            } else if (what == "prepared") {
                return prepared_runs();
            } else if (what == "notify") {
                return static_cast<int>(supervised_mkdir());
            } else if (what == "outbound") {
                std::cout << ctr::net::reap_stale_outbound() << " stale outbound rules removed\n";
            } else if (what == "ports") {
                publish_ports();
            } else if (what == "pasta") {
                pasta_network(3);
            } else if (what == "veth") {
                const ctr::net::veth_pair pair = ctr::net::create_veth(network(), ctr::net::peer_namespace::of_process(1));
                std::cout << pair.info().host_name << '\n';
                ctr::net::configure_interface("lo", ctr::net::ipv4_interface::parse("127.0.0.1/8"));
                ctr::net::configure_ipv6("lo", ctr::net::ipv6_interface::parse("fd00:db8::9/128"),
                                         ctr::net::ipv6_address::parse("fd00:db8::1"));
            }
        }
    } catch (const ctr::error& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
    return 0;
}
