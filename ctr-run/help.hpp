#pragma once
// ctr-run's usage text (`ctr-run --help`) and version line. The refused
// Docker flags are listed from flags.hpp's table, so the two cannot drift.

#include "flags.hpp"

#include <string>
#include <string_view>

#ifndef CTR_RUN_VERSION
#define CTR_RUN_VERSION "unknown"
#endif

namespace ctr_run {

constexpr std::string_view version_line = "ctr-run version " CTR_RUN_VERSION "\n";

constexpr std::string_view usage_text = R"(Usage: ctr-run [OPTIONS] [--] COMMAND [ARG...]
       ctr-run [--root DIR] [--log FILE] create|start|kill|delete|state|exec ...
               (the OCI runtime that container engines call: docs/oci.md)

Runs COMMAND in a sandbox: new pid, mount, uts, ipc, cgroup and network
namespaces (and a user namespace), the host's root filesystem read-only with
a private /tmp, a fresh /proc and a minimal /dev unless --rootfs or --overlay
gives another root. Flags follow Docker's and Podman's names; the Docker
flags ctr-run does not have are refused by name (listed at the end).
Options end at the first argument that is not an option, or at "--". A
value goes after the flag or after '=' (--memory=64m, -m 64m, -m64m). A
switch also takes Docker's =true or =false (--rm=true, -t=false, --init=false
is --no-init).

