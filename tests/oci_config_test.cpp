// ctr-run's config.json mapping (ctr-run/oci/config.hpp): Podman's own
// config maps field by field; malformed, mistyped and unsupported configs
// are refused with an error that names the field; and a mapped config runs
// on a busybox root, seen from inside.
#ifdef CTR_TEST_OCI_CONFIG

#include "support.hpp"

#include "oci/config.hpp"

#include <gtest/gtest.h>

#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

namespace oci = ctr_run::oci;
namespace mnt = ctr::mount;
using json = nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The smallest config the mapping takes.
json minimal() {
    return json::parse(R"({
        "ociVersion": "1.0.2",
        "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "mount"}]}
    })");
}

oci::container_config parse(const json& config) { return oci::parse_config(config.dump(), "/srv/bundle"); }

// The message of the config_error that parsing throws, or "" when it parses.
std::string error_of(const json& config) {
    try {
        parse(config);
    } catch (const oci::config_error& e) {
        return e.what();
    }
    return "";
}

std::string error_of_text(std::string_view text) {
    try {
        oci::parse_config(text, "/srv/bundle");
    } catch (const oci::config_error& e) {
        return e.what();
    }
    return "";
}

// A config_error's message starts with the field's path.
#define EXPECT_REFUSED(config, field)                                                    \
    do {                                                                                 \
        const std::string message_ = error_of(config);                                   \
        EXPECT_EQ(message_.rfind(std::string(field) + ": ", 0), 0u) << "message: " << message_; \
    } while (0)

template <class Request>
std::vector<const Request*> requests_of(const mnt::plan& plan) {
    std::vector<const Request*> out;
    for (const auto& r : plan.requests)
        if (const auto* typed = r.get_if<Request>()) out.push_back(typed);
    return out;
}

const mnt::detail::filesystem_request* filesystem_at(const mnt::plan& plan, const std::string& target) {
    for (const auto* r : requests_of<mnt::detail::filesystem_request>(plan))
        if (r->target == target) return r;
    return nullptr;
}

// A network namespace of a child's own, for the config to join by path as
// Podman does; the child waits until the pipe closes.
struct other_network_namespace {
    pid_t pid = -1;
    int hold = -1;
    other_network_namespace() {
        int fds[2];
        if (pipe(fds) != 0) return;
        pid = fork();
        if (pid == 0) {
            close(fds[1]);
            if (unshare(CLONE_NEWNET) != 0) _exit(1);
            char byte;
            while (read(fds[0], &byte, 1) > 0) {}
            _exit(0);
        }
        close(fds[0]);
        hold = fds[1];
    }
    ~other_network_namespace() {
        if (hold >= 0) close(hold);
        if (pid > 0) waitpid(pid, nullptr, 0);
    }
    // Once the child has left the caller's namespace.
    std::string path() const {
        const std::string p = "/proc/" + std::to_string(pid) + "/ns/net";
        struct stat own {}, theirs {};
        stat("/proc/self/ns/net", &own);
        for (int i = 0; i < 2000; ++i) {
            if (stat(p.c_str(), &theirs) == 0 && theirs.st_ino != own.st_ino) return p;
            usleep(1000);
        }
        return {};
    }
};

}  // namespace

