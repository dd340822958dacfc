// ctr-run's run command: turns a config into a process::options (namespaces,
// a mount plan, a cgroup), spawns, relays a terminal when there is one, and
// turns the process::result into an exit status.

#include "run.hpp"

#include "lookup.hpp"
#include "network.hpp"
#include "no_namespaces.hpp"
#include "output.hpp"
#include "resolv_conf.hpp"
#include "sandbox.hpp"
#include "scratch.hpp"
#include "terminal.hpp"

#include <ctr/ctr.hpp>

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <optional>
#include <string>

namespace ctr_run {

int run_command(const config& c) {
    const bool privileged = geteuid() == 0;
    const bool rootless = c.rootless || !privileged;
    check_cpus(c);
    const identity id = resolve_identity(c);

    ctr::process::options options{
        .env = {.inherit = c.env_host, .set = environment(c, id)},
        .cwd = c.workdir.empty() ? std::string("/") : c.workdir,
        .timeout = c.timeout,
    };
    if (c.stop_timeout) options.kill_grace = *c.stop_timeout;
    for (const auto& u : c.ulimits) options.rlimits.push_back({u.resource, u.soft, u.hard});
    options.namespaces = ctr::ns::mount | ctr::ns::cgroup;
    if (!c.pid_host) options.namespaces = options.namespaces | ctr::ns::pid;
    if (!c.uts_host) options.namespaces = options.namespaces | ctr::ns::uts;
    if (!c.ipc_host) options.namespaces = options.namespaces | ctr::ns::ipc;
    const network_mode network = chosen_network(c, privileged);
    if (network == network_mode::none) options.namespaces = options.namespaces | ctr::ns::network;
    // Outbound NAT, as Docker's bridge gives: the sandbox reaches beyond the
    // host (docs/networking.md, Outbound NAT). Published ports by the
    // kernel's DNAT, as Docker's without its userland proxy: the server
    // inside sees its clients' own addresses (docs/networking.md, Published
    // ports by DNAT). Their host ports are bound while the sandbox waits to
    // start, so a busy port fails the run (125) before the command could
    // print a word.
    const bool nat = network == network_mode::veth && nftables_available(!c.publish.empty());
    if (network == network_mode::veth) options.network = ctr::net::veth{.outbound = nat, .ipv6 = c.ipv6};
    if (nat) options.network->publish = c.publish;
    // pasta publishes the ports itself. A busy host port does not stop it
    // (pasta 2023_03_09 goes on without that port), unlike DNAT and the relay.
    if (network == network_mode::pasta) options.pasta = pasta_options(c);
    // Without nftables, the user-space relay, bound here for the same reason.
    std::optional<ctr::net::port_forwarder> ports;
    if (!c.publish.empty() && network == network_mode::veth && !nat) ports.emplace(c.publish);
    if (rootless || root_in_user_namespace(c)) options.namespaces = options.namespaces | ctr::ns::user;
    options.security = confinement(c);
    options.hostname = c.hostname;
    options.domainname = c.domainname;
    options.init = !c.no_init;
    if (id.user_given || !id.groups.empty()) {
        // Root of the host drops its supplementary groups too; inside a user
        // namespace the library already did, where the kernel allows it.
        if (!rootless || !id.groups.empty()) options.groups = id.groups;
        options.gid = id.gid;
        options.uid = id.uid;
    }

    // One run at a time under a --name, from here until the command ends.
    std::optional<name_lock> name;
    if (!c.name.empty()) name.emplace(c.name);

    // The sandbox dies with this process, however it ends (SIGKILL too);
    // what a killed ctr-run leaves outside the sandbox (its cgroup, an
    // overlay's scratch layer, the files of --add-host and --dns) the next
    // run removes (docs/lifecycle.md).
    // With --no-init the command is pid 1 and nothing supervises it: it gets
    // the parent-death signal instead (this program has one thread), and its
    // namespace ends with it.
    options.die_with_owner = !c.no_init;
    options.die_with_parent = c.no_init;

    std::optional<scratch_layer> scratch;
    if (!c.overlay.empty()) {
        scratch_layer::reap_stale_scratch(rootless);
        scratch.emplace();
        if (rootless) scratch->removed_in_user_namespace();
        // The sandbox's root writes the upper layer: give it to the host id
        // that root inside maps to.
        if (root_in_user_namespace(c)) scratch->give_to(mapped_root(options.id_maps));
    }
    // A sandbox with a network of its own gets a resolv.conf it can use
    // (docs/networking.md, DNS).
    // IPv6 resolvers are reachable from a veth sandbox with IPv6 and its outbound NAT.
    const std::optional<sandbox_resolver> resolver =
        sandbox_resolv_conf(c, network, network == network_mode::veth && nat && veth_gets_ipv6(c));
    if (resolver && !resolver->note.empty()) std::cerr << resolver->note << std::endl;
    std::optional<std::string> resolv_text;
    if (resolver) resolv_text = resolver->text;
    std::optional<private_files> files;
    if (!c.add_hosts.empty() || resolver) {
        scratch_layer::reap_stale_scratch(rootless, private_files::prefix);
        files.emplace();
    }
    options.root = filesystem_plan(c, scratch ? &*scratch : nullptr, files ? &*files : nullptr, resolv_text);

    // Declared before the child: the group must outlive it.
    std::optional<ctr::cgroup::group> group = make_group(c);
    if (group) options.cgroup = &*group;

    // As Docker's: a pty with -t only, even at a terminal. It is made inside
    // the sandbox, in its own devpts (`tty` says /dev/pts/0, as under
    // `docker run -t`), with the caller's window size; the relay forwards
    // later changes. It is the command's stdin, stdout and stderr; what the
    // caller types reaches it with -i only. Without -t, stdin is the
    // caller's with -i, else /dev/null (the command reads end-of-file).
    if (!c.tty && !c.interactive) options.std_in = ctr::process::stdio::null();
    if (c.tty) {
        ctr::process::terminal_options terminal;
        if (winsize size{}; ioctl(STDIN_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_row > 0 && size.ws_col > 0)
            terminal.size = {.rows = size.ws_row, .columns = size.ws_col};
        options.terminal = terminal;
    }

    const unsigned stop_timeout = c.stop_timeout_never ? never_kill
                                  : c.stop_timeout      ? static_cast<unsigned>(c.stop_timeout->count())
                                                        : 10;
    install_signal_forwarding(c.sig_proxy, c.stop_signal, stop_timeout);
    ctr::process::child child;
    std::optional<private_tmp> tmp;
    try {
        child = ctr::process::spawn(c.command, options);
    } catch (const ctr::error& e) {
        if (!user_namespace_refused(e)) throw;
        // The setting that refused it, as the library names it.
        const std::string setting = ctr::ns::detail::user_namespace_blocker(-e.code().value());
        if (c.require_namespaces)
            throw ctr::error(e.step(), e.code().value(), e.path(),
                             setting + "; --require-namespaces: not running without them");
        if (ctr::landlock::abi() < 1)
            throw ctr::error(e.step(), e.code().value(), e.path(),
                             setting + "; without them ctr-run confines the command's files with Landlock, which "
                                       "this kernel lacks (Linux 5.13+ with landlock in lsm=)");
        check_runs_without_namespaces(c);
        std::cerr << "ctr-run: user namespaces are refused here (" << setting << "; " << e.what()
                  << "): running without namespaces, confined by Landlock, seccomp and no_new_privs"
                  << (runs_as_nobody(id.user_given) ? ", as nobody (65534)" : "")
                  << " (--require-namespaces refuses instead)" << std::endl;
        tmp.emplace();
        confine_without_namespaces(c, id.user_given, options, *tmp);
        child = ctr::process::spawn(c.command, options);
    }
    start_forwarding(child.pidfd());
    if (ports) ports->start(child.network()->container_address.address);
    ctr::process::result r;
    if (child.terminal()) {
        r = relay(child, child.terminal().get(), c.interactive);
    } else {
        r = child.wait();
    }
    child_pidfd = -1;

    if (c.result_json) print_json(&r, {});
    if (r.oom_killed) {
        std::cerr << "ctr-run: out of memory: the command was killed by the kernel's OOM killer at the memory limit"
                  << (group && group->memory_max_bytes() ? " of " + format_bytes(*group->memory_max_bytes()) : "")
                  << " (--memory)" << std::endl;
    }
    if (r.timed_out) {
        std::cerr << "ctr-run: timed out after " << std::chrono::duration<double>(c.timeout).count()
                  << " s (--timeout)" << std::endl;
        return exit_timed_out;
    }
    if (r.signal) return 128 + *r.signal;
    return r.exit_code.value_or(exit_runtime_failed);
}

}  // namespace ctr_run
