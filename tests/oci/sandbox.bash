# Sourced by tests/oci/run-podman-tests and bench/oci/podman-run: a private
# place for a real container engine, so that nothing it does reaches the
# machine's own mounts, networks, cgroups or container storage.
#
#   source tests/oci/sandbox.bash
#   oci_sandbox_enter "$0" "$@"    # returns inside the sandbox, in the re-executed script
#
# The first call (outside) makes a temporary directory and, in every cgroup
# hierarchy, a unique cgroup below the process's own; then it runs the script
# again in that cgroup, under `unshare -m -n -C --propagation private` (new
# mount, network and cgroup namespaces, the cgroup namespace rooted at the
# unique cgroup). When that run ends, however it ends, the outside process
# ends what is left in the unique cgroups (all of it started by the run), and
# removes the cgroups and, unless CTR_OCI_KEEP=1, the directory.
#
# Inside (the second call), the cgroup hierarchies are mounted afresh on a
# tmpfs over /sys/fs/cgroup: in the new cgroup namespace each shows the
# unique cgroup as its root, so the cgroupfs paths an engine asks for
# (/libpod_parent/...) land below it. A tmpfs covers /run (Podman puts
# network namespace files in /run/netns, the runtimes their state in /run/runc
# or /run/ctr), loopback comes up in the new network namespace, and the
# script moves itself into a leaf cgroup "driver" beside the engine's (cgroup
# v2 allows no processes in a cgroup whose children have controllers).
#
# Sets, inside: OCI_WORK (the temporary directory, mode 0755).

oci_sandbox_log() { printf '%s\n' "$*" >&2; }

# The cgroup hierarchies of this process: "MOUNTPOINT FSTYPE OPTIONS PATH" per
# line, PATH being the process's cgroup in that hierarchy. v1 hierarchies are
# matched to /proc/self/cgroup by their controllers (or name=...).
oci_sandbox_hierarchies() {
  local id controllers path target fstype options want opt ok
  while IFS=: read -r id controllers path; do
    while read -r target fstype options; do
      if [[ "$id" == 0 ]]; then
        [[ "$fstype" == cgroup2 ]] || continue
      else
        [[ "$fstype" == cgroup ]] || continue
        ok=1
        IFS=, read -ra want <<<"$controllers"
        for opt in "${want[@]}"; do
          [[ ",$options," == *",$opt,"* ]] || ok=0
        done
        ((ok)) || continue
      fi
      printf '%s %s %s %s\n' "$target" "$fstype" "$options" "$path"
      break
    done < <(findmnt -rn -t cgroup,cgroup2 -o TARGET,FSTYPE,OPTIONS)
  done </proc/self/cgroup
}