TEST(oci_config, podman_run_it_config_maps_field_by_field) {
    json config = json::parse(read_file(CTR_OCI_FIXTURES "/podman-4.3-run-it.json"));
    // Podman hands the network namespace as a path; here one of a child's own.
    other_network_namespace netns;
    const std::string netns_path = netns.path();
    if (netns_path.empty()) GTEST_SKIP() << "cannot make a network namespace here";
    for (auto& n : config["linux"]["namespaces"])
        if (n["type"] == "network") n["path"] = netns_path;

    const auto c = oci::parse_config(config.dump(), "/var/lib/bundle/../bundle");
    EXPECT_EQ(c.oci_version, "1.0.2-dev");
    EXPECT_EQ(c.bundle, "/var/lib/bundle");
    EXPECT_EQ(c.args, std::vector<std::string>{"/bin/bash"});
    EXPECT_TRUE(c.terminal);
    const auto& o = c.options;
    EXPECT_EQ(o.uid, 0u);
    EXPECT_EQ(o.gid, 0u);
    EXPECT_EQ(o.groups, std::vector<gid_t>{});
    EXPECT_EQ(o.umask, mode_t{022});
    EXPECT_FALSE(o.env.inherit);
    ASSERT_EQ(o.env.set.size(), 5u);
    EXPECT_EQ(o.env.set[1], (std::pair<std::string, std::string>{"TERM", "xterm"}));
    EXPECT_EQ(o.cwd, "/");
    EXPECT_FALSE(o.init);  // args[0] is pid 1, as with runc
    ASSERT_TRUE(o.security.capabilities);
    EXPECT_EQ(o.security.capabilities->keep, ctr::caps::default_set());
    EXPECT_TRUE(o.security.capabilities->ambient.empty());
    EXPECT_FALSE(o.security.no_new_privileges);
    ASSERT_EQ(o.rlimits.size(), 2u);
    EXPECT_EQ(o.rlimits[0].resource, RLIMIT_NOFILE);
    EXPECT_EQ(o.rlimits[0].soft, rlim_t{20000});
    EXPECT_EQ(o.rlimits[1].resource, RLIMIT_NPROC);
    EXPECT_EQ(o.rlimits[1].hard, rlim_t{32768});
    EXPECT_EQ(o.hostname, "1477bcffa997");
    EXPECT_EQ(o.namespaces, ctr::ns::pid | ctr::ns::ipc | ctr::ns::uts | ctr::ns::mount);
    ASSERT_EQ(o.join.size(), 1u);
    EXPECT_EQ(o.join[0].which, ctr::ns::network);
    EXPECT_EQ(std::get<std::string>(o.join[0].source), netns_path);
    EXPECT_EQ(o.cgroup, nullptr);

    ASSERT_TRUE(o.root);
    const auto& plan = *o.root;
    EXPECT_EQ(plan.rootfs, "/var/lib/containers/storage/overlay/"
                           "7c1a10bb9ec8c7be00219e8418eb4459831cf3675064a5b1d232e47e4e9e5dba/merged");
    EXPECT_FALSE(plan.read_only_root);
    EXPECT_EQ(plan.missing_points, mnt::missing_mount_points::make_in_root);

    const auto* proc = filesystem_at(plan, "/proc");
    ASSERT_TRUE(proc);
    EXPECT_EQ(proc->fs_type, "proc");
    EXPECT_TRUE(proc->options.nosuid && proc->options.noexec && proc->options.nodev && !proc->options.read_only);
    const auto* dev = filesystem_at(plan, "/dev");
    ASSERT_TRUE(dev);
    EXPECT_EQ(dev->fs_type, "tmpfs");
    EXPECT_EQ(dev->options.atime, mnt::access_time::strict);
    EXPECT_FALSE(dev->options.nodev);
    EXPECT_EQ(dev->options.data, (std::vector<std::string>{"mode=755", "size=65536k"}));
    const auto* sys = filesystem_at(plan, "/sys");
    ASSERT_TRUE(sys);
    EXPECT_TRUE(sys->options.read_only);
    const auto* pts = filesystem_at(plan, "/dev/pts");
    ASSERT_TRUE(pts);
    EXPECT_EQ(pts->fs_type, "devpts");
    EXPECT_EQ(pts->options.data, (std::vector<std::string>{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
    const auto* mqueue = filesystem_at(plan, "/dev/mqueue");
    ASSERT_TRUE(mqueue);
    EXPECT_EQ(mqueue->fs_type, "mqueue");

    const auto binds = requests_of<mnt::detail::bind_request>(plan);
    const mnt::detail::bind_request* shm = nullptr;
    const mnt::detail::bind_request* cgroup_bind = nullptr;
    for (const auto* b : binds) {
        if (b->target == "/dev/shm") shm = b;
        if (b->target == "/sys/fs/cgroup") cgroup_bind = b;
    }
    ASSERT_TRUE(shm);
    EXPECT_FALSE(shm->options.recursive);  // "bind", not "rbind"
    EXPECT_TRUE(shm->options.nosuid && shm->options.noexec && shm->options.nodev && !shm->options.read_only);
    // The cgroup mount: cgroup2 on a pure v2 host, else the host's tree, read-only.
    if (const auto* cgroup2 = filesystem_at(plan, "/sys/fs/cgroup")) {
        EXPECT_EQ(cgroup2->fs_type, "cgroup2");
        EXPECT_TRUE(cgroup2->options.read_only);
    } else {
        ASSERT_TRUE(cgroup_bind);
        EXPECT_EQ(cgroup_bind->source, "/sys/fs/cgroup");
        EXPECT_TRUE(cgroup_bind->options.read_only && cgroup_bind->options.recursive);
    }
    // The default devices and symlinks of a /dev of the config's own.
    bool null_bound = false;
    for (const auto* b : binds) null_bound = null_bound || (b->source == "/dev/null" && b->target == "/dev/null");
    EXPECT_TRUE(null_bound);
    bool ptmx = false;
    for (const auto* l : requests_of<mnt::detail::symlink_request>(plan))
        ptmx = ptmx || (l->target == "/dev/ptmx" && l->text == "pts/ptmx");
    EXPECT_TRUE(ptmx);

    // The sysctl is written before /proc/sys turns read-only; masks come last.
    std::size_t write_at = 0, sys_read_only_at = 0, first_mask_at = 0, index = 0;
    for (const auto& r : plan.requests) {
        ++index;
        if (const auto* w = r.get_if<mnt::detail::write_request>()) {
            EXPECT_EQ(w->target, "/proc/sys/net/ipv4/ping_group_range");
            EXPECT_EQ(w->text, "0 0");
            write_at = index;
        }
        if (const auto* p = r.get_if<mnt::detail::path_request>()) {
            if (p->kind == ctr::detail::mount_step_kind::read_only && p->target == "/proc/sys") sys_read_only_at = index;
            if (p->kind == ctr::detail::mount_step_kind::mask && first_mask_at == 0) first_mask_at = index;
        }
    }
    EXPECT_GT(write_at, 0u);
    EXPECT_LT(write_at, sys_read_only_at);
    EXPECT_LT(sys_read_only_at, first_mask_at);
    std::size_t masks = 0, read_only = 0;
    for (const auto* p : requests_of<mnt::detail::path_request>(plan)) {
        masks += p->kind == ctr::detail::mount_step_kind::mask;
        read_only += p->kind == ctr::detail::mount_step_kind::read_only;
    }
    EXPECT_EQ(masks, 11u);
    EXPECT_EQ(read_only, 6u);

    ASSERT_TRUE(c.cgroup);
    EXPECT_EQ(c.cgroup->path, "/libpod_parent/libpod-1477bcffa997bf8b35842d8aba532368883a80504298b28f0e1b07fb82d5b69c");
    EXPECT_EQ(c.cgroup->limits.pids_max, 2048u);
    ASSERT_EQ(c.cgroup->devices.size(), 1u);
    EXPECT_FALSE(c.cgroup->devices[0].allow);
    EXPECT_EQ(c.cgroup->devices[0].type, 'a');
    EXPECT_EQ(c.cgroup->devices[0].access, "rwm");
    EXPECT_FALSE(c.cgroup->devices[0].major);

    ASSERT_TRUE(c.seccomp);
    EXPECT_EQ((*c.seccomp)["defaultAction"], "SCMP_ACT_ERRNO");
    EXPECT_EQ(c.annotations.size(), 8u);
    EXPECT_EQ(c.annotations.at("io.container.manager"), "libpod");
    EXPECT_FALSE(c.oom_score_adj);

    // The plan is one the library takes as it is (binds of paths that exist
    // here: the ones under Podman's storage do not).
    auto runnable = plan;
    runnable.rootfs = "/";
    std::erase_if(runnable.requests, [](const mnt::detail::mount_request& r) {
        const auto* b = r.get_if<mnt::detail::bind_request>();
        return b && b->source.rfind("/var/lib/containers", 0) == 0;
    });
    std::erase_if(runnable.requests, [](const mnt::detail::mount_request& r) {
        const auto* b = r.get_if<mnt::detail::bind_request>();
        return b && b->source.rfind("/run/containers", 0) == 0;
    });
    EXPECT_NO_THROW(runnable.prepare());
}

TEST(oci_config, each_process_field_maps) {
    json c = minimal();
    c["process"] = json::parse(R"({
        "terminal": false, "consoleSize": {"height": 40, "width": 120},
        "user": {"uid": 1000, "gid": 100, "umask": 63, "additionalGids": [5, 27]},
        "args": ["sh", "-c", "echo"], "env": ["A=1", "B=x=y", "EMPTY="], "cwd": "/work",
        "capabilities": {"bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "permitted": ["CAP_NET_BIND_SERVICE"],
                         "effective": ["CAP_NET_BIND_SERVICE"], "inheritable": ["CAP_NET_BIND_SERVICE"],
                         "ambient": ["CAP_NET_BIND_SERVICE"]},
        "rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}],
        "noNewPrivileges": true, "oomScoreAdj": -500, "apparmorProfile": "", "selinuxLabel": ""
    })");
    const auto out = parse(c);
    EXPECT_EQ(out.args, (std::vector<std::string>{"sh", "-c", "echo"}));
    EXPECT_TRUE(out.options.executable.empty());
    ASSERT_TRUE(out.console_size);
    EXPECT_EQ(out.console_size->rows, 40);
    EXPECT_EQ(out.console_size->columns, 120);
    EXPECT_EQ(out.options.uid, 1000u);
    EXPECT_EQ(out.options.gid, 100u);
    EXPECT_EQ(out.options.groups, (std::vector<gid_t>{5, 27}));
    EXPECT_EQ(out.options.umask, mode_t{077});
    ASSERT_EQ(out.options.env.set.size(), 3u);
    EXPECT_EQ(out.options.env.set[1], (std::pair<std::string, std::string>{"B", "x=y"}));
    EXPECT_EQ(out.options.env.set[2], (std::pair<std::string, std::string>{"EMPTY", ""}));
    EXPECT_EQ(out.options.cwd, "/work");
    const auto& caps = *out.options.security.capabilities;
    EXPECT_EQ(caps.keep, (ctr::caps::set{ctr::capability::kill, ctr::capability::net_bind_service}));
    EXPECT_EQ(caps.ambient, ctr::caps::set{ctr::capability::net_bind_service});
    EXPECT_EQ(caps.inheritable, ctr::caps::set{ctr::capability::net_bind_service});
    EXPECT_EQ(out.options.rlimits.at(0).resource, RLIMIT_CORE);
    EXPECT_TRUE(out.options.security.no_new_privileges);
    EXPECT_EQ(out.oom_score_adj, -500);
    // No capabilities object: the launch's own are left alone, as runc does.
    EXPECT_FALSE(parse(minimal()).options.security.capabilities);
}

TEST(oci_config, namespaces_ids_root_and_hostnames_map) {
    json c = minimal();
    c["hostname"] = "box";
    c["domainname"] = "example.org";
    c["root"] = {{"path", "/abs/rootfs"}, {"readonly", true}};
    c["linux"] = json::parse(R"({
        "namespaces": [{"type": "mount"}, {"type": "user"}, {"type": "uts"}, {"type": "pid"},
                       {"type": "network", "path": "/run/netns/x"}, {"type": "cgroup"}, {"type": "time"}],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "timeOffsets": {"monotonic": {"secs": 86400, "nanosecs": 0}},
        "rootfsPropagation": "rslave", "mountLabel": ""
    })");
    const auto out = parse(c);
    const auto& o = out.options;
    EXPECT_EQ(o.namespaces,
              ctr::ns::mount | ctr::ns::user | ctr::ns::uts | ctr::ns::pid | ctr::ns::cgroup | ctr::ns::time);
    ASSERT_EQ(o.join.size(), 1u);
    EXPECT_EQ(std::get<std::string>(o.join[0].source), "/run/netns/x");
    ASSERT_EQ(o.id_maps.uid.size(), 1u);
    EXPECT_EQ(o.id_maps.uid[0].outside, 100000u);
    EXPECT_EQ(o.id_maps.gid[0].count, 65536u);
    EXPECT_FALSE(o.id_maps.full_range_when_available);
    EXPECT_EQ(o.time_offsets.monotonic_seconds, 86400);
    EXPECT_EQ(o.hostname, "box");
    EXPECT_EQ(o.domainname, "example.org");
    EXPECT_EQ(o.root->rootfs, "/abs/rootfs");
    EXPECT_TRUE(o.root->read_only_root);
    EXPECT_EQ(o.root->missing_points, mnt::missing_mount_points::make_in_skeleton);
    EXPECT_EQ(o.root->propagation, mnt::propagation_mode::slave);
    // A relative root.path is the bundle's.
    EXPECT_EQ(parse(minimal()).options.root->rootfs, "/srv/bundle/rootfs");
}

TEST(oci_config, mounts_map_with_their_options) {
    json c = minimal();
    c["linux"]["namespaces"] = json::parse(R"([{"type": "mount"}, {"type": "user"}])");
    c["linux"]["uidMappings"] = json::parse(R"([{"containerID": 0, "hostID": 1000, "size": 1}])");
    c["linux"]["gidMappings"] = json::parse(R"([{"containerID": 0, "hostID": 1000, "size": 1}])");
    c["mounts"] = json::parse(R"([
        {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "nosymfollow"]},
        {"destination": "/vol", "type": "none", "source": "volume", "options": ["bind", "idmap"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "noatime", "size=1m", "mode=1777", "uid=5"]}
    ])");
    const auto out = parse(c);
    const auto binds = requests_of<mnt::detail::bind_request>(*out.options.root);
    ASSERT_EQ(binds.size(), 2u);
    EXPECT_EQ(binds[0]->source, "/srv/data");
    EXPECT_TRUE(binds[0]->options.recursive && binds[0]->options.read_only && binds[0]->options.nosymfollow);
    EXPECT_EQ(binds[1]->source, "/srv/bundle/volume");  // relative: the bundle's
    EXPECT_FALSE(binds[1]->options.recursive);
    EXPECT_EQ(binds[1]->options.idmap, mnt::idmapping::required);
    const auto* tmp = filesystem_at(*out.options.root, "/tmp");
    ASSERT_TRUE(tmp);
    EXPECT_EQ(tmp->options.atime, mnt::access_time::none);
    EXPECT_TRUE(tmp->options.nosuid && tmp->options.nodev && !tmp->options.noexec);
    EXPECT_EQ(tmp->options.data, (std::vector<std::string>{"size=1m", "mode=1777", "uid=5"}));
}