Filesystem:
      --rootfs DIR             DIR becomes "/" (writable, shared with the host;
                               see --read-only and --overlay), with a fresh
                               /proc and a minimal /dev
      --read-only              the root read-only: the --rootfs, or, without
                               one, the host's root and the private /tmp too
      --overlay L1[:L2...]     "/" is an overlay of these layers stacked over the
                               --rootfs (leftmost on top; without --rootfs the
                               last layer is the bottom one), under a writable
                               upper layer on a tmpfs that is thrown away at
                               exit: neither the layers nor the rootfs change
  -v, --volume SRC:DST[:ro|rw] bind-mount the host path SRC at DST (recursive)
      --mount type=bind,source=SRC,target=DST[,readonly]
      --mount type=tmpfs,target=DST[,tmpfs-size=SIZE][,tmpfs-mode=OCTAL]
                               Docker's long form of -v and --tmpfs
                               (type=volume is refused: no named volumes)
      --tmpfs DST[:OPTS]       a tmpfs at DST; OPTS, comma-separated: size=SIZE,
                               mode=OCTAL, ro, noexec, exec, nosuid, suid, nodev, dev
      --device SRC[:DST][:rwm] bind the host's device node SRC at DST (default:
                               SRC); no device cgroup rule, so only rwm
      --shm-size SIZE          size of /dev/shm (default: the kernel's)
  -w, --workdir DIR            working directory inside (default: /)
  A DST the root lacks is made inside only, in a tmpfs copy of the directory
  it goes in: neither the --rootfs nor the host's files change.

Identity and environment:
  -h, --hostname NAME          host name inside (default: the host's)
      --domainname NAME        NIS domain name inside
      --add-host NAME:IP       a line of /etc/hosts inside (may be repeated)
      --dns IP, --dns-search DOMAIN, --dns-option OPT (or --dns-opt)
                               /etc/resolv.conf inside: these nameservers,
                               search domains and options instead of the host's
                               (without them a veth or pasta sandbox gets the
                               host's resolvers it can reach: its loopback ones
                               left out, pasta's forwarder, else 8.8.8.8)
                               (/etc/hosts and /etc/resolv.conf are files
                               ctr-run writes in a private directory and binds
                               read-only; neither the rootfs nor the host's
                               change)
  -e, --env KEY=VALUE          set a variable; "-e KEY" passes the caller's KEY
      --env-file FILE          KEY=VALUE lines (# comments; "KEY" alone passes
                               the caller's KEY), before the -e values
      --env-host               start from the caller's whole environment
                               instead of Docker's defaults (Podman's flag)
      --clear-env              start from PATH alone: no HOSTNAME, HOME or TERM
                               (-e PATH=... changes it)
                               The default environment is Docker's: PATH=
                               /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
                               HOSTNAME, HOME (from the sandbox's /etc/passwd;
                               /root for root, else /), TERM=xterm with -t;
                               then --env-file and -e. Not the caller's.
  -u, --user USER[:GROUP]      user and group inside, by name (looked up in the
                               sandbox's /etc/passwd and /etc/group: the
                               --rootfs's, or the host's) or numeric id; GROUP
                               default: the user's own, else 0. The user's
                               groups in /etc/group come along
      --group-add GROUP        one more supplementary group (name or id)
      --rootless               map the caller to root inside a user namespace
                               (the default when not run as root)

Resources (a cgroup below ctr-run's own, removed at exit):
  -m, --memory SIZE            memory limit: 1048576, 512k, 64m, 1.5g (b k m g t)
      --memory-swap SIZE       memory plus swap, as Docker: equal to --memory
                               for no swap, -1 for unlimited swap (default: swap
                               not limited)
      --cpus N                 CPU time as a number of CPUs, fractions allowed
                               (0.5), at most the CPUs online
  -c, --cpu-shares N           CPU share against other groups, 2 to 262144
                               (default 1024; cpu.weight = N * 100 / 1024)
      --pids-limit N           processes and threads together (0 or -1: no limit)
      --cpuset-cpus LIST       CPUs it may run on: 0-3,6 (CPUs that exist)
      --ulimit NAME=SOFT[:HARD]
                               a resource limit (nofile=1024:2048, core=0,
                               nproc=64; -1 or unlimited)

Network and namespaces:
      --network none|host|veth|pasta
                               none (default): a new network namespace with
                               only lo; host: the host's network; veth: a new
                               namespace joined to the host's by a veth pair,
                               eth0 inside with an address from 10.231.0.0/16
                               and one from fd63:7472::/48 (where the kernel
                               has IPv6) and default routes through the host
                               end, its traffic masqueraded out of the host's
                               default routes (nftables tables ip and ip6 ctr;
                               needs root);
                               pasta: a new namespace whose traffic pasta
                               carries through the host's sockets, with the
                               host's address and routes (no root needed;
                               package passt). bridge is refused: there is no
                               bridge
  -p, --publish [IP:]HOSTPORT:PORT[/tcp|/udp]
                               publish PORT inside on HOSTPORT of the host (on
                               IP, [IPV6] in brackets, default every address
                               of both families); without --network,
                               implies veth for root and pasta otherwise; may
                               be repeated; ranges of equal length, as
                               8000-8003:80-83, publish each pair. veth: by
                               DNAT in nftables table ip ctr, so the server
                               sees its clients' own addresses (a relay
                               where the kernel has no nftables)
      --sysctl net.ipv6.conf.all.disable_ipv6=1
                               veth: IPv4 alone (no other --sysctl is taken)
      --pid host, --ipc host, --uts host
                               share the host's pid (and its /proc), IPC (and
                               its /dev/shm) or UTS namespace

Security (confined by default, see docs/security.md):
      --userns host            run in the caller's user namespace (default for
                               root: a user namespace of its own, root inside
                               mapped to an unprivileged range outside; the
                               --rootfs and volumes are idmapped so files keep
                               their owners)
      --cap-add NAME, --cap-drop NAME|ALL
                               capabilities on top of or taken from the
                               default set (Podman's: CHOWN DAC_OVERRIDE FOWNER
                               FSETID KILL NET_BIND_SERVICE SETFCAP SETGID
                               SETPCAP SETUID SYS_CHROOT); comma lists allowed
      --security-opt no-new-privileges[=true|false]
                               no_new_privs (default: true)
      --security-opt seccomp=unconfined, --seccomp default|none
                               default (the default): the seccomp profile that
                               refuses mount, namespaces, modules, bpf, perf,
                               the clock, open_by_handle_at...; none or
                               unconfined: no filter
      --security-opt seccomp=PROFILE.json
                               a seccomp profile in Docker's format (Podman's
                               /usr/share/containers/seccomp.json) in place of
                               the default one; its includes/excludes see the
                               capabilities the run keeps (docs/oci.md)
      --landlock RULE[,RULE...], --security-opt landlock=RULE[,RULE...]
                               Landlock (Linux 5.13 and later): the command
                               may use files only as the rules say, paths as
                               the sandbox sees them. ro=PATH: read; rx=PATH:
                               read and run; rw=PATH: read, write, make and
                               remove; rwx=PATH: both; connect=PORT and
                               bind=PORT: the only TCP ports it may use (Linux
                               6.7). The defaults come first: rx=/, the
                               devices of /dev, rw=/dev/shm and rw=/tmp
                               (where the root has one); no-defaults leaves
                               them out, defaults alone asks for no more. What
                               the rules deny fails with Permission denied;
                               may be repeated
      --privileged             every capability, no no_new_privs, no seccomp:
                               the documented way out (the user namespace stays
                               unless --userns host)
      --require-namespaces     fail (125) where user namespaces are refused; by
                               default the run then goes on without namespaces,
                               confined by Landlock (read everything, write only
                               its -v PATH:PATH volumes and a private TMPDIR),
                               seccomp, no_new_privs and no capabilities, root's
                               command as nobody (65534) unless -u, and says so
                               in one line (docs/ctr-run.md)