# The mount options to mount a hierarchy again: the controllers and name=,
# not the generic flags.
oci_sandbox_mount_options() {
  local options=$1 fstype=$2 out=() opt
  IFS=, read -ra all <<<"$options"
  for opt in "${all[@]}"; do
    case "$opt" in
      rw | ro | relatime | noatime | nosuid | nodev | noexec | seclabel) ;;
      *) out+=("$opt") ;;
    esac
  done
  if [[ "$fstype" == cgroup && ${#out[@]} -eq 0 ]]; then
    out=(none)
  fi
  local IFS=,
  printf '%s' "${out[*]:-defaults}"
}

# A new cpuset cgroup v1 starts with no cpus and no memory nodes and takes
# no task until it has both: copy the parent's.
oci_sandbox_mkcg() {
  local dir=$1
  mkdir "$dir" || return 1
  if [[ -f "$dir/cpuset.cpus" && -z "$(cat "$dir/cpuset.cpus")" ]]; then
    cat "$dir/../cpuset.cpus" >"$dir/cpuset.cpus"
    cat "$dir/../cpuset.mems" >"$dir/cpuset.mems"
  fi
}

# Ends every process in the unique cgroups (by pid; they all descend from the
# run) and removes the cgroups, deepest first.
oci_sandbox_remove_cgroups() {
  local dir pids tries
  [[ -f "$OCI_SANDBOX_CGROUPS" ]] || return 0
  for ((tries = 0; tries < 50; tries++)); do
    pids=$(while read -r dir; do
      [[ -d "$dir" ]] && find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null
    done <"$OCI_SANDBOX_CGROUPS" | sort -un)
    [[ -z "$pids" ]] && break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  while read -r dir; do
    [[ -d "$dir" ]] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
    if [[ -d "$dir" ]]; then
      oci_sandbox_log "sandbox: could not remove cgroup $dir (still in use?)"
    fi
  done <"$OCI_SANDBOX_CGROUPS"
}

oci_sandbox_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  oci_sandbox_remove_cgroups
  if [[ -n "${OCI_WORK:-}" && -d "$OCI_WORK" ]]; then
    if [[ "${CTR_OCI_KEEP:-0}" == 1 ]]; then
      oci_sandbox_log "sandbox: kept $OCI_WORK"
    else
      # Every mount was in the run's own mount namespace, gone with its
      # last process: what is left here are plain files.
      rm -rf --one-file-system "$OCI_WORK"
    fi
  fi
  exit "$status"
}

oci_sandbox_outside() {
  local script=$1
  shift
  if ((EUID != 0)); then
    oci_sandbox_log "$(basename "$script"): run as root (it makes namespaces and cgroups)"
    exit 2
  fi
  local need
  for need in unshare findmnt ip podman; do
    if ! command -v "$need" >/dev/null 2>&1; then
      oci_sandbox_log "$(basename "$script"): '$need' is missing (tools/install-deps installs it)"
      exit 2
    fi
  done
  OCI_WORK=$(mktemp -d /tmp/ctr-oci.XXXXXX)
  chmod 755 "$OCI_WORK"
  OCI_SANDBOX_CGROUPS=$OCI_WORK/cgroups.list
  trap oci_sandbox_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local unique target fstype options path
  unique="ctr-oci-$$-${OCI_WORK##*.}"
  oci_sandbox_hierarchies >"$OCI_WORK/hierarchies"
  if [[ ! -s "$OCI_WORK/hierarchies" ]]; then
    oci_sandbox_log "sandbox: no cgroup hierarchy is mounted"
    exit 1
  fi
  : >"$OCI_SANDBOX_CGROUPS"
  while read -r target fstype options path; do
    oci_sandbox_mkcg "$target${path%/}/$unique" || exit 1
    echo "$target${path%/}/$unique" >>"$OCI_SANDBOX_CGROUPS"
  done <"$OCI_WORK/hierarchies"
  local status=0 inside
  # In the background, so that a signal to this process ends the run at
  # once: wait returns, the trap ends what is in the cgroups.
  (
    while read -r target; do
      echo "$BASHPID" >"$target/cgroup.procs"
    done <"$OCI_SANDBOX_CGROUPS"
    exec env OCI_SANDBOX_INSIDE="$OCI_WORK" unshare -m -n -C --propagation private -- "$script" "$@"
  ) &
  inside=$!
  wait "$inside" || status=$?
  exit "$status"
}

oci_sandbox_inside() {
  OCI_WORK=$OCI_SANDBOX_INSIDE
  unset OCI_SANDBOX_INSIDE
  local target fstype options path
  local root_fstype
  root_fstype=$(findmnt -rn -o FSTYPE /sys/fs/cgroup 2>/dev/null || true)
  if [[ "$root_fstype" != cgroup2 ]]; then
    mount -t tmpfs -o mode=0755,size=1m ctr-oci-cgroup /sys/fs/cgroup
  fi
  while read -r target fstype options path; do
    mkdir -p "$target"
    mount -t "$fstype" -o "$(oci_sandbox_mount_options "$options" "$fstype")" "$fstype" "$target"
    oci_sandbox_mkcg "$target/driver"
    echo $$ >"$target/driver/cgroup.procs"
  done <"$OCI_WORK/hierarchies"
  mount -t tmpfs -o mode=0755 ctr-oci-run /run
  # Podman 4.3 keeps root's blob-info cache in /var/lib/containers/cache
  # whatever --root says; nothing else below /var/lib is needed here.
  mount -t tmpfs -o mode=0755 ctr-oci-var-lib /var/lib
  ip link set lo up
}

oci_sandbox_enter() {
  if [[ -n "${OCI_SANDBOX_INSIDE:-}" ]]; then
    oci_sandbox_inside
  else
    oci_sandbox_outside "$@"
  fi
}

# Podman, configured to keep everything under OCI_WORK: storage, run state,
# its temporary files, events, network configuration, containers.conf.
# After oci_podman_setup, `oci_podman RUNTIME ARGS...` runs podman with a
# clean environment and that runtime.
oci_podman_setup() {
  local dir=$OCI_WORK/podman
  mkdir -p "$dir/root" "$dir/runroot" "$dir/tmp" "$dir/networks" "$dir/hooks" "$dir/home"
  # Podman asks for nofile and nproc 1048576 by default; raising a hard limit
  # needs CAP_SYS_RESOURCE, which root may lack (it does on some CI hosts):
  # this process's own hard limits always work, except that the runtime runs
  # with RLIMIT_NPROC 32768 whatever podman's own is (measured with Podman
  # 4.3 and conmon 2.1.6), so nproc is at most that.
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  if [[ "$nproc" == unlimited ]] || ((nproc > 32768)); then
    nproc=32768
  fi
  if [[ "$nofile" == unlimited ]]; then
    nofile=1048576
  fi
  cat >"$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/tmp"
hooks_dir = ["$dir/hooks"]

[network]
network_backend = "netavark"
network_config_dir = "$dir/networks"
# A documentation range (RFC 5737): nothing here routes anywhere.
default_subnet = "198.51.100.0/24"
CONF
  cat >"$dir/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$dir/root"
runroot = "$dir/runroot"
CONF
  OCI_PODMAN_ENV=(
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" XDG_DATA_HOME="$dir/home/.local/share"
    TMPDIR="$dir/tmp"
    CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf"
  )
  OCI_PODMAN_FLAGS=(
    --root "$dir/root" --runroot "$dir/runroot" --tmpdir "$dir/tmp"
    --storage-driver "${OCI_STORAGE_DRIVER:-overlay}" --cgroup-manager cgroupfs --events-backend file
    --network-config-dir "$dir/networks" --hooks-dir "$dir/hooks"
  )
}

oci_podman() {
  local runtime=$1
  shift
  env -i "${OCI_PODMAN_ENV[@]}" podman "${OCI_PODMAN_FLAGS[@]}" --runtime "$runtime" "$@"
}

# Imports a busybox root filesystem (tests/rootfs/make-busybox-rootfs) as
# IMAGE, with podman import: no registry.
oci_podman_import_busybox() {
  local runtime=$1 image=$2 maker
  maker="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/rootfs/make-busybox-rootfs"
  rm -rf "$OCI_WORK/busybox-rootfs"
  "$maker" "$OCI_WORK/busybox-rootfs"
  tar -C "$OCI_WORK/busybox-rootfs" -cf "$OCI_WORK/busybox.tar" .
  oci_podman "$runtime" import --quiet --change 'CMD ["/bin/sh"]' "$OCI_WORK/busybox.tar" "$image" >/dev/null
}