TEST(oci_config, sysctls_and_devices_map) {
    json c = minimal();
    c["mounts"] = json::parse(R"([{"destination": "/proc", "type": "proc", "source": "proc"}])");
    c["linux"]["namespaces"] = json::parse(R"([{"type": "mount"}, {"type": "network"}, {"type": "ipc"}])");
    c["linux"]["sysctl"] = json::parse(R"({"net.ipv4.ip_forward": "1", "net/ipv4/conf/eth0.100/forwarding": "0",
                                           "kernel.shmmax": "65536", "fs.mqueue.msg_max": "20"})");
    c["linux"]["devices"] = json::parse(R"([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
                                            {"path": "/dev/xzero", "type": "c", "major": 1, "minor": 5}])");
    std::string zero_source = "/dev/char/1:5";
    struct stat st {};
    if (stat(zero_source.c_str(), &st) != 0) {
        c["linux"]["devices"].erase(1);
        zero_source.clear();
    }
    const auto out = parse(c);
    std::map<std::string, std::string> writes;
    for (const auto* w : requests_of<mnt::detail::write_request>(*out.options.root)) writes[w->target] = w->text;
    EXPECT_EQ(writes, (std::map<std::string, std::string>{{"/proc/sys/net/ipv4/ip_forward", "1"},
                                                          {"/proc/sys/net/ipv4/conf/eth0.100/forwarding", "0"},
                                                          {"/proc/sys/kernel/shmmax", "65536"},
                                                          {"/proc/sys/fs/mqueue/msg_max", "20"}}));
    std::map<std::string, std::string> binds;
    for (const auto* b : requests_of<mnt::detail::bind_request>(*out.options.root)) binds[b->target] = b->source;
    EXPECT_EQ(binds["/dev/null"], "/dev/null");
    if (!zero_source.empty()) {
        EXPECT_EQ(binds["/dev/xzero"], zero_source);  // podman --device /dev/zero:/dev/xzero
    }

    // Another device at that path, or none: refused, naming the entry.
    c["linux"]["devices"] = json::parse(R"([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}])");
    c["linux"]["devices"][0]["major"] = 4095;
    EXPECT_REFUSED(c, "linux.devices[0]");
    c["linux"]["devices"] = json::parse(R"([{"path": "/dev/null", "type": "b", "major": 1, "minor": 3}])");
    EXPECT_REFUSED(c, "linux.devices[0]");
    c["linux"]["devices"] = json::parse(R"([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 1}])");
    EXPECT_REFUSED(c, "linux.devices[0].fileMode");
    // The host's own network namespace, joined by path: a sysctl there would change the host.
    c["linux"].erase("devices");
    c["linux"]["namespaces"] = json::parse(R"([{"type": "mount"}, {"type": "ipc"}, {"type": "network", "path": "/proc/self/ns/net"}])");
    EXPECT_REFUSED(c, "linux.sysctl.net.ipv4.ip_forward");
    c["linux"]["namespaces"] = json::parse(R"([{"type": "mount"}, {"type": "ipc"}, {"type": "network", "path": "/nonexistent/net"}])");
    EXPECT_REFUSED(c, "linux.sysctl.net.ipv4.ip_forward");
    c["linux"]["namespaces"] = json::parse(R"([{"type": "mount"}, {"type": "network"}])");
    c["linux"]["sysctl"] = json::parse(R"({"kernel.shmmax": "1"})");
    EXPECT_REFUSED(c, "linux.sysctl.kernel.shmmax");
    c["linux"]["sysctl"] = json::parse(R"({"net/../kernel/panic": "1"})");
    EXPECT_REFUSED(c, "linux.sysctl.net/../kernel/panic");
    c.erase("mounts");
    c["linux"]["sysctl"] = json::parse(R"({"net.ipv4.ip_forward": "1"})");
    EXPECT_REFUSED(c, "linux.sysctl.net.ipv4.ip_forward");  // no /proc to write it in
}

