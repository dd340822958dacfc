#pragma once
// ctr::error: what failed (the step), on which path, and why (the errno).

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace ctr {

// The steps of a launch and of the library's other operations. A failure
// names its step, so a message says "exec '/bin/nope'" rather than a bare
// errno. Later capabilities add their steps here.
enum class step : std::uint16_t {
    none,
    prepare,            // validating options in the parent
    create_pipe,        // the error, sync or stdio pipes
    allocate_stack,     // the child's stack
    clone,              // creating the child
    open_stdio,         // opening a file given for a standard stream
    reset_signals,      // default dispositions in the child
    restore_signal_mask,
    die_with_parent,    // PR_SET_PDEATHSIG
    new_session,        // setsid
    set_umask,
    set_rlimit,
    map_fds,            // moving stdio and passed fds to their numbers
    close_fds,          // closing every other inherited fd
    set_groups,
    set_gid,
    set_uid,
    change_directory,
    exec,
    wait,               // waiting for or reaping the child
    signal,             // sending a signal to the child
    read_output,        // reading captured stdout or stderr
    // namespaces
    create_namespaces,  // the CLONE_NEW* flags of the clone
    join_namespace,     // setns into an existing namespace
    leave_namespace,    // ns::scope returning to where it started
    persist_namespace,  // bind-mounting a namespace file
    set_hostname,
    set_domainname,
    deny_setgroups,
    write_uid_map,
    write_gid_map,
    bring_up_loopback,
    set_time_offsets,
    wait_for_parent,    // the child waiting until the parent's steps are done
    run_init,           // the pid 1 of a new pid namespace
    // cgroups
    cgroup_layout,      // finding where cgroups are mounted and ours is
    create_cgroup,
    remove_cgroup,
    enable_controllers,
    set_cgroup_limit,
    read_cgroup_stat,
    attach_to_cgroup,
    freeze_cgroup,
    kill_cgroup,
    // mounts and the root filesystem
    resolve_path,       // finding a mount target inside the new root
    make_mount_point,
    mount,
    bind_mount,
    set_mount_attributes,
    set_propagation,
    unmount,
    pivot_root,
    change_root,        // chroot, when asked for by name
    make_device,
    make_symlink,
    set_controlling_terminal,
    // networking
    netlink,            // talking to the kernel's routing netlink (rtnetlink)
    create_link,        // a network interface (a veth pair) in the caller's namespace
    delete_link,
    configure_link,     // addresses, routes and state of an interface
    publish_port,       // listening on a host port that forwards into the sandbox
    start_network_helper,  // pasta, the user-mode network of a sandbox (net::pasta)
    configure_nat,      // nftables rules and switches for a veth sandbox: outbound NAT, published ports
    // confinement
    drop_bounding_capabilities,  // PR_CAPBSET_DROP of every capability not kept
    keep_capabilities,           // PR_SET_KEEPCAPS around a change of uid
    set_capabilities,            // capset: effective, permitted, inheritable
    set_ambient_capabilities,    // PR_CAP_AMBIENT
    set_securebits,              // PR_SET_SECUREBITS
    set_no_new_privileges,       // PR_SET_NO_NEW_PRIVS
    compile_seccomp,             // building a seccomp filter in the parent
    install_seccomp,             // seccomp(SECCOMP_SET_MODE_FILTER) in the child
    seal_init,                   // the init letting go of the caller's fds, memory and name
    idmap_mount,                 // an idmapped mount (MOUNT_ATTR_IDMAP) for a volume
    open_terminal,               // a pty in the sandbox's devpts for options::terminal, its master sent back
    hold_for_start,              // the command held before exec until options::start_gate opens
    write_file,                  // mount::plan::write: text into a file inside the new root (an OCI sysctl)
    create_landlock_ruleset,     // landlock_create_ruleset in the parent, or a feature the kernel lacks
    add_landlock_rule,           // a path rule (opened in the child) or a port rule
    apply_landlock,              // landlock_restrict_self in the child
};

inline std::string_view to_string(step s) noexcept {
    switch (s) {
        case step::none: return "none";
        case step::prepare: return "prepare";
        case step::create_pipe: return "create pipe";
        case step::allocate_stack: return "allocate child stack";
        case step::clone: return "clone";
        case step::open_stdio: return "open stdio file";
        case step::reset_signals: return "reset signal dispositions";
        case step::restore_signal_mask: return "restore signal mask";
        case step::die_with_parent: return "set parent-death signal";
        case step::new_session: return "new session";
        case step::set_umask: return "set umask";
        case step::set_rlimit: return "set rlimit";
        case step::map_fds: return "map fds";
        case step::close_fds: return "close inherited fds";
        case step::set_groups: return "set supplementary groups";
        case step::set_gid: return "set gid";
        case step::set_uid: return "set uid";
        case step::change_directory: return "change directory";
        case step::exec: return "exec";
        case step::wait: return "wait";
        case step::signal: return "signal";
        case step::read_output: return "read output";
        case step::create_namespaces: return "create namespaces";
        case step::join_namespace: return "join namespace";
        case step::leave_namespace: return "leave namespace";
        case step::persist_namespace: return "persist namespace";
        case step::set_hostname: return "set hostname";
        case step::set_domainname: return "set domain name";
        case step::deny_setgroups: return "deny setgroups";
        case step::write_uid_map: return "write uid map";
        case step::write_gid_map: return "write gid map";
        case step::bring_up_loopback: return "bring up loopback";
        case step::set_time_offsets: return "set time offsets";
        case step::wait_for_parent: return "wait for parent";
        case step::run_init: return "run init";
        case step::cgroup_layout: return "find cgroup layout";
        case step::create_cgroup: return "create cgroup";
        case step::remove_cgroup: return "remove cgroup";
        case step::enable_controllers: return "enable cgroup controllers";
        case step::set_cgroup_limit: return "set cgroup limit";
        case step::read_cgroup_stat: return "read cgroup statistic";
        case step::attach_to_cgroup: return "attach to cgroup";
        case step::freeze_cgroup: return "freeze cgroup";
        case step::kill_cgroup: return "kill cgroup";
        case step::resolve_path: return "resolve path in root";
        case step::make_mount_point: return "make mount point";
        case step::mount: return "mount";
        case step::bind_mount: return "bind mount";
        case step::set_mount_attributes: return "set mount attributes";
        case step::set_propagation: return "set mount propagation";
        case step::unmount: return "unmount";
        case step::pivot_root: return "pivot root";
        case step::change_root: return "change root";
        case step::make_device: return "make device node";
        case step::make_symlink: return "make symlink";
        case step::set_controlling_terminal: return "set controlling terminal";
        case step::netlink: return "netlink";
        case step::create_link: return "create network link";
        case step::delete_link: return "delete network link";
        case step::configure_link: return "configure network link";
        case step::configure_nat: return "configure NAT";
        case step::publish_port: return "publish port";
        case step::start_network_helper: return "start network helper";
        case step::drop_bounding_capabilities: return "drop bounding capabilities";
        case step::keep_capabilities: return "keep capabilities";
        case step::set_capabilities: return "set capabilities";
        case step::set_ambient_capabilities: return "set ambient capabilities";
        case step::set_securebits: return "set securebits";
        case step::set_no_new_privileges: return "set no_new_privs";
        case step::compile_seccomp: return "compile seccomp filter";
        case step::install_seccomp: return "install seccomp filter";
        case step::seal_init: return "seal init";
        case step::idmap_mount: return "idmap mount";
        case step::open_terminal: return "open terminal";
        case step::hold_for_start: return "hold for start";
        case step::write_file: return "write file";
        case step::create_landlock_ruleset: return "create Landlock ruleset";
        case step::add_landlock_rule: return "add Landlock rule";
        case step::apply_landlock: return "apply Landlock ruleset";
    }
    return "unknown step";
}

// Every failure ctr reports. what() reads "<step> '<path>': <reason>", e.g.
// "exec '/bin/nope': No such file or directory".
class error : public std::system_error {
public:
    error(ctr::step s, int errno_value, std::string path = {}, std::string_view detail = {})
        : std::system_error(errno_value, std::generic_category(), describe(s, path, detail)),
          step_(s),
          path_(std::move(path)) {}

    ctr::step step() const noexcept { return step_; }
    const std::string& path() const noexcept { return path_; }

private:
    static std::string describe(ctr::step s, const std::string& path, std::string_view detail) {
        std::string text{to_string(s)};
        if (!path.empty()) text.append(" '").append(path).append("'");
        if (!detail.empty()) text.append(" (").append(detail).append(")");
        // what() is a C string: a NUL byte from the caller's input (an
        // argument, a path) would cut the message short, so it shows as \0.
        for (std::size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at + 2))
            text.replace(at, 1, "\\0");
        return text;
    }

    ctr::step step_;
    std::string path_;
};

}  // namespace ctr
