#pragma once
// ctr-run on a host that refuses user namespaces (Ubuntu 24.04's AppArmor
// restriction, Debian's kernel.unprivileged_userns_clone=0,
// user.max_user_namespaces=0, an outer container's seccomp filter): the run
// goes on without namespaces, confined by Landlock, seccomp, no_new_privs
// and no capabilities, and says so in one line. --require-namespaces
// refuses instead. docs/ctr-run.md ("Without user namespaces") says what
// the command can and cannot reach then.

#include "flags.hpp"
#include "output.hpp"
#include "sandbox.hpp"
#include "values.hpp"

#include <ctr/ctr.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace ctr_run {

// Ubuntu's AppArmor restriction (kernel.apparmor_restrict_unprivileged_userns)
// lets an unprivileged process make a user namespace but gives it no
// capabilities there: the launch fails later, where it needs one.
inline bool apparmor_restricts_user_namespaces() {
    std::ifstream setting("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    std::string value;
    return geteuid() != 0 && std::getline(setting, value) && value == "1";
}

// Whether spawn failed because this process may not make a user namespace,
// or may make one but do nothing in it (the library's error names the
// setting that refused it).
inline bool user_namespace_refused(const ctr::error& e) {
    const int code = e.code().value();
    // Not the command's own exec: a file that may not be run is refused the
    // same way anywhere.
    if (apparmor_restricts_user_namespaces() && e.step() != ctr::step::exec && (code == EPERM || code == EACCES))
        return true;
    if (e.step() != ctr::step::create_namespaces) return false;
    const std::string kinds = "," + e.path() + ",";
    if (kinds.find(",user,") == std::string::npos) return false;
    return code == EPERM || code == ENOSPC || code == EUSERS || code == EINVAL || code == EACCES;
}

// The flags that need a namespace, refused by name: without a mount
// namespace nothing can be mounted, without a UTS or network namespace the
// host's name and network are the command's.
inline void check_runs_without_namespaces(const config& c) {
    const auto refuse = [](const char* flag, const std::string& why) {
        bad_value(flag, "user namespaces are refused here, and without them " + why +
                            " (see docs/ctr-run.md, \"Without user namespaces\")");
    };
    if (c.rootfs) refuse("--rootfs", "there is no mount namespace to give the command another root");
    if (!c.overlay.empty()) refuse("--overlay", "there is no mount namespace to mount an overlay in");
    if (!c.tmpfs.empty()) refuse("--tmpfs", "there is no mount namespace to mount a tmpfs in");
    if (!c.devices.empty()) refuse("--device", "there is no mount namespace to bind a device in");
    if (c.shm_size) refuse("--shm-size", "the command shares the host's /dev/shm");
    if (!c.hostname.empty()) refuse("--hostname", "the command has the host's name (no UTS namespace)");
    if (!c.domainname.empty()) refuse("--domainname", "the command has the host's name (no UTS namespace)");
    if (!c.add_hosts.empty()) refuse("--add-host", "the command reads the host's /etc/hosts");
    if (!c.dns.empty() || !c.dns_search.empty() || !c.dns_options.empty())
        refuse("--dns", "the command reads the host's /etc/resolv.conf");
    if (!c.publish.empty()) refuse("--publish", "the command is on the host's network, where it can listen itself");
    if (c.network == network_mode::veth || c.network == network_mode::pasta)
        refuse("--network", "the command is on the host's network (no network namespace)");
    if (c.privileged) refuse("--privileged", "the command would be confined by nothing at all");
    for (const auto& v : c.volumes)
        if (std::filesystem::path(v.source).lexically_normal() != std::filesystem::path(v.target).lexically_normal())
            refuse("--volume", "'" + v.source + ":" + v.target +
                                   "' cannot appear at another path (no mount namespace): give -v " + v.source + ":" +
                                   v.source + " to let the command write there");
}

// A private directory for the command's temporary files (TMPDIR), the only
// place it may write besides its volumes; removed when the run ends.
class private_tmp {
public:
    private_tmp() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/ctr-run-tmp.XXXXXX";
        if (!mkdtemp(pattern.data()))
            throw ctr::error(ctr::step::prepare, errno, pattern, "making the command's private TMPDIR");
        path_ = pattern;
    }
    private_tmp(const private_tmp&) = delete;
    private_tmp& operator=(const private_tmp&) = delete;
    ~private_tmp() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::string& path() const noexcept { return path_; }
    // For a command that runs as another user (nobody, for root).
    void give_to(uid_t uid, gid_t gid) const {
        if (chown(path_.c_str(), uid, gid) != 0)
            throw ctr::error(ctr::step::prepare, errno, path_, "giving the command's TMPDIR to its user");
    }

private:
    std::string path_;
};