// Podman adds tmpcopyup to every --tmpfs: taken where nothing would be copied.
TEST(oci_config, tmpcopyup_is_taken_only_over_nothing) {
    ctr_test::temp_dir dir;
    const std::string rootfs = dir.path + "/rootfs";
    std::filesystem::create_directories(rootfs + "/empty");
    std::filesystem::create_directories(rootfs + "/full");
    std::ofstream(rootfs + "/full/file") << "x";
    std::filesystem::create_symlink("/etc", rootfs + "/link");
    const auto with_tmpfs = [&](const std::string& target) {
        json c = minimal();
        c["root"]["path"] = rootfs;
        c["mounts"] = json::array();
        c["mounts"].push_back({{"destination", target}, {"type", "tmpfs"}, {"source", "tmpfs"},
                               {"options", {"rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}}});
        return c;
    };
    EXPECT_EQ(error_of(with_tmpfs("/empty")), "");
    EXPECT_EQ(error_of(with_tmpfs("/missing/below")), "");
    EXPECT_REFUSED(with_tmpfs("/full"), "mounts[0].options[4]");
    EXPECT_REFUSED(with_tmpfs("/link"), "mounts[0].options[4]");
    EXPECT_REFUSED(with_tmpfs("/link/x"), "mounts[0].options[4]");
    auto c = with_tmpfs("/full");
    c["mounts"][0]["options"].push_back("notmpcopyup");
    EXPECT_EQ(error_of(c), "");
    const auto parsed = parse(with_tmpfs("/empty"));
    const auto* tmp = filesystem_at(*parsed.options.root, "/empty");
    ASSERT_TRUE(tmp);
    EXPECT_TRUE(tmp->options.data.empty());  // tmpcopyup is not passed to the kernel
}

TEST(oci_config, resources_and_hooks_map) {
    json c = minimal();
    c["linux"]["cgroupsPath"] = "ctr/test";
    c["linux"]["resources"] = json::parse(R"({
        "memory": {"limit": 67108864, "swap": 134217728},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    })");
    c["hooks"] = json::parse(R"({
        "createRuntime": [{"path": "/usr/bin/hook", "args": ["hook", "create"], "env": ["X=1"], "timeout": 5}],
        "poststop": [{"path": "/bin/true"}]
    })");
    const auto out = parse(c);
    ASSERT_TRUE(out.cgroup);
    const auto& l = out.cgroup->limits;
    EXPECT_EQ(out.cgroup->path, "ctr/test");
    EXPECT_EQ(l.memory_max, "67108864");
    EXPECT_EQ(l.swap_max, "67108864");  // the spec's swap counts memory too
    EXPECT_EQ(l.cpu_weight, 39u);       // runc's conversion of 1024 shares
    EXPECT_DOUBLE_EQ(*l.cpus, 0.5);
    EXPECT_EQ(l.cpuset_cpus, "0-1");
    EXPECT_EQ(l.cpuset_mems, "0");
    EXPECT_EQ(l.pids_max, 64u);
    EXPECT_EQ(l.io_weight, 500u);
    ASSERT_EQ(l.io_max.size(), 1u);
    EXPECT_EQ(l.io_max[0].device, "8:0");
    EXPECT_EQ(l.io_max[0].read_bps, "1048576");
    EXPECT_EQ(l.io_max[0].write_iops, 100u);
    ASSERT_EQ(out.cgroup->devices.size(), 2u);
    EXPECT_EQ(out.cgroup->devices[1].type, 'c');
    EXPECT_EQ(out.cgroup->devices[1].minor, 3);
    EXPECT_EQ(out.cgroup->devices[1].access, "rw");
    ASSERT_EQ(out.hooks.create_runtime.size(), 1u);
    EXPECT_EQ(out.hooks.create_runtime[0].args, (std::vector<std::string>{"hook", "create"}));
    EXPECT_EQ(out.hooks.create_runtime[0].timeout, std::chrono::seconds(5));
    EXPECT_EQ(out.hooks.poststop.at(0).path, "/bin/true");
    EXPECT_TRUE(out.hooks.prestart.empty());
}

TEST(oci_config, apply_process_replaces_what_an_exec_gives) {
    auto base = parse(minimal());
    base.options.security.capabilities = ctr::caps::policy{.keep = ctr::caps::default_set()};
    oci::apply_process(json::parse(R"({"args": ["/bin/sh"], "cwd": "/tmp", "env": ["X=1"], "terminal": true})"), base);
    EXPECT_EQ(base.args, std::vector<std::string>{"/bin/sh"});
    EXPECT_EQ(base.options.cwd, "/tmp");
    EXPECT_TRUE(base.terminal);
    ASSERT_EQ(base.options.env.set.size(), 1u);
    EXPECT_EQ(base.options.security.capabilities->keep, ctr::caps::default_set());  // kept
    EXPECT_EQ(base.options.uid, 0u);
    try {
        oci::apply_process(json::parse(R"({"args": ["/bin/sh"], "cwd": 3})"), base);
        ADD_FAILURE() << "no error";
    } catch (const oci::config_error& e) {
        EXPECT_STREQ(e.what(), "process.cwd: expected a string, got 3");
    }
}

TEST(oci_config, malformed_json_is_refused_with_where) {
    for (const std::string_view text :
         {"", "{", "{\"ociVersion\": }", "[1, 2", "nul", "{\"a\": \"\\x\"}", "{\"a\": 1E99999}", "\"\xff\""}) {
        const std::string message = error_of_text(text);
        EXPECT_EQ(message.rfind("config.json: not valid JSON (", 0), 0u) << text << " -> " << message;
    }
    EXPECT_EQ(error_of_text("[]"), "config.json: expected an object, got an array");
}

TEST(oci_config, wrong_types_name_the_field_and_what_came) {
    json c = minimal();
    c["process"]["args"] = "/bin/true";
    EXPECT_EQ(error_of(c), "process.args: expected an array, got \"/bin/true\"");
    c = minimal();
    c["process"]["user"]["uid"] = -1;
    EXPECT_EQ(error_of(c), "process.user.uid: expected an integer from 0 to 4294967295, got -1");
    c = minimal();
    c["process"]["user"]["uid"] = 1.5;
    EXPECT_EQ(error_of(c), "process.user.uid: expected an integer, got 1.5");
    c = minimal();
    c["linux"]["resources"] = {{"memory", {{"limit", "abc"}}}};
    EXPECT_EQ(error_of(c), "linux.resources.memory.limit: expected an integer, got \"abc\"");
    c = minimal();
    c["mounts"] = json::parse(R"([{"destination": "/x", "type": "tmpfs", "options": ["ro", 7]}])");
    EXPECT_EQ(error_of(c), "mounts[0].options[1]: expected a string, got 7");
    c = minimal();
    c["process"]["env"] = {"NOEQUALS"};
    EXPECT_REFUSED(c, "process.env[0]");
    c = minimal();
    c["process"]["cwd"] = "relative";
    EXPECT_REFUSED(c, "process.cwd");
    c = minimal();
    c["process"]["rlimits"] = json::parse(R"([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}])");
    EXPECT_REFUSED(c, "process.rlimits[0].soft");
    c = minimal();
    c["process"]["capabilities"] = {{"bounding", {"CAP_NOPE"}}};
    EXPECT_REFUSED(c, "process.capabilities.bounding[0]");
    c = minimal();
    c["linux"]["namespaces"] = json::parse(R"([{"type": "mount"}, {"type": "mount"}])");
    EXPECT_REFUSED(c, "linux.namespaces[1].type");
    c = minimal();
    c["ociVersion"] = "2.0.0";
    EXPECT_REFUSED(c, "ociVersion");
    c = minimal();
    c.erase("root");
    EXPECT_REFUSED(c, "root");
    c = minimal();
    c["hooks"] = {{"poststart", {{{"path", "relative"}}}}};
    EXPECT_REFUSED(c, "hooks.poststart[0].path");
}

TEST(oci_config, unsupported_fields_are_refused_by_name) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"linux": {"intelRdt": {"closID": "x"}}})", "linux.intelRdt"},
        {R"({"linux": {"personality": {"domain": "LINUX32"}}})", "linux.personality"},
        {R"({"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}})", "linux.mountLabel"},
        {R"({"linux": {"resources": {"memory": {"reservation": 1024}}}})", "linux.resources.memory.reservation"},
        {R"({"linux": {"resources": {"memory": {"kernel": 1024}}}})", "linux.resources.memory.kernel"},
        {R"({"linux": {"resources": {"cpu": {"realtimeRuntime": 1000}}}})", "linux.resources.cpu.realtimeRuntime"},
        {R"({"linux": {"resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}}})",
         "linux.resources.hugepageLimits"},
        {R"({"linux": {"resources": {"unified": {"memory.high": "1G"}}}})", "linux.resources.unified"},
        {R"({"linux": {"resources": {"network": {"classID": 1}}}})", "linux.resources.network"},
        {R"({"linux": {"cgroupsPath": "machine.slice:libpod:abc"}})", "linux.cgroupsPath"},
        {R"({"linux": {"rootfsPropagation": "shared"}})", "linux.rootfsPropagation"},
        {R"({"linux": {"sysctl": {"kernel.panic": "1"}}})", "linux.sysctl.kernel.panic"},
        {R"({"linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}})", "linux.sysctl.net.ipv4.ip_forward"},
        {R"({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}})", "linux.uidMappings"},
        {R"({"linux": {"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]}})", "linux.namespaces[0].path"},
        {R"({"linux": {"namespaces": [{"type": "pid"}]}})", "linux.namespaces"},
        {R"({"linux": {"devices": [{"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0}]}})", "linux.devices[0].type"},
        {R"({"linux": {"timeOffsets": {"monotonic": {"secs": 1}}}})", "linux.timeOffsets"},
        {R"({"process": {"apparmorProfile": "podman-default"}})", "process.apparmorProfile"},
        {R"({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}})", "process.selinuxLabel"},
        {R"({"process": {"ioPriority": {"class": "IOPRIO_CLASS_IDLE"}}})", "process.ioPriority"},
        {R"({"process": {"scheduler": {"policy": "SCHED_OTHER"}}})", "process.scheduler"},
        {R"({"process": {"user": {"uid": 0, "gid": 0, "username": "root"}}})", "process.user.username"},
        {R"({"process": {"capabilities": {"bounding": ["CAP_KILL"], "permitted": ["CAP_CHOWN"]}}})",
         "process.capabilities.permitted"},
        {R"({"process": {"capabilities": {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]}}})",
         "process.capabilities.ambient"},
        {R"({"hostname": "box"})", "hostname"},
        {R"({"windows": {}})", "windows"},
        {R"({"mounts": [{"destination": "/x", "type": "tmpfs", "options": ["sync"]}]})", "mounts[0].options[0]"},
        {R"({"mounts": [{"destination": "/x", "type": "bind", "source": "/y", "options": ["rshared"]}]})",
         "mounts[0].options"},
        {R"({"mounts": [{"destination": "/x", "type": "bind", "source": "/y", "options": ["size=1m"]}]})",
         "mounts[0].options"},
        {R"({"mounts": [{"destination": "/x", "type": "bind", "source": "/y", "options": ["noatime"]}]})",
         "mounts[0].options"},
        {R"({"mounts": [{"destination": "/x", "type": "bind", "source": "/y", "options": ["idmap"]}]})",
         "mounts[0].options"},
        {R"({"mounts": [{"destination": "/x", "type": "tmpfs", "options": ["idmap"]}]})", "mounts[0].options"},
        {R"({"mounts": [{"destination": "x", "type": "tmpfs"}]})", "mounts[0].destination"},
        {R"({"mounts": [{"destination": "/x"}]})", "mounts[0].type"},
    };
    for (const auto& [patch, field] : cases) {
        json c = minimal();
        c.merge_patch(json::parse(patch));
        EXPECT_REFUSED(c, field);
    }
    // Fields that change nothing pass: empty labels, annotations, and
    // properties the spec does not define (which runtimes must ignore).
    json c = minimal();
    c.merge_patch(json::parse(R"({"process": {"apparmorProfile": "", "selinuxLabel": ""}, "linux": {"mountLabel": ""},
                                  "annotations": {"a": "b"}, "x-unknown": {"anything": 1}})"));
    EXPECT_EQ(error_of(c), "");
}

