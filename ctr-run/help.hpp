#pragma once
// ctr-run's usage text (`ctr-run --help`).

#include <string_view>

namespace ctr_run {

constexpr std::string_view usage_text = R"(Usage: ctr-run [OPTIONS] [--] COMMAND [ARG...]

Runs COMMAND in a sandbox: new pid, mount, uts, ipc, cgroup and network
namespaces (and a user namespace when not run as root), the host's root
filesystem read-only with a private /tmp, a fresh /proc and a minimal /dev
unless --rootfs or --overlay gives another root. Flags follow Docker's and
Podman's names. Options end at the first argument that is not an option, or
at "--". A value goes after the flag or after '=' (--memory=64m, -m 64m, -m64m).

Filesystem:
      --rootfs DIR             DIR becomes "/" (writable, shared with the host;
                               see --read-only and --overlay), with a fresh
                               /proc and a minimal /dev
      --read-only              mount the --rootfs read-only
      --overlay L1[:L2...]     "/" is an overlay of these layers stacked over the
                               --rootfs (leftmost on top; without --rootfs the
                               last layer is the bottom one), under a writable
                               upper layer on a tmpfs that is thrown away at
                               exit: neither the layers nor the rootfs change
  -v, --volume SRC:DST[:ro|rw] bind-mount the host path SRC at DST (recursive)
      --tmpfs DST[:OPTS]       a tmpfs at DST; OPTS, comma-separated: size=SIZE,
                               mode=OCTAL, ro, noexec, exec, nosuid, suid, nodev, dev
  -w, --workdir DIR            working directory inside (default: /)
      --hostname NAME          host name inside (default: the host's)
  -e, --env KEY=VALUE          set a variable; "-e KEY" passes the caller's KEY
      --clear-env              start from an empty environment (default: the
                               caller's environment is passed on)

Resources (a cgroup below ctr-run's own, removed at exit):
  -m, --memory SIZE            memory limit: 1048576, 512k, 64m, 1.5g (b k m g t)
      --memory-swap SIZE       memory plus swap, as Docker: equal to --memory
                               for no swap, -1 for unlimited swap (default: swap
                               not limited)
      --cpus N                 CPU time as a number of CPUs, fractions allowed (0.5)
      --pids-limit N           processes and threads together (0 or -1: no limit)
      --cpuset-cpus LIST       CPUs it may run on: 0-3,6

Network:
      --network none|host|veth none (default): a new network namespace with only
                               lo; host: the host's network; veth: a new
                               namespace joined to the host's by a veth pair,
                               eth0 inside with an address from 10.231.0.0/16
                               and a default route through the host end (needs
                               root: rootless networking is not supported yet)
  -p, --publish [IP:]HOSTPORT:PORT[/tcp|/udp]
                               relay connections to HOSTPORT on the host (on
                               IP, default every address) to PORT inside;
                               implies --network veth; may be repeated

Users:
      --rootless               map the caller to root inside a user namespace
                               (the default when not run as root)
  -u, --user UID[:GID]         numeric ids to run as inside (GID default: 0)

Security and lifetime (confined by default, see docs/security.md):
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
      --privileged             every capability, no no_new_privs, no seccomp:
                               the documented way out (the user namespace stays
                               unless --userns host)
      --timeout SECONDS        wall-clock limit (fractions allowed, or a unit:
                               500ms, 2m, 1h): SIGTERM, then SIGKILL 2 s later;
                               ctr-run then exits 124
      --no-init                run the command as pid 1 (default: a minimal init
                               is pid 1, forwards signals and reaps orphans)
  -i, -t, -it, --rm, --interactive, --tty
                               accepted for Docker habits and ignored: stdin is
                               always passed on, a terminal always gets a pty,
                               nothing is left behind

Output:
      --result json            after the command ends, print one JSON object on
                               stderr: exit_code, signal, timed_out, oom_killed,
                               wall_ms, user_ms, sys_ms, memory_peak_bytes (null
                               where unknown), and "error" when ctr-run failed
      --probe                  print what this host supports, one feature a line
  -h, --help                   this text

stdin, stdout and stderr pass through. When stdin and stdout are terminals the
command gets a pty of its own (an interactive shell works; the window size
follows the terminal's). SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2
sent to ctr-run are passed to the command. The sandbox ends with ctr-run, however
ctr-run ends (SIGKILL too): every process in it is killed; a killed ctr-run's
cgroup and overlay scratch layer are removed by the next run.

Exit status: the command's own; 128+N when it died of signal N; 124 when the
--timeout fired; 125 when ctr-run failed before the command ran (the message
names the step, the path and the reason); 126 when the command exists but
cannot be executed; 127 when it does not exist. An out-of-memory kill prints a
line saying so, with the limit.
)";

}  // namespace ctr_run