// What the command may do without namespaces: read and run everything,
// write only to its volumes (read-write ones), its TMPDIR and the terminal
// and null devices; no TCP bind or connect with --network none (Landlock
// ABI 4); no signals and no abstract unix sockets out of the sandbox (ABI
// 6); best effort for each feature the kernel lacks. No capabilities but
// --cap-add's, no_new_privs, and the seccomp profile as configured.
// Root runs the command as nobody (65534) unless -u says otherwise: without
// a user namespace its root would be the host's, which owns the host's
// secrets (/etc/shadow is readable by its owner) and may signal every
// process root runs.
// (Root of another user namespace is unprivileged outside it already, and
// its namespace may not map 65534.)
inline constexpr uid_t nobody = 65534;
inline bool runs_as_nobody(bool user_given) { return geteuid() == 0 && !user_given && in_initial_user_namespace(); }

inline void confine_without_namespaces(const config& c, bool user_given, ctr::process::options& options,
                                       const private_tmp& tmp) {
    if (runs_as_nobody(user_given)) {
        options.uid = nobody;
        options.gid = nobody;
        options.groups = std::vector<gid_t>{};
        tmp.give_to(nobody, nobody);
    } else if (geteuid() == 0 && options.uid && *options.uid != 0 && in_initial_user_namespace()) {
        // Root's -u USER: the TMPDIR, its working directory, is that user's,
        // or the command could not even enter it.
        tmp.give_to(*options.uid, options.gid.value_or(static_cast<gid_t>(-1)));
    }
    options.namespaces = {};
    options.root.reset();
    options.hostname.clear();
    options.domainname.clear();
    options.network.reset();
    options.pasta.reset();
    if (c.workdir.empty()) options.cwd = tmp.path();  // "/" is the host's root: writable nowhere
    options.env.set.emplace_back("TMPDIR", tmp.path());

    ctr::landlock::ruleset rules;
    rules.execute("/").write(tmp.path());
    for (const auto& v : c.volumes)
        if (!v.read_only) rules.write(v.source);
    namespace fs = ctr::landlock::fs;
    for (const char* device : {"/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx", "/dev/random", "/dev/urandom"})
        if (access(device, F_OK) == 0) rules.allow(device, fs::read | fs::write | fs::ioctl_dev);
    if (access("/dev/pts", F_OK) == 0) rules.allow("/dev/pts", fs::read | fs::write | fs::ioctl_dev);
    // --landlock's own rules add to these; its defaults, made for the
    // sandbox's own /tmp and /dev, do not apply to the host's.
    for (const auto& rule : c.landlock.paths) rules.allow(rule.path, rule.rights);
    for (const auto& rule : c.landlock.ports) {
        if (rule.what == ctr::landlock::tcp::bind) rules.bind_tcp(rule.port);
        else rules.connect_tcp(rule.port);
    }
    if (c.network == network_mode::none) rules.restrict_tcp();
    rules.scope_abstract_unix_sockets().scope_signals();

    ctr::caps::set keep = ctr::caps::set::none();
    for (const auto& name : c.cap_add) keep = name == "ALL" ? ctr::caps::set::all() : keep | ctr::caps::set{ctr::caps::parse(name)};
    keep &= ctr::caps::supported();
    ctr::security security = confinement(c);
    // A caller that is not root has no capability to keep or drop (and may
    // not change its bounding set); no_new_privs keeps exec from granting any.
    if (geteuid() == 0) security.capabilities = ctr::caps::policy{.keep = keep};
    else security.capabilities.reset();
    security.no_new_privileges = true;
    security.landlock = std::move(rules);
    options.security = std::move(security);
}

}  // namespace ctr_run