TEST(oci_config, load_config_names_a_missing_file) {
    try {
        oci::load_config("/nonexistent-ctr-bundle");
        ADD_FAILURE() << "no error";
    } catch (const oci::config_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("/nonexistent-ctr-bundle/config.json: cannot be read (No such file or directory)", 0), 0u)
            << e.what();
    }
    ctr_test::temp_dir dir;
    std::ofstream(dir.path + "/config.json") << minimal().dump();
    EXPECT_EQ(oci::load_config(dir.path).args, std::vector<std::string>{"/bin/true"});
}

// The fuzz target's seeds are configs that map, so that its search starts
// past the first refusal.
TEST(oci_config, fuzz_seeds_map) {
    for (const char* seed : {"minimal", "every-field", "podman-run-it-no-seccomp"}) {
        const std::string text = read_file(std::string(CTR_OCI_FIXTURES "/../fuzz/corpus/oci_config/") + seed);
        ASSERT_FALSE(text.empty()) << seed;
        EXPECT_EQ(error_of_text(text), "") << seed;
    }
}

// The library steps plan::filesystem and plan::write add, run for real.
TEST(oci_config, a_mapped_config_runs_and_is_seen_from_inside) {
    if (!ctr_test::real_root) GTEST_SKIP() << "runs as uid 1000 and sets a sysctl: needs real root";
    static ctr_test::temp_dir dir;
    const std::string rootfs = dir.path + "/rootfs";
    const std::string command = "'" + ctr_test::make_rootfs + "' '" + rootfs + "' >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) GTEST_SKIP() << "tests/rootfs/make-busybox-rootfs failed: is busybox-static installed?";
    // A file to mask, and two writable directories of which one is made read-only.
    std::ofstream(rootfs + "/secret") << "host secret\n";
    for (const char* d : {"/writable", "/sealed"}) {
        ASSERT_EQ(mkdir((rootfs + d).c_str(), 0777), 0);
        ASSERT_EQ(chmod((rootfs + d).c_str(), 0777), 0);
    }

    json c = json::parse(R"({
        "ociVersion": "1.0.2",
        "process": {"args": ["/bin/sh", "-c", ""], "cwd": "/work",
                    "env": ["PATH=/bin:/usr/bin", "GREETING=hello from config.json"],
                    "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]}},
        "root": {"path": "rootfs"},
        "hostname": "oci-box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/work", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=2m", "mode=1777"]}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}],
            "sysctl": {"net.ipv4.ping_group_range": "0 5"},
            "maskedPaths": ["/secret", "/proc/kcore"],
            "readonlyPaths": ["/proc/sys", "/sealed"]
        }
    })");
    c["process"]["args"][2] =
        "hostname; echo \"$GREETING\"; pwd; id -u; id -g; id -G;"
        "grep ' /work ' /proc/mounts | grep -o 'size=2048k';"
        "grep ' /dev/pts ' /proc/mounts | grep -o 'gid=5';"
        "wc -c < /secret;"
        "touch /writable/x && echo writable-ok;"
        "touch /sealed/x 2>/dev/null && echo sealed-WRITTEN || echo sealed-read-only;"
        "cat /proc/sys/net/ipv4/ping_group_range;"
        "ls /dev/null /dev/ptmx >/dev/null && echo devices-ok";
    std::ofstream(dir.path + "/config.json") << c.dump();
    const std::string host_range = read_file("/proc/sys/net/ipv4/ping_group_range");
    auto config = oci::load_config(dir.path);
    auto& o = config.options;
    o.std_out = ctr::process::stdio::capture();
    o.std_err = ctr::process::stdio::capture();
    const auto r = ctr::process::spawn(config.args, std::move(o)).wait();
    ASSERT_EQ(r.exit_code, 0) << r.std_err;
    EXPECT_EQ(r.std_out,
              "oci-box\nhello from config.json\n/work\n1000\n1000\n1000 5\nsize=2048k\ngid=5\n0\nwritable-ok\n"
              "sealed-read-only\n0\t5\ndevices-ok\n")
        << r.std_err;
    // The control: the rootfs's own /sealed was writable, so the read-only
    // answer came from readonlyPaths; the masked file still holds its text.
    EXPECT_EQ(read_file(rootfs + "/secret"), "host secret\n");
    // The sysctl went to the container's network namespace only.
    EXPECT_EQ(read_file("/proc/sys/net/ipv4/ping_group_range"), host_range);
    EXPECT_TRUE(std::filesystem::exists(rootfs + "/writable/x"));
}

#endif  // CTR_TEST_OCI_CONFIG
