# Sourced by tests/vm/build-initramfs and tests/vm/run-tests: the kernel they
# use and small helpers. Bash only.

vm_log() { printf 'vm: %s\n' "$*" >&2; }
vm_die() {
  printf 'vm: error: %s\n' "$*" >&2
  exit 2
}

# The kernel version to boot: $CTR_VM_KERNEL_VERSION, or else the newest
# version that has both /boot/vmlinuz-VERSION and /lib/modules/VERSION, so the
# image and the modules always come from the same kernel package
# (linux-image-amd64 is only a metapackage that depends on one of them).
vm_kernel_version() {
  if [[ -n "${CTR_VM_KERNEL_VERSION:-}" ]]; then
    [[ -r "/boot/vmlinuz-$CTR_VM_KERNEL_VERSION" && -d "/lib/modules/$CTR_VM_KERNEL_VERSION" ]] ||
      vm_die "CTR_VM_KERNEL_VERSION=$CTR_VM_KERNEL_VERSION: /boot/vmlinuz-$CTR_VM_KERNEL_VERSION or /lib/modules/$CTR_VM_KERNEL_VERSION is missing"
    printf '%s\n' "$CTR_VM_KERNEL_VERSION"
    return
  fi
  local version
  while read -r version; do
    if [[ -r "/boot/vmlinuz-$version" ]]; then
      printf '%s\n' "$version"
      return
    fi
  done < <(find /lib/modules -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V -r)
  vm_die "no kernel found with both /boot/vmlinuz-VERSION and /lib/modules/VERSION (install linux-image-amd64: tools/install-deps)"
}

# The directory CMake configured BUILD_DIR as. The test binaries have the
# helpers' paths compiled in from it, so the guest must hold them at exactly
# these paths, whatever path (relative, through a symlink) named the build.
vm_build_dir() {
  local dir="$1" cached
  [[ -f "$dir/CMakeCache.txt" ]] || vm_die "$dir is not a CMake build directory (no CMakeCache.txt)"
  cached="$(sed -n 's/^CMAKE_CACHEFILE_DIR:INTERNAL=//p' "$dir/CMakeCache.txt")"
  if [[ -n "$cached" ]]; then
    printf '%s\n' "$cached"
  else
    (cd "$dir" && pwd)
  fi
}

# The source tree BUILD_DIR was configured from: tests run scripts from it by
# their source path (tests/rootfs/make-busybox-rootfs).
vm_source_dir() {
  local source
  source="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt")"
  [[ -n "$source" && -d "$source" ]] || vm_die "$1/CMakeCache.txt names no source directory"
  printf '%s\n' "$source"
}