Lifetime, terminal and signals:
      --entrypoint PROGRAM     run PROGRAM with COMMAND [ARG...] as its arguments
      --init                   a minimal init as pid 1 that forwards signals
                               and reaps orphans: the default, as "ctr-init"
      --no-init                run the command as pid 1
      --timeout SECONDS        wall-clock limit (fractions allowed, or a unit:
                               500ms, 2m, 1h): SIGTERM, then SIGKILL
                               --stop-timeout later (default 2 s); ctr-run then
                               exits 124
      --stop-signal SIGNAL     what a SIGTERM sent to ctr-run (Docker's "stop")
                               reaches the command as (default: TERM)
      --stop-timeout SECONDS   after that stop signal, SIGKILL this much later
                               (default: 10, Docker's; 0: at once; -1: never)
      --sig-proxy=false        do not pass signals sent to ctr-run on
      --name NAME              one run at a time under NAME: a second ctr-run
                               with the same name is refused while it runs
  -t, --tty                    a pty for the command, its stdin, stdout and
                               stderr, and TERM=xterm; only with -t, as
                               Docker's (also when ctr-run's own stdin and
                               stdout are not terminals)
  -i, --interactive            pass stdin on: ctr-run's own, or with -t what is
                               typed (the caller's terminal then raw); without
                               -i the command reads end-of-file (/dev/null),
                               or with -t a pty nothing is typed into
      --rm                     accepted: nothing is left behind when the
                               command ends

Output:
      --result json            after the command ends, print one JSON object on
                               stderr: exit_code, signal, timed_out, oom_killed,
                               wall_ms, user_ms, sys_ms, memory_peak_bytes (null
                               where unknown), and "error" when ctr-run failed
      --probe                  print what this host supports, one feature a line
      --help                   this text
      --version                ctr-run's version

stdin, stdout and stderr pass through. SIGTERM, SIGINT, SIGHUP, SIGQUIT,
SIGUSR1 and SIGUSR2 sent to ctr-run are passed to the command (SIGTERM as
--stop-signal). The sandbox ends with ctr-run, however ctr-run ends (SIGKILL
too): every process in it is killed; a killed ctr-run's cgroup and scratch
directories are removed by the next run.

Exit status: the command's own; 128+N when it died of signal N; 124 when the
--timeout fired; 125 when ctr-run failed before the command ran (the message
names the flag, or the step, the path and the reason); 126 when the command
exists but cannot be executed; 127 when it does not exist. An out-of-memory
kill prints a line saying so, with the limit.
)";

// The refused Docker flags, wrapped, for the end of --help.
inline std::string refused_flags_text() {
    std::string out =
        "\nDocker flags ctr-run refuses, each with one line saying why (exit 125);\n"
        "-d/--detach among them: ctr-run has no daemon, a sandbox lives as long as\n"
        "its ctr-run:\n";
    std::string line = " ";
    for (const auto& f : refused_flags) {
        std::string name = f.short_name ? std::string("-") + f.short_name + "/--" + std::string(f.long_name)
                                        : "--" + std::string(f.long_name);
        if (line.size() + name.size() + 1 > 78) {
            out += line + "\n";
            line = " ";
        }
        line += " " + name;
    }
    return out + line + "\n";
}

}  // namespace ctr_run
